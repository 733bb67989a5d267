/* TPE as Optuna's TPESampler builds it (Katib's "tpe" and "multivariate-tpe", constant liar on).
 *
 * Settings (Katib's): n_startup_trials (10), n_ei_candidates (24), random_state. Optuna's other
 * defaults hold: gamma(n) = min(ceil(0.1 n), 25); weights 1 for the 25 newest trials of a group
 * and a ramp from 1/n for the older ones; a prior kernel (mean the middle of the range, sigma the
 * range, weight 1); the "magic clip" of sigmas to [range / min(100, 1 + kernels), range];
 * endpoints not considered. Univariate: each parameter on its own, sigmas from the gaps to the
 * neighbouring observations. Multivariate: one joint estimator whose sigmas are
 * 0.2 n^(-1/(d+4)) x range. Running trials join the "above" group (the constant liar), so that
 * concurrent suggestions move away from each other.
 *
 * Kernel densities are Optuna 3.1's (Debian's): its truncated normal's log density leaves out the
 * scale (_truncnorm.logpdf has no - log(sigma)), so a kernel weighs by its weight alone, wide or
 * narrow; stepped values (ints, doubles with a step) are scored by their bucket's mass, which is
 * scaled. We keep that: it is the sampler Katib's users get from Debian's Optuna, and on bench/
 * hpo.sh's functions it finds better points than the scaled density (docs/hpo.md).
 *
 * Incremental state, for the cost at trial 1,000: the observed trials sorted by loss and, per
 * parameter, every considered trial sorted by coordinate, both kept by insertion. A suggestion
 * then needs no sort: the above-group estimator of a parameter is a filter of its sorted array,
 * and a candidate's density under it sums only the kernels within 8.5 sigmas: beside the prior,
 * what is left out is below 2n e^-36 of the density. Candidates get an upper bound of their
 * score first (kernels within 2.5 sigmas only) and full sums in the order of those bounds, until
 * no bound can beat the best. */
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "hpo/hpo_int.h"

#define LOG_SQRT_2PI 0.9189385332046727

typedef struct coord {
    double v;
    size_t id;
} coord;

typedef struct tpe_state {
    bool multivariate;
    long long n_startup, n_ei;
    size_t *obs_order; /* observed trial ids by (loss, id) */
    size_t n_obs, cap_obs;
    coord **sorted; /* per parameter: considered trials by internal coordinate */
    size_t n_sorted, cap_sorted;
    bool *in_sorted;   /* per trial id */
    size_t cap_in;
    ty_hpo_axis *axes; /* per parameter */
    /* scratch, per suggestion */
    char *group;    /* per trial id: 0 not considered, 'b' below, 'a' above */
    double *weight; /* per trial id: its weight within its group, unnormalised */
} tpe_state;

static int tpe_init_common(ty_hpo_suggester *s, const ty_hpo_setting *st, size_t n,
                           bool multivariate, ty_error *err) {
    const char *name = multivariate ? "multivariate-tpe" : "tpe";
    long long n_startup = 10, n_ei = 24;
    for (size_t i = 0; i < n; i++) {
        int rc = ty_hpo_setting_seed(s, &st[i], err);
        if (rc < 0) return -1;
        if (rc == 1) continue;
        if (strcmp(st[i].name, "n_startup_trials") == 0) {
            if (ty_hpo_setting_int(&st[i], 0, &n_startup, err) < 0) return -1;
        } else if (strcmp(st[i].name, "n_ei_candidates") == 0) {
            if (ty_hpo_setting_int(&st[i], 0, &n_ei, err) < 0) return -1;
            if (n_ei == 0) n_ei = 1; /* Optuna needs one candidate at least */
        } else {
            return ty_hpo_unknown_setting(&st[i], name, err);
        }
    }
    tpe_state *t = TY_NEW(tpe_state);
    t->multivariate = multivariate;
    t->n_startup = n_startup;
    t->n_ei = n_ei;
    t->sorted = ty_calloc(s->space->n ? s->space->n : 1, sizeof *t->sorted);
    t->axes = ty_calloc(s->space->n ? s->space->n : 1, sizeof *t->axes);
    for (size_t d = 0; d < s->space->n; d++) ty_hpo_axis_of(&s->space->params[d], &t->axes[d]);
    s->state = t;
    return 0;
}

static int tpe_init(ty_hpo_suggester *s, const ty_hpo_setting *st, size_t n, ty_error *err) {
    return tpe_init_common(s, st, n, false, err);
}
static int mtpe_init(ty_hpo_suggester *s, const ty_hpo_setting *st, size_t n, ty_error *err) {
    return tpe_init_common(s, st, n, true, err);
}

