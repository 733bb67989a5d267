/* Preemption: Kueue's candidates (withinClusterQueue, reclaimWithinCohort, borrowWithinCohort,
 * or fair sharing), its ordering, the greedy search until the preemptor fits quota and nodes,
 * then the give-back pass that keeps the fewest victims. */
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "sched/sched_int.h"

/* Whether admitted c uses a (flavor, resource) that the preemptor contends for (s->pre, the
 * preemptor's queue's entries). */
static bool contends(const ty_sched *s, const sc_cq *pcq, const sc_wl *c)
{
    for (int p = 0; p < c->n_ps; p++) {
        const sc_ps *ps = &c->ps[p];
        for (int k = 0; k < ps->n_req; k++) {
            int fqi = pcq->fq_of[ps->aflavor[k]];
            if (ps->req[k] && fqi >= 0 && s->pre[fqi * SC_R + ps->res[k]])
                return true;
        }
    }
    return false;
}

/* Whether queue x borrows a (flavor, resource) that the preemptor contends for (Kueue's
 * cqIsBorrowing). */
static bool borrows_contended(const ty_sched *s, const sc_cq *pcq, const sc_cq *x)
{
    for (int k = 0; k < x->n_fq; k++) {
        int fqi = pcq->fq_of[x->fq[k].flavor];
        if (fqi < 0)
            continue;
        for (int r = 0; r < s->n_res; r++)
            if (s->pre[fqi * SC_R + r] && x->fq[k].usage[r] > x->fq[k].nominal[r])
                return true;
    }
    return false;
}

/* Kueue's candidate order within one group (other queues' candidates, then the preemptor's
 * own): lowest priority first, then the most recently admitted, then key. */
static int victim_cmp(const void *a, const void *b)
{
    const sc_wl *x = *(sc_wl *const *)a, *y = *(sc_wl *const *)b;
    if (x->prio != y->prio)
        return x->prio < y->prio ? -1 : 1;
    if (x->admitted_at != y->admitted_at)
        return x->admitted_at > y->admitted_at ? -1 : 1;
    return strcmp(x->key, y->key);
}

static int vent_cmp(const void *a, const void *b)
{
    return victim_cmp(&((const sc_vent *)a)->w, &((const sc_vent *)b)->w);
}

/* Adds (sign 1) or subtracts admitted c's quota usage to acc ([fq * SC_R + r] of its queue). */
static void usage_of(const ty_sched *s, const sc_wl *c, int64_t *acc, int sign)
{
    const sc_cq *x = s->cqs[c->cq];
    for (int p = 0; p < c->n_ps; p++) {
        const sc_ps *ps = &c->ps[p];
        for (int k = 0; k < ps->n_req; k++) {
            int fqi = x->fq_of[ps->aflavor[k]];
            if (fqi >= 0 && ps->req[k])
                acc[fqi * SC_R + ps->res[k]] += sign * sc_mul(ps->req[k], ps->count);
        }
    }
}

static void fill_vl(sc_vent *vl, int n)
{
    for (int i = 0; i < n; i++) {
        sc_wl *c = vl[i].w;
        vl[i].prio = c->prio;
        vl[i].cq = c->cq;
        vl[i].out = c->evicting || c->victim;
        for (int p = 0; p < c->n_ps; p++)
            for (int k = 0; k < c->ps[p].n_req; k++) {
                int f = c->ps[p].aflavor[k];
                if (!c->ps[p].req[k])
                    continue;
                if (f >= 64 / SC_R)
                    vl[i].wide = true;
                else
                    vl[i].uses |= 1ull << (f * SC_R + c->ps[p].res[k]);
            }
        c->vpos = i;
    }
}

/* The order does not change during a pass: sort once, when the first preemptor needs it, and
 * gather every preemptor's candidates already in order by walking these lists. */
