/* Cluster mode: the mirror, the writer and the controllers' lifetime (cluster.h). Leader
 * election is in lease.c. */
#include "cluster/cluster.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "api/kinds.h"
#include "base/hash.h"
#include "base/log.h"
#include "base/map.h"
#include "base/mem.h"
#include "cluster/cluster_int.h"
#include "controllers/admission.h"
#include "controllers/binder.h"
#include "controllers/jobs.h"
#include "controllers/workloads.h"
#include "store/writer.h"

/* What the controllers read besides the kinds the registry marks as watched by them: the
 * job's Services (the operator's headless ones), the claims pods wait for (the binder) and
 * the priority classes (Kueue's priority). Events are written, never read back: mirroring
 * them would cost memory for every Event in the cluster (repeats are then new Events rather
 * than counts). */
static const char *const extra_resources[] = {"services", "persistentvolumeclaims",
                                              "priorityclasses", NULL};

static bool mirrored(const ty_kind_info *k)
{
    if (k->review)
        return false;
    /* the controllers cluster mode runs (ty_cluster_start): the training jobs', Kueue's and
     * the binder's kinds; batch Jobs come with Kueue's job side */
    if (k->watched_by & (TY_WATCHED_BY_JOBS | TY_WATCHED_BY_WORKLOADS | TY_WATCHED_BY_ADMISSION))
        return true;
    for (size_t i = 0; extra_resources[i]; i++)
        if (strcmp(extra_resources[i], k->resource) == 0)
            return true;
    return false;
}

/* ---- the mirror ---- */

typedef struct sent_status {
    char *base_rv;  /* the resourceVersion of the object the status was computed from */
    uint64_t hash;  /* of the status sent */
} sent_status;

typedef struct mirror_ctx {
    ty_cluster *c;
    const ty_kind_info *kind;
    bool synced;
} mirror_ctx;

static char *inflight_key(const char *resource, const char *ns, const char *name)
{
    return ty_asprintf("%s/%s/%s", resource, ns ? ns : "", name);
}

static void on_mirror_event(ty_reflector_event type, json_t *obj, void *arg)
{
    mirror_ctx *m = arg;
    if (m->c->inflight.count) {
        TY_AUTOFREE char *key =
            inflight_key(m->kind->resource, ty_obj_namespace(obj), ty_obj_name(obj));
        ty_map_dels(&m->c->inflight, key); /* the create came back (or the object changed) */
    }
    if (m->c->statuses.count) {
        TY_AUTOFREE char *key =
            inflight_key(m->kind->resource, ty_obj_namespace(obj), ty_obj_name(obj));
        struct sent_status *st = ty_map_dels(&m->c->statuses, key);
        if (st) { /* the object moved on: compare anew */
            free(st->base_rv);
            free(st);
        }
    }
    if (type == TY_REFLECTOR_DELETED) {
        ty_store_mirror_remove(m->c->store, m->kind->resource, ty_obj_namespace(obj),
                               ty_obj_name(obj));
        return;
    }
    /* Objects from a collection carry no kind of their own in some servers' lists: the
     * controllers read apiVersion and kind (ownerReferences, Events), so they get them. */
    json_t *typed = obj;
    if (!json_object_get(obj, "kind")) {
        typed = json_copy(obj);
        TY_AUTOFREE char *gv = m->kind->group[0]
                                   ? ty_asprintf("%s/%s", m->kind->group, m->kind->version)
                                   : ty_strdup(m->kind->version);
        json_object_set_new(typed, "apiVersion", json_string(gv));
        json_object_set_new(typed, "kind", json_string(m->kind->kind));
    }
    ty_error err = TY_ERROR_INIT;
    if (ty_store_mirror_put(m->c->store, m->kind->resource, typed, &err) < 0)
        ty_warn("cluster: %s: %s", m->kind->resource, err.msg);
    ty_error_clear(&err);
    if (typed != obj)
        json_decref(typed);
}

static void on_mirror_synced(void *arg)
{
    mirror_ctx *m = arg;
    if (m->synced)
        return;
    m->synced = true;
    m->c->unsynced--;
    ty_debug("cluster: %s listed (%zu left)", m->kind->resource, m->c->unsynced);
    if (!m->c->unsynced) {
        ty_info("cluster: every resource listed");
        __atomic_store_n(&m->c->ready, true, __ATOMIC_RELAXED);
    }
    ty_cluster_maybe_run(m->c);
}

static void on_mirror_note(const char *what, void *arg)
{
    mirror_ctx *m = arg;
    ty_info("cluster: %s: %s", m->kind->resource, what);
}

/* ---- the writer: each write is one request; its answer is only logged (cluster.h) ---- */

