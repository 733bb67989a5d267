/* The stored Kueue objects as the scheduling core sees them (controllers/kueue_snapshot.c):
 * routing of pending workloads, quotas read from quantities, node usage of unqueued pods, and
 * admitted workloads counted through their placement. */
#include <criterion/criterion.h>
#include <string.h>

#include "controllers/controllers_int.h"

static json_t *parse(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, 0, &e);
    cr_assert_not_null(v, "bad fixture: %s: %s", e.text, text);
    return v;
}

#define FLAVOR "{\"metadata\":{\"name\":\"gpu\"},\"spec\":{\"nodeLabels\":{\"pool\":\"a100\"}}}"
#define CQ(name, gpus, extra)                                                                  \
    "{\"metadata\":{\"name\":\"" name "\"},\"spec\":{\"namespaceSelector\":{\"matchLabels\":" \
    "{\"team\":\"ml\"}},\"resourceGroups\":[{\"coveredResources\":[\"nvidia.com/gpu\"],"      \
    "\"flavors\":[{\"name\":\"gpu\",\"resources\":[{\"name\":\"nvidia.com/gpu\","              \
    "\"nominalQuota\":\"" gpus "\"}]}]}]" extra "}}"
#define LQ(ns, name, cq)                                                                       \
    "{\"metadata\":{\"name\":\"" name "\",\"namespace\":\"" ns "\"},\"spec\":{\"clusterQueue\":\"" \
    cq "\"}}"
#define NODE(name, gpus)                                                                       \
    "{\"metadata\":{\"name\":\"" name "\",\"labels\":{\"pool\":\"a100\"}},\"status\":"         \
    "{\"allocatable\":{\"cpu\":\"8\",\"memory\":\"16Gi\",\"nvidia.com/gpu\":\"" gpus "\"}}}"
#define POD_SET(gpus, count)                                                                   \
    "{\"name\":\"worker\",\"count\":" count ",\"template\":{\"spec\":{\"containers\":"         \
    "[{\"name\":\"c\",\"resources\":{\"limits\":{\"nvidia.com/gpu\":\"" gpus "\"}}}]}}}"
#define WL(ns, name, queue, gpus, count, status)                                               \
    "{\"metadata\":{\"name\":\"" name "\",\"namespace\":\"" ns "\",\"creationTimestamp\":"     \
    "\"2026-01-01T00:00:00Z\",\"ownerReferences\":[{\"kind\":\"PyTorchJob\",\"name\":\"" name  \
    "\",\"uid\":\"u-" name "\",\"controller\":true}]},\"spec\":{\"queueName\":\"" queue        \
    "\",\"podSets\":[" POD_SET(gpus, count) "]}" status "}"
#define ADMITTED_ON(node, count)                                                               \
    ",\"status\":{\"conditions\":[{\"type\":\"QuotaReserved\",\"status\":\"True\"},"           \
    "{\"type\":\"Admitted\",\"status\":\"True\"}],\"admission\":{\"clusterQueue\":\"cq\","     \
    "\"podSetAssignments\":[{\"name\":\"worker\",\"flavors\":{\"nvidia.com/gpu\":\"gpu\"},"     \
    "\"count\":" count ",\"topologyAssignment\":{\"levels\":[\"kubernetes.io/hostname\"],"     \
    "\"domains\":[{\"values\":[\"" node "\"],\"count\":" count "}]}}]}}"

typedef struct {
    ty_kueue_objects o;
    ty_kueue_route *routes;
    json_t *inactive;
    ty_sched *s;
} snap;

