/* The API server's security (docs/security.md): who asks (authentication), whether they may
 * (RBAC authorization), the admission of RBAC objects (validation, escalation), the access
 * and rules reviews, and the audit log. The decisions are auth/'s; this unit feeds them from
 * the request and the store.
 *
 * Without a ty_apiserver_security the server is the loopback one that trusts its clients:
 * every request is the local admin, in system:masters, which RBAC allows everything. The same
 * path runs either way, so a review or an escalation check answers alike in both modes. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/pki.h"
#include "auth/rbac.h"
#include "auth/token.h"
#include "base/buf.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/time.h"
#include "server/mhd.h"
#include "server/server_int.h"

#define LOCAL_ADMIN "system:admin"
#define AUTHENTICATED "system:authenticated"
#define AUDIT_DEFAULT_MAX (100u * 1024 * 1024)

/* The four RBAC kinds by resource. */
static const struct {
    const char *resource, *kind;
} rbac_kinds[] = {
    {"roles", "Role"},
    {"clusterroles", "ClusterRole"},
    {"rolebindings", "RoleBinding"},
    {"clusterrolebindings", "ClusterRoleBinding"},
};

static const char *rbac_kind_of(const char *resource)
{
    for (size_t i = 0; i < TY_ARRAY_LEN(rbac_kinds); i++)
        if (strcmp(rbac_kinds[i].resource, resource) == 0)
            return rbac_kinds[i].kind;
    return NULL;
}

static const char *meta_str(const json_t *obj, const char *key)
{
    const char *v = json_string_value(json_object_get(json_object_get(obj, "metadata"), key));
    return v ? v : "";
}

/* ---------- the RBAC index, fed by the store ---------- */

static void on_rbac_event(void *ctx, ty_event_type type, const char *resource, const json_t *obj)
{
    ty_apiserver *s = ctx;
    const char *kind = rbac_kind_of(resource);
    if (!kind)
        return;
    if (type == TY_EVENT_DELETED) {
        ty_rbac_remove(s->rbac, kind, meta_str(obj, "namespace"), meta_str(obj, "name"));
    } else {
        TY_CLEANUP_ERROR ty_error err = TY_ERROR_INIT;
        /* The API checks every object before it is stored (srv_rbac_admit); one that still
         * fails (a store from before that check) grants nothing. */
        if (ty_rbac_put(s->rbac, obj, &err) < 0)
            ty_log(TY_LOG_WARN, "rbac: %s %s/%s ignored: %s", kind, meta_str(obj, "namespace"),
                   meta_str(obj, "name"), err.msg);
    }
    if (strcmp(resource, "clusterroles") == 0)
        s->aggregate_dirty = true;
}

/* Writes the rules of aggregated ClusterRoles back into them, as kube-controller-manager's
 * clusterrole-aggregation controller does, so that `kubectl get clusterrole admin -o yaml`
 * shows what it grants. Writing one changes nothing the index computes, so this settles. */
static void write_aggregated(ty_apiserver *s)
{
    for (int round = 0; round < 4 && s->aggregate_dirty; round++) {
        s->aggregate_dirty = false;
        json_t *roles = ty_store_list(s->store, "clusterroles", NULL);
        size_t i;
        json_t *role;
        json_array_foreach(roles, i, role)
        {
            if (!json_is_object(json_object_get(role, "aggregationRule")))
                continue;
            json_t *rules = ty_rbac_cluster_role_rules(s->rbac, meta_str(role, "name"));
            if (rules && !json_equal(rules, json_object_get(role, "rules"))) {
                json_t *copy = json_deep_copy(role);
                json_object_set(copy, "rules", rules);
                TY_CLEANUP_ERROR ty_error err = TY_ERROR_INIT;
                if (ty_store_update(s->store, "clusterroles", copy, NULL, &err) < 0)
                    ty_log(TY_LOG_WARN, "rbac: aggregate ClusterRole %s: %s",
                           meta_str(role, "name"), err.msg);
                json_decref(copy);
            }
            json_decref(rules);
        }
        json_decref(roles);
    }
}

/* kube-apiserver's bootstrap policy: created when missing, at every start (a deleted built-in
 * role comes back, as there). */
