/* Label and field selectors (selector.h). Our own parser for the grammar the Kubernetes API
 * server accepts; messages follow the API server's wording so kubectl users see the same
 * errors. */
#include "api/selector.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/jsontext.h"
#include "base/mem.h"

typedef enum sel_op {
    OP_EQ,       /* = == in */
    OP_NE,       /* != notin */
    OP_EXISTS,   /* key */
    OP_NOTEXIST, /* !key */
    OP_GT,       /* key > n */
    OP_LT,       /* key < n */
} sel_op;

typedef struct sel_req {
    char *key;
    sel_op op;
    char **values;
    size_t nvalues;
} sel_req;

struct ty_selector {
    sel_req *reqs;
    size_t nreqs;
};

static void req_add_value(sel_req *r, const char *v, size_t len)
{
    r->values = ty_realloc(r->values, (r->nvalues + 1) * sizeof(char *));
    r->values[r->nvalues++] = ty_strndup(v, len);
}

static sel_req *sel_add(ty_selector *s)
{
    s->reqs = ty_realloc(s->reqs, (s->nreqs + 1) * sizeof(sel_req));
    sel_req *r = &s->reqs[s->nreqs++];
    memset(r, 0, sizeof(*r));
    return r;
}

void ty_selector_free(ty_selector *sel)
{
    if (!sel)
        return;
    for (size_t i = 0; i < sel->nreqs; i++) {
        free(sel->reqs[i].key);
        for (size_t j = 0; j < sel->reqs[i].nvalues; j++)
            free(sel->reqs[i].values[j]);
        free(sel->reqs[i].values);
    }
    free(sel->reqs);
    free(sel);
}

/* ---- label key and value syntax (qualified names, label values) ---- */

static bool is_alnum(char c) { return isascii((unsigned char)c) && isalnum((unsigned char)c); }

/* [A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?, at most 63 characters; empty allowed when
 * `empty_ok` (label values). */
static bool valid_name_part(const char *s, size_t n, bool empty_ok)
{
    if (n == 0)
        return empty_ok;
    if (n > 63 || !is_alnum(s[0]) || !is_alnum(s[n - 1]))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_alnum(s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
            return false;
    return true;
}

static bool lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

/* DNS-1123 subdomain: dot-separated labels of lowercase alphanumerics and '-', each starting
 * and ending with an alphanumeric; at most 253 in all. */
static bool valid_subdomain(const char *s, size_t n)
{
    if (n == 0 || n > 253)
        return false;
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && s[i] != '.') {
            if (!lower_alnum(s[i]) && s[i] != '-')
                return false;
            continue;
        }
        if (i == start || !lower_alnum(s[start]) || !lower_alnum(s[i - 1]))
            return false;
        start = i + 1;
    }
    return true;
}

static int check_key(const char *key, ty_error *err)
{
    const char *slash = strchr(key, '/');
    const char *name = slash ? slash + 1 : key;
    if (slash && !valid_subdomain(key, (size_t)(slash - key)))
        return ty_fail(err, "unable to parse requirement: key: Invalid value: \"%s\": prefix part "
                            "must be a lowercase RFC 1123 subdomain", key);
    if (strchr(name, '/') || !valid_name_part(name, strlen(name), false))
        return ty_fail(err, "unable to parse requirement: key: Invalid value: \"%s\": name part "
                            "must consist of alphanumeric characters, '-', '_' or '.', and must "
                            "start and end with an alphanumeric character (at most 63)", key);
    return 0;
}

static int check_value(const char *v, ty_error *err)
{
    if (!valid_name_part(v, strlen(v), true))
        return ty_fail(err, "unable to parse requirement: values[0]: Invalid value: \"%s\": a "
                            "valid label must be an empty string or consist of alphanumeric "
                            "characters, '-', '_' or '.', and must start and end with an "
                            "alphanumeric character (at most 63)", v);
    return 0;
}

/* ---- label selector lexer ---- */

typedef enum tok_kind {
    T_END, T_ID, T_COMMA, T_LPAREN, T_RPAREN, T_NOT, T_EQ, T_DEQ, T_NE, T_IN, T_NOTIN, T_GT, T_LT,
} tok_kind;

typedef struct lexer {
    const char *p;
    tok_kind kind;
    char *text; /* T_ID */
} lexer;

