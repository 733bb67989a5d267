/* OpenAPI v3 documents for /openapi/v3 (openapi.h). */
#include "api/openapi.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "base/buf.h"
#include "base/hash.h"
#include "base/mem.h"

/* One kind as the document describes it. */
typedef struct okind {
    const char *group;    /* "" for core */
    const char *version;
    const char *kind;
    const char *resource;
    bool namespaced;
    bool status;          /* has a status subresource */
    bool builtin;         /* a Kubernetes kind: strategic merge patches apply */
    const char *description;
    const json_t *schema; /* NULL: an object that preserves unknown fields */
} okind;

/* A Kubernetes group: "scheduling.k8s.io", not "kueue.x-k8s.io". */
static bool k8s_group(const char *group)
{
    size_t n = strlen(group);
    return n > 7 && strcmp(group + n - 7, ".k8s.io") == 0;
}

/* "kubeflow.org" -> "org.kubeflow"; "" -> "io.k8s.api.core" (the core group's prefix);
 * "scheduling.k8s.io" -> "io.k8s.api.scheduling", as Kubernetes names its own kinds. */
static void schema_prefix(ty_buf *b, const char *group, const char *version)
{
    if (!*group) {
        ty_buf_addf(b, "io.k8s.api.core.%s.", version);
        return;
    }
    if (k8s_group(group)) {
        ty_buf_addf(b, "io.k8s.api.%.*s.%s.", (int)strcspn(group, "."), group, version);
        return;
    }
    const char *end = group + strlen(group);
    while (end > group) {
        const char *dot = end;
        while (dot > group && dot[-1] != '.')
            dot--;
        ty_buf_add(b, dot, (size_t)(end - dot));
        ty_buf_addc(b, '.');
        end = dot > group ? dot - 1 : group;
    }
    ty_buf_addf(b, "%s.", version);
}

static char *schema_name(const okind *k, const char *suffix)
{
    TY_AUTOBUF ty_buf b = TY_BUF_INIT;
    schema_prefix(&b, k->group, k->version);
    ty_buf_addf(&b, "%s%s", k->kind, suffix);
    return ty_buf_steal(&b);
}

static char *schema_ref(const okind *k, const char *suffix)
{
    TY_AUTOFREE char *n = schema_name(k, suffix);
    return ty_asprintf("#/components/schemas/%s", n);
}

static json_t *gvk(const okind *k, const char *suffix)
{
    TY_AUTOFREE char *kind = ty_asprintf("%s%s", k->kind, suffix);
    return json_pack("{s:s, s:s, s:s}", "group", k->group, "version", k->version, "kind", kind);
}

static json_t *string_prop(const char *description)
{
    return json_pack("{s:s, s:s}", "description", description, "type", "string");
}

static json_t *kind_schema(const okind *k)
{
    json_t *s;
    if (k->schema) {
        s = json_deep_copy(k->schema);
    } else {
        s = json_pack("{s:s, s:s, s:b, s:{s:o, s:o, s:{s:s, s:s, s:b}, s:{s:s, s:s, s:b}, "
                      "s:{s:s, s:s, s:b}}}",
                      "description", k->description, "type", "object",
                      "x-kubernetes-preserve-unknown-fields", 1, "properties", "apiVersion",
                      string_prop("Versioned schema of this object."), "kind",
                      string_prop("Kind of this object."), "metadata", "description",
                      "Standard object metadata: name, namespace, labels, annotations, uid, "
                      "resourceVersion...", "type", "object",
                      "x-kubernetes-preserve-unknown-fields", 1, "spec", "description",
                      "Desired state of the object.", "type", "object",
                      "x-kubernetes-preserve-unknown-fields", 1, "status", "description",
                      "Observed state of the object.", "type", "object",
                      "x-kubernetes-preserve-unknown-fields", 1);
        /* Events carry their data at the top level, not under spec/status. */
        if (strcmp(k->kind, "Event") == 0) {
            json_t *props = json_object_get(s, "properties");
            json_object_del(props, "spec");
            json_object_del(props, "status");
        }
    }
    json_object_set_new(s, "x-kubernetes-group-version-kind", json_pack("[o]", gvk(k, "")));
    return s;
}

