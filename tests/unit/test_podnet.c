/* The pod network: CIDRs, the block allocator, the kubelet's files, and (as root) a pod's
 * namespace made and removed through the real kernel. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <jansson.h>
#include <net/if.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/fs.h"
#include "base/hash.h"
#include "base/map.h"
#include "base/mem.h"
#include "base/time.h"
#include "net/netlink.h"
#include "net/podnet.h"
#include "runtime/ipam.h"

Test(podnet, parses_cidrs_and_says_what_is_wrong)
{
    uint32_t net;
    int prefix;
    cr_assert_eq(ty_podnet_parse_cidr("10.244.0.0/16", &net, &prefix, NULL), 0);
    cr_assert_eq(net, 0x0af40000u);
    cr_assert_eq(prefix, 16);
    const char *bad[][2] = {
        {"10.244.0.0", "not of the form"},   {"10.244.0.0/", "not of the form"},
        {"10.244.0.1/16", "bits past"},      {"10.244.0.0/31", "8 to 30"},
        {"10.300.0.0/16", "not an IPv4"},    {"127.16.0.0/12", "loopback"},
        {"224.0.0.0/8", "unicast"},          {"10.244.0.0/16x", "not of the form"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ty_error err = TY_ERROR_INIT;
        cr_assert_lt(ty_podnet_parse_cidr(bad[i][0], &net, &prefix, &err), 0, "%s", bad[i][0]);
        cr_assert(strstr(err.msg, bad[i][1]) && strstr(err.msg, bad[i][0]), "%s", err.msg);
        ty_error_clear(&err);
    }
}

Test(ipam, a_block_keeps_its_gateway_and_says_when_it_is_full)
{
    ty_ipam *ip = ty_ipam_new_block(0x0af40300u, 24); /* 10.244.3.0/24 */
    cr_assert(ty_ipam_is_block(ip));
    cr_assert_str_eq(ty_ipam_host(ip), "10.244.3.1");
    char a[TY_IPAM_ADDR_MAX];
    ty_map seen = TY_MAP_INIT;
    for (int i = 0; i < 253; i++) { /* .2 .. .254 */
        char key[16];
        snprintf(key, sizeof key, "ns/p%d", i);
        cr_assert_eq(ty_ipam_acquire(ip, key, a, NULL), 0);
        if (i == 0)
            cr_assert_str_eq(a, "10.244.3.2");
        cr_assert(strncmp(a, "10.244.3.", 9) == 0 && strcmp(a, "10.244.3.1") != 0 &&
                      strcmp(a, "10.244.3.255") != 0 && strcmp(a, "10.244.3.0") != 0,
                  "%s", a);
        cr_assert(!ty_map_gets(&seen, a), "%s twice", a);
        ty_map_puts(&seen, a, (void *)1);
    }
    ty_map_free(&seen);
    ty_error err = TY_ERROR_INIT;
    cr_assert_lt(ty_ipam_acquire(ip, "ns/more", a, &err), 0);
    cr_assert(strstr(err.msg, "10.244.3.0/24 is exhausted"), "%s", err.msg);
    ty_error_clear(&err);
    ty_ipam_release(ip, "ns/p7");
    cr_assert_eq(ty_ipam_acquire(ip, "ns/more", a, NULL), 0);
    cr_assert_lt(ty_ipam_reserve(ip, "ns/x", "10.244.3.1", &err), 0, "the gateway");
    ty_error_clear(&err);
    cr_assert_lt(ty_ipam_reserve(ip, "ns/x", "10.244.4.2", &err), 0);
    cr_assert(strstr(err.msg, "not in 10.244.3.0/24"), "%s", err.msg);
    ty_error_clear(&err);
    ty_ipam_free(ip);

    ty_ipam *lo = ty_ipam_new();
    cr_assert(!ty_ipam_is_block(lo));
    cr_assert_str_eq(ty_ipam_host(lo), "127.0.0.1");
    ty_ipam_free(lo);
}

Test(podnet, hostname_as_the_kubelet_sets_it)
{
    json_t *pod = json_pack("{s:{s:s}, s:{}}", "metadata", "name", "a-pod", "spec");
    char *h = ty_podnet_hostname(pod);
    cr_assert_str_eq(h, "a-pod");
    free(h);
    json_object_set_new(json_object_get(pod, "spec"), "hostname", json_string("trainer"));
    h = ty_podnet_hostname(pod);
    cr_assert_str_eq(h, "trainer");
    free(h);
    /* 62 characters, then '-': cut to 63 and the trailing '-' dropped */
    char name[80];
    memset(name, 'x', 62);
    strcpy(name + 62, "-abcdef");
    json_object_del(json_object_get(pod, "spec"), "hostname");
    json_object_set_new(json_object_get(pod, "metadata"), "name", json_string(name));
    h = ty_podnet_hostname(pod);
    cr_assert_eq(strlen(h), 62);
    free(h);
    json_decref(pod);
}

