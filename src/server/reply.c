/* Answers: resources of the registry, objects as stored text, Status errors. */
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

/* ---------- resources ---------- */

const res_info *srv_find_res(const ty_apiserver *s, const char *group, const char *version,
                             const char *resource)
{
    for (size_t i = 0; i < s->nres; i++)
        if (strcmp(s->res[i]->group, group) == 0 && strcmp(s->res[i]->version, version) == 0 &&
            strcmp(s->res[i]->resource, resource) == 0)
            return s->res[i];
    return NULL;
}

bool srv_is_namespaced(void *ctx, const char *resource)
{
    const ty_apiserver *s = ctx;
    for (size_t i = 0; i < s->nres; i++)
        if (strcmp(s->res[i]->resource, resource) == 0)
            return s->res[i]->namespaced;
    return false; /* "namespaces/<name>/status": the namespace object's subresource */
}

char *srv_group_version(const res_info *ri)
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
json_t *srv_typed(const res_info *ri, const json_t *obj)
{
    if (json_object_get(obj, "kind") && json_object_get(obj, "apiVersion"))
        return json_incref((json_t *)obj);
    json_t *c = json_copy((json_t *)obj);
    TY_AUTOFREE char *gv = srv_group_version(ri);
    json_object_set_new(c, "apiVersion", json_string(gv));
    json_object_set_new(c, "kind", json_string(ri->kind));
    return c;
}

/* ---------- serialized objects ---------- */

/* The store keeps every object as compact JSON text: answers are assembled from those bytes,
 * serialized again only for an object that lacks apiVersion or kind. */
void srv_add_item_text(ty_buf *b, const res_info *ri, const ty_store_item *it)
{
    if (it->typed) {
        ty_buf_add(b, it->text, it->len);
        return;
    }
    json_t *o = json_loadb(it->text, it->len, 0, NULL);
    json_t *t = srv_typed(ri, o);
    char *text = json_dumps(t, JSON_COMPACT);
    ty_buf_adds(b, text);
    free(text);
    json_decref(t);
    json_decref(o);
}

/* The stored object an item describes, parsed (a new reference). Parsed here rather than
 * asked of the store, whose cache of trees is for the controllers' working set. */
json_t *srv_item_tree(const ty_store_item *it)
{
    return json_loadb(it->text, it->len, 0, NULL);
}

static void label_view_free(label_view *v)
{
    free(v->items);
    free(v->set);
    free(v->sets);
    *v = (label_view){0};
}

void srv_label_views_clear(ty_apiserver *s)
{
    const ty_map_slot *slot;
    for (size_t i = 0; ty_map_next(&s->label_views, &i, &slot);) {
        label_view_free(slot->value);
        free(slot->value);
    }
    ty_map_free(&s->label_views);
    memset(&s->label_views, 0, sizeof(s->label_views));
}

const label_view *srv_label_view_of(ty_apiserver *s, const char *resource, const char *ns)
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

const char *srv_q(call *c, const char *key)
{
    return MHD_lookup_connection_value(c->conn, MHD_GET_ARGUMENT_KIND, key);
}

const char *srv_q_lookup(void *c, const char *key)
{
    return srv_q(c, key);
}

const char *srv_hdr(call *c, const char *key)
{
    return MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, key);
}

/* A boolean parameter as the API server converts query values (runtime's
 * Convert_Slice_string_To_bool): absent, "0" and "false" in any case are false, anything
 * else is true - `watch=maybe` is a watch there too. */
bool srv_q_true(call *c, const char *key)
{
    const char *v = srv_q(c, key);
    return v && strcmp(v, "0") != 0 && strcasecmp(v, "false") != 0;
}

enum MHD_Result srv_reply_text(call *c, int code, const char *type, char *text, size_t len)
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
    if (c->r)
        c->r->code = code;
    return ret;
}

/* Sends `body` (stolen) as JSON. */
enum MHD_Result srv_reply(call *c, int code, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    return srv_reply_text(c, code, "application/json", text, strlen(text));
}

