/* The registry of kinds (kinds.h): one entry per kind, every attribute in it. */
#include "api/kinds.h"

#include <string.h>

#include "api/api_int.h"
#include "api/batch.h"
#include "base/mem.h"

/* The patch metadata (patchMergeKey) of the core kinds' lists, as Kubernetes' types declare
 * it. */
static const ty_merge_key pod_merge_keys[] = {
    {"spec.*containers", "name"},
    {"spec.*containers.env", "name"},
    {"spec.*containers.ports", "containerPort"},
    {"spec.*containers.volumeMounts", "mountPath"},
    {"spec.*containers.volumeDevices", "devicePath"},
    {"spec.*containers.resizePolicy", "resourceName"},
    {"spec.volumes", "name"},
    {"spec.imagePullSecrets", "name"},
    {"spec.hostAliases", "ip"},
    {"spec.topologySpreadConstraints", "topologyKey"},
    {"spec.schedulingGates", "name"},
    {"spec.resourceClaims", "name"},
    {"status.conditions", "type"},
    {"status.podIPs", "ip"},
    {"status.hostIPs", "ip"},
    {NULL, NULL},
};
static const ty_merge_key service_merge_keys[] = {{"spec.ports", "port"}, {NULL, NULL}};
static const ty_merge_key node_merge_keys[] = {
    {"spec.podCIDRs", ""},
    {"status.conditions", "type"},
    {"status.addresses", "type"},
    {NULL, NULL},
};
static const ty_merge_key namespace_merge_keys[] = {{"status.conditions", "type"}, {NULL, NULL}};
/* Kueue's Workload declares its pod sets a map list keyed by name (server-side apply). */
static const ty_merge_key workload_merge_keys[] = {{"spec.podSets", "name"}, {NULL, NULL}};

/* The core kinds without a schema of ours: how /openapi/v3 describes them. */
static const ty_kind_info namespace_kind = {
    .group = "", .version = "v1", .kind = "Namespace", .resource = "namespaces",
    .singular = "namespace", .short_names = "ns", .namespaced = false, .has_status = true,
    .builtin = true, .description = "Namespace is a scope for names of namespaced objects.",
    .merge_keys = namespace_merge_keys,
    .watched_by = TY_WATCHED_BY_ADMISSION,
    .table = &ty_table_namespaces,
    .create_defaults = ty_core_namespace_defaults,
};
static const ty_kind_info node_kind = {
    .group = "", .version = "v1", .kind = "Node", .resource = "nodes", .singular = "node",
    .short_names = "no", .namespaced = false, .has_status = true, .builtin = true,
    .description = "Node is a machine (or a declared virtual node) that runs pods.",
    .merge_keys = node_merge_keys,
    .watched_by = TY_WATCHED_BY_ADMISSION,
    .table = &ty_table_nodes,
};
static const ty_kind_info pod_kind = {
    .group = "", .version = "v1", .kind = "Pod", .resource = "pods", .singular = "pod",
    .short_names = "po", .namespaced = true, .has_status = true, .has_log = true,
    .in_all = true, .builtin = true,
    .description = "Pod is a group of containers run together on a node; trainyard runs one "
                   "as a process group.",
    .merge_keys = pod_merge_keys,
    .watched_by = TY_WATCHED_BY_ADMISSION | TY_WATCHED_BY_JOBS | TY_WATCHED_BY_WORKLOADS |
                  TY_WATCHED_BY_BATCH | TY_WATCHED_BY_SERVING,
    .table = &ty_table_pods,
    .create_defaults = ty_core_pod_defaults,
};
static const ty_kind_info service_kind = {
    .group = "", .version = "v1", .kind = "Service", .resource = "services",
    .singular = "service", .short_names = "svc", .namespaced = true, .has_status = true,
    .in_all = true, .builtin = true,
    .description = "Service names a set of pods (by label selector) and the ports they serve.",
    .merge_keys = service_merge_keys,
    .table = &ty_table_services,
    .create_defaults = ty_core_service_defaults,
};
/* Written by the API server for Service default/kubernetes (server/kubesvc.c) and by users for
 * Services without a selector; trainyard's proxy and DNS find pods' endpoints themselves
 * (net/endpoints.h), so nothing else writes them. */
