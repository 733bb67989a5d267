#include "controllers/batchjobs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/batch.h"
#include "api/kinds.h"
#include "base/jsontext.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/time.h"
#include "controllers/batch.h"
#include "controllers/events.h"
#include "controllers/podutil.h"
#include "controllers/queue.h"

/* Kubernetes' name for its own Job controller (spec.managedBy when it is the one). */
#define JOB_CONTROLLER "kubernetes.io/job-controller"

struct ty_batchctl {
    ty_store *store;
    ty_queue *queue;
    ty_recorder *events;
    int *watch_ids;
    size_t nwatch;
};

/* The batch/v1 Job that controls `pod`, from its controller ownerReference; NULL when none. */
static const char *controlling_job(const json_t *pod)
{
    size_t i;
    json_t *ref;
    json_array_foreach(json_object_get(json_object_get(pod, "metadata"), "ownerReferences"), i,
                       ref)
    {
        const char *av = json_string_value(json_object_get(ref, "apiVersion"));
        const char *kind = json_string_value(json_object_get(ref, "kind"));
        if (json_is_true(json_object_get(ref, "controller")) && av && kind &&
            strcmp(av, TY_BATCH_API_VERSION) == 0 && strcmp(kind, "Job") == 0)
            return json_string_value(json_object_get(ref, "name"));
    }
    return NULL;
}

static void on_event(void *ctx, ty_event_type type, const char *resource, const json_t *obj)
{
    ty_batchctl *c = ctx;
    (void)type;
    const char *name = strcmp(resource, "pods") == 0   ? controlling_job(obj)
                       : strcmp(resource, "jobs") == 0 ? ty_obj_name(obj)
                                                       : NULL;
    if (!name)
        return;
    TY_AUTOFREE char *key = ty_asprintf("jobs/%s/%s", ty_obj_namespace(obj), name);
    ty_queue_add(c->queue, key);
}

static int reconcile(void *ctx, const char *key, ty_error *fail)
{
    ty_batchctl *c = ctx;
    char ns[256], name[256];
    if (sscanf(key, "jobs/%255[^/]/%255s", ns, name) != 2)
        return 0;
    json_t *job = ty_store_get(c->store, "jobs", ns, name);
    if (!job)
        return 0;
    const char *managed = json_string_value(json_object_get(json_object_get(job, "spec"),
                                                            "managedBy"));
    if (ty_obj_deleting(job) || (managed && strcmp(managed, JOB_CONTROLLER) != 0)) {
        json_decref(job);
        return 0;
    }
    json_t *owned = ty_store_list_owned(c->store, "pods", ty_obj_uid(job));
    json_t **pods = ty_calloc(json_array_size(owned) + 1, sizeof *pods);
    size_t npods = 0, i;
    json_t *pod;
    json_array_foreach(owned, i, pod)
    {
        const char *jn = controlling_job(pod);
        if (jn && strcmp(jn, name) == 0 && ty_obj_owned_by(pod, ty_obj_uid(job)))
            pods[npods++] = pod;
    }
    json_t *next = json_copy(job);
    json_object_set_new(next, "status", json_is_object(json_object_get(job, "status"))
                                            ? json_deep_copy(json_object_get(job, "status"))
                                            : json_object());
    ty_batch_outcome out;
    ty_batch_reconcile(next, pods, npods, ty_time_now_ns(), &out);
    int rc = 0;
    ty_error err = TY_ERROR_INIT;
    for (size_t k = 0; k < out.ndelete; k++) {
        if (ty_store_delete(c->store, "pods", ns, out.delete_pods[k], -1, &err) == 0)
            ty_event(c->events, next, "Normal", "SuccessfulDelete", "Deleted pod: %s",
                     out.delete_pods[k]);
        else if (err.code != TY_STORE_NOT_FOUND)
            rc = ty_fail(fail, "delete pod %s: %s", out.delete_pods[k], err.msg);
        ty_error_clear(&err);
    }
    if (out.delete_job) {
        /* ttlSecondsAfterFinished: the job goes, and its pods with it (ownerReferences) */
        if (ty_store_delete(c->store, "jobs", ns, name, -1, &err) < 0 &&
            err.code != TY_STORE_NOT_FOUND)
            rc = ty_fail(fail, "delete: %s", err.msg);
        goto done;
    }
    for (size_t k = 0; k < out.ncreate; k++) {
        const char *prefix_index = "";
        char idx[24];
        if (out.create[k] >= 0) {
            snprintf(idx, sizeof idx, "%ld-", out.create[k]);
            prefix_index = idx;
        }
        TY_AUTOFREE char *prefix = ty_asprintf("%s-%s", name, prefix_index);
        TY_AUTOFREE char *pod_name = ty_api_generate_name(prefix);
        json_t *p = ty_batch_pod(next, pod_name, out.create[k], out.create_failures[k]);
        if (ty_store_create(c->store, "pods", p, NULL, &err) < 0)
            rc = ty_fail(fail, "create pod %s: %s", pod_name, err.msg);
        else
            ty_event(c->events, next, "Normal", "SuccessfulCreate", "Created pod: %s", pod_name);
        json_decref(p);
        ty_error_clear(&err);
    }
    if (out.status_changed) {
        if (ty_store_update_status(c->store, "jobs", next, NULL, &err) < 0)
            rc = ty_fail(fail, "write status: %s", err.msg);
        else if (out.event_reason)
            ty_event(c->events, next, out.event_warning ? "Warning" : "Normal", out.event_reason,
                     "%s", out.event_message ? out.event_message : "");
        ty_error_clear(&err);
    }
    if (out.requeue_after_ns > 0)
        ty_queue_add_after(c->queue, key, out.requeue_after_ns / 1000000 + 1);
done:
    ty_error_clear(&err);
    ty_batch_outcome_free(&out);
    json_decref(next);
    free(pods);
    json_decref(owned);
    json_decref(job);
    return rc;
}