typedef struct pending {
    ty_cluster *c;
    char *what; /* "create pods ns/name", for the log */
    char *inflight; /* a create's key in c->inflight, or NULL */
    json_t *body;
} pending;

static void on_written(const ty_kube_result *r, void *arg)
{
    pending *p = arg;
    if (p->inflight && (r->status < 200 || r->status > 299))
        ty_map_dels(&p->c->inflight, p->inflight); /* not created: a reconcile may try again */
    free(p->inflight);
    if (r->status == 409 || r->status == 404)
        ty_debug("cluster: %s: %d %s", p->what, r->status, r->error ? r->error : "");
    else if (r->error)
        ty_warn("cluster: %s: %d %s", p->what, r->status, r->error);
    json_decref(p->body);
    free(p->what);
    free(p);
}

static ty_kube_resource res_of(const ty_kind_info *k)
{
    return (ty_kube_resource){.group = k->group, .version = k->version, .resource = k->resource,
                              .namespaced = k->namespaced};
}

static int send_write(ty_cluster *c, ty_kube_verb verb, const char *resource, const char *ns,
                const char *name, const char *sub, json_t *body, ty_kube_patch_type patch,
                const char *op, ty_error *err)
{
    const ty_kind_info *k = ty_kind_of_resource(resource);
    if (!k) {
        json_decref(body);
        return ty_fail_code(err, TY_STORE_INVALID, "%s %s: not a kind trainyard knows", op,
                            resource);
    }
    ty_kube_resource res = res_of(k);
    pending *p = TY_NEW(pending);
    p->c = c;
    const char *oname = name ? name : ty_obj_name(body);
    p->what = ty_asprintf("%s %s %s/%s", op, resource, ns ? ns : "", oname ? oname : "");
    p->body = body;
    /* Creates in flight, as client-go controllers' expectations: a reconcile that runs
     * before the watch brings a created object back would create it again (a 409 and a
     * second "Created" Event); until it is seen, or refused, it counts as made. */
    if (verb == TY_KUBE_CREATE && !sub && oname) {
        TY_AUTOFREE char *key = inflight_key(resource, ns, oname);
        if (ty_map_gets(&c->inflight, key)) {
            ty_fail_code(err, TY_STORE_CONFLICT, "%s \"%s\" already exists (created, not yet "
                         "seen through the watch)", resource, oname);
            json_decref(body); /* oname is body's */
            free(p->what);
            free(p);
            return -1;
        }
        ty_map_puts(&c->inflight, key, (void *)1);
        p->inflight = ty_strdup(key);
    }
    ty_kube_request req = {.verb = verb, .res = &res, .ns = ns, .name = name,
                           .subresource = sub, .body = body, .patch = patch};
    ty_kube_do(strcmp(resource, "events") == 0 ? c->events_client : c->client, &req, on_written,
               p);
    c->writes++;
    return 0;
}

static int w_create(void *ctx, const char *resource, const json_t *obj, ty_error *err)
{
    return send_write(ctx, TY_KUBE_CREATE, resource, ty_obj_namespace(obj), NULL, NULL,
                json_deep_copy(obj), 0, "create", err);
}

static int w_update(void *ctx, const char *resource, const json_t *obj, ty_error *err)
{
    return send_write(ctx, TY_KUBE_UPDATE, resource, ty_obj_namespace(obj), ty_obj_name(obj), NULL,
                json_deep_copy(obj), 0, "update", err);
}

/* The status as a JSON patch that replaces it: a controller computes the whole status from
 * what it read, and only the leader writes it. Without a resourceVersion, a status written
 * right after a metadata update (whose new version the mirror has not seen yet) is not
 * refused as stale. */

/* Whether this status was sent already, computed from the same version of the object: a
 * reconcile that runs again before the watch brings its write back computes the same status
 * from the same stale object, and sending it again would cost a request per reconcile (a
 * gang's binder passes and job reconciles made hundreds). Remembers it otherwise. */
static bool status_sent(ty_cluster *c, const char *resource, const json_t *obj,
                        const json_t *status)
{
    const char *rv = json_string_value(
        json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));
    if (!rv || !ty_obj_name(obj))
        return false;
    char *text = json_dumps(status, JSON_COMPACT | JSON_SORT_KEYS);
    uint64_t h = ty_fnv1a_str(TY_FNV1A_BASIS, text);
    free(text);
    TY_AUTOFREE char *key = inflight_key(resource, ty_obj_namespace(obj), ty_obj_name(obj));
    sent_status *old = ty_map_gets(&c->statuses, key);
    if (old && old->hash == h && strcmp(old->base_rv, rv) == 0)
        return true;
    if (old) {
        free(old->base_rv);
    } else {
        old = TY_NEW(sent_status);
        ty_map_puts(&c->statuses, key, old);
    }
    old->base_rv = ty_strdup(rv);
    old->hash = h;
    return false;
}

