/* bench/hpo.sh's driver for src/hpo: the six test functions of the quality table, and the cost
 * of one suggestion deep into an experiment.
 *   hpo_bench quality ALGO FUNC SEEDS TRIALS [FIRST]   one line per seed: "FUNC ALGO SEED BEST"
 *   hpo_bench cost ALGO DIMS TRIALS REPS       ms for the suggestion of trial TRIALS (median of
 *                                              REPS) after TRIALS-1 finished ones
 * The functions are the ones bench/lib/hpo_optuna.py gives Optuna: keep the two in step. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hpo/space.h"
#include "hpo/suggest.h"

typedef struct func {
    const char *name;
    const char *space;
    double (*f)(const double *x);
} func;

static double branin(const double *x) {
    double a = 1, b = 5.1 / (4 * M_PI * M_PI), c = 5 / M_PI, r = 6, s = 10, t = 1 / (8 * M_PI);
    double u = x[1] - b * x[0] * x[0] + c * x[0] - r;
    return a * u * u + s * (1 - t) * cos(x[0]) + s;
}

static double hartmann6(const double *x) {
    static const double alpha[4] = {1.0, 1.2, 3.0, 3.2};
    static const double A[4][6] = {{10, 3, 17, 3.5, 1.7, 8},
                                   {0.05, 10, 17, 0.1, 8, 14},
                                   {3, 3.5, 1.7, 10, 17, 8},
                                   {17, 8, 0.05, 10, 0.1, 14}};
    static const double P[4][6] = {{1312, 1696, 5569, 124, 8283, 5886},
                                   {2329, 4135, 8307, 3736, 1004, 9991},
                                   {2348, 1451, 3522, 2883, 3047, 6650},
                                   {4047, 8828, 8732, 5743, 1091, 381}};
    double sum = 0;
    for (int i = 0; i < 4; i++) {
        double e = 0;
        for (int j = 0; j < 6; j++) e += A[i][j] * (x[j] - P[i][j] * 1e-4) * (x[j] - P[i][j] * 1e-4);
        sum += alpha[i] * exp(-e);
    }
    return -sum;
}

static double rosenbrock4(const double *x) {
    double s = 0;
    for (int i = 0; i < 3; i++)
        s += 100 * (x[i + 1] - x[i] * x[i]) * (x[i + 1] - x[i] * x[i]) + (1 - x[i]) * (1 - x[i]);
    return s;
}

/* Ackley with its optimum moved off the centre (to 1.3 on every axis), where the first Sobol
 * point and CMA-ES's first mean would otherwise sit on it. */
static double ackley5(const double *x) {
    double s1 = 0, s2 = 0;
    for (int i = 0; i < 5; i++) {
        double v = x[i] - 1.3;
        s1 += v * v, s2 += cos(2 * M_PI * v);
    }
    return -20 * exp(-0.2 * sqrt(s1 / 5)) - exp(s2 / 5) + 20 + M_E;
}

/* A categorical choosing between three bowls of different depths and centres, and two reals. */
static double mixed(const double *x) {
    static const double depth[3] = {1.0, 0.0, 0.5}, cx[3] = {-2, 1, 3}, cy[3] = {0, 2, -1};
    int k = (int)x[0];
    return depth[k] + (x[1] - cx[k]) * (x[1] - cx[k]) / 4 + (x[2] - cy[k]) * (x[2] - cy[k]) / 4;
}

/* A training-run stand-in: a log-uniform learning rate, a stepped int width, a dropout. */
static double mlsurrogate(const double *x) {
    double l = log10(x[0]) + 2.5, w = log2(x[1] / 96.0), d = x[2] - 0.2;
    return l * l + 0.5 * w * w + 4 * d * d + 0.3 * l * w;
}

#define P_DBL(n, lo, hi)                                                                           \
    "{\"name\":\"" n "\",\"parameterType\":\"double\",\"feasibleSpace\":{\"min\":\"" lo            \
    "\",\"max\":\"" hi "\"}}"

static const func funcs[] = {
    {"branin", "[" P_DBL("x0", "-5", "10") "," P_DBL("x1", "0", "15") "]", branin},
    {"hartmann6",
     "[" P_DBL("x0", "0", "1") "," P_DBL("x1", "0", "1") "," P_DBL("x2", "0", "1") "," P_DBL(
         "x3", "0", "1") "," P_DBL("x4", "0", "1") "," P_DBL("x5", "0", "1") "]",
     hartmann6},
    {"rosenbrock4",
     "[" P_DBL("x0", "-2", "2") "," P_DBL("x1", "-2", "2") "," P_DBL("x2", "-2", "2") "," P_DBL(
         "x3", "-2", "2") "]",
     rosenbrock4},
    {"ackley5",
     "[" P_DBL("x0", "-5", "5") "," P_DBL("x1", "-5", "5") "," P_DBL("x2", "-5", "5") "," P_DBL(
         "x3", "-5", "5") "," P_DBL("x4", "-5", "5") "]",
     ackley5},
    {"mixed",
     "[{\"name\":\"c\",\"parameterType\":\"categorical\",\"feasibleSpace\":{\"list\":[\"a\",\"b\","
     "\"c\"]}}," P_DBL("x", "-5", "5") "," P_DBL("y", "-5", "5") "]",
     mixed},
    {"mlsurrogate",
     "[{\"name\":\"lr\",\"parameterType\":\"double\",\"feasibleSpace\":{\"min\":\"0.00001\","
     "\"max\":\"1\",\"distribution\":\"logUniform\"}},"
     "{\"name\":\"width\",\"parameterType\":\"int\",\"feasibleSpace\":{\"min\":\"16\",\"max\":"
     "\"512\",\"step\":\"16\"}}," P_DBL("dropout", "0", "0.8") "]",
     mlsurrogate},
};

