/* The API server: libmicrohttpd in external-event-loop mode on the caller's libuv loop.
 *
 * MHD runs with MHD_USE_EPOLL and no thread of its own: its epoll fd is watched by a uv_poll
 * and MHD_get_timeout() drives a uv_timer; either calls MHD_run(). Long answers (watches,
 * `logs -f`) are responses from a content-reader callback that suspends its connection when it
 * has nothing to send; store events and log growth append to the stream's buffer and resume
 * it. Everything happens on the loop's thread, so nothing is locked. */
#include "server/apiserver.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api.h"
#include "api/k8sproto.h"
#include "api/manifest.h"
#include "api/openapi.h"
#include "api/apply.h"
#include "api/patch.h"
#include "api/selector.h"
#include "api/table.h"
#include "base/buf.h"
#include "base/jsontext.h"
#include "base/log.h"
#include "base/map.h"
#include "base/mem.h"
#include "base/time.h"
#include "server/server_int.h"
#include "server/mhd.h"

/* ---------- dispatch ---------- */

static enum MHD_Result dispatch(call *c, const char *url)
{
    enum MHD_Result ret = MHD_YES;
    c->url = url;
    /* The trusting loopback mode answers only this machine's own clients (see there); a
     * secure server knows who asks instead. */
    if (!c->srv->sec) {
        bool refused;
        ret = srv_refuse_foreign(c, &refused);
        if (refused)
            return ret;
    }
    if (srv_authenticate(c, &ret) < 0)
        return ret;
    /* Authorized before anything is looked up, as kube-apiserver: a refused client learns
     * nothing of what exists. */
    if (ty_srv_path_parse(url, srv_is_namespaced, c->srv, &c->path) < 0 || !c->path.resource)
        ty_srv_path_free(&c->path), c->path = (ty_srv_path){0};
    if (srv_authorize(c, &ret) < 0)
        return ret;
    if (srv_discovery(c, url, &ret) == 0)
        return ret;
    if (!c->path.resource)
        return srv_fail(c, 404, "NotFound", "the server could not find the requested resource");
    c->ri = srv_find_res(c->srv, c->path.group, c->path.version, c->path.resource);
    if (!c->ri)
        return srv_fail(c, 404, "NotFound", "the server could not find the requested resource");
    if (c->ri->review)
        return srv_handle_review(c);
    if (c->path.sub && strcmp(c->path.sub, "token") == 0 &&
        strcmp(c->ri->resource, "serviceaccounts") == 0)
        return srv_handle_token_request(c);
    if (c->path.sub && c->path.name && strcmp(c->path.sub, "binding") == 0 &&
        strcmp(c->ri->resource, "pods") == 0 && !c->ri->group[0] && c->path.ns) {
        if (strcmp(c->method, "POST") == 0)
            return srv_handle_binding(c);
        return srv_fail(c, 405, "MethodNotAllowed",
                        "the server does not allow this method on the requested resource");
    }
    if (c->path.sub && !((strcmp(c->path.sub, "status") == 0 && c->ri->has_status) ||
                         (strcmp(c->path.sub, "log") == 0 && c->ri->has_log) ||
                         (strcmp(c->path.sub, "metrics") == 0 &&
                          strcmp(c->ri->resource, "trials") == 0)))
        return srv_fail(c, 404, "NotFound", "the server could not find the requested resource");
    if (c->ri->namespaced && c->path.name && !c->path.ns)
        return srv_fail(c, 404, "NotFound", "the server could not find the requested resource");
    TY_CLEANUP_ERROR ty_error qerr = TY_ERROR_INIT;
    if (ty_srv_query_check(srv_q_lookup, c, &qerr) < 0)
        return srv_fail(c, 400, "BadRequest", "%s", qerr.msg);
    const char *m = c->method;
    if (strcmp(c->ri->group, SRV_METRICS_GROUP) == 0)
        return strcmp(m, "GET") == 0 && !c->path.sub
                   ? srv_handle_resource_metrics(c)
                   : srv_fail(c, 405, "MethodNotAllowed",
                              "the server does not allow this method on the requested resource");
    bool log = c->path.sub && strcmp(c->path.sub, "log") == 0;
    if (c->path.sub && strcmp(c->path.sub, "metrics") == 0)
        return c->path.name && strcmp(m, "POST") == 0
                   ? srv_handle_trial_metrics(c)
                   : srv_fail(c, 405, "MethodNotAllowed",
                              "the server does not allow this method on the requested resource");
    if (!c->path.name) {
        if (strcmp(m, "GET") == 0)
            return srv_handle_list(c);
        if (strcmp(m, "POST") == 0)
            return srv_handle_create(c);
        if (strcmp(m, "DELETE") == 0)
            return srv_handle_delete_collection(c);
    } else if (strcmp(m, "GET") == 0) {
        return srv_handle_get(c);
    } else if (log) {
        /* only GET */
    } else if (strcmp(m, "PUT") == 0) {
        return srv_handle_put(c);
    } else if (strcmp(m, "PATCH") == 0) {
        return srv_handle_patch(c);
    } else if (strcmp(m, "DELETE") == 0 && !c->path.sub) {
        return srv_handle_delete(c);
    }
    return srv_fail(c, 405, "MethodNotAllowed",
                    "the server does not allow this method on the requested resource");
}