ty_batchctl *ty_batchctl_new(uv_loop_t *loop, ty_store *store)
{
    ty_batchctl *c = TY_NEW(ty_batchctl);
    c->store = store;
    c->queue = ty_queue_new(loop, "batchjobs", reconcile, c);
    c->events = ty_recorder_new(store, "job-controller");
    /* The same knob as the training jobs' restarts (jobs.h): tests shorten it. */
    const char *b = getenv("TRAINYARD_RESTART_BACKOFF_MS");
    ty_batch_set_pod_backoff(b ? atoll(b) : 0);
    c->watch_ids = ty_queue_watch_kinds(store, TY_WATCHED_BY_BATCH, on_event, c, &c->nwatch);
    return c;
}

void ty_batchctl_resync(ty_batchctl *c, bool finished_too)
{
    if (finished_too) {
        ty_queue_add_all(c->queue, c->store, "jobs", "jobs/");
        return;
    }
    /* A finished job's last condition says so (read from its text, nothing parsed); its TTL
     * is queued with a delay already. */
    ty_store_item *items = NULL;
    size_t n = ty_store_list_items(c->store, "jobs", NULL, &items);
    for (size_t i = 0; i < n; i++) {
        const char *v;
        size_t len;
        if (ty_json_text_at(items[i].text, items[i].len, "status.conditions.-1.type", &v, &len) &&
            ((len == 10 && memcmp(v, "\"Complete\"", 10) == 0) ||
             (len == 8 && memcmp(v, "\"Failed\"", 8) == 0)))
            continue;
        TY_AUTOFREE char *key = ty_asprintf("jobs/%s", items[i].key);
        ty_queue_add(c->queue, key);
    }
    free(items);
}

void ty_batchctl_free(ty_batchctl *c)
{
    if (!c)
        return;
    ty_queue_unwatch_kinds(c->store, c->watch_ids, c->nwatch);
    ty_queue_free(c->queue);
    ty_recorder_free(c->events);
    free(c);
}
