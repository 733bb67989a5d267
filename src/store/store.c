#include "store/store.h"

#include <assert.h>
#include <ctype.h>
#include <inttypes.h>
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/kinds.h"
#include "base/buf.h"
#include "base/hash.h"
#include "base/jsontext.h"
#include "base/log.h"
#include "base/map.h"
#include "base/mem.h"
#include "base/time.h"
#include "store/checkpoint_int.h"
#include "store/svcip_int.h"

/* Parsed trees kept, counted in bytes of their text (a tree weighs ten times its text or more):
 * what the controllers read again and again (pods, nodes, the jobs being reconciled) stays
 * parsed; the rest is parsed when asked for. */
#define TREE_CACHE_TEXT_BYTES (256u * 1024)
/* The WAL's length that starts a checkpoint: SQLite's own default (4 MB of 4 KB pages). */
#define CHECKPOINT_PAGES 1000

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

static entry *entry_new(res *r, const char *key)
{
    size_t n = strlen(key) + 1;
    entry *e = ty_calloc(1, sizeof(entry) + n);
    e->r = r;
    memcpy(e->key, key, n);
    return e;
}

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
    ty_svcip *svcip; /* Services' cluster IPs (store/svcip_int.h); NULL until the first */
};

static int fail_code(ty_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail_code(ty_error *err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ty_vfail(err, fmt, ap);
    va_end(ap);
    if (err)
        err->code = code;
    return -1;
}

/* A resource's scope is its kind's (the registry, api/kinds.h); a resource no kind declares
 * is namespaced. */
static bool cluster_scoped(const char *resource)
{
    const ty_kind_info *k = ty_kind_of_resource(resource);
    return k && !k->namespaced;
}

static res *res_of(ty_store *s, const char *resource, bool create)
{
    res *r = ty_map_gets(&s->resources, resource);
    if (!r && create) {
        r = TY_NEW(res);
        r->name = ty_strdup(resource);
        ty_map_puts(&s->resources, resource, r);
    }
    return r;
}

static char *object_key(const char *resource, const char *ns, const char *name)
{
    return ty_asprintf("%s/%s", cluster_scoped(resource) ? "" : (ns ? ns : "default"), name);
}

/* ---- texts and label sets ---- */

static text *text_new(const char *data, size_t len)
{
    text *t = ty_malloc(sizeof(text) + len + 1);
    t->refs = 1;
    t->len = len;
    memcpy(t->data, data, len);
    t->data[len] = '\0';
    return t;
}

static text *text_dump(const json_t *obj)
{
    char *d = json_dumps(obj, JSON_COMPACT);
    text *t = text_new(d, strlen(d));
    free(d);
    return t;
}

static text *text_ref(text *t)
{
    t->refs++;
    return t;
}

static void text_unref(text *t)
{
    if (t && --t->refs == 0)
        free(t);
}

static labelset *labelset_get(ty_store *s, const json_t *labels)
{
    if (!json_is_object(labels))
        labels = NULL;
    char *canon = labels ? json_dumps(labels, JSON_COMPACT | JSON_SORT_KEYS) : ty_strdup("{}");
    labelset *l = ty_map_gets(&s->labelsets, canon);
    if (l) {
        free(canon);
    } else {
        l = TY_NEW(labelset);
        l->canon = canon;
        l->doc = json_pack("{s:{s:o}}", "metadata", "labels",
                           labels ? json_deep_copy(labels) : json_object());
        ty_map_puts(&s->labelsets, canon, l);
    }
    l->refs++;
    return l;
}

static void labelset_unref(ty_store *s, labelset *l)
{
    if (!l || --l->refs > 0)
        return;
    ty_map_dels(&s->labelsets, l->canon);
    json_decref(l->doc);
    free(l->canon);
    free(l);
}

/* ---- the uid index ---- */

static size_t uid_hash(const char *u)
{
    return (size_t)ty_fnv1a_str(TY_FNV1A_BASIS, u);
}

static entry *uid_get(const ty_store *s, const char *uid)
{
    if (!s->ucap || !uid)
        return NULL;
    size_t m = s->ucap - 1;
    for (size_t i = uid_hash(uid) & m;; i = (i + 1) & m) {
        entry *e = s->uslots[i];
        if (!e || strcmp(e->uid, uid) == 0)
            return e;
    }
}

static void uid_insert(entry **slots, size_t cap, entry *e)
{
    size_t m = cap - 1;
    size_t i = uid_hash(e->uid) & m;
    while (slots[i] && strcmp(slots[i]->uid, e->uid) != 0)
        i = (i + 1) & m;
    slots[i] = e;
}

static void uid_put(ty_store *s, entry *e)
{
    if ((s->ucount + 1) * 4 >= s->ucap * 3) {
        size_t cap = s->ucap ? 2 * s->ucap : 64;
        entry **slots = ty_calloc(cap, sizeof(entry *));
        for (size_t i = 0; i < s->ucap; i++)
            if (s->uslots[i])
                uid_insert(slots, cap, s->uslots[i]);
        free(s->uslots);
        s->uslots = slots;
        s->ucap = cap;
    }
    if (!uid_get(s, e->uid))
        s->ucount++;
    uid_insert(s->uslots, s->ucap, e);
}

/* Removes e (if it is what its uid maps to), shifting later entries of its probe run back. */
static void uid_del(ty_store *s, entry *e)
{
    if (!s->ucap)
        return;
    size_t m = s->ucap - 1, i = uid_hash(e->uid) & m;
    while (s->uslots[i] && s->uslots[i] != e)
        i = (i + 1) & m;
    if (!s->uslots[i])
        return;
    s->uslots[i] = NULL;
    s->ucount--;
    for (size_t j = (i + 1) & m; s->uslots[j]; j = (j + 1) & m) {
        size_t k = uid_hash(s->uslots[j]->uid) & m;
        /* the entry at j stays unless its home k lies cyclically outside (i, j] */
        bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
        if (stays)
            continue;
        s->uslots[i] = s->uslots[j];
        s->uslots[j] = NULL;
        i = j;
    }
}

/* ---- the owner index ---- */

typedef struct dep_list {
    entry **v;
    size_t n, cap;
} dep_list;

static void owned_add(ty_store *s, const char *owner_uid, entry *e)
{
    dep_list *d = ty_map_gets(&s->owned, owner_uid);
    if (!d) {
        d = TY_NEW(dep_list);
        ty_map_puts(&s->owned, owner_uid, d);
    }
    if (d->n == d->cap) {
        d->cap = d->cap ? 2 * d->cap : 4;
        d->v = ty_realloc(d->v, d->cap * sizeof(entry *));
    }
    d->v[d->n++] = e;
}

static void owned_del(ty_store *s, const char *owner_uid, const entry *e)
{
    dep_list *d = ty_map_gets(&s->owned, owner_uid);
    for (size_t i = 0; d && i < d->n; i++) {
        if (d->v[i] != e)
            continue;
        d->v[i] = d->v[--d->n];
        break;
    }
    if (d && d->n == 0) {
        ty_map_dels(&s->owned, owner_uid);
        free(d->v);
        free(d);
    }
}

static const dep_list *owned_by(const ty_store *s, const char *owner_uid)
{
    return ty_map_gets(&s->owned, owner_uid);
}

/* ---- the index of an entry, from its metadata ---- */

static void index_fill(ty_store *s, entry *e, const json_t *meta, bool typed)
{
    const char *uid = json_string_value(json_object_get(meta, "uid"));
    if (uid && *uid) {
        snprintf(e->uid, sizeof e->uid, "%s", uid);
        uid_put(s, e);
    }
    e->deleting = json_string_value(json_object_get(meta, "deletionTimestamp")) != NULL;
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(meta, "finalizers"), i, v)
    {
        if (json_string_value(v) && strcmp(json_string_value(v), "foregroundDeletion") == 0)
            e->fg_finalizer = true;
    }
    json_t *refs = json_object_get(meta, "ownerReferences");
    e->nowners = json_array_size(refs);
    e->owners = e->nowners ? ty_calloc(e->nowners, sizeof(owner_ix)) : NULL;
    json_array_foreach(refs, i, v)
    {
        const char *ouid = json_string_value(json_object_get(v, "uid"));
        e->owners[i].uid = ouid ? ty_strdup(ouid) : NULL;
        e->owners[i].block = json_is_true(json_object_get(v, "blockOwnerDeletion"));
        bool repeated = false; /* two references to one owner: indexed once */
        for (size_t j = 0; ouid && j < i; j++)
            repeated = repeated || (e->owners[j].uid && strcmp(e->owners[j].uid, ouid) == 0);
        if (ouid && !repeated)
            owned_add(s, ouid, e);
    }
    e->labels = labelset_get(s, json_object_get(meta, "labels"));
    e->typed = typed;
}

static void index_clear(ty_store *s, entry *e)
{
    if (e->uid[0]) {
        uid_del(s, e);
        e->uid[0] = '\0';
    }
    for (size_t i = 0; i < e->nowners; i++) {
        bool repeated = false;
        for (size_t j = 0; e->owners[i].uid && j < i; j++)
            repeated = repeated ||
                       (e->owners[j].uid && strcmp(e->owners[j].uid, e->owners[i].uid) == 0);
        if (e->owners[i].uid && !repeated)
            owned_del(s, e->owners[i].uid, e);
    }
    for (size_t i = 0; i < e->nowners; i++)
        free(e->owners[i].uid);
    free(e->owners);
    e->owners = NULL;
    e->nowners = 0;
    e->deleting = e->fg_finalizer = e->typed = false;
    labelset_unref(s, e->labels);
    e->labels = NULL;
}

/* ---- the tree cache ---- */

static void lru_unlink(ty_store *s, entry *e)
{
    if (e->lru_prev)
        e->lru_prev->lru_next = e->lru_next;
    else
        s->lru_head = e->lru_next;
    if (e->lru_next)
        e->lru_next->lru_prev = e->lru_prev;
    else
        s->lru_tail = e->lru_prev;
    e->lru_prev = e->lru_next = NULL;
}

static void lru_push(ty_store *s, entry *e)
{
    e->lru_prev = NULL;
    e->lru_next = s->lru_head;
    if (s->lru_head)
        s->lru_head->lru_prev = e;
    else
        s->lru_tail = e;
    s->lru_head = e;
}

static void tree_drop(ty_store *s, entry *e)
{
    if (!e->tree)
        return;
    lru_unlink(s, e);
    s->tree_bytes -= e->t->len;
    json_decref(e->tree);
    e->tree = NULL;
}

/* Caches `tree` (consumed) as the entry's. */
static void tree_set(ty_store *s, entry *e, json_t *tree)
{
    tree_drop(s, e);
    e->tree = tree;
    lru_push(s, e);
    s->tree_bytes += e->t->len;
}

static json_t *parse_text(const entry *e)
{
    json_error_t je;
    json_t *t = json_loadb(e->t->data, e->t->len, 0, &je);
    if (!json_is_object(t)) {
        /* The text was checked when it was loaded or written by jansson itself. */
        ty_log(TY_LOG_ERROR, "store: %s %s: stored text does not parse: %s", e->r->name, e->key,
               je.text);
        abort();
    }
    return t;
}

/* The entry's tree, borrowed: valid until the entry changes or, when no public call is in
 * progress any more, the cache drops it. */
