/* Base64 (RFC 4648): the standard alphabet with padding (kubeconfig's *-data fields, PEM) and
 * the URL alphabet without padding (JWTs). */
#ifndef TY_BASE_BASE64_H
#define TY_BASE_BASE64_H

#include <stdbool.h>
#include <stddef.h>

/* The encoding of `len` bytes, NUL-terminated; caller frees. */
char *ty_base64_encode(const void *data, size_t len, bool url);
/* Decodes `len` characters (the URL alphabet without padding when `url`, else the standard one
 * with its padding); NULL on any character outside the alphabet or a bad length. Returns the
 * bytes (NUL-terminated for convenience, caller frees) and their count in *out_len. */
unsigned char *ty_base64_decode(const char *text, size_t len, bool url, size_t *out_len);

#endif
