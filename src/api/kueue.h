/* Names of the Kueue API (kueue.x-k8s.io/v1beta1) that the scheduler and the controllers share
 * with the objects: labels, annotations, condition types and reasons, as Kueue v0.9-v0.10 spells
 * them. The kinds themselves (ResourceFlavor, ClusterQueue, LocalQueue, Workload,
 * WorkloadPriorityClass, and scheduling.k8s.io/v1 PriorityClass) are served through api.h:
 * ty_api_kind("kueue.x-k8s.io/v1beta1", "ClusterQueue") and ty_api_admit(), which applies
 * Kueue's defaults (CRD defaults and webhooks) and validation. */
#ifndef TY_API_KUEUE_H
#define TY_API_KUEUE_H

#define TY_KUEUE_GROUP "kueue.x-k8s.io"
#define TY_KUEUE_API_VERSION "kueue.x-k8s.io/v1beta1"

/* On a job (or its pods): the LocalQueue it is submitted to, and its WorkloadPriorityClass. */
#define TY_KUEUE_LABEL_QUEUE_NAME "kueue.x-k8s.io/queue-name"
#define TY_KUEUE_LABEL_PRIORITY_CLASS "kueue.x-k8s.io/priority-class"
/* The same key as an annotation: the deprecated way to name the queue, still honoured. */
#define TY_KUEUE_ANNOTATION_QUEUE_NAME "kueue.x-k8s.io/queue-name"
/* On the pods of an admitted workload: the name of their pod set. */
#define TY_KUEUE_LABEL_PODSET "kueue.x-k8s.io/podset"

/* Workload.spec.priorityClassSource values. */
#define TY_KUEUE_PRIORITY_SOURCE_WORKLOAD "kueue.x-k8s.io/workloadpriorityclass"
#define TY_KUEUE_PRIORITY_SOURCE_POD "scheduling.k8s.io/priorityclass"

/* Workload condition types. */
#define TY_KUEUE_COND_QUOTA_RESERVED "QuotaReserved"
#define TY_KUEUE_COND_ADMITTED "Admitted"
#define TY_KUEUE_COND_EVICTED "Evicted"
#define TY_KUEUE_COND_PREEMPTED "Preempted"
#define TY_KUEUE_COND_REQUEUED "Requeued"
#define TY_KUEUE_COND_FINISHED "Finished"
#define TY_KUEUE_COND_PODS_READY "PodsReady"
/* ClusterQueue and LocalQueue condition type. */
#define TY_KUEUE_COND_ACTIVE "Active"

/* Reasons. QuotaReserved=False while waiting: Pending; Admitted/QuotaReserved=True: the type's
 * own name. */
#define TY_KUEUE_REASON_PENDING "Pending"
#define TY_KUEUE_REASON_QUOTA_RESERVED "QuotaReserved"
#define TY_KUEUE_REASON_ADMITTED "Admitted"
#define TY_KUEUE_REASON_INADMISSIBLE "Inadmissible"
/* Evicted reasons. */
#define TY_KUEUE_REASON_EVICTED_BY_PREEMPTION "Preempted"
#define TY_KUEUE_REASON_EVICTED_BY_PODS_READY_TIMEOUT "PodsReadyTimeout"
#define TY_KUEUE_REASON_EVICTED_BY_ADMISSION_CHECK "AdmissionCheck"
#define TY_KUEUE_REASON_EVICTED_BY_CQ_STOPPED "ClusterQueueStopped"
#define TY_KUEUE_REASON_EVICTED_BY_LQ_STOPPED "LocalQueueStopped"
#define TY_KUEUE_REASON_EVICTED_BY_DEACTIVATION "InactiveWorkload"
/* Preempted reasons. */
#define TY_KUEUE_REASON_IN_CLUSTER_QUEUE "InClusterQueue"
#define TY_KUEUE_REASON_IN_COHORT_RECLAMATION "InCohortReclamation"
#define TY_KUEUE_REASON_IN_COHORT_FAIR_SHARING "InCohortFairSharing"
#define TY_KUEUE_REASON_IN_COHORT_RECLAIM_WHILE_BORROWING "InCohortReclaimWhileBorrowing"
/* Requeued reasons. */
#define TY_KUEUE_REASON_BACKOFF_FINISHED "BackoffFinished"
#define TY_KUEUE_REASON_REACTIVATED "Reactivated"
/* Finished reasons. */
#define TY_KUEUE_REASON_SUCCEEDED "Succeeded"
#define TY_KUEUE_REASON_FAILED "Failed"
/* Active reasons of queues. */
#define TY_KUEUE_REASON_READY "Ready"
#define TY_KUEUE_REASON_STOPPED "Stopped"
#define TY_KUEUE_REASON_FLAVOR_NOT_FOUND "FlavorNotFound"
#define TY_KUEUE_REASON_CLUSTER_QUEUE_DOES_NOT_EXIST "ClusterQueueDoesNotExist"
#define TY_KUEUE_REASON_CLUSTER_QUEUE_IS_INACTIVE "ClusterQueueIsInactive"

/* Finalizer Kueue puts on ClusterQueues and ResourceFlavors in use (not added by trainyard's
 * admission: the controller that would remove it owns adding it). */
#define TY_KUEUE_FINALIZER_RESOURCE_IN_USE "kueue.x-k8s.io/resource-in-use"

#endif
