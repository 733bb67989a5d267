/* The subset of gjson (github.com/tidwall/gjson) paths that Katib's trial success and failure
 * conditions use, evaluated over a job object: dotted keys, array indices, "#" (the length),
 * queries "#(key==value)" (first match) and "#(key==value)#" (all matches) with == != < <= >
 * >= and %, and "|" pipes that apply the rest of the path to the result so far. A condition
 * holds as Katib's trial controller decides: the result exists and is not false, an empty
 * array or an empty string. Pure. */
#ifndef TY_CONTROLLERS_GJSON_H
#define TY_CONTROLLERS_GJSON_H

#include <jansson.h>
#include <stdbool.h>

/* A new reference to what `path` selects in `obj`, or NULL when nothing. */
json_t *ty_gjson_get(const json_t *obj, const char *path);
bool ty_gjson_condition(const json_t *obj, const char *path);

#endif
