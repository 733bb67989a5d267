/* ServiceAccounts as Kubernetes runs them (docs/security.md, server_int.h srv_sa_*):
 * - kube-controller-manager's serviceaccounts controller: a `default` ServiceAccount in every
 *   namespace, made when the namespace is (and for every namespace at start), made again when
 *   deleted;
 * - the ServiceAccount admission plugin's check on pod create: the pod's service account
 *   (`default` when it names none) must exist;
 * - the TokenRequest subresource (`serviceaccounts/token`, `kubectl create token`): a JWT for
 *   the service account, optionally bound to a pod;
 * - authentication's check that a token's service account still exists with the uid the token
 *   names (a token of a deleted-and-recreated account is dead). */
#include <stdio.h>
#include <string.h>

#include "auth/token.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/time.h"
#include "server/server_int.h"

#define DEFAULT_SA "default"
/* kube-apiserver's bounds and default of TokenRequest.spec.expirationSeconds */
#define TOKEN_MIN_S 600
#define TOKEN_MAX_S (1LL << 32)
#define TOKEN_DEFAULT_S 3600

struct srv_sactl {
    ty_store *store;
    int watch_id[2];
    bool watching[2];
    uv_timer_t timer; /* reconciles outside the store's watch callback */
};

static const char *meta_str(const json_t *obj, const char *key)
{
    const char *v = json_string_value(json_object_get(json_object_get(obj, "metadata"), key));
    return v ? v : "";
}

static bool terminating(const json_t *obj)
{
    const char *phase = json_string_value(
        json_object_get(json_object_get(obj, "status"), "phase"));
    return json_object_get(json_object_get(obj, "metadata"), "deletionTimestamp") ||
           (phase && strcmp(phase, "Terminating") == 0);
}

int srv_sa_ensure_default(ty_store *store, const char *ns, ty_error *err)
{
    json_t *nsobj = ty_store_get(store, "namespaces", "", ns);
    bool live = nsobj && !terminating(nsobj);
    json_decref(nsobj);
    if (!live)
        return 0;
    json_t *sa = ty_store_get(store, "serviceaccounts", ns, DEFAULT_SA);
    if (sa) {
        json_decref(sa);
        return 0;
    }
    json_t *obj = json_pack("{s:s, s:s, s:{s:s, s:s}}", "apiVersion", "v1", "kind",
                            "ServiceAccount", "metadata", "name", DEFAULT_SA, "namespace", ns);
    int rc = ty_store_create(store, "serviceaccounts", obj, NULL, err);
    json_decref(obj);
    return rc;
}

static void reconcile(srv_sactl *k)
{
    json_t *all = ty_store_list(k->store, "namespaces", NULL);
    size_t i;
    json_t *ns;
    json_array_foreach(all, i, ns)
    {
        ty_error err = TY_ERROR_INIT;
        if (srv_sa_ensure_default(k->store, meta_str(ns, "name"), &err) < 0)
            ty_warn("serviceaccounts: default in %s: %s", meta_str(ns, "name"), err.msg);
        ty_error_clear(&err);
    }
    json_decref(all);
}

static void on_timer(uv_timer_t *t) { reconcile(t->data); }

static void on_change(void *ctx, ty_event_type type, const char *resource, const json_t *obj)
{
    srv_sactl *k = ctx;
    bool sa = strcmp(resource, "serviceaccounts") == 0;
    if ((sa && type == TY_EVENT_DELETED && strcmp(meta_str(obj, "name"), DEFAULT_SA) == 0) ||
        (!sa && type == TY_EVENT_ADDED))
        uv_timer_start(&k->timer, on_timer, 0, 0);
}

srv_sactl *srv_sactl_start(uv_loop_t *loop, ty_store *store)
{
    static const char *const resources[] = {"namespaces", "serviceaccounts"};
    srv_sactl *k = TY_NEW(srv_sactl);
    k->store = store;
    uv_timer_init(loop, &k->timer);
    uv_unref((uv_handle_t *)&k->timer);
    k->timer.data = k;
    for (int i = 0; i < 2; i++)
        k->watching[i] = ty_store_watch(store, &(ty_store_watch_opts){.resource = resources[i],
                                                                      .fn = on_change,
                                                                      .ctx = k},
                                        &k->watch_id[i], NULL) == 0;
    reconcile(k);
    return k;
}

