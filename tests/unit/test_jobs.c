/* The job controller (controllers/jobs.h) on a loop over an in-memory store: a job gets its
 * pods (with the gang label and size the binder reads) and services, its status follows its
 * pods, a gang that can never fit fails at once, and a deleted pod is made again. */
#include <criterion/criterion.h>
#include <string.h>
#include <uv.h>

#include "base/mem.h"
#include "base/time.h"
#include "controllers/binder.h"
#include "controllers/jobs.h"
#include "kubeflow_fixtures.h"
#include "store/store.h"

static struct {
    uv_loop_t loop;
    ty_store *store;
    ty_jobctl *ctl;
} T;

static void put(const char *resource, json_t *obj)
{
    ty_error err = TY_ERROR_INIT;
    cr_assert_eq(ty_store_create(T.store, resource, obj, NULL, &err), 0, "%s", err.msg);
    json_decref(obj);
}

static void setup(void)
{
    memset(&T, 0, sizeof T);
    uv_loop_init(&T.loop);
    T.store = ty_store_new();
    put("nodes", J("{'apiVersion':'v1','kind':'Node','metadata':{'name':'n1'},"
                   "'status':{'allocatable':{'cpu':'8','memory':'16Gi','nvidia.com/gpu':'2',"
                   "'pods':'110'}}}"));
    T.ctl = ty_jobctl_new(&T.loop, T.store, NULL, NULL);
}

static void teardown(void)
{
    ty_jobctl_free(T.ctl);
    uv_run(&T.loop, UV_RUN_DEFAULT);
    cr_assert_eq(uv_loop_close(&T.loop), 0, "handles left open");
    ty_store_free(T.store);
}

TestSuite(jobs, .init = setup, .fini = teardown);

static void on_stop(uv_timer_t *t) { uv_stop(t->loop); }

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

static json_t *pod(const char *name) { return ty_store_get(T.store, "pods", "default", name); }

static bool exists(const char *resource, const char *name)
{
    json_t *o = ty_store_get(T.store, resource, "default", name);
    json_decref(o);
    return o != NULL;
}

static bool all_pods(void)
{
    return exists("pods", "j-master-0") && exists("pods", "j-worker-0") &&
           exists("pods", "j-worker-1");
}

static void set_phase(const char *name, const char *phase)
{
    json_t *p = pod(name);
    cr_assert_not_null(p, "pod %s", name);
    json_t *next = json_deep_copy(p);
    json_decref(p);
    json_object_set_new(next, "status", json_pack("{s:s}", "phase", phase));
    cr_assert_eq(ty_store_update_status(T.store, "pods", next, NULL, NULL), 0);
    json_decref(next);
}

static bool job_condition(const char *type)
{
    json_t *j = ty_store_get(T.store, "pytorchjobs", "default", "j");
    bool t = ty_obj_condition_true(j, type);
    json_decref(j);
    return t;
}

static bool job_running(void) { return job_condition("Running"); }
static bool job_succeeded(void) { return job_condition("Succeeded"); }
static bool job_failed(void) { return job_condition("Failed"); }

static void add_job(const char *resources)
{
    put("pytorchjobs",
        J("{'apiVersion':'kubeflow.org/v1','kind':'PyTorchJob','metadata':{'name':'j',"
          "'namespace':'default'},'spec':{'pytorchReplicaSpecs':{"
          "'Master':{'replicas':1,'restartPolicy':'Never','template':{'spec':{'containers':"
          "[{'name':'pytorch','image':'x','resources':%s}]}}},"
          "'Worker':{'replicas':2,'restartPolicy':'Never','template':{'spec':{'containers':"
          "[{'name':'pytorch','image':'x','resources':%s}]}}}}}}",
          resources, resources));
}

Test(jobs, pods_and_services_carry_the_gang_and_status_follows_them)
{
    add_job("{}");
    cr_assert(run_until(all_pods, 5000), "the job's pods were not made");
    json_t *p = pod("j-worker-1");
    cr_assert_str_eq(ty_obj_label(p, TY_LABEL_POD_GROUP), "j");
    cr_assert_str_eq(json_string_value(json_object_get(
                         json_object_get(json_object_get(p, "metadata"), "annotations"),
                         TY_ANNOTATION_GANG_SIZE)),
                     "3");
    json_t *j = ty_store_get(T.store, "pytorchjobs", "default", "j");
    cr_assert(ty_obj_owned_by(p, ty_obj_uid(j)), "a pod is owned by its job");
    json_decref(j);
    json_decref(p);
    cr_assert(exists("services", "j-master-0"), "the master's service");
    set_phase("j-master-0", "Running");
    set_phase("j-worker-0", "Running");
    set_phase("j-worker-1", "Running");
    cr_assert(run_until(job_running, 5000), "Running did not follow the pods");
    set_phase("j-worker-0", "Succeeded");
    set_phase("j-worker-1", "Succeeded");
    set_phase("j-master-0", "Succeeded");
    cr_assert(run_until(job_succeeded, 5000), "Succeeded did not follow the master");
}

