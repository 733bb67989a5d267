/* PersistentVolumeClaims on one machine: Kubernetes' PV controller and a local-path
 * provisioner in one.
 *
 * A pending claim binds to the smallest Available volume that fits it (class, access modes,
 * volume mode, capacity, matchLabels of its selector, or the volumeName it names); failing
 * that, a claim of the class "standard" (the default) or "local-path" gets a new volume
 * `pvc-<claim uid>`: a directory `<volumes dir>/pvc-<uid>` served as hostPath, reclaim policy
 * Delete. Binding writes the volume's claimRef and phase Bound, then the claim's volumeName,
 * bind annotations and status (Bound, capacity, access modes). A volume whose claim is gone is
 * Released; with policy Delete, once no unfinished pod mounts the claim any more, the volume is
 * deleted and, if trainyard provisioned it, its directory too. A volume without a claim is
 * Available.
 *
 * Pods: the binder binds a pod only when each claim it mounts exists and is bound
 * (ty_volumes_check_pod), and the node agent runs it with each claim replaced by its volume's
 * directory as a hostPath (ty_volumes_resolve_pod), which the runtime mounts like any other. */
#ifndef TY_CONTROLLERS_VOLUMES_H
#define TY_CONTROLLERS_VOLUMES_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "base/error.h"
#include "store/store.h"

typedef struct ty_volctl ty_volctl;

/* `dir` holds the provisioned volumes' directories (created when needed). */
ty_volctl *ty_volctl_new(uv_loop_t *loop, ty_store *store, const char *dir);
/* Queues a pass over every claim and volume (the periodic resync). */
void ty_volctl_resync(ty_volctl *c);
void ty_volctl_free(ty_volctl *c);

/* Whether every claim `pod` mounts exists and is bound; if not, false with the scheduler's
 * reason in `why`. */
bool ty_volumes_check_pod(ty_store *store, const json_t *pod, char *why, size_t cap);

/* A copy of `pod` whose persistentVolumeClaim volumes are hostPath volumes of their bound
 * volume's directory (hostPath or local path); NULL with `err` when a claim is not bound. */
json_t *ty_volumes_resolve_pod(ty_store *store, const json_t *pod, ty_error *err);

#endif
