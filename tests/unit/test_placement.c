#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "controllers/placement.h"

/* A node named `name` with `gpus` GPUs, 8 cpu, 32Gi; extra JSON merged into it (labels, taints). */
static json_t *node(const char *name, int gpus, const char *extra)
{
    char g[16];
    snprintf(g, sizeof g, "%d", gpus);
    json_t *n = json_pack("{s:s, s:{s:s, s:{}}, s:{}, s:{s:{s:s, s:s, s:s}}}", "kind", "Node",
                          "metadata", "name", name, "labels", "spec", "status", "allocatable",
                          "cpu", "8", "memory", "32Gi", "nvidia.com/gpu", g);
    if (extra) {
        json_t *e = json_loads(extra, 0, NULL);
        cr_assert(e, "bad test JSON %s", extra);
        json_t *l = json_object_get(e, "labels"), *t = json_object_get(e, "taints");
        if (l)
            json_object_update(json_object_get(json_object_get(n, "metadata"), "labels"), l);
        if (t)
            json_object_set(json_object_get(n, "spec"), "taints", t);
        json_decref(e);
    }
    return n;
}

/* A pod spec asking for `gpus` GPUs and `cpu`; extra JSON merged into the spec. */
static json_t *spec(int gpus, const char *cpu, const char *extra)
{
    char g[16];
    snprintf(g, sizeof g, "%d", gpus);
    json_t *s = json_pack("{s:[{s:s, s:{s:{s:s}, s:{s:s}}}]}", "containers", "name", "c",
                          "resources", "requests", "cpu", cpu, "limits", "nvidia.com/gpu", g);
    if (extra) {
        json_t *e = json_loads(extra, 0, NULL);
        cr_assert(e, "bad test JSON %s", extra);
        json_object_update(s, e);
        json_decref(e);
    }
    return s;
}

typedef struct {
    json_t *nodes[16];
    json_t *free[16];
    ty_placement_node pn[16];
    size_t n;
    json_t *specs[16];
    ty_placement_pod pods[16];
    size_t np;
    size_t out[16];
    ty_error err;
} world;

static void add_node(world *w, json_t *n)
{
    w->nodes[w->n] = n;
    w->free[w->n] = ty_placement_allocatable(n);
    w->pn[w->n] = (ty_placement_node){n, w->free[w->n]};
    w->n++;
}

static void add_pod(world *w, const char *name, json_t *s, const char *pre)
{
    w->specs[w->np] = s;
    w->pods[w->np] = (ty_placement_pod){name, s, pre};
    w->np++;
}

static int place(world *w)
{
    ty_error_clear(&w->err);
    return ty_placement_place(w->pn, w->n, w->pods, w->np, w->out, &w->err);
}

static const char *where(world *w, size_t pod)
{
    return json_string_value(
        json_object_get(json_object_get(w->nodes[w->out[pod]], "metadata"), "name"));
}

static void done(world *w)
{
    for (size_t i = 0; i < w->n; i++)
        json_decref(w->nodes[i]), json_decref(w->free[i]);
    for (size_t i = 0; i < w->np; i++)
        json_decref(w->specs[i]);
    ty_error_clear(&w->err);
}

Test(placement, best_fit_packs_onto_fullest_gpu_node)
{
    world w = {0};
    add_node(&w, node("a", 8, NULL));
    add_node(&w, node("b", 2, NULL));
    add_node(&w, node("c", 4, NULL));
    add_pod(&w, "p", spec(2, "1", NULL), NULL);
    cr_assert_eq(place(&w), 0, "%s", w.err.msg);
    cr_assert_str_eq(where(&w, 0), "b", "the node with the fewest free GPUs that fits");
    /* a 4-GPU pod does not fit b: c is the next tightest */
    json_decref(w.specs[0]);
    w.specs[0] = spec(4, "1", NULL);
    w.pods[0].spec = w.specs[0];
    cr_assert_eq(place(&w), 0);
    cr_assert_str_eq(where(&w, 0), "c");
    done(&w);
}

Test(placement, gang_spreads_when_nodes_are_small_and_ties_go_by_name)
{
    world w = {0};
    const char *names[] = {"node-4", "node-2", "node-3", "node-1"};
    for (int i = 0; i < 4; i++)
        add_node(&w, node(names[i], 2, NULL));
    const char *pods[] = {"w-0", "w-1", "w-2", "w-3"};
    for (int i = 0; i < 4; i++)
        add_pod(&w, pods[i], spec(2, "1", NULL), NULL);
    cr_assert_eq(place(&w), 0, "%s", w.err.msg);
    cr_assert_str_eq(where(&w, 0), "node-1");
    cr_assert_str_eq(where(&w, 1), "node-2");
    cr_assert_str_eq(where(&w, 2), "node-3");
    cr_assert_str_eq(where(&w, 3), "node-4");
    /* the same input gives the same answer */
    size_t first[4];
    memcpy(first, w.out, sizeof first);
    cr_assert_eq(place(&w), 0);
    cr_assert_arr_eq(first, w.out, sizeof first);
    done(&w);
}

