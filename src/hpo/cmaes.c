/* CMA-ES as Optuna's CmaEsSampler drives the cmaes library (Katib's "cmaes").
 *
 * Settings (Katib's): restart_strategy ("ipop", or "none"/"None": no restart), sigma (the initial
 * step size, in the units of the parameters, log units for log-uniform ones; default a sixth of
 * the narrowest range), random_state. Katib requires two numeric parameters at least.
 * The numeric parameters form the search space of the CMA (log ones in log, ints widened by half
 * a step and rounded); categorical ones are drawn at random, as Optuna samples them
 * independently. The first trial is random (Optuna's n_startup_trials = 1). A generation is told
 * once `popsize` of its trials have finished; failed ones are replaced by more of the same
 * generation. Each trial carries its generation (ty_hpo_trial_tag), so that an experiment
 * resumed from tagged trials goes on from the same distribution. Candidates outside the bounds are redrawn up to 10 x n times, then clipped.
 * Restarts (ipop): when the cmaes library's stop tests fire (flat fitness over the recent
 * generations, a step below 1e-12 x sigma0 on every axis, condition number over 1e14), the
 * population doubles and the mean starts again at a random point. */
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "hpo/hpo_int.h"

typedef struct cma_state {
    size_t n;        /* numeric dimensions */
    size_t *dim_of;  /* CMA dimension -> parameter index */
    ty_hpo_axis *axes;
    bool ipop;
    double sigma0;
    size_t popsize, mu;
    double *weights, mu_eff, c1, cmu, cc, c_sigma, d_sigma, chi_n;
    double *mean, sigma, *C, *B, *D, *pc, *psigma; /* D: sqrt of the eigenvalues */
    bool eigen_stale;
    int gen;              /* the tag of the current generation's trials */
    int gens_this_run;    /* generations since the last (re)start */
    size_t *solutions;    /* finished trials of the current generation */
    size_t n_solutions, cap_solutions;
    double *funhist;      /* 2 x funhist_term: best and worst of recent generations */
    size_t funhist_term;
    bool any_cma_trial;
} cma_state;

static void cma_reset(cma_state *c, size_t popsize, const double *mean) {
    size_t n = c->n;
    c->popsize = popsize;
    c->mu = popsize / 2;
    free(c->weights);
    c->weights = ty_malloc(popsize * sizeof(double));
    double pos_sum = 0, pos_sq = 0, neg_sum = 0, neg_sq = 0;
    for (size_t i = 0; i < popsize; i++) {
        double w = log(((double)popsize + 1) / 2) - log((double)i + 1);
        c->weights[i] = w;
        if (w >= 0) pos_sum += w, pos_sq += w * w;
        else neg_sum += w, neg_sq += w * w;
    }
    c->mu_eff = pos_sum * pos_sum / pos_sq;
    double mu_eff_minus = neg_sq > 0 ? neg_sum * neg_sum / neg_sq : 0;
    double dn = (double)n, alpha_cov = 2;
    c->c1 = alpha_cov / ((dn + 1.3) * (dn + 1.3) + c->mu_eff);
    c->cmu = fmin(1 - c->c1 - 1e-8, alpha_cov * (c->mu_eff - 2 + 1 / c->mu_eff) /
                                        ((dn + 2) * (dn + 2) + alpha_cov * c->mu_eff / 2));
    double min_alpha = fmin(1 + c->c1 / c->cmu,
                            fmin(1 + 2 * mu_eff_minus / (c->mu_eff + 2),
                                 (1 - c->c1 - c->cmu) / (dn * c->cmu)));
    for (size_t i = 0; i < popsize; i++)
        c->weights[i] = c->weights[i] >= 0 ? c->weights[i] / pos_sum
                                           : min_alpha * c->weights[i] / fabs(neg_sum);
    c->c_sigma = (c->mu_eff + 2) / (dn + c->mu_eff + 5);
    c->d_sigma = 1 + 2 * fmax(0, sqrt((c->mu_eff - 1) / (dn + 1)) - 1) + c->c_sigma;
    c->cc = (4 + c->mu_eff / dn) / (dn + 4 + 2 * c->mu_eff / dn);
    c->chi_n = sqrt(dn) * (1 - 1 / (4 * dn) + 1 / (21 * dn * dn));
    memcpy(c->mean, mean, n * sizeof(double));
    c->sigma = c->sigma0;
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < n; j++) c->C[i * n + j] = c->B[i * n + j] = i == j;
        c->D[i] = 1, c->pc[i] = 0, c->psigma[i] = 0;
    }
    c->eigen_stale = false;
    c->gens_this_run = 0;
    c->funhist_term = 10 + (size_t)ceil(30.0 * dn / (double)popsize);
    free(c->funhist);
    c->funhist = ty_calloc(2 * c->funhist_term, sizeof(double));
}

