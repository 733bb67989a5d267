#include <criterion/criterion.h>
#include <string.h>
#include <unistd.h>

#include "controllers/podutil.h"
#include "controllers/resources.h"

#define GI (1024LL * 1024 * 1024 * 1000) /* 1Gi in milli-bytes */

static json_t *spec(const char *json)
{
    json_error_t e;
    json_t *v = json_loads(json, 0, &e);
    cr_assert_not_null(v, "bad test JSON: %s", e.text);
    return v;
}

Test(resources, sum_of_containers)
{
    json_t *s = spec("{\"containers\": ["
                     "{\"name\": \"a\", \"resources\": {\"requests\": {\"cpu\": \"500m\","
                     " \"memory\": \"1Gi\", \"nvidia.com/gpu\": \"1\"}}},"
                     "{\"name\": \"b\", \"resources\": {\"requests\": {\"cpu\": 2,"
                     " \"memory\": \"512Mi\"}}},"
                     "{\"name\": \"c\", \"resources\": {\"requests\": {\"cpu\": 0.25}}},"
                     "{\"name\": \"d\"}]}");
    ty_resources r = ty_pod_spec_requests(s);
    cr_assert_eq(r.cpu_milli, 2750);
    cr_assert_eq(r.memory_milli, GI + GI / 2);
    cr_assert_eq(r.gpus, 1);
    json_decref(s);
}

Test(resources, limits_default_requests)
{
    json_t *s = spec("{\"containers\": ["
                     "{\"name\": \"a\", \"resources\": {\"limits\": {\"cpu\": \"2\","
                     " \"memory\": \"2Gi\", \"nvidia.com/gpu\": 2}}},"
                     /* an explicit request wins over the limit, per resource */
                     "{\"name\": \"b\", \"resources\": {\"requests\": {\"cpu\": \"100m\"},"
                     " \"limits\": {\"cpu\": \"4\", \"memory\": \"1Gi\"}}}]}");
    ty_resources r = ty_pod_spec_requests(s);
    cr_assert_eq(r.cpu_milli, 2100);
    cr_assert_eq(r.memory_milli, 3 * GI);
    cr_assert_eq(r.gpus, 2);
    json_decref(s);
}

Test(resources, init_containers_max_rule)
{
    /* Init containers run one at a time before the others: the pod needs the largest of them
     * or the sum of the containers, per resource. */
    json_t *s = spec("{\"containers\": ["
                     "{\"name\": \"a\", \"resources\": {\"requests\": {\"cpu\": \"1\","
                     " \"memory\": \"1Gi\"}}},"
                     "{\"name\": \"b\", \"resources\": {\"requests\": {\"cpu\": \"1\","
                     " \"memory\": \"1Gi\"}}}],"
                     " \"initContainers\": ["
                     "{\"name\": \"i1\", \"resources\": {\"requests\": {\"cpu\": \"3\"}}},"
                     "{\"name\": \"i2\", \"resources\": {\"limits\": {\"memory\": \"1Gi\","
                     " \"nvidia.com/gpu\": \"1\"}}},"
                     "{\"name\": \"i3\", \"resources\": {\"requests\": {\"cpu\": \"2\"}}}]}");
    ty_resources r = ty_pod_spec_requests(s);
    cr_assert_eq(r.cpu_milli, 3000, "the largest init container's cpu");
    cr_assert_eq(r.memory_milli, 2 * GI, "the containers' sum of memory");
    cr_assert_eq(r.gpus, 1, "an init container's gpu limit");
    json_decref(s);
}

Test(resources, empty_and_unparsable)
{
    json_t *s = spec("{}");
    ty_resources r = ty_pod_spec_requests(s);
    cr_assert_eq(r.cpu_milli, 0);
    cr_assert_eq(r.memory_milli, 0);
    cr_assert_eq(r.gpus, 0);
    json_decref(s);
    r = ty_pod_spec_requests(NULL);
    cr_assert_eq(r.cpu_milli + r.memory_milli + r.gpus, 0);
    s = spec("{\"containers\": [{\"name\": \"a\", \"resources\": {\"requests\":"
             " {\"cpu\": \"lots\", \"memory\": \"1Gi\"}}}]}");
    r = ty_pod_spec_requests(s);
    cr_assert_eq(r.cpu_milli, 0);
    cr_assert_eq(r.memory_milli, GI);
    json_decref(s);
}

