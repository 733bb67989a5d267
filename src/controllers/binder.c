#include "controllers/binder.h"

#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/map.h"
#include "base/mem.h"
#include "base/time.h"
#include "controllers/events.h"
#include "controllers/podutil.h"
#include "controllers/queue.h"
#include "controllers/resources.h"

struct ty_binder {
    ty_store *store;
    char *node_name;
    ty_queue *queue;
    ty_recorder *events;
    int watch_id;
};

typedef struct gang {
    char *key; /* namespace/pod-group, or namespace/pod-name for a pod without a group */
    json_t *pods; /* array of borrowed-from-list references */
    long size;
    const char *created; /* oldest creationTimestamp */
} gang;

static void on_event(void *ctx, ty_event_type type, const char *resource, const json_t *obj)
{
    ty_binder *b = ctx;
    (void)type;
    (void)obj;
    (void)resource;
    ty_queue_add(b->queue, "pass");
}

static int compare_gangs(const void *x, const void *y)
{
    const gang *a = x, *b = y;
    int c = strcmp(a->created ? a->created : "", b->created ? b->created : "");
    return c ? c : strcmp(a->key, b->key);
}

static void set_unschedulable(ty_binder *b, json_t *pod, const char *message)
{
    ty_pod_set_condition_result r = ty_pod_set_condition(pod, "PodScheduled", "False",
                                                          "Unschedulable", message);
    if (r == TY_POD_CONDITION_UNCHANGED)
        return;
    ty_error err = TY_ERROR_INIT;
    if (ty_store_update_status(b->store, "pods", pod, NULL, &err) < 0)
        ty_debug("binder: %s", err.msg);
    else
        ty_event(b->events, pod, "Warning", "FailedScheduling", "%s", message);
    ty_error_clear(&err);
}

static void mark_waiting(ty_binder *b, gang *g, const char *message)
{
    size_t i;
    json_t *pod;
    json_array_foreach(g->pods, i, pod)
    {
        json_t *copy = json_deep_copy(pod);
        set_unschedulable(b, copy, message);
        json_decref(copy);
    }
}

static void bind_gang(ty_binder *b, gang *g)
{
    size_t i;
    json_t *pod;
    json_array_foreach(g->pods, i, pod)
    {
        json_t *next = json_deep_copy(pod);
        json_object_set_new(json_object_get(next, "spec"), "nodeName", json_string(b->node_name));
        ty_error err = TY_ERROR_INIT;
        json_t *stored = NULL;
        if (ty_store_update(b->store, "pods", next, &stored, &err) == 0 && stored) {
            json_t *st = json_deep_copy(stored);
            ty_pod_set_condition(st, "PodScheduled", "True", NULL, NULL);
            ty_store_update_status(b->store, "pods", st, NULL, NULL);
            ty_event(b->events, stored, "Normal", "Scheduled", "Successfully assigned %s/%s to %s",
                     ty_obj_namespace(stored), ty_obj_name(stored), b->node_name);
            json_decref(st);
        } else if (err.msg) {
            ty_debug("binder: bind %s: %s", ty_obj_name(pod), err.msg);
        }
        json_decref(stored);
        json_decref(next);
        ty_error_clear(&err);
    }
}

