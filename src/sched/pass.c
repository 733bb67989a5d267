/* The pass: sort the snapshot by names, account what is admitted, then take the heads of all
 * queues in one global order and decide each pending workload once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "sched/sched_int.h"

/* Flavors, nodes, queues and workloads all start with their name (sc_*.name, sc_wl.key). */
static const char *name_of(const void *obj) { return *(const char *const *)obj; }

static int by_name(const void *a, const void *b)
{
    return strcmp(name_of(*(void *const *)a), name_of(*(void *const *)b));
}

typedef struct nkey {
    uint64_t k[2]; /* the 16 bytes after the shared prefix, big-endian, zeros past the end */
    void *obj;
} nkey;

/* Sorts objects by name in strcmp's (unsigned byte) order. Sorting by name was a third of a
 * pass that does not preempt, so: nothing to do when the adds came in order (the controller
 * adds in name order); else each name is keyed by the 16 bytes after the prefix all names
 * share (the same order as strcmp's for names that differ there), the keys radix-sorted, and
 * only runs of equal keys compared with strcmp. */
static void sort_by_name(void **objs, int n)
{
    int i = 1;
    while (i < n && strcmp(name_of(objs[i - 1]), name_of(objs[i])) < 0)
        i++;
    if (i >= n)
        return;
    const char *first = name_of(objs[0]);
    size_t lcp = strlen(first);
    for (i = 1; i < n && lcp; i++) {
        const char *x = name_of(objs[i]);
        size_t j = 0;
        while (j < lcp && x[j] == first[j])
            j++;
        lcp = j;
    }
    nkey *a = ty_malloc((size_t)n * sizeof *a), *b = ty_malloc((size_t)n * sizeof *b);
    for (i = 0; i < n; i++) {
        const unsigned char *x = (const unsigned char *)name_of(objs[i]) + lcp;
        a[i] = (nkey){{0, 0}, objs[i]};
        for (int j = 0; j < 16 && x[j]; j++)
            a[i].k[j / 8] |= (uint64_t)x[j] << (8 * (7 - j % 8));
    }
    /* least significant byte first, stable; a byte that is the same in every key is skipped */
    for (int pass = 0; pass < 16; pass++) {
        int w = pass < 8 ? 1 : 0, shift = 8 * (pass % 8);
        size_t count[257] = {0};
        for (i = 0; i < n; i++)
            count[((a[i].k[w] >> shift) & 0xff) + 1]++;
        if (count[((a[0].k[w] >> shift) & 0xff) + 1] == (size_t)n)
            continue;
        for (int d = 0; d < 256; d++)
            count[d + 1] += count[d];
        for (i = 0; i < n; i++)
            b[count[(a[i].k[w] >> shift) & 0xff]++] = a[i];
        nkey *t = a;
        a = b;
        b = t;
    }
    for (i = 0; i < n; i++)
        objs[i] = a[i].obj;
    for (i = 0; i < n;) {
        int j = i + 1;
        while (j < n && a[j].k[0] == a[i].k[0] && a[j].k[1] == a[i].k[1])
            j++;
        if (j - i > 1)
            qsort(objs + i, (size_t)(j - i), sizeof *objs, by_name);
        i = j;
    }
    free(a);
    free(b);
}

/* Queue order: priority, then age, then key. */
static int by_queue_order(const void *a, const void *b)
{
    const sc_wl *x = *(sc_wl *const *)a, *y = *(sc_wl *const *)b;
    if (x->prio != y->prio)
        return x->prio > y->prio ? -1 : 1;
    if (x->queued != y->queued)
        return x->queued < y->queued ? -1 : 1;
    return strcmp(x->key, y->key);
}

/* qsort() with an empty (NULL) array is undefined behaviour; an empty snapshot has them. */
static void sort(void *base, int n, size_t size, int (*cmp)(const void *, const void *))
{
    if (n > 1)
        qsort(base, (size_t)n, size, cmp);
}

