/* RBAC: rbac.authorization.k8s.io/v1 Roles, ClusterRoles, RoleBindings and ClusterRoleBindings
 * evaluated as kube-apiserver's RBAC authorizer does, over an index kept up to date one object
 * at a time (no scan of the bindings per request).
 *
 * A rule allows a resource request when its verbs, apiGroups, resources and resourceNames all
 * match: `*` matches any verb, group or resource; a resource is matched as `resource` or
 * `resource/subresource`, and `* /sub` (without the space) matches that subresource of any
 * resource; resourceNames, when set, match only a request naming one of them (so never a list,
 * a watch without a name or a create). A non-resource request (a path such as /healthz) is
 * matched by verbs and nonResourceURLs, where `*` matches any path and a trailing `*` a prefix.
 * ClusterRoleBindings grant everywhere; a RoleBinding grants in its namespace, its roleRef a
 * Role there or a ClusterRole. Subjects: User (the user's name), Group (one of its groups),
 * ServiceAccount (the user `system:serviceaccount:<namespace>:<name>`; a RoleBinding's subject
 * without a namespace means the binding's). The group `system:masters` is allowed everything
 * without RBAC, as kube-apiserver's privileged-group authorizer does.
 *
 * A ClusterRole with an aggregationRule has as its rules the union (first occurrence kept, by
 * role name) of the rules of every other ClusterRole whose labels match one of its selectors,
 * recomputed whenever a ClusterRole comes, changes or goes (kube-controller-manager's
 * clusterrole-aggregation controller; ty_rbac_cluster_role_rules() gives them to write back).
 *
 * Ownership: the index copies what it keeps from the objects given to it; strings and JSON
 * returned are the caller's. Not thread-safe: one index per loop. */
#ifndef TY_AUTH_RBAC_H
#define TY_AUTH_RBAC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "base/error.h"

#define TY_RBAC_GROUP "rbac.authorization.k8s.io"
#define TY_RBAC_MASTERS "system:masters"

typedef struct ty_rbac ty_rbac;

/* Who asks: an authenticated user (authentication adds `system:authenticated`, and for a
 * service account `system:serviceaccounts` and `system:serviceaccounts:<namespace>`). */
typedef struct ty_rbac_user {
    const char *name;
    const char *const *groups;
    size_t ngroups;
} ty_rbac_user;

/* What is asked, as kube-apiserver's request attributes. A resource request has `resource`
 * (plural) set; group "" is the core group; ns "" or NULL a cluster-scoped request (or all
 * namespaces); name NULL a collection. A non-resource request has `path` instead. */
typedef struct ty_rbac_request {
    const char *verb;
    const char *group, *resource, *subresource, *ns, *name;
    const char *path;
} ty_rbac_request;

ty_rbac *ty_rbac_new(void);
void ty_rbac_free(ty_rbac *r);

/* The built-in ClusterRoles (cluster-admin, admin, edit, view and their system:aggregate-to-*
 * parts, system:basic-user, system:discovery, system:public-info-viewer; Kubeflow's training
 * roles and Kueue's queue viewer roles labelled to aggregate into admin/edit/view) and
 * ClusterRoleBindings (cluster-admin to system:masters, the discovery and basic-user roles to
 * system:authenticated), as a JSON array of objects to create at the first start. New
 * reference. */
json_t *ty_rbac_bootstrap_objects(void);

/* Checks a Role, ClusterRole, RoleBinding or ClusterRoleBinding as kube-apiserver validates
 * them (verbs required, a rule for resources or for URLs but not both, URLs only in a
 * ClusterRole, roleRef and subject kinds, ...). Fails naming the field. */
int ty_rbac_validate(const json_t *obj, ty_error *err);

/* Adds or replaces (same kind, namespace and name) one object of the four kinds; validated
 * first, and on failure the index is unchanged. Another kind is an error. */
int ty_rbac_put(ty_rbac *r, const json_t *obj, ty_error *err);
/* Removes one object by kind ("Role", ...), namespace ("" or NULL for cluster kinds), name;
 * returns whether it was there. */
bool ty_rbac_remove(ty_rbac *r, const char *kind, const char *ns, const char *name);

/* The decision. `reason`, when not NULL, receives (caller frees) why: "RBAC: allowed by
 * RoleBinding \"b/ns\" of Role \"r\" to User \"alice\"" when allowed, and on a denial the
 * bindings that name a missing role ("RBAC: role.rbac.authorization.k8s.io \"x\" not found"),
 * or NULL when there is nothing to say. */
bool ty_rbac_authorize(const ty_rbac *r, const ty_rbac_user *u, const ty_rbac_request *q,
                       char **reason);

/* The same decision (without the reason) by a scan of every binding, as an RBAC authorizer
 * without an index does: the baseline of bench/rbac.sh and the unit tests' cross-check. */
bool ty_rbac_authorize_scan(const ty_rbac *r, const ty_rbac_user *u, const ty_rbac_request *q);

/* The verb of an HTTP request as kube-apiserver names it: GET on a collection is list, with
 * watch=true (or a /watch/ path) watch; on an object get; POST create; PUT update; PATCH patch;
 * DELETE delete, on a collection deletecollection. A non-resource request's verb is the
 * method in lowercase. NULL for a method without a verb. */
const char *ty_rbac_verb(const char *method, bool resource_request, bool named, bool watch);

/* kube-apiserver's 403 message: `pods is forbidden: User "alice" cannot create resource
 * "pods" in API group "" in the namespace "team-b"` (`... at the cluster scope`; a named
 * object `pods "p" is forbidden: ...`; a subresource `resource "pods/log"`; a path
 * `forbidden: User "alice" cannot get path "/metrics"`), with ": <reason>" when there is
 * one. Caller frees. */
char *ty_rbac_forbidden_message(const ty_rbac_user *u, const ty_rbac_request *q,
                                const char *reason);

/* The escalation check on creating or updating `obj` (one of the four kinds): allowed for
 * system:masters; for a Role or ClusterRole when the user may `escalate` it, for a binding
 * when the user may `bind` its role; otherwise only when the user already holds every
 * permission the object grants (in its namespace; a ClusterRole with an aggregationRule needs
 * every permission). Fails with kube-apiserver's Forbidden message (`user "alice"
 * (groups=[...]) is attempting to grant RBAC permissions not currently held: ...`). */
int ty_rbac_check_escalation(const ty_rbac *r, const ty_rbac_user *u, const json_t *obj,
                             ty_error *err);

/* A SelfSubjectAccessReview's (user set) or SubjectAccessReview's (user NULL: spec.user and
 * spec.groups) answer to `spec`: the review's `status` ({allowed, reason}), new reference; a
 * spec without exactly one of resourceAttributes and nonResourceAttributes is an error. */
json_t *ty_rbac_access_review(const ty_rbac *r, const ty_rbac_user *u, const json_t *spec,
                              ty_error *err);

/* A SelfSubjectRulesReview's status for namespace `ns` (`kubectl auth can-i --list`):
 * {resourceRules, nonResourceRules, incomplete[, evaluationError]}, new reference. */
json_t *ty_rbac_rules_review(const ty_rbac *r, const ty_rbac_user *u, const char *ns);

/* The rules in effect for ClusterRole `name` (aggregated ones included) as a JSON array, new
 * reference; NULL if there is no such ClusterRole. */
json_t *ty_rbac_cluster_role_rules(const ty_rbac *r, const char *name);

#endif
