/* kueue.x-k8s.io/v1beta1 (ResourceFlavor, AdmissionCheck, ClusterQueue, LocalQueue, Workload,
 * WorkloadPriorityClass) as Kueue v0.9-v0.10 installs them, and scheduling.k8s.io/v1
 * PriorityClass, which Kueue reads for pod priorities.
 *
 * Defaults are the CRDs' (+kubebuilder:default) and the webhooks'; rules are the CRDs' own
 * (maxItems, patterns, the CEL rules) with the API server's wording ("Too many", "in body
 * should match", Invalid value: "object": <message>) and the validating webhooks'
 * (pkg/webhooks, one file per kind) with Kueue's. The rules of an update (immutable fields)
 * are the kinds' update_rules, run by ty_api_check_update(). The resource-in-use finalizer
 * Kueue's webhook adds is left to the controller that would remove it. */
#include <stdio.h>
#include <string.h>

#include "api/api_int.h"
#include "base/mem.h"
#include "base/quantity.h"

/* The OpenAPI documents, embedded at build time (the Makefile makes this object depend on the
 * JSON files); NUL-terminated so jansson can read them as strings. */
__asm__(".section .rodata\n"
        ".global ty_schema_kueue_v1beta1\n"
        "ty_schema_kueue_v1beta1:\n"
        ".incbin \"src/api/schemas/kueue.x-k8s.io_v1beta1.json\"\n"
        ".byte 0\n"
        ".global ty_schema_scheduling_v1\n"
        "ty_schema_scheduling_v1:\n"
        ".incbin \"src/api/schemas/scheduling.k8s.io_v1.json\"\n"
        ".byte 0\n"
        ".previous");
extern const char ty_schema_kueue_v1beta1[];
extern const char ty_schema_scheduling_v1[];

/* A new inlined copy of one kind's schema; the document stays loaded for the other kinds. */
static json_t *kueue_schema(const char *name)
{
    static json_t *doc;
    if (!doc)
        doc = ty_schema_doc_load(ty_schema_kueue_v1beta1);
    return ty_schema_inline(doc, name);
}

#define SCHEMA_FN(fn, name)                                                                        \
    static const json_t *fn(void)                                                                  \
    {                                                                                              \
        static json_t *s;                                                                          \
        if (!s)                                                                                    \
            s = kueue_schema(name);                                                      \
        return s;                                                                                  \
    }
SCHEMA_FN(flavor_schema, "io.x-k8s.kueue.v1beta1.ResourceFlavor")
SCHEMA_FN(ac_schema, "io.x-k8s.kueue.v1beta1.AdmissionCheck")
SCHEMA_FN(cq_schema, "io.x-k8s.kueue.v1beta1.ClusterQueue")
SCHEMA_FN(lq_schema, "io.x-k8s.kueue.v1beta1.LocalQueue")
SCHEMA_FN(wl_schema, "io.x-k8s.kueue.v1beta1.Workload")
SCHEMA_FN(wpc_schema, "io.x-k8s.kueue.v1beta1.WorkloadPriorityClass")

static const json_t *pc_schema(void)
{
    static json_t *s;
    if (!s) {
        /* One kind: the inlined copy is all that is kept. */
        json_t *doc = ty_schema_doc_load(ty_schema_scheduling_v1);
        s = ty_schema_inline(doc, "io.k8s.api.scheduling.v1.PriorityClass");
        json_decref(doc);
    }
    return s;
}

/* ---------- helpers ---------- */

/* The member `key` of `obj` as an object, created when absent; NULL when it is something else
 * (the schema walk has reported that). */
static json_t *object_member(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (!v) {
        v = json_object();
        json_object_set_new(obj, key, v);
    }
    return json_is_object(v) ? v : NULL;
}

static void default_string(json_t *obj, const char *key, const char *value)
{
    if (json_is_object(obj) && !json_object_get(obj, key))
        json_object_set_new(obj, key, json_string(value));
}

/* The position of obj[key], or `pos` when the member is absent or has none. */
static ty_pos member_or(ty_schema_ctx *c, const json_t *obj, const char *key, ty_pos pos)
{
    ty_pos p = json_object_get(obj, key) ? ty_pos_member(c, obj, key) : (ty_pos){0, 0};
    return p.line ? p : pos;
}

/* A CEL rule's failure as the API server reports it: on the object the rule is declared on,
 * with the value shown as its type ("object", "array"). */
static void cel_fail(ty_schema_ctx *c, const char *path, ty_pos pos, const char *type,
                     const char *msg)
{
    ty_field_errors_add(c->errs, path, pos, "Invalid value: \"%s\": %s", type, msg);
}

/* maxItems / minItems (and maxProperties), in the API server's words. */
static void check_count(ty_schema_ctx *c, const char *path, ty_pos pos, size_t n, size_t min,
                        size_t max)
{
    if (max && n > max)
        ty_field_errors_add(c->errs, path, pos, "Too many: %zu: must have at most %zu items", n,
                            max);
    else if (n < min)
        ty_field_errors_add(c->errs, path, pos, "Invalid value: %zu: %s in body should have at "
                            "least %zu items", n, path, min);
}