/* Makes every index follow the names, whatever the order of the adds. */
static void sort_snapshot(ty_sched *s)
{
    sort_by_name((void **)s->flavors, s->n_flavors);
    sort_by_name((void **)s->nodes, s->n_nodes);
    sort_by_name((void **)s->cqs, s->n_cqs);
    sort_by_name((void **)s->wls, s->n_wls);
    int *fmap = ty_malloc((size_t)(s->n_flavors + 1) * sizeof *fmap);
    int *qmap = ty_malloc((size_t)(s->n_cqs + 1) * sizeof *qmap);
    for (int i = 0; i < s->n_flavors; i++)
        fmap[s->flavors[i]->id] = i;
    for (int i = 0; i < s->n_flavors; i++)
        s->flavors[i]->id = i;
    for (int i = 0; i < s->n_cqs; i++)
        qmap[s->cqs[i]->id] = i;
    for (int i = 0; i < s->n_cqs; i++) {
        sc_cq *cq = s->cqs[i];
        cq->id = i;
        for (int k = 0; k < cq->n_fq; k++)
            cq->fq[k].flavor = fmap[cq->fq[k].flavor];
    }
    for (int i = 0; i < s->n_nodes; i++)
        s->nodes[i]->rank = i;
    for (int i = 0; i < s->n_wls; i++) {
        sc_wl *w = s->wls[i];
        w->cq = qmap[w->cq];
        if (!w->admitted)
            continue;
        for (int p = 0; p < w->n_ps; p++) {
            sc_ps *ps = &w->ps[p];
            for (int k = 0; k < ps->n_req; k++)
                ps->aflavor[k] = (int16_t)fmap[ps->aflavor[k]];
            sc_node **np = (sc_node **)(void *)ps->anodes;
            int32_t *ids = sc_alloc(&s->arena, (size_t)ps->count * sizeof *ids);
            for (int k = 0; k < ps->count; k++)
                ids[k] = np[k]->rank;
            ps->anodes = ids;
        }
    }
    free(fmap);
    free(qmap);
}

static void build_queues(ty_sched *s)
{
    for (int i = 0; i < s->n_wls; i++) {
        sc_wl *w = s->wls[i];
        sc_cq *cq = s->cqs[w->cq];
        if (w->admitted)
            cq->n_admitted++, cq->n_evicting += w->evicting;
        else
            cq->n_pending++;
    }
    for (int i = 0; i < s->n_cqs; i++) {
        sc_cq *cq = s->cqs[i];
        cq->pending = sc_alloc(&s->arena, (size_t)(cq->n_pending + 1) * sizeof(sc_wl *));
        cq->admitted = sc_alloc(&s->arena, (size_t)(cq->n_admitted + 1) * sizeof(sc_wl *));
        cq->evicting = sc_alloc(&s->arena, (size_t)(cq->n_evicting + 1) * sizeof(sc_wl *));
        cq->n_pending = cq->n_admitted = cq->n_evicting = 0;
        if (cq->cohort >= 0) {
            sc_cohort *co = s->cohorts[cq->cohort];
            if (!co->members)
                co->members = sc_alloc(&s->arena, (size_t)s->n_cqs * sizeof(int32_t));
            co->members[co->n_members++] = i;
        }
    }
    for (int i = 0; i < s->n_wls; i++) {
        sc_wl *w = s->wls[i];
        sc_cq *cq = s->cqs[w->cq];
        if (w->admitted && w->evicting)
            cq->evicting[cq->n_evicting++] = w;
        if (w->admitted)
            cq->admitted[cq->n_admitted++] = w;
        else
            cq->pending[cq->n_pending++] = w;
    }
    for (int i = 0; i < s->n_cqs; i++)
        sort(s->cqs[i]->pending, s->cqs[i]->n_pending, sizeof(sc_wl *), by_queue_order);
}

static ty_sched_decision *decide(ty_sched *s, sc_wl *w, ty_sched_verdict v, const char *msg)
{
    ty_sched_decision *d = &s->dec[s->n_dec];
    w->decision = (int)s->n_dec++;
    d->workload = w->key;
    d->cluster_queue = s->cqs[w->cq]->name;
    d->verdict = v;
    d->message = msg ? sc_strdup(&s->arena, msg) : NULL;
    if (v == TY_SCHED_ADMIT)
        s->st.admitted++;
    else if (v == TY_SCHED_PREEMPT)
        s->st.preempting++;
    else
        s->st.waiting++;
    return d;
}

