/* Defaults of the core v1 kinds the API server serves without a schema of their own
 * (Kubernetes' SetDefaults_* and what its registry fills in on create), shared by the API
 * server's creates and the controllers that make such objects, so both store what a cluster
 * would. */
#ifndef TY_API_CORE_H
#define TY_API_CORE_H

#include <jansson.h>

/* A Service: type ClusterIP, sessionAffinity None, internalTrafficPolicy Cluster, each port's
 * protocol TCP and targetPort its port; a headless one (clusterIP None) gets clusterIPs
 * [None], ipFamilies [IPv4] and ipFamilyPolicy SingleStack; status.loadBalancer {}. Leaves
 * what is set, and anything that is not an object, alone. */
void ty_core_service_defaults(json_t *svc);

#endif
