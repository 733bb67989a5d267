/* JSON merge patch, JSON patch and strategic merge patch (patch.h). */
#include "api/patch.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <stdlib.h>
#include <string.h>

#include "api/kinds.h"
#include "base/buf.h"
#include "base/mem.h"

enum { CODE_BAD_REQUEST = 400, CODE_UNSUPPORTED = 415, CODE_UNPROCESSABLE = 422 };

/* ---- RFC 7386 ---- */

static json_t *merge(const json_t *target, const json_t *patch)
{
    if (!json_is_object(patch))
        return json_deep_copy(patch);
    json_t *out = json_is_object(target) ? json_deep_copy(target) : json_object();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)patch, k, v) {
        if (json_is_null(v)) {
            json_object_del(out, k);
            continue;
        }
        json_object_set_new(out, k, merge(json_object_get(out, k), v));
    }
    return out;
}

int ty_patch_merge(const json_t *target, const json_t *patch, json_t **out, ty_error *err)
{
    if (!patch)
        return ty_fail_code(err, CODE_BAD_REQUEST, "merge patch: no patch document");
    *out = merge(target, patch);
    return 0;
}

/* ---- RFC 6902 ---- */

/* Numbers compare by value (1 equals 1.0), objects regardless of member order (RFC 6902
 * section 4.6). */
static bool json_same(const json_t *a, const json_t *b)
{
    if (json_is_number(a) && json_is_number(b))
        return json_number_value(a) == json_number_value(b) &&
               (!json_is_integer(a) || !json_is_integer(b) ||
                json_integer_value(a) == json_integer_value(b));
    if (json_typeof(a) != json_typeof(b))
        return false;
    if (json_is_array(a)) {
        if (json_array_size(a) != json_array_size(b))
            return false;
        for (size_t i = 0; i < json_array_size(a); i++)
            if (!json_same(json_array_get(a, i), json_array_get(b, i)))
                return false;
        return true;
    }
    if (json_is_object(a)) {
        if (json_object_size(a) != json_object_size(b))
            return false;
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)a, k, v) {
            const json_t *w = json_object_get(b, k);
            if (!w || !json_same(v, w))
                return false;
        }
        return true;
    }
    return json_equal((json_t *)a, (json_t *)b);
}

/* A JSON pointer split into unescaped reference tokens (~1 is '/', ~0 is '~'). */
typedef struct pointer {
    char **tok;
    size_t n;
} pointer;

static void pointer_free(pointer *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->tok[i]);
    free(p->tok);
    p->tok = NULL;
    p->n = 0;
}

static int pointer_parse(const char *s, pointer *p, ty_error *err)
{
    p->tok = NULL;
    p->n = 0;
    if (!*s)
        return 0;
    if (*s != '/')
        return ty_fail_code(err, CODE_UNPROCESSABLE, "json patch: invalid pointer \"%s\"", s);
    const char *q = s + 1;
    for (;;) {
        const char *end = strchr(q, '/');
        size_t n = end ? (size_t)(end - q) : strlen(q);
        TY_AUTOBUF ty_buf b = TY_BUF_INIT;
        for (size_t i = 0; i < n; i++) {
            if (q[i] == '~') {
                if (i + 1 < n && (q[i + 1] == '0' || q[i + 1] == '1')) {
                    ty_buf_addc(&b, q[i + 1] == '0' ? '~' : '/');
                    i++;
                    continue;
                }
                pointer_free(p);
                return ty_fail_code(err, CODE_UNPROCESSABLE, "json patch: invalid pointer \"%s\"",
                                  s);
            }
            ty_buf_addc(&b, q[i]);
        }
        p->tok = ty_realloc(p->tok, (p->n + 1) * sizeof(char *));
        p->tok[p->n++] = ty_buf_steal(&b);
        if (!end)
            return 0;
        q = end + 1;
    }
}

/* An array index token: digits without leading zeros, below `limit` (inclusive when
 * `inclusive`, as add may append at the end). */
static int array_index(const char *tok, size_t size, bool inclusive, size_t *idx)
{
    if (!*tok || (tok[0] == '0' && tok[1]) )
        return -1;
    size_t v = 0;
    for (const char *c = tok; *c; c++) {
        if (*c < '0' || *c > '9' || v > (SIZE_MAX - 9) / 10)
            return -1;
        v = v * 10 + (size_t)(*c - '0');
    }
    if (inclusive ? v > size : v >= size)
        return -1;
    *idx = v;
    return 0;
}

