/* The API server: libmicrohttpd in external-event-loop mode on the caller's libuv loop.
 *
 * MHD runs with MHD_USE_EPOLL and no thread of its own: its epoll fd is watched by a uv_poll
 * and MHD_get_timeout() drives a uv_timer; either calls MHD_run(). Long answers (watches,
 * `logs -f`) are responses from a content-reader callback that suspends its connection when it
 * has nothing to send; store events and log growth append to the stream's buffer and resume
 * it. Everything happens on the loop's thread, so nothing is locked. */
#include "server/apiserver.h"

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

#define DEFAULT_MAX_BODY (3u * 1024 * 1024)
/* The API server ends a watch after a random time between its min-request-timeout (30 min)
 * and twice that; clients re-list and watch again. */
#define WATCH_DEFAULT_TIMEOUT_S 1800
#define WATCH_MAX_TIMEOUT_S 1000000000LL /* ~31.7 years: longer is the same, and ms stay in range */
#define STREAM_TICK_MS 200
#define BOOKMARK_INTERVAL_MS 60000

/* What the server knows of a resource, for routing, discovery and messages: its entry in the
 * registry of kinds. `ops` is set for the kinds ty_api_admit admits, NULL for the core ones
 * the server checks itself. */
typedef ty_kind_info res_info;

typedef struct stream stream;

struct ty_apiserver {
    uv_loop_t *loop;
    ty_store *store;
    ty_apiserver_log_path_fn log_path;
    void *log_ctx;
    ty_apiserver_mutate_fn mutate;
    void *mutate_ctx;
    ty_apiserver_metrics_fn metrics;
    void *metrics_ctx;
    size_t max_body;
    size_t table_page_bytes;
    struct MHD_Daemon *mhd;
    int port;
    uv_poll_t poll;
    uv_timer_t timer;
    int open_handles; /* freed when the last of poll/timer is closed */
    bool stopping;
    bool kicked; /* kick() was called since the last MHD_run began */
    bool streamed; /* a stream handed bytes to MHD since the last MHD_run began */
    int64_t yield_again_ns; /* no yield after streaming before this time (see run_mhd) */
    ty_map label_views; /* "resource\x1fns" -> label_view, see label_view_of() */
    const res_info *const *res; /* ty_kinds() */
    size_t nres;
    stream *streams;
    /* connections (see on_connection): how many are open, how many of those were shut down
     * to make room and are not closed yet, the most there may be, and the ones waiting for a
     * request, oldest first */
    unsigned nconns, nshut, conn_limit;
    unsigned nstreams; /* open watches and log streams: at most half of conn_limit */
    struct conn_rec *idle_head, *idle_tail;
};

/* One open connection, from MHD's STARTED notification to its CLOSED one. */
typedef struct conn_rec {
    struct conn_rec *prev, *next; /* in the idle list */
    int fd;
    bool idle; /* waiting for a request: the first, or the next one of a kept-alive connection */
    bool shut; /* shut down to make room; MHD closes it on its next run */
} conn_rec;

/* One request being received: its body, bounded by max_body. */
typedef struct req {
    ty_buf body;
    bool too_big;
    json_t *warnings; /* strings sent as Warning headers */
} req;

/* A long answer: a watch or a followed log. Owned by its MHD response (freed from the response's
 * free callback, through uv_close of its timer). */
struct stream {
    ty_apiserver *srv;
    struct MHD_Connection *conn;
    stream *next, *prev;
    ty_buf out;
    size_t off;
    bool suspended, ended;
    uv_timer_t timer;
    uv_poll_t sock;   /* the client's socket while the stream is suspended (stream_read) */
    bool sock_init, sock_active, sock_useless;
    int handles;      /* libuv handles still to close before the stream is freed */
    int64_t deadline_ms; /* monotonic; 0: none */
    int64_t last_bookmark_ms;
    /* watch */
    int watch_id;
    const res_info *ri;
    char *ns;
    ty_selector *labels, *fields;
    bool selective;  /* a label or field selector was given */
    bool table, bookmarks;
    char *include_object;
    /* log */
    int fd;
    char *pod_ns, *pod_name, *pod_uid, *container, *log_file;
    ty_buf partial; /* bytes of an incomplete line read so far */
    ty_buf joined;  /* text of P records waiting for their F */
    bool timestamps;
    int64_t since_ns;
    int64_t limit_bytes; /* > 0: the stream ends after this many bytes */
    int64_t sent_bytes;
};

typedef struct call {
    ty_apiserver *srv;
    struct MHD_Connection *conn;
    req *r;
    const char *method;
    ty_srv_path path;
    const res_info *ri;
} call;

static void kick(ty_apiserver *s);
static void stream_watch_socket(stream *st);

/* ---------- resources ---------- */

static const res_info *find_res(const ty_apiserver *s, const char *group, const char *version,
                                const char *resource)
{
    for (size_t i = 0; i < s->nres; i++)
        if (strcmp(s->res[i]->group, group) == 0 && strcmp(s->res[i]->version, version) == 0 &&
            strcmp(s->res[i]->resource, resource) == 0)
            return s->res[i];
    return NULL;
}

static bool is_namespaced(void *ctx, const char *resource)
{
    const ty_apiserver *s = ctx;
    for (size_t i = 0; i < s->nres; i++)
        if (strcmp(s->res[i]->resource, resource) == 0)
            return s->res[i]->namespaced;
    return false; /* "namespaces/<name>/status": the namespace object's subresource */
}

static char *group_version(const res_info *ri)
{
    return *ri->group ? ty_asprintf("%s/%s", ri->group, ri->version) : ty_strdup(ri->version);
}

/* "pytorchjobs.kubeflow.org", "pods" */
static char *qualified_resource(const res_info *ri)
{
    return *ri->group ? ty_asprintf("%s.%s", ri->resource, ri->group) : ty_strdup(ri->resource);
}

/* "PyTorchJob.kubeflow.org", "Pod" */
static char *qualified_kind(const res_info *ri)
{
    return *ri->group ? ty_asprintf("%s.%s", ri->kind, ri->group) : ty_strdup(ri->kind);
}

/* A reference to `obj` with apiVersion and kind set (a copy when they are missing). */
static json_t *typed(const res_info *ri, const json_t *obj)
{
    if (json_object_get(obj, "kind") && json_object_get(obj, "apiVersion"))
        return json_incref((json_t *)obj);
    json_t *c = json_copy((json_t *)obj);
    TY_AUTOFREE char *gv = group_version(ri);
    json_object_set_new(c, "apiVersion", json_string(gv));
    json_object_set_new(c, "kind", json_string(ri->kind));
    return c;
}

/* ---------- serialized objects ---------- */

static uint64_t obj_rv(const json_t *obj);

/* The store keeps every object as compact JSON text: answers are assembled from those bytes,
 * serialized again only for an object that lacks apiVersion or kind. */
static void add_item_text(ty_buf *b, const res_info *ri, const ty_store_item *it)
{
    if (it->typed) {
        ty_buf_add(b, it->text, it->len);
        return;
    }
    json_t *o = json_loadb(it->text, it->len, 0, NULL);
    json_t *t = typed(ri, o);
    char *text = json_dumps(t, JSON_COMPACT);
    ty_buf_adds(b, text);
    free(text);
    json_decref(t);
    json_decref(o);
}

/* The stored object an item describes, parsed (a new reference). Parsed here rather than
 * asked of the store, whose cache of trees is for the controllers' working set. */
static json_t *item_tree(const ty_store_item *it)
{
    return json_loadb(it->text, it->len, 0, NULL);
}

/* A LIST with a labelSelector tests every object's labels. A view keeps, in the store's order,
 * each object's label set, which the store shares between objects with equal labels (objects
 * made from one template), so that a selector is evaluated once per distinct set. It is
 * rebuilt when the store's revision moved; its items and sets are the store's, valid as long
 * as its revision is `rev`. */
typedef struct label_view {
    uint64_t rev;
    size_t n;
    ty_store_item *items;
    uint32_t *set;        /* items[i]'s labels are sets[set[i]] */
    size_t nsets;
    const json_t **sets;  /* {"metadata": {"labels": {...}}}, what ty_label_selector_matches reads */
} label_view;

static void label_view_free(label_view *v)
{
    free(v->items);
    free(v->set);
    free(v->sets);
    *v = (label_view){0};
}

static void label_views_clear(ty_apiserver *s)
{
    const ty_map_slot *slot;
    for (size_t i = 0; ty_map_next(&s->label_views, &i, &slot);) {
        label_view_free(slot->value);
        free(slot->value);
    }
    ty_map_free(&s->label_views);
    memset(&s->label_views, 0, sizeof(s->label_views));
}

static const label_view *label_view_of(ty_apiserver *s, const char *resource, const char *ns)
{
    TY_AUTOFREE char *key = ty_asprintf("%s\x1f%s", resource, ns ? ns : "");
    uint64_t rev = ty_store_revision(s->store);
    label_view *v = ty_map_gets(&s->label_views, key);
    if (v && v->rev == rev)
        return v;
    if (!v) {
        v = TY_NEW(label_view);
        ty_map_puts(&s->label_views, key, v);
    }
    label_view_free(v);
    size_t n = ty_store_list_items(s->store, resource, ns, &v->items);
    v->set = ty_malloc((n + 1) * sizeof(*v->set));
    v->sets = ty_malloc((n + 1) * sizeof(*v->sets));
    ty_map ids = {0}; /* label set (by address) -> its index + 1 */
    for (size_t i = 0; i < n; i++) {
        const json_t *labels = v->items[i].labels;
        uintptr_t id = (uintptr_t)ty_map_get(&ids, &labels, sizeof labels);
        if (!id) {
            v->sets[v->nsets] = labels;
            id = ++v->nsets;
            ty_map_put(&ids, &labels, sizeof labels, (void *)id);
        }
        v->set[i] = (uint32_t)(id - 1);
    }
    ty_map_free(&ids);
    v->n = n;
    v->rev = rev;
    return v;
}

/* ---------- answers ---------- */

static const char *q(call *c, const char *key)
{
    return MHD_lookup_connection_value(c->conn, MHD_GET_ARGUMENT_KIND, key);
}

static const char *q_lookup(void *c, const char *key)
{
    return q(c, key);
}

static const char *hdr(call *c, const char *key)
{
    return MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, key);
}

/* A boolean parameter as the API server converts query values (runtime's
 * Convert_Slice_string_To_bool): absent, "0" and "false" in any case are false, anything
 * else is true - `watch=maybe` is a watch there too. */
static bool q_true(call *c, const char *key)
{
    const char *v = q(c, key);
    return v && strcmp(v, "0") != 0 && strcasecmp(v, "false") != 0;
}

