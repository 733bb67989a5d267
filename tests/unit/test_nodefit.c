/* One node fit (sched/nodefit.h): the rules table by table, then the scheduling core and gang
 * placement (the binder's and the job controller's) against each other on random clusters:
 * whatever the core admits onto nodes, placement accepts on exactly those nodes, and whatever
 * placement can fit, the core admits. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "controllers/placement.h"
#include "sched/nodefit.h"
#include "sched/sched.h"

static json_t *parse(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, 0, &e);
    cr_assert_not_null(v, "bad test JSON: %s: %s", e.text, text);
    return v;
}

/* Whether a pod spec's required node affinity matches a node with these labels (JSON). */
static bool affinity_fits(const char *pod_spec, const char *node_name, const char *labels)
{
    json_t *spec = parse(pod_spec), *l = parse(labels);
    ty_nodefit_affinity *a = ty_placement_affinity(spec);
    size_t n;
    ty_nodefit_label *nl = ty_placement_labels(l, &n);
    bool ok = ty_nodefit_affinity_matches(a, node_name, nl, n);
    free(a);
    free(nl);
    json_decref(spec);
    json_decref(l);
    return ok;
}

#define AFF(terms)                                                                               \
    "{\"affinity\": {\"nodeAffinity\": {\"requiredDuringSchedulingIgnoredDuringExecution\": "   \
    "{\"nodeSelectorTerms\": " terms "}}}}"
#define EXPR(key, op, values)                                                                    \
    "{\"key\": \"" key "\", \"operator\": \"" op "\", \"values\": " values "}"