static void victim_order(ty_sched *s)
{
    s->victim_order = true;
    int most_fq = 1;
    for (int i = 0; i < s->n_cqs; i++)
        if (s->cqs[i]->n_fq > most_fq)
            most_fq = s->cqs[i]->n_fq;
    s->qacc_stride = most_fq * SC_R;
    size_t st = (size_t)s->qacc_stride;
    s->qacc = ty_calloc((size_t)(s->n_cqs + 1) * st, sizeof *s->qacc);
    s->gives = ty_calloc((size_t)s->n_cqs + 1, sizeof *s->gives);
    for (int i = 0; i < s->n_cqs; i++) {
        sc_cq *cq = s->cqs[i];
        if (cq->n_admitted > 1)
            qsort(cq->admitted, (size_t)cq->n_admitted, sizeof *cq->admitted, victim_cmp);
        int n = 0;
        for (int j = 0; j < cq->n_admitted; j++)
            n += j == 0 || cq->admitted[j]->prio != cq->admitted[j - 1]->prio;
        cq->lv_prio = sc_alloc(&s->arena, (size_t)(n + 1) * sizeof *cq->lv_prio);
        cq->lv_use = sc_alloc(&s->arena, (size_t)(n + 1) * st * sizeof *cq->lv_use);
        memset(cq->lv_use, 0, (size_t)(n + 1) * st * sizeof *cq->lv_use);
        for (int j = 0; j < cq->n_admitted; j++) {
            sc_wl *c = cq->admitted[j];
            if (j == 0 || c->prio != cq->admitted[j - 1]->prio)
                cq->lv_prio[cq->n_lv++] = c->prio;
            if (!c->evicting && !c->victim)
                usage_of(s, c, cq->lv_use + (size_t)(cq->n_lv - 1) * st, 1);
        }
        if (cq->cohort < 0) {
            cq->vl = sc_alloc(&s->arena, (size_t)(cq->n_admitted + 1) * sizeof *cq->vl);
            memset(cq->vl, 0, (size_t)(cq->n_admitted + 1) * sizeof *cq->vl);
            for (int j = 0; j < cq->n_admitted; j++)
                cq->vl[j].w = cq->admitted[j];
            cq->n_vl = cq->n_admitted;
            fill_vl(cq->vl, cq->n_vl);
        }
    }
    for (int i = 0; i < s->n_cohorts; i++) {
        sc_cohort *co = s->cohorts[i];
        int n = 0;
        for (int m = 0; m < co->n_members; m++)
            n += s->cqs[co->members[m]]->n_admitted;
        co->vl = sc_alloc(&s->arena, (size_t)(n + 1) * sizeof *co->vl);
        memset(co->vl, 0, (size_t)(n + 1) * sizeof *co->vl);
        for (int m = 0; m < co->n_members; m++) {
            const sc_cq *x = s->cqs[co->members[m]];
            for (int j = 0; j < x->n_admitted; j++)
                co->vl[co->n_vl++].w = x->admitted[j];
        }
        if (n > 1)
            qsort(co->vl, (size_t)n, sizeof *co->vl, vent_cmp);
        fill_vl(co->vl, n);
        for (int m = 0; m < co->n_members; m++) {
            s->cqs[co->members[m]]->vl = co->vl;
            s->cqs[co->members[m]]->n_vl = n;
        }
    }
}

/* Adds to s->qacc queue x's usage of its priority levels below `below` (all: every level;
 * threshold: only those at most at_most too). */
static void levels_sum(ty_sched *s, const sc_cq *x, bool all, int32_t below, bool threshold,
                       int32_t at_most)
{
    size_t st = (size_t)s->qacc_stride;
    int64_t *acc = s->qacc + (size_t)x->id * st;
    for (int l = 0; l < x->n_lv; l++) {
        int32_t p = x->lv_prio[l];
        if (!all && (p >= below || (threshold && p > at_most)))
            continue;
        const int64_t *u = x->lv_use + (size_t)l * st;
        for (int k = 0; k < x->n_fq * SC_R; k++)
            acc[k] += u[k];
    }
}

