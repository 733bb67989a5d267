/* The suggester: the trial history, settings checks and the dispatch to an algorithm. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "base/mem.h"
#include "hpo/hpo_int.h"
#include "hpo/suggest.h"

const char *const ty_hpo_algorithms[] = {"random", "grid", "sobol", "tpe", "multivariate-tpe",
                                         "cmaes", "bayesianoptimization", "hyperband", NULL};

static const ty_hpo_algo *const algos[] = {
    &ty_hpo_algo_random, &ty_hpo_algo_grid,  &ty_hpo_algo_sobol, &ty_hpo_algo_tpe,
    &ty_hpo_algo_mtpe,   &ty_hpo_algo_cmaes, &ty_hpo_algo_bo,    &ty_hpo_algo_hyperband,
};

/* ---- random numbers ---- */

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void ty_hpo_rng_seed(ty_hpo_rng *r, uint64_t seed) {
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&seed);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t ty_hpo_rng_next(ty_hpo_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0], s[3] ^= s[1], s[1] ^= s[2], s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double ty_hpo_rng_uniform(ty_hpo_rng *r) { return (double)(ty_hpo_rng_next(r) >> 11) * 0x1p-53; }

double ty_hpo_rng_normal(ty_hpo_rng *r) {
    /* Box-Muller, one value per call: simpler to keep deterministic than a cached pair */
    double u1 = ty_hpo_rng_uniform(r), u2 = ty_hpo_rng_uniform(r);
    return sqrt(-2.0 * log(1.0 - u1)) * cos(2 * M_PI * u2);
}

size_t ty_hpo_rng_below(ty_hpo_rng *r, size_t n) {
    return n ? (size_t)(ty_hpo_rng_uniform(r) * (double)n) % n : 0;
}

/* ---- settings: Katib's validators' rules and messages ---- */

int ty_hpo_setting_int(const ty_hpo_setting *st, long long min, long long *out, ty_error *err) {
    char *end;
    errno = 0;
    long long v = strtoll(st->value, &end, 10);
    if (!*st->value || *end || errno)
        return ty_fail(err, "failed to validate %s(%s): invalid literal for int()", st->name,
                       st->value);
    if (v < min)
        return ty_fail(err, "%s should be greater or equal than %lld", st->name, min);
    *out = v;
    return 0;
}

int ty_hpo_setting_double(const ty_hpo_setting *st, double min, double *out, ty_error *err) {
    char *end;
    errno = 0;
    double v = strtod(st->value, &end);
    if (!*st->value || *end || errno || !isfinite(v))
        return ty_fail(err, "failed to validate %s(%s): could not convert string to float",
                       st->name, st->value);
    if (v < min) return ty_fail(err, "%s should be greater or equal than %g", st->name, min);
    *out = v;
    return 0;
}

int ty_hpo_unknown_setting(const ty_hpo_setting *st, const char *algorithm, ty_error *err) {
    return ty_fail(err, "unknown setting %s for algorithm %s", st->name, algorithm);
}

int ty_hpo_setting_seed(ty_hpo_suggester *s, const ty_hpo_setting *st, ty_error *err) {
    if (strcmp(st->name, "random_state") != 0) return 0;
    long long seed;
    if (ty_hpo_setting_int(st, 0, &seed, err) < 0) return -1;
    ty_hpo_rng_seed(&s->rng, (uint64_t)seed);
    return 1;
}

/* ---- the suggester ---- */

static ty_hpo_space *space_copy(const ty_hpo_space *in) {
    ty_hpo_space *sp = TY_NEW(ty_hpo_space);
    sp->n = in->n;
    sp->params = ty_calloc(in->n, sizeof *sp->params);
    for (size_t i = 0; i < in->n; i++) {
        const ty_hpo_param *a = &in->params[i];
        ty_hpo_param *b = &sp->params[i];
        *b = *a;
        b->name = ty_strdup(a->name);
        if (a->n_list) {
            b->list = ty_calloc(a->n_list, sizeof *b->list);
            b->list_num = ty_calloc(a->n_list, sizeof *b->list_num);
            for (size_t k = 0; k < a->n_list; k++) {
                b->list[k] = ty_strdup(a->list[k]);
                b->list_num[k] = a->list_num ? a->list_num[k] : 0;
            }
        }
    }
    return sp;
}

int ty_hpo_suggester_new(const ty_hpo_space *space, const char *algorithm,
                         const ty_hpo_setting *settings, size_t n_settings,
                         const ty_hpo_options *opt, ty_hpo_suggester **out, ty_error *err) {
    const ty_hpo_algo *algo = NULL;
    for (size_t i = 0; i < TY_ARRAY_LEN(algos); i++)
        if (algorithm && strcmp(algos[i]->name, algorithm) == 0) algo = algos[i];
    if (!algo) return ty_fail(err, "unknown algorithm name %s", algorithm ? algorithm : "");
    ty_hpo_suggester *s = TY_NEW(ty_hpo_suggester);
    s->algo = algo;
    s->space = space_copy(space);
    if (opt) s->opt = *opt;
    /* Without random_state Katib's services seed from the OS: so do we. */
    uint64_t seed;
    if (getrandom(&seed, sizeof seed, 0) != (ssize_t)sizeof seed)
        seed = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)s;
    ty_hpo_rng_seed(&s->rng, seed);
    if (algo->init(s, settings, n_settings, err) < 0) {
        s->algo = NULL; /* init cleaned up after itself */
        ty_hpo_suggester_free(s);
        return -1;
    }
    *out = s;
    return 0;
}