/* The kinds' name references (ClusterQueueReference, ResourceFlavorReference, a cohort, a
 * queue name): maxLength 253 and the DNS-1123 subdomain pattern of the CRDs; a pod set name:
 * maxLength 63 and the DNS-1123 label pattern. */
static const char subdomain_re[] =
    "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
static const char label_re[] = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";

static void check_ref(ty_schema_ctx *c, const json_t *parent, const char *key, const char *path,
                      bool label)
{
    const json_t *v = json_object_get(parent, key);
    if (!json_is_string(v))
        return;
    const char *s = json_string_value(v);
    size_t max = label ? 63 : 253;
    ty_pos pos = ty_pos_member(c, parent, key);
    if (strlen(s) > max) {
        ty_field_errors_add(c->errs, path, pos, "Too long: may not be more than %zu bytes", max);
        return;
    }
    bool bad = !*s || (label ? ty_check_dns1123_label(s) : ty_check_dns1123_subdomain(s));
    if (bad)
        ty_fe_invalid(c, path, pos, v, "%s in body should match '%s'", path,
                      label ? label_re : subdomain_re);
}

static void check_object_name(ty_schema_ctx *c, json_t *obj)
{
    json_t *meta = json_object_get(obj, "metadata");
    json_t *name = json_object_get(meta, "name");
    if (!json_is_string(name) || !*json_string_value(name))
        return;
    const char *why = ty_check_dns1123_subdomain(json_string_value(name));
    if (why)
        ty_fe_invalid(c, "metadata.name", ty_pos_member(c, meta, "name"), name, "%s", why);
}

/* A quantity as Kubernetes prints it in a message (Quantity.String()). */
static json_t *qty_repr(const json_t *v, ty_quantity q)
{
    if (json_is_string(v))
        return json_string(json_string_value(v));
    char buf[32];
    return json_string(ty_quantity_format(q, false, buf, sizeof buf));
}

/* metav1 ValidateLabels over a string map at `path`. */
static void check_label_map(ty_schema_ctx *c, const json_t *map, const char *path)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)map, k, v) {
        const char *why = ty_check_qualified_name(k);
        if (why) {
            json_t *kv = json_string(k);
            ty_fe_invalid(c, path, ty_pos_key(c, map, k), kv, "%s", why);
            json_decref(kv);
        }
        if (json_is_string(v) && (why = ty_check_label_value(json_string_value(v))))
            ty_fe_invalid(c, path, ty_pos_member(c, map, k), v, "%s", why);
    }
}

/* metav1 ValidateLabelSelector. */
static void check_selector(ty_schema_ctx *c, const json_t *sel, ty_buf *path)
{
    if (!json_is_object(sel))
        return;
    const json_t *ml = json_object_get(sel, "matchLabels");
    if (json_is_object(ml)) {
        size_t l = ty_path_key(path, "matchLabels");
        check_label_map(c, ml, path->data);
        ty_path_pop(path, l);
    }
    const json_t *exprs = json_object_get(sel, "matchExpressions");
    size_t i;
    json_t *e;
    json_array_foreach(exprs, i, e) {
        if (!json_is_object(e))
            continue;
        size_t l = ty_path_key(path, "matchExpressions");
        ty_path_index(path, i);
        const char *op = json_string_value(json_object_get(e, "operator"));
        const json_t *values = json_object_get(e, "values");
        size_t nv = json_is_array(values) ? json_array_size(values) : 0;
        size_t l2 = path->len;
        if (op && (!strcmp(op, "In") || !strcmp(op, "NotIn"))) {
            if (nv == 0) {
                ty_path_key(path, "values");
                ty_fe_required(c, path->data, member_or(c, e, "values", ty_pos_index(c, exprs, i)),
                               "must be specified when `operator` is 'In' or 'NotIn'");
            }
        } else if (op && (!strcmp(op, "Exists") || !strcmp(op, "DoesNotExist"))) {
            if (nv > 0) {
                ty_path_key(path, "values");
                ty_fe_forbidden(c, path->data, ty_pos_member(c, e, "values"),
                                "may not be specified when `operator` is 'Exists' or "
                                "'DoesNotExist'");
            }
        } else if (op) {
            ty_path_key(path, "operator");
            ty_fe_invalid(c, path->data, ty_pos_member(c, e, "operator"),
                          json_object_get(e, "operator"), "not a valid selector operator");
        }
        ty_path_pop(path, l2);
        const json_t *key = json_object_get(e, "key");
        const char *why = json_is_string(key) ? ty_check_qualified_name(json_string_value(key))
                                              : NULL;
        if (why) {
            ty_path_key(path, "key");
            ty_fe_invalid(c, path->data, ty_pos_member(c, e, "key"), key, "%s", why);
        }
        ty_path_pop(path, l);
    }
}

