/* api/crd (CRDs from the registry, structural schemas) and api/emit (YAML text that reads
 * back as the same values). */
#include <criterion/criterion.h>
#include <string.h>

#include "api/api.h"
#include "api/crd.h"
#include "api/emit.h"
#include "api/manifest.h"

static json_t *parse(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, 0, &e);
    cr_assert(v, "%s", e.text);
    return v;
}

static const char *structural_error(const char *schema_text, json_t **out)
{
    static char msg[256];
    json_t *s = parse(schema_text);
    ty_error err = TY_ERROR_INIT;
    int rc = ty_crd_structural(s, &err);
    msg[0] = '\0';
    if (rc < 0)
        snprintf(msg, sizeof msg, "%s", err.msg);
    ty_error_clear(&err);
    if (out)
        *out = s;
    else
        json_decref(s);
    return rc < 0 ? msg : NULL;
}

Test(crd, every_custom_kind_gets_a_crd_and_builtins_none)
{
    int n = 0;
    for (const ty_kind_info *const *k = ty_kinds(); *k; k++) {
        ty_error err = TY_ERROR_INIT;
        json_t *crd = ty_crd_build(*k, &err);
        if ((*k)->builtin || !*(*k)->group) {
            cr_assert_null(crd, "%s", (*k)->kind);
            cr_assert(strstr(err.msg, "built-in kind"), "%s", err.msg);
            ty_error_clear(&err);
            continue;
        }
        cr_assert_not_null(crd, "%s: %s", (*k)->kind, err.msg);
        n++;
        char name[128];
        snprintf(name, sizeof name, "%s.%s", (*k)->resource, (*k)->group);
        cr_assert_str_eq(json_string_value(json_object_get(json_object_get(crd, "metadata"),
                                                           "name")), name);
        json_t *spec = json_object_get(crd, "spec");
        json_t *v = json_array_get(json_object_get(spec, "versions"), 0);
        cr_assert_eq(json_object_get(json_object_get(v, "subresources"), "status") != NULL,
                     (*k)->has_status, "%s", (*k)->kind);
        json_t *schema = json_object_get(json_object_get(v, "schema"), "openAPIV3Schema");
        char *text = json_dumps(schema, 0);
        cr_assert_null(strstr(text, "$ref"));
        cr_assert_null(strstr(text, "x-kubernetes-group-version-kind"));
        free(text);
        json_decref(crd);
    }
    cr_assert_eq(n, 14); /* PyTorchJob, TFJob, Katib's three, Kueue's six and KServe's three */
}

Test(crd, names_short_names_categories_and_columns)
{
    ty_error err = TY_ERROR_INIT;
    json_t *crd = ty_crd_build(ty_kind_of("kueue.x-k8s.io/v1beta1", "ResourceFlavor"), &err);
    json_t *names = json_object_get(json_object_get(crd, "spec"), "names");
    json_t *want = parse("[\"flavor\", \"flavors\", \"rf\"]");
    cr_assert(json_equal(json_object_get(names, "shortNames"), want));
    cr_assert_null(json_object_get(names, "categories"));
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(crd, "spec"), "scope")),
                     "Cluster");
    json_decref(want);
    json_decref(crd);

    crd = ty_crd_build(ty_kind_of("kubeflow.org/v1", "PyTorchJob"), &err);
    json_t *spec = json_object_get(crd, "spec");
    names = json_object_get(spec, "names");
    cr_assert_null(json_object_get(names, "shortNames"));
    want = parse("[\"all\"]");
    cr_assert(json_equal(json_object_get(names, "categories"), want));
    json_decref(want);
    json_t *cols = json_object_get(json_array_get(json_object_get(spec, "versions"), 0),
                                   "additionalPrinterColumns");
    want = parse("[{\"name\": \"State\", \"type\": \"string\", \"description\": \"The type of "
                 "the job's last condition.\", \"jsonPath\": \".status.conditions[-1:].type\"},"
                 "{\"name\": \"Age\", \"type\": \"date\", \"description\": \"Time since the "
                 "object was created.\", \"jsonPath\": \".metadata.creationTimestamp\"}]");
    cr_assert(json_equal(cols, want));
    json_decref(want);
    json_decref(crd);
}

Test(crd, structural_rewrites)
{
    json_t *s;
    cr_assert_null(structural_error(
        "{\"type\": \"object\", \"properties\": {"
        "\"metadata\": {\"type\": \"object\", \"properties\": {\"labels\": {\"type\": \"object\"}}},"
        "\"q\": {\"type\": \"string\", \"x-kubernetes-int-or-string\": true},"
        "\"any\": {\"type\": \"object\", \"additionalProperties\": true},"
        "\"m\": {\"additionalProperties\": {\"type\": \"string\"}},"
        "\"l\": {\"items\": {\"type\": \"string\"}, \"uniqueItems\": true},"
        "\"free\": {\"x-kubernetes-preserve-unknown-fields\": true}},"
        "\"x-kubernetes-group-version-kind\": [{\"group\": \"g\"}]}", &s));
    json_t *want = parse(
        "{\"type\": \"object\", \"properties\": {"
        "\"metadata\": {\"type\": \"object\"},"
        "\"q\": {\"x-kubernetes-int-or-string\": true},"
        "\"any\": {\"type\": \"object\", \"x-kubernetes-preserve-unknown-fields\": true},"
        "\"m\": {\"additionalProperties\": {\"type\": \"string\"}, \"type\": \"object\"},"
        "\"l\": {\"items\": {\"type\": \"string\"}, \"type\": \"array\"},"
        "\"free\": {\"x-kubernetes-preserve-unknown-fields\": true}}}");
    char *got = json_dumps(s, JSON_SORT_KEYS);
    cr_assert(json_equal(s, want), "%s", got);
    free(got);
    json_decref(want);
    json_decref(s);
}