static int cma_init(ty_hpo_suggester *s, const ty_hpo_setting *st, size_t n_st, ty_error *err) {
    bool ipop = false;
    double sigma = -1;
    for (size_t i = 0; i < n_st; i++) {
        int rc = ty_hpo_setting_seed(s, &st[i], err);
        if (rc < 0) return -1;
        if (rc == 1) continue;
        if (strcmp(st[i].name, "restart_strategy") == 0) {
            if (strcmp(st[i].value, "ipop") == 0) ipop = true;
            else if (strcmp(st[i].value, "none") != 0 && strcmp(st[i].value, "None") != 0)
                return ty_fail(err, "restart_strategy %s is not supported in CMAES optimization",
                               st[i].value);
        } else if (strcmp(st[i].name, "sigma") == 0) {
            if (ty_hpo_setting_double(&st[i], 0, &sigma, err) < 0) return -1;
        } else {
            return ty_hpo_unknown_setting(&st[i], "cmaes", err);
        }
    }
    size_t n = 0;
    for (size_t d = 0; d < s->space->n; d++)
        if (s->space->params[d].type == TY_HPO_INT || s->space->params[d].type == TY_HPO_DOUBLE) n++;
    if (n < 2)
        return ty_fail(err, "cmaes only supports two or more dimensional continuous search space.");
    cma_state *c = TY_NEW(cma_state);
    c->n = n;
    c->ipop = ipop;
    c->dim_of = ty_malloc(n * sizeof(size_t));
    c->axes = ty_malloc(n * sizeof(ty_hpo_axis));
    double min_range = INFINITY;
    for (size_t d = 0, k = 0; d < s->space->n; d++) {
        const ty_hpo_param *p = &s->space->params[d];
        if (p->type != TY_HPO_INT && p->type != TY_HPO_DOUBLE) continue;
        c->dim_of[k] = d;
        ty_hpo_axis_of(p, &c->axes[k]);
        min_range = fmin(min_range, c->axes[k].hi - c->axes[k].lo);
        k++;
    }
    c->sigma0 = sigma > 0 ? sigma : (min_range > 0 ? min_range / 6 : 1e-3);
    c->mean = ty_malloc(n * sizeof(double));
    c->C = ty_malloc(n * n * sizeof(double));
    c->B = ty_malloc(n * n * sizeof(double));
    c->D = ty_malloc(n * sizeof(double));
    c->pc = ty_malloc(n * sizeof(double));
    c->psigma = ty_malloc(n * sizeof(double));
    double *mean = ty_malloc(n * sizeof(double));
    for (size_t k = 0; k < n; k++) mean[k] = 0.5 * (c->axes[k].lo + c->axes[k].hi);
    cma_reset(c, 4 + (size_t)floor(3 * log((double)n)), mean);
    free(mean);
    s->state = c;
    return 0;
}

static void cma_free(ty_hpo_suggester *s) {
    cma_state *c = s->state;
    if (!c) return;
    free(c->dim_of), free(c->axes), free(c->weights), free(c->mean), free(c->C), free(c->B);
    free(c->D), free(c->pc), free(c->psigma), free(c->solutions), free(c->funhist);
    free(c);
}

static void cma_eigen(cma_state *c) {
    if (!c->eigen_stale) return;
    size_t n = c->n;
    /* keep C symmetric and positive: the library adds 1e-8 when an eigenvalue goes below */
    double *a = ty_malloc(n * n * sizeof(double));
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) a[i * n + j] = 0.5 * (c->C[i * n + j] + c->C[j * n + i]);
    double *ev = ty_malloc(n * sizeof(double));
    ty_hpo_eigen_sym(a, n, ev, c->B);
    for (size_t i = 0; i < n; i++) c->D[i] = sqrt(ev[i] < 1e-8 ? 1e-8 : ev[i]);
    free(a), free(ev);
    c->eigen_stale = false;
}

