#include "sched/nodefit.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static bool same(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

ty_nodefit_op ty_nodefit_op_of(const char *name)
{
    static const char *const names[] = {"In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"};
    for (int i = 0; name && i < TY_NODEFIT_BAD; i++)
        if (strcmp(name, names[i]) == 0)
            return (ty_nodefit_op)i;
    return TY_NODEFIT_BAD;
}

static bool in_values(const ty_nodefit_expr *e, const char *have)
{
    for (size_t i = 0; i < e->n_values; i++)
        if (e->values[i] && strcmp(e->values[i], have) == 0)
            return true;
    return false;
}

/* A whole decimal integer, as Kubernetes parses Gt/Lt operands. */
static bool integer_of(const char *s, long long *out)
{
    char *end;
    if (!s || !*s)
        return false;
    errno = 0;
    *out = strtoll(s, &end, 10);
    return !*end && errno == 0;
}

/* One requirement over a value that may be missing (have = NULL). */
static bool expr_matches(const ty_nodefit_expr *e, const char *have)
{
    long long h, w;
    switch (e->op) {
    case TY_NODEFIT_IN:
        return have && in_values(e, have);
    case TY_NODEFIT_NOT_IN:
        return !have || !in_values(e, have);
    case TY_NODEFIT_EXISTS:
        return have != NULL;
    case TY_NODEFIT_DOES_NOT_EXIST:
        return have == NULL;
    case TY_NODEFIT_GT:
    case TY_NODEFIT_LT:
        if (e->n_values != 1 || !integer_of(have, &h) || !integer_of(e->values[0], &w))
            return false;
        return e->op == TY_NODEFIT_GT ? h > w : h < w;
    case TY_NODEFIT_BAD:
        break;
    }
    return false;
}

static const char *label_of(const ty_nodefit_label *labels, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(labels[i].key, key) == 0)
            return labels[i].value ? labels[i].value : "";
    return NULL;
}

bool ty_nodefit_affinity_matches(const ty_nodefit_affinity *a, const char *node_name,
                                 const ty_nodefit_label *labels, size_t n_labels)
{
    if (!a)
        return true;
    for (size_t t = 0; t < a->n_terms; t++) {
        const ty_nodefit_term *term = &a->terms[t];
        bool ok = term->n_exprs > 0;
        for (size_t i = 0; ok && i < term->n_exprs; i++) {
            const ty_nodefit_expr *e = &term->exprs[i];
            if (!e->key)
                ok = false;
            else if (e->field)
                ok = expr_matches(e, node_name ? node_name : "");
            else
                ok = expr_matches(e, label_of(labels, n_labels, e->key));
        }
        if (ok)
            return true;
    }
    return false;
}

bool ty_nodefit_affinity_may_match(const ty_nodefit_affinity *a, const ty_nodefit_label *labels,
                                   size_t n_labels)
{
    if (!a)
        return true;
    for (size_t t = 0; t < a->n_terms; t++) {
        const ty_nodefit_term *term = &a->terms[t];
        bool ok = true;
        for (size_t i = 0; ok && i < term->n_exprs; i++) {
            const ty_nodefit_expr *e = &term->exprs[i];
            const char *have = e->key && !e->field ? label_of(labels, n_labels, e->key) : NULL;
            if (have)
                ok = expr_matches(e, have);
        }
        if (ok)
            return true;
    }
    return false;
}

bool ty_nodefit_selector_matches(const ty_nodefit_label *selector, size_t n_selector,
                                 const ty_nodefit_label *labels, size_t n_labels)
{
    for (size_t i = 0; i < n_selector; i++) {
        const char *have = label_of(labels, n_labels, selector[i].key);
        if (!have || !same(have, selector[i].value))
            return false;
    }
    return true;
}

bool ty_nodefit_limits(const char *resource, bool declared)
{
    return declared || strcmp(resource, "cpu") == 0 || strcmp(resource, "memory") == 0 ||
           strchr(resource, '/') != NULL;
}

bool ty_nodefit_taint_binds(const ty_nodefit_taint *t)
{
    return t->effect &&
           (strcmp(t->effect, "NoSchedule") == 0 || strcmp(t->effect, "NoExecute") == 0);
}

bool ty_nodefit_tolerates(const ty_nodefit_toleration *tol, const ty_nodefit_taint *t)
{
    bool exists = tol->op && strcmp(tol->op, "Exists") == 0;
    if (tol->effect && *tol->effect && !same(tol->effect, t->effect))
        return false;
    if (!tol->key || !*tol->key)
        return exists;
    if (!same(tol->key, t->key))
        return false;
    return exists || same(tol->value, t->value);
}

static bool tolerated(const ty_nodefit_taint *t, const ty_nodefit_toleration *tols, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (ty_nodefit_tolerates(&tols[i], t))
            return true;
    return false;
}

const ty_nodefit_taint *ty_nodefit_untolerated(const ty_nodefit_taint *taints, size_t n_taints,
                                               const ty_nodefit_toleration *tols, size_t n_tols,
                                               const ty_nodefit_toleration *extra,
                                               size_t n_extra)
{
    for (size_t i = 0; i < n_taints; i++)
        if (ty_nodefit_taint_binds(&taints[i]) && !tolerated(&taints[i], tols, n_tols) &&
            !tolerated(&taints[i], extra, n_extra))
            return &taints[i];
    return NULL;
}
