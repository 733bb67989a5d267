#include <criterion/criterion.h>
#include <string.h>
#include <unistd.h>

#include "controllers/placement.h"
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

/* ty_placement_requests: the one sum of a pod's requests (the binder, the job controller and
 * the Kueue snapshot all use it). */
static int64_t req(const json_t *r, const char *name)
{
    return (int64_t)json_integer_value(json_object_get(r, name));
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
    json_t *r = ty_placement_requests(s);
    cr_assert_eq(req(r, "cpu"), 2750);
    cr_assert_eq(req(r, "memory"), GI + GI / 2);
    cr_assert_eq(req(r, "nvidia.com/gpu"), 1000);
    json_decref(r);
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
    json_t *r = ty_placement_requests(s);
    cr_assert_eq(req(r, "cpu"), 2100);
    cr_assert_eq(req(r, "memory"), 3 * GI);
    cr_assert_eq(req(r, "nvidia.com/gpu"), 2000);
    json_decref(r);
    json_decref(s);
}

Test(resources, init_containers_max_rule_and_overhead)
{
    /* Init containers run one at a time before the others: the pod needs the largest of them
     * or the sum of the containers, per resource; the RuntimeClass overhead comes on top. */
    const char *pod = "{\"containers\": ["
                      "{\"name\": \"a\", \"resources\": {\"requests\": {\"cpu\": \"1\","
                      " \"memory\": \"1Gi\"}}},"
                      "{\"name\": \"b\", \"resources\": {\"requests\": {\"cpu\": \"1\","
                      " \"memory\": \"1Gi\"}}}],"
                      " \"initContainers\": ["
                      "{\"name\": \"i1\", \"resources\": {\"requests\": {\"cpu\": \"3\"}}},"
                      "{\"name\": \"i2\", \"resources\": {\"limits\": {\"memory\": \"1Gi\","
                      " \"nvidia.com/gpu\": \"1\"}}},"
                      "{\"name\": \"i3\", \"resources\": {\"requests\": {\"cpu\": \"2\"}}}]%s}";
    char buf[1024];
    snprintf(buf, sizeof buf, pod, "");
    json_t *s = spec(buf);
    json_t *r = ty_placement_requests(s);
    cr_assert_eq(req(r, "cpu"), 3000, "the largest init container's cpu");
    cr_assert_eq(req(r, "memory"), 2 * GI, "the containers' sum of memory");
    cr_assert_eq(req(r, "nvidia.com/gpu"), 1000, "an init container's gpu limit");
    json_decref(r);
    json_decref(s);
    snprintf(buf, sizeof buf, pod, ", \"overhead\": {\"cpu\": \"250m\", \"memory\": \"1Gi\"}");
    s = spec(buf);
    r = ty_placement_requests(s);
    cr_assert_eq(req(r, "cpu"), 3250, "overhead on top of the init container's");
    cr_assert_eq(req(r, "memory"), 3 * GI);
    cr_assert_eq(req(r, "nvidia.com/gpu"), 1000);
    json_decref(r);
    json_decref(s);
}

Test(resources, empty_and_unparsable)
{
    json_t *s = spec("{}");
    json_t *r = ty_placement_requests(s);
    cr_assert_eq(json_object_size(r), 0);
    json_decref(r);
    json_decref(s);
    r = ty_placement_requests(NULL);
    cr_assert_eq(json_object_size(r), 0);
    json_decref(r);
    s = spec("{\"containers\": [{\"name\": \"a\", \"resources\": {\"requests\":"
             " {\"cpu\": \"lots\", \"memory\": \"1Gi\"}}}]}");
    r = ty_placement_requests(s);
    cr_assert_eq(req(r, "cpu"), 0);
    cr_assert_eq(req(r, "memory"), GI);
    json_decref(r);
    json_decref(s);
}

Test(resources, node_allocatable)
{
    json_t *n = spec("{\"status\": {\"capacity\": {\"cpu\": \"16\"}, \"allocatable\":"
                     " {\"cpu\": \"15500m\", \"memory\": \"64Gi\", \"nvidia.com/gpu\": \"8\","
                     " \"pods\": \"110\"}}}");
    json_t *r = ty_placement_allocatable(n);
    cr_assert_eq(req(r, "cpu"), 15500);
    cr_assert_eq(req(r, "memory"), 64 * GI);
    cr_assert_eq(req(r, "nvidia.com/gpu"), 8000);
    cr_assert_eq(req(r, "pods"), 110000);
    json_decref(r);
    json_decref(n);

    json_t *local = ty_node_local("here", 3);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(local, "metadata"), "name")),
                     "here");
    r = ty_placement_allocatable(local);
    cr_assert_eq(req(r, "cpu"), 1000 * sysconf(_SC_NPROCESSORS_ONLN));
    cr_assert_gt(req(r, "memory"), 0);
    cr_assert_eq(req(r, "nvidia.com/gpu"), 3000);
    json_decref(r);
    json_decref(local);
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
