/* The pod supervisor: `trainyard shim <pod-dir>` owns one pod's processes.
 *
 * Process layout (as root): the shim process P, a child of trainyard, unshares a pid namespace
 * and forks S, pid 1 of that namespace, which does all the work; P only waits for S. Whatever
 * dies, nothing is left behind:
 *   - trainyard dies (pods_die_with_parent): P has PR_SET_PDEATHSIG(SIGKILL) -> P dies;
 *   - P dies (even SIGKILL): S has PR_SET_PDEATHSIG(SIGKILL) -> S dies;
 *   - S dies: the kernel kills every process of the namespace, grandchildren included.
 * Without the right to unshare (not root), P is S: it becomes a child subreaper, containers get
 * PR_SET_PDEATHSIG(SIGKILL), and a SIGTERM from its own parent death signal makes it kill every
 * container's group and cgroup before exiting; grandchildren that left their process group can
 * then only be caught by the cgroup, so that mode is best effort (documented in runtime.h).
 *
 * Without pods_die_with_parent nothing ties P to trainyard: a dead trainyard leaves the pod
 * running, supervised as before, for the next trainyard to re-adopt (see runtime.h).
 *
 * The shim ends when told to stop, or by itself once the pod has ended for good (phase
 * Succeeded/Failed, no restart to come): the final status goes to state.json (finished) and
 * to the attached trainyard first, so nothing is lost when no trainyard is there to see it.
 *
 * S runs a libuv loop: SIGCHLD reaps every child (as pid 1 it also inherits orphans), container
 * stdout/stderr pipes are turned into CRI log lines, timers drive restart back-off and the grace
 * period, and the control socket (<pod-dir>/control.sock, handed over as stdin, listening)
 * takes one trainyard at a time: status lines out, commands in (runtime_int.h). Losing that
 * trainyard changes nothing but the reporting. Each container is its own session/process
 * group (setsid) and, where cgroups exist, its own cgroup "<uid>/<container>" with its limits. */
#include <errno.h>
#include <ctype.h>
#include <fcntl.h>
#include <grp.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <linux/magic.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "base/base64.h"
#include "base/buf.h"
#include "base/fs.h"
#include "base/mem.h"
#include "base/quantity.h"
#include "base/time.h"
#include "image/image.h"
#include "runtime/cgroup.h"
#include "runtime/runtime_int.h"

extern char **environ;

#define LOG_LINE_MAX 16384 /* longer lines are split into P records, as containerd does */

typedef struct shim shim;
typedef struct ctr ctr;

typedef struct logfile {
    int fd;
    int refs;
} logfile;

typedef struct stream {
    uv_pipe_t pipe;
    ctr *c;
    logfile *lf;
    const char *tag; /* "stdout" / "stderr" */
    ty_buf line;
} stream;

typedef enum { C_WAITING, C_RUNNING, C_TERMINATED } cstate;

struct ctr {
    shim *s;
    json_t *spec; /* borrowed from s->pod */
    const char *name;
    bool init;
    int64_t mem_bytes, cpu_milli;
    int gpu_first, gpu_count;
    bool has_cgroup;
    char *cg_rel;

    cstate st;
    const char *wait_reason;
    char *wait_message;
    pid_t pid;      /* in our pid namespace; 0 when not running */
    pid_t host_pid; /* as trainyard sees it */
    unsigned long long proc_start; /* field 22 of /proc/<pid>/stat */
    int64_t started_ns, finished_ns;
    int exit_code, signal;
    const char *term_reason;
    char *term_message;
    json_t *last_state; /* {"terminated": {...}} of the previous run, or NULL */
    char *image_id;     /* name@digest of the image the current run started from, or NULL */
    char *crun_log;     /* crun's own error log of the current run (from an image), or NULL */
    bool pull_failed;     /* the pull failed without --require-images: run on the host */
    int restarts;
    int64_t oom_base;
    uv_timer_t backoff;
    /* pulling its image (a child `trainyard image pull`), then the pull's back-off */
    pid_t pull_pid;
    int64_t pull_started_ns;
    int pull_exp;
    bool pull_backing_off; /* the timer ends the ErrImagePull -> ImagePullBackOff step */
    uint64_t pull_step_ms; /* half the current back-off: each of the two steps */
    uv_timer_t pull_timer;
    int backoff_exp;
    struct stream *streams[2]; /* the current run's stdout/stderr while open */
    /* the kubelet's probes (by ty_rt_probe_kind; NULL: none), and the grace timer of a kill
     * that a liveness or startup probe ordered */
    struct probe_worker *probes[3];
    uv_timer_t probe_kill;
    bool probe_killed; /* this run was killed by a probe: its workers hold until the next */
};

struct shim {
    uv_loop_t *loop;
    char *dir;
    json_t *doc, *pod, *rt; /* pod.json, its "pod" and "runtime" */
    const char *ns, *name, *uid, *pod_ip, *host_ip, *node;
    const char *hostname; /* the pod's, with its own network; else its name */
    const char *etc_dir;  /* <pod-dir>/etc with the kubelet's hosts and resolv.conf, or NULL */
    int netns_fd;         /* the pod's network namespace, handed over by the runtime, or -1 */
    const char *policy; /* Always, OnFailure, Never */
    ctr *ctrs;
    size_t n_init, n_ctrs; /* ctrs[0..n_init) are init containers */
    size_t next_init;      /* the init container running or next to run */
    bool init_done;
    bool init_failed; /* an init container failed for good: the pod is Failed */
    ty_cgroups cg;
    bool pidns;
    pid_t host_pid;
    int64_t start_ns;
    int64_t backoff_ms;
    char *enforced;
    bool stopping;
    int64_t grace_s;
    uv_timer_t grace;
    uv_signal_t sigchld, sigterm;
    unsigned long long host_start; /* the outer shim's start time: names it with host_pid */
    uv_pipe_t listener;            /* the control socket, <pod-dir>/control.sock */
    bool has_listener;
    uv_pipe_t *client; /* the trainyard attached now, or NULL: pods run on without one */
    ty_buf cmdbuf;
    int open_streams;
    bool exiting;
    /* the Ready and Initialized conditions' values and when they last changed */
    bool ready_last, init_last;
    int64_t ready_ns, init_ns;
    char *abs_dir; /* the pod dir as an absolute path (crun's --root for exec probes) */
};

static void emit_status(shim *s);
static void close_cb(uv_handle_t *h);
static void probes_started(ctr *c);
static void probes_ended(ctr *c);
static bool probes_reap(shim *s, pid_t pid, int wst);
static bool ctr_started(const ctr *c);
static bool ctr_ready(const ctr *c);
static void start_container(ctr *c);
static void maybe_finish(shim *s);
static void finish_if_ended(shim *s);
static const char *phase(shim *s);

/* ---- logs ---------------------------------------------------------------------------- */

static void log_write(stream *st, const char *data, size_t n, char tag)
{
    char ts[40];
    ty_time_format_rfc3339(ty_time_now_ns(), ts, sizeof(ts), 9);
    TY_AUTOBUF ty_buf b = TY_BUF_INIT;
    ty_buf_addf(&b, "%s %s %c ", ts, st->tag, tag);
    ty_buf_add(&b, data, n);
    ty_buf_addc(&b, '\n');
    /* One write per record with O_APPEND: a record is never interleaved with another. */
    if (write(st->lf->fd, b.data, b.len) < 0) {
        /* a full disk loses log lines, not the pod */
    }
}

static void log_flush_lines(stream *st, bool eof)
{
    ty_buf *l = &st->line;
    size_t off = 0;
    for (;;) {
        char *nl = memchr(l->data + off, '\n', l->len - off);
        if (!nl)
            break;
        size_t n = (size_t)(nl - (l->data + off));
        if (n > 0 && l->data[off + n - 1] == '\r') /* CRLF counts as one line end */
            n--;
        size_t done = 0;
        for (; n - done > LOG_LINE_MAX; done += LOG_LINE_MAX)
            log_write(st, l->data + off + done, LOG_LINE_MAX, 'P');
        log_write(st, l->data + off + done, n - done, 'F');
        off = (size_t)(nl - l->data) + 1;
    }
    while (l->len - off >= LOG_LINE_MAX) {
        log_write(st, l->data + off, LOG_LINE_MAX, 'P');
        off += LOG_LINE_MAX;
    }
    if (eof && l->len > off) {
        log_write(st, l->data + off, l->len - off, 'F');
        off = l->len;
    }
    memmove(l->data, l->data + off, l->len - off);
    l->len -= off;
    l->data[l->len] = '\0';
}

static void logfile_unref(logfile *lf)
{
    if (--lf->refs == 0) {
        close(lf->fd);
        free(lf);
    }
}

static void stream_closed(uv_handle_t *h)
{
    stream *st = h->data;
    shim *s = st->c->s;
    for (int i = 0; i < 2; i++)
        if (st->c->streams[i] == st)
            st->c->streams[i] = NULL;
    logfile_unref(st->lf);
    ty_buf_free(&st->line);
    free(st);
    s->open_streams--;
    maybe_finish(s);
}

static void stream_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    stream *st = h->data;
    ty_buf_grow(&st->line, 65536);
    buf->base = st->line.data + st->line.len;
    buf->len = st->line.cap - st->line.len - 1;
}

static void stream_read(uv_stream_t *h, ssize_t n, const uv_buf_t *buf)
{
    (void)buf;
    stream *st = h->data;
    if (n > 0) {
        st->line.len += (size_t)n;
        st->line.data[st->line.len] = '\0';
        log_flush_lines(st, false);
    } else if (n < 0) {
        log_flush_lines(st, true);
        uv_close((uv_handle_t *)h, stream_closed);
    }
}

/* Reads what the pipe holds right now (the fd is non-blocking) and writes it out, the last
 * partial line included: called when the container's process was reaped, so that its status
 * says terminated only once everything it wrote is in the log. EOF is left to the loop. */
static void stream_drain(stream *st)
{
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&st->pipe, &fd) < 0)
        return;
    for (;;) {
        ty_buf_grow(&st->line, 65536);
        ssize_t n = read(fd, st->line.data + st->line.len, st->line.cap - st->line.len - 1);
        if (n <= 0)
            break;
        st->line.len += (size_t)n;
        st->line.data[st->line.len] = '\0';
        log_flush_lines(st, false);
    }
    log_flush_lines(st, true);
}

static stream *stream_open(ctr *c, int fd, logfile *lf, const char *tag)
{
    stream *st = TY_NEW(stream);
    st->c = c;
    st->lf = lf;
    st->tag = tag;
    ty_buf_init(&st->line);
    lf->refs++;
    uv_pipe_init(c->s->loop, &st->pipe, 0);
    st->pipe.data = st;
    uv_pipe_open(&st->pipe, fd);
    c->s->open_streams++;
    uv_read_start((uv_stream_t *)&st->pipe, stream_alloc, stream_read);
    return st;
}

/* ---- environment ------------------------------------------------------------------------ */

typedef struct envlist {
    char **names, **values;
    size_t n, cap;
    size_t expand_from; /* entries before this index (the host's) are not $(VAR) targets */
} envlist;

static void env_set(envlist *e, const char *name, size_t nlen, const char *value)
{
    for (size_t i = 0; i < e->n; i++) {
        if (strlen(e->names[i]) == nlen && strncmp(e->names[i], name, nlen) == 0) {
            free(e->values[i]);
            e->values[i] = ty_strdup(value);
            /* a host variable redefined by the pod becomes expandable */
            if (i < e->expand_from) {
                char *n2 = e->names[i], *v2 = e->values[i];
                memmove(&e->names[i], &e->names[i + 1], (e->n - i - 1) * sizeof(char *));
                memmove(&e->values[i], &e->values[i + 1], (e->n - i - 1) * sizeof(char *));
                e->names[e->n - 1] = n2;
                e->values[e->n - 1] = v2;
                e->expand_from--;
            }
            return;
        }
    }
    if (e->n == e->cap) {
        e->cap = e->cap ? e->cap * 2 : 64;
        e->names = ty_realloc(e->names, e->cap * sizeof(char *));
        e->values = ty_realloc(e->values, e->cap * sizeof(char *));
    }
    e->names[e->n] = ty_strndup(name, nlen);
    e->values[e->n] = ty_strdup(value);
    e->n++;
}

static const char *env_lookup(void *ctx, const char *name, size_t len)
{
    envlist *e = ctx;
    for (size_t i = e->expand_from; i < e->n; i++)
        if (strlen(e->names[i]) == len && strncmp(e->names[i], name, len) == 0)
            return e->values[i];
    return NULL;
}

static void env_free(envlist *e)
{
    for (size_t i = 0; i < e->n; i++)
        free(e->names[i]), free(e->values[i]);
    free(e->names), free(e->values);
}

static char **env_vector(const envlist *e)
{
    char **v = ty_calloc(e->n + 1, sizeof(char *));
    for (size_t i = 0; i < e->n; i++)
        v[i] = ty_asprintf("%s=%s", e->names[i], e->values[i]);
    return v;
}

static void strv_free(char **v)
{
    if (!v)
        return;
    for (char **p = v; *p; p++)
        free(*p);
    free(v);
}

static const char *str_at(const json_t *o, const char *path)
{
    TY_AUTOFREE char *copy = ty_strdup(path);
    const json_t *cur = o;
    char *save = NULL;
    for (char *t = strtok_r(copy, ".", &save); t && cur; t = strtok_r(NULL, ".", &save))
        cur = json_object_get(cur, t);
    return json_string_value(cur);
}