static enum MHD_Result reply_text(call *c, int code, const char *type, char *text, size_t len)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache, private");
    if (c->r && c->r->warnings) {
        size_t i;
        json_t *w;
        json_array_foreach(c->r->warnings, i, w)
        {
            /* Warning: 299 - "text", quotes and backslashes escaped (RFC 7234). */
            TY_AUTOBUF ty_buf b = TY_BUF_INIT;
            ty_buf_adds(&b, "299 - \"");
            for (const char *p = json_string_value(w); *p; p++) {
                if (*p == '"' || *p == '\\')
                    ty_buf_addc(&b, '\\');
                ty_buf_addc(&b, *p);
            }
            ty_buf_addc(&b, '"');
            MHD_add_response_header(resp, "Warning", b.data);
        }
    }
    enum MHD_Result ret = MHD_queue_response(c->conn, (unsigned)code, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* Sends `body` (stolen) as JSON. */
static enum MHD_Result reply(call *c, int code, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    return reply_text(c, code, "application/json", text, strlen(text));
}

static enum MHD_Result fail(call *c, int code, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static enum MHD_Result fail(call *c, int code, const char *reason, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    TY_AUTOFREE char *msg = ty_vasprintf(fmt, ap);
    va_end(ap);
    return reply(c, code, ty_srv_status(code, reason, msg, NULL));
}

/* Parses `v` as Go's strconv.ParseInt(v, 10, 64) (or ParseUint when !is_signed) does: an
 * optional sign, then decimal digits only. Returns NULL or the reason, worded as Go's. */
static const char *parse_go_int(const char *v, bool is_signed, int64_t *out, uint64_t *uout)
{
    const char *d = v + (is_signed && (*v == '+' || *v == '-'));
    if (!*d)
        return "invalid syntax";
    for (const char *p = d; *p; p++)
        if (*p < '0' || *p > '9')
            return "invalid syntax";
    errno = 0;
    if (is_signed) {
        long long n = strtoll(v, NULL, 10);
        if (errno == ERANGE)
            return "value out of range";
        *out = n;
    } else {
        unsigned long long n = strtoull(v, NULL, 10);
        if (errno == ERANGE)
            return "value out of range";
        *uout = n;
    }
    return NULL;
}

/* An integer query parameter (limit, timeoutSeconds, gracePeriodSeconds, the log options) as
 * the API server converts it: absent or empty leaves *out alone, anything that is not an
 * int64 is a 400. Returns -1 after answering. */
static int q_int64(call *c, const char *key, int64_t *out, enum MHD_Result *ret)
{
    const char *v = q(c, key);
    if (!v || !*v)
        return 0;
    TY_CLEANUP_ERROR ty_error err = TY_ERROR_INIT;
    if (ty_srv_query_int(key, v, out, &err) < 0) {
        *ret = fail(c, 400, "BadRequest", "%s", err.msg);
        return -1;
    }
    return 0;
}

/* ?resourceVersion of a get, list or watch: a decimal uint64 (the store's revision) or
 * nothing; else 400 as the storage layer words it. *out gets it (0 when absent). */
static int q_resource_version(call *c, uint64_t *out, enum MHD_Result *ret)
{
    const char *v = q(c, "resourceVersion");
    *out = 0;
    if (!v || !*v)
        return 0;
    const char *why = parse_go_int(v, false, NULL, out);
    if (why) {
        *ret = fail(c, 400, "BadRequest",
                    "invalid resource version: resourceVersion: Invalid value: \"%s\": "
                    "strconv.ParseUint: parsing \"%s\": %s", v, v, why);
        return -1;
    }
    return 0;
}

static json_t *details(const res_info *ri, const char *name, bool kind_is_kind)
{
    json_t *d = json_object();
    if (name)
        json_object_set_new(d, "name", json_string(name));
    if (*ri->group)
        json_object_set_new(d, "group", json_string(ri->group));
    json_object_set_new(d, "kind", json_string(kind_is_kind ? ri->kind : ri->resource));
    return d;
}

static enum MHD_Result fail_not_found(call *c, const res_info *ri, const char *name)
{
    TY_AUTOFREE char *qr = qualified_resource(ri);
    TY_AUTOFREE char *msg = ty_asprintf("%s \"%s\" not found", qr, name);
    return reply(c, 404, ty_srv_status(404, "NotFound", msg, details(ri, name, false)));
}

static enum MHD_Result fail_exists(call *c, const char *name)
{
    TY_AUTOFREE char *qr = qualified_resource(c->ri);
    TY_AUTOFREE char *msg = ty_asprintf("%s \"%s\" already exists", qr, name);
    return reply(c, 409, ty_srv_status(409, "AlreadyExists", msg, details(c->ri, name, false)));
}

/* `why`: what failed (a precondition), NULL for the optimistic-lock message. */
static enum MHD_Result fail_conflict(call *c, const char *name, const char *why)
{
    TY_AUTOFREE char *qr = qualified_resource(c->ri);
    TY_AUTOFREE char *msg = ty_asprintf(
        "Operation cannot be fulfilled on %s \"%s\": %s", qr, name,
        why ? why : "the object has been modified; please apply your changes to the latest "
                    "version and try again");
    return reply(c, 409, ty_srv_status(409, "Conflict", msg, details(c->ri, name, false)));
}

/* 422 for `errs` on the object `name` of kind `qk` (details `d`, stolen). */
static enum MHD_Result fail_invalid_as(call *c, const char *qk, json_t *d, const char *name,
                                       const ty_field_errors *errs)
{
    TY_AUTOBUF ty_buf msg = TY_BUF_INIT;
    ty_buf_addf(&msg, "%s \"%s\" is invalid: ", qk, name ? name : "");
    ty_srv_errors_text(errs, &msg);
    json_t *causes = json_array();
    for (size_t i = 0; i < errs->count; i++)
        json_array_append_new(causes, json_pack("{s:s, s:s, s:s}", "reason",
                                                ty_srv_cause_reason(errs->items[i].msg), "message",
                                                errs->items[i].msg, "field",
                                                errs->items[i].path ? errs->items[i].path : ""));
    json_object_set_new(d, "causes", causes);
    return reply(c, 422, ty_srv_status(422, "Invalid", msg.data, d));
}

static enum MHD_Result fail_invalid(call *c, const char *name, const ty_field_errors *errs)
{
    TY_AUTOFREE char *qk = qualified_kind(c->ri);
    return fail_invalid_as(c, qk, details(c->ri, name, true), name, errs);
}

/* A validating webhook's denial as the API server words it: 403, "admission webhook \"<name>\"
 * denied the request: " and the errors as Go aggregates them (one alone; several in brackets,
 * joined by ", ", a repeated text once). */
static enum MHD_Result fail_denied(call *c, const ty_field_errors *errs)
{
    TY_AUTOBUF ty_buf list = TY_BUF_INIT;
    json_t *seen = json_object();
    for (size_t i = 0; i < errs->count; i++) {
        const ty_field_error *e = &errs->items[i];
        TY_AUTOFREE char *one = *e->path ? ty_asprintf("%s: %s", e->path, e->msg)
                                         : ty_strdup(e->msg);
        if (json_object_get(seen, one))
            continue;
        ty_buf_addf(&list, "%s%s", json_object_size(seen) ? ", " : "", one);
        json_object_set_new(seen, one, json_true());
    }
    bool several = json_object_size(seen) > 1;
    json_decref(seen);
    TY_AUTOFREE char *msg = ty_asprintf("admission webhook \"%s\" denied the request: %s%s%s",
                                        errs->webhook ? errs->webhook : "", several ? "[" : "",
                                        list.data ? list.data : "", several ? "]" : "");
    return reply(c, 403, ty_srv_status(403, "Forbidden", msg, NULL));
}

/* A store write's error as the API server words it. */
static enum MHD_Result fail_store(call *c, const char *name, const ty_error *err)
{
    switch (err->code) {
    case TY_STORE_NOT_FOUND:
        return fail_not_found(c, c->ri, name);
    case TY_STORE_CONFLICT:
        if (strstr(err->msg, "already exists"))
            return fail_exists(c, name);
        return fail_conflict(c, name, strncmp(err->msg, "Precondition failed", 19) == 0
                                          ? err->msg : NULL);
    case TY_STORE_TOO_LARGE:
        return fail(c, 413, "RequestEntityTooLarge", "%s", err->msg);
    case TY_STORE_INVALID: {
        /* "spec.x: what": the field goes to the cause, which kubectl prints before it */
        size_t plen = strspn(err->msg, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                       "0123456789.[]");
        bool field = plen && strncmp(err->msg + plen, ": ", 2) == 0;
        TY_AUTOFREE char *path = ty_strndup(err->msg, field ? plen : 0);
        ty_field_errors errs = TY_FIELD_ERRORS_INIT;
        ty_field_errors_add(&errs, path, (ty_pos){0, 0}, "%s", err->msg + (field ? plen + 2 : 0));
        enum MHD_Result r = fail_invalid(c, name, &errs);
        ty_field_errors_free(&errs);
        return r;
    }
    default:
        return fail(c, 500, "InternalError", "Internal error occurred: %s", err->msg);
    }
}

/* ---------- discovery ---------- */

static json_t *resource_list(const ty_apiserver *s, const char *group, const char *version)
{
    json_t *list = json_array();
    for (size_t i = 0; i < s->nres; i++) {
        const res_info *ri = s->res[i];
        if (strcmp(ri->group, group) != 0 || strcmp(ri->version, version) != 0)
            continue;
        json_t *verbs = json_pack("[s,s,s,s,s,s,s,s]", "create", "delete", "deletecollection",
                                  "get", "list", "patch", "update", "watch");
        json_t *r = json_pack("{s:s, s:s, s:b, s:s, s:o}", "name", ri->resource, "singularName",
                              ri->singular, "namespaced", ri->namespaced, "kind", ri->kind,
                              "verbs", verbs);
        if (*ri->short_names) {
            json_t *sn = json_array();
            TY_AUTOFREE char *copy = ty_strdup(ri->short_names);
            for (char *sv = NULL, *t = strtok_r(copy, ",", &sv); t; t = strtok_r(NULL, ",", &sv))
                json_array_append_new(sn, json_string(t));
            json_object_set_new(r, "shortNames", sn);
        }
        if (ri->in_all)
            json_object_set_new(r, "categories", json_pack("[s]", "all"));
        json_array_append_new(list, r);
        if (ri->has_status) {
            TY_AUTOFREE char *n = ty_asprintf("%s/status", ri->resource);
            json_array_append_new(list, json_pack("{s:s, s:s, s:b, s:s, s:[s,s,s]}", "name", n,
                                                  "singularName", "", "namespaced", ri->namespaced,
                                                  "kind", ri->kind, "verbs", "get", "patch",
                                                  "update"));
        }
        if (ri->has_log) {
            TY_AUTOFREE char *n = ty_asprintf("%s/log", ri->resource);
            json_array_append_new(list, json_pack("{s:s, s:s, s:b, s:s, s:[s]}", "name", n,
                                                  "singularName", "", "namespaced", ri->namespaced,
                                                  "kind", "Pod", "verbs", "get"));
        }
    }
    TY_AUTOFREE char *gv = *group ? ty_asprintf("%s/%s", group, version) : ty_strdup(version);
    return json_pack("{s:s, s:s, s:s, s:o}", "kind", "APIResourceList", "apiVersion", "v1",
                     "groupVersion", gv, "resources", list);
}

/* The version a group is served at (one per group). */
static const char *group_version_of(const ty_apiserver *s, const char *group)
{
    for (size_t i = 0; i < s->nres; i++)
        if (strcmp(s->res[i]->group, group) == 0)
            return s->res[i]->version;
    return "v1";
}

static json_t *api_group(const ty_apiserver *s, const char *group)
{
    const char *v = group_version_of(s, group);
    TY_AUTOFREE char *gv = ty_asprintf("%s/%s", group, v);
    return json_pack("{s:s, s:s, s:s, s:[{s:s, s:s}], s:{s:s, s:s}}", "kind", "APIGroup",
                     "apiVersion", "v1", "name", group, "versions", "groupVersion", gv, "version",
                     v, "preferredVersion", "groupVersion", gv, "version", v);
}

/* The groups other than core, each once. */
static size_t groups(const ty_apiserver *s, const char **out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < s->nres; i++) {
        if (!*s->res[i]->group)
            continue;
        bool seen = false;
        for (size_t j = 0; j < n; j++)
            seen |= strcmp(out[j], s->res[i]->group) == 0;
        if (!seen && n < cap)
            out[n++] = s->res[i]->group;
    }
    return n;
}

/* Aggregated discovery (apidiscovery.k8s.io/v2 APIGroupDiscoveryList): every group with its
 * versions and resources in one answer, which kubectl asks for first on /api and /apis. */
static json_t *aggregated(const ty_apiserver *s, bool core)
{
    json_t *items = json_array();
    const char *gs[16];
    size_t ng = core ? 1 : groups(s, gs, TY_ARRAY_LEN(gs));
    if (core)
        gs[0] = "";
    for (size_t g = 0; g < ng; g++) {
        json_t *resources = json_array();
        for (size_t i = 0; i < s->nres; i++) {
            const res_info *ri = s->res[i];
            if (strcmp(ri->group, gs[g]) != 0)
                continue;
            json_t *kind = json_pack("{s:s, s:s, s:s}", "group", ri->group, "version",
                                     ri->version, "kind", ri->kind);
            json_t *r = json_pack(
                "{s:s, s:O, s:s, s:s, s:[s,s,s,s,s,s,s,s]}", "resource", ri->resource,
                "responseKind", kind, "scope", ri->namespaced ? "Namespaced" : "Cluster",
                "singularResource", ri->singular, "verbs", "create", "delete",
                "deletecollection", "get", "list", "patch", "update", "watch");
            if (*ri->short_names) {
                json_t *sn = json_array();
                TY_AUTOFREE char *copy = ty_strdup(ri->short_names);
                for (char *sv = NULL, *t = strtok_r(copy, ",", &sv); t; t = strtok_r(NULL, ",", &sv))
                    json_array_append_new(sn, json_string(t));
                json_object_set_new(r, "shortNames", sn);
            }
            if (ri->in_all)
                json_object_set_new(r, "categories", json_pack("[s]", "all"));
            json_t *subs = json_array();
            if (ri->has_status)
                json_array_append_new(subs, json_pack("{s:s, s:O, s:[s,s,s]}", "subresource",
                                                      "status", "responseKind", kind, "verbs",
                                                      "get", "patch", "update"));
            if (ri->has_log)
                json_array_append_new(subs, json_pack("{s:s, s:{s:s, s:s, s:s}, s:[s]}",
                                                      "subresource", "log", "responseKind",
                                                      "group", "", "version", "v1", "kind", "Pod",
                                                      "verbs", "get"));
            if (json_array_size(subs))
                json_object_set_new(r, "subresources", subs);
            else
                json_decref(subs);
            json_decref(kind);
            json_array_append_new(resources, r);
        }
        json_array_append_new(items, json_pack("{s:{s:s}, s:[{s:s, s:o, s:s}]}", "metadata",
                                               "name", gs[g], "versions", "version",
                                               group_version_of(s, gs[g]), "resources",
                                               resources, "freshness", "Current"));
    }
    return json_pack("{s:s, s:s, s:{}, s:o}", "kind", "APIGroupDiscoveryList", "apiVersion",
                     "apidiscovery.k8s.io/v2", "metadata", "items", items);
}

/* Which aggregated discovery version the Accept header asks for: "v2", "v2beta1" or NULL. */
static const char *wants_aggregated(call *c)
{
    const char *accept = hdr(c, "Accept");
    if (!accept || !strstr(accept, "as=APIGroupDiscoveryList"))
        return NULL;
    /* Clients list v2 before v2beta1; both have the same shape. */
    return strstr(accept, "v=v2;") || strstr(accept, "v=v2,") ? "v2" : "v2beta1";
}

static enum MHD_Result reply_aggregated(call *c, bool core, const char *version)
{
    json_t *body = aggregated(c->srv, core);
    if (strcmp(version, "v2") != 0)
        json_object_set_new(body, "apiVersion", json_string("apidiscovery.k8s.io/v2beta1"));
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    TY_AUTOFREE char *type = ty_asprintf(
        "application/json;g=apidiscovery.k8s.io;v=%s;as=APIGroupDiscoveryList", version);
    return reply_text(c, 200, type, text, strlen(text));
}

/* Answers the discovery, version, health and OpenAPI paths; -1 when `url` is none of them. */
static int discovery(call *c, const char *url, enum MHD_Result *ret)
{
    ty_apiserver *s = c->srv;
    const char *gs[16];
    size_t ng = groups(s, gs, TY_ARRAY_LEN(gs));
    /* The Python client's VersionApi asks for "/version/", which Kubernetes serves too. */
    if (strcmp(url, "/version") == 0 || strcmp(url, "/version/") == 0) {
        *ret = reply(c, 200,
                     json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "major", "1",
                               "minor", "32", "gitVersion", "v1.32.0-trainyard", "gitCommit", "",
                               "gitTreeState", "clean", "buildDate", "2026-11-28T00:00:00Z",
                               "goVersion", "c17", "compiler", "cc", "platform", "linux/amd64"));
    } else if (strcmp(url, "/metrics") == 0 && s->metrics) {
        char *text = s->metrics(s->metrics_ctx);
        if (!text)
            text = ty_strdup("");
        *ret = reply_text(c, 200, "text/plain; version=0.0.4", text, strlen(text));
    } else if (strcmp(url, "/healthz") == 0 || strcmp(url, "/readyz") == 0 ||
               strcmp(url, "/livez") == 0) {
        *ret = reply_text(c, 200, "text/plain", ty_strdup("ok"), 2);
    } else if ((strcmp(url, "/api") == 0 || strcmp(url, "/apis") == 0) && wants_aggregated(c)) {
        *ret = reply_aggregated(c, strcmp(url, "/api") == 0, wants_aggregated(c));
    } else if (strcmp(url, "/api") == 0) {
        TY_AUTOFREE char *addr = ty_asprintf("127.0.0.1:%d", s->port);
        *ret = reply(c, 200,
                     json_pack("{s:s, s:[s], s:[{s:s, s:s}]}", "kind", "APIVersions", "versions",
                               "v1", "serverAddressByClientCIDRs", "clientCIDR", "0.0.0.0/0",
                               "serverAddress", addr));
    } else if (strcmp(url, "/api/v1") == 0) {
        *ret = reply(c, 200, resource_list(s, "", "v1"));
    } else if (strcmp(url, "/apis") == 0) {
        json_t *list = json_array();
        for (size_t i = 0; i < ng; i++) {
            json_t *g = api_group(s, gs[i]);
            json_object_del(g, "kind");
            json_object_del(g, "apiVersion");
            json_array_append_new(list, g);
        }
        *ret = reply(c, 200,
                     json_pack("{s:s, s:s, s:o}", "kind", "APIGroupList", "apiVersion", "v1",
                               "groups", list));
    } else if (strncmp(url, "/apis/", 6) == 0 && !strchr(url + 6, '/')) {
        for (size_t i = 0; i < ng; i++)
            if (strcmp(url + 6, gs[i]) == 0)
                return *ret = reply(c, 200, api_group(s, gs[i])), 0;
        *ret = fail(c, 404, "NotFound", "the server could not find the requested resource");
    } else if (strncmp(url, "/apis/", 6) == 0 && strchr(url + 6, '/') &&
               !strchr(strchr(url + 6, '/') + 1, '/')) {
        TY_AUTOFREE char *g = ty_strndup(url + 6, (size_t)(strchr(url + 6, '/') - (url + 6)));
        const char *v = strchr(url + 6, '/') + 1;
        bool known = false;
        for (size_t i = 0; i < s->nres; i++)
            known |= strcmp(s->res[i]->group, g) == 0 && strcmp(s->res[i]->version, v) == 0;
        *ret = known ? reply(c, 200, resource_list(s, g, v))
                     : fail(c, 404, "NotFound", "the server could not find the requested resource");
    } else if (strcmp(url, "/openapi/v2") == 0) {
        /* kubectl's validation falls back on the v2 document for a kind the v3 documents do
         * not name (kind: MPIJob) and stops at "failed to download openapi" without one. An
         * empty Swagger 2.0 document (protobuf, the only form kubectl reads: field 1,
         * swagger = "2.0") names no kinds, so kubectl skips validation and reports the kind
         * as unknown, as against a cluster without that CRD. */
        static const char doc[] = "\x0a\x03" "2.0";
        *ret = reply_text(c, 200, "application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
                          ty_strndup(doc, sizeof doc - 1), sizeof doc - 1);
    } else if (strcmp(url, "/openapi/v3") == 0) {
        *ret = reply(c, 200, ty_openapi_v3_paths());
    } else if (strncmp(url, "/openapi/v3/", 12) == 0) {
        /* /openapi/v3/api/v1 and /openapi/v3/apis/<group>/<version> */
        const char *rest = url + 12;
        const char *gv = strncmp(rest, "apis/", 5) == 0 ? rest + 5
                         : strcmp(rest, "api/v1") == 0 ? "v1" : rest;
        json_t *doc = ty_openapi_v3_group(gv);
        *ret = doc ? reply(c, 200, doc)
                   : fail(c, 404, "NotFound", "the server could not find the requested resource");
    } else {
        return -1;
    }
    return 0;
}

