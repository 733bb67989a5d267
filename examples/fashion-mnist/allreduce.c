/* Ring all-reduce over TCP: rendezvous through rank 0, then a ring of one connection per
 * direction, driven by a single-threaded poll loop (see allreduce.h for the contract). */
#define _GNU_SOURCE /* accept4, SOCK_CLOEXEC: the examples rule does not pass -D_GNU_SOURCE */
#include "allreduce.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define FM_MAGIC 0x464d5247u /* "FMRG": rejects strangers that connect to our ports */

/* Caps one syscall so reduction of received bytes interleaves with sending them on. */
#ifndef FM_IO_CHUNK
#define FM_IO_CHUNK (256 * 1024)
#endif

struct fm_ring {
    int rank, world;
    int send_fd; /* to rank+1 */
    int recv_fd; /* from rank-1 */
    int timeout_ms;
    /* Receive buffer for the reduce-scatter half: one I/O chunk, reused for every recv, so it
     * stays in cache instead of streaming a whole segment through memory. */
    float tmp[(FM_IO_CHUNK + 16) / sizeof(float)];
};

struct peer_addr {
    uint32_t ip;   /* network order */
    uint16_t port; /* network order */
};

void fm_err_set(fm_err *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- names without NSS ----
 * A statically linked glibc program resolves through NSS modules it loads from the image at
 * run time (and that an image may lack, or name in /etc/nsswitch.conf without having them):
 * getaddrinfo then fails although the pod's resolv.conf names a working nameserver (the
 * cluster DNS, which answers MASTER_ADDR, the operator's Service name). So when getaddrinfo
 * fails, the name is asked here: one A query over UDP to each nameserver of
 * /etc/resolv.conf (at most 3, 2 s each), trying the search domains first when the name has
 * fewer dots than ndots (default 1), as the stub resolver does; the first A record of an
 * answer with rcode 0 wins. IPv4 only, no TCP fallback (an A answer fits 512 bytes). */

typedef struct resolv_conf {
    uint32_t ns[3]; /* network order */
    int n_ns;
    char search[6][256];
    int n_search;
    int ndots;
} resolv_conf;

static void read_resolv_conf(resolv_conf *rc)
{
    memset(rc, 0, sizeof *rc);
    rc->ndots = 1;
    FILE *f = fopen("/etc/resolv.conf", "re");
    if (!f)
        return;
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        char *save = NULL, *key = strtok_r(line, " \t\r\n", &save), *v;
        if (!key || key[0] == '#' || key[0] == ';')
            continue;
        if (strcmp(key, "nameserver") == 0 && (v = strtok_r(NULL, " \t\r\n", &save)) &&
            rc->n_ns < 3) {
            struct in_addr a;
            if (inet_pton(AF_INET, v, &a) == 1)
                rc->ns[rc->n_ns++] = a.s_addr;
        } else if (strcmp(key, "search") == 0 || strcmp(key, "domain") == 0) {
            rc->n_search = 0; /* the last line wins, as in glibc */
            while ((v = strtok_r(NULL, " \t\r\n", &save)) && rc->n_search < 6)
                if (strlen(v) < sizeof rc->search[0])
                    strcpy(rc->search[rc->n_search++], v);
        } else if (strcmp(key, "options") == 0) {
            while ((v = strtok_r(NULL, " \t\r\n", &save)))
                if (strncmp(v, "ndots:", 6) == 0)
                    rc->ndots = atoi(v + 6);
        }
    }
    fclose(f);
}

/* Writes the query for `name` (A, IN, recursion desired); returns its length or -1. */
static int dns_query(const char *name, uint16_t id, unsigned char *q, size_t cap)
{
    size_t n = 12, len = strlen(name);
    if (len == 0 || len > 253 || n + len + 2 + 4 > cap)
        return -1;
    memset(q, 0, 12);
    q[0] = (unsigned char)(id >> 8), q[1] = (unsigned char)id;
    q[2] = 0x01; /* RD */
    q[5] = 1;    /* one question */
    for (const char *l = name; *l;) {
        const char *dot = strchr(l, '.');
        size_t ll = dot ? (size_t)(dot - l) : strlen(l);
        if (ll == 0 || ll > 63)
            return -1;
        q[n++] = (unsigned char)ll;
        memcpy(q + n, l, ll);
        n += ll;
        l += ll + (dot ? 1 : 0);
    }
    q[n++] = 0;
    q[n++] = 0, q[n++] = 1; /* A */
    q[n++] = 0, q[n++] = 1; /* IN */
    return (int)n;
}

