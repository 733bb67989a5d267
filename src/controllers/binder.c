#include "controllers/binder.h"

#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/map.h"
#include "base/mem.h"
#include "base/time.h"
#include "controllers/events.h"
#include "controllers/kubeflow.h"
#include "controllers/placement.h"
#include "controllers/podutil.h"
#include "controllers/queue.h"
#include "controllers/volumes.h"
#include "store/writer.h"

struct ty_binder {
    ty_store *store;
    ty_map nodes; /* name -> (void *)1: the nodes this binder places pods on */
    /* A cluster's binder (ty_binder_new with no node): every node, and only the pods that
     * name trainyard as their scheduler (the others are kube-scheduler's). */
    bool cluster;
    /* In cluster mode a binding reaches the cache only through the watch: until then the
     * pod is assumed on its node ("ns/name" -> assumed*), as kube-scheduler's cache assumes
     * a pod it is binding, so that no pass places it again or gives its room away. */
    ty_map assumed;
    ty_queue *queue;
    ty_recorder *events;
    int watch_id, claims_watch_id;
    uint64_t passes;
    /* The first write of the current pass that failed: the pass then fails, and the queue
     * runs it again after its back-off. */
    ty_error write_err;
};

typedef struct assumed {
    char *node;
    int64_t since_ns;
} assumed;

/* How long a binding may take to come back through the watch before the pod is no longer
 * assumed (a binding the cluster refused leaves the pod unbound: it is placed again). */
#define ASSUME_TTL_NS (30 * 1000000000LL)

typedef struct gang {
    char *key; /* namespace/pod-group, or namespace/pod-name for a pod without a group */
    json_t *pods; /* array of borrowed-from-list references */
    long size;
    const char *created; /* oldest creationTimestamp */
} gang;

static void forget_assumed(ty_binder *b, const json_t *pod);

/* A pass lists every pod. A write to a bound pod that neither ends it nor deletes it (the node
 * agent's status reports of running pods, the binder's own bindings) changes no decision: the
 * pod holds what it held and counts for its gang as before, and pod specs do not change. */
static void on_event(void *ctx, ty_event_type type, const char *resource, const json_t *obj)
{
    ty_binder *b = ctx;
    (void)resource;
    if (type == TY_EVENT_DELETED ||
        json_string_value(json_object_get(json_object_get(obj, "spec"), "nodeName")))
        forget_assumed(b, obj); /* the binding came back, or the pod is gone */
    if (type == TY_EVENT_MODIFIED &&
        json_string_value(json_object_get(json_object_get(obj, "spec"), "nodeName")) &&
        !ty_pod_terminated(obj) && !ty_obj_deleting(obj))
        return;
    ty_queue_add(b->queue, "pass");
}

static void on_claim(void *ctx, ty_event_type type, const char *resource, const json_t *obj)
{
    (void)type, (void)resource, (void)obj;
    ty_binder *b = ctx;
    ty_queue_add(b->queue, "pass");
}

static int compare_gangs(const void *x, const void *y)
{
    const gang *a = x, *b = y;
    int c = strcmp(a->created ? a->created : "", b->created ? b->created : "");
    return c ? c : strcmp(a->key, b->key);
}

static void write_failed(ty_binder *b, const char *what, const json_t *pod, const char *msg)
{
    if (!b->write_err.msg)
        ty_fail(&b->write_err, "%s %s/%s: %s", what, ty_obj_namespace(pod), ty_obj_name(pod),
                msg);
}

