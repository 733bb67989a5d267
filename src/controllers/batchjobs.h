/* The batch/v1 Job controller over the store: reads a job and the pods it owns, applies
 * Kubernetes' Job controller rules (controllers/batch.h), and carries out the outcome (pods
 * created with generateName "<job>-" and the job as controlling owner, pods deleted, status,
 * Events as the job-controller records them, the job deleted after its TTL). Level-triggered:
 * any change to a job or to a pod it controls queues the job; deadlines, back-offs and TTLs
 * queue it again when due. A job whose spec.managedBy names another controller is left
 * alone. Kueue's side of a queued Job (suspending it until admitted) is
 * controllers/workloads.h.
 *
 * Ownership: borrows the loop and the store. */
#ifndef TY_CONTROLLERS_BATCHJOBS_H
#define TY_CONTROLLERS_BATCHJOBS_H

#include <stdbool.h>
#include <uv.h>

#include "store/store.h"

typedef struct ty_batchctl ty_batchctl;

ty_batchctl *ty_batchctl_new(uv_loop_t *loop, ty_store *store);
/* Queues every stored job (with finished_too, also finished ones: their TTL); periodically
 * without. */
void ty_batchctl_resync(ty_batchctl *c, bool finished_too);
void ty_batchctl_free(ty_batchctl *c);

#endif
