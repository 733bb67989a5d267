/* trainyard run FILE...: runs Kubeflow jobs on this machine in the foreground.
 *
 * The same pieces as the server, over an in-memory store: the job controller, the binder and
 * the node agent, with the runtime running pods as supervised process groups that die with
 * trainyard. A live view redraws on a terminal; elsewhere each change is one plain line.
 * Exit status: 0 when every job succeeded, 1 when one failed, 2 for bad usage or manifests
 * (nothing is started then), 128+signal when interrupted (everything is stopped first). */
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
#include "api/manifest.h"
#include "base/buf.h"
#include "base/fs.h"
#include "base/log.h"
#include "base/map.h"
#include "base/mem.h"
#include "base/time.h"
#include "cli/cli.h"
#include "cli/node.h"
#include "cli/nodespec.h"
#include "cli/view.h"
#include "controllers/kubeflow.h"
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
} run_state;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: trainyard run [options] FILE...\n"
            "\n"
            "Runs the Kubeflow PyTorchJob/TFJob manifests in FILE (YAML or JSON, several\n"
            "documents allowed; - reads standard input) on this machine and waits for them.\n"
            "\n"
            "options:\n"
            "  -f, --follow          stream every container's log, each line prefixed with its pod\n"
            "  -o, --output json     print the final job objects as a JSON List on stdout\n"
            "      --gpus N          declare N GPUs instead of asking NVML\n"
            "      --nodes SPEC      run on virtual nodes instead of this machine, e.g.\n"
            "                        '4x{cpu:8,memory:32Gi,nvidia.com/gpu:2}' (repeatable; named\n"
            "                        node-1, node-2, ... in order); pods still run here\n"
            "      --nodes-file FILE virtual nodes from Node objects (labels, taints, capacity)\n"
            "      --state-dir DIR   where pods keep their logs (default: a new directory under\n"
            "                        $XDG_RUNTIME_DIR or /tmp, printed at the end)\n"
            "  -h, --help            this text\n");
}

/* Loads and admits every document of every file. Prints every problem found and returns -1
 * when there is any: a run with a bad manifest starts nothing. */
static int load_jobs(char **files, int nfiles, json_t *objects)
{
    int bad = 0;
    for (int i = 0; i < nfiles; i++) {
        ty_manifest *m = NULL;
        ty_error err = TY_ERROR_INIT;
        if (ty_manifest_load(files[i], &m, &err) < 0) {
            fprintf(stderr, "trainyard: %s\n", err.msg);
            ty_error_clear(&err);
            bad = 1;
            continue;
        }
        if (m->ndocs == 0) {
            fprintf(stderr, "trainyard: %s: no objects in the file\n", files[i]);
            bad = 1;
        }
        for (size_t d = 0; d < m->ndocs; d++) {
            ty_field_errors errs = TY_FIELD_ERRORS_INIT;
            int rc = ty_api_admit(m, m->docs[d].obj, &errs);
            for (size_t w = 0; w < errs.nwarnings; w++)
                fprintf(stderr, "trainyard: %s: warning: %s\n", m->file, errs.warnings[w]);
            if (rc < 0) {
                ty_buf out = TY_BUF_INIT;
                ty_field_errors_format(&errs, m->file, &out);
                fputs(out.data, stderr);
                ty_buf_free(&out);
                bad = 1;
            } else if (ty_kubeflow_managed_elsewhere(m->docs[d].obj)) {
                /* The operator would never run it, and the run would wait for it forever. */
                json_t *run = json_object_get(json_object_get(m->docs[d].obj, "spec"), "runPolicy");
                ty_pos p = ty_manifest_pos_member(m, run, "managedBy", false);
                fprintf(stderr, "%s:%d:%d: spec.runPolicy.managedBy: \"%s\" runs this job, not "
                        "the training operator: trainyard run has no such controller\n", m->file,
                        p.line, p.col, ty_kubeflow_managed_elsewhere(m->docs[d].obj));
                bad = 1;
            } else {
                json_array_append(objects, m->docs[d].obj);
            }
            ty_field_errors_free(&errs);
        }
        ty_manifest_free(m);
    }
    if (!bad) {
        /* Two documents naming the same job would be one job run twice. */
        for (size_t i = 0; i < json_array_size(objects); i++)
            for (size_t j = 0; j < i; j++) {
                json_t *a = json_array_get(objects, i), *b = json_array_get(objects, j);
                if (json_equal(json_object_get(a, "kind"), json_object_get(b, "kind")) &&
                    strcmp(ty_obj_name(a), ty_obj_name(b)) == 0 &&
                    strcmp(ty_obj_namespace(a), ty_obj_namespace(b)) == 0) {
                    fprintf(stderr, "trainyard: %s %s/%s is given twice\n",
                            json_string_value(json_object_get(a, "kind")), ty_obj_namespace(a),
                            ty_obj_name(a));
                    bad = 1;
                }
            }
    }
    return bad ? -1 : 0;
}

static void on_handle_closed(uv_handle_t *h) { (void)h; }

static bool is_job_resource(const char *resource)
{
    return strcmp(resource, "pytorchjobs") == 0 || strcmp(resource, "tfjobs") == 0;
}

