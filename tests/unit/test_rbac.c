/* RBAC evaluation: cases after kubernetes' plugin/pkg/auth/authorizer/rbac/rbac_test.go and
 * pkg/registry/rbac/validation/rule_test.go (written here), plus aggregation, the built-in
 * roles, messages, escalation and reviews. */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <string.h>

#include "auth/rbac.h"
#include "base/mem.h"

static ty_rbac *R;

static void setup(void) { R = ty_rbac_new(); }
static void teardown(void) { ty_rbac_free(R); }

TestSuite(rbac, .init = setup, .fini = teardown);

static void put(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    TY_AUTOFREE char *text = ty_vasprintf(fmt, ap);
    va_end(ap);
    json_error_t je;
    json_t *o = json_loads(text, 0, &je);
    cr_assert(o, "bad test json %s: %s", text, je.text);
    ty_error err = TY_ERROR_INIT;
    cr_assert_eq(ty_rbac_put(R, o, &err), 0, "put %s: %s", text, err.msg);
    json_decref(o);
}

static void cluster_role(const char *name, const char *rules)
{
    put("{\"kind\":\"ClusterRole\",\"metadata\":{\"name\":\"%s\"},\"rules\":%s}", name, rules);
}

static void role(const char *ns, const char *name, const char *rules)
{
    put("{\"kind\":\"Role\",\"metadata\":{\"name\":\"%s\",\"namespace\":\"%s\"},\"rules\":%s}",
        name, ns, rules);
}

/* subjects: "User:a,Group:b,ServiceAccount:ns/name" */
static char *subjects_json(const char *subjects)
{
    char *out = ty_strdup("[");
    TY_AUTOFREE char *copy = ty_strdup(subjects);
    char *save = NULL;
    for (char *s = strtok_r(copy, ",", &save); s; s = strtok_r(NULL, ",", &save)) {
        char *colon = strchr(s, ':');
        *colon = '\0';
        char *name = colon + 1, *item;
        if (strcmp(s, "ServiceAccount") == 0) {
            char *slash = strchr(name, '/');
            if (slash) {
                *slash = '\0';
                item = ty_asprintf("{\"kind\":\"ServiceAccount\",\"namespace\":\"%s\","
                                   "\"name\":\"%s\"}", name, slash + 1);
            } else {
                item = ty_asprintf("{\"kind\":\"ServiceAccount\",\"name\":\"%s\"}", name);
            }
        } else {
            item = ty_asprintf("{\"kind\":\"%s\",\"apiGroup\":\"" TY_RBAC_GROUP "\","
                               "\"name\":\"%s\"}", s, name);
        }
        char *next = ty_asprintf("%s%s%s", out, out[1] ? "," : "", item);
        free(out);
        free(item);
        out = next;
    }
    char *done = ty_asprintf("%s]", out);
    free(out);
    return done;
}

static void role_binding(const char *ns, const char *name, const char *ref_kind,
                         const char *ref, const char *subjects)
{
    TY_AUTOFREE char *subs = subjects_json(subjects);
    put("{\"kind\":\"RoleBinding\",\"metadata\":{\"name\":\"%s\",\"namespace\":\"%s\"},"
        "\"roleRef\":{\"apiGroup\":\"" TY_RBAC_GROUP "\",\"kind\":\"%s\",\"name\":\"%s\"},"
        "\"subjects\":%s}", name, ns, ref_kind, ref, subs);
}

static void cluster_binding(const char *name, const char *ref, const char *subjects)
{
    TY_AUTOFREE char *subs = subjects_json(subjects);
    put("{\"kind\":\"ClusterRoleBinding\",\"metadata\":{\"name\":\"%s\"},"
        "\"roleRef\":{\"apiGroup\":\"" TY_RBAC_GROUP "\",\"kind\":\"ClusterRole\","
        "\"name\":\"%s\"},\"subjects\":%s}", name, ref, subs);
}

/* The user "name" with comma-separated groups. */
typedef struct who {
    ty_rbac_user u;
    const char *g[8];
    char buf[256];
} who;

static ty_rbac_user *user(who *w, const char *name, const char *groups)
{
    memset(w, 0, sizeof *w);
    w->u.name = name;
    snprintf(w->buf, sizeof w->buf, "%s", groups ? groups : "");
    char *save = NULL;
    for (char *g = strtok_r(w->buf, ",", &save); g && w->u.ngroups < 8;
         g = strtok_r(NULL, ",", &save))
        w->g[w->u.ngroups++] = g;
    w->u.groups = w->g;
    return &w->u;
}

/* kubernetes' defaultAttributes: user, groups, verb, resource, subresource, ns, group. */
static bool can(const char *name, const char *groups, const char *verb, const char *resource,
                const char *sub, const char *ns, const char *group)
{
    who w;
    ty_rbac_request q = {.verb = verb, .group = group, .resource = resource,
                         .subresource = sub, .ns = ns};
    return ty_rbac_authorize(R, user(&w, name, groups), &q, NULL);
}

static bool can_named(const char *name, const char *verb, const char *resource, const char *ns,
                      const char *obj)
{
    who w;
    ty_rbac_request q = {.verb = verb, .group = "", .resource = resource, .ns = ns, .name = obj};
    return ty_rbac_authorize(R, user(&w, name, NULL), &q, NULL);
}

static bool can_path(const char *name, const char *groups, const char *verb, const char *path)
{
    who w;
    ty_rbac_request q = {.verb = verb, .path = path};
    return ty_rbac_authorize(R, user(&w, name, groups), &q, NULL);
}