/* ---------- media types ---------- */

static bool is_tchar(char ch)
{
    return isalnum((unsigned char)ch) || (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* The media type of a Content-Type value as Go's mime.ParseMediaType reads it for the API
 * server: "type/subtype", each a token, compared without case; parameters after ';' (charset)
 * are allowed and ignored. Writes it lowercased to `out`; false when `v` is no media type.
 * Exact, not by substring: "text/plain; charset=json" is text/plain, which is what a web page
 * may POST without a CORS preflight. */
static bool media_type(const char *v, char *out, size_t cap)
{
    while (*v == ' ' || *v == '\t')
        v++;
    size_t n = 0;
    bool slash = false;
    for (; *v && *v != ';' && *v != ' ' && *v != '\t'; v++) {
        if (*v == '/') {
            if (slash || n == 0)
                return false;
            slash = true;
        } else if (!is_tchar(*v)) {
            return false;
        }
        if (n + 1 >= cap)
            return false;
        out[n++] = (char)tolower((unsigned char)*v);
    }
    out[n] = '\0';
    if (!slash || out[n - 1] == '/')
        return false;
    while (*v == ' ' || *v == '\t')
        v++;
    return *v == '\0' || *v == ';';
}

/* The request's media type (Content-Type), lowercased; "" when it has none, "?" when the
 * header is no media type (it then matches nothing). */
static void request_media_type(call *c, char *out, size_t cap)
{
    const char *type = hdr(c, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (!type || !*type)
        out[0] = '\0';
    else if (!media_type(type, out, cap))
        snprintf(out, cap, "?");
}

#define BODY_TYPES "application/json, application/yaml, application/vnd.kubernetes.protobuf"

/* ---------- bodies, names, admission ---------- */

/* Decodes the request body into an object; answers 400 (and returns NULL) when it is not one,
 * 415 when its Content-Type is not one the API server reads. A POST body must name its type:
 * the API server would read one without as JSON, but a web page can POST such a body (a Blob)
 * to any address without a CORS preflight. */
static json_t *read_body(call *c, enum MHD_Result *ret)
{
    char mt[128];
    request_media_type(c, mt, sizeof mt);
    if (!*mt && (strcmp(c->method, "POST") != 0 || c->r->body.len == 0))
        snprintf(mt, sizeof mt, "application/json");
    if (!*mt) {
        *ret = fail(c, 415, "UnsupportedMediaType",
                    "the request body has no Content-Type - accepted media types include: "
                    BODY_TYPES);
        return NULL;
    }
    /* Protobuf is what typed clients send for built-in kinds (`kubectl create namespace`);
     * the kinds they create that way are decoded (api/k8sproto.h). */
    if (strcmp(mt, "application/vnd.kubernetes.protobuf") == 0) {
        json_t *obj = NULL;
        TY_CLEANUP_ERROR ty_error err = TY_ERROR_INIT;
        if (ty_k8sproto_decode(c->r->body.data, c->r->body.len, &obj, &err) < 0) {
            *ret = fail(c, 415, "UnsupportedMediaType", "%s", err.msg);
            return NULL;
        }
        return obj;
    }
    /* server-side apply's body (handle_patch chose handle_apply by this type) is YAML */
    bool yaml = strcmp(mt, "application/yaml") == 0 ||
                (strcmp(mt, "application/apply-patch+yaml") == 0 &&
                 strcmp(c->method, "PATCH") == 0);
    /* CBOR and the rest are not decoded; clients that fall back on 415 then send JSON. */
    if (!yaml && strcmp(mt, "application/json") != 0) {
        *ret = fail(c, 415, "UnsupportedMediaType",
                    "the body of the request was in an unknown format - accepted media types "
                    "include: " BODY_TYPES);
        return NULL;
    }
    if (yaml) {
        ty_manifest *m = NULL;
        TY_CLEANUP_ERROR ty_error err = TY_ERROR_INIT;
        if (ty_manifest_parse("body", c->r->body.data, c->r->body.len, &m, &err) < 0) {
            *ret = fail(c, 400, "BadRequest", "error converting YAML to JSON: %s", err.msg);
            return NULL;
        }
        json_t *obj = m->ndocs == 1 ? json_incref(m->docs[0].obj) : NULL;
        ty_manifest_free(m);
        if (!obj)
            *ret = fail(c, 400, "BadRequest", "the request body must hold exactly one object");
        return obj;
    }
    json_error_t je;
    json_t *obj = json_loadb(c->r->body.data, c->r->body.len, 0, &je);
    if (!obj) {
        *ret = fail(c, 400, "BadRequest",
                    "couldn't get version/kind; json parse error: %s (line %d, column %d)",
                    je.text, je.line, je.column);
        return NULL;
    }
    if (!json_is_object(obj)) {
        json_decref(obj);
        *ret = fail(c, 400, "BadRequest",
                    "couldn't get version/kind; json parse error: the body is not a JSON object");
        return NULL;
    }
    return obj;
}

/* Checks apiVersion/kind of a body against the URL's resource (400 when they differ). */
static int check_kind(call *c, json_t *obj, enum MHD_Result *ret)
{
    TY_AUTOFREE char *gv = group_version(c->ri);
    /* Built-in kinds are decoded with the URL's kind as the default (typed clients leave
     * apiVersion/kind out); custom resources must name theirs, as unstructured decoding wants. */
    if (c->ri->builtin) {
        if (!json_string_value(json_object_get(obj, "kind")))
            json_object_set_new(obj, "kind", json_string(c->ri->kind));
        if (!json_string_value(json_object_get(obj, "apiVersion")))
            json_object_set_new(obj, "apiVersion", json_string(gv));
    }
    const char *av = json_string_value(json_object_get(obj, "apiVersion"));
    const char *kind = json_string_value(json_object_get(obj, "kind"));
    if (!kind || !*kind) {
        TY_AUTOFREE char *text = json_dumps(obj, JSON_COMPACT);
        *ret = fail(c, 400, "BadRequest", "Object 'Kind' is missing in '%.200s'", text);
        return -1;
    }
    if (!av || strcmp(av, gv) != 0) {
        *ret = fail(c, 400, "BadRequest",
                    "the API version in the data (%s) does not match the expected API version (%s)",
                    av ? av : "", gv);
        return -1;
    }
    if (strcmp(kind, c->ri->kind) != 0) {
        *ret = fail(c, 400, "BadRequest",
                    "the kind in the data (%s) does not match the expected kind (%s)", kind,
                    c->ri->kind);
        return -1;
    }
    return 0;
}

/* Removes the member a field path names ("spec.a[0].b", "metadata.labels[x/y]"). */
static void remove_path(json_t *obj, const char *path)
{
    json_t *cur = obj, *parent = NULL;
    TY_AUTOFREE char *key = NULL;
    const char *p = path;
    while (*p && cur) {
        size_t len;
        bool bracket = *p == '[';
        if (bracket) {
            const char *close = strchr(p, ']');
            if (!close)
                return;
            len = (size_t)(close - p - 1);
            free(key);
            key = ty_strndup(p + 1, len);
            p = close + 1;
        } else {
            len = strcspn(p, ".[");
            free(key);
            key = ty_strndup(p, len);
            p += len;
        }
        if (*p == '.')
            p++;
        parent = cur;
        if (json_is_array(cur))
            cur = json_array_get(cur, strtoul(key, NULL, 10));
        else
            cur = json_object_get(cur, key);
    }
    if (cur && parent && json_is_object(parent) && key)
        json_object_del(parent, key);
}

static void add_warning(call *c, const char *text)
{
    if (!c->r->warnings)
        c->r->warnings = json_array();
    json_array_append_new(c->r->warnings, json_string(text));
}

static bool is_unknown_field(const ty_field_error *e)
{
    return strncmp(e->msg, "unknown field", 13) == 0;
}

/* Validates and defaults `obj` in place for its kind. Unknown fields follow ?fieldValidation:
 * Strict fails (400, as the API server's strict decoding), Warn (the default) and Ignore drop
 * them, Warn with a Warning header each. Returns -1 after answering. */
static int admit(call *c, json_t *obj, const char *name, enum MHD_Result *ret)
{
    if (!c->ri->ops) {
        /* The core kinds have no schema here; their metadata still has Kubernetes' rules, and
         * a Pod the spec rules that keep its mounts inside their volumes. */
        ty_field_errors errs = TY_FIELD_ERRORS_INIT;
        int rc = ty_api_check_metadata(obj, &errs);
        if (rc == 0 && strcmp(c->ri->resource, "pods") == 0 && !c->path.sub)
            rc = ty_api_check_pod(obj, &errs);
        if (rc < 0)
            *ret = fail_invalid(c, name, &errs);
        ty_field_errors_free(&errs);
        return rc;
    }
    const char *mode = q(c, "fieldValidation");
    if (!mode || !*mode)
        mode = "Warn";
    if (strcmp(mode, "Strict") != 0 && strcmp(mode, "Warn") != 0 && strcmp(mode, "Ignore") != 0) {
        *ret = fail(c, 400, "BadRequest",
                    "fieldValidation must be one of \"Ignore\", \"Warn\", or \"Strict\", got %s",
                    mode);
        return -1;
    }
    for (int round = 0; round < 2; round++) {
        ty_field_errors errs = TY_FIELD_ERRORS_INIT;
        ty_api_admit(NULL, obj, &errs);
        /* A webhook is called for writes of the object, not of its status subresource. */
        if (c->path.sub)
            ty_field_errors_drop_webhook(&errs);
        if (ty_field_errors_schema_count(&errs) == 0) {
            /* An update of the object (not of its status, whose spec is ignored) is checked
             * against the stored one: fields the kind makes immutable. */
            json_t *cur = strcmp(c->method, "POST") != 0 && !c->path.sub
                              ? ty_store_get(c->srv->store, c->ri->resource,
                                             c->path.ns ? c->path.ns : "", c->path.name)
                              : NULL;
            ty_api_check_update(obj, cur, &errs);
            json_decref(cur);
            int rc = errs.count ? -1 : 0;
            if (ty_field_errors_schema_count(&errs)) {
                ty_field_errors_drop_webhook(&errs);
                *ret = fail_invalid(c, name, &errs);
            } else {
                for (size_t i = 0; i < errs.nwarnings; i++)
                    add_warning(c, errs.warnings[i]);
                if (rc < 0)
                    *ret = fail_denied(c, &errs);
            }
            ty_field_errors_free(&errs);
            return rc;
        }
        ty_field_errors_drop_webhook(&errs);
        size_t unknown = 0;
        for (size_t i = 0; i < errs.count; i++)
            unknown += is_unknown_field(&errs.items[i]);
        if (unknown && strcmp(mode, "Strict") == 0) {
            TY_AUTOBUF ty_buf msg = TY_BUF_INIT;
            ty_buf_addf(&msg, "%s in version \"%s\" cannot be handled as a %s: strict decoding error: ",
                        c->ri->kind, c->ri->version, c->ri->kind);
            bool first = true;
            for (size_t i = 0; i < errs.count; i++)
                if (is_unknown_field(&errs.items[i])) {
                    ty_buf_addf(&msg, "%s%s", first ? "" : ", ", errs.items[i].msg);
                    first = false;
                }
            *ret = fail(c, 400, "BadRequest", "%s", msg.data);
            ty_field_errors_free(&errs);
            return -1;
        }
        if (unknown && round == 0) {
            for (size_t i = 0; i < errs.count; i++)
                if (is_unknown_field(&errs.items[i])) {
                    remove_path(obj, errs.items[i].path);
                    if (strcmp(mode, "Warn") == 0)
                        add_warning(c, errs.items[i].msg);
                }
            ty_field_errors_free(&errs);
            continue; /* again without them, for the defaults and the other errors */
        }
        *ret = fail_invalid(c, name, &errs);
        ty_field_errors_free(&errs);
        return -1;
    }
    return 0;
}

static bool exists(ty_apiserver *s, const char *resource, const char *ns, const char *name)
{
    json_t *o = ty_store_get(s->store, resource, ns ? ns : "", name);
    json_decref(o);
    return o != NULL;
}

static const char *check_name(const res_info *ri, const char *name)
{
    if (strcmp(ri->resource, "namespaces") == 0 || strcmp(ri->resource, "services") == 0)
        return ty_srv_check_dns1123_label(name);
    return ty_srv_check_dns1123_subdomain(name);
}

static bool dry_run(call *c)
{
    const char *v = q(c, "dryRun");
    return v && strcmp(v, "All") == 0;
}

static int check_dry_run(call *c, enum MHD_Result *ret)
{
    const char *v = q(c, "dryRun");
    if (v && *v && strcmp(v, "All") != 0) {
        *ret = fail(c, 400, "BadRequest", "Invalid dry run value: %s; the only supported value is All", v);
        return -1;
    }
    return 0;
}

/* ---------- handlers ---------- */

static bool matches(const json_t *obj, const ty_selector *labels, const ty_selector *fields)
{
    return (!labels || ty_label_selector_matches(labels, obj)) &&
           (!fields || ty_field_selector_matches(fields, obj));
}

static bool blank(const char *text)
{
    for (; text && *text; text++)
        if (!isspace((unsigned char)*text))
            return false;
    return true;
}

static int parse_selectors(call *c, ty_selector **labels, ty_selector **fields, enum MHD_Result *ret)
{
    TY_CLEANUP_ERROR ty_error err = TY_ERROR_INIT;
    *labels = *fields = NULL;
    if (ty_label_selector_parse(q(c, "labelSelector"), labels, &err) < 0 ||
        ty_field_selector_parse(c->ri->resource, q(c, "fieldSelector"), fields, &err) < 0) {
        ty_selector_free(*labels);
        *labels = NULL;
        *ret = fail(c, 400, "BadRequest", "%s", err.msg);
        return -1;
    }
    /* No selector is NULL: testing an empty one still looks up every object's labels. */
    if (blank(q(c, "labelSelector"))) {
        ty_selector_free(*labels);
        *labels = NULL;
    }
    if (blank(q(c, "fieldSelector"))) {
        ty_selector_free(*fields);
        *fields = NULL;
    }
    return 0;
}

static bool wants_table(call *c)
{
    const char *accept = hdr(c, "Accept");
    return accept && strstr(accept, "as=Table");
}

static const char *include_object(call *c)
{
    const char *v = q(c, "includeObject");
    return v && *v ? v : "Metadata";
}

static json_t *table_of(const char *resource, const json_t *items, const char *include)
{
    return ty_table_build(resource, items, include, ty_time_now_ns());
}

/* A Table whose rows carry their object's metadata (kubectl's default) or nothing, written as
 * text: each row's cells from an object holding only the values they read, and its metadata
 * copied from the stored text. Rows are written from picked[*from] on until a page's bytes
 * are written; *from gets where they stopped. */
static void table_text_rows(call *c, ty_buf *b, const ty_store_item *all, const size_t *picked,
                            size_t n, size_t *from)
{
    const char *resource = c->ri->resource;
    int64_t now = ty_time_now_ns();
    bool first = true;
    size_t k = *from;
    for (; k < n && b->len < c->srv->table_page_bytes; k++) {
        const ty_store_item *it = &all[picked[k]];
        const char *meta;
        size_t meta_len;
        if (!ty_json_text_at(it->text, it->len, "metadata", &meta, &meta_len))
            continue;
        json_t *o = ty_table_row_source(resource, it->text, it->len);
        if (!o)
            continue;
        ty_table_text_row(b, first, resource, o, meta, meta_len, include_object(c), now);
        first = false;
        json_decref(o);
    }
    *from = k;
}

static enum MHD_Result handle_watch(call *c);

static enum MHD_Result handle_list(call *c)
{
    if (q_true(c, "watch"))
        return handle_watch(c);
    enum MHD_Result ret;
    int64_t limit = 0, timeout = 0;
    uint64_t rv_asked;
    /* Every list answers the current state (the store keeps no older one); a resourceVersion
     * must still be one, and timeoutSeconds a number, as the API server decodes them. */
    if (q_int64(c, "limit", &limit, &ret) < 0 ||
        q_int64(c, "timeoutSeconds", &timeout, &ret) < 0 ||
        q_resource_version(c, &rv_asked, &ret) < 0)
        return ret;
    ty_selector *labels, *fields;
    if (parse_selectors(c, &labels, &fields, &ret) < 0)
        return ret;
    /* Tables (what `kubectl get` asks for) are paged by their bytes, not by `limit` (the API
     * lets a server not support limit: "Servers may choose not to support the limit
     * argument"): kubectl asks for 500 rows a request through a client-side rate limiter of 5
     * requests a second, so 10,000 rows in 20 requests take kubectl two seconds of waiting
     * alone. A Table of rows with their metadata is ~350 bytes a row; one page holds
     * table_page_bytes of them (8 MiB) and a continue token says where the next starts.
     * Lists of objects (client libraries, informers) honour limit. */
    bool text_table = wants_table(c) && strcmp(include_object(c), "Object") != 0;
    if (text_table)
        limit = 0;
    TY_AUTOFREE char *after = NULL;
    if (q(c, "continue") && *q(c, "continue") && rv_asked) {
        ty_selector_free(labels);
        ty_selector_free(fields);
        return fail(c, 400, "BadRequest",
                    "specifying resource version is not allowed when using continue");
    }
    if (q(c, "continue") && *q(c, "continue") && !(after = ty_srv_continue_decode(q(c, "continue")))) {
        ty_selector_free(labels);
        ty_selector_free(fields);
        return fail(c, 400, "BadRequest", "continue key is not valid: invalid token");
    }
    uint64_t rev = ty_store_revision(c->srv->store);
    const label_view *lv = labels ? label_view_of(c->srv, c->ri->resource, c->path.ns) : NULL;
    TY_AUTOFREE ty_store_item *own = NULL;
    size_t count = lv ? lv->n : ty_store_list_items(c->srv->store, c->ri->resource, c->path.ns, &own);
    const ty_store_item *all = lv ? lv->items : own;
    TY_AUTOFREE size_t *picked = ty_malloc((count + 1) * sizeof(size_t));
    size_t npicked = 0, remaining = 0;
    char *next = NULL;
    /* per label set of the view: 0 not evaluated yet, 1 matches, 2 does not */
    TY_AUTOFREE unsigned char *set_match = lv ? ty_calloc(lv->nsets + 1, 1) : NULL;
    /* The list is sorted: a continued list starts by binary search, not by a scan. */
    size_t start = 0;
    if (after) {
        size_t hi = count;
        while (start < hi) {
            size_t mid = start + (hi - start) / 2;
            if (ty_srv_continue_compare(all[mid].key, after) <= 0)
                start = mid + 1;
            else
                hi = mid;
        }
    }
    for (size_t i = start; i < count; i++) {
        if (lv) {
            unsigned char *m = &set_match[lv->set[i]];
            if (!*m)
                *m = ty_label_selector_matches(labels, lv->sets[lv->set[i]]) ? 1 : 2;
            if (*m != 1)
                continue;
        }
        if (fields && !ty_field_selector_matches_text(fields, all[i].text, all[i].len))
            continue;
        if (limit > 0 && (int64_t)npicked >= limit) {
            if (!lv && !fields) { /* every object left matches */
                remaining = count - i;
                break;
            }
            remaining++;
            continue;
        }
        picked[npicked++] = i;
    }
    ty_selector_free(labels);
    ty_selector_free(fields);
    TY_AUTOBUF ty_buf rows = TY_BUF_INIT;
    if (text_table) {
        size_t from = 0;
        table_text_rows(c, &rows, all, picked, npicked, &from);
        remaining = npicked - from;
        npicked = from;
    }
    if (remaining)
        next = ty_srv_continue_encode(all[picked[npicked - 1]].key);
    json_t *meta = json_object();
    json_object_set_new(meta, "resourceVersion", json_sprintf("%llu", (unsigned long long)rev));
    if (next) {
        json_object_set_new(meta, "continue", json_string(next));
        json_object_set_new(meta, "remainingItemCount", json_integer((json_int_t)remaining));
        free(next);
    }
    if (text_table) {
        TY_AUTOFREE char *meta_text = json_dumps(meta, JSON_COMPACT);
        json_decref(meta);
        ty_buf b = TY_BUF_INIT;
        ty_table_text_begin(&b, c->ri->resource, meta_text);
        ty_buf_add(&b, rows.data ? rows.data : "", rows.len);
        ty_buf_adds(&b, "]}");
        size_t len = b.len;
        return reply_text(c, 200, "application/json", ty_buf_steal(&b), len);
    }
    if (wants_table(c)) {
        /* In chunks, each object parsed and dropped after its chunk: 10,000 trees at once
         * would be hundreds of MB. */
        json_t *t = NULL;
        for (size_t k = 0; k < npicked;) {
            json_t *chunk = json_array();
            for (size_t end = k + 256; k < npicked && k < end; k++) {
                const ty_store_item *it = &all[picked[k]];
                json_t *o = item_tree(it);
                if (o)
                    json_array_append_new(chunk, typed(c->ri, o));
                json_decref(o);
            }
            json_t *part = table_of(c->ri->resource, chunk, include_object(c));
            json_decref(chunk);
            if (!t) {
                t = part;
                continue;
            }
            json_array_extend(json_object_get(t, "rows"), json_object_get(part, "rows"));
            json_decref(part);
        }
        if (!t) {
            json_t *none = json_array();
            t = table_of(c->ri->resource, none, include_object(c));
            json_decref(none);
        }
        json_object_set_new(t, "metadata", meta);
        return reply(c, 200, t);
    }
    TY_AUTOFREE char *gv = group_version(c->ri);
    TY_AUTOFREE char *meta_text = json_dumps(meta, JSON_COMPACT);
    json_decref(meta);
    ty_buf b = TY_BUF_INIT;
    ty_buf_addf(&b, "{\"kind\":\"%sList\",\"apiVersion\":\"%s\",\"metadata\":%s,\"items\":[",
                c->ri->kind, gv, meta_text);
    for (size_t k = 0; k < npicked; k++) {
        if (k)
            ty_buf_addc(&b, ',');
        add_item_text(&b, c->ri, &all[picked[k]]);
    }
    ty_buf_adds(&b, "]}");
    size_t len = b.len;
    return reply_text(c, 200, "application/json", ty_buf_steal(&b), len);
}

/* `stored`: obj is the store's (not a dry run's result): its stored text is the answer. */
static enum MHD_Result reply_object(call *c, int code, const json_t *obj, bool stored)
{
    ty_store_item it;
    const char *ons = ty_obj_namespace(obj);
    if (stored && !wants_table(c) &&
        ty_store_get_item(c->srv->store, c->ri->resource, ons ? ons : "", ty_obj_name(obj), &it) &&
        it.typed && it.rv == obj_rv(obj))
        return reply_text(c, code, "application/json", ty_strndup(it.text, it.len), it.len);
    json_t *t = typed(c->ri, obj);
    if (wants_table(c)) {
        json_t *arr = json_pack("[o]", t);
        json_t *table = table_of(c->ri->resource, arr, include_object(c));
        json_decref(arr);
        return reply(c, code, table);
    }
    return reply(c, code, t);
}

static enum MHD_Result handle_log(call *c, json_t *pod);

static enum MHD_Result handle_get(call *c)
{
    enum MHD_Result ret;
    uint64_t rv_asked;
    if (q_resource_version(c, &rv_asked, &ret) < 0)
        return ret;
    ty_store_item it;
    if (!c->path.sub && !wants_table(c) &&
        ty_store_get_item(c->srv->store, c->ri->resource, c->path.ns ? c->path.ns : "",
                          c->path.name, &it) &&
        it.typed)
        return reply_text(c, 200, "application/json", ty_strndup(it.text, it.len), it.len);
    json_t *obj = ty_store_get(c->srv->store, c->ri->resource, c->path.ns ? c->path.ns : "",
                               c->path.name);
    if (!obj)
        return fail_not_found(c, c->ri, c->path.name);
    if (c->path.sub && strcmp(c->path.sub, "log") == 0)
        ret = handle_log(c, obj);
    else
        ret = reply_object(c, 200, obj, true);
    json_decref(obj);
    return ret;
}

/* 32 ASCII letters and digits the API server uses for generateName suffixes. */
static void generate_name(json_t *meta)
{
    static const char alphabet[] = "bcdfghjklmnpqrstvwxz2456789";
    const char *prefix = json_string_value(json_object_get(meta, "generateName"));
    char suffix[6];
    for (int i = 0; i < 5; i++)
        suffix[i] = alphabet[(unsigned)rand() % (sizeof(alphabet) - 1)];
    suffix[5] = '\0';
    json_object_set_new(meta, "name", json_sprintf("%s%s", prefix, suffix));
}

/* The field manager of a write: ?fieldManager, else the user agent's product (before its
 * first "/"), as the API server defaults it. */
static char *field_manager(call *c)
{
    const char *m = q(c, "fieldManager");
    if (m && *m)
        return ty_strdup(m);
    const char *ua = hdr(c, "User-Agent");
    if (ua && *ua)
        return ty_strndup(ua, strcspn(ua, "/"));
    return ty_strdup("unknown");
}

static int check_field_manager(call *c, enum MHD_Result *ret)
{
    const char *m = q(c, "fieldManager");
    if (m && strlen(m) > 128) {
        *ret = fail(c, 400, "BadRequest",
                    "fieldManager: Too long: may not be more than 128 bytes");
        return -1;
    }
    return 0;
}

/* Records the write of `obj` (over `live`, NULL on create) by the request's field manager in
 * obj's managedFields - once the object has managedFields, that is once someone applied it
 * server-side (or a client sent them). Kubernetes records every writer from the start; that
 * doubles the stored text of a job (its field set is as large as its spec), which the store's
 * memory and restart targets cannot afford for objects nobody applies server-side. The cost:
 * an apply conflicts only with the managers that wrote after the first apply. */
static bool tracks_managers(const json_t *live, const json_t *obj)
{
    const json_t *mine = json_object_get(json_object_get(obj, "metadata"), "managedFields");
    const json_t *theirs = json_object_get(json_object_get(live, "metadata"), "managedFields");
    return json_array_size(mine) > 0 || json_array_size(theirs) > 0;
}

static void record_update(call *c, const json_t *live, json_t *obj)
{
    if (!tracks_managers(live, obj))
        return;
    TY_AUTOFREE char *manager = field_manager(c);
    TY_AUTOFREE char *gv = group_version(c->ri);
    char now[64];
    ty_time_format_rfc3339(ty_time_now_ns(), now, sizeof now, 0);
    ty_apply_req areq = {.resource = c->ri->resource, .api_version = gv, .manager = manager,
                        .now = now};
    ty_apply_record_update(&areq, live, obj);
}

static enum MHD_Result create_object(call *c, json_t *obj, bool applied);

static enum MHD_Result handle_create(call *c)
{
    enum MHD_Result ret;
    if (check_dry_run(c, &ret) < 0 || check_field_manager(c, &ret) < 0)
        return ret;
    json_t *obj = read_body(c, &ret);
    if (!obj)
        return ret;
    if (check_kind(c, obj, &ret) < 0) {
        json_decref(obj);
        return ret;
    }
    return create_object(c, obj, false);
}

/* Creates `obj` as a POST does, consuming it: when nothing else references it, the tree itself
 * is stored, not a copy. `applied`: server-side apply made it and set its managedFields. */
static enum MHD_Result create_object(call *c, json_t *obj, bool applied)
{
    enum MHD_Result ret;
    TY_AUTOFREE char *name_copy = NULL;
    TY_CLEANUP_ERROR ty_error err = TY_ERROR_INIT;
    json_t *stored = NULL;
    json_t *meta = json_object_get(obj, "metadata");
    if (!json_is_object(meta)) {
        meta = json_object();
        json_object_set_new(obj, "metadata", meta);
    }
    const char *ns = json_string_value(json_object_get(meta, "namespace"));
    if (c->ri->namespaced) {
        if (!c->path.ns) {
            ret = fail(c, 404, "NotFound", "the server could not find the requested resource");
            goto out;
        }
        if (ns && *ns && strcmp(ns, c->path.ns) != 0) {
            ret = fail(c, 400, "BadRequest",
                       "the namespace of the provided object does not match the namespace sent "
                       "on the request");
            goto out;
        }
        json_object_set_new(meta, "namespace", json_string(c->path.ns));
    } else {
        json_object_del(meta, "namespace");
    }
    const char *name = json_string_value(json_object_get(meta, "name"));
    if ((!name || !*name) && json_string_value(json_object_get(meta, "generateName")))
        generate_name(meta);
    name = json_string_value(json_object_get(meta, "name"));
    if (!name || !*name) {
        ty_field_errors errs = TY_FIELD_ERRORS_INIT;
        ty_field_errors_add(&errs, "metadata.name", (ty_pos){0, 0},
                            "Required value: name or generateName is required");
        ret = fail_invalid(c, "", &errs);
        ty_field_errors_free(&errs);
        goto out;
    }
    const char *bad = check_name(c->ri, name);
    if (bad) {
        ty_field_errors errs = TY_FIELD_ERRORS_INIT;
        ty_field_errors_add(&errs, "metadata.name", (ty_pos){0, 0}, "Invalid value: \"%s\": %s",
                            name, bad);
        ret = fail_invalid(c, name, &errs);
        ty_field_errors_free(&errs);
        goto out;
    }
    name_copy = ty_strdup(name);
    if (c->ri->namespaced && !exists(c->srv, "namespaces", "", c->path.ns)) {
        ret = fail_not_found(c, ty_kind_of_resource("namespaces"), c->path.ns);
        goto out;
    }
    /* With a status subresource, status is not the client's to set on create (the API
     * server resets it); a namespace starts Active. */
    if (c->ri->has_status)
        json_object_del(obj, "status");
    if (strcmp(c->ri->resource, "namespaces") == 0) {
        json_object_set_new(obj, "status", json_pack("{s:s}", "phase", "Active"));
        if (!json_object_get(obj, "spec"))
            json_object_set_new(obj, "spec", json_pack("{s:[s]}", "finalizers", "kubernetes"));
    }
    /* Server-managed fields come from the store, never from the client. */
    json_object_del(meta, "resourceVersion");
    json_object_del(meta, "uid");
    json_object_del(meta, "creationTimestamp");
    json_object_del(meta, "deletionTimestamp");
    if (admit(c, obj, name_copy, &ret) < 0)
        goto out;
    /* Mutating admission after validation, as webhooks run (Kueue suspends queued jobs). */
    if (c->srv->mutate)
        c->srv->mutate(c->srv->mutate_ctx, c->ri->resource, obj);
    if (!applied)
        record_update(c, NULL, obj);
    if (dry_run(c)) {
        if (exists(c->srv, c->ri->resource, c->path.ns, name_copy))
            ret = fail_exists(c, name_copy);
        else
            ret = reply_object(c, 201, obj, false);
        goto out;
    }
    int rc = ty_store_create_owned(c->srv->store, c->ri->resource, obj, NULL, &stored, &err);
    obj = NULL;
    if (rc < 0) {
        ret = fail_store(c, name_copy, &err);
        goto out;
    }
    ret = reply_object(c, 201, stored, true);
    json_decref(stored);
out:
    json_decref(obj);
    return ret;
}

/* A DELETE's options: the query's and the body's DeleteOptions (the body wins), as the API
 * server decodes them. */
typedef struct delete_req {
    ty_store_delete_opts o; /* its strings point into the fields below */
    char *propagation, *uid, *rv;
    bool dry;
} delete_req;

static void delete_req_free(delete_req *d)
{
    free(d->propagation);
    free(d->uid);
    free(d->rv);
}

/* Fills *d; returns -1 after answering 400 for options the API server would not decode. */
static int parse_delete_options(call *c, delete_req *d, enum MHD_Result *ret)
{
    memset(d, 0, sizeof *d);
    int64_t grace = -1;
    bool has_grace = q(c, "gracePeriodSeconds") && *q(c, "gracePeriodSeconds");
    if (check_dry_run(c, ret) < 0 || q_int64(c, "gracePeriodSeconds", &grace, ret) < 0)
        return -1;
    const char *policy = q(c, "propagationPolicy");
    json_t *opts = NULL;
    if (c->r->body.len) {
        char mt[128];
        request_media_type(c, mt, sizeof mt);
        if (*mt && strcmp(mt, "application/json") != 0) {
            *ret = fail(c, 415, "UnsupportedMediaType",
                        "the body of the request was in an unknown format - accepted media "
                        "types include: application/json");
            return -1;
        }
        json_error_t je;
        opts = json_loadb(c->r->body.data, c->r->body.len, 0, &je);
        if (!json_is_object(opts)) {
            json_decref(opts);
            *ret = fail(c, 400, "BadRequest", "error decoding DeleteOptions: %s",
                        opts ? "the body is not a JSON object" : je.text);
            return -1;
        }
    }
    json_t *g = json_object_get(opts, "gracePeriodSeconds");
    json_t *pre = json_object_get(opts, "preconditions");
    json_t *uid = json_object_get(pre, "uid"), *rv = json_object_get(pre, "resourceVersion");
    const char *bad = NULL;
    if (g && !json_is_null(g) && !json_is_integer(g))
        bad = "gracePeriodSeconds of type int64";
    else if (pre && !json_is_null(pre) && !json_is_object(pre))
        bad = "preconditions of type v1.Preconditions";
    else if (uid && !json_is_null(uid) && !json_is_string(uid))
        bad = "preconditions.uid of type types.UID";
    else if (rv && !json_is_null(rv) && !json_is_string(rv))
        bad = "preconditions.resourceVersion of type string";
    if (bad) {
        json_decref(opts);
        *ret = fail(c, 400, "BadRequest",
                    "error decoding DeleteOptions: json: cannot unmarshal a value into Go struct "
                    "field DeleteOptions.%s", bad);
        return -1;
    }
    if (json_is_integer(g)) {
        grace = json_integer_value(g);
        has_grace = true;
    }
    if (json_string_value(json_object_get(opts, "propagationPolicy")))
        policy = json_string_value(json_object_get(opts, "propagationPolicy"));
    d->dry = dry_run(c) || (json_is_array(json_object_get(opts, "dryRun")) &&
                            json_array_size(json_object_get(opts, "dryRun")) > 0);
    if (policy && strcmp(policy, "Foreground") != 0 && strcmp(policy, "Background") != 0 &&
        strcmp(policy, "Orphan") != 0) {
        *ret = fail(c, 400, "BadRequest",
                    "propagationPolicy must be one of Foreground, Background, Orphan; got %s",
                    policy);
        json_decref(opts);
        return -1;
    }
    d->propagation = policy ? ty_strdup(policy) : NULL;
    d->uid = json_string_value(uid) ? ty_strdup(json_string_value(uid)) : NULL;
    d->rv = json_string_value(rv) ? ty_strdup(json_string_value(rv)) : NULL;
    json_decref(opts);
    /* A negative grace period is one second, as the pod strategy makes it (the store reads
     * -1 as "the pod's own"); a huge one is kept, and the runtime caps what it waits. */
    if (has_grace && grace < 0)
        grace = 1;
    d->o = (ty_store_delete_opts){.grace_seconds = grace, .propagation = d->propagation,
                                  .precondition_uid = d->uid, .precondition_rv = d->rv};
    return 0;
}

/* DELETE on a collection: every object the selectors match, each as a single DELETE would;
 * answers the list of what was deleted, as it was before. The selectors read the stored texts,
 * and each answer item is its object's stored text: no tree is held for the collection
 * (10,000 jobs parsed at once would weigh ~300 MB). */
static enum MHD_Result handle_delete_collection(call *c)
{
    enum MHD_Result ret;
    delete_req d;
    ty_selector *labels, *fields;
    if (parse_delete_options(c, &d, &ret) < 0)
        return ret;
    if (parse_selectors(c, &labels, &fields, &ret) < 0) {
        delete_req_free(&d);
        return ret;
    }
    ty_store *store = c->srv->store;
    /* The keys first: a deletion (and its cascade) invalidates the listed items. */
    TY_AUTOFREE ty_store_item *all = NULL;
    size_t n = ty_store_list_items(store, c->ri->resource, c->path.ns, &all);
    char **keys = ty_malloc((n + 1) * sizeof(char *));
    size_t nkeys = 0;
    for (size_t i = 0; i < n; i++)
        if ((!labels || ty_label_selector_matches(labels, all[i].labels)) &&
            (!fields || ty_field_selector_matches_text(fields, all[i].text, all[i].len)))
            keys[nkeys++] = ty_strdup(all[i].key);
    ty_selector_free(labels);
    ty_selector_free(fields);
    TY_AUTOBUF ty_buf items = TY_BUF_INIT;
    /* Each item as a DELETE of it with the same options (preconditions included); the first
     * refusal other than "gone meanwhile" is the answer, as the API server's. */
    TY_CLEANUP_ERROR ty_error first = TY_ERROR_INIT;
    TY_AUTOFREE char *first_name = NULL;
    d.o.dry_run = d.dry;
    for (size_t i = 0; i < nkeys; i++) {
        char *slash = strchr(keys[i], '/'); /* "namespace/name", "" for cluster-scoped */
        *slash = '\0';
        const char *ns = keys[i], *name = slash + 1;
        ty_store_item it;
        if (!ty_store_get_item(store, c->ri->resource, ns, name, &it))
            continue; /* gone meanwhile (a cascade) */
        size_t at = items.len;
        if (at)
            ty_buf_adds(&items, ",");
        add_item_text(&items, c->ri, &it);
        TY_CLEANUP_ERROR ty_error err = TY_ERROR_INIT;
        if (ty_store_delete_ex(store, c->ri->resource, ns, name, &d.o, NULL, &err) < 0) {
            items.len = at; /* refused: not in the answer */
            items.data[at] = '\0';
            if (!first.msg && err.code != TY_STORE_NOT_FOUND) {
                first = err;
                err = (ty_error)TY_ERROR_INIT;
                first_name = ty_strdup(name);
            }
        }
    }
    for (size_t i = 0; i < nkeys; i++)
        free(keys[i]);
    free(keys);
    delete_req_free(&d);
    if (first.msg)
        return fail_store(c, first_name, &first);
    TY_AUTOFREE char *gv = group_version(c->ri);
    ty_buf body = TY_BUF_INIT;
    ty_buf_addf(&body, "{\"kind\":\"%sList\",\"apiVersion\":\"%s\",\"metadata\":"
                       "{\"resourceVersion\":\"%llu\"},\"items\":[",
                c->ri->kind, gv, (unsigned long long)ty_store_revision(store));
    ty_buf_add(&body, items.data, items.len);
    ty_buf_adds(&body, "]}");
    return reply_text(c, 200, "application/json", body.data, body.len);
}

/* Stores `obj` (already admitted) as an update of the main resource or of its status. */
static enum MHD_Result store_update(call *c, json_t *obj)
{
    enum MHD_Result ret;
    bool status = c->path.sub && strcmp(c->path.sub, "status") == 0;
    if (dry_run(c))
        return reply_object(c, 200, obj, false);
    json_t *stored = NULL;
    TY_CLEANUP_ERROR ty_error err = TY_ERROR_INIT;
    int rc = status ? ty_store_update_status(c->srv->store, c->ri->resource, obj, &stored, &err)
                    : ty_store_update(c->srv->store, c->ri->resource, obj, &stored, &err);
    if (rc < 0)
        return fail_store(c, c->path.name, &err);
    ret = reply_object(c, 200, stored, true);
    json_decref(stored);
    return ret;
}

static enum MHD_Result handle_put(call *c)
{
    enum MHD_Result ret;
    if (check_dry_run(c, &ret) < 0 || check_field_manager(c, &ret) < 0)
        return ret;
    json_t *obj = read_body(c, &ret);
    if (!obj)
        return ret;
    if (check_kind(c, obj, &ret) < 0)
        goto out;
    json_t *meta = json_object_get(obj, "metadata");
    const char *name = json_string_value(json_object_get(meta, "name"));
    if (!name || strcmp(name, c->path.name) != 0) {
        ret = fail(c, 400, "BadRequest",
                   "the name of the object (%s) does not match the name on the URL (%s)",
                   name ? name : "", c->path.name);
        goto out;
    }
    if (c->ri->namespaced)
        json_object_set_new(meta, "namespace", json_string(c->path.ns));
    json_t *cur = ty_store_get(c->srv->store, c->ri->resource, c->path.ns ? c->path.ns : "",
                               c->path.name);
    if (!cur) {
        ret = fail_not_found(c, c->ri, c->path.name);
        goto out;
    }
    /* Custom resources must name the version they update (the API server's CRD strategy
     * refuses an unconditional update); built-in kinds allow it (AllowUnconditionalUpdate):
     * the update then applies to the current version. */
    const char *rv = json_string_value(json_object_get(meta, "resourceVersion"));
    bool builtin = c->ri->builtin;
    if ((!rv || !*rv) && builtin) {
        json_object_set(meta, "resourceVersion",
                        json_object_get(json_object_get(cur, "metadata"), "resourceVersion"));
    } else if (!rv || !*rv) {
        json_decref(cur);
        ty_field_errors errs = TY_FIELD_ERRORS_INIT;
        ty_field_errors_add(&errs, "metadata.resourceVersion", (ty_pos){0, 0},
                            "Invalid value: 0x0: must be specified for an update");
        ret = fail_invalid(c, c->path.name, &errs);
        ty_field_errors_free(&errs);
        goto out;
    }
    if (admit(c, obj, c->path.name, &ret) < 0) {
        json_decref(cur);
        goto out;
    }
    if (!c->path.sub)
        record_update(c, cur, obj);
    json_decref(cur);
    ret = store_update(c, obj);
out:
    json_decref(obj);
    return ret;
}

static enum MHD_Result handle_apply(call *c);

static enum MHD_Result handle_patch(call *c)
{
    enum MHD_Result ret;
    if (check_dry_run(c, &ret) < 0 || check_field_manager(c, &ret) < 0)
        return ret;
    /* The patch types the API server takes, matched exactly (a PATCH without one is 415
     * there too). */
    char type[128];
    request_media_type(c, type, sizeof type);
    if (strcmp(type, "application/apply-patch+yaml") == 0)
        return handle_apply(c);
    if (strcmp(type, "application/merge-patch+json") != 0 &&
        strcmp(type, "application/json-patch+json") != 0 &&
        strcmp(type, "application/strategic-merge-patch+json") != 0)
        return fail(c, 415, "UnsupportedMediaType",
                    "the body of the request was in an unknown format - accepted media types "
                    "include: application/json-patch+json, application/merge-patch+json, "
                    "application/apply-patch+yaml, application/strategic-merge-patch+json");
    json_error_t je;
    json_t *patch = json_loadb(c->r->body.data, c->r->body.len, 0, &je);
    if (!patch)
        return fail(c, 400, "BadRequest", "error decoding patch: %s", je.text);
    json_t *cur = ty_store_get(c->srv->store, c->ri->resource, c->path.ns ? c->path.ns : "",
                               c->path.name);
    if (!cur) {
        json_decref(patch);
        return fail_not_found(c, c->ri, c->path.name);
    }
    json_t *obj = NULL;
    TY_CLEANUP_ERROR ty_error err = TY_ERROR_INIT;
    int rc;
    if (strcmp(type, "application/merge-patch+json") == 0)
        rc = ty_patch_merge(cur, patch, &obj, &err);
    else if (strcmp(type, "application/json-patch+json") == 0)
        rc = ty_patch_json(cur, patch, &obj, &err);
    else
        rc = ty_patch_strategic(c->ri->resource, cur, patch, &obj, &err);
    json_decref(patch);
    if (rc < 0) {
        json_decref(cur);
        if (err.code == 415)
            return fail(c, 415, "UnsupportedMediaType",
                        "the body of the request was in an unknown format - accepted media types "
                        "include: application/json-patch+json, application/merge-patch+json");
        return fail(c, 422, "Invalid", "%s", err.msg);
    }
    /* A patch that sets no resourceVersion applies to the current object. */
    json_t *meta = json_object_get(obj, "metadata");
    if (!json_is_object(meta) || !json_object_get(meta, "resourceVersion"))
        json_object_set(json_object_get(obj, "metadata"), "resourceVersion",
                        json_object_get(json_object_get(cur, "metadata"), "resourceVersion"));
    const char *name = json_string_value(json_object_get(meta, "name"));
    if (!name || strcmp(name, c->path.name) != 0) {
        json_decref(cur);
        json_decref(obj);
        return fail(c, 400, "BadRequest", "the name of the object cannot be changed by a patch");
    }
    if (check_kind(c, obj, &ret) < 0 || admit(c, obj, c->path.name, &ret) < 0) {
        json_decref(cur);
        json_decref(obj);
        return ret;
    }
    if (!c->path.sub)
        record_update(c, cur, obj);
    json_decref(cur);
    ret = store_update(c, obj);
    json_decref(obj);
    return ret;
}

/* Server-side apply (PATCH application/apply-patch+yaml): creates the object when absent,
 * else merges the manager's configuration into it (api/apply.h); the result is admitted as
 * a POST or PUT is, and an apply that changes nothing writes nothing. */
static enum MHD_Result handle_apply(call *c)
{
    enum MHD_Result ret;
    const char *manager = q(c, "fieldManager");
    if (!manager || !*manager)
        return fail(c, 400, "BadRequest", "fieldManager is required for apply requests");
    if (c->path.sub)
        return fail(c, 415, "UnsupportedMediaType",
                    "server-side apply of the %s subresource is not supported", c->path.sub);
    json_t *cfg = read_body(c, &ret);
    if (!cfg)
        return ret;
    json_t *live = NULL, *merged = NULL, *causes = NULL;
    TY_AUTOFREE char *want_rv = NULL;
    TY_AUTOFREE char *gv = group_version(c->ri);
    TY_CLEANUP_ERROR ty_error err = TY_ERROR_INIT;
    if (check_kind(c, cfg, &ret) < 0)
        goto out;
    json_t *meta = json_object_get(cfg, "metadata");
    const char *name = json_string_value(json_object_get(meta, "name"));
    if (!name || strcmp(name, c->path.name) != 0) {
        ret = fail(c, 400, "BadRequest",
                   "the name of the object (%s) does not match the name on the URL (%s)",
                   name ? name : "", c->path.name);
        goto out;
    }
    const char *ns = json_string_value(json_object_get(meta, "namespace"));
    if (c->ri->namespaced && ns && *ns && strcmp(ns, c->path.ns) != 0) {
        ret = fail(c, 400, "BadRequest",
                   "the namespace of the provided object does not match the namespace sent on "
                   "the request");
        goto out;
    }
    if (c->ri->namespaced)
        json_object_set_new(meta, "namespace", json_string(c->path.ns));
    /* A resourceVersion in the configuration is a precondition, as for an update. */
    if (json_string_value(json_object_get(meta, "resourceVersion")))
        want_rv = ty_strdup(json_string_value(json_object_get(meta, "resourceVersion")));
    json_object_del(meta, "resourceVersion");
    json_object_del(meta, "managedFields");
    char now[64];
    ty_time_format_rfc3339(ty_time_now_ns(), now, sizeof now, 0);
    ty_apply_req areq = {.resource = c->ri->resource, .api_version = gv, .manager = manager,
                        .force = q_true(c, "force"), .now = now};
    live = ty_store_get(c->srv->store, c->ri->resource, c->path.ns ? c->path.ns : "",
                        c->path.name);
    if (want_rv && (!live || strcmp(want_rv, json_string_value(json_object_get(
                                                 json_object_get(live, "metadata"),
                                                 "resourceVersion"))) != 0)) {
        ret = live ? fail_conflict(c, c->path.name, NULL)
                   : fail_not_found(c, c->ri, c->path.name);
        goto out;
    }
    if (ty_apply(&areq, live, cfg, &merged, &causes, &err) < 0) {
        json_t *d = details(c->ri, c->path.name, false);
        json_object_set(d, "causes", causes ? causes : json_array());
        ret = reply(c, 409, ty_srv_status(409, "Conflict", err.msg, d));
        goto out;
    }
    if (!live) {
        /* merged may share parts with cfg: the extra reference makes the store copy it */
        ret = create_object(c, json_incref(merged), true);
        goto out;
    }
    json_object_set(json_object_get(merged, "metadata"), "resourceVersion",
                    json_object_get(json_object_get(live, "metadata"), "resourceVersion"));
    if (admit(c, merged, c->path.name, &ret) < 0)
        goto out;
    if (json_equal(merged, live)) {
        ret = reply_object(c, 200, live, true);
        goto out;
    }
    ret = store_update(c, merged);
out:
    json_decref(causes);
    json_decref(merged);
    json_decref(live);
    json_decref(cfg);
    return ret;
}

static enum MHD_Result handle_delete(call *c)
{
    enum MHD_Result ret;
    delete_req d;
    if (parse_delete_options(c, &d, &ret) < 0)
        return ret;
    bool dry = d.dry;
    const char *ns = c->path.ns ? c->path.ns : "";
    json_t *cur = ty_store_get(c->srv->store, c->ri->resource, ns, c->path.name);
    if (!cur) {
        delete_req_free(&d);
        return fail_not_found(c, c->ri, c->path.name);
    }
    TY_CLEANUP_ERROR ty_error err = TY_ERROR_INIT;
    /* A dry run checks the preconditions too (the store's dry run changes nothing). */
    d.o.dry_run = dry;
    if (ty_store_delete_ex(c->srv->store, c->ri->resource, ns, c->path.name, &d.o, NULL,
                           &err) < 0) {
        json_decref(cur);
        delete_req_free(&d);
        return fail_store(c, c->path.name, &err);
    }
    delete_req_free(&d);
    if (dry) {
        ret = reply_object(c, 200, cur, true);
        json_decref(cur);
        return ret;
    }
    json_t *after = ty_store_get(c->srv->store, c->ri->resource, ns, c->path.name);
    if (after) {
        /* Marked for deletion (finalizers, a running pod): the object as it now is. */
        ret = reply_object(c, 200, after, true);
        json_decref(after);
    } else if (c->ri->ops) {
        json_t *det = details(c->ri, c->path.name, false);
        json_object_set_new(det, "uid", json_string(ty_obj_uid(cur) ? ty_obj_uid(cur) : ""));
        ret = reply(c, 200,
                    json_pack("{s:s, s:s, s:{}, s:s, s:o}", "kind", "Status", "apiVersion", "v1",
                              "metadata", "status", "Success", "details", det));
    } else {
        ret = reply_object(c, 200, cur, true);
    }
    json_decref(cur);
    return ret;
}

/* ---------- streams: watches and followed logs ---------- */

static int64_t mono_ms(void)
{
    return ty_time_mono_ns() / 1000000;
}

/* Lets MHD call the stream's reader again: data arrived or the stream ended. */
static void stream_wake(stream *st)
{
    if (st->suspended && st->conn) {
        st->suspended = false;
        if (st->sock_active) {
            uv_poll_stop(&st->sock);
            st->sock_active = false;
        }
        MHD_resume_connection(st->conn);
        kick(st->srv);
    }
}

static void stream_end(stream *st)
{
    st->ended = true;
    stream_wake(st);
}

static void stream_send(stream *st, const char *data, size_t len)
{
    if (st->ended)
        return;
    if (st->limit_bytes > 0 && st->sent_bytes + (int64_t)len >= st->limit_bytes) {
        len = (size_t)(st->limit_bytes - st->sent_bytes);
        st->ended = true; /* limitBytes reached */
    }
    st->sent_bytes += (int64_t)len;
    ty_buf_add(&st->out, data, len);
    stream_wake(st);
}

/* The socket of a suspended stream became readable or hung up. A client sends nothing on a
 * watch or a followed log, so that is the client going away: end the stream now, which
 * resumes the connection, and MHD finds the socket closed and frees the connection (and the
 * watch), instead of holding both until the next event (a watch of a quiet resource: until
 * its timeout, half an hour). Bytes from the client (a pipelined request) cannot be told from
 * that; the stream then stops looking and learns of a close at its next write, as before. */
static void on_stream_socket(uv_poll_t *h, int status, int events)
{
    (void)events;
    stream *st = h->data;
    uv_poll_stop(h);
    st->sock_active = false;
    char b;
    uv_os_fd_t fd = -1;
    uv_fileno((uv_handle_t *)h, &fd);
    ssize_t n = status < 0 ? -1 : recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n > 0) {
        st->sock_useless = true;
        return;
    }
    if (n < 0 && status >= 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        if (st->suspended)
            stream_watch_socket(st);
        return;
    }
    stream_end(st);
}

/* Watches the client's socket while the stream is suspended (MHD does not: its epoll set
 * leaves a suspended connection alone). */
static void stream_watch_socket(stream *st)
{
    if (st->sock_useless || st->sock_active || !st->conn)
        return;
    if (!st->sock_init) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(st->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (!ci || uv_poll_init_socket(st->srv->loop, &st->sock, ci->connect_fd) < 0) {
            st->sock_useless = true;
            return;
        }
        st->sock_init = true;
        st->sock.data = st;
        st->handles++;
    }
    if (uv_poll_start(&st->sock, UV_READABLE | UV_DISCONNECT, on_stream_socket) == 0)
        st->sock_active = true;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    stream *st = cls;
    if (st->off < st->out.len) {
        size_t n = st->out.len - st->off;
        n = n < max ? n : max;
        memcpy(buf, st->out.data + st->off, n);
        st->off += n;
        if (st->off == st->out.len) {
            ty_buf_reset(&st->out);
            st->off = 0;
        }
        st->srv->streamed = true;
        return (ssize_t)n;
    }
    if (st->ended)
        return MHD_CONTENT_READER_END_OF_STREAM;
    /* Nothing to send: park the connection until stream_wake(). MHD allows suspending from a
     * content reader. While suspended MHD does not notice a client that went away; the stream
     * watches the socket for that itself (on_stream_socket). */
    st->suspended = true;
    MHD_suspend_connection(st->conn);
    stream_watch_socket(st);
    return 0;
}

static void stream_free_cb(uv_handle_t *h)
{
    stream *st = h->data;
    if (--st->handles > 0)
        return;
    ty_buf_free(&st->out);
    ty_buf_free(&st->partial);
    ty_buf_free(&st->joined);
    ty_selector_free(st->labels);
    ty_selector_free(st->fields);
    free(st->ns);
    free(st->include_object);
    free(st->pod_ns);
    free(st->pod_name);
    free(st->pod_uid);
    free(st->container);
    free(st->log_file);
    free(st);
}

/* MHD destroyed the response: the connection is gone. */
static void stream_response_freed(void *cls)
{
    stream *st = cls;
    st->conn = NULL;
    st->srv->nstreams--;
    if (st->watch_id >= 0)
        ty_store_unwatch(st->srv->store, st->watch_id);
    st->watch_id = -1;
    if (st->fd >= 0)
        close(st->fd);
    st->fd = -1;
    if (st->prev)
        st->prev->next = st->next;
    else
        st->srv->streams = st->next;
    if (st->next)
        st->next->prev = st->prev;
    uv_timer_stop(&st->timer);
    uv_close((uv_handle_t *)&st->timer, stream_free_cb);
    /* before MHD closes the socket, so that libuv never polls a closed (or reused) fd */
    if (st->sock_init)
        uv_close((uv_handle_t *)&st->sock, stream_free_cb);
    st->sock_active = false;
}

/* A stream that will not be answered after all (the request failed before its reply). */
static void stream_abandon(stream *st) { stream_response_freed(st); }

/* Watches and followed logs hold their connection for good, so they may take at most half of
 * the connections: the other half stays for requests, which make room among themselves
 * (make_room). Kubernetes answers an overloaded server with 429 too; clients retry. */
static bool streams_full(call *c, enum MHD_Result *ret)
{
    if (c->srv->nstreams < c->srv->conn_limit / 2)
        return false;
    *ret = fail(c, 429, "TooManyRequests",
                "too many open watches and log streams (%u): close some and retry",
                c->srv->nstreams);
    return true;
}

static stream *stream_new(call *c)
{
    stream *st = TY_NEW(stream);
    c->srv->nstreams++;
    st->srv = c->srv;
    st->conn = c->conn;
    st->watch_id = -1;
    st->fd = -1;
    ty_buf_init(&st->out);
    ty_buf_init(&st->partial);
    ty_buf_init(&st->joined);
    uv_timer_init(c->srv->loop, &st->timer);
    st->timer.data = st;
    st->handles = 1;
    st->next = c->srv->streams;
    if (st->next)
        st->next->prev = st;
    c->srv->streams = st;
    return st;
}

static enum MHD_Result stream_reply(call *c, stream *st, const char *type)
{
    struct MHD_Response *resp = MHD_create_response_from_callback(
        MHD_SIZE_UNKNOWN, 32 * 1024, stream_read, st, stream_response_freed);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache, private");
    enum MHD_Result ret = MHD_queue_response(c->conn, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return ret;
}

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
        it.typed && it.rv == obj_rv(obj)) {
        ty_buf b = TY_BUF_INIT;
        ty_buf_addf(&b, "{\"type\":\"%s\",\"object\":", type);
        ty_buf_add(&b, it.text, it.len);
        ty_buf_adds(&b, "}\n");
        stream_send(st, b.data, b.len);
        ty_buf_free(&b);
        return;
    }
    json_t *o;
    if (st->table) {
        json_t *arr = json_pack("[O]", obj);
        o = table_of(st->ri->resource, arr, st->include_object);
        json_decref(arr);
    } else {
        o = typed(st->ri, obj);
    }
    json_t *ev = json_pack("{s:s, s:o}", "type", type, "object", o);
    char *text = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);
    stream_send(st, text, strlen(text));
    stream_send(st, "\n", 1);
    free(text);
}

