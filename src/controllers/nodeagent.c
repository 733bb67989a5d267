#include "controllers/nodeagent.h"

#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/map.h"
#include "base/mem.h"
#include "controllers/events.h"
#include "controllers/podutil.h"
#include "controllers/queue.h"
#include "controllers/volumes.h"

typedef struct pod_entry {
    char *ns, *name;
    bool stopping;
    bool gone;
} pod_entry;

struct ty_nodeagent {
    ty_store *store;
    ty_map nodes; /* name -> (void *)1: the nodes whose pods this agent runs */
    ty_runtime *rt;
    ty_ipam *ipam;
    ty_queue *queue;
    ty_recorder *events;
    ty_map pods; /* uid -> pod_entry* for every pod handed to the runtime */
    int watch_id;
};

static void on_event(void *ctx, ty_event_type type, const char *resource, const json_t *pod)
{
    ty_nodeagent *a = ctx;
    (void)resource;
    const char *node = json_string_value(json_object_get(json_object_get(pod, "spec"), "nodeName"));
    if (!node || !ty_map_gets(&a->nodes, node))
        return;
    if (type == TY_EVENT_DELETED) {
        /* Removed without our say (a forced delete): its processes must go now. */
        pod_entry *e = ty_map_gets(&a->pods, ty_obj_uid(pod));
        if (e && !e->gone && !e->stopping) {
            e->stopping = true;
            ty_runtime_stop_pod(a->rt, ty_obj_uid(pod), 0);
        }
        return;
    }
    TY_AUTOFREE char *key = ty_asprintf("%s/%s", ty_obj_namespace(pod), ty_obj_name(pod));
    ty_queue_add(a->queue, key);
}

static void fail_to_start(ty_nodeagent *a, const json_t *pod, const char *message)
{
    json_t *next = json_deep_copy(pod);
    ty_pod_set_condition(next, "Ready", "False", "StartError", message);
    json_t *st = json_object_get(next, "status");
    json_object_set_new(st, "phase", json_string("Failed"));
    json_object_set_new(st, "reason", json_string("StartError"));
    json_object_set_new(st, "message", json_string(message));
    ty_store_update_status(a->store, "pods", next, NULL, NULL);
    ty_event(a->events, pod, "Warning", "Failed", "Error: %s", message);
    json_decref(next);
}

static bool pod_had_started(const json_t *pod)
{
    json_t *st = json_object_get(pod, "status");
    return json_object_get(st, "startTime") || json_array_size(json_object_get(st, "containerStatuses"));
}

static void reconcile(void *ctx, const char *key)
{
    ty_nodeagent *a = ctx;
    const char *slash = strchr(key, '/');
    TY_AUTOFREE char *ns = ty_strndup(key, (size_t)(slash - key));
    json_t *pod = ty_store_get(a->store, "pods", ns, slash + 1);
    if (!pod)
        return;
    const char *uid = ty_obj_uid(pod);
    pod_entry *e = ty_map_gets(&a->pods, uid);
    if (ty_obj_deleting(pod)) {
        if (e && !e->gone) {
            if (!e->stopping) {
                e->stopping = true;
                ty_event(a->events, pod, "Normal", "Killing", "Stopping pod %s",
                         ty_obj_name(pod));
                json_t *g = json_object_get(json_object_get(pod, "metadata"),
                                            "deletionGracePeriodSeconds");
                ty_runtime_stop_pod(a->rt, uid, g ? json_integer_value(g) : 30);
            }
        } else {
            ty_store_delete(a->store, "pods", ns, slash + 1, 0, NULL);
        }
    } else if (!e && !ty_pod_terminated(pod) && ty_runtime_has_pod(a->rt, uid)) {
        /* Re-adopted after a restart of trainyard: the runtime reports its status. */
        e = TY_NEW(pod_entry);
        e->ns = ty_strdup(ns);
        e->name = ty_strdup(slash + 1);
        ty_map_puts(&a->pods, uid, e);
        const char *ip = json_string_value(json_object_get(json_object_get(pod, "status"), "podIP"));
        if (ip)
            ty_ipam_reserve(a->ipam, key, ip, NULL);
    } else if (!e && !ty_pod_terminated(pod) && pod_had_started(pod)) {
        /* Its processes ran, but nothing of them is left to adopt (the pod directory is
         * gone): the pod failed, and the job's restart policy decides what comes next. */
        fail_to_start(a, pod, "the pod's processes were lost while trainyard was not running");
    } else if (!e && !ty_pod_terminated(pod)) {
        char ip[TY_IPAM_ADDR_MAX];
        ty_error err = TY_ERROR_INIT;
        json_t *run = NULL;
        if (ty_ipam_acquire(a->ipam, key, ip, &err) < 0) {
            fail_to_start(a, pod, err.msg);
        } else if (!(run = ty_volumes_resolve_pod(a->store, pod, &err)) ||
                   ty_runtime_start_pod(a->rt, run, ip, &err) < 0) {
            /* run: the pod with its claims as the directories of their volumes */
            fail_to_start(a, pod, err.msg);
            ty_ipam_release(a->ipam, key);
        } else {
            ty_event(a->events, pod, "Normal", "Started", "Started pod %s at %s",
                     ty_obj_name(pod), ip);
            e = TY_NEW(pod_entry);
            e->ns = ty_strdup(ns);
            e->name = ty_strdup(slash + 1);
            ty_map_puts(&a->pods, uid, e);
        }
        json_decref(run);
        ty_error_clear(&err);
    }
    json_decref(pod);
}

