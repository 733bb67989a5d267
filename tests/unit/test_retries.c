/* Every controller under store write failures (ty_store_set_fault), each on a real loop over an
 * in-memory store: while its writes fail it retries with the work queue's back-off (5 ms
 * doubling), so a window of WINDOW_MS sees a handful of tries, not thousands; once writes
 * succeed again it converges without any other event. The events recorder, which never
 * retries, makes one write per event recorded. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "base/mem.h"
#include "base/time.h"
#include "controllers/admission.h"
#include "controllers/batchjobs.h"
#include "controllers/binder.h"
#include "controllers/events.h"
#include "controllers/jobs.h"
#include "controllers/controllers_int.h"
#include "controllers/queue.h"
#include "controllers/volumes.h"
#include "controllers/workloads.h"
#include "kubeflow_fixtures.h"
#include "store/store.h"

/* Back-off tries start at 0, 5, 15, 35, 75, 155, 315 ms: 7 in the window, fewer under load. */
#define WINDOW_MS 400
#define MAX_TRIES 12
#define CONVERGE_MS 10000

/* Fails the writes `op` of `resource` while `on`, counting them. */
typedef struct fault {
    const char *op, *resource;
    bool on;
    unsigned tries;
} fault;

static int inject(void *ctx, const char *op, const char *resource)
{
    fault *f = ctx;
    if (!f->on || strcmp(op, f->op) != 0 || strcmp(resource, f->resource) != 0)
        return 0;
    f->tries++;
    return TY_STORE_INTERNAL;
}

static void on_stop(uv_timer_t *t) { uv_stop(t->loop); }

/* Runs the loop for `ms` (whatever it has to do). */
static void run_for(uv_loop_t *loop, int ms)
{
    uv_timer_t t;
    uv_timer_init(loop, &t);
    uv_timer_start(&t, on_stop, (uint64_t)ms, 0);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
}

static bool run_until(uv_loop_t *loop, ty_store *s, bool (*done)(ty_store *), int ms)
{
    int64_t end = ty_time_mono_ns() + (int64_t)ms * 1000000;
    while (!done(s)) {
        if (ty_time_mono_ns() > end)
            return false;
        run_for(loop, 5);
    }
    return true;
}

/* The window of failures, then writes succeed again and `done` must come. */
static void fail_then_converge(uv_loop_t *loop, ty_store *s, fault *f, bool (*done)(ty_store *))
{
    ty_store_set_fault(s, inject, f);
    f->on = true;
    run_for(loop, WINDOW_MS);
    f->on = false;
    cr_assert_geq(f->tries, 2, "%s %s: tried %u times: a failure must be retried", f->op,
                  f->resource, f->tries);
    cr_assert_leq(f->tries, MAX_TRIES, "%s %s: %u tries in %d ms: the retries must back off",
                  f->op, f->resource, f->tries, WINDOW_MS);
    cr_assert(!done(s), "converged while its writes failed");
    cr_assert(run_until(loop, s, done, CONVERGE_MS),
              "%s %s: no convergence once writes succeed (%u tries)", f->op, f->resource,
              f->tries);
    ty_store_set_fault(s, NULL, NULL);
}

static void put(ty_store *s, const char *resource, json_t *obj)
{
    ty_error err = TY_ERROR_INIT;
    cr_assert_eq(ty_store_create(s, resource, obj, NULL, &err), 0, "%s: %s", resource, err.msg);
    json_decref(obj);
}

static void add_node(ty_store *s)
{
    put(s, "nodes", J("{'apiVersion':'v1','kind':'Node','metadata':{'name':'n1'},"
                      "'status':{'allocatable':{'cpu':'8','memory':'16Gi','pods':'110'}}}"));
}

static json_t *pytorchjob(const char *labels, bool suspend)
{
    return J("{'apiVersion':'kubeflow.org/v1','kind':'PyTorchJob','metadata':{'name':'j',"
             "'namespace':'default','labels':{%s}},'spec':{'runPolicy':{'suspend':%s},"
             "'pytorchReplicaSpecs':{'Master':" KF_REPLICA(1, "Never", PT_C) "}}}",
             labels, suspend ? "true" : "false");
}