static void watch_event(stream *st, const char *type, const json_t *obj)
{
    watch_event_ex(st, type, obj, true);
}

static void watch_bookmark(stream *st)
{
    TY_AUTOFREE char *gv = group_version(st->ri);
    json_t *o = json_pack("{s:s, s:s, s:{}}", "kind", st->ri->kind, "apiVersion", gv,
                          "metadata");
    json_object_set_new(json_object_get(o, "metadata"), "resourceVersion",
                        json_sprintf("%llu", (unsigned long long)ty_store_committed_revision(st->srv->store)));
    json_t *ev = json_pack("{s:s, s:o}", "type", "BOOKMARK", "object", o);
    char *text = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);
    stream_send(st, text, strlen(text));
    stream_send(st, "\n", 1);
    free(text);
}

static bool watch_wants(const stream *st, const json_t *obj)
{
    if (st->ns) {
        const char *ons = ty_obj_namespace(obj);
        if (!ons || strcmp(ons, st->ns) != 0)
            return false;
    }
    return matches(obj, st->labels, st->fields);
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
            json_t *o = item_tree(&all[i]);
            if (o)
                watch_event_ex(st, "ADDED", o, false);
            json_decref(o);
            continue;
        }
        ty_buf_reset(&b);
        ty_buf_adds(&b, "{\"type\":\"ADDED\",\"object\":");
        ty_buf_add(&b, all[i].text, all[i].len);
        ty_buf_adds(&b, "}\n");
        stream_send(st, b.data, b.len);
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
    int64_t now = mono_ms();
    if (st->deadline_ms && now >= st->deadline_ms) {
        stream_end(st);
        return;
    }
    if (st->bookmarks && now - st->last_bookmark_ms >= BOOKMARK_INTERVAL_MS) {
        st->last_bookmark_ms = now;
        watch_bookmark(st);
    }
}

