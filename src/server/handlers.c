/* The handlers of resource requests: LIST, GET, CREATE, PUT, PATCH, apply, DELETE and
 * DELETE of a collection. */
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

#include "controllers/experiment.h"
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

/* ---------- handlers ---------- */

bool srv_matches(const json_t *obj, const ty_selector *labels, const ty_selector *fields)
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

int srv_parse_selectors(call *c, ty_selector **labels, ty_selector **fields, enum MHD_Result *ret)
{
    TY_CLEANUP_ERROR ty_error err = TY_ERROR_INIT;
    *labels = *fields = NULL;
    if (ty_label_selector_parse(srv_q(c, "labelSelector"), labels, &err) < 0 ||
        ty_field_selector_parse(c->ri->resource, srv_q(c, "fieldSelector"), fields, &err) < 0) {
        ty_selector_free(*labels);
        *labels = NULL;
        *ret = srv_fail(c, 400, "BadRequest", "%s", err.msg);
        return -1;
    }
    /* No selector is NULL: testing an empty one still looks up every object's labels. */
    if (blank(srv_q(c, "labelSelector"))) {
        ty_selector_free(*labels);
        *labels = NULL;
    }
    if (blank(srv_q(c, "fieldSelector"))) {
        ty_selector_free(*fields);
        *fields = NULL;
    }
    return 0;
}

bool srv_wants_table(call *c)
{
    const char *accept = srv_hdr(c, "Accept");
    return accept && strstr(accept, "as=Table");
}

const char *srv_include_object(call *c)
{
    const char *v = srv_q(c, "includeObject");
    return v && *v ? v : "Metadata";
}

json_t *srv_table_of(const char *resource, const json_t *items, const char *include)
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
        ty_table_text_row(b, first, resource, o, meta, meta_len, srv_include_object(c), now);
        first = false;
        json_decref(o);
    }
    *from = k;
}

enum MHD_Result srv_handle_list(call *c)
{
    if (srv_q_true(c, "watch"))
        return srv_handle_watch(c);
    enum MHD_Result ret;
    int64_t limit = 0, timeout = 0;
    uint64_t rv_asked;
    /* Every list answers the current state (the store keeps no older one); a resourceVersion
     * must still be one, and timeoutSeconds a number, as the API server decodes them. */
    if (srv_q_int64(c, "limit", &limit, &ret) < 0 ||
        srv_q_int64(c, "timeoutSeconds", &timeout, &ret) < 0 ||
        srv_q_resource_version(c, &rv_asked, &ret) < 0)
        return ret;
    ty_selector *labels, *fields;
    if (srv_parse_selectors(c, &labels, &fields, &ret) < 0)
        return ret;
    /* Tables (what `kubectl get` asks for) are paged by their bytes, not by `limit` (the API
     * lets a server not support limit: "Servers may choose not to support the limit
     * argument"): kubectl asks for 500 rows a request through a client-side rate limiter of 5
     * requests a second, so 10,000 rows in 20 requests take kubectl two seconds of waiting
     * alone. A Table of rows with their metadata is ~350 bytes a row; one page holds
     * table_page_bytes of them (8 MiB) and a continue token says where the next starts.
     * Lists of objects (client libraries, informers) honour limit. */
    bool text_table = srv_wants_table(c) && strcmp(srv_include_object(c), "Object") != 0;
    if (text_table)
        limit = 0;
    TY_AUTOFREE char *after = NULL;
    if (srv_q(c, "continue") && *srv_q(c, "continue") && rv_asked) {
        ty_selector_free(labels);
        ty_selector_free(fields);
        return srv_fail(c, 400, "BadRequest",
                        "specifying resource version is not allowed when using continue");
    }
    const char *cont = srv_q(c, "continue");
    if (cont && *cont && !(after = ty_srv_continue_decode(cont))) {
        ty_selector_free(labels);
        ty_selector_free(fields);
        return srv_fail(c, 400, "BadRequest", "continue key is not valid: invalid token");
    }
    uint64_t rev = ty_store_revision(c->srv->store);
    const label_view *lv = labels ? srv_label_view_of(c->srv, c->ri->resource, c->path.ns) : NULL;
    TY_AUTOFREE ty_store_item *own = NULL;
    size_t count =
        lv ? lv->n : ty_store_list_items(c->srv->store, c->ri->resource, c->path.ns, &own);
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
        return srv_reply_text(c, 200, "application/json", ty_buf_steal(&b), len);
    }
    if (srv_wants_table(c)) {
        /* In chunks, each object parsed and dropped after its chunk: 10,000 trees at once
         * would be hundreds of MB. */
        json_t *t = NULL;
        for (size_t k = 0; k < npicked;) {
            json_t *chunk = json_array();
            for (size_t end = k + 256; k < npicked && k < end; k++) {
                const ty_store_item *it = &all[picked[k]];
                json_t *o = srv_item_tree(it);
                if (o)
                    json_array_append_new(chunk, srv_typed(c->ri, o));
                json_decref(o);
            }
            json_t *part = srv_table_of(c->ri->resource, chunk, srv_include_object(c));
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
            t = srv_table_of(c->ri->resource, none, srv_include_object(c));
            json_decref(none);
        }
        json_object_set_new(t, "metadata", meta);
        return srv_reply(c, 200, t);
    }
    TY_AUTOFREE char *gv = srv_group_version(c->ri);
    TY_AUTOFREE char *meta_text = json_dumps(meta, JSON_COMPACT);
    json_decref(meta);
    ty_buf b = TY_BUF_INIT;
    ty_buf_addf(&b, "{\"kind\":\"%sList\",\"apiVersion\":\"%s\",\"metadata\":%s,\"items\":[",
                c->ri->kind, gv, meta_text);
    for (size_t k = 0; k < npicked; k++) {
        if (k)
            ty_buf_addc(&b, ',');
        srv_add_item_text(&b, c->ri, &all[picked[k]]);
    }
    ty_buf_adds(&b, "]}");
    size_t len = b.len;
    return srv_reply_text(c, 200, "application/json", ty_buf_steal(&b), len);
}