static int w_update_status(void *ctx, const char *resource, const json_t *obj, ty_error *err)
{
    json_t *status = json_object_get(obj, "status");
    if (status && status_sent(ctx, resource, obj, status))
        return 0;
    json_t *patch = json_pack("[{s:s, s:s, s:O}]", "op", "add", "path", "/status", "value",
                              status ? status : json_object());
    if (!status)
        json_decref(json_object_get(json_array_get(patch, 0), "value"));
    return send_write(ctx, TY_KUBE_PATCH, resource, ty_obj_namespace(obj), ty_obj_name(obj), "status",
                patch, TY_KUBE_PATCH_JSON, "update status", err);
}

static int w_remove(void *ctx, const char *resource, const char *ns, const char *name,
                    int64_t grace_seconds, ty_error *err)
{
    json_t *opts = json_pack("{s:s, s:s, s:s}", "apiVersion", "v1", "kind", "DeleteOptions",
                             "propagationPolicy", "Background");
    if (grace_seconds >= 0)
        json_object_set_new(opts, "gracePeriodSeconds", json_integer(grace_seconds));
    return send_write(ctx, TY_KUBE_DELETE, resource, ns, name, NULL, opts, 0, "delete", err);
}

static int w_bind(void *ctx, const json_t *pod, const char *node, ty_error *err)
{
    json_t *b = json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:s, s:s, s:s}}", "apiVersion", "v1",
                          "kind", "Binding", "metadata", "name", ty_obj_name(pod), "namespace",
                          ty_obj_namespace(pod), "target", "apiVersion", "v1", "kind", "Node",
                          "name", node);
    ty_cluster *c = ctx;
    c->bindings++;
    return send_write(ctx, TY_KUBE_CREATE, "pods", ty_obj_namespace(pod), ty_obj_name(pod), "binding",
                b, 0, "bind", err);
}

static const ty_writer_ops remote_writer = {
    .create = w_create,
    .update = w_update,
    .update_status = w_update_status,
    .remove = w_remove,
    .bind = w_bind,
};

/* ---- the controllers: the leader's, once the mirror is whole ---- */

static uint64_t resync_ms(void)
{
    const char *v = getenv("TRAINYARD_RESYNC_MS");
    long long ms = v ? atoll(v) : 0;
    return ms > 0 ? (uint64_t)ms : 30 * 1000;
}

static void resync(ty_cluster *c, bool start)
{
    ty_binder_resync(c->binder);
    ty_jobctl_resync(c->jobs, start);
    ty_workloadctl_resync(c->workloads);
    ty_admission_resync(c->admission);
}

static void on_resync(uv_timer_t *t) { resync(t->data, false); }

/* Passes over thousands of objects (the admission's snapshot, the binder's) parse and free
 * many trees; glibc keeps the freed pages, so RSS stays at the passes' peak (43 MB watching
 * 5,000 pods, 22 MB of it free). Giving them back every few seconds costs a walk of the heap
 * (well under a millisecond at these sizes). */
#define TRIM_MS 5000

static void on_trim(uv_timer_t *t)
{
    (void)t;
    malloc_trim(0);
}

void ty_cluster_maybe_run(ty_cluster *c)
{
    if (c->running || !c->leading || c->unsynced)
        return;
    ty_info("cluster: leading and synced: the controllers start");
    c->running = true;
    /* Service names in MASTER_ADDR and TF_CONFIG: the cluster's DNS resolves them. */
    c->jobs = ty_jobctl_new(c->loop, c->store, NULL, NULL);
    c->workloads = ty_workloadctl_new(c->loop, c->store);
    ty_admission_config acfg = {.fair_sharing = c->fair_sharing};
    c->admission = ty_admission_new(c->loop, c->store, &acfg);
    c->binder = ty_binder_new(c->loop, c->store, NULL);
    resync(c, true);
    uv_timer_start(&c->resync, on_resync, resync_ms(), resync_ms());
}

/* ---- lifetime ---- */

