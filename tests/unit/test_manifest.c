#include <criterion/criterion.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/manifest.h"
#include "base/buf.h"
#include "base/time.h"

static ty_manifest *parse_ok(const char *text)
{
    ty_error err = TY_ERROR_INIT;
    ty_manifest *m = NULL;
    int rc = ty_manifest_parse("f.yaml", text, strlen(text), &m, &err);
    cr_assert_eq(rc, 0, "parse failed: %s\n---\n%s", err.msg ? err.msg : "", text);
    cr_assert_not_null(m);
    ty_error_clear(&err);
    return m;
}

/* Returns the error message (caller frees) and checks that *out stayed untouched. */
static char *parse_fail(const char *text)
{
    ty_error err = TY_ERROR_INIT;
    ty_manifest *m = (ty_manifest *)0x1;
    int rc = ty_manifest_parse("f.yaml", text, strlen(text), &m, &err);
    cr_assert_eq(rc, -1, "parse should fail:\n%s", text);
    cr_assert_eq(m, (ty_manifest *)0x1, "*out must stay untouched on error");
    cr_assert_not_null(err.msg);
    return err.msg;
}

#define expect_error(text, want)                                                                  \
    do {                                                                                          \
        char *_msg = parse_fail(text);                                                            \
        cr_expect_str_eq(_msg, want);                                                             \
        free(_msg);                                                                               \
    } while (0)

#define expect_pos(p, l, c)                                                                       \
    do {                                                                                          \
        ty_pos _p = (p);                                                                          \
        cr_expect(_p.line == (l) && _p.col == (c), "%s: got %d:%d want %d:%d", #p, _p.line,       \
                  _p.col, (l), (c));                                                              \
    } while (0)

Test(manifest, multi_document_and_empty_documents)
{
    ty_manifest *m = parse_ok("a: 1\n---\nb: 2\n---\n---\n# only a comment\n---\nc: 3\n...\n");
    cr_assert_eq(m->ndocs, 3);
    cr_expect_str_eq(m->file, "f.yaml");
    cr_expect_eq(json_integer_value(json_object_get(m->docs[0].obj, "a")), 1);
    cr_expect_eq(json_integer_value(json_object_get(m->docs[1].obj, "b")), 2);
    cr_expect_eq(json_integer_value(json_object_get(m->docs[2].obj, "c")), 3);
    cr_expect_eq(m->docs[0].index, 0);
    cr_expect_eq(m->docs[1].index, 1);
    cr_expect_eq(m->docs[2].index, 4, "empty documents still count");
    expect_pos(m->docs[0].pos, 1, 1);
    expect_pos(m->docs[1].pos, 3, 1);
    expect_pos(m->docs[2].pos, 8, 1);
    ty_manifest_free(m);

    m = parse_ok("");
    cr_expect_eq(m->ndocs, 0);
    ty_manifest_free(m);
    m = parse_ok("---\n---\n# nothing\n");
    cr_expect_eq(m->ndocs, 0);
    ty_manifest_free(m);
    ty_manifest_free(NULL);
}

