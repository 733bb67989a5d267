#include "controllers/placement.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/mem.h"
#include "base/quantity.h"

#define GPU "nvidia.com/gpu"
/* A node's pod count limit (the kubelet's maxPods, 110 by default): every pod takes one. */
#define PODS "pods"

static int64_t milli_of(const json_t *v)
{
    ty_quantity q = {0};
    if (!v || ty_quantity_from_json(v, &q, NULL) < 0)
        return 0;
    return q.milli;
}

static int64_t get(const json_t *list, const char *name)
{
    return (int64_t)json_integer_value(json_object_get(list, name));
}

static void put(json_t *list, const char *name, int64_t v)
{
    json_object_set_new(list, name, json_integer((json_int_t)v));
}

static json_t *container_requests(const json_t *c)
{
    json_t *res = json_object_get(c, "resources");
    json_t *reqs = json_object_get(res, "requests"), *lims = json_object_get(res, "limits");
    json_t *out = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(reqs, k, v) put(out, k, milli_of(v));
    /* Kubernetes defaults a missing request to the limit. */
    json_object_foreach(lims, k, v) if (!json_object_get(reqs, k)) put(out, k, milli_of(v));
    return out;
}

json_t *ty_placement_requests(const json_t *spec)
{
    json_t *sum = json_object(), *init = json_object();
    size_t i;
    json_t *c;
    const char *k;
    json_t *v;
    json_array_foreach(json_object_get(spec, "containers"), i, c)
    {
        json_t *r = container_requests(c);
        json_object_foreach(r, k, v) put(sum, k, get(sum, k) + json_integer_value(v));
        json_decref(r);
    }
    json_array_foreach(json_object_get(spec, "initContainers"), i, c)
    {
        json_t *r = container_requests(c);
        json_object_foreach(r, k, v) if (json_integer_value(v) > get(init, k))
            put(init, k, json_integer_value(v));
        json_decref(r);
    }
    json_object_foreach(init, k, v) if (json_integer_value(v) > get(sum, k))
        put(sum, k, json_integer_value(v));
    json_decref(init);
    /* the pod's RuntimeClass overhead (spec.overhead) comes on top, as Kubernetes adds it */
    json_object_foreach(json_object_get(spec, "overhead"), k, v) put(sum, k, get(sum, k) +
                                                                         milli_of(v));
    return sum;
}

json_t *ty_placement_allocatable(const json_t *node)
{
    json_t *st = json_object_get(node, "status");
    json_t *list = json_object_get(st, "allocatable");
    if (!json_is_object(list))
        list = json_object_get(st, "capacity");
    json_t *out = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(list, k, v) put(out, k, milli_of(v));
    return out;
}

void ty_placement_take(json_t *avail, const json_t *req)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)req, k, v)
    {
        if (strcmp(k, PODS) != 0 && json_object_get(avail, k))
            put(avail, k, get(avail, k) - json_integer_value(v));
    }
    if (json_object_get(avail, PODS))
        put(avail, PODS, get(avail, PODS) - 1000);
}

/* ---- filters ---- */

static const char *node_name(const json_t *node)
{
    const char *n = json_string_value(json_object_get(json_object_get(node, "metadata"), "name"));
    return n ? n : "";
}

ty_nodefit_label *ty_placement_labels(const json_t *obj, size_t *n)
{
    *n = 0;
    ty_nodefit_label *out = ty_calloc(json_object_size(obj) + 1, sizeof *out);
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)obj, k, v) if (json_is_string(v))
        out[(*n)++] = (ty_nodefit_label){k, json_string_value(v)};
    return out;
}

ty_nodefit_taint *ty_placement_taints(const json_t *arr, size_t *n)
{
    *n = 0;
    ty_nodefit_taint *out = ty_calloc(json_array_size(arr) + 1, sizeof *out);
    size_t i;
    json_t *t;
    json_array_foreach(arr, i, t)
    {
        const char *key = json_string_value(json_object_get(t, "key"));
        if (key)
            out[(*n)++] = (ty_nodefit_taint){key, json_string_value(json_object_get(t, "value")),
                                             json_string_value(json_object_get(t, "effect"))};
    }
    return out;
}

