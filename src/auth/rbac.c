/* RBAC evaluation (rbac.h). The index: roles by "namespace/name" ("/name" for ClusterRoles),
 * bindings by kind and "namespace/name", and the subject index: for each scope (a namespace,
 * or "" for ClusterRoleBindings) and each subject (a user name, service accounts as their user
 * name, or a group) the bindings that name it. A decision looks up the user's name and groups
 * in two scopes and walks only the bindings found. */
#include "auth/rbac.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/selector.h"
#include "base/buf.h"
#include "base/map.h"
#include "base/mem.h"

__asm__(".section .rodata\n"
        ".global ty_bootstrap_rbac_json\n"
        "ty_bootstrap_rbac_json:\n"
        ".incbin \"src/auth/bootstrap_rbac.json\"\n"
        ".byte 0\n"
        ".previous");
extern const char ty_bootstrap_rbac_json[];

#define SA_PREFIX "system:serviceaccount:"

typedef struct strs {
    char **v;
    size_t n;
} strs;

typedef struct rule {
    strs verbs, groups, resources, names, urls;
} rule;

typedef struct rules {
    rule *v;
    size_t n;
} rules;

typedef struct role {
    char *ns, *name;  /* ns "" for a ClusterRole */
    rules own;
    json_t *labels;    /* ClusterRole: its labels (NULL: none) */
    json_t *selectors; /* ClusterRole with an aggregationRule: clusterRoleSelectors */
    rules agg;         /* the aggregated rules, in effect when selectors is set */
} role;

typedef struct subject {
    char kind; /* 'U' user, 'G' group, 'S' service account */
    char *name, *ns;
} subject;

typedef struct binding {
    char *ns, *name; /* ns "" for a ClusterRoleBinding */
    bool cluster_role;
    char *role_name;
    subject *subj;
    size_t nsubj;
} binding;

/* The bindings that name one subject in one scope: (binding, subject index) pairs. */
typedef struct hits {
    const binding **b;
    uint32_t *si;
    size_t n, cap;
} hits;

struct ty_rbac {
    ty_map roles;    /* "ns/name" -> role */
    ty_map bindings; /* "ns/name" ("/name": ClusterRoleBinding) -> binding */
    ty_map subjects; /* scope '\n' kind name -> hits */
};

/* ---------- plain data ---------- */

static void strs_free(strs *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    *s = (strs){0};
}

static bool strs_has(const strs *s, const char *x)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i], x) == 0)
            return true;
    return false;
}

static bool strs_eq(const strs *a, const strs *b)
{
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->v[i], b->v[i]) != 0)
            return false;
    return true;
}

static void strs_copy(strs *dst, const strs *src)
{
    dst->n = src->n;
    dst->v = src->n ? ty_calloc(src->n, sizeof *dst->v) : NULL;
    for (size_t i = 0; i < src->n; i++)
        dst->v[i] = ty_strdup(src->v[i]);
}

static void rule_free(rule *r)
{
    strs_free(&r->verbs);
    strs_free(&r->groups);
    strs_free(&r->resources);
    strs_free(&r->names);
    strs_free(&r->urls);
}

static void rule_copy(rule *dst, const rule *src)
{
    strs_copy(&dst->verbs, &src->verbs);
    strs_copy(&dst->groups, &src->groups);
    strs_copy(&dst->resources, &src->resources);
    strs_copy(&dst->names, &src->names);
    strs_copy(&dst->urls, &src->urls);
}

static bool rule_eq(const rule *a, const rule *b)
{
    return strs_eq(&a->verbs, &b->verbs) && strs_eq(&a->groups, &b->groups) &&
           strs_eq(&a->resources, &b->resources) && strs_eq(&a->names, &b->names) &&
           strs_eq(&a->urls, &b->urls);
}

static void rules_free(rules *rs)
{
    for (size_t i = 0; i < rs->n; i++)
        rule_free(&rs->v[i]);
    free(rs->v);
    *rs = (rules){0};
}

static void rules_add_copy(rules *rs, const rule *r)
{
    rs->v = ty_realloc(rs->v, (rs->n + 1) * sizeof *rs->v);
    rule_copy(&rs->v[rs->n++], r);
}

static bool rules_eq(const rules *a, const rules *b)
{
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++)
        if (!rule_eq(&a->v[i], &b->v[i]))
            return false;
    return true;
}

static void role_free(role *ro)
{
    if (!ro)
        return;
    free(ro->ns);
    free(ro->name);
    rules_free(&ro->own);
    rules_free(&ro->agg);
    json_decref(ro->labels);
    json_decref(ro->selectors);
    free(ro);
}

static const rules *role_rules(const role *ro)
{
    return ro->selectors ? &ro->agg : &ro->own;
}

static void binding_free(binding *b)
{
    if (!b)
        return;
    free(b->ns);
    free(b->name);
    free(b->role_name);
    for (size_t i = 0; i < b->nsubj; i++) {
        free(b->subj[i].name);
        free(b->subj[i].ns);
    }
    free(b->subj);
    free(b);
}

/* ---------- validation ---------- */

