/* The Service proxy: ClusterIP Services made reachable, as kube-proxy's nftables mode does,
 * by rules in a pod's own network namespace.
 *
 * Pods of several trainyard instances share the machine, so the rules go into each pod's
 * network namespace (its output hook: connections the pod opens) instead of the host's: one
 * table, `ip trainyard-proxy`, replaced whole (atomically) at each apply.
 *
 * Semantics: a connection to clusterIP:port of a ClusterIP Service (an IPv4 clusterIP, not
 * headless, not ExternalName) is DNATed to one of the Service's endpoints (net/endpoints.h;
 * without a selector, its EndpointSlices'),
 * chosen at random per connection, at its podIP and the port's targetPort (a named one looked
 * up in each pod's container ports; a pod without it is not an endpoint of that port). With
 * sessionAffinity ClientIP a client stays with the endpoint it was sent to for
 * sessionAffinityConfig.clientIP.timeoutSeconds (default 10800) - within one rule set: an
 * apply starts affinity afresh. A port with no endpoint rejects connections (ICMP port
 * unreachable, TCP reset), as kube-proxy does. */
#ifndef TY_NET_PROXY_H
#define TY_NET_PROXY_H

#include <jansson.h>

#include "base/error.h"

/* The nft script (libnftables' input) that replaces the table with the rules for
 * `services`, `pods` and `slices` (JSON arrays of Service, Pod and EndpointSlice objects;
 * others' namespaces match per Service). A Service with a selector sends to its pods; one
 * without sends to the endpoints of the EndpointSlices labelled kubernetes.io/service-name
 * with its name in its namespace (IPv4, not ready=false, not loopback, at the slice port of
 * the Service port's name), as kube-proxy reads a Service whose endpoints someone else
 * writes. Pure; the caller frees. */
char *ty_proxy_ruleset(const json_t *services, const json_t *pods, const json_t *slices);
/* Applies `ruleset` in the network namespace at `netns_path` (e.g. /run/netns/NAME or
 * /proc/PID/ns/net; NULL: the caller's own) through libnftables (loaded at the first call).
 * Only the calling thread enters the namespace, and it comes back before returning. */
int ty_proxy_apply(const char *netns_path, const char *ruleset, ty_error *err);

#endif