static void finish_loop(uv_loop_t *loop, ty_store *s)
{
    run_for(loop, 1);
    uv_run(loop, UV_RUN_DEFAULT);
    cr_assert_eq(uv_loop_close(loop), 0, "handles left open");
    ty_store_free(s);
}

static bool has_pod(ty_store *s)
{
    json_t *pod = ty_store_get(s, "pods", "default", "j-master-0");
    json_decref(pod);
    return pod != NULL;
}

Test(retries, jobs_pod_creates)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    ty_store *s = ty_store_new();
    add_node(s);
    fault f = {.op = "create", .resource = "pods"};
    ty_store_set_fault(s, inject, &f);
    f.on = true;
    ty_jobctl *c = ty_jobctl_new(&loop, s, NULL, NULL);
    put(s, "pytorchjobs", pytorchjob("", false));
    fail_then_converge(&loop, s, &f, has_pod);
    ty_jobctl_free(c);
    finish_loop(&loop, s);
}

static bool pod_gone(ty_store *s) { return !has_pod(s); }

/* A job suspended while it runs deletes its pods: a failed delete is retried. */
Test(retries, jobs_pod_deletes)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    ty_store *s = ty_store_new();
    add_node(s);
    ty_jobctl *c = ty_jobctl_new(&loop, s, NULL, NULL);
    put(s, "pytorchjobs", pytorchjob("", false));
    cr_assert(run_until(&loop, s, has_pod, CONVERGE_MS));
    fault f = {.op = "delete", .resource = "pods"};
    ty_store_set_fault(s, inject, &f);
    f.on = true;
    json_t *job = ty_store_get(s, "pytorchjobs", "default", "j");
    json_t *next = json_deep_copy(job);
    json_decref(job);
    json_object_set_new(json_object_get(json_object_get(next, "spec"), "runPolicy"), "suspend",
                        json_true());
    cr_assert_eq(ty_store_update(s, "pytorchjobs", next, NULL, NULL), 0);
    json_decref(next);
    fail_then_converge(&loop, s, &f, pod_gone);
    ty_jobctl_free(c);
    finish_loop(&loop, s);
}

static bool has_workload(ty_store *s)
{
    json_t *all = ty_store_list(s, "workloads", "default");
    bool any = json_array_size(all) > 0;
    json_decref(all);
    return any;
}

Test(retries, workloads_creates)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    ty_store *s = ty_store_new();
    fault f = {.op = "create", .resource = "workloads"};
    ty_store_set_fault(s, inject, &f);
    f.on = true;
    ty_workloadctl *c = ty_workloadctl_new(&loop, s);
    put(s, "pytorchjobs", pytorchjob("'" TY_KUEUE_LABEL_QUEUE_NAME "':'main'", true));
    fail_then_converge(&loop, s, &f, has_workload);
    ty_workloadctl_free(c);
    finish_loop(&loop, s);
}

static bool pod_bound(ty_store *s)
{
    json_t *pod = ty_store_get(s, "pods", "default", "p");
    bool b = json_string_value(json_object_get(json_object_get(pod, "spec"), "nodeName"));
    json_decref(pod);
    return b;
}

Test(retries, binder_bindings)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    ty_store *s = ty_store_new();
    add_node(s);
    fault f = {.op = "update", .resource = "pods"};
    ty_store_set_fault(s, inject, &f);
    f.on = true;
    ty_binder *b = ty_binder_new(&loop, s, "n1");
    put(s, "pods", J("{'apiVersion':'v1','kind':'Pod','metadata':{'name':'p',"
                     "'namespace':'default'},'spec':{'containers':[{'name':'c','image':'x'}]}}"));
    fail_then_converge(&loop, s, &f, pod_bound);
    ty_binder_free(b);
    finish_loop(&loop, s);
}

static bool wl_reserved(ty_store *s)
{
    json_t *wl = ty_store_get(s, "workloads", "default", "w");
    bool r = wl && ty_kueue_workload_reserved(wl);
    json_decref(wl);
    return r;
}

