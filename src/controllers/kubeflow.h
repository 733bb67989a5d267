/* The pure logic of the Kubeflow job controller (kubeflow.org/v1 PyTorchJob and TFJob).
 *
 * No I/O, no store, no clock: the reconcile loop (the integrator's) reads the job and its pods,
 * calls these functions, and carries out what they return. The behaviour follows the Kubeflow
 * Training Operator v1 (v1.9): pod and service names `<job>-<replica type lower>-<index>`,
 * the training.kubeflow.org labels, the env it injects, its restart rules, its conditions
 * with reasons `<Kind><Reason>` and its messages. Where trainyard differs, the comment says so.
 *
 * Inputs are Kubernetes JSON as jansson objects. Jobs are assumed admitted (defaulted and
 * validated by src/api): replica type keys normalised (PyTorch "Master"/"Worker"; TF "Chief",
 * "Master", "Worker", "PS", "Evaluator"), `replicas` and `restartPolicy` set on every replica
 * spec, the main container ("pytorch"/"tensorflow") carrying its port
 * ("pytorchjob-port"/"tfjob-port"), runPolicy.cleanPodPolicy set. Functions never keep a
 * reference to what they are given. */
#ifndef TY_CONTROLLERS_KUBEFLOW_H
#define TY_CONTROLLERS_KUBEFLOW_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

/* Labels the operator puts on every pod and service of a job. */
#define TY_KUBEFLOW_LABEL_JOB_NAME "training.kubeflow.org/job-name"
#define TY_KUBEFLOW_LABEL_OPERATOR "training.kubeflow.org/operator-name"
#define TY_KUBEFLOW_LABEL_REPLICA_TYPE "training.kubeflow.org/replica-type"   /* lowercase */
#define TY_KUBEFLOW_LABEL_REPLICA_INDEX "training.kubeflow.org/replica-index"
#define TY_KUBEFLOW_LABEL_JOB_ROLE "training.kubeflow.org/job-role"           /* "master" */

/* Job annotation where trainyard counts the restarts it made by deleting and recreating pods
 * (a whole gang, or one pod under restartPolicy ExitCode). The operator counts those through
 * its work queue's retry count, which a level-triggered controller that can restart has no
 * equivalent of; an annotation survives restarts and, unlike an unknown status field, is not
 * pruned by a real cluster's CRD schema. Value: a decimal count. ty_kubeflow_reconcile()
 * maintains it; the caller persists metadata when `metadata_changed` says so. */
#define TY_KUBEFLOW_RESTARTS_ANNOTATION "trainyard.dev/restarts"

/* How often a job's whole gang was restarted (a non-elastic PyTorchJob's; 0 for other jobs,
 * whose pods restart, or are recreated, one at a time): every replica's pods were recreated
 * that many times, so a view's RESTARTS adds it to the containers' own restarts. */
int64_t ty_kubeflow_gang_restarts(const json_t *job);

/* Job annotation with how many of those restarts came in a row, each after a short run: the
 * exponent of the back-off before the next one (see ty_kubeflow_reconcile). */
#define TY_KUBEFLOW_BACKOFF_ANNOTATION "trainyard.dev/restart-backoff"

/* The back-off base before trainyard recreates failed pods (default 10 s, as the kubelet's
 * CrashLoopBackOff; <= 0 restores it). The doubling is capped at 30 x base. For tests and
 * `TRAINYARD_RESTART_BACKOFF_MS`; process-wide. */
void ty_kubeflow_set_restart_backoff(int64_t base_ms);

typedef enum ty_kubeflow_kind {
    TY_KUBEFLOW_UNKNOWN = 0,
    TY_KUBEFLOW_PYTORCH,
    TY_KUBEFLOW_TF,
} ty_kubeflow_kind;

/* The job's kind from its `kind` field (apiVersion is assumed kubeflow.org/v1). */
ty_kubeflow_kind ty_kubeflow_job_kind(const json_t *job);

/* `<job>-<rtype lower>-<index>` with any '/' turned into '-', as the operator names pods and
 * services. The caller frees. */
char *ty_kubeflow_replica_name(const char *job_name, const char *rtype, int index);

