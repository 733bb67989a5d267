/* The OpenAPI v3 documents the API server serves at /openapi/v3, which kubectl reads for
 * `kubectl explain` (kubectl 1.27+ uses v3) and to learn whether PATCH accepts the
 * fieldValidation query parameter (server-side field validation for `kubectl apply`).
 *
 * ty_openapi_v3_paths() is the discovery document at /openapi/v3:
 *   {"paths": {"apis/kubeflow.org/v1": {"serverRelativeURL": "/openapi/v3/apis/kubeflow.org/v1?hash=H"},
 *              "api/v1": {"serverRelativeURL": "/openapi/v3/api/v1?hash=H"}}}
 * where H is a hash of that group version's document, so that clients may cache it (the API
 * server answers a request whose hash matches with Cache-Control immutable; one that does not
 * match may be redirected or just served the current document).
 *
 * The group versions are "v1" and those of ty_kinds() (kubeflow.org/v1,
 * kueue.x-k8s.io/v1beta1, scheduling.k8s.io/v1); nothing here names a group.
 *
 * ty_openapi_v3_group() is the document for one group version, "kubeflow.org/v1" or "v1"
 * (served at /openapi/v3/apis/kubeflow.org/v1 and /openapi/v3/api/v1): components.schemas with
 * each kind under its Kubernetes name ("org.kubeflow.v1.PyTorchJob", "io.k8s.api.core.v1.Pod"),
 * its list kind, and the `x-kubernetes-group-version-kind` extension that kubectl looks the
 * kind up by; paths with one entry per REST endpoint (collection, object, status), each
 * operation carrying x-kubernetes-action and x-kubernetes-group-version-kind, and PATCH the
 * dryRun/fieldManager/fieldValidation/force query parameters; strategic merge patch is offered
 * for built-in kinds only (ty_kind_info.builtin). The schemas of the kinds with `ops` are
 * ty_api_schema()'s (inlined, no $ref), named as Kubernetes names them
 * ("io.x-k8s.kueue.v1beta1.ClusterQueue", "io.k8s.api.scheduling.v1.PriorityClass"); the others (Pod, Service, Node, Namespace,
 * Event) are objects that preserve unknown fields, with their registry entry's description.
 *
 * Each call returns a new document (the caller owns it); ty_openapi_v3_group() returns NULL
 * for a group version it does not know. ty_openapi_v3_hash() is the hash H of a group
 * version's document (static storage, NULL when unknown). Documents are deterministic: the same
 * build gives the same document and hash. */
#ifndef TY_API_OPENAPI_H
#define TY_API_OPENAPI_H

#include <jansson.h>

json_t *ty_openapi_v3_paths(void);
json_t *ty_openapi_v3_group(const char *group_version);
const char *ty_openapi_v3_hash(const char *group_version);

#endif