static int bootstrap(ty_apiserver *s, ty_error *err)
{
    json_t *objs = ty_rbac_bootstrap_objects();
    size_t i;
    json_t *obj;
    int rc = 0;
    json_array_foreach(objs, i, obj)
    {
        const char *kind = json_string_value(json_object_get(obj, "kind"));
        const char *resource = NULL;
        for (size_t k = 0; k < TY_ARRAY_LEN(rbac_kinds); k++)
            if (kind && strcmp(rbac_kinds[k].kind, kind) == 0)
                resource = rbac_kinds[k].resource;
        if (!resource || srv_exists(s, resource, "", meta_str(obj, "name")))
            continue;
        if ((rc = ty_store_create(s->store, resource, obj, NULL, err)) < 0)
            break;
    }
    json_decref(objs);
    return rc;
}

int srv_auth_start(ty_apiserver *s, ty_error *err)
{
    s->rbac = ty_rbac_new();
    if (bootstrap(s, err) < 0)
        return ty_error_wrap(err, "create the built-in RBAC roles");
    for (size_t k = 0; k < TY_ARRAY_LEN(rbac_kinds); k++) {
        json_t *all = ty_store_list(s->store, rbac_kinds[k].resource, NULL);
        size_t i;
        json_t *obj;
        json_array_foreach(all, i, obj)
            on_rbac_event(s, TY_EVENT_ADDED, rbac_kinds[k].resource, obj);
        json_decref(all);
    }
    ty_store_watch_opts o = {.fn = on_rbac_event, .ctx = s};
    if (ty_store_watch(s->store, &o, &s->rbac_watch, err) < 0)
        return -1;
    write_aggregated(s);
    return 0;
}

void srv_auth_stop(ty_apiserver *s)
{
    if (s->rbac) {
        ty_store_unwatch(s->store, s->rbac_watch);
        ty_rbac_free(s->rbac);
        s->rbac = NULL;
    }
}

void srv_auth_after_request(ty_apiserver *s)
{
    if (s->aggregate_dirty)
        write_aggregated(s);
}

/* ---------- authentication ---------- */

static void identity_add_group(ty_identity *id, const char *g)
{
    for (size_t i = 0; i < id->ngroups; i++)
        if (strcmp(id->groups[i], g) == 0)
            return;
    id->groups = ty_realloc(id->groups, (id->ngroups + 1) * sizeof *id->groups);
    id->groups[id->ngroups++] = ty_strdup(g);
}

static void identity_set(ty_identity *id, const char *name, const char *group)
{
    ty_identity_clear(id);
    id->name = ty_strdup(name);
    id->uid = ty_strdup("");
    identity_add_group(id, group);
}

/* What anonymous clients may reach (kube-apiserver's system:public-info-viewer, which RBAC
 * still decides on): everything else without a credential is 401. */
static bool public_path(const char *url)
{
    static const char *const paths[] = {"/healthz", "/livez", "/readyz", "/version",
                                        "/version/"};
    for (size_t i = 0; i < TY_ARRAY_LEN(paths); i++)
        if (strcmp(url, paths[i]) == 0)
            return true;
    return false;
}

/* A ServiceAccount token is good while the pod it was made for exists with that uid (as
 * kube-apiserver checks a bound token): a token copied out of a deleted pod is dead. */
static int check_sa_binding(call *c, const ty_identity *id, const ty_sa_binding *b,
                            ty_error *err)
{
    if (!b->pod_name || !*b->pod_name)
        return 0;
    /* system:serviceaccount:<ns>:<name> */
    const char *ns = id->name + strlen("system:serviceaccount:");
    const char *colon = strchr(ns, ':');
    TY_AUTOFREE char *nsname = ty_strndup(ns, colon ? (size_t)(colon - ns) : strlen(ns));
    json_t *pod = ty_store_get(c->srv->store, "pods", nsname, b->pod_name);
    bool ok = pod && strcmp(meta_str(pod, "uid"), b->pod_uid ? b->pod_uid : "") == 0 &&
              !json_object_get(json_object_get(pod, "metadata"), "deletionTimestamp");
    json_decref(pod);
    if (!ok)
        return ty_fail(err, "service account token: pod %s/%s (uid %s) no longer exists",
                       nsname, b->pod_name, b->pod_uid ? b->pod_uid : "");
    return 0;
}

