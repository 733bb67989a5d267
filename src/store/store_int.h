/* The store's private header: its data structures and what its units (store.c: the public
 * calls, metadata and writes; index.c: texts, label sets and the uid and owner indexes;
 * cache.c: the cache of parsed trees; watch.c: the history and the watches; persist.c: SQLite;
 * gc.c: deletion and garbage collection; checkpoint.c: WAL checkpoints) share. Not part of
 * the public API (store/store.h). */
#ifndef TY_STORE_STORE_INT_H
#define TY_STORE_STORE_INT_H

#include <jansson.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "base/map.h"
#include "store/store.h"

typedef struct ty_svcip ty_svcip; /* Services' cluster IPs: svcip.c, below */

/* Parsed trees kept, counted in bytes of their text (a tree weighs ten times its text or more):
 * what the controllers read again and again (pods, nodes, the jobs being reconciled) stays
 * parsed; the rest is parsed when asked for. */
#define TREE_CACHE_TEXT_BYTES (256u * 1024)
/* The WAL's length that starts a checkpoint: SQLite's own default (4 MB of 4 KB pages). */
#define CHECKPOINT_PAGES 1000

/* checkpoint.c: checkpoints of the store's write-ahead log, away from the thread that writes.
 *
 * SQLite's automatic checkpoint runs inside the COMMIT that fills the WAL past its limit: that
 * commit copies every page of the WAL into the database file and fsyncs it, several ms to tens
 * of ms, and in the server that commit is the one an API answer or a watch event waits for.
 * Here the writer's connection only notes how long its WAL is (a WAL hook, after each commit)
 * and wakes a thread that runs a PASSIVE checkpoint on a second connection of its own. A
 * passive checkpoint never blocks the writer and is never blocked by it: it copies what is
 * committed, and SQLite restarts the WAL from its beginning at the first write after a
 * complete one. Durability is unchanged (a commit is durable once its WAL frames are synced).
 * A checkpoint's fsync of the database file delays the writer's own fsyncs, so the thread
 * runs one once `pages` frames wait and the writer has paused (10 ms), or at once when four
 * times that many wait; the WAL is bounded at eight times (see checkpoint.c).
 *
 * persist.c uses it for the databases it opens. */
typedef struct ty_store_ckpt ty_store_ckpt;

/* Takes over checkpointing of `db` (opened on db_path, in WAL mode): its automatic
 * checkpoints are turned off and a thread checkpoints once `pages` frames of the WAL are not
 * copied yet, at a pause of the writer. NULL when the thread or its connection cannot be
 * had; `db` then keeps SQLite's automatic checkpoints. */
ty_store_ckpt *ty_store_ckpt_start(sqlite3 *db, const char *db_path, int pages);
/* How many checkpoints were done (the thread's and the writer's own). */
uint64_t ty_store_ckpt_runs(ty_store_ckpt *c);
/* Stops the thread (waiting for a checkpoint in progress) and closes its connection; `db`
 * gets its automatic checkpoints back. Call before closing `db`. Accepts NULL. */
void ty_store_ckpt_stop(ty_store_ckpt *c);

typedef struct watcher {
    int id;
    char *resource; /* NULL: all */
    ty_store_watch_fn fn;
    ty_store_watch_prev_fn prev_fn; /* instead of fn: also gets the previous version */
    void *ctx;
    bool committed; /* sees an event only once it is durable */
} watcher;

/* Immutable compact JSON, shared by a stored object and the history events of its version. */
typedef struct text {
    size_t refs;
    size_t len;
    char data[];
} text;

/* A distinct label set, interned: objects made from one template share it. */
typedef struct labelset {
    size_t refs;
    char *canon; /* the labels as sorted compact JSON: the interning key */
    json_t *doc; /* {"metadata": {"labels": {...}}} */
} labelset;

typedef struct owner_ix {
    char *uid;  /* NULL: the reference names none */
    bool block; /* blockOwnerDeletion */
} owner_ix;

typedef struct res res;

/* One stored object: its text, what the store's own rules and the API server's views need
 * without parsing it, and its tree while that is cached. Allocated once per key and kept at
 * the same address while the key exists, so indexes can point at it. */
typedef struct entry {
    res *r;
    text *t;
    uint64_t rv;
    owner_ix *owners;
    size_t nowners;
    labelset *labels;
    json_t *tree; /* NULL unless cached */
    struct entry *lru_prev, *lru_next;
    bool deleting, fg_finalizer, typed;
    char uid[37]; /* "" when none; uids are the store's own (36 characters) */
    char key[];   /* "ns/name" */
} entry;


