/* The Job controller's rules (batch.h), written from Kubernetes' pkg/controller/job. */
#include "controllers/batch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/batch.h"
#include "base/buf.h"
#include "base/mem.h"
#include "base/time.h"
#include "controllers/podutil.h"
#include "store/store.h"

#define DEFAULT_BACKOFF_MS 10000
#define BACKOFF_CAP 60 /* x base: 10 min, Kubernetes' MaxJobPodFailureBackOff */

static int64_t backoff_base_ms = DEFAULT_BACKOFF_MS;

void ty_batch_set_pod_backoff(int64_t base_ms)
{
    backoff_base_ms = base_ms > 0 ? base_ms : DEFAULT_BACKOFF_MS;
}

static const json_t *spec_of(const json_t *job)
{
    return json_object_get(job, "spec");
}

static bool spec_int(const json_t *job, const char *key, json_int_t *v)
{
    const json_t *x = json_object_get(spec_of(job), key);
    if (!json_is_integer(x))
        return false;
    *v = json_integer_value(x);
    return true;
}

static bool indexed(const json_t *job)
{
    const char *m = json_string_value(json_object_get(spec_of(job), "completionMode"));
    return m && strcmp(m, TY_BATCH_INDEXED) == 0;
}

static const json_t *condition(const json_t *job, const char *type)
{
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(json_object_get(job, "status"), "conditions"), i, c)
    {
        const char *t = json_string_value(json_object_get(c, "type"));
        if (t && strcmp(t, type) == 0)
            return c;
    }
    return NULL;
}

static bool condition_true(const json_t *job, const char *type)
{
    const char *s = json_string_value(json_object_get(condition(job, type), "status"));
    return s && strcmp(s, "True") == 0;
}

bool ty_batch_finished(const json_t *job, bool *ok)
{
    bool complete = condition_true(job, "Complete");
    if (ok)
        *ok = complete;
    return complete || condition_true(job, "Failed");
}

static json_t *status_of(json_t *job)
{
    json_t *st = json_object_get(job, "status");
    if (!json_is_object(st)) {
        st = json_object();
        json_object_set_new(job, "status", st);
    }
    return st;
}

/* Sets (or adds) a condition; the times move only when the status flips. With `add_only`
 * a missing condition is not added (Kubernetes' ensureJobConditionStatus for False). Returns
 * whether anything changed. */
static bool set_condition(json_t *job, const char *type, const char *status, const char *reason,
                          const char *message, int64_t now, bool add_only)
{
    json_t *st = status_of(job);
    json_t *conds = json_object_get(st, "conditions");
    if (!json_is_array(conds)) {
        conds = json_array();
        json_object_set_new(st, "conditions", conds);
    }
    char ts[40];
    ty_time_format_rfc3339(now, ts, sizeof ts, 0);
    json_t *c = (json_t *)condition(job, type);
    if (!c) {
        if (add_only)
            return false;
        json_array_append_new(conds, json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "type", type,
                                               "status", status, "lastProbeTime", ts,
                                               "lastTransitionTime", ts, "reason", reason,
                                               "message", message));
        return true;
    }
    const char *was = json_string_value(json_object_get(c, "status"));
    const char *wr = json_string_value(json_object_get(c, "reason"));
    const char *wm = json_string_value(json_object_get(c, "message"));
    if (was && strcmp(was, status) == 0 && wr && strcmp(wr, reason) == 0 && wm &&
        strcmp(wm, message) == 0)
        return false;
    if (!was || strcmp(was, status) != 0)
        json_object_set_new(c, "lastTransitionTime", json_string(ts));
    json_object_set_new(c, "lastProbeTime", json_string(ts));
    json_object_set_new(c, "status", json_string(status));
    json_object_set_new(c, "reason", json_string(reason));
    json_object_set_new(c, "message", json_string(message));
    return true;
}

static bool set_int(json_t *st, const char *key, json_int_t v)
{
    if (json_integer_value(json_object_get(st, key)) == v && json_object_get(st, key))
        return false;
    json_object_set_new(st, key, json_integer(v));
    return true;
}