Test(placement, gang_is_all_or_nothing_with_a_message)
{
    world w = {0};
    for (int i = 0; i < 3; i++) {
        char n[16];
        snprintf(n, sizeof n, "n%d", i);
        add_node(&w, node(n, 8, NULL));
    }
    add_node(&w, node("t", 8, "{\"taints\": [{\"key\": \"gpu\", \"value\": \"true\", "
                             "\"effect\": \"NoSchedule\"}]}"));
    for (int i = 0; i < 4; i++)
        add_pod(&w, i == 3 ? "w-3" : "w", spec(8, "1", NULL), NULL);
    cr_assert_eq(place(&w), -1);
    cr_assert_str_eq(w.err.msg,
                     "0/4 nodes can take pod w-3 of the gang of 4: 3 nodes have too few free "
                     "nvidia.com/gpu (need 8), 1 node has taint gpu=true:NoSchedule that the "
                     "pod does not tolerate");
    done(&w);
}

Test(placement, taints_and_tolerations)
{
    world w = {0};
    add_node(&w, node("t", 1, "{\"taints\": [{\"key\": \"gpu\", \"value\": \"true\", "
                             "\"effect\": \"NoSchedule\"}, {\"key\": \"soft\", \"effect\": "
                             "\"PreferNoSchedule\"}]}"));
    add_pod(&w, "p", spec(0, "1", NULL), NULL);
    cr_assert_eq(place(&w), -1);
    const char *ok[] = {
        "{\"tolerations\": [{\"key\": \"gpu\", \"value\": \"true\"}]}",
        "{\"tolerations\": [{\"key\": \"gpu\", \"operator\": \"Exists\", \"effect\": \"NoSchedule\"}]}",
        "{\"tolerations\": [{\"operator\": \"Exists\"}]}",
    };
    const char *bad[] = {
        "{\"tolerations\": [{\"key\": \"gpu\", \"value\": \"false\"}]}",
        "{\"tolerations\": [{\"key\": \"gpu\", \"operator\": \"Exists\", \"effect\": \"NoExecute\"}]}",
        "{\"tolerations\": [{\"key\": \"other\", \"operator\": \"Exists\"}]}",
    };
    for (int i = 0; i < 3; i++) {
        json_decref(w.specs[0]);
        w.pods[0].spec = w.specs[0] = spec(0, "1", ok[i]);
        cr_assert_eq(place(&w), 0, "%s should tolerate", ok[i]);
        json_decref(w.specs[0]);
        w.pods[0].spec = w.specs[0] = spec(0, "1", bad[i]);
        cr_assert_eq(place(&w), -1, "%s should not tolerate", bad[i]);
    }
    done(&w);
}

Test(placement, node_selector_and_affinity)
{
    world w = {0};
    add_node(&w, node("a", 0, "{\"labels\": {\"acc\": \"a100\", \"zone\": \"x\"}}"));
    add_node(&w, node("b", 0, "{\"labels\": {\"acc\": \"h100\"}}"));
    add_pod(&w, "p", spec(0, "1", "{\"nodeSelector\": {\"acc\": \"h100\"}}"), NULL);
    cr_assert_eq(place(&w), 0);
    cr_assert_str_eq(where(&w, 0), "b");
    const char *cases[][2] = {
        {"{\"key\": \"acc\", \"operator\": \"In\", \"values\": [\"a100\", \"v100\"]}", "a"},
        {"{\"key\": \"acc\", \"operator\": \"NotIn\", \"values\": [\"a100\"]}", "b"},
        {"{\"key\": \"zone\", \"operator\": \"Exists\"}", "a"},
        {"{\"key\": \"zone\", \"operator\": \"DoesNotExist\"}", "b"},
    };
    for (int i = 0; i < 4; i++) {
        char buf[512];
        snprintf(buf, sizeof buf,
                 "{\"affinity\": {\"nodeAffinity\": {\"requiredDuringSchedulingIgnoredDuring"
                 "Execution\": {\"nodeSelectorTerms\": [{\"matchExpressions\": [%s]}]}}}}",
                 cases[i][0]);
        json_decref(w.specs[0]);
        w.pods[0].spec = w.specs[0] = spec(0, "1", buf);
        cr_assert_eq(place(&w), 0, "%s: %s", cases[i][0], w.err.msg);
        cr_assert_str_eq(where(&w, 0), cases[i][1], "%s", cases[i][0]);
    }
    json_decref(w.specs[0]);
    w.pods[0].spec = w.specs[0] = spec(0, "1", "{\"nodeSelector\": {\"acc\": \"tpu\"}}");
    cr_assert_eq(place(&w), -1);
    cr_assert_str_eq(w.err.msg, "0/2 nodes can take pod p of the gang of 1: 2 nodes have "
                                "labels that do not match the pod's nodeSelector");
    done(&w);
}

