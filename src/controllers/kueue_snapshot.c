/* The stored Kueue objects, nodes and pods as the scheduling core's snapshot. */
#include <stdio.h>
#include <string.h>

#include "api/kinds.h"
#include "api/selector.h"
#include "base/buf.h"
#include "base/log.h"
#include "base/map.h"
#include "base/mem.h"
#include "base/quantity.h"
#include "controllers/admission.h"
#include "controllers/controllers_int.h"
#include "controllers/placement.h"
#include "controllers/podutil.h"

/* Arrays handed to the core point into the JSON they were read from: the core copies what it
 * keeps, so they only live for one add. */

/* {"cpu": milli, ...} (integers) to amounts. */
static ty_sched_amount *amounts_of(const json_t *milli, size_t *n)
{
    *n = 0;
    ty_sched_amount *out = ty_calloc(json_object_size(milli) + 1, sizeof *out);
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)milli, k, v)
        out[(*n)++] = (ty_sched_amount){k, (int64_t)json_integer_value(v)};
    return out;
}

static void add_flavor(ty_sched *s, const json_t *rf)
{
    const json_t *spec = json_object_get(rf, "spec");
    size_t nl, nt, ntol;
    TY_AUTOFREE ty_sched_label *labels =
        ty_placement_labels(json_object_get(spec, "nodeLabels"), &nl);
    TY_AUTOFREE ty_sched_taint *taints =
        ty_placement_taints(json_object_get(spec, "nodeTaints"), &nt);
    TY_AUTOFREE ty_sched_toleration *tols =
        ty_placement_tolerations(json_object_get(spec, "tolerations"), &ntol);
    ty_sched_flavor f = {ty_obj_name(rf), labels, nl, taints, nt, tols, ntol};
    ty_error err = TY_ERROR_INIT;
    if (ty_sched_add_flavor(s, &f, &err) < 0)
        ty_debug("admission: flavor %s: %s", ty_obj_name(rf), err.msg);
    ty_error_clear(&err);
}

/* A Workload as the snapshot reads it: its states and its scheduling core input, parsed once
 * per resourceVersion when a cache keeps it (the strings point into `obj`, which it holds). */
typedef struct wl_entry {
    char *rv; /* metadata.resourceVersion; NULL (none): parsed again unless the same object */
    json_t *obj;
    char *key;       /* "ns/name" */
    char *queue_key; /* "ns/queueName": workloads with one route */
    bool finished, deleting, reserved, inactive, ok, has_job;
    const char *admission_cq, *queue_name, *job_resource, *job_name;
    ty_sched_workload w; /* w.cluster_queue is set per pass */
    ty_sched_pod_set *ps;
    ty_sched_pod_set_admission *adm;
    json_t *reqs; /* the pod sets' requests, which ps[].requests' names point into */
    uint64_t seen;
} wl_entry;

/* "resource/ns/name" of the jobs whose Workloads hold quota: their pods are counted through
 * the Workload's placement, not as foreign usage of the node. */
static json_t *queued_jobs(const ty_kueue_objects *o, wl_entry *const *entries)
{
    json_t *set = json_object();
    for (size_t i = 0; i < json_array_size(o->workloads); i++) {
        const wl_entry *e = entries[i];
        if (e->reserved && !e->finished && e->has_job) {
            TY_AUTOFREE char *key = ty_asprintf("%s/%s/%s", e->job_resource,
                                                ty_obj_namespace(e->obj), e->job_name);
            json_object_set_new(set, key, json_true());
        }
    }
    return set;
}

