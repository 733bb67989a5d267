#include "cli/node.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/fs.h"
#include "base/log.h"
#include "base/mem.h"
#include "controllers/admission.h"
#include "controllers/binder.h"
#include "controllers/jobs.h"
#include "controllers/batchjobs.h"
#include "controllers/serving.h"
#include "controllers/experiment.h"
#include "controllers/nodeagent.h"
#include "controllers/podmetrics.h"
#include "controllers/podutil.h"
#include "controllers/resources.h"
#include "controllers/svcproxy.h"
#include "controllers/volumes.h"
#include "controllers/workloads.h"
#include "base/quantity.h"
#include "net/dns.h"
#include "runtime/ipam.h"

struct ty_node {
    ty_store *store;
    json_t *names; /* the nodes served, in order */
    bool declared; /* names come from cfg->nodes (virtual nodes) */
    ty_runtime *rt;
    ty_ipam *ipam;
    ty_podnet *net; /* NULL: loopback addresses */
    bool dns_on_gateway; /* the cluster DNS listens where the pods' resolv.conf points */
    ty_nodeagent *agent;
    ty_binder *binder;
    ty_volctl *volumes;
    ty_jobctl *jobs;
    ty_batchctl *batch; /* batch/v1 Jobs */
    ty_gateway *gateway;      /* serving: the HTTP gateway, or NULL */
    ty_servingctl *serving;   /* InferenceServices */
    ty_experimentctl *experiments; /* Katib */
    ty_workloadctl *workloads;
    ty_admission *admission;
    ty_dns *dns;
    ty_svcproxy *proxy; /* with a pod network: the Service rules in the pods' namespaces */
    ty_podmetrics *usage; /* metrics.k8s.io's samples (cfg->resource_metrics), or NULL */
    uv_timer_t *resync; /* the periodic work */
    void (*done)(void *);
    void *done_arg;
};

/* How often every controller looks at every object again, as informers resync: what a lost
 * event, a failed write or a crash left unconverged converges within this. A pass over
 * converged objects writes nothing. TRAINYARD_RESYNC_MS sets it (for tests). */
#define RESYNC_MS (30 * 1000)

static uint64_t resync_ms(void)
{
    const char *v = getenv("TRAINYARD_RESYNC_MS");
    long long ms = v ? atoll(v) : 0;
    return ms > 0 ? (uint64_t)ms : RESYNC_MS;
}

static void on_pod_status(void *ctx, const char *ns, const char *name, const char *uid,
                          json_t *status, bool gone)
{
    ty_node *n = ctx;
    if (n->agent)
        ty_nodeagent_on_status(n->agent, ns, name, uid, status, gone);
    else
        json_decref(status);
}

static void on_pod_event(void *ctx, const char *ns, const char *name, const char *uid,
                         const char *type, const char *reason, const char *message)
{
    ty_node *n = ctx;
    if (n->agent)
        ty_nodeagent_on_event(n->agent, ns, name, uid, type, reason, message);
}

static bool serves(const ty_node *n, const char *name)
{
    size_t i;
    json_t *v;
    json_array_foreach(n->names, i, v) if (strcmp(json_string_value(v), name) == 0)
        return true;
    return false;
}

static char *pod_address(void *ctx, const char *ns, const char *pod_name)
{
    ty_node *n = ctx;
    TY_AUTOFREE char *key = ty_asprintf("%s/%s", ns, pod_name);
    char ip[TY_IPAM_ADDR_MAX];
    if (ty_ipam_acquire(n->ipam, key, ip, NULL) < 0)
        return NULL;
    return ty_strdup(ip);
}

/* A Node object: created, or refreshed when it exists (the GPUs, memory, labels or taints
 * may differ from the last start). Takes `fresh`. */
