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

/* p past any whitespace (at most end). */
const char *ty_json_skip_ws(const char *p, const char *end);
/* p at a string's opening quote: just past its closing one, or NULL. */
const char *ty_json_skip_string(const char *p, const char *end);
/* Just past the value at p (after whitespace), or NULL when none ends before `end`. */
const char *ty_json_skip_value(const char *p, const char *end);

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
