/* Pod address allocator; see ipam.h. A bitmap of the pool's addresses (128 KiB for the
 * loopback /12, 32 bytes for a /24) plus a map key -> index: acquire and release are O(1)
 * except for the next-fit scan, which skips whole 64-bit words. */
#include "runtime/ipam.h"

#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "base/map.h"
#include "base/mem.h"

struct ty_ipam {
    uint32_t base, size; /* the pool: base .. base + size - 1 */
    int prefix;
    bool gateway;        /* base + 1 is the gateway, never handed out */
    char host[TY_IPAM_ADDR_MAX];
    uint64_t *used;
    ty_map keys; /* key -> (index + 1) */
    uint32_t next;
};

static ty_ipam *pool_new(uint32_t base, int prefix, bool gateway)
{
    ty_ipam *ipam = TY_NEW(ty_ipam);
    ipam->base = base;
    ipam->prefix = prefix;
    ipam->size = (uint32_t)1 << (32 - prefix);
    ipam->gateway = gateway;
    ipam->used = ty_calloc(ipam->size / 64 + 1, sizeof(uint64_t));
    if (gateway)
        ty_ipam_format(base + 1, ipam->host);
    else
        snprintf(ipam->host, sizeof ipam->host, "127.0.0.1");
    return ipam;
}

ty_ipam *ty_ipam_new(void) { return pool_new((uint32_t)127 << 24 | (uint32_t)16 << 16, 12, false); }

ty_ipam *ty_ipam_new_block(uint32_t network, int prefix)
{
    return pool_new(network & ~((uint32_t)-1 >> prefix), prefix, true);
}

const char *ty_ipam_host(const ty_ipam *ipam) { return ipam->host; }

bool ty_ipam_is_block(const ty_ipam *ipam) { return ipam->gateway; }

static bool usable(const ty_ipam *ipam, uint32_t i)
{
    uint32_t last = (ipam->base + i) & 0xff;
    if (last == 0 || last == 255 || i == 0 || i == ipam->size - 1)
        return false;
    return !(ipam->gateway && i == 1);
}

int ty_ipam_parse(const char *s, uint32_t *out)
{
    unsigned a, b, c, d;
    char end;
    if (!s || sscanf(s, "%3u.%3u.%3u.%3u%c", &a, &b, &c, &d, &end) != 4 || a > 255 ||
        b > 255 || c > 255 || d > 255)
        return -1;
    *out = (uint32_t)a << 24 | (uint32_t)b << 16 | (uint32_t)c << 8 | (uint32_t)d;
    return 0;
}

void ty_ipam_format(uint32_t a, char out[TY_IPAM_ADDR_MAX])
{
    snprintf(out, TY_IPAM_ADDR_MAX, "%u.%u.%u.%u", a >> 24, (a >> 16) & 0xff, (a >> 8) & 0xff,
             a & 0xff);
}

static void pool_name(const ty_ipam *ipam, char out[24])
{
    char a[TY_IPAM_ADDR_MAX];
    ty_ipam_format(ipam->base, a);
    snprintf(out, 24, "%s/%d", a, ipam->prefix);
}

void ty_ipam_scatter(ty_ipam *ipam)
{
    uint32_t r = 0;
    if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
        r = (uint32_t)getpid() * 2654435761u;
    ipam->next = r % ipam->size;
}

void ty_ipam_free(ty_ipam *ipam)
{
    if (!ipam)
        return;
    ty_map_free(&ipam->keys);
    free(ipam->used);
    free(ipam);
}

static bool is_used(const ty_ipam *ipam, uint32_t i) { return ipam->used[i / 64] >> (i % 64) & 1; }

int ty_ipam_acquire(ty_ipam *ipam, const char *key, char out[TY_IPAM_ADDR_MAX], ty_error *err)
{
    if (ty_ipam_lookup(ipam, key, out))
        return 0;
    for (uint32_t n = 0; n < ipam->size; n++) {
        uint32_t i = (ipam->next + n) % ipam->size;
        if (ipam->used[i / 64] == UINT64_MAX) { /* skip a full word */
            n += 63 - i % 64;
            continue;
        }
        if (!usable(ipam, i) || is_used(ipam, i))
            continue;
        ipam->used[i / 64] |= (uint64_t)1 << (i % 64);
        ty_map_puts(&ipam->keys, key, (void *)(uintptr_t)(i + 1));
        ipam->next = (i + 1) % ipam->size;
        ty_ipam_format(ipam->base + i, out);
        return 0;
    }
    char pool[24];
    pool_name(ipam, pool);
    return ty_fail(err, "allocate a pod address for %s: %s is exhausted", key, pool);
}

int ty_ipam_reserve(ty_ipam *ipam, const char *key, const char *addr, ty_error *err)
{
    uint32_t a;
    char pool[24];
    pool_name(ipam, pool);
    if (ty_ipam_parse(addr, &a) < 0 || a - ipam->base >= ipam->size)
        return ty_fail(err, "reserve %s for %s: not in %s", addr, key, pool);
    uint32_t i = a - ipam->base;
    if (!usable(ipam, i))
        return ty_fail(err, "reserve %s for %s: the network, gateway, broadcast, .0 and .255 "
                       "addresses are not handed out", addr, key);
    uintptr_t held = (uintptr_t)ty_map_gets(&ipam->keys, key);
    if (held == i + 1)
        return 0;
    if (held)
        return ty_fail(err, "reserve %s for %s: the key holds another address", addr, key);
    if (is_used(ipam, i))
        return ty_fail(err, "reserve %s for %s: address in use", addr, key);
    ipam->used[i / 64] |= (uint64_t)1 << (i % 64);
    ty_map_puts(&ipam->keys, key, (void *)(uintptr_t)(i + 1));
    return 0;
}

void ty_ipam_release(ty_ipam *ipam, const char *key)
{
    uintptr_t v = (uintptr_t)ty_map_dels(&ipam->keys, key);
    if (!v)
        return;
    uint32_t i = (uint32_t)(v - 1);
    ipam->used[i / 64] &= ~((uint64_t)1 << (i % 64));
}

bool ty_ipam_lookup(const ty_ipam *ipam, const char *key, char out[TY_IPAM_ADDR_MAX])
{
    uintptr_t v = (uintptr_t)ty_map_gets(&ipam->keys, key);
    if (!v)
        return false;
    if (out)
        ty_ipam_format(ipam->base + (uint32_t)(v - 1), out);
    return true;
}
