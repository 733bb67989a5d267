#include "controllers/nodeagent.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/jsontext.h"
#include "base/log.h"
#include "base/map.h"
#include "base/mem.h"
#include "controllers/events.h"
#include "controllers/podconfig.h"
#include "controllers/podutil.h"
#include "controllers/queue.h"
#include "controllers/volumes.h"

/* A pod handed to the runtime (started, or adopted after a restart), until its end is
 * written. */
typedef struct pod_entry {
    char *ns, *name, *uid;
    bool stopping;
    bool gone;
    json_t *report; /* the runtime's last status not yet written to the store, or NULL */
} pod_entry;

/* A pod's final status written at revision `rv`: once that is durable, the runtime is told
 * (ty_runtime_end_recorded), so that a later start does not report the end again. */
typedef struct end_record {
    char *ns, *name, *uid;
    uint64_t rv;
} end_record;

struct ty_nodeagent {
    ty_store *store;
    ty_map nodes; /* name -> (void *)1: the nodes whose pods this agent runs */
    ty_runtime *rt;
    ty_ipam *ipam;
    ty_queue *queue;
    ty_recorder *events;
    ty_map pods; /* uid -> pod_entry* for every pod handed to the runtime */
    int watch_id;
    end_record *ends;
    size_t nends, ends_cap;
    uv_check_t *check; /* runs while ends wait for their commit */
    bool remove_dirs;
    ty_nodeagent_prepare_fn prepare;
    void *prepare_ctx;
};

void ty_nodeagent_set_prepare(ty_nodeagent *a, ty_nodeagent_prepare_fn fn, void *ctx)
{
    a->prepare = fn;
    a->prepare_ctx = ctx;
}

/* The pod as the runtime gets it (a copy: the stored pod may share the tree): its claims as
 * the directories of their volumes, its ConfigMaps, Secrets and downward API as files and
 * values, and what the prepare hook adds. 0 with *out; 1 when it must wait (*wait says why);
 * -1 with `err`. */
static int pod_to_run(ty_nodeagent *a, const json_t *pod, json_t **out, ty_podconfig_wait *wait,
                      ty_error *err)
{
    json_t *run = ty_volumes_resolve_pod(a->store, pod, err);
    if (!run)
        return -1;
    int rc = ty_podconfig_resolve(a->store, run, wait, err);
    if (rc == 0 && a->prepare && a->prepare(a->prepare_ctx, run, err) < 0)
        rc = -1;
    if (rc != 0)
        json_decref(run);
    else
        *out = run;
    return rc;
}

static bool serves_pod(const ty_nodeagent *a, const json_t *pod)
{
    const char *node = json_string_value(json_object_get(json_object_get(pod, "spec"), "nodeName"));
    return node && ty_map_gets(&a->nodes, node);
}

static pod_entry *entry_new(ty_nodeagent *a, const char *ns, const char *name, const char *uid)
{
    pod_entry *e = TY_NEW(pod_entry);
    e->ns = ty_strdup(ns);
    e->name = ty_strdup(name);
    e->uid = ty_strdup(uid);
    ty_map_puts(&a->pods, uid, e);
    return e;
}

static void entry_free(pod_entry *e)
{
    free(e->ns);
    free(e->name);
    free(e->uid);
    json_decref(e->report);
    free(e);
}

static void entry_drop(ty_nodeagent *a, pod_entry *e)
{
    ty_map_dels(&a->pods, e->uid);
    entry_free(e);
}

static void on_event(void *ctx, ty_event_type type, const char *resource, const json_t *pod)
{
    ty_nodeagent *a = ctx;
    (void)resource;
    if (!serves_pod(a, pod))
        return;
    if (type == TY_EVENT_DELETED) {
        const char *uid = ty_obj_uid(pod);
        pod_entry *e = ty_map_gets(&a->pods, uid);
        if (e && !e->gone && !e->stopping) {
            /* Removed without our say (a forced delete): its processes must go now. */
            e->stopping = true;
            ty_runtime_stop_pod(a->rt, uid, 0);
        }
        if (e && e->gone)
            entry_drop(a, e);
        /* Its dir goes with it (after its processes, when they still run). */
        if (a->remove_dirs)
            ty_runtime_remove_pod(a->rt, ty_obj_namespace(pod), ty_obj_name(pod), uid);
        return;
    }
    TY_AUTOFREE char *key = ty_asprintf("%s/%s", ty_obj_namespace(pod), ty_obj_name(pod));
    ty_queue_add(a->queue, key);
}

