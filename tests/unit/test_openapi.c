#include <criterion/criterion.h>
#include <string.h>

#include "api/openapi.h"

static const json_t *at(const json_t *o, const char *k)
{
    const json_t *v = json_object_get(o, k);
    cr_assert(v, "missing %s", k);
    return v;
}

Test(openapi, discovery_paths)
{
    json_t *d = ty_openapi_v3_paths();
    const json_t *paths = at(d, "paths");
    /* core, discovery.k8s.io, kubeflow.org (v1 and Katib's v1beta1), batch, kueue.x-k8s.io,
     * scheduling.k8s.io, and rbac.authorization.k8s.io, authorization.k8s.io,
     * authentication.k8s.io, serving.kserve.io at v1beta1 and v1alpha1, coordination.k8s.io */
    cr_assert_eq(json_object_size(paths), 13);
    cr_assert_not_null(at(paths, "apis/kubeflow.org/v1beta1"));
    cr_assert_not_null(at(paths, "apis/rbac.authorization.k8s.io/v1"));
    cr_assert_not_null(at(paths, "apis/discovery.k8s.io/v1"));
    cr_assert_not_null(at(paths, "apis/batch/v1"));
    cr_assert_not_null(at(paths, "apis/kueue.x-k8s.io/v1beta1"));
    cr_assert_not_null(at(paths, "apis/scheduling.k8s.io/v1"));
    const char *kf = json_string_value(at(at(paths, "apis/kubeflow.org/v1"), "serverRelativeURL"));
    const char *core = json_string_value(at(at(paths, "api/v1"), "serverRelativeURL"));
    char want[128];
    snprintf(want, sizeof(want), "/openapi/v3/apis/kubeflow.org/v1?hash=%s",
             ty_openapi_v3_hash("kubeflow.org/v1"));
    cr_assert_str_eq(kf, want);
    snprintf(want, sizeof(want), "/openapi/v3/api/v1?hash=%s", ty_openapi_v3_hash("v1"));
    cr_assert_str_eq(core, want);
    cr_assert_eq(strlen(ty_openapi_v3_hash("v1")), 16);
    cr_assert_str_neq(ty_openapi_v3_hash("v1"), ty_openapi_v3_hash("kubeflow.org/v1"));
    cr_assert_null(ty_openapi_v3_hash("apps/v1"));
    cr_assert_null(ty_openapi_v3_hash(NULL));
    json_decref(d);
}

Test(openapi, unknown_group)
{
    cr_assert_null(ty_openapi_v3_group("apps/v1"));
    cr_assert_null(ty_openapi_v3_group("kubeflow.org/v2"));
    cr_assert_null(ty_openapi_v3_group(""));
    cr_assert_null(ty_openapi_v3_group(NULL));
}

Test(openapi, deterministic)
{
    json_t *a = ty_openapi_v3_group("kubeflow.org/v1"), *b = ty_openapi_v3_group("kubeflow.org/v1");
    char *sa = json_dumps(a, JSON_COMPACT | JSON_SORT_KEYS);
    char *sb = json_dumps(b, JSON_COMPACT | JSON_SORT_KEYS);
    cr_assert_str_eq(sa, sb);
    free(sa);
    free(sb);
    json_decref(a);
    json_decref(b);
}

/* The schema whose x-kubernetes-group-version-kind names the kind, as kubectl explain finds
 * it. */
static const json_t *schema_for(const json_t *doc, const char *group, const char *kind,
                                const char **name)
{
    const json_t *schemas = at(at(doc, "components"), "schemas");
    const char *k;
    json_t *s;
    json_object_foreach((json_t *)schemas, k, s) {
        const json_t *gvks = json_object_get(s, "x-kubernetes-group-version-kind");
        for (size_t i = 0; i < json_array_size(gvks); i++) {
            const json_t *g = json_array_get(gvks, i);
            if (strcmp(json_string_value(json_object_get(g, "group")), group) == 0 &&
                strcmp(json_string_value(json_object_get(g, "version")), "v1") == 0 &&
                strcmp(json_string_value(json_object_get(g, "kind")), kind) == 0) {
                *name = k;
                return s;
            }
        }
    }
    return NULL;
}

Test(openapi, kubeflow_schemas)
{
    json_t *doc = ty_openapi_v3_group("kubeflow.org/v1");
    cr_assert(doc);
    cr_assert_str_eq(json_string_value(at(doc, "openapi")), "3.0.0");
    const char *name = NULL;
    const json_t *pj = schema_for(doc, "kubeflow.org", "PyTorchJob", &name);
    cr_assert(pj);
    cr_assert_str_eq(name, "org.kubeflow.v1.PyTorchJob");
    /* explain pytorchjob.spec.pytorchReplicaSpecs walks inline properties */
    const json_t *spec = at(at(pj, "properties"), "spec");
    const json_t *rs = at(at(spec, "properties"), "pytorchReplicaSpecs");
    cr_assert_str_eq(json_string_value(at(rs, "type")), "object");
    cr_assert(json_string_value(at(rs, "description")));
    cr_assert(json_object_get(at(rs, "additionalProperties"), "properties"));
    cr_assert(schema_for(doc, "kubeflow.org", "TFJob", &name));
    cr_assert_str_eq(name, "org.kubeflow.v1.TFJob");
    cr_assert(schema_for(doc, "kubeflow.org", "PyTorchJobList", &name));
    cr_assert_str_eq(name, "org.kubeflow.v1.PyTorchJobList");
    /* every $ref resolves inside the document */
    char *s = json_dumps(doc, JSON_COMPACT);
    const json_t *schemas = at(at(doc, "components"), "schemas");
    for (const char *p = s; (p = strstr(p, "\"$ref\":\"#/components/schemas/")); ) {
        p += strlen("\"$ref\":\"#/components/schemas/");
        const char *end = strchr(p, '"');
        char ref[256];
        snprintf(ref, sizeof(ref), "%.*s", (int)(end - p), p);
        cr_assert(json_object_get(schemas, ref), "dangling $ref %s", ref);
    }
    free(s);
    json_decref(doc);
}

