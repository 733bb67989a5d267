/* Pure helpers of the API server: path routing, query parameters, continue tokens, Status
 * objects, name checks, CRI log lines. */
#include "server/server_int.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "base/mem.h"
#include "base/time.h"

int ty_srv_path_parse(const char *path, bool (*is_namespaced)(void *ctx, const char *resource),
                      void *ctx, ty_srv_path *out)
{
    memset(out, 0, sizeof(*out));
    out->buf = ty_strdup(path);
    char *seg[12];
    size_t n = 0;
    for (char *save = NULL, *t = strtok_r(out->buf, "/", &save); t; t = strtok_r(NULL, "/", &save)) {
        if (n == TY_ARRAY_LEN(seg))
            goto bad;
        seg[n++] = t;
    }
    size_t i;
    if (n >= 2 && strcmp(seg[0], "api") == 0) {
        out->group = "";
        out->version = seg[1];
        i = 2;
    } else if (n >= 3 && strcmp(seg[0], "apis") == 0) {
        out->group = seg[1];
        out->version = seg[2];
        i = 3;
    } else {
        goto bad;
    }
    if (i == n)
        return 0;
    /* "namespaces/<ns>/<resource>..." is a namespace scope when <resource> is namespaced;
     * otherwise "namespaces/<name>[/status]" is the namespace object. */
    if (strcmp(seg[i], "namespaces") == 0 && n - i >= 3 && is_namespaced(ctx, seg[i + 2])) {
        out->ns = seg[i + 1];
        i += 2;
    }
    out->resource = seg[i++];
    if (i < n)
        out->name = seg[i++];
    if (i < n)
        out->sub = seg[i++];
    if (i < n)
        goto bad;
    return 0;
bad:
    ty_srv_path_free(out);
    return -1;
}

void ty_srv_path_free(ty_srv_path *p)
{
    free(p->buf);
    memset(p, 0, sizeof(*p));
}

/* Each integer parameter and the range its value is clamped to: a timeout becomes
 * milliseconds and a since nanoseconds from now, which must not overflow (10^9 s is 31 years). */
static const struct {
    const char *key;
    int64_t min, max;
} int_params[] = {
    {"limit", INT64_MIN, INT64_MAX},
    {"timeoutSeconds", INT64_MIN, 1000000000},
    {"gracePeriodSeconds", INT64_MIN, INT64_MAX},
    {"sinceSeconds", -1000000000, 1000000000},
    {"tailLines", INT64_MIN, INT64_MAX},
    {"limitBytes", INT64_MIN, INT64_MAX},
};

int ty_srv_query_int(const char *key, const char *v, int64_t *out, ty_error *err)
{
    const char *p = v + (*v == '+' || *v == '-');
    bool neg = *v == '-';
    if (!*p)
        goto syntax;
    uint64_t mag = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    bool range = false;
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            goto syntax;
        if (mag > (lim - (uint64_t)(*p - '0')) / 10)
            range = true; /* Go reads on: a later non-digit is still a syntax error */
        else
            mag = mag * 10 + (uint64_t)(*p - '0');
    }
    if (range)
        return ty_fail(err, "%s: strconv.ParseInt: parsing \"%.64s\": value out of range", key, v);
    int64_t x = neg ? (int64_t)(0 - mag) : (int64_t)mag;
    for (size_t i = 0; i < TY_ARRAY_LEN(int_params); i++) {
        if (strcmp(int_params[i].key, key) == 0) {
            x = x < int_params[i].min ? int_params[i].min : x;
            x = x > int_params[i].max ? int_params[i].max : x;
        }
    }
    *out = x;
    return 0;
syntax:
    return ty_fail(err, "%s: strconv.ParseInt: parsing \"%.64s\": invalid syntax", key, v);
}

int ty_srv_query_check(const char *(*lookup)(void *ctx, const char *key), void *ctx,
                       ty_error *err)
{
    for (size_t i = 0; i < TY_ARRAY_LEN(int_params); i++) {
        const char *v = lookup(ctx, int_params[i].key);
        int64_t x;
        if (v && ty_srv_query_int(int_params[i].key, v, &x, err) < 0)
            return -1;
    }
    return 0;
}

char *ty_srv_continue_encode(const char *key)
{
    TY_AUTOBUF ty_buf b = TY_BUF_INIT;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        ty_buf_addf(&b, "%02x", *p);
    return ty_buf_steal(&b);
}

