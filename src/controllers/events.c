#include "controllers/events.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/jsontext.h"
#include "base/log.h"
#include "base/map.h"
#include "base/mem.h"
#include "base/time.h"

/* ---- the recorder ---- */

struct ty_recorder {
    ty_store *store;
    char *component;
    int watch;
    ty_map seen; /* "<uid>\n<reason>\n<message>" -> "<ns>/<name>" of its Event (owned) */
};

static char *dedup_key(const char *uid, const char *reason, const char *message)
{
    return ty_asprintf("%s\n%s\n%s", uid, reason, message);
}

/* Entries go with their Event, however it goes (expired, by a user, with its namespace).
 * The entry's key is read back from the deleted Event, so no second map from Events to
 * entries is kept; an Event whose reason or message a user changed leaves its entry behind,
 * which is harmless (a repeat finds the Event gone and records a new one, which replaces it).
 * A watch callback must not write to the store; this one only drops an entry. */
static void on_event_change(void *ctx, ty_event_type type, const char *resource,
                            const json_t *obj)
{
    (void)resource;
    ty_recorder *r = ctx;
    if (type != TY_EVENT_DELETED || !r->seen.count)
        return;
    const char *uid = json_string_value(
        json_object_get(json_object_get(obj, "involvedObject"), "uid"));
    const char *reason = json_string_value(json_object_get(obj, "reason"));
    const char *message = json_string_value(json_object_get(obj, "message"));
    const char *ns = ty_obj_namespace(obj), *name = ty_obj_name(obj);
    if (!uid || !reason || !message || !ns || !name)
        return;
    TY_AUTOFREE char *key = dedup_key(uid, reason, message);
    const char *event_key = ty_map_gets(&r->seen, key);
    size_t nslen = strlen(ns);
    if (event_key && strncmp(event_key, ns, nslen) == 0 && event_key[nslen] == '/' &&
        strcmp(event_key + nslen + 1, name) == 0)
        free(ty_map_dels(&r->seen, key));
}

ty_recorder *ty_recorder_new(ty_store *store, const char *component)
{
    ty_recorder *r = TY_NEW(ty_recorder);
    r->store = store;
    r->component = ty_strdup(component);
    r->watch = ty_store_watch(store, "events", on_event_change, r);
    return r;
}

void ty_recorder_free(ty_recorder *r)
{
    if (!r)
        return;
    ty_store_unwatch(r->store, r->watch);
    const ty_map_slot *slot;
    for (size_t i = 0; ty_map_next(&r->seen, &i, &slot);)
        free(slot->value);
    ty_map_free(&r->seen);
    free(r->component);
    free(r);
}

size_t ty_recorder_size(const ty_recorder *r) { return r->seen.count; }

/* A repeat: one more in the count of the event already recorded. Returns false when that
 * event is gone (its entry outlived it, or a write failed), so a new one is made. */
static bool bump(ty_recorder *r, const char *event_key, const char *now)
{
    const char *slash = strchr(event_key, '/');
    TY_AUTOFREE char *ns = ty_strndup(event_key, (size_t)(slash - event_key));
    json_t *cur = ty_store_get(r->store, "events", ns, slash + 1);
    if (!cur)
        return false;
    json_t *next = json_deep_copy(cur);
    json_decref(cur);
    json_object_set_new(next, "count",
                        json_integer(json_integer_value(json_object_get(next, "count")) + 1));
    json_object_set_new(next, "lastTimestamp", json_string(now));
    ty_error err = TY_ERROR_INIT;
    bool ok = ty_store_update(r->store, "events", next, NULL, &err) == 0;
    if (!ok)
        ty_debug("events: %s", err.msg);
    ty_error_clear(&err);
    json_decref(next);
    return ok;
}

