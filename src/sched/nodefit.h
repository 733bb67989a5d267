/* Whether a node may take a pod, as the Kubernetes scheduler's filters decide it: the rules
 * that do not depend on free room (label matching, required node affinity, taints and
 * tolerations). One implementation for every place that decides where a pod may go: the
 * scheduling core (src/sched, which calls it over its interned snapshot) and gang placement
 * (src/controllers/placement.c: the binder and the job controller's never-fits check), so that
 * a workload the core admits onto nodes is one the binder then binds there.
 *
 * The rule of which resources a node has room to check (ty_nodefit_limits) is here too: the
 * core applies it once per snapshot, placement.c per pod and node.
 *
 * Pure: strings in, a verdict out; no JSON, no allocation. Callers parse their input once
 * (the snapshot builder and placement.c from pod specs, ty_placement_affinity) into these
 * compact forms so that the hot loops compare strings only for what a pod asks for. */
#ifndef TY_SCHED_NODEFIT_H
#define TY_SCHED_NODEFIT_H

#include <stdbool.h>
#include <stddef.h>

typedef struct ty_nodefit_label {
    const char *key, *value;
} ty_nodefit_label;

typedef struct ty_nodefit_taint {
    const char *key, *value, *effect; /* effect "NoSchedule", "PreferNoSchedule", "NoExecute" */
} ty_nodefit_taint;

typedef struct ty_nodefit_toleration {
    const char *key;    /* NULL or "": with operator Exists, every key */
    const char *op;     /* "Equal" (NULL) or "Exists" */
    const char *value;
    const char *effect; /* NULL or "": every effect */
} ty_nodefit_toleration;

/* A node selector requirement's operator; BAD (an unknown one) matches nothing. */
typedef enum {
    TY_NODEFIT_IN,
    TY_NODEFIT_NOT_IN,
    TY_NODEFIT_EXISTS,
    TY_NODEFIT_DOES_NOT_EXIST,
    TY_NODEFIT_GT,
    TY_NODEFIT_LT,
    TY_NODEFIT_BAD,
} ty_nodefit_op;

/* One matchExpressions (over labels) or matchFields (over metadata.name) requirement. */
typedef struct ty_nodefit_expr {
    const char *key; /* NULL: matches nothing (also a matchFields key other than metadata.name) */
    bool field;      /* matchFields: the node's name, not a label */
    ty_nodefit_op op;
    const char *const *values;
    size_t n_values;
} ty_nodefit_expr;

/* A nodeSelectorTerm: all its requirements (an empty term matches no node). */
typedef struct ty_nodefit_term {
    const ty_nodefit_expr *exprs;
    size_t n_exprs;
} ty_nodefit_term;

/* requiredDuringSchedulingIgnoredDuringExecution: a node must match one of the terms. */
typedef struct ty_nodefit_affinity {
    const ty_nodefit_term *terms;
    size_t n_terms;
} ty_nodefit_affinity;

ty_nodefit_op ty_nodefit_op_of(const char *name);

/* Whether the node (its name and labels) matches the required affinity; NULL matches all. */
bool ty_nodefit_affinity_matches(const ty_nodefit_affinity *a, const char *node_name,
                                 const ty_nodefit_label *labels, size_t n_labels);

/* Whether nodes with these labels may match the affinity, when the labels are only some of a
 * node's (a flavor's nodeLabels, as Kueue's flavor assigner reads them): requirements on other
 * keys and matchFields are left out, and a term left with none matches. */
bool ty_nodefit_affinity_may_match(const ty_nodefit_affinity *a, const ty_nodefit_label *labels,
                                   size_t n_labels);

/* Whether every key of `selector` is a label of the node with that value (spec.nodeSelector). */
bool ty_nodefit_selector_matches(const ty_nodefit_label *selector, size_t n_selector,
                                 const ty_nodefit_label *labels, size_t n_labels);

/* Whether a node's room in `resource` is checked: it declares the resource in its
 * allocatable (`declared`), or the resource is cpu, memory or an extended (domain-prefixed)
 * one, which a node that does not declare it has none of. Others (ephemeral-storage, the pod
 * count "pods") are unlimited unless declared. */
bool ty_nodefit_limits(const char *resource, bool declared);

/* Whether the taint matters to a pod's fit: NoSchedule and NoExecute do, PreferNoSchedule
 * (a preference) does not. */
bool ty_nodefit_taint_binds(const ty_nodefit_taint *t);

/* Kubernetes' ToleratesTaint: an empty effect tolerates every effect; an empty key with
 * Exists every taint; Exists any value; Equal (the default) the same value. */
bool ty_nodefit_tolerates(const ty_nodefit_toleration *tol, const ty_nodefit_taint *t);

/* The first taint the pod's tolerations (`tols`, then `extra`, e.g. a flavor's) leave
 * untolerated and that binds, or NULL. */
const ty_nodefit_taint *ty_nodefit_untolerated(const ty_nodefit_taint *taints, size_t n_taints,
                                               const ty_nodefit_toleration *tols, size_t n_tols,
                                               const ty_nodefit_toleration *extra,
                                               size_t n_extra);

#endif