Test(manifest, positions_yaml)
{
    ty_manifest *m = parse_ok("apiVersion: v1\n"
                              "kind: Pod\n"
                              "metadata:\n"
                              "  name: x\n"
                              "spec:\n"
                              "  containers:\n"
                              "  - name: a\n"
                              "    args: [x, \"y\", 3, true]\n"
                              "  - name: b\n"
                              "    ok: true\n");
    cr_assert_eq(m->ndocs, 1);
    json_t *doc = m->docs[0].obj;
    expect_pos(ty_manifest_pos_member(m, doc, "kind", true), 2, 1);
    expect_pos(ty_manifest_pos_member(m, doc, "kind", false), 2, 7);
    expect_pos(ty_manifest_pos_member(m, doc, "metadata", true), 3, 1);
    expect_pos(ty_manifest_pos_member(m, doc, "metadata", false), 4, 3);
    json_t *md = json_object_get(doc, "metadata");
    expect_pos(ty_manifest_pos_member(m, md, "name", true), 4, 3);
    expect_pos(ty_manifest_pos_member(m, md, "name", false), 4, 9);
    json_t *cs = json_object_get(json_object_get(doc, "spec"), "containers");
    expect_pos(ty_manifest_pos_index(m, cs, 0), 7, 5);
    expect_pos(ty_manifest_pos_index(m, cs, 1), 9, 5);
    json_t *args = json_object_get(json_array_get(cs, 0), "args");
    expect_pos(ty_manifest_pos_index(m, args, 0), 8, 12);
    expect_pos(ty_manifest_pos_index(m, args, 1), 8, 15);
    expect_pos(ty_manifest_pos_index(m, args, 2), 8, 20);
    expect_pos(ty_manifest_pos_index(m, args, 3), 8, 23);
    /* true is a jansson singleton: its position comes from its parent, not from the node. */
    expect_pos(ty_manifest_pos_member(m, json_array_get(cs, 1), "ok", false), 10, 9);
    /* Unknown members, indexes and manifests. */
    expect_pos(ty_manifest_pos_member(m, doc, "nope", false), 0, 0);
    expect_pos(ty_manifest_pos_index(m, args, 9), 0, 0);
    expect_pos(ty_manifest_pos_member(NULL, doc, "kind", false), 0, 0);
    expect_pos(ty_manifest_pos_index(NULL, args, 0), 0, 0);
    json_object_set_new(doc, "added", json_true());
    expect_pos(ty_manifest_pos_member(m, doc, "added", false), 0, 0);
    ty_manifest_free(m);
}

Test(manifest, positions_json)
{
    ty_manifest *m = parse_ok("{\n"
                              "  \"kind\": \"Pod\",\n"
                              "  \"spec\": {\"x\": [1, true, null]}\n"
                              "}\n");
    cr_assert_eq(m->ndocs, 1);
    json_t *doc = m->docs[0].obj;
    expect_pos(m->docs[0].pos, 1, 1);
    expect_pos(ty_manifest_pos_member(m, doc, "kind", true), 2, 3);
    expect_pos(ty_manifest_pos_member(m, doc, "kind", false), 2, 11);
    expect_pos(ty_manifest_pos_member(m, doc, "spec", false), 3, 11);
    json_t *spec = json_object_get(doc, "spec");
    expect_pos(ty_manifest_pos_member(m, spec, "x", true), 3, 12);
    expect_pos(ty_manifest_pos_member(m, spec, "x", false), 3, 17);
    json_t *x = json_object_get(spec, "x");
    cr_expect(json_is_integer(json_array_get(x, 0)));
    cr_expect(json_is_true(json_array_get(x, 1)));
    cr_expect(json_is_null(json_array_get(x, 2)));
    expect_pos(ty_manifest_pos_index(m, x, 0), 3, 18);
    expect_pos(ty_manifest_pos_index(m, x, 1), 3, 21);
    expect_pos(ty_manifest_pos_index(m, x, 2), 3, 27);
    ty_manifest_free(m);

    expect_error("{\"a\": 1, \"a\": 2}", "f.yaml:1:10: duplicate key \"a\"");
}

/* JSON spells characters beyond the BMP as surrogate pairs, which YAML 1.1 does not accept. */
Test(manifest, json_surrogate_pairs)
{
    ty_manifest *m = parse_ok("{\"a\": \"\\ud83d\\ude00 x\", \"b\": \"\\\\ud83d\\\\ude00\",\n"
                              " \"c\": \"\\\"\\u00e9\"}");
    json_t *d = m->docs[0].obj;
    cr_expect_str_eq(json_string_value(json_object_get(d, "a")), "\xf0\x9f\x98\x80 x");
    cr_expect_str_eq(json_string_value(json_object_get(d, "b")), "\\ud83d\\ude00",
                     "an escaped backslash is not an escape");
    cr_expect_str_eq(json_string_value(json_object_get(d, "c")), "\"\xc3\xa9");
    expect_pos(ty_manifest_pos_member(m, d, "c", false), 2, 7); /* later lines are exact */
    ty_manifest_free(m);
    /* YAML itself keeps libyaml's rule. */
    char *msg = parse_fail("a: \"\\ud83d\\ude00\"\n");
    cr_expect(strstr(msg, "found invalid Unicode character escape code"), "%s", msg);
    free(msg);
}

