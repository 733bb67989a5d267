/* The scheduling core's private model, shared by its files (sched.c: snapshot and accessors;
 * quota.c: quota accounting and flavor assignment; place.c: nodes and gang placement;
 * preempt.c: victims; pass.c: the pass). Not part of the public contract.
 *
 * Everything lives in the ty_sched's arena and is freed with it. Names are interned: resources
 * to indices below TY_SCHED_MAX_RESOURCES, label keys and values to string ids, so that the hot
 * paths compare integers. Objects are referred to by index into the ty_sched's arrays, which
 * ty_sched_run() first sorts by name so that nothing depends on the order of the adds. */
#ifndef TY_SCHED_SCHED_INT_H
#define TY_SCHED_SCHED_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/map.h"
#include "sched/sched.h"

#define SC_R TY_SCHED_MAX_RESOURCES
#define SC_MSG 1024

typedef struct sc_chunk {
    struct sc_chunk *next;
    size_t used, cap;
    _Alignas(16) char data[];
} sc_chunk;

typedef struct sc_arena {
    sc_chunk *head;
    size_t bytes;
} sc_arena;

enum { SC_EFF_ANY, SC_EFF_NO_SCHEDULE, SC_EFF_PREFER, SC_EFF_NO_EXECUTE };

typedef struct sc_label {
    int32_t key, value;
} sc_label;

typedef struct sc_taint {
    int32_t key, value;
    int effect;
} sc_taint;

typedef struct sc_tol {
    int32_t key, value; /* key -1: every key (Exists) */
    bool exists;
    int effect; /* SC_EFF_ANY: every effect */
} sc_tol;

/* Nodes of one free-units class of the packing resource, sorted by (score, rank). */
typedef struct sc_bucket {
    int32_t *ids;
    int n, cap;
} sc_bucket;

typedef struct sc_flavor {
    const char *name;
    int id; /* add order, remapped when the pass sorts by name */
    sc_label *labels;
    int n_labels;
    ty_nodefit_label *slabels; /* the same as strings, for required node affinity */
    sc_taint *taints;
    int n_taints;
    sc_tol *tols;
    int n_tols;
    /* pass */
    int32_t *nodes; /* member nodes, by name */
    int n_nodes;
    sc_bucket *buckets;
    int n_buckets;
    int n_reserved; /* member nodes reserved for a gang */
} sc_flavor;

typedef struct sc_node {
    const char *name;
    sc_label *labels;
    int n_labels;
    ty_nodefit_label *slabels; /* the same as strings, for required node affinity */
    sc_taint *taints;
    int n_taints;
    bool unschedulable;
    int64_t alloc[SC_R], ext[SC_R]; /* ext: used by pods outside the snapshot's workloads */
    uint32_t declared;              /* bit r: allocatable lists resource r */
    /* pass */
    int64_t free[SC_R];
    int32_t rank;      /* position by name */
    uint32_t score;    /* the other resources' free share, for best fit within a bucket */
    int bucket;        /* free units of the packing resource, uncapped */
    bool in_buckets;   /* schedulable and not reserved */
    bool reserved;
    bool dirty;        /* free changed, buckets not yet (preemption trials): see sc_nodes_sync */
    uint64_t *fmask;   /* flavors it belongs to */
    int32_t *flavors;
    int n_flavors;
} sc_node;

/* Quota of one (cluster queue, flavor): per resource. */
typedef struct sc_fq {
    int flavor, group; /* group -1: not in the spec (usage only) */
    uint32_t covered;
    int64_t nominal[SC_R], blimit[SC_R], lend[SC_R], guar[SC_R];
    int64_t ext[SC_R]; /* used outside the snapshot's workloads (ty_sched_quota.used) */
    /* pass */
    int64_t usage[SC_R];
    int64_t held[SC_R];    /* preemptors' room, counted in usage, not reported */
    int64_t leaving[SC_R]; /* victims of this pass, no longer in usage, still reported */
} sc_fq;

typedef struct sc_group {
    uint32_t covered;
    int first, n; /* fq entries, in the order they are tried */
} sc_group;

struct sc_wl;

