/* The registry of kinds (kinds.h): one entry per kind, every attribute in it. */
#include "api/kinds.h"

#include <string.h>

#include "api/schema_internal.h"
#include "base/mem.h"

/* The core kinds without a schema of ours: how /openapi/v3 describes them. */
static const ty_kind_info namespace_kind = {
    .group = "", .version = "v1", .kind = "Namespace", .resource = "namespaces",
    .singular = "namespace", .short_names = "ns", .namespaced = false, .has_status = true,
    .builtin = true, .description = "Namespace is a scope for names of namespaced objects.",
};
static const ty_kind_info node_kind = {
    .group = "", .version = "v1", .kind = "Node", .resource = "nodes", .singular = "node",
    .short_names = "no", .namespaced = false, .has_status = true, .builtin = true,
    .description = "Node is a machine (or a declared virtual node) that runs pods.",
};
static const ty_kind_info pod_kind = {
    .group = "", .version = "v1", .kind = "Pod", .resource = "pods", .singular = "pod",
    .short_names = "po", .namespaced = true, .has_status = true, .has_log = true,
    .in_all = true, .builtin = true,
    .description = "Pod is a group of containers run together on a node; trainyard runs one "
                   "as a process group.",
};
static const ty_kind_info service_kind = {
    .group = "", .version = "v1", .kind = "Service", .resource = "services",
    .singular = "service", .short_names = "svc", .namespaced = true, .has_status = true,
    .in_all = true, .builtin = true,
    .description = "Service names a set of pods (by label selector) and the ports they serve.",
};
static const ty_kind_info event_kind = {
    .group = "", .version = "v1", .kind = "Event", .resource = "events", .singular = "event",
    .short_names = "ev", .namespaced = true, .has_status = false, .builtin = true,
    .description = "Event is a report of something that happened to an object.",
};

/* Neither CRD declares short names (kubeflow/training-operator manifests). */
static const ty_kind_info pytorchjob_kind = {
    .group = "kubeflow.org", .version = "v1", .kind = "PyTorchJob",
    .resource = "pytorchjobs", .singular = "pytorchjob", .short_names = "", .namespaced = true,
    .has_status = true, .in_all = true, .ops = &ty_kubeflow_pytorchjob_ops,
};
static const ty_kind_info tfjob_kind = {
    .group = "kubeflow.org", .version = "v1", .kind = "TFJob",
    .resource = "tfjobs", .singular = "tfjob", .short_names = "", .namespaced = true,
    .has_status = true, .in_all = true, .ops = &ty_kubeflow_tfjob_ops,
};

/* As Kueue's CRDs declare them: ResourceFlavor and WorkloadPriorityClass have no status (and
 * no status subresource); no Kueue kind is in the "all" category. */
static const ty_kind_info flavor_kind = {
    .group = "kueue.x-k8s.io", .version = "v1beta1", .kind = "ResourceFlavor",
    .resource = "resourceflavors", .singular = "resourceflavor",
    .short_names = "flavor,flavors,rf", .namespaced = false, .has_status = false,
    .ops = &ty_kueue_resourceflavor_ops,
};
static const ty_kind_info ac_kind = {
    .group = "kueue.x-k8s.io", .version = "v1beta1", .kind = "AdmissionCheck",
    .resource = "admissionchecks", .singular = "admissioncheck", .short_names = "",
    .namespaced = false, .has_status = true, .ops = &ty_kueue_admissioncheck_ops,
};
static const ty_kind_info cq_kind = {
    .group = "kueue.x-k8s.io", .version = "v1beta1", .kind = "ClusterQueue",
    .resource = "clusterqueues", .singular = "clusterqueue", .short_names = "cq",
    .namespaced = false, .has_status = true, .ops = &ty_kueue_clusterqueue_ops,
};
static const ty_kind_info lq_kind = {
    .group = "kueue.x-k8s.io", .version = "v1beta1", .kind = "LocalQueue",
    .resource = "localqueues", .singular = "localqueue", .short_names = "queue,queues,lq",
    .namespaced = true, .has_status = true, .ops = &ty_kueue_localqueue_ops,
};
static const ty_kind_info wl_kind = {
    .group = "kueue.x-k8s.io", .version = "v1beta1", .kind = "Workload",
    .resource = "workloads", .singular = "workload", .short_names = "wl",
    .namespaced = true, .has_status = true, .ops = &ty_kueue_workload_ops,
};
static const ty_kind_info wpc_kind = {
    .group = "kueue.x-k8s.io", .version = "v1beta1", .kind = "WorkloadPriorityClass",
    .resource = "workloadpriorityclasses", .singular = "workloadpriorityclass",
    .short_names = "", .namespaced = false, .has_status = false,
    .ops = &ty_kueue_workloadpriorityclass_ops,
};
static const ty_kind_info pc_kind = {
    .group = "scheduling.k8s.io", .version = "v1", .kind = "PriorityClass",
    .resource = "priorityclasses", .singular = "priorityclass", .short_names = "pc",
    .namespaced = false, .has_status = false, .builtin = true,
    .ops = &ty_scheduling_priorityclass_ops,
};

/* Core kinds with a schema of ours (api/storage.c). */
static const ty_kind_info pv_kind = {
    .group = "", .version = "v1", .kind = "PersistentVolume", .resource = "persistentvolumes",
    .singular = "persistentvolume", .short_names = "pv", .namespaced = false,
    .has_status = true, .builtin = true, .ops = &ty_core_persistentvolume_ops,
};
static const ty_kind_info pvc_kind = {
    .group = "", .version = "v1", .kind = "PersistentVolumeClaim",
    .resource = "persistentvolumeclaims", .singular = "persistentvolumeclaim",
    .short_names = "pvc", .namespaced = true, .has_status = true, .builtin = true,
    .ops = &ty_core_persistentvolumeclaim_ops,
};

/* The order discovery lists them in. */
static const ty_kind_info *const kinds[] = {
    &namespace_kind, &node_kind, &pod_kind, &service_kind, &event_kind,
    &pytorchjob_kind, &tfjob_kind,
    &flavor_kind, &ac_kind, &cq_kind, &lq_kind, &wl_kind, &wpc_kind,
    &pc_kind,
    &pv_kind, &pvc_kind,
    NULL,
};

const ty_kind_info *const *ty_kinds(void)
{
    return kinds;
}

const ty_kind_info *ty_kind_of_resource(const char *resource)
{
    for (size_t i = 0; resource && kinds[i]; i++)
        if (strcmp(kinds[i]->resource, resource) == 0)
            return kinds[i];
    return NULL;
}
