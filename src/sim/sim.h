/* The cluster simulator: replays a job trace over the scheduling core (sched/sched.h) in
 * simulated time. It is not a second scheduler: at every instant where something happens (a
 * job arrives, ends, crosses a queue threshold) it builds the core's snapshot of that state and
 * applies what the pass decides (ADMIT: start on the nodes the core chose; PREEMPT: stop the
 * victims, then pass again at the same instant). The policy only chooses each job's priority
 * and the queueing strategy (docs/simulate.md):
 *
 * - fifo: StrictFIFO, every job the same priority: submit order, head of line blocks.
 * - sjf:  priority -duration (oracle), non-preemptive, BestEffortFIFO (helios: StrictFIFO).
 * - srtf: priority -remaining, withinClusterQueue LowerPriority preemption; each preemption
 *         costs the job restart_ms more running time.
 * - las:  Tiresias' discretized 2D-LAS: priority -(queue index of the attained GPU-seconds),
 *         preemptive as srtf, within a queue by submit time.
 *
 * A job of G GPUs on nodes of P GPUs is a gang: one pod of G when G <= P (one node), else
 * G / P pods of P and one pod of G % P, so it takes as few nodes as possible; the core places
 * pods best-fit. With a --kueue cluster (policy kueue) the queues, flavors and nodes are the
 * user's and every VC of the trace is routed to its LocalQueue's ClusterQueue. Time is in
 * milliseconds; all arithmetic is integer, so a run is deterministic. */
#ifndef TY_SIM_SIM_H
#define TY_SIM_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "base/error.h"

/* Limits on what a user's file may ask for. */
#define TY_SIM_MAX_JOBS 10000000
#define TY_SIM_MAX_VCS 1024
#define TY_SIM_MAX_NODES 100000
#define TY_SIM_MAX_THRESHOLDS 16

/* kueue: the ClusterQueues of a --kueue file decide (ty_sim_kueue below): each job's priority
 * is its WorkloadPriorityClass's value (0 without one), each queue's queueingStrategy and
 * preemption are its own. */
typedef enum { TY_SIM_FIFO, TY_SIM_SJF, TY_SIM_SRTF, TY_SIM_LAS, TY_SIM_KUEUE } ty_sim_policy;

typedef struct ty_sim_job {
    int64_t submit_ms;   /* from the trace's first counted job */
    int64_t duration_ms; /* > 0 */
    int32_t gpus;        /* >= 1 */
    int32_t vc;          /* index into the trace's vcs */
    int64_t line;        /* in its file, for messages; ties after submit time */
    int32_t pclass;      /* index into the trace's priority classes, -1: none */
} ty_sim_job;

typedef struct ty_sim_vc {
    char *name;
    int32_t nodes;
} ty_sim_vc;

/* Rows the simulator does not use, by reason; each is counted, never dropped silently. */
typedef struct ty_sim_skipped {
    size_t unknown_vc;    /* its VC is not in the cluster file */
    size_t too_large;     /* more GPUs than its cluster has */
    size_t zero_gpu;      /* asks for no GPU */
    size_t zero_duration; /* runs for no time */
    size_t out_of_window; /* --semantics helios: submitted outside Helios' Philly window */
} ty_sim_skipped;

typedef struct ty_sim_trace {
    char *path;       /* the trace file, for messages */
    ty_sim_job *jobs; /* sorted by (submit_ms, line) */
    size_t n_jobs;
    ty_sim_vc *vcs;
    size_t n_vcs;
    char **pclasses;      /* WorkloadPriorityClass names the generic trace's rows give */
    int64_t *pclass_line; /* where each is first given */
    size_t n_pclasses;
    int32_t gpus_per_node;
    ty_sim_skipped skipped;
} ty_sim_trace;

typedef enum { TY_SIM_FORMAT_AUTO, TY_SIM_FORMAT_PHILLY, TY_SIM_FORMAT_MURI,
               TY_SIM_FORMAT_GENERIC } ty_sim_format;

typedef struct ty_sim_load_opts {
    ty_sim_format format;
    const char *cluster_path; /* vc,nodes CSV (Philly's philly_vc.csv); NULL: nodes below */
    int32_t nodes;            /* one cluster "default" of this many nodes when no cluster file */
    int32_t gpus_per_node;    /* 0: 8 */
    bool helios;              /* Helios' Philly job selection (docs/simulate.md) */
    /* --cohort: a job is too large when it needs more GPUs than all the VCs' nodes together
     * (it may borrow every other VC's quota), not more than its own VC's */
    bool cohort;
    /* --kueue: VCs are the trace's names (LocalQueues, each bound by ty_sim_kueue_bind, which
     * also counts the jobs too large for their queue); the generic format's priority_class
     * column is allowed */
    bool kueue;
} ty_sim_load_opts;