static void build(snap *x, const char *flavors, const char *cqs, const char *lqs,
                  const char *workloads, const char *nodes, const char *pods)
{
    x->o.flavors = parse(flavors);
    x->o.cluster_queues = parse(cqs);
    x->o.local_queues = parse(lqs);
    x->o.workloads = parse(workloads);
    x->o.nodes = parse(nodes);
    x->o.pods = parse(pods);
    x->o.namespaces = parse("[{\"metadata\":{\"name\":\"ml\",\"labels\":{\"team\":\"ml\"}}},"
                            "{\"metadata\":{\"name\":\"web\"}}]");
    x->routes = calloc(json_array_size(x->o.workloads) + 1, sizeof *x->routes);
    x->inactive = json_object();
    x->s = ty_kueue_snapshot(&x->o, false, 1000, x->routes, x->inactive, NULL);
    ty_sched_run(x->s);
}

static void done(snap *x)
{
    for (size_t i = 0; i < json_array_size(x->o.workloads); i++)
        free(x->routes[i].problem);
    free(x->routes);
    json_decref(x->inactive);
    ty_sched_free(x->s);
    ty_kueue_objects_free(&x->o);
}

static ty_sched_verdict verdict(snap *x, const char *key)
{
    const ty_sched_decision *d = ty_sched_decision_of(x->s, key);
    cr_assert_not_null(d, "no decision for %s", key);
    return d->verdict;
}

Test(kueue_snapshot, routes_name_what_is_missing)
{
    snap x = {0};
    build(&x, "[" FLAVOR "]", "[" CQ("cq", "8", "") "]",
          "[" LQ("ml", "main", "cq") "," LQ("ml", "orphan", "gone") "," LQ("web", "main", "cq") "]",
          "[" WL("ml", "a", "nope", "1", "1", "") "," WL("ml", "b", "orphan", "1", "1", "") ","
          WL("web", "c", "main", "1", "1", "") "," WL("ml", "d", "main", "1", "1", "") "]",
          "[" NODE("n1", "8") "]", "[]");
    cr_assert_str_eq(x.routes[0].problem, "LocalQueue nope doesn't exist");
    cr_assert_str_eq(x.routes[1].problem, "ClusterQueue gone doesn't exist");
    cr_assert_str_eq(x.routes[2].problem,
                     "Workload namespace doesn't match ClusterQueue selector");
    cr_assert_null(x.routes[3].problem);
    cr_assert_str_eq(x.routes[3].cluster_queue, "cq");
    cr_assert_eq(verdict(&x, "ml/d"), TY_SCHED_ADMIT);
    cr_assert_null(ty_sched_decision_of(x.s, "ml/a"), "an unroutable workload is not scheduled");
    done(&x);
}

Test(kueue_snapshot, a_missing_flavor_makes_the_queue_inactive)
{
    snap x = {0};
    build(&x, "[]", "[" CQ("cq", "8", "") "]", "[" LQ("ml", "main", "cq") "]",
          "[" WL("ml", "a", "main", "1", "1", "") "]", "[" NODE("n1", "8") "]", "[]");
    const json_t *why = json_object_get(x.inactive, "cq");
    cr_assert_str_eq(json_string_value(json_object_get(why, "reason")), "FlavorNotFound");
    cr_assert_str_eq(json_string_value(json_object_get(why, "message")),
                     "references missing ResourceFlavor(s): [gpu]");
    cr_assert_str_eq(x.routes[0].problem, "ClusterQueue cq is inactive");
    done(&x);
}

Test(kueue_snapshot, quota_is_read_from_quantities)
{
    snap x = {0};
    /* 8 GPUs of quota, 16 on the nodes: a gang of 3 x 4 waits on quota, 2 x 4 goes. */
    build(&x, "[" FLAVOR "]", "[" CQ("cq", "8", "") "]", "[" LQ("ml", "main", "cq") "]",
          "[" WL("ml", "big", "main", "4", "3", "") "," WL("ml", "fits", "main", "4", "2", "") "]",
          "[" NODE("n1", "8") "," NODE("n2", "8") "]", "[]");
    cr_assert_eq(verdict(&x, "ml/big"), TY_SCHED_WAIT);
    cr_assert(strstr(ty_sched_decision_of(x.s, "ml/big")->message, "nvidia.com/gpu"),
              "%s", ty_sched_decision_of(x.s, "ml/big")->message);
    cr_assert_eq(verdict(&x, "ml/fits"), TY_SCHED_ADMIT);
    cr_assert_eq(ty_sched_usage(x.s, "cq", "gpu", "nvidia.com/gpu"), 8000);
    done(&x);
}