static void tpe_free(ty_hpo_suggester *s) {
    tpe_state *t = s->state;
    if (!t) return;
    for (size_t d = 0; d < s->space->n; d++) free(t->sorted[d]);
    free(t->sorted);
    free(t->axes);
    free(t->obs_order);
    free(t->in_sorted);
    free(t->group);
    free(t->weight);
    free(t);
}

static bool loss_before(const ty_hpo_trial *tr, size_t a, size_t b) {
    return tr[a].loss < tr[b].loss || (tr[a].loss == tr[b].loss && a < b);
}

static double internal_of(const tpe_state *t, const ty_hpo_param *p, size_t d, double v) {
    if (p->type == TY_HPO_CATEGORICAL || p->type == TY_HPO_DISCRETE) return v;
    return ty_hpo_axis_internal(&t->axes[d], v);
}

static void tpe_update(ty_hpo_suggester *s, size_t id, ty_hpo_trial_state old) {
    tpe_state *t = s->state;
    ty_hpo_trial *tr = s->trials;
    if (id >= t->cap_in) {
        size_t cap = t->cap_in ? t->cap_in : 64;
        while (cap <= id) cap *= 2;
        t->in_sorted = ty_realloc(t->in_sorted, cap * sizeof *t->in_sorted);
        memset(t->in_sorted + t->cap_in, 0, (cap - t->cap_in) * sizeof *t->in_sorted);
        t->group = ty_realloc(t->group, cap);
        t->weight = ty_realloc(t->weight, cap * sizeof *t->weight);
        t->cap_in = cap;
    }
    /* a trial reported again: its loss may have changed */
    for (size_t i = 0; (old == TY_HPO_COMPLETED || old == TY_HPO_EARLY_STOPPED) && i < t->n_obs; i++)
        if (t->obs_order[i] == id) {
            /* its loss may have changed: take it out, put it back below */
            memmove(&t->obs_order[i], &t->obs_order[i + 1], (t->n_obs - i - 1) * sizeof(size_t));
            t->n_obs--;
            break;
        }
    if (ty_hpo_trial_observed(&tr[id])) {
        if (t->n_obs == t->cap_obs) {
            t->cap_obs = t->cap_obs ? 2 * t->cap_obs : 64;
            t->obs_order = ty_realloc(t->obs_order, t->cap_obs * sizeof(size_t));
        }
        size_t lo = 0, hi = t->n_obs;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (loss_before(tr, t->obs_order[mid], id)) lo = mid + 1;
            else hi = mid;
        }
        memmove(&t->obs_order[lo + 1], &t->obs_order[lo], (t->n_obs - lo) * sizeof(size_t));
        t->obs_order[lo] = id;
        t->n_obs++;
    }
    bool considered = tr[id].state != TY_HPO_FAILED &&
                      (tr[id].state == TY_HPO_RUNNING || ty_hpo_trial_observed(&tr[id]));
    if (considered == t->in_sorted[id]) return;
    size_t dims = s->space->n;
    if (considered) {
        if (t->n_sorted == t->cap_sorted) {
            t->cap_sorted = t->cap_sorted ? 2 * t->cap_sorted : 64;
            for (size_t d = 0; d < dims; d++)
                t->sorted[d] = ty_realloc(t->sorted[d], t->cap_sorted * sizeof(coord));
        }
        for (size_t d = 0; d < dims; d++) {
            coord c = {internal_of(t, &s->space->params[d], d, tr[id].x[d]), id};
            coord *a = t->sorted[d];
            size_t lo = 0, hi = t->n_sorted;
            while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                if (a[mid].v < c.v || (a[mid].v == c.v && a[mid].id < id)) lo = mid + 1;
                else hi = mid;
            }
            memmove(&a[lo + 1], &a[lo], (t->n_sorted - lo) * sizeof(coord));
            a[lo] = c;
        }
        t->n_sorted++;
    } else {
        for (size_t d = 0; d < dims; d++) {
            coord *a = t->sorted[d];
            for (size_t i = 0; i < t->n_sorted; i++)
                if (a[i].id == id) {
                    memmove(&a[i], &a[i + 1], (t->n_sorted - i - 1) * sizeof(coord));
                    break;
                }
        }
        t->n_sorted--;
    }
    t->in_sorted[id] = considered;
}

