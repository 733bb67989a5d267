/* Helpers shared by the Kueue controllers: conditions, names, requests, listing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/kinds.h"
#include "base/hash.h"
#include "base/mem.h"
#include "base/quantity.h"
#include "base/time.h"
#include "controllers/placement.h"
#include "controllers/controllers_int.h"
#include "controllers/podutil.h"

const json_t *ty_kueue_condition(const json_t *obj, const char *type)
{
    /* The lookup is the same for any object's status.conditions. */
    return ty_pod_condition(obj, type);
}

bool ty_kueue_condition_is(const json_t *obj, const char *type, const char *status)
{
    const char *s = json_string_value(json_object_get(ty_kueue_condition(obj, type), "status"));
    return s && strcmp(s, status) == 0;
}

static bool set_string(json_t *obj, const char *key, const char *value)
{
    const char *cur = json_string_value(json_object_get(obj, key));
    if (cur && strcmp(cur, value) == 0)
        return false;
    json_object_set_new(obj, key, json_string(value));
    return true;
}

bool ty_kueue_set_condition(json_t *obj, const char *type, const char *status,
                            const char *reason, const char *message, int64_t now_ns)
{
    json_t *st = json_object_get(obj, "status");
    if (!json_is_object(st)) {
        st = json_object();
        json_object_set_new(obj, "status", st);
    }
    json_t *conds = json_object_get(st, "conditions");
    if (!json_is_array(conds)) {
        conds = json_array();
        json_object_set_new(st, "conditions", conds);
    }
    json_t *c = (json_t *)ty_kueue_condition(obj, type);
    bool changed = false;
    if (!c) {
        c = json_object();
        json_object_set_new(c, "type", json_string(type));
        json_array_append_new(conds, c);
        changed = true;
    }
    char ts[40];
    ty_time_format_rfc3339(now_ns, ts, sizeof ts, 0);
    if (set_string(c, "status", status)) {
        json_object_set_new(c, "lastTransitionTime", json_string(ts));
        changed = true;
    }
    changed |= set_string(c, "reason", reason ? reason : "");
    changed |= set_string(c, "message", message ? message : "");
    json_t *gen = json_object_get(json_object_get(obj, "metadata"), "generation");
    if (json_is_integer(gen) && !json_equal(json_object_get(c, "observedGeneration"), gen)) {
        json_object_set(c, "observedGeneration", gen);
        changed = true;
    }
    return changed;
}

const char *ty_kueue_job_resource(const char *kind)
{
    for (const ty_kind_info *const *k = ty_kinds(); kind && *k; k++)
        if ((*k)->kueue_job && strcmp((*k)->kind, kind) == 0)
            return (*k)->resource;
    return NULL;
}

bool ty_kueue_workload_job(const json_t *wl, const char **resource, const char **name,
                           const char **uid)
{
    size_t i;
    json_t *ref;
    json_array_foreach(json_object_get(json_object_get(wl, "metadata"), "ownerReferences"), i, ref)
    {
        if (!json_is_true(json_object_get(ref, "controller")))
            continue;
        const char *r = ty_kueue_job_resource(json_string_value(json_object_get(ref, "kind")));
        const char *n = json_string_value(json_object_get(ref, "name"));
        if (!r || !n)
            continue;
        *resource = r;
        *name = n;
        *uid = json_string_value(json_object_get(ref, "uid"));
        return true;
    }
    return false;
}

char *ty_kueue_workload_name(const char *kind, const char *job_name, const char *job_uid)
{
    /* FNV-1a over name and uid: stable across restarts, different for a job recreated under
     * the same name, so an old Workload is never mistaken for the new job's. The basis is the
     * one the first release used, a digit short of FNV's: the names are stored, so it stays
     * (tests/unit/test_hash.c pins them). */
    uint64_t h = ty_fnv1a_str(ty_fnv1a_str(1469598103934665603ull, job_name), job_uid);
    char lower[64];
    size_t n = 0;
    for (; kind[n] && n < sizeof lower - 1; n++)
        lower[n] = (char)(kind[n] >= 'A' && kind[n] <= 'Z' ? kind[n] + 32 : kind[n]);
    lower[n] = '\0';
    /* Names stay within the 253 characters of a DNS subdomain. */
    return ty_asprintf("%s-%.*s-%05llx", lower, (int)(253 - 7 - n - 1), job_name,
                       (unsigned long long)(h & 0xfffff));
}

