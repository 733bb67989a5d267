/* Private to the Kueue controllers (controllers/workloads.c, controllers/admission.c and
 * controllers/kueue_*.c): Kueue's names, metav1.Condition helpers and the snapshot that turns
 * the stored objects into the scheduling core's input (sched/sched.h). */
#ifndef TY_CONTROLLERS_KUEUE_INT_H
#define TY_CONTROLLERS_KUEUE_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "api/kueue.h"
#include "sched/sched.h"
#include "store/store.h"

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
/* The resource ("pytorchjobs"/"tfjobs") of a job kind, or NULL. */
const char *ty_kueue_job_resource(const char *kind);
/* The job a Workload belongs to, from its controller ownerReference: resource, name and uid
 * (borrowed from wl). Returns false when it has none we know. */
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
    json_t *flavors, *cluster_queues, *local_queues, *workloads, *nodes, *pods, *namespaces;
    json_t *admission_checks;
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

#endif
