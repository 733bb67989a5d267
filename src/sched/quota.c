/* Quota: usage per (cluster queue, flavor, resource) and per cohort pool, what a queue may
 * still use, Kueue's flavor assignment with flavorFungibility, and fair-sharing shares. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"

#include "sched/sched_int.h"

static int64_t sat_add(int64_t a, int64_t b)
{
    int64_t r;
    return __builtin_add_overflow(a, b, &r) ? INT64_MAX : r;
}

#define sat_mul sc_mul

static int64_t max0(int64_t v) { return v > 0 ? v : 0; }

void sc_usage_add(ty_sched *s, sc_cq *cq, int fqi, int r, int64_t delta)
{
    sc_fq *q = &cq->fq[fqi];
    int64_t old = q->usage[r], now = old + delta;
    if (cq->cohort >= 0) {
        sc_cohort *c = s->cohorts[cq->cohort];
        c->pool[q->flavor * SC_R + r] += max0(now - q->guar[r]) - max0(old - q->guar[r]);
    }
    q->usage[r] = now;
}

void sc_wl_quota(ty_sched *s, sc_wl *w, int sign)
{
    sc_cq *cq = s->cqs[w->cq];
    for (int p = 0; p < w->n_ps; p++) {
        sc_ps *ps = &w->ps[p];
        for (int k = 0; k < ps->n_req; k++) {
            int fqi = cq->fq_of[ps->aflavor[k]];
            if (fqi >= 0 && ps->req[k])
                sc_usage_add(s, cq, fqi, ps->res[k], sign * sat_mul(ps->req[k], ps->count));
        }
    }
}

void sc_quota_init(ty_sched *s)
{
    int F = s->n_flavors;
    for (int i = 0; i < s->n_cohorts; i++) {
        sc_cohort *c = s->cohorts[i];
        c->lend = sc_alloc(&s->arena, (size_t)(F ? F : 1) * SC_R * sizeof(__int128));
        c->pool = sc_alloc(&s->arena, (size_t)(F ? F : 1) * SC_R * sizeof(__int128));
    }
    size_t max_fq = 1;
    for (int i = 0; i < s->n_cqs; i++) {
        sc_cq *cq = s->cqs[i];
        cq->fq_of = sc_alloc(&s->arena, (size_t)(F ? F : 1) * sizeof(int32_t));
        for (int f = 0; f < F; f++)
            cq->fq_of[f] = -1;
        for (int k = 0; k < cq->n_fq; k++)
            cq->fq_of[cq->fq[k].flavor] = k;
        if (cq->cohort >= 0) {
            sc_cohort *c = s->cohorts[cq->cohort];
            for (int k = 0; k < cq->n_fq; k++)
                for (int r = 0; r < SC_R; r++) {
                    c->lend[cq->fq[k].flavor * SC_R + r] += cq->fq[k].lend[r];
                    c->lend_r[r] += cq->fq[k].lend[r];
                }
        }
    }
    /* Usage from outside the snapshot, before the admitted workloads' (it is a sum). */
    for (int i = 0; i < s->n_cqs; i++)
        for (int k = 0; k < s->cqs[i]->n_fq; k++)
            for (int r = 0; r < SC_R; r++)
                if (s->cqs[i]->fq[k].ext[r])
                    sc_usage_add(s, s->cqs[i], k, r, s->cqs[i]->fq[k].ext[r]);
    /* Admitted workloads on a flavor their queue no longer lists still use quota: give them
     * an entry without quota, so their usage is seen and reported. */
    for (int i = 0; i < s->n_wls; i++) {
        sc_wl *w = s->wls[i];
        if (!w->admitted)
            continue;
        sc_cq *cq = s->cqs[w->cq];
        for (int p = 0; p < w->n_ps; p++)
            for (int k = 0; k < w->ps[p].n_req; k++) {
                int f = w->ps[p].aflavor[k];
                if (cq->fq_of[f] >= 0 || cq->n_fq == cq->cap_fq)
                    continue;
                sc_fq *q = &cq->fq[cq->n_fq];
                memset(q, 0, sizeof *q);
                q->flavor = f;
                q->group = -1;
                for (int r = 0; r < SC_R; r++)
                    q->blimit[r] = 0;
                cq->fq_of[f] = cq->n_fq++;
            }
        sc_wl_quota(s, w, 1);
    }
    for (int i = 0; i < s->n_cqs; i++)
        if ((size_t)s->cqs[i]->n_fq > max_fq)
            max_fq = (size_t)s->cqs[i]->n_fq;
    s->need = ty_calloc(max_fq * SC_R, sizeof(int64_t));
    s->pre = ty_calloc(max_fq * SC_R, sizeof(bool));
    s->left = ty_calloc((size_t)(F ? F : 1) * SC_R, sizeof(int64_t));
}

