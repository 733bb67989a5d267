/* The runtime's parent side: spawns one shim per pod, relays its status lines to the callback,
 * assigns GPUs, and cleans up after shims that died. See runtime.h; the shim is in shim.c. */
#include "runtime/runtime.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/map.h"
#include "base/mem.h"
#include "base/quantity.h"
#include "runtime/cgroup.h"
#include "runtime/internal.h"

typedef struct pod {
    ty_runtime *rt;
    char *uid, *ns, *name, *dir;
    uv_process_t proc;
    uv_pipe_t out, in;
    uv_timer_t backstop;
    ty_buf line;
    int *gpus;
    int n_gpus;
    int64_t grace;
    json_t *last;
    bool exited, eof, stopping, gone;
    int64_t exit_status;
    int term_signal;
    int open_handles;
    bool detached; /* removed from the runtime (free with pods running) */
} pod;

struct ty_runtime {
    uv_loop_t *loop;
    char *state_dir, *self_exe, *workdir, *node;
    bool die_with_parent;
    int n_gpus;
    bool *gpu_used;
    int64_t backoff_ms;
    ty_map pods; /* uid -> pod */
    int live;    /* pod records not yet freed (gone pods still closing handles count) */
    ty_runtime_status_fn fn;
    void *ctx;
    bool shutting_down;
    void (*done)(void *);
    void *done_arg;
    ty_cgroups cg; /* to clean up after a shim that was killed */
};

/* NVML through dlopen: no build dependency, and no GPU library on the machine means 0 GPUs.
 * Cost: loading libnvidia-ml and nvmlInit take tens of ms, once per process. */
static int nvml_count(void)
{
    void *h = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!h)
        return 0;
    int (*init)(void) = (int (*)(void))dlsym(h, "nvmlInit_v2");
    int (*count)(unsigned *) = (int (*)(unsigned *))dlsym(h, "nvmlDeviceGetCount_v2");
    int (*fini)(void) = (int (*)(void))dlsym(h, "nvmlShutdown");
    unsigned n = 0;
    if (!init || !count || init() != 0) {
        dlclose(h);
        return 0;
    }
    if (count(&n) != 0)
        n = 0;
    if (fini)
        fini();
    dlclose(h);
    return (int)n;
}

int ty_runtime_new(uv_loop_t *loop, const ty_runtime_config *cfg, ty_runtime_status_fn fn,
                   void *ctx, ty_runtime **out, ty_error *err)
{
    if (!cfg->state_dir || !cfg->self_exe)
        return ty_fail(err, "runtime: state_dir and self_exe are required");
    if (access(cfg->self_exe, X_OK) < 0)
        return ty_fail_errno(err, errno, "runtime: shim binary %s", cfg->self_exe);
    TY_AUTOFREE char *pods = ty_asprintf("%s/pods", cfg->state_dir);
    if ((mkdir(cfg->state_dir, 0755) < 0 && errno != EEXIST) ||
        (mkdir(pods, 0755) < 0 && errno != EEXIST))
        return ty_fail_errno(err, errno, "runtime: create %s", pods);
    ty_runtime *rt = TY_NEW(ty_runtime);
    rt->loop = loop;
    rt->state_dir = ty_strdup(cfg->state_dir);
    rt->self_exe = ty_strdup(cfg->self_exe);
    rt->workdir = ty_strdup(cfg->default_workdir ? cfg->default_workdir : "/");
    rt->node = ty_strdup(cfg->node_name ? cfg->node_name : "");
    rt->die_with_parent = cfg->pods_die_with_parent;
    rt->n_gpus = cfg->gpus >= 0 ? cfg->gpus : nvml_count();
    rt->gpu_used = ty_calloc((size_t)rt->n_gpus + 1, sizeof(bool));
    rt->fn = fn;
    rt->ctx = ctx;
    rt->backoff_ms = 10000;
    const char *b = getenv("TRAINYARD_RESTART_BACKOFF_MS");
    if (b && atoll(b) > 0)
        rt->backoff_ms = atoll(b);
    ty_cgroups_detect(&rt->cg);
    *out = rt;
    return 0;
}

