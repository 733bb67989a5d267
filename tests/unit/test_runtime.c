/* The runtime on real processes: a libuv loop in the test, the built trainyard binary as the
 * shim (build/asan/trainyard under ASan), pods started through the public API. Every wait polls
 * with a deadline, so the tests hold on 2 busy cores. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <jansson.h>
#include <limits.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "base/buf.h"
#include "base/map.h"
#include "base/mem.h"
#include "base/time.h"
#include "runtime/runtime_int.h"
#include "runtime/ipam.h"
#include "runtime/runtime.h"

#ifdef __SANITIZE_ADDRESS__
#define SHIM "build/asan/trainyard"
#else
#define SHIM "build/trainyard"
#endif

typedef struct record {
    char uid[128];
    json_t *last;
    bool gone;
    int updates;
} record;

static struct {
    uv_loop_t loop;
    uv_timer_t tick;
    ty_runtime *rt;
    char dir[64];
    record recs[16];
    int n;
    bool shut;
} T;

static record *rec(const char *uid)
{
    for (int i = 0; i < T.n; i++)
        if (strcmp(T.recs[i].uid, uid) == 0)
            return &T.recs[i];
    cr_assert(T.n < 16);
    record *r = &T.recs[T.n++];
    snprintf(r->uid, sizeof(r->uid), "%s", uid);
    return r;
}

static void on_status(void *ctx, const char *ns, const char *name, const char *uid, json_t *st,
                      bool gone)
{
    (void)ctx, (void)ns, (void)name;
    record *r = rec(uid);
    cr_assert(!r->gone, "status after gone for %s", uid);
    json_decref(r->last);
    r->last = st;
    r->gone = gone;
    r->updates++;
}

static void tick(uv_timer_t *t) { (void)t; }

static void setup_rt_in(const char *dir, int gpus, bool die)
{
    memset(&T, 0, sizeof(T));
    snprintf(T.dir, sizeof(T.dir), "%s", dir ? dir : "/tmp/ty-rt-XXXXXX");
    cr_assert(dir || mkdtemp(T.dir));
    uv_loop_init(&T.loop);
    uv_timer_init(&T.loop, &T.tick);
    uv_timer_start(&T.tick, tick, 10, 10); /* wakes the loop so deadlines are checked */
    char exe[PATH_MAX];
    cr_assert(realpath(SHIM, exe), "run the tests from the repository root after make");
    ty_runtime_config cfg = {.state_dir = T.dir, .self_exe = exe, .gpus = gpus,
                             .pods_die_with_parent = die, .default_workdir = "/tmp",
                             .node_name = "node-a"};
    ty_error err = TY_ERROR_INIT;
    int rc = ty_runtime_new(&T.loop, &cfg, on_status, NULL, &T.rt, &err);
    cr_assert_eq(rc, 0, "%s", err.msg);
}

static void setup_rt(int gpus, bool die) { setup_rt_in(NULL, gpus, die); }

static bool run_until(bool (*pred)(void *), void *arg, int ms)
{
    int64_t end = ty_time_mono_ns() + (int64_t)ms * 1000000;
    while (!pred(arg)) {
        if (ty_time_mono_ns() > end)
            return false;
        uv_run(&T.loop, UV_RUN_ONCE);
    }
    return true;
}

static void shut_done(void *arg)
{
    (void)arg;
    T.shut = true;
}
static bool is_shut(void *arg) { return (void)arg, T.shut; }

static void teardown_rt(void)
{
    if (T.rt) {
        ty_runtime_shutdown(T.rt, shut_done, NULL);
        cr_assert(run_until(is_shut, NULL, 10000), "shutdown did not finish");
        ty_runtime_free(T.rt);
    }
    uv_close((uv_handle_t *)&T.tick, NULL);
    uv_run(&T.loop, UV_RUN_DEFAULT);
    uv_loop_close(&T.loop);
    for (int i = 0; i < T.n; i++)
        json_decref(T.recs[i].last);
    TY_AUTOFREE char *cmd = ty_asprintf("rm -rf %s", T.dir);
    if (system(cmd) != 0) {
    }
}

/* A unique uid per test process: cgroups are named by uid and tests run in parallel. */
static char *uid_for(const char *name) { return ty_asprintf("%s-%d", name, (int)getpid()); }

static json_t *make_pod(const char *name, const char *uid, const char *policy, const char *ctrs)
{
    json_error_t je;
    json_t *c = json_loads(ctrs, 0, &je);
    cr_assert(c, "bad test json: %s", je.text);
    return json_pack("{s:{s:s, s:s, s:s}, s:{s:s, s:o}}", "metadata", "name", name, "namespace",
                     "default", "uid", uid, "spec", "restartPolicy", policy, "containers", c);
}

static void start(json_t *pod)
{
    ty_error err = TY_ERROR_INIT;
    int rc = ty_runtime_start_pod(T.rt, pod, "127.16.0.9", &err);
    cr_assert_eq(rc, 0, "%s", err.msg);
    json_decref(pod);
}

static const char *phase_of(const char *uid)
{
    record *r = rec(uid);
    return r->last ? json_string_value(json_object_get(r->last, "phase")) : "";
}

typedef struct want {
    const char *uid;
    const char *phase;
} want;

static bool has_phase(void *arg)
{
    want *w = arg;
    return strcmp(phase_of(w->uid), w->phase) == 0;
}

static void wait_phase(const char *uid, const char *phase, int ms)
{
    want w = {uid, phase};
    cr_assert(run_until(has_phase, &w, ms), "pod %s: phase %s, want %s", uid, phase_of(uid),
              phase);
}

static bool is_gone(void *arg) { return rec(arg)->gone; }

static void stop_and_wait(const char *uid, int64_t grace)
{
    ty_runtime_stop_pod(T.rt, uid, grace);
    cr_assert(run_until(is_gone, (void *)uid, 15000), "pod %s not gone", uid);
}

static json_t *cstatus(const char *uid, const char *name)
{
    json_t *cs;
    size_t i;
    json_array_foreach(json_object_get(rec(uid)->last, "containerStatuses"), i, cs) {
        if (strcmp(json_string_value(json_object_get(cs, "name")), name) == 0)
            return cs;
    }
    cr_assert_fail("no status for container %s", name);
    return NULL;
}

static json_t *terminated(const char *uid, const char *name)
{
    json_t *t = json_object_get(json_object_get(cstatus(uid, name), "state"), "terminated");
    cr_assert(t, "container %s is not terminated", name);
    return t;
}

static json_t *waiting(const char *uid, const char *name)
{
    json_t *w = json_object_get(json_object_get(cstatus(uid, name), "state"), "waiting");
    cr_assert(w, "container %s is not waiting", name);
    return w;
}

/* The pod's first container waits with CreateContainerConfigError. */
static bool config_error(void *arg)
{
    json_t *c = json_array_get(json_object_get(rec(arg)->last, "containerStatuses"), 0);
    const char *r = json_string_value(
        json_object_get(json_object_get(json_object_get(c, "state"), "waiting"), "reason"));
    return r && strcmp(r, "CreateContainerConfigError") == 0;
}

static char *read_log(const char *uid, const char *ctr, int restart)
{
    TY_AUTOFREE char *p = ty_runtime_log_path(T.rt, uid, ctr, restart);
    cr_assert(p);
    ty_buf b = TY_BUF_INIT;
    cr_assert_eq(ty_buf_read_file(&b, p), 0, "read %s", p);
    return ty_buf_steal(&b);
}

