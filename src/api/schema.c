/* The generic OpenAPI v3 schema walker and the helpers the kinds' rules share.
 *
 * Supported keywords: type (object, array, string, integer, number, boolean), properties,
 * required, additionalProperties (a schema: maps; true: anything), items, enum, minimum,
 * maximum, nullable, format (int32, int64, date-time, and "quantity" for Kubernetes resource
 * quantities, checked with ty_quantity_parse), x-kubernetes-int-or-string and
 * x-kubernetes-preserve-unknown-fields. Anything else (description, x-kubernetes-*) is carried
 * for clients and ignored here. The walk is recursive; schema depth bounds it (no cycles after
 * inlining), and the manifest parser bounds the value side. allOf, oneOf, anyOf and pattern are
 * not interpreted: the schemas here do not need them (a described $ref wrapped in a one-element
 * allOf is resolved when inlining). */
#include "api/api_int.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "base/quantity.h"

/* ---------- documents ---------- */

json_t *ty_schema_doc_load(const char *text)
{
    json_error_t jerr;
    json_t *doc = json_loads(text, 0, &jerr);
    if (!doc) {
        fprintf(stderr, "trainyard: embedded schema: %d:%d: %s\n", jerr.line, jerr.column,
                jerr.text);
        abort();
    }
    return doc;
}

static json_t *inline_value(const json_t *schemas, const json_t *v, int depth)
{
    if (depth > 64) {
        fprintf(stderr, "trainyard: embedded schema: $ref cycle\n");
        abort();
    }
    if (json_is_array(v)) {
        json_t *out = json_array();
        size_t i;
        const json_t *item;
        json_array_foreach(v, i, item) json_array_append_new(out, inline_value(schemas, item, depth + 1));
        return out;
    }
    if (!json_is_object(v))
        return json_deep_copy(v);
    json_t *out;
    const char *ref = json_string_value(json_object_get(v, "$ref"));
    /* {"description": ..., "allOf": [{"$ref": ...}]} is how a described reference is written
     * in OpenAPI 3.0 (keys beside a $ref are ignored there); it inlines like a bare $ref. */
    const json_t *all_of = json_object_get(v, "allOf");
    bool wrapped = !ref && json_array_size(all_of) == 1 &&
                   json_object_get(json_array_get(all_of, 0), "$ref");
    if (wrapped)
        ref = json_string_value(json_object_get(json_array_get(all_of, 0), "$ref"));
    if (ref) {
        const char *prefix = "#/components/schemas/";
        const json_t *target = strncmp(ref, prefix, strlen(prefix)) == 0
                                   ? json_object_get(schemas, ref + strlen(prefix))
                                   : NULL;
        if (!target) {
            fprintf(stderr, "trainyard: embedded schema: unresolved $ref %s\n", ref);
            abort();
        }
        out = inline_value(schemas, target, depth + 1);
    } else {
        out = json_object();
    }
    const char *key;
    const json_t *val;
    json_object_foreach((json_t *)v, key, val) {
        if (strcmp(key, "$ref") != 0 && !(wrapped && strcmp(key, "allOf") == 0))
            json_object_set_new(out, key, inline_value(schemas, val, depth + 1));
    }
    return out;
}

json_t *ty_schema_inline(const json_t *doc, const char *name)
{
    const json_t *schemas = json_object_get(json_object_get(doc, "components"), "schemas");
    const json_t *s = json_object_get(schemas, name);
    if (!s) {
        fprintf(stderr, "trainyard: embedded schema: no component %s\n", name);
        abort();
    }
    return inline_value(schemas, s, 0);
}

/* ---------- paths and positions ---------- */

static bool plain_key(const char *k)
{
    if (!*k)
        return false;
    for (; *k; k++)
        if (!isalnum((unsigned char)*k) && *k != '_' && *k != '-')
            return false;
    return true;
}

/* Every member and element validated grows the path: plain appends, not printf (a fifth of
 * a PyTorchJob's validation was vsnprintf). */
