/* The snapshot: the adds (validated, interned, copied into the arena) and what is read after
 * the pass. The pass itself is pass.c. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/mem.h"
#include "base/quantity.h"
#include "sched/sched_int.h"

/* ---- arena ---- */

void *sc_alloc(sc_arena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (!a->head || a->head->cap - a->head->used < n) {
        size_t cap = n > 60000 ? n : 60000;
        sc_chunk *c = ty_malloc(sizeof *c + cap);
        c->next = a->head;
        c->used = 0;
        c->cap = cap;
        a->head = c;
        a->bytes += sizeof *c + cap;
    }
    void *p = a->head->data + a->head->used;
    a->head->used += n;
    memset(p, 0, n);
    return p;
}

char *sc_strdup(sc_arena *a, const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = sc_alloc(a, n);
    memcpy(p, s, n);
    return p;
}

void sc_msgf(char *buf, const char *fmt, ...)
{
    size_t len = strlen(buf);
    if (len + 1 >= SC_MSG)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + len, SC_MSG - len, fmt, ap);
    va_end(ap);
}

const char *sc_qty(const ty_sched *s, int res, int64_t milli, char out[32])
{
    bool binary = strstr(s->res[res], "memory") || strstr(s->res[res], "storage");
    return ty_quantity_format((ty_quantity){milli}, binary, out, 32);
}

/* ---- lifecycle ---- */

ty_sched *ty_sched_new(const ty_sched_config *cfg)
{
    ty_sched *s = TY_NEW(ty_sched);
    if (cfg)
        s->cfg = *cfg;
    s->pack_name = sc_strdup(&s->arena, cfg && cfg->pack_resource ? cfg->pack_resource
                                                                  : "nvidia.com/gpu");
    s->cfg.pack_resource = s->pack_name;
    s->pack = -1;
    s->pods = -1;
    return s;
}

void ty_sched_free(ty_sched *s)
{
    if (!s)
        return;
    ty_map *maps[] = {&s->flavor_ix, &s->node_ix, &s->cq_ix, &s->cohort_ix,
                      &s->wl_ix,     &s->str_ix,  &s->res_ix};
    for (size_t i = 0; i < TY_ARRAY_LEN(maps); i++)
        ty_map_free(maps[i]);
    for (int i = 0; i < s->n_flavors; i++)
        if (s->flavors[i]->buckets)
            for (int b = 0; b < s->flavors[i]->n_buckets; b++)
                free(s->flavors[i]->buckets[b].ids);
    for (int i = 0; i < s->n_flavors; i++)
        free(s->flavors[i]->buckets);
    free(s->flavors);
    free(s->nodes);
    free(s->cqs);
    free(s->cohorts);
    free(s->wls);
    free(s->strs);
    free(s->dec);
    free(s->need);
    free(s->pre);
    free(s->left);
    free(s->placed);
    free(s->placed2);
    free(s->cands);
    free(s->victims);
    free(s->resv);
    free(s->dirty);
    free(s->dfree);
    free(s->cands2);
    free(s->qacc);
    free(s->gives);
    while (s->arena.head) {
        sc_chunk *c = s->arena.head;
        s->arena.head = c->next;
        free(c);
    }
    free(s);
}

#define PUSH(arr, n, cap, item)                                                                \
    do {                                                                                       \
        if ((n) == (cap)) {                                                                    \
            (cap) = (cap) ? (cap) * 2 : 16;                                                    \
            (arr) = ty_realloc((arr), (size_t)(cap) * sizeof *(arr));                          \
        }                                                                                      \
        (arr)[(n)++] = (item);                                                                 \
    } while (0)

/* What an add names in its errors: "node n1", "workload ns/a". */
typedef struct sc_what {
    const char *kind, *name;
} sc_what;

/* ---- interning ---- */

static void *ix_get(const ty_map *m, const char *name)
{
    return name ? ty_map_gets(m, name) : NULL;
}

static int32_t str_id(ty_sched *s, const char *str)
{
    if (!str)
        str = "";
    void *v = ty_map_gets(&s->str_ix, str);
    if (v)
        return (int32_t)((intptr_t)v - 1);
    int32_t id = s->n_strs;
    PUSH(s->strs, s->n_strs, s->cap_strs, sc_strdup(&s->arena, str));
    ty_map_puts(&s->str_ix, str, (void *)(intptr_t)(id + 1));
    return id;
}

