/* Server-side apply's pure part (api/apply.h): field sets, the merge, removal of fields no
 * longer applied, conflicts and forcing, and Update entries. */
#include <criterion/criterion.h>
#include <string.h>

#include "api/apply.h"

static json_t *J(const char *text)
{
    json_error_t je;
    json_t *v = json_loads(text, 0, &je);
    cr_assert_not_null(v, "bad test JSON: %s: %s", je.text, text);
    return v;
}

static void assert_json(const json_t *got, const char *want)
{
    json_t *w = J(want);
    char *g = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS);
    cr_assert(json_equal(got, w), "got %s\nwant %s", g, want);
    free(g);
    json_decref(w);
}

static const json_t *entry(const json_t *obj, const char *manager, const char *op)
{
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(json_object_get(obj, "metadata"), "managedFields"), i, e)
    {
        if (strcmp(json_string_value(json_object_get(e, "manager")), manager) == 0 &&
            strcmp(json_string_value(json_object_get(e, "operation")), op) == 0)
            return e;
    }
    return NULL;
}

static ty_apply_req req(const char *manager, bool force)
{
    return (ty_apply_req){.resource = "pods", .api_version = "v1", .manager = manager,
                          .force = force, .now = "2026-01-01T00:00:00Z"};
}

Test(apply, fieldset_keys_lists_by_merge_key_and_sets_by_value)
{
    json_t *pod = J("{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\","
                    "\"namespace\":\"d\",\"uid\":\"u\",\"labels\":{\"a\":\"1\"},"
                    "\"finalizers\":[\"x\"]},\"spec\":{\"containers\":[{\"name\":\"c\","
                    "\"image\":\"i\",\"args\":[\"1\",\"2\"]}],\"nodeSelector\":{}},"
                    "\"status\":{\"phase\":\"Running\"}}");
    json_t *fs = ty_apply_fieldset("pods", pod);
    assert_json(fs, "{\"f:metadata\":{\"f:labels\":{\"f:a\":{}},\"f:finalizers\":{\"v:\\\"x\\\"\":{}}},"
                    "\"f:spec\":{\"f:containers\":{\"k:{\\\"name\\\":\\\"c\\\"}\":{\".\":{},"
                    "\"f:name\":{},\"f:image\":{},\"f:args\":{}}},\"f:nodeSelector\":{}}}");
    json_decref(fs);
    /* A custom resource: its pod templates merge as pods do; other lists are atomic. */
    json_t *job = J("{\"spec\":{\"pytorchReplicaSpecs\":{\"Master\":{\"template\":{\"spec\":"
                    "{\"containers\":[{\"name\":\"c\"}]}}}},\"list\":[{\"name\":\"x\"}]}}");
    fs = ty_apply_fieldset("pytorchjobs", job);
    assert_json(fs, "{\"f:spec\":{\"f:pytorchReplicaSpecs\":{\"f:Master\":{\"f:template\":"
                    "{\"f:spec\":{\"f:containers\":{\"k:{\\\"name\\\":\\\"c\\\"}\":{\".\":{},"
                    "\"f:name\":{}}}}}}},\"f:list\":{}}}");
    json_decref(fs);
    json_decref(job);
    json_decref(pod);
}