static json_t *list_schema(const okind *k)
{
    TY_AUTOFREE char *ref = schema_ref(k, "");
    TY_AUTOFREE char *desc = ty_asprintf("A list of %s.", k->kind);
    return json_pack("{s:s, s:s, s:{s:o, s:o, s:{s:s, s:s, s:b}, s:{s:s, s:s, s:{s:s}}}, "
                     "s:[s], s:[o]}",
                     "description", desc, "type", "object", "properties", "apiVersion",
                     string_prop("Versioned schema of this object."), "kind",
                     string_prop("Kind of this object."), "metadata", "description",
                     "Standard list metadata: resourceVersion, continue.", "type", "object",
                     "x-kubernetes-preserve-unknown-fields", 1, "items", "description",
                     "The objects.", "type", "array", "items", "$ref", ref, "required", "items",
                     "x-kubernetes-group-version-kind", gvk(k, "List"));
}

/* ---- paths ---- */

static json_t *param(const char *name, const char *in, const char *description, const char *type)
{
    json_t *p = json_pack("{s:s, s:s, s:s, s:{s:s}}", "name", name, "in", in, "description",
                          description, "schema", "type", type);
    if (strcmp(in, "path") == 0)
        json_object_set_new(p, "required", json_true());
    else
        json_object_set_new(p, "uniqueItems", json_true());
    return p;
}

static void add_write_params(json_t *params, bool patch)
{
    json_array_append_new(params, param("dryRun", "query", "When present (All), the request is "
                                        "validated but not persisted.", "string"));
    json_array_append_new(params, param("fieldManager", "query", "The name of the actor making "
                                        "the change.", "string"));
    json_array_append_new(params, param("fieldValidation", "query", "How unknown or duplicate "
                                        "fields are treated: Ignore, Warn or Strict.", "string"));
    if (patch)
        json_array_append_new(params, param("force", "query", "Force an apply patch over "
                                            "conflicts.", "boolean"));
}

static void add_list_params(json_t *params)
{
    static const struct { const char *name, *desc, *type; } ps[] = {
        {"labelSelector", "Only objects whose labels match.", "string"},
        {"fieldSelector", "Only objects whose fields match.", "string"},
        {"limit", "At most this many objects per page.", "integer"},
        {"continue", "The token of the next page.", "string"},
        {"resourceVersion", "Which version of the collection to read or watch from.", "string"},
        {"resourceVersionMatch", "How resourceVersion applies.", "string"},
        {"watch", "Stream changes instead of listing.", "boolean"},
        {"allowWatchBookmarks", "Ask for BOOKMARK events while watching.", "boolean"},
        {"sendInitialEvents", "Start a watch with the current objects.", "boolean"},
        {"timeoutSeconds", "End the list or watch after this long.", "integer"},
    };
    for (size_t i = 0; i < TY_ARRAY_LEN(ps); i++)
        json_array_append_new(params, param(ps[i].name, "query", ps[i].desc, ps[i].type));
}

static json_t *content(const char *type, const char *ref)
{
    json_t *c = json_object();
    json_object_set_new(c, type, json_pack("{s:{s:s}}", "schema", "$ref", ref));
    return c;
}

/* The operations' tag, as Kubernetes names it: "core_v1", "kubeflowOrg_v1",
 * "kueueXK8sIo_v1beta1", "scheduling_v1". */
static char *tag(const okind *k)
{
    TY_AUTOBUF ty_buf b = TY_BUF_INIT;
    if (!*k->group) {
        ty_buf_adds(&b, "core");
    } else {
        size_t n = k8s_group(k->group) ? strcspn(k->group, ".") : strlen(k->group);
        bool up = false;
        for (size_t i = 0; i < n; i++) {
            char ch = k->group[i];
            if (ch == '.' || ch == '-') {
                up = true;
                continue;
            }
            ty_buf_addc(&b, up ? (char)toupper((unsigned char)ch) : ch);
            up = false;
        }
    }
    ty_buf_addf(&b, "_%s", k->version);
    return ty_buf_steal(&b);
}

