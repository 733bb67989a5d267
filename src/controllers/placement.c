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

static const json_t *node_labels(const json_t *node)
{
    return json_object_get(json_object_get(node, "metadata"), "labels");
}

static bool selector_matches(const json_t *selector, const json_t *labels)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)selector, k, v)
    {
        const char *have = json_string_value(json_object_get(labels, k));
        if (!have || !json_is_string(v) || strcmp(have, json_string_value(v)) != 0)
            return false;
    }
    return true;
}

static bool in_values(const json_t *values, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(values, i, v) if (json_is_string(v) && strcmp(json_string_value(v), s) == 0)
        return true;
    return false;
}

/* One requirement over a value that may be missing (have = NULL). */
static bool requirement_matches(const json_t *req, const char *have)
{
    const char *op = json_string_value(json_object_get(req, "operator"));
    const json_t *values = json_object_get(req, "values");
    if (!op)
        return false;
    if (strcmp(op, "In") == 0)
        return have && in_values(values, have);
    if (strcmp(op, "NotIn") == 0)
        return !have || !in_values(values, have);
    if (strcmp(op, "Exists") == 0)
        return have != NULL;
    if (strcmp(op, "DoesNotExist") == 0)
        return have == NULL;
    if (strcmp(op, "Gt") == 0 || strcmp(op, "Lt") == 0) {
        const char *want = json_string_value(json_array_get(values, 0));
        char *e1, *e2;
        if (!have || !want)
            return false;
        long long h = strtoll(have, &e1, 10), w = strtoll(want, &e2, 10);
        if (*e1 || *e2 || !*have || !*want)
            return false;
        return op[0] == 'G' ? h > w : h < w;
    }
    return false;
}

static bool term_matches(const json_t *term, const json_t *node)
{
    const json_t *exprs = json_object_get(term, "matchExpressions");
    const json_t *fields = json_object_get(term, "matchFields");
    if (json_array_size(exprs) + json_array_size(fields) == 0)
        return false;
    size_t i;
    json_t *r;
    json_array_foreach(exprs, i, r)
    {
        const char *key = json_string_value(json_object_get(r, "key"));
        const char *have = key ? json_string_value(json_object_get(node_labels(node), key)) : NULL;
        if (!key || !requirement_matches(r, have))
            return false;
    }
    json_array_foreach(fields, i, r)
    {
        const char *key = json_string_value(json_object_get(r, "key"));
        if (!key || strcmp(key, "metadata.name") != 0 ||
            !requirement_matches(r, node_name(node)))
            return false;
    }
    return true;
}

static bool affinity_matches(const json_t *spec, const json_t *node)
{
    const json_t *req = json_object_get(
        json_object_get(json_object_get(spec, "affinity"), "nodeAffinity"),
        "requiredDuringSchedulingIgnoredDuringExecution");
    if (!req)
        return true;
    size_t i;
    json_t *term;
    json_array_foreach(json_object_get(req, "nodeSelectorTerms"), i, term) if (term_matches(term, node))
        return true;
    return false;
}

static bool tolerates(const json_t *tol, const json_t *taint)
{
    const char *tkey = json_string_value(json_object_get(tol, "key"));
    const char *op = json_string_value(json_object_get(tol, "operator"));
    const char *teffect = json_string_value(json_object_get(tol, "effect"));
    const char *key = json_string_value(json_object_get(taint, "key"));
    const char *effect = json_string_value(json_object_get(taint, "effect"));
    bool exists = op && strcmp(op, "Exists") == 0;
    if (teffect && *teffect && (!effect || strcmp(teffect, effect) != 0))
        return false;
    if (!tkey || !*tkey)
        return exists;
    if (!key || strcmp(tkey, key) != 0)
        return false;
    if (exists)
        return true;
    const char *tval = json_string_value(json_object_get(tol, "value"));
    const char *val = json_string_value(json_object_get(taint, "value"));
    return strcmp(tval ? tval : "", val ? val : "") == 0;
}

