#include "controllers/admission.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/kinds.h"
#include "base/buf.h"
#include "base/log.h"
#include "base/map.h"
#include "base/mem.h"
#include "base/quantity.h"
#include "base/time.h"
#include "controllers/events.h"
#include "controllers/controllers_int.h"
#include "controllers/placement.h"
#include "controllers/podutil.h"
#include "controllers/queue.h"
#include "store/writer.h"

struct ty_admission {
    ty_store *store;
    ty_queue *queue;
    ty_recorder *events;
    bool fair_sharing;
    /* on the kinds whose changes can alter a pass: the registry's TY_WATCHED_BY_ADMISSION */
    int *watch_ids;
    size_t nwatch;
    /* For /metrics: counters since start, and the last pass's text. */
    uint64_t passes, admitted_total, preempted_total;
    char *metrics;
    int64_t batch_ms; /* how long changes gather before a pass: 4 x the last pass */
    ty_map workloads; /* "ns/name" -> cached_workload: parsed once per resourceVersion */
    ty_kueue_cache *snapshot_cache; /* the same workloads as the snapshot reads them */
    /* "resource/ns/name" -> what the pass reads of that pod, node or namespace (read_part) */
    ty_map read_parts;
    bool writing_status;  /* inside our own status write */
    bool writing_pending; /* ... of a waiting workload's QuotaReserved=False reason */
    /* The first write of the current pass that failed: the pass then fails, and the queue
     * runs it again after its back-off (a conflict reads everything again). */
    ty_error write_err;
    uint64_t skipped_events;
};

/* Waiting workloads rarely change between passes; parsing each of thousands on every pass was
 * most of a pass. */
typedef struct cached_workload {
    uint64_t rv;
    json_t *obj;
    uint64_t seen; /* the pass that last listed it */
    /* What the pass reads of it, worked out when it is parsed (strings borrowed from obj). */
    char *key, *lq_key; /* "ns/name", "ns/queueName" */
    bool finished, deleting, reserved, inactive;
    const json_t *admission;
    const char *admission_cq;
    int64_t requeue_at_ms;
    const char *qr_status, *qr_reason, *qr_message; /* of QuotaReserved; NULL when absent */
} cached_workload;

static void cached_workload_clear(cached_workload *cw)
{
    json_decref(cw->obj);
    free(cw->key);
    free(cw->lq_key);
    uint64_t seen = cw->seen;
    memset(cw, 0, sizeof *cw);
    cw->seen = seen;
}

static void cached_workload_set(cached_workload *cw, json_t *wl, uint64_t rv)
{
    cached_workload_clear(cw);
    cw->obj = wl;
    cw->rv = rv;
    if (!wl)
        return;
    const json_t *spec = json_object_get(wl, "spec");
    const json_t *status = json_object_get(wl, "status");
    const char *lq = json_string_value(json_object_get(spec, "queueName"));
    cw->key = ty_asprintf("%s/%s", ty_obj_namespace(wl), ty_obj_name(wl));
    cw->lq_key = ty_asprintf("%s/%s", ty_obj_namespace(wl), lq ? lq : "");
    cw->finished = ty_kueue_workload_finished(wl);
    cw->deleting = ty_obj_deleting(wl);
    cw->reserved = ty_kueue_workload_reserved(wl);
    cw->inactive = json_is_false(json_object_get(spec, "active"));
    cw->admission = json_object_get(status, "admission");
    cw->admission_cq = json_string_value(json_object_get(cw->admission, "clusterQueue"));
    cw->requeue_at_ms = ty_kueue_time_ms(
        json_string_value(json_object_get(json_object_get(status, "requeueState"), "requeueAt")),
        0);
    const json_t *c = ty_kueue_condition(wl, "QuotaReserved");
    cw->qr_status = json_string_value(json_object_get(c, "status"));
    cw->qr_reason = json_string_value(json_object_get(c, "reason"));
    cw->qr_message = json_string_value(json_object_get(c, "message"));
}

/* What the pass reads of a pod, node or namespace, as one string (a new one): a change that
 * leaves it the same cannot change a decision. A pod counts only on a node and until it ends;
 * a namespace only through its labels (absent and empty labels match selectors alike). */
