#include <criterion/criterion.h>
#include <string.h>

#include "api/patch.h"

static json_t *J(const char *s)
{
    json_error_t e;
    json_t *v = json_loads(s, JSON_DECODE_ANY, &e);
    cr_assert(v, "bad test json %s: %s", s, e.text);
    return v;
}

static void assert_json(json_t *got, const char *want_s)
{
    json_t *want = J(want_s);
    char *g = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    char *w = json_dumps(want, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    cr_assert(json_equal(got, want), "got %s\nwant %s", g, w);
    free(g);
    free(w);
    json_decref(want);
}

/* ---- RFC 7386 appendix A, every vector ---- */

Test(merge, rfc7386_vectors)
{
    static const char *v[][3] = {
        {"{\"a\":\"b\"}", "{\"a\":\"c\"}", "{\"a\":\"c\"}"},
        {"{\"a\":\"b\"}", "{\"b\":\"c\"}", "{\"a\":\"b\",\"b\":\"c\"}"},
        {"{\"a\":\"b\"}", "{\"a\":null}", "{}"},
        {"{\"a\":\"b\",\"b\":\"c\"}", "{\"a\":null}", "{\"b\":\"c\"}"},
        {"{\"a\":[\"b\"]}", "{\"a\":\"c\"}", "{\"a\":\"c\"}"},
        {"{\"a\":\"c\"}", "{\"a\":[\"b\"]}", "{\"a\":[\"b\"]}"},
        {"{\"a\":{\"b\":\"c\"}}", "{\"a\":{\"b\":\"d\",\"c\":null}}", "{\"a\":{\"b\":\"d\"}}"},
        {"{\"a\":[{\"b\":\"c\"}]}", "{\"a\":[1]}", "{\"a\":[1]}"},
        {"[\"a\",\"b\"]", "[\"c\",\"d\"]", "[\"c\",\"d\"]"},
        {"{\"a\":\"b\"}", "[\"c\"]", "[\"c\"]"},
        {"{\"a\":\"foo\"}", "null", "null"},
        {"{\"a\":\"foo\"}", "\"bar\"", "\"bar\""},
        {"{\"e\":null}", "{\"a\":1}", "{\"e\":null,\"a\":1}"},
        {"[1,2]", "{\"a\":\"b\",\"c\":null}", "{\"a\":\"b\"}"},
        {"{}", "{\"a\":{\"bb\":{\"ccc\":null}}}", "{\"a\":{\"bb\":{}}}"},
    };
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        json_t *t = J(v[i][0]), *p = J(v[i][1]), *out = NULL;
        cr_assert_eq(ty_patch_merge(t, p, &out, NULL), 0);
        assert_json(out, v[i][2]);
        /* the target is not modified */
        assert_json(t, v[i][0]);
        json_decref(t);
        json_decref(p);
        json_decref(out);
    }
}

Test(merge, job_spec)
{
    json_t *t = J("{\"spec\":{\"runPolicy\":{\"suspend\":true,\"backoffLimit\":3}},"
                  "\"metadata\":{\"labels\":{\"a\":\"1\"}}}");
    json_t *p = J("{\"spec\":{\"runPolicy\":{\"suspend\":false}},"
                  "\"metadata\":{\"labels\":{\"a\":null,\"b\":\"2\"}}}");
    json_t *out = NULL;
    cr_assert_eq(ty_patch_merge(t, p, &out, NULL), 0);
    assert_json(out, "{\"spec\":{\"runPolicy\":{\"suspend\":false,\"backoffLimit\":3}},"
                     "\"metadata\":{\"labels\":{\"b\":\"2\"}}}");
    json_decref(t);
    json_decref(p);
    json_decref(out);
}

/* ---- RFC 6902 ---- */

static void jp_ok(const char *doc, const char *ops, const char *want)
{
    json_t *d = J(doc), *o = J(ops), *out = NULL;
    ty_error err = TY_ERROR_INIT;
    cr_assert_eq(ty_patch_json(d, o, &out, &err), 0, "%s: %s", ops, err.msg ? err.msg : "");
    assert_json(out, want);
    assert_json(d, doc);
    json_decref(d);
    json_decref(o);
    json_decref(out);
}