static void on_check(uv_check_t *h);

/* Tells the runtime about every end whose write is durable now. */
static void flush_ends(ty_nodeagent *a)
{
    uint64_t durable = ty_store_committed_revision(a->store);
    size_t k = 0;
    for (size_t i = 0; i < a->nends; i++) {
        end_record *r = &a->ends[i];
        if (r->rv <= durable) {
            ty_runtime_end_recorded(a->rt, r->ns, r->name, r->uid);
            free(r->ns), free(r->name), free(r->uid);
        } else {
            a->ends[k++] = *r;
        }
    }
    a->nends = k;
    if (k == 0)
        uv_check_stop(a->check);
    else
        uv_check_start(a->check, on_check);
}

static void on_check(uv_check_t *h) { flush_ends(h->data); }

static void record_end(ty_nodeagent *a, const pod_entry *e)
{
    if (a->nends == a->ends_cap) {
        a->ends_cap = a->ends_cap ? a->ends_cap * 2 : 8;
        a->ends = ty_realloc(a->ends, a->ends_cap * sizeof *a->ends);
    }
    a->ends[a->nends++] = (end_record){ty_strdup(e->ns), ty_strdup(e->name), ty_strdup(e->uid),
                                       ty_store_revision(a->store)};
    flush_ends(a);
}

static int fail_to_start(ty_nodeagent *a, const json_t *pod, const char *message, ty_error *err)
{
    json_t *next = json_deep_copy(pod);
    ty_pod_set_condition(next, "Ready", "False", "StartError", message);
    json_t *st = json_object_get(next, "status");
    json_object_set_new(st, "phase", json_string("Failed"));
    json_object_set_new(st, "reason", json_string("StartError"));
    json_object_set_new(st, "message", json_string(message));
    int rc = ty_store_update_status(a->store, "pods", next, NULL, err);
    if (rc == 0)
        ty_event(a->events, pod, "Warning", "Failed", "Error: %s", message);
    json_decref(next);
    return rc < 0 ? ty_error_wrap(err, "write status") : 0;
}

/* How often a pod waiting for a ConfigMap or Secret looks again (the kubelet's pod workers
 * retry such errors on their next sync). */
#define CONFIG_RETRY_MS 1000

/* A pod whose ConfigMap, Secret or key is missing (podconfig.h): Pending, its containers
 * waiting with the kubelet's reason, an event saying why, and another try in a second. */
static int wait_to_start(ty_nodeagent *a, const json_t *pod, const ty_podconfig_wait *w,
                         const char *key, ty_error *err)
{
    bool config_error = strcmp(w->reason, "CreateContainerConfigError") == 0;
    json_t *next = json_deep_copy(pod);
    json_t *st = json_object_get(next, "status");
    if (!json_is_object(st))
        json_object_set_new(next, "status", st = json_object());
    json_object_set_new(st, "phase", json_string("Pending"));
    static const char *const lists[][2] = {{"initContainers", "initContainerStatuses"},
                                           {"containers", "containerStatuses"}};
    for (size_t l = 0; l < 2; l++) {
        json_t *statuses = json_array(), *c;
        size_t i;
        json_array_foreach(json_object_get(json_object_get(pod, "spec"), lists[l][0]), i, c) {
            json_t *waiting = json_pack("{s:s}", "reason", w->reason);
            if (config_error)
                json_object_set_new(waiting, "message", json_string(w->message));
            json_array_append_new(
                statuses,
                json_pack("{s:O, s:O?, s:s, s:b, s:i, s:b, s:{s:o}}", "name",
                          json_object_get(c, "name"), "image", json_object_get(c, "image"),
                          "imageID", "", "ready", 0, "restartCount", 0, "started", 0, "state",
                          "waiting", waiting));
        }
        if (json_array_size(statuses))
            json_object_set_new(st, lists[l][1], statuses);
        else
            json_decref(statuses);
    }
    int rc = 0;
    if (!json_equal(json_object_get(pod, "status"), st))
        rc = ty_store_update_status(a->store, "pods", next, NULL, err);
    json_decref(next);
    if (rc < 0)
        return ty_error_wrap(err, "write status");
    if (config_error)
        ty_event(a->events, pod, "Warning", w->event, "Error: %s", w->message);
    else
        ty_event(a->events, pod, "Warning", w->event, "%s", w->message);
    ty_queue_add_after(a->queue, key, CONFIG_RETRY_MS);
    return 0;
}