static char *read_part(const char *resource, const json_t *obj)
{
    if (!obj)
        return ty_strdup(strcmp(resource, "namespaces") == 0 ? "{}" : "");
    json_t *part;
    if (strcmp(resource, "pods") == 0) {
        const json_t *spec = json_object_get(obj, "spec");
        const char *node = json_string_value(json_object_get(spec, "nodeName"));
        if (!node || ty_pod_terminated(obj))
            return ty_strdup("");
        const char *job = ty_obj_label(obj, "training.kubeflow.org/job-name");
        const char *op = ty_obj_label(obj, "training.kubeflow.org/operator-name");
        part = json_pack("{s:s,s:s?,s:s?,s:o}", "node", node, "job", job, "operator", op,
                         "requests", ty_kueue_pod_requests(spec));
    } else if (strcmp(resource, "nodes") == 0) {
        const json_t *spec = json_object_get(obj, "spec");
        part = json_pack("{s:O?,s:O?,s:O?,s:o}", "labels",
                         json_object_get(json_object_get(obj, "metadata"), "labels"), "taints",
                         json_object_get(spec, "taints"), "unschedulable",
                         json_object_get(spec, "unschedulable"), "allocatable",
                         ty_placement_allocatable(obj));
    } else {
        const json_t *labels = json_object_get(json_object_get(obj, "metadata"), "labels");
        part = json_is_object(labels) ? json_incref((json_t *)labels) : json_object();
    }
    char *text = json_dumps(part, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(part);
    return text ? text : ty_strdup("?");
}

/* Records what the pass reads of the object; returns whether it differs from what was
 * recorded (a node that comes or goes always does). */
static bool read_part_changed(ty_admission *a, ty_event_type type, const char *resource,
                              const json_t *obj)
{
    TY_AUTOFREE char *key =
        ty_asprintf("%s/%s/%s", resource, ty_obj_namespace(obj), ty_obj_name(obj));
    char *now = read_part(resource, type == TY_EVENT_DELETED ? NULL : obj);
    char *before = ty_map_gets(&a->read_parts, key);
    bool changed = strcmp(before ? before : "", now) != 0;
    if (!before && strcmp(resource, "namespaces") == 0)
        changed = strcmp(now, "{}") != 0;
    if (strcmp(resource, "nodes") == 0 && type != TY_EVENT_MODIFIED)
        changed = true;
    if (type == TY_EVENT_DELETED) {
        free(ty_map_dels(&a->read_parts, key));
        free(now);
    } else {
        free(ty_map_puts(&a->read_parts, key, now));
    }
    return changed;
}

/* Changes are batched: a pass runs four times its own last duration after the first change,
 * so that with thousands of workloads (a pass of 10-50 ms) the loop still spends most of its
 * time serving the API and the other controllers, while a small cluster sees every change at
 * once. Changes that cannot alter the outcome run no pass: a pod, node or namespace whose read
 * part (read_part) stays the same; the status this controller itself writes on queues (the
 * snapshot reads their specs only; the same inputs give the same status again), and the reason
 * it writes on a waiting workload (QuotaReserved=False: the snapshot reads QuotaReserved only
 * when True, so it decides the same again and the reason stays). */
static void on_event(void *ctx, ty_event_type type, const char *resource, const json_t *obj)
{
    ty_admission *a = ctx;
    bool queue = strcmp(resource, "clusterqueues") == 0 || strcmp(resource, "localqueues") == 0;
    bool read_in_part = strcmp(resource, "pods") == 0 || strcmp(resource, "nodes") == 0 ||
                        strcmp(resource, "namespaces") == 0;
    bool own = a->writing_status && type == TY_EVENT_MODIFIED;
    if ((own && queue) || (own && a->writing_pending && strcmp(resource, "workloads") == 0) ||
        (read_in_part && !read_part_changed(a, type, resource, obj))) {
        a->skipped_events++;
        return;
    }
    ty_queue_add_after(a->queue, "pass", a->batch_ms);
}

static char *format_milli(const char *resource, int64_t milli)
{
    char buf[40];
    ty_quantity_format((ty_quantity){milli}, strcmp(resource, "memory") == 0, buf, sizeof buf);
    return ty_strdup(buf);
}

static json_t *quantity_json(const char *resource, int64_t milli)
{
    TY_AUTOFREE char *s = format_milli(resource, milli);
    return json_string(s);
}

static int compare_strings(const void *x, const void *y)
{
    return strcmp(*(const char *const *)x, *(const char *const *)y);
}

/* status.admission for an ADMIT decision. */
static json_t *admission_json(const json_t *wl, const ty_sched_decision *d, bool pods)
{
    json_t *psas = json_array();
    const json_t *sets = json_object_get(json_object_get(wl, "spec"), "podSets");
    for (size_t i = 0; i < d->n_pod_sets && i < json_array_size(sets); i++) {
        const json_t *p = json_array_get(sets, i);
        json_int_t count = json_integer_value(json_object_get(p, "count"));
        if (count < 1)
            count = 1;
        json_t *req = ty_kueue_pod_requests(
            json_object_get(json_object_get(p, "template"), "spec"));
        json_t *flavors = json_object(), *usage = json_object();
        size_t r = 0;
        const char *k;
        json_t *v;
        json_object_foreach(req, k, v)
        {
            json_object_set_new(flavors, k, json_string(d->pod_sets[i].flavors[r++]));
            json_object_set_new(usage, k, quantity_json(k, json_integer_value(v) * count));
        }
        /* Kueue's pod count, which the snapshot added after the template's requests */
        if (pods && !json_object_get(req, "pods")) {
            json_object_set_new(flavors, "pods", json_string(d->pod_sets[i].flavors[r]));
            json_object_set_new(usage, "pods", quantity_json("pods", (int64_t)count * 1000));
        }
        /* One domain per node, in name order; the pods of the set are spread over them in
         * that order (controllers/workloads.c turns it into the placement annotation). */
        const char **nodes = ty_malloc((size_t)count * sizeof *nodes);
        for (json_int_t n = 0; n < count; n++)
            nodes[n] = d->pod_sets[i].nodes[n];
        qsort(nodes, (size_t)count, sizeof *nodes, compare_strings);
        json_t *domains = json_array();
        for (json_int_t n = 0; n < count;) {
            json_int_t m = n;
            while (m < count && strcmp(nodes[m], nodes[n]) == 0)
                m++;
            json_array_append_new(domains, json_pack("{s:[s],s:I}", "values", nodes[n],
                                                     "count", (json_int_t)(m - n)));
            n = m;
        }
        free(nodes);
        json_array_append_new(
            psas, json_pack("{s:O,s:o,s:o,s:I,s:{s:[s],s:o}}", "name", json_object_get(p, "name"),
                            "flavors", flavors, "resourceUsage", usage, "count", count,
                            "topologyAssignment", "levels", TY_KUEUE_HOSTNAME_LEVEL, "domains",
                            domains));
        json_decref(req);
    }
    return json_pack("{s:s,s:o}", "clusterQueue", d->cluster_queue, "podSetAssignments", psas);
}

static const char *victim_reason(ty_sched_preempt_reason r)
{
    switch (r) {
    case TY_SCHED_IN_COHORT_RECLAMATION:
        return "InCohortReclamation";
    case TY_SCHED_IN_COHORT_FAIR_SHARING:
        return "InCohortFairSharing";
    case TY_SCHED_IN_COHORT_RECLAIM_WHILE_BORROWING:
        return "InCohortReclaimWhileBorrowing";
    case TY_SCHED_IN_CLUSTER_QUEUE:
    default:
        return "InClusterQueue";
    }
}

static const char *victim_words(ty_sched_preempt_reason r)
{
    switch (r) {
    case TY_SCHED_IN_COHORT_RECLAMATION:
        return "reclamation within the cohort";
    case TY_SCHED_IN_COHORT_FAIR_SHARING:
        return "fair sharing within the cohort";
    case TY_SCHED_IN_COHORT_RECLAIM_WHILE_BORROWING:
        return "reclamation within the cohort while borrowing";
    case TY_SCHED_IN_CLUSTER_QUEUE:
    default:
        return "prioritization in the ClusterQueue";
    }
}

/* Remembers the pass's first failed write (the pass goes on: other writes may succeed). */
static void write_failed(ty_admission *a, const char *what, const char *name, const char *msg)
{
    if (!a->write_err.msg)
        ty_fail(&a->write_err, "%s %s: %s", what, name, msg);
}

static void write_status(ty_admission *a, const char *resource, const json_t *before, json_t *after)
{
    if (json_equal(json_object_get(before, "status"), json_object_get(after, "status")))
        return;
    ty_error err = TY_ERROR_INIT;
    a->writing_status = true;
    int rc = ty_write_update_status(a->store, resource, after, NULL, &err);
    a->writing_status = false;
    if (rc < 0)
        write_failed(a, resource, ty_obj_name(after), err.msg);
    ty_error_clear(&err);
}

/* Evicts an admitted workload (the job side stops its job, then requeues it). */
static void evict(ty_admission *a, const json_t *wl, const char *reason, const char *preempted,
                  const char *message, int64_t now)
{
    if (ty_kueue_condition_is(wl, "Evicted", "True"))
        return;
    json_t *next = json_deep_copy(wl);
    ty_kueue_set_condition(next, "Evicted", "True", reason, message, now);
    if (preempted)
        ty_kueue_set_condition(next, "Preempted", "True", preempted, message, now);
    write_status(a, "workloads", wl, next);
    ty_event(a->events, next, "Normal", preempted ? "Preempted" : "Evicted", "%s", message);
    json_decref(next);
}

static const json_t *cq_named(const json_t *cqs, const char *name)
{
    size_t i;
    json_t *cq;
    json_array_foreach(cqs, i, cq) if (name && !strcmp(ty_obj_name(cq), name)) return cq;
    return NULL;
}

/* Kueue's syncAdmissionCheckConditions on `next`: one status.admissionChecks entry per check
 * in `names` (a new one Pending; the others keep their state), sorted by name, none when there
 * are no checks. Returns whether every check is Ready. */
static bool sync_checks(json_t *next, const json_t *names, int64_t now)
{
    json_t *st = json_object_get(next, "status");
    const json_t *old = json_object_get(st, "admissionChecks");
    if (!json_array_size(names)) {
        if (old)
            json_object_del(st, "admissionChecks");
        return true;
    }
    char at[40];
    ty_time_format_rfc3339(now, at, sizeof at, 0);
    json_t *checks = json_array();
    bool ready = true;
    size_t i, j;
    json_t *n, *c;
    json_array_foreach(names, i, n)
    {
        const json_t *have = NULL;
        json_array_foreach(old, j, c) if (json_equal(json_object_get(c, "name"), n)) have = c;
        json_t *e = have ? json_deep_copy(have)
                         : json_pack("{s:O,s:s,s:s,s:s}", "name", n, "state", "Pending",
                                     "lastTransitionTime", at, "message", "");
        const char *state = json_string_value(json_object_get(e, "state"));
        ready &= state && !strcmp(state, "Ready");
        json_array_append_new(checks, e);
    }
    json_object_set_new(st, "admissionChecks", checks);
    return ready;
}

/* The checks of a workload with reserved quota, as Kueue's workload controller does them: a
 * Rejected check deactivates and evicts it, a Retry check evicts it (the job side then gives
 * its quota back and requeues it, checks Pending again), and once every check is Ready it is
 * Admitted (its job starts). */
static void reserved_checks(ty_admission *a, const json_t *wl, const json_t *cq, int64_t now)
{
    if (ty_kueue_condition_is(wl, "Evicted", "True") || !cq)
        return;
    const json_t *admission = json_object_get(json_object_get(wl, "status"), "admission");
    json_t *names = ty_kueue_checks_for(cq, admission);
    /* Most reserved workloads are settled (admitted, or waiting for Pending checks): nothing
     * to write, and no copy of each of them on every pass. */
    const json_t *have = json_object_get(json_object_get(wl, "status"), "admissionChecks");
    bool same = json_array_size(have) == json_array_size(names), all_ready = true, bad = false;
    for (size_t k = 0; same && k < json_array_size(names); k++) {
        const json_t *c = json_array_get(have, k);
        const char *state = json_string_value(json_object_get(c, "state"));
        same = json_equal(json_object_get(c, "name"), json_array_get(names, k)) && state;
        all_ready &= same && !strcmp(state, "Ready");
        bad |= same && (!strcmp(state, "Retry") || !strcmp(state, "Rejected"));
    }
    if (same && !bad && (!all_ready || ty_kueue_condition_is(wl, "Admitted", "True"))) {
        json_decref(names);
        return;
    }
    json_t *next = json_deep_copy(wl);
    bool ready = sync_checks(next, names, now);
    json_decref(names);
    ty_buf rejected = TY_BUF_INIT;
    bool retry = false;
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(json_object_get(next, "status"), "admissionChecks"), i,
                       c)
    {
        const char *state = json_string_value(json_object_get(c, "state"));
        const char *name = json_string_value(json_object_get(c, "name"));
        if (state && !strcmp(state, "Rejected"))
            ty_buf_addf(&rejected, "%s%s", rejected.len ? " " : "", name ? name : "");
        retry |= state && !strcmp(state, "Retry");
    }
    if (rejected.len) {
        TY_AUTOFREE char *msg = ty_asprintf(
            "The workload is deactivated due to Admission check(s): [%s], were rejected",
            rejected.data);
        ty_kueue_set_condition(next, "Evicted", "True", "DeactivatedDueToAdmissionCheck", msg,
                               now);
        write_status(a, "workloads", wl, next);
        ty_event(a->events, next, "Warning", "AdmissionCheckRejected", "%s", msg);
        /* spec.active: the status write above gave the object a new version */
        json_t *cur = ty_store_get(a->store, "workloads", ty_obj_namespace(wl), ty_obj_name(wl));
        if (cur) {
            json_object_set_new(json_object_get(cur, "spec"), "active", json_false());
            ty_error err = TY_ERROR_INIT;
            if (ty_write_update(a->store, "workloads", cur, NULL, &err) < 0)
                write_failed(a, "deactivating workload", ty_obj_name(wl), err.msg);
            ty_error_clear(&err);
            json_decref(cur);
        }
    } else if (retry) {
        ty_kueue_set_condition(next, "Evicted", "True", "AdmissionCheck",
                               "At least one admission check is false", now);
        write_status(a, "workloads", wl, next);
        ty_event(a->events, next, "Normal", "Evicted", "At least one admission check is false");
    } else {
        bool admitting = ready && !ty_kueue_condition_is(wl, "Admitted", "True");
        if (admitting)
            ty_kueue_set_condition(next, "Admitted", "True", "Admitted",
                                   "The workload is admitted", now);
        write_status(a, "workloads", wl, next);
        if (admitting)
            ty_event(a->events, next, "Normal", "Admitted", "Admitted by ClusterQueue %s",
                     json_string_value(json_object_get(admission, "clusterQueue")));
    }
    ty_buf_free(&rejected);
    json_decref(next);
}

