/* The `kubernetes` Service of namespace default, as kube-apiserver's bootstrap controller keeps
 * it (server_int.h, srv_kubesvc). */
#include <stdio.h>
#include <string.h>

#include "api/kinds.h"
#include "base/log.h"
#include "base/mem.h"
#include "server/server_int.h"

#define NS "default"
#define NAME "kubernetes"

/* The three objects, each watched. */
static const char *const resources[] = {"services", "endpoints", "endpointslices"};
#define N_RES 3

struct srv_kubesvc {
    ty_store *store;
    int api_port;
    char api_ip[64]; /* the listen address */
    int watch_id[N_RES];
    bool watching[N_RES];
    uv_timer_t timer; /* a reconcile after a change, outside the store's watch callback */
    char last_error[256];
};

/* What kube-apiserver writes: the range's first address, port 443 "https" to the API's port,
 * its labels; the kind's defaults as a create through the API would get them. */
static json_t *desired(const srv_kubesvc *k)
{
    char ip[16];
    ty_store_service_first_ip(k->store, ip);
    json_t *svc = json_pack(
        "{s:s, s:s, s:{s:s, s:s, s:{s:s, s:s}}, s:{s:s, s:s, s:s, s:[{s:s, s:i, s:s, s:i}]}}",
        "apiVersion", "v1", "kind", "Service", "metadata", "name", NAME, "namespace", NS,
        "labels", "component", "apiserver", "provider", "kubernetes", "spec", "type",
        "ClusterIP", "clusterIP", ip, "sessionAffinity", "None", "ports", "name", "https",
        "port", 443, "protocol", "TCP", "targetPort", k->api_port);
    const ty_kind_info *kind = ty_kind_of_resource("services");
    if (kind && kind->create_defaults)
        kind->create_defaults(svc);
    return svc;
}

/* Its endpoints: the API's listen address and port, as kube-apiserver's endpoint reconciler
 * writes both kinds (the Endpoints marked so that no mirroring controller copies it). */
static json_t *desired_endpoints(const srv_kubesvc *k)
{
    return json_pack("{s:s, s:s, s:{s:s, s:s, s:{s:s}}, s:[{s:[{s:s}], s:[{s:s, s:i, s:s}]}]}",
                     "apiVersion", "v1", "kind", "Endpoints", "metadata", "name", NAME,
                     "namespace", NS, "labels", "endpointslice.kubernetes.io/skip-mirror", "true",
                     "subsets", "addresses", "ip", k->api_ip, "ports", "name", "https", "port",
                     k->api_port, "protocol", "TCP");
}

static json_t *desired_slice(const srv_kubesvc *k)
{
    return json_pack("{s:s, s:s, s:{s:s, s:s, s:{s:s}}, s:s, s:[{s:[s], s:{s:b}}],"
                     " s:[{s:s, s:i, s:s}]}",
                     "apiVersion", "discovery.k8s.io/v1", "kind", "EndpointSlice", "metadata",
                     "name", NAME, "namespace", NS, "labels", "kubernetes.io/service-name", NAME,
                     "addressType", "IPv4", "endpoints", "addresses", k->api_ip, "conditions",
                     "ready", 1, "ports", "name", "https", "port", k->api_port, "protocol", "TCP");
}

static void report(srv_kubesvc *k, const char *what, const ty_error *err)
{
    /* once per distinct problem: a user's Service holding the address stays a problem */
    char msg[256];
    snprintf(msg, sizeof msg, "%s: %s", what, err->msg ? err->msg : "?");
    if (strcmp(msg, k->last_error) != 0)
        ty_warn("the kubernetes service: %s", msg);
    snprintf(k->last_error, sizeof k->last_error, "%s", msg);
}

/* Whether cur has every label of want. */
static bool has_labels(const json_t *cur, const json_t *want)
{
    const json_t *labels = json_object_get(json_object_get(cur, "metadata"), "labels");
    const char *lk;
    json_t *lv;
    json_object_foreach(json_object_get(json_object_get(want, "metadata"), "labels"), lk, lv)
    {
        if (!json_equal(json_object_get(labels, lk), lv))
            return false;
    }
    return true;
}

/* Endpoints or EndpointSlice: created when absent, its top-level `fields` and labels put
 * back when they differ. */
static void reconcile_object(srv_kubesvc *k, const char *resource, json_t *want,
                             const char *const *fields)
{
    json_t *cur = ty_store_get(k->store, resource, NS, NAME);
    ty_error err = TY_ERROR_INIT;
    if (!cur) {
        if (ty_store_create(k->store, resource, want, NULL, &err) < 0)
            report(k, resource, &err);
    } else {
        bool same = has_labels(cur, want);
        for (size_t i = 0; fields[i]; i++)
            same &= json_equal(json_object_get(cur, fields[i]), json_object_get(want, fields[i]));
        if (!same) {
            json_t *upd = json_deep_copy(cur);
            for (size_t i = 0; fields[i]; i++)
                json_object_set(upd, fields[i], json_object_get(want, fields[i]));
            json_t *meta = json_object_get(upd, "metadata");
            if (!json_is_object(json_object_get(meta, "labels")))
                json_object_set_new(meta, "labels", json_object());
            json_object_update(json_object_get(meta, "labels"),
                               json_object_get(json_object_get(want, "metadata"), "labels"));
            if (ty_store_update(k->store, resource, upd, NULL, &err) < 0)
                report(k, resource, &err);
            json_decref(upd);
        }
        json_decref(cur);
    }
    ty_error_clear(&err);
    json_decref(want);
}