/* The answer just queued leaves once this returns: whatever it shows (this request's writes,
 * and the controllers' ones it may read) must be durable first. When the store is not
 * deferring commits this is a no-op. A commit that fails leaves memory ahead of the database,
 * with answers that must not be sent: the server stops at once, and its next start loads
 * what is durable (nothing that was not has left the process). */
static void commit_or_die(ty_apiserver *s)
{
    TY_CLEANUP_ERROR ty_error err = TY_ERROR_INIT;
    if (ty_store_commit(s->store, &err) < 0) {
        ty_log(TY_LOG_ERROR, "server: the store cannot commit, stopping: %s", err.msg);
        abort();
    }
}

/* ---------- connections ---------- */

/* Every client here is 127.0.0.1, so a limit per address would lock the victim out with its
 * attacker. What an attacker can hold without limit is connections that never finish a request
 * (half-sent headers or bodies, or kept alive and idle): those are kept in order of the time
 * they started waiting, and when the open connections come near the limit the oldest waiting
 * ones are shut down to make room, so a new client always gets in and, sending its request at
 * once, is not the one shut down. A connection with a whole request (a watch, a followed log)
 * is never shut down for room. Waiting connections also time out (IDLE_TIMEOUT_S without a byte), and a
 * watch whose client left is freed at once (on_stream_socket). */
#define IDLE_TIMEOUT_S 30
#define CONN_LIMIT_MAX 16384u

static void idle_remove(ty_apiserver *s, conn_rec *r)
{
    if (!r->idle)
        return;
    if (r->prev)
        r->prev->next = r->next;
    else
        s->idle_head = r->next;
    if (r->next)
        r->next->prev = r->prev;
    else
        s->idle_tail = r->prev;
    r->prev = r->next = NULL;
    r->idle = false;
}

static void idle_push(ty_apiserver *s, conn_rec *r)
{
    if (r->idle || r->shut)
        return;
    r->idle = true;
    r->prev = s->idle_tail;
    r->next = NULL;
    if (s->idle_tail)
        s->idle_tail->next = r;
    else
        s->idle_head = r;
    s->idle_tail = r;
}

/* The room kept free below MHD's own limit (which refuses connections outright). */
static unsigned conn_reserve(const ty_apiserver *s)
{
    return s->conn_limit / 16 > 8 ? s->conn_limit / 16 : 8;
}

/* Shuts down the oldest waiting connections while the open ones are near the limit, never
 * `keep` (the connection just accepted). shutdown(), not close(): the fd stays MHD's, and MHD
 * reads the end of the stream on its next run and closes the connection itself. */
static void make_room(ty_apiserver *s, conn_rec *keep)
{
    while (s->nconns - s->nshut + conn_reserve(s) > s->conn_limit && s->idle_head &&
           s->idle_head != keep) {
        conn_rec *r = s->idle_head;
        idle_remove(s, r);
        r->shut = true;
        s->nshut++;
        shutdown(r->fd, SHUT_RDWR);
    }
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    ty_apiserver *s = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        conn_rec *r = TY_NEW(conn_rec);
        r->fd = ci ? ci->connect_fd : -1;
        *socket_context = r;
        s->nconns++;
        idle_push(s, r);
        make_room(s, r);
        return;
    }
    conn_rec *r = *socket_context;
    if (!r)
        return;
    idle_remove(s, r);
    if (r->shut)
        s->nshut--;
    s->nconns--;
    free(r);
    *socket_context = NULL;
}

static conn_rec *conn_rec_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* A request arrived whole (headers and body): the connection is no longer waiting. */
static void conn_busy(ty_apiserver *s, struct MHD_Connection *conn)
{
    conn_rec *r = conn_rec_of(conn);
    if (r)
        idle_remove(s, r);
}

