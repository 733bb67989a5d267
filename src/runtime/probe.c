/* Container probes as the kubelet runs them: the probe's fields with its defaults, the worker's
 * result counters, and the httpGet / tcpSocket checks on a libuv loop (runtime_int.h). The
 * shim owns the workers (shim.c): it knows when a container runs, restarts it, and runs exec
 * probes in the container's context.
 *
 * Cost: a check is one uv_tcp_t and one uv_timer_t, alive for at most timeoutSeconds; nothing
 * runs between checks but the worker's timer. Failure texts are the Go ones the kubelet
 * prints ("dial tcp 10.0.0.5:8080: connect: connection refused"), so events read alike. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/mem.h"
#include "runtime/runtime_int.h"

#define PROBE_OUTPUT_MAX 10240 /* the kubelet keeps at most 10 KiB of a probe's output */

const char *ty_rt_probe_kind_name(ty_rt_probe_kind kind)
{
    return kind == TY_PROBE_STARTUP ? "Startup" : kind == TY_PROBE_LIVENESS ? "Liveness"
                                                                            : "Readiness";
}

static const char *field_name(ty_rt_probe_kind kind)
{
    return kind == TY_PROBE_STARTUP ? "startupProbe" : kind == TY_PROBE_LIVENESS ? "livenessProbe"
                                                                                 : "readinessProbe";
}

/* An integer field that the API server defaults when 0 or absent, with its minimum. */
static int int_field(const json_t *probe, const char *name, int def, int min, int *out,
                     const char *where, ty_error *err)
{
    json_t *v = json_object_get(probe, name);
    if (!v || json_is_null(v)) {
        *out = def;
        return 0;
    }
    if (!json_is_integer(v))
        return ty_fail(err, "%s.%s: must be an integer", where, name);
    json_int_t n = json_integer_value(v);
    if (n == 0 && def != 0) {
        *out = def;
        return 0;
    }
    if (n < min || n > 1000000000)
        return ty_fail(err, "%s.%s: must be greater than or equal to %d", where, name, min);
    *out = (int)n;
    return 0;
}

/* A port given as a number, or as the name of one of the container's ports. */
static int resolve_port(const json_t *port, const json_t *ctr_spec, const char *where,
                        int *out, ty_error *err)
{
    if (json_is_integer(port)) {
        json_int_t n = json_integer_value(port);
        if (n < 1 || n > 65535)
            return ty_fail(err, "%s.port: must be between 1 and 65535, inclusive", where);
        *out = (int)n;
        return 0;
    }
    const char *name = json_string_value(port);
    if (!name || !*name)
        return ty_fail(err, "%s.port: required", where);
    /* an all-digit string is a number, as intstr's string form of one */
    bool digits = true;
    for (const char *p = name; *p; p++)
        digits &= isdigit((unsigned char)*p) != 0;
    if (digits) {
        long n = strtol(name, NULL, 10);
        if (n < 1 || n > 65535)
            return ty_fail(err, "%s.port: must be between 1 and 65535, inclusive", where);
        *out = (int)n;
        return 0;
    }
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(ctr_spec, "ports"), i, p)
    {
        const char *pn = json_string_value(json_object_get(p, "name"));
        json_t *cp = json_object_get(p, "containerPort");
        if (pn && strcmp(pn, name) == 0 && json_is_integer(cp)) {
            *out = (int)json_integer_value(cp);
            return 0;
        }
    }
    return ty_fail(err, "%s.port: couldn't find port \"%s\" in the container's ports", where,
                   name);
}