static void jp_fail(const char *doc, const char *ops, int code, const char *want)
{
    json_t *d = J(doc), *o = J(ops), *out = NULL;
    ty_error err = TY_ERROR_INIT;
    cr_assert_eq(ty_patch_json(d, o, &out, &err), -1, "%s applied", ops);
    cr_assert_null(out);
    cr_assert_eq(err.code, code, "%s: code %d", ops, err.code);
    cr_assert(strstr(err.msg, want), "%s: %s", ops, err.msg);
    ty_error_clear(&err);
    json_decref(d);
    json_decref(o);
}

Test(jsonpatch, rfc6902_appendix_a)
{
    /* A.1 - A.16 */
    jp_ok("{\"foo\":\"bar\"}", "[{\"op\":\"add\",\"path\":\"/baz\",\"value\":\"qux\"}]",
          "{\"baz\":\"qux\",\"foo\":\"bar\"}");
    jp_ok("{\"foo\":[\"bar\",\"baz\"]}", "[{\"op\":\"add\",\"path\":\"/foo/1\",\"value\":\"qux\"}]",
          "{\"foo\":[\"bar\",\"qux\",\"baz\"]}");
    jp_ok("{\"baz\":\"qux\",\"foo\":\"bar\"}", "[{\"op\":\"remove\",\"path\":\"/baz\"}]",
          "{\"foo\":\"bar\"}");
    jp_ok("{\"foo\":[\"bar\",\"qux\",\"baz\"]}", "[{\"op\":\"remove\",\"path\":\"/foo/1\"}]",
          "{\"foo\":[\"bar\",\"baz\"]}");
    jp_ok("{\"baz\":\"qux\",\"foo\":\"bar\"}",
          "[{\"op\":\"replace\",\"path\":\"/baz\",\"value\":\"boo\"}]",
          "{\"baz\":\"boo\",\"foo\":\"bar\"}");
    jp_ok("{\"foo\":{\"bar\":\"baz\",\"waldo\":\"fred\"},\"qux\":{\"corge\":\"grault\"}}",
          "[{\"op\":\"move\",\"from\":\"/foo/waldo\",\"path\":\"/qux/thud\"}]",
          "{\"foo\":{\"bar\":\"baz\"},\"qux\":{\"corge\":\"grault\",\"thud\":\"fred\"}}");
    jp_ok("{\"foo\":[\"all\",\"grass\",\"cows\",\"eat\"]}",
          "[{\"op\":\"move\",\"from\":\"/foo/1\",\"path\":\"/foo/3\"}]",
          "{\"foo\":[\"all\",\"cows\",\"eat\",\"grass\"]}");
    jp_ok("{\"baz\":\"qux\",\"foo\":[\"a\",2,\"c\"]}",
          "[{\"op\":\"test\",\"path\":\"/baz\",\"value\":\"qux\"},"
          "{\"op\":\"test\",\"path\":\"/foo/1\",\"value\":2}]",
          "{\"baz\":\"qux\",\"foo\":[\"a\",2,\"c\"]}");
    jp_fail("{\"baz\":\"qux\"}", "[{\"op\":\"test\",\"path\":\"/baz\",\"value\":\"bar\"}]", 422,
            "test failed");
    jp_ok("{\"foo\":\"bar\"}",
          "[{\"op\":\"add\",\"path\":\"/child\",\"value\":{\"grandchild\":{}}}]",
          "{\"foo\":\"bar\",\"child\":{\"grandchild\":{}}}");
    jp_ok("{\"foo\":\"bar\"}",
          "[{\"op\":\"add\",\"path\":\"/baz\",\"value\":\"qux\",\"xyz\":123}]",
          "{\"foo\":\"bar\",\"baz\":\"qux\"}");
    jp_fail("{\"foo\":\"bar\"}", "[{\"op\":\"add\",\"path\":\"/baz/bat\",\"value\":\"qux\"}]",
            422, "missing path");
    jp_ok("{\"/\":9,\"~1\":10}", "[{\"op\":\"test\",\"path\":\"/~01\",\"value\":10}]",
          "{\"/\":9,\"~1\":10}");
    jp_fail("{\"/\":9,\"~1\":10}", "[{\"op\":\"test\",\"path\":\"/~01\",\"value\":\"10\"}]", 422,
            "test failed");
    jp_ok("{\"foo\":[\"bar\"]}", "[{\"op\":\"add\",\"path\":\"/foo/-\",\"value\":[\"abc\",\"def\"]}]",
          "{\"foo\":[\"bar\",[\"abc\",\"def\"]]}");
    jp_ok("{\"a/b\":1}", "[{\"op\":\"copy\",\"from\":\"/a~1b\",\"path\":\"/c\"}]",
          "{\"a/b\":1,\"c\":1}");
}

