#include "base/buf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/mem.h"

char ty_buf_empty[1];

void ty_buf_init(ty_buf *b)
{
    b->data = ty_buf_empty;
    b->len = 0;
    b->cap = 0;
}

void ty_buf_free(ty_buf *b)
{
    if (b->cap)
        free(b->data);
    ty_buf_init(b);
}

void ty_buf_reset(ty_buf *b)
{
    b->len = 0;
    if (b->cap)
        b->data[0] = '\0';
}

void ty_buf_grow(ty_buf *b, size_t extra)
{
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    if (b->cap) {
        b->data = ty_realloc(b->data, cap);
    } else {
        b->data = ty_malloc(cap);
        b->data[0] = '\0';
    }
    b->cap = cap;
}

void ty_buf_add(ty_buf *b, const void *data, size_t len)
{
    ty_buf_grow(b, len);
    memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
}

void ty_buf_adds(ty_buf *b, const char *s) { ty_buf_add(b, s, strlen(s)); }

void ty_buf_addc(ty_buf *b, char c) { ty_buf_add(b, &c, 1); }

void ty_buf_vaddf(ty_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    char probe[1];
    int n = vsnprintf(probe, 0, fmt, ap2);
    va_end(ap2);
    if (n <= 0)
        return;
    ty_buf_grow(b, (size_t)n);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
}

void ty_buf_addf(ty_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ty_buf_vaddf(b, fmt, ap);
    va_end(ap);
}

char *ty_buf_steal(ty_buf *b)
{
    char *s = b->cap ? b->data : ty_strdup("");
    ty_buf_init(b);
    return s;
}

int ty_buf_read_file(ty_buf *b, const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    for (;;) {
        ty_buf_grow(b, 8192);
        ssize_t n = read(fd, b->data + b->len, b->cap - b->len - 1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            close(fd);
            errno = e;
            return -1;
        }
        if (n == 0)
            break;
        b->len += (size_t)n;
        b->data[b->len] = '\0';
    }
    close(fd);
    return 0;
}