static bool special(char c)
{
    return c == '=' || c == '!' || c == '(' || c == ')' || c == ',' || c == '>' || c == '<';
}

static void lex_next(lexer *lx)
{
    free(lx->text);
    lx->text = NULL;
    while (*lx->p && isspace((unsigned char)*lx->p))
        lx->p++;
    const char *p = lx->p;
    switch (*p) {
    case '\0': lx->kind = T_END; return;
    case ',': lx->kind = T_COMMA; lx->p++; return;
    case '(': lx->kind = T_LPAREN; lx->p++; return;
    case ')': lx->kind = T_RPAREN; lx->p++; return;
    case '>': lx->kind = T_GT; lx->p++; return;
    case '<': lx->kind = T_LT; lx->p++; return;
    case '!':
        if (p[1] == '=') {
            lx->kind = T_NE;
            lx->p += 2;
        } else {
            lx->kind = T_NOT;
            lx->p++;
        }
        return;
    case '=':
        if (p[1] == '=') {
            lx->kind = T_DEQ;
            lx->p += 2;
        } else {
            lx->kind = T_EQ;
            lx->p++;
        }
        return;
    default:
        break;
    }
    while (*p && !isspace((unsigned char)*p) && !special(*p))
        p++;
    size_t n = (size_t)(p - lx->p);
    lx->text = ty_strndup(lx->p, n);
    lx->p = p;
    lx->kind = strcmp(lx->text, "in") == 0      ? T_IN
               : strcmp(lx->text, "notin") == 0 ? T_NOTIN
                                                : T_ID;
}

/* Parses `( v1, v2 )` after in/notin. `()` is an error, as in the API server; an empty
 * element (`(a,)`) is the empty value. */
static int parse_set(lexer *lx, sel_req *r, ty_error *err)
{
    if (lx->kind != T_LPAREN)
        return ty_fail(err, "unable to parse requirement: found '%s', expected: '('",
                       lx->text ? lx->text : "?");
    lex_next(lx);
    if (lx->kind == T_RPAREN)
        return ty_fail(err, "unable to parse requirement: for 'in', 'notin' operators, values "
                            "set can't be empty");
    for (;;) {
        if (lx->kind == T_ID) {
            if (check_value(lx->text, err) < 0)
                return -1;
            req_add_value(r, lx->text, strlen(lx->text));
            lex_next(lx);
        } else if (lx->kind == T_COMMA || lx->kind == T_RPAREN) {
            /* `(a,,b)` and `(a,)` carry empty values, which are valid label values. */
            req_add_value(r, "", 0);
        } else {
            return ty_fail(err, "unable to parse requirement: found '%s', expected: ',', ')' or "
                                "identifier", lx->text ? lx->text : "?");
        }
        if (lx->kind == T_RPAREN) {
            lex_next(lx);
            return 0;
        }
        if (lx->kind != T_COMMA)
            return ty_fail(err, "unable to parse requirement: found '%s', expected: ',' or ')'",
                           lx->text ? lx->text : "?");
        lex_next(lx);
    }
}

static int parse_requirement(lexer *lx, ty_selector *s, ty_error *err)
{
    bool neg = false;
    if (lx->kind == T_NOT) {
        neg = true;
        lex_next(lx);
    }
    if (lx->kind != T_ID)
        return ty_fail(err, "unable to parse requirement: found '%s', expected: identifier",
                       lx->kind == T_END ? "" : lx->text ? lx->text : "operator");
    if (check_key(lx->text, err) < 0)
        return -1;
    sel_req *r = sel_add(s);
    r->key = TY_STEAL(lx->text);
    lex_next(lx);
    if (neg) {
        r->op = OP_NOTEXIST;
        if (lx->kind != T_END && lx->kind != T_COMMA)
            return ty_fail(err, "unable to parse requirement: exists operator (!) is followed "
                                "by something other than ',' or end");
        return 0;
    }
    switch (lx->kind) {
    case T_END:
    case T_COMMA:
        r->op = OP_EXISTS;
        return 0;
    case T_IN:
    case T_NOTIN:
        r->op = lx->kind == T_IN ? OP_EQ : OP_NE;
        lex_next(lx);
        return parse_set(lx, r, err);
    case T_EQ:
    case T_DEQ:
    case T_NE:
    case T_GT:
    case T_LT: {
        tok_kind op = lx->kind;
        r->op = op == T_NE ? OP_NE : op == T_GT ? OP_GT : op == T_LT ? OP_LT : OP_EQ;
        lex_next(lx);
        /* `a=` selects an empty value. */
        const char *v = lx->kind == T_ID ? lx->text : "";
        if (lx->kind != T_ID && lx->kind != T_END && lx->kind != T_COMMA)
            return ty_fail(err, "unable to parse requirement: found '%s', expected: identifier",
                           lx->text ? lx->text : "operator");
        if (r->op == OP_GT || r->op == OP_LT) {
            char *end;
            errno = 0;
            long long n = strtoll(v, &end, 10);
            (void)n;
            if (!*v || *end || errno)
                return ty_fail(err, "unable to parse requirement: for 'Gt', 'Lt' operators, the "
                                    "value must be an integer");
        } else if (check_value(v, err) < 0) {
            return -1;
        }
        req_add_value(r, v, strlen(v));
        if (lx->kind == T_ID)
            lex_next(lx);
        return 0;
    }
    default:
        return ty_fail(err, "unable to parse requirement: found '%s', expected: in, notin, =, "
                            "==, !=, gt, lt", lx->text ? lx->text : "operator");
    }
}

