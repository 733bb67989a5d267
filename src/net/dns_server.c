/* The cluster DNS server on the loop: UDP and TCP listeners, the zone fed by store watches,
 * and forwarding to the upstream resolvers (net/dns.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/log.h"
#include "base/mem.h"
#include "net/dns.h"
#include "net/net_int.h"

/* Bounds on what clients can make the server hold. */
enum {
    UPSTREAM_MAX = 3,       /* as resolv.conf's MAXNS */
    FORWARD_MAX = 256,      /* forwarded queries in flight; more are REFUSED (CoreDNS's
                             * forward max_concurrent answer) */
    FORWARD_TIMEOUT_MS = 2000, /* per upstream tried; two are tried */
    TCP_CONN_MAX = 64,      /* open client connections */
    TCP_RATE = 100,         /* new connections a second, and the burst */
    TCP_IDLE_MS = 10000,    /* CoreDNS's idle timeout */
    TCP_PENDING_MAX = 16,   /* forwarded queries of one connection in flight */
    TCP_WRITE_QUEUE_MAX = 256 * 1024, /* answers a client does not read */
};

typedef struct conn conn;
typedef struct fwd fwd;

struct ty_dns {
    uv_loop_t *loop;
    ty_store *store;
    int watch[3];
    ty_dns_zone *zone;
    uv_udp_t udp;
    uv_tcp_t tcp;
    char addr[80];
    struct sockaddr_in bound;
    struct sockaddr_storage upstream[UPSTREAM_MAX];
    int nupstream;
    fwd *fwds;     /* in flight */
    int nfwd;
    conn *conns;
    int nconns;
    double tokens; /* TCP connection budget */
    uint64_t tokens_at;
    bool listening, watching;
    int refs;      /* open handles and live conns/fwds: freed at zero once closing */
    bool closing;
    uint8_t in[TY_DNS_MSG_MAX];
    uint8_t out[TY_DNS_MSG_MAX];
};

struct conn {
    ty_dns *d;
    conn *prev, *next;
    uv_tcp_t h;
    uv_timer_t idle;
    int refs; /* its two handles and its forwarded queries */
    bool closed;
    int pending;
    size_t have;
    uint8_t buf[2 + TY_DNS_MSG_MAX];
};

struct fwd {
    ty_dns *d;
    fwd *prev, *next;
    dns_query q;
    uint8_t *query; /* as received, with our id */
    size_t qlen;
    uint16_t client_id, id;
    bool tcp_client;
    struct sockaddr_storage client; /* UDP client */
    conn *c;                        /* TCP client */
    int server, tries;
    uv_udp_t sock;
    uv_timer_t timer;
    uv_tcp_t *up; /* TCP retry */
    uv_connect_t connect;
    uint8_t *resp;
    size_t have;
    int handles;
    bool done;
};

static void release(ty_dns *d)
{
    if (--d->refs == 0 && d->closing) {
        ty_dns_zone_free(d->zone);
        free(d);
    }
}

static void handle_released(uv_handle_t *h) { release(h->data); }

static uint16_t random16(void)
{
    uint16_t v = 0;
    if (getrandom(&v, sizeof v, 0) != sizeof v)
        v = (uint16_t)random();
    return v;
}

/* ---- answering ---- */

static void conn_close(conn *c);
static void forward(ty_dns *d, const uint8_t *pkt, size_t len, const struct sockaddr *udp_client,
                    conn *c);

static void written(uv_write_t *w, int status)
{
    (void)status;
    free(w);
}

static void conn_send(conn *c, const uint8_t *msg, size_t len)
{
    if (c->closed)
        return;
    if (c->h.write_queue_size > TCP_WRITE_QUEUE_MAX) {
        conn_close(c); /* a client that does not read its answers */
        return;
    }
    uv_write_t *w = ty_malloc(sizeof *w + 2 + len);
    uint8_t *b = (uint8_t *)(w + 1);
    dns_put16(b, (uint16_t)len);
    memcpy(b + 2, msg, len);
    uv_buf_t buf = uv_buf_init((char *)b, (unsigned)(2 + len));
    if (uv_write(w, (uv_stream_t *)&c->h, &buf, 1, written) < 0) {
        free(w);
        conn_close(c);
    }
}

