#include "cli/view.h"

#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/map.h"
#include "base/mem.h"
#include "base/time.h"
#include "api/kueue.h"
#include "controllers/kubeflow.h"
#include "controllers/podutil.h"

struct ty_view {
    FILE *out;
    bool tty;
    bool follow;
    ty_runtime *rt;
    ty_map last_printed; /* plain mode: object -> last line printed (owned char*) */
    ty_map log_offsets;  /* follow: log path -> bytes already printed (as uintptr_t + 1) */
    int drawn_lines;     /* tty: lines of the last frame */
    int64_t start_ns;
    ty_store *store;     /* borrowed, from the last update */
    char *stop_why;      /* set by ty_view_stopping: why the run stops its pods */
    ty_map stopped;      /* uids of the pods that ran when the run began stopping */
    ty_map shown;        /* plain mode: uid of each pod shown -> shown_pod */
};

/* A pod the plain view has shown, so that one deleted from the store is still reported. */
typedef struct shown_pod {
    char *name, *job_uid;
    bool ended;
} shown_pod;

ty_view *ty_view_new(FILE *out, bool follow, ty_runtime *rt)
{
    ty_view *v = TY_NEW(ty_view);
    v->out = out;
    v->follow = follow;
    v->rt = rt;
    const char *term = getenv("TERM");
    v->tty = isatty(fileno(out)) && !follow && !(term && strcmp(term, "dumb") == 0);
    v->start_ns = ty_time_mono_ns();
    return v;
}

void ty_view_free(ty_view *v)
{
    if (!v)
        return;
    const ty_map_slot *s;
    for (size_t i = 0; ty_map_next(&v->last_printed, &i, &s);)
        free(s->value);
    ty_map_free(&v->last_printed);
    ty_map_free(&v->log_offsets);
    ty_map_free(&v->stopped);
    for (size_t i = 0; ty_map_next(&v->shown, &i, &s);) {
        shown_pod *sp = s->value;
        free(sp->name), free(sp->job_uid), free(sp);
    }
    ty_map_free(&v->shown);
    free(v->stop_why);
    free(v);
}

static json_t *condition_latest(const json_t *job)
{
    /* The most meaningful true condition: terminal ones first, then the last true one. */
    json_t *conds = json_object_get(json_object_get(job, "status"), "conditions");
    json_t *best = NULL;
    size_t i;
    json_t *c;
    json_array_foreach(conds, i, c)
    {
        const char *status = json_string_value(json_object_get(c, "status"));
        if (!status || strcmp(status, "True") != 0)
            continue;
        const char *type = json_string_value(json_object_get(c, "type"));
        if (type && (strcmp(type, "Succeeded") == 0 || strcmp(type, "Complete") == 0 ||
                     strcmp(type, "Failed") == 0))
            return c;
        best = c;
    }
    return best;
}

static bool job_finished(const json_t *job)
{
    return ty_job_finished(job, NULL);
}

char *ty_view_queue_wait(ty_store *store, const json_t *job)
{
    if (!ty_obj_label(job, TY_KUEUE_LABEL_QUEUE_NAME) || job_finished(job) ||
        !ty_obj_condition_true(job, "Suspended") || !ty_obj_uid(job))
        return NULL;
    char *why = NULL;
    json_t *wls = ty_store_list_owned(store, "workloads", ty_obj_uid(job));
    json_t *wl = json_array_get(wls, 0);
    /* Workloads carry conditions where pods do: the pod helper reads them. */
    const json_t *qr = wl ? ty_pod_condition(wl, "QuotaReserved") : NULL;
    const char *msg = json_string_value(json_object_get(qr, "message"));
    const char *qst = json_string_value(json_object_get(qr, "status"));
    if (qst && strcmp(qst, "True") == 0)
        why = ty_strdup("admitted, starting");
    else if (msg)
        why = ty_strdup(msg);
    json_decref(wls);
    if (why)
        return why;
    if (!wl) {
        /* No Workload (yet): the workload controller's last warning says why, if any. */
        json_t *evs = ty_store_list(store, "events", ty_obj_namespace(job));
        size_t i;
        json_t *ev;
        json_array_foreach(evs, i, ev)
        {
            const char *uid = json_string_value(
                json_object_get(json_object_get(ev, "involvedObject"), "uid"));
            const char *type = json_string_value(json_object_get(ev, "type"));
            const char *m = json_string_value(json_object_get(ev, "message"));
            if (uid && strcmp(uid, ty_obj_uid(job)) == 0 && type &&
                strcmp(type, "Warning") == 0 && m) {
                free(why);
                why = ty_strdup(m);
            }
        }
        json_decref(evs);
    }
    return why ? why
               : ty_strdup(wl ? "waiting for the queue's first pass" : "waiting for its Workload");
}