int ty_label_selector_parse(const char *text, ty_selector **out, ty_error *err)
{
    ty_selector *s = TY_NEW(ty_selector);
    lexer lx = {.p = text ? text : ""};
    lex_next(&lx);
    if (lx.kind != T_END) {
        for (;;) {
            if (parse_requirement(&lx, s, err) < 0)
                goto fail;
            if (lx.kind == T_END)
                break;
            if (lx.kind != T_COMMA) {
                ty_fail(err, "unable to parse requirement: found '%s', expected: ',' or end",
                        lx.text ? lx.text : "operator");
                goto fail;
            }
            lex_next(&lx);
        }
    }
    free(lx.text);
    *out = s;
    return 0;
fail:
    free(lx.text);
    ty_selector_free(s);
    return -1;
}

static bool has_value(const sel_req *r, const char *v)
{
    for (size_t i = 0; i < r->nvalues; i++)
        if (strcmp(r->values[i], v) == 0)
            return true;
    return false;
}

bool ty_label_selector_matches(const ty_selector *sel, const json_t *obj)
{
    if (!sel)
        return true;
    const json_t *labels = json_object_get(json_object_get(obj, "metadata"), "labels");
    for (size_t i = 0; i < sel->nreqs; i++) {
        const sel_req *r = &sel->reqs[i];
        const char *v = json_string_value(json_object_get(labels, r->key));
        switch (r->op) {
        case OP_EQ:
            if (!v || !has_value(r, v))
                return false;
            break;
        case OP_NE:
            if (v && has_value(r, v))
                return false;
            break;
        case OP_EXISTS:
            if (!v)
                return false;
            break;
        case OP_NOTEXIST:
            if (v)
                return false;
            break;
        case OP_GT:
        case OP_LT: {
            if (!v)
                return false;
            char *end;
            errno = 0;
            long long have = strtoll(v, &end, 10);
            if (!*v || *end || errno)
                return false;
            long long want = strtoll(r->values[0], NULL, 10);
            if (r->op == OP_GT ? !(have > want) : !(have < want))
                return false;
            break;
        }
        }
    }
    return true;
}

/* ---- field selectors ---- */

/* Fields each resource supports beyond metadata.name and metadata.namespace (the API server's
 * field label conversion funcs and selectable fields). */
static const char *const pod_fields[] = {
    "spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
    "spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName", NULL};
static const char *const event_fields[] = {
    "involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
    "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
    "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type", NULL};
static const char *const namespace_fields[] = {"status.phase", NULL};
static const char *const node_fields[] = {"spec.unschedulable", NULL};
static const char *const none_fields[] = {NULL};

static const char *const *fields_for(const char *resource)
{
    if (!resource)
        return none_fields;
    if (strcmp(resource, "pods") == 0)
        return pod_fields;
    if (strcmp(resource, "events") == 0)
        return event_fields;
    if (strcmp(resource, "namespaces") == 0)
        return namespace_fields;
    if (strcmp(resource, "nodes") == 0)
        return node_fields;
    return none_fields;
}

