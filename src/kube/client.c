#include "kube/client.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/buf.h"
#include "base/jsontext.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/time.h"
#include "kube/kube_int.h"
#include "kube/retry.h"

/* A watch's unparsed tail is bounded: one event larger than this ends the stream. */
#define WATCH_BUF_MAX (64u << 20)
/* A non-watch answer larger than this fails (a LIST is paged well below it). */
#define BODY_MAX (256u << 20)

typedef enum call_state { CALL_WAITING, CALL_RUNNING, CALL_DONE } call_state;

struct ty_kube_call {
    ty_kube_client *c;
    struct ty_kube_call *prev, *next; /* the client's calls */
    uv_timer_t timer;                 /* waits: the rate limit, back-off, Retry-After */
    call_state state;
    bool cancelled;
    bool in_callback;   /* a callback of this call is running: defer freeing */
    bool watch;
    bool unsafe_retry;  /* a POST without a name: no retry once it may have been sent */
    bool auth_refreshed;
    char *method;
    char *path;
    char *body;
    const char *content_type;
    int tries;
    CURL *easy;
    struct curl_slist *headers;      /* live as long as the handle */
    struct curl_slist *connect_list; /* CURLOPT_CONNECT_TO's, likewise */
    char curl_err[CURL_ERROR_SIZE];
    ty_buf resp;
    size_t resp_off;      /* a watch: where the unparsed events start */
    char *retry_after;
    char *sent_token;     /* the bearer token of the last try, to refresh it once on 401 */
    ty_kube_done_fn done;
    ty_kube_event_fn event;
    void *arg;
    void (*arg_free)(void *arg); /* frees arg when the call ends without its callback */
    struct ty_kube_call *inner;  /* ty_kube_update_retry: the request under way */
};

struct ty_kube_client {
    uv_loop_t *loop;
    ty_kube_config *cfg;
    ty_kube_client_opts opts;
    ty_kube_backoff backoff;
    ty_kube_bucket bucket;
    CURLM *multi;
    uv_timer_t timer; /* libcurl's timeout */
    struct ty_kube_call *calls;
    struct sock *socks;
    bool closing;
    int in_curl;      /* inside multi_socket_action: handles cannot be removed */
    int open_handles; /* uv handles not yet closed (timer, polls, calls' timers) */
    char *connect_to;  /* tls-server-name: "name:port:host:port" */
    char *url_base;    /* the server, or https://<tls-server-name>:<port> */
    ty_kube_client_stats stats;
    uint64_t rand_state;
};

typedef struct sock {
    uv_poll_t poll;
    curl_socket_t fd;
    ty_kube_client *c;
    struct sock *prev, *next;
} sock;

static void check_done(ty_kube_client *c);
static void rmw_on_pause(uv_timer_t *t);
static void schedule(struct ty_kube_call *call, int64_t delay_ms);

/* ---- small helpers ---- */

static double rand01(ty_kube_client *c)
{
    /* xorshift64*: jitter needs no quality, and the tests stay reproducible. */
    c->rand_state ^= c->rand_state >> 12;
    c->rand_state ^= c->rand_state << 25;
    c->rand_state ^= c->rand_state >> 27;
    return (double)((c->rand_state * 2685821657736338717ull) >> 11) / 9007199254740992.0;
}

static void maybe_free_client(ty_kube_client *c)
{
    if (c->closing && c->open_handles == 0) {
        free(c->connect_to);
        free(c->url_base);
        free(c);
    }
}

static void on_handle_closed_count(uv_handle_t *h)
{
    ty_kube_client *c = h->data;
    c->open_handles--;
    maybe_free_client(c);
}

static void call_release_easy(struct ty_kube_call *call)
{
    if (call->easy) {
        ty_curl.multi_remove_handle(call->c->multi, call->easy);
        ty_curl.easy_cleanup(call->easy);
        call->easy = NULL;
    }
    if (call->headers) {
        ty_curl.slist_free_all(call->headers);
        call->headers = NULL;
    }
    if (call->connect_list) {
        ty_curl.slist_free_all(call->connect_list);
        call->connect_list = NULL;
    }
}