static void udp_send(ty_dns *d, const struct sockaddr *to, const uint8_t *msg, size_t len)
{
    uv_buf_t buf = uv_buf_init((char *)msg, (unsigned)len);
    /* A full socket buffer drops the answer: the client asks again, as over any UDP loss. */
    uv_udp_try_send(&d->udp, &buf, 1, to);
}

/* One query from a UDP client (c NULL) or a TCP connection. */
static void handle_query(ty_dns *d, const uint8_t *pkt, size_t len, const struct sockaddr *from,
                         conn *c)
{
    size_t out_len = 0;
    switch (ty_dns_answer(d->zone, pkt, len, c != NULL, d->out, &out_len)) {
    case TY_DNS_DROP:
        return;
    case TY_DNS_REPLY:
        if (c)
            conn_send(c, d->out, out_len);
        else
            udp_send(d, from, d->out, out_len);
        return;
    case TY_DNS_FORWARD:
        forward(d, pkt, len, from, c);
        return;
    }
}

/* ---- forwarding ---- */

static void fwd_closed(uv_handle_t *h)
{
    fwd *f = h->data;
    if (--f->handles > 0)
        return;
    ty_dns *d = f->d;
    if (f->c && --f->c->refs == 0)
        free(f->c);
    free(f->query);
    free(f->resp);
    free(f->up);
    free(f);
    release(d);
}

/* Ends the forward: answers the client with `msg` (NULL: nothing) and closes its handles. */
static void fwd_finish(fwd *f, uint8_t *msg, size_t len)
{
    if (f->done)
        return;
    f->done = true;
    ty_dns *d = f->d;
    if (f->prev)
        f->prev->next = f->next;
    else
        d->fwds = f->next;
    if (f->next)
        f->next->prev = f->prev;
    d->nfwd--;
    if (f->c)
        f->c->pending--;
    if (msg && !d->closing) {
        dns_put16(msg, f->client_id);
        if (f->c) {
            conn_send(f->c, msg, len);
        } else {
            size_t limit = f->q.udp_size;
            if (len > limit) {
                /* Too large for the client's UDP: the question alone, with TC, so that it
                 * asks again over TCP. */
                len = dns_error_reply(&f->q, dns_get16(msg + 2) & 0xF, d->out);
                dns_put16(d->out + 2, (uint16_t)(dns_get16(d->out + 2) | DNS_F_TC));
                msg = d->out;
                dns_put16(msg, f->client_id);
            }
            udp_send(d, (struct sockaddr *)&f->client, msg, len);
        }
    }
    uv_close((uv_handle_t *)&f->sock, fwd_closed);
    uv_close((uv_handle_t *)&f->timer, fwd_closed);
    if (f->up)
        uv_close((uv_handle_t *)f->up, fwd_closed);
}

static void fwd_fail(fwd *f)
{
    size_t len = dns_error_reply(&f->q, DNS_R_SERVFAIL, f->d->out);
    fwd_finish(f, f->d->out, len);
}

static int fwd_send_udp(fwd *f);

static void fwd_timeout(uv_timer_t *t)
{
    fwd *f = t->data;
    if (f->up) { /* the TCP retry timed out */
        fwd_fail(f);
        return;
    }
    if (++f->tries >= 2 || f->d->nupstream < 2 || fwd_send_udp(f) < 0)
        fwd_fail(f);
}

static void fwd_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    fwd *f = h->data;
    if (!f->resp)
        f->resp = ty_malloc(2 + TY_DNS_MSG_MAX);
    *buf = uv_buf_init((char *)f->resp + f->have, (unsigned)(2 + TY_DNS_MSG_MAX - f->have));
}

static void up_tcp_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    (void)buf;
    fwd *f = s->data;
    if (n < 0) {
        fwd_fail(f);
        return;
    }
    f->have += (size_t)n;
    if (f->have < 2)
        return;
    size_t mlen = dns_get16(f->resp);
    if (f->have < 2 + mlen)
        return;
    if (!dns_is_response_to(&f->q, f->id, f->resp + 2, mlen)) {
        fwd_fail(f);
        return;
    }
    fwd_finish(f, f->resp + 2, mlen);
}