static const char *str_at(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* A list of strings at obj[key] (absent or null: empty). */
static int check_strs(const json_t *obj, const char *key, const char *path, ty_error *err)
{
    const json_t *a = json_object_get(obj, key);
    if (!a || json_is_null(a))
        return 0;
    if (!json_is_array(a))
        return ty_fail(err, "%s.%s: Invalid value: must be a list of strings", path, key);
    size_t i;
    const json_t *v;
    json_array_foreach(a, i, v)
        if (!json_is_string(v))
            return ty_fail(err, "%s.%s[%zu]: Invalid value: must be a string", path, key, i);
    return 0;
}

static size_t strs_len(const json_t *obj, const char *key)
{
    const json_t *a = json_object_get(obj, key);
    return json_is_array(a) ? json_array_size(a) : 0;
}

static int check_rules(const json_t *obj, bool namespaced, ty_error *err)
{
    const json_t *rs = json_object_get(obj, "rules");
    if (!rs || json_is_null(rs))
        return 0;
    if (!json_is_array(rs))
        return ty_fail(err, "rules: Invalid value: must be a list of rules");
    size_t i;
    const json_t *r;
    json_array_foreach(rs, i, r) {
        char path[32];
        snprintf(path, sizeof path, "rules[%zu]", i);
        if (!json_is_object(r))
            return ty_fail(err, "%s: Invalid value: must be an object", path);
        static const char *const keys[] = {"verbs", "apiGroups", "resources", "resourceNames",
                                           "nonResourceURLs"};
        for (size_t k = 0; k < TY_ARRAY_LEN(keys); k++)
            if (check_strs(r, keys[k], path, err) < 0)
                return -1;
        if (strs_len(r, "verbs") == 0)
            return ty_fail(err, "%s.verbs: Required value: verbs must contain at least one value",
                           path);
        if (strs_len(r, "nonResourceURLs") > 0) {
            if (namespaced)
                return ty_fail(err, "%s.nonResourceURLs: Invalid value: namespaced rules cannot "
                               "apply to non-resource URLs", path);
            if (strs_len(r, "apiGroups") > 0 || strs_len(r, "resources") > 0)
                return ty_fail(err, "%s.nonResourceURLs: Invalid value: rules cannot apply to "
                               "both regular resources and non-resource URLs", path);
            continue;
        }
        if (strs_len(r, "apiGroups") == 0)
            return ty_fail(err, "%s.apiGroups: Required value: resource rules must supply at "
                           "least one api group", path);
        if (strs_len(r, "resources") == 0)
            return ty_fail(err, "%s.resources: Required value: resource rules must supply at "
                           "least one resource", path);
    }
    return 0;
}

static int check_binding(const json_t *obj, bool cluster, ty_error *err)
{
    const json_t *ref = json_object_get(obj, "roleRef");
    if (!json_is_object(ref))
        return ty_fail(err, "roleRef: Required value");
    const char *g = str_at(ref, "apiGroup"), *k = str_at(ref, "kind"), *n = str_at(ref, "name");
    if (!g || strcmp(g, TY_RBAC_GROUP) != 0)
        return ty_fail(err, "roleRef.apiGroup: Unsupported value: \"%s\": supported values: "
                       "\"" TY_RBAC_GROUP "\"", g ? g : "");
    if (cluster ? !k || strcmp(k, "ClusterRole") != 0
                : !k || (strcmp(k, "Role") != 0 && strcmp(k, "ClusterRole") != 0))
        return ty_fail(err, "roleRef.kind: Unsupported value: \"%s\": supported values: %s",
                       k ? k : "", cluster ? "\"ClusterRole\"" : "\"Role\", \"ClusterRole\"");
    if (!n || !*n)
        return ty_fail(err, "roleRef.name: Required value");
    const json_t *subs = json_object_get(obj, "subjects");
    if (!subs || json_is_null(subs))
        return 0;
    if (!json_is_array(subs))
        return ty_fail(err, "subjects: Invalid value: must be a list of subjects");
    size_t i;
    const json_t *s;
    json_array_foreach(subs, i, s) {
        if (!json_is_object(s))
            return ty_fail(err, "subjects[%zu]: Invalid value: must be an object", i);
        const char *sk = str_at(s, "kind"), *sn = str_at(s, "name");
        const char *sg = str_at(s, "apiGroup"), *sns = str_at(s, "namespace");
        if (!sn || !*sn)
            return ty_fail(err, "subjects[%zu].name: Required value", i);
        if (sk && strcmp(sk, "ServiceAccount") == 0) {
            if (sg && *sg)
                return ty_fail(err, "subjects[%zu].apiGroup: Unsupported value: \"%s\": "
                               "supported values: \"\"", i, sg);
            if (cluster && (!sns || !*sns))
                return ty_fail(err, "subjects[%zu].namespace: Required value", i);
        } else if (sk && (strcmp(sk, "User") == 0 || strcmp(sk, "Group") == 0)) {
            if (!sg || strcmp(sg, TY_RBAC_GROUP) != 0)
                return ty_fail(err, "subjects[%zu].apiGroup: Unsupported value: \"%s\": "
                               "supported values: \"" TY_RBAC_GROUP "\"", i, sg ? sg : "");
        } else {
            return ty_fail(err, "subjects[%zu].kind: Unsupported value: \"%s\": supported "
                           "values: \"ServiceAccount\", \"User\", \"Group\"", i, sk ? sk : "");
        }
    }
    return 0;
}

typedef enum rkind { K_NONE, K_ROLE, K_CLUSTER_ROLE, K_BINDING, K_CLUSTER_BINDING } rkind;

static rkind kind_of(const char *k)
{
    if (!k)
        return K_NONE;
    return strcmp(k, "Role") == 0                 ? K_ROLE
           : strcmp(k, "ClusterRole") == 0        ? K_CLUSTER_ROLE
           : strcmp(k, "RoleBinding") == 0        ? K_BINDING
           : strcmp(k, "ClusterRoleBinding") == 0 ? K_CLUSTER_BINDING
                                                  : K_NONE;
}

int ty_rbac_validate(const json_t *obj, ty_error *err)
{
    const char *k = str_at(obj, "kind");
    rkind kd = kind_of(k);
    if (kd == K_NONE)
        return ty_fail(err, "kind: Unsupported value: \"%s\": not an RBAC kind", k ? k : "");
    const json_t *md = json_object_get(obj, "metadata");
    const char *name = str_at(md, "name"), *ns = str_at(md, "namespace");
    if (!name || !*name)
        return ty_fail(err, "metadata.name: Required value");
    bool namespaced = kd == K_ROLE || kd == K_BINDING;
    if (namespaced && (!ns || !*ns))
        return ty_fail(err, "metadata.namespace: Required value");
    if (kd == K_ROLE || kd == K_CLUSTER_ROLE) {
        if (check_rules(obj, namespaced, err) < 0)
            return -1;
        const json_t *ag = json_object_get(obj, "aggregationRule");
        if (kd == K_CLUSTER_ROLE && ag && !json_is_null(ag)) {
            const json_t *sel = json_object_get(ag, "clusterRoleSelectors");
            if (!json_is_array(sel) || json_array_size(sel) == 0)
                return ty_fail(err, "aggregationRule.clusterRoleSelectors: Required value: at "
                               "least one clusterRoleSelector required if aggregationRule is "
                               "non-nil");
            size_t i;
            const json_t *s;
            json_array_foreach(sel, i, s)
                if (!json_is_object(s))
                    return ty_fail(err, "aggregationRule.clusterRoleSelectors[%zu]: Invalid "
                                   "value: must be a label selector", i);
        }
        return 0;
    }
    return check_binding(obj, kd == K_CLUSTER_BINDING, err);
}

/* ---------- parsing (after validation) ---------- */

static void parse_strs(strs *s, const json_t *obj, const char *key)
{
    const json_t *a = json_object_get(obj, key);
    s->n = json_is_array(a) ? json_array_size(a) : 0;
    s->v = s->n ? ty_calloc(s->n, sizeof *s->v) : NULL;
    for (size_t i = 0; i < s->n; i++)
        s->v[i] = ty_strdup(json_string_value(json_array_get(a, i)));
}

static void parse_rule(rule *r, const json_t *o)
{
    parse_strs(&r->verbs, o, "verbs");
    parse_strs(&r->groups, o, "apiGroups");
    parse_strs(&r->resources, o, "resources");
    parse_strs(&r->names, o, "resourceNames");
    parse_strs(&r->urls, o, "nonResourceURLs");
}

static void parse_rules(rules *rs, const json_t *arr)
{
    rs->n = json_is_array(arr) ? json_array_size(arr) : 0;
    rs->v = rs->n ? ty_calloc(rs->n, sizeof *rs->v) : NULL;
    for (size_t i = 0; i < rs->n; i++)
        parse_rule(&rs->v[i], json_array_get(arr, i));
}

static json_t *strs_json(const strs *s)
{
    json_t *a = json_array();
    for (size_t i = 0; i < s->n; i++)
        json_array_append_new(a, json_string(s->v[i]));
    return a;
}

static json_t *rule_json(const rule *r)
{
    json_t *o = json_object();
    json_object_set_new(o, "verbs", strs_json(&r->verbs));
    if (r->groups.n)
        json_object_set_new(o, "apiGroups", strs_json(&r->groups));
    if (r->resources.n)
        json_object_set_new(o, "resources", strs_json(&r->resources));
    if (r->names.n)
        json_object_set_new(o, "resourceNames", strs_json(&r->names));
    if (r->urls.n)
        json_object_set_new(o, "nonResourceURLs", strs_json(&r->urls));
    return o;
}

/* ---------- the index ---------- */

ty_rbac *ty_rbac_new(void)
{
    return TY_NEW(ty_rbac);
}

static void hits_free(hits *h)
{
    if (!h)
        return;
    free(h->b);
    free(h->si);
    free(h);
}

void ty_rbac_free(ty_rbac *r)
{
    if (!r)
        return;
    const ty_map_slot *s;
    for (size_t i = 0; ty_map_next(&r->roles, &i, &s);)
        role_free(s->value);
    for (size_t i = 0; ty_map_next(&r->bindings, &i, &s);)
        binding_free(s->value);
    for (size_t i = 0; ty_map_next(&r->subjects, &i, &s);)
        hits_free(s->value);
    ty_map_free(&r->roles);
    ty_map_free(&r->bindings);
    ty_map_free(&r->subjects);
    free(r);
}

json_t *ty_rbac_bootstrap_objects(void)
{
    json_error_t je;
    json_t *a = json_loads(ty_bootstrap_rbac_json, 0, &je);
    if (!a) {
        /* Embedded at build time and checked by the unit tests. */
        abort();
    }
    return a;
}

/* The key of an object: "ns/name" (names and namespaces cannot hold '/'). */
static char *obj_key(const char *ns, const char *name)
{
    return ty_asprintf("%s/%s", ns ? ns : "", name);
}

/* A subject's key in scope `scope`: scope '\n' kind name, into `buf` (of `cap` bytes) when it
 * fits, else a new allocation in *heap. */
static const char *subject_key(char *buf, size_t cap, char **heap, const char *scope, char kind,
                               const char *a, const char *b, const char *c, size_t *len)
{
    size_t ls = strlen(scope), la = strlen(a), lb = b ? strlen(b) : 0, lc = c ? strlen(c) : 0;
    size_t n = ls + 2 + la + lb + lc + (b ? 1 : 0);
    char *p = buf;
    if (n + 1 > cap)
        p = *heap = ty_malloc(n + 1);
    char *w = p;
    memcpy(w, scope, ls), w += ls;
    *w++ = '\n';
    *w++ = kind;
    memcpy(w, a, la), w += la;
    if (b) {
        memcpy(w, b, lb), w += lb;
        *w++ = ':';
        memcpy(w, c, lc), w += lc;
    }
    *w = '\0';
    *len = n;
    return p;
}

/* The key a binding's subject is indexed under: users and service accounts both by their
 * user name (a User subject named system:serviceaccount:ns:n is that service account, as
 * kube-apiserver matches it), groups by group name. NULL: it can match nobody (a service
 * account without a namespace in a ClusterRoleBinding). */
static const char *binding_subject_key(const binding *b, const subject *s, char *buf, size_t cap,
                                       char **heap, size_t *len)
{
    if (s->kind == 'G')
        return subject_key(buf, cap, heap, b->ns, 'G', s->name, NULL, NULL, len);
    if (s->kind == 'U')
        return subject_key(buf, cap, heap, b->ns, 'U', s->name, NULL, NULL, len);
    const char *sans = s->ns && *s->ns ? s->ns : b->ns;
    if (!*sans)
        return NULL;
    return subject_key(buf, cap, heap, b->ns, 'U', SA_PREFIX, sans, s->name, len);
}

static void index_binding(ty_rbac *r, const binding *b, bool add)
{
    for (size_t i = 0; i < b->nsubj; i++) {
        char buf[256], *heap = NULL;
        size_t len;
        const char *key = binding_subject_key(b, &b->subj[i], buf, sizeof buf, &heap, &len);
        if (!key)
            continue;
        hits *h = ty_map_get(&r->subjects, key, len);
        if (add) {
            if (!h) {
                h = TY_NEW(hits);
                ty_map_put(&r->subjects, key, len, h);
            }
            if (h->n == h->cap) {
                h->cap = h->cap ? h->cap * 2 : 4;
                h->b = ty_realloc(h->b, h->cap * sizeof *h->b);
                h->si = ty_realloc(h->si, h->cap * sizeof *h->si);
            }
            h->b[h->n] = b;
            h->si[h->n++] = (uint32_t)i;
        } else if (h) {
            for (size_t j = 0; j < h->n; j++)
                if (h->b[j] == b && h->si[j] == i) {
                    h->b[j] = h->b[h->n - 1];
                    h->si[j] = h->si[h->n - 1];
                    h->n--;
                    break;
                }
            if (h->n == 0)
                hits_free(ty_map_del(&r->subjects, key, len));
        }
        free(heap);
    }
}

static int cmp_role_name(const void *a, const void *b)
{
    const role *x = *(role *const *)a, *y = *(role *const *)b;
    return strcmp(x->name, y->name);
}

/* The clusterrole-aggregation controller's rule: an aggregated ClusterRole's rules are, for
 * each selector in turn, the rules of the other ClusterRoles it matches (by name), each added
 * once. Aggregated roles may feed each other (edit into admin), so this repeats until nothing
 * changes; a cycle of aggregated roles settles too since the union only grows. */
static void reaggregate(ty_rbac *r)
{
    size_t n = 0, cap = 0;
    role **all = NULL;
    const ty_map_slot *s;
    for (size_t i = 0; ty_map_next(&r->roles, &i, &s);) {
        role *ro = s->value;
        if (*ro->ns)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 32;
            all = ty_realloc(all, cap * sizeof *all);
        }
        all[n++] = ro;
    }
    if (n)
        qsort(all, n, sizeof *all, cmp_role_name);
    for (size_t round = 0; round <= n; round++) {
        bool changed = false;
        for (size_t a = 0; a < n; a++) {
            role *target = all[a];
            if (!target->selectors)
                continue;
            rules next = {0};
            size_t si;
            const json_t *sel;
            json_array_foreach(target->selectors, si, sel) {
                for (size_t j = 0; j < n; j++) {
                    if (j == a || !ty_label_selector_object_matches(sel, all[j]->labels))
                        continue;
                    const rules *src = role_rules(all[j]);
                    for (size_t k = 0; k < src->n; k++) {
                        bool dup = false;
                        for (size_t m = 0; m < next.n && !dup; m++)
                            dup = rule_eq(&next.v[m], &src->v[k]);
                        if (!dup)
                            rules_add_copy(&next, &src->v[k]);
                    }
                }
            }
            if (rules_eq(&next, &target->agg)) {
                rules_free(&next);
            } else {
                rules_free(&target->agg);
                target->agg = next;
                changed = true;
            }
        }
        if (!changed)
            break;
    }
    free(all);
}