/* Whether the pod's processes ran: it has a start time, or a container status other than
 * the waits of wait_to_start (which never started anything). */
static bool pod_had_started(const json_t *pod)
{
    json_t *st = json_object_get(pod, "status");
    if (json_object_get(st, "startTime"))
        return true;
    size_t i;
    json_t *cs;
    json_array_foreach(json_object_get(st, "containerStatuses"), i, cs) {
        const json_t *w = json_object_get(json_object_get(cs, "state"), "waiting");
        const char *reason = json_string_value(json_object_get(w, "reason"));
        bool config_wait = reason && (strcmp(reason, "ContainerCreating") == 0 ||
                                      (strcmp(reason, "CreateContainerConfigError") == 0 &&
                                       ty_podconfig_is_wait(json_string_value(json_object_get(w, "message")))));
        if (!config_wait)
            return true;
    }
    return false;
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
            /* a run from an image in the store: the kubelet's words for a present image */
            const char *image_id = json_string_value(json_object_get(cs, "imageID"));
            const char *old_id = json_string_value(json_object_get(old, "imageID"));
            const char *wmsg = str_at2(state, "waiting", "message");
            const char *old_wmsg = str_at2(old_state, "waiting", "message");
            bool pulled = old_wmsg && (strncmp(old_wmsg, "Pulling image", 13) == 0 ||
                                       strncmp(old_wmsg, "Successfully pulled", 19) == 0);
            if (wmsg && (strncmp(wmsg, "Pulling image", 13) == 0 ||
                         strncmp(wmsg, "Successfully pulled", 19) == 0) &&
                !(old_wmsg && strcmp(old_wmsg, wmsg) == 0))
                ty_event(a->events, pod, "Normal", wmsg[0] == 'P' ? "Pulling" : "Pulled", "%s",
                         wmsg);
            else if (image_id && *image_id && !pulled && !(same_run && old_id && *old_id))
                ty_event(a->events, pod, "Normal", "Pulled",
                         "Container image \"%s\" already present on machine",
                         json_string_value(json_object_get(cs, "image")));
            /* a run on the host because the image store lacks its image (the shim's status
             * message says so per container): once per run, as the kubelet's image events */
            bool started = json_object_get(state, "running") || json_object_get(state,
                                                                                 "terminated");
            bool was_started = json_object_get(old_state, "running") ||
                               json_object_get(old_state, "terminated");
            const char *pmsg = json_string_value(json_object_get(status, "message"));
            if ((!image_id || !*image_id) && started && !(same_run && was_started) && pmsg) {
                TY_AUTOFREE char *needle = ty_asprintf("%s: ImageNotPresent", cname);
                if (strstr(pmsg, needle))
                    ty_event(a->events, pod, "Warning", "ImageNotPresent",
                             "Container image \"%s\" is not in the image store: container %s "
                             "runs on the host",
                             json_string_value(json_object_get(cs, "image")), cname);
            }
            if (term && strcmp(term, "StartError") == 0 &&
                !(same_run && str_at2(old_state, "terminated", "reason"))) {
                const char *msg = str_at2(state, "terminated", "message");
                ty_event(a->events, pod, "Warning", "Failed", "Error: %s", msg ? msg : term);
            } else if (wait && strcmp(wait, "CreateContainerConfigError") == 0 &&
                       !(old_wait && strcmp(old_wait, wait) == 0)) {
                const char *msg = str_at2(state, "waiting", "message");
                ty_event(a->events, pod, "Warning", "Failed", "Error: %s", msg ? msg : wait);
            } else if (wait && strcmp(wait, "ImagePullBackOff") == 0 &&
                       !(old_wait && strcmp(old_wait, wait) == 0)) {
                const char *msg = str_at2(state, "waiting", "message");
                ty_event(a->events, pod, "Normal", "BackOff", "%s", msg ? msg : wait);
            } else if (wait && (strcmp(wait, "ErrImageNeverPull") == 0 ||
                                strcmp(wait, "ErrImagePull") == 0) &&
                       !(old_wait && strcmp(old_wait, wait) == 0)) {
                /* the kubelet's image manager words these */
                const char *msg = str_at2(state, "waiting", "message");
                ty_event(a->events, pod, "Warning", wait, "%s", msg ? msg : wait);
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

/* Writes what the runtime observed as the pod's status (a write that changes nothing is
 * none). */
static int write_report(ty_nodeagent *a, const json_t *pod, const json_t *status, ty_error *err)
{
    json_t *next = json_deep_copy(pod);
    /* The runtime owns what it observed; the scheduler's condition and the class the API
     * server would compute are ours. */
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
    int rc = ty_store_update_status(a->store, "pods", next, NULL, err);
    json_decref(next);
    return rc < 0 ? ty_error_wrap(err, "write status") : 0;
}

/* Level-triggered, for a pod of a served node: writes what the runtime reported, starts a
 * bound pod that is not running, takes over one the runtime adopted, stops a deleted one and
 * removes its object once its processes are gone. Fails (retried by the queue with back-off)
 * when a write fails. */
static int reconcile(void *ctx, const char *key, ty_error *err)
{
    ty_nodeagent *a = ctx;
    const char *slash = strchr(key, '/');
    TY_AUTOFREE char *ns = ty_strndup(key, (size_t)(slash - key));
    const char *name = slash + 1;
    json_t *pod = ty_store_get(a->store, "pods", ns, name);
    if (!pod || !serves_pod(a, pod)) {
        json_decref(pod);
        return 0;
    }
    int rc = 0;
    const char *uid = ty_obj_uid(pod);
    pod_entry *e = ty_map_gets(&a->pods, uid);
    if (!e && ty_runtime_has_pod(a->rt, uid)) {
        /* Re-adopted after a restart of trainyard: the runtime reports its status. */
        e = entry_new(a, ns, name, uid);
        const char *ip =
            json_string_value(json_object_get(json_object_get(pod, "status"), "podIP"));
        if (ip)
            ty_ipam_reserve(a->ipam, key, ip, NULL);
    }
    if (e && e->report) {
        if ((rc = write_report(a, pod, e->report, err)) < 0)
            goto out;
        json_decref(e->report);
        e->report = NULL;
        json_decref(pod);
        pod = ty_store_get(a->store, "pods", ns, name);
        if (e->gone) {
            /* its end is written: once durable, a later start need not report it again */
            record_end(a, e);
            if (!ty_obj_deleting(pod)) {
                entry_drop(a, e);
                e = NULL;
            }
        }
    }
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
        } else if (ty_store_delete(a->store, "pods", ns, name, 0, err) < 0 &&
                   err->code != TY_STORE_NOT_FOUND) {
            rc = ty_error_wrap(err, "remove the stopped pod");
        }
    } else if (e) {
        /* the runtime runs it and reports on it */
    } else if (ty_pod_terminated(pod)) {
        /* ended for good */
    } else if (pod_had_started(pod)) {
        /* Its processes ran, but nothing of them is left to adopt (the pod directory is
         * gone): the pod failed, and the job's restart policy decides what comes next. */
        rc = fail_to_start(a, pod, "the pod's processes were lost while trainyard was not running",
                           err);
    } else {
        char ip[TY_IPAM_ADDR_MAX];
        ty_error serr = TY_ERROR_INIT;
        json_t *run = NULL;
        /* hostNetwork: the host's address, as the kubelet reports it (with a pod network;
         * on loopback addresses each pod keeps its own, which is what separates ports) */
        bool host_net = ty_ipam_is_block(a->ipam) &&
                        json_is_true(json_object_get(json_object_get(pod, "spec"), "hostNetwork"));
        if (host_net) {
            snprintf(ip, sizeof ip, "%s", ty_ipam_host(a->ipam));
            ty_ipam_release(a->ipam, key);
        }
        ty_podconfig_wait wait = {0};
        int cfg = 0;
        if (!host_net && ty_ipam_acquire(a->ipam, key, ip, &serr) < 0) {
            rc = fail_to_start(a, pod, serr.msg, err);
        } else if ((cfg = pod_to_run(a, pod, &run, &wait, &serr)) < 0 ||
                   (cfg == 0 && ty_runtime_start_pod(a->rt, run, ip, &serr) < 0)) {
            rc = fail_to_start(a, pod, serr.msg, err);
            ty_ipam_release(a->ipam, key);
        } else if (cfg == 1) {
            ty_ipam_release(a->ipam, key);
            rc = wait_to_start(a, pod, &wait, key, err);
        } else {
            ty_event(a->events, pod, "Normal", "Started", "Started pod %s at %s",
                     ty_obj_name(pod), ip);
            entry_new(a, ns, name, uid);
        }
        json_decref(run);
        ty_error_clear(&serr);
    }
out:
    json_decref(pod);
    return rc < 0 ? -1 : 0;
}

