/* The pod network; see podnet.h. */
#include "net/podnet.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/fs.h"
#include "base/hash.h"
#include "base/map.h"
#include "base/mem.h"
#include "net/netlink.h"
#include "runtime/ipam.h"

/* A block is a /24 of the CIDR (254 pods less the gateway: Kubernetes' default podCIDR per
 * node), or the whole CIDR when that is smaller. */
#define BLOCK_PREFIX 24
/* Pod traffic never leaves the machine, so the veths take the largest MTU there is (loopback
 * has 65536): fewer, larger packets through the bridge, which otherwise moves about half of
 * what loopback does (bench/podstart.sh). The bridge follows its ports' MTU. */
#define POD_MTU 65535

struct ty_podnet {
    uint32_t network;
    int prefix;
    char gateway[TY_IPAM_ADDR_MAX];
    char bridge[16];
    char *lease;    /* TY_PODNET_DIR/<block>.lease */
    char *pods_dir; /* TY_PODNET_DIR/<block>.pods */
    int lease_fd;   /* holds an flock while this instance owns the block */
    int bridge_index;
    ty_nl nl; /* in the host's namespace */
};

int ty_podnet_parse_cidr(const char *cidr, uint32_t *network, int *prefix, ty_error *err)
{
    const char *slash = cidr ? strchr(cidr, '/') : NULL;
    char addr[TY_IPAM_ADDR_MAX];
    char *end = NULL;
    long n = slash ? strtol(slash + 1, &end, 10) : -1;
    size_t alen = slash ? (size_t)(slash - cidr) : 0;
    uint32_t a = 0;
    if (!slash || alen >= sizeof addr || !end || *end || end == slash + 1)
        return ty_fail(err, "pod CIDR %s: not of the form a.b.c.d/n", cidr ? cidr : "(null)");
    memcpy(addr, cidr, alen);
    addr[alen] = '\0';
    if (ty_ipam_parse(addr, &a) < 0)
        return ty_fail(err, "pod CIDR %s: %s is not an IPv4 address", cidr, addr);
    if (n < 8 || n > 30)
        return ty_fail(err, "pod CIDR %s: the prefix length must be 8 to 30", cidr);
    if (a & ((uint32_t)-1 >> n))
        return ty_fail(err, "pod CIDR %s: the address has bits past the prefix", cidr);
    if ((a >> 24) == 127 || (a >> 24) == 0 || (a >> 28) >= 14)
        return ty_fail(err, "pod CIDR %s: not a unicast range outside loopback", cidr);
    *network = a;
    *prefix = (int)n;
    return 0;
}

/* ---- leases ---------------------------------------------------------------------------- */

static void block_name(uint32_t network, int prefix, char out[32])
{
    char a[TY_IPAM_ADDR_MAX];
    ty_ipam_format(network, a);
    snprintf(out, 32, "%s-%d", a, prefix);
}

static void bridge_name(uint32_t network, char out[16]) { snprintf(out, 16, "ty-%08x", network); }

static void veth_name(const char *uid, char out[16])
{
    uint64_t h = ty_fnv1a_str(TY_FNV1A_BASIS, uid);
    snprintf(out, 16, "tyv%012llx", (unsigned long long)(h & 0xffffffffffffULL));
}

/* The inodes of every network namespace a process is in now. */
static void live_namespaces(ty_map *set)
{
    DIR *d = opendir("/proc");
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!isdigit((unsigned char)de->d_name[0]))
            continue;
        char path[300];
        snprintf(path, sizeof path, "/proc/%s/ns/net", de->d_name);
        struct stat sb;
        if (stat(path, &sb) == 0) {
            char key[32];
            snprintf(key, sizeof key, "%llu", (unsigned long long)sb.st_ino);
            ty_map_puts(set, key, (void *)1);
        }
    }
    closedir(d);
}

