/* The algorithms that learn nothing from the results: random, grid, sobol. */
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "hpo/hpo_int.h"

/* ---- random: Optuna's RandomSampler (Katib's "random") ---- */

static int random_init(ty_hpo_suggester *s, const ty_hpo_setting *st, size_t n, ty_error *err) {
    for (size_t i = 0; i < n; i++) {
        int rc = ty_hpo_setting_seed(s, &st[i], err);
        if (rc < 0) return -1;
        if (rc == 0) return ty_hpo_unknown_setting(&st[i], "random", err);
    }
    return 0;
}

static int random_one(ty_hpo_suggester *s, double *x, int *tag, ty_error *err) {
    (void)tag, (void)err;
    ty_hpo_sample_random(s->space, &s->rng, x);
    return 1;
}

const ty_hpo_algo ty_hpo_algo_random = {"random", random_init, NULL, random_one, NULL};

/* ---- grid: Optuna's GridSampler over Katib's combinations ----
 * Every combination once, in random order (seeded), the ones running or done skipped; a failed
 * trial's point goes back to the pool. The pool is an array of unvisited grid ids with each
 * id's position, so that taking or returning one is O(1). */

#define GRID_MAX 10000000

typedef struct grid_state {
    size_t size;
    size_t *pool, *pos; /* pool[0..n_pool) unvisited ids; pos[id] its index or SIZE_MAX */
    size_t n_pool;
} grid_state;

static int grid_init(ty_hpo_suggester *s, const ty_hpo_setting *st, size_t n, ty_error *err) {
    for (size_t i = 0; i < n; i++) {
        int rc = ty_hpo_setting_seed(s, &st[i], err);
        if (rc < 0) return -1;
        if (rc == 0) return ty_hpo_unknown_setting(&st[i], "grid", err);
    }
    size_t size = 1;
    for (size_t i = 0; i < s->space->n; i++) {
        const ty_hpo_param *p = &s->space->params[i];
        size_t k = ty_hpo_param_grid_size(p);
        if (k == 0)
            return ty_fail(err, "Param %s step is nil; For discrete search space, all parameters "
                           "must include step", p->name);
        if (size > GRID_MAX / k)
            return ty_fail(err, "grid: more than %d combinations", GRID_MAX);
        size *= k;
    }
    if (s->opt.max_trial_count > 0 && (size_t)s->opt.max_trial_count > size)
        return ty_fail(err, "Max Trial Count: %d > all possible search combinations: %zu",
                       s->opt.max_trial_count, size);
    grid_state *g = TY_NEW(grid_state);
    g->size = size;
    g->pool = ty_malloc(size * sizeof *g->pool);
    g->pos = ty_malloc(size * sizeof *g->pos);
    for (size_t i = 0; i < size; i++) g->pool[i] = g->pos[i] = i;
    g->n_pool = size;
    s->state = g;
    return 0;
}

static void grid_free(ty_hpo_suggester *s) {
    grid_state *g = s->state;
    if (!g) return;
    free(g->pool);
    free(g->pos);
    free(g);
}

static void grid_take(grid_state *g, size_t id) {
    size_t at = g->pos[id];
    if (at == SIZE_MAX) return;
    size_t last = g->pool[--g->n_pool];
    g->pool[at] = last;
    g->pos[last] = at;
    g->pos[id] = SIZE_MAX;
}

static void grid_give_back(grid_state *g, size_t id) {
    if (g->pos[id] != SIZE_MAX) return;
    g->pool[g->n_pool] = id;
    g->pos[id] = g->n_pool++;
}

/* The grid id of a point, or SIZE_MAX when it is not on the grid. */
static size_t grid_id_of(const ty_hpo_space *sp, const double *x) {
    size_t id = 0;
    for (size_t i = 0; i < sp->n; i++) {
        const ty_hpo_param *p = &sp->params[i];
        size_t k = ty_hpo_param_grid_size(p);
        double f = (p->type == TY_HPO_CATEGORICAL || p->type == TY_HPO_DISCRETE)
                       ? x[i]
                       : (x[i] - p->min) / p->step;
        double r = nearbyint(f);
        if (fabs(f - r) > 1e-6 || r < 0 || r >= (double)k) return SIZE_MAX;
        id = id * k + (size_t)r;
    }
    return id;
}

static void grid_point(const ty_hpo_space *sp, size_t id, double *x) {
    for (size_t i = sp->n; i-- > 0;) {
        const ty_hpo_param *p = &sp->params[i];
        size_t k = ty_hpo_param_grid_size(p);
        x[i] = ty_hpo_param_grid_value(p, id % k);
        id /= k;
    }
}

static int grid_one(ty_hpo_suggester *s, double *x, int *tag, ty_error *err) {
    (void)tag, (void)err;
    grid_state *g = s->state;
    if (g->n_pool == 0) return 0;
    size_t id = g->pool[ty_hpo_rng_below(&s->rng, g->n_pool)];
    grid_point(s->space, id, x);
    return 1; /* taken by grid_update when the suggester records it */
}

static void grid_update(ty_hpo_suggester *s, size_t tid, ty_hpo_trial_state old) {
    (void)old;
    grid_state *g = s->state;
    size_t id = grid_id_of(s->space, s->trials[tid].x);
    if (id == SIZE_MAX) return;
    if (s->trials[tid].state == TY_HPO_FAILED) {
        /* back to the pool unless another trial holds the same point */
        for (size_t i = 0; i < s->n_trials; i++)
            if (i != tid && s->trials[i].state != TY_HPO_FAILED &&
                grid_id_of(s->space, s->trials[i].x) == id)
                return;
        grid_give_back(g, id);
    } else {
        grid_take(g, id);
    }
}