/* The CEL rules the CRDs put on toleration lists (ResourceFlavor.spec.tolerations). */
static void check_tolerations(ty_schema_ctx *c, const json_t *parent, const char *key,
                              const char *path)
{
    const json_t *tols = json_object_get(parent, key);
    if (!json_is_array(tols))
        return;
    ty_pos pos = ty_pos_member(c, parent, key);
    check_count(c, path, pos, json_array_size(tols), 0, 8);
    bool key_exists = true, secs_noexec = true, op_ok = true, exists_novalue = true,
         effect_ok = true;
    size_t i;
    json_t *t;
    json_array_foreach(tols, i, t) {
        const char *k = json_string_value(json_object_get(t, "key"));
        const char *op = json_string_value(json_object_get(t, "operator"));
        const char *eff = json_string_value(json_object_get(t, "effect"));
        if (!k && !(op && !strcmp(op, "Exists")))
            key_exists = false;
        if (json_object_get(t, "tolerationSeconds") && !(eff && !strcmp(eff, "NoExecute")))
            secs_noexec = false;
        if (op && strcmp(op, "Equal") && strcmp(op, "Exists"))
            op_ok = false;
        if (op && !strcmp(op, "Exists") && json_object_get(t, "value"))
            exists_novalue = false;
        if (eff && strcmp(eff, "NoSchedule") && strcmp(eff, "PreferNoSchedule") &&
            strcmp(eff, "NoExecute"))
            effect_ok = false;
    }
    if (!key_exists)
        cel_fail(c, path, pos, "array", "operator must be Exists when 'key' is empty, which "
                 "means 'match all values and all keys'");
    if (!secs_noexec)
        cel_fail(c, path, pos, "array", "effect must be 'NoExecute' when 'tolerationSeconds' "
                 "is set");
    if (!op_ok)
        cel_fail(c, path, pos, "array", "supported toleration values: 'Equal'(default), "
                 "'Exists'");
    if (!exists_novalue)
        cel_fail(c, path, pos, "array", "a value must be empty when 'operator' is 'Exists'");
    if (!effect_ok)
        cel_fail(c, path, pos, "array", "supported taint effect values: 'NoSchedule', "
                 "'PreferNoSchedule', 'NoExecute'");
}

/* `obj.<a>.<b>` (b may be NULL). */
static const json_t *member2(const json_t *obj, const char *a, const char *b)
{
    const json_t *v = json_object_get(obj, a);
    return b ? json_object_get(v, b) : v;
}

/* ValidateImmutableField: the new value (absent as null) must equal the old one. */
static void immutable(ty_schema_ctx *c, const json_t *obj, const json_t *old, const char *a,
                      const char *b, const char *path)
{
    const json_t *n = member2(obj, a, b), *o = member2(old, a, b);
    if ((n || o) && !(n && o && json_equal(n, o))) {
        json_t *nul = json_null();
        ty_fe_invalid(c, path, (ty_pos){0, 0}, n ? n : nul, "field is immutable");
        json_decref(nul);
    }
}

/* ---------- AdmissionCheck ---------- */

/* The CRD's rules: controllerName required and not empty, immutable (CEL); the parameters
 * reference's patterns and lengths. */
static void ac_rules(ty_schema_ctx *c, json_t *obj)
{
    check_object_name(c, obj);
    const json_t *spec = json_object_get(obj, "spec");
    if (!json_is_object(spec))
        return;
    const json_t *cn = json_object_get(spec, "controllerName");
    if (json_is_string(cn) && !*json_string_value(cn))
        ty_fe_required(c, "spec.controllerName", ty_pos_member(c, spec, "controllerName"),
                       "Required value");
    const json_t *params = json_object_get(spec, "parameters");
    if (json_is_object(params)) {
        check_ref(c, params, "apiGroup", "spec.parameters.apiGroup", false);
        check_ref(c, params, "name", "spec.parameters.name", true);
        const json_t *kind = json_object_get(params, "kind");
        const char *k = json_string_value(kind);
        bool ok = k && *k && strlen(k) <= 63 && ((*k | 32) >= 'a' && (*k | 32) <= 'z');
        for (const char *x = k; ok && *x; x++)
            ok = ((*x | 32) >= 'a' && (*x | 32) <= 'z') || (*x >= '0' && *x <= '9') ||
                 (*x == '-' && x[1]);
        if (k && !ok)
            ty_fe_invalid(c, "spec.parameters.kind", ty_pos_member(c, params, "kind"), kind,
                          "spec.parameters.kind in body should match "
                          "'^(?i)[a-z]([-a-z0-9]*[a-z0-9])?$'");
    }
}

static void ac_defaults(ty_schema_ctx *c, json_t *obj)
{
    (void)c;
    json_t *spec = json_object_get(obj, "spec");
    if (json_is_object(spec) && !json_object_get(spec, "retryDelayMinutes"))
        json_object_set_new(spec, "retryDelayMinutes", json_integer(15));
}