/* Whether any pod recorded in `pods_dir` still has a process in its namespace. */
static bool pods_alive(const char *pods_dir, ty_map *live)
{
    DIR *d = opendir(pods_dir);
    if (!d)
        return false;
    bool alive = false;
    struct dirent *de;
    while (!alive && (de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        TY_AUTOFREE char *path = ty_asprintf("%s/%s", pods_dir, de->d_name);
        TY_AUTOBUF ty_buf b = TY_BUF_INIT;
        if (ty_buf_read_file(&b, path) == 0) {
            b.data[strcspn(b.data, "\n")] = '\0';
            alive = ty_map_gets(live, b.data) != NULL;
        }
    }
    closedir(d);
    return alive;
}

static bool has_records(const char *pods_dir)
{
    DIR *d = opendir(pods_dir);
    if (!d)
        return false;
    struct dirent *de;
    bool any = false;
    while (!any && (de = readdir(d)))
        any = de->d_name[0] != '.';
    closedir(d);
    return any;
}

/* Removes every pod record of a block with its veth, then the bridge, then the lease. */
static void release_block(ty_nl *nl, const char *lease, const char *pods_dir, uint32_t network)
{
    DIR *d = opendir(pods_dir);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char veth[16];
        veth_name(de->d_name, veth);
        ty_nl_link_del(nl, veth, NULL);
        TY_AUTOFREE char *path = ty_asprintf("%s/%s", pods_dir, de->d_name);
        unlink(path);
    }
    if (d)
        closedir(d);
    rmdir(pods_dir);
    char br[16];
    bridge_name(network, br);
    ty_nl_link_del(nl, br, NULL);
    unlink(lease);
}

typedef struct lease_info {
    uint32_t network;
    int prefix;
    char *state_dir;
} lease_info;

/* "<a.b.c.d>-<n>.lease" -> the block. */
static bool parse_lease_name(const char *name, uint32_t *network, int *prefix)
{
    char addr[TY_IPAM_ADDR_MAX];
    int n = 0, used = 0;
    if (sscanf(name, "%15[0-9.]-%d.lease%n", addr, &n, &used) != 2 || name[used] != '\0')
        return false;
    *prefix = n;
    return n >= 8 && n <= 30 && ty_ipam_parse(addr, network) == 0;
}

static bool overlaps(uint32_t a, int ap, uint32_t b, int bp)
{
    int p = ap < bp ? ap : bp;
    uint32_t mask = (uint32_t)-1 << (32 - p);
    return (a & mask) == (b & mask);
}

/* Writes the lease's contents: who holds it (for people and for re-taking it). */
static int write_lease(int fd, const char *state_dir)
{
    json_t *doc = json_pack("{s:i, s:s}", "pid", (int)getpid(), "stateDir", state_dir);
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    int rc = ftruncate(fd, 0) == 0 && pwrite(fd, text, strlen(text), 0) == (ssize_t)strlen(text)
                 ? 0
                 : -1;
    free(text);
    return rc;
}

/* Under the directory's lock: reclaims the stale leases, then re-takes this state dir's
 * block or takes the first free one. Fills net->network/prefix/lease/pods_dir/lease_fd. */