static int register_node(ty_node *n, json_t *fresh, ty_error *err)
{
    json_t *cur = ty_store_get(n->store, "nodes", NULL, ty_obj_name(fresh));
    int rc;
    if (!cur) {
        rc = ty_store_create(n->store, "nodes", fresh, NULL, err);
    } else {
        json_t *next = json_deep_copy(cur);
        json_t *meta = json_object_get(next, "metadata");
        json_object_set(meta, "labels", json_object_get(json_object_get(fresh, "metadata"),
                                                        "labels"));
        json_t *spec = json_object_get(fresh, "spec");
        if (spec)
            json_object_set(next, "spec", spec);
        else
            json_object_del(next, "spec");
        rc = ty_store_update(n->store, "nodes", next, NULL, err);
        json_decref(next);
        json_decref(cur);
        cur = rc == 0 ? ty_store_get(n->store, "nodes", NULL, ty_obj_name(fresh)) : NULL;
        if (cur) {
            next = json_deep_copy(cur);
            json_object_set(next, "status", json_object_get(fresh, "status"));
            rc = ty_store_update_status(n->store, "nodes", next, NULL, err);
            json_decref(next);
            json_decref(cur);
        }
    }
    if (rc < 0)
        ty_error_wrap(err, "register node %s", ty_obj_name(fresh));
    json_decref(fresh);
    return rc;
}

static int node_gpus(const json_t *node)
{
    json_t *st = json_object_get(node, "status");
    json_t *list = json_object_get(st, "allocatable");
    ty_quantity q = {0};
    if (ty_quantity_from_json(json_object_get(list ? list : json_object_get(st, "capacity"),
                                              "nvidia.com/gpu"),
                              &q, NULL) < 0)
        return 0;
    return (int)(q.milli / 1000);
}

/* With a pod network a node's podCIDR is the instance's block (all its nodes share it: one
 * bridge) and its InternalIP the gateway, the address its pods see as hostIP. */
static void node_network(ty_node *n, json_t *node)
{
    uint32_t network;
    int prefix;
    ty_podnet_block(n->net, &network, &prefix);
    char a[TY_IPAM_ADDR_MAX];
    ty_ipam_format(network, a);
    TY_AUTOFREE char *cidr = ty_asprintf("%s/%d", a, prefix);
    json_t *spec = json_object_get(node, "spec");
    if (!json_is_object(spec)) {
        spec = json_object();
        json_object_set_new(node, "spec", spec);
    }
    json_object_set_new(spec, "podCIDR", json_string(cidr));
    json_object_set_new(spec, "podCIDRs", json_pack("[s]", cidr));
    size_t i;
    json_t *addr;
    json_array_foreach(json_object_get(json_object_get(node, "status"), "addresses"), i, addr)
    {
        const char *type = json_string_value(json_object_get(addr, "type"));
        if (type && strcmp(type, "InternalIP") == 0)
            json_object_set_new(addr, "address", json_string(ty_podnet_gateway(n->net)));
    }
}

/* The nodes this trainyard runs (declared, or this machine), registered in the store; every
 * other Node goes. */
static int register_nodes(ty_node *n, const ty_node_config *cfg, const char *host,
                          ty_error *err)
{
    for (size_t i = 0; i < json_array_size(n->names); i++) {
        const char *name = json_string_value(json_array_get(n->names, i));
        json_t *fresh = n->declared ? json_deep_copy(json_array_get(cfg->nodes, i))
                                    : ty_node_local(host, ty_runtime_gpu_count(n->rt));
        if (n->declared)
            ty_runtime_set_node_gpus(n->rt, name, node_gpus(fresh));
        if (n->net)
            node_network(n, fresh);
        if (register_node(n, fresh, err) < 0)
            return -1;
    }
    json_t *all = ty_store_list(n->store, "nodes", NULL);
    size_t i;
    json_t *node;
    json_array_foreach(all, i, node) if (!serves(n, ty_obj_name(node)))
        ty_store_delete(n->store, "nodes", NULL, ty_obj_name(node), 0, NULL);
    json_decref(all);
    return 0;
}

/* Pods bound to a node that is no longer declared: their processes stop and they fail, as
 * the pods of a lost node do. */