static void ac_update(ty_schema_ctx *c, const json_t *obj, const json_t *old)
{
    const json_t *n = member2(obj, "spec", "controllerName"),
                 *o = member2(old, "spec", "controllerName");
    if (n && o && !json_equal(n, o))
        cel_fail(c, "spec.controllerName", (ty_pos){0, 0}, "string", "field is immutable");
}

/* ---------- ResourceFlavor ---------- */

static void flavor_defaults(ty_schema_ctx *c, json_t *obj)
{
    (void)c;
    (void)obj;
}

static void flavor_rules(ty_schema_ctx *c, json_t *obj)
{
    check_object_name(c, obj);
    json_t *spec = json_object_get(obj, "spec");
    if (!json_is_object(spec))
        return;
    const json_t *labels = json_object_get(spec, "nodeLabels");
    if (json_is_object(labels)) {
        check_count(c, "spec.nodeLabels", ty_pos_member(c, spec, "nodeLabels"),
                    json_object_size(labels), 0, 8);
        check_label_map(c, labels, "spec.nodeLabels");
    }
    const json_t *taints = json_object_get(spec, "nodeTaints");
    if (json_is_array(taints)) {
        ty_pos pos = ty_pos_member(c, spec, "nodeTaints");
        check_count(c, "spec.nodeTaints", pos, json_array_size(taints), 0, 8);
        bool effect_ok = true;
        size_t i;
        json_t *t;
        json_array_foreach(taints, i, t) {
            const char *eff = json_string_value(json_object_get(t, "effect"));
            if (!eff || (strcmp(eff, "NoSchedule") && strcmp(eff, "PreferNoSchedule") &&
                         strcmp(eff, "NoExecute")))
                effect_ok = false;
            /* The webhook's ValidateTaints: a qualified key, a label value. */
            const json_t *k = json_object_get(t, "key");
            const char *why = json_is_string(k) && *json_string_value(k)
                                  ? ty_check_qualified_name(json_string_value(k))
                                  : NULL;
            if (why) {
                TY_AUTOFREE char *p = ty_asprintf("spec.nodeTaints[%zu].key", i);
                ty_fe_invalid(c, p, ty_pos_member(c, t, "key"), k, "%s", why);
            }
            const json_t *v = json_object_get(t, "value");
            why = json_is_string(v) ? ty_check_label_value(json_string_value(v)) : NULL;
            if (why) {
                TY_AUTOFREE char *p = ty_asprintf("spec.nodeTaints[%zu].value", i);
                ty_fe_invalid(c, p, ty_pos_member(c, t, "value"), v, "%s", why);
            }
        }
        if (!effect_ok)
            cel_fail(c, "spec.nodeTaints", pos, "array", "supported taint effect values: "
                     "'NoSchedule', 'PreferNoSchedule', 'NoExecute'");
    }
    check_tolerations(c, spec, "tolerations", "spec.tolerations");
    /* Topology-aware scheduling places pods by node labels, so a flavor with a topology
     * names some. */
    if (json_object_get(spec, "topologyName") &&
        (!json_is_object(labels) || json_object_size(labels) == 0))
        cel_fail(c, "spec", ty_pos_member(c, obj, "spec"), "object",
                 "at least one nodeLabel is required when topology is set");
}

/* ---------- ClusterQueue ---------- */

static void cq_defaults(ty_schema_ctx *c, json_t *obj)
{
    (void)c;
    json_t *spec = object_member(obj, "spec");
    if (!spec)
        return;
    default_string(spec, "queueingStrategy", "BestEffortFIFO");
    default_string(spec, "stopPolicy", "None");
    json_t *ff = object_member(spec, "flavorFungibility");
    default_string(ff, "whenCanBorrow", "Borrow");
    default_string(ff, "whenCanPreempt", "TryNextFlavor");
    json_t *pre = object_member(spec, "preemption");
    if (pre) {
        default_string(pre, "reclaimWithinCohort", "Never");
        default_string(pre, "withinClusterQueue", "Never");
        default_string(object_member(pre, "borrowWithinCohort"), "policy", "Never");
    }
    json_t *fs = json_object_get(spec, "fairSharing");
    if (json_is_object(fs) && !json_object_get(fs, "weight"))
        json_object_set_new(fs, "weight", json_string("1"));
}

/* One flavor's quotas (validateFlavorQuotas): resources named as coveredResources, in their
 * order; quantities not negative; limits only in a cohort; lendingLimit <= nominalQuota.
 * `path` ends at the flavor. Returns whether some borrowingLimit is set. */
