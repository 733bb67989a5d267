/* The serving controller: KServe's InferenceService reconciler and Knative's revisions,
 * routes and KPA over the store, with the gateway (serving/gateway.h) as ingress and
 * activator (docs/serving.md).
 *
 * Each change of an InferenceService's predictor (anything but canaryTrafficPercent) makes a
 * revision `<name>-predictor-<00001>`; a revision's pods run the predictor's own containers or
 * its runtime's container (a ServingRuntime of the namespace or a ClusterServingRuntime, named
 * by `runtime` or chosen by the model format) with the model at /mnt/models, read-only, from
 * storageUri file:// (a hostPath) or pvc:// (the claim). Traffic goes to the latest revision
 * once it is ready, or is split with the one rolled out before by canaryTrafficPercent. Each
 * revision's replicas are the KPA's decision, sampled once a second from the gateway's
 * concurrency. Status as KServe writes it.
 *
 * Ownership: borrows the loop, the store and the gateway (which may be NULL: no routes,
 * replicas from minReplicas and the KPA without traffic). */
#ifndef TY_CONTROLLERS_SERVING_H
#define TY_CONTROLLERS_SERVING_H

#include <uv.h>

#include "serving/gateway.h"
#include "store/store.h"

typedef struct ty_servingctl ty_servingctl;

ty_servingctl *ty_servingctl_new(uv_loop_t *loop, ty_store *store, ty_gateway *gw,
                                 const char *domain);
void ty_servingctl_resync(ty_servingctl *c);
/* The gateway's wake callback (ctx: the controller): requests wait for ns/name. */
void ty_servingctl_wake(void *ctx, const char *ns, const char *name);
/* Appends each revision's replicas desired (the KPA's) and ready, as Prometheus gauges. */
void ty_servingctl_metrics(const ty_servingctl *c, ty_buf *out);
void ty_servingctl_free(ty_servingctl *c);

#endif
