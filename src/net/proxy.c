/* The Service proxy's rules (net/proxy.h). */
#include "net/proxy.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <nftables/libnftables.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/mem.h"
#include "net/endpoints.h"

#define TABLE "trainyard-proxy"
#define AFFINITY_DEFAULT_S 10800 /* kube-proxy's, and the API's default timeoutSeconds */

static const char *str_at(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static bool ipv4(const char *s)
{
    struct in_addr a;
    return s && inet_pton(AF_INET, s, &a) == 1;
}

/* The protocol as nft names it, or NULL for one it does not take. */
static const char *proto_of(const json_t *port)
{
    const char *p = str_at(port, "protocol");
    if (!p || strcmp(p, "TCP") == 0)
        return "tcp";
    if (strcmp(p, "UDP") == 0)
        return "udp";
    if (strcmp(p, "SCTP") == 0)
        return "sctp";
    return NULL;
}

static int affinity_seconds(const json_t *spec)
{
    const char *aff = str_at(spec, "sessionAffinity");
    if (!aff || strcmp(aff, "ClientIP") != 0)
        return 0;
    json_int_t t = json_integer_value(json_object_get(
        json_object_get(json_object_get(spec, "sessionAffinityConfig"), "clientIP"),
        "timeoutSeconds"));
    return t > 0 ? (int)t : AFFINITY_DEFAULT_S;
}

typedef struct endpoint {
    const char *ip;
    int port;
} endpoint;

static endpoint *push(endpoint *a, size_t *cap, int *n, endpoint e)
{
    if ((size_t)*n == *cap) {
        *cap = *cap ? *cap * 2 : 8;
        a = ty_realloc(a, *cap * sizeof *a);
    }
    a[(*n)++] = e;
    return a;
}

/* An address a Service may send to: IPv4, not loopback (127/8, which in a pod's namespace is
 * the pod itself; the API server refuses such endpoints too), not unspecified. */
static bool routable(const char *s)
{
    struct in_addr a;
    if (!s || inet_pton(AF_INET, s, &a) != 1)
        return false;
    uint32_t ip = ntohl(a.s_addr);
    return ip != 0 && (ip >> 24) != 127;
}

/* The endpoints of Service port `port` (an element of spec.ports) of `svc`: with a selector,
 * its pods (net/endpoints.h); without one, the EndpointSlices of its namespace labelled
 * kubernetes.io/service-name=<its name>, as kube-proxy reads them: IPv4 slices, endpoints not
 * marked ready=false, each address at the slice port of the same name and protocol. */
static endpoint *endpoints_of(const json_t *svc, const json_t *port, const json_t *pods,
                              const json_t *slices, int *n)
{
    endpoint *out = NULL;
    size_t cap = 0, j, e, a;
    *n = 0;
    const json_t *sel = json_object_get(json_object_get(svc, "spec"), "selector");
    if (json_object_size(sel)) {
        const json_t *pod;
        json_array_foreach(pods, j, pod)
        {
            const char *pip = str_at(json_object_get(pod, "status"), "podIP");
            int tport = ty_endpoint_port(port, pod);
            if (!ipv4(pip) || tport <= 0 || tport > 65535 || !ty_endpoint_of(svc, pod))
                continue;
            out = push(out, &cap, n, (endpoint){pip, tport});
        }
        return out;
    }
    const json_t *meta = json_object_get(svc, "metadata");
    const char *ns = str_at(meta, "namespace"), *name = str_at(meta, "name");
    const char *pname = str_at(port, "name"), *proto = proto_of(port);
    const json_t *slice;
    json_array_foreach(slices, j, slice)
    {
        const json_t *smeta = json_object_get(slice, "metadata");
        const char *owner = str_at(json_object_get(smeta, "labels"), "kubernetes.io/service-name");
        const char *sns = str_at(smeta, "namespace");
        const char *type = str_at(slice, "addressType");
        if (!owner || !name || strcmp(owner, name) != 0 || !sns || !ns || strcmp(sns, ns) != 0 ||
            !type || strcmp(type, "IPv4") != 0)
            continue;
        int tport = 0;
        const json_t *sp;
        json_array_foreach(json_object_get(slice, "ports"), e, sp)
        {
            const char *spn = str_at(sp, "name");
            const char *spp = proto_of(sp);
            if (strcmp(spn ? spn : "", pname ? pname : "") == 0 && spp && proto &&
                strcmp(spp, proto) == 0)
                tport = (int)json_integer_value(json_object_get(sp, "port"));
        }
        if (tport <= 0 || tport > 65535)
            continue;
        const json_t *ep;
        json_array_foreach(json_object_get(slice, "endpoints"), e, ep)
        {
            if (json_is_false(json_object_get(json_object_get(ep, "conditions"), "ready")))
                continue;
            const json_t *addr;
            json_array_foreach(json_object_get(ep, "addresses"), a, addr)
            {
                if (!routable(json_string_value(addr)))
                    continue;
                out = push(out, &cap, n, (endpoint){json_string_value(addr), tport});
            }
        }
    }
    return out;
}

char *ty_proxy_ruleset(const json_t *services, const json_t *pods, const json_t *slices)
{
    TY_AUTOBUF ty_buf map = TY_BUF_INIT, none = TY_BUF_INIT, chains = TY_BUF_INIT,
                      sets = TY_BUF_INIT;
    int nsvc = 0;
    size_t i, k;
    const json_t *svc, *port;
    json_array_foreach(services, i, svc)
    {
        const json_t *spec = json_object_get(svc, "spec");
        const char *type = str_at(spec, "type"), *ip = str_at(spec, "clusterIP");
        if ((type && strcmp(type, "ClusterIP") != 0 && strcmp(type, "NodePort") != 0 &&
             strcmp(type, "LoadBalancer") != 0) || !ipv4(ip))
            continue;
        int affinity = affinity_seconds(spec);
        json_array_foreach(json_object_get(spec, "ports"), k, port)
        {
            const char *proto = proto_of(port);
            json_int_t sport = json_integer_value(json_object_get(port, "port"));
            if (!proto || sport <= 0 || sport > 65535)
                continue;
            /* The endpoints of this port: address and target port. */
            TY_AUTOBUF ty_buf eps = TY_BUF_INIT;
            int n = 0, n_ep;
            TY_AUTOFREE endpoint *ep = endpoints_of(svc, port, pods, slices, &n_ep);
            for (int x = 0; x < n_ep; x++) {
                const char *pip = ep[x].ip;
                int tport = ep[x].port;
                if (!affinity) {
                    /* One map from the random number to the endpoint: a chain per endpoint
                     * costs the kernel and libnftables 3x as much per apply (5 Services of
                     * 100 endpoints: 9.7 ms against 3.5), paid in every pod. */
                    ty_buf_addf(&eps, "%s%d : %s . %d", n ? ", " : "", n, pip, tport);
                    n++;
                    continue;
                }
                ty_buf_addf(&sets,
                            "\tset affinity-%d-%d {\n\t\ttype ipv4_addr\n\t\tflags dynamic,"
                            "timeout\n\t\ttimeout %ds\n\t}\n",
                            nsvc, n, affinity);
                ty_buf_addf(&chains, "\tchain endpoint-%d-%d {\n", nsvc, n);
                ty_buf_addf(&chains, "\t\tupdate @affinity-%d-%d { ip saddr }\n", nsvc, n);
                ty_buf_addf(&chains, "\t\tmeta l4proto %s dnat to %s:%d\n\t}\n", proto, pip,
                            tport);
                ty_buf_addf(&eps, "%s%d : goto endpoint-%d-%d", n ? ", " : "", n, nsvc, n);
                n++;
            }
            ty_buf *to = n ? &map : &none;
            ty_buf_addf(to, "%s%s . %s . %d", to->len ? ", " : "", ip, proto, (int)sport);
            if (!n)
                continue;
            ty_buf_addf(&map, " : goto service-%d", nsvc);
            ty_buf_addf(&chains, "\tchain service-%d {\n", nsvc);
            for (int e = 0; affinity && e < n; e++)
                ty_buf_addf(&chains, "\t\tip saddr @affinity-%d-%d goto endpoint-%d-%d\n", nsvc,
                            e, nsvc, e);
            if (affinity)
                ty_buf_addf(&chains, "\t\tnumgen random mod %d vmap { %s }\n\t}\n", n,
                            eps.data);
            else
                ty_buf_addf(&chains,
                            "\t\tmeta l4proto %s dnat ip to numgen random mod %d map { %s }\n"
                            "\t}\n",
                            proto, n, eps.data);
            nsvc++;
        }
    }
    TY_AUTOBUF ty_buf out = TY_BUF_INIT;
    /* Add, delete, define: one transaction that replaces the table whether it exists or not. */
    ty_buf_addf(&out, "add table ip " TABLE "\ndelete table ip " TABLE "\ntable ip " TABLE " {\n");
    ty_buf_adds(&out, "\tmap service-ips {\n\t\ttype ipv4_addr . inet_proto . inet_service : "
                      "verdict\n");
    if (map.len)
        ty_buf_addf(&out, "\t\telements = { %s }\n", map.data);
    ty_buf_adds(&out, "\t}\n\tset no-endpoint-services {\n\t\ttype ipv4_addr . inet_proto . "
                      "inet_service\n");
    if (none.len)
        ty_buf_addf(&out, "\t\telements = { %s }\n", none.data);
    ty_buf_adds(&out, "\t}\n");
    if (sets.len)
        ty_buf_adds(&out, sets.data);
    ty_buf_adds(&out, "\tchain nat-output {\n\t\ttype nat hook output priority -100; policy "
                      "accept;\n\t\tip daddr . meta l4proto . th dport vmap @service-ips\n\t}\n"
                      "\tchain filter-output {\n\t\ttype filter hook output priority 0; "
                      "policy accept;\n\t\tip daddr . meta l4proto . th dport "
                      "@no-endpoint-services reject\n\t}\n");
    if (chains.len)
        ty_buf_adds(&out, chains.data);
    ty_buf_adds(&out, "}\n");
    return ty_buf_steal(&out);
}

/* libnftables, loaded at the first apply: only a node that proxies pays for it (and for
 * libnftnl, libmnl, libxtables it brings). */
static struct {
    struct nft_ctx *(*ctx_new)(uint32_t);
    void (*ctx_free)(struct nft_ctx *);
    int (*buffer_output)(struct nft_ctx *);
    int (*buffer_error)(struct nft_ctx *);
    const char *(*get_error_buffer)(struct nft_ctx *);
    int (*run)(struct nft_ctx *, const char *);
} nft;

static int load(ty_error *err)
{
    static void *lib;
    if (lib)
        return 0;
    void *h = dlopen("libnftables.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!h)
        return ty_fail(err, "load libnftables (install libnftables1): %s", dlerror());
    static const struct {
        const char *name;
        size_t offset;
    } syms[] = {
        {"nft_ctx_new", offsetof(__typeof__(nft), ctx_new)},
        {"nft_ctx_free", offsetof(__typeof__(nft), ctx_free)},
        {"nft_ctx_buffer_output", offsetof(__typeof__(nft), buffer_output)},
        {"nft_ctx_buffer_error", offsetof(__typeof__(nft), buffer_error)},
        {"nft_ctx_get_error_buffer", offsetof(__typeof__(nft), get_error_buffer)},
        {"nft_run_cmd_from_buffer", offsetof(__typeof__(nft), run)},
    };
    for (size_t i = 0; i < TY_ARRAY_LEN(syms); i++) {
        void *fn = dlsym(h, syms[i].name);
        if (!fn) {
            dlclose(h);
            return ty_fail(err, "libnftables has no %s", syms[i].name);
        }
        *(void **)((char *)&nft + syms[i].offset) = fn;
    }
    lib = h;
    return 0;
}

static int run_rules(const char *where, const char *ruleset, ty_error *err)
{
    struct nft_ctx *ctx = nft.ctx_new(NFT_CTX_DEFAULT);
    if (!ctx)
        return ty_fail(err, "apply service rules in %s: libnftables context", where);
    nft.buffer_output(ctx);
    nft.buffer_error(ctx);
    int rc = 0;
    if (nft.run(ctx, ruleset) != 0) {
        const char *e = nft.get_error_buffer(ctx);
        size_t len = e ? strlen(e) : 0;
        while (len && isspace((unsigned char)e[len - 1]))
            len--;
        rc = ty_fail(err, "apply service rules in %s: %.*s", where, (int)len, e ? e : "");
    }
    nft.ctx_free(ctx);
    return rc;
}

int ty_proxy_apply(const char *netns_path, const char *ruleset, ty_error *err)
{
    if (load(err) < 0)
        return -1;
    if (!netns_path)
        return run_rules("this network namespace", ruleset, err);
    int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (self < 0)
        return ty_fail_errno(err, errno, "open this thread's network namespace");
    int target = open(netns_path, O_RDONLY | O_CLOEXEC);
    if (target < 0) {
        close(self);
        return ty_fail_errno(err, errno, "open network namespace %s", netns_path);
    }
    int rc;
    if (setns(target, CLONE_NEWNET) < 0) {
        rc = ty_fail_errno(err, errno, "enter network namespace %s", netns_path);
    } else {
        rc = run_rules(netns_path, ruleset, err);
        if (setns(self, CLONE_NEWNET) < 0) {
            /* Everything this thread opened from here would be in the pod's namespace. */
            ty_errorf("proxy: cannot return from network namespace %s: %s", netns_path,
                      strerror(errno));
            abort();
        }
    }
    close(target);
    close(self);
    return rc;
}