static void on_call_timer_closed(uv_handle_t *h)
{
    struct ty_kube_call *call = h->data;
    ty_kube_client *c = call->c;
    free(call->method);
    free(call->path);
    free(call->body);
    free(call->retry_after);
    free(call->sent_token);
    ty_buf_free(&call->resp);
    free(call);
    c->open_handles--;
    maybe_free_client(c);
}

/* Unlinks and frees a call (its timer closes first). Its callback has run, or never will. */
static void call_free(struct ty_kube_call *call)
{
    ty_kube_client *c = call->c;
    call_release_easy(call);
    if (call->prev)
        call->prev->next = call->next;
    else if (c->calls == call)
        c->calls = call->next;
    if (call->next)
        call->next->prev = call->prev;
    call->prev = call->next = NULL;
    call->state = CALL_DONE;
    if (call->inner) {
        struct ty_kube_call *in = call->inner;
        call->inner = NULL;
        ty_kube_cancel(in);
    }
    if (call->cancelled && call->arg_free)
        call->arg_free(call->arg);
    uv_timer_stop(&call->timer);
    uv_close((uv_handle_t *)&call->timer, on_call_timer_closed);
}

void ty_kube_cancel(ty_kube_call *call)
{
    if (!call || call->state == CALL_DONE || call->cancelled)
        return;
    call->cancelled = true;
    /* Inside its own callback (a watch event) libcurl is still using the handle: the write
     * callback aborts the transfer and check_done frees it. */
    if (call->in_callback || call->c->in_curl)
        return;
    call_free(call);
}

/* Frees the calls cancelled while libcurl was running (it forbids removing a handle then). */
static void sweep_cancelled(ty_kube_client *c)
{
    for (struct ty_kube_call *call = c->calls, *next; call; call = next) {
        next = call->next;
        if (call->cancelled && !call->in_callback && call->state != CALL_DONE)
            call_free(call);
    }
}

static void socket_action(ty_kube_client *c, curl_socket_t fd, int flags)
{
    int running;
    c->in_curl++;
    ty_curl.multi_socket_action(c->multi, fd, flags, &running);
    c->in_curl--;
    sweep_cancelled(c);
    check_done(c);
}

/* ---- libcurl <-> libuv ---- */

static void on_sock_closed(uv_handle_t *h)
{
    sock *s = h->data;
    ty_kube_client *c = s->c;
    free(s);
    c->open_handles--;
    maybe_free_client(c);
}

static void sock_close(sock *s)
{
    ty_kube_client *c = s->c;
    if (s->prev)
        s->prev->next = s->next;
    else
        c->socks = s->next;
    if (s->next)
        s->next->prev = s->prev;
    uv_poll_stop(&s->poll);
    s->poll.data = s;
    uv_close((uv_handle_t *)&s->poll, on_sock_closed);
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    sock *s = p->data;
    ty_kube_client *c = s->c;
    int flags = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    socket_action(c, s->fd, flags);
}

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    ty_kube_client *c = userp;
    sock *s = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            sock_close(s);
            ty_curl.multi_assign(c->multi, fd, NULL);
        }
        return 0;
    }
    if (!s) {
        s = ty_calloc(1, sizeof *s);
        s->fd = fd;
        s->c = c;
        if (uv_poll_init_socket(c->loop, &s->poll, fd) != 0) {
            free(s);
            return -1;
        }
        c->open_handles++;
        s->poll.data = s;
        s->next = c->socks;
        if (c->socks)
            c->socks->prev = s;
        c->socks = s;
        ty_curl.multi_assign(c->multi, fd, s);
    }
    int ev = (what == CURL_POLL_IN ? UV_READABLE : 0) | (what == CURL_POLL_OUT ? UV_WRITABLE : 0) |
             (what == CURL_POLL_INOUT ? UV_READABLE | UV_WRITABLE : 0);
    uv_poll_start(&s->poll, ev, on_poll);
    return 0;
}

static void on_curl_timer(uv_timer_t *t)
{
    socket_action(t->data, CURL_SOCKET_TIMEOUT, 0);
}

static int on_timer_change(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    ty_kube_client *c = userp;
    if (timeout_ms < 0)
        uv_timer_stop(&c->timer);
    else
        uv_timer_start(&c->timer, on_curl_timer, (uint64_t)timeout_ms, 0);
    return 0;
}

/* ---- answers ---- */

/* Hands a watch's complete events to its callback. Returns false when the call was
 * cancelled from one (the transfer must stop). */