ty_nodefit_toleration *ty_placement_tolerations(const json_t *arr, size_t *n)
{
    *n = 0;
    ty_nodefit_toleration *out = ty_calloc(json_array_size(arr) + 1, sizeof *out);
    size_t i;
    json_t *t;
    json_array_foreach(arr, i, t) out[(*n)++] = (ty_nodefit_toleration){
        json_string_value(json_object_get(t, "key")),
        json_string_value(json_object_get(t, "operator")),
        json_string_value(json_object_get(t, "value")),
        json_string_value(json_object_get(t, "effect"))};
    return out;
}

/* Adds one requirement of a term (matchExpressions, or matchFields with `field`). */
static void add_expr(ty_nodefit_expr *e, const char ***values, const json_t *r, bool field)
{
    const char *key = json_string_value(json_object_get(r, "key"));
    const json_t *vals = json_object_get(r, "values");
    *e = (ty_nodefit_expr){key, field, ty_nodefit_op_of(json_string_value(
                                           json_object_get(r, "operator"))),
                           *values, 0};
    /* matchFields has one field: a key other than metadata.name matches nothing */
    if (field && key && strcmp(key, "metadata.name") != 0)
        e->key = NULL;
    size_t i;
    json_t *v;
    json_array_foreach(vals, i, v) if (json_is_string(v))(*values)[e->n_values++] =
        json_string_value(v);
    *values += e->n_values;
}

ty_nodefit_affinity *ty_placement_affinity(const json_t *spec)
{
    const json_t *req = json_object_get(
        json_object_get(json_object_get(spec, "affinity"), "nodeAffinity"),
        "requiredDuringSchedulingIgnoredDuringExecution");
    if (!json_is_object(req))
        return NULL;
    const json_t *terms = json_object_get(req, "nodeSelectorTerms");
    size_t nt = json_array_size(terms), ne = 0, nv = 0, i, j;
    json_t *term, *r;
    json_array_foreach(terms, i, term)
    {
        const char *lists[] = {"matchExpressions", "matchFields"};
        for (int l = 0; l < 2; l++)
            json_array_foreach(json_object_get(term, lists[l]), j, r)
            {
                ne++;
                nv += json_array_size(json_object_get(r, "values"));
            }
    }
    /* One block: the affinity, its terms, their requirements, the values' pointers. */
    char *block = ty_calloc(1, sizeof(ty_nodefit_affinity) + (nt + 1) * sizeof(ty_nodefit_term) +
                                   (ne + 1) * sizeof(ty_nodefit_expr) + (nv + 1) * sizeof(char *));
    ty_nodefit_affinity *a = (ty_nodefit_affinity *)block;
    ty_nodefit_term *t = (ty_nodefit_term *)(a + 1);
    ty_nodefit_expr *e = (ty_nodefit_expr *)(t + nt + 1);
    const char **values = (const char **)(e + ne + 1);
    *a = (ty_nodefit_affinity){t, nt};
    json_array_foreach(terms, i, term)
    {
        t[i].exprs = e;
        json_array_foreach(json_object_get(term, "matchExpressions"), j, r)
            add_expr(e++, &values, r, false);
        json_array_foreach(json_object_get(term, "matchFields"), j, r)
            add_expr(e++, &values, r, true);
        t[i].n_exprs = (size_t)(e - t[i].exprs);
    }
    return a;
}

void ty_placement_constraints_parse(const json_t *spec, ty_placement_constraints *c)
{
    c->selector = ty_placement_labels(json_object_get(spec, "nodeSelector"), &c->n_selector);
    c->tols = ty_placement_tolerations(json_object_get(spec, "tolerations"), &c->n_tols);
    c->affinity = ty_placement_affinity(spec);
    /* a nodeSelector value that is not a string matches no node */
    const char *k;
    json_t *v;
    c->impossible = false;
    json_object_foreach(json_object_get(spec, "nodeSelector"), k, v) c->impossible |=
        !json_is_string(v);
}

void ty_placement_constraints_free(ty_placement_constraints *c)
{
    free(c->selector);
    free(c->tols);
    free(c->affinity);
    memset(c, 0, sizeof *c);
}

/* A node as the fit rules read it. */
typedef struct node_fit {
    const char *name;
    ty_nodefit_label *labels;
    size_t n_labels;
    ty_nodefit_taint *taints;
    size_t n_taints;
    bool unschedulable;
} node_fit;