enum MHD_Result srv_fail(call *c, int code, const char *reason, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    TY_AUTOFREE char *msg = ty_vasprintf(fmt, ap);
    va_end(ap);
    return srv_reply(c, code, ty_srv_status(code, reason, msg, NULL));
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
int srv_q_int64(call *c, const char *key, int64_t *out, enum MHD_Result *ret)
{
    const char *v = srv_q(c, key);
    if (!v || !*v)
        return 0;
    TY_CLEANUP_ERROR ty_error err = TY_ERROR_INIT;
    if (ty_srv_query_int(key, v, out, &err) < 0) {
        *ret = srv_fail(c, 400, "BadRequest", "%s", err.msg);
        return -1;
    }
    return 0;
}

/* ?resourceVersion of a get, list or watch: a decimal uint64 (the store's revision) or
 * nothing; else 400 as the storage layer words it. *out gets it (0 when absent). */
int srv_q_resource_version(call *c, uint64_t *out, enum MHD_Result *ret)
{
    const char *v = srv_q(c, "resourceVersion");
    *out = 0;
    if (!v || !*v)
        return 0;
    const char *why = parse_go_int(v, false, NULL, out);
    if (why) {
        *ret = srv_fail(c, 400, "BadRequest",
                    "invalid resource version: resourceVersion: Invalid value: \"%s\": "
                    "strconv.ParseUint: parsing \"%s\": %s", v, v, why);
        return -1;
    }
    return 0;
}

json_t *srv_details(const res_info *ri, const char *name, bool kind_is_kind)
{
    json_t *d = json_object();
    if (name)
        json_object_set_new(d, "name", json_string(name));
    if (*ri->group)
        json_object_set_new(d, "group", json_string(ri->group));
    json_object_set_new(d, "kind", json_string(kind_is_kind ? ri->kind : ri->resource));
    return d;
}

enum MHD_Result srv_fail_not_found(call *c, const res_info *ri, const char *name)
{
    TY_AUTOFREE char *qr = qualified_resource(ri);
    TY_AUTOFREE char *msg = ty_asprintf("%s \"%s\" not found", qr, name);
    return srv_reply(c, 404, ty_srv_status(404, "NotFound", msg, srv_details(ri, name, false)));
}

enum MHD_Result srv_fail_exists(call *c, const char *name)
{
    TY_AUTOFREE char *qr = qualified_resource(c->ri);
    TY_AUTOFREE char *msg = ty_asprintf("%s \"%s\" already exists", qr, name);
    return srv_reply(c, 409,
                     ty_srv_status(409, "AlreadyExists", msg, srv_details(c->ri, name, false)));
}

/* `why`: what failed (a precondition), NULL for the optimistic-lock message. */
enum MHD_Result srv_fail_conflict(call *c, const char *name, const char *why)
{
    TY_AUTOFREE char *qr = qualified_resource(c->ri);
    TY_AUTOFREE char *msg = ty_asprintf(
        "Operation cannot be fulfilled on %s \"%s\": %s", qr, name,
        why ? why : "the object has been modified; please apply your changes to the latest "
                    "version and try again");
    return srv_reply(c, 409, ty_srv_status(409, "Conflict", msg, srv_details(c->ri, name, false)));
}

/* 422 for `errs` on the object `name` of kind `qk` (details `d`, stolen). */
enum MHD_Result srv_fail_invalid_as(call *c, const char *qk, json_t *d, const char *name,
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
    return srv_reply(c, 422, ty_srv_status(422, "Invalid", msg.data, d));
}

enum MHD_Result srv_fail_invalid(call *c, const char *name, const ty_field_errors *errs)
{
    TY_AUTOFREE char *qk = qualified_kind(c->ri);
    return srv_fail_invalid_as(c, qk, srv_details(c->ri, name, true), name, errs);
}

/* A validating webhook's denial as the API server words it: 403, "admission webhook \"<name>\"
 * denied the request: " and the errors as Go aggregates them (one alone; several in brackets,
 * joined by ", ", a repeated text once). */
enum MHD_Result srv_fail_denied(call *c, const ty_field_errors *errs)
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
    return srv_reply(c, 403, ty_srv_status(403, "Forbidden", msg, NULL));
}

/* A store write's error as the API server words it. */
enum MHD_Result srv_fail_store(call *c, const char *name, const ty_error *err)
{
    switch (err->code) {
    case TY_STORE_NOT_FOUND:
        return srv_fail_not_found(c, c->ri, name);
    case TY_STORE_CONFLICT:
        if (strstr(err->msg, "already exists"))
            return srv_fail_exists(c, name);
        return srv_fail_conflict(c, name, strncmp(err->msg, "Precondition failed", 19) == 0
                                          ? err->msg : NULL);
    case TY_STORE_TOO_LARGE:
        return srv_fail(c, 413, "RequestEntityTooLarge", "%s", err->msg);
    case TY_STORE_INVALID: {
        /* "spec.x: what": the field goes to the cause, which kubectl prints before it */
        size_t plen = strspn(err->msg, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                       "0123456789.[]");
        bool field = plen && strncmp(err->msg + plen, ": ", 2) == 0;
        TY_AUTOFREE char *path = ty_strndup(err->msg, field ? plen : 0);
        ty_field_errors errs = TY_FIELD_ERRORS_INIT;
        ty_field_errors_add(&errs, path, (ty_pos){0, 0}, "%s", err->msg + (field ? plen + 2 : 0));
        enum MHD_Result r = srv_fail_invalid(c, name, &errs);
        ty_field_errors_free(&errs);
        return r;
    }
    default:
        return srv_fail(c, 500, "InternalError", "Internal error occurred: %s", err->msg);
    }
}
