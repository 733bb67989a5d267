/* Cluster mode's insides, shared by cluster.c and lease.c. */
#ifndef TY_CLUSTER_CLUSTER_INT_H
#define TY_CLUSTER_CLUSTER_INT_H

#include "base/map.h"
#include "cluster/cluster.h"
#include "kube/client.h"
#include "kube/reflector.h"

typedef struct cluster_mirror {
    ty_reflector *r;
    void *ctx; /* mirror_ctx (cluster.c) */
} cluster_mirror;

struct ty_cluster {
    uv_loop_t *loop;
    ty_kube_client *client;
    ty_kube_client *lease_client; /* leader election's own rate limit */
    ty_kube_client *events_client; /* and the Events' */
    ty_store *store; /* the mirror */
    cluster_mirror *mirrors;
    size_t nmirrors, unsynced;
    bool ready; /* every reflector listed once; read by the probes' thread (health.c) */
    bool fair_sharing;
    /* the controllers, while leading */
    bool running;
    struct ty_jobctl *jobs;
    struct ty_workloadctl *workloads;
    struct ty_admission *admission;
    struct ty_binder *binder;
    uv_timer_t resync;
    uv_timer_t trim; /* gives freed heap back (cluster.c) */
    uint64_t writes, bindings;
    ty_map inflight; /* "resource/ns/name" of creates sent and not yet seen in the mirror */
    ty_map statuses; /* "resource/ns/name" -> sent_status: the last status sent (cluster.c) */
    /* leader election (lease.c) */
    char *identity, *lease_ns;
    bool leading;
    struct ty_lease *lease;
    void (*on_lost)(void *arg);
    void *arg;
};

/* Starts the controllers once leading and synced (cluster.c). */
void ty_cluster_maybe_run(ty_cluster *c);
/* Leader election on the Lease (lease.c): sets c->leading, calls ty_cluster_maybe_run when it
 * starts leading and c->on_lost when it stops. */
void ty_lease_start(ty_cluster *c);
void ty_lease_stop(ty_cluster *c);

#endif
