/* The snapshot cache (controllers/controllers_int.h, ty_kueue_cache): after random sequences of
 * changes to a store's Workloads, queues, flavors, namespaces, nodes and pods, a snapshot built
 * with a cache kept across all of them decides exactly as one built from nothing, routes the
 * same way, and reports the same inactive queues; and the cache does reuse what it parsed. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "base/mem.h"
#include "controllers/controllers_int.h"

static uint64_t rng = 1;
static uint32_t rnd(uint32_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng % n);
}

static json_t *parse(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, 0, &e);
    cr_assert_not_null(v, "bad fixture: %s: %s", e.text, text);
    return v;
}

static void put(ty_store *s, const char *resource, const char *text)
{
    json_t *obj = parse(text);
    ty_error err = TY_ERROR_INIT;
    cr_assert_eq(ty_store_create(s, resource, obj, NULL, &err), 0, "%s: %s", resource, err.msg);
    json_decref(obj);
}

static void update(ty_store *s, const char *resource, json_t *obj, bool status)
{
    ty_error err = TY_ERROR_INIT;
    int rc = status ? ty_store_update_status(s, resource, obj, NULL, &err)
                    : ty_store_update(s, resource, obj, NULL, &err);
    cr_assert_eq(rc, 0, "%s %s: %s", resource, ty_obj_name(obj), err.msg);
}

/* The store hands out its own objects: what is changed here is a copy. */
static json_t *get(ty_store *s, const char *resource, const char *ns, const char *name)
{
    json_t *obj = ty_store_get(s, resource, ns, name);
    json_t *copy = json_deep_copy(obj);
    json_decref(obj);
    return copy;
}

/* A copy of a random stored object of a resource, or NULL when there is none. */
static json_t *any(ty_store *s, const char *resource)
{
    json_t *all = ty_store_list(s, resource, NULL);
    json_t *one = json_array_size(all)
                      ? json_deep_copy(json_array_get(all, rnd((uint32_t)json_array_size(all))))
                      : NULL;
    json_decref(all);
    return one;
}

static const char *const nodes[] = {"n1", "n2", "n3", "n4"};

static void create_workload(ty_store *s, int i)
{
    const char *queues[] = {"main", "main", "other", "nope"};
    char text[2048];
    int gpus = 1 + (int)rnd(8), count = 1 + (int)rnd(3);
    snprintf(text, sizeof text,
             "{\"metadata\":{\"name\":\"w%d\",\"namespace\":\"%s\",\"ownerReferences\":[{"
             "\"apiVersion\":\"kubeflow.org/v1\",\"kind\":\"PyTorchJob\",\"name\":\"w%d\","
             "\"uid\":\"u%d\",\"controller\":true}]},\"spec\":{\"queueName\":\"%s\","
             "\"priority\":%u,\"podSets\":[{\"name\":\"worker\",\"count\":%d,\"template\":"
             "{\"spec\":{\"containers\":[{\"name\":\"c\",\"resources\":{\"limits\":"
             "{\"nvidia.com/gpu\":\"%d\",\"cpu\":\"1\"}}}]}}}%s]}}",
             i, rnd(3) ? "ml" : "web", i, i, queues[rnd(4)], rnd(4), count, gpus,
             rnd(4) ? ""
                    : ",{\"name\":\"master\",\"count\":1,\"template\":{\"spec\":{\"containers\":"
                      "[{\"name\":\"c\",\"resources\":{\"limits\":{\"cpu\":\"2\"}}}]}}}");
    put(s, "workloads", text);
}

/* Writes an ADMIT decision of a fresh snapshot back as status.admission, as the admission
 * controller does. */