Test(nodefit, required_affinity_operators)
{
    static const struct {
        const char *spec, *node, *labels;
        bool fits;
    } cases[] = {
        {"{}", "n", "{}", true},
        {AFF("[{\"matchExpressions\": [" EXPR("zone", "In", "[\"a\", \"b\"]") "]}]"), "n",
         "{\"zone\": \"b\"}", true},
        {AFF("[{\"matchExpressions\": [" EXPR("zone", "In", "[\"a\"]") "]}]"), "n",
         "{\"zone\": \"b\"}", false},
        {AFF("[{\"matchExpressions\": [" EXPR("zone", "In", "[\"a\"]") "]}]"), "n", "{}", false},
        {AFF("[{\"matchExpressions\": [" EXPR("zone", "NotIn", "[\"a\"]") "]}]"), "n", "{}",
         true},
        {AFF("[{\"matchExpressions\": [" EXPR("zone", "NotIn", "[\"a\"]") "]}]"), "n",
         "{\"zone\": \"a\"}", false},
        {AFF("[{\"matchExpressions\": [" EXPR("gpu", "Exists", "[]") "]}]"), "n",
         "{\"gpu\": \"\"}", true},
        {AFF("[{\"matchExpressions\": [" EXPR("gpu", "Exists", "[]") "]}]"), "n", "{}", false},
        {AFF("[{\"matchExpressions\": [" EXPR("gpu", "DoesNotExist", "[]") "]}]"), "n", "{}",
         true},
        {AFF("[{\"matchExpressions\": [" EXPR("gpu", "DoesNotExist", "[]") "]}]"), "n",
         "{\"gpu\": \"x\"}", false},
        {AFF("[{\"matchExpressions\": [" EXPR("tier", "Gt", "[\"2\"]") "]}]"), "n",
         "{\"tier\": \"3\"}", true},
        {AFF("[{\"matchExpressions\": [" EXPR("tier", "Gt", "[\"3\"]") "]}]"), "n",
         "{\"tier\": \"3\"}", false},
        {AFF("[{\"matchExpressions\": [" EXPR("tier", "Lt", "[\"3\"]") "]}]"), "n",
         "{\"tier\": \"-1\"}", true},
        /* Gt/Lt compare integers only: anything else matches nothing */
        {AFF("[{\"matchExpressions\": [" EXPR("tier", "Lt", "[\"3\"]") "]}]"), "n",
         "{\"tier\": \"1x\"}", false},
        {AFF("[{\"matchExpressions\": [" EXPR("tier", "Gt", "[\"a\"]") "]}]"), "n",
         "{\"tier\": \"5\"}", false},
        {AFF("[{\"matchExpressions\": [" EXPR("tier", "Gt", "[\"1\", \"2\"]") "]}]"), "n",
         "{\"tier\": \"5\"}", false},
        {AFF("[{\"matchExpressions\": [" EXPR("tier", "Gt", "[\"1\"]") "]}]"), "n", "{}", false},
        {AFF("[{\"matchExpressions\": [" EXPR("zone", "Near", "[\"a\"]") "]}]"), "n",
         "{\"zone\": \"a\"}", false},
        /* requirements of a term are ANDed */
        {AFF("[{\"matchExpressions\": [" EXPR("zone", "In", "[\"a\"]") ", " EXPR(
             "gpu", "Exists", "[]") "]}]"),
         "n", "{\"zone\": \"a\"}", false},
        {AFF("[{\"matchExpressions\": [" EXPR("zone", "In", "[\"a\"]") ", " EXPR(
             "gpu", "Exists", "[]") "]}]"),
         "n", "{\"zone\": \"a\", \"gpu\": \"h100\"}", true},
        /* terms are ORed */
        {AFF("[{\"matchExpressions\": [" EXPR("zone", "In", "[\"a\"]") "]}, "
             "{\"matchExpressions\": [" EXPR("zone", "In", "[\"b\"]") "]}]"),
         "n", "{\"zone\": \"b\"}", true},
        /* an empty term matches nothing, and so does an empty list of terms */
        {AFF("[{}]"), "n", "{\"zone\": \"b\"}", false},
        {AFF("[]"), "n", "{}", false},
        /* matchFields: metadata.name only */
        {AFF("[{\"matchFields\": [" EXPR("metadata.name", "In", "[\"n1\"]") "]}]"), "n1", "{}",
         true},
        {AFF("[{\"matchFields\": [" EXPR("metadata.name", "NotIn", "[\"n1\"]") "]}]"), "n1",
         "{}", false},
        {AFF("[{\"matchFields\": [" EXPR("metadata.uid", "In", "[\"n1\"]") "]}]"), "n1", "{}",
         false},
        {AFF("[{\"matchFields\": [" EXPR("metadata.name", "In", "[\"n1\"]") "], "
             "\"matchExpressions\": [" EXPR("zone", "In", "[\"a\"]") "]}]"),
         "n1", "{\"zone\": \"b\"}", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        cr_expect_eq(affinity_fits(cases[i].spec, cases[i].node, cases[i].labels), cases[i].fits,
                     "case %zu: %s on %s %s", i, cases[i].spec, cases[i].node, cases[i].labels);
}

Test(nodefit, tolerations_and_taints)
{
    static const struct {
        ty_nodefit_toleration tol;
        ty_nodefit_taint taint;
        bool tolerates;
    } cases[] = {
        {{NULL, "Exists", NULL, NULL}, {"k", "v", "NoSchedule"}, true},
        {{"", "Exists", NULL, "NoExecute"}, {"k", "v", "NoSchedule"}, false},
        {{"", NULL, NULL, NULL}, {"k", "v", "NoSchedule"}, false},
        {{"k", NULL, "v", NULL}, {"k", "v", "NoSchedule"}, true},
        {{"k", "Equal", "w", NULL}, {"k", "v", "NoSchedule"}, false},
        {{"k", "Equal", NULL, NULL}, {"k", NULL, "NoSchedule"}, true},
        {{"k", "Equal", "", NULL}, {"k", NULL, "NoSchedule"}, true},
        {{"k", "Exists", NULL, "NoSchedule"}, {"k", "v", "NoSchedule"}, true},
        {{"k", "Exists", NULL, "NoSchedule"}, {"k", "v", "NoExecute"}, false},
        {{"j", "Exists", NULL, NULL}, {"k", "v", "NoSchedule"}, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        cr_expect_eq(ty_nodefit_tolerates(&cases[i].tol, &cases[i].taint), cases[i].tolerates,
                     "case %zu", i);

    ty_nodefit_taint taints[] = {{"spot", "", "PreferNoSchedule"},
                                 {"gpu", "true", "NoSchedule"},
                                 {"maint", "", "NoExecute"}};
    ty_nodefit_toleration gpu = {"gpu", NULL, "true", NULL}, maint = {"maint", "Exists"};
    cr_assert_eq(ty_nodefit_untolerated(taints, 3, NULL, 0, NULL, 0), &taints[1],
                 "PreferNoSchedule never stops a pod");
    cr_assert_eq(ty_nodefit_untolerated(taints, 3, &gpu, 1, NULL, 0), &taints[2]);
    cr_assert_null(ty_nodefit_untolerated(taints, 3, &gpu, 1, &maint, 1),
                   "the extra tolerations (a flavor's) count too");
}

Test(nodefit, node_selector)
{
    ty_nodefit_label labels[] = {{"zone", "a"}, {"gpu", "h100"}};
    ty_nodefit_label want[] = {{"gpu", "h100"}, {"zone", "a"}};
    ty_nodefit_label other[] = {{"zone", "b"}};
    ty_nodefit_label missing[] = {{"rack", "1"}};
    cr_assert(ty_nodefit_selector_matches(NULL, 0, labels, 2));
    cr_assert(ty_nodefit_selector_matches(want, 2, labels, 2));
    cr_assert(!ty_nodefit_selector_matches(other, 1, labels, 2));
    cr_assert(!ty_nodefit_selector_matches(missing, 1, labels, 2));
}

/* ---- the core against placement ---- */

typedef struct rng {
    uint64_t s;
} rng;

static uint32_t next(rng *r)
{
    r->s ^= r->s << 13;
    r->s ^= r->s >> 7;
    r->s ^= r->s << 17;
    return (uint32_t)(r->s >> 11);
}

static int pick(rng *r, int n) { return (int)(next(r) % (uint32_t)n); }
static bool chance(rng *r, int pct) { return pick(r, 100) < pct; }

static const char *const zones[] = {"a", "b", "c"};
static const char *const tiers[] = {"1", "2", "3", "4", "x"};
static const char *const gpus[] = {"a100", "h100"};
static const char *const keys[] = {"zone", "tier", "gpu", "rack"};
static const char *const taints[] = {
    "{\"key\": \"dedicated\", \"value\": \"ml\", \"effect\": \"NoSchedule\"}",
    "{\"key\": \"gpu\", \"value\": \"true\", \"effect\": \"NoExecute\"}",
    "{\"key\": \"spot\", \"effect\": \"PreferNoSchedule\"}",
    "{\"key\": \"maint\", \"value\": \"yes\", \"effect\": \"NoSchedule\"}",
};
static const char *const tolerations[] = {
    "{\"operator\": \"Exists\"}",
    "{\"key\": \"dedicated\", \"operator\": \"Equal\", \"value\": \"ml\"}",
    "{\"key\": \"gpu\", \"operator\": \"Exists\", \"effect\": \"NoExecute\"}",
    "{\"key\": \"gpu\", \"operator\": \"Exists\", \"effect\": \"NoSchedule\"}",
    "{\"key\": \"maint\", \"value\": \"no\"}",
    "{\"key\": \"maint\", \"value\": \"yes\"}",
};
static const char *const ops[] = {"In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"};

static const char *value_of(rng *r, const char *key)
{
    if (!strcmp(key, "zone"))
        return zones[pick(r, 3)];
    if (!strcmp(key, "tier"))
        return tiers[pick(r, 5)];
    if (!strcmp(key, "gpu"))
        return gpus[pick(r, 2)];
    return "r1";
}

#define MAXN 6

typedef struct world {
    json_t *nodes[MAXN], *used[MAXN], *free[MAXN];
    int n;
    json_t *spec;
    int count;
    const char *fzone; /* the flavor's node label zone=fzone; NULL: none */
    /* the spec as the binder gets it once admitted: the flavor's labels in its nodeSelector
     * (Kueue's start); NULL when they conflict with it (no node can take it) */
    json_t *bound;
} world;

static json_t *gen_node(rng *r, int i, json_t **used)
{
    char name[24];
    snprintf(name, sizeof name, "node-%d", i);
    json_t *labels = json_object(), *alloc = json_object(), *taint = json_array();
    for (size_t k = 0; k < 4; k++)
        if (chance(r, 60))
            json_object_set_new(labels, keys[k], json_string(value_of(r, keys[k])));
    for (size_t k = 0; k < 4; k++)
        if (chance(r, 20))
            json_array_append_new(taint, parse(taints[k]));
    char q[32];
    snprintf(q, sizeof q, "%d", 1 + pick(r, 8));
    json_object_set_new(alloc, "cpu", json_string(q));
    snprintf(q, sizeof q, "%dGi", 1 + pick(r, 16));
    json_object_set_new(alloc, "memory", json_string(q));
    if (chance(r, 80)) {
        snprintf(q, sizeof q, "%d", pick(r, 9));
        json_object_set_new(alloc, "nvidia.com/gpu", json_string(q));
    }
    if (chance(r, 50)) {
        snprintf(q, sizeof q, "%d", pick(r, 5));
        json_object_set_new(alloc, "pods", json_string(q));
    }
    if (chance(r, 30))
        json_object_set_new(alloc, "ephemeral-storage", json_string("10Gi"));
    /* what pods outside the workload already use there (milli-units) */
    *used = json_object();
    if (chance(r, 40)) {
        json_object_set_new(*used, "cpu", json_integer(500 * pick(r, 4)));
        json_object_set_new(*used, "pods", json_integer(1000 * pick(r, 2)));
    }
    json_t *spec = json_object();
    json_object_set_new(spec, "taints", taint);
    if (chance(r, 10))
        json_object_set_new(spec, "unschedulable", json_true());
    return json_pack("{s:s, s:{s:s, s:o}, s:o, s:{s:o}}", "kind", "Node", "metadata", "name",
                     name, "labels", labels, "spec", spec, "status", "allocatable", alloc);
}

static json_t *gen_expr(rng *r, int n_nodes)
{
    if (chance(r, 10)) {
        char name[24];
        snprintf(name, sizeof name, "node-%d", pick(r, n_nodes));
        return json_pack("{s:s, s:s, s:[s]}", "key", "metadata.name", "operator",
                         chance(r, 50) ? "In" : "NotIn", "values", name);
    }
    const char *key = keys[pick(r, 4)];
    const char *op = ops[pick(r, 6)];
    json_t *values = json_array();
    if (!strcmp(op, "Gt") || !strcmp(op, "Lt"))
        json_array_append_new(values, json_string(tiers[pick(r, 4)]));
    else if (!strcmp(op, "In") || !strcmp(op, "NotIn"))
        for (int i = 0, n = 1 + pick(r, 2); i < n; i++)
            json_array_append_new(values, json_string(value_of(r, key)));
    return json_pack("{s:s, s:s, s:o}", "key", key, "operator", op, "values", values);
}

static json_t *gen_spec(rng *r, int n_nodes)
{
    char cpu[16], mem[16], gpu[16];
    snprintf(cpu, sizeof cpu, "%dm", 250 * (1 + pick(r, 12)));
    snprintf(mem, sizeof mem, "%dGi", pick(r, 6));
    snprintf(gpu, sizeof gpu, "%d", chance(r, 40) ? 0 : 1 + pick(r, 4));
    json_t *req = json_pack("{s:s, s:s}", "cpu", cpu, "memory", mem);
    if (chance(r, 20))
        json_object_set_new(req, "ephemeral-storage", json_string("1Gi"));
    json_t *spec = json_pack("{s:[{s:s, s:{s:o, s:{s:s}}}]}", "containers", "name", "c",
                             "resources", "requests", req, "limits", "nvidia.com/gpu", gpu);
    if (chance(r, 30)) {
        const char *key = keys[pick(r, 3)];
        json_object_set_new(spec, "nodeSelector", json_pack("{s:s}", key, value_of(r, key)));
    }
    if (chance(r, 60)) {
        json_t *terms = json_array();
        for (int t = 0, nt = 1 + pick(r, 2); t < nt; t++) {
            json_t *exprs = json_array();
            json_t *fields = json_array();
            for (int e = 0, ne = 1 + pick(r, 2); e < ne; e++) {
                json_t *x = gen_expr(r, n_nodes);
                bool field = !strcmp(json_string_value(json_object_get(x, "key")),
                                     "metadata.name");
                json_array_append_new(field ? fields : exprs, x);
            }
            json_t *term = json_object();
            if (json_array_size(exprs))
                json_object_set(term, "matchExpressions", exprs);
            if (json_array_size(fields))
                json_object_set(term, "matchFields", fields);
            json_decref(exprs);
            json_decref(fields);
            json_array_append_new(terms, term);
        }
        json_object_set_new(
            spec, "affinity",
            json_pack("{s:{s:{s:o}}}", "nodeAffinity",
                      "requiredDuringSchedulingIgnoredDuringExecution", "nodeSelectorTerms",
                      terms));
    }
    json_t *tols = json_array();
    for (size_t k = 0; k < 6; k++)
        if (chance(r, k == 0 ? 5 : 25))
            json_array_append_new(tols, parse(tolerations[k]));
    json_object_set_new(spec, "tolerations", tols);
    return spec;
}

/* name -> milli of a JSON list: amounts (NULL-terminated array, strings into the list). */
static ty_sched_amount *amounts(const json_t *list, size_t *n, bool positive)
{
    ty_sched_amount *a = calloc(json_object_size(list) + 1, sizeof *a);
    const char *k;
    json_t *v;
    *n = 0;
    json_object_foreach((json_t *)list, k, v) if (!positive || json_integer_value(v) > 0)
        a[(*n)++] = (ty_sched_amount){k, (int64_t)json_integer_value(v)};
    return a;
}

/* The core's verdict, as the snapshot builder gives it the same objects; on ADMIT the node
 * index of each pod in nodes_out. */
static ty_sched_verdict core(const world *w, size_t *nodes_out, char *msg, size_t cap)
{
    ty_sched *s = ty_sched_new(&(ty_sched_config){0});
    ty_error err = TY_ERROR_INIT;
    ty_sched_label fl = {"zone", w->fzone};
    cr_assert_eq(ty_sched_add_flavor(s, &(ty_sched_flavor){"f", &fl, w->fzone ? 1 : 0}, &err), 0,
                 "%s", err.msg);
    for (int i = 0; i < w->n; i++) {
        const json_t *nd = w->nodes[i];
        size_t nl, nt, na, nu;
        json_t *alloc = ty_placement_allocatable(nd);
        ty_nodefit_label *labels =
            ty_placement_labels(json_object_get(json_object_get(nd, "metadata"), "labels"), &nl);
        ty_nodefit_taint *tt =
            ty_placement_taints(json_object_get(json_object_get(nd, "spec"), "taints"), &nt);
        ty_sched_amount *al = amounts(alloc, &na, false), *us = amounts(w->used[i], &nu, false);
        ty_sched_node n = {
            json_string_value(json_object_get(json_object_get(nd, "metadata"), "name")),
            labels, nl, tt, nt, al, na, us, nu,
            json_is_true(json_object_get(json_object_get(nd, "spec"), "unschedulable"))};
        cr_assert_eq(ty_sched_add_node(s, &n, &err), 0, "%s", err.msg);
        free(labels);
        free(tt);
        free(al);
        free(us);
        json_decref(alloc);
    }
    static const char *const covered[] = {"cpu", "memory", "nvidia.com/gpu", "ephemeral-storage"};
    ty_sched_quota q[4];
    for (int i = 0; i < 4; i++)
        q[i] = (ty_sched_quota){covered[i], INT64_MAX / 8, TY_SCHED_UNLIMITED,
                                TY_SCHED_UNLIMITED};
    ty_sched_flavor_quotas fq = {"f", q, 4};
    ty_sched_resource_group g = {covered, 4, &fq, 1};
    ty_sched_cluster_queue cq = {.name = "cq", .fair_weight_milli = 1000, .groups = &g,
                                 .n_groups = 1};
    cr_assert_eq(ty_sched_add_cluster_queue(s, &cq, &err), 0, "%s", err.msg);

    ty_placement_constraints c;
    ty_placement_constraints_parse(w->spec, &c);
    json_t *req = ty_placement_requests(w->spec);
    size_t nr;
    ty_sched_amount *ra = amounts(req, &nr, true);
    ty_sched_pod_set ps = {"main", w->count, ra, nr, c.selector, c.n_selector,
                           c.tols, c.n_tols, c.affinity};
    ty_sched_workload wl = {.key = "ns/w", .cluster_queue = "cq", .pod_sets = &ps,
                            .n_pod_sets = 1};
    cr_assert_eq(ty_sched_add_workload(s, &wl, &err), 0, "%s", err.msg);
    ty_sched_run(s);
    const ty_sched_decision *d = ty_sched_decision_of(s, "ns/w");
    cr_assert_not_null(d);
    ty_sched_verdict v = d->verdict;
    snprintf(msg, cap, "%s", d->message ? d->message : "");
    if (v == TY_SCHED_ADMIT)
        for (int p = 0; p < w->count; p++) {
            const char *name = d->pod_sets[0].nodes[p];
            nodes_out[p] = (size_t)atoi(name + strlen("node-"));
        }
    free(ra);
    json_decref(req);
    ty_placement_constraints_free(&c);
    ty_sched_free(s);
    return v;
}

/* Placement of the workload's pods, preassigned to `pre` (node indices) or free. */
static int placement(const world *w, const size_t *pre, char *msg, size_t cap)
{
    ty_placement_node pn[MAXN];
    ty_placement_pod pods[8];
    char names[8][24], nodes[8][32];
    for (int i = 0; i < w->n; i++)
        pn[i] = (ty_placement_node){w->nodes[i], w->free[i]};
    if (!w->bound) {
        snprintf(msg, cap, "the pod's nodeSelector conflicts with the flavor's labels");
        return -1;
    }
    for (int p = 0; p < w->count; p++) {
        snprintf(names[p], sizeof names[p], "w-%d", p);
        if (pre)
            snprintf(nodes[p], sizeof nodes[p], "node-%zu", pre[p]);
        pods[p] = (ty_placement_pod){names[p], w->bound, pre ? nodes[p] : NULL};
    }
    size_t out[8];
    ty_error err = TY_ERROR_INIT;
    int rc = ty_placement_place(pn, (size_t)w->n, pods, (size_t)w->count, out, &err);
    snprintf(msg, cap, "%s", rc < 0 ? err.msg : "");
    ty_error_clear(&err);
    if (rc == 0 && pre)
        for (int p = 0; p < w->count; p++)
            cr_assert_eq(out[p], pre[p]);
    return rc;
}

Test(nodefit, core_and_placement_agree_on_random_clusters)
{
    const char *env = getenv("TY_NODEFIT_SEED");
    uint64_t seed = env ? strtoull(env, NULL, 10) : (uint64_t)time(NULL);
    int cases = getenv("TY_NODEFIT_CASES") ? atoi(getenv("TY_NODEFIT_CASES")) : 10000;
    fprintf(stderr, "nodefit: seed %llu (rerun with TY_NODEFIT_SEED=%llu)\n",
            (unsigned long long)seed, (unsigned long long)seed);
    int admitted = 0, waiting = 0;
    for (int c = 0; c < cases; c++) {
        rng r = {seed * 0x9E3779B97F4A7C15ull + (uint64_t)c + 1};
        for (int i = 0; i < 4; i++)
            next(&r);
        world w = {.n = 1 + pick(&r, MAXN)};
        for (int i = 0; i < w.n; i++) {
            w.nodes[i] = gen_node(&r, i, &w.used[i]);
            w.free[i] = ty_placement_allocatable(w.nodes[i]);
            const char *k;
            json_t *v;
            json_object_foreach(w.used[i], k, v) if (json_object_get(w.free[i], k))
                json_object_set_new(w.free[i], k,
                                    json_integer(json_integer_value(json_object_get(w.free[i], k)) -
                                                 json_integer_value(v)));
        }
        w.spec = gen_spec(&r, w.n);
        w.count = 1 + pick(&r, 3);
        w.fzone = chance(&r, 40) ? zones[pick(&r, 3)] : NULL;
        w.bound = json_deep_copy(w.spec);
        if (w.fzone) {
            json_t *sel = json_object_get(w.bound, "nodeSelector");
            const char *had = json_string_value(json_object_get(sel, "zone"));
            if (had && strcmp(had, w.fzone) != 0) {
                json_decref(w.bound);
                w.bound = NULL;
            } else {
                if (!sel)
                    json_object_set_new(w.bound, "nodeSelector", sel = json_object());
                json_object_set_new(sel, "zone", json_string(w.fzone));
            }
        }
        size_t where[8];
        char cmsg[1024], pmsg[1024];
        ty_sched_verdict v = core(&w, where, cmsg, sizeof cmsg);
        int free_rc = placement(&w, NULL, pmsg, sizeof pmsg);
        char *dump = json_dumps(w.spec, JSON_COMPACT);
        if (v == TY_SCHED_ADMIT) {
            admitted++;
            char pre_msg[1024];
            cr_assert_eq(placement(&w, where, pre_msg, sizeof pre_msg), 0,
                         "seed %llu case %d: the core admitted onto nodes placement refuses: "
                         "%s; pod %s",
                         (unsigned long long)seed, c, pre_msg, dump);
        } else {
            waiting++;
            cr_assert_eq(v, TY_SCHED_WAIT);
            cr_assert_neq(free_rc, 0,
                          "seed %llu case %d: placement fits %d pods the core does not admit "
                          "(%s); pod %s",
                          (unsigned long long)seed, c, w.count, cmsg, dump);
        }
        free(dump);
        for (int i = 0; i < w.n; i++) {
            json_decref(w.nodes[i]);
            json_decref(w.used[i]);
            json_decref(w.free[i]);
        }
        json_decref(w.spec);
        json_decref(w.bound);
    }
    fprintf(stderr, "nodefit: %d cases: %d admitted, %d waiting\n", cases, admitted, waiting);
    /* both outcomes are exercised, or the agreement proves little */
    cr_assert_gt(admitted, cases / 10);
    cr_assert_gt(waiting, cases / 10);
}

Test(nodefit, flavor_labels_narrow_the_affinity_to_their_keys)
{
    /* Kueue's flavor assigner: only the flavor's label keys count */
    const char *spec = AFF("[{\"matchExpressions\": [" EXPR("zone", "In", "[\"b\"]") ", " EXPR(
        "gpu", "Exists", "[]") "]}, {\"matchFields\": [" EXPR("metadata.name", "In",
                                                              "[\"n1\"]") "]}]");
    json_t *s = parse(spec);
    ty_nodefit_affinity *a = ty_placement_affinity(s);
    ty_nodefit_label zone_a[] = {{"zone", "a"}}, zone_b[] = {{"zone", "b"}},
                     other[] = {{"rack", "1"}};
    cr_assert(ty_nodefit_affinity_may_match(a, zone_a, 1),
              "the matchFields term matches any flavor");
    json_decref(s);
    free(a);
    s = parse(AFF("[{\"matchExpressions\": [" EXPR("zone", "In", "[\"b\"]") ", " EXPR(
        "gpu", "Exists", "[]") "]}]"));
    a = ty_placement_affinity(s);
    cr_assert(!ty_nodefit_affinity_may_match(a, zone_a, 1));
    cr_assert(ty_nodefit_affinity_may_match(a, zone_b, 1), "gpu is not the flavor's key");
    cr_assert(ty_nodefit_affinity_may_match(a, other, 1));
    cr_assert(ty_nodefit_affinity_may_match(NULL, zone_a, 1));
    json_decref(s);
    free(a);
}

Test(nodefit, core_picks_the_flavor_the_affinity_allows)
{
    /* Two flavors by zone, zone-a first: a pod set that requires zone b gets flavor zone-b and
     * its node, not a wait on zone-a's nodes. */
    ty_sched *s = ty_sched_new(&(ty_sched_config){0});
    ty_error err = TY_ERROR_INIT;
    ty_sched_label la = {"zone", "a"}, lb = {"zone", "b"};
    cr_assert_eq(ty_sched_add_flavor(s, &(ty_sched_flavor){"zone-a", &la, 1}, &err), 0);
    cr_assert_eq(ty_sched_add_flavor(s, &(ty_sched_flavor){"zone-b", &lb, 1}, &err), 0);
    ty_sched_amount gpu = {"nvidia.com/gpu", 1000};
    ty_sched_node na = {"na", &la, 1, NULL, 0, &gpu, 1}, nb = {"nb", &lb, 1, NULL, 0, &gpu, 1};
    cr_assert_eq(ty_sched_add_node(s, &na, &err), 0);
    cr_assert_eq(ty_sched_add_node(s, &nb, &err), 0);
    static const char *const covered[] = {"nvidia.com/gpu"};
    ty_sched_quota q = {"nvidia.com/gpu", 8000, TY_SCHED_UNLIMITED, TY_SCHED_UNLIMITED};
    ty_sched_flavor_quotas fq[] = {{"zone-a", &q, 1}, {"zone-b", &q, 1}};
    ty_sched_resource_group g = {covered, 1, fq, 2};
    ty_sched_cluster_queue cq = {.name = "cq", .fair_weight_milli = 1000, .groups = &g,
                                 .n_groups = 1};
    cr_assert_eq(ty_sched_add_cluster_queue(s, &cq, &err), 0);
    json_t *spec = parse(AFF("[{\"matchExpressions\": [" EXPR("zone", "In", "[\"b\"]") "]}]"));
    ty_nodefit_affinity *a = ty_placement_affinity(spec);
    ty_sched_pod_set ps = {"main", 1, &gpu, 1, .affinity = a};
    ty_sched_workload w = {.key = "ns/w", .cluster_queue = "cq", .pod_sets = &ps,
                           .n_pod_sets = 1};
    cr_assert_eq(ty_sched_add_workload(s, &w, &err), 0, "%s", err.msg);
    free(a); /* the core keeps its own copy */
    json_decref(spec);
    ty_sched_run(s);
    const ty_sched_decision *d = ty_sched_decision_of(s, "ns/w");
    cr_assert_eq(d->verdict, TY_SCHED_ADMIT, "%s", d->message ? d->message : "");
    cr_assert_str_eq(d->pod_sets[0].flavors[0], "zone-b");
    cr_assert_str_eq(d->pod_sets[0].nodes[0], "nb");
    ty_sched_free(s);
}

Test(nodefit, core_says_which_nodes_the_affinity_leaves_out)
{
    ty_sched *s = ty_sched_new(&(ty_sched_config){0});
    ty_error err = TY_ERROR_INIT;
    cr_assert_eq(ty_sched_add_flavor(s, &(ty_sched_flavor){.name = "f"}, &err), 0);
    ty_sched_label la = {"zone", "a"}, lb = {"zone", "b"};
    ty_sched_amount gpu = {"nvidia.com/gpu", 1000}, two = {"nvidia.com/gpu", 2000};
    ty_sched_node na = {"na", &la, 1, NULL, 0, &two, 1}, nb = {"nb", &lb, 1, NULL, 0, &two, 1},
                  na2 = {"na2", &la, 1, NULL, 0, &two, 1};
    cr_assert_eq(ty_sched_add_node(s, &na, &err), 0);
    cr_assert_eq(ty_sched_add_node(s, &nb, &err), 0);
    cr_assert_eq(ty_sched_add_node(s, &na2, &err), 0);
    static const char *const covered[] = {"nvidia.com/gpu"};
    ty_sched_quota q = {"nvidia.com/gpu", 8000, TY_SCHED_UNLIMITED, TY_SCHED_UNLIMITED};
    ty_sched_flavor_quotas fq = {"f", &q, 1};
    ty_sched_resource_group g = {covered, 1, &fq, 1};
    ty_sched_cluster_queue cq = {.name = "cq", .fair_weight_milli = 1000, .groups = &g,
                                 .n_groups = 1};
    cr_assert_eq(ty_sched_add_cluster_queue(s, &cq, &err), 0);
    json_t *spec = parse(AFF("[{\"matchExpressions\": [" EXPR("zone", "In", "[\"c\"]") "]}]"));
    ty_nodefit_affinity *a = ty_placement_affinity(spec);
    ty_sched_pod_set ps = {"main", 1, &gpu, 1, .affinity = a};
    ty_sched_workload w = {.key = "ns/w", .cluster_queue = "cq", .pod_sets = &ps,
                           .n_pod_sets = 1};
    cr_assert_eq(ty_sched_add_workload(s, &w, &err), 0, "%s", err.msg);
    free(a);
    json_decref(spec);
    ty_sched_run(s);
    const ty_sched_decision *d = ty_sched_decision_of(s, "ns/w");
    cr_assert_eq(d->verdict, TY_SCHED_WAIT);
    cr_assert(strstr(d->message, "0 of 3 nodes have room for a pod (1 nvidia.com/gpu); 3 of them "
                                 "do not match its node selector or required node affinity"),
              "%s", d->message);
    ty_sched_free(s);
}

/* The one rule of which resources a node's room is checked in, for the core and placement. */
Test(nodefit, which_resources_a_node_limits)
{
    cr_assert(ty_nodefit_limits("cpu", false), "a node without cpu has none");
    cr_assert(ty_nodefit_limits("memory", false));
    cr_assert(ty_nodefit_limits("nvidia.com/gpu", false), "extended resources likewise");
    cr_assert_not(ty_nodefit_limits("ephemeral-storage", false));
    cr_assert_not(ty_nodefit_limits("pods", false), "the pod count only when declared");
    cr_assert(ty_nodefit_limits("pods", true));
    cr_assert(ty_nodefit_limits("ephemeral-storage", true));
}