/* Sets key to s, or removes it when s is NULL or empty. */
static bool set_str(json_t *st, const char *key, const char *s)
{
    const char *was = json_string_value(json_object_get(st, key));
    if (!s || !*s) {
        if (!json_object_get(st, key))
            return false;
        json_object_del(st, key);
        return true;
    }
    if (was && strcmp(was, s) == 0)
        return false;
    json_object_set_new(st, key, json_string(s));
    return true;
}

void ty_batch_fail_job(json_t *job, const char *reason, const char *message, int64_t now_ns)
{
    set_condition(job, "FailureTarget", "True", reason, message, now_ns, false);
    set_condition(job, "Failed", "True", reason, message, now_ns, false);
}

long ty_batch_pod_index(const json_t *pod)
{
    const char *s = json_string_value(json_object_get(
        json_object_get(json_object_get(pod, "metadata"), "annotations"),
        TY_BATCH_COMPLETION_INDEX));
    if (!s || !*s)
        return -1;
    char *end;
    long v = strtol(s, &end, 10);
    return *end || v < 0 ? -1 : v;
}

static int compare_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

/* Sorted and without duplicates, in place; returns the new count. */
static size_t unique(long *v, size_t n)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof *v, compare_long);
    size_t k = 1;
    for (size_t i = 1; i < n; i++)
        if (v[i] != v[k - 1])
            v[k++] = v[i];
    return k;
}

static bool contains(const long *v, size_t n, long x)
{
    return n && bsearch(&x, v, n, sizeof *v, compare_long) != NULL;
}

/* ---------- pod failure policy ---------- */

static bool exit_code_matches(const json_t *req, const json_t *pod, const char **container,
                              json_int_t *code)
{
    const char *op = json_string_value(json_object_get(req, "operator"));
    const char *only = json_string_value(json_object_get(req, "containerName"));
    const json_t *values = json_object_get(req, "values");
    static const char *const lists[] = {"initContainerStatuses", "containerStatuses"};
    if (!op || (strcmp(op, "In") != 0 && strcmp(op, "NotIn") != 0))
        return false; /* an operator this version does not know matches nothing */
    for (int l = 0; l < 2; l++) {
        size_t i;
        json_t *cs;
        json_array_foreach(json_object_get(json_object_get(pod, "status"), lists[l]), i, cs)
        {
            const char *name = json_string_value(json_object_get(cs, "name"));
            const json_t *term = json_object_get(json_object_get(cs, "state"), "terminated");
            if (!term || (only && (!name || strcmp(name, only) != 0)))
                continue;
            json_int_t x = json_integer_value(json_object_get(term, "exitCode"));
            if (x == 0) /* a container that succeeded matches no requirement */
                continue;
            bool in = false;
            size_t k;
            json_t *v;
            json_array_foreach(values, k, v) in = in || json_integer_value(v) == x;
            if (in == (strcmp(op, "In") == 0)) {
                *container = name ? name : "";
                *code = x;
                return true;
            }
        }
    }
    return false;
}

static const json_t *pod_condition_matches(const json_t *rule, const json_t *pod)
{
    size_t i;
    json_t *pat;
    json_array_foreach(json_object_get(rule, "onPodConditions"), i, pat)
    {
        const char *type = json_string_value(json_object_get(pat, "type"));
        const char *status = json_string_value(json_object_get(pat, "status"));
        const json_t *c = type ? ty_pod_condition(pod, type) : NULL;
        const char *have = json_string_value(json_object_get(c, "status"));
        if (c && have && strcmp(have, status ? status : "True") == 0)
            return pat;
    }
    return NULL;
}

