#include "controllers/workloads.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/kinds.h"
#include "base/buf.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/time.h"
#include "api/batch.h"
#include "controllers/events.h"
#include "controllers/jobs.h"
#include "controllers/kubeflow.h"
#include "controllers/controllers_int.h"
#include "controllers/podutil.h"
#include "controllers/queue.h"
#include "store/writer.h"

#define REQUEUE_BASE_MS 1000
#define REQUEUE_MAX_MS (5 * 60 * 1000)

struct ty_workloadctl {
    ty_store *store;
    ty_queue *queue;
    ty_recorder *events;
    int *watch_ids;
    size_t nwatch;
    ty_error *fail; /* the running reconcile's: a failed write fails it (queue back-off) */
};

static void on_event(void *ctx, ty_event_type type, const char *resource, const json_t *obj)
{
    ty_workloadctl *c = ctx;
    (void)type;
    TY_AUTOFREE char *key = NULL;
    if (strcmp(resource, "workloads") == 0) {
        const char *r, *name, *uid;
        if (!ty_kueue_workload_job(obj, &r, &name, &uid))
            return;
        key = ty_asprintf("%s/%s/%s", r, ty_obj_namespace(obj), name);
    } else if (strcmp(resource, "pods") == 0) {
        const char *r, *job, *uid;
        if (!ty_kueue_workload_job(obj, &r, &job, &uid)) /* its controlling job */
            return;
        key = ty_asprintf("%s/%s/%s", r, ty_obj_namespace(obj), job);
    } else {
        if (!ty_obj_label(obj, TY_KUEUE_LABEL_QUEUE_NAME))
            return;
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

/* A batch/v1 Job (Kueue's job integration) rather than a Kubeflow training job (its
 * jobframework integrations for the operator's kinds). */
static bool is_batch_job(const json_t *job)
{
    const char *av = json_string_value(json_object_get(job, "apiVersion"));
    return av && strcmp(av, TY_BATCH_API_VERSION) == 0;
}

/* Where the job's `suspend` is: spec for a batch Job, spec.runPolicy for a training job. */
static json_t *suspend_holder(json_t *job)
{
    json_t *spec = json_object_get(job, "spec");
    if (is_batch_job(job))
        return spec;
    json_t *rp = json_object_get(spec, "runPolicy");
    if (!json_is_object(rp)) {
        rp = json_object();
        json_object_set_new(spec, "runPolicy", rp);
    }
    return rp;
}

static bool suspended(const json_t *job)
{
    const json_t *spec = json_object_get(job, "spec");
    return json_is_true(json_object_get(
        is_batch_job(job) ? spec : json_object_get(spec, "runPolicy"), "suspend"));
}


static char *lower(const char *s)
{
    char *out = ty_strdup(s);
    for (char *p = out; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p + 32);
    return out;
}

/* Pod sets in the order Kueue lists a Kubeflow job's replica types: the coordinator first. */
static int replica_rank(const char *rtype)
{
    static const char *const order[] = {"Master", "Chief", "PS", "Worker", "Evaluator"};
    for (int i = 0; i < 5; i++)
        if (strcmp(rtype, order[i]) == 0)
            return i;
    return 5;
}

static int compare_rtypes(const void *x, const void *y)
{
    const char *a = *(const char *const *)x, *b = *(const char *const *)y;
    int d = replica_rank(a) - replica_rank(b);
    return d ? d : strcmp(a, b);
}

/* The job's replica types in pod-set order; caller frees the array (not the strings). */
static const char **ordered_rtypes(const json_t *job, size_t *n)
{
    json_t *specs = replica_specs(job);
    const char **out = ty_calloc(json_object_size(specs) + 1, sizeof *out);
    *n = 0;
    const char *rtype;
    json_t *rs;
    json_object_foreach(specs, rtype, rs) out[(*n)++] = rtype;
    qsort(out, *n, sizeof *out, compare_rtypes);
    return out;
}

/* The job's pod sets as Kueue makes them, in order: [{name, count, template}], each template
 * the job's own object (changing it changes the job). A training job has one per replica type
 * (the coordinator first, named lowercase, count = replicas); a batch Job one named "main"
 * with min(parallelism, completions) pods (Kueue's podsCount). Caller frees. */
static json_t *pod_sets(const json_t *job)
{
    json_t *out = json_array();
    if (is_batch_job(job)) {
        const json_t *spec = json_object_get(job, "spec");
        json_int_t count = 1;
        if (json_is_integer(json_object_get(spec, "parallelism")))
            count = json_integer_value(json_object_get(spec, "parallelism"));
        const json_t *comp = json_object_get(spec, "completions");
        if (json_is_integer(comp) && json_integer_value(comp) < count)
            count = json_integer_value(comp);
        json_t *tmpl = json_object_get(spec, "template");
        if (json_is_object(tmpl))
            json_array_append_new(out, json_pack("{s:s,s:I,s:O}", "name", "main", "count", count,
                                                 "template", tmpl));
        return out;
    }
    size_t n;
    TY_AUTOFREE const char **rtypes = ordered_rtypes(job, &n);
    for (size_t i = 0; i < n; i++) {
        json_t *rs = json_object_get(replica_specs(job), rtypes[i]);
        json_t *tmpl = json_object_get(rs, "template");
        if (!json_is_object(tmpl))
            continue;
        json_int_t count = json_integer_value(json_object_get(rs, "replicas"));
        if (!json_is_integer(json_object_get(rs, "replicas")))
            count = 1;
        TY_AUTOFREE char *ps = lower(rtypes[i]);
        json_array_append_new(out, json_pack("{s:s,s:I,s:O}", "name", ps, "count", count,
                                             "template", tmpl));
    }
    return out;
}

/* The job's priority as Kueue takes it: value, class name (caller frees; NULL: none) and its
 * source. Returns -1 with *missing (borrowed from job) set when it names a class that does
 * not exist. */
static int priority_of(ty_store *s, const json_t *job, json_int_t *value, char **class,
                       const char **source, const char **missing)
{
    *value = 0;
    *class = NULL;
    *source = NULL;
    const char *wpc = ty_obj_label(job, TY_KUEUE_LABEL_PRIORITY_CLASS);
    const char *pc = NULL;
    if (!wpc) {
        pc = json_string_value(json_object_get(
            json_object_get(json_object_get(json_object_get(job, "spec"), "runPolicy"),
                            "schedulingPolicy"),
            "priorityClass"));
        json_t *sets = pod_sets(job);
        if (!pc && json_array_size(sets))
            pc = json_string_value(json_object_get(
                json_object_get(json_object_get(json_array_get(sets, 0), "template"), "spec"),
                "priorityClassName")); /* a string of the job's, which outlives `sets` */
        json_decref(sets);
    }
    if (wpc || pc) {
        json_t *o = ty_store_get(s, wpc ? "workloadpriorityclasses" : "priorityclasses", NULL,
                                 wpc ? wpc : pc);
        if (!o) {
            *missing = wpc ? wpc : pc;
            return -1;
        }
        *value = json_integer_value(json_object_get(o, "value"));
        *class = ty_strdup(wpc ? wpc : pc);
        *source = wpc ? TY_KUEUE_PRIORITY_SOURCE_WORKLOAD : TY_KUEUE_PRIORITY_SOURCE_POD;
        json_decref(o);
        return 0;
    }
    json_t *all = ty_store_list(s, "priorityclasses", NULL);
    size_t i;
    json_t *o;
    json_array_foreach(all, i, o) if (json_is_true(json_object_get(o, "globalDefault")))
    {
        *value = json_integer_value(json_object_get(o, "value"));
        *class = ty_strdup(ty_obj_name(o));
        *source = TY_KUEUE_PRIORITY_SOURCE_POD;
        break;
    }
    json_decref(all);
    return 0;
}

/* The job's Workload, by the name it was given (no scan of the namespace's workloads). */
static json_t *find_workload(ty_workloadctl *c, const json_t *job)
{
    const char *kind = json_string_value(json_object_get(job, "kind"));
    TY_AUTOFREE char *name =
        ty_kueue_workload_name(kind ? kind : "", ty_obj_name(job), ty_obj_uid(job));
    json_t *wl = ty_store_get(c->store, "workloads", ty_obj_namespace(job), name);
    const char *r, *n, *uid;
    if (wl && !(ty_kueue_workload_job(wl, &r, &n, &uid) && uid &&
                strcmp(uid, ty_obj_uid(job)) == 0)) {
        json_decref(wl);
        return NULL;
    }
    return wl;
}

static void create_workload(ty_workloadctl *c, const char *resource, const json_t *job)
{
    json_int_t prio;
    TY_AUTOFREE char *cls = NULL;
    const char *source, *missing = NULL;
    if (priority_of(c->store, job, &prio, &cls, &source, &missing) < 0) {
        ty_event(c->events, job, "Warning", "FailedToCreateWorkload",
                 "priority class %s not found", missing);
        TY_AUTOFREE char *key =
            ty_asprintf("%s/%s/%s", resource, ty_obj_namespace(job), ty_obj_name(job));
        ty_queue_add_after(c->queue, key, 5000);
        return;
    }
    const char *kind = json_string_value(json_object_get(job, "kind"));
    TY_AUTOFREE char *name = ty_kueue_workload_name(kind, ty_obj_name(job), ty_obj_uid(job));
    json_t *all = pod_sets(job), *sets = json_array();
    size_t n;
    json_t *set;
    json_array_foreach(all, n, set)
    {
        if (json_integer_value(json_object_get(set, "count")) < 1)
            continue; /* a replica type with no pods asks for nothing */
        json_t *copy = json_pack("{s:O,s:O,s:o}", "name", json_object_get(set, "name"), "count",
                                 json_object_get(set, "count"), "template",
                                 json_deep_copy(json_object_get(set, "template")));
        json_array_append_new(sets, copy);
    }
    json_decref(all);
    json_t *spec = json_pack("{s:o,s:s,s:I,s:b}", "podSets", sets, "queueName",
                             ty_obj_label(job, TY_KUEUE_LABEL_QUEUE_NAME), "priority", prio,
                             "active", 1);
    if (cls) {
        json_object_set_new(spec, "priorityClassName", json_string(cls));
        json_object_set_new(spec, "priorityClassSource", json_string(source));
    }
    json_t *wl = json_pack(
        "{s:s,s:s,s:{s:s,s:s,s:{s:s},s:[{s:O,s:O,s:s,s:s,s:b,s:b}]},s:o}", "apiVersion",
        TY_KUEUE_API_VERSION, "kind", "Workload", "metadata", "name", name, "namespace",
        ty_obj_namespace(job), "labels", TY_KUEUE_LABEL_JOB_UID, ty_obj_uid(job),
        "ownerReferences", "apiVersion", json_object_get(job, "apiVersion"), "kind",
        json_object_get(job, "kind"), "name", ty_obj_name(job), "uid", ty_obj_uid(job),
        "controller", 1, "blockOwnerDeletion", 1, "spec", spec);
    ty_error err = TY_ERROR_INIT;
    int rc = ty_write_create(c->store, "workloads", wl, NULL, &err);
    /* CONFLICT: made already, by a create the cache has not seen yet (cluster mode) */
    if (rc < 0 && err.code != TY_STORE_CONFLICT)
        ty_fail(c->fail, "create workload %s: %s", name, err.msg); /* it waits suspended */
    else if (rc == 0)
        ty_event(c->events, job, "Normal", "CreatedWorkload", "Created Workload: %s/%s",
                 ty_obj_namespace(job), name);
    ty_error_clear(&err);
    json_decref(wl);
}

static void update_job(ty_workloadctl *c, const char *resource, json_t *next)
{
    ty_error err = TY_ERROR_INIT;
    if (ty_write_update(c->store, resource, next, NULL, &err) < 0)
        ty_fail(c->fail, "update %s: %s", ty_obj_name(next), err.msg);
    ty_error_clear(&err);
}

static json_t *object_member(json_t *parent, const char *key)
{
    json_t *o = json_object_get(parent, key);
    if (!json_is_object(o)) {
        o = json_object();
        json_object_set_new(parent, key, o);
    }
    return o;
}

static const json_t *assignment_of(const json_t *wl, const char *pod_set)
{
    size_t i;
    json_t *psa;
    json_array_foreach(json_object_get(json_object_get(json_object_get(wl, "status"), "admission"),
                                       "podSetAssignments"),
                       i, psa)
    {
        const char *n = json_string_value(json_object_get(psa, "name"));
        if (n && strcmp(n, pod_set) == 0)
            return psa;
    }
    return NULL;
}

/* Admitted: the flavors' node labels and tolerations and the placement into the templates,
 * then the job runs. */
static void start_job(ty_workloadctl *c, const char *resource, const json_t *job, const json_t *wl)
{
    json_t *next = json_deep_copy(job);
    json_t *sets = pod_sets(next);
    size_t si;
    json_t *set;
    json_array_foreach(sets, si, set)
    {
        const json_t *psa = assignment_of(wl, json_string_value(json_object_get(set, "name")));
        if (!psa)
            continue;
        json_t *tmpl = json_object_get(set, "template");
        json_t *spec = object_member(tmpl, "spec");
        const char *res;
        json_t *fl;
        json_t *seen = json_object();
        json_object_foreach(json_object_get(psa, "flavors"), res, fl)
        {
            const char *fname = json_string_value(fl);
            if (!fname || json_object_get(seen, fname))
                continue;
            json_object_set_new(seen, fname, json_true());
            json_t *rf = ty_store_get(c->store, "resourceflavors", NULL, fname);
            const json_t *rfs = json_object_get(rf, "spec");
            const char *k;
            json_t *v;
            json_object_foreach(json_object_get(rfs, "nodeLabels"), k, v)
                json_object_set(object_member(spec, "nodeSelector"), k, v);
            size_t i;
            json_t *tol;
            json_array_foreach(json_object_get(rfs, "tolerations"), i, tol)
            {
                json_t *tols = json_object_get(spec, "tolerations");
                if (!json_is_array(tols)) {
                    tols = json_array();
                    json_object_set_new(spec, "tolerations", tols);
                }
                json_array_append(tols, tol);
            }
            json_decref(rf);
        }
        json_decref(seen);
        /* Kueue's batch Job integration places by node selectors alone; the binder's
         * per-index placement is a training job's (replica-index label) */
        if (is_batch_job(next))
            continue;
        TY_AUTOBUF ty_buf nodes = TY_BUF_INIT;
        size_t d;
        json_t *dom;
        json_array_foreach(json_object_get(json_object_get(psa, "topologyAssignment"), "domains"),
                           d, dom)
        {
            const char *node = json_string_value(json_array_get(json_object_get(dom, "values"), 0));
            json_int_t count = json_integer_value(json_object_get(dom, "count"));
            for (json_int_t k = 0; node && k < count; k++)
                ty_buf_addf(&nodes, "%s%s", nodes.len ? "," : "", node);
        }
        json_object_set_new(object_member(object_member(tmpl, "metadata"), "annotations"),
                            TY_ANNOTATION_PLACEMENT, json_string(nodes.len ? nodes.data : ""));
    }
    json_decref(sets);
    json_object_set_new(suspend_holder(next), "suspend", json_false());
    update_job(c, resource, next);
    const char *cq = json_string_value(json_object_get(
        json_object_get(json_object_get(wl, "status"), "admission"), "clusterQueue"));
    ty_event(c->events, next, "Normal", "Started", "Admitted by clusterQueue %s", cq ? cq : "");
    json_decref(next);
}

/* Suspends the job with its templates as the Workload recorded them (what start_job added
 * goes away). */
static void stop_job(ty_workloadctl *c, const char *resource, const json_t *job, const json_t *wl,
                     const char *why)
{
    json_t *next = json_deep_copy(job);
    json_t *sets = pod_sets(next);
    size_t si;
    json_t *own;
    json_array_foreach(sets, si, own)
    {
        const char *ps = json_string_value(json_object_get(own, "name"));
        size_t i;
        json_t *set;
        json_array_foreach(json_object_get(json_object_get(wl, "spec"), "podSets"), i, set)
        {
            const char *n = json_string_value(json_object_get(set, "name"));
            if (!n || strcmp(n, ps) != 0)
                continue;
            json_t *orig = json_object_get(json_object_get(set, "template"), "spec");
            json_t *tmpl = json_object_get(own, "template");
            json_t *spec = object_member(tmpl, "spec");
            const char *fields[] = {"nodeSelector", "tolerations"};
            for (int f = 0; f < 2; f++) {
                json_t *v = json_object_get(orig, fields[f]);
                if (v)
                    json_object_set(spec, fields[f], v);
                else
                    json_object_del(spec, fields[f]);
            }
            json_object_del(json_object_get(json_object_get(tmpl, "metadata"), "annotations"),
                            TY_ANNOTATION_PLACEMENT);
        }
    }
    json_decref(sets);
    json_object_set_new(suspend_holder(next), "suspend", json_true());
    update_job(c, resource, next);
    ty_event(c->events, next, "Normal", "Stopped", "%s", why);
    json_decref(next);
}

static size_t pods_left(ty_workloadctl *c, const json_t *job)
{
    json_t *pods = ty_store_list_owned(c->store, "pods", ty_obj_uid(job));
    size_t n = 0, i;
    json_t *pod;
    json_array_foreach(pods, i, pod)
    {
        /* A pod that has ended holds nothing (and suspending a job leaves such pods). */
        n += ty_obj_owned_by(pod, ty_obj_uid(job)) && !ty_pod_terminated(pod);
    }
    json_decref(pods);
    return n;
}

static void write_workload_status(ty_workloadctl *c, json_t *next)
{
    ty_error err = TY_ERROR_INIT;
    if (ty_write_update_status(c->store, "workloads", next, NULL, &err) < 0)
        ty_fail(c->fail, "write status of workload %s: %s", ty_obj_name(next), err.msg);
    ty_error_clear(&err);
}

/* The evicted job has stopped: the quota goes back and the workload waits again, after a
 * back-off that doubles with every eviction. */
static void requeue(ty_workloadctl *c, const json_t *wl, int64_t now)
{
    json_t *next = json_deep_copy(wl);
    json_t *st = object_member(next, "status");
    json_object_del(st, "admission");
    const json_t *ev = ty_kueue_condition(wl, "Evicted");
    const char *reason = json_string_value(json_object_get(ev, "reason"));
    const char *msg = json_string_value(json_object_get(ev, "message"));
    ty_kueue_set_condition(next, "QuotaReserved", "False", "Pending", msg, now);
    ty_kueue_set_condition(next, "Admitted", "False", "NoReservation",
                           "The workload has no reservation", now);
    ty_kueue_set_condition(next, "Requeued", "True", reason ? reason : "Evicted", msg, now);
    /* Kueue's ResetChecksOnEviction: every admission check is decided again */
    char reset_at[40];
    ty_time_format_rfc3339(now, reset_at, sizeof reset_at, 0);
    size_t k;
    json_t *chk;
    json_array_foreach(json_object_get(st, "admissionChecks"), k, chk)
    {
        const char *state = json_string_value(json_object_get(chk, "state"));
        if (state && !strcmp(state, "Pending"))
            continue;
        json_object_set_new(chk, "message",
                            json_sprintf("Reset to Pending after eviction. Previously: %s",
                                         state ? state : ""));
        json_object_set_new(chk, "state", json_string("Pending"));
        json_object_set_new(chk, "lastTransitionTime", json_string(reset_at));
    }
    json_t *rs = object_member(st, "requeueState");
    json_int_t count = json_integer_value(json_object_get(rs, "count")) + 1;
    int64_t delay = REQUEUE_BASE_MS;
    for (json_int_t i = 1; i < count && delay < REQUEUE_MAX_MS; i++)
        delay *= 2;
    if (delay > REQUEUE_MAX_MS)
        delay = REQUEUE_MAX_MS;
    char at[40];
    ty_time_format_rfc3339(now + delay * 1000000, at, sizeof at, 0);
    json_object_set_new(rs, "count", json_integer(count));
    json_object_set_new(rs, "requeueAt", json_string(at));
    write_workload_status(c, next);
    json_decref(next);
}

static void finish(ty_workloadctl *c, const json_t *wl, const json_t *job, int64_t now)
{
    bool ok;
    ty_job_finished(job, &ok);
    const char *msg = json_string_value(json_object_get(
        (json_t *)ty_kueue_condition(job, ok ? (is_batch_job(job) ? "Complete" : "Succeeded")
                                             : "Failed"),
        "message"));
    json_t *next = json_deep_copy(wl);
    if (ty_kueue_set_condition(next, "Finished", "True", ok ? "Succeeded" : "Failed",
                               msg ? msg : "", now))
        write_workload_status(c, next);
    json_decref(next);
}

/* Fails when one of its writes failed (the queue retries after its back-off). */
static int reconcile(void *ctx, const char *key, ty_error *fail)
{
    ty_workloadctl *c = ctx;
    char resource[32], ns[256], name[256];
    if (sscanf(key, "%31[^/]/%255[^/]/%255s", resource, ns, name) != 3)
        return 0;
    json_t *job = ty_store_get(c->store, resource, ns, name);
    if (!job)
        return 0;
    c->fail = fail;
    json_t *wl = NULL;
    if (!ty_obj_label(job, TY_KUEUE_LABEL_QUEUE_NAME) || ty_obj_deleting(job))
        goto done;
    int64_t now = ty_time_now_ns();
    wl = find_workload(c, job);
    bool ok;
    if (ty_job_finished(job, &ok)) {
        if (wl && !ty_kueue_workload_finished(wl))
            finish(c, wl, job, now);
        goto done;
    }
    if (!wl) {
        if (!suspended(job)) {
            json_t *next = json_deep_copy(job);
            json_object_set_new(suspend_holder(next), "suspend", json_true());
            update_job(c, resource, next);
            json_decref(next);
        }
        create_workload(c, resource, job);
        goto done;
    }
    if (ty_kueue_workload_finished(wl))
        goto done;
    bool evicted = ty_kueue_condition_is(wl, "Evicted", "True");
    if (ty_kueue_workload_reserved(wl) && !evicted) {
        /* Admitted: quota reserved and every admission check Ready */
        if (suspended(job) && ty_kueue_condition_is(wl, "Admitted", "True"))
            start_job(c, resource, job, wl);
        goto done;
    }
    if (ty_kueue_workload_reserved(wl)) {
        if (!suspended(job))
            stop_job(c, resource, job, wl,
                     json_string_value(json_object_get(ty_kueue_condition(wl, "Evicted"),
                                                       "message")));
        else if (pods_left(c, job) == 0)
            requeue(c, wl, now);
        goto done;
    }
    if (!suspended(job))
        stop_job(c, resource, job, wl, "Not admitted by cluster queue");
done:
    json_decref(wl);
    json_decref(job);
    c->fail = NULL;
    return fail->msg ? -1 : 0;
}

bool ty_workloads_default_job(ty_store *store, const char *resource, json_t *job)
{
    const ty_kind_info *k = ty_kind_of_resource(resource);
    if (!k || !k->kueue_job)
        return false;
    json_t *meta = object_member(job, "metadata");
    if (!ty_obj_label(job, TY_KUEUE_LABEL_QUEUE_NAME)) {
        json_t *lq = ty_store_get(store, "localqueues", ty_obj_namespace(job),
                                  TY_KUEUE_DEFAULT_LOCAL_QUEUE);
        if (!lq)
            return false;
        json_decref(lq);
        json_object_set_new(object_member(meta, "labels"), TY_KUEUE_LABEL_QUEUE_NAME,
                            json_string(TY_KUEUE_DEFAULT_LOCAL_QUEUE));
    }
    json_object_set_new(suspend_holder(job), "suspend", json_true());
    return true;
}

ty_workloadctl *ty_workloadctl_new(uv_loop_t *loop, ty_store *store)
{
    ty_workloadctl *c = TY_NEW(ty_workloadctl);
    c->store = store;
    c->queue = ty_queue_new(loop, "workloads", reconcile, c);
    c->events = ty_recorder_new(store, "kueue-job-controller");
    c->watch_ids = ty_queue_watch_kinds(store, TY_WATCHED_BY_WORKLOADS, on_event, c, &c->nwatch);
    ty_workloadctl_resync(c);
    return c;
}

void ty_workloadctl_resync(ty_workloadctl *c)
{
    /* Queued jobs stored before this controller ran (a restart) are reconciled. Read
     * from the index's label sets, not by parsing every job: a server with 10,000 jobs must
     * restart in well under a second. */
    for (const ty_kind_info *const *k = ty_kinds(); *k; k++) {
        if (!(*k)->kueue_job)
            continue;
        ty_store_item *items = NULL;
        size_t n = ty_store_list_items(c->store, (*k)->resource, NULL, &items);
        for (size_t i = 0; i < n; i++) {
            const json_t *labels = json_object_get(json_object_get(items[i].labels, "metadata"),
                                                   "labels");
            if (!json_object_get(labels, TY_KUEUE_LABEL_QUEUE_NAME))
                continue;
            TY_AUTOFREE char *key = ty_asprintf("%s/%s", (*k)->resource, items[i].key);
            ty_queue_add(c->queue, key);
        }
        free(items);
    }
}

void ty_workloadctl_free(ty_workloadctl *c)
{
    if (!c)
        return;
    ty_queue_unwatch_kinds(c->store, c->watch_ids, c->nwatch);
    ty_queue_free(c->queue);
    ty_recorder_free(c->events);
    free(c);
}
