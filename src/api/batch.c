/* batch/v1 Job: the API server's defaults (SetDefaults_Job), its selector generation
 * (the Job strategy's PrepareForCreate) and validation (ValidateJob, ValidateJobSpec,
 * ValidateJobUpdate) for the fields trainyard runs, with Kubernetes' field paths and
 * messages. The controller is controllers/batch.h. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "api/batch.h"
#include "base/buf.h"
#include "base/mem.h"

__asm__(".section .rodata\n"
        ".global ty_schema_batch_v1\n"
        "ty_schema_batch_v1:\n"
        ".incbin \"src/api/schemas/batch_v1.json\"\n"
        ".byte 0\n"
        ".previous");
extern const char ty_schema_batch_v1[];

static const json_t *job_schema(void)
{
    /* Both stay for the process (read again on later calls, so never a dead store that
     * LeakSanitizer would see as a leak). */
    static json_t *doc;
    static const json_t *s;
    if (!doc)
        doc = ty_schema_doc_load(ty_schema_batch_v1);
    if (!s)
        s = ty_schema_inline(doc, "io.k8s.api.batch.v1.Job");
    return s;
}

static json_t *member_object(json_t *obj, const char *key)
{
    if (!json_is_object(obj))
        return NULL;
    json_t *v = json_object_get(obj, key);
    if (!v) {
        v = json_object();
        json_object_set_new(obj, key, v);
    }
    return json_is_object(v) ? v : NULL;
}

static void set_default(json_t *obj, const char *key, json_t *value)
{
    if (json_is_object(obj) && !json_object_get(obj, key))
        json_object_set_new(obj, key, value);
    else
        json_decref(value);
}

/* ---------- index sets ---------- */

char *ty_batch_format_indexes(const long *idx, size_t n)
{
    ty_buf b = TY_BUF_INIT;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j + 1 < n && idx[j + 1] == idx[j] + 1)
            j++;
        if (j == i)
            ty_buf_addf(&b, "%s%ld", b.len ? "," : "", idx[i]);
        else
            ty_buf_addf(&b, "%s%ld-%ld", b.len ? "," : "", idx[i], idx[j]);
        i = j + 1;
    }
    return b.len ? b.data : ty_strdup("");
}

int ty_batch_parse_indexes(const char *text, long limit, long **idx, size_t *n)
{
    const char *p = text;
    while (p && *p) {
        char *end;
        long a = strtol(p, &end, 10), z = a;
        if (end == p || a < 0)
            return -1;
        if (*end == '-') {
            const char *q = end + 1;
            z = strtol(q, &end, 10);
            if (end == q || z < a)
                return -1;
        }
        for (long i = a; i <= z && i < limit; i++) {
            *idx = ty_realloc(*idx, (*n + 1) * sizeof **idx);
            (*idx)[(*n)++] = i;
        }
        if (*end == ',')
            end++;
        else if (*end)
            return -1;
        p = end;
    }
    return 0;
}

/* ---------- defaults ---------- */

static void job_defaults(ty_schema_ctx *c, json_t *obj)
{
    (void)c;
    json_t *spec = json_object_get(obj, "spec");
    if (!json_is_object(spec))
        return;
    /* A non-parallel job may leave both unset: both become 1. */
    if (!json_object_get(spec, "completions") && !json_object_get(spec, "parallelism"))
        json_object_set_new(spec, "completions", json_integer(1));
    set_default(spec, "parallelism", json_integer(1));
    set_default(spec, "backoffLimit",
                json_integer(json_object_get(spec, "backoffLimitPerIndex") ? INT32_MAX : 6));
    set_default(spec, "completionMode", json_string(TY_BATCH_NON_INDEXED));
    set_default(spec, "suspend", json_false());
    json_t *pfp = json_object_get(spec, "podFailurePolicy");
    size_t i, k;
    json_t *rule, *pat;
    json_array_foreach(json_object_get(pfp, "rules"), i, rule)
        json_array_foreach(json_object_get(rule, "onPodConditions"), k, pat)
            set_default(pat, "status", json_string("True"));
    set_default(spec, "podReplacementPolicy",
                json_string(pfp ? "Failed" : "TerminatingOrFailed"));
    /* The template's labels become the job's when it has none. */
    json_t *meta = member_object(obj, "metadata");
    json_t *tl = json_object_get(json_object_get(json_object_get(spec, "template"), "metadata"),
                                 "labels");
    json_t *labels = json_object_get(meta, "labels");
    if (json_is_object(tl) && (!json_is_object(labels) || json_object_size(labels) == 0))
        json_object_set_new(meta, "labels", json_deep_copy(tl));
    /* The pod template's own defaults the controller and kubectl read back. */
    json_t *pod = member_object(member_object(spec, "template"), "spec");
    set_default(pod, "restartPolicy", json_string("Always"));
}

