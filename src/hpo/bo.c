/* Bayesian optimisation as Katib's skopt service runs it ("bayesianoptimization").
 *
 * Settings (Katib's): base_estimator (GP; RF, ET and GBRT are refused: not built),
 * n_initial_points (10), acq_func (gp_hedge; EI, PI, LCB; EIps and PIps refused: they need the
 * trials' durations), acq_optimizer (auto, sampling, lbfgs: all mean "sample then refine"),
 * random_state.
 * The model is skopt's default GP: amplitude x Matern(nu = 5/2) with one length scale per
 * feature plus white noise, y normalised, numeric parameters scaled to [0, 1] (log ones in
 * log), categoricals one-hot. Its hyperparameters maximise the log marginal likelihood within
 * skopt's bounds (amplitude [0.01, 1000], length scales [0.01, 100], noise [1e-5, 1e5]) by
 * Nelder-Mead from the previous fit (the incremental state) and, every tenth fit, from skopt's
 * initial values too. The acquisition (expected improvement with xi = 0.01, probability of
 * improvement, lower confidence bound with kappa = 1.96, or skopt's hedge over the three) is
 * maximised over 1,000 random points whose best five are then refined locally. Running trials
 * are given the best value seen (skopt's "cl_min" constant liar). */
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "hpo/hpo_int.h"

enum { ACQ_EI, ACQ_PI, ACQ_LCB, ACQ_HEDGE };

typedef struct bo_state {
    long long n_initial;
    int acq;
    size_t nf;     /* features */
    double *theta; /* log amplitude, log length scales (nf), log noise */
    size_t fits;
    size_t last_fit_obs; /* observations at the last fit */
    double gains[3];
    double *hedge_x; /* 3 x nf: each acquisition's last choice */
    bool hedge_pending;
} bo_state;

static int bo_init(ty_hpo_suggester *s, const ty_hpo_setting *st, size_t n, ty_error *err) {
    long long n_initial = 10;
    int acq = ACQ_HEDGE;
    for (size_t i = 0; i < n; i++) {
        int rc = ty_hpo_setting_seed(s, &st[i], err);
        if (rc < 0) return -1;
        if (rc == 1) continue;
        const char *nm = st[i].name, *v = st[i].value;
        if (strcmp(nm, "base_estimator") == 0) {
            if (strcmp(v, "GP") != 0) {
                if (!strcmp(v, "RF") || !strcmp(v, "ET") || !strcmp(v, "GBRT"))
                    return ty_fail(err, "base_estimator %s is not supported by trainyard (GP is)", v);
                return ty_fail(err, "base_estimator %s is not supported in Bayesian optimization", v);
            }
        } else if (strcmp(nm, "n_initial_points") == 0) {
            if (ty_hpo_setting_int(&st[i], 0, &n_initial, err) < 0) return -1;
        } else if (strcmp(nm, "acq_func") == 0) {
            if (!strcmp(v, "gp_hedge")) acq = ACQ_HEDGE;
            else if (!strcmp(v, "EI")) acq = ACQ_EI;
            else if (!strcmp(v, "PI")) acq = ACQ_PI;
            else if (!strcmp(v, "LCB")) acq = ACQ_LCB;
            else if (!strcmp(v, "EIps") || !strcmp(v, "PIps"))
                return ty_fail(err, "acq_func %s is not supported by trainyard", v);
            else return ty_fail(err, "acq_func %s is not supported in Bayesian optimization", v);
        } else if (strcmp(nm, "acq_optimizer") == 0) {
            if (strcmp(v, "auto") && strcmp(v, "sampling") && strcmp(v, "lbfgs"))
                return ty_fail(err, "acq_optimizer %s is not supported in Bayesian optimization", v);
        } else {
            return ty_hpo_unknown_setting(&st[i], "bayesianoptimization", err);
        }
    }
    bo_state *b = TY_NEW(bo_state);
    b->n_initial = n_initial;
    b->acq = acq;
    for (size_t d = 0; d < s->space->n; d++) {
        const ty_hpo_param *p = &s->space->params[d];
        b->nf += p->type == TY_HPO_CATEGORICAL || p->type == TY_HPO_DISCRETE ? p->n_list : 1;
    }
    b->theta = ty_calloc(b->nf + 2, sizeof(double)); /* all 1: skopt's initial values */
    b->hedge_x = ty_calloc(3 * b->nf, sizeof(double));
    s->state = b;
    return 0;
}