void ty_nodeagent_on_status(void *ctx, const char *ns, const char *name, const char *uid,
                            json_t *status, bool gone)
{
    ty_nodeagent *a = ctx;
    if (!a) {
        json_decref(status);
        return;
    }
    pod_entry *e = ty_map_gets(&a->pods, uid);
    json_t *pod = ty_store_get(a->store, "pods", ns, name);
    bool ours = pod && strcmp(ty_obj_uid(pod), uid) == 0;
    json_decref(pod);
    if (!ours) {
        /* Its object is gone (deleted, or replaced by a pod of the same name): nothing to
         * write; once its processes are gone, so is its dir. */
        if (gone && e)
            entry_drop(a, e);
        if (gone && a->remove_dirs)
            ty_runtime_remove_pod(a->rt, ns, name, uid);
        json_decref(status);
        return;
    }
    /* An adopted pod may report before its first reconcile. The write goes through the
     * queue, so a failed one is retried; the latest report wins. */
    if (!e)
        e = entry_new(a, ns, name, uid);
    json_decref(e->report);
    e->report = status;
    TY_AUTOFREE char *key = ty_asprintf("%s/%s", ns, name);
    if (gone && !e->gone) {
        /* gone also comes for a pod that ended for good without being deleted (its shim
         * exits then): its status is final and the pod object stays until deleted. */
        e->gone = true;
        ty_ipam_release(a->ipam, key);
    }
    ty_queue_add(a->queue, key);
}