/* An admitted workload in a preemption list, packed so that gathering a preemptor's candidates
 * reads a few bytes a workload, not the workload. */
typedef struct sc_vent {
    struct sc_wl *w;
    uint64_t uses; /* bit flavor * SC_R + resource of each request (flavors below 64 / SC_R) */
    int32_t prio, cq;
    bool out;  /* evicting, or a victim already */
    bool wide; /* has a request on a flavor beyond uses' bits */
} sc_vent;

typedef struct sc_cq {
    const char *name;
    int id;
    int cohort; /* -1: none */
    ty_sched_queueing queueing;
    ty_sched_preempt_policy within, reclaim, borrow;
    int32_t threshold;
    bool has_threshold, try_next_on_borrow, preempt_first, stopped;
    int64_t weight;
    sc_fq *fq;
    int n_fq, cap_fq;
    sc_group *groups;
    int n_groups;
    /* pass */
    int32_t *fq_of; /* by flavor: fq index or -1 */
    struct sc_wl **pending;
    int n_pending, next;
    struct sc_wl **admitted;
    int n_admitted;
    struct sc_wl **evicting; /* admitted and evicting */
    int n_evicting;
    bool blocked, reserved_once;
    const char *blocked_by;
    /* preemption, built when the first preemptor needs it: the admitted workloads of its
     * cohort (or its own) in Kueue's candidate order; its own not evicting ones' quota usage
     * summed per priority level ([level * qacc_stride + fq * SC_R + r]), victims taken out */
    sc_vent *vl;
    int n_vl;
    int n_lv;
    int32_t *lv_prio;
    int64_t *lv_use;
} sc_cq;

typedef struct sc_cohort {
    const char *name;
    int32_t *members;
    int n_members, cap_members;
    /* [flavor * SC_R + resource]: lendable total, used of it; wide, because a cohort's
     * memory in milli-bytes can pass INT64_MAX */
    __int128 *lend, *pool;
    __int128 lend_r[SC_R]; /* over flavors, for fair sharing */
    /* pass: the members' admitted workloads in preemption order (see sc_cq.vl) */
    struct sc_vent *vl;
    int n_vl;
} sc_cohort;

typedef struct sc_ps {
    const char *name;
    int32_t count;
    int n_req;
    int res[SC_R];
    int64_t req[SC_R];
    sc_label *sel;
    int n_sel;
    sc_tol *tols;
    int n_tols;
    ty_nodefit_affinity *aff; /* required node affinity, or NULL */
    bool most_free;           /* worst fit (ty_sched_pod_set.most_free) */
    int16_t aflavor[SC_R]; /* admitted: flavor per request */
    int32_t *anodes;       /* admitted: node per pod */
    int16_t flav[SC_R];    /* pass: the assignment being tried, flavor per request */
    /* pass, per resource group of its queue (below SC_R): the flavor entry (offset in the
     * group) to start from, the last one tried and the mode chosen, so that a preemption
     * that finds no victims can go on with the next flavor as Kueue's next cycle would */
    int16_t from[SC_R], upto[SC_R];
    int8_t gmode[SC_R];
} sc_ps;

typedef struct sc_wl {
    const char *key;
    int cq;
    int32_t prio;
    int64_t queued, eligible, admitted_at;
    bool admitted, evicting;
    sc_ps *ps;
    int n_ps;
    int pods;
    /* pass */
    int decision; /* -1: none yet */
    bool victim;  /* chosen as a victim in this pass */
    bool gone;    /* its usage is out of the accounting for now (preemption trial) */
    int32_t vpos; /* admitted: its entry in its queue's vl */
} sc_wl;

/* Flavor modes, worst first. SC_RECLAIM: preemption that takes back lent quota only, preferred
 * to preemption in its own queue (Kueue's granular modes); outside quota.c it counts as
 * SC_PREEMPT (sc_assign returns SC_PREEMPT for it). */
enum { SC_NOFIT, SC_PREEMPT, SC_RECLAIM, SC_BORROW, SC_FIT };

