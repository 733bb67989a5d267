/* A growable byte string, always NUL-terminated.
 *
 * Rules: `data` is never NULL once initialised (TY_BUF_INIT points at a shared empty string
 * until the first append), `len` excludes the NUL. The buffer owns `data`; ty_buf_free()
 * releases it and leaves an empty buffer; ty_buf_steal() hands it to the caller. */
#ifndef TY_BASE_BUF_H
#define TY_BASE_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct ty_buf {
    char *data;
    size_t len;
    size_t cap; /* 0 while data points at the shared empty string */
} ty_buf;

extern char ty_buf_empty[1];
#define TY_BUF_INIT {ty_buf_empty, 0, 0}

void ty_buf_init(ty_buf *b);
void ty_buf_free(ty_buf *b);
void ty_buf_reset(ty_buf *b); /* len = 0, keeps the allocation */
void ty_buf_grow(ty_buf *b, size_t extra);
void ty_buf_add(ty_buf *b, const void *data, size_t len);
void ty_buf_adds(ty_buf *b, const char *s);
void ty_buf_addc(ty_buf *b, char c);
void ty_buf_addf(ty_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ty_buf_vaddf(ty_buf *b, const char *fmt, va_list ap);
/* Returns the string (caller frees) and leaves the buffer empty. */
char *ty_buf_steal(ty_buf *b);
/* Reads a whole file; returns -1 with errno set on failure. */
int ty_buf_read_file(ty_buf *b, const char *path);

static inline void ty_buf_cleanup(ty_buf *b) { ty_buf_free(b); }
#define TY_AUTOBUF __attribute__((cleanup(ty_buf_cleanup)))

#endif
