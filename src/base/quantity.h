/* Kubernetes resource quantities ("100m", "1.5", "4Gi", "1e3", "2k"), parsed exactly.
 *
 * The grammar is Kubernetes': <sign><digits>[.<digits>]<suffix> where the suffix is a binary
 * SI (Ki Mi Gi Ti Pi Ei), a decimal SI (n u m "" k M G T P E) or a decimal exponent (e3, E-2).
 * A value is held as an integer count of milli-units, rounded away from zero as
 * Quantity.MilliValue() does (so "1n" of CPU reads as 1m, the smallest unit a request can take),
 * which is exact for every request and limit a pod can express (memory up to 8 PiB). Values that
 * do not fit are errors ("quantity is too large"), as are strings over 256 characters.
 * One deliberate difference from Kubernetes: a quantity needs at least one digit, so "Gi", "."
 * and "-" are rejected (Kubernetes reads them as zero). */
#ifndef TY_BASE_QUANTITY_H
#define TY_BASE_QUANTITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "base/error.h"

typedef struct ty_quantity {
    int64_t milli; /* value x 1000, rounded away from zero */
} ty_quantity;

/* Parses a quantity string. On failure returns -1 with Kubernetes' messages:
 * `quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'`
 * or `unable to parse quantity's suffix` ("1mi", "1e"), or "quantity is too large". */
int ty_quantity_parse(const char *s, ty_quantity *out, ty_error *err);
/* Parses a JSON-ish number given as double (YAML `cpu: 2` or `cpu: 0.5`) through its shortest
 * decimal text, so 0.1 is exactly 100m. NaN and infinities are errors. */
int ty_quantity_from_double(double v, ty_quantity *out, ty_error *err);
/* A quantity as it appears in JSON: a string, or a number (YAML `cpu: 2`, `cpu: 0.5`). */
int ty_quantity_from_json(const json_t *v, ty_quantity *out, ty_error *err);
/* Whole units, rounded away from zero: 1500m -> 2, -1500m -> -2. */
int64_t ty_quantity_value(ty_quantity q);
/* Canonical text in the style of Kubernetes: "500m", "2", "4Gi" when the value is a whole
 * number of a binary unit and was written so (binary = true), else decimal ("1500M").
 * Negative values carry a "-". Writes at most cap bytes (32 always suffice); returns out. */
char *ty_quantity_format(ty_quantity q, bool binary, char *out, size_t cap);

#endif