/* Optuna's default_weights for the member of rank `r` (0 oldest) of a group of n. */
static double default_weight(size_t r, size_t n) {
    if (n < 25 || r >= n - 25) return 1.0;
    size_t m = n - 25;
    return m == 1 ? 1.0 / (double)n : 1.0 / (double)n + (1.0 - 1.0 / (double)n) * (double)r / (double)(m - 1);
}

/* Splits the considered trials into below and above and weighs them (t->group, t->weight).
 * Returns the sizes. */
static void split_groups(ty_hpo_suggester *s, size_t *nb, size_t *na) {
    tpe_state *t = s->state;
    /* gamma counts finished trials only (Optuna ignores running ones there) */
    size_t n_below = (size_t)ceil(0.1 * (double)t->n_obs);
    if (n_below > 25) n_below = 25;
    memset(t->group, 0, s->n_trials);
    size_t taken = 0;
    for (size_t i = 0; i < t->n_obs && taken < n_below; i++, taken++) t->group[t->obs_order[i]] = 'b';
    /* running trials lie with the worst loss; oldest first when they must fill the below group */
    for (size_t id = 0; id < s->n_trials && taken < n_below; id++)
        if (t->in_sorted[id] && !t->group[id] && s->trials[id].state == TY_HPO_RUNNING)
            t->group[id] = 'b', taken++;
    size_t n_above = 0;
    for (size_t id = 0; id < s->n_trials; id++)
        if (t->in_sorted[id] && !t->group[id]) t->group[id] = 'a', n_above++;
    size_t rb = 0, ra = 0;
    for (size_t id = 0; id < s->n_trials; id++) {
        if (t->group[id] == 'b') t->weight[id] = default_weight(rb++, taken);
        else if (t->group[id] == 'a') t->weight[id] = default_weight(ra++, n_above);
    }
    *nb = taken;
    *na = n_above;
}

/* A one-parameter Parzen estimator over [lo, hi]: kernels sorted by mu. For densities the
 * kernels are also filed by width, in classes of sigma within a factor two (sorted by mu in
 * each): a candidate then sums, per class, only the kernels within 8.5 of the class's widest
 * sigma, found by bisection. */
#define N_CLASSES 16

typedef struct kclass {
    size_t n;
    double *mu, *inv_sigma, *c; /* c: log weight - log Z (Z: the truncation's mass) */
    double smax;
} kclass;

typedef struct parzen1 {
    size_t n;
    double *mu, *sigma, *w, *cum_w; /* w: the raw weights; cum_w: normalised, cumulative */
    kclass cls[N_CLASSES];
    double lo, hi, q; /* q: the step of a stepped (not log) parameter, else 0 */
} parzen1;

static void parzen1_free(parzen1 *p) {
    free(p->mu), free(p->sigma), free(p->w), free(p->cum_w);
    for (int c = 0; c < N_CLASSES; c++)
        free(p->cls[c].mu), free(p->cls[c].inv_sigma), free(p->cls[c].c);
}