Test(rbac, cluster_role_bound_in_a_namespace)
{
    cluster_role("admin", "[{\"verbs\":[\"*\"],\"apiGroups\":[\"*\"],\"resources\":[\"*\"]}]");
    role_binding("ns1", "admin", "ClusterRole", "admin", "User:admin,Group:admins");
    cr_assert(can("admin", "", "get", "Pods", "", "ns1", ""));
    cr_assert(can("admin", "", "watch", "Pods", "", "ns1", ""));
    cr_assert(can("admin", "group1", "watch", "Foobar", "", "ns1", ""));
    cr_assert(can("joe", "admins", "watch", "Foobar", "", "ns1", ""));
    cr_assert(can("joe", "group1,admins", "watch", "Foobar", "", "ns1", ""));
    cr_assert_not(can("admin", "", "GET", "Pods", "", "ns2", ""));
    cr_assert_not(can("admin", "", "GET", "Nodes", "", "", ""));
    cr_assert_not(can("admin", "admins", "GET", "Pods", "", "ns2", ""));
    cr_assert_not(can("admin", "admins", "GET", "Nodes", "", "", ""));
    cr_assert_not(can("joe", "group1", "get", "Pods", "", "ns1", ""));
}

Test(rbac, non_resource_urls)
{
    cluster_role("non-resource-url-getter",
                 "[{\"verbs\":[\"get\"],\"nonResourceURLs\":[\"/apis\"]}]");
    cluster_role("non-resource-url", "[{\"verbs\":[\"*\"],\"nonResourceURLs\":[\"/apis\"]}]");
    cluster_role("non-resource-url-prefix",
                 "[{\"verbs\":[\"get\"],\"nonResourceURLs\":[\"/apis/*\"]}]");
    cluster_binding("non-resource-url-getter", "non-resource-url-getter", "User:foo,Group:bar");
    cluster_binding("non-resource-url", "non-resource-url", "User:admin,Group:admin");
    cluster_binding("non-resource-url-prefix", "non-resource-url-prefix",
                    "User:prefixed,Group:prefixed");
    cr_assert(can_path("foo", "", "get", "/apis"));
    cr_assert(can_path("", "bar", "get", "/apis"));
    cr_assert(can_path("admin", "", "get", "/apis"));
    cr_assert(can_path("", "admin", "get", "/apis"));
    cr_assert(can_path("admin", "", "watch", "/apis"));
    cr_assert(can_path("", "admin", "watch", "/apis"));
    cr_assert(can_path("prefixed", "", "get", "/apis/v1"));
    cr_assert(can_path("", "prefixed", "get", "/apis/v1"));
    cr_assert(can_path("prefixed", "", "get", "/apis/v1/foobar"));
    cr_assert_not(can_path("foo", "", "get", "/apis/v1"));
    cr_assert_not(can_path("", "foo", "get", "/apis/v1"));
    cr_assert_not(can_path("foo", "", "watch", "/apis"));
    cr_assert_not(can_path("", "foo", "watch", "/apis"));
    cr_assert_not(can_path("admin", "", "get", "/"));
    cr_assert_not(can_path("admin", "", "get", "/apis/v1"));
    cr_assert_not(can_path("prefixed", "", "get", "/api/v1"));
    cr_assert_not(can_path("prefixed", "", "get", "/apis"));
}

Test(rbac, non_resource_urls_need_a_cluster_binding)
{
    cluster_role("urls", "[{\"verbs\":[\"get\"],\"nonResourceURLs\":[\"*\"]}]");
    role_binding("ns1", "b", "ClusterRole", "urls", "User:alice");
    cr_assert_not(can_path("alice", "", "get", "/metrics"));
    cluster_binding("b", "urls", "User:alice");
    cr_assert(can_path("alice", "", "get", "/metrics"));
}

Test(rbac, subresources)
{
    cluster_role("admin", "[{\"verbs\":[\"*\"],\"apiGroups\":[\"*\"],\"resources\":[\"pods\"]}]");
    role_binding("ns1", "admin", "ClusterRole", "admin", "User:admin,Group:admins");
    cr_assert_not(can("admin", "", "get", "pods", "status", "ns1", ""));

    cluster_role("admin", "[{\"verbs\":[\"*\"],\"apiGroups\":[\"*\"],"
                          "\"resources\":[\"pods/status\"]},{\"verbs\":[\"*\"],"
                          "\"apiGroups\":[\"*\"],\"resources\":[\"*/scale\"]}]");
    cr_assert(can("admin", "", "get", "pods", "status", "ns1", ""));
    cr_assert(can("admin", "", "get", "pods", "scale", "ns1", ""));
    cr_assert(can("admin", "", "get", "deployments", "scale", "ns1", ""));
    cr_assert(can("admin", "", "get", "anything", "scale", "ns1", ""));
    cr_assert_not(can("admin", "", "get", "pods", "", "ns1", ""));
    cr_assert_not(can("admin", "", "get", "pods", "log", "ns1", ""));
    cr_assert_not(can("admin", "", "get", "scale", "", "ns1", ""));
}

Test(rbac, api_groups)
{
    cluster_role("jobs", "[{\"verbs\":[\"create\"],\"apiGroups\":[\"kubeflow.org\"],"
                         "\"resources\":[\"pytorchjobs\"]}]");
    cluster_binding("jobs", "jobs", "User:alice");
    cr_assert(can("alice", "", "create", "pytorchjobs", "", "team-a", "kubeflow.org"));
    cr_assert_not(can("alice", "", "create", "pytorchjobs", "", "team-a", ""));
    cr_assert_not(can("alice", "", "create", "pytorchjobs", "", "team-a", "kueue.x-k8s.io"));
    cr_assert_not(can("alice", "", "delete", "pytorchjobs", "", "team-a", "kubeflow.org"));
}

