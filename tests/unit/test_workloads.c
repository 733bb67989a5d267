/* The job side of Kueue (controllers/workloads.h) on a loop over an in-memory store, with the
 * admission played by the test: a queued job gets its Workload; admitted, it starts with the
 * flavor's node labels and the assigned nodes; evicted, it stops with its templates as they
 * were and is requeued once its pods are gone; finished, its Workload is Finished. */
#include <criterion/criterion.h>
#include <string.h>
#include <uv.h>

#include "base/mem.h"
#include "base/time.h"
#include "controllers/controllers_int.h"
#include "controllers/workloads.h"
#include "kubeflow_fixtures.h"
#include "store/store.h"

static struct {
    uv_loop_t loop;
    ty_store *store;
    ty_workloadctl *ctl;
} T;

static void setup(void)
{
    memset(&T, 0, sizeof T);
    uv_loop_init(&T.loop);
    T.store = ty_store_new();
    T.ctl = ty_workloadctl_new(&T.loop, T.store);
}

static void teardown(void)
{
    ty_workloadctl_free(T.ctl);
    uv_run(&T.loop, UV_RUN_DEFAULT);
    cr_assert_eq(uv_loop_close(&T.loop), 0, "handles left open");
    ty_store_free(T.store);
}

TestSuite(workloads, .init = setup, .fini = teardown);

static void on_stop(uv_timer_t *t) { uv_stop(t->loop); }

/* Runs the loop until `done` (checked every 5 ms), at most `ms`. */
static bool run_until(bool (*done)(void), int ms)
{
    int64_t end = ty_time_mono_ns() + (int64_t)ms * 1000000;
    uv_timer_t t;
    uv_timer_init(&T.loop, &t);
    bool ok;
    while (!(ok = done()) && ty_time_mono_ns() < end) {
        uv_timer_start(&t, on_stop, 5, 0);
        uv_run(&T.loop, UV_RUN_DEFAULT);
    }
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&T.loop, UV_RUN_NOWAIT);
    return ok;
}

static void put(const char *resource, json_t *obj)
{
    ty_error err = TY_ERROR_INIT;
    cr_assert_eq(ty_store_create(T.store, resource, obj, NULL, &err), 0, "%s", err.msg);
    json_decref(obj);
}

static json_t *job(void) { return ty_store_get(T.store, "pytorchjobs", "default", "j"); }

static json_t *the_workload(void)
{
    json_t *all = ty_store_list(T.store, "workloads", "default");
    json_t *wl = json_incref(json_array_get(all, 0));
    json_decref(all);
    return wl;
}

static bool suspended(void)
{
    json_t *j = job();
    bool s = json_is_true(json_object_get(
        json_object_get(json_object_get(j, "spec"), "runPolicy"), "suspend"));
    json_decref(j);
    return s;
}

static bool running(void) { return !suspended(); }

static bool has_workload(void)
{
    json_t *wl = the_workload();
    json_decref(wl);
    return wl != NULL;
}

static json_t *master_template(const json_t *j)
{
    return json_object_get(
        json_object_get(json_object_get(json_object_get(j, "spec"), "pytorchReplicaSpecs"),
                        "Master"),
        "template");
}

/* Writes the workload's status: `status` merged over it. */
static void set_status(const char *status)
{
    json_t *wl = the_workload();
    cr_assert_not_null(wl);
    json_t *next = json_deep_copy(wl);
    json_decref(wl);
    json_t *st = json_object_get(next, "status");
    if (!json_is_object(st))
        json_object_set_new(next, "status", st = json_object());
    json_t *m = J("%s", status);
    json_object_update(st, m);
    json_decref(m);
    ty_error err = TY_ERROR_INIT;
    cr_assert_eq(ty_store_update_status(T.store, "workloads", next, NULL, &err), 0, "%s",
                 err.msg);
    json_decref(next);
}

#define ADMITTED                                                                                \
    "'admission':{'clusterQueue':'cq','podSetAssignments':[{'name':'master','count':1,"        \
    "'flavors':{'cpu':'f'},'topologyAssignment':{'levels':['kubernetes.io/hostname'],"          \
    "'domains':[{'values':['n1'],'count':1}]}}]}"
#define COND(type, status, reason)                                                             \
    "{'type':'" type "','status':'" status "','reason':'" reason "','message':'m',"            \
    "'lastTransitionTime':'2026-01-01T00:00:00Z'}"

static bool stopped_and_requeued(void)
{
    json_t *wl = the_workload();
    bool r = suspended() && !ty_kueue_workload_reserved(wl) &&
             ty_kueue_condition_is(wl, "Requeued", "True") &&
             json_object_get(json_object_get(wl, "status"), "requeueState");
    json_decref(wl);
    return r;
}

