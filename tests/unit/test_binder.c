#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "controllers/binder.h"
#include "controllers/podutil.h"

/* A store with one node (4 cpu, 8Gi, 2 GPUs), a binder for it and a loop to run it on. */
typedef struct {
    uv_loop_t loop;
    ty_store *store;
    ty_binder *binder;
} fixture;

static void start(fixture *f)
{
    cr_assert_eq(uv_loop_init(&f->loop), 0);
    f->store = ty_store_new();
    json_t *node = json_pack("{s:s, s:s, s:{s:s}, s:{s:{s:s, s:s, s:s}}}", "apiVersion", "v1",
                             "kind", "Node", "metadata", "name", "n1", "status", "allocatable",
                             "cpu", "4", "memory", "8Gi", "nvidia.com/gpu", "2");
    cr_assert_eq(ty_store_create(f->store, "nodes", node, NULL, NULL), 0);
    json_decref(node);
    f->binder = ty_binder_new(&f->loop, f->store, "n1");
}

static void settle(fixture *f) { uv_run(&f->loop, UV_RUN_DEFAULT); }

static void stop(fixture *f)
{
    ty_binder_free(f->binder);
    settle(f);
    cr_assert_eq(uv_loop_close(&f->loop), 0, "the binder left handles open");
    ty_store_free(f->store);
}

/* A pod of gang `group` (NULL: none) of `size` pods, asking for `cpu` and `gpus`. */
static void add_pod(fixture *f, const char *name, const char *group, int size, const char *cpu,
                    int gpus)
{
    char sz[16], g[16];
    snprintf(sz, sizeof sz, "%d", size);
    snprintf(g, sizeof g, "%d", gpus);
    json_t *p = json_pack("{s:s, s:s, s:{s:s, s:s, s:{}, s:{}}, s:{s:[{s:s, s:s, s:{s:{s:s, s:s}}}]}}",
                          "apiVersion", "v1", "kind", "Pod", "metadata", "name", name,
                          "namespace", "default", "labels", "annotations", "spec", "containers",
                          "name", "c", "image", "x", "resources", "requests", "cpu", cpu,
                          "nvidia.com/gpu", g);
    json_t *meta = json_object_get(p, "metadata");
    if (group) {
        json_object_set_new(json_object_get(meta, "labels"), TY_LABEL_POD_GROUP, json_string(group));
        json_object_set_new(json_object_get(meta, "annotations"), TY_ANNOTATION_GANG_SIZE,
                            json_string(sz));
    }
    ty_error err = TY_ERROR_INIT;
    cr_assert_eq(ty_store_create(f->store, "pods", p, NULL, &err), 0, "%s", err.msg);
    json_decref(p);
}

static void set_phase(fixture *f, const char *name, const char *phase)
{
    json_t *p = ty_store_get(f->store, "pods", "default", name);
    cr_assert_not_null(p);
    json_t *next = json_deep_copy(p);
    json_object_set_new(next, "status", json_pack("{s:s}", "phase", phase));
    cr_assert_eq(ty_store_update_status(f->store, "pods", next, NULL, NULL), 0);
    json_decref(next);
    json_decref(p);
}

/* The pod's node, or NULL; and its PodScheduled condition's fields. */
static const char *node_of(fixture *f, const char *name, char *buf, size_t cap)
{
    json_t *p = ty_store_get(f->store, "pods", "default", name);
    cr_assert_not_null(p, "pod %s", name);
    const char *n = json_string_value(json_object_get(json_object_get(p, "spec"), "nodeName"));
    if (n)
        snprintf(buf, cap, "%s", n);
    json_decref(p);
    return n ? buf : NULL;
}

static bool bound(fixture *f, const char *name)
{
    char b[32];
    return node_of(f, name, b, sizeof b) != NULL;
}

static void scheduled(fixture *f, const char *name, char *status, char *reason, char *message)
{
    json_t *p = ty_store_get(f->store, "pods", "default", name);
    const json_t *c = ty_pod_condition(p, "PodScheduled");
    cr_assert_not_null(c, "pod %s has PodScheduled", name);
    const char *s = json_string_value(json_object_get(c, "status"));
    const char *r = json_string_value(json_object_get(c, "reason"));
    const char *m = json_string_value(json_object_get(c, "message"));
    snprintf(status, 16, "%s", s ? s : "");
    snprintf(reason, 32, "%s", r ? r : "");
    snprintf(message, 256, "%s", m ? m : "");
    json_decref(p);
}

