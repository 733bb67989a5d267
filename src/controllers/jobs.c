#include "controllers/jobs.h"

#include <assert.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/kinds.h"
#include "base/jsontext.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/time.h"
#include "api/kueue.h"
#include "controllers/binder.h"
#include "controllers/events.h"
#include "controllers/podutil.h"
#include "controllers/queue.h"
#include "controllers/placement.h"
#include "store/writer.h"

struct ty_jobctl {
    ty_store *store;
    ty_queue *queue;
    ty_kubeflow_addr_fn addr;
    void *addr_ctx;
    /* One per job kind of the registry (api/kinds.h), in its order: the Events' source is
     * the kind's operator. */
    ty_recorder **events;
    int *watch_ids;
    size_t nwatch;
};

static ty_recorder *recorder_for(ty_jobctl *c, const char *resource)
{
    size_t n = 0;
    for (const ty_kind_info *const *k = ty_kinds(); *k; k++) {
        if (!(*k)->job_operator)
            continue;
        if (strcmp((*k)->resource, resource) == 0)
            return c->events[n];
        n++;
    }
    assert(!"a job of a kind the registry does not run");
    return c->events[0];
}

/* An event for each condition that became true in this pass, as the operator records them:
 * the condition's reason and message, Warning for the bad news. */
static void record_transitions(ty_recorder *rec, const json_t *before, const json_t *after)
{
    size_t i;
    json_t *cond;
    json_array_foreach(json_object_get(json_object_get(after, "status"), "conditions"), i, cond)
    {
        const char *type = json_string_value(json_object_get(cond, "type"));
        const char *reason = json_string_value(json_object_get(cond, "reason"));
        const char *message = json_string_value(json_object_get(cond, "message"));
        if (!type || !reason || !ty_obj_condition_true(after, type) ||
            ty_obj_condition_true(before, type))
            continue;
        bool bad = strcmp(type, "Failed") == 0 || strcmp(type, "Restarting") == 0;
        ty_event(rec, after, bad ? "Warning" : "Normal", reason, "%s", message ? message : "");
    }
}

static void on_event(void *ctx, ty_event_type type, const char *resource, const json_t *obj)
{
    ty_jobctl *c = ctx;
    (void)type;
    TY_AUTOFREE char *key = NULL;
    if (strcmp(resource, "pods") == 0) {
        const char *job = ty_obj_label(obj, TY_KUBEFLOW_LABEL_JOB_NAME);
        const ty_kind_info *k =
            ty_kind_of_job_operator(ty_obj_label(obj, TY_KUBEFLOW_LABEL_OPERATOR));
        if (!job || !k)
            return;
        key = ty_asprintf("%s/%s/%s", k->resource, ty_obj_namespace(obj), job);
    } else {
        key = ty_asprintf("%s/%s/%s", resource, ty_obj_namespace(obj), ty_obj_name(obj));
    }
    ty_queue_add(c->queue, key);
}

static json_t *replica_specs(const json_t *job)
{
    json_t *spec = json_object_get(job, "spec");
    json_t *r = json_object_get(spec, "pytorchReplicaSpecs");
    return r ? r : json_object_get(spec, "tfReplicaSpecs");
}

static long total_replicas(const json_t *job)
{
    long n = 0;
    const char *rtype;
    json_t *rs;
    json_object_foreach(replica_specs(job), rtype, rs)
        n += (long)json_integer_value(json_object_get(rs, "replicas"));
    return n;
}

/* Makes the service of every live pod of a running job that lacks one (its create failed
 * when the pod was made, or a user deleted it), as the operator reconciles services apart from
 * pods. A failure fails the reconcile, so the queue retries it. */