static bool field_supported(const char *resource, const char *field)
{
    if (strcmp(field, "metadata.name") == 0 || strcmp(field, "metadata.namespace") == 0)
        return true;
    for (const char *const *f = fields_for(resource); *f; f++)
        if (strcmp(*f, field) == 0)
            return true;
    return false;
}

/* Splits at the first unescaped `sep` (a single character) outside escapes; returns the
 * position or NULL. */
static const char *find_unescaped(const char *s, const char *end, char sep)
{
    for (const char *p = s; p < end; p++) {
        if (*p == '\\' && p + 1 < end) {
            p++;
            continue;
        }
        if (*p == sep)
            return p;
    }
    return NULL;
}

/* Removes the field selector escapes (\, \= \\); any other escape is an error. */
static int unescape(const char *s, size_t n, char **out, ty_error *err)
{
    TY_AUTOBUF ty_buf b = TY_BUF_INIT;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\') {
            if (i + 1 >= n || (s[i + 1] != ',' && s[i + 1] != '=' && s[i + 1] != '\\'))
                return ty_fail(err, "invalid field selector: invalid escape sequence in \"%.*s\"",
                               (int)n, s);
            i++;
        }
        ty_buf_addc(&b, s[i]);
    }
    *out = ty_buf_steal(&b);
    return 0;
}

static int parse_field_term(ty_selector *s, const char *resource, const char *t, size_t n,
                            ty_error *err)
{
    /* Operators in the API server's order: != before == before =. */
    const char *end = t + n;
    const char *op = NULL;
    size_t oplen = 0;
    sel_op kind = OP_EQ;
    for (const char *p = t; p < end && !op; p++) {
        if (*p == '\\') {
            p++;
            continue;
        }
        if (*p == '!' && p + 1 < end && p[1] == '=') {
            op = p, oplen = 2, kind = OP_NE;
        } else if (*p == '=') {
            op = p;
            oplen = (p + 1 < end && p[1] == '=') ? 2 : 1;
        }
    }
    if (!op)
        return ty_fail(err, "invalid selector: '%.*s'; can't understand '%.*s'", (int)n, t,
                       (int)n, t);
    sel_req *r = sel_add(s);
    r->op = kind;
    if (unescape(t, (size_t)(op - t), &r->key, err) < 0)
        return -1;
    char *v = NULL;
    if (unescape(op + oplen, (size_t)(end - op - oplen), &v, err) < 0)
        return -1;
    r->values = ty_malloc(sizeof(char *));
    r->values[0] = v;
    r->nvalues = 1;
    if (!field_supported(resource, r->key))
        return ty_fail(err, "field label not supported: %s", r->key);
    return 0;
}

int ty_field_selector_parse(const char *resource, const char *text, ty_selector **out,
                            ty_error *err)
{
    ty_selector *s = TY_NEW(ty_selector);
    const char *p = text ? text : "";
    const char *end = p + strlen(p);
    while (*p && isspace((unsigned char)*p))
        p++;
    if (p < end) {
        for (;;) {
            const char *comma = find_unescaped(p, end, ',');
            const char *tend = comma ? comma : end;
            /* Empty terms (`a=b,`) are skipped, as the API server does. */
            if (tend > p && parse_field_term(s, resource, p, (size_t)(tend - p), err) < 0) {
                ty_selector_free(s);
                return -1;
            }
            if (!comma)
                break;
            p = comma + 1;
        }
    }
    *out = s;
    return 0;
}

/* The string value of a dotted path: strings as they are, booleans and numbers as the API
 * server's field sets render them, a missing field as "". Events' `source` is
 * source.component. */
static void field_value(const json_t *obj, const char *field, char *tmp, size_t cap,
                        const char **out)
{
    if (strcmp(field, "source") == 0)
        field = "source.component";
    const json_t *v = obj;
    const char *p = field;
    while (v && *p) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        v = json_object_getn(v, p, n);
        p += n + (dot ? 1 : 0);
    }
    if (json_is_string(v))
        *out = json_string_value(v);
    else if (json_is_boolean(v))
        *out = json_is_true(v) ? "true" : "false";
    else if (json_is_integer(v)) {
        snprintf(tmp, cap, "%lld", (long long)json_integer_value(v));
        *out = tmp;
    } else if (strcmp(field, "spec.hostNetwork") == 0 || strcmp(field, "spec.unschedulable") == 0)
        *out = "false"; /* boolean fields default to false */
    else
        *out = "";
}