static const ty_kind_info endpoints_kind = {
    .group = "", .version = "v1", .kind = "Endpoints", .resource = "endpoints",
    .singular = "endpoints", .short_names = "ep", .namespaced = true, .builtin = true,
    .description = "Endpoints is a collection of endpoints that implement the actual service.",
    .table = &ty_table_endpoints,
};
static const ty_kind_info endpointslice_kind = {
    .group = "discovery.k8s.io", .version = "v1", .kind = "EndpointSlice",
    .resource = "endpointslices", .singular = "endpointslice", .short_names = "",
    .namespaced = true, .builtin = true,
    .description = "EndpointSlice represents a subset of the endpoints that implement a "
                   "service.",
    .table = &ty_table_endpointslices,
};
static const ty_kind_info event_kind = {
    .group = "", .version = "v1", .kind = "Event", .resource = "events", .singular = "event",
    .short_names = "ev", .namespaced = true, .has_status = false, .builtin = true,
    .description = "Event is a report of something that happened to an object.",
    .table = &ty_table_events,
};

/* Neither CRD declares short names (kubeflow/training-operator manifests). */
static const ty_kind_info pytorchjob_kind = {
    .group = "kubeflow.org", .version = "v1", .kind = "PyTorchJob",
    .resource = "pytorchjobs", .singular = "pytorchjob", .short_names = "", .namespaced = true,
    .has_status = true, .in_all = true, .ops = &ty_kubeflow_pytorchjob_ops,
    .table = &ty_table_jobs,
    .watched_by = TY_WATCHED_BY_JOBS | TY_WATCHED_BY_WORKLOADS | TY_WATCHED_BY_EXPERIMENTS,
    .job_operator = "pytorchjob-controller", .kueue_job = true,
};
static const ty_kind_info tfjob_kind = {
    .group = "kubeflow.org", .version = "v1", .kind = "TFJob",
    .resource = "tfjobs", .singular = "tfjob", .short_names = "", .namespaced = true,
    .has_status = true, .in_all = true, .ops = &ty_kubeflow_tfjob_ops,
    .table = &ty_table_jobs,
    .watched_by = TY_WATCHED_BY_JOBS | TY_WATCHED_BY_WORKLOADS | TY_WATCHED_BY_EXPERIMENTS,
    .job_operator = "tfjob-controller", .kueue_job = true,
};

/* Katib's kinds (kubeflow.org/v1beta1, beside the training jobs' v1; controllers/experiment).
 * None is in the "all" category: Katib's CRDs declare none. */
static const ty_kind_info experiment_kind = {
    .group = "kubeflow.org", .version = "v1beta1", .kind = "Experiment",
    .resource = "experiments", .singular = "experiment", .short_names = "", .namespaced = true,
    .has_status = true, .ops = &ty_katib_experiment_ops, .table = &ty_table_experiments,
    .watched_by = TY_WATCHED_BY_EXPERIMENTS,
};
static const ty_kind_info trial_kind = {
    .group = "kubeflow.org", .version = "v1beta1", .kind = "Trial",
    .resource = "trials", .singular = "trial", .short_names = "", .namespaced = true,
    .has_status = true, .ops = &ty_katib_trial_ops, .table = &ty_table_trials,
    .watched_by = TY_WATCHED_BY_EXPERIMENTS,
};
static const ty_kind_info suggestion_kind = {
    .group = "kubeflow.org", .version = "v1beta1", .kind = "Suggestion",
    .resource = "suggestions", .singular = "suggestion", .short_names = "", .namespaced = true,
    .has_status = true, .ops = &ty_katib_suggestion_ops, .table = &ty_table_suggestions,
};

/* The Kubernetes built-in batch/v1 Job (controllers/batchjobs), which Kueue also queues. */
static const ty_merge_key job_merge_keys[] = {
    {"spec.template.spec.containers", "name"},
    {"spec.template.spec.initContainers", "name"},
    {"spec.template.spec.containers.env", "name"},
    {"spec.template.spec.initContainers.env", "name"},
    {"spec.template.spec.containers.ports", "containerPort"},
    {"spec.template.spec.containers.volumeMounts", "mountPath"},
    {"spec.template.spec.volumes", "name"},
    {"status.conditions", "type"},
    {NULL, NULL},
};
static const ty_kind_info batch_job_kind = {
    .group = "batch", .version = "v1", .kind = "Job", .resource = "jobs", .singular = "job",
    .short_names = "", .namespaced = true, .has_status = true, .in_all = true,
    .builtin = true, .ops = &ty_batch_job_ops, .merge_keys = job_merge_keys,
    .table = &ty_table_batch_jobs,
    .watched_by = TY_WATCHED_BY_BATCH | TY_WATCHED_BY_WORKLOADS | TY_WATCHED_BY_EXPERIMENTS,
    .kueue_job = true,
    .create_defaults = ty_batch_job_create_defaults,
};