static int ensure_services(ty_jobctl *c, const char *resource, const json_t *job,
                           json_t *const *pods, size_t npods, ty_error *fail)
{
    int rc = 0;
    for (size_t i = 0; i < npods; i++) {
        const json_t *pod = pods[i];
        if (ty_obj_deleting(pod) || ty_pod_terminated(pod))
            continue;
        ty_store_item item;
        if (ty_store_get_item(c->store, "services", ty_obj_namespace(pod), ty_obj_name(pod),
                              &item))
            continue;
        const char *type = ty_obj_label(pod, TY_KUBEFLOW_LABEL_REPLICA_TYPE);
        const char *index = ty_obj_label(pod, TY_KUBEFLOW_LABEL_REPLICA_INDEX);
        const char *rtype = NULL;
        json_t *rs;
        json_object_foreach(replica_specs(job), rtype, rs)
        {
            if (type && strcasecmp(rtype, type) == 0)
                break;
        }
        if (!type || !index || !rtype)
            continue;
        ty_error err = TY_ERROR_INIT;
        json_t *svc = ty_kubeflow_service(job, rtype, atoi(index), &err);
        if (svc && ty_write_create(c->store, "services", svc, NULL, &err) == 0)
            ty_event(recorder_for(c, resource), job, "Normal", "SuccessfulCreateService",
                     "Created service: %s", ty_obj_name(svc));
        else if (svc && err.code != TY_STORE_CONFLICT)
            rc = ty_fail(fail, "create service %s: %s", ty_obj_name(svc), err.msg);
        json_decref(svc);
        ty_error_clear(&err);
    }
    return rc;
}

/* The i-th entry of a comma-separated node list (TY_ANNOTATION_PLACEMENT); new string or
 * NULL. */
static char *nth_node(const char *list, long want)
{
    long k = 0;
    for (const char *p = list; p; k++) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (k == want) {
            while (len && *p == ' ')
                p++, len--;
            while (len && p[len - 1] == ' ')
                len--;
            return len ? ty_strndup(p, len) : NULL;
        }
        p = comma ? comma + 1 : NULL;
    }
    return NULL;
}

/* Whether the whole gang could ever be placed on the nodes when they are empty (the binder's
 * placement over their allocatable); when not, says why. A job that cannot fit must fail now:
 * waiting would be forever. */
static bool gang_can_ever_fit(ty_jobctl *c, const json_t *job, char *why, size_t cap)
{
    json_t *nodes = ty_store_list(c->store, "nodes", NULL);
    size_t n_nodes = json_array_size(nodes), n = (size_t)total_replicas(job), k = 0;
    /* More pods than the nodes' pod counts add up to (110 each, as kubelets have) never fit;
     * said before anything is built per pod: `replicas: 1000000` must cost nothing. */
    long long room = 0;
    size_t i;
    json_t *node;
    json_array_foreach(nodes, i, node)
    {
        json_t *alloc = ty_placement_allocatable(node);
        json_t *pods = json_object_get(alloc, "pods");
        room = !pods || room < 0 ? -1 : room + json_integer_value(pods) / 1000;
        json_decref(alloc);
    }
    if (n_nodes && room >= 0 && (long long)n > room) {
        snprintf(why, cap, "%s %s can never run here: its %zu pods are more than the %zu "
                 "node%s can hold (%lld pods)", json_string_value(json_object_get(job, "kind")),
                 ty_obj_name(job), n, n_nodes, n_nodes == 1 ? "" : "s", room);
        json_decref(nodes);
        return false;
    }
    ty_placement_node *pn = ty_calloc(n_nodes + 1, sizeof *pn);
    ty_placement_pod *pp = ty_calloc(n + 1, sizeof *pp);
    char **names = ty_calloc(n + 1, sizeof(char *)), **pre = ty_calloc(n + 1, sizeof(char *));
    size_t *out = ty_calloc(n + 1, sizeof(size_t));
    json_array_foreach(nodes, i, node)
        pn[i] = (ty_placement_node){node, ty_placement_allocatable(node)};
    const char *rtype;
    json_t *rs;
    json_object_foreach(replica_specs(job), rtype, rs)
    {
        json_t *tmpl = json_object_get(rs, "template");
        const char *list = json_string_value(json_object_get(
            json_object_get(json_object_get(tmpl, "metadata"), "annotations"),
            TY_ANNOTATION_PLACEMENT));
        json_int_t r = json_integer_value(json_object_get(rs, "replicas"));
        for (json_int_t j = 0; j < r && k < n; j++, k++) {
            names[k] = ty_asprintf("%s-%s-%lld", ty_obj_name(job), rtype, (long long)j);
            for (char *p = names[k]; *p; p++)
                *p = (char)tolower((unsigned char)*p);
            pre[k] = list ? nth_node(list, (long)j) : NULL;
            pp[k] = (ty_placement_pod){names[k], json_object_get(tmpl, "spec"), pre[k]};
        }
    }
    bool fits = true;
    ty_error err = TY_ERROR_INIT;
    if (n_nodes == 0) {
        fits = false;
        snprintf(why, cap, "%s %s can never run here: there are no nodes",
                 json_string_value(json_object_get(job, "kind")), ty_obj_name(job));
    } else if (ty_placement_place(pn, n_nodes, pp, k, out, &err) < 0) {
        fits = false;
        long long gpus = 0;
        for (i = 0; i < k; i++) {
            json_t *req = ty_placement_requests(pp[i].spec);
            gpus += json_integer_value(json_object_get(req, "nvidia.com/gpu")) / 1000;
            json_decref(req);
        }
        char total[96] = "";
        if (gpus)
            snprintf(total, sizeof total, " (its %zu pods ask for %lld nvidia.com/gpu in all)", k,
                     gpus);
        snprintf(why, cap, "%s %s can never run here, even on empty nodes%s: %s",
                 json_string_value(json_object_get(job, "kind")), ty_obj_name(job), total,
                 err.msg);
    }
    ty_error_clear(&err);
    for (i = 0; i < n_nodes; i++)
        json_decref((json_t *)pn[i].free);
    for (i = 0; i < k; i++)
        free(names[i]), free(pre[i]);
    free(names), free(pre), free(out), free(pp), free(pn);
    json_decref(nodes);
    return fits;
}