/* Where a replica can be reached. Called with the job's namespace and the replica's pod name;
 * returns a newly allocated host (the caller of ty_kubeflow_pod() frees it), or NULL for the
 * operator's own form: the service name (`<job>-master-0`) for PyTorch, and
 * `<pod>.<namespace>.svc` for TF_CONFIG hosts. Local mode has no cluster DNS and returns the
 * replica's loopback IP; cluster mode returns NULL. */
typedef char *(*ty_kubeflow_addr_fn)(void *ctx, const char *ns, const char *pod_name);

/* The Pod for replica `rtype` (a key of the job's replica specs, e.g. "Worker") at `index`.
 *
 * metadata: name from ty_kubeflow_replica_name(), the job's namespace, the template's labels
 * and annotations with the operator's labels over them (job-name, operator-name
 * "pytorchjob-controller"/"tfjob-controller", replica-type lowercase, replica-index, and
 * job-role "master" on the master role: PyTorch Master, TF Chief/Master, or Worker 0 when the
 * job has neither), ownerReferences = [the job as controller, blockOwnerDeletion].
 * spec: the template's spec with restartPolicy taken from the replica spec (ExitCode becomes
 * Never, since the controller, not the node, judges the exit code), except that a non-elastic
 * PyTorchJob always gets Never: DDP cannot continue without one of its ranks, so when one
 * fails trainyard restarts the whole gang (see ty_kubeflow_pod_decide); a node agent
 * restarting that one pod in place would leave the other ranks hung in a collective.
 * env appended (after the container's own) as the operator does:
 *   PyTorch, every container: PYTHONUNBUFFERED=1; with a Master spec MASTER_PORT,
 *   PET_MASTER_PORT, MASTER_ADDR, PET_MASTER_ADDR, WORLD_SIZE (total replicas x nprocPerNode,
 *   where a non-integer nprocPerNode such as "auto" counts as 1), RANK and PET_NODE_RANK (the
 *   index, +1 for workers); PET_NPROC_PER_NODE when spec.nprocPerNode is set; then with
 *   elasticPolicy PET_RDZV_ENDPOINT (rdzvHost or worker 0, rdzvPort or the worker port),
 *   PET_RDZV_BACKEND (default c10d), PET_NNODES "min:max", and when set PET_MAX_RESTARTS,
 *   PET_NPROC_PER_NODE, PET_RDZV_ID, PET_RDZV_CONF ("k=v,k=v"), PET_STANDALONE ("");
 *   without elasticPolicy PET_NNODES = total replicas.
 *   TF, the "tensorflow" container only, and only when the job has more than one replica in
 *   all: TF_CONFIG = {"cluster":{<type lower>:["<host>:<port>",...] sorted by type},
 *   "task":{"type":..,"index":..},"environment":"cloud"}; with spec.enableDynamicWorker the
 *   sparse form {"cluster":{"worker":{"<i>":host},"ps":[...]},"task":{...}}.
 * Not done, on purpose: the operator's init container that makes PyTorch workers wait until
 * the master's DNS name resolves (local mode has no DNS, and torch's TCPStore client retries
 * the connection until its timeout anyway).
 * `addr` (may be NULL: always the operator's form) gives MASTER_ADDR, PET_MASTER_ADDR, the
 * default rendezvous host and every TF_CONFIG host.
 * Returns a new Pod object (the caller owns it), or NULL with `err` set when `rtype` is not in
 * the job, the index is out of range, or a needed port is missing. */
json_t *ty_kubeflow_pod(const json_t *job, const char *rtype, int index, ty_kubeflow_addr_fn addr,
                        void *ctx, ty_error *err);

/* The headless Service for a replica: same name, namespace and ownerReferences as its pod,
 * labels and selector = the operator's labels without job-role, clusterIP "None", one port
 * {name, port} per port of the main container (none when it declares none). Returns a new
 * object, or NULL with `err` set when `rtype` is not in the job or has no main container. */
json_t *ty_kubeflow_service(const json_t *job, const char *rtype, int index, ty_error *err);

/* restartPolicy ExitCode: exit codes 1-127 are permanent errors (the program failed), 128-255
 * mean the process was killed by a signal (128+n: OOM kill, preemption) and are retried. As
 * the operator, any code >= 128 is retryable, including its "no exit code" marker 0xbeef. */
