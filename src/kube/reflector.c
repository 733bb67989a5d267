#include "kube/reflector.h"

#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/map.h"
#include "base/mem.h"
#include "base/time.h"
#include "kube/retry.h"

struct ty_reflector {
    ty_kube_client *c;
    ty_reflector_opts o;
    char *ns, *label_selector, *field_selector;
    ty_map known;          /* key -> its last resourceVersion (owned string) */
    ty_map listing;        /* a list in progress: the keys it held so far */
    char *rv;              /* where a watch resumes */
    char *cont;            /* the next page's continue token */
    ty_kube_call *call;    /* the list page or watch under way */
    uv_timer_t timer;      /* back-off */
    int failures;          /* consecutive, for the back-off */
    bool watch_delivered;  /* the current watch delivered an event or a bookmark */
    bool relist_wanted;    /* a 410 ERROR event came: relist when the stream ends */
    bool stopped;
    ty_kube_backoff backoff;
    uint64_t rand_state;
    ty_reflector_stats stats;
};

static void list_page(ty_reflector *r);
static void watch(ty_reflector *r);

static double rand01(ty_reflector *r)
{
    r->rand_state ^= r->rand_state >> 12;
    r->rand_state ^= r->rand_state << 25;
    r->rand_state ^= r->rand_state >> 27;
    return (double)((r->rand_state * 2685821657736338717ull) >> 11) / 9007199254740992.0;
}

static void note(ty_reflector *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(ty_reflector *r, const char *fmt, ...)
{
    if (!r->o.on_note)
        return;
    va_list ap;
    va_start(ap, fmt);
    char *s = ty_vasprintf(fmt, ap);
    va_end(ap);
    r->o.on_note(s, r->o.arg);
    free(s);
}

static char *obj_key(json_t *obj)
{
    json_t *md = json_object_get(obj, "metadata");
    const char *ns = json_string_value(json_object_get(md, "namespace"));
    const char *name = json_string_value(json_object_get(md, "name"));
    if (!name)
        return NULL;
    return ns && *ns ? ty_asprintf("%s/%s", ns, name) : ty_strdup(name);
}

static const char *obj_rv(json_t *obj)
{
    const char *rv =
        json_string_value(json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));
    return rv ? rv : "";
}

static void set_rv(ty_reflector *r, const char *rv)
{
    if (!rv || !*rv)
        return;
    free(r->rv);
    r->rv = ty_strdup(rv);
}

static void rv_map_clear(ty_map *m)
{
    const ty_map_slot *s;
    for (size_t i = 0; ty_map_next(m, &i, &s);)
        free(s->value);
    ty_map_free(m);
    *m = (ty_map)TY_MAP_INIT;
}

/* What a DELETED found by a relist carries: the reflector keeps no objects (the cache the
 * caller fills has them), only each key's last resourceVersion, as client-go hands over a
 * DeletedFinalStateUnknown. */
static json_t *tombstone(const char *key, const char *rv)
{
    const char *slash = strchr(key, '/');
    json_t *md = json_object();
    if (slash) {
        json_object_set_new(md, "namespace", json_stringn(key, (size_t)(slash - key)));
        json_object_set_new(md, "name", json_string(slash + 1));
    } else {
        json_object_set_new(md, "name", json_string(key));
    }
    json_object_set_new(md, "resourceVersion", json_string(rv));
    return json_pack("{s:o}", "metadata", md);
}

/* The query shared by lists and watches: selectors, escaped. */
static void add_selectors(ty_reflector *r, ty_buf *q)
{
    if (r->label_selector) {
        char *e = ty_kube_escape(r->label_selector);
        ty_buf_addf(q, "%slabelSelector=%s", q->len ? "&" : "", e);
        free(e);
    }
    if (r->field_selector) {
        char *e = ty_kube_escape(r->field_selector);
        ty_buf_addf(q, "%sfieldSelector=%s", q->len ? "&" : "", e);
        free(e);
    }
}

static void backoff_then(ty_reflector *r, uv_timer_cb then)
{
    int64_t ms = ty_kube_backoff_ms(&r->backoff, r->failures, rand01(r));
    r->failures++;
    uv_timer_start(&r->timer, then, (uint64_t)ms, 0);
}

static void on_timer_list(uv_timer_t *t)
{
    list_page(t->data);
}

static void on_timer_watch(uv_timer_t *t)
{
    watch(t->data);
}

static void relist(ty_reflector *r)
{
    ty_map_free(&r->listing);
    r->listing = (ty_map)TY_MAP_INIT;
    free(r->cont);
    r->cont = NULL;
    list_page(r);
}

/* One object of a LIST page: delivered at once unless the caller has seen this version, so
 * that a list holds one page of objects at a time, not all of them. */