Test(rbac, resource_names)
{
    role("ns1", "one", "[{\"verbs\":[\"get\",\"list\",\"watch\",\"create\",\"delete\"],"
                       "\"apiGroups\":[\"\"],\"resources\":[\"configmaps\"],"
                       "\"resourceNames\":[\"mine\"]}]");
    role_binding("ns1", "one", "Role", "one", "User:alice");
    cr_assert(can_named("alice", "get", "configmaps", "ns1", "mine"));
    cr_assert(can_named("alice", "delete", "configmaps", "ns1", "mine"));
    cr_assert_not(can_named("alice", "get", "configmaps", "ns1", "other"));
    /* a collection, or a create without a name, is never matched by resourceNames */
    cr_assert_not(can_named("alice", "list", "configmaps", "ns1", NULL));
    cr_assert_not(can_named("alice", "watch", "configmaps", "ns1", NULL));
    cr_assert_not(can_named("alice", "create", "configmaps", "ns1", NULL));
    cr_assert_not(can_named("alice", "create", "configmaps", "ns1", ""));
}

Test(rbac, service_accounts)
{
    role("ns1", "reader", "[{\"verbs\":[\"list\"],\"apiGroups\":[\"\"],\"resources\":[\"pods\"]}]");
    /* no namespace: the binding's own */
    role_binding("ns1", "local", "Role", "reader", "ServiceAccount:runner");
    cr_assert(can("system:serviceaccount:ns1:runner", "", "list", "pods", "", "ns1", ""));
    cr_assert_not(can("system:serviceaccount:ns2:runner", "", "list", "pods", "", "ns1", ""));
    cr_assert_not(can("runner", "", "list", "pods", "", "ns1", ""));
    /* a service account of another namespace, named */
    role_binding("ns1", "remote", "Role", "reader", "ServiceAccount:ns2/builder");
    cr_assert(can("system:serviceaccount:ns2:builder", "", "list", "pods", "", "ns1", ""));
    cr_assert_not(can("system:serviceaccount:ns2:builder", "", "list", "pods", "", "ns2", ""));
    /* the service account groups authentication gives */
    role_binding("ns1", "all-sa", "Role", "reader", "Group:system:serviceaccounts:ns3");
    cr_assert(can("system:serviceaccount:ns3:x", "system:serviceaccounts,"
                  "system:serviceaccounts:ns3,system:authenticated",
                  "list", "pods", "", "ns1", ""));
    /* a User subject with a service account's name is that service account */
    role_binding("ns1", "as-user", "Role", "reader", "User:system:serviceaccount:ns4:y");
    cr_assert(can("system:serviceaccount:ns4:y", "", "list", "pods", "", "ns1", ""));
}

Test(rbac, masters_bypass_and_missing_roles)
{
    cr_assert(can("root", "system:masters", "delete", "nodes", "", "", ""));
    cr_assert_not(can("root", "admins", "delete", "nodes", "", "", ""));
    role_binding("ns1", "dangling", "Role", "gone", "User:alice");
    cluster_binding("dangling", "gone-too", "User:alice");
    who w;
    ty_rbac_request q = {.verb = "get", .group = "", .resource = "pods", .ns = "ns1"};
    char *reason = NULL;
    cr_assert_not(ty_rbac_authorize(R, user(&w, "alice", NULL), &q, &reason));
    cr_assert_str_eq(reason, "RBAC: [clusterrole.rbac.authorization.k8s.io \"gone-too\" not "
                             "found, role.rbac.authorization.k8s.io \"gone\" not found]");
    free(reason);
    role("ns1", "gone", "[{\"verbs\":[\"get\"],\"apiGroups\":[\"\"],\"resources\":[\"pods\"]}]");
    cr_assert(ty_rbac_authorize(R, user(&w, "alice", NULL), &q, &reason));
    cr_assert_str_eq(reason, "RBAC: allowed by RoleBinding \"dangling/ns1\" of Role \"gone\" to "
                             "User \"alice\"");
    free(reason);
}

Test(rbac, incremental_index)
{
    role("ns1", "r", "[{\"verbs\":[\"get\"],\"apiGroups\":[\"\"],\"resources\":[\"pods\"]}]");
    role_binding("ns1", "b", "Role", "r", "User:alice,Group:g");
    cr_assert(can("alice", "", "get", "pods", "", "ns1", ""));
    cr_assert(can("bob", "g", "get", "pods", "", "ns1", ""));
    /* replaced: alice is no longer a subject, carol is */
    role_binding("ns1", "b", "Role", "r", "User:carol");
    cr_assert_not(can("alice", "", "get", "pods", "", "ns1", ""));
    cr_assert_not(can("bob", "g", "get", "pods", "", "ns1", ""));
    cr_assert(can("carol", "", "get", "pods", "", "ns1", ""));
    /* the role changes under the binding */
    role("ns1", "r", "[{\"verbs\":[\"list\"],\"apiGroups\":[\"\"],\"resources\":[\"pods\"]}]");
    cr_assert_not(can("carol", "", "get", "pods", "", "ns1", ""));
    cr_assert(can("carol", "", "list", "pods", "", "ns1", ""));
    cr_assert(ty_rbac_remove(R, "Role", "ns1", "r"));
    cr_assert_not(can("carol", "", "list", "pods", "", "ns1", ""));
    cr_assert(ty_rbac_remove(R, "RoleBinding", "ns1", "b"));
    cr_assert_not(ty_rbac_remove(R, "RoleBinding", "ns1", "b"));
    cr_assert_not(ty_rbac_remove(R, "Pod", "ns1", "b"));
    /* a Role and a ClusterRole of one name are two things */
    cluster_role("r", "[{\"verbs\":[\"get\"],\"apiGroups\":[\"\"],\"resources\":[\"pods\"]}]");
    role_binding("ns1", "b", "Role", "r", "User:dave");
    cr_assert_not(can("dave", "", "get", "pods", "", "ns1", ""));
    role_binding("ns1", "b", "ClusterRole", "r", "User:dave");
    cr_assert(can("dave", "", "get", "pods", "", "ns1", ""));
}

static void load_bootstrap(void)
{
    json_t *all = ty_rbac_bootstrap_objects();
    size_t i;
    json_t *o;
    json_array_foreach(all, i, o) {
        ty_error err = TY_ERROR_INIT;
        cr_assert_eq(ty_rbac_put(R, o, &err), 0, "bootstrap object %zu: %s", i, err.msg);
    }
    json_decref(all);
}