/* Its request is done: kept alive, the connection waits for the next one. */
static void conn_waiting(ty_apiserver *s, struct MHD_Connection *conn)
{
    conn_rec *r = conn_rec_of(conn);
    if (r)
        idle_push(s, r);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)version;
    ty_apiserver *s = cls;
    req *r = *con_cls;
    call c = {.srv = s, .conn = conn, .r = r, .method = method};
    if (!r) {
        r = TY_NEW(req);
        ty_buf_init(&r->body);
        *con_cls = r;
        c.r = r;
        /* A declared oversized body is refused before it is sent when the client waits for
         * "100 Continue"; otherwise it is read and dropped, so that the client, still writing,
         * gets the answer rather than a broken pipe. */
        const char *len = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                      MHD_HTTP_HEADER_CONTENT_LENGTH);
        const char *expect = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                         MHD_HTTP_HEADER_EXPECT);
        if (len && strtoull(len, NULL, 10) > s->max_body) {
            r->too_big = true;
            if (expect && strcasecmp(expect, "100-continue") == 0)
                return srv_fail(&c, 413, "RequestEntityTooLarge",
                                "Request entity too large: limit is %zu", s->max_body);
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (r->body.len + *upload_data_size > s->max_body)
            r->too_big = true;
        else
            ty_buf_add(&r->body, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    /* The request is whole only now: one whose body trickles in waits as half-sent headers
     * do, and makes room the same way (make_room). */
    conn_busy(s, conn);
    if (r->too_big)
        return srv_fail(&c, 413, "RequestEntityTooLarge", "Request entity too large: limit is %zu",
                        s->max_body);
    ty_debug("http: %s %s", method, url);
    enum MHD_Result ret = dispatch(&c, url);
    srv_audit(&c);
    srv_auth_after_request(s);
    ty_srv_path_free(&c.path);
    ty_identity_clear(&c.user);
    commit_or_die(s);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)toe;
    conn_waiting(cls, conn);
    req *r = *con_cls;
    if (!r)
        return;
    ty_buf_free(&r->body);
    json_decref(r->warnings);
    free(r);
    *con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    TY_AUTOFREE char *msg = ty_vasprintf(fmt, ap);
    size_t n = strlen(msg);
    if (n && msg[n - 1] == '\n')
        msg[n - 1] = '\0';
    ty_debug("http: %s", msg);
}

/* ---------- the loop ---------- */

static void run_mhd(ty_apiserver *s);

static void on_timer(uv_timer_t *t)
{
    run_mhd(t->data);
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    (void)status, (void)events;
    run_mhd(p->data);
}

#define YIELD_CONTENDED_NS 1000000LL /* 1 ms */
#define YIELD_BACKOFF_NS 1000000000LL /* 1 s */

static void run_mhd(ty_apiserver *s)
{
    if (s->stopping)
        return;
    s->kicked = false;
    s->streamed = false;
    MHD_run(s->mhd);
    /* Watch events just went out, and what this thread does next is often the controllers'
     * reaction to the same write (a new job's status and events: half a millisecond). The
     * kernel tends to wake a watcher on the CPU it last ran on, which may be this one; it
     * would then wait for all of that. Yielding once lets it read its event first, and costs
     * a system call when nothing else is runnable here. When the yield kept this thread off
     * the CPU for longer than a woken client takes, something else wants the CPU (busy pods):
     * yielding then only delays the loop, so it stops for a while. */
    if (s->streamed) {
        MHD_run(s->mhd); /* MHD writes what a content reader returned on its next pass */
        int64_t now = ty_time_mono_ns();
        if (now >= s->yield_again_ns) {
            sched_yield();
            if (ty_time_mono_ns() - now > YIELD_CONTENDED_NS)
                s->yield_again_ns = now + YIELD_BACKOFF_NS;
        }
    }
    MHD_UNSIGNED_LONG_LONG timeout;
    /* A connection resumed during this run (a store event from a request handler) is only
     * picked up by the next MHD_run, and MHD's timeout does not count it. */
    if (s->kicked)
        uv_timer_start(&s->timer, on_timer, 0, 0);
    else if (MHD_get_timeout(s->mhd, &timeout) == MHD_YES)
        uv_timer_start(&s->timer, on_timer, timeout, 0);
    else
        uv_timer_stop(&s->timer);
}

/* Runs MHD on the next loop iteration (a connection was resumed). Never calls MHD_run from
 * inside one of MHD's own callbacks. */
void srv_kick(ty_apiserver *s)
{
    s->kicked = true;
    if (!s->stopping)
        uv_timer_start(&s->timer, on_timer, 0, 0);
}