/* A job's state and message as shown: its latest condition; a queued job waiting says why
 * (its Workload's reason); a job the run stopped before it finished says so. `*free_msg`
 * gets what the caller frees. */
static const char *job_state(ty_view *v, const json_t *job, const char **msg, char **free_msg)
{
    json_t *c = condition_latest(job);
    const char *t = c ? json_string_value(json_object_get(c, "type")) : NULL;
    *msg = json_string_value(json_object_get(c, "message"));
    *free_msg = NULL;
    if (v->stop_why && !job_finished(job)) {
        *msg = v->stop_why;
        return "Stopped";
    }
    if (v->store && (*free_msg = ty_view_queue_wait(v->store, job))) {
        *msg = *free_msg;
        return "Queued";
    }
    /* a batch/v1 Job has no Running condition: its active pods say it runs */
    if (!t && json_integer_value(json_object_get(json_object_get(job, "status"), "active")) > 0)
        return "Running";
    return t ? t : "Pending";
}

/* Pods of a job, sorted by name (the store lists them so). New reference. */
static json_t *pods_of(ty_store *store, const json_t *job)
{
    json_t *all = ty_store_list(store, "pods", ty_obj_namespace(job));
    json_t *mine = json_array();
    size_t i;
    json_t *pod;
    json_array_foreach(all, i, pod)
    {
        if (ty_obj_owned_by(pod, ty_obj_uid(job))) /* any job kind's pods */
            json_array_append(mine, pod);
    }
    json_decref(all);
    return mine;
}

/* The replica's restarts: its containers' in place, and the gang restarts that recreated it. */
static int64_t pod_restarts(const json_t *job, const json_t *pod)
{
    int64_t n = ty_kubeflow_gang_restarts(job);
    size_t i;
    json_t *cs;
    json_array_foreach(json_object_get(json_object_get(pod, "status"), "containerStatuses"), i, cs)
        n += json_integer_value(json_object_get(cs, "restartCount"));
    return n;
}

/* The first container's current log file. Caller frees. */
static char *main_log_path(ty_view *v, const json_t *pod)
{
    json_t *cs = json_array_get(json_object_get(json_object_get(pod, "status"), "containerStatuses"), 0);
    json_t *c = json_array_get(json_object_get(json_object_get(pod, "spec"), "containers"), 0);
    const char *name = json_string_value(json_object_get(c, "name"));
    if (!name || !ty_obj_uid(pod))
        return NULL;
    return ty_runtime_log_path(v->rt, ty_obj_uid(pod), name,
                               (int)json_integer_value(json_object_get(cs, "restartCount")));
}

/* The content of a CRI log line: what follows "<time> <stream> <tag> ". */
static const char *cri_content(const char *line)
{
    const char *p = line;
    for (int i = 0; i < 3 && p; i++) {
        p = strchr(p, ' ');
        if (p)
            p++;
    }
    return p ? p : line;
}

/* Whether a log line reports progress as `epoch=N/M` (N of M epochs), and which. */
static bool parse_epoch(const char *content, int *epoch, int *epochs)
{
    const char *e = strstr(content, "epoch=");
    if (e && sscanf(e, "epoch=%d/%d", epoch, epochs) == 2 && *epochs > 0)
        return true;
    *epoch = *epochs = 0;
    return false;
}

