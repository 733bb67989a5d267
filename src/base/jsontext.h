/* Reading JSON text without parsing it: where a value ends, the top-level members of an
 * object, the value at a path. For texts jansson wrote (the store's objects, compact and
 * valid): objects and arrays are only counted open and closed, their members not checked;
 * a damaged text is found when it is parsed. Strings are checked (no raw control
 * characters) and may hold escapes. */
#ifndef TY_BASE_JSONTEXT_H
#define TY_BASE_JSONTEXT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

/* p past any whitespace (at most end). */
const char *ty_json_skip_ws(const char *p, const char *end);
/* p at a string's opening quote: just past its closing one, or NULL. */
const char *ty_json_skip_string(const char *p, const char *end);
/* Just past the value at p (after whitespace), or NULL when none ends before `end`. */
const char *ty_json_skip_value(const char *p, const char *end);

/* Just past the value at p, or NULL: like ty_json_skip_value, but every member and element
 * of objects and arrays is checked (to a depth of 128), as loading a stored text wants. */
const char *ty_json_check_value(const char *p, const char *end);

/* p past an object's opening brace (after whitespace), or NULL when the text there is not an
 * object. */
const char *ty_json_object_start(const char *p, const char *end);
/* One member of an object's text, as written: the key without its quotes (callers compare
 * plain keys) and the value's text [val, val_end). */
typedef struct ty_json_member {
    const char *key;
    size_t key_len;
    const char *val, *val_end;
} ty_json_member;
/* Reads the member at *p (from ty_json_object_start, then from the last call): 1 with *m set
 * and *p past the member and its comma, 0 at the closing brace, -1 when the text is not an
 * object's. `check`: the value is checked whole (ty_json_check_value), else only skipped. */
int ty_json_next_member(const char **p, const char *end, bool check, ty_json_member *m);
/* Whether the member's key is `name` (inline: a literal's length is known when compiled). */
static inline bool ty_json_member_is(const ty_json_member *m, const char *name)
{
    return strlen(name) == m->key_len && memcmp(m->key, name, m->key_len) == 0;
}

/* Finds top-level members of an object's text in one pass: for each of the n `names`,
 * vals[i] and lens[i] get the text of its value (vals[i] NULL when absent). false when the
 * text is not a JSON object. */
bool ty_json_members(const char *text, size_t len, const char *const *names, size_t n,
                     const char **vals, size_t *lens);

/* The text of the value at `path`: members of objects by name, elements of arrays by index
 * or "-1" for the last, separated by dots ("status.conditions.-1.type"). false when the
 * path leads nowhere. */
bool ty_json_text_at(const char *text, size_t len, const char *path, const char **val,
                     size_t *vlen);

/* A value's text as a tree (a new reference, NULL when it does not parse): a string without
 * escapes directly (the text must be valid UTF-8, as jansson writes it), the rest parsed. */
json_t *ty_json_text_value(const char *v, size_t len);

#endif