/* Writes an ADMIT decision; `admission` is its status.admission (admission_json). The
 * workload is Admitted at once unless its queue has admission checks to pass first. */
static void admit(ty_admission *a, const json_t *wl, const ty_sched_decision *d,
                  const json_t *admission, const json_t *cq, int64_t now)
{
    json_t *next = json_deep_copy(wl);
    if (!json_is_object(json_object_get(next, "status")))
        json_object_set_new(next, "status", json_object());
    json_object_set(json_object_get(next, "status"), "admission", (json_t *)admission);
    TY_AUTOFREE char *msg = ty_asprintf("Quota reserved in ClusterQueue %s", d->cluster_queue);
    ty_kueue_set_condition(next, "QuotaReserved", "True", "QuotaReserved", msg, now);
    json_t *names = cq ? ty_kueue_checks_for(cq, admission) : json_array();
    bool ready = sync_checks(next, names, now);
    json_decref(names);
    if (ready)
        ty_kueue_set_condition(next, "Admitted", "True", "Admitted", "The workload is admitted",
                               now);
    /* A workload admitted again after an eviction says what happened before, as Kueue does. */
    const char *again[] = {"Evicted", "Preempted"};
    for (int i = 0; i < 2; i++) {
        const json_t *c = ty_kueue_condition(next, again[i]);
        if (c && ty_kueue_condition_is(next, again[i], "True")) {
            TY_AUTOFREE char *prev = ty_asprintf(
                "Previously: %s", json_string_value(json_object_get(c, "message")));
            ty_kueue_set_condition(next, again[i], "False", "QuotaReserved", prev, now);
        }
    }
    int64_t queued = ty_kueue_time_ms(
        json_string_value(json_object_get(json_object_get(wl, "metadata"), "creationTimestamp")),
        now / 1000000);
    write_status(a, "workloads", wl, next);
    ty_event(a->events, next, "Normal", "QuotaReserved",
             "Quota reserved in ClusterQueue %s, wait time since queued was %llds",
             d->cluster_queue, (long long)((now / 1000000 - queued) / 1000));
    if (ready)
        ty_event(a->events, next, "Normal", "Admitted",
                 "Admitted by ClusterQueue %s, wait time since reservation was 0s",
                 d->cluster_queue);
    json_decref(next);
}

