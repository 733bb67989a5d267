/* The serving gateway (gateway.h): HTTP/1.1 in, HTTP/1.1 with keep-alive out, on the loop.
 *
 * A client connection carries one request at a time (no pipelining: reading stops while one is
 * in flight). A request is read whole (Content-Length bodies; chunked request bodies are
 * refused 411, as a length is what the replicas' servers want), routed, then either sent to a
 * replica at once or held in its route's queue. The replica's answer is read whole (by
 * Content-Length, chunked, or to the end of the connection) and given to the client with its
 * length, so the client's keep-alive never depends on the replica's. */
#include "serving/gateway.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/map.h"
#include "base/mem.h"

#define MAX_HEAD (64 * 1024)
#define MAX_BODY (64 * 1024 * 1024)

typedef struct request request;
typedef struct upstream upstream;

/* A replica's address, with its idle keep-alive connections and requests in flight. Kept
 * for the gateway's life (a pod address comes back often; a few bytes each). */
typedef struct backend {
    char ip[64];
    int port;
    int64_t inflight;
    upstream *idle; /* idle connections, a list */
    bool probing;   /* a connect of the gateway's own in flight */
    bool accepted;  /* a starting replica that accepted the gateway's connect */
} backend;

/* The latency histogram's upper bounds, seconds (Prometheus' `le`), then +Inf. */
static const double latency_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                        0.1,    0.25,  0.5,    1,     2.5,   5,     10};
#define NBOUNDS (sizeof latency_bounds / sizeof latency_bounds[0])

/* Counters of a revision, kept across route updates. */
typedef struct rev_stats {
    int64_t inflight, waiting;
    uint64_t served;
    uint64_t buckets[NBOUNDS + 1]; /* answers by latency (client in to answer out) */
    double latency_sum;            /* seconds */
} rev_stats;

typedef struct route_rev {
    char *name;
    int percent;
    rev_stats *stats;
    backend **replicas;
    size_t nreplicas;
    backend **starting;
    size_t nstarting;
} route_rev;

typedef struct route {
    char *ns, *name;
    int64_t cc, timeout_s;
    route_rev *revs;
    size_t nrevs;
    uint64_t counter; /* the traffic split's position: deterministic shares */
    request *wait_head, *wait_tail;
    size_t nwaiting;
    uv_timer_t *probe_timer; /* while requests wait and replicas start */
    bool releasing, release_again; /* release_waiting running; asked again meanwhile */
} route;

struct ty_gateway {
    uv_loop_t *loop;
    uv_tcp_t *listener; /* its own allocation: it outlives the gateway until closed */
    bool listening;
    int port;
    char *domain;
    size_t max_queue;
    int64_t hold_ms;
    ty_gateway_wake_fn wake;
    void *ctx;
    ty_map routes;   /* "ns/name" -> route */
    ty_map backends; /* "ip:port" -> backend */
    ty_map stats;    /* "ns/name/rev" -> rev_stats */
    struct client *clients; /* open client connections, a list (closed on free) */
    struct probe *probes;   /* connects in flight (closed on free) */
};

/* The gateway's own connect to a starting replica. */
typedef struct probe {
    uv_tcp_t tcp;
    uv_connect_t connect;
    ty_gateway *g;
    backend *be;
    struct probe *next;
    bool orphan; /* the gateway is going */
} probe;

typedef struct client {
    uv_tcp_t tcp;
    ty_gateway *g;
    ty_buf in;
    request *req; /* the one in flight */
    bool closing;
    struct client *prev, *next;
} client;

struct upstream {
    uv_tcp_t tcp;
    uv_connect_t connect;
    backend *be;
    request *req;
    ty_buf in;
    upstream *next_idle;
    bool closing, reused;
};

struct request {
    ty_gateway *g;
    client *cl;
    char *route_key, *rev_name;
    ty_buf out; /* what goes to the replica */
    bool keep_alive;
    route_rev *rr_cached; /* valid only while routing */
    rev_stats *stats;
    backend *be;
    upstream *up;
    uv_timer_t timer;
    bool timer_on;
    request *wait_next;
    bool waiting;
    bool retried;
    uint64_t start_ns; /* when the whole request was read */
};

/* ---- small HTTP helpers ---- */

/* The value of header `name` in a head (lines after the first), or NULL; *len its length. */
static const char *header(const char *head, size_t hlen, const char *name, size_t *len)
{
    size_t nl = strlen(name);
    const char *p = memchr(head, '\n', hlen);
    const char *end = head + hlen;
    while (p && p + 1 < end) {
        const char *line = p + 1;
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        if (!eol)
            eol = end;
        if ((size_t)(eol - line) > nl && line[nl] == ':' && strncasecmp(line, name, nl) == 0) {
            const char *v = line + nl + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            const char *ve = eol;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' '))
                ve--;
            *len = (size_t)(ve - v);
            return v;
        }
        p = eol;
    }
    return NULL;
}

static bool header_has(const char *head, size_t hlen, const char *name, const char *token)
{
    size_t len;
    const char *v = header(head, hlen, name, &len);
    if (!v)
        return false;
    TY_AUTOFREE char *s = ty_strndup(v, len);
    return strcasestr(s, token) != NULL;
}

static const char *reason_of(int code)
{
    switch (code) {
    case 404: return "Not Found";
    case 411: return "Length Required";
    case 413: return "Payload Too Large";
    case 400: return "Bad Request";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Error";
    }
}

/* ---- clients ---- */

static void client_read_start(client *cl);
static void client_close(client *cl);
static void dispatch(request *r);