/* Skips a (possibly compressed) name at off; returns the offset after it or -1. */
static int skip_name(const unsigned char *m, int len, int off)
{
    while (off < len) {
        if ((m[off] & 0xC0) == 0xC0)
            return off + 2 <= len ? off + 2 : -1;
        if (m[off] == 0)
            return off + 1;
        off += m[off] + 1;
    }
    return -1;
}

/* The first A record of the answer to query `id`: 1 found, 0 the name has none (NXDOMAIN,
 * or no A record), -1 not an answer to it (wait on), -2 the server failed (ask the next). */
static int dns_answer(const unsigned char *m, int len, uint16_t id, uint32_t *ip)
{
    if (len < 12 || ((m[0] << 8) | m[1]) != id || !(m[2] & 0x80))
        return -1;
    int rcode = m[3] & 0x0F;
    if (rcode == 3)
        return 0;
    if (rcode != 0)
        return -2;
    int qd = (m[4] << 8) | m[5], an = (m[6] << 8) | m[7], off = 12;
    for (int i = 0; i < qd; i++)
        if ((off = skip_name(m, len, off)) < 0 || (off += 4) > len)
            return -2;
    for (int i = 0; i < an; i++) {
        if ((off = skip_name(m, len, off)) < 0 || off + 10 > len)
            return -2;
        int type = (m[off] << 8) | m[off + 1], rdlen = (m[off + 8] << 8) | m[off + 9];
        off += 10;
        if (off + rdlen > len)
            return -2;
        if (type == 1 && rdlen == 4) {
            memcpy(ip, m + off, 4);
            return 1;
        }
        off += rdlen;
    }
    return 0;
}

/* Asks each nameserver for `name`: 1 with *ip, 0 when none knows it. */
static int dns_ask(const resolv_conf *rc, const char *name, uint32_t *ip)
{
    unsigned char q[512], a[512];
    for (int k = 0; k < rc->n_ns; k++) {
        uint16_t id = (uint16_t)(now_ms() * 7919 + getpid() + k);
        int qlen = dns_query(name, id, q, sizeof q);
        int fd = qlen < 0 ? -1 : socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return 0;
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(53),
                                 .sin_addr.s_addr = rc->ns[k]};
        int found = -1;
        /* connect: only that server's answers come back to this socket */
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
            send(fd, q, (size_t)qlen, 0) == qlen) {
            int64_t deadline = now_ms() + 2000;
            while (found < 0 && now_ms() < deadline) {
                struct pollfd p = {.fd = fd, .events = POLLIN};
                if (poll(&p, 1, (int)(deadline - now_ms())) <= 0)
                    continue;
                ssize_t n = recv(fd, a, sizeof a, 0);
                if (n > 0)
                    found = dns_answer(a, (int)n, id, ip); /* -1: not ours, wait on */
            }
        }
        close(fd);
        if (found >= 0)
            return found; /* else: no answer, or a failure: the next server */
    }
    return 0;
}

static int dns_resolve(const char *host, uint32_t *ip)
{
    resolv_conf rc;
    read_resolv_conf(&rc);
    size_t len = strlen(host);
    if (len && host[len - 1] == '.') { /* absolute: as it is, no search */
        char abs[256];
        snprintf(abs, sizeof abs, "%.*s", (int)len - 1, host);
        return dns_ask(&rc, abs, ip);
    }
    int dots = 0;
    for (const char *c = host; *c; c++)
        dots += *c == '.';
    if (dots >= rc.ndots && dns_ask(&rc, host, ip) == 1)
        return 1;
    for (int i = 0; i < rc.n_search; i++) {
        char fq[512];
        snprintf(fq, sizeof fq, "%s.%s", host, rc.search[i]);
        if (dns_ask(&rc, fq, ip) == 1)
            return 1;
    }
    return dots < rc.ndots ? dns_ask(&rc, host, ip) : 0;
}

