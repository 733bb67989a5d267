/* The registry of kinds (api/kinds.h): every consumer trusts these invariants. */
#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "api/kinds.h"
#include "api/patch.h"
#include "base/buf.h"

Test(kinds, names_are_unique_and_complete)
{
    const ty_kind_info *const *k = ty_kinds();
    size_t n = 0;
    for (; k[n]; n++) {
        const ty_kind_info *a = k[n];
        cr_assert(a->version && *a->version && a->kind && *a->kind, "entry %zu", n);
        cr_assert(a->resource && *a->resource && a->singular && a->short_names && a->group,
                  "%s", a->kind);
        /* The store keys objects by plural alone, so no two groups may share one. */
        cr_assert_eq(ty_kind_of_resource(a->resource), a, "%s", a->resource);
        for (size_t j = 0; j < n; j++) {
            cr_assert(strcmp(k[j]->resource, a->resource) != 0, "%s twice", a->resource);
            cr_assert(strcmp(k[j]->kind, a->kind) != 0 || strcmp(k[j]->group, a->group) != 0,
                      "%s twice", a->kind);
        }
    }
    cr_assert_geq(n, 16);
    cr_assert_null(ty_kind_of_resource("widgets"));
    cr_assert_null(ty_kind_of_resource(NULL));
}

Test(kinds, core_group_comes_first)
{
    /* Discovery and /openapi/v3 list "v1" first. */
    const ty_kind_info *const *k = ty_kinds();
    cr_assert_str_eq(k[0]->group, "");
    cr_assert_str_eq(k[0]->resource, "namespaces");
}

Test(kinds, every_kind_has_a_schema_or_a_description)
{
    for (const ty_kind_info *const *k = ty_kinds(); *k; k++) {
        if ((*k)->ops) {
            const json_t *s = ty_api_schema(*k);
            cr_assert_not_null(s, "%s", (*k)->kind);
            char av[128];
            snprintf(av, sizeof av, "%s%s%s", (*k)->group, *(*k)->group ? "/" : "",
                     (*k)->version);
            cr_assert_eq(ty_api_kind(av, (*k)->kind), *k, "%s", av);
        } else {
            cr_assert((*k)->description && *(*k)->description, "%s", (*k)->kind);
            cr_assert_null(ty_api_schema(*k));
            /* Kinds without a schema are Kubernetes' built-in ones the API server checks itself:
             * the core group's, discovery.k8s.io's EndpointSlice, RBAC's (auth/rbac.h), the
             * reviews and coordination.k8s.io's Lease. */
            static const char *const groups[] = {"", "discovery.k8s.io",
                                                 "rbac.authorization.k8s.io",
                                                 "authorization.k8s.io", "authentication.k8s.io",
                                                 "coordination.k8s.io"};
            bool known = false;
            for (size_t g = 0; g < sizeof groups / sizeof *groups; g++)
                known = known || strcmp((*k)->group, groups[g]) == 0;
            cr_assert(known, "%s", (*k)->kind);
            cr_assert((*k)->builtin, "%s", (*k)->kind);
        }
    }
}

Test(kinds, core_kinds_carry_their_discovery_attributes)
{
    const ty_kind_info *pod = ty_kind_of_resource("pods");
    cr_assert(pod->namespaced && pod->has_status && pod->has_log && pod->in_all);
    cr_assert_str_eq(pod->short_names, "po");
    cr_assert_null(pod->ops);
    const ty_kind_info *ev = ty_kind_of_resource("events");
    cr_assert(ev->namespaced && !ev->has_status && !ev->has_log && !ev->in_all);
    const ty_kind_info *ns = ty_kind_of_resource("namespaces");
    cr_assert(!ns->namespaced && ns->has_status);
    const ty_kind_info *pvc = ty_kind_of_resource("persistentvolumeclaims");
    cr_assert(pvc->namespaced && pvc->builtin && pvc->ops);
    cr_assert_eq(ty_api_kind("v1", "PersistentVolumeClaim"), pvc);
    cr_assert_null(ty_api_kind("v1", "Pod")); /* not admitted by ty_api_admit */
}

