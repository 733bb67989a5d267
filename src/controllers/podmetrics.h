/* Resource metrics: what metrics-server serves as metrics.k8s.io/v1beta1, from this node's own
 * sampling, so that `kubectl top pods` and `kubectl top nodes` work against trainyard server.
 *
 * Sampling starts with the first request for metrics and stops 10 minutes after the last,
 * so a server nobody runs `kubectl top` against spends nothing on it. While it runs, every
 * period (10 s; TRAINYARD_METRICS_PERIOD_MS for tests; the second sample after 1 s) the
 * collector samples every running container's cumulative CPU time and resident memory
 * (ty_runtime_usage: the container's process tree, from /proc) and this machine's CPU time
 * and working set. A container's CPU usage is the rate between its last two samples, in
 * nanocores, over that window, as metrics-server computes it from the kubelet's cumulative
 * counters; memory is the last sample. So the first request finds no metrics (404, or an
 * empty list: kubectl says they are not available yet), and a second or so later they are
 * there. A NodeMetrics is this machine's usage for the machine's node, and the sum of its
 * pods' for a declared (virtual) node.
 *
 * Cost: one pass over /proc a period while sampling (about 15-20 us a process on the
 * machine: 1.6 ms for 90 processes on 2 busy cores), on the loop.
 * Ownership: borrows the loop, store and runtime; they must outlive it. */
#ifndef TY_CONTROLLERS_PODMETRICS_H
#define TY_CONTROLLERS_PODMETRICS_H

#include <jansson.h>
#include <uv.h>

#include "runtime/runtime.h"
#include "store/store.h"

typedef struct ty_podmetrics ty_podmetrics;

/* machine_node: the Node that is this machine (its usage is the host's), or NULL when every
 * node is declared. */
ty_podmetrics *ty_podmetrics_new(uv_loop_t *loop, ty_store *store, ty_runtime *rt,
                                 const char *machine_node);
void ty_podmetrics_free(ty_podmetrics *m);

/* resource "pods": the PodMetrics of pod `name` in `ns`, or with name NULL the
 * PodMetricsList of `ns` (NULL: every namespace); resource "nodes": the NodeMetrics of
 * `name` or the NodeMetricsList. Items carry their object's labels (for label selectors).
 * NULL when `name` has no metrics (yet): the API answers 404 then, as metrics-server does.
 * A new reference. */
json_t *ty_podmetrics_get(ty_podmetrics *m, const char *resource, const char *ns,
                          const char *name);

/* Go's Duration.String of `ns` ("10.000123s", "502.191976ms", "1m0.5s"), as metrics-server
 * writes windows; caller frees. */
char *ty_podmetrics_duration(int64_t ns);

#endif
