/* The object store: Kubernetes objects (jansson values) by resource, namespace and name, with
 * metadata managed as the API server does it, and watches.
 *
 * ty_store_new() is the in-memory store that `trainyard run` uses; ty_store_open() is the same
 * store persisted in SQLite for the server. What it manages on every object: metadata.uid,
 * metadata.resourceVersion (one counter for the whole store, as a string), metadata.generation
 * (bumped when anything but status and metadata changes), metadata.creationTimestamp,
 * metadata.namespace ("default" when unset, for namespaced resources), metadata.deletionTimestamp.
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
 * A dependent is garbage-collected when ALL its owners are gone; while some owner remains it
 * only loses its ownerReference to the one that went (as Kubernetes' garbage collector does).
 * ty_store_delete_ex() adds Kubernetes' delete options: preconditions, dry run, and the
 * propagation policies Background (the default), Foreground (the owner is marked with the
 * "foregroundDeletion" finalizer, its dependents are deleted, and it goes once no dependent
 * with blockOwnerDeletion is left) and Orphan (dependents lose their reference to it first).
 *
 * Cluster-scoped resources (no namespace) are those the registry of kinds (api/kinds.h)
 * declares so: nodes, namespaces, persistentvolumes, priorityclasses, resourceflavors, ...;
 * a resource it does not know is namespaced. On create the store applies the kind's
 * create_defaults (api/core.c: services, pods, namespaces Active).
 * Namespaces: resource "namespaces" (cluster-scoped, status.phase Active or Terminating).
 * Both constructors make sure "default" exists. Creating a namespaced object in a namespace
 * that does not exist fails with NOT_FOUND, in a terminating one with FORBIDDEN. Deleting a
 * namespace marks it Terminating, deletes everything in it, and removes it once it is empty.
 *
 * Persistence (ty_store_open): one SQLite database in WAL mode with synchronous=FULL. By
 * default every change of one object (and with a deletion the revision counter) is one
 * transaction, committed before the call that makes it returns and before memory changes: a
 * failed SQLite write fails the call with INTERNAL and leaves the store as it was. With deferred commits
 * (ty_store_defer_commits, what `trainyard server` uses) writes change memory at once and
 * ty_store_commit() writes all of them in one transaction (group commit); the caller commits
 * before anything depending on them leaves the process and at the end of each loop iteration,
 * and treats a failed commit as fatal (memory is then ahead of the database). A crash loses
 * exactly the uncommitted writes, which nothing outside the process has seen. A cascade
 * (garbage collection, namespace deletion) is a series of changes; a crash in the middle
 * leaves a consistent prefix, which opening finishes. Checkpoints of the WAL run on a thread
 * of the store's own (store/checkpoint.c), not inside the commits; ty_store_free()
 * stops it.
 * Schema: objects(resource, namespace, name, rv, json) with namespace "" for cluster-scoped
 * objects, and meta(key, value) holding "revision", written with deletions (which leave no
 * row behind); the rows carry the other revisions. Opening loads every object as it was
 * stored (same uid and resourceVersion) and continues the counter after the highest of the
 * rows' revisions and the meta one.
 *
 * Representation. Each object is kept as its compact JSON text (the bytes SQLite stores and
 * the API server serves: ty_store_get_item, ty_store_list_items) with a small index: key,
 * resourceVersion, uid, owner references, deletion and foreground-finalizer flags, and its
 * label set (interned: objects with equal labels share one), and an owner index (uid ->
 * dependents). The store's own rules (cascades, namespaces, orphans) run on the index without
 * parsing, and garbage collection finds dependents without scanning every object.
 * ty_store_get/list parse on demand; the trees of recently used objects are cached (about 256 KB
 * of their text, a tree weighing ten times its text or more), so the controllers' working set
 * (pods, nodes, the jobs being reconciled) stays parsed. A returned reference stays valid and
 * unchanged however the cache moves. Opening reads each row's text and parses only its metadata.
 * The server bench's database (10,950 PyTorchJobs, 21,900 Events, 41 MiB of JSON) reopens in
 * 0.26-0.30 s into 1.2x its JSON in heap; see docs/benchmarks.md.
 *
 * History: the last TY_STORE_HISTORY_DEFAULT events (configurable; fewer when their texts
 * pass TY_STORE_HISTORY_MAX_BYTES) are kept with their resourceVersion and the object's text
 * (shared with the stored object while that is the current version), for
 * watches from a resourceVersion (ty_store_watch_opts.from_rv), and with each MODIFIED or DELETED
 * event a reference to the text of the version before it (shared, not counted in the bytes), for
 * filtered watches. After ty_store_open() the history starts empty at the loaded revision.
 *
 * Watch callbacks run synchronously inside the write that caused them (a committed watch's
 * inside the ty_store_commit() that made it durable). They must not write to the store
 * (enqueue work instead; a write from one fails an assertion); `obj` is borrowed for the
 * duration of the call. */