static uint64_t obj_rv(const json_t *obj)
{
    const char *rv = json_string_value(json_object_get(json_object_get(obj, "metadata"),
                                                       "resourceVersion"));
    return rv ? strtoull(rv, NULL, 10) : 0;
}

static enum MHD_Result handle_watch(call *c)
{
    enum MHD_Result ret;
    uint64_t from = 0;
    int64_t timeout = 0;
    if (q_resource_version(c, &from, &ret) < 0 ||
        q_int64(c, "timeoutSeconds", &timeout, &ret) < 0)
        return ret;
    ty_selector *labels, *fields;
    if (streams_full(c, &ret) || parse_selectors(c, &labels, &fields, &ret) < 0)
        return ret;
    bool replay_all = from == 0;
    stream *st = stream_new(c);
    st->ri = c->ri;
    st->ns = c->path.ns ? ty_strdup(c->path.ns) : NULL;
    st->labels = labels;
    st->fields = fields;
    st->table = wants_table(c);
    st->include_object = ty_strdup(include_object(c));
    st->bookmarks = q_true(c, "allowWatchBookmarks");
    st->last_bookmark_ms = mono_ms();
    /* 0 (or none) is the server's default; a negative timeout ends the watch at once, as the
     * API server's timer does; a huge one is a watch without end, not an overflow. */
    if (timeout == 0)
        timeout = WATCH_DEFAULT_TIMEOUT_S;
    st->deadline_ms = mono_ms() + 1000 * (timeout < 0 ? 0 : timeout > WATCH_MAX_TIMEOUT_S
                                                                 ? WATCH_MAX_TIMEOUT_S : timeout);
    /* Without a resourceVersion (or "0") a watch starts with the current state as ADDED
     * events, then follows. From resourceVersion N: the store replays what happened after N
     * from its history (410 Expired when N is older than the history), then follows. */
    st->selective = (q(c, "labelSelector") && *q(c, "labelSelector")) ||
                    (q(c, "fieldSelector") && *q(c, "fieldSelector"));
    if (replay_all) {
        watch_replay(st, c->path.ns);
        /* Events reach the stream only once durable (ty_store_watch_committed). */
        if (st->selective)
            ty_store_watch_committed_prev(c->srv->store, c->ri->resource, 0, watch_prev_cb, st,
                                          &st->watch_id, NULL);
        else
            ty_store_watch_committed(c->srv->store, c->ri->resource, 0, watch_cb, st,
                                     &st->watch_id, NULL);
    } else {
        /* The client listed at `from`: the history's events after it, each judged by the
         * object's version before it (kubectl delete --wait watches from its list's
         * resourceVersion with a fieldSelector). */
        TY_CLEANUP_ERROR ty_error err = TY_ERROR_INIT;
        int rc = st->selective
                     ? ty_store_watch_committed_prev(c->srv->store, c->ri->resource, from,
                                                     watch_prev_cb, st, &st->watch_id, &err)
                     : ty_store_watch_committed(c->srv->store, c->ri->resource, from, watch_cb,
                                                st, &st->watch_id, &err);
        if (rc < 0) {
            stream_abandon(st);
            if (err.code == TY_STORE_GONE)
                return fail(c, 410, "Expired", "%s", err.msg);
            return fail(c, 500, "InternalError", "%s", err.msg);
        }
    }
    uv_timer_start(&st->timer, watch_tick, 1000, 1000);
    return stream_reply(c, st, "application/json");
}

