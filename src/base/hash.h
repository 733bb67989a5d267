/* The one non-cryptographic hash: 64-bit FNV-1a over bytes. Used for hash tables, dedup keys,
 * cache keys and the stable suffix of generated names (ty_kueue_workload_name), so its values
 * must never change: some of them are persisted in object names.
 *
 * Several fields hash incrementally: start from TY_FNV1A_BASIS and add each in turn, e.g.
 *   uint64_t h = ty_fnv1a_str(ty_fnv1a_str(TY_FNV1A_BASIS, a), b);
 * (which equals ty_fnv1a over the concatenation: add a separator when "ab"+"c" and "a"+"bc"
 * must differ). Not a security measure: anyone can craft collisions. */
#ifndef TY_BASE_HASH_H
#define TY_BASE_HASH_H

#include <stddef.h>
#include <stdint.h>

#define TY_FNV1A_BASIS 14695981039346656037ULL
#define TY_FNV1A_PRIME 1099511628211ULL

/* Adds `len` bytes at `data` to the running hash `h`. */
static inline uint64_t ty_fnv1a_add(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * TY_FNV1A_PRIME;
    return h;
}

/* Adds the bytes of the string `s` (not its terminator) to `h`; NULL adds nothing. */
static inline uint64_t ty_fnv1a_str(uint64_t h, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; p && *p; p++)
        h = (h ^ *p) * TY_FNV1A_PRIME;
    return h;
}

/* The hash of `len` bytes. */
static inline uint64_t ty_fnv1a(const void *data, size_t len)
{
    return ty_fnv1a_add(TY_FNV1A_BASIS, data, len);
}

#endif