static json_t *entry_tree(ty_store *s, entry *e)
{
    if (e->tree) {
        lru_unlink(s, e);
        lru_push(s, e);
        return e->tree;
    }
    tree_set(s, e, parse_text(e));
    return e->tree;
}

/* A new reference to the entry's tree, parsed without entering the cache when it is not in
 * it (a list of everything must not churn the cache). */
static json_t *entry_tree_ref(entry *e)
{
    return e->tree ? json_incref(e->tree) : parse_text(e);
}

static void trim(ty_store *s)
{
    while (s->tree_bytes > TREE_CACHE_TEXT_BYTES && s->lru_tail)
        tree_drop(s, s->lru_tail);
}

static void enter(ty_store *s) { s->depth++; }

static void leave(ty_store *s)
{
    if (--s->depth == 0)
        trim(s);
}

static void entry_free(ty_store *s, entry *e)
{
    tree_drop(s, e);
    index_clear(s, e);
    text_unref(e->t);
    free(e);
}

/* The stored object at key, borrowed (see entry_tree), or NULL. */
static json_t *obj_at(ty_store *s, res *r, const char *key)
{
    entry *e = r ? ty_map_gets(&r->objects, key) : NULL;
    return e ? entry_tree(s, e) : NULL;
}

/* ---- history ---- */

static void hist_evict_oldest(ty_store *s)
{
    hist_event *e = &s->hist[s->hist_start];
    s->hist_base = e->rv;
    s->hist_bytes -= e->t->len;
    text_unref(e->t);
    if (e->prev)
        text_unref(e->prev);
    s->hist_start = (s->hist_start + 1) % s->hist_cap;
    s->hist_len--;
}

/* `prev` is not counted in hist_bytes: it is the text of the event before it of the same
 * object (or of the version stored before the history began), shared, not a copy. */
static void hist_append(ty_store *s, ty_event_type type, res *r, text *t, text *prev,
                        uint64_t rv)
{
    if (s->hist_cap == 0) {
        s->hist_base = rv;
        return;
    }
    if (s->hist_len == s->hist_cap)
        hist_evict_oldest(s);
    while (s->hist_len && s->hist_bytes + t->len > TY_STORE_HISTORY_MAX_BYTES)
        hist_evict_oldest(s);
    s->hist_bytes += t->len;
    if (!s->hist)
        s->hist = ty_calloc(s->hist_cap, sizeof(hist_event));
    s->hist[(s->hist_start + s->hist_len) % s->hist_cap] = (hist_event){rv, type, r, text_ref(t),
                                                                          prev ? text_ref(prev) : NULL};
    s->hist_len++;
}

void ty_store_set_history(ty_store *s, size_t events)
{
    while (s->hist_len > events)
        hist_evict_oldest(s);
    hist_event *ring = events ? ty_calloc(events, sizeof(hist_event)) : NULL;
    for (size_t i = 0; i < s->hist_len; i++)
        ring[i] = s->hist[(s->hist_start + i) % s->hist_cap];
    free(s->hist);
    s->hist = ring;
    s->hist_cap = events;
    s->hist_start = 0;
}

static ty_store *store_alloc(void)
{
    ty_store *s = TY_NEW(ty_store);
    s->hist_cap = TY_STORE_HISTORY_DEFAULT;
    return s;
}

void ty_store_free(ty_store *s)
{
    if (!s)
        return;
    if (s->dirty.count) {
        TY_CLEANUP_ERROR ty_error err = TY_ERROR_INIT;
        if (ty_store_commit(s, &err) < 0)
            ty_log(TY_LOG_ERROR, "store: the last writes are lost: %s", err.msg);
    }
    ty_svcip_free(s->svcip, s);
    const ty_map_slot *slot;
    for (size_t i = 0; ty_map_next(&s->resources, &i, &slot);) {
        res *r = slot->value;
        const ty_map_slot *o;
        for (size_t j = 0; ty_map_next(&r->objects, &j, &o);)
            entry_free(s, o->value);
        ty_map_free(&r->objects);
        free(r->sorted);
        free(r->name);
        free(r);
    }
    ty_map_free(&s->resources);
    free(s->uslots);
    for (size_t i = 0; ty_map_next(&s->owned, &i, &slot);) {
        dep_list *d = slot->value;
        free(d->v);
        free(d);
    }
    ty_map_free(&s->owned);
    ty_map_free(&s->labelsets);
    ty_map_free(&s->dirty);
    for (size_t i = 0; i < s->hist_len; i++) {
        hist_event *e = &s->hist[(s->hist_start + i) % s->hist_cap];
        text_unref(e->t);
        if (e->prev)
            text_unref(e->prev);
    }
    free(s->hist);
    for (size_t i = 0; i < s->nheld; i++) {
        json_decref(s->held[i].obj);
        if (s->held[i].prev)
            text_unref(s->held[i].prev);
    }
    free(s->held);
    for (size_t i = 0; i < s->nwatchers; i++)
        free(s->watchers[i].resource);
    free(s->watchers);
    sqlite3_finalize(s->put_stmt);
    sqlite3_finalize(s->del_stmt);
    sqlite3_finalize(s->rev_stmt);
    sqlite3_finalize(s->begin_stmt);
    sqlite3_finalize(s->commit_stmt);
    ty_store_ckpt_stop(s->ckpt);
    sqlite3_close(s->db);
    free(s);
}

uint64_t ty_store_revision(const ty_store *s) { return s->revision; }
uint64_t ty_store_committed_revision(const ty_store *s) { return s->committed; }
bool ty_store_uncommitted(const ty_store *s) { return s->committed != s->revision; }
uint64_t ty_store_checkpoints(const ty_store *s)
{
    return s->ckpt ? ty_store_ckpt_runs(s->ckpt) : 0;
}

static watcher *watcher_of(ty_store *s, int id)
{
    for (size_t i = 0; i < s->nwatchers; i++)
        if (s->watchers[i].id == id)
            return &s->watchers[i];
    return NULL;
}

static void hold(ty_store *s, int id, ty_event_type type, res *r, const json_t *obj,
                 text *prev)
{
    if (s->nheld == s->held_cap) {
        s->held_cap = s->held_cap ? 2 * s->held_cap : 16;
        s->held = ty_realloc(s->held, s->held_cap * sizeof(held_event));
    }
    s->held[s->nheld++] = (held_event){id, type, r, json_incref((json_t *)obj),
                                           prev ? text_ref(prev) : NULL};
}

static void call_watcher(ty_store *s, const watcher *w, ty_event_type type, res *r,
                         const json_t *obj, text *prev)
{
    s->in_watch++;
    if (!w->prev_fn) {
        w->fn(w->ctx, type, r->name, obj);
    } else {
        json_t *p = prev ? json_loadb(prev->data, prev->len, 0, NULL) : NULL;
        w->prev_fn(w->ctx, type, r->name, obj, p);
        json_decref(p);
    }
    s->in_watch--;
}

/* Hands the held events to their watchers (those still watching), in order. */
static void deliver_held(ty_store *s)
{
    if (s->delivering)
        return;
    s->delivering = true;
    for (size_t i = 0; i < s->nheld; i++) {
        held_event *h = &s->held[i];
        watcher *w = watcher_of(s, h->watch_id);
        if (w)
            call_watcher(s, w, h->type, h->r, h->obj, h->prev);
        json_decref(h->obj);
        if (h->prev)
            text_unref(h->prev);
    }
    s->nheld = 0;
    s->delivering = false;
}

/* Every event goes through here: into the history, then to the watchers. */
static void notify(ty_store *s, ty_event_type type, res *r, const json_t *obj, text *t,
                   text *prev)
{
    hist_append(s, type, r, t, prev, s->revision);
    for (size_t i = 0; i < s->nwatchers; i++) {
        watcher *w = &s->watchers[i];
        if (w->resource && strcmp(w->resource, r->name) != 0)
            continue;
        if (w->committed && s->committed < s->revision)
            hold(s, w->id, type, r, obj, prev);
        else
            call_watcher(s, w, type, r, obj, prev);
    }
}

static int add_watch(ty_store *s, const char *resource, ty_store_watch_fn fn,
                     ty_store_watch_prev_fn prev_fn, void *ctx, bool committed)
{
    s->watchers = ty_realloc(s->watchers, (s->nwatchers + 1) * sizeof(watcher));
    s->watchers[s->nwatchers++] = (watcher){++s->next_watch_id,
                                            resource ? ty_strdup(resource) : NULL, fn, prev_fn,
                                            ctx, committed};
    return s->next_watch_id;
}

int ty_store_watch(ty_store *s, const char *resource, ty_store_watch_fn fn, void *ctx)
{
    return add_watch(s, resource, fn, NULL, ctx, false);
}

static int watch_from(ty_store *s, const char *resource, uint64_t rv, ty_store_watch_fn fn,
                      ty_store_watch_prev_fn prev_fn, void *ctx, bool committed, int *id_out,
                      ty_error *err)
{
    if (rv != 0 && rv < s->hist_base)
        return fail_code(err, TY_STORE_GONE, "too old resource version: %llu (%llu)",
                         (unsigned long long)rv, (unsigned long long)s->hist_base);
    int id = add_watch(s, resource, fn, prev_fn, ctx, committed);
    /* A copy: a callback may add or remove watches (the array moves). */
    watcher self = *watcher_of(s, id);
    if (rv != 0) {
        enter(s);
        for (size_t i = 0; i < s->hist_len; i++) {
            hist_event *e = &s->hist[(s->hist_start + i) % s->hist_cap];
            if (e->rv <= rv || (resource && strcmp(resource, e->r->name) != 0))
                continue;
            json_error_t je;
            json_t *obj = json_loadb(e->t->data, e->t->len, 0, &je);
            if (committed && e->rv > s->committed)
                hold(s, id, e->type, e->r, obj, e->prev);
            else
                call_watcher(s, &self, e->type, e->r, obj, e->prev);
            json_decref(obj);
        }
        leave(s);
    }
    if (id_out)
        *id_out = id;
    return 0;
}

int ty_store_watch_from(ty_store *s, const char *resource, uint64_t rv, ty_store_watch_fn fn,
                        void *ctx, int *id_out, ty_error *err)
{
    return watch_from(s, resource, rv, fn, NULL, ctx, false, id_out, err);
}

int ty_store_watch_committed(ty_store *s, const char *resource, uint64_t rv,
                             ty_store_watch_fn fn, void *ctx, int *id_out, ty_error *err)
{
    return watch_from(s, resource, rv, fn, NULL, ctx, true, id_out, err);
}

int ty_store_watch_committed_prev(ty_store *s, const char *resource, uint64_t rv,
                                  ty_store_watch_prev_fn fn, void *ctx, int *id_out,
                                  ty_error *err)
{
    return watch_from(s, resource, rv, NULL, fn, ctx, true, id_out, err);
}

void ty_store_unwatch(ty_store *s, int id)
{
    for (size_t i = 0; i < s->nwatchers; i++) {
        if (s->watchers[i].id != id)
            continue;
        free(s->watchers[i].resource);
        memmove(&s->watchers[i], &s->watchers[i + 1], (s->nwatchers - i - 1) * sizeof(watcher));
        s->nwatchers--;
        return;
    }
}

/* ---- object helpers ---- */

static const char *meta_str(const json_t *obj, const char *field)
{
    return json_string_value(json_object_get(json_object_get(obj, "metadata"), field));
}