size_t ty_kube_watch_frames(const char *text, size_t len,
                            bool (*fn)(const char *type, json_t *obj, void *arg), void *arg)
{
    const char *p = text, *end = text + len;
    for (;;) {
        p = ty_json_skip_ws(p, end);
        if (p >= end)
            break;
        const char *q = ty_json_skip_value(p, end);
        if (!q)
            break; /* not complete yet */
        json_t *ev = json_loadb(p, (size_t)(q - p), 0, NULL);
        p = q;
        const char *type = json_string_value(json_object_get(ev, "type"));
        json_t *obj = json_object_get(ev, "object");
        bool go_on = !(type && json_is_object(obj)) || fn(type, obj, arg);
        json_decref(ev);
        if (!go_on)
            break;
    }
    return (size_t)(p - text);
}

static bool deliver_one(const char *type, json_t *obj, void *arg)
{
    struct ty_kube_call *call = arg;
    call->in_callback = true;
    call->event(type, obj, call->arg);
    call->in_callback = false;
    return !call->cancelled;
}

/* Hands a watch's complete events to its callback. Returns false when the call was
 * cancelled from one (the transfer must stop). */
static bool deliver_events(struct ty_kube_call *call)
{
    size_t used = call->resp_off + ty_kube_watch_frames(call->resp.data + call->resp_off,
                                                        call->resp.len - call->resp_off,
                                                        deliver_one, call);
    if (call->cancelled)
        return false;
    /* Drop what was delivered once it is most of the buffer. */
    if (used == call->resp.len) {
        ty_buf_reset(&call->resp);
        call->resp_off = 0;
    } else if (used > 65536 && used * 2 > call->resp.len) {
        memmove(call->resp.data, call->resp.data + used, call->resp.len - used);
        call->resp.len -= used;
        call->resp.data[call->resp.len] = 0;
        call->resp_off = 0;
    } else {
        call->resp_off = used;
    }
    return true;
}

static size_t on_write(char *data, size_t size, size_t n, void *arg)
{
    struct ty_kube_call *call = arg;
    size_t len = size * n;
    if (call->cancelled)
        return 0;
    ty_buf_add(&call->resp, data, len);
    long status = 0;
    if (call->watch) {
        ty_curl.easy_getinfo(call->easy, CURLINFO_RESPONSE_CODE, &status);
        if (status == 200) {
            if (!deliver_events(call))
                return 0;
            if (call->resp.len > WATCH_BUF_MAX)
                return 0;
        }
    }
    if (call->resp.len > BODY_MAX)
        return 0;
    return len;
}

static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
    struct ty_kube_call *call = arg;
    size_t len = size * n;
    static const char name[] = "retry-after:";
    if (len > sizeof name - 1 && strncasecmp(data, name, sizeof name - 1) == 0) {
        size_t a = sizeof name - 1, b = len;
        while (a < b && (data[a] == ' ' || data[a] == '\t'))
            a++;
        while (b > a && (data[b - 1] == '\r' || data[b - 1] == '\n' || data[b - 1] == ' '))
            b--;
        free(call->retry_after);
        call->retry_after = ty_strndup(data + a, b - a);
    }
    return len;
}

static void finish(struct ty_kube_call *call, int status, json_t *body, const char *error,
                   const char *reason)
{
    ty_kube_result r = {status, body, error, reason, call->tries};
    call->in_callback = true;
    call->state = CALL_DONE; /* a cancel from its own callback is a no-op */
    if (call->done)
        call->done(&r, call->arg);
    call->in_callback = false;
    call->cancelled = false; /* its callback ran: arg is the caller's again */
    call_free(call);
}

static bool retryable_status(long s)
{
    return s == 429 || (s >= 500 && s != 501 && s < 600);
}