typedef struct write_req {
    uv_write_t w;
    char *data;
    client *cl;
} write_req;

static void on_client_write(uv_write_t *w, int status)
{
    write_req *wr = (write_req *)w;
    client *cl = wr->cl;
    free(wr->data);
    free(wr);
    if (status < 0)
        client_close(cl);
}

/* Sends `data` (taken) to the client. */
static void client_send(client *cl, char *data, size_t len)
{
    write_req *wr = TY_NEW(write_req);
    wr->data = data;
    wr->cl = cl;
    uv_buf_t b = uv_buf_init(data, (unsigned)len);
    if (cl->closing || uv_write(&wr->w, (uv_stream_t *)&cl->tcp, &b, 1, on_client_write) < 0) {
        free(data);
        free(wr);
        client_close(cl);
    }
}

static void request_free(request *r);

/* The answer to the client; ends the request. */
static void respond(request *r, const char *resp, size_t len, bool owned)
{
    client *cl = r->cl;
    if (cl) {
        cl->req = NULL;
        char *copy = owned ? (char *)resp : ty_strndup(resp, len);
        client_send(cl, copy, len);
        if (!r->keep_alive)
            client_close(cl);
        else if (!cl->closing) {
            client_read_start(cl);
        }
    } else if (owned) {
        free((char *)resp);
    }
    request_free(r);
}

static void respond_error(request *r, int code, const char *msg)
{
    TY_AUTOBUF ty_buf b = TY_BUF_INIT;
    ty_buf_addf(&b, "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n%s\r\n%s\n",
                code, reason_of(code), strlen(msg) + 1,
                r->keep_alive ? "" : "Connection: close\r\n", msg);
    size_t len = b.len;
    respond(r, ty_buf_steal(&b), len, true);
}

static void on_client_closed(uv_handle_t *h)
{
    client *cl = h->data;
    ty_buf_free(&cl->in);
    free(cl);
}

static void client_close(client *cl)
{
    if (cl->closing)
        return;
    cl->closing = true;
    if (cl->req)
        cl->req->cl = NULL; /* the answer, when it comes, goes nowhere */
    cl->req = NULL;
    ty_gateway *g = cl->g;
    if (cl->prev)
        cl->prev->next = cl->next;
    else
        g->clients = cl->next;
    if (cl->next)
        cl->next->prev = cl->prev;
    uv_close((uv_handle_t *)&cl->tcp, on_client_closed);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    buf->base = ty_malloc(suggested);
    buf->len = suggested;
}

/* The route of a request: by Host `{name}.{ns}.{domain}`, else by the model in the path
 * (the default namespace). */
static char *route_key_of(ty_gateway *g, const char *path, const char *host, size_t hlen)
{
    if (host) {
        const char *colon = memchr(host, ':', hlen);
        size_t n = colon ? (size_t)(colon - host) : hlen;
        size_t dl = strlen(g->domain);
        if (n > dl + 1 && host[n - dl - 1] == '.' && strncasecmp(host + n - dl, g->domain, dl) == 0) {
            const char *dot = memchr(host, '.', n - dl - 1);
            if (dot && dot < host + n - dl - 1) {
                TY_AUTOFREE char *name = ty_strndup(host, (size_t)(dot - host));
                TY_AUTOFREE char *ns = ty_strndup(dot + 1, (size_t)(host + n - dl - 1 - dot - 1));
                if (!strchr(ns, '.'))
                    return ty_asprintf("%s/%s", ns, name);
            }
        }
    }
    /* /v1/models/{name}[:verb], /v2/models/{name}[/...] */
    const char *p = NULL;
    if (strncmp(path, "/v1/models/", 11) == 0 || strncmp(path, "/v2/models/", 11) == 0)
        p = path + 11;
    if (!p || !*p)
        return NULL;
    size_t n = strcspn(p, ":/?");
    TY_AUTOFREE char *name = ty_strndup(p, n);
    return ty_asprintf("default/%s", name);
}

/* One whole request in cl->in: its head and body, or 0 while more is needed, -1 on an error
 * answered. */