static void node_fit_parse(const json_t *node, node_fit *f)
{
    const json_t *spec = json_object_get(node, "spec");
    f->name = node_name(node);
    f->labels = ty_placement_labels(json_object_get(json_object_get(node, "metadata"), "labels"),
                                    &f->n_labels);
    f->taints = ty_placement_taints(json_object_get(spec, "taints"), &f->n_taints);
    f->unschedulable = json_is_true(json_object_get(spec, "unschedulable"));
}

static bool is_checked(const char *name, const json_t *avail)
{
    return ty_nodefit_limits(name, json_object_get(avail, name) != NULL);
}

static char *format_amount(const char *name, int64_t milli)
{
    char q[32];
    bool binary = strcmp(name, "memory") == 0 || strcmp(name, "ephemeral-storage") == 0 ||
                  strncmp(name, "hugepages-", 10) == 0;
    ty_quantity_format((ty_quantity){milli < 0 ? 0 : milli}, binary, q, sizeof q);
    return ty_strdup(q);
}

/* Why the pod cannot go to the node (a phrase after "has"/"have"), or NULL when it can. */
static char *misfit(const ty_placement_pod *pod, const ty_placement_constraints *c,
                    const json_t *req, const node_fit *node, const json_t *avail)
{
    if (pod->node && strcmp(pod->node, node->name) != 0)
        return ty_strdup("a name other than the pod's preassigned node");
    if (node->unschedulable)
        return ty_strdup("spec.unschedulable set");
    if (c->impossible || !ty_nodefit_selector_matches(c->selector, c->n_selector, node->labels,
                                                      node->n_labels))
        return ty_strdup("labels that do not match the pod's nodeSelector");
    if (!ty_nodefit_affinity_matches(c->affinity, node->name, node->labels, node->n_labels))
        return ty_strdup("labels that do not match the pod's required node affinity");
    const ty_nodefit_taint *taint =
        ty_nodefit_untolerated(node->taints, node->n_taints, c->tols, c->n_tols, NULL, 0);
    if (taint) {
        const char *v = taint->value;
        return ty_asprintf("taint %s%s%s:%s that the pod does not tolerate", taint->key,
                           v && *v ? "=" : "", v && *v ? v : "", taint->effect);
    }
    /* The scheduler's "Too many pods": a node that declares a pod count takes no more. */
    if (is_checked(PODS, avail) && get(avail, PODS) < 1000)
        return ty_strdup("too many pods");
    /* GPUs first: the resource users most often run short of, so the message names it. */
    int64_t gpus = get(req, GPU);
    if (gpus > 0 && gpus > get(avail, GPU)) {
        TY_AUTOFREE char *n = format_amount(GPU, gpus);
        return ty_asprintf("too few free " GPU " (need %s)", n);
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)req, k, v)
    {
        int64_t need = json_integer_value(v);
        if (need <= 0 || strcmp(k, PODS) == 0 || !is_checked(k, avail) || need <= get(avail, k))
            continue;
        TY_AUTOFREE char *n = format_amount(k, need);
        return ty_asprintf("too few free %s (need %s)", k, n);
    }
    return NULL;
}

typedef struct order {
    size_t pod;
    int64_t gpu, cpu, mem;
    bool pre;
} order;

static int compare_order(const void *x, const void *y)
{
    const order *a = x, *b = y;
    if (a->pre != b->pre)
        return a->pre ? -1 : 1;
    if (a->gpu != b->gpu)
        return a->gpu > b->gpu ? -1 : 1;
    if (a->cpu != b->cpu)
        return a->cpu > b->cpu ? -1 : 1;
    if (a->mem != b->mem)
        return a->mem > b->mem ? -1 : 1;
    return a->pod < b->pod ? -1 : a->pod > b->pod;
}