Test(jsonpatch, edges)
{
    jp_ok("{\"a\":1}", "[{\"op\":\"test\",\"path\":\"/a\",\"value\":1.0}]", "{\"a\":1}");
    jp_ok("{\"a\":{\"x\":1,\"y\":2}}",
          "[{\"op\":\"test\",\"path\":\"/a\",\"value\":{\"y\":2,\"x\":1}}]",
          "{\"a\":{\"x\":1,\"y\":2}}");
    jp_ok("{\"a\":1}", "[{\"op\":\"replace\",\"path\":\"\",\"value\":[1]}]", "[1]");
    jp_ok("{\"a\":[1,2]}", "[{\"op\":\"add\",\"path\":\"/a/2\",\"value\":3}]", "{\"a\":[1,2,3]}");
    jp_fail("{\"a\":[1,2]}", "[{\"op\":\"add\",\"path\":\"/a/3\",\"value\":3}]", 422,
            "out of range");
    jp_fail("{\"a\":[1,2]}", "[{\"op\":\"remove\",\"path\":\"/a/01\"}]", 422, "missing path");
    jp_fail("{\"a\":1}", "[{\"op\":\"replace\",\"path\":\"/b\",\"value\":1}]", 422, "missing");
    jp_fail("{\"a\":{\"b\":1}}", "[{\"op\":\"move\",\"from\":\"/a\",\"path\":\"/a/b/c\"}]", 422,
            "prefix");
    jp_fail("{}", "[{\"op\":\"copy\",\"from\":\"/x\",\"path\":\"/y\"}]", 422, "missing");
    jp_fail("{}", "[{\"op\":\"frob\",\"path\":\"/x\"}]", 400, "unknown operation");
    jp_fail("{}", "[{\"path\":\"/x\"}]", 400, "no \"op\"");
    jp_fail("{}", "[{\"op\":\"add\",\"path\":\"/x\"}]", 400, "no \"value\"");
    jp_fail("{}", "{\"op\":\"add\"}", 400, "not an array");
    jp_fail("{}", "[{\"op\":\"add\",\"path\":\"x\",\"value\":1}]", 422, "invalid pointer");
    /* A failed operation leaves nothing half-applied: the target is unchanged. */
    jp_fail("{\"a\":1}", "[{\"op\":\"remove\",\"path\":\"/a\"},{\"op\":\"remove\",\"path\":\"/a\"}]",
            422, "missing path");
}

/* ---- strategic merge patch ---- */

static json_t *smp_ok(const char *res, const char *doc, const char *patch)
{
    json_t *d = J(doc), *p = J(patch), *out = NULL;
    ty_error err = TY_ERROR_INIT;
    cr_assert_eq(ty_patch_strategic(res, d, p, &out, &err), 0, "%s: %s", patch,
                 err.msg ? err.msg : "");
    assert_json(d, doc);
    json_decref(d);
    json_decref(p);
    return out;
}

static const char *POD =
    "{\"metadata\":{\"name\":\"p\",\"finalizers\":[\"a\"]},\"spec\":{\"containers\":["
    "{\"name\":\"main\",\"image\":\"i1\",\"env\":[{\"name\":\"A\",\"value\":\"1\"},"
    "{\"name\":\"B\",\"value\":\"2\"}],\"ports\":[{\"containerPort\":80,\"name\":\"http\"}]},"
    "{\"name\":\"side\",\"image\":\"s1\"}],\"tolerations\":[{\"key\":\"x\"}]}}";

