/* trainyard run FILE...: runs Kubeflow jobs on this machine in the foreground.
 *
 * The same pieces as the server, over an in-memory store: the job controller, the binder and
 * the node agent, with the runtime running pods as supervised process groups that die with
 * trainyard. A live view redraws on a terminal; elsewhere each change is one plain line.
 * Exit status: 0 when every job succeeded, 1 when one failed, 2 for bad usage or manifests
 * (nothing is started then), 128+signal when interrupted (everything is stopped first). */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "api/api.h"
#include "api/kueue.h"
#include "api/manifest.h"
#include "base/buf.h"
#include "base/fs.h"
#include "base/hash.h"
#include "base/log.h"
#include "base/map.h"
#include "base/mem.h"
#include "base/time.h"
#include "cli/cli.h"
#include "cli/node.h"
#include "cli/nodespec.h"
#include "cli/view.h"
#include "controllers/batch.h"
#include "controllers/kubeflow.h"
#include "controllers/podutil.h"
#include "controllers/workloads.h"
#include "runtime/runtime.h"
#include "store/store.h"

#define TICK_MS 100

typedef struct run_state {
    uv_loop_t loop;
    ty_store *store;
    ty_node *node;
    ty_view *view;
    json_t *job_refs; /* [{resource, namespace, name}] of the jobs this run created */
    json_t *last_jobs; /* the last seen object of each job, same order */
    uv_timer_t tick;
    uv_signal_t sigint, sigterm, sighup;
    int signal;         /* the signal that interrupted the run, or 0 */
    bool shutting_down;
    bool done;
    bool serves;        /* an InferenceService is in the run: it ends only on a signal */
    uint64_t quiet_hash;  /* what the jobs, workloads and pods were at quiet_since */
    int64_t quiet_since;  /* when nothing but queued jobs waiting was left, or 0 */
} run_state;

/* How long a run in which only queued jobs wait, nothing runs and nothing changes, waits
 * before calling them never admitted: the controllers react within milliseconds; this
 * leaves room for a loaded machine. */
#define QUIET_MS 3000

static void usage(FILE *f)
{
    fprintf(f,
            "usage: trainyard run [options] FILE...\n"
            "\n"
            "Runs the Kubeflow PyTorchJob/TFJob and batch/v1 Job manifests in FILE (YAML or\n"
            "JSON, several documents allowed; - reads standard input; a directory: its .yaml,\n"
            ".yml and .json files) on this machine and waits for them. Kueue's queues, flavors\n"
            "and priority classes and Namespaces may come in the same files.\n"
            "\n"
            "options:\n"
            "  -f, --follow          stream every container's log, each line prefixed with its pod\n"
            "  -o, --output json     print the final job objects as a JSON List on stdout\n"
            "  -R, --recursive       read the directories among FILE and their subdirectories\n"
            "      --gpus N          declare N GPUs instead of asking NVML\n"
            "      --nodes SPEC      run on virtual nodes instead of this machine, e.g.\n"
            "                        '4x{cpu:8,memory:32Gi,nvidia.com/gpu:2}' (repeatable; named\n"
            "                        node-1, node-2, ... in order); pods still run here\n"
            "      --nodes-file FILE virtual nodes from Node objects (labels, taints, capacity)\n"
            "      --pod-cidr CIDR   pods' addresses, as root (default 10.244.0.0/16; each run\n"
            "                        takes a /24 of it)\n"
            "      --no-pod-network  pods share this machine's network namespace, each with a\n"
            "                        loopback address (what happens without root anyway)\n"
            "      --state-dir DIR   where pods keep their logs (default: a new directory under\n"
            "                        $XDG_RUNTIME_DIR or /tmp, printed at the end)\n"
            "      --cluster-dns ADDR:PORT\n"
            "                        serve cluster DNS (Services and Pods, other names\n"
            "                        forwarded) on this IPv4 address (port 0 picks one)\n"
            "      --cluster-domain NAME  the cluster's DNS domain (default cluster.local)\n"
            "      --service-cidr CIDR    Services' cluster IPs come from it (default\n"
            "                        10.96.0.0/12)\n"
            "      --serving-listen ADDR:PORT\n"
            "                        the InferenceServices' gateway (default 127.0.0.1:8080;\n"
            "                        a run with an InferenceService serves until Ctrl-C)\n"
            "      --require-images  a container whose image is not in the image store fails\n"
            "                        (ErrImagePull) instead of running on the host; the store\n"
            "                        is <state-dir>/images with --state-dir, else the server's\n"
            "                        ($HOME/.local/share/trainyard/images)\n"
            "  -h, --help            this text\n");
}