Test(kueue_snapshot, unqueued_pods_use_their_node_and_admitted_ones_their_placement)
{
    snap x = {0};
    /* n1 runs an unqueued pod with 6 GPUs; n2 holds an admitted workload's 6 GPUs, whose
     * bound pod must not be counted a second time. A pending 4-GPU pod fits nowhere; a
     * 2-GPU pod fits on either. */
    const char *pods =
        "[{\"metadata\":{\"name\":\"loose\",\"namespace\":\"ml\"},\"spec\":{\"nodeName\":\"n1\","
        "\"containers\":[{\"name\":\"c\",\"resources\":{\"limits\":{\"nvidia.com/gpu\":\"6\"}}}]},"
        "\"status\":{\"phase\":\"Running\"}},"
        "{\"metadata\":{\"name\":\"held-worker-0\",\"namespace\":\"ml\",\"labels\":"
        "{\"training.kubeflow.org/job-name\":\"held\","
        "\"training.kubeflow.org/operator-name\":\"pytorchjob-controller\"},"
        "\"ownerReferences\":[{\"apiVersion\":\"kubeflow.org/v1\",\"kind\":\"PyTorchJob\","
        "\"name\":\"held\",\"uid\":\"u-held\",\"controller\":true}]},"
        "\"spec\":{\"nodeName\":\"n2\","
        "\"containers\":[{\"name\":\"c\",\"resources\":{\"limits\":{\"nvidia.com/gpu\":\"6\"}}}]},"
        "\"status\":{\"phase\":\"Running\"}},"
        "{\"metadata\":{\"name\":\"ended\",\"namespace\":\"ml\"},\"spec\":{\"nodeName\":\"n2\","
        "\"containers\":[{\"name\":\"c\",\"resources\":{\"limits\":{\"nvidia.com/gpu\":\"8\"}}}]},"
        "\"status\":{\"phase\":\"Succeeded\"}}]";
    build(&x, "[" FLAVOR "]", "[" CQ("cq", "32", "") "]", "[" LQ("ml", "main", "cq") "]",
          "[" WL("ml", "held", "main", "6", "1", ADMITTED_ON("n2", "1")) ","
          WL("ml", "four", "main", "4", "1", "") "," WL("ml", "two", "main", "2", "1", "") "]",
          "[" NODE("n1", "8") "," NODE("n2", "8") "]", pods);
    cr_assert_null(ty_sched_decision_of(x.s, "ml/held"), "admitted before: no decision");
    cr_assert_eq(verdict(&x, "ml/four"), TY_SCHED_WAIT);
    cr_assert_eq(verdict(&x, "ml/two"), TY_SCHED_ADMIT);
    /* The quota counts the admitted workload and the new one, not the unqueued pod. */
    cr_assert_eq(ty_sched_usage(x.s, "cq", "gpu", "nvidia.com/gpu"), 8000);
    done(&x);
}

Test(kueue_snapshot, finished_workloads_hold_nothing)
{
    snap x = {0};
    build(&x, "[" FLAVOR "]", "[" CQ("cq", "8", "") "]", "[" LQ("ml", "main", "cq") "]",
          "[" WL("ml", "old", "main", "8", "1",
                 ",\"status\":{\"conditions\":[{\"type\":\"QuotaReserved\",\"status\":\"True\"},"
                 "{\"type\":\"Finished\",\"status\":\"True\"}],\"admission\":{\"clusterQueue\":"
                 "\"cq\",\"podSetAssignments\":[]}}") ","
          WL("ml", "new", "main", "8", "1", "") "]",
          "[" NODE("n1", "8") "]", "[]");
    cr_assert_eq(verdict(&x, "ml/new"), TY_SCHED_ADMIT);
    done(&x);
}

