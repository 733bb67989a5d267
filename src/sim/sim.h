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
 * pods best-fit. Time is in milliseconds; all arithmetic is integer, so a run is deterministic. */
#ifndef TY_SIM_SIM_H
#define TY_SIM_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/error.h"

/* Limits on what a user's file may ask for. */
#define TY_SIM_MAX_JOBS 10000000
#define TY_SIM_MAX_VCS 1024
#define TY_SIM_MAX_NODES 100000
#define TY_SIM_MAX_THRESHOLDS 16

typedef enum { TY_SIM_FIFO, TY_SIM_SJF, TY_SIM_SRTF, TY_SIM_LAS } ty_sim_policy;

typedef struct ty_sim_job {
    int64_t submit_ms;   /* from the trace's first counted job */
    int64_t duration_ms; /* > 0 */
    int32_t gpus;        /* >= 1 */
    int32_t vc;          /* index into the trace's vcs */
    int64_t line;        /* in its file, for messages; ties after submit time */
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
    ty_sim_job *jobs; /* sorted by (submit_ms, line) */
    size_t n_jobs;
    ty_sim_vc *vcs;
    size_t n_vcs;
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
} ty_sim_load_opts;

/* Reads a trace. Formats (the header line says which when format is AUTO):
 * - philly:  timestamp,duration,num_gpus,gpu_time,cluster (timestamp "YYYY-MM-DD HH:MM:SS"
 *            UTC, duration in s, cluster = VC id); needs a cluster file.
 * - muri:    job_id,num_gpu,submit_time,...,duration,... (times in ms); one VC.
 * - generic: submit_s,duration_s,gpus[,vc] (seconds, decimals allowed to the ms); without the
 *            vc column every job is in VC "default".
 * Bad input fails naming the file, line and field, and fills nothing. */
int ty_sim_trace_load(ty_sim_trace *t, const char *path, const ty_sim_load_opts *o,
                      ty_error *err);
void ty_sim_trace_free(ty_sim_trace *t);

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
