/* Kubernetes resource quantities ("100m", "1.5", "4Gi", "1e3", "2k"), parsed exactly.
 *
 * The grammar is Kubernetes': <sign><digits>[.<digits>]<suffix> where the suffix is a binary
 * SI (Ki Mi Gi Ti Pi Ei), a decimal SI (n u m "" k M G T P E) or a decimal exponent (e3, E-2).
 * A value is held as an integer count of milli-units, rounded up as Quantity.MilliValue() does
 * (so "1n" of CPU reads as 1m, the smallest unit a request can take), which is exact for every
 * request and limit a pod can express (memory up to 8 PiB). Values that do not fit are errors. */
#ifndef TY_BASE_QUANTITY_H
#define TY_BASE_QUANTITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

typedef struct ty_quantity {
    int64_t milli; /* value x 1000, rounded up toward +infinity */
} ty_quantity;

/* Parses a quantity string. On failure returns -1 with a message such as
 * `quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'`. */
int ty_quantity_parse(const char *s, ty_quantity *out, ty_error *err);
/* Parses a JSON-ish number given as double (YAML `cpu: 2` or `cpu: 0.5`). */
int ty_quantity_from_double(double v, ty_quantity *out, ty_error *err);
/* Whole units, rounded up: 1500m -> 2. */
int64_t ty_quantity_value(ty_quantity q);
/* Canonical text in the style of Kubernetes: "500m", "2", "4Gi" when the value is a whole
 * number of a binary unit and was written so (binary = true), else decimal ("1500M").
 * Writes at most cap bytes; returns out. */
char *ty_quantity_format(ty_quantity q, bool binary, char *out, size_t cap);

#endif