/* The operation under `path`, `method`. */
static const json_t *op(const json_t *doc, const char *path, const char *method)
{
    const json_t *item = json_object_get(at(doc, "paths"), path);
    cr_assert(item, "no path %s", path);
    const json_t *o = json_object_get(item, method);
    cr_assert(o, "no %s %s", method, path);
    return o;
}

static void assert_gvk(const json_t *o, const char *group, const char *kind)
{
    const json_t *g = at(o, "x-kubernetes-group-version-kind");
    cr_assert_str_eq(json_string_value(at(g, "group")), group);
    cr_assert_str_eq(json_string_value(at(g, "version")), "v1");
    cr_assert_str_eq(json_string_value(at(g, "kind")), kind);
}

static bool has_param(const json_t *o, const char *name)
{
    const json_t *ps = json_object_get(o, "parameters");
    for (size_t i = 0; i < json_array_size(ps); i++)
        if (strcmp(json_string_value(json_object_get(json_array_get(ps, i), "name")), name) == 0)
            return strcmp(json_string_value(json_object_get(json_array_get(ps, i), "in")),
                          "query") == 0;
    return false;
}

Test(openapi, kubeflow_paths)
{
    json_t *doc = ty_openapi_v3_group("kubeflow.org/v1");
    const char *coll = "/apis/kubeflow.org/v1/namespaces/{namespace}/pytorchjobs";
    const json_t *o = op(doc, coll, "get");
    assert_gvk(o, "kubeflow.org", "PyTorchJob");
    cr_assert_str_eq(json_string_value(at(o, "x-kubernetes-action")), "list");
    cr_assert(has_param(o, "labelSelector"));
    cr_assert_str_eq(json_string_value(at(o, "operationId")),
                     "listKubeflowOrgV1NamespacedPyTorchJob");
    assert_gvk(op(doc, coll, "post"), "kubeflow.org", "PyTorchJob");
    o = op(doc, "/apis/kubeflow.org/v1/namespaces/{namespace}/pytorchjobs/{name}", "patch");
    assert_gvk(o, "kubeflow.org", "PyTorchJob");
    /* kubectl apply checks this before it asks for server-side field validation */
    cr_assert(has_param(o, "fieldValidation"));
    const json_t *body = at(at(o, "requestBody"), "content");
    cr_assert(json_object_get(body, "application/merge-patch+json"));
    cr_assert_null(json_object_get(body, "application/strategic-merge-patch+json"));
    op(doc, "/apis/kubeflow.org/v1/namespaces/{namespace}/pytorchjobs/{name}", "delete");
    op(doc, "/apis/kubeflow.org/v1/namespaces/{namespace}/pytorchjobs/{name}/status", "patch");
    assert_gvk(op(doc, "/apis/kubeflow.org/v1/tfjobs", "get"), "kubeflow.org", "TFJob");
    cr_assert_str_eq(json_string_value(at(op(doc, coll, "get"), "operationId")),
                     "listKubeflowOrgV1NamespacedPyTorchJob");
    json_decref(doc);
}

Test(openapi, core)
{
    json_t *doc = ty_openapi_v3_group("v1");
    cr_assert(doc);
    static const char *const kinds[] = {"Pod", "Service", "Node", "Namespace", "Event"};
    for (size_t i = 0; i < 5; i++) {
        const char *name = NULL;
        const json_t *s = schema_for(doc, "", kinds[i], &name);
        cr_assert(s, "%s", kinds[i]);
        char want[64];
        snprintf(want, sizeof(want), "io.k8s.api.core.v1.%s", kinds[i]);
        cr_assert_str_eq(name, want);
        cr_assert(json_is_true(at(s, "x-kubernetes-preserve-unknown-fields")));
        cr_assert_str_eq(json_string_value(at(s, "type")), "object");
        cr_assert(strlen(json_string_value(at(s, "description"))) > 10);
    }
    assert_gvk(op(doc, "/api/v1/namespaces/{namespace}/pods/{name}", "get"), "", "Pod");
    assert_gvk(op(doc, "/api/v1/nodes/{name}", "patch"), "", "Node");
    assert_gvk(op(doc, "/api/v1/namespaces", "get"), "", "Namespace");
    assert_gvk(op(doc, "/api/v1/pods", "get"), "", "Pod");
    cr_assert_null(json_object_get(at(doc, "paths"), "/api/v1/namespaces/{namespace}/nodes"));
    cr_assert_null(json_object_get(at(doc, "paths"),
                                   "/api/v1/namespaces/{namespace}/events/{name}/status"));
    const json_t *body = at(at(op(doc, "/api/v1/namespaces/{namespace}/pods/{name}", "patch"),
                               "requestBody"), "content");
    cr_assert(json_object_get(body, "application/strategic-merge-patch+json"));
    json_decref(doc);
}
