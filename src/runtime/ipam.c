/* Loopback address allocator; see ipam.h. A bitmap of the 2^20 addresses of 127.16.0.0/12
 * (128 KiB) plus a map key -> index: acquire and release are O(1) except for the next-fit scan,
 * which skips whole 64-bit words. */
#include "runtime/ipam.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "base/map.h"
#include "base/mem.h"

#define POOL_BASE ((uint32_t)127 << 24 | (uint32_t)16 << 16) /* 127.16.0.0 */
#define POOL_SIZE ((uint32_t)1 << 20)                      /* up to 127.31.255.255 */

struct ty_ipam {
    uint64_t used[POOL_SIZE / 64];
    ty_map keys; /* key -> (index + 1) */
    uint32_t next;
};

static bool usable(uint32_t i)
{
    uint32_t last = i & 0xff;
    return last != 0 && last != 255;
}

static void format_addr(uint32_t i, char out[TY_IPAM_ADDR_MAX])
{
    uint32_t a = POOL_BASE + i;
    snprintf(out, TY_IPAM_ADDR_MAX, "%u.%u.%u.%u", a >> 24, (a >> 16) & 0xff, (a >> 8) & 0xff,
             a & 0xff);
}

ty_ipam *ty_ipam_new(void) { return TY_NEW(ty_ipam); }

void ty_ipam_scatter(ty_ipam *ipam)
{
    uint32_t r = 0;
    if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
        r = (uint32_t)getpid() * 2654435761u;
    ipam->next = r % POOL_SIZE;
}

void ty_ipam_free(ty_ipam *ipam)
{
    if (!ipam)
        return;
    ty_map_free(&ipam->keys);
    free(ipam);
}

static bool is_used(const ty_ipam *ipam, uint32_t i) { return ipam->used[i / 64] >> (i % 64) & 1; }

int ty_ipam_acquire(ty_ipam *ipam, const char *key, char out[TY_IPAM_ADDR_MAX], ty_error *err)
{
    if (ty_ipam_lookup(ipam, key, out))
        return 0;
    for (uint32_t n = 0; n < POOL_SIZE; n++) {
        uint32_t i = (ipam->next + n) % POOL_SIZE;
        if (ipam->used[i / 64] == UINT64_MAX) { /* skip a full word */
            n += 63 - i % 64;
            continue;
        }
        if (!usable(i) || is_used(ipam, i))
            continue;
        ipam->used[i / 64] |= (uint64_t)1 << (i % 64);
        ty_map_puts(&ipam->keys, key, (void *)(uintptr_t)(i + 1));
        ipam->next = (i + 1) % POOL_SIZE;
        format_addr(i, out);
        return 0;
    }
    return ty_fail(err, "allocate a pod address for %s: 127.16.0.0/12 is exhausted", key);
}

int ty_ipam_reserve(ty_ipam *ipam, const char *key, const char *addr, ty_error *err)
{
    unsigned a, b, c, d;
    char end;
    if (sscanf(addr, "%u.%u.%u.%u%c", &a, &b, &c, &d, &end) != 4 || a != 127 || b < 16 ||
        b > 31 || c > 255 || d > 255)
        return ty_fail(err, "reserve %s for %s: not in 127.16.0.0/12", addr, key);
    uint32_t i = ((b - 16) << 16) | (c << 8) | d;
    if (!usable(i))
        return ty_fail(err, "reserve %s for %s: .0 and .255 are not handed out", addr, key);
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
        format_addr((uint32_t)(v - 1), out);
    return true;
}