/* Resource index, interning a new name; -1 past TY_SCHED_MAX_RESOURCES. */
static int res_id(ty_sched *s, const char *name, ty_error *err)
{
    /* at most TY_SCHED_MAX_RESOURCES names, usually the same pointer (the caller's constant):
     * cheaper than hashing for every amount of every node */
    for (int i = 0; i < s->n_res; i++)
        if (s->res[i] == name || strcmp(s->res[i], name) == 0)
            return i;
    if (s->n_res == SC_R)
        return ty_fail(err, "resource %s: more than %d resource names", name, SC_R);
    s->res[s->n_res] = sc_strdup(&s->arena, name);
    ty_map_puts(&s->res_ix, name, (void *)(intptr_t)(s->n_res + 1));
    return s->n_res++;
}

static int copy_labels(ty_sched *s, const ty_sched_label *in, size_t n, sc_label **out,
                       int *n_out, const sc_what *what, ty_error *err)
{
    *out = sc_alloc(&s->arena, (n ? n : 1) * sizeof **out);
    for (size_t i = 0; i < n; i++) {
        if (!in[i].key || !*in[i].key)
            return ty_fail(err, "%s %s: a label without a key", what->kind, what->name);
        (*out)[i] = (sc_label){str_id(s, in[i].key), str_id(s, in[i].value)};
    }
    *n_out = (int)n;
    return 0;
}

/* Interned labels as strings again, for sched/nodefit.h. */
static ty_nodefit_label *string_labels(ty_sched *s, const sc_label *in, int n)
{
    ty_nodefit_label *out = sc_alloc(&s->arena, (size_t)(n ? n : 1) * sizeof *out);
    for (int i = 0; i < n; i++)
        out[i] = (ty_nodefit_label){s->strs[in[i].key], s->strs[in[i].value]};
    return out;
}

static int effect_of(const char *e, bool allow_any, int *out)
{
    if (!e || !*e) {
        *out = SC_EFF_ANY;
        return allow_any ? 0 : -1;
    }
    if (!strcmp(e, "NoSchedule"))
        *out = SC_EFF_NO_SCHEDULE;
    else if (!strcmp(e, "PreferNoSchedule"))
        *out = SC_EFF_PREFER;
    else if (!strcmp(e, "NoExecute"))
        *out = SC_EFF_NO_EXECUTE;
    else
        return -1;
    return 0;
}

static int copy_taints(ty_sched *s, const ty_sched_taint *in, size_t n, sc_taint **out,
                       int *n_out, const sc_what *what, ty_error *err)
{
    *out = sc_alloc(&s->arena, (n ? n : 1) * sizeof **out);
    for (size_t i = 0; i < n; i++) {
        if (!in[i].key || !*in[i].key)
            return ty_fail(err, "%s %s: a taint without a key", what->kind, what->name);
        if (effect_of(in[i].effect, false, &(*out)[i].effect) < 0)
            return ty_fail(err, "%s %s: taint %s: unknown effect \"%s\"", what->kind, what->name, in[i].key,
                           in[i].effect ? in[i].effect : "");
        (*out)[i].key = str_id(s, in[i].key);
        (*out)[i].value = str_id(s, in[i].value);
    }
    *n_out = (int)n;
    return 0;
}

static int copy_tols(ty_sched *s, const ty_sched_toleration *in, size_t n, sc_tol **out,
                     int *n_out, const sc_what *what, ty_error *err)
{
    *out = sc_alloc(&s->arena, (n ? n : 1) * sizeof **out);
    for (size_t i = 0; i < n; i++) {
        sc_tol *t = &(*out)[i];
        if (!in[i].op || !strcmp(in[i].op, "Equal"))
            t->exists = false;
        else if (!strcmp(in[i].op, "Exists"))
            t->exists = true;
        else
            return ty_fail(err, "%s %s: toleration: unknown operator \"%s\"", what->kind, what->name, in[i].op);
        if (effect_of(in[i].effect, true, &t->effect) < 0)
            return ty_fail(err, "%s %s: toleration: unknown effect \"%s\"", what->kind, what->name, in[i].effect);
        bool nokey = !in[i].key || !*in[i].key;
        if (nokey && !t->exists)
            return ty_fail(err, "%s %s: toleration: an empty key needs operator Exists", what->kind, what->name);
        t->key = nokey ? -1 : str_id(s, in[i].key);
        t->value = str_id(s, in[i].value);
    }
    *n_out = (int)n;
    return 0;
}