/* Log lines without the CRI prefix, after checking that prefix on every line. */
static char *log_text(const char *uid, const char *ctr, int restart)
{
    TY_AUTOFREE char *raw = read_log(uid, ctr, restart);
    regex_t re;
    cr_assert_eq(regcomp(&re,
                         "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{9}Z "
                         "(stdout|stderr) [FP] ",
                         REG_EXTENDED),
                 0);
    ty_buf out = TY_BUF_INIT;
    char *save = NULL;
    for (char *l = strtok_r(raw, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        regmatch_t m;
        cr_assert_eq(regexec(&re, l, 1, &m, 0), 0, "bad CRI log line: %s", l);
        ty_buf_adds(&out, l + m.rm_eo);
        ty_buf_addc(&out, '\n');
    }
    regfree(&re);
    return ty_buf_steal(&out);
}

static bool restarted(void *arg)
{
    json_t *c = json_array_get(json_object_get(rec(arg)->last, "containerStatuses"), 0);
    return json_integer_value(json_object_get(c, "restartCount")) >= 2;
}

static bool up(void *arg)
{
    TY_AUTOFREE char *p = ty_runtime_log_path(T.rt, arg, "c", 0);
    ty_buf buf = TY_BUF_INIT;
    bool ok = p && ty_buf_read_file(&buf, p) == 0 && strstr(buf.data, " up\n");
    ty_buf_free(&buf);
    return ok;
}

static bool logged(void *arg)
{
    TY_AUTOFREE char *p = ty_runtime_log_path(T.rt, arg, "c", 0);
    ty_buf buf = TY_BUF_INIT;
    bool ok = p && ty_buf_read_file(&buf, p) == 0 && strchr(buf.data, '\n');
    ty_buf_free(&buf);
    return ok;
}

/* ---- exit codes, phases ------------------------------------------------------------------- */

Test(runtime, exit_codes_and_phase)
{
    setup_rt(0, true);
    TY_AUTOFREE char *a = uid_for("exits");
    start(make_pod("exits", a, "Never",
                   "[{\"name\":\"ok\",\"command\":[\"true\"]},"
                   " {\"name\":\"bad\",\"command\":[\"sh\",\"-c\",\"exit 3\"]},"
                   " {\"name\":\"sig\",\"command\":[\"sh\",\"-c\",\"kill -USR1 $$$$\"]}]"));
    wait_phase(a, "Failed", 10000);
    cr_assert_eq(json_integer_value(json_object_get(terminated(a, "ok"), "exitCode")), 0);
    cr_assert_str_eq(json_string_value(json_object_get(terminated(a, "ok"), "reason")),
                     "Completed");
    cr_assert_eq(json_integer_value(json_object_get(terminated(a, "bad"), "exitCode")), 3);
    cr_assert_str_eq(json_string_value(json_object_get(terminated(a, "bad"), "reason")), "Error");
    cr_assert_eq(json_integer_value(json_object_get(terminated(a, "sig"), "exitCode")),
                 128 + SIGUSR1);
    cr_assert_eq(json_integer_value(json_object_get(terminated(a, "sig"), "signal")), SIGUSR1);
    cr_assert_eq(json_integer_value(json_object_get(cstatus(a, "bad"), "restartCount")), 0);
    const char *msg = json_string_value(json_object_get(rec(a)->last, "message"));
    cr_assert(strstr(msg, "image is recorded"), "%s", msg);

    TY_AUTOFREE char *b = uid_for("fine");
    start(make_pod("fine", b, "Never", "[{\"name\":\"c\",\"command\":[\"true\"]}]"));
    wait_phase(b, "Succeeded", 10000);
    /* no command: a local pod has no image entrypoint */
    TY_AUTOFREE char *c = uid_for("nocmd");
    start(make_pod("nocmd", c, "Never", "[{\"name\":\"c\",\"image\":\"busybox\"}]"));
    cr_assert(run_until(config_error, c, 10000), "no CreateContainerConfigError");
    cr_assert_str_eq(phase_of(c), "Pending");
    cr_assert(strstr(json_string_value(json_object_get(waiting(c, "c"), "message")),
                     "has no command"));
    TY_AUTOFREE char *d = uid_for("noexec");
    start(make_pod("noexec", d, "Never", "[{\"name\":\"c\",\"command\":[\"/nonexistent/x\"]}]"));
    wait_phase(d, "Failed", 10000);
    cr_assert_str_eq(json_string_value(json_object_get(terminated(d, "c"), "message")),
                     "failed to start container \"c\": exec: \"/nonexistent/x\": "
                     "no such file or directory");
    cr_assert_eq(json_integer_value(json_object_get(terminated(d, "c"), "exitCode")), 128);
    TY_AUTOFREE char *f = uid_for("nopath");
    start(make_pod("nopath", f, "Never", "[{\"name\":\"c\",\"command\":[\"no-such-cmd-x\"]}]"));
    wait_phase(f, "Failed", 10000);
    cr_assert_str_eq(json_string_value(json_object_get(terminated(f, "c"), "message")),
                     "failed to start container \"c\": exec: \"no-such-cmd-x\": "
                     "executable file not found in $PATH");
    TY_AUTOFREE char *g = uid_for("nowd");
    start(make_pod("nowd", g, "Never",
                   "[{\"name\":\"c\",\"command\":[\"true\"],\"workingDir\":\"/no/dir\"}]"));
    wait_phase(g, "Failed", 10000);
    cr_assert_str_eq(json_string_value(json_object_get(terminated(g, "c"), "message")),
                     "failed to start container \"c\": chdir to workingDir \"/no/dir\": "
                     "no such file or directory");
    stop_and_wait(a, 1);
    stop_and_wait(b, 1);
    stop_and_wait(c, 1); /* a config error waits until the pod is stopped */
    cr_assert_str_eq(phase_of(b), "Succeeded");
    teardown_rt();
}

Test(runtime, start_errors_change_nothing)
{
    setup_rt(0, true);
    ty_error err = TY_ERROR_INIT;
    json_t *bad = json_pack("{s:{s:s}}", "metadata", "name", "x");
    cr_assert_lt(ty_runtime_start_pod(T.rt, bad, NULL, &err), 0);
    cr_assert(strstr(err.msg, "uid"), "%s", err.msg);
    json_decref(bad);
    ty_error_clear(&err);
    TY_AUTOFREE char *a = uid_for("dup");
    json_t *p = make_pod("dup", a, "Never", "[{\"name\":\"c\",\"command\":[\"sleep\",\"30\"]}]");
    cr_assert_eq(ty_runtime_start_pod(T.rt, p, NULL, &err), 0);
    cr_assert_lt(ty_runtime_start_pod(T.rt, p, NULL, &err), 0);
    cr_assert(strstr(err.msg, "already running"), "%s", err.msg);
    ty_error_clear(&err);
    json_decref(p);
    wait_phase(a, "Running", 10000);
    stop_and_wait(a, 0);
    teardown_rt();
}

/* ---- env, $(VAR), workingDir, logs ----------------------------------------------------------- */

Test(runtime, env_expansion_workdir_logs)
{
    setup_rt(0, true);
    TY_AUTOFREE char *a = uid_for("envpod");
    TY_AUTOFREE char *ctrs = ty_asprintf(
        "[{\"name\":\"args\",\"command\":[\"/bin/echo\",\"$(A)\",\"$$(A)\",\"$(NOPE)\",\"x$\"],"
        "  \"args\":[\"$(B)\",\"$(POD_NAME)\"],"
        "  \"env\":[{\"name\":\"A\",\"value\":\"hello\"},{\"name\":\"B\",\"value\":\"$(A)-world\"}]},"
        " {\"name\":\"shell\",\"workingDir\":\"/usr\",\"command\":[\"sh\",\"-c\","
        "   \"echo \\\"$A|$POD_IP|$HOSTNAME|[$CUDA_VISIBLE_DEVICES]|$MYUID|$MYIP|$NODE|$(pwd)\\\"; "
        "echo to-stderr >&2; printf partial\"],"
        "  \"env\":[{\"name\":\"A\",\"value\":\"$(POD_NAMESPACE)\"},"
        "   {\"name\":\"MYUID\",\"valueFrom\":{\"fieldRef\":{\"fieldPath\":\"metadata.uid\"}}},"
        "   {\"name\":\"MYIP\",\"valueFrom\":{\"fieldRef\":{\"fieldPath\":\"status.podIP\"}}},"
        "   {\"name\":\"NODE\",\"valueFrom\":{\"fieldRef\":{\"fieldPath\":\"spec.nodeName\"}}}]},"
        " {\"name\":\"defwd\",\"command\":[\"pwd\"]}]");
    start(make_pod("envpod", a, "Never", ctrs));
    wait_phase(a, "Succeeded", 10000);
    TY_AUTOFREE char *l1 = log_text(a, "args", 0);
    cr_assert_str_eq(l1, "hello $(A) $(NOPE) x$ hello-world envpod\n");
    TY_AUTOFREE char *l2 = log_text(a, "shell", 0);
    /* stdout and stderr are separate pipes: only each stream's own order is defined */
    TY_AUTOFREE char *expect = ty_asprintf(
        "default|127.16.0.9|envpod|[]|%s|127.16.0.9|node-a|/usr\n", a);
    cr_assert(strncmp(l2, expect, strlen(expect)) == 0, "%s", l2);
    cr_assert(strstr(l2, "\nto-stderr\n") && strstr(l2, "\npartial\n"), "%s", l2);
    TY_AUTOFREE char *raw = read_log(a, "shell", 0);
    cr_assert(strstr(raw, " stderr F to-stderr\n"), "%s", raw);
    cr_assert(strstr(raw, " stdout F partial\n"), "%s", raw);
    TY_AUTOFREE char *l3 = log_text(a, "defwd", 0);
    cr_assert_str_eq(l3, "/tmp\n");
    stop_and_wait(a, 1);
    /* logs survive the pod */
    TY_AUTOFREE char *again = log_text(a, "args", 0);
    cr_assert_str_eq(again, l1);
    teardown_rt();
}

Test(runtime, long_lines_are_split_partial)
{
    setup_rt(0, true);
    TY_AUTOFREE char *a = uid_for("longline");
    start(make_pod("longline", a, "Never",
                   "[{\"name\":\"c\",\"command\":[\"sh\",\"-c\","
                   "\"head -c 40000 /dev/zero | tr '\\\\0' x; echo; echo short\"]}]"));
    wait_phase(a, "Succeeded", 10000);
    TY_AUTOFREE char *raw = read_log(a, "c", 0);
    int p = 0, f = 0;
    for (char *s = raw; (s = strstr(s, " stdout ")); s++)
        s[8] == 'P' ? p++ : f++;
    cr_assert_eq(p, 2, "%d partial records", p);
    cr_assert_eq(f, 2);
    TY_AUTOFREE char *txt = log_text(a, "c", 0);
    cr_assert_eq(strlen(txt), 40000 + 3 + 6); /* three records joined by \n + "short\n" */
    stop_and_wait(a, 1);
    teardown_rt();
}

/* ---- restarts -------------------------------------------------------------------------------- */

Test(runtime, restart_with_backoff)
{
    setenv("TRAINYARD_RESTART_BACKOFF_MS", "100", 1);
    setup_rt(0, true);
    TY_AUTOFREE char *a = uid_for("crashy");
    TY_AUTOFREE char *ctrs = ty_asprintf(
        "[{\"name\":\"c\",\"command\":[\"sh\",\"-c\",\"n=$(ls %s/marks | wc -l); "
        "touch %s/marks/run$n; echo run $n; [ $n -ge 2 ] && exit 0; exit 1\"]}]",
        T.dir, T.dir);
    TY_AUTOFREE char *marks = ty_asprintf("%s/marks", T.dir);
    cr_assert_eq(mkdir(marks, 0755), 0);
    int64_t t0 = ty_time_mono_ns();
    start(make_pod("crashy", a, "OnFailure", ctrs));
    wait_phase(a, "Succeeded", 15000);
    int64_t ms = (ty_time_mono_ns() - t0) / 1000000;
    cr_assert_geq(ms, 100 + 200, "two back-offs (100 + 200 ms) took only %lld ms", (long long)ms);
    json_t *cs = cstatus(a, "c");
    cr_assert_eq(json_integer_value(json_object_get(cs, "restartCount")), 2);
    json_t *last = json_object_get(json_object_get(cs, "lastState"), "terminated");
    cr_assert_eq(json_integer_value(json_object_get(last, "exitCode")), 1);
    for (int i = 0; i < 3; i++) {
        TY_AUTOFREE char *txt = log_text(a, "c", i);
        TY_AUTOFREE char *w = ty_asprintf("run %d\n", i);
        cr_assert_str_eq(txt, w);
    }
    stop_and_wait(a, 1);
    unsetenv("TRAINYARD_RESTART_BACKOFF_MS");

    /* Never: no restart; Always: a clean exit restarts too */
    setenv("TRAINYARD_RESTART_BACKOFF_MS", "20", 1);
    teardown_rt();
    setup_rt(0, true);
    TY_AUTOFREE char *b = uid_for("always");
    start(make_pod("always", b, "Always", "[{\"name\":\"c\",\"command\":[\"true\"]}]"));
    cr_assert(run_until(restarted, b, 10000));
    cr_assert_str_eq(phase_of(b), "Running");
    stop_and_wait(b, 1);
    unsetenv("TRAINYARD_RESTART_BACKOFF_MS");
    teardown_rt();
}

Test(runtime, init_containers_run_first_in_order)
{
    setup_rt(0, true);
    TY_AUTOFREE char *a = uid_for("inits");
    TY_AUTOFREE char *f = ty_asprintf("%s/order", T.dir);
    TY_AUTOFREE char *ctrs = ty_asprintf(
        "[{\"name\":\"main\",\"command\":[\"sh\",\"-c\",\"echo main >> %s\"]}]", f);
    json_t *pod = make_pod("inits", a, "Never", ctrs);
    json_t *init = json_array();
    for (int i = 0; i < 2; i++) {
        TY_AUTOFREE char *cmd = ty_asprintf("sleep 0.0%d; echo init%d >> %s", 5 - i * 4, i, f);
        json_array_append_new(init, json_pack("{s:s, s:[s,s,s]}", "name", i ? "i1" : "i0",
                                              "command", "sh", "-c", cmd));
    }
    json_object_set_new(json_object_get(pod, "spec"), "initContainers", init);
    start(pod);
    wait_phase(a, "Succeeded", 10000);
    ty_buf b = TY_BUF_INIT;
    cr_assert_eq(ty_buf_read_file(&b, f), 0);
    cr_assert_str_eq(b.data, "init0\ninit1\nmain\n");
    ty_buf_free(&b);
    stop_and_wait(a, 1);

    /* a failing init container under Never fails the pod; main never runs */
    TY_AUTOFREE char *c = uid_for("initfail");
    json_t *pod2 = make_pod("initfail", c, "Never", "[{\"name\":\"main\",\"command\":[\"true\"]}]");
    json_object_set_new(json_object_get(pod2, "spec"), "initContainers",
                        json_pack("[{s:s, s:[s]}]", "name", "i", "command", "false"));
    start(pod2);
    wait_phase(c, "Failed", 10000);
    json_t *w = json_object_get(json_object_get(cstatus(c, "main"), "state"), "waiting");
    cr_assert_str_eq(json_string_value(json_object_get(w, "reason")), "PodInitializing");
    stop_and_wait(c, 1);
    teardown_rt();
}

/* ---- stop ------------------------------------------------------------------------------------ */

Test(runtime, graceful_stop_and_kill_after_grace)
{
    setup_rt(0, true);
    TY_AUTOFREE char *a = uid_for("polite");
    TY_AUTOFREE char *b = uid_for("stubborn");
    start(make_pod("polite", a, "Always",
                   "[{\"name\":\"c\",\"command\":[\"sh\",\"-c\","
                   "\"trap 'echo got-term; exit 0' TERM; echo up; while :; do sleep 0.05; done\"]}]"));
    start(make_pod("stubborn", b, "Always",
                   "[{\"name\":\"c\",\"command\":[\"sh\",\"-c\","
                   "\"trap '' TERM; echo up; while :; do sleep 0.05; done\"]}]"));
    /* wait until both shells installed their traps (they print "up" after) */
    cr_assert(run_until(up, a, 10000));
    cr_assert(run_until(up, b, 10000));
    int64_t t0 = ty_time_mono_ns();
    stop_and_wait(a, 10);
    int64_t polite_ms = (ty_time_mono_ns() - t0) / 1000000;
    cr_assert_lt(polite_ms, 5000, "a TERM-handling pod took %lld ms", (long long)polite_ms);
    cr_assert_eq(json_integer_value(json_object_get(terminated(a, "c"), "exitCode")), 0);
    TY_AUTOFREE char *la = log_text(a, "c", 0);
    cr_assert(strstr(la, "got-term"), "%s", la);

    t0 = ty_time_mono_ns();
    stop_and_wait(b, 1);
    int64_t stubborn_ms = (ty_time_mono_ns() - t0) / 1000000;
    cr_assert_geq(stubborn_ms, 900, "killed before the grace period: %lld ms",
                  (long long)stubborn_ms);
    cr_assert_eq(json_integer_value(json_object_get(terminated(b, "c"), "exitCode")), 137);
    cr_assert_eq(json_integer_value(json_object_get(terminated(b, "c"), "signal")), SIGKILL);
    teardown_rt();
}

/* ---- nothing left behind ----------------------------------------------------------------------- */

/* Processes whose environment carries MARK=<mark>: the container and all its descendants. */
static int count_marked(const char *mark)
{
    TY_AUTOFREE char *needle = ty_asprintf("TY_TEST_MARK=%s", mark);
    size_t nl = strlen(needle) + 1;
    int n = 0;
    DIR *d = opendir("/proc");
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] < '0' || de->d_name[0] > '9')
            continue;
        char path[300];
        snprintf(path, sizeof(path), "/proc/%s/environ", de->d_name);
        ty_buf b = TY_BUF_INIT;
        if (ty_buf_read_file(&b, path) == 0) {
            for (size_t off = 0; off < b.len; off += strlen(b.data + off) + 1)
                if (memcmp(b.data + off, needle, nl) == 0) {
                    /* zombies keep no environ, so a match is a live process */
                    n++;
                    break;
                }
        }
        ty_buf_free(&b);
    }
    closedir(d);
    return n;
}