size_t ty_path_key(ty_buf *path, const char *key)
{
    size_t len = path->len;
    if (plain_key(key)) {
        if (len)
            ty_buf_addc(path, '.');
        ty_buf_adds(path, key);
    } else {
        ty_buf_addc(path, '[');
        ty_buf_adds(path, key);
        ty_buf_addc(path, ']');
    }
    return len;
}

size_t ty_path_map_key(ty_buf *path, const char *key)
{
    size_t len = path->len;
    ty_buf_addc(path, '[');
    ty_buf_adds(path, key);
    ty_buf_addc(path, ']');
    return len;
}

size_t ty_path_index(ty_buf *path, size_t i)
{
    size_t len = path->len;
    char digits[24];
    size_t n = 0;
    do
        digits[n++] = (char)('0' + i % 10);
    while ((i /= 10) != 0);
    ty_buf_addc(path, '[');
    while (n)
        ty_buf_addc(path, digits[--n]);
    ty_buf_addc(path, ']');
    return len;
}

void ty_path_pop(ty_buf *path, size_t len)
{
    path->len = len;
    if (path->cap)
        path->data[len] = '\0';
}

ty_pos ty_pos_member(const ty_schema_ctx *c, const json_t *parent, const char *key)
{
    return c->m ? ty_manifest_pos_member(c->m, parent, key, false) : (ty_pos){0, 0};
}

ty_pos ty_pos_key(const ty_schema_ctx *c, const json_t *parent, const char *key)
{
    return c->m ? ty_manifest_pos_member(c->m, parent, key, true) : (ty_pos){0, 0};
}

ty_pos ty_pos_index(const ty_schema_ctx *c, const json_t *array, size_t i)
{
    return c->m ? ty_manifest_pos_index(c->m, array, i) : (ty_pos){0, 0};
}

/* ---------- messages ---------- */

char *ty_value_repr(const json_t *v)
{
    if (!v || json_is_null(v))
        return ty_strdup("null");
    if (json_is_object(v))
        return ty_strdup("\"object\"");
    if (json_is_array(v))
        return ty_strdup("\"array\"");
    if (json_is_real(v)) {
        /* %g keeps 0.5 short; JSON's encoder would print 0.5 as 0.5 too, but 1e300 oddly. */
        return ty_asprintf("%g", json_real_value(v));
    }
    char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    if (!s)
        abort(); /* jansson fails only on out of memory */
    char *out = ty_strdup(s);
    free(s);
    return out;
}

void ty_fe_invalid(ty_schema_ctx *c, const char *path, ty_pos pos, const json_t *value,
                   const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    TY_AUTOFREE char *detail = ty_vasprintf(fmt, ap);
    va_end(ap);
    TY_AUTOFREE char *repr = ty_value_repr(value);
    ty_field_errors_add(c->errs, path, pos, "Invalid value: %s: %s", repr, detail);
}

void ty_fe_required(ty_schema_ctx *c, const char *path, ty_pos pos, const char *detail)
{
    if (detail)
        ty_field_errors_add(c->errs, path, pos, "Required value: %s", detail);
    else
        ty_field_errors_add(c->errs, path, pos, "Required value");
}

void ty_fe_forbidden(ty_schema_ctx *c, const char *path, ty_pos pos, const char *detail)
{
    ty_field_errors_add(c->errs, path, pos, "Forbidden: %s", detail);
}

void ty_fe_duplicate(ty_schema_ctx *c, const char *path, ty_pos pos, const json_t *value)
{
    TY_AUTOFREE char *repr = ty_value_repr(value);
    ty_field_errors_add(c->errs, path, pos, "Duplicate value: %s", repr);
}

void ty_fe_unsupported(ty_schema_ctx *c, const char *path, ty_pos pos, const json_t *value,
                       const char *const *supported, size_t n)
{
    TY_AUTOBUF ty_buf b = TY_BUF_INIT;
    for (size_t i = 0; i < n; i++)
        ty_buf_addf(&b, "%s\"%s\"", i ? ", " : "", supported[i]);
    TY_AUTOFREE char *repr = ty_value_repr(value);
    ty_field_errors_add(c->errs, path, pos, "Unsupported value: %s: supported values: %s", repr,
                        b.data);
}

/* ---------- did you mean ---------- */

