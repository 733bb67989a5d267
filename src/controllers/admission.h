/* The admission controller: Kueue's queue manager and scheduler over the store.
 *
 * On a change to Workloads, ClusterQueues, LocalQueues, ResourceFlavors, nodes, pods or
 * namespaces that can alter its outcome it runs one pass (changes coalesce into one; a pod on
 * no node, a node's heartbeat, a namespace's unlabelled metadata and the queue status it wrote
 * itself run none): it builds the scheduling core's snapshot from the stored objects
 * (controllers/kueue_snapshot.c; Workloads parsed once per resourceVersion), runs it
 * (sched/sched.h) and writes the outcome back as Kueue does:
 * - an admitted Workload gets status.admission (the ClusterQueue, per pod set the flavor of each
 *   resource, the usage, the count, and a topologyAssignment with the node of every pod) and
 *   the conditions QuotaReserved=True and Admitted=True (there are no admission checks);
 * - a waiting one gets QuotaReserved=False, reason Pending, with the concrete reason as the
 *   message (which LocalQueue or ClusterQueue is missing, the resource, flavor and quantities
 *   that do not fit, or the nodes that cannot take the gang), and an event when it changes;
 * - preemption victims get Evicted=True (reason Preempted) and Preempted=True (reason
 *   InClusterQueue, InCohortReclamation, InCohortFairSharing or InCohortReclaimWhileBorrowing);
 *   the job controller side (controllers/workloads.h) then stops their jobs and requeues them;
 * - admitted workloads of a ClusterQueue with stopPolicy HoldAndDrain are evicted (reason
 *   ClusterQueueStopped);
 * - ClusterQueue and LocalQueue status: pending, reserving and admitted workload counts, usage
 *   per flavor and resource (with what is borrowed), the Active condition, and the fair-sharing
 *   weighted share when fair sharing is on.
 * A pass is also scheduled for the earliest requeue time of a backed-off workload.
 *
 * Ownership: borrows the loop and the store. */
#ifndef TY_CONTROLLERS_ADMISSION_H
#define TY_CONTROLLERS_ADMISSION_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "sched/sched.h"
#include "store/store.h"

typedef struct ty_admission ty_admission;

typedef struct ty_admission_config {
    bool fair_sharing; /* Kueue's fairSharing.enable */
} ty_admission_config;

ty_admission *ty_admission_new(uv_loop_t *loop, ty_store *store, const ty_admission_config *cfg);
/* Runs a pass again (periodic resync: a pass over a converged state writes nothing). */
void ty_admission_resync(ty_admission *a);
void ty_admission_free(ty_admission *a);
/* The last pass in Prometheus' text format (a new string, caller frees; NULL before the first
 * pass): Kueue's kueue_pending_workloads, kueue_admitted_active_workloads,
 * kueue_cluster_queue_resource_reservation and kueue_cluster_queue_nominal_quota per cluster
 * queue, and trainyard's pass counters (passes, admitted, preempted, changes that ran no pass),
 * pass duration and GPU fragmentation. */
char *ty_admission_metrics(const ty_admission *a);

/* The scheduling core's snapshot of queues given as objects alone: ResourceFlavors and
 * ClusterQueues (JSON arrays of admitted objects), no nodes, workloads or pods, built by the
 * same code as a pass of this controller builds it from the store. For the simulator (sim/),
 * which adds its nodes and jobs, runs it and frees it. `quota_used` (NULL: none) is quota
 * that workloads not given to the snapshot use, {cluster queue: {flavor: {resource: milli}}}
 * (ty_sched_quota.used). ClusterQueues that cannot admit (a missing flavor) are left out and
 * named in `inactive` as a pass reports them. */
ty_sched *ty_admission_queue_snapshot(const json_t *flavors, const json_t *cluster_queues,
                                      const json_t *quota_used, bool fair_sharing,
                                      int64_t now_ms, json_t *inactive);

#endif
