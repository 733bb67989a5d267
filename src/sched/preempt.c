/* Preemption: Kueue's candidates (withinClusterQueue, reclaimWithinCohort, borrowWithinCohort,
 * or fair sharing), its ordering, the greedy search until the preemptor fits quota and nodes,
 * then the give-back pass that keeps the fewest victims. */
#include <stdlib.h>
#include <string.h>

#include "sched/sched_int.h"

/* Whether admitted c uses a (flavor, resource) that the preemptor needs (s->need, the
 * preemptor's queue's entries). */
static bool contends(const ty_sched *s, const sc_cq *pcq, const sc_wl *c)
{
    for (int p = 0; p < c->n_ps; p++) {
        const sc_ps *ps = &c->ps[p];
        for (int k = 0; k < ps->n_req; k++) {
            int fqi = pcq->fq_of[ps->aflavor[k]];
            if (ps->req[k] && fqi >= 0 && s->need[fqi * SC_R + ps->res[k]] > 0)
                return true;
        }
    }
    return false;
}

/* Whether queue x borrows a (flavor, resource) that the preemptor needs. */
static bool borrows_contended(const ty_sched *s, const sc_cq *pcq, const sc_cq *x)
{
    for (int k = 0; k < x->n_fq; k++) {
        int fqi = pcq->fq_of[x->fq[k].flavor];
        if (fqi < 0)
            continue;
        for (int r = 0; r < s->n_res; r++)
            if (s->need[fqi * SC_R + r] > 0 && x->fq[k].usage[r] > x->fq[k].nominal[r])
                return true;
    }
    return false;
}

static int cand_cmp(const void *a, const void *b, void *ctx)
{
    const sc_wl *x = *(sc_wl *const *)a, *y = *(sc_wl *const *)b;
    int own = *(int *)ctx;
    bool xo = x->cq != own, yo = y->cq != own;
    if (xo != yo)
        return xo ? -1 : 1;
    if (x->prio != y->prio)
        return x->prio < y->prio ? -1 : 1;
    if (x->admitted_at != y->admitted_at)
        return x->admitted_at > y->admitted_at ? -1 : 1;
    return strcmp(x->key, y->key);
}

static void take(ty_sched *s, sc_wl *c, int sign)
{
    sc_wl_quota(s, c, sign);
    sc_wl_nodes(s, c, sign);
    c->gone = sign < 0;
}