static ty_hpo_space *parse_space(const char *text) {
    json_error_t je;
    json_t *j = json_loads(text, 0, &je);
    ty_hpo_space *sp = NULL;
    ty_error err = TY_ERROR_INIT;
    if (!j || ty_hpo_space_parse(j, &sp, &err) < 0) {
        fprintf(stderr, "space: %s\n", j ? err.msg : je.text);
        exit(1);
    }
    json_decref(j);
    return sp;
}

static ty_hpo_suggester *make(const ty_hpo_space *sp, const char *algo, int seed) {
    char s[32];
    snprintf(s, sizeof s, "%d", seed);
    ty_hpo_setting st[] = {{"random_state", s}};
    ty_hpo_suggester *sg = NULL;
    ty_error err = TY_ERROR_INIT;
    if (ty_hpo_suggester_new(sp, algo, st, strcmp(algo, "sobol") ? 1 : 0, NULL, &sg, &err) < 0) {
        fprintf(stderr, "%s: %s\n", algo, err.msg);
        exit(1);
    }
    return sg;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts); /* CPU time: the machine is shared */
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if ((argc == 6 || argc == 7) && strcmp(argv[1], "quality") == 0) {
        const char *algo = argv[2];
        int seeds = atoi(argv[4]), trials = atoi(argv[5]), first = argc == 7 ? atoi(argv[6]) : 0;
        for (size_t fi = 0; fi < sizeof funcs / sizeof funcs[0]; fi++) {
            if (strcmp(argv[3], "all") && strcmp(argv[3], funcs[fi].name)) continue;
            ty_hpo_space *sp = parse_space(funcs[fi].space);
            double t0 = now_ms();
            for (int seed = first; seed < first + seeds; seed++) {
                /* sobol has no seed: a different starting index per "seed" instead */
                ty_hpo_suggester *s = make(sp, algo, seed);
                double best = INFINITY;
                for (int t = 0; t < trials; t++) {
                    size_t id;
                    if (ty_hpo_suggest(s, 1, &id, NULL) != 1) break;
                    double y = funcs[fi].f(ty_hpo_trial_point(s, id));
                    if (y < best) best = y;
                    ty_hpo_report(s, id, TY_HPO_COMPLETED, y, NULL);
                }
                printf("%s %s %d %.10g\n", funcs[fi].name, algo, seed, best);
                ty_hpo_suggester_free(s);
            }
            fprintf(stderr, "%s %s: %.1f ms per run\n", funcs[fi].name, algo,
                    (now_ms() - t0) / seeds);
            ty_hpo_space_free(sp);
        }
        return 0;
    }
    if (argc == 6 && strcmp(argv[1], "cost") == 0) {
        const char *algo = argv[2];
        int dims = atoi(argv[3]), trials = atoi(argv[4]), reps = atoi(argv[5]);
        char text[4096] = "[";
        for (int d = 0; d < dims; d++) {
            size_t l = strlen(text);
            /* P_DBL's name "x%d" is a format: each parameter gets its number */
            snprintf(text + l, sizeof text - l, "%s" P_DBL("x%d", "0", "1"), d ? "," : "", d);
        }
        strcat(text, "]");
        ty_hpo_space *sp = parse_space(text);
        ty_hpo_suggester *s = make(sp, algo, 1);
        double *times = calloc((size_t)reps, sizeof(double));
        double t_all = now_ms();
        /* an experiment of TRIALS-1 trials, the way it runs: suggest, report */
        for (int t = 0; t < trials - 1; t++) {
            size_t id;
            ty_hpo_suggest(s, 1, &id, NULL);
            const double *x = ty_hpo_trial_point(s, id);
            double y = 0;
            for (int d = 0; d < dims; d++) y += (x[d] - 0.3) * (x[d] - 0.3);
            ty_hpo_report(s, id, TY_HPO_COMPLETED, y, NULL);
        }
        t_all = now_ms() - t_all;
        for (int r = 0; r < reps; r++) {
            size_t id;
            double t0 = now_ms();
            ty_hpo_suggest(s, 1, &id, NULL);
            times[r] = now_ms() - t0;
            /* the next repetition is the same depth: the probe trial fails and is not counted */
            ty_hpo_report(s, id, TY_HPO_FAILED, NAN, NULL);
        }
        qsort(times, (size_t)reps, sizeof(double), cmp_double);
        printf("cost %s dims=%d trial=%d suggestion_ms=%.4f whole_experiment_s=%.3f\n", algo, dims,
               trials, times[reps / 2], t_all / 1e3);
        free(times);
        ty_hpo_suggester_free(s);
        ty_hpo_space_free(sp);
        return 0;
    }
    fprintf(stderr, "usage: hpo_bench quality ALGO FUNC|all SEEDS TRIALS [FIRST] | cost ALGO DIMS TRIALS REPS\n");
    return 2;
}