bool ty_kubeflow_exit_code_retryable(int code);

/* The exit code the operator judges: that of the main container's terminated state, or
 * 0xbeef when it has none (so a pod failed without a container exit is retryable). */
int ty_kubeflow_pod_exit_code(const json_t *job, const json_t *pod);

typedef enum ty_kubeflow_action {
    TY_KUBEFLOW_NONE = 0,      /* nothing to do for this pod */
    TY_KUBEFLOW_RESTART_POD,   /* delete this pod; it is recreated with the same name */
    TY_KUBEFLOW_RESTART_GANG,  /* delete every pod of the job; all are recreated */
    TY_KUBEFLOW_FAIL_JOB,      /* the job fails */
} ty_kubeflow_action;

typedef struct ty_kubeflow_decision {
    ty_kubeflow_action action;
    char *reason;  /* "<Kind>Restarting" / "<Kind>Failed"; NULL for NONE; owned */
    char *message; /* human message naming the job and replica type; NULL for NONE; owned */
} ty_kubeflow_decision;

void ty_kubeflow_decision_clear(ty_kubeflow_decision *d); /* frees the strings; NULL-safe */

/* What the restart policy of the pod's replica type says about one pod of the job (its
 * replica type from its replica-type label). Only a pod in phase Failed gets an action:
 *   Always, OnFailure, ExitCode with a retryable code -> restart (the gang for a non-elastic
 *     PyTorchJob, the pod otherwise);
 *   ExitCode with a permanent code -> fail the job;
 *   Never -> fail the job (the operator's status pass fails it: PyTorch when failed replicas
 *     leave the type short, TF on any failure), except a TF worker under enableDynamicWorker.
 * The backoffLimit is not applied here (see ty_kubeflow_reconcile). Returns the action, also
 * stored in `out` (cleared first; free with ty_kubeflow_decision_clear). */
ty_kubeflow_action ty_kubeflow_pod_decide(const json_t *job, const json_t *pod,
                                          ty_kubeflow_decision *out);

/* For a finished job: whether runPolicy.cleanPodPolicy says to delete this pod (and its
 * service): None -> no, Running -> pods Running or Pending, All -> every pod. */
bool ty_kubeflow_should_clean_pod(const json_t *job, const json_t *pod);

/* The controller that runPolicy.managedBy names when it is not the operator
 * ("kueue.x-k8s.io/multikueue"): the operator leaves such a job alone entirely (no pods, no
 * status); NULL when the operator manages it. */
const char *ty_kubeflow_managed_elsewhere(const json_t *job);

typedef enum ty_kubeflow_fail_cause {
    TY_KUBEFLOW_FAIL_NONE = 0,
    TY_KUBEFLOW_FAIL_REPLICAS,  /* replicas failed under Never (or TF without restart) */
    TY_KUBEFLOW_FAIL_EXIT_CODE, /* ExitCode policy and a permanent exit code */
    TY_KUBEFLOW_FAIL_BACKOFF,   /* runPolicy.backoffLimit reached */
    TY_KUBEFLOW_FAIL_DEADLINE,  /* runPolicy.activeDeadlineSeconds passed since startTime */
} ty_kubeflow_fail_cause;

typedef struct ty_kubeflow_replica {
    char *rtype; /* the replica spec key, e.g. "Worker"; owned */
    int index;
} ty_kubeflow_replica;

/* What one reconcile pass wants done. All arrays and strings are owned by the outcome. */
typedef struct ty_kubeflow_outcome {
    ty_kubeflow_replica *create; /* replicas with no pod: create pod + service, in spec order */
    size_t ncreate;
    char **delete_pods;          /* pod names to delete, each with its service of that name */
    size_t ndelete;
    bool restarted;              /* pods are deleted to be recreated (Restarting) */
    bool gang_restart;           /* ... the whole gang (non-elastic PyTorchJob) */
    bool finished;               /* Succeeded or Failed is True */
    bool succeeded;
    bool failed;
    ty_kubeflow_fail_cause fail_cause; /* why it failed in this pass, or NONE */
    bool suspended;              /* runPolicy.suspend: no pods may run */
    bool delete_job;             /* ttlSecondsAfterFinished has passed: delete the job */
    bool metadata_changed;       /* the restarts annotation changed: persist metadata too */
    bool status_changed;         /* job.status differs from what was passed in */
    int64_t requeue_after_ns;    /* > 0: reconcile again after this long (deadline, ttl) */
} ty_kubeflow_outcome;