static void add_nodes(ty_sched *s, const ty_kueue_objects *o, wl_entry *const *entries)
{
    json_t *queued = queued_jobs(o, entries);
    json_t *used = json_object(); /* node -> {resource: milli} */
    size_t i;
    json_t *pod;
    json_array_foreach(o->pods, i, pod)
    {
        const char *node = json_string_value(json_object_get(json_object_get(pod, "spec"),
                                                             "nodeName"));
        if (!node || ty_pod_terminated(pod))
            continue;
        const char *resource, *job, *uid;
        if (ty_kueue_workload_job(pod, &resource, &job, &uid)) { /* its controlling job */
            TY_AUTOFREE char *key =
                ty_asprintf("%s/%s/%s", resource, ty_obj_namespace(pod), job);
            if (json_object_get(queued, key))
                continue;
        }
        json_t *req = ty_kueue_pod_requests(json_object_get(pod, "spec"));
        json_t *u = json_object_get(used, node);
        if (!u) {
            u = json_object();
            json_object_set_new(used, node, u);
        }
        const char *k;
        json_t *v;
        /* each pod also takes one of the node's pod count, as placement counts it */
        json_object_set_new(req, "pods", json_integer(1000));
        json_object_foreach(req, k, v) json_object_set_new(
            u, k, json_integer(json_integer_value(json_object_get(u, k)) + json_integer_value(v)));
        json_decref(req);
    }
    json_t *node;
    json_array_foreach(o->nodes, i, node)
    {
        const json_t *spec = json_object_get(node, "spec");
        size_t nl, nt, na, nu;
        json_t *alloc = ty_placement_allocatable(node);
        TY_AUTOFREE ty_sched_label *labels =
            ty_placement_labels(json_object_get(json_object_get(node, "metadata"), "labels"), &nl);
        TY_AUTOFREE ty_sched_taint *taints =
            ty_placement_taints(json_object_get(spec, "taints"), &nt);
        TY_AUTOFREE ty_sched_amount *allocatable = amounts_of(alloc, &na);
        TY_AUTOFREE ty_sched_amount *use =
            amounts_of(json_object_get(used, ty_obj_name(node)), &nu);
        ty_sched_node n = {ty_obj_name(node), labels, nl, taints, nt, allocatable, na, use, nu,
                           json_is_true(json_object_get(spec, "unschedulable"))};
        ty_error err = TY_ERROR_INIT;
        if (ty_sched_add_node(s, &n, &err) < 0)
            ty_debug("admission: node %s: %s", ty_obj_name(node), err.msg);
        ty_error_clear(&err);
        json_decref(alloc);
    }
    json_decref(used);
    json_decref(queued);
}

static ty_sched_preempt_policy policy_of(const char *s)
{
    if (!s)
        return TY_SCHED_PREEMPT_NEVER;
    if (strcmp(s, "LowerPriority") == 0)
        return TY_SCHED_PREEMPT_LOWER_PRIORITY;
    if (strcmp(s, "LowerOrNewerEqualPriority") == 0)
        return TY_SCHED_PREEMPT_LOWER_OR_NEWER_EQUAL_PRIORITY;
    if (strcmp(s, "Any") == 0)
        return TY_SCHED_PREEMPT_ANY;
    return TY_SCHED_PREEMPT_NEVER;
}

static int64_t quantity_or(const json_t *v, int64_t fallback)
{
    ty_quantity q;
    if (!v || ty_quantity_from_json(v, &q, NULL) < 0)
        return fallback;
    return q.milli;
}

/* Kueue's AdmissionCheck conditions on a ClusterQueue: the checks it names (any flavor) that
 * do not exist, then those whose Active condition is not True (their controller is not ready),
 * into `inactive`; returns whether there was any. */
static bool check_problems(const json_t *cq, const ty_kueue_objects *o, json_t *inactive)
{
    json_t *names = ty_kueue_checks_for(cq, NULL);
    size_t i, j;
    json_t *n;
    ty_buf lost = TY_BUF_INIT, idle = TY_BUF_INIT;
    json_array_foreach(names, i, n)
    {
        const char *name = json_string_value(n);
        const json_t *ac = NULL, *x;
        json_array_foreach(o->admission_checks, j, x) if (!strcmp(ty_obj_name(x), name)) ac = x;
        ty_buf *into = !ac ? &lost : ty_kueue_condition_is(ac, "Active", "True") ? NULL : &idle;
        if (into)
            ty_buf_addf(into, "%s%s", into->len ? " " : "", name);
    }
    json_decref(names);
    if (lost.len) {
        TY_AUTOFREE char *m = ty_asprintf("references missing AdmissionCheck(s): [%s]",
                                          lost.data);
        ty_kueue_inactive_add(inactive, ty_obj_name(cq), "AdmissionCheckNotFound", m);
    }
    if (idle.len) {
        TY_AUTOFREE char *m = ty_asprintf("references inactive AdmissionCheck(s): [%s]",
                                          idle.data);
        ty_kueue_inactive_add(inactive, ty_obj_name(cq), "AdmissionCheckInactive", m);
    }
    bool any = lost.len || idle.len;
    ty_buf_free(&lost);
    ty_buf_free(&idle);
    return any;
}