Test(rbac, builtin_roles_aggregate_kubeflow_and_kueue)
{
    load_bootstrap();
    role_binding("team-a", "v", "ClusterRole", "view", "User:viewer");
    role_binding("team-a", "e", "ClusterRole", "edit", "User:editor");
    role_binding("team-a", "a", "ClusterRole", "admin", "User:owner");
    const char *kf = "kubeflow.org", *kq = "kueue.x-k8s.io";
    cr_assert(can("viewer", "", "list", "pytorchjobs", "", "team-a", kf));
    cr_assert(can("viewer", "", "get", "tfjobs", "status", "team-a", kf));
    cr_assert(can("viewer", "", "watch", "localqueues", "", "team-a", kq));
    cr_assert(can("viewer", "", "get", "pods", "log", "team-a", ""));
    cr_assert_not(can("viewer", "", "create", "pytorchjobs", "", "team-a", kf));
    cr_assert_not(can("viewer", "", "get", "secrets", "", "team-a", ""));
    cr_assert_not(can("viewer", "", "list", "pytorchjobs", "", "team-b", kf));
    cr_assert(can("editor", "", "create", "pytorchjobs", "", "team-a", kf));
    cr_assert(can("editor", "", "delete", "pods", "", "team-a", ""));
    cr_assert(can("editor", "", "get", "secrets", "", "team-a", ""));
    cr_assert(can("editor", "", "list", "localqueues", "", "team-a", kq));
    cr_assert_not(can("editor", "", "create", "rolebindings", "", "team-a", TY_RBAC_GROUP));
    cr_assert_not(can("editor", "", "create", "localqueues", "", "team-a", kq));
    cr_assert(can("owner", "", "create", "rolebindings", "", "team-a", TY_RBAC_GROUP));
    cr_assert(can("owner", "", "update", "mpijobs", "", "team-a", kf));
    cr_assert(can("owner", "", "get", "clusterqueues", "", "team-a", kq));
    cr_assert_not(can("viewer", "", "get", "clusterqueues", "", "team-a", kq));
    /* every authenticated user: discovery, health, self reviews */
    cr_assert(can_path("anyone", "system:authenticated", "get", "/apis/kubeflow.org/v1"));
    cr_assert(can_path("anyone", "system:authenticated", "get", "/version"));
    cr_assert_not(can_path("anyone", "system:authenticated", "get", "/metrics"));
    cr_assert(can_path("", "system:unauthenticated", "get", "/healthz"));
    cr_assert_not(can_path("", "system:unauthenticated", "get", "/apis"));
    cr_assert(can("anyone", "system:authenticated", "create", "selfsubjectaccessreviews", "", "",
                  "authorization.k8s.io"));
    cr_assert(can("root", "system:masters", "create", "nodes", "", "", ""));
    /* the aggregated rules are there to write back */
    json_t *rules = ty_rbac_cluster_role_rules(R, "view");
    TY_AUTOFREE char *text = json_dumps(rules, JSON_COMPACT);
    cr_assert(strstr(text, "\"pytorchjobs\""), "%s", text);
    json_decref(rules);
    cr_assert_null(ty_rbac_cluster_role_rules(R, "nope"));
}

Test(rbac, aggregation_follows_changes)
{
    load_bootstrap();
    role_binding("team-a", "v", "ClusterRole", "view", "User:viewer");
    role_binding("team-a", "a", "ClusterRole", "admin", "User:owner");
    const char *agg = "{\"kind\":\"ClusterRole\",\"metadata\":{\"name\":\"widgets\",\"labels\":"
                      "{\"rbac.authorization.k8s.io/aggregate-to-%s\":\"true\"}},\"rules\":"
                      "[{\"verbs\":[\"get\"],\"apiGroups\":[\"example.com\"],"
                      "\"resources\":[\"widgets\"]}]}";
    put(agg, "view");
    /* view -> edit -> admin: through two aggregated roles */
    cr_assert(can("viewer", "", "get", "widgets", "", "team-a", "example.com"));
    cr_assert(can("owner", "", "get", "widgets", "", "team-a", "example.com"));
    put(agg, "nothing");
    cr_assert_not(can("viewer", "", "get", "widgets", "", "team-a", "example.com"));
    cr_assert_not(can("owner", "", "get", "widgets", "", "team-a", "example.com"));
    put(agg, "admin");
    cr_assert_not(can("viewer", "", "get", "widgets", "", "team-a", "example.com"));
    cr_assert(can("owner", "", "get", "widgets", "", "team-a", "example.com"));
    cr_assert(ty_rbac_remove(R, "ClusterRole", NULL, "widgets"));
    cr_assert_not(can("owner", "", "get", "widgets", "", "team-a", "example.com"));
    /* a rule that two sources share appears once */
    json_t *rules = ty_rbac_cluster_role_rules(R, "admin");
    size_t n = json_array_size(rules);
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            cr_assert_not(json_equal(json_array_get(rules, i), json_array_get(rules, j)));
    json_decref(rules);
}

static char *forbidden(const char *name, const char *verb, const char *group,
                       const char *resource, const char *sub, const char *ns, const char *obj,
                       const char *path)
{
    who w;
    ty_rbac_request q = {.verb = verb, .group = group, .resource = resource, .subresource = sub,
                         .ns = ns, .name = obj, .path = path};
    return ty_rbac_forbidden_message(user(&w, name, NULL), &q, NULL);
}