static int take_block(ty_podnet *net, uint32_t cidr, int cidr_prefix, const char *state_dir,
                      char **why)
{
    int block_prefix = cidr_prefix > BLOCK_PREFIX ? cidr_prefix : BLOCK_PREFIX;
    DIR *d = opendir(TY_PODNET_DIR);
    if (!d) {
        *why = ty_asprintf("read %s: %s", TY_PODNET_DIR, strerror(errno));
        return -1;
    }
    ty_map live = TY_MAP_INIT;
    bool scanned = false;
    /* blocks held by others (live owners, or pods still running) */
    size_t n_taken = 0, cap = 16;
    uint32_t *taken = ty_calloc(cap, sizeof *taken);
    int *taken_prefix = ty_calloc(cap, sizeof *taken_prefix);
    struct dirent *de;
    while ((de = readdir(d))) {
        uint32_t bnet;
        int bprefix;
        if (!parse_lease_name(de->d_name, &bnet, &bprefix))
            continue;
        TY_AUTOFREE char *path = ty_asprintf("%s/%s", TY_PODNET_DIR, de->d_name);
        int fd = open(path, O_RDWR | O_CLOEXEC);
        if (fd < 0)
            continue;
        bool owner_dead = flock(fd, LOCK_EX | LOCK_NB) == 0;
        TY_AUTOBUF ty_buf text = TY_BUF_INIT;
        ty_buf_read_file(&text, path);
        json_t *doc = json_loads(text.data, 0, NULL);
        const char *sd = json_string_value(json_object_get(doc, "stateDir"));
        bool mine = owner_dead && sd && strcmp(sd, state_dir) == 0 && net->lease_fd < 0 &&
                    bprefix == block_prefix && overlaps(bnet, bprefix, cidr, cidr_prefix) &&
                    bprefix >= cidr_prefix;
        json_decref(doc);
        TY_AUTOFREE char *pods = ty_asprintf("%s/%.*s.pods", TY_PODNET_DIR,
                                             (int)(strlen(de->d_name) - 6), de->d_name);
        if (mine) {
            /* a restart on the same state dir: the same block, its pods keep their addresses */
            net->network = bnet;
            net->prefix = bprefix;
            net->lease = ty_strdup(path);
            net->pods_dir = ty_strdup(pods);
            net->lease_fd = fd;
            continue;
        }
        if (owner_dead) {
            if (!scanned)
                live_namespaces(&live), scanned = true;
            if (!pods_alive(pods, &live)) {
                release_block(&net->nl, path, pods, bnet);
                close(fd);
                continue;
            }
        }
        close(fd);
        if (n_taken == cap) {
            cap *= 2;
            taken = ty_realloc(taken, cap * sizeof *taken);
            taken_prefix = ty_realloc(taken_prefix, cap * sizeof *taken_prefix);
        }
        taken[n_taken] = bnet;
        taken_prefix[n_taken++] = bprefix;
    }
    closedir(d);
    ty_map_free(&live);
    int rc = 0;
    if (net->lease_fd < 0) {
        uint32_t count = (uint32_t)1 << (block_prefix - cidr_prefix);
        for (uint32_t i = 0; i < count && net->lease_fd < 0; i++) {
            uint32_t bnet = cidr + (i << (32 - block_prefix));
            bool free_block = true;
            for (size_t k = 0; k < n_taken && free_block; k++)
                free_block = !overlaps(bnet, block_prefix, taken[k], taken_prefix[k]);
            if (!free_block)
                continue;
            char name[32];
            block_name(bnet, block_prefix, name);
            TY_AUTOFREE char *path = ty_asprintf("%s/%s.lease", TY_PODNET_DIR, name);
            int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
            if (fd < 0)
                continue;
            flock(fd, LOCK_EX | LOCK_NB);
            net->network = bnet;
            net->prefix = block_prefix;
            net->lease = ty_strdup(path);
            net->pods_dir = ty_asprintf("%s/%s.pods", TY_PODNET_DIR, name);
            net->lease_fd = fd;
        }
        if (net->lease_fd < 0) {
            *why = ty_asprintf("every /%d block of the pod CIDR is leased by another trainyard",
                               block_prefix);
            rc = -1;
        }
    }
    if (rc == 0 && (write_lease(net->lease_fd, state_dir) < 0 ||
                    (mkdir(net->pods_dir, 0700) < 0 && errno != EEXIST))) {
        *why = ty_asprintf("write the lease %s: %s", net->lease, strerror(errno));
        rc = -1;
    }
    free(taken);
    free(taken_prefix);
    return rc;
}

/* Whether this process may make network namespaces: made once and left at once. */
static int probe_netns(char **why)
{
    int home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (home < 0) {
        *why = ty_asprintf("open /proc/thread-self/ns/net: %s", strerror(errno));
        return -1;
    }
    if (unshare(CLONE_NEWNET) < 0) {
        *why = ty_asprintf("creating a network namespace is refused: %s", strerror(errno));
        close(home);
        return -1;
    }
    if (setns(home, CLONE_NEWNET) < 0)
        abort(); /* this thread would stay in an empty namespace */
    close(home);
    return 0;
}

