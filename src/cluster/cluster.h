/* Cluster mode (issue 13; docs/cluster.md): trainyard's job controllers, Kueue admission and
 * gang binder run against a Kubernetes cluster's API instead of a store of their own.
 *
 * The seam (store/writer.h): the controllers are the same code as locally. They read an
 * in-memory ty_store that mirrors the cluster, filled by one reflector (kube/reflector.h: list
 * then watch, bookmarks, relist on 410) per resource they read, each object stored as the
 * cluster has it (its uid, resourceVersion and metadata); and they write through a writer that
 * sends each write to the cluster (POST, PUT, the status subresource as a JSON patch, DELETE,
 * pods/binding) and leaves the mirror alone: the change comes back through the watch.
 *
 * Leader election: a coordination.k8s.io/v1 Lease (`trainyard-controller` in `lease_ns`) with
 * client-go's defaults (15 s lease duration, 10 s renew deadline, 2 s retry period). Every
 * replica mirrors the cluster; only the leader runs the controllers, once every reflector has
 * listed. A leader that cannot renew within the deadline stops leading and calls `on_lost`
 * (the server exits, as client-go's callers do, and its restart comes back as a candidate).
 *
 * No node agent runs: the cluster's kubelets run the pods. Ownership: borrows the loop and the
 * kube config (both must outlive it). */
#ifndef TY_CLUSTER_CLUSTER_H
#define TY_CLUSTER_CLUSTER_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "base/error.h"
#include "kube/kubeconfig.h"
#include "store/store.h"

#define TY_CLUSTER_LEASE_NAME "trainyard-controller"
#define TY_CLUSTER_LEASE_DURATION_S 15
#define TY_CLUSTER_RENEW_DEADLINE_MS 10000
#define TY_CLUSTER_RETRY_PERIOD_MS 2000
/* The controllers' client's rate limit unless told: Kueue's defaults (client-go's 5 QPS and
 * burst 10 take a minute to create and bind a 64-pod gang: bench/cluster.sh). The Lease and
 * the Events each have a client of their own with client-go's defaults. */
#define TY_CLUSTER_DEFAULT_QPS 50
#define TY_CLUSTER_DEFAULT_BURST 100

typedef struct ty_cluster ty_cluster;

typedef struct ty_cluster_config {
    uv_loop_t *loop;
    ty_kube_config *kube;  /* borrowed */
    const char *lease_ns;  /* the Lease's namespace: the server's own (kubeconfig's, or the
                            * service account's in cluster) */
    const char *identity;  /* holderIdentity: unique per replica (hostname_pid) */
    double qps;            /* the controllers' client's rate limit (kube/client.h): 0
                            * TY_CLUSTER_DEFAULT_QPS, < 0 none */
    int burst;
    bool fair_sharing;     /* Kueue's fair sharing */
    void (*on_lost)(void *arg); /* leadership lost (not renewed in time) */
    void *arg;
} ty_cluster_config;

int ty_cluster_start(const ty_cluster_config *cfg, ty_cluster **out, ty_error *err);
/* Stops the controllers, the reflectors and the client (the loop must run for their handles
 * to close). NULL is fine. */
void ty_cluster_stop(ty_cluster *c);
bool ty_cluster_leading(const ty_cluster *c);
/* Whether every reflector has listed once. */
bool ty_cluster_synced(const ty_cluster *c);
/* The mirror (for reading only; tests, metrics). */
ty_store *ty_cluster_store(ty_cluster *c);
/* Set to true once every reflector has listed (what /readyz answers by). */
const bool *ty_cluster_ready_flag(const ty_cluster *c);

/* The probes (health.c): GET /livez and /healthz 200; /readyz 200 once *ready, else 503.
 * Plain HTTP on `listen` ("IPV4:PORT"; port 0 picks one), on a thread of libmicrohttpd's. */
typedef struct ty_health ty_health;
int ty_health_start(const char *listen, const bool *ready, ty_health **out, ty_error *err);
int ty_health_port(const ty_health *h);
void ty_health_stop(ty_health *h); /* NULL is fine */

#endif