/* valueFrom.fieldRef: the downward API fields a local pod can answer. */
static int field_ref(shim *s, const char *path, const char **out, ty_error *err)
{
    if (strcmp(path, "metadata.name") == 0)
        *out = s->name;
    else if (strcmp(path, "metadata.namespace") == 0)
        *out = s->ns;
    else if (strcmp(path, "metadata.uid") == 0)
        *out = s->uid;
    else if (strcmp(path, "status.podIP") == 0 || strcmp(path, "status.podIPs") == 0)
        *out = s->pod_ip;
    else if (strcmp(path, "status.hostIP") == 0 || strcmp(path, "status.hostIPs") == 0)
        *out = s->host_ip;
    else if (strcmp(path, "spec.nodeName") == 0)
        *out = s->node;
    else if (strcmp(path, "spec.serviceAccountName") == 0)
        *out = str_at(s->pod, "spec.serviceAccountName");
    else if (strncmp(path, "metadata.labels['", 17) == 0 ||
             strncmp(path, "metadata.annotations['", 22) == 0) {
        bool labels = path[9] == 'l';
        const char *k = path + (labels ? 17 : 22);
        const char *e = strstr(k, "']");
        TY_AUTOFREE char *key = e ? ty_strndup(k, (size_t)(e - k)) : NULL;
        json_t *m = json_object_get(json_object_get(s->pod, "metadata"),
                                    labels ? "labels" : "annotations");
        *out = key ? json_string_value(json_object_get(m, key)) : NULL;
    } else
        return ty_fail(err, "fieldRef %s is not supported", path);
    if (!*out)
        *out = "";
    return 0;
}

/* The environment starts from trainyard's own (a host container) or the image's Env (a
 * container from an image, `image_env` non-NULL), then the pod's variables. */
static int build_env(ctr *c, envlist *e, const json_t *image_env, ty_error *err)
{
    shim *s = c->s;
    for (char **p = environ; !image_env && *p; p++) {
        const char *eq = strchr(*p, '=');
        if (!eq || strncmp(*p, "TRAINYARD_", 10) == 0)
            continue;
        env_set(e, *p, (size_t)(eq - *p), eq + 1);
    }
    size_t k;
    json_t *iv;
    json_array_foreach(image_env, k, iv) {
        const char *kv = json_string_value(iv);
        const char *eq = kv ? strchr(kv, '=') : NULL;
        if (eq)
            env_set(e, kv, (size_t)(eq - kv), eq + 1);
    }
    e->expand_from = e->n;
    env_set(e, "POD_IP", 6, s->pod_ip);
    env_set(e, "POD_NAME", 8, s->name);
    env_set(e, "POD_NAMESPACE", 13, s->ns);
    env_set(e, "HOSTNAME", 8, s->hostname);
    bool has_path = false;
    for (size_t i = 0; i < e->n; i++)
        has_path |= strcmp(e->names[i], "PATH") == 0;
    if (image_env && !has_path) /* as container runtimes default it */
        env_set(e, "PATH", 4, "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    TY_AUTOBUF ty_buf gpus = TY_BUF_INIT;
    json_t *ids = json_object_get(s->rt, "gpus");
    for (int i = 0; i < c->gpu_count; i++) {
        if (i)
            ty_buf_addc(&gpus, ',');
        ty_buf_adds(&gpus, json_string_value(json_array_get(ids, (size_t)(c->gpu_first + i))));
    }
    /* Hide every GPU from pods that did not ask for one; PCI order makes indices match NVML. */
    env_set(e, "CUDA_VISIBLE_DEVICES", 20, gpus.data);
    env_set(e, "NVIDIA_VISIBLE_DEVICES", 22, c->gpu_count ? gpus.data : "void");
    env_set(e, "CUDA_DEVICE_ORDER", 17, "PCI_BUS_ID");
    const char *job_dir = json_string_value(json_object_get(s->rt, "jobDir"));
    if (job_dir) {
        if (ty_mkdir_p(job_dir, 0700) < 0)
            return ty_fail_errno(err, errno, "create the job's directory %s", job_dir);
        env_set(e, "TRAINYARD_JOB_DIR", 17, job_dir);
    }

    json_t *list = json_object_get(c->spec, "env"), *item;
    size_t i;
    json_array_foreach(list, i, item) {
        const char *name = json_string_value(json_object_get(item, "name"));
        if (!name)
            return ty_fail(err, "env[%zu]: name is required", i);
        json_t *val = json_object_get(item, "value");
        json_t *from = json_object_get(item, "valueFrom");
        if (from) {
            const char *path = str_at(from, "fieldRef.fieldPath");
            const char *v = NULL;
            if (!path)
                return ty_fail(err, "env %s: only valueFrom.fieldRef is supported on a local pod",
                               name);
            if (field_ref(s, path, &v, err) < 0)
                return ty_error_wrap(err, "env %s", name);
            env_set(e, name, strlen(name), v);
        } else {
            TY_AUTOFREE char *x = ty_rt_expand(json_is_string(val) ? json_string_value(val) : "",
                                               env_lookup, e);
            env_set(e, name, strlen(name), x);
        }
    }
    return 0;
}

/* ---- volumes --------------------------------------------------------------------------- */

typedef struct mountreq {
    char *src, *dst;
    bool ro;
} mountreq;

/* The files of a configMap, secret, downwardAPI or projected volume (controllers/podconfig.h:
 * [{path, mode, data (base64)}]) written afresh into `dir`, owned by the pod's fsGroup where
 * it has one (as root), as the kubelet writes its atomic-writer payload. */
static int write_volume_files(shim *s, const char *dir, const json_t *files, ty_error *err)
{
    if (ty_rm_tree(dir) < 0 && errno != ENOENT)
        return ty_fail_errno(err, errno, "clear %s", dir);
    if (ty_mkdir_p(dir, 0755) < 0 || chmod(dir, 0755) < 0)
        return ty_fail_errno(err, errno, "create %s", dir);
    json_t *fsg = json_object_get(
        json_object_get(json_object_get(s->pod, "spec"), "securityContext"), "fsGroup");
    bool chgrp = json_is_integer(fsg) && json_integer_value(fsg) >= 0 && geteuid() == 0;
    size_t i;
    json_t *f;
    json_array_foreach(files, i, f) {
        const char *rel = json_string_value(json_object_get(f, "path"));
        const char *data = json_string_value(json_object_get(f, "data"));
        const char *why = rel ? ty_path_local_error(rel) : "is missing";
        if (why || !data)
            return ty_fail(err, "file %zu: path %s %s", i, rel ? rel : "", why ? why : "");
        size_t len = 0;
        TY_AUTOFREE unsigned char *bytes = ty_base64_decode(data, strlen(data), false, &len);
        TY_AUTOFREE char *path = ty_asprintf("%s/%s", dir, rel);
        TY_AUTOFREE char *parent = ty_strdup(path);
        *strrchr(parent, '/') = '\0';
        mode_t mode = (mode_t)(json_integer_value(json_object_get(f, "mode")) & 07777);
        if (!bytes)
            return ty_fail(err, "file %s: bad data", rel);
        if (ty_mkdir_p(parent, 0755) < 0)
            return ty_fail_errno(err, errno, "create %s", parent);
        if (ty_write_file_private(path, bytes, len, err) < 0)
            return -1;
        if (chmod(path, mode) < 0)
            return ty_fail_errno(err, errno, "chmod %s", path);
        if (chgrp && chown(path, (uid_t)-1, (gid_t)json_integer_value(fsg)) < 0)
            return ty_fail_errno(err, errno, "give %s to fsGroup", path);
    }
    return 0;
}

/* Resolves the container's volumeMounts to host paths, creating emptyDirs and hostPaths as
 * Kubernetes does. Mount requests whose source is already the target need no mount. */
static int plan_mounts(ctr *c, bool in_image, mountreq **out, size_t *n_out, ty_error *err)
{
    shim *s = c->s;
    json_t *vols = json_object_get(json_object_get(s->pod, "spec"), "volumes");
    json_t *mounts = json_object_get(c->spec, "volumeMounts"), *m;
    size_t i, n = 0;
    mountreq *reqs = ty_calloc(json_array_size(mounts) + 1, sizeof(mountreq));
    json_array_foreach(mounts, i, m) {
        const char *vname = json_string_value(json_object_get(m, "name"));
        const char *path = json_string_value(json_object_get(m, "mountPath"));
        const char *sub = json_string_value(json_object_get(m, "subPath"));
        if (!vname || !path || path[0] != '/') {
            ty_fail(err, "volumeMounts[%zu]: name and an absolute mountPath are required", i);
            goto fail;
        }
        /* validation refuses these; a pod.json from elsewhere must not climb out either */
        const char *why = sub ? ty_path_local_error(sub) : NULL;
        if (why) {
            ty_fail(err, "volumeMounts[%zu]: subPath %s %s", i, sub, why);
            goto fail;
        }
        json_t *vol = NULL, *v;
        size_t j;
        json_array_foreach(vols, j, v) if (json_equal(json_object_get(v, "name"),
                                                      json_object_get(m, "name"))) vol = v;
        if (!vol) {
            ty_fail(err, "volumeMounts[%zu]: volume %s is not defined", i, vname);
            goto fail;
        }
        char *src = NULL;
        bool forced_ro = false; /* the kubelet mounts ConfigMaps, Secrets and the like read-only */
        json_t *hp = json_object_get(vol, "hostPath");
        if (hp) {
            const char *p = json_string_value(json_object_get(hp, "path"));
            const char *type = json_string_value(json_object_get(hp, "type"));
            if (!p) {
                ty_fail(err, "volume %s: hostPath.path is required", vname);
                goto fail;
            }
            struct stat sb;
            bool exists = stat(p, &sb) == 0;
            if (type && strcmp(type, "DirectoryOrCreate") == 0 && !exists &&
                ty_mkdir_p(p, 0755) < 0) {
                ty_fail_errno(err, errno, "volume %s: create hostPath %s", vname, p);
                goto fail;
            }
            if (type && strcmp(type, "Directory") == 0 && (!exists || !S_ISDIR(sb.st_mode))) {
                ty_fail(err, "volume %s: hostPath %s is not a directory", vname, p);
                goto fail;
            }
            if (type && strcmp(type, "File") == 0 && (!exists || !S_ISREG(sb.st_mode))) {
                ty_fail(err, "volume %s: hostPath %s is not a file", vname, p);
                goto fail;
            }
            /* type unset: no check; Kubernetes' runtimes create a missing directory */
            if (!type || !*type)
                ty_mkdir_p(p, 0755);
            src = ty_strdup(p);
        } else if (json_object_get(vol, "emptyDir")) {
            src = ty_asprintf("%s/volumes/%s", s->dir, vname);
            /* 0777 whatever the umask, as the kubelet makes it: any user of the pod's
             * containers writes there (the pod dir above is private) */
            if (ty_mkdir_p(src, 0777) < 0 || chmod(src, 0777) < 0) {
                ty_fail_errno(err, errno, "volume %s: create %s", vname, src);
                free(src);
                goto fail;
            }
            /* fsGroup owns the pod's emptyDirs, setgid so that new files stay in it, as the
             * kubelet's volume ownership does (as root; otherwise nothing can change) */
            json_t *fsg = json_object_get(
                json_object_get(json_object_get(s->pod, "spec"), "securityContext"), "fsGroup");
            if (json_is_integer(fsg) && json_integer_value(fsg) >= 0 && geteuid() == 0 &&
                (chown(src, (uid_t)-1, (gid_t)json_integer_value(fsg)) < 0 ||
                 chmod(src, 02777) < 0)) {
                ty_fail_errno(err, errno, "volume %s: give %s to fsGroup", vname, src);
                free(src);
                goto fail;
            }
        } else if (json_is_array(json_object_get(vol, "trainyardFiles"))) {
            src = ty_asprintf("%s/volumes/%s", s->dir, vname);
            if (write_volume_files(s, src, json_object_get(vol, "trainyardFiles"), err) < 0) {
                ty_error_wrap(err, "volume %s", vname);
                free(src);
                goto fail;
            }
            forced_ro = true;
        } else {
            ty_fail(err, "volume %s: only hostPath, emptyDir, persistentVolumeClaim, configMap, "
                    "secret, downwardAPI and projected volumes run on a local pod", vname);
            goto fail;
        }
        if (sub && *sub) {
            char *full = ty_asprintf("%s/%s", src, sub);
            free(src);
            src = full;
            ty_mkdir_p(src, 0755);
        }
        char a[PATH_MAX], b[PATH_MAX];
        if (!in_image && realpath(src, a) && realpath(path, b) && strcmp(a, b) == 0) {
            free(src); /* already there: nothing to mount */
            continue;
        }
        reqs[n].src = src;
        reqs[n].dst = ty_strdup(path);
        reqs[n].ro = forced_ro || json_is_true(json_object_get(m, "readOnly"));
        n++;
    }
    /* The kubelet's /etc/hosts and /etc/resolv.conf, unless a volume is mounted there. */
    const char *etc_files[] = {"hosts", "resolv.conf"};
    for (size_t k = 0; s->etc_dir && k < 2; k++) {
        TY_AUTOFREE char *dst = ty_asprintf("/etc/%s", etc_files[k]);
        bool claimed = false;
        json_array_foreach(mounts, i, m)
        {
            const char *mp = json_string_value(json_object_get(m, "mountPath"));
            claimed |= mp && strcmp(mp, dst) == 0;
        }
        TY_AUTOFREE char *src = ty_asprintf("%s/%s", s->etc_dir, etc_files[k]);
        if (claimed || access(src, F_OK) < 0) /* a hostNetwork pod has no hosts of its own */
            continue;
        reqs = ty_realloc(reqs, (n + 1) * sizeof(mountreq));
        reqs[n].src = ty_strdup(src);
        reqs[n].dst = ty_strdup(dst);
        reqs[n].ro = false;
        n++;
    }
    *out = reqs;
    *n_out = n;
    return 0;
fail:
    for (size_t k = 0; k < n; k++)
        free(reqs[k].src), free(reqs[k].dst);
    free(reqs);
    return -1;
}

/* ---- starting a container ------------------------------------------------------------------ */

/* Reports why the child could not become the container ("E <what>: <error>", errors in
 * lowercase as the Go runtimes write them) and exits. */
static void child_fail(int fd, const char *what, int e)
{
    char msg[256];
    snprintf(msg, sizeof msg, "%s", strerror(e));
    msg[0] = (char)tolower((unsigned char)msg[0]);
    dprintf(fd, "E %s: %s\n", what, msg);
    _exit(127);
}

/* Runs in the child between fork and exec. The shim is single-threaded, so malloc is safe here;
 * failures go to the report pipe as "E <errno> <what>" and the child exits. */
/* What every container's child does first: signals, session, death signal, cgroup. */
static void child_begin(ctr *c, int rep)
{
    shim *s = c->s;
    /* Default handlers first, then unblock: a pending signal must not run the shim's libuv
     * handler here (it would write into the shim's signal pipe, shared after fork). */
    for (int sig = 1; sig < NSIG; sig++)
        signal(sig, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (setsid() < 0)
        child_fail(rep, "setsid", errno);
    if (!s->pidns) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != s->host_pid)
            _exit(137);
    }
    if (c->has_cgroup && ty_cgroup_join(&s->cg, c->cg_rel, NULL) < 0)
        child_fail(rep, "join cgroup", errno);
    if (!c->has_cgroup && c->mem_bytes > 0) {
        struct rlimit rl = {(rlim_t)c->mem_bytes, (rlim_t)c->mem_bytes};
        if (setrlimit(RLIMIT_AS, &rl) < 0)
            child_fail(rep, "setrlimit", errno);
    }
}

