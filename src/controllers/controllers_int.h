/* Private to src/controllers (its units and tests), the module's one private header.
 *
 * The Kueue controllers (workloads.c, admission.c, kueue_*.c): Kueue's names, metav1.Condition
 * helpers and the snapshot that turns the stored objects into the scheduling core's input
 * (sched/sched.h).
 *
 * The kubeflow logic (kubeflow.c, kubeflow_status.c, kubeflow_failure.c): what those files
 * share about job shapes. */
#ifndef TY_CONTROLLERS_CONTROLLERS_INT_H
#define TY_CONTROLLERS_CONTROLLERS_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "api/kueue.h"
#include "controllers/kubeflow.h"
#include "sched/sched.h"
#include "store/store.h"

/* ---- Kueue controllers ---- */

#define TY_KUEUE_LABEL_JOB_UID "kueue.x-k8s.io/job-uid"
/* The LocalQueue a job without the queue label goes to when it exists in its namespace. */
#define TY_KUEUE_DEFAULT_LOCAL_QUEUE "default"
/* On a job's replica template once admitted: the node of each replica index, comma separated
 * (the binder binds by it; see controllers/binder.h). */
#define TY_ANNOTATION_PLACEMENT "trainyard.dev/placement"
#define TY_KUEUE_HOSTNAME_LEVEL "kubernetes.io/hostname"

/* The condition of that type in obj.status.conditions (borrowed), or NULL. */
const json_t *ty_kueue_condition(const json_t *obj, const char *type);
/* Whether the condition exists with that status ("True"/"False"). */
bool ty_kueue_condition_is(const json_t *obj, const char *type, const char *status);
/* Sets a metav1.Condition on a mutable object: lastTransitionTime moves only when the status
 * flips; observedGeneration follows metadata.generation. Returns whether anything changed. */
bool ty_kueue_set_condition(json_t *obj, const char *type, const char *status,
                            const char *reason, const char *message, int64_t now_ns);
/* The resource ("pytorchjobs", "tfjobs", "jobs") of a job kind Kueue queues (the registry's
 * kueue_job), or NULL. */
const char *ty_kueue_job_resource(const char *kind);
/* The job a Workload (or a pod) belongs to, from its controller ownerReference: resource,
 * name and uid (borrowed from wl). Returns false when it has none we know. */
bool ty_kueue_workload_job(const json_t *wl, const char **resource, const char **name,
                           const char **uid);
/* The name of the Workload of a job: "<kind>-<name>-<5 hex of the uid's hash>", as Kueue
 * names them (kind lowercased). Caller frees. */
char *ty_kueue_workload_name(const char *kind, const char *job_name, const char *job_uid);
/* A pod's requests (ty_placement_requests) without the zero ones, sorted by resource name:
 * {"cpu": 500, ...} in milli-units. Caller owns it. */
json_t *ty_kueue_pod_requests(const json_t *pod_spec);
/* Milliseconds since the epoch of an RFC 3339 time, or `fallback`. */
int64_t ty_kueue_time_ms(const char *rfc3339, int64_t fallback);

/* Why a workload is not given to the scheduling core, or NULL when it is. */
typedef struct ty_kueue_route {
    const char *cluster_queue; /* borrowed from the LocalQueue; NULL when none */
    char *problem;             /* owned: "LocalQueue lq doesn't exist", ... */
} ty_kueue_route;

/* Everything one admission pass reads, listed from the store (owned references). */
typedef struct ty_kueue_objects {
    /* pods: those bound and not ended, only what the snapshot reads of them (kueue_util.c) */
    json_t *flavors, *cluster_queues, *local_queues, *workloads, *nodes, *pods, *namespaces;
    json_t *admission_checks;
    /* Borrowed, NULL for the server: quota already used by workloads the snapshot is not
     * given, {cluster queue: {flavor: {resource: milli}}} (ty_sched_quota.used). */
    const json_t *quota_used;
} ty_kueue_objects;

/* `workloads`: the Workloads already listed (taken), or NULL to list them from the store. */
void ty_kueue_objects_load(ty_store *s, ty_kueue_objects *o, json_t *workloads);
void ty_kueue_objects_free(ty_kueue_objects *o);

/* Workload states as the admission pass sees them. */
bool ty_kueue_workload_finished(const json_t *wl);
bool ty_kueue_workload_reserved(const json_t *wl); /* QuotaReserved=True with an admission */

/* What a snapshot parsed of each Workload (its states, its pod sets as the core's input), kept
 * from one snapshot to the next by "ns/name" and reused while metadata.resourceVersion is the
 * same: with thousands of waiting workloads, parsing them all again was most of a pass.
 * Entries of workloads no longer listed are dropped by the next snapshot. */
typedef struct ty_kueue_cache ty_kueue_cache;
ty_kueue_cache *ty_kueue_cache_new(void);
void ty_kueue_cache_free(ty_kueue_cache *c);
/* How many workloads the last snapshot had to parse (the others came from the cache). */
size_t ty_kueue_cache_parsed(const ty_kueue_cache *c);

/* Whether ClusterQueue `name` of `cluster_queues` covers Kueue's "pods" resource: then each
 * pod of its workloads counts one "pods" against the quota (not against nodes), and the
 * admission names its flavor and usage. */