/* Kinds of the core API group the server stores that a run takes besides ty_api_admit()'s:
 * namespaces (made first, so that a manifest may create the namespace its jobs use) and
 * inert objects it only keeps. Pods and Nodes are not among them: a run runs jobs, on the
 * nodes of --nodes/--nodes-file. */
static const char *const core_kinds[] = {"Namespace", "Service", "Event"};

/* The registry's entry for `obj` when it is one of core_kinds, else NULL. */
static const ty_kind_info *core_kind_of(const json_t *obj)
{
    const char *av = json_string_value(json_object_get(obj, "apiVersion"));
    const char *kind = json_string_value(json_object_get(obj, "kind"));
    for (size_t i = 0; av && kind && strcmp(av, "v1") == 0 && i < TY_ARRAY_LEN(core_kinds); i++)
        if (strcmp(core_kinds[i], kind) == 0)
            return ty_kind_of(av, kind);
    return NULL;
}

/* Why a core kind the server serves is not one a run takes, or NULL. */
static const char *refused_kind(const json_t *obj)
{
    const char *av = json_string_value(json_object_get(obj, "apiVersion"));
    const char *kind = json_string_value(json_object_get(obj, "kind"));
    if (!av || !kind || strcmp(av, "v1") != 0)
        return NULL;
    if (strcmp(kind, "Pod") == 0)
        return "trainyard run runs PyTorchJobs and TFJobs, not bare Pods (trainyard server "
               "takes them)";
    if (strcmp(kind, "Node") == 0)
        return "trainyard run takes its nodes from --nodes or --nodes-file, not from manifests";
    return NULL;
}

/* The checks the API server makes on a core object: a name, a valid namespace name. */
static int admit_core(const ty_manifest *m, json_t *obj, ty_pos pos, const ty_kind_info *ck,
                      ty_field_errors *errs)
{
    size_t before = errs->count;
    json_t *meta = json_object_get(obj, "metadata");
    const char *name = json_string_value(json_object_get(meta, "name"));
    ty_pos npos = meta ? ty_manifest_pos_member(m, meta, "name", true) : pos;
    if (!name || !*name)
        ty_field_errors_add(errs, "metadata.name", meta ? npos : pos,
                            "Required value: name is required");
    else if (!ck->namespaced && ty_check_dns1123_label(name))
        ty_field_errors_add(errs, "metadata.name", npos, "Invalid value: \"%s\": %s", name,
                            ty_check_dns1123_label(name));
    if (ck->namespaced) {
        if (!meta) {
            meta = json_object();
            json_object_set_new(obj, "metadata", meta);
        }
        const char *ns = json_string_value(json_object_get(meta, "namespace"));
        if (!ns)
            json_object_set_new(meta, "namespace", json_string("default"));
        else if (ty_check_dns1123_label(ns))
            ty_field_errors_add(errs, "metadata.namespace",
                                ty_manifest_pos_member(m, meta, "namespace", true),
                                "Invalid value: \"%s\": %s", ns, ty_check_dns1123_label(ns));
    }
    return errs->count > before ? -1 : 0;
}

static const char *namespace_of(const json_t *obj)
{
    const char *ns = ty_obj_namespace(obj);
    return ns ? ns : "";
}

static bool manifest_name(const char *name)
{
    size_t n = strlen(name);
    return name[0] != '.' &&
           ((n > 5 && strcmp(name + n - 5, ".yaml") == 0) ||
            (n > 4 && strcmp(name + n - 4, ".yml") == 0) ||
            (n > 5 && strcmp(name + n - 5, ".json") == 0));
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The manifests `path` stands for, appended to `files`: the file itself, or as `kubectl apply
 * -f DIR` reads a directory, its .yaml/.yml/.json files in name order, and with `recursive`
 * those of its subdirectories too (symbolic links to directories are not followed). */
static int expand_path(const char *path, bool recursive, bool top, json_t *files)
{
    struct stat sb;
    if (strcmp(path, "-") == 0 || stat(path, &sb) < 0 || !S_ISDIR(sb.st_mode)) {
        json_array_append_new(files, json_string(path)); /* the loader reports what is wrong */
        return 0;
    }
    DIR *d = opendir(path);
    if (!d) {
        fprintf(stderr, "trainyard run: %s: %s\n", path, strerror(errno));
        return -1;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            names = ty_realloc(names, cap * sizeof *names);
        }
        names[n++] = ty_strdup(e->d_name);
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof *names, compare_strings);
    size_t found = json_array_size(files);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        TY_AUTOFREE char *full = ty_asprintf("%s%s%s", path,
                                             path[strlen(path) - 1] == '/' ? "" : "/", names[i]);
        struct stat cs;
        if (lstat(full, &cs) == 0 && S_ISDIR(cs.st_mode)) {
            if (recursive && expand_path(full, true, false, files) < 0)
                rc = -1;
        } else if (manifest_name(names[i]) && stat(full, &cs) == 0 && S_ISREG(cs.st_mode))
            json_array_append_new(files, json_string(full));
        free(names[i]);
    }
    free(names);
    if (rc == 0 && top && json_array_size(files) == found) {
        fprintf(stderr, "trainyard run: %s: no .yaml, .yml or .json files in the directory%s\n",
                path, recursive ? " or below" : " (-R reads its subdirectories)");
        rc = -1;
    }
    return rc;
}