/* `stored`: obj is the store's (not a dry run's result): its stored text is the answer. */
static enum MHD_Result reply_object(call *c, int code, const json_t *obj, bool stored)
{
    ty_store_item it;
    const char *ons = ty_obj_namespace(obj);
    if (stored && !srv_wants_table(c) &&
        ty_store_get_item(c->srv->store, c->ri->resource, ons ? ons : "", ty_obj_name(obj), &it) &&
        it.typed && it.rv == srv_obj_rv(obj))
        return srv_reply_text(c, code, "application/json", ty_strndup(it.text, it.len), it.len);
    json_t *t = srv_typed(c->ri, obj);
    if (srv_wants_table(c)) {
        json_t *arr = json_pack("[o]", t);
        json_t *table = srv_table_of(c->ri->resource, arr, srv_include_object(c));
        json_decref(arr);
        return srv_reply(c, code, table);
    }
    return srv_reply(c, code, t);
}

enum MHD_Result srv_handle_get(call *c)
{
    enum MHD_Result ret;
    uint64_t rv_asked;
    if (srv_q_resource_version(c, &rv_asked, &ret) < 0)
        return ret;
    ty_store_item it;
    if (!c->path.sub && !srv_wants_table(c) &&
        ty_store_get_item(c->srv->store, c->ri->resource, c->path.ns ? c->path.ns : "",
                          c->path.name, &it) &&
        it.typed)
        return srv_reply_text(c, 200, "application/json", ty_strndup(it.text, it.len), it.len);
    json_t *obj = ty_store_get(c->srv->store, c->ri->resource, c->path.ns ? c->path.ns : "",
                               c->path.name);
    if (!obj)
        return srv_fail_not_found(c, c->ri, c->path.name);
    if (c->path.sub && strcmp(c->path.sub, "log") == 0)
        ret = srv_handle_log(c, obj);
    else
        ret = reply_object(c, 200, obj, true);
    json_decref(obj);
    return ret;
}

static void generate_name(json_t *meta)
{
    const char *prefix = json_string_value(json_object_get(meta, "generateName"));
    TY_AUTOFREE char *name = ty_api_generate_name(prefix);
    json_object_set_new(meta, "name", json_string(name));
}

/* The field manager of a write: ?fieldManager, else the user agent's product (before its
 * first "/"), as the API server defaults it. */
static char *field_manager(call *c)
{
    const char *m = srv_q(c, "fieldManager");
    if (m && *m)
        return ty_strdup(m);
    const char *ua = srv_hdr(c, "User-Agent");
    if (ua && *ua)
        return ty_strndup(ua, strcspn(ua, "/"));
    return ty_strdup("unknown");
}