static void on_handle_closed(uv_handle_t *h)
{
    ty_apiserver *s = h->data;
    if (--s->open_handles == 0) {
        srv_label_views_clear(s);
        free(s->audit_path);
        free(s->own_res);
        free(s);
    }
}

static int parse_listen(const char *listen, struct sockaddr_in *sa, ty_error *err)
{
    const char *colon = strrchr(listen, ':');
    if (!colon)
        return ty_fail(err, "listen address %s: expected host:port", listen);
    TY_AUTOFREE char *host = ty_strndup(listen, (size_t)(colon - listen));
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || end == colon + 1 || port < 0 || port > 65535)
        return ty_fail(err, "listen address %s: bad port", listen);
    memset(sa, 0, sizeof(*sa));
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)port);
    if (!*host || strcmp(host, "localhost") == 0)
        host[0] = '\0', sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    else if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
        return ty_fail(err, "listen address %s: bad IPv4 address", listen);
    return 0;
}

int ty_apiserver_check_listen(const char *listen, bool tls, bool *loopback, ty_error *err)
{
    struct sockaddr_in sa;
    if (parse_listen(listen, &sa, err) < 0)
        return -1;
    bool lo = (ntohl(sa.sin_addr.s_addr) >> 24) == 127;
    if (loopback)
        *loopback = lo;
    /* Anyone who reaches the API can run commands as this user (a pod is a command): off
     * loopback, only with TLS and authentication. */
    if (!lo && !tls)
        return ty_fail(err, "listen address %s is not a loopback address and TLS is off: "
                       "plain HTTP would let anyone who reaches it run commands as this user; "
                       "drop --no-tls (TLS, tokens and RBAC are on by default off loopback) "
                       "or listen on 127.0.0.1", listen);
    return 0;
}

/* How many connections the server takes: half the descriptors it may open (the store, the
 * pods' pipes and logs need the rest), after raising its soft limit to the hard one, as a
 * container runtime gives containers; at most CONN_LIMIT_MAX. */
static unsigned conn_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return 512;
    if (rl.rlim_cur < rl.rlim_max) {
        rlim_t want = rl.rlim_max;
        if (want == RLIM_INFINITY || want > 2 * CONN_LIMIT_MAX + 4096)
            want = 2 * CONN_LIMIT_MAX + 4096;
        if (want > rl.rlim_cur) {
            struct rlimit nl = {want, rl.rlim_max};
            if (setrlimit(RLIMIT_NOFILE, &nl) == 0)
                rl.rlim_cur = want;
        }
    }
    rlim_t n = rl.rlim_cur == RLIM_INFINITY ? 2 * CONN_LIMIT_MAX : rl.rlim_cur / 2;
    return n > CONN_LIMIT_MAX ? CONN_LIMIT_MAX : n < 64 ? 64 : (unsigned)n;
}

