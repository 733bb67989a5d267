/* Private to src/api (its units and tests), the module's one private header.
 *
 * schema.c: the generic OpenAPI v3 schema walker, field-error helpers shared by the kinds'
 * rules, and a kind's schema, defaults and rules (its registry entry's `ops`). Schemas are
 * stored as OpenAPI v3 documents (components/schemas with "$ref"s, the shape /openapi/v3
 * serves); ty_schema_inline() turns one component into a self-contained schema (the shape a
 * CRD needs), which is what the walker and ty_api_schema() use.
 *
 * table.c: the Tables' printers that the registry of kinds (kinds.c) points each kind at. */
#ifndef TY_API_API_INT_H
#define TY_API_API_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "api/api.h"
#include "api/manifest.h"
#include "api/validate.h"
#include "base/buf.h"

/* ---- schema.c and the kinds' rules ---- */

/* One admission: where positions come from (m may be NULL) and where errors go. */
typedef struct ty_schema_ctx {
    const ty_manifest *m;
    ty_field_errors *errs;
} ty_schema_ctx;

/* A kind's behaviour. `defaults` and `rules` must cope with any JSON the schema walk let
 * through or reported (they run even when it found errors), so they check types themselves. */
typedef struct ty_kind_ops {
    const json_t *(*schema)(void);                  /* inlined; borrowed, built once */
    void (*defaults)(ty_schema_ctx *c, json_t *obj);
    void (*rules)(ty_schema_ctx *c, json_t *obj);
    /* Optional: rules comparing an update with the stored object (ty_api_check_update). */
    void (*update_rules)(ty_schema_ctx *c, const json_t *obj, const json_t *old);
    /* Optional: the name of the validating webhook whose rules `rules` and `update_rules` are.
     * Its rules then see the object as written, before `defaults` (there is no mutating
     * webhook: the operator defaults a job when it reconciles it), and their errors are
     * marked as the webhook's. */
    const char *webhook;
    /* Optional: the schema's own update rules (CEL transition rules, such as `self == oldSelf`),
     * which the API server checks with the schema, before any webhook. */
    void (*transition_rules)(ty_schema_ctx *c, const json_t *obj, const json_t *old);
} ty_kind_ops;

extern const ty_kind_ops ty_kubeflow_pytorchjob_ops;
extern const ty_kind_ops ty_kubeflow_tfjob_ops;
extern const ty_kind_ops ty_kueue_resourceflavor_ops;
extern const ty_kind_ops ty_kueue_admissioncheck_ops;
extern const ty_kind_ops ty_kueue_clusterqueue_ops;
extern const ty_kind_ops ty_kueue_localqueue_ops;
extern const ty_kind_ops ty_kueue_workload_ops;
extern const ty_kind_ops ty_kueue_workloadpriorityclass_ops;
extern const ty_kind_ops ty_scheduling_priorityclass_ops;
extern const ty_kind_ops ty_core_persistentvolume_ops;
extern const ty_kind_ops ty_batch_job_ops; /* batch.c */
extern const ty_kind_ops ty_serving_inferenceservice_ops; /* serving.c */
extern const ty_kind_ops ty_serving_servingruntime_ops;
extern const ty_kind_ops ty_serving_clusterservingruntime_ops;
extern const ty_kind_ops ty_katib_experiment_ops; /* katib.c */
extern const ty_kind_ops ty_katib_trial_ops;
extern const ty_kind_ops ty_katib_suggestion_ops;
/* The core kinds' create defaults (core.c, ty_kind_info.create_defaults). */
void ty_core_pod_defaults(json_t *pod);
void ty_core_service_defaults(json_t *svc);
void ty_core_namespace_defaults(json_t *ns);
extern const ty_kind_ops ty_core_persistentvolumeclaim_ops;
extern const ty_kind_ops ty_core_configmap_ops;
extern const ty_kind_ops ty_core_secret_ops;

/* Parses an embedded OpenAPI document; aborts on a malformed one (it is part of the binary). */
json_t *ty_schema_doc_load(const char *text);
/* A new, self-contained copy of components/schemas/<name> with every "$ref" (bare, or wrapped
 * as {"description": ..., "allOf": [{"$ref": ...}]} the way Kubernetes publishes OpenAPI v3)
 * replaced by its target; the wrapper's keys, such as description, win over the target's.
 * Aborts on a missing target: the documents are ours. */
json_t *ty_schema_inline(const json_t *doc, const char *name);

/* Checks `val` (at `pos`, field path `path`) against `schema`, reporting every problem.
 * Nulls in non-nullable fields are removed (as the API server prunes them), so `val` may
 * change. `path` is restored before returning. */
void ty_schema_walk(ty_schema_ctx *c, const json_t *schema, json_t *val, ty_pos pos, ty_buf *path);

/* Field paths: append ".key" (or "[key]" when the key is not a plain identifier, as map keys
 * such as label names are) or "[i]"; each returns the length to restore with ty_path_pop(). */
size_t ty_path_key(ty_buf *path, const char *key);
size_t ty_path_index(ty_buf *path, size_t i);
/* "[key]" whatever the key, as field.Path.Key() writes map keys in webhooks' errors
 * ("spec.pytorchReplicaSpecs[Worker].replicas"). */
