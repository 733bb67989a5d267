/* Pure helpers of the API server, shared with its unit tests (tests/unit/test_server.c). */
#ifndef TY_SERVER_SERVER_INT_H
#define TY_SERVER_SERVER_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api/validate.h"
#include "base/buf.h"
#include "base/error.h"

/* A request path split as the API server routes it. Strings point into `buf` (owned). */
typedef struct ty_srv_path {
    char *buf;
    const char *group;     /* "" for the core group (/api/v1) */
    const char *version;
    const char *ns;        /* NULL when the path names no namespace */
    const char *resource;  /* NULL for the group-version root */
    const char *name;      /* NULL for a collection */
    const char *sub;       /* "status", "log", or NULL */
} ty_srv_path;

/* Splits "/api/v1/namespaces/default/pods/x/log" or "/apis/kubeflow.org/v1/pytorchjobs".
 * `is_namespaced(ctx, resource)` decides whether "namespaces/<n>/..." names a namespace scope or the
 * namespace object itself. Returns -1 when the path is not a resource path. */
int ty_srv_path_parse(const char *path, bool (*is_namespaced)(void *ctx, const char *resource),
                      void *ctx, ty_srv_path *out);
void ty_srv_path_free(ty_srv_path *p);

/* The integer query parameters (limit, timeoutSeconds, gracePeriodSeconds, sinceSeconds,
 * tailLines, limitBytes) read as the API server decodes them, Go's strconv.ParseInt(v, 10, 64):
 * an optional sign and decimal digits, nothing else. A value that parses is clamped to what its
 * use can hold (a watch's timeout in milliseconds, a log's since in nanoseconds). Fails with
 * "<key>: strconv.ParseInt: parsing \"<v>\": invalid syntax" (or "value out of range"). */
int ty_srv_query_int(const char *key, const char *v, int64_t *out, ty_error *err);
/* Checks every integer query parameter that `lookup(ctx, key)` returns (NULL: absent), so a
 * request with a malformed one is refused (400) before it does anything. */
int ty_srv_query_check(const char *(*lookup)(void *ctx, const char *key), void *ctx,
                       ty_error *err);

/* Continue tokens: the last returned object's store key ("namespace/name", "/name" for a
 * cluster-scoped one), hex-encoded so they are opaque and URL-safe. Decoding returns NULL for
 * anything that is not lowercase or uppercase hex pairs of a key without NUL bytes. */
char *ty_srv_continue_encode(const char *key);
char *ty_srv_continue_decode(const char *token);
/* Orders a store key "namespace/name" against a decoded token as ty_store_list orders
 * objects: by namespace, then name (comparing "ns/name" strings would put "a-b/x" first). */
int ty_srv_continue_compare(const char *key, const char *token);

/* A meta/v1 Status of failure. `details` (stolen, may be NULL). */
json_t *ty_srv_status(int code, const char *reason, const char *message, json_t *details);
/* Maps a field error message ("Invalid value: ...", "Required value", ...) to its cause reason
 * (FieldValueInvalid, FieldValueRequired, ...). */
const char *ty_srv_cause_reason(const char *msg);
/* The aggregate text of field errors as the API server writes it: "p: m" for one,
 * "[p1: m1, p2: m2]" for several. */
void ty_srv_errors_text(const ty_field_errors *errs, ty_buf *out);

/* Name checks as Kubernetes' validation: NULL when valid, else the message. */
const char *ty_srv_check_dns1123_subdomain(const char *name);
const char *ty_srv_check_dns1123_label(const char *name);

/* One CRI log line "<time> <stream> <P|F> <text>": fills the time (ns since the epoch), whether
 * it is partial (P), and where the text starts and how long it is (no newline). Returns -1 for
 * a line not in that format. */
int ty_srv_cri_parse(const char *line, size_t len, int64_t *time_ns, bool *partial,
                     const char **text, size_t *text_len);
/* RFC 3339 with nanoseconds, trailing zeros trimmed, as Go's time.RFC3339Nano (kubectl logs
 * --timestamps). */
void ty_srv_format_rfc3339nano(int64_t ns, ty_buf *out);

#endif