/* Kueue's AdmissionChecksForWorkload: the queue's admissionChecks, and the strategy's rules
 * for every flavor or for a flavor the admission uses; sorted, each once. */
Test(kueue_snapshot, the_checks_of_a_workload_follow_the_strategy_by_flavor)
{
    json_t *cq = parse("{\"metadata\":{\"name\":\"cq\"},\"spec\":{\"admissionChecks\":"
                       "[\"zeta\",\"alpha\"],\"admissionChecksStrategy\":{\"admissionChecks\":["
                       "{\"name\":\"spot-only\",\"onFlavors\":[\"spot\"]},"
                       "{\"name\":\"everywhere\"},{\"name\":\"alpha\"}]}}}");
    json_t *on_demand = parse("{\"podSetAssignments\":[{\"name\":\"w\",\"flavors\":"
                              "{\"cpu\":\"on-demand\"}}]}");
    json_t *spot = parse("{\"podSetAssignments\":[{\"name\":\"w\",\"flavors\":"
                         "{\"cpu\":\"on-demand\",\"nvidia.com/gpu\":\"spot\"}}]}");
    json_t *r = ty_kueue_checks_for(cq, on_demand);
    char *a = json_dumps(r, JSON_COMPACT);
    cr_assert_str_eq(a, "[\"alpha\",\"everywhere\",\"zeta\"]");
    free(a);
    json_decref(r);
    r = ty_kueue_checks_for(cq, spot);
    a = json_dumps(r, JSON_COMPACT);
    cr_assert_str_eq(a, "[\"alpha\",\"everywhere\",\"spot-only\",\"zeta\"]");
    free(a);
    json_decref(r);
    /* No admission: every check the queue names (what it needs to be active). */
    r = ty_kueue_checks_for(cq, NULL);
    a = json_dumps(r, JSON_COMPACT);
    cr_assert_str_eq(a, "[\"alpha\",\"everywhere\",\"spot-only\",\"zeta\"]");
    free(a);
    json_decref(r);
    json_decref(cq);
    json_decref(on_demand);
    json_decref(spot);
}

/* A queue whose checks are missing or not Active is left out, and says which, in Kueue's
 * order: flavors, missing checks, inactive checks. */
Test(kueue_snapshot, missing_and_inactive_admission_checks_make_the_queue_inactive)
{
    snap x = {0};
    x.o.admission_checks = parse(
        "[{\"metadata\":{\"name\":\"idle\"},\"spec\":{\"controllerName\":\"c\"}},"
        "{\"metadata\":{\"name\":\"ok\"},\"spec\":{\"controllerName\":\"c\"},\"status\":"
        "{\"conditions\":[{\"type\":\"Active\",\"status\":\"True\"}]}}]");
    build(&x, "[]", "[" CQ("cq", "8", ",\"admissionChecks\":[\"ok\",\"idle\",\"gone\"]") ","
                    CQ("good", "8", ",\"admissionChecks\":[\"ok\"]") "]",
          "[" LQ("ml", "main", "cq") "]", "[" WL("ml", "a", "main", "1", "1", "") "]",
          "[" NODE("n1", "8") "]", "[]");
    const json_t *why = json_object_get(x.inactive, "cq");
    cr_assert_str_eq(json_string_value(json_object_get(why, "reason")), "FlavorNotFound");
    cr_assert_str_eq(json_string_value(json_object_get(why, "message")),
                     "references missing ResourceFlavor(s): [gpu], references missing "
                     "AdmissionCheck(s): [gone], references inactive AdmissionCheck(s): [idle]");
    why = json_object_get(x.inactive, "good");
    cr_assert_str_eq(json_string_value(json_object_get(why, "message")),
                     "references missing ResourceFlavor(s): [gpu]");
    done(&x);
}