static int parse_request(client *cl)
{
    ty_gateway *g = cl->g;
    char *end = memmem(cl->in.data, cl->in.len, "\r\n\r\n", 4);
    if (!end) {
        if (cl->in.len > MAX_HEAD)
            return -1;
        return 0;
    }
    size_t hlen = (size_t)(end - cl->in.data) + 2; /* through the last header's CRLF */
    const char *head = cl->in.data;
    size_t clen_len;
    const char *clen = header(head, hlen, "Content-Length", &clen_len);
    size_t body = clen ? (size_t)strtoull(clen, NULL, 10) : 0;
    request *r = TY_NEW(request);
    r->g = g;
    r->cl = cl;
    r->start_ns = uv_hrtime();
    /* The request line */
    const char *sp1 = memchr(head, ' ', hlen);
    const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', hlen - (size_t)(sp1 + 1 - head)) : NULL;
    const char *eol = memchr(head, '\r', hlen);
    if (!sp1 || !sp2 || !eol || sp2 > eol) {
        r->keep_alive = false;
        cl->req = r;
        respond_error(r, 400, "malformed request line");
        return -1;
    }
    bool http11 = strncmp(sp2 + 1, "HTTP/1.1", 8) == 0;
    r->keep_alive = http11 ? !header_has(head, hlen, "Connection", "close")
                           : header_has(head, hlen, "Connection", "keep-alive");
    cl->req = r;
    if (header_has(head, hlen, "Transfer-Encoding", "chunked")) {
        r->keep_alive = false;
        respond_error(r, 411, "a request body needs a Content-Length");
        return -1;
    }
    if (body > MAX_BODY) {
        r->keep_alive = false;
        respond_error(r, 413, "request body too large");
        return -1;
    }
    size_t total = hlen + 2 + body;
    if (cl->in.len < total) {
        cl->req = NULL;
        free(r);
        return 0;
    }
    TY_AUTOFREE char *path = ty_strndup(sp1 + 1, (size_t)(sp2 - sp1 - 1));
    size_t host_len = 0;
    const char *host = header(head, hlen, "Host", &host_len);
    r->route_key = route_key_of(g, path, host, host_len);
    /* To the replica: the head without hop-by-hop headers, keep-alive, then the body. */
    ty_buf_add(&r->out, head, (size_t)(eol - head) + 2);
    const char *line = eol + 2;
    while (line < head + hlen) {
        const char *le = memchr(line, '\n', (size_t)(head + hlen - line));
        le = le ? le + 1 : head + hlen;
        if (strncasecmp(line, "Connection:", 11) != 0 && strncasecmp(line, "Keep-Alive:", 11) != 0 &&
            strncasecmp(line, "Proxy-Connection:", 17) != 0)
            ty_buf_add(&r->out, line, (size_t)(le - line));
        line = le;
    }
    ty_buf_adds(&r->out, "Connection: keep-alive\r\n\r\n");
    ty_buf_add(&r->out, head + hlen + 2, body);
    /* What follows (a pipelined request) waits in the buffer. */
    memmove(cl->in.data, cl->in.data + total, cl->in.len - total);
    cl->in.len -= total;
    cl->in.data[cl->in.len] = 0;
    uv_read_stop((uv_stream_t *)&cl->tcp);
    if (!r->route_key) {
        respond_error(r, 404, "no InferenceService for this host or path");
        return 1;
    }
    dispatch(r);
    return 1;
}

static void on_client_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    client *cl = s->data;
    if (n > 0)
        ty_buf_add(&cl->in, buf->base, (size_t)n);
    free(buf->base);
    if (n < 0) {
        client_close(cl);
        return;
    }
    if (!cl->req && parse_request(cl) < 0 && !cl->closing && !cl->req)
        client_close(cl);
}

static void client_read_start(client *cl)
{
    if (cl->closing)
        return;
    if (cl->in.len && parse_request(cl) != 0)
        return;
    uv_read_start((uv_stream_t *)&cl->tcp, alloc_cb, on_client_read);
}

static void on_connection(uv_stream_t *server, int status)
{
    ty_gateway *g = server->data;
    if (status < 0)
        return;
    client *cl = TY_NEW(client);
    cl->g = g;
    uv_tcp_init(g->loop, &cl->tcp);
    cl->tcp.data = cl;
    if (uv_accept(server, (uv_stream_t *)&cl->tcp) < 0) {
        cl->closing = true;
        uv_close((uv_handle_t *)&cl->tcp, on_client_closed);
        return;
    }
    uv_tcp_nodelay(&cl->tcp, 1);
    cl->next = g->clients;
    if (g->clients)
        g->clients->prev = cl;
    g->clients = cl;
    uv_read_start((uv_stream_t *)&cl->tcp, alloc_cb, on_client_read);
}

/* ---- routing ---- */

static void on_timer_closed(uv_handle_t *h)
{
    free(h->data);
}

static void release_waiting(route *rt);

static void request_free(request *r)
{
    route *freed_at = NULL;
    if (r->stats && r->be) {
        r->stats->inflight--;
        r->be->inflight--;
        /* A replica has room again: a request waiting for it (containerConcurrency) goes. */
        freed_at = r->route_key ? ty_map_gets(&r->g->routes, r->route_key) : NULL;
    }
    free(r->route_key);
    free(r->rev_name);
    ty_buf_free(&r->out);
    if (r->timer_on) {
        uv_timer_stop(&r->timer);
        r->timer.data = r;
        uv_close((uv_handle_t *)&r->timer, on_timer_closed);
    } else {
        free(r);
    }
    if (freed_at && freed_at->wait_head)
        release_waiting(freed_at);
}

static void unwait(route *rt, request *r)
{
    request **pp = &rt->wait_head, *prev = NULL;
    while (*pp && *pp != r) {
        prev = *pp;
        pp = &(*pp)->wait_next;
    }
    if (!*pp)
        return;
    *pp = r->wait_next;
    if (rt->wait_tail == r)
        rt->wait_tail = prev;
    rt->nwaiting--;
    r->waiting = false;
    r->wait_next = NULL;
    if (r->stats)
        r->stats->waiting--;
}

static rev_stats *stats_of(ty_gateway *g, const char *route_key, const char *rev)
{
    TY_AUTOFREE char *k = ty_asprintf("%s/%s", route_key, rev);
    rev_stats *st = ty_map_gets(&g->stats, k);
    if (!st) {
        st = TY_NEW(rev_stats);
        ty_map_puts(&g->stats, k, st);
    }
    return st;
}

static void on_request_timeout(uv_timer_t *t)
{
    request *r = t->data;
    ty_gateway *g = r->g;
    if (r->waiting) {
        route *rt = ty_map_gets(&g->routes, r->route_key);
        if (rt)
            unwait(rt, r);
        respond_error(r, 503, "no replica became ready in time");
        return;
    }
    /* At a replica past the route's timeout: that connection is not reused. */
    if (r->up) {
        upstream *u = r->up;
        u->req = NULL;
        r->up = NULL;
        u->closing = true;
        uv_close((uv_handle_t *)&u->tcp, NULL);
    }
    respond_error(r, 504, "the replica did not answer within the timeout");
}

