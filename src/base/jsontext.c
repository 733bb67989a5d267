#include "base/jsontext.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

const char *ty_json_skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

const char *ty_json_skip_string(const char *p, const char *end)
{
    for (p++; p < end; p++) {
        if (*p == '\\')
            p++;
        else if (*p == '"')
            return p + 1;
        else if ((unsigned char)*p < 0x20)
            return NULL;
    }
    return NULL;
}

const char *ty_json_skip_value(const char *p, const char *end)
{
    p = ty_json_skip_ws(p, end);
    if (p >= end)
        return NULL;
    if (*p == '"')
        return ty_json_skip_string(p, end);
    if (*p == '{' || *p == '[') {
        size_t open = 0;
        for (; p < end; p++) {
            char ch = *p;
            if (ch == '"') {
                if (!(p = ty_json_skip_string(p, end)))
                    return NULL;
                p--;
            } else if (ch == '{' || ch == '[') {
                open++;
            } else if (ch == '}' || ch == ']') {
                if (--open == 0)
                    return p + 1;
            }
        }
        return NULL;
    }
    const char *q = p;
    while (q < end && (isalnum((unsigned char)*q) || *q == '-' || *q == '+' || *q == '.'))
        q++;
    return q > p ? q : NULL;
}

bool ty_json_members(const char *json, size_t len, const char *const *names, size_t n,
                     const char **vals, size_t *lens)
{
    for (size_t i = 0; i < n; i++)
        vals[i] = NULL, lens[i] = 0;
    const char *p = json, *end = json + len;
    p = ty_json_skip_ws(p, end);
    if (p >= end || *p != '{')
        return false;
    p = ty_json_skip_ws(p + 1, end);
    while (p < end && *p == '"') {
        const char *k = p + 1, *ke = ty_json_skip_string(p, end);
        if (!ke)
            return false;
        p = ty_json_skip_ws(ke, end);
        if (p >= end || *p != ':')
            return false;
        const char *v = ty_json_skip_ws(p + 1, end);
        const char *ve = ty_json_skip_value(v, end);
        if (!ve)
            return false;
        size_t klen = (size_t)(ke - 1 - k);
        for (size_t i = 0; i < n; i++) {
            if (strlen(names[i]) == klen && memcmp(k, names[i], klen) == 0) {
                vals[i] = v;
                lens[i] = (size_t)(ve - v);
            }
        }
        p = ty_json_skip_ws(ve, end);
        if (p >= end || *p != ',')
            break;
        p = ty_json_skip_ws(p + 1, end);
    }
    return true;
}

bool ty_json_text_at(const char *json, size_t len, const char *path, const char **val,
                     size_t *vlen)
{
    const char *p = json, *end = json + len;
    while (*path) {
        size_t seg = strcspn(path, ".");
        p = ty_json_skip_ws(p, end);
        if (p >= end)
            return false;
        if (*p == '{') {
            p = ty_json_skip_ws(p + 1, end);
            const char *found = NULL;
            while (!found && p < end && *p == '"') {
                const char *k = p + 1, *ke = ty_json_skip_string(p, end);
                if (!ke)
                    return false;
                p = ty_json_skip_ws(ke, end);
                if (p >= end || *p != ':')
                    return false;
                const char *v = ty_json_skip_ws(p + 1, end);
                if ((size_t)(ke - 1 - k) == seg && memcmp(k, path, seg) == 0) {
                    found = v;
                    break;
                }
                if (!(p = ty_json_skip_value(v, end)))
                    return false;
                p = ty_json_skip_ws(p, end);
                if (p >= end || *p != ',')
                    return false;
                p = ty_json_skip_ws(p + 1, end);
            }
            if (!found)
                return false;
            p = found;
        } else if (*p == '[') {
            bool last = seg == 2 && strncmp(path, "-1", 2) == 0;
            char *num_end;
            long want = last ? -1 : strtol(path, &num_end, 10);
            if (!last && (num_end != path + seg || want < 0))
                return false;
            const char *elem = NULL;
            p = ty_json_skip_ws(p + 1, end);
            for (long i = 0; p < end && *p != ']'; i++) {
                const char *e = ty_json_skip_value(p, end);
                if (!e)
                    return false;
                if (last || i == want)
                    elem = p;
                if (i == want)
                    break;
                p = ty_json_skip_ws(e, end);
                if (p < end && *p == ',')
                    p = ty_json_skip_ws(p + 1, end);
            }
            if (!elem)
                return false;
            p = elem;
        } else {
            return false;
        }
        path += seg;
        if (*path == '.')
            path++;
    }
    p = ty_json_skip_ws(p, end);
    const char *e = ty_json_skip_value(p, end);
    if (!e)
        return false;
    *val = p;
    *vlen = (size_t)(e - p);
    return true;
}

json_t *ty_json_text_value(const char *v, size_t len)
{
    if (len >= 2 && v[0] == '"' && v[len - 1] == '"' && !memchr(v, '\\', len))
        return json_stringn_nocheck(v + 1, len - 2);
    return json_loadb(v, len, JSON_DECODE_ANY, NULL);
}