static void bo_free(ty_hpo_suggester *s) {
    bo_state *b = s->state;
    if (!b) return;
    free(b->theta), free(b->hedge_x), free(b);
}

static void features(const ty_hpo_space *sp, const double *x, double *f) {
    size_t k = 0;
    for (size_t d = 0; d < sp->n; d++) {
        const ty_hpo_param *p = &sp->params[d];
        if (p->type == TY_HPO_CATEGORICAL || p->type == TY_HPO_DISCRETE) {
            for (size_t c = 0; c < p->n_list; c++) f[k++] = (double)c == x[d];
        } else {
            f[k++] = ty_hpo_to_unit(p, x[d]);
        }
    }
}

/* The GP over the current data. */
typedef struct gp {
    size_t n, nf;
    const double *X; /* n x nf */
    const double *y; /* normalised */
    double *L, *alpha;
    double amp, noise, *inv_ls;
} gp;

static double matern52(const double *a, const double *b, const double *inv_ls, size_t nf) {
    double r2 = 0;
    for (size_t j = 0; j < nf; j++) {
        double d = (a[j] - b[j]) * inv_ls[j];
        r2 += d * d;
    }
    double r = sqrt(5 * r2);
    return (1 + r + r * r / 3) * exp(-r);
}

/* Factorises K for theta; returns the log marginal likelihood (-inf when K is not positive). */
static double gp_fit(gp *g, const double *theta) {
    size_t n = g->n, nf = g->nf;
    g->amp = exp(theta[0]);
    for (size_t j = 0; j < nf; j++) g->inv_ls[j] = exp(-theta[1 + j]);
    g->noise = exp(theta[1 + nf]);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j <= i; j++) {
            double k = g->amp * matern52(&g->X[i * nf], &g->X[j * nf], g->inv_ls, nf);
            if (i == j) k += g->noise + 1e-10;
            g->L[i * n + j] = g->L[j * n + i] = k;
        }
    if (ty_hpo_cholesky(g->L, n) < 0) return -INFINITY;
    memcpy(g->alpha, g->y, n * sizeof(double));
    ty_hpo_chol_solve_lower(g->L, n, g->alpha);
    double fit = 0, logdet = 0;
    for (size_t i = 0; i < n; i++) fit += g->alpha[i] * g->alpha[i], logdet += log(g->L[i * n + i]);
    ty_hpo_chol_solve_upper_t(g->L, n, g->alpha);
    return -0.5 * fit - logdet - 0.5 * (double)n * log(2 * M_PI);
}

static void gp_predict(const gp *g, const double *f, double *mu, double *sd, double *kv) {
    size_t n = g->n;
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        kv[i] = g->amp * matern52(f, &g->X[i * g->nf], g->inv_ls, g->nf);
        m += kv[i] * g->alpha[i];
    }
    ty_hpo_chol_solve_lower(g->L, n, kv);
    double v = g->amp;
    for (size_t i = 0; i < n; i++) v -= kv[i] * kv[i];
    *mu = m;
    *sd = sqrt(fmax(v, 1e-12));
}

static const double theta_lo_amp = -4.605170185988091, theta_hi_amp = 6.907755278982137;
static const double theta_lo_ls = -4.605170185988091, theta_hi_ls = 4.605170185988092;
static const double theta_lo_noise = -11.512925464970229, theta_hi_noise = 11.512925464970229;

