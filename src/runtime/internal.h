/* Internal to the runtime: what the parent (runtime.c) and the pod supervisor (shim.c) share.
 *
 * The parent writes <pod-dir>/pod.json = {"pod": <v1 Pod>, "runtime": {...}} with these keys in
 * "runtime": podIP, hostIP, nodeName, workdir (default workingDir), gpus (array of device ids
 * handed to this pod, in order; containers take consecutive slices), dieWithParent, parentPid,
 * backoffMs (restart back-off base). Then it spawns `<self_exe> shim <pod-dir>` with a pipe on
 * stdin (commands, one per line: "stop <grace-seconds>") and a pipe on stdout (one line per
 * status change: "status <PodStatus JSON>"). The shim writes <pod-dir>/state.json on each change
 * (shim pid, container pids and start times, exit codes) so a later trainyard can re-adopt. */
#ifndef TY_RUNTIME_INTERNAL_H
#define TY_RUNTIME_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

/* $(VAR) expansion as Kubernetes does it for env values, command and args: $(NAME) is replaced
 * by the value of NAME when `lookup` knows it and kept verbatim otherwise; $$ is an escaped $;
 * any other $ is kept. Caller frees the result. */
typedef const char *(*ty_rt_lookup_fn)(void *ctx, const char *name, size_t len);
char *ty_rt_expand(const char *s, ty_rt_lookup_fn lookup, void *ctx);

/* The supervisor's entry point; returns the process exit status. */
int ty_rt_shim_main(const char *pod_dir);

#endif