static const char *arena_str(ty_sched *s, const char *str)
{
    return str ? sc_strdup(&s->arena, str) : NULL;
}

static ty_nodefit_affinity *copy_affinity(ty_sched *s, const ty_nodefit_affinity *in)
{
    ty_nodefit_affinity *a = sc_alloc(&s->arena, sizeof *a);
    ty_nodefit_term *terms = sc_alloc(&s->arena, (in->n_terms ? in->n_terms : 1) * sizeof *terms);
    for (size_t t = 0; t < in->n_terms; t++) {
        const ty_nodefit_term *it = &in->terms[t];
        ty_nodefit_expr *exprs = sc_alloc(&s->arena, (it->n_exprs ? it->n_exprs : 1) *
                                                         sizeof *exprs);
        for (size_t i = 0; i < it->n_exprs; i++) {
            const ty_nodefit_expr *ie = &it->exprs[i];
            const char **values = sc_alloc(&s->arena, (ie->n_values ? ie->n_values : 1) *
                                                          sizeof *values);
            for (size_t v = 0; v < ie->n_values; v++)
                values[v] = arena_str(s, ie->values[v]);
            exprs[i] = (ty_nodefit_expr){arena_str(s, ie->key), ie->field, ie->op, values,
                                         ie->n_values};
        }
        terms[t] = (ty_nodefit_term){exprs, it->n_exprs};
    }
    *a = (ty_nodefit_affinity){terms, in->n_terms};
    return a;
}

/* Adds the amounts into out; bit r of *declared (may be NULL) set for each resource given. */
static int copy_amounts(ty_sched *s, const ty_sched_amount *in, size_t n, int64_t out[SC_R],
                        uint32_t *declared, const sc_what *what, ty_error *err)
{
    for (size_t i = 0; i < n; i++) {
        if (!in[i].resource || !*in[i].resource)
            return ty_fail(err, "%s %s: an amount without a resource name", what->kind, what->name);
        if (in[i].milli < 0)
            return ty_fail(err, "%s %s: %s: negative amount", what->kind, what->name, in[i].resource);
        int r = res_id(s, in[i].resource, err);
        if (r < 0)
            return ty_error_wrap(err, "%s %s", what->kind, what->name);
        out[r] += in[i].milli;
        if (declared)
            *declared |= 1u << r;
    }
    return 0;
}

/* ---- adds ---- */

int ty_sched_add_flavor(ty_sched *s, const ty_sched_flavor *f, ty_error *err)
{
    if (s->ran)
        return ty_fail(err, "add flavor: the pass has run");
    if (!f->name || !*f->name)
        return ty_fail(err, "add flavor: no name");
    if (ix_get(&s->flavor_ix, f->name))
        return ty_fail(err, "flavor %s: already added", f->name);
    /* named in its errors; formatted only then, as adds run thousands of times a pass */
    const sc_what wh = {"flavor", f->name}, *what = &wh;
    sc_flavor *x = sc_alloc(&s->arena, sizeof *x);
    x->name = sc_strdup(&s->arena, f->name);
    if (copy_labels(s, f->node_labels, f->n_node_labels, &x->labels, &x->n_labels, what, err) < 0 ||
        copy_taints(s, f->node_taints, f->n_node_taints, &x->taints, &x->n_taints, what, err) < 0 ||
        copy_tols(s, f->tolerations, f->n_tolerations, &x->tols, &x->n_tols, what, err) < 0)
        return -1;
    x->slabels = string_labels(s, x->labels, x->n_labels);
    x->id = s->n_flavors;
    PUSH(s->flavors, s->n_flavors, s->cap_flavors, x);
    ty_map_puts(&s->flavor_ix, f->name, x);
    return 0;
}

