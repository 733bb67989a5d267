/* Hyperband as Katib's hyperband service runs it ("hyperband").
 *
 * Settings (Katib's): r_l (the most resource a trial gets, required, > 0), resource_name (the
 * parameter that carries a trial's resource, required, one of the parameters), eta (3; Katib
 * takes int(float(eta)) and 3 for values <= 0), random_state.
 * s_max = floor(log(r_l) / log(eta)); the brackets go s = s_max .. 0. Bracket s starts n =
 * ceil((s_max + 1) eta^s / (s + 1)) random configurations with resource r = r_l eta^-s; each next
 * rung i keeps the best ceil(n_{i-1} / eta) of the one before with resource r eta^i, until r_l.
 * A rung is proposed only once the one before has finished: meanwhile suggest returns none.
 * Katib checks parallelTrialCount >= eta^s_max (the largest rung), and so do we. Each trial
 * carries its bracket and rung (ty_hpo_trial_tag), so that an experiment resumed from tagged
 * trials goes on from the same rung. */
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "hpo/hpo_int.h"

typedef struct hb_state {
    double r_l;
    int eta, s_max;
    size_t resource; /* parameter index */
    int s, i;        /* current bracket and rung; s < 0: all done */
    size_t n_rung, issued;
    size_t *rung_ids, n_rung_ids; /* trials of the current rung */
    size_t *parents;              /* for rungs > 0: the configurations to resume */
    size_t n_parents;
    bool done;
    bool proposing; /* hb_one's trial is being recorded: it counted itself in `issued` */
} hb_state;

static double hb_n(const hb_state *h, int s) {
    return ceil((double)(h->s_max + 1) * pow(h->eta, s) / (double)(s + 1));
}

static int hb_init(ty_hpo_suggester *s, const ty_hpo_setting *st, size_t n, ty_error *err) {
    const char *r_l = NULL, *resource = NULL;
    double eta = 3;
    for (size_t i = 0; i < n; i++) {
        int rc = ty_hpo_setting_seed(s, &st[i], err);
        if (rc < 0) return -1;
        if (rc == 1) continue;
        if (strcmp(st[i].name, "r_l") == 0) r_l = st[i].value;
        else if (strcmp(st[i].name, "resource_name") == 0) resource = st[i].value;
        else if (strcmp(st[i].name, "eta") == 0) {
            char *end;
            eta = strtod(st[i].value, &end);
            if (!*st[i].value || *end || !isfinite(eta))
                return ty_fail(err, "failed to validate eta(%s): not a number", st[i].value);
        } else {
            return ty_hpo_unknown_setting(&st[i], "hyperband", err);
        }
    }
    if (!r_l || !resource) return ty_fail(err, "r_l and resource_name must be set.");
    char *end;
    double rl = strtod(r_l, &end);
    if (!*r_l || *end || !(rl > 0) || !isfinite(rl))
        return ty_fail(err, "r_l must be a positive float number.");
    int e = (int)eta;
    if (e <= 0) e = 3;
    if (e == 1) return ty_fail(err, "eta must be greater than one.");
    int s_max = (int)(log(rl) / log(e));
    int max_parallel = (int)ceil(pow(e, s_max));
    if (s->opt.parallel_trial_count > 0 && s->opt.parallel_trial_count < max_parallel)
        return ty_fail(err, "parallelTrialCount must be not less than %d.", max_parallel);
    int idx = ty_hpo_space_find(s->space, resource);
    if (idx < 0) return ty_fail(err, "value of resource_name setting must be in parameters.");
    hb_state *h = TY_NEW(hb_state);
    h->r_l = rl, h->eta = e, h->s_max = s_max < 0 ? 0 : s_max, h->resource = (size_t)idx;
    h->s = h->s_max, h->i = 0;
    h->n_rung = (size_t)hb_n(h, h->s);
    s->state = h;
    return 0;
}

static void hb_free(ty_hpo_suggester *s) {
    hb_state *h = s->state;
    if (!h) return;
    free(h->rung_ids), free(h->parents), free(h);
}