Test(placement, preassigned_nodes)
{
    world w = {0};
    add_node(&w, node("a", 2, NULL));
    add_node(&w, node("b", 2, NULL));
    add_pod(&w, "w-0", spec(2, "1", NULL), "b");
    add_pod(&w, "w-1", spec(1, "1", NULL), "a");
    cr_assert_eq(place(&w), 0, "%s", w.err.msg);
    cr_assert_str_eq(where(&w, 0), "b");
    cr_assert_str_eq(where(&w, 1), "a");
    /* the named node is full: the gang waits, naming it */
    w.pods[1].node = "b";
    cr_assert_eq(place(&w), -1);
    cr_assert_str_eq(w.err.msg, "pod w-1 of the gang of 2 is placed on node b, which has too "
                                "few free nvidia.com/gpu (need 1)");
    w.pods[1].node = "zz";
    cr_assert_eq(place(&w), -1);
    cr_assert(strstr(w.err.msg, "node zz, which does not exist"), "%s", w.err.msg);
    done(&w);
}

Test(placement, extended_resources_and_free_capacity)
{
    world w = {0};
    json_t *n = node("a", 0, NULL);
    json_object_set_new(json_object_get(json_object_get(n, "status"), "allocatable"),
                        "example.com/fpga", json_string("2"));
    add_node(&w, n);
    add_node(&w, node("b", 0, NULL));
    json_t *s = spec(0, "1", NULL);
    json_object_set_new(json_object_get(json_object_get(json_array_get(json_object_get(s,
                        "containers"), 0), "resources"), "limits"), "example.com/fpga",
                        json_integer(2));
    add_pod(&w, "p", s, NULL);
    cr_assert_eq(place(&w), 0, "%s", w.err.msg);
    cr_assert_str_eq(where(&w, 0), "a", "only a has the FPGAs");
    /* what runs there already counts */
    json_t *req = ty_placement_requests(s);
    ty_placement_take(w.free[0], req);
    json_decref(req);
    cr_assert_eq(place(&w), -1);
    cr_assert(strstr(w.err.msg, "2 nodes have too few free example.com/fpga (need 2)"), "%s",
              w.err.msg);
    /* cpu and memory: the message formats quantities */
    json_decref(w.specs[0]);
    w.pods[0].spec = w.specs[0] = spec(0, "9", NULL);
    cr_assert_eq(place(&w), -1);
    cr_assert(strstr(w.err.msg, "too few free cpu (need 9)"), "%s", w.err.msg);
    done(&w);
}

Test(placement, requests_sum_containers_and_take_the_largest_init)
{
    json_t *s = json_loads(
        "{\"containers\": [{\"resources\": {\"requests\": {\"cpu\": \"500m\"}, \"limits\": "
        "{\"nvidia.com/gpu\": 1, \"memory\": \"1Gi\"}}}, {\"resources\": {\"requests\": "
        "{\"cpu\": 1}}}], \"initContainers\": [{\"resources\": {\"requests\": {\"cpu\": 4}}}]}",
        0, NULL);
    json_t *r = ty_placement_requests(s);
    cr_assert_eq(json_integer_value(json_object_get(r, "cpu")), 4000);
    cr_assert_eq(json_integer_value(json_object_get(r, "nvidia.com/gpu")), 1000);
    cr_assert_eq(json_integer_value(json_object_get(r, "memory")), 1024LL * 1024 * 1024 * 1000);
    json_decref(r);
    json_decref(s);
}

Test(placement, a_node_takes_no_more_pods_than_it_declares)
{
    world w = {0};
    json_t *a = node("a", 0, NULL), *b = node("b", 0, NULL);
    json_object_set_new(json_object_get(json_object_get(a, "status"), "allocatable"), "pods",
                        json_string("2"));
    json_object_set_new(json_object_get(json_object_get(b, "status"), "allocatable"), "pods",
                        json_string("1"));
    add_node(&w, a);
    add_node(&w, b);
    /* pods that request nothing still count one each: 3 fit, the 4th does not */
    for (int i = 0; i < 3; i++)
        add_pod(&w, "w", spec(0, "0", NULL), NULL);
    cr_assert_eq(place(&w), 0, "%s", w.err.msg);
    add_pod(&w, "w-3", spec(0, "0", NULL), NULL);
    cr_assert_eq(place(&w), -1);
    cr_assert_str_eq(w.err.msg,
                     "0/2 nodes can take pod w-3 of the gang of 4: 2 nodes have too many pods");
    /* a pod already there (the binder takes each bound pod) leaves room for one less */
    json_t *req = ty_placement_requests(w.specs[0]);
    ty_placement_take(w.free[0], req);
    json_decref(req);
    cr_assert_eq(json_integer_value(json_object_get(w.free[0], "pods")), 1000);
    done(&w);
}