static void fill_admission(ty_sched *s, ty_sched_decision *d, sc_wl *w, const int32_t *nodes)
{
    ty_sched_pod_set_admission *a = sc_alloc(&s->arena, (size_t)w->n_ps * sizeof *a);
    int at = 0;
    for (int p = 0; p < w->n_ps; p++) {
        sc_ps *ps = &w->ps[p];
        const char **fl = sc_alloc(&s->arena, (size_t)(ps->n_req ? ps->n_req : 1) * sizeof *fl);
        for (int k = 0; k < ps->n_req; k++)
            fl[k] = ps->flav[k] >= 0 ? s->flavors[ps->flav[k]]->name : "";
        const char **nd = sc_alloc(&s->arena, (size_t)ps->count * sizeof *nd);
        for (int i = 0; i < ps->count; i++)
            nd[i] = s->nodes[nodes[at++]]->name;
        a[p].flavors = fl;
        a[p].nodes = nd;
    }
    d->pod_sets = a;
    d->n_pod_sets = (size_t)w->n_ps;
}

typedef struct head {
    sc_wl *w;
    int64_t share;
    bool borrow;
    int tries;
} head;

static int head_cmp(const ty_sched *s, const head *a, const head *b)
{
    if (s->cfg.fair_sharing && a->share != b->share)
        return a->share < b->share ? -1 : 1;
    if (a->borrow != b->borrow)
        return a->borrow ? 1 : -1;
    return by_queue_order(&a->w, &b->w);
}

static void heap_push(const ty_sched *s, head *h, int *n, head e)
{
    int i = (*n)++;
    h[i] = e;
    while (i > 0) {
        int p = (i - 1) / 2;
        if (head_cmp(s, &h[i], &h[p]) >= 0)
            break;
        head t = h[i];
        h[i] = h[p];
        h[p] = t;
        i = p;
    }
}

static head heap_pop(const ty_sched *s, head *h, int *n)
{
    head top = h[0];
    h[0] = h[--(*n)];
    int i = 0;
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < *n && head_cmp(s, &h[l], &h[m]) < 0)
            m = l;
        if (r < *n && head_cmp(s, &h[r], &h[m]) < 0)
            m = r;
        if (m == i)
            break;
        head t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
    return top;
}

static void head_key(ty_sched *s, head *e)
{
    sc_wl *w = e->w;
    int mode = sc_assign(s, w, NULL);
    e->borrow = mode == SC_BORROW || (mode == SC_PREEMPT && sc_would_borrow(s, w));
    e->share = s->cfg.fair_sharing && mode != SC_NOFIT ? sc_share(s, s->cqs[w->cq], 1) : 0;
}

static sc_wl *next_pending(sc_cq *cq)
{
    while (cq->next < cq->n_pending && cq->pending[cq->next]->decision >= 0)
        cq->next++;
    return cq->next < cq->n_pending ? cq->pending[cq->next] : NULL;
}

static void push_head(ty_sched *s, head *h, int *n, sc_cq *cq)
{
    if (cq->blocked)
        return;
    sc_wl *w = next_pending(cq);
    if (!w)
        return;
    head e = {.w = w};
    head_key(s, &e);
    heap_push(s, h, n, e);
}

static void admit(ty_sched *s, sc_wl *w)
{
    sc_cq *cq = s->cqs[w->cq];
    bool borrowing = sc_would_borrow(s, w); /* also fills s->need */
    for (int k = 0; k < cq->n_fq; k++)
        for (int r = 0; r < s->n_res; r++)
            if (s->need[k * SC_R + r])
                sc_usage_add(s, cq, k, r, s->need[k * SC_R + r]);
    ty_sched_decision *d = decide(s, w, TY_SCHED_ADMIT, NULL);
    d->borrowing = borrowing;
    fill_admission(s, d, w, s->placed);
    s->st.pods_placed += (size_t)w->pods;
}

enum { TRY_NONE, TRY_ADMITTED, TRY_PREEMPTING, TRY_WAITING };

/* Admits w with its current assignment (mode >= SC_BORROW) when the nodes take it, else
 * looks for victims; msg gets the reason it does not fit. */
