/* An RBAC decision (auth/rbac.h) with ROLEBINDINGS RoleBindings and ROLES Roles over NS
 * namespaces, plus the built-in ClusterRoles and bindings (bench/rbac.sh runs it).
 *
 *   rbac_bench [ROLEBINDINGS [ROLES [NS [REQUESTS]]]]     (default 1000 200 50 20000)
 *
 * Each RoleBinding binds a Role of its namespace, or view/edit/admin, to a user (of 300), a
 * group (of 100) and a service account; each Role has 2-5 rules over a few core, kubeflow.org
 * and kueue.x-k8s.io resources. The requests: a user with two groups and system:authenticated,
 * a random namespace, verb and resource. Prints for the index (ty_rbac_authorize) and the scan
 * over every binding (ty_rbac_authorize_scan, the baseline) the median and p99 time of one
 * decision, the share allowed, and the number of requests where the two disagree (must be 0);
 * and the time to build the index object by object, 200 more ClusterRoles included (a quarter
 * of them aggregated into view). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/rbac.h"
#include "base/mem.h"

static uint64_t seed = 0x9e3779b97f4a7c15ULL;

static uint32_t rnd(uint32_t n)
{
    seed ^= seed << 13;
    seed ^= seed >> 7;
    seed ^= seed << 17;
    return (uint32_t)(seed % n);
}

static const char *const verbs[] = {"get", "list", "watch", "create", "update", "patch",
                                    "delete", "deletecollection"};
static const struct {
    const char *group, *resource, *sub;
} resources[] = {
    {"", "pods", NULL},          {"", "pods", "log"},         {"", "services", NULL},
    {"", "configmaps", NULL},    {"", "secrets", NULL},       {"", "events", NULL},
    {"", "persistentvolumeclaims", NULL}, {"kubeflow.org", "pytorchjobs", NULL},
    {"kubeflow.org", "tfjobs", NULL}, {"kubeflow.org", "pytorchjobs", "status"},
    {"kueue.x-k8s.io", "localqueues", NULL}, {"kueue.x-k8s.io", "workloads", NULL},
};

static void put(ty_rbac *r, json_t *o)
{
    ty_error err = TY_ERROR_INIT;
    if (ty_rbac_put(r, o, &err) < 0) {
        fprintf(stderr, "rbac_bench: %s\n", err.msg);
        exit(1);
    }
    json_decref(o);
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct req {
    ty_rbac_request q;
    ty_rbac_user u;
    const char *groups[3];
    char name[32], g1[32], g2[32], ns[32];
} req;

int main(int argc, char **argv)
{
    int nb = argc > 1 ? atoi(argv[1]) : 1000, nr = argc > 2 ? atoi(argv[2]) : 200;
    int nns = argc > 3 ? atoi(argv[3]) : 50, nq = argc > 4 ? atoi(argv[4]) : 20000;
    if (nb < 1 || nr < 1 || nns < 1 || nq < 1) {
        fprintf(stderr, "usage: rbac_bench [rolebindings [roles [namespaces [requests]]]]\n");
        return 2;
    }
    double t_load = now_ns();
    ty_rbac *r = ty_rbac_new();
    json_t *boot = ty_rbac_bootstrap_objects();
    for (size_t i = 0; i < json_array_size(boot); i++)
        put(r, json_incref(json_array_get(boot, i)));
    json_decref(boot);
    for (int i = 0; i < nr; i++) {
        json_t *rules = json_array();
        for (uint32_t k = 0, n = 2 + rnd(4); k < n; k++) {
            int res = (int)rnd(TY_ARRAY_LEN(resources));
            json_t *vs = json_array();
            for (uint32_t v = 0, nv = 1 + rnd(4); v < nv; v++)
                json_array_append_new(vs, json_string(verbs[rnd(TY_ARRAY_LEN(verbs))]));
            char full[96];
            snprintf(full, sizeof full, "%s%s%s", resources[res].resource,
                     resources[res].sub ? "/" : "", resources[res].sub ? resources[res].sub : "");
            json_array_append_new(rules, json_pack("{s:o, s:[s], s:[s]}", "verbs", vs,
                                                   "apiGroups", resources[res].group,
                                                   "resources", full));
        }
        char ns[32], name[32];
        snprintf(ns, sizeof ns, "ns-%d", i % nns);
        snprintf(name, sizeof name, "role-%d", i);
        put(r, json_pack("{s:s, s:{s:s, s:s}, s:o}", "kind", "Role", "metadata", "name", name,
                         "namespace", ns, "rules", rules));
    }
    static const char *const builtin[] = {"view", "edit", "admin"};
    for (int i = 0; i < nb; i++) {
        char ns[32], name[32], ref[32], u[32], g[32], sa[32];
        int nsi = i % nns;
        snprintf(ns, sizeof ns, "ns-%d", nsi);
        snprintf(name, sizeof name, "binding-%d", i);
        snprintf(u, sizeof u, "user-%u", rnd(300));
        snprintf(g, sizeof g, "group-%u", rnd(100));
        snprintf(sa, sizeof sa, "sa-%u", rnd(20));
        bool cluster = rnd(4) == 0;
        /* a Role of this namespace: role-k with k % nns == nsi */
        int k = nsi + nns * (int)rnd((uint32_t)((nr - nsi + nns - 1) / nns > 0
                                                     ? (nr - nsi + nns - 1) / nns : 1));
        snprintf(ref, sizeof ref, "%s", cluster ? builtin[rnd(3)] : "");
        if (!cluster)
            snprintf(ref, sizeof ref, "role-%d", k);
        put(r, json_pack("{s:s, s:{s:s, s:s}, s:{s:s, s:s, s:s}, s:[{s:s, s:s, s:s}, "
                         "{s:s, s:s, s:s}, {s:s, s:s}]}",
                         "kind", "RoleBinding", "metadata", "name", name, "namespace", ns,
                         "roleRef", "apiGroup", TY_RBAC_GROUP, "kind",
                         cluster ? "ClusterRole" : "Role", "name", ref, "subjects",
                         "kind", "User", "apiGroup", TY_RBAC_GROUP, "name", u,
                         "kind", "Group", "apiGroup", TY_RBAC_GROUP, "name", g,
                         "kind", "ServiceAccount", "name", sa));
    }
    /* 200 more ClusterRoles, a quarter of them aggregated into view. */
    for (int i = 0; i < 200; i++) {
        char name[32];
        snprintf(name, sizeof name, "extra-%d", i);
        json_t *labels = json_object();
        if (i % 4 == 0)
            json_object_set_new(labels, "rbac.authorization.k8s.io/aggregate-to-view",
                                json_string("true"));
        put(r, json_pack("{s:s, s:{s:s, s:o}, s:[{s:[s], s:[s], s:[s]}]}", "kind", "ClusterRole",
                         "metadata", "name", name, "labels", labels, "rules", "verbs", "get",
                         "apiGroups", "example.com", "resources", name));
    }
    t_load = now_ns() - t_load;
    req *qs = ty_calloc((size_t)nq, sizeof *qs);
    for (int i = 0; i < nq; i++) {
        req *x = &qs[i];
        snprintf(x->name, sizeof x->name, "user-%u", rnd(300));
        snprintf(x->g1, sizeof x->g1, "group-%u", rnd(100));
        snprintf(x->g2, sizeof x->g2, "group-%u", rnd(100));
        snprintf(x->ns, sizeof x->ns, "ns-%u", rnd((uint32_t)nns));
        x->groups[0] = x->g1;
        x->groups[1] = x->g2;
        x->groups[2] = "system:authenticated";
        x->u = (ty_rbac_user){x->name, x->groups, 3};
        int res = (int)rnd(TY_ARRAY_LEN(resources));
        x->q = (ty_rbac_request){.verb = verbs[rnd(TY_ARRAY_LEN(verbs))],
                                 .group = resources[res].group,
                                 .resource = resources[res].resource,
                                 .subresource = resources[res].sub, .ns = x->ns};
    }
    double *t_idx = ty_calloc((size_t)nq, sizeof *t_idx);
    double *t_scan = ty_calloc((size_t)nq, sizeof *t_scan);
    int allowed = 0, disagree = 0;
    for (int i = 0; i < nq; i++) {
        double t0 = now_ns();
        bool a = ty_rbac_authorize(r, &qs[i].u, &qs[i].q, NULL);
        double t1 = now_ns();
        bool b = ty_rbac_authorize_scan(r, &qs[i].u, &qs[i].q);
        double t2 = now_ns();
        t_idx[i] = t1 - t0;
        t_scan[i] = t2 - t1;
        allowed += a;
        disagree += a != b;
    }
    qsort(t_idx, (size_t)nq, sizeof *t_idx, cmp_d);
    qsort(t_scan, (size_t)nq, sizeof *t_scan, cmp_d);
    size_t mid = (size_t)nq / 2, p99 = (size_t)nq * 99 / 100;
    printf("rbac: %d RoleBindings, %d Roles, %d namespaces, %d requests (%.0f%% allowed)\n", nb,
           nr, nns, nq, 100.0 * allowed / nq);
    printf("index built from every object, one ty_rbac_put each: %.1f ms\n", t_load / 1e6);
    printf("index (ty_rbac_authorize):     median %.2f us  p99 %.2f us\n", t_idx[mid] / 1e3,
           t_idx[p99] / 1e3);
    printf("scan of every binding (base):  median %.2f us  p99 %.2f us\n", t_scan[mid] / 1e3,
           t_scan[p99] / 1e3);
    printf("speedup (median): %.1fx; decisions that differ: %d\n", t_scan[mid] / t_idx[mid],
           disagree);
    free(t_idx);
    free(t_scan);
    free(qs);
    ty_rbac_free(r);
    return disagree ? 1 : 0;
}