#ifndef TY_STORE_STORE_H
#define TY_STORE_STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/error.h"

typedef struct ty_store ty_store;

typedef enum { TY_EVENT_ADDED, TY_EVENT_MODIFIED, TY_EVENT_DELETED } ty_event_type;

/* Error codes set in ty_error.code by failed writes, as HTTP statuses. */
enum {
    TY_STORE_FORBIDDEN = 403,
    TY_STORE_NOT_FOUND = 404,
    TY_STORE_CONFLICT = 409,
    TY_STORE_GONE = 410, /* a watch's from_rv is older than the history */
    TY_STORE_TOO_LARGE = 413, /* the object's text is over TY_STORE_MAX_OBJECT_BYTES */
    TY_STORE_INVALID = 422,
    TY_STORE_INTERNAL = 500, /* SQLite failed */
};

/* The largest object stored, as its compact JSON text: etcd's request limit (1.5 MiB), which is
 * what bounds a Kubernetes object. A write of a larger one fails with TOO_LARGE. */
#define TY_STORE_MAX_OBJECT_BYTES (3u * 1024 * 1024 / 2)
/* Events a watch from a resourceVersion can replay, unless ty_store_set_history() says
 * otherwise; and at most this many bytes of object text in them (the oldest go first). */
#define TY_STORE_HISTORY_DEFAULT 10000
#define TY_STORE_HISTORY_MAX_BYTES (4u * 1024 * 1024)

typedef struct ty_store_write_opts {
    bool dry_run; /* validate and compute the result (returned in *out), write nothing */
} ty_store_write_opts;

typedef struct ty_store_delete_opts {
    int64_t grace_seconds;       /* <0: the default (a pod's terminationGracePeriodSeconds) */
    const char *propagation;     /* "Background" (NULL or ""), "Foreground", "Orphan" */
    const char *precondition_uid; /* NULL, or the uid the object must have (else CONFLICT) */
    const char *precondition_rv;  /* NULL, or the resourceVersion it must have (else CONFLICT) */
    bool dry_run;
} ty_store_delete_opts;

typedef void (*ty_store_watch_fn)(void *ctx, ty_event_type type, const char *resource,
                                  const json_t *obj);

/* The in-memory store (no SQLite), with the "default" namespace. */
ty_store *ty_store_new(void);
/* Opens (creating it when absent) the SQLite database at db_path and loads every object.
 * Fails with INTERNAL when SQLite does, or when a stored object does not parse. */
int ty_store_open(const char *db_path, ty_store **out, ty_error *err);
/* Closes the database, if any. Accepts NULL. */
void ty_store_free(ty_store *s);
/* Creates namespace `name` (Active) unless it exists; for callers that, like `trainyard run`,
 * accept whatever namespace their manifests name. Fails as a create does (INTERNAL). */
int ty_store_ensure_namespace(ty_store *s, const char *name, ty_error *err);
/* Keeps the last `events` events for watch_from (0: none); drops the oldest beyond. */
void ty_store_set_history(ty_store *s, size_t events);
/* The range Services' cluster IPs are allocated from ("A.B.C.D/N", N 12..30; default
 * 10.96.0.0/12; store/svcip.c). Fails, changing nothing, when it is not one. */
int ty_store_set_service_cidr(ty_store *s, const char *cidr, ty_error *err);
/* The first address of that range (10.96.0.1 by default): the `kubernetes` Service's, as
 * kube-apiserver reserves it. */
void ty_store_service_first_ip(ty_store *s, char out[16]);

/* Stores a new object (the store takes a copy; `obj` is not modified). Fails with CONFLICT
 * when it exists. *out, when given, receives a new reference to the stored object. */