static bool same_string(const char *cur, const char *value)
{
    return cur && strcmp(cur, value) == 0;
}

static void pending(ty_admission *a, const cached_workload *cw, const char *message, int64_t now)
{
    /* Most waiting workloads wait for the same reason as in the last pass: no copy for them. */
    if (same_string(cw->qr_status, "False") && same_string(cw->qr_reason, "Pending") &&
        same_string(cw->qr_message, message))
        return;
    const json_t *wl = cw->obj;
    json_t *next = json_deep_copy(wl);
    if (ty_kueue_set_condition(next, "QuotaReserved", "False", "Pending", message, now)) {
        a->writing_pending = true;
        write_status(a, "workloads", wl, next);
        a->writing_pending = false;
        ty_event(a->events, next, "Warning", "Pending", "%s", message);
    }
    json_decref(next);
}

/* Per queue: counts and usage per flavor/resource, gathered after the decisions. */
typedef struct tally {
    json_int_t pending, reserving;
    json_t *usage; /* flavor -> {resource: milli} */
} tally;

static tally *tally_of(ty_map *m, const char *key)
{
    tally *t = ty_map_gets(m, key);
    if (!t) {
        t = TY_NEW(tally);
        t->usage = json_object();
        ty_map_puts(m, key, t);
    }
    return t;
}