/* Loads and admits every document of every file. Prints every problem found and returns -1
 * when there is any: a run with a bad manifest starts nothing. */
static int load_objects(char **paths, int npaths, bool recursive, json_t *objects)
{
    int bad = 0;
    json_t *files = json_array();
    for (int i = 0; i < npaths; i++)
        if (expand_path(paths[i], recursive, true, files) < 0)
            bad = 1;
    size_t fi;
    json_t *fv;
    json_array_foreach(files, fi, fv)
    {
        const char *file = json_string_value(fv);
        ty_manifest *m = NULL;
        ty_error err = TY_ERROR_INIT;
        if (ty_manifest_load(file, &m, &err) < 0) {
            fprintf(stderr, "trainyard run: %s\n", err.msg);
            ty_error_clear(&err);
            bad = 1;
            continue;
        }
        if (m->ndocs == 0) {
            fprintf(stderr, "trainyard run: %s: no objects in the file\n", file);
            bad = 1;
        }
        for (size_t d = 0; d < m->ndocs; d++) {
            ty_field_errors errs = TY_FIELD_ERRORS_INIT;
            json_t *obj = m->docs[d].obj;
            const ty_kind_info *ck = core_kind_of(obj);
            const char *refused = refused_kind(obj);
            if (refused)
                ty_field_errors_add(&errs, "kind",
                                    ty_manifest_pos_member(m, obj, "kind", false), "%s", refused);
            int rc = refused ? -1
                     : ck    ? admit_core(m, obj, m->docs[d].pos, ck, &errs)
                             : ty_api_admit(m, obj, &errs);
            for (size_t w = 0; w < errs.nwarnings; w++)
                fprintf(stderr, "trainyard run: %s: warning: %s\n", m->file, errs.warnings[w]);
            if (rc < 0) {
                ty_buf out = TY_BUF_INIT;
                ty_field_errors_format(&errs, m->file, &out);
                fputs(out.data, stderr);
                ty_buf_free(&out);
                bad = 1;
            } else if (ty_kubeflow_managed_elsewhere(obj)) {
                /* The operator would never run it, and the run would wait for it forever. */
                json_t *run = json_object_get(json_object_get(obj, "spec"), "runPolicy");
                ty_pos p = ty_manifest_pos_member(m, run, "managedBy", false);
                fprintf(stderr, "%s:%d:%d: spec.runPolicy.managedBy: \"%s\" runs this job, not "
                        "the training operator: trainyard run has no such controller\n", m->file,
                        p.line, p.col, ty_kubeflow_managed_elsewhere(obj));
                bad = 1;
            } else {
                json_array_append(objects, obj);
            }
            ty_field_errors_free(&errs);
        }
        ty_manifest_free(m);
    }
    json_decref(files);
    if (!bad) {
        /* Two documents naming the same object would be one job run twice. */
        for (size_t i = 0; i < json_array_size(objects); i++)
            for (size_t j = 0; j < i; j++) {
                json_t *a = json_array_get(objects, i), *b = json_array_get(objects, j);
                if (json_equal(json_object_get(a, "kind"), json_object_get(b, "kind")) &&
                    strcmp(ty_obj_name(a), ty_obj_name(b)) == 0 &&
                    strcmp(namespace_of(a), namespace_of(b)) == 0) {
                    fprintf(stderr, "trainyard run: %s %s%s%s is given twice\n",
                            json_string_value(json_object_get(a, "kind")), namespace_of(a),
                            *namespace_of(a) ? "/" : "", ty_obj_name(a));
                    bad = 1;
                }
            }
    }
    return bad ? -1 : 0;
}

static void on_handle_closed(uv_handle_t *h) { (void)h; }

/* The kinds whose outcome ends a run: the job kinds Kueue queues (training jobs, batch Jobs)
 * and Katib's Experiments (which end Succeeded or Failed; their trials' jobs are theirs). */