int ty_store_create(ty_store *s, const char *resource, const json_t *obj, json_t **out,
                    ty_error *err);
/* The same with options; opts NULL: none. With dry_run, *out gets the object as it would be
 * stored (uid and timestamps, no resourceVersion) and nothing changes. */
int ty_store_create_ex(ty_store *s, const char *resource, const json_t *obj,
                       const ty_store_write_opts *opts, json_t **out, ty_error *err);
/* The same, without the copy: takes the caller's reference to `obj`, whose tree becomes the
 * stored one (its metadata filled in), whatever the call returns. Its objects and arrays must
 * not be referenced from anywhere else (a tree just parsed or packed); strings and numbers may
 * be, the store never changes a value in place. When `obj` itself has other references, the
 * store copies it as ty_store_create_ex does. */
int ty_store_create_owned(ty_store *s, const char *resource, json_t *obj,
                          const ty_store_write_opts *opts, json_t **out, ty_error *err);
/* A new reference to the object, or NULL. `ns` is ignored for cluster-scoped resources (""). */
json_t *ty_store_get(ty_store *s, const char *resource, const char *ns, const char *name);
/* Replaces spec/metadata (status is kept as stored). A metadata.resourceVersion that is set
 * and differs from the stored one fails with CONFLICT. */
int ty_store_update(ty_store *s, const char *resource, const json_t *obj, json_t **out,
                    ty_error *err);
int ty_store_update_ex(ty_store *s, const char *resource, const json_t *obj,
                       const ty_store_write_opts *opts, json_t **out, ty_error *err);
/* Replaces only .status, same resourceVersion rule. */
int ty_store_update_status(ty_store *s, const char *resource, const json_t *obj, json_t **out,
                           ty_error *err);
int ty_store_update_status_ex(ty_store *s, const char *resource, const json_t *obj,
                              const ty_store_write_opts *opts, json_t **out, ty_error *err);
/* Deletes as described above. grace_seconds < 0: the pod's own
 * terminationGracePeriodSeconds. Fails with NOT_FOUND when absent. */
int ty_store_delete(ty_store *s, const char *resource, const char *ns, const char *name,
                    int64_t grace_seconds, ty_error *err);
/* Deletes with options (NULL: the defaults). *out, when given, receives the object as marked
 * (deletionTimestamp, finalizers), or as removed (the DELETED event's object, carrying the
 * deletion's resourceVersion); with dry_run, as it would be, and nothing changes. Fails with
 * NOT_FOUND, CONFLICT (precondition), INVALID (propagation), FORBIDDEN (namespace "default"). */
int ty_store_delete_ex(ty_store *s, const char *resource, const char *ns, const char *name,
                       const ty_store_delete_opts *opts, json_t **out, ty_error *err);
/* A new JSON array with references to every object of `resource` in `ns` (NULL: all
 * namespaces), sorted by namespace then name. */
json_t *ty_store_list(ty_store *s, const char *resource, const char *ns);
/* The same for the objects of `resource` with an ownerReference to `owner_uid` (a job's pods),
 * from the owner index: nothing else is looked at or parsed. Sorted by namespace and name. */
json_t *ty_store_list_owned(ty_store *s, const char *resource, const char *owner_uid);
/* The same, with the object's version before the event (a new tree the callee may keep a
 * reference to; parsed only for watchers of this kind): NULL for ADDED, the previous version
 * for MODIFIED, the last stored version for DELETED. A filtered watch needs it to tell an
 * object that stops matching (DELETED for its client) or starts matching (ADDED), also for
 * events replayed from the history, as Kubernetes' watch cache keeps prevObject. */
typedef void (*ty_store_watch_prev_fn)(void *ctx, ty_event_type type, const char *resource,
                                       const json_t *obj, const json_t *prev);

/* What a watch sees and how. */
typedef struct ty_store_watch_opts {
    const char *resource; /* NULL: every resource */
    /* 0: from now. Else every event of `resource` after this resourceVersion is replayed
     * first (synchronously, from the history); GONE ("too old resource version: RV
     * (OLDEST)") when some have left it. */
    uint64_t from_rv;
    /* Every event reaches the watch only once the write that made it is committed (replayed
     * events and later ones alike, in order): what the API server streams to clients. */
    bool committed;
    ty_store_watch_fn fn;           /* one of the two */
    ty_store_watch_prev_fn prev_fn; /* with the object's previous version */
    void *ctx;
} ty_store_watch_opts;