static void up_tcp_connected(uv_connect_t *req, int status)
{
    fwd *f = req->data;
    if (status < 0 || f->done) {
        if (!f->done)
            fwd_fail(f);
        return;
    }
    uv_write_t *w = ty_malloc(sizeof *w + 2 + f->qlen);
    uint8_t *b = (uint8_t *)(w + 1);
    dns_put16(b, (uint16_t)f->qlen);
    memcpy(b + 2, f->query, f->qlen);
    uv_buf_t buf = uv_buf_init((char *)b, (unsigned)(2 + f->qlen));
    if (uv_write(w, (uv_stream_t *)f->up, &buf, 1, written) < 0) {
        free(w);
        fwd_fail(f);
        return;
    }
    f->have = 0;
    uv_read_start((uv_stream_t *)f->up, fwd_alloc, up_tcp_read);
}

/* The UDP answer was truncated: the same question over TCP to the same server. */
static void fwd_retry_tcp(fwd *f)
{
    f->up = TY_NEW(uv_tcp_t);
    uv_tcp_init(f->d->loop, f->up);
    f->up->data = f;
    f->handles++;
    f->connect.data = f;
    if (uv_tcp_connect(&f->connect, f->up, (struct sockaddr *)&f->d->upstream[f->server],
                       up_tcp_connected) < 0) {
        fwd_fail(f);
        return;
    }
    uv_timer_start(&f->timer, fwd_timeout, FORWARD_TIMEOUT_MS, 0);
}

static bool same_address(const struct sockaddr *a, const struct sockaddr *b)
{
    if (a->sa_family != b->sa_family)
        return false;
    if (a->sa_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
    return x->sin6_port == y->sin6_port && memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0;
}

static void up_udp_read(uv_udp_t *h, ssize_t n, const uv_buf_t *buf, const struct sockaddr *from,
                        unsigned flags)
{
    (void)buf;
    (void)flags;
    fwd *f = h->data;
    if (n <= 0 || !from || f->done || f->up)
        return;
    /* Only the server asked, with our id and question, is heard (spoofing). */
    if (!same_address(from, (const struct sockaddr *)&f->d->upstream[f->server]) ||
        !dns_is_response_to(&f->q, f->id, f->resp, (size_t)n))
        return;
    if (dns_get16(f->resp + 2) & DNS_F_TC) {
        uv_udp_recv_stop(&f->sock);
        fwd_retry_tcp(f);
        return;
    }
    fwd_finish(f, f->resp, (size_t)n);
}

static int fwd_send_udp(fwd *f)
{
    f->server = (f->server + (f->tries ? 1 : 0)) % f->d->nupstream;
    uv_buf_t buf = uv_buf_init((char *)f->query, (unsigned)f->qlen);
    if (uv_udp_try_send(&f->sock, &buf, 1, (struct sockaddr *)&f->d->upstream[f->server]) < 0)
        return -1;
    uv_timer_start(&f->timer, fwd_timeout, FORWARD_TIMEOUT_MS, 0);
    return 0;
}

static void forward(ty_dns *d, const uint8_t *pkt, size_t len, const struct sockaddr *udp_client,
                    conn *c)
{
    dns_query q;
    if (!dns_parse_query(pkt, len, &q))
        return;
    if (d->nupstream == 0 || d->nfwd >= FORWARD_MAX || (c && c->pending >= TCP_PENDING_MAX)) {
        size_t n = dns_error_reply(&q, d->nupstream == 0 ? DNS_R_SERVFAIL : DNS_R_REFUSED,
                                   d->out);
        if (c)
            conn_send(c, d->out, n);
        else
            udp_send(d, udp_client, d->out, n);
        return;
    }
    fwd *f = TY_NEW(fwd);
    f->d = d;
    f->q = q;
    f->query = ty_malloc(len);
    memcpy(f->query, pkt, len);
    f->qlen = len;
    f->client_id = q.id;
    f->id = random16();
    dns_put16(f->query, f->id);
    f->c = c;
    if (c) {
        c->refs++;
        c->pending++;
    } else {
        memcpy(&f->client, udp_client,
               udp_client->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                 : sizeof(struct sockaddr_in));
    }
    d->refs++;
    d->nfwd++;
    f->next = d->fwds;
    if (d->fwds)
        d->fwds->prev = f;
    d->fwds = f;
    f->server = (int)(random16() % (unsigned)d->nupstream);
    uv_udp_init(d->loop, &f->sock);
    uv_timer_init(d->loop, &f->timer);
    f->sock.data = f->timer.data = f;
    f->handles = 2;
    /* A fresh socket per query: the kernel picks a random source port. */
    struct sockaddr_storage any = {0};
    any.ss_family = d->upstream[f->server].ss_family;
    f->resp = ty_malloc(2 + TY_DNS_MSG_MAX);
    if (uv_udp_bind(&f->sock, (struct sockaddr *)&any, 0) < 0 ||
        uv_udp_recv_start(&f->sock, fwd_alloc, up_udp_read) < 0 || fwd_send_udp(f) < 0)
        fwd_fail(f);
}

/* ---- UDP ---- */

static void udp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    ty_dns *d = h->data;
    *buf = uv_buf_init((char *)d->in, sizeof d->in);
}

