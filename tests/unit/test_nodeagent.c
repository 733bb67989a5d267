/* The node agent over a real runtime and a persisted store with deferred commits (as the
 * server runs it): a resync starts what is stored, a pod's end is marked reported only once
 * the store has committed it, and a deleted pod's directory goes. */
#include <criterion/criterion.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "base/fs.h"
#include "base/mem.h"
#include "base/time.h"
#include "controllers/nodeagent.h"
#include "controllers/podutil.h"
#include "runtime/ipam.h"
#include "runtime/runtime.h"
#include "store/store.h"

#ifdef __SANITIZE_ADDRESS__
#define SHIM "build/asan/trainyard"
#else
#define SHIM "build/trainyard"
#endif

static struct {
    char dir[64];
    uv_loop_t loop;
    uv_timer_t tick;
    ty_store *store;
    ty_runtime *rt;
    ty_ipam *ipam;
    ty_nodeagent *agent;
} T;

static void on_status(void *ctx, const char *ns, const char *name, const char *uid,
                      json_t *status, bool gone)
{
    (void)ctx;
    if (T.agent)
        ty_nodeagent_on_status(T.agent, ns, name, uid, status, gone);
    else
        json_decref(status);
}

static void tick(uv_timer_t *t) { (void)t; }

static void setup(void)
{
    memset(&T, 0, sizeof T);
    snprintf(T.dir, sizeof T.dir, "/tmp/ty-agent-XXXXXX");
    cr_assert(mkdtemp(T.dir));
    TY_AUTOFREE char *db = ty_asprintf("%s/store.db", T.dir);
    ty_error err = TY_ERROR_INIT;
    cr_assert_eq(ty_store_open(db, &T.store, &err), 0, "%s", err.msg);
    ty_store_defer_commits(T.store, true);
    uv_loop_init(&T.loop);
    uv_timer_init(&T.loop, &T.tick);
    uv_timer_start(&T.tick, tick, 5, 5); /* the loop turns, so deadlines are checked */
    char exe[PATH_MAX];
    cr_assert(realpath(SHIM, exe), "run the tests from the repository root after make");
    TY_AUTOFREE char *node_dir = ty_asprintf("%s/node", T.dir);
    ty_runtime_config cfg = {.state_dir = node_dir, .self_exe = exe, .gpus = 0,
                             .pods_die_with_parent = true, .default_workdir = "/tmp",
                             .node_name = "node-a"};
    cr_assert_eq(ty_runtime_new(&T.loop, &cfg, on_status, NULL, &T.rt, &err), 0, "%s",
                 err.msg);
    T.ipam = ty_ipam_new();
}

static bool shut;
static void shut_done(void *arg) { (void)arg, shut = true; }

