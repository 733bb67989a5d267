/* The Service proxy's controller: kube-proxy's part of the node. It keeps the nftables rules
 * that make ClusterIP Services reachable (net/proxy.h) in every pod's own network namespace.
 *
 * Store watches of Services and Pods mark the rules stale; one rebuild per batch (a short
 * timer gathers what a loop turn or a burst of pod status writes changed) makes the ruleset
 * from every stored Service and Pod and, when its text changed, hands it to the runtime,
 * which applies it in each running pod with a network namespace of its own (O(pods) applies
 * per change) and in each pod it starts, before its containers run. hostNetwork pods and pods
 * without a pod network get nothing. */
#ifndef TY_CONTROLLERS_SVCPROXY_H
#define TY_CONTROLLERS_SVCPROXY_H

#include <uv.h>

#include "runtime/runtime.h"
#include "store/store.h"

typedef struct ty_svcproxy ty_svcproxy;

/* Starts watching, and installs the rules for what is stored now (before returning: pods
 * started next get them). */
ty_svcproxy *ty_svcproxy_new(uv_loop_t *loop, ty_store *store, ty_runtime *rt);
/* Rebuilds now (the periodic resync: the rules are level-triggered like the rest). */
void ty_svcproxy_resync(ty_svcproxy *c);
/* Accepts NULL. */
void ty_svcproxy_free(ty_svcproxy *c);

#endif
