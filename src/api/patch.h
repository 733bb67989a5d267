/* Patches, as the Kubernetes API server applies them.
 *
 * - JSON merge patch (RFC 7386, `application/merge-patch+json`): what kubectl uses for custom
 *   resources (kubectl apply, patch --type merge).
 * - JSON patch (RFC 6902, `application/json-patch+json`): add, remove, replace, move, copy,
 *   test with JSON pointers.
 * - Strategic merge patch (`application/strategic-merge-patch+json`): for built-in kinds only
 *   (the registry's `builtin` kinds: pods, services, nodes, namespaces, events,
 *   priorityclasses, persistentvolumes, persistentvolumeclaims): lists with a patch merge key
 *   (containers and initContainers by name, env by name, ports by containerPort, volumes and
 *   volumeMounts by name/mountPath, conditions by type, ...) merge element by element;
 *   `$patch: delete|replace`, `$retainKeys`, `$deleteFromPrimitiveList/<field>` and
 *   `$setElementOrder/<field>` directives as Kubernetes documents them. For custom resources
 *   (pytorchjobs, tfjobs, the Kueue kinds) it fails with code 415, as the API server answers
 *   kubectl (which then falls back to a merge patch).
 *
 * Each returns a new object in *out (the target is not modified) or -1 with a message and
 * err->code (422 for a patch that cannot apply, 400 for a JSON patch document that is not a
 * list of well-formed operations, 415 for the case above).
 *
 * Strategic merge: the patch metadata (merge keys, primitive sets) is each kind's registry
 * entry's (ty_kind_info.merge_keys) plus metadata's lists (patch.c); a list not in them is
 * replaced whole, as for a field without a patch strategy. Merged lists are ordered as the
 * API server orders them: the patch's elements (or a `$setElementOrder` list's) in that order,
 * interleaved with the elements only the live object has by their live positions, so new
 * elements come first. A map patched with `$patch: delete` becomes empty, as in the API
 * server. */
#ifndef TY_API_PATCH_H
#define TY_API_PATCH_H

#include <jansson.h>

#include "base/error.h"

int ty_patch_merge(const json_t *target, const json_t *patch, json_t **out, ty_error *err);
int ty_patch_json(const json_t *target, const json_t *ops, json_t **out, ty_error *err);
int ty_patch_strategic(const char *resource, const json_t *target, const json_t *patch,
                       json_t **out, ty_error *err);

/* The merge key of the list at `path` (field names from the root, list elements skipped:
 * "spec.containers.env") of `resource` as the patch metadata above says: a field name, ""
 * for a list of primitives merged as a set, NULL for a list replaced whole.
 * Server-side apply uses it. */
const char *ty_patch_list_key(const char *resource, const char *path);

#endif
