/* Error objects.
 *
 * A function that can fail takes a `ty_error *err` as its last argument, returns a negative
 * value on failure and fills `err` with a lowercase message that names what failed and on what
 * ("open /x/job.yaml: no such file or directory"). Callers add context on the way up with
 * ty_error_wrap() and the top level prints the message once.
 *
 * Ownership: the error owns its message; ty_error_clear() frees it and may be called on a
 * cleared error. `err` may be NULL when the caller does not want the message. */
#ifndef TY_BASE_ERROR_H
#define TY_BASE_ERROR_H

#include <stdarg.h>

typedef struct ty_error {
    char *msg;  /* NULL when no error is set */
    int code;   /* errno, or 0 */
} ty_error;

#define TY_ERROR_INIT {0}

/* Sets the message and returns -1, so that `return ty_fail(err, ...)` reads naturally.
 * A message already set is replaced. */
int ty_fail(ty_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Like ty_fail, appending ": strerror(errnum)" and recording errnum. */
int ty_fail_errno(ty_error *err, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Like ty_fail, recording `code` (an HTTP status such as 409 or 422) for the caller to answer
 * with. */
int ty_fail_code(ty_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int ty_vfail(ty_error *err, const char *fmt, va_list ap);
/* Prefixes "<context>: " to the message. Returns -1. No-op message-wise when no error is set. */
int ty_error_wrap(ty_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ty_error_clear(ty_error *err);

static inline void ty_error_cleanup(ty_error *err) { ty_error_clear(err); }
#define TY_CLEANUP_ERROR __attribute__((cleanup(ty_error_cleanup)))

#endif