const char *ty_obj_name(const json_t *obj) { return meta_str(obj, "name"); }
const char *ty_obj_namespace(const json_t *obj) { return meta_str(obj, "namespace"); }
const char *ty_obj_uid(const json_t *obj) { return meta_str(obj, "uid"); }
bool ty_obj_deleting(const json_t *obj) { return meta_str(obj, "deletionTimestamp") != NULL; }

const char *ty_obj_label(const json_t *obj, const char *key)
{
    json_t *labels = json_object_get(json_object_get(obj, "metadata"), "labels");
    return json_string_value(json_object_get(labels, key));
}

bool ty_obj_condition_true(const json_t *obj, const char *type)
{
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(json_object_get(obj, "status"), "conditions"), i, c)
    {
        const char *t = json_string_value(json_object_get(c, "type"));
        const char *s = json_string_value(json_object_get(c, "status"));
        if (t && s && strcmp(t, type) == 0 && strcmp(s, "True") == 0)
            return true;
    }
    return false;
}

static json_t *owner_ref(const json_t *obj, const char *owner_uid)
{
    json_t *refs = json_object_get(json_object_get(obj, "metadata"), "ownerReferences");
    size_t i;
    json_t *ref;
    json_array_foreach(refs, i, ref)
    {
        const char *uid = json_string_value(json_object_get(ref, "uid"));
        if (uid && strcmp(uid, owner_uid) == 0)
            return ref;
    }
    return NULL;
}

bool ty_obj_owned_by(const json_t *obj, const char *owner_uid)
{
    return owner_ref(obj, owner_uid) != NULL;
}

static bool has_finalizer(const json_t *obj, const char *name)
{
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(json_object_get(obj, "metadata"), "finalizers"), i, f)
    {
        if (json_string_value(f) && strcmp(json_string_value(f), name) == 0)
            return true;
    }
    return false;
}

static void new_uid(char out[37])
{
    unsigned char b[16];
    if (getrandom(b, sizeof b, 0) != sizeof b) {
        /* getrandom on Linux >= 3.17 does not fail for 16 bytes; keep uids unique anyway. */
        int64_t t = ty_time_mono_ns();
        memcpy(b, &t, 8);
        memcpy(b + 8, &t, 8);
    }
    b[6] = (b[6] & 0x0f) | 0x40; /* version 4 */
    b[8] = (b[8] & 0x3f) | 0x80; /* RFC 4122 variant */
    snprintf(out, 37,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
             b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
             b[15]);
}

static void now_string(char *out, size_t cap) { ty_time_format_rfc3339(ty_time_now_ns(), out, cap, 0); }

/* Everything in the object but metadata and status, for the generation rule. */
static bool spec_equal(const json_t *a, const json_t *b)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)a, key, v)
    {
        if (strcmp(key, "metadata") == 0 || strcmp(key, "status") == 0)
            continue;
        if (!json_equal(v, json_object_get(b, key)))
            return false;
    }
    json_object_foreach((json_t *)b, key, v)
    {
        if (strcmp(key, "metadata") == 0 || strcmp(key, "status") == 0)
            continue;
        if (!json_object_get(a, key))
            return false;
    }
    return true;
}

/* ---- SQLite ---- */

