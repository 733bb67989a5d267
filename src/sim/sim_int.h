/* The simulator's private parts shared by its files (engine.c, kueue.c). */
#ifndef TY_SIM_SIM_INT_H
#define TY_SIM_SIM_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/map.h"
#include "sched/sched.h"
#include "sim/sim.h"

/* A --kueue cluster (sim.h). */
struct ty_sim_kueue {
    char *path;
    /* admitted (defaulted) objects, as the server stores them */
    json_t *flavors, *cluster_queues, *local_queues, *priority_classes, *nodes;
    /* nodes, in the array's order */
    int32_t n_nodes;
    char **node_names;
    int32_t *node_gpus; /* allocatable nvidia.com/gpu, whole GPUs */
    ty_map node_ix;     /* name -> index + 1 */
    /* each node as the core's input, converted once with the helpers the server's pass uses
     * (controllers/placement.h); strings point into `nodes` and `node_allocs` */
    ty_sched_node *node_in;
    json_t *node_allocs; /* per node: its allocatable, {resource: milli} */
    /* cluster queues, in the array's order */
    int32_t n_cqs;
    const char **cq_names;  /* into cluster_queues */
    bool *cq_strict;        /* queueingStrategy StrictFIFO */
    bool *cq_pods;          /* covers Kueue's "pods" resource: one per pod counts as quota */
    int64_t *cq_gpus;       /* nominal nvidia.com/gpu quota over its flavors, whole GPUs */
    bool preemptive;        /* some queue may preempt */
    /* bound to a trace (ty_sim_kueue_bind) */
    int32_t *vc_cq;         /* per VC of the trace: its ClusterQueue */
    int32_t *pclass_prio;   /* per priority class of the trace: its value */
    int32_t gpus_per_node;  /* pod size of a gang */
};

/* The core's snapshot of the cluster's queues (the server's code: controllers/admission.h)
 * and nodes at now_ms. Running jobs not given as workloads (nothing can preempt them) are
 * given as usage: quota_used (NULL: none; ty_admission_queue_snapshot's), and per node the
 * GPUs and pods they hold (NULL: none). NULL with err when a queue cannot admit. */
ty_sched *ty_sim_kueue_snapshot(const ty_sim_kueue *k, bool fair_sharing, int64_t now_ms,
                                const json_t *quota_used, const int32_t *gpus_used,
                                const int32_t *pods_used, ty_error *err);

/* Whether ClusterQueue cq would admit a job of `gpus` GPUs on the empty cluster (the most it
 * can ever get). */
int ty_sim_kueue_fits_empty(const ty_sim_kueue *k, int32_t cq, int32_t gpus, bool *fits,
                            ty_error *err);

#endif