/* Adds a ClusterQueue unless one of its flavors or admission checks is missing or a check is
 * inactive; then says why in `inactive`. */
static void add_cluster_queue(ty_sched *s, const json_t *cq, const ty_kueue_objects *o,
                              json_t *inactive)
{
    const json_t *spec = json_object_get(cq, "spec");
    const json_t *groups = json_object_get(spec, "resourceGroups");
    size_t ng = json_array_size(groups);
    ty_sched_resource_group *g = ty_calloc(ng + 1, sizeof *g);
    bool missing = false;
    ty_buf names = TY_BUF_INIT; /* the missing flavors, as Kueue lists them: [a b] */
    for (size_t gi = 0; gi < ng; gi++) {
        const json_t *grp = json_array_get(groups, gi);
        const json_t *covered = json_object_get(grp, "coveredResources");
        const json_t *flavors = json_object_get(grp, "flavors");
        const char **cov = ty_calloc(json_array_size(covered) + 1, sizeof *cov);
        for (size_t k = 0; k < json_array_size(covered); k++)
            cov[k] = json_string_value(json_array_get(covered, k));
        ty_sched_flavor_quotas *fq = ty_calloc(json_array_size(flavors) + 1, sizeof *fq);
        for (size_t fi = 0; fi < json_array_size(flavors); fi++) {
            const json_t *fl = json_array_get(flavors, fi);
            const char *fname = json_string_value(json_object_get(fl, "name"));
            bool found = false;
            size_t x;
            json_t *rf;
            json_array_foreach(o->flavors, x, rf) found |= fname && strcmp(ty_obj_name(rf), fname) == 0;
            if (!found) {
                ty_buf_addf(&names, "%s%s", missing ? " " : "", fname ? fname : "");
                missing = true;
            }
            const json_t *res = json_object_get(fl, "resources");
            const json_t *used = json_object_get(
                json_object_get(o->quota_used, ty_obj_name(cq)), fname ? fname : "");
            ty_sched_quota *q = ty_calloc(json_array_size(res) + 1, sizeof *q);
            for (size_t r = 0; r < json_array_size(res); r++) {
                const json_t *rq = json_array_get(res, r);
                q[r] = (ty_sched_quota){
                    json_string_value(json_object_get(rq, "name")),
                    quantity_or(json_object_get(rq, "nominalQuota"), 0),
                    quantity_or(json_object_get(rq, "borrowingLimit"), TY_SCHED_UNLIMITED),
                    quantity_or(json_object_get(rq, "lendingLimit"), TY_SCHED_UNLIMITED),
                    json_integer_value(json_object_get(
                        used, json_string_value(json_object_get(rq, "name"))))};
            }
            fq[fi] = (ty_sched_flavor_quotas){fname, q, json_array_size(res)};
        }
        g[gi] = (ty_sched_resource_group){cov, json_array_size(covered), fq,
                                          json_array_size(flavors)};
    }
    if (missing) {
        TY_AUTOFREE char *m = ty_asprintf("references missing ResourceFlavor(s): [%s]",
                                          names.data);
        ty_kueue_inactive_add(inactive, ty_obj_name(cq), "FlavorNotFound", m);
    }
    ty_buf_free(&names);
    missing |= check_problems(cq, o, inactive);
    if (!missing) {
        const json_t *pre = json_object_get(spec, "preemption");
        const json_t *bwc = json_object_get(pre, "borrowWithinCohort");
        const json_t *fung = json_object_get(spec, "flavorFungibility");
        const char *strategy = json_string_value(json_object_get(spec, "queueingStrategy"));
        const char *stop = json_string_value(json_object_get(spec, "stopPolicy"));
        const char *wcb = json_string_value(json_object_get(fung, "whenCanBorrow"));
        const char *wcp = json_string_value(json_object_get(fung, "whenCanPreempt"));
        const json_t *thr = json_object_get(bwc, "maxPriorityThreshold");
        ty_sched_cluster_queue c = {
            .name = ty_obj_name(cq),
            .cohort = json_string_value(json_object_get(spec, "cohort")),
            .queueing = strategy && strcmp(strategy, "StrictFIFO") == 0
                            ? TY_SCHED_STRICT_FIFO
                            : TY_SCHED_BEST_EFFORT_FIFO,
            .within_cluster_queue =
                policy_of(json_string_value(json_object_get(pre, "withinClusterQueue"))),
            .reclaim_within_cohort =
                policy_of(json_string_value(json_object_get(pre, "reclaimWithinCohort"))),
            .borrow_within_cohort = policy_of(json_string_value(json_object_get(bwc, "policy"))),
            .borrow_max_priority_threshold = (int32_t)json_integer_value(thr),
            .has_borrow_threshold = json_is_integer(thr),
            .when_can_borrow_try_next = wcb && strcmp(wcb, "TryNextFlavor") == 0,
            .when_can_preempt_preempt = wcp && strcmp(wcp, "Preempt") == 0,
            .fair_weight_milli = quantity_or(
                json_object_get(json_object_get(spec, "fairSharing"), "weight"), 1000),
            .stopped = stop && strcmp(stop, "None") != 0,
            .groups = g,
            .n_groups = ng,
        };
        ty_error err = TY_ERROR_INIT;
        if (ty_sched_add_cluster_queue(s, &c, &err) < 0) {
            ty_kueue_inactive_add(inactive, ty_obj_name(cq), "Unknown", err.msg);
            ty_debug("admission: cluster queue %s: %s", ty_obj_name(cq), err.msg);
        }
        ty_error_clear(&err);
    }
    for (size_t gi = 0; gi < ng; gi++) {
        free((void *)g[gi].covered);
        for (size_t fi = 0; fi < g[gi].n_flavors; fi++)
            free((void *)g[gi].flavors[fi].quotas);
        free((void *)g[gi].flavors);
    }
    free(g);
}