/* The value a pointer names, or NULL. `depth` tokens are followed. */
static json_t *resolve(json_t *doc, const pointer *p, size_t depth)
{
    json_t *v = doc;
    for (size_t i = 0; i < depth && v; i++) {
        if (json_is_object(v)) {
            v = json_object_get(v, p->tok[i]);
        } else if (json_is_array(v)) {
            size_t idx;
            v = array_index(p->tok[i], json_array_size(v), false, &idx) == 0
                    ? json_array_get(v, idx)
                    : NULL;
        } else {
            v = NULL;
        }
    }
    return v;
}

/* Adds `val` (reference stolen) at `p` in *doc; the root may be replaced. */
static int op_add(json_t **doc, const pointer *p, json_t *val, const char *path, ty_error *err)
{
    if (p->n == 0) {
        json_decref(*doc);
        *doc = val;
        return 0;
    }
    json_t *parent = resolve(*doc, p, p->n - 1);
    const char *last = p->tok[p->n - 1];
    if (json_is_object(parent)) {
        json_object_set_new(parent, last, val);
        return 0;
    }
    if (json_is_array(parent)) {
        size_t idx;
        if (strcmp(last, "-") == 0) {
            json_array_append_new(parent, val);
            return 0;
        }
        if (array_index(last, json_array_size(parent), true, &idx) == 0) {
            json_array_insert_new(parent, idx, val);
            return 0;
        }
        json_decref(val);
        return ty_fail_code(err, CODE_UNPROCESSABLE,
                          "json patch: add operation: index out of range at \"%s\"", path);
    }
    json_decref(val);
    return ty_fail_code(err, CODE_UNPROCESSABLE,
                      "json patch: add operation does not apply: doc is missing path: \"%s\"",
                      path);
}

/* Removes the value at `p`; returns it (a new reference) through `removed` when not NULL. */
static int op_remove(json_t **doc, const pointer *p, const char *opname, const char *path,
                     json_t **removed, ty_error *err)
{
    if (p->n == 0) {
        if (removed)
            *removed = json_incref(*doc);
        json_decref(*doc);
        *doc = json_null();
        return 0;
    }
    json_t *parent = resolve(*doc, p, p->n - 1);
    const char *last = p->tok[p->n - 1];
    if (json_is_object(parent) && json_object_get(parent, last)) {
        if (removed)
            *removed = json_incref(json_object_get(parent, last));
        json_object_del(parent, last);
        return 0;
    }
    size_t idx;
    if (json_is_array(parent) && array_index(last, json_array_size(parent), false, &idx) == 0) {
        if (removed)
            *removed = json_incref(json_array_get(parent, idx));
        json_array_remove(parent, idx);
        return 0;
    }
    return ty_fail_code(err, CODE_UNPROCESSABLE,
                      "json patch: %s operation does not apply: doc is missing path: \"%s\"",
                      opname, path);
}