int64_t sc_avail(const ty_sched *s, const sc_cq *cq, const sc_fq *q, int r)
{
    int64_t u = q->usage[r], n = q->nominal[r];
    if (cq->cohort < 0)
        return n - u;
    const sc_cohort *c = s->cohorts[cq->cohort];
    int64_t cap = q->blimit[r] == TY_SCHED_UNLIMITED ? INT64_MAX : sat_add(n, q->blimit[r]);
    __int128 left = c->lend[q->flavor * SC_R + r] - c->pool[q->flavor * SC_R + r];
    __int128 pooled = (__int128)q->guar[r] + max0(u - q->guar[r]) + left;
    __int128 v = (pooled < cap ? pooled : cap) - u;
    return v > INT64_MAX ? INT64_MAX : v < INT64_MIN ? INT64_MIN : (int64_t)v;
}

int64_t sc_maxcap(const ty_sched *s, const sc_cq *cq, const sc_fq *q, int r)
{
    if (cq->cohort < 0)
        return q->nominal[r];
    const sc_cohort *c = s->cohorts[cq->cohort];
    int64_t cap = q->blimit[r] == TY_SCHED_UNLIMITED ? INT64_MAX
                                                     : sat_add(q->nominal[r], q->blimit[r]);
    __int128 all = (__int128)q->guar[r] + c->lend[q->flavor * SC_R + r];
    return all < cap ? (int64_t)all : cap;
}

void sc_need(ty_sched *s, sc_wl *w)
{
    sc_cq *cq = s->cqs[w->cq];
    memset(s->need, 0, (size_t)cq->n_fq * SC_R * sizeof(int64_t));
    for (int p = 0; p < w->n_ps; p++) {
        sc_ps *ps = &w->ps[p];
        for (int k = 0; k < ps->n_req; k++) {
            if (ps->flav[k] < 0 || !ps->req[k])
                continue;
            int fqi = cq->fq_of[ps->flav[k]];
            if (fqi >= 0)
                s->need[fqi * SC_R + ps->res[k]] =
                    sat_add(s->need[fqi * SC_R + ps->res[k]], sat_mul(ps->req[k], ps->count));
        }
    }
}

bool sc_fits_quota(ty_sched *s, sc_wl *w, bool allow_borrow)
{
    sc_need(s, w);
    return sc_fits_need(s, w, allow_borrow);
}

bool sc_fits_need(ty_sched *s, sc_wl *w, bool allow_borrow)
{
    sc_cq *cq = s->cqs[w->cq];
    for (int k = 0; k < cq->n_fq; k++)
        for (int r = 0; r < s->n_res; r++) {
            int64_t v = s->need[k * SC_R + r];
            if (!v)
                continue;
            if (v > sc_avail(s, cq, &cq->fq[k], r))
                return false;
            if (!allow_borrow && sat_add(cq->fq[k].usage[r], v) > cq->fq[k].nominal[r])
                return false;
        }
    return true;
}

bool sc_would_borrow(ty_sched *s, sc_wl *w)
{
    sc_cq *cq = s->cqs[w->cq];
    sc_need(s, w);
    for (int k = 0; k < cq->n_fq; k++)
        for (int r = 0; r < s->n_res; r++) {
            int64_t v = s->need[k * SC_R + r];
            if (v && sat_add(cq->fq[k].usage[r], v) > cq->fq[k].nominal[r])
                return true;
        }
    return false;
}

int64_t sc_share(const ty_sched *s, const sc_cq *cq, int sign)
{
    return sc_share_as(s, cq, sign, false);
}

int64_t sc_share_as(const ty_sched *s, const sc_cq *cq, int sign, bool reported)
{
    if (cq->cohort < 0)
        return 0;
    const sc_cohort *c = s->cohorts[cq->cohort];
    int64_t best = 0;
    bool borrows = false;
    for (int r = 0; r < s->n_res; r++) {
        int64_t borrowed = 0;
        for (int k = 0; k < cq->n_fq; k++) {
            int64_t u = cq->fq[k].usage[r] + (sign ? sign * s->need[k * SC_R + r] : 0);
            if (reported)
                u += cq->fq[k].leaving[r] - cq->fq[k].held[r];
            borrowed = sat_add(borrowed, max0(u - cq->fq[k].nominal[r]));
        }
        if (!borrowed)
            continue;
        borrows = true;
        if (c->lend_r[r] <= 0 || cq->weight == 0)
            return INT64_MAX;
        __int128 v = (__int128)borrowed * 1000 * 1000 / c->lend_r[r] / cq->weight;
        int64_t share = v > INT64_MAX ? INT64_MAX : (int64_t)v;
        if (share > best)
            best = share;
    }
    return borrows ? best : 0;
}