/* One try ended: retry, or hand the answer to the callback. */
static void try_ended(struct ty_kube_call *call, CURLcode res)
{
    ty_kube_client *c = call->c;
    long status = 0;
    if (res == CURLE_OK || res == CURLE_WRITE_ERROR)
        ty_curl.easy_getinfo(call->easy, CURLINFO_RESPONSE_CODE, &status);
    call_release_easy(call);

    if (res != CURLE_OK && res != CURLE_WRITE_ERROR)
        status = 0;
    bool connection_error = res != CURLE_OK && status == 0;
    int retries_left = c->opts.max_retries - (call->tries - 1);

    /* 401 after a credential that can change: fetch it again, once. */
    if (status == 401 && !call->auth_refreshed && !call->watch &&
        (c->cfg->exec || c->cfg->token_file)) {
        call->auth_refreshed = true;
        /* Only the token refused: calls that were refused together refresh it once. */
        if (!call->sent_token || !c->cfg->cached_token ||
            strcmp(call->sent_token, c->cfg->cached_token) == 0)
            c->cfg->cached_until_ns = 0;
        ty_buf_reset(&call->resp);
        schedule(call, 0);
        return;
    }
    if (!call->watch && retries_left > 0 &&
        (retryable_status(status) || connection_error) &&
        (status == 429 || !call->unsafe_retry)) {
        int64_t delay_ms = -1;
        if (status == 429 || status == 503) {
            int64_t s = ty_kube_retry_after_s(call->retry_after, ty_time_now_ns() / 1000000000,
                                              c->opts.retry_after_max_s);
            if (s >= 0) {
                delay_ms = s * 1000;
                c->stats.retry_after++;
            }
        }
        if (delay_ms < 0)
            delay_ms = ty_kube_backoff_ms(&c->backoff, call->tries - 1, rand01(c));
        ty_log(TY_LOG_DEBUG, "kube: %s %s: %s%ld, try %d again in %lld ms", call->method, call->path,
               connection_error ? "connection error " : "", status, call->tries + 1,
               (long long)delay_ms);
        c->stats.retried++;
        ty_buf_reset(&call->resp);
        call->resp_off = 0;
        free(call->retry_after);
        call->retry_after = NULL;
        schedule(call, delay_ms);
        return;
    }

    json_t *body = NULL;
    if (!call->watch && call->resp.len)
        body = json_loadb(call->resp.data, call->resp.len, 0, NULL);
    else if (call->watch && status != 200 && call->resp.len)
        body = json_loadb(call->resp.data, call->resp.len, 0, NULL);
    const char *error = NULL, *reason = NULL;
    char *msg = NULL;
    if (connection_error) {
        msg = ty_asprintf("%s %s: %s", call->method, call->path,
                          call->curl_err[0] ? call->curl_err : ty_curl.easy_strerror(res));
    } else if (call->watch && res == CURLE_WRITE_ERROR && status == 200) {
        msg = ty_asprintf("watch %s: an event over %u bytes", call->path, WATCH_BUF_MAX);
    } else if (status < 200 || status > 299) {
        const char *m = json_string_value(json_object_get(body, "message"));
        reason = json_string_value(json_object_get(body, "reason"));
        msg = m ? ty_strdup(m) : ty_asprintf("%s %s: HTTP %ld", call->method, call->path, status);
    } else if (!call->watch && call->resp.len && !body) {
        msg = ty_asprintf("%s %s: the answer is not JSON", call->method, call->path);
    }
    error = msg;
    finish(call, (int)status, body, error, reason);
    free(msg);
    json_decref(body);
}