/* Fails (for the queue's back-off) when a pod, service or status write failed; the next try
 * reads everything again. */
static bool queued_not_admitted(ty_jobctl *c, const json_t *job);

static int reconcile(void *ctx, const char *key, ty_error *fail)
{
    ty_jobctl *c = ctx;
    char resource[32], ns[256], name[256];
    if (sscanf(key, "%31[^/]/%255[^/]/%255s", resource, ns, name) != 3)
        return 0;
    json_t *job = ty_store_get(c->store, resource, ns, name);
    if (!job)
        return 0;
    /* A job being deleted, or one another controller runs (MultiKueue's), is not ours. */
    if (ty_obj_deleting(job) || ty_kubeflow_managed_elsewhere(job)) {
        json_decref(job);
        return 0;
    }
    int rc = 0;
    /* the job's pods from the store's owner index, not every pod of the namespace parsed */
    json_t *all = ty_store_list_owned(c->store, "pods", ty_obj_uid(job));
    json_t **pods = ty_malloc((json_array_size(all) + 1) * sizeof(json_t *));
    size_t npods = 0, terminating = 0;
    size_t i;
    json_t *pod;
    json_array_foreach(all, i, pod)
    {
        const char *jn = ty_obj_label(pod, TY_KUBEFLOW_LABEL_JOB_NAME);
        if (jn && strcmp(jn, name) == 0 && ty_obj_owned_by(pod, ty_obj_uid(job))) {
            pods[npods++] = pod;
            terminating += ty_obj_deleting(pod);
        }
    }

    /* The reconcile changes status and metadata (the restart count, the resourceVersion); the
     * rest stays shared with the stored tree, which nothing changes in place. */
    json_t *next = json_copy(job);
    json_object_set_new(next, "metadata", json_deep_copy(json_object_get(job, "metadata")));
    if (json_object_get(job, "status"))
        json_object_set_new(next, "status", json_deep_copy(json_object_get(job, "status")));
    ty_kubeflow_outcome out = {0};
    ty_error err = TY_ERROR_INIT;
    char *gang_size = NULL;
    char why[1024];
    /* Checked when pods are about to be made: a suspended job (one waiting in a queue) makes
     * none, and thousands of them must not each read every node on every change. */
    bool suspended = json_is_true(json_object_get(
        json_object_get(json_object_get(job, "spec"), "runPolicy"), "suspend"));
    if (!ty_obj_condition_true(job, "Succeeded") && !ty_obj_condition_true(job, "Failed") &&
        npods == 0 && !suspended &&
        !gang_can_ever_fit(c, job, why, sizeof why)) {
        ty_kubeflow_fail_job(next, why, ty_time_now_ns());
        if (ty_write_update_status(c->store, resource, next, NULL, &err) < 0)
            rc = ty_fail(fail, "write status: %s", err.msg);
        else
            record_transitions(recorder_for(c, resource), job, next);
        goto done;
    }
    if (ty_kubeflow_reconcile(next, pods, npods, ty_time_now_ns(), &out, &err) < 0) {
        ty_warn("jobs: %s: %s", key, err.msg);
        goto done;
    }
    gang_size = ty_asprintf("%ld", total_replicas(next));
    /* New pods wait until every old one of the job is gone: after a gang restart the ranks
     * must all start together, and a replica's address (MASTER_ADDR, TF_CONFIG) is handed out
     * anew once its old pod released it. The last deletion queues this job again. */
    bool held = ty_store_remote(c->store) && queued_not_admitted(c, job);
    for (size_t k = 0; !held && terminating == 0 && k < out.ncreate; k++) {
        json_t *p = ty_kubeflow_pod(next, out.create[k].rtype, out.create[k].index, c->addr,
                                    c->addr_ctx, &err);
        if (!p) {
            ty_warn("jobs: %s: %s", key, err.msg);
            continue;
        }
        json_t *meta = json_object_get(p, "metadata");
        json_t *labels = json_object_get(meta, "labels");
        json_object_set_new(labels, TY_LABEL_POD_GROUP, json_string(name));
        json_t *ann = json_object_get(meta, "annotations");
        if (!json_is_object(ann)) {
            ann = json_object();
            json_object_set_new(meta, "annotations", ann);
        }
        json_object_set_new(ann, TY_ANNOTATION_GANG_SIZE, json_string(gang_size));
        /* On a cluster the gang is trainyard's to bind, not kube-scheduler's (a template
         * that names a scheduler keeps it). */
        json_t *pspec = json_object_get(p, "spec");
        if (ty_store_remote(c->store) && !json_object_get(pspec, "schedulerName"))
            json_object_set_new(pspec, "schedulerName", json_string(TY_SCHEDULER_NAME));
        if (ty_write_create(c->store, "pods", p, NULL, &err) < 0) {
            if (err.code != TY_STORE_CONFLICT) /* made by a write the cache has not seen */
                rc = ty_fail(fail, "create pod %s: %s", ty_obj_name(p), err.msg);
        }
        else
            ty_event(recorder_for(c, resource), next, "Normal", "SuccessfulCreatePod",
                     "Created pod: %s", ty_obj_name(p));
        json_decref(p);
        json_t *svc = ty_kubeflow_service(next, out.create[k].rtype, out.create[k].index, &err);
        /* A service outlives a restarted pod of the same name: already there is fine. */
        if (svc && ty_write_create(c->store, "services", svc, NULL, &err) == 0)
            ty_event(recorder_for(c, resource), next, "Normal", "SuccessfulCreateService",
                     "Created service: %s", ty_obj_name(svc));
        else if (svc && err.code != TY_STORE_CONFLICT)
            rc = ty_fail(fail, "create service %s: %s", ty_obj_name(svc), err.msg);
        json_decref(svc);
    }
    if (!out.finished && !out.suspended && !out.delete_job &&
        ensure_services(c, resource, next, pods, npods, fail) < 0)
        rc = -1;
    for (size_t k = 0; k < out.ndelete; k++) {
        if (ty_write_delete(c->store, "pods", ns, out.delete_pods[k], -1, &err) == 0)
            ty_event(recorder_for(c, resource), next, "Normal", "SuccessfulDeletePod",
                     "Deleted pod: %s", out.delete_pods[k]);
        else if (err.code != TY_STORE_NOT_FOUND)
            rc = ty_fail(fail, "delete pod %s: %s", out.delete_pods[k], err.msg);
        /* The operator deletes a pod's service with it when it cleans up a finished job and
         * when it suspends one, not when it restarts a pod. */
        if ((out.finished || out.suspended) &&
            ty_write_delete(c->store, "services", ns, out.delete_pods[k], -1, &err) < 0 &&
            err.code != TY_STORE_NOT_FOUND)
            rc = ty_fail(fail, "delete service %s: %s", out.delete_pods[k], err.msg);
    }
    if (out.delete_job) {
        if (ty_write_delete(c->store, resource, ns, name, -1, &err) < 0 &&
            err.code != TY_STORE_NOT_FOUND)
            rc = ty_fail(fail, "delete: %s", err.msg);
        goto done;
    }
    if (out.metadata_changed) {
        json_t *stored = NULL;
        if (ty_write_update(c->store, resource, next, &stored, &err) < 0) {
            rc = ty_fail(fail, "update: %s", err.msg);
            goto done;
        }
        json_object_set(json_object_get(next, "metadata"), "resourceVersion",
                        json_object_get(json_object_get(stored, "metadata"), "resourceVersion"));
        json_decref(stored);
    }
    if (out.status_changed || out.metadata_changed) {
        if (ty_write_update_status(c->store, resource, next, NULL, &err) < 0) {
            rc = ty_fail(fail, "write status: %s", err.msg);
        } else {
            record_transitions(recorder_for(c, resource), job, next);
        }
    }
    if (out.requeue_after_ns > 0)
        ty_queue_add_after(c->queue, key, out.requeue_after_ns / 1000000 + 1);
done:
    free(gang_size);
    ty_kubeflow_outcome_free(&out);
    ty_error_clear(&err);
    json_decref(next);
    free(pods);
    json_decref(all);
    json_decref(job);
    return rc;
}

