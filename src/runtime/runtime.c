/* The runtime's parent side: spawns one shim per pod, relays its status lines to the callback,
 * assigns GPUs, and cleans up after shims that died. See runtime.h; the shim is in shim.c. */
#include "runtime/runtime.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/fs.h"
#include "base/log.h"
#include "base/map.h"
#include "base/mem.h"
#include "base/quantity.h"
#include "base/time.h"
#include "net/proxy.h"
#include "runtime/cgroup.h"
#include "runtime/runtime_int.h"

/* The longest grace period carried out (~31.7 years); see ty_runtime_stop_pod. */
#define GRACE_MAX_S 1000000000LL

typedef struct pod {
    ty_runtime *rt;
    char *uid, *ns, *name, *dir;
    uv_process_t proc; /* a shim we spawned (has_proc) */
    uv_pipe_t ch;      /* the control socket connection (has_ch) */
    uv_poll_t pidpoll; /* an adopted shim: its pidfd turns readable when it exits (has_poll) */
    bool has_proc, has_ch, has_poll;
    bool adopted;
    int pidfd; /* adopted shims only; -1 otherwise */
    /* The pod's own network namespace (kept open, so the Service rules reach it even before
     * the shim joins it), or -1: hostNetwork, no pod network, or gone. */
    int netns;
    uint64_t rules_gen; /* the generation of the Service rules its namespace has */
    char *lost; /* adopted: why the shim is known to have died uncleanly, for the last status */
    uv_timer_t backstop;
    ty_buf line;
    int *gpus;
    int n_gpus;
    struct gpu_pool *pool; /* the node whose GPUs these are */
    int64_t grace;
    json_t *last;
    bool exited, eof, stopping, gone;
    int64_t exit_status;
    int term_signal;
    int open_handles;
    bool detached; /* removed from the runtime (free with pods running) */
    bool remove_dir; /* its pod object is gone: the dir goes once the pod is gone */
} pod;

/* One node's GPUs: indices 0..n-1, each held by at most one pod. */
typedef struct gpu_pool {
    int n;
    bool *used;
} gpu_pool;