/* The bearer token's identity: the token file's, a minted token's, or a ServiceAccount
 * token's. -1 (with why, for the log) when none knows it. */
static int authenticate_token(call *c, const char *token, int64_t now, ty_error *err)
{
    const ty_apiserver_security *sec = c->srv->sec;
    if (sec->token_file && ty_token_file_lookup(sec->token_file, token, &c->user))
        return 0;
    if (sec->token_store) {
        int rc = ty_token_store_lookup(sec->token_store, token, now, &c->user, err);
        if (rc != 0)
            return rc > 0 ? 0 : -1;
    }
    /* a JWT: header.payload.signature */
    const char *dot = strchr(token, '.');
    if (sec->sa_signer && dot && strchr(dot + 1, '.')) {
        ty_sa_binding b = {0};
        int rc = ty_sa_token_verify(sec->sa_signer, token, sec->sa_audience, now, &c->user, &b,
                                    err);
        if (rc == 0 && (srv_sa_check_token(c, &c->user, err) < 0 ||
                        check_sa_binding(c, &c->user, &b, err) < 0)) {
            ty_identity_clear(&c->user);
            rc = -1;
        }
        free(b.pod_name);
        free(b.pod_uid);
        return rc;
    }
    return ty_fail(err, "unknown bearer token");
}

int srv_authenticate(call *c, enum MHD_Result *ret)
{
    const ty_apiserver_security *sec = c->srv->sec;
    if (!sec) {
        identity_set(&c->user, LOCAL_ADMIN, TY_RBAC_MASTERS);
        identity_add_group(&c->user, AUTHENTICATED);
        return 0;
    }
    int64_t now = ty_time_now_ns() / 1000000000;
    TY_CLEANUP_ERROR ty_error err = TY_ERROR_INIT;
    const char *h = srv_hdr(c, MHD_HTTP_HEADER_AUTHORIZATION);
    bool found = false, refused = false;
    if (h && strncasecmp(h, "Bearer ", 7) == 0) {
        const char *token = h + 7;
        while (*token == ' ')
            token++;
        if (*token && authenticate_token(c, token, now, &err) == 0)
            found = true;
        else
            refused = true;
    } else {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c->conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
        int rc = ci ? ty_pki_verify_session(sec->pki, ci->tls_session, now, &c->user, &err) : 0;
        found = rc > 0;
        refused = rc < 0;
    }
    if (found) {
        identity_add_group(&c->user, AUTHENTICATED);
        return 0;
    }
    ty_identity_clear(&c->user);
    if (!refused && public_path(c->url)) {
        identity_set(&c->user, "system:anonymous", "system:unauthenticated");
        return 0;
    }
    if (refused)
        ty_debug("auth: %s %s refused: %s", c->method, c->url, err.msg ? err.msg : "");
    *ret = srv_fail(c, 401, "Unauthorized", "Unauthorized");
    return -1;
}

/* ---------- authorization ---------- */

static ty_rbac_user rbac_user(const call *c)
{
    return (ty_rbac_user){.name = c->user.name ? c->user.name : "",
                          .groups = (const char *const *)c->user.groups,
                          .ngroups = c->user.ngroups};
}

/* The request's attributes as kube-apiserver's request info has them; `method` is a buffer
 * for a non-resource request's verb. */
static ty_rbac_request request_of(call *c, char method[16])
{
    ty_rbac_request q = {0};
    if (c->path.resource) {
        q.group = c->path.group;
        q.resource = c->path.resource;
        q.subresource = c->path.sub;
        q.name = c->path.name;
        q.ns = c->path.ns ? c->path.ns : "";
        /* /api/v1/namespaces/x is namespace x's own object, in namespace x */
        if (strcmp(q.resource, "namespaces") == 0 && q.name && !c->path.ns)
            q.ns = q.name;
        q.verb = ty_rbac_verb(c->method, true, q.name != NULL, srv_q_true(c, "watch"));
    } else {
        q.path = c->url;
        size_t i = 0;
        for (; c->method[i] && i < 15; i++)
            method[i] = (char)(c->method[i] | 0x20);
        method[i] = '\0';
        q.verb = method;
    }
    return q;
}

