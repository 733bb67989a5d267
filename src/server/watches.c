/* Watches: events from the store (committed ones), selectors, bookmarks, timeouts. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api.h"
#include "api/k8sproto.h"
#include "api/manifest.h"
#include "api/openapi.h"
#include "api/apply.h"
#include "api/patch.h"
#include "api/selector.h"
#include "api/table.h"
#include "base/buf.h"
#include "base/jsontext.h"
#include "base/log.h"
#include "base/map.h"
#include "base/mem.h"
#include "base/time.h"
#include "server/server_int.h"
#include "server/mhd.h"

/* Sends one event. `stored`: obj is the object as the store holds it at its resourceVersion
 * (not a version made up for the client, such as the previous version of an object leaving a
 * selector), so the store's text can be sent as is. */
static void watch_event_ex(stream *st, const char *type, const json_t *obj, bool stored)
{
    /* The object as stored is the store's text: the event is assembled around it, as GET's
     * answer is, unless the store holds a later version (a deletion, or the event waited for
     * its commit behind another write of the object). */
    ty_store_item it;
    const char *ons = ty_obj_namespace(obj);
    if (stored && !st->table &&
        ty_store_get_item(st->srv->store, st->ri->resource, ons ? ons : "", ty_obj_name(obj),
                          &it) &&
        it.typed && it.rv == srv_obj_rv(obj)) {
        ty_buf b = TY_BUF_INIT;
        ty_buf_addf(&b, "{\"type\":\"%s\",\"object\":", type);
        ty_buf_add(&b, it.text, it.len);
        ty_buf_adds(&b, "}\n");
        srv_stream_send(st, b.data, b.len);
        ty_buf_free(&b);
        return;
    }
    json_t *o;
    if (st->table) {
        json_t *arr = json_pack("[O]", obj);
        o = srv_table_of(st->ri->resource, arr, st->include_object);
        json_decref(arr);
    } else {
        o = srv_typed(st->ri, obj);
    }
    json_t *ev = json_pack("{s:s, s:o}", "type", type, "object", o);
    char *text = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);
    srv_stream_send(st, text, strlen(text));
    srv_stream_send(st, "\n", 1);
    free(text);
}

static void watch_event(stream *st, const char *type, const json_t *obj)
{
    watch_event_ex(st, type, obj, true);
}

static void watch_bookmark(stream *st)
{
    TY_AUTOFREE char *gv = srv_group_version(st->ri);
    json_t *o = json_pack("{s:s, s:s, s:{}}", "kind", st->ri->kind, "apiVersion", gv,
                          "metadata");
    json_object_set_new(json_object_get(o, "metadata"), "resourceVersion",
                        json_sprintf("%llu", (unsigned long long)ty_store_committed_revision(st->srv->store)));
    json_t *ev = json_pack("{s:s, s:o}", "type", "BOOKMARK", "object", o);
    char *text = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);
    srv_stream_send(st, text, strlen(text));
    srv_stream_send(st, "\n", 1);
    free(text);
}

static bool watch_wants(const stream *st, const json_t *obj)
{
    if (st->ns) {
        const char *ons = ty_obj_namespace(obj);
        if (!ons || strcmp(ons, st->ns) != 0)
            return false;
    }
    return srv_matches(obj, st->labels, st->fields);
}

/* The current state as ADDED events, from the stored texts: parsing all of them at once
 * (ty_store_list) would hold every object's tree, ten times its text, until the last was sent.
 * Only a Table (or an object stored without apiVersion and kind) needs an object parsed, one
 * at a time. */
static void watch_replay(stream *st, const char *ns)
{
    TY_AUTOFREE ty_store_item *all = NULL;
    size_t n = ty_store_list_items(st->srv->store, st->ri->resource, ns, &all);
    TY_AUTOBUF ty_buf b = TY_BUF_INIT;
    for (size_t i = 0; i < n && !st->ended; i++) {
        if ((st->labels && !ty_label_selector_matches(st->labels, all[i].labels)) ||
            (st->fields && !ty_field_selector_matches_text(st->fields, all[i].text, all[i].len)))
            continue;
        if (st->table || !all[i].typed) {
            json_t *o = srv_item_tree(&all[i]);
            if (o)
                watch_event_ex(st, "ADDED", o, false);
            json_decref(o);
            continue;
        }
        ty_buf_reset(&b);
        ty_buf_adds(&b, "{\"type\":\"ADDED\",\"object\":");
        ty_buf_add(&b, all[i].text, all[i].len);
        ty_buf_adds(&b, "}\n");
        srv_stream_send(st, b.data, b.len);
    }
}

static void watch_cb(void *ctx, ty_event_type type, const char *resource, const json_t *obj)
{
    (void)resource;
    stream *st = ctx;
    if (st->ended)
        return;
    static const char *names[] = {"ADDED", "MODIFIED", "DELETED"};
    if (watch_wants(st, obj))
        watch_event(st, names[type], obj);
}