/* "5 nodes have too few free nvidia.com/gpu (need 8), 3 nodes have taint ..." */
static char *explain(const ty_placement_pod *pod, const ty_placement_constraints *cons,
                     const json_t *req, const node_fit *nodes, json_t **avail, size_t n_nodes,
                     size_t gang)
{
    json_t *reasons = json_array(), *counts = json_array();
    for (size_t i = 0; i < n_nodes; i++) {
        TY_AUTOFREE char *why = misfit(pod, cons, req, &nodes[i], avail[i]);
        if (!why || (pod->node && strcmp(pod->node, nodes[i].name) != 0))
            continue;
        size_t k;
        for (k = 0; k < json_array_size(reasons); k++)
            if (strcmp(json_string_value(json_array_get(reasons, k)), why) == 0)
                break;
        if (k == json_array_size(reasons)) {
            json_array_append_new(reasons, json_string(why));
            json_array_append_new(counts, json_integer(0));
        }
        json_t *c = json_array_get(counts, k);
        json_integer_set(c, json_integer_value(c) + 1);
    }
    ty_buf b = TY_BUF_INIT;
    if (pod->node) {
        if (json_array_size(reasons) == 0)
            ty_buf_addf(&b, "pod %s of the gang of %zu is placed on node %s, which does not "
                          "exist", pod->name, gang, pod->node);
        else
            ty_buf_addf(&b, "pod %s of the gang of %zu is placed on node %s, which has %s",
                          pod->name, gang, pod->node,
                          json_string_value(json_array_get(reasons, 0)));
    } else {
        ty_buf_addf(&b, "0/%zu nodes can take pod %s of the gang of %zu", n_nodes, pod->name,
                    gang);
        for (size_t k = 0; k < json_array_size(reasons); k++) {
            long long c = json_integer_value(json_array_get(counts, k));
            ty_buf_addf(&b, "%s %lld node%s %s %s", k ? "," : ":", c, c == 1 ? "" : "s",
                          c == 1 ? "has" : "have", json_string_value(json_array_get(reasons, k)));
        }
    }
    json_decref(reasons);
    json_decref(counts);
    return ty_buf_steal(&b);
}

int ty_placement_place(const ty_placement_node *nodes, size_t n_nodes,
                       const ty_placement_pod *pods, size_t n_pods, size_t *out, ty_error *err)
{
    json_t **avail = ty_calloc(n_nodes + 1, sizeof(json_t *));
    json_t **reqs = ty_calloc(n_pods + 1, sizeof(json_t *));
    order *ord = ty_calloc(n_pods + 1, sizeof(order));
    node_fit *fit = ty_calloc(n_nodes + 1, sizeof *fit);
    ty_placement_constraints *cons = ty_calloc(n_pods + 1, sizeof *cons);
    for (size_t i = 0; i < n_nodes; i++) {
        avail[i] = nodes[i].free ? json_deep_copy(nodes[i].free) : json_object();
        node_fit_parse(nodes[i].node, &fit[i]);
    }
    for (size_t p = 0; p < n_pods; p++) {
        ty_placement_constraints_parse(pods[p].spec, &cons[p]);
        reqs[p] = ty_placement_requests(pods[p].spec);
        ord[p] = (order){.pod = p, .gpu = get(reqs[p], GPU), .cpu = get(reqs[p], "cpu"),
                         .mem = get(reqs[p], "memory"), .pre = pods[p].node != NULL};
    }
    if (n_pods)
        qsort(ord, n_pods, sizeof(order), compare_order);
    int rc = 0;
    for (size_t k = 0; k < n_pods && rc == 0; k++) {
        size_t p = ord[k].pod;
        size_t best = n_nodes;
        for (size_t i = 0; i < n_nodes; i++) {
            TY_AUTOFREE char *why = misfit(&pods[p], &cons[p], reqs[p], &fit[i], avail[i]);
            if (why)
                continue;
            if (best == n_nodes) {
                best = i;
                continue;
            }
            int64_t gi = get(avail[i], GPU), gb = get(avail[best], GPU);
            if (gi < gb || (gi == gb && strcmp(fit[i].name, fit[best].name) < 0))
                best = i;
        }
        if (best == n_nodes) {
            TY_AUTOFREE char *why =
                explain(&pods[p], &cons[p], reqs[p], fit, avail, n_nodes, n_pods);
            rc = ty_fail(err, "%s", why);
            break;
        }
        out[p] = best;
        ty_placement_take(avail[best], reqs[p]);
    }
    for (size_t i = 0; i < n_nodes; i++) {
        json_decref(avail[i]);
        free(fit[i].labels);
        free(fit[i].taints);
    }
    for (size_t p = 0; p < n_pods; p++) {
        json_decref(reqs[p]);
        ty_placement_constraints_free(&cons[p]);
    }
    free(fit);
    free(cons);
    free(avail);
    free(reqs);
    free(ord);
    return rc;
}