/* From observations already sorted by mu, with their raw weights; adds the prior. */
static void parzen1_build(parzen1 *p, const double *mus, const double *ws, size_t n_obs, double lo,
                          double hi, double q) {
    size_t n = n_obs + 1;
    memset(p, 0, sizeof *p);
    p->n = n;
    p->lo = lo, p->hi = hi, p->q = q;
    p->mu = ty_malloc(n * sizeof(double));
    p->sigma = ty_malloc(n * sizeof(double));
    p->w = ty_malloc(n * sizeof(double));
    p->cum_w = ty_malloc(n * sizeof(double));
    double range = hi - lo;
    double minsigma = range / fmin(100.0, 1.0 + (double)n), maxsigma = range;
    double prior_mu = 0.5 * (lo + hi);
    /* the prior goes in at its place in the order: Optuna counts it among the neighbours */
    size_t ppos = 0;
    while (ppos < n_obs && mus[ppos] < prior_mu) ppos++;
    double wsum = 1.0;
    for (size_t i = 0; i < n_obs; i++) wsum += ws[i];
    double cum = 0, log_wsum = log(wsum);
    for (size_t i = 0, k = 0; k < n; k++) {
        double w = k == ppos ? 1.0 : ws[i]; /* raw; normalised by wsum where used */
        p->mu[k] = k == ppos ? prior_mu : mus[i++];
        p->w[k] = w;
        p->cum_w[k] = cum += w / wsum;
    }
    /* sigma: the larger gap to a neighbour (lo and hi at the ends); the outermost kernels take
     * their inner gap (Optuna's consider_endpoints=False) */
    size_t count[N_CLASSES] = {0};
    unsigned char *cls = ty_malloc(n);
    for (size_t k = 0; k < n; k++) {
        double left = k > 0 ? p->mu[k - 1] : lo, right = k + 1 < n ? p->mu[k + 1] : hi;
        double sg = fmax(p->mu[k] - left, right - p->mu[k]);
        if (n >= 2) {
            if (k == 0) sg = p->mu[1] - p->mu[0];
            else if (k == n - 1) sg = p->mu[n - 1] - p->mu[n - 2];
        }
        p->sigma[k] = k == ppos ? range : fmin(fmax(sg, minsigma), maxsigma);
        /* class 0: the clipped ones (most, where trials crowd); then factors of sqrt 2 */
        int c = p->sigma[k] <= minsigma ? 0
                : minsigma > 0 ? 1 + (int)floor(2 * log2(p->sigma[k] / minsigma))
                               : N_CLASSES - 1;
        cls[k] = (unsigned char)(c < 0 ? 0 : c >= N_CLASSES ? N_CLASSES - 1 : c);
        count[cls[k]]++;
    }
    for (int c = 0; c < N_CLASSES; c++) {
        kclass *kc = &p->cls[c];
        kc->mu = ty_malloc((count[c] ? count[c] : 1) * sizeof(double));
        kc->inv_sigma = ty_malloc((count[c] ? count[c] : 1) * sizeof(double));
        kc->c = ty_malloc((count[c] ? count[c] : 1) * sizeof(double));
    }
    for (size_t k = 0; k < n; k++) {
        kclass *kc = &p->cls[cls[k]];
        double sg = p->sigma[k], a = (lo - p->mu[k]) / sg, b = (hi - p->mu[k]) / sg;
        /* far from both ends the truncation changes nothing: skip the erfc */
        double lognorm = (a < -8 && b > 8) ? 0 : log(fmax(ty_hpo_Phi(b) - ty_hpo_Phi(a), 1e-300));
        kc->mu[kc->n] = p->mu[k];
        kc->inv_sigma[kc->n] = 1 / sg;
        /* most weights are 1 (Optuna's newest 25 and the prior): their log is -log(wsum) */
        kc->c[kc->n] = (p->w[k] == 1.0 ? 0 : log(p->w[k])) - log_wsum - lognorm;
        kc->n++;
        kc->smax = sg > kc->smax ? sg : kc->smax;
    }
    free(cls);
}

/* e^t for t <= 0, to about 1e-15 relative: 2^(n/32) e^r with |r| <= ln2/64, the 2^(j/32) from a
 * table and e^r from a degree-5 polynomial. No libm call, few flops: the density loops are most
 * of a suggestion's cost deep into an experiment. Below -708 it returns 0. */
static const double exp2_32nds[32] = {
    1.0, 1.0218971486541166, 1.0442737824274138, 1.0671404006768237,
    1.0905077326652577, 1.1143867425958924, 1.1387886347566916, 1.1637248587775775,
    1.189207115002721, 1.215247359980469, 1.241857812073484, 1.2690509571917332,
    1.2968395546510096, 1.3252366431597413, 1.3542555469368927, 1.383909881963832,
    1.4142135623730951, 1.4451808069770467, 1.4768261459394993, 1.5091644275934228,
    1.5422108254079407, 1.5759808451078865, 1.6104903319492543, 1.645755478153965,
    1.681792830507429, 1.718619298122478, 1.7562521603732995, 1.7947090750031072,
    1.8340080864093424, 1.8741676341103, 1.9152065613971474, 1.9571441241754002};

static inline double exp_nonpos(double t) {
    if (t < -708) return 0;
    /* round to nearest by the 1.5 x 2^52 trick: nearbyint is a libm call on baseline x86-64 */
    double nd = (t * 46.16624130844683 + 6755399441055744.0) - 6755399441055744.0;
    int64_t n = (int64_t)nd;
    double r = (t - nd * 0.021660849392498290) - nd * 7.2470212932696863e-19;
    double p = 1 + r * (1 + r * (0.5 + r * (1.0 / 6 + r * (1.0 / 24 + r * (1.0 / 120)))));
    union { double d; uint64_t u; } scale = {.u = (uint64_t)((n >> 5) + 1023) << 52};
    return p * exp2_32nds[n & 31] * scale.d;
}

/* log(Phi(b) - Phi(a)) for a <= b, from the side where it does not cancel (Optuna's
 * _log_gauss_mass). */