static int bridge_up(ty_podnet *net, char **why)
{
    ty_error e = TY_ERROR_INIT;
    uint32_t gw = net->network + 1;
    /* A fixed address (locally administered, from the block): a bridge without one takes
     * its lowest port's, so a pod joining with a lower one would change the gateway's MAC
     * under every other pod, which then cannot reach it (DNS included) until its neighbour
     * entry expires. */
    unsigned char mac[6] = {0x02, (unsigned char)(net->network >> 24),
                            (unsigned char)(net->network >> 16), (unsigned char)(net->network >> 8),
                            (unsigned char)net->network, 0x01};
    if (ty_nl_bridge_add(&net->nl, net->bridge, &e) < 0 ||
        (net->bridge_index = ty_nl_link_index(&net->nl, net->bridge)) <= 0 ||
        ty_nl_link_set_mac(&net->nl, net->bridge_index, mac, &e) < 0 ||
        ty_nl_addr_add(&net->nl, net->bridge_index, gw, net->prefix, &e) < 0 ||
        ty_nl_link_up(&net->nl, net->bridge_index, 0, &e) < 0) {
        *why = e.msg ? ty_strdup(e.msg)
                     : ty_asprintf("find bridge %s: %s", net->bridge, strerror(errno));
        ty_error_clear(&e);
        return -1;
    }
    return 0;
}

int ty_podnet_open(const char *cidr, const char *state_dir, ty_podnet **out, char **why,
                   ty_error *err)
{
    uint32_t network;
    int prefix;
    *out = NULL;
    *why = NULL;
    if (ty_podnet_parse_cidr(cidr, &network, &prefix, err) < 0)
        return -1;
    if (geteuid() != 0) {
        *why = ty_strdup("not root");
        return 0;
    }
    if (probe_netns(why) < 0)
        return 0;
    char sd[PATH_MAX];
    if (!realpath(state_dir, sd)) {
        *why = ty_asprintf("resolve %s: %s", state_dir, strerror(errno));
        return 0;
    }
    if (ty_mkdir_p(TY_PODNET_DIR, 0700) < 0) {
        *why = ty_asprintf("create %s: %s", TY_PODNET_DIR, strerror(errno));
        return 0;
    }
    ty_podnet *net = TY_NEW(ty_podnet);
    net->lease_fd = -1;
    ty_error e = TY_ERROR_INIT;
    if (ty_nl_open(&net->nl, &e) < 0) {
        *why = ty_strdup(e.msg);
        ty_error_clear(&e);
        free(net);
        return 0;
    }
    int lock = open(TY_PODNET_DIR "/lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock < 0 || flock(lock, LOCK_EX) < 0) {
        *why = ty_asprintf("lock %s/lock: %s", TY_PODNET_DIR, strerror(errno));
        if (lock >= 0)
            close(lock);
        ty_podnet_close(net);
        return 0;
    }
    int rc = take_block(net, network, prefix, sd, why);
    if (rc == 0) {
        bridge_name(net->network, net->bridge);
        ty_ipam_format(net->network + 1, net->gateway);
        rc = bridge_up(net, why);
    }
    close(lock); /* the lease's own flock says it is ours from here on */
    if (rc < 0) {
        ty_podnet_close(net);
        return 0;
    }
    *out = net;
    return 1;
}

void ty_podnet_close(ty_podnet *net)
{
    if (!net)
        return;
    if (net->lease_fd >= 0) {
        /* the usual end (every pod gone, its record with it) needs no look at /proc */
        ty_map live = TY_MAP_INIT;
        if (has_records(net->pods_dir))
            live_namespaces(&live);
        if (!pods_alive(net->pods_dir, &live))
            release_block(&net->nl, net->lease, net->pods_dir, net->network);
        ty_map_free(&live);
        close(net->lease_fd);
    }
    ty_nl_close(&net->nl);
    free(net->lease);
    free(net->pods_dir);
    free(net);
}