typedef struct markwant {
    const char *mark;
    int atleast, atmost;
} markwant;

static bool marked(void *arg)
{
    markwant *m = arg;
    int n = count_marked(m->mark);
    return n >= m->atleast && n <= m->atmost;
}

/* marked() on two checks 20 ms apart: container d's subshell lives a moment beside the six
 * processes that stay, so one count may catch it (or the setsid'd sleep not yet started). */
static bool marked_steadily(void *arg)
{
    if (!marked(arg))
        return false;
    usleep(20000);
    return marked(arg);
}

static json_t *family_pod(const char *name, const char *uid)
{
    TY_AUTOFREE char *ctrs = ty_asprintf(
        "[{\"name\":\"c\",\"command\":[\"sh\",\"-c\",\"sleep 1000 & sleep 1000 & wait\"],"
        "  \"env\":[{\"name\":\"TY_TEST_MARK\",\"value\":\"%s\"}]},"
        " {\"name\":\"d\",\"command\":[\"sh\",\"-c\",\"(setsid sleep 1000 &); sleep 1000; echo end\"],"
        "  \"env\":[{\"name\":\"TY_TEST_MARK\",\"value\":\"%s\"}]}]",
        uid, uid);
    return make_pod(name, uid, "Always", ctrs);
}

static pid_t shim_pid(const char *uid)
{
    TY_AUTOFREE char *p = ty_asprintf("%s/pods/default_orphans_%s/state.json", T.dir, uid);
    json_t *st = json_load_file(p, 0, NULL);
    cr_assert(st, "no %s", p);
    pid_t pid = (pid_t)json_integer_value(json_object_get(st, "shimPid"));
    json_decref(st);
    return pid;
}

