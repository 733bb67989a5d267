/* Gang placement: which node each pod of a gang goes to, or why the gang cannot go anywhere.
 *
 * Pure: no store, no loop; the binder (live free capacity) and the job controller (empty
 * nodes: can this job ever run?) both call it, and a later scheduling core may replace it
 * behind the same interface.
 *
 * Rules, per pod, as the Kubernetes scheduler's filters (the label, affinity and taint rules
 * are sched/nodefit.h's, which the scheduling core uses too):
 *  - spec.unschedulable nodes take nothing;
 *  - spec.nodeSelector: every key must be a node label with that value;
 *  - spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution: one of the
 *    nodeSelectorTerms must match (a term: all its matchExpressions, In/NotIn/Exists/
 *    DoesNotExist/Gt/Lt over labels, and matchFields over metadata.name; an empty term matches
 *    nothing);
 *  - taints with effect NoSchedule or NoExecute must each be tolerated by one of
 *    spec.tolerations (empty key + Exists tolerates everything; an empty effect any effect;
 *    operator Equal, the default, compares values); PreferNoSchedule is ignored;
 *  - requests (ty_placement_requests) must fit the node's free amount. Checked resources: cpu,
 *    memory, every domain-prefixed (extended) resource such as nvidia.com/gpu (a node that does
 *    not declare one has none of it), and any other name the node declares (ephemeral-storage
 *    is only checked where a node declares it).
 *  - a node that declares a `pods` amount (the kubelet's maxPods, 110 by default) takes that
 *    many pods at most: each pod counts one, whatever it requests ("too many pods");
 *  - a preassigned pod (ty_placement_pod.node) may only go to that node.
 *
 * Packing: pods are placed one at a time, preassigned ones first, then the largest GPU
 * request first (then cpu, then memory, then input order); each goes to the fitting node with
 * the FEWEST free nvidia.com/gpu left (best fit: whole GPU nodes stay free for large gangs,
 * and pods without GPUs go to nodes without them), ties broken by node name, so the result is
 * deterministic. Greedy: a gang that would fit only by another arrangement is reported as not
 * fitting (rare with uniform gangs).
 *
 * All or nothing: either every pod gets a node, or none does and the message says why:
 * "0/8 nodes can take pod w-3 of the gang of 4: 5 nodes have too few free nvidia.com/gpu
 * (need 8), 3 nodes have taint gpu=true:NoSchedule that the pod does not tolerate".
 *
 * Resource lists are JSON objects: resource name -> integer milli-units (1 GPU = 1000). */
#ifndef TY_CONTROLLERS_PLACEMENT_H
#define TY_CONTROLLERS_PLACEMENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "base/error.h"
#include "sched/nodefit.h"

typedef struct ty_placement_node {
    const json_t *node; /* the Node: metadata.name, labels, spec.taints, spec.unschedulable */
    const json_t *free; /* what is free on it: name -> milli-units (ty_placement_allocatable
                         * minus ty_placement_requests of the pods it runs) */
} ty_placement_node;

typedef struct ty_placement_pod {
    const char *name;   /* for messages */
    const json_t *spec; /* the pod's spec (nodeSelector, affinity, tolerations, containers) */
    const char *node;   /* preassigned node name, or NULL */
} ty_placement_pod;

/* Places pods[0..n_pods) on nodes[0..n_nodes): on success writes the chosen node's index
 * for pod i to out[i] and returns 0; otherwise returns -1 with the reason in err and out
 * unspecified. Reads the inputs only. */
int ty_placement_place(const ty_placement_node *nodes, size_t n_nodes,
                       const ty_placement_pod *pods, size_t n_pods, size_t *out, ty_error *err);

/* The effective requests of a pod spec, every resource name: the sum over containers of
 * requests (a limit stands for a missing request), or the largest init container's, whichever
 * is larger, plus spec.overhead. Unparsable quantities count as 0. New object. The one sum of a
 * pod's requests: the binder, the job controller and the Kueue snapshot all use it. */
json_t *ty_placement_requests(const json_t *pod_spec);
/* A node's status.allocatable (status.capacity when absent) as milli-units. New object. */
json_t *ty_placement_allocatable(const json_t *node);
/* free -= req, for the names free has, and one pod off `pods` when free has it: call it once
 * per pod placed. */
void ty_placement_take(json_t *free, const json_t *req);

/* A pod spec's node constraints in sched/nodefit.h's form, for placement and the scheduling
 * core's snapshot. The strings point into the spec, which must outlive them. */
typedef struct ty_placement_constraints {
    ty_nodefit_label *selector; /* spec.nodeSelector */
    size_t n_selector;
    bool impossible; /* a nodeSelector value that is not a string: no node matches */
    ty_nodefit_toleration *tols;
    size_t n_tols;
    ty_nodefit_affinity *affinity; /* required node affinity; NULL: none */
} ty_placement_constraints;

void ty_placement_constraints_parse(const json_t *pod_spec, ty_placement_constraints *c);
void ty_placement_constraints_free(ty_placement_constraints *c);

/* The parts, each a new array (free()) of *n entries pointing into the JSON: */
/* labels (metadata.labels, a nodeSelector) whose values are strings */
ty_nodefit_label *ty_placement_labels(const json_t *obj, size_t *n);
/* taints (spec.taints of a node, a flavor's nodeTaints) that have a key */
ty_nodefit_taint *ty_placement_taints(const json_t *arr, size_t *n);
ty_nodefit_toleration *ty_placement_tolerations(const json_t *arr, size_t *n);
/* The pod spec's required node affinity as one block (free()), or NULL when it has none. */
ty_nodefit_affinity *ty_placement_affinity(const json_t *pod_spec);

#endif