static bool is_job_resource(const char *resource)
{
    const ty_kind_info *k = ty_kind_of_resource(resource);
    return k && (k->kueue_job || strcmp(k->resource, "experiments") == 0);
}

/* What create_objects makes, in this order: namespaces, then what jobs refer to (queues,
 * flavors, priority classes), then the jobs, which alone end a run. */
enum create_phase { CREATE_NAMESPACES, CREATE_OTHERS, CREATE_JOBS };

/* A namespace the run has already ("default", or one made for an earlier object) takes the
 * manifest's labels and annotations, as `kubectl apply` would update it. */
static int create_namespace(run_state *st, json_t *obj, ty_error *err)
{
    json_t *cur = ty_store_get(st->store, "namespaces", "", ty_obj_name(obj));
    if (!cur) {
        json_t *copy = json_deep_copy(obj);
        json_object_set_new(copy, "status", json_pack("{s:s}", "phase", "Active"));
        int rc = ty_store_create(st->store, "namespaces", copy, NULL, err);
        json_decref(copy);
        return rc;
    }
    json_t *next = json_deep_copy(cur);
    json_t *meta = json_object_get(next, "metadata"), *m = json_object_get(obj, "metadata");
    const char *keys[] = {"labels", "annotations"};
    for (int i = 0; i < 2; i++)
        if (json_object_get(m, keys[i]))
            json_object_set(meta, keys[i], json_object_get(m, keys[i]));
    int rc = ty_store_update(st->store, "namespaces", next, NULL, err);
    json_decref(next);
    json_decref(cur);
    return rc;
}

/* Creates the manifests' objects of one phase; jobs are followed. Returns whether every one
 * of them could be created. */
static bool create_objects(run_state *st, json_t *objects, enum create_phase phase)
{
    bool ok = true;
    size_t i;
    json_t *obj;
    json_array_foreach(objects, i, obj)
    {
        const ty_kind_info *ck = core_kind_of(obj);
        const ty_kind_info *k =
            ck ? ck
               : ty_api_kind(json_string_value(json_object_get(obj, "apiVersion")),
                             json_string_value(json_object_get(obj, "kind")));
        const char *resource = k->resource;
        bool namespaced = k->namespaced;
        bool is_ns = ck && strcmp(ck->resource, "namespaces") == 0;
        bool is_job = !ck && is_job_resource(resource);
        enum create_phase mine = is_ns ? CREATE_NAMESPACES : is_job ? CREATE_JOBS : CREATE_OTHERS;
        if (mine != phase)
            continue;
        if (is_job && strcmp(resource, "experiments") != 0)
            ty_workloads_default_job(st->store, resource, obj);
        json_t *stored = NULL;
        ty_error err = TY_ERROR_INIT;
        /* A namespace the manifests do not create is made for them: a foreground run has
         * no one else to create it. */
        if (is_ns ? create_namespace(st, obj, &err) < 0
                  : (namespaced &&
                     ty_store_ensure_namespace(st->store, ty_obj_namespace(obj), &err) < 0) ||
                        ty_store_create(st->store, resource, obj, &stored, &err) < 0) {
            fprintf(stderr, "trainyard run: %s\n", err.msg);
            ty_error_clear(&err);
            ok = false;
            continue;
        }
        if (!is_job) {
            json_decref(stored);
            continue;
        }
        json_array_append_new(st->job_refs,
                              json_pack("{s:s, s:s, s:s}", "resource", resource, "namespace",
                                        ty_obj_namespace(stored), "name", ty_obj_name(stored)));
        json_array_append_new(st->last_jobs, stored);
    }
    return ok;
}

static void on_runtime_stopped(void *arg)
{
    run_state *st = arg;
    st->done = true;
    ty_view_update(st->view, st->store, st->last_jobs, true);
    uv_timer_stop(&st->tick);
    uv_close((uv_handle_t *)&st->tick, on_handle_closed);
    uv_close((uv_handle_t *)&st->sigint, on_handle_closed);
    uv_close((uv_handle_t *)&st->sigterm, on_handle_closed);
    uv_close((uv_handle_t *)&st->sighup, on_handle_closed);
}

static void begin_shutdown(run_state *st)
{
    if (st->shutting_down)
        return;
    st->shutting_down = true;
    ty_node_stop(st->node, true, on_runtime_stopped, st);
}

static const char *rv_of(const json_t *obj)
{
    return json_string_value(json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));
}

/* Adds one string and a separator (so "ab"+"c" and "a"+"bc" differ) to the fingerprint. */
static uint64_t mix(uint64_t h, const char *s)
{
    return ty_fnv1a_add(ty_fnv1a_str(h, s), "\xff", 1);
}