static int attempt(ty_sched *s, sc_wl *w, int mode, char *msg)
{
    sc_cq *cq = s->cqs[w->cq];
    msg[0] = 0;
    if (mode >= SC_BORROW) {
        int p = sc_place(s, w);
        if (p < 0) {
            admit(s, w);
            return TRY_ADMITTED;
        }
        sc_place_msg(s, w, p, msg);
    } else {
        sc_assign(s, w, msg);
    }
    int n = 0;
    ty_sched_preempt_reason *reasons = NULL;
    int pre = sc_preempt(s, w, &n, &reasons);
    if (pre == SC_PRE_VICTIMS) {
        sc_msgf(msg, ". Pending the preemption of %d workload(s)", n);
        ty_sched_decision *d = decide(s, w, TY_SCHED_PREEMPT, msg);
        ty_sched_victim *v = sc_alloc(&s->arena, (size_t)n * sizeof *v);
        for (int i = 0; i < n; i++)
            v[i] = (ty_sched_victim){s->victims[i]->key, reasons[i]};
        d->victims = v;
        d->n_victims = (size_t)n;
        sc_need(s, w); /* its need is counted in its queue's usage now */
        for (int k = 0; k < cq->n_fq; k++)
            for (int r = 0; r < s->n_res; r++)
                if (s->need[k * SC_R + r] && cq->fq[k].usage[r] > cq->fq[k].nominal[r])
                    d->borrowing = true;
        fill_admission(s, d, w, s->placed2);
        s->st.victims += (size_t)n;
        return TRY_PREEMPTING;
    }
    if (pre == SC_PRE_EVICTING) {
        sc_msgf(msg, ". Waiting for %d evicted workload(s) to leave", n);
        decide(s, w, TY_SCHED_WAIT, msg);
        return TRY_WAITING;
    }
    return TRY_NONE;
}

static void assign_from_start(sc_wl *w)
{
    for (int p = 0; p < w->n_ps; p++)
        memset(w->ps[p].from, 0, sizeof w->ps[p].from);
}

/* Kueue's resourcesToReserve: a head that needs preemption but has no victims keeps the
 * quota it would take (up to its nominal quota, or its borrowing limit when it borrows) from
 * lower-priority work elsewhere in the cohort, unless its queue can always reclaim it
 * (reclaimWithinCohort: Any). Counted in its queue's usage, not reported. */
static void reserve_quota(ty_sched *s, sc_wl *w)
{
    sc_cq *cq = s->cqs[w->cq];
    if (cq->reclaim == TY_SCHED_PREEMPT_ANY)
        return;
    bool borrows = cq->cohort >= 0 && sc_would_borrow(s, w); /* fills s->need */
    for (int k = 0; k < cq->n_fq; k++)
        for (int r = 0; r < s->n_res; r++) {
            int64_t v = s->need[k * SC_R + r];
            sc_fq *q = &cq->fq[k];
            if (!v)
                continue;
            int64_t cap = !borrows                              ? q->nominal[r]
                          : q->blimit[r] == TY_SCHED_UNLIMITED ? INT64_MAX
                                                               : q->nominal[r] + q->blimit[r];
            int64_t room = cap == INT64_MAX ? v : cap - q->usage[r];
            if (room > v)
                room = v;
            if (room <= 0)
                continue;
            sc_usage_add(s, cq, k, r, room);
            q->held[r] += room;
        }
}