static int apply_op(json_t **doc, const json_t *op, size_t i, ty_error *err)
{
    if (!json_is_object(op))
        return ty_fail_code(err, CODE_BAD_REQUEST, "json patch: operation %zu is not an object", i);
    const char *name = json_string_value(json_object_get(op, "op"));
    const char *path = json_string_value(json_object_get(op, "path"));
    if (!name)
        return ty_fail_code(err, CODE_BAD_REQUEST, "json patch: operation %zu has no \"op\"", i);
    if (!path)
        return ty_fail_code(err, CODE_BAD_REQUEST, "json patch: operation %zu (%s) has no \"path\"",
                          i, name);
    json_t *value = json_object_get(op, "value");
    const char *from = json_string_value(json_object_get(op, "from"));
    bool needs_value = strcmp(name, "add") == 0 || strcmp(name, "replace") == 0 ||
                       strcmp(name, "test") == 0;
    bool needs_from = strcmp(name, "move") == 0 || strcmp(name, "copy") == 0;
    if (needs_value && !value)
        return ty_fail_code(err, CODE_BAD_REQUEST, "json patch: %s operation at \"%s\" has no "
                          "\"value\"", name, path);
    if (needs_from && !from)
        return ty_fail_code(err, CODE_BAD_REQUEST, "json patch: %s operation at \"%s\" has no "
                          "\"from\"", name, path);
    pointer p = {0}, f = {0};
    int rc = -1;
    if (pointer_parse(path, &p, err) < 0)
        return -1;
    if (from && needs_from && pointer_parse(from, &f, err) < 0)
        goto out;

    if (strcmp(name, "add") == 0) {
        rc = op_add(doc, &p, json_deep_copy(value), path, err);
    } else if (strcmp(name, "remove") == 0) {
        rc = op_remove(doc, &p, "remove", path, NULL, err);
    } else if (strcmp(name, "replace") == 0) {
        if (!resolve(*doc, &p, p.n)) {
            ty_fail_code(err, CODE_UNPROCESSABLE, "json patch: replace operation does not apply: "
                       "doc is missing key: \"%s\"", path);
            goto out;
        }
        if (op_remove(doc, &p, "replace", path, NULL, err) < 0)
            goto out;
        rc = op_add(doc, &p, json_deep_copy(value), path, err);
    } else if (strcmp(name, "move") == 0) {
        /* A location cannot move into one of its own children. */
        size_t fl = strlen(from);
        if (strncmp(path, from, fl) == 0 && path[fl] == '/') {
            ty_fail_code(err, CODE_UNPROCESSABLE, "json patch: move operation: \"from\" %s is a "
                       "prefix of \"path\" %s", from, path);
            goto out;
        }
        json_t *moved = NULL;
        if (op_remove(doc, &f, "move", from, &moved, err) < 0)
            goto out;
        rc = op_add(doc, &p, moved, path, err);
    } else if (strcmp(name, "copy") == 0) {
        json_t *src = resolve(*doc, &f, f.n);
        if (!src) {
            ty_fail_code(err, CODE_UNPROCESSABLE, "json patch: copy operation does not apply: doc "
                       "is missing from path: \"%s\"", from);
            goto out;
        }
        rc = op_add(doc, &p, json_deep_copy(src), path, err);
    } else if (strcmp(name, "test") == 0) {
        json_t *cur = resolve(*doc, &p, p.n);
        if (!cur || !json_same(cur, value)) {
            ty_fail_code(err, CODE_UNPROCESSABLE, "json patch: testing value %s failed: test "
                       "failed", path);
            goto out;
        }
        rc = 0;
    } else {
        ty_fail_code(err, CODE_BAD_REQUEST, "json patch: unknown operation \"%s\"", name);
    }
out:
    pointer_free(&p);
    pointer_free(&f);
    return rc;
}

int ty_patch_json(const json_t *target, const json_t *ops, json_t **out, ty_error *err)
{
    if (!json_is_array(ops))
        return ty_fail_code(err, CODE_BAD_REQUEST, "json patch: the patch is not an array of "
                          "operations");
    json_t *doc = target ? json_deep_copy(target) : json_null();
    for (size_t i = 0; i < json_array_size(ops); i++) {
        if (apply_op(&doc, json_array_get(ops, i), i, err) < 0) {
            json_decref(doc);
            return -1;
        }
    }
    *out = doc;
    return 0;
}

/* ---- strategic merge patch ---- */

/* The lists of metadata every kind merges by key; each kind's own are its registry entry's
 * (ty_kind_info.merge_keys, same spelling). */
static const ty_merge_key metadata_merge_keys[] = {
    {"metadata.ownerReferences", "uid"},
    {"metadata.finalizers", ""},
    {NULL, NULL},
};

static const char *find_key(const ty_merge_key *keys, const char *path)
{
    for (size_t i = 0; keys && keys[i].path; i++)
        if (strcmp(keys[i].path, path) == 0)
            return keys[i].key;
    return NULL;
}

typedef struct smp {
    const char *resource;
    ty_error *err;
} smp;

/* The merge key of the list at `path`, "" for a set of primitives, NULL when the list is
 * replaced whole. */
