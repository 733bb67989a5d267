#include "store/store.h"

#include <inttypes.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "base/buf.h"
#include "base/map.h"
#include "base/mem.h"
#include "base/time.h"

typedef struct watcher {
    int id;
    char *resource; /* NULL: all */
    ty_store_watch_fn fn;
    void *ctx;
} watcher;

/* One resource's objects. The struct lives as long as the store, so uid index entries and
 * history events can point at it. */
typedef struct res {
    char *name;
    ty_map objects; /* "ns/name" -> json_t* (owned reference) */
    /* The map's slots sorted by namespace then name, kept for lists until the next change
     * (sorting 10,000 objects costs milliseconds; the slots' keys and values are borrowed). */
    const ty_map_slot **sorted;
    size_t nsorted;
    bool sorted_valid;
} res;

/* The uid index: owner lookups for garbage collection without a scan. */
typedef struct uid_ref {
    res *r;
    json_t *obj; /* borrowed: the stored object */
} uid_ref;

typedef struct hist_event {
    uint64_t rv;
    ty_event_type type;
    res *r;
    json_t *obj; /* owned reference */
} hist_event;

struct ty_store {
    ty_map resources; /* resource -> res* */
    ty_map uids;      /* uid -> uid_ref* */
    uint64_t revision;
    watcher *watchers;
    size_t nwatchers;
    int next_watch_id;
    /* Ring of the last hist_cap events. Every revision after hist_base is in it. */
    hist_event *hist;
    size_t hist_cap, hist_start, hist_len;
    uint64_t hist_base;
    /* NULL for the in-memory store. */
    sqlite3 *db;
    sqlite3_stmt *put_stmt, *del_stmt, *rev_stmt;
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

/* The cluster-scoped resources trainyard serves (the API kinds' ty_kind_info.namespaced,
 * which the store does not depend on): Kubernetes' and Kueue's. */
static bool cluster_scoped(const char *resource)
{
    static const char *const names[] = {"nodes", "namespaces", "priorityclasses",
                                        "resourceflavors", "clusterqueues",
                                        "workloadpriorityclasses"};
    for (size_t i = 0; i < TY_ARRAY_LEN(names); i++)
        if (strcmp(resource, names[i]) == 0)
            return true;
    return false;
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

static void index_put(ty_store *s, res *r, json_t *obj)
{
    const char *uid = ty_obj_uid(obj);
    if (!uid)
        return;
    uid_ref *u = ty_map_gets(&s->uids, uid);
    if (!u) {
        u = TY_NEW(uid_ref);
        ty_map_puts(&s->uids, uid, u);
    }
    u->r = r;
    u->obj = obj;
}

static void index_del(ty_store *s, const json_t *obj)
{
    const char *uid = ty_obj_uid(obj);
    if (uid)
        free(ty_map_dels(&s->uids, uid));
}

/* ---- history ---- */

static void hist_evict_oldest(ty_store *s)
{
    hist_event *e = &s->hist[s->hist_start];
    s->hist_base = e->rv;
    json_decref(e->obj);
    s->hist_start = (s->hist_start + 1) % s->hist_cap;
    s->hist_len--;
}

static void hist_append(ty_store *s, ty_event_type type, res *r, const json_t *obj, uint64_t rv)
{
    if (s->hist_cap == 0) {
        s->hist_base = rv;
        return;
    }
    if (s->hist_len == s->hist_cap)
        hist_evict_oldest(s);
    if (!s->hist)
        s->hist = ty_calloc(s->hist_cap, sizeof(hist_event));
    s->hist[(s->hist_start + s->hist_len) % s->hist_cap] =
        (hist_event){rv, type, r, json_incref((json_t *)obj)};
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
    const ty_map_slot *slot;
    for (size_t i = 0; ty_map_next(&s->resources, &i, &slot);) {
        res *r = slot->value;
        const ty_map_slot *o;
        for (size_t j = 0; ty_map_next(&r->objects, &j, &o);)
            json_decref(o->value);
        ty_map_free(&r->objects);
        free(r->sorted);
        free(r->name);
        free(r);
    }
    ty_map_free(&s->resources);
    for (size_t i = 0; ty_map_next(&s->uids, &i, &slot);)
        free(slot->value);
    ty_map_free(&s->uids);
    for (size_t i = 0; i < s->hist_len; i++)
        json_decref(s->hist[(s->hist_start + i) % s->hist_cap].obj);
    free(s->hist);
    for (size_t i = 0; i < s->nwatchers; i++)
        free(s->watchers[i].resource);
    free(s->watchers);
    sqlite3_finalize(s->put_stmt);
    sqlite3_finalize(s->del_stmt);
    sqlite3_finalize(s->rev_stmt);
    sqlite3_close(s->db);
    free(s);
}

uint64_t ty_store_revision(const ty_store *s) { return s->revision; }

/* Every event goes through here: into the history, then to the watchers. */
static void notify(ty_store *s, ty_event_type type, res *r, const json_t *obj)
{
    hist_append(s, type, r, obj, s->revision);
    for (size_t i = 0; i < s->nwatchers; i++) {
        watcher *w = &s->watchers[i];
        if (!w->resource || strcmp(w->resource, r->name) == 0)
            w->fn(w->ctx, type, r->name, obj);
    }
}

int ty_store_watch(ty_store *s, const char *resource, ty_store_watch_fn fn, void *ctx)
{
    s->watchers = ty_realloc(s->watchers, (s->nwatchers + 1) * sizeof(watcher));
    s->watchers[s->nwatchers++] =
        (watcher){++s->next_watch_id, resource ? ty_strdup(resource) : NULL, fn, ctx};
    return s->next_watch_id;
}

int ty_store_watch_from(ty_store *s, const char *resource, uint64_t rv, ty_store_watch_fn fn,
                        void *ctx, int *id_out, ty_error *err)
{
    if (rv != 0 && rv < s->hist_base)
        return fail_code(err, TY_STORE_GONE, "too old resource version: %llu (%llu)",
                         (unsigned long long)rv, (unsigned long long)s->hist_base);
    if (rv != 0) {
        for (size_t i = 0; i < s->hist_len; i++) {
            hist_event *e = &s->hist[(s->hist_start + i) % s->hist_cap];
            if (e->rv > rv && (!resource || strcmp(resource, e->r->name) == 0))
                fn(ctx, e->type, e->r->name, e->obj);
        }
    }
    int id = ty_store_watch(s, resource, fn, ctx);
    if (id_out)
        *id_out = id;
    return 0;
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

/* One change of one object and the revision counter, in one transaction: durable (WAL,
 * synchronous=FULL) when this returns 0. json NULL: the row is deleted. */
static int db_write(ty_store *s, const char *resource, const char *ns, const char *name,
                    uint64_t rv, const char *json, ty_error *err)
{
    if (!s->db)
        return 0;
    if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return db_fail(s, err, "begin");
    sqlite3_stmt *st = json ? s->put_stmt : s->del_stmt;
    sqlite3_bind_text(st, 1, resource, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, ns, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
    if (json) {
        sqlite3_bind_int64(st, 4, (sqlite3_int64)rv);
        sqlite3_bind_text(st, 5, json, -1, SQLITE_STATIC);
    }
    int rc = db_step(st);
    if (rc < 0) {
        db_fail(s, err, json ? "write object" : "delete object");
        sqlite3_reset(st);
        return -1;
    }
    sqlite3_reset(st);
    sqlite3_bind_int64(s->rev_stmt, 1, (sqlite3_int64)rv);
    rc = db_step(s->rev_stmt);
    if (rc < 0) {
        db_fail(s, err, "write revision");
        sqlite3_reset(s->rev_stmt);
        return -1;
    }
    sqlite3_reset(s->rev_stmt);
    if (sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        return db_fail(s, err, "commit");
    return 0;
}

/* ---- committing changes: SQLite first, then memory, then the event ---- */

static void stamp_revision(json_t *meta, uint64_t rv)
{
    char buf[24];
    snprintf(buf, sizeof buf, "%" PRIu64, rv);
    json_object_set_new(meta, "resourceVersion", json_string(buf));
}

/* Stores `next` (owned; consumed even on failure) under key with the next revision. */
static int commit_put(ty_store *s, res *r, const char *key, json_t *next, ty_event_type type,
                      ty_error *err)
{
    uint64_t rv = s->revision + 1;
    stamp_revision(json_object_get(next, "metadata"), rv);
    if (s->db) {
        char *text = json_dumps(next, JSON_COMPACT);
        const char *ns = ty_obj_namespace(next);
        int rc = db_write(s, r->name, ns ? ns : "", ty_obj_name(next), rv, text, err);
        free(text);
        if (rc < 0) {
            json_decref(next);
            return -1;
        }
    }
    s->revision = rv;
    json_t *prev = ty_map_puts(&r->objects, key, next);
    r->sorted_valid = false;
    index_put(s, r, next);
    json_decref(prev);
    notify(s, type, r, next);
    return 0;
}

static void after_removal(ty_store *s, res *r, const json_t *removed);

/* Removes the object at key; *out (optional) gets the DELETED event's object. */
static int commit_remove(ty_store *s, res *r, const char *key, json_t **out, ty_error *err)
{
    json_t *stored = ty_map_gets(&r->objects, key);
    if (!stored)
        return 0;
    uint64_t rv = s->revision + 1;
    const char *ns = ty_obj_namespace(stored);
    if (db_write(s, r->name, ns ? ns : "", ty_obj_name(stored), rv, NULL, err) < 0)
        return -1;
    ty_map_dels(&r->objects, key);
    r->sorted_valid = false;
    index_del(s, stored);
    s->revision = rv;
    /* The DELETED event carries the deletion's resourceVersion, on a copy: callers may still
     * hold the stored object, which must not change under them. */
    json_t *obj = json_copy(stored);
    json_t *meta = json_copy(json_object_get(stored, "metadata"));
    json_object_set_new(obj, "metadata", meta);
    json_decref(stored);
    stamp_revision(meta, rv);
    notify(s, TY_EVENT_DELETED, r, obj);
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

/* [{resource, namespace, name}] of every object matching; collected before acting because
 * acting changes the maps. */
typedef bool (*match_fn)(const json_t *obj, const void *arg);

static json_t *collect(ty_store *s, match_fn match, const void *arg)
{
    json_t *found = json_array();
    const ty_map_slot *slot;
    for (size_t i = 0; ty_map_next(&s->resources, &i, &slot);) {
        res *r = slot->value;
        const ty_map_slot *o;
        for (size_t j = 0; ty_map_next(&r->objects, &j, &o);) {
            if (match(o->value, arg))
                json_array_append_new(found, json_pack("{s:s, s:s?, s:s}", "resource", r->name,
                                                       "namespace", ty_obj_namespace(o->value),
                                                       "name", ty_obj_name(o->value)));
        }
    }
    return found;
}

static bool match_owned(const json_t *obj, const void *uid) { return ty_obj_owned_by(obj, uid); }

static bool match_blocking(const json_t *obj, const void *uid)
{
    return json_is_true(json_object_get(owner_ref(obj, uid), "blockOwnerDeletion"));
}

static bool match_in_namespace(const json_t *obj, const void *ns)
{
    const char *ons = ty_obj_namespace(obj);
    return ons && strcmp(ons, ns) == 0;
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

/* The stored object a {resource, namespace, name} entry names, and its key. */
static json_t *lookup_ref(ty_store *s, const json_t *ref, res **rp, char **keyp)
{
    res *r = res_of(s, REF_FIELD(ref, "resource"), false);
    char *key = object_key(r->name, REF_FIELD(ref, "namespace"), REF_FIELD(ref, "name"));
    json_t *obj = ty_map_gets(&r->objects, key);
    if (!obj) {
        free(key);
        return NULL;
    }
    *rp = r;
    *keyp = key;
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
        if (uid && strcmp(uid, except) != 0 && ty_map_gets(&s->uids, uid))
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
    json_t *deps = collect(s, match_owned, uid);
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
            bool fg = foreground && any_match(s, match_owned, ty_obj_uid(obj));
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
    uid_ref *u = ty_map_gets(&s->uids, owner_uid);
    if (!u || !ty_obj_deleting(u->obj) || !has_finalizer(u->obj, "foregroundDeletion"))
        return 0;
    if (any_match(s, match_blocking, owner_uid))
        return 0;
    res *r = u->r;
    TY_AUTOFREE char *key = object_key(r->name, ty_obj_namespace(u->obj), ty_obj_name(u->obj));
    json_t *next = json_deep_copy(u->obj);
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
    json_t *nsobj = r ? ty_map_gets(&r->objects, key) : NULL;
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

/* The API server's defaulting of the core kinds that clients read back: a port's protocol is
 * TCP (kubectl describe pod prints "23456/TCP", a port without one "23456/"). Pods and
 * services are created by the controllers straight into the store, so it is done here. */
static void default_core(const char *resource, json_t *obj)
{
    json_t *spec = json_object_get(obj, "spec");
    if (strcmp(resource, "services") == 0) {
        default_protocol(json_object_get(spec, "ports"));
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

int ty_store_create_ex(ty_store *s, const char *resource, const json_t *in,
                       const ty_store_write_opts *opts, json_t **out, ty_error *err)
{
    opts = opts ? opts : &no_write_opts;
    if (out)
        *out = NULL;
    const char *name = ty_obj_name(in);
    if (!name || !*name)
        return fail_code(err, TY_STORE_INVALID, "%s: metadata.name: Required value", resource);
    json_t *obj = json_deep_copy(in);
    json_t *meta = json_object_get(obj, "metadata");
    if (cluster_scoped(resource))
        json_object_del(meta, "namespace");
    else if (!json_string_value(json_object_get(meta, "namespace")))
        json_object_set_new(meta, "namespace", json_string("default"));
    const char *ns = ty_obj_namespace(obj);
    if (ns) {
        res *nsr = res_of(s, "namespaces", false);
        TY_AUTOFREE char *nskey = object_key("namespaces", NULL, ns);
        json_t *nsobj = nsr ? ty_map_gets(&nsr->objects, nskey) : NULL;
        if (!nsobj || ty_obj_deleting(nsobj)) {
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
        json_decref(obj);
        return fail_code(err, TY_STORE_CONFLICT, "%s \"%s\" already exists", resource, name);
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

json_t *ty_store_get(ty_store *s, const char *resource, const char *ns, const char *name)
{
    res *r = res_of(s, resource, false);
    if (!r)
        return NULL;
    TY_AUTOFREE char *key = object_key(resource, ns, name);
    return json_incref(ty_map_gets(&r->objects, key));
}

static json_t *lookup_for_write(ty_store *s, const char *resource, const json_t *obj, res **rp,
                                char **keyp, ty_error *err)
{
    res *r = res_of(s, resource, false);
    const char *name = ty_obj_name(obj);
    char *key = object_key(resource, ty_obj_namespace(obj), name ? name : "");
    json_t *cur = r ? ty_map_gets(&r->objects, key) : NULL;
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

int ty_store_update_ex(ty_store *s, const char *resource, const json_t *obj,
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
    return finish_update(s, r, key, cur, next, opts, out, err);
}

int ty_store_update(ty_store *s, const char *resource, const json_t *obj, json_t **out,
                    ty_error *err)
{
    return ty_store_update_ex(s, resource, obj, NULL, out, err);
}

int ty_store_update_status_ex(ty_store *s, const char *resource, const json_t *obj,
                              const ty_store_write_opts *opts, json_t **out, ty_error *err)
{
    res *r;
    char *key = NULL;
    json_t *cur = lookup_for_write(s, resource, obj, &r, &key, err);
    if (!cur)
        return -1;
    json_t *next = json_deep_copy(cur);
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
    json_t *deps = collect(s, match_owned, uid);
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
    const char *name = ty_obj_name(cur);
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
    json_t *cur = ty_map_gets(&r->objects, key);
    TY_AUTOFREE char *uid = ty_strdup(ty_obj_uid(cur));
    if (orphan && !o->dry_run) {
        if (orphan_dependents(s, uid, err) < 0)
            return -1;
        cur = ty_map_gets(&r->objects, key);
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

int ty_store_delete_ex(ty_store *s, const char *resource, const char *ns, const char *name,
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
    json_t *cur = r ? ty_map_gets(&r->objects, key) : NULL;
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

json_t *ty_store_list(ty_store *s, const char *resource, const char *ns)
{
    json_t *list = json_array();
    res *r = res_of(s, resource, false);
    if (!r)
        return list;
    sort_objects(r);
    size_t nslen = ns ? strlen(ns) : 0;
    for (size_t i = 0; i < r->nsorted; i++) {
        const char *key = r->sorted[i]->key;
        if (!ns || (nslen && strncmp(key, ns, nslen) == 0 && key[nslen] == '/'))
            json_array_append(list, r->sorted[i]->value);
    }
    return list;
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

static int load(ty_store *s, const char *path, ty_error *err)
{
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(s->db, "SELECT resource, namespace, name, rv, json FROM objects", -1,
                           &q, NULL) != SQLITE_OK)
        return db_fail(s, err, "load objects");
    uint64_t max_rv = 0;
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        const char *resource = (const char *)sqlite3_column_text(q, 0);
        const char *ns = (const char *)sqlite3_column_text(q, 1);
        const char *name = (const char *)sqlite3_column_text(q, 2);
        uint64_t rv = (uint64_t)sqlite3_column_int64(q, 3);
        const char *text = (const char *)sqlite3_column_blob(q, 4);
        json_error_t je;
        json_t *obj = json_loadb(text, (size_t)sqlite3_column_bytes(q, 4), 0, &je);
        if (!json_is_object(obj)) {
            fail_code(err, TY_STORE_INTERNAL, "store %s: %s %s/%s: %s", path, resource, ns,
                      name, obj ? "not an object" : je.text);
            json_decref(obj);
            sqlite3_finalize(q);
            return -1;
        }
        res *r = res_of(s, resource, true);
        char *key = ty_asprintf("%s/%s", ns, name);
        json_decref(ty_map_puts(&r->objects, key, obj));
        r->sorted_valid = false;
        free(key);
        index_put(s, r, obj);
        if (rv > max_rv)
            max_rv = rv;
    }
    sqlite3_finalize(q);
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
    s->revision = max_rv;
    s->hist_base = max_rv;
    return 0;
}

static bool match_orphaned(const json_t *obj, const void *arg)
{
    const ty_store *s = arg;
    json_t *refs = json_object_get(json_object_get(obj, "metadata"), "ownerReferences");
    if (json_array_size(refs) == 0)
        return false;
    size_t i;
    json_t *ref;
    json_array_foreach(refs, i, ref)
    {
        const char *uid = REF_FIELD(ref, "uid");
        if (!uid || ty_map_gets(&s->uids, uid))
            return false;
    }
    return true;
}

static bool match_waiting(const json_t *obj, const void *arg)
{
    (void)arg;
    return ty_obj_deleting(obj) && has_finalizer(obj, "foregroundDeletion");
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
        if (ty_obj_deleting(o->value))
            json_array_append_new(names, json_string(o->key));
    json_t *key;
    json_array_foreach(names, i, key)
    {
        json_t *obj = ty_map_gets(&nsr->objects, json_string_value(key));
        if (obj && delete_namespace(s, nsr, json_string_value(key), obj, false, NULL, err) < 0)
            rc = -1;
    }
    json_decref(names);
    return rc;
}

int ty_store_open(const char *db_path, ty_store **out, ty_error *err)
{
    *out = NULL;
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
    if (!wal || sqlite3_exec(s->db, "PRAGMA synchronous=FULL", NULL, NULL, NULL) != SQLITE_OK ||
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
                           -1, &s->rev_stmt, NULL) != SQLITE_OK) {
        fail_code(err, TY_STORE_INTERNAL, "open %s: %s", db_path,
                  wal ? sqlite3_errmsg(s->db) : "cannot use write-ahead logging");
        ty_store_free(s);
        return -1;
    }
    if (load(s, db_path, err) < 0 || ty_store_ensure_namespace(s, "default", err) < 0 ||
        resume_cascades(s, err) < 0) {
        ty_store_free(s);
        return -1;
    }
    *out = s;
    return 0;
}