static int resolve_ipv4(const char *host, uint32_t *ip, fm_err *err)
{
    struct in_addr a;
    if (inet_pton(AF_INET, host, &a) == 1) {
        *ip = a.s_addr;
        return 0;
    }
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc == 0 && res) {
        *ip = ((struct sockaddr_in *)res->ai_addr)->sin_addr.s_addr;
        freeaddrinfo(res);
        return 0;
    }
    if (dns_resolve(host, ip) == 1) {
        char buf[INET_ADDRSTRLEN];
        struct in_addr got = {.s_addr = *ip};
        fprintf(stderr, "fashion-mnist: resolved %s to %s through resolv.conf's nameserver "
                        "(getaddrinfo: %s)\n", host,
                inet_ntop(AF_INET, &got, buf, sizeof buf),
                rc ? gai_strerror(rc) : "no address");
        return 0;
    }
    fm_err_set(err, "resolve %s: %s", host, rc ? gai_strerror(rc) : "no address");
    return -1;
}

/* A peer's name resolves once its pod is ready (cluster DNS lists ready endpoints), and pods
 * start in any order: asked again until the rendezvous deadline. */
static int resolve_until(const char *host, uint32_t *ip, int64_t deadline, fm_err *err)
{
    for (;;) {
        if (resolve_ipv4(host, ip, err) == 0)
            return 0;
        if (now_ms() >= deadline)
            return -1;
        struct timespec ts = {0, 200 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

static const char *ipstr(uint32_t ip, char buf[INET_ADDRSTRLEN])
{
    struct in_addr a = {.s_addr = ip};
    return inet_ntop(AF_INET, &a, buf, INET_ADDRSTRLEN);
}

/* Waits for one event on fd; the deadline is absolute so retries do not extend it. */
static int wait_fd(int fd, short events, int64_t deadline, const char *what, fm_err *err)
{
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0) {
            fm_err_set(err, "%s: timed out", what);
            return -1;
        }
        struct pollfd p = {.fd = fd, .events = events};
        int rc = poll(&p, 1, left > 1000000 ? 1000000 : (int)left);
        if (rc > 0)
            return 0;
        if (rc < 0 && errno != EINTR) {
            fm_err_set(err, "%s: poll: %s", what, strerror(errno));
            return -1;
        }
    }
}

static int io_all(int fd, void *buf, size_t len, int writing, int64_t deadline, const char *what,
                  fm_err *err)
{
    char *p = buf;
    while (len > 0) {
        ssize_t n = writing ? send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT)
                            : recv(fd, p, len, MSG_DONTWAIT);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (n == 0) {
            fm_err_set(err, "%s: peer closed the connection", what);
            return -1;
        }
        if (errno == EAGAIN || errno == EINTR) {
            if (wait_fd(fd, writing ? POLLOUT : POLLIN, deadline, what, err) < 0)
                return -1;
            continue;
        }
        fm_err_set(err, "%s: %s", what, strerror(errno));
        return -1;
    }
    return 0;
}

static void tune_socket(int fd, int sockbuf)
{
    int one = 1;
    /* Small messages (handshakes, tiny reductions) must not wait for Nagle. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (sockbuf > 0) {
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sockbuf, sizeof sockbuf);
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sockbuf, sizeof sockbuf);
    }
}

static int listen_on(uint32_t ip, uint16_t port, int sockbuf, struct peer_addr *bound, fm_err *err)
{
    char ipb[INET_ADDRSTRLEN];
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        fm_err_set(err, "socket: %s", strerror(errno));
        return -1;
    }
    int one = 1;
    /* A restarted rank 0 must be able to bind its port while old connections sit in TIME_WAIT. */
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    /* Set before listen so accepted sockets inherit the buffer sizes. */
    tune_socket(fd, sockbuf);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = port, .sin_addr.s_addr = ip};
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        fm_err_set(err, "bind %s:%u: %s", ipstr(ip, ipb), ntohs(port), strerror(errno));
        close(fd);
        return -1;
    }
    if (listen(fd, 64) < 0) {
        fm_err_set(err, "listen %s:%u: %s", ipstr(ip, ipb), ntohs(port), strerror(errno));
        close(fd);
        return -1;
    }
    socklen_t sl = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    bound->ip = sa.sin_addr.s_addr;
    bound->port = sa.sin_port;
    return fd;
}

static int accept_one(int lfd, int64_t deadline, int sockbuf, const char *what, fm_err *err)
{
    for (;;) {
        if (wait_fd(lfd, POLLIN, deadline, what, err) < 0)
            return -1;
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd >= 0) {
            tune_socket(fd, sockbuf);
            return fd;
        }
        if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) {
            fm_err_set(err, "%s: accept: %s", what, strerror(errno));
            return -1;
        }
    }
}

/* Connects from bind_ip to ip:port, retrying refused connections until the deadline: the
 * other side may simply not be listening yet. */