Test(kinds, merge_keys_come_from_the_registry)
{
    cr_assert_str_eq(ty_patch_list_key("pods", "spec.containers"), "name");
    cr_assert_str_eq(ty_patch_list_key("pods", "spec.initContainers.env"), "name");
    cr_assert_str_eq(ty_patch_list_key("services", "spec.ports"), "port");
    cr_assert_str_eq(ty_patch_list_key("nodes", "spec.podCIDRs"), "");
    cr_assert_str_eq(ty_patch_list_key("workloads", "spec.podSets"), "name");
    /* metadata's lists merge for every kind, custom or not */
    cr_assert_str_eq(ty_patch_list_key("pytorchjobs", "metadata.finalizers"), "");
    cr_assert_str_eq(ty_patch_list_key("widgets", "metadata.ownerReferences"), "uid");
    cr_assert_null(ty_patch_list_key("services", "spec.containers"));
    cr_assert_null(ty_patch_list_key("widgets", "spec.ports"));
    /* strategic merge: the registry's built-in kinds only */
    json_t *t = json_object(), *p = json_object(), *out = NULL;
    ty_error err = TY_ERROR_INIT;
    for (const ty_kind_info *const *k = ty_kinds(); *k; k++) {
        int rc = ty_patch_strategic((*k)->resource, t, p, &out, &err);
        cr_assert_eq(rc, (*k)->builtin ? 0 : -1, "%s", (*k)->resource);
        if (rc < 0)
            cr_assert_eq(err.code, 415, "%s", (*k)->resource);
        json_decref(out);
        out = NULL;
        ty_error_clear(&err);
    }
    json_decref(t);
    json_decref(p);
}

Test(kinds, admission_watches_what_its_pass_reads)
{
    /* Kueue's objects and the pods, nodes and namespaces the snapshot reads; nothing else
     * (a job's change reaches it through its Workload). */
    TY_AUTOBUF ty_buf b = TY_BUF_INIT;
    for (const ty_kind_info *const *k = ty_kinds(); *k; k++)
        if ((*k)->watched_by & TY_WATCHED_BY_ADMISSION)
            ty_buf_addf(&b, "%s ", (*k)->resource);
    cr_assert_str_eq(b.data, "namespaces nodes pods resourceflavors admissionchecks "
                             "clusterqueues localqueues workloads ");
}

Test(kinds, lookup_by_api_version_and_kind)
{
    cr_assert_eq(ty_kind_of("v1", "Pod"), ty_kind_of_resource("pods"));
    cr_assert_eq(ty_kind_of("kueue.x-k8s.io/v1beta1", "ClusterQueue"),
                 ty_kind_of_resource("clusterqueues"));
    cr_assert_null(ty_kind_of("v1", "ClusterQueue"));
    cr_assert_null(ty_kind_of("kueue.x-k8s.io/v1", "ClusterQueue"));
    cr_assert_null(ty_kind_of("kueue.x-k8s.io", "ClusterQueue"));
    cr_assert_null(ty_kind_of("v1", "pod"));
    cr_assert_null(ty_kind_of(NULL, "Pod"));
}

static void assert_watched_by(unsigned flag, const char *want)
{
    TY_AUTOBUF ty_buf b = TY_BUF_INIT;
    for (const ty_kind_info *const *k = ty_kinds(); *k; k++)
        if ((*k)->watched_by & flag)
            ty_buf_addf(&b, "%s ", (*k)->resource);
    cr_assert_str_eq(b.data, want);
}

/* The job controller and Kueue's job side watch what the registry says: the training jobs
 * (the kinds with an operator), their pods, and for Kueue the Workloads; a pod's operator
 * label leads back to its job's kind. */
Test(kinds, job_kinds_and_their_controllers_watch_lists)
{
    assert_watched_by(TY_WATCHED_BY_JOBS, "pods pytorchjobs tfjobs ");
    assert_watched_by(TY_WATCHED_BY_WORKLOADS, "pods pytorchjobs tfjobs jobs workloads ");
    assert_watched_by(TY_WATCHED_BY_BATCH, "pods jobs ");
    /* Kueue queues the training jobs and batch/v1 Job, and only those */
    TY_AUTOBUF ty_buf queued = TY_BUF_INIT;
    for (const ty_kind_info *const *k = ty_kinds(); *k; k++)
        if ((*k)->kueue_job)
            ty_buf_addf(&queued, "%s ", (*k)->resource);
    cr_assert_str_eq(queued.data, "pytorchjobs tfjobs jobs ");
    cr_assert_eq(ty_kind_of_job_operator("pytorchjob-controller"),
                 ty_kind_of_resource("pytorchjobs"));
    cr_assert_eq(ty_kind_of_job_operator("tfjob-controller"), ty_kind_of_resource("tfjobs"));
    cr_assert_null(ty_kind_of_job_operator("mpijob-controller"));
    cr_assert_null(ty_kind_of_job_operator(NULL));
    for (const ty_kind_info *const *k = ty_kinds(); *k; k++)
        if ((*k)->job_operator)
            cr_assert((*k)->watched_by & TY_WATCHED_BY_JOBS, "%s", (*k)->kind);
}
