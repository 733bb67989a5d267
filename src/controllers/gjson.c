#include "controllers/gjson.h"

#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"

/* The end of one path component starting at p: the next '.' or '|' outside a query. */
static const char *component_end(const char *p)
{
    int depth = 0;
    bool quoted = false;
    for (; *p; p++) {
        if (quoted) {
            if (*p == '\\' && p[1])
                p++;
            else if (*p == '"')
                quoted = false;
            continue;
        }
        if (*p == '"')
            quoted = true;
        else if (*p == '(')
            depth++;
        else if (*p == ')')
            depth--;
        else if (depth == 0 && (*p == '.' || *p == '|'))
            return p;
    }
    return p;
}

/* A query's right-hand side as gjson reads it: a quoted string, true/false/null or a number. */
static json_t *literal(const char *s, size_t n)
{
    while (n && *s == ' ')
        s++, n--;
    while (n && s[n - 1] == ' ')
        n--;
    if (n >= 2 && s[0] == '"' && s[n - 1] == '"')
        return json_stringn(s + 1, n - 2);
    json_error_t e;
    json_t *v = json_loadb(s, n, JSON_DECODE_ANY, &e);
    return v ? v : json_stringn(s, n);
}

static int compare(const json_t *a, const json_t *b, bool *ok)
{
    *ok = true;
    if (json_is_number(a) && json_is_number(b)) {
        double x = json_number_value(a), y = json_number_value(b);
        return x < y ? -1 : x > y;
    }
    if (json_is_string(a) && json_is_string(b))
        return strcmp(json_string_value(a), json_string_value(b));
    if (json_is_boolean(a) && json_is_boolean(b))
        return json_is_true(a) - json_is_true(b);
    *ok = false;
    return 0;
}

/* Whether element `el` satisfies the query body "key OP value" (or just "key": it exists). */
static bool query_matches(const json_t *el, const char *q, size_t n)
{
    static const char *const ops[] = {"==", "!=", "<=", ">=", "%", "<", ">", "="};
    const char *op = NULL;
    size_t at = 0;
    bool quoted = false;
    for (size_t i = 0; i < n && !op; i++) {
        if (q[i] == '"')
            quoted = !quoted;
        if (quoted)
            continue;
        for (size_t k = 0; k < sizeof ops / sizeof *ops; k++)
            if (strncmp(q + i, ops[k], strlen(ops[k])) == 0) {
                op = ops[k];
                at = i;
                break;
            }
    }
    if (!op) {
        TY_AUTOFREE char *key = ty_strndup(q, n);
        json_t *v = ty_gjson_get(el, key);
        bool r = v != NULL;
        json_decref(v);
        return r;
    }
    TY_AUTOFREE char *key = ty_strndup(q, at);
    while (*key && key[strlen(key) - 1] == ' ')
        key[strlen(key) - 1] = 0;
    json_t *lhs = *key ? ty_gjson_get(el, key) : json_incref((json_t *)el);
    json_t *rhs = literal(q + at + strlen(op), n - at - strlen(op));
    bool r = false;
    if (lhs) {
        if (strcmp(op, "%") == 0) {
            r = json_is_string(lhs) && json_is_string(rhs) &&
                fnmatch(json_string_value(rhs), json_string_value(lhs), 0) == 0;
        } else {
            bool ok;
            int c = compare(lhs, rhs, &ok);
            if (strcmp(op, "!=") == 0)
                r = !ok || c != 0;
            else if (ok)
                r = (strcmp(op, "==") == 0 || strcmp(op, "=") == 0)   ? c == 0
                    : strcmp(op, "<") == 0                          ? c < 0
                    : strcmp(op, "<=") == 0                         ? c <= 0
                    : strcmp(op, ">") == 0                          ? c > 0
                                                                    : c >= 0;
        }
    }
    json_decref(lhs);
    json_decref(rhs);
    return r;
}

static json_t *step(json_t *cur, const char *comp, size_t n)
{
    if (n == 1 && comp[0] == '#')
        return json_is_array(cur) ? json_integer((json_int_t)json_array_size(cur)) : NULL;
    if (n >= 3 && comp[0] == '#' && comp[1] == '(') {
        bool all = comp[n - 1] == '#';
        size_t end = all ? n - 2 : n - 1;
        if (comp[end] != ')' || !json_is_array(cur))
            return NULL;
        json_t *out = all ? json_array() : NULL;
        size_t i;
        json_t *el;
        json_array_foreach(cur, i, el)
        {
            if (!query_matches(el, comp + 2, end - 2))
                continue;
            if (!all)
                return json_incref(el);
            json_array_append(out, el);
        }
        return out;
    }
    if (json_is_array(cur)) {
        char *e;
        TY_AUTOFREE char *s = ty_strndup(comp, n);
        long idx = strtol(s, &e, 10);
        if (*s && !*e && idx >= 0)
            return json_incref(json_array_get(cur, (size_t)idx));
        /* a key over an array of objects after a "#(...)#" or a "#.key": each one's value */
        return NULL;
    }
    return json_is_object(cur) ? json_incref(json_object_getn(cur, comp, n)) : NULL;
}

json_t *ty_gjson_get(const json_t *obj, const char *path)
{
    json_t *cur = json_incref((json_t *)obj);
    const char *p = path;
    while (cur && *p) {
        const char *end = component_end(p);
        json_t *next = step(cur, p, (size_t)(end - p));
        json_decref(cur);
        cur = next;
        p = *end ? end + 1 : end;
    }
    return cur;
}

bool ty_gjson_condition(const json_t *obj, const char *path)
{
    json_t *v = ty_gjson_get(obj, path);
    bool r = v && !json_is_false(v) && !json_is_null(v) &&
             !(json_is_array(v) && json_array_size(v) == 0) &&
             !(json_is_string(v) && !*json_string_value(v));
    json_decref(v);
    return r;
}