Test(runtime, no_orphans_after_shim_sigkill)
{
    setup_rt(0, true);
    TY_AUTOFREE char *a = uid_for("orphans");
    start(family_pod("orphans", a));
    /* sh + 2 sleeps, sh + a sleep + a setsid'd sleep (escaped its group) */
    markwant w = {a, 6, 6};
    cr_assert(run_until(marked_steadily, &w, 10000), "%d marked processes", count_marked(a));
    pid_t shim = shim_pid(a);
    cr_assert_gt(shim, 1);
    cr_assert_eq(kill(shim, SIGKILL), 0);
    cr_assert(run_until(is_gone, a, 10000));
    markwant none = {a, 0, 0};
    cr_assert(run_until(marked, &none, 5000), "%d processes left behind", count_marked(a));
    cr_assert_str_eq(phase_of(a), "Failed");
    cr_assert(strstr(json_string_value(json_object_get(rec(a)->last, "message")), "signal 9"));
    teardown_rt();
}

Test(runtime, no_orphans_after_parent_death)
{
    TY_AUTOFREE char *a = uid_for("orphans");
    char dir[] = "/tmp/ty-rt-XXXXXX";
    cr_assert(mkdtemp(dir));
    pid_t parent = getpid();
    pid_t child = fork();
    cr_assert_geq(child, 0);
    if (child == 0) {
        /* the stand-in for `trainyard run`: starts the pod and runs its loop until killed, at
         * the latest when this test's process ends (an assertion that fails before the kill
         * below would otherwise leave it, its shim and its pod running) */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(1);
        setup_rt_in(dir, 0, true);
        start(family_pod("orphans", a));
        for (;;)
            uv_run(&T.loop, UV_RUN_ONCE);
    }
    markwant w = {a, 6, 6};
    int64_t end = ty_time_mono_ns() + 10000000000LL;
    bool all_there;
    while (!(all_there = marked_steadily(&w)) && ty_time_mono_ns() < end)
        usleep(10000);
    cr_assert(all_there, "%d marked processes", count_marked(a));
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    markwant none = {a, 0, 0};
    end = ty_time_mono_ns() + 5000000000LL;
    while (!marked(&none) && ty_time_mono_ns() < end)
        usleep(10000);
    cr_assert_eq(count_marked(a), 0, "processes left behind after the parent died");
    TY_AUTOFREE char *cmd = ty_asprintf("rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

/* ---- limits ----------------------------------------------------------------------------------- */

Test(runtime, memory_limit_is_enforced)
{
    setup_rt(0, true);
    TY_AUTOFREE char *a = uid_for("hog");
    start(make_pod("hog", a, "Never",
                   "[{\"name\":\"c\",\"command\":[\"dd\",\"if=/dev/zero\",\"of=/dev/null\","
                   "\"bs=256M\",\"count=1\"],\"resources\":{\"limits\":{\"memory\":\"32Mi\","
                   "\"cpu\":\"1\"}}}]"));
    wait_phase(a, "Failed", 15000);
    json_t *t = terminated(a, "c");
    const char *msg = json_string_value(json_object_get(rec(a)->last, "message"));
    cr_assert(strstr(msg, "memory 32Mi"), "%s", msg);
    if (strstr(msg, "cgroup")) {
        cr_assert_str_eq(json_string_value(json_object_get(t, "reason")), "OOMKilled");
        cr_assert_eq(json_integer_value(json_object_get(t, "exitCode")), 137);
        cr_assert(strstr(msg, "cpu 1000m"), "%s", msg);
    } else {
        cr_assert_neq(json_integer_value(json_object_get(t, "exitCode")), 0);
    }
    /* the same program within its limit succeeds */
    TY_AUTOFREE char *b = uid_for("fits");
    start(make_pod("fits", b, "Never",
                   "[{\"name\":\"c\",\"command\":[\"dd\",\"if=/dev/zero\",\"of=/dev/null\","
                   "\"bs=1M\",\"count=1\"],\"resources\":{\"limits\":{\"memory\":\"64Mi\"}}}]"));
    wait_phase(b, "Succeeded", 15000);
    stop_and_wait(a, 1);
    stop_and_wait(b, 1);
    teardown_rt();
}

Test(runtime, gpus_are_never_shared)
{
    setup_rt(2, true);
    cr_assert_eq(ty_runtime_gpu_count(T.rt), 2);
    const char *gpu1 = "[{\"name\":\"c\",\"command\":[\"sh\",\"-c\","
                       "\"echo \\\"[$CUDA_VISIBLE_DEVICES][$NVIDIA_VISIBLE_DEVICES]\\\"; sleep 30\"],"
                       "\"resources\":{\"limits\":{\"nvidia.com/gpu\":1}}}]";
    TY_AUTOFREE char *a = uid_for("g1");
    TY_AUTOFREE char *b = uid_for("g2");
    TY_AUTOFREE char *c = uid_for("g3");
    TY_AUTOFREE char *d = uid_for("nog");
    start(make_pod("g1", a, "Never", gpu1));
    start(make_pod("g2", b, "Never", gpu1));
    cr_assert_eq(ty_runtime_gpus_free(T.rt), 0);
    ty_error err = TY_ERROR_INIT;
    json_t *p3 = make_pod("g3", c, "Never", gpu1);
    cr_assert_lt(ty_runtime_start_pod(T.rt, p3, NULL, &err), 0);
    cr_assert(strstr(err.msg, "nvidia.com/gpu"), "%s", err.msg);
    ty_error_clear(&err);
    start(make_pod("nog", d, "Never",
                   "[{\"name\":\"c\",\"command\":[\"sh\",\"-c\","
                   "\"echo \\\"[$CUDA_VISIBLE_DEVICES][$NVIDIA_VISIBLE_DEVICES]\\\"\"]}]"));
    cr_assert(run_until(logged, a, 10000));
    cr_assert(run_until(logged, b, 10000));
    cr_assert(run_until(logged, d, 10000));
    TY_AUTOFREE char *la = log_text(a, "c", 0);
    TY_AUTOFREE char *lb = log_text(b, "c", 0);
    TY_AUTOFREE char *ld = log_text(d, "c", 0);
    cr_assert_str_eq(la, "[0][0]\n");
    cr_assert_str_eq(lb, "[1][1]\n");
    cr_assert_str_eq(ld, "[][void]\n");
    stop_and_wait(a, 0);
    cr_assert_eq(ty_runtime_gpus_free(T.rt), 1);
    /* the freed device goes to the next pod */
    cr_assert_eq(ty_runtime_start_pod(T.rt, p3, NULL, &err), 0, "%s", err.msg);
    json_decref(p3);
    cr_assert(run_until(logged, c, 10000));
    TY_AUTOFREE char *lc = log_text(c, "c", 0);
    cr_assert_str_eq(lc, "[0][0]\n");
    teardown_rt();
}

/* ---- start latency ------------------------------------------------------------------------------ */

static bool running(void *arg) { return strcmp(phase_of(arg), "Running") == 0; }

Test(runtime, start_to_exec_is_fast)
{
    setup_rt(0, true);
    int64_t best = INT64_MAX;
    for (int i = 0; i < 5; i++) {
        TY_AUTOFREE char *name = ty_asprintf("fast%d", i);
        TY_AUTOFREE char *a = uid_for(name);
        int64_t t0 = ty_time_mono_ns();
        start(make_pod(name, a, "Never", "[{\"name\":\"c\",\"command\":[\"sleep\",\"30\"]}]"));
        cr_assert(run_until(running, a, 10000));
        int64_t us = (ty_time_mono_ns() - t0) / 1000;
        if (us < best)
            best = us;
        stop_and_wait(a, 0);
    }
    /* start_pod -> shim -> fork -> exec -> "Running" back on our loop */
    fprintf(stderr, "runtime: start_pod to container exec reported: best %lld us\n",
            (long long)best);
    cr_assert_lt(best, 200000, "start to exec took %lld us", (long long)best);
    teardown_rt();
}

/* ---- helpers: expansion, quantities ----------------------------------------------------------- */

static const char *lk(void *ctx, const char *name, size_t len)
{
    (void)ctx;
    if (len == 3 && strncmp(name, "VAR", 3) == 0)
        return "v";
    return NULL;
}

Test(runtime, expand_rules)
{
    const char *cases[][2] = {
        {"$(VAR)", "v"},         {"a$(VAR)b", "avb"},     {"$$(VAR)", "$(VAR)"},
        {"$(UNSET)", "$(UNSET)"}, {"$(VAR", "$(VAR"},      {"$", "$"},
        {"$$", "$"},             {"x$y", "x$y"},          {"$$$(VAR)", "$v"},
        {"", ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        TY_AUTOFREE char *got = ty_rt_expand(cases[i][0], lk, NULL);
        cr_assert_str_eq(got, cases[i][1], "expand %s", cases[i][0]);
    }
}

/* ---- ipam ------------------------------------------------------------------------------------ */

Test(ipam, unique_stable_and_bindable)
{
    ty_ipam *ip = ty_ipam_new();
    char a[TY_IPAM_ADDR_MAX], b[TY_IPAM_ADDR_MAX];
    cr_assert_eq(ty_ipam_acquire(ip, "ns/a", a, NULL), 0);
    cr_assert_str_eq(a, "127.16.0.1");
    cr_assert_eq(ty_ipam_acquire(ip, "ns/a", b, NULL), 0);
    cr_assert_str_eq(a, b, "same key, same address");
    /* 1000 keys: distinct, in the pool, never .0 or .255 */
    ty_map seen = TY_MAP_INIT;
    for (int i = 0; i < 1000; i++) {
        char key[32], addr[TY_IPAM_ADDR_MAX];
        snprintf(key, sizeof(key), "ns/p%d", i);
        cr_assert_eq(ty_ipam_acquire(ip, key, addr, NULL), 0);
        cr_assert(!ty_map_gets(&seen, addr), "%s handed out twice", addr);
        ty_map_puts(&seen, addr, (void *)1);
        unsigned o1, o2, o3, o4;
        cr_assert_eq(sscanf(addr, "%u.%u.%u.%u", &o1, &o2, &o3, &o4), 4);
        cr_assert(o1 == 127 && o2 >= 16 && o2 <= 31 && o4 != 0 && o4 != 255, "%s", addr);
    }
    cr_assert(!ty_map_gets(&seen, a));
    ty_map_free(&seen);
    ty_ipam_release(ip, "ns/a");
    cr_assert(!ty_ipam_lookup(ip, "ns/a", NULL));
    cr_assert_eq(ty_ipam_acquire(ip, "ns/a", b, NULL), 0);
    cr_assert_str_neq(a, b, "a released address is not reused right away");
    ty_ipam_release(ip, "unknown"); /* ignored */
    ty_error err = TY_ERROR_INIT;
    cr_assert_lt(ty_ipam_reserve(ip, "ns/other", b, &err), 0);
    ty_error_clear(&err);
    cr_assert_eq(ty_ipam_reserve(ip, "ns/x", "127.31.255.254", NULL), 0);
    cr_assert_lt(ty_ipam_reserve(ip, "ns/y", "127.31.255.255", &err), 0);
    ty_error_clear(&err);
    cr_assert_lt(ty_ipam_reserve(ip, "ns/y", "10.0.0.1", &err), 0);
    ty_error_clear(&err);

    /* Linux routes 127/8 to lo: a pod address can be bound with no setup */
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    inet_pton(AF_INET, b, &sa.sin_addr);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "bind %s", b);
    cr_assert_eq(listen(fd, 1), 0);
    close(fd);
    ty_ipam_free(ip);
}

/* ---- volumes, state file ---------------------------------------------------------------------- */

Test(runtime, volumes_hostpath_and_emptydir)
{
    setup_rt(0, true);
    TY_AUTOFREE char *a = uid_for("vols");
    TY_AUTOFREE char *host = ty_asprintf("%s/host", T.dir); /* DirectoryOrCreate makes it */
    TY_AUTOFREE char *mnt = ty_asprintf("%s/mnt", T.dir);   /* created as the mount point */
    TY_AUTOFREE char *same = ty_asprintf("%s/same", T.dir);
    TY_AUTOFREE char *ctrs = ty_asprintf(
        "[{\"name\":\"w\",\"command\":[\"sh\",\"-c\",\"echo hi > %s/f && echo e > /scratch-%s/g "
        "&& cat /scratch-%s/g && echo s > %s/h\"],"
        "  \"volumeMounts\":[{\"name\":\"h\",\"mountPath\":\"%s\"},"
        "   {\"name\":\"e\",\"mountPath\":\"/scratch-%s\"},{\"name\":\"s\",\"mountPath\":\"%s\"}]}]",
        mnt, a, a, same, mnt, a, same);
    json_t *pod = make_pod("vols", a, "Never", ctrs);
    json_object_set_new(json_object_get(pod, "spec"), "volumes",
                        json_pack("[{s:s, s:{s:s, s:s}}, {s:s, s:{}}, {s:s, s:{s:s, s:s}}]",
                                  "name", "h", "hostPath", "path", host, "type",
                                  "DirectoryOrCreate", "name", "e", "emptyDir", "name", "s",
                                  "hostPath", "path", same, "type", "DirectoryOrCreate"));
    start(pod);
    wait_phase(a, "Succeeded", 10000);
    TY_AUTOFREE char *out = log_text(a, "w", 0);
    cr_assert_str_eq(out, "e\n");
    TY_AUTOFREE char *f = ty_asprintf("%s/f", host);
    TY_AUTOFREE char *onmnt = ty_asprintf("%s/f", mnt);
    TY_AUTOFREE char *h = ty_asprintf("%s/h", same);
    cr_assert_eq(access(f, F_OK), 0, "the write went to the hostPath");
    cr_assert_neq(access(onmnt, F_OK), 0, "the bind mount leaked to the host");
    cr_assert_eq(access(h, F_OK), 0, "mountPath == hostPath needs no mount");
    /* the mount point is created on the host (as kubelet's runtimes do), the mount is not */
    TY_AUTOFREE char *scratch = ty_asprintf("/scratch-%s", a);
    TY_AUTOFREE char *sg = ty_asprintf("/scratch-%s/g", a);
    cr_assert_neq(access(sg, F_OK), 0, "the emptyDir mount leaked to the host");
    /* the emptyDir lives in the pod dir */
    TY_AUTOFREE char *g = ty_asprintf("%s/pods/default_vols_%s/volumes/e/g", T.dir, a);
    cr_assert_eq(access(g, F_OK), 0);
    stop_and_wait(a, 1);
    rmdir(scratch);
    teardown_rt();
}

/* A subPath that climbs out of its volume never reaches the host, whatever validation let
 * through: the container does not start and nothing is created outside. */
Test(runtime, subpath_out_of_the_volume_is_refused)
{
    setup_rt(0, true);
    TY_AUTOFREE char *a = uid_for("climb");
    TY_AUTOFREE char *ctrs = ty_asprintf(
        "[{\"name\":\"c\",\"command\":[\"true\"],\"volumeMounts\":"
        "[{\"name\":\"e\",\"mountPath\":\"/climb-%s\",\"subPath\":\"../../../../out-%s\"}]}]",
        a, a);
    json_t *pod = make_pod("climb", a, "Never", ctrs);
    json_object_set_new(json_object_get(pod, "spec"), "volumes",
                        json_pack("[{s:s, s:{}}]", "name", "e", "emptyDir"));
    start(pod);
    wait_phase(a, "Failed", 10000);
    const char *msg = json_string_value(json_object_get(terminated(a, "c"), "message"));
    cr_assert(msg && strstr(msg, "must not contain '..'"), "%s", msg ? msg : "(none)");
    TY_AUTOFREE char *out = ty_asprintf("%s/out-%s", T.dir, a);
    cr_assert_neq(access(out, F_OK), 0, "the subPath was created outside its volume");
    stop_and_wait(a, 1);
    teardown_rt();
}

Test(runtime, state_file_records_pids_and_start_times)
{
    setup_rt(0, true);
    TY_AUTOFREE char *a = uid_for("state");
    start(make_pod("state", a, "Never", "[{\"name\":\"c\",\"command\":[\"sleep\",\"30\"]}]"));
    wait_phase(a, "Running", 10000);
    TY_AUTOFREE char *p = ty_asprintf("%s/pods/default_state_%s/state.json", T.dir, a);
    json_t *st = json_load_file(p, 0, NULL);
    cr_assert(st);
    json_t *c = json_array_get(json_object_get(st, "containers"), 0);
    int pid = (int)json_integer_value(json_object_get(c, "pid"));
    long long start_time = json_integer_value(json_object_get(c, "startTime"));
    cr_assert_gt(pid, 1);
    TY_AUTOFREE char *sp = ty_asprintf("/proc/%d/stat", pid);
    ty_buf b = TY_BUF_INIT;
    cr_assert_eq(ty_buf_read_file(&b, sp), 0);
    cr_assert(strstr(b.data, "(sleep)"), "%s", b.data);
    const char *q = strrchr(b.data, ')');
    for (int field = 2; q && field < 22; field++)
        q = strchr(q + 1, ' ');
    cr_assert(q);
    cr_assert_eq(strtoll(q + 1, NULL, 10), start_time);
    ty_buf_free(&b);
    cr_assert_gt(json_integer_value(json_object_get(st, "shimPid")), 1);
    json_decref(st);
    stop_and_wait(a, 0);
    teardown_rt();
}

/* ---- re-adoption after trainyard died ------------------------------------------------------- */

/* The stand-in for a server that gets `kill -9`ed: a child process runs a runtime whose pods
 * outlive it, starts `pod`, and runs its loop until killed. */
static pid_t server_with_pod(const char *dir, int gpus, json_t *pod)
{
    pid_t child = fork();
    cr_assert_geq(child, 0);
    if (child == 0) {
        setup_rt_in(dir, gpus, false);
        start(pod);
        for (;;)
            uv_run(&T.loop, UV_RUN_ONCE);
    }
    json_decref(pod);
    return child;
}

static json_t *state_in(const char *dir, const char *name, const char *uid)
{
    TY_AUTOFREE char *p = ty_asprintf("%s/pods/default_%s_%s/state.json", dir, name, uid);
    return json_load_file(p, 0, NULL);
}

/* Polls state.json (no runtime attached) until the first container is running (want_exit < 0:
 * returns its host pid) or has recorded an exit code (returns it). */
static int wait_state(const char *dir, const char *name, const char *uid, bool want_exit)
{
    int64_t end = ty_time_mono_ns() + 10000000000LL;
    while (ty_time_mono_ns() < end) {
        json_t *st = state_in(dir, name, uid);
        json_t *c = json_array_get(json_object_get(st, "containers"), 0);
        int v = -1;
        if (!want_exit && json_is_true(json_object_get(c, "running")))
            v = (int)json_integer_value(json_object_get(c, "pid"));
        if (want_exit && json_is_integer(json_object_get(c, "exitCode")))
            v = (int)json_integer_value(json_object_get(c, "exitCode"));
        json_decref(st);
        if (v >= 0)
            return v;
        usleep(10000);
    }
    cr_assert_fail("pod %s: state.json never showed the container %s", name,
                   want_exit ? "ended" : "running");
    return -1;
}

static void kill_server(pid_t child)
{
    cr_assert_eq(kill(child, SIGKILL), 0);
    cr_assert_eq(waitpid(child, NULL, 0), child);
}

static size_t log_size(const char *dir, const char *name, const char *uid)
{
    TY_AUTOFREE char *p = ty_asprintf("%s/pods/default_%s_%s/c/0.log", dir, name, uid);
    struct stat sb;
    return stat(p, &sb) == 0 ? (size_t)sb.st_size : 0;
}

static bool log_grows(const char *dir, const char *name, const char *uid)
{
    size_t before = log_size(dir, name, uid);
    for (int i = 0; i < 200; i++) {
        usleep(10000);
        if (log_size(dir, name, uid) > before)
            return true;
    }
    return false;
}

static bool has_update(void *arg) { return rec(arg)->updates > 0; }

/* A shim that outlives its trainyard writes its stderr to shim.log: sanitizer reports of the
 * ASan build land there instead of in the test output that `make unit` searches. */
static void assert_clean_shim_log(const char *dir, const char *name, const char *uid)
{
    TY_AUTOFREE char *p = ty_asprintf("%s/pods/default_%s_%s/shim.log", dir, name, uid);
    ty_buf b = TY_BUF_INIT;
    if (ty_buf_read_file(&b, p) == 0)
        cr_assert(!strstr(b.data, "Sanitizer") && !strstr(b.data, "runtime error:"), "%s: %s",
                  p, b.data);
    ty_buf_free(&b);
}

static void adopt_all_expect(int n)
{
    ty_error err = TY_ERROR_INIT;
    int got = ty_runtime_adopt_all(T.rt, &err);
    cr_assert_eq(got, n, "adopted %d, want %d (%s)", got, n, err.msg ? err.msg : "");
    ty_error_clear(&err);
}

/* ---- pods that ended for good: the shim goes ----------------------------------------------- */

/* Whether the process `pid` with start time `start` is gone (or a zombie). */
static bool proc_gone(pid_t pid, unsigned long long start) { return ty_rt_proc_start(pid) != start; }

typedef struct shimref {
    pid_t pid;
    unsigned long long start;
} shimref;

static shimref shim_of(const char *name, const char *uid)
{
    json_t *st = state_in(T.dir, name, uid);
    cr_assert(st, "no state.json for %s", uid);
    shimref r = {(pid_t)json_integer_value(json_object_get(st, "shimPid")),
                 (unsigned long long)json_integer_value(json_object_get(st, "shimStartTime"))};
    json_decref(st);
    cr_assert_gt(r.pid, 1);
    return r;
}

Test(runtime, shim_exits_when_pod_succeeds)
{
    setup_rt(0, false);
    TY_AUTOFREE char *a = uid_for("done");
    start(make_pod("done", a, "Never",
                   "[{\"name\":\"c\",\"command\":[\"sh\",\"-c\",\"echo hi\"]},"
                   " {\"name\":\"d\",\"command\":[\"sh\",\"-c\",\"sleep 0.2\"]}]"));
    cr_assert(run_until(is_gone, a, 10000), "the shim of a finished pod must exit by itself");
    cr_assert_str_eq(phase_of(a), "Succeeded");
    cr_assert_eq(json_integer_value(json_object_get(terminated(a, "c"), "exitCode")), 0);
    cr_assert_str_eq(json_string_value(json_object_get(terminated(a, "d"), "reason")),
                     "Completed");
    shimref sh = shim_of("done", a);
    cr_assert(proc_gone(sh.pid, sh.start), "shim still runs");
    json_t *st = state_in(T.dir, "done", a);
    cr_assert(json_is_true(json_object_get(st, "finished")));
    json_decref(st);
    cr_assert(!ty_runtime_has_pod(T.rt, a));
    ty_runtime_stop_pod(T.rt, a, 0); /* no-op: nothing more is reported (on_status asserts) */
    TY_AUTOFREE char *text = log_text(a, "c", 0);
    cr_assert_str_eq(text, "hi\n");
    /* the pod dir and its logs stay; once the end is recorded, a new runtime does not report
     * it again */
    ty_runtime_end_recorded(T.rt, "default", "done", a);
    adopt_all_expect(0);
    TY_AUTOFREE char *lp = ty_runtime_log_path(T.rt, a, "c", 0);
    cr_assert(lp && access(lp, F_OK) == 0);
    teardown_rt();
}

Test(runtime, shim_exits_after_init_failure_under_never)
{
    setup_rt(0, true);
    TY_AUTOFREE char *a = uid_for("initbad");
    json_t *pod = make_pod("initbad", a, "Never", "[{\"name\":\"c\",\"command\":[\"true\"]}]");
    json_object_set_new(json_object_get(pod, "spec"), "initContainers",
                        json_pack("[{s:s, s:[s,s,s]}]", "name", "i", "command", "sh", "-c",
                                  "exit 7"));
    start(pod);
    cr_assert(run_until(is_gone, a, 10000), "the shim of a failed pod must exit by itself");
    cr_assert_str_eq(phase_of(a), "Failed");
    json_t *ics = json_array_get(json_object_get(rec(a)->last, "initContainerStatuses"), 0);
    cr_assert_eq(json_integer_value(json_object_get(
                     json_object_get(json_object_get(ics, "state"), "terminated"), "exitCode")),
                 7);
    teardown_rt();
}

Test(runtime, shim_stays_while_pod_restarts)
{
    setenv("TRAINYARD_RESTART_BACKOFF_MS", "20", 1);
    setup_rt(0, false);
    TY_AUTOFREE char *a = uid_for("again");
    start(make_pod("again", a, "OnFailure",
                   "[{\"name\":\"c\",\"command\":[\"sh\",\"-c\",\"exit 1\"]}]"));
    cr_assert(run_until(restarted, a, 10000), "no restarts");
    shimref sh = shim_of("again", a);
    cr_assert(!proc_gone(sh.pid, sh.start), "the shim of a restarting pod must stay");
    cr_assert(!rec(a)->gone);
    cr_assert_str_eq(phase_of(a), "Running");
    stop_and_wait(a, 0);
    unsetenv("TRAINYARD_RESTART_BACKOFF_MS");
    teardown_rt();
}

Test(runtime, adopt_running_pod_after_server_sigkill)
{
    char dir[] = "/tmp/ty-rt-XXXXXX";
    cr_assert(mkdtemp(dir));
    TY_AUTOFREE char *a = uid_for("tick");
    pid_t server = server_with_pod(
        dir, 1,
        make_pod("tick", a, "Always",
                 "[{\"name\":\"c\",\"command\":[\"sh\",\"-c\",\"i=0; while :; do echo tick $i; "
                 "i=$((i+1)); sleep 0.02; done\"],"
                 "\"resources\":{\"limits\":{\"nvidia.com/gpu\":1}}}]"));
    int pid = wait_state(dir, "tick", a, false);
    unsigned long long started = ty_rt_proc_start(pid);
    cr_assert_gt(started, 0);
    kill_server(server);

    /* no trainyard: the same process runs on and its log keeps flowing */
    cr_assert(log_grows(dir, "tick", a), "log stopped with the server");
    cr_assert_eq(ty_rt_proc_start(pid), started);

    setup_rt_in(dir, 1, false);
    /* not run twice: a new start of the same uid is refused while its shim lives */
    json_t *again = make_pod("tick", a, "Always", "[{\"name\":\"c\",\"command\":[\"true\"]}]");
    ty_error err = TY_ERROR_INIT;
    cr_assert_lt(ty_runtime_start_pod(T.rt, again, NULL, &err), 0);
    cr_assert(strstr(err.msg, "adopt"), "%s", err.msg);
    ty_error_clear(&err);
    json_decref(again);

    adopt_all_expect(1);
    cr_assert_eq(ty_runtime_gpus_free(T.rt), 0, "the adopted pod's GPU counts as used");
    cr_assert(run_until(has_update, a, 5000), "no status after adoption");
    cr_assert_str_eq(phase_of(a), "Running");
    cr_assert(!rec(a)->gone);
    cr_assert_eq(ty_rt_proc_start(pid), started, "adoption must not restart the container");
    cr_assert_eq(json_integer_value(json_object_get(cstatus(a, "c"), "restartCount")), 0);
    cr_assert(log_grows(dir, "tick", a));
    TY_AUTOFREE char *text = log_text(a, "c", 0);
    cr_assert(strstr(text, "tick 0\ntick 1\n"), "%.200s", text);
    adopt_all_expect(0); /* ours now */

    stop_and_wait(a, 0);
    cr_assert_eq(ty_rt_proc_start(pid), 0, "container left running after stop");
    cr_assert_eq(ty_runtime_gpus_free(T.rt), 1);
    assert_clean_shim_log(dir, "tick", a);
    teardown_rt();
}

/* A pod that ends for good while no trainyard is attached: its shim records the final status
 * (finished) and exits; the next trainyard reports that status, not a lost supervisor, then
 * gone, once. */
Test(runtime, adopt_reports_exit_code_of_pod_ended_while_detached)
{
    char dir[] = "/tmp/ty-rt-XXXXXX";
    cr_assert(mkdtemp(dir));
    TY_AUTOFREE char *a = uid_for("ends");
    pid_t server = server_with_pod(
        dir, 0,
        make_pod("ends", a, "Never",
                 "[{\"name\":\"c\",\"command\":[\"sh\",\"-c\",\"sleep 0.3; "
                 "echo done; exit 3\"]}]"));
    wait_state(dir, "ends", a, false);
    json_t *st = state_in(dir, "ends", a);
    pid_t shim = (pid_t)json_integer_value(json_object_get(st, "shimPid"));
    unsigned long long shim_start = (unsigned long long)json_integer_value(
        json_object_get(st, "shimStartTime"));
    json_decref(st);
    cr_assert_gt(shim, 1);
    kill_server(server);
    cr_assert_eq(wait_state(dir, "ends", a, true), 3);
    /* nothing left to supervise: the shim goes by itself (its zombie is init's to reap) */
    int64_t end = ty_time_mono_ns() + 5000000000LL;
    while (ty_rt_proc_start(shim) == shim_start && ty_time_mono_ns() < end)
        usleep(10000);
    cr_assert_neq(ty_rt_proc_start(shim), shim_start, "the shim outlived its finished pod");
    st = state_in(dir, "ends", a);
    cr_assert(json_is_true(json_object_get(st, "finished")), "state.json not marked finished");
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(st, "status"), "phase")),
                     "Failed");
    json_decref(st);

    setup_rt_in(dir, 0, false);
    adopt_all_expect(1);
    cr_assert(run_until(is_gone, a, 5000), "a pod whose shim finished must be reported gone");
    cr_assert_eq(rec(a)->updates, 1, "the final status comes once, with gone");
    cr_assert_str_eq(phase_of(a), "Failed");
    json_t *t = terminated(a, "c");
    cr_assert_eq(json_integer_value(json_object_get(t, "exitCode")), 3);
    cr_assert_str_eq(json_string_value(json_object_get(t, "reason")), "Error");
    const char *msg = json_string_value(json_object_get(rec(a)->last, "message"));
    cr_assert(!strstr(msg, "supervisor"), "%s", msg);
    cr_assert(!json_object_get(rec(a)->last, "reason"), "the pod ended, no supervisor died");
    cr_assert(!ty_runtime_has_pod(T.rt, a));
    ty_runtime_stop_pod(T.rt, a, 0); /* a no-op */
    TY_AUTOFREE char *text = log_text(a, "c", 0);
    cr_assert_str_eq(text, "done\n");
    /* Until the caller says the end is recorded (durably), every adoption reports it again,
     * exit code included: a crash before the record loses nothing. */
    rec(a)->gone = false;
    rec(a)->updates = 0;
    adopt_all_expect(1);
    cr_assert(run_until(is_gone, a, 5000), "an unrecorded end must be reported again");
    cr_assert_eq(rec(a)->updates, 1);
    cr_assert_eq(json_integer_value(json_object_get(terminated(a, "c"), "exitCode")), 3);
    ty_runtime_end_recorded(T.rt, "default", "ends", a);
    adopt_all_expect(0); /* recorded: reported no more */
    assert_clean_shim_log(dir, "ends", a);
    teardown_rt();
}

