/* Allocation that never returns NULL: out of memory aborts (DESIGN.md), so callers need no
 * error path for it. Cleanup helpers for __attribute__((cleanup)) and the steal idiom. */
#ifndef TY_BASE_MEM_H
#define TY_BASE_MEM_H

#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <unistd.h>

void *ty_malloc(size_t n);
void *ty_calloc(size_t count, size_t size);
void *ty_realloc(void *p, size_t n);
char *ty_strdup(const char *s);
char *ty_strndup(const char *s, size_t n);
/* Formatted allocation; the caller frees. */
char *ty_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *ty_vasprintf(const char *fmt, va_list ap);

#define TY_NEW(type) ((type *)ty_calloc(1, sizeof(type)))

static inline void ty_freep(void *p) { free(*(void **)p); }
static inline void ty_closep(int *fd) { if (*fd >= 0) close(*fd); }
#define TY_AUTOFREE __attribute__((cleanup(ty_freep)))
#define TY_AUTOCLOSE __attribute__((cleanup(ty_closep)))

/* Returns the pointer and clears the variable: `*out = TY_STEAL(p);` */
#define TY_STEAL(p) ({ __typeof__(p) _tmp = (p); (p) = NULL; _tmp; })

#define TY_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