static void theta_clip(double *th, size_t nf) {
    th[0] = fmin(fmax(th[0], theta_lo_amp), theta_hi_amp);
    for (size_t j = 0; j < nf; j++) th[1 + j] = fmin(fmax(th[1 + j], theta_lo_ls), theta_hi_ls);
    th[1 + nf] = fmin(fmax(th[1 + nf], theta_lo_noise), theta_hi_noise);
}

/* Nelder-Mead on -LML within the bounds; th in/out, returns the best LML. */
static double nelder_mead(gp *g, double *th, int max_evals) {
    size_t m = g->nf + 2;
    double *pts = ty_malloc((m + 1) * m * sizeof(double)), *val = ty_malloc((m + 1) * sizeof(double));
    double *cen = ty_malloc(m * sizeof(double)), *tr = ty_malloc(m * sizeof(double)),
           *tr2 = ty_malloc(m * sizeof(double));
    int evals = 0;
#define EVAL(p) (evals++, theta_clip((p), g->nf), -gp_fit(g, (p)))
    for (size_t i = 0; i <= m; i++) {
        memcpy(&pts[i * m], th, m * sizeof(double));
        if (i > 0) pts[i * m + i - 1] += 0.7;
        val[i] = EVAL(&pts[i * m]);
    }
    while (evals < max_evals) {
        /* order: best first */
        for (size_t i = 1; i <= m; i++)
            for (size_t j = i; j > 0 && val[j] < val[j - 1]; j--) {
                double t = val[j];
                val[j] = val[j - 1], val[j - 1] = t;
                for (size_t k = 0; k < m; k++) {
                    t = pts[j * m + k];
                    pts[j * m + k] = pts[(j - 1) * m + k], pts[(j - 1) * m + k] = t;
                }
            }
        if (fabs(val[m] - val[0]) < 1e-6) break;
        for (size_t k = 0; k < m; k++) {
            cen[k] = 0;
            for (size_t i = 0; i < m; i++) cen[k] += pts[i * m + k] / (double)m;
        }
        for (size_t k = 0; k < m; k++) tr[k] = cen[k] + (cen[k] - pts[m * m + k]);
        double fr = EVAL(tr);
        if (fr < val[0]) {
            for (size_t k = 0; k < m; k++) tr2[k] = cen[k] + 2 * (cen[k] - pts[m * m + k]);
            double fe = EVAL(tr2);
            if (fe < fr) memcpy(&pts[m * m], tr2, m * sizeof(double)), val[m] = fe;
            else memcpy(&pts[m * m], tr, m * sizeof(double)), val[m] = fr;
        } else if (fr < val[m - 1]) {
            memcpy(&pts[m * m], tr, m * sizeof(double)), val[m] = fr;
        } else {
            for (size_t k = 0; k < m; k++) tr2[k] = cen[k] + 0.5 * (pts[m * m + k] - cen[k]);
            double fc = EVAL(tr2);
            if (fc < val[m]) {
                memcpy(&pts[m * m], tr2, m * sizeof(double)), val[m] = fc;
            } else {
                for (size_t i = 1; i <= m; i++) {
                    for (size_t k = 0; k < m; k++)
                        pts[i * m + k] = pts[k] + 0.5 * (pts[i * m + k] - pts[k]);
                    val[i] = EVAL(&pts[i * m]);
                }
            }
        }
    }
#undef EVAL
    size_t bi = 0;
    for (size_t i = 1; i <= m; i++)
        if (val[i] < val[bi]) bi = i;
    memcpy(th, &pts[bi * m], m * sizeof(double));
    double best = -val[bi];
    free(pts), free(val), free(cen), free(tr), free(tr2);
    return best;
}