Test(rbac, forbidden_messages)
{
    char *m = forbidden("alice", "create", "", "pods", NULL, "team-b", NULL, NULL);
    cr_assert_str_eq(m, "pods is forbidden: User \"alice\" cannot create resource \"pods\" in API "
                        "group \"\" in the namespace \"team-b\"");
    free(m);
    m = forbidden("alice", "list", "", "nodes", NULL, NULL, NULL, NULL);
    cr_assert_str_eq(m, "nodes is forbidden: User \"alice\" cannot list resource \"nodes\" in API "
                        "group \"\" at the cluster scope");
    free(m);
    m = forbidden("alice", "get", "", "pods", "log", "team-b", "w-0", NULL);
    cr_assert_str_eq(m, "pods \"w-0\" is forbidden: User \"alice\" cannot get resource "
                        "\"pods/log\" in API group \"\" in the namespace \"team-b\"");
    free(m);
    m = forbidden("alice", "delete", "kubeflow.org", "pytorchjobs", NULL, "team-b", "j", NULL);
    cr_assert_str_eq(m, "pytorchjobs.kubeflow.org \"j\" is forbidden: User \"alice\" cannot "
                        "delete resource \"pytorchjobs\" in API group \"kubeflow.org\" in the "
                        "namespace \"team-b\"");
    free(m);
    m = forbidden("alice", "get", NULL, NULL, NULL, NULL, NULL, "/metrics");
    cr_assert_str_eq(m, "forbidden: User \"alice\" cannot get path \"/metrics\"");
    free(m);
    who w;
    ty_rbac_request q = {.verb = "get", .resource = "pods", .ns = "x"};
    m = ty_rbac_forbidden_message(user(&w, "a", NULL), &q, "RBAC: role.rbac.authorization.k8s.io "
                                  "\"r\" not found");
    cr_assert_str_eq(m, "pods is forbidden: User \"a\" cannot get resource \"pods\" in API group "
                        "\"\" in the namespace \"x\": RBAC: role.rbac.authorization.k8s.io \"r\" "
                        "not found");
    free(m);
}

Test(rbac, verbs)
{
    cr_assert_str_eq(ty_rbac_verb("GET", true, false, false), "list");
    cr_assert_str_eq(ty_rbac_verb("GET", true, false, true), "watch");
    cr_assert_str_eq(ty_rbac_verb("GET", true, true, true), "watch");
    cr_assert_str_eq(ty_rbac_verb("GET", true, true, false), "get");
    cr_assert_str_eq(ty_rbac_verb("POST", true, false, false), "create");
    cr_assert_str_eq(ty_rbac_verb("PUT", true, true, false), "update");
    cr_assert_str_eq(ty_rbac_verb("PATCH", true, true, false), "patch");
    cr_assert_str_eq(ty_rbac_verb("DELETE", true, true, false), "delete");
    cr_assert_str_eq(ty_rbac_verb("DELETE", true, false, false), "deletecollection");
    cr_assert_str_eq(ty_rbac_verb("GET", false, false, false), "get");
    cr_assert_str_eq(ty_rbac_verb("POST", false, false, false), "post");
    cr_assert_null(ty_rbac_verb("BREW", true, false, false));
}

static char *validate_err(const char *text)
{
    json_t *o = json_loads(text, 0, NULL);
    cr_assert(o, "%s", text);
    ty_error err = TY_ERROR_INIT;
    int rc = ty_rbac_put(R, o, &err);
    json_decref(o);
    cr_assert_eq(rc, -1, "%s accepted", text);
    return err.msg;
}

#define CR "{\"kind\":\"ClusterRole\",\"metadata\":{\"name\":\"c\"},\"rules\":["
#define RL "{\"kind\":\"Role\",\"metadata\":{\"name\":\"r\",\"namespace\":\"n\"},\"rules\":["
#define RB "{\"kind\":\"RoleBinding\",\"metadata\":{\"name\":\"b\",\"namespace\":\"n\"},"
#define CRB "{\"kind\":\"ClusterRoleBinding\",\"metadata\":{\"name\":\"b\"},"
#define REF(k) "\"roleRef\":{\"apiGroup\":\"rbac.authorization.k8s.io\",\"kind\":\"" k "\"," \
               "\"name\":\"x\"}"

Test(rbac, validation)
{
    static const char *const cases[][2] = {
        {CR "{\"apiGroups\":[\"\"],\"resources\":[\"pods\"]}]}",
         "rules[0].verbs: Required value: verbs must contain at least one value"},
        {CR "{\"verbs\":[\"get\"],\"resources\":[\"pods\"]}]}",
         "rules[0].apiGroups: Required value: resource rules must supply at least one api group"},
        {CR "{\"verbs\":[\"get\"],\"apiGroups\":[\"\"]}]}",
         "rules[0].resources: Required value: resource rules must supply at least one resource"},
        {RL "{\"verbs\":[\"get\"],\"nonResourceURLs\":[\"/x\"]}]}",
         "rules[0].nonResourceURLs: Invalid value: namespaced rules cannot apply to "
         "non-resource URLs"},
        {CR "{\"verbs\":[\"get\"],\"resources\":[\"pods\"],\"nonResourceURLs\":[\"/x\"]}]}",
         "rules[0].nonResourceURLs: Invalid value: rules cannot apply to both regular resources "
         "and non-resource URLs"},
        {CR "{\"verbs\":[\"get\",1],\"apiGroups\":[\"\"],\"resources\":[\"pods\"]}]}",
         "rules[0].verbs[1]: Invalid value: must be a string"},
        {"{\"kind\":\"Role\",\"metadata\":{\"name\":\"r\"}}", "metadata.namespace: Required value"},
        {CRB REF("Role") "}",
         "roleRef.kind: Unsupported value: \"Role\": supported values: \"ClusterRole\""},
        {RB "\"roleRef\":{\"apiGroup\":\"x\",\"kind\":\"Role\",\"name\":\"x\"}}",
         "roleRef.apiGroup: Unsupported value: \"x\": supported values: "
         "\"rbac.authorization.k8s.io\""},
        {RB REF("Role") ",\"subjects\":[{\"kind\":\"Robot\",\"name\":\"x\"}]}",
         "subjects[0].kind: Unsupported value: \"Robot\": supported values: \"ServiceAccount\", "
         "\"User\", \"Group\""},
        {RB REF("Role") ",\"subjects\":[{\"kind\":\"User\",\"name\":\"x\"}]}",
         "subjects[0].apiGroup: Unsupported value: \"\": supported values: "
         "\"rbac.authorization.k8s.io\""},
        {CRB REF("ClusterRole") ",\"subjects\":[{\"kind\":\"ServiceAccount\",\"name\":\"x\"}]}",
         "subjects[0].namespace: Required value"},
        {"{\"kind\":\"ClusterRole\",\"metadata\":{\"name\":\"c\"},\"aggregationRule\":{}}",
         "aggregationRule.clusterRoleSelectors: Required value: at least one clusterRoleSelector "
         "required if aggregationRule is non-nil"},
        {"{\"kind\":\"Pod\",\"metadata\":{\"name\":\"c\"}}",
         "kind: Unsupported value: \"Pod\": not an RBAC kind"},
    };
    for (size_t i = 0; i < TY_ARRAY_LEN(cases); i++) {
        char *msg = validate_err(cases[i][0]);
        cr_assert_str_eq(msg, cases[i][1], "case %zu", i);
        free(msg);
    }
    /* nothing was indexed by the failures */
    cr_assert_not(ty_rbac_remove(R, "ClusterRole", NULL, "c"));
    cr_assert_not(ty_rbac_remove(R, "Role", "n", "r"));
}