/* Whether a change of ClusterRole `old` to `now` (either may be NULL) can alter an aggregated
 * role: it is or was aggregated itself, or an aggregated role selects it before or after. A
 * plain ClusterRole, the usual change, then costs one look at each aggregated role. */
static bool concerns_aggregation(const ty_rbac *r, const role *old, const role *now)
{
    if ((old && old->selectors) || (now && now->selectors))
        return true;
    const ty_map_slot *s;
    for (size_t i = 0; ty_map_next(&r->roles, &i, &s);) {
        const role *agg = s->value;
        if (*agg->ns || !agg->selectors)
            continue;
        size_t k;
        const json_t *sel;
        json_array_foreach(agg->selectors, k, sel)
            if ((old && ty_label_selector_object_matches(sel, old->labels)) ||
                (now && ty_label_selector_object_matches(sel, now->labels)))
                return true;
    }
    return false;
}

static void remove_binding(ty_rbac *r, const char *key)
{
    binding *old = ty_map_dels(&r->bindings, key);
    if (old) {
        index_binding(r, old, false);
        binding_free(old);
    }
}

/* Bindings live in one map: RoleBindings under "ns/name", ClusterRoleBindings "/name". */
int ty_rbac_put(ty_rbac *r, const json_t *obj, ty_error *err)
{
    if (ty_rbac_validate(obj, err) < 0)
        return -1;
    rkind kd = kind_of(str_at(obj, "kind"));
    const json_t *md = json_object_get(obj, "metadata");
    bool namespaced = kd == K_ROLE || kd == K_BINDING;
    const char *ns = namespaced ? str_at(md, "namespace") : "";
    TY_AUTOFREE char *key = obj_key(ns, str_at(md, "name"));
    if (kd == K_ROLE || kd == K_CLUSTER_ROLE) {
        role *ro = TY_NEW(role);
        ro->ns = ty_strdup(ns);
        ro->name = ty_strdup(str_at(md, "name"));
        parse_rules(&ro->own, json_object_get(obj, "rules"));
        if (kd == K_CLUSTER_ROLE) {
            const json_t *labels = json_object_get(md, "labels");
            ro->labels = json_is_object(labels) ? json_deep_copy(labels) : NULL;
            const json_t *sel =
                json_object_get(json_object_get(obj, "aggregationRule"), "clusterRoleSelectors");
            ro->selectors = json_is_array(sel) ? json_deep_copy(sel) : NULL;
        }
        role *old = ty_map_puts(&r->roles, key, ro);
        bool again = kd == K_CLUSTER_ROLE && concerns_aggregation(r, old, ro);
        role_free(old);
        if (again)
            reaggregate(r);
        return 0;
    }
    binding *b = TY_NEW(binding);
    b->ns = ty_strdup(ns);
    b->name = ty_strdup(str_at(md, "name"));
    const json_t *ref = json_object_get(obj, "roleRef");
    b->cluster_role = strcmp(str_at(ref, "kind"), "ClusterRole") == 0;
    b->role_name = ty_strdup(str_at(ref, "name"));
    const json_t *subs = json_object_get(obj, "subjects");
    b->nsubj = json_is_array(subs) ? json_array_size(subs) : 0;
    b->subj = b->nsubj ? ty_calloc(b->nsubj, sizeof *b->subj) : NULL;
    for (size_t i = 0; i < b->nsubj; i++) {
        const json_t *s = json_array_get(subs, i);
        const char *k = str_at(s, "kind"), *sns = str_at(s, "namespace");
        b->subj[i].kind = strcmp(k, "User") == 0 ? 'U' : strcmp(k, "Group") == 0 ? 'G' : 'S';
        b->subj[i].name = ty_strdup(str_at(s, "name"));
        b->subj[i].ns = sns ? ty_strdup(sns) : NULL;
    }
    remove_binding(r, key);
    ty_map_puts(&r->bindings, key, b);
    index_binding(r, b, true);
    return 0;
}