static double acq_value(int acq, double mu, double sd, double best) {
    switch (acq) {
    case ACQ_EI: {
        double imp = best - mu - 0.01, z = imp / sd;
        return imp * ty_hpo_Phi(z) + sd * ty_hpo_phi(z);
    }
    case ACQ_PI: return ty_hpo_Phi((best - mu - 0.01) / sd);
    default: return -(mu - 1.96 * sd); /* LCB, as a value to maximise */
    }
}

/* The best point of the space for one acquisition: random sampling, then local moves. */
static void maximise_acq(ty_hpo_suggester *s, const gp *g, int acq, double best, double *x_out) {
    size_t dims = s->space->n, nf = g->nf;
    enum { N_RANDOM = 1000, N_TOP = 5, N_LOCAL = 40 };
    double *xs = ty_malloc(N_RANDOM * dims * sizeof(double)), *f = ty_malloc(nf * sizeof(double));
    double *kv = ty_malloc(g->n * sizeof(double)), top_v[N_TOP];
    size_t top_i[N_TOP];
    for (int k = 0; k < N_TOP; k++) top_v[k] = -INFINITY, top_i[k] = 0;
    for (size_t i = 0; i < N_RANDOM; i++) {
        ty_hpo_sample_random(s->space, &s->rng, &xs[i * dims]);
        features(s->space, &xs[i * dims], f);
        double mu, sd;
        gp_predict(g, f, &mu, &sd, kv);
        double a = acq_value(acq, mu, sd, best);
        for (int k = 0; k < N_TOP; k++)
            if (a > top_v[k]) {
                for (int j = N_TOP - 1; j > k; j--) top_v[j] = top_v[j - 1], top_i[j] = top_i[j - 1];
                top_v[k] = a, top_i[k] = i;
                break;
            }
    }
    double overall = -INFINITY, *cur = ty_malloc(dims * sizeof(double)),
           *cand = ty_malloc(dims * sizeof(double));
    for (int k = 0; k < N_TOP; k++) {
        memcpy(cur, &xs[top_i[k] * dims], dims * sizeof(double));
        double cur_v = top_v[k], step = 0.1;
        for (int it = 0; it < N_LOCAL; it++) {
            memcpy(cand, cur, dims * sizeof(double));
            bool moved = false;
            for (size_t d = 0; d < dims; d++) {
                const ty_hpo_param *p = &s->space->params[d];
                if (p->type == TY_HPO_CATEGORICAL || p->type == TY_HPO_DISCRETE) continue;
                double u = ty_hpo_to_unit(p, cur[d]) + step * ty_hpo_rng_normal(&s->rng);
                cand[d] = ty_hpo_from_unit(p, fmin(fmax(u, 0), 1));
                moved = true;
            }
            if (!moved) break;
            features(s->space, cand, f);
            double mu, sd;
            gp_predict(g, f, &mu, &sd, kv);
            double a = acq_value(acq, mu, sd, best);
            if (a > cur_v) memcpy(cur, cand, dims * sizeof(double)), cur_v = a;
            else step *= 0.85;
        }
        if (cur_v > overall) overall = cur_v, memcpy(x_out, cur, dims * sizeof(double));
    }
    free(xs), free(f), free(kv), free(cur), free(cand);
}