Test(resources, node_allocatable)
{
    json_t *n = spec("{\"status\": {\"capacity\": {\"cpu\": \"16\"}, \"allocatable\":"
                     " {\"cpu\": \"15500m\", \"memory\": \"64Gi\", \"nvidia.com/gpu\": \"8\","
                     " \"pods\": \"110\"}}}");
    ty_resources r = ty_node_allocatable(n);
    cr_assert_eq(r.cpu_milli, 15500);
    cr_assert_eq(r.memory_milli, 64 * GI);
    cr_assert_eq(r.gpus, 8);
    json_decref(n);

    json_t *local = ty_node_local("here", 3);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(local, "metadata"), "name")),
                     "here");
    r = ty_node_allocatable(local);
    cr_assert_eq(r.cpu_milli, 1000 * sysconf(_SC_NPROCESSORS_ONLN));
    cr_assert_gt(r.memory_milli, 0);
    cr_assert_eq(r.gpus, 3);
    json_decref(local);
}

Test(resources, add_sub)
{
    ty_resources a = {1000, 5, 1};
    ty_resources_add(&a, (ty_resources){500, 5, 2});
    cr_assert_eq(a.cpu_milli, 1500);
    cr_assert_eq(a.memory_milli, 10);
    cr_assert_eq(a.gpus, 3);
    ty_resources_sub(&a, (ty_resources){2000, 10, 3});
    cr_assert_eq(a.cpu_milli, -500);
    cr_assert_eq(a.memory_milli, 0);
    cr_assert_eq(a.gpus, 0);
}

Test(resources, fit_messages)
{
    char why[128] = "untouched";
    ty_resources avail = {2000, 2 * GI, 1};
    cr_assert(ty_resources_fit((ty_resources){2000, 2 * GI, 1}, avail, "free", why, sizeof why),
              "an exact fit fits");
    cr_assert(ty_resources_fit((ty_resources){0, 0, 0}, avail, "free", why, sizeof why));
    cr_assert_str_eq(why, "untouched");

    cr_assert(!ty_resources_fit((ty_resources){4000, GI, 0}, avail, "free", why, sizeof why));
    cr_assert_str_eq(why, "cpu: needs 4, 2 free");
    cr_assert(!ty_resources_fit((ty_resources){1500, 4 * GI, 0}, avail, "allocatable", why,
                                sizeof why));
    cr_assert_str_eq(why, "memory: needs 4Gi, 2Gi allocatable");
    cr_assert(!ty_resources_fit((ty_resources){2500, 4 * GI, 2}, avail, "free", why, sizeof why));
    cr_assert_str_eq(why, "nvidia.com/gpu: needs 2, 1 free", "GPUs are named first");
    cr_assert(!ty_resources_fit((ty_resources){500, 0, 0}, (ty_resources){-1500, 0, 0}, "free",
                                why, sizeof why));
    cr_assert_str_eq(why, "cpu: needs 500m, 0 free", "over-committed shows as 0 free");
    cr_assert(!ty_resources_fit((ty_resources){0, 0, 1}, (ty_resources){0, 0, -1}, "free", why,
                                sizeof why));
    cr_assert_str_eq(why, "nvidia.com/gpu: needs 1, 0 free");
    char tiny[8];
    cr_assert(!ty_resources_fit((ty_resources){4000, 0, 0}, avail, "free", tiny, sizeof tiny));
    cr_assert_eq(strlen(tiny), sizeof tiny - 1, "truncated, terminated");
}

/* ---- podutil ---- */

Test(podutil, phase_and_terminated)
{
    json_t *p = spec("{\"metadata\": {\"name\": \"p\"}}");
    cr_assert_str_eq(ty_pod_phase(p), "Pending");
    cr_assert(!ty_pod_terminated(p));
    const char *phases[] = {"Pending", "Running", "Succeeded", "Failed", "Unknown"};
    bool term[] = {false, false, true, true, false};
    for (size_t i = 0; i < 5; i++) {
        json_object_set_new(p, "status", json_pack("{s:s}", "phase", phases[i]));
        cr_assert_str_eq(ty_pod_phase(p), phases[i]);
        cr_assert_eq(ty_pod_terminated(p), term[i], "%s", phases[i]);
    }
    json_decref(p);
}