static int escalate(const char *name, const char *groups, const char *text, char **msg)
{
    who w;
    json_t *o = json_loads(text, 0, NULL);
    cr_assert(o, "%s", text);
    ty_error err = TY_ERROR_INIT;
    int rc = ty_rbac_check_escalation(R, user(&w, name, groups), o, &err);
    json_decref(o);
    if (msg)
        *msg = err.msg;
    else
        ty_error_clear(&err);
    return rc;
}

Test(rbac, escalation)
{
    load_bootstrap();
    role_binding("team-a", "e", "ClusterRole", "edit", "User:editor");
    role_binding("team-a", "a", "ClusterRole", "admin", "User:owner");
    /* within what one holds */
    cr_assert_eq(escalate("owner", "", RL "{\"verbs\":[\"get\",\"list\"],\"apiGroups\":[\"\"],"
                          "\"resources\":[\"pods\",\"pods/log\"]}]}", NULL), -1,
                 "team-a only");
    const char *in_a = "{\"kind\":\"Role\",\"metadata\":{\"name\":\"r\",\"namespace\":\"team-a\"},"
                       "\"rules\":[%s]}";
    TY_AUTOFREE char *ok_role = ty_asprintf(in_a, "{\"verbs\":[\"get\",\"list\"],\"apiGroups\":"
                                            "[\"\"],\"resources\":[\"pods\",\"pods/log\"]}");
    cr_assert_eq(escalate("owner", "", ok_role, NULL), 0);
    cr_assert_eq(escalate("editor", "", ok_role, NULL), 0);
    /* more than one holds */
    TY_AUTOFREE char *big = ty_asprintf(in_a, "{\"verbs\":[\"create\",\"delete\"],\"apiGroups\":"
                                        "[\"\"],\"resources\":[\"nodes\"]},{\"verbs\":[\"get\"],"
                                        "\"apiGroups\":[\"\"],\"resources\":[\"pods\"]}");
    char *msg = NULL;
    cr_assert_eq(escalate("owner", "team-x,system:authenticated", big, &msg), -1);
    cr_assert_str_eq(msg, "roles.rbac.authorization.k8s.io \"r\" is forbidden: user \"owner\" "
                          "(groups=[\"team-x\" \"system:authenticated\"]) is attempting to grant "
                          "RBAC permissions not currently held:\n{APIGroups:[\"\"], "
                          "Resources:[\"nodes\"], Verbs:[\"create\" \"delete\"]}");
    free(msg);
    /* escalate on roles lifts it */
    role("team-a", "esc", "[{\"verbs\":[\"escalate\"],\"apiGroups\":[\"" TY_RBAC_GROUP "\"],"
                          "\"resources\":[\"roles\"]}]");
    role_binding("team-a", "esc", "Role", "esc", "User:owner");
    cr_assert_eq(escalate("owner", "", big, NULL), 0);
    /* binding: the editor cannot hand out admin, the owner can, bind lifts it */
    const char *bind = "{\"kind\":\"RoleBinding\",\"metadata\":{\"name\":\"b\","
                       "\"namespace\":\"team-a\"},\"roleRef\":{\"apiGroup\":"
                       "\"rbac.authorization.k8s.io\",\"kind\":\"ClusterRole\",\"name\":"
                       "\"%s\"},\"subjects\":[{\"kind\":\"User\",\"apiGroup\":"
                       "\"rbac.authorization.k8s.io\",\"name\":\"bob\"}]}";
    TY_AUTOFREE char *admin_in_a = ty_asprintf(bind, "admin");
    cr_assert_eq(escalate("editor", "", admin_in_a, &msg), -1);
    cr_assert(strstr(msg, "rolebindings.rbac.authorization.k8s.io \"b\" is forbidden: user "
                          "\"editor\" (groups=[]) is attempting to grant RBAC permissions not "
                          "currently held:\n"), "%s", msg);
    free(msg);
    cr_assert_eq(escalate("owner", "", admin_in_a, NULL), 0);
    role("team-a", "binder", "[{\"verbs\":[\"bind\"],\"apiGroups\":[\"" TY_RBAC_GROUP "\"],"
                             "\"resources\":[\"clusterroles\"],\"resourceNames\":[\"admin\"]}]");
    role_binding("team-a", "binder", "Role", "binder", "User:editor");
    cr_assert_eq(escalate("editor", "", admin_in_a, NULL), 0);
    /* a binding to a missing role */
    TY_AUTOFREE char *bind_gone = ty_asprintf(bind, "gone");
    cr_assert_eq(escalate("owner", "", bind_gone, &msg), -1);
    cr_assert_str_eq(msg, "rolebindings.rbac.authorization.k8s.io \"b\" is forbidden: "
                          "clusterrole.rbac.authorization.k8s.io \"gone\" not found");
    free(msg);
    /* aggregationRule: cluster-admin only; system:masters always */
    const char *aggr = "{\"kind\":\"ClusterRole\",\"metadata\":{\"name\":\"agg\"},"
                       "\"aggregationRule\":{\"clusterRoleSelectors\":[{\"matchLabels\":"
                       "{\"a\":\"b\"}}]}}";
    cr_assert_eq(escalate("owner", "", aggr, &msg), -1);
    cr_assert_str_eq(msg, "clusterroles.rbac.authorization.k8s.io \"agg\" is forbidden: must "
                          "have cluster-admin privileges to use the aggregationRule");
    free(msg);
    cr_assert_eq(escalate("root", "system:masters", aggr, NULL), 0);
    cluster_binding("root2", "cluster-admin", "User:root2");
    cr_assert_eq(escalate("root2", "", aggr, NULL), 0);
    cr_assert_eq(escalate("root2", "", big, NULL), 0);
}