static bool master_back(void)
{
    json_t *p = pod("j-master-0");
    bool back = p && !ty_obj_deleting(p);
    json_decref(p);
    return back;
}

Test(jobs, a_deleted_pod_is_made_again)
{
    add_job("{}");
    cr_assert(run_until(all_pods, 5000));
    json_t *p = pod("j-master-0");
    TY_AUTOFREE char *uid = ty_strdup(ty_obj_uid(p));
    json_decref(p);
    cr_assert_eq(ty_store_delete(T.store, "pods", "default", "j-master-0", 0, NULL), 0);
    cr_assert(run_until(master_back, 5000), "the deleted pod was not made again");
    p = pod("j-master-0");
    cr_assert_str_neq(ty_obj_uid(p), uid, "a new pod, not the old one");
    json_decref(p);
}

/* Three pods of 1 GPU each against one node of 2: never, so the job fails at once, and no pod
 * is made. */
Test(jobs, a_gang_that_can_never_fit_fails_at_once)
{
    add_job("{'limits':{'nvidia.com/gpu':'1'}}");
    cr_assert(run_until(job_failed, 5000), "the job that can never fit did not fail");
    json_t *pods = ty_store_list(T.store, "pods", "default");
    cr_assert_eq(json_array_size(pods), 0);
    json_decref(pods);
    json_t *j = ty_store_get(T.store, "pytorchjobs", "default", "j");
    json_t *conds = json_object_get(json_object_get(j, "status"), "conditions");
    const char *msg = json_string_value(
        json_object_get(json_array_get(conds, json_array_size(conds) - 1), "message"));
    cr_assert(msg && strstr(msg, "can never run here"), "%s", msg ? msg : "(none)");
    json_decref(j);
}

static bool service_back(void) { return exists("services", "j-worker-0"); }

/* A running job's service deleted by a user is made again, as the operator does. */
Test(jobs, a_deleted_service_is_made_again)
{
    add_job("{}");
    cr_assert(run_until(all_pods, 5000));
    cr_assert(exists("services", "j-worker-0"));
    cr_assert_eq(ty_store_delete(T.store, "services", "default", "j-worker-0", 0, NULL), 0);
    /* a change of one of its pods brings the job's next reconcile */
    set_phase("j-worker-0", "Running");
    cr_assert(run_until(service_back, 5000), "the deleted service was not made again");
}

static const char *env_value(const json_t *p, const char *name)
{
    const json_t *c = json_array_get(json_object_get(json_object_get(p, "spec"), "containers"), 0);
    size_t i;
    const json_t *e;
    json_array_foreach(json_object_get(c, "env"), i, e)
    {
        const char *n = json_string_value(json_object_get(e, "name"));
        if (n && strcmp(n, name) == 0)
            return json_string_value(json_object_get(e, "value"));
    }
    return NULL;
}

static bool no_pods(void)
{
    return !exists("pods", "j-master-0") && !exists("pods", "j-worker-0") &&
           !exists("pods", "j-worker-1");
}

static char *fixed_address(void *ctx, const char *ns, const char *pod_name)
{
    (void)ctx;
    (void)ns;
    return ty_strdup(strstr(pod_name, "-master-") ? "127.16.0.5" : "127.16.0.9");
}

/* Without an address callback (a node whose pods resolve through cluster DNS: cli/node.c's
 * pods_use_cluster_dns) the pods get the operator's Service names; with one, addresses. */
Test(jobs, master_addr_is_the_service_name_with_cluster_dns_else_the_address)
{
    add_job("{}");
    cr_assert(run_until(all_pods, 5000), "the job's pods were not made");
    json_t *p = pod("j-worker-1");
    cr_assert_str_eq(env_value(p, "MASTER_ADDR"), "j-master-0");
    cr_assert_str_eq(env_value(p, "PET_MASTER_ADDR"), "j-master-0");
    json_decref(p);

    ty_jobctl_free(T.ctl);
    T.ctl = ty_jobctl_new(&T.loop, T.store, fixed_address, NULL);
    cr_assert_eq(ty_store_delete(T.store, "pytorchjobs", "default", "j", 0, NULL), 0);
    cr_assert(run_until(no_pods, 5000), "the job's pods stayed");
    add_job("{}");
    ty_jobctl_resync(T.ctl, true);
    cr_assert(run_until(all_pods, 5000), "the job's pods were not made again");
    p = pod("j-worker-1");
    cr_assert_str_eq(env_value(p, "MASTER_ADDR"), "127.16.0.5");
    json_decref(p);
}