static void on_closed(uv_handle_t *h) { free(h->data); }

void srv_sactl_stop(srv_sactl *k)
{
    if (!k)
        return;
    for (int i = 0; i < 2; i++)
        if (k->watching[i])
            ty_store_unwatch(k->store, k->watch_id[i]);
    uv_close((uv_handle_t *)&k->timer, on_closed);
}

/* ---------- validation ---------- */

int srv_sa_validate(const json_t *sa, ty_field_errors *errs)
{
    size_t before = errs->count;
    const json_t *am = json_object_get(sa, "automountServiceAccountToken");
    if (am && !json_is_boolean(am))
        ty_field_errors_add(errs, "automountServiceAccountToken", (ty_pos){0},
                            "Invalid value: must be a boolean");
    static const char *const lists[] = {"secrets", "imagePullSecrets"};
    for (size_t l = 0; l < TY_ARRAY_LEN(lists); l++) {
        const json_t *list = json_object_get(sa, lists[l]);
        if (list && !json_is_array(list)) {
            ty_field_errors_add(errs, lists[l], (ty_pos){0}, "Invalid value: must be a list");
            continue;
        }
        size_t i;
        const json_t *ref;
        json_array_foreach(list, i, ref)
        {
            const json_t *n = json_object_get(ref, "name");
            if (!json_is_object(ref) || (n && !json_is_string(n))) {
                TY_AUTOFREE char *path = ty_asprintf("%s[%zu]", lists[l], i);
                ty_field_errors_add(errs, path, (ty_pos){0},
                                    "Invalid value: must be an object with a string name");
            }
        }
    }
    return errs->count > before ? -1 : 0;
}

/* ---------- admission of pods ---------- */

int srv_sa_admit_pod(call *c, json_t *pod, enum MHD_Result *ret)
{
    json_t *spec = json_object_get(pod, "spec");
    if (!json_is_object(spec))
        return 0; /* validation answers */
    const char *ns = c->path.ns ? c->path.ns : meta_str(pod, "namespace");
    const char *sa = json_string_value(json_object_get(spec, "serviceAccountName"));
    if (!sa || !*sa)
        sa = json_string_value(json_object_get(spec, "serviceAccount")); /* deprecated alias */
    if (!sa || !*sa) {
        sa = DEFAULT_SA;
        json_object_set_new(spec, "serviceAccountName", json_string(sa));
    }
    TY_CLEANUP_ERROR ty_error err = TY_ERROR_INIT;
    /* the controller makes it as the namespace is made; a pod that comes first waits for no
     * one */
    if (strcmp(sa, DEFAULT_SA) == 0 && srv_sa_ensure_default(c->srv->store, ns, &err) < 0)
        ty_warn("serviceaccounts: default in %s: %s", ns, err.msg);
    if (srv_exists(c->srv, "serviceaccounts", ns, sa))
        return 0;
    const char *name = meta_str(pod, "name");
    json_t *details = json_pack("{s:s, s:s}", "name", name, "kind", "pods");
    TY_AUTOFREE char *msg = ty_asprintf("pods \"%s\" is forbidden: error looking up service "
                                        "account %s/%s: serviceaccount \"%s\" not found",
                                        name, ns, sa, sa);
    *ret = srv_reply(c, 403, ty_srv_status(403, "Forbidden", msg, details));
    return -1;
}

/* ---------- authentication ---------- */

int srv_sa_check_token(call *c, const ty_identity *id, ty_error *err)
{
    /* system:serviceaccount:<ns>:<name> */
    const char *ns = id->name + strlen("system:serviceaccount:");
    const char *colon = strchr(ns, ':');
    if (!colon)
        return ty_fail(err, "service account token: bad subject %s", id->name);
    TY_AUTOFREE char *nsname = ty_strndup(ns, (size_t)(colon - ns));
    json_t *sa = ty_store_get(c->srv->store, "serviceaccounts", nsname, colon + 1);
    bool ok = sa && id->uid && *id->uid && strcmp(meta_str(sa, "uid"), id->uid) == 0 &&
              !terminating(sa);
    json_decref(sa);
    if (!ok)
        return ty_fail(err, "service account token: serviceaccount %s/%s (uid %s) no longer "
                            "exists", nsname, colon + 1, id->uid ? id->uid : "");
    return 0;
}