static void tally_usage(tally *t, const json_t *admission)
{
    size_t i;
    json_t *psa;
    json_array_foreach(json_object_get(admission, "podSetAssignments"), i, psa)
    {
        const char *r;
        json_t *q;
        json_object_foreach(json_object_get(psa, "resourceUsage"), r, q)
        {
            const char *f = json_string_value(json_object_get(json_object_get(psa, "flavors"), r));
            ty_quantity v;
            if (!f || ty_quantity_from_json(q, &v, NULL) < 0)
                continue;
            json_t *fu = json_object_get(t->usage, f);
            if (!fu) {
                fu = json_object();
                json_object_set_new(t->usage, f, fu);
            }
            json_object_set_new(fu, r, json_integer(json_integer_value(json_object_get(fu, r)) +
                                                    v.milli));
        }
    }
}

static void free_tallies(ty_map *m)
{
    const ty_map_slot *slot;
    for (size_t i = 0; ty_map_next(m, &i, &slot);) {
        tally *t = slot->value;
        json_decref(t->usage);
        free(t);
    }
    ty_map_free(m);
}

/* A queue's status object (made when missing) with its workload counts; every admitted
 * workload also reserves quota (there are no admission checks). */
static json_t *status_with_counts(json_t *queue, const tally *t)
{
    json_t *st = json_object_get(queue, "status");
    if (!json_is_object(st)) {
        st = json_object();
        json_object_set_new(queue, "status", st);
    }
    json_object_set_new(st, "pendingWorkloads", json_integer(t->pending));
    json_object_set_new(st, "reservingWorkloads", json_integer(t->reserving));
    json_object_set_new(st, "admittedWorkloads", json_integer(t->reserving));
    return st;
}

static void cluster_queue_status(ty_admission *a, const json_t *cq, const ty_sched *s,
                                 const json_t *inactive, ty_map *tallies, int64_t now,
                                 ty_buf *metrics)
{
    const char *cohort = json_string_value(json_object_get(json_object_get(cq, "spec"), "cohort"));
    tally *t = tally_of(tallies, ty_obj_name(cq));
    json_t *next = json_deep_copy(cq);
    json_t *st = status_with_counts(next, t);
    ty_buf_addf(metrics,
                "kueue_pending_workloads{cluster_queue=\"%s\"} %lld\n"
                "kueue_admitted_active_workloads{cluster_queue=\"%s\"} %lld\n",
                ty_obj_name(cq), (long long)t->pending, ty_obj_name(cq), (long long)t->reserving);
    json_t *usage = json_array();
    size_t g, f, r;
    json_t *grp, *fl, *rq;
    json_array_foreach(json_object_get(json_object_get(cq, "spec"), "resourceGroups"), g, grp)
        json_array_foreach(json_object_get(grp, "flavors"), f, fl)
    {
        const char *fname = json_string_value(json_object_get(fl, "name"));
        json_t *resources = json_array();
        json_array_foreach(json_object_get(fl, "resources"), r, rq)
        {
            const char *rname = json_string_value(json_object_get(rq, "name"));
            if (!fname || !rname)
                continue;
            int64_t used = ty_sched_usage(s, ty_obj_name(cq), fname, rname);
            if (used < 0)
                used = json_integer_value(
                    json_object_get(json_object_get(t->usage, fname), rname));
            ty_quantity nominal = {0};
            ty_quantity_from_json(json_object_get(rq, "nominalQuota"), &nominal, NULL);
            int64_t borrowed = used > nominal.milli ? used - nominal.milli : 0;
            ty_buf_addf(metrics,
                        "kueue_cluster_queue_resource_reservation{cohort=\"%s\",cluster_queue="
                        "\"%s\",flavor=\"%s\",resource=\"%s\"} %.17g\n"
                        "kueue_cluster_queue_nominal_quota{cohort=\"%s\",cluster_queue=\"%s\","
                        "flavor=\"%s\",resource=\"%s\"} %.17g\n",
                        cohort ? cohort : "", ty_obj_name(cq), fname, rname, (double)used / 1000,
                        cohort ? cohort : "", ty_obj_name(cq), fname, rname,
                        (double)nominal.milli / 1000);
            json_array_append_new(resources,
                                  json_pack("{s:s,s:o,s:o}", "name", rname, "total",
                                            quantity_json(rname, used), "borrowed",
                                            quantity_json(rname, borrowed)));
        }
        if (fname)
            json_array_append_new(usage, json_pack("{s:s,s:o}", "name", fname, "resources",
                                                   resources));
        else
            json_decref(resources);
    }
    json_object_set_new(st, "flavorsReservation", json_deep_copy(usage));
    json_object_set_new(st, "flavorsUsage", usage);
    const json_t *why = json_object_get(inactive, ty_obj_name(cq));
    const char *stop = json_string_value(json_object_get(json_object_get(cq, "spec"), "stopPolicy"));
    bool stopped = stop && strcmp(stop, "None") != 0;
    if (why || stopped) {
        /* Kueue's inactiveReason: the first reason, every cause in the message */
        const char *causes = json_string_value(json_object_get(why, "message"));
        TY_AUTOFREE char *m = ty_asprintf("Can't admit new workloads: %s%s%s.",
                                          stopped ? "is stopped" : "",
                                          stopped && causes ? ", " : "", causes ? causes : "");
        const char *reason = stopped ? "Stopped"
                                     : json_string_value(json_object_get(why, "reason"));
        ty_kueue_set_condition(next, "Active", "False", reason, m, now);
    } else {
        ty_kueue_set_condition(next, "Active", "True", "Ready", "Can admit new workloads", now);
    }
    if (a->fair_sharing && !why)
        json_object_set_new(st, "fairSharing",
                            json_pack("{s:I}", "weightedShare",
                                      (json_int_t)ty_sched_weighted_share(s, ty_obj_name(cq))));
    write_status(a, "clusterqueues", cq, next);
    json_decref(next);
}