int ty_runtime_gpu_count(const ty_runtime *rt) { return rt->n_gpus; }

int ty_runtime_gpus_free(const ty_runtime *rt)
{
    int n = 0;
    for (int i = 0; i < rt->n_gpus; i++)
        n += !rt->gpu_used[i];
    return n;
}

static void pod_free(pod *p)
{
    free(p->uid), free(p->ns), free(p->name), free(p->dir), free(p->gpus);
    ty_buf_free(&p->line);
    json_decref(p->last);
    free(p);
}

static void handle_closed(uv_handle_t *h)
{
    pod *p = h->data;
    if (--p->open_handles > 0)
        return;
    ty_runtime *rt = p->detached ? NULL : p->rt;
    pod_free(p);
    if (rt)
        rt->live--;
    if (rt && rt->shutting_down && rt->live == 0 && rt->done) {
        void (*done)(void *) = rt->done;
        rt->done = NULL;
        done(rt->done_arg);
    }
}

static void close_handles(pod *p)
{
    p->open_handles = 4;
    uv_close((uv_handle_t *)&p->proc, handle_closed);
    uv_close((uv_handle_t *)&p->out, handle_closed);
    uv_close((uv_handle_t *)&p->in, handle_closed);
    uv_close((uv_handle_t *)&p->backstop, handle_closed);
}

/* The shim died without reporting an end: what was running is reported killed. */
static void mark_dead(json_t *st, const char *why)
{
    const char *ph = json_string_value(json_object_get(st, "phase"));
    if (ph && (strcmp(ph, "Succeeded") == 0 || strcmp(ph, "Failed") == 0))
        return;
    json_object_set_new(st, "phase", json_string("Failed"));
    json_object_set_new(st, "reason", json_string("SupervisorDied"));
    json_object_set_new(st, "message", json_string(why));
    const char *lists[] = {"initContainerStatuses", "containerStatuses"};
    for (size_t l = 0; l < 2; l++) {
        json_t *cs, *arr = json_object_get(st, lists[l]);
        size_t i;
        json_array_foreach(arr, i, cs) {
            json_t *state = json_object_get(cs, "state");
            json_t *run = json_object_get(state, "running");
            if (!run)
                continue;
            json_t *t = json_pack("{s:i, s:s, s:s, s:O}", "exitCode", 137, "reason", "Error",
                                  "message", why, "startedAt", json_object_get(run, "startedAt"));
            json_object_set_new(cs, "state", json_pack("{s:o}", "terminated", t));
            json_object_set_new(cs, "ready", json_false());
            json_object_set_new(cs, "started", json_false());
        }
    }
}

/* GPUs go back to the pool as soon as every container has ended: the scheduler counts a
 * terminated pod's resources as free at once, so the runtime must not hold them until the
 * shim has finished its own cleanup. */
static void release_gpus(pod *p)
{
    for (int i = 0; i < p->n_gpus; i++)
        p->rt->gpu_used[p->gpus[i]] = false;
    p->n_gpus = 0;
}

static void maybe_gone(pod *p)
{
    if (!p->exited || !p->eof || p->gone)
        return;
    p->gone = true;
    ty_runtime *rt = p->rt;
    /* Backstop: a killed shim leaves cgroups (and without a pid namespace maybe processes). */
    if (rt->cg.kind != TY_CGROUP_NONE) {
        ty_cgroup_kill(&rt->cg, p->uid);
        ty_cgroup_remove(&rt->cg, p->uid, NULL);
    }
    release_gpus(p);
    json_t *st = p->last ? json_deep_copy(p->last) : json_pack("{s:s}", "phase", "Failed");
    if (p->term_signal || p->exit_status != 0) {
        TY_AUTOFREE char *why = p->term_signal
            ? ty_asprintf("pod supervisor was killed by signal %d", p->term_signal)
            : ty_asprintf("pod supervisor exited with status %lld", (long long)p->exit_status);
        mark_dead(st, why);
    }
    ty_map_dels(&rt->pods, p->uid);
    close_handles(p);
    rt->fn(rt->ctx, p->ns, p->name, p->uid, st, true);
}