int ty_sched_add_node(ty_sched *s, const ty_sched_node *n, ty_error *err)
{
    if (s->ran)
        return ty_fail(err, "add node: the pass has run");
    if (!n->name || !*n->name)
        return ty_fail(err, "add node: no name");
    if (ix_get(&s->node_ix, n->name))
        return ty_fail(err, "node %s: already added", n->name);
    /* named in its errors; formatted only then, as adds run thousands of times a pass */
    const sc_what wh = {"node", n->name}, *what = &wh;
    sc_node *x = sc_alloc(&s->arena, sizeof *x);
    x->name = sc_strdup(&s->arena, n->name);
    x->unschedulable = n->unschedulable;
    if (copy_labels(s, n->labels, n->n_labels, &x->labels, &x->n_labels, what, err) < 0 ||
        copy_taints(s, n->taints, n->n_taints, &x->taints, &x->n_taints, what, err) < 0 ||
        copy_amounts(s, n->allocatable, n->n_allocatable, x->alloc, &x->declared, what, err) < 0 ||
        copy_amounts(s, n->used, n->n_used, x->ext, NULL, what, err) < 0)
        return -1;
    x->slabels = string_labels(s, x->labels, x->n_labels);
    PUSH(s->nodes, s->n_nodes, s->cap_nodes, x);
    ty_map_puts(&s->node_ix, n->name, x);
    return 0;
}

static int find_cohort(ty_sched *s, const char *name)
{
    void *v = ty_map_gets(&s->cohort_ix, name);
    if (v)
        return (int)((intptr_t)v - 1);
    sc_cohort *c = sc_alloc(&s->arena, sizeof *c);
    c->name = sc_strdup(&s->arena, name);
    PUSH(s->cohorts, s->n_cohorts, s->cap_cohorts, c);
    ty_map_puts(&s->cohort_ix, name, (void *)(intptr_t)s->n_cohorts);
    return s->n_cohorts - 1;
}