static const char *list_key(const smp *s, const char *path)
{
    char norm[512];
    const char *c = NULL;
    /* Fold the three container lists into one spelling. */
    static const char *const lists[] = {"spec.containers", "spec.initContainers",
                                        "spec.ephemeralContainers"};
    for (size_t i = 0; i < TY_ARRAY_LEN(lists); i++) {
        size_t n = strlen(lists[i]);
        if (strncmp(path, lists[i], n) == 0 && (path[n] == '\0' || path[n] == '.')) {
            snprintf(norm, sizeof(norm), "spec.*containers%s", path + n);
            c = norm;
        }
    }
    if (!c)
        c = path;
    const char *key = find_key(metadata_merge_keys, c);
    if (key)
        return key;
    const ty_kind_info *k = ty_kind_of_resource(s->resource);
    return k ? find_key(k->merge_keys, c) : NULL;
}

const char *ty_patch_list_key(const char *resource, const char *path)
{
    smp s = {.resource = resource};
    return list_key(&s, path);
}

static bool is_directive(const char *k) { return k[0] == '$'; }

static char *child_path(const char *path, const char *k)
{
    return *path ? ty_asprintf("%s.%s", path, k) : ty_strdup(k);
}

/* A copy of `v` with the directive keys removed at every level (what a patch value turns
 * into where nothing in the original merges with it). */
static json_t *strip_directives(const json_t *v)
{
    if (json_is_object(v)) {
        json_t *o = json_object();
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x) {
            if (!is_directive(k))
                json_object_set_new(o, k, strip_directives(x));
        }
        return o;
    }
    if (json_is_array(v)) {
        json_t *a = json_array();
        for (size_t i = 0; i < json_array_size(v); i++) {
            const json_t *e = json_array_get(v, i);
            const char *dir = json_string_value(json_object_get(e, "$patch"));
            if (dir)
                continue; /* directive elements carry no data of their own */
            json_array_append_new(a, strip_directives(e));
        }
        return a;
    }
    return json_deep_copy(v);
}

static int smp_map(smp *s, const json_t *orig, const json_t *patch, const char *path,
                   json_t **out);

/* The element of `list` whose `key` equals `val`, or -1. */
static ssize_t find_keyed(const json_t *list, const char *key, const json_t *val)
{
    for (size_t i = 0; i < json_array_size(list); i++) {
        const json_t *kv = json_object_get(json_array_get(list, i), key);
        if (kv && json_equal((json_t *)kv, (json_t *)val))
            return (ssize_t)i;
    }
    return -1;
}

static ssize_t find_value(const json_t *list, const json_t *val)
{
    for (size_t i = 0; i < json_array_size(list); i++)
        if (json_equal(json_array_get(list, i), (json_t *)val))
            return (ssize_t)i;
    return -1;
}

/* Index of `e` in `list`, by merge key (or by value for primitives, key ""); -1 if absent. */
static ssize_t index_in(const json_t *list, const json_t *e, const char *key)
{
    if (!*key)
        return find_value(list, e);
    const json_t *kv = json_object_get(e, key);
    return kv ? find_keyed(list, key, kv) : -1;
}

/* The order the API server gives a merged list: the elements named in `order` (the patch
 * list, or a $setElementOrder list) sorted as there, the others ("server only") kept in their
 * order, and the two interleaved by their positions in `server` (the list before the patch):
 * a server-only element goes first only when both it and the next patch element were in the
 * server list and it came first there. So a patch that adds to a list puts the new elements
 * before the server-only ones. */
static void enforce_order(json_t *list, const json_t *order, const json_t *server,
                          const char *key)
{
    size_t n = json_array_size(list);
    json_t *patch_items = json_array(), *server_only = json_array();
    /* patch items in `order` order: walk the order list and pick each from the list */
    for (size_t i = 0; i < json_array_size(order); i++) {
        const json_t *o = json_array_get(order, i);
        if (json_is_object(o) && json_object_get(o, "$patch"))
            continue;
        ssize_t at = index_in(list, o, key);
        if (at >= 0 && index_in(patch_items, json_array_get(list, (size_t)at), key) < 0)
            json_array_append(patch_items, json_array_get(list, (size_t)at));
    }
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(list, i);
        if (index_in(patch_items, e, key) < 0)
            json_array_append(server_only, e);
    }
    json_t *out = json_array();
    size_t i = 0, j = 0, nl = json_array_size(server_only), nr = json_array_size(patch_items);
    while (i < nl || j < nr) {
        if (j >= nr) {
            json_array_append(out, json_array_get(server_only, i++));
        } else if (i >= nl) {
            json_array_append(out, json_array_get(patch_items, j++));
        } else {
            ssize_t li = index_in(server, json_array_get(server_only, i), key);
            ssize_t ri = index_in(server, json_array_get(patch_items, j), key);
            if (li >= 0 && ri >= 0 && li < ri)
                json_array_append(out, json_array_get(server_only, i++));
            else
                json_array_append(out, json_array_get(patch_items, j++));
        }
    }
    json_array_clear(list);
    json_array_extend(list, out);
    json_decref(out);
    json_decref(patch_items);
    json_decref(server_only);
}