/* Reports the child's pid and start time as the host sees them ("P <pid> <start>"): state.json
 * needs host pids to re-adopt. */
static void child_report_pid(int rep)
{
    char self[32] = "";
    ssize_t n = readlink("/proc/self", self, sizeof(self) - 1);
    self[n > 0 ? n : 0] = '\0';
    unsigned long long start = 0;
    TY_AUTOBUF ty_buf stat = TY_BUF_INIT;
    if (ty_buf_read_file(&stat, "/proc/self/stat") == 0) {
        const char *p = strrchr(stat.data, ')');
        for (int field = 2; p && field < 22; field++)
            p = strchr(p + 1, ' ');
        if (p)
            start = strtoull(p + 1, NULL, 10);
    }
    dprintf(rep, "P %s %llu\n", self, start);
}

static void child_stdio(int rep, int out, int err)
{
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
        child_fail(rep, "redirect stdio", errno);
    if (devnull > 2)
        close(devnull);
}

/* The child of a container from an image: in a mount namespace of its own, the image's layers
 * and the container's upper directory become <bundle>/rootfs (an overlay, gone with the
 * namespace: nothing to unmount after a crash), then crun runs the bundle in the foreground,
 * so this process is the container as far as the shim is concerned (logs, exit code,
 * signals). crun 1.8 refuses hybrid cgroup hosts whose unified hierarchy holds a controller
 * even with its cgroup manager disabled; the shim does the cgroups (joined above, inherited by
 * the container), so that hierarchy is unmounted in this namespace, where only crun sees it. */