int ty_sched_add_cluster_queue(ty_sched *s, const ty_sched_cluster_queue *cq, ty_error *err)
{
    if (s->ran)
        return ty_fail(err, "add cluster queue: the pass has run");
    if (!cq->name || !*cq->name)
        return ty_fail(err, "add cluster queue: no name");
    if (ix_get(&s->cq_ix, cq->name))
        return ty_fail(err, "cluster queue %s: already added", cq->name);
    if (cq->within_cluster_queue == TY_SCHED_PREEMPT_ANY ||
        cq->reclaim_within_cohort == TY_SCHED_PREEMPT_LOWER_OR_NEWER_EQUAL_PRIORITY ||
        (cq->borrow_within_cohort != TY_SCHED_PREEMPT_NEVER &&
         cq->borrow_within_cohort != TY_SCHED_PREEMPT_LOWER_PRIORITY))
        return ty_fail(err, "cluster queue %s: a preemption policy that Kueue does not allow "
                            "there", cq->name);
    if (cq->fair_weight_milli < 0)
        return ty_fail(err, "cluster queue %s: negative fair sharing weight", cq->name);
    sc_cq *x = sc_alloc(&s->arena, sizeof *x);
    x->name = sc_strdup(&s->arena, cq->name);
    x->queueing = cq->queueing;
    x->within = cq->within_cluster_queue;
    x->reclaim = cq->reclaim_within_cohort;
    x->borrow = cq->borrow_within_cohort;
    x->threshold = cq->borrow_max_priority_threshold;
    x->has_threshold = cq->has_borrow_threshold;
    x->try_next_on_borrow = cq->when_can_borrow_try_next;
    x->preempt_first = cq->when_can_preempt_preempt;
    x->weight = cq->fair_weight_milli;
    x->stopped = cq->stopped;
    x->groups = sc_alloc(&s->arena, (cq->n_groups ? cq->n_groups : 1) * sizeof *x->groups);
    x->n_groups = (int)cq->n_groups;
    size_t n_fq = 0;
    for (size_t g = 0; g < cq->n_groups; g++)
        n_fq += cq->groups[g].n_flavors;
    x->cap_fq = (int)n_fq + 8;
    x->fq = sc_alloc(&s->arena, (size_t)x->cap_fq * sizeof *x->fq);
    uint32_t seen_res = 0;
    for (size_t g = 0; g < cq->n_groups; g++) {
        const ty_sched_resource_group *rg = &cq->groups[g];
        sc_group *xg = &x->groups[g];
        for (size_t i = 0; i < rg->n_covered; i++) {
            if (!rg->covered[i] || !*rg->covered[i])
                return ty_fail(err, "cluster queue %s: an empty covered resource", cq->name);
            int r = res_id(s, rg->covered[i], err);
            if (r < 0)
                return ty_error_wrap(err, "cluster queue %s", cq->name);
            if (seen_res & (1u << r))
                return ty_fail(err, "cluster queue %s: resource %s is covered twice", cq->name,
                               rg->covered[i]);
            seen_res |= 1u << r;
            xg->covered |= 1u << r;
        }
        xg->first = x->n_fq;
        for (size_t fi = 0; fi < rg->n_flavors; fi++) {
            const ty_sched_flavor_quotas *fqs = &rg->flavors[fi];
            sc_flavor *fl = ix_get(&s->flavor_ix, fqs->flavor);
            if (!fl)
                return ty_fail(err, "cluster queue %s: flavor %s does not exist", cq->name,
                               fqs->flavor ? fqs->flavor : "(null)");
            int fidx = fl->id;
            for (int k = 0; k < x->n_fq; k++)
                if (x->fq[k].flavor == fidx)
                    return ty_fail(err, "cluster queue %s: flavor %s is listed twice", cq->name,
                                   fl->name);
            sc_fq *q = &x->fq[x->n_fq++];
            q->flavor = fidx;
            q->group = (int)g;
            for (size_t k = 0; k < fqs->n_quotas; k++) {
                const ty_sched_quota *qu = &fqs->quotas[k];
                void *rv = qu->resource ? ty_map_gets(&s->res_ix, qu->resource) : NULL;
                int r = rv ? (int)((intptr_t)rv - 1) : -1;
                if (r < 0 || !(xg->covered & (1u << r)))
                    return ty_fail(err, "cluster queue %s: flavor %s: resource %s is not "
                                        "covered by its group", cq->name, fl->name,
                                   qu->resource ? qu->resource : "(null)");
                if (qu->nominal < 0 || qu->borrowing_limit < 0 || qu->lending_limit < 0 ||
                    qu->used < 0)
                    return ty_fail(err, "cluster queue %s: flavor %s: %s: negative quota",
                                   cq->name, fl->name, qu->resource);
                q->covered |= 1u << r;
                q->nominal[r] = qu->nominal;
                q->ext[r] = qu->used;
                q->blimit[r] = qu->borrowing_limit;
                q->lend[r] = qu->lending_limit < qu->nominal ? qu->lending_limit : qu->nominal;
            }
        }
        xg->n = x->n_fq - xg->first;
    }
    for (int k = 0; k < x->n_fq; k++)
        for (int r = 0; r < SC_R; r++) {
            if (!(x->fq[k].covered & (1u << r)))
                x->fq[k].blimit[r] = TY_SCHED_UNLIMITED;
            x->fq[k].guar[r] = x->fq[k].nominal[r] - x->fq[k].lend[r];
        }
    x->cohort = cq->cohort && *cq->cohort ? find_cohort(s, cq->cohort) : -1;
    x->id = s->n_cqs;
    PUSH(s->cqs, s->n_cqs, s->cap_cqs, x);
    ty_map_puts(&s->cq_ix, cq->name, x);
    return 0;
}