bool sc_tolerates(const sc_tol *tols, int n, const sc_taint *t)
{
    for (int i = 0; i < n; i++) {
        const sc_tol *o = &tols[i];
        if (o->effect != SC_EFF_ANY && o->effect != t->effect)
            continue;
        if (o->key >= 0 && o->key != t->key)
            continue;
        if (o->exists || o->value == t->value)
            return true;
    }
    return false;
}

bool sc_compatible(const ty_sched *s, const sc_ps *ps, const sc_flavor *f, char *why, size_t cap)
{
    for (int i = 0; i < ps->n_sel; i++)
        for (int j = 0; j < f->n_labels; j++)
            if (f->labels[j].key == ps->sel[i].key && f->labels[j].value != ps->sel[i].value) {
                if (why)
                    snprintf(why, cap, "flavor %s doesn't match node affinity", f->name);
                return false;
            }
    if (ps->aff && !ty_nodefit_affinity_may_match(ps->aff, f->slabels, (size_t)f->n_labels)) {
        if (why)
            snprintf(why, cap, "flavor %s doesn't match node affinity", f->name);
        return false;
    }
    for (int i = 0; i < f->n_taints; i++) {
        const sc_taint *t = &f->taints[i];
        if (t->effect == SC_EFF_PREFER)
            continue;
        if (sc_tolerates(ps->tols, ps->n_tols, t) || sc_tolerates(f->tols, f->n_tols, t))
            continue;
        if (why) {
            static const char *const eff[] = {"", "NoSchedule", "PreferNoSchedule", "NoExecute"};
            snprintf(why, cap, "untolerated taint %s=%s:%s in flavor %s", s->strs[t->key],
                     s->strs[t->value], eff[t->effect], f->name);
        }
        return false;
    }
    return true;
}

/* Kueue's canPreemptWhileBorrowing: a request above the nominal quota may still preempt. */
static bool preempts_borrowing(const ty_sched *s, const sc_cq *cq)
{
    return cq->borrow != TY_SCHED_PREEMPT_NEVER ||
           (s->cfg.fair_sharing && cq->reclaim != TY_SCHED_PREEMPT_NEVER);
}

static void add_reason(char *buf, const char *reason)
{
    if (buf[0])
        sc_msgf(buf, ", ");
    sc_msgf(buf, "%s", reason);
}

