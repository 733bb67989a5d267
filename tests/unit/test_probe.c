/* The probes' pure parts (runtime/probe.c): fields with the kubelet's defaults and the API
 * server's refusals, the worker's threshold counting, HTTP status lines; and the httpGet /
 * tcpSocket checks against real sockets on a loop. */
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "runtime/runtime_int.h"

static json_t *J(const char *text)
{
    json_error_t je;
    json_t *j = json_loads(text, 0, &je);
    cr_assert(j, "%s: %s", text, je.text);
    return j;
}

static const char *CTR = "{\"name\":\"c\",\"ports\":[{\"name\":\"web\",\"containerPort\":8080}]}";

static int parse(const char *probe, ty_rt_probe_kind kind, ty_rt_probe_spec *sp, ty_error *err)
{
    json_t *p = J(probe), *c = J(CTR);
    int rc = ty_rt_probe_parse(p, c, kind, sp, err);
    json_decref(p);
    json_decref(c);
    return rc;
}

Test(probe, defaults_as_the_api_server)
{
    ty_rt_probe_spec sp;
    ty_error err = TY_ERROR_INIT;
    cr_assert_eq(parse("{\"httpGet\":{\"port\":\"web\"}}", TY_PROBE_READINESS, &sp, &err), 0,
                 "%s", err.msg);
    cr_assert_eq(sp.action, TY_PROBE_HTTP);
    cr_assert_eq(sp.port, 8080);
    cr_assert_str_eq(sp.path, "/");
    cr_assert_null(sp.host);
    cr_assert_eq(sp.period_s, 10);
    cr_assert_eq(sp.timeout_s, 1);
    cr_assert_eq(sp.success_threshold, 1);
    cr_assert_eq(sp.failure_threshold, 3);
    cr_assert_eq(sp.initial_delay_s, 0);
    ty_rt_probe_spec_free(&sp);
    /* zero means the default, as the API server's defaulting */
    cr_assert_eq(parse("{\"tcpSocket\":{\"port\":\"81\"},\"periodSeconds\":0,"
                       "\"initialDelaySeconds\":5,\"failureThreshold\":1}",
                       TY_PROBE_LIVENESS, &sp, &err),
                 0, "%s", err.msg);
    cr_assert_eq(sp.action, TY_PROBE_TCP);
    cr_assert_eq(sp.port, 81);
    cr_assert_eq(sp.period_s, 10);
    cr_assert_eq(sp.initial_delay_s, 5);
    cr_assert_eq(sp.failure_threshold, 1);
    ty_rt_probe_spec_free(&sp);
    cr_assert_eq(parse("{\"exec\":{\"command\":[\"cat\",\"/tmp/x\"]},\"timeoutSeconds\":3}",
                       TY_PROBE_STARTUP, &sp, &err),
                 0, "%s", err.msg);
    cr_assert_eq(sp.action, TY_PROBE_EXEC);
    cr_assert_eq(json_array_size(sp.command), 2);
    cr_assert_eq(sp.timeout_s, 3);
    ty_rt_probe_spec_free(&sp);
    cr_assert_eq(parse("{\"httpGet\":{\"port\":80,\"path\":\"healthz\",\"host\":\"10.1.2.3\","
                       "\"httpHeaders\":[{\"name\":\"X-A\",\"value\":\"b\"}]}}",
                       TY_PROBE_READINESS, &sp, &err),
                 0, "%s", err.msg);
    cr_assert_str_eq(sp.path, "/healthz");
    cr_assert_str_eq(sp.host, "10.1.2.3");
    cr_assert_eq(json_array_size(sp.headers), 1);
    ty_rt_probe_spec_free(&sp);
}

