/* Small helpers over v1 Pod objects shared by the controllers and the node agent. */
#ifndef TY_CONTROLLERS_PODUTIL_H
#define TY_CONTROLLERS_PODUTIL_H

#include <jansson.h>
#include <stdbool.h>

/* Phase Succeeded or Failed. */
bool ty_pod_terminated(const json_t *pod);
const char *ty_pod_phase(const json_t *pod); /* "Pending" when unset */

typedef enum { TY_POD_CONDITION_UNCHANGED, TY_POD_CONDITION_CHANGED } ty_pod_set_condition_result;

/* Sets condition `type` in pod.status.conditions (a mutable pod), with lastTransitionTime
 * moved only when the status flips, as the API conventions ask. reason/message may be NULL.
 * Also sets status.phase to Pending when the pod has none. */
ty_pod_set_condition_result ty_pod_set_condition(json_t *pod, const char *type,
                                                 const char *status, const char *reason,
                                                 const char *message);
/* The pod's quality-of-service class as Kubernetes computes it from cpu and memory requests
 * and limits: "Guaranteed", "Burstable" or "BestEffort". */
const char *ty_pod_qos_class(const json_t *pod);
/* Whether a job of any kind the node runs has finished: Succeeded (Kubeflow's jobs) or
 * Complete (batch/v1 Job) True, or Failed True; *ok (may be NULL) says which. */
bool ty_job_finished(const json_t *job, bool *ok);
/* The condition object of that type, or NULL (borrowed). */
const json_t *ty_pod_condition(const json_t *pod, const char *type);

#endif
