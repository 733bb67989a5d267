/* pods/log: a container's CRI log as text, followed or not. */
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

/* ---------- pods/log ---------- */

/* Appends the complete CRI records in `data` to the stream's output (text lines, as
 * kubectl logs shows them), keeping an incomplete last line in st->partial. */
static void log_feed(stream *st, const char *data, size_t len, ty_buf *out)
{
    ty_buf_add(&st->partial, data, len);
    size_t start = 0;
    for (;;) {
        char *nl = memchr(st->partial.data + start, '\n', st->partial.len - start);
        if (!nl)
            break;
        size_t llen = (size_t)(nl - (st->partial.data + start));
        int64_t t;
        bool partial;
        const char *text;
        size_t tlen;
        if (ty_srv_cri_parse(st->partial.data + start, llen, &t, &partial, &text, &tlen) == 0) {
            ty_buf_add(&st->joined, text, tlen);
            if (!partial) {
                if (t >= st->since_ns) {
                    if (st->timestamps) {
                        ty_srv_format_rfc3339nano(t, out);
                        ty_buf_addc(out, ' ');
                    }
                    ty_buf_add(out, st->joined.data, st->joined.len);
                    ty_buf_addc(out, '\n');
                }
                ty_buf_reset(&st->joined);
            }
        }
        start += llen + 1;
    }
    memmove(st->partial.data, st->partial.data + start, st->partial.len - start);
    st->partial.len -= start;
    st->partial.data[st->partial.len] = '\0';
}

/* Reads what the log file has now; returns the bytes read. */
static size_t log_pump(stream *st, ty_buf *out)
{
    char buf[65536];
    size_t total = 0;
    for (;;) {
        ssize_t n = read(st->fd, buf, sizeof(buf));
        if (n <= 0)
            break;
        log_feed(st, buf, (size_t)n, out);
        total += (size_t)n;
    }
    return total;
}

static bool pod_finished(const json_t *pod)
{
    const char *phase =
        json_string_value(json_object_get(json_object_get(pod, "status"), "phase"));
    return phase && (strcmp(phase, "Succeeded") == 0 || strcmp(phase, "Failed") == 0);
}

/* Whether the followed container run is over, as the kubelet ends `logs -f`: the pod is gone
 * (or replaced), finished, the container is terminated, or it restarted (a new log file). */
static bool log_source_done(stream *st)
{
    json_t *pod = ty_store_get(st->srv->store, "pods", st->pod_ns, st->pod_name);
    bool done = !pod || strcmp(ty_obj_uid(pod) ? ty_obj_uid(pod) : "", st->pod_uid) != 0 ||
                pod_finished(pod);
    if (!done) {
        size_t i;
        json_t *cs;
        json_array_foreach(json_object_get(json_object_get(pod, "status"), "containerStatuses"),
                           i, cs)
        {
            const char *n = json_string_value(json_object_get(cs, "name"));
            if (n && strcmp(n, st->container) == 0 &&
                json_object_get(json_object_get(cs, "state"), "terminated"))
                done = true;
        }
    }
    if (!done && st->srv->log_path) {
        char *now = st->srv->log_path(st->srv->log_ctx, pod, st->container, false);
        done = !now || strcmp(now, st->log_file) != 0;
        free(now);
    }
    json_decref(pod);
    return done;
}

static void log_tick(uv_timer_t *t)
{
    stream *st = t->data;
    TY_AUTOBUF ty_buf out = TY_BUF_INIT;
    /* Check whether the run is over before reading, so lines written just before it ended are
     * still sent. */
    bool done = log_source_done(st);
    size_t n = log_pump(st, &out);
    if (out.len)
        srv_stream_send(st, out.data, out.len);
    if (done && n == 0)
        srv_stream_end(st);
}

/* Keeps the last `tail` lines of `b`. */
static void keep_tail(ty_buf *b, long tail)
{
    if (tail < 0)
        return;
    size_t cut = b->len;
    long lines = 0;
    while (cut > 0) {
        if (b->data[cut - 1] == '\n' && cut != b->len && ++lines >= tail)
            break;
        cut--;
    }
    if (tail == 0)
        cut = b->len;
    memmove(b->data, b->data + cut, b->len - cut);
    b->len -= cut;
    b->data[b->len] = '\0';
}