/* Reads a trace. Formats (the header line says which when format is AUTO):
 * - philly:  timestamp,duration,num_gpus,gpu_time,cluster (timestamp "YYYY-MM-DD HH:MM:SS"
 *            UTC, duration in s, cluster = VC id); needs a cluster file.
 * - muri:    job_id,num_gpu,submit_time,...,duration,... (times in ms); one VC.
 * - generic: submit_s,duration_s,gpus[,vc][,priority_class] (seconds, decimals allowed to the
 *            ms); without the vc column every job is in VC "default"; priority_class (a
 *            WorkloadPriorityClass name, empty: none) only with o->kueue.
 * Bad input fails naming the file, line and field, and fills nothing. */
int ty_sim_trace_load(ty_sim_trace *t, const char *path, const ty_sim_load_opts *o,
                      ty_error *err);
void ty_sim_trace_free(ty_sim_trace *t);

/* A cluster given as Kueue objects (docs/simulate.md, "Your own Kueue configuration"): the
 * ResourceFlavors, ClusterQueues (resource groups, quotas, cohorts, preemption, fair-sharing
 * weights, queueing strategies), LocalQueues and WorkloadPriorityClasses of a YAML file,
 * validated and defaulted as the server admits them (api/api.h), and a list of Node objects
 * (the server's --nodes / --nodes-file: cli/nodespec.h). Each pass's snapshot of queues and
 * nodes is built by the server's own code (controllers/admission.h). */
typedef struct ty_sim_kueue ty_sim_kueue;

/* Reads the objects of `path`; `nodes` (a JSON array of Node objects) is copied. Bad input
 * fails naming the file, line, column and field of every problem found. */
int ty_sim_kueue_load(ty_sim_kueue **out, const char *path, const json_t *nodes,
                      ty_error *err);
void ty_sim_kueue_free(ty_sim_kueue *k); /* NULL is fine */
/* Binds a trace (loaded with o->kueue) to the queues: each VC names a LocalQueue ("name" in
 * namespace default, or "namespace/name") or else a ClusterQueue; each priority class a
 * WorkloadPriorityClass (unknown: an error naming the trace line). Rows of an unknown VC, and
 * rows their ClusterQueue could not admit even on the empty cluster (more GPUs than its quota
 * can ever give, or than its flavors' nodes hold), are taken out of the trace and counted
 * (unknown_vc, too_large). gpus_per_node 0: the largest GPU count of a node. */
int ty_sim_kueue_bind(ty_sim_kueue *k, ty_sim_trace *t, int32_t gpus_per_node, ty_error *err);

typedef struct ty_sim_config {
    ty_sim_policy policy;
    bool helios;          /* Helios semantics (sjf head of line) */
    int64_t restart_ms;   /* srtf/las: added to a job's remaining time at each preemption */
    const int64_t *las_thresholds_gpu_s; /* ascending; NULL: Tiresias' one threshold, 3200 */
    size_t n_las_thresholds;
    bool cohort;          /* one cluster of every VC's nodes, a ClusterQueue per VC (nominal
                           * quota: its GPUs) in one cohort: borrowing, and with srtf/las
                           * reclaimWithinCohort Any */
    bool fair_sharing;    /* the core's fair sharing between the VCs' queues (cohort) */
    bool check;           /* check the invariants at every event (tests; costs O(nodes)) */
    bool record;          /* keep the series for the plot */
    const ty_sim_kueue *kueue; /* policy kueue: the cluster (bound to the trace), else NULL */
} ty_sim_config;

typedef struct ty_sim_stats {
    size_t jobs;
    double avg_jct_s, p50_jct_s, p99_jct_s, avg_queue_s, makespan_s, gpu_utilization;
    size_t preemptions;
} ty_sim_stats;

/* One point of a cluster's series: from t_ms on, `pending` jobs wait and `busy` GPUs run. */
typedef struct ty_sim_point {
    int64_t t_ms;
    int32_t pending, busy;
} ty_sim_point;

typedef struct ty_sim_result {
    ty_sim_stats overall;
    ty_sim_stats *per_vc; /* n_vcs of the trace */
    int64_t *start_ms, *end_ms; /* per job of the trace: first start, end */
    ty_sim_point **series;      /* per VC, when record */
    size_t *n_series;
    size_t passes;              /* core passes run */
} ty_sim_result;

/* Runs the trace. Fails (-1) only on a core error or a broken invariant (with check). */
int ty_sim_run(const ty_sim_trace *t, const ty_sim_config *c, ty_sim_result *r, ty_error *err);
void ty_sim_result_free(const ty_sim_trace *t, ty_sim_result *r);

const char *ty_sim_policy_name(ty_sim_policy p);
int ty_sim_policy_parse(const char *s, ty_sim_policy *p);

/* Output: a table, the JSON document (docs/simulate.md), an SVG plot. */
void ty_sim_print_table(FILE *f, const ty_sim_trace *t, const ty_sim_config *c,
                        const ty_sim_result *r);
char *ty_sim_json(const ty_sim_trace *t, const ty_sim_config *c, const ty_sim_result *r);
int ty_sim_plot(const char *path, const ty_sim_trace *t, const ty_sim_result *r, ty_error *err);

#endif
