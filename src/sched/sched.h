/* The scheduling core: Kueue's admission (cluster queues, quotas per resource flavor, cohorts
 * with borrowing and lending, StrictFIFO/BestEffortFIFO, priority preemption, fair sharing)
 * together with gang placement on nodes, as one pure and deterministic library. A snapshot goes
 * in, decisions come out: no I/O, no clock, no store, no global state. The server's queue
 * controller builds a snapshot from the store for each pass; the simulator will drive it over
 * cluster traces.
 *
 * Lifecycle: ty_sched_new(), then ty_sched_add_*() in any order except that a name must be
 * added before something refers to it (flavors before cluster queues and nodes that use them,
 * cluster queues before their workloads), then ty_sched_run() once, then read the decisions,
 * then ty_sched_free(). Every string and array passed in is copied; the caller may free its
 * own as soon as an add returns. Everything returned points into the ty_sched and lives until
 * ty_sched_free().
 *
 * Units: every amount is an int64 count of milli-units of its resource, as ty_quantity holds
 * it (cpu "500m" = 500, memory "1Gi" = 1073741824000, nvidia.com/gpu "8" = 8000).
 *
 * Determinism: the same snapshot, added in any order, gives the same decisions in the same
 * order. Ties are broken by names (workload keys, node names), never by addresses or hashing.
 *
 * What a pass does (Kueue's scheduling cycle, but admitting everything that fits in one pass
 * instead of one head per queue per cycle):
 *
 * - Queues. Each cluster queue orders its pending workloads by priority (higher first), then
 *   by `queued_at` (older first), then by key. Workloads whose `eligible_at` is in the future
 *   (requeue back-off) are not considered ("waiting for the requeue back-off"). The heads of all
 *   queues are considered in one global order: (with fair sharing) the cohort share the queue
 *   would have after admitting the head, lower first; then not-borrowing before borrowing;
 *   then priority, then queued_at, then key.
 * - Flavor assignment (quota). For each pod set, each resource group covering its requests
 *   is tried flavor by flavor in the queue's order; a flavor is usable when the pod set's node
 *   selector and tolerations are compatible with the flavor's node labels and taints and there
 *   is quota. Quota of (queue c, flavor f, resource r): nominal N, borrowing limit B (unset:
 *   unlimited), lending limit L (unset: N). c alone may use N - L ("guaranteed"); the cohort
 *   pools Σ L of its members. c may use up to min(N + B, guaranteed + what the cohort pool has
 *   left). Using more than N is borrowing; a queue without a cohort has exactly N.
 *   flavorFungibility: whenCanBorrow=Borrow takes the first flavor that fits even by borrowing,
 *   TryNextFlavor prefers a later flavor that fits without borrowing; whenCanPreempt=Preempt
 *   stops at the first flavor where preemption would make room, TryNextFlavor tries the next
 *   flavors for a fit first.
 * - Placement (gang). A workload is admitted only when every pod of every pod set also has a
 *   node: a node of the assigned flavor (its labels include the flavor's node labels and the
 *   pod set's node selector), not unschedulable, whose taints the pod set (plus the flavor's
 *   tolerations) tolerates, that matches the pod set's required node affinity (sched/nodefit.h:
 *   the same rules as the binder's), with room for the pod's requests and, where the node
 *   declares a "pods" amount, for one more pod. Pods go best-fit on the packing
 *   resource (the node with the fewest free units of it that still fits; then the fewest free of
 *   the other resources; then name), so whole nodes stay free for large gangs; a pod set
 *   marked most_free goes on the node with the most free units instead. All or nothing:
 *   a workload that fits its quota but not the nodes is not admitted and holds no quota.
 * - No starvation. The first workload of each queue that fits its quota but not the nodes
 *   reserves, for the rest of the pass, the nodes it would take once they drain (those nearest
 *   to having room); workloads after it may not place pods on those nodes. The same holds for a
 *   workload that is waiting for its preemption victims to leave.
 * - StrictFIFO: when the head of a queue cannot be admitted (and is not preempting), nothing
 *   behind it in that queue is admitted in this pass. BestEffortFIFO: the next ones are tried.
 * - Preemption, when a workload does not fit: candidates are admitted, not already evicting
 *   workloads of its own queue (withinClusterQueue: LowerPriority = strictly lower priority;
 *   LowerOrNewerEqualPriority = lower, or equal and queued after it) and of other queues of the
 *   cohort that borrow a contended (flavor, resource) (reclaimWithinCohort: LowerPriority or
 *   Any). Contended: what the workload needs beyond what is available. As Kueue's getTargets:
 *   with only its own queue's candidates it may borrow; with borrowWithinCohort LowerPriority,
 *   other queues' workloads below the threshold (its priority, or maxPriorityThreshold + 1
 *   when lower) may go while it borrows, those above it only if it then fits without
 *   borrowing, and while its queue is at or above its nominal quota of a contended resource
 *   only those below the threshold; otherwise, while its queue is below its nominal quota of
 *   every contended resource, victims from the whole cohort and its queue together so that it
 *   fits without borrowing, else its own queue's alone, borrowing. With fair sharing on,
 *   cohort candidates must pass the share strategies below. Candidates are taken other
 *   queues first, then lowest priority, then most recently admitted (another queue's only
 *   while it still borrows), until the workload fits quota and nodes; then every victim that
 *   is not needed is given back (fewest victims). The workload gets a PREEMPT decision with the
 *   victims; in this pass the victims' usage counts as the preemptor's, so nothing else takes
 *   the room being made. While admitted workloads it could use are still evicting (they hold
 *   their usage until their pods are gone) and ignoring them would make it fit, it waits
 *   instead of choosing more victims.
 * - No victims: when the flavors chosen in preemption mode give none, the next flavors are
 *   tried (Kueue's next cycle starts after the flavor it last tried); when none helps, a
 *   StrictFIFO head keeps the quota it would take (up to its nominal quota, or its borrowing
 *   limit when it borrows) from everything after it in the pass, unless reclaimWithinCohort is
 *   Any (it can always get lent quota back). Not reported as usage.
 * - Fair sharing (config.fair_sharing): a queue's share is, over resources, the largest
 *   ratio of what it borrows above its nominal quota to the cohort's lendable total, times
 *   1000, divided by its weight (weight 0: only its nominal quota). Admission across queues
 *   of a cohort goes to the lower share first, so borrowed capacity converges to the weights.
 * - Stopped queues (stopPolicy Hold or HoldAndDrain) admit nothing; their admitted workloads
 *   keep their usage (draining is the controller's business).
 *
 * Decisions where the text above leaves room (following Kueue where it has an answer):
 * - A requested resource that no resource group of the queue covers: "resource R unavailable
 *   in ClusterQueue" (Kueue's flavorassigner); a request of 0 needs no quota (its flavor in
 *   an admission is "" when no group covers it). A lending limit above the nominal quota
 *   counts as the nominal quota.
 * - Flavor modes are Kueue's: Fit (no borrowing), Borrow, Preempt (the request exceeds what is
 *   free but not the maximum capacity, min(N + B, guaranteed + the cohort's lendable total), and
 *   is within the flavor's nominal quota, or borrowWithinCohort is set, or fair sharing with
 *   reclaimWithinCohort), NoFit; Preempt that only takes back lent quota (it stays within its
 *   nominal quota, and other queues' borrowing covers the shortfall or its own queue has no
 *   victims: Kueue's IsReclaimPossible, by quota) ranks above Preempt in its own queue when the
 *   group has other flavors to prefer. Per resource group the best mode wins, the first flavor
 *   among equals; the loop stops as flavorFungibility says (whenCanPreempt Preempt stops at a
 *   flavor in preemption mode unless it would borrow there and whenCanBorrow is
 *   TryNextFlavor). Pod sets are assigned in order, each seeing what the earlier ones of the
 *   same workload take. Flavor compatibility: the pod set's node selector must agree with the
 *   flavor's node labels on the keys the flavor has, and so must its required node affinity
 *   (ty_nodefit_affinity_may_match: "flavor F doesn't match node affinity"); the flavor's
 *   NoSchedule/NoExecute taints must be tolerated by the pod set's or the flavor's
 *   tolerations ("untolerated taint k=v:Effect in flavor F").
 * - Best fit: "fewest free of the other resources" is the sum over them of free/allocatable.
 * - Preemption is also tried when the quota fits but the nodes do not (the candidates then
 *   free nodes, not quota); quota alone is checked first over all candidates, so a hopeless
 *   attempt costs no node work. Cohort candidates come only from queues borrowing a contended
 *   (flavor, resource); reclaimWithinCohort filters their priority (LowerPriority: lower; Any).
 * - Fair-sharing preemption uses Kueue's default strategies in turn: LessThanOrEqualToFinalShare
 *   (c of queue X is a candidate while the preemptor queue's share with the preemptor admitted
 *   is <= X's share without c), then, if that finds no fit, LessThanInitialShare (< X's share
 *   with c). Weight 0: a borrowing queue's share is infinite (INT64_MAX), else 0.
 * - What a PREEMPT holds for the rest of the pass: the victims' quota goes to the preemptor as
 *   far as it needs it (the rest stays counted where it was), and the preemptor's pods are
 *   counted on the nodes it will take, on top of the victims' pods still there. A workload
 *   waiting for evicting ones holds its room the same way and, like a preemptor, does not
 *   block a StrictFIFO queue. Whole nodes are reserved only for a gang that fits its quota but
 *   not the nodes (one per queue and pass); one that would not fit even on drained nodes
 *   reserves nothing and its message says "it cannot fit even on empty nodes".
 * - A request of the resource "pods" (Kueue's pod count, one per pod, which the caller adds
 *   when a queue covers "pods") counts against quota only; on a node, every pod counts one
 *   against the "pods" amount the node declares (none declared: no limit), as placement.c.
 * - Node room, as placement.c: a node that does not declare cpu, memory or an extended
 *   (domain-prefixed) resource has none of it; other resources it does not declare
 *   (ephemeral-storage) are not limited there.
 * - ty_sched_usage() and ty_sched_weighted_share() report what is admitted: the pass's victims
 *   still count, preemptors not yet. Admitted workloads on a flavor their queue no longer lists
 *   still count, as usage without quota. Cohort totals are 128-bit (memory in milli-bytes of a
 *   large cohort passes INT64_MAX); a workload's own totals saturate.
 *
 * Every pending workload gets exactly one decision per pass: ADMIT, PREEMPT or WAIT, and every
 * WAIT/PREEMPT carries a message that says concretely why: the pod set, resource, flavor and
 * requested versus available quantities, or the nodes that could not take the gang and why. */