/* KServe's CRDs (serving.kserve.io): short names isvc; the runtimes have none. Run by
 * controllers/serving. */
static const ty_kind_info isvc_kind = {
    .group = "serving.kserve.io", .version = "v1beta1", .kind = "InferenceService",
    .resource = "inferenceservices", .singular = "inferenceservice", .short_names = "isvc",
    .namespaced = true, .has_status = true, .in_all = true,
    .ops = &ty_serving_inferenceservice_ops, .table = &ty_table_inferenceservices,
    .watched_by = TY_WATCHED_BY_SERVING,
};
static const ty_kind_info sr_kind = {
    .group = "serving.kserve.io", .version = "v1alpha1", .kind = "ServingRuntime",
    .resource = "servingruntimes", .singular = "servingruntime", .short_names = "",
    .namespaced = true, .has_status = true, .ops = &ty_serving_servingruntime_ops,
    .table = &ty_table_servingruntimes, .watched_by = TY_WATCHED_BY_SERVING,
};
static const ty_kind_info csr_kind = {
    .group = "serving.kserve.io", .version = "v1alpha1", .kind = "ClusterServingRuntime",
    .resource = "clusterservingruntimes", .singular = "clusterservingruntime",
    .short_names = "", .namespaced = false, .has_status = true,
    .ops = &ty_serving_clusterservingruntime_ops, .table = &ty_table_servingruntimes,
    .watched_by = TY_WATCHED_BY_SERVING,
};

/* As Kueue's CRDs declare them: ResourceFlavor and WorkloadPriorityClass have no status (and
 * no status subresource); no Kueue kind is in the "all" category. */
static const ty_kind_info flavor_kind = {
    .group = "kueue.x-k8s.io", .version = "v1beta1", .kind = "ResourceFlavor",
    .resource = "resourceflavors", .singular = "resourceflavor",
    .short_names = "flavor,flavors,rf", .namespaced = false, .has_status = false,
    .ops = &ty_kueue_resourceflavor_ops,
    .watched_by = TY_WATCHED_BY_ADMISSION,
};
static const ty_kind_info ac_kind = {
    .group = "kueue.x-k8s.io", .version = "v1beta1", .kind = "AdmissionCheck",
    .resource = "admissionchecks", .singular = "admissioncheck", .short_names = "",
    .namespaced = false, .has_status = true, .ops = &ty_kueue_admissioncheck_ops,
    .watched_by = TY_WATCHED_BY_ADMISSION,
};
static const ty_kind_info cq_kind = {
    .group = "kueue.x-k8s.io", .version = "v1beta1", .kind = "ClusterQueue",
    .resource = "clusterqueues", .singular = "clusterqueue", .short_names = "cq",
    .namespaced = false, .has_status = true, .ops = &ty_kueue_clusterqueue_ops,
    .watched_by = TY_WATCHED_BY_ADMISSION,
    .table = &ty_table_clusterqueues,
};
static const ty_kind_info lq_kind = {
    .group = "kueue.x-k8s.io", .version = "v1beta1", .kind = "LocalQueue",
    .resource = "localqueues", .singular = "localqueue", .short_names = "queue,queues,lq",
    .namespaced = true, .has_status = true, .ops = &ty_kueue_localqueue_ops,
    .watched_by = TY_WATCHED_BY_ADMISSION,
    .table = &ty_table_localqueues,
};
static const ty_kind_info wl_kind = {
    .group = "kueue.x-k8s.io", .version = "v1beta1", .kind = "Workload",
    .resource = "workloads", .singular = "workload", .short_names = "wl",
    .namespaced = true, .has_status = true, .ops = &ty_kueue_workload_ops,
    .merge_keys = workload_merge_keys,
    .watched_by = TY_WATCHED_BY_ADMISSION | TY_WATCHED_BY_WORKLOADS,
    .table = &ty_table_workloads,
};
static const ty_kind_info wpc_kind = {
    .group = "kueue.x-k8s.io", .version = "v1beta1", .kind = "WorkloadPriorityClass",
    .resource = "workloadpriorityclasses", .singular = "workloadpriorityclass",
    .short_names = "", .namespaced = false, .has_status = false,
    .ops = &ty_kueue_workloadpriorityclass_ops,
    .table = &ty_table_workloadpriorityclasses,
};
static const ty_kind_info pc_kind = {
    .group = "scheduling.k8s.io", .version = "v1", .kind = "PriorityClass",
    .resource = "priorityclasses", .singular = "priorityclass", .short_names = "pc",
    .namespaced = false, .has_status = false, .builtin = true,
    .ops = &ty_scheduling_priorityclass_ops,
    .table = &ty_table_priorityclasses,
};

