/* The `kubernetes` Service of namespace default, as kube-apiserver's bootstrap controller keeps
 * it (server_int.h, srv_kubesvc). */
#include <string.h>

#include "api/kinds.h"
#include "base/log.h"
#include "base/mem.h"
#include "server/server_int.h"

#define NS "default"
#define NAME "kubernetes"

struct srv_kubesvc {
    ty_store *store;
    int api_port;
    int watch_id;
    bool watching;
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

static void report(srv_kubesvc *k, const char *what, const ty_error *err)
{
    /* once per distinct problem: a user's Service holding the address stays a problem */
    char msg[256];
    snprintf(msg, sizeof msg, "%s: %s", what, err->msg ? err->msg : "?");
    if (strcmp(msg, k->last_error) != 0)
        ty_warn("the kubernetes service: %s", msg);
    snprintf(k->last_error, sizeof k->last_error, "%s", msg);
}

/* Creates the Service when absent; puts back its type, ports and labels when changed (its
 * address is immutable, as kube-apiserver leaves it). */
static void reconcile(srv_kubesvc *k)
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

static void on_service(void *ctx, ty_event_type type, const char *resource, const json_t *obj)
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

srv_kubesvc *srv_kubesvc_start(uv_loop_t *loop, ty_store *store, int api_port)
{
    srv_kubesvc *k = TY_NEW(srv_kubesvc);
    k->store = store;
    k->api_port = api_port;
    uv_timer_init(loop, &k->timer);
    uv_unref((uv_handle_t *)&k->timer); /* it must not keep the loop alive by itself */
    k->timer.data = k;
    k->watching = ty_store_watch(store, &(ty_store_watch_opts){.resource = "services",
                                                              .fn = on_service, .ctx = k},
                                 &k->watch_id, NULL) == 0;
    reconcile(k);
    return k;
}

static void on_closed(uv_handle_t *h) { free(h->data); }

void srv_kubesvc_stop(srv_kubesvc *k)
{
    if (!k)
        return;
    if (k->watching)
        ty_store_unwatch(k->store, k->watch_id);
    uv_close((uv_handle_t *)&k->timer, on_closed);
}