static void on_shim_exit(uv_process_t *h, int64_t status, int sig)
{
    pod *p = h->data;
    p->exited = true;
    p->exit_status = status;
    p->term_signal = sig;
    uv_timer_stop(&p->backstop);
    maybe_gone(p);
}

static void out_alloc(uv_handle_t *h, size_t sz, uv_buf_t *buf)
{
    (void)sz;
    pod *p = h->data;
    ty_buf_grow(&p->line, 65536);
    buf->base = p->line.data + p->line.len;
    buf->len = p->line.cap - p->line.len - 1;
}

static void on_line(pod *p, char *line)
{
    if (strncmp(line, "status ", 7) != 0)
        return;
    json_error_t je;
    json_t *st = json_loads(line + 7, 0, &je);
    if (!json_is_object(st)) {
        ty_warn("pod %s/%s: bad status line from the shim: %s", p->ns, p->name, je.text);
        json_decref(st);
        return;
    }
    json_decref(p->last);
    p->last = json_incref(st);
    const char *phase = json_string_value(json_object_get(st, "phase"));
    if (phase && (strcmp(phase, "Succeeded") == 0 || strcmp(phase, "Failed") == 0))
        release_gpus(p);
    p->rt->fn(p->rt->ctx, p->ns, p->name, p->uid, st, false);
}

static void on_out(uv_stream_t *h, ssize_t n, const uv_buf_t *buf)
{
    (void)buf;
    pod *p = h->data;
    if (n < 0) {
        uv_read_stop(h);
        p->eof = true;
        maybe_gone(p);
        return;
    }
    p->line.len += (size_t)n;
    p->line.data[p->line.len] = '\0';
    char *start = p->line.data, *nl;
    while ((nl = strchr(start, '\n'))) {
        *nl = '\0';
        on_line(p, start);
        if (p->gone)
            return;
        start = nl + 1;
    }
    size_t rest = p->line.len - (size_t)(start - p->line.data);
    memmove(p->line.data, start, rest + 1);
    p->line.len = rest;
}

/* GPUs the pod needs: containers run together, init containers one at a time before them. */
static int pod_gpus(const json_t *podj, int *out, ty_error *err)
{
    json_t *spec = json_object_get(podj, "spec");
    const char *lists[] = {"initContainers", "containers"};
    int64_t sum = 0, init_max = 0;
    for (int l = 0; l < 2; l++) {
        json_t *c;
        size_t i;
        json_array_foreach(json_object_get(spec, lists[l]), i, c) {
            json_t *v = json_object_get(
                json_object_get(json_object_get(c, "resources"), "limits"), "nvidia.com/gpu");
            ty_quantity q = {0};
            if (v && ty_quantity_from_json(v, &q, err) < 0)
                return ty_error_wrap(err, "%s[%zu]: limits.nvidia.com/gpu", lists[l], i);
            int64_t m = q.milli;
            if (m % 1000)
                return ty_fail(err, "%s[%zu]: nvidia.com/gpu must be a whole number", lists[l],
                               i);
            if (l == 0 && m / 1000 > init_max)
                init_max = m / 1000;
            if (l == 1)
                sum += m / 1000;
        }
    }
    *out = (int)(sum > init_max ? sum : init_max);
    return 0;
}

static void backstop_fired(uv_timer_t *t)
{
    pod *p = t->data;
    ty_warn("pod %s/%s: shim did not finish after the grace period; killing it", p->ns, p->name);
    uv_process_kill(&p->proc, SIGKILL);
}