Test(strategic, containers_merge_by_name)
{
    json_t *out = smp_ok("pods", POD,
                         "{\"spec\":{\"containers\":[{\"name\":\"main\",\"image\":\"i2\"},"
                         "{\"name\":\"new\",\"image\":\"n\"}]}}");
    json_t *cs = json_object_get(json_object_get(out, "spec"), "containers");
    cr_assert_eq(json_array_size(cs), 3);
    assert_json(json_array_get(cs, 0),
                "{\"name\":\"main\",\"image\":\"i2\",\"env\":[{\"name\":\"A\",\"value\":\"1\"},"
                "{\"name\":\"B\",\"value\":\"2\"}],\"ports\":[{\"containerPort\":80,"
                "\"name\":\"http\"}]}");
    /* as the API server orders it: patch elements in patch order, a server-only element only
     * before a patch element that came after it in the live list */
    assert_json(json_array_get(cs, 1), "{\"name\":\"new\",\"image\":\"n\"}");
    assert_json(json_array_get(cs, 2), "{\"name\":\"side\",\"image\":\"s1\"}");
    json_decref(out);
    /* a new element alone goes first */
    out = smp_ok("pods", POD, "{\"spec\":{\"containers\":[{\"name\":\"x\",\"image\":\"x\"}]}}");
    cs = json_object_get(json_object_get(out, "spec"), "containers");
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(cs, 0), "name")), "x");
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(cs, 1), "name")), "main");
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(cs, 2), "name")), "side");
    json_decref(out);
}

Test(strategic, env_and_ports)
{
    json_t *out = smp_ok("pods", POD,
                         "{\"spec\":{\"containers\":[{\"name\":\"main\",\"env\":["
                         "{\"name\":\"B\",\"value\":\"3\"},{\"name\":\"C\",\"value\":\"4\"},"
                         "{\"name\":\"A\",\"$patch\":\"delete\"}],\"ports\":["
                         "{\"containerPort\":80,\"protocol\":\"TCP\"},{\"containerPort\":443}]}]}}");
    json_t *c = json_array_get(json_object_get(json_object_get(out, "spec"), "containers"), 0);
    assert_json(json_object_get(c, "env"),
                "[{\"name\":\"B\",\"value\":\"3\"},{\"name\":\"C\",\"value\":\"4\"}]");
    assert_json(json_object_get(c, "ports"),
                "[{\"containerPort\":80,\"name\":\"http\",\"protocol\":\"TCP\"},"
                "{\"containerPort\":443}]");
    json_decref(out);
}

