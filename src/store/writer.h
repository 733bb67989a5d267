/* The controllers' side of the client seam (issue 13, item 1; docs/architecture.md,
 * "Decisions"): controllers read the store and write through these calls.
 *
 * Locally (no writer set) each call is the store's own write of the same name, with the same
 * results: the tests and `trainyard run`/`trainyard server` behave exactly as without the seam.
 *
 * In cluster mode a writer (ty_store_set_writer; src/cluster/ sets one that sends the write to
 * the cluster's API with kube/client.h) takes every write, and the store is a mirror of the
 * cluster that only reflectors change (ty_store_mirror_put/remove). Such a write is
 * asynchronous: the call returns 0 once the request is on its way (or fails at once when it
 * cannot be sent), *out gets NULL, and the object comes back through the watch as a
 * change of the mirror, which fires the controllers' store watches as a local write would. A
 * write the cluster refuses (409 on a stale resourceVersion, 404) is logged; the change that
 * made it stale arrives through the watch and the controller reconciles again from there
 * (the level-triggered form of a retry), and the periodic resync catches the rest.
 * Controllers must therefore treat *out == NULL after a successful write as "not known yet". */
#ifndef TY_STORE_WRITER_H
#define TY_STORE_WRITER_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/error.h"
#include "store/store.h"

typedef struct ty_writer_ops {
    int (*create)(void *ctx, const char *resource, const json_t *obj, ty_error *err);
    /* spec and metadata, with the object's resourceVersion as precondition */
    int (*update)(void *ctx, const char *resource, const json_t *obj, ty_error *err);
    /* the status subresource */
    int (*update_status)(void *ctx, const char *resource, const json_t *obj, ty_error *err);
    int (*remove)(void *ctx, const char *resource, const char *ns, const char *name,
                  int64_t grace_seconds, ty_error *err);
    /* the pod's binding subresource: spec.nodeName = node */
    int (*bind)(void *ctx, const json_t *pod, const char *node, ty_error *err);
} ty_writer_ops;

/* Sends every ty_write_* to `ops` (borrowed; NULL: back to the store itself). */
void ty_store_set_writer(ty_store *s, const ty_writer_ops *ops, void *ctx);
/* Whether writes go to a writer (cluster mode) rather than to the store. */
bool ty_store_remote(const ty_store *s);

int ty_write_create(ty_store *s, const char *resource, const json_t *obj, json_t **out,
                    ty_error *err);
/* Takes the reference to `obj` (ty_store_create_owned locally). */
int ty_write_create_owned(ty_store *s, const char *resource, json_t *obj, json_t **out,
                          ty_error *err);
int ty_write_update(ty_store *s, const char *resource, const json_t *obj, json_t **out,
                    ty_error *err);
int ty_write_update_status(ty_store *s, const char *resource, const json_t *obj, json_t **out,
                           ty_error *err);
int ty_write_delete(ty_store *s, const char *resource, const char *ns, const char *name,
                    int64_t grace_seconds, ty_error *err);
/* Binds a pod to a node: locally an update of spec.nodeName (*out: the stored pod); in
 * cluster mode a POST to pods/<name>/binding, as kube-scheduler binds. */
int ty_write_bind(ty_store *s, const json_t *pod, const char *node, json_t **out, ty_error *err);

/* The mirror: a cluster's object stored as it is (uid, resourceVersion, generation and the
 * rest of its metadata kept; no defaults, no namespace check) under its namespace and name,
 * ADDED or MODIFIED to the store's watchers. A store that has been written this way runs no
 * cascade of its own (garbage collection, namespace deletion): those are the cluster's and
 * arrive as events. Fails only for an object without metadata.name. */
int ty_store_mirror_put(ty_store *s, const char *resource, const json_t *obj, ty_error *err);
/* Removes an object the cluster deleted (DELETED to the watchers); nothing when absent. */
void ty_store_mirror_remove(ty_store *s, const char *resource, const char *ns, const char *name);

#endif