/* The last complete line of a log file, and the last `epoch=N/M` in its tail. */
static void log_tail(const char *path, ty_buf *last, int *epoch, int *epochs)
{
    ty_buf_reset(last);
    *epoch = *epochs = 0;
    int fd = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    if (fd < 0)
        return;
    char buf[8192];
    off_t size = lseek(fd, 0, SEEK_END);
    off_t from = size > (off_t)sizeof buf - 1 ? size - (off_t)sizeof buf + 1 : 0;
    ssize_t n = pread(fd, buf, sizeof buf - 1, from);
    close(fd);
    if (n <= 0)
        return;
    buf[n] = '\0';
    /* Walk lines backwards. */
    char *end = buf + n;
    while (end > buf && end[-1] == '\n')
        end--;
    *end = '\0';
    bool have_last = false;
    while (end > buf) {
        char *start = end;
        while (start > buf && start[-1] != '\n')
            start--;
        if (start == buf && from > 0)
            break; /* a cut line */
        const char *content = cri_content(start);
        if (!have_last && *content) {
            ty_buf_adds(last, content);
            have_last = true;
        }
        if (!*epochs)
            parse_epoch(content, epoch, epochs);
        if (have_last && *epochs)
            break;
        if (start == buf)
            break;
        end = start - 1;
        *end = '\0';
    }
}

/* The first container state of the pod that tells of trouble: waiting for a reason other
 * than the normal start (CreateContainerConfigError, CrashLoopBackOff), or terminated with a
 * runtime message (a start error). NULL when there is none. */
static const json_t *container_trouble(const json_t *pod, const char **reason)
{
    const char *lists[] = {"initContainerStatuses", "containerStatuses"};
    for (size_t l = 0; l < 2; l++) {
        size_t i;
        json_t *cs;
        json_array_foreach(json_object_get(json_object_get(pod, "status"), lists[l]), i, cs)
        {
            json_t *state = json_object_get(cs, "state");
            json_t *w = json_object_get(state, "waiting");
            json_t *t = json_object_get(state, "terminated");
            const char *r = json_string_value(json_object_get(w, "reason"));
            if (r && strcmp(r, "ContainerCreating") != 0 && strcmp(r, "PodInitializing") != 0)
                return *reason = r, w;
            r = json_string_value(json_object_get(t, "reason"));
            if (r && json_string_value(json_object_get(t, "message")))
                return *reason = r, t;
        }
    }
    return NULL;
}

static const char *pod_state(const json_t *pod, char *out, size_t cap)
{
    const char *phase = ty_pod_phase(pod);
    json_t *status = json_object_get(pod, "status");
    const char *why = NULL;
    const json_t *trouble = container_trouble(pod, &why);
    const char *tmsg = json_string_value(json_object_get(trouble, "message"));
    if (strcmp(phase, "Pending") == 0) {
        const json_t *sched = ty_pod_condition(pod, "PodScheduled");
        const char *msg = sched ? json_string_value(json_object_get(sched, "message")) : NULL;
        if (trouble)
            snprintf(out, cap, "Pending: %s%s%s", why, tmsg ? ": " : "", tmsg ? tmsg : "");
        else
            snprintf(out, cap, "Pending%s%s", msg ? ": " : "", msg ? msg : "");
        return out;
    }
    json_t *cs = json_array_get(json_object_get(status, "containerStatuses"), 0);
    json_t *term = json_object_get(json_object_get(cs, "state"), "terminated");
    if (strcmp(phase, "Failed") == 0 || (strcmp(phase, "Succeeded") == 0 && term)) {
        const char *reason = json_string_value(json_object_get(term, "reason"));
        const char *msg = json_string_value(json_object_get(status, "message"));
        const char *tm = json_string_value(json_object_get(term, "message"));
        if (term)
            snprintf(out, cap, "%s (exit code %lld%s%s)%s%s", phase,
                     (long long)json_integer_value(json_object_get(term, "exitCode")),
                     reason ? ", " : "", reason ? reason : "", tm ? ": " : "", tm ? tm : "");
        else
            snprintf(out, cap, "%s%s%s", phase, msg ? ": " : "", msg ? msg : "");
        return out;
    }
    if (trouble && strcmp(why, "CrashLoopBackOff") == 0) {
        /* Between restarts: what the last run ended with. */
        const json_t *last = NULL;
        const json_t *c;
        size_t i;
        json_array_foreach(json_object_get(status, "containerStatuses"), i, c)
        {
            const json_t *w = json_object_get(json_object_get(c, "state"), "waiting");
            if (w == trouble)
                last = json_object_get(json_object_get(c, "lastState"), "terminated");
        }
        const char *lr = json_string_value(json_object_get(last, "reason"));
        const char *lm = json_string_value(json_object_get(last, "message"));
        long long code = (long long)json_integer_value(json_object_get(last, "exitCode"));
        snprintf(out, cap, "%s (CrashLoopBackOff): last run %s (exit code %lld)%s%s", phase,
                 lr ? lr : "Error", code, lm ? ": " : "", lm ? lm : "");
        return out;
    }
    if (trouble)
        snprintf(out, cap, "%s (%s)%s%s", phase, why, tmsg ? ": " : "", tmsg ? tmsg : "");
    else
        snprintf(out, cap, "%s", phase);
    return out;
}