enum { T_NULL, T_TRUE, T_FALSE, T_INT, T_REAL, T_STR };

static const struct {
    const char *yaml;
    int type;
    long long i;
    double r;
    const char *s;
} scalars[] = {
    {"", T_NULL},
    {"~", T_NULL},
    {"null", T_NULL},
    {"Null", T_NULL},
    {"NULL", T_NULL},
    {"nUll", T_STR, .s = "nUll"},
    {"true", T_TRUE},
    {"True", T_TRUE},
    {"TRUE", T_TRUE},
    {"yes", T_TRUE},
    {"Yes", T_TRUE},
    {"YES", T_TRUE},
    {"on", T_TRUE},
    {"ON", T_TRUE},
    {"y", T_TRUE},
    {"false", T_FALSE},
    {"no", T_FALSE},
    {"Off", T_FALSE},
    {"n", T_FALSE},
    {"tRue", T_STR, .s = "tRue"},
    {"yEs", T_STR, .s = "yEs"},
    {"42", T_INT, 42},
    {"-17", T_INT, -17},
    {"+5", T_INT, 5},
    {"0", T_INT, 0},
    {"0x1F", T_INT, 31},
    {"-0x10", T_INT, -16},
    {"0o17", T_INT, 15},
    {"017", T_INT, 15},
    {"0b101", T_INT, 5},
    {"1_000", T_INT, 1000},
    {"9223372036854775807", T_INT, INT64_MAX},
    {"-9223372036854775808", T_INT, INT64_MIN},
    {"9223372036854775808", T_REAL, .r = 9223372036854775808.0},
    {"-9223372036854775809", T_REAL, .r = -9223372036854775809.0},
    {"99999999999999999999999999", T_REAL, .r = 1e26},
    {"08", T_REAL, .r = 8.0}, /* not octal, but a float, as in go-yaml */
    {"1.5", T_REAL, .r = 1.5},
    {"-.5", T_REAL, .r = -0.5},
    {".5", T_REAL, .r = 0.5},
    {"1.", T_REAL, .r = 1.0},
    {"1e3", T_REAL, .r = 1000.0},
    {"1E-2", T_REAL, .r = 0.01},
    {"1e400", T_STR, .s = "1e400"},
    {"0x", T_STR, .s = "0x"},
    {"0x1G", T_STR, .s = "0x1G"},
    {"1.2.3", T_STR, .s = "1.2.3"},
    {"4Gi", T_STR, .s = "4Gi"},
    {"100m", T_STR, .s = "100m"},
    {"2001-12-14", T_STR, .s = "2001-12-14"},
    {"abc def", T_STR, .s = "abc def"},
    {"\"42\"", T_STR, .s = "42"},
    {"'true'", T_STR, .s = "true"},
    {"\"\"", T_STR, .s = ""},
    {"\"a\\u00e9\\0b\"", T_STR, .s = "a\xc3\xa9"}, /* embedded NUL kept: checked by length */
    {"|\n  line1\n  line2", T_STR, .s = "line1\nline2\n"},
    {"!!str 42", T_STR, .s = "42"},
    {"! 42", T_STR, .s = "42"},
    {"!!int \"7\"", T_INT, 7},
    {"!!float 3", T_REAL, .r = 3.0},
    {"!!bool yes", T_TRUE},
    {"!!null ''", T_NULL},
    {"!!timestamp 2001-12-14", T_STR, .s = "2001-12-14"},
};