static json_t *operation(const okind *k, const char *action, const char *op_id,
                         const char *description, const char *resp_ref, const char *body_ref,
                         const char *kind_suffix)
{
    json_t *params = json_array();
    TY_AUTOFREE char *t = tag(k);
    json_t *o = json_pack("{s:[s], s:s, s:s, s:{s:{s:s, s:o}}, s:s, s:o}", "tags",
                          t, "description", description,
                          "operationId", op_id, "responses", "200", "description", "OK",
                          "content", content("application/json", resp_ref),
                          "x-kubernetes-action", action, "x-kubernetes-group-version-kind",
                          gvk(k, kind_suffix));
    if (strcmp(action, "list") == 0)
        add_list_params(params);
    if (strcmp(action, "post") == 0 || strcmp(action, "put") == 0)
        add_write_params(params, false);
    if (strcmp(action, "patch") == 0)
        add_write_params(params, true);
    if (strcmp(action, "delete") == 0) {
        json_array_append_new(params, param("gracePeriodSeconds", "query", "Seconds to wait "
                                            "before the object is deleted.", "integer"));
        json_array_append_new(params, param("propagationPolicy", "query", "Orphan, Background "
                                            "or Foreground deletion of dependents.", "string"));
    }
    json_object_set_new(o, "parameters", params);
    if (body_ref) {
        json_t *body = json_object();
        if (strcmp(action, "patch") == 0) {
            /* Strategic merge patch exists for the built-in kinds only. */
            static const char *const types[] = {
                "application/json-patch+json", "application/merge-patch+json",
                "application/strategic-merge-patch+json", "application/apply-patch+yaml"};
            for (size_t i = 0; i < TY_ARRAY_LEN(types); i++)
                if (k->builtin || i != 2)
                    json_object_set_new(body, types[i],
                                        json_pack("{s:{s:s}}", "schema", "type", "object"));
        } else {
            json_object_set_new(body, "application/json",
                                json_pack("{s:{s:s}}", "schema", "$ref", body_ref));
        }
        json_object_set_new(o, "requestBody", json_pack("{s:o, s:b}", "content", body,
                                                        "required", 1));
    }
    return o;
}

static char *op_id(const char *verb, const okind *k, const char *scope, const char *suffix)
{
    /* listKubeflowOrgV1NamespacedPyTorchJob, readCoreV1NamespacedPodStatus */
    TY_AUTOBUF ty_buf b = TY_BUF_INIT;
    ty_buf_adds(&b, verb);
    if (!*k->group) {
        ty_buf_adds(&b, "Core");
    } else {
        bool up = true;
        for (const char *c = k->group; *c; c++) {
            if (*c == '.') {
                up = true;
                continue;
            }
            ty_buf_addc(&b, up ? (char)toupper((unsigned char)*c) : *c);
            up = false;
        }
    }
    ty_buf_addc(&b, (char)toupper((unsigned char)k->version[0]));
    ty_buf_adds(&b, k->version + 1);
    ty_buf_addf(&b, "%s%s%s", scope, k->kind, suffix);
    return ty_buf_steal(&b);
}