static double log_gauss_mass(double a, double b) {
    const double r = 0.7071067811865476;
    double m;
    if (b <= 0) m = 0.5 * (erfc(-b * r) - erfc(-a * r));
    else if (a >= 0) m = 0.5 * (erfc(a * r) - erfc(b * r));
    else m = 1 - 0.5 * erfc(-a * r) - 0.5 * erfc(b * r);
    return m > 0 ? log(m) : -INFINITY;
}

static size_t lower_bound(const double *a, size_t n, double v) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (a[mid] < v) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* log density at x. What the windows leave out is each below e^-36 of its kernel's peak; the
 * prior kernel, always in, is worth at least half of any kernel's peak, so for n trials what is
 * left out is under 2n e^-36 (5e-13 at n = 1,000) of the density. */
static double parzen1_logpdf_within(const parzen1 *p, double x, double sigmas) {
    /* pass 1: the exponents, and their maximum; pass 2: the sum, rescaled on the fly when the
     * buffer fills (rarely: only a crowd of kernels within the windows) */
    enum { CHUNK = 512 };
    double terms[CHUNK], mx = -INFINITY, sum = 0;
    size_t nt = 0;
    for (int c = 0; c < N_CLASSES; c++) {
        const kclass *kc = &p->cls[c];
        if (!kc->n) continue;
        double w = sigmas * kc->smax;
        size_t from = lower_bound(kc->mu, kc->n, x - w), to = lower_bound(kc->mu, kc->n, x + w);
        if (to < kc->n && kc->mu[to] <= x + w) to++;
        const double *mu = kc->mu, *inv = kc->inv_sigma, *cc = kc->c;
        /* a stepped value's bucket, within the bounds */
        double xlo = x - p->q / 2 < p->lo ? p->lo : x - p->q / 2;
        double xhi = x + p->q / 2 > p->hi ? p->hi : x + p->q / 2;
        for (size_t k = from; k < to; k++) {
            if (nt == CHUNK) {
                double m2 = mx;
                for (size_t i = 0; i < nt; i++) m2 = terms[i] > m2 ? terms[i] : m2;
                sum = sum > 0 ? sum * exp_nonpos(mx - m2) : 0;
                for (size_t i = 0; i < nt; i++) sum += exp_nonpos(terms[i] - m2);
                mx = m2, nt = 0;
            }
            double z = (x - mu[k]) * inv[k];
            terms[nt++] = p->q > 0 ? cc[k] + log_gauss_mass((xlo - mu[k]) * inv[k],
                                                             (xhi - mu[k]) * inv[k])
                                   : cc[k] - LOG_SQRT_2PI - 0.5 * z * z;
        }
    }
    double m2 = mx;
    for (size_t i = 0; i < nt; i++) m2 = terms[i] > m2 ? terms[i] : m2;
    if (m2 == -INFINITY) return -INFINITY;
    sum = sum > 0 ? sum * exp_nonpos(mx - m2) : 0;
    for (size_t i = 0; i < nt; i++) sum += exp_nonpos(terms[i] - m2);
    return m2 + log(sum);
}

static double parzen1_logpdf(const parzen1 *p, double x) { return parzen1_logpdf_within(p, x, 8.5); }

double ty_hpo_tpe_logpdf1(const double *sorted_mus, const double *weights, size_t n, double lo,
                          double hi, double step, double x) {
    parzen1 p;
    parzen1_build(&p, sorted_mus, weights, n, lo, hi, step);
    double v = parzen1_logpdf(&p, x);
    parzen1_free(&p);
    return v;
}

static size_t pick_kernel(const double *cum, size_t n, ty_hpo_rng *rng) {
    double u = ty_hpo_rng_uniform(rng) * cum[n - 1];
    size_t lo = 0, hi = n - 1;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cum[mid] <= u) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

static double sample_truncnorm(ty_hpo_rng *rng, double mu, double sigma, double lo, double hi) {
    for (int i = 0; i < 100; i++) {
        double v = mu + sigma * ty_hpo_rng_normal(rng);
        if (v >= lo && v <= hi) return v;
    }
    return fmin(fmax(mu, lo), hi);
}

/* Categorical: the mixture's probability of each choice, Optuna's kernel rows (prior_weight /
 * n_kernels on every choice, +1 on the observed one, normalised) summed with the weights. */
