/* Private to src/hpo: the random generator, the unit-cube transform shared by the samplers,
 * the suggester's trial table and the algorithm table. */
#ifndef TY_HPO_INT_H
#define TY_HPO_INT_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>

#include "hpo/space.h"
#include "hpo/suggest.h"

/* xoshiro256**: small, fast, and the same sequence on every machine for one seed. */
typedef struct ty_hpo_rng {
    uint64_t s[4];
} ty_hpo_rng;

void ty_hpo_rng_seed(ty_hpo_rng *r, uint64_t seed);
uint64_t ty_hpo_rng_next(ty_hpo_rng *r);
double ty_hpo_rng_uniform(ty_hpo_rng *r); /* [0, 1) */
double ty_hpo_rng_normal(ty_hpo_rng *r);  /* N(0, 1) */
size_t ty_hpo_rng_below(ty_hpo_rng *r, size_t n); /* [0, n) */

/* Numeric parameters seen as an interval [lo, hi] of the "internal" axis: log(value) for
 * log-uniform ones, widened by half a step on each side for ints and stepped doubles so that
 * every grid value owns an equal share of it. */
typedef struct ty_hpo_axis {
    double lo, hi;
    double step; /* in value units; 0: continuous */
    bool log;
    bool is_int;
} ty_hpo_axis;

void ty_hpo_axis_of(const ty_hpo_param *p, ty_hpo_axis *a);
/* An internal coordinate back to a valid value: inverse log, snapped to the step and clipped. */
double ty_hpo_axis_value(const ty_hpo_param *p, const ty_hpo_axis *a, double internal);
/* A valid value to its internal coordinate. */
double ty_hpo_axis_internal(const ty_hpo_axis *a, double value);
/* The unit cube: internal coordinate mapped to [0, 1], and back (categoricals: index buckets). */
double ty_hpo_to_unit(const ty_hpo_param *p, double value);
double ty_hpo_from_unit(const ty_hpo_param *p, double u);
/* One point drawn as Optuna's RandomSampler draws it. */
void ty_hpo_sample_random(const ty_hpo_space *space, ty_hpo_rng *rng, double *x);

/* Standard normal helpers. */
static inline double ty_hpo_phi(double z) { return 0.3989422804014327 * exp(-0.5 * z * z); }
static inline double ty_hpo_Phi(double z) { return 0.5 * erfc(-z * 0.7071067811865476); }

typedef struct ty_hpo_trial {
    double *x;
    double value; /* as reported */
    double loss;  /* value to minimise: -value when the goal is maximize */
    ty_hpo_trial_state state;
    int tag; /* the algorithm's own mark: a CMA-ES generation, a hyperband rung */
} ty_hpo_trial;

typedef struct ty_hpo_algo ty_hpo_algo;

struct ty_hpo_suggester {
    const ty_hpo_algo *algo;
    ty_hpo_space *space; /* a copy: owned */
    ty_hpo_options opt;
    ty_hpo_rng rng;
    ty_hpo_trial *trials;
    size_t n_trials, cap_trials;
    void *state; /* the algorithm's */
};

/* Every algorithm: settings checked and read by init (which also sets s->state); suggest_one
 * proposes one point into x: 1 proposed, 0 none now (grid exhausted, hyperband waiting for its
 * rung), -1 with err. `tag` is stored with the trial. on_update: a trial was added or its state
 * or value changed (incremental state), may be NULL. */
struct ty_hpo_algo {
    const char *name;
    int (*init)(ty_hpo_suggester *s, const ty_hpo_setting *settings, size_t n, ty_error *err);
    void (*free)(ty_hpo_suggester *s);
    int (*suggest_one)(ty_hpo_suggester *s, double *x, int *tag, ty_error *err);
    void (*on_update)(ty_hpo_suggester *s, size_t id, ty_hpo_trial_state old_state);
};

extern const ty_hpo_algo ty_hpo_algo_random, ty_hpo_algo_grid, ty_hpo_algo_sobol,
    ty_hpo_algo_tpe, ty_hpo_algo_mtpe, ty_hpo_algo_cmaes, ty_hpo_algo_bo, ty_hpo_algo_hyperband;

/* Settings: Katib's validators' rules. Each returns 0 or fails naming the setting. */
int ty_hpo_setting_int(const ty_hpo_setting *st, long long min, long long *out, ty_error *err);
int ty_hpo_setting_double(const ty_hpo_setting *st, double min, double *out, ty_error *err);
int ty_hpo_unknown_setting(const ty_hpo_setting *st, const char *algorithm, ty_error *err);
/* random_state: sets the rng; 1 when st is it, 0 when st is another setting, -1 bad value. */
int ty_hpo_setting_seed(ty_hpo_suggester *s, const ty_hpo_setting *st, ty_error *err);

/* Completed trials count as observations; early-stopped ones with a value too (Katib keeps
 * their last metric). */
static inline bool ty_hpo_trial_observed(const ty_hpo_trial *t) {
    return (t->state == TY_HPO_COMPLETED || t->state == TY_HPO_EARLY_STOPPED) && isfinite(t->loss);
}

/* TPE's one-parameter Parzen estimator (observations sorted, their raw weights, the prior added)
 * and its log density at x: exposed for the tests that hold it to Optuna's figures. */
double ty_hpo_tpe_logpdf1(const double *sorted_mus, const double *weights, size_t n, double lo,
                          double hi, double step, double x);

/* Dense linear algebra for the GP and CMA-ES (row-major n x n). */
int ty_hpo_cholesky(double *a, size_t n);                                  /* in place, lower */
void ty_hpo_chol_solve_lower(const double *l, size_t n, double *b);        /* L y = b */
void ty_hpo_chol_solve_upper_t(const double *l, size_t n, double *b);      /* L^T y = b */
void ty_hpo_eigen_sym(double *a, size_t n, double *evals, double *evecs); /* Jacobi */

#endif
