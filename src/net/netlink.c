/* rtnetlink requests; see netlink.h. Each request is built in a fixed buffer (attributes are
 * names and addresses: a few hundred bytes) and acknowledged before the next one. */
#include "net/netlink.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct req {
    struct nlmsghdr *h;
    char buf[1024];
} req;

static void *req_init(req *r, uint16_t type, uint16_t flags, size_t body)
{
    memset(r->buf, 0, sizeof r->buf);
    r->h = (struct nlmsghdr *)r->buf;
    r->h->nlmsg_len = NLMSG_LENGTH(body);
    r->h->nlmsg_type = type;
    r->h->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
    return NLMSG_DATA(r->h);
}

static struct rtattr *attr_put(req *r, uint16_t type, const void *data, size_t len)
{
    struct rtattr *a = (struct rtattr *)(r->buf + NLMSG_ALIGN(r->h->nlmsg_len));
    a->rta_type = type;
    a->rta_len = (unsigned short)RTA_LENGTH(len);
    if (len)
        memcpy(RTA_DATA(a), data, len);
    r->h->nlmsg_len = NLMSG_ALIGN(r->h->nlmsg_len) + RTA_ALIGN(a->rta_len);
    return a;
}

static void attr_str(req *r, uint16_t type, const char *s) { attr_put(r, type, s, strlen(s) + 1); }

static void attr_u32(req *r, uint16_t type, uint32_t v) { attr_put(r, type, &v, sizeof v); }

/* A nest: opened empty, closed by attr_end once its members are in. */
static struct rtattr *attr_begin(req *r, uint16_t type) { return attr_put(r, type, NULL, 0); }

static void attr_end(req *r, struct rtattr *a)
{
    a->rta_len = (unsigned short)(r->buf + r->h->nlmsg_len - (char *)a);
}

/* Sends the request and waits for its ack. Returns 0, or -errno from the kernel's answer.
 * `reply`, when given, receives the first non-error message (for GET requests). */
static int transact(ty_nl *nl, req *r, char *reply, size_t reply_len)
{
    r->h->nlmsg_seq = ++nl->seq;
    struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
    if (sendto(nl->fd, r->buf, r->h->nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0)
        return -errno;
    /* a link's answer carries its stats and more: room for the largest one */
    char buf[32768] __attribute__((aligned(4)));
    for (;;) {
        ssize_t n = recv(nl->fd, buf, sizeof buf, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n);
             h = NLMSG_NEXT(h, n)) {
            if (h->nlmsg_seq != nl->seq)
                continue; /* an answer to an earlier request we gave up on */
            if (h->nlmsg_type == NLMSG_ERROR) {
                const struct nlmsgerr *e = NLMSG_DATA(h);
                return e->error;
            }
            if (reply) { /* the caller reads the fixed header: its start is enough */
                memcpy(reply, h, h->nlmsg_len < reply_len ? h->nlmsg_len : reply_len);
                reply = NULL;
            }
            if (h->nlmsg_type == NLMSG_DONE)
                return 0;
        }
    }
}

int ty_nl_open(ty_nl *nl, ty_error *err)
{
    nl->seq = 0;
    nl->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (nl->fd < 0)
        return ty_fail_errno(err, errno, "open a netlink socket");
    struct sockaddr_nl local = {.nl_family = AF_NETLINK};
    if (bind(nl->fd, (struct sockaddr *)&local, sizeof local) < 0) {
        int e = errno;
        close(nl->fd);
        nl->fd = -1;
        return ty_fail_errno(err, e, "bind a netlink socket");
    }
    return 0;
}

int ty_nl_open_in(ty_nl *nl, int netns_fd, ty_error *err)
{
    int home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (home < 0)
        return ty_fail_errno(err, errno, "open this thread's network namespace");
    if (setns(netns_fd, CLONE_NEWNET) < 0) {
        int e = errno;
        close(home);
        return ty_fail_errno(err, e, "enter the pod's network namespace");
    }
    int rc = ty_nl_open(nl, err);
    /* Back home before anything else: the rest of this thread must not run in the pod's
     * namespace. Failing that is not survivable. */
    if (setns(home, CLONE_NEWNET) < 0)
        abort();
    close(home);
    return rc;
}

void ty_nl_close(ty_nl *nl)
{
    if (nl->fd >= 0)
        close(nl->fd);
    nl->fd = -1;
}

int ty_nl_link_index(ty_nl *nl, const char *name)
{
    req r;
    struct ifinfomsg *ifi = req_init(&r, RTM_GETLINK, 0, sizeof *ifi);
    ifi->ifi_family = AF_UNSPEC;
    attr_str(&r, IFLA_IFNAME, name);
    char reply[NLMSG_SPACE(sizeof(struct ifinfomsg))] __attribute__((aligned(4))) = {0};
    int rc = transact(nl, &r, reply, sizeof reply);
    if (rc == -ENODEV) {
        errno = ENODEV;
        return 0;
    }
    const struct nlmsghdr *h = (const struct nlmsghdr *)reply;
    if (rc < 0 || h->nlmsg_type != RTM_NEWLINK) {
        errno = rc < 0 ? -rc : EPROTO;
        return -1;
    }
    return ((const struct ifinfomsg *)NLMSG_DATA(h))->ifi_index;
}

int ty_nl_bridge_add(ty_nl *nl, const char *name, ty_error *err)
{
    req r;
    struct ifinfomsg *ifi = req_init(&r, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, sizeof *ifi);
    ifi->ifi_family = AF_UNSPEC;
    attr_str(&r, IFLA_IFNAME, name);
    struct rtattr *info = attr_begin(&r, IFLA_LINKINFO);
    attr_str(&r, IFLA_INFO_KIND, "bridge");
    attr_end(&r, info);
    int rc = transact(nl, &r, NULL, 0);
    if (rc < 0 && rc != -EEXIST)
        return ty_fail_errno(err, -rc, "create bridge %s", name);
    return 0;
}