/* Whether the run can change no more on its own: every unfinished job waits in a queue, no
 * pod runs, no Workload is admitted or waits for a requeue. Its fingerprint (the
 * resourceVersions of jobs, workloads and pods) goes to *hash. */
static bool settled_waiting(run_state *st, uint64_t *hash)
{
    uint64_t h = TY_FNV1A_BASIS;
    bool waiting = false;
    size_t i;
    json_t *job;
    json_array_foreach(st->last_jobs, i, job)
    {
        h = mix(h, rv_of(job));
        if (ty_job_finished(job, NULL) ||
            (ty_obj_condition_true(job, "Suspended") &&
             !ty_obj_label(job, TY_KUEUE_LABEL_QUEUE_NAME)))
            continue; /* done, or suspended by its spec: nothing will change it */
        TY_AUTOFREE char *why = ty_view_queue_wait(st->store, job);
        if (!why)
            return false; /* it runs, or waits for nodes that others' pods will free */
        waiting = true;
    }
    json_t *wls = ty_store_list(st->store, "workloads", NULL);
    json_t *pods = ty_store_list(st->store, "pods", NULL);
    bool settled = waiting;
    int64_t now = ty_time_now_ns();
    json_t *o;
    json_array_foreach(wls, i, o)
    {
        h = mix(h, rv_of(o));
        const json_t *qr = ty_pod_condition(o, "QuotaReserved");
        const char *qs = json_string_value(json_object_get(qr, "status"));
        const char *at = json_string_value(json_object_get(
            json_object_get(json_object_get(o, "status"), "requeueState"), "requeueAt"));
        int64_t t;
        if ((qs && strcmp(qs, "True") == 0) ||
            (at && ty_time_parse_rfc3339(at, &t) == 0 && t > now))
            settled = false;
    }
    json_array_foreach(pods, i, o)
    {
        h = mix(h, rv_of(o));
        if (!ty_pod_terminated(o) || ty_obj_deleting(o))
            settled = false;
    }
    json_decref(wls);
    json_decref(pods);
    *hash = h;
    return settled;
}

/* In a foreground run nothing but its own jobs can free quota or create a missing queue:
 * once only queued jobs wait and nothing has changed for QUIET_MS, they never will be
 * admitted. They fail, saying why they waited, as an unqueued job that can never be
 * placed does. */
static void fail_never_admitted(run_state *st)
{
    uint64_t h;
    if (!settled_waiting(st, &h)) {
        st->quiet_since = 0;
        return;
    }
    int64_t now = ty_time_mono_ns();
    if (!st->quiet_since || h != st->quiet_hash) {
        st->quiet_since = now;
        st->quiet_hash = h;
        return;
    }
    if (now - st->quiet_since < (int64_t)QUIET_MS * 1000000)
        return;
    size_t i;
    json_t *job;
    json_array_foreach(st->last_jobs, i, job)
    {
        TY_AUTOFREE char *why = ty_view_queue_wait(st->store, job);
        if (!why)
            continue;
        TY_AUTOFREE char *msg = ty_asprintf(
            "%s %s can never be admitted by its queue %s: %s (nothing else in this run can "
            "change that)",
            json_string_value(json_object_get(job, "kind")), ty_obj_name(job),
            ty_obj_label(job, TY_KUEUE_LABEL_QUEUE_NAME), why);
        json_t *next = json_deep_copy(job);
        const char *resource = json_string_value(
            json_object_get(json_array_get(st->job_refs, i), "resource"));
        if (strcmp(resource, "jobs") == 0) /* batch/v1: its own conditions */
            ty_batch_fail_job(next, "NeverAdmitted", msg, ty_time_now_ns());
        else
            ty_kubeflow_fail_job(next, msg, ty_time_now_ns());
        ty_error err = TY_ERROR_INIT;
        if (ty_store_update_status(st->store, resource, next, NULL, &err) < 0)
            ty_debug("run: fail %s: %s", ty_obj_name(job), err.msg); /* the next tick retries */
        ty_error_clear(&err);
        json_decref(next);
    }
    st->quiet_since = 0;
}