static void arm_timer(request *r, int64_t ms)
{
    if (!r->timer_on) {
        uv_timer_init(r->g->loop, &r->timer);
        r->timer.data = r;
        r->timer_on = true;
    }
    uv_timer_start(&r->timer, on_request_timeout, (uint64_t)(ms > 0 ? ms : 1), 0);
}

static void send_upstream(request *r);
static void probe_schedule(ty_gateway *g, route *rt);
static void release_pass(route *rt);

/* The replica of `rr` with the fewest requests in flight that can take one more; NULL when
 * none. */
static backend *pick_replica(const route *rt, const route_rev *rr)
{
    backend *best = NULL;
    for (size_t i = 0; i < rr->nreplicas; i++) {
        backend *b = rr->replicas[i];
        if (rt->cc > 0 && b->inflight >= rt->cc)
            continue;
        if (!best || b->inflight < best->inflight)
            best = b;
    }
    return best;
}

static route_rev *rev_named(route *rt, const char *name)
{
    for (size_t i = 0; i < rt->nrevs; i++)
        if (strcmp(rt->revs[i].name, name) == 0)
            return &rt->revs[i];
    return NULL;
}

/* Chooses the request's revision (once) by the split, then a replica, else waits. */
static void dispatch(request *r)
{
    ty_gateway *g = r->g;
    route *rt = ty_map_gets(&g->routes, r->route_key);
    if (!rt || rt->nrevs == 0) {
        respond_error(r, 404, "no InferenceService for this host or path");
        return;
    }
    route_rev *rr = r->rev_name ? rev_named(rt, r->rev_name) : NULL;
    if (!rr) {
        /* The split as shares of 100 consecutive requests: exact, and the same each time. */
        int k = (int)(rt->counter++ % 100), acc = 0;
        rr = &rt->revs[rt->nrevs - 1];
        for (size_t i = 0; i < rt->nrevs; i++) {
            acc += rt->revs[i].percent;
            if (k < acc) {
                rr = &rt->revs[i];
                break;
            }
        }
        free(r->rev_name);
        r->rev_name = ty_strdup(rr->name);
    }
    backend *be = pick_replica(rt, rr);
    if (!be) {
        if (rt->nwaiting >= g->max_queue) {
            respond_error(r, 503, "too many requests waiting for a replica");
            return;
        }
        r->waiting = true;
        r->stats = stats_of(g, r->route_key, rr->name);
        r->stats->waiting++;
        if (rt->wait_tail)
            rt->wait_tail->wait_next = r;
        else
            rt->wait_head = r;
        rt->wait_tail = r;
        rt->nwaiting++;
        arm_timer(r, g->hold_ms);
        probe_schedule(g, rt);
        if (g->wake)
            g->wake(g->ctx, rt->ns, rt->name);
        return;
    }
    r->be = be;
    r->stats = rr->stats;
    be->inflight++;
    rr->stats->inflight++;
    arm_timer(r, rt->timeout_s > 0 ? rt->timeout_s * 1000 : 60000);
    send_upstream(r);
}

/* Waiting requests that a replica can take now go to it, oldest first. */
static void release_waiting(route *rt)
{
    /* Re-entered from a request that ends while this runs (an error answer): the running
     * pass goes round once more instead. */
    if (rt->releasing) {
        rt->release_again = true;
        return;
    }
    rt->releasing = true;
    do {
        rt->release_again = false;
        release_pass(rt);
    } while (rt->release_again);
    rt->releasing = false;
}

static void release_pass(route *rt)
{
    request *r = rt->wait_head;
    while (r) {
        request *next = r->wait_next;
        route_rev *rr = rev_named(rt, r->rev_name);
        if (!rr) {
            /* Its revision left the route: choose again. */
            free(r->rev_name);
            r->rev_name = NULL;
        }
        if (!rr || pick_replica(rt, rr)) {
            unwait(rt, r);
            r->stats = NULL;
            dispatch(r);
        }
        r = next;
    }
}

/* ---- replicas ---- */

static void on_upstream_closed(uv_handle_t *h)
{
    upstream *u = h->data;
    ty_buf_free(&u->in);
    free(u);
}

static void upstream_close(upstream *u)
{
    if (u->closing)
        return;
    u->closing = true;
    uv_close((uv_handle_t *)&u->tcp, on_upstream_closed);
}

/* Is the answer in u->in whole? Sets *body_off and *body_len (decoded into `body` when
 * chunked), *keep whether the connection can be reused. 1 whole, 0 not yet, -1 malformed. */