Test(rbac, covers_subresources_and_urls)
{
    cluster_role("own", "[{\"verbs\":[\"get\"],\"apiGroups\":[\"apps\"],"
                        "\"resources\":[\"*/scale\"]},"
                        "{\"verbs\":[\"get\"],\"nonResourceURLs\":[\"/apis/*\"]},"
                        "{\"verbs\":[\"get\"],\"apiGroups\":[\"\"],\"resources\":[\"secrets\"],"
                        "\"resourceNames\":[\"s1\"]}]");
    cluster_binding("own", "own", "User:u");
    static const struct {
        const char *rules;
        int rc;
    } cases[] = {
        {"{\"verbs\":[\"get\"],\"apiGroups\":[\"apps\"],\"resources\":[\"deployments/scale\"]}", 0},
        {"{\"verbs\":[\"get\"],\"apiGroups\":[\"apps\"],\"resources\":[\"deployments\"]}", -1},
        {"{\"verbs\":[\"get\"],\"nonResourceURLs\":[\"/apis/v1\",\"/apis/*\"]}", 0},
        {"{\"verbs\":[\"get\"],\"nonResourceURLs\":[\"/apis\"]}", -1},
        {"{\"verbs\":[\"get\"],\"apiGroups\":[\"\"],\"resources\":[\"secrets\"],"
         "\"resourceNames\":[\"s1\"]}", 0},
        {"{\"verbs\":[\"get\"],\"apiGroups\":[\"\"],\"resources\":[\"secrets\"]}", -1},
        {"{\"verbs\":[\"get\"],\"apiGroups\":[\"\"],\"resources\":[\"secrets\"],"
         "\"resourceNames\":[\"s1\",\"s2\"]}", -1},
    };
    for (size_t i = 0; i < TY_ARRAY_LEN(cases); i++) {
        TY_AUTOFREE char *obj = ty_asprintf(CR "%s]}", cases[i].rules);
        cr_assert_eq(escalate("u", "", obj, NULL), cases[i].rc, "case %zu", i);
    }
}

Test(rbac, reviews)
{
    load_bootstrap();
    role_binding("team-a", "e", "ClusterRole", "edit", "User:alice");
    who w;
    ty_rbac_user *alice = user(&w, "alice", "team-a,system:authenticated");
    json_t *spec = json_pack("{s:{s:s, s:s, s:s, s:s}}", "resourceAttributes", "namespace",
                             "team-a", "verb", "create", "group", "kubeflow.org", "resource",
                             "pytorchjobs");
    ty_error err = TY_ERROR_INIT;
    json_t *st = ty_rbac_access_review(R, alice, spec, &err);
    cr_assert(st, "%s", err.msg);
    cr_assert(json_is_true(json_object_get(st, "allowed")));
    cr_assert_str_eq(json_string_value(json_object_get(st, "reason")),
                     "RBAC: allowed by RoleBinding \"e/team-a\" of ClusterRole \"edit\" to User "
                     "\"alice\"");
    json_decref(st);
    json_object_set_new(json_object_get(spec, "resourceAttributes"), "namespace",
                        json_string("team-b"));
    st = ty_rbac_access_review(R, alice, spec, &err);
    cr_assert(json_is_false(json_object_get(st, "allowed")));
    cr_assert_null(json_object_get(st, "reason"));
    json_decref(st);
    /* SubjectAccessReview: the user from the spec */
    json_object_set_new(spec, "user", json_string("alice"));
    json_object_set_new(json_object_get(spec, "resourceAttributes"), "namespace",
                        json_string("team-a"));
    st = ty_rbac_access_review(R, NULL, spec, &err);
    cr_assert(json_is_true(json_object_get(st, "allowed")));
    json_decref(st);
    json_object_del(spec, "user");
    cr_assert_null(ty_rbac_access_review(R, NULL, spec, &err));
    cr_assert_str_eq(err.msg, "spec.user: Invalid value: \"\": at least one of user or group "
                              "must be specified");
    json_object_set_new(spec, "nonResourceAttributes", json_pack("{s:s}", "path", "/x"));
    cr_assert_null(ty_rbac_access_review(R, alice, spec, &err));
    cr_assert_str_eq(err.msg, "spec.resourceAttributes: Invalid value: exactly one of "
                              "nonResourceAttributes or resourceAttributes must be specified");
    ty_error_clear(&err);
    json_decref(spec);
    spec = json_pack("{s:{s:s, s:s}}", "nonResourceAttributes", "path", "/version", "verb", "get");
    st = ty_rbac_access_review(R, alice, spec, &err);
    cr_assert(json_is_true(json_object_get(st, "allowed")));
    json_decref(st);
    json_decref(spec);

    /* can-i --list */
    st = ty_rbac_rules_review(R, alice, "team-a");
    TY_AUTOFREE char *text = json_dumps(st, JSON_COMPACT);
    cr_assert(strstr(text, "\"selfsubjectaccessreviews\""), "%s", text);
    cr_assert(strstr(text, "\"pytorchjobs\""), "%s", text);
    cr_assert(strstr(text, "\"nonResourceURLs\":[\"/api\""), "%s", text);
    cr_assert(json_is_false(json_object_get(st, "incomplete")));
    json_decref(st);
    st = ty_rbac_rules_review(R, alice, "team-b");
    free(text);
    text = json_dumps(st, JSON_COMPACT);
    cr_assert_null(strstr(text, "\"pytorchjobs\""), "%s", text);
    json_decref(st);
    role_binding("team-b", "dangling", "Role", "gone", "User:alice");
    st = ty_rbac_rules_review(R, alice, "team-b");
    cr_assert(json_is_true(json_object_get(st, "incomplete")));
    cr_assert_str_eq(json_string_value(json_object_get(st, "evaluationError")),
                     "role.rbac.authorization.k8s.io \"gone\" not found");
    json_decref(st);
}