static void child_setup_image(ctr *c, int rep, int out, int err, const char *bundle,
                              const char *layers_dir, const char *lower, char **argv,
                              char **envp)
{
    child_begin(c, rep);
    if (unshare(CLONE_NEWNS) < 0)
        child_fail(rep, "unshare mount namespace (containers from images need root)", errno);
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        child_fail(rep, "make / private", errno);
    /* A /proc of the pod's pid namespace: crun records the container's pid and start time
     * as this namespace numbers them, and a later `crun exec` (exec probes) checks them
     * against /proc; the host's /proc would show other processes under those numbers. */
    if (c->s->pidns && mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
        child_fail(rep, "mount /proc of the pod's pid namespace", errno);
    struct statfs fs;
    if (statfs("/sys/fs/cgroup", &fs) == 0 && fs.f_type == TMPFS_MAGIC &&
        statfs("/sys/fs/cgroup/unified", &fs) == 0 && fs.f_type == CGROUP2_SUPER_MAGIC)
        umount2("/sys/fs/cgroup/unified", MNT_DETACH);
    /* lower dirs relative to the layer store keep the options within a page */
    if (chdir(layers_dir) < 0)
        child_fail(rep, "enter the image store's layers", errno);
    /* a shared lock on each layer's <hex>.size, held by crun (the fds survive its exec, not
     * the container's) for the container's life: `trainyard image rm` leaves them alone */
    TY_AUTOFREE char *names = ty_strdup(lower);
    char *save = NULL;
    for (char *l = strtok_r(names, ":", &save); l; l = strtok_r(NULL, ":", &save)) {
        char sz[80];
        snprintf(sz, sizeof sz, "%.64s.size", l);
        int fd = open(sz, O_RDONLY);
        if (fd < 0 || flock(fd, LOCK_SH) < 0)
            child_fail(rep, "lock the image's layers", errno);
    }
    char opts[4096];
    int n = snprintf(opts, sizeof opts, "lowerdir=%s,upperdir=%s/upper,workdir=%s/work", lower,
                     bundle, bundle);
    if (n < 0 || (size_t)n >= sizeof opts)
        child_fail(rep, "mount the image's layers: too many layers", E2BIG);
    char root[PATH_MAX];
    snprintf(root, sizeof root, "%s/rootfs", bundle);
    if (mount("overlay", root, "overlay", 0, opts) < 0)
        child_fail(rep, "mount the image's layers (overlay)", errno);
    if (chdir("/") < 0)
        child_fail(rep, "chdir /", errno);
    child_stdio(rep, out, err);
    child_report_pid(rep);
    environ = envp;
    execvp(argv[0], argv);
    child_fail(rep, "exec: \"crun\" (install crun to run containers from images)", errno);
}

static void child_setup(ctr *c, int rep, int out, int err, mountreq *m, size_t nm, char **argv,
                        char **envp, const char *wd, const ty_rt_identity *id)
{
    shim *s = c->s;
    child_begin(c, rep);
    if (nm > 0) {
        if (unshare(CLONE_NEWNS) < 0)
            child_fail(rep, "unshare mount namespace (mounting volumes needs root)", errno);
        /* Private first, so that our bind mounts never propagate back to the host. */
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
            child_fail(rep, "make / private", errno);
        for (size_t i = 0; i < nm; i++) {
            char what[PATH_MAX + 32];
            snprintf(what, sizeof what, "mount volume at %s", m[i].dst);
            struct stat sb;
            if (stat(m[i].src, &sb) == 0 && !S_ISDIR(sb.st_mode)) {
                int fd = open(m[i].dst, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
                if (fd >= 0)
                    close(fd);
            } else if (ty_mkdir_p(m[i].dst, 0755) < 0) {
                child_fail(rep, what, errno);
            }
            if (mount(m[i].src, m[i].dst, NULL, MS_BIND | MS_REC, NULL) < 0)
                child_fail(rep, what, errno);
            if (m[i].ro && mount(NULL, m[i].dst, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC,
                                 NULL) < 0)
                child_fail(rep, what, errno);
        }
    }
    child_stdio(rep, out, err);
    /* the securityContext's user last: the steps above need root; the working directory is
     * entered as the user, as a container's is */
    const char *id_what = NULL;
    if (ty_rt_identity_apply(id, &id_what) < 0)
        child_fail(rep, id_what, errno);
    if (id->set && !s->pidns)
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* a change of user clears it */
    if (chdir(wd) < 0) {
        char wd_what[PATH_MAX + 64];
        snprintf(wd_what, sizeof wd_what, "chdir to workingDir \"%s\"", wd);
        child_fail(rep, wd_what, errno);
    }
    child_report_pid(rep);
    environ = envp;
    execvp(argv[0], argv);
    /* As runc says it: a bare name that no $PATH entry holds is "not found in $PATH". */
    int e = errno;
    if (e == ENOENT && !strchr(argv[0], '/')) {
        dprintf(rep, "E exec: \"%.200s\": executable file not found in $PATH\n", argv[0]);
        _exit(127);
    }
    char what[256];
    snprintf(what, sizeof what, "exec: \"%.200s\"", argv[0]);
    child_fail(rep, what, e);
}

static void set_waiting(ctr *c, const char *reason, char *msg)
{
    c->st = C_WAITING;
    c->wait_reason = reason;
    free(c->wait_message);
    c->wait_message = msg;
}

static json_t *terminated_json(ctr *c)
{
    char a[40], b[40];
    json_t *t = json_pack("{s:i, s:s, s:s, s:s, s:s}", "exitCode", c->exit_code, "reason",
                          c->term_reason, "startedAt",
                          ty_time_format_rfc3339(c->started_ns, a, sizeof(a), 0), "finishedAt",
                          ty_time_format_rfc3339(c->finished_ns, b, sizeof(b), 0), "containerID",
                          "");
    json_object_set_new(t, "containerID",
                        json_sprintf("trainyard://%s/%s/%d", c->s->uid, c->name, c->restarts));
    if (c->signal)
        json_object_set_new(t, "signal", json_integer(c->signal));
    if (c->term_message)
        json_object_set_new(t, "message", json_string(c->term_message));
    return t;
}

/* A container that could not be started ends as Kubernetes reports it: terminated, reason
 * StartError, exit code 128, with the cause in the message. */
static void start_failed(ctr *c, char *msg)
{
    c->started_ns = c->finished_ns = ty_time_now_ns();
    c->st = C_TERMINATED;
    c->exit_code = 128;
    c->signal = 0;
    c->term_reason = "StartError";
    free(c->term_message);
    c->term_message = msg;
}

/* ---- containers from images ----------------------------------------------------------- */

/* Is skopeo on $PATH (what `trainyard image pull` runs)? */
static bool can_pull(void)
{
    const char *path = getenv("PATH");
    TY_AUTOFREE char *copy = ty_strdup(path ? path : "/usr/bin:/bin");
    char *save = NULL;
    for (char *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        TY_AUTOFREE char *p = ty_asprintf("%s/skopeo", d);
        if (access(p, X_OK) == 0)
            return true;
    }
    return false;
}

/* Starts `trainyard image pull` for the container's image as a child of the shim (reaped in
 * on_sigchld); its stderr goes to <pod-dir>/containers/<name>.pull. -1 when it cannot. */
static int start_pull(ctr *c, const char *dir, const char *image)
{
    shim *s = c->s;
    TY_AUTOFREE char *cdir = ty_asprintf("%s/containers", s->dir);
    TY_AUTOFREE char *errpath = ty_asprintf("%s/%s.pull", cdir, c->name);
    if (ty_mkdir_p(cdir, 0700) < 0)
        return -1;
    int efd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (efd < 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        for (int sig = 1; sig < NSIG; sig++)
            signal(sig, SIG_DFL);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        setsid();
        if (!s->pidns)
            prctl(PR_SET_PDEATHSIG, SIGKILL);
        int nul = open("/dev/null", O_RDWR);
        if (nul < 0 || dup2(nul, 0) < 0 || dup2(nul, 1) < 0 || dup2(efd, 2) < 0)
            _exit(127);
        char *argv[] = {"trainyard", "image", "pull", "--images-dir", (char *)dir,
                        (char *)image, NULL};
        execv("/proc/self/exe", argv);
        dprintf(2, "exec trainyard: %s\n", strerror(errno));
        _exit(127);
    }
    close(efd);
    if (pid < 0)
        return -1;
    c->pull_pid = pid;
    c->pull_started_ns = ty_time_now_ns();
    set_waiting(c, "ContainerCreating", ty_asprintf("Pulling image \"%s\"", image));
    return 0;
}

/* The container's image in the store, as the kubelet decides with imagePullPolicy: 1 found
 * (*img filled), 0 run on the host (no store, or not there and not required), -1 the container
 * waits (reason set: ErrImageNeverPull, ErrImagePull), 2 a pull started (ContainerCreating). */
static int image_decision(ctr *c, ty_image *img)
{
    shim *s = c->s;
    const char *dir = json_string_value(json_object_get(s->rt, "imagesDir"));
    const char *image = json_string_value(json_object_get(c->spec, "image"));
    if (!dir || !image || !*image)
        return 0;
    TY_CLEANUP_ERROR ty_error err = TY_ERROR_INIT;
    int found = ty_image_find(dir, image, img, &err);
    if (found == 1)
        return 1;
    const char *policy = json_string_value(json_object_get(c->spec, "imagePullPolicy"));
    if (!policy || !*policy)
        policy = ty_image_default_pull_policy(image);
    if (strcmp(policy, "Never") == 0) {
        set_waiting(c, "ErrImageNeverPull",
                    ty_asprintf("Container image \"%s\" is not present with pull policy of Never",
                                image));
        return -1;
    }
    bool require = json_is_true(json_object_get(s->rt, "requireImages"));
    /* a pull that failed without --require-images sends the container to the host */
    if (found == 0 && !c->pull_failed && can_pull() && start_pull(c, dir, image) == 0)
        return 2;
    if (require) {
        set_waiting(c, "ErrImagePull",
                    found < 0 ? ty_asprintf("failed to pull image \"%s\": %s", image, err.msg)
                              : ty_asprintf("image \"%s\" is not in the image store %s and "
                                            "cannot be pulled (no skopeo); containers must run "
                                            "from images (--require-images): load it with "
                                            "trainyard image load", image, dir));
        return -1;
    }
    return 0;
}

static void start_container(ctr *c);

static void pull_timer_fired(uv_timer_t *t)
{
    ctr *c = t->data;
    if (c->s->stopping)
        return;
    const char *image = json_string_value(json_object_get(c->spec, "image"));
    if (c->pull_backing_off) {
        c->pull_backing_off = false;
        set_waiting(c, "ImagePullBackOff", ty_asprintf("Back-off pulling image \"%s\"", image));
        emit_status(c->s);
        uv_timer_start(&c->pull_timer, pull_timer_fired, c->pull_step_ms, 0);
        return;
    }
    start_container(c); /* pulls again */
}

/* A pull ended: run the container (from the image now in the store), or, when it failed,
 * ErrImagePull and then ImagePullBackOff before the next try (the kubelet's image back-off:
 * the restart back-off's base doubling to 30x), or the host without --require-images. */
static void pull_reaped(ctr *c, int wst)
{
    shim *s = c->s;
    c->pull_pid = 0;
    if (s->stopping) {
        emit_status(s);
        maybe_finish(s);
        return;
    }
    if (WIFEXITED(wst) && WEXITSTATUS(wst) == 0) {
        c->pull_exp = 0;
        /* the kubelet's words, for the node agent's Pulled event */
        set_waiting(c, "ContainerCreating",
                    ty_asprintf("Successfully pulled image \"%s\" in %.3fs",
                                json_string_value(json_object_get(c->spec, "image")),
                                (double)(ty_time_now_ns() - c->pull_started_ns) / 1e9));
        emit_status(s);
        start_container(c);
        return;
    }
    TY_AUTOFREE char *errpath = ty_asprintf("%s/containers/%s.pull", s->dir, c->name);
    TY_AUTOBUF ty_buf msg = TY_BUF_INIT;
    ty_buf_read_file(&msg, errpath);
    while (msg.len && msg.data[msg.len - 1] == '\n')
        msg.data[--msg.len] = '\0';
    const char *last = msg.len ? strrchr(msg.data, '\n') : NULL;
    last = last ? last + 1 : msg.len ? msg.data : "the puller ended without a message";
    if (strncmp(last, "trainyard image pull: ", 22) == 0)
        last += 22;
    const char *image = json_string_value(json_object_get(c->spec, "image"));
    if (!json_is_true(json_object_get(s->rt, "requireImages"))) {
        c->pull_failed = true;
        start_container(c);
        return;
    }
    int64_t cap = s->backoff_ms * 30, delay = s->backoff_ms;
    for (int k = 0; k < c->pull_exp && delay < cap; k++)
        delay *= 2;
    if (delay > cap)
        delay = cap;
    c->pull_exp++;
    set_waiting(c, "ErrImagePull", ty_asprintf("failed to pull image \"%s\": %.400s", image,
                                               last));
    emit_status(s);
    c->pull_backing_off = true;
    c->pull_step_ms = (uint64_t)(delay / 2 > 0 ? delay / 2 : 1);
    uv_timer_start(&c->pull_timer, pull_timer_fired, c->pull_step_ms, 0);
}

/* Everything crun needs for a container from `img`: the bundle <pod-dir>/containers/<name>
 * (config.json, an empty rootfs mount point, the container's fresh upper and work
 * directories: a restarted container starts from the image again, as in Kubernetes), crun's
 * argv and the overlay's lower dirs (relative to the store's layers/, topmost first).
 * -1 with a message; *config_error says the pod's spec can never start (no command, user). */
static int prepare_image(ctr *c, ty_image *img, mountreq *mounts, size_t nm, char ***argv_out,
                         char **bundle_out, ty_buf *lower, bool *config_error, ty_error *err)
{
    shim *s = c->s;
    envlist env = {0};
    json_t *cmd = NULL, *args = json_array(), *envj = json_array(), *mj = json_array();
    json_t *spec = NULL, *no_env = json_array();
    json_t *ienv = json_object_get(img->config, "Env");
    ty_rt_oci_user user = {0};
    char *bundle = NULL;
    int rc = -1;
    *config_error = true;
    if (ty_rt_oci_command(c->spec, img->config, &cmd, err) < 0 ||
        build_env(c, &env, json_is_array(ienv) ? ienv : no_env, err) < 0)
        goto out;
    /* the container sees absolute host paths only (a relative --state-dir gives relative
     * ones): the job directory is mounted at, and named by, its absolute path */
    char job_abs[PATH_MAX] = "";
    const char *job_dir = json_string_value(json_object_get(s->rt, "jobDir"));
    if (job_dir && realpath(job_dir, job_abs))
        env_set(&env, "TRAINYARD_JOB_DIR", 17, job_abs);
    size_t i;
    json_t *a;
    json_array_foreach(cmd, i, a) {
        char *x = ty_rt_expand(json_string_value(a), env_lookup, &env);
        json_array_append_new(args, json_string(x));
        free(x);
    }
    for (size_t k = 0; k < env.n; k++)
        json_array_append_new(envj, json_sprintf("%s=%s", env.names[k], env.values[k]));
    char *label = ty_asprintf("%s_%s(%s)", s->name, s->ns, s->uid);
    int urc = ty_rt_oci_resolve_user(json_object_get(s->pod, "spec"), c->spec, img->config,
                                     img->layers, img->n_layers, label, c->name, &user, err);
    free(label);
    if (urc < 0)
        goto out;
    *config_error = false;
    for (size_t k = 0; k < nm; k++) {
        char src[PATH_MAX];
        if (!realpath(mounts[k].src, src)) {
            ty_fail_errno(err, errno, "volume mount at %s: resolve %s", mounts[k].dst,
                          mounts[k].src);
            goto out;
        }
        json_array_append_new(mj, json_pack("{s:s, s:s, s:b}", "src", src, "dst",
                                            mounts[k].dst, "ro", mounts[k].ro));
    }
    /* `trainyard run`'s job directory (checkpoints), at the path TRAINYARD_JOB_DIR names */
    if (*job_abs)
        json_array_append_new(mj, json_pack("{s:s, s:s, s:b}", "src", job_abs, "dst", job_abs,
                                            "ro", 0));
    /* absolute: crun resolves sources from the bundle; the child mounts from layers/ */
    char absdir[PATH_MAX];
    if (!realpath(s->dir, absdir)) {
        ty_fail_errno(err, errno, "resolve %s", s->dir);
        goto out;
    }
    /* what the pod's network setup wrote (/etc/hosts, resolv.conf, hostname) */
    static const char *const etc[] = {"hosts", "resolv.conf", "hostname"};
    for (int k = 0; k < 3; k++) {
        TY_AUTOFREE char *p = ty_asprintf("%s/etc/%s", absdir, etc[k]);
        TY_AUTOFREE char *d = ty_asprintf("/etc/%s", etc[k]);
        if (access(p, R_OK) == 0)
            json_array_append_new(mj, json_pack("{s:s, s:s, s:b}", "src", p, "dst", d, "ro", 0));
    }
    const char *wd = json_string_value(json_object_get(c->spec, "workingDir"));
    if (!wd || !*wd)
        wd = json_string_value(json_object_get(img->config, "WorkingDir"));
    if (!wd || !*wd)
        wd = "/";
    json_t *gpus = json_array();
    json_t *ids = json_object_get(s->rt, "gpus");
    for (int k = 0; k < c->gpu_count; k++)
        json_array_append(gpus, json_array_get(ids, (size_t)(c->gpu_first + k)));
    ty_rt_oci_in in = {.pod_spec = json_object_get(s->pod, "spec"), .ctr_spec = c->spec,
                       .user = &user, .args = args, .env = envj, .cwd = wd, .mounts = mj,
                       .gpus = gpus};
    spec = ty_rt_oci_spec(&in, err);
    json_decref(gpus);
    if (!spec) {
        *config_error = true;
        goto out;
    }
    bundle = ty_asprintf("%s/containers/%s", absdir, c->name);
    ty_rm_tree(bundle);
    static const char *const sub[] = {"rootfs", "upper", "work"};
    for (int k = 0; k < 3; k++) {
        TY_AUTOFREE char *p = ty_asprintf("%s/%s", bundle, sub[k]);
        if (ty_mkdir_p(p, 0755) < 0) {
            ty_fail_errno(err, errno, "create %s", p);
            goto out;
        }
    }
    char *cfg = ty_asprintf("%s/config.json", bundle);
    int wrc = ty_rt_write_json_private(cfg, spec);
    if (wrc < 0)
        ty_fail_errno(err, errno, "write %s", cfg);
    free(cfg);
    if (wrc < 0)
        goto out;
    for (size_t k = img->n_layers; k-- > 0;) {
        const char *slash = strrchr(img->layers[k], '/');
        if (lower->len)
            ty_buf_addc(lower, ':');
        ty_buf_adds(lower, slash ? slash + 1 : img->layers[k]);
    }
    /* crun's own state lives in the pod dir and goes with it; its own errors also go to
     * <bundle>/crun-errors.json (JSON lines; not "*.log": those are the containers' logs), so
     * that a container crun could not start is told from one that exited (container_reaped) */
    char **argv = ty_calloc(11, sizeof(char *));
    argv[0] = ty_strdup("crun");
    argv[1] = ty_asprintf("--root=%s/crun", absdir);
    argv[2] = ty_strdup("--cgroup-manager=disabled");
    argv[3] = ty_asprintf("--log=file:%s/crun-errors.json", bundle);
    argv[4] = ty_strdup("--log-format=json");
    argv[5] = ty_strdup("run");
    argv[6] = ty_strdup("--bundle");
    argv[7] = ty_strdup(bundle);
    argv[8] = ty_asprintf("%.36s-%s-%d", s->uid, c->name, c->restarts);
    free(c->crun_log);
    c->crun_log = ty_asprintf("%s/crun-errors.json", bundle);
    *argv_out = argv;
    *bundle_out = bundle;
    bundle = NULL;
    rc = 0;
out:
    free(bundle);
    json_decref(cmd), json_decref(args), json_decref(envj), json_decref(mj);
    json_decref(spec), json_decref(user.groups), json_decref(no_env);
    env_free(&env);
    return rc;
}

static void after_exit(ctr *c);

static void start_container(ctr *c)
{
    shim *s = c->s;
    TY_CLEANUP_ERROR ty_error err = TY_ERROR_INIT;
    envlist env = {0};
    char **argv = NULL, **envp = NULL;
    mountreq *mounts = NULL;
    size_t nm = 0;
    int p_out[2] = {-1, -1}, p_err[2] = {-1, -1}, p_rep[2] = {-1, -1};
    logfile *lf = NULL;
    char *ldir = NULL, *lpath = NULL;
    ty_buf rep = TY_BUF_INIT;
    ty_image img = {0};
    char *bundle = NULL;
    ty_buf lower = TY_BUF_INIT;
    ty_rt_identity ident = {0};
    const char *wd = "/";

    free(c->term_message);
    c->term_message = NULL;
    c->signal = 0;

    int decision = image_decision(c, &img);
    if (decision < 0 || decision == 2)
        goto done;
    if (decision == 1) {
        bool config_error = false;
        if (plan_mounts(c, true, &mounts, &nm, &err) < 0) {
            start_failed(c, ty_strdup(err.msg));
            goto done;
        }
        if (prepare_image(c, &img, mounts, nm, &argv, &bundle, &lower, &config_error,
                          &err) < 0) {
            if (config_error)
                set_waiting(c, "CreateContainerConfigError", ty_strdup(err.msg));
            else
                start_failed(c, ty_asprintf("failed to create containerd task: %s", err.msg));
            goto done;
        }
        free(c->image_id);
        c->image_id = ty_asprintf("%.*s@%s", (int)strcspn(img.ref, "@"), img.ref, img.digest);
        char *at = strchr(c->image_id, '@');
        char *colon = at ? memrchr(c->image_id, ':', (size_t)(at - c->image_id)) : NULL;
        if (colon && !memchr(colon, '/', (size_t)(at - colon))) /* drop the tag */
            memmove(colon, at, strlen(at) + 1);
        goto launch;
    }

    free(c->crun_log);
    c->crun_log = NULL;
    free(c->image_id);
    c->image_id = NULL;

    /* What the pod's (immutable) spec can never start with waits as the kubelet's
     * CreateContainerConfigError does, and is not retried: nothing could change the outcome. */
    json_t *cmd = json_object_get(c->spec, "command");
    if (!json_array_size(cmd)) {
        set_waiting(c, "CreateContainerConfigError",
                    ty_asprintf("container \"%s\" has no command: trainyard runs no images, so "
                                "there is no image entrypoint to fall back on; set command",
                                c->name));
        goto done;
    }
    if (build_env(c, &env, NULL, &err) < 0) {
        set_waiting(c, "CreateContainerConfigError",
                    ty_asprintf("container \"%s\": %s", c->name, err.msg));
        goto done;
    }
    json_t *args = json_object_get(c->spec, "args");
    argv = ty_calloc(json_array_size(cmd) + json_array_size(args) + 1, sizeof(char *));
    size_t na = 0, i;
    json_t *a;
    json_array_foreach(cmd, i, a) argv[na++] = ty_rt_expand(json_string_value(a) ? json_string_value(a) : "", env_lookup, &env);
    json_array_foreach(args, i, a) argv[na++] = ty_rt_expand(json_string_value(a) ? json_string_value(a) : "", env_lookup, &env);
    envp = env_vector(&env);
    wd = json_string_value(json_object_get(c->spec, "workingDir"));
    if (!wd || !*wd)
        wd = json_string_value(json_object_get(s->rt, "workdir"));
    if (!wd || !*wd)
        wd = "/";
    if (plan_mounts(c, false, &mounts, &nm, &err) < 0) {
        start_failed(c, ty_strdup(err.msg));
        goto done;
    }
    if (ty_rt_identity_plan(json_object_get(s->pod, "spec"), c->spec, &ident, &err) < 0) {
        start_failed(c, ty_strdup(err.msg));
        goto done;
    }
    if (nm > 0 && geteuid() != 0) {
        start_failed(c, ty_asprintf("volume mount at %s needs root (a private mount namespace); "
                                    "run trainyard as root or set mountPath to the hostPath path",
                                    mounts[0].dst));
        goto done;
    }

launch:
    ldir = ty_asprintf("%s/%s", s->dir, c->name);
    lpath = ty_asprintf("%s/%d.log", ldir, c->restarts);
    mkdir(ldir, 0700); /* logs are trainyard's files (the container writes to a pipe) */
    int lfd = open(lpath, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
    if (lfd < 0) {
        start_failed(c, ty_asprintf("open log %s: %s", lpath, strerror(errno)));
        goto done;
    }
    lf = TY_NEW(logfile);
    lf->fd = lfd;
    lf->refs = 1;
    if (pipe2(p_out, O_CLOEXEC) < 0 || pipe2(p_err, O_CLOEXEC) < 0 ||
        pipe2(p_rep, O_CLOEXEC) < 0) {
        start_failed(c, ty_asprintf("pipe: %s", strerror(errno)));
        goto done;
    }
    if (c->has_cgroup)
        c->oom_base = ty_cgroup_oom_kills(&s->cg, c->cg_rel);
    c->started_ns = ty_time_now_ns();
    pid_t pid = fork();
    if (pid < 0) {
        start_failed(c, ty_asprintf("fork: %s", strerror(errno)));
        goto done;
    }
    if (pid == 0) {
        close(p_rep[0]);
        if (bundle) {
            TY_AUTOFREE char *layers_dir = ty_asprintf(
                "%s/layers", json_string_value(json_object_get(s->rt, "imagesDir")));
            /* crun runs with the shim's environment ($PATH finds it); the container's is in
             * config.json */
            child_setup_image(c, p_rep[1], p_out[1], p_err[1], bundle, layers_dir, lower.data,
                              argv, environ);
        }
        child_setup(c, p_rep[1], p_out[1], p_err[1], mounts, nm, argv, envp, wd, &ident);
    }
    close(p_out[1]), close(p_err[1]), close(p_rep[1]);
    p_out[1] = p_err[1] = p_rep[1] = -1;
    /* Blocks until the child execs (EOF) or reports why it could not: a few hundred us. */
    char tmp[512];
    ssize_t r;
    while ((r = read(p_rep[0], tmp, sizeof(tmp))) != 0) {
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            break;
        ty_buf_add(&rep, tmp, (size_t)r);
    }
    const char *e = strstr(rep.data, "E ");
    if (e && (e == rep.data || e[-1] == '\n')) {
        TY_AUTOFREE char *w = ty_strdup(e + 2);
        char *nl = strchr(w, '\n');
        if (nl)
            *nl = '\0';
        int st;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
            ;
        start_failed(c, ty_asprintf("failed to start container \"%s\": %s", c->name, w));
        goto done;
    }
    c->pid = pid;
    if (rep.data[0] == 'P')
        sscanf(rep.data, "P %d %llu", &c->host_pid, &c->proc_start);
    c->st = C_RUNNING;
    c->streams[0] = stream_open(c, p_out[0], lf, "stdout");
    c->streams[1] = stream_open(c, p_err[0], lf, "stderr");
    p_out[0] = p_err[0] = -1;
    probes_started(c);

done:
    for (int k = 0; k < 2; k++) {
        if (p_out[k] >= 0)
            close(p_out[k]);
        if (p_err[k] >= 0)
            close(p_err[k]);
        if (p_rep[k] >= 0)
            close(p_rep[k]);
    }
    if (lf)
        logfile_unref(lf);
    free(ldir);
    free(lpath);
    ty_buf_free(&rep);
    for (size_t k = 0; k < nm; k++)
        free(mounts[k].src), free(mounts[k].dst);
    free(mounts);
    strv_free(argv);
    strv_free(envp);
    env_free(&env);
    ty_image_free(&img);
    free(bundle);
    ty_buf_free(&lower);
    if (c->st == C_TERMINATED)
        after_exit(c);
    else
        emit_status(s);
}

/* ---- restart policy and phases ------------------------------------------------------------ */

static void backoff_fired(uv_timer_t *t)
{
    ctr *c = t->data;
    if (c->s->stopping)
        return;
    c->restarts++; /* restartCount counts restarts done; the new run logs to <count>.log */
    start_container(c);
}

static void start_main_containers(shim *s)
{
    for (size_t i = s->n_init; i < s->n_ctrs; i++) {
        if (s->stopping)
            return;
        start_container(&s->ctrs[i]);
    }
}

/* Decides what happens after a container ended, as kubelet does: restart (with back-off) per
 * restartPolicy, move on to the next init container, or leave it terminated. */
static void after_exit(ctr *c)
{
    shim *s = c->s;
    if (s->stopping) {
        emit_status(s);
        maybe_finish(s);
        return;
    }
    bool ok = c->exit_code == 0 && strcmp(c->term_reason, "StartError") != 0;
    bool restart;
    if (c->init)
        restart = !ok && strcmp(s->policy, "Never") != 0;
    else
        restart = strcmp(s->policy, "Always") == 0 ||
                  (!ok && strcmp(s->policy, "OnFailure") == 0);
    if (restart) {
        /* Back-off: base, doubling, capped at 30x base (10 s -> 300 s); reset after the
         * container ran for 2x the cap, as kubelet forgets old crashes. */
        int64_t cap = s->backoff_ms * 30;
        if ((c->finished_ns - c->started_ns) / 1000000 > 2 * cap)
            c->backoff_exp = 0;
        int64_t delay = s->backoff_ms;
        for (int k = 0; k < c->backoff_exp && delay < cap; k++)
            delay *= 2;
        if (delay > cap)
            delay = cap;
        c->backoff_exp++;
        json_decref(c->last_state);
        c->last_state = json_pack("{s:o}", "terminated", terminated_json(c));
        set_waiting(c, "CrashLoopBackOff",
                    ty_asprintf("back-off %lldms restarting failed container=%s pod=%s",
                                (long long)delay, c->name, s->name));
        c->st = C_WAITING;
        uv_timer_start(&c->backoff, backoff_fired, (uint64_t)delay, 0);
        emit_status(s);
        return;
    }
    if (c->init) {
        if (!ok) {
            s->init_failed = true;
        } else if (++s->next_init < s->n_init) {
            emit_status(s);
            start_container(&s->ctrs[s->next_init]);
            return;
        } else {
            s->init_done = true;
            emit_status(s);
            start_main_containers(s);
            return;
        }
    }
    emit_status(s);
    finish_if_ended(s);
}

static const char *phase(shim *s)
{
    if (s->init_failed)
        return "Failed";
    if (!s->init_done)
        return "Pending";
    int running = 0, waiting = 0, stopped = 0, succeeded = 0, failed = 0;
    for (size_t i = s->n_init; i < s->n_ctrs; i++) {
        ctr *c = &s->ctrs[i];
        if (c->st == C_RUNNING)
            running++;
        else if (c->st == C_WAITING)
        {
            if (c->last_state) /* restarting counts as stopped, as kubelet does */
                stopped++;
            else
                waiting++;
        }
        else {
            stopped++;
            c->exit_code == 0 && strcmp(c->term_reason, "StartError") != 0 ? succeeded++
                                                                            : failed++;
        }
    }
    if (waiting > 0)
        return "Pending";
    if (running > 0)
        return "Running";
    if (strcmp(s->policy, "Always") == 0)
        return "Running";
    if (strcmp(s->policy, "OnFailure") == 0)
        return stopped == succeeded ? "Succeeded" : "Running";
    return failed > 0 ? "Failed" : "Succeeded";
}

static json_t *container_status(ctr *c)
{
    char ts[40];
    json_t *state;
    if (c->st == C_RUNNING)
        state = json_pack("{s:{s:s}}", "running", "startedAt",
                          ty_time_format_rfc3339(c->started_ns, ts, sizeof(ts), 0));
    else if (c->st == C_TERMINATED)
        state = json_pack("{s:o}", "terminated", terminated_json(c));
    else {
        json_t *w = json_pack("{s:s}", "reason", c->wait_reason);
        if (c->wait_message)
            json_object_set_new(w, "message", json_string(c->wait_message));
        state = json_pack("{s:o}", "waiting", w);
    }
    const char *image = json_string_value(json_object_get(c->spec, "image"));
    json_t *cs = json_pack("{s:s, s:o, s:o, s:b, s:b, s:i, s:s, s:s, s:s}", "name", c->name,
                           "state", state, "lastState",
                           c->last_state ? json_incref(c->last_state) : json_object(), "ready",
                           ctr_ready(c), "started", ctr_started(c),
                           "restartCount", c->restarts, "image", image ? image : "", "imageID",
                           c->image_id ? c->image_id : "", "containerID", "");
    json_object_set_new(cs, "containerID",
                        json_sprintf("trainyard://%s/%s/%d", c->s->uid, c->name, c->restarts));
    return cs;
}

static json_t *condition(const char *type, bool ok, const char *reason, const char *message,
                         int64_t since_ns)
{
    char ts[40];
    json_t *c = json_pack("{s:s, s:s, s:s, s:n}", "type", type, "status", ok ? "True" : "False",
                          "lastTransitionTime",
                          ty_time_format_rfc3339(since_ns, ts, sizeof(ts), 0), "lastProbeTime");
    if (reason && !ok)
        json_object_set_new(c, "reason", json_string(reason));
    if (message && !ok)
        json_object_set_new(c, "message", json_string(message));
    return c;
}

static json_t *build_status(shim *s)
{
    char ts[40];
    ty_time_format_rfc3339(s->start_ns, ts, sizeof(ts), 0);
    const char *ph = phase(s);
    /* Ready: every container ready (running, started, its readiness probe passing), with the
     * time of the last change, as the kubelet's status manager keeps it */
    bool all_ready = s->init_done && s->n_ctrs > s->n_init;
    TY_AUTOBUF ty_buf unready = TY_BUF_INIT;
    for (size_t i = s->n_init; i < s->n_ctrs; i++) {
        if (!ctr_ready(&s->ctrs[i])) {
            all_ready = false;
            ty_buf_addf(&unready, "%s%s", unready.len ? " " : "", s->ctrs[i].name);
        }
    }
    int64_t now = ty_time_now_ns();
    if (!s->ready_ns || all_ready != s->ready_last) {
        s->ready_last = all_ready;
        s->ready_ns = now;
    }
    if (!s->init_ns || s->init_done != s->init_last) {
        s->init_last = s->init_done;
        s->init_ns = now;
    }
    json_t *st = json_pack("{s:s, s:s, s:[{s:s}], s:s, s:[{s:s}], s:s}", "phase", ph, "podIP",
                           s->pod_ip, "podIPs", "ip", s->pod_ip, "hostIP", s->host_ip, "hostIPs",
                           "ip", s->host_ip, "startTime", ts);
    TY_AUTOBUF ty_buf msg = TY_BUF_INIT;
    ty_buf_addf(&msg, "%s", s->enforced);
    json_object_set_new(st, "message", json_string(msg.data));
    if (s->init_failed)
        json_object_set_new(st, "reason", json_string("InitContainerFailed"));
    TY_AUTOFREE char *unready_msg =
        unready.len ? ty_asprintf("containers with unready status: [%s]", unready.data) : NULL;
    json_t *conds = json_array();
    json_array_append_new(conds, condition("PodScheduled", true, NULL, NULL, s->start_ns));
    json_array_append_new(conds, condition("Initialized", s->init_done,
                                           "ContainersNotInitialized", NULL, s->init_ns));
    json_array_append_new(conds, condition("ContainersReady", all_ready, "ContainersNotReady",
                                           unready_msg, s->ready_ns));
    json_array_append_new(conds, condition("Ready", all_ready, "ContainersNotReady",
                                           unready_msg, s->ready_ns));
    json_object_set_new(st, "conditions", conds);
    json_t *ics = json_array(), *cs = json_array();
    for (size_t i = 0; i < s->n_ctrs; i++)
        json_array_append_new(i < s->n_init ? ics : cs, container_status(&s->ctrs[i]));
    if (s->n_init)
        json_object_set_new(st, "initContainerStatuses", ics);
    else
        json_decref(ics);
    json_object_set_new(st, "containerStatuses", cs);
    return st;
}

static void write_state(shim *s, json_t *status)
{
    json_t *ctrs = json_array();
    for (size_t i = 0; i < s->n_ctrs; i++) {
        ctr *c = &s->ctrs[i];
        json_t *o = json_pack("{s:s, s:b, s:i, s:I, s:i}", "name", c->name, "init", c->init,
                              "pid", (int)c->host_pid, "startTime", (json_int_t)c->proc_start,
                              "restartCount", c->restarts);
        if (c->st == C_RUNNING)
            json_object_set_new(o, "running", json_true());
        else if (c->st == C_TERMINATED || c->last_state)
            json_object_set_new(o, "exitCode", json_integer(c->exit_code));
        json_array_append_new(ctrs, o);
    }
    json_t *state = json_pack("{s:i, s:I, s:b, s:b, s:o, s:O}", "shimPid", (int)s->host_pid,
                              "shimStartTime", (json_int_t)s->host_start, "pidNamespace",
                              s->pidns, "finished", s->exiting, "containers", ctrs, "status",
                              status);
    TY_AUTOFREE char *tmp = ty_asprintf("%s/state.json.tmp", s->dir);
    TY_AUTOFREE char *dst = ty_asprintf("%s/state.json", s->dir);
    /* write + rename: a reader never sees half a file */
    if (ty_rt_write_json_private(tmp, state) == 0)
        rename(tmp, dst);
    json_decref(state);
}

static void client_closed(uv_handle_t *h) { free(h); }

/* Forgets the attached trainyard (gone, replaced, or not reading): the pod runs on. */
static void client_drop(shim *s)
{
    if (!s->client)
        return;
    uv_close((uv_handle_t *)s->client, client_closed);
    s->client = NULL;
    s->cmdbuf.len = 0;
    if (s->cmdbuf.data)
        s->cmdbuf.data[0] = '\0';
}

/* Writes one status line to the attached trainyard, synchronously so that the last status is
 * out before the shim exits. A trainyard that takes no data for 2 s is dropped rather than
 * stalling the pod's supervision: it gets the current status when it reconnects. */
static void send_line(shim *s, const char *verb, json_t *st)
{
    if (!s->client)
        return;
    char *line = json_dumps(st, JSON_COMPACT);
    TY_AUTOBUF ty_buf b = TY_BUF_INIT;
    ty_buf_addf(&b, "%s %s\n", verb, line);
    free(line);
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)s->client, &fd) < 0) {
        client_drop(s);
        return;
    }
    for (size_t off = 0; off < b.len;) {
        ssize_t n = send(fd, b.data + off, b.len - off, MSG_NOSIGNAL);
        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        if (n < 0 && errno == EAGAIN && poll(&pfd, 1, 2000) > 0)
            continue;
        client_drop(s);
        return;
    }
}