Test(runtime, adopt_reports_pod_whose_shim_died_while_detached)
{
    char dir[] = "/tmp/ty-rt-XXXXXX";
    cr_assert(mkdtemp(dir));
    TY_AUTOFREE char *a = uid_for("lost");
    pid_t server = server_with_pod(
        dir, 0, make_pod("lost", a, "Always", "[{\"name\":\"c\",\"command\":[\"sleep\",\"100\"]}]"));
    int pid = wait_state(dir, "lost", a, false);
    kill_server(server);
    json_t *st = state_in(dir, "lost", a);
    pid_t shim = (pid_t)json_integer_value(json_object_get(st, "shimPid"));
    json_decref(st);
    cr_assert_gt(shim, 1);
    cr_assert_eq(kill(shim, SIGKILL), 0);
    int64_t dead = ty_time_mono_ns() + 5000000000LL;
    while (ty_rt_proc_start(shim) != 0 && ty_time_mono_ns() < dead)
        usleep(5000);

    setup_rt_in(dir, 0, false);
    adopt_all_expect(1);
    cr_assert(run_until(is_gone, a, 5000), "a pod with a dead shim must be reported gone");
    cr_assert_str_eq(phase_of(a), "Failed");
    json_t *t = terminated(a, "c");
    cr_assert_eq(json_integer_value(json_object_get(t, "exitCode")), 137);
    cr_assert_str_eq(json_string_value(json_object_get(t, "reason")), "Error");
    cr_assert(strstr(json_string_value(json_object_get(t, "message")), "supervisor was lost"));
    /* nothing of it is left running */
    int64_t end = ty_time_mono_ns() + 5000000000LL;
    while (ty_rt_proc_start(pid) != 0 && ty_time_mono_ns() < end)
        usleep(10000);
    cr_assert_eq(ty_rt_proc_start(pid), 0, "the container outlived its shim");
    /* its end was recorded: a later adoption does not report it again, the logs stay */
    ty_runtime_end_recorded(T.rt, "default", "lost", a);
    adopt_all_expect(0);
    TY_AUTOFREE char *lp = ty_runtime_log_path(T.rt, a, "c", 0);
    cr_assert(lp && access(lp, F_OK) == 0);
    teardown_rt();
}