int sc_assign(ty_sched *s, sc_wl *w, char *msg)
{
    sc_cq *cq = s->cqs[w->cq];
    int64_t *acc = s->need; /* what the earlier pod sets take */
    memset(acc, 0, (size_t)cq->n_fq * SC_R * sizeof(int64_t));
    if (msg)
        msg[0] = 0;
    int worst = SC_FIT;
    char reasons[SC_MSG], why[400];
    for (int p = 0; p < w->n_ps; p++)
        memset(w->ps[p].gmode, SC_NOFIT, sizeof w->ps[p].gmode);
    for (int p = 0; p < w->n_ps; p++) {
        sc_ps *ps = &w->ps[p];
        reasons[0] = 0;
        int ps_mode = SC_FIT;
        uint32_t unassigned = 0; /* requests still without a flavor */
        for (int k = 0; k < ps->n_req; k++) {
            ps->flav[k] = -1;
            unassigned |= 1u << k;
        }
        for (int g = 0; g < cq->n_groups && unassigned; g++) {
            sc_group *gr = &cq->groups[g];
            uint32_t mine = 0;
            for (int k = 0; k < ps->n_req; k++)
                if ((unassigned & (1u << k)) && (gr->covered & (1u << ps->res[k])))
                    mine |= 1u << k;
            if (!mine)
                continue;
            unassigned &= ~mine;
            int best = -1, best_mode = SC_NOFIT, last = -1;
            int start = g < SC_R ? ps->from[g] : 0;
            for (int e = gr->first + start; e < gr->first + gr->n; e++) {
                last = e - gr->first;
                sc_fq *q = &cq->fq[e];
                sc_flavor *f = s->flavors[q->flavor];
                if (!sc_compatible(s, ps, f, msg ? why : NULL, sizeof why)) {
                    if (msg)
                        add_reason(reasons, why);
                    continue;
                }
                int mode = SC_FIT;
                bool borrows = false;
                for (int k = 0; k < ps->n_req; k++) {
                    if (!(mine & (1u << k)) || !ps->req[k])
                        continue;
                    int r = ps->res[k];
                    int64_t val = sat_add(acc[e * SC_R + r], sat_mul(ps->req[k], ps->count));
                    int64_t avail = sc_avail(s, cq, q, r);
                    borrows |= cq->cohort >= 0 && sat_add(q->usage[r], val) > q->nominal[r];
                    int m;
                    if (val <= avail) {
                        m = sat_add(q->usage[r], val) > q->nominal[r] ? SC_BORROW : SC_FIT;
                    } else {
                        int64_t maxcap = sc_maxcap(s, cq, q, r);
                        char a[32], b[32];
                        if (val > maxcap) {
                            m = SC_NOFIT;
                            if (msg) {
                                snprintf(why, sizeof why,
                                         "insufficient quota for %s in flavor %s, request > "
                                         "maximum capacity (%s > %s)",
                                         s->res[r], f->name, sc_qty(s, r, val, a),
                                         sc_qty(s, r, maxcap, b));
                                add_reason(reasons, why);
                            }
                        } else {
                            /* Kueue: only what fits the nominal quota may preempt (it
                             * would otherwise take others' quota to borrow it), unless
                             * borrowWithinCohort (or fair sharing) lets it. */
                            m = val <= q->nominal[r] || preempts_borrowing(s, cq) ? SC_PREEMPT
                                                                                : SC_NOFIT;
                            /* Taking back lent quota beats preempting in its own queue
                             * when there is another flavor to prefer. */
                            if (val <= q->nominal[r] && gr->n > 1 && !cq->preempt_first &&
                                sc_reclaim_possible(s, w, e, r, val, avail > 0 ? avail : 0))
                                m = SC_RECLAIM;
                            if (msg) {
                                snprintf(why, sizeof why,
                                         "insufficient unused quota for %s in flavor %s, %s "
                                         "more needed",
                                         s->res[r], f->name,
                                         sc_qty(s, r, val - (avail > 0 ? avail : 0), a));
                                add_reason(reasons, why);
                            }
                        }
                    }
                    if (m < mode)
                        mode = m;
                }
                if (mode > best_mode) {
                    best = e;
                    best_mode = mode;
                }
                if (mode == SC_FIT || (mode == SC_BORROW && !cq->try_next_on_borrow) ||
                    ((mode == SC_PREEMPT || mode == SC_RECLAIM) && cq->preempt_first &&
                     (!borrows || !cq->try_next_on_borrow)))
                    break;
            }
            if (g < SC_R) {
                ps->upto[g] = (int16_t)last;
                ps->gmode[g] = (int8_t)best_mode;
            }
            if (best < 0) {
                ps_mode = SC_NOFIT;
                break;
            }
            for (int k = 0; k < ps->n_req; k++)
                if (mine & (1u << k)) {
                    ps->flav[k] = (int16_t)cq->fq[best].flavor;
                    int r = ps->res[k];
                    acc[best * SC_R + r] =
                        sat_add(acc[best * SC_R + r], sat_mul(ps->req[k], ps->count));
                }
            if (best_mode < ps_mode)
                ps_mode = best_mode;
        }
        for (int k = 0; k < ps->n_req; k++)
            if (!ps->req[k])
                unassigned &= ~(1u << k); /* a zero request needs no quota */
        if (unassigned && ps_mode != SC_NOFIT) {
            ps_mode = SC_NOFIT;
            for (int k = 0; k < ps->n_req; k++)
                if ((unassigned & (1u << k)) && msg) {
                    snprintf(why, sizeof why, "resource %s unavailable in ClusterQueue",
                             s->res[ps->res[k]]);
                    add_reason(reasons, why);
                }
        }
        if (ps_mode < SC_BORROW && msg) {
            if (msg[0])
                sc_msgf(msg, "; ");
            sc_msgf(msg, "couldn't assign flavors to pod set %s: %s", ps->name, reasons);
        }
        if (ps_mode < worst)
            worst = ps_mode;
        if (ps_mode == SC_NOFIT)
            return SC_NOFIT;
    }
    return worst == SC_RECLAIM ? SC_PREEMPT : worst;
}

bool sc_assign_next(ty_sched *s, sc_wl *w)
{
    const sc_cq *cq = s->cqs[w->cq];
    bool moved = false;
    for (int p = 0; p < w->n_ps; p++) {
        sc_ps *ps = &w->ps[p];
        for (int g = 0; g < cq->n_groups && g < SC_R; g++)
            if ((ps->gmode[g] == SC_PREEMPT || ps->gmode[g] == SC_RECLAIM) &&
                ps->upto[g] + 1 < cq->groups[g].n) {
                ps->from[g] = (int16_t)(ps->upto[g] + 1);
                moved = true;
            }
    }
    return moved;
}

bool sc_short(const ty_sched *s, const sc_wl *w, int fqi, int r)
{
    const sc_cq *cq = s->cqs[w->cq];
    int64_t v = s->need[fqi * SC_R + r];
    return v > 0 && v > sc_avail(s, cq, &cq->fq[fqi], r);
}