struct ty_runtime {
    uv_loop_t *loop;
    char *state_dir, *self_exe, *workdir, *node, *images_dir;
    bool require_images;
    bool die_with_parent;
    bool job_dirs;
    gpu_pool gpus;  /* this machine's (cfg.gpus), for pods of nodes without their own */
    ty_map pools;   /* node name -> gpu_pool*, declared with ty_runtime_set_node_gpus */
    int64_t backoff_ms;
    ty_map pods; /* uid -> pod */
    int live;    /* pod records not yet freed (gone pods still closing handles count) */
    ty_runtime_status_fn fn;
    void *ctx;
    ty_runtime_event_fn event_fn;
    void *event_ctx;
    bool shutting_down;
    void (*done)(void *);
    void *done_arg;
    ty_cgroups cg; /* to clean up after a shim that was killed */
    ty_podnet *net; /* NULL: pods share the host's network namespace */
    char *rules;    /* the Service proxy's rules for pods' namespaces (net/proxy.h), or NULL */
    bool rules_empty;  /* they proxy nothing: a pod that starts needs none */
    uint64_t rules_gen;     /* bumped at each new set of rules */
    uv_timer_t *rules_pass; /* applies them to the pods that lack them, in slices */
    int rules_applied;      /* pods done in the pass under way, and since when (ns) */
    int64_t rules_since;
    bool rules_warned; /* an apply failed and said so: the next failures stay quiet */
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

/* Makes what an earlier trainyard left in a directory of `dirfd` private: regular files 0600,
 * directories 0700 (their contents too, `depth` levels down). A pod's volumes/ is the pod's
 * and keeps its modes (an emptyDir is 0777 for containers of any user), and so do the files of
 * its etc/ (hosts and resolv.conf, 0644: every container reads them, whoever it runs as; the
 * directory is made 0700 like the others); links are left alone. */
static void make_private_at(int dirfd, int depth)
{
    DIR *d = fdopendir(dirfd);
    if (!d) {
        close(dirfd);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        struct stat sb;
        if (e->d_name[0] == '.' || strcmp(e->d_name, "volumes") == 0 ||
            fstatat(dirfd, e->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
            continue;
        if (S_ISREG(sb.st_mode) && (sb.st_mode & 077)) {
            fchmodat(dirfd, e->d_name, 0600, 0);
        } else if (S_ISDIR(sb.st_mode)) {
            if (sb.st_mode & 077)
                fchmodat(dirfd, e->d_name, 0700, 0);
            bool etc = strcmp(e->d_name, "etc") == 0;
            int sub = depth > 0 && !etc ? openat(dirfd, e->d_name,
                                         O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                                : -1;
            if (sub >= 0)
                make_private_at(sub, depth - 1);
        }
    }
    closedir(d);
}

int ty_runtime_new(uv_loop_t *loop, const ty_runtime_config *cfg, ty_runtime_status_fn fn,
                   void *ctx, ty_runtime **out, ty_error *err)
{
    if (!cfg->state_dir || !cfg->self_exe)
        return ty_fail(err, "runtime: state_dir and self_exe are required");
    if (access(cfg->self_exe, X_OK) < 0)
        return ty_fail_errno(err, errno, "runtime: shim binary %s", cfg->self_exe);
    TY_AUTOFREE char *pods = ty_asprintf("%s/pods", cfg->state_dir);
    /* pods' specs, env and logs live under pods/: private to trainyard's user (the state dir
     * may be one the user named, whose mode is the user's business) */
    if ((mkdir(cfg->state_dir, 0700) < 0 && errno != EEXIST) ||
        (mkdir(pods, 0700) < 0 && errno != EEXIST) || chmod(pods, 0700) < 0)
        return ty_fail_errno(err, errno, "runtime: create %s", pods);
    /* pods/<pod>/{pod.json,state.json,<container>/<n>.log}: 0644 before this version */
    int pfd = open(pods, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (pfd >= 0)
        make_private_at(pfd, 2);
    ty_runtime *rt = TY_NEW(ty_runtime);
    rt->loop = loop;
    rt->state_dir = ty_strdup(cfg->state_dir);
    rt->self_exe = ty_strdup(cfg->self_exe);
    rt->workdir = ty_strdup(cfg->default_workdir ? cfg->default_workdir : "/");
    rt->node = ty_strdup(cfg->node_name ? cfg->node_name : "");
    rt->die_with_parent = cfg->pods_die_with_parent;
    rt->job_dirs = cfg->job_dirs;
    rt->net = cfg->net;
    rt->images_dir = cfg->images_dir ? ty_strdup(cfg->images_dir) : NULL;
    rt->require_images = cfg->require_images;
    rt->gpus.n = cfg->gpus >= 0 ? cfg->gpus : nvml_count();
    rt->gpus.used = ty_calloc((size_t)rt->gpus.n + 1, sizeof(bool));
    rt->fn = fn;
    rt->ctx = ctx;
    rt->backoff_ms = 10000;
    const char *b = getenv("TRAINYARD_RESTART_BACKOFF_MS");
    if (b && atoll(b) > 0)
        rt->backoff_ms = atoll(b);
    ty_cgroups_detect(&rt->cg);
    rt->rules_pass = TY_NEW(uv_timer_t);
    uv_timer_init(loop, rt->rules_pass);
    rt->rules_pass->data = rt;
    *out = rt;
    return 0;
}

int ty_runtime_gpu_count(const ty_runtime *rt) { return rt->gpus.n; }

static gpu_pool *pool_of(const ty_runtime *rt, const char *node)
{
    gpu_pool *g = node ? ty_map_gets(&rt->pools, node) : NULL;
    return g ? g : (gpu_pool *)&rt->gpus;
}

static gpu_pool *pool_of_pod(const ty_runtime *rt, const json_t *podj)
{
    return pool_of(rt, json_string_value(
                           json_object_get(json_object_get(podj, "spec"), "nodeName")));
}

static int pool_free(const gpu_pool *g)
{
    int n = 0;
    for (int i = 0; i < g->n; i++)
        n += !g->used[i];
    return n;
}

void ty_runtime_set_node_gpus(ty_runtime *rt, const char *node_name, int gpus)
{
    gpu_pool *g = ty_map_gets(&rt->pools, node_name);
    if (!g) {
        g = TY_NEW(gpu_pool);
        ty_map_puts(&rt->pools, node_name, g);
    } else {
        free(g->used);
    }
    g->n = gpus < 0 ? 0 : gpus;
    g->used = ty_calloc((size_t)g->n + 1, sizeof(bool));
}

int ty_runtime_node_gpus_free(const ty_runtime *rt, const char *node_name)
{
    return pool_free(pool_of(rt, node_name));
}

char *ty_runtime_pod_dir(const ty_runtime *rt, const char *ns, const char *name,
                         const char *uid)
{
    return ty_asprintf("%s/pods/%s_%s_%s", rt->state_dir, ns, name, uid);
}

bool ty_runtime_has_pod(const ty_runtime *rt, const char *uid)
{
    pod *p = ty_map_gets(&rt->pods, uid);
    return p && !p->gone;
}

int ty_runtime_gpus_free(const ty_runtime *rt) { return pool_free(&rt->gpus); }

static void pod_free(pod *p)
{
    if (p->pidfd >= 0)
        close(p->pidfd);
    if (p->netns >= 0)
        close(p->netns);
    free(p->lost);
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
    p->open_handles = 1 + p->has_proc + p->has_ch + p->has_poll;
    if (p->has_proc)
        uv_close((uv_handle_t *)&p->proc, handle_closed);
    if (p->has_ch)
        uv_close((uv_handle_t *)&p->ch, handle_closed);
    if (p->has_poll)
        uv_close((uv_handle_t *)&p->pidpoll, handle_closed);
    uv_close((uv_handle_t *)&p->backstop, handle_closed);
}

/* Signals the shim: through libuv for our child, through its pidfd for an adopted one (a pidfd
 * cannot hit another process that reused the pid). */
static void shim_kill(pod *p, int sig)
{
    if (p->has_proc)
        uv_process_kill(&p->proc, sig);
    else if (p->pidfd >= 0)
        syscall(SYS_pidfd_send_signal, p->pidfd, sig, NULL, 0);
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
        p->pool->used[p->gpus[i]] = false;
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
    /* Its namespace goes with its last process once we let go of it, and takes the veth
     * with it (net/podnet.h); without our reference to it, the veth is deleted here. */
    if (p->netns >= 0) {
        close(p->netns);
        p->netns = -1;
        if (rt->net)
            ty_podnet_forget(rt->net, p->uid);
    } else if (rt->net) {
        ty_podnet_del(rt->net, p->uid);
    }
    json_t *st = p->last ? json_deep_copy(p->last) : json_pack("{s:s}", "phase", "Failed");
    if (p->lost) {
        mark_dead(st, p->lost);
    } else if (p->term_signal || p->exit_status != 0) {
        TY_AUTOFREE char *why = p->term_signal
            ? ty_asprintf("pod supervisor was killed by signal %d", p->term_signal)
            : ty_asprintf("pod supervisor exited with status %lld", (long long)p->exit_status);
        mark_dead(st, why);
    }
    /* No `gone` marker here: only once the caller has recorded the end durably
     * (ty_runtime_end_recorded) may a later trainyard skip reporting it again. */
    ty_map_dels(&rt->pods, p->uid);
    close_handles(p);
    rt->fn(rt->ctx, p->ns, p->name, p->uid, st, true);
    /* p is freed by the close callbacks, on a later turn */
    if (p->remove_dir)
        ty_rm_tree(p->dir);
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

void ty_runtime_set_event_fn(ty_runtime *rt, ty_runtime_event_fn fn, void *ctx)
{
    rt->event_fn = fn;
    rt->event_ctx = ctx;
}

/* "event {type, reason, message}": what the shim saw that the kubelet would record. */
static void on_event_line(pod *p, const char *text)
{
    if (!p->rt->event_fn)
        return;
    json_t *ev = json_loads(text, 0, NULL);
    const char *type = json_string_value(json_object_get(ev, "type"));
    const char *reason = json_string_value(json_object_get(ev, "reason"));
    const char *message = json_string_value(json_object_get(ev, "message"));
    if (type && reason && message)
        p->rt->event_fn(p->rt->event_ctx, p->ns, p->name, p->uid, type, reason, message);
    json_decref(ev);
}

static void on_line(pod *p, char *line)
{
    if (strncmp(line, "event ", 6) == 0) {
        on_event_line(p, line + 6);
        return;
    }
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
    shim_kill(p, SIGKILL);
}

/* Binds and listens on <dir>/control.sock (a stale one from an earlier shim is replaced). */
static int ctl_listen(const char *dir)
{
    struct sockaddr_un a;
    int dfd, e = 0;
    int len = ty_rt_ctl_addr(dir, &a, &dfd);
    if (len < 0)
        return -1;
    unlink(a.sun_path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && (bind(fd, (struct sockaddr *)&a, (socklen_t)len) < 0 || listen(fd, 8) < 0)) {
        e = errno;
        close(fd);
        fd = -1;
    } else if (fd < 0)
        e = errno;
    if (dfd >= 0)
        close(dfd);
    errno = e;
    return fd;
}

/* Connects to a shim's control socket; blocking, which for a local listening socket with room
 * in its backlog returns at once. */
static int ctl_connect(const char *dir)
{
    struct sockaddr_un a;
    int dfd, e = 0;
    int len = ty_rt_ctl_addr(dir, &a, &dfd);
    if (len < 0)
        return -1;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, (socklen_t)len) < 0) {
        e = errno;
        close(fd);
        fd = -1;
    } else if (fd < 0)
        e = errno;
    if (dfd >= 0)
        close(dfd);
    errno = e;
    return fd;
}

static json_t *load_json(const char *dir, const char *file)
{
    TY_AUTOFREE char *path = ty_asprintf("%s/%s", dir, file);
    json_t *j = json_load_file(path, 0, NULL);
    if (j && !json_is_object(j)) {
        json_decref(j);
        j = NULL;
    }
    return j;
}

/* A pidfd for the shim recorded in state.json when that very process still runs (pid and
 * start time match; checked after opening the pidfd, so the pid cannot be reused in between),
 * else -1. */
static int live_shim(const json_t *state)
{
    int pid = (int)json_integer_value(json_object_get(state, "shimPid"));
    json_int_t start = json_integer_value(json_object_get(state, "shimStartTime"));
    if (pid <= 1 || start <= 0)
        return -1;
    int fd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (fd < 0)
        return -1;
    if (ty_rt_proc_start(pid) != (unsigned long long)start) {
        close(fd);
        return -1;
    }
    return fd;
}

/* The pod's controller owner reference with a name and uid that make a path, or NULL. */
static const json_t *controller_of(const json_t *podj)
{
    size_t i;
    json_t *o;
    json_array_foreach(json_object_get(json_object_get(podj, "metadata"), "ownerReferences"), i,
                       o)
    {
        const char *n = json_string_value(json_object_get(o, "name"));
        const char *u = json_string_value(json_object_get(o, "uid"));
        if (json_is_true(json_object_get(o, "controller")) && n && u && *n && *u &&
            !strchr(n, '/') && !strchr(u, '/') && strcmp(n, "..") != 0 && strcmp(n, ".") != 0)
            return o;
    }
    return NULL;
}

/* Applies the Service rules in the pod's namespace; a failure is logged (once a runtime:
 * libnftables missing fails every pod alike) and the pod runs without them. */
static int apply_rules(pod *p, const char *rules)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", p->netns);
    ty_error err = {0};
    if (ty_proxy_apply(path, rules, &err) == 0)
        return 0;
    if (!p->rt->rules_warned)
        ty_warn("pod %s/%s: Services are not reachable from it: %s", p->ns, p->name,
                err.msg);
    p->rt->rules_warned = true;
    ty_error_clear(&err);
    return -1;
}

/* A loop turn applies rules for at most this long: 100 pods take 100-300 ms in all (1-3 ms
 * each, by the number of endpoints), which must not hold up the API server. */
#define RULES_SLICE_NS (10 * 1000 * 1000)

static void rules_pass(uv_timer_t *t)
{
    ty_runtime *rt = t->data;
    int64_t t0 = ty_time_mono_ns();
    size_t it = 0;
    const ty_map_slot *slot;
    while (ty_map_next(&rt->pods, &it, &slot)) {
        pod *p = slot->value;
        if (p->netns < 0 || p->gone || p->rules_gen == rt->rules_gen)
            continue;
        if (ty_time_mono_ns() - t0 > RULES_SLICE_NS) {
            uv_timer_start(t, rules_pass, 0, 0);
            return;
        }
        p->rules_gen = rt->rules_gen;
        if (apply_rules(p, rt->rules) == 0)
            rt->rules_applied++;
    }
    if (rt->rules_applied)
        ty_debug("service rules: applied in %d pods, %.1f ms after they changed",
                 rt->rules_applied, (double)(ty_time_mono_ns() - rt->rules_since) / 1e6);
    rt->rules_applied = 0;
}

void ty_runtime_set_service_rules(ty_runtime *rt, const char *rules, bool empty)
{
    if (rt->rules && strcmp(rt->rules, rules) == 0)
        return;
    free(rt->rules);
    rt->rules = ty_strdup(rules);
    rt->rules_empty = empty;
    rt->rules_gen++;
    if (!uv_is_active((uv_handle_t *)rt->rules_pass)) {
        rt->rules_since = ty_time_mono_ns();
        uv_timer_start(rt->rules_pass, rules_pass, 0, 0);
    }
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
    gpu_pool *pool = pool_of_pod(rt, podj);
    if (need > pool_free(pool))
        return ty_fail(err, "start pod %s/%s: needs %d nvidia.com/gpu, %d of %d free", ns, name,
                       need, pool_free(pool), pool->n);

    pod *p = TY_NEW(pod);
    p->rt = rt;
    p->pool = pool;
    p->pidfd = -1;
    p->netns = -1;
    p->uid = ty_strdup(uid);
    p->ns = ty_strdup(ns);
    p->name = ty_strdup(name);
    p->dir = ty_runtime_pod_dir(rt, ns, name, uid);
    ty_buf_init(&p->line);
    /* Never two shims for one pod: one left by an earlier trainyard is adopted, not doubled. */
    json_t *old = load_json(p->dir, "state.json");
    int oldfd = old ? live_shim(old) : -1;
    json_decref(old);
    if (oldfd >= 0) {
        close(oldfd);
        ty_fail(err, "start pod %s/%s: uid %s runs already under a shim left by an earlier "
                "trainyard (adopt it)", ns, name, uid);
        pod_free(p);
        return -1;
    }
    json_t *g = json_object_get(json_object_get(podj, "spec"), "terminationGracePeriodSeconds");
    p->grace = json_is_integer(g) && json_integer_value(g) >= 0 ? json_integer_value(g) : 30;
    if ((mkdir(p->dir, 0700) < 0 && errno != EEXIST) || chmod(p->dir, 0700) < 0) {
        ty_fail_errno(err, errno, "start pod %s/%s: create %s", ns, name, p->dir);
        pod_free(p);
        return -1;
    }
    /* a dir reused for the same uid: its old end and state are not this run's */
    TY_AUTOFREE char *stale_gone = ty_asprintf("%s/gone", p->dir);
    TY_AUTOFREE char *stale_state = ty_asprintf("%s/state.json", p->dir);
    unlink(stale_gone);
    unlink(stale_state);
    json_t *ids = json_array();
    p->gpus = ty_calloc((size_t)need + 1, sizeof(int));
    for (int i = 0; i < pool->n && p->n_gpus < need; i++) {
        if (pool->used[i])
            continue;
        p->gpus[p->n_gpus++] = i;
        json_array_append_new(ids, json_sprintf("%d", i));
    }
    json_t *doc = json_pack(
        "{s:O, s:{s:s, s:s, s:s, s:s, s:o, s:b, s:i, s:I}}", "pod", (json_t *)podj, "runtime",
        "podIP", pod_ip ? pod_ip : "127.0.0.1", "hostIP",
        rt->net ? ty_podnet_gateway(rt->net) : "127.0.0.1", "nodeName", rt->node,
        "workdir", rt->workdir, "gpus", ids, "dieWithParent", rt->die_with_parent, "parentPid",
        (int)getpid(), "backoffMs", (json_int_t)rt->backoff_ms);
    const char *spec_node = json_string_value(
        json_object_get(json_object_get(podj, "spec"), "nodeName"));
    if (spec_node)
        json_object_set_new(json_object_get(doc, "runtime"), "nodeName", json_string(spec_node));
    if (rt->images_dir)
        json_object_set_new(json_object_get(doc, "runtime"), "imagesDir",
                            json_string(rt->images_dir));
    if (rt->require_images)
        json_object_set_new(json_object_get(doc, "runtime"), "requireImages", json_true());
    const json_t *owner = controller_of(podj);
    if (rt->job_dirs && owner)
        json_object_set_new(
            json_object_get(doc, "runtime"), "jobDir",
            json_sprintf("%s/jobs/%s_%s_%s", rt->state_dir, ns,
                         json_string_value(json_object_get(owner, "name")),
                         json_string_value(json_object_get(owner, "uid"))));
    /* Its own network: the namespace (handed to the shim as fd 3) and the kubelet's files. */
    int nsfd = -1;
    bool host_network =
        json_is_true(json_object_get(json_object_get(podj, "spec"), "hostNetwork"));
    if (rt->net && !host_network && !pod_ip) {
        ty_fail(err, "start pod %s/%s: a pod network needs the pod's address", ns, name);
        json_decref(doc);
        pod_free(p);
        return -1;
    }
    if (rt->net && !host_network) {
        TY_AUTOFREE char *etc = ty_asprintf("%s/etc", p->dir);
        TY_AUTOFREE char *hostname = ty_podnet_hostname(podj);
        if (ty_podnet_write_etc(etc, podj, pod_ip, ty_podnet_gateway(rt->net), err) < 0 ||
            (nsfd = ty_podnet_add(rt->net, uid, pod_ip, err)) < 0) {
            ty_error_wrap(err, "start pod %s/%s", ns, name);
            json_decref(doc);
            pod_free(p);
            return -1;
        }
        json_object_set_new(json_object_get(doc, "runtime"), "network",
                            json_pack("{s:i, s:s, s:s}", "netnsFd", 3, "hostname", hostname,
                                      "etcDir", etc));
        /* The Service rules go in before any container runs: its first connect works. */
        p->netns = fcntl(nsfd, F_DUPFD_CLOEXEC, 3);
        p->rules_gen = rt->rules_gen;
        if (p->netns >= 0 && rt->rules && !rt->rules_empty)
            apply_rules(p, rt->rules);
    } else if (rt->net) {
        /* hostNetwork: the host's namespace, and the kubelet's resolv.conf by dnsPolicy (the
         * cluster DNS with ClusterFirstWithHostNet, reachable at the gateway from the host) */
        TY_AUTOFREE char *etc = ty_asprintf("%s/etc", p->dir);
        if (ty_podnet_write_etc(etc, podj, pod_ip ? pod_ip : ty_podnet_gateway(rt->net),
                                ty_podnet_gateway(rt->net), err) < 0) {
            ty_error_wrap(err, "start pod %s/%s", ns, name);
            json_decref(doc);
            pod_free(p);
            return -1;
        }
        json_object_set_new(json_object_get(doc, "runtime"), "network",
                            json_pack("{s:s}", "etcDir", etc));
    }
    TY_AUTOFREE char *path = ty_asprintf("%s/pod.json", p->dir);
    int rc = ty_rt_write_json_private(path, doc);
    json_decref(doc);
    if (rc < 0) {
        ty_fail(err, "start pod %s/%s: write %s", ns, name, path);
        goto fail_net;
    }

    /* The control socket: we listen, connect (the connection waits in the backlog), and hand
     * the listener to the shim as its stdin; a later trainyard connects the same way. */
    int lfd = ctl_listen(p->dir);
    int cfd = lfd >= 0 ? ctl_connect(p->dir) : -1;
    if (cfd < 0) {
        ty_fail_errno(err, errno, "start pod %s/%s: control socket in %s", ns, name, p->dir);
        if (lfd >= 0)
            close(lfd);
        goto fail_net;
    }
    uv_pipe_init(rt->loop, &p->ch, 0);
    uv_timer_init(rt->loop, &p->backstop);
    p->has_ch = p->has_proc = true;
    p->ch.data = p->backstop.data = p->proc.data = p;
    uv_pipe_open(&p->ch, cfd);
    char *args[] = {rt->self_exe, "shim", p->dir, NULL};
    /* A shim that outlives us must not hold our stderr (a pipe of whoever started us would
     * never see EOF): its complaints go to <pod-dir>/shim.log then. */
    int efd = 2;
    if (!rt->die_with_parent) {
        TY_AUTOFREE char *elog = ty_asprintf("%s/shim.log", p->dir);
        efd = open(elog, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (efd < 0)
            efd = 2;
    }
    uv_stdio_container_t stdio[4] = {
        {.flags = UV_INHERIT_FD, .data.fd = lfd},
        {.flags = UV_IGNORE},
        {.flags = UV_INHERIT_FD, .data.fd = efd},
        {.flags = UV_INHERIT_FD, .data.fd = nsfd},
    };
    /* Detached = its own session: a Ctrl-C in trainyard's terminal must not reach the shims
     * (trainyard stops pods with their grace period instead); the death signal still holds. */
    uv_process_options_t opt = {.exit_cb = on_shim_exit, .file = rt->self_exe, .args = args,
                                .stdio_count = nsfd >= 0 ? 4 : 3, .stdio = stdio,
                                .flags = UV_PROCESS_DETACHED};
    int e = uv_spawn(rt->loop, &p->proc, &opt);
    close(lfd);
    if (nsfd >= 0)
        close(nsfd); /* the shim holds it now (or nobody, and the namespace is gone) */
    if (efd != 2)
        close(efd);
    if (e < 0) {
        ty_fail(err, "start pod %s/%s: spawn %s: %s", ns, name, rt->self_exe, uv_strerror(e));
        /* uv_spawn failed: the process handle still needs closing */
        if (rt->net)
            ty_podnet_del(rt->net, uid);
        p->detached = true;
        close_handles(p);
        return -1;
    }
    for (int i = 0; i < p->n_gpus; i++)
        pool->used[p->gpus[i]] = true;
    uv_read_start((uv_stream_t *)&p->ch, out_alloc, on_out);
    ty_map_puts(&rt->pods, uid, p);
    rt->live++;
    return 0;
fail_net:
    if (nsfd >= 0) {
        close(nsfd);
        ty_podnet_del(rt->net, uid);
    }
    pod_free(p);
    return -1;
}

/* Sends one command line to the shim. send with MSG_NOSIGNAL, not uv_write: a shim that just
 * closed its end must give EPIPE, not a SIGPIPE that kills trainyard. A line this short always
 * fits the socket buffer (only stop commands go this way). */
static int send_cmd(pod *p, const char *cmd)
{
    uv_os_fd_t fd;
    if (!p->has_ch || p->eof || uv_fileno((uv_handle_t *)&p->ch, &fd) < 0)
        return -1;
    size_t len = strlen(cmd);
    ssize_t n;
    while ((n = send(fd, cmd, len, MSG_NOSIGNAL)) < 0 && errno == EINTR)
        ;
    return n == (ssize_t)len ? 0 : -1;
}

void ty_runtime_stop_pod(ty_runtime *rt, const char *uid, int64_t grace_seconds)
{
    pod *p = ty_map_gets(&rt->pods, uid);
    /* Once stopping, only a stop with no grace goes through (to kill what is left now). */
    if (!p || p->gone || (p->stopping && grace_seconds != 0))
        return;
    p->stopping = true;
    int64_t grace = grace_seconds >= 0 ? grace_seconds : p->grace;
    /* Grace periods are the user's int64 seconds: beyond ~31 years they mean "never kill",
     * and the timers' milliseconds (here and in the shim) must not overflow. */
    if (grace > GRACE_MAX_S)
        grace = GRACE_MAX_S;
    char cmd[48];
    snprintf(cmd, sizeof(cmd), "stop %lld\n", (long long)grace);
    if (send_cmd(p, cmd) < 0) {
        /* no channel (the shim closed it, or an adopted shim took no connection): its SIGTERM
         * stops the pod at once */
        if (!p->exited)
            shim_kill(p, grace == 0 ? SIGKILL : SIGTERM);
        grace = 0;
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

static void free_handle(uv_handle_t *h) { free(h); }

void ty_runtime_free(ty_runtime *rt)
{
    if (!rt)
        return;
    size_t it = 0;
    const ty_map_slot *slot;
    while (ty_map_next(&rt->pods, &it, &slot)) {
        pod *p = slot->value;
        if (!p->exited)
            shim_kill(p, SIGKILL);
        p->detached = true;
        if (!p->gone)
            close_handles(p);
    }
    ty_map_free(&rt->pods);
    ty_cgroups_free(&rt->cg);
    free(rt->state_dir), free(rt->self_exe), free(rt->workdir), free(rt->node);
    free(rt->images_dir);
    free(rt->rules);
    uv_close((uv_handle_t *)rt->rules_pass, free_handle);
    free(rt->gpus.used);
    const ty_map_slot *ps;
    for (size_t i = 0; ty_map_next(&rt->pools, &i, &ps);) {
        gpu_pool *g = ps->value;
        free(g->used);
        free(g);
    }
    ty_map_free(&rt->pools);
    free(rt);
}

/* ---- re-adoption ------------------------------------------------------------------------ */

static void on_shim_gone(uv_poll_t *h, int status, int events)
{
    (void)status, (void)events;
    pod *p = h->data;
    uv_poll_stop(h);
    p->exited = true;
    uv_timer_stop(&p->backstop);
    /* Not our child: no exit status. A shim that ended its pod cleanly says so in state.json. */
    json_t *state = load_json(p->dir, "state.json");
    if (!json_is_true(json_object_get(state, "finished")) && !p->lost)
        p->lost = ty_strdup("pod supervisor died (adopted after a trainyard restart)");
    json_decref(state);
    maybe_gone(p);
}

static void report_dead(uv_timer_t *t) { maybe_gone(t->data); }

/* A dead shim's containers normally died with it (pid namespace, death signals); this is the
 * backstop for any that did not, by pid and start time so that no stranger is hit. */
static void kill_leftovers(const json_t *state)
{
    json_t *c;
    size_t i;
    json_array_foreach(json_object_get(state, "containers"), i, c) {
        int pid = (int)json_integer_value(json_object_get(c, "pid"));
        json_int_t start = json_integer_value(json_object_get(c, "startTime"));
        if (pid > 1 && start > 0 && json_is_true(json_object_get(c, "running")) &&
            ty_rt_proc_start(pid) == (unsigned long long)start) {
            kill(-pid, SIGKILL); /* each container is its own process group */
            kill(pid, SIGKILL);
        }
    }
}

/* The network namespace of an adopted shim (it joined its pod's at its start): opened through
 * /proc, then checked to be still that process's (the pidfd says it has not exited, so the pid
 * was not reused in between). -1 when it cannot be had. */
static int adopted_netns(const json_t *state, int pidfd)
{
    json_int_t pid = json_integer_value(json_object_get(state, "shimPid"));
    if (pid <= 0)
        return -1;
    char path[64];
    snprintf(path, sizeof(path), "/proc/%lld/ns/net", (long long)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0 && syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0) < 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

int ty_runtime_adopt(ty_runtime *rt, const char *pod_dir, ty_error *err)
{
    if (rt->shutting_down)
        return ty_fail(err, "adopt %s: the runtime is shutting down", pod_dir);
    TY_AUTOFREE char *dir = ty_strdup(pod_dir);
    for (size_t n = strlen(dir); n > 1 && dir[n - 1] == '/'; n--)
        dir[n - 1] = '\0';
    json_t *doc = load_json(dir, "pod.json");
    json_t *state = load_json(dir, "state.json");
    json_t *md = json_object_get(json_object_get(doc, "pod"), "metadata");
    const char *uid = json_string_value(json_object_get(md, "uid"));
    const char *name = json_string_value(json_object_get(md, "name"));
    const char *ns = json_string_value(json_object_get(md, "namespace"));
    if (!ns)
        ns = "default";
    TY_AUTOFREE char *gone_marker = ty_asprintf("%s/gone", dir);
    int rc = 0;
    if (!doc || !state || !uid || !name || !json_object_get(state, "status")) {
        /* never got going (or not a pod dir of ours): nothing runs there to report */
        ty_rm_tree(dir);
        goto out;
    }
    if (ty_map_gets(&rt->pods, uid))
        goto out; /* ours already */
    int pidfd = live_shim(state);
    if (pidfd < 0 && access(gone_marker, F_OK) == 0)
        goto out; /* ended, and its end was reported: only its logs remain */

    pod *p = TY_NEW(pod);
    p->rt = rt;
    p->pool = pool_of_pod(rt, json_object_get(doc, "pod"));
    p->adopted = true;
    p->pidfd = pidfd;
    p->netns = -1;
    if (pidfd >= 0 && json_object_get(json_object_get(doc, "runtime"), "network"))
        p->netns = adopted_netns(state, pidfd);
    p->uid = ty_strdup(uid);
    p->ns = ty_strdup(ns);
    p->name = ty_strdup(name);
    p->dir = ty_strdup(dir);
    ty_buf_init(&p->line);
    json_t *g = json_object_get(json_object_get(json_object_get(doc, "pod"), "spec"),
                                "terminationGracePeriodSeconds");
    p->grace = json_is_integer(g) && json_integer_value(g) >= 0 ? json_integer_value(g) : 30;
    p->last = json_incref(json_object_get(state, "status"));
    uv_timer_init(rt->loop, &p->backstop);
    p->backstop.data = p;
    ty_map_puts(&rt->pods, uid, p);
    rt->live++;
    rc = 1;

    if (pidfd < 0) {
        /* The shim is gone: report its last status, running containers as killed, then gone,
         * from the loop (as every other status), so that the restart policy applies. */
        p->exited = p->eof = true;
        if (!json_is_true(json_object_get(state, "finished"))) {
            kill_leftovers(state);
            p->lost = ty_asprintf("pod supervisor was lost while trainyard was down (shim pid "
                                  "%lld no longer runs)",
                                  (long long)json_integer_value(json_object_get(state, "shimPid")));
        }
        uv_timer_start(&p->backstop, report_dead, 0, 0);
        goto out;
    }

    /* Alive: its GPUs are taken again (until it reports an end), its exit is watched through the
     * pidfd, and the channel is reconnected; the shim sends its current status at once. */
    const char *phase = json_string_value(json_object_get(p->last, "phase"));
    bool ended = phase && (strcmp(phase, "Succeeded") == 0 || strcmp(phase, "Failed") == 0);
    json_t *ids = json_object_get(json_object_get(doc, "runtime"), "gpus"), *id;
    size_t i;
    p->gpus = ty_calloc(json_array_size(ids) + 1, sizeof(int));
    json_array_foreach(ids, i, id) {
        int d = json_is_string(id) ? atoi(json_string_value(id)) : -1;
        if (ended)
            break;
        if (d < 0 || d >= p->pool->n || p->pool->used[d]) {
            ty_warn("pod %s/%s: GPU %d of the adopted pod is unknown here or taken twice", ns,
                    name, d);
            continue;
        }
        p->pool->used[d] = true;
        p->gpus[p->n_gpus++] = d;
    }
    uv_poll_init(rt->loop, &p->pidpoll, pidfd);
    p->pidpoll.data = p;
    p->has_poll = true;
    uv_poll_start(&p->pidpoll, UV_READABLE, on_shim_gone);
    int cfd = ctl_connect(dir);
    if (cfd < 0) {
        /* alive but not listening: it is finishing; its exit (the pidfd) reports the end */
        ty_warn("pod %s/%s: cannot connect to %s/control.sock: %s", ns, name, dir,
                strerror(errno));
        p->eof = true;
        goto out;
    }
    uv_pipe_init(rt->loop, &p->ch, 0);
    p->ch.data = p;
    p->has_ch = true;
    uv_pipe_open(&p->ch, cfd);
    uv_read_start((uv_stream_t *)&p->ch, out_alloc, on_out);
out:
    json_decref(doc);
    json_decref(state);
    return rc;
}

int ty_runtime_adopt_all(ty_runtime *rt, ty_error *err)
{
    TY_AUTOFREE char *pods = ty_asprintf("%s/pods", rt->state_dir);
    DIR *d = opendir(pods);
    if (!d)
        return ty_fail_errno(err, errno, "adopt: read %s", pods);
    /* collect first: adopting may remove dirs */
    size_t n = 0, cap = 16;
    char **names = ty_calloc(cap, sizeof(char *));
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        if (n == cap)
            names = ty_realloc(names, (cap *= 2) * sizeof(char *));
        names[n++] = ty_asprintf("%s/%s", pods, de->d_name);
    }
    closedir(d);
    int count = 0;
    for (size_t i = 0; i < n; i++) {
        struct stat sb;
        bool ours = false;
        size_t it = 0;
        const ty_map_slot *slot;
        while (!ours && ty_map_next(&rt->pods, &it, &slot))
            ours = strcmp(((pod *)slot->value)->dir, names[i]) == 0;
        if (!ours && lstat(names[i], &sb) == 0 && S_ISDIR(sb.st_mode)) {
            TY_CLEANUP_ERROR ty_error e = TY_ERROR_INIT;
            int rc = ty_runtime_adopt(rt, names[i], &e);
            if (rc < 0)
                ty_warn("%s", e.msg);
            else
                count += rc;
        }
        free(names[i]);
    }
    free(names);
    return count;
}

void ty_runtime_detach(ty_runtime *rt, void (*done)(void *), void *arg)
{
    rt->shutting_down = true;
    rt->done = done;
    rt->done_arg = arg;
    size_t n = 0, it = 0;
    const ty_map_slot *slot;
    pod **ps = ty_calloc(rt->pods.count + 1, sizeof(pod *));
    while (ty_map_next(&rt->pods, &it, &slot))
        ps[n++] = slot->value;
    for (size_t i = 0; i < n; i++) {
        /* Closing our end is all: the shim keeps the pod running and waits for a trainyard.
         * (A spawned shim's process handle closes without a signal.) */
        ty_map_dels(&rt->pods, ps[i]->uid);
        release_gpus(ps[i]);
        ps[i]->gone = true; /* no more callbacks for it from this runtime */
        close_handles(ps[i]);
    }
    free(ps);
    if (rt->live == 0 && rt->done) {
        rt->done = NULL;
        done(arg);
    }
}

/* <state_dir>/pods/<ns>_<name>_<uid>, or NULL when a part could leave that directory. */
static char *pod_dir_of(const ty_runtime *rt, const char *ns, const char *name, const char *uid)
{
    const char *parts[] = {ns, name, uid};
    for (int i = 0; i < 3; i++)
        if (!parts[i] || !*parts[i] || strchr(parts[i], '/') || strcmp(parts[i], "..") == 0)
            return NULL;
    return ty_asprintf("%s/pods/%s_%s_%s", rt->state_dir, ns, name, uid);
}

void ty_runtime_end_recorded(ty_runtime *rt, const char *ns, const char *name, const char *uid)
{
    if (ty_runtime_has_pod(rt, uid))
        return; /* not ended */
    TY_AUTOFREE char *dir = pod_dir_of(rt, ns, name, uid);
    TY_AUTOFREE char *marker = dir ? ty_asprintf("%s/gone", dir) : NULL;
    int fd = marker ? open(marker, O_WRONLY | O_CREAT | O_CLOEXEC, 0600) : -1;
    if (fd >= 0)
        close(fd);
}

void ty_runtime_remove_pod(ty_runtime *rt, const char *ns, const char *name, const char *uid)
{
    pod *p = ty_map_gets(&rt->pods, uid);
    if (p && !p->gone) {
        p->remove_dir = true;
        return;
    }
    TY_AUTOFREE char *dir = pod_dir_of(rt, ns, name, uid);
    if (dir)
        ty_rm_tree(dir);
}

int ty_runtime_sweep(ty_runtime *rt, bool (*exists)(void *ctx, const char *uid), void *ctx,
                     ty_error *err)
{
    TY_AUTOFREE char *pods = ty_asprintf("%s/pods", rt->state_dir);
    DIR *d = opendir(pods);
    if (!d)
        return ty_fail_errno(err, errno, "sweep: read %s", pods);
    json_t *doomed = json_array();
    struct dirent *de;
    while ((de = readdir(d))) {
        /* <ns>_<name>_<uid>: names and uids have no '_' */
        const char *uid = strrchr(de->d_name, '_');
        if (de->d_name[0] == '.' || !uid || exists(ctx, uid + 1))
            continue;
        json_array_append_new(doomed, json_string(de->d_name));
    }
    closedir(d);
    size_t i;
    json_t *v;
    json_array_foreach(doomed, i, v) {
        const char *entry = json_string_value(v);
        const char *uid = strrchr(entry, '_') + 1;
        pod *p = ty_map_gets(&rt->pods, uid);
        if (p && !p->gone) {
            /* deleted while trainyard was down, yet still running: nothing else stops it */
            ty_warn("pod %s/%s: its object is gone; stopping it", p->ns, p->name);
            p->remove_dir = true;
            ty_runtime_stop_pod(rt, uid, 0);
            continue;
        }
        TY_AUTOFREE char *dir = ty_asprintf("%s/%s", pods, entry);
        ty_rm_tree(dir);
    }
    int n = (int)json_array_size(doomed);
    json_decref(doomed);
    return n;
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

int ty_runtime_usage(ty_runtime *rt, ty_runtime_usage_fn fn, void *ctx, ty_error *err)
{
    ty_rt_procs procs;
    if (ty_rt_procs_read(&procs, err) < 0)
        return -1;
    size_t it = 0;
    const ty_map_slot *slot;
    while (ty_map_next(&rt->pods, &it, &slot)) {
        pod *p = slot->value;
        if (p->gone || p->stopping)
            continue;
        TY_AUTOFREE char *path = ty_asprintf("%s/state.json", p->dir);
        json_t *state = json_load_file(path, 0, NULL);
        size_t i;
        json_t *c;
        json_array_foreach(json_object_get(state, "containers"), i, c)
        {
            const char *name = json_string_value(json_object_get(c, "name"));
            if (!name || json_is_true(json_object_get(c, "init")) ||
                !json_is_true(json_object_get(c, "running")))
                continue;
            uint64_t cpu, mem;
            int pid = (int)json_integer_value(json_object_get(c, "pid"));
            unsigned long long start =
                (unsigned long long)json_integer_value(json_object_get(c, "startTime"));
            if (ty_rt_procs_subtree(&procs, pid, start, &cpu, &mem))
                fn(ctx, p->ns, p->name, p->uid, name, cpu, mem);
        }
        json_decref(state);
    }
    ty_rt_procs_free(&procs);
    return 0;
}

int ty_runtime_node_usage(uint64_t *cpu_ns, uint64_t *memory_bytes, ty_error *err)
{
    return ty_rt_node_usage(cpu_ns, memory_bytes, err);
}
