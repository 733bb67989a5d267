/* The serving gateway: the HTTP listener in front of the InferenceServices' replicas (what
 * Knative's ingress, activator and queue-proxy do together), on the libuv loop: no thread.
 *
 * A request is routed by its Host (`{name}.{namespace}.{domain}`, KServe's default domain
 * template, domain "example.com" unless set) or, when the Host names no InferenceService, by
 * its path (`/v1/models/{name}[:predict|:explain]`, `/v2/models/{name}[/versions/{v}]/...`,
 * in the default namespace), to a revision chosen by the traffic split, then to the ready
 * replica of that revision with the fewest requests in flight, never past containerConcurrency
 * (0: unlimited). Connections to replicas are kept alive and reused. When no replica can take
 * it (none ready: scaled to zero or starting; all at their concurrency), the request waits in
 * the route's queue (bounded) and the route's owner is asked to wake it (`wake`); a request
 * that waited past its timeout is answered 503, one over the queue's bound at once 503. A
 * request to a replica that takes longer than the route's timeout is answered 504.
 *
 * Ownership: the caller owns the loop; ty_gateway_free closes every connection. */
#ifndef TY_SERVING_GATEWAY_H
#define TY_SERVING_GATEWAY_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "base/buf.h"
#include "base/error.h"

typedef struct ty_gateway ty_gateway;

/* Called when requests wait for a route that has no replica to take them. */
typedef void (*ty_gateway_wake_fn)(void *ctx, const char *ns, const char *name);

typedef struct ty_gateway_config {
    const char *domain;        /* "example.com" */
    size_t max_queue;          /* per route: requests held at most (default 1000) */
    int64_t hold_timeout_ms;   /* a held request's longest wait for a replica (default 60 s) */
} ty_gateway_config;

ty_gateway *ty_gateway_new(uv_loop_t *loop, const ty_gateway_config *cfg, ty_gateway_wake_fn wake,
                           void *ctx);
/* Listens on "host:port" (port 0: any; ty_gateway_port says which). */
int ty_gateway_listen(ty_gateway *g, const char *addr, ty_error *err);
int ty_gateway_port(const ty_gateway *g);
void ty_gateway_free(ty_gateway *g);

/* One revision of a route: its share of the traffic and its ready replicas. */
typedef struct ty_gateway_replica {
    char ip[64];
    int port;
} ty_gateway_replica;

typedef struct ty_gateway_revision {
    const char *name;
    int percent;
    const ty_gateway_replica *replicas;
    size_t nreplicas;
    /* Replicas running but not ready yet: while requests wait for the revision, the gateway
     * tries to connect to these every few milliseconds (as Knative's activator probes) and
     * uses one as soon as it accepts, before its readiness probe's next period. */
    const ty_gateway_replica *starting;
    size_t nstarting;
} ty_gateway_revision;

typedef struct ty_gateway_route {
    int64_t container_concurrency; /* 0: unlimited */
    int64_t timeout_s;             /* a request's limit at a replica (KServe's timeout: 60) */
    const ty_gateway_revision *revisions;
    size_t nrevisions;
} ty_gateway_route;

/* Sets who is woken (after ty_gateway_new: the controller is made after the gateway). */
void ty_gateway_set_wake(ty_gateway *g, ty_gateway_wake_fn wake, void *ctx);

/* Sets (copies) or, with NULL, removes the route of InferenceService ns/name. Waiting
 * requests that a replica can now take go to it. */
void ty_gateway_set_route(ty_gateway *g, const char *ns, const char *name,
                          const ty_gateway_route *r);

/* Requests for revision `rev` of ns/name now: in flight at its replicas plus those waiting
 * for the route while it has no replica and routes them to it (the KPA's concurrency). */
int64_t ty_gateway_concurrency(const ty_gateway *g, const char *ns, const char *name,
                               const char *rev);
/* Requests answered through the gateway since it started, per route (0 when unknown). */
uint64_t ty_gateway_served(const ty_gateway *g, const char *ns, const char *name, const char *rev);

/* Appends the per-revision Prometheus metrics (requests answered, latency histogram,
 * concurrency) in the text exposition format. */
void ty_gateway_metrics(const ty_gateway *g, ty_buf *out);

#endif