/* Takes the summed usage out of (sign -1) or back into (1) the queues of cq's cohort, one
 * change per entry: the cohort's pool follows each change by a difference that telescopes, so
 * it ends where taking the candidates out one at a time would leave it. clear: zero the sums. */
static void quota_apply(ty_sched *s, sc_cq *cq, int sign, bool clear)
{
    const sc_cohort *co = cq->cohort >= 0 ? s->cohorts[cq->cohort] : NULL;
    int n = co ? co->n_members : 1;
    for (int m = 0; m < n; m++) {
        sc_cq *x = co ? s->cqs[co->members[m]] : cq;
        int64_t *acc = s->qacc + (size_t)x->id * (size_t)s->qacc_stride;
        for (int k = 0; k < x->n_fq; k++)
            for (int r = 0; r < SC_R; r++) {
                int64_t v = acc[k * SC_R + r];
                if (!v)
                    continue;
                sc_usage_add(s, x, k, r, sign * v);
                if (clear)
                    acc[k * SC_R + r] = 0;
            }
    }
}

static void take(ty_sched *s, sc_wl *c, int sign)
{
    sc_wl_quota(s, c, sign);
    sc_wl_nodes(s, c, sign);
    c->gone = sign < 0;
}

/* Like fits(), but on success the preemptor's pods stay where they would go (s->placed2), so
 * that the room it waits for is held against everything after it in the pass. */
static bool hold(ty_sched *s, sc_wl *w)
{
    if (!sc_fits_quota(s, w, true) || sc_place(s, w) >= 0)
        return false;
    memcpy(s->placed2, s->placed, (size_t)w->pods * sizeof(int32_t));
    return true;
}

/* The search for victims of one preemptor. Victims move with move(): quota at once, nodes
 * only their free room (sc_node_free), so that a victim costs no bucket work. room[p] counts
 * the pods of the preemptor's pod set p that the nodes have room for, kept up to date as
 * victims move once it is first needed (takes[p * n_nodes + node]: sc_node_takes); where it
 * counts exactly (counts[p]), it says whether the pod set can be placed without calling
 * sc_place. ok caches nodes_fit()'s answer while known: a move that changes only nodes with
 * no room for any of its pods before and after cannot change what sc_place does, as it never
 * picks them. s->need stays the preemptor's throughout. */
typedef struct trial {
    sc_wl *w;
    bool borrow; /* the preemptor may borrow once the victims are gone */
    int64_t *room;
    bool *counts;
    uint8_t *takes;
    bool tracking;
    bool any_node; /* a pod set without flavor: sc_place takes any node, room or not */
    bool known, ok;
} trial;

static void move(ty_sched *s, trial *t, sc_wl *c, int sign)
{
    sc_wl_quota(s, c, sign);
    c->gone = sign < 0;
    const sc_wl *w = t->w;
    for (int p = 0; p < c->n_ps; p++)
        for (int i = 0; i < c->ps[p].count; i++) {
            int id = c->ps[p].anodes[i];
            sc_node *n = s->nodes[id];
            if (!t->tracking) {
                sc_node_free(s, n, &c->ps[p], sign);
                continue;
            }
            bool relevant = t->any_node;
            for (int j = 0; j < w->n_ps; j++)
                if (t->takes[(size_t)j * (size_t)s->n_nodes + (size_t)id]) {
                    int64_t r = sc_room_count(s, n, &w->ps[j]);
                    relevant |= r > 0;
                    t->room[j] -= r;
                }
            sc_node_free(s, n, &c->ps[p], sign);
            for (int j = 0; j < w->n_ps; j++)
                if (t->takes[(size_t)j * (size_t)s->n_nodes + (size_t)id]) {
                    int64_t r = sc_room_count(s, n, &w->ps[j]);
                    relevant |= r > 0;
                    t->room[j] += r;
                }
            if (relevant)
                t->known = false;
        }
}