void ty_podnet_block(const ty_podnet *net, uint32_t *network, int *prefix)
{
    *network = net->network;
    *prefix = net->prefix;
}

const char *ty_podnet_gateway(const ty_podnet *net) { return net->gateway; }
const char *ty_podnet_bridge(const ty_podnet *net) { return net->bridge; }

/* ---- pods ------------------------------------------------------------------------------ */

static bool uid_ok(const char *uid)
{
    return uid && *uid && !strchr(uid, '/') && strcmp(uid, "..") != 0 && uid[0] != '.';
}

/* Inside the pod's namespace: lo up, eth0 up with its address, the default route. */
static int configure_pod(ty_nl *nl, uint32_t addr, int prefix, uint32_t gw, ty_error *err)
{
    int lo = ty_nl_link_index(nl, "lo");
    int eth0 = ty_nl_link_index(nl, "eth0");
    if (lo <= 0 || eth0 <= 0)
        return ty_fail_errno(err, errno, "find lo and eth0 in the pod's namespace");
    if (ty_nl_link_up(nl, lo, 0, err) < 0 || ty_nl_addr_add(nl, eth0, addr, prefix, err) < 0 ||
        ty_nl_link_up(nl, eth0, 0, err) < 0 || ty_nl_route_default(nl, gw, err) < 0)
        return -1;
    return 0;
}

int ty_podnet_add(ty_podnet *net, const char *uid, const char *ip, ty_error *err)
{
    uint32_t addr;
    if (!uid_ok(uid))
        return ty_fail(err, "pod network: bad pod uid");
    if (ty_ipam_parse(ip, &addr) < 0 || (addr ^ net->network) >> (32 - net->prefix))
        return ty_fail(err, "pod network: %s is not in the block %s/%d", ip, net->gateway,
                       net->prefix);
    ty_podnet_del(net, uid); /* what an earlier try for this uid left */
    int home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (home < 0)
        return ty_fail_errno(err, errno, "pod network: open this thread's namespace");
    if (unshare(CLONE_NEWNET) < 0) {
        int e = errno;
        close(home);
        return ty_fail_errno(err, e, "pod network: create a network namespace");
    }
    int nsfd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    int nsfd_errno = errno;
    ty_nl in = {.fd = -1};
    ty_error inerr = TY_ERROR_INIT;
    int in_rc = nsfd >= 0 ? ty_nl_open(&in, &inerr) : -1;
    /* Home before anything else: the loop must not go on in the pod's namespace. */
    if (setns(home, CLONE_NEWNET) < 0)
        abort();
    close(home);
    if (nsfd < 0) {
        ty_error_clear(&inerr);
        return ty_fail_errno(err, nsfd_errno, "pod network: open the new namespace");
    }
    if (in_rc < 0) {
        close(nsfd);
        ty_fail(err, "pod network: %s", inerr.msg);
        ty_error_clear(&inerr);
        return -1;
    }
    /* The record first, so that nothing made below is ever unknown to a sweep. */
    struct stat sb;
    fstat(nsfd, &sb);
    TY_AUTOFREE char *rec = ty_asprintf("%s/%s", net->pods_dir, uid);
    char veth[16];
    veth_name(uid, veth);
    FILE *f = fopen(rec, "we");
    bool recorded = f && fprintf(f, "%llu\n", (unsigned long long)sb.st_ino) > 0;
    if (f && fclose(f) != 0)
        recorded = false;
    int host_index = 0;
    if (!recorded) {
        ty_fail_errno(err, errno, "pod network: write %s", rec);
    } else if (ty_nl_veth_add(&net->nl, veth, "eth0", nsfd, POD_MTU, err) < 0 ||
               (host_index = ty_nl_link_index(&net->nl, veth)) <= 0 ||
               ty_nl_link_up(&net->nl, host_index, net->bridge_index, err) < 0 ||
               configure_pod(&in, addr, net->prefix, net->network + 1, err) < 0) {
        if (host_index < 0)
            ty_fail_errno(err, errno, "find link %s", veth);
    } else {
        ty_nl_close(&in);
        return nsfd;
    }
    ty_error_wrap(err, "pod network for %s", ip);
    ty_nl_close(&in);
    close(nsfd);
    ty_podnet_del(net, uid);
    return -1;
}

