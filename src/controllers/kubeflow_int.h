/* Internal to the kubeflow controller logic (kubeflow.c, kubeflow_status.c): what the two
 * files share about job shapes. Not for other modules. */
#ifndef TY_CONTROLLERS_KUBEFLOW_INT_H
#define TY_CONTROLLERS_KUBEFLOW_INT_H

#include "controllers/kubeflow.h"

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
