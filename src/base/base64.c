#include "base/base64.h"

#include <stdint.h>
#include <string.h>

#include "base/mem.h"

static const char std_alpha[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char url_alpha[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

char *ty_base64_encode(const void *data, size_t len, bool url)
{
    const unsigned char *p = data;
    const char *a = url ? url_alpha : std_alpha;
    char *out = ty_malloc((len + 2) / 3 * 4 + 1), *w = out;
    size_t i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        *w++ = a[v >> 18];
        *w++ = a[(v >> 12) & 63];
        *w++ = a[(v >> 6) & 63];
        *w++ = a[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < len ? (uint32_t)p[i + 1] << 8 : 0);
        *w++ = a[v >> 18];
        *w++ = a[(v >> 12) & 63];
        if (i + 1 < len)
            *w++ = a[(v >> 6) & 63];
        else if (!url)
            *w++ = '=';
        if (!url)
            *w++ = '=';
    }
    *w = '\0';
    return out;
}

static int value_of(char c, bool url)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == (url ? '-' : '+'))
        return 62;
    if (c == (url ? '_' : '/'))
        return 63;
    return -1;
}

unsigned char *ty_base64_decode(const char *text, size_t len, bool url, size_t *out_len)
{
    if (!url) {
        if (len % 4)
            return NULL;
        for (int k = 0; k < 2 && len && text[len - 1] == '='; k++)
            len--;
    }
    if (len % 4 == 1)
        return NULL;
    unsigned char *out = ty_malloc(len / 4 * 3 + 3), *w = out;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = value_of(text[i], url);
        if (v < 0) {
            free(out);
            return NULL;
        }
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            *w++ = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    /* The bits left over must be zero: one text, one encoding. */
    if (acc) {
        free(out);
        return NULL;
    }
    *w = '\0';
    *out_len = (size_t)(w - out);
    return out;
}