#ifndef TY_SCHED_SCHED_H
#define TY_SCHED_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "sched/nodefit.h"

typedef struct ty_sched ty_sched;

/* Distinct resource names one snapshot may use. */
#define TY_SCHED_MAX_RESOURCES 16
/* A borrowing or lending limit that is not set. */
#define TY_SCHED_UNLIMITED INT64_MAX

typedef struct ty_sched_config {
    bool fair_sharing;
    int64_t now_ms;              /* for eligible_at; the caller's clock */
    const char *pack_resource;   /* NULL: "nvidia.com/gpu" */
} ty_sched_config;

/* name = value. */
typedef struct ty_sched_amount {
    const char *resource;
    int64_t milli;
} ty_sched_amount;

/* Labels, taints and tolerations as the node-fit rules read them (sched/nodefit.h). */
typedef ty_nodefit_label ty_sched_label;
typedef ty_nodefit_taint ty_sched_taint;
typedef ty_nodefit_toleration ty_sched_toleration;

typedef struct ty_sched_flavor {
    const char *name;
    const ty_sched_label *node_labels;
    size_t n_node_labels;
    const ty_sched_taint *node_taints; /* workloads must tolerate them to use the flavor */
    size_t n_node_taints;
    const ty_sched_toleration *tolerations; /* given to the pods admitted on this flavor */
    size_t n_tolerations;
} ty_sched_flavor;