static void check_done(ty_kube_client *c)
{
    CURLMsg *m;
    int left;
    while ((m = ty_curl.multi_info_read(c->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        struct ty_kube_call *call = NULL;
        ty_curl.easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&call);
        CURLcode res = m->data.result;
        if (call->cancelled) {
            call_free(call);
            continue;
        }
        try_ended(call, res);
    }
}

/* ---- sending ---- */

static void fail_now(struct ty_kube_call *call, const char *fmt, const char *what)
{
    char *msg = ty_asprintf(fmt, what);
    finish(call, 0, NULL, msg, NULL);
    free(msg);
}

static void set_pem(CURL *h, CURLoption file_opt, CURLoption blob_opt, const ty_kube_pem *p)
{
    if (p->data) {
        struct curl_blob blob = {p->data, p->len, CURL_BLOB_COPY};
        ty_curl.easy_setopt(h, blob_opt, &blob);
    } else if (p->file) {
        ty_curl.easy_setopt(h, file_opt, p->file);
    }
}

static void start_try(struct ty_kube_call *call)
{
    ty_kube_client *c = call->c;
    ty_kube_config *cfg = c->cfg;
    const char *token = NULL;
    TY_CLEANUP_ERROR ty_error err = TY_ERROR_INIT;
    if (ty_kube_config_credential(cfg, ty_time_now_ns(), false, &token, &err) < 0) {
        fail_now(call, "%s", err.msg);
        return;
    }
    CURL *h = ty_curl.easy_init();
    if (!h) {
        fail_now(call, "%s", "libcurl: no handle");
        return;
    }
    call->easy = h;
    call->tries++;
    c->stats.sent++;
    call->curl_err[0] = 0;
    char *url = ty_asprintf("%s%s", c->url_base, call->path);
    ty_curl.easy_setopt(h, CURLOPT_URL, url);
    free(url);
    ty_curl.easy_setopt(h, CURLOPT_PRIVATE, (char *)call);
    ty_curl.easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    ty_curl.easy_setopt(h, CURLOPT_ERRORBUFFER, call->curl_err);
    ty_curl.easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
    ty_curl.easy_setopt(h, CURLOPT_WRITEDATA, call);
    ty_curl.easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    ty_curl.easy_setopt(h, CURLOPT_HEADERDATA, call);
    ty_curl.easy_setopt(h, CURLOPT_CUSTOMREQUEST, call->method);
    ty_curl.easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    ty_curl.easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    ty_curl.easy_setopt(h, CURLOPT_USERAGENT, "trainyard");
    if (!call->watch)
        ty_curl.easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)c->opts.timeout_ms);
    if (c->connect_to) {
        call->connect_list = ty_curl.slist_append(NULL, c->connect_to);
        ty_curl.easy_setopt(h, CURLOPT_CONNECT_TO, call->connect_list);
    }
    struct curl_slist *hdr = NULL;
    hdr = ty_curl.slist_append(hdr, "Accept: application/json");
    if (call->body) {
        char *ctype = ty_asprintf("Content-Type: %s", call->content_type);
        hdr = ty_curl.slist_append(hdr, ctype);
        free(ctype);
        /* No "Expect: 100-continue" for bodies over 1 KiB: a round trip (or a 1 s wait) per
         * write for nothing. */
        hdr = ty_curl.slist_append(hdr, "Expect:");
        ty_curl.easy_setopt(h, CURLOPT_POSTFIELDS, call->body);
        ty_curl.easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(call->body));
    }
    free(call->sent_token);
    call->sent_token = token ? ty_strdup(token) : NULL;
    if (token) {
        char *a = ty_asprintf("Authorization: Bearer %s", token);
        hdr = ty_curl.slist_append(hdr, a);
        free(a);
    } else if (cfg->username) {
        ty_curl.easy_setopt(h, CURLOPT_USERNAME, cfg->username);
        ty_curl.easy_setopt(h, CURLOPT_PASSWORD, cfg->password ? cfg->password : "");
    }
    ty_curl.easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    call->headers = hdr;
    ty_kube_pem *cert = cfg->exec_cert.data ? &cfg->exec_cert : &cfg->cert;
    ty_kube_pem *key = cfg->exec_key.data ? &cfg->exec_key : &cfg->key;
    if (cfg->insecure) {
        ty_curl.easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
        ty_curl.easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    set_pem(h, CURLOPT_CAINFO, CURLOPT_CAINFO_BLOB, &cfg->ca);
    set_pem(h, CURLOPT_SSLCERT, CURLOPT_SSLCERT_BLOB, cert);
    set_pem(h, CURLOPT_SSLKEY, CURLOPT_SSLKEY_BLOB, key);
    call->state = CALL_RUNNING;
    ty_curl.multi_add_handle(c->multi, h);
}

static void on_ready(uv_timer_t *t)
{
    start_try(t->data);
}

/* The delay is over: take a token of the rate limit, or wait for the one reserved. */
static void on_delay_over(uv_timer_t *t)
{
    struct ty_kube_call *call = t->data;
    ty_kube_client *c = call->c;
    int64_t wait_ns = ty_kube_bucket_take(&c->bucket, ty_time_mono_ns());
    if (wait_ns > 0) {
        c->stats.throttled++;
        uv_timer_start(&call->timer, on_ready, (uint64_t)((wait_ns + 999999) / 1000000), 0);
        return;
    }
    start_try(call);
}

/* Always through the timer, even with no delay: a callback never runs inside the call that
 * made the request. */