/* Whether a job is Kueue's (its queue-name label or annotation) and its Workload is not
 * admitted. Locally trainyard's API server suspends such a job at creation, as Kueue's webhook
 * does; a cluster has no such webhook for trainyard (install declares none), so in cluster
 * mode the job's pods wait here for the admission that unsuspends it (the workloads
 * controller suspends it meanwhile). */
static bool queued_not_admitted(ty_jobctl *c, const json_t *job)
{
    json_t *meta = json_object_get(job, "metadata");
    if (!ty_obj_label(job, TY_KUEUE_LABEL_QUEUE_NAME) &&
        !json_object_get(json_object_get(meta, "annotations"), TY_KUEUE_ANNOTATION_QUEUE_NAME))
        return false;
    json_t *wls = ty_store_list_owned(c->store, "workloads", ty_obj_uid(job));
    bool admitted = false;
    size_t i;
    json_t *wl;
    json_array_foreach(wls, i, wl) if (ty_obj_condition_true(wl, "Admitted")) admitted = true;
    json_decref(wls);
    return !admitted;
}

ty_jobctl *ty_jobctl_new(uv_loop_t *loop, ty_store *store, ty_kubeflow_addr_fn addr,
                         void *addr_ctx)
{
    ty_jobctl *c = TY_NEW(ty_jobctl);
    c->store = store;
    c->addr = addr;
    c->addr_ctx = addr_ctx;
    c->queue = ty_queue_new(loop, "jobs", reconcile, c);
    /* The same knob as the runtime's in-place restarts (runtime.h): tests shorten both. */
    const char *b = getenv("TRAINYARD_RESTART_BACKOFF_MS");
    ty_kubeflow_set_restart_backoff(b ? atoll(b) : 0);
    size_t n = 0;
    for (const ty_kind_info *const *k = ty_kinds(); *k; k++)
        n += (*k)->job_operator != NULL;
    c->events = ty_calloc(n, sizeof *c->events);
    n = 0;
    for (const ty_kind_info *const *k = ty_kinds(); *k; k++)
        if ((*k)->job_operator)
            c->events[n++] = ty_recorder_new(store, (*k)->job_operator);
    c->watch_ids = ty_queue_watch_kinds(store, TY_WATCHED_BY_JOBS, on_event, c, &c->nwatch);
    return c;
}