static int bo_one(ty_hpo_suggester *s, double *x, int *tag, ty_error *err) {
    (void)tag, (void)err;
    bo_state *b = s->state;
    size_t n_obs = 0, n_run = 0;
    double best = INFINITY;
    for (size_t i = 0; i < s->n_trials; i++) {
        if (ty_hpo_trial_observed(&s->trials[i])) n_obs++, best = fmin(best, s->trials[i].loss);
        else if (s->trials[i].state == TY_HPO_RUNNING) n_run++;
    }
    if ((long long)n_obs < b->n_initial || n_obs == 0) {
        ty_hpo_sample_random(s->space, &s->rng, x);
        return 1;
    }
    size_t nf = b->nf, n = n_obs + n_run;
    double *X = ty_malloc(n * nf * sizeof(double)), *y = ty_malloc(n * sizeof(double));
    size_t k = 0;
    double mean = 0, var = 0;
    for (size_t i = 0; i < s->n_trials; i++) {
        const ty_hpo_trial *t = &s->trials[i];
        bool obs = ty_hpo_trial_observed(t);
        if (!obs && t->state != TY_HPO_RUNNING) continue;
        features(s->space, t->x, &X[k * nf]);
        y[k++] = obs ? t->loss : best; /* the constant liar */
    }
    for (size_t i = 0; i < n; i++) mean += y[i] / (double)n;
    for (size_t i = 0; i < n; i++) var += (y[i] - mean) * (y[i] - mean) / (double)n;
    double sdv = var > 0 ? sqrt(var) : 1;
    for (size_t i = 0; i < n; i++) y[i] = (y[i] - mean) / sdv;
    double ybest = (best - mean) / sdv;
    gp g = {n, nf, X, y, ty_malloc(n * n * sizeof(double)), ty_malloc(n * sizeof(double)), 0, 0,
            ty_malloc(nf * sizeof(double))};
    if (n_obs != b->last_fit_obs) {
        /* refit on new observations only: lies do not move the hyperparameters */
        double *th = ty_malloc((nf + 2) * sizeof(double));
        memcpy(th, b->theta, (nf + 2) * sizeof(double));
        double lml = nelder_mead(&g, th, 40 + 10 * (int)nf);
        if (b->fits % 10 == 0) {
            double *th0 = ty_calloc(nf + 2, sizeof(double));
            double lml0 = nelder_mead(&g, th0, 40 + 10 * (int)nf);
            if (lml0 > lml) memcpy(th, th0, (nf + 2) * sizeof(double));
            free(th0);
        }
        memcpy(b->theta, th, (nf + 2) * sizeof(double));
        free(th);
        b->fits++;
        b->last_fit_obs = n_obs;
        if (b->hedge_pending) {
            /* skopt's hedge: each acquisition's last choice is credited with the new model's
             * prediction there */
            double *kv = ty_malloc(n * sizeof(double)), mu, sd;
            gp_fit(&g, b->theta);
            for (int a = 0; a < 3; a++) {
                gp_predict(&g, &b->hedge_x[a * nf], &mu, &sd, kv);
                b->gains[a] -= mu;
            }
            free(kv);
            b->hedge_pending = false;
        }
    }
    if (gp_fit(&g, b->theta) == -INFINITY) {
        /* a singular matrix (duplicates, no noise): more jitter */
        b->theta[1 + nf] = fmax(b->theta[1 + nf], log(1e-4));
        gp_fit(&g, b->theta);
    }
    if (b->acq == ACQ_HEDGE) {
        double *xa = ty_malloc(3 * s->space->n * sizeof(double));
        for (int a = 0; a < 3; a++) {
            maximise_acq(s, &g, a, ybest, &xa[a * s->space->n]);
            features(s->space, &xa[a * s->space->n], &b->hedge_x[a * nf]);
        }
        double mx = fmax(b->gains[0], fmax(b->gains[1], b->gains[2])), p[3], sum = 0;
        for (int a = 0; a < 3; a++) sum += p[a] = exp(b->gains[a] - mx);
        double u = ty_hpo_rng_uniform(&s->rng) * sum;
        int pick = u < p[0] ? 0 : u < p[0] + p[1] ? 1 : 2;
        memcpy(x, &xa[pick * s->space->n], s->space->n * sizeof(double));
        b->hedge_pending = true;
        free(xa);
    } else {
        maximise_acq(s, &g, b->acq, ybest, x);
    }
    free(X), free(y), free(g.L), free(g.alpha), free(g.inv_ls);
    return 1;
}

const ty_hpo_algo ty_hpo_algo_bo = {"bayesianoptimization", bo_init, bo_free, bo_one, NULL};