Test(crd, structural_refusals_name_the_node)
{
    cr_assert_str_eq(structural_error("{\"type\": \"object\", \"properties\": {\"a\": {"
                                      "\"properties\": {\"b\": {\"description\": \"x\"}}}}}",
                                      NULL),
                     "schema .a.b: no type");
    cr_assert_str_eq(structural_error("{\"type\": \"object\", \"properties\": {\"a\": {"
                                      "\"$ref\": \"#/x\"}}}", NULL),
                     "schema .a: a $ref is left (inline it first)");
    cr_assert_str_eq(structural_error("{\"type\": \"object\", \"properties\": {\"a\": {"
                                      "\"type\": \"array\", \"items\": {\"oneOf\": []}}}}", NULL),
                     "schema .a[*]: allOf/anyOf/oneOf/not cannot be made structural here");
    cr_assert_str_eq(structural_error("{\"type\": \"string\"}", NULL),
                     "schema (root): the root must be an object");
    cr_assert_str_eq(structural_error("{\"type\": \"object\", \"properties\": {\"a\": {}}, "
                                      "\"additionalProperties\": {\"type\": \"string\"}}", NULL),
                     "schema (root): properties and an additionalProperties schema together");
}

/* Emits `v`, parses the text back with trainyard's manifest parser (Kubernetes' go-yaml rules)
 * and compares. */
static void round_trip(json_t *v)
{
    TY_AUTOBUF ty_buf out = TY_BUF_INIT;
    ty_error err = TY_ERROR_INIT;
    json_t *docs[] = {v, v};
    cr_assert_eq(ty_yaml_emit(&out, docs, 2, &err), 0, "%s", err.msg);
    ty_manifest *m = NULL;
    cr_assert_eq(ty_manifest_parse("out.yaml", out.data, out.len, &m, &err), 0, "%s\n%s",
                 err.msg, out.data);
    cr_assert_eq(m->ndocs, 2);
    char *want = json_dumps(v, JSON_SORT_KEYS);
    char *got = json_dumps(m->docs[1].obj, JSON_SORT_KEYS);
    cr_assert(json_equal(m->docs[0].obj, v) && json_equal(m->docs[1].obj, v),
              "want %s\ngot %s\ntext:\n%s", want, got, out.data);
    free(want);
    free(got);
    ty_manifest_free(m);
}

Test(emit, strings_that_look_like_other_scalars_stay_strings)
{
    json_t *v = parse(
        "{\"s\": [\"on\", \"Off\", \"YES\", \"n\", \"y\", \"null\", \"~\", \"\", \"1\", \"0x1F\","
        " \"1e3\", \"1_000\", \".inf\", \"-1\", \"+1\", \"0.5\", \"2024-01-01\", \"1:30\","
        " \"a: b\", \"a #b\", \"- x\", \"*alias\", \"&anchor\", \"!tag\", \"%d\", \"@x\","
        " \"`x\", \"{x}\", \"[x]\", \"x\\ny\", \"tab\\there\", \" lead\", \"trail \","
        " \"caf\\u00e9\", \"<<\", \"=\", \"?\", \"|\", \">\", \"'q'\", \"\\\"dq\\\"\","
        " \"/livez\", \"trainyard:latest\", \"100m\", \"0.0.0.0:8080\", \"--in-cluster\"],"
        " \"on\": 1, \"1\": true, \"n\": null, \"r\": 0.25, \"big\": 9007199254740993,"
        " \"neg\": -3, \"e\": {}, \"a\": [], \"nested\": [[{\"k\": [1, \"2\"]}]]}");
    round_trip(v);
    json_decref(v);
}

Test(emit, every_crd_reads_back_the_same)
{
    for (const ty_kind_info *const *k = ty_kinds(); *k; k++) {
        if (!ty_crd_wanted(*k))
            continue;
        ty_error err = TY_ERROR_INIT;
        json_t *crd = ty_crd_build(*k, &err);
        round_trip(crd);
        json_decref(crd);
    }
}

Test(emit, plain_where_safe)
{
    json_t *v = parse("{\"name\": \"trainyard\", \"cpu\": \"1\", \"on\": \"yes\", \"n\": 2}");
    TY_AUTOBUF ty_buf out = TY_BUF_INIT;
    ty_error err = TY_ERROR_INIT;
    cr_assert_eq(ty_yaml_emit(&out, &v, 1, &err), 0);
    cr_assert_str_eq(out.data, "---\nname: trainyard\ncpu: \"1\"\n\"on\": \"yes\"\n\"n\": 2\n");
    json_decref(v);
}