static void track(ty_sched *s, trial *t)
{
    sc_wl *w = t->w;
    t->tracking = true;
    t->takes = ty_calloc((size_t)(w->n_ps + 1) * (size_t)(s->n_nodes + 1), 1);
    for (int j = 0; j < w->n_ps; j++) {
        const sc_ps *ps = &w->ps[j];
        int f = sc_primary_flavor(s, ps);
        t->room[j] = 0;
        if (f < 0)
            continue;
        const sc_flavor *fl = s->flavors[f];
        uint8_t *tk = t->takes + (size_t)j * (size_t)s->n_nodes;
        for (int i = 0; i < fl->n_nodes; i++) {
            const sc_node *n = s->nodes[fl->nodes[i]];
            if (!sc_node_takes(s, n, ps))
                continue;
            tk[fl->nodes[i]] = 1;
            t->room[j] += sc_room_count(s, n, ps);
        }
    }
}

/* Whether sc_place would place the whole gang now. Each pod set alone needs room for its pods
 * (pod sets placed before it only take room): when one lacks it, the gang cannot fit; a single
 * pod set that counts exactly fits when it has it. Otherwise sc_place decides. */
static bool nodes_fit(ty_sched *s, trial *t)
{
    sc_wl *w = t->w;
    if (!t->tracking)
        track(s, t);
    if (t->known)
        return t->ok;
    t->known = true;
    t->ok = false;
    for (int j = 0; j < w->n_ps; j++)
        if (t->counts[j] && t->room[j] < w->ps[j].count)
            return false;
    if (w->n_ps == 1 && t->counts[0])
        return t->ok = true;
    sc_nodes_sync(s);
    if (sc_place(s, w) >= 0)
        return false;
    sc_unplace(s, w, s->placed);
    return t->ok = true;
}

/* Quota and nodes; leaves the nodes as they were. The nodes' answer, when known, is cheaper. */
static bool fits(ty_sched *s, trial *t)
{
    if (t->known && !t->ok)
        return false;
    return sc_fits_need(s, t->w, t->borrow) && nodes_fit(s, t);
}

/* The preemptor's quota counts in its queue's usage for the rest of the pass (not reported). */
static void hold_quota(ty_sched *s, sc_wl *w)
{
    sc_cq *cq = s->cqs[w->cq];
    sc_need(s, w);
    for (int k = 0; k < cq->n_fq; k++)
        for (int r = 0; r < s->n_res; r++) {
            int64_t v = s->need[k * SC_R + r];
            if (v) {
                sc_usage_add(s, cq, k, r, v);
                cq->fq[k].held[r] += v;
            }
        }
}

/* Victim c leaves the accounting for what the preemptor takes of it (s->left: the preemptor's
 * need per flavor and resource not yet covered by earlier victims); the rest of its usage
 * stays counted, so that no one else gets room that this preemption makes. */
static void absorb(ty_sched *s, sc_wl *c)
{
    sc_cq *x = s->cqs[c->cq];
    for (int p = 0; p < c->n_ps; p++) {
        sc_ps *ps = &c->ps[p];
        for (int k = 0; k < ps->n_req; k++) {
            int fqi = x->fq_of[ps->aflavor[k]];
            int64_t amt = sc_mul(ps->req[k], ps->count);
            if (fqi < 0 || !amt)
                continue;
            int64_t *left = &s->left[ps->aflavor[k] * SC_R + ps->res[k]];
            int64_t use = amt < *left ? amt : *left;
            *left -= use;
            if (amt - use)
                sc_usage_add(s, x, fqi, ps->res[k], amt - use);
            x->fq[fqi].leaving[ps->res[k]] += use;
        }
    }
}

/* Gives back, latest chosen first (the last one is needed), every victim the preemptor fits
 * without; keeps s->victims and rs aligned. */
static int give_back(ty_sched *s, trial *t, int nv, ty_sched_preempt_reason *rs)
{
    for (int i = nv - 2; i >= 0; i--) {
        sc_wl *c = s->victims[i];
        move(s, t, c, 1);
        if (fits(s, t)) {
            memmove(s->victims + i, s->victims + i + 1,
                    (size_t)(nv - i - 1) * sizeof *s->victims);
            memmove(rs + i, rs + i + 1, (size_t)(nv - i - 1) * sizeof *rs);
            nv--;
        } else {
            move(s, t, c, -1);
            /* back where everything fitted */
            t->known = t->ok = true;
        }
    }
    return nv;
}