void ty_podnet_del(ty_podnet *net, const char *uid)
{
    if (!uid_ok(uid))
        return;
    char veth[16];
    veth_name(uid, veth);
    ty_nl_link_del(&net->nl, veth, NULL);
    TY_AUTOFREE char *rec = ty_asprintf("%s/%s", net->pods_dir, uid);
    unlink(rec);
}

void ty_podnet_forget(ty_podnet *net, const char *uid)
{
    if (!uid_ok(uid))
        return;
    TY_AUTOFREE char *rec = ty_asprintf("%s/%s", net->pods_dir, uid);
    unlink(rec);
}

int ty_podnet_sweep(ty_podnet *net, bool (*keep)(void *ctx, const char *uid), void *ctx)
{
    DIR *d = opendir(net->pods_dir);
    if (!d)
        return 0;
    json_t *doomed = json_array();
    struct dirent *de;
    while ((de = readdir(d)))
        if (de->d_name[0] != '.' && !keep(ctx, de->d_name))
            json_array_append_new(doomed, json_string(de->d_name));
    closedir(d);
    size_t i;
    json_t *v;
    json_array_foreach(doomed, i, v) ty_podnet_del(net, json_string_value(v));
    int n = (int)json_array_size(doomed);
    json_decref(doomed);
    return n;
}

/* ---- the kubelet's files --------------------------------------------------------------- */

#define CLUSTER_DOMAIN "cluster.local"
/* The kubelet's limits on what a resolv.conf holds (pkg/apis/core/validation). */
#define MAX_NAMESERVERS 3
#define MAX_SEARCHES 32

char *ty_podnet_hostname(const json_t *pod)
{
    const char *h = json_string_value(json_object_get(json_object_get(pod, "spec"), "hostname"));
    if (!h || !*h)
        h = json_string_value(json_object_get(json_object_get(pod, "metadata"), "name"));
    char *out = ty_strndup(h ? h : "", 63);
    for (size_t n = strlen(out); n > 0 && (out[n - 1] == '-' || out[n - 1] == '.'); n--)
        out[n - 1] = '\0';
    return out;
}

typedef struct resolv {
    json_t *nameservers, *searches, *options; /* arrays of strings */
} resolv;

static void add_unique(json_t *list, const char *s, size_t max)
{
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v) if (strcmp(json_string_value(v), s) == 0) return;
    if (json_array_size(list) < max)
        json_array_append_new(list, json_string(s));
}

/* An option "name[:value]" replaces one of the same name, as the kubelet merges them. */
static void set_option(json_t *opts, const char *opt)
{
    size_t nlen = strcspn(opt, ":");
    size_t i;
    json_t *v;
    json_array_foreach(opts, i, v)
    {
        const char *o = json_string_value(v);
        if (strncmp(o, opt, nlen) == 0 && (o[nlen] == ':' || o[nlen] == '\0')) {
            json_array_set_new(opts, i, json_string(opt));
            return;
        }
    }
    json_array_append_new(opts, json_string(opt));
}

/* The host's resolver configuration; a local stub (127.0.0.53 of systemd-resolved) is no use
 * from a pod's namespace, so its upstream file is read then, as the kubelet is told to. */