static void schedule(struct ty_kube_call *call, int64_t delay_ms)
{
    call->state = CALL_WAITING;
    uv_timer_start(&call->timer, on_delay_over, delay_ms > 0 ? (uint64_t)delay_ms : 0, 0);
}

char *ty_kube_path(const ty_kube_request *req)
{
    ty_buf b = TY_BUF_INIT;
    const ty_kube_resource *r = req->res;
    if (!r->group || !*r->group)
        ty_buf_addf(&b, "/api/%s", r->version);
    else
        ty_buf_addf(&b, "/apis/%s/%s", r->group, r->version);
    if (r->namespaced && req->ns && *req->ns)
        ty_buf_addf(&b, "/namespaces/%s", req->ns);
    ty_buf_addf(&b, "/%s", r->resource);
    bool one = req->verb != TY_KUBE_LIST && req->verb != TY_KUBE_WATCH &&
               !(req->verb == TY_KUBE_CREATE && !req->subresource);
    if (one && req->name && *req->name)
        ty_buf_addf(&b, "/%s", req->name);
    if (one && req->subresource && *req->subresource)
        ty_buf_addf(&b, "/%s", req->subresource);
    bool q = false;
    if (req->verb == TY_KUBE_WATCH) {
        ty_buf_adds(&b, "?watch=1");
        q = true;
    }
    if (req->query && *req->query)
        ty_buf_addf(&b, "%c%s", q ? '&' : '?', req->query);
    return ty_buf_steal(&b);
}

char *ty_kube_escape(const char *s)
{
    ty_buf b = TY_BUF_INIT;
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '.' || ch == '_' || ch == '~')
            ty_buf_addc(&b, (char)ch);
        else
            ty_buf_addf(&b, "%%%02X", ch);
    }
    return ty_buf_steal(&b);
}

static const char *verb_method(ty_kube_verb v)
{
    switch (v) {
    case TY_KUBE_CREATE: return "POST";
    case TY_KUBE_UPDATE: return "PUT";
    case TY_KUBE_PATCH: return "PATCH";
    case TY_KUBE_DELETE: return "DELETE";
    default: return "GET";
    }
}

static struct ty_kube_call *call_new(ty_kube_client *c, ty_kube_done_fn done, void *arg)
{
    struct ty_kube_call *call = ty_calloc(1, sizeof *call);
    call->c = c;
    call->done = done;
    call->arg = arg;
    ty_buf_init(&call->resp);
    uv_timer_init(c->loop, &call->timer);
    call->timer.data = call;
    c->open_handles++;
    call->next = c->calls;
    if (c->calls)
        c->calls->prev = call;
    c->calls = call;
    return call;
}

static struct ty_kube_call *request_call(ty_kube_client *c, const ty_kube_request *req,
                                         ty_kube_done_fn done, void *arg)
{
    struct ty_kube_call *call = call_new(c, done, arg);
    call->method = ty_strdup(verb_method(req->verb));
    call->path = ty_kube_path(req);
    if (req->body && (req->verb == TY_KUBE_CREATE || req->verb == TY_KUBE_UPDATE ||
                      req->verb == TY_KUBE_PATCH || req->verb == TY_KUBE_DELETE)) {
        call->body = json_dumps(req->body, JSON_COMPACT);
        call->content_type = "application/json";
        if (req->verb == TY_KUBE_PATCH)
            call->content_type = req->patch == TY_KUBE_PATCH_STRATEGIC
                                     ? "application/strategic-merge-patch+json"
                                 : req->patch == TY_KUBE_PATCH_JSON ? "application/json-patch+json"
                                                                    : "application/merge-patch+json";
    }
    if (req->verb == TY_KUBE_CREATE && !req->subresource) {
        const char *name =
            json_string_value(json_object_get(json_object_get(req->body, "metadata"), "name"));
        call->unsafe_retry = !name || !*name;
    }
    return call;
}

ty_kube_call *ty_kube_do(ty_kube_client *c, const ty_kube_request *req, ty_kube_done_fn done,
                         void *arg)
{
    struct ty_kube_call *call = request_call(c, req, done, arg);
    schedule(call, 0);
    return call;
}

