/* The admission controller (controllers/admission.h) on a loop over an in-memory store: which
 * changes run a pass. Changes that cannot alter its outcome (a pod that is on no node, a
 * node's heartbeat, a namespace without labels, the queue status and waiting reasons it
 * writes itself) run none;
 * every other change does, and its outcome shows. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "base/mem.h"
#include "controllers/admission.h"
#include "controllers/controllers_int.h"
#include "store/store.h"

static double metric(ty_admission *a, const char *name)
{
    TY_AUTOFREE char *m = ty_admission_metrics(a);
    char pat[128];
    snprintf(pat, sizeof pat, "\n%s ", name);
    const char *p = m ? strstr(m, pat) : NULL;
    return p ? strtod(p + strlen(pat), NULL) : -1;
}

static double mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Runs the loop until no pass has run for 100 ms; returns how many ran. */
static int settle(uv_loop_t *loop, ty_admission *a)
{
    double p0 = metric(a, "trainyard_admission_passes_total"), seen = p0;
    double last = mono_ms();
    while (mono_ms() - last < 100) {
        uv_run(loop, UV_RUN_NOWAIT);
        double p = metric(a, "trainyard_admission_passes_total");
        if (p != seen) {
            seen = p;
            last = mono_ms();
        }
        struct timespec nap = {0, 500000};
        nanosleep(&nap, NULL);
    }
    return (int)(seen - (p0 < 0 ? 0 : p0));
}

static void put(ty_store *s, const char *resource, const char *text)
{
    json_t *obj = json_loads(text, 0, NULL);
    cr_assert_not_null(obj, "bad fixture: %s", text);
    ty_error err = TY_ERROR_INIT;
    cr_assert_eq(ty_store_create(s, resource, obj, NULL, &err), 0, "%s: %s", resource, err.msg);
    json_decref(obj);
}

/* A copy of the stored object, changed by `edit` (a JSON object merged into it at `member`),
 * written back (its status when `status`). */
static void edit(ty_store *s, const char *resource, const char *ns, const char *name,
                 const char *member, const char *merge, bool status)
{
    json_t *stored = ty_store_get(s, resource, ns, name);
    cr_assert_not_null(stored);
    json_t *obj = json_deep_copy(stored);
    json_decref(stored);
    json_t *at = json_object_get(obj, member);
    if (!at) {
        at = json_object();
        json_object_set_new(obj, member, at);
    }
    json_t *m = json_loads(merge, 0, NULL);
    cr_assert_not_null(m, "bad fixture: %s", merge);
    json_object_update_recursive(at, m);
    json_decref(m);
    ty_error err = TY_ERROR_INIT;
    int rc = status ? ty_store_update_status(s, resource, obj, NULL, &err)
                    : ty_store_update(s, resource, obj, NULL, &err);
    cr_assert_eq(rc, 0, "%s %s: %s", resource, name, err.msg);
    json_decref(obj);
}

static bool reserved(ty_store *s, const char *name)
{
    json_t *wl = ty_store_get(s, "workloads", "ml", name);
    bool r = wl && ty_kueue_workload_reserved(wl);
    json_decref(wl);
    return r;
}

#define POD(name, node, gpus, phase)                                                           \
    "{\"metadata\":{\"name\":\"" name "\",\"namespace\":\"ml\"},\"spec\":{" node              \
    "\"containers\":[{\"name\":\"c\",\"resources\":{\"limits\":{\"nvidia.com/gpu\":\"" gpus   \
    "\"}}}]},\"status\":{\"phase\":\"" phase "\"}}"