static void list_item(ty_reflector *r, json_t *obj)
{
    char *key = obj_key(obj);
    if (!key)
        return;
    ty_map_puts(&r->listing, key, (void *)1);
    const char *rv = obj_rv(obj);
    const char *old = ty_map_gets(&r->known, key);
    bool changed = !old || strcmp(old, rv) != 0;
    bool existed = old != NULL;
    if (changed) {
        free(ty_map_puts(&r->known, key, ty_strdup(rv)));
        r->o.on_event(existed ? TY_REFLECTOR_MODIFIED : TY_REFLECTOR_ADDED, obj, r->o.arg);
    }
    free(key);
}

/* The last page came: what the caller knows and the list did not hold is gone. */
static void list_done(ty_reflector *r, const char *rv)
{
    note(r, "listed %zu objects at resourceVersion %s", r->listing.count, rv ? rv : "");
    const ty_map_slot *s;
    size_t ngone = 0;
    char **gone = ty_calloc(r->known.count + 1, sizeof *gone);
    for (size_t i = 0; ty_map_next(&r->known, &i, &s);)
        if (!ty_map_has(&r->listing, s->key, s->keylen))
            gone[ngone++] = ty_strndup(s->key, s->keylen);
    ty_map_free(&r->listing);
    r->listing = (ty_map)TY_MAP_INIT;
    for (size_t i = 0; i < ngone; i++) {
        char *last = ty_map_dels(&r->known, gone[i]);
        if (!r->stopped) {
            json_t *t = tombstone(gone[i], last);
            r->o.on_event(TY_REFLECTOR_DELETED, t, r->o.arg);
            json_decref(t);
        }
        free(last);
        free(gone[i]);
    }
    free(gone);
    if (r->stopped)
        return;
    set_rv(r, rv);
    r->stats.lists++;
    r->failures = 0;
    if (r->o.on_synced) {
        r->o.on_synced(r->o.arg);
        if (r->stopped)
            return;
    }
    watch(r);
}

static void on_list(const ty_kube_result *res, void *arg)
{
    ty_reflector *r = arg;
    r->call = NULL;
    if (res->status != 200 || !json_is_object(res->body)) {
        if (res->status == 410 && r->cont) {
            /* The continue token expired mid-list: start over. */
            note(r, "list: continue token expired, listing again");
            relist(r);
            return;
        }
        note(r, "list failed (%d): %s; retrying", res->status, res->error ? res->error : "no body");
        ty_map_free(&r->listing);
        r->listing = (ty_map)TY_MAP_INIT;
        free(r->cont);
        r->cont = NULL;
        backoff_then(r, on_timer_list);
        return;
    }
    json_t *items = json_object_get(res->body, "items");
    size_t i;
    json_t *obj;
    json_array_foreach(items, i, obj) {
        list_item(r, obj);
        if (r->stopped)
            return;
    }
    json_t *md = json_object_get(res->body, "metadata");
    const char *cont = json_string_value(json_object_get(md, "continue"));
    free(r->cont);
    r->cont = cont && *cont ? ty_strdup(cont) : NULL;
    if (r->cont) {
        list_page(r);
        return;
    }
    list_done(r, json_string_value(json_object_get(md, "resourceVersion")));
}

static void list_page(ty_reflector *r)
{
    ty_buf q = TY_BUF_INIT;
    add_selectors(r, &q);
    ty_buf_addf(&q, "%slimit=%d", q.len ? "&" : "", r->o.page_size);
    if (r->cont) {
        char *e = ty_kube_escape(r->cont);
        ty_buf_addf(&q, "&continue=%s", e);
        free(e);
    }
    ty_kube_request req = {TY_KUBE_LIST, &r->o.res, r->ns, NULL, NULL, q.data, NULL, 0};
    r->call = ty_kube_do(r->c, &req, on_list, r);
    ty_buf_free(&q);
}

static void on_watch_event(const char *type, json_t *obj, void *arg)
{
    ty_reflector *r = arg;
    if (strcmp(type, "BOOKMARK") == 0) {
        set_rv(r, obj_rv(obj));
        r->stats.bookmarks++;
        r->watch_delivered = true;
        return;
    }
    if (strcmp(type, "ERROR") == 0) {
        json_int_t code = json_integer_value(json_object_get(obj, "code"));
        const char *msg = json_string_value(json_object_get(obj, "message"));
        note(r, "watch error event %d: %s", (int)code, msg ? msg : "");
        r->relist_wanted = code == 410;
        /* The stream is of no more use; its end is handled as if the server closed it. */
        ty_kube_cancel(r->call);
        r->call = NULL;
        if (r->relist_wanted) {
            r->stats.relists_gone++;
            r->relist_wanted = false;
            relist(r);
        } else {
            r->stats.reconnects++;
            backoff_then(r, on_timer_watch);
        }
        return;
    }
    bool deleted = strcmp(type, "DELETED") == 0;
    if (!deleted && strcmp(type, "ADDED") != 0 && strcmp(type, "MODIFIED") != 0)
        return;
    char *key = obj_key(obj);
    if (!key)
        return;
    r->watch_delivered = true;
    const char *old = ty_map_gets(&r->known, key);
    const char *rv = obj_rv(obj);
    if (!deleted && old && strcmp(old, rv) == 0) {
        r->stats.duplicates++;
        free(key);
        set_rv(r, rv);
        return;
    }
    if (deleted && !old) {
        /* Deleted before we ever saw it: nothing to tell. */
        free(key);
        set_rv(r, rv);
        return;
    }
    set_rv(r, rv);
    if (deleted) {
        free(ty_map_dels(&r->known, key));
        r->o.on_event(TY_REFLECTOR_DELETED, obj, r->o.arg);
    } else {
        free(ty_map_puts(&r->known, key, ty_strdup(rv)));
        r->o.on_event(old ? TY_REFLECTOR_MODIFIED : TY_REFLECTOR_ADDED, obj, r->o.arg);
    }
    free(key);
}