static bool check_flavor_quotas(ty_schema_ctx *c, const json_t *fq, const json_t *covered,
                                bool cohort, ty_buf *path)
{
    bool borrowing = false;
    const json_t *res = json_object_get(fq, "resources");
    size_t l0 = ty_path_key(path, "resources");
    if (json_is_array(res))
        check_count(c, path->data, ty_pos_member(c, fq, "resources"), json_array_size(res), 1,
                    64);
    size_t i;
    json_t *rq;
    json_array_foreach(res, i, rq) {
        if (!json_is_object(rq))
            continue;
        size_t l1 = ty_path_index(path, i);
        const json_t *name = json_object_get(rq, "name");
        const json_t *want = json_array_get(covered, i);
        if (json_is_string(name) && json_is_string(want) &&
            strcmp(json_string_value(name), json_string_value(want)) != 0) {
            size_t l2 = ty_path_key(path, "name");
            ty_fe_invalid(c, path->data, ty_pos_member(c, rq, "name"), name,
                          "must match the name in coveredResources");
            ty_path_pop(path, l2);
        }
        static const char *const fields[] = {"nominalQuota", "borrowingLimit", "lendingLimit"};
        ty_quantity q[3];
        bool has[3];
        for (size_t f = 0; f < 3; f++) {
            TY_CLEANUP_ERROR ty_error err = TY_ERROR_INIT;
            const json_t *v = json_object_get(rq, fields[f]);
            has[f] = v && !json_is_null(v) && ty_quantity_from_json(v, &q[f], &err) == 0;
            if (f == 1 && v && !json_is_null(v))
                borrowing = true;
            if (!has[f])
                continue;
            size_t l2 = ty_path_key(path, fields[f]);
            ty_pos pos = ty_pos_member(c, rq, fields[f]);
            json_t *repr = qty_repr(v, q[f]);
            if (q[f].milli < 0)
                ty_fe_invalid(c, path->data, pos, repr, "must be greater than or equal to 0");
            if (f == 2 && !cohort)
                ty_fe_invalid(c, path->data, pos, repr, "must be nil when cohort is empty");
            if (f == 2 && has[0] && q[2].milli > q[0].milli)
                ty_fe_invalid(c, path->data, pos, repr,
                              "must be less than or equal to the nominalQuota");
            json_decref(repr);
            ty_path_pop(path, l2);
        }
        ty_path_pop(path, l1);
    }
    ty_path_pop(path, l0);
    return borrowing;
}