struct ty_sched {
    ty_sched_config cfg;
    sc_arena arena;
    ty_map flavor_ix, node_ix, cq_ix, cohort_ix, wl_ix, str_ix, res_ix;
    const char *res[SC_R];
    int n_res;
    int pack; /* resource index of the packing resource, or -1 */
    int pods; /* resource index of "pods" (a pod count: quota only, never node room), or -1 */
    const char *pack_name;

    sc_flavor **flavors;
    int n_flavors, cap_flavors;
    sc_node **nodes;
    int n_nodes, cap_nodes;
    sc_cq **cqs;
    int n_cqs, cap_cqs;
    sc_cohort **cohorts;
    int n_cohorts, cap_cohorts;
    sc_wl **wls;
    int n_wls, cap_wls;
    const char **strs; /* by string id */
    int n_strs, cap_strs;
    int fwords; /* words of a node's flavor mask */

    bool ran;
    ty_sched_decision *dec;
    size_t n_dec;
    ty_sched_stats st;

    /* scratch of the pass, sized once */
    int64_t *need;     /* [fq * SC_R] of the workload's queue */
    int64_t *left;     /* [flavor * SC_R]: a preemptor's need its victims do not cover yet */
    int32_t *placed;   /* node per pod of the workload being placed */
    int32_t *placed2;  /* the same, kept across a trial */
    sc_wl **cands;
    sc_wl **cands2;
    sc_wl **victims;
    int32_t *resv;
    int32_t *dirty; /* nodes with dirty set */
    int64_t *dfree; /* [i * SC_R + r]: dirty[i]'s free room when it was last filed */
    int n_dirty;
    bool victim_order; /* every cq->admitted and cohort's by_victim sorted for preemption */
    int64_t *qacc;     /* [cq * qacc_stride + fq * SC_R + r]: summed quota of candidates */
    int qacc_stride;
    bool *gives; /* by queue: gives back to the current preemptor */
    bool *pre;   /* [fq * SC_R + r] of the preemptor's queue: contended (needs preemption) */
};

static inline int64_t sc_mul(int64_t a, int64_t b)
{
    int64_t r;
    return __builtin_mul_overflow(a, b, &r) ? INT64_MAX / 4 : r;
}

/* arena */
void *sc_alloc(sc_arena *a, size_t n);
char *sc_strdup(sc_arena *a, const char *s);