static int response_complete(upstream *u, bool eof, size_t *hlen_out, ty_buf *body, bool *keep)
{
    char *end = memmem(u->in.data, u->in.len, "\r\n\r\n", 4);
    if (!end)
        return eof ? -1 : 0;
    size_t hlen = (size_t)(end - u->in.data) + 2;
    const char *head = u->in.data;
    *hlen_out = hlen;
    bool http11 = strncmp(head, "HTTP/1.1", 8) == 0;
    *keep = http11 ? !header_has(head, hlen, "Connection", "close")
                   : header_has(head, hlen, "Connection", "keep-alive");
    const char *p = head + hlen + 2;
    size_t avail = u->in.len - hlen - 2;
    int code = atoi(head + 9);
    size_t len;
    const char *cl = header(head, hlen, "Content-Length", &len);
    if (header_has(head, hlen, "Transfer-Encoding", "chunked")) {
        ty_buf_reset(body);
        size_t off = 0;
        for (;;) {
            const char *nl = memmem(p + off, avail - off, "\r\n", 2);
            if (!nl)
                return eof ? -1 : 0;
            size_t sz = strtoul(p + off, NULL, 16);
            size_t data = (size_t)(nl - p) + 2;
            if (sz == 0) {
                const char *fin = memmem(p + data, avail - data, "\r\n", 2);
                if (!fin)
                    return eof ? -1 : 0;
                return 1;
            }
            if (data + sz + 2 > avail)
                return eof ? -1 : 0;
            ty_buf_add(body, p + data, sz);
            off = data + sz + 2;
        }
    }
    if (cl) {
        size_t want = strtoull(cl, NULL, 10);
        if (avail < want)
            return eof ? -1 : 0;
        ty_buf_reset(body);
        ty_buf_add(body, p, want);
        return 1;
    }
    if (code == 204 || code == 304 || (code >= 100 && code < 200)) {
        ty_buf_reset(body);
        return 1;
    }
    /* To the end of the connection. */
    *keep = false;
    if (!eof)
        return 0;
    ty_buf_reset(body);
    ty_buf_add(body, p, avail);
    return 1;
}

static void upstream_done(upstream *u, bool eof)
{
    request *r = u->req;
    size_t hlen = 0;
    TY_AUTOBUF ty_buf body = TY_BUF_INIT;
    bool keep = false;
    int c = response_complete(u, eof, &hlen, &body, &keep);
    if (c == 0)
        return;
    u->req = NULL;
    if (r)
        r->up = NULL;
    if (c < 0) {
        bool stale = u->reused && u->in.len == 0;
        upstream_close(u);
        if (r && stale && !r->retried) {
            /* A kept-alive connection the replica had closed: once more on a new one. */
            r->retried = true;
            send_upstream(r);
        } else if (r) {
            respond_error(r, 502, "the replica closed the connection without an answer");
        }
        return;
    }
    if (r) {
        TY_AUTOBUF ty_buf out = TY_BUF_INIT;
        const char *head = u->in.data;
        const char *eol = memchr(head, '\n', hlen);
        ty_buf_add(&out, head, (size_t)(eol - head) + 1);
        const char *line = eol + 1;
        while (line < head + hlen) {
            const char *le = memchr(line, '\n', (size_t)(head + hlen - line));
            le = le ? le + 1 : head + hlen;
            if (strncasecmp(line, "Connection:", 11) != 0 && strncasecmp(line, "Keep-Alive:", 11) != 0 &&
                strncasecmp(line, "Content-Length:", 15) != 0 &&
                strncasecmp(line, "Transfer-Encoding:", 18) != 0)
                ty_buf_add(&out, line, (size_t)(le - line));
            line = le;
        }
        ty_buf_addf(&out, "Content-Length: %zu\r\n%s\r\n", body.len,
                    r->keep_alive ? "" : "Connection: close\r\n");
        ty_buf_add(&out, body.data, body.len);
        r->stats->served++;
        double secs = (double)(uv_hrtime() - r->start_ns) / 1e9;
        size_t b = 0;
        while (b < NBOUNDS && secs > latency_bounds[b])
            b++;
        r->stats->buckets[b]++;
        r->stats->latency_sum += secs;
        size_t len = out.len;
        respond(r, ty_buf_steal(&out), len, true);
    }
    if (keep && !eof && !u->closing) {
        ty_buf_reset(&u->in);
        u->reused = true;
        u->next_idle = u->be->idle;
        u->be->idle = u;
        /* An idle connection still reads: the replica closing it is seen and it goes. */
    } else {
        upstream_close(u);
    }
}

static void on_upstream_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    upstream *u = s->data;
    if (n > 0)
        ty_buf_add(&u->in, buf->base, (size_t)n);
    free(buf->base);
    if (!u->req) {
        /* Idle: the replica closed it (or sent something unasked): drop it. */
        if (n < 0 || n > 0) {
            backend *b = u->be;
            for (upstream **pp = &b->idle; *pp; pp = &(*pp)->next_idle)
                if (*pp == u) {
                    *pp = u->next_idle;
                    break;
                }
            upstream_close(u);
        }
        return;
    }
    if (n < 0)
        upstream_done(u, true);
    else if (n > 0)
        upstream_done(u, false);
}

typedef struct up_write {
    uv_write_t w;
    upstream *u;
} up_write;

static void on_upstream_write(uv_write_t *w, int status)
{
    up_write *uw = (up_write *)w;
    upstream *u = uw->u;
    free(uw);
    if (status < 0 && u->req && !u->closing)
        upstream_done(u, true);
}

static void upstream_write(upstream *u, request *r)
{
    up_write *uw = TY_NEW(up_write);
    uw->u = u;
    uv_buf_t b = uv_buf_init(r->out.data, (unsigned)r->out.len);
    if (uv_write(&uw->w, (uv_stream_t *)&u->tcp, &b, 1, on_upstream_write) < 0) {
        free(uw);
        upstream_done(u, true);
    }
}

static void on_upstream_connect(uv_connect_t *c, int status)
{
    upstream *u = c->data;
    if (status < 0) {
        request *r = u->req;
        u->req = NULL;
        if (r) {
            r->up = NULL;
            respond_error(r, 502, "could not connect to the replica");
        }
        upstream_close(u);
        return;
    }
    if (!u->req) {
        upstream_close(u);
        return;
    }
    uv_tcp_nodelay(&u->tcp, 1);
    uv_read_start((uv_stream_t *)&u->tcp, alloc_cb, on_upstream_read);
    upstream_write(u, u->req);
}