static void fail_lost_pods(ty_node *n)
{
    json_t *pods = ty_store_list(n->store, "pods", NULL);
    size_t i;
    json_t *pod;
    json_array_foreach(pods, i, pod)
    {
        const char *node =
            json_string_value(json_object_get(json_object_get(pod, "spec"), "nodeName"));
        if (!node || serves(n, node) || ty_pod_terminated(pod))
            continue;
        if (ty_runtime_has_pod(n->rt, ty_obj_uid(pod)))
            ty_runtime_stop_pod(n->rt, ty_obj_uid(pod), 0);
        json_t *next = json_deep_copy(pod);
        json_t *st = json_object_get(next, "status");
        if (!json_is_object(st)) {
            st = json_object();
            json_object_set_new(next, "status", st);
        }
        TY_AUTOFREE char *msg = ty_asprintf("node %s is no longer declared", node);
        json_object_set_new(st, "phase", json_string("Failed"));
        json_object_set_new(st, "reason", json_string("NodeLost"));
        json_object_set_new(st, "message", json_string(msg));
        ty_store_update_status(n->store, "pods", next, NULL, NULL);
        json_decref(next);
    }
    json_decref(pods);
}

/* Pods that exist keep their addresses: workers were told the master's. */
static void reserve_addresses(ty_node *n)
{
    json_t *pods = ty_store_list(n->store, "pods", NULL);
    size_t i;
    json_t *pod;
    json_array_foreach(pods, i, pod)
    {
        const char *ip =
            json_string_value(json_object_get(json_object_get(pod, "status"), "podIP"));
        if (!ip)
            continue;
        TY_AUTOFREE char *key = ty_asprintf("%s/%s", ty_obj_namespace(pod), ty_obj_name(pod));
        ty_ipam_reserve(n->ipam, key, ip, NULL);
    }
    json_decref(pods);
}

static bool runtime_has_pod(void *ctx, const char *uid) { return ty_runtime_has_pod(ctx, uid); }

/* The pod network when this process may make one, else loopback addresses; says which once.
 * Fails only on a bad --pod-cidr. */
static int open_network(ty_node *n, const ty_node_config *cfg, ty_error *err)
{
    const char *cidr = cfg->pod_cidr ? cfg->pod_cidr : TY_PODNET_DEFAULT_CIDR;
    char *why = NULL;
    if (ty_mkdir_p(cfg->state_dir, 0700) < 0)
        return ty_fail_errno(err, errno, "create %s", cfg->state_dir);
    if (cfg->no_pod_network)
        why = ty_strdup("--no-pod-network");
    else if (ty_podnet_open(cidr, cfg->state_dir, &n->net, &why, err) < 0)
        return -1;
    if (n->net) {
        uint32_t network;
        int prefix;
        ty_podnet_block(n->net, &network, &prefix);
        n->ipam = ty_ipam_new_block(network, prefix);
        char block[TY_IPAM_ADDR_MAX];
        ty_ipam_format(network, block);
        ty_info("pod network: %s/%d of %s on bridge %s, gateway %s", block, prefix, cidr,
                ty_podnet_bridge(n->net), ty_podnet_gateway(n->net));
    } else {
        n->ipam = ty_ipam_new();
        if (cfg->scatter_addresses)
            ty_ipam_scatter(n->ipam);
        ty_log(cfg->no_pod_network ? TY_LOG_INFO : TY_LOG_WARN,
               "pod network: unavailable (%s): pods share this machine's network namespace, "
               "each with a loopback address of 127.16.0.0/12", why);
    }
    free(why);
    return 0;
}

/* Every controller queues everything it reconciles: at start and every RESYNC_MS. The
 * server's other periodic work (event expiry, group commits, watch ticks...) is listed in
 * docs/architecture.md, "Periodic work". */
static void resync_all(ty_node *n, bool start)
{
    ty_nodeagent_resync(n->agent);
    if (n->binder) { /* the controllers run unless cfg.no_controllers */
        ty_binder_resync(n->binder);
        ty_jobctl_resync(n->jobs, start);
        ty_batchctl_resync(n->batch, start);
        ty_servingctl_resync(n->serving);
        ty_experimentctl_resync(n->experiments);
        ty_workloadctl_resync(n->workloads);
        ty_admission_resync(n->admission);
        ty_volctl_resync(n->volumes);
    }
    ty_svcproxy_resync(n->proxy);
}

static void on_resync(uv_timer_t *t)
{
    ty_debug("node: resync");
    resync_all(t->data, false);
}

static void timer_closed(uv_handle_t *h) { free(h); }

static void stop_resync(ty_node *n)
{
    if (n->resync)
        uv_close((uv_handle_t *)n->resync, timer_closed);
    n->resync = NULL;
}