int ty_runtime_start_pod(ty_runtime *rt, const json_t *podj, const char *pod_ip, ty_error *err)
{
    json_t *md = json_object_get(podj, "metadata");
    const char *uid = json_string_value(json_object_get(md, "uid"));
    const char *name = json_string_value(json_object_get(md, "name"));
    const char *ns = json_string_value(json_object_get(md, "namespace"));
    if (!ns)
        ns = "default";
    if (!uid || !*uid || !name || !*name || strchr(uid, '/') || strchr(name, '/') ||
        strchr(ns, '/'))
        return ty_fail(err, "start pod: metadata.name and metadata.uid are required");
    if (rt->shutting_down)
        return ty_fail(err, "start pod %s/%s: the runtime is shutting down", ns, name);
    if (ty_map_gets(&rt->pods, uid))
        return ty_fail(err, "start pod %s/%s: uid %s is already running", ns, name, uid);
    if (json_array_size(json_object_get(json_object_get(podj, "spec"), "containers")) == 0)
        return ty_fail(err, "start pod %s/%s: spec.containers is empty", ns, name);
    int need = 0;
    if (pod_gpus(podj, &need, err) < 0)
        return ty_error_wrap(err, "start pod %s/%s", ns, name);
    if (need > ty_runtime_gpus_free(rt))
        return ty_fail(err, "start pod %s/%s: needs %d nvidia.com/gpu, %d of %d free", ns, name,
                       need, ty_runtime_gpus_free(rt), rt->n_gpus);

    pod *p = TY_NEW(pod);
    p->rt = rt;
    p->uid = ty_strdup(uid);
    p->ns = ty_strdup(ns);
    p->name = ty_strdup(name);
    p->dir = ty_asprintf("%s/pods/%s_%s_%s", rt->state_dir, ns, name, uid);
    ty_buf_init(&p->line);
    json_t *g = json_object_get(json_object_get(podj, "spec"), "terminationGracePeriodSeconds");
    p->grace = json_is_integer(g) && json_integer_value(g) >= 0 ? json_integer_value(g) : 30;
    if (mkdir(p->dir, 0755) < 0 && errno != EEXIST) {
        ty_fail_errno(err, errno, "start pod %s/%s: create %s", ns, name, p->dir);
        pod_free(p);
        return -1;
    }
    json_t *ids = json_array();
    p->gpus = ty_calloc((size_t)need + 1, sizeof(int));
    for (int i = 0; i < rt->n_gpus && p->n_gpus < need; i++) {
        if (rt->gpu_used[i])
            continue;
        p->gpus[p->n_gpus++] = i;
        json_array_append_new(ids, json_sprintf("%d", i));
    }
    json_t *doc = json_pack(
        "{s:O, s:{s:s, s:s, s:s, s:s, s:o, s:b, s:i, s:I}}", "pod", (json_t *)podj, "runtime",
        "podIP", pod_ip ? pod_ip : "127.0.0.1", "hostIP", "127.0.0.1", "nodeName", rt->node,
        "workdir", rt->workdir, "gpus", ids, "dieWithParent", rt->die_with_parent, "parentPid",
        (int)getpid(), "backoffMs", (json_int_t)rt->backoff_ms);
    const char *spec_node = json_string_value(
        json_object_get(json_object_get(podj, "spec"), "nodeName"));
    if (spec_node)
        json_object_set_new(json_object_get(doc, "runtime"), "nodeName", json_string(spec_node));
    TY_AUTOFREE char *path = ty_asprintf("%s/pod.json", p->dir);
    int rc = json_dump_file(doc, path, JSON_COMPACT);
    json_decref(doc);
    if (rc < 0) {
        ty_fail(err, "start pod %s/%s: write %s", ns, name, path);
        pod_free(p);
        return -1;
    }

    uv_pipe_init(rt->loop, &p->in, 0);
    uv_pipe_init(rt->loop, &p->out, 0);
    uv_timer_init(rt->loop, &p->backstop);
    p->in.data = p->out.data = p->backstop.data = p->proc.data = p;
    char *args[] = {rt->self_exe, "shim", p->dir, NULL};
    uv_stdio_container_t stdio[3] = {
        {.flags = UV_CREATE_PIPE | UV_READABLE_PIPE, .data.stream = (uv_stream_t *)&p->in},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&p->out},
        {.flags = UV_INHERIT_FD, .data.fd = 2},
    };
    /* Detached = its own session: a Ctrl-C in trainyard's terminal must not reach the shims
     * (trainyard stops pods with their grace period instead); the death signal still holds. */
    uv_process_options_t opt = {.exit_cb = on_shim_exit, .file = rt->self_exe, .args = args,
                                .stdio_count = 3, .stdio = stdio,
                                .flags = UV_PROCESS_DETACHED};
    int e = uv_spawn(rt->loop, &p->proc, &opt);
    if (e < 0) {
        ty_fail(err, "start pod %s/%s: spawn %s: %s", ns, name, rt->self_exe, uv_strerror(e));
        /* uv_spawn failed: the process handle still needs closing */
        p->detached = true;
        close_handles(p);
        return -1;
    }
    for (int i = 0; i < p->n_gpus; i++)
        rt->gpu_used[p->gpus[i]] = true;
    uv_read_start((uv_stream_t *)&p->out, out_alloc, on_out);
    ty_map_puts(&rt->pods, uid, p);
    rt->live++;
    return 0;
}

