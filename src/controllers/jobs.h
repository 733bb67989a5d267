/* The job controller: PyTorchJob and TFJob to pods and services, and the jobs' status.
 *
 * Level-triggered: any change to a job or to one of its pods queues the job's key; a
 * reconcile reads the job and its pods from the store and makes the world match, using the
 * operator's rules in controllers/kubeflow.h. Before a job's first pod is made, it checks that
 * the whole gang could ever fit on the nodes; a job that never can fails at once with the
 * reason. Pods carry the gang label and size the binder places them by.
 *
 * Ownership: borrows the loop and store; the address callback is used to fill MASTER_ADDR and
 * TF_CONFIG hosts (pods without cluster DNS: the replicas' addresses); NULL gives the
 * operator's Service names (a node whose pods resolve through cluster DNS, cli/node.h). */
#ifndef TY_CONTROLLERS_JOBS_H
#define TY_CONTROLLERS_JOBS_H

#include <stdbool.h>
#include <uv.h>

#include "controllers/kubeflow.h"
#include "store/store.h"

typedef struct ty_jobctl ty_jobctl;

ty_jobctl *ty_jobctl_new(uv_loop_t *loop, ty_store *store, ty_kubeflow_addr_fn addr,
                         void *addr_ctx);
/* Queues every stored job (at start, with finished_too; periodically without: what a lost
 * event or a crash left behind converges, and a converged job's reconcile writes nothing).
 * Finished jobs (last condition Succeeded or Failed) are left out of the periodic passes:
 * their TTL is queued with a delay at start. */
void ty_jobctl_resync(ty_jobctl *c, bool finished_too);
void ty_jobctl_free(ty_jobctl *c);

#endif