/* Quota and nodes; leaves the nodes as they were. */
static bool fits(ty_sched *s, sc_wl *w)
{
    if (!sc_fits_quota(s, w, true))
        return false;
    if (sc_place(s, w) >= 0)
        return false;
    sc_unplace(s, w, s->placed);
    return true;
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

int sc_preempt(ty_sched *s, sc_wl *w, int *n_out, ty_sched_preempt_reason **reasons)
{
    sc_cq *cq = s->cqs[w->cq];
    *n_out = 0;
    sc_need(s, w);

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

    bool fair = s->cfg.fair_sharing;
    bool borrowing = sc_would_borrow(s, w);
    int nc = 0;
    for (int i = 0; i < cq->n_admitted; i++) {
        sc_wl *c = cq->admitted[i];
        if (c->evicting || c->victim)
            continue;
        bool ok = false;
        if (cq->within == TY_SCHED_PREEMPT_LOWER_PRIORITY)
            ok = c->prio < w->prio;
        else if (cq->within == TY_SCHED_PREEMPT_LOWER_OR_NEWER_EQUAL_PRIORITY)
            ok = c->prio < w->prio || (c->prio == w->prio && c->queued > w->queued);
        if (ok && contends(s, cq, c))
            s->cands[nc++] = c;
    }
    if (cq->cohort >= 0) {
        const sc_cohort *co = s->cohorts[cq->cohort];
        for (int m = 0; m < co->n_members; m++) {
            sc_cq *x = s->cqs[co->members[m]];
            if (x == cq)
                continue;
            /* Kueue: only queues that borrow what it needs give back (fair sharing: those
             * with a share, that is, that borrow something). */
            if (fair ? sc_share(s, x, 0) == 0 : !borrows_contended(s, cq, x))
                continue;
            for (int i = 0; i < x->n_admitted; i++) {
                sc_wl *c = x->admitted[i];
                if (c->evicting || c->victim)
                    continue;
                bool ok;
                if (fair || !borrowing)
                    ok = cq->reclaim == TY_SCHED_PREEMPT_ANY ||
                         (cq->reclaim == TY_SCHED_PREEMPT_LOWER_PRIORITY && c->prio < w->prio);
                else
                    ok = cq->borrow == TY_SCHED_PREEMPT_LOWER_PRIORITY && c->prio < w->prio &&
                         (!cq->has_threshold || c->prio <= cq->threshold);
                if (ok && contends(s, cq, c))
                    s->cands[nc++] = c;
            }
        }
    }
    if (!nc)
        return SC_PRE_NONE;
    /* Without all of them it must fit its quota, or no subset will: a cheap check (the
     * nodes' buckets are not touched) before sorting. */
    for (int i = 0; i < nc; i++)
        sc_wl_quota(s, s->cands[i], -1);
    bool possible = sc_fits_quota(s, w, true);
    for (int i = nc - 1; i >= 0; i--)
        sc_wl_quota(s, s->cands[i], 1);
    if (!possible)
        return SC_PRE_NONE;
    int own = w->cq;
    qsort_r(s->cands, (size_t)nc, sizeof *s->cands, cand_cmp, &own);

    int nv = 0;
    bool found = false;
    /* Fair sharing: Kueue's strategies in turn, LessThanOrEqualToFinalShare (the preemptor's
     * share with it admitted <= the target queue's share without c), then LessThanInitialShare
     * (< the target queue's share with c). */
    for (int strategy = 0; strategy < (fair ? 2 : 1) && !found; strategy++) {
        for (int i = 0; i < nc && !found; i++) {
            sc_wl *c = s->cands[i];
            if (c->cq != w->cq) {
                sc_cq *x = s->cqs[c->cq];
                sc_need(s, w);
                if (fair) {
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
                } else if (!borrows_contended(s, cq, x)) {
                    continue;
                }
            }
            take(s, c, -1);
            s->victims[nv++] = c;
            found = fits(s, w);
        }
        if (!found) {
            for (int i = nv - 1; i >= 0; i--)
                take(s, s->victims[i], 1);
            nv = 0;
        }
    }
    if (!found)
        return SC_PRE_NONE;
    /* Give back every victim that is not needed, the last chosen being needed. */
    for (int i = nv - 2; i >= 0; i--) {
        sc_wl *c = s->victims[i];
        take(s, c, 1);
        if (fits(s, w)) {
            memmove(s->victims + i, s->victims + i + 1, (size_t)(nv - i - 1) * sizeof *s->victims);
            nv--;
        } else {
            take(s, c, -1);
        }
    }
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
    ty_sched_preempt_reason *rs = sc_alloc(&s->arena, (size_t)nv * sizeof *rs);
    for (int i = 0; i < nv; i++) {
        sc_wl *c = s->victims[i];
        sc_wl_nodes(s, c, 1);
        c->gone = false;
        c->victim = true;
        absorb(s, c);
        rs[i] = c->cq == w->cq ? TY_SCHED_IN_CLUSTER_QUEUE
                : fair         ? TY_SCHED_IN_COHORT_FAIR_SHARING
                : borrowing    ? TY_SCHED_IN_COHORT_RECLAIM_WHILE_BORROWING
                               : TY_SCHED_IN_COHORT_RECLAMATION;
    }
    hold_quota(s, w);
    *n_out = nv;
    *reasons = rs;
    return SC_PRE_VICTIMS;
}