/* Levenshtein distance, ignoring case; short strings only (field names). */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t *row = ty_calloc(lb + 1, sizeof(*row));
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t cost = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
            size_t best = diag + cost;
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    size_t d = row[lb];
    free(row);
    return d;
}

const char *ty_suggest(const char *name, const char *const *cands, size_t n)
{
    /* A third of the name's length (at least 2) covers the usual slips (a dropped, doubled
     * or swapped letter, a case mistake) without suggesting unrelated fields. */
    size_t limit = strlen(name) / 3;
    if (limit < 2)
        limit = 2;
    const char *best = NULL;
    size_t best_d = limit + 1;
    for (size_t i = 0; i < n; i++) {
        size_t d = strcasecmp(name, cands[i]) == 0 ? 0 : edit_distance(name, cands[i]);
        if (d < best_d) {
            best_d = d;
            best = cands[i];
        }
    }
    return best;
}

/* ---------- name rules ---------- */

static bool lower_alnum(char ch) { return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9'); }

const char *ty_check_dns1123_label(const char *s)
{
    size_t n = strlen(s);
    if (n > 63)
        return "must be no more than 63 characters";
    bool ok = n > 0 && lower_alnum(s[0]) && lower_alnum(s[n - 1]);
    for (size_t i = 0; ok && i < n; i++)
        ok = lower_alnum(s[i]) || s[i] == '-';
    return ok ? NULL
              : "a lowercase RFC 1123 label must consist of lower case alphanumeric characters "
                "or '-', and must start and end with an alphanumeric character (regex used for "
                "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
}

static const char dns1035_form[] =
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
    "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";

static bool dns1035_form_ok(const char *s, size_t n)
{
    bool ok = n > 0 && s[0] >= 'a' && s[0] <= 'z' && lower_alnum(s[n - 1]);
    for (size_t i = 0; ok && i < n; i++)
        ok = lower_alnum(s[i]) || s[i] == '-';
    return ok;
}

const char *ty_check_dns1035_label(const char *s)
{
    size_t n = strlen(s);
    if (n > 63)
        return "must be no more than 63 characters";
    return dns1035_form_ok(s, n) ? NULL : dns1035_form;
}

char *ty_dns1035_label_reasons(const char *s)
{
    size_t n = strlen(s);
    bool form = dns1035_form_ok(s, n);
    if (n <= 63)
        return form ? NULL : ty_strdup(dns1035_form);
    return ty_asprintf("must be no more than 63 characters%s%s", form ? "" : ",",
                       form ? "" : dns1035_form);
}

const char *ty_check_dns1123_subdomain(const char *s)
{
    size_t n = strlen(s);
    if (n > 253)
        return "must be no more than 253 characters";
    bool ok = n > 0;
    /* Each dot-separated part is a label (without the 63-byte limit, as Kubernetes). */
    for (size_t i = 0; ok && i < n; i++) {
        bool edge = i == 0 || i == n - 1 || s[i - 1] == '.' || s[i + 1] == '.';
        ok = lower_alnum(s[i]) || (!edge && (s[i] == '-' || s[i] == '.'));
    }
    return ok ? NULL
              : "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                "characters, '-' or '.', and must start and end with an alphanumeric character "
                "(regex used for validation is "
                "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
}

const char *ty_check_env_name(const char *s)
{
    bool ok = *s && !isdigit((unsigned char)*s);
    for (const char *p = s; ok && *p; p++)
        ok = isalnum((unsigned char)*p) || *p == '_' || *p == '-' || *p == '.';
    return ok ? NULL
              : "a valid environment variable name must consist of alphabetic characters, "
                "digits, '_', '-', or '.', and must not start with a digit (regex used for "
                "validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')";
}

static bool alnum(char ch) { return isalnum((unsigned char)ch); }

/* A qualified name: [prefix/]name, the prefix a DNS-1123 subdomain, the name at most 63
 * characters of [-A-Za-z0-9_.] starting and ending alphanumeric. */
const char *ty_check_qualified_name(const char *s)
{
    const char *slash = strchr(s, '/');
    const char *name = slash ? slash + 1 : s;
    if (slash) {
        if (strchr(name, '/'))
            return "a qualified name must consist of alphanumeric characters, '-', '_' or '.', "
                   "and must start and end with an alphanumeric character, with an optional "
                   "DNS subdomain prefix and '/' (e.g. 'example.com/MyName')";
        TY_AUTOFREE char *prefix = ty_strndup(s, (size_t)(slash - s));
        if (!*prefix)
            return "prefix part must be non-empty";
        if (ty_check_dns1123_subdomain(prefix))
            return "prefix part a lowercase RFC 1123 subdomain must consist of lower case "
                   "alphanumeric characters, '-' or '.', and must start and end with an "
                   "alphanumeric character";
    }
    size_t n = strlen(name);
    if (n == 0)
        return "name part must be non-empty";
    if (n > 63)
        return "name part must be no more than 63 characters";
    bool ok = alnum(name[0]) && alnum(name[n - 1]);
    for (size_t i = 0; ok && i < n; i++)
        ok = alnum(name[i]) || name[i] == '-' || name[i] == '_' || name[i] == '.';
    return ok ? NULL
              : "name part must consist of alphanumeric characters, '-', '_' or '.', and must "
                "start and end with an alphanumeric character (regex used for validation is "
                "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
}

const char *ty_check_label_value(const char *s)
{
    size_t n = strlen(s);
    if (n > 63)
        return "must be no more than 63 characters";
    bool ok = n == 0 || (alnum(s[0]) && alnum(s[n - 1]));
    for (size_t i = 0; ok && i < n; i++)
        ok = alnum(s[i]) || s[i] == '-' || s[i] == '_' || s[i] == '.';
    return ok ? NULL
              : "a valid label must be an empty string or consist of alphanumeric characters, "
                "'-', '_' or '.', and must start and end with an alphanumeric character (regex "
                "used for validation is '(([A-Za-z0-9][-_.A-Za-z0-9]*)?[A-Za-z0-9])?')";
}

void ty_check_meta_labels(ty_schema_ctx *c, const json_t *meta, ty_buf *path)
{
    static const char *const fields[] = {"labels", "annotations"};
    for (size_t f = 0; f < 2; f++) {
        const json_t *map = json_object_get(meta, fields[f]);
        if (!json_is_object(map))
            continue;
        size_t len = ty_path_key(path, fields[f]), total = 0;
        const char *key;
        json_t *val;
        json_object_foreach((json_t *)map, key, val) {
            /* As ValidateLabels/ValidateAnnotations: errors on the map's path, the offending
             * key or value shown as the value. */
            const char *why = ty_check_qualified_name(key);
            if (why) {
                json_t *k = json_string(key);
                ty_fe_invalid(c, path->data, ty_pos_key(c, map, key), k, "%s", why);
                json_decref(k);
            }
            if (f == 0 && json_is_string(val) && (why = ty_check_label_value(json_string_value(val))))
                ty_fe_invalid(c, path->data, ty_pos_member(c, map, key), val, "%s", why);
            total += strlen(key) + json_string_length(val);
        }
        /* ValidateAnnotationsSize: keys and values together, 256 KiB. */
        if (f == 1 && total > TY_ANNOTATIONS_MAX_BYTES)
            ty_field_errors_add(c->errs, path->data, ty_pos_member(c, meta, fields[f]),
                                "Too long: may not be more than %u bytes",
                                TY_ANNOTATIONS_MAX_BYTES);
        ty_path_pop(path, len);
    }
}

/* ---------- the walk ---------- */

static bool sflag(const json_t *schema, const char *key)
{
    return json_is_true(json_object_get(schema, key));
}

/* RFC 3339 date-time as Kubernetes writes and reads it: 2006-01-02T15:04:05[.frac](Z|+07:00). */
static bool is_date_time(const char *s)
{
    const char *shape = "dddd-dd-ddTdd:dd:dd";
    for (size_t i = 0; shape[i]; i++) {
        if (shape[i] == 'd' ? !isdigit((unsigned char)s[i])
                            : (shape[i] == 'T' ? (s[i] != 'T' && s[i] != 't') : s[i] != shape[i]))
            return false;
    }
    s += strlen(shape);
    if (*s == '.') {
        s++;
        if (!isdigit((unsigned char)*s))
            return false;
        while (isdigit((unsigned char)*s))
            s++;
    }
    if (*s == 'Z' || *s == 'z')
        return s[1] == '\0';
    return (*s == '+' || *s == '-') && isdigit((unsigned char)s[1]) &&
           isdigit((unsigned char)s[2]) && s[3] == ':' && isdigit((unsigned char)s[4]) &&
           isdigit((unsigned char)s[5]) && s[6] == '\0';
}

static void check_quantity(ty_schema_ctx *c, const json_t *val, ty_pos pos, const char *path)
{
    ty_quantity q;
    TY_CLEANUP_ERROR ty_error err = TY_ERROR_INIT;
    int rc;
    if (json_is_string(val))
        rc = ty_quantity_parse(json_string_value(val), &q, &err);
    else if (json_is_integer(val)) {
        char num[32];
        snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(val));
        rc = ty_quantity_parse(num, &q, &err);
    } else if (json_is_real(val))
        rc = ty_quantity_from_double(json_real_value(val), &q, &err);
    else {
        ty_fe_invalid(c, path, pos, val, "must be a quantity (a number or a string)");
        return;
    }
    if (rc < 0)
        ty_fe_invalid(c, path, pos, val, "%s", err.msg ? err.msg : "not a valid quantity");
}