ty_batch_pod_verdict ty_batch_judge_pod(const json_t *job, const json_t *pod, char **message)
{
    *message = NULL;
    size_t i;
    json_t *rule;
    json_array_foreach(json_object_get(json_object_get(spec_of(job), "podFailurePolicy"), "rules"),
                       i, rule)
    {
        const char *action = json_string_value(json_object_get(rule, "action"));
        /* a rule whose action this version does not know is skipped */
        if (!action || (strcmp(action, "Ignore") && strcmp(action, "Count") &&
                        strcmp(action, "FailIndex") && strcmp(action, "FailJob")))
            continue;
        const json_t *req = json_object_get(rule, "onExitCodes");
        const char *container = NULL;
        json_int_t code = 0;
        const json_t *pat = NULL;
        if (req ? !exit_code_matches(req, pod, &container, &code)
                : !(pat = pod_condition_matches(rule, pod)))
            continue;
        if (strcmp(action, "Ignore") == 0)
            return TY_BATCH_IGNORE;
        if (strcmp(action, "Count") == 0)
            return TY_BATCH_COUNT;
        if (strcmp(action, "FailIndex") == 0)
            return TY_BATCH_FAIL_INDEX;
        if (req)
            *message = ty_asprintf("Container %s for pod %s/%s failed with exit code %lld "
                                   "matching %s rule at index %zu",
                                   container, ty_obj_namespace(pod), ty_obj_name(pod),
                                   (long long)code, action, i);
        else
            *message = ty_asprintf("Pod %s/%s has condition %s matching %s rule at index %zu",
                                   ty_obj_namespace(pod), ty_obj_name(pod),
                                   json_string_value(json_object_get(pat, "type")), action, i);
        return TY_BATCH_FAIL_JOB;
    }
    return TY_BATCH_COUNT;
}

/* ---------- success policy ---------- */

/* Whether `successPolicy` (Indexed jobs) is met by the succeeded indexes (sorted, distinct);
 * the message names the first rule met ("Matched rules at index 0"). A rule with
 * succeededIndexes is met when all of them succeeded, or succeededCount of them; one with
 * succeededCount alone when that many indexes succeeded. */
static bool success_policy_met(const json_t *job, json_int_t completions, const long *done,
                               size_t ndone, char **message)
{
    size_t i;
    json_t *rule;
    json_array_foreach(json_object_get(json_object_get(spec_of(job), "successPolicy"), "rules"),
                       i, rule)
    {
        const json_t *cnt = json_object_get(rule, "succeededCount");
        const char *text = json_string_value(json_object_get(rule, "succeededIndexes"));
        bool met = false;
        if (text) {
            long *want = NULL;
            size_t nwant = 0, have = 0;
            if (ty_batch_parse_indexes(text, (long)completions, &want, &nwant) == 0 && nwant) {
                nwant = unique(want, nwant);
                for (size_t k = 0; k < nwant; k++)
                    have += contains(done, ndone, want[k]);
                met = have == nwant ||
                      (json_is_integer(cnt) && (json_int_t)have >= json_integer_value(cnt));
            }
            free(want);
        } else if (json_is_integer(cnt)) {
            met = ndone > 0 && (json_int_t)ndone >= json_integer_value(cnt);
        }
        if (met) {
            *message = ty_asprintf("Matched rules at index %zu", i);
            return true;
        }
    }
    return false;
}

/* ---------- pods ---------- */

static json_t *object_member(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_object(v)) {
        v = json_object();
        json_object_set_new(o, key, v);
    }
    return v;
}