void ty_nodeagent_on_event(void *ctx, const char *ns, const char *name, const char *uid,
                           const char *type, const char *reason, const char *message)
{
    ty_nodeagent *a = ctx;
    if (!a)
        return;
    json_t *pod = ty_store_get(a->store, "pods", ns, name);
    if (pod && strcmp(ty_obj_uid(pod), uid) == 0)
        ty_event(a->events, pod, type, reason, "%s", message);
    json_decref(pod);
}

static void check_closed(uv_handle_t *h) { free(h); }

ty_nodeagent *ty_nodeagent_new(uv_loop_t *loop, ty_store *store, const char *node_name,
                               ty_runtime *rt, ty_ipam *ipam)
{
    ty_nodeagent *a = TY_NEW(ty_nodeagent);
    a->store = store;
    ty_map_puts(&a->nodes, node_name, (void *)1);
    a->rt = rt;
    a->ipam = ipam;
    a->queue = ty_queue_new(loop, "nodeagent", reconcile, a);
    a->events = ty_recorder_new(store, "kubelet");
    ty_store_watch(store, &(ty_store_watch_opts){.resource = "pods", .fn = on_event, .ctx = a},
                   &a->watch_id, NULL);
    a->check = TY_NEW(uv_check_t);
    uv_check_init(loop, a->check);
    a->check->data = a;
    return a;
}