Test(manifest, scalar_typing_table)
{
    for (size_t i = 0; i < sizeof(scalars) / sizeof(scalars[0]); i++) {
        char text[256];
        snprintf(text, sizeof(text), "v: %s\n", scalars[i].yaml);
        ty_manifest *m = parse_ok(text);
        cr_assert_eq(m->ndocs, 1);
        json_t *v = json_object_get(m->docs[0].obj, "v");
        cr_assert_not_null(v, "%s", text);
        const char *y = scalars[i].yaml;
        switch (scalars[i].type) {
        case T_NULL: cr_expect(json_is_null(v), "%s should be null", y); break;
        case T_TRUE: cr_expect(json_is_true(v), "%s should be true", y); break;
        case T_FALSE: cr_expect(json_is_false(v), "%s should be false", y); break;
        case T_INT:
            cr_expect(json_is_integer(v) && json_integer_value(v) == scalars[i].i,
                      "%s should be the integer %lld", y, scalars[i].i);
            break;
        case T_REAL:
            cr_expect(json_is_real(v) && json_real_value(v) == scalars[i].r,
                      "%s should be the real %g", y, scalars[i].r);
            break;
        case T_STR:
            cr_expect(json_is_string(v) && strcmp(json_string_value(v), scalars[i].s) == 0,
                      "%s should be the string '%s'", y, scalars[i].s);
            break;
        }
        ty_manifest_free(m);
    }
    /* The escaped NUL survives, with the length. */
    ty_manifest *m = parse_ok("v: \"a\\0b\"\n");
    json_t *v = json_object_get(m->docs[0].obj, "v");
    cr_expect_eq(json_string_length(v), 3);
    cr_expect_eq(memcmp(json_string_value(v), "a\0b", 3), 0);
    ty_manifest_free(m);
}

Test(manifest, scalar_errors)
{
    expect_error("v: .inf\n", "f.yaml:1:4: .inf cannot be represented in JSON");
    expect_error("v: -.Inf\n", "f.yaml:1:4: -.Inf cannot be represented in JSON");
    expect_error("v: .nan\n", "f.yaml:1:4: .nan cannot be represented in JSON");
    expect_error("a: 1\nv: !!int abc\n", "f.yaml:2:4: cannot decode \"abc\" as !!int");
    expect_error("v: !!bool 1\n", "f.yaml:1:4: cannot decode \"1\" as !!bool");
    expect_error("v: !custom x\n", "f.yaml:1:4: unsupported tag \"!custom\"");
    expect_error("v: !!set {a: 1}\n", "f.yaml:1:4: unsupported tag \"tag:yaml.org,2002:set\"");
    expect_error("v: !!map [1]\n", "f.yaml:1:4: unsupported tag \"tag:yaml.org,2002:map\"");
}

Test(manifest, keys)
{
    ty_manifest *m = parse_ok("8080: a\n\"quoted\": b\ntrue: c\n'': d\n");
    json_t *d = m->docs[0].obj;
    cr_expect_str_eq(json_string_value(json_object_get(d, "8080")), "a");
    cr_expect_str_eq(json_string_value(json_object_get(d, "quoted")), "b");
    cr_expect_str_eq(json_string_value(json_object_get(d, "true")), "c");
    cr_expect_str_eq(json_string_value(json_object_get(d, "")), "d");
    ty_manifest_free(m);

    expect_error("a: 1\n~: x\n", "f.yaml:2:1: mapping key is null");
    expect_error("? [a]\n: b\n", "f.yaml:1:3: mapping keys must be strings, found a sequence");
    expect_error("{a: 1}: b\n", "f.yaml:1:1: mapping keys must be strings, found a mapping");
    expect_error("a: &x [1]\n*x : 2\n", "f.yaml:2:1: mapping keys must be strings, found a sequence");
    expect_error("\"a\\0b\": 1\n", "f.yaml:1:1: mapping key contains a NUL character");
    m = parse_ok("k: &name key\n*name : v\n");
    cr_expect_str_eq(json_string_value(json_object_get(m->docs[0].obj, "key")), "v");
    ty_manifest_free(m);
}

