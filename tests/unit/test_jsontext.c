/* Reading JSON text without parsing it (base/jsontext.h): value ends, top-level members, values
 * at paths through objects and arrays, and strings with escapes on the way. */
#include <criterion/criterion.h>
#include <string.h>

#include "base/jsontext.h"

static const char *T = "{ \"metadata\" : {\"name\":\"a\",\"x\":[1,{\"y\":\"}\"}]},"
                       "\"spec\":{\"big\":"
                       "\"s\\\"tr]\"},\"status\":{\"conditions\":[{\"type\":\"A\"},{\"type\":"
                       "\"B\",\"n\":-1.5e3}],\"ok\":true}}";

Test(jsontext, members_in_one_pass)
{
    static const char *const names[] = {"metadata", "status", "missing"};
    const char *v[3];
    size_t n[3];
    cr_assert(ty_json_members(T, strlen(T), names, 3, v, n));
    const char *meta = "{\"name\":\"a\",\"x\":[1,{\"y\":\"}\"}]}";
    cr_assert_eq(n[0], strlen(meta));
    cr_assert_eq(strncmp(v[0], meta, n[0]), 0);
    cr_assert_eq(strncmp(v[1], "{\"conditions\"", 13), 0);
    cr_assert_eq(v[1][n[1] - 1], '}');
    cr_assert_null(v[2]);
    cr_assert_not(ty_json_members("[1]", 3, names, 3, v, n));
}

static void assert_at(const char *path, const char *want)
{
    const char *v;
    size_t n;
    bool found = ty_json_text_at(T, strlen(T), path, &v, &n);
    if (!want) {
        cr_assert_not(found, "%s found", path);
        return;
    }
    cr_assert(found, "%s not found", path);
    cr_assert_eq(n, strlen(want), "%s: %.*s", path, (int)n, v);
    cr_assert_eq(strncmp(v, want, n), 0, "%s: %.*s", path, (int)n, v);
}

Test(jsontext, values_at_paths)
{
    assert_at("metadata.name", "\"a\"");
    assert_at("metadata.x.1.y", "\"}\"");
    assert_at("metadata.x.0", "1");
    assert_at("spec.big", "\"s\\\"tr]\"");
    assert_at("status.conditions.-1.type", "\"B\"");
    assert_at("status.conditions.0.type", "\"A\"");
    assert_at("status.conditions.-1.n", "-1.5e3");
    assert_at("status.ok", "true");
    assert_at("status.conditions.2", NULL);
    assert_at("status.conditions.x", NULL);
    assert_at("metadata.name.more", NULL);
    assert_at("nothing", NULL);
    const char *v;
    size_t n;
    cr_assert_not(ty_json_text_at("{\"a\":[]}", 8, "a.-1", &v, &n), "an empty array has no last");
    cr_assert_not(ty_json_text_at("{\"a\":{\"b\":", 10, "a.b", &v, &n), "cut short");
}

Test(jsontext, values_as_trees)
{
    json_t *s = ty_json_text_value("\"plain\"", 7);
    cr_assert_str_eq(json_string_value(s), "plain");
    json_decref(s);
    s = ty_json_text_value("\"a\\\"b\\u00e9\"", 12);
    cr_assert_str_eq(json_string_value(s), "a\"b\xc3\xa9");
    json_decref(s);
    s = ty_json_text_value("[1,2]", 5);
    cr_assert_eq(json_array_size(s), 2);
    json_decref(s);
    cr_assert_null(ty_json_text_value("[1,", 3));
}

/* The member iterator the store's loading uses: keys and values in order, the closing brace,
 * and the checked mode refusing a damaged value that skipping only counts through. */
Test(jsontext, members_one_by_one_skipped_or_checked)
{
    const char *end = T + strlen(T), *p = ty_json_object_start(T, end);
    static const char *const keys[] = {"metadata", "spec", "status"};
    ty_json_member m;
    size_t i = 0;
    int rc;
    while ((rc = ty_json_next_member(&p, end, true, &m)) > 0) {
        cr_assert_lt(i, 3);
        cr_assert(ty_json_member_is(&m, keys[i]), "member %zu", i);
        cr_assert_eq(ty_json_skip_value(m.val, end), m.val_end);
        i++;
    }
    cr_assert_eq(rc, 0);
    cr_assert_eq(i, 3);
    const char *bad = "{\"a\":{\"b\" 1},\"c\":2}";
    const char *bend = bad + strlen(bad);
    p = ty_json_object_start(bad, bend);
    cr_assert_eq(ty_json_next_member(&p, bend, false, &m), 1);
    cr_assert(ty_json_member_is(&m, "a"));
    p = ty_json_object_start(bad, bend);
    cr_assert_eq(ty_json_next_member(&p, bend, true, &m), -1);
    const char *arr = "[1,]";
    cr_assert_null(ty_json_check_value(arr, arr + 4));
    cr_assert_not_null(ty_json_skip_value(arr, arr + 4));
    const char *list = "[1]";
    cr_assert_null(ty_json_object_start(list, list + 3));
}