static int hex_digit(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

char *ty_srv_continue_decode(const char *token)
{
    size_t len = strlen(token);
    if (len % 2)
        return NULL;
    char *out = ty_malloc(len / 2 + 1);
    for (size_t i = 0; i < len / 2; i++) {
        int hi = hex_digit(token[2 * i]), lo = hex_digit(token[2 * i + 1]);
        /* sscanf("%2x") took " f", "-1" and "+f" too, and a NUL would cut the key short. */
        if (hi < 0 || lo < 0 || (hi | lo) == 0) {
            free(out);
            return NULL;
        }
        out[i] = (char)(hi << 4 | lo);
    }
    out[len / 2] = '\0';
    return out;
}

int ty_srv_continue_compare(const char *key, const char *token)
{
    const char *kslash = strchr(key, '/');
    const char *slash = strchr(token, '/');
    size_t nl = kslash ? (size_t)(kslash - key) : strlen(key);
    size_t tl = slash ? (size_t)(slash - token) : strlen(token);
    int c = memcmp(key, token, nl < tl ? nl : tl);
    if (c)
        return c;
    if (nl != tl)
        return nl < tl ? -1 : 1;
    if (!kslash)
        return slash ? -1 : 0;
    return slash ? strcmp(kslash + 1, slash + 1) : 1;
}

json_t *ty_srv_status(int code, const char *reason, const char *message, json_t *details)
{
    json_t *st = json_pack("{s:s, s:s, s:{}, s:s, s:s, s:s, s:i}", "kind", "Status", "apiVersion",
                           "v1", "metadata", "status", "Failure", "message", message, "reason",
                           reason, "code", code);
    if (details)
        json_object_set_new(st, "details", details);
    return st;
}

const char *ty_srv_cause_reason(const char *msg)
{
    static const struct { const char *prefix, *reason; } map[] = {
        {"Invalid value", "FieldValueInvalid"},   {"Required value", "FieldValueRequired"},
        {"Unsupported value", "FieldValueNotSupported"}, {"Duplicate value", "FieldValueDuplicate"},
        {"Forbidden", "FieldValueForbidden"},     {"Too long", "FieldValueTooLong"},
        {"Too many", "FieldValueTooMany"},        {"Not found", "FieldValueNotFound"},
        {"unknown field", "FieldValueInvalid"},
    };
    for (size_t i = 0; i < TY_ARRAY_LEN(map); i++)
        if (strncmp(msg, map[i].prefix, strlen(map[i].prefix)) == 0)
            return map[i].reason;
    return "FieldValueInvalid";
}

/* "unknown field \"spec.x\"" already names its path (validate.h). */
static bool quotes_path(const ty_field_error *e)
{
    return strncmp(e->msg, "unknown field", 13) == 0;
}

void ty_srv_errors_text(const ty_field_errors *errs, ty_buf *out)
{
    if (errs->count > 1)
        ty_buf_addc(out, '[');
    for (size_t i = 0; i < errs->count; i++) {
        const ty_field_error *e = &errs->items[i];
        if (i)
            ty_buf_adds(out, ", ");
        if (e->path && *e->path && !quotes_path(e))
            ty_buf_addf(out, "%s: ", e->path);
        ty_buf_adds(out, e->msg);
    }
    if (errs->count > 1)
        ty_buf_addc(out, ']');
}

static bool alnum_lower(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool label_ok(const char *s, size_t len)
{
    if (len == 0 || len > 63 || !alnum_lower(s[0]) || !alnum_lower(s[len - 1]))
        return false;
    for (size_t i = 0; i < len; i++)
        if (!alnum_lower(s[i]) && s[i] != '-')
            return false;
    return true;
}

const char *ty_srv_check_dns1123_label(const char *name)
{
    size_t len = strlen(name);
    if (len > 63)
        return "must be no more than 63 characters";
    if (!label_ok(name, len))
        return "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or "
               "'-', and must start and end with an alphanumeric character (e.g. 'my-name',  or "
               "'123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
    return NULL;
}

const char *ty_srv_check_dns1123_subdomain(const char *name)
{
    size_t len = strlen(name);
    if (len > 253)
        return "must be no more than 253 characters";
    bool ok = len > 0;
    for (const char *p = name; ok && *p;) {
        const char *dot = strchr(p, '.');
        size_t l = dot ? (size_t)(dot - p) : strlen(p);
        /* Subdomain parts are checked as labels without the 63 limit. */
        ok = l > 0 && alnum_lower(p[0]) && alnum_lower(p[l - 1]);
        for (size_t i = 0; ok && i < l; i++)
            ok = alnum_lower(p[i]) || p[i] == '-';
        p = dot ? dot + 1 : p + l;
        if (dot && !*p)
            ok = false;
    }
    if (!ok)
        return "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
               "characters, '-' or '.', and must start and end with an alphanumeric character "
               "(e.g. 'example.com', regex used for validation is "
               "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
    return NULL;
}

int ty_srv_cri_parse(const char *line, size_t len, int64_t *time_ns, bool *partial,
                     const char **text, size_t *text_len)
{
    const char *end = line + len;
    const char *sp1 = memchr(line, ' ', len);
    if (!sp1 || sp1 - line >= 64)
        return -1;
    char ts[64];
    memcpy(ts, line, (size_t)(sp1 - line));
    ts[sp1 - line] = '\0';
    if (ty_time_parse_rfc3339(ts, time_ns) < 0)
        return -1;
    const char *source = sp1 + 1;
    const char *sp2 = memchr(source, ' ', (size_t)(end - source));
    if (!sp2 || sp2 + 2 > end)
        return -1;
    char tag = sp2[1];
    if ((tag != 'P' && tag != 'F') || (sp2 + 2 < end && sp2[2] != ' '))
        return -1;
    *partial = tag == 'P';
    *text = sp2 + 2 < end ? sp2 + 3 : end;
    *text_len = (size_t)(end - *text);
    return 0;
}

void ty_srv_format_rfc3339nano(int64_t ns, ty_buf *out)
{
    char buf[64];
    ty_time_format_rfc3339(ns, buf, sizeof(buf), 9);
    /* "2026-11-28T14:06:52.123450000Z" -> "...52.12345Z"; ".000000000" goes entirely. */
    char *dot = strchr(buf, '.');
    if (dot) {
        char *z = strchr(dot, 'Z');
        char *p = z;
        while (p > dot + 1 && p[-1] == '0')
            p--;
        if (p == dot + 1)
            p = dot;
        memmove(p, z, strlen(z) + 1);
    }
    ty_buf_adds(out, buf);
}
