/* The Service proxy's controller (controllers/svcproxy.h). */
#include "controllers/svcproxy.h"

#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "net/proxy.h"

/* How long a batch gathers changes: a job's pods report their addresses and readiness within
 * a few ms of each other, and each rebuild reads every Service and Pod. */
#define BATCH_MS 10

struct ty_svcproxy {
    ty_store *store;
    ty_runtime *rt;
    uv_timer_t *timer;
    int watch_ids[3];
    char *empty;  /* the ruleset for no Services */
    bool proxies; /* some Service has rules: only then do pods (endpoints) matter */
};

/* The Services whose endpoints are pods: those with a selector (net/endpoints.h). */
static json_t *selecting(const json_t *svcs)
{
    json_t *out = json_array();
    size_t i;
    json_t *svc;
    json_array_foreach(svcs, i, svc)
    {
        if (json_object_size(json_object_get(json_object_get(svc, "spec"), "selector")))
            json_array_append(out, svc);
    }
    return out;
}

static void rebuild(ty_svcproxy *c)
{
    json_t *svcs = ty_store_list(c->store, "services", NULL);
    json_t *slices = ty_store_list(c->store, "endpointslices", NULL);
    /* Without a Service that proxies pods (headless ones, e.g. every job's, do not; nor does
     * one without a selector, e.g. default/kubernetes, whose endpoints are EndpointSlices) the
     * pods are not read at all: a server's pods change status all the time. */
    json_t *none = json_array(), *sel = selecting(svcs);
    char *rules = ty_proxy_ruleset(sel, none, none);
    c->proxies = strcmp(rules, c->empty) != 0;
    free(rules);
    char *bare = ty_proxy_ruleset(svcs, none, none);
    if (c->proxies) {
        json_t *pods = ty_store_list(c->store, "pods", NULL);
        rules = ty_proxy_ruleset(svcs, pods, slices);
        json_decref(pods);
    } else {
        rules = ty_proxy_ruleset(svcs, none, slices);
    }
    /* Rules that only refuse (Services without endpoints) are not worth a starting pod's
     * apply: running pods get them; a pod started meanwhile has its connections to such a
     * Service time out instead of being refused until the rules change (docs/containers.md). */
    bool sends = c->proxies || strcmp(rules, bare) != 0;
    free(bare);
    json_decref(sel);
    json_decref(none);
    json_decref(slices);
    json_decref(svcs);
    ty_runtime_set_service_rules(c->rt, rules, !sends);
    free(rules);
}

static void on_timer(uv_timer_t *t) { rebuild(t->data); }

static void on_event(void *ctx, ty_event_type type, const char *resource, const json_t *obj)
{
    (void)type, (void)obj;
    ty_svcproxy *c = ctx;
    if (!c->proxies && strcmp(resource, "pods") == 0)
        return;
    if (!uv_is_active((uv_handle_t *)c->timer))
        uv_timer_start(c->timer, on_timer, BATCH_MS, 0);
}

ty_svcproxy *ty_svcproxy_new(uv_loop_t *loop, ty_store *store, ty_runtime *rt)
{
    ty_svcproxy *c = TY_NEW(ty_svcproxy);
    c->store = store;
    c->rt = rt;
    json_t *none = json_array();
    c->empty = ty_proxy_ruleset(none, none, none);
    json_decref(none);
    c->timer = TY_NEW(uv_timer_t);
    uv_timer_init(loop, c->timer);
    c->timer->data = c;
    ty_store_watch(store, &(ty_store_watch_opts){.resource = "services", .fn = on_event, .ctx = c},
                   &c->watch_ids[0], NULL);
    ty_store_watch(store, &(ty_store_watch_opts){.resource = "pods", .fn = on_event, .ctx = c},
                   &c->watch_ids[1], NULL);
    ty_store_watch(store,
                   &(ty_store_watch_opts){.resource = "endpointslices", .fn = on_event, .ctx = c},
                   &c->watch_ids[2], NULL);
    rebuild(c);
    return c;
}

void ty_svcproxy_resync(ty_svcproxy *c)
{
    if (c)
        rebuild(c);
}

static void timer_closed(uv_handle_t *h) { free(h); }

void ty_svcproxy_free(ty_svcproxy *c)
{
    if (!c)
        return;
    ty_store_unwatch(c->store, c->watch_ids[0]);
    ty_store_unwatch(c->store, c->watch_ids[1]);
    ty_store_unwatch(c->store, c->watch_ids[2]);
    uv_close((uv_handle_t *)c->timer, timer_closed);
    free(c->empty);
    free(c);
}
