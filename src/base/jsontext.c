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

/* The end of the JSON value at p, or NULL when it is not one: every member and element
 * checked, to a depth of 128. */
static const char *check_value(const char *p, const char *end, int depth)
{
    p = ty_json_skip_ws(p, end);
    if (p >= end || depth > 128)
        return NULL;
    if (*p == '"')
        return ty_json_skip_string(p, end);
    if (*p == '{' || *p == '[') {
        bool obj = *p == '{';
        char close = obj ? '}' : ']';
        p = ty_json_skip_ws(p + 1, end);
        if (p < end && *p == close)
            return p + 1;
        for (;;) {
            if (obj) {
                p = ty_json_skip_ws(p, end);
                if (p >= end || *p != '"' || !(p = ty_json_skip_string(p, end)))
                    return NULL;
                p = ty_json_skip_ws(p, end);
                if (p >= end || *p != ':')
                    return NULL;
                p++;
            }
            if (!(p = check_value(p, end, depth + 1)))
                return NULL;
            p = ty_json_skip_ws(p, end);
            if (p >= end)
                return NULL;
            if (*p == close)
                return p + 1;
            if (*p != ',')
                return NULL;
            p++;
        }
    }
    const char *q = p;
    while (q < end && (isalnum((unsigned char)*q) || *q == '-' || *q == '+' || *q == '.'))
        q++;
    return q > p ? q : NULL;
}

const char *ty_json_check_value(const char *p, const char *end)
{
    return check_value(p, end, 0);
}

const char *ty_json_object_start(const char *p, const char *end)
{
    p = ty_json_skip_ws(p, end);
    return p < end && *p == '{' ? p + 1 : NULL;
}

int ty_json_next_member(const char **p, const char *end, bool check, ty_json_member *m)
{
    const char *q = ty_json_skip_ws(*p, end);
    if (q < end && *q == '}')
        return 0;
    const char *ke = q < end && *q == '"' ? ty_json_skip_string(q, end) : NULL;
    if (!ke)
        return -1;
    m->key = q + 1;
    m->key_len = (size_t)(ke - 1 - m->key);
    q = ty_json_skip_ws(ke, end);
    if (q >= end || *q != ':')
        return -1;
    m->val = ty_json_skip_ws(q + 1, end);
    m->val_end = check ? ty_json_check_value(m->val, end) : ty_json_skip_value(m->val, end);
    if (!m->val_end)
        return -1;
    q = ty_json_skip_ws(m->val_end, end);
    if (q < end && *q == ',')
        q++;
    else if (q >= end || *q != '}')
        return -1;
    *p = q;
    return 1;
}

bool ty_json_members(const char *json, size_t len, const char *const *names, size_t n,
                     const char **vals, size_t *lens)
{
    for (size_t i = 0; i < n; i++)
        vals[i] = NULL, lens[i] = 0;
    const char *end = json + len, *p = ty_json_object_start(json, end);
    if (!p)
        return false;
    ty_json_member m;
    int rc;
    while ((rc = ty_json_next_member(&p, end, false, &m)) > 0) {
        for (size_t i = 0; i < n; i++) {
            if (ty_json_member_is(&m, names[i])) {
                vals[i] = m.val;
                lens[i] = (size_t)(m.val_end - m.val);
            }
        }
    }
    return rc == 0;
}

/* The element of the array whose text starts at p (past whitespace) that `seg` names: an index,
 * or "-1" for the last; NULL when there is none. */
static const char *element(const char *p, const char *end, const char *seg, size_t seglen)
{
    bool last = seglen == 2 && strncmp(seg, "-1", 2) == 0;
    char *num_end;
    long want = last ? -1 : strtol(seg, &num_end, 10);
    if (!last && (num_end != seg + seglen || want < 0))
        return NULL;
    const char *elem = NULL;
    p = ty_json_skip_ws(p + 1, end);
    for (long i = 0; p < end && *p != ']'; i++) {
        const char *e = ty_json_skip_value(p, end);
        if (!e)
            return NULL;
        if (last || i == want)
            elem = p;
        if (i == want)
            break;
        p = ty_json_skip_ws(e, end);
        if (p < end && *p == ',')
            p = ty_json_skip_ws(p + 1, end);
    }
    return elem;
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
            const char *found = NULL;
            ty_json_member m;
            p++;
            while (!found && ty_json_next_member(&p, end, false, &m) > 0)
                if (m.key_len == seg && memcmp(m.key, path, seg) == 0)
                    found = m.val;
            if (!found)
                return false;
            p = found;
        } else if (*p == '[') {
            if (!(p = element(p, end, path, seg)))
                return false;
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
