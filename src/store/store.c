#include "store/store.h"

#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "api/kinds.h"
#include "base/jsontext.h"
#include "base/buf.h"
#include "base/log.h"
#include "base/map.h"
#include "base/mem.h"
#include "base/time.h"
#include "store/store_int.h"
#include "store/writer.h"

/* A resource's scope is its kind's (the registry, api/kinds.h); a resource no kind declares
 * is namespaced. */
bool st_cluster_scoped(const char *resource)
{
    const ty_kind_info *k = ty_kind_of_resource(resource);
    return k && !k->namespaced;
}

res *st_res_of(ty_store *s, const char *resource, bool create)
{
    res *r = ty_map_gets(&s->resources, resource);
    if (!r && create) {
        r = TY_NEW(res);
        r->name = ty_strdup(resource);
        ty_map_puts(&s->resources, resource, r);
    }
    return r;
}

char *st_object_key(const char *resource, const char *ns, const char *name)
{
    return ty_asprintf("%s/%s", st_cluster_scoped(resource) ? "" : (ns ? ns : "default"), name);
}

ty_store *st_store_alloc(void)
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
            st_entry_free(s, o->value);
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
        st_text_unref(e->t);
        if (e->prev)
            st_text_unref(e->prev);
    }
    free(s->hist);
    for (size_t i = 0; i < s->nheld; i++) {
        json_decref(s->held[i].obj);
        if (s->held[i].prev)
            st_text_unref(s->held[i].prev);
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

/* ---- object helpers ---- */

const char *st_meta_str(const json_t *obj, const char *field)
{
    return json_string_value(json_object_get(json_object_get(obj, "metadata"), field));
}

const char *ty_obj_name(const json_t *obj) { return st_meta_str(obj, "name"); }
const char *ty_obj_namespace(const json_t *obj) { return st_meta_str(obj, "namespace"); }
const char *ty_obj_uid(const json_t *obj) { return st_meta_str(obj, "uid"); }
bool ty_obj_deleting(const json_t *obj) { return st_meta_str(obj, "deletionTimestamp") != NULL; }

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

bool st_has_finalizer(const json_t *obj, const char *name)
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

void st_now_string(char *out, size_t cap)
{
    ty_time_format_rfc3339(ty_time_now_ns(), out, cap, 0);
}

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

/* Stores `next` (owned; consumed even on failure) under key with the next revision; a
 * mirrored object keeps the resourceVersion it came with (the cluster's). */
static int commit_put(ty_store *s, res *r, const char *key, json_t *next, ty_event_type type,
                      bool mirrored, ty_error *err)
{
    uint64_t rv = s->revision + 1;
    json_t *meta = json_object_get(next, "metadata");
    if (!mirrored)
        stamp_revision(meta, rv);
    text *t = st_text_dump(next);
    if (t->len > TY_STORE_MAX_OBJECT_BYTES) {
        ty_fail_code(err, TY_STORE_TOO_LARGE,
                     "request is too large: the object is %zu bytes, more than the %u an "
                     "object may have", t->len, TY_STORE_MAX_OBJECT_BYTES);
        st_text_unref(t);
        json_decref(next);
        return -1;
    }
    if (s->db && !s->deferred && st_db_write(s, r->name, key, rv, t->data, t->len, err) < 0) {
        st_text_unref(t);
        json_decref(next);
        return -1;
    }
    if (s->deferred)
        st_mark_dirty(s, r, key);
    s->revision = rv;
    if (!s->deferred)
        s->committed = rv;
    entry *e = ty_map_gets(&r->objects, key);
    text *prev = NULL; /* owned until the event is out */
    if (e) {
        st_tree_drop(s, e);
        st_index_clear(s, e);
        prev = e->t;
    } else {
        e = st_entry_new(r, key);
        ty_map_puts(&r->objects, key, e);
        r->sorted_valid = false;
    }
    e->t = t;
    e->rv = rv;
    st_index_fill(s, e, meta, has_kind(next));
    st_tree_set(s, e, next);
    st_notify(s, type, r, next, t, prev);
    if (prev)
        st_text_unref(prev);
    return 0;
}

int st_commit_put(ty_store *s, res *r, const char *key, json_t *next, ty_event_type type,
                  ty_error *err)
{
    return commit_put(s, r, key, next, type, false, err);
}

/* Removes the object at key; *out (optional) gets the DELETED event's object. */
int st_commit_remove(ty_store *s, res *r, const char *key, json_t **out, ty_error *err)
{
    entry *e = ty_map_gets(&r->objects, key);
    if (!e)
        return 0;
    uint64_t rv = s->revision + 1;
    if (s->db && !s->deferred && st_db_write(s, r->name, key, rv, NULL, 0, err) < 0)
        return -1;
    if (s->deferred)
        st_mark_dirty(s, r, key);
    json_t *stored = json_incref(st_entry_tree(s, e));
    text *prev = st_text_ref(e->t);
    ty_map_dels(&r->objects, key);
    r->sorted_valid = false;
    st_entry_free(s, e);
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
    text *t = st_text_dump(obj);
    st_notify(s, TY_EVENT_DELETED, r, obj, t, prev);
    st_text_unref(t);
    st_text_unref(prev);
    if (!s->mirror) /* a mirror's cascades are the cluster's: they arrive as events */
        st_after_removal(s, r, obj);
    if (out)
        *out = obj;
    else
        json_decref(obj);
    return 0;
}

/* Finalizers gone from an object being deleted: it goes. Returns 1 when removed. */
int st_maybe_finish_deletion(ty_store *s, res *r, const char *key, json_t *obj,
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
    return st_commit_remove(s, r, key, NULL, err) < 0 ? -1 : 1;
}

/* ---- writes ---- */

static const ty_store_write_opts no_write_opts;

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
        return ty_fail_code(err, TY_STORE_INVALID, "%s: metadata.name: Required value", resource);
    }
    json_t *meta = json_object_get(obj, "metadata");
    if (st_cluster_scoped(resource))
        json_object_del(meta, "namespace");
    else if (!json_string_value(json_object_get(meta, "namespace")))
        json_object_set_new(meta, "namespace", json_string("default"));
    const char *ns = ty_obj_namespace(obj);
    if (ns) {
        res *nsr = st_res_of(s, "namespaces", false);
        TY_AUTOFREE char *nskey = st_object_key("namespaces", NULL, ns);
        entry *nsobj = nsr ? ty_map_gets(&nsr->objects, nskey) : NULL;
        if (!nsobj || nsobj->deleting) {
            if (!nsobj)
                ty_fail_code(err, TY_STORE_NOT_FOUND, "namespaces \"%s\" not found", ns);
            else
                ty_fail_code(err, TY_STORE_FORBIDDEN,
                             "%s \"%s\" is forbidden: unable to create new content in namespace "
                             "%s because it is being terminated",
                             resource, name, ns);
            json_decref(obj);
            return -1;
        }
    }
    res *r = st_res_of(s, resource, true);
    TY_AUTOFREE char *key = st_object_key(resource, ns, name);
    if (ty_map_gets(&r->objects, key)) {
        ty_fail_code(err, TY_STORE_CONFLICT, "%s \"%s\" already exists", resource, name);
        json_decref(obj); /* name points into it */
        return -1;
    }
    char uid[37], now[40];
    new_uid(uid);
    st_now_string(now, sizeof now);
    json_object_set_new(meta, "uid", json_string(uid));
    json_object_set_new(meta, "creationTimestamp", json_string(now));
    json_object_set_new(meta, "generation", json_integer(1));
    json_object_del(meta, "deletionTimestamp");
    json_object_del(meta, "deletionGracePeriodSeconds");
    json_object_del(meta, "resourceVersion");
    /* The API server's defaults that clients read back, whoever creates the object: the
     * controllers create pods and services straight into the store. A Service's cluster IP
     * first: the defaults mirror it into clusterIPs. */
    if (strcmp(resource, "services") == 0 && ty_svcip_prepare(&s->svcip, s, obj, NULL, err) < 0) {
        json_decref(obj);
        return -1;
    }
    const ty_kind_info *kind = ty_kind_of_resource(resource);
    if (kind && kind->create_defaults)
        kind->create_defaults(obj);
    if (opts->dry_run) {
        if (out)
            *out = obj;
        else
            json_decref(obj);
        return 0;
    }
    if (st_commit_put(s, r, key, json_incref(obj), TY_EVENT_ADDED, err) < 0) {
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
    res *r = st_res_of(s, resource, false);
    if (!r)
        return NULL;
    TY_AUTOFREE char *key = st_object_key(resource, ns, name);
    entry *e = ty_map_gets(&r->objects, key);
    return e ? json_incref(st_entry_tree(s, e)) : NULL;
}