int ty_rt_probe_parse(const json_t *probe, const json_t *ctr_spec, ty_rt_probe_kind kind,
                      ty_rt_probe_spec *out, ty_error *err)
{
    memset(out, 0, sizeof *out);
    out->kind = kind;
    out->grace_s = -1;
    const char *cname = json_string_value(json_object_get(ctr_spec, "name"));
    TY_AUTOFREE char *where = ty_asprintf("container %s: %s", cname ? cname : "?",
                                          field_name(kind));
    if (!json_is_object(probe))
        return ty_fail(err, "%s: must be an object", where);
    if (int_field(probe, "initialDelaySeconds", 0, 0, &out->initial_delay_s, where, err) < 0 ||
        int_field(probe, "periodSeconds", 10, 1, &out->period_s, where, err) < 0 ||
        int_field(probe, "timeoutSeconds", 1, 1, &out->timeout_s, where, err) < 0 ||
        int_field(probe, "successThreshold", 1, 1, &out->success_threshold, where, err) < 0 ||
        int_field(probe, "failureThreshold", 3, 1, &out->failure_threshold, where, err) < 0)
        return -1;
    if (kind != TY_PROBE_READINESS && out->success_threshold != 1)
        return ty_fail(err, "%s.successThreshold: must be 1", where);
    json_t *g = json_object_get(probe, "terminationGracePeriodSeconds");
    if (json_is_integer(g) && kind != TY_PROBE_READINESS)
        out->grace_s = json_integer_value(g) < 1 ? 1 : json_integer_value(g);
    json_t *http = json_object_get(probe, "httpGet");
    json_t *tcp = json_object_get(probe, "tcpSocket");
    json_t *ex = json_object_get(probe, "exec");
    json_t *grpc = json_object_get(probe, "grpc");
    int handlers = !!http + !!tcp + !!ex + !!grpc;
    if (handlers == 0)
        return ty_fail(err, "%s: must specify a handler type", where);
    if (handlers > 1)
        return ty_fail(err, "%s: may not specify more than 1 handler type", where);
    if (grpc)
        return ty_fail(err, "%s.grpc: grpc probes are not supported by trainyard", where);
    if (ex) {
        json_t *cmd = json_object_get(ex, "command");
        if (!json_array_size(cmd))
            return ty_fail(err, "%s.exec.command: required", where);
        size_t i;
        json_t *a;
        json_array_foreach(cmd, i, a) if (!json_is_string(a)) return ty_fail(
            err, "%s.exec.command[%zu]: must be a string", where, i);
        out->action = TY_PROBE_EXEC;
        out->command = json_deep_copy(cmd);
        return 0;
    }
    json_t *h = http ? http : tcp;
    TY_AUTOFREE char *hwhere = ty_asprintf("%s.%s", where, http ? "httpGet" : "tcpSocket");
    if (resolve_port(json_object_get(h, "port"), ctr_spec, hwhere, &out->port, err) < 0)
        return -1;
    const char *host = json_string_value(json_object_get(h, "host"));
    out->host = host && *host ? ty_strdup(host) : NULL;
    if (!http) {
        out->action = TY_PROBE_TCP;
        return 0;
    }
    out->action = TY_PROBE_HTTP;
    const char *scheme = json_string_value(json_object_get(h, "scheme"));
    if (scheme && strcmp(scheme, "HTTP") != 0) {
        int rc = strcmp(scheme, "HTTPS") == 0
                     ? ty_fail(err, "%s.scheme: HTTPS probes are not supported by trainyard",
                               hwhere)
                     : ty_fail(err, "%s.scheme: Unsupported value: \"%s\": supported values: "
                                    "\"HTTP\", \"HTTPS\"",
                               hwhere, scheme);
        ty_rt_probe_spec_free(out);
        return rc;
    }
    const char *path = json_string_value(json_object_get(h, "path"));
    out->path = ty_asprintf("%s%s", path && *path == '/' ? "" : "/", path ? path : "");
    json_t *hdrs = json_object_get(h, "httpHeaders");
    size_t i;
    json_t *hv;
    json_array_foreach(hdrs, i, hv)
    {
        const char *n = json_string_value(json_object_get(hv, "name"));
        const char *v = json_string_value(json_object_get(hv, "value"));
        bool bad = !n || !*n || !v;
        for (const char *p = n; !bad && *p; p++)
            bad = *p <= ' ' || *p == ':' || *p == 127;
        for (const char *p = v; !bad && *p; p++)
            bad = *p == '\r' || *p == '\n';
        if (bad) {
            ty_rt_probe_spec_free(out);
            return ty_fail(err, "%s.httpHeaders[%zu]: a name and a value of one line are "
                                "required",
                           hwhere, i);
        }
    }
    if (json_array_size(hdrs))
        out->headers = json_deep_copy(hdrs);
    return 0;
}