static int connect_retry(uint32_t bind_ip, uint32_t ip, uint16_t port, int64_t deadline,
                         int sockbuf, const char *what, fm_err *err)
{
    char ipb[INET_ADDRSTRLEN];
    int last = 0;
    for (;;) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) {
            fm_err_set(err, "socket: %s", strerror(errno));
            return -1;
        }
        tune_socket(fd, sockbuf);
        struct sockaddr_in me = {.sin_family = AF_INET, .sin_addr.s_addr = bind_ip};
        if (bind(fd, (struct sockaddr *)&me, sizeof me) < 0) {
            fm_err_set(err, "%s: bind %s: %s", what, ipstr(bind_ip, ipb), strerror(errno));
            close(fd);
            return -1;
        }
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = port, .sin_addr.s_addr = ip};
        int rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
        if (rc < 0 && errno == EINPROGRESS) {
            fm_err local;
            if (wait_fd(fd, POLLOUT, deadline, what, &local) == 0) {
                int soerr = 0;
                socklen_t sl = sizeof soerr;
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
                rc = soerr ? -1 : 0;
                errno = soerr;
            } else {
                errno = ETIMEDOUT;
            }
        }
        if (rc == 0)
            return fd;
        last = errno;
        close(fd);
        if (now_ms() >= deadline) {
            fm_err_set(err, "%s: connect %s:%u: %s (gave up)", what, ipstr(ip, ipb), ntohs(port),
                       strerror(last));
            return -1;
        }
        struct timespec pause = {.tv_nsec = 100 * 1000000};
        nanosleep(&pause, NULL);
    }
}

struct hello {
    uint32_t magic, rank, world, ip;
    uint16_t port, pad;
};

static int rendezvous(const fm_ring_opts *o, uint32_t master_ip, struct peer_addr *table,
                      int64_t deadline, fm_err *err)
{
    char what[128];
    uint32_t bind_ip = table[o->rank].ip;
    if (o->rank == 0) {
        struct peer_addr ignored;
        int lfd = listen_on(master_ip, htons((uint16_t)o->master_port), 0, &ignored, err);
        if (lfd < 0)
            return -1;
        int fds[o->world];
        for (int i = 0; i < o->world; i++)
            fds[i] = -1;
        int rc = -1;
        for (int got = 1; got < o->world;) {
            snprintf(what, sizeof what, "rendezvous: waiting for %d of %d ranks", o->world - got,
                     o->world - 1);
            int fd = accept_one(lfd, deadline, 0, what, err);
            if (fd < 0)
                goto out;
            struct hello h;
            fm_err local;
            if (io_all(fd, &h, sizeof h, 0, now_ms() + o->timeout_ms, "rendezvous hello", &local) < 0 ||
                ntohl(h.magic) != FM_MAGIC) {
                close(fd); /* a stranger or a broken peer: ignore it, keep waiting */
                continue;
            }
            uint32_t r = ntohl(h.rank), w = ntohl(h.world);
            if (w != (uint32_t)o->world || r == 0 || r >= (uint32_t)o->world || fds[r] >= 0) {
                fm_err_set(err, "rendezvous: rank %u says world size %u (ours %d) or is a duplicate",
                           r, w, o->world);
                close(fd);
                goto out;
            }
            fds[r] = fd;
            table[r].ip = h.ip;
            table[r].port = h.port;
            got++;
        }
        for (int r = 1; r < o->world; r++) {
            snprintf(what, sizeof what, "rendezvous: send table to rank %d", r);
            if (io_all(fds[r], table, sizeof(struct peer_addr) * (size_t)o->world, 1,
                       now_ms() + o->timeout_ms, what, err) < 0)
                goto out;
        }
        rc = 0;
    out:
        for (int i = 0; i < o->world; i++)
            if (fds[i] >= 0)
                close(fds[i]);
        close(lfd);
        return rc;
    }
    snprintf(what, sizeof what, "rendezvous with rank 0 at %s:%d", o->master_addr, o->master_port);
    int fd = connect_retry(bind_ip, master_ip, htons((uint16_t)o->master_port), deadline, 0, what, err);
    if (fd < 0)
        return -1;
    struct hello h = {.magic = htonl(FM_MAGIC), .rank = htonl((uint32_t)o->rank),
                      .world = htonl((uint32_t)o->world), .ip = table[o->rank].ip,
                      .port = table[o->rank].port};
    int rc = io_all(fd, &h, sizeof h, 1, deadline, what, err);
    if (rc == 0)
        rc = io_all(fd, table, sizeof(struct peer_addr) * (size_t)o->world, 0, deadline, what, err);
    close(fd);
    return rc;
}