Test(runtime, detach_leaves_pods_running_for_adoption_and_adopted_shim_death_is_seen)
{
    setup_rt(0, false);
    TY_AUTOFREE char *a = uid_for("detached");
    start(make_pod("detached", a, "Always", "[{\"name\":\"c\",\"command\":[\"sleep\",\"100\"]}]"));
    wait_phase(a, "Running", 10000);
    int pid = wait_state(T.dir, "detached", a, false);
    unsigned long long started = ty_rt_proc_start(pid);
    ty_runtime_detach(T.rt, shut_done, NULL);
    cr_assert(run_until(is_shut, NULL, 5000), "detach did not finish");
    ty_runtime_free(T.rt);
    cr_assert(!rec(a)->gone);
    cr_assert_eq(ty_rt_proc_start(pid), started, "detach must not stop the pod");

    /* a fresh runtime over the same state dir (as after a restart) takes it over */
    ty_runtime_config cfg = {.state_dir = T.dir, .self_exe = NULL, .gpus = 0};
    char exe[PATH_MAX];
    cr_assert(realpath(SHIM, exe));
    cfg.self_exe = exe;
    ty_error err = TY_ERROR_INIT;
    cr_assert_eq(ty_runtime_new(&T.loop, &cfg, on_status, NULL, &T.rt, &err), 0);
    T.shut = false;
    adopt_all_expect(1);
    rec(a)->updates = 0;
    cr_assert(run_until(has_update, a, 5000), "no status after adoption");
    cr_assert_str_eq(phase_of(a), "Running");
    /* the adopted shim dies: its end is noticed without being its parent, and reported */
    json_t *st = state_in(T.dir, "detached", a);
    pid_t shim = (pid_t)json_integer_value(json_object_get(st, "shimPid"));
    json_decref(st);
    cr_assert_eq(kill(shim, SIGKILL), 0);
    cr_assert(run_until(is_gone, a, 5000), "adopted pod not gone after its shim died");
    cr_assert_str_eq(phase_of(a), "Failed");
    json_t *t = terminated(a, "c");
    cr_assert_eq(json_integer_value(json_object_get(t, "exitCode")), 137);
    cr_assert(strstr(json_string_value(json_object_get(t, "message")), "supervisor died"));
    int64_t end = ty_time_mono_ns() + 5000000000LL;
    while (ty_rt_proc_start(pid) != 0 && ty_time_mono_ns() < end)
        usleep(10000);
    cr_assert_eq(ty_rt_proc_start(pid), 0, "the container outlived its shim");
    teardown_rt();
}