static bool wl_finished(void)
{
    json_t *wl = the_workload();
    bool f = wl && ty_kueue_workload_finished(wl);
    json_decref(wl);
    return f;
}

Test(workloads, a_queued_job_is_admitted_started_evicted_requeued_and_finished)
{
    put("resourceflavors", J("{'metadata':{'name':'f'},'spec':{'nodeLabels':{'pool':'a'}}}"));
    put("pytorchjobs",
        J("{'apiVersion':'kubeflow.org/v1','kind':'PyTorchJob','metadata':{'name':'j',"
          "'namespace':'default','labels':{'" TY_KUEUE_LABEL_QUEUE_NAME "':'main'}},"
          "'spec':{'runPolicy':{'suspend':true},'pytorchReplicaSpecs':{'Master':"
          KF_REPLICA(1, "Never", PT_C) ",'Worker':" KF_REPLICA(2, "Never", PT_C) "}}}"));
    cr_assert(run_until(has_workload, 5000), "no Workload for the queued job");
    json_t *wl = the_workload();
    json_t *j = job();
    cr_assert(ty_obj_owned_by(wl, ty_obj_uid(j)), "the Workload is owned by its job");
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(wl, "spec"), "queueName")),
                     "main");
    json_t *sets = json_object_get(json_object_get(wl, "spec"), "podSets");
    cr_assert_eq(json_array_size(sets), 2);
    for (size_t i = 0; i < 2; i++) {
        const char *n = json_string_value(json_object_get(json_array_get(sets, i), "name"));
        json_int_t count = json_integer_value(json_object_get(json_array_get(sets, i), "count"));
        cr_assert(strcmp(n, "master") == 0 ? count == 1 : strcmp(n, "worker") == 0 && count == 2,
                  "pod set %s of %lld", n, (long long)count);
    }
    json_decref(j);
    json_decref(wl);
    cr_assert(suspended(), "a queued job waits for its admission");

    /* Admitted: started with the flavor's labels and the assigned node. */
    set_status("{" ADMITTED ",'conditions':[" COND("QuotaReserved", "True", "QuotaReserved") ","
               COND("Admitted", "True", "Admitted") "]}");
    cr_assert(run_until(running, 5000), "the admitted job did not start");
    j = job();
    json_t *tmpl = master_template(j);
    cr_assert_str_eq(json_string_value(json_object_get(
                         json_object_get(json_object_get(tmpl, "spec"), "nodeSelector"), "pool")),
                     "a");
    cr_assert_str_eq(json_string_value(json_object_get(
                         json_object_get(json_object_get(tmpl, "metadata"), "annotations"),
                         "trainyard.dev/placement")),
                     "n1");
    json_decref(j);

    /* Evicted: stopped with its templates as they were, then (no pod left) requeued. */
    set_status("{'conditions':[" COND("QuotaReserved", "True", "QuotaReserved") ","
               COND("Admitted", "True", "Admitted") "," COND("Evicted", "True", "Preempted")
               "]}");
    cr_assert(run_until(stopped_and_requeued, 5000), "the evicted job was not stopped/requeued");
    j = job();
    tmpl = master_template(j);
    cr_assert_null(json_object_get(json_object_get(tmpl, "spec"), "nodeSelector"));
    cr_assert_null(json_object_get(json_object_get(json_object_get(tmpl, "metadata"),
                                                   "annotations"),
                                   "trainyard.dev/placement"));
    json_decref(j);

    /* Finished: the Workload says so (which releases its quota). */
    j = job();
    json_t *next = json_deep_copy(j);
    json_decref(j);
    json_object_set_new(next, "status",
                        J("{'conditions':[" COND("Succeeded", "True", "PyTorchJobSucceeded")
                          "]}"));
    cr_assert_eq(ty_store_update_status(T.store, "pytorchjobs", next, NULL, NULL), 0);
    json_decref(next);
    cr_assert(run_until(wl_finished, 5000), "the finished job's Workload is not Finished");
}

/* A job without the queue label is not Kueue's: no Workload, left as it is. */
Test(workloads, an_unqueued_job_is_left_alone)
{
    put("pytorchjobs",
        J("{'apiVersion':'kubeflow.org/v1','kind':'PyTorchJob','metadata':{'name':'j',"
          "'namespace':'default'},'spec':{'pytorchReplicaSpecs':{'Master':"
          KF_REPLICA(1, "Never", PT_C) "}}}"));
    /* The resync queues every job and the reconcile runs on the next turns: once the queue is
     * drained (the loop has nothing left to do), nothing more can come. */
    ty_workloadctl_resync(T.ctl);
    uv_run(&T.loop, UV_RUN_DEFAULT);
    cr_assert(!has_workload());
    cr_assert(running());
}