Test(admission, changes_that_cannot_alter_a_pass_run_none)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    ty_store *s = ty_store_new();
    put(s, "namespaces", "{\"metadata\":{\"name\":\"ml\"}}");
    put(s, "resourceflavors", "{\"metadata\":{\"name\":\"gpu\"},\"spec\":{}}");
    put(s, "clusterqueues",
        "{\"metadata\":{\"name\":\"cq\"},\"spec\":{\"namespaceSelector\":{},\"resourceGroups\":"
        "[{\"coveredResources\":[\"nvidia.com/gpu\"],\"flavors\":[{\"name\":\"gpu\","
        "\"resources\":[{\"name\":\"nvidia.com/gpu\",\"nominalQuota\":\"8\"}]}]}]}}");
    put(s, "localqueues", "{\"metadata\":{\"name\":\"main\",\"namespace\":\"ml\"},\"spec\":"
                          "{\"clusterQueue\":\"cq\"}}");
    put(s, "nodes", "{\"metadata\":{\"name\":\"n1\"},\"status\":{\"allocatable\":"
                    "{\"nvidia.com/gpu\":\"8\"}}}");
    put(s, "workloads",
        "{\"metadata\":{\"name\":\"big\",\"namespace\":\"ml\"},\"spec\":{\"queueName\":\"main\","
        "\"podSets\":[{\"name\":\"w\",\"count\":1,\"template\":{\"spec\":{\"containers\":[{"
        "\"name\":\"c\",\"resources\":{\"limits\":{\"nvidia.com/gpu\":\"6\"}}}]}}}]}}");
    ty_admission *a = ty_admission_new(&loop, s, NULL);
    cr_assert_geq(settle(&loop, a), 1);
    cr_assert(reserved(s, "big"));
    cr_assert_eq(settle(&loop, a), 0, "the queue status it wrote ran no further pass");

    put(s, "pods", POD("unbound", "", "4", "Pending"));
    cr_assert_eq(settle(&loop, a), 0, "a pod on no node");
    edit(s, "nodes", NULL, "n1", "status", "{\"conditions\":[{\"type\":\"Ready\","
                                           "\"status\":\"True\"}]}", true);
    cr_assert_eq(settle(&loop, a), 0, "a node's heartbeat");
    put(s, "namespaces", "{\"metadata\":{\"name\":\"other\"}}");
    cr_assert_eq(settle(&loop, a), 0, "a namespace without labels");
    put(s, "pods", POD("ended", "\"nodeName\":\"n1\",", "4", "Succeeded"));
    cr_assert_eq(settle(&loop, a), 0, "a pod that has ended");

    /* The same kinds of change, when they matter: a loose pod bound to n1 holds 2 GPUs, so a
     * workload of 2 more waits; the pod ends, and it goes. */
    edit(s, "pods", "ml", "unbound", "spec", "{\"nodeName\":\"n1\"}", false);
    cr_assert_geq(settle(&loop, a), 1, "a pod bound to a node");
    cr_assert_geq(metric(a, "trainyard_admission_skipped_events_total"), 5);
    put(s, "workloads",
        "{\"metadata\":{\"name\":\"two\",\"namespace\":\"ml\"},\"spec\":{\"queueName\":\"main\","
        "\"podSets\":[{\"name\":\"w\",\"count\":1,\"template\":{\"spec\":{\"containers\":[{"
        "\"name\":\"c\",\"resources\":{\"limits\":{\"nvidia.com/gpu\":\"2\"}}}]}}}]}}");
    cr_assert_eq(settle(&loop, a), 1, "a workload that waits: not another for the reason written");
    cr_assert_not(reserved(s, "two"), "6 + 4 of 8 GPUs are held");
    json_t *two = ty_store_get(s, "workloads", "ml", "two");
    cr_assert(ty_kueue_condition_is(two, "QuotaReserved", "False"));
    json_decref(two);
    edit(s, "pods", "ml", "unbound", "status", "{\"phase\":\"Failed\"}", true);
    cr_assert_geq(settle(&loop, a), 1, "a bound pod that ends");
    cr_assert(reserved(s, "two"));
    /* A selector on the queue; the namespace's labels then decide. */
    edit(s, "clusterqueues", NULL, "cq", "spec",
         "{\"namespaceSelector\":{\"matchLabels\":{\"team\":\"ml\"}}}", false);
    cr_assert_geq(settle(&loop, a), 1, "a queue's spec");
    put(s, "workloads",
        "{\"metadata\":{\"name\":\"sel\",\"namespace\":\"ml\"},\"spec\":{\"queueName\":\"main\","
        "\"podSets\":[{\"name\":\"w\",\"count\":1,\"template\":{\"spec\":{\"containers\":[{"
        "\"name\":\"c\",\"resources\":{\"limits\":{\"nvidia.com/gpu\":\"0\",\"cpu\":\"0\"}}}]}}}"
        "]}}");
    settle(&loop, a);
    cr_assert_not(reserved(s, "sel"), "the namespace does not match");
    edit(s, "namespaces", NULL, "ml", "metadata", "{\"labels\":{\"team\":\"ml\"}}", false);
    cr_assert_geq(settle(&loop, a), 1, "a namespace's labels");
    cr_assert(reserved(s, "sel"));
    /* Stopping the queue changes its status only: one pass, not another for that status. */
    edit(s, "clusterqueues", NULL, "cq", "spec", "{\"stopPolicy\":\"Hold\"}", false);
    cr_assert_eq(settle(&loop, a), 1, "a queue's spec, then the status the pass wrote");
    json_t *cq = ty_store_get(s, "clusterqueues", NULL, "cq");
    cr_assert(ty_kueue_condition_is(cq, "Active", "False"));
    json_decref(cq);

    ty_admission_free(a);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    ty_store_free(s);
}