static void cq_rules(ty_schema_ctx *c, json_t *obj)
{
    check_object_name(c, obj);
    json_t *spec = json_object_get(obj, "spec");
    if (!json_is_object(spec))
        return;
    ty_pos spec_pos = ty_pos_member(c, obj, "spec");
    const json_t *cohort = json_object_get(spec, "cohort");
    bool in_cohort = json_is_string(cohort) && *json_string_value(cohort);
    if (in_cohort)
        check_ref(c, spec, "cohort", "spec.cohort", false);

    TY_AUTOBUF ty_buf path = TY_BUF_INIT;
    ty_buf_adds(&path, "spec.resourceGroups");
    const json_t *rgs = json_object_get(spec, "resourceGroups");
    bool borrowing = false;
    if (json_is_array(rgs))
        check_count(c, path.data, ty_pos_member(c, spec, "resourceGroups"), json_array_size(rgs),
                    0, 16);
    json_t *seen_res = json_object(), *seen_flavors = json_object();
    size_t g, total_flavors = 0, total_resources = 0;
    json_t *rg;
    json_array_foreach(rgs, g, rg) {
        if (!json_is_object(rg))
            continue;
        size_t lg = ty_path_index(&path, g);
        ty_pos rg_pos = ty_pos_index(c, rgs, g);
        const json_t *covered = json_object_get(rg, "coveredResources");
        const json_t *flavors = json_object_get(rg, "flavors");
        size_t l1 = ty_path_key(&path, "coveredResources");
        if (json_is_array(covered)) {
            check_count(c, path.data, member_or(c, rg, "coveredResources", rg_pos),
                        json_array_size(covered), 1, 64);
            total_resources += json_array_size(covered);
        }
        size_t j;
        json_t *name;
        json_array_foreach(covered, j, name) {
            if (!json_is_string(name))
                continue;
            size_t l2 = ty_path_index(&path, j);
            ty_pos pos = ty_pos_index(c, covered, j);
            const char *why = ty_check_qualified_name(json_string_value(name));
            if (why)
                ty_fe_invalid(c, path.data, pos, name, "%s", why);
            else if (json_object_get(seen_res, json_string_value(name)))
                ty_fe_duplicate(c, path.data, pos, name);
            json_object_set_new(seen_res, json_string_value(name), json_true());
            ty_path_pop(&path, l2);
        }
        ty_path_pop(&path, l1);
        l1 = ty_path_key(&path, "flavors");
        if (json_is_array(flavors)) {
            check_count(c, path.data, member_or(c, rg, "flavors", rg_pos),
                        json_array_size(flavors), 1, 64);
            total_flavors += json_array_size(flavors);
        }
        bool same_count = true;
        json_t *fq;
        json_array_foreach(flavors, j, fq) {
            if (!json_is_object(fq))
                continue;
            size_t l2 = ty_path_index(&path, j);
            const json_t *res = json_object_get(fq, "resources");
            if (json_is_array(res) && json_is_array(covered) &&
                json_array_size(res) != json_array_size(covered))
                same_count = false;
            const json_t *fname = json_object_get(fq, "name");
            size_t l3 = ty_path_key(&path, "name");
            check_ref(c, fq, "name", path.data, false);
            if (json_is_string(fname)) {
                if (json_object_get(seen_flavors, json_string_value(fname)))
                    ty_fe_duplicate(c, path.data, ty_pos_member(c, fq, "name"), fname);
                json_object_set_new(seen_flavors, json_string_value(fname), json_true());
            }
            ty_path_pop(&path, l3);
            borrowing |= check_flavor_quotas(c, fq, covered, in_cohort, &path);
            ty_path_pop(&path, l2);
        }
        ty_path_pop(&path, l1);
        if (!same_count)
            cel_fail(c, path.data, rg_pos, "object",
                     "flavors must have the same number of resources as the coveredResources");
        ty_path_pop(&path, lg);
    }
    json_decref(seen_res);
    json_decref(seen_flavors);
    /* The CRD's limits across groups. */
    if (total_flavors > 256)
        ty_field_errors_add(c->errs, "spec.resourceGroups", ty_pos_member(c, spec, "resourceGroups"),
                            "Invalid value: \"array\": must have at most 256 flavors in all "
                            "resource groups");
    if (total_resources > 256)
        ty_field_errors_add(c->errs, "spec.resourceGroups", ty_pos_member(c, spec, "resourceGroups"),
                            "Invalid value: \"array\": must have at most 256 covered resources "
                            "in all resource groups");
    if (borrowing && !in_cohort)
        cel_fail(c, "spec", spec_pos, "object", "borrowingLimit must be nil when cohort is empty");

    ty_buf_reset(&path);
    ty_buf_adds(&path, "spec.namespaceSelector");
    check_selector(c, json_object_get(spec, "namespaceSelector"), &path);

    const json_t *pre = json_object_get(spec, "preemption");
    const char *reclaim = json_string_value(json_object_get(pre, "reclaimWithinCohort"));
    const char *bwc = json_string_value(json_object_get(json_object_get(pre, "borrowWithinCohort"),
                                                        "policy"));
    if (reclaim && !strcmp(reclaim, "Never") && bwc && strcmp(bwc, "Never"))
        cel_fail(c, "spec.preemption", member_or(c, spec, "preemption", spec_pos), "object",
                 "reclaimWithinCohort=Never and borrowWithinCohort.Policy!=Never");

    if (json_object_get(spec, "admissionChecks") && json_object_get(spec, "admissionChecksStrategy"))
        cel_fail(c, "spec", spec_pos, "object",
                 "either AdmissionChecks or AdmissionCheckStrategy can be set, but not both");

    const json_t *fs = json_object_get(spec, "fairSharing");
    const json_t *weight = json_object_get(fs, "weight");
    ty_quantity w;
    TY_CLEANUP_ERROR ty_error err = TY_ERROR_INIT;
    if (weight && ty_quantity_from_json(weight, &w, &err) == 0 && w.milli < 0) {
        json_t *repr = qty_repr(weight, w);
        ty_fe_invalid(c, "spec.fairSharing.weight", ty_pos_member(c, fs, "weight"), repr,
                      "must be greater than or equal to 0");
        json_decref(repr);
    }
}

/* ---------- LocalQueue ---------- */

static void lq_defaults(ty_schema_ctx *c, json_t *obj)
{
    (void)c;
    default_string(object_member(obj, "spec"), "stopPolicy", "None");
}

static void lq_rules(ty_schema_ctx *c, json_t *obj)
{
    check_object_name(c, obj);
    json_t *spec = json_object_get(obj, "spec");
    if (json_is_object(spec))
        check_ref(c, spec, "clusterQueue", "spec.clusterQueue", false);
}

/* The CRD's transition rule (self == oldSelf): a LocalQueue keeps its ClusterQueue. */
static void lq_update(ty_schema_ctx *c, const json_t *obj, const json_t *old)
{
    const json_t *n = member2(obj, "spec", "clusterQueue");
    const json_t *o = member2(old, "spec", "clusterQueue");
    if (n && o && !json_equal(n, o))
        ty_field_errors_add(c->errs, "spec.clusterQueue", (ty_pos){0, 0},
                            "Invalid value: \"string\": field is immutable");
}

/* ---------- Workload ---------- */

/* Whether the workload holds a QuotaReserved=True condition. */
static bool quota_reserved(const json_t *obj)
{
    size_t i;
    json_t *cond;
    json_array_foreach(json_object_get(json_object_get(obj, "status"), "conditions"), i, cond) {
        const char *t = json_string_value(json_object_get(cond, "type"));
        const char *st = json_string_value(json_object_get(cond, "status"));
        if (t && st && !strcmp(t, "QuotaReserved") && !strcmp(st, "True"))
            return true;
    }
    return false;
}