static void cat_probs(const ty_hpo_suggester *s, size_t d, char grp, size_t n_group, double *pr) {
    const tpe_state *t = s->state;
    size_t C = s->space->params[d].n_list;
    double nk = (double)n_group + 1, a = 1.0 / nk, norm = 1 + (double)C * a;
    double wsum = 1.0, wobs = 0;
    for (size_t c = 0; c < C; c++) pr[c] = 0;
    for (size_t id = 0; id < s->n_trials; id++)
        if (t->group[id] == grp) {
            pr[(size_t)s->trials[id].x[d]] += t->weight[id];
            wobs += t->weight[id];
        }
    wsum += wobs;
    for (size_t c = 0; c < C; c++)
        pr[c] = ((a * wobs + pr[c]) / norm + 1.0 / (double)C) / wsum;
}

static void suggest_categorical(ty_hpo_suggester *s, size_t d, size_t nb, size_t na, double *x) {
    tpe_state *t = s->state;
    size_t C = s->space->params[d].n_list;
    double *pb = ty_malloc(C * sizeof *pb), *pa = ty_malloc(C * sizeof *pa),
           *cum = ty_malloc(C * sizeof *cum);
    cat_probs(s, d, 'b', nb, pb);
    cat_probs(s, d, 'a', na, pa);
    double c = 0;
    for (size_t k = 0; k < C; k++) cum[k] = (c += pb[k]);
    double best = -INFINITY, bestc = 0;
    for (long long i = 0; i < t->n_ei; i++) {
        size_t k = pick_kernel(cum, C, &s->rng);
        double score = log(pb[k]) - log(pa[k]);
        if (score > best) best = score, bestc = (double)k;
    }
    *x = bestc;
    free(pb), free(pa), free(cum);
}

static void suggest_numeric(ty_hpo_suggester *s, size_t d, size_t nb, size_t na, double *x) {
    tpe_state *t = s->state;
    const ty_hpo_axis *ax = &t->axes[d];
    const coord *sorted = t->sorted[d];
    double *bm = ty_malloc((nb + 1) * sizeof(double)), *bw = ty_malloc((nb + 1) * sizeof(double));
    double *am = ty_malloc((na + 1) * sizeof(double)), *aw = ty_malloc((na + 1) * sizeof(double));
    size_t ib = 0, ia = 0;
    for (size_t i = 0; i < t->n_sorted; i++) {
        size_t id = sorted[i].id;
        if (t->group[id] == 'b') bm[ib] = sorted[i].v, bw[ib++] = t->weight[id];
        else if (t->group[id] == 'a') am[ia] = sorted[i].v, aw[ia++] = t->weight[id];
    }
    parzen1 below, above;
    /* stepped values (ints, doubles with a step, not log) are scored by their bucket's mass */
    double q = ax->step > 0 && !ax->log ? ax->step : 0;
    parzen1_build(&below, bm, bw, ib, ax->lo, ax->hi, q);
    parzen1_build(&above, am, aw, ia, ax->lo, ax->hi, q);
    const ty_hpo_param *p = &s->space->params[d];
    size_t nc = (size_t)t->n_ei;
    double *cand = ty_malloc(nc * sizeof(double)), *lb = ty_malloc(nc * sizeof(double)),
           *upper = ty_malloc(nc * sizeof(double));
    size_t *order = ty_malloc(nc * sizeof(size_t));
    for (size_t i = 0; i < nc; i++) {
        size_t k = pick_kernel(below.cum_w, below.n, &s->rng);
        double v = sample_truncnorm(&s->rng, below.mu[k], below.sigma[k], ax->lo, ax->hi);
        /* a stepped value is scored where it will be: at its grid point */
        cand[i] = ty_hpo_axis_internal(ax, ty_hpo_axis_value(p, ax, v));
        lb[i] = parzen1_logpdf(&below, cand[i]);
        /* the kernels within 2.5 sigmas give a lower bound of g, so an upper bound of the
         * score */
        upper[i] = lb[i] - parzen1_logpdf_within(&above, cand[i], 2.5);
        order[i] = i;
    }
    /* full sums in the order of the bounds, until no bound can beat the best: the argmax is
     * Optuna's, ties going to the first candidate */
    for (size_t i = 1; i < nc; i++)
        for (size_t j = i; j > 0 && upper[order[j]] > upper[order[j - 1]]; j--) {
            size_t tmp = order[j];
            order[j] = order[j - 1], order[j - 1] = tmp;
        }
    double best = -INFINITY;
    size_t best_i = 0;
    for (size_t r = 0; r < nc; r++) {
        size_t i = order[r];
        if (r > 0 && upper[i] < best) break;
        double score = lb[i] - parzen1_logpdf(&above, cand[i]);
        if (score > best || (score == best && i < best_i)) best = score, best_i = i;
    }
    double bestv = cand[best_i];
    free(cand), free(lb), free(upper), free(order);
    *x = ty_hpo_axis_value(p, ax, bestv);
    parzen1_free(&below), parzen1_free(&above);
    free(bm), free(bw), free(am), free(aw);
}

