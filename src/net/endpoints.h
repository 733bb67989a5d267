/* A Service's endpoints, as the endpoints controller decides them: the one rule cluster DNS
 * (net/dns.h) and the Service proxy (net/proxy.h) share.
 *
 * A pod is an endpoint of a Service when they are in the same namespace, the Service has a
 * non-empty selector whose every label the pod carries, and the pod has a podIP and is not
 * Succeeded or Failed; it must also be ready (condition Ready True) and not being deleted,
 * unless the Service sets publishNotReadyAddresses. */
#ifndef TY_NET_ENDPOINTS_H
#define TY_NET_ENDPOINTS_H

#include <jansson.h>
#include <stdbool.h>

bool ty_endpoint_of(const json_t *svc, const json_t *pod);
/* The pod's port a Service port (an element of spec.ports) sends to: its targetPort when a
 * number (its port when unset), or the containerPort of that name among the pod's
 * containers; -1 when the pod has no port of that name (it is left out for that port). */
int ty_endpoint_port(const json_t *svc_port, const json_t *pod);

#endif