Test(binder, gang_binds_only_when_complete)
{
    fixture f;
    start(&f);
    add_pod(&f, "job-0", "job", 2, "1", 0);
    settle(&f);
    cr_assert(!bound(&f, "job-0"));
    char st[16], reason[32], msg[256];
    scheduled(&f, "job-0", st, reason, msg);
    cr_assert_str_eq(st, "False");
    cr_assert_str_eq(reason, "Unschedulable");
    cr_assert_str_eq(msg, "waiting for the gang: 1 of 2 pods created");

    add_pod(&f, "job-1", "job", 2, "1", 1);
    settle(&f);
    char n[32];
    cr_assert_str_eq(node_of(&f, "job-0", n, sizeof n), "n1");
    cr_assert_str_eq(node_of(&f, "job-1", n, sizeof n), "n1");
    scheduled(&f, "job-1", st, reason, msg);
    cr_assert_str_eq(st, "True");
    cr_assert_str_eq(reason, "");
    stop(&f);
}

Test(binder, waiting_gang_names_the_resource)
{
    fixture f;
    start(&f);
    add_pod(&f, "big-0", "big", 2, "3", 0);
    add_pod(&f, "big-1", "big", 2, "3", 0);
    add_pod(&f, "gpu-0", "gpu", 1, "100m", 3);
    settle(&f);
    char st[16], reason[32], msg[256];
    cr_assert(!bound(&f, "big-0"));
    cr_assert(!bound(&f, "big-1"));
    scheduled(&f, "big-1", st, reason, msg);
    cr_assert_str_eq(st, "False");
    cr_assert_str_eq(reason, "Unschedulable");
    cr_assert_str_eq(msg, "waiting for resources: 0/1 nodes can take pod big-1 of the gang of 2: "
                          "1 node has too few free cpu (need 3)");
    cr_assert(!bound(&f, "gpu-0"));
    scheduled(&f, "gpu-0", st, reason, msg);
    cr_assert_str_eq(msg, "waiting for resources: 0/1 nodes can take pod gpu-0 of the gang of 1: "
                          "1 node has too few free nvidia.com/gpu (need 3)");
    stop(&f);
}

Test(binder, no_write_when_nothing_changed)
{
    fixture f;
    start(&f);
    add_pod(&f, "big-0", "big", 2, "3", 0);
    add_pod(&f, "big-1", "big", 2, "3", 0);
    add_pod(&f, "half-0", "half", 2, "1", 0);
    add_pod(&f, "solo", NULL, 0, "1", 0);
    settle(&f);
    cr_assert(bound(&f, "solo"));
    uint64_t rev = ty_store_revision(f.store);
    /* An event that changes nothing for the binder: a pod bound to another node. */
    add_pod(&f, "elsewhere", NULL, 0, "1", 0);
    json_t *p = ty_store_get(f.store, "pods", "default", "elsewhere");
    json_t *next = json_deep_copy(p);
    json_object_set_new(json_object_get(next, "spec"), "nodeName", json_string("n2"));
    cr_assert_eq(ty_store_update(f.store, "pods", next, NULL, NULL), 0);
    json_decref(next);
    json_decref(p);
    cr_assert_eq(ty_store_revision(f.store), rev + 2);
    settle(&f);
    cr_assert_eq(ty_store_revision(f.store), rev + 2, "the binder wrote %llu times",
                 (unsigned long long)(ty_store_revision(f.store) - rev - 2));
    stop(&f);
}

Test(binder, younger_small_gang_binds_around_a_waiting_big_one)
{
    fixture f;
    start(&f);
    add_pod(&f, "running", NULL, 0, "3", 0);
    settle(&f);
    cr_assert(bound(&f, "running"));
    set_phase(&f, "running", "Running");
    add_pod(&f, "big-0", "big", 2, "1", 0);
    add_pod(&f, "big-1", "big", 2, "1", 0);
    add_pod(&f, "small-0", "small", 1, "1", 0);
    settle(&f);
    cr_assert(!bound(&f, "big-0"), "2 cpu do not fit in the 1 free");
    cr_assert(bound(&f, "small-0"));
    char st[16], reason[32], msg[256];
    scheduled(&f, "big-0", st, reason, msg);
    cr_assert_str_eq(msg, "waiting for resources: 0/1 nodes can take pod big-0 of the gang of 2: "
                          "1 node has too few free cpu (need 1)");

    /* A terminated pod frees what it had. */
    set_phase(&f, "running", "Succeeded");
    settle(&f);
    cr_assert(bound(&f, "big-0"));
    cr_assert(bound(&f, "big-1"));
    scheduled(&f, "big-0", st, reason, msg);
    cr_assert_str_eq(st, "True");
    stop(&f);
}