size_t ty_path_map_key(ty_buf *path, const char *key);
void ty_path_pop(ty_buf *path, size_t len);

/* A container's volumeMounts: subPath and subPathExpr must stay inside the volume (relative,
 * no ".."), as Kubernetes validates them. `path` ends at the container. (podspec.c) */
void ty_check_volume_mounts(ty_schema_ctx *c, json_t *ct, ty_buf *path);
/* A container's liveness, readiness and startup probes as the API server validates them
 * (init: the container is an init container, which may have none). (podspec.c) */
void ty_check_probes(ty_schema_ctx *c, json_t *ct, ty_buf *path, bool init);

/* The rules Kubernetes applies to a pod, checked on a pod template `tmpl` (its metadata's
 * labels, volume names, containers' names, env, ports, mounts, resources); `path` ends where
 * the template's "template" member is. The errors are marked pod rules. (kubeflow.c) */
void ty_check_pod_template(ty_schema_ctx *c, json_t *tmpl, ty_buf *path);

/* Positions, tolerant of a NULL manifest. */
ty_pos ty_pos_member(const ty_schema_ctx *c, const json_t *parent, const char *key);
ty_pos ty_pos_key(const ty_schema_ctx *c, const json_t *parent, const char *key);
ty_pos ty_pos_index(const ty_schema_ctx *c, const json_t *array, size_t i);

/* Errors in Kubernetes' field.Error wording. `value` is shown as Kubernetes shows it: strings
 * quoted, numbers bare. */
void ty_fe_invalid(ty_schema_ctx *c, const char *path, ty_pos pos, const json_t *value,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void ty_fe_required(ty_schema_ctx *c, const char *path, ty_pos pos, const char *detail);
void ty_fe_forbidden(ty_schema_ctx *c, const char *path, ty_pos pos, const char *detail);
void ty_fe_duplicate(ty_schema_ctx *c, const char *path, ty_pos pos, const json_t *value);
void ty_fe_unsupported(ty_schema_ctx *c, const char *path, ty_pos pos, const json_t *value,
                       const char *const *supported, size_t n);

/* The value as Kubernetes prints it in messages; the caller frees. */
char *ty_value_repr(const json_t *v);
/* The candidate closest to `name` by edit distance (case-insensitive), or NULL when none is
 * close enough to be a likely typo. */
const char *ty_suggest(const char *name, const char *const *cands, size_t n);

/* Kubernetes name rules; each returns NULL when `s` is valid, else the reason (static). */
const char *ty_check_dns1123_label(const char *s);
const char *ty_check_dns1035_label(const char *s);
/* Every reason IsDNS1035Label gives, joined by ","; NULL when valid; the caller frees. */
char *ty_dns1035_label_reasons(const char *s);
const char *ty_check_dns1123_subdomain(const char *s);
const char *ty_check_env_name(const char *s);
const char *ty_check_qualified_name(const char *s); /* label and annotation keys */
const char *ty_check_label_value(const char *s);
/* Label keys and values, annotation keys of an ObjectMeta at `path` (restored on return). */
/* Label and annotation keys, label values, and the annotations' total size
 * (TY_ANNOTATIONS_MAX_BYTES) of the ObjectMeta `meta` at `path`. */
void ty_check_meta_labels(ty_schema_ctx *c, const json_t *meta, ty_buf *path);

/* ---- table.c: printers ---- */

struct ty_table_kind;

extern const struct ty_table_kind ty_table_pods;
extern const struct ty_table_kind ty_table_jobs; /* PyTorchJob, TFJob */
extern const struct ty_table_kind ty_table_batch_jobs; /* batch/v1 Job */
extern const struct ty_table_kind ty_table_experiments; /* Katib */
extern const struct ty_table_kind ty_table_trials;
extern const struct ty_table_kind ty_table_suggestions;
extern const struct ty_table_kind ty_table_services;
extern const struct ty_table_kind ty_table_endpoints;
extern const struct ty_table_kind ty_table_endpointslices;
extern const struct ty_table_kind ty_table_nodes;
extern const struct ty_table_kind ty_table_namespaces;
extern const struct ty_table_kind ty_table_events;
extern const struct ty_table_kind ty_table_clusterqueues;
extern const struct ty_table_kind ty_table_localqueues;
extern const struct ty_table_kind ty_table_inferenceservices; /* serving.kserve.io */
extern const struct ty_table_kind ty_table_servingruntimes;   /* and ClusterServingRuntime */
extern const struct ty_table_kind ty_table_workloads;
extern const struct ty_table_kind ty_table_workloadpriorityclasses;
extern const struct ty_table_kind ty_table_priorityclasses;
extern const struct ty_table_kind ty_table_persistentvolumes;
extern const struct ty_table_kind ty_table_persistentvolumeclaims;
extern const struct ty_table_kind ty_table_configmaps;
extern const struct ty_table_kind ty_table_secrets;
extern const struct ty_table_kind ty_table_serviceaccounts;

#endif