static const json_t *find_named(const json_t *arr, const char *ns, const char *name)
{
    size_t i;
    json_t *o;
    json_array_foreach(arr, i, o) if (strcmp(ty_obj_name(o), name) == 0 &&
                                      (!ns || strcmp(ty_obj_namespace(o), ns) == 0)) return o;
    return NULL;
}

/* Where a pending workload goes, or why it cannot be queued. */
static ty_kueue_route route_of(const json_t *wl, const ty_kueue_objects *o, const ty_sched *s,
                               const json_t *inactive)
{
    (void)s;
    ty_kueue_route r = {0};
    const char *lq_name = json_string_value(json_object_get(json_object_get(wl, "spec"),
                                                            "queueName"));
    const json_t *lq = lq_name ? find_named(o->local_queues, ty_obj_namespace(wl), lq_name) : NULL;
    if (!lq) {
        r.problem = ty_asprintf("LocalQueue %s doesn't exist", lq_name ? lq_name : "\"\"");
        return r;
    }
    const char *stop = json_string_value(json_object_get(json_object_get(lq, "spec"),
                                                         "stopPolicy"));
    if (stop && strcmp(stop, "None") != 0) {
        r.problem = ty_asprintf("LocalQueue %s is stopped", lq_name);
        return r;
    }
    const char *cq_name = json_string_value(json_object_get(json_object_get(lq, "spec"),
                                                            "clusterQueue"));
    const json_t *cq = cq_name ? find_named(o->cluster_queues, NULL, cq_name) : NULL;
    if (!cq) {
        r.problem = ty_asprintf("ClusterQueue %s doesn't exist", cq_name ? cq_name : "\"\"");
        return r;
    }
    if (json_object_get(inactive, cq_name)) {
        r.problem = ty_asprintf("ClusterQueue %s is inactive", cq_name);
        return r;
    }
    const json_t *ns = find_named(o->namespaces, NULL, ty_obj_namespace(wl));
    const json_t *sel = json_object_get(json_object_get(cq, "spec"), "namespaceSelector");
    if (!ty_label_selector_object_matches(sel, json_object_get(json_object_get(ns, "metadata"),
                                                               "labels"))) {
        r.problem = ty_strdup("Workload namespace doesn't match ClusterQueue selector");
        return r;
    }
    r.cluster_queue = cq_name;
    return r;
}