bool ty_field_selector_matches(const ty_selector *sel, const json_t *obj)
{
    if (!sel)
        return true;
    for (size_t i = 0; i < sel->nreqs; i++) {
        const sel_req *r = &sel->reqs[i];
        char tmp[32];
        const char *v;
        field_value(obj, r->key, tmp, sizeof(tmp), &v);
        bool eq = strcmp(v, r->values[0]) == 0;
        if (r->op == OP_EQ ? !eq : eq)
            return false;
    }
    return true;
}

/* field_value() read from an object's compact text (as jansson writes it) without parsing
 * it: the value is *outlen bytes at *out, which point into the text, or into *parsed (to be
 * freed) when the string has escapes. */
static void field_text_value(const char *text, size_t len, const char *field, const char **out,
                             size_t *outlen, json_t **parsed)
{
    if (strcmp(field, "source") == 0)
        field = "source.component";
    const char *v;
    size_t n;
    *parsed = NULL;
    if (ty_json_text_at(text, len, field, &v, &n) && n > 0) {
        if (*v == '"' && n >= 2) {
            if (!memchr(v, '\\', n)) {
                *out = v + 1;
                *outlen = n - 2;
                return;
            }
            *parsed = ty_json_text_value(v, n);
            if (json_is_string(*parsed)) {
                *out = json_string_value(*parsed);
                *outlen = json_string_length(*parsed);
                return;
            }
        } else if ((n == 4 && memcmp(v, "true", 4) == 0) || (n == 5 && memcmp(v, "false", 5) == 0)) {
            *out = v;
            *outlen = n;
            return;
        } else if ((*v == '-' || isdigit((unsigned char)*v)) && !memchr(v, '.', n) &&
                   !memchr(v, 'e', n) && !memchr(v, 'E', n)) {
            *out = v; /* an integer: jansson writes it as "%lld" renders it */
            *outlen = n;
            return;
        }
    }
    *out = strcmp(field, "spec.hostNetwork") == 0 || strcmp(field, "spec.unschedulable") == 0
               ? "false" /* boolean fields default to false */
               : "";
    *outlen = strlen(*out);
}

bool ty_field_selector_matches_text(const ty_selector *sel, const char *text, size_t len)
{
    if (!sel)
        return true;
    for (size_t i = 0; i < sel->nreqs; i++) {
        const sel_req *r = &sel->reqs[i];
        const char *v;
        size_t n;
        json_t *parsed;
        field_text_value(text, len, r->key, &v, &n, &parsed);
        bool eq = n == strlen(r->values[0]) && memcmp(v, r->values[0], n) == 0;
        json_decref(parsed);
        if (r->op == OP_EQ ? !eq : eq)
            return false;
    }
    return true;
}

static bool values_contain(const json_t *values, const char *v)
{
    size_t i;
    json_t *x;
    json_array_foreach(values, i, x) if (json_is_string(x) && strcmp(json_string_value(x), v) == 0)
        return true;
    return false;
}

bool ty_label_selector_object_matches(const json_t *selector, const json_t *labels)
{
    if (!json_is_object(selector))
        return true;
    const char *key;
    json_t *want;
    json_object_foreach((json_t *)json_object_get(selector, "matchLabels"), key, want)
    {
        const char *have = json_string_value(json_object_get(labels, key));
        if (!have || !json_is_string(want) || strcmp(have, json_string_value(want)) != 0)
            return false;
    }
    size_t i;
    json_t *expr;
    json_array_foreach(json_object_get(selector, "matchExpressions"), i, expr)
    {
        const char *k = json_string_value(json_object_get(expr, "key"));
        const char *op = json_string_value(json_object_get(expr, "operator"));
        if (!k || !op)
            return false;
        const char *have = json_string_value(json_object_get(labels, k));
        const json_t *values = json_object_get(expr, "values");
        bool ok;
        if (strcmp(op, "In") == 0)
            ok = have && values_contain(values, have);
        else if (strcmp(op, "NotIn") == 0)
            ok = !have || !values_contain(values, have);
        else if (strcmp(op, "Exists") == 0)
            ok = have != NULL;
        else if (strcmp(op, "DoesNotExist") == 0)
            ok = have == NULL;
        else
            ok = false;
        if (!ok)
            return false;
    }
    return true;
}