/* Creates the manifests' jobs (jobs: true; they are followed) or everything else; returns
 * whether every one of them could be created. */
static bool create_objects(run_state *st, json_t *objects, bool jobs)
{
    bool ok = true;
    size_t i;
    json_t *obj;
    json_array_foreach(objects, i, obj)
    {
        const ty_kind_info *k = ty_api_kind(json_string_value(json_object_get(obj, "apiVersion")),
                                            json_string_value(json_object_get(obj, "kind")));
        bool is_job = is_job_resource(k->resource);
        if (is_job != jobs)
            continue;
        if (is_job)
            ty_workloads_default_job(st->store, k->resource, obj);
        json_t *stored = NULL;
        ty_error err = TY_ERROR_INIT;
        /* A foreground run has no one to create namespaces first: the manifest's are made. */
        if ((k->namespaced &&
             ty_store_ensure_namespace(st->store, ty_obj_namespace(obj), &err) < 0) ||
            ty_store_create(st->store, k->resource, obj, &stored, &err) < 0) {
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
                              json_pack("{s:s, s:s, s:s}", "resource", k->resource, "namespace",
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
         * queue once admitted: it waits. */
        json_t *last = json_array_get(st->last_jobs, i);
        bool waits_for_queue = ty_obj_label(last, "kueue.x-k8s.io/queue-name") != NULL;
        if (!ty_obj_condition_true(last, "Succeeded") && !ty_obj_condition_true(last, "Failed") &&
            (!ty_obj_condition_true(last, "Suspended") || waits_for_queue))
            all_finished = false;
    }
    ty_view_update(st->view, st->store, st->last_jobs, false);
    if (all_finished)
        begin_shutdown(st);
}

/* The first signal stops every pod gracefully; a second one kills what is left now. */
static void on_signal(uv_signal_t *h, int signum)
{
    run_state *st = h->data;
    if (!st->signal) {
        st->signal = signum;
        ty_view_note(st->view, "stopping: %s received, stopping every pod (again to kill them)",
                     strsignal(signum));
        begin_shutdown(st);
        return;
    }
    ty_view_note(st->view, "stopping: %s received again, killing every pod", strsignal(signum));
    ty_node_kill_pods(st->node);
}

static char *default_state_dir(void)
{
    const char *base = getenv("XDG_RUNTIME_DIR");
    char *parent = base && *base ? ty_asprintf("%s/trainyard", base)
                                 : ty_asprintf("/tmp/trainyard-%u", (unsigned)getuid());
    if (ty_mkdir_p(parent, 0700) < 0) {
        free(parent);
        return NULL;
    }
    char *dir = ty_asprintf("%s/run-%lld-%d", parent, (long long)(ty_time_now_ns() / 1000000000),
                            (int)getpid());
    free(parent);
    return dir;
}

int ty_cli_run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"follow", no_argument, NULL, 'f'},     {"output", required_argument, NULL, 'o'},
        {"gpus", required_argument, NULL, 'g'}, {"state-dir", required_argument, NULL, 's'},
        {"nodes", required_argument, NULL, 'N'}, {"nodes-file", required_argument, NULL, 'F'},
        {"help", no_argument, NULL, 'h'},       {NULL, 0, NULL, 0},
    };
    bool follow = false, json_out = false;
    int gpus = -1;
    TY_AUTONODES json_t *nodes = NULL;
    int next_node = 1;
    const char *state_dir_arg = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "fo:h", opts, NULL)) != -1) {
        switch (c) {
        case 'f':
            follow = true;
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
    if (load_jobs(argv + optind, argc - optind, objects) < 0) {
        json_decref(objects);
        return 2;
    }

    run_state st = {0};
    int rc = 1;
    TY_AUTOFREE char *state_dir = state_dir_arg ? ty_strdup(state_dir_arg) : default_state_dir();
    if (!state_dir || ty_mkdir_p(state_dir, 0700) < 0) {
        fprintf(stderr, "trainyard run: create state directory %s: %s\n",
                state_dir ? state_dir : "(none)", strerror(errno));
        json_decref(objects);
        return 1;
    }

    uv_loop_init(&st.loop);
    st.store = ty_store_new();
    ty_error err = TY_ERROR_INIT;
    ty_node_config ncfg = {
        .loop = &st.loop,
        .store = st.store,
        .state_dir = state_dir,
        .gpus = gpus,
        .nodes = nodes,
        .pods_die_with_parent = true,
        .scatter_addresses = true, /* two runs at once rarely pick the same addresses */
    };
    if (ty_node_start(&ncfg, &st.node, &err) < 0) {
        fprintf(stderr, "trainyard run: %s\n", err.msg);
        goto out;
    }
    st.view = ty_view_new(json_out ? stderr : stdout, follow, ty_node_runtime(st.node));

    st.job_refs = json_array();
    st.last_jobs = json_array();
    size_t i;
    json_t *obj;
    /* Queues, flavors and priority classes first, so that the jobs find them; only the jobs
     * end a run. */
    bool create_failed = !create_objects(&st, objects, false);
    create_failed |= !create_objects(&st, objects, true);

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
    json_array_foreach(st.last_jobs, i, obj) all_ok = all_ok && ty_obj_condition_true(obj, "Succeeded");
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