int ty_node_start(const ty_node_config *cfg, ty_node **out, ty_error *err)
{
    char cwd[PATH_MAX], self[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len < 0 || !getcwd(cwd, sizeof cwd))
        return ty_fail_errno(err, errno, "find the trainyard binary or the working directory");
    self[len] = '\0';
    char host[256] = "localhost";
    gethostname(host, sizeof host - 1);

    ty_node *n = TY_NEW(ty_node);
    /* First: a bad address or a port in use fails the start before any pod is touched. */
    if (cfg->cluster_dns) {
        ty_dns_config dcfg = {.loop = cfg->loop,
                              .store = cfg->store,
                              .listen = cfg->cluster_dns,
                              .domain = cfg->cluster_domain};
        if (ty_dns_start(&dcfg, &n->dns, err) < 0) {
            free(n);
            return -1;
        }
    }
    if (cfg->serving_listen) {
        ty_gateway_config gcfg = {.domain = cfg->serving_domain};
        n->gateway = ty_gateway_new(cfg->loop, &gcfg, NULL, NULL);
        if (ty_gateway_listen(n->gateway, cfg->serving_listen, err) < 0 &&
            cfg->serving_optional) {
            fprintf(stderr, "trainyard: warning: %s; no serving gateway (--serving-listen)\n",
                    err->msg);
            ty_error_clear(err);
            ty_gateway_free(n->gateway);
            n->gateway = NULL;
        } else if (err->msg) {
            ty_gateway_free(n->gateway);
            ty_dns_free(n->dns);
            free(n);
            return -1;
        }
    }
    n->store = cfg->store;
    n->names = json_array();
    n->declared = json_array_size(cfg->nodes) > 0;
    size_t i;
    json_t *decl;
    if (n->declared)
        json_array_foreach(cfg->nodes, i, decl)
            json_array_append_new(n->names, json_string(ty_obj_name(decl)));
    else
        json_array_append_new(n->names, json_string(host));
    if (open_network(n, cfg, err) < 0) {
        json_decref(n->names);
        free(n);
        return -1;
    }
    /* With a pod network and no --cluster-dns, the cluster DNS listens where the pods'
     * resolv.conf points: the gateway's port 53 (the address is only on our bridge). */
    if (n->net && !n->dns) {
        TY_AUTOFREE char *listen = ty_asprintf("%s:53", ty_podnet_gateway(n->net));
        ty_dns_config dcfg = {.loop = cfg->loop,
                              .store = cfg->store,
                              .listen = listen,
                              .domain = cfg->cluster_domain};
        ty_error derr = TY_ERROR_INIT;
        if (ty_dns_start(&dcfg, &n->dns, &derr) < 0)
            ty_warn("cluster DNS: %s: pods resolve no Service names", derr.msg);
        else
            n->dns_on_gateway = true;
        ty_error_clear(&derr);
    }
    reserve_addresses(n);
    ty_runtime_config rc = {
        .state_dir = cfg->state_dir,
        .self_exe = self,
        .gpus = cfg->gpus,
        .pods_die_with_parent = cfg->pods_die_with_parent,
        .default_workdir = cwd,
        .node_name = host,
        .job_dirs = cfg->job_dirs,
        .net = n->net,
        .images_dir = cfg->images_dir,
        .require_images = cfg->require_images,
    };
    if (ty_runtime_new(cfg->loop, &rc, on_pod_status, n, &n->rt, err) < 0 ||
        register_nodes(n, cfg, host, err) < 0) {
        ty_runtime_free(n->rt);
        ty_ipam_free(n->ipam);
        ty_podnet_close(n->net);
        ty_dns_free(n->dns);
        json_decref(n->names);
        free(n);
        return -1;
    }
    ty_runtime_set_event_fn(n->rt, on_pod_event, n);
    /* Adopted pods report on the loop; the agent, made next, takes them over instead of
     * starting them again (ty_runtime_has_pod). */
    if (cfg->adopt && ty_runtime_adopt_all(n->rt, err) < 0) {
        ty_runtime_free(n->rt);
        ty_ipam_free(n->ipam);
        ty_podnet_close(n->net);
        ty_dns_free(n->dns);
        json_decref(n->names);
        free(n);
        return ty_error_wrap(err, "adopt the pods of an earlier run");
    }
    /* The network of pods that no longer run (an earlier trainyard's on this state dir, gone
     * with it or while it was down): after adoption, which says which still run. */
    if (n->net)
        ty_podnet_sweep(n->net, runtime_has_pod, n->rt);
    /* Before the agent starts any pod: a pod starts with the rules already in place. */
    if (n->net)
        n->proxy = ty_svcproxy_new(cfg->loop, cfg->store, n->rt);
    const char *first = json_string_value(json_array_get(n->names, 0));
    n->agent = ty_nodeagent_new(cfg->loop, cfg->store, first, n->rt, n->ipam);
    if (cfg->prepare_pod)
        ty_nodeagent_set_prepare(n->agent, cfg->prepare_pod, cfg->prepare_ctx);
    if (!cfg->no_controllers)
        n->binder = ty_binder_new(cfg->loop, cfg->store, first);
    /* Declared nodes: the agent also looks at the pods already bound to them (a restarted
     * server's), as it does for this machine's through their status reports. */
    if (n->declared)
        json_array_foreach(n->names, i, decl)
        {
            ty_nodeagent_add_node(n->agent, json_string_value(decl));
            if (n->binder)
                ty_binder_add_node(n->binder, json_string_value(decl));
        }
    fail_lost_pods(n);
    if (cfg->resource_metrics)
        n->usage = ty_podmetrics_new(cfg->loop, cfg->store, n->rt, n->declared ? NULL : first);
    if (!cfg->no_controllers) {
        /* With names that resolve in the pods, the operator's own forms (Service names);
         * without, the replicas' addresses (docs/architecture.md). */
        bool names = n->dns && (n->dns_on_gateway || cfg->pods_use_cluster_dns);
        n->jobs = ty_jobctl_new(cfg->loop, cfg->store, names ? NULL : pod_address, n);
        n->batch = ty_batchctl_new(cfg->loop, cfg->store);
        n->serving = ty_servingctl_new(cfg->loop, cfg->store, n->gateway, cfg->serving_domain);
        if (n->gateway)
            ty_gateway_set_wake(n->gateway, ty_servingctl_wake, n->serving);
        n->experiments = ty_experimentctl_new(cfg->loop, cfg->store, ty_node_log_path, n);
        TY_AUTOFREE char *vdir = cfg->volumes_dir ? ty_strdup(cfg->volumes_dir)
                                                  : ty_asprintf("%s/volumes", cfg->state_dir);
        n->volumes = ty_volctl_new(cfg->loop, cfg->store, vdir);
        n->workloads = ty_workloadctl_new(cfg->loop, cfg->store);
        ty_admission_config acfg = {.fair_sharing = cfg->fair_sharing};
        n->admission = ty_admission_new(cfg->loop, cfg->store, &acfg);
    }
    /* The server's pod dirs are its pods' (their objects are durable): those of deleted
     * pods go, also of pods deleted while it was down. After adoption, before the agent
     * looks at any pod. */
    if (cfg->adopt)
        ty_nodeagent_remove_dirs(n->agent);
    /* What is stored already gets a reconcile of every controller, as new objects do. */
    resync_all(n, true);
    n->resync = TY_NEW(uv_timer_t);
    uv_timer_init(cfg->loop, n->resync);
    n->resync->data = n;
    uv_timer_start(n->resync, on_resync, resync_ms(), resync_ms());
    uv_unref((uv_handle_t *)n->resync); /* it must not keep the loop alive by itself */
    *out = n;
    return 0;
}