Test(retries, admission_status_writes)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    ty_store *s = ty_store_new();
    add_node(s);
    put(s, "resourceflavors", J("{'metadata':{'name':'f'},'spec':{}}"));
    put(s, "clusterqueues",
        J("{'metadata':{'name':'cq'},'spec':{'namespaceSelector':{},'resourceGroups':"
          "[{'coveredResources':['cpu'],'flavors':[{'name':'f',"
          "'resources':[{'name':'cpu','nominalQuota':'8'}]}]}]}}"));
    put(s, "localqueues",
        J("{'metadata':{'name':'main','namespace':'default'},'spec':{'clusterQueue':'cq'}}"));
    fault f = {.op = "update status", .resource = "workloads"};
    ty_store_set_fault(s, inject, &f);
    f.on = true;
    ty_admission *a = ty_admission_new(&loop, s, NULL);
    put(s, "workloads",
        J("{'metadata':{'name':'w','namespace':'default'},'spec':{'queueName':'main',"
          "'podSets':[{'name':'m','count':1,'template':{'spec':{'containers':[{'name':'c',"
          "'resources':{'requests':{'cpu':'1'}}}]}}}]}}"));
    fail_then_converge(&loop, s, &f, wl_reserved);
    ty_admission_free(a);
    finish_loop(&loop, s);
}

static bool claim_bound(ty_store *s)
{
    json_t *pvc = ty_store_get(s, "persistentvolumeclaims", "default", "data");
    const char *phase =
        json_string_value(json_object_get(json_object_get(pvc, "status"), "phase"));
    bool b = phase && strcmp(phase, "Bound") == 0;
    json_decref(pvc);
    return b;
}