void ty_jobctl_resync(ty_jobctl *c, bool finished_too)
{
    for (const ty_kind_info *const *k = ty_kinds(); *k; k++) {
        if (!(*k)->job_operator)
            continue;
        const char *resource = (*k)->resource;
        if (finished_too) {
            TY_AUTOFREE char *prefix = ty_asprintf("%s/", resource);
            ty_queue_add_all(c->queue, c->store, resource, prefix);
            continue;
        }
        /* A finished job's last condition says so (read from its text, nothing parsed);
         * what is left to do for it (TTL, cleanup) is queued with a delay already. */
        ty_store_item *items = NULL;
        size_t n = ty_store_list_items(c->store, resource, NULL, &items);
        for (size_t i = 0; i < n; i++) {
            const char *v;
            size_t len;
            if (ty_json_text_at(items[i].text, items[i].len, "status.conditions.-1.type", &v,
                                &len) &&
                ((len == 11 && memcmp(v, "\"Succeeded\"", 11) == 0) ||
                 (len == 8 && memcmp(v, "\"Failed\"", 8) == 0)))
                continue;
            TY_AUTOFREE char *key = ty_asprintf("%s/%s", resource, items[i].key);
            ty_queue_add(c->queue, key);
        }
        free(items);
    }
}

void ty_jobctl_free(ty_jobctl *c)
{
    if (!c)
        return;
    ty_queue_unwatch_kinds(c->store, c->watch_ids, c->nwatch);
    ty_queue_free(c->queue);
    size_t n = 0;
    for (const ty_kind_info *const *k = ty_kinds(); *k; k++)
        if ((*k)->job_operator)
            ty_recorder_free(c->events[n++]);
    free(c->events);
    free(c);
}