ty_runtime *ty_node_runtime(ty_node *n) { return n->rt; }

int ty_node_serving_port(const ty_node *n) { return n->gateway ? ty_gateway_port(n->gateway) : 0; }

const char *ty_node_cluster_dns(const ty_node *n) { return n->dns ? ty_dns_address(n->dns) : NULL; }

const char *ty_node_host_ip(const ty_node *n)
{
    return ty_ipam_is_block(n->ipam) ? ty_ipam_host(n->ipam) : NULL;
}

static void on_runtime_done(void *arg)
{
    ty_node *n = arg;
    ty_nodeagent_free(n->agent);
    n->agent = NULL;
    if (n->done)
        n->done(n->done_arg);
}

void ty_node_stop(ty_node *n, bool stop_pods, void (*done)(void *), void *arg)
{
    n->done = done;
    n->done_arg = arg;
    /* No new pods from here on; the agent stays to record how the running ones end. */
    stop_resync(n);
    ty_admission_free(n->admission);
    n->admission = NULL;
    ty_workloadctl_free(n->workloads);
    n->workloads = NULL;
    ty_jobctl_free(n->jobs);
    n->jobs = NULL;
    ty_batchctl_free(n->batch);
    n->batch = NULL;
    ty_servingctl_free(n->serving);
    n->serving = NULL;
    ty_gateway_free(n->gateway);
    n->gateway = NULL;
    ty_experimentctl_free(n->experiments);
    n->experiments = NULL;
    ty_binder_free(n->binder);
    n->binder = NULL;
    ty_volctl_free(n->volumes);
    n->volumes = NULL;
    ty_dns_free(n->dns);
    n->dns = NULL;
    ty_svcproxy_free(n->proxy);
    n->proxy = NULL;
    ty_podmetrics_free(n->usage);
    n->usage = NULL;
    if (stop_pods)
        ty_runtime_shutdown(n->rt, on_runtime_done, n);
    else
        ty_runtime_detach(n->rt, on_runtime_done, n);
}