static int check_field_manager(call *c, enum MHD_Result *ret)
{
    const char *m = srv_q(c, "fieldManager");
    if (m && strlen(m) > 128) {
        *ret = srv_fail(c, 400, "BadRequest",
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
    TY_AUTOFREE char *gv = srv_group_version(c->ri);
    char now[64];
    ty_time_format_rfc3339(ty_time_now_ns(), now, sizeof now, 0);
    ty_apply_req areq = {.resource = c->ri->resource, .api_version = gv, .manager = manager,
                        .now = now};
    ty_apply_record_update(&areq, live, obj);
}

static enum MHD_Result create_object(call *c, json_t *obj, bool applied);

enum MHD_Result srv_handle_trial_metrics(call *c)
{
    enum MHD_Result ret;
    json_t *body = srv_read_body(c, &ret);
    if (!body)
        return ret;
    ty_error err = TY_ERROR_INIT;
    int rc = ty_experiment_push_metrics(c->srv->store, c->path.ns, c->path.name, body, &err);
    json_decref(body);
    if (rc < 0) {
        int code = err.code == 404 || err.code == 409 ? err.code : 400;
        ret = srv_fail(c, code, code == 404 ? "NotFound" : code == 409 ? "Conflict" : "BadRequest",
                       "%s", err.msg ? err.msg : "failed");
        ty_error_clear(&err);
        return ret;
    }
    return srv_reply(c, 200, json_pack("{s:s, s:s, s:{}, s:s}", "kind", "Status", "apiVersion",
                                       "v1", "metadata", "status", "Success"));
}

enum MHD_Result srv_handle_create(call *c)
{
    enum MHD_Result ret;
    if (srv_check_dry_run(c, &ret) < 0 || check_field_manager(c, &ret) < 0)
        return ret;
    json_t *obj = srv_read_body(c, &ret);
    if (!obj)
        return ret;
    if (srv_check_kind(c, obj, &ret) < 0) {
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
            ret = srv_fail(c, 404, "NotFound", "the server could not find the requested resource");
            goto out;
        }
        if (ns && *ns && strcmp(ns, c->path.ns) != 0) {
            ret = srv_fail(c, 400, "BadRequest",
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
        ret = srv_fail_invalid(c, "", &errs);
        ty_field_errors_free(&errs);
        goto out;
    }
    const char *bad = srv_check_name(c->ri, name);
    if (bad) {
        ty_field_errors errs = TY_FIELD_ERRORS_INIT;
        ty_field_errors_add(&errs, "metadata.name", (ty_pos){0, 0}, "Invalid value: \"%s\": %s",
                            name, bad);
        ret = srv_fail_invalid(c, name, &errs);
        ty_field_errors_free(&errs);
        goto out;
    }
    name_copy = ty_strdup(name);
    if (c->ri->namespaced && !srv_exists(c->srv, "namespaces", "", c->path.ns)) {
        ret = srv_fail_not_found(c, ty_kind_of_resource("namespaces"), c->path.ns);
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
    if (srv_admit(c, obj, name_copy, &ret) < 0)
        goto out;
    /* Mutating admission after validation, as webhooks run (Kueue suspends queued jobs). */
    if (c->srv->mutate)
        c->srv->mutate(c->srv->mutate_ctx, c->ri->resource, obj);
    if (!applied)
        record_update(c, NULL, obj);
    if (srv_dry_run(c)) {
        if (srv_exists(c->srv, c->ri->resource, c->path.ns, name_copy))
            ret = srv_fail_exists(c, name_copy);
        else
            ret = reply_object(c, 201, obj, false);
        goto out;
    }
    int rc = ty_store_create_owned(c->srv->store, c->ri->resource, obj, NULL, &stored, &err);
    obj = NULL;
    if (rc < 0) {
        ret = srv_fail_store(c, name_copy, &err);
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
    bool has_grace = srv_q(c, "gracePeriodSeconds") && *srv_q(c, "gracePeriodSeconds");
    if (srv_check_dry_run(c, ret) < 0 || srv_q_int64(c, "gracePeriodSeconds", &grace, ret) < 0)
        return -1;
    const char *policy = srv_q(c, "propagationPolicy");
    json_t *opts = NULL;
    if (c->r->body.len) {
        char mt[128];
        srv_request_media_type(c, mt, sizeof mt);
        if (*mt && strcmp(mt, "application/json") != 0) {
            *ret = srv_fail(c, 415, "UnsupportedMediaType",
                        "the body of the request was in an unknown format - accepted media "
                        "types include: application/json");
            return -1;
        }
        json_error_t je;
        opts = json_loadb(c->r->body.data, c->r->body.len, 0, &je);
        if (!json_is_object(opts)) {
            json_decref(opts);
            *ret = srv_fail(c, 400, "BadRequest", "error decoding DeleteOptions: %s",
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
        *ret = srv_fail(c, 400, "BadRequest",
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
    d->dry = srv_dry_run(c) || (json_is_array(json_object_get(opts, "dryRun")) &&
                                json_array_size(json_object_get(opts, "dryRun")) > 0);
    if (policy && strcmp(policy, "Foreground") != 0 && strcmp(policy, "Background") != 0 &&
        strcmp(policy, "Orphan") != 0) {
        *ret = srv_fail(c, 400, "BadRequest",
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
enum MHD_Result srv_handle_delete_collection(call *c)
{
    enum MHD_Result ret;
    delete_req d;
    ty_selector *labels, *fields;
    if (parse_delete_options(c, &d, &ret) < 0)
        return ret;
    if (srv_parse_selectors(c, &labels, &fields, &ret) < 0) {
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
        srv_add_item_text(&items, c->ri, &it);
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
        return srv_fail_store(c, first_name, &first);
    TY_AUTOFREE char *gv = srv_group_version(c->ri);
    ty_buf body = TY_BUF_INIT;
    ty_buf_addf(&body, "{\"kind\":\"%sList\",\"apiVersion\":\"%s\",\"metadata\":"
                       "{\"resourceVersion\":\"%llu\"},\"items\":[",
                c->ri->kind, gv, (unsigned long long)ty_store_revision(store));
    ty_buf_add(&body, items.data, items.len);
    ty_buf_adds(&body, "]}");
    return srv_reply_text(c, 200, "application/json", body.data, body.len);
}

/* Stores `obj` (already admitted) as an update of the main resource or of its status. */
static enum MHD_Result store_update(call *c, json_t *obj)
{
    enum MHD_Result ret;
    bool status = c->path.sub && strcmp(c->path.sub, "status") == 0;
    if (srv_dry_run(c))
        return reply_object(c, 200, obj, false);
    json_t *stored = NULL;
    TY_CLEANUP_ERROR ty_error err = TY_ERROR_INIT;
    int rc = status ? ty_store_update_status(c->srv->store, c->ri->resource, obj, &stored, &err)
                    : ty_store_update(c->srv->store, c->ri->resource, obj, &stored, &err);
    if (rc < 0)
        return srv_fail_store(c, c->path.name, &err);
    ret = reply_object(c, 200, stored, true);
    json_decref(stored);
    return ret;
}

enum MHD_Result srv_handle_put(call *c)
{
    enum MHD_Result ret;
    if (srv_check_dry_run(c, &ret) < 0 || check_field_manager(c, &ret) < 0)
        return ret;
    json_t *obj = srv_read_body(c, &ret);
    if (!obj)
        return ret;
    if (srv_check_kind(c, obj, &ret) < 0)
        goto out;
    json_t *meta = json_object_get(obj, "metadata");
    const char *name = json_string_value(json_object_get(meta, "name"));
    if (!name || strcmp(name, c->path.name) != 0) {
        ret = srv_fail(c, 400, "BadRequest",
                       "the name of the object (%s) does not match the name on the URL (%s)",
                       name ? name : "", c->path.name);
        goto out;
    }
    if (c->ri->namespaced)
        json_object_set_new(meta, "namespace", json_string(c->path.ns));
    json_t *cur = ty_store_get(c->srv->store, c->ri->resource, c->path.ns ? c->path.ns : "",
                               c->path.name);
    if (!cur) {
        ret = srv_fail_not_found(c, c->ri, c->path.name);
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
        ret = srv_fail_invalid(c, c->path.name, &errs);
        ty_field_errors_free(&errs);
        goto out;
    }
    if (srv_admit(c, obj, c->path.name, &ret) < 0) {
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

enum MHD_Result srv_handle_patch(call *c)
{
    enum MHD_Result ret;
    if (srv_check_dry_run(c, &ret) < 0 || check_field_manager(c, &ret) < 0)
        return ret;
    /* The patch types the API server takes, matched exactly (a PATCH without one is 415
     * there too). */
    char type[128];
    srv_request_media_type(c, type, sizeof type);
    if (strcmp(type, "application/apply-patch+yaml") == 0)
        return handle_apply(c);
    if (strcmp(type, "application/merge-patch+json") != 0 &&
        strcmp(type, "application/json-patch+json") != 0 &&
        strcmp(type, "application/strategic-merge-patch+json") != 0)
        return srv_fail(c, 415, "UnsupportedMediaType",
                        "the body of the request was in an unknown format - accepted media types "
                        "include: application/json-patch+json, application/merge-patch+json, "
                        "application/apply-patch+yaml, application/strategic-merge-patch+json");
    json_error_t je;
    json_t *patch = json_loadb(c->r->body.data, c->r->body.len, 0, &je);
    if (!patch)
        return srv_fail(c, 400, "BadRequest", "error decoding patch: %s", je.text);
    json_t *cur = ty_store_get(c->srv->store, c->ri->resource, c->path.ns ? c->path.ns : "",
                               c->path.name);
    if (!cur) {
        json_decref(patch);
        return srv_fail_not_found(c, c->ri, c->path.name);
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
            return srv_fail(c, 415, "UnsupportedMediaType",
                        "the body of the request was in an unknown format - accepted media types "
                        "include: application/json-patch+json, application/merge-patch+json");
        return srv_fail(c, 422, "Invalid", "%s", err.msg);
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
        return srv_fail(c, 400, "BadRequest",
                        "the name of the object cannot be changed by a patch");
    }
    if (srv_check_kind(c, obj, &ret) < 0 || srv_admit(c, obj, c->path.name, &ret) < 0) {
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
    const char *manager = srv_q(c, "fieldManager");
    if (!manager || !*manager)
        return srv_fail(c, 400, "BadRequest", "fieldManager is required for apply requests");
    if (c->path.sub)
        return srv_fail(c, 415, "UnsupportedMediaType",
                        "server-side apply of the %s subresource is not supported", c->path.sub);
    json_t *cfg = srv_read_body(c, &ret);
    if (!cfg)
        return ret;
    json_t *live = NULL, *merged = NULL, *causes = NULL;
    TY_AUTOFREE char *want_rv = NULL;
    TY_AUTOFREE char *gv = srv_group_version(c->ri);
    TY_CLEANUP_ERROR ty_error err = TY_ERROR_INIT;
    if (srv_check_kind(c, cfg, &ret) < 0)
        goto out;
    json_t *meta = json_object_get(cfg, "metadata");
    const char *name = json_string_value(json_object_get(meta, "name"));
    if (!name || strcmp(name, c->path.name) != 0) {
        ret = srv_fail(c, 400, "BadRequest",
                       "the name of the object (%s) does not match the name on the URL (%s)",
                       name ? name : "", c->path.name);
        goto out;
    }
    const char *ns = json_string_value(json_object_get(meta, "namespace"));
    if (c->ri->namespaced && ns && *ns && strcmp(ns, c->path.ns) != 0) {
        ret = srv_fail(c, 400, "BadRequest",
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
                        .force = srv_q_true(c, "force"), .now = now};
    live = ty_store_get(c->srv->store, c->ri->resource, c->path.ns ? c->path.ns : "",
                        c->path.name);
    if (want_rv && (!live || strcmp(want_rv, json_string_value(json_object_get(
                                                 json_object_get(live, "metadata"),
                                                 "resourceVersion"))) != 0)) {
        ret = live ? srv_fail_conflict(c, c->path.name, NULL)
                   : srv_fail_not_found(c, c->ri, c->path.name);
        goto out;
    }
    if (ty_apply(&areq, live, cfg, &merged, &causes, &err) < 0) {
        json_t *d = srv_details(c->ri, c->path.name, false);
        json_object_set(d, "causes", causes ? causes : json_array());
        ret = srv_reply(c, 409, ty_srv_status(409, "Conflict", err.msg, d));
        goto out;
    }
    if (!live) {
        /* merged may share parts with cfg: the extra reference makes the store copy it */
        ret = create_object(c, json_incref(merged), true);
        goto out;
    }
    json_object_set(json_object_get(merged, "metadata"), "resourceVersion",
                    json_object_get(json_object_get(live, "metadata"), "resourceVersion"));
    if (srv_admit(c, merged, c->path.name, &ret) < 0)
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

enum MHD_Result srv_handle_delete(call *c)
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
        return srv_fail_not_found(c, c->ri, c->path.name);
    }
    TY_CLEANUP_ERROR ty_error err = TY_ERROR_INIT;
    /* A dry run checks the preconditions too (the store's dry run changes nothing). */
    d.o.dry_run = dry;
    if (ty_store_delete_ex(c->srv->store, c->ri->resource, ns, c->path.name, &d.o, NULL,
                           &err) < 0) {
        json_decref(cur);
        delete_req_free(&d);
        return srv_fail_store(c, c->path.name, &err);
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
        json_t *det = srv_details(c->ri, c->path.name, false);
        json_object_set_new(det, "uid", json_string(ty_obj_uid(cur) ? ty_obj_uid(cur) : ""));
        ret = srv_reply(c, 200,
                    json_pack("{s:s, s:s, s:{}, s:s, s:o}", "kind", "Status", "apiVersion", "v1",
                              "metadata", "status", "Success", "details", det));
    } else {
        ret = reply_object(c, 200, cur, true);
    }
    json_decref(cur);
    return ret;
}