static void write_done(uv_write_t *req, int status)
{
    (void)status; /* a shim that is gone already: its exit is handled by on_shim_exit */
    free(req->data);
    free(req);
}

void ty_runtime_stop_pod(ty_runtime *rt, const char *uid, int64_t grace_seconds)
{
    pod *p = ty_map_gets(&rt->pods, uid);
    /* Once stopping, only a stop with no grace goes through (to kill what is left now). */
    if (!p || p->gone || (p->stopping && grace_seconds != 0))
        return;
    p->stopping = true;
    int64_t grace = grace_seconds >= 0 ? grace_seconds : p->grace;
    char *cmd = ty_asprintf("stop %lld\n", (long long)grace);
    uv_write_t *req = TY_NEW(uv_write_t);
    req->data = cmd;
    uv_buf_t b = uv_buf_init(cmd, (unsigned)strlen(cmd));
    if (uv_write(req, (uv_stream_t *)&p->in, &b, 1, write_done) < 0) {
        free(cmd);
        free(req);
        uv_process_kill(&p->proc, SIGKILL);
        return;
    }
    if (!p->exited)
        uv_timer_start(&p->backstop, backstop_fired, (uint64_t)(grace + 10) * 1000, 0);
}

void ty_runtime_shutdown(ty_runtime *rt, void (*done)(void *), void *arg)
{
    rt->shutting_down = true;
    rt->done = done;
    rt->done_arg = arg;
    if (rt->live == 0) {
        rt->done = NULL;
        if (done)
            done(arg);
        return;
    }
    /* collect first: stopping may not change the map, but stay safe against it */
    size_t n = 0, it = 0;
    const ty_map_slot *slot;
    char **uids = ty_calloc(rt->pods.count + 1, sizeof(char *));
    while (ty_map_next(&rt->pods, &it, &slot))
        uids[n++] = ty_strdup(slot->key);
    for (size_t i = 0; i < n; i++) {
        ty_runtime_stop_pod(rt, uids[i], -1);
        free(uids[i]);
    }
    free(uids);
}

void ty_runtime_free(ty_runtime *rt)
{
    if (!rt)
        return;
    size_t it = 0;
    const ty_map_slot *slot;
    while (ty_map_next(&rt->pods, &it, &slot)) {
        pod *p = slot->value;
        if (!p->exited)
            uv_process_kill(&p->proc, SIGKILL);
        p->detached = true;
        if (!p->gone)
            close_handles(p);
    }
    ty_map_free(&rt->pods);
    ty_cgroups_free(&rt->cg);
    free(rt->state_dir), free(rt->self_exe), free(rt->workdir), free(rt->node);
    free(rt->gpu_used);
    free(rt);
}

char *ty_runtime_log_path(const ty_runtime *rt, const char *uid, const char *container,
                          int restart)
{
    if (strchr(container, '/') || strchr(uid, '/'))
        return NULL;
    pod *p = ty_map_gets(&rt->pods, uid);
    if (p)
        return ty_asprintf("%s/%s/%d.log", p->dir, container, restart);
    TY_AUTOFREE char *pods = ty_asprintf("%s/pods", rt->state_dir);
    DIR *d = opendir(pods);
    if (!d)
        return NULL;
    char *res = NULL;
    size_t ul = strlen(uid);
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t n = strlen(de->d_name);
        if (n > ul + 1 && de->d_name[n - ul - 1] == '_' && strcmp(de->d_name + n - ul, uid) == 0) {
            res = ty_asprintf("%s/%s/%s/%d.log", pods, de->d_name, container, restart);
            break;
        }
    }
    closedir(d);
    return res;
}