bool ty_rbac_remove(ty_rbac *r, const char *kindname, const char *ns, const char *name)
{
    rkind kd = kind_of(kindname);
    if (kd == K_NONE || !name)
        return false;
    bool namespaced = kd == K_ROLE || kd == K_BINDING;
    TY_AUTOFREE char *key = obj_key(namespaced ? ns : "", name);
    if (kd == K_ROLE || kd == K_CLUSTER_ROLE) {
        role *ro = ty_map_dels(&r->roles, key);
        if (!ro)
            return false;
        bool again = kd == K_CLUSTER_ROLE && concerns_aggregation(r, ro, NULL);
        role_free(ro);
        if (again)
            reaggregate(r);
        return true;
    }
    if (!ty_map_has(&r->bindings, key, strlen(key)))
        return false;
    remove_binding(r, key);
    return true;
}

json_t *ty_rbac_cluster_role_rules(const ty_rbac *r, const char *name)
{
    TY_AUTOFREE char *key = obj_key("", name);
    const role *ro = ty_map_gets(&r->roles, key);
    if (!ro)
        return NULL;
    const rules *rs = role_rules(ro);
    json_t *a = json_array();
    for (size_t i = 0; i < rs->n; i++)
        json_array_append_new(a, rule_json(&rs->v[i]));
    return a;
}

/* ---------- matching (kubernetes pkg/apis/rbac/v1/evaluation_helpers.go) ---------- */

static bool verb_matches(const rule *r, const char *verb)
{
    for (size_t i = 0; i < r->verbs.n; i++)
        if (strcmp(r->verbs.v[i], "*") == 0 || strcmp(r->verbs.v[i], verb) == 0)
            return true;
    return false;
}

static bool group_matches(const rule *r, const char *group)
{
    for (size_t i = 0; i < r->groups.n; i++)
        if (strcmp(r->groups.v[i], "*") == 0 || strcmp(r->groups.v[i], group) == 0)
            return true;
    return false;
}

/* `resource` or `resource/sub` exactly, `*`, or `* /sub` for a subresource request. */
static bool resource_matches(const rule *r, const char *res, const char *sub)
{
    size_t lres = strlen(res), lsub = sub ? strlen(sub) : 0;
    for (size_t i = 0; i < r->resources.n; i++) {
        const char *x = r->resources.v[i];
        if (strcmp(x, "*") == 0)
            return true;
        size_t lx = strlen(x);
        if (!lsub) {
            if (strcmp(x, res) == 0)
                return true;
            continue;
        }
        if (lx == lres + 1 + lsub && memcmp(x, res, lres) == 0 && x[lres] == '/' &&
            strcmp(x + lres + 1, sub) == 0)
            return true;
        if (lx == lsub + 2 && x[0] == '*' && x[1] == '/' && strcmp(x + 2, sub) == 0)
            return true;
    }
    return false;
}