ty_kube_call *ty_kube_watch(ty_kube_client *c, const ty_kube_request *req, ty_kube_event_fn event,
                            ty_kube_done_fn done, void *arg)
{
    ty_kube_request w = *req;
    w.verb = TY_KUBE_WATCH;
    w.body = NULL;
    struct ty_kube_call *call = request_call(c, &w, done, arg);
    call->watch = true;
    call->event = event;
    schedule(call, 0);
    return call;
}

/* ---- read-modify-write on conflict ---- */

typedef struct rmw {
    ty_kube_client *c;
    ty_kube_resource res;
    char *group, *version, *resource, *ns, *name, *subresource;
    ty_kube_mutate_fn mutate;
    ty_kube_done_fn done;
    void *arg;
    int tries;
    struct ty_kube_call *outer; /* the call the caller holds: a pause that never fires */
} rmw;

/* client-go's retry.DefaultRetry. */
#define RMW_STEPS 5
#define RMW_PAUSE_MS 10

static void rmw_free(void *p)
{
    rmw *o = p;
    free(o->group);
    free(o->version);
    free(o->resource);
    free(o->ns);
    free(o->name);
    free(o->subresource);
    free(o);
}

static void rmw_get(rmw *o);

/* Ends the operation: the caller's handle gets the answer. */
static void rmw_finish(rmw *o, const ty_kube_result *r)
{
    struct ty_kube_call *outer = o->outer;
    outer->done = o->done;
    outer->arg = o->arg;
    outer->arg_free = NULL;
    ty_kube_result copy = *r;
    copy.tries = o->tries;
    outer->in_callback = true;
    outer->state = CALL_DONE;
    if (outer->done)
        outer->done(&copy, outer->arg);
    outer->in_callback = false;
    outer->cancelled = false;
    call_free(outer);
    rmw_free(o);
}

static ty_kube_request rmw_req(rmw *o, ty_kube_verb verb)
{
    return (ty_kube_request){verb, &o->res, o->ns, o->name, o->subresource, NULL, NULL, 0};
}

static void rmw_on_put(const ty_kube_result *r, void *arg)
{
    rmw *o = arg;
    o->outer->inner = NULL;
    if (r->status == 409 && o->tries < RMW_STEPS) {
        /* The pause: the outer call's own timer, so that a cancel stops it. */
        int64_t d = RMW_PAUSE_MS + (int64_t)(RMW_PAUSE_MS * 0.1 * rand01(o->c));
        uv_timer_start(&o->outer->timer, rmw_on_pause, (uint64_t)d, 0);
        return;
    }
    rmw_finish(o, r);
}

static void rmw_on_get(const ty_kube_result *r, void *arg)
{
    rmw *o = arg;
    o->outer->inner = NULL;
    if (r->status != 200 || !json_is_object(r->body)) {
        rmw_finish(o, r);
        return;
    }
    json_t *obj = json_deep_copy(r->body);
    int m = o->mutate(obj, o->arg);
    if (m != 0) {
        ty_kube_result res = *r;
        if (m < 0) {
            res = (ty_kube_result){0, NULL, "mutate refused", NULL, 0};
        }
        json_decref(obj);
        rmw_finish(o, &res);
        return;
    }
    o->tries++;
    ty_kube_request put = rmw_req(o, TY_KUBE_UPDATE);
    put.body = obj;
    o->outer->inner = ty_kube_do(o->c, &put, rmw_on_put, o);
    json_decref(obj);
}

static void rmw_get(rmw *o)
{
    ty_kube_request get = rmw_req(o, TY_KUBE_GET);
    o->outer->inner = ty_kube_do(o->c, &get, rmw_on_get, o);
}

static void rmw_on_pause(uv_timer_t *t)
{
    struct ty_kube_call *outer = t->data;
    rmw_get(outer->arg);
}

ty_kube_call *ty_kube_update_retry(ty_kube_client *c, const ty_kube_request *req,
                                   ty_kube_mutate_fn mutate, ty_kube_done_fn done, void *arg)
{
    rmw *o = ty_calloc(1, sizeof *o);
    o->c = c;
    o->group = ty_strdup(req->res->group ? req->res->group : "");
    o->version = ty_strdup(req->res->version);
    o->resource = ty_strdup(req->res->resource);
    o->res = (ty_kube_resource){o->group, o->version, o->resource, req->res->namespaced};
    o->ns = req->ns ? ty_strdup(req->ns) : NULL;
    o->name = ty_strdup(req->name ? req->name : "");
    o->subresource = req->subresource ? ty_strdup(req->subresource) : NULL;
    o->mutate = mutate;
    o->done = done;
    o->arg = arg;
    /* The handle the caller holds: a call with no request whose arg is the operation. */
    struct ty_kube_call *outer = call_new(c, NULL, o);
    outer->state = CALL_WAITING;
    outer->arg_free = rmw_free;
    o->outer = outer;
    rmw_get(o);
    return outer;
}

