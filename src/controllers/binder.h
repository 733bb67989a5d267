/* The binder places pods on this node, a whole gang at a time.
 *
 * Pods that the job controller creates carry the label `scheduling.x-k8s.io/pod-group` (the
 * job's name, as the coscheduling plugin uses it) and the annotation
 * `trainyard.dev/gang-size` (how many pods the gang has). A gang is bound only when all its
 * pods exist and their summed requests fit what the node has free, so a job never runs half
 * its ranks; members already running on the node (bound, not terminated, not being deleted)
 * count as existing, so a pod recreated alone joins its running peers. A gang that waits gets, on each pod, the condition PodScheduled=False with reason
 * Unschedulable and a message saying what it waits for. Gangs are tried oldest first; a
 * younger gang that fits may run before an older one that does not (best effort, as Kueue's
 * BestEffortFIFO). The Kueue-style scheduler of a later issue replaces this for queued jobs.
 *
 * Cost: one pass lists every pod, O(pods log pods); passes are coalesced by the work queue. */
#ifndef TY_CONTROLLERS_BINDER_H
#define TY_CONTROLLERS_BINDER_H

#include <uv.h>

#include "store/store.h"

#define TY_LABEL_POD_GROUP "scheduling.x-k8s.io/pod-group"
#define TY_ANNOTATION_GANG_SIZE "trainyard.dev/gang-size"

typedef struct ty_binder ty_binder;

ty_binder *ty_binder_new(uv_loop_t *loop, ty_store *store, const char *node_name);
void ty_binder_free(ty_binder *b);

#endif