static void set_unschedulable(ty_binder *b, json_t *pod, const char *message)
{
    ty_pod_set_condition_result r = ty_pod_set_condition(pod, "PodScheduled", "False",
                                                          "Unschedulable", message);
    if (r == TY_POD_CONDITION_UNCHANGED)
        return;
    ty_error err = TY_ERROR_INIT;
    if (ty_write_update_status(b->store, "pods", pod, NULL, &err) < 0)
        write_failed(b, "mark unschedulable", pod, err.msg);
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

static void bind_gang(ty_binder *b, gang *g, const char **where)
{
    size_t i;
    json_t *pod;
    json_array_foreach(g->pods, i, pod)
    {
        ty_error err = TY_ERROR_INIT;
        json_t *stored = NULL;
        if (ty_write_bind(b->store, pod, where[i], &stored, &err) == 0) {
            if (stored) { /* local: the binding is the store's; the condition is ours to set */
                json_t *st = json_deep_copy(stored);
                ty_pod_set_condition(st, "PodScheduled", "True", NULL, NULL);
                /* Only the condition is lost if this fails: the pod is bound and runs, and no
                 * pass looks at a bound pod again to retry it. */
                ty_write_update_status(b->store, "pods", st, NULL, NULL);
                json_decref(st);
            } else { /* a cluster's API server sets the condition with the binding */
                TY_AUTOFREE char *key =
                    ty_asprintf("%s/%s", ty_obj_namespace(pod), ty_obj_name(pod));
                assumed *a = TY_NEW(assumed);
                *a = (assumed){ty_strdup(where[i]), ty_time_now_ns()};
                assumed *old = ty_map_gets(&b->assumed, key);
                if (old)
                    free(old->node), free(old);
                ty_map_puts(&b->assumed, key, a);
            }
            ty_event(b->events, pod, "Normal", "Scheduled", "Successfully assigned %s/%s to %s",
                     ty_obj_namespace(pod), ty_obj_name(pod), where[i]);
        } else if (err.msg) {
            write_failed(b, "bind", pod, err.msg);
        }
        json_decref(stored);
        ty_error_clear(&err);
    }
}

/* The node an unbound pod is assumed on (a binding on its way), or NULL; forgets pods whose
 * binding has not come back in time. */
static const char *assumed_node(ty_binder *b, const json_t *pod, int64_t now)
{
    if (!b->assumed.count)
        return NULL;
    TY_AUTOFREE char *key = ty_asprintf("%s/%s", ty_obj_namespace(pod), ty_obj_name(pod));
    assumed *a = ty_map_gets(&b->assumed, key);
    if (!a)
        return NULL;
    if (now - a->since_ns > ASSUME_TTL_NS) {
        free(a->node);
        free(a);
        ty_map_dels(&b->assumed, key);
        return NULL;
    }
    return a->node;
}

static void forget_assumed(ty_binder *b, const json_t *pod)
{
    if (!b->assumed.count)
        return;
    TY_AUTOFREE char *key = ty_asprintf("%s/%s", ty_obj_namespace(pod), ty_obj_name(pod));
    assumed *a = ty_map_gets(&b->assumed, key);
    if (a) {
        free(a->node);
        free(a);
        ty_map_dels(&b->assumed, key);
    }
}

static const char *annotation(const json_t *obj, const char *key)
{
    return json_string_value(
        json_object_get(json_object_get(json_object_get(obj, "metadata"), "annotations"), key));
}

/* The node a pod's replica is preassigned to (TY_ANNOTATION_PLACEMENT), as a new string;
 * NULL when it has none. Fails when the list names no node for the pod's replica index. */
static int preassigned(const json_t *pod, char **out, char *why, size_t cap)
{
    *out = NULL;
    const char *list = annotation(pod, TY_ANNOTATION_PLACEMENT);
    if (!list)
        return 0;
    const char *idx = ty_obj_label(pod, TY_KUBEFLOW_LABEL_REPLICA_INDEX);
    char *end = NULL;
    long want = idx ? strtol(idx, &end, 10) : -1;
    if (!idx || *end || want < 0) {
        snprintf(why, cap, "pod %s has the annotation " TY_ANNOTATION_PLACEMENT
                 " but no replica index label", ty_obj_name(pod));
        return -1;
    }
    long k = 0;
    for (const char *p = list;; k++) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (k == want) {
            while (len && *p == ' ')
                p++, len--;
            while (len && p[len - 1] == ' ')
                len--;
            if (!len)
                break;
            *out = ty_strndup(p, len);
            return 0;
        }
        if (!comma)
            break;
        p = comma + 1;
    }
    snprintf(why, cap, "pod %s: the annotation " TY_ANNOTATION_PLACEMENT " (%s) names no node "
             "for replica index %ld", ty_obj_name(pod), list, want);
    return -1;
}

/* Places the gang on the nodes' free capacity: binds it and takes what it uses, or says why
 * it waits. */