void ty_rt_probe_spec_free(ty_rt_probe_spec *sp)
{
    if (!sp)
        return;
    free(sp->host);
    free(sp->path);
    json_decref(sp->headers);
    json_decref(sp->command);
    sp->host = sp->path = NULL;
    sp->headers = sp->command = NULL;
}

void ty_rt_probe_reset(ty_rt_probe_state *st, ty_rt_probe_kind kind)
{
    st->result = kind == TY_PROBE_LIVENESS;
    st->last = st->result;
    st->run = 0;
}

bool ty_rt_probe_observe(ty_rt_probe_state *st, const ty_rt_probe_spec *sp, bool ok)
{
    if (ok != st->last) {
        st->last = ok;
        st->run = 0;
    }
    if (st->run < 1000000)
        st->run++;
    int needed = ok ? sp->success_threshold : sp->failure_threshold;
    if (ok == st->result || st->run < needed)
        return false;
    st->result = ok;
    return true;
}

int ty_rt_probe_http_status(const char *resp, size_t n)
{
    /* "HTTP/1.x NNN" */
    if (n < 12)
        return (n >= 5 && memcmp(resp, "HTTP/", 5) != 0) ? -1 : 0;
    if (memcmp(resp, "HTTP/", 5) != 0)
        return -1;
    const char *sp = memchr(resp, ' ', n);
    if (!sp || (size_t)(sp - resp) + 4 > n)
        return sp ? 0 : -1;
    int code = 0;
    for (int k = 1; k <= 3; k++) {
        if (!isdigit((unsigned char)sp[k]))
            return -1;
        code = code * 10 + (sp[k] - '0');
    }
    return code < 100 ? -1 : code;
}

/* ---- network checks ---------------------------------------------------------------------- */

struct ty_rt_netcheck {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_connect_t connect;
    uv_write_t write;
    int open_handles;
    bool finished; /* done called, or cancelled */
    bool connected;
    const ty_rt_probe_spec *sp;
    ty_rt_probe_done_fn done;
    void *ctx;
    char target[80]; /* "host:port" as Go prints it */
    char *url;       /* httpGet's URL */
    ty_buf request, response;
};

static void nc_closed(uv_handle_t *h)
{
    ty_rt_netcheck *nc = h->data;
    if (--nc->open_handles > 0)
        return;
    free(nc->url);
    ty_buf_free(&nc->request);
    ty_buf_free(&nc->response);
    free(nc);
}

/* Reports once and closes both handles; the check is freed when they are closed. */
static void nc_finish(ty_rt_netcheck *nc, bool ok, const char *output)
{
    if (nc->finished)
        return;
    nc->finished = true;
    uv_timer_stop(&nc->timer);
    if (nc->done)
        nc->done(nc->ctx, ok, output);
    uv_close((uv_handle_t *)&nc->tcp, nc_closed);
    uv_close((uv_handle_t *)&nc->timer, nc_closed);
}

static void nc_timeout(uv_timer_t *t)
{
    ty_rt_netcheck *nc = t->data;
    TY_AUTOFREE char *msg =
        nc->sp->action == TY_PROBE_TCP
            ? ty_asprintf("dial tcp %s: i/o timeout", nc->target)
            : ty_asprintf("Get \"%s\": context deadline exceeded (Client.Timeout exceeded while "
                          "awaiting headers)",
                          nc->url);
    nc_finish(nc, false, msg);
}

