/* Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection does it
 * (cluster.h): every retry period a candidate reads the Lease; it takes it when it is absent,
 * has no holder, or its record (holder, renewTime) has not changed for a lease duration by this
 * replica's own clock (clocks of replicas are not compared: the record's times are only
 * information); the holder renews it every retry period; both writes carry the version read,
 * so two candidates cannot both win. A leader whose last renewal is older than the renew
 * deadline stops leading, before the lease can expire for the others. */
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/mem.h"
#include "base/time.h"
#include "cluster/cluster_int.h"

struct ty_lease {
    ty_cluster *c;
    uv_timer_t timer;
    ty_kube_call *call;
    char *obs_record;    /* "holder\nrenewTime" last seen */
    int64_t obs_mono_ns; /* when it was first seen */
    int64_t renewed_mono_ns;
    /* Another replica holds the Lease while this one thought it led: acted on at the next
     * tick, since on_lost stops the cluster and its clients, which a client's own callback
     * must not do. */
    bool superseded;
};

static const ty_kube_resource lease_res = {.group = "coordination.k8s.io", .version = "v1",
                                           .resource = "leases", .namespaced = true};

static void micro_now(char *out, size_t cap)
{
    ty_time_format_rfc3339(ty_time_now_ns(), out, cap, 6);
}

static void lose(struct ty_lease *l, const char *why)
{
    ty_cluster *c = l->c;
    if (!c->leading)
        return;
    c->leading = false;
    ty_warn("cluster: lost the lease %s/%s: %s", c->lease_ns, TY_CLUSTER_LEASE_NAME, why);
    if (c->on_lost)
        c->on_lost(c->arg);
}

static void on_write(const ty_kube_result *r, void *arg)
{
    struct ty_lease *l = arg;
    ty_cluster *c = l->c;
    l->call = NULL;
    if (r->status != 200 && r->status != 201) {
        ty_debug("cluster: lease write: %d %s", r->status, r->error ? r->error : "");
        return;
    }
    l->renewed_mono_ns = ty_time_mono_ns();
    if (!c->leading) {
        c->leading = true;
        ty_info("cluster: leading (lease %s/%s, holder %s)", c->lease_ns, TY_CLUSTER_LEASE_NAME,
                c->identity);
        ty_cluster_maybe_run(c);
    }
}

static void write_lease(struct ty_lease *l, json_t *lease, bool create)
{
    ty_kube_request req = {.verb = create ? TY_KUBE_CREATE : TY_KUBE_UPDATE, .res = &lease_res,
                           .ns = l->c->lease_ns, .name = create ? NULL : TY_CLUSTER_LEASE_NAME,
                           .body = lease};
    l->call = ty_kube_do(l->c->lease_client, &req, on_write, l);
}

static void on_read(const ty_kube_result *r, void *arg)
{
    struct ty_lease *l = arg;
    ty_cluster *c = l->c;
    l->call = NULL;
    char now[48];
    micro_now(now, sizeof now);
    int64_t mono = ty_time_mono_ns();
    if (r->status == 404) {
        json_t *lease = json_pack(
            "{s:s, s:s, s:{s:s, s:s}, s:{s:s, s:i, s:s, s:s, s:i}}", "apiVersion",
            "coordination.k8s.io/v1", "kind", "Lease", "metadata", "name",
            TY_CLUSTER_LEASE_NAME, "namespace", c->lease_ns, "spec", "holderIdentity",
            c->identity, "leaseDurationSeconds", TY_CLUSTER_LEASE_DURATION_S, "acquireTime", now,
            "renewTime", now, "leaseTransitions", 0);
        write_lease(l, lease, true);
        json_decref(lease);
        return;
    }
    if (r->status != 200 || !json_is_object(r->body)) {
        ty_debug("cluster: lease read: %d %s", r->status, r->error ? r->error : "");
        return;
    }
    json_t *lease = json_deep_copy(r->body);
    json_t *spec = json_object_get(lease, "spec");
    if (!json_is_object(spec))
        json_object_set_new(lease, "spec", spec = json_object());
    const char *holder = json_string_value(json_object_get(spec, "holderIdentity"));
    const char *renew = json_string_value(json_object_get(spec, "renewTime"));
    TY_AUTOFREE char *record = ty_asprintf("%s\n%s", holder ? holder : "", renew ? renew : "");
    if (!l->obs_record || strcmp(record, l->obs_record) != 0) {
        free(l->obs_record);
        l->obs_record = ty_strdup(record);
        l->obs_mono_ns = mono;
    }
    json_int_t duration = json_integer_value(json_object_get(spec, "leaseDurationSeconds"));
    if (duration <= 0)
        duration = TY_CLUSTER_LEASE_DURATION_S;
    bool mine = holder && strcmp(holder, c->identity) == 0;
    bool held = holder && *holder && l->obs_mono_ns + duration * 1000000000LL > mono;
    if (!mine && held) {
        if (c->leading)
            l->superseded = true;
        json_decref(lease);
        return;
    }
    if (!mine) { /* free or expired: take it */
        ty_info("cluster: taking the lease %s/%s from %s", c->lease_ns, TY_CLUSTER_LEASE_NAME,
                holder && *holder ? holder : "nobody");
        bool had = holder && *holder; /* holder is freed by the next line */
        json_object_set_new(spec, "holderIdentity", json_string(c->identity));
        json_object_set_new(spec, "acquireTime", json_string(now));
        json_object_set_new(spec, "leaseDurationSeconds",
                            json_integer(TY_CLUSTER_LEASE_DURATION_S));
        json_int_t t = json_integer_value(json_object_get(spec, "leaseTransitions"));
        json_object_set_new(spec, "leaseTransitions", json_integer(had ? t + 1 : t));
    }
    json_object_set_new(spec, "renewTime", json_string(now));
    write_lease(l, lease, false);
    json_decref(lease);
}

static void on_tick(uv_timer_t *t)
{
    struct ty_lease *l = t->data;
    ty_cluster *c = l->c;
    if (l->superseded) {
        lose(l, "another replica holds it");
        return;
    }
    if (c->leading &&
        ty_time_mono_ns() - l->renewed_mono_ns > TY_CLUSTER_RENEW_DEADLINE_MS * 1000000LL) {
        lose(l, "not renewed within the renew deadline");
        return;
    }
    if (l->call)
        return; /* the last try is still on its way (the client retries and rate-limits) */
    ty_kube_request req = {.verb = TY_KUBE_GET, .res = &lease_res, .ns = c->lease_ns,
                           .name = TY_CLUSTER_LEASE_NAME};
    l->call = ty_kube_do(c->lease_client, &req, on_read, l);
}

void ty_lease_start(ty_cluster *c)
{
    struct ty_lease *l = TY_NEW(struct ty_lease);
    l->c = c;
    c->lease = l;
    uv_timer_init(c->loop, &l->timer);
    l->timer.data = l;
    uv_timer_start(&l->timer, on_tick, 0, TY_CLUSTER_RETRY_PERIOD_MS);
}

static void lease_closed(uv_handle_t *h)
{
    struct ty_lease *l = h->data;
    free(l->obs_record);
    free(l);
}

void ty_lease_stop(ty_cluster *c)
{
    struct ty_lease *l = c->lease;
    if (!l)
        return;
    c->lease = NULL;
    if (l->call)
        ty_kube_cancel(l->call);
    uv_timer_stop(&l->timer);
    uv_close((uv_handle_t *)&l->timer, lease_closed);
}