static const char *str_at2(const json_t *o, const char *a, const char *b)
{
    return json_string_value(json_object_get(json_object_get(o, a), b));
}

/* The container's status of that name in the pod's stored status (init or main), or NULL. */
static const json_t *stored_container(const json_t *pod, const char *list, const char *name)
{
    size_t i;
    json_t *cs;
    json_array_foreach(json_object_get(json_object_get(pod, "status"), list), i, cs)
    {
        const char *n = json_string_value(json_object_get(cs, "name"));
        if (n && strcmp(n, name) == 0)
            return cs;
    }
    return NULL;
}

/* The kubelet's events for what the runtime observed since the stored status: a container
 * that could not start (Failed, with the error) and one waiting to restart after a crash
 * (BackOff). Each is recorded once per change of the container's state; repeats over many
 * restarts aggregate into one Event's count, so a crash loop never floods the store. */
static void record_container_events(ty_nodeagent *a, const json_t *pod, const json_t *status)
{
    const char *lists[] = {"initContainerStatuses", "containerStatuses"};
    for (size_t l = 0; l < 2; l++) {
        size_t i;
        json_t *cs;
        json_array_foreach(json_object_get(status, lists[l]), i, cs)
        {
            const char *cname = json_string_value(json_object_get(cs, "name"));
            if (!cname)
                continue;
            const json_t *old = stored_container(pod, lists[l], cname);
            json_t *state = json_object_get(cs, "state");
            const json_t *old_state = json_object_get(old, "state");
            const char *term = str_at2(state, "terminated", "reason");
            const char *wait = str_at2(state, "waiting", "reason");
            const char *old_wait = str_at2(old_state, "waiting", "reason");
            bool same_run = json_equal(json_object_get(cs, "restartCount"),
                                       json_object_get(old, "restartCount"));
            if (term && strcmp(term, "StartError") == 0 &&
                !(same_run && str_at2(old_state, "terminated", "reason"))) {
                const char *msg = str_at2(state, "terminated", "message");
                ty_event(a->events, pod, "Warning", "Failed", "Error: %s", msg ? msg : term);
            } else if (wait && strcmp(wait, "CreateContainerConfigError") == 0 &&
                       !(old_wait && strcmp(old_wait, wait) == 0)) {
                const char *msg = str_at2(state, "waiting", "message");
                ty_event(a->events, pod, "Warning", "Failed", "Error: %s", msg ? msg : wait);
            } else if (wait && strcmp(wait, "CrashLoopBackOff") == 0 &&
                       !(same_run && old_wait && strcmp(old_wait, wait) == 0)) {
                /* A start error restarted in place shows only as the last state. */
                const json_t *last = json_object_get(json_object_get(cs, "lastState"),
                                                     "terminated");
                const char *lr = json_string_value(json_object_get(last, "reason"));
                const char *lm = json_string_value(json_object_get(last, "message"));
                if (lr && strcmp(lr, "StartError") == 0)
                    ty_event(a->events, pod, "Warning", "Failed", "Error: %s", lm ? lm : lr);
                ty_event(a->events, pod, "Warning", "BackOff",
                         "Back-off restarting failed container %s in pod %s_%s(%s)", cname,
                         ty_obj_name(pod), ty_obj_namespace(pod), ty_obj_uid(pod));
            }
        }
    }
}