/* ---- multivariate: one joint estimator per group ---- */

typedef struct parzenm {
    size_t n, dims;
    double *mu;         /* n x dims (internal coordinates; categoricals: the index) */
    size_t *ids;        /* the trial of each kernel; SIZE_MAX for the prior */
    double *logw, *cum_w;
    double *sigma;      /* dims: observation kernels; the prior's is the range */
    double *lognorm;    /* n x dims */
    size_t n_group;
} parzenm;

static void parzenm_build(const ty_hpo_suggester *s, char grp, size_t n_group, parzenm *p) {
    const tpe_state *t = s->state;
    size_t dims = s->space->n, n = n_group + 1;
    p->n = n, p->dims = dims, p->n_group = n_group;
    p->mu = ty_malloc(n * dims * sizeof(double));
    p->ids = ty_malloc(n * sizeof(size_t));
    p->logw = ty_malloc(n * sizeof(double));
    p->cum_w = ty_malloc(n * sizeof(double));
    p->sigma = ty_malloc((dims ? dims : 1) * sizeof(double));
    p->lognorm = ty_malloc(n * (dims ? dims : 1) * sizeof(double));
    double wsum = 1;
    size_t k = 0;
    for (size_t id = 0; id < s->n_trials; id++)
        if (t->group[id] == grp) {
            for (size_t d = 0; d < dims; d++)
                p->mu[k * dims + d] = internal_of(t, &s->space->params[d], d, s->trials[id].x[d]);
            p->ids[k] = id;
            p->logw[k] = t->weight[id];
            wsum += t->weight[id];
            k++;
        }
    p->ids[k] = SIZE_MAX;
    p->logw[k] = 1.0;
    for (size_t d = 0; d < dims; d++) {
        const ty_hpo_axis *ax = &t->axes[d];
        p->mu[k * dims + d] = 0.5 * (ax->lo + ax->hi);
        double range = ax->hi - ax->lo;
        double sg = 0.2 * pow(fmax((double)n_group, 1.0), -1.0 / ((double)dims + 4)) * range;
        double minsigma = range / fmin(100.0, 1.0 + (double)n);
        p->sigma[d] = fmin(fmax(sg, minsigma), range);
    }
    double c = 0;
    for (size_t i = 0; i < n; i++) {
        c += p->logw[i] / wsum;
        p->cum_w[i] = c;
        p->logw[i] = log(p->logw[i] / wsum);
        for (size_t d = 0; d < dims; d++) {
            const ty_hpo_axis *ax = &t->axes[d];
            double sg = i == n - 1 ? ax->hi - ax->lo : p->sigma[d], m = p->mu[i * dims + d];
            double a = (ax->lo - m) / sg, b = (ax->hi - m) / sg;
            p->lognorm[i * dims + d] =
                (a < -8 && b > 8) ? 0 : log(fmax(ty_hpo_Phi(b) - ty_hpo_Phi(a), 1e-300));
        }
    }
}

static void parzenm_free(parzenm *p) {
    free(p->mu), free(p->ids), free(p->logw), free(p->cum_w), free(p->sigma), free(p->lognorm);
}

static double parzenm_logpdf(const ty_hpo_suggester *s, const parzenm *p, const double *x,
                             double *scratch) {
    const tpe_state *t = s->state;
    size_t dims = p->dims;
    double mx = -INFINITY;
    for (size_t i = 0; i < p->n; i++) {
        double l = p->logw[i];
        for (size_t d = 0; d < dims; d++) {
            const ty_hpo_param *pp = &s->space->params[d];
            if (pp->type == TY_HPO_CATEGORICAL || pp->type == TY_HPO_DISCRETE) {
                double C = (double)pp->n_list, a = 1.0 / (double)p->n;
                if (i == p->n - 1) l += -log(C);
                else l += log(((x[d] == p->mu[i * dims + d] ? 1 : 0) + a) / (1 + C * a));
            } else {
                const ty_hpo_axis *ax = &t->axes[d];
                double sg = i == p->n - 1 ? ax->hi - ax->lo : p->sigma[d];
                double m = p->mu[i * dims + d];
                if (ax->step > 0 && !ax->log) {
                    double lo = fmax(x[d] - ax->step / 2, ax->lo), hi = fmin(x[d] + ax->step / 2, ax->hi);
                    l += log_gauss_mass((lo - m) / sg, (hi - m) / sg) - p->lognorm[i * dims + d];
                } else {
                    /* Optuna 3.1's kernel density: without the 1/sigma (see the top) */
                    double z = (x[d] - m) / sg;
                    l += -LOG_SQRT_2PI - 0.5 * z * z - p->lognorm[i * dims + d];
                }
            }
        }
        scratch[i] = l;
        if (l > mx) mx = l;
    }
    double sum = 0;
    for (size_t i = 0; i < p->n; i++) sum += exp(scratch[i] - mx);
    return mx + log(sum);
}