static char *read_all(const char *dir, const char *file)
{
    TY_AUTOFREE char *path = ty_asprintf("%s/%s", dir, file);
    ty_buf b = TY_BUF_INIT;
    cr_assert_eq(ty_buf_read_file(&b, path), 0, "%s", path);
    struct stat sb;
    cr_assert_eq(stat(path, &sb), 0);
    cr_assert_eq(sb.st_mode & 0777, 0644, "%s is read by containers of any user", path);
    return ty_buf_steal(&b);
}

Test(podnet, etc_files_by_dns_policy)
{
    char tmpl[] = "/tmp/ty-podnet-XXXXXX";
    cr_assert(mkdtemp(tmpl));
    TY_AUTOFREE char *dir = ty_asprintf("%s/etc", tmpl);
    json_t *pod = json_pack("{s:{s:s, s:s}, s:{s:s, s:s}}", "metadata", "name", "p",
                            "namespace", "team", "spec", "subdomain", "grp", "dnsPolicy",
                            "ClusterFirst");
    cr_assert_eq(ty_podnet_write_etc(dir, pod, "10.244.3.7", "10.244.3.1", NULL), 0);
    TY_AUTOFREE char *hosts = read_all(dir, "hosts");
    cr_assert(strstr(hosts, "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n"), "%s",
              hosts);
    cr_assert(strstr(hosts, "\n10.244.3.7\tp.grp.team.svc.cluster.local\tp\n"), "%s", hosts);
    cr_assert(!strstr(hosts, "HostAliases"), "%s", hosts);
    TY_AUTOFREE char *resolv = read_all(dir, "resolv.conf");
    cr_assert(strncmp(resolv, "search team.svc.cluster.local svc.cluster.local cluster.local",
                      61) == 0, "%s", resolv);
    cr_assert(strstr(resolv, "\nnameserver 10.244.3.1\noptions ndots:5\n"), "%s", resolv);
    TY_AUTOFREE char *hostname = read_all(dir, "hostname");
    cr_assert_str_eq(hostname, "p\n");

    /* None: only dnsConfig; three nameservers at most */
    json_t *spec = json_object_get(pod, "spec");
    json_object_set_new(spec, "dnsPolicy", json_string("None"));
    json_object_del(spec, "subdomain");
    json_object_set_new(spec, "dnsConfig",
                        json_pack("{s:[s,s,s,s], s:[s], s:[{s:s}]}", "nameservers", "1.1.1.1",
                                  "2.2.2.2", "3.3.3.3", "4.4.4.4", "searches", "a.example",
                                  "options", "name", "rotate"));
    cr_assert_eq(ty_podnet_write_etc(dir, pod, "10.244.3.7", "10.244.3.1", NULL), 0);
    TY_AUTOFREE char *none = read_all(dir, "resolv.conf");
    cr_assert_str_eq(none, "search a.example\nnameserver 1.1.1.1\nnameserver 2.2.2.2\n"
                           "nameserver 3.3.3.3\noptions rotate\n");
    TY_AUTOFREE char *hosts2 = read_all(dir, "hosts");
    cr_assert(strstr(hosts2, "\n10.244.3.7\tp\n"), "%s", hosts2);
    json_decref(pod);
    ty_rm_tree(tmpl);
}

/* The kubelet's rule for hostNetwork pods: ClusterFirst is the host's resolver, only
 * ClusterFirstWithHostNet gets the cluster DNS; the host's hosts and hostname stay theirs. */
Test(podnet, host_network_pods_get_the_cluster_dns_only_with_host_net)
{
    char tmpl[] = "/tmp/ty-etc-XXXXXX";
    cr_assert(mkdtemp(tmpl));
    TY_AUTOFREE char *dir = ty_asprintf("%s/etc", tmpl);
    json_t *pod = json_pack("{s:{s:s}, s:{s:b}}", "metadata", "name", "h", "spec",
                            "hostNetwork", 1);
    cr_assert_eq(ty_podnet_write_etc(dir, pod, "10.244.3.1", "10.244.3.1", NULL), 0);
    TY_AUTOFREE char *host = read_all(dir, "resolv.conf");
    cr_assert(!strstr(host, "cluster.local") && !strstr(host, "10.244.3.1"), "%s", host);
    TY_AUTOFREE char *hosts_path = ty_asprintf("%s/hosts", dir);
    TY_AUTOFREE char *hostname_path = ty_asprintf("%s/hostname", dir);
    cr_assert(access(hosts_path, F_OK) < 0 && access(hostname_path, F_OK) < 0);
    json_object_set_new(json_object_get(pod, "spec"), "dnsPolicy",
                        json_string("ClusterFirstWithHostNet"));
    cr_assert_eq(ty_podnet_write_etc(dir, pod, "10.244.3.1", "10.244.3.1", NULL), 0);
    TY_AUTOFREE char *cluster = read_all(dir, "resolv.conf");
    cr_assert(strncmp(cluster, "search default.svc.cluster.local svc.cluster.local", 50) == 0,
              "%s", cluster);
    cr_assert(strstr(cluster, "\nnameserver 10.244.3.1\noptions ndots:5\n"), "%s", cluster);
    json_decref(pod);
    ty_rm_tree(tmpl);
}

