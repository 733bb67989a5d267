/* The one hash map: byte-string keys (copied, owned by the map) to `void *` values (not owned).
 *
 * Open addressing with linear probing and tombstones; FNV-1a hashing (base/hash.h). Iteration
 * order is unspecified. Use ty_map_*s for NUL-terminated keys and ty_map_*p for pointer keys. */
#ifndef TY_BASE_MAP_H
#define TY_BASE_MAP_H

#include <stdbool.h>
#include <stddef.h>

typedef struct ty_map_slot {
    char *key;      /* NULL: empty; TY_MAP_TOMBSTONE: deleted */
    size_t keylen;
    size_t hash;
    void *value;
} ty_map_slot;

typedef struct ty_map {
    ty_map_slot *slots;
    size_t cap;   /* power of two, or 0 */
    size_t count; /* live entries */
    size_t used;  /* live + tombstones */
} ty_map;

#define TY_MAP_INIT {0}

void ty_map_free(ty_map *m); /* frees keys, not values */
/* Sets key to value; returns the previous value or NULL. */
void *ty_map_put(ty_map *m, const void *key, size_t keylen, void *value);
void *ty_map_get(const ty_map *m, const void *key, size_t keylen);
bool ty_map_has(const ty_map *m, const void *key, size_t keylen);
/* Removes key; returns its value or NULL. */
void *ty_map_del(ty_map *m, const void *key, size_t keylen);

void *ty_map_puts(ty_map *m, const char *key, void *value);
void *ty_map_gets(const ty_map *m, const char *key);
void *ty_map_dels(ty_map *m, const char *key);

/* Iteration: `for (size_t i = 0; ty_map_next(m, &i, &slot);)` */
bool ty_map_next(const ty_map *m, size_t *iter, const ty_map_slot **slot);

#endif