static void admit_one(ty_store *s, ty_sched *fresh, int64_t now_ns)
{
    for (size_t i = 0; i < ty_sched_n_decisions(fresh); i++) {
        const ty_sched_decision *d = ty_sched_decision_at(fresh, i);
        if (d->verdict != TY_SCHED_ADMIT)
            continue;
        const char *slash = strchr(d->workload, '/');
        TY_AUTOFREE char *ns = strndup(d->workload, (size_t)(slash - d->workload));
        json_t *wl = get(s, "workloads", ns, slash + 1);
        cr_assert_not_null(wl);
        json_t *psas = json_array();
        const json_t *sets = json_object_get(json_object_get(wl, "spec"), "podSets");
        for (size_t p = 0; p < d->n_pod_sets; p++) {
            const json_t *ps = json_array_get(sets, p);
            json_t *req = ty_kueue_pod_requests(
                json_object_get(json_object_get(ps, "template"), "spec"));
            json_t *flavors = json_object();
            size_t r = 0;
            const char *k;
            json_t *v;
            json_object_foreach(req, k, v)
                json_object_set_new(flavors, k, json_string(d->pod_sets[p].flavors[r++]));
            json_t *domains = json_array();
            json_int_t count = json_integer_value(json_object_get(ps, "count"));
            for (json_int_t n = 0; n < count; n++)
                json_array_append_new(domains, json_pack("{s:[s],s:i}", "values",
                                                         d->pod_sets[p].nodes[n], "count", 1));
            json_array_append_new(psas, json_pack("{s:O,s:o,s:I,s:{s:[s],s:o}}", "name",
                                                  json_object_get(ps, "name"), "flavors",
                                                  flavors, "count", count, "topologyAssignment",
                                                  "levels", "kubernetes.io/hostname", "domains",
                                                  domains));
            json_decref(req);
        }
        json_object_set_new(wl, "status", json_pack("{s:{s:s,s:o}}", "admission",
                                                     "clusterQueue", d->cluster_queue,
                                                     "podSetAssignments", psas));
        ty_kueue_set_condition(wl, "QuotaReserved", "True", "QuotaReserved", "", now_ns);
        ty_kueue_set_condition(wl, "Admitted", "True", "Admitted", "", now_ns);
        update(s, "workloads", wl, true);
        json_decref(wl);
        return;
    }
}