/* ---------- pods/log ---------- */

/* Appends the complete CRI records in `data` to the stream's output (text lines, as
 * kubectl logs shows them), keeping an incomplete last line in st->partial. */
static void log_feed(stream *st, const char *data, size_t len, ty_buf *out)
{
    ty_buf_add(&st->partial, data, len);
    size_t start = 0;
    for (;;) {
        char *nl = memchr(st->partial.data + start, '\n', st->partial.len - start);
        if (!nl)
            break;
        size_t llen = (size_t)(nl - (st->partial.data + start));
        int64_t t;
        bool partial;
        const char *text;
        size_t tlen;
        if (ty_srv_cri_parse(st->partial.data + start, llen, &t, &partial, &text, &tlen) == 0) {
            ty_buf_add(&st->joined, text, tlen);
            if (!partial) {
                if (t >= st->since_ns) {
                    if (st->timestamps) {
                        ty_srv_format_rfc3339nano(t, out);
                        ty_buf_addc(out, ' ');
                    }
                    ty_buf_add(out, st->joined.data, st->joined.len);
                    ty_buf_addc(out, '\n');
                }
                ty_buf_reset(&st->joined);
            }
        }
        start += llen + 1;
    }
    memmove(st->partial.data, st->partial.data + start, st->partial.len - start);
    st->partial.len -= start;
    st->partial.data[st->partial.len] = '\0';
}