/* Judges what the server sent so far; `eof`: it will send no more. */
static void nc_judge(ty_rt_netcheck *nc, bool eof)
{
    const char *r = nc->response.data ? nc->response.data : "";
    int code = ty_rt_probe_http_status(r, nc->response.len);
    const char *end = nc->response.len ? strstr(r, "\r\n\r\n") : NULL;
    if (code == 0 && !eof)
        return;
    if (code <= 0) {
        TY_AUTOFREE char *msg = ty_asprintf("Get \"%s\": %s", nc->url,
                                            nc->response.len ? "malformed HTTP response"
                                                             : "EOF");
        nc_finish(nc, false, msg);
        return;
    }
    /* the headers are in (or the server closed): the status decides */
    if (!end && !eof && nc->response.len < PROBE_OUTPUT_MAX)
        return;
    if (code >= 200 && code < 400) {
        nc_finish(nc, true, "");
        return;
    }
    TY_AUTOFREE char *msg = ty_asprintf("HTTP probe failed with statuscode: %d", code);
    nc_finish(nc, false, msg);
}

static void nc_alloc(uv_handle_t *h, size_t sz, uv_buf_t *buf)
{
    (void)sz;
    ty_rt_netcheck *nc = h->data;
    ty_buf_grow(&nc->response, 4096);
    buf->base = nc->response.data + nc->response.len;
    buf->len = nc->response.cap - nc->response.len - 1;
}

static void nc_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    (void)buf;
    ty_rt_netcheck *nc = s->data;
    if (nc->finished)
        return;
    if (n < 0) {
        nc_judge(nc, true);
        return;
    }
    nc->response.len += (size_t)n;
    nc->response.data[nc->response.len] = '\0';
    nc_judge(nc, nc->response.len >= PROBE_OUTPUT_MAX);
}

static void nc_written(uv_write_t *w, int status)
{
    ty_rt_netcheck *nc = w->data;
    if (nc->finished || status == 0)
        return;
    TY_AUTOFREE char *msg = ty_asprintf("Get \"%s\": write tcp %s: %s", nc->url, nc->target,
                                        uv_strerror(status));
    nc_finish(nc, false, msg);
}

/* Go's words for a failed connect: "connect: connection refused". */
static const char *connect_words(int status)
{
    switch (status) {
    case UV_ECONNREFUSED: return "connection refused";
    case UV_ENETUNREACH: return "network is unreachable";
    case UV_EHOSTUNREACH: return "no route to host";
    case UV_ETIMEDOUT: return "connection timed out";
    default: return uv_strerror(status);
    }
}

static void nc_connected(uv_connect_t *req, int status)
{
    ty_rt_netcheck *nc = req->data;
    if (nc->finished)
        return;
    if (status < 0) {
        TY_AUTOFREE char *dial = ty_asprintf("dial tcp %s: connect: %s", nc->target,
                                             connect_words(status));
        if (nc->sp->action == TY_PROBE_TCP) {
            nc_finish(nc, false, dial);
        } else {
            TY_AUTOFREE char *msg = ty_asprintf("Get \"%s\": %s", nc->url, dial);
            nc_finish(nc, false, msg);
        }
        return;
    }
    if (nc->sp->action == TY_PROBE_TCP) {
        nc_finish(nc, true, "");
        return;
    }
    uv_buf_t b = uv_buf_init(nc->request.data, (unsigned)nc->request.len);
    nc->write.data = nc;
    if (uv_write(&nc->write, (uv_stream_t *)&nc->tcp, &b, 1, nc_written) < 0 ||
        uv_read_start((uv_stream_t *)&nc->tcp, nc_alloc, nc_read) < 0) {
        TY_AUTOFREE char *msg = ty_asprintf("Get \"%s\": write failed", nc->url);
        nc_finish(nc, false, msg);
    }
}

/* The request the kubelet sends: GET, its User-Agent and Accept unless the probe sets them,
 * Host from the probe's headers or the target. */