static int db_fail(ty_store *s, ty_error *err, const char *what)
{
    fail_code(err, TY_STORE_INTERNAL, "store: %s: %s", what, sqlite3_errmsg(s->db));
    if (!sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return -1;
}

static int db_step(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : -1;
}

/* Runs a prepared statement that returns no rows; its error stays on the connection. */
static int db_exec(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

/* One row written (json) or deleted (json NULL), inside the caller's transaction. */
static int db_row(ty_store *s, const char *resource, const char *ns, size_t nslen,
                  const char *name, uint64_t rv, const char *json, size_t len, ty_error *err)
{
    sqlite3_stmt *st = json ? s->put_stmt : s->del_stmt;
    sqlite3_bind_text(st, 1, resource, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, ns, (int)nslen, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
    if (json) {
        sqlite3_bind_int64(st, 4, (sqlite3_int64)rv);
        sqlite3_bind_text(st, 5, json, (int)len, SQLITE_STATIC);
    }
    int rc = db_step(st);
    if (rc < 0)
        db_fail(s, err, json ? "write object" : "delete object");
    sqlite3_reset(st);
    return rc;
}

static int db_revision(ty_store *s, uint64_t rv, ty_error *err)
{
    sqlite3_bind_int64(s->rev_stmt, 1, (sqlite3_int64)rv);
    int rc = db_step(s->rev_stmt);
    if (rc < 0)
        db_fail(s, err, "write revision");
    sqlite3_reset(s->rev_stmt);
    return rc;
}

/* The key's namespace part and name: "ns/name" ("" namespace when cluster-scoped). */
static const char *key_name(const char *key, size_t *nslen)
{
    const char *slash = strchr(key, '/');
    *nslen = (size_t)(slash - key);
    return slash + 1;
}

/* The revision counter is written only with deletions: a stored row carries its own
 * revision, and opening takes the highest of the rows' and the counter's, so a create or an
 * update writes one page fewer (of about three) and a deletion, which leaves no row behind,
 * still keeps its revision from being handed out again. */

/* One change of one object, in one transaction: durable (WAL, synchronous=FULL) when this
 * returns 0. json NULL: the row is deleted. */
static int db_write(ty_store *s, const char *resource, const char *key, uint64_t rv,
                    const char *json, size_t len, ty_error *err)
{
    if (db_exec(s->begin_stmt) < 0)
        return db_fail(s, err, "begin");
    size_t nslen;
    const char *name = key_name(key, &nslen);
    if (db_row(s, resource, key, nslen, name, rv, json, len, err) < 0 ||
        (!json && db_revision(s, rv, err) < 0))
        return -1;
    if (db_exec(s->commit_stmt) < 0)
        return db_fail(s, err, "commit");
    return 0;
}

/* With deferred commits a write only notes its key; ty_store_commit() writes what the key
 * holds then. */
static void mark_dirty(ty_store *s, res *r, const char *key)
{
    if (!s->db)
        return;
    TY_AUTOFREE char *k = ty_asprintf("%s\x1f%s", r->name, key);
    ty_map_puts(&s->dirty, k, (void *)1);
}

void ty_store_defer_commits(ty_store *s, bool on) { s->deferred = on; }

int ty_store_commit(ty_store *s, ty_error *err)
{
    if (s->dirty.count) {
        if (db_exec(s->begin_stmt) < 0)
            return db_fail(s, err, "begin");
        const ty_map_slot *slot;
        bool deleted = false;
        for (size_t i = 0; ty_map_next(&s->dirty, &i, &slot);) {
            const char *sep = strchr(slot->key, '\x1f');
            TY_AUTOFREE char *resource = ty_strndup(slot->key, (size_t)(sep - slot->key));
            const char *key = sep + 1;
            res *r = res_of(s, resource, false);
            entry *e = r ? ty_map_gets(&r->objects, key) : NULL;
            size_t nslen;
            const char *name = key_name(key, &nslen);
            if (db_row(s, resource, key, nslen, name, e ? e->rv : 0, e ? e->t->data : NULL,
                       e ? e->t->len : 0, err) < 0)
                return -1;
            deleted = deleted || !e;
        }
        /* the latest revision is a row's unless a deletion was last */
        if (deleted && db_revision(s, s->revision, err) < 0)
            return -1;
        if (db_exec(s->commit_stmt) < 0)
            return db_fail(s, err, "commit");
        ty_map_free(&s->dirty);
        memset(&s->dirty, 0, sizeof(s->dirty));
    }
    s->committed = s->revision;
    enter(s);
    deliver_held(s);
    leave(s);
    return 0;
}

/* ---- committing changes: SQLite first (unless deferred), then memory, then the event ---- */

static void stamp_revision(json_t *meta, uint64_t rv)
{
    char buf[24];
    snprintf(buf, sizeof buf, "%" PRIu64, rv);
    json_object_set_new(meta, "resourceVersion", json_string(buf));
}

static bool has_kind(const json_t *obj)
{
    return json_object_get(obj, "apiVersion") && json_object_get(obj, "kind");
}

/* Stores `next` (owned; consumed even on failure) under key with the next revision. */
static int commit_put(ty_store *s, res *r, const char *key, json_t *next, ty_event_type type,
                      ty_error *err)
{
    uint64_t rv = s->revision + 1;
    json_t *meta = json_object_get(next, "metadata");
    stamp_revision(meta, rv);
    text *t = text_dump(next);
    if (t->len > TY_STORE_MAX_OBJECT_BYTES) {
        fail_code(err, TY_STORE_TOO_LARGE,
                     "request is too large: the object is %zu bytes, more than the %u an "
                     "object may have", t->len, TY_STORE_MAX_OBJECT_BYTES);
        text_unref(t);
        json_decref(next);
        return -1;
    }
    if (s->db && !s->deferred && db_write(s, r->name, key, rv, t->data, t->len, err) < 0) {
        text_unref(t);
        json_decref(next);
        return -1;
    }
    if (s->deferred)
        mark_dirty(s, r, key);
    s->revision = rv;
    if (!s->deferred)
        s->committed = rv;
    entry *e = ty_map_gets(&r->objects, key);
    text *prev = NULL; /* owned until the event is out */
    if (e) {
        tree_drop(s, e);
        index_clear(s, e);
        prev = e->t;
    } else {
        e = entry_new(r, key);
        ty_map_puts(&r->objects, key, e);
        r->sorted_valid = false;
    }
    e->t = t;
    e->rv = rv;
    index_fill(s, e, meta, has_kind(next));
    tree_set(s, e, next);
    notify(s, type, r, next, t, prev);
    if (prev)
        text_unref(prev);
    return 0;
}

static void after_removal(ty_store *s, res *r, const json_t *removed);

/* Removes the object at key; *out (optional) gets the DELETED event's object. */
static int commit_remove(ty_store *s, res *r, const char *key, json_t **out, ty_error *err)
{
    entry *e = ty_map_gets(&r->objects, key);
    if (!e)
        return 0;
    uint64_t rv = s->revision + 1;
    if (s->db && !s->deferred && db_write(s, r->name, key, rv, NULL, 0, err) < 0)
        return -1;
    if (s->deferred)
        mark_dirty(s, r, key);
    json_t *stored = json_incref(entry_tree(s, e));
    text *prev = text_ref(e->t);
    ty_map_dels(&r->objects, key);
    r->sorted_valid = false;
    entry_free(s, e);
    s->revision = rv;
    if (!s->deferred)
        s->committed = rv;
    /* The DELETED event carries the deletion's resourceVersion, on a copy: callers may still
     * hold the stored object, which must not change under them. */
    json_t *obj = json_copy(stored);
    json_t *meta = json_copy(json_object_get(stored, "metadata"));
    json_object_set_new(obj, "metadata", meta);
    json_decref(stored);
    stamp_revision(meta, rv);
    text *t = text_dump(obj);
    notify(s, TY_EVENT_DELETED, r, obj, t, prev);
    text_unref(t);
    text_unref(prev);
    after_removal(s, r, obj);
    if (out)
        *out = obj;
    else
        json_decref(obj);
    return 0;
}

/* Finalizers gone from an object being deleted: it goes. Returns 1 when removed. */
static int maybe_finish_deletion(ty_store *s, res *r, const char *key, json_t *obj,
                                 ty_error *err)
{
    if (!ty_obj_deleting(obj))
        return 0;
    json_t *meta = json_object_get(obj, "metadata");
    if (json_array_size(json_object_get(meta, "finalizers")) > 0)
        return 0;
    if (strcmp(r->name, "pods") == 0 &&
        json_integer_value(json_object_get(meta, "deletionGracePeriodSeconds")) > 0)
        return 0;
    return commit_remove(s, r, key, NULL, err) < 0 ? -1 : 1;
}

static bool pod_terminated(const json_t *pod)
{
    const char *phase = json_string_value(json_object_get(json_object_get(pod, "status"), "phase"));
    return phase && (strcmp(phase, "Succeeded") == 0 || strcmp(phase, "Failed") == 0);
}

/* [{resource, key}] of every object matching, from the index (nothing is parsed); collected
 * before acting because acting changes the maps. */
typedef bool (*match_fn)(const entry *e, const void *arg);

static json_t *collect(ty_store *s, match_fn match, const void *arg)
{
    json_t *found = json_array();
    const ty_map_slot *slot;
    for (size_t i = 0; ty_map_next(&s->resources, &i, &slot);) {
        res *r = slot->value;
        const ty_map_slot *o;
        for (size_t j = 0; ty_map_next(&r->objects, &j, &o);) {
            if (match(o->value, arg))
                json_array_append_new(found, json_pack("{s:s, s:s}", "resource", r->name,
                                                       "key", o->key));
        }
    }
    return found;
}

static const owner_ix *owner_of(const entry *e, const char *uid)
{
    for (size_t i = 0; i < e->nowners; i++)
        if (e->owners[i].uid && strcmp(e->owners[i].uid, uid) == 0)
            return &e->owners[i];
    return NULL;
}

/* [{resource, key}] of the dependents of owner `uid`, from the owner index. */
static json_t *collect_owned(ty_store *s, const char *uid)
{
    json_t *found = json_array();
    const dep_list *d = owned_by(s, uid);
    for (size_t i = 0; d && i < d->n; i++)
        json_array_append_new(found, json_pack("{s:s, s:s}", "resource", d->v[i]->r->name,
                                               "key", d->v[i]->key));
    return found;
}

static bool has_dependents(const ty_store *s, const char *uid) { return owned_by(s, uid) != NULL; }

static bool has_blocking_dependent(const ty_store *s, const char *uid)
{
    const dep_list *d = owned_by(s, uid);
    for (size_t i = 0; d && i < d->n; i++) {
        const owner_ix *o = owner_of(d->v[i], uid);
        if (o && o->block)
            return true;
    }
    return false;
}

static bool match_in_namespace(const entry *e, const void *ns)
{
    size_t n = strlen(ns);
    return n && strncmp(e->key, ns, n) == 0 && e->key[n] == '/';
}

static bool any_match(ty_store *s, match_fn match, const void *arg)
{
    const ty_map_slot *slot;
    for (size_t i = 0; ty_map_next(&s->resources, &i, &slot);) {
        res *r = slot->value;
        const ty_map_slot *o;
        for (size_t j = 0; ty_map_next(&r->objects, &j, &o);)
            if (match(o->value, arg))
                return true;
    }
    return false;
}

#define REF_FIELD(ref, f) json_string_value(json_object_get(ref, f))

/* The stored object a {resource, key} entry names (borrowed), and its key (owned). */
static json_t *lookup_ref(ty_store *s, const json_t *ref, res **rp, char **keyp)
{
    res *r = res_of(s, REF_FIELD(ref, "resource"), false);
    json_t *obj = obj_at(s, r, REF_FIELD(ref, "key"));
    if (!obj)
        return NULL;
    *rp = r;
    *keyp = ty_strdup(REF_FIELD(ref, "key"));
    return obj;
}

/* Drops obj's ownerReference to owner_uid (a metadata change: no new generation). */
static int drop_owner_ref(ty_store *s, res *r, const char *key, const json_t *obj,
                          const char *owner_uid, ty_error *err)
{
    json_t *next = json_deep_copy(obj);
    json_t *meta = json_object_get(next, "metadata");
    json_t *refs = json_object_get(meta, "ownerReferences");
    for (size_t i = json_array_size(refs); i-- > 0;) {
        const char *uid = REF_FIELD(json_array_get(refs, i), "uid");
        if (uid && strcmp(uid, owner_uid) == 0)
            json_array_remove(refs, i);
    }
    if (json_array_size(refs) == 0)
        json_object_del(meta, "ownerReferences");
    return commit_put(s, r, key, next, TY_EVENT_MODIFIED, err);
}

/* Whether obj has an owner other than `except` that still exists. */
static bool has_other_owner(ty_store *s, const json_t *obj, const char *except)
{
    size_t i;
    json_t *ref;
    json_array_foreach(json_object_get(json_object_get(obj, "metadata"), "ownerReferences"), i, ref)
    {
        const char *uid = REF_FIELD(ref, "uid");
        if (uid && strcmp(uid, except) != 0 && uid_get(s, uid))
            return true;
    }
    return false;
}

static int delete_at(ty_store *s, res *r, const char *key, const ty_store_delete_opts *o,
                     json_t **out, ty_error *err);

/* The garbage collector's part for the dependents of `uid` (removed, or being deleted in the
 * foreground): a dependent that has another owner still present only loses its reference to
 * this one; the others are deleted. */
static int gc_dependents(ty_store *s, const char *uid, bool foreground, ty_error *err)
{
    json_t *deps = collect_owned(s, uid);
    int rc = 0;
    size_t i;
    json_t *ref;
    json_array_foreach(deps, i, ref)
    {
        res *r;
        char *key;
        json_t *obj = lookup_ref(s, ref, &r, &key);
        if (!obj)
            continue; /* gone with an earlier one */
        int one = 0;
        if (has_other_owner(s, obj, uid)) {
            one = drop_owner_ref(s, r, key, obj, uid, err);
        } else if (!ty_obj_deleting(obj)) {
            /* Like the garbage collector: a dependent that has dependents of its own is
             * deleted in the foreground too, so that the owner waits for the whole tree. */
            bool fg = foreground && has_dependents(s, ty_obj_uid(obj));
            ty_store_delete_opts o = {.grace_seconds = -1,
                                      .propagation = fg ? "Foreground" : "Background"};
            one = delete_at(s, r, key, &o, NULL, err);
        }
        free(key);
        if (one < 0)
            rc = -1;
    }
    json_decref(deps);
    return rc;
}

/* An owner deleted in the foreground goes once no dependent with blockOwnerDeletion is left. */
static int foreground_check(ty_store *s, const char *owner_uid, ty_error *err)
{
    entry *u = uid_get(s, owner_uid);
    if (!u || !u->deleting || !u->fg_finalizer)
        return 0;
    if (has_blocking_dependent(s, owner_uid))
        return 0;
    res *r = u->r;
    TY_AUTOFREE char *key = ty_strdup(u->key);
    json_t *next = json_deep_copy(entry_tree(s, u));
    json_t *fins = json_object_get(json_object_get(next, "metadata"), "finalizers");
    for (size_t i = json_array_size(fins); i-- > 0;)
        if (strcmp(json_string_value(json_array_get(fins, i)) ?: "", "foregroundDeletion") == 0)
            json_array_remove(fins, i);
    if (json_array_size(fins) == 0)
        json_object_del(json_object_get(next, "metadata"), "finalizers");
    if (commit_put(s, r, key, next, TY_EVENT_MODIFIED, err) < 0)
        return -1;
    return maybe_finish_deletion(s, r, key, next, err) < 0 ? -1 : 0;
}

static int owners_check(ty_store *s, const json_t *obj, ty_error *err)
{
    json_t *refs = json_deep_copy(
        json_object_get(json_object_get(obj, "metadata"), "ownerReferences"));
    int rc = 0;
    size_t i;
    json_t *ref;
    json_array_foreach(refs, i, ref)
    {
        if (REF_FIELD(ref, "uid") && foreground_check(s, REF_FIELD(ref, "uid"), err) < 0)
            rc = -1;
    }
    json_decref(refs);
    return rc;
}

/* A terminating namespace goes when the last object in it has gone. */
static int namespace_check(ty_store *s, const char *ns, ty_error *err)
{
    res *r = res_of(s, "namespaces", false);
    TY_AUTOFREE char *key = object_key("namespaces", NULL, ns);
    json_t *nsobj = obj_at(s, r, key);
    if (!nsobj || !ty_obj_deleting(nsobj) ||
        json_array_size(json_object_get(json_object_get(nsobj, "metadata"), "finalizers")) > 0)
        return 0;
    if (any_match(s, match_in_namespace, ns))
        return 0;
    return commit_remove(s, r, key, NULL, err);
}

/* What follows a removal. Failures here leave memory and SQLite agreeing (each step is its
 * own write); the rest of the cascade is not done, and a later delete finishes it. */
static void after_removal(ty_store *s, res *r, const json_t *removed)
{
    const char *uid = ty_obj_uid(removed);
    if (uid)
        gc_dependents(s, uid, false, NULL);
    owners_check(s, removed, NULL);
    const char *ns = ty_obj_namespace(removed);
    if (ns && !cluster_scoped(r->name))
        namespace_check(s, ns, NULL);
}

/* ---- writes ---- */

static const ty_store_write_opts no_write_opts;

static void default_protocol(json_t *ports)
{
    size_t i;
    json_t *p;
    json_array_foreach(ports, i, p)
    {
        if (json_is_object(p) && !json_string_value(json_object_get(p, "protocol")))
            json_object_set_new(p, "protocol", json_string("TCP"));
    }
}

static void set_default(json_t *obj, const char *key, json_t *value)
{
    if (!json_object_get(obj, key))
        json_object_set(obj, key, value);
    json_decref(value);
}

/* What the API server fills in on a Service (SetDefaults_Service and the registry's create):
 * type ClusterIP, sessionAffinity None, each port's targetPort its port, internalTrafficPolicy
 * Cluster, clusterIPs from clusterIP, and the cluster's one IPv4 family. */
static void default_service(json_t *svc)
{
    json_t *spec = json_object_get(svc, "spec");
    if (!json_is_object(spec))
        return;
    set_default(spec, "type", json_string("ClusterIP"));
    set_default(spec, "sessionAffinity", json_string("None"));
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(spec, "ports"), i, p) {
        json_t *target = json_object_get(p, "targetPort");
        json_t *port = json_object_get(p, "port");
        if (json_is_object(p) && json_is_integer(port) &&
            (!target || (json_is_integer(target) && json_integer_value(target) == 0)))
            json_object_set(p, "targetPort", port);
    }
    const char *type = json_string_value(json_object_get(spec, "type"));
    if (type && strcmp(type, "ExternalName") == 0)
        return;
    set_default(spec, "internalTrafficPolicy", json_string("Cluster"));
    if (type && (strcmp(type, "NodePort") == 0 || strcmp(type, "LoadBalancer") == 0))
        set_default(spec, "externalTrafficPolicy", json_string("Cluster"));
    json_t *ip = json_object_get(spec, "clusterIP");
    if (json_is_string(ip) && !json_object_get(spec, "clusterIPs"))
        json_object_set_new(spec, "clusterIPs", json_pack("[O]", ip));
    if (json_is_string(ip)) { /* headless or allocated (store/svcip_int.h) */
        set_default(spec, "ipFamilies", json_pack("[s]", "IPv4"));
        set_default(spec, "ipFamilyPolicy", json_string("SingleStack"));
    }
    json_t *status = json_object_get(svc, "status");
    if (!status)
        json_object_set_new(svc, "status", status = json_object());
    if (json_is_object(status))
        set_default(status, "loadBalancer", json_object());
}

/* The API server's defaulting of the core kinds that clients read back: a port's protocol is
 * TCP (kubectl describe pod prints "23456/TCP", a port without one "23456/"), a Service's
 * type, affinity, families and target ports. Pods and services are created by the
 * controllers straight into the store, so it is done here. */
static void default_core(const char *resource, json_t *obj)
{
    json_t *spec = json_object_get(obj, "spec");
    if (strcmp(resource, "services") == 0) {
        default_protocol(json_object_get(spec, "ports"));
        default_service(obj);
    } else if (strcmp(resource, "pods") == 0) {
        static const char *lists[] = {"initContainers", "containers"};
        for (size_t l = 0; l < 2; l++) {
            size_t i;
            json_t *c;
            json_array_foreach(json_object_get(spec, lists[l]), i, c)
                default_protocol(json_object_get(c, "ports"));
        }
    }
}

/* Consumes `obj`: it becomes the stored tree (see ty_store_create_owned). */
static int create_ex_impl(ty_store *s, const char *resource, json_t *obj,
                          const ty_store_write_opts *opts, json_t **out, ty_error *err)
{
    opts = opts ? opts : &no_write_opts;
    if (out)
        *out = NULL;
    const char *name = ty_obj_name(obj);
    if (!name || !*name) {
        json_decref(obj);
        return fail_code(err, TY_STORE_INVALID, "%s: metadata.name: Required value", resource);
    }
    json_t *meta = json_object_get(obj, "metadata");
    if (cluster_scoped(resource))
        json_object_del(meta, "namespace");
    else if (!json_string_value(json_object_get(meta, "namespace")))
        json_object_set_new(meta, "namespace", json_string("default"));
    const char *ns = ty_obj_namespace(obj);
    if (ns) {
        res *nsr = res_of(s, "namespaces", false);
        TY_AUTOFREE char *nskey = object_key("namespaces", NULL, ns);
        entry *nsobj = nsr ? ty_map_gets(&nsr->objects, nskey) : NULL;
        if (!nsobj || nsobj->deleting) {
            if (!nsobj)
                fail_code(err, TY_STORE_NOT_FOUND, "namespaces \"%s\" not found", ns);
            else
                fail_code(err, TY_STORE_FORBIDDEN,
                          "%s \"%s\" is forbidden: unable to create new content in namespace "
                          "%s because it is being terminated",
                          resource, name, ns);
            json_decref(obj);
            return -1;
        }
    }
    res *r = res_of(s, resource, true);
    TY_AUTOFREE char *key = object_key(resource, ns, name);
    if (ty_map_gets(&r->objects, key)) {
        fail_code(err, TY_STORE_CONFLICT, "%s \"%s\" already exists", resource, name);
        json_decref(obj); /* name points into it */
        return -1;
    }
    char uid[37], now[40];
    new_uid(uid);
    now_string(now, sizeof now);
    json_object_set_new(meta, "uid", json_string(uid));
    json_object_set_new(meta, "creationTimestamp", json_string(now));
    json_object_set_new(meta, "generation", json_integer(1));
    json_object_del(meta, "deletionTimestamp");
    json_object_del(meta, "deletionGracePeriodSeconds");
    json_object_del(meta, "resourceVersion");
    if (strcmp(resource, "services") == 0 && ty_svcip_prepare(&s->svcip, s, obj, NULL, err) < 0) {
        json_decref(obj);
        return -1;
    }
    default_core(resource, obj);
    /* The API server starts every namespace Active, whatever the client sent. */
    if (strcmp(resource, "namespaces") == 0)
        json_object_set_new(obj, "status", json_pack("{s:s}", "phase", "Active"));
    if (opts->dry_run) {
        if (out)
            *out = obj;
        else
            json_decref(obj);
        return 0;
    }
    if (commit_put(s, r, key, json_incref(obj), TY_EVENT_ADDED, err) < 0) {
        json_decref(obj);
        return -1;
    }
    if (out)
        *out = obj;
    else
        json_decref(obj);
    return 0;
}

int ty_store_create(ty_store *s, const char *resource, const json_t *obj, json_t **out,
                    ty_error *err)
{
    return ty_store_create_ex(s, resource, obj, NULL, out, err);
}

static json_t *get_impl(ty_store *s, const char *resource, const char *ns, const char *name)
{
    res *r = res_of(s, resource, false);
    if (!r)
        return NULL;
    TY_AUTOFREE char *key = object_key(resource, ns, name);
    entry *e = ty_map_gets(&r->objects, key);
    return e ? json_incref(entry_tree(s, e)) : NULL;
}

static json_t *lookup_for_write(ty_store *s, const char *resource, const json_t *obj, res **rp,
                                char **keyp, ty_error *err)
{
    res *r = res_of(s, resource, false);
    const char *name = ty_obj_name(obj);
    char *key = object_key(resource, ty_obj_namespace(obj), name ? name : "");
    json_t *cur = obj_at(s, r, key);
    if (!cur) {
        free(key);
        fail_code(err, TY_STORE_NOT_FOUND, "%s \"%s\" not found", resource, name ? name : "");
        return NULL;
    }
    const char *rv = meta_str(obj, "resourceVersion");
    if (rv && *rv && strcmp(rv, meta_str(cur, "resourceVersion")) != 0) {
        free(key);
        fail_code(err, TY_STORE_CONFLICT,
                  "Operation cannot be fulfilled on %s \"%s\": the object has been modified; "
                  "please apply your changes to the latest version and try again",
                  resource, name);
        return NULL;
    }
    *rp = r;
    *keyp = key;
    return cur;
}

/* Stores next (owned) over cur, then lets the deletion finish when it can. */
static int finish_update(ty_store *s, res *r, char *key, json_t *cur, json_t *next,
                         const ty_store_write_opts *opts, json_t **out, ty_error *err)
{
    if (out)
        *out = NULL;
    /* A write that changes nothing is no write, as in Kubernetes: no new resourceVersion, no
     * event (so `kubectl apply` of the same manifest, or a controller writing the status it
     * already wrote, costs nothing and wakes nobody). */
    if ((opts && opts->dry_run) || json_equal(next, cur)) {
        if (out)
            *out = next;
        else
            json_decref(next);
        free(key);
        return 0;
    }
    /* The owners of the previous version may be waiting for this dependent to change. */
    json_t *prev = json_incref(cur);
    int rc = commit_put(s, r, key, json_incref(next), TY_EVENT_MODIFIED, err);
    if (rc == 0) {
        int removed = maybe_finish_deletion(s, r, key, next, err);
        if (removed < 0)
            rc = -1;
        else if (!removed && out)
            *out = json_incref(next);
        if (rc == 0 && !removed)
            owners_check(s, prev, NULL);
    }
    json_decref(prev);
    json_decref(next);
    free(key);
    return rc;
}

static int update_ex_impl(ty_store *s, const char *resource, const json_t *obj,
                       const ty_store_write_opts *opts, json_t **out, ty_error *err)
{
    res *r;
    char *key = NULL;
    json_t *cur = lookup_for_write(s, resource, obj, &r, &key, err);
    if (!cur)
        return -1;
    json_t *next = json_deep_copy(obj);
    json_t *meta = json_object_get(next, "metadata");
    json_t *curmeta = json_object_get(cur, "metadata");
    /* Fields the server owns are kept from the stored object. */
    static const char *owned[] = {"uid", "creationTimestamp", "namespace",
                                  "deletionTimestamp", "deletionGracePeriodSeconds",
                                  "resourceVersion"};
    for (size_t i = 0; i < TY_ARRAY_LEN(owned); i++) {
        json_t *v = json_object_get(curmeta, owned[i]);
        if (v)
            json_object_set(meta, owned[i], v);
        else
            json_object_del(meta, owned[i]);
    }
    json_int_t gen = json_integer_value(json_object_get(curmeta, "generation"));
    json_object_set_new(meta, "generation", json_integer(spec_equal(cur, next) ? gen : gen + 1));
    json_t *status = json_object_get(cur, "status");
    if (status)
        json_object_set(next, "status", status);
    else
        json_object_del(next, "status");
    if (strcmp(resource, "services") == 0 && ty_svcip_prepare(&s->svcip, s, next, cur, err) < 0) {
        json_decref(next);
        free(key);
        return -1;
    }
    return finish_update(s, r, key, cur, next, opts, out, err);
}

int ty_store_update(ty_store *s, const char *resource, const json_t *obj, json_t **out,
                    ty_error *err)
{
    return ty_store_update_ex(s, resource, obj, NULL, out, err);
}

static int update_status_ex_impl(ty_store *s, const char *resource, const json_t *obj,
                              const ty_store_write_opts *opts, json_t **out, ty_error *err)
{
    res *r;
    char *key = NULL;
    json_t *cur = lookup_for_write(s, resource, obj, &r, &key, err);
    if (!cur)
        return -1;
    /* Shallow: the new version shares spec and the rest with the old one (no stored tree is
     * ever changed in place); only metadata, where the revision goes, needs its own copy. */
    json_t *next = json_copy(cur);
    json_object_set_new(next, "metadata", json_copy(json_object_get(cur, "metadata")));
    json_t *status = json_object_get(obj, "status");
    if (status)
        json_object_set_new(next, "status", json_deep_copy(status));
    else
        json_object_del(next, "status");
    return finish_update(s, r, key, cur, next, opts, out, err);
}

int ty_store_update_status(ty_store *s, const char *resource, const json_t *obj, json_t **out,
                           ty_error *err)
{
    return ty_store_update_status_ex(s, resource, obj, NULL, out, err);
}

/* ---- deletion ---- */

static int orphan_dependents(ty_store *s, const char *uid, ty_error *err)
{
    json_t *deps = collect_owned(s, uid);
    int rc = 0;
    size_t i;
    json_t *ref;
    json_array_foreach(deps, i, ref)
    {
        res *r;
        char *key;
        json_t *obj = lookup_ref(s, ref, &r, &key);
        if (!obj)
            continue;
        rc = drop_owner_ref(s, r, key, obj, uid, err);
        free(key);
        if (rc < 0)
            break;
    }
    json_decref(deps);
    return rc;
}

static json_t *mark_copy(const json_t *cur)
{
    json_t *next = json_deep_copy(cur);
    if (!ty_obj_deleting(cur)) {
        char now[40];
        now_string(now, sizeof now);
        json_object_set_new(json_object_get(next, "metadata"), "deletionTimestamp",
                            json_string(now));
    }
    return next;
}

/* A namespace is marked Terminating, everything in it is deleted, and it goes when empty. */
static int delete_namespace(ty_store *s, res *r, const char *key, json_t *cur, bool dry_run,
                            json_t **out, ty_error *err)
{
    /* cur is the cached tree, which the write below drops. */
    TY_AUTOFREE char *name = ty_strdup(ty_obj_name(cur));
    if (strcmp(name, "default") == 0)
        return fail_code(err, TY_STORE_FORBIDDEN,
                         "namespaces \"default\" is forbidden: this namespace may not be deleted");
    json_t *marked = cur;
    if (!ty_obj_deleting(cur) || dry_run) {
        json_t *next = mark_copy(cur);
        json_object_set_new(next, "status", json_pack("{s:s}", "phase", "Terminating"));
        if (dry_run) {
            if (out)
                *out = next;
            else
                json_decref(next);
            return 0;
        }
        if (commit_put(s, r, key, next, TY_EVENT_MODIFIED, err) < 0)
            return -1;
        marked = next;
    }
    json_incref(marked);
    TY_AUTOFREE char *ns = ty_strdup(name);
    json_t *content = collect(s, match_in_namespace, ns);
    int rc = 0;
    size_t i;
    json_t *ref;
    json_array_foreach(content, i, ref)
    {
        res *cr;
        char *ckey;
        json_t *obj = lookup_ref(s, ref, &cr, &ckey);
        if (!obj)
            continue;
        if (!ty_obj_deleting(obj)) {
            ty_store_delete_opts o = {.grace_seconds = -1};
            if (delete_at(s, cr, ckey, &o, NULL, err) < 0)
                rc = -1;
        }
        free(ckey);
    }
    json_decref(content);
    if (rc == 0 && namespace_check(s, ns, err) < 0)
        rc = -1;
    if (out && rc == 0)
        *out = marked;
    else
        json_decref(marked);
    return rc;
}

static int delete_at(ty_store *s, res *r, const char *key, const ty_store_delete_opts *o,
                     json_t **out, ty_error *err)
{
    const char *prop = o->propagation && *o->propagation ? o->propagation : "Background";
    bool foreground = strcmp(prop, "Foreground") == 0, orphan = strcmp(prop, "Orphan") == 0;
    json_t *cur = obj_at(s, r, key);
    TY_AUTOFREE char *uid = ty_strdup(ty_obj_uid(cur));
    if (orphan && !o->dry_run) {
        if (orphan_dependents(s, uid, err) < 0)
            return -1;
        cur = obj_at(s, r, key);
    }
    json_t *curmeta = json_object_get(cur, "metadata");
    bool has_finalizers = json_array_size(json_object_get(curmeta, "finalizers")) > 0;
    int64_t grace = o->grace_seconds;
    bool graceful_pod = strcmp(r->name, "pods") == 0 &&
                        json_string_value(json_object_get(json_object_get(cur, "spec"), "nodeName")) &&
                        !pod_terminated(cur) && grace != 0;
    if (!has_finalizers && !graceful_pod && !foreground) {
        if (o->dry_run) {
            if (out)
                *out = json_incref(cur);
            return 0;
        }
        return commit_remove(s, r, key, out, err);
    }
    if (graceful_pod && grace < 0) {
        json_t *g = json_object_get(json_object_get(cur, "spec"), "terminationGracePeriodSeconds");
        grace = g ? json_integer_value(g) : 30;
    }
    bool add_fg = foreground && !has_finalizer(cur, "foregroundDeletion");
    /* A second delete of something already marked only shortens a pod's grace period (or
     * turns a deletion into a foreground one). */
    json_t *prev_grace = json_object_get(curmeta, "deletionGracePeriodSeconds");
    if (ty_obj_deleting(cur) && !add_fg &&
        (!graceful_pod || (prev_grace && json_integer_value(prev_grace) <= grace))) {
        if (out)
            *out = json_incref(cur);
        return 0;
    }
    json_t *next = mark_copy(cur);
    json_t *meta = json_object_get(next, "metadata");
    if (graceful_pod)
        json_object_set_new(meta, "deletionGracePeriodSeconds", json_integer(grace));
    if (add_fg) {
        json_t *fins = json_object_get(meta, "finalizers");
        if (!json_is_array(fins)) {
            fins = json_array();
            json_object_set_new(meta, "finalizers", fins);
        }
        json_array_append_new(fins, json_string("foregroundDeletion"));
    }
    if (o->dry_run) {
        if (out)
            *out = next;
        else
            json_decref(next);
        return 0;
    }
    json_incref(next);
    if (commit_put(s, r, key, next, TY_EVENT_MODIFIED, err) < 0) {
        json_decref(next);
        return -1;
    }
    int rc = 0;
    if (foreground && (gc_dependents(s, uid, true, err) < 0 || foreground_check(s, uid, err) < 0))
        rc = -1;
    if (out)
        *out = next;
    else
        json_decref(next);
    return rc;
}

static int delete_ex_impl(ty_store *s, const char *resource, const char *ns, const char *name,
                       const ty_store_delete_opts *opts, json_t **out, ty_error *err)
{
    ty_store_delete_opts o = opts ? *opts : (ty_store_delete_opts){.grace_seconds = -1};
    if (out)
        *out = NULL;
    if (o.propagation && *o.propagation && strcmp(o.propagation, "Background") != 0 &&
        strcmp(o.propagation, "Foreground") != 0 && strcmp(o.propagation, "Orphan") != 0)
        return fail_code(err, TY_STORE_INVALID,
                         "propagationPolicy: Unsupported value: \"%s\": supported values: "
                         "\"Foreground\", \"Background\", \"Orphan\"",
                         o.propagation);
    res *r = res_of(s, resource, false);
    TY_AUTOFREE char *key = object_key(resource, ns, name);
    json_t *cur = obj_at(s, r, key);
    if (!cur)
        return fail_code(err, TY_STORE_NOT_FOUND, "%s \"%s\" not found", resource, name);
    if (o.precondition_uid && strcmp(o.precondition_uid, ty_obj_uid(cur)) != 0)
        return fail_code(err, TY_STORE_CONFLICT,
                         "Precondition failed: UID in precondition: %s, UID in object meta: %s",
                         o.precondition_uid, ty_obj_uid(cur));
    if (o.precondition_rv && strcmp(o.precondition_rv, meta_str(cur, "resourceVersion")) != 0)
        return fail_code(err, TY_STORE_CONFLICT,
                         "Precondition failed: ResourceVersion in precondition: %s, "
                         "ResourceVersion in object meta: %s",
                         o.precondition_rv, meta_str(cur, "resourceVersion"));
    if (strcmp(resource, "namespaces") == 0)
        return delete_namespace(s, r, key, cur, o.dry_run, out, err);
    return delete_at(s, r, key, &o, out, err);
}

int ty_store_delete(ty_store *s, const char *resource, const char *ns, const char *name,
                    int64_t grace_seconds, ty_error *err)
{
    ty_store_delete_opts o = {.grace_seconds = grace_seconds, .propagation = "Background"};
    return ty_store_delete_ex(s, resource, ns, name, &o, NULL, err);
}

/* ---- reading ---- */

/* Keys are "namespace/name" (namespace empty when cluster-scoped); names hold no '/'. Orders by
 * namespace, then name: comparing the whole keys would put "a-b/x" before "a/x". */
static int compare_slots(const void *a, const void *b)
{
    const char *x = (*(const ty_map_slot *const *)a)->key;
    const char *y = (*(const ty_map_slot *const *)b)->key;
    const char *sx = strchr(x, '/'), *sy = strchr(y, '/');
    size_t nx = (size_t)(sx - x), ny = (size_t)(sy - y);
    int c = memcmp(x, y, nx < ny ? nx : ny);
    if (c)
        return c;
    if (nx != ny)
        return nx < ny ? -1 : 1;
    return strcmp(sx + 1, sy + 1);
}

static void sort_objects(res *r)
{
    if (r->sorted_valid)
        return;
    free(r->sorted);
    r->sorted = ty_malloc((r->objects.count + 1) * sizeof(*r->sorted));
    size_t n = 0;
    const ty_map_slot *o;
    for (size_t j = 0; ty_map_next(&r->objects, &j, &o);)
        r->sorted[n++] = o;
    qsort(r->sorted, n, sizeof(*r->sorted), compare_slots);
    r->nsorted = n;
    r->sorted_valid = true;
}

/* The positions in r->sorted of the objects in `ns` (NULL: all): [*lo, *hi). */
static void ns_range(res *r, const char *ns, size_t *lo, size_t *hi)
{
    sort_objects(r);
    *lo = 0;
    *hi = r->nsorted;
    if (!ns)
        return;
    size_t nslen = strlen(ns);
    if (!nslen) { /* names no namespace: nothing */
        *hi = 0;
        return;
    }
    /* Sorted by namespace first: the namespace's objects are one run, found by bisection. */
    size_t a = 0, b = r->nsorted;
    while (a < b) {
        size_t m = a + (b - a) / 2;
        const char *k = r->sorted[m]->key;
        size_t kl = (size_t)(strchr(k, '/') - k);
        int c = memcmp(k, ns, kl < nslen ? kl : nslen);
        if (c < 0 || (c == 0 && kl < nslen))
            a = m + 1;
        else
            b = m;
    }
    *lo = a;
    while (b < r->nsorted) {
        const char *k = r->sorted[b]->key;
        if (strncmp(k, ns, nslen) != 0 || k[nslen] != '/')
            break;
        b++;
    }
    *hi = b;
}

static json_t *list_impl(ty_store *s, const char *resource, const char *ns)
{
    json_t *list = json_array();
    res *r = res_of(s, resource, false);
    if (!r)
        return list;
    size_t lo, hi;
    ns_range(r, ns, &lo, &hi);
    for (size_t i = lo; i < hi; i++)
        json_array_append_new(list, entry_tree_ref(r->sorted[i]->value));
    return list;
}

json_t *ty_store_list(ty_store *s, const char *resource, const char *ns)
{
    enter(s);
    json_t *list = list_impl(s, resource, ns);
    leave(s);
    return list;
}

static int compare_entry_keys(const void *a, const void *b)
{
    return strcmp((*(entry *const *)a)->key, (*(entry *const *)b)->key);
}

json_t *ty_store_list_owned(ty_store *s, const char *resource, const char *owner_uid)
{
    json_t *list = json_array();
    const dep_list *d = owner_uid ? owned_by(s, owner_uid) : NULL;
    if (!d)
        return list;
    entry **v = ty_malloc(d->n * sizeof(entry *));
    size_t n = 0;
    for (size_t i = 0; i < d->n; i++)
        if (strcmp(d->v[i]->r->name, resource) == 0)
            v[n++] = d->v[i];
    qsort(v, n, sizeof(entry *), compare_entry_keys);
    enter(s);
    for (size_t i = 0; i < n; i++)
        json_array_append(list, entry_tree(s, v[i]));
    leave(s);
    free(v);
    return list;
}

static void item_of(const entry *e, ty_store_item *out)
{
    *out = (ty_store_item){.key = e->key,
                           .text = e->t->data,
                           .len = e->t->len,
                           .rv = e->rv,
                           .typed = e->typed,
                           .labels = e->labels->doc};
}

bool ty_store_get_item(ty_store *s, const char *resource, const char *ns, const char *name,
                       ty_store_item *out)
{
    res *r = res_of(s, resource, false);
    if (!r)
        return false;
    TY_AUTOFREE char *key = object_key(resource, ns, name);
    entry *e = ty_map_gets(&r->objects, key);
    if (e)
        item_of(e, out);
    return e != NULL;
}

size_t ty_store_list_items(ty_store *s, const char *resource, const char *ns,
                           ty_store_item **out)
{
    res *r = res_of(s, resource, false);
    size_t lo = 0, hi = 0;
    if (r)
        ns_range(r, ns, &lo, &hi);
    *out = ty_malloc((hi - lo + 1) * sizeof(ty_store_item));
    for (size_t i = lo; i < hi; i++)
        item_of(r->sorted[i]->value, &(*out)[i - lo]);
    return hi - lo;
}

/* The map's slots move only when it is rehashed (a delete leaves a tombstone, a create fills
 * a free slot), so a slot index is a cursor that survives other writes. */
size_t ty_store_scan_items(ty_store *s, const char *resource, size_t *pos, ty_store_item *out,
                           size_t max)
{
    res *r = res_of(s, resource, false);
    size_t n = 0;
    const ty_map_slot *o;
    while (r && n < max && ty_map_next(&r->objects, pos, &o))
        item_of(o->value, &out[n++]);
    return n;
}

/* ---- opening ---- */

int ty_store_ensure_namespace(ty_store *s, const char *name, ty_error *err)
{
    json_t *ns = ty_store_get(s, "namespaces", NULL, name);
    if (ns) {
        json_decref(ns);
        return 0;
    }
    json_t *obj = json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", "v1", "kind", "Namespace",
                            "metadata", "name", name);
    int rc = ty_store_create(s, "namespaces", obj, NULL, err);
    json_decref(obj);
    return rc;
}

int ty_store_set_service_cidr(ty_store *s, const char *cidr, ty_error *err)
{
    return ty_svcip_set_cidr(&s->svcip, s, cidr, err);
}

ty_store *ty_store_new(void)
{
    ty_store *s = store_alloc();
    ty_store_ensure_namespace(s, "default", NULL); /* cannot fail without SQLite */
    return s;
}

/* A rowid table, not WITHOUT ROWID: rows are kilobytes of JSON, which a WITHOUT ROWID b-tree
 * stores poorly (the database was twice the size of its JSON). */
static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS objects ("
    " resource TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,"
    " rv INTEGER NOT NULL, json TEXT NOT NULL,"
    " PRIMARY KEY (resource, namespace, name));"
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);";

/* Loading reads the text and parses only what the index needs (the metadata); the rest of
 * each object is checked for JSON structure and parsed when someone asks for it. */
/* The end of the JSON value starting at p, or NULL when it is not one: every member and
 * element checked. For what loading scans of each row. */
static const char *check_value(const char *p, const char *end, int depth)
{
    p = ty_json_skip_ws(p, end);
    if (p >= end || depth > 128)
        return NULL;
    if (*p == '"')
        return ty_json_skip_string(p, end);
    if (*p == '{' || *p == '[') {
        bool obj = *p == '{';
        char close = obj ? '}' : ']';
        p = ty_json_skip_ws(p + 1, end);
        if (p < end && *p == close)
            return p + 1;
        for (;;) {
            if (obj) {
                p = ty_json_skip_ws(p, end);
                if (p >= end || *p != '"' || !(p = ty_json_skip_string(p, end)))
                    return NULL;
                p = ty_json_skip_ws(p, end);
                if (p >= end || *p != ':')
                    return NULL;
                p++;
            }
            if (!(p = check_value(p, end, depth + 1)))
                return NULL;
            p = ty_json_skip_ws(p, end);
            if (p >= end)
                return NULL;
            if (*p == close)
                return p + 1;
            if (*p != ',')
                return NULL;
            p++;
        }
    }
    const char *q = p;
    while (q < end && (isalnum((unsigned char)*q) || *q == '-' || *q == '+' || *q == '.'))
        q++;
    return q > p ? q : NULL;
}

/* What loading learns of one stored text without parsing it all. */
typedef struct scanned {
    bool typed;
    const char *meta, *meta_end; /* the metadata object's text */
} scanned;

/* Finds the text's metadata and whether it has apiVersion and kind; -1 when it is not an
 * object with a metadata object. The members before those three are checked and skipped; the
 * rest (spec and status, most of the bytes: the store writes apiVersion, kind and metadata
 * first) only has to close the object. A row damaged in the middle is found when it is
 * parsed, and the store stops then, naming it. */
static int scan_text(const char *p, size_t len, scanned *out)
{
    const char *end = p + len;
    bool api = false, kind = false;
    *out = (scanned){0};
    p = ty_json_skip_ws(p, end);
    if (p >= end || *p != '{')
        return -1;
    p++;
    for (;;) {
        p = ty_json_skip_ws(p, end);
        const char *k = p + 1, *ke = p < end && *p == '"' ? ty_json_skip_string(p, end) : NULL;
        if (!ke)
            return -1;
        size_t klen = (size_t)(ke - 1 - k);
        p = ty_json_skip_ws(ke, end);
        if (p >= end || *p != ':')
            return -1;
        const char *v = ty_json_skip_ws(p + 1, end);
        const char *ve = check_value(v, end, 0);
        if (!ve)
            return -1;
        if (klen == 8 && memcmp(k, "metadata", 8) == 0) {
            if (*v != '{')
                return -1;
            out->meta = v;
            out->meta_end = ve;
            if (api && kind)
                break;
        } else if (klen == 10 && memcmp(k, "apiVersion", 10) == 0) {
            api = true;
        } else if (klen == 4 && memcmp(k, "kind", 4) == 0) {
            kind = true;
        }
        p = ty_json_skip_ws(ve, end);
        if (p < end && *p == '}')
            break;
        if (p >= end || *p != ',')
            return -1;
        p++;
    }
    if (!out->meta)
        return -1;
    while (end > p && (end[-1] == ' ' || end[-1] == '\n' || end[-1] == '\r' || end[-1] == '\t'))
        end--;
    if (end[-1] != '}')
        return -1;
    out->typed = api && kind;
    return 0;
}

/* The index from the metadata's text. Most members are skipped; only those the index reads
 * are parsed, and a label set's text only the first time it is seen (`seen`: labels text as
 * stored -> labelset*, for the duration of the load). */
static int index_from_text(ty_store *s, entry *e, const char *p, const char *end, bool typed,
                           ty_map *seen)
{
    json_t *meta = json_object();
    const char *labels = NULL, *labels_end = NULL;
    p = ty_json_skip_ws(p + 1, end);
    if (p < end && *p == '}')
        goto done;
    for (;;) {
        p = ty_json_skip_ws(p, end);
        const char *k = p + 1, *ke = p < end && *p == '"' ? ty_json_skip_string(p, end) : NULL;
        if (!ke)
            goto bad;
        size_t klen = (size_t)(ke - 1 - k);
        p = ty_json_skip_ws(ke, end);
        if (p >= end || *p != ':')
            goto bad;
        const char *v = ty_json_skip_ws(p + 1, end);
        const char *ve = ty_json_skip_value(v, end);
        if (!ve)
            goto bad;
#define IS(name) (klen == sizeof(name) - 1 && memcmp(k, name, klen) == 0)
        if (IS("labels")) {
            labels = v;
            labels_end = ve;
        } else if ((IS("uid") || IS("deletionTimestamp")) && *v == '"' &&
                   !memchr(v, '\\', (size_t)(ve - v))) {
            /* a plain string, the usual case: no parser needed */
            char *name = ty_strndup(k, klen);
            json_object_set_new(meta, name, json_stringn(v + 1, (size_t)(ve - v - 2)));
            free(name);
        } else if (IS("uid") || IS("deletionTimestamp") || IS("finalizers") ||
                   IS("ownerReferences")) {
            json_t *val = json_loadb(v, (size_t)(ve - v), JSON_DECODE_ANY, NULL);
            if (!val)
                goto bad;
            char *name = ty_strndup(k, klen);
            json_object_set_new(meta, name, val);
            free(name);
        }
#undef IS
        p = ty_json_skip_ws(ve, end);
        if (p < end && *p == '}')
            break;
        if (p >= end || *p != ',')
            goto bad;
        p++;
    }
done:
    index_fill(s, e, meta, typed);
    json_decref(meta);
    if (labels) {
        labelset *l = ty_map_get(seen, labels, (size_t)(labels_end - labels));
        if (!l) {
            json_t *lv = json_loadb(labels, (size_t)(labels_end - labels), 0, NULL);
            l = labelset_get(s, lv);
            json_decref(lv);
            l->refs--; /* labelset_get counted a user; the entry below is that user */
            ty_map_put(seen, labels, (size_t)(labels_end - labels), l);
        }
        labelset_unref(s, e->labels); /* index_fill's empty set */
        l->refs++;
        e->labels = l;
    }
    return 0;
bad:
    json_decref(meta);
    return -1;
}

json_t *ty_store_parse_member(const char *json, size_t len, const char *member)
{
    const char *val;
    size_t vlen;
    if (!ty_json_members(json, len, &member, 1, &val, &vlen) || !val)
        return NULL;
    return json_loadb(val, vlen, JSON_DECODE_ANY, NULL);
}

json_t *ty_store_parse_without(const char *json, size_t len, const char *member)
{
    const char *p = json, *end = json + len, *prev_end = NULL;
    size_t mlen = strlen(member);
    p = ty_json_skip_ws(p, end);
    if (p >= end || *p != '{')
        goto whole;
    p = ty_json_skip_ws(p + 1, end);
    for (;;) {
        const char *mstart = p;
        const char *k = p + 1, *ke = p < end && *p == '"' ? ty_json_skip_string(p, end) : NULL;
        if (!ke)
            goto whole;
        p = ty_json_skip_ws(ke, end);
        if (p >= end || *p != ':')
            goto whole;
        const char *ve = ty_json_skip_value(p + 1, end);
        if (!ve)
            goto whole;
        p = ty_json_skip_ws(ve, end);
        if (p >= end || (*p != ',' && *p != '}'))
            goto whole;
        if ((size_t)(ke - 1 - k) == mlen && memcmp(k, member, mlen) == 0) {
            /* cut the member with the comma after it, or before it when it is the last */
            const char *cut = mstart, *cut_end = *p == ',' ? p + 1 : ve;
            if (*p == '}' && prev_end)
                cut = prev_end;
            TY_AUTOBUF ty_buf b = TY_BUF_INIT;
            ty_buf_add(&b, json, (size_t)(cut - json));
            ty_buf_add(&b, cut_end, (size_t)(end - cut_end));
            return json_loadb(b.data, b.len, 0, NULL);
        }
        if (*p == '}')
            goto whole;
        prev_end = ve;
        p = ty_json_skip_ws(p + 1, end);
    }
whole:
    return json_loadb(json, len, 0, NULL);
}

static int load(ty_store *s, const char *path, ty_error *err)
{
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(s->db, "SELECT resource, namespace, name, rv, json FROM objects", -1,
                           &q, NULL) != SQLITE_OK)
        return db_fail(s, err, "load objects");
    uint64_t max_rv = 0;
    int rc;
    ty_map seen = TY_MAP_INIT;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        const char *resource = (const char *)sqlite3_column_text(q, 0);
        const char *ns = (const char *)sqlite3_column_text(q, 1);
        const char *name = (const char *)sqlite3_column_text(q, 2);
        uint64_t rv = (uint64_t)sqlite3_column_int64(q, 3);
        const char *data = (const char *)sqlite3_column_blob(q, 4);
        size_t len = (size_t)sqlite3_column_bytes(q, 4);
        scanned sc;
        if (!data || scan_text(data, len, &sc) < 0) {
            fail_code(err, TY_STORE_INTERNAL, "store %s: %s %s/%s: not a JSON object with metadata",
                      path, resource, ns, name);
            sqlite3_finalize(q);
            ty_map_free(&seen);
            return -1;
        }
        res *r = res_of(s, resource, true);
        TY_AUTOFREE char *key = ty_asprintf("%s/%s", ns, name);
        entry *e = ty_map_gets(&r->objects, key);
        if (e) { /* cannot happen: (resource, namespace, name) is the primary key */
            index_clear(s, e);
            text_unref(e->t);
        } else {
            e = entry_new(r, key);
            ty_map_puts(&r->objects, key, e);
        }
        e->t = text_new(data, len);
        e->rv = rv;
        if (index_from_text(s, e, sc.meta, sc.meta_end, sc.typed, &seen) < 0) {
            fail_code(err, TY_STORE_INTERNAL, "store %s: %s %s/%s: bad metadata", path,
                      resource, ns, name);
            sqlite3_finalize(q);
            ty_map_free(&seen);
            return -1;
        }
        r->sorted_valid = false;
        if (rv > max_rv)
            max_rv = rv;
    }
    sqlite3_finalize(q);
    ty_map_free(&seen);
    if (rc != SQLITE_DONE)
        return db_fail(s, err, "load objects");
    if (sqlite3_prepare_v2(s->db, "SELECT value FROM meta WHERE key = 'revision'", -1, &q,
                           NULL) != SQLITE_OK)
        return db_fail(s, err, "load revision");
    if (sqlite3_step(q) == SQLITE_ROW) {
        uint64_t rv = strtoull((const char *)sqlite3_column_text(q, 0), NULL, 10);
        if (rv > max_rv)
            max_rv = rv;
    }
    sqlite3_finalize(q);
    /* Deletions leave no row behind; the counter row keeps their revisions. */
    s->revision = s->committed = max_rv;
    s->hist_base = max_rv;
    return 0;
}

