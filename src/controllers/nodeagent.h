/* The node agent: the kubelet's part for this machine. It watches pods bound to its node,
 * starts them through the runtime, writes their status back, stops them when they are
 * deleted (graceful deletion: the store marks the pod, the agent stops its processes within
 * the grace period and then removes it), and gives each pod its loopback address. It serves
 * `node_name` and any node added with ty_nodeagent_add_node.
 *
 * Crash safety: the runtime's reports are written through the agent's work queue (a failed
 * write is retried with back-off), and a pod's end is marked reported to the runtime
 * (ty_runtime_end_recorded) only once the store has committed the write that holds it, so a
 * crash in between makes the next start report it again, exit codes included.
 *
 * Ownership: the agent borrows the loop, store, runtime and ipam; they must outlive it. */
#ifndef TY_CONTROLLERS_NODEAGENT_H
#define TY_CONTROLLERS_NODEAGENT_H

#include <uv.h>

#include "runtime/ipam.h"
#include "runtime/runtime.h"
#include "store/store.h"

typedef struct ty_nodeagent ty_nodeagent;

ty_nodeagent *ty_nodeagent_new(uv_loop_t *loop, ty_store *store, const char *node_name,
                               ty_runtime *rt, ty_ipam *ipam);
/* Serves one more node: its bound pods run here too (virtual nodes: one agent for all the
 * nodes of this machine, on one runtime and one ipam; the runtime keeps each node's GPUs). */
void ty_nodeagent_add_node(ty_nodeagent *a, const char *node_name);
/* Called with a copy of each pod about to start (what the runtime gets, never stored): it may
 * add volumes, mounts and env (the server's ServiceAccount credentials, cli/server.c). A
 * failure fails the pod's start with its message. */
typedef int (*ty_nodeagent_prepare_fn)(void *ctx, json_t *pod, ty_error *err);
void ty_nodeagent_set_prepare(ty_nodeagent *a, ty_nodeagent_prepare_fn fn, void *ctx);
/* Where the runtime's status reports go (see ty_runtime_status_fn): the runtime is made
 * before the agent, so its callback forwards to this one with the agent as ctx. */
void ty_nodeagent_on_status(void *ctx, const char *ns, const char *name, const char *uid,
                            json_t *status, bool gone);
/* Where the runtime's container events go (see ty_runtime_event_fn), with the agent as ctx:
 * recorded on the pod as the kubelet's, when the pod is still the one with that uid. */
void ty_nodeagent_on_event(void *ctx, const char *ns, const char *name, const char *uid,
                           const char *type, const char *reason, const char *message);
/* Queues every pod (at start, after the runtime adopted what an earlier trainyard left, and
 * periodically): a pod bound here and not running is started, an adopted one taken over, one
 * being deleted is stopped and removed, one whose processes were lost fails. */
void ty_nodeagent_resync(ty_nodeagent *a);
/* From now on the dir of a pod (logs, state) is removed when its object is deleted and its
 * processes are gone; dirs of pods deleted earlier (while trainyard was down) go now, and a
 * pod still running without an object is stopped. For the server, whose pods' record is the
 * store; `trainyard run` keeps its dirs as the run's logs. */
void ty_nodeagent_remove_dirs(ty_nodeagent *a);
void ty_nodeagent_free(ty_nodeagent *a);

#endif