static void try_gang(ty_binder *b, gang *g, json_t *nodes, json_t **free_of)
{
    size_t n_nodes = json_array_size(nodes), n = json_array_size(g->pods);
    ty_placement_node *pn = ty_calloc(n_nodes + 1, sizeof *pn);
    ty_placement_pod *pp = ty_calloc(n + 1, sizeof *pp);
    size_t *out = ty_calloc(n + 1, sizeof(size_t));
    char **pre = ty_calloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n_nodes; i++)
        pn[i] = (ty_placement_node){json_array_get(nodes, i), free_of[i]};
    char why[300] = "";
    bool ok = true;
    size_t i;
    json_t *pod;
    json_array_foreach(g->pods, i, pod)
    {
        /* A pod waits for its claims (the scheduler's VolumeBinding). */
        if (ok && !ty_volumes_check_pod(b->store, pod, why, sizeof why))
            ok = false;
        if (ok && preassigned(pod, &pre[i], why, sizeof why) < 0)
            ok = false;
        pp[i] = (ty_placement_pod){ty_obj_name(pod), json_object_get(pod, "spec"), pre[i]};
    }
    ty_error err = TY_ERROR_INIT;
    if (!ok) {
        mark_waiting(b, g, why);
    } else if (ty_placement_place(pn, n_nodes, pp, n, out, &err) < 0) {
        TY_AUTOFREE char *msg = ty_asprintf("waiting for resources: %s", err.msg);
        mark_waiting(b, g, msg);
    } else {
        const char **where = ty_calloc(n + 1, sizeof(char *));
        for (size_t k = 0; k < n; k++) {
            json_t *req = ty_placement_requests(pp[k].spec);
            ty_placement_take(free_of[out[k]], req);
            json_decref(req);
            where[k] = json_string_value(json_object_get(
                json_object_get(json_array_get(nodes, out[k]), "metadata"), "name"));
        }
        bind_gang(b, g, where);
        free(where);
    }
    ty_error_clear(&err);
    for (size_t k = 0; k < n; k++)
        free(pre[k]);
    free(pre);
    free(out);
    free(pp);
    free(pn);
}

static void pass(void *ctx, const char *key);

/* A pass fails when a write did: the queue runs it again after its back-off (the pass reads
 * everything again; a gang half bound counts its bound pods as running members). */
static int pass_key(void *ctx, const char *key, ty_error *err)
{
    ty_binder *b = ctx;
    pass(ctx, key);
    if (!b->write_err.msg)
        return 0;
    int rc = ty_fail(err, "%s", b->write_err.msg);
    ty_error_clear(&b->write_err);
    return rc;
}