static bool name_matches(const rule *r, const char *name)
{
    if (r->names.n == 0)
        return true;
    return name && strs_has(&r->names, name);
}

static bool url_matches(const rule *r, const char *path)
{
    for (size_t i = 0; i < r->urls.n; i++) {
        const char *u = r->urls.v[i];
        if (strcmp(u, "*") == 0 || strcmp(u, path) == 0)
            return true;
        size_t lu = strlen(u);
        if (lu && u[lu - 1] == '*') {
            while (lu && u[lu - 1] == '*') /* TrimRight of every trailing '*' */
                lu--;
            if (strncmp(path, u, lu) == 0)
                return true;
        }
    }
    return false;
}

static bool rule_allows(const rule *r, const ty_rbac_request *q)
{
    if (!verb_matches(r, q->verb))
        return false;
    if (q->resource)
        return group_matches(r, q->group ? q->group : "") &&
               resource_matches(r, q->resource, q->subresource && *q->subresource
                                                    ? q->subresource : NULL) &&
               name_matches(r, q->name && *q->name ? q->name : NULL);
    return url_matches(r, q->path ? q->path : "");
}

/* ---------- resolution ---------- */

static bool in_group(const ty_rbac_user *u, const char *g)
{
    for (size_t i = 0; i < u->ngroups; i++)
        if (strcmp(u->groups[i], g) == 0)
            return true;
    return false;
}

/* The rules a binding grants, or NULL when its role is missing. */
static const rules *binding_rules(const ty_rbac *r, const binding *b)
{
    char buf[512], *heap = NULL;
    const char *ns = b->cluster_role ? "" : b->ns;
    size_t n = strlen(ns) + 1 + strlen(b->role_name);
    char *key = n + 1 <= sizeof buf ? buf : (heap = ty_malloc(n + 1));
    snprintf(key, n + 1, "%s/%s", ns, b->role_name);
    const role *ro = ty_map_get(&r->roles, key, n);
    free(heap);
    return ro ? role_rules(ro) : NULL;
}

static bool subject_applies(const binding *b, const subject *s, const ty_rbac_user *u);

/* Bindings already walked in one decision: a binding that names the user and one of its
 * groups is found under both, and is walked once, as kube-apiserver does. */
typedef struct seen_set {
    const binding *small[16];
    const binding **v;
    size_t n, cap;
} seen_set;

static bool seen_add(seen_set *s, const binding *b)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->v[i] == b)
            return false;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : TY_ARRAY_LEN(s->small);
        if (!s->cap) {
            s->v = s->small;
        } else if (s->v == s->small) {
            s->v = ty_malloc(cap * sizeof *s->v);
            memcpy(s->v, s->small, sizeof s->small);
        } else {
            s->v = ty_realloc(s->v, cap * sizeof *s->v);
        }
        s->cap = cap;
    }
    s->v[s->n++] = b;
    return true;
}

/* Walks the bindings that apply to `u` in `scope` ("" for ClusterRoleBindings), each once and
 * described by its first subject that applies (as kube-apiserver's appliesTo); `fn` returns
 * false to stop, and then so does this. */
typedef bool (*visit_fn)(void *ctx, const binding *b, const subject *s, const rules *rs);

static bool visit_scope(const ty_rbac *r, const ty_rbac_user *u, const char *scope, visit_fn fn,
                        void *ctx, seen_set *seen)
{
    for (size_t g = 0; g <= u->ngroups; g++) {
        char buf[256], *heap = NULL;
        size_t len;
        const char *key = g == 0 ? subject_key(buf, sizeof buf, &heap, scope, 'U', u->name,
                                               NULL, NULL, &len)
                                 : subject_key(buf, sizeof buf, &heap, scope, 'G',
                                               u->groups[g - 1], NULL, NULL, &len);
        const hits *h = ty_map_get(&r->subjects, key, len);
        free(heap);
        for (size_t i = 0; h && i < h->n; i++) {
            const binding *b = h->b[i];
            if (!seen_add(seen, b))
                continue;
            size_t first = h->si[i];
            for (size_t j = 0; j < first; j++)
                if (subject_applies(b, &b->subj[j], u)) {
                    first = j;
                    break;
                }
            if (!fn(ctx, b, &b->subj[first], binding_rules(r, b)))
                return false;
        }
    }
    return true;
}

/* ClusterRoleBindings, then the RoleBindings of `ns` (none when ns is empty). */
static void visit_rules_for(const ty_rbac *r, const ty_rbac_user *u, const char *ns, visit_fn fn,
                            void *ctx)
{
    seen_set seen = {0};
    if (visit_scope(r, u, "", fn, ctx, &seen) && ns && *ns)
        visit_scope(r, u, ns, fn, ctx, &seen);
    if (seen.v != seen.small)
        free(seen.v);
}

static void describe_subject(ty_buf *out, const binding *b, const subject *s)
{
    if (s->kind == 'S')
        ty_buf_addf(out, "ServiceAccount \"%s/%s\"", s->name, s->ns && *s->ns ? s->ns : b->ns);
    else
        ty_buf_addf(out, "%s \"%s\"", s->kind == 'U' ? "User" : "Group", s->name);
}

static void describe_binding(ty_buf *out, const binding *b, const subject *s)
{
    if (*b->ns)
        ty_buf_addf(out, "RoleBinding \"%s/%s\"", b->name, b->ns);
    else
        ty_buf_addf(out, "ClusterRoleBinding \"%s\"", b->name);
    ty_buf_addf(out, " of %s \"%s\" to ", b->cluster_role ? "ClusterRole" : "Role",
                b->role_name);
    describe_subject(out, b, s);
}

/* A role a binding names and that does not exist, as kube-apiserver words it. */
static void missing_role(ty_buf *errs, size_t *nerrs, const binding *b)
{
    ty_buf_addf(errs, "%s%s.rbac.authorization.k8s.io \"%s\" not found", *nerrs ? ", " : "",
                b->cluster_role ? "clusterrole" : "role", b->role_name);
    (*nerrs)++;
}

typedef struct authz_ctx {
    const ty_rbac_request *q;
    bool allowed;
    ty_buf why;
    ty_buf errs;
    size_t nerrs;
} authz_ctx;

static bool authz_visit(void *ctx, const binding *b, const subject *s, const rules *rs)
{
    authz_ctx *c = ctx;
    if (!rs) {
        missing_role(&c->errs, &c->nerrs, b);
        return true;
    }
    for (size_t i = 0; i < rs->n; i++)
        if (rule_allows(&rs->v[i], c->q)) {
            c->allowed = true;
            ty_buf_adds(&c->why, "RBAC: allowed by ");
            describe_binding(&c->why, b, s);
            return false;
        }
    return true;
}