json_t *ty_batch_pod(const json_t *job, const char *name, long index, long index_failures)
{
    const json_t *tmpl = json_object_get(spec_of(job), "template");
    const json_t *tmeta = json_object_get(tmpl, "metadata");
    json_t *pod = json_object();
    json_object_set_new(pod, "apiVersion", json_string("v1"));
    json_object_set_new(pod, "kind", json_string("Pod"));
    json_t *meta = object_member(pod, "metadata");
    const char *job_name = ty_obj_name(job);
    char idx[24] = "";
    if (index >= 0)
        snprintf(idx, sizeof idx, "%ld", index);
    json_object_set_new(meta, "generateName", index >= 0 ? json_sprintf("%s-%s-", job_name, idx)
                                                         : json_sprintf("%s-", job_name));
    json_object_set_new(meta, "name", json_string(name));
    json_object_set_new(meta, "namespace", json_string(ty_obj_namespace(job)));
    json_t *labels = json_is_object(json_object_get(tmeta, "labels"))
                         ? json_deep_copy(json_object_get(tmeta, "labels"))
                         : json_object();
    json_t *ann = json_is_object(json_object_get(tmeta, "annotations"))
                      ? json_deep_copy(json_object_get(tmeta, "annotations"))
                      : json_object();
    if (index >= 0) {
        json_object_set_new(labels, TY_BATCH_COMPLETION_INDEX, json_string(idx));
        json_object_set_new(ann, TY_BATCH_COMPLETION_INDEX, json_string(idx));
        if (json_object_get(spec_of(job), "backoffLimitPerIndex"))
            json_object_set_new(ann, TY_BATCH_INDEX_FAILURE_COUNT,
                                json_sprintf("%ld", index_failures));
    }
    json_object_set_new(meta, "labels", labels);
    json_object_set_new(meta, "annotations", ann);
    json_object_set_new(meta, "ownerReferences",
                        json_pack("[{s:s,s:s,s:s,s:s,s:b,s:b}]", "apiVersion",
                                  TY_BATCH_API_VERSION, "kind", "Job", "name", job_name, "uid",
                                  ty_obj_uid(job) ? ty_obj_uid(job) : "", "controller", 1,
                                  "blockOwnerDeletion", 1));
    json_t *spec = json_is_object(json_object_get(tmpl, "spec"))
                       ? json_deep_copy(json_object_get(tmpl, "spec"))
                       : json_object();
    if (index >= 0) {
        if (!json_object_get(spec, "hostname"))
            json_object_set_new(spec, "hostname", json_sprintf("%s-%s", job_name, idx));
        static const char *const lists[] = {"initContainers", "containers"};
        for (int l = 0; l < 2; l++) {
            size_t i;
            json_t *ct;
            json_array_foreach(json_object_get(spec, lists[l]), i, ct)
            {
                json_t *env = json_object_get(ct, "env");
                if (!json_is_array(env)) {
                    env = json_array();
                    json_object_set_new(ct, "env", env);
                }
                json_array_append_new(env, json_pack("{s:s,s:s}", "name", "JOB_COMPLETION_INDEX",
                                                     "value", idx));
            }
        }
    }
    json_object_set_new(pod, "spec", spec);
    return pod;
}

/* ---------- the pass ---------- */

void ty_batch_outcome_free(ty_batch_outcome *o)
{
    if (!o)
        return;
    for (size_t i = 0; i < o->ndelete; i++)
        free(o->delete_pods[i]);
    free(o->delete_pods);
    free(o->create);
    free(o->create_failures);
    free(o->event_message);
    memset(o, 0, sizeof *o);
}

static void add_delete(ty_batch_outcome *o, const json_t *pod)
{
    o->delete_pods = ty_realloc(o->delete_pods, (o->ndelete + 1) * sizeof(char *));
    o->delete_pods[o->ndelete++] = ty_strdup(ty_obj_name(pod));
}

static void add_create(ty_batch_outcome *o, long index, long failures)
{
    o->create = ty_realloc(o->create, (o->ncreate + 1) * sizeof(long));
    o->create_failures = ty_realloc(o->create_failures, (o->ncreate + 1) * sizeof(long));
    o->create[o->ncreate] = index;
    o->create_failures[o->ncreate++] = failures;
}

static void requeue(ty_batch_outcome *o, int64_t after_ns)
{
    if (after_ns <= 0)
        after_ns = 1;
    if (!o->requeue_after_ns || after_ns < o->requeue_after_ns)
        o->requeue_after_ns = after_ns;
}

static int64_t time_at(const json_t *o, const char *key)
{
    int64_t t;
    const char *s = json_string_value(json_object_get(o, key));
    return s && ty_time_parse_rfc3339(s, &t) == 0 ? t : 0;
}