/* Reads what the log file has now; returns the bytes read. */
static size_t log_pump(stream *st, ty_buf *out)
{
    char buf[65536];
    size_t total = 0;
    for (;;) {
        ssize_t n = read(st->fd, buf, sizeof(buf));
        if (n <= 0)
            break;
        log_feed(st, buf, (size_t)n, out);
        total += (size_t)n;
    }
    return total;
}

static bool pod_finished(const json_t *pod)
{
    const char *phase =
        json_string_value(json_object_get(json_object_get(pod, "status"), "phase"));
    return phase && (strcmp(phase, "Succeeded") == 0 || strcmp(phase, "Failed") == 0);
}

/* Whether the followed container run is over, as the kubelet ends `logs -f`: the pod is gone
 * (or replaced), finished, the container is terminated, or it restarted (a new log file). */
static bool log_source_done(stream *st)
{
    json_t *pod = ty_store_get(st->srv->store, "pods", st->pod_ns, st->pod_name);
    bool done = !pod || strcmp(ty_obj_uid(pod) ? ty_obj_uid(pod) : "", st->pod_uid) != 0 ||
                pod_finished(pod);
    if (!done) {
        size_t i;
        json_t *cs;
        json_array_foreach(json_object_get(json_object_get(pod, "status"), "containerStatuses"),
                           i, cs)
        {
            const char *n = json_string_value(json_object_get(cs, "name"));
            if (n && strcmp(n, st->container) == 0 &&
                json_object_get(json_object_get(cs, "state"), "terminated"))
                done = true;
        }
    }
    if (!done && st->srv->log_path) {
        char *now = st->srv->log_path(st->srv->log_ctx, pod, st->container, false);
        done = !now || strcmp(now, st->log_file) != 0;
        free(now);
    }
    json_decref(pod);
    return done;
}

static void log_tick(uv_timer_t *t)
{
    stream *st = t->data;
    TY_AUTOBUF ty_buf out = TY_BUF_INIT;
    /* Check whether the run is over before reading, so lines written just before it ended are
     * still sent. */
    bool done = log_source_done(st);
    size_t n = log_pump(st, &out);
    if (out.len)
        stream_send(st, out.data, out.len);
    if (done && n == 0)
        stream_end(st);
}

/* Keeps the last `tail` lines of `b`. */
static void keep_tail(ty_buf *b, long tail)
{
    if (tail < 0)
        return;
    size_t cut = b->len;
    long lines = 0;
    while (cut > 0) {
        if (b->data[cut - 1] == '\n' && cut != b->len && ++lines >= tail)
            break;
        cut--;
    }
    if (tail == 0)
        cut = b->len;
    memmove(b->data, b->data + cut, b->len - cut);
    b->len -= cut;
    b->data[b->len] = '\0';
}

static enum MHD_Result handle_log(call *c, json_t *pod)
{
    const char *container = q(c, "container");
    json_t *containers = json_object_get(json_object_get(pod, "spec"), "containers");
    if (!container || !*container) {
        if (json_array_size(containers) != 1) {
            TY_AUTOBUF ty_buf names = TY_BUF_INIT;
            size_t i;
            json_t *ct;
            json_array_foreach(containers, i, ct)
                ty_buf_addf(&names, "%s%s", i ? " " : "",
                            json_string_value(json_object_get(ct, "name")));
            return fail(c, 400, "BadRequest",
                        "a container name must be specified for pod %s, choose one of: [%s]",
                        c->path.name, names.data);
        }
        container = json_string_value(json_object_get(json_array_get(containers, 0), "name"));
    }
    bool found = false;
    size_t i;
    json_t *ct;
    json_array_foreach(containers, i, ct)
        found |= container && json_is_string(json_object_get(ct, "name")) &&
                 strcmp(json_string_value(json_object_get(ct, "name")), container) == 0;
    if (!found)
        return fail(c, 400, "BadRequest", "container %s is not valid for pod %s",
                    container ? container : "", c->path.name);
    /* The log options as the API server decodes (400) and validates them (422, as
     * ValidatePodLogOptions words it). */
    enum MHD_Result ret;
    int64_t since_s = 0, tail = -1, limit_bytes = 0;
    int64_t since_time = 0;
    const char *since_time_q = q(c, "sinceTime");
    if (q_int64(c, "sinceSeconds", &since_s, &ret) < 0 ||
        q_int64(c, "tailLines", &tail, &ret) < 0 ||
        q_int64(c, "limitBytes", &limit_bytes, &ret) < 0)
        return ret;
    if (since_time_q && *since_time_q && ty_time_parse_rfc3339(since_time_q, &since_time) < 0)
        return fail(c, 400, "BadRequest",
                    "parsing time \"%s\" as \"2006-01-02T15:04:05Z07:00\": cannot parse",
                    since_time_q);
    ty_field_errors errs = TY_FIELD_ERRORS_INIT;
    bool has_since = q(c, "sinceSeconds") && *q(c, "sinceSeconds");
    if (q(c, "tailLines") && *q(c, "tailLines") && tail < 0)
        ty_field_errors_add(&errs, "tailLines", (ty_pos){0, 0},
                            "Invalid value: %lld: must be greater than or equal to 0",
                            (long long)tail);
    if (q(c, "limitBytes") && *q(c, "limitBytes") && limit_bytes < 1)
        ty_field_errors_add(&errs, "limitBytes", (ty_pos){0, 0},
                            "Invalid value: %lld: must be greater than 0", (long long)limit_bytes);
    if (has_since && since_time_q && *since_time_q)
        ty_field_errors_add(&errs, "", (ty_pos){0, 0},
                            "Forbidden: at most one of `sinceTime` or `sinceSeconds` may be "
                            "specified");
    else if (has_since && since_s < 1)
        ty_field_errors_add(&errs, "sinceSeconds", (ty_pos){0, 0},
                            "Invalid value: %lld: must be greater than 0", (long long)since_s);
    if (errs.count) {
        json_t *d = json_pack("{s:s, s:s}", "name", c->path.name, "kind", "PodLogOptions");
        ret = fail_invalid_as(c, "PodLogOptions", d, c->path.name, &errs);
        ty_field_errors_free(&errs);
        return ret;
    }
    bool previous = q_true(c, "previous");
    TY_AUTOFREE char *path =
        c->srv->log_path ? c->srv->log_path(c->srv->log_ctx, pod, container, previous) : NULL;
    int fd = path ? open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK) : -1;
    if (fd < 0) {
        if (previous)
            return fail(c, 400, "BadRequest",
                        "previous terminated container \"%s\" in pod \"%s\" not found", container,
                        c->path.name);
        return fail(c, 400, "BadRequest",
                    "container \"%s\" in pod \"%s\" is waiting to start: ContainerCreating",
                    container, c->path.name);
    }
    if (streams_full(c, &ret)) {
        close(fd);
        return ret;
    }
    stream *st = stream_new(c);
    st->fd = fd;
    st->timestamps = q_true(c, "timestamps");
    if (has_since) /* saturating: sinceSeconds=2^63-1 is all of the log */
        st->since_ns = ty_time_add_s(ty_time_now_ns(), -since_s);
    if (since_time_q && *since_time_q)
        st->since_ns = since_time;
    st->pod_ns = ty_strdup(ty_obj_namespace(pod) ? ty_obj_namespace(pod) : "");
    st->pod_name = ty_strdup(ty_obj_name(pod));
    st->pod_uid = ty_strdup(ty_obj_uid(pod) ? ty_obj_uid(pod) : "");
    st->container = ty_strdup(container);
    st->log_file = ty_strdup(path);
    TY_AUTOBUF ty_buf first = TY_BUF_INIT;
    log_pump(st, &first);
    keep_tail(&first, tail);
    st->limit_bytes = limit_bytes;
    stream_send(st, first.data, first.len);
    if (!st->ended && q_true(c, "follow") && !previous)
        uv_timer_start(&st->timer, log_tick, STREAM_TICK_MS, STREAM_TICK_MS);
    else
        st->ended = true;
    return stream_reply(c, st, "text/plain");
}

/* ---------- dispatch ---------- */

/* A loopback address or name ("localhost", 127.0.0.0/8, [::1]), with an optional port:
 * `v` is a Host header or the authority of an Origin. */