static bool match_orphaned(const entry *e, const void *arg)
{
    const ty_store *s = arg;
    if (e->nowners == 0)
        return false;
    for (size_t i = 0; i < e->nowners; i++) {
        const char *uid = e->owners[i].uid;
        if (!uid || uid_get(s, uid))
            return false;
    }
    return true;
}

static bool match_waiting(const entry *e, const void *arg)
{
    (void)arg;
    return e->deleting && e->fg_finalizer;
}

/* A crash can stop a cascade half-way (each step is its own transaction). After loading, the
 * cascades that the stored state still calls for are finished: dependents whose owners are
 * all gone, owners waiting in foreground deletion, terminating namespaces. */
static int resume_cascades(ty_store *s, ty_error *err)
{
    int rc = 0;
    json_t *list = collect(s, match_orphaned, s);
    size_t i;
    json_t *ref;
    json_array_foreach(list, i, ref)
    {
        res *r;
        char *key;
        json_t *obj = lookup_ref(s, ref, &r, &key);
        if (!obj)
            continue;
        ty_store_delete_opts o = {.grace_seconds = -1};
        if (!ty_obj_deleting(obj) && delete_at(s, r, key, &o, NULL, err) < 0)
            rc = -1;
        free(key);
    }
    json_decref(list);
    list = collect(s, match_waiting, NULL);
    json_array_foreach(list, i, ref)
    {
        res *r;
        char *key;
        json_t *obj = lookup_ref(s, ref, &r, &key);
        if (!obj)
            continue;
        TY_AUTOFREE char *uid = ty_strdup(ty_obj_uid(obj));
        free(key);
        if (gc_dependents(s, uid, true, err) < 0 || foreground_check(s, uid, err) < 0)
            rc = -1;
    }
    json_decref(list);
    res *nsr = res_of(s, "namespaces", false);
    json_t *names = json_array();
    const ty_map_slot *o;
    for (size_t j = 0; nsr && ty_map_next(&nsr->objects, &j, &o);)
        if (((const entry *)o->value)->deleting)
            json_array_append_new(names, json_string(o->key));
    json_t *key;
    json_array_foreach(names, i, key)
    {
        json_t *obj = obj_at(s, nsr, json_string_value(key));
        if (obj && delete_namespace(s, nsr, json_string_value(key), obj, false, NULL, err) < 0)
            rc = -1;
    }
    json_decref(names);
    return rc;
}

