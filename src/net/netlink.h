/* rtnetlink on a raw NETLINK_ROUTE socket: the few link, address and route operations that the
 * pod network needs (net/podnet.h), without running `ip`. Each call sends one request with
 * NLM_F_ACK and reads the kernel's answer, so every failure comes back as an errno.
 *
 * A socket talks to the network namespace it was created in: open one in the host's namespace
 * for the bridge and the host ends of veths, and one in a pod's namespace (ty_nl_open_in) for
 * its lo, eth0 and routes. Addresses are IPv4 in host byte order. Not thread-safe per socket. */
#ifndef TY_NET_NETLINK_H
#define TY_NET_NETLINK_H

#include <stdbool.h>
#include <stdint.h>

#include "base/error.h"

typedef struct ty_nl {
    int fd;
    uint32_t seq;
} ty_nl;

/* A socket in the calling thread's network namespace. */
int ty_nl_open(ty_nl *nl, ty_error *err);
/* A socket in the namespace of `netns_fd` (an open /proc/<pid>/ns/net or a bind mount of
 * one): the thread enters it, opens the socket and returns to its own namespace. */
int ty_nl_open_in(ty_nl *nl, int netns_fd, ty_error *err);
void ty_nl_close(ty_nl *nl);

/* The index of link `name`, 0 when there is none (errno ENODEV), -1 on other errors. */
int ty_nl_link_index(ty_nl *nl, const char *name);
/* Creates a bridge; one of that name already there is no error. */
int ty_nl_bridge_add(ty_nl *nl, const char *name, ty_error *err);
/* Creates a veth pair: `name` here, `peer` in the namespace of `peer_netns_fd`, both with
 * `mtu` (0: the kernel's default, 1500). */
int ty_nl_veth_add(ty_nl *nl, const char *name, const char *peer, int peer_netns_fd, int mtu,
                   ty_error *err);
/* Sets a link up (and, with master > 0, enslaves it to that bridge first). */
int ty_nl_link_up(ty_nl *nl, int index, int master, ty_error *err);
/* Sets the link's hardware address. A bridge given one keeps it; otherwise it takes the
 * lowest of its ports' and changes as ports come and go. */
int ty_nl_link_set_mac(ty_nl *nl, int index, const unsigned char mac[6], ty_error *err);
/* Deletes link `name` (both ends of a veth go). Returns 1 deleted, 0 there was none. */
int ty_nl_link_del(ty_nl *nl, const char *name, ty_error *err);
/* Adds addr/prefix to the link (an address already there is no error). */
int ty_nl_addr_add(ty_nl *nl, int index, uint32_t addr, int prefix, ty_error *err);
/* Adds the default route via `gateway`. */
int ty_nl_route_default(ty_nl *nl, uint32_t gateway, ty_error *err);

#endif