Test(retries, volumes_provisioning)
{
    char dir[] = "/tmp/ty-retries-XXXXXX";
    cr_assert(mkdtemp(dir));
    uv_loop_t loop;
    uv_loop_init(&loop);
    ty_store *s = ty_store_new();
    fault f = {.op = "create", .resource = "persistentvolumes"};
    ty_store_set_fault(s, inject, &f);
    f.on = true;
    ty_volctl *c = ty_volctl_new(&loop, s, dir);
    put(s, "persistentvolumeclaims",
        J("{'metadata':{'name':'data','namespace':'default'},'spec':{'accessModes':"
          "['ReadWriteOnce'],'storageClassName':'standard','resources':{'requests':"
          "{'storage':'1Gi'}}}}"));
    fail_then_converge(&loop, s, &f, claim_bound);
    ty_volctl_free(c);
    finish_loop(&loop, s);
    TY_AUTOFREE char *cmd = ty_asprintf("rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

/* Recording is best effort: a failed write is one try, dropped, never retried in a loop. */
Test(retries, events_recorder_tries_once)
{
    ty_store *s = ty_store_new();
    ty_recorder *r = ty_recorder_new(s, "test");
    json_t *obj = J("{'apiVersion':'v1','kind':'Pod','metadata':{'name':'p',"
                    "'namespace':'default','uid':'u-1'}}");
    fault f = {.op = "create", .resource = "events", .on = true};
    ty_store_set_fault(s, inject, &f);
    for (int i = 0; i < 3; i++)
        ty_event(r, obj, "Normal", "Tried", "try %d", i);
    cr_assert_eq(f.tries, 3);
    cr_assert_eq(ty_recorder_size(r), 0);
    json_t *none = ty_store_list(s, "events", "default");
    cr_assert_eq(json_array_size(none), 0);
    json_decref(none);
    f.on = false;
    ty_event(r, obj, "Normal", "Tried", "try %d", 0);
    json_t *one = ty_store_list(s, "events", "default");
    cr_assert_eq(json_array_size(one), 1);
    json_decref(one);
    json_decref(obj);
    ty_recorder_free(r);
    ty_store_free(s);
}

/* The fault hook itself: a failed write has the code asked for and changes nothing. */
Test(store_faults, failed_writes_change_nothing)
{
    ty_store *s = ty_store_new();
    put(s, "pods", J("{'metadata':{'name':'p','namespace':'default'},'spec':{}}"));
    uint64_t rv = ty_store_revision(s);
    fault f = {.op = "update", .resource = "pods", .on = true};
    ty_store_set_fault(s, inject, &f);
    json_t *p = ty_store_get(s, "pods", "default", "p");
    json_t *next = json_deep_copy(p);
    json_object_set_new(json_object_get(next, "spec"), "nodeName", json_string("n1"));
    ty_error err = TY_ERROR_INIT;
    cr_assert_eq(ty_store_update(s, "pods", next, NULL, &err), -1);
    cr_assert_eq(err.code, TY_STORE_INTERNAL);
    cr_assert_str_eq(err.msg, "update pods: injected fault");
    ty_error_clear(&err);
    cr_assert_eq(ty_store_revision(s), rv);
    /* other writes pass */
    cr_assert_eq(ty_store_update_status(s, "pods", next, NULL, NULL), 0);
    f.op = "delete";
    cr_assert_eq(ty_store_delete(s, "pods", "default", "p", 0, NULL), -1);
    json_t *still = ty_store_get(s, "pods", "default", "p");
    cr_assert_not_null(still);
    json_decref(still);
    json_decref(next);
    json_decref(p);
    ty_store_free(s);
}

static void write_from_watch(void *ctx, ty_event_type type, const char *resource,
                             const json_t *obj)
{
    (void)type, (void)resource, (void)obj;
    put(ctx, "configmaps", J("{'metadata':{'name':'c','namespace':'default'}}"));
}

/* A watch callback that writes to the store is a programmer error: it asserts. */
Test(store_faults, write_from_a_watch_callback_asserts, .signal = SIGABRT)
{
    ty_store *s = ty_store_new();
    ty_store_watch(s, &(ty_store_watch_opts){.resource = "pods", .fn = write_from_watch, .ctx = s},
                   NULL, NULL);
    put(s, "pods", J("{'metadata':{'name':'p','namespace':'default'},'spec':{}}"));
}

static bool has_service(ty_store *s)
{
    json_t *svc = ty_store_get(s, "services", "default", "j-master-0");
    json_decref(svc);
    return svc != NULL;
}

/* A service that could not be made is made by a retry (its pod was made at the first try). */
Test(retries, jobs_service_creates)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    ty_store *s = ty_store_new();
    add_node(s);
    fault f = {.op = "create", .resource = "services"};
    ty_store_set_fault(s, inject, &f);
    f.on = true;
    ty_jobctl *c = ty_jobctl_new(&loop, s, NULL, NULL);
    put(s, "pytorchjobs", pytorchjob("", false));
    fail_then_converge(&loop, s, &f, has_service);
    ty_jobctl_free(c);
    finish_loop(&loop, s);
}

/* batch/v1 Jobs: a failed pod create, and a failed status write, are retried. */
static json_t *batch_job(void)
{
    return J("{'apiVersion':'batch/v1','kind':'Job','metadata':{'name':'b','namespace':'default'},"
             "'spec':{'parallelism':1,'completions':1,'backoffLimit':6,'suspend':false,"
             "'completionMode':'NonIndexed','template':{'spec':{'restartPolicy':'Never',"
             "'containers':[{'name':'main','command':['true']}]}}}}");
}

static bool batch_has_pod(ty_store *s)
{
    json_t *job = ty_store_get(s, "jobs", "default", "b");
    json_t *pods = job ? ty_store_list_owned(s, "pods", ty_obj_uid(job)) : NULL;
    bool found = json_array_size(pods) == 1;
    json_decref(pods);
    json_decref(job);
    return found;
}

static bool batch_has_start(ty_store *s)
{
    json_t *job = ty_store_get(s, "jobs", "default", "b");
    bool started = json_object_get(json_object_get(job, "status"), "startTime") != NULL;
    json_decref(job);
    return started;
}

Test(retries, batch_pod_creates)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    ty_store *s = ty_store_new();
    fault f = {.op = "create", .resource = "pods"};
    ty_store_set_fault(s, inject, &f);
    f.on = true;
    ty_batchctl *c = ty_batchctl_new(&loop, s);
    put(s, "jobs", batch_job());
    fail_then_converge(&loop, s, &f, batch_has_pod);
    ty_batchctl_free(c);
    finish_loop(&loop, s);
}

Test(retries, batch_status_writes)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    ty_store *s = ty_store_new();
    fault f = {.op = "update status", .resource = "jobs"};
    ty_store_set_fault(s, inject, &f);
    f.on = true;
    ty_batchctl *c = ty_batchctl_new(&loop, s);
    put(s, "jobs", batch_job());
    fail_then_converge(&loop, s, &f, batch_has_start);
    ty_batchctl_free(c);
    finish_loop(&loop, s);
}