int fm_ring_open(fm_ring **out, const fm_ring_opts *o, fm_err *err)
{
    *out = NULL;
    /* The rendezvous keeps per-rank tables on the stack; 4096 ranks is far beyond one machine. */
    if (o->world < 1 || o->world > 4096 || o->rank < 0 || o->rank >= o->world) {
        fm_err_set(err, "bad rank %d for world size %d", o->rank, o->world);
        return -1;
    }
    fm_ring *r = calloc(1, sizeof *r);
    if (!r) {
        fm_err_set(err, "out of memory");
        return -1;
    }
    r->rank = o->rank;
    r->world = o->world;
    r->send_fd = r->recv_fd = -1;
    r->timeout_ms = o->timeout_ms;
    if (o->world == 1) {
        *out = r;
        return 0;
    }
    int64_t deadline = now_ms() + o->rendezvous_timeout_ms;
    uint32_t bind_ip, master_ip;
    if (resolve_ipv4(o->bind_ip, &bind_ip, err) < 0 ||
        resolve_until(o->master_addr, &master_ip, deadline, err) < 0) {
        free(r);
        return -1;
    }
    struct peer_addr table[o->world];
    memset(table, 0, sizeof table);
    int lfd = listen_on(bind_ip, 0, o->sockbuf, &table[o->rank], err);
    if (lfd < 0) {
        free(r);
        return -1;
    }
    if (rendezvous(o, master_ip, table, deadline, err) < 0)
        goto fail;
    int next = (o->rank + 1) % o->world, prev = (o->rank + o->world - 1) % o->world;
    char what[96];
    /* Connect first: the kernel completes it from the listen backlog, so no rank waits for
     * another one's accept and the ring cannot deadlock. */
    snprintf(what, sizeof what, "ring: connect to rank %d", next);
    r->send_fd = connect_retry(bind_ip, table[next].ip, table[next].port, deadline, o->sockbuf, what, err);
    if (r->send_fd < 0)
        goto fail;
    struct hello h = {.magic = htonl(FM_MAGIC), .rank = htonl((uint32_t)o->rank),
                      .world = htonl((uint32_t)o->world)};
    if (io_all(r->send_fd, &h, sizeof h, 1, deadline, what, err) < 0)
        goto fail;
    for (;;) {
        snprintf(what, sizeof what, "ring: accept from rank %d", prev);
        int fd = accept_one(lfd, deadline, o->sockbuf, what, err);
        if (fd < 0)
            goto fail;
        fm_err local;
        if (io_all(fd, &h, sizeof h, 0, deadline, what, &local) == 0 && ntohl(h.magic) == FM_MAGIC &&
            ntohl(h.rank) == (uint32_t)prev) {
            r->recv_fd = fd;
            break;
        }
        close(fd);
    }
    close(lfd);
    *out = r;
    return 0;
fail:
    close(lfd);
    fm_ring_close(r);
    return -1;
}

void fm_ring_close(fm_ring *r)
{
    if (!r)
        return;
    if (r->send_fd >= 0)
        close(r->send_fd);
    if (r->recv_fd >= 0)
        close(r->recv_fd);
    free(r);
}

/* Segment k of n elements split over w ranks: [k*n/w, (k+1)*n/w). */
static size_t seg_lo(size_t n, int w, int k) { return (size_t)(((unsigned __int128)n * (unsigned)k) / (unsigned)w); }

/* Step j of 2(w-1): reduce-scatter for j < w-1 (send segment r-j, receive r-j-1 and add it),
 * then all-gather (send r+1-j', receive r-j' and store it). The segment sent at step j is always
 * the one received at step j-1, which is what lets bytes flow on as soon as they are ready. */
static int send_seg(int r, int w, int j) { return j < w - 1 ? ((r - j) % w + w) % w : ((r + 1 - (j - (w - 1))) % w + w) % w; }
static int recv_seg(int r, int w, int j) { return j < w - 1 ? ((r - j - 1) % w + 2 * w) % w : ((r - (j - (w - 1))) % w + w) % w; }

/* Unaligned 4-float vectors: -O2 does not vectorize the plain loop, and the reduction runs at
 * memory speed only when it is. */