static void print_changed(ty_view *v, const char *key, const char *line);

/* "<phase> (<why the job's controller deleted the pod>)". */
static void deleted_state(const json_t *job, const char *phase, char *out, size_t cap)
{
    const char *policy = json_string_value(json_object_get(
        json_object_get(json_object_get(job, "spec"), "runPolicy"), "cleanPodPolicy"));
    if (job_finished(job))
        snprintf(out, cap, "%s (cleanPodPolicy %s: the job ended)", phase,
                 policy ? policy : "None");
    else if (ty_obj_condition_true(job, "Restarting"))
        snprintf(out, cap, "%s (the job restarts its pods)", phase);
    else
        snprintf(out, cap, "%s", phase);
}

static void add_clipped(ty_buf *frame, const char *line, int width);

/* The job's pods shown before that are gone from the store now (deleted by the job's
 * controller): plain mode says so once (unless their end was shown), the terminal keeps
 * their row as Deleted. */
static void report_vanished(ty_view *v, const json_t *job, const ty_map *present, ty_buf *frame,
                            int *lines, int width)
{
    char state[512];
    const ty_map_slot *s;
    for (size_t i = 0; ty_map_next(&v->shown, &i, &s);) {
        shown_pod *sp = s->value;
        if (strcmp(sp->job_uid, ty_obj_uid(job)) != 0 || ty_map_gets(present, s->key))
            continue;
        deleted_state(job, "Deleted", state, sizeof state);
        if (v->tty) {
            /* Only once the job ended: the rows of a gang restart's pods are replaced by
             * the new pods'. */
            if (!job_finished(job))
                continue;
            const char *why = strchr(state, '(');
            TY_AUTOBUF ty_buf line = TY_BUF_INIT;
            ty_buf_addf(&line, "  %-32s %-10s %8s %8s  %s", sp->name, "Deleted", "-", "-",
                        why ? why : "");
            add_clipped(frame, line.data, width);
            (*lines)++;
            continue;
        }
        if (sp->ended)
            continue;
        sp->ended = true;
        TY_AUTOFREE char *key = ty_asprintf("pod/%s", sp->name);
        print_changed(v, key, state);
    }
}

/* A pod that was deleted (by cleanPodPolicy when its job ended, or for a gang restart) or
 * stopped by the run itself: it did not fail, whatever its exit code (143 after SIGTERM).
 * Writes its state and a one-word phase; false for any other pod. */
static bool ended_by_us(ty_view *v, const json_t *job, const json_t *pod, char *out, size_t cap,
                        const char **phase)
{
    bool term = ty_pod_terminated(pod);
    if (ty_obj_deleting(pod)) {
        *phase = term ? "Deleted" : "Terminating";
        deleted_state(job, *phase, out, cap);
        return true;
    }
    if (term && v->stop_why && strcmp(ty_pod_phase(pod), "Succeeded") != 0 && ty_obj_uid(pod) &&
        ty_map_gets(&v->stopped, ty_obj_uid(pod))) {
        *phase = "Stopped";
        snprintf(out, cap, "Stopped (%s)", v->stop_why);
        return true;
    }
    return false;
}