static void undo(ty_sched *s, trial *t, int nv)
{
    for (int i = nv - 1; i >= 0; i--)
        move(s, t, s->victims[i], 1);
}

/* Kueue's minimalPreemptions: takes cands in order (another queue's only while that queue
 * still borrows what is contended) until the preemptor fits its quota (borrowing only when
 * allowed) and the nodes, then gives back what is not needed. borrowWithinCohort's threshold
 * (or NULL): taking another queue's workload at or above it forbids borrowing. Returns the
 * victims' count (s->victims, reasons in rs), 0 when it does not fit; on 0 nothing moved. */
static int minimal(ty_sched *s, trial *t, sc_wl **cands, int n, bool borrow,
                   const int32_t *threshold, ty_sched_preempt_reason *rs)
{
    sc_wl *w = t->w;
    sc_cq *cq = s->cqs[w->cq];
    int nv = 0;
    bool found = false;
    t->borrow = borrow;
    for (int i = 0; i < n && !found; i++) {
        sc_wl *c = cands[i];
        ty_sched_preempt_reason why = TY_SCHED_IN_CLUSTER_QUEUE;
        if (c->cq != w->cq) {
            if (!borrows_contended(s, cq, s->cqs[c->cq]))
                continue;
            why = TY_SCHED_IN_COHORT_RECLAMATION;
            if (threshold && c->prio >= *threshold)
                t->borrow = false;
            else if (threshold)
                why = TY_SCHED_IN_COHORT_RECLAIM_WHILE_BORROWING;
        }
        move(s, t, c, -1);
        rs[nv] = why;
        s->victims[nv++] = c;
        found = fits(s, t);
    }
    if (!found) {
        undo(s, t, nv);
        return 0;
    }
    return give_back(s, t, nv, rs);
}

/* Fair sharing: Kueue's strategies in turn, LessThanOrEqualToFinalShare (the preemptor's
 * share with it admitted <= the target queue's share without c), then LessThanInitialShare
 * (< the target queue's share with c); it may borrow. */
static int fair_search(ty_sched *s, trial *t, int nc, ty_sched_preempt_reason *rs)
{
    sc_wl *w = t->w;
    sc_cq *cq = s->cqs[w->cq];
    t->borrow = true;
    for (int strategy = 0; strategy < 2; strategy++) {
        int nv = 0;
        bool found = false;
        for (int i = 0; i < nc && !found; i++) {
            sc_wl *c = s->cands[i];
            if (c->cq != w->cq) {
                sc_cq *x = s->cqs[c->cq];
                int64_t mine = sc_share(s, cq, 1), theirs;
                if (strategy == 0) {
                    sc_wl_quota(s, c, -1);
                    theirs = sc_share(s, x, 0);
                    sc_wl_quota(s, c, 1);
                } else {
                    theirs = sc_share(s, x, 0);
                }
                if (strategy == 0 ? mine > theirs : mine >= theirs)
                    continue;
            }
            move(s, t, c, -1);
            rs[nv] = c->cq == w->cq ? TY_SCHED_IN_CLUSTER_QUEUE : TY_SCHED_IN_COHORT_FAIR_SHARING;
            s->victims[nv++] = c;
            found = fits(s, t);
        }
        if (found)
            return give_back(s, t, nv, rs);
        undo(s, t, nv);
    }
    return 0;
}