Test(runtime, control_socket_of_a_pod_dir_longer_than_sun_path)
{
    setup_rt(0, false);
    const char *name = "a-pod-name-long-enough-that-its-socket-path-exceeds-sun-path-xy";
    TY_AUTOFREE char *a = uid_for("long-uid-0123456789abcdef");
    TY_AUTOFREE char *sock = ty_asprintf("%s/pods/default_%s_%s/control.sock", T.dir, name, a);
    cr_assert_gt(strlen(sock), 107);
    start(make_pod(name, a, "Always", "[{\"name\":\"c\",\"command\":[\"sleep\",\"100\"]}]"));
    wait_phase(a, "Running", 10000);
    struct stat sb;
    cr_assert_eq(stat(sock, &sb), 0);
    cr_assert(S_ISSOCK(sb.st_mode));
    stop_and_wait(a, 0);
    teardown_rt();
}

Test(runtime, each_virtual_node_has_its_own_gpus)
{
    setup_rt(0, true);
    ty_runtime_set_node_gpus(T.rt, "v1", 2);
    ty_runtime_set_node_gpus(T.rt, "v2", 2);
    const char *gpu2 = "[{\"name\":\"c\",\"command\":[\"sh\",\"-c\","
                       "\"echo \\\"[$CUDA_VISIBLE_DEVICES]\\\"; sleep 30\"],"
                       "\"resources\":{\"limits\":{\"nvidia.com/gpu\":2}}}]";
    TY_AUTOFREE char *a = uid_for("v1pod");
    TY_AUTOFREE char *b = uid_for("v2pod");
    TY_AUTOFREE char *c = uid_for("v1more");
    json_t *pa = make_pod("v1pod", a, "Never", gpu2), *pb = make_pod("v2pod", b, "Never", gpu2);
    json_t *pc = make_pod("v1more", c, "Never", gpu2);
    json_object_set_new(json_object_get(pa, "spec"), "nodeName", json_string("v1"));
    json_object_set_new(json_object_get(pb, "spec"), "nodeName", json_string("v2"));
    json_object_set_new(json_object_get(pc, "spec"), "nodeName", json_string("v1"));
    start(pa);
    start(pb);
    cr_assert_eq(ty_runtime_node_gpus_free(T.rt, "v1"), 0);
    cr_assert_eq(ty_runtime_node_gpus_free(T.rt, "v2"), 0);
    ty_error err = TY_ERROR_INIT;
    cr_assert_lt(ty_runtime_start_pod(T.rt, pc, NULL, &err), 0, "v1's GPUs are taken");
    cr_assert(strstr(err.msg, "0 of 2 free"), "%s", err.msg);
    ty_error_clear(&err);
    json_decref(pc);
    cr_assert(run_until(logged, a, 10000));
    cr_assert(run_until(logged, b, 10000));
    TY_AUTOFREE char *la = log_text(a, "c", 0);
    TY_AUTOFREE char *lb = log_text(b, "c", 0);
    cr_assert_str_eq(la, "[0,1]\n");
    cr_assert_str_eq(lb, "[0,1]\n", "each node counts its devices from 0");
    stop_and_wait(a, 0);
    cr_assert_eq(ty_runtime_node_gpus_free(T.rt, "v1"), 2);
    cr_assert_eq(ty_runtime_node_gpus_free(T.rt, "v2"), 0);
    teardown_rt();
}
