/* The object store: Kubernetes objects (jansson values) by resource, namespace and name, with
 * metadata managed as the API server does it, and watches.
 *
 * This is the in-memory store that `trainyard run` uses; the server adds persistence behind the
 * same interface. What it manages on every object: metadata.uid, metadata.resourceVersion (one
 * counter for the whole store, as a string), metadata.generation (bumped when anything but
 * status and metadata changes), metadata.creationTimestamp, metadata.namespace ("default" when
 * unset, for namespaced resources), metadata.deletionTimestamp.
 *
 * Objects are immutable once stored: a write replaces the object, so a reference obtained from
 * ty_store_get()/ty_store_list() stays valid and unchanged until the caller json_decref()s it.
 * Callers must never modify such a value; copy it (json_deep_copy) to make a change.
 *
 * Deletion: an object with finalizers, or a pod bound to a node and not yet terminated, is
 * marked (deletionTimestamp, and for pods deletionGracePeriodSeconds) and only removed when its
 * finalizers are empty or, for a pod, when the node agent deletes it again with grace 0, as a
 * kubelet does. Removing an object deletes its dependents (ownerReferences to its uid) in the
 * background, as the garbage collector does.
 *
 * Watch callbacks run synchronously inside the write that caused them. They must not write to
 * the store (enqueue work instead); `obj` is borrowed for the duration of the call. */
#ifndef TY_STORE_STORE_H
#define TY_STORE_STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/error.h"

typedef struct ty_store ty_store;

typedef enum { TY_EVENT_ADDED, TY_EVENT_MODIFIED, TY_EVENT_DELETED } ty_event_type;

/* Error codes set in ty_error.code by failed writes, as HTTP statuses. */
enum { TY_STORE_NOT_FOUND = 404, TY_STORE_CONFLICT = 409, TY_STORE_INVALID = 422 };

typedef void (*ty_store_watch_fn)(void *ctx, ty_event_type type, const char *resource,
                                  const json_t *obj);

ty_store *ty_store_new(void);
void ty_store_free(ty_store *s);

/* Stores a new object (the store takes a copy; `obj` is not modified). Fails with CONFLICT
 * when it exists. *out, when given, receives a new reference to the stored object. */
int ty_store_create(ty_store *s, const char *resource, const json_t *obj, json_t **out,
                    ty_error *err);
/* A new reference to the object, or NULL. `ns` is ignored for cluster-scoped resources (""). */
json_t *ty_store_get(ty_store *s, const char *resource, const char *ns, const char *name);
/* Replaces spec/metadata (status is kept as stored). A metadata.resourceVersion that is set
 * and differs from the stored one fails with CONFLICT. */
int ty_store_update(ty_store *s, const char *resource, const json_t *obj, json_t **out,
                    ty_error *err);
/* Replaces only .status, same resourceVersion rule. */
int ty_store_update_status(ty_store *s, const char *resource, const json_t *obj, json_t **out,
                           ty_error *err);
/* Deletes as described above. grace_seconds < 0: the pod's own
 * terminationGracePeriodSeconds. Fails with NOT_FOUND when absent. */
int ty_store_delete(ty_store *s, const char *resource, const char *ns, const char *name,
                    int64_t grace_seconds, ty_error *err);
/* A new JSON array with references to every object of `resource` in `ns` (NULL: all
 * namespaces), sorted by namespace then name. */
json_t *ty_store_list(ty_store *s, const char *resource, const char *ns);
/* Calls fn for every change of `resource` (NULL: every resource). Returns a watch id. */
int ty_store_watch(ty_store *s, const char *resource, ty_store_watch_fn fn, void *ctx);
void ty_store_unwatch(ty_store *s, int id);
/* The last resourceVersion handed out. */
uint64_t ty_store_revision(const ty_store *s);

/* Helpers for reading objects. */
const char *ty_obj_name(const json_t *obj);
const char *ty_obj_namespace(const json_t *obj);
const char *ty_obj_uid(const json_t *obj);
const char *ty_obj_label(const json_t *obj, const char *key);
bool ty_obj_deleting(const json_t *obj);
/* Whether status.conditions has `type` with status "True". */
bool ty_obj_condition_true(const json_t *obj, const char *type);
/* Whether `obj` has an ownerReference to `owner_uid`. */
bool ty_obj_owned_by(const json_t *obj, const char *owner_uid);

#endif