Test(binder, oldest_gang_first)
{
    fixture f;
    start(&f);
    /* creationTimestamp has whole seconds: "z" is a second older than "a", which would sort
     * first by name. */
    add_pod(&f, "z-0", "z", 2, "2", 0);
    struct timespec ts = {1, 50 * 1000 * 1000};
    nanosleep(&ts, NULL);
    add_pod(&f, "a-0", "a", 2, "2", 0);
    add_pod(&f, "a-1", "a", 2, "2", 0);
    add_pod(&f, "z-1", "z", 2, "2", 0);
    /* Both gangs are complete only now: one pass sees both. */
    settle(&f);
    cr_assert(bound(&f, "z-0"));
    cr_assert(bound(&f, "z-1"));
    cr_assert(!bound(&f, "a-0"));
    cr_assert(!bound(&f, "a-1"));
    stop(&f);
}

Test(binder, skips_deleting_and_terminated_pods)
{
    fixture f;
    start(&f);
    add_pod(&f, "done", NULL, 0, "1", 0);
    set_phase(&f, "done", "Succeeded");
    add_pod(&f, "going", NULL, 0, "1", 0);
    json_t *p = ty_store_get(f.store, "pods", "default", "going");
    json_t *next = json_deep_copy(p);
    json_object_set_new(json_object_get(next, "metadata"), "finalizers", json_pack("[s]", "x"));
    cr_assert_eq(ty_store_update(f.store, "pods", next, NULL, NULL), 0);
    cr_assert_eq(ty_store_delete(f.store, "pods", "default", "going", -1, NULL), 0);
    settle(&f);
    cr_assert(!bound(&f, "done"));
    cr_assert(!bound(&f, "going"));
    json_decref(next);
    json_decref(p);
    stop(&f);
}

Test(binder, recreated_pod_of_a_running_gang_binds)
{
    /* Under restartPolicy ExitCode (and for elastic jobs) the job controller deletes one pod
     * of a running gang and recreates it with the same name: the gang is complete with the
     * pods still bound, so the new pod must not wait for the others to be created again. */
    fixture f;
    start(&f);
    add_pod(&f, "job-0", "job", 2, "1", 0);
    add_pod(&f, "job-1", "job", 2, "1", 0);
    settle(&f);
    cr_assert(bound(&f, "job-0"));
    set_phase(&f, "job-0", "Running");
    set_phase(&f, "job-1", "Failed");
    cr_assert_eq(ty_store_delete(f.store, "pods", "default", "job-1", -1, NULL), 0);
    add_pod(&f, "job-1", "job", 2, "1", 0);
    settle(&f);
    cr_assert(bound(&f, "job-1"));
    stop(&f);
}

Test(binder, no_node_no_binding)
{
    fixture f;
    cr_assert_eq(uv_loop_init(&f.loop), 0);
    f.store = ty_store_new();
    f.binder = ty_binder_new(&f.loop, f.store, "n1");
    add_pod(&f, "p", NULL, 0, "1", 0);
    settle(&f);
    cr_assert(!bound(&f, "p"));
    stop(&f);
}

Test(binder, free_with_a_pass_queued)
{
    fixture f;
    start(&f);
    add_pod(&f, "p", NULL, 0, "1", 0);
    /* No settle: the pass is still queued when the binder goes. */
    stop(&f);
}

Test(binder, deleting_members_do_not_count_toward_the_gang)
{
    /* A gang restart deletes every pod: a new pod must wait for its new peers, not join an
     * old one that is still terminating. */
    fixture f;
    start(&f);
    add_pod(&f, "job-0", "job", 2, "1", 0);
    add_pod(&f, "job-1", "job", 2, "1", 0);
    settle(&f);
    set_phase(&f, "job-0", "Running");
    set_phase(&f, "job-1", "Failed");
    cr_assert_eq(ty_store_delete(f.store, "pods", "default", "job-0", -1, NULL), 0);
    cr_assert_eq(ty_store_delete(f.store, "pods", "default", "job-1", -1, NULL), 0);
    add_pod(&f, "job-1", "job", 2, "1", 0);
    settle(&f);
    cr_assert(!bound(&f, "job-1"));
    char st[16], reason[32], msg[256];
    scheduled(&f, "job-1", st, reason, msg);
    cr_assert_str_eq(msg, "waiting for the gang: 1 of 2 pods created");
    stop(&f);
}