/* When a pod ended: its containers' last finishedAt, else its creation. */
static int64_t ended_at(const json_t *pod)
{
    int64_t t = 0;
    static const char *const lists[] = {"initContainerStatuses", "containerStatuses"};
    for (int l = 0; l < 2; l++) {
        size_t i;
        json_t *cs;
        json_array_foreach(json_object_get(json_object_get(pod, "status"), lists[l]), i, cs)
        {
            int64_t f = time_at(json_object_get(json_object_get(cs, "state"), "terminated"),
                                "finishedAt");
            if (f > t)
                t = f;
        }
    }
    return t ? t : time_at(json_object_get(pod, "metadata"), "creationTimestamp");
}

static json_int_t container_restarts(const json_t *pod)
{
    json_int_t n = 0;
    static const char *const lists[] = {"initContainerStatuses", "containerStatuses"};
    for (int l = 0; l < 2; l++) {
        size_t i;
        json_t *cs;
        json_array_foreach(json_object_get(json_object_get(pod, "status"), lists[l]), i, cs)
            n += json_integer_value(json_object_get(cs, "restartCount"));
    }
    return n;
}

static bool pod_ready(const json_t *pod)
{
    const char *s = json_string_value(json_object_get(ty_pod_condition(pod, "Ready"), "status"));
    return s && strcmp(s, "True") == 0;
}

/* Newer pods go first when some must be deleted (the controller deletes the least
 * progressed: not ready, then newest). */
static int compare_for_deletion(const void *a, const void *b)
{
    const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    if (pod_ready(x) != pod_ready(y))
        return pod_ready(x) ? 1 : -1;
    int64_t tx = time_at(json_object_get(x, "metadata"), "creationTimestamp");
    int64_t ty = time_at(json_object_get(y, "metadata"), "creationTimestamp");
    return (ty > tx) - (ty < tx);
}

static void finish_event(ty_batch_outcome *o, const char *reason, const char *message,
                         bool warning)
{
    o->event_reason = reason;
    free(o->event_message);
    o->event_message = ty_strdup(message);
    o->event_warning = warning;
}