enum MHD_Result srv_handle_log(call *c, json_t *pod)
{
    const char *container = srv_q(c, "container");
    json_t *containers = json_object_get(json_object_get(pod, "spec"), "containers");
    if (!container || !*container) {
        if (json_array_size(containers) != 1) {
            TY_AUTOBUF ty_buf names = TY_BUF_INIT;
            size_t i;
            json_t *ct;
            json_array_foreach(containers, i, ct)
                ty_buf_addf(&names, "%s%s", i ? " " : "",
                            json_string_value(json_object_get(ct, "name")));
            return srv_fail(c, 400, "BadRequest",
                            "a container name must be specified for pod %s, choose one of: [%s]",
                            c->path.name, names.data);
        }
        container = json_string_value(json_object_get(json_array_get(containers, 0), "name"));
    }
    bool found = false;
    size_t i;
    json_t *ct;
    json_array_foreach(containers, i, ct)
        found |= container && json_is_string(json_object_get(ct, "name")) &&
                 strcmp(json_string_value(json_object_get(ct, "name")), container) == 0;
    if (!found)
        return srv_fail(c, 400, "BadRequest", "container %s is not valid for pod %s",
                        container ? container : "", c->path.name);
    /* The log options as the API server decodes (400) and validates them (422, as
     * ValidatePodLogOptions words it). */
    enum MHD_Result ret;
    int64_t since_s = 0, tail = -1, limit_bytes = 0;
    int64_t since_time = 0;
    const char *since_time_q = srv_q(c, "sinceTime");
    if (srv_q_int64(c, "sinceSeconds", &since_s, &ret) < 0 ||
        srv_q_int64(c, "tailLines", &tail, &ret) < 0 ||
        srv_q_int64(c, "limitBytes", &limit_bytes, &ret) < 0)
        return ret;
    if (since_time_q && *since_time_q && ty_time_parse_rfc3339(since_time_q, &since_time) < 0)
        return srv_fail(c, 400, "BadRequest",
                        "parsing time \"%s\" as \"2006-01-02T15:04:05Z07:00\": cannot parse",
                        since_time_q);
    ty_field_errors errs = TY_FIELD_ERRORS_INIT;
    bool has_since = srv_q(c, "sinceSeconds") && *srv_q(c, "sinceSeconds");
    if (srv_q(c, "tailLines") && *srv_q(c, "tailLines") && tail < 0)
        ty_field_errors_add(&errs, "tailLines", (ty_pos){0, 0},
                            "Invalid value: %lld: must be greater than or equal to 0",
                            (long long)tail);
    if (srv_q(c, "limitBytes") && *srv_q(c, "limitBytes") && limit_bytes < 1)
        ty_field_errors_add(&errs, "limitBytes", (ty_pos){0, 0},
                            "Invalid value: %lld: must be greater than 0", (long long)limit_bytes);
    if (has_since && since_time_q && *since_time_q)
        ty_field_errors_add(&errs, "", (ty_pos){0, 0},
                            "Forbidden: at most one of `sinceTime` or `sinceSeconds` may be "
                            "specified");
    else if (has_since && since_s < 1)
        ty_field_errors_add(&errs, "sinceSeconds", (ty_pos){0, 0},
                            "Invalid value: %lld: must be greater than 0", (long long)since_s);
    if (errs.count) {
        json_t *d = json_pack("{s:s, s:s}", "name", c->path.name, "kind", "PodLogOptions");
        ret = srv_fail_invalid_as(c, "PodLogOptions", d, c->path.name, &errs);
        ty_field_errors_free(&errs);
        return ret;
    }
    bool previous = srv_q_true(c, "previous");
    TY_AUTOFREE char *path =
        c->srv->log_path ? c->srv->log_path(c->srv->log_ctx, pod, container, previous) : NULL;
    int fd = path ? open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK) : -1;
    if (fd < 0) {
        if (previous)
            return srv_fail(c, 400, "BadRequest",
                        "previous terminated container \"%s\" in pod \"%s\" not found", container,
                        c->path.name);
        return srv_fail(c, 400, "BadRequest",
                        "container \"%s\" in pod \"%s\" is waiting to start: ContainerCreating",
                        container, c->path.name);
    }
    if (srv_streams_full(c, &ret)) {
        close(fd);
        return ret;
    }
    stream *st = srv_stream_new(c);
    st->fd = fd;
    st->timestamps = srv_q_true(c, "timestamps");
    if (has_since) /* saturating: sinceSeconds=2^63-1 is all of the log */
        st->since_ns = ty_time_add_s(ty_time_now_ns(), -since_s);
    if (since_time_q && *since_time_q)
        st->since_ns = since_time;
    st->pod_ns = ty_strdup(ty_obj_namespace(pod) ? ty_obj_namespace(pod) : "");
    st->pod_name = ty_strdup(ty_obj_name(pod));
    st->pod_uid = ty_strdup(ty_obj_uid(pod) ? ty_obj_uid(pod) : "");
    st->container = ty_strdup(container);
    st->log_file = ty_strdup(path);
    TY_AUTOBUF ty_buf first = TY_BUF_INIT;
    log_pump(st, &first);
    keep_tail(&first, tail);
    st->limit_bytes = limit_bytes;
    srv_stream_send(st, first.data, first.len);
    if (!st->ended && srv_q_true(c, "follow") && !previous)
        uv_timer_start(&st->timer, log_tick, STREAM_TICK_MS, STREAM_TICK_MS);
    else
        st->ended = true;
    return srv_stream_reply(c, st, "text/plain");
}
