/* Field errors: what is wrong with an object, where. Each error names a field path
 * ("spec.pytorchReplicaSpecs.Worker.replicas"), the position in the source when known, and a
 * lowercase message ("must be >= 0"). Printed as "<file>:<line>:<col>: <path>: <msg>". */
#ifndef TY_API_VALIDATE_H
#define TY_API_VALIDATE_H

#include <jansson.h>
#include <stddef.h>

#include "api/manifest.h"
#include "base/buf.h"

typedef struct ty_field_error {
    char *path;
    ty_pos pos;
    char *msg;
} ty_field_error;

typedef struct ty_field_errors {
    ty_field_error *items;
    size_t count, cap;
} ty_field_errors;

#define TY_FIELD_ERRORS_INIT {0}

void ty_field_errors_add(ty_field_errors *errs, const char *path, ty_pos pos, const char *fmt,
                         ...) __attribute__((format(printf, 4, 5)));
void ty_field_errors_free(ty_field_errors *errs);
/* One error a line: "<file>:<line>:<col>: <path>: <msg>" (file and position left out when
 * unknown). */
void ty_field_errors_format(const ty_field_errors *errs, const char *file, ty_buf *out);

#endif
