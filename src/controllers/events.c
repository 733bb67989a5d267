#include "controllers/events.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/map.h"
#include "base/mem.h"
#include "base/time.h"

struct ty_recorder {
    ty_store *store;
    char *component;
    ty_map seen; /* "<uid>\n<reason>\n<message>" -> event name (owned char *) */
};

ty_recorder *ty_recorder_new(ty_store *store, const char *component)
{
    ty_recorder *r = TY_NEW(ty_recorder);
    r->store = store;
    r->component = ty_strdup(component);
    return r;
}

void ty_recorder_free(ty_recorder *r)
{
    if (!r)
        return;
    const ty_map_slot *slot;
    for (size_t i = 0; ty_map_next(&r->seen, &i, &slot);)
        free(slot->value);
    ty_map_free(&r->seen);
    free(r->component);
    free(r);
}

/* A repeat: one more in the count of the event already recorded. Returns false when that
 * event is gone (deleted with its namespace, or never stored), so a new one is made. */
static bool bump(ty_recorder *r, const char *ns, const char *name, const char *now)
{
    json_t *cur = ty_store_get(r->store, "events", ns, name);
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
    TY_AUTOFREE char *key = ty_asprintf("%s\n%s\n%s", uid, reason, message);
    const char *seen = ty_map_gets(&r->seen, key);
    if (seen && bump(r, ns, seen, now))
        return;
    char *event_name = ty_asprintf("%s.%" PRIx64, name, (uint64_t)now_ns);
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
        free(event_name);
    } else {
        free(ty_map_puts(&r->seen, key, event_name));
    }
    ty_error_clear(&err);
    json_decref(ev);
}

int ty_events_expire(ty_store *s, int64_t now_ns, int64_t ttl_ns)
{
    /* Only each event's lastTimestamp is parsed, from the store's text: parsing 20,000
     * events a minute would stall the loop for half a second. */
    ty_store_item *items;
    size_t n = ty_store_list_items(s, "events", NULL, &items);
    json_t *expired = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *lastv = ty_store_parse_member(items[i].text, items[i].len, "lastTimestamp");
        const char *last = json_string_value(lastv);
        int64_t t;
        if (last && ty_time_parse_rfc3339(last, &t) == 0 && now_ns - t > ttl_ns)
            json_array_append_new(expired, json_string(items[i].key));
        json_decref(lastv);
    }
    free(items);
    int gone = 0;
    size_t i;
    json_t *key;
    json_array_foreach(expired, i, key)
    {
        const char *k = json_string_value(key), *slash = strchr(k, '/');
        TY_AUTOFREE char *ns = ty_strndup(k, (size_t)(slash - k));
        if (ty_store_delete(s, "events", ns, slash + 1, -1, NULL) == 0)
            gone++;
    }
    json_decref(expired);
    return gone;
}