static int compare_keys(const void *x, const void *y)
{
    return strcmp(*(const char *const *)x, *(const char *const *)y);
}

json_t *ty_kueue_pod_requests(const json_t *pod_spec)
{
    json_t *all = ty_placement_requests(pod_spec);
    /* Sorted, without zeros: pod sets list the resources they use, in one order everywhere. */
    const char **keys = ty_malloc((json_object_size(all) + 1) * sizeof *keys);
    size_t n = 0;
    const char *k;
    json_t *v;
    json_object_foreach(all, k, v) if (json_integer_value(v) > 0) keys[n++] = k;
    qsort(keys, n, sizeof *keys, compare_keys);
    json_t *sorted = json_object();
    for (size_t i = 0; i < n; i++)
        json_object_set(sorted, keys[i], json_object_get(all, keys[i]));
    free(keys);
    json_decref(all);
    return sorted;
}

int64_t ty_kueue_time_ms(const char *rfc3339, int64_t fallback)
{
    int64_t ns;
    if (!rfc3339 || ty_time_parse_rfc3339(rfc3339, &ns) < 0)
        return fallback;
    return ns / 1000000;
}

/* The part of a pod the snapshot reads (kueue_snapshot.c, add_nodes): the pods that hold a
 * node's resources (bound, not ended), each with its namespace, its job's labels and owner
 * references, its node and its containers' resources. Parsed one at a time from the stored text and only that kept: a
 * list of every pod would hold all their trees at once, about ten times their text (tens of MB
 * for a cluster's thousands of pods in cluster mode, on every pass). */
static json_t *pods_holding_nodes(ty_store *s)
{
    static const char *const labels[] = {"training.kubeflow.org/job-name",
                                         "training.kubeflow.org/operator-name"};
    json_t *out = json_array();
    ty_store_item *items = NULL;
    size_t n = ty_store_list_items(s, "pods", NULL, &items);
    for (size_t i = 0; i < n; i++) {
        json_t *pod = json_loadb(items[i].text, items[i].len, 0, NULL);
        json_t *spec = json_object_get(pod, "spec");
        if (!pod || !json_object_get(spec, "nodeName") || ty_pod_terminated(pod)) {
            json_decref(pod);
            continue;
        }
        json_t *meta = json_object_get(pod, "metadata");
        json_t *slim_labels = json_object();
        for (size_t k = 0; k < 2; k++) {
            json_t *v = json_object_get(json_object_get(meta, "labels"), labels[k]);
            if (v)
                json_object_set(slim_labels, labels[k], v);
        }
        json_t *slim_spec = json_pack("{s:O}", "nodeName", json_object_get(spec, "nodeName"));
        if (json_object_get(spec, "overhead"))
            json_object_set(slim_spec, "overhead", json_object_get(spec, "overhead"));
        static const char *const lists[] = {"containers", "initContainers"};
        for (size_t k = 0; k < 2; k++) {
            json_t *cs = json_array();
            size_t j;
            json_t *c;
            json_array_foreach(json_object_get(spec, lists[k]), j, c)
                json_array_append_new(cs, json_pack("{s:O?, s:O?}", "resources",
                                                    json_object_get(c, "resources"),
                                                    "restartPolicy",
                                                    json_object_get(c, "restartPolicy")));
            json_object_set_new(slim_spec, lists[k], cs);
        }
        /* ownerReferences: the snapshot finds a pod's job by its controller (batch Jobs
         * carry no Kubeflow labels) */
        json_t *slim_meta = json_pack("{s:O?, s:O?, s:o}", "namespace",
                                      json_object_get(meta, "namespace"), "name",
                                      json_object_get(meta, "name"), "labels", slim_labels);
        if (json_object_get(meta, "ownerReferences"))
            json_object_set(slim_meta, "ownerReferences", json_object_get(meta, "ownerReferences"));
        json_array_append_new(
            out, json_pack("{s:o, s:o, s:{s:O?}}", "metadata", slim_meta, "spec", slim_spec,
                           "status", "phase",
                           json_object_get(json_object_get(pod, "status"), "phase")));
        json_decref(pod);
    }
    free(items);
    return out;
}