/* Core kinds with a schema of ours (api/storage.c). */
static const ty_kind_info pv_kind = {
    .group = "", .version = "v1", .kind = "PersistentVolume", .resource = "persistentvolumes",
    .singular = "persistentvolume", .short_names = "pv", .namespaced = false,
    .has_status = true, .builtin = true, .ops = &ty_core_persistentvolume_ops,
    .table = &ty_table_persistentvolumes,
};
static const ty_kind_info pvc_kind = {
    .group = "", .version = "v1", .kind = "PersistentVolumeClaim",
    .resource = "persistentvolumeclaims", .singular = "persistentvolumeclaim",
    .short_names = "pvc", .namespaced = true, .has_status = true, .builtin = true,
    .ops = &ty_core_persistentvolumeclaim_ops,
    .table = &ty_table_persistentvolumeclaims,
};

static const ty_kind_info configmap_kind = {
    .group = "", .version = "v1", .kind = "ConfigMap", .resource = "configmaps",
    .singular = "configmap", .short_names = "cm", .namespaced = true, .has_status = false,
    .builtin = true, .ops = &ty_core_configmap_ops,
    .table = &ty_table_configmaps,
};
static const ty_kind_info secret_kind = {
    .group = "", .version = "v1", .kind = "Secret", .resource = "secrets",
    .singular = "secret", .short_names = "", .namespaced = true, .has_status = false,
    .builtin = true, .ops = &ty_core_secret_ops,
    .table = &ty_table_secrets,
};

/* The identity of pods (server/serviceaccounts.c: a `default` one per namespace, the
 * TokenRequest subresource `serviceaccounts/token`). */
static const ty_kind_info serviceaccount_kind = {
    .group = "", .version = "v1", .kind = "ServiceAccount", .resource = "serviceaccounts",
    .singular = "serviceaccount", .short_names = "sa", .namespaced = true, .builtin = true,
    .table = &ty_table_serviceaccounts,
    .description = "ServiceAccount is an identity for processes in pods; the API issues "
                   "tokens for it (the serviceaccounts/token subresource).",
};

/* RBAC (rbac.authorization.k8s.io/v1): checked by auth/rbac.h (ty_rbac_validate) in the API
 * server, which also enforces them (docs/security.md). */
static const ty_kind_info role_kind = {
    .group = "rbac.authorization.k8s.io", .version = "v1", .kind = "Role",
    .resource = "roles", .singular = "role", .short_names = "", .namespaced = true,
    .builtin = true,
    .description = "Role is a namespaced set of rules (verbs on resources) a RoleBinding grants.",
};
static const ty_kind_info clusterrole_kind = {
    .group = "rbac.authorization.k8s.io", .version = "v1", .kind = "ClusterRole",
    .resource = "clusterroles", .singular = "clusterrole", .short_names = "",
    .namespaced = false, .builtin = true,
    .description = "ClusterRole is a cluster-wide set of rules, granted by RoleBindings in a "
                   "namespace or by ClusterRoleBindings everywhere; an aggregationRule makes "
                   "its rules the union of other ClusterRoles'.",
};
static const ty_kind_info rolebinding_kind = {
    .group = "rbac.authorization.k8s.io", .version = "v1", .kind = "RoleBinding",
    .resource = "rolebindings", .singular = "rolebinding", .short_names = "",
    .namespaced = true, .builtin = true,
    .description = "RoleBinding grants a Role or ClusterRole to subjects in its namespace.",
};
static const ty_kind_info clusterrolebinding_kind = {
    .group = "rbac.authorization.k8s.io", .version = "v1", .kind = "ClusterRoleBinding",
    .resource = "clusterrolebindings", .singular = "clusterrolebinding", .short_names = "",
    .namespaced = false, .builtin = true,
    .description = "ClusterRoleBinding grants a ClusterRole to subjects in every namespace.",
};