static int64_t queued_at(const json_t *wl)
{
    const json_t *rq = ty_kueue_condition(wl, "Requeued");
    const char *created = json_string_value(
        json_object_get(json_object_get(wl, "metadata"), "creationTimestamp"));
    int64_t t = ty_kueue_time_ms(created, 0);
    if (rq && ty_kueue_condition_is(wl, "Requeued", "True"))
        t = ty_kueue_time_ms(json_string_value(json_object_get(rq, "lastTransitionTime")), t);
    return t;
}

/* One pod set's admission from status.admission.podSetAssignments (flavors aligned with the
 * pod set's requests, nodes expanded from the topology assignment). Returns false when it
 * does not describe `count` pods. */
static bool admission_of(const json_t *psa, const json_t *requests, int32_t count,
                         const char **flavors, const char **nodes)
{
    const json_t *fl = json_object_get(psa, "flavors");
    size_t i = 0;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)requests, k, v)
    {
        flavors[i] = json_string_value(json_object_get(fl, k));
        if (!flavors[i])
            return false;
        i++;
    }
    const json_t *domains = json_object_get(json_object_get(psa, "topologyAssignment"), "domains");
    int32_t n = 0;
    size_t d;
    json_t *dom;
    json_array_foreach(domains, d, dom)
    {
        const char *node = json_string_value(json_array_get(json_object_get(dom, "values"), 0));
        json_int_t c = json_integer_value(json_object_get(dom, "count"));
        for (json_int_t x = 0; node && x < c && n < count; x++)
            nodes[n++] = node;
    }
    return n == count;
}

static void entry_free(wl_entry *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->w.n_pod_sets; i++) {
        free((void *)e->ps[i].requests);
        free((void *)e->ps[i].node_selector);
        free((void *)e->ps[i].tolerations);
        free((void *)e->ps[i].affinity);
        free((void *)e->adm[i].flavors);
        free((void *)e->adm[i].nodes);
    }
    free(e->ps);
    free(e->adm);
    json_decref(e->reqs);
    free(e->key);
    free(e->queue_key);
    free(e->rv);
    json_decref(e->obj);
    free(e);
}