/* Type check; returns false (after reporting) when `val` is not of the schema's type. */
static bool check_type(ty_schema_ctx *c, const json_t *schema, const json_t *val, ty_pos pos,
                       const char *path)
{
    const char *type = json_string_value(json_object_get(schema, "type"));
    const char *format = json_string_value(json_object_get(schema, "format"));
    if (format && strcmp(format, "quantity") == 0) {
        check_quantity(c, val, pos, path);
        return false; /* nothing more to check either way */
    }
    if (sflag(schema, "x-kubernetes-int-or-string")) {
        if (json_is_integer(val) || json_is_string(val))
            return true;
        ty_fe_invalid(c, path, pos, val, "must be of type integer or string");
        return false;
    }
    if (!type)
        return true;
    bool ok = strcmp(type, "object") == 0    ? json_is_object(val)
              : strcmp(type, "array") == 0   ? json_is_array(val)
              : strcmp(type, "string") == 0  ? json_is_string(val)
              : strcmp(type, "integer") == 0 ? json_is_integer(val)
              : strcmp(type, "number") == 0  ? json_is_number(val)
              : strcmp(type, "boolean") == 0 ? json_is_boolean(val)
                                             : true;
    if (!ok)
        ty_fe_invalid(c, path, pos, val, "must be of type %s", type);
    return ok;
}

