/* Field errors: what is wrong with an object, where. Each error names a field path
 * ("spec.pytorchReplicaSpecs.Worker.replicas"; map keys that are not plain identifiers are
 * bracketed: "metadata.labels[app.kubernetes.io/name]"), the position in the source when known,
 * and a message worded as Kubernetes' field errors are ("Invalid value: -1: must be greater than
 * or equal to 0", "Required value", "Unsupported value: ...", "unknown field \"spec.x\""), so
 * that the API server can hand them out unchanged. Printed as "<file>:<line>:<col>: <path>: <msg>". */
#ifndef TY_API_VALIDATE_H
#define TY_API_VALIDATE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "api/manifest.h"
#include "base/buf.h"

typedef struct ty_field_error {
    char *path;
    ty_pos pos;
    char *msg;
    /* Found by the kind's validating webhook (the API server answers those 403, the others
     * 422: a webhook only runs on an object the schema accepted). */
    bool webhook;
    /* Found by the API server's own rules for the pods a job's template makes, which trainyard
     * checks up front among the webhook's rules: answered 422 all the same, as the API server
     * answers a pod it refuses. */
    bool pod_rule;
} ty_field_error;

typedef struct ty_field_errors {
    ty_field_error *items;
    size_t count, cap;
    /* The webhook that found the items marked `webhook` (static), and what it warned of
     * (admission warnings: the API server's Warning headers), even when it allowed the write. */
    const char *webhook;
    char **warnings;
    size_t nwarnings;
} ty_field_errors;

#define TY_FIELD_ERRORS_INIT {0}

void ty_field_errors_add(ty_field_errors *errs, const char *path, ty_pos pos, const char *fmt,
                         ...) __attribute__((format(printf, 4, 5)));
void ty_field_errors_free(ty_field_errors *errs);
void ty_field_errors_warn(ty_field_errors *errs, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The number of items the schema and the generic rules found (not marked `webhook`). */
size_t ty_field_errors_schema_count(const ty_field_errors *errs);
/* Removes the webhook's items and warnings (an API server runs no webhook on an object its
 * schema refused, nor on a write of a status subresource). */
void ty_field_errors_drop_webhook(ty_field_errors *errs);
/* Appends one error a line: "<file>:<line>:<col>: <path>: <msg>". The file and the position are
 * left out when unknown (NULL/"" file: "<line>:<col>: ..."), and "<path>: " when the message
 * already quotes the path (unknown fields). */
void ty_field_errors_format(const ty_field_errors *errs, const char *file, ty_buf *out);

/* NULL when `s` is a valid DNS-1123 label (a namespace name), else why not, worded as the
 * API server words it. */
const char *ty_check_dns1123_label(const char *s);

#endif