static wl_entry *entry_parse(json_t *wl)
{
    wl_entry *e = TY_NEW(wl_entry);
    e->obj = json_incref(wl);
    e->key = ty_asprintf("%s/%s", ty_obj_namespace(wl), ty_obj_name(wl));
    e->finished = ty_kueue_workload_finished(wl);
    e->deleting = ty_obj_deleting(wl);
    e->reserved = ty_kueue_workload_reserved(wl);
    const json_t *spec = json_object_get(wl, "spec");
    const json_t *status = json_object_get(wl, "status");
    e->inactive = json_is_false(json_object_get(spec, "active"));
    e->queue_name = json_string_value(json_object_get(spec, "queueName"));
    e->queue_key = ty_asprintf("%s/%s", ty_obj_namespace(wl), e->queue_name ? e->queue_name : "");
    e->admission_cq = json_string_value(
        json_object_get(json_object_get(status, "admission"), "clusterQueue"));
    const char *uid;
    e->has_job = ty_kueue_workload_job(wl, &e->job_resource, &e->job_name, &uid);

    const json_t *sets = json_object_get(spec, "podSets");
    size_t np = json_array_size(sets);
    const json_t *assignments =
        json_object_get(json_object_get(status, "admission"), "podSetAssignments");
    e->ps = ty_calloc(np + 1, sizeof *e->ps);
    e->adm = ty_calloc(np + 1, sizeof *e->adm);
    e->reqs = json_array();
    e->ok = true;
    for (size_t i = 0; i < np; i++) {
        const json_t *p = json_array_get(sets, i);
        const json_t *pspec = json_object_get(json_object_get(p, "template"), "spec");
        json_t *req = ty_kueue_pod_requests(pspec);
        json_array_append_new(e->reqs, req);
        size_t nr, nsel, ntol;
        json_int_t count = json_integer_value(json_object_get(p, "count"));
        e->ps[i] = (ty_sched_pod_set){
            json_string_value(json_object_get(p, "name")),
            (int32_t)(count > 0 ? count : 1),
            amounts_of(req, &nr), 0,
            ty_placement_labels(json_object_get(pspec, "nodeSelector"), &nsel), 0,
            ty_placement_tolerations(json_object_get(pspec, "tolerations"), &ntol), 0};
        e->ps[i].n_requests = nr;
        e->ps[i].n_node_selector = nsel;
        e->ps[i].n_tolerations = ntol;
        e->ps[i].affinity = ty_placement_affinity(pspec);
        if (e->reserved) {
            const json_t *psa = NULL;
            size_t a;
            json_t *x;
            json_array_foreach(assignments, a, x)
            {
                const char *n = json_string_value(json_object_get(x, "name"));
                if (n && e->ps[i].name && strcmp(n, e->ps[i].name) == 0)
                    psa = x;
            }
            const char **flavors = ty_calloc(nr + 1, sizeof *flavors);
            const char **nodes = ty_calloc((size_t)e->ps[i].count + 1, sizeof *nodes);
            e->adm[i] = (ty_sched_pod_set_admission){flavors, nodes};
            e->ok &= psa && admission_of(psa, req, e->ps[i].count, flavors, nodes);
        }
    }
    const json_t *rs = json_object_get(status, "requeueState");
    e->w = (ty_sched_workload){
        .key = e->key,
        .priority = (int32_t)json_integer_value(json_object_get(spec, "priority")),
        .queued_at_ms = queued_at(wl),
        .eligible_at_ms =
            ty_kueue_time_ms(json_string_value(json_object_get(rs, "requeueAt")), 0),
        .pod_sets = e->ps,
        .n_pod_sets = np,
        .admitted = e->reserved,
        .evicting = e->reserved && ty_kueue_condition_is(wl, "Evicted", "True"),
        .admitted_at_ms = ty_kueue_time_ms(
            json_string_value(json_object_get(ty_kueue_condition(wl, "QuotaReserved"),
                                              "lastTransitionTime")),
            0),
        .admission = e->reserved ? e->adm : NULL,
    };
    return e;
}

/* The flavor an admission gave a pod set's "pods", or NULL. */
static const char *pods_flavor(const json_t *wl, const char *ps_name)
{
    size_t i;
    json_t *psa;
    const json_t *adm = json_object_get(json_object_get(wl, "status"), "admission");
    json_array_foreach(json_object_get(adm, "podSetAssignments"), i, psa)
    {
        const char *n = json_string_value(json_object_get(psa, "name"));
        if (n && ps_name && strcmp(n, ps_name) == 0)
            return json_string_value(
                json_object_get(json_object_get(psa, "flavors"), "pods"));
    }
    return NULL;
}

/* Adds e to queue cq; with `pods` (cq covers "pods", Kueue's pod count) each pod set also
 * requests one "pods" per pod: a copy, as the cached entry is the same for every queue. An
 * admitted pod set whose admission names no flavor for it (admitted before the queue covered
 * pods) counts none. */
static void add_workload(ty_sched *s, wl_entry *e, const char *cq, bool pods)
{
    ty_error err = TY_ERROR_INIT;
    ty_sched_workload w = e->w;
    w.cluster_queue = cq;
    size_t np = w.n_pod_sets;
    ty_sched_pod_set *ps = NULL;
    ty_sched_pod_set_admission *adm = NULL;
    if (pods && e->ok) {
        ps = ty_calloc(np + 1, sizeof *ps);
        adm = ty_calloc(np + 1, sizeof *adm);
        for (size_t i = 0; i < np; i++) {
            ps[i] = e->ps[i];
            if (w.admission)
                adm[i] = w.admission[i];
            bool has = false;
            for (size_t k = 0; k < ps[i].n_requests; k++)
                has |= strcmp(ps[i].requests[k].resource, "pods") == 0;
            const char *flavor = w.admission ? pods_flavor(e->obj, ps[i].name) : NULL;
            if (has || (w.admission && !flavor))
                continue;
            size_t n = ps[i].n_requests;
            ty_sched_amount *am = ty_calloc(n + 1, sizeof *am);
            memcpy(am, ps[i].requests, n * sizeof *am);
            am[n] = (ty_sched_amount){"pods", 1000};
            ps[i].requests = am;
            ps[i].n_requests = n + 1;
            if (w.admission) {
                const char **fl = ty_calloc(n + 1, sizeof *fl);
                memcpy(fl, w.admission[i].flavors, n * sizeof *fl);
                fl[n] = flavor;
                adm[i].flavors = fl;
            }
        }
        w.pod_sets = ps;
        w.admission = w.admission ? adm : NULL;
    }
    if (!e->ok)
        ty_debug("admission: workload %s: its admission does not match its pod sets", e->key);
    else if (ty_sched_add_workload(s, &w, &err) < 0)
        ty_debug("admission: workload %s: %s", e->key, err.msg);
    ty_error_clear(&err);
    for (size_t i = 0; ps && i < np; i++) {
        if (ps[i].requests != e->ps[i].requests)
            free((void *)ps[i].requests);
        if (w.admission && adm[i].flavors != e->w.admission[i].flavors)
            free((void *)adm[i].flavors);
    }
    free(ps);
    free(adm);
}

