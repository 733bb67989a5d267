#include "base/map.h"

#include <stdint.h>
#include <string.h>

#include "base/hash.h"
#include "base/mem.h"

static char tombstone;
#define TOMB (&tombstone)

static size_t hash_bytes(const void *key, size_t len)
{
    return (size_t)ty_fnv1a(key, len);
}

void ty_map_free(ty_map *m)
{
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].key && m->slots[i].key != TOMB)
            free(m->slots[i].key);
    free(m->slots);
    memset(m, 0, sizeof(*m));
}

static ty_map_slot *find(const ty_map *m, const void *key, size_t keylen, size_t h)
{
    if (!m->cap)
        return NULL;
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        ty_map_slot *s = &m->slots[i];
        if (!s->key)
            return NULL;
        if (s->key != TOMB && s->hash == h && s->keylen == keylen &&
            memcmp(s->key, key, keylen) == 0)
            return s;
    }
}

static void rehash(ty_map *m, size_t cap)
{
    ty_map_slot *old = m->slots;
    size_t oldcap = m->cap;
    m->slots = ty_calloc(cap, sizeof(ty_map_slot));
    m->cap = cap;
    m->used = m->count;
    for (size_t i = 0; i < oldcap; i++) {
        ty_map_slot *s = &old[i];
        if (!s->key || s->key == TOMB)
            continue;
        size_t j = s->hash & (cap - 1);
        while (m->slots[j].key)
            j = (j + 1) & (cap - 1);
        m->slots[j] = *s;
    }
    free(old);
}

void *ty_map_put(ty_map *m, const void *key, size_t keylen, void *value)
{
    size_t h = hash_bytes(key, keylen);
    ty_map_slot *s = find(m, key, keylen, h);
    if (s) {
        void *prev = s->value;
        s->value = value;
        return prev;
    }
    if ((m->used + 1) * 4 >= m->cap * 3)
        rehash(m, m->cap ? (m->count * 2 >= m->cap / 2 ? m->cap * 2 : m->cap) : 16);
    size_t mask = m->cap - 1;
    size_t i = h & mask;
    while (m->slots[i].key && m->slots[i].key != TOMB)
        i = (i + 1) & mask;
    if (!m->slots[i].key)
        m->used++;
    char *k = ty_malloc(keylen + 1);
    memcpy(k, key, keylen);
    k[keylen] = '\0';
    m->slots[i] = (ty_map_slot){k, keylen, h, value};
    m->count++;
    return NULL;
}

void *ty_map_get(const ty_map *m, const void *key, size_t keylen)
{
    ty_map_slot *s = find(m, key, keylen, hash_bytes(key, keylen));
    return s ? s->value : NULL;
}

bool ty_map_has(const ty_map *m, const void *key, size_t keylen)
{
    return find(m, key, keylen, hash_bytes(key, keylen)) != NULL;
}

void *ty_map_del(ty_map *m, const void *key, size_t keylen)
{
    ty_map_slot *s = find(m, key, keylen, hash_bytes(key, keylen));
    if (!s)
        return NULL;
    void *v = s->value;
    free(s->key);
    s->key = TOMB;
    s->value = NULL;
    m->count--;
    return v;
}

void *ty_map_puts(ty_map *m, const char *key, void *value) { return ty_map_put(m, key, strlen(key), value); }
void *ty_map_gets(const ty_map *m, const char *key) { return ty_map_get(m, key, strlen(key)); }
void *ty_map_dels(ty_map *m, const char *key) { return ty_map_del(m, key, strlen(key)); }

bool ty_map_next(const ty_map *m, size_t *iter, const ty_map_slot **slot)
{
    for (; *iter < m->cap; (*iter)++) {
        ty_map_slot *s = &m->slots[*iter];
        if (s->key && s->key != TOMB) {
            *slot = s;
            (*iter)++;
            return true;
        }
    }
    return false;
}