void ty_view_stopping(ty_view *v, ty_store *store, const char *why)
{
    if (v->stop_why)
        return;
    v->stop_why = ty_strdup(why);
    json_t *pods = ty_store_list(store, "pods", NULL);
    size_t i;
    json_t *pod;
    json_array_foreach(pods, i, pod) if (!ty_pod_terminated(pod) && ty_obj_uid(pod))
        ty_map_puts(&v->stopped, ty_obj_uid(pod), (void *)1);
    json_decref(pods);
}

static void print_changed(ty_view *v, const char *key, const char *line)
{
    char *prev = ty_map_gets(&v->last_printed, key);
    if (prev && strcmp(prev, line) == 0)
        return;
    free(ty_map_puts(&v->last_printed, key, ty_strdup(line)));
    fprintf(v->out, "%s: %s\n", key, line);
}

/* Prints the log lines of `path` not printed yet as "[pod] line"; with progress_only, only
 * those that report an epoch (what the live view turns into its progress bar). */
static void follow_file(ty_view *v, const char *pod_name, const char *path, bool progress_only)
{
    uintptr_t stored = (uintptr_t)ty_map_gets(&v->log_offsets, path);
    off_t offset = stored ? (off_t)(stored - 1) : 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ty_buf data = TY_BUF_INIT;
    char chunk[16384];
    ssize_t n;
    while ((n = pread(fd, chunk, sizeof chunk, offset + (off_t)data.len)) > 0)
        ty_buf_add(&data, chunk, (size_t)n);
    close(fd);
    /* Only whole lines: a line still being written waits for the next tick. */
    char *p = data.data;
    char *nl;
    while ((nl = memchr(p, '\n', data.len - (size_t)(p - data.data)))) {
        *nl = '\0';
        int ep, eps;
        if (!progress_only || parse_epoch(cri_content(p), &ep, &eps))
            fprintf(v->out, "[%s] %s\n", pod_name, cri_content(p));
        p = nl + 1;
    }
    offset += p - data.data;
    ty_map_puts(&v->log_offsets, path, (void *)(uintptr_t)(offset + 1));
    ty_buf_free(&data);
}

static void follow_pod(ty_view *v, const json_t *pod, bool progress_only)
{
    json_t *statuses = json_object_get(json_object_get(pod, "status"), "containerStatuses");
    size_t i;
    json_t *cs;
    json_array_foreach(statuses, i, cs)
    {
        const char *name = json_string_value(json_object_get(cs, "name"));
        int restarts = (int)json_integer_value(json_object_get(cs, "restartCount"));
        for (int r = 0; name && r <= restarts; r++) {
            TY_AUTOFREE char *path = ty_runtime_log_path(v->rt, ty_obj_uid(pod), name, r);
            if (path)
                follow_file(v, ty_obj_name(pod), path, progress_only);
        }
    }
}