static void send_status(shim *s, json_t *st) { send_line(s, "status", st); }

/* An event about a container for the attached trainyard to record as the kubelet would
 * (probe failures, kills): "event {type, reason, message}". Without one attached it is lost,
 * as Events are best effort. */
static void send_event(shim *s, const char *type, const char *reason, const char *message)
{
    json_t *ev = json_pack("{s:s, s:s, s:s}", "type", type, "reason", reason, "message", message);
    send_line(s, "event", ev);
    json_decref(ev);
}

static void emit_status(shim *s)
{
    json_t *st = build_status(s);
    write_state(s, st);
    send_status(s, st);
    json_decref(st);
}

/* ---- probes ---------------------------------------------------------------------------------
 * The kubelet's probe workers, one per probe of a container, on this loop: a repeating timer
 * (periodSeconds) that starts a check when the container runs, its initialDelaySeconds have
 * passed, no check is under way and, for liveness and readiness, the startup probe (if any)
 * has succeeded. httpGet and tcpSocket checks are non-blocking connects from here (the shim
 * lives in the pod's network namespace, so the pod's address and loopback are the pod's);
 * exec checks run the command in the container's context (its mount namespace, cgroup, user,
 * environment and working directory, or `crun exec` for a container from an image). A
 * liveness or startup probe that fails failureThreshold times in a row kills the container
 * (SIGTERM, then SIGKILL after the grace period), which then restarts per restartPolicy; a
 * readiness probe sets the container's ready, and so the pod's Ready condition. */