/* Starts a watch; *id_out (may be NULL) gets its id for ty_store_unwatch(). Fails only with
 * GONE (from_rv older than the history). */
int ty_store_watch(ty_store *s, const ty_store_watch_opts *o, int *id_out, ty_error *err);
void ty_store_unwatch(ty_store *s, int id);
/* The last resourceVersion handed out. */
uint64_t ty_store_revision(const ty_store *s);

/* Deferred commits (group commit), for a caller that runs a loop: while on, writes change
 * memory (and reach ordinary watchers) at once but reach SQLite only at the next
 * ty_store_commit(), all in one transaction. The caller must commit before anything that
 * depends on those writes leaves the process (an API answer) and at the end of every loop
 * iteration. Off (the default): every change is committed before the call returns. */
void ty_store_defer_commits(ty_store *s, bool on);
/* Writes every change since the last commit in one transaction (WAL, synchronous=FULL), then
 * delivers the events held for committed watches (ty_store_watch_opts.committed). No-op when
 * nothing is pending. Fails with INTERNAL when SQLite does: memory is then ahead of the database
 * and the changes stay pending; the caller must not let anything depending on them out (the server
 * exits). */
int ty_store_commit(ty_store *s, ty_error *err);
/* The last resourceVersion that is durable (== ty_store_revision() unless deferring). */
uint64_t ty_store_committed_revision(const ty_store *s);
/* Whether writes wait for ty_store_commit() (deferred commits only). */
bool ty_store_uncommitted(const ty_store *s);
/* Checkpoints of the WAL done so far (each one fsyncs the database file). */
uint64_t ty_store_checkpoints(const ty_store *s);
/* A stored object as the text the store keeps (the bytes in SQLite), for answers that need no
 * parse. Everything is borrowed and valid until the next write to the store. */
typedef struct ty_store_item {
    const char *key;    /* "namespace/name"; the namespace is "" when cluster-scoped */
    const char *text;   /* compact JSON, NUL-terminated */
    size_t len;
    uint64_t rv;        /* its resourceVersion */
    bool typed;         /* it has apiVersion and kind */
    const json_t *labels; /* {"metadata": {"labels": {...}}}: one value per distinct label set */
} ty_store_item;
/* Fills *out with the object; false when absent. */
bool ty_store_get_item(ty_store *s, const char *resource, const char *ns, const char *name,
                       ty_store_item *out);
/* *out: a new array (free()) of the objects ty_store_list() would return, in its order;
 * returns their count. */
size_t ty_store_list_items(ty_store *s, const char *resource, const char *ns,
                           ty_store_item **out);
/* A pass over every object of `resource` in slices, with no list, sort or copy: fills out[]
 * with up to `max` objects from position *pos of the store's own order (unspecified, not
 * sorted) and advances *pos; returns how many, 0 once the pass is over (the next starts at
 * *pos = 0). O(what it returns). *pos stays meaningful across writes: an object stored for the
 * whole pass is returned once, unless the store's table is rebuilt meanwhile (it grows, or
 * clears deleted slots, after thousands of creates), which may make the pass miss or repeat
 * some; objects created or deleted during the pass may or may not be returned. The items are
 * borrowed as ty_store_list_items' are (until the next write). */
size_t ty_store_scan_items(ty_store *s, const char *resource, size_t *pos, ty_store_item *out,
                           size_t max);

/* Reading an item's text without parsing it: base/jsontext.h. */

/* Fault injection, for the tests of what writes to the store (controllers' retries): while set,
 * every create, update, status update and delete asks fn(ctx, op, resource) first, op being
 * "create", "update", "update status" or "delete"; a non-zero answer fails the write with that
 * code (e.g. TY_STORE_INTERNAL) and "<op> <resource>: injected fault", changing nothing. fn
 * NULL: none (the default; nothing but tests sets one). */
typedef int (*ty_store_fault_fn)(void *ctx, const char *op, const char *resource);
void ty_store_set_fault(ty_store *s, ty_store_fault_fn fn, void *ctx);

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