/* ---------- TokenRequest ---------- */

static enum MHD_Result fail_field(call *c, const char *name, const char *field, const char *fmt,
                                  const char *value)
{
    ty_field_errors errs = TY_FIELD_ERRORS_INIT;
    ty_field_errors_add(&errs, field, (ty_pos){0}, fmt, value);
    json_t *d = json_pack("{s:s, s:s}", "group", "authentication.k8s.io", "kind", "TokenRequest");
    enum MHD_Result ret = srv_fail_invalid_as(c, "TokenRequest.authentication.k8s.io", d, name,
                                              &errs);
    ty_field_errors_free(&errs);
    return ret;
}

/* The pod a token is to be bound to: it must exist (with that uid when given) and run as this
 * service account, as kube-apiserver's TokenRequest checks. 0, or -1 after answering. */
static int bound_pod(call *c, const char *ns, const char *sa, const json_t *ref,
                     json_t **pod_out, enum MHD_Result *ret)
{
    const char *kind = json_string_value(json_object_get(ref, "kind"));
    const char *name = json_string_value(json_object_get(ref, "name"));
    const char *uid = json_string_value(json_object_get(ref, "uid"));
    if (!kind || strcmp(kind, "Pod") != 0) {
        *ret = fail_field(c, sa, "spec.boundObjectRef.kind",
                          "Unsupported value: \"%s\": supported values: \"Pod\"",
                          kind ? kind : "");
        return -1;
    }
    if (!name || !*name) {
        *ret = fail_field(c, sa, "spec.boundObjectRef.name", "Required value%s", "");
        return -1;
    }
    json_t *pod = ty_store_get(c->srv->store, "pods", ns, name);
    if (!pod) {
        *ret = srv_fail_not_found(c, srv_find_res(c->srv, "", "v1", "pods"), name);
        return -1;
    }
    const char *psa = json_string_value(
        json_object_get(json_object_get(pod, "spec"), "serviceAccountName"));
    if (uid && *uid && strcmp(uid, meta_str(pod, "uid")) != 0) {
        json_decref(pod);
        *ret = srv_fail(c, 409, "Conflict",
                        "the UID in the bound object reference (%s) does not match the UID in "
                        "record. The object might have been deleted and then recreated", uid);
        return -1;
    }
    if (strcmp(psa && *psa ? psa : DEFAULT_SA, sa) != 0) {
        json_decref(pod);
        *ret = srv_fail(c, 400, "BadRequest",
                        "cannot bind token for serviceaccount \"%s\" to pod running with "
                        "different serviceaccount name.", sa);
        return -1;
    }
    *pod_out = pod;
    return 0;
}