void ty_batch_job_create_defaults(json_t *job)
{
    /* JobStatus is a struct, not a pointer: a new Job reads back with "status": {} */
    if (!json_object_get(job, "status"))
        json_object_set_new(job, "status", json_object());
    json_t *spec = json_object_get(job, "spec");
    const char *uid = json_string_value(json_object_get(json_object_get(job, "metadata"), "uid"));
    const char *name = json_string_value(json_object_get(json_object_get(job, "metadata"),
                                                         "name"));
    if (!json_is_object(spec) || !uid || !name ||
        json_is_true(json_object_get(spec, "manualSelector")))
        return;
    json_t *labels = member_object(member_object(member_object(spec, "template"), "metadata"),
                                   "labels");
    set_default(labels, TY_BATCH_LABEL_LEGACY_JOB_NAME, json_string(name));
    set_default(labels, TY_BATCH_LABEL_JOB_NAME, json_string(name));
    set_default(labels, TY_BATCH_LABEL_LEGACY_CONTROLLER_UID, json_string(uid));
    set_default(labels, TY_BATCH_LABEL_CONTROLLER_UID, json_string(uid));
    set_default(member_object(member_object(spec, "selector"), "matchLabels"),
                TY_BATCH_LABEL_CONTROLLER_UID, json_string(uid));
    /* The API server defaults again when it reads the job back (from etcd), so a job without
     * labels of its own ends up with the template's, these included. */
    json_t *meta = json_object_get(job, "metadata");
    json_t *own = json_object_get(meta, "labels");
    if (!json_is_object(own) || json_object_size(own) == 0)
        json_object_set_new(meta, "labels", json_deep_copy(labels));
}

/* ---------- rules ---------- */

static void non_negative(ty_schema_ctx *c, json_t *spec, const char *key)
{
    json_t *v = json_object_get(spec, key);
    if (json_is_integer(v) && json_integer_value(v) < 0) {
        TY_AUTOFREE char *path = ty_asprintf("spec.%s", key);
        ty_fe_invalid(c, path, ty_pos_member(c, spec, key), v,
                      "must be greater than or equal to 0");
    }
}

static bool int_set(const json_t *spec, const char *key)
{
    return json_is_integer(json_object_get(spec, key));
}

static json_int_t int_of(const json_t *spec, const char *key)
{
    return json_integer_value(json_object_get(spec, key));
}

/* Whether a container or init container of the template has this name. */
static bool template_has_container(const json_t *pod, const char *name)
{
    static const char *const lists[] = {"containers", "initContainers"};
    for (int l = 0; l < 2; l++) {
        size_t i;
        json_t *ct;
        json_array_foreach(json_object_get(pod, lists[l]), i, ct)
        {
            const char *n = json_string_value(json_object_get(ct, "name"));
            if (n && strcmp(n, name) == 0)
                return true;
        }
    }
    return false;
}