static void wl_defaults(ty_schema_ctx *c, json_t *obj)
{
    (void)c;
    json_t *spec = json_object_get(obj, "spec");
    if (!json_is_object(spec))
        return;
    default_string(spec, "priorityClassSource", "");
    if (!json_object_get(spec, "active"))
        json_object_set_new(spec, "active", json_true());
    size_t i;
    json_t *ps;
    json_array_foreach(json_object_get(spec, "podSets"), i, ps) {
        if (!json_is_object(ps))
            continue;
        default_string(ps, "name", "main");
        if (!json_object_get(ps, "count"))
            json_object_set_new(ps, "count", json_integer(1));
    }
    json_t *adm = json_object_get(json_object_get(obj, "status"), "admission");
    json_array_foreach(json_object_get(adm, "podSetAssignments"), i, ps)
        default_string(ps, "name", "main");
}

static void wl_rules(ty_schema_ctx *c, json_t *obj)
{
    check_object_name(c, obj);
    json_t *spec = json_object_get(obj, "spec");
    if (!json_is_object(spec))
        return;
    ty_pos spec_pos = ty_pos_member(c, obj, "spec");
    check_ref(c, spec, "queueName", "spec.queueName", false);
    check_ref(c, spec, "priorityClassName", "spec.priorityClassName", false);
    if (json_object_get(spec, "priorityClassName") && !json_object_get(spec, "priority"))
        cel_fail(c, "spec", spec_pos, "object",
                 "priority should not be nil when priorityClassName is set");

    const json_t *podsets = json_object_get(spec, "podSets");
    json_t *counts = json_object(); /* name -> count, for the status rules */
    TY_AUTOBUF ty_buf path = TY_BUF_INIT;
    ty_buf_adds(&path, "spec.podSets");
    if (json_is_array(podsets)) {
        check_count(c, path.data, ty_pos_member(c, spec, "podSets"), json_array_size(podsets), 1,
                    8);
        size_t with_min = 0, i;
        json_t *ps;
        json_array_foreach(podsets, i, ps) {
            if (!json_is_object(ps))
                continue;
            size_t l = ty_path_index(&path, i);
            ty_pos pos = ty_pos_index(c, podsets, i);
            const json_t *name = json_object_get(ps, "name");
            size_t l2 = ty_path_key(&path, "name");
            check_ref(c, ps, "name", path.data, true);
            ty_path_pop(&path, l2);
            /* listType=map, listMapKey=name: the API server names the duplicate entry. */
            if (json_is_string(name)) {
                if (json_object_get(counts, json_string_value(name)))
                    ty_field_errors_add(c->errs, path.data, pos,
                                        "Duplicate value: map[string]interface {}{\"name\":\"%s\"}",
                                        json_string_value(name));
                else
                    json_object_set(counts, json_string_value(name), json_object_get(ps, "count"));
            }
            const json_t *cnt = json_object_get(ps, "count");
            const json_t *min = json_object_get(ps, "minCount");
            if (min) {
                with_min++;
                if (json_is_integer(cnt) && json_is_integer(min) &&
                    json_integer_value(min) > json_integer_value(cnt))
                    cel_fail(c, path.data, pos, "object",
                             "minCount should be positive and less or equal to count");
            }
            const json_t *tmeta = json_object_get(json_object_get(ps, "template"), "metadata");
            if (json_is_object(tmeta)) {
                size_t l3 = ty_path_key(&path, "template");
                ty_path_key(&path, "metadata");
                ty_check_meta_labels(c, tmeta, &path);
                ty_path_pop(&path, l3);
            }
            ty_path_pop(&path, l);
        }
        /* ValidateWorkload: partial admission works on one pod set. */
        if (with_min > 1) {
            json_t *n = json_integer((json_int_t)with_min);
            ty_fe_invalid(c, path.data, ty_pos_member(c, spec, "podSets"), n,
                          "at most one podSet can use minCount");
            json_decref(n);
        }
    }

    /* ValidateWorkload's status rules: the admission of a workload that reserved quota covers
     * every pod set; reclaimable pods name pod sets and do not exceed their counts. */
    json_t *status = json_object_get(obj, "status");
    const json_t *adm = json_object_get(status, "admission");
    if (json_is_object(adm) && quota_reserved(obj)) {
        check_ref(c, adm, "clusterQueue", "status.admission.clusterQueue", false);
        const json_t *psa = json_object_get(adm, "podSetAssignments");
        if (json_is_array(psa) && json_is_array(podsets) &&
            json_array_size(psa) != json_array_size(podsets)) {
            json_t *n = json_integer((json_int_t)json_array_size(psa));
            ty_fe_invalid(c, "status.admission.podSetAssignments",
                          ty_pos_member(c, adm, "podSetAssignments"), n,
                          "must have the same number of podSets as the spec");
            json_decref(n);
        }
    }
    const json_t *rec = json_object_get(status, "reclaimablePods");
    size_t i;
    json_t *rp;
    json_array_foreach(rec, i, rp) {
        const json_t *name = json_object_get(rp, "name");
        const json_t *cnt = json_object_get(rp, "count");
        if (!json_is_string(name))
            continue;
        const json_t *want = json_object_get(counts, json_string_value(name));
        TY_AUTOFREE char *p = NULL;
        if (!json_object_get(counts, json_string_value(name))) {
            p = ty_asprintf("status.reclaimablePods[%zu].name", i);
            ty_field_errors_add(c->errs, p, ty_pos_member(c, rp, "name"), "Not found: \"%s\"",
                                json_string_value(name));
        } else if (json_is_integer(want) && json_is_integer(cnt) &&
                   json_integer_value(cnt) > json_integer_value(want)) {
            p = ty_asprintf("status.reclaimablePods[%zu].count", i);
            ty_fe_invalid(c, p, ty_pos_member(c, rp, "count"), cnt,
                          "should be less or equal to %" JSON_INTEGER_FORMAT,
                          json_integer_value(want));
        }
    }
    json_decref(counts);
}

