/* Long answers, watches and followed logs: a stream's buffer, its suspension and resumption,
 * its socket while suspended, and its end. */
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

/* ---------- streams: watches and followed logs ---------- */

static void stream_watch_socket(stream *st);

int64_t srv_mono_ms(void)
{
    return ty_time_mono_ns() / 1000000;
}

/* Lets MHD call the stream's reader again: data arrived or the stream ended. */
static void stream_wake(stream *st)
{
    if (st->suspended && st->conn) {
        st->suspended = false;
        if (st->sock_active) {
            uv_poll_stop(&st->sock);
            st->sock_active = false;
        }
        MHD_resume_connection(st->conn);
        srv_kick(st->srv);
    }
}

void srv_stream_end(stream *st)
{
    st->ended = true;
    stream_wake(st);
}

void srv_stream_send(stream *st, const char *data, size_t len)
{
    if (st->ended)
        return;
    if (st->limit_bytes > 0 && st->sent_bytes + (int64_t)len >= st->limit_bytes) {
        len = (size_t)(st->limit_bytes - st->sent_bytes);
        st->ended = true; /* limitBytes reached */
    }
    st->sent_bytes += (int64_t)len;
    ty_buf_add(&st->out, data, len);
    stream_wake(st);
}

/* The socket of a suspended stream became readable or hung up. A client sends nothing on a
 * watch or a followed log, so that is the client going away: end the stream now, which
 * resumes the connection, and MHD finds the socket closed and frees the connection (and the
 * watch), instead of holding both until the next event (a watch of a quiet resource: until
 * its timeout, half an hour). Bytes from the client (a pipelined request) cannot be told from
 * that; the stream then stops looking and learns of a close at its next write, as before. */
static void on_stream_socket(uv_poll_t *h, int status, int events)
{
    (void)events;
    stream *st = h->data;
    uv_poll_stop(h);
    st->sock_active = false;
    char b;
    uv_os_fd_t fd = -1;
    uv_fileno((uv_handle_t *)h, &fd);
    ssize_t n = status < 0 ? -1 : recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n > 0) {
        st->sock_useless = true;
        return;
    }
    if (n < 0 && status >= 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        if (st->suspended)
            stream_watch_socket(st);
        return;
    }
    srv_stream_end(st);
}

/* Watches the client's socket while the stream is suspended (MHD does not: its epoll set
 * leaves a suspended connection alone). */
static void stream_watch_socket(stream *st)
{
    if (st->sock_useless || st->sock_active || !st->conn)
        return;
    if (!st->sock_init) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(st->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (!ci || uv_poll_init_socket(st->srv->loop, &st->sock, ci->connect_fd) < 0) {
            st->sock_useless = true;
            return;
        }
        st->sock_init = true;
        st->sock.data = st;
        st->handles++;
    }
    if (uv_poll_start(&st->sock, UV_READABLE | UV_DISCONNECT, on_stream_socket) == 0)
        st->sock_active = true;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    stream *st = cls;
    if (st->off < st->out.len) {
        size_t n = st->out.len - st->off;
        n = n < max ? n : max;
        memcpy(buf, st->out.data + st->off, n);
        st->off += n;
        if (st->off == st->out.len) {
            ty_buf_reset(&st->out);
            st->off = 0;
        }
        st->srv->streamed = true;
        return (ssize_t)n;
    }
    if (st->ended)
        return MHD_CONTENT_READER_END_OF_STREAM;
    /* Nothing to send: park the connection until stream_wake(). MHD allows suspending from a
     * content reader. While suspended MHD does not notice a client that went away; the stream
     * watches the socket for that itself (on_stream_socket). */
    st->suspended = true;
    MHD_suspend_connection(st->conn);
    stream_watch_socket(st);
    return 0;
}

static void stream_free_cb(uv_handle_t *h)
{
    stream *st = h->data;
    if (--st->handles > 0)
        return;
    ty_buf_free(&st->out);
    ty_buf_free(&st->partial);
    ty_buf_free(&st->joined);
    ty_selector_free(st->labels);
    ty_selector_free(st->fields);
    free(st->ns);
    free(st->include_object);
    free(st->pod_ns);
    free(st->pod_name);
    free(st->pod_uid);
    free(st->container);
    free(st->log_file);
    free(st);
}

/* MHD destroyed the response: the connection is gone. */
static void stream_response_freed(void *cls)
{
    stream *st = cls;
    st->conn = NULL;
    st->srv->nstreams--;
    if (st->watch_id >= 0)
        ty_store_unwatch(st->srv->store, st->watch_id);
    st->watch_id = -1;
    if (st->fd >= 0)
        close(st->fd);
    st->fd = -1;
    if (st->prev)
        st->prev->next = st->next;
    else
        st->srv->streams = st->next;
    if (st->next)
        st->next->prev = st->prev;
    uv_timer_stop(&st->timer);
    uv_close((uv_handle_t *)&st->timer, stream_free_cb);
    /* before MHD closes the socket, so that libuv never polls a closed (or reused) fd */
    if (st->sock_init)
        uv_close((uv_handle_t *)&st->sock, stream_free_cb);
    st->sock_active = false;
}

/* A stream that will not be answered after all (the request failed before its reply). */
void srv_stream_abandon(stream *st) { stream_response_freed(st); }

/* Watches and followed logs hold their connection for good, so they may take at most half of
 * the connections: the other half stays for requests, which make room among themselves
 * (make_room). Kubernetes answers an overloaded server with 429 too; clients retry. */
bool srv_streams_full(call *c, enum MHD_Result *ret)
{
    if (c->srv->nstreams < c->srv->conn_limit / 2)
        return false;
    *ret = srv_fail(c, 429, "TooManyRequests",
                "too many open watches and log streams (%u): close some and retry",
                c->srv->nstreams);
    return true;
}

stream *srv_stream_new(call *c)
{
    stream *st = TY_NEW(stream);
    c->srv->nstreams++;
    st->srv = c->srv;
    st->conn = c->conn;
    st->watch_id = -1;
    st->fd = -1;
    ty_buf_init(&st->out);
    ty_buf_init(&st->partial);
    ty_buf_init(&st->joined);
    uv_timer_init(c->srv->loop, &st->timer);
    st->timer.data = st;
    st->handles = 1;
    st->next = c->srv->streams;
    if (st->next)
        st->next->prev = st;
    c->srv->streams = st;
    return st;
}

enum MHD_Result srv_stream_reply(call *c, stream *st, const char *type)
{
    struct MHD_Response *resp = MHD_create_response_from_callback(
        MHD_SIZE_UNKNOWN, 32 * 1024, stream_read, st, stream_response_freed);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache, private");
    enum MHD_Result ret = MHD_queue_response(c->conn, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return ret;
}