static void check_exit_codes(ty_schema_ctx *c, json_t *req, const json_t *pod, ty_buf *path)
{
    static const char *const ops[] = {"In", "NotIn"};
    json_t *op = json_object_get(req, "operator");
    const char *o = json_string_value(op);
    if (o && strcmp(o, "In") != 0 && strcmp(o, "NotIn") != 0) {
        size_t l = ty_path_key(path, "operator");
        ty_fe_unsupported(c, path->data, ty_pos_member(c, req, "operator"), op, ops, 2);
        ty_path_pop(path, l);
    }
    json_t *cn = json_object_get(req, "containerName");
    if (json_is_string(cn) && !template_has_container(pod, json_string_value(cn))) {
        size_t l = ty_path_key(path, "containerName");
        ty_fe_invalid(c, path->data, ty_pos_member(c, req, "containerName"), cn,
                      "must be one of the container or initContainer names in the pod "
                      "template");
        ty_path_pop(path, l);
    }
    json_t *values = json_object_get(req, "values");
    size_t l = ty_path_key(path, "values");
    if (json_is_array(values) && json_array_size(values) == 0)
        ty_fe_required(c, path->data, ty_pos_member(c, req, "values"),
                       "at least one value is required");
    else if (json_array_size(values) > 255)
        ty_field_errors_add(c->errs, path->data, ty_pos_member(c, req, "values"),
                            "Too many: %zu: must have at most 255 items",
                            json_array_size(values));
    size_t i;
    json_t *v;
    json_int_t prev = 0;
    json_array_foreach(values, i, v)
    {
        if (!json_is_integer(v))
            continue;
        json_int_t x = json_integer_value(v);
        size_t li = ty_path_index(path, i);
        ty_pos p = ty_pos_index(c, values, i);
        if (o && strcmp(o, "In") == 0 && x == 0)
            ty_fe_invalid(c, path->data, p, v, "must not be 0 for the In operator");
        if (i > 0 && x == prev)
            ty_fe_duplicate(c, path->data, p, v);
        else if (i > 0 && x < prev)
            ty_fe_invalid(c, path->data, p, v, "must be ordered");
        prev = x;
        ty_path_pop(path, li);
    }
    ty_path_pop(path, l);
}

/* Where the template's restartPolicy is written, or its spec when it was defaulted. */
static ty_pos restart_policy_pos(ty_schema_ctx *c, json_t *tmpl)
{
    ty_pos p = ty_pos_member(c, json_object_get(tmpl, "spec"), "restartPolicy");
    return p.line ? p : ty_pos_member(c, tmpl, "spec");
}

