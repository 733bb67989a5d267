#include "store/store.h"

#include <inttypes.h>
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

struct ty_store {
    ty_map resources; /* resource -> ty_map* of "ns/name" -> json_t* (owned reference) */
    uint64_t revision;
    watcher *watchers;
    size_t nwatchers;
    int next_watch_id;
};

static bool cluster_scoped(const char *resource)
{
    return strcmp(resource, "nodes") == 0 || strcmp(resource, "namespaces") == 0;
}

static ty_map *objects_of(ty_store *s, const char *resource, bool create)
{
    ty_map *m = ty_map_gets(&s->resources, resource);
    if (!m && create) {
        m = TY_NEW(ty_map);
        ty_map_puts(&s->resources, resource, m);
    }
    return m;
}

static char *object_key(const char *resource, const char *ns, const char *name)
{
    return ty_asprintf("%s/%s", cluster_scoped(resource) ? "" : (ns ? ns : "default"), name);
}

ty_store *ty_store_new(void) { return TY_NEW(ty_store); }

void ty_store_free(ty_store *s)
{
    if (!s)
        return;
    const ty_map_slot *slot;
    for (size_t i = 0; ty_map_next(&s->resources, &i, &slot);) {
        ty_map *m = slot->value;
        const ty_map_slot *o;
        for (size_t j = 0; ty_map_next(m, &j, &o);)
            json_decref(o->value);
        ty_map_free(m);
        free(m);
    }
    ty_map_free(&s->resources);
    for (size_t i = 0; i < s->nwatchers; i++)
        free(s->watchers[i].resource);
    free(s->watchers);
    free(s);
}

uint64_t ty_store_revision(const ty_store *s) { return s->revision; }

static void notify(ty_store *s, ty_event_type type, const char *resource, const json_t *obj)
{
    for (size_t i = 0; i < s->nwatchers; i++) {
        watcher *w = &s->watchers[i];
        if (!w->resource || strcmp(w->resource, resource) == 0)
            w->fn(w->ctx, type, resource, obj);
    }
}