void ty_nodeagent_on_status(void *ctx, const char *ns, const char *name, const char *uid,
                            json_t *status, bool gone)
{
    ty_nodeagent *a = ctx;
    pod_entry *e = a ? ty_map_gets(&a->pods, uid) : NULL;
    json_t *pod = a ? ty_store_get(a->store, "pods", ns, name) : NULL;
    if (pod && strcmp(ty_obj_uid(pod), uid) == 0) {
        json_t *next = json_deep_copy(pod);
        /* The runtime owns what it observed (and may still hold `status`: copy it); the
         * scheduler's condition and the class the API server would compute are ours. */
        json_t *observed = json_deep_copy(status);
        json_t *conds = json_object_get(observed, "conditions");
        if (!json_is_array(conds)) {
            conds = json_array();
            json_object_set_new(observed, "conditions", conds);
        }
        for (size_t i = json_array_size(conds); i-- > 0;) {
            const char *type = json_string_value(json_object_get(json_array_get(conds, i), "type"));
            if (type && strcmp(type, "PodScheduled") == 0)
                json_array_remove(conds, i);
        }
        const json_t *scheduled = ty_pod_condition(pod, "PodScheduled");
        if (scheduled)
            json_array_insert_new(conds, 0, json_deep_copy(scheduled));
        json_object_set_new(observed, "qosClass", json_string(ty_pod_qos_class(pod)));
        json_object_set_new(next, "status", observed);
        record_container_events(a, pod, observed);
        ty_store_update_status(a->store, "pods", next, NULL, NULL);
        json_decref(next);
    }
    /* gone also comes for a pod that ended for good without being deleted (its shim exits
     * then): its status above is final and the pod object stays until someone deletes it. */
    if (gone && e) {
        e->gone = true;
        TY_AUTOFREE char *key = ty_asprintf("%s/%s", ns, name);
        ty_ipam_release(a->ipam, key);
        if (pod && strcmp(ty_obj_uid(pod), uid) == 0 && ty_obj_deleting(pod))
            ty_store_delete(a->store, "pods", ns, name, 0, NULL);
    }
    json_decref(pod);
    json_decref(status);
}

ty_nodeagent *ty_nodeagent_new(uv_loop_t *loop, ty_store *store, const char *node_name,
                               ty_runtime *rt, ty_ipam *ipam)
{
    ty_nodeagent *a = TY_NEW(ty_nodeagent);
    a->store = store;
    ty_map_puts(&a->nodes, node_name, (void *)1);
    a->rt = rt;
    a->ipam = ipam;
    a->queue = ty_queue_new(loop, reconcile, a);
    a->events = ty_recorder_new(store, "kubelet");
    a->watch_id = ty_store_watch(store, "pods", on_event, a);
    return a;
}

void ty_nodeagent_add_node(ty_nodeagent *a, const char *node_name)
{
    ty_map_puts(&a->nodes, node_name, (void *)1);
    /* pods bound to it before it was added */
    json_t *pods = ty_store_list(a->store, "pods", NULL);
    size_t i;
    json_t *pod;
    json_array_foreach(pods, i, pod) on_event(a, TY_EVENT_MODIFIED, "pods", pod);
    json_decref(pods);
}

void ty_nodeagent_free(ty_nodeagent *a)
{
    if (!a)
        return;
    ty_store_unwatch(a->store, a->watch_id);
    ty_queue_free(a->queue);
    ty_recorder_free(a->events);
    const ty_map_slot *slot;
    for (size_t i = 0; ty_map_next(&a->pods, &i, &slot);) {
        pod_entry *e = slot->value;
        free(e->ns);
        free(e->name);
        free(e);
    }
    ty_map_free(&a->pods);
    ty_map_free(&a->nodes);
    free(a);
}