Test(probe, refusals_name_the_field)
{
    static const struct {
        const char *probe;
        ty_rt_probe_kind kind;
        const char *msg;
    } cases[] = {
        {"{}", TY_PROBE_READINESS, "container c: readinessProbe: must specify a handler type"},
        {"{\"exec\":{\"command\":[\"x\"]},\"tcpSocket\":{\"port\":1}}", TY_PROBE_LIVENESS,
         "container c: livenessProbe: may not specify more than 1 handler type"},
        {"{\"httpGet\":{\"port\":\"nope\"}}", TY_PROBE_READINESS,
         "container c: readinessProbe.httpGet.port: couldn't find port \"nope\" in the "
         "container's ports"},
        {"{\"tcpSocket\":{\"port\":70000}}", TY_PROBE_READINESS,
         "container c: readinessProbe.tcpSocket.port: must be between 1 and 65535, inclusive"},
        {"{\"exec\":{\"command\":[\"x\"]},\"successThreshold\":2}", TY_PROBE_LIVENESS,
         "container c: livenessProbe.successThreshold: must be 1"},
        {"{\"exec\":{\"command\":[\"x\"]},\"periodSeconds\":-1}", TY_PROBE_STARTUP,
         "container c: startupProbe.periodSeconds: must be greater than or equal to 1"},
        {"{\"exec\":{\"command\":[]}}", TY_PROBE_STARTUP,
         "container c: startupProbe.exec.command: required"},
        {"{\"grpc\":{\"port\":9000}}", TY_PROBE_READINESS,
         "container c: readinessProbe.grpc: grpc probes are not supported by trainyard"},
        {"{\"httpGet\":{\"port\":80,\"scheme\":\"HTTPS\"}}", TY_PROBE_READINESS,
         "container c: readinessProbe.httpGet.scheme: HTTPS probes are not supported by "
         "trainyard"},
        {"{\"httpGet\":{\"port\":80,\"httpHeaders\":[{\"name\":\"A\",\"value\":\"x\\r\\ny\"}]}}",
         TY_PROBE_READINESS,
         "container c: readinessProbe.httpGet.httpHeaders[0]: a name and a value of one line "
         "are required"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        ty_rt_probe_spec sp;
        ty_error err = TY_ERROR_INIT;
        cr_assert_eq(parse(cases[i].probe, cases[i].kind, &sp, &err), -1, "%s", cases[i].probe);
        cr_assert_str_eq(err.msg, cases[i].msg);
        ty_error_clear(&err);
        ty_rt_probe_spec_free(&sp);
    }
}

Test(probe, thresholds_as_the_kubelets_worker)
{
    ty_rt_probe_spec sp = {.kind = TY_PROBE_READINESS, .success_threshold = 2,
                           .failure_threshold = 3};
    ty_rt_probe_state st;
    ty_rt_probe_reset(&st, TY_PROBE_READINESS);
    cr_assert_not(st.result); /* readiness starts unready */
    cr_assert_not(ty_rt_probe_observe(&st, &sp, true));
    cr_assert_not(ty_rt_probe_observe(&st, &sp, false)); /* the run of successes breaks */
    cr_assert_not(ty_rt_probe_observe(&st, &sp, true));
    cr_assert(ty_rt_probe_observe(&st, &sp, true)); /* two in a row: ready */
    cr_assert(st.result);
    cr_assert_not(ty_rt_probe_observe(&st, &sp, false));
    cr_assert_not(ty_rt_probe_observe(&st, &sp, false));
    cr_assert(ty_rt_probe_observe(&st, &sp, false)); /* three in a row: unready */
    cr_assert_not(st.result);
    cr_assert_not(ty_rt_probe_observe(&st, &sp, false)); /* no change, no news */
    cr_assert_eq(st.run, 4);
    ty_rt_probe_reset(&st, TY_PROBE_LIVENESS);
    cr_assert(st.result); /* liveness starts healthy */
    ty_rt_probe_reset(&st, TY_PROBE_STARTUP);
    cr_assert_not(st.result);
}

Test(probe, http_status_lines)
{
    cr_assert_eq(ty_rt_probe_http_status("HTTP/1.1 200 OK\r\n", 17), 200);
    cr_assert_eq(ty_rt_probe_http_status("HTTP/1.0 503 Service", 20), 503);
    cr_assert_eq(ty_rt_probe_http_status("HTTP/1.", 7), 0); /* not yet */
    cr_assert_eq(ty_rt_probe_http_status("SSH-2.0-OpenSSH", 15), -1);
    cr_assert_eq(ty_rt_probe_http_status("HTTP/1.1 2x0 OK", 15), -1);
}

/* ---- checks against real sockets ------------------------------------------------------- */

typedef struct outcome {
    int calls;
    bool ok;
    char output[512];
} outcome;

static void on_done(void *ctx, bool ok, const char *output)
{
    outcome *o = ctx;
    o->calls++;
    o->ok = ok;
    snprintf(o->output, sizeof o->output, "%s", output);
}

/* A listening socket on 127.0.0.1 (backlog only: connects succeed, nothing is answered). */
static int listen_any(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(listen(fd, 8), 0);
    socklen_t l = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &l);
    *port = ntohs(a.sin_port);
    return fd;
}

static void run_check(ty_rt_probe_spec *sp, outcome *o)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    ty_rt_probe_net_start(&loop, sp, "127.0.0.1", on_done, o);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(uv_loop_close(&loop), 0, "handles left open");
}

Test(probe, tcp_check)
{
    int port;
    int fd = listen_any(&port);
    ty_rt_probe_spec sp = {.action = TY_PROBE_TCP, .port = port, .timeout_s = 1};
    outcome o = {0};
    run_check(&sp, &o);
    cr_assert_eq(o.calls, 1);
    cr_assert(o.ok, "%s", o.output);
    close(fd); /* now refused */
    outcome r = {0};
    run_check(&sp, &r);
    cr_assert_eq(r.calls, 1);
    cr_assert_not(r.ok);
    char want[128];
    snprintf(want, sizeof want, "dial tcp 127.0.0.1:%d: connect: connection refused", port);
    cr_assert_str_eq(r.output, want);
}

Test(probe, http_check_times_out_on_a_silent_server)
{
    int port;
    int fd = listen_any(&port);
    ty_rt_probe_spec sp = {.action = TY_PROBE_HTTP, .port = port, .timeout_s = 1,
                           .path = "/healthz"};
    outcome o = {0};
    run_check(&sp, &o);
    cr_assert_eq(o.calls, 1);
    cr_assert_not(o.ok);
    char want[256];
    snprintf(want, sizeof want,
             "Get \"http://127.0.0.1:%d/healthz\": context deadline exceeded (Client.Timeout "
             "exceeded while awaiting headers)",
             port);
    cr_assert_str_eq(o.output, want);
    close(fd);
}

Test(probe, host_must_be_an_address)
{
    ty_rt_probe_spec sp = {.action = TY_PROBE_TCP, .port = 80, .timeout_s = 1,
                           .host = "db.example"};
    outcome o = {0};
    run_check(&sp, &o);
    cr_assert_eq(o.calls, 1);
    cr_assert_not(o.ok);
    cr_assert_str_eq(o.output, "dial tcp db.example:80: the probe's host must be an IP address");
}