Test(manifest, duplicate_keys)
{
    expect_error("a: 1\nb: 2\na: 3\n", "f.yaml:3:1: duplicate key \"a\"");
    expect_error("spec:\n  x: 1\n  y:\n    z: 1\n    z: 2\n", "f.yaml:5:5: duplicate key \"z\"");
}

Test(manifest, anchors_and_aliases)
{
    ty_manifest *m = parse_ok("base: &b\n"
                              "  image: img\n"
                              "  env: [1, 2]\n"
                              "a: *b\n"
                              "c:\n"
                              "  image: mine\n"
                              "  <<: *b\n"
                              "  extra: &e yes\n"
                              "d: *e\n");
    json_t *doc = m->docs[0].obj;
    json_t *base = json_object_get(doc, "base"), *a = json_object_get(doc, "a");
    json_t *c = json_object_get(doc, "c");
    cr_expect(json_equal(a, base));
    cr_expect_neq(a, base, "aliases expand into copies");
    json_array_append_new(json_object_get(a, "env"), json_integer(3));
    cr_expect_eq(json_array_size(json_object_get(base, "env")), 2, "editing a copy leaves base");
    /* The alias value is where the alias is written; inside it, the anchored source. */
    expect_pos(ty_manifest_pos_member(m, doc, "a", false), 4, 4);
    expect_pos(ty_manifest_pos_member(m, a, "image", false), 2, 10);
    expect_pos(ty_manifest_pos_index(m, json_object_get(a, "env"), 1), 3, 12);
    /* Merge: written keys win, merged ones arrive with their source positions. */
    cr_expect_str_eq(json_string_value(json_object_get(c, "image")), "mine");
    cr_expect_eq(json_array_size(json_object_get(c, "env")), 2);
    cr_expect(json_is_true(json_object_get(c, "extra")));
    cr_expect_null(json_object_get(c, "<<"));
    expect_pos(ty_manifest_pos_member(m, c, "env", true), 3, 3);
    expect_pos(ty_manifest_pos_index(m, json_object_get(c, "env"), 1), 3, 12);
    cr_expect(json_is_true(json_object_get(doc, "d")));
    ty_manifest_free(m);

    m = parse_ok("x: &x {a: 1, b: 2}\ny: &y {b: 3, c: 4}\nz:\n  <<: [*x, *y]\n  a: 0\n");
    json_t *z = json_object_get(m->docs[0].obj, "z");
    cr_expect_eq(json_integer_value(json_object_get(z, "a")), 0);
    cr_expect_eq(json_integer_value(json_object_get(z, "b")), 2, "earlier sources win");
    cr_expect_eq(json_integer_value(json_object_get(z, "c")), 4);
    ty_manifest_free(m);

    expect_error("a: *nope\n",
                 "f.yaml:1:4: unknown anchor \"nope\" (aliases may only refer back to a complete node)");
    expect_error("a: &x [1, *x]\n",
                 "f.yaml:1:11: unknown anchor \"x\" (aliases may only refer back to a complete node)");
    expect_error("a: &x 1\n---\nb: *x\n",
                 "f.yaml:3:4: unknown anchor \"x\" (aliases may only refer back to a complete node)");
    expect_error("a: {<<: 1}\n", "f.yaml:1:9: a merge key (<<) needs a mapping or a sequence of mappings");
}