/* ---- the client ---- */

static int split_host_port(const char *server, char **host, char **port)
{
    const char *p = strstr(server, "://");
    if (!p)
        return -1;
    p += 3;
    const char *end = p + strcspn(p, "/");
    const char *colon = NULL;
    if (*p == '[') {
        const char *rb = memchr(p, ']', (size_t)(end - p));
        if (!rb)
            return -1;
        colon = rb[1] == ':' ? rb + 1 : NULL;
    } else {
        colon = memchr(p, ':', (size_t)(end - p));
    }
    *host = ty_strndup(p, (size_t)((colon ? colon : end) - p));
    *port = colon ? ty_strndup(colon + 1, (size_t)(end - colon - 1))
                  : ty_strdup(strncmp(server, "https", 5) == 0 ? "443" : "80");
    return 0;
}

int ty_kube_client_new(uv_loop_t *loop, ty_kube_config *cfg, const ty_kube_client_opts *opts,
                       ty_kube_client **out, ty_error *err)
{
    if (ty_curl_load(err) < 0)
        return -1;
    ty_kube_client *c = ty_calloc(1, sizeof *c);
    c->loop = loop;
    c->cfg = cfg;
    if (opts)
        c->opts = *opts;
    if (c->opts.qps == 0)
        c->opts.qps = TY_KUBE_DEFAULT_QPS;
    if (c->opts.burst == 0)
        c->opts.burst = TY_KUBE_DEFAULT_BURST;
    if (c->opts.max_retries == 0)
        c->opts.max_retries = 5;
    if (c->opts.max_retries < 0)
        c->opts.max_retries = 0;
    if (c->opts.backoff_base_ms == 0)
        c->opts.backoff_base_ms = 200;
    if (c->opts.backoff_cap_ms == 0)
        c->opts.backoff_cap_ms = 10000;
    if (c->opts.retry_after_max_s == 0)
        c->opts.retry_after_max_s = 60;
    if (c->opts.timeout_ms == 0)
        c->opts.timeout_ms = 60000;
    c->backoff = (ty_kube_backoff){c->opts.backoff_base_ms, c->opts.backoff_cap_ms, 2.0, 0.5};
    ty_kube_bucket_init(&c->bucket, c->opts.qps, c->opts.burst, ty_time_mono_ns());
    c->rand_state = (uint64_t)ty_time_mono_ns() | 1;
    if (cfg->tls_server_name) {
        char *host, *port;
        if (split_host_port(cfg->server, &host, &port) < 0) {
            free(c);
            return ty_fail(err, "%s: server \"%s\": not a URL", cfg->source, cfg->server);
        }
        bool v6 = strchr(host, ':') != NULL;
        c->connect_to = ty_asprintf("%s:%s:%s%s%s:%s", cfg->tls_server_name, port, v6 ? "[" : "",
                                    host, v6 ? "]" : "", port);
        c->url_base = ty_asprintf("https://%s:%s", cfg->tls_server_name, port);
        free(host);
        free(port);
    } else {
        c->url_base = ty_strdup(cfg->server);
    }
    c->multi = ty_curl.multi_init();
    ty_curl.multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    ty_curl.multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    ty_curl.multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_timer_change);
    ty_curl.multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    c->open_handles = 1;
    *out = c;
    return 0;
}

void ty_kube_client_close(ty_kube_client *c)
{
    if (!c)
        return;
    while (c->calls) {
        struct ty_kube_call *call = c->calls;
        call->cancelled = true;
        call_free(call);
    }
    ty_curl.multi_cleanup(c->multi);
    c->multi = NULL;
    while (c->socks)
        sock_close(c->socks);
    c->closing = true;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed_count);
}

ty_kube_client_stats ty_kube_client_get_stats(const ty_kube_client *c)
{
    return c->stats;
}