static void local_queue_status(ty_admission *a, const json_t *lq, const json_t *cqs,
                               const json_t *inactive, ty_map *tallies, int64_t now)
{
    TY_AUTOFREE char *key = ty_asprintf("%s/%s", ty_obj_namespace(lq), ty_obj_name(lq));
    tally *t = tally_of(tallies, key);
    json_t *next = json_deep_copy(lq);
    json_t *st = status_with_counts(next, t);
    json_t *usage = json_array();
    const char *f;
    json_t *fu;
    json_object_foreach(t->usage, f, fu)
    {
        json_t *resources = json_array();
        const char *r;
        json_t *v;
        json_object_foreach(fu, r, v) json_array_append_new(
            resources, json_pack("{s:s,s:o}", "name", r, "total",
                                 quantity_json(r, json_integer_value(v))));
        json_array_append_new(usage, json_pack("{s:s,s:o}", "name", f, "resources", resources));
    }
    json_object_set_new(st, "flavorsReservation", json_deep_copy(usage));
    json_object_set_new(st, "flavorUsage", usage);
    const char *cq = json_string_value(json_object_get(json_object_get(lq, "spec"), "clusterQueue"));
    bool exists = false;
    size_t i;
    json_t *c;
    json_array_foreach(cqs, i, c) exists |= cq && strcmp(ty_obj_name(c), cq) == 0;
    if (!exists)
        ty_kueue_set_condition(next, "Active", "False", "ClusterQueueDoesNotExist",
                               "Can't submit new workloads to clusterQueue", now);
    else if (json_object_get(inactive, cq))
        ty_kueue_set_condition(next, "Active", "False", "ClusterQueueIsInactive",
                               "Can't submit new workloads to clusterQueue", now);
    else
        ty_kueue_set_condition(next, "Active", "True", "Ready",
                               "Can submit new workloads to localQueue", now);
    write_status(a, "localqueues", lq, next);
    json_decref(next);
}

/* The last pass as Prometheus text: Kueue's queue metrics (per cluster queue, from the lines
 * gathered in `queues`), the pass itself, and GPU fragmentation after it (free GPUs on wholly
 * free nodes versus on partly used ones: what large gangs can and cannot use). */
static void publish_metrics(ty_admission *a, const ty_buf *queues, const ty_sched_stats *st,
                            double seconds)
{
    ty_buf m = TY_BUF_INIT;
    ty_buf_addf(&m,
                "# HELP kueue_pending_workloads Pending workloads per cluster queue.\n"
                "# TYPE kueue_pending_workloads gauge\n"
                "# HELP kueue_admitted_active_workloads Admitted, unfinished workloads per cluster "
                "queue.\n"
                "# TYPE kueue_admitted_active_workloads gauge\n"
                "# HELP kueue_cluster_queue_resource_reservation Quota reserved per flavor and "
                "resource.\n"
                "# TYPE kueue_cluster_queue_resource_reservation gauge\n"
                "# HELP kueue_cluster_queue_nominal_quota Nominal quota per flavor and resource.\n"
                "# TYPE kueue_cluster_queue_nominal_quota gauge\n"
                "%s",
                queues->len ? queues->data : "");
    int64_t whole = st->pack_free_whole_milli, partial = st->pack_free_partial_milli;
    ty_buf_addf(&m,
                "# HELP trainyard_admission_passes_total Admission passes run.\n"
                "# TYPE trainyard_admission_passes_total counter\n"
                "trainyard_admission_passes_total %llu\n"
                "# HELP trainyard_admitted_workloads_total Workloads admitted.\n"
                "# TYPE trainyard_admitted_workloads_total counter\n"
                "trainyard_admitted_workloads_total %llu\n"
                "# HELP trainyard_preempted_workloads_total Workloads chosen as preemption "
                "victims.\n"
                "# TYPE trainyard_preempted_workloads_total counter\n"
                "trainyard_preempted_workloads_total %llu\n"
                "# HELP trainyard_admission_skipped_events_total Changes that could not alter a "
                "pass's outcome, so ran none.\n"
                "# TYPE trainyard_admission_skipped_events_total counter\n"
                "trainyard_admission_skipped_events_total %llu\n"
                "# HELP trainyard_admission_pass_seconds Duration of the last admission pass.\n"
                "# TYPE trainyard_admission_pass_seconds gauge\n"
                "trainyard_admission_pass_seconds %.6f\n"
                "# HELP trainyard_pending_workloads Workloads waiting after the last pass.\n"
                "# TYPE trainyard_pending_workloads gauge\n"
                "trainyard_pending_workloads %zu\n"
                "# HELP trainyard_gpus_free Free GPUs after the last pass, on nodes wholly free or "
                "partly used.\n"
                "# TYPE trainyard_gpus_free gauge\n"
                "trainyard_gpus_free{nodes=\"whole\"} %.17g\n"
                "trainyard_gpus_free{nodes=\"partial\"} %.17g\n"
                "# HELP trainyard_nodes_wholly_free Nodes with nothing scheduled on them.\n"
                "# TYPE trainyard_nodes_wholly_free gauge\n"
                "trainyard_nodes_wholly_free %zu\n"
                "# HELP trainyard_gpu_fragmentation Share of free GPUs that sit on partly used "
                "nodes (0: every free GPU is on a whole free node).\n"
                "# TYPE trainyard_gpu_fragmentation gauge\n"
                "trainyard_gpu_fragmentation %.6f\n",
                (unsigned long long)a->passes, (unsigned long long)a->admitted_total,
                (unsigned long long)a->preempted_total, (unsigned long long)a->skipped_events,
                seconds, st->waiting + st->preempting,
                (double)whole / 1000, (double)partial / 1000, st->nodes_wholly_free,
                whole + partial > 0 ? (double)partial / (double)(whole + partial) : 0.0);
    free(a->metrics);
    a->metrics = ty_buf_steal(&m);
}