static void change(ty_store *s, int step, ty_sched *fresh)
{
    int64_t now_ns = (1767225600LL + step) * 1000000000LL;
    json_t *x = NULL;
    char text[1024];
    switch (rnd(16)) {
    case 0:
    case 1:
    case 2:
        create_workload(s, step);
        break;
    case 3:
    case 4:
        admit_one(s, fresh, now_ns);
        break;
    case 5: /* evicted, or finished */
        if ((x = any(s, "workloads")) && ty_kueue_workload_reserved(x)) {
            ty_kueue_set_condition(x, rnd(2) ? "Evicted" : "Finished", "True", "Test", "",
                                   now_ns);
            update(s, "workloads", x, true);
        }
        break;
    case 6:
        if ((x = any(s, "workloads")))
            ty_store_delete(s, "workloads", ty_obj_namespace(x), ty_obj_name(x), 0, NULL);
        break;
    case 7:
        if ((x = any(s, "workloads"))) {
            json_object_set_new(json_object_get(x, "spec"), "active", json_boolean(rnd(2)));
            update(s, "workloads", x, false);
        }
        break;
    case 8: /* backed off, requeued */
        if ((x = any(s, "workloads")) && !ty_kueue_workload_reserved(x)) {
            if (!json_is_object(json_object_get(x, "status")))
                json_object_set_new(x, "status", json_object());
            json_object_set_new(json_object_get(x, "status"), "requeueState",
                                json_pack("{s:s}", "requeueAt",
                                          rnd(2) ? "2026-01-01T00:00:00Z"
                                                 : "2027-01-01T00:00:00Z"));
            ty_kueue_set_condition(x, "Requeued", "True", "Test", "", now_ns);
            update(s, "workloads", x, true);
        }
        break;
    case 9:
        if ((x = get(s, "clusterqueues", NULL, rnd(2) ? "cq" : "other"))) {
            json_t *q = json_array_get(json_object_get(json_array_get(json_object_get(
                json_array_get(json_object_get(json_object_get(x, "spec"), "resourceGroups"), 0),
                "flavors"), 0), "resources"), 0);
            json_object_set_new(q, "nominalQuota", json_sprintf("%u", 4 * rnd(5)));
            json_object_set_new(json_object_get(x, "spec"), "stopPolicy",
                                json_string(rnd(4) ? "None" : "Hold"));
            update(s, "clusterqueues", x, false);
        }
        break;
    case 10:
        if ((x = get(s, "namespaces", NULL, "web"))) {
            json_object_set_new(json_object_get(x, "metadata"), "labels",
                                rnd(2) ? json_pack("{s:s}", "team", "ml") : json_object());
            update(s, "namespaces", x, false);
        }
        break;
    case 11: /* a pod on a node: loose, or of a queued job */
        snprintf(text, sizeof text,
                 "{\"metadata\":{\"name\":\"p%d\",\"namespace\":\"ml\",\"labels\":{"
                 "\"training.kubeflow.org/job-name\":\"w%d\"}},\"spec\":{\"nodeName\":\"%s\","
                 "\"containers\":[{\"name\":\"c\",\"resources\":{\"limits\":{\"nvidia.com/gpu\":"
                 "\"%u\"}}}]},\"status\":{\"phase\":\"%s\"}}",
                 step, (int)rnd((uint32_t)step + 1), nodes[rnd(4)], 1 + rnd(4),
                 rnd(3) ? "Running" : "Succeeded");
        put(s, "pods", text);
        break;
    case 12:
        if ((x = any(s, "pods")))
            ty_store_delete(s, "pods", ty_obj_namespace(x), ty_obj_name(x), 0, NULL);
        break;
    case 13:
        if ((x = get(s, "nodes", NULL, nodes[rnd(4)]))) {
            json_object_set_new(json_object_get(json_object_get(x, "status"), "allocatable"),
                                "nvidia.com/gpu", json_sprintf("%u", 4 + 4 * rnd(2)));
            update(s, "nodes", x, true);
        }
        break;
    case 14:
        if ((x = get(s, "localqueues", "ml", "other"))) {
            json_object_set_new(json_object_get(x, "spec"), "stopPolicy",
                                json_string(rnd(2) ? "None" : "Hold"));
            update(s, "localqueues", x, false);
        }
        break;
    default:
        if ((x = get(s, "resourceflavors", NULL, "spare")))
            ty_store_delete(s, "resourceflavors", NULL, "spare", 0, NULL);
        else
            put(s, "resourceflavors", "{\"metadata\":{\"name\":\"spare\"},\"spec\":{}}");
        break;
    }
    json_decref(x);
}

typedef struct built {
    ty_kueue_objects o;
    ty_kueue_route *routes;
    json_t *inactive;
    ty_sched *s;
} built;

static void build(built *b, ty_store *s, ty_kueue_cache *cache, int step)
{
    ty_kueue_objects_load(s, &b->o, NULL);
    b->routes = calloc(json_array_size(b->o.workloads) + 1, sizeof *b->routes);
    b->inactive = json_object();
    b->s = ty_kueue_snapshot(&b->o, step % 2 == 0, (1767225600LL + step) * 1000, b->routes,
                             b->inactive, cache);
    ty_sched_run(b->s);
}

static void done(built *b)
{
    for (size_t i = 0; i < json_array_size(b->o.workloads); i++)
        free(b->routes[i].problem);
    free(b->routes);
    json_decref(b->inactive);
    ty_sched_free(b->s);
    ty_kueue_objects_free(&b->o);
}

static bool same(const char *x, const char *y)
{
    return (!x && !y) || (x && y && strcmp(x, y) == 0);
}

