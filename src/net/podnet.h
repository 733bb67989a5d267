/* Pod networking as Kubernetes defines it, on one machine: each pod in its own network
 * namespace with `lo` and an `eth0` veth whose host end is a port of a bridge of trainyard's,
 * an address from the pod CIDR, and a default route via the bridge's address (the gateway,
 * also the pods' status.hostIP). Pods reach each other and the host by address, without NAT;
 * nothing is routed out of the machine (no ip_forward, no masquerade).
 *
 * Node blocks. Several trainyard instances run at once on one machine (two runs, a server):
 * each instance, named by its state directory, leases a block of the pod CIDR (a /24, or the
 * whole CIDR when it is smaller), as Kubernetes gives each node a podCIDR, with its own bridge
 * `ty-<block in hex>` holding the block's first address. The leases live in TY_PODNET_DIR:
 * `<a.b.c.d>-<prefix>.lease` (created O_EXCL; owner pid, its /proc start time, the state
 * dir) and `<a.b.c.d>-<prefix>.pods/<pod uid>` (the inode of each pod's namespace). Leases are
 * taken and reclaimed under an flock of TY_PODNET_DIR/lock. An instance restarted on the same
 * state dir re-takes its own block (its pods outlive a server and keep their addresses); a
 * block whose owner is dead and none of whose pods' namespaces holds a process any more is
 * reclaimed by the next instance that starts, bridge and records with it, so that even a
 * killed instance that never restarts leaks one lease and one bridge at most until then.
 *
 * Namespaces. ty_podnet_add makes the pod's namespace (unshare on the calling thread, which
 * returns to its own namespace at once), the veth pair (the peer made inside it as eth0), and
 * configures lo, eth0 and the route through a netlink socket opened inside it. Nothing is
 * mounted: the caller hands the namespace's fd to the pod's supervisor, which joins it (setns)
 * before it makes the pod's pid namespace, so the namespace lives exactly as long as the
 * pod's processes, and a dead pod leaves no namespace behind whatever killed it. Deleting the
 * host end of the veth (ty_podnet_del) removes both ends at once.
 *
 * Needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN): ty_podnet_open says why not otherwise, and the
 * caller falls back to loopback addresses (runtime/ipam.h). Not thread-safe; every call is
 * short (a few netlink round trips) and runs on the caller's loop. */
#ifndef TY_NET_PODNET_H
#define TY_NET_PODNET_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/error.h"

#define TY_PODNET_DIR "/run/trainyard/net"
#define TY_PODNET_DEFAULT_CIDR "10.244.0.0/16"

typedef struct ty_podnet ty_podnet;

/* Parses "a.b.c.d/n" (n 8..30, the address the network's: no host bits). */
int ty_podnet_parse_cidr(const char *cidr, uint32_t *network, int *prefix, ty_error *err);

/* Leases this instance's block of `cidr` and brings up its bridge. Returns 1 with *out set;
 * 0 with *out NULL and *why (caller frees) saying why pods cannot get their own network here
 * (not root, namespaces or bridges refused, every block taken); -1 when `cidr` is invalid. */
int ty_podnet_open(const char *cidr, const char *state_dir, ty_podnet **out, char **why,
                   ty_error *err);
/* Frees `net`. When no pod of the block is alive any more (all were deleted, or a run ended)
 * the lease and the bridge go too; otherwise they stay for the next start. Accepts NULL. */
void ty_podnet_close(ty_podnet *net);

/* The block (host byte order) and its gateway, "a.b.c.d". */
void ty_podnet_block(const ty_podnet *net, uint32_t *network, int *prefix);
const char *ty_podnet_gateway(const ty_podnet *net);
const char *ty_podnet_bridge(const ty_podnet *net);

/* Gives pod `uid` a network namespace with eth0 at `ip` (an address of the block); returns
 * the namespace's fd (close-on-exec; the caller hands it to the pod and closes it) or -1. */
int ty_podnet_add(ty_podnet *net, const char *uid, const char *ip, ty_error *err);
/* Removes what ty_podnet_add made for `uid` that is still there (the veth, the record); a
 * uid with nothing is a no-op. */
void ty_podnet_del(ty_podnet *net, const char *uid);
/* For a pod whose network namespace has gone with its last process and the caller's last
 * reference to it: the kernel destroys the namespace, and with it both ends of the veth,
 * on its own (asynchronously, batched across namespaces), where an explicit delete holds the
 * caller for an RCU grace period (~20 ms here: 2 s of the loop for a 100-pod job). Only the
 * pod's record goes. */
void ty_podnet_forget(ty_podnet *net, const char *uid);
/* ty_podnet_del for every recorded pod of the block that `keep` does not keep (a restarted
 * instance's pods that no longer run). Returns how many were removed. */
int ty_podnet_sweep(ty_podnet *net, bool (*keep)(void *ctx, const char *uid), void *ctx);

/* The pod's hostname as the kubelet sets it: spec.hostname, else the pod's name, cut to 63
 * characters without a trailing '-' or '.'. Caller frees. */
char *ty_podnet_hostname(const json_t *pod);
/* The kubelet's files for a pod with its own network: <dir>/hosts (the managed hosts file:
 * localhost and ip6 lines, the pod's address with its hostname, its FQDN when spec.subdomain
 * is set, then spec.hostAliases), <dir>/resolv.conf (by spec.dnsPolicy and spec.dnsConfig:
 * ClusterFirst names `nameserver` the gateway, where the cluster DNS listens, and searches
 * <ns>.svc.cluster.local svc.cluster.local cluster.local and the host's search domains, with
 * ndots:5; Default copies the host's; None has only dnsConfig; ClusterFirstWithHostNet is
 * ClusterFirst; for a hostNetwork pod ClusterFirst is Default, as the kubelet decides) and
 * <dir>/hostname. A hostNetwork pod gets only resolv.conf (the host's hosts and hostname
 * stay). `dir` is created 0700 (when missing); the files are 0644: containers of any user
 * read them. */
int ty_podnet_write_etc(const char *dir, const json_t *pod, const char *ip, const char *gateway,
                        ty_error *err);

#endif