/* Reviews (authorization.k8s.io/v1): created and answered, never stored. */
static const ty_kind_info ssar_kind = {
    .group = "authorization.k8s.io", .version = "v1", .kind = "SelfSubjectAccessReview",
    .resource = "selfsubjectaccessreviews", .singular = "selfsubjectaccessreview",
    .short_names = "", .namespaced = false, .builtin = true, .review = true,
    .description = "SelfSubjectAccessReview asks whether the caller may do an action.",
};
static const ty_kind_info ssrr_kind = {
    .group = "authorization.k8s.io", .version = "v1", .kind = "SelfSubjectRulesReview",
    .resource = "selfsubjectrulesreviews", .singular = "selfsubjectrulesreview",
    .short_names = "", .namespaced = false, .builtin = true, .review = true,
    .description = "SelfSubjectRulesReview lists what the caller may do in a namespace.",
};
static const ty_kind_info sar_kind = {
    .group = "authorization.k8s.io", .version = "v1", .kind = "SubjectAccessReview",
    .resource = "subjectaccessreviews", .singular = "subjectaccessreview",
    .short_names = "", .namespaced = false, .builtin = true, .review = true,
    .description = "SubjectAccessReview asks whether a user or group may do an action.",
};
static const ty_kind_info lsar_kind = {
    .group = "authorization.k8s.io", .version = "v1", .kind = "LocalSubjectAccessReview",
    .resource = "localsubjectaccessreviews", .singular = "localsubjectaccessreview",
    .short_names = "", .namespaced = true, .builtin = true, .review = true,
    .description = "LocalSubjectAccessReview is a SubjectAccessReview within one namespace.",
};

static const ty_kind_info ssr_kind = {
    .group = "authentication.k8s.io", .version = "v1", .kind = "SelfSubjectReview",
    .resource = "selfsubjectreviews", .singular = "selfsubjectreview", .short_names = "",
    .namespaced = false, .builtin = true, .review = true,
    .description = "SelfSubjectReview tells the caller who the server takes it for.",
};

/* Leader election (coordination.k8s.io/v1): cluster mode's replicas hold a Lease, and the
 * stand-in cluster (`server --no-controllers`) serves them as kube-apiserver does. */
static const ty_kind_info lease_kind = {
    .group = "coordination.k8s.io", .version = "v1", .kind = "Lease", .resource = "leases",
    .singular = "lease", .short_names = "", .namespaced = true, .builtin = true,
    .description = "Lease is a lock held for a while and renewed (holderIdentity, "
                   "leaseDurationSeconds, renewTime): leader election.",
};

/* The order discovery lists them in. */
static const ty_kind_info *const kinds[] = {
    &namespace_kind, &node_kind, &pod_kind, &service_kind, &endpoints_kind, &event_kind,
    &endpointslice_kind,
    &pytorchjob_kind, &tfjob_kind,
    &experiment_kind, &trial_kind, &suggestion_kind,
    &batch_job_kind,
    &isvc_kind, &sr_kind, &csr_kind,
    &flavor_kind, &ac_kind, &cq_kind, &lq_kind, &wl_kind, &wpc_kind,
    &pc_kind,
    &pv_kind, &pvc_kind, &configmap_kind, &secret_kind,
    &serviceaccount_kind,
    &role_kind, &clusterrole_kind, &rolebinding_kind, &clusterrolebinding_kind,
    &ssar_kind, &ssrr_kind, &sar_kind, &lsar_kind, &ssr_kind,
    &lease_kind,
    NULL,
};

const ty_kind_info *const *ty_kinds(void)
{
    return kinds;
}

static bool same_gv(const ty_kind_info *k, const char *api_version)
{
    size_t gl = strlen(k->group);
    if (gl == 0)
        return strcmp(api_version, k->version) == 0;
    return strncmp(api_version, k->group, gl) == 0 && api_version[gl] == '/' &&
           strcmp(api_version + gl + 1, k->version) == 0;
}

const ty_kind_info *ty_kind_of(const char *api_version, const char *kind)
{
    for (size_t i = 0; api_version && kind && kinds[i]; i++)
        if (strcmp(kinds[i]->kind, kind) == 0 && same_gv(kinds[i], api_version))
            return kinds[i];
    return NULL;
}

const ty_kind_info *ty_kind_of_resource(const char *resource)
{
    for (size_t i = 0; resource && kinds[i]; i++)
        if (strcmp(kinds[i]->resource, resource) == 0)
            return kinds[i];
    return NULL;
}

const ty_kind_info *ty_kind_of_job_operator(const char *operator_name)
{
    for (size_t i = 0; operator_name && kinds[i]; i++)
        if (kinds[i]->job_operator && strcmp(kinds[i]->job_operator, operator_name) == 0)
            return kinds[i];
    return NULL;
}