static void on_watch_end(const ty_kube_result *res, void *arg)
{
    ty_reflector *r = arg;
    r->call = NULL;
    if (res->status == 410) {
        note(r, "watch: 410 Gone at resourceVersion %s: relisting", r->rv ? r->rv : "");
        r->stats.relists_gone++;
        relist(r);
        return;
    }
    if (r->watch_delivered)
        r->failures = 0;
    if (res->status == 200 && !res->error) {
        /* The server's timeout: carry on from where it stopped. */
        watch(r);
        return;
    }
    note(r, "watch dropped at resourceVersion %s (%d): %s; reconnecting", r->rv ? r->rv : "",
         res->status, res->error ? res->error : "");
    r->stats.reconnects++;
    backoff_then(r, on_timer_watch);
}

static void watch(ty_reflector *r)
{
    ty_buf q = TY_BUF_INIT;
    add_selectors(r, &q);
    int timeout = r->o.watch_timeout_s;
    if (timeout <= 0)
        timeout = 300 + (int)(rand01(r) * 300); /* client-go: between 5 and 10 minutes */
    char *rv = ty_kube_escape(r->rv ? r->rv : "");
    ty_buf_addf(&q, "%sresourceVersion=%s&allowWatchBookmarks=true&timeoutSeconds=%d",
                q.len ? "&" : "", rv, timeout);
    free(rv);
    ty_kube_request req = {TY_KUBE_WATCH, &r->o.res, r->ns, NULL, NULL, q.data, NULL, 0};
    r->watch_delivered = false;
    r->stats.watches++;
    r->call = ty_kube_watch(r->c, &req, on_watch_event, on_watch_end, r);
    ty_buf_free(&q);
}

int ty_reflector_start(ty_kube_client *c, uv_loop_t *loop, const ty_reflector_opts *opts,
                       ty_reflector **out, ty_error *err)
{
    if (!opts->on_event || !opts->res.version || !opts->res.resource)
        return ty_fail(err, "reflector: a resource and an event callback are required");
    ty_reflector *r = ty_calloc(1, sizeof *r);
    r->c = c;
    r->o = *opts;
    if (r->o.page_size <= 0)
        r->o.page_size = 500;
    r->ns = opts->ns && *opts->ns ? ty_strdup(opts->ns) : NULL;
    r->label_selector = opts->label_selector && *opts->label_selector ? ty_strdup(opts->label_selector) : NULL;
    r->field_selector = opts->field_selector && *opts->field_selector ? ty_strdup(opts->field_selector) : NULL;
    r->backoff = (ty_kube_backoff){200, 30000, 2.0, 1.0};
    r->rand_state = (uint64_t)ty_time_mono_ns() | 1;
    uv_timer_init(loop, &r->timer);
    r->timer.data = r;
    list_page(r);
    *out = r;
    return 0;
}

static void on_closed(uv_handle_t *h)
{
    ty_reflector *r = h->data;
    rv_map_clear(&r->known);
    ty_map_free(&r->listing);
    free(r->ns);
    free(r->label_selector);
    free(r->field_selector);
    free(r->rv);
    free(r->cont);
    free(r);
}

void ty_reflector_stop(ty_reflector *r)
{
    if (!r || r->stopped)
        return;
    r->stopped = true;
    ty_kube_cancel(r->call);
    r->call = NULL;
    uv_timer_stop(&r->timer);
    uv_close((uv_handle_t *)&r->timer, on_closed);
}

const char *ty_reflector_resource_version(const ty_reflector *r)
{
    return r->rv ? r->rv : "";
}

const char *ty_reflector_known_rv(const ty_reflector *r, const char *ns, const char *name)
{
    char *key = ns && *ns ? ty_asprintf("%s/%s", ns, name) : ty_strdup(name);
    const char *rv = ty_map_gets(&r->known, key);
    free(key);
    return rv;
}

size_t ty_reflector_count(const ty_reflector *r)
{
    return r->known.count;
}

ty_reflector_stats ty_reflector_get_stats(const ty_reflector *r)
{
    return r->stats;
}
