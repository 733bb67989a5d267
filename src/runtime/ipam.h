/* Loopback address allocator: one 127.x.y.z per pod, so concurrent pods never fight over ports.
 *
 * Linux routes all of 127.0.0.0/8 to the loopback device, so a process can bind any of these
 * addresses with no setup (checked by tests/unit/test_runtime.c). The pool is
 * 127.16.0.1 .. 127.31.255.254 with every x.y.0 and x.y.255 skipped (some tools treat them as
 * network/broadcast addresses): about 1M addresses.
 *
 * Rules: a key ("namespace/name") holds at most one address; acquiring a held key returns the
 * same address (stable while held). Released addresses are handed out again only after the rest
 * of the pool was used (next-fit), so a stale client rarely reaches a new pod. Not thread-safe:
 * used from the one event loop. */
#ifndef TY_RUNTIME_IPAM_H
#define TY_RUNTIME_IPAM_H

#include <stdbool.h>

#include "base/error.h"

typedef struct ty_ipam ty_ipam;

#define TY_IPAM_ADDR_MAX 16 /* "127.255.255.255" + NUL */

ty_ipam *ty_ipam_new(void);
void ty_ipam_free(ty_ipam *ipam); /* accepts NULL */
/* Starts the next-fit scan at a random place of the pool. Independent allocators on one
 * machine (two `trainyard run` at once) then rarely hand out the same address: with k pods
 * each, the chance of any overlap is about k*k / 1M. A server that owns the node does not
 * need this. */
void ty_ipam_scatter(ty_ipam *ipam);
/* Writes the key's address into `out`; fails only when the pool is exhausted. */
int ty_ipam_acquire(ty_ipam *ipam, const char *key, char out[TY_IPAM_ADDR_MAX], ty_error *err);
/* Claims a specific address for a key (re-adopting pods after a restart). Fails when the address
 * is outside the pool or held by another key; a no-op when the key already holds it. */
int ty_ipam_reserve(ty_ipam *ipam, const char *key, const char *addr, ty_error *err);
/* Frees the key's address; unknown keys are ignored. */
void ty_ipam_release(ty_ipam *ipam, const char *key);
/* True when the key holds an address (then written to `out` when non-NULL). */
bool ty_ipam_lookup(const ty_ipam *ipam, const char *key, char out[TY_IPAM_ADDR_MAX]);

#endif