int ty_sched_add_workload(ty_sched *s, const ty_sched_workload *w, ty_error *err)
{
    if (s->ran)
        return ty_fail(err, "add workload: the pass has run");
    if (!w->key || !*w->key)
        return ty_fail(err, "add workload: no key");
    if (ix_get(&s->wl_ix, w->key))
        return ty_fail(err, "workload %s: already added", w->key);
    sc_cq *cq = ix_get(&s->cq_ix, w->cluster_queue);
    if (!cq)
        return ty_fail(err, "workload %s: cluster queue %s does not exist", w->key,
                       w->cluster_queue ? w->cluster_queue : "(null)");
    if (w->n_pod_sets == 0)
        return ty_fail(err, "workload %s: no pod sets", w->key);
    if (w->admitted && !w->admission)
        return ty_fail(err, "workload %s: admitted without an admission", w->key);
    /* named in its errors; formatted only then, as adds run thousands of times a pass */
    const sc_what wh = {"workload", w->key}, *what = &wh;
    sc_wl *x = sc_alloc(&s->arena, sizeof *x);
    x->key = sc_strdup(&s->arena, w->key);
    x->cq = cq->id;
    x->prio = w->priority;
    x->queued = w->queued_at_ms;
    x->eligible = w->eligible_at_ms;
    x->admitted = w->admitted;
    x->evicting = w->admitted && w->evicting;
    x->admitted_at = w->admitted_at_ms;
    x->decision = -1;
    x->n_ps = (int)w->n_pod_sets;
    x->ps = sc_alloc(&s->arena, w->n_pod_sets * sizeof *x->ps);
    for (size_t i = 0; i < w->n_pod_sets; i++) {
        const ty_sched_pod_set *p = &w->pod_sets[i];
        sc_ps *q = &x->ps[i];
        q->name = sc_strdup(&s->arena, p->name ? p->name : "main");
        for (size_t j = 0; j < i; j++)
            if (!strcmp(x->ps[j].name, q->name))
                return ty_fail(err, "%s %s: pod set %s appears twice", what->kind, what->name, q->name);
        if (p->count < 1)
            return ty_fail(err, "%s %s: pod set %s: count %d < 1", what->kind, what->name, q->name, p->count);
        if (x->pods > INT32_MAX / 2 - p->count)
            return ty_fail(err, "%s %s: too many pods", what->kind, what->name);
        q->count = p->count;
        x->pods += p->count;
        if (p->n_requests > SC_R)
            return ty_fail(err, "%s %s: pod set %s: more than %d requests", what->kind, what->name, q->name, SC_R);
        for (size_t k = 0; k < p->n_requests; k++) {
            const ty_sched_amount *a = &p->requests[k];
            if (!a->resource || !*a->resource)
                return ty_fail(err, "%s %s: pod set %s: a request without a resource", what->kind, what->name,
                               q->name);
            if (a->milli < 0)
                return ty_fail(err, "%s %s: pod set %s: %s: negative amount", what->kind, what->name, q->name,
                               a->resource);
            int r = res_id(s, a->resource, err);
            if (r < 0)
                return ty_error_wrap(err, "%s %s", what->kind, what->name);
            for (int j = 0; j < q->n_req; j++)
                if (q->res[j] == r)
                    return ty_fail(err, "%s %s: pod set %s: %s requested twice", what->kind, what->name, q->name,
                                   a->resource);
            q->res[q->n_req] = r;
            q->req[q->n_req++] = a->milli;
        }
        if (copy_labels(s, p->node_selector, p->n_node_selector, &q->sel, &q->n_sel, what, err) <
                0 ||
            copy_tols(s, p->tolerations, p->n_tolerations, &q->tols, &q->n_tols, what, err) < 0)
            return -1;
        if (p->affinity)
            q->aff = copy_affinity(s, p->affinity);
        q->most_free = p->most_free;
        if (!w->admitted)
            continue;
        const ty_sched_pod_set_admission *ad = &w->admission[i];
        if (q->n_req && !ad->flavors)
            return ty_fail(err, "%s %s: pod set %s: admission without flavors", what->kind, what->name, q->name);
        for (int k = 0; k < q->n_req; k++) {
            sc_flavor *fl = ix_get(&s->flavor_ix, ad->flavors[k]);
            if (!fl)
                return ty_fail(err, "%s %s: pod set %s: admitted on flavor %s, which does not exist",
                               what->kind, what->name, q->name, ad->flavors[k] ? ad->flavors[k] : "(null)");
            q->aflavor[k] = (int16_t)fl->id;
        }
        if (!ad->nodes)
            return ty_fail(err, "%s %s: pod set %s: admission without nodes", what->kind, what->name, q->name);
        /* Node pointers for now: indices change when the pass sorts the nodes. */
        sc_node **np = sc_alloc(&s->arena, (size_t)q->count * sizeof *np);
        for (int k = 0; k < q->count; k++) {
            np[k] = ix_get(&s->node_ix, ad->nodes[k]);
            if (!np[k])
                return ty_fail(err, "%s %s: pod set %s: admitted on node %s, which does not exist",
                               what->kind, what->name, q->name, ad->nodes[k] ? ad->nodes[k] : "(null)");
        }
        q->anodes = (int32_t *)(void *)np;
    }
    PUSH(s->wls, s->n_wls, s->cap_wls, x);
    ty_map_puts(&s->wl_ix, w->key, x);
    return 0;
}

/* ---- after the pass ---- */

size_t ty_sched_n_decisions(const ty_sched *s) { return s->n_dec; }

