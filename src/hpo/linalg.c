/* The little dense linear algebra the GP (Cholesky) and CMA-ES (eigenvectors) need: matrices
 * are at most a few hundred rows, so plain loops do. */
#include <math.h>
#include <string.h>

#include "hpo/hpo_int.h"

int ty_hpo_cholesky(double *a, size_t n) {
    for (size_t j = 0; j < n; j++) {
        double d = a[j * n + j];
        for (size_t k = 0; k < j; k++) d -= a[j * n + k] * a[j * n + k];
        if (!(d > 0)) return -1;
        d = sqrt(d);
        a[j * n + j] = d;
        for (size_t i = j + 1; i < n; i++) {
            double v = a[i * n + j];
            for (size_t k = 0; k < j; k++) v -= a[i * n + k] * a[j * n + k];
            a[i * n + j] = v / d;
        }
        for (size_t k = j + 1; k < n; k++) a[j * n + k] = 0;
    }
    return 0;
}

void ty_hpo_chol_solve_lower(const double *l, size_t n, double *b) {
    for (size_t i = 0; i < n; i++) {
        double v = b[i];
        for (size_t k = 0; k < i; k++) v -= l[i * n + k] * b[k];
        b[i] = v / l[i * n + i];
    }
}

void ty_hpo_chol_solve_upper_t(const double *l, size_t n, double *b) {
    for (size_t ii = n; ii-- > 0;) {
        double v = b[ii];
        for (size_t k = ii + 1; k < n; k++) v -= l[k * n + ii] * b[k];
        b[ii] = v / l[ii * n + ii];
    }
}

/* Cyclic Jacobi rotations: a is destroyed; evecs gets the eigenvectors as columns. */
void ty_hpo_eigen_sym(double *a, size_t n, double *evals, double *evecs) {
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) evecs[i * n + j] = i == j;
    for (int sweep = 0; sweep < 100; sweep++) {
        double off = 0;
        for (size_t i = 0; i < n; i++)
            for (size_t j = i + 1; j < n; j++) off += a[i * n + j] * a[i * n + j];
        if (off < 1e-30) break;
        for (size_t p = 0; p < n; p++)
            for (size_t q = p + 1; q < n; q++) {
                double apq = a[p * n + q];
                if (fabs(apq) < 1e-300) continue;
                double theta = (a[q * n + q] - a[p * n + p]) / (2 * apq);
                double t = (theta >= 0 ? 1 : -1) / (fabs(theta) + sqrt(theta * theta + 1));
                double c = 1 / sqrt(t * t + 1), s = t * c;
                for (size_t k = 0; k < n; k++) {
                    double akp = a[k * n + p], akq = a[k * n + q];
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for (size_t k = 0; k < n; k++) {
                    double apk = a[p * n + k], aqk = a[q * n + k];
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
                for (size_t k = 0; k < n; k++) {
                    double vkp = evecs[k * n + p], vkq = evecs[k * n + q];
                    evecs[k * n + p] = c * vkp - s * vkq;
                    evecs[k * n + q] = s * vkp + c * vkq;
                }
            }
    }
    for (size_t i = 0; i < n; i++) evals[i] = a[i * n + i];
}