int srv_authorize(call *c, enum MHD_Result *ret)
{
    char method[16];
    ty_rbac_request q = request_of(c, method);
    if (!q.verb) /* a method no verb names (OPTIONS, ...): the handlers answer 405 */
        return 0;
    ty_rbac_user u = rbac_user(c);
    char *reason = NULL;
    if (ty_rbac_authorize(c->srv->rbac, &u, &q, &reason)) {
        free(reason);
        return 0;
    }
    TY_AUTOFREE char *msg = ty_rbac_forbidden_message(&u, &q, reason);
    free(reason);
    json_t *details = NULL;
    if (q.resource) {
        details = json_pack("{s:s, s:s}", "group", q.group, "kind", q.resource);
        if (q.name)
            json_object_set_new(details, "name", json_string(q.name));
    }
    *ret = srv_reply(c, 403, ty_srv_status(403, "Forbidden", msg, details));
    return -1;
}

/* ---------- RBAC objects' admission ---------- */

/* A Role, ClusterRole or binding: kube-apiserver's validation (422), then its escalation
 * check (403): nobody grants what they do not hold, unless they may escalate or bind. */
int srv_rbac_admit(call *c, json_t *obj, const char *name, enum MHD_Result *ret)
{
    TY_CLEANUP_ERROR ty_error err = TY_ERROR_INIT;
    if (ty_rbac_validate(obj, &err) < 0) {
        ty_field_errors errs = TY_FIELD_ERRORS_INIT;
        /* "rules[0].verbs: Required value: ..." */
        const char *sep = strstr(err.msg, ": ");
        TY_AUTOFREE char *path = sep ? ty_strndup(err.msg, (size_t)(sep - err.msg))
                                     : ty_strdup("");
        ty_field_errors_add(&errs, path, (ty_pos){0}, "%s", sep ? sep + 2 : err.msg);
        *ret = srv_fail_invalid(c, name, &errs);
        ty_field_errors_free(&errs);
        return -1;
    }
    ty_rbac_user u = rbac_user(c);
    if (ty_rbac_check_escalation(c->srv->rbac, &u, obj, &err) < 0) {
        *ret = srv_reply(c, 403, ty_srv_status(403, "Forbidden", err.msg,
                                               srv_details(c->ri, name, false)));
        return -1;
    }
    return 0;
}

/* ---------- reviews ---------- */

/* POST of a SelfSubjectAccessReview, SubjectAccessReview, LocalSubjectAccessReview,
 * SelfSubjectRulesReview or SelfSubjectReview: the object back with its status, nothing
 * stored. */
enum MHD_Result srv_handle_review(call *c)
{
    enum MHD_Result ret;
    if (strcmp(c->method, "POST") != 0 || c->path.name)
        return srv_fail(c, 405, "MethodNotAllowed",
                        "the server does not allow this method on the requested resource");
    json_t *obj = srv_read_body(c, &ret);
    if (!obj)
        return ret;
    if (srv_check_kind(c, obj, &ret) < 0) {
        json_decref(obj);
        return ret;
    }
    if (strcmp(c->ri->kind, "SelfSubjectReview") == 0) {
        /* who the server takes the caller for (`kubectl auth whoami`) */
        json_t *groups = json_array();
        for (size_t i = 0; i < c->user.ngroups; i++)
            json_array_append_new(groups, json_string(c->user.groups[i]));
        json_t *info = json_pack("{s:s, s:o}", "username", c->user.name ? c->user.name : "",
                                 "groups", groups);
        if (c->user.uid && *c->user.uid)
            json_object_set_new(info, "uid", json_string(c->user.uid));
        json_object_set_new(obj, "status", json_pack("{s:o}", "userInfo", info));
        return srv_reply(c, 201, obj);
    }
    json_t *spec = json_object_get(obj, "spec");
    if (!json_is_object(spec)) {
        json_decref(obj);
        return srv_fail(c, 400, "BadRequest", "%s: spec: Required value", c->ri->kind);
    }
    ty_rbac_user self = rbac_user(c);
    TY_CLEANUP_ERROR ty_error err = TY_ERROR_INIT;
    json_t *status = NULL;
    const char *kind = c->ri->kind;
    if (strcmp(kind, "SelfSubjectRulesReview") == 0) {
        const char *ns = json_string_value(json_object_get(spec, "namespace"));
        status = ty_rbac_rules_review(c->srv->rbac, &self, ns ? ns : "");
    } else {
        bool self_review = strcmp(kind, "SelfSubjectAccessReview") == 0;
        if (strcmp(kind, "LocalSubjectAccessReview") == 0) {
            const char *ns = json_string_value(
                json_object_get(json_object_get(spec, "resourceAttributes"), "namespace"));
            if (!ns || strcmp(ns, c->path.ns ? c->path.ns : "") != 0) {
                json_decref(obj);
                return srv_fail(c, 400, "BadRequest",
                                "spec.resourceAttributes.namespace must match namespace: %s",
                                c->path.ns ? c->path.ns : "");
            }
        }
        status = ty_rbac_access_review(c->srv->rbac, self_review ? &self : NULL, spec, &err);
    }
    if (!status) {
        json_decref(obj);
        return srv_fail(c, 400, "BadRequest", "%s", err.msg ? err.msg : "bad review");
    }
    if (strcmp(kind, "SelfSubjectAccessReview") == 0 ||
        strcmp(kind, "SelfSubjectRulesReview") == 0) {
        /* as kube-apiserver, the user is whoever asks, whatever the body says */
        json_object_del(spec, "user");
        json_object_del(spec, "groups");
    }
    json_object_set_new(obj, "status", status);
    if (!json_is_object(json_object_get(obj, "metadata")))
        json_object_set_new(obj, "metadata", json_object());
    return srv_reply(c, 201, obj);
}

