/* The pure logic of Kubernetes' Job controller (batch/v1 Job), without I/O, store or clock.
 *
 * The reconcile loop (controllers/batchjobs.h) reads a job and its pods, calls
 * ty_batch_reconcile(), and carries out what it returns. The rules are the job controller's
 * (pkg/controller/job, Kubernetes 1.33):
 * - pods: NonIndexed jobs keep min(parallelism, completions - succeeded) pods active (without
 *   completions: parallelism until one succeeded, then none new); Indexed jobs keep one pod per
 *   index that has not succeeded (or failed for good), at most parallelism at once, lowest
 *   indexes first; pods beyond that are deleted;
 * - failures: a failed pod is judged by spec.podFailurePolicy (rules in order, the first match
 *   applies: FailJob fails the job, Ignore does not count the pod, Count counts it, FailIndex
 *   fails its index; onExitCodes In/NotIn over the containers' non-zero exit codes, optionally
 *   of one container; onPodConditions), else counted; more counted failures than
 *   backoffLimit fail the job (BackoffLimitExceeded), as do, under restartPolicy OnFailure, the
 *   active pods' container restarts reaching it; with backoffLimitPerIndex an index fails once
 *   its pods failed more often than that, and the job fails when more indexes failed than
 *   maxFailedIndexes (MaxFailedIndexesExceeded) or when every index ended and some failed
 *   (FailedIndexes); activeDeadlineSeconds since startTime fails it (DeadlineExceeded);
 * - an Indexed job's successPolicy: the first rule met (all its succeededIndexes succeeded, or
 *   succeededCount of them; or succeededCount indexes of any) succeeds it (SuccessPolicy);
 * - replacement pods after a failure wait a back-off: base x 2^(failures since the last
 *   success - 1) from the last failure, capped at 60 x base (10 s and 10 min as Kubernetes);
 * - conditions as Kubernetes writes them: FailureTarget / SuccessCriteriaMet (reason
 *   CompletionsReached) at once, with the active pods deleted, then Failed / Complete with the
 *   same reason and message once no pod of the job is left running or terminating;
 *   completionTime with Complete only; Suspended True (JobSuspended) while spec.suspend,
 *   active pods deleted; False (JobResumed) when resumed, which resets startTime;
 * - ttlSecondsAfterFinished: delete_job once that long after the job finished.
 * Counts come from the pods present: the job's ended pods are kept until the job goes (the
 * Kubernetes controller counts through a finalizer instead; a finished pod a user deletes is
 * not counted here). */
#ifndef TY_CONTROLLERS_BATCH_H
#define TY_CONTROLLERS_BATCH_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The base of the back-off before a failed pod is replaced (default 10 s, Kubernetes'
 * DefaultJobPodFailureBackOff; <= 0 restores it); capped at 60 x base. Process-wide. */
void ty_batch_set_pod_backoff(int64_t base_ms);

/* Whether the job has finished: its Complete or Failed condition is True; *ok says which. */
bool ty_batch_finished(const json_t *job, bool *ok);

/* Fails the job at once (FailureTarget and Failed with that reason and message), for a job
 * that can never run (trainyard run: never admitted by its queue). */
void ty_batch_fail_job(json_t *job, const char *reason, const char *message, int64_t now_ns);

/* The index a pod of an Indexed job carries (its completion-index annotation), or -1. */
long ty_batch_pod_index(const json_t *pod);

/* A failed pod judged by the job's podFailurePolicy. */
typedef enum ty_batch_pod_verdict {
    TY_BATCH_COUNT = 0, /* counts towards backoffLimit (no policy, no rule, or Count) */
    TY_BATCH_IGNORE,
    TY_BATCH_FAIL_JOB,
    TY_BATCH_FAIL_INDEX,
} ty_batch_pod_verdict;

/* The verdict for a failed pod and, for FailJob, the message of the job's condition
 * ("Container main for pod default/p failed with exit code 42 matching FailJob rule at index
 * 0"; *message is NULL otherwise, else the caller frees it). */
ty_batch_pod_verdict ty_batch_judge_pod(const json_t *job, const json_t *pod, char **message);

/* The pod the job makes for `index` (-1 for NonIndexed) named `name`: the template's
 * metadata and spec, generateName "<job>-" ("<job>-<index>-" Indexed), the job as controlling
 * owner; Indexed: the completion-index annotation and label, hostname "<job>-<index>", env
 * JOB_COMPLETION_INDEX in every container; with backoffLimitPerIndex the index's failure
 * count annotation (`index_failures`). A new object. */
json_t *ty_batch_pod(const json_t *job, const char *name, long index, long index_failures);

typedef struct ty_batch_outcome {
    long *create;          /* indexes of pods to create (-1 each for NonIndexed) */
    size_t ncreate;
    char **delete_pods;    /* names of pods to delete */
    size_t ndelete;
    long *create_failures; /* per created pod: its index's failures so far */
    bool status_changed;   /* job.status differs from what was passed in */
    bool delete_job;       /* ttlSecondsAfterFinished has passed */
    int64_t requeue_after_ns; /* > 0: reconcile again after this long (deadline, back-off, ttl) */
    /* Events the controller records (static strings; NULL when none): the reason and
     * message of a condition that became true in this pass */
    const char *event_reason;
    char *event_message;
    bool event_warning;
} ty_batch_outcome;

void ty_batch_outcome_free(ty_batch_outcome *o); /* NULL-safe; zeroes */

/* One pass over a job (admitted: defaults applied) and its pods (those it owns; pods with a
 * deletionTimestamp count as terminating, not active). Updates job.status in place (active,
 * ready, terminating, succeeded, failed, completedIndexes, failedIndexes, startTime,
 * completionTime, conditions, uncountedTerminatedPods) and fills `out`. `now_ns`: wall time. */
void ty_batch_reconcile(json_t *job, json_t *const *pods, size_t npods, int64_t now_ns,
                        ty_batch_outcome *out);

#endif