static int terminal_width(ty_view *v)
{
    struct winsize ws;
    if (ioctl(fileno(v->out), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20)
        return ws.ws_col;
    return 100;
}

static void add_clipped(ty_buf *frame, const char *line, int width)
{
    size_t len = strlen(line);
    ty_buf_add(frame, line, len > (size_t)width ? (size_t)width : len);
    ty_buf_adds(frame, "\x1b[K\n");
}

static long trial_index(const json_t *t)
{
    const char *ix = json_string_value(json_object_get(
        json_object_get(json_object_get(t, "metadata"), "annotations"),
        "katib.trainyard.dev/trial-index"));
    return ix ? atol(ix) : 0;
}

static int by_trial_index(const void *a, const void *b)
{
    long x = trial_index(*(json_t *const *)a), y = trial_index(*(json_t *const *)b);
    return (x > y) - (x < y);
}

/* An Experiment's trials, one line each: its parameters, its state (the last condition) and
 * the objective metric as last reported; then the best so far. */
static void experiment_lines(ty_view *v, ty_store *store, const json_t *exp, ty_buf *frame,
                             int width, int *lines)
{
    json_t *trials = ty_store_list_owned(store, "trials", ty_obj_uid(exp));
    const json_t *spec = json_object_get(exp, "spec");
    const char *om = json_string_value(
        json_object_get(json_object_get(spec, "objective"), "objectiveMetricName"));
    ty_buf line = TY_BUF_INIT;
    size_t i;
    json_t *t;
    /* in the order they were made (their names are random); a screen shows the last ones */
    size_t nt = json_array_size(trials);
    json_t **order = ty_calloc(nt + 1, sizeof *order);
    for (i = 0; i < nt; i++)
        order[i] = json_array_get(trials, i);
    qsort(order, nt, sizeof *order, by_trial_index);
    json_t *sorted = json_array();
    for (i = 0; i < nt; i++)
        json_array_append(sorted, order[i]);
    free(order);
    json_decref(trials);
    trials = sorted;
    enum { SHOWN = 15 };
    size_t skip = v->tty && json_array_size(trials) > SHOWN ? json_array_size(trials) - SHOWN : 0;
    if (skip) {
        ty_buf_addf(&line, "  (%zu earlier trials: kubectl get trials)", skip);
        add_clipped(frame, line.data, width);
        (*lines)++;
    }
    json_array_foreach(trials, i, t)
    {
        if (i < skip)
            continue;
        ty_buf_reset(&line);
        const json_t *status = json_object_get(t, "status");
        const json_t *conds = json_object_get(status, "conditions");
        const char *state = json_string_value(
            json_object_get(json_array_get(conds, json_array_size(conds) - 1), "type"));
        if (v->tty)
            ty_buf_addf(&line, "  trial %-22s %-18s", ty_obj_name(t), state ? state : "Pending");
        else
            ty_buf_addf(&line, "%s", state ? state : "Pending");
        size_t k;
        json_t *a;
        json_array_foreach(json_object_get(json_object_get(t, "spec"), "parameterAssignments"), k,
                           a)
            ty_buf_addf(&line, " %s=%s", json_string_value(json_object_get(a, "name")),
                        json_string_value(json_object_get(a, "value")));
        json_array_foreach(json_object_get(json_object_get(status, "observation"), "metrics"), k,
                           a)
        {
            const char *n = json_string_value(json_object_get(a, "name"));
            if (om && n && strcmp(n, om) == 0)
                ty_buf_addf(&line, "  %s=%s", n, json_string_value(json_object_get(a, "latest")));
        }
        if (v->tty) {
            add_clipped(frame, line.data, width);
            (*lines)++;
        } else {
            TY_AUTOFREE char *key = ty_asprintf("trial/%s", ty_obj_name(t));
            print_changed(v, key, line.data);
        }
    }
    const json_t *best = json_object_get(json_object_get(exp, "status"), "currentOptimalTrial");
    const char *bn = json_string_value(json_object_get(best, "bestTrialName"));
    if (bn && *bn) {
        ty_buf_reset(&line);
        ty_buf_addf(&line, "  best %s", bn);
        json_array_foreach(json_object_get(best, "parameterAssignments"), i, t)
            ty_buf_addf(&line, " %s=%s", json_string_value(json_object_get(t, "name")),
                        json_string_value(json_object_get(t, "value")));
        /* each metric by its strategy (min, max or latest), as the experiment reads it */
        const json_t *strategies =
            json_object_get(json_object_get(spec, "objective"), "metricStrategies");
        json_array_foreach(json_object_get(json_object_get(best, "observation"), "metrics"), i, t)
        {
            const char *n = json_string_value(json_object_get(t, "name"));
            const char *by = "latest";
            size_t k;
            json_t *ms;
            json_array_foreach(strategies, k, ms) if (
                n && json_string_value(json_object_get(ms, "name")) &&
                strcmp(json_string_value(json_object_get(ms, "name")), n) == 0 &&
                json_string_value(json_object_get(ms, "value"))) by =
                json_string_value(json_object_get(ms, "value"));
            ty_buf_addf(&line, "  %s=%s", n ? n : "", json_string_value(json_object_get(t, by)));
        }
        if (v->tty) {
            add_clipped(frame, line.data, width);
            (*lines)++;
        } else {
            TY_AUTOFREE char *key = ty_asprintf("best/%s", ty_obj_name(exp));
            print_changed(v, key, line.data + 2);
        }
    }
    ty_buf_free(&line);
    json_decref(trials);
}

void ty_view_update(ty_view *v, ty_store *store, const json_t *jobs, bool final)
{
    ty_buf frame = TY_BUF_INIT, last = TY_BUF_INIT, line = TY_BUF_INIT;
    /* The final frame stays on the screen: its lines wrap instead of being cut, so the last
     * log lines (a final accuracy) are there in full. */
    int width = final ? INT_MAX / 2 : terminal_width(v);
    int lines = 0;
    size_t i;
    json_t *job;
    char state[512], age[32];
    int64_t now = ty_time_now_ns();
    v->store = store;
    json_array_foreach(jobs, i, job)
    {
        const char *kind = json_string_value(json_object_get(job, "kind"));
        const char *cmsg;
        TY_AUTOFREE char *owned_msg = NULL;
        const char *jstate = job_state(v, job, &cmsg, &owned_msg);
        if (v->tty) {
            ty_buf_reset(&line);
            ty_buf_addf(&line, "\x1b[1m%s %s\x1b[0m  %s%s%s", kind, ty_obj_name(job),
                        jstate, cmsg ? "  " : "", cmsg ? cmsg : "");
            add_clipped(&frame, line.data, width + 8);
            lines++;
        } else {
            TY_AUTOFREE char *key = ty_asprintf("%s/%s", kind, ty_obj_name(job));
            for (char *p = key; *p && *p != '/'; p++)
                *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
            snprintf(state, sizeof state, "%s%s%s", jstate, cmsg ? ": " : "", cmsg ? cmsg : "");
            print_changed(v, key, state);
        }
        if (kind && strcmp(kind, "Experiment") == 0) {
            experiment_lines(v, store, job, &frame, width, &lines);
            continue;
        }
        json_t *pods = pods_of(store, job);
        size_t k;
        json_t *pod;
        if (v->tty && json_array_size(pods)) {
            ty_buf_reset(&line);
            ty_buf_addf(&line, "  %-32s %-10s %8s %8s  %s", "REPLICA", "PHASE", "RESTARTS",
                        "ELAPSED", "LAST LOG LINE");
            add_clipped(&frame, line.data, width);
            lines++;
        }
        ty_map present = {0};
        json_array_foreach(pods, k, pod)
        {
            /* Plain lines: every log line with --follow, else the epoch lines, so that a
             * pipe or a CI log shows the training's progress too. */
            if (!v->tty)
                follow_pod(v, pod, !v->follow);
            if (ty_obj_uid(pod) && ty_obj_uid(job)) {
                ty_map_puts(&present, ty_obj_uid(pod), (void *)1);
                shown_pod *sp = ty_map_gets(&v->shown, ty_obj_uid(pod));
                if (!sp) {
                    sp = TY_NEW(shown_pod);
                    sp->name = ty_strdup(ty_obj_name(pod));
                    sp->job_uid = ty_strdup(ty_obj_uid(job));
                    ty_map_puts(&v->shown, ty_obj_uid(pod), sp);
                }
                sp->ended = ty_pod_terminated(pod);
            }
            const char *phase = ty_pod_phase(pod);
            if (!ended_by_us(v, job, pod, state, sizeof state, &phase))
                pod_state(pod, state, sizeof state);
            if (!v->tty) {
                TY_AUTOFREE char *key = ty_asprintf("pod/%s", ty_obj_name(pod));
                /* A pod that ended says how, with its last words: read once, when it ends
                 * (what was printed then starts with the state). */
                const char *prev = ty_map_gets(&v->last_printed, key);
                if (ty_pod_terminated(pod) && prev && strncmp(prev, state, strlen(state)) == 0)
                    continue;
                if (ty_pod_terminated(pod) && !v->follow) {
                    TY_AUTOFREE char *path = main_log_path(v, pod);
                    int epoch, epochs;
                    log_tail(path, &last, &epoch, &epochs);
                    if (last.len) {
                        size_t used = strlen(state);
                        snprintf(state + used, sizeof state - used, ": %s", last.data);
                    }
                }
                print_changed(v, key, state);
                continue;
            }
            TY_AUTOFREE char *path = main_log_path(v, pod);
            int epoch, epochs;
            log_tail(path, &last, &epoch, &epochs);
            const char *started =
                json_string_value(json_object_get(json_object_get(pod, "status"), "startTime"));
            int64_t t0 = 0;
            if (started && ty_time_parse_rfc3339(started, &t0) == 0)
                ty_time_format_age(now - t0, age, sizeof age);
            else
                snprintf(age, sizeof age, "-");
            /* A pending pod says what it waits for where the log line would be: its state
             * past the phase ("Pending: waiting for ...", "Deleted (cleanPodPolicy ...)"). */
            const char *why = NULL;
            size_t plen = strlen(phase);
            if (strncmp(state, phase, plen) == 0 && state[plen])
                why = state + plen + strspn(state + plen, ": ");
            else if (strchr(state, ':'))
                why = strchr(state, ':') + 2;
            bool pending = strcmp(ty_pod_phase(pod), "Pending") == 0;
            /* So does a pod in trouble whose log says nothing. */
            pending |= last.len == 0;
            ty_buf_reset(&line);
            ty_buf_addf(&line, "  %-32s %-10s %8lld %8s  %s", ty_obj_name(pod), phase,
                        (long long)pod_restarts(job, pod), age,
                        pending && why ? why : last.data);
            add_clipped(&frame, line.data, width);
            lines++;
            if (epochs > 0 && epoch >= 0 && epoch <= epochs) {
                int bar = 30, filled = epoch * bar / epochs;
                ty_buf_reset(&line);
                ty_buf_adds(&line, "  ");
                ty_buf_addf(&line, "%*s[", 33, "");
                for (int b = 0; b < bar; b++)
                    ty_buf_addc(&line, b < filled ? '#' : '-');
                ty_buf_addf(&line, "] epoch %d/%d", epoch, epochs);
                add_clipped(&frame, line.data, width);
                lines++;
            }
        }
        if (ty_obj_uid(job))
            report_vanished(v, job, &present, &frame, &lines, width);
        ty_map_free(&present);
        json_decref(pods);
    }
    if (v->tty) {
        if (v->drawn_lines)
            fprintf(v->out, "\x1b[%dF", v->drawn_lines);
        fputs(frame.data, v->out);
        fputs("\x1b[J", v->out);
        v->drawn_lines = final ? 0 : lines; /* wrapped lines are not counted: never redrawn */
    }
    fflush(v->out);
    ty_buf_free(&frame);
    ty_buf_free(&last);
    ty_buf_free(&line);
}

void ty_view_note(ty_view *v, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (v->tty && v->drawn_lines) {
        fprintf(v->out, "\x1b[%dF\x1b[J", v->drawn_lines);
        v->drawn_lines = 0;
    }
    vfprintf(v->out, fmt, ap);
    fputc('\n', v->out);
    fflush(v->out);
    va_end(ap);
}

void ty_view_summary(ty_view *v, const json_t *jobs, const char *state_dir)
{
    size_t i;
    json_t *job;
    json_array_foreach(jobs, i, job)
    {
        const char *msg;
        TY_AUTOFREE char *owned_msg = NULL;
        const char *state = job_state(v, job, &msg, &owned_msg);
        fprintf(v->out, "%s %s %s%s%s\n", json_string_value(json_object_get(job, "kind")),
                ty_obj_name(job), state, msg ? ": " : "", msg ? msg : "");
    }
    fprintf(v->out, "logs: %s/pods\n", state_dir);
    fflush(v->out);
}