typedef struct exec_check exec_check;

typedef struct probe_worker {
    ctr *c;
    ty_rt_probe_spec sp;
    char *error; /* the probe cannot run (see ty_rt_probe_parse): each check fails with it */
    ty_rt_probe_state st;
    uv_timer_t timer;
    ty_rt_netcheck *net;  /* an httpGet/tcpSocket check under way */
    exec_check *exec;     /* an exec check under way */
    int run;              /* the container's restartCount when the check started */
} probe_worker;

struct exec_check {
    probe_worker *w; /* NULL once abandoned (its container ended) */
    uv_pipe_t out;
    uv_timer_t timeout;
    pid_t pid;
    bool reaped, eof, timed_out;
    int wst;
    int open_handles;
    ty_buf output;
};

static bool ctr_started(const ctr *c)
{
    const probe_worker *w = c->probes[TY_PROBE_STARTUP];
    return c->st == C_RUNNING && (!w || w->st.result);
}

static bool ctr_ready(const ctr *c)
{
    const probe_worker *w = c->probes[TY_PROBE_READINESS];
    return c->st == C_RUNNING && !c->init && ctr_started(c) && (!w || w->st.result);
}

static void probe_tick(uv_timer_t *t);

/* Reads the container's probes (at load): init containers have none, as in Kubernetes. */
static void probes_load(ctr *c)
{
    static const char *const fields[] = {"startupProbe", "livenessProbe", "readinessProbe"};
    for (int k = 0; k < 3 && !c->init; k++) {
        json_t *p = json_object_get(c->spec, fields[k]);
        if (!p || json_is_null(p))
            continue;
        probe_worker *w = TY_NEW(probe_worker);
        w->c = c;
        ty_error err = TY_ERROR_INIT;
        if (ty_rt_probe_parse(p, c->spec, (ty_rt_probe_kind)k, &w->sp, &err) < 0) {
            w->error = ty_strdup(err.msg);
            w->sp.kind = (ty_rt_probe_kind)k;
            w->sp.period_s = 10;
            w->sp.failure_threshold = 3;
            w->sp.success_threshold = 1;
            w->sp.grace_s = -1;
        }
        ty_error_clear(&err);
        ty_rt_probe_reset(&w->st, w->sp.kind);
        uv_timer_init(c->s->loop, &w->timer);
        w->timer.data = w;
        c->probes[k] = w;
    }
}

static void exec_closed(uv_handle_t *h)
{
    exec_check *x = h->data;
    if (--x->open_handles > 0)
        return;
    ty_buf_free(&x->output);
    free(x);
}

static void probe_result(probe_worker *w, bool ok, const char *output);

/* The exec check is over once its process is reaped and its output closed, or at its
 * timeout (its process group is killed then; what it left holding the pipe does not hold the
 * probe). */
static void exec_maybe_done(exec_check *x)
{
    if (!(x->timed_out || (x->reaped && x->eof)) || x->open_handles == 0 ||
        uv_is_closing((uv_handle_t *)&x->timeout))
        return;
    uv_close((uv_handle_t *)&x->out, exec_closed);
    uv_close((uv_handle_t *)&x->timeout, exec_closed);
    probe_worker *w = x->w;
    if (!w)
        return;
    w->exec = NULL;
    if (x->timed_out && !x->reaped) {
        TY_AUTOFREE char *cmd = json_dumps(w->sp.command, JSON_COMPACT);
        TY_AUTOFREE char *msg = ty_asprintf("command %s timed out", cmd);
        probe_result(w, false, msg);
        return;
    }
    bool ok = WIFEXITED(x->wst) && WEXITSTATUS(x->wst) == 0;
    probe_result(w, ok, x->output.data ? x->output.data : "");
}

static void exec_timeout(uv_timer_t *t)
{
    exec_check *x = t->data;
    if (!x->reaped)
        kill(-x->pid, SIGKILL);
    x->timed_out = true;
    exec_maybe_done(x);
}

static void exec_alloc(uv_handle_t *h, size_t sz, uv_buf_t *buf)
{
    (void)sz;
    exec_check *x = h->data;
    ty_buf_grow(&x->output, 4096);
    buf->base = x->output.data + x->output.len;
    buf->len = x->output.cap - x->output.len - 1;
}

static void exec_read(uv_stream_t *h, ssize_t n, const uv_buf_t *buf)
{
    (void)buf;
    exec_check *x = h->data;
    if (n < 0) {
        uv_read_stop(h);
        x->eof = true;
        exec_maybe_done(x);
        return;
    }
    /* the kubelet keeps the first 10 KiB of a probe's output */
    if (x->output.len + (size_t)n <= 10240)
        x->output.len += (size_t)n;
    x->output.data[x->output.len] = '\0';
}

/* The child of an exec check: as the container's process would be, with the probe's command
 * (a container from an image: `crun exec`, which enters its namespaces and root). */
static void exec_child(ctr *c, int out, char **argv, char **envp, const char *wd,
                       const ty_rt_identity *id)
{
    for (int sig = 1; sig < NSIG; sig++)
        signal(sig, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    setsid();
    if (!c->s->pidns)
        prctl(PR_SET_PDEATHSIG, SIGKILL);
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
        _exit(126);
    if (c->image_id && c->s->pidns) {
        /* crun's state names the container's pid as our pid namespace sees it, and /proc is
         * the host's: crun exec would open another process's namespaces. A /proc of our own
         * namespace, in a mount namespace of this child's, makes those pids right. */
        if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
            mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) {
            dprintf(2, "mount /proc for crun exec: %s\n", strerror(errno));
            _exit(126);
        }
    }
    if (!c->image_id) {
        if (c->has_cgroup)
            ty_cgroup_join(&c->s->cg, c->cg_rel, NULL);
        /* the container's own mount namespace (its volumes), when it has one */
        char self[64], theirs[64], path[64];
        snprintf(path, sizeof path, "/proc/%d/ns/mnt", (int)c->host_pid);
        ssize_t a = readlink("/proc/self/ns/mnt", self, sizeof self - 1);
        ssize_t b = readlink(path, theirs, sizeof theirs - 1);
        if (a > 0 && b > 0 && (a != b || memcmp(self, theirs, (size_t)a) != 0)) {
            int fd = open(path, O_RDONLY | O_CLOEXEC);
            if (fd < 0 || setns(fd, CLONE_NEWNS) < 0) {
                dprintf(2, "enter the container's mount namespace: %s\n", strerror(errno));
                _exit(126);
            }
        }
        const char *what = NULL;
        if (ty_rt_identity_apply(id, &what) < 0) {
            dprintf(2, "%s: %s\n", what, strerror(errno));
            _exit(126);
        }
        if (chdir(wd) < 0)
            (void)chdir("/");
        environ = envp;
    }
    execvp(argv[0], argv);
    dprintf(2, "exec: \"%s\": %s\n", argv[0], strerror(errno));
    _exit(127);
}

/* Starts an exec check; the result comes through probe_result. */
static void exec_start(probe_worker *w)
{
    ctr *c = w->c;
    shim *s = c->s;
    envlist env = {0};
    TY_CLEANUP_ERROR ty_error err = TY_ERROR_INIT;
    ty_rt_identity ident = {0};
    char **argv = NULL, **envp = NULL;
    const char *wd = "/";
    size_t n = json_array_size(w->sp.command), na = 0;
    if (c->image_id) {
        argv = ty_calloc(n + 6, sizeof(char *));
        argv[na++] = ty_strdup("crun");
        argv[na++] = ty_asprintf("--root=%s/crun", s->abs_dir);
        argv[na++] = ty_strdup("--cgroup-manager=disabled");
        argv[na++] = ty_strdup("exec");
        argv[na++] = ty_asprintf("%.36s-%s-%d", s->uid, c->name, c->restarts);
        for (size_t i = 0; i < n; i++)
            argv[na++] = ty_strdup(json_string_value(json_array_get(w->sp.command, i)));
    } else {
        if (build_env(c, &env, NULL, &err) < 0 ||
            ty_rt_identity_plan(json_object_get(s->pod, "spec"), c->spec, &ident, &err) < 0) {
            env_free(&env);
            probe_result(w, false, err.msg);
            return;
        }
        argv = ty_calloc(n + 1, sizeof(char *));
        for (size_t i = 0; i < n; i++)
            argv[na++] = ty_rt_expand(json_string_value(json_array_get(w->sp.command, i)),
                                      env_lookup, &env);
        envp = env_vector(&env);
        wd = json_string_value(json_object_get(c->spec, "workingDir"));
        if (!wd || !*wd)
            wd = json_string_value(json_object_get(s->rt, "workdir"));
        if (!wd || !*wd)
            wd = "/";
    }
    int p[2];
    pid_t pid = -1;
    if (pipe2(p, O_CLOEXEC) == 0) {
        pid = fork();
        if (pid == 0) {
            close(p[0]);
            exec_child(c, p[1], argv, envp, wd, &ident);
        }
        close(p[1]);
    }
    strv_free(argv);
    strv_free(envp);
    env_free(&env);
    if (pid < 0) {
        if (pid < 0 && p[0] >= 0)
            close(p[0]);
        TY_AUTOFREE char *msg = ty_asprintf("start the probe's command: %s", strerror(errno));
        probe_result(w, false, msg);
        return;
    }
    exec_check *x = TY_NEW(exec_check);
    x->w = w;
    x->pid = pid;
    ty_buf_init(&x->output);
    uv_pipe_init(s->loop, &x->out, 0);
    uv_timer_init(s->loop, &x->timeout);
    x->out.data = x->timeout.data = x;
    x->open_handles = 2;
    w->exec = x;
    if (uv_pipe_open(&x->out, p[0]) < 0 ||
        uv_read_start((uv_stream_t *)&x->out, exec_alloc, exec_read) < 0)
        x->eof = true;
    uv_timer_start(&x->timeout, exec_timeout, (uint64_t)w->sp.timeout_s * 1000, 0);
}

/* A probe's check process reaped (from the SIGCHLD handler): true when `pid` was one. */
static bool probes_reap(shim *s, pid_t pid, int wst)
{
    for (size_t i = 0; i < s->n_ctrs; i++) {
        for (int k = 0; k < 3; k++) {
            probe_worker *w = s->ctrs[i].probes[k];
            if (w && w->exec && w->exec->pid == pid) {
                w->exec->reaped = true;
                w->exec->wst = wst;
                exec_maybe_done(w->exec);
                return true;
            }
        }
    }
    return false;
}

static void net_done(void *ctx, bool ok, const char *output)
{
    probe_worker *w = ctx;
    w->net = NULL;
    probe_result(w, ok, output);
}

static void probe_kill_fired(uv_timer_t *t)
{
    ctr *c = t->data;
    if (c->pid > 0 && c->st == C_RUNNING)
        killpg(c->pid, SIGKILL);
}

/* Abandons a check under way: its result no longer counts. */
static void probe_abandon(probe_worker *w)
{
    if (w->net) {
        ty_rt_probe_cancel(w->net);
        w->net = NULL;
    }
    if (w->exec) {
        exec_check *x = w->exec;
        x->w = NULL;
        w->exec = NULL;
        if (!x->reaped)
            kill(-x->pid, SIGKILL);
        x->timed_out = true; /* done waiting: its handles close now */
        exec_maybe_done(x);
    }
}

static void probe_result(probe_worker *w, bool ok, const char *output)
{
    ctr *c = w->c;
    shim *s = c->s;
    if (c->st != C_RUNNING || c->restarts != w->run || c->probe_killed || s->stopping)
        return;
    const char *kind = ty_rt_probe_kind_name(w->sp.kind);
    if (!ok) {
        TY_AUTOFREE char *msg = ty_asprintf("%s probe failed: %s", kind, output);
        send_event(s, "Warning", "Unhealthy", msg);
    }
    bool changed = ty_rt_probe_observe(&w->st, &w->sp, ok);
    if (w->sp.kind != TY_PROBE_READINESS && !ok && w->st.run >= w->sp.failure_threshold) {
        /* the kubelet kills the container and lets restartPolicy decide */
        TY_AUTOFREE char *msg =
            ty_asprintf("Container %s failed %s probe, will be restarted", c->name,
                        w->sp.kind == TY_PROBE_LIVENESS ? "liveness" : "startup");
        send_event(s, "Normal", "Killing", msg);
        c->probe_killed = true;
        for (int k = 0; k < 3; k++)
            if (c->probes[k])
                uv_timer_stop(&c->probes[k]->timer), probe_abandon(c->probes[k]);
        int64_t grace = w->sp.grace_s;
        if (grace < 0) {
            json_t *g = json_object_get(json_object_get(s->pod, "spec"),
                                        "terminationGracePeriodSeconds");
            grace = json_is_integer(g) ? json_integer_value(g) : 30;
        }
        killpg(c->pid, grace > 0 ? SIGTERM : SIGKILL);
        if (grace > 0)
            uv_timer_start(&c->probe_kill, probe_kill_fired, (uint64_t)grace * 1000, 0);
        return;
    }
    if (!changed)
        return;
    if (w->sp.kind == TY_PROBE_STARTUP)
        uv_timer_stop(&w->timer); /* started: the startup probe has done its job */
    emit_status(s);
}