/* One resource's objects. The struct lives as long as the store, so entries and history
 * events can point at it. */
struct res {
    char *name;
    ty_map objects; /* "ns/name" -> entry* (owned) */
    /* The map's slots sorted by namespace then name, kept for lists until a key comes or goes
     * (sorting 10,000 objects costs milliseconds; the slots' keys and values are borrowed). */
    const ty_map_slot **sorted;
    size_t nsorted;
    bool sorted_valid;
};

typedef struct hist_event {
    uint64_t rv;
    ty_event_type type;
    res *r;
    text *t;    /* owned reference */
    text *prev; /* owned reference: the version before (MODIFIED, DELETED); NULL for ADDED */
} hist_event;

/* An event for a `committed` watcher, held until the write that made it is durable. */
typedef struct held_event {
    int watch_id;
    ty_event_type type;
    res *r;
    json_t *obj; /* owned reference */
    text *prev;  /* owned reference, or NULL */
} held_event;

struct ty_store {
    ty_map resources; /* resource -> res* */
    /* uid -> entry*: open addressing over the entries' own uid strings (10,000s of objects:
     * no copies of the keys). */
    entry **uslots;
    size_t ucap, ucount;
    /* owner uid -> dep_list*: the entries whose ownerReferences name it, so that garbage
     * collection finds dependents without a scan of every object */
    ty_map owned;
    ty_map labelsets; /* canonical labels -> labelset* */
    uint64_t revision;
    uint64_t committed; /* the last revision that is durable (== revision when not deferring) */
    watcher *watchers;
    size_t nwatchers;
    int next_watch_id;
    /* Ring of the last hist_cap events. Every revision after hist_base is in it. */
    hist_event *hist;
    size_t hist_cap, hist_start, hist_len;
    size_t hist_bytes; /* of the texts its events name */
    uint64_t hist_base;
    held_event *held;
    size_t nheld, held_cap;
    bool delivering;
    /* The cached trees, most recently used first. */
    entry *lru_head, *lru_tail;
    size_t tree_bytes;
    int depth; /* public calls in progress: cached trees are only dropped when none is */
    bool deferred;
    ty_map dirty; /* "resource\x1fns/name" written since the last commit */
    /* NULL for the in-memory store. */
    sqlite3 *db;
    sqlite3_stmt *put_stmt, *del_stmt, *rev_stmt;
    /* BEGIN IMMEDIATE and COMMIT, prepared once: sqlite3_exec would parse them at every
     * commit, and the parser's allocation is large enough to make malloc consolidate its
     * free lists right there, on the path of an answer. */
    sqlite3_stmt *begin_stmt, *commit_stmt;
    ty_store_ckpt *ckpt; /* checkpoints db's WAL on its own thread; NULL: SQLite's own */
    int in_watch; /* watch callbacks running: a write from one is a programmer error */
    ty_store_fault_fn fault; /* tests' fault injection (ty_store_set_fault) */
    void *fault_ctx;
    ty_svcip *svcip; /* Services' cluster IPs (svcip.c); NULL until the first */
    bool mirror; /* holds a cluster's objects (ty_store_mirror_put): no cascades of its own */
    const struct ty_writer_ops *writer; /* where controllers' writes go; NULL: here */
    void *writer_ctx;
};

/* The entries whose ownerReferences name one owner uid (index.c). */
typedef struct dep_list {
    entry **v;
    size_t n, cap;
} dep_list;

/* [{resource, key}] of every object matching, from the index (nothing is parsed); collected
 * before acting because acting changes the maps. */
typedef bool (*match_fn)(const entry *e, const void *arg);


/* store.c */
bool st_cluster_scoped(const char *resource);
res *st_res_of(ty_store *s, const char *resource, bool create);
char *st_object_key(const char *resource, const char *ns, const char *name);
ty_store *st_store_alloc(void);
const char *st_meta_str(const json_t *obj, const char *field);
bool st_has_finalizer(const json_t *obj, const char *name);
void st_now_string(char *out, size_t cap);
int st_commit_put(ty_store *s, res *r, const char *key, json_t *next, ty_event_type type,
                  ty_error *err);
int st_commit_remove(ty_store *s, res *r, const char *key, json_t **out, ty_error *err);
int st_maybe_finish_deletion(ty_store *s, res *r, const char *key, json_t *obj,
                             ty_error *err);