Test(strategic, directives)
{
    /* $patch: replace on a list replaces it whole */
    json_t *out = smp_ok("pods", POD,
                         "{\"spec\":{\"containers\":[{\"name\":\"only\",\"image\":\"o\"},"
                         "{\"$patch\":\"replace\"}]}}");
    assert_json(json_object_get(json_object_get(out, "spec"), "containers"),
                "[{\"name\":\"only\",\"image\":\"o\"}]");
    json_decref(out);
    /* $patch: replace on a map */
    out = smp_ok("pods", "{\"metadata\":{\"labels\":{\"a\":\"1\",\"b\":\"2\"}}}",
                 "{\"metadata\":{\"labels\":{\"c\":\"3\",\"$patch\":\"replace\"}}}");
    assert_json(out, "{\"metadata\":{\"labels\":{\"c\":\"3\"}}}");
    json_decref(out);
    /* $patch: delete on a map empties it, as the API server does */
    out = smp_ok("pods", "{\"metadata\":{\"labels\":{\"a\":\"1\"},\"name\":\"p\"}}",
                 "{\"metadata\":{\"labels\":{\"$patch\":\"delete\"}}}");
    assert_json(out, "{\"metadata\":{\"labels\":{},\"name\":\"p\"}}");
    json_decref(out);
    /* primitive set: finalizers merge, $deleteFromPrimitiveList removes */
    out = smp_ok("pods", POD, "{\"metadata\":{\"finalizers\":[\"b\",\"a\"]}}");
    assert_json(json_object_get(json_object_get(out, "metadata"), "finalizers"), "[\"b\",\"a\"]");
    json_decref(out);
    out = smp_ok("pods", POD, "{\"metadata\":{\"$deleteFromPrimitiveList/finalizers\":[\"a\"]}}");
    assert_json(json_object_get(json_object_get(out, "metadata"), "finalizers"), "[]");
    json_decref(out);
    /* a list without a merge key (tolerations) is replaced */
    out = smp_ok("pods", POD, "{\"spec\":{\"tolerations\":[{\"key\":\"y\"}]}}");
    assert_json(json_object_get(json_object_get(out, "spec"), "tolerations"), "[{\"key\":\"y\"}]");
    json_decref(out);
    /* $setElementOrder */
    out = smp_ok("pods", POD,
                 "{\"spec\":{\"$setElementOrder/containers\":[{\"name\":\"side\"},"
                 "{\"name\":\"main\"}],\"containers\":[{\"name\":\"main\",\"image\":\"i3\"}]}}");
    json_t *cs = json_object_get(json_object_get(out, "spec"), "containers");
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(cs, 0), "name")), "side");
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(cs, 1), "image")), "i3");
    json_decref(out);
    /* $retainKeys clears the fields not listed */
    out = smp_ok("pods", "{\"spec\":{\"volumes\":[{\"name\":\"v\",\"emptyDir\":{}}]}}",
                 "{\"spec\":{\"volumes\":[{\"name\":\"v\",\"hostPath\":{\"path\":\"/x\"},"
                 "\"$retainKeys\":[\"name\",\"hostPath\"]}]}}");
    assert_json(out, "{\"spec\":{\"volumes\":[{\"name\":\"v\",\"hostPath\":{\"path\":\"/x\"}}]}}");
    json_decref(out);
    /* null deletes a field */
    out = smp_ok("services", "{\"spec\":{\"type\":\"ClusterIP\",\"ports\":[{\"port\":80},"
                 "{\"port\":81}]}}",
                 "{\"spec\":{\"type\":null,\"ports\":[{\"port\":81,\"targetPort\":8081}]}}");
    assert_json(out, "{\"spec\":{\"ports\":[{\"port\":80},{\"port\":81,\"targetPort\":8081}]}}");
    json_decref(out);
    /* node conditions merge by type */
    out = smp_ok("nodes", "{\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"False\"},"
                 "{\"type\":\"MemoryPressure\",\"status\":\"False\"}]}}",
                 "{\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}]}}");
    assert_json(out, "{\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"},"
                     "{\"type\":\"MemoryPressure\",\"status\":\"False\"}]}}");
    json_decref(out);
}

static void smp_fail(const char *res, const char *doc, const char *patch, int code,
                     const char *want)
{
    json_t *d = J(doc), *p = J(patch), *out = NULL;
    ty_error err = TY_ERROR_INIT;
    cr_assert_eq(ty_patch_strategic(res, d, p, &out, &err), -1, "%s applied", patch);
    cr_assert_null(out);
    cr_assert_eq(err.code, code, "code %d", err.code);
    cr_assert(strstr(err.msg, want), "%s", err.msg);
    ty_error_clear(&err);
    json_decref(d);
    json_decref(p);
}

Test(strategic, errors)
{
    smp_fail("pytorchjobs", "{}", "{\"spec\":{}}", 415, "application/merge-patch+json");
    smp_fail("tfjobs", "{}", "{}", 415, "unknown format");
    smp_fail("pods", POD, "[1]", 422, "not a JSON object");
    smp_fail("pods", POD, "{\"spec\":{\"containers\":[{\"image\":\"x\"}]}}", 422,
             "merge key: name");
    smp_fail("pods", POD, "{\"spec\":{\"$patch\":\"frob\"}}", 422, "frob");
    smp_fail("pods", POD, "{\"spec\":{\"$bogus\":1}}", 422, "$bogus");
    smp_fail("pods", POD, "{\"spec\":{\"volumes\":[{\"name\":\"v\",\"emptyDir\":{},"
             "\"$retainKeys\":[\"name\"]}]}}", 422, "retainKeys");
    smp_fail("pods", POD, "{\"$patch\":\"delete\"}", 422, "whole object");
}