Test(manifest, alias_expansion_is_bounded)
{
    /* "Billion laughs": ten levels of ten aliases would expand to 10^10 nodes. */
    ty_buf b = TY_BUF_INIT;
    ty_buf_adds(&b, "l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n");
    for (int i = 1; i < 10; i++) {
        ty_buf_addf(&b, "l%d: &l%d [", i, i);
        for (int j = 0; j < 10; j++)
            ty_buf_addf(&b, "%s*l%d", j ? ", " : "", i - 1);
        ty_buf_adds(&b, "]\n");
    }
    /* Refused before ~10,000 nodes are copied: milliseconds, even under the sanitizers (the
     * API server decodes YAML bodies on its loop, so this is how long everyone else waits). */
    int64_t t0 = ty_time_mono_ns();
    char *msg = parse_fail(b.data);
    int64_t took_ms = (ty_time_mono_ns() - t0) / 1000000;
    cr_expect(strstr(msg, "aliases expand to more than 10000 nodes"), "%s", msg);
    cr_expect_lt(took_ms, 200, "took %lld ms", (long long)took_ms);
    free(msg);
    ty_buf_free(&b);
}

Test(manifest, alias_expansion_grows_with_what_is_written)
{
    /* A List reusing one 51-node template per item: 400 items expand to 20,400 nodes, past
     * the floor, but within 64 times the ~1,700 nodes written. */
    ty_buf b = TY_BUF_INIT;
    ty_buf_adds(&b, "kind: List\nitems:\n- &t {kind: Pod, metadata: {name: a}, spec: {x: [");
    for (int i = 0; i < 45; i++)
        ty_buf_addf(&b, "%s%d", i ? ", " : "", i);
    ty_buf_adds(&b, "]}}\n");
    for (int i = 0; i < 400; i++)
        ty_buf_adds(&b, "- {<<: *t, n: 1}\n");
    ty_manifest *m = parse_ok(b.data);
    cr_expect_eq(m->ndocs, 401);
    ty_manifest_free(m);
    ty_buf_free(&b);
}

static char *nested(int levels, const char *inner)
{
    ty_buf b = TY_BUF_INIT;
    for (int i = 0; i < levels; i++)
        ty_buf_adds(&b, "{\"a\": ");
    ty_buf_adds(&b, inner);
    for (int i = 0; i < levels; i++)
        ty_buf_addc(&b, '}');
    return ty_buf_steal(&b);
}

Test(manifest, depth_limit)
{
    char *ok = nested(200, "1");
    ty_manifest_free(parse_ok(ok));
    free(ok);
    char *deep = nested(201, "1");
    char *msg = parse_fail(deep);
    cr_expect_str_eq(msg, "f.yaml:1:1201: nesting deeper than 200 levels");
    free(msg);
    free(deep);

    /* An alias counts with the depth of what it expands to. */
    ty_buf b = TY_BUF_INIT;
    ty_buf_adds(&b, "x: &a ");
    for (int i = 0; i < 150; i++)
        ty_buf_addc(&b, '[');
    for (int i = 0; i < 150; i++)
        ty_buf_addc(&b, ']');
    ty_buf_adds(&b, "\ny: ");
    for (int i = 0; i < 60; i++)
        ty_buf_addc(&b, '[');
    ty_buf_adds(&b, "*a");
    for (int i = 0; i < 60; i++)
        ty_buf_addc(&b, ']');
    msg = parse_fail(b.data);
    cr_expect_str_eq(msg, "f.yaml:2:64: nesting deeper than 200 levels");
    free(msg);
    ty_buf_free(&b);
}

Test(manifest, syntax_errors)
{
    expect_error("a: b: c\n", "f.yaml:1:5: mapping values are not allowed in this context");
    expect_error("a: 1\n b: 2\nc: [1, 2\n",
                 "f.yaml:2:3: mapping values are not allowed in this context");
    expect_error("a: [1, 2\nb: 3\n",
                 "f.yaml:2:2: did not find expected ',' or ']' (while parsing a flow sequence at 1:4)");
    expect_error("{\"a\": 1,, }\n",
                 "f.yaml:1:9: did not find expected node content (while parsing a flow node at 1:9)");
    expect_error("a: \"x\xff\"\n", "f.yaml:1:6: invalid leading UTF-8 octet (#ff)");
    expect_error("a:\n\tb: 1\n",
                 "f.yaml:2:1: found character that cannot start any token (while scanning for the next token at 2:1)");
}