static void pass(void *ctx, const char *key)
{
    ty_binder *b = ctx;
    (void)key;
    json_t *node = ty_store_get(b->store, "nodes", NULL, b->node_name);
    if (!node)
        return;
    ty_resources avail = ty_node_allocatable(node);
    json_decref(node);

    json_t *pods = ty_store_list(b->store, "pods", NULL);
    ty_map by_key = TY_MAP_INIT;
    ty_map running = TY_MAP_INIT; /* gang key -> running bound members */
    gang *gangs = NULL;
    size_t ngangs = 0;
    size_t i;
    json_t *pod;
    json_array_foreach(pods, i, pod)
    {
        json_t *spec = json_object_get(pod, "spec");
        const char *bound = json_string_value(json_object_get(spec, "nodeName"));
        if (bound) {
            if (strcmp(bound, b->node_name) != 0 || ty_pod_terminated(pod))
                continue;
            ty_resources_sub(&avail, ty_pod_spec_requests(spec));
            /* A running member of a gang counts toward the gang's size: a pod the job
             * controller recreated alone (restartPolicy ExitCode) joins its running peers. */
            const char *bgroup = ty_obj_label(pod, TY_LABEL_POD_GROUP);
            if (bgroup && !ty_obj_deleting(pod)) {
                TY_AUTOFREE char *bkey = ty_asprintf("%s/%s", ty_obj_namespace(pod), bgroup);
                uintptr_t n = (uintptr_t)ty_map_gets(&running, bkey);
                ty_map_puts(&running, bkey, (void *)(n + 1));
            }
            continue;
        }
        if (ty_obj_deleting(pod) || ty_pod_terminated(pod))
            continue;
        const char *group = ty_obj_label(pod, TY_LABEL_POD_GROUP);
        TY_AUTOFREE char *gkey =
            ty_asprintf("%s/%s", ty_obj_namespace(pod), group ? group : ty_obj_name(pod));
        gang *g = NULL;
        size_t idx = (size_t)(uintptr_t)ty_map_gets(&by_key, gkey);
        if (idx) {
            g = &gangs[idx - 1];
        } else {
            gangs = ty_realloc(gangs, (ngangs + 1) * sizeof(gang));
            g = &gangs[ngangs++];
            *g = (gang){.key = ty_strdup(gkey), .pods = json_array(), .size = 1};
            ty_map_puts(&by_key, gkey, (void *)(uintptr_t)ngangs);
        }
        json_t *meta = json_object_get(pod, "metadata");
        const char *size = json_string_value(
            json_object_get(json_object_get(meta, "annotations"), TY_ANNOTATION_GANG_SIZE));
        if (group && size)
            g->size = strtol(size, NULL, 10);
        const char *created = json_string_value(json_object_get(meta, "creationTimestamp"));
        if (!g->created || (created && strcmp(created, g->created) < 0))
            g->created = created;
        json_array_append(g->pods, pod);
    }
    ty_map_free(&by_key);
    if (ngangs) /* qsort wants a non-NULL array even for zero elements */
        qsort(gangs, ngangs, sizeof(gang), compare_gangs);
    for (size_t k = 0; k < ngangs; k++) {
        gang *g = &gangs[k];
        ty_resources need = {0};
        json_array_foreach(g->pods, i, pod)
            ty_resources_add(&need, ty_pod_spec_requests(json_object_get(pod, "spec")));
        char why[200];
        size_t have = json_array_size(g->pods) + (uintptr_t)ty_map_gets(&running, g->key);
        if ((long)have < g->size) {
            snprintf(why, sizeof why, "waiting for the gang: %zu of %ld pods created", have,
                     g->size);
            mark_waiting(b, g, why);
        } else if (!ty_resources_fit(need, avail, "free", why, sizeof why)) {
            TY_AUTOFREE char *msg =
                ty_asprintf("waiting for resources for the gang of %zu pod%s: %s",
                            json_array_size(g->pods), json_array_size(g->pods) == 1 ? "" : "s",
                            why);
            mark_waiting(b, g, msg);
        } else {
            ty_resources_sub(&avail, need);
            bind_gang(b, g);
        }
        json_decref(g->pods);
        free(g->key);
    }
    free(gangs);
    ty_map_free(&running);
    json_decref(pods);
}

ty_binder *ty_binder_new(uv_loop_t *loop, ty_store *store, const char *node_name)
{
    ty_binder *b = TY_NEW(ty_binder);
    b->store = store;
    b->node_name = ty_strdup(node_name);
    b->queue = ty_queue_new(loop, pass, b);
    b->events = ty_recorder_new(store, "default-scheduler");
    b->watch_id = ty_store_watch(store, "pods", on_event, b);
    ty_queue_add(b->queue, "pass");
    return b;
}

void ty_binder_free(ty_binder *b)
{
    if (!b)
        return;
    ty_store_unwatch(b->store, b->watch_id);
    ty_queue_free(b->queue);
    ty_recorder_free(b->events);
    free(b->node_name);
    free(b);
}