bool ty_kueue_covers_pods(const json_t *cluster_queues, const char *name);

/* The AdmissionChecks a workload of ClusterQueue `cq` must pass, as Kueue's
 * AdmissionChecksForWorkload: spec.admissionChecks, and the admissionChecksStrategy rules
 * whose onFlavors are empty or name a flavor of `admission` (its status.admission; NULL: every
 * check the queue names). A new array of names, sorted. */
json_t *ty_kueue_checks_for(const json_t *cq, const json_t *admission);

/* Why a cluster queue cannot admit, as Kueue says it: in `inactive`, name -> {"reason": the
 * first reason (FlavorNotFound, ...), "message": every cause, comma-separated, e.g.
 * "references missing ResourceFlavor(s): [a b]"}. Adds one cause. */
void ty_kueue_inactive_add(json_t *inactive, const char *cq, const char *reason,
                           const char *message);

/* Builds the scheduling core's snapshot. routes[i] (one per o->workloads entry, zeroed by the
 * caller) receives, for pending workloads that cannot be queued, the reason. Cluster queues
 * whose flavors do not all exist are left out and reported in `inactive`
 * (ty_kueue_inactive_add).
 * `cache` (may be NULL: everything is parsed) must only ever see objects of one store, whose
 * resourceVersions are unique; objects without one are parsed every time. The snapshot is the
 * same with or without it. */
ty_sched *ty_kueue_snapshot(const ty_kueue_objects *o, bool fair_sharing, int64_t now_ms,
                            ty_kueue_route *routes, json_t *inactive, ty_kueue_cache *cache);

/* ---- kubeflow logic ---- */

typedef struct ty_kf_kind {
    ty_kubeflow_kind kind;
    const char *name;        /* "PyTorchJob" */
    const char *specs_field; /* "pytorchReplicaSpecs" */
    const char *container;   /* main container name */
    const char *port_name;
    int default_port;        /* -1: none (the port is required) */
    const char *const *types; /* replica types in the order the operator walks them, NULL-ended */
} ty_kf_kind;

/* NULL for a job of an unknown kind. */
const ty_kf_kind *ty_kf_kind_of(const json_t *job);
const char *ty_kf_str(const json_t *obj, const char *key); /* "" when absent or not a string */
const char *ty_kf_name(const json_t *job);
const char *ty_kf_namespace(const json_t *job);          /* "default" when unset */
const json_t *ty_kf_specs(const json_t *job, const ty_kf_kind *k);
const json_t *ty_kf_spec(const json_t *job, const ty_kf_kind *k, const char *rtype);
int ty_kf_replicas(const json_t *spec);                 /* 1 when unset, as defaulting */
const char *ty_kf_restart_policy(const json_t *spec);   /* the replica spec's policy */
bool ty_kf_is_elastic(const json_t *job);
/* Lowercase copy; the caller frees. */
char *ty_kf_lower(const char *s);
/* The operator's labels for a replica (job-name, operator-name, replica-type, replica-index);
 * index < 0 leaves out replica-index. New object. */
json_t *ty_kf_labels(const json_t *job, const ty_kf_kind *k, const char *rtype, int index);
/* Port `k->port_name` of the main container of replica `rtype`; default_port or -1. */
int ty_kf_port(const json_t *job, const ty_kf_kind *k, const char *rtype);
/* The master role: PyTorch Master, TF Chief/Master, or Worker 0 when there is none. */
bool ty_kf_is_master_role(const json_t *job, const ty_kf_kind *k, const char *rtype, int index);

/* ---- failures (kubeflow_failure.c) ---- */

/* Why a pod failed, for the job's messages, from its container states as the kubelet reports
 * them: the last container that ended badly (terminated non-zero or StartError, the previous
 * run of one restarting in place) or cannot start (waiting with a reason other than the
 * normal ContainerCreating/PodInitializing), else the pod's own reason/message. Returns a new
 * string like `pod P, container c: StartError (exit code 128): <message>`, or NULL when the
 * pod shows no failure. *detailed (may be NULL) tells whether a runtime message explains it
 * (a start error, not just an exit code); *when_ns (may be NULL) when it happened (0:
 * unknown). */
char *ty_kf_failure_cause(const json_t *pod, bool *detailed, int64_t *when_ns);
/* The message of a container of the pod that waits with CreateContainerConfigError (it can
 * never start: the pod's spec is immutable), or NULL. Borrowed from the pod. */
const char *ty_kf_config_error(const json_t *pod);
/* When a failed pod ended, for the restart back-off: the latest of its creation, its
 * containers' finishedAt; *ran_ns how long it ran (from startTime; 0: unknown). */
int64_t ty_kf_failed_at(const json_t *pod, int64_t *ran_ns);
/* The back-off before recreating failed pods the `exp`-th time in a row (0 = first): the
 * base (ty_kubeflow_set_restart_backoff, 10 s) doubling, at most 30 x base (5 min). */
int64_t ty_kf_restart_delay_ns(int64_t exp);
/* A run this long resets the back-off, as the kubelet forgets old crashes (2 x the cap). */
int64_t ty_kf_backoff_reset_ns(void);

#endif