static void check_scalar(ty_schema_ctx *c, const json_t *schema, const json_t *val, ty_pos pos,
                         const char *path)
{
    const json_t *en = json_object_get(schema, "enum");
    if (json_is_array(en)) {
        size_t i, n = json_array_size(en);
        const json_t *e;
        bool found = false;
        json_array_foreach(en, i, e) found = found || json_equal((json_t *)e, (json_t *)val);
        if (!found) {
            const char **names = ty_calloc(n ? n : 1, sizeof(*names));
            size_t k = 0;
            json_array_foreach(en, i, e) if (json_is_string(e)) names[k++] = json_string_value(e);
            ty_fe_unsupported(c, path, pos, val, names, k);
            free(names);
            return;
        }
    }
    if (json_is_number(val)) {
        double v = json_number_value(val);
        const char *format = json_string_value(json_object_get(schema, "format"));
        json_int_t lo = 0, hi = 0;
        bool has_lo = false, has_hi = false;
        const json_t *mn = json_object_get(schema, "minimum");
        const json_t *mx = json_object_get(schema, "maximum");
        if (json_is_number(mn))
            lo = (json_int_t)json_number_value(mn), has_lo = true;
        if (json_is_number(mx))
            hi = (json_int_t)json_number_value(mx), has_hi = true;
        if (format && strcmp(format, "int32") == 0) {
            if (!has_lo || lo < INT32_MIN)
                lo = INT32_MIN, has_lo = true;
            if (!has_hi || hi > INT32_MAX)
                hi = INT32_MAX, has_hi = true;
        }
        if (has_lo && v < (double)lo)
            ty_fe_invalid(c, path, pos, val, "must be greater than or equal to %" JSON_INTEGER_FORMAT, lo);
        else if (has_hi && v > (double)hi)
            ty_fe_invalid(c, path, pos, val, "must be less than or equal to %" JSON_INTEGER_FORMAT, hi);
    }
    if (json_is_string(val)) {
        const char *format = json_string_value(json_object_get(schema, "format"));
        if (format && strcmp(format, "date-time") == 0 && !is_date_time(json_string_value(val)))
            ty_fe_invalid(c, path, pos, val, "must be an RFC 3339 date-time (2006-01-02T15:04:05Z)");
    }
}

