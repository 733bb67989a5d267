/* Server-side apply and managed fields, as the Kubernetes API server does them (the pure part:
 * no store, no HTTP).
 *
 * Field sets are kept in Kubernetes' FieldsV1 form, as JSON: {"f:spec": {"f:replicas": {}}},
 * "k:{\"name\":\"pytorch\"}" for an element of a list merged by key (with "." when the element
 * itself is in the set), "v:\"x\"" for a value of a list merged as a set; {} is a field that
 * is a leaf of the set. A list is merged by key where src/api/patch.c knows a merge key for the
 * resource (pods' containers by name, ...; pod templates inside any kind, e.g. a PyTorchJob's
 * replicas, merge as pods do; a Workload's podSets by name), as a set for lists of primitives
 * with a set strategy (finalizers), and is atomic otherwise. apiVersion, kind, status and the
 * metadata the server manages (name, namespace, uid, resourceVersion, generation, timestamps,
 * managedFields) belong to no field set.
 *
 * metadata.managedFields entries are {manager, operation: Apply|Update, apiVersion, time,
 * fieldsType: FieldsV1, fieldsV1}; an entry whose set becomes empty is dropped.
 *
 * Ownership: every function returns new values (the arguments are not modified unless said). */
#ifndef TY_API_APPLY_H
#define TY_API_APPLY_H

#include <jansson.h>
#include <stdbool.h>

#include "base/error.h"

/* The field set (FieldsV1) of `obj` for `resource` (plural, "pytorchjobs"). */
json_t *ty_apply_fieldset(const char *resource, const json_t *obj);

typedef struct ty_apply_req {
    const char *resource;    /* plural resource name */
    const char *api_version; /* "kubeflow.org/v1": recorded in the entry, named in conflicts */
    const char *manager;     /* fieldManager */
    bool force;              /* take the fields other managers own instead of a conflict */
    const char *now;         /* RFC 3339 time for the entry */
} ty_apply_req;

/* Applies `config` (the manager's full intent) to `live` (NULL: the object does not exist;
 * *out is then the config with its managedFields). Fields the config sets are set; fields
 * the manager applied before and leaves out now are removed unless another manager owns
 * them; keyed lists merge element by element, atomic lists and scalars are replaced.
 * A field the config sets to a value different from the live one that another manager owns
 * is a conflict unless `force` (which moves it to this manager): returns -1 with err->code
 * 409, err->msg as the API server words it ("Apply failed with 1 conflict: conflict with
 * \"m\" using kubeflow.org/v1: .spec.x"), and *conflicts (when given) a new array of
 * {manager, field, message} for the Status causes. Returns 0 and the merged object in *out
 * (live's other fields, status included, kept); its managedFields entry for the manager
 * keeps its time when its set did not change, so an apply that changes nothing gives an
 * object equal to `live`. */
int ty_apply(const ty_apply_req *req, const json_t *live, const json_t *config, json_t **out,
             json_t **conflicts, ty_error *err);

/* Records an ordinary write (create, update, patch) by req->manager in obj's
 * metadata.managedFields, in place: the fields it changed (set or added compared with `live`,
 * NULL on create) become its Update entry's and leave every other entry; fields it removed
 * leave every entry. obj's own managedFields, when it carries them, are the starting point
 * (a client may reset them), else live's. */
void ty_apply_record_update(const ty_apply_req *req, const json_t *live, json_t *obj);

#endif