/* As root: a pod's namespace with eth0 at its address, gone with ty_podnet_del; the block's
 * bridge and lease gone with ty_podnet_close once no pod of it lives. */
Test(podnet, a_pods_namespace_is_made_and_removed)
{
    if (geteuid() != 0)
        cr_skip_test("pod networking needs root");
    char tmpl[] = "/tmp/ty-podnet-XXXXXX";
    cr_assert(mkdtemp(tmpl));
    ty_podnet *net = NULL;
    char *why = NULL;
    ty_error err = TY_ERROR_INIT;
    cr_assert_geq(ty_podnet_open("10.251.0.0/16", tmpl, &net, &why, &err), 0, "%s", err.msg);
    if (!net) {
        fprintf(stderr, "no pod network here: %s\n", why);
        free(why);
        ty_rm_tree(tmpl);
        cr_skip_test("no pod network here");
    }
    uint32_t block;
    int prefix;
    ty_podnet_block(net, &block, &prefix);
    cr_assert_eq(prefix, 24);
    cr_assert_eq(block & 0xffff0000u, 0x0afb0000u);
    char bridge[16];
    snprintf(bridge, sizeof bridge, "%s", ty_podnet_bridge(net));
    cr_assert_gt(if_nametoindex(bridge), 0);
    char ip[TY_IPAM_ADDR_MAX];
    ty_ipam_format(block + 9, ip);
    int fd = ty_podnet_add(net, "uid-1", ip, &err);
    cr_assert_geq(fd, 0, "%s", err.msg);
    cr_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    ty_nl in;
    cr_assert_eq(ty_nl_open_in(&in, fd, &err), 0, "%s", err.msg);
    cr_assert_gt(ty_nl_link_index(&in, "eth0"), 0);
    ty_nl_close(&in);
    /* an address outside the block is refused before anything is made */
    cr_assert_lt(ty_podnet_add(net, "uid-2", "10.9.9.9", &err), 0);
    cr_assert(strstr(err.msg, "not in the block"), "%s", err.msg);
    ty_error_clear(&err);
    ty_nl host;
    cr_assert_eq(ty_nl_open(&host, NULL), 0);
    /* the host end: tyv + the low 48 bits of the uid's FNV-1a (net/podnet.c) */
    char veth[16];
    snprintf(veth, sizeof veth, "tyv%012llx",
             (unsigned long long)(ty_fnv1a_str(TY_FNV1A_BASIS, "uid-1") & 0xffffffffffffULL));
    cr_assert_gt(ty_nl_link_index(&host, veth), 0, "%s is there", veth);
    ty_podnet_del(net, "uid-1");
    cr_assert_eq(ty_nl_link_index(&host, veth), 0, "%s is gone", veth);
    TY_AUTOFREE char *lease = ty_asprintf("%s/%u.%u.%u.0-24.lease", TY_PODNET_DIR, block >> 24,
                                          (block >> 16) & 0xff, (block >> 8) & 0xff);
    cr_assert_eq(access(lease, F_OK), 0, "%s", lease);
    close(fd);
    ty_podnet_close(net);
    cr_assert_eq(ty_nl_link_index(&host, bridge), 0, "the bridge goes with the last pod");
    cr_assert_neq(access(lease, F_OK), 0, "the lease goes with the last pod");
    ty_nl_close(&host);
    ty_rm_tree(tmpl);
}

/* What a pod's network costs its start (namespace, veth, addresses, route), best of 10; the
 * figure goes into docs/containers.md. */
Test(podnet, cost_of_a_pods_network)
{
    if (geteuid() != 0)
        cr_skip_test("pod networking needs root");
    char tmpl[] = "/tmp/ty-podnet-XXXXXX";
    cr_assert(mkdtemp(tmpl));
    ty_podnet *net = NULL;
    char *why = NULL;
    cr_assert_geq(ty_podnet_open("10.252.0.0/16", tmpl, &net, &why, NULL), 0);
    if (!net) {
        free(why);
        ty_rm_tree(tmpl);
        cr_skip_test("no pod network here");
    }
    uint32_t block;
    int prefix;
    ty_podnet_block(net, &block, &prefix);
    int64_t best = INT64_MAX;
    for (int i = 0; i < 10; i++) {
        char ip[TY_IPAM_ADDR_MAX], uid[32];
        ty_ipam_format(block + 2 + (uint32_t)i, ip);
        snprintf(uid, sizeof uid, "cost-%d", i);
        int64_t t0 = ty_time_now_ns();
        ty_error err = TY_ERROR_INIT;
        int fd = ty_podnet_add(net, uid, ip, &err);
        int64_t dt = ty_time_now_ns() - t0;
        cr_assert_geq(fd, 0, "%s", err.msg);
        best = dt < best ? dt : best;
        close(fd);
        ty_podnet_del(net, uid);
    }
    fprintf(stderr, "podnet: a pod's network made in %lld us (best of 10)\n",
            (long long)best / 1000);
    ty_podnet_close(net);
    ty_rm_tree(tmpl);
}