static void check_pod_failure_policy(ty_schema_ctx *c, json_t *spec)
{
    json_t *pfp = json_object_get(spec, "podFailurePolicy");
    if (!json_is_object(pfp))
        return;
    json_t *pod = json_object_get(json_object_get(spec, "template"), "spec");
    json_t *rp = json_object_get(pod, "restartPolicy");
    if (json_is_string(rp) && strcmp(json_string_value(rp), "Never") != 0)
        ty_fe_invalid(c, "spec.template.spec.restartPolicy",
                      restart_policy_pos(c, json_object_get(spec, "template")), rp, "only \"Never\" is supported when podFailurePolicy is specified");
    json_t *rules = json_object_get(pfp, "rules");
    if (json_array_size(rules) > TY_BATCH_MAX_POD_FAILURE_RULES)
        ty_field_errors_add(c->errs, "spec.podFailurePolicy.rules", ty_pos_member(c, pfp, "rules"),
                            "Too many: %zu: must have at most %d items", json_array_size(rules),
                            TY_BATCH_MAX_POD_FAILURE_RULES);
    static const char *const actions[] = {"Count", "FailIndex", "FailJob", "Ignore"};
    static const char *const statuses[] = {"False", "True", "Unknown"};
    TY_AUTOBUF ty_buf path = TY_BUF_INIT;
    ty_buf_adds(&path, "spec.podFailurePolicy.rules");
    size_t i;
    json_t *rule;
    json_array_foreach(rules, i, rule)
    {
        if (!json_is_object(rule))
            continue;
        size_t l0 = ty_path_index(&path, i);
        ty_pos rpos = ty_pos_index(c, rules, i);
        json_t *action = json_object_get(rule, "action");
        const char *a = json_string_value(action);
        if (a) {
            bool ok = false;
            for (size_t k = 0; k < TY_ARRAY_LEN(actions); k++)
                ok = ok || strcmp(a, actions[k]) == 0;
            size_t l = ty_path_key(&path, "action");
            if (!ok)
                ty_fe_unsupported(c, path.data, ty_pos_member(c, rule, "action"), action, actions,
                                  TY_ARRAY_LEN(actions));
            else if (strcmp(a, "FailIndex") == 0 && !int_set(spec, "backoffLimitPerIndex"))
                ty_fe_invalid(c, path.data, ty_pos_member(c, rule, "action"), action,
                              "requires the backoffLimitPerIndex to be set");
            ty_path_pop(&path, l);
        }
        json_t *codes = json_object_get(rule, "onExitCodes");
        json_t *conds = json_object_get(rule, "onPodConditions");
        if (codes && conds)
            ty_fe_invalid(c, path.data, rpos, rule,
                          "specifying both OnExitCodes and OnPodConditions is not supported");
        else if (!codes && !conds)
            ty_fe_invalid(c, path.data, rpos, rule,
                          "specifying one of OnExitCodes and OnPodConditions is required");
        if (json_is_object(codes)) {
            size_t l = ty_path_key(&path, "onExitCodes");
            check_exit_codes(c, codes, pod, &path);
            ty_path_pop(&path, l);
        }
        size_t k;
        json_t *pat;
        json_array_foreach(conds, k, pat)
        {
            json_t *st = json_object_get(pat, "status");
            const char *s = json_string_value(st);
            if (s && strcmp(s, "True") && strcmp(s, "False") && strcmp(s, "Unknown")) {
                size_t l = ty_path_key(&path, "onPodConditions");
                ty_path_index(&path, k);
                ty_path_key(&path, "status");
                ty_fe_unsupported(c, path.data, ty_pos_member(c, pat, "status"), st, statuses, 3);
                ty_path_pop(&path, l);
            }
            json_t *type = json_object_get(pat, "type");
            const char *why = json_is_string(type)
                                  ? ty_check_qualified_name(json_string_value(type))
                                  : NULL;
            if (why) {
                size_t l = ty_path_key(&path, "onPodConditions");
                ty_path_index(&path, k);
                ty_path_key(&path, "type");
                ty_fe_invalid(c, path.data, ty_pos_member(c, pat, "type"), type, "%s", why);
                ty_path_pop(&path, l);
            }
        }
        ty_path_pop(&path, l0);
    }
}

/* The intervals of an index text ("0-2,5") without expanding them: how many indexes, the
 * largest, and whether they ascend without overlap. Returns -1 when malformed. */
static int scan_intervals(const char *text, size_t *count, long *last, bool *ordered)
{
    *count = 0;
    *last = -1;
    *ordered = true;
    for (const char *p = text; *p;) {
        char *end;
        long a = strtol(p, &end, 10), z = a;
        if (end == p || a < 0 || *p == '-' || *p == '+')
            return -1;
        if (*end == '-') {
            const char *q = end + 1;
            z = strtol(q, &end, 10);
            if (end == q || z < a || *q == '-' || *q == '+')
                return -1;
        }
        *ordered = *ordered && a > *last;
        *count += (size_t)(z - a) + 1;
        *last = z;
        if (*end == ',' && end[1])
            end++;
        else if (*end)
            return -1;
        p = end;
    }
    return *count ? 0 : -1;
}

/* ValidateJobSpec's successPolicy: Indexed jobs only, at most 20 rules, each with
 * succeededIndexes ("0-2,5", ascending, below completions) or succeededCount (at most
 * completions, and at most the number of succeededIndexes when both are set). */