static bool loopback_authority(const char *v)
{
    const char *end;
    char host[64];
    if (*v == '[') {
        end = strchr(v, ']');
        if (!end || (size_t)(end - v - 1) >= sizeof host)
            return false;
        memcpy(host, v + 1, (size_t)(end - v - 1));
        host[end - v - 1] = '\0';
        end++;
        struct in6_addr a6;
        if (inet_pton(AF_INET6, host, &a6) != 1 || !IN6_IS_ADDR_LOOPBACK(&a6))
            return false;
    } else {
        end = strchr(v, ':');
        if (!end)
            end = v + strlen(v);
        if ((size_t)(end - v) >= sizeof host)
            return false;
        memcpy(host, v, (size_t)(end - v));
        host[end - v] = '\0';
        struct in_addr a4;
        bool ok = strcasecmp(host, "localhost") == 0 || strcasecmp(host, "localhost.") == 0 ||
                  (inet_pton(AF_INET, host, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127);
        if (!ok)
            return false;
    }
    if (*end == '\0')
        return true;
    if (*end != ':' || !end[1])
        return false;
    for (end++; *end; end++)
        if (!isdigit((unsigned char)*end))
            return false;
    return true;
}

/* While the API has no authentication, only this machine's own clients may use it, and only
 * by a loopback name: a request to another Host is a web page that had its name resolve to
 * 127.0.0.1 (DNS rebinding), and one with a foreign Origin is a web page's cross-site request
 * (which a browser sends, and a POST without a CORS preflight). Neither is ever kubectl or a
 * client library. A request without Host (HTTP/1.0) or Origin says nothing either way. */
static enum MHD_Result refuse_foreign(call *c, bool *refused)
{
    *refused = true;
    const char *host = hdr(c, MHD_HTTP_HEADER_HOST);
    if (host && !loopback_authority(host))
        return fail(c, 403, "Forbidden",
                    "host \"%s\" is not allowed: the API server has no authentication yet and "
                    "answers only requests to a loopback name (localhost, 127.0.0.1, [::1])",
                    host);
    const char *origin = hdr(c, "Origin");
    if (origin) {
        const char *auth = strncasecmp(origin, "http://", 7) == 0    ? origin + 7
                           : strncasecmp(origin, "https://", 8) == 0 ? origin + 8
                                                                     : NULL;
        if (!auth || !loopback_authority(auth))
            return fail(c, 403, "Forbidden",
                        "origin \"%s\" is not allowed: the API server has no authentication "
                        "yet and answers no cross-site requests from web pages", origin);
    }
    *refused = false;
    return MHD_YES;
}

/* The one place where a request is authenticated and authorized. Everything is allowed for
 * now (the listener is loopback by default); client certificates and bearer tokens go here
 * with TLS. */
static bool authenticate(call *c)
{
    (void)c;
    return true;
}

static enum MHD_Result dispatch(call *c, const char *url)
{
    bool refused;
    enum MHD_Result ret = refuse_foreign(c, &refused);
    if (refused)
        return ret;
    if (!authenticate(c))
        return fail(c, 401, "Unauthorized", "Unauthorized");
    if (discovery(c, url, &ret) == 0)
        return ret;
    if (ty_srv_path_parse(url, is_namespaced, c->srv, &c->path) < 0 || !c->path.resource)
        return fail(c, 404, "NotFound", "the server could not find the requested resource");
    c->ri = find_res(c->srv, c->path.group, c->path.version, c->path.resource);
    if (!c->ri)
        return fail(c, 404, "NotFound", "the server could not find the requested resource");
    if (c->path.sub && !((strcmp(c->path.sub, "status") == 0 && c->ri->has_status) ||
                         (strcmp(c->path.sub, "log") == 0 && c->ri->has_log)))
        return fail(c, 404, "NotFound", "the server could not find the requested resource");
    if (c->ri->namespaced && c->path.name && !c->path.ns)
        return fail(c, 404, "NotFound", "the server could not find the requested resource");
    TY_CLEANUP_ERROR ty_error qerr = TY_ERROR_INIT;
    if (ty_srv_query_check(q_lookup, c, &qerr) < 0)
        return fail(c, 400, "BadRequest", "%s", qerr.msg);
    const char *m = c->method;
    bool log = c->path.sub && strcmp(c->path.sub, "log") == 0;
    if (!c->path.name) {
        if (strcmp(m, "GET") == 0)
            return handle_list(c);
        if (strcmp(m, "POST") == 0)
            return handle_create(c);
        if (strcmp(m, "DELETE") == 0)
            return handle_delete_collection(c);
    } else if (strcmp(m, "GET") == 0) {
        return handle_get(c);
    } else if (log) {
        /* only GET */
    } else if (strcmp(m, "PUT") == 0) {
        return handle_put(c);
    } else if (strcmp(m, "PATCH") == 0) {
        return handle_patch(c);
    } else if (strcmp(m, "DELETE") == 0 && !c->path.sub) {
        return handle_delete(c);
    }
    return fail(c, 405, "MethodNotAllowed",
                "the server does not allow this method on the requested resource");
}

/* The answer just queued leaves once this returns: whatever it shows (this request's writes,
 * and the controllers' ones it may read) must be durable first. When the store is not
 * deferring commits this is a no-op. A commit that fails leaves memory ahead of the database,
 * with answers that must not be sent: the server stops at once, and its next start loads
 * what is durable (nothing that was not has left the process). */
static void commit_or_die(ty_apiserver *s)
{
    TY_CLEANUP_ERROR ty_error err = TY_ERROR_INIT;
    if (ty_store_commit(s->store, &err) < 0) {
        ty_log(TY_LOG_ERROR, "server: the store cannot commit, stopping: %s", err.msg);
        abort();
    }
}

/* ---------- connections ---------- */

/* Every client here is 127.0.0.1, so a limit per address would lock the victim out with its
 * attacker. What an attacker can hold without limit is connections that never finish a request
 * (half-sent headers or bodies, or kept alive and idle): those are kept in order of the time
 * they started waiting, and when the open connections come near the limit the oldest waiting
 * ones are shut down to make room, so a new client always gets in and, sending its request at
 * once, is not the one shut down. A connection with a whole request (a watch, a followed log)
 * is never shut down for room. Waiting connections also time out (IDLE_TIMEOUT_S without a byte), and a
 * watch whose client left is freed at once (on_stream_socket). */
#define IDLE_TIMEOUT_S 30
#define CONN_LIMIT_MAX 16384u

static void idle_remove(ty_apiserver *s, conn_rec *r)
{
    if (!r->idle)
        return;
    if (r->prev)
        r->prev->next = r->next;
    else
        s->idle_head = r->next;
    if (r->next)
        r->next->prev = r->prev;
    else
        s->idle_tail = r->prev;
    r->prev = r->next = NULL;
    r->idle = false;
}

static void idle_push(ty_apiserver *s, conn_rec *r)
{
    if (r->idle || r->shut)
        return;
    r->idle = true;
    r->prev = s->idle_tail;
    r->next = NULL;
    if (s->idle_tail)
        s->idle_tail->next = r;
    else
        s->idle_head = r;
    s->idle_tail = r;
}

/* The room kept free below MHD's own limit (which refuses connections outright). */
static unsigned conn_reserve(const ty_apiserver *s)
{
    return s->conn_limit / 16 > 8 ? s->conn_limit / 16 : 8;
}

/* Shuts down the oldest waiting connections while the open ones are near the limit, never
 * `keep` (the connection just accepted). shutdown(), not close(): the fd stays MHD's, and MHD
 * reads the end of the stream on its next run and closes the connection itself. */
static void make_room(ty_apiserver *s, conn_rec *keep)
{
    while (s->nconns - s->nshut + conn_reserve(s) > s->conn_limit && s->idle_head &&
           s->idle_head != keep) {
        conn_rec *r = s->idle_head;
        idle_remove(s, r);
        r->shut = true;
        s->nshut++;
        shutdown(r->fd, SHUT_RDWR);
    }
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    ty_apiserver *s = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        conn_rec *r = TY_NEW(conn_rec);
        r->fd = ci ? ci->connect_fd : -1;
        *socket_context = r;
        s->nconns++;
        idle_push(s, r);
        make_room(s, r);
        return;
    }
    conn_rec *r = *socket_context;
    if (!r)
        return;
    idle_remove(s, r);
    if (r->shut)
        s->nshut--;
    s->nconns--;
    free(r);
    *socket_context = NULL;
}

static conn_rec *conn_rec_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* A request arrived whole (headers and body): the connection is no longer waiting. */
static void conn_busy(ty_apiserver *s, struct MHD_Connection *conn)
{
    conn_rec *r = conn_rec_of(conn);
    if (r)
        idle_remove(s, r);
}

/* Its request is done: kept alive, the connection waits for the next one. */
static void conn_waiting(ty_apiserver *s, struct MHD_Connection *conn)
{
    conn_rec *r = conn_rec_of(conn);
    if (r)
        idle_push(s, r);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)version;
    ty_apiserver *s = cls;
    req *r = *con_cls;
    call c = {.srv = s, .conn = conn, .r = r, .method = method};
    if (!r) {
        r = TY_NEW(req);
        ty_buf_init(&r->body);
        *con_cls = r;
        c.r = r;
        /* A declared oversized body is refused before it is sent when the client waits for
         * "100 Continue"; otherwise it is read and dropped, so that the client, still writing,
         * gets the answer rather than a broken pipe. */
        const char *len = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                      MHD_HTTP_HEADER_CONTENT_LENGTH);
        const char *expect = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                         MHD_HTTP_HEADER_EXPECT);
        if (len && strtoull(len, NULL, 10) > s->max_body) {
            r->too_big = true;
            if (expect && strcasecmp(expect, "100-continue") == 0)
                return fail(&c, 413, "RequestEntityTooLarge",
                            "Request entity too large: limit is %zu", s->max_body);
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (r->body.len + *upload_data_size > s->max_body)
            r->too_big = true;
        else
            ty_buf_add(&r->body, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    /* The request is whole only now: one whose body trickles in waits as half-sent headers
     * do, and makes room the same way (make_room). */
    conn_busy(s, conn);
    if (r->too_big)
        return fail(&c, 413, "RequestEntityTooLarge", "Request entity too large: limit is %zu",
                    s->max_body);
    ty_debug("http: %s %s", method, url);
    enum MHD_Result ret = dispatch(&c, url);
    ty_srv_path_free(&c.path);
    commit_or_die(s);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)toe;
    conn_waiting(cls, conn);
    req *r = *con_cls;
    if (!r)
        return;
    ty_buf_free(&r->body);
    json_decref(r->warnings);
    free(r);
    *con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    TY_AUTOFREE char *msg = ty_vasprintf(fmt, ap);
    size_t n = strlen(msg);
    if (n && msg[n - 1] == '\n')
        msg[n - 1] = '\0';
    ty_debug("http: %s", msg);
}

/* ---------- the loop ---------- */

static void run_mhd(ty_apiserver *s);

static void on_timer(uv_timer_t *t)
{
    run_mhd(t->data);
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    (void)status, (void)events;
    run_mhd(p->data);
}

#define YIELD_CONTENDED_NS 1000000LL /* 1 ms */
#define YIELD_BACKOFF_NS 1000000000LL /* 1 s */

static void run_mhd(ty_apiserver *s)
{
    if (s->stopping)
        return;
    s->kicked = false;
    s->streamed = false;
    MHD_run(s->mhd);
    /* Watch events just went out, and what this thread does next is often the controllers'
     * reaction to the same write (a new job's status and events: half a millisecond). The
     * kernel tends to wake a watcher on the CPU it last ran on, which may be this one; it
     * would then wait for all of that. Yielding once lets it read its event first, and costs
     * a system call when nothing else is runnable here. When the yield kept this thread off
     * the CPU for longer than a woken client takes, something else wants the CPU (busy pods):
     * yielding then only delays the loop, so it stops for a while. */
    if (s->streamed) {
        MHD_run(s->mhd); /* MHD writes what a content reader returned on its next pass */
        int64_t now = ty_time_mono_ns();
        if (now >= s->yield_again_ns) {
            sched_yield();
            if (ty_time_mono_ns() - now > YIELD_CONTENDED_NS)
                s->yield_again_ns = now + YIELD_BACKOFF_NS;
        }
    }
    MHD_UNSIGNED_LONG_LONG timeout;
    /* A connection resumed during this run (a store event from a request handler) is only
     * picked up by the next MHD_run, and MHD's timeout does not count it. */
    if (s->kicked)
        uv_timer_start(&s->timer, on_timer, 0, 0);
    else if (MHD_get_timeout(s->mhd, &timeout) == MHD_YES)
        uv_timer_start(&s->timer, on_timer, timeout, 0);
    else
        uv_timer_stop(&s->timer);
}

/* Runs MHD on the next loop iteration (a connection was resumed). Never calls MHD_run from
 * inside one of MHD's own callbacks. */
static void kick(ty_apiserver *s)
{
    s->kicked = true;
    if (!s->stopping)
        uv_timer_start(&s->timer, on_timer, 0, 0);
}

static void on_handle_closed(uv_handle_t *h)
{
    ty_apiserver *s = h->data;
    if (--s->open_handles == 0) {
        label_views_clear(s);
        free(s);
    }
}

static int parse_listen(const char *listen, struct sockaddr_in *sa, ty_error *err)
{
    const char *colon = strrchr(listen, ':');
    if (!colon)
        return ty_fail(err, "listen address %s: expected host:port", listen);
    TY_AUTOFREE char *host = ty_strndup(listen, (size_t)(colon - listen));
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || end == colon + 1 || port < 0 || port > 65535)
        return ty_fail(err, "listen address %s: bad port", listen);
    memset(sa, 0, sizeof(*sa));
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)port);
    if (!*host || strcmp(host, "localhost") == 0)
        host[0] = '\0', sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    else if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
        return ty_fail(err, "listen address %s: bad IPv4 address", listen);
    /* Anyone who reaches the API can run commands as this user (a pod is a command). */
    if ((ntohl(sa->sin_addr.s_addr) >> 24) != 127)
        return ty_fail(err, "listen address %s is not a loopback address: the API server has "
                       "no authentication yet, so anyone who could reach it could run commands "
                       "as this user; listen on 127.0.0.1 (or localhost) instead", listen);
    return 0;
}

int ty_apiserver_check_listen(const char *listen, ty_error *err)
{
    struct sockaddr_in sa;
    return parse_listen(listen, &sa, err);
}

/* How many connections the server takes: half the descriptors it may open (the store, the
 * pods' pipes and logs need the rest), after raising its soft limit to the hard one, as a
 * container runtime gives containers; at most CONN_LIMIT_MAX. */
static unsigned conn_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return 512;
    if (rl.rlim_cur < rl.rlim_max) {
        rlim_t want = rl.rlim_max;
        if (want == RLIM_INFINITY || want > 2 * CONN_LIMIT_MAX + 4096)
            want = 2 * CONN_LIMIT_MAX + 4096;
        if (want > rl.rlim_cur) {
            struct rlimit nl = {want, rl.rlim_max};
            if (setrlimit(RLIMIT_NOFILE, &nl) == 0)
                rl.rlim_cur = want;
        }
    }
    rlim_t n = rl.rlim_cur == RLIM_INFINITY ? 2 * CONN_LIMIT_MAX : rl.rlim_cur / 2;
    return n > CONN_LIMIT_MAX ? CONN_LIMIT_MAX : n < 64 ? 64 : (unsigned)n;
}

int ty_apiserver_start(const ty_apiserver_config *cfg, ty_apiserver **out, ty_error *err)
{
    if (ty_mhd_load(err) < 0)
        return -1;
    struct sockaddr_in sa;
    if (parse_listen(cfg->listen ? cfg->listen : "127.0.0.1:6443", &sa, err) < 0)
        return -1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return ty_fail_errno(err, errno, "socket");
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 512) < 0) {
        int e = errno;
        close(fd);
        return ty_fail_errno(err, e, "listen on %s", cfg->listen);
    }
    socklen_t slen = sizeof(sa);
    getsockname(fd, (struct sockaddr *)&sa, &slen);

    ty_apiserver *s = TY_NEW(ty_apiserver);
    s->loop = cfg->loop;
    s->store = cfg->store;
    s->log_path = cfg->log_path;
    s->log_ctx = cfg->log_ctx;
    s->mutate = cfg->mutate;
    s->mutate_ctx = cfg->mutate_ctx;
    s->metrics = cfg->metrics;
    s->metrics_ctx = cfg->metrics_ctx;
    s->max_body = cfg->max_body_bytes ? cfg->max_body_bytes : DEFAULT_MAX_BODY;
    s->table_page_bytes = cfg->table_page_bytes ? cfg->table_page_bytes : 8u * 1024 * 1024;
    s->port = ntohs(sa.sin_port);
    s->res = ty_kinds();
    while (s->res[s->nres])
        s->nres++;
    s->conn_limit = conn_limit();
    /* External event loop: no MHD thread; MHD_ALLOW_SUSPEND_RESUME for the streams. The
     * timeout is for a connection without a byte either way (a suspended stream has none). */
    s->mhd = MHD_start_daemon(MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG, 0,
                              NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
                              MHD_OPTION_LISTEN_SOCKET, fd,
                              MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                              MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
                              MHD_OPTION_CONNECTION_LIMIT, s->conn_limit,
                              MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)IDLE_TIMEOUT_S,
                              MHD_OPTION_END);
    if (!s->mhd) {
        close(fd);
        free(s);
        return ty_fail(err, "start the http server on %s", cfg->listen);
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_EPOLL_FD);
    uv_poll_init(s->loop, &s->poll, info->epoll_fd);
    uv_timer_init(s->loop, &s->timer);
    s->poll.data = s->timer.data = s;
    s->open_handles = 2;
    uv_poll_start(&s->poll, UV_READABLE, on_poll);
    run_mhd(s);
    *out = s;
    return 0;
}

int ty_apiserver_port(const ty_apiserver *s)
{
    return s->port;
}

void ty_apiserver_stop(ty_apiserver *s)
{
    if (!s)
        return;
    /* End every stream and let MHD send their last chunk to clients that still read, then
     * close everything. */
    for (stream *st = s->streams; st; st = st->next) {
        uv_timer_stop(&st->timer);
        stream_end(st);
    }
    MHD_run(s->mhd);
    MHD_run(s->mhd);
    s->stopping = true;
    uv_poll_stop(&s->poll);
    uv_timer_stop(&s->timer);
    /* The uv_poll goes before MHD closes its epoll fd. */
    uv_close((uv_handle_t *)&s->poll, on_handle_closed);
    uv_close((uv_handle_t *)&s->timer, on_handle_closed);
    MHD_stop_daemon(s->mhd);
}