static void expect_same(const built *fresh, const built *cached, int step)
{
    size_t nw = json_array_size(fresh->o.workloads);
    cr_assert_eq(json_array_size(cached->o.workloads), nw);
    for (size_t i = 0; i < nw; i++) {
        cr_assert(same(fresh->routes[i].cluster_queue, cached->routes[i].cluster_queue),
                  "step %d: route %zu", step, i);
        cr_assert(same(fresh->routes[i].problem, cached->routes[i].problem),
                  "step %d: problem %zu: %s / %s", step, i, fresh->routes[i].problem,
                  cached->routes[i].problem);
    }
    cr_assert(json_equal(fresh->inactive, cached->inactive), "step %d: inactive", step);
    size_t nd = ty_sched_n_decisions(fresh->s);
    cr_assert_eq(ty_sched_n_decisions(cached->s), nd, "step %d: decisions", step);
    for (size_t i = 0; i < nd; i++) {
        const ty_sched_decision *a = ty_sched_decision_at(fresh->s, i);
        const ty_sched_decision *b = ty_sched_decision_at(cached->s, i);
        cr_assert_str_eq(a->workload, b->workload, "step %d", step);
        cr_assert_eq(a->verdict, b->verdict, "step %d: %s", step, a->workload);
        cr_assert(same(a->cluster_queue, b->cluster_queue), "step %d", step);
        cr_assert(same(a->message, b->message), "step %d: %s / %s", step, a->message,
                  b->message);
        cr_assert_eq(a->borrowing, b->borrowing);
        cr_assert_eq(a->n_pod_sets, b->n_pod_sets);
        for (size_t p = 0; a->verdict == TY_SCHED_ADMIT && p < a->n_pod_sets; p++) {
            cr_assert(same(a->pod_sets[p].flavors[0], b->pod_sets[p].flavors[0]));
            cr_assert(same(a->pod_sets[p].nodes[0], b->pod_sets[p].nodes[0]));
        }
        cr_assert_eq(a->n_victims, b->n_victims, "step %d: victims of %s", step, a->workload);
        for (size_t v = 0; v < a->n_victims; v++) {
            cr_assert_str_eq(a->victims[v].workload, b->victims[v].workload);
            cr_assert_eq(a->victims[v].reason, b->victims[v].reason);
        }
    }
    ty_sched_stats x, y;
    ty_sched_stats_get(fresh->s, &x);
    ty_sched_stats_get(cached->s, &y);
    cr_assert_eq(x.admitted, y.admitted);
    cr_assert_eq(x.waiting, y.waiting);
    cr_assert_eq(x.preempting, y.preempting);
    cr_assert_eq(x.pack_free_whole_milli, y.pack_free_whole_milli);
    cr_assert_eq(x.pack_free_partial_milli, y.pack_free_partial_milli);
    cr_assert_eq(ty_sched_usage(fresh->s, "cq", "gpu", "nvidia.com/gpu"),
                 ty_sched_usage(cached->s, "cq", "gpu", "nvidia.com/gpu"));
}