/* Merges a keyed list (key != "") or a set of primitives (key == ""). */
static int smp_list(smp *s, const json_t *orig, const json_t *patch, const char *key,
                    const char *path, json_t **out)
{
    /* {"$patch": "replace"} anywhere in the patch list replaces the whole list. */
    for (size_t i = 0; i < json_array_size(patch); i++) {
        const char *d = json_string_value(json_object_get(json_array_get(patch, i), "$patch"));
        if (d && strcmp(d, "replace") == 0) {
            *out = strip_directives(patch);
            return 0;
        }
    }
    json_t *res = json_is_array(orig) ? json_deep_copy(orig) : json_array();
    for (size_t i = 0; i < json_array_size(patch); i++) {
        const json_t *e = json_array_get(patch, i);
        if (!*key) {
            if (find_value(res, e) < 0)
                json_array_append_new(res, json_deep_copy(e));
            continue;
        }
        if (!json_is_object(e)) {
            json_decref(res);
            return ty_fail_code(s->err, CODE_UNPROCESSABLE, "strategic merge patch: %s: element "
                              "%zu is not an object", path, i);
        }
        const json_t *kv = json_object_get(e, key);
        const char *d = json_string_value(json_object_get(e, "$patch"));
        if (!kv) {
            json_decref(res);
            return ty_fail_code(s->err, CODE_UNPROCESSABLE, "strategic merge patch: %s: "
                              "element %zu does not contain declared merge key: %s", path, i,
                              key);
        }
        ssize_t at = find_keyed(res, key, kv);
        if (d && strcmp(d, "delete") == 0) {
            if (at >= 0)
                json_array_remove(res, (size_t)at);
            continue;
        }
        if (d && strcmp(d, "merge") != 0) {
            json_decref(res);
            return ty_fail_code(s->err, CODE_UNPROCESSABLE, "strategic merge patch: %s: unknown "
                              "$patch directive \"%s\"", path, d);
        }
        json_t *merged = NULL;
        if (smp_map(s, at >= 0 ? json_array_get(res, (size_t)at) : NULL, e, path, &merged) < 0) {
            json_decref(res);
            return -1;
        }
        if (!merged) { /* a nested $patch: delete of the whole element */
            if (at >= 0)
                json_array_remove(res, (size_t)at);
        }
        else if (at >= 0)
            json_array_set_new(res, (size_t)at, merged);
        else
            json_array_append_new(res, merged);
    }
    enforce_order(res, patch, orig, key);
    *out = res;
    return 0;
}

/* Merges `patch` (an object) into `orig` (an object or NULL). *out is NULL when the patch
 * deletes the whole object ($patch: delete at the root). */