static void pass(void *ctx, const char *key)
{
    ty_binder *b = ctx;
    (void)key;
    b->passes++;
    json_t *all = ty_store_list(b->store, "nodes", NULL), *nodes = json_array();
    size_t i;
    json_t *pod, *node;
    json_array_foreach(all, i, node) if (b->cluster || ty_map_gets(&b->nodes, ty_obj_name(node)))
        json_array_append(nodes, node);
    json_decref(all);
    size_t n_nodes = json_array_size(nodes);
    if (!n_nodes) {
        json_decref(nodes);
        return;
    }
    json_t **free_of = ty_calloc(n_nodes, sizeof(json_t *));
    ty_map node_index = TY_MAP_INIT; /* name -> index + 1 */
    json_array_foreach(nodes, i, node)
    {
        free_of[i] = ty_placement_allocatable(node);
        ty_map_puts(&node_index, ty_obj_name(node), (void *)(uintptr_t)(i + 1));
    }

    /* The pods one at a time, from their text: only the unbound ones are kept (in their
     * gangs); a list of every pod would hold all their trees at once (about ten times their
     * text), which a cluster's thousands of running pods make tens of MB. */
    ty_store_item *items = NULL;
    size_t npods = ty_store_list_items(b->store, "pods", NULL, &items);
    ty_map by_key = TY_MAP_INIT;
    ty_map running = TY_MAP_INIT; /* gang key -> running bound members */
    gang *gangs = NULL;
    size_t ngangs = 0;
    int64_t now = ty_time_now_ns();
    for (i = 0; i < npods; i++) {
        pod = json_loadb(items[i].text, items[i].len, 0, NULL);
        if (!pod)
            continue;
        /* do-while(0): `continue` leaves the pod's block, whose names are freed on the way */
        do {
        json_t *spec = json_object_get(pod, "spec");
        const char *bound = json_string_value(json_object_get(spec, "nodeName"));
        if (!bound)
            bound = assumed_node(b, pod, now);
        if (!bound && b->cluster) {
            const char *sched = json_string_value(json_object_get(spec, "schedulerName"));
            if (!sched || strcmp(sched, TY_SCHEDULER_NAME) != 0)
                continue;
        }
        if (bound) {
            size_t at = (size_t)(uintptr_t)ty_map_gets(&node_index, bound);
            if (!at || ty_pod_terminated(pod))
                continue;
            json_t *req = ty_placement_requests(spec);
            ty_placement_take(free_of[at - 1], req);
            json_decref(req);
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
        json_array_append(g->pods, pod); /* the gang's reference keeps it */
        } while (0);
        json_decref(pod);
    }
    free(items);
    ty_map_free(&by_key);
    ty_map_free(&node_index);
    if (ngangs) /* qsort wants a non-NULL array even for zero elements */
        qsort(gangs, ngangs, sizeof(gang), compare_gangs);
    for (size_t k = 0; k < ngangs; k++) {
        gang *g = &gangs[k];
        char why[200];
        size_t have = json_array_size(g->pods) + (uintptr_t)ty_map_gets(&running, g->key);
        if ((long)have < g->size) {
            /* On a cluster each change of the message is a request per pod of the gang: one
             * that counts the pods made would cost the square of the gang's size while it is
             * being made, so there it names only the size. */
            if (b->cluster)
                snprintf(why, sizeof why, "waiting for the gang: not all of its %ld pods are "
                         "created", g->size);
            else
                snprintf(why, sizeof why, "waiting for the gang: %zu of %ld pods created", have,
                         g->size);
            mark_waiting(b, g, why);
        } else {
            try_gang(b, g, nodes, free_of);
        }
        json_decref(g->pods);
        free(g->key);
    }
    free(gangs);
    ty_map_free(&running);
    for (size_t k = 0; k < n_nodes; k++)
        json_decref(free_of[k]);
    free(free_of);
    json_decref(nodes);
}

ty_binder *ty_binder_new(uv_loop_t *loop, ty_store *store, const char *node_name)
{
    ty_binder *b = TY_NEW(ty_binder);
    b->store = store;
    if (node_name)
        ty_map_puts(&b->nodes, node_name, (void *)1);
    else
        b->cluster = true;
    b->queue = ty_queue_new(loop, "binder", pass_key, b);
    b->events = ty_recorder_new(store, "default-scheduler");
    ty_store_watch(store, &(ty_store_watch_opts){.resource = "pods", .fn = on_event, .ctx = b},
                   &b->watch_id, NULL);
    /* A claim that becomes bound lets its pods bind. */
    ty_store_watch(store, &(ty_store_watch_opts){.resource = "persistentvolumeclaims",
                                                 .fn = on_claim, .ctx = b},
                   &b->claims_watch_id, NULL);
    ty_queue_add(b->queue, "pass");
    return b;
}

void ty_binder_add_node(ty_binder *b, const char *node_name)
{
    ty_map_puts(&b->nodes, node_name, (void *)1);
    ty_queue_add(b->queue, "pass");
}

uint64_t ty_binder_passes(const ty_binder *b)
{
    return b->passes;
}

void ty_binder_resync(ty_binder *b)
{
    ty_queue_add(b->queue, "pass");
}

void ty_binder_free(ty_binder *b)
{
    if (!b)
        return;
    ty_store_unwatch(b->store, b->watch_id);
    ty_store_unwatch(b->store, b->claims_watch_id);
    ty_queue_free(b->queue);
    ty_recorder_free(b->events);
    ty_map_free(&b->nodes);
    size_t it = 0;
    const ty_map_slot *slot;
    while (ty_map_next(&b->assumed, &it, &slot)) {
        assumed *a = slot->value;
        free(a->node);
        free(a);
    }
    ty_map_free(&b->assumed);
    free(b);
}