void ty_hpo_suggester_free(ty_hpo_suggester *s) {
    if (!s) return;
    if (s->algo && s->algo->free) s->algo->free(s);
    for (size_t i = 0; i < s->n_trials; i++) free(s->trials[i].x);
    free(s->trials);
    ty_hpo_space_free(s->space);
    free(s);
}

static size_t push_trial(ty_hpo_suggester *s, const double *x, ty_hpo_trial_state state,
                         double value, int tag) {
    if (s->n_trials == s->cap_trials) {
        s->cap_trials = s->cap_trials ? 2 * s->cap_trials : 64;
        s->trials = ty_realloc(s->trials, s->cap_trials * sizeof *s->trials);
    }
    ty_hpo_trial *t = &s->trials[s->n_trials];
    t->x = ty_malloc(s->space->n * sizeof *t->x);
    memcpy(t->x, x, s->space->n * sizeof *t->x);
    t->state = state;
    t->value = value;
    t->loss = s->opt.maximize ? -value : value;
    t->tag = tag;
    return s->n_trials++;
}

long ty_hpo_add_trial(ty_hpo_suggester *s, const double *x, ty_hpo_trial_state state,
                      double value, ty_error *err) {
    return ty_hpo_add_tagged_trial(s, x, state, value, -1, err);
}

long ty_hpo_add_tagged_trial(ty_hpo_suggester *s, const double *x, ty_hpo_trial_state state,
                             double value, int tag, ty_error *err) {
    for (size_t i = 0; i < s->space->n; i++)
        if (!ty_hpo_param_contains(&s->space->params[i], x[i]))
            return ty_fail(err, "trial %zu: parameter %s: value %g is outside its feasible space",
                           s->n_trials, s->space->params[i].name, x[i]);
    if ((state == TY_HPO_COMPLETED || state == TY_HPO_EARLY_STOPPED) && !isfinite(value))
        return ty_fail(err, "trial %zu: objective value is not a finite number", s->n_trials);
    size_t id = push_trial(s, x, state, value, tag < 0 ? -1 : tag);
    if (s->algo->on_update) s->algo->on_update(s, id, TY_HPO_RUNNING);
    return (long)id;
}

int ty_hpo_report(ty_hpo_suggester *s, size_t id, ty_hpo_trial_state state, double value,
                  ty_error *err) {
    if (id >= s->n_trials) return ty_fail(err, "trial %zu: no such trial", id);
    if ((state == TY_HPO_COMPLETED || state == TY_HPO_EARLY_STOPPED) && !isfinite(value))
        return ty_fail(err, "trial %zu: objective value is not a finite number", id);
    ty_hpo_trial *t = &s->trials[id];
    ty_hpo_trial_state old = t->state;
    t->state = state;
    t->value = value;
    t->loss = s->opt.maximize ? -value : value;
    if (s->algo->on_update) s->algo->on_update(s, id, old);
    return 0;
}

int ty_hpo_suggest(ty_hpo_suggester *s, size_t n, size_t *ids, ty_error *err) {
    double *x = ty_malloc((s->space->n ? s->space->n : 1) * sizeof *x);
    size_t done = 0;
    for (; done < n; done++) {
        int tag = -1;
        int rc = s->algo->suggest_one(s, x, &tag, err);
        if (rc < 0) {
            free(x);
            return -1;
        }
        if (rc == 0) break;
        size_t id = push_trial(s, x, TY_HPO_RUNNING, NAN, tag);
        if (s->algo->on_update) s->algo->on_update(s, id, TY_HPO_RUNNING);
        if (ids) ids[done] = id;
    }
    free(x);
    return (int)done;
}

void ty_hpo_suggester_resume(ty_hpo_suggester *s) {
    if (s->algo != &ty_hpo_algo_random) return;
    /* random_one's draws depend on the stream alone */
    double *x = ty_malloc((s->space->n ? s->space->n : 1) * sizeof *x);
    for (size_t i = 0; i < s->n_trials; i++) ty_hpo_sample_random(s->space, &s->rng, x);
    free(x);
}

size_t ty_hpo_trial_count(const ty_hpo_suggester *s) { return s->n_trials; }
int ty_hpo_trial_tag(const ty_hpo_suggester *s, size_t id) {
    return id < s->n_trials ? s->trials[id].tag : -1;
}
const double *ty_hpo_trial_point(const ty_hpo_suggester *s, size_t id) {
    return id < s->n_trials ? s->trials[id].x : NULL;
}
ty_hpo_trial_state ty_hpo_trial_state_of(const ty_hpo_suggester *s, size_t id) {
    return id < s->n_trials ? s->trials[id].state : TY_HPO_FAILED;
}
const ty_hpo_space *ty_hpo_suggester_space(const ty_hpo_suggester *s) { return s->space; }