/* A filtered watch decides by the object's version before the event, as the API server's
 * watch cache does with prevObject: one that starts matching is ADDED for the client, one
 * that stops matching is DELETED (the previous version, at the event's resourceVersion),
 * also for events replayed from the history, whatever the client held. */
static void watch_prev_cb(void *ctx, ty_event_type type, const char *resource,
                          const json_t *obj, const json_t *prev)
{
    (void)resource;
    stream *st = ctx;
    if (st->ended)
        return;
    bool now = watch_wants(st, obj);
    if (type == TY_EVENT_ADDED) {
        if (now)
            watch_event(st, "ADDED", obj);
        return;
    }
    if (type == TY_EVENT_DELETED) {
        if (now || (prev && watch_wants(st, prev)))
            watch_event(st, "DELETED", obj);
        return;
    }
    bool before = prev && watch_wants(st, prev);
    if (now) {
        watch_event(st, before ? "MODIFIED" : "ADDED", obj);
    } else if (before) {
        json_t *gone = json_deep_copy(prev);
        json_t *meta = json_object_get(gone, "metadata");
        if (json_is_object(meta))
            json_object_set(meta, "resourceVersion",
                            json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));
        watch_event_ex(st, "DELETED", gone, false);
        json_decref(gone);
    }
}

static void watch_tick(uv_timer_t *t)
{
    stream *st = t->data;
    int64_t now = srv_mono_ms();
    if (st->deadline_ms && now >= st->deadline_ms) {
        srv_stream_end(st);
        return;
    }
    if (st->bookmarks && now - st->last_bookmark_ms >= BOOKMARK_INTERVAL_MS) {
        st->last_bookmark_ms = now;
        watch_bookmark(st);
    }
}

uint64_t srv_obj_rv(const json_t *obj)
{
    const char *rv = json_string_value(json_object_get(json_object_get(obj, "metadata"),
                                                       "resourceVersion"));
    return rv ? strtoull(rv, NULL, 10) : 0;
}

enum MHD_Result srv_handle_watch(call *c)
{
    enum MHD_Result ret;
    uint64_t from = 0;
    int64_t timeout = 0;
    if (srv_q_resource_version(c, &from, &ret) < 0 ||
        srv_q_int64(c, "timeoutSeconds", &timeout, &ret) < 0)
        return ret;
    ty_selector *labels, *fields;
    if (srv_streams_full(c, &ret) || srv_parse_selectors(c, &labels, &fields, &ret) < 0)
        return ret;
    bool replay_all = from == 0;
    stream *st = srv_stream_new(c);
    st->ri = c->ri;
    st->ns = c->path.ns ? ty_strdup(c->path.ns) : NULL;
    st->labels = labels;
    st->fields = fields;
    st->table = srv_wants_table(c);
    st->include_object = ty_strdup(srv_include_object(c));
    st->bookmarks = srv_q_true(c, "allowWatchBookmarks");
    st->last_bookmark_ms = srv_mono_ms();
    /* 0 (or none) is the server's default; a negative timeout ends the watch at once, as the
     * API server's timer does; a huge one is a watch without end, not an overflow. */
    if (timeout == 0)
        timeout = WATCH_DEFAULT_TIMEOUT_S;
    st->deadline_ms = srv_mono_ms() + 1000 * (timeout < 0 ? 0 : timeout > WATCH_MAX_TIMEOUT_S
                                                                 ? WATCH_MAX_TIMEOUT_S : timeout);
    /* Without a resourceVersion (or "0") a watch starts with the current state as ADDED
     * events, then follows. From resourceVersion N: the store replays what happened after N
     * from its history (410 Expired when N is older than the history), then follows. */
    st->selective = (srv_q(c, "labelSelector") && *srv_q(c, "labelSelector")) ||
                    (srv_q(c, "fieldSelector") && *srv_q(c, "fieldSelector"));
    /* Events reach the stream only once durable; a filtered watch needs each object's
     * version before the event. */
    ty_store_watch_opts wo = {.resource = c->ri->resource, .committed = true, .ctx = st};
    if (st->selective)
        wo.prev_fn = watch_prev_cb;
    else
        wo.fn = watch_cb;
    if (replay_all) {
        watch_replay(st, c->path.ns);
        ty_store_watch(c->srv->store, &wo, &st->watch_id, NULL);
    } else {
        /* The client listed at `from`: the history's events after it, each judged by the
         * object's version before it (kubectl delete --wait watches from its list's
         * resourceVersion with a fieldSelector). */
        TY_CLEANUP_ERROR ty_error err = TY_ERROR_INIT;
        wo.from_rv = from;
        int rc = ty_store_watch(c->srv->store, &wo, &st->watch_id, &err);
        if (rc < 0) {
            srv_stream_abandon(st);
            if (err.code == TY_STORE_GONE)
                return srv_fail(c, 410, "Expired", "%s", err.msg);
            return srv_fail(c, 500, "InternalError", "%s", err.msg);
        }
    }
    uv_timer_start(&st->timer, watch_tick, 1000, 1000);
    return srv_stream_reply(c, st, "application/json");
}
