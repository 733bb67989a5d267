/* The local node: everything that runs pods on this machine, on one loop and one store.
 *
 * It is the composition both `trainyard run` and `trainyard server` use, so no logic exists
 * twice: the Node object for this machine, the runtime (pods as supervised process groups),
 * the pod network (net/podnet.h: as root, each pod in its own network namespace on this
 * instance's block of the pod CIDR; otherwise the loopback addresses of runtime/ipam.h, said
 * once at start), the address allocator over either, the node agent, the gang binder, the
 * job controller and Kueue's controllers (workloads and admission).
 *
 * Virtual nodes: with cfg.nodes, the node is a set of declared nodes instead of this machine.
 * Their pods still run here as processes (one runtime, one address pool, one node agent for
 * all of them); each node has its own GPU indices 0..n-1 (its allocatable nvidia.com/gpu),
 * so a pod sees the devices of its node. The declared nodes replace every other Node in the
 * store (a server restarted with other nodes deletes the old ones): pods bound to a node that
 * is gone are stopped and marked Failed with reason NodeLost, as a lost node's pods end in
 * Kubernetes; their job's restart policy decides what comes next.
 *
 * Ownership: borrows the loop, the store and cfg.nodes; owns everything else. Stop it with
 * ty_node_stop() and free it after `done` ran. */
#ifndef TY_CLI_NODE_H
#define TY_CLI_NODE_H

#include <jansson.h>
#include <stdbool.h>
#include <uv.h>

#include "base/error.h"
#include "runtime/runtime.h"
#include "store/store.h"

typedef struct ty_node ty_node;

typedef struct ty_node_config {
    uv_loop_t *loop;
    ty_store *store;
    const char *state_dir;       /* pod directories go under it */
    const char *volumes_dir;     /* provisioned PersistentVolumes' directories; NULL:
                                  * <state_dir>/volumes */
    int gpus;                    /* -1: NVML; >= 0: declared */
    bool pods_die_with_parent;   /* run: true; server: false (pods outlive a crash) */
    bool adopt;                  /* server: take over the pods a previous trainyard left */
    bool scatter_addresses;      /* start pod addresses at a random place (independent runs) */
    bool fair_sharing;           /* Kueue's fair sharing across a cohort */
    bool job_dirs;               /* run: TRAINYARD_JOB_DIR for pods (runtime/runtime.h) */
    const char *pod_cidr;        /* --pod-cidr; NULL: TY_PODNET_DEFAULT_CIDR (net/podnet.h) */
    bool no_pod_network;         /* --no-pod-network: loopback addresses even as root */
    const char *images_dir;      /* the image store containers run from (runtime.h) */
    bool require_images;         /* an image not in the store fails instead of the host */
    const json_t *nodes;         /* declared Node objects (cli/nodespec.h), or NULL/empty: one
                                  * node, this machine (its hostname, `gpus` GPUs) */
    const char *cluster_dns;     /* ADDR:PORT to serve cluster DNS on (net/dns.h; port 0:
                                  * one is picked), or NULL: none */
    const char *cluster_domain;  /* NULL: cluster.local */
    bool pods_use_cluster_dns;   /* pods resolve through cluster_dns (their resolv.conf names
                                  * it): jobs get the operator's Service names in MASTER_ADDR,
                                  * PET_RDZV_ENDPOINT and TF_CONFIG instead of addresses */
    /* The stand-in cluster (`server --no-controllers`, docs/cluster.md): the node agent runs
     * the pods bound to the nodes, and no job, queue or binding controller runs (a cluster-mode
     * trainyard elsewhere is those, through the API). */
    bool no_controllers;
    /* what a pod gets before it starts (controllers/nodeagent.h); NULL: nothing */
    int (*prepare_pod)(void *ctx, json_t *pod, ty_error *err);
    void *prepare_ctx;
    bool resource_metrics;       /* sample pods' and nodes' usage for metrics.k8s.io (server) */
    /* The serving gateway's host:port (serving/gateway.h), or NULL: InferenceServices get
     * pods and status but no route; serving_domain NULL: example.com */
    const char *serving_listen;
    const char *serving_domain;
    bool serving_optional;       /* the default address: in use, a warning and no gateway */
} ty_node_config;

int ty_node_start(const ty_node_config *cfg, ty_node **out, ty_error *err);
ty_runtime *ty_node_runtime(ty_node *n);
/* The address cluster DNS serves on ("ADDR:PORT"), or NULL without it. */
/* The serving gateway's port, or 0 when none listens. */
int ty_node_serving_port(const ty_node *n);
const char *ty_node_cluster_dns(const ty_node *n);
/* The address pods in their own network namespace reach this machine at (the pod network's
 * gateway, their status.hostIP), or NULL without a pod network (pods share the host's). */
const char *ty_node_host_ip(const ty_node *n);
/* Stops the controllers and then either stops every pod (stop_pods) or leaves them running
 * for the next trainyard to adopt; `done` runs on the loop when that is over. */
void ty_node_stop(ty_node *n, bool stop_pods, void (*done)(void *), void *arg);
/* Kills every pod without waiting for grace periods (a second Ctrl-C). */
void ty_node_kill_pods(ty_node *n);
void ty_node_free(ty_node *n);
/* The API server's URL as the node's pods reach it (Katib trials' Push endpoint). */
void ty_node_set_api_url(ty_node *n, const char *url);
/* metrics.k8s.io's answers (controllers/podmetrics.h: ty_podmetrics_get), NULL when there are
 * none; for ty_apiserver_config.resource_metrics. */
json_t *ty_node_resource_metrics(void *node, const char *resource, const char *ns,
                                 const char *name);
/* The admission controller's metrics (ty_admission_metrics); caller frees; for /metrics. */
char *ty_node_metrics(void *node);
/* The log file of a pod's container (the previous run's with `previous`): for pods/log.
 * Caller frees; NULL when there is none. */
char *ty_node_log_path(void *node, const json_t *pod, const char *container, bool previous);

#endif