static void add_paths(json_t *paths, const okind *k)
{
    TY_AUTOFREE char *ref = schema_ref(k, "");
    TY_AUTOFREE char *list_ref = schema_ref(k, "List");
    const char *status_ref = "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.Status";
    TY_AUTOBUF ty_buf base = TY_BUF_INIT;
    if (*k->group)
        ty_buf_addf(&base, "/apis/%s/%s", k->group, k->version);
    else
        ty_buf_addf(&base, "/api/%s", k->version);
    const char *scope = k->namespaced ? "Namespaced" : "";
    TY_AUTOFREE char *coll = k->namespaced
                                 ? ty_asprintf("%s/namespaces/{namespace}/%s", base.data,
                                               k->resource)
                                 : ty_asprintf("%s/%s", base.data, k->resource);

    json_t *ns_param = param("namespace", "path", "The object's namespace.", "string");
    json_t *name_param = param("name", "path", "The object's name.", "string");

    /* collection */
    json_t *item = json_object();
    TY_AUTOFREE char *id = op_id("list", k, scope, "");
    json_object_set_new(item, "get", operation(k, "list", id, "List or watch objects.", list_ref,
                                               NULL, ""));
    free(id);
    id = op_id("create", k, scope, "");
    json_object_set_new(item, "post", operation(k, "post", id, "Create an object.", ref, ref, ""));
    free(id);
    id = op_id("deleteCollection", k, scope, "");
    json_object_set_new(item, "delete", operation(k, "deletecollection", id,
                                                  "Delete a collection of objects.", status_ref,
                                                  NULL, ""));
    free(id);
    if (k->namespaced)
        json_object_set_new(item, "parameters", json_pack("[O]", ns_param));
    json_object_set_new(paths, coll, item);

    /* one object, and its status */
    for (int status = 0; status <= (k->status ? 1 : 0); status++) {
        const char *sfx = status ? "Status" : "";
        TY_AUTOFREE char *path = ty_asprintf("%s/{name}%s", coll, status ? "/status" : "");
        item = json_object();
        id = op_id("read", k, scope, sfx);
        json_object_set_new(item, "get", operation(k, "get", id, status ? "Read the object's "
                                                   "status." : "Read an object.", ref, NULL, ""));
        free(id);
        id = op_id("replace", k, scope, sfx);
        json_object_set_new(item, "put", operation(k, "put", id, status ? "Replace the object's "
                                                   "status." : "Replace an object.", ref, ref,
                                                   ""));
        free(id);
        id = op_id("patch", k, scope, sfx);
        json_object_set_new(item, "patch", operation(k, "patch", id, status ? "Patch the "
                                                     "object's status." : "Patch an object.",
                                                     ref, ref, ""));
        free(id);
        if (!status) {
            id = op_id("delete", k, scope, "");
            json_object_set_new(item, "delete", operation(k, "delete", id, "Delete an object.",
                                                          ref, NULL, ""));
            free(id);
        }
        id = NULL;
        json_object_set_new(item, "parameters",
                            k->namespaced ? json_pack("[O, O]", name_param, ns_param)
                                          : json_pack("[O]", name_param));
        json_object_set_new(paths, path, item);
    }

    /* namespaced kinds: the list across every namespace */
    if (k->namespaced) {
        TY_AUTOFREE char *all = ty_asprintf("%s/%s", base.data, k->resource);
        item = json_object();
        id = op_id("list", k, "", "ForAllNamespaces");
        json_object_set_new(item, "get", operation(k, "list", id, "List or watch objects of "
                                                   "every namespace.", list_ref, NULL, ""));
        json_object_set_new(paths, all, item);
    }
    json_decref(ns_param);
    json_decref(name_param);
}

/* Shared meta.k8s.io schemas the paths refer to. */
static void add_meta_schemas(json_t *schemas)
{
    json_object_set_new(
        schemas, "io.k8s.apimachinery.pkg.apis.meta.v1.Status",
        json_pack("{s:s, s:s, s:b, s:[{s:s, s:s, s:s}]}", "description",
                  "The result of an operation that returns no object: a deletion, or an error.",
                  "type", "object", "x-kubernetes-preserve-unknown-fields", 1,
                  "x-kubernetes-group-version-kind", "group", "", "version", "v1", "kind",
                  "Status"));
}

/* The kinds of a group version, in the registry's order, or 0 when it is not ours. */
static size_t kinds_of(const char *gv, okind *out, size_t cap)
{
    size_t n = 0;
    for (const ty_kind_info *const *ki = ty_kinds(); *ki && n < cap; ki++) {
        const ty_kind_info *k = *ki;
        TY_AUTOFREE char *kgv = *k->group ? ty_asprintf("%s/%s", k->group, k->version)
                                          : ty_strdup(k->version);
        if (strcmp(kgv, gv) != 0)
            continue;
        const json_t *s = ty_api_schema(k);
        out[n++] = (okind){k->group, k->version, k->kind, k->resource, k->namespaced,
                           k->has_status, k->builtin,
                           s ? json_string_value(json_object_get(s, "description"))
                             : k->description, s};
    }
    return n;
}