static void reconcile_service(srv_kubesvc *k);

static void reconcile(srv_kubesvc *k)
{
    static const char *const ep_fields[] = {"subsets", NULL};
    static const char *const slice_fields[] = {"addressType", "endpoints", "ports", NULL};
    reconcile_service(k);
    reconcile_object(k, "endpoints", desired_endpoints(k), ep_fields);
    reconcile_object(k, "endpointslices", desired_slice(k), slice_fields);
}

/* Creates the Service when absent; puts back its type, ports and labels when changed (its
 * address is immutable, as kube-apiserver leaves it). */
static void reconcile_service(srv_kubesvc *k)
{
    json_t *want = desired(k);
    json_t *cur = ty_store_get(k->store, "services", NS, NAME);
    ty_error err = TY_ERROR_INIT;
    if (!cur) {
        if (ty_store_create(k->store, "services", want, NULL, &err) < 0)
            report(k, "create", &err);
        else
            k->last_error[0] = 0;
    } else {
        json_t *cspec = json_object_get(cur, "spec"), *wspec = json_object_get(want, "spec");
        json_t *cmeta = json_object_get(cur, "metadata");
        bool same = json_equal(json_object_get(cspec, "ports"), json_object_get(wspec, "ports")) &&
                    json_equal(json_object_get(cspec, "type"), json_object_get(wspec, "type"));
        const char *lk;
        json_t *lv;
        json_t *labels = json_object_get(cmeta, "labels");
        json_object_foreach(json_object_get(json_object_get(want, "metadata"), "labels"), lk, lv)
            same &= json_equal(json_object_get(labels, lk), lv);
        if (!same) {
            json_t *upd = json_deep_copy(cur);
            json_t *uspec = json_object_get(upd, "spec");
            json_object_set(uspec, "ports", json_object_get(wspec, "ports"));
            json_object_set(uspec, "type", json_object_get(wspec, "type"));
            json_t *umeta = json_object_get(upd, "metadata");
            if (!json_is_object(json_object_get(umeta, "labels")))
                json_object_set_new(umeta, "labels", json_object());
            json_object_update(json_object_get(umeta, "labels"),
                               json_object_get(json_object_get(want, "metadata"), "labels"));
            if (ty_store_update(k->store, "services", upd, NULL, &err) < 0)
                report(k, "update", &err);
            json_decref(upd);
        }
        json_decref(cur);
    }
    ty_error_clear(&err);
    json_decref(want);
}

static void on_timer(uv_timer_t *t) { reconcile(t->data); }

static void on_change(void *ctx, ty_event_type type, const char *resource, const json_t *obj)
{
    (void)type;
    (void)resource;
    srv_kubesvc *k = ctx;
    const json_t *meta = json_object_get(obj, "metadata");
    const char *ns = json_string_value(json_object_get(meta, "namespace"));
    const char *name = json_string_value(json_object_get(meta, "name"));
    if (ns && name && strcmp(ns, NS) == 0 && strcmp(name, NAME) == 0)
        uv_timer_start(&k->timer, on_timer, 0, 0);
}

srv_kubesvc *srv_kubesvc_start(uv_loop_t *loop, ty_store *store, const char *api_ip,
                               int api_port)
{
    srv_kubesvc *k = TY_NEW(srv_kubesvc);
    k->store = store;
    k->api_port = api_port;
    snprintf(k->api_ip, sizeof k->api_ip, "%s", api_ip);
    uv_timer_init(loop, &k->timer);
    uv_unref((uv_handle_t *)&k->timer); /* it must not keep the loop alive by itself */
    k->timer.data = k;
    for (int i = 0; i < N_RES; i++)
        k->watching[i] = ty_store_watch(store, &(ty_store_watch_opts){.resource = resources[i],
                                                                      .fn = on_change,
                                                                      .ctx = k},
                                        &k->watch_id[i], NULL) == 0;
    reconcile(k);
    return k;
}

static void on_closed(uv_handle_t *h) { free(h->data); }

void srv_kubesvc_stop(srv_kubesvc *k)
{
    if (!k)
        return;
    for (int i = 0; i < N_RES; i++)
        if (k->watching[i])
            ty_store_unwatch(k->store, k->watch_id[i]);
    uv_close((uv_handle_t *)&k->timer, on_closed);
}
