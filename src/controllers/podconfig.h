/* What a pod reads from the API when it starts, resolved by the node agent as the kubelet
 * resolves it: configMap, secret, downwardAPI and projected volumes become files, and env
 * `valueFrom` configMapKeyRef/secretKeyRef and `envFrom` become plain values.
 *
 * The node agent hands the runtime a copy of the pod (its claims already made directories by
 * ty_volumes_resolve_pod); this rewrites that copy. Each such volume becomes
 * `{"name": ..., "trainyardFiles": [{"path", "mode", "data" (base64)}]}`, which the runtime
 * writes into the pod's directory and mounts read-only, as the kubelet mounts these volumes.
 * A referenced ConfigMap, Secret or key that does not exist (and is not optional) makes the pod
 * wait, as on a kubelet: a volume as ContainerCreating with a FailedMount event, an
 * environment variable as CreateContainerConfigError; the node agent tries again until it
 * appears. The files are written when a container starts; later changes to the ConfigMap are
 * not propagated to a running pod (the kubelet does that about once a minute). */
#ifndef TY_CONTROLLERS_PODCONFIG_H
#define TY_CONTROLLERS_PODCONFIG_H

#include <jansson.h>
#include <stdbool.h>

#include "base/error.h"
#include "store/store.h"

/* Why a pod cannot start yet. */
typedef struct ty_podconfig_wait {
    const char *reason; /* its containers' waiting reason: ContainerCreating or
                           CreateContainerConfigError */
    const char *event;  /* the kubelet's event reason: FailedMount or Failed */
    char message[512];  /* the event's and the waiting state's message */
} ty_podconfig_wait;

/* Rewrites `pod` (the node agent's copy) in place. Returns 0 when everything resolved, 1 when
 * the pod must wait (*wait says why; `pod` is then half rewritten and must be dropped), -1
 * with `err` for a source that can never work here. */
int ty_podconfig_resolve(ty_store *store, json_t *pod, ty_podconfig_wait *wait, ty_error *err);

/* Whether a CreateContainerConfigError message is one of the waits above, which clear when the
 * object appears, rather than an error in the pod's own spec. */
bool ty_podconfig_is_wait(const char *message);

#endif
