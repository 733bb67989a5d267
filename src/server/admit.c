/* What comes before a handler: media types, bodies, names, admission (schema, defaults,
 * webhook rules, warnings), and the authentication of a request. */
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
void srv_request_media_type(call *c, char *out, size_t cap)
{
    const char *type = srv_hdr(c, MHD_HTTP_HEADER_CONTENT_TYPE);
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
json_t *srv_read_body(call *c, enum MHD_Result *ret)
{
    char mt[128];
    srv_request_media_type(c, mt, sizeof mt);
    if (!*mt && (strcmp(c->method, "POST") != 0 || c->r->body.len == 0))
        snprintf(mt, sizeof mt, "application/json");
    if (!*mt) {
        *ret = srv_fail(c, 415, "UnsupportedMediaType",
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
            *ret = srv_fail(c, 415, "UnsupportedMediaType", "%s", err.msg);
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
        *ret = srv_fail(c, 415, "UnsupportedMediaType",
                    "the body of the request was in an unknown format - accepted media types "
                    "include: " BODY_TYPES);
        return NULL;
    }
    if (yaml) {
        ty_manifest *m = NULL;
        TY_CLEANUP_ERROR ty_error err = TY_ERROR_INIT;
        if (ty_manifest_parse("body", c->r->body.data, c->r->body.len, &m, &err) < 0) {
            *ret = srv_fail(c, 400, "BadRequest", "error converting YAML to JSON: %s", err.msg);
            return NULL;
        }
        json_t *obj = m->ndocs == 1 ? json_incref(m->docs[0].obj) : NULL;
        ty_manifest_free(m);
        if (!obj)
            *ret = srv_fail(c, 400, "BadRequest", "the request body must hold exactly one object");
        return obj;
    }
    json_error_t je;
    json_t *obj = json_loadb(c->r->body.data, c->r->body.len, 0, &je);
    if (!obj) {
        *ret = srv_fail(c, 400, "BadRequest",
                    "couldn't get version/kind; json parse error: %s (line %d, column %d)",
                    je.text, je.line, je.column);
        return NULL;
    }
    if (!json_is_object(obj)) {
        json_decref(obj);
        *ret = srv_fail(c, 400, "BadRequest",
                    "couldn't get version/kind; json parse error: the body is not a JSON object");
        return NULL;
    }
    return obj;
}

/* Checks apiVersion/kind of a body against the URL's resource (400 when they differ). */
int srv_check_kind(call *c, json_t *obj, enum MHD_Result *ret)
{
    TY_AUTOFREE char *gv = srv_group_version(c->ri);
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
        *ret = srv_fail(c, 400, "BadRequest", "Object 'Kind' is missing in '%.200s'", text);
        return -1;
    }
    if (!av || strcmp(av, gv) != 0) {
        *ret = srv_fail(c, 400, "BadRequest",
                    "the API version in the data (%s) does not match the expected API version (%s)",
                    av ? av : "", gv);
        return -1;
    }
    if (strcmp(kind, c->ri->kind) != 0) {
        *ret = srv_fail(c, 400, "BadRequest",
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
int srv_admit(call *c, json_t *obj, const char *name, enum MHD_Result *ret)
{
    if (!c->ri->ops) {
        /* The core kinds have no schema here; their metadata still has Kubernetes' rules, and
         * a Pod the spec rules that keep its mounts inside their volumes; RBAC objects are
         * checked and guarded against escalation by auth.c. */
        ty_field_errors errs = TY_FIELD_ERRORS_INIT;
        int rc = ty_api_check_metadata(obj, &errs);
        if (rc == 0 && strcmp(c->ri->resource, "pods") == 0 && !c->path.sub)
            rc = ty_api_check_pod(obj, &errs);
        if (rc == 0 && strcmp(c->ri->resource, "serviceaccounts") == 0)
            rc = srv_sa_validate(obj, &errs);
        if (rc < 0)
            *ret = srv_fail_invalid(c, name, &errs);
        ty_field_errors_free(&errs);
        /* the ServiceAccount admission plugin, on create (a POST, or an apply's PATCH of a
         * pod that does not exist yet) */
        if (rc == 0 && strcmp(c->ri->resource, "pods") == 0 && !c->path.sub &&
            (strcmp(c->method, "POST") == 0 ||
             (strcmp(c->method, "PATCH") == 0 && name &&
              !srv_exists(c->srv, "pods", c->path.ns ? c->path.ns : "", name))))
            rc = srv_sa_admit_pod(c, obj, ret);
        if (rc == 0 && strcmp(c->ri->group, TY_RBAC_GROUP) == 0)
            rc = srv_rbac_admit(c, obj, name, ret);
        return rc;
    }
    const char *mode = srv_q(c, "fieldValidation");
    if (!mode || !*mode)
        mode = "Warn";
    if (strcmp(mode, "Strict") != 0 && strcmp(mode, "Warn") != 0 && strcmp(mode, "Ignore") != 0) {
        *ret = srv_fail(c, 400, "BadRequest",
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
                *ret = srv_fail_invalid(c, name, &errs);
            } else {
                for (size_t i = 0; i < errs.nwarnings; i++)
                    add_warning(c, errs.warnings[i]);
                if (rc < 0)
                    *ret = srv_fail_denied(c, &errs);
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
            *ret = srv_fail(c, 400, "BadRequest", "%s", msg.data);
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
        *ret = srv_fail_invalid(c, name, &errs);
        ty_field_errors_free(&errs);
        return -1;
    }
    return 0;
}

bool srv_exists(ty_apiserver *s, const char *resource, const char *ns, const char *name)
{
    json_t *o = ty_store_get(s->store, resource, ns ? ns : "", name);
    json_decref(o);
    return o != NULL;
}

const char *srv_check_name(const res_info *ri, const char *name)
{
    if (strcmp(ri->resource, "namespaces") == 0 || strcmp(ri->resource, "services") == 0)
        return ty_srv_check_dns1123_label(name);
    return ty_srv_check_dns1123_subdomain(name);
}

bool srv_dry_run(call *c)
{
    const char *v = srv_q(c, "dryRun");
    return v && strcmp(v, "All") == 0;
}

int srv_check_dry_run(call *c, enum MHD_Result *ret)
{
    const char *v = srv_q(c, "dryRun");
    if (v && *v && strcmp(v, "All") != 0) {
        *ret = srv_fail(c, 400, "BadRequest",
                        "Invalid dry run value: %s; the only supported value is All", v);
        return -1;
    }
    return 0;
}

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
enum MHD_Result srv_refuse_foreign(call *c, bool *refused)
{
    *refused = true;
    const char *host = srv_hdr(c, MHD_HTTP_HEADER_HOST);
    if (host && !loopback_authority(host))
        return srv_fail(c, 403, "Forbidden",
                        "host \"%s\" is not allowed: the API server has no authentication yet and "
                        "answers only requests to a loopback name (localhost, 127.0.0.1, [::1])",
                        host);
    const char *origin = srv_hdr(c, "Origin");
    if (origin) {
        const char *auth = strncasecmp(origin, "http://", 7) == 0    ? origin + 7
                           : strncasecmp(origin, "https://", 8) == 0 ? origin + 8
                                                                     : NULL;
        if (!auth || !loopback_authority(auth))
            return srv_fail(c, 403, "Forbidden",
                            "origin \"%s\" is not allowed: the API server has no authentication "
                            "yet and answers no cross-site requests from web pages", origin);
    }
    *refused = false;
    return MHD_YES;
}