static bool cma_should_stop(cma_state *c) {
    size_t n = c->n;
    cma_eigen(c);
    if ((size_t)c->gens_this_run > c->funhist_term) {
        double lo = INFINITY, hi = -INFINITY;
        for (size_t i = 0; i < 2 * c->funhist_term; i++)
            lo = fmin(lo, c->funhist[i]), hi = fmax(hi, c->funhist[i]);
        if (hi - lo < 1e-12) return true;
    }
    bool small = true;
    double tolx = 1e-12 * c->sigma0;
    for (size_t i = 0; i < n; i++)
        if (c->sigma * c->C[i * n + i] >= tolx || c->sigma * c->pc[i] >= tolx) small = false;
    if (small) return true;
    double dmax = 0, dmin = INFINITY;
    for (size_t i = 0; i < n; i++) dmax = fmax(dmax, c->D[i]), dmin = fmin(dmin, c->D[i]);
    if (c->sigma * dmax > 1e4) return true;
    if (dmax / dmin > 1e7) return true; /* condition number of C (= D^2 ratio) over 1e14 */
    for (size_t i = 0; i < n; i++)
        if (c->mean[i] == c->mean[i] + 0.2 * c->sigma * sqrt(c->C[i * n + i])) return true;
    return false;
}

static int cmp_loss(const void *a, const void *b, void *arg) {
    const ty_hpo_suggester *s = arg;
    double la = s->trials[*(const size_t *)a].loss, lb = s->trials[*(const size_t *)b].loss;
    return la < lb ? -1 : la > lb;
}

/* The cmaes library's tell() on the first popsize finished trials of the generation. */
static void cma_tell(ty_hpo_suggester *s) {
    cma_state *c = s->state;
    size_t n = c->n, lam = c->popsize;
    qsort_r(c->solutions, lam, sizeof(size_t), cmp_loss, s);
    cma_eigen(c);
    /* fitness history for the stop test */
    size_t slot = (size_t)c->gens_this_run % c->funhist_term;
    c->funhist[2 * slot] = s->trials[c->solutions[0]].loss;
    c->funhist[2 * slot + 1] = s->trials[c->solutions[lam - 1]].loss;
    c->gens_this_run++;
    double *y = ty_malloc(lam * n * sizeof(double)), *yw = ty_calloc(n, sizeof(double));
    double *tmp = ty_malloc(n * sizeof(double));
    for (size_t k = 0; k < lam; k++) {
        const ty_hpo_trial *t = &s->trials[c->solutions[k]];
        for (size_t i = 0; i < n; i++)
            y[k * n + i] = (ty_hpo_axis_internal(&c->axes[i], t->x[c->dim_of[i]]) - c->mean[i]) /
                           c->sigma;
    }
    for (size_t k = 0; k < c->mu; k++)
        for (size_t i = 0; i < n; i++) yw[i] += c->weights[k] * y[k * n + i];
    for (size_t i = 0; i < n; i++) c->mean[i] += c->sigma * yw[i]; /* cm = 1 */
    /* C^{-1/2} yw = B D^{-1} B^T yw */
    for (size_t j = 0; j < n; j++) {
        double v = 0;
        for (size_t i = 0; i < n; i++) v += c->B[i * n + j] * yw[i];
        tmp[j] = v / c->D[j];
    }
    double ps_norm = 0;
    for (size_t i = 0; i < n; i++) {
        double v = 0;
        for (size_t j = 0; j < n; j++) v += c->B[i * n + j] * tmp[j];
        c->psigma[i] = (1 - c->c_sigma) * c->psigma[i] +
                       sqrt(c->c_sigma * (2 - c->c_sigma) * c->mu_eff) * v;
        ps_norm += c->psigma[i] * c->psigma[i];
    }
    ps_norm = sqrt(ps_norm);
    c->sigma *= exp((c->c_sigma / c->d_sigma) * (ps_norm / c->chi_n - 1));
    if (c->sigma > 1e32) c->sigma = 1e32;
    double left = ps_norm / sqrt(1 - pow(1 - c->c_sigma, 2.0 * (c->gens_this_run + 1)));
    double right = (1.4 + 2 / ((double)n + 1)) * c->chi_n;
    double h_sigma = left < right ? 1 : 0;
    for (size_t i = 0; i < n; i++)
        c->pc[i] = (1 - c->cc) * c->pc[i] + h_sigma * sqrt(c->cc * (2 - c->cc) * c->mu_eff) * yw[i];
    double wsum = 0;
    for (size_t k = 0; k < lam; k++) wsum += c->weights[k];
    double delta_h = (1 - h_sigma) * c->cc * (2 - c->cc);
    double keep = 1 + c->c1 * delta_h - c->c1 - c->cmu * wsum;
    for (size_t i = 0; i < n * n; i++) c->C[i] *= keep;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) c->C[i * n + j] += c->c1 * c->pc[i] * c->pc[j];
    for (size_t k = 0; k < lam; k++) {
        double w = c->weights[k];
        if (w < 0) {
            /* negative weights scaled by n / ||C^{-1/2} y||^2 */
            for (size_t j = 0; j < n; j++) {
                double v = 0;
                for (size_t i = 0; i < n; i++) v += c->B[i * n + j] * y[k * n + i];
                tmp[j] = v / c->D[j];
            }
            double nn = 0;
            for (size_t j = 0; j < n; j++) nn += tmp[j] * tmp[j];
            w *= (double)n / fmax(nn, 1e-300);
        }
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < n; j++) c->C[i * n + j] += c->cmu * w * y[k * n + i] * y[k * n + j];
    }
    c->eigen_stale = true;
    free(y), free(yw), free(tmp);
    c->gen++;
    c->n_solutions = 0;
    if (c->ipop && cma_should_stop(c)) {
        double *mean = ty_malloc(n * sizeof(double));
        for (size_t i = 0; i < n; i++)
            mean[i] = c->axes[i].lo + ty_hpo_rng_uniform(&s->rng) * (c->axes[i].hi - c->axes[i].lo);
        cma_reset(c, c->popsize * 2, mean);
        free(mean);
    }
}