static void probe_tick(uv_timer_t *t)
{
    probe_worker *w = t->data;
    ctr *c = w->c;
    probe_worker *startup = c->probes[TY_PROBE_STARTUP];
    if (c->st != C_RUNNING || c->s->stopping || c->probe_killed || w->net || w->exec)
        return;
    if (w->sp.kind != TY_PROBE_STARTUP && startup && !startup->st.result)
        return;
    if (c->image_id && w->sp.action == TY_PROBE_EXEC) {
        /* crun has not started the container yet (its state is written once it runs): no
         * check, as the kubelet probes only containers the runtime reports running */
        char st[PATH_MAX];
        snprintf(st, sizeof st, "%s/crun/%.36s-%s-%d/status", c->s->abs_dir, c->s->uid, c->name,
                 c->restarts);
        if (access(st, F_OK) != 0)
            return;
    }
    w->run = c->restarts;
    if (w->error) {
        probe_result(w, false, w->error);
        return;
    }
    if (w->sp.action == TY_PROBE_EXEC)
        exec_start(w);
    else
        w->net = ty_rt_probe_net_start(c->s->loop, &w->sp, c->s->pod_ip, net_done, w);
}

/* A run of the container began: its workers start over (readiness unready, not started,
 * liveness healthy), the first check after initialDelaySeconds. */
static void probes_started(ctr *c)
{
    c->probe_killed = false;
    uv_timer_stop(&c->probe_kill);
    for (int k = 0; k < 3; k++) {
        probe_worker *w = c->probes[k];
        if (!w)
            continue;
        probe_abandon(w);
        ty_rt_probe_reset(&w->st, w->sp.kind);
        uv_timer_start(&w->timer, probe_tick, (uint64_t)w->sp.initial_delay_s * 1000,
                       (uint64_t)w->sp.period_s * 1000);
    }
}

/* The run ended: no more checks until the next one. */
static void probes_ended(ctr *c)
{
    uv_timer_stop(&c->probe_kill);
    for (int k = 0; k < 3; k++) {
        probe_worker *w = c->probes[k];
        if (!w)
            continue;
        uv_timer_stop(&w->timer);
        probe_abandon(w);
        ty_rt_probe_reset(&w->st, w->sp.kind);
    }
}

static void worker_closed(uv_handle_t *h)
{
    probe_worker *w = h->data;
    ty_rt_probe_spec_free(&w->sp);
    free(w->error);
    free(w);
}

/* At the end of supervision: every worker's handles close (the loop runs once more). */
static void probes_close(ctr *c)
{
    for (int k = 0; k < 3; k++) {
        probe_worker *w = c->probes[k];
        if (!w)
            continue;
        probe_abandon(w);
        uv_close((uv_handle_t *)&w->timer, worker_closed);
        c->probes[k] = NULL;
    }
    uv_close((uv_handle_t *)&c->probe_kill, close_cb);
}

/* ---- reaping, stopping ---------------------------------------------------------------------- */

/* The last error crun logged (JSON lines, level "error"), or NULL: crun failed to create or
 * start the container (a missing executable, a bad mount), as opposed to the container's own
 * exit. */
