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
    bool fair_sharing_weights; /* some ClusterQueue sets fairSharing.weight */
    /* nodes, in the array's order */
    int32_t n_nodes;
    char **node_names;
    int32_t *node_gpus; /* allocatable nvidia.com/gpu, whole GPUs */
    ty_map node_ix;     /* name -> index + 1 */
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

/* The core's snapshot of the cluster's queues and nodes, nothing running, at now_ms (the
 * server's code: controllers/admission.h). NULL with err when a queue cannot admit. */
ty_sched *ty_sim_kueue_snapshot(const ty_sim_kueue *k, bool fair_sharing, int64_t now_ms,
                                ty_error *err);

/* Whether ClusterQueue cq would admit a job of `gpus` GPUs on the empty cluster (the most it
 * can ever get); when not, *why gets the core's message (static storage, overwritten). */
int ty_sim_kueue_fits_empty(const ty_sim_kueue *k, int32_t cq, int32_t gpus, bool *fits,
                            char *why, size_t why_cap, ty_error *err);

#endif