/* ValidateWorkloadUpdate: what a workload asked for stays while it holds quota. */
static void wl_update(ty_schema_ctx *c, const json_t *obj, const json_t *old)
{
    if (!quota_reserved(old))
        return;
    const json_t *nspec = json_object_get(obj, "spec"), *ospec = json_object_get(old, "spec");
    immutable(c, nspec, ospec, "podSets", NULL, "spec.podSets");
    immutable(c, obj, old, "spec", "priorityClassSource", "spec.priorityClassSource");
    immutable(c, obj, old, "spec", "priorityClassName", "spec.priorityClassName");
    if (quota_reserved(obj))
        immutable(c, obj, old, "spec", "queueName", "spec.queueName");
}

/* ---------- WorkloadPriorityClass ---------- */

static void no_defaults(ty_schema_ctx *c, json_t *obj)
{
    (void)c;
    (void)obj;
}

static void wpc_rules(ty_schema_ctx *c, json_t *obj)
{
    check_object_name(c, obj);
}

/* ---------- PriorityClass (scheduling.k8s.io/v1) ---------- */

/* pkg/apis/scheduling: HighestUserDefinablePriority; larger values are the system's. */
#define HIGHEST_USER_PRIORITY 1000000000

static void pc_defaults(ty_schema_ctx *c, json_t *obj)
{
    (void)c;
    default_string(obj, "preemptionPolicy", "PreemptLowerPriority");
}

/* ValidatePriorityClass: a DNS subdomain name, no "system-" prefix (reserved for the two
 * system classes), a value no higher than the user maximum. */
static void pc_rules(ty_schema_ctx *c, json_t *obj)
{
    check_object_name(c, obj);
    json_t *meta = json_object_get(obj, "metadata");
    const char *name = json_string_value(json_object_get(meta, "name"));
    if (name && strncmp(name, "system-", 7) == 0)
        ty_fe_forbidden(c, "metadata.name", ty_pos_member(c, meta, "name"),
                        "priority class names with 'system-' prefix are reserved");
    const json_t *value = json_object_get(obj, "value");
    if (json_is_integer(value) && json_integer_value(value) > HIGHEST_USER_PRIORITY)
        ty_fe_forbidden(c, "value", ty_pos_member(c, obj, "value"),
                        "maximum allowed value of a user defined priority is 1000000000");
}

/* ValidatePriorityClassUpdate: the value and the preemption policy stay. */
static void pc_update(ty_schema_ctx *c, const json_t *obj, const json_t *old)
{
    const json_t *n = json_object_get(obj, "value"), *o = json_object_get(old, "value");
    if (!(n && o && json_equal(n, o)))
        ty_fe_forbidden(c, "value", (ty_pos){0, 0}, "may not be changed in an update.");
    immutable(c, obj, old, "preemptionPolicy", NULL, "preemptionPolicy");
}

/* ---------- kinds ---------- */

const ty_kind_ops ty_kueue_resourceflavor_ops = {flavor_schema, flavor_defaults,
                                                 flavor_rules};
const ty_kind_ops ty_kueue_admissioncheck_ops = {ac_schema, ac_defaults, ac_rules,
                                                 ac_update};
const ty_kind_ops ty_kueue_clusterqueue_ops = {cq_schema, cq_defaults, cq_rules};
const ty_kind_ops ty_kueue_localqueue_ops = {lq_schema, lq_defaults, lq_rules,
                                             lq_update};
const ty_kind_ops ty_kueue_workload_ops = {wl_schema, wl_defaults, wl_rules, wl_update};
const ty_kind_ops ty_kueue_workloadpriorityclass_ops = {wpc_schema, no_defaults,
                                                        wpc_rules};
const ty_kind_ops ty_scheduling_priorityclass_ops = {pc_schema, pc_defaults, pc_rules,
                                                     pc_update};