static void on_tick(uv_timer_t *t)
{
    run_state *st = t->data;
    bool all_finished = true;
    size_t i;
    json_t *ref;
    json_array_foreach(st->job_refs, i, ref)
    {
        json_t *job = ty_store_get(st->store, json_string_value(json_object_get(ref, "resource")),
                                   json_string_value(json_object_get(ref, "namespace")),
                                   json_string_value(json_object_get(ref, "name")));
        if (job) /* a job deleted by its TTL keeps its last state */
            json_array_set_new(st->last_jobs, i, job);
        /* A suspended job runs nothing until resumed, which nobody can do in a foreground
         * run: it counts as settled (and not as a success). A queued one is resumed by its
         * queue once admitted: it waits (fail_never_admitted ends that when it cannot be). */
        json_t *last = json_array_get(st->last_jobs, i);
        bool waits_for_queue = ty_obj_label(last, TY_KUEUE_LABEL_QUEUE_NAME) != NULL;
        if (!ty_job_finished(last, NULL) &&
            (!ty_obj_condition_true(last, "Suspended") || waits_for_queue))
            all_finished = false;
    }
    ty_view_update(st->view, st->store, st->last_jobs, false);
    if (all_finished && !st->serves) {
        ty_view_stopping(st->view, st->store, "the run ended with its jobs");
        begin_shutdown(st);
    } else if (!st->shutting_down)
        fail_never_admitted(st);
}

/* The first signal stops every pod gracefully; a second one kills what is left now. */
static void on_signal(uv_signal_t *h, int signum)
{
    run_state *st = h->data;
    if (!st->signal) {
        st->signal = signum;
        TY_AUTOFREE char *why = ty_asprintf("interrupted: SIG%s received", sigabbrev_np(signum));
        ty_view_stopping(st->view, st->store, why);
        ty_view_note(st->view, "stopping: %s received, stopping every pod (again to kill them)",
                     strsignal(signum));
        begin_shutdown(st);
        return;
    }
    ty_view_note(st->view, "stopping: %s received again, killing every pod", strsignal(signum));
    ty_node_kill_pods(st->node);
}

/* Runs kept under the default state directory, the new one included: older ones go when a
 * run starts. */
#define KEEP_RUNS 20

/* The parent of the default state directories must be ours and private: another user who
 * owns it (or may write to it) could read the logs or swap a run's files. Creates it 0700. */
static int check_state_parent(const char *parent)
{
    if (mkdir(parent, 0700) < 0 && errno != EEXIST) {
        fprintf(stderr, "trainyard run: create state directory %s: %s\n", parent, strerror(errno));
        return -1;
    }
    struct stat sb;
    if (lstat(parent, &sb) < 0) {
        fprintf(stderr, "trainyard run: state directory %s: %s\n", parent, strerror(errno));
        return -1;
    }
    const char *why = !S_ISDIR(sb.st_mode)          ? "is not a directory"
                      : sb.st_uid != geteuid()      ? "is owned by another user"
                      : (sb.st_mode & 022) != 0     ? "may be written by other users"
                                                    : NULL;
    if (why) {
        fprintf(stderr,
                "trainyard run: state directory %s %s (uid %u, mode %04o): refusing to keep "
                "run state there; remove it or pass --state-dir\n",
                parent, why, (unsigned)sb.st_uid, (unsigned)(sb.st_mode & 07777));
        return -1;
    }
    return 0;
}

typedef struct old_run {
    char *name;
    long long started;
} old_run;

static int newest_first(const void *a, const void *b)
{
    const old_run *x = a, *y = b;
    return x->started < y->started ? 1 : x->started > y->started ? -1 : strcmp(y->name, x->name);
}

/* Removes the state of all but the KEEP_RUNS - 1 newest runs in `parent` (run-<time>-<pid>
 * directories; the run about to start is the last one kept), never that of a run whose
 * process is alive. */
static void clean_old_runs(const char *parent)
{
    DIR *d = opendir(parent);
    if (!d)
        return;
    old_run *runs = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        long long started;
        int pid, used = 0;
        if (sscanf(e->d_name, "run-%lld-%d%n", &started, &pid, &used) != 2 ||
            e->d_name[used] != '\0')
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 32;
            runs = ty_realloc(runs, cap * sizeof *runs);
        }
        runs[n++] = (old_run){ty_strdup(e->d_name), started};
    }
    closedir(d);
    if (n)
        qsort(runs, n, sizeof *runs, newest_first);
    for (size_t i = 0; i < n; i++) {
        int pid = 0;
        sscanf(runs[i].name, "run-%*d-%d", &pid);
        bool alive = pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
        if (i >= KEEP_RUNS - 1 && !alive) {
            TY_AUTOFREE char *path = ty_asprintf("%s/%s", parent, runs[i].name);
            if (ty_rm_tree(path) < 0)
                ty_debug("run: remove old run state %s: %s", path, strerror(errno));
        }
        free(runs[i].name);
    }
    free(runs);
}