void ty_kubeflow_outcome_free(ty_kubeflow_outcome *o); /* frees members, zeroes; NULL-safe */

/* One reconcile pass over a job and its pods, the operator's ReconcileJobs without the I/O.
 * `pods` are the job's pods (others, by job-name label, are ignored); pods with a
 * deletionTimestamp are on their way out: they hold their slot (no replacement yet) but count
 * in no replica status and get no decision. `now_ns` is wall time (ns since the epoch).
 *
 * Updates job.status in place: the Created condition when missing ("<Kind> <name> is
 * created."); then
 *   finished job: cleanPodPolicy deletions; a Succeeded job's active replicas counted as
 *     succeeded; ttlSecondsAfterFinished -> delete_job or requeue;
 *   runPolicy.suspend: every pod deleted, active = 0, Running False and Suspended True
 *     (reason <Kind>Suspended); coming back: Suspended False (<Kind>Resumed), startTime reset;
 *   backoffLimit (restart counts of Running pods under Always/OnFailure/ExitCode, plus the
 *     restarts annotation for a restart this pass would make) or activeDeadlineSeconds:
 *     Failed (reason <Kind>Failed, the operator's messages), every pod deleted;
 *   a pod with a container that can never start (waiting in CreateContainerConfigError, e.g.
 *     no command: trainyard runs no images): Failed at once with that message (trainyard's
 *     rule, as for a gang that can never fit; the operator would wait forever);
 *   otherwise per replica type: missing pods to create, pods beyond `replicas` deleted, failed
 *     pods judged by ty_kubeflow_pod_decide (Restarting / Failed), replicaStatuses
 *     {active, succeeded, failed, selector} (zero counts omitted, as the operator's JSON;
 *     selector "k=v,..." of the type's labels, which the operator sets for PyTorch only and
 *     we set for TF too);
 *     startTime; then the kind's success rules: PyTorch: Master succeeded, or without a
 *     Master all workers (elastic: any worker) succeeded; TF: Chief/Master succeeded, or
 *     without one all workers, or worker 0 unless successPolicy is "AllWorkers"; and the
 *     failure rules (PyTorch: a type with failed replicas and restartPolicy Never; TF: any
 *     failed replica while not Restarting, except dynamic workers).
 * Restarts back off as the kubelet's CrashLoopBackOff (the operator leaves it to the kubelet,
 * which restarts in place; trainyard recreates pods, so a pod that fails at start would
 * otherwise be recreated in a tight loop): failed pods are deleted only once the back-off has
 * passed since they ended (base, doubling with each restart in a row, capped at 30 x base; a
 * run of 60 x base resets it), kept meanwhile so their status says why (Restarting is set at
 * once; the rest of a gang is deleted and nothing is created until then; requeue_after_ns
 * says when). Failed messages name the cause: the backoff-limit one always, the others when
 * the runtime explained it (a start error), e.g. "...; last failure: pod P, container c:
 * StartError (exit code 128): <message>".
 * Conditions follow the operator's setCondition: nothing changes once Failed; the same
 * status and reason is left alone; the same status with a new reason keeps
 * lastTransitionTime; Running and Restarting replace each other; Succeeded/Failed set
 * Running False. completionTime is set when the job finishes.
 * Returns 0 and fills `out` (zeroed first; free with ty_kubeflow_outcome_free), or -1 with
 * `err` set when the job is malformed (no replica specs, unknown kind, no status object
 * possible); job is then unchanged. */
int ty_kubeflow_reconcile(json_t *job, json_t *const *pods, size_t npods, int64_t now_ns,
                          ty_kubeflow_outcome *out, ty_error *err);

/* Fails a job for a reason outside the operator's rules (trainyard's: the gang can never fit
 * any node): Created first when missing, then Failed with reason <Kind>Failed and `message`,
 * and completionTime. Updates job.status in place. */
void ty_kubeflow_fail_job(json_t *job, const char *message, int64_t now_ns);

#endif