static char *crun_error(const char *path)
{
    TY_AUTOBUF ty_buf b = TY_BUF_INIT;
    if (ty_buf_read_file(&b, path) < 0)
        return NULL;
    char *found = NULL, *save = NULL;
    for (char *l = strtok_r(b.data, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        json_t *j = json_loads(l, 0, NULL);
        const char *level = json_string_value(json_object_get(j, "level"));
        const char *msg = json_string_value(json_object_get(j, "msg"));
        if (level && msg && strcmp(level, "error") == 0) {
            free(found);
            found = ty_strdup(msg);
        }
        json_decref(j);
    }
    return found;
}

static void container_reaped(ctr *c, int wst)
{
    shim *s = c->s;
    c->finished_ns = ty_time_now_ns();
    /* Whatever is left in the container's group or cgroup goes with it, as when a container's
     * init process dies. */
    killpg(c->pid, SIGKILL);
    if (c->has_cgroup)
        ty_cgroup_kill(&s->cg, c->cg_rel);
    c->pid = 0;
    c->st = C_TERMINATED;
    probes_ended(c);
    for (int i = 0; i < 2; i++)
        if (c->streams[i])
            stream_drain(c->streams[i]);
    if (WIFSIGNALED(wst)) {
        c->signal = WTERMSIG(wst);
        c->exit_code = 128 + c->signal;
    } else {
        c->signal = 0;
        c->exit_code = WEXITSTATUS(wst);
    }
    c->term_reason = c->exit_code == 0 ? "Completed" : "Error";
    if (c->has_cgroup && ty_cgroup_oom_kills(&s->cg, c->cg_rel) > c->oom_base) {
        c->term_reason = "OOMKilled";
        if (c->signal == SIGKILL)
            c->exit_code = 137;
    }
    char *why = c->exit_code != 0 && c->crun_log ? crun_error(c->crun_log) : NULL;
    if (why) { /* crun never started the container's process: as runc's failures show */
        c->exit_code = 128;
        c->signal = 0;
        c->term_reason = "StartError";
        free(c->term_message);
        c->term_message = ty_asprintf("failed to start container \"%s\": %s", c->name, why);
        free(why);
    }
    after_exit(c);
}

static void pull_reaped(ctr *c, int wst);

static void on_sigchld(uv_signal_t *h, int sig)
{
    (void)sig;
    shim *s = h->data;
    int wst;
    pid_t pid;
    while ((pid = waitpid(-1, &wst, WNOHANG)) > 0) {
        if (probes_reap(s, pid, wst))
            continue;
        for (size_t i = 0; i < s->n_ctrs; i++) {
            if (s->ctrs[i].pid == pid && s->ctrs[i].st == C_RUNNING)
                container_reaped(&s->ctrs[i], wst);
            else if (s->ctrs[i].pull_pid == pid)
                pull_reaped(&s->ctrs[i], wst);
        }
        /* others: orphans inherited as pid 1 / subreaper, just reaped */
    }
}

static void kill_all(shim *s, int sig)
{
    for (size_t i = 0; i < s->n_ctrs; i++) {
        ctr *c = &s->ctrs[i];
        if (c->pid > 0)
            killpg(c->pid, sig);
        if (c->pull_pid > 0)
            kill(c->pull_pid, SIGKILL); /* a pull has nothing to finish */
        if (sig == SIGKILL && c->has_cgroup)
            ty_cgroup_kill(&s->cg, c->cg_rel);
    }
}

static void grace_over(uv_timer_t *t)
{
    kill_all(t->data, SIGKILL);
}

static void stop(shim *s, int64_t grace)
{
    /* A second stop can only cut the grace period short: grace 0 kills at once. */
    if (s->stopping) {
        if (grace == 0)
            kill_all(s, SIGKILL);
        return;
    }
    s->stopping = true;
    s->grace_s = grace;
    for (size_t i = 0; i < s->n_ctrs; i++)
        uv_timer_stop(&s->ctrs[i].backoff), uv_timer_stop(&s->ctrs[i].pull_timer);
    kill_all(s, grace > 0 ? SIGTERM : SIGKILL);
    if (grace > 0)
        uv_timer_start(&s->grace, grace_over, (uint64_t)grace * 1000, 0);
    maybe_finish(s);
}

static void close_cb(uv_handle_t *h) { (void)h; }

static void maybe_finish(shim *s)
{
    if (!s->stopping || s->exiting)
        return;
    for (size_t i = 0; i < s->n_ctrs; i++)
        if (s->ctrs[i].pid > 0 || s->ctrs[i].pull_pid > 0)
            return;
    if (s->open_streams > 0)
        return; /* the last log lines are still coming */
    s->exiting = true;
    emit_status(s);
    uv_timer_stop(&s->grace);
    uv_stop(s->loop);
}

/* The pod has ended for good when its phase is final: every container terminated and none
 * will restart (Never; OnFailure after success; an init container failed under Never). Nothing
 * is left to supervise, so the shim ends as after a stop: the final status goes to state.json
 * (finished) and to the attached trainyard, then the shim exits and removes its cgroups; the
 * pod dir and logs stay. Without this a finished pod kept its shim until it was deleted, and
 * forever when no trainyard was left to delete it. */
static void finish_if_ended(shim *s)
{
    const char *ph = phase(s);
    if (s->stopping || (strcmp(ph, "Succeeded") != 0 && strcmp(ph, "Failed") != 0))
        return;
    s->stopping = true;
    for (size_t i = 0; i < s->n_ctrs; i++)
        uv_timer_stop(&s->ctrs[i].backoff), uv_timer_stop(&s->ctrs[i].pull_timer);
    /* As pid 1 of the pod's namespace: whatever a container left behind outside its process
     * group (a daemon holding its stdout) dies now, so the last log streams close. */
    if (s->pidns)
        kill(-1, SIGKILL);
    maybe_finish(s);
}

static void cmd_alloc(uv_handle_t *h, size_t sz, uv_buf_t *buf)
{
    (void)sz;
    shim *s = h->data;
    ty_buf_grow(&s->cmdbuf, 256);
    buf->base = s->cmdbuf.data + s->cmdbuf.len;
    buf->len = s->cmdbuf.cap - s->cmdbuf.len - 1;
}

static void cmd_read(uv_stream_t *h, ssize_t n, const uv_buf_t *buf)
{
    (void)buf;
    shim *s = h->data;
    if (n < 0) {
        /* trainyard closed its end: it is gone or restarting. With pods that die with it the
         * death signal handles this; otherwise the pod keeps running, its logs keep being
         * written, and the next trainyard reconnects. */
        if ((uv_pipe_t *)h == s->client)
            client_drop(s);
        return;
    }
    s->cmdbuf.len += (size_t)n;
    s->cmdbuf.data[s->cmdbuf.len] = '\0';
    char *nl;
    while ((nl = strchr(s->cmdbuf.data, '\n'))) {
        *nl = '\0';
        long long g;
        if (sscanf(s->cmdbuf.data, "stop %lld", &g) == 1)
            stop(s, g < 0 ? 0 : g > 1000000000LL ? 1000000000LL : g); /* ms must not wrap */
        size_t used = (size_t)(nl + 1 - s->cmdbuf.data);
        memmove(s->cmdbuf.data, nl + 1, s->cmdbuf.len - used + 1);
        s->cmdbuf.len -= used;
    }
}

/* A trainyard (re)attaches: it replaces the previous one and gets the current status at once. */
static void on_connection(uv_stream_t *l, int status)
{
    shim *s = l->data;
    if (status < 0 || s->exiting)
        return;
    uv_pipe_t *c = TY_NEW(uv_pipe_t);
    uv_pipe_init(s->loop, c, 0);
    if (uv_accept(l, (uv_stream_t *)c) < 0) {
        uv_close((uv_handle_t *)c, client_closed);
        return;
    }
    client_drop(s);
    s->client = c;
    c->data = s;
    uv_read_start((uv_stream_t *)c, cmd_alloc, cmd_read);
    json_t *st = build_status(s);
    send_status(s, st);
    json_decref(st);
}

static void on_sigterm(uv_signal_t *h, int sig)
{
    (void)sig;
    /* Our parent died (death signal) or someone asked us to end: no grace. */
    stop(h->data, 0);
}

/* ---- setup ---------------------------------------------------------------------------------- */

static int resources(ctr *c, ty_error *err)
{
    json_t *lim = json_object_get(json_object_get(c->spec, "resources"), "limits");
    ty_quantity q;
    json_t *v;
    if ((v = json_object_get(lim, "memory"))) {
        if (ty_quantity_from_json(v, &q, err) < 0)
            return ty_error_wrap(err, "container %s: limits.memory", c->name);
        c->mem_bytes = q.milli / 1000;
    }
    if ((v = json_object_get(lim, "cpu"))) {
        if (ty_quantity_from_json(v, &q, err) < 0)
            return ty_error_wrap(err, "container %s: limits.cpu", c->name);
        c->cpu_milli = q.milli;
    }
    if ((v = json_object_get(lim, "nvidia.com/gpu"))) {
        if (ty_quantity_from_json(v, &q, err) < 0)
            return ty_error_wrap(err, "container %s: limits.nvidia.com/gpu", c->name);
        c->gpu_count = (int)(q.milli / 1000);
    }
    return 0;
}

static void fmt_bytes(ty_buf *b, int64_t n)
{
    if (n % (1 << 30) == 0)
        ty_buf_addf(b, "%lldGi", (long long)(n >> 30));
    else if (n % (1 << 20) == 0)
        ty_buf_addf(b, "%lldMi", (long long)(n >> 20));
    else
        ty_buf_addf(b, "%lld", (long long)n);
}

/* Sets up cgroups (or rlimits) per container and writes what was enforced into s->enforced. */
static void setup_limits(shim *s)
{
    TY_AUTOBUF ty_buf b = TY_BUF_INIT;
    const char *idir = json_string_value(json_object_get(s->rt, "imagesDir"));
    if (!idir)
        ty_buf_adds(&b, "local pod: image is recorded but containers run on the host");
    /* with a store, each container says where it runs (ImageNotPresent: on the host) */
    for (size_t i = 0; idir && i < s->n_ctrs; i++) {
        const char *image = json_string_value(json_object_get(s->ctrs[i].spec, "image"));
        ty_image img;
        int found = image && *image ? ty_image_find(idir, image, &img, NULL) : 0;
        if (found == 1)
            ty_image_free(&img);
        ty_buf_addf(&b, "%s%s: ", i ? "; " : "", s->ctrs[i].name);
        if (found == 1)
            ty_buf_addf(&b, "image %s (crun, overlay root filesystem)", image);
        else
            ty_buf_addf(&b, "ImageNotPresent: image %s is not in the image store, runs on the "
                        "host", image && *image ? image : "(none)");
    }
    bool any = false;
    bool limited = false;
    for (size_t i = 0; i < s->n_ctrs; i++)
        limited |= s->ctrs[i].mem_bytes > 0 || s->ctrs[i].cpu_milli > 0;
    /* Only containers with limits get a cgroup: on cgroup v1 moving a task into a cgroup costs
     * ~10 ms (an RCU grace period), and the pid namespace already catches every process. */
    if (limited)
        ty_cgroups_detect(&s->cg);
    if (s->cg.kind != TY_CGROUP_NONE) {
        TY_CLEANUP_ERROR ty_error e = TY_ERROR_INIT;
        if (ty_cgroup_create(&s->cg, s->uid, 0, 0, &e) < 0)
            ty_cgroups_free(&s->cg);
    }
    for (size_t i = 0; i < s->n_ctrs; i++) {
        ctr *c = &s->ctrs[i];
        c->cg_rel = ty_asprintf("%s/%s", s->uid, c->name);
        TY_CLEANUP_ERROR ty_error e = TY_ERROR_INIT;
        if (s->cg.kind != TY_CGROUP_NONE && (c->mem_bytes > 0 || c->cpu_milli > 0) &&
            ty_cgroup_create(&s->cg, c->cg_rel, c->mem_bytes, c->cpu_milli, &e) == 0)
            c->has_cgroup = true;
        if (!c->mem_bytes && !c->cpu_milli && !c->gpu_count)
            continue;
        ty_buf_adds(&b, any ? "; " : "; enforced: ");
        any = true;
        ty_buf_addf(&b, "%s:", c->name);
        if (c->mem_bytes) {
            ty_buf_adds(&b, " memory ");
            fmt_bytes(&b, c->mem_bytes);
            ty_buf_addf(&b, " (%s)", c->has_cgroup ? ty_cgroups_kind_name(&s->cg) : "RLIMIT_AS");
        }
        if (c->cpu_milli) {
            ty_buf_addf(&b, " cpu %lldm", (long long)c->cpu_milli);
            ty_buf_adds(&b, !c->has_cgroup ? " (not enforced: no cgroups)"
                            : s->cg.kind == TY_CGROUP_V2 ? " (cpu.max)" : " (cfs quota)");
        }
        if (c->gpu_count)
            ty_buf_addf(&b, " nvidia.com/gpu %d (CUDA_VISIBLE_DEVICES)", c->gpu_count);
    }
    s->enforced = ty_buf_steal(&b);
}

static int load(shim *s, const char *dir, ty_error *err)
{
    s->dir = ty_strdup(dir);
    TY_AUTOFREE char *path = ty_asprintf("%s/pod.json", dir);
    json_error_t je;
    s->doc = json_load_file(path, 0, &je);
    if (!s->doc)
        return ty_fail(err, "read %s: %s", path, je.text);
    s->pod = json_object_get(s->doc, "pod");
    s->rt = json_object_get(s->doc, "runtime");
    s->ns = str_at(s->pod, "metadata.namespace");
    s->name = str_at(s->pod, "metadata.name");
    s->uid = str_at(s->pod, "metadata.uid");
    s->pod_ip = json_string_value(json_object_get(s->rt, "podIP"));
    s->host_ip = json_string_value(json_object_get(s->rt, "hostIP"));
    s->node = json_string_value(json_object_get(s->rt, "nodeName"));
    json_t *net = json_object_get(s->rt, "network");
    s->hostname = json_string_value(json_object_get(net, "hostname"));
    s->etc_dir = json_string_value(json_object_get(net, "etcDir"));
    json_t *nsfd = json_object_get(net, "netnsFd");
    s->netns_fd = json_is_integer(nsfd) ? (int)json_integer_value(nsfd) : -1;
    if (!s->ns)
        s->ns = "default";
    if (!s->name || !s->uid)
        return ty_fail(err, "%s: metadata.name and metadata.uid are required", path);
    if (!s->hostname)
        s->hostname = s->name;
    if (!s->pod_ip)
        s->pod_ip = "127.0.0.1";
    if (!s->host_ip)
        s->host_ip = "127.0.0.1";
    if (!s->node)
        s->node = "";
    s->policy = str_at(s->pod, "spec.restartPolicy");
    if (!s->policy || (strcmp(s->policy, "Never") != 0 && strcmp(s->policy, "OnFailure") != 0))
        s->policy = "Always";
    s->backoff_ms = json_integer_value(json_object_get(s->rt, "backoffMs"));
    if (s->backoff_ms <= 0)
        s->backoff_ms = 10000;
    json_t *spec = json_object_get(s->pod, "spec");
    json_t *init = json_object_get(spec, "initContainers");
    json_t *main = json_object_get(spec, "containers");
    s->n_init = json_array_size(init);
    s->n_ctrs = s->n_init + json_array_size(main);
    if (json_array_size(main) == 0)
        return ty_fail(err, "%s: spec.containers is empty", path);
    s->ctrs = ty_calloc(s->n_ctrs, sizeof(ctr));
    int gpu_next = 0;
    for (size_t i = 0; i < s->n_ctrs; i++) {
        ctr *c = &s->ctrs[i];
        c->s = s;
        c->init = i < s->n_init;
        c->spec = c->init ? json_array_get(init, i) : json_array_get(main, i - s->n_init);
        c->name = json_string_value(json_object_get(c->spec, "name"));
        if (!c->name || !*c->name || strchr(c->name, '/') || c->name[0] == '.')
            return ty_fail(err, "%s: container %zu has no valid name", path, i);
        if (resources(c, err) < 0)
            return -1;
        /* init containers run one at a time and reuse the pod's first devices */
        c->gpu_first = c->init ? 0 : gpu_next;
        if (!c->init)
            gpu_next += c->gpu_count;
        if (c->gpu_first + c->gpu_count > (int)json_array_size(json_object_get(s->rt, "gpus")))
            return ty_fail(err, "container %s: more GPUs requested than assigned", c->name);
        set_waiting(c, c->init || s->n_init == 0 ? "ContainerCreating" : "PodInitializing", NULL);
    }
    return 0;
}

static int supervise(shim *s)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    s->loop = &loop;
    s->start_ns = ty_time_now_ns();
    signal(SIGPIPE, SIG_IGN);
    uv_signal_init(&loop, &s->sigchld);
    s->sigchld.data = s;
    uv_signal_start(&s->sigchld, on_sigchld, SIGCHLD);
    uv_signal_init(&loop, &s->sigterm);
    s->sigterm.data = s;
    uv_signal_start(&s->sigterm, on_sigterm, SIGTERM);
    uv_timer_init(&loop, &s->grace);
    s->grace.data = s;
    for (size_t i = 0; i < s->n_ctrs; i++) {
        uv_timer_init(&loop, &s->ctrs[i].backoff);
        uv_timer_init(&loop, &s->ctrs[i].pull_timer);
        s->ctrs[i].pull_timer.data = &s->ctrs[i];
        s->ctrs[i].backoff.data = &s->ctrs[i];
        uv_timer_init(&loop, &s->ctrs[i].probe_kill);
        s->ctrs[i].probe_kill.data = &s->ctrs[i];
        probes_load(&s->ctrs[i]);
    }
    char absdir[PATH_MAX];
    s->abs_dir = ty_strdup(realpath(s->dir, absdir) ? absdir : s->dir);
    ty_buf_init(&s->cmdbuf);
    /* The runtime hands us the listening control socket as stdin. Started by hand (stdin a
     * terminal or /dev/null) there is no channel: state.json and the logs still tell. */
    int acc = 0;
    socklen_t alen = sizeof(acc);
    if (getsockopt(0, SOL_SOCKET, SO_ACCEPTCONN, &acc, &alen) == 0 && acc) {
        int lfd = fcntl(0, F_DUPFD_CLOEXEC, 3);
        int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (nul >= 0) {
            dup2(nul, 0);
            close(nul);
        }
        uv_pipe_init(&loop, &s->listener, 0);
        s->listener.data = s;
        s->has_listener = true;
        if (lfd < 0 || uv_pipe_open(&s->listener, lfd) < 0 ||
            uv_listen((uv_stream_t *)&s->listener, 8, on_connection) < 0)
            fprintf(stderr, "trainyard shim: %s: no control socket\n", s->dir);
    }

    setup_limits(s);
    emit_status(s);
    /* The spawning trainyard's connection already waits in the backlog: take it now, so that a
     * pod that ends before the loop runs (every container a StartError) still reports its
     * final status to it before the shim exits. */
    if (s->has_listener)
        uv_run(&loop, UV_RUN_NOWAIT);
    if (s->n_init)
        start_container(&s->ctrs[0]);
    else {
        s->init_done = true;
        start_main_containers(s);
    }
    uv_run(&loop, UV_RUN_DEFAULT);

    /* Finished: everything was reaped (maybe_finish checked). Remove our cgroups. */
    if (s->cg.kind != TY_CGROUP_NONE) {
        ty_cgroup_kill(&s->cg, s->uid);
        ty_cgroup_remove(&s->cg, s->uid, NULL);
    }
    uv_close((uv_handle_t *)&s->sigchld, close_cb);
    uv_close((uv_handle_t *)&s->sigterm, close_cb);
    uv_close((uv_handle_t *)&s->grace, close_cb);
    if (s->has_listener)
        uv_close((uv_handle_t *)&s->listener, close_cb);
    client_drop(s);
    for (size_t i = 0; i < s->n_ctrs; i++) {
        uv_close((uv_handle_t *)&s->ctrs[i].backoff, close_cb);
        uv_close((uv_handle_t *)&s->ctrs[i].pull_timer, close_cb);
        probes_close(&s->ctrs[i]);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return 0;
}

static void shim_free(shim *s)
{
    for (size_t i = 0; i < s->n_ctrs; i++) {
        ctr *c = &s->ctrs[i];
        free(c->wait_message), free(c->term_message), free(c->cg_rel), free(c->image_id);
        free(c->crun_log);
        json_decref(c->last_state);
    }
    free(s->ctrs);
    free(s->abs_dir);
    free(s->enforced);
    free(s->dir);
    ty_buf_free(&s->cmdbuf);
    ty_cgroups_free(&s->cg);
    json_decref(s->doc);
}

/* P, the outer half: waits for S. SIGTERM (our parent's death signal, or anyone's) kills S,
 * which takes the whole pid namespace along; then the pod's cgroups are removed, also when S
 * died without cleaning up. Signals are taken synchronously (sigwaitinfo), so none is lost
 * between a check and a wait. Never returns. */
static void outer_wait(shim *s, pid_t child, bool die, pid_t parent)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, NULL);
    /* S holds the control socket; our copy would let a connect succeed to nobody after S died. */
    int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (nul >= 0) {
        dup2(nul, 0);
        close(nul);
    }
    if (die) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (parent > 0 && getppid() != parent)
            kill(child, SIGKILL);
    }
    int st = 0;
    for (;;) {
        pid_t r = waitpid(child, &st, WNOHANG);
        if (r == child || (r < 0 && errno != EINTR))
            break;
        int sig = sigwaitinfo(&set, NULL);
        if (sig == SIGTERM)
            kill(child, SIGKILL);
    }
    bool limited = false;
    for (size_t i = 0; i < s->n_ctrs; i++)
        limited |= s->ctrs[i].mem_bytes > 0 || s->ctrs[i].cpu_milli > 0;
    if (limited) {
        ty_cgroups cg;
        ty_cgroups_detect(&cg);
        if (cg.kind != TY_CGROUP_NONE) {
            ty_cgroup_kill(&cg, s->uid);
            ty_cgroup_remove(&cg, s->uid, NULL);
        }
        ty_cgroups_free(&cg);
    }
    shim_free(s);
    /* _exit: our pid namespace is dead now, so nothing may fork here any more (the leak
     * checker's helper of sanitizer builds would fail at exit). */
    _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
}

int ty_rt_shim_main(const char *pod_dir)
{
    shim s = {0};
    TY_CLEANUP_ERROR ty_error err = TY_ERROR_INIT;
    if (load(&s, pod_dir, &err) < 0) {
        fprintf(stderr, "trainyard shim: %s\n", err.msg);
        shim_free(&s);
        return 1;
    }
    bool die = json_is_true(json_object_get(s.rt, "dieWithParent"));
    pid_t parent = (pid_t)json_integer_value(json_object_get(s.rt, "parentPid"));
    s.host_pid = getpid();
    s.host_start = ty_rt_proc_start(0);
    if (die) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (parent > 0 && getppid() != parent) /* it died before the line above */
            return 1;
    }
    /* The pod's own network (and with it its own hostname), before the pid namespace, so that
     * every process of the pod is in it. */
    if (s.netns_fd >= 0) {
        const char *what = NULL;
        if (setns(s.netns_fd, CLONE_NEWNET) < 0)
            what = "join the pod's network namespace";
        else if (unshare(CLONE_NEWUTS) < 0)
            what = "create the pod's UTS namespace";
        else if (sethostname(s.hostname, strlen(s.hostname)) < 0)
            what = "set the pod's hostname";
        if (what) {
            fprintf(stderr, "trainyard shim: %s: %s\n", what, strerror(errno));
            shim_free(&s);
            return 1;
        }
        close(s.netns_fd);
        s.netns_fd = -1;
    }
    /* P: try to become the outside half of a pid namespace; S does the work. */
    if (unshare(CLONE_NEWPID) == 0) {
        pid_t child = fork();
        if (child < 0) {
            fprintf(stderr, "trainyard shim: fork: %s\n", strerror(errno));
            return 1;
        }
        if (child > 0)
            outer_wait(&s, child, die, parent);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        s.pidns = true;
    } else {
        /* No pid namespace: be the subreaper of our containers; a parent death signal of
         * SIGTERM lets us kill their groups and cgroups before going. */
        prctl(PR_SET_CHILD_SUBREAPER, 1);
        if (die)
            prctl(PR_SET_PDEATHSIG, SIGTERM);
    }
    int rc = supervise(&s);
    shim_free(&s);
    return rc;
}
