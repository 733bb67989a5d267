#include "controllers/events.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/hash.h"
#include "base/jsontext.h"
#include "base/log.h"
#include "base/map.h"
#include "base/mem.h"
#include "base/time.h"
#include "store/writer.h"

/* ---- the recorder ----
 *
 * The dedup index maps a 64-bit hash of the involved object's uid, the reason and the message
 * (the map's 8-byte key) to the time in its Event's name ("<object>.<hex ns>", the map's value
 * as an integer), from which the object's name and namespace rebuild the Event's: no text and
 * no allocation but the key, about 85 bytes an entry (key, slot) where the three texts as key
 * and the Event's key as value took about 200 (4 MB for 20,000 Events). A hit is checked
 * against the stored Event, which a repeat reads anyway; a hash collision is a miss, and the
 * new Event takes the entry over. */

_Static_assert(sizeof(void *) >= sizeof(uint64_t), "a time must fit in a map value");

struct ty_recorder {
    ty_store *store;
    char *component;
    int watch;
    ty_map seen; /* dedup_hash() (8 bytes) -> its Event's time, as (void *)(uintptr_t) */
};

static uint64_t dedup_hash(const char *uid, const char *reason, const char *message)
{
    const char *parts[] = {uid, reason, message};
    uint64_t h = TY_FNV1A_BASIS;
    for (size_t i = 0; i < 3; i++) {
        h = ty_fnv1a_str(h, parts[i]);
        h = ty_fnv1a_add(h, "\xff", 1); /* a separator no UTF-8 text holds */
    }
    return h;
}

static char *event_name(const char *object, uint64_t at)
{
    return ty_asprintf("%s.%" PRIx64, object, at);
}

static bool str_is(const json_t *v, const char *s)
{
    const char *t = json_string_value(v);
    return t && strcmp(t, s) == 0;
}

/* Whether `ev` is the Event for (uid, reason, message). */
static bool event_is(const json_t *ev, const char *uid, const char *reason, const char *message)
{
    return str_is(json_object_get(json_object_get(ev, "involvedObject"), "uid"), uid) &&
           str_is(json_object_get(ev, "reason"), reason) &&
           str_is(json_object_get(ev, "message"), message);
}

/* Entries go with their Event, however it goes (expired, by a user, with its namespace). The
 * entry is found from the deleted Event itself, so no second map from Events to entries is
 * kept; an Event whose reason or message a user changed leaves its entry behind, which is
 * harmless (a repeat finds it no longer matches and records a new one, which takes the entry
 * over). A watch callback must not write to the store; this one only drops an entry. */
static void on_event_change(void *ctx, ty_event_type type, const char *resource,
                            const json_t *obj)
{
    (void)resource;
    ty_recorder *r = ctx;
    if (type != TY_EVENT_DELETED || !r->seen.count)
        return;
    const json_t *io = json_object_get(obj, "involvedObject");
    const char *uid = json_string_value(json_object_get(io, "uid"));
    const char *object = json_string_value(json_object_get(io, "name"));
    const char *reason = json_string_value(json_object_get(obj, "reason"));
    const char *message = json_string_value(json_object_get(obj, "message"));
    const char *name = ty_obj_name(obj);
    if (!uid || !object || !reason || !message || !name)
        return;
    uint64_t h = dedup_hash(uid, reason, message);
    uint64_t at = (uintptr_t)ty_map_get(&r->seen, &h, sizeof h);
    if (!at)
        return;
    TY_AUTOFREE char *mine = event_name(object, at);
    if (strcmp(mine, name) == 0)
        ty_map_del(&r->seen, &h, sizeof h);
}

ty_recorder *ty_recorder_new(ty_store *store, const char *component)
{
    ty_recorder *r = TY_NEW(ty_recorder);
    r->store = store;
    r->component = ty_strdup(component);
    ty_store_watch(store, &(ty_store_watch_opts){.resource = "events", .fn = on_event_change,
                                                 .ctx = r},
                   &r->watch, NULL);
    return r;
}

void ty_recorder_free(ty_recorder *r)
{
    if (!r)
        return;
    ty_store_unwatch(r->store, r->watch);
    ty_map_free(&r->seen);
    free(r->component);
    free(r);
}

size_t ty_recorder_size(const ty_recorder *r) { return r->seen.count; }

/* A repeat: one more in the count of the event already recorded. Returns false when that
 * event is gone or is not this one (a hash collision, a user's edit), or a write failed, so
 * a new one is made. */