/* Entries by "ns/name". An entry is current for the object it holds, and for any object with
 * its resourceVersion: the store gives every write a new one, a recreated object included. */
struct ty_kueue_cache {
    ty_map entries;
    uint64_t pass;
    size_t parsed; /* entries parsed in the last snapshot */
    /* The last snapshot's entries in its order. A store lists in one order (by namespace and
     * name) and mostly the same objects from one pass to the next, so walking this beside
     * the new list finds most entries by the object alone, with no key to build or look up:
     * an entry holds its object, so no other object can have its address meanwhile. */
    wl_entry **last;
    size_t n_last;
};

ty_kueue_cache *ty_kueue_cache_new(void)
{
    return TY_NEW(ty_kueue_cache);
}

void ty_kueue_cache_free(ty_kueue_cache *c)
{
    if (!c)
        return;
    const ty_map_slot *slot;
    for (size_t i = 0; ty_map_next(&c->entries, &i, &slot);)
        entry_free(slot->value);
    ty_map_free(&c->entries);
    free(c->last);
    free(c);
}

size_t ty_kueue_cache_parsed(const ty_kueue_cache *c)
{
    return c ? c->parsed : 0;
}

/* The entry of each workload, from the cache when its resourceVersion is the one parsed;
 * without a cache every entry is new (and freed by entries_done). */
static wl_entry **entries_of(const ty_kueue_objects *o, ty_kueue_cache *c)
{
    size_t n = json_array_size(o->workloads);
    wl_entry **out = ty_calloc(n + 1, sizeof *out);
    if (c) {
        c->pass++;
        c->parsed = 0;
    }
    size_t j = 0; /* where this list stands in the last one */
    /* Entries replaced here may still be in c->last, which this loop reads: freed after it. */
    wl_entry **retired = ty_calloc(n + 1, sizeof *retired);
    size_t n_retired = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *wl = json_array_get(o->workloads, i);
        if (c) {
            /* The same object as in the last list, at the same place or one further (the
             * one before it gone). */
            size_t k = j < c->n_last && c->last[j]->obj == wl           ? j
                       : j + 1 < c->n_last && c->last[j + 1]->obj == wl ? j + 1
                                                                        : SIZE_MAX;
            if (k != SIZE_MAX) {
                j = k + 1;
                c->last[k]->seen = c->pass;
                out[i] = c->last[k];
                continue;
            }
        }
        const char *rv = json_string_value(
            json_object_get(json_object_get(wl, "metadata"), "resourceVersion"));
        if (!c) {
            out[i] = entry_parse(wl);
            continue;
        }
        TY_AUTOFREE char *key = ty_asprintf("%s/%s", ty_obj_namespace(wl), ty_obj_name(wl));
        wl_entry *e = ty_map_gets(&c->entries, key);
        /* A changed object stands where its old one stood: step past that. */
        if (e && j < c->n_last && c->last[j] == e)
            j++;
        if (!e || !e->rv || !rv || strcmp(e->rv, rv) != 0) {
            if (e)
                retired[n_retired++] = e;
            e = entry_parse(wl);
            e->rv = rv ? ty_strdup(rv) : NULL;
            ty_map_puts(&c->entries, key, e);
            c->parsed++;
        }
        e->seen = c->pass;
        out[i] = e;
    }
    if (c) {
        free(c->last);
        c->last = ty_malloc((n + 1) * sizeof *out);
        memcpy(c->last, out, (n + 1) * sizeof *out);
        c->n_last = n;
        /* Entries of workloads gone from the store go too. */
        json_t *gone = json_array();
        const ty_map_slot *slot;
        for (size_t i = 0; ty_map_next(&c->entries, &i, &slot);)
            if (((wl_entry *)slot->value)->seen != c->pass)
                json_array_append_new(gone, json_string(slot->key));
        size_t i;
        json_t *k;
        json_array_foreach(gone, i, k) entry_free(ty_map_dels(&c->entries, json_string_value(k)));
        json_decref(gone);
    }
    for (size_t r = 0; r < n_retired; r++)
        entry_free(retired[r]);
    free(retired);
    return out;
}