bool ty_rbac_authorize(const ty_rbac *r, const ty_rbac_user *u, const ty_rbac_request *q,
                       char **reason)
{
    if (reason)
        *reason = NULL;
    if (!q->verb)
        return false;
    if (in_group(u, TY_RBAC_MASTERS))
        return true;
    authz_ctx c = {.q = q, .why = TY_BUF_INIT, .errs = TY_BUF_INIT};
    visit_rules_for(r, u, q->resource ? q->ns : NULL, authz_visit, &c);
    if (reason) {
        if (c.allowed)
            *reason = ty_buf_steal(&c.why);
        else if (c.nerrs)
            *reason = c.nerrs == 1 ? ty_asprintf("RBAC: %s", c.errs.data)
                                   : ty_asprintf("RBAC: [%s]", c.errs.data);
    }
    ty_buf_free(&c.why);
    ty_buf_free(&c.errs);
    return c.allowed;
}

static bool subject_applies(const binding *b, const subject *s, const ty_rbac_user *u)
{
    if (s->kind == 'U')
        return strcmp(s->name, u->name) == 0;
    if (s->kind == 'G')
        return in_group(u, s->name);
    const char *sans = s->ns && *s->ns ? s->ns : b->ns;
    size_t lp = strlen(SA_PREFIX), ln = strlen(sans);
    return *sans && strncmp(u->name, SA_PREFIX, lp) == 0 &&
           strncmp(u->name + lp, sans, ln) == 0 && u->name[lp + ln] == ':' &&
           strcmp(u->name + lp + ln + 1, s->name) == 0;
}

bool ty_rbac_authorize_scan(const ty_rbac *r, const ty_rbac_user *u, const ty_rbac_request *q)
{
    if (!q->verb)
        return false;
    if (in_group(u, TY_RBAC_MASTERS))
        return true;
    const char *ns = q->resource && q->ns ? q->ns : "";
    const ty_map_slot *slot;
    for (size_t i = 0; ty_map_next(&r->bindings, &i, &slot);) {
        const binding *b = slot->value;
        if (*b->ns && strcmp(b->ns, ns) != 0)
            continue;
        for (size_t j = 0; j < b->nsubj; j++) {
            if (!subject_applies(b, &b->subj[j], u))
                continue;
            const rules *rs = binding_rules(r, b);
            for (size_t k = 0; rs && k < rs->n; k++)
                if (rule_allows(&rs->v[k], q))
                    return true;
            break;
        }
    }
    return false;
}

const char *ty_rbac_verb(const char *method, bool resource_request, bool named, bool watch)
{
    if (!resource_request) {
        static const char *const m[][2] = {{"GET", "get"},       {"HEAD", "head"},
                                           {"POST", "post"},     {"PUT", "put"},
                                           {"PATCH", "patch"},   {"DELETE", "delete"},
                                           {"OPTIONS", "options"}};
        for (size_t i = 0; i < TY_ARRAY_LEN(m); i++)
            if (strcmp(method, m[i][0]) == 0)
                return m[i][1];
        return NULL;
    }
    if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0)
        return watch ? "watch" : named ? "get" : "list";
    if (strcmp(method, "POST") == 0)
        return "create";
    if (strcmp(method, "PUT") == 0)
        return "update";
    if (strcmp(method, "PATCH") == 0)
        return "patch";
    if (strcmp(method, "DELETE") == 0)
        return named ? "delete" : "deletecollection";
    return NULL;
}

char *ty_rbac_forbidden_message(const ty_rbac_user *u, const ty_rbac_request *q,
                                const char *reason)
{
    ty_buf b = TY_BUF_INIT;
    if (!q->resource) {
        ty_buf_addf(&b, "forbidden: User \"%s\" cannot %s path \"%s\"", u->name, q->verb,
                    q->path ? q->path : "");
    } else {
        const char *group = q->group ? q->group : "";
        ty_buf_adds(&b, q->resource);
        if (*group)
            ty_buf_addf(&b, ".%s", group);
        if (q->name && *q->name)
            ty_buf_addf(&b, " \"%s\"", q->name);
        ty_buf_addf(&b, " is forbidden: User \"%s\" cannot %s resource \"%s", u->name, q->verb,
                    q->resource);
        if (q->subresource && *q->subresource)
            ty_buf_addf(&b, "/%s", q->subresource);
        ty_buf_addf(&b, "\" in API group \"%s\"", group);
        if (q->ns && *q->ns)
            ty_buf_addf(&b, " in the namespace \"%s\"", q->ns);
        else
            ty_buf_adds(&b, " at the cluster scope");
    }
    if (reason && *reason)
        ty_buf_addf(&b, ": %s", reason);
    return ty_buf_steal(&b);
}

/* ---------- escalation (kubernetes pkg/registry/rbac/validation/rule.go) ---------- */

typedef struct collect_ctx {
    rules all;
    ty_buf errs;
    size_t nerrs;
} collect_ctx;

static bool collect_visit(void *ctx, const binding *b, const subject *s, const rules *rs)
{
    (void)s;
    collect_ctx *c = ctx;
    if (!rs) {
        missing_role(&c->errs, &c->nerrs, b);
        return true;
    }
    for (size_t i = 0; i < rs->n; i++)
        rules_add_copy(&c->all, &rs->v[i]);
    return true;
}

static bool has_all(const strs *set, const strs *want)
{
    for (size_t i = 0; i < want->n; i++)
        if (!strs_has(set, want->v[i]))
            return false;
    return true;
}

static bool resources_cover(const strs *set, const strs *want)
{
    if (strs_has(set, "*") || has_all(set, want))
        return true;
    for (size_t i = 0; i < want->n; i++) {
        if (strs_has(set, want->v[i]))
            continue;
        const char *slash = strchr(want->v[i], '/');
        if (!slash)
            return false;
        TY_AUTOFREE char *any = ty_asprintf("*%s", slash);
        if (!strs_has(set, any))
            return false;
    }
    return true;
}

static bool url_covers(const char *owner, const char *sub)
{
    if (strcmp(owner, sub) == 0)
        return true;
    size_t lo = strlen(owner);
    if (!lo || owner[lo - 1] != '*')
        return false;
    while (lo && owner[lo - 1] == '*')
        lo--;
    return strncmp(sub, owner, lo) == 0;
}

static bool urls_cover(const strs *set, const strs *want)
{
    for (size_t i = 0; i < want->n; i++) {
        bool covered = false;
        for (size_t j = 0; j < set->n && !covered; j++)
            covered = url_covers(set->v[j], want->v[i]);
        if (!covered)
            return false;
    }
    return true;
}

static bool rule_covers(const rule *owner, const rule *sub)
{
    bool names = sub->names.n == 0 ? owner->names.n == 0
                                   : owner->names.n == 0 || has_all(&owner->names, &sub->names);
    return (strs_has(&owner->verbs, "*") || has_all(&owner->verbs, &sub->verbs)) &&
           (strs_has(&owner->groups, "*") || has_all(&owner->groups, &sub->groups)) &&
           resources_cover(&owner->resources, &sub->resources) &&
           urls_cover(&owner->urls, &sub->urls) && names;
}

static strs one(char *s)
{
    strs x = {ty_malloc(sizeof(char *)), 1};
    x.v[0] = ty_strdup(s);
    return x;
}

