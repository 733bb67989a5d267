/* Katib's Experiment and Trial controllers over the store, with the suggestion service and
 * the metrics collector in-process (src/hpo): no suggestion pod, no gRPC, no sidecar.
 *
 * One reconcile per Experiment (level-triggered: a change to it, to one of its Trials or to a
 * trial's job queues it) does what Katib's experiment, suggestion and trial controllers do
 * together: it keeps the Suggestion (status.suggestions: one per trial, from a suggester
 * rebuilt from the Trials each time, so a restarted server resumes where it was), creates
 * Trials (owned by the Experiment) from the trial template with `${trialParameters.x}`
 * substituted, runs each Trial's job (batch/v1 Job, PyTorchJob, TFJob; owned by the Trial),
 * decides a trial's end by its successCondition/failureCondition, collects its metrics
 * (StdOut: the primary container's log; File: a path in the pod; Push: what the trial
 * POSTed), stops trials early (medianstop), and ends the experiment (goal, maxTrialCount,
 * maxFailedTrialCount) with Katib's conditions and status fields. A trial starts in the same
 * reconcile that sees another end, which the job's watch event triggers.
 *
 * Ownership: borrows the loop and the store. */
#ifndef TY_CONTROLLERS_EXPERIMENT_H
#define TY_CONTROLLERS_EXPERIMENT_H

#include <jansson.h>
#include <stdbool.h>
#include <uv.h>

#include "base/error.h"
#include "store/store.h"

/* Where a pod's container log is (the node's runtime); NULL: no log, StdOut finds nothing. */
typedef char *(*ty_experiment_log_path_fn)(void *ctx, const json_t *pod, const char *container,
                                           bool previous);
/* Where a path inside a pod is on this machine (a host pod: the path itself); NULL: as is. */
typedef char *(*ty_experiment_pod_path_fn)(void *ctx, const json_t *pod, const char *path);

typedef struct ty_experimentctl ty_experimentctl;

ty_experimentctl *ty_experimentctl_new(uv_loop_t *loop, ty_store *store,
                                       ty_experiment_log_path_fn log_path, void *log_ctx);
/* The base URL ("http://127.0.0.1:8080") at which trial pods reach the API server: trials get
 * TRAINYARD_METRICS_URL, their Push endpoint, in their env (with KATIB_TRIAL_NAME and
 * KATIB_TRIAL_NAMESPACE, which every trial gets). NULL: none (trainyard run). */
void ty_experimentctl_set_api_url(ty_experimentctl *c, const char *url);
/* Queues every Experiment. */
void ty_experimentctl_resync(ty_experimentctl *c);
void ty_experimentctl_free(ty_experimentctl *c);

/* Push collection: a trial reports metrics, as Katib's report_metrics does: `body` is
 * {"metrics": {"name": value, ...}} or {"metrics": [{"name":..,"value":..}], "timestamp": ..}.
 * Appended to the Trial's observation log (kept in the trial's status); fails with 404 when
 * there is no such trial, 400 on a bad body, 409 when the trial's collector is not Push. */
int ty_experiment_push_metrics(ty_store *store, const char *ns, const char *trial,
                               const json_t *body, ty_error *err);

#endif