static void host_resolv(resolv *r)
{
    const char *files[] = {"/etc/resolv.conf", "/run/systemd/resolve/resolv.conf"};
    for (size_t f = 0; f < 2; f++) {
        TY_AUTOBUF ty_buf b = TY_BUF_INIT;
        if (ty_buf_read_file(&b, files[f]) < 0)
            continue;
        json_array_clear(r->nameservers);
        json_array_clear(r->searches);
        json_array_clear(r->options);
        bool stub = false;
        char *save = NULL;
        for (char *line = strtok_r(b.data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
            char *ws = NULL;
            char *key = strtok_r(line, " \t", &ws);
            if (!key || key[0] == '#' || key[0] == ';')
                continue;
            for (char *w = strtok_r(NULL, " \t", &ws); w; w = strtok_r(NULL, " \t", &ws)) {
                if (strcmp(key, "nameserver") == 0) {
                    stub |= strncmp(w, "127.", 4) == 0;
                    add_unique(r->nameservers, w, MAX_NAMESERVERS);
                } else if (strcmp(key, "search") == 0 || strcmp(key, "domain") == 0) {
                    add_unique(r->searches, w, MAX_SEARCHES);
                } else if (strcmp(key, "options") == 0) {
                    set_option(r->options, w);
                }
            }
        }
        if (!stub)
            break;
    }
}

static int write_file(const char *dir, const char *name, const ty_buf *b, ty_error *err)
{
    TY_AUTOFREE char *path = ty_asprintf("%s/%s", dir, name);
    TY_AUTOFREE char *tmp = ty_asprintf("%s/.%s.tmp", dir, name);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return ty_fail_errno(err, errno, "write %s", path);
    bool ok = write(fd, b->data, b->len) == (ssize_t)b->len && fchmod(fd, 0644) == 0;
    int e = errno;
    close(fd);
    if (!ok || rename(tmp, path) < 0) {
        e = ok ? errno : e;
        unlink(tmp);
        return ty_fail_errno(err, e, "write %s", path);
    }
    return 0;
}

int ty_podnet_write_etc(const char *dir, const json_t *pod, const char *ip, const char *gateway,
                        ty_error *err)
{
    const json_t *spec = json_object_get(pod, "spec");
    const char *ns = json_string_value(json_object_get(json_object_get(pod, "metadata"),
                                                       "namespace"));
    if (!ns)
        ns = "default";
    /* 0700 as everything of the pod dir; the files themselves are 0644, for the containers */
    if (ty_mkdir_p(dir, 0700) < 0)
        return ty_fail_errno(err, errno, "create %s", dir);
    TY_AUTOFREE char *hostname = ty_podnet_hostname(pod);

    /* hosts: the kubelet's managed file */
    TY_AUTOBUF ty_buf h = TY_BUF_INIT;
    ty_buf_adds(&h, "# Kubernetes-managed hosts file.\n"
                    "127.0.0.1\tlocalhost\n"
                    "::1\tlocalhost ip6-localhost ip6-loopback\n"
                    "fe00::0\tip6-localnet\n"
                    "fe00::0\tip6-mcastprefix\n"
                    "fe00::1\tip6-allnodes\n"
                    "fe00::2\tip6-allrouters\n");
    const char *sub = json_string_value(json_object_get(spec, "subdomain"));
    if (sub && *sub)
        ty_buf_addf(&h, "%s\t%s.%s.%s.svc.%s\t%s\n", ip, hostname, sub, ns, CLUSTER_DOMAIN,
                    hostname);
    else
        ty_buf_addf(&h, "%s\t%s\n", ip, hostname);
    json_t *aliases = json_object_get(spec, "hostAliases"), *a;
    size_t i;
    if (json_array_size(aliases)) {
        ty_buf_adds(&h, "\n# Entries added by HostAliases.\n");
        json_array_foreach(aliases, i, a)
        {
            const char *aip = json_string_value(json_object_get(a, "ip"));
            if (!aip)
                continue;
            ty_buf_adds(&h, aip);
            size_t j;
            json_t *hn;
            json_array_foreach(json_object_get(a, "hostnames"), j, hn)
                if (json_is_string(hn)) ty_buf_addf(&h, "\t%s", json_string_value(hn));
            ty_buf_addc(&h, '\n');
        }
    }

    /* resolv.conf by dnsPolicy, then dnsConfig merged in */
    resolv r = {json_array(), json_array(), json_array()};
    const char *policy = json_string_value(json_object_get(spec, "dnsPolicy"));
    bool host_network = json_is_true(json_object_get(spec, "hostNetwork"));
    if (!policy)
        policy = "ClusterFirst";
    /* The kubelet's rule: a hostNetwork pod resolves as the host does unless it asks for the
     * cluster's names with ClusterFirstWithHostNet (ClusterFirst is then Default). */
    if (host_network && strcmp(policy, "ClusterFirst") == 0)
        policy = "Default";
    if (strcmp(policy, "None") == 0) {
        /* only dnsConfig */
    } else if (strcmp(policy, "Default") == 0) {
        host_resolv(&r);
    } else {
        host_resolv(&r);
        json_t *host_searches = json_copy(r.searches);
        json_array_clear(r.nameservers);
        json_array_clear(r.searches);
        json_array_clear(r.options);
        add_unique(r.nameservers, gateway, MAX_NAMESERVERS);
        TY_AUTOFREE char *s1 = ty_asprintf("%s.svc.%s", ns, CLUSTER_DOMAIN);
        add_unique(r.searches, s1, MAX_SEARCHES);
        add_unique(r.searches, "svc." CLUSTER_DOMAIN, MAX_SEARCHES);
        add_unique(r.searches, CLUSTER_DOMAIN, MAX_SEARCHES);
        json_t *s;
        json_array_foreach(host_searches, i, s) add_unique(r.searches, json_string_value(s),
                                                           MAX_SEARCHES);
        json_decref(host_searches);
        set_option(r.options, "ndots:5");
    }
    const json_t *dc = json_object_get(spec, "dnsConfig");
    json_t *v;
    json_array_foreach(json_object_get(dc, "nameservers"), i, v) if (json_is_string(v))
        add_unique(r.nameservers, json_string_value(v), MAX_NAMESERVERS);
    json_array_foreach(json_object_get(dc, "searches"), i, v) if (json_is_string(v))
        add_unique(r.searches, json_string_value(v), MAX_SEARCHES);
    json_array_foreach(json_object_get(dc, "options"), i, v)
    {
        const char *name = json_string_value(json_object_get(v, "name"));
        const char *value = json_string_value(json_object_get(v, "value"));
        if (!name || !*name)
            continue;
        TY_AUTOFREE char *opt = value ? ty_asprintf("%s:%s", name, value) : ty_strdup(name);
        set_option(r.options, opt);
    }
    TY_AUTOBUF ty_buf rc = TY_BUF_INIT;
    const char *keys[] = {"search", "nameserver", "options"};
    json_t *lists[] = {r.searches, r.nameservers, r.options};
    for (int k = 0; k < 3; k++) {
        if (!json_array_size(lists[k]))
            continue;
        if (k == 1) { /* one line per nameserver */
            json_array_foreach(lists[k], i, v) ty_buf_addf(&rc, "nameserver %s\n",
                                                           json_string_value(v));
            continue;
        }
        ty_buf_adds(&rc, keys[k]);
        json_array_foreach(lists[k], i, v) ty_buf_addf(&rc, " %s", json_string_value(v));
        ty_buf_addc(&rc, '\n');
    }
    json_decref(r.nameservers), json_decref(r.searches), json_decref(r.options);

    TY_AUTOBUF ty_buf hn = TY_BUF_INIT;
    ty_buf_addf(&hn, "%s\n", hostname);
    /* A hostNetwork pod keeps the host's hosts file and hostname: only resolv.conf is its. */
    if (write_file(dir, "resolv.conf", &rc, err) < 0 ||
        (!host_network && (write_file(dir, "hosts", &h, err) < 0 ||
                           write_file(dir, "hostname", &hn, err) < 0)))
        return -1;
    return 0;
}