static void cma_update(ty_hpo_suggester *s, size_t id, ty_hpo_trial_state old) {
    (void)old;
    cma_state *c = s->state;
    const ty_hpo_trial *t = &s->trials[id];
    if (t->tag >= 0) c->any_cma_trial = true;
    if (t->tag != c->gen || !ty_hpo_trial_observed(t)) return;
    for (size_t i = 0; i < c->n_solutions; i++)
        if (c->solutions[i] == id) return;
    if (c->n_solutions == c->cap_solutions) {
        c->cap_solutions = c->cap_solutions ? 2 * c->cap_solutions : 16;
        c->solutions = ty_realloc(c->solutions, c->cap_solutions * sizeof(size_t));
    }
    c->solutions[c->n_solutions++] = id;
    /* told as soon as the generation is full: a resumed experiment's tagged trials, given back
     * in order, rebuild the same distribution */
    if (c->n_solutions >= c->popsize) cma_tell(s);
}

static int cma_one(ty_hpo_suggester *s, double *x, int *tag, ty_error *err) {
    (void)err;
    cma_state *c = s->state;
    size_t n = c->n;
    bool any_done = false;
    for (size_t i = 0; i < s->n_trials && !any_done; i++) any_done = ty_hpo_trial_observed(&s->trials[i]);
    ty_hpo_sample_random(s->space, &s->rng, x); /* categoricals, and the startup trial */
    if (!any_done && !c->any_cma_trial) return 1;
    cma_eigen(c);
    double *z = ty_malloc(n * sizeof(double)), *v = ty_malloc(n * sizeof(double));
    bool inside = false;
    for (size_t tries = 0; tries < 10 * n && !inside; tries++) {
        for (size_t i = 0; i < n; i++) z[i] = ty_hpo_rng_normal(&s->rng) * c->D[i];
        inside = true;
        for (size_t i = 0; i < n; i++) {
            double yi = 0;
            for (size_t j = 0; j < n; j++) yi += c->B[i * n + j] * z[j];
            v[i] = c->mean[i] + c->sigma * yi;
            if (v[i] < c->axes[i].lo || v[i] > c->axes[i].hi) inside = false;
        }
    }
    for (size_t i = 0; i < n; i++) {
        size_t d = c->dim_of[i];
        x[d] = ty_hpo_axis_value(&s->space->params[d], &c->axes[i], v[i]); /* clips */
    }
    free(z), free(v);
    *tag = c->gen;
    return 1;
}

const ty_hpo_algo ty_hpo_algo_cmaes = {"cmaes", cma_init, cma_free, cma_one, cma_update};