Test(rbac, bootstrap_objects_are_valid)
{
    json_t *all = ty_rbac_bootstrap_objects();
    cr_assert_gt(json_array_size(all), 10);
    size_t i;
    json_t *o;
    json_array_foreach(all, i, o) {
        ty_error err = TY_ERROR_INIT;
        cr_assert_eq(ty_rbac_validate(o, &err), 0, "%zu: %s", i, err.msg);
        cr_assert_str_eq(json_string_value(json_object_get(o, "apiVersion")),
                         "rbac.authorization.k8s.io/v1");
    }
    json_decref(all);
}

/* The index decides as a scan of every binding does, over a mix of subjects, scopes and
 * roles (missing ones included). */
Test(rbac, index_agrees_with_scan)
{
    load_bootstrap();
    static const char *const res[] = {"pods", "services", "configmaps"};
    static const char *const verbs[] = {"get", "list", "create", "delete"};
    for (int i = 0; i < 12; i++) {
        char ns[16], name[16], rules[256];
        snprintf(ns, sizeof ns, "ns%d", i % 3);
        snprintf(name, sizeof name, "r%d", i);
        snprintf(rules, sizeof rules, "[{\"verbs\":[\"%s\"],\"apiGroups\":[\"\"],"
                 "\"resources\":[\"%s\"]}]", verbs[i % 4], res[i % 3]);
        role(ns, name, rules);
    }
    for (int i = 0; i < 40; i++) {
        char ns[16], name[16], ref[16], subs[128];
        snprintf(ns, sizeof ns, "ns%d", i % 3);
        snprintf(name, sizeof name, "b%d", i);
        snprintf(ref, sizeof ref, i % 5 == 0 ? "view" : "r%d", (i * 7) % 14);
        snprintf(subs, sizeof subs, "User:u%d,Group:g%d,ServiceAccount:s%d", i % 6, i % 4,
                 i % 3);
        role_binding(ns, name, i % 5 == 0 ? "ClusterRole" : "Role", ref, subs);
    }
    cluster_binding("cb", "edit", "Group:g3");
    int allowed = 0;
    for (int u = 0; u < 8; u++)
        for (int g = 0; g < 5; g++)
            for (int n = 0; n < 4; n++)
                for (int v = 0; v < 4; v++)
                    for (int x = 0; x < 3; x++) {
                        char uname[64], gname[16], ns[16];
                        if (u < 6)
                            snprintf(uname, sizeof uname, "u%d", u);
                        else
                            snprintf(uname, sizeof uname, "system:serviceaccount:ns%d:s%d",
                                     n % 3, u - 6);
                        snprintf(gname, sizeof gname, "g%d", g);
                        snprintf(ns, sizeof ns, "ns%d", n);
                        who w;
                        ty_rbac_user *usr = user(&w, uname, gname);
                        ty_rbac_request q = {.verb = verbs[v], .group = "", .resource = res[x],
                                             .ns = ns};
                        bool a = ty_rbac_authorize(R, usr, &q, NULL);
                        cr_assert_eq(a, ty_rbac_authorize_scan(R, usr, &q),
                                     "%s %s %s %s in %s", uname, gname, verbs[v], res[x], ns);
                        allowed += a;
                    }
    cr_assert_gt(allowed, 50);
    cr_assert_lt(allowed, 8 * 5 * 4 * 4 * 3 - 50);
}

/* A binding that names the user twice (by name and by group) is walked once, and described by
 * its first subject that applies, as kube-apiserver's appliesTo. */
Test(rbac, binding_walked_once)
{
    role_binding("ns1", "both", "Role", "missing", "Group:team-a,User:alice");
    who w;
    ty_rbac_user *alice = user(&w, "alice", "team-a");
    ty_rbac_request q = {.verb = "get", .group = "", .resource = "pods", .ns = "ns1"};
    char *reason = NULL;
    cr_assert_not(ty_rbac_authorize(R, alice, &q, &reason));
    cr_assert_str_eq(reason, "RBAC: role.rbac.authorization.k8s.io \"missing\" not found");
    free(reason);
    role("ns1", "missing", "[{\"verbs\":[\"get\"],\"apiGroups\":[\"\"],\"resources\":[\"pods\"]}]");
    cr_assert(ty_rbac_authorize(R, alice, &q, &reason));
    cr_assert_str_eq(reason, "RBAC: allowed by RoleBinding \"both/ns1\" of Role \"missing\" to "
                             "Group \"team-a\"");
    free(reason);
    json_t *st = ty_rbac_rules_review(R, alice, "ns1");
    cr_assert_eq(json_array_size(json_object_get(st, "resourceRules")), 1);
    json_decref(st);
}
