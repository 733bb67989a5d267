#include "base/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/time.h"

static ty_log_level min_level = TY_LOG_WARN;

void ty_log_set_level(ty_log_level level) { min_level = level; }

void ty_log_init(ty_log_level fallback)
{
    const char *v = getenv("TRAINYARD_LOG");
    min_level = fallback;
    if (!v)
        return;
    static const char *names[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++)
        if (strcmp(v, names[i]) == 0)
            min_level = (ty_log_level)i;
}

void ty_log(ty_log_level level, const char *fmt, ...)
{
    if (level < min_level)
        return;
    static const char *tags[] = {"debug", "info", "warn", "error"};
    char ts[40];
    ty_time_format_rfc3339(ty_time_now_ns(), ts, sizeof(ts), 3);
    fprintf(stderr, "%s trainyard %s: ", ts, tags[level]);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}