static void entries_done(wl_entry **entries, size_t n, const ty_kueue_cache *c)
{
    for (size_t i = 0; !c && i < n; i++)
        entry_free(entries[i]);
    free(entries);
}

ty_sched *ty_kueue_snapshot(const ty_kueue_objects *o, bool fair_sharing, int64_t now_ms,
                            ty_kueue_route *routes, json_t *inactive, ty_kueue_cache *cache)
{
    ty_sched_config cfg = {.fair_sharing = fair_sharing, .now_ms = now_ms};
    ty_sched *s = ty_sched_new(&cfg);
    size_t n = json_array_size(o->workloads);
    wl_entry **entries = entries_of(o, cache);
    size_t i;
    json_t *x;
    json_array_foreach(o->flavors, i, x) add_flavor(s, x);
    add_nodes(s, o, entries);
    json_t *pods = json_object(); /* names of the queues that cover "pods" */
    json_array_foreach(o->cluster_queues, i, x)
    {
        add_cluster_queue(s, x, o, inactive);
        if (ty_kueue_covers_pods(o->cluster_queues, ty_obj_name(x)))
            json_object_set_new(pods, ty_obj_name(x), json_true());
    }
    /* Workloads of one LocalQueue share their route: worked out once per pass. */
    json_t *by_queue = json_object(); /* "ns/queue" -> index of the first workload routed */
    for (i = 0; i < n; i++) {
        wl_entry *e = entries[i];
        if (e->finished || e->deleting)
            continue;
        if (e->reserved) {
            if (e->admission_cq && !json_object_get(inactive, e->admission_cq))
                add_workload(s, e, e->admission_cq,
                             json_object_get(pods, e->admission_cq) != NULL);
            continue;
        }
        if (e->inactive)
            continue;
        const json_t *first = json_object_get(by_queue, e->queue_key);
        if (first && e->queue_name) {
            const ty_kueue_route *r = &routes[json_integer_value(first)];
            routes[i].cluster_queue = r->cluster_queue;
            routes[i].problem = r->problem ? ty_strdup(r->problem) : NULL;
        } else {
            routes[i] = route_of(e->obj, o, s, inactive);
            json_object_set_new(by_queue, e->queue_key, json_integer((json_int_t)i));
        }
        if (routes[i].cluster_queue)
            add_workload(s, e, routes[i].cluster_queue,
                         json_object_get(pods, routes[i].cluster_queue) != NULL);
    }
    json_decref(by_queue);
    json_decref(pods);
    entries_done(entries, n, cache);
    return s;
}

ty_sched *ty_admission_queue_snapshot(const json_t *flavors, const json_t *cluster_queues,
                                      const json_t *quota_used, bool fair_sharing,
                                      int64_t now_ms, json_t *inactive)
{
    json_t *none = json_array();
    ty_kueue_objects o = {.flavors = (json_t *)flavors,
                          .cluster_queues = (json_t *)cluster_queues,
                          .local_queues = none, .workloads = none, .nodes = none,
                          .pods = none, .namespaces = none, .admission_checks = none,
                          .quota_used = quota_used};
    ty_sched *s = ty_kueue_snapshot(&o, fair_sharing, now_ms, NULL, inactive, NULL);
    json_decref(none);
    return s;
}