/* A new directory for this run's state under $XDG_RUNTIME_DIR/trainyard or
 * /tmp/trainyard-<uid>, after removing old runs' state there. NULL (after saying why) when
 * the parent cannot be used. */
static char *default_state_dir(void)
{
    const char *base = getenv("XDG_RUNTIME_DIR");
    TY_AUTOFREE char *parent = base && *base ? ty_asprintf("%s/trainyard", base)
                                             : ty_asprintf("/tmp/trainyard-%u", (unsigned)getuid());
    if (check_state_parent(parent) < 0)
        return NULL;
    clean_old_runs(parent);
    return ty_asprintf("%s/run-%lld-%d", parent, (long long)(ty_time_now_ns() / 1000000000),
                       (int)getpid());
}

int ty_cli_run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"follow", no_argument, NULL, 'f'},     {"output", required_argument, NULL, 'o'},
        {"gpus", required_argument, NULL, 'g'}, {"state-dir", required_argument, NULL, 's'},
        {"nodes", required_argument, NULL, 'N'}, {"nodes-file", required_argument, NULL, 'F'},
        {"recursive", no_argument, NULL, 'R'},  {"help", no_argument, NULL, 'h'},
        {"pod-cidr", required_argument, NULL, 'C'},
        {"no-pod-network", no_argument, NULL, 'P'},
        {"cluster-dns", required_argument, NULL, 'D'},
        {"cluster-domain", required_argument, NULL, 'Z'},
        {"service-cidr", required_argument, NULL, 'V'},
        {"require-images", no_argument, NULL, 'I'},
        {"serving-listen", required_argument, NULL, 1001},
        {NULL, 0, NULL, 0},
    };
    bool follow = false, json_out = false, recursive = false, no_pod_network = false;
    bool require_images = false;
    int gpus = -1;
    TY_AUTONODES json_t *nodes = NULL;
    int next_node = 1;
    const char *state_dir_arg = NULL, *pod_cidr = NULL;
    const char *cluster_dns = NULL, *cluster_domain = NULL, *service_cidr = NULL;
    const char *serving_listen = "127.0.0.1:8080";
    bool serving_given = false;
    int c;
    while ((c = getopt_long(argc, argv, "fo:Rh", opts, NULL)) != -1) {
        switch (c) {
        case 'f':
            follow = true;
            break;
        case 'R':
            recursive = true;
            break;
        case 'I':
            require_images = true;
            break;
        case 'o':
            if (strcmp(optarg, "json") != 0) {
                fprintf(stderr, "trainyard run: --output: unsupported format %s (json)\n", optarg);
                return 2;
            }
            json_out = true;
            break;
        case 'g':
            if (ty_cli_gpus_option("run", optarg, &gpus) < 0)
                return 2;
            break;
        case 's':
            state_dir_arg = optarg;
            break;
        case 'P':
            no_pod_network = true;
            break;
        case 'C':
            pod_cidr = optarg;
            if (ty_cli_pod_cidr_option("run", optarg) < 0)
                return 2;
            break;
        case 'D':
            cluster_dns = optarg;
            break;
        case 'Z':
            cluster_domain = optarg;
            break;
        case 1001:
            serving_listen = optarg;
            serving_given = true;
            break;
        case 'V':
            service_cidr = optarg;
            break;
        case 'N':
        case 'F':
            if (ty_cli_nodes_option("run", optarg, c == 'F', &nodes, &next_node) < 0)
                return 2;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (nodes) {
        ty_error nerr = TY_ERROR_INIT;
        if (ty_nodespec_check_unique(nodes, &nerr) < 0) {
            fprintf(stderr, "trainyard run: %s\n", nerr.msg);
            ty_error_clear(&nerr);
            return 2;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "trainyard run: no manifest given\n");
        usage(stderr);
        return 2;
    }

    json_t *objects = json_array();
    if (load_objects(argv + optind, argc - optind, recursive, objects) < 0) {
        json_decref(objects);
        return 2;
    }

    run_state st = {0};
    int rc = 1;
    TY_AUTOFREE char *state_dir = state_dir_arg ? ty_strdup(state_dir_arg) : default_state_dir();
    if (!state_dir) {
        json_decref(objects);
        return 1;
    }
    if (ty_mkdir_p(state_dir, 0700) < 0) {
        fprintf(stderr, "trainyard run: create state directory %s: %s\n", state_dir,
                strerror(errno));
        json_decref(objects);
        return 1;
    }

    /* images: the run's own store with --state-dir, else the one `trainyard image` and the
     * server use by default */
    TY_AUTOFREE char *data_dir = state_dir_arg ? NULL : ty_cli_default_data_dir();
    TY_AUTOFREE char *images_dir = ty_asprintf("%s/images", state_dir_arg ? state_dir : data_dir);
    uv_loop_init(&st.loop);
    st.store = ty_store_new();
    ty_error err = TY_ERROR_INIT;
    if (service_cidr && ty_store_set_service_cidr(st.store, service_cidr, &err) < 0) {
        fprintf(stderr, "trainyard run: %s\n", err.msg);
        goto out;
    }
    ty_node_config ncfg = {
        .loop = &st.loop,
        .store = st.store,
        .state_dir = state_dir,
        .gpus = gpus,
        .nodes = nodes,
        .pod_cidr = pod_cidr,
        .no_pod_network = no_pod_network,
        .pods_die_with_parent = true,
        .scatter_addresses = true, /* two runs at once rarely pick the same addresses */
        .job_dirs = true,          /* a job's directory goes with the run's state */
        .cluster_dns = cluster_dns,
        .cluster_domain = cluster_domain,
        .images_dir = images_dir,
        .require_images = require_images,
    };
    /* The gateway only when the run serves something (a training run takes no port). */
    size_t k;
    json_t *o;
    json_array_foreach(objects, k, o)
    st.serves |= json_is_string(json_object_get(o, "kind")) &&
                 strcmp(json_string_value(json_object_get(o, "kind")), "InferenceService") == 0;
    if (st.serves) {
        ncfg.serving_listen = serving_listen;
        ncfg.serving_optional = !serving_given;
    }
    if (ty_node_start(&ncfg, &st.node, &err) < 0) {
        fprintf(stderr, "trainyard run: %s\n", err.msg);
        goto out;
    }
    if (st.serves && ty_node_serving_port(st.node))
        fprintf(stderr, "trainyard run: InferenceServices on http://%.*s:%d (until Ctrl-C)\n",
                (int)(strrchr(serving_listen, ':') - serving_listen), serving_listen,
                ty_node_serving_port(st.node));
    if (cluster_dns && ty_node_cluster_dns(st.node)) /* the port it picked */
        fprintf(stderr, "trainyard run: cluster DNS on %s\n", ty_node_cluster_dns(st.node));
    st.view = ty_view_new(json_out ? stderr : stdout, follow, ty_node_runtime(st.node));

    st.job_refs = json_array();
    st.last_jobs = json_array();
    size_t i;
    json_t *obj;
    bool create_failed = false;
    for (int phase = CREATE_NAMESPACES; phase <= CREATE_JOBS; phase++)
        create_failed |= !create_objects(&st, objects, (enum create_phase)phase);

    uv_timer_init(&st.loop, &st.tick);
    st.tick.data = &st;
    uv_timer_start(&st.tick, on_tick, TICK_MS, TICK_MS);
    uv_signal_init(&st.loop, &st.sigint);
    uv_signal_init(&st.loop, &st.sigterm);
    uv_signal_init(&st.loop, &st.sighup);
    st.sigint.data = st.sigterm.data = st.sighup.data = &st;
    uv_signal_start(&st.sigint, on_signal, SIGINT);
    uv_signal_start(&st.sigterm, on_signal, SIGTERM);
    uv_signal_start(&st.sighup, on_signal, SIGHUP);

    uv_run(&st.loop, UV_RUN_DEFAULT);

    bool all_ok = !create_failed;
    bool ok;
    json_array_foreach(st.last_jobs, i, obj) all_ok = all_ok && ty_job_finished(obj, &ok) && ok;
    ty_view_summary(st.view, st.last_jobs, state_dir);
    if (json_out) {
        /* The jobs, then every pod as the node agent last reported it. */
        json_t *items = json_copy(st.last_jobs);
        json_t *pods = ty_store_list(st.store, "pods", NULL);
        json_array_extend(items, pods);
        json_decref(pods);
        json_t *list = json_pack("{s:s, s:s, s:o, s:{}}", "apiVersion", "v1", "kind", "List",
                                 "items", items, "metadata");
        char *text = json_dumps(list, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        printf("%s\n", text);
        free(text);
        json_decref(list);
    }
    rc = st.signal ? 128 + st.signal : all_ok ? 0 : 1;

out:
    ty_error_clear(&err);
    ty_view_free(st.view);
    ty_node_free(st.node);
    uv_run(&st.loop, UV_RUN_DEFAULT); /* let close callbacks release what was closed */
    uv_loop_close(&st.loop);
    ty_store_free(st.store);
    json_decref(st.job_refs);
    json_decref(st.last_jobs);
    json_decref(objects);
    return rc;
}