typedef struct ty_sched_node {
    const char *name;
    const ty_sched_label *labels;
    size_t n_labels;
    const ty_sched_taint *taints;
    size_t n_taints;
    const ty_sched_amount *allocatable;
    size_t n_allocatable;
    /* What already runs there outside the admitted workloads given to this snapshot (pods of
     * jobs that are not queued); admitted workloads' pods are counted from their placement. */
    const ty_sched_amount *used;
    size_t n_used;
    bool unschedulable;
} ty_sched_node;

typedef enum {
    TY_SCHED_BEST_EFFORT_FIFO,
    TY_SCHED_STRICT_FIFO,
} ty_sched_queueing;

typedef enum {
    TY_SCHED_PREEMPT_NEVER,
    TY_SCHED_PREEMPT_LOWER_PRIORITY,
    TY_SCHED_PREEMPT_LOWER_OR_NEWER_EQUAL_PRIORITY, /* withinClusterQueue only */
    TY_SCHED_PREEMPT_ANY,                           /* reclaimWithinCohort only */
} ty_sched_preempt_policy;

typedef struct ty_sched_quota {
    const char *resource;
    int64_t nominal;
    int64_t borrowing_limit; /* TY_SCHED_UNLIMITED when unset */
    int64_t lending_limit;   /* TY_SCHED_UNLIMITED when unset (= nominal) */
    /* What workloads outside this snapshot already use of it, counted as usage (borrowing,
     * the cohort's pool, fair-sharing shares, ty_sched_usage) like an admitted workload's but
     * never a preemption victim: the simulator's running jobs when nothing can preempt them,
     * as a node's `used` holds their pods. 0 for the server. */
    int64_t used;
} ty_sched_quota;

