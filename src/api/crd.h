/* CustomResourceDefinitions (apiextensions.k8s.io/v1) for the custom kinds of the registry
 * (kinds.h), which `trainyard install` prints so that a Kubernetes cluster serves the kinds
 * trainyard serves locally, with the same schemas.
 *
 * Everything comes from the registry entry and the kind's embedded schema (ty_api_schema):
 * group, version, names (plural, singular, kind, list kind, short names, the "all" category
 * for kinds in it), scope, the status subresource, the printer columns of its Table
 * (ty_table_crd_columns) and the OpenAPI v3 schema made structural, as apiextensions requires
 * (ty_crd_structural). Built-in kinds (core, scheduling.k8s.io) get none: Kubernetes serves
 * them itself. Deterministic: the same build gives the same objects. */
#ifndef TY_API_CRD_H
#define TY_API_CRD_H

#include <jansson.h>
#include <stdbool.h>

#include "api/kinds.h"
#include "base/error.h"

/* Whether `k` is a kind a cluster learns from a CRD: not built in, and with a schema. */
bool ty_crd_wanted(const ty_kind_info *k);

/* The CRD named "<plural>.<group>" for `k` (a new object), or NULL with `err` set when `k` is
 * not a custom kind or its schema cannot be made structural (naming the schema path). */
json_t *ty_crd_build(const ty_kind_info *k, ty_error *err);

/* Rewrites an inlined OpenAPI v3 schema (no $ref left) in place into a structural schema as
 * apiextensions.k8s.io/v1 accepts it: a type on every node except those that keep unknown
 * fields or are int-or-string (whose type is removed, as the API server requires);
 * `additionalProperties: true` becomes x-kubernetes-preserve-unknown-fields; the root is an
 * object whose metadata is only `type: object` (apiextensions allows no more there); the
 * OpenAPI-only x-kubernetes-group-version-kind goes. Returns 0, or -1 naming the first node
 * that cannot be expressed (a $ref, allOf/anyOf/oneOf/not, tuple items, properties beside an
 * additionalProperties schema, a node without a type that says nothing of its shape). */
int ty_crd_structural(json_t *schema, ty_error *err);

#endif