static void build_request(ty_rt_netcheck *nc, const char *host)
{
    const ty_rt_probe_spec *sp = nc->sp;
    bool has_host = false, has_ua = false, has_accept = false;
    size_t i;
    json_t *h;
    json_array_foreach(sp->headers, i, h)
    {
        const char *n = json_string_value(json_object_get(h, "name"));
        has_host |= strcasecmp(n, "Host") == 0;
        has_ua |= strcasecmp(n, "User-Agent") == 0;
        has_accept |= strcasecmp(n, "Accept") == 0;
    }
    ty_buf_addf(&nc->request, "GET %s HTTP/1.1\r\n", sp->path);
    if (!has_host)
        ty_buf_addf(&nc->request, "Host: %s\r\n", nc->target);
    (void)host;
    if (!has_ua)
        ty_buf_adds(&nc->request, "User-Agent: kube-probe/1.32\r\n");
    if (!has_accept)
        ty_buf_adds(&nc->request, "Accept: */*\r\n");
    json_array_foreach(sp->headers, i, h)
    {
        ty_buf_addf(&nc->request, "%s: %s\r\n", json_string_value(json_object_get(h, "name")),
                    json_string_value(json_object_get(h, "value")));
    }
    ty_buf_adds(&nc->request, "Connection: close\r\n\r\n");
}

ty_rt_netcheck *ty_rt_probe_net_start(uv_loop_t *loop, const ty_rt_probe_spec *sp,
                                      const char *pod_ip, ty_rt_probe_done_fn done, void *ctx)
{
    ty_rt_netcheck *nc = TY_NEW(ty_rt_netcheck);
    nc->sp = sp;
    nc->done = done;
    nc->ctx = ctx;
    ty_buf_init(&nc->request);
    ty_buf_init(&nc->response);
    const char *host = sp->host ? sp->host : pod_ip && *pod_ip ? pod_ip : "127.0.0.1";
    if (strcmp(host, "localhost") == 0) /* the pod's own loopback: the shim is in its netns */
        host = "127.0.0.1";
    bool v6 = strchr(host, ':') != NULL;
    snprintf(nc->target, sizeof nc->target, v6 ? "[%s]:%d" : "%s:%d", host, sp->port);
    if (sp->action == TY_PROBE_HTTP) {
        nc->url = ty_asprintf("http://%s%s", nc->target, sp->path);
        build_request(nc, host);
    }
    uv_tcp_init(loop, &nc->tcp);
    uv_timer_init(loop, &nc->timer);
    nc->tcp.data = nc->timer.data = nc;
    nc->connect.data = nc;
    nc->open_handles = 2;
    uv_timer_start(&nc->timer, nc_timeout, (uint64_t)sp->timeout_s * 1000, 0);
    struct sockaddr_storage addr;
    int rc = v6 ? uv_ip6_addr(host, sp->port, (struct sockaddr_in6 *)&addr)
                : uv_ip4_addr(host, sp->port, (struct sockaddr_in *)&addr);
    if (rc == 0)
        rc = uv_tcp_connect(&nc->connect, &nc->tcp, (const struct sockaddr *)&addr,
                            nc_connected);
    if (rc < 0) {
        /* a host name: probes name addresses (the kubelet resolves names; pods here have
         * addresses, and a lookup would block the loop) */
        TY_AUTOFREE char *msg =
            ty_asprintf("%s%s%sdial tcp %s: %s", sp->action == TY_PROBE_HTTP ? "Get \"" : "",
                        sp->action == TY_PROBE_HTTP ? nc->url : "",
                        sp->action == TY_PROBE_HTTP ? "\": " : "", nc->target,
                        rc == UV_EINVAL ? "the probe's host must be an IP address"
                                        : connect_words(rc));
        nc_finish(nc, false, msg);
        return NULL;
    }
    return nc;
}

void ty_rt_probe_cancel(ty_rt_netcheck *nc)
{
    if (!nc || nc->finished)
        return;
    nc->done = NULL;
    nc_finish(nc, false, "");
}