static int cmp_loss(const void *a, const void *b, void *arg) {
    const ty_hpo_suggester *s = arg;
    const ty_hpo_trial *ta = &s->trials[*(const size_t *)a], *tb = &s->trials[*(const size_t *)b];
    double la = ty_hpo_trial_observed(ta) ? ta->loss : INFINITY;
    double lb = ty_hpo_trial_observed(tb) ? tb->loss : INFINITY;
    return la < lb ? -1 : la > lb;
}

/* The current rung is over: on to the next rung or bracket. */
static void hb_advance(ty_hpo_suggester *s) {
    hb_state *h = s->state;
    if (h->i < h->s) {
        qsort_r(h->rung_ids, h->n_rung_ids, sizeof(size_t), cmp_loss, s);
        double n_i = ceil(hb_n(h, h->s) * pow(h->eta, -h->i));
        size_t keep = (size_t)ceil(n_i / h->eta);
        size_t good = 0;
        while (good < h->n_rung_ids && ty_hpo_trial_observed(&s->trials[h->rung_ids[good]])) good++;
        if (keep > good) keep = good;
        free(h->parents);
        h->parents = ty_malloc((keep ? keep : 1) * sizeof(size_t));
        memcpy(h->parents, h->rung_ids, keep * sizeof(size_t));
        h->n_parents = keep;
        h->i++;
        h->n_rung = keep;
    } else if (h->s > 0) {
        h->s--, h->i = 0;
        h->n_rung = (size_t)hb_n(h, h->s);
        h->n_parents = 0;
    } else {
        h->done = true;
    }
    h->issued = 0;
    h->n_rung_ids = 0;
}

/* Whether the current rung has all its trials and none of them runs. */
static bool hb_rung_over(const ty_hpo_suggester *s, const hb_state *h) {
    if (h->issued < h->n_rung) return false;
    for (size_t k = 0; k < h->n_rung_ids; k++)
        if (s->trials[h->rung_ids[k]].state == TY_HPO_RUNNING) return false;
    return true;
}

static int hb_one(ty_hpo_suggester *s, double *x, int *tag, ty_error *err) {
    (void)err;
    hb_state *h = s->state;
    for (;;) {
        if (h->done) return 0;
        if (h->issued < h->n_rung) break;
        if (!hb_rung_over(s, h)) return 0; /* wait for the rung */
        hb_advance(s);
    }
    double r = h->r_l * pow(h->eta, -h->s) * pow(h->eta, h->i);
    if (h->i == 0) ty_hpo_sample_random(s->space, &s->rng, x);
    else memcpy(x, s->trials[h->parents[h->issued]].x, s->space->n * sizeof(double));
    const ty_hpo_param *rp = &s->space->params[h->resource];
    x[h->resource] = rp->type == TY_HPO_INT ? floor(r + 1e-9) : r;
    h->issued++;
    h->proposing = true;
    *tag = h->s * 64 + h->i;
    return 1;
}

static void hb_update(ty_hpo_suggester *s, size_t id, ty_hpo_trial_state old) {
    (void)old;
    hb_state *h = s->state;
    int tag = s->trials[id].tag;
    bool own = h->proposing;
    h->proposing = false;
    if (tag < 0) return;
    /* a resumed experiment's trial of a later rung: the rungs before it are over */
    while (!own && !h->done && tag != h->s * 64 + h->i && hb_rung_over(s, h)) hb_advance(s);
    if (tag != h->s * 64 + h->i) return;
    for (size_t k = 0; k < h->n_rung_ids; k++)
        if (h->rung_ids[k] == id) return;
    h->rung_ids = ty_realloc(h->rung_ids, (h->n_rung_ids + 1) * sizeof(size_t));
    h->rung_ids[h->n_rung_ids++] = id;
    if (!own) h->issued++;
}

const ty_hpo_algo ty_hpo_algo_hyperband = {"hyperband", hb_init, hb_free, hb_one, hb_update};