/* The first write of a connection starts its WAL: SQLite writes the header, syncs it, and
 * syncs the directory too (three fsyncs, up to tens of ms on a disk busy with what the loading
 * left dirty). Done here, with the revision counter as the write, rather than in the commit
 * of the first request after a start. */
static int start_wal(ty_store *s, ty_error *err)
{
    if (db_exec(s->begin_stmt) < 0)
        return db_fail(s, err, "begin");
    if (db_revision(s, s->revision, err) < 0)
        return -1;
    if (db_exec(s->commit_stmt) < 0)
        return db_fail(s, err, "commit");
    return 0;
}

/* The database holds every object (env values included): only its owner reads it. SQLite
 * creates a database 0644 (less the umask) and gives its -wal and -shm the database's mode, so
 * the file is made (or made again) 0600 before SQLite opens it, and -wal/-shm left by an
 * earlier version are fixed too. */
static int make_private(const char *db_path, ty_error *err)
{
    int fd = open(db_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return fail_code(err, TY_STORE_INTERNAL, "open %s: %s", db_path, strerror(errno));
    int rc = fchmod(fd, 0600);
    int e = errno;
    close(fd);
    if (rc < 0)
        return fail_code(err, TY_STORE_INTERNAL, "make %s private (0600): %s", db_path,
                         strerror(e));
    static const char *const sfx[] = {"-wal", "-shm"};
    for (size_t i = 0; i < TY_ARRAY_LEN(sfx); i++) {
        TY_AUTOFREE char *p = ty_asprintf("%s%s", db_path, sfx[i]);
        if (chmod(p, 0600) < 0 && errno != ENOENT)
            return fail_code(err, TY_STORE_INTERNAL, "make %s private (0600): %s", p,
                             strerror(errno));
    }
    return 0;
}

int ty_store_open(const char *db_path, ty_store **out, ty_error *err)
{
    *out = NULL;
    if (make_private(db_path, err) < 0)
        return -1;
    ty_store *s = store_alloc();
    /* SQLite opens its files with O_CLOEXEC. */
    if (sqlite3_open_v2(db_path, &s->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        fail_code(err, TY_STORE_INTERNAL, "open %s: %s", db_path,
                  s->db ? sqlite3_errmsg(s->db) : "out of memory");
        ty_store_free(s);
        return -1;
    }
    sqlite3_busy_timeout(s->db, 1000);
    sqlite3_stmt *q = NULL;
    bool wal = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode=WAL", -1, &q, NULL) == SQLITE_OK &&
               sqlite3_step(q) == SQLITE_ROW &&
               strcmp((const char *)sqlite3_column_text(q, 0), "wal") == 0;
    sqlite3_finalize(q);
    /* The store reads SQLite only when it opens; after that the page cache serves writes
     * (the b-tree pages an insert or an update touches): 512 KiB, not SQLite's 2 MiB. */
    if (!wal || sqlite3_exec(s->db, "PRAGMA synchronous=FULL", NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(s->db, "PRAGMA cache_size=-512", NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(s->db, schema_sql, NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s->db,
                           "INSERT INTO objects (resource, namespace, name, rv, json) "
                           "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (resource, namespace, name) "
                           "DO UPDATE SET rv = excluded.rv, json = excluded.json",
                           -1, &s->put_stmt, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s->db,
                           "DELETE FROM objects WHERE resource = ?1 AND namespace = ?2 AND "
                           "name = ?3",
                           -1, &s->del_stmt, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s->db,
                           "INSERT INTO meta (key, value) VALUES ('revision', ?1) "
                           "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                           -1, &s->rev_stmt, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s->db, "BEGIN IMMEDIATE", -1, &s->begin_stmt, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s->db, "COMMIT", -1, &s->commit_stmt, NULL) != SQLITE_OK) {
        fail_code(err, TY_STORE_INTERNAL, "open %s: %s", db_path,
                  wal ? sqlite3_errmsg(s->db) : "cannot use write-ahead logging");
        ty_store_free(s);
        return -1;
    }
    if (load(s, db_path, err) < 0 || ty_store_ensure_namespace(s, "default", err) < 0 ||
        resume_cascades(s, err) < 0 || start_wal(s, err) < 0) {
        ty_store_free(s);
        return -1;
    }
    trim(s);
    /* Not inside the commits that answers wait for (see checkpoint_int.h). */
    s->ckpt = ty_store_ckpt_start(s->db, db_path, CHECKPOINT_PAGES);
    *out = s;
    return 0;
}

/* ---- the public entry points that may parse: cached trees are dropped only between them ---- */

void ty_store_set_fault(ty_store *s, ty_store_fault_fn fn, void *ctx)
{
    s->fault = fn;
    s->fault_ctx = ctx;
}

/* Every public write starts here. A watch callback runs inside the write that caused it, with
 * the store half-way through that write's consequences (cascades, deletions to finish), so a
 * write from one would interleave with it: enqueue work instead. */
static int write_begin(ty_store *s, const char *op, const char *resource, ty_error *err)
{
    assert(s->in_watch == 0 && "a store watch callback must not write to the store");
    int code = s->fault ? s->fault(s->fault_ctx, op, resource) : 0;
    if (code)
        return fail_code(err, code, "%s %s: injected fault", op, resource);
    return 0;
}

int ty_store_create_ex(ty_store *s, const char *resource, const json_t *obj,
                       const ty_store_write_opts *opts, json_t **out, ty_error *err)
{
    if (write_begin(s, "create", resource, err) < 0)
        return -1;
    enter(s);
    int rc = create_ex_impl(s, resource, json_deep_copy(obj), opts, out, err);
    leave(s);
    return rc;
}

int ty_store_create_owned(ty_store *s, const char *resource, json_t *obj,
                          const ty_store_write_opts *opts, json_t **out, ty_error *err)
{
    if (write_begin(s, "create", resource, err) < 0) {
        json_decref(obj);
        return -1;
    }
    if (obj->refcount > 1) { /* someone else still looks at it: it must not change */
        json_t *copy = json_deep_copy(obj);
        json_decref(obj);
        obj = copy;
    }
    enter(s);
    int rc = create_ex_impl(s, resource, obj, opts, out, err);
    leave(s);
    return rc;
}

json_t *ty_store_get(ty_store *s, const char *resource, const char *ns, const char *name)
{
    enter(s);
    json_t *obj = get_impl(s, resource, ns, name);
    leave(s);
    return obj;
}

int ty_store_update_ex(ty_store *s, const char *resource, const json_t *obj,
                       const ty_store_write_opts *opts, json_t **out, ty_error *err)
{
    if (write_begin(s, "update", resource, err) < 0)
        return -1;
    enter(s);
    int rc = update_ex_impl(s, resource, obj, opts, out, err);
    leave(s);
    return rc;
}

int ty_store_update_status_ex(ty_store *s, const char *resource, const json_t *obj,
                              const ty_store_write_opts *opts, json_t **out, ty_error *err)
{
    if (write_begin(s, "update status", resource, err) < 0)
        return -1;
    enter(s);
    int rc = update_status_ex_impl(s, resource, obj, opts, out, err);
    leave(s);
    return rc;
}

int ty_store_delete_ex(ty_store *s, const char *resource, const char *ns, const char *name,
                       const ty_store_delete_opts *opts, json_t **out, ty_error *err)
{
    if (write_begin(s, "delete", resource, err) < 0)
        return -1;
    enter(s);
    int rc = delete_ex_impl(s, resource, ns, name, opts, out, err);
    leave(s);
    return rc;
}
