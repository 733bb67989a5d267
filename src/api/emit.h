/* YAML text of JSON values (libyaml's emitter): what `trainyard install` prints.
 *
 * The text reads back as the same values with Kubernetes' YAML rules (manifest.h, go-yaml v2)
 * and with YAML 1.1 and 1.2 readers alike: a string is written plain only when no reader
 * could take it for anything else (it starts with a letter, `/` or `_` and is not a YAML 1.1
 * boolean or null word such as `on` or `No`), otherwise quoted; numbers, booleans and null are
 * written plain. Keys keep the objects' order, so equal values give equal text. Each value is
 * one document, started with `---`. */
#ifndef TY_API_EMIT_H
#define TY_API_EMIT_H

#include <jansson.h>
#include <stddef.h>

#include "base/buf.h"
#include "base/error.h"

/* Appends the YAML documents of `docs[0..n)` to `out`. Returns 0, or -1 when libyaml fails
 * (out of memory, or a string that is not valid UTF-8). */
int ty_yaml_emit(ty_buf *out, json_t *const *docs, size_t n, ty_error *err);

#endif