static void add_node(fixture *f, const char *name, const char *gpus)
{
    json_t *node = json_pack("{s:s, s:s, s:{s:s}, s:{s:{s:s, s:s, s:s}}}", "apiVersion", "v1",
                             "kind", "Node", "metadata", "name", name, "status", "allocatable",
                             "cpu", "4", "memory", "8Gi", "nvidia.com/gpu", gpus);
    cr_assert_eq(ty_store_create(f->store, "nodes", node, NULL, NULL), 0);
    json_decref(node);
    ty_binder_add_node(f->binder, name);
}

static void annotate(fixture *f, const char *pod, const char *index, const char *placement)
{
    json_t *p = ty_store_get(f->store, "pods", "default", pod);
    json_t *next = json_deep_copy(p);
    json_t *meta = json_object_get(next, "metadata");
    json_object_set_new(json_object_get(meta, "labels"), "training.kubeflow.org/replica-index",
                        json_string(index));
    json_object_set_new(json_object_get(meta, "annotations"), TY_ANNOTATION_PLACEMENT,
                        json_string(placement));
    cr_assert_eq(ty_store_update(f->store, "pods", next, NULL, NULL), 0);
    json_decref(next);
    json_decref(p);
}

Test(binder, gang_spreads_over_nodes_all_at_once)
{
    fixture f;
    start(&f);
    add_node(&f, "n2", "2");
    add_node(&f, "n3", "2");
    add_pod(&f, "w-0", "w", 3, "1", 2);
    add_pod(&f, "w-1", "w", 3, "1", 2);
    settle(&f);
    cr_assert(!bound(&f, "w-0"), "the gang is not complete");
    add_pod(&f, "w-2", "w", 3, "1", 2);
    settle(&f);
    char a[32], b[32], c[32];
    cr_assert_str_eq(node_of(&f, "w-0", a, sizeof a), "n1");
    cr_assert_str_eq(node_of(&f, "w-1", b, sizeof b), "n2");
    cr_assert_str_eq(node_of(&f, "w-2", c, sizeof c), "n3");
    /* no GPU is left anywhere: the next gang waits and says so for every node */
    add_pod(&f, "x-0", "x", 1, "1", 1);
    settle(&f);
    char st[16], reason[32], msg[256];
    scheduled(&f, "x-0", st, reason, msg);
    cr_assert_str_eq(msg, "waiting for resources: 0/3 nodes can take pod x-0 of the gang of 1: "
                          "3 nodes have too few free nvidia.com/gpu (need 1)");
    stop(&f);
}

Test(binder, preassigned_placement)
{
    fixture f;
    start(&f);
    add_node(&f, "n2", "2");
    add_pod(&f, "p-0", "p", 2, "1", 1);
    annotate(&f, "p-0", "0", "n2,n2");
    add_pod(&f, "p-1", "p", 2, "1", 2);
    annotate(&f, "p-1", "1", "n2,n2");
    settle(&f);
    char st[16], reason[32], msg[256];
    cr_assert(!bound(&f, "p-0"), "3 GPUs do not fit n2");
    scheduled(&f, "p-0", st, reason, msg);
    cr_assert_str_eq(msg, "waiting for resources: pod p-0 of the gang of 2 is placed on node n2, "
                          "which has too few free nvidia.com/gpu (need 1)");
    annotate(&f, "p-0", "0", "n1,n2");
    annotate(&f, "p-1", "1", "n1,n2");
    settle(&f);
    char a[32], b[32];
    cr_assert_str_eq(node_of(&f, "p-0", a, sizeof a), "n1");
    cr_assert_str_eq(node_of(&f, "p-1", b, sizeof b), "n2");
    stop(&f);
}

/* Status writes of running pods start no pass (each lists every pod); a pod that ends, which
 * frees what it held, does. */
Test(binder, running_pods_status_writes_start_no_pass)
{
    fixture f;
    start(&f);
    add_pod(&f, "g-0", "g", 2, "1", 0);
    add_pod(&f, "g-1", "g", 2, "1", 0);
    settle(&f);
    cr_assert(bound(&f, "g-0") && bound(&f, "g-1"));
    uint64_t before = ty_binder_passes(f.binder);
    set_phase(&f, "g-0", "Running");
    set_phase(&f, "g-1", "Running");
    settle(&f);
    cr_assert_eq(ty_binder_passes(f.binder), before);
    /* a pending pod waits for room; one running pod ending makes it, and binds it */
    add_pod(&f, "big", NULL, 1, "3", 0);
    settle(&f);
    cr_assert_not(bound(&f, "big"));
    before = ty_binder_passes(f.binder);
    set_phase(&f, "g-0", "Succeeded");
    settle(&f);
    cr_assert_gt(ty_binder_passes(f.binder), before);
    cr_assert(bound(&f, "big"));
    stop(&f);
}