typedef struct ty_sched_flavor_quotas {
    const char *flavor;
    const ty_sched_quota *quotas; /* one per covered resource of its group */
    size_t n_quotas;
} ty_sched_flavor_quotas;

typedef struct ty_sched_resource_group {
    const char *const *covered; /* resource names */
    size_t n_covered;
    const ty_sched_flavor_quotas *flavors; /* in the order they are tried */
    size_t n_flavors;
} ty_sched_resource_group;

typedef struct ty_sched_cluster_queue {
    const char *name;
    const char *cohort; /* NULL or "": none */
    ty_sched_queueing queueing;
    ty_sched_preempt_policy within_cluster_queue;
    ty_sched_preempt_policy reclaim_within_cohort;
    ty_sched_preempt_policy borrow_within_cohort; /* NEVER or LOWER_PRIORITY */
    int32_t borrow_max_priority_threshold;        /* used when has_borrow_threshold */
    bool has_borrow_threshold;
    bool when_can_borrow_try_next;  /* flavorFungibility.whenCanBorrow == TryNextFlavor */
    bool when_can_preempt_preempt;  /* flavorFungibility.whenCanPreempt == Preempt */
    int64_t fair_weight_milli;      /* fairSharing.weight; 1000 unless set */
    bool stopped;                   /* stopPolicy Hold or HoldAndDrain */
    const ty_sched_resource_group *groups;
    size_t n_groups;
} ty_sched_cluster_queue;

typedef struct ty_sched_pod_set {
    const char *name;  /* "master", "worker" */
    int32_t count;
    const ty_sched_amount *requests; /* per pod */
    size_t n_requests;
    const ty_sched_label *node_selector;
    size_t n_node_selector;
    const ty_sched_toleration *tolerations;
    size_t n_tolerations;
    /* Required node affinity (spec.affinity.nodeAffinity.requiredDuringScheduling...); NULL:
     * none. Its nodes must also match it. */
    const ty_nodefit_affinity *affinity;
    /* Worst fit: each pod goes on the node with the most free units of the packing resource
     * (then the same order as best fit), not the fewest. The simulator's Helios semantics
     * place the part of a gang that is not a whole node so (docs/simulate.md). */
    bool most_free;
} ty_sched_pod_set;

/* Where an admitted pod set is: a flavor per request (aligned with the pod set's requests)
 * and a node per pod (count entries). */
typedef struct ty_sched_pod_set_admission {
    const char *const *flavors;
    const char *const *nodes;
} ty_sched_pod_set_admission;

typedef struct ty_sched_workload {
    const char *key;           /* unique, e.g. "namespace/name"; decisions name it */
    const char *cluster_queue; /* must have been added */
    int32_t priority;
    int64_t queued_at_ms;      /* creation, or the last requeue */
    int64_t eligible_at_ms;    /* requeue back-off: not before (0: now) */
    const ty_sched_pod_set *pod_sets;
    size_t n_pod_sets;
    /* An admitted workload (it uses quota and nodes; a preemption candidate): */
    bool admitted;
    bool evicting;             /* admitted, being evicted: still uses, never a victim again */
    int64_t admitted_at_ms;
    const ty_sched_pod_set_admission *admission; /* n_pod_sets entries when admitted */
} ty_sched_workload;