static void teardown(void)
{
    shut = false;
    ty_runtime_shutdown(T.rt, shut_done, NULL);
    int64_t end = ty_time_mono_ns() + 10000000000LL;
    while (!shut && ty_time_mono_ns() < end)
        uv_run(&T.loop, UV_RUN_ONCE);
    ty_nodeagent_free(T.agent);
    T.agent = NULL;
    ty_runtime_free(T.rt);
    ty_ipam_free(T.ipam);
    uv_close((uv_handle_t *)&T.tick, NULL);
    uv_run(&T.loop, UV_RUN_DEFAULT);
    cr_assert_eq(uv_loop_close(&T.loop), 0, "handles left open");
    ty_store_free(T.store);
    TY_AUTOFREE char *cmd = ty_asprintf("rm -rf %s", T.dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(nodeagent, .init = setup, .fini = teardown);

static bool run_until(bool (*pred)(void), int ms)
{
    int64_t end = ty_time_mono_ns() + (int64_t)ms * 1000000;
    while (!pred()) {
        if (ty_time_mono_ns() > end)
            return false;
        uv_run(&T.loop, UV_RUN_ONCE);
    }
    return true;
}

static void create_pod(const char *name, const char *cmd)
{
    json_t *pod = json_pack(
        "{s:s, s:s, s:{s:s, s:s}, s:{s:s, s:s, s:[{s:s, s:[s, s, s]}]}}", "apiVersion", "v1",
        "kind", "Pod", "metadata", "name", name, "namespace", "default", "spec", "nodeName",
        "node-a", "restartPolicy", "Never", "containers", "name", "c", "command", "sh", "-c",
        cmd);
    ty_error err = TY_ERROR_INIT;
    cr_assert_eq(ty_store_create(T.store, "pods", pod, NULL, &err), 0, "%s", err.msg);
    json_decref(pod);
}

static json_t *get_pod(const char *name)
{
    return ty_store_get(T.store, "pods", "default", name);
}

static char *pod_dir(const char *name)
{
    json_t *pod = get_pod(name);
    cr_assert(pod);
    char *d = ty_asprintf("%s/node/pods/default_%s_%s", T.dir, name, ty_obj_uid(pod));
    json_decref(pod);
    return d;
}

static bool ended(void)
{
    json_t *pod = get_pod("p");
    bool done = pod && ty_pod_terminated(pod) && !ty_runtime_has_pod(T.rt, ty_obj_uid(pod));
    json_decref(pod);
    return done;
}

static char *marker;
static bool marked(void) { return access(marker, F_OK) == 0; }

Test(nodeagent, resync_starts_stored_pod_and_end_is_marked_only_once_committed)
{
    /* stored before the agent ran (a restart): only a resync looks at it */
    create_pod("p", "exit 3");
    cr_assert_eq(ty_store_commit(T.store, NULL), 0);
    T.agent = ty_nodeagent_new(&T.loop, T.store, "node-a", T.rt, T.ipam);
    ty_nodeagent_resync(T.agent);
    cr_assert(run_until(ended, 15000), "the stored pod did not run to its end");
    json_t *pod = get_pod("p");
    json_t *cs = json_array_get(json_object_get(json_object_get(pod, "status"),
                                                "containerStatuses"), 0);
    cr_assert_eq(json_integer_value(json_object_get(
                     json_object_get(json_object_get(cs, "state"), "terminated"), "exitCode")),
                 3);
    json_decref(pod);
    /* The final status is written but not committed: a crash now must make the next start
     * report the end again, so it is not marked reported yet. */
    cr_assert(ty_store_uncommitted(T.store));
    TY_AUTOFREE char *dir = pod_dir("p");
    TY_AUTOFREE char *m = ty_asprintf("%s/gone", dir);
    marker = m;
    for (int i = 0; i < 20; i++)
        uv_run(&T.loop, UV_RUN_ONCE);
    cr_assert(!marked(), "the end was marked reported before its commit");
    cr_assert_eq(ty_store_commit(T.store, NULL), 0);
    cr_assert(run_until(marked, 2000), "the committed end was not marked reported");
}

static bool pod_absent(void)
{
    json_t *pod = get_pod("p");
    json_decref(pod);
    return !pod;
}

static char *dir_of_p;
static bool dir_absent(void) { return access(dir_of_p, F_OK) != 0; }

Test(nodeagent, deleted_pod_loses_its_directory_after_its_processes)
{
    T.agent = ty_nodeagent_new(&T.loop, T.store, "node-a", T.rt, T.ipam);
    ty_nodeagent_remove_dirs(T.agent);
    create_pod("p", "sleep 30");
    TY_AUTOFREE char *dir = pod_dir("p");
    dir_of_p = dir;
    json_t *pod = get_pod("p");
    TY_AUTOFREE char *uid = ty_strdup(ty_obj_uid(pod));
    json_decref(pod);
    int64_t end = ty_time_mono_ns() + 10000000000LL;
    while (!ty_runtime_has_pod(T.rt, uid) && ty_time_mono_ns() < end)
        uv_run(&T.loop, UV_RUN_ONCE);
    cr_assert(ty_runtime_has_pod(T.rt, uid));
    cr_assert(access(dir, F_OK) == 0);
    /* graceful deletion: the agent stops it, then removes the object; the dir goes after */
    cr_assert_eq(ty_store_delete(T.store, "pods", "default", "p", 1, NULL), 0);
    cr_assert(run_until(pod_absent, 15000), "the deleted pod was not removed");
    cr_assert(!ty_runtime_has_pod(T.rt, uid), "the object went before its processes");
    cr_assert(run_until(dir_absent, 2000), "the deleted pod's directory stayed");
}

Test(nodeagent, sweep_removes_directories_without_pods)
{
    TY_AUTOFREE char *ghost = ty_asprintf("%s/node/pods/default_ghost_0a1b2c", T.dir);
    TY_AUTOFREE char *log = ty_asprintf("%s/c", ghost);
    cr_assert_eq(ty_mkdir_p(log, 0755), 0);
    create_pod("p", "exit 0");
    T.agent = ty_nodeagent_new(&T.loop, T.store, "node-a", T.rt, T.ipam);
    ty_nodeagent_resync(T.agent);
    cr_assert(run_until(ended, 15000));
    ty_nodeagent_remove_dirs(T.agent);
    cr_assert(access(ghost, F_OK) != 0, "the directory of a pod that is gone stayed");
    TY_AUTOFREE char *dir = pod_dir("p");
    cr_assert(access(dir, F_OK) == 0, "the directory of a pod that exists went");
}

static unsigned status_tries;
static bool status_failing;

static int fail_status(void *ctx, const char *op, const char *resource)
{
    (void)ctx;
    if (!status_failing || strcmp(op, "update status") != 0 || strcmp(resource, "pods") != 0)
        return 0;
    status_tries++;
    return TY_STORE_INTERNAL;
}

static void on_window(uv_timer_t *t) { (void)t, status_failing = false; }
static bool window_over(void) { return !status_failing; }

/* A pod's status writes that fail are retried with the queue's back-off (5 ms doubling: a
 * dozen tries a second, not a tight loop), and its end is reported once they succeed. */
Test(nodeagent, failed_status_writes_back_off_then_converge)
{
    create_pod("p", "exit 3");
    status_tries = 0;
    status_failing = true;
    ty_store_set_fault(T.store, fail_status, NULL);
    T.agent = ty_nodeagent_new(&T.loop, T.store, "node-a", T.rt, T.ipam);
    ty_nodeagent_resync(T.agent);
    uv_timer_t window;
    uv_timer_init(&T.loop, &window);
    uv_timer_start(&window, on_window, 1000, 0);
    cr_assert(run_until(window_over, 5000));
    uv_close((uv_handle_t *)&window, NULL);
    cr_assert_geq(status_tries, 2, "a failed status write must be retried");
    cr_assert_leq(status_tries, 20, "%u status writes in 1 s: the retries must back off",
                  status_tries);
    cr_assert(!ended(), "the pod's end was reported while status writes failed");
    cr_assert(run_until(ended, 15000), "the pod's end was not reported once writes succeed");
    ty_store_set_fault(T.store, NULL, NULL);
}