int ty_apiserver_start(const ty_apiserver_config *cfg, ty_apiserver **out, ty_error *err)
{
    if (ty_mhd_load(err) < 0)
        return -1;
    struct sockaddr_in sa;
    if (ty_apiserver_check_listen(cfg->listen ? cfg->listen : "127.0.0.1:6443",
                                  cfg->security != NULL, NULL, err) < 0 ||
        parse_listen(cfg->listen ? cfg->listen : "127.0.0.1:6443", &sa, err) < 0)
        return -1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return ty_fail_errno(err, errno, "socket");
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 512) < 0) {
        int e = errno;
        close(fd);
        return ty_fail_errno(err, e, "listen on %s", cfg->listen);
    }
    socklen_t slen = sizeof(sa);
    getsockname(fd, (struct sockaddr *)&sa, &slen);

    ty_apiserver *s = TY_NEW(ty_apiserver);
    s->loop = cfg->loop;
    s->store = cfg->store;
    s->log_path = cfg->log_path;
    s->log_ctx = cfg->log_ctx;
    s->mutate = cfg->mutate;
    s->mutate_ctx = cfg->mutate_ctx;
    s->metrics = cfg->metrics;
    s->metrics_ctx = cfg->metrics_ctx;
    s->max_body = cfg->max_body_bytes ? cfg->max_body_bytes : DEFAULT_MAX_BODY;
    s->table_page_bytes = cfg->table_page_bytes ? cfg->table_page_bytes : 8u * 1024 * 1024;
    s->port = ntohs(sa.sin_port);
    s->res = ty_kinds();
    while (s->res[s->nres])
        s->nres++;
    if (cfg->resource_metrics) {
        /* metrics.k8s.io's pods and nodes: routed and discovered here only, never stored
         * (their plurals are the core kinds', which the registry keys the store by) */
        s->resource_metrics = cfg->resource_metrics;
        s->resource_metrics_ctx = cfg->resource_metrics_ctx;
        s->own_res = ty_calloc(s->nres + 3, sizeof *s->own_res);
        memcpy(s->own_res, s->res, s->nres * sizeof *s->own_res);
        s->own_res[s->nres++] = &srv_pod_metrics_kind;
        s->own_res[s->nres++] = &srv_node_metrics_kind;
        s->res = s->own_res;
    }
    s->conn_limit = conn_limit();
    s->sec = cfg->security;
    srv_audit_config(s, cfg->audit_path, cfg->audit_max_bytes);
    if (srv_auth_start(s, err) < 0) {
        srv_auth_stop(s);
        free(s->audit_path);
        close(fd);
        free(s);
        return -1;
    }
    /* External event loop: no MHD thread; MHD_ALLOW_SUSPEND_RESUME for the streams. The
     * timeout is for a connection without a byte either way (a suspended stream has none).
     * With TLS: GnuTLS (MHD's), TLS 1.2 and 1.3 only, and the CA's name sent in the
     * certificate request so that clients offer their certificate (verified per request,
     * auth.c; a connection without one still uses a token). */
    static const char priorities[] = "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2";
    const ty_apiserver_security *sec = cfg->security;
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG |
                     (sec ? MHD_USE_TLS : 0);
    struct MHD_OptionItem tls[] = {
        {sec ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, sec ? (void *)sec->cert_pem : NULL},
        {MHD_OPTION_HTTPS_MEM_KEY, 0, sec ? (void *)sec->key_pem : NULL},
        {MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)priorities},
        {MHD_OPTION_HTTPS_MEM_TRUST, 0, sec && sec->pki ? (void *)ty_pki_ca_pem(sec->pki) : NULL},
        {MHD_OPTION_END, 0, NULL},
    };
    if (sec && !sec->pki)
        tls[3].option = MHD_OPTION_END;
    s->mhd = MHD_start_daemon(flags, 0,
                              NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
                              MHD_OPTION_LISTEN_SOCKET, fd,
                              MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                              MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
                              MHD_OPTION_CONNECTION_LIMIT, s->conn_limit,
                              MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)IDLE_TIMEOUT_S,
                              MHD_OPTION_ARRAY, tls,
                              MHD_OPTION_END);
    if (!s->mhd) {
        srv_auth_stop(s);
        free(s->audit_path);
        close(fd);
        free(s);
        return ty_fail(err, "start the http server on %s%s", cfg->listen,
                       sec ? " (TLS: is the certificate and key pair valid PEM?)" : "");
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_EPOLL_FD);
    uv_poll_init(s->loop, &s->poll, info->epoll_fd);
    uv_timer_init(s->loop, &s->timer);
    s->poll.data = s->timer.data = s;
    s->open_handles = 2;
    uv_poll_start(&s->poll, UV_READABLE, on_poll);
    if (cfg->kubernetes_service) {
        char ip[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &sa.sin_addr, ip, sizeof ip);
        s->kubesvc = srv_kubesvc_start(s->loop, s->store,
                                       cfg->advertise_ip ? cfg->advertise_ip : ip, s->port);
    }
    s->sactl = srv_sactl_start(s->loop, s->store);
    run_mhd(s);
    *out = s;
    return 0;
}

int ty_apiserver_port(const ty_apiserver *s)
{
    return s->port;
}

void ty_apiserver_stop(ty_apiserver *s)
{
    if (!s)
        return;
    /* End every stream and let MHD send their last chunk to clients that still read, then
     * close everything. */
    for (stream *st = s->streams; st; st = st->next) {
        uv_timer_stop(&st->timer);
        srv_stream_end(st);
    }
    MHD_run(s->mhd);
    MHD_run(s->mhd);
    srv_kubesvc_stop(s->kubesvc);
    s->kubesvc = NULL;
    srv_sactl_stop(s->sactl);
    s->sactl = NULL;
    s->stopping = true;
    uv_poll_stop(&s->poll);
    uv_timer_stop(&s->timer);
    /* The uv_poll goes before MHD closes its epoll fd. */
    uv_close((uv_handle_t *)&s->poll, on_handle_closed);
    uv_close((uv_handle_t *)&s->timer, on_handle_closed);
    MHD_stop_daemon(s->mhd);
    srv_auth_stop(s);
}
