/* CRDs from the registry and the embedded schemas (crd.h). */
#include "api/crd.h"

#include <string.h>

#include "api/api.h"
#include "api/table.h"
#include "base/buf.h"
#include "base/mem.h"

bool ty_crd_wanted(const ty_kind_info *k)
{
    return !k->builtin && *k->group && ty_api_schema(k) != NULL;
}

static int fail_at(ty_error *err, const ty_buf *path, const char *what)
{
    return ty_fail(err, "schema %s: %s", path->len ? path->data : "(root)", what);
}

static bool flag(const json_t *node, const char *key)
{
    return json_is_true(json_object_get(node, key));
}

static int walk(json_t *node, ty_buf *path, bool root, ty_error *err);

/* Walks member `key`'s schema, the path grown by `suffix` for the messages. */
static int walk_child(json_t *child, ty_buf *path, const char *suffix, ty_error *err)
{
    size_t len = path->len;
    ty_buf_adds(path, suffix);
    int rc = walk(child, path, false, err);
    path->len = len;
    if (path->data)
        path->data[len] = '\0';
    return rc;
}

static int walk(json_t *node, ty_buf *path, bool root, ty_error *err)
{
    if (!json_is_object(node))
        return fail_at(err, path, "not a schema object");
    static const char *const junctors[] = {"allOf", "anyOf", "oneOf", "not"};
    for (size_t i = 0; i < TY_ARRAY_LEN(junctors); i++)
        if (json_object_get(node, junctors[i]))
            return fail_at(err, path, "allOf/anyOf/oneOf/not cannot be made structural here");
    if (json_object_get(node, "$ref"))
        return fail_at(err, path, "a $ref is left (inline it first)");
    /* OpenAPI's own extension; apiextensions' JSONSchemaProps has no such field. */
    json_object_del(node, "x-kubernetes-group-version-kind");
    /* apiextensions accepts these only as true. */
    if (json_is_false(json_object_get(node, "x-kubernetes-preserve-unknown-fields")))
        json_object_del(node, "x-kubernetes-preserve-unknown-fields");
    if (json_is_false(json_object_get(node, "x-kubernetes-int-or-string")))
        json_object_del(node, "x-kubernetes-int-or-string");
    /* v1 rejects uniqueItems: true (its check is quadratic); the list-type extensions say it. */
    json_object_del(node, "uniqueItems");

    json_t *props = json_object_get(node, "properties");
    json_t *addl = json_object_get(node, "additionalProperties");
    if (json_is_boolean(addl)) {
        /* `true` (anything goes) is what preserve-unknown-fields says structurally; `false`
         * is the default (unknown fields are pruned) and v1 refuses it beside properties. */
        if (json_is_true(addl))
            json_object_set_new(node, "x-kubernetes-preserve-unknown-fields", json_true());
        json_object_del(node, "additionalProperties");
        addl = NULL;
    }
    if (addl && props)
        return fail_at(err, path, "properties and an additionalProperties schema together");

    bool int_or_string = flag(node, "x-kubernetes-int-or-string");
    bool preserve = flag(node, "x-kubernetes-preserve-unknown-fields");
    json_t *items = json_object_get(node, "items");
    if (int_or_string) {
        /* The API server requires int-or-string nodes to have no type of their own. */
        json_object_del(node, "type");
    } else if (!json_is_string(json_object_get(node, "type"))) {
        if (props || addl)
            json_object_set_new(node, "type", json_string("object"));
        else if (items)
            json_object_set_new(node, "type", json_string("array"));
        else if (!preserve)
            return fail_at(err, path, "no type");
    }
    if (root) {
        const char *type = json_string_value(json_object_get(node, "type"));
        if (!type || strcmp(type, "object") != 0)
            return fail_at(err, path, "the root must be an object");
        /* Only name and generateName may be restricted under the root's metadata; the API
         * server validates ObjectMeta itself. */
        if (props && json_object_get(props, "metadata"))
            json_object_set_new(props, "metadata", json_pack("{s:s}", "type", "object"));
    }

    const char *key;
    json_t *child;
    json_object_foreach(props, key, child) {
        if (root && strcmp(key, "metadata") == 0)
            continue;
        TY_AUTOFREE char *sfx = ty_asprintf(".%s", key);
        if (walk_child(child, path, sfx, err) < 0)
            return -1;
    }
    if (addl && walk_child(addl, path, ".additionalProperties", err) < 0)
        return -1;
    if (items) {
        if (!json_is_object(items))
            return fail_at(err, path, "tuple items cannot be made structural");
        if (walk_child(items, path, "[*]", err) < 0)
            return -1;
    }
    return 0;
}

int ty_crd_structural(json_t *schema, ty_error *err)
{
    TY_AUTOBUF ty_buf path = TY_BUF_INIT;
    return walk(schema, &path, true, err);
}

/* "flavor,flavors,rf" -> ["flavor", "flavors", "rf"] */
static json_t *split_names(const char *list)
{
    json_t *out = json_array();
    while (list && *list) {
        size_t n = strcspn(list, ",");
        if (n)
            json_array_append_new(out, json_stringn(list, n));
        list += n + (list[n] == ',');
    }
    return out;
}

json_t *ty_crd_build(const ty_kind_info *k, ty_error *err)
{
    if (!ty_crd_wanted(k)) {
        ty_fail(err, "%s%s%s: a built-in kind, served without a CRD", *k->group ? k->group : "",
                *k->group ? "/" : "", k->kind);
        return NULL;
    }
    json_t *schema = json_deep_copy(ty_api_schema(k));
    if (ty_crd_structural(schema, err) < 0) {
        ty_error_wrap(err, "%s/%s %s", k->group, k->version, k->kind);
        json_decref(schema);
        return NULL;
    }
    TY_AUTOFREE char *name = ty_asprintf("%s.%s", k->resource, k->group);
    TY_AUTOFREE char *list_kind = ty_asprintf("%sList", k->kind);
    json_t *names = json_pack("{s:s, s:s, s:s, s:s}", "kind", k->kind, "listKind", list_kind,
                              "plural", k->resource, "singular", k->singular);
    json_t *shorts = split_names(k->short_names);
    if (json_array_size(shorts))
        json_object_set(names, "shortNames", shorts);
    json_decref(shorts);
    if (k->in_all)
        json_object_set_new(names, "categories", json_pack("[s]", "all"));

    json_t *version = json_pack("{s:s, s:b, s:b, s:{s:o}}", "name", k->version, "served", 1,
                                "storage", 1, "schema", "openAPIV3Schema", schema);
    if (k->has_status)
        json_object_set_new(version, "subresources", json_pack("{s:{}}", "status"));
    json_t *cols = ty_table_crd_columns(k);
    if (json_array_size(cols))
        json_object_set(version, "additionalPrinterColumns", cols);
    json_decref(cols);

    return json_pack("{s:s, s:s, s:{s:s, s:{s:s}}, s:{s:s, s:o, s:s, s:[o]}}", "apiVersion",
                     "apiextensions.k8s.io/v1", "kind", "CustomResourceDefinition", "metadata",
                     "name", name, "labels", "app.kubernetes.io/part-of", "trainyard", "spec",
                     "group", k->group, "names", names, "scope",
                     k->namespaced ? "Namespaced" : "Cluster", "versions", version);
}