int sc_preempt(ty_sched *s, sc_wl *w, int *n_out, ty_sched_preempt_reason **reasons)
{
    sc_cq *cq = s->cqs[w->cq];
    *n_out = 0;
    sc_need(s, w);
    /* What needs preemption (Kueue's frsNeedPreemption): what it needs beyond what is
     * available; when its quota fits (the nodes do not), everything it needs. */
    bool short_any = false, under = true;
    for (int k = 0; k < cq->n_fq; k++)
        for (int r = 0; r < SC_R; r++) {
            s->pre[k * SC_R + r] = r < s->n_res && sc_short(s, w, k, r);
            short_any |= s->pre[k * SC_R + r];
        }
    for (int k = 0; k < cq->n_fq; k++)
        for (int r = 0; r < s->n_res; r++) {
            if (!short_any)
                s->pre[k * SC_R + r] = s->need[k * SC_R + r] > 0;
            /* Kueue's queueUnderNominalInResourcesNeedingPreemption */
            if (s->pre[k * SC_R + r] && cq->fq[k].usage[r] >= cq->fq[k].nominal[r])
                under = false;
        }

    /* Workloads already leaving that it could use: wait for them rather than pick more. */
    int ne = 0;
    int n_members = cq->cohort >= 0 ? s->cohorts[cq->cohort]->n_members : 1;
    for (int m = 0; m < n_members; m++) {
        sc_cq *x = cq->cohort >= 0 ? s->cqs[s->cohorts[cq->cohort]->members[m]] : cq;
        for (int i = 0; i < x->n_evicting; i++) {
            sc_wl *c = x->evicting[i];
            if (!c->gone && contends(s, cq, c))
                s->cands[ne++] = c;
        }
    }
    if (ne) {
        for (int i = 0; i < ne; i++)
            take(s, s->cands[i], -1);
        bool ok = hold(s, w);
        for (int i = ne - 1; i >= 0; i--)
            take(s, s->cands[i], 1);
        if (ok) {
            hold_quota(s, w);
            *n_out = ne;
            return SC_PRE_EVICTING;
        }
        sc_need(s, w);
    }

    if (!s->victim_order)
        victim_order(s);
    bool fair = s->cfg.fair_sharing;
    /* Only queues that borrow what it contends for give back (fair sharing: those with a
     * share, that is, that borrow something). */
    const sc_cohort *co = cq->cohort >= 0 ? s->cohorts[cq->cohort] : NULL;
    for (int m = 0; co && m < co->n_members; m++) {
        sc_cq *x = s->cqs[co->members[m]];
        s->gives[x->id] =
            x != cq && (fair ? sc_share(s, x, 0) != 0 : borrows_contended(s, cq, x));
    }
    /* Kueue's candidates: its own queue's by withinClusterQueue, other queues' (those that
     * give back) by reclaimWithinCohort; other queues' first, then its own, each in
     * victim_cmp's order. Past its priority only other queues' can qualify, under Any. */
    bool reclaim = co && cq->reclaim != TY_SCHED_PREEMPT_NEVER;
    bool any_prio = reclaim && cq->reclaim == TY_SCHED_PREEMPT_ANY;
    uint64_t needs = 0;
    for (int k = 0; k < cq->n_fq; k++)
        for (int r = 0; r < s->n_res; r++)
            if (s->pre[k * SC_R + r] && cq->fq[k].flavor < 64 / SC_R)
                needs |= 1ull << (cq->fq[k].flavor * SC_R + r);
    const sc_vent *vl = cq->vl;
    int nc = 0, n_own = 0;
    for (int i = 0; i < cq->n_vl; i++) {
        const sc_vent *e = &vl[i];
        if (e->prio > w->prio && !any_prio)
            break;
        if (e->out)
            continue;
        bool ok = false;
        if (e->cq == w->cq) {
            if (cq->within == TY_SCHED_PREEMPT_LOWER_PRIORITY)
                ok = e->prio < w->prio;
            else if (cq->within == TY_SCHED_PREEMPT_LOWER_OR_NEWER_EQUAL_PRIORITY)
                ok = e->prio < w->prio || (e->prio == w->prio && e->w->queued > w->queued);
        } else if (s->gives[e->cq] && reclaim) {
            ok = any_prio || e->prio < w->prio;
        }
        if (!ok || !(e->wide ? contends(s, cq, e->w) : (e->uses & needs) != 0))
            continue;
        if (e->cq == w->cq)
            s->cands2[n_own++] = e->w;
        else
            s->cands[nc++] = e->w;
    }
    if (n_own)
        memcpy(s->cands + nc, s->cands2, (size_t)n_own * sizeof *s->cands);
    nc += n_own;
    if (!nc)
        return SC_PRE_NONE;
    /* Without all of them it must fit its quota, or no subset will: a cheap check (the nodes
     * are not touched). The candidates' usage comes from their queues' sums per priority
     * level: the workloads among them that do not contend use nothing the check reads. */
    if (cq->within != TY_SCHED_PREEMPT_NEVER)
        levels_sum(s, cq, false, w->prio, false, 0);
    if (cq->within == TY_SCHED_PREEMPT_LOWER_OR_NEWER_EQUAL_PRIORITY)
        for (int i = nc - n_own; i < nc; i++)
            if (s->cands[i]->prio == w->prio)
                usage_of(s, s->cands[i], s->qacc + (size_t)cq->id * (size_t)s->qacc_stride, 1);
    for (int m = 0; co && m < co->n_members; m++) {
        const sc_cq *x = s->cqs[co->members[m]];
        if (s->gives[x->id] && reclaim)
            levels_sum(s, x, any_prio, w->prio, false, 0);
    }
    quota_apply(s, cq, -1, false);
    bool possible = sc_fits_quota(s, w, true);
    quota_apply(s, cq, 1, true);
    if (!possible)
        return SC_PRE_NONE;

    trial t = {.w = w};
    t.room = ty_malloc((size_t)(w->n_ps + 1) * sizeof *t.room);
    t.counts = ty_malloc((size_t)(w->n_ps + 1) * sizeof *t.counts);
    for (int j = 0; j < w->n_ps; j++) {
        bool flavored = sc_primary_flavor(s, &w->ps[j]) >= 0;
        t.counts[j] = flavored && sc_ps_counts(&w->ps[j]);
        t.any_node |= !flavored;
    }
    sc_need(s, w);
    ty_sched_preempt_reason *rs = ty_malloc((size_t)nc * sizeof *rs);
    int nv = 0;
    if (fair) {
        nv = fair_search(s, &t, nc, rs);
    } else if (n_own == nc) {
        /* Only its own queue's: it may borrow (Kueue). */
        nv = minimal(s, &t, s->cands, nc, true, NULL, rs);
    } else if (cq->borrow == TY_SCHED_PREEMPT_LOWER_PRIORITY) {
        /* borrowWithinCohort: other queues' below the threshold may go while it borrows;
         * above it, only while it stays within its nominal quota. */
        int32_t threshold = w->prio;
        if (cq->has_threshold && cq->threshold < threshold)
            threshold = cq->threshold + 1;
        int n = nc;
        if (!under) {
            n = 0;
            for (int i = 0; i < nc; i++)
                if (s->cands[i]->cq == w->cq || s->cands[i]->prio < threshold)
                    s->cands[n++] = s->cands[i];
        }
        nv = minimal(s, &t, s->cands, n, true, &threshold, rs);
    } else {
        /* Reclaiming from the cohort only without borrowing, and only while its queue is
         * below its nominal quota; then its own queue's alone, borrowing. */
        if (under)
            nv = minimal(s, &t, s->cands, nc, false, NULL, rs);
        if (!nv)
            nv = minimal(s, &t, s->cands + (nc - n_own), n_own, true, NULL, rs);
    }
    free(t.room);
    free(t.counts);
    free(t.takes);
    sc_nodes_sync(s);
    if (!nv) {
        free(rs);
        return SC_PRE_NONE;
    }
    *reasons = sc_alloc(&s->arena, (size_t)nv * sizeof **reasons);
    memcpy(*reasons, rs, (size_t)nv * sizeof *rs);
    free(rs);
    hold(s, w);
    /* The victims' pods stay on their nodes until they are gone, and the preemptor's are
     * counted there too (hold). Their quota goes to the preemptor now, as far as it needs it
     * (absorb), and the preemptor's need counts in its queue (hold_quota). So nothing else
     * takes the room being made, and the next preemptor sees what is really left. */
    sc_need(s, w);
    memset(s->left, 0, (size_t)s->n_flavors * SC_R * sizeof *s->left);
    for (int k = 0; k < cq->n_fq; k++)
        for (int r = 0; r < s->n_res; r++)
            s->left[cq->fq[k].flavor * SC_R + r] = s->need[k * SC_R + r];
    for (int i = 0; i < nv; i++) {
        sc_wl *c = s->victims[i];
        sc_wl_nodes(s, c, 1);
        c->gone = false;
        c->victim = true;
        sc_cq *x = s->cqs[c->cq];
        x->vl[c->vpos].out = true;
        int l = 0;
        while (x->lv_prio[l] != c->prio)
            l++;
        usage_of(s, c, x->lv_use + (size_t)l * (size_t)s->qacc_stride, -1);
        absorb(s, c);
    }
    hold_quota(s, w);
    *n_out = nv;
    return SC_PRE_VICTIMS;
}

