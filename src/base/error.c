#include "base/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"

int ty_vfail(ty_error *err, const char *fmt, va_list ap)
{
    if (!err)
        return -1;
    char *msg = ty_vasprintf(fmt, ap);
    free(err->msg);
    err->msg = msg;
    err->code = 0;
    return -1;
}

int ty_fail(ty_error *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ty_vfail(err, fmt, ap);
    va_end(ap);
    return -1;
}

int ty_fail_code(ty_error *err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ty_vfail(err, fmt, ap);
    va_end(ap);
    if (err)
        err->code = code;
    return -1;
}

int ty_fail_errno(ty_error *err, int errnum, const char *fmt, ...)
{
    if (!err)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    char *head = ty_vasprintf(fmt, ap);
    va_end(ap);
    free(err->msg);
    err->msg = ty_asprintf("%s: %s", head, strerror(errnum));
    err->code = errnum;
    free(head);
    return -1;
}

int ty_error_wrap(ty_error *err, const char *fmt, ...)
{
    if (!err || !err->msg)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    char *ctx = ty_vasprintf(fmt, ap);
    va_end(ap);
    char *msg = ty_asprintf("%s: %s", ctx, err->msg);
    free(ctx);
    free(err->msg);
    err->msg = msg;
    return -1;
}

void ty_error_clear(ty_error *err)
{
    if (!err)
        return;
    free(err->msg);
    err->msg = NULL;
    err->code = 0;
}