typedef enum {
    TY_SCHED_ADMIT,
    TY_SCHED_PREEMPT,
    TY_SCHED_WAIT,
} ty_sched_verdict;

/* Kueue's preemption reasons, for the victims' Preempted condition. */
typedef enum {
    TY_SCHED_IN_CLUSTER_QUEUE,              /* "InClusterQueue" */
    TY_SCHED_IN_COHORT_RECLAMATION,         /* "InCohortReclamation" */
    TY_SCHED_IN_COHORT_FAIR_SHARING,        /* "InCohortFairSharing" */
    TY_SCHED_IN_COHORT_RECLAIM_WHILE_BORROWING, /* "InCohortReclaimWhileBorrowing" */
} ty_sched_preempt_reason;

typedef struct ty_sched_victim {
    const char *workload;
    ty_sched_preempt_reason reason;
} ty_sched_victim;

typedef struct ty_sched_decision {
    const char *workload;
    ty_sched_verdict verdict;
    const char *cluster_queue;
    /* ADMIT (and, tentatively, PREEMPT): n_pod_sets entries, in the workload's order */
    const ty_sched_pod_set_admission *pod_sets;
    size_t n_pod_sets;
    bool borrowing; /* admitted above its queue's nominal quota */
    /* PREEMPT */
    const ty_sched_victim *victims;
    size_t n_victims;
    /* WAIT and PREEMPT: why, for the Workload's QuotaReserved=False message */
    const char *message;
} ty_sched_decision;

/* Figures of the pass, for logs, status and the benchmark. */
typedef struct ty_sched_stats {
    size_t nodes, workloads_pending, admitted, preempting, waiting, victims;
    size_t pods_placed;
    /* Of the packing resource after the pass: free units on nodes that are wholly free, and
     * on nodes that are partly used (fragmentation = partly / (wholly + partly)). */
    int64_t pack_free_whole_milli, pack_free_partial_milli;
    size_t nodes_wholly_free;
    size_t bytes; /* memory the snapshot and its decisions use */
} ty_sched_stats;

ty_sched *ty_sched_new(const ty_sched_config *cfg);
void ty_sched_free(ty_sched *s);

/* Each add fails (-1, err) on a duplicate name, a reference to something not added, more than
 * TY_SCHED_MAX_RESOURCES resource names, or a malformed entry (negative amount, count < 1,
 * admitted without an admission, a flavor or node of an admission that does not exist). */
int ty_sched_add_flavor(ty_sched *s, const ty_sched_flavor *f, ty_error *err);
int ty_sched_add_node(ty_sched *s, const ty_sched_node *n, ty_error *err);
int ty_sched_add_cluster_queue(ty_sched *s, const ty_sched_cluster_queue *cq, ty_error *err);
int ty_sched_add_workload(ty_sched *s, const ty_sched_workload *w, ty_error *err);

/* One pass over the snapshot. Call once. */
void ty_sched_run(ty_sched *s);

size_t ty_sched_n_decisions(const ty_sched *s);
const ty_sched_decision *ty_sched_decision_at(const ty_sched *s, size_t i);
/* The decision about `workload`, or NULL (it was admitted before, or is unknown). */
const ty_sched_decision *ty_sched_decision_of(const ty_sched *s, const char *workload);

/* After the pass: what a cluster queue uses of (flavor, resource), counting what was just
 * admitted (for status.flavorsReservation / flavorsUsage); -1 for an unknown name. */
int64_t ty_sched_usage(const ty_sched *s, const char *cluster_queue, const char *flavor,
                       const char *resource);
/* After the pass: a cluster queue's fair-sharing weighted share (status.fairSharing). */
int64_t ty_sched_weighted_share(const ty_sched *s, const char *cluster_queue);
void ty_sched_stats_get(const ty_sched *s, ty_sched_stats *out);

/* Reads every node and workload of the snapshot once and returns a checksum: the floor a pass
 * is measured against in bench/sched. The checksum depends on the snapshot's contents only,
 * not on the order of the adds, and is the same before and after ty_sched_run(). */
uint64_t ty_sched_plain_pass(const ty_sched *s);

#endif
