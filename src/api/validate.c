/* Field errors: a growable list of (path, position, message). */
#include "api/validate.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"

void ty_field_errors_add(ty_field_errors *errs, const char *path, ty_pos pos, const char *fmt,
                         ...)
{
    if (errs->count == errs->cap) {
        errs->cap = errs->cap ? errs->cap * 2 : 8;
        errs->items = ty_realloc(errs->items, errs->cap * sizeof(*errs->items));
    }
    va_list ap;
    va_start(ap, fmt);
    ty_field_error *e = &errs->items[errs->count++];
    e->path = ty_strdup(path ? path : "");
    e->pos = pos;
    e->msg = ty_vasprintf(fmt, ap);
    e->webhook = false;
    e->pod_rule = false;
    va_end(ap);
}

void ty_field_errors_warn(ty_field_errors *errs, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    errs->warnings = ty_realloc(errs->warnings, (errs->nwarnings + 1) * sizeof(*errs->warnings));
    errs->warnings[errs->nwarnings++] = ty_vasprintf(fmt, ap);
    va_end(ap);
}

void ty_field_errors_drop_webhook(ty_field_errors *errs)
{
    size_t n = 0;
    for (size_t i = 0; i < errs->count; i++) {
        if (errs->items[i].webhook) {
            free(errs->items[i].path);
            free(errs->items[i].msg);
        } else {
            errs->items[n++] = errs->items[i];
        }
    }
    errs->count = n;
    errs->webhook = NULL;
    for (size_t i = 0; i < errs->nwarnings; i++)
        free(errs->warnings[i]);
    errs->nwarnings = 0;
}

size_t ty_field_errors_schema_count(const ty_field_errors *errs)
{
    size_t n = 0;
    for (size_t i = 0; i < errs->count; i++)
        n += !errs->items[i].webhook;
    return n;
}

void ty_field_errors_free(ty_field_errors *errs)
{
    if (!errs)
        return;
    for (size_t i = 0; i < errs->count; i++) {
        free(errs->items[i].path);
        free(errs->items[i].msg);
    }
    free(errs->items);
    errs->items = NULL;
    errs->count = errs->cap = 0;
    for (size_t i = 0; i < errs->nwarnings; i++)
        free(errs->warnings[i]);
    free(errs->warnings);
    errs->warnings = NULL;
    errs->nwarnings = 0;
    errs->webhook = NULL;
}

/* True when `msg` already quotes `path` ("unknown field \"spec.x\""), so that the line does not
 * name the same field twice. */
static int msg_quotes_path(const char *msg, const char *path)
{
    size_t n = strlen(path);
    for (const char *p = strchr(msg, '"'); p; p = strchr(p + 1, '"'))
        if (strncmp(p + 1, path, n) == 0 && p[1 + n] == '"')
            return 1;
    return 0;
}

void ty_field_errors_format(const ty_field_errors *errs, const char *file, ty_buf *out)
{
    for (size_t i = 0; i < errs->count; i++) {
        const ty_field_error *e = &errs->items[i];
        if (file && *file) {
            ty_buf_adds(out, file);
            if (e->pos.line > 0)
                ty_buf_addf(out, ":%d:%d", e->pos.line, e->pos.col);
            ty_buf_adds(out, ": ");
        } else if (e->pos.line > 0) {
            ty_buf_addf(out, "%d:%d: ", e->pos.line, e->pos.col);
        }
        if (*e->path && !msg_quotes_path(e->msg, e->path))
            ty_buf_addf(out, "%s: ", e->path);
        ty_buf_adds(out, e->msg);
        ty_buf_addc(out, '\n');
    }
}