static void setup(ty_store *s)
{
    ty_error err = TY_ERROR_INIT;
    cr_assert_eq(ty_store_ensure_namespace(s, "default", &err), 0);
    put(s, "namespaces", "{\"metadata\":{\"name\":\"ml\",\"labels\":{\"team\":\"ml\"}}}");
    put(s, "namespaces", "{\"metadata\":{\"name\":\"web\"}}");
    put(s, "resourceflavors", "{\"metadata\":{\"name\":\"gpu\"},\"spec\":{}}");
    const char *cq =
        "{\"metadata\":{\"name\":\"%s\"},\"spec\":{\"cohort\":\"all\",\"namespaceSelector\":"
        "{\"matchLabels\":{\"team\":\"ml\"}},\"preemption\":{\"withinClusterQueue\":"
        "\"LowerPriority\",\"reclaimWithinCohort\":\"Any\"},\"resourceGroups\":[{"
        "\"coveredResources\":[\"nvidia.com/gpu\",\"cpu\"],\"flavors\":[{\"name\":\"gpu\","
        "\"resources\":[{\"name\":\"nvidia.com/gpu\",\"nominalQuota\":\"8\"},{\"name\":"
        "\"cpu\",\"nominalQuota\":\"64\"}]}%s]}]}}";
    char text[1024];
    snprintf(text, sizeof text, cq, "cq", "");
    put(s, "clusterqueues", text);
    snprintf(text, sizeof text, cq, "other",
             ",{\"name\":\"spare\",\"resources\":[{\"name\":\"nvidia.com/gpu\",\"nominalQuota\":"
             "\"4\"},{\"name\":\"cpu\",\"nominalQuota\":\"8\"}]}");
    put(s, "clusterqueues", text);
    put(s, "localqueues",
        "{\"metadata\":{\"name\":\"main\",\"namespace\":\"ml\"},\"spec\":{\"clusterQueue\":"
        "\"cq\"}}");
    put(s, "localqueues",
        "{\"metadata\":{\"name\":\"main\",\"namespace\":\"web\"},\"spec\":{\"clusterQueue\":"
        "\"cq\"}}");
    put(s, "localqueues",
        "{\"metadata\":{\"name\":\"other\",\"namespace\":\"ml\"},\"spec\":{\"clusterQueue\":"
        "\"other\"}}");
    for (size_t i = 0; i < 4; i++) {
        snprintf(text, sizeof text,
                 "{\"metadata\":{\"name\":\"%s\"},\"status\":{\"allocatable\":{\"cpu\":\"32\","
                 "\"nvidia.com/gpu\":\"8\"}}}",
                 nodes[i]);
        put(s, "nodes", text);
    }
}

static void run_sequence(uint64_t seed, int steps)
{
    rng = seed;
    ty_store *s = ty_store_new();
    setup(s);
    ty_kueue_cache *cache = ty_kueue_cache_new();
    size_t reused = 0;
    for (int step = 0; step < steps; step++) {
        built fresh = {0}, cached = {0};
        build(&fresh, s, NULL, step);
        build(&cached, s, cache, step);
        expect_same(&fresh, &cached, step);
        reused += json_array_size(cached.o.workloads) - ty_kueue_cache_parsed(cache);
        change(s, step, fresh.s);
        done(&fresh);
        done(&cached);
    }
    cr_assert_gt(reused, (size_t)steps, "the cache reused %zu parsed workloads", reused);
    ty_kueue_cache_free(cache);
    ty_store_free(s);
}

Test(kueue_cache, random_changes_decide_as_a_fresh_snapshot)
{
    for (uint64_t seed = 1; seed <= 6; seed++)
        run_sequence(seed * 7919, 250);
}

Test(kueue_cache, a_recreated_workload_is_parsed_again)
{
    ty_store *s = ty_store_new();
    setup(s);
    ty_kueue_cache *cache = ty_kueue_cache_new();
    create_workload(s, 1);
    built b = {0};
    build(&b, s, cache, 0);
    cr_assert_eq(ty_kueue_cache_parsed(cache), 1);
    done(&b);
    build(&b, s, cache, 0);
    cr_assert_eq(ty_kueue_cache_parsed(cache), 0, "unchanged: reused");
    done(&b);
    json_t *wl = any(s, "workloads");
    ty_store_delete(s, "workloads", ty_obj_namespace(wl), ty_obj_name(wl), 0, NULL);
    json_object_del(json_object_get(wl, "metadata"), "resourceVersion");
    json_object_del(json_object_get(wl, "metadata"), "uid");
    json_object_set_new(json_object_get(wl, "spec"), "priority", json_integer(99));
    TY_AUTOFREE char *text = json_dumps(wl, 0);
    put(s, "workloads", text);
    json_decref(wl);
    build(&b, s, cache, 0);
    cr_assert_eq(ty_kueue_cache_parsed(cache), 1, "recreated: parsed again");
    done(&b);
    ty_kueue_cache_free(cache);
    ty_store_free(s);
}