Test(apply, create_then_merge_by_key_then_remove_what_is_no_longer_applied)
{
    ty_apply_req r = req("m", false);
    ty_error err = TY_ERROR_INIT;
    json_t *cfg = J("{\"metadata\":{\"name\":\"p\",\"labels\":{\"a\":\"1\",\"b\":\"2\"}},"
                    "\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"i1\"}]}}");
    json_t *created = NULL;
    cr_assert_eq(ty_apply(&r, NULL, cfg, &created, NULL, &err), 0);
    cr_assert_not_null(entry(created, "m", "Apply"));
    /* The server adds a container and a status; another manager owns that container. */
    json_t *live = json_deep_copy(created);
    json_t *spec = json_object_get(live, "spec");
    json_array_append_new(json_object_get(spec, "containers"),
                          J("{\"name\":\"side\",\"image\":\"s\"}"));
    json_object_set_new(live, "status", J("{\"phase\":\"Running\"}"));
    json_array_append_new(json_object_get(json_object_get(live, "metadata"), "managedFields"),
                          J("{\"manager\":\"o\",\"operation\":\"Update\",\"apiVersion\":\"v1\","
                            "\"fieldsType\":\"FieldsV1\",\"fieldsV1\":{\"f:spec\":{\"f:containers\":"
                            "{\"k:{\\\"name\\\":\\\"side\\\"}\":{\".\":{},\"f:name\":{},"
                            "\"f:image\":{}}}}}}"));
    /* Applying the same again changes nothing at all. */
    json_t *same = NULL;
    cr_assert_eq(ty_apply(&r, live, cfg, &same, NULL, &err), 0);
    cr_assert(json_equal(same, live), "a repeated apply is a no-op");
    json_decref(same);
    /* Label b dropped, image changed: b goes, the other manager's container stays. */
    json_t *cfg2 = J("{\"metadata\":{\"name\":\"p\",\"labels\":{\"a\":\"1\"}},"
                     "\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"i2\"}]}}");
    json_t *out = NULL;
    cr_assert_eq(ty_apply(&r, live, cfg2, &out, NULL, &err), 0, "%s", err.msg);
    assert_json(json_object_get(json_object_get(out, "metadata"), "labels"), "{\"a\":\"1\"}");
    assert_json(json_object_get(out, "spec"),
                "{\"containers\":[{\"name\":\"c\",\"image\":\"i2\"},{\"name\":\"side\",\"image\":\"s\"}]}");
    assert_json(json_object_get(out, "status"), "{\"phase\":\"Running\"}");
    assert_json(json_object_get(entry(out, "m", "Apply"), "fieldsV1"),
                "{\"f:metadata\":{\"f:labels\":{\"f:a\":{}}},\"f:spec\":{\"f:containers\":"
                "{\"k:{\\\"name\\\":\\\"c\\\"}\":{\".\":{},\"f:name\":{},\"f:image\":{}}}}}");
    cr_assert_not_null(entry(out, "o", "Update"));
    /* Dropping the container removes it; a field another manager co-owns stays. */
    json_t *cfg3 = J("{\"metadata\":{\"name\":\"p\",\"labels\":{\"a\":\"1\"}}}");
    json_t *out3 = NULL;
    cr_assert_eq(ty_apply(&r, out, cfg3, &out3, NULL, &err), 0);
    assert_json(json_object_get(out3, "spec"),
                "{\"containers\":[{\"name\":\"side\",\"image\":\"s\"}]}");
    json_decref(out3);
    json_decref(cfg3);
    json_decref(out);
    json_decref(cfg2);
    json_decref(live);
    json_decref(created);
    json_decref(cfg);
    ty_error_clear(&err);
}

Test(apply, conflicts_name_the_manager_and_field_and_force_takes_them)
{
    ty_apply_req a = req("a", false);
    ty_error err = TY_ERROR_INIT;
    json_t *cfg = J("{\"metadata\":{\"name\":\"p\"},\"spec\":{\"replicas\":1,\"x\":\"same\"}}");
    json_t *live = NULL;
    cr_assert_eq(ty_apply(&a, NULL, cfg, &live, NULL, &err), 0);
    ty_apply_req b = req("b", false);
    /* x: the same value, shared without conflict; replicas differs. */
    json_t *other = J("{\"metadata\":{\"name\":\"p\"},\"spec\":{\"replicas\":2,\"x\":\"same\"}}");
    json_t *out = NULL, *causes = NULL;
    cr_assert_eq(ty_apply(&b, live, other, &out, &causes, &err), -1);
    cr_assert_eq(err.code, 409);
    cr_assert_str_eq(err.msg, "Apply failed with 1 conflict: conflict with \"a\" using v1: "
                              ".spec.replicas");
    assert_json(causes, "[{\"reason\":\"FieldManagerConflict\",\"message\":\"conflict with "
                        "\\\"a\\\" using v1\",\"field\":\".spec.replicas\"}]");
    json_decref(causes);
    ty_error_clear(&err);
    b.force = true;
    cr_assert_eq(ty_apply(&b, live, other, &out, NULL, &err), 0);
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(out, "spec"), "replicas")), 2);
    assert_json(json_object_get(entry(out, "a", "Apply"), "fieldsV1"),
                "{\"f:spec\":{\"f:x\":{}}}");
    assert_json(json_object_get(entry(out, "b", "Apply"), "fieldsV1"),
                "{\"f:spec\":{\"f:replicas\":{},\"f:x\":{}}}");
    /* Now a no longer applies x: b still owns it, so it stays. */
    json_t *less = J("{\"metadata\":{\"name\":\"p\"}}");
    json_t *out2 = NULL;
    cr_assert_eq(ty_apply(&a, out, less, &out2, NULL, &err), 0);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(out2, "spec"), "x")), "same");
    cr_assert_null(entry(out2, "a", "Apply"), "an empty set drops the entry");
    json_decref(out2);
    json_decref(less);
    json_decref(out);
    json_decref(other);
    json_decref(live);
    json_decref(cfg);
}