static void send_upstream(request *r)
{
    backend *b = r->be;
    upstream *u = b->idle;
    if (u) {
        b->idle = u->next_idle;
        u->next_idle = NULL;
        u->req = r;
        r->up = u;
        upstream_write(u, r);
        return;
    }
    u = TY_NEW(upstream);
    u->be = b;
    u->req = r;
    r->up = u;
    uv_tcp_init(r->g->loop, &u->tcp);
    u->tcp.data = u;
    u->connect.data = u;
    struct sockaddr_storage sa;
    if (uv_ip4_addr(b->ip, b->port, (struct sockaddr_in *)&sa) < 0 &&
        uv_ip6_addr(b->ip, b->port, (struct sockaddr_in6 *)&sa) < 0) {
        u->req = NULL;
        r->up = NULL;
        upstream_close(u);
        respond_error(r, 502, "bad replica address");
        return;
    }
    if (uv_tcp_connect(&u->connect, &u->tcp, (struct sockaddr *)&sa, on_upstream_connect) < 0) {
        u->req = NULL;
        r->up = NULL;
        upstream_close(u);
        respond_error(r, 502, "could not connect to the replica");
    }
}

/* ---- routes ---- */

static void route_clear_revs(route *rt)
{
    for (size_t i = 0; i < rt->nrevs; i++) {
        free(rt->revs[i].name);
        free(rt->revs[i].replicas);
        free(rt->revs[i].starting);
    }
    free(rt->revs);
    rt->revs = NULL;
    rt->nrevs = 0;
}

static backend *backend_of(ty_gateway *g, const ty_gateway_replica *rep)
{
    TY_AUTOFREE char *bk = ty_asprintf("%s:%d", rep->ip, rep->port);
    backend *b = ty_map_gets(&g->backends, bk);
    if (!b) {
        b = TY_NEW(backend);
        snprintf(b->ip, sizeof b->ip, "%s", rep->ip);
        b->port = rep->port;
        ty_map_puts(&g->backends, bk, b);
    }
    return b;
}

static bool in_list(backend *const *list, size_t n, const backend *b)
{
    for (size_t i = 0; i < n; i++)
        if (list[i] == b)
            return true;
    return false;
}

/* ---- probing starting replicas (Knative's activator) ---- */

#define PROBE_MS 5

static void on_probe_closed(uv_handle_t *h)
{
    free(h->data);
}