void ty_kueue_objects_load(ty_store *s, ty_kueue_objects *o, json_t *workloads)
{
    o->quota_used = NULL;
    o->flavors = ty_store_list(s, "resourceflavors", NULL);
    o->cluster_queues = ty_store_list(s, "clusterqueues", NULL);
    o->local_queues = ty_store_list(s, "localqueues", NULL);
    o->workloads = workloads ? workloads : ty_store_list(s, "workloads", NULL);
    o->nodes = ty_store_list(s, "nodes", NULL);
    o->pods = pods_holding_nodes(s);
    o->namespaces = ty_store_list(s, "namespaces", NULL);
    o->admission_checks = ty_store_list(s, "admissionchecks", NULL);
}

void ty_kueue_objects_free(ty_kueue_objects *o)
{
    json_decref(o->flavors);
    json_decref(o->cluster_queues);
    json_decref(o->local_queues);
    json_decref(o->workloads);
    json_decref(o->nodes);
    json_decref(o->pods);
    json_decref(o->namespaces);
    json_decref(o->admission_checks);
    memset(o, 0, sizeof *o);
}

bool ty_kueue_workload_finished(const json_t *wl)
{
    return ty_kueue_condition_is(wl, "Finished", "True");
}

bool ty_kueue_workload_reserved(const json_t *wl)
{
    return ty_kueue_condition_is(wl, "QuotaReserved", "True") &&
           json_is_object(json_object_get(json_object_get(wl, "status"), "admission"));
}

void ty_kueue_inactive_add(json_t *inactive, const char *cq, const char *reason,
                           const char *message)
{
    json_t *e = json_object_get(inactive, cq);
    if (!e) {
        json_object_set_new(inactive, cq,
                            json_pack("{s:s,s:s}", "reason", reason, "message", message));
        return;
    }
    const char *was = json_string_value(json_object_get(e, "message"));
    json_object_set_new(e, "message", json_sprintf("%s, %s", was ? was : "", message));
}

bool ty_kueue_covers_pods(const json_t *cluster_queues, const char *name)
{
    size_t i, g, k;
    json_t *cq, *grp, *r;
    json_array_foreach(cluster_queues, i, cq)
    {
        if (!name || strcmp(ty_obj_name(cq), name) != 0)
            continue;
        json_array_foreach(json_object_get(json_object_get(cq, "spec"), "resourceGroups"), g,
                           grp) json_array_foreach(json_object_get(grp, "coveredResources"), k,
                                                   r) if (json_is_string(r) &&
                                                          strcmp(json_string_value(r),
                                                                 "pods") == 0) return true;
    }
    return false;
}

static bool admission_uses(const json_t *admission, const char *flavor)
{
    size_t i;
    json_t *psa;
    json_array_foreach(json_object_get(admission, "podSetAssignments"), i, psa)
    {
        const char *r;
        json_t *f;
        json_object_foreach(json_object_get(psa, "flavors"), r, f) if (
            json_is_string(f) && strcmp(json_string_value(f), flavor) == 0) return true;
    }
    return false;
}

static void add_name(json_t *names, const char *name)
{
    size_t i;
    json_t *n;
    json_array_foreach(names, i, n) if (strcmp(json_string_value(n), name) == 0) return;
    json_array_append_new(names, json_string(name));
}

static int compare_json_strings(const void *x, const void *y)
{
    return strcmp(json_string_value(*(json_t *const *)x), json_string_value(*(json_t *const *)y));
}

json_t *ty_kueue_checks_for(const json_t *cq, const json_t *admission)
{
    const json_t *spec = json_object_get(cq, "spec");
    json_t *names = json_array();
    size_t i, j;
    json_t *n, *rule, *f;
    json_array_foreach(json_object_get(spec, "admissionChecks"), i, n) if (json_is_string(n))
        add_name(names, json_string_value(n));
    json_array_foreach(
        json_object_get(json_object_get(spec, "admissionChecksStrategy"), "admissionChecks"), i,
        rule)
    {
        const char *name = json_string_value(json_object_get(rule, "name"));
        const json_t *on = json_object_get(rule, "onFlavors");
        bool applies = !admission || json_array_size(on) == 0;
        json_array_foreach(on, j, f) applies |=
            admission && json_is_string(f) && admission_uses(admission, json_string_value(f));
        if (name && applies)
            add_name(names, name);
    }
    size_t count = json_array_size(names);
    json_t **v = ty_calloc(count + 1, sizeof *v);
    for (i = 0; i < count; i++)
        v[i] = json_incref(json_array_get(names, i));
    qsort(v, count, sizeof *v, compare_json_strings);
    json_t *out = json_array();
    for (i = 0; i < count; i++)
        json_array_append_new(out, v[i]);
    free(v);
    json_decref(names);
    return out;
}