/* ---------- audit ---------- */

static bool mutating(const char *method)
{
    return strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0 &&
           strcmp(method, "OPTIONS") != 0;
}

/* One JSON line per mutating request: who, what, on what, and the answer's status. The file
 * is opened for each line (appends from one process are whole lines) and moved to <path>.1
 * once past its size, as a log rotator would. */
void srv_audit(call *c)
{
    ty_apiserver *s = c->srv;
    if (!s->audit_path || !mutating(c->method))
        return;
    char method[16];
    ty_rbac_request q = request_of(c, method);
    char when[64];
    ty_time_format_rfc3339(ty_time_now_ns(), when, sizeof when, 6);
    json_t *groups = json_array();
    for (size_t i = 0; i < c->user.ngroups; i++)
        json_array_append_new(groups, json_string(c->user.groups[i]));
    json_t *line = json_pack("{s:s, s:s, s:s, s:o, s:s, s:s, s:i}", "time", when, "user",
                             c->user.name ? c->user.name : "", "verb", q.verb ? q.verb : method,
                             "groups", groups, "method", c->method, "uri", c->url, "code",
                             c->r ? c->r->code : 0);
    if (q.resource) {
        json_object_set_new(line, "apiGroup", json_string(q.group));
        json_object_set_new(line, "resource", json_string(q.resource));
        if (q.subresource)
            json_object_set_new(line, "subresource", json_string(q.subresource));
        if (q.ns && *q.ns)
            json_object_set_new(line, "namespace", json_string(q.ns));
        if (q.name)
            json_object_set_new(line, "name", json_string(q.name));
    }
    TY_AUTOFREE char *text = json_dumps(line, JSON_COMPACT);
    json_decref(line);
    size_t len = strlen(text);
    text[len++] = '\n'; /* json_dumps' NUL becomes the newline; written by length */
    struct stat sb;
    if (stat(s->audit_path, &sb) == 0 && (size_t)sb.st_size + len > s->audit_max_bytes) {
        TY_AUTOFREE char *old = ty_asprintf("%s.1", s->audit_path);
        if (rename(s->audit_path, old) < 0)
            ty_log(TY_LOG_WARN, "audit: rotate %s: %s", s->audit_path, strerror(errno));
    }
    int fd = open(s->audit_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0 || write(fd, text, len) != (ssize_t)len)
        ty_log(TY_LOG_WARN, "audit: write %s: %s", s->audit_path, strerror(errno));
    if (fd >= 0)
        close(fd);
}

void srv_audit_config(ty_apiserver *s, const char *path, size_t max)
{
    s->audit_path = path ? ty_strdup(path) : NULL;
    s->audit_max_bytes = max ? max : AUDIT_DEFAULT_MAX;
}