static void probe_end(probe *p)
{
    ty_gateway *g = p->g;
    for (probe **pp = &g->probes; *pp; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    p->be->probing = false;
    p->tcp.data = p;
    uv_close((uv_handle_t *)&p->tcp, on_probe_closed);
}

static void on_probe_connect(uv_connect_t *c, int status)
{
    probe *p = c->data;
    if (p->orphan)
        return; /* closed by ty_gateway_free; its close callback frees it */
    ty_gateway *g = p->g;
    backend *b = p->be;
    probe_end(p);
    if (status < 0)
        return;
    /* It listens: every route that has it starting can use it now. */
    b->accepted = true;
    size_t it = 0;
    const ty_map_slot *slot;
    while (ty_map_next(&g->routes, &it, &slot)) {
        route *rt = slot->value;
        bool moved = false;
        for (size_t i = 0; i < rt->nrevs; i++) {
            route_rev *rr = &rt->revs[i];
            for (size_t k = 0; k < rr->nstarting; k++) {
                if (rr->starting[k] != b)
                    continue;
                rr->starting[k] = rr->starting[--rr->nstarting];
                rr->replicas = ty_realloc(rr->replicas, (rr->nreplicas + 2) * sizeof *rr->replicas);
                rr->replicas[rr->nreplicas++] = b;
                moved = true;
                break;
            }
        }
        if (moved)
            release_waiting(rt);
    }
}

static void probe_start(ty_gateway *g, backend *b)
{
    struct sockaddr_storage sa;
    if (b->probing || (uv_ip4_addr(b->ip, b->port, (struct sockaddr_in *)&sa) < 0 &&
                       uv_ip6_addr(b->ip, b->port, (struct sockaddr_in6 *)&sa) < 0))
        return;
    probe *p = TY_NEW(probe);
    p->g = g;
    p->be = b;
    uv_tcp_init(g->loop, &p->tcp);
    p->connect.data = p;
    if (uv_tcp_connect(&p->connect, &p->tcp, (struct sockaddr *)&sa, on_probe_connect) < 0) {
        p->tcp.data = p;
        uv_close((uv_handle_t *)&p->tcp, on_probe_closed);
        return;
    }
    b->probing = true;
    p->next = g->probes;
    g->probes = p;
}

static void on_probe_timer(uv_timer_t *t)
{
    route *rt = t->data;
    ty_gateway *g = rt->probe_timer ? *(ty_gateway **)(rt->probe_timer + 1) : NULL;
    if (!g)
        return;
    bool any = false;
    for (size_t i = 0; rt->wait_head && i < rt->nrevs; i++)
        for (size_t k = 0; k < rt->revs[i].nstarting; k++) {
            probe_start(g, rt->revs[i].starting[k]);
            any = true;
        }
    if (!any)
        uv_timer_stop(t);
}

/* While requests wait and replicas start, probe them every PROBE_MS. */
static void probe_schedule(ty_gateway *g, route *rt)
{
    bool starting = false;
    for (size_t i = 0; i < rt->nrevs; i++)
        starting |= rt->revs[i].nstarting > 0;
    if (!rt->wait_head || !starting)
        return;
    if (!rt->probe_timer) {
        /* The timer and, behind it, its gateway. */
        rt->probe_timer = ty_calloc(1, sizeof(uv_timer_t) + sizeof(ty_gateway *));
        *(ty_gateway **)(rt->probe_timer + 1) = g;
        uv_timer_init(g->loop, rt->probe_timer);
        rt->probe_timer->data = rt;
    }
    if (!uv_is_active((uv_handle_t *)rt->probe_timer)) {
        on_probe_timer(rt->probe_timer);
        uv_timer_start(rt->probe_timer, on_probe_timer, PROBE_MS, PROBE_MS);
    }
}

static void route_free(route *rt)
{
    route_clear_revs(rt);
    free(rt->ns);
    free(rt->name);
    if (rt->probe_timer) {
        uv_timer_stop(rt->probe_timer);
        rt->probe_timer->data = rt->probe_timer;
        uv_close((uv_handle_t *)rt->probe_timer, on_probe_closed);
    }
    free(rt);
}

void ty_gateway_set_route(ty_gateway *g, const char *ns, const char *name,
                          const ty_gateway_route *r)
{
    TY_AUTOFREE char *key = ty_asprintf("%s/%s", ns, name);
    route *rt = ty_map_gets(&g->routes, key);
    if (!r) {
        if (!rt)
            return;
        /* Waiting requests stay until their timeout or a route comes back. */
        route_clear_revs(rt);
        if (!rt->wait_head) {
            ty_map_dels(&g->routes, key);
            route_free(rt);
        }
        return;
    }
    if (!rt) {
        rt = TY_NEW(route);
        rt->ns = ty_strdup(ns);
        rt->name = ty_strdup(name);
        ty_map_puts(&g->routes, key, rt);
    }
    /* Every replica the route knew, to tell a new starting pod from one it probed. */
    size_t nold = 0;
    for (size_t i = 0; i < rt->nrevs; i++)
        nold += rt->revs[i].nreplicas + rt->revs[i].nstarting;
    backend **old_all = ty_calloc(nold + 1, sizeof *old_all);
    nold = 0;
    for (size_t i = 0; i < rt->nrevs; i++) {
        for (size_t k = 0; k < rt->revs[i].nreplicas; k++)
            old_all[nold++] = rt->revs[i].replicas[k];
        for (size_t k = 0; k < rt->revs[i].nstarting; k++)
            old_all[nold++] = rt->revs[i].starting[k];
    }
    route_clear_revs(rt);
    rt->cc = r->container_concurrency;
    rt->timeout_s = r->timeout_s;
    rt->revs = ty_calloc(r->nrevisions + 1, sizeof *rt->revs);
    rt->nrevs = r->nrevisions;
    for (size_t i = 0; i < r->nrevisions; i++) {
        const ty_gateway_revision *src = &r->revisions[i];
        route_rev *rr = &rt->revs[i];
        rr->name = ty_strdup(src->name);
        rr->percent = src->percent;
        rr->stats = stats_of(g, key, src->name);
        rr->replicas = ty_calloc(src->nreplicas + 1, sizeof *rr->replicas);
        rr->nreplicas = src->nreplicas;
        for (size_t k = 0; k < src->nreplicas; k++)
            rr->replicas[k] = backend_of(g, &src->replicas[k]);
        rr->starting = ty_calloc(src->nstarting + 1, sizeof *rr->starting);
        for (size_t k = 0; k < src->nstarting; k++) {
            backend *b = backend_of(g, &src->starting[k]);
            /* A starting replica the route did not know is a new pod (maybe on an address
             * an earlier one had): it has not accepted anything yet. */
            if (!in_list(old_all, nold, b))
                b->accepted = false;
            if (b->accepted) {
                rr->replicas = ty_realloc(rr->replicas, (rr->nreplicas + 2) * sizeof *rr->replicas);
                rr->replicas[rr->nreplicas++] = b;
            } else {
                rr->starting[rr->nstarting++] = b;
            }
        }
    }
    free(old_all);
    release_waiting(rt);
    probe_schedule(g, rt);
}

int64_t ty_gateway_concurrency(const ty_gateway *g, const char *ns, const char *name,
                               const char *rev)
{
    TY_AUTOFREE char *k = ty_asprintf("%s/%s/%s", ns, name, rev);
    const rev_stats *st = ty_map_gets(&g->stats, k);
    return st ? st->inflight + st->waiting : 0;
}

uint64_t ty_gateway_served(const ty_gateway *g, const char *ns, const char *name, const char *rev)
{
    TY_AUTOFREE char *k = ty_asprintf("%s/%s/%s", ns, name, rev);
    const rev_stats *st = ty_map_gets(&g->stats, k);
    return st ? st->served : 0;
}

void ty_gateway_metrics(const ty_gateway *g, ty_buf *out)
{
    ty_buf_adds(out, "# HELP trainyard_serving_requests_total Requests answered by a replica "
                     "through the gateway.\n# TYPE trainyard_serving_requests_total counter\n");
    size_t it = 0;
    const ty_map_slot *slot;
    TY_AUTOBUF ty_buf hist = TY_BUF_INIT, conc = TY_BUF_INIT;
    ty_buf_adds(&hist, "# HELP trainyard_serving_request_duration_seconds Time from a request's "
                       "arrival to its answer, through the gateway.\n"
                       "# TYPE trainyard_serving_request_duration_seconds histogram\n");
    ty_buf_adds(&conc, "# HELP trainyard_serving_concurrency Requests in flight at a revision's "
                       "replicas or waiting for one.\n"
                       "# TYPE trainyard_serving_concurrency gauge\n");
    while (ty_map_next(&g->stats, &it, &slot)) {
        const rev_stats *st = slot->value;
        /* the key is ns/name/rev */
        const char *k = slot->key;
        const char *s1 = strchr(k, '/'), *s2 = s1 ? strchr(s1 + 1, '/') : NULL;
        if (!s2)
            continue;
        TY_AUTOFREE char *labels = ty_asprintf(
            "namespace=\"%.*s\",inferenceservice=\"%.*s\",revision=\"%s\"", (int)(s1 - k), k,
            (int)(s2 - s1 - 1), s1 + 1, s2 + 1);
        ty_buf_addf(out, "trainyard_serving_requests_total{%s} %llu\n", labels,
                    (unsigned long long)st->served);
        uint64_t cum = 0;
        for (size_t b = 0; b <= NBOUNDS; b++) {
            cum += st->buckets[b];
            if (b < NBOUNDS)
                ty_buf_addf(&hist, "trainyard_serving_request_duration_seconds_bucket{%s,le=\"%g\"} %llu\n",
                            labels, latency_bounds[b], (unsigned long long)cum);
            else
                ty_buf_addf(&hist, "trainyard_serving_request_duration_seconds_bucket{%s,le=\"+Inf\"} %llu\n",
                            labels, (unsigned long long)cum);
        }
        ty_buf_addf(&hist, "trainyard_serving_request_duration_seconds_sum{%s} %.6f\n", labels,
                    st->latency_sum);
        ty_buf_addf(&hist, "trainyard_serving_request_duration_seconds_count{%s} %llu\n", labels,
                    (unsigned long long)cum);
        ty_buf_addf(&conc, "trainyard_serving_concurrency{%s} %lld\n", labels,
                    (long long)(st->inflight + st->waiting));
    }
    ty_buf_add(out, hist.data, hist.len);
    ty_buf_add(out, conc.data, conc.len);
}

/* ---- life ---- */

ty_gateway *ty_gateway_new(uv_loop_t *loop, const ty_gateway_config *cfg, ty_gateway_wake_fn wake,
                           void *ctx)
{
    ty_gateway *g = TY_NEW(ty_gateway);
    g->loop = loop;
    g->domain = ty_strdup(cfg && cfg->domain ? cfg->domain : "example.com");
    g->max_queue = cfg && cfg->max_queue ? cfg->max_queue : 1000;
    g->hold_ms = cfg && cfg->hold_timeout_ms ? cfg->hold_timeout_ms : 60000;
    g->wake = wake;
    g->ctx = ctx;
    return g;
}

void ty_gateway_set_wake(ty_gateway *g, ty_gateway_wake_fn wake, void *ctx)
{
    g->wake = wake;
    g->ctx = ctx;
}

int ty_gateway_listen(ty_gateway *g, const char *addr, ty_error *err)
{
    const char *colon = strrchr(addr, ':');
    if (!colon)
        return ty_fail(err, "--serving-listen %s: expected host:port", addr);
    TY_AUTOFREE char *host = ty_strndup(addr, (size_t)(colon - addr));
    struct sockaddr_storage sa;
    int port = atoi(colon + 1);
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&sa) < 0 &&
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)&sa) < 0)
        return ty_fail(err, "--serving-listen %s: not an address", addr);
    g->listener = ty_calloc(1, sizeof *g->listener);
    uv_tcp_init(g->loop, g->listener);
    g->listener->data = g;
    g->listening = true;
    int rc = uv_tcp_bind(g->listener, (struct sockaddr *)&sa, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)g->listener, 1024, on_connection);
    if (rc < 0)
        return ty_fail(err, "serving gateway: listen on %s: %s", addr, uv_strerror(rc));
    struct sockaddr_storage got;
    int len = sizeof got;
    uv_tcp_getsockname(g->listener, (struct sockaddr *)&got, &len);
    g->port = ntohs(((struct sockaddr_in *)&got)->sin_port);
    return 0;
}