static const char *cond_s(const json_t *pod, const char *type, const char *field)
{
    return json_string_value(json_object_get(ty_pod_condition(pod, type), field));
}

Test(podutil, set_condition)
{
    json_t *p = spec("{\"metadata\": {\"name\": \"p\"}}");
    cr_assert_null(ty_pod_condition(p, "PodScheduled"));
    cr_assert_eq(ty_pod_set_condition(p, "PodScheduled", "False", "Unschedulable", "wait"),
                 TY_POD_CONDITION_CHANGED);
    cr_assert_str_eq(ty_pod_phase(p), "Pending");
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(p, "status"), "phase")),
                     "Pending", "the phase is written");
    cr_assert_str_eq(cond_s(p, "PodScheduled", "status"), "False");
    cr_assert_str_eq(cond_s(p, "PodScheduled", "reason"), "Unschedulable");
    cr_assert_str_eq(cond_s(p, "PodScheduled", "message"), "wait");
    cr_assert_not_null(cond_s(p, "PodScheduled", "lastTransitionTime"));

    /* The same again: nothing changes. */
    json_t *before = json_deep_copy(p);
    cr_assert_eq(ty_pod_set_condition(p, "PodScheduled", "False", "Unschedulable", "wait"),
                 TY_POD_CONDITION_UNCHANGED);
    cr_assert(json_equal(p, before));
    json_decref(before);

    /* A new message with the same status keeps lastTransitionTime. */
    json_t *c = (json_t *)ty_pod_condition(p, "PodScheduled");
    json_object_set_new(c, "lastTransitionTime", json_string("2001-01-01T00:00:00Z"));
    cr_assert_eq(ty_pod_set_condition(p, "PodScheduled", "False", "Unschedulable", "other"),
                 TY_POD_CONDITION_CHANGED);
    cr_assert_str_eq(cond_s(p, "PodScheduled", "message"), "other");
    cr_assert_str_eq(cond_s(p, "PodScheduled", "lastTransitionTime"), "2001-01-01T00:00:00Z");

    /* A flip moves it; NULL reason/message remove them. */
    cr_assert_eq(ty_pod_set_condition(p, "PodScheduled", "True", NULL, NULL),
                 TY_POD_CONDITION_CHANGED);
    cr_assert_str_eq(cond_s(p, "PodScheduled", "status"), "True");
    cr_assert_str_neq(cond_s(p, "PodScheduled", "lastTransitionTime"), "2001-01-01T00:00:00Z");
    cr_assert_null(json_object_get(ty_pod_condition(p, "PodScheduled"), "reason"));
    cr_assert_null(json_object_get(ty_pod_condition(p, "PodScheduled"), "message"));
    cr_assert_eq(ty_pod_set_condition(p, "PodScheduled", "True", NULL, NULL),
                 TY_POD_CONDITION_UNCHANGED);

    /* Other types sit beside it; the phase set by someone else is kept. */
    json_object_set_new(json_object_get(p, "status"), "phase", json_string("Running"));
    cr_assert_eq(ty_pod_set_condition(p, "Ready", "True", NULL, NULL), TY_POD_CONDITION_CHANGED);
    cr_assert_eq(json_array_size(json_object_get(json_object_get(p, "status"), "conditions")), 2);
    cr_assert_str_eq(ty_pod_phase(p), "Running");
    cr_assert_str_eq(cond_s(p, "PodScheduled", "status"), "True");
    json_decref(p);
}

Test(podutil, set_condition_writes_missing_phase)
{
    json_t *p = spec("{\"status\": {\"conditions\": [{\"type\": \"Ready\", \"status\": \"True\"}]}}");
    cr_assert_eq(ty_pod_set_condition(p, "Ready", "True", NULL, NULL), TY_POD_CONDITION_CHANGED,
                 "the missing phase is a change");
    cr_assert_eq(ty_pod_set_condition(p, "Ready", "True", NULL, NULL), TY_POD_CONDITION_UNCHANGED);
    json_decref(p);
}
