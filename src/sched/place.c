/* Nodes and gang placement. Each flavor keeps its schedulable, unreserved nodes in buckets by
 * free units of the packing resource; a bucket is sorted by (score: the other resources' free
 * share, then name), so best fit is the first node that fits, scanning from the smallest bucket
 * that can hold the pod: O(1) for the usual pod, never a scan of all nodes. */
#include <stdio.h>
#include <string.h>

#include "base/mem.h"
#include "sched/sched_int.h"

static int node_bucket(const ty_sched *s, const sc_node *n)
{
    if (s->pack < 0 || n->free[s->pack] <= 0)
        return 0;
    int64_t b = n->free[s->pack] / 1000;
    return b > 1 << 20 ? 1 << 20 : (int)b;
}

bool sc_node_limits(const ty_sched *s, const sc_node *n, int r)
{
    if (r >= s->n_res)
        return false;
    return ty_nodefit_limits(s->res[r], n->declared & (1u << r));
}

static uint32_t node_score(const ty_sched *s, const sc_node *n)
{
    uint64_t sc = 0;
    /* "pods" is a count, not something to pack by */
    for (int r = 0; r < s->n_res; r++)
        if (r != s->pack && r != s->pods && n->alloc[r] > 0 && n->free[r] > 0)
            sc += (uint64_t)((__int128)n->free[r] * 1000 / n->alloc[r]);
    return sc > UINT32_MAX ? UINT32_MAX : (uint32_t)sc;
}

static int cap_bucket(const sc_flavor *f, int b) { return b < f->n_buckets ? b : f->n_buckets - 1; }

static bool before(const sc_node *a, const sc_node *b)
{
    return a->score != b->score ? a->score < b->score : a->rank < b->rank;
}