static void udp_read(uv_udp_t *h, ssize_t n, const uv_buf_t *buf, const struct sockaddr *from,
                     unsigned flags)
{
    ty_dns *d = h->data;
    if (n <= 0 || !from || (flags & UV_UDP_PARTIAL))
        return;
    handle_query(d, (const uint8_t *)buf->base, (size_t)n, from, NULL);
}

/* ---- TCP ---- */

static void conn_handle_closed(uv_handle_t *h)
{
    conn *c = h->data;
    ty_dns *d = c->d;
    if (--c->refs == 0)
        free(c);
    release(d);
}

static void conn_close(conn *c)
{
    if (c->closed)
        return;
    c->closed = true;
    ty_dns *d = c->d;
    if (c->prev)
        c->prev->next = c->next;
    else
        d->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    d->nconns--;
    uv_close((uv_handle_t *)&c->h, conn_handle_closed);
    uv_close((uv_handle_t *)&c->idle, conn_handle_closed);
}

static void conn_idle(uv_timer_t *t) { conn_close(t->data); }

static void conn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    conn *c = h->data;
    *buf = uv_buf_init((char *)c->buf + c->have, (unsigned)(sizeof c->buf - c->have));
}

static void conn_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    (void)buf;
    conn *c = s->data;
    if (n < 0) {
        conn_close(c);
        return;
    }
    c->have += (size_t)n;
    uv_timer_again(&c->idle);
    /* Every whole message in the buffer; the two-byte length bounds each. */
    while (!c->closed && c->have >= 2) {
        size_t mlen = dns_get16(c->buf);
        if (mlen < DNS_HDR) {
            conn_close(c);
            return;
        }
        if (c->have < 2 + mlen)
            break;
        c->refs++; /* handle_query may close it */
        handle_query(c->d, c->buf + 2, mlen, NULL, c);
        bool gone = --c->refs == 0;
        if (gone) {
            free(c);
            return;
        }
        memmove(c->buf, c->buf + 2 + mlen, c->have - 2 - mlen);
        c->have -= 2 + mlen;
    }
}

static void on_connection(uv_stream_t *server, int status)
{
    ty_dns *d = server->data;
    if (status < 0)
        return;
    conn *c = TY_NEW(conn);
    c->d = d;
    uv_tcp_init(d->loop, &c->h);
    uv_timer_init(d->loop, &c->idle);
    c->h.data = c->idle.data = c;
    c->refs = 2;
    d->refs += 2;
    c->next = d->conns;
    if (d->conns)
        d->conns->prev = c;
    d->conns = c;
    d->nconns++;
    if (uv_accept(server, (uv_stream_t *)&c->h) < 0) {
        conn_close(c);
        return;
    }
    /* Token bucket: TCP_RATE a second, TCP_RATE at once; over it, or over TCP_CONN_MAX open,
     * the connection is closed as soon as accepted. */
    uint64_t now = uv_now(d->loop);
    d->tokens += (double)(now - d->tokens_at) * TCP_RATE / 1000.0;
    if (d->tokens > TCP_RATE)
        d->tokens = TCP_RATE;
    d->tokens_at = now;
    if (d->tokens < 1 || d->nconns > TCP_CONN_MAX) {
        conn_close(c);
        return;
    }
    d->tokens -= 1;
    uv_timer_start(&c->idle, conn_idle, TCP_IDLE_MS, TCP_IDLE_MS);
    if (uv_read_start((uv_stream_t *)&c->h, conn_alloc, conn_read) < 0)
        conn_close(c);
}