/* Returns whether the queue may go on to the next workload (StrictFIFO). */
static bool process(ty_sched *s, sc_wl *w)
{
    sc_cq *cq = s->cqs[w->cq];
    char msg[SC_MSG] = "";
    assign_from_start(w);
    int mode = sc_assign(s, w, NULL);
    if (mode == SC_NOFIT) {
        sc_assign(s, w, msg);
        decide(s, w, TY_SCHED_WAIT, msg);
        return false;
    }
    int got = attempt(s, w, mode, msg);
    if (got != TRY_NONE)
        return true;
    if (mode == SC_PREEMPT) {
        /* No victims on the flavors chosen: Kueue's next cycles go on from the next flavor
         * (its LastAssignment), so a later flavor that fits or has victims is taken now. */
        char other[SC_MSG];
        bool moved = false;
        while (sc_assign_next(s, w)) {
            moved = true;
            int m = sc_assign(s, w, NULL);
            if (m != SC_NOFIT && attempt(s, w, m, other) != TRY_NONE) {
                assign_from_start(w);
                return true;
            }
        }
        if (moved) {
            assign_from_start(w);
            sc_assign(s, w, NULL);
        }
        if (cq->queueing == TY_SCHED_STRICT_FIFO)
            reserve_quota(s, w);
    }
    /* Fits quota, not nodes: hold the nodes it needs, so that it is not starved. */
    if (mode >= SC_BORROW && !cq->reserved_once) {
        cq->reserved_once = true;
        if (!sc_reserve_for(s, w))
            sc_msgf(msg, "; it cannot fit even on empty nodes");
    }
    decide(s, w, TY_SCHED_WAIT, msg);
    return false;
}

void ty_sched_run(ty_sched *s)
{
    if (s->ran)
        return;
    s->ran = true;
    sort_snapshot(s);
    void *pv = ty_map_gets(&s->res_ix, s->pack_name);
    s->pack = pv ? (int)((intptr_t)pv - 1) : -1;
    pv = ty_map_gets(&s->res_ix, "pods");
    s->pods = pv ? (int)((intptr_t)pv - 1) : -1;
    build_queues(s);
    sc_quota_init(s);
    sc_place_init(s);
    s->dec = ty_calloc((size_t)s->n_wls + 1, sizeof *s->dec);
    s->cands = ty_malloc(((size_t)s->n_wls + 1) * sizeof *s->cands);
    s->cands2 = ty_malloc(((size_t)s->n_wls + 1) * sizeof *s->cands2);
    s->victims = ty_malloc(((size_t)s->n_wls + 1) * sizeof *s->victims);

    char msg[SC_MSG];
    for (int i = 0; i < s->n_cqs; i++) {
        sc_cq *cq = s->cqs[i];
        s->st.workloads_pending += (size_t)cq->n_pending;
        for (int j = 0; j < cq->n_pending; j++) {
            sc_wl *w = cq->pending[j];
            if (cq->stopped) {
                snprintf(msg, sizeof msg, "ClusterQueue %s is inactive: its stopPolicy holds it",
                         cq->name);
                decide(s, w, TY_SCHED_WAIT, msg);
            } else if (w->eligible > s->cfg.now_ms) {
                decide(s, w, TY_SCHED_WAIT, "waiting for the requeue back-off");
            }
        }
    }

    head *h = ty_malloc(((size_t)s->n_cqs + 1) * sizeof *h);
    int nh = 0;
    for (int i = 0; i < s->n_cqs; i++)
        push_head(s, h, &nh, s->cqs[i]);
    while (nh > 0) {
        head e = heap_pop(s, h, &nh);
        sc_cq *cq = s->cqs[e.w->cq];
        /* Its key was computed before the workloads admitted since then: when it got worse
         * than the next head's, let that one go first (a few times, to bound the work). */
        if (nh > 0 && e.tries < 3) {
            head_key(s, &e);
            if (head_cmp(s, &e, &h[0]) > 0) {
                e.tries++;
                heap_push(s, h, &nh, e);
                continue;
            }
        }
        bool go_on = process(s, e.w);
        if (!go_on && cq->queueing == TY_SCHED_STRICT_FIFO) {
            cq->blocked = true;
            cq->blocked_by = e.w->key;
        }
        push_head(s, h, &nh, cq);
    }
    free(h);

    for (int i = 0; i < s->n_cqs; i++) {
        sc_cq *cq = s->cqs[i];
        for (int j = 0; j < cq->n_pending; j++) {
            sc_wl *w = cq->pending[j];
            if (w->decision >= 0)
                continue;
            snprintf(msg, sizeof msg,
                     "waiting behind workload %s, which heads StrictFIFO ClusterQueue %s and "
                     "cannot be admitted",
                     cq->blocked_by ? cq->blocked_by : "?", cq->name);
            decide(s, w, TY_SCHED_WAIT, msg);
        }
    }
    sc_place_stats(s);
}
