/* The binder places pods on the nodes it serves, a whole gang at a time.
 *
 * Pods that the job controller creates carry the label `scheduling.x-k8s.io/pod-group` (the
 * job's name, as the coscheduling plugin uses it) and the annotation
 * `trainyard.dev/gang-size` (how many pods the gang has). A gang is bound only when all its
 * pods exist and all of them can be placed at once (controllers/placement.h: node selectors,
 * required node affinity, taints and tolerations, requests against what each node has free,
 * best fit on GPUs), so a job never runs half its ranks; members already running (bound to a
 * served node, not terminated, not being deleted) count as existing, so a pod recreated alone
 * joins its running peers. A gang that waits gets, on each pod, the condition
 * PodScheduled=False with reason Unschedulable and a message saying what it waits for
 * ("waiting for resources: 0/8 nodes can take pod w-3 of the gang of 4: 5 nodes have too few
 * free nvidia.com/gpu (need 8), 3 nodes have taint ..."). Gangs are tried oldest first; a
 * younger gang that fits may run before an older one that does not (best effort, as Kueue's
 * BestEffortFIFO).
 *
 * Preassigned placement: the annotation `trainyard.dev/placement` on a pod (set on a job's
 * replica template, e.g. by a queueing controller that chose the nodes, so every pod of the
 * replica type carries the same value) is a comma-separated list of node names, one per
 * replica index (label `training.kubeflow.org/replica-index`): the pod with index i goes to
 * the i-th node, still only when the whole gang can bind and only if it fits there; otherwise
 * the gang waits with a message naming the node. A list without an entry for the pod's index
 * makes the gang wait, saying so.
 *
 * Cost: one pass lists every pod and node, O(pods log pods + gang pods x nodes); passes are
 * coalesced by the work queue, and writes to running pods (bound, not ended, not being
 * deleted) start none. */
#ifndef TY_CONTROLLERS_BINDER_H
#define TY_CONTROLLERS_BINDER_H

#include <uv.h>

#include "store/store.h"

#define TY_LABEL_POD_GROUP "scheduling.x-k8s.io/pod-group"
#define TY_ANNOTATION_GANG_SIZE "trainyard.dev/gang-size"
#define TY_ANNOTATION_PLACEMENT "trainyard.dev/placement"
/* spec.schedulerName of the pods trainyard binds on a cluster */
#define TY_SCHEDULER_NAME "trainyard"

typedef struct ty_binder ty_binder;

/* node_name NULL: a cluster's binder (cluster mode): it places pods on every node of the
 * store (the cluster's, as its reflector mirrors them), only pods whose spec.schedulerName is
 * TY_SCHEDULER_NAME, and binds through the writer (store/writer.h: the pods/binding
 * subresource), assuming each pod on its node until the binding comes back. */
ty_binder *ty_binder_new(uv_loop_t *loop, ty_store *store, const char *node_name);
/* Places pods on one more node (the binder serves `node_name` and every node added). */
void ty_binder_add_node(ty_binder *b, const char *node_name);
/* Passes run so far (for tests). */
uint64_t ty_binder_passes(const ty_binder *b);
/* Runs a pass again (periodic resync: a pass over a converged state writes nothing). */
void ty_binder_resync(ty_binder *b);
void ty_binder_free(ty_binder *b);

#endif