/* ---- setup ---- */

static void on_store_event(void *ctx, ty_event_type type, const char *resource,
                           const json_t *obj)
{
    ty_dns *d = ctx;
    ty_dns_zone_update(d->zone, resource, obj, type == TY_EVENT_DELETED);
}

/* "ADDR", "ADDR:PORT" (IPv4) or "[ADDR]:PORT" (IPv6), default port 53. */
static int parse_upstream(const char *text, struct sockaddr_storage *out)
{
    char host[64];
    int port = 53;
    const char *colon = strrchr(text, ':');
    if (text[0] == '[') {
        const char *end = strchr(text, ']');
        if (!end || (size_t)(end - text - 1) >= sizeof host)
            return -1;
        memcpy(host, text + 1, (size_t)(end - text - 1));
        host[end - text - 1] = '\0';
        if (end[1] == ':')
            port = atoi(end + 2);
        else if (end[1])
            return -1;
    } else if (colon && strchr(text, ':') == colon) {
        if ((size_t)(colon - text) >= sizeof host)
            return -1;
        memcpy(host, text, (size_t)(colon - text));
        host[colon - text] = '\0';
        port = atoi(colon + 1);
    } else {
        if (strlen(text) >= sizeof host)
            return -1;
        strcpy(host, text);
    }
    if (port <= 0 || port > 65535)
        return -1;
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)out) == 0)
        return 0;
    return uv_ip6_addr(host, port, (struct sockaddr_in6 *)out) == 0 ? 0 : -1;
}

/* The upstream list (net/dns.h), leaving out our own address (a loop). */
static void load_upstreams(ty_dns *d, const char *list)
{
    TY_AUTOFREE char *text = NULL;
    if (!list) {
        FILE *f = fopen("/etc/resolv.conf", "re");
        char line[512];
        text = ty_strdup("");
        while (f && fgets(line, sizeof line, f)) {
            char ns[128];
            if (sscanf(line, " nameserver %127s", ns) == 1) {
                char *next = ty_asprintf("%s%s%s", text, *text ? "," : "", ns);
                free(text);
                text = next;
            }
        }
        if (f)
            fclose(f);
        list = text;
    }
    TY_AUTOFREE char *copy = ty_strdup(list);
    char *save = NULL;
    for (char *tok = strtok_r(copy, ", ", &save); tok && d->nupstream < UPSTREAM_MAX;
         tok = strtok_r(NULL, ", ", &save)) {
        struct sockaddr_storage a = {0};
        if (parse_upstream(tok, &a) < 0) {
            ty_warn("cluster dns: upstream %s: not an address, ignored", tok);
            continue;
        }
        if (a.ss_family == AF_INET &&
            memcmp(&((struct sockaddr_in *)&a)->sin_addr, &d->bound.sin_addr, 4) == 0 &&
            ((struct sockaddr_in *)&a)->sin_port == d->bound.sin_port)
            continue;
        d->upstream[d->nupstream++] = a;
    }
}

/* Binds one socket of `type` to `a` (close-on-exec); -errno on failure. */
static int bind_socket(int type, const struct sockaddr_in *a)
{
    int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0)
        return -errno;
    if (type == SOCK_STREAM)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (const struct sockaddr *)a, sizeof *a) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

/* The UDP and TCP sockets on one address; with port 0 the port the kernel picks for TCP must
 * be free for UDP too, which a few tries find. */
static int bind_both(ty_dns *d, const struct sockaddr_in *want, ty_error *err)
{
    for (int attempt = 0; attempt < 16; attempt++) {
        struct sockaddr_in a = *want;
        int tfd = bind_socket(SOCK_STREAM, &a);
        if (tfd < 0)
            return ty_fail_errno(err, -tfd, "bind tcp %s", d->addr);
        socklen_t len = sizeof a;
        getsockname(tfd, (struct sockaddr *)&a, &len);
        int ufd = bind_socket(SOCK_DGRAM, &a);
        if (ufd < 0) {
            close(tfd);
            if (want->sin_port == 0 && ufd == -EADDRINUSE)
                continue;
            return ty_fail_errno(err, -ufd, "bind udp %s", d->addr);
        }
        uv_tcp_init(d->loop, &d->tcp);
        uv_udp_init(d->loop, &d->udp);
        d->tcp.data = d->udp.data = d;
        d->refs += 2;
        d->listening = true;
        int rc = uv_tcp_open(&d->tcp, tfd);
        if (rc == 0)
            rc = uv_listen((uv_stream_t *)&d->tcp, 128, on_connection);
        else
            close(tfd);
        int urc = uv_udp_open(&d->udp, ufd);
        if (urc < 0)
            close(ufd);
        if (rc < 0 || urc < 0)
            return ty_fail(err, "listen on %s: %s", d->addr, uv_strerror(rc < 0 ? rc : urc));
        d->bound = a;
        return 0;
    }
    return ty_fail(err, "bind %s: no port free for both udp and tcp", d->addr);
}