int ty_gateway_port(const ty_gateway *g)
{
    return g->port;
}

static void free_listener(uv_handle_t *h)
{
    free(h);
}

void ty_gateway_free(ty_gateway *g)
{
    if (!g)
        return;
    if (g->listening) /* the loop finishes the close after g is gone */
        uv_close((uv_handle_t *)g->listener, free_listener);
    while (g->clients)
        client_close(g->clients);
    size_t it = 0;
    const ty_map_slot *slot;
    while (ty_map_next(&g->routes, &it, &slot)) {
        route *rt = slot->value;
        while (rt->wait_head) {
            request *r = rt->wait_head;
            unwait(rt, r);
            request_free(r);
        }
        route_free(rt);
    }
    /* Connects in flight finish (cancelled) after this: they only close themselves. */
    for (probe *p = g->probes; p; p = p->next) {
        p->orphan = true;
        p->tcp.data = p;
        uv_close((uv_handle_t *)&p->tcp, on_probe_closed);
    }
    g->probes = NULL;
    ty_map_free(&g->routes);
    it = 0;
    while (ty_map_next(&g->backends, &it, &slot)) {
        backend *b = slot->value;
        while (b->idle) {
            upstream *u = b->idle;
            b->idle = u->next_idle;
            upstream_close(u);
        }
        free(b);
    }
    ty_map_free(&g->backends);
    it = 0;
    while (ty_map_next(&g->stats, &it, &slot))
        free(slot->value);
    ty_map_free(&g->stats);
    free(g->domain);
    free(g);
}