static void suggest_joint(ty_hpo_suggester *s, size_t nb, size_t na, double *x) {
    tpe_state *t = s->state;
    size_t dims = s->space->n;
    parzenm below, above;
    parzenm_build(s, 'b', nb, &below);
    parzenm_build(s, 'a', na, &above);
    double *cand = ty_malloc(dims * sizeof(double)), *best_x = ty_malloc(dims * sizeof(double));
    double *scratch = ty_malloc((below.n > above.n ? below.n : above.n) * sizeof(double));
    double best = -INFINITY;
    for (long long c = 0; c < t->n_ei; c++) {
        size_t k = pick_kernel(below.cum_w, below.n, &s->rng);
        for (size_t d = 0; d < dims; d++) {
            const ty_hpo_param *pp = &s->space->params[d];
            const ty_hpo_axis *ax = &t->axes[d];
            if (pp->type == TY_HPO_CATEGORICAL || pp->type == TY_HPO_DISCRETE) {
                size_t C = pp->n_list;
                double a = 1.0 / (double)below.n, norm = 1 + (double)C * a;
                if (k == below.n - 1 || ty_hpo_rng_uniform(&s->rng) >= 1.0 / norm)
                    cand[d] = (double)ty_hpo_rng_below(&s->rng, C);
                else
                    cand[d] = below.mu[k * dims + d];
            } else {
                double sg = k == below.n - 1 ? ax->hi - ax->lo : below.sigma[d];
                double v = sample_truncnorm(&s->rng, below.mu[k * dims + d], sg, ax->lo, ax->hi);
                cand[d] = ty_hpo_axis_internal(ax, ty_hpo_axis_value(pp, ax, v));
            }
        }
        double score = parzenm_logpdf(s, &below, cand, scratch) -
                       parzenm_logpdf(s, &above, cand, scratch);
        if (score > best) best = score, memcpy(best_x, cand, dims * sizeof(double));
    }
    for (size_t d = 0; d < dims; d++) {
        const ty_hpo_param *pp = &s->space->params[d];
        x[d] = (pp->type == TY_HPO_CATEGORICAL || pp->type == TY_HPO_DISCRETE)
                   ? best_x[d]
                   : ty_hpo_axis_value(pp, &t->axes[d], best_x[d]);
    }
    free(cand), free(best_x), free(scratch);
    parzenm_free(&below), parzenm_free(&above);
}

static int tpe_one(ty_hpo_suggester *s, double *x, int *tag, ty_error *err) {
    (void)tag, (void)err;
    tpe_state *t = s->state;
    /* Optuna counts finished trials only against n_startup_trials */
    if ((long long)t->n_obs < t->n_startup || t->n_obs == 0) {
        ty_hpo_sample_random(s->space, &s->rng, x);
        return 1;
    }
    size_t nb, na;
    split_groups(s, &nb, &na);
    if (t->multivariate) {
        suggest_joint(s, nb, na, x);
        return 1;
    }
    for (size_t d = 0; d < s->space->n; d++) {
        const ty_hpo_param *p = &s->space->params[d];
        if (p->type == TY_HPO_CATEGORICAL || p->type == TY_HPO_DISCRETE)
            suggest_categorical(s, d, nb, na, &x[d]);
        else
            suggest_numeric(s, d, nb, na, &x[d]);
    }
    return 1;
}

const ty_hpo_algo ty_hpo_algo_tpe = {"tpe", tpe_init, tpe_free, tpe_one, tpe_update};
const ty_hpo_algo ty_hpo_algo_mtpe = {"multivariate-tpe", mtpe_init, tpe_free, tpe_one,
                                      tpe_update};