int ty_cluster_start(const ty_cluster_config *cfg, ty_cluster **out, ty_error *err)
{
    ty_cluster *c = TY_NEW(ty_cluster);
    c->loop = cfg->loop;
    c->fair_sharing = cfg->fair_sharing;
    c->on_lost = cfg->on_lost;
    c->arg = cfg->arg;
    c->identity = ty_strdup(cfg->identity);
    c->lease_ns = ty_strdup(cfg->lease_ns);
    ty_kube_client_opts copts = {.qps = cfg->qps ? cfg->qps : TY_CLUSTER_DEFAULT_QPS,
                                 .burst = cfg->burst ? cfg->burst : TY_CLUSTER_DEFAULT_BURST};
    /* The Lease has a client of its own, as controller managers give leader election: renewals
     * must not queue behind the controllers' writes in one rate limit (a gang's hundreds of
     * requests at 5 QPS would outlast the renew deadline). */
    /* Events likewise (as client-go's event broadcaster has its own limits): an Event per pod
     * made must not delay the next pod's creation or binding. */
    if (ty_kube_client_new(cfg->loop, cfg->kube, &copts, &c->client, err) < 0 ||
        ty_kube_client_new(cfg->loop, cfg->kube, NULL, &c->lease_client, err) < 0 ||
        ty_kube_client_new(cfg->loop, cfg->kube, NULL, &c->events_client, err) < 0) {
        ty_kube_client_close(c->client);
        ty_kube_client_close(c->lease_client);
        free(c->identity);
        free(c->lease_ns);
        free(c);
        return ty_error_wrap(err, "cluster %s", cfg->kube->server);
    }
    c->store = ty_store_new();
    ty_store_set_history(c->store, 0); /* nothing watches the mirror from a resourceVersion */
    ty_store_set_writer(c->store, &remote_writer, c);
    uv_timer_init(cfg->loop, &c->resync);
    c->resync.data = c;
    uv_timer_init(cfg->loop, &c->trim);
    uv_timer_start(&c->trim, on_trim, TRIM_MS, TRIM_MS);
    for (const ty_kind_info *const *k = ty_kinds(); *k; k++) {
        if (!mirrored(*k))
            continue;
        mirror_ctx *m = TY_NEW(mirror_ctx);
        *m = (mirror_ctx){.c = c, .kind = *k};
        c->mirrors = ty_realloc(c->mirrors, (c->nmirrors + 1) * sizeof *c->mirrors);
        c->mirrors[c->nmirrors] = (cluster_mirror){.ctx = m};
        c->nmirrors++;
        c->unsynced++;
    }
    for (size_t i = 0; i < c->nmirrors; i++) {
        mirror_ctx *m = c->mirrors[i].ctx;
        ty_reflector_opts ro = {.res = res_of(m->kind), .on_event = on_mirror_event,
                                .on_synced = on_mirror_synced, .on_note = on_mirror_note,
                                .arg = m};
        if (ty_reflector_start(c->client, cfg->loop, &ro, &c->mirrors[i].r, err) < 0) {
            ty_cluster_stop(c);
            return ty_error_wrap(err, "watch %s", m->kind->resource);
        }
    }
    ty_lease_start(c);
    ty_info("cluster: %s, %zu resources mirrored, lease %s/%s as %s", cfg->kube->server,
            c->nmirrors, c->lease_ns, TY_CLUSTER_LEASE_NAME, c->identity);
    *out = c;
    return 0;
}

static void resync_closed(uv_handle_t *h)
{
    ty_cluster *c = h->data;
    ty_store_free(c->store);
    free(c);
}

void ty_cluster_stop(ty_cluster *c)
{
    if (!c)
        return;
    ty_lease_stop(c);
    ty_admission_free(c->admission);
    ty_workloadctl_free(c->workloads);
    ty_jobctl_free(c->jobs);
    ty_binder_free(c->binder);
    for (size_t i = 0; i < c->nmirrors; i++) {
        ty_reflector_stop(c->mirrors[i].r);
        free(c->mirrors[i].ctx);
    }
    free(c->mirrors);
    ty_kube_client_close(c->client);
    ty_kube_client_close(c->lease_client);
    ty_kube_client_close(c->events_client);
    ty_map_free(&c->inflight);
    size_t it = 0;
    const ty_map_slot *slot;
    while (ty_map_next(&c->statuses, &it, &slot)) {
        sent_status *st = slot->value;
        free(st->base_rv);
        free(st);
    }
    ty_map_free(&c->statuses);
    free(c->identity);
    free(c->lease_ns);
    uv_timer_stop(&c->trim);
    uv_close((uv_handle_t *)&c->trim, NULL);
    uv_timer_stop(&c->resync);
    uv_close((uv_handle_t *)&c->resync, resync_closed);
}

bool ty_cluster_leading(const ty_cluster *c) { return c->leading; }
bool ty_cluster_synced(const ty_cluster *c) { return c->unsynced == 0; }
const bool *ty_cluster_ready_flag(const ty_cluster *c) { return &c->ready; }
ty_store *ty_cluster_store(ty_cluster *c) { return c->store; }