json_t *ty_openapi_v3_group(const char *group_version)
{
    okind kinds[16];
    size_t n = group_version ? kinds_of(group_version, kinds, TY_ARRAY_LEN(kinds)) : 0;
    if (!n)
        return NULL;
    json_t *schemas = json_object();
    json_t *paths = json_object();
    add_meta_schemas(schemas);
    for (size_t i = 0; i < n; i++) {
        TY_AUTOFREE char *name = schema_name(&kinds[i], "");
        TY_AUTOFREE char *list = schema_name(&kinds[i], "List");
        json_object_set_new(schemas, name, kind_schema(&kinds[i]));
        json_object_set_new(schemas, list, list_schema(&kinds[i]));
        add_paths(paths, &kinds[i]);
    }
    return json_pack("{s:s, s:{s:s, s:s}, s:o, s:{s:o}}", "openapi", "3.0.0", "info", "title",
                     "trainyard", "version", group_version, "paths", paths, "components",
                     "schemas", schemas);
}

/* FNV-1a 64 of the canonical (compact, sorted) serialisation: a cache key, not a security
 * measure. */
static void hash_doc(const char *gv, char *out, size_t cap)
{
    json_t *doc = ty_openapi_v3_group(gv);
    char *s = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
    uint64_t h = ty_fnv1a_str(TY_FNV1A_BASIS, s);
    snprintf(out, cap, "%016llX", (unsigned long long)h);
    free(s);
    json_decref(doc);
}

/* The group versions served: "v1" first, then each of ty_kinds()' once, in their order.
 * Returns how many were written to `out`. */
#define MAX_GVS 16
static size_t group_versions(char out[][64])
{
    size_t n = 0;
    snprintf(out[n++], 64, "v1");
    for (const ty_kind_info *const *ki = ty_kinds(); *ki && n < MAX_GVS; ki++) {
        char gv[64];
        if (*(*ki)->group)
            snprintf(gv, sizeof gv, "%s/%s", (*ki)->group, (*ki)->version);
        else
            snprintf(gv, sizeof gv, "%s", (*ki)->version);
        bool seen = false;
        for (size_t i = 0; i < n; i++)
            seen = seen || strcmp(out[i], gv) == 0;
        if (!seen)
            memcpy(out[n++], gv, sizeof gv);
    }
    return n;
}

const char *ty_openapi_v3_hash(const char *group_version)
{
    /* The documents are fixed at build time, so each hash is computed once. */
    static char gvs[MAX_GVS][64], hashes[MAX_GVS][17];
    static size_t ngv;
    if (!ngv)
        ngv = group_versions(gvs);
    for (size_t i = 0; group_version && i < ngv; i++) {
        if (strcmp(gvs[i], group_version) != 0)
            continue;
        if (!hashes[i][0])
            hash_doc(group_version, hashes[i], 17);
        return hashes[i];
    }
    return NULL;
}

json_t *ty_openapi_v3_paths(void)
{
    char gvs[MAX_GVS][64];
    size_t n = group_versions(gvs);
    json_t *paths = json_object();
    for (size_t i = 0; i < n; i++) {
        TY_AUTOFREE char *key = strchr(gvs[i], '/') ? ty_asprintf("apis/%s", gvs[i])
                                                    : ty_asprintf("api/%s", gvs[i]);
        TY_AUTOFREE char *url = ty_asprintf("/openapi/v3/%s?hash=%s", key,
                                            ty_openapi_v3_hash(gvs[i]));
        json_object_set_new(paths, key, json_pack("{s:s}", "serverRelativeURL", url));
    }
    return json_pack("{s:o}", "paths", paths);
}