static bool bump(ty_recorder *r, const char *ns, const char *name, const char *uid,
                 const char *reason, const char *message, const char *now)
{
    json_t *cur = ty_store_get(r->store, "events", ns, name);
    if (!cur)
        return false;
    if (!event_is(cur, uid, reason, message)) {
        json_decref(cur);
        return false;
    }
    json_t *next = json_deep_copy(cur);
    json_decref(cur);
    json_object_set_new(next, "count",
                        json_integer(json_integer_value(json_object_get(next, "count")) + 1));
    json_object_set_new(next, "lastTimestamp", json_string(now));
    ty_error err = TY_ERROR_INIT;
    bool ok = ty_write_update(r->store, "events", next, NULL, &err) == 0;
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
    uint64_t h = dedup_hash(uid, reason, message);
    uint64_t seen = (uintptr_t)ty_map_get(&r->seen, &h, sizeof h);
    /* In cluster mode Events are written, not mirrored (cluster/cluster.h): a repeat cannot
     * be counted on the one recorded: one within ten minutes of it is dropped rather than
     * recorded again (a reconcile that ran before the watch brought its last write back
     * repeats its transitions), a later one is recorded anew. */
    if (seen && ty_store_remote(r->store) && now_ns - (int64_t)seen < 600 * 1000000000LL)
        return;
    if (seen) {
        TY_AUTOFREE char *seen_name = event_name(name, seen);
        if (bump(r, ns, seen_name, uid, reason, message, now))
            return;
    }
    TY_AUTOFREE char *ev_name = event_name(name, (uint64_t)now_ns);
    json_t *meta = json_object_get(obj, "metadata");
    json_t *ev = json_pack(
        "{s:s, s:s, s:{s:s, s:s}, s:{s:O?, s:O?, s:s, s:s, s:s, s:O?}, s:s, s:s, s:{s:s},"
        " s:s, s:s, s:i, s:s, s:s, s:s}",
        "apiVersion", "v1", "kind", "Event", "metadata", "name", ev_name, "namespace", ns,
        "involvedObject", "apiVersion", json_object_get(obj, "apiVersion"), "kind",
        json_object_get(obj, "kind"), "name", name, "namespace", ns, "uid", uid,
        "resourceVersion", json_object_get(meta, "resourceVersion"), "reason", reason, "message",
        message, "source", "component", r->component, "firstTimestamp", now, "lastTimestamp",
        now, "count", 1, "type", type, "reportingComponent", r->component,
        "reportingInstance", "");
    ty_error err = TY_ERROR_INIT;
    /* ev shares only strings with obj: the store may keep its tree */
    if (ty_write_create_owned(r->store, "events", ev, NULL, &err) < 0)
        ty_debug("events: %s", err.msg);
    else
        ty_map_put(&r->seen, &h, sizeof h, (void *)(uintptr_t)now_ns);
    ty_error_clear(&err);
}

/* ---- expiry ----
 *
 * Why a pass over the stored Events in slices, from the store's own order: an index of every
 * Event by time (a heap fed by a store watch, tried before) cost ~130 bytes an Event (2.6 MB
 * for 20,000) and 50-100 ms to build at startup; a pass in one go blocked the loop 40-80 ms a
 * minute; and a pass in key order, continuing from the last key as the API server's continue
 * tokens do, must list the Events each slice (3 ms for 20,000 with the store's sorted order
 * kept, 30 ms when a create or delete made it sort again, which each slice's deletes do). The
 * store's scan (ty_store_scan_items) costs what it returns, and its position survives the
 * writes between slices; what a pass misses (Events created meanwhile, or some when the
 * store's table is rebuilt) the next one, a minute later, finds: nothing for a one-hour TTL.
 * Each Event's time is read from its stored text, not parsed (about 1.5 us an Event). */

struct ty_event_expiry {
    ty_store *store;
    size_t pos; /* in ty_store_scan_items' order; 0: no pass under way */
};

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

/* When the Event was last seen: lastTimestamp, else creationTimestamp (which the store always
 * sets); false when neither is a time (such an Event does not expire). */
static bool seen_at(const char *text, size_t len, int64_t *at)
{
    const char *v;
    size_t vlen;
    if (ty_json_text_at(text, len, "lastTimestamp", &v, &vlen) && text_time(v, vlen, at))
        return true;
    return ty_json_text_at(text, len, "metadata.creationTimestamp", &v, &vlen) &&
           text_time(v, vlen, at);
}

ty_event_expiry *ty_event_expiry_new(ty_store *s)
{
    ty_event_expiry *x = TY_NEW(ty_event_expiry);
    x->store = s;
    return x;
}

void ty_event_expiry_free(ty_event_expiry *x) { free(x); }

/* Whether the Event in `it` is due and not already going (finalizers hold a marked one: a
 * pass does not delete it again). */
static bool due(const ty_store_item *it, int64_t now_ns, int64_t ttl_ns)
{
    int64_t at;
    const char *v;
    size_t vlen;
    return seen_at(it->text, it->len, &at) && now_ns - at > ttl_ns &&
           !ty_json_text_at(it->text, it->len, "metadata.deletionTimestamp", &v, &vlen);
}

int ty_events_expire(ty_event_expiry *x, int64_t now_ns, int64_t ttl_ns, int max,
                     int64_t budget_ns, bool *more)
{
    int gone = 0, looked = 0;
    int64_t until = budget_ns > 0 ? ty_time_mono_ns() + budget_ns : 0;
    bool done = false;
    /* One item at a time: a delete is a write, after which no item may be read. The first
     * one whatever the clock says, so that every call makes progress. */
    while (gone < max && looked < TY_EVENT_EXPIRY_LOOKS &&
           (!until || !looked || ty_time_mono_ns() < until)) {
        ty_store_item it;
        if (!ty_store_scan_items(x->store, "events", &x->pos, &it, 1)) {
            done = true;
            break;
        }
        looked++;
        if (!due(&it, now_ns, ttl_ns))
            continue;
        TY_AUTOFREE char *key = ty_strdup(it.key);
        char *slash = strchr(key, '/');
        *slash = '\0';
        ty_error err = TY_ERROR_INIT;
        ty_store_item after;
        if (ty_store_delete(x->store, "events", key, slash + 1, -1, &err) < 0)
            ty_debug("events: expire %s/%s: %s", key, slash + 1, err.msg);
        else if (!ty_store_get_item(x->store, "events", key, slash + 1, &after))
            gone++; /* not only marked, as finalizers would hold it */
        ty_error_clear(&err);
    }
    if (done)
        x->pos = 0;
    if (more)
        *more = !done;
    return gone;
}