/* Index of the first entry not before n. */
static int lower_bound(const ty_sched *s, const sc_bucket *bk, const sc_node *n)
{
    int lo = 0, hi = bk->n;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (before(s->nodes[bk->ids[mid]], n))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void bucket_insert(ty_sched *s, sc_flavor *f, sc_node *n)
{
    sc_bucket *bk = &f->buckets[cap_bucket(f, n->bucket)];
    if (bk->n == bk->cap) {
        bk->cap = bk->cap ? bk->cap * 2 : 8;
        bk->ids = ty_realloc(bk->ids, (size_t)bk->cap * sizeof *bk->ids);
    }
    int at = lower_bound(s, bk, n);
    memmove(bk->ids + at + 1, bk->ids + at, (size_t)(bk->n - at) * sizeof *bk->ids);
    bk->ids[at] = n->rank;
    bk->n++;
}

static void bucket_remove(ty_sched *s, sc_flavor *f, sc_node *n)
{
    sc_bucket *bk = &f->buckets[cap_bucket(f, n->bucket)];
    int at = lower_bound(s, bk, n);
    if (at >= bk->n || bk->ids[at] != n->rank)
        abort(); /* the bucket invariant is broken: a bug, not an input */
    memmove(bk->ids + at, bk->ids + at + 1, (size_t)(bk->n - at - 1) * sizeof *bk->ids);
    bk->n--;
}

static void unlink_node(ty_sched *s, sc_node *n)
{
    if (n->in_buckets)
        for (int i = 0; i < n->n_flavors; i++)
            bucket_remove(s, s->flavors[n->flavors[i]], n);
}

static void link_node(ty_sched *s, sc_node *n)
{
    if (n->in_buckets)
        for (int i = 0; i < n->n_flavors; i++)
            bucket_insert(s, s->flavors[n->flavors[i]], n);
}

/* A pod of ps takes (sign 1) or gives back (-1) its room on n: its requests, and one off the
 * node's pod count (a pod set's own "pods" request is Kueue's quota count: the same pod). */
static void take(const ty_sched *s, sc_node *n, const sc_ps *ps, int sign)
{
    for (int k = 0; k < ps->n_req; k++)
        if (ps->res[k] != s->pods)
            n->free[ps->res[k]] -= sign * ps->req[k];
    if (s->pods >= 0)
        n->free[s->pods] -= sign * 1000;
}

/* A pod of ps arrives on (sign 1) or leaves (-1) node n. */
static void node_use(ty_sched *s, sc_node *n, const sc_ps *ps, int sign)
{
    bool any = s->pods >= 0;
    for (int k = 0; k < ps->n_req; k++)
        any |= ps->req[k] != 0;
    if (!any)
        return;
    unlink_node(s, n);
    take(s, n, ps, sign);
    n->score = node_score(s, n);
    n->bucket = node_bucket(s, n);
    link_node(s, n);
}

void sc_wl_nodes(ty_sched *s, sc_wl *w, int sign)
{
    for (int p = 0; p < w->n_ps; p++)
        for (int i = 0; i < w->ps[p].count; i++)
            node_use(s, s->nodes[w->ps[p].anodes[i]], &w->ps[p], sign);
}

static bool has_labels(const sc_label *have, int n_have, const sc_label *want, int n_want)
{
    for (int i = 0; i < n_want; i++) {
        int j = 0;
        while (j < n_have && (have[j].key != want[i].key || have[j].value != want[i].value))
            j++;
        if (j == n_have)
            return false;
    }
    return true;
}

void sc_place_init(ty_sched *s)
{
    int F = s->n_flavors;
    s->fwords = (F + 63) / 64;
    if (!s->fwords)
        s->fwords = 1;
    for (int i = 0; i < s->n_nodes; i++) {
        sc_node *n = s->nodes[i];
        n->fmask = sc_alloc(&s->arena, (size_t)s->fwords * sizeof(uint64_t));
        n->flavors = sc_alloc(&s->arena, (size_t)(F ? F : 1) * sizeof(int32_t));
        for (int f = 0; f < F; f++)
            if (has_labels(n->labels, n->n_labels, s->flavors[f]->labels,
                           s->flavors[f]->n_labels)) {
                n->fmask[f / 64] |= 1ull << (f % 64);
                n->flavors[n->n_flavors++] = f;
                s->flavors[f]->n_nodes++;
            }
        for (int r = 0; r < SC_R; r++)
            n->free[r] = sc_node_limits(s, n, r) ? n->alloc[r] - n->ext[r] : INT64_MAX / 4;
    }
    for (int i = 0; i < s->n_wls; i++)
        if (s->wls[i]->admitted)
            sc_wl_nodes(s, s->wls[i], 1);
    for (int f = 0; f < F; f++) {
        sc_flavor *fl = s->flavors[f];
        fl->nodes = sc_alloc(&s->arena, (size_t)(fl->n_nodes ? fl->n_nodes : 1) * sizeof(int32_t));
        fl->n_nodes = 0;
        int64_t most = 0;
        for (int i = 0; i < s->n_nodes; i++) {
            sc_node *n = s->nodes[i];
            if (!(n->fmask[f / 64] & (1ull << (f % 64))))
                continue;
            fl->nodes[fl->n_nodes++] = i;
            if (s->pack >= 0 && n->alloc[s->pack] / 1000 > most)
                most = n->alloc[s->pack] / 1000;
        }
        fl->n_buckets = (int)(most > 1023 ? 1024 : most + 1);
        fl->buckets = ty_calloc((size_t)fl->n_buckets, sizeof *fl->buckets);
    }
    for (int i = 0; i < s->n_nodes; i++) {
        sc_node *n = s->nodes[i];
        n->score = node_score(s, n);
        n->bucket = node_bucket(s, n);
        n->in_buckets = !n->unschedulable;
        link_node(s, n);
    }
    s->placed = ty_malloc(sizeof(int32_t));
    s->placed2 = ty_malloc(sizeof(int32_t));
    s->resv = ty_malloc((size_t)(s->n_nodes + 1) * sizeof(int32_t));
    s->dirty = ty_malloc((size_t)(s->n_nodes + 1) * sizeof(int32_t));
    s->dfree = ty_malloc((size_t)(s->n_nodes + 1) * SC_R * sizeof(int64_t));
    int most_pods = 1;
    for (int i = 0; i < s->n_wls; i++)
        if (s->wls[i]->pods > most_pods)
            most_pods = s->wls[i]->pods;
    s->placed = ty_realloc(s->placed, (size_t)most_pods * sizeof(int32_t));
    s->placed2 = ty_realloc(s->placed2, (size_t)most_pods * sizeof(int32_t));
}

/* The flavor whose buckets a pod set's pods are looked up in: that of the packing resource,
 * else the first assigned; -1 when it requests nothing. */
int sc_primary_flavor(const ty_sched *s, const sc_ps *ps)
{
    int first = -1;
    for (int k = 0; k < ps->n_req; k++) {
        if (ps->flav[k] < 0)
            continue;
        if (ps->res[k] == s->pack && ps->req[k])
            return ps->flav[k];
        if (first < 0)
            first = ps->flav[k];
    }
    return first;
}

/* Whether the pod set's tolerations, or those of a flavor it is assigned, tolerate t. */
static bool tolerated(const ty_sched *s, const sc_ps *ps, const sc_taint *t)
{
    if (sc_tolerates(ps->tols, ps->n_tols, t))
        return true;
    for (int k = 0; k < ps->n_req; k++)
        if (ps->flav[k] >= 0 &&
            sc_tolerates(s->flavors[ps->flav[k]]->tols, s->flavors[ps->flav[k]]->n_tols, t))
            return true;
    return false;
}

/* Whether n's labels and name suit the pod set's node selector and required node affinity. */
static bool matches(const sc_node *n, const sc_ps *ps)
{
    if (!has_labels(n->labels, n->n_labels, ps->sel, ps->n_sel))
        return false;
    /* strings, and rare: last */
    return !ps->aff ||
           ty_nodefit_affinity_matches(ps->aff, n->name, n->slabels, (size_t)n->n_labels);
}

static bool eligible(const ty_sched *s, const sc_node *n, const sc_ps *ps)
{
    for (int k = 0; k < ps->n_req; k++) {
        int f = ps->flav[k];
        if (f >= 0 && !(n->fmask[f / 64] & (1ull << (f % 64))))
            return false;
    }
    for (int i = 0; i < n->n_taints; i++)
        if (n->taints[i].effect != SC_EFF_PREFER && !tolerated(s, ps, &n->taints[i]))
            return false;
    return matches(n, ps);
}

static bool room(const ty_sched *s, const sc_node *n, const sc_ps *ps)
{
    for (int k = 0; k < ps->n_req; k++)
        if (ps->res[k] != s->pods && n->free[ps->res[k]] < ps->req[k])
            return false;
    return s->pods < 0 || n->free[s->pods] >= 1000;
}

static int start_bucket(const ty_sched *s, const sc_ps *ps)
{
    for (int k = 0; k < ps->n_req; k++)
        if (ps->res[k] == s->pack)
            return ps->req[k] / 1000 > 1 << 20 ? 1 << 20 : (int)(ps->req[k] / 1000);
    return 0;
}

/* The best node for one pod of ps, or -1. */
static int find_node(const ty_sched *s, const sc_ps *ps, int f)
{
    if (f < 0) {
        for (int i = 0; i < s->n_nodes; i++)
            if (s->nodes[i]->in_buckets && eligible(s, s->nodes[i], ps))
                return i;
        return -1;
    }
    const sc_flavor *fl = s->flavors[f];
    int start = start_bucket(s, ps);
    if (start >= fl->n_buckets)
        start = fl->n_buckets - 1;
    if (ps->most_free) {
        /* the same walk from the other end: the fullest bucket first */
        for (int b = fl->n_buckets - 1; b >= start; b--) {
            const sc_bucket *bk = &fl->buckets[b];
            for (int i = 0; i < bk->n; i++) {
                const sc_node *n = s->nodes[bk->ids[i]];
                if (room(s, n, ps) && eligible(s, n, ps))
                    return bk->ids[i];
            }
        }
        return -1;
    }
    for (int b = start; b < fl->n_buckets; b++) {
        const sc_bucket *bk = &fl->buckets[b];
        for (int i = 0; i < bk->n; i++) {
            const sc_node *n = s->nodes[bk->ids[i]];
            if (room(s, n, ps) && eligible(s, n, ps))
                return bk->ids[i];
        }
    }
    return -1;
}

void sc_node_free(ty_sched *s, sc_node *n, const sc_ps *ps, int sign)
{
    if (!n->dirty) {
        n->dirty = true;
        memcpy(s->dfree + (size_t)s->n_dirty * SC_R, n->free, (size_t)s->n_res * sizeof *n->free);
        s->dirty[s->n_dirty++] = n->rank;
    }
    take(s, n, ps, sign);
}

void sc_nodes_sync(ty_sched *s)
{
    for (int i = 0; i < s->n_dirty; i++) {
        sc_node *n = s->nodes[s->dirty[i]];
        n->dirty = false;
        if (!memcmp(n->free, s->dfree + (size_t)i * SC_R, (size_t)s->n_res * sizeof *n->free))
            continue; /* as filed: its victims came back */
        uint32_t score = node_score(s, n);
        int bucket = node_bucket(s, n);
        if (score == n->score && bucket == n->bucket)
            continue;
        /* unlink by the place it was filed at, link by the new one */
        unlink_node(s, n);
        n->score = score;
        n->bucket = bucket;
        link_node(s, n);
    }
    s->n_dirty = 0;
}

bool sc_ps_counts(const sc_ps *ps)
{
    for (int k = 0; k < ps->n_req; k++) {
        if (ps->req[k] < 0)
            return false;
        for (int j = 0; j < k; j++)
            if (ps->res[j] == ps->res[k])
                return false;
    }
    return true;
}

bool sc_node_takes(const ty_sched *s, const sc_node *n, const sc_ps *ps)
{
    return n->in_buckets && eligible(s, n, ps);
}

int64_t sc_room_count(const ty_sched *s, const sc_node *n, const sc_ps *ps)
{
    if (!room(s, n, ps))
        return 0;
    int64_t fit = INT32_MAX;
    for (int k = 0; k < ps->n_req; k++)
        if (ps->req[k] > 0 && ps->res[k] != s->pods && n->free[ps->res[k]] / ps->req[k] < fit)
            fit = n->free[ps->res[k]] / ps->req[k];
    if (s->pods >= 0 && n->free[s->pods] / 1000 < fit)
        fit = n->free[s->pods] / 1000;
    return fit;
}

void sc_unplace(ty_sched *s, sc_wl *w, const int32_t *nodes)
{
    int at = 0;
    for (int p = 0; p < w->n_ps; p++)
        for (int i = 0; i < w->ps[p].count; i++)
            node_use(s, s->nodes[nodes[at++]], &w->ps[p], -1);
}

int sc_place(ty_sched *s, sc_wl *w)
{
    int at = 0;
    for (int p = 0; p < w->n_ps; p++) {
        sc_ps *ps = &w->ps[p];
        int f = sc_primary_flavor(s, ps);
        for (int i = 0; i < ps->count; i++) {
            int id = find_node(s, ps, f);
            if (id < 0) {
                /* undo, last pod first */
                int back = at;
                for (int q = p; q >= 0; q--) {
                    int upto = q == p ? i : w->ps[q].count;
                    for (int j = upto - 1; j >= 0; j--)
                        node_use(s, s->nodes[s->placed[--back]], &w->ps[q], -1);
                }
                return p;
            }
            node_use(s, s->nodes[id], ps, 1);
            s->placed[at++] = id;
        }
    }
    return -1;
}

void sc_reserve_nodes(ty_sched *s, const int32_t *nodes, int n)
{
    for (int i = 0; i < n; i++) {
        sc_node *x = s->nodes[nodes[i]];
        if (x->reserved)
            continue;
        unlink_node(s, x);
        x->in_buckets = false;
        x->reserved = true;
        for (int k = 0; k < x->n_flavors; k++)
            s->flavors[x->flavors[k]]->n_reserved++;
    }
}

bool sc_reserve_for(ty_sched *s, sc_wl *w)
{
    int n = 0;
    bool ok = true;
    for (int p = 0; p < w->n_ps && ok; p++) {
        sc_ps *ps = &w->ps[p];
        int f = sc_primary_flavor(s, ps);
        if (f < 0)
            continue;
        const sc_flavor *fl = s->flavors[f];
        int64_t left = ps->count;
        /* nearest to having room first: the most free units of the packing resource */
        for (int b = fl->n_buckets - 1; b >= 0 && left > 0; b--) {
            const sc_bucket *bk = &fl->buckets[b];
            for (int i = 0; i < bk->n && left > 0; i++) {
                sc_node *x = s->nodes[bk->ids[i]];
                if (x->reserved || !eligible(s, x, ps))
                    continue;
                int64_t fit = INT64_MAX;
                for (int k = 0; k < ps->n_req; k++)
                    if (ps->req[k] > 0 && ps->res[k] != s->pods) {
                        int64_t c = x->alloc[ps->res[k]] / ps->req[k];
                        if (c < fit)
                            fit = c;
                    }
                if (s->pods >= 0 && sc_node_limits(s, x, s->pods) &&
                    x->alloc[s->pods] / 1000 < fit)
                    fit = x->alloc[s->pods] / 1000;
                if (fit <= 0)
                    continue;
                x->reserved = true; /* marks it taken by this gang until the end */
                s->resv[n++] = bk->ids[i];
                left -= fit;
            }
        }
        ok = left <= 0;
    }
    for (int i = 0; i < n; i++)
        s->nodes[s->resv[i]]->reserved = false;
    if (ok)
        sc_reserve_nodes(s, s->resv, n);
    return ok;
}

void sc_place_msg(ty_sched *s, sc_wl *w, int p, char *msg)
{
    sc_ps *ps = &w->ps[p];
    int f = sc_primary_flavor(s, ps);
    char what[300] = "", q[32];
    for (int k = 0; k < ps->n_req; k++) {
        if (!ps->req[k])
            continue;
        size_t len = strlen(what);
        snprintf(what + len, sizeof what - len, "%s%s %s", len ? ", " : "",
                 sc_qty(s, ps->res[k], ps->req[k], q), s->res[ps->res[k]]);
    }
    if (f < 0) {
        sc_msgf(msg, "the gang of %d pods does not fit the nodes: pod set %s has no node", w->pods,
                ps->name);
        return;
    }
    const sc_flavor *fl = s->flavors[f];
    int roomy = 0, reserved = fl->n_reserved;
    /* Only the buckets that can hold the pod: cheap when the nodes are full. */
    int start = start_bucket(s, ps);
    for (int b = start < fl->n_buckets ? start : fl->n_buckets - 1; b < fl->n_buckets; b++)
        for (int i = 0; i < fl->buckets[b].n; i++) {
            const sc_node *n = s->nodes[fl->buckets[b].ids[i]];
            if (room(s, n, ps) && eligible(s, n, ps))
                roomy++;
        }
    sc_msgf(msg, "quota fits but the gang of %d pods does not fit the nodes of flavor %s: %d of %d "
                 "nodes have room for a pod (%s)",
            w->pods, fl->name, roomy, fl->n_nodes, what);
    if (w->n_ps > 1)
        sc_msgf(msg, " of pod set %s", ps->name);
    /* Counted only for pod sets that choose nodes: the others would pay a scan for nothing. */
    if (ps->n_sel || ps->aff) {
        int off = 0;
        for (int i = 0; i < fl->n_nodes; i++)
            off += !matches(s->nodes[fl->nodes[i]], ps);
        if (off)
            sc_msgf(msg, "; %d of them do not match its node selector or required node affinity",
                    off);
    }
    if (reserved)
        sc_msgf(msg, "; %d nodes are held for workloads ahead of it", reserved);
}

void sc_place_stats(ty_sched *s)
{
    if (s->pack < 0)
        return;
    for (int i = 0; i < s->n_nodes; i++) {
        const sc_node *n = s->nodes[i];
        int64_t a = n->alloc[s->pack], f = n->free[s->pack];
        if (n->unschedulable || a <= 0)
            continue;
        if (f >= a) {
            s->st.pack_free_whole_milli += f;
            s->st.nodes_wholly_free++;
        } else if (f > 0) {
            s->st.pack_free_partial_milli += f;
        }
    }
}