void ty_nodeagent_add_node(ty_nodeagent *a, const char *node_name)
{
    ty_map_puts(&a->nodes, node_name, (void *)1);
    ty_nodeagent_resync(a); /* pods bound to it before it was added */
}

/* The value of a string member in an object's text, without its quotes (names, phases:
 * no escapes); NULL when absent. */
static char *text_string(const ty_store_item *it, const char *path)
{
    const char *v;
    size_t len;
    if (!ty_json_text_at(it->text, it->len, path, &v, &len) || len < 2 || v[0] != '"')
        return NULL;
    return ty_strndup(v + 1, len - 2);
}

void ty_nodeagent_resync(ty_nodeagent *a)
{
    /* Read from the stored text (nothing parsed): the pods bound here, except those that
     * ended for good and are not being deleted (their reports queue them by themselves). */
    ty_store_item *items = NULL;
    size_t n = ty_store_list_items(a->store, "pods", NULL, &items);
    for (size_t i = 0; i < n; i++) {
        TY_AUTOFREE char *node = text_string(&items[i], "spec.nodeName");
        if (!node || !ty_map_gets(&a->nodes, node))
            continue;
        TY_AUTOFREE char *phase = text_string(&items[i], "status.phase");
        TY_AUTOFREE char *deleting = text_string(&items[i], "metadata.deletionTimestamp");
        if (!deleting && phase &&
            (strcmp(phase, "Succeeded") == 0 || strcmp(phase, "Failed") == 0))
            continue;
        ty_queue_add(a->queue, items[i].key);
    }
    free(items);
}

static bool in_set(void *ctx, const char *uid) { return ty_map_gets(ctx, uid) != NULL; }

void ty_nodeagent_remove_dirs(ty_nodeagent *a)
{
    a->remove_dirs = true;
    /* the uids of the stored pods, read from their text */
    ty_map uids = {0};
    ty_store_item *items = NULL;
    size_t n = ty_store_list_items(a->store, "pods", NULL, &items);
    for (size_t i = 0; i < n; i++) {
        const char *v;
        size_t len;
        if (!ty_json_text_at(items[i].text, items[i].len, "metadata.uid", &v, &len) || len < 2)
            continue;
        TY_AUTOFREE char *uid = ty_strndup(v + 1, len - 2); /* uids need no escapes */
        ty_map_puts(&uids, uid, (void *)1);
    }
    free(items);
    ty_error err = TY_ERROR_INIT;
    if (ty_runtime_sweep(a->rt, in_set, &uids, &err) < 0)
        ty_warn("nodeagent: %s", err.msg);
    ty_error_clear(&err);
    ty_map_free(&uids);
}

void ty_nodeagent_free(ty_nodeagent *a)
{
    if (!a)
        return;
    ty_store_unwatch(a->store, a->watch_id);
    ty_queue_free(a->queue);
    ty_recorder_free(a->events);
    const ty_map_slot *slot;
    for (size_t i = 0; ty_map_next(&a->pods, &i, &slot);)
        entry_free(slot->value);
    ty_map_free(&a->pods);
    ty_map_free(&a->nodes);
    /* Ends not yet durable stay unrecorded: the next start reports them again. */
    for (size_t i = 0; i < a->nends; i++)
        free(a->ends[i].ns), free(a->ends[i].name), free(a->ends[i].uid);
    free(a->ends);
    uv_close((uv_handle_t *)a->check, check_closed);
    free(a);
}