/* BreakdownRule: one rule per group x resource x verb (x name), and per URL x verb. */
static void breakdown(rules *out, const rule *r)
{
    for (size_t g = 0; g < r->groups.n; g++)
        for (size_t res = 0; res < r->resources.n; res++)
            for (size_t v = 0; v < r->verbs.n; v++)
                for (size_t n = 0; n < (r->names.n ? r->names.n : 1); n++) {
                    out->v = ty_realloc(out->v, (out->n + 1) * sizeof *out->v);
                    rule *a = &out->v[out->n++];
                    *a = (rule){.groups = one(r->groups.v[g]),
                                .resources = one(r->resources.v[res]),
                                .verbs = one(r->verbs.v[v])};
                    if (r->names.n)
                        a->names = one(r->names.v[n]);
                }
    for (size_t u = 0; u < r->urls.n; u++)
        for (size_t v = 0; v < r->verbs.n; v++) {
            out->v = ty_realloc(out->v, (out->n + 1) * sizeof *out->v);
            out->v[out->n++] = (rule){.urls = one(r->urls.v[u]), .verbs = one(r->verbs.v[v])};
        }
}

/* Go's %q of a []string: ["a" "b"]. */
static void add_quoted_list(ty_buf *b, const strs *s)
{
    ty_buf_addc(b, '[');
    for (size_t i = 0; i < s->n; i++) {
        ty_buf_adds(b, i ? " \"" : "\"");
        for (const char *p = s->v[i]; *p; p++) {
            if (*p == '"' || *p == '\\')
                ty_buf_addc(b, '\\');
            ty_buf_addc(b, *p);
        }
        ty_buf_addc(b, '"');
    }
    ty_buf_addc(b, ']');
}