static void walk_object(ty_schema_ctx *c, const json_t *schema, json_t *obj, ty_pos pos,
                        ty_buf *path)
{
    const json_t *props = json_object_get(schema, "properties");
    const json_t *addl = json_object_get(schema, "additionalProperties");
    bool preserve = sflag(schema, "x-kubernetes-preserve-unknown-fields");
    json_t *pruned = json_array();

    const char *key;
    json_t *val;
    json_object_foreach(obj, key, val) {
        const json_t *sub = json_object_get(props, key);
        if (!sub && json_is_object(addl))
            sub = addl;
        if (!sub) {
            if (preserve || json_is_true(addl) || (!props && !addl))
                continue;
            size_t n = json_object_size(props), k = 0;
            const char **names = ty_calloc(n ? n : 1, sizeof(*names));
            const char *pk;
            const json_t *pv;
            json_object_foreach((json_t *)props, pk, pv) names[k++] = pk;
            const char *hint = ty_suggest(key, names, k);
            size_t len = ty_path_key(path, key);
            if (hint)
                ty_field_errors_add(c->errs, path->data, ty_pos_key(c, obj, key),
                                    "unknown field \"%s\" (did you mean \"%s\"?)", path->data, hint);
            else
                ty_field_errors_add(c->errs, path->data, ty_pos_key(c, obj, key),
                                    "unknown field \"%s\"", path->data);
            ty_path_pop(path, len);
            free(names);
            continue;
        }
        if (json_is_null(val) && !sflag(sub, "nullable")) {
            /* The API server drops nulls of non-nullable fields before validation, so
             * `replicas:` left empty means "use the default". */
            json_array_append_new(pruned, json_string(key));
            continue;
        }
        size_t len = ty_path_key(path, key);
        ty_schema_walk(c, sub, val, ty_pos_member(c, obj, key), path);
        ty_path_pop(path, len);
    }
    size_t i;
    json_t *k;
    json_array_foreach(pruned, i, k) json_object_del(obj, json_string_value(k));
    json_decref(pruned);

    const json_t *req = json_object_get(schema, "required");
    const json_t *r;
    json_array_foreach(req, i, r) {
        const char *name = json_string_value(r);
        if (name && !json_object_get(obj, name)) {
            size_t len = ty_path_key(path, name);
            ty_fe_required(c, path->data, pos, NULL);
            ty_path_pop(path, len);
        }
    }
}

void ty_schema_walk(ty_schema_ctx *c, const json_t *schema, json_t *val, ty_pos pos, ty_buf *path)
{
    if (json_is_null(val)) {
        if (!sflag(schema, "nullable"))
            ty_fe_invalid(c, path->data, pos, val, "must not be null");
        return;
    }
    if (!check_type(c, schema, val, pos, path->data))
        return;
    if (json_is_object(val)) {
        walk_object(c, schema, val, pos, path);
    } else if (json_is_array(val)) {
        const json_t *items = json_object_get(schema, "items");
        if (!items)
            return;
        size_t i;
        json_t *item;
        json_array_foreach(val, i, item) {
            size_t len = ty_path_index(path, i);
            ty_schema_walk(c, items, item, ty_pos_index(c, val, i), path);
            ty_path_pop(path, len);
        }
    } else {
        check_scalar(c, schema, val, pos, path->data);
    }
}
