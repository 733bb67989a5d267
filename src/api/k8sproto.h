/* The Kubernetes protobuf encoding, for the request bodies that need it.
 *
 * kubectl's typed clients send built-in kinds as protobuf whatever the server advertises
 * (`kubectl create namespace` does), so a server that only read JSON would refuse them. The
 * body is the 4 bytes "k8s\0" and a runtime.Unknown message (typeMeta, raw bytes of the object,
 * contentEncoding, contentType). Decoded here: Namespace (metadata name, generateName, labels,
 * annotations, finalizers; spec.finalizers), ConfigMap, Secret, Service (its spec), the RBAC
 * kinds and the access reviews (`kubectl create role|rolebinding|...`, `kubectl auth can-i`,
 * `kubectl auth whoami`), scheduling.k8s.io/v1 PriorityClass (that metadata; value,
 * globalDefault, description, preemptionPolicy), ServiceAccount and TokenRequest (`kubectl
 * create serviceaccount|token`) and batch/v1 Job (that metadata; a template of containers with
 * name, image, command, args, workingDir, and a restartPolicy; any other field refuses the
 * body), the kinds kubectl creates this way for trainyard's users (`kubectl create
 * namespace|configmap|secret|service|priorityclass`, `kubectl create job NAME --image=IMAGE --
 * COMMAND...`).
 * Other kinds fail with a message naming them; the server answers 415 for those.
 *
 * The result is the object as JSON (a new reference in *out). Bodies are untrusted: every
 * length is checked against what is left, nesting is bounded by the fixed schema. */
#ifndef TY_API_K8SPROTO_H
#define TY_API_K8SPROTO_H

#include <jansson.h>
#include <stddef.h>

#include "base/error.h"

int ty_k8sproto_decode(const void *data, size_t len, json_t **out, ty_error *err);

#endif