static void check_success_policy(ty_schema_ctx *c, json_t *spec, bool indexed)
{
    json_t *sp = json_object_get(spec, "successPolicy");
    if (!json_is_object(sp))
        return;
    if (!indexed) {
        ty_fe_invalid(c, "spec.successPolicy", ty_pos_member(c, spec, "successPolicy"), sp,
                      "requires indexed completion mode");
        return;
    }
    json_t *rules = json_object_get(sp, "rules");
    if (json_array_size(rules) > TY_BATCH_MAX_POD_FAILURE_RULES)
        ty_field_errors_add(c->errs, "spec.successPolicy.rules", ty_pos_member(c, sp, "rules"),
                            "Too many: %zu: must have at most %d items", json_array_size(rules),
                            TY_BATCH_MAX_POD_FAILURE_RULES);
    json_int_t completions = json_integer_value(json_object_get(spec, "completions"));
    TY_AUTOBUF ty_buf path = TY_BUF_INIT;
    ty_buf_adds(&path, "spec.successPolicy.rules");
    size_t i;
    json_t *rule;
    json_array_foreach(rules, i, rule)
    {
        if (!json_is_object(rule))
            continue;
        size_t l0 = ty_path_index(&path, i);
        json_t *idx = json_object_get(rule, "succeededIndexes");
        json_t *cnt = json_object_get(rule, "succeededCount");
        if (!idx && !cnt)
            ty_fe_required(c, path.data, ty_pos_index(c, rules, i),
                           "at least one of succeededCount or succeededIndexes must be "
                           "specified");
        size_t nidx = 0;
        if (json_is_string(idx)) {
            size_t l = ty_path_key(&path, "succeededIndexes");
            ty_pos p = ty_pos_member(c, rule, "succeededIndexes");
            long last;
            bool ordered;
            if (scan_intervals(json_string_value(idx), &nidx, &last, &ordered) < 0)
                ty_fe_invalid(c, path.data, p, idx, "error parsing succeededIndexes");
            else if (!ordered)
                ty_fe_invalid(c, path.data, p, idx, "must be ordered and non-overlapping");
            else if (last >= completions)
                ty_fe_invalid(c, path.data, p, idx, "too large: must be less than completions %lld",
                              (long long)completions);
            ty_path_pop(&path, l);
        }
        if (json_is_integer(cnt)) {
            size_t l = ty_path_key(&path, "succeededCount");
            json_int_t n = json_integer_value(cnt);
            ty_pos p = ty_pos_member(c, rule, "succeededCount");
            if (n < 0)
                ty_fe_invalid(c, path.data, p, cnt, "must be greater than or equal to 0");
            else if (n > completions)
                ty_fe_invalid(c, path.data, p, cnt,
                              "must be less than or equal to %lld (the number of specified "
                              "completions)",
                              (long long)completions);
            else if (json_is_string(idx) && nidx && (size_t)n > nidx)
                ty_fe_invalid(c, path.data, p, cnt,
                              "must be less than or equal to %zu (the number of indexes in the "
                              "specified succeededIndexes field)",
                              nidx);
            ty_path_pop(&path, l);
        }
        ty_path_pop(&path, l0);
    }
}

/* Whether the selector's matchLabels and matchExpressions (In/NotIn/Exists/DoesNotExist) all
 * hold for the labels. */
static bool selector_matches(const json_t *sel, const json_t *labels)
{
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(sel, "matchLabels"), k, v)
        if (!json_equal(json_object_get(labels, k), v))
            return false;
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(sel, "matchExpressions"), i, e)
    {
        const char *key = json_string_value(json_object_get(e, "key"));
        const char *op = json_string_value(json_object_get(e, "operator"));
        json_t *have = key ? json_object_get(labels, key) : NULL;
        bool in = false;
        size_t j;
        json_t *val;
        json_array_foreach(json_object_get(e, "values"), j, val) in = in || json_equal(have, val);
        if (!op || (!strcmp(op, "In") && !in) || (!strcmp(op, "NotIn") && in) ||
            (!strcmp(op, "Exists") && !have) || (!strcmp(op, "DoesNotExist") && have))
            return false;
    }
    return true;
}

