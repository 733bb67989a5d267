#include "base/mem.h"

#include <stdio.h>
#include <string.h>

static void out_of_memory(size_t n)
{
    fprintf(stderr, "trainyard: out of memory allocating %zu bytes\n", n);
    abort();
}

void *ty_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        out_of_memory(n);
    return p;
}

void *ty_calloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p)
        out_of_memory(count * size);
    return p;
}

void *ty_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        out_of_memory(n);
    return q;
}

char *ty_strdup(const char *s)
{
    return ty_strndup(s, strlen(s));
}

char *ty_strndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *p = ty_malloc(len + 1);
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

char *ty_vasprintf(const char *fmt, va_list ap)
{
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        out_of_memory(strlen(fmt));
    return s;
}

char *ty_asprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = ty_vasprintf(fmt, ap);
    va_end(ap);
    return s;
}