void ty_node_kill_pods(ty_node *n)
{
    json_t *pods = ty_store_list(n->store, "pods", NULL);
    size_t i;
    json_t *pod;
    json_array_foreach(pods, i, pod) ty_runtime_stop_pod(n->rt, ty_obj_uid(pod), 0);
    json_decref(pods);
}

void ty_node_free(ty_node *n)
{
    if (!n)
        return;
    stop_resync(n);
    ty_admission_free(n->admission);
    ty_workloadctl_free(n->workloads);
    ty_jobctl_free(n->jobs);
    ty_experimentctl_free(n->experiments);
    ty_batchctl_free(n->batch);
    ty_servingctl_free(n->serving);
    ty_gateway_free(n->gateway);
    ty_binder_free(n->binder);
    ty_volctl_free(n->volumes);
    ty_dns_free(n->dns);
    ty_svcproxy_free(n->proxy);
    ty_podmetrics_free(n->usage);
    ty_nodeagent_free(n->agent);
    ty_runtime_free(n->rt);
    ty_ipam_free(n->ipam);
    ty_podnet_close(n->net);
    json_decref(n->names);
    free(n);
}

json_t *ty_node_resource_metrics(void *node, const char *resource, const char *ns,
                                 const char *name)
{
    ty_node *n = node;
    if (!n->usage)
        return NULL;
    return ty_podmetrics_get(n->usage, resource, ns, name);
}

char *ty_node_metrics(void *node)
{
    ty_node *n = node;
    char *kueue = ty_admission_metrics(n->admission);
    if (!n->serving)
        return kueue;
    /* Serving's per-revision series after Kueue's. */
    ty_buf b = TY_BUF_INIT;
    if (kueue)
        ty_buf_adds(&b, kueue);
    free(kueue);
    if (n->gateway)
        ty_gateway_metrics(n->gateway, &b);
    if (n->serving) /* none with --no-controllers */
        ty_servingctl_metrics(n->serving, &b);
    return ty_buf_steal(&b);
}

char *ty_node_log_path(void *node, const json_t *pod, const char *container, bool previous)
{
    ty_node *n = node;
    int restarts = 0;
    size_t i;
    json_t *cs;
    const char *lists[] = {"containerStatuses", "initContainerStatuses"};
    for (int l = 0; l < 2; l++)
        json_array_foreach(json_object_get(json_object_get(pod, "status"), lists[l]), i, cs)
        {
            const char *name = json_string_value(json_object_get(cs, "name"));
            if (name && strcmp(name, container) == 0)
                restarts = (int)json_integer_value(json_object_get(cs, "restartCount"));
        }
    if (previous && restarts == 0)
        return NULL;
    return ty_runtime_log_path(n->rt, ty_obj_uid(pod), container,
                               previous ? restarts - 1 : restarts);
}

void ty_node_set_api_url(ty_node *n, const char *url)
{
    if (n->experiments) /* none with --no-controllers */
        ty_experimentctl_set_api_url(n->experiments, url);
}