/* formatting */
void sc_msgf(char *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *sc_qty(const ty_sched *s, int res, int64_t milli, char out[32]);

/* quota.c */
void sc_quota_init(ty_sched *s);
int64_t sc_avail(const ty_sched *s, const sc_cq *cq, const sc_fq *fq, int r);
int64_t sc_maxcap(const ty_sched *s, const sc_cq *cq, const sc_fq *fq, int r);
void sc_usage_add(ty_sched *s, sc_cq *cq, int fqi, int r, int64_t delta);
/* Adds (sign 1) or removes (-1) an admitted workload's quota usage. */
void sc_wl_quota(ty_sched *s, sc_wl *w, int sign);
/* Chooses a flavor per request into ps->flav, each group starting at ps->from; returns
 * SC_FIT..SC_NOFIT; msg (may be NULL) gets Kueue's message when the result is not
 * SC_FIT/SC_BORROW. */
int sc_assign(ty_sched *s, sc_wl *w, char *msg);
/* After an assignment in preemption mode that found no victims: moves every group that chose
 * a flavor in preemption mode before its last one on to the next flavor (Kueue's
 * LastAssignment); false when none can move. */
bool sc_assign_next(ty_sched *s, sc_wl *w);
/* Whether a (flavor entry, resource) of w's queue needs preemption for w's current
 * assignment (s->need set): w needs more than is available. */
bool sc_short(const ty_sched *s, const sc_wl *w, int fqi, int r);
/* Fills s->need for w's current assignment; returns false when a flavor has no quota entry. */
void sc_need(ty_sched *s, sc_wl *w);
bool sc_fits_quota(ty_sched *s, sc_wl *w, bool allow_borrow);
/* sc_fits_quota with s->need already w's (sc_need). */
bool sc_fits_need(ty_sched *s, sc_wl *w, bool allow_borrow);
bool sc_would_borrow(ty_sched *s, sc_wl *w);
/* The queue's fair-sharing share with `sign` x the current need added. */
int64_t sc_share(const ty_sched *s, const sc_cq *cq, int sign);
/* reported: as ty_sched_usage() counts (victims still in, preemptors not yet). */
int64_t sc_share_as(const ty_sched *s, const sc_cq *cq, int sign, bool reported);
/* Whether one of `tols` tolerates the taint: Kubernetes' ToleratesTaint (sched/nodefit.h's
 * ty_nodefit_tolerates) over interned strings, for the hot loops. */
bool sc_tolerates(const sc_tol *tols, int n, const sc_taint *t);
bool sc_compatible(const ty_sched *s, const sc_ps *ps, const sc_flavor *f, char *why, size_t cap);

/* place.c */
void sc_place_init(ty_sched *s);
/* Adds (sign 1) or removes (-1) an admitted workload's pods on its nodes. */
void sc_wl_nodes(ty_sched *s, sc_wl *w, int sign);
/* Places every pod of w with its assignment; on success the pods stay (s->placed holds the
 * nodes, pod sets in order) and it returns -1, else it undoes and returns the failing pod set. */
int sc_place(ty_sched *s, sc_wl *w);
void sc_unplace(ty_sched *s, sc_wl *w, const int32_t *nodes);
void sc_reserve_nodes(ty_sched *s, const int32_t *nodes, int n);
/* Reserves the nodes w would take once they drain; false when it could never fit. */
bool sc_reserve_for(ty_sched *s, sc_wl *w);
void sc_place_msg(ty_sched *s, sc_wl *w, int ps, char *msg);
/* Preemption trials move victims' pods off and back on nodes thousands of times a preemptor:
 * sc_node_free() changes only the node's free room and marks it dirty; sc_nodes_sync() files
 * the dirty nodes in their buckets again, and must run before anything reads the buckets
 * (sc_place, sc_wl_nodes, find_node). Buckets depend only on the nodes' free room, so the
 * result is the same as moving the pods with sc_wl_nodes. */
void sc_node_free(ty_sched *s, sc_node *n, const sc_ps *ps, int sign);
void sc_nodes_sync(ty_sched *s);
/* The flavor whose buckets sc_place looks up ps's pods in, or -1 (then any node). */
int sc_primary_flavor(const ty_sched *s, const sc_ps *ps);
/* Whether sc_room_count counts exactly (requests >= 0, on distinct resources): then sc_place
 * places ps's count pods, alone, if and only if the room of the eligible nodes adds up to it,
 * as each pod it places takes exactly one pod's room of one node. */
bool sc_ps_counts(const sc_ps *ps);
/* Whether sc_place may put pods of ps (with its primary flavor >= 0) on node n: n is in the
 * buckets and eligible. Does not change during a preemption trial. */
bool sc_node_takes(const ty_sched *s, const sc_node *n, const sc_ps *ps);
/* How many pods of ps fit in n's free room now, capped at INT32_MAX; 0 when one does not. */
int64_t sc_room_count(const ty_sched *s, const sc_node *n, const sc_ps *ps);
/* Whether node n's room in resource r is checked: ty_nodefit_limits, the rule
 * controllers/placement.c applies too. */
bool sc_node_limits(const ty_sched *s, const sc_node *n, int r);
void sc_place_stats(ty_sched *s);

/* preempt.c */
enum { SC_PRE_NONE, SC_PRE_VICTIMS, SC_PRE_EVICTING };
/* On SC_PRE_VICTIMS: s->victims holds *n victims with reasons in *reasons (arena), s->placed2
 * the preemptor's nodes. On SC_PRE_EVICTING: *n evicting workloads to wait for. */
int sc_preempt(ty_sched *s, sc_wl *w, int *n, ty_sched_preempt_reason **reasons);
/* Kueue's IsReclaimPossible for val of (w's queue's fq entry fqi, resource r), with avail
 * available: it stays within its nominal quota, and what other queues borrow and could give
 * back covers the shortfall, or its own queue has no victims for it. Quota only. */
bool sc_reclaim_possible(ty_sched *s, sc_wl *w, int fqi, int r, int64_t val, int64_t avail);

#endif