static json_t *lookup_for_write(ty_store *s, const char *resource, const json_t *obj, res **rp,
                                char **keyp, ty_error *err)
{
    res *r = st_res_of(s, resource, false);
    const char *name = ty_obj_name(obj);
    char *key = st_object_key(resource, ty_obj_namespace(obj), name ? name : "");
    json_t *cur = st_obj_at(s, r, key);
    if (!cur) {
        free(key);
        ty_fail_code(err, TY_STORE_NOT_FOUND, "%s \"%s\" not found", resource, name ? name : "");
        return NULL;
    }
    const char *rv = st_meta_str(obj, "resourceVersion");
    if (rv && *rv && strcmp(rv, st_meta_str(cur, "resourceVersion")) != 0) {
        free(key);
        ty_fail_code(err, TY_STORE_CONFLICT,
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
    int rc = st_commit_put(s, r, key, json_incref(next), TY_EVENT_MODIFIED, err);
    if (rc == 0) {
        int removed = st_maybe_finish_deletion(s, r, key, next, err);
        if (removed < 0)
            rc = -1;
        else if (!removed && out)
            *out = json_incref(next);
        if (rc == 0 && !removed)
            st_owners_check(s, prev, NULL);
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
    res *r = st_res_of(s, resource, false);
    if (!r)
        return list;
    size_t lo, hi;
    ns_range(r, ns, &lo, &hi);
    for (size_t i = lo; i < hi; i++)
        json_array_append_new(list, st_entry_tree_ref(r->sorted[i]->value));
    return list;
}

json_t *ty_store_list(ty_store *s, const char *resource, const char *ns)
{
    st_enter(s);
    json_t *list = list_impl(s, resource, ns);
    st_leave(s);
    return list;
}

static int compare_entry_keys(const void *a, const void *b)
{
    return strcmp((*(entry *const *)a)->key, (*(entry *const *)b)->key);
}

json_t *ty_store_list_owned(ty_store *s, const char *resource, const char *owner_uid)
{
    json_t *list = json_array();
    const dep_list *d = owner_uid ? st_owned_by(s, owner_uid) : NULL;
    if (!d)
        return list;
    entry **v = ty_malloc(d->n * sizeof(entry *));
    size_t n = 0;
    for (size_t i = 0; i < d->n; i++)
        if (strcmp(d->v[i]->r->name, resource) == 0)
            v[n++] = d->v[i];
    qsort(v, n, sizeof(entry *), compare_entry_keys);
    st_enter(s);
    for (size_t i = 0; i < n; i++)
        json_array_append(list, st_entry_tree(s, v[i]));
    st_leave(s);
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
    res *r = st_res_of(s, resource, false);
    if (!r)
        return false;
    TY_AUTOFREE char *key = st_object_key(resource, ns, name);
    entry *e = ty_map_gets(&r->objects, key);
    if (e)
        item_of(e, out);
    return e != NULL;
}

size_t ty_store_list_items(ty_store *s, const char *resource, const char *ns,
                           ty_store_item **out)
{
    res *r = st_res_of(s, resource, false);
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
    res *r = st_res_of(s, resource, false);
    size_t n = 0;
    const ty_map_slot *o;
    while (r && n < max && ty_map_next(&r->objects, pos, &o))
        item_of(o->value, &out[n++]);
    return n;
}

/* ---- opening ---- */

int ty_store_set_service_cidr(ty_store *s, const char *cidr, ty_error *err)
{
    return ty_svcip_set_cidr(&s->svcip, s, cidr, err);
}

void ty_store_service_first_ip(ty_store *s, char out[16])
{
    ty_svcip_first(&s->svcip, out);
}

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
    ty_store *s = st_store_alloc();
    ty_store_ensure_namespace(s, "default", NULL); /* cannot fail without SQLite */
    return s;
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
        return ty_fail_code(err, code, "%s %s: injected fault", op, resource);
    return 0;
}

int ty_store_create_ex(ty_store *s, const char *resource, const json_t *obj,
                       const ty_store_write_opts *opts, json_t **out, ty_error *err)
{
    if (write_begin(s, "create", resource, err) < 0)
        return -1;
    st_enter(s);
    int rc = create_ex_impl(s, resource, json_deep_copy(obj), opts, out, err);
    st_leave(s);
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
    st_enter(s);
    int rc = create_ex_impl(s, resource, obj, opts, out, err);
    st_leave(s);
    return rc;
}

json_t *ty_store_get(ty_store *s, const char *resource, const char *ns, const char *name)
{
    st_enter(s);
    json_t *obj = get_impl(s, resource, ns, name);
    st_leave(s);
    return obj;
}

int ty_store_update_ex(ty_store *s, const char *resource, const json_t *obj,
                       const ty_store_write_opts *opts, json_t **out, ty_error *err)
{
    if (write_begin(s, "update", resource, err) < 0)
        return -1;
    st_enter(s);
    int rc = update_ex_impl(s, resource, obj, opts, out, err);
    st_leave(s);
    return rc;
}

int ty_store_update_status_ex(ty_store *s, const char *resource, const json_t *obj,
                              const ty_store_write_opts *opts, json_t **out, ty_error *err)
{
    if (write_begin(s, "update status", resource, err) < 0)
        return -1;
    st_enter(s);
    int rc = update_status_ex_impl(s, resource, obj, opts, out, err);
    st_leave(s);
    return rc;
}

int ty_store_delete_ex(ty_store *s, const char *resource, const char *ns, const char *name,
                       const ty_store_delete_opts *opts, json_t **out, ty_error *err)
{
    if (write_begin(s, "delete", resource, err) < 0)
        return -1;
    st_enter(s);
    int rc = st_delete_ex_impl(s, resource, ns, name, opts, out, err);
    st_leave(s);
    return rc;
}

/* ---- the mirror of a cluster (store/writer.h) ---- */

int ty_store_mirror_put(ty_store *s, const char *resource, const json_t *obj, ty_error *err)
{
    assert(s->in_watch == 0 && "a store watch callback must not write to the store");
    const char *name = ty_obj_name(obj);
    if (!name || !json_is_object(json_object_get(obj, "metadata")))
        return ty_fail_code(err, TY_STORE_INVALID, "mirror %s: an object without a name",
                            resource);
    s->mirror = true;
    st_enter(s);
    res *r = st_res_of(s, resource, true);
    const char *ns = st_cluster_scoped(resource) ? "" : ty_obj_namespace(obj);
    char *key = st_object_key(resource, ns ? ns : "", name);
    bool exists = ty_map_gets(&r->objects, key) != NULL;
    int rc = commit_put(s, r, key, json_deep_copy(obj),
                        exists ? TY_EVENT_MODIFIED : TY_EVENT_ADDED, true, err);
    free(key);
    st_leave(s);
    return rc;
}

void ty_store_mirror_remove(ty_store *s, const char *resource, const char *ns, const char *name)
{
    assert(s->in_watch == 0 && "a store watch callback must not write to the store");
    s->mirror = true;
    st_enter(s);
    res *r = st_res_of(s, resource, true);
    char *key = st_object_key(resource, st_cluster_scoped(resource) ? "" : (ns ? ns : ""), name);
    st_commit_remove(s, r, key, NULL, NULL);
    free(key);
    st_leave(s);
}

void ty_store_set_writer(ty_store *s, const ty_writer_ops *ops, void *ctx)
{
    s->writer = ops;
    s->writer_ctx = ctx;
}

bool ty_store_remote(const ty_store *s) { return s->writer != NULL; }

int ty_write_create(ty_store *s, const char *resource, const json_t *obj, json_t **out,
                    ty_error *err)
{
    if (!s->writer)
        return ty_store_create(s, resource, obj, out, err);
    if (out)
        *out = NULL;
    return s->writer->create(s->writer_ctx, resource, obj, err);
}

int ty_write_create_owned(ty_store *s, const char *resource, json_t *obj, json_t **out,
                          ty_error *err)
{
    if (!s->writer)
        return ty_store_create_owned(s, resource, obj, NULL, out, err);
    int rc = ty_write_create(s, resource, obj, out, err);
    json_decref(obj);
    return rc;
}

int ty_write_update(ty_store *s, const char *resource, const json_t *obj, json_t **out,
                    ty_error *err)
{
    if (!s->writer)
        return ty_store_update(s, resource, obj, out, err);
    if (out)
        *out = NULL;
    return s->writer->update(s->writer_ctx, resource, obj, err);
}

int ty_write_update_status(ty_store *s, const char *resource, const json_t *obj, json_t **out,
                           ty_error *err)
{
    if (!s->writer)
        return ty_store_update_status(s, resource, obj, out, err);
    if (out)
        *out = NULL;
    return s->writer->update_status(s->writer_ctx, resource, obj, err);
}

int ty_write_delete(ty_store *s, const char *resource, const char *ns, const char *name,
                    int64_t grace_seconds, ty_error *err)
{
    if (!s->writer)
        return ty_store_delete(s, resource, ns, name, grace_seconds, err);
    return s->writer->remove(s->writer_ctx, resource, ns, name, grace_seconds, err);
}

int ty_write_bind(ty_store *s, const json_t *pod, const char *node, json_t **out, ty_error *err)
{
    if (out)
        *out = NULL;
    if (s->writer)
        return s->writer->bind(s->writer_ctx, pod, node, err);
    json_t *next = json_deep_copy(pod);
    json_t *spec = json_object_get(next, "spec");
    if (!json_is_object(spec))
        json_object_set_new(next, "spec", spec = json_object());
    json_object_set_new(spec, "nodeName", json_string(node));
    int rc = ty_store_update(s, "pods", next, out, err);
    json_decref(next);
    return rc;
}