Test(apply, several_conflicts_are_listed_per_manager)
{
    ty_apply_req a = req("a", false), b = req("b", false);
    ty_error err = TY_ERROR_INIT;
    json_t *cfg = J("{\"metadata\":{\"name\":\"p\"},\"spec\":{\"r\":1,\"s\":1}}");
    json_t *live = NULL, *out = NULL;
    cr_assert_eq(ty_apply(&a, NULL, cfg, &live, NULL, &err), 0);
    json_t *other = J("{\"metadata\":{\"name\":\"p\"},\"spec\":{\"r\":2,\"s\":2}}");
    cr_assert_eq(ty_apply(&b, live, other, &out, NULL, &err), -1);
    cr_assert_str_eq(err.msg, "Apply failed with 2 conflicts: conflicts with \"a\" using v1:\n"
                              "- .spec.r\n- .spec.s");
    ty_error_clear(&err);
    json_decref(other);
    json_decref(live);
    json_decref(cfg);
}

Test(apply, updates_take_the_fields_they_change)
{
    ty_apply_req a = req("a", false);
    ty_error err = TY_ERROR_INIT;
    json_t *cfg = J("{\"metadata\":{\"name\":\"p\",\"labels\":{\"k\":\"v\"}},\"spec\":{\"r\":1}}");
    json_t *live = NULL;
    cr_assert_eq(ty_apply(&a, NULL, cfg, &live, NULL, &err), 0);
    /* kubectl edit changes spec.r and removes the label. */
    json_t *obj = json_deep_copy(live);
    json_object_del(json_object_get(obj, "metadata"), "managedFields");
    json_object_set_new(json_object_get(obj, "spec"), "r", json_integer(5));
    json_object_del(json_object_get(obj, "metadata"), "labels");
    ty_apply_req e = req("kubectl-edit", false);
    ty_apply_record_update(&e, live, obj);
    assert_json(json_object_get(entry(obj, "kubectl-edit", "Update"), "fieldsV1"),
                "{\"f:spec\":{\"f:r\":{}}}");
    cr_assert_null(entry(obj, "a", "Apply"), "a's fields were all taken or removed");
    /* Now a's apply of r=1 conflicts with the editor. */
    json_t *out = NULL;
    cr_assert_eq(ty_apply(&a, obj, cfg, &out, NULL, &err), -1);
    cr_assert(strstr(err.msg, "conflict with \"kubectl-edit\" using v1: .spec.r"), "%s", err.msg);
    ty_error_clear(&err);
    /* A create records everything for its manager. */
    json_t *fresh = J("{\"metadata\":{\"name\":\"q\"},\"spec\":{\"r\":1}}");
    ty_apply_req cr = req("kubectl-create", false);
    ty_apply_record_update(&cr, NULL, fresh);
    assert_json(json_object_get(entry(fresh, "kubectl-create", "Update"), "fieldsV1"),
                "{\"f:spec\":{\"f:r\":{}}}");
    json_decref(fresh);
    json_decref(obj);
    json_decref(live);
    json_decref(cfg);
}