/* index.c */
entry *st_entry_new(res *r, const char *key);
text *st_text_new(const char *data, size_t len);
text *st_text_dump(const json_t *obj);
text *st_text_ref(text *t);
void st_text_unref(text *t);
entry *st_uid_get(const ty_store *s, const char *uid);
const dep_list *st_owned_by(const ty_store *s, const char *owner_uid);
void st_index_fill(ty_store *s, entry *e, const json_t *meta, bool typed);
void st_index_clear(ty_store *s, entry *e);
json_t *st_collect(ty_store *s, match_fn match, const void *arg);
json_t *st_collect_owned(ty_store *s, const char *uid);
bool st_has_dependents(const ty_store *s, const char *uid);
bool st_has_blocking_dependent(const ty_store *s, const char *uid);
bool st_match_in_namespace(const entry *e, const void *ns);
bool st_any_match(ty_store *s, match_fn match, const void *arg);
int st_index_from_text(ty_store *s, entry *e, const char *p, const char *end, bool typed,
                       ty_map *seen);

/* cache.c */
void st_tree_drop(ty_store *s, entry *e);
void st_tree_set(ty_store *s, entry *e, json_t *tree);
json_t *st_entry_tree(ty_store *s, entry *e);
json_t *st_entry_tree_ref(entry *e);
void st_trim(ty_store *s);
void st_enter(ty_store *s);
void st_leave(ty_store *s);
void st_entry_free(ty_store *s, entry *e);
json_t *st_obj_at(ty_store *s, res *r, const char *key);

/* watch.c */
void st_deliver_held(ty_store *s);
void st_notify(ty_store *s, ty_event_type type, res *r, const json_t *obj, text *t,
               text *prev);

/* persist.c */
int st_db_write(ty_store *s, const char *resource, const char *key, uint64_t rv,
                const char *json, size_t len, ty_error *err);
void st_mark_dirty(ty_store *s, res *r, const char *key);

/* gc.c */
int st_owners_check(ty_store *s, const json_t *obj, ty_error *err);
void st_after_removal(ty_store *s, res *r, const json_t *removed);
int st_delete_ex_impl(ty_store *s, const char *resource, const char *ns, const char *name,
                      const ty_store_delete_opts *opts, json_t **out, ty_error *err);
int st_resume_cascades(ty_store *s, ty_error *err);

/* svcip.c. ClusterIP allocation for Services, as kube-apiserver's service registry does it.
 *
 * A Service that needs a cluster IP (every type but ExternalName) and asks for none (clusterIP
 * absent or "") gets a free address of the service CIDR (default 10.96.0.0/12, set with
 * ty_store_set_service_cidr) at create: a random one above the range's static band (the first
 * min(max(16, size/16), 256) addresses, kept for addresses users ask for), the static band
 * when the rest is full; never the network or broadcast address. An asked-for address must be
 * an IPv4 address in the range and free among the stored Services, else the create fails
 * with INVALID and the API server's words. "None" (headless) takes no address. On update the
 * address is immutable: an update without one keeps the stored one, another one fails; a
 * Service turned from ExternalName gets one. clusterIPs mirrors clusterIP. An address is free
 * again once its Service is deleted or no longer holds it.
 *
 * The addresses in use are tracked from a watch on the store's Services, made (with a list
 * of the stored ones) at the first Service written: creates, updates, deletes and cascades
 * all pass through it.
 *
 * store.c calls ty_svcip_prepare() on each Service it creates or updates, before storing it. */

/* Sets the range of *a (made when NULL) to `cidr` ("A.B.C.D/N", N from 12 to 30). Fails,
 * changing nothing, when it is not one. */
int ty_svcip_set_cidr(ty_svcip **a, ty_store *s, const char *cidr, ty_error *err);
/* Fills in or checks spec.clusterIP and spec.clusterIPs of `svc` (about to be stored),
 * created when `cur` is NULL, else replacing `cur`. Fails with TY_STORE_INVALID (422) or, with
 * the range full, TY_STORE_INTERNAL. *a is made with the default range when NULL. */
int ty_svcip_prepare(ty_svcip **a, ty_store *s, json_t *svc, const json_t *cur, ty_error *err);
void ty_svcip_free(ty_svcip *a, ty_store *s);
/* The range's first address (the network address + 1), as text; *a made when NULL. */
void ty_svcip_first(ty_svcip **a, char out[16]);

#endif