/* rbacv1helpers.CompactString: {APIGroups:[..], Resources:[..], ..., Verbs:[..]}. */
static char *compact_string(const rule *r)
{
    ty_buf b = TY_BUF_INIT;
    ty_buf_addc(&b, '{');
    const struct {
        const char *label;
        const strs *s;
    } parts[] = {{"APIGroups", &r->groups}, {"Resources", &r->resources},
                 {"NonResourceURLs", &r->urls}, {"ResourceNames", &r->names},
                 {"Verbs", &r->verbs}};
    bool first = true;
    for (size_t i = 0; i < TY_ARRAY_LEN(parts); i++) {
        if (!parts[i].s->n)
            continue;
        ty_buf_addf(&b, "%s%s:", first ? "" : ", ", parts[i].label);
        add_quoted_list(&b, parts[i].s);
        first = false;
    }
    ty_buf_addc(&b, '}');
    return ty_buf_steal(&b);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The missing atoms, compacted as CompactRules does (one group, one resource, at most one
 * name: verbs merged) and listed sorted and unique, one a line. */
static char *describe_missing(const rules *missing)
{
    rules merged = {0};
    for (size_t i = 0; i < missing->n; i++) {
        const rule *m = &missing->v[i];
        bool simple = m->urls.n == 0 && m->groups.n == 1 && m->resources.n == 1;
        size_t j = merged.n;
        if (simple)
            for (j = 0; j < merged.n; j++) {
                const rule *x = &merged.v[j];
                if (x->urls.n == 0 && strs_eq(&x->groups, &m->groups) &&
                    strs_eq(&x->resources, &m->resources) && strs_eq(&x->names, &m->names))
                    break;
            }
        if (j == merged.n) {
            rules_add_copy(&merged, m);
            continue;
        }
        strs *v = &merged.v[j].verbs;
        v->v = ty_realloc(v->v, (v->n + m->verbs.n) * sizeof *v->v);
        for (size_t k = 0; k < m->verbs.n; k++)
            v->v[v->n++] = ty_strdup(m->verbs.v[k]);
    }
    char **lines = ty_calloc(merged.n ? merged.n : 1, sizeof *lines);
    for (size_t i = 0; i < merged.n; i++)
        lines[i] = compact_string(&merged.v[i]);
    qsort(lines, merged.n, sizeof *lines, cmp_str);
    ty_buf b = TY_BUF_INIT;
    for (size_t i = 0; i < merged.n; i++)
        if (i == 0 || strcmp(lines[i], lines[i - 1]) != 0)
            ty_buf_addf(&b, "%s%s", b.len ? "\n" : "", lines[i]);
    for (size_t i = 0; i < merged.n; i++)
        free(lines[i]);
    free(lines);
    rules_free(&merged);
    return ty_buf_steal(&b);
}

/* ConfirmNoEscalation: every atom of `want` covered by a rule the user holds in `ns`. */
static int confirm_no_escalation(const ty_rbac *r, const ty_rbac_user *u, const char *ns,
                                 const rules *want, const char *what, ty_error *err)
{
    collect_ctx c = {.errs = TY_BUF_INIT};
    visit_rules_for(r, u, ns, collect_visit, &c);
    rules atoms = {0}, missing = {0};
    for (size_t i = 0; i < want->n; i++)
        breakdown(&atoms, &want->v[i]);
    for (size_t i = 0; i < atoms.n; i++) {
        bool covered = false;
        for (size_t j = 0; j < c.all.n && !covered; j++)
            covered = rule_covers(&c.all.v[j], &atoms.v[i]);
        if (!covered)
            rules_add_copy(&missing, &atoms.v[i]);
    }
    int rc = 0;
    if (missing.n) {
        TY_AUTOFREE char *desc = describe_missing(&missing);
        ty_buf groups = TY_BUF_INIT;
        strs gs = {(char **)u->groups, u->ngroups};
        add_quoted_list(&groups, &gs);
        rc = ty_fail(err, "%s is forbidden: user \"%s\" (groups=%s) is attempting to grant RBAC "
                     "permissions not currently held:\n%s%s%s%s", what, u->name, groups.data,
                     desc, c.nerrs ? "; resolution errors: [" : "", c.nerrs ? c.errs.data : "",
                     c.nerrs ? "]" : "");
        ty_buf_free(&groups);
    }
    rules_free(&atoms);
    rules_free(&missing);
    rules_free(&c.all);
    ty_buf_free(&c.errs);
    return rc;
}

int ty_rbac_check_escalation(const ty_rbac *r, const ty_rbac_user *u, const json_t *obj,
                             ty_error *err)
{
    if (ty_rbac_validate(obj, err) < 0)
        return -1;
    if (in_group(u, TY_RBAC_MASTERS))
        return 0;
    rkind kd = kind_of(str_at(obj, "kind"));
    const json_t *md = json_object_get(obj, "metadata");
    const char *name = str_at(md, "name");
    const char *ns = kd == K_ROLE || kd == K_BINDING ? str_at(md, "namespace") : "";
    static const char *const plural[] = {[K_ROLE] = "roles", [K_CLUSTER_ROLE] = "clusterroles",
                                         [K_BINDING] = "rolebindings",
                                         [K_CLUSTER_BINDING] = "clusterrolebindings"};
    TY_AUTOFREE char *what = ty_asprintf("%s." TY_RBAC_GROUP " \"%s\"", plural[kd], name);
    rules want = {0};
    int rc;
    if (kd == K_ROLE || kd == K_CLUSTER_ROLE) {
        ty_rbac_request q = {.verb = "escalate", .group = TY_RBAC_GROUP,
                             .resource = plural[kd], .ns = ns, .name = name};
        if (ty_rbac_authorize(r, u, &q, NULL))
            return 0;
        const json_t *ag = json_object_get(obj, "aggregationRule");
        if (kd == K_CLUSTER_ROLE && ag && !json_is_null(ag)) {
            /* Aggregation can pull in any rule: only a holder of everything may set it. */
            char *star = "*";
            rule full[2] = {{.verbs = {&star, 1}, .groups = {&star, 1}, .resources = {&star, 1}},
                            {.verbs = {&star, 1}, .urls = {&star, 1}}};
            rules all = {full, 2};
            TY_CLEANUP_ERROR ty_error e = TY_ERROR_INIT;
            if (confirm_no_escalation(r, u, "", &all, what, &e) < 0)
                return ty_fail(err, "%s is forbidden: must have cluster-admin privileges to use "
                               "the aggregationRule", what);
        }
        parse_rules(&want, json_object_get(obj, "rules"));
        rc = confirm_no_escalation(r, u, ns, &want, what, err);
    } else {
        const json_t *ref = json_object_get(obj, "roleRef");
        bool cluster = strcmp(str_at(ref, "kind"), "ClusterRole") == 0;
        const char *role_name = str_at(ref, "name");
        ty_rbac_request q = {.verb = "bind", .group = TY_RBAC_GROUP,
                             .resource = cluster ? "clusterroles" : "roles", .ns = ns,
                             .name = role_name};
        if (ty_rbac_authorize(r, u, &q, NULL))
            return 0;
        binding probe = {.ns = (char *)ns, .cluster_role = cluster, .role_name = (char *)role_name};
        const rules *rs = binding_rules(r, &probe);
        if (!rs)
            return ty_fail(err, "%s is forbidden: %s.rbac.authorization.k8s.io \"%s\" not found",
                           what, cluster ? "clusterrole" : "role", role_name);
        for (size_t i = 0; i < rs->n; i++)
            rules_add_copy(&want, &rs->v[i]);
        rc = confirm_no_escalation(r, u, ns, &want, what, err);
    }
    rules_free(&want);
    return rc;
}

/* ---------- reviews ---------- */

json_t *ty_rbac_access_review(const ty_rbac *r, const ty_rbac_user *u, const json_t *spec,
                              ty_error *err)
{
    const json_t *ra = json_object_get(spec, "resourceAttributes");
    const json_t *na = json_object_get(spec, "nonResourceAttributes");
    bool has_ra = json_is_object(ra), has_na = json_is_object(na);
    if (has_ra == has_na) {
        ty_fail(err, "spec.resourceAttributes: Invalid value: exactly one of "
                "nonResourceAttributes or resourceAttributes must be specified");
        return NULL;
    }
    const char **groups = NULL;
    ty_rbac_user who = u ? *u : (ty_rbac_user){0};
    if (!u) {
        const json_t *gs = json_object_get(spec, "groups");
        who.name = str_at(spec, "user");
        who.ngroups = json_is_array(gs) ? json_array_size(gs) : 0;
        if ((!who.name || !*who.name) && who.ngroups == 0) {
            ty_fail(err, "spec.user: Invalid value: \"\": at least one of user or group must "
                    "be specified");
            return NULL;
        }
        groups = ty_calloc(who.ngroups + 1, sizeof *groups);
        for (size_t i = 0; i < who.ngroups; i++) {
            const json_t *g = json_array_get(gs, i);
            groups[i] = json_is_string(g) ? json_string_value(g) : NULL;
            if (!groups[i]) {
                free(groups);
                ty_fail(err, "spec.groups[%zu]: Invalid value: must be a string", i);
                return NULL;
            }
        }
        who.groups = groups;
        if (!who.name)
            who.name = "";
    }
    const json_t *attrs = has_ra ? ra : na;
    ty_rbac_request q = {.verb = str_at(attrs, "verb")};
    if (has_ra) {
        q.group = str_at(ra, "group");
        q.resource = str_at(ra, "resource");
        if (!q.resource)
            q.resource = "";
        q.subresource = str_at(ra, "subresource");
        q.ns = str_at(ra, "namespace");
        q.name = str_at(ra, "name");
    } else {
        q.path = str_at(na, "path");
    }
    char *reason = NULL;
    bool ok = q.verb && ty_rbac_authorize(r, &who, &q, &reason);
    json_t *st = json_pack("{s:b}", "allowed", ok);
    if (reason)
        json_object_set_new(st, "reason", json_string(reason));
    free(reason);
    free(groups);
    return st;
}

typedef struct review_ctx {
    json_t *res, *nonres;
    ty_buf errs;
    size_t nerrs;
} review_ctx;

static bool review_visit(void *ctx, const binding *b, const subject *s, const rules *rs)
{
    (void)s;
    review_ctx *c = ctx;
    if (!rs) {
        missing_role(&c->errs, &c->nerrs, b);
        return true;
    }
    for (size_t i = 0; i < rs->n; i++) {
        const rule *x = &rs->v[i];
        if (x->resources.n) {
            json_t *o = json_pack("{s:o, s:o, s:o}", "verbs", strs_json(&x->verbs), "apiGroups",
                                  strs_json(&x->groups), "resources", strs_json(&x->resources));
            if (x->names.n)
                json_object_set_new(o, "resourceNames", strs_json(&x->names));
            json_array_append_new(c->res, o);
        }
        if (x->urls.n)
            json_array_append_new(c->nonres,
                                  json_pack("{s:o, s:o}", "verbs", strs_json(&x->verbs),
                                            "nonResourceURLs", strs_json(&x->urls)));
    }
    return true;
}

json_t *ty_rbac_rules_review(const ty_rbac *r, const ty_rbac_user *u, const char *ns)
{
    review_ctx c = {json_array(), json_array(), TY_BUF_INIT, 0};
    if (in_group(u, TY_RBAC_MASTERS)) {
        /* The privileged-group authorizer's own rules come first, as kube-apiserver lists. */
        json_array_append_new(c.res, json_pack("{s:[s], s:[s], s:[s]}", "verbs", "*",
                                               "apiGroups", "*", "resources", "*"));
        json_array_append_new(c.nonres, json_pack("{s:[s], s:[s]}", "verbs", "*",
                                                  "nonResourceURLs", "*"));
    }
    visit_rules_for(r, u, ns, review_visit, &c);
    json_t *st = json_pack("{s:o, s:o, s:b}", "resourceRules", c.res, "nonResourceRules",
                           c.nonres, "incomplete", c.nerrs > 0);
    if (c.nerrs)
        json_object_set_new(st, "evaluationError",
                            c.nerrs == 1 ? json_string(c.errs.data)
                                         : json_sprintf("[%s]", c.errs.data));
    ty_buf_free(&c.errs);
    return st;
}