void ty_event(ty_recorder *r, const json_t *obj, const char *type, const char *reason,
              const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    TY_AUTOFREE char *message = ty_vasprintf(fmt, ap);
    va_end(ap);
    const char *uid = ty_obj_uid(obj), *ns = ty_obj_namespace(obj), *name = ty_obj_name(obj);
    if (!uid || !name)
        return;
    if (!ns)
        ns = "default"; /* events about cluster-scoped objects live in default, as kubelet's */
    char now[40];
    int64_t now_ns = ty_time_now_ns();
    ty_time_format_rfc3339(now_ns, now, sizeof now, 0);
    TY_AUTOFREE char *key = dedup_key(uid, reason, message);
    const char *seen = ty_map_gets(&r->seen, key);
    TY_AUTOFREE char *seen_key = seen ? ty_strdup(seen) : NULL; /* the writes may drop it */
    if (seen_key && bump(r, seen_key, now))
        return;
    TY_AUTOFREE char *event_name = ty_asprintf("%s.%" PRIx64, name, (uint64_t)now_ns);
    json_t *meta = json_object_get(obj, "metadata");
    json_t *ev = json_pack(
        "{s:s, s:s, s:{s:s, s:s}, s:{s:O?, s:O?, s:s, s:s, s:s, s:O?}, s:s, s:s, s:{s:s},"
        " s:s, s:s, s:i, s:s, s:s, s:s}",
        "apiVersion", "v1", "kind", "Event", "metadata", "name", event_name, "namespace", ns,
        "involvedObject", "apiVersion", json_object_get(obj, "apiVersion"), "kind",
        json_object_get(obj, "kind"), "name", name, "namespace", ns, "uid", uid,
        "resourceVersion", json_object_get(meta, "resourceVersion"), "reason", reason, "message",
        message, "source", "component", r->component, "firstTimestamp", now, "lastTimestamp",
        now, "count", 1, "type", type, "reportingComponent", r->component,
        "reportingInstance", "");
    ty_error err = TY_ERROR_INIT;
    if (ty_store_create(r->store, "events", ev, NULL, &err) < 0) {
        ty_debug("events: %s", err.msg);
    } else {
        free(ty_map_puts(&r->seen, key, ty_asprintf("%s/%s", ns, event_name)));
    }
    ty_error_clear(&err);
    json_decref(ev);
}

/* ---- expiry ----
 *
 * Why a heap fed by a watch, not a pass over the events: a pass lists every Event and reads
 * each one's lastTimestamp, which with 20,000 Events blocked the loop 40-80 ms a minute even
 * when nothing expired (an 80 ms outlier in the API's create->watch latency), and reading the
 * timestamps from the text instead of parsing them still scans all their bytes. Slicing such
 * a pass over loop turns would need a cursor that survives the listing changing under it.
 * The heap makes a pass touch only what expires, in order, and `max` and the time budget
 * bound what one call deletes, so the caller spreads a mass expiry over loop turns (each delete is a store write
 * and, in the server, part of the next group commit). The price: a map entry and a heap slot
 * per Event (about 130 bytes: 2.5 MB for 20,000) and O(log n) per Event write. */

typedef struct xnode {
    int64_t at; /* last seen, ns since the epoch */
    size_t pos; /* in the heap */
    char key[]; /* "<ns>/<name>" */
} xnode;

struct ty_event_expiry {
    ty_store *store;
    int watch;
    ty_map by_key; /* "<ns>/<name>" -> xnode (owned) */
    xnode **heap;  /* min-heap by (at, key) */
    size_t n, cap;
};

static bool earlier(const xnode *a, const xnode *b)
{
    return a->at != b->at ? a->at < b->at : strcmp(a->key, b->key) < 0;
}

static void heap_set(ty_event_expiry *x, size_t i, xnode *nd)
{
    x->heap[i] = nd;
    nd->pos = i;
}

static void sift_up(ty_event_expiry *x, size_t i)
{
    xnode *nd = x->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!earlier(nd, x->heap[parent]))
            break;
        heap_set(x, i, x->heap[parent]);
        i = parent;
    }
    heap_set(x, i, nd);
}

static void sift_down(ty_event_expiry *x, size_t i)
{
    xnode *nd = x->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= x->n)
            break;
        if (c + 1 < x->n && earlier(x->heap[c + 1], x->heap[c]))
            c++;
        if (!earlier(x->heap[c], nd))
            break;
        heap_set(x, i, x->heap[c]);
        i = c;
    }
    heap_set(x, i, nd);
}

static void index_put(ty_event_expiry *x, const char *key, int64_t at)
{
    xnode *nd = ty_map_gets(&x->by_key, key);
    if (nd) {
        int64_t old = nd->at;
        nd->at = at;
        if (at < old)
            sift_up(x, nd->pos);
        else
            sift_down(x, nd->pos);
        return;
    }
    size_t len = strlen(key);
    nd = ty_malloc(sizeof *nd + len + 1);
    nd->at = at;
    memcpy(nd->key, key, len + 1);
    ty_map_puts(&x->by_key, key, nd);
    if (x->n == x->cap) {
        x->cap = x->cap ? 2 * x->cap : 256;
        x->heap = ty_realloc(x->heap, x->cap * sizeof *x->heap);
    }
    heap_set(x, x->n++, nd);
    sift_up(x, nd->pos);
}