typedef float v4u __attribute__((vector_size(16), aligned(4), may_alias));

static void add_into(float *restrict d, const float *restrict t, size_t n)
{
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        *(v4u *)(d + i) += *(const v4u *)(t + i);
    for (; i < n; i++)
        d[i] += t[i];
}


int fm_ring_allreduce(fm_ring *ring, float *data, size_t n, fm_err *err)
{
    int w = ring->world, r = ring->rank;
    if (w == 1 || n == 0)
        return 0;
    int steps = 2 * (w - 1);
    int js = 0, jr = 0;   /* current send / receive step */
    size_t sb = 0, rb = 0; /* bytes sent / received in the current step */
    size_t rf = 0;        /* floats of the current receive step already reduced or stored */
    int next = (r + 1) % w, prev = (r + w - 1) % w;
    while (js < steps || jr < steps) {
        int progress = 0, send_full = 0;
        /* receive side */
        while (jr < steps) {
            int s = recv_seg(r, w, jr);
            size_t lo = seg_lo(n, w, s), len = (seg_lo(n, w, s + 1) - lo) * sizeof(float);
            if (rb == len) {
                jr++, rb = 0, rf = 0, progress = 1;
                continue;
            }
            int reducing = jr < w - 1;
            size_t want = len - rb;
            if (want > FM_IO_CHUNK)
                want = FM_IO_CHUNK;
            /* Reduce-scatter: into tmp after the 0-3 bytes of a float split by the last recv.
             * All-gather: straight into place. */
            size_t carry = rb - rf * sizeof(float);
            char *dst = reducing ? (char *)ring->tmp + carry : (char *)(data + lo) + rb;
            ssize_t got = recv(ring->recv_fd, dst, want, MSG_DONTWAIT);
            if (got > 0) {
                rb += (size_t)got;
                size_t whole = rb / sizeof(float);
                if (reducing) {
                    add_into(data + lo + rf, ring->tmp, whole - rf);
                    memmove(ring->tmp, (char *)ring->tmp + (whole - rf) * sizeof(float),
                            rb - whole * sizeof(float));
                }
                rf = whole;
                progress = 1;
                continue;
            }
            if (got == 0) {
                fm_err_set(err, "allreduce: rank %d closed the connection (it died or gave up)", prev);
                return -1;
            }
            if (errno == EAGAIN || errno == EINTR)
                break;
            fm_err_set(err, "allreduce: receive from rank %d: %s", prev, strerror(errno));
            return -1;
        }
        /* send side: only bytes that are final for this step may go */
        while (js < steps) {
            int s = send_seg(r, w, js);
            size_t lo = seg_lo(n, w, s), len = (seg_lo(n, w, s + 1) - lo) * sizeof(float);
            if (sb == len) {
                js++, sb = 0, progress = 1;
                continue;
            }
            size_t avail = (js == 0 || jr > js - 1) ? len : rf * sizeof(float);
            if (avail <= sb)
                break;
            size_t want = avail - sb;
            if (want > FM_IO_CHUNK)
                want = FM_IO_CHUNK;
            ssize_t put = send(ring->send_fd, (char *)(data + lo) + sb, want, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (put > 0) {
                sb += (size_t)put;
                progress = 1;
                continue;
            }
            if (put < 0 && (errno == EAGAIN || errno == EINTR)) {
                send_full = 1;
                break;
            }
            fm_err_set(err, "allreduce: send to rank %d: %s", next,
                       put < 0 ? strerror(errno) : "short write");
            return -1;
        }
        if (progress)
            continue;
        struct pollfd p[2];
        int np = 0;
        if (jr < steps)
            p[np++] = (struct pollfd){.fd = ring->recv_fd, .events = POLLIN};
        /* Waiting for writability only makes sense with bytes ready to go; otherwise we are
         * waiting for our own receive side, and POLLOUT would spin. */
        if (send_full)
            p[np++] = (struct pollfd){.fd = ring->send_fd, .events = POLLOUT};
        int rc = poll(p, (nfds_t)np, ring->timeout_ms);
        if (rc == 0) {
            fm_err_set(err, "allreduce: no progress for %d ms (rank %d or %d hung?)", ring->timeout_ms,
                       prev, next);
            return -1;
        }
        if (rc < 0 && errno != EINTR) {
            fm_err_set(err, "allreduce: poll: %s", strerror(errno));
            return -1;
        }
    }
    return 0;
}
