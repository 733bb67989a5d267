/* The API kinds trainyard knows: their schemas, defaulting and validation.
 *
 * ty_api_admit() is what every write goes through (the `run` command's manifests now, the API
 * server's requests later): it checks the object against its kind's OpenAPI v3 schema (types,
 * required fields, enums, formats; unknown fields are errors with a "did you mean" hint as in
 * kubectl's strict field validation), applies the kind's defaults as its upstream controller
 * does, then the kind's own rules. Schemas are data: the same ones serve /openapi/v3 and the
 * CRDs that cluster mode installs. */
#ifndef TY_API_API_H
#define TY_API_API_H

#include <jansson.h>
#include <stdbool.h>

#include "api/kinds.h"
#include "api/manifest.h"
#include "api/validate.h"


/* The kind ty_api_admit() admits for an apiVersion ("kubeflow.org/v1", "v1") and kind: one
 * of ty_kinds() with a schema (`ops`); NULL when unknown. */
const ty_kind_info *ty_api_kind(const char *api_version, const char *kind);

/* Validates `obj` (positions from `m`, which may be NULL), defaults it in place, and runs the
 * kind's rules. Returns 0, or -1 with every problem found added to `errs` (not just the first).
 * An object with an unknown apiVersion/kind gets one error on `kind`. A kind with a validating
 * webhook (the operator's jobs) has its rules run on the object as written, before defaults;
 * their errors are marked (`webhook`) and their warnings added to `errs`. */
int ty_api_admit(const ty_manifest *m, json_t *obj, ty_field_errors *errs);

/* Kubernetes' limit on an object's annotations, keys and values together (256 KiB). */
#define TY_ANNOTATIONS_MAX_BYTES (256u * 1024)

/* The ObjectMeta rules every kind shares that do not depend on the kind's schema: label and
 * annotation keys, label values, the annotations' total size. For the kinds ty_api_admit does
 * not know (the core ones the API server serves: pods, namespaces, ...), which it checks
 * itself. Returns 0, or -1 with the problems added to `errs`. */
int ty_api_check_metadata(const json_t *obj, ty_field_errors *errs);

/* The rules of an update that compare `obj` (admitted) with the stored `old`: the fields a
 * kind makes immutable (LocalQueue spec.clusterQueue, PriorityClass value and
 * preemptionPolicy, a Workload's pod sets, queue and priority class once it reserved quota;
 * a job's runPolicy.managedBy, marked as its webhook's, and schedulingPolicy.queue).
 * Returns 0, or -1 with the problems added to `errs`. */
int ty_api_check_update(const json_t *obj, const json_t *old, ty_field_errors *errs);

/* The rules of a core v1 Pod's spec that trainyard checks (its containers' volume mounts stay
 * inside their volumes). Returns 0, or -1 with the problems added to `errs`. */
int ty_api_check_pod(json_t *pod, ty_field_errors *errs);

/* `prefix` with the random 5-character suffix the API server gives a generateName (its
 * alphabet: consonants and digits that spell no words). Caller frees. */
char *ty_api_generate_name(const char *prefix);

/* The kind's OpenAPI v3 schema (borrowed, immutable); NULL for a kind without `ops`. */
const json_t *ty_api_schema(const ty_kind_info *k);

#endif