char *ty_admission_metrics(const ty_admission *a)
{
    return a && a->metrics ? ty_strdup(a->metrics) : NULL;
}

/* Every Workload, in the store's order, parsed only when its resourceVersion moved since the
 * last pass; entries of deleted workloads go. */
static json_t *list_workloads(ty_admission *a, cached_workload ***listed)
{
    ty_store_item *items = NULL;
    size_t n = ty_store_list_items(a->store, "workloads", NULL, &items);
    json_t *out = json_array();
    *listed = ty_calloc(n + 1, sizeof **listed);
    uint64_t pass_no = a->passes + 1;
    for (size_t i = 0; i < n; i++) {
        cached_workload *cw = ty_map_gets(&a->workloads, items[i].key);
        if (!cw) {
            cw = TY_NEW(cached_workload);
            ty_map_puts(&a->workloads, items[i].key, cw);
        }
        if (!cw->obj || cw->rv != items[i].rv)
            cached_workload_set(cw, json_loadb(items[i].text, items[i].len, 0, NULL),
                                items[i].rv);
        cw->seen = pass_no;
        if (cw->obj) {
            (*listed)[json_array_size(out)] = cw;
            json_array_append(out, cw->obj);
        }
    }
    free(items);
    json_t *gone = json_array();
    const ty_map_slot *slot;
    for (size_t i = 0; ty_map_next(&a->workloads, &i, &slot);) {
        cached_workload *cw = slot->value;
        if (cw->seen != pass_no)
            json_array_append_new(gone, json_string(slot->key));
    }
    size_t i;
    json_t *k;
    json_array_foreach(gone, i, k)
    {
        cached_workload *cw = ty_map_dels(&a->workloads, json_string_value(k));
        cached_workload_clear(cw);
        free(cw);
    }
    json_decref(gone);
    return out;
}

static void free_workload_cache(ty_admission *a)
{
    const ty_map_slot *slot;
    for (size_t i = 0; ty_map_next(&a->workloads, &i, &slot);) {
        cached_workload *cw = slot->value;
        cached_workload_clear(cw);
        free(cw);
    }
    ty_map_free(&a->workloads);
}

static void pass(void *ctx, const char *key);

/* A pass fails when a write did: the queue runs it again after its back-off. */
static int pass_key(void *ctx, const char *key, ty_error *err)
{
    ty_admission *a = ctx;
    pass(ctx, key);
    if (!a->write_err.msg)
        return 0;
    int rc = ty_fail(err, "%s", a->write_err.msg);
    ty_error_clear(&a->write_err);
    return rc;
}