const ty_sched_decision *ty_sched_decision_at(const ty_sched *s, size_t i)
{
    return i < s->n_dec ? &s->dec[i] : NULL;
}

const ty_sched_decision *ty_sched_decision_of(const ty_sched *s, const char *workload)
{
    sc_wl *w = ix_get(&s->wl_ix, workload);
    return w && w->decision >= 0 ? &s->dec[w->decision] : NULL;
}

int64_t ty_sched_usage(const ty_sched *s, const char *cluster_queue, const char *flavor,
                       const char *resource)
{
    sc_cq *cq = ix_get(&s->cq_ix, cluster_queue);
    sc_flavor *fl = ix_get(&s->flavor_ix, flavor);
    void *rv = resource ? ty_map_gets(&s->res_ix, resource) : NULL;
    if (!cq || !fl || !rv)
        return -1;
    int r = (int)((intptr_t)rv - 1);
    for (int k = 0; k < cq->n_fq; k++)
        if (s->flavors[cq->fq[k].flavor] == fl)
            return cq->fq[k].usage[r] - cq->fq[k].held[r] + cq->fq[k].leaving[r];
    return 0;
}

int64_t ty_sched_weighted_share(const ty_sched *s, const char *cluster_queue)
{
    sc_cq *cq = ix_get(&s->cq_ix, cluster_queue);
    return cq && s->ran ? sc_share_as(s, cq, 0, true) : 0;
}

void ty_sched_stats_get(const ty_sched *s, ty_sched_stats *out)
{
    *out = s->st;
    out->nodes = (size_t)s->n_nodes;
    out->bytes = s->arena.bytes + sizeof *s +
                 (size_t)(s->cap_flavors + s->cap_nodes + s->cap_cqs + s->cap_cohorts +
                          s->cap_wls) * sizeof(void *) +
                 s->n_dec * sizeof *s->dec;
    for (int i = 0; i < s->n_flavors; i++)
        for (int b = 0; s->flavors[i]->buckets && b < s->flavors[i]->n_buckets; b++)
            out->bytes += (size_t)s->flavors[i]->buckets[b].cap * sizeof(int32_t);
}

/* splitmix64's finalizer: spreads one item's hash before the items are added up. */
static uint64_t spread(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* Each node and workload is hashed alone and the hashes are added, so that the checksum does
 * not depend on the order of the adds (nor on the pass's sorting of the arrays). Resources
 * are numbered as they first appear: a node's amounts count by resource name.
 *
 * MIX is an FNV-style multiply over whole 64-bit words with its own starting values, not
 * base/hash.h's FNV-1a: that one takes a byte at a time (eight multiplies a word), and this
 * pass is bench/sched's floor, meant to cost what reading the snapshot costs; with it the
 * floor would be slower and the pass / plain pass ratio the bench reports would move. Its
 * values are in docs/benchmarks.md's history, so they stay as they are. */
uint64_t ty_sched_plain_pass(const ty_sched *s)
{
    uint64_t sum = 0, h, rh[SC_R];
#define MIX(v) (h = (h ^ (uint64_t)(v)) * 1099511628211ull)
    for (int r = 0; r < s->n_res; r++) {
        h = 1469598103934665603ull;
        for (const char *c = s->res[r]; *c; c++)
            MIX((unsigned char)*c);
        rh[r] = h;
    }
    for (int i = 0; i < s->n_nodes; i++) {
        const sc_node *n = s->nodes[i];
        uint64_t amounts = 0;
        for (int r = 0; r < s->n_res; r++)
            amounts += spread(rh[r] ^ spread((uint64_t)(n->alloc[r] - n->ext[r])));
        h = 1469598103934665603ull;
        MIX(amounts);
        MIX(n->n_labels);
        sum += spread(h);
    }
    for (int i = 0; i < s->n_wls; i++) {
        const sc_wl *w = s->wls[i];
        h = 1099511628211ull; /* not the nodes' basis: a node never hashes as a workload */
        MIX(w->prio);
        MIX(w->queued);
        for (int p = 0; p < w->n_ps; p++) {
            MIX(w->ps[p].count);
            for (int k = 0; k < w->ps[p].n_req; k++)
                MIX(w->ps[p].req[k]);
        }
        sum += spread(h);
    }
#undef MIX
    return spread(sum ^ ((uint64_t)s->n_nodes << 32 | (uint32_t)s->n_wls));
}