int ty_nl_veth_add(ty_nl *nl, const char *name, const char *peer, int peer_netns_fd, int mtu,
                   ty_error *err)
{
    req r;
    struct ifinfomsg *ifi = req_init(&r, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, sizeof *ifi);
    ifi->ifi_family = AF_UNSPEC;
    attr_str(&r, IFLA_IFNAME, name);
    if (mtu > 0)
        attr_u32(&r, IFLA_MTU, (uint32_t)mtu);
    struct rtattr *info = attr_begin(&r, IFLA_LINKINFO);
    attr_str(&r, IFLA_INFO_KIND, "veth");
    struct rtattr *data = attr_begin(&r, IFLA_INFO_DATA);
    struct rtattr *pinfo = attr_begin(&r, VETH_INFO_PEER);
    /* the peer's ifinfomsg, then its attributes */
    struct ifinfomsg pifi = {.ifi_family = AF_UNSPEC};
    memcpy(r.buf + r.h->nlmsg_len, &pifi, sizeof pifi);
    r.h->nlmsg_len += NLMSG_ALIGN(sizeof pifi);
    attr_str(&r, IFLA_IFNAME, peer);
    if (mtu > 0)
        attr_u32(&r, IFLA_MTU, (uint32_t)mtu);
    attr_u32(&r, IFLA_NET_NS_FD, (uint32_t)peer_netns_fd);
    attr_end(&r, pinfo);
    attr_end(&r, data);
    attr_end(&r, info);
    int rc = transact(nl, &r, NULL, 0);
    if (rc < 0)
        return ty_fail_errno(err, -rc, "create veth %s", name);
    return 0;
}

int ty_nl_link_up(ty_nl *nl, int index, int master, ty_error *err)
{
    req r;
    struct ifinfomsg *ifi = req_init(&r, RTM_NEWLINK, 0, sizeof *ifi);
    ifi->ifi_family = AF_UNSPEC;
    ifi->ifi_index = index;
    ifi->ifi_flags = IFF_UP;
    ifi->ifi_change = IFF_UP;
    if (master > 0)
        attr_u32(&r, IFLA_MASTER, (uint32_t)master);
    int rc = transact(nl, &r, NULL, 0);
    if (rc < 0)
        return ty_fail_errno(err, -rc, "set link %d up", index);
    return 0;
}

int ty_nl_link_set_mac(ty_nl *nl, int index, const unsigned char mac[6], ty_error *err)
{
    req r;
    struct ifinfomsg *ifi = req_init(&r, RTM_NEWLINK, 0, sizeof *ifi);
    ifi->ifi_family = AF_UNSPEC;
    ifi->ifi_index = index;
    attr_put(&r, IFLA_ADDRESS, mac, 6);
    int rc = transact(nl, &r, NULL, 0);
    if (rc < 0)
        return ty_fail_errno(err, -rc, "set the address of link %d", index);
    return 0;
}

int ty_nl_link_del(ty_nl *nl, const char *name, ty_error *err)
{
    req r;
    struct ifinfomsg *ifi = req_init(&r, RTM_DELLINK, 0, sizeof *ifi);
    ifi->ifi_family = AF_UNSPEC;
    attr_str(&r, IFLA_IFNAME, name);
    int rc = transact(nl, &r, NULL, 0);
    if (rc == -ENODEV)
        return 0;
    if (rc < 0)
        return ty_fail_errno(err, -rc, "delete link %s", name);
    return 1;
}

int ty_nl_addr_add(ty_nl *nl, int index, uint32_t addr, int prefix, ty_error *err)
{
    req r;
    struct ifaddrmsg *ifa = req_init(&r, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, sizeof *ifa);
    ifa->ifa_family = AF_INET;
    ifa->ifa_prefixlen = (unsigned char)prefix;
    ifa->ifa_index = (unsigned)index;
    ifa->ifa_scope = RT_SCOPE_UNIVERSE;
    uint32_t be = htonl(addr);
    attr_put(&r, IFA_LOCAL, &be, sizeof be);
    attr_put(&r, IFA_ADDRESS, &be, sizeof be);
    if (prefix < 31) {
        uint32_t bcast = htonl(addr | (prefix ? (uint32_t)-1 >> prefix : (uint32_t)-1));
        attr_put(&r, IFA_BROADCAST, &bcast, sizeof bcast);
    }
    int rc = transact(nl, &r, NULL, 0);
    if (rc < 0 && rc != -EEXIST)
        return ty_fail_errno(err, -rc, "add address to link %d", index);
    return 0;
}

int ty_nl_route_default(ty_nl *nl, uint32_t gateway, ty_error *err)
{
    req r;
    struct rtmsg *rt = req_init(&r, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, sizeof *rt);
    rt->rtm_family = AF_INET;
    rt->rtm_table = RT_TABLE_MAIN;
    rt->rtm_protocol = RTPROT_BOOT;
    rt->rtm_scope = RT_SCOPE_UNIVERSE;
    rt->rtm_type = RTN_UNICAST;
    uint32_t be = htonl(gateway);
    attr_put(&r, RTA_GATEWAY, &be, sizeof be);
    int rc = transact(nl, &r, NULL, 0);
    if (rc < 0 && rc != -EEXIST)
        return ty_fail_errno(err, -rc, "add the default route");
    return 0;
}