void ty_batch_reconcile(json_t *job, json_t *const *pods, size_t npods, int64_t now,
                        ty_batch_outcome *out)
{
    memset(out, 0, sizeof *out);
    json_t *before = json_deep_copy(json_object_get(job, "status"));
    json_t *st = status_of(job);
    const json_t *spec = spec_of(job);
    bool ok;
    if (ty_batch_finished(job, &ok)) {
        json_int_t ttl;
        if (spec_int(job, "ttlSecondsAfterFinished", &ttl)) {
            const json_t *c = condition(job, ok ? "Complete" : "Failed");
            int64_t done = time_at(c, "lastTransitionTime");
            int64_t due = (done ? done : now) + ttl * 1000000000LL;
            if (now >= due)
                out->delete_job = true;
            else
                requeue(out, due - now);
        }
        /* what is still running of a finished job goes */
        for (size_t i = 0; i < npods; i++)
            if (!ty_pod_terminated(pods[i]) && !ty_obj_deleting(pods[i]))
                add_delete(out, pods[i]);
        json_decref(before);
        return;
    }
    bool is_indexed = indexed(job);
    json_int_t parallelism = 1, completions = 0, backoff_limit = 6, per_index = -1,
               max_failed_idx = -1, deadline = -1;
    spec_int(job, "parallelism", &parallelism);
    bool has_completions = spec_int(job, "completions", &completions);
    spec_int(job, "backoffLimit", &backoff_limit);
    bool has_per_index = spec_int(job, "backoffLimitPerIndex", &per_index) && is_indexed;
    spec_int(job, "maxFailedIndexes", &max_failed_idx);
    spec_int(job, "activeDeadlineSeconds", &deadline);
    bool suspend = json_is_true(json_object_get(spec, "suspend"));
    const char *rp = json_string_value(json_object_get(
        json_object_get(json_object_get(spec, "template"), "spec"), "restartPolicy"));
    bool on_failure = rp && strcmp(rp, "OnFailure") == 0;
    const char *replace = json_string_value(json_object_get(spec, "podReplacementPolicy"));
    bool replace_when_gone = replace && strcmp(replace, "Failed") == 0;

    /* ---- the pods as they are ---- */
    json_t **active = ty_calloc(npods + 1, sizeof *active);
    size_t nactive = 0, terminating = 0, ready = 0, succeeded_pods = 0, failed = 0;
    long *done_idx = NULL, *failed_idx = NULL;
    size_t ndone = 0, nfailed_idx = 0;
    ty_buf fail_job = TY_BUF_INIT; /* the first FailJob rule's message */
    json_int_t restarts = 0;
    int64_t last_success = 0, last_failure = 0;
    int64_t *failed_at = ty_calloc(npods + 1, sizeof *failed_at); /* counted failures' ends */
    if (is_indexed)
        ty_batch_parse_indexes(json_string_value(json_object_get(st, "completedIndexes")),
                               (long)completions, &done_idx, &ndone);
    /* failures per index (backoffLimitPerIndex), indexed by index */
    long *index_failures = has_per_index ? ty_calloc((size_t)completions + 1, sizeof(long)) : NULL;
    for (size_t i = 0; i < npods; i++) {
        const json_t *pod = pods[i];
        const char *phase = ty_pod_phase(pod);
        long idx = is_indexed ? ty_batch_pod_index(pod) : -1;
        bool valid_idx = idx >= 0 && idx < completions;
        if (strcmp(phase, "Succeeded") == 0) {
            succeeded_pods++;
            if (valid_idx) {
                done_idx = ty_realloc(done_idx, (ndone + 1) * sizeof *done_idx);
                done_idx[ndone++] = idx;
            }
            if (ended_at(pod) > last_success)
                last_success = ended_at(pod);
            continue;
        }
        if (strcmp(phase, "Failed") == 0) {
            /* one that ended because it was deleted (the job completed, was suspended, or a
             * user deleted it) did not fail on its own: not counted (a failing job counts
             * the pods it stops when it stops them) */
            if (ty_obj_deleting(pod))
                continue;
            char *msg = NULL;
            ty_batch_pod_verdict v = ty_batch_judge_pod(job, pod, &msg);
            if (v == TY_BATCH_FAIL_JOB && !fail_job.len)
                ty_buf_adds(&fail_job, msg);
            free(msg);
            if (v == TY_BATCH_IGNORE)
                continue;
            failed_at[failed++] = ended_at(pod);
            if (ended_at(pod) > last_failure)
                last_failure = ended_at(pod);
            if (has_per_index && valid_idx) {
                index_failures[idx]++;
                if (v == TY_BATCH_FAIL_INDEX || index_failures[idx] > per_index) {
                    failed_idx = ty_realloc(failed_idx, (nfailed_idx + 1) * sizeof *failed_idx);
                    failed_idx[nfailed_idx++] = idx;
                }
            }
            continue;
        }
        if (ty_obj_deleting(pod)) {
            terminating++;
            continue;
        }
        active[nactive++] = (json_t *)pod;
        ready += pod_ready(pod);
        if (on_failure)
            restarts += container_restarts(pod);
    }
    ndone = unique(done_idx, ndone);
    nfailed_idx = unique(failed_idx, nfailed_idx);
    /* the counted failures since the last success set the back-off (an ignored one does
     * not) */
    size_t recent_failures = 0;
    for (size_t i = 0; i < failed; i++)
        recent_failures += failed_at[i] >= last_success;
    free(failed_at);
    size_t succeeded = is_indexed ? ndone : succeeded_pods;

    /* ---- startTime, suspension ---- */
    char ts[40];
    ty_time_format_rfc3339(now, ts, sizeof ts, 0);
    if (!suspend && !json_object_get(st, "startTime"))
        json_object_set_new(st, "startTime", json_string(ts));
    int64_t start = time_at(st, "startTime");

    /* ---- is the job done? ---- */
    const char *fail_reason = NULL, *fail_msg = NULL;
    const char *success_reason = "CompletionsReached";
    char *policy_msg = NULL; /* the success policy's, when it decided */
    bool success = false;
    const json_t *target = condition(job, "FailureTarget");
    const json_t *criteria = condition(job, "SuccessCriteriaMet");
    if (target && condition_true(job, "FailureTarget")) {
        fail_reason = json_string_value(json_object_get(target, "reason"));
        fail_msg = json_string_value(json_object_get(target, "message"));
    } else if (criteria && condition_true(job, "SuccessCriteriaMet")) {
        success = true;
        success_reason = json_string_value(json_object_get(criteria, "reason"));
        const char *m = json_string_value(json_object_get(criteria, "message"));
        policy_msg = m ? ty_strdup(m) : NULL;
    } else if (fail_job.len) {
        fail_reason = "PodFailurePolicy";
        fail_msg = fail_job.data;
    } else if ((json_int_t)failed > backoff_limit ||
               (on_failure && (backoff_limit == 0 ? restarts > 0 : restarts >= backoff_limit))) {
        fail_reason = "BackoffLimitExceeded";
        fail_msg = "Job has reached the specified backoff limit";
    } else if (!suspend && deadline >= 0 && start &&
               now - start >= deadline * 1000000000LL) {
        fail_reason = "DeadlineExceeded";
        fail_msg = "Job was active longer than specified deadline";
    } else if (has_per_index && max_failed_idx >= 0 && (json_int_t)nfailed_idx > max_failed_idx) {
        fail_reason = "MaxFailedIndexesExceeded";
        fail_msg = "Job has exceeded the specified maximal number of failed indexes";
    } else if (has_per_index && nfailed_idx && (json_int_t)(ndone + nfailed_idx) >= completions) {
        fail_reason = "FailedIndexes";
        fail_msg = "Job has failed indexes";
    } else if (is_indexed && success_policy_met(job, completions, done_idx, ndone, &policy_msg)) {
        success = true;
        success_reason = "SuccessPolicy";
    } else if (has_completions ? (json_int_t)succeeded >= completions
                               : succeeded > 0 && nactive == 0) {
        success = true;
    }
    if (!suspend && deadline >= 0 && start && !fail_reason && !success)
        requeue(out, start + deadline * 1000000000LL - now);

    json_int_t failed_total = (json_int_t)failed;
    if (fail_reason) {
        /* The target first, the pods stopped, then Failed once none is left. The pods it
         * stops count as failed (Kubernetes counts them when they end; here they are gone
         * then, so the count made now is kept). */
        if (set_condition(job, "FailureTarget", "True", fail_reason, fail_msg, now, false))
            finish_event(out, fail_reason, fail_msg, true);
        for (size_t i = 0; i < nactive; i++)
            add_delete(out, active[i]);
        failed_total += (json_int_t)nactive;
        json_int_t stored = json_integer_value(json_object_get(st, "failed"));
        if (stored > failed_total)
            failed_total = stored;
        if (nactive == 0 && terminating == 0)
            set_condition(job, "Failed", "True", fail_reason, fail_msg, now, false);
    } else if (success) {
        const char *reason = success_reason ? success_reason : "CompletionsReached";
        const char *msg = policy_msg ? policy_msg : "Reached expected number of succeeded pods";
        if (set_condition(job, "SuccessCriteriaMet", "True", reason, msg, now, false))
            finish_event(out, "Completed", "Job completed", false);
        for (size_t i = 0; i < nactive; i++)
            add_delete(out, active[i]);
        if (nactive == 0 && terminating == 0) {
            set_condition(job, "Complete", "True", reason, msg, now, false);
            if (!json_object_get(st, "completionTime"))
                json_object_set_new(st, "completionTime", json_string(ts));
        }
    } else if (suspend) {
        for (size_t i = 0; i < nactive; i++)
            add_delete(out, active[i]);
        if (set_condition(job, "Suspended", "True", "JobSuspended", "Job suspended", now, false))
            finish_event(out, "Suspended", "Job suspended", false);
    } else {
        if (set_condition(job, "Suspended", "False", "JobResumed", "Job resumed", now, true)) {
            finish_event(out, "Resumed", "Job resumed", false);
            /* a resumed job's deadline counts from now */
            json_object_set_new(st, "startTime", json_string(ts));
        }
        /* ---- the pods it should have ---- */
        int64_t wait = 0;
        if (recent_failures && last_failure) {
            int64_t delay = backoff_base_ms * 1000000LL;
            for (size_t i = 1; i < recent_failures && delay < backoff_base_ms * BACKOFF_CAP * 1000000LL; i++)
                delay *= 2;
            if (delay > backoff_base_ms * BACKOFF_CAP * 1000000LL)
                delay = backoff_base_ms * BACKOFF_CAP * 1000000LL;
            if (last_failure + delay > now)
                wait = last_failure + delay - now;
        }
        bool may_create = !(replace_when_gone && terminating > 0);
        if (!is_indexed) {
            json_int_t want = has_completions ? completions - (json_int_t)succeeded : parallelism;
            if (!has_completions && succeeded > 0)
                want = (json_int_t)nactive; /* no new pods; the running ones may finish */
            if (want > parallelism)
                want = parallelism;
            if (want < 0)
                want = 0;
            if ((json_int_t)nactive > want) {
                qsort(active, nactive, sizeof *active, compare_for_deletion);
                for (size_t i = 0; i < nactive - (size_t)want; i++)
                    add_delete(out, active[i]);
            } else if ((json_int_t)nactive < want && may_create) {
                if (wait > 0)
                    requeue(out, wait);
                else
                    for (json_int_t i = nactive; i < want; i++)
                        add_create(out, -1, 0);
            }
        } else {
            /* one pod per pending index: pods of done, failed or out-of-range indexes, and
             * duplicates, go */
            unsigned char *has_pod = ty_calloc((size_t)completions + 1, 1);
            size_t kept = 0;
            for (size_t i = 0; i < nactive; i++) {
                long idx = ty_batch_pod_index(active[i]);
                if (idx < 0 || idx >= completions || has_pod[idx] ||
                    contains(done_idx, ndone, idx) || contains(failed_idx, nfailed_idx, idx)) {
                    add_delete(out, active[i]);
                    continue;
                }
                has_pod[idx] = 1;
                kept++;
            }
            if (wait > 0 && may_create) {
                requeue(out, wait);
            } else if (may_create) {
                for (long idx = 0; idx < completions && (json_int_t)kept < parallelism; idx++) {
                    if (has_pod[idx] || contains(done_idx, ndone, idx) ||
                        contains(failed_idx, nfailed_idx, idx))
                        continue;
                    add_create(out, idx, index_failures ? index_failures[idx] : 0);
                    kept++;
                }
            }
            free(has_pod);
        }
    }

    /* ---- the counts ---- */
    size_t deleting = 0;
    for (size_t i = 0; i < out->ndelete; i++)
        for (size_t k = 0; k < nactive; k++)
            deleting += strcmp(out->delete_pods[i], ty_obj_name(active[k])) == 0;
    set_int(st, "active", (json_int_t)(nactive - deleting));
    set_int(st, "ready", (json_int_t)ready);
    set_int(st, "terminating", (json_int_t)(terminating + deleting));
    set_int(st, "succeeded", (json_int_t)succeeded);
    set_int(st, "failed", failed_total);
    if (!json_object_get(st, "uncountedTerminatedPods"))
        json_object_set_new(st, "uncountedTerminatedPods", json_object());
    if (is_indexed) {
        TY_AUTOFREE char *d = ty_batch_format_indexes(done_idx, ndone);
        set_str(st, "completedIndexes", d);
        if (has_per_index) {
            TY_AUTOFREE char *f = ty_batch_format_indexes(failed_idx, nfailed_idx);
            /* Kubernetes writes failedIndexes (maybe "") once the job tracks them */
            const char *was = json_string_value(json_object_get(st, "failedIndexes"));
            if (!was || strcmp(was, f) != 0)
                json_object_set_new(st, "failedIndexes", json_string(f));
        }
    }
    free(policy_msg);
    out->status_changed = !json_equal(before, st);
    json_decref(before);
    ty_buf_free(&fail_job);
    free(active);
    free(done_idx);
    free(failed_idx);
    free(index_failures);
}
