/* The job side of Kueue for Kubeflow jobs (Kueue's jobframework): a Workload per queued job,
 * and the job started, stopped and requeued as its Workload is admitted or evicted.
 *
 * A job is queued when it carries the label `kueue.x-k8s.io/queue-name`. At creation
 * ty_workloads_default_job() (the part Kueue does in its mutating webhook) suspends such a job
 * and gives a job without the label the LocalQueue named "default" of its namespace when one
 * exists (Kueue's default LocalQueue; other jobs run unqueued, as before).
 *
 * The controller then keeps, per queued job:
 * - a Workload named "<kind>-<job>-<hash>" owned by the job (so it goes with it), with one pod
 *   set per replica type (name lowercased, count = replicas, the replica's pod template), the
 *   queue name, and the priority: the WorkloadPriorityClass named by the label
 *   `kueue.x-k8s.io/priority-class`, else the PriorityClass of runPolicy.schedulingPolicy
 *   .priorityClass or of the first replica's priorityClassName, else the globalDefault one, else 0;
 * - once the Workload is admitted: the flavors' node labels and tolerations added to each
 *   replica template, the node of each pod in the template annotation `trainyard.dev/placement`,
 *   and the job unsuspended (the Kubeflow controller then makes the pods, the binder binds them
 *   to those nodes);
 * - when it is evicted (preempted, or its ClusterQueue drained): the job suspended again with its
 *   templates as they were (its pods are deleted; the program resumes from its checkpoint when it
 *   runs again), and once no pod is left, the quota released (QuotaReserved=False), Requeued=True
 *   and a requeue back-off of 1 s doubling per eviction up to 5 minutes (status.requeueState);
 * - when the job finishes: Finished=True (reason Succeeded or Failed), which releases the quota.
 *
 * Ownership: borrows the loop and the store. */
#ifndef TY_CONTROLLERS_WORKLOADS_H
#define TY_CONTROLLERS_WORKLOADS_H

#include <jansson.h>
#include <stdbool.h>
#include <uv.h>

#include "store/store.h"

typedef struct ty_workloadctl ty_workloadctl;

ty_workloadctl *ty_workloadctl_new(uv_loop_t *loop, ty_store *store);
/* Queues every queued job again (at start and periodically, as informers resync). */
void ty_workloadctl_resync(ty_workloadctl *c);
void ty_workloadctl_free(ty_workloadctl *c);

/* At creation of a PyTorchJob/TFJob (`resource`), before it is stored: the defaults above.
 * Returns whether `job` was changed. Other resources are left alone. */
bool ty_workloads_default_job(ty_store *store, const char *resource, json_t *job);

#endif
