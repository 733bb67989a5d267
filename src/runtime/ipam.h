/* Pod address allocator: one address per pod, from one pool. The node agent and the job
 * controller (MASTER_ADDR) take addresses from it whichever pool it is:
 *
 * - the pod network's node block (ty_ipam_new_block: e.g. 10.244.3.0/24 of --pod-cidr, as
 *   Kubernetes gives each node a podCIDR; net/podnet.h), when pods get their own network
 *   namespaces. The block's first address is the gateway (the bridge, the pods' hostIP), and
 *   neither it nor the network and broadcast addresses are handed out;
 * - the loopback fallback (ty_ipam_new), when pods share the host's namespace (not root, or
 *   namespaces refused): 127.16.0.1 .. 127.31.255.254 of 127.16.0.0/12. Linux routes all of
 *   127.0.0.0/8 to the loopback device, so a process can bind any of these addresses with no
 *   setup (checked by tests/unit/test_runtime.c); about 1M addresses.
 * In both, every x.y.z.0 and x.y.z.255 is skipped (some tools treat them as network/broadcast
 * addresses).
 *
 * Rules: a key ("namespace/name") holds at most one address; acquiring a held key returns the
 * same address (stable while held). Released addresses are handed out again only after the rest
 * of the pool was used (next-fit), so a stale client rarely reaches a new pod. Not thread-safe:
 * used from the one event loop. */
#ifndef TY_RUNTIME_IPAM_H
#define TY_RUNTIME_IPAM_H

#include <stdbool.h>
#include <stdint.h>

#include "base/error.h"

typedef struct ty_ipam ty_ipam;

#define TY_IPAM_ADDR_MAX 16 /* "255.255.255.255" + NUL */

/* The loopback pool. */
ty_ipam *ty_ipam_new(void);
/* The pool of a block `network`/`prefix` (host byte order; prefix 8..30), its first address
 * kept for the gateway. */
ty_ipam *ty_ipam_new_block(uint32_t network, int prefix);
void ty_ipam_free(ty_ipam *ipam); /* accepts NULL */
/* The address of the host as pods see it (status.hostIP, and a hostNetwork pod's podIP): the
 * block's gateway, or 127.0.0.1 for the loopback pool. */
const char *ty_ipam_host(const ty_ipam *ipam);
/* Whether this is a pod network's block (ty_ipam_new_block). */
bool ty_ipam_is_block(const ty_ipam *ipam);
/* Starts the next-fit scan at a random place of the pool. Independent allocators over one
 * pool (two `trainyard run` at once on loopback addresses) then rarely hand out the same
 * address: with k pods each, the chance of any overlap is about k*k / 1M. A block is one
 * instance's own and needs none of this. */
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

/* "a.b.c.d" to host byte order; -1 when it is not a dotted IPv4 address. */
int ty_ipam_parse(const char *s, uint32_t *out);
void ty_ipam_format(uint32_t addr, char out[TY_IPAM_ADDR_MAX]);

#endif