static int smp_map(smp *s, const json_t *orig, const json_t *patch, const char *path,
                   json_t **out)
{
    const char *d = json_string_value(json_object_get(patch, "$patch"));
    if (d && strcmp(d, "delete") == 0) {
        /* The API server empties a map patched with $patch: delete (and removes a list
         * element); `path` is empty only for the object itself, which cannot be deleted so. */
        *out = *path ? json_object() : NULL;
        return 0;
    }
    if (d && strcmp(d, "replace") == 0) {
        *out = strip_directives(patch);
        return 0;
    }
    if (d && strcmp(d, "merge") != 0)
        return ty_fail_code(s->err, CODE_UNPROCESSABLE, "strategic merge patch: %s: unknown "
                          "$patch directive \"%s\"", *path ? path : "<root>", d);
    json_t *res = json_is_object(orig) ? json_deep_copy(orig) : json_object();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)patch, k, v) {
        if (is_directive(k))
            continue;
        TY_AUTOFREE char *cp = child_path(path, k);
        if (json_is_null(v)) {
            json_object_del(res, k);
            continue;
        }
        json_t *cur = json_object_get(res, k);
        json_t *nv = NULL;
        if (json_is_object(v)) {
            if (smp_map(s, json_is_object(cur) ? cur : NULL, v, cp, &nv) < 0)
                goto fail;
            if (!nv) {
                json_object_del(res, k);
                continue;
            }
        } else if (json_is_array(v)) {
            const char *key = list_key(s, cp);
            if (key) {
                if (smp_list(s, cur, v, key, cp, &nv) < 0)
                    goto fail;
            } else {
                nv = strip_directives(v);
            }
        } else {
            nv = json_deep_copy(v);
        }
        json_object_set_new(res, k, nv);
    }
    /* Directives that refer to a field, applied after the merge. */
    json_object_foreach((json_t *)patch, k, v) {
        if (strncmp(k, "$deleteFromPrimitiveList/", 25) == 0) {
            json_t *list = json_object_get(res, k + 25);
            for (size_t i = 0; json_is_array(list) && i < json_array_size(v); i++) {
                ssize_t at;
                while ((at = find_value(list, json_array_get(v, i))) >= 0)
                    json_array_remove(list, (size_t)at);
            }
        } else if (strncmp(k, "$setElementOrder/", 17) == 0) {
            json_t *list = json_object_get(res, k + 17);
            TY_AUTOFREE char *cp = child_path(path, k + 17);
            const char *key = list_key(s, cp);
            if (json_is_array(list) && json_is_array(v))
                enforce_order(list, v, json_object_get(orig, k + 17), key ? key : "");
        } else if (strcmp(k, "$retainKeys") == 0) {
            if (!json_is_array(v)) {
                ty_fail_code(s->err, CODE_UNPROCESSABLE, "strategic merge patch: %s: $retainKeys "
                           "is not a list", *path ? path : "<root>");
                goto fail;
            }
            /* Every field the patch sets must be listed; fields not listed are cleared (the
             * members of a union the client switched away from). */
            const char *pk;
            json_t *pv;
            json_object_foreach((json_t *)patch, pk, pv) {
                bool listed = json_is_null(pv) || is_directive(pk);
                for (size_t i = 0; i < json_array_size(v) && !listed; i++)
                    listed = json_is_string(json_array_get(v, i)) &&
                             strcmp(json_string_value(json_array_get(v, i)), pk) == 0;
                if (!listed) {
                    ty_fail_code(s->err, CODE_UNPROCESSABLE, "strategic merge patch: %s: invalid "
                               "patch format of retainKeys: %s is not in the list",
                               *path ? path : "<root>", pk);
                    goto fail;
                }
            }
            void *tmp;
            const char *rk;
            json_t *rv;
            json_object_foreach_safe(res, tmp, rk, rv) {
                bool keep = false;
                for (size_t i = 0; i < json_array_size(v) && !keep; i++)
                    keep = json_is_string(json_array_get(v, i)) &&
                           strcmp(json_string_value(json_array_get(v, i)), rk) == 0;
                if (!keep)
                    json_object_del(res, rk);
            }
        } else if (is_directive(k) && strcmp(k, "$patch") != 0) {
            ty_fail_code(s->err, CODE_UNPROCESSABLE, "strategic merge patch: %s: unknown "
                       "directive \"%s\"", *path ? path : "<root>", k);
            goto fail;
        }
    }
    *out = res;
    return 0;
fail:
    json_decref(res);
    return -1;
}

int ty_patch_strategic(const char *resource, const json_t *target, const json_t *patch,
                       json_t **out, ty_error *err)
{
    const ty_kind_info *k = ty_kind_of_resource(resource);
    /* The API server's answer for a custom resource; kubectl falls back to a merge patch. */
    if (!k || !k->builtin)
        return ty_fail_code(err, CODE_UNSUPPORTED, "the body of the request was in an unknown "
                          "format - accepted media types include: application/json-patch+json, "
                          "application/merge-patch+json, application/apply-patch+yaml");
    if (!json_is_object(patch))
        return ty_fail_code(err, CODE_UNPROCESSABLE, "strategic merge patch: the patch is not a "
                          "JSON object");
    smp s = {.resource = resource, .err = err};
    json_t *res = NULL;
    if (smp_map(&s, target, patch, "", &res) < 0)
        return -1;
    if (!res)
        return ty_fail_code(err, CODE_UNPROCESSABLE, "strategic merge patch: $patch: delete of "
                          "the whole object");
    *out = res;
    return 0;
}