static void pass(void *ctx, const char *key)
{
    ty_admission *a = ctx;
    (void)key;
    int64_t now = ty_time_now_ns(), started = ty_time_mono_ns();
    ty_kueue_objects o;
    cached_workload **listed;
    ty_kueue_objects_load(a->store, &o, list_workloads(a, &listed));
    size_t nw = json_array_size(o.workloads);
    ty_kueue_route *routes = ty_calloc(nw + 1, sizeof *routes);
    json_t *inactive = json_object();
    ty_sched *s = ty_kueue_snapshot(&o, a->fair_sharing, now / 1000000, routes, inactive,
                                    a->snapshot_cache);
    ty_sched_run(s);

    ty_map tallies = TY_MAP_INIT;
    int64_t next_requeue = 0;
    for (size_t i = 0; i < nw; i++) {
        const cached_workload *cw = listed[i];
        const json_t *wl = cw->obj;
        if (cw->finished || cw->deleting)
            continue;
        if (cw->reserved) {
            tally *tc = tally_of(&tallies, cw->admission_cq ? cw->admission_cq : "");
            tally *tl = tally_of(&tallies, cw->lq_key);
            tc->reserving++;
            tl->reserving++;
            tally_usage(tc, cw->admission);
            tally_usage(tl, cw->admission);
            if (!cw->finished)
                reserved_checks(a, wl, cq_named(o.cluster_queues, cw->admission_cq), now);
            continue;
        }
        if (cw->inactive)
            continue;
        tally *tl = tally_of(&tallies, cw->lq_key);
        if (routes[i].problem) {
            tl->pending++;
            pending(a, cw, routes[i].problem, now);
            continue;
        }
        tally *tc = tally_of(&tallies, routes[i].cluster_queue);
        const ty_sched_decision *d = ty_sched_decision_of(s, cw->key);
        if (d && d->verdict == TY_SCHED_ADMIT) {
            json_t *adm = admission_json(
                wl, d, ty_kueue_covers_pods(o.cluster_queues, d->cluster_queue));
            admit(a, wl, d, adm, cq_named(o.cluster_queues, d->cluster_queue), now);
            tc->reserving++;
            tl->reserving++;
            tally_usage(tc, adm);
            tally_usage(tl, adm);
            json_decref(adm);
            continue;
        }
        tc->pending++;
        tl->pending++;
        pending(a, cw, d && d->message ? d->message : "waiting for the next scheduling pass",
                now);
        int64_t at = cw->requeue_at_ms;
        if (at > now / 1000000 && (!next_requeue || at < next_requeue))
            next_requeue = at;
    }
    /* Victims, once every decision is known. */
    for (size_t i = 0; i < ty_sched_n_decisions(s); i++) {
        const ty_sched_decision *d = ty_sched_decision_at(s, i);
        if (d->verdict != TY_SCHED_PREEMPT)
            continue;
        const cached_workload *pw = ty_map_gets(&a->workloads, d->workload);
        const json_t *preemptor = pw ? pw->obj : NULL;
        const char *resource, *name, *job_uid = NULL;
        if (!preemptor || !ty_kueue_workload_job(preemptor, &resource, &name, &job_uid))
            job_uid = "";
        for (size_t v = 0; v < d->n_victims; v++) {
            const cached_workload *vw = ty_map_gets(&a->workloads, d->victims[v].workload);
            if (!vw || !vw->obj)
                continue;
            TY_AUTOFREE char *msg = ty_asprintf(
                "Preempted to accommodate a workload (UID: %s, JobUID: %s) due to %s",
                preemptor ? ty_obj_uid(preemptor) : "", job_uid ? job_uid : "",
                victim_words(d->victims[v].reason));
            evict(a, vw->obj, "Preempted", victim_reason(d->victims[v].reason), msg, now);
        }
    }
    /* HoldAndDrain: admitted workloads of a stopped queue leave it. */
    size_t i;
    json_t *cq;
    json_array_foreach(o.cluster_queues, i, cq)
    {
        const char *stop =
            json_string_value(json_object_get(json_object_get(cq, "spec"), "stopPolicy"));
        if (!stop || strcmp(stop, "HoldAndDrain") != 0)
            continue;
        for (size_t w = 0; w < nw; w++) {
            const cached_workload *cw = listed[w];
            if (cw->reserved && !cw->finished && cw->admission_cq &&
                strcmp(cw->admission_cq, ty_obj_name(cq)) == 0)
                evict(a, cw->obj, "ClusterQueueStopped", NULL, "The ClusterQueue is stopped",
                      now);
        }
    }
    TY_AUTOBUF ty_buf metrics = TY_BUF_INIT;
    json_array_foreach(o.cluster_queues, i, cq)
        cluster_queue_status(a, cq, s, inactive, &tallies, now, &metrics);
    json_t *lq;
    json_array_foreach(o.local_queues, i, lq)
        local_queue_status(a, lq, o.cluster_queues, inactive, &tallies, now);
    if (next_requeue)
        ty_queue_add_after(a->queue, "pass", next_requeue - now / 1000000 + 1);

    ty_sched_stats st;
    ty_sched_stats_get(s, &st);
    if (st.admitted || st.preempting)
        ty_debug("admission: pass: %zu admitted, %zu preempting (%zu victims), %zu waiting",
                 st.admitted, st.preempting, st.victims, st.waiting);
    a->passes++;
    a->admitted_total += st.admitted;
    a->preempted_total += st.victims;
    int64_t took_ns = ty_time_mono_ns() - started;
    a->batch_ms = took_ns * 4 / 1000000;
    publish_metrics(a, &metrics, &st, (double)took_ns / 1e9);
    free(listed);
    free_tallies(&tallies);
    json_decref(inactive);
    for (size_t w = 0; w < nw; w++)
        free(routes[w].problem);
    free(routes);
    ty_sched_free(s);
    ty_kueue_objects_free(&o);
}

ty_admission *ty_admission_new(uv_loop_t *loop, ty_store *store, const ty_admission_config *cfg)
{
    ty_admission *a = TY_NEW(ty_admission);
    a->store = store;
    a->fair_sharing = cfg && cfg->fair_sharing;
    a->queue = ty_queue_new(loop, "admission", pass_key, a);
    a->snapshot_cache = ty_kueue_cache_new();
    a->events = ty_recorder_new(store, "kueue-admission");
    const char *read_in_part[] = {"pods", "nodes", "namespaces"};
    /* One object parsed at a time: a list of every pod would hold all their trees at once
     * (about ten times their text: 60 MB for a cluster's 5,000 pods). */
    for (size_t r = 0; r < 3; r++) {
        ty_store_item *items = NULL;
        size_t n = ty_store_list_items(store, read_in_part[r], NULL, &items);
        for (size_t i = 0; i < n; i++) {
            json_t *obj = json_loadb(items[i].text, items[i].len, 0, NULL);
            if (obj)
                read_part_changed(a, TY_EVENT_ADDED, read_in_part[r], obj);
            json_decref(obj);
        }
        free(items);
    }
    a->watch_ids = ty_queue_watch_kinds(store, TY_WATCHED_BY_ADMISSION, on_event, a, &a->nwatch);
    ty_queue_add(a->queue, "pass");
    return a;
}

void ty_admission_resync(ty_admission *a)
{
    ty_queue_add(a->queue, "pass");
}

void ty_admission_free(ty_admission *a)
{
    if (!a)
        return;
    ty_queue_unwatch_kinds(a->store, a->watch_ids, a->nwatch);
    ty_queue_free(a->queue);
    ty_recorder_free(a->events);
    free(a->metrics);
    free_workload_cache(a);
    ty_kueue_cache_free(a->snapshot_cache);
    const ty_map_slot *slot;
    for (size_t i = 0; ty_map_next(&a->read_parts, &i, &slot);)
        free(slot->value);
    ty_map_free(&a->read_parts);
    free(a);
}