static void check_selector(ty_schema_ctx *c, json_t *obj, json_t *spec)
{
    json_t *sel = json_object_get(spec, "selector");
    json_t *tmeta = json_object_get(json_object_get(spec, "template"), "metadata");
    if (json_is_true(json_object_get(spec, "manualSelector"))) {
        if (!json_is_object(sel)) {
            ty_fe_required(c, "spec.selector", ty_pos_member(c, obj, "spec"), NULL);
            return;
        }
        if (!selector_matches(sel, json_object_get(tmeta, "labels")))
            ty_fe_invalid(c, "spec.template.metadata.labels",
                          ty_pos_member(c, json_object_get(spec, "template"), "metadata"),
                          json_object_get(tmeta, "labels"),
                          "`selector` does not match template `labels`");
        return;
    }
    if (!sel)
        return;
    /* Without manualSelector the selector is the generated one, on the job's uid: a stored
     * job's own (an update), never one written at creation. */
    const char *uid = json_string_value(json_object_get(json_object_get(obj, "metadata"), "uid"));
    json_t *want = json_object_get(json_object_get(sel, "matchLabels"),
                                   TY_BATCH_LABEL_CONTROLLER_UID);
    if (!uid || !json_is_string(want) || strcmp(json_string_value(want), uid) != 0)
        ty_fe_invalid(c, "spec.selector", ty_pos_member(c, spec, "selector"), sel,
                      "`selector` not auto-generated");
}

static void job_rules(ty_schema_ctx *c, json_t *obj)
{
    json_t *spec = json_object_get(obj, "spec");
    if (!json_is_object(spec)) {
        if (!spec)
            ty_fe_required(c, "spec.template", (ty_pos){0, 0}, NULL);
        return;
    }
    json_t *meta = json_object_get(obj, "metadata");
    json_t *name = json_object_get(meta, "name");
    if (json_is_string(name) && *json_string_value(name)) {
        /* Pods get the job's name as a label value, and Indexed pods "<job>-<index>" as
         * their hostname. */
        const char *why = ty_check_dns1123_subdomain(json_string_value(name));
        if (why)
            ty_fe_invalid(c, "metadata.name", ty_pos_member(c, meta, "name"), name, "%s", why);
        else if (strlen(json_string_value(name)) > 63)
            ty_fe_invalid(c, "metadata.name", ty_pos_member(c, meta, "name"), name,
                          "must be no more than 63 characters");
    }
    static const char *const counts[] = {"parallelism", "completions", "activeDeadlineSeconds",
                                         "backoffLimit", "ttlSecondsAfterFinished",
                                         "backoffLimitPerIndex", "maxFailedIndexes"};
    for (size_t i = 0; i < TY_ARRAY_LEN(counts); i++)
        non_negative(c, spec, counts[i]);
    json_t *mode = json_object_get(spec, "completionMode");
    bool indexed = json_is_string(mode) && strcmp(json_string_value(mode), TY_BATCH_INDEXED) == 0;
    if (json_is_string(mode) && !indexed &&
        strcmp(json_string_value(mode), TY_BATCH_NON_INDEXED) != 0) {
        static const char *const modes[] = {TY_BATCH_NON_INDEXED, TY_BATCH_INDEXED};
        ty_fe_unsupported(c, "spec.completionMode", ty_pos_member(c, spec, "completionMode"),
                          mode, modes, 2);
    }
    if (indexed) {
        if (!int_set(spec, "completions"))
            ty_fe_required(c, "spec.completions", ty_pos_member(c, spec, "completionMode"),
                           "when completion mode is Indexed");
        static const char *const big[] = {"completions", "parallelism"};
        for (int i = 0; i < 2; i++)
            if (int_of(spec, big[i]) > TY_BATCH_MAX_INDEXED) {
                TY_AUTOFREE char *path = ty_asprintf("spec.%s", big[i]);
                ty_fe_invalid(c, path, ty_pos_member(c, spec, big[i]),
                              json_object_get(spec, big[i]),
                              "must be less than or equal to %d when completion mode is Indexed",
                              TY_BATCH_MAX_INDEXED);
            }
    }
    if (int_set(spec, "backoffLimitPerIndex") && !indexed)
        ty_fe_invalid(c, "spec.backoffLimitPerIndex",
                      ty_pos_member(c, spec, "backoffLimitPerIndex"),
                      json_object_get(spec, "backoffLimitPerIndex"),
                      "requires indexed completion mode");
    if (int_set(spec, "maxFailedIndexes")) {
        json_t *v = json_object_get(spec, "maxFailedIndexes");
        ty_pos p = ty_pos_member(c, spec, "maxFailedIndexes");
        if (!int_set(spec, "backoffLimitPerIndex"))
            ty_fe_invalid(c, "spec.maxFailedIndexes", p, v,
                          "requires the backoffLimitPerIndex to be set");
        else if (int_set(spec, "completions") && int_of(spec, "maxFailedIndexes") >
                                                      int_of(spec, "completions"))
            ty_fe_invalid(c, "spec.maxFailedIndexes", p, v,
                          "must be less than or equal to completions");
    }
    json_t *tmpl = json_object_get(spec, "template");
    if (!tmpl) {
        ty_fe_required(c, "spec.template", ty_pos_member(c, obj, "spec"), NULL);
    } else if (json_is_object(tmpl)) {
        json_t *pod = json_object_get(tmpl, "spec");
        json_t *containers = json_object_get(pod, "containers");
        if (json_is_object(pod) && json_array_size(containers) == 0 &&
            (!containers || json_is_array(containers)))
            ty_fe_required(c, "spec.template.spec.containers", ty_pos_member(c, tmpl, "spec"),
                           NULL);
        TY_AUTOBUF ty_buf path = TY_BUF_INIT;
        ty_buf_adds(&path, "spec");
        ty_check_pod_template(c, tmpl, &path);
        json_t *rp = json_object_get(pod, "restartPolicy");
        const char *r = json_string_value(rp);
        if (r && strcmp(r, "OnFailure") != 0 && strcmp(r, "Never") != 0) {
            static const char *const policies[] = {"OnFailure", "Never"};
            ty_fe_unsupported(c, "spec.template.spec.restartPolicy", restart_policy_pos(c, tmpl),
                              rp, policies, 2);
        }
    }
    check_pod_failure_policy(c, spec);
    check_success_policy(c, spec, indexed);
    check_selector(c, obj, spec);
}