Test(manifest, non_object_documents)
{
    expect_error("- a\n- b\n", "f.yaml:1:1: document 1 is a sequence, not a mapping (an object)");
    expect_error("a: 1\n---\nhello\n", "f.yaml:3:1: document 2 is a string, not a mapping (an object)");
    expect_error("---\n---\n42\n", "f.yaml:3:1: document 2 is an integer, not a mapping (an object)");
}

Test(manifest, list_expansion)
{
    ty_manifest *m = parse_ok("kind: Pod\n"
                              "---\n"
                              "apiVersion: v1\n"
                              "kind: List\n"
                              "items:\n"
                              "- kind: A\n"
                              "- {kind: B}\n"
                              "---\n"
                              "kind: PodList\n"
                              "items: [{kind: C}]\n"
                              "---\n"
                              "kind: List\n"
                              "items: []\n");
    cr_assert_eq(m->ndocs, 4);
    const char *kinds[] = {"Pod", "A", "B", "C"};
    int idx[] = {0, 1, 1, 2};
    for (int i = 0; i < 4; i++) {
        cr_expect_str_eq(json_string_value(json_object_get(m->docs[i].obj, "kind")), kinds[i]);
        cr_expect_eq(m->docs[i].index, idx[i]);
    }
    expect_pos(m->docs[1].pos, 6, 3);
    expect_pos(m->docs[2].pos, 7, 3);
    expect_pos(m->docs[3].pos, 10, 9);
    expect_pos(ty_manifest_pos_member(m, m->docs[2].obj, "kind", false), 7, 10);
    ty_manifest_free(m);

    expect_error("kind: List\nitems:\n- kind: A\n- 3\n",
                 "f.yaml:4:3: document 1: items[1] is an integer, not a mapping (an object)");
    expect_error("kind: List\nitems: {}\n",
                 "f.yaml:2:8: document 1: items of a List must be a sequence, found a mapping");
}

static const char *tmpfile_with(const char *text)
{
    static char path[] = "/tmp/test_manifest_XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

Test(manifest, load_file_and_stdin)
{
    const char *path = tmpfile_with("kind: Job\n---\nkind: Pod\n");
    ty_manifest *m = NULL;
    ty_error err = TY_ERROR_INIT;
    cr_assert_eq(ty_manifest_load(path, &m, &err), 0, "%s", err.msg);
    cr_expect_eq(m->ndocs, 2);
    cr_expect_str_eq(m->file, path);
    ty_manifest_free(m);

    /* Criterion runs each test in its own process, so replacing stdin is safe here. */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    cr_assert_geq(fd, 0);
    cr_assert_eq(dup2(fd, STDIN_FILENO), STDIN_FILENO);
    close(fd);
    cr_assert_eq(ty_manifest_load("-", &m, &err), 0, "%s", err.msg);
    cr_expect_eq(m->ndocs, 2);
    cr_expect_str_eq(m->file, "<stdin>");
    ty_manifest_free(m);
    unlink(path);

    cr_expect_eq(ty_manifest_load("/nonexistent/x.yaml", &m, &err), -1);
    cr_expect(strncmp(err.msg, "open /nonexistent/x.yaml: ", 26) == 0, "%s", err.msg);
    ty_error_clear(&err);
}

Test(manifest, size_limit)
{
    size_t len = (64u << 20) + 1;
    char *big = calloc(1, len);
    cr_assert_not_null(big);
    ty_manifest *m = NULL;
    ty_error err = TY_ERROR_INIT;
    cr_expect_eq(ty_manifest_parse("big.yaml", big, len, &m, &err), -1);
    cr_expect_str_eq(err.msg, "big.yaml: manifest is larger than 64 MiB");
    cr_expect_null(m);
    ty_error_clear(&err);
    free(big);
}