enum MHD_Result srv_handle_token_request(call *c)
{
    enum MHD_Result ret;
    const ty_apiserver_security *sec = c->srv->sec;
    if (strcmp(c->method, "POST") != 0 || !c->path.name || !c->path.ns)
        return srv_fail(c, 405, "MethodNotAllowed",
                        "the server does not allow this method on the requested resource");
    if (!sec || !sec->sa_signer)
        return srv_fail(c, 404, "NotFound",
                        "serviceaccounts/token: this server issues no service account tokens "
                        "(it trusts its loopback clients; start it with --tls)");
    const char *ns = c->path.ns, *name = c->path.name;
    json_t *obj = srv_read_body(c, &ret);
    if (!obj)
        return ret;
    const char *kind = json_string_value(json_object_get(obj, "kind"));
    const char *av = json_string_value(json_object_get(obj, "apiVersion"));
    if ((kind && strcmp(kind, "TokenRequest") != 0) ||
        (av && strcmp(av, "authentication.k8s.io/v1") != 0)) {
        json_decref(obj);
        return srv_fail(c, 400, "BadRequest",
                        "serviceaccounts/token takes an authentication.k8s.io/v1 TokenRequest, "
                        "not %s %s", av ? av : "", kind ? kind : "");
    }
    json_t *sa = ty_store_get(c->srv->store, "serviceaccounts", ns, name);
    if (!sa) {
        json_decref(obj);
        return srv_fail_not_found(c, c->ri, name);
    }
    json_t *spec = json_object_get(obj, "spec");
    if (!json_is_object(spec)) {
        spec = json_object();
        json_object_set_new(obj, "spec", spec);
    }
    json_t *exp = json_object_get(spec, "expirationSeconds");
    json_int_t secs = json_is_integer(exp) ? json_integer_value(exp) : TOKEN_DEFAULT_S;
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", (long long)secs);
    json_t *pod = NULL;
    json_t *aud = json_object_get(spec, "audiences");
    if (exp && !json_is_integer(exp))
        ret = fail_field(c, name, "spec.expirationSeconds", "Invalid value: %s: must be an "
                         "integer", "");
    else if (secs < TOKEN_MIN_S)
        ret = fail_field(c, name, "spec.expirationSeconds", "Invalid value: %s: may not specify "
                         "a duration less than 10 minutes", buf);
    else if (secs > TOKEN_MAX_S)
        ret = fail_field(c, name, "spec.expirationSeconds", "Invalid value: %s: may not specify "
                         "a duration larger than 2^32 seconds", buf);
    else if (aud && !json_is_array(aud))
        ret = fail_field(c, name, "spec.audiences", "Invalid value: %s: must be a list", "");
    else if (json_is_object(json_object_get(spec, "boundObjectRef")) &&
             bound_pod(c, ns, name, json_object_get(spec, "boundObjectRef"), &pod, &ret) < 0)
        ;
    else
        goto issue;
    json_decref(sa);
    json_decref(obj);
    return ret;
issue:;
    /* the API's own audience unless the request names others (such a token is for them,
     * and this server refuses it, as kube-apiserver does) */
    size_t naud = json_array_size(aud);
    const char **auds = ty_calloc(naud + 1, sizeof *auds);
    size_t n = 0;
    for (size_t i = 0; i < naud; i++)
        if (json_string_value(json_array_get(aud, i)))
            auds[n++] = json_string_value(json_array_get(aud, i));
    if (n == 0) {
        auds[n++] = sec->sa_audience;
        json_object_set_new(spec, "audiences", json_pack("[s]", sec->sa_audience));
    }
    json_object_set_new(spec, "expirationSeconds", json_integer(secs));
    int64_t now_ns = ty_time_now_ns();
    int64_t now = now_ns / 1000000000;
    ty_sa_claims claims = {.ns = ns, .name = name, .uid = meta_str(sa, "uid"),
                           .pod_name = pod ? meta_str(pod, "name") : NULL,
                           .pod_uid = pod ? meta_str(pod, "uid") : NULL, .audiences = auds,
                           .naudiences = n, .issued_at = now, .expires = now + secs};
    if (pod) /* the uid it is bound to, as kube-apiserver fills it in */
        json_object_set_new(json_object_get(spec, "boundObjectRef"), "uid",
                            json_string(meta_str(pod, "uid")));
    TY_AUTOFREE char *jwt = NULL;
    TY_CLEANUP_ERROR ty_error err = TY_ERROR_INIT;
    int rc = ty_sa_token_sign(sec->sa_signer, &claims, &jwt, &err);
    free(auds);
    json_decref(pod);
    json_decref(sa);
    if (rc < 0) {
        json_decref(obj);
        return srv_fail(c, 500, "InternalError", "%s", err.msg);
    }
    char when[64];
    ty_time_format_rfc3339(now_ns + (int64_t)secs * 1000000000, when, sizeof when, 0);
    json_object_set_new(obj, "apiVersion", json_string("authentication.k8s.io/v1"));
    json_object_set_new(obj, "kind", json_string("TokenRequest"));
    json_object_set_new(obj, "metadata", json_pack("{s:s, s:s, s:n}", "name", name, "namespace",
                                                   ns, "creationTimestamp"));
    json_object_set_new(obj, "status", json_pack("{s:s, s:s}", "token", jwt,
                                                 "expirationTimestamp", when));
    return srv_reply(c, 201, obj);
}