int ty_dns_start(const ty_dns_config *cfg, ty_dns **out, ty_error *err)
{
    const char *domain = cfg->domain ? cfg->domain : "cluster.local";
    ty_dns_zone *zone = ty_dns_zone_new(domain);
    if (!zone)
        return ty_fail(err, "cluster domain %s: not a valid DNS name", domain);
    const char *colon = strrchr(cfg->listen, ':');
    char host[64];
    struct sockaddr_in want;
    int port = colon ? atoi(colon + 1) : -1;
    if (!colon || (size_t)(colon - cfg->listen) >= sizeof host || port < 0 || port > 65535 ||
        strspn(colon + 1, "0123456789") != strlen(colon + 1) || !colon[1]) {
        ty_dns_zone_free(zone);
        return ty_fail(err, "cluster dns address %s: not ADDR:PORT", cfg->listen);
    }
    memcpy(host, cfg->listen, (size_t)(colon - cfg->listen));
    host[colon - cfg->listen] = '\0';
    if (uv_ip4_addr(host, port, &want) < 0) {
        ty_dns_zone_free(zone);
        return ty_fail(err, "cluster dns address %s: not an IPv4 address", cfg->listen);
    }
    ty_dns *d = TY_NEW(ty_dns);
    d->loop = cfg->loop;
    d->store = cfg->store;
    d->zone = zone;
    d->refs = 1; /* ours, until ty_dns_free */
    snprintf(d->addr, sizeof d->addr, "%s", cfg->listen);
    if (bind_both(d, &want, err) < 0) {
        ty_dns_free(d); /* closes what was opened */
        return ty_error_wrap(err, "start cluster dns");
    }
    snprintf(d->addr, sizeof d->addr, "%s:%d", host, ntohs(d->bound.sin_port));
    const char *env = getenv("TRAINYARD_DNS_UPSTREAM");
    load_upstreams(d, env && *env ? env : cfg->upstream);
    d->tokens = TCP_RATE;
    d->tokens_at = uv_now(d->loop);
    static const char *const kinds[] = {"namespaces", "services", "pods"};
    for (size_t k = 0; k < 3; k++) {
        json_t *all = ty_store_list(d->store, kinds[k], NULL);
        size_t i;
        json_t *obj;
        json_array_foreach(all, i, obj) ty_dns_zone_update(d->zone, kinds[k], obj, false);
        json_decref(all);
        ty_store_watch(d->store,
                       &(ty_store_watch_opts){.resource = kinds[k], .fn = on_store_event, .ctx = d},
                       &d->watch[k], NULL);
    }
    d->watching = true;
    uv_udp_recv_start(&d->udp, udp_alloc, udp_read);
    ty_info("cluster dns: %s on %s (udp, tcp), %d upstream resolver(s)", domain, d->addr,
            d->nupstream);
    *out = d;
    return 0;
}

const char *ty_dns_address(const ty_dns *d) { return d->addr; }

void ty_dns_free(ty_dns *d)
{
    if (!d || d->closing)
        return;
    d->closing = true;
    for (size_t k = 0; k < 3 && d->watching; k++)
        ty_store_unwatch(d->store, d->watch[k]);
    while (d->fwds)
        fwd_finish(d->fwds, NULL, 0);
    while (d->conns)
        conn_close(d->conns);
    if (d->listening) {
        uv_close((uv_handle_t *)&d->udp, handle_released);
        uv_close((uv_handle_t *)&d->tcp, handle_released);
    }
    release(d);
}