const ty_hpo_algo ty_hpo_algo_grid = {"grid", grid_init, grid_free, grid_one, grid_update};

/* ---- sobol: goptuna's quasi-random sampler ----
 * The Sobol sequence in Gray-code order with Joe and Kuo's primitive polynomials; the first
 * point (all zeros) is skipped. Point k of the sequence is the k-th the suggester has proposed
 * or been told about, so a resumed experiment goes on where it stopped. */

typedef struct sobol_dir {
    unsigned degree, a;
    unsigned m[8];
} sobol_dir;

/* Dimension 1 is the van der Corput sequence; then Joe and Kuo's (2008) polynomials (degree,
 * coefficient bits) with their initial direction numbers for the first twenty dimensions;
 * further dimensions use the same polynomials' list with odd initial numbers drawn from a
 * fixed generator, which keeps each dimension a valid Sobol sequence. */
static const sobol_dir sobol_dirs[] = {
    {1, 0, {1}},
    {2, 1, {1, 3}},
    {3, 1, {1, 3, 1}},
    {3, 2, {1, 1, 1}},
    {4, 1, {1, 1, 3, 3}},
    {4, 4, {1, 3, 5, 13}},
    {5, 2, {1, 1, 5, 5, 17}},
    {5, 4, {1, 1, 5, 5, 5}},
    {5, 7, {1, 1, 7, 11, 19}},
    {5, 11, {1, 1, 5, 1, 1}},
    {5, 13, {1, 1, 1, 3, 11}},
    {5, 14, {1, 3, 5, 5, 31}},
    {6, 1, {1, 3, 3, 9, 7, 49}},
    {6, 13, {1, 1, 1, 15, 21, 21}},
    {6, 16, {1, 3, 1, 13, 27, 49}},
    {6, 19, {1, 1, 1, 15, 7, 5}},
    {6, 22, {1, 3, 1, 15, 13, 25}},
    {6, 25, {1, 1, 5, 5, 19, 61}},
    {7, 1, {0}},  {7, 4, {0}},  {7, 7, {0}},  {7, 8, {0}},  {7, 14, {0}}, {7, 19, {0}},
    {7, 21, {0}}, {7, 28, {0}}, {7, 31, {0}}, {7, 32, {0}}, {7, 37, {0}}, {7, 41, {0}},
    {7, 42, {0}}, {7, 50, {0}}, {7, 55, {0}}, {7, 56, {0}}, {7, 59, {0}}, {7, 62, {0}},
};
#define SOBOL_MAX_DIM (1 + TY_ARRAY_LEN(sobol_dirs))
#define SOBOL_BITS 32

typedef struct sobol_state {
    size_t dim;
    uint32_t *v; /* dim x SOBOL_BITS direction numbers */
} sobol_state;

static int sobol_init(ty_hpo_suggester *s, const ty_hpo_setting *st, size_t n, ty_error *err) {
    for (size_t i = 0; i < n; i++) {
        int rc = ty_hpo_setting_seed(s, &st[i], err); /* taken, unused: the sequence is fixed */
        if (rc < 0) return -1;
        if (rc == 0) return ty_hpo_unknown_setting(&st[i], "sobol", err);
    }
    size_t dim = s->space->n;
    if (dim > SOBOL_MAX_DIM)
        return ty_fail(err, "sobol supports up to %zu parameters, not %zu", SOBOL_MAX_DIM, dim);
    sobol_state *so = TY_NEW(sobol_state);
    so->dim = dim;
    so->v = ty_calloc(dim * SOBOL_BITS, sizeof *so->v);
    for (unsigned b = 0; b < SOBOL_BITS; b++) so->v[b] = 1u << (31 - b);
    ty_hpo_rng fill;
    ty_hpo_rng_seed(&fill, 0x50b01);
    for (size_t d = 1; d < dim; d++) {
        const sobol_dir *dd = &sobol_dirs[d - 1];
        uint32_t *v = &so->v[d * SOBOL_BITS];
        unsigned deg = dd->degree;
        for (unsigned k = 0; k < deg; k++) {
            unsigned m = dd->m[0] ? dd->m[k] : (unsigned)(ty_hpo_rng_below(&fill, 1u << k) | 1);
            v[k] = (uint32_t)m << (31 - k);
        }
        for (unsigned k = deg; k < SOBOL_BITS; k++) {
            uint32_t val = v[k - deg] ^ (v[k - deg] >> deg);
            for (unsigned j = 1; j < deg; j++)
                if ((dd->a >> (deg - 1 - j)) & 1) val ^= v[k - j];
            v[k] = val;
        }
    }
    s->state = so;
    return 0;
}

static void sobol_free(ty_hpo_suggester *s) {
    sobol_state *so = s->state;
    if (!so) return;
    free(so->v);
    free(so);
}

static int sobol_one(ty_hpo_suggester *s, double *x, int *tag, ty_error *err) {
    (void)tag, (void)err;
    sobol_state *so = s->state;
    uint64_t index = s->n_trials + 1;  /* skip the origin */
    uint64_t gray = index ^ (index >> 1);
    for (size_t d = 0; d < so->dim; d++) {
        uint32_t acc = 0;
        for (unsigned b = 0; b < SOBOL_BITS && (gray >> b); b++)
            if ((gray >> b) & 1) acc ^= so->v[d * SOBOL_BITS + b];
        x[d] = ty_hpo_from_unit(&s->space->params[d], (double)acc * 0x1p-32);
    }
    return 1;
}

const ty_hpo_algo ty_hpo_algo_sobol = {"sobol", sobol_init, sobol_free, sobol_one, NULL};