int ty_store_watch(ty_store *s, const char *resource, ty_store_watch_fn fn, void *ctx)
{
    s->watchers = ty_realloc(s->watchers, (s->nwatchers + 1) * sizeof(watcher));
    s->watchers[s->nwatchers++] =
        (watcher){++s->next_watch_id, resource ? ty_strdup(resource) : NULL, fn, ctx};
    return s->next_watch_id;
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

bool ty_obj_owned_by(const json_t *obj, const char *owner_uid)
{
    json_t *refs = json_object_get(json_object_get(obj, "metadata"), "ownerReferences");
    size_t i;
    json_t *ref;
    json_array_foreach(refs, i, ref)
    {
        const char *uid = json_string_value(json_object_get(ref, "uid"));
        if (uid && strcmp(uid, owner_uid) == 0)
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

static void set_revision(ty_store *s, json_t *meta)
{
    char rv[24];
    snprintf(rv, sizeof rv, "%" PRIu64, ++s->revision);
    json_object_set_new(meta, "resourceVersion", json_string(rv));
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

static const char *object_kind_name(const char *resource) { return resource; }

int ty_store_create(ty_store *s, const char *resource, const json_t *in, json_t **out,
                    ty_error *err)
{
    json_t *obj = json_deep_copy(in);
    json_t *meta = json_object_get(obj, "metadata");
    if (!json_is_object(meta)) {
        meta = json_object();
        json_object_set_new(obj, "metadata", meta);
    }
    const char *name = json_string_value(json_object_get(meta, "name"));
    if (!name || !*name) {
        json_decref(obj);
        ty_fail(err, "%s: metadata.name: Required value", object_kind_name(resource));
        if (err)
            err->code = TY_STORE_INVALID;
        return -1;
    }
    if (cluster_scoped(resource))
        json_object_del(meta, "namespace");
    else if (!json_string_value(json_object_get(meta, "namespace")))
        json_object_set_new(meta, "namespace", json_string("default"));
    ty_map *objects = objects_of(s, resource, true);
    TY_AUTOFREE char *key = object_key(resource, ty_obj_namespace(obj), name);
    if (ty_map_gets(objects, key)) {
        ty_fail(err, "%s \"%s\" already exists", resource, name); /* name is obj's */
        json_decref(obj);
        if (err)
            err->code = TY_STORE_CONFLICT;
        return -1;
    }
    char uid[37], now[40];
    new_uid(uid);
    now_string(now, sizeof now);
    json_object_set_new(meta, "uid", json_string(uid));
    json_object_set_new(meta, "creationTimestamp", json_string(now));
    json_object_set_new(meta, "generation", json_integer(1));
    json_object_del(meta, "deletionTimestamp");
    set_revision(s, meta);
    ty_map_puts(objects, key, obj);
    if (out)
        *out = json_incref(obj);
    notify(s, TY_EVENT_ADDED, resource, obj);
    return 0;
}

json_t *ty_store_get(ty_store *s, const char *resource, const char *ns, const char *name)
{
    ty_map *objects = objects_of(s, resource, false);
    if (!objects)
        return NULL;
    TY_AUTOFREE char *key = object_key(resource, ns, name);
    return json_incref(ty_map_gets(objects, key));
}

static json_t *lookup_for_write(ty_store *s, const char *resource, const json_t *obj,
                                char **keyp, ty_error *err)
{
    ty_map *objects = objects_of(s, resource, false);
    const char *name = ty_obj_name(obj);
    char *key = object_key(resource, ty_obj_namespace(obj), name ? name : "");
    json_t *cur = objects ? ty_map_gets(objects, key) : NULL;
    if (!cur) {
        free(key);
        ty_fail(err, "%s \"%s\" not found", resource, name ? name : "");
        if (err)
            err->code = TY_STORE_NOT_FOUND;
        return NULL;
    }
    const char *rv = ty_obj_name(obj) ? meta_str(obj, "resourceVersion") : NULL;
    if (rv && *rv && strcmp(rv, meta_str(cur, "resourceVersion")) != 0) {
        free(key);
        ty_fail(err,
                "Operation cannot be fulfilled on %s \"%s\": the object has been modified; "
                "please apply your changes to the latest version and try again",
                resource, name);
        if (err)
            err->code = TY_STORE_CONFLICT;
        return NULL;
    }
    *keyp = key;
    return cur;
}

static void replace(ty_store *s, const char *resource, const char *key, json_t *next)
{
    ty_map *objects = objects_of(s, resource, false);
    json_t *prev = ty_map_puts(objects, key, next);
    json_decref(prev);
    notify(s, TY_EVENT_MODIFIED, resource, next);
}

static void remove_object(ty_store *s, const char *resource, const char *key);

/* Finalizers gone from an object being deleted: it goes. Returns true when removed. */
static bool maybe_finish_deletion(ty_store *s, const char *resource, const char *key,
                                  json_t *obj)
{
    if (!ty_obj_deleting(obj))
        return false;
    json_t *fin = json_object_get(json_object_get(obj, "metadata"), "finalizers");
    if (json_array_size(fin) > 0)
        return false;
    if (strcmp(resource, "pods") == 0 &&
        json_object_get(json_object_get(obj, "metadata"), "deletionGracePeriodSeconds") &&
        json_integer_value(json_object_get(json_object_get(obj, "metadata"),
                                           "deletionGracePeriodSeconds")) > 0)
        return false;
    remove_object(s, resource, key);
    return true;
}

int ty_store_update(ty_store *s, const char *resource, const json_t *obj, json_t **out,
                    ty_error *err)
{
    char *key = NULL;
    json_t *cur = lookup_for_write(s, resource, obj, &key, err);
    if (!cur)
        return -1;
    json_t *next = json_deep_copy(obj);
    json_t *meta = json_object_get(next, "metadata");
    json_t *curmeta = json_object_get(cur, "metadata");
    /* Fields the server owns are kept from the stored object. */
    static const char *owned[] = {"uid", "creationTimestamp", "namespace",
                                  "deletionTimestamp", "deletionGracePeriodSeconds"};
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
    set_revision(s, meta);
    replace(s, resource, key, next);
    if (!maybe_finish_deletion(s, resource, key, next) && out)
        *out = json_incref(next);
    else if (out)
        *out = NULL;
    free(key);
    return 0;
}

int ty_store_update_status(ty_store *s, const char *resource, const json_t *obj, json_t **out,
                           ty_error *err)
{
    char *key = NULL;
    json_t *cur = lookup_for_write(s, resource, obj, &key, err);
    if (!cur)
        return -1;
    json_t *next = json_deep_copy(cur);
    json_t *status = json_object_get(obj, "status");
    if (status)
        json_object_set_new(next, "status", json_deep_copy(status));
    else
        json_object_del(next, "status");
    set_revision(s, json_object_get(next, "metadata"));
    replace(s, resource, key, next);
    if (out)
        *out = json_incref(next);
    free(key);
    return 0;
}

static bool pod_terminated(const json_t *pod)
{
    const char *phase = json_string_value(json_object_get(json_object_get(pod, "status"), "phase"));
    return phase && (strcmp(phase, "Succeeded") == 0 || strcmp(phase, "Failed") == 0);
}

/* The garbage collector's part: objects owned by `uid` are deleted (background propagation). */
static void delete_dependents(ty_store *s, const char *uid)
{
    /* Collect first: deleting changes the maps we iterate. */
    json_t *victims = json_array();
    const ty_map_slot *slot;
    for (size_t i = 0; ty_map_next(&s->resources, &i, &slot);) {
        const ty_map_slot *o;
        for (size_t j = 0; ty_map_next(slot->value, &j, &o);) {
            if (ty_obj_owned_by(o->value, uid) && !ty_obj_deleting(o->value))
                json_array_append_new(
                    victims, json_pack("{s:s, s:s?, s:s}", "resource", slot->key, "namespace",
                                       ty_obj_namespace(o->value), "name", ty_obj_name(o->value)));
        }
    }
    size_t i;
    json_t *v;
    json_array_foreach(victims, i, v)
    {
        ty_store_delete(s, json_string_value(json_object_get(v, "resource")),
                        json_string_value(json_object_get(v, "namespace")),
                        json_string_value(json_object_get(v, "name")), -1, NULL);
    }
    json_decref(victims);
}

static void remove_object(ty_store *s, const char *resource, const char *key)
{
    ty_map *objects = objects_of(s, resource, false);
    json_t *stored = ty_map_dels(objects, key);
    if (!stored)
        return;
    /* The DELETED event carries the deletion's resourceVersion, on a copy: callers may still
     * hold the stored object, which must not change under them. */
    json_t *obj = json_copy(stored);
    json_t *meta = json_copy(json_object_get(stored, "metadata"));
    json_object_set_new(obj, "metadata", meta);
    json_decref(stored);
    set_revision(s, meta);
    notify(s, TY_EVENT_DELETED, resource, obj);
    TY_AUTOFREE char *uid = ty_strdup(ty_obj_uid(obj));
    json_decref(obj);
    delete_dependents(s, uid);
}

int ty_store_delete(ty_store *s, const char *resource, const char *ns, const char *name,
                    int64_t grace_seconds, ty_error *err)
{
    ty_map *objects = objects_of(s, resource, false);
    TY_AUTOFREE char *key = object_key(resource, ns, name);
    json_t *cur = objects ? ty_map_gets(objects, key) : NULL;
    if (!cur) {
        ty_fail(err, "%s \"%s\" not found", resource, name);
        if (err)
            err->code = TY_STORE_NOT_FOUND;
        return -1;
    }
    json_t *curmeta = json_object_get(cur, "metadata");
    bool has_finalizers = json_array_size(json_object_get(curmeta, "finalizers")) > 0;
    bool graceful_pod = strcmp(resource, "pods") == 0 &&
                        json_string_value(json_object_get(json_object_get(cur, "spec"), "nodeName")) &&
                        !pod_terminated(cur) && grace_seconds != 0;
    if (!has_finalizers && !graceful_pod) {
        remove_object(s, resource, key);
        return 0;
    }
    if (graceful_pod && grace_seconds < 0) {
        json_t *g = json_object_get(json_object_get(cur, "spec"), "terminationGracePeriodSeconds");
        grace_seconds = g ? json_integer_value(g) : 30;
    }
    /* A second delete of something already marked only shortens a pod's grace period. */
    json_t *prev_grace = json_object_get(curmeta, "deletionGracePeriodSeconds");
    if (ty_obj_deleting(cur) &&
        (!graceful_pod || (prev_grace && json_integer_value(prev_grace) <= grace_seconds)))
        return 0;
    json_t *next = json_deep_copy(cur);
    json_t *meta = json_object_get(next, "metadata");
    if (!ty_obj_deleting(cur)) {
        char now[40];
        now_string(now, sizeof now);
        json_object_set_new(meta, "deletionTimestamp", json_string(now));
    }
    if (graceful_pod)
        json_object_set_new(meta, "deletionGracePeriodSeconds", json_integer(grace_seconds));
    set_revision(s, meta);
    replace(s, resource, key, next);
    return 0;
}

static int compare_objects(const void *a, const void *b)
{
    const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    const char *nx = ty_obj_namespace(x), *ny = ty_obj_namespace(y);
    int c = strcmp(nx ? nx : "", ny ? ny : "");
    return c ? c : strcmp(ty_obj_name(x), ty_obj_name(y));
}

json_t *ty_store_list(ty_store *s, const char *resource, const char *ns)
{
    json_t *list = json_array();
    ty_map *objects = objects_of(s, resource, false);
    if (!objects)
        return list;
    json_t **items = ty_malloc(objects->count * sizeof(json_t *));
    size_t n = 0;
    const ty_map_slot *o;
    for (size_t j = 0; ty_map_next(objects, &j, &o);) {
        const char *ons = ty_obj_namespace(o->value);
        if (!ns || (ons && strcmp(ons, ns) == 0))
            items[n++] = o->value;
    }
    qsort(items, n, sizeof(json_t *), compare_objects);
    for (size_t i = 0; i < n; i++)
        json_array_append(list, items[i]);
    free(items);
    return list;
}