/* The first taint of the node the pod does not tolerate, or NULL. */
static const json_t *untolerated_taint(const json_t *spec, const json_t *node)
{
    size_t i, j;
    json_t *taint, *tol;
    json_array_foreach(json_object_get(json_object_get(node, "spec"), "taints"), i, taint)
    {
        const char *effect = json_string_value(json_object_get(taint, "effect"));
        if (!effect || (strcmp(effect, "NoSchedule") != 0 && strcmp(effect, "NoExecute") != 0))
            continue;
        bool ok = false;
        json_array_foreach(json_object_get(spec, "tolerations"), j, tol) if (tolerates(tol, taint))
        {
            ok = true;
            break;
        }
        if (!ok)
            return taint;
    }
    return NULL;
}

static bool is_checked(const char *name, const json_t *avail)
{
    return strcmp(name, "cpu") == 0 || strcmp(name, "memory") == 0 || strchr(name, '/') ||
           json_object_get(avail, name);
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
static char *misfit(const ty_placement_pod *pod, const json_t *req, const json_t *node,
                    const json_t *avail)
{
    const json_t *spec = pod->spec;
    if (pod->node && strcmp(pod->node, node_name(node)) != 0)
        return ty_strdup("a name other than the pod's preassigned node");
    if (json_is_true(json_object_get(json_object_get(node, "spec"), "unschedulable")))
        return ty_strdup("spec.unschedulable set");
    if (!selector_matches(json_object_get(spec, "nodeSelector"), node_labels(node)))
        return ty_strdup("labels that do not match the pod's nodeSelector");
    if (!affinity_matches(spec, node))
        return ty_strdup("labels that do not match the pod's required node affinity");
    const json_t *taint = untolerated_taint(spec, node);
    if (taint) {
        const char *v = json_string_value(json_object_get(taint, "value"));
        return ty_asprintf("taint %s%s%s:%s that the pod does not tolerate",
                           json_string_value(json_object_get(taint, "key")), v && *v ? "=" : "",
                           v && *v ? v : "", json_string_value(json_object_get(taint, "effect")));
    }
    /* The scheduler's "Too many pods": a node that declares a pod count takes no more. */
    if (json_object_get(avail, PODS) && get(avail, PODS) < 1000)
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
static char *explain(const ty_placement_pod *pod, const json_t *req, const ty_placement_node *nodes,
                     json_t **avail, size_t n_nodes, size_t gang)
{
    json_t *reasons = json_array(), *counts = json_array();
    for (size_t i = 0; i < n_nodes; i++) {
        TY_AUTOFREE char *why = misfit(pod, req, nodes[i].node, avail[i]);
        if (!why || (pod->node && strcmp(pod->node, node_name(nodes[i].node)) != 0))
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
    for (size_t i = 0; i < n_nodes; i++)
        avail[i] = nodes[i].free ? json_deep_copy(nodes[i].free) : json_object();
    for (size_t p = 0; p < n_pods; p++) {
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
            TY_AUTOFREE char *why = misfit(&pods[p], reqs[p], nodes[i].node, avail[i]);
            if (why)
                continue;
            if (best == n_nodes) {
                best = i;
                continue;
            }
            int64_t gi = get(avail[i], GPU), gb = get(avail[best], GPU);
            if (gi < gb || (gi == gb && strcmp(node_name(nodes[i].node),
                                               node_name(nodes[best].node)) < 0))
                best = i;
        }
        if (best == n_nodes) {
            TY_AUTOFREE char *why = explain(&pods[p], reqs[p], nodes, avail, n_nodes, n_pods);
            rc = ty_fail(err, "%s", why);
            break;
        }
        out[p] = best;
        ty_placement_take(avail[best], reqs[p]);
    }
    for (size_t i = 0; i < n_nodes; i++)
        json_decref(avail[i]);
    for (size_t p = 0; p < n_pods; p++)
        json_decref(reqs[p]);
    free(avail);
    free(reqs);
    free(ord);
    return rc;
}