static void index_del(ty_event_expiry *x, const char *key)
{
    xnode *nd = ty_map_dels(&x->by_key, key);
    if (!nd)
        return;
    size_t i = nd->pos;
    xnode *last = x->heap[--x->n];
    if (i < x->n) {
        heap_set(x, i, last);
        sift_up(x, i);
        sift_down(x, last->pos);
    }
    free(nd);
}

/* A time as a JSON string's text (with its quotes); timestamps have no escapes. */
static bool text_time(const char *v, size_t len, int64_t *out)
{
    char buf[64];
    if (!v || len < 2 || len - 2 >= sizeof buf || v[0] != '"' || memchr(v, '\\', len))
        return false;
    memcpy(buf, v + 1, len - 2);
    buf[len - 2] = '\0';
    return ty_time_parse_rfc3339(buf, out) == 0;
}

static int64_t seen_at_text(const char *text, size_t len)
{
    const char *v;
    size_t vlen;
    int64_t t;
    if (ty_json_text_at(text, len, "lastTimestamp", &v, &vlen) && text_time(v, vlen, &t))
        return t;
    if (ty_json_text_at(text, len, "metadata.creationTimestamp", &v, &vlen) &&
        text_time(v, vlen, &t))
        return t;
    return ty_time_now_ns(); /* no time at all: an hour from now, as a lease from its write */
}

static int64_t seen_at_tree(const json_t *ev)
{
    const char *last = json_string_value(json_object_get(ev, "lastTimestamp"));
    const char *created =
        json_string_value(json_object_get(json_object_get(ev, "metadata"), "creationTimestamp"));
    int64_t t;
    if (last && ty_time_parse_rfc3339(last, &t) == 0)
        return t;
    if (created && ty_time_parse_rfc3339(created, &t) == 0)
        return t;
    return ty_time_now_ns();
}

static void on_expiry_change(void *ctx, ty_event_type type, const char *resource,
                             const json_t *obj)
{
    (void)resource;
    ty_event_expiry *x = ctx;
    const char *ns = ty_obj_namespace(obj), *name = ty_obj_name(obj);
    if (!ns || !name)
        return;
    TY_AUTOFREE char *key = ty_asprintf("%s/%s", ns, name);
    if (type == TY_EVENT_DELETED)
        index_del(x, key);
    else
        index_put(x, key, seen_at_tree(obj));
}

ty_event_expiry *ty_event_expiry_new(ty_store *s)
{
    ty_event_expiry *x = TY_NEW(ty_event_expiry);
    x->store = s;
    ty_store_item *items;
    size_t n = ty_store_list_items(s, "events", NULL, &items);
    for (size_t i = 0; i < n; i++)
        index_put(x, items[i].key, seen_at_text(items[i].text, items[i].len));
    free(items);
    x->watch = ty_store_watch(s, "events", on_expiry_change, x);
    return x;
}

void ty_event_expiry_free(ty_event_expiry *x)
{
    if (!x)
        return;
    ty_store_unwatch(x->store, x->watch);
    for (size_t i = 0; i < x->n; i++)
        free(x->heap[i]);
    free(x->heap);
    ty_map_free(&x->by_key);
    free(x);
}

size_t ty_event_expiry_size(const ty_event_expiry *x) { return x->n; }

static bool due(const ty_event_expiry *x, int64_t now_ns, int64_t ttl_ns)
{
    return x->n && now_ns - x->heap[0]->at > ttl_ns;
}

int ty_events_expire(ty_event_expiry *x, int64_t now_ns, int64_t ttl_ns, int max,
                     int64_t budget_ns, bool *more)
{
    int gone = 0, tried = 0;
    int64_t until = budget_ns > 0 ? ty_time_mono_ns() + budget_ns : 0;
    /* The first one whatever the clock says, so that every call makes progress. */
    while (gone < max && due(x, now_ns, ttl_ns) &&
           (!until || !tried || ty_time_mono_ns() < until)) {
        tried++;
        TY_AUTOFREE char *key = ty_strdup(x->heap[0]->key);
        char *slash = strchr(key, '/');
        *slash = '\0';
        ty_error err = TY_ERROR_INIT;
        int rc = ty_store_delete(x->store, "events", key, slash + 1, -1, &err);
        *slash = '/';
        if (rc < 0)
            ty_debug("events: expire %s: %s", key, err.msg);
        ty_error_clear(&err);
        if (ty_map_gets(&x->by_key, key))
            index_del(x, key); /* still there (finalizers, a failed write): not again now */
        else
            gone++;
    }
    if (more)
        *more = due(x, now_ns, ttl_ns);
    return gone;
}