/* How much of (flavor f, resource r) admitted c uses. */
static int64_t use_of(const sc_wl *c, int f, int r)
{
    int64_t v = 0;
    for (int p = 0; p < c->n_ps; p++)
        for (int k = 0; k < c->ps[p].n_req; k++)
            if (c->ps[p].aflavor[k] == f && c->ps[p].res[k] == r)
                v += sc_mul(c->ps[p].req[k], c->ps[p].count);
    return v;
}

bool sc_reclaim_possible(ty_sched *s, sc_wl *w, int fqi, int r, int64_t val, int64_t avail)
{
    sc_cq *cq = s->cqs[w->cq];
    const sc_fq *q = &cq->fq[fqi];
    if (cq->cohort < 0 || q->usage[r] + val > q->nominal[r])
        return false;
    if (!s->victim_order)
        victim_order(s);
    /* What other queues could give back: their eligible workloads' use, up to what each
     * borrows (a queue that no longer borrows is no candidate). One walk of the cohort's
     * candidate list (lowest priority first), until the shortfall is covered. */
    int64_t from_cohort = 0, short_by = val - avail;
    int64_t *sum = ty_calloc((size_t)s->n_cqs + 1, sizeof *sum);
    for (int i = 0; i < cq->n_vl && cq->reclaim != TY_SCHED_PREEMPT_NEVER &&
                    from_cohort < short_by; i++) {
        const sc_vent *e = &cq->vl[i];
        if (cq->reclaim == TY_SCHED_PREEMPT_LOWER_PRIORITY && e->prio >= w->prio)
            break;
        const sc_cq *x = s->cqs[e->cq];
        int xf = x->fq_of[q->flavor];
        if (x == cq || xf < 0 || e->out)
            continue;
        int64_t borrowed = x->fq[xf].usage[r] - x->fq[xf].nominal[r];
        if (sum[e->cq] >= borrowed)
            continue;
        int64_t more = use_of(e->w, q->flavor, r);
        if (more > borrowed - sum[e->cq])
            more = borrowed - sum[e->cq];
        sum[e->cq] += more;
        from_cohort += more;
    }
    free(sum);
    if (from_cohort >= val - avail)
        return true;
    /* Not enough from the cohort: Kueue would take its own queue's workloads too, if any. */
    bool own = false;
    for (int i = 0; i < cq->n_vl && !own && cq->vl[i].prio <= w->prio; i++) {
        const sc_vent *e = &cq->vl[i];
        if (e->cq != w->cq || e->out)
            continue;
        bool ok = cq->within == TY_SCHED_PREEMPT_LOWER_PRIORITY ? e->prio < w->prio
                  : cq->within == TY_SCHED_PREEMPT_LOWER_OR_NEWER_EQUAL_PRIORITY
                      ? e->prio < w->prio || (e->prio == w->prio && e->w->queued > w->queued)
                      : false;
        own = ok && use_of(e->w, q->flavor, r) > 0;
    }
    return !own;
}