/* ValidateJobSpecUpdate: what a job keeps once created. The template may change only while
 * the job is suspended (as Kueue does to place it; Kubernetes allows the scheduling
 * directives of a suspended job that never started). */
static void job_update_rules(ty_schema_ctx *c, const json_t *obj, const json_t *old)
{
    const json_t *spec = json_object_get(obj, "spec"), *was = json_object_get(old, "spec");
    static const char *const fixed[] = {"completions", "completionMode", "selector",
                                        "backoffLimitPerIndex", "podFailurePolicy",
                                        "manualSelector", "podReplacementPolicy"};
    for (size_t i = 0; i < TY_ARRAY_LEN(fixed); i++) {
        const json_t *a = json_object_get(spec, fixed[i]), *b = json_object_get(was, fixed[i]);
        if ((a || b) && !(a && b && json_equal(a, b))) {
            TY_AUTOFREE char *path = ty_asprintf("spec.%s", fixed[i]);
            ty_fe_invalid(c, path, (ty_pos){0, 0}, a ? a : json_null(), "field is immutable");
        }
    }
    const json_t *tmpl = json_object_get(spec, "template");
    if (!json_equal(tmpl, json_object_get(was, "template")) &&
        !json_is_true(json_object_get(was, "suspend")))
        ty_fe_invalid(c, "spec.template", (ty_pos){0, 0}, tmpl ? tmpl : json_null(),
                      "field is immutable");
}

const ty_kind_ops ty_batch_job_ops = {job_schema, job_defaults, job_rules, job_update_rules};
