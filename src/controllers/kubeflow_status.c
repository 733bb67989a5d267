/* Restart rules, conditions and status of a Kubeflow job: the operator's ReconcileJobs,
 * ReconcilePods and UpdateJobStatus without the I/O. See kubeflow.h. */
#include "controllers/kubeflow.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/buf.h"
#include "base/mem.h"
#include "base/time.h"
#include "controllers/controllers_int.h"

#define NO_EXIT_CODE 0xbeef /* the operator's marker for "no terminated main container" */

bool ty_kubeflow_exit_code_retryable(int code)
{
    return code >= 128;
}

int ty_kubeflow_pod_exit_code(const json_t *job, const json_t *pod)
{
    const ty_kf_kind *k = ty_kf_kind_of(job);
    int code = NO_EXIT_CODE;
    size_t i;
    const json_t *cs;
    json_array_foreach(json_object_get(json_object_get(pod, "status"), "containerStatuses"), i, cs) {
        const json_t *term = json_object_get(json_object_get(cs, "state"), "terminated");
        if (k && strcmp(ty_kf_str(cs, "name"), k->container) == 0 && json_is_object(term))
            code = (int)json_integer_value(json_object_get(term, "exitCode"));
    }
    return code;
}

void ty_kubeflow_decision_clear(ty_kubeflow_decision *d)
{
    if (!d)
        return;
    free(d->reason);
    free(d->message);
    *d = (ty_kubeflow_decision){0};
}

void ty_kubeflow_outcome_free(ty_kubeflow_outcome *o)
{
    if (!o)
        return;
    for (size_t i = 0; i < o->ncreate; i++)
        free(o->create[i].rtype);
    free(o->create);
    for (size_t i = 0; i < o->ndelete; i++)
        free(o->delete_pods[i]);
    free(o->delete_pods);
    *o = (ty_kubeflow_outcome){0};
}

static const char *pod_phase(const json_t *pod)
{
    return ty_kf_str(json_object_get(pod, "status"), "phase");
}

static const json_t *pod_labels(const json_t *pod)
{
    return json_object_get(json_object_get(pod, "metadata"), "labels");
}

static const char *pod_name(const json_t *pod)
{
    return ty_kf_str(json_object_get(pod, "metadata"), "name");
}

static bool pod_terminating(const json_t *pod)
{
    const json_t *dt = json_object_get(json_object_get(pod, "metadata"), "deletionTimestamp");
    return dt && !json_is_null(dt);
}

/* The replica spec key ("Worker") matching a pod's lowercase replica-type label, or NULL. */
static const char *pod_rtype(const json_t *job, const ty_kf_kind *k, const json_t *pod)
{
    const char *rt = ty_kf_str(pod_labels(pod), TY_KUBEFLOW_LABEL_REPLICA_TYPE);
    const char *key;
    const json_t *spec;
    json_object_foreach((json_t *)ty_kf_specs(job, k), key, spec) {
        if (strcasecmp(key, rt) == 0)
            return key;
    }
    return NULL;
}

/* The replica-index label, or -1 when missing or not a number. */
static int pod_index(const json_t *pod)
{
    const char *s = ty_kf_str(pod_labels(pod), TY_KUBEFLOW_LABEL_REPLICA_INDEX);
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < 0 || v > 1000000)
        return -1;
    return (int)v;
}

ty_kubeflow_action ty_kubeflow_pod_decide(const json_t *job, const json_t *pod,
                                          ty_kubeflow_decision *out)
{
    *out = (ty_kubeflow_decision){0};
    const ty_kf_kind *k = ty_kf_kind_of(job);
    if (!k || strcmp(pod_phase(pod), "Failed") != 0)
        return TY_KUBEFLOW_NONE;
    const char *rtype = pod_rtype(job, k, pod);
    if (!rtype)
        return TY_KUBEFLOW_NONE;
    const json_t *spec = ty_kf_spec(job, k, rtype);
    const char *policy = ty_kf_restart_policy(spec);
    const char *name = ty_kf_name(job);
    int code = ty_kubeflow_pod_exit_code(job, pod);
    bool exit_policy = strcmp(policy, "ExitCode") == 0;

    if ((exit_policy && ty_kubeflow_exit_code_retryable(code)) ||
        strcmp(policy, "OnFailure") == 0 || strcmp(policy, "Always") == 0) {
        bool gang = k->kind == TY_KUBEFLOW_PYTORCH && !ty_kf_is_elastic(job);
        out->action = gang ? TY_KUBEFLOW_RESTART_GANG : TY_KUBEFLOW_RESTART_POD;
        out->reason = ty_asprintf("%sRestarting", k->name);
        out->message = ty_asprintf("job %s is restarting because %s replica(s) failed.", name,
                                   rtype);
    } else if (exit_policy) {
        out->action = TY_KUBEFLOW_FAIL_JOB;
        out->reason = ty_asprintf("%sFailed", k->name);
        out->message = ty_asprintf("job \"%s\" is failing because \"%s\" replica(s) failed.",
                                   name, rtype);
    } else if (strcmp(policy, "Never") == 0) {
        bool dynamic = json_is_true(
            json_object_get(json_object_get(job, "spec"), "enableDynamicWorker"));
        if (k->kind == TY_KUBEFLOW_TF && dynamic && strcmp(rtype, "Worker") == 0)
            return TY_KUBEFLOW_NONE;
        out->action = TY_KUBEFLOW_FAIL_JOB;
        out->reason = ty_asprintf("%sFailed", k->name);
        if (k->kind == TY_KUBEFLOW_PYTORCH)
            out->message = ty_asprintf("PyTorchJob %s is failed because 1 %s replica(s) failed.",
                                       name, rtype);
        else
            out->message = ty_asprintf("TFJob %s/%s has failed because 1 %s replica(s) failed.",
                                       ty_kf_namespace(job), name, rtype);
    }
    return out->action;
}

bool ty_kubeflow_should_clean_pod(const json_t *job, const json_t *pod)
{
    const json_t *rp = json_object_get(json_object_get(job, "spec"), "runPolicy");
    const char *policy = ty_kf_str(rp, "cleanPodPolicy");
    if (strcmp(policy, "All") == 0)
        return true;
    if (strcmp(policy, "Running") == 0) {
        const char *ph = pod_phase(pod);
        return strcmp(ph, "Running") == 0 || strcmp(ph, "Pending") == 0;
    }
    return false; /* None, and unset: the operator's default is None */
}

/* ---- conditions ---- */

static json_t *find_condition(const json_t *status, const char *type)
{
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(status, "conditions"), i, c) {
        if (strcmp(ty_kf_str(c, "type"), type) == 0)
            return c;
    }
    return NULL;
}

static bool condition_true(const json_t *status, const char *type)
{
    json_t *c = find_condition(status, type);
    return c && strcmp(ty_kf_str(c, "status"), "True") == 0;
}

/* The operator's setCondition: see kubeflow.h for the rules. */
static void set_condition(json_t *status, const char *type, const char *cstatus,
                          const char *reason, const char *message, const char *now)
{
    if (condition_true(status, "Failed"))
        return;
    json_t *cur = find_condition(status, type);
    if (cur && strcmp(ty_kf_str(cur, "status"), cstatus) == 0 &&
        strcmp(ty_kf_str(cur, "reason"), reason) == 0)
        return;
    const char *ltt = now;
    if (cur && strcmp(ty_kf_str(cur, "status"), cstatus) == 0 &&
        *ty_kf_str(cur, "lastTransitionTime"))
        ltt = ty_kf_str(cur, "lastTransitionTime");
    json_t *c = json_object();
    json_object_set_new(c, "type", json_string(type));
    json_object_set_new(c, "status", json_string(cstatus));
    json_object_set_new(c, "reason", json_string(reason));
    json_object_set_new(c, "message", json_string(message));
    json_object_set_new(c, "lastUpdateTime", json_string(now));
    json_object_set_new(c, "lastTransitionTime", json_string(ltt)); /* ltt may point into cur */

    bool terminal = strcmp(type, "Failed") == 0 || strcmp(type, "Succeeded") == 0;
    json_t *conds = json_array();
    size_t i;
    json_t *old;
    json_array_foreach(json_object_get(status, "conditions"), i, old) {
        const char *ot = ty_kf_str(old, "type");
        if (strcmp(ot, type) == 0)
            continue;
        /* Running and Restarting replace each other. */
        if ((strcmp(type, "Restarting") == 0 && strcmp(ot, "Running") == 0) ||
            (strcmp(type, "Running") == 0 && strcmp(ot, "Restarting") == 0))
            continue;
        json_t *copy = json_deep_copy(old);
        if (terminal && strcmp(ot, "Running") == 0)
            json_object_set_new(copy, "status", json_string("False"));
        json_array_append_new(conds, copy);
    }
    json_array_append_new(conds, c);
    json_object_set_new(status, "conditions", conds);
}

static void set_kind_condition(json_t *status, const ty_kf_kind *k, const char *type,
                               const char *cstatus, const char *why, const char *message,
                               const char *now)
{
    TY_AUTOFREE char *reason = ty_asprintf("%s%s", k->name, why);
    set_condition(status, type, cstatus, reason, message, now);
}

/* ---- outcome helpers ---- */

static void add_delete(ty_kubeflow_outcome *o, const char *name)
{
    for (size_t i = 0; i < o->ndelete; i++)
        if (strcmp(o->delete_pods[i], name) == 0)
            return;
    o->delete_pods = ty_realloc(o->delete_pods, (o->ndelete + 1) * sizeof *o->delete_pods);
    o->delete_pods[o->ndelete++] = ty_strdup(name);
}

static void add_create(ty_kubeflow_outcome *o, const char *rtype, int index)
{
    o->create = ty_realloc(o->create, (o->ncreate + 1) * sizeof *o->create);
    o->create[o->ncreate++] = (ty_kubeflow_replica){ty_strdup(rtype), index};
}

static void clear_creates_and_deletes(ty_kubeflow_outcome *o)
{
    for (size_t i = 0; i < o->ncreate; i++)
        free(o->create[i].rtype);
    free(o->create);
    o->create = NULL;
    o->ncreate = 0;
    for (size_t i = 0; i < o->ndelete; i++)
        free(o->delete_pods[i]);
    free(o->delete_pods);
    o->delete_pods = NULL;
    o->ndelete = 0;
}

static void requeue(ty_kubeflow_outcome *o, int64_t after)
{
    if (after <= 0)
        after = 1;
    if (o->requeue_after_ns == 0 || after < o->requeue_after_ns)
        o->requeue_after_ns = after;
}

static int64_t json_int(const json_t *obj, const char *key, int64_t dflt)
{
    const json_t *v = json_object_get(obj, key);
    return json_is_integer(v) ? json_integer_value(v) : dflt;
}

static void rs_set(json_t *rs, const char *key, int64_t v)
{
    if (v)
        json_object_set_new(rs, key, json_integer(v));
    else
        json_object_del(rs, key); /* Go's omitempty */
}

/* The job's pods, those without a deletionTimestamp. */
typedef struct podset {
    const json_t **live;
    size_t n;
} podset;

static int64_t count_annotation(const json_t *job, const char *key)
{
    const char *s = ty_kf_str(
        json_object_get(json_object_get(job, "metadata"), "annotations"), key);
    char *end;
    long long v = strtoll(s, &end, 10);
    return (*s && !*end && v > 0) ? v : 0;
}

static int64_t restarts_annotation(const json_t *job)
{
    return count_annotation(job, TY_KUBEFLOW_RESTARTS_ANNOTATION);
}

int64_t ty_kubeflow_gang_restarts(const json_t *job)
{
    const char *kind = json_string_value(json_object_get(job, "kind"));
    bool gang = kind && strcmp(kind, "PyTorchJob") == 0 && !ty_kf_is_elastic(job);
    return gang ? restarts_annotation(job) : 0;
}

static void set_count_annotation(json_t *job, const char *key, int64_t v)
{
    json_t *meta = json_object_get(job, "metadata");
    if (!json_is_object(meta)) {
        meta = json_object();
        json_object_set_new(job, "metadata", meta);
    }
    json_t *ann = json_object_get(meta, "annotations");
    if (!json_is_object(ann)) {
        ann = json_object();
        json_object_set_new(meta, "annotations", ann);
    }
    char s[32];
    snprintf(s, sizeof s, "%" PRId64, v);
    json_object_set_new(ann, key, json_string(s));
}

/* The finished job's pass: cleanPodPolicy, active counted as succeeded, TTL. */
static void finished_pass(const json_t *job, json_t *status, const podset *ps, int64_t now_ns,
                          ty_kubeflow_outcome *o)
{
    clear_creates_and_deletes(o);
    o->restarted = o->gang_restart = false;
    for (size_t i = 0; i < ps->n; i++)
        if (ty_kubeflow_should_clean_pod(job, ps->live[i]))
            add_delete(o, pod_name(ps->live[i]));
    o->succeeded = condition_true(status, "Succeeded");
    o->failed = condition_true(status, "Failed");
    o->finished = true;
    if (o->succeeded) {
        const char *key;
        json_t *rs;
        json_object_foreach(json_object_get(status, "replicaStatuses"), key, rs) {
            rs_set(rs, "succeeded", json_int(rs, "succeeded", 0) + json_int(rs, "active", 0));
            rs_set(rs, "active", 0);
        }
    }
    const json_t *rp = json_object_get(json_object_get(job, "spec"), "runPolicy");
    const json_t *ttl = json_object_get(rp, "ttlSecondsAfterFinished");
    int64_t done;
    if (json_is_integer(ttl) &&
        ty_time_parse_rfc3339(ty_kf_str(status, "completionTime"), &done) == 0) {
        int64_t expire = ty_time_add_s(done, json_integer_value(ttl));
        if (now_ns > expire)
            o->delete_job = true;
        else
            requeue(o, expire - now_ns);
    }
}

static char *label_selector(const json_t *job, const ty_kf_kind *k, const char *rtype)
{
    /* metav1.FormatLabelSelector: matchLabels sorted by key, "k=v" joined by ','. The three
     * keys happen to sort as job-name, operator-name, replica-type. */
    json_t *l = ty_kf_labels(job, k, rtype, -1);
    char *s = ty_asprintf("%s=%s,%s=%s,%s=%s", TY_KUBEFLOW_LABEL_JOB_NAME,
                          ty_kf_str(l, TY_KUBEFLOW_LABEL_JOB_NAME), TY_KUBEFLOW_LABEL_OPERATOR,
                          ty_kf_str(l, TY_KUBEFLOW_LABEL_OPERATOR),
                          TY_KUBEFLOW_LABEL_REPLICA_TYPE,
                          ty_kf_str(l, TY_KUBEFLOW_LABEL_REPLICA_TYPE));
    json_decref(l);
    return s;
}

static void set_completion(json_t *status, const char *now)
{
    if (!*ty_kf_str(status, "completionTime"))
        json_object_set_new(status, "completionTime", json_string(now));
}

/* PyTorchJob's UpdateJobStatus (pytorchjob_controller.go). */
static void pytorch_status(const json_t *job, const ty_kf_kind *k, json_t *status,
                           const char *now)
{
    const char *name = ty_kf_name(job);
    bool has_master = ty_kf_spec(job, k, "Master") != NULL;
    json_t *rss = json_object_get(status, "replicaStatuses");
    for (const char *const *t = k->types; *t; t++) {
        const json_t *spec = ty_kf_spec(job, k, *t);
        if (!spec)
            continue;
        json_t *rs = json_object_get(rss, *t);
        int64_t succeeded = json_int(rs, "succeeded", 0), running = json_int(rs, "active", 0);
        int64_t failed = json_int(rs, "failed", 0), replicas = ty_kf_replicas(spec);
        int64_t expected = replicas - succeeded;
        if (has_master) {
            if (strcmp(*t, "Master") == 0) {
                if (running > 0) {
                    TY_AUTOFREE char *m = ty_asprintf("PyTorchJob %s is running.", name);
                    set_kind_condition(status, k, "Running", "True", "Running", m, now);
                }
                if (expected == 0) {
                    TY_AUTOFREE char *m =
                        ty_asprintf("PyTorchJob %s is successfully completed.", name);
                    set_completion(status, now);
                    set_kind_condition(status, k, "Succeeded", "True", "Succeeded", m, now);
                    return;
                }
            }
        } else if (strcmp(*t, "Worker") == 0) {
            if (expected == 0 || (ty_kf_is_elastic(job) && succeeded > 0)) {
                TY_AUTOFREE char *m = ty_asprintf("PyTorchJob %s/%s successfully completed.",
                                                  ty_kf_namespace(job), name);
                set_completion(status, now);
                set_kind_condition(status, k, "Succeeded", "True", "Succeeded", m, now);
            } else if (running > 0) {
                TY_AUTOFREE char *m =
                    ty_asprintf("PyTorchJob %s/%s is running.", ty_kf_namespace(job), name);
                set_kind_condition(status, k, "Running", "True", "Running", m, now);
            }
        }
        if (failed > 0 && replicas > succeeded + running) {
            if (strcmp(ty_kf_restart_policy(spec), "Never") != 0) {
                TY_AUTOFREE char *m = ty_asprintf(
                    "PyTorchJob %s is restarting because %" PRId64 " %s replica(s) failed.", name,
                    failed, *t);
                set_kind_condition(status, k, "Restarting", "True", "Restarting", m, now);
            } else {
                TY_AUTOFREE char *m = ty_asprintf(
                    "PyTorchJob %s is failed because %" PRId64 " %s replica(s) failed.", name,
                    failed, *t);
                if (!condition_true(status, "Failed"))
                    set_completion(status, now);
                set_kind_condition(status, k, "Failed", "True", "Failed", m, now);
            }
        }
    }
}

/* Whether worker 0 ran to completion: phase Succeeded with main container exit code 0. True
 * when there are no workers, as the operator's IsWorker0Completed. */
static bool worker0_completed(const json_t *job, const ty_kf_kind *k, const podset *ps)
{
    if (!ty_kf_spec(job, k, "Worker"))
        return true;
    for (size_t i = 0; i < ps->n; i++) {
        const char *rt = pod_rtype(job, k, ps->live[i]);
        if (rt && strcmp(rt, "Worker") == 0 && pod_index(ps->live[i]) == 0 &&
            strcmp(pod_phase(ps->live[i]), "Succeeded") == 0 &&
            ty_kubeflow_pod_exit_code(job, ps->live[i]) == 0)
            return true;
    }
    return false;
}

/* TFJob's UpdateJobStatus (tfjob_controller.go). */
static void tf_status(const json_t *job, const ty_kf_kind *k, json_t *status, const podset *ps,
                      const char *now)
{
    const char *name = ty_kf_name(job), *ns = ty_kf_namespace(job);
    const json_t *spec0 = json_object_get(job, "spec");
    bool chief = ty_kf_spec(job, k, "Chief") || ty_kf_spec(job, k, "Master");
    bool all_workers = strcmp(ty_kf_str(spec0, "successPolicy"), "AllWorkers") == 0;
    bool dynamic = json_is_true(json_object_get(spec0, "enableDynamicWorker"));
    bool w0 = worker0_completed(job, k, ps);
    /* A Restarting condition present now (ReconcilePods set it) keeps failures as restarts. */
    json_t *restarting = find_condition(status, "Restarting");
    TY_AUTOFREE char *r_reason = restarting ? ty_strdup(ty_kf_str(restarting, "reason")) : NULL;
    TY_AUTOFREE char *r_msg = restarting ? ty_strdup(ty_kf_str(restarting, "message")) : NULL;
    json_t *rss = json_object_get(status, "replicaStatuses");

    for (const char *const *t = k->types; *t; t++) {
        const json_t *spec = ty_kf_spec(job, k, *t);
        if (!spec)
            continue;
        json_t *rs = json_object_get(rss, *t);
        int64_t succeeded = json_int(rs, "succeeded", 0), running = json_int(rs, "active", 0);
        int64_t failed = json_int(rs, "failed", 0);
        int64_t expected = ty_kf_replicas(spec) - succeeded;
        bool is_chief = strcmp(*t, "Chief") == 0 || strcmp(*t, "Master") == 0;
        if ((chief && is_chief) || (!chief && strcmp(*t, "Worker") == 0)) {
            if (chief && running > 0) {
                TY_AUTOFREE char *m = ty_asprintf("TFJob %s/%s is running.", ns, name);
                set_kind_condition(status, k, "Running", "True", "Running", m, now);
            }
            if (expected == 0 || (!chief && w0 && !all_workers)) {
                TY_AUTOFREE char *m = ty_asprintf("TFJob %s/%s successfully completed.", ns, name);
                set_completion(status, now);
                set_kind_condition(status, k, "Succeeded", "True", "Succeeded", m, now);
            } else if (!chief && running > 0) {
                TY_AUTOFREE char *m = ty_asprintf("TFJob %s/%s is running.", ns, name);
                set_kind_condition(status, k, "Running", "True", "Running", m, now);
            }
        }
        if (failed > 0) {
            if (restarting) {
                set_condition(status, "Restarting", "True", r_reason, r_msg, now);
            } else {
                if (dynamic && strcmp(*t, "Worker") == 0)
                    continue;
                TY_AUTOFREE char *m = ty_asprintf(
                    "TFJob %s/%s has failed because %" PRId64 " %s replica(s) failed.", ns, name,
                    failed, *t);
                if (!condition_true(status, "Failed"))
                    set_completion(status, now);
                set_kind_condition(status, k, "Failed", "True", "Failed", m, now);
            }
        }
    }
}

static bool restart_counted(const char *policy)
{
    return strcmp(policy, "OnFailure") == 0 || strcmp(policy, "Always") == 0 ||
           strcmp(policy, "ExitCode") == 0;
}

/* The operator's PastBackoffLimit: container restarts (init and main) of Running pods whose
 * type restarts them. */
static int64_t inplace_restarts(const json_t *job, const ty_kf_kind *k, const podset *ps)
{
    int64_t n = 0;
    for (size_t i = 0; i < ps->n; i++) {
        const json_t *pod = ps->live[i];
        const char *rt = pod_rtype(job, k, pod);
        if (!rt || !restart_counted(ty_kf_restart_policy(ty_kf_spec(job, k, rt))) ||
            strcmp(pod_phase(pod), "Running") != 0)
            continue;
        const json_t *st = json_object_get(pod, "status");
        const char *lists[] = {"initContainerStatuses", "containerStatuses"};
        for (size_t l = 0; l < 2; l++) {
            size_t j;
            const json_t *cs;
            json_array_foreach(json_object_get(st, lists[l]), j, cs)
                n += json_int(cs, "restartCount", 0);
        }
    }
    return n;
}

static void fail_job(json_t *status, const ty_kf_kind *k, const char *msg, const char *now,
                     const podset *ps, ty_kubeflow_outcome *o, ty_kubeflow_fail_cause cause)
{
    set_completion(status, now);
    clear_creates_and_deletes(o);
    /* The operator deletes every pod and service here, whatever cleanPodPolicy says. */
    for (size_t i = 0; i < ps->n; i++)
        add_delete(o, pod_name(ps->live[i]));
    set_kind_condition(status, k, "Failed", "True", "Failed", msg, now);
    o->fail_cause = cause;
    o->failed = o->finished = true;
    o->restarted = o->gang_restart = false;
}

void ty_kubeflow_fail_job(json_t *job, const char *message, int64_t now_ns)
{
    const ty_kf_kind *k = ty_kf_kind_of(job);
    if (!k)
        return;
    json_t *status = json_object_get(job, "status");
    if (!json_is_object(status)) {
        status = json_object();
        json_object_set_new(job, "status", status);
    }
    char now[40];
    ty_time_format_rfc3339(now_ns, now, sizeof now, 0);
    if (!find_condition(status, "Created")) {
        TY_AUTOFREE char *created = ty_asprintf("%s %s is created.", k->name, ty_kf_name(job));
        set_kind_condition(status, k, "Created", "True", "Created", created, now);
    }
    set_completion(status, now);
    set_kind_condition(status, k, "Failed", "True", "Failed", message, now);
}

/* Appends why the last pod failed to the Failed condition's message (only a cause the runtime
 * explained unless `any`), so the job says what went wrong, not only that it did. */
static void add_failure_cause(json_t *status, const podset *ps, bool any)
{
    json_t *cond = find_condition(status, "Failed");
    char *best = NULL;
    int64_t best_t = -1;
    for (size_t i = 0; cond && i < ps->n; i++) {
        bool detailed;
        int64_t t;
        char *c = ty_kf_failure_cause(ps->live[i], &detailed, &t);
        if (c && (any || detailed) && t > best_t) {
            free(best);
            best = c, best_t = t;
        } else {
            free(c);
        }
    }
    if (!best)
        return;
    const char *msg = ty_kf_str(cond, "message");
    size_t n = strlen(msg);
    bool sentence = n > 0 && msg[n - 1] == '.';
    json_object_set_new(cond, "message",
                        sentence ? json_sprintf("%s Last failure: %s", msg, best)
                                 : json_sprintf("%s; last failure: %s", msg, best));
    free(best);
}

int ty_kubeflow_reconcile(json_t *job, json_t *const *pods, size_t npods, int64_t now_ns,
                          ty_kubeflow_outcome *out, ty_error *err)
{
    *out = (ty_kubeflow_outcome){0};
    const ty_kf_kind *k = ty_kf_kind_of(job);
    if (!k)
        return ty_fail(err, "job %s: kind %s is not a kubeflow job", ty_kf_name(job),
                       ty_kf_str(job, "kind"));
    const char *name = ty_kf_name(job);
    const json_t *specs = ty_kf_specs(job, k);
    if (!json_is_object(specs) || json_object_size(specs) == 0)
        return ty_fail(err, "%s %s: no replica specs", k->name, name);
    if (json_object_get(job, "status") && !json_is_object(json_object_get(job, "status")))
        return ty_fail(err, "%s %s: status is not an object", k->name, name);

    json_t *status = json_object_get(job, "status");
    if (!status) {
        status = json_object();
        json_object_set_new(job, "status", status);
    }
    json_t *before = json_deep_copy(status);
    bool cause_given = false;
    char now[64];
    ty_time_format_rfc3339(now_ns, now, sizeof now, 0);
    const json_t *rp = json_object_get(json_object_get(job, "spec"), "runPolicy");

    /* Only this job's pods, and of those the ones not already going away. */
    podset ps = {ty_calloc(npods + 1, sizeof *ps.live), 0};
    const json_t **terminating = ty_calloc(npods + 1, sizeof *terminating);
    size_t nterm = 0;
    TY_AUTOFREE char *jn = ty_strdup(name);
    for (char *p = jn; *p; p++)
        if (*p == '/')
            *p = '-';
    for (size_t i = 0; i < npods; i++) {
        if (strcmp(ty_kf_str(pod_labels(pods[i]), TY_KUBEFLOW_LABEL_JOB_NAME), jn) != 0)
            continue;
        if (pod_terminating(pods[i]))
            terminating[nterm++] = pods[i];
        else
            ps.live[ps.n++] = pods[i];
    }

    if (!find_condition(status, "Created")) {
        TY_AUTOFREE char *m = ty_asprintf("%s %s is created.", k->name, name);
        set_kind_condition(status, k, "Created", "True", "Created", m, now);
    }

    if (condition_true(status, "Succeeded") || condition_true(status, "Failed")) {
        finished_pass(job, status, &ps, now_ns, out);
        goto done;
    }

    if (json_is_true(json_object_get(rp, "suspend"))) {
        for (size_t i = 0; i < ps.n; i++)
            add_delete(out, pod_name(ps.live[i]));
        const char *key;
        json_t *rs;
        json_object_foreach(json_object_get(status, "replicaStatuses"), key, rs)
            rs_set(rs, "active", 0);
        TY_AUTOFREE char *m = ty_asprintf("%s %s is suspended.", k->name, name);
        if (condition_true(status, "Running"))
            set_kind_condition(status, k, "Running", "False", "Suspended", m, now);
        if (!condition_true(status, "Suspended"))
            set_kind_condition(status, k, "Suspended", "True", "Suspended", m, now);
        out->suspended = true;
        goto done;
    }
    if (condition_true(status, "Suspended")) {
        TY_AUTOFREE char *m = ty_asprintf("%s %s is resumed.", k->name, name);
        set_kind_condition(status, k, "Suspended", "False", "Resumed", m, now);
        json_object_set_new(status, "startTime", json_string(now));
    }

    /* trainyard's rule: a container that can never start fails the job now (see kubeflow.h);
     * its pods stay per cleanPodPolicy, saying why. */
    for (size_t i = 0; i < ps.n; i++) {
        const char *why = ty_kf_config_error(ps.live[i]);
        if (!why)
            continue;
        TY_AUTOFREE char *m = ty_asprintf("%s %s has failed because pod %s can never start: %s",
                                          k->name, name, pod_name(ps.live[i]), why);
        set_completion(status, now);
        set_kind_condition(status, k, "Failed", "True", "Failed", m, now);
        out->fail_cause = TY_KUBEFLOW_FAIL_REPLICAS;
        cause_given = true;
        finished_pass(job, status, &ps, now_ns, out);
        goto done;
    }

    /* Judge every failed pod first: the backoff limit applies to the restarts they ask for,
     * and the back-off runs from when the last of them ended. */
    bool want_restart = false, gang = false, long_run = false;
    int64_t failed_at = 0;
    for (size_t i = 0; i < ps.n; i++) {
        ty_kubeflow_decision d;
        ty_kubeflow_action a = ty_kubeflow_pod_decide(job, ps.live[i], &d);
        if (a == TY_KUBEFLOW_RESTART_POD || a == TY_KUBEFLOW_RESTART_GANG) {
            int64_t ran, t = ty_kf_failed_at(ps.live[i], &ran);
            failed_at = t > failed_at ? t : failed_at;
            long_run |= ran >= ty_kf_backoff_reset_ns();
            want_restart = true;
        }
        gang |= a == TY_KUBEFLOW_RESTART_GANG;
        ty_kubeflow_decision_clear(&d);
    }

    const json_t *limit = json_object_get(rp, "backoffLimit");
    int64_t restarts = restarts_annotation(job);
    if (json_is_integer(limit)) {
        int64_t lim = json_integer_value(limit);
        int64_t inplace = inplace_restarts(job, k, &ps);
        bool past = lim == 0 ? inplace > 0 : inplace >= lim;
        bool exceeds = want_restart && restarts + 1 > lim;
        if (past || exceeds) {
            TY_AUTOFREE char *m = ty_asprintf(
                "Job %s has failed because it has reached the specified backoff limit", name);
            fail_job(status, k, m, now, &ps, out, TY_KUBEFLOW_FAIL_BACKOFF);
            goto done;
        }
    }
    const json_t *deadline = json_object_get(rp, "activeDeadlineSeconds");
    int64_t start;
    if (json_is_integer(deadline) &&
        ty_time_parse_rfc3339(ty_kf_str(status, "startTime"), &start) == 0) {
        int64_t end = ty_time_add_s(start, json_integer_value(deadline));
        if (now_ns >= end) {
            TY_AUTOFREE char *m = ty_asprintf(
                "Job %s has failed because it was active longer than specified deadline", name);
            fail_job(status, k, m, now, &ps, out, TY_KUBEFLOW_FAIL_DEADLINE);
            goto done;
        }
        requeue(out, end - now_ns);
    }
    int64_t streak = long_run ? 0 : count_annotation(job, TY_KUBEFLOW_BACKOFF_ANNOTATION);
    int64_t ready_at = failed_at + ty_kf_restart_delay_ns(streak);
    bool backing_off = want_restart && now_ns < ready_at;
    if (backing_off)
        requeue(out, ready_at - now_ns);

    /* ReconcilePods, per replica type: missing pods, extra pods, failed pods, counts. */
    json_t *rss = json_object();
    json_object_set_new(status, "replicaStatuses", rss);
    for (const char *const *t = k->types; *t; t++) {
        const json_t *spec = ty_kf_spec(job, k, *t);
        if (!spec)
            continue;
        int replicas = ty_kf_replicas(spec);
        json_t *rs = json_object();
        json_object_set_new(rss, *t, rs);
        TY_AUTOFREE char *sel = label_selector(job, k, *t);
        json_object_set_new(rs, "selector", json_string(sel));
        int64_t active = 0, succeeded = 0, failed = 0;

        /* Which indexes have a pod (live or terminating): those need no new one. */
        TY_AUTOFREE bool *have = ty_calloc((size_t)replicas + 1, sizeof *have);
        for (size_t i = 0; i < nterm; i++) {
            const char *rt = pod_rtype(job, k, terminating[i]);
            int idx = pod_index(terminating[i]);
            if (rt && strcmp(rt, *t) == 0 && idx >= 0 && idx < replicas)
                have[idx] = true;
        }
        for (size_t i = 0; i < ps.n; i++) {
            const json_t *pod = ps.live[i];
            const char *rt = pod_rtype(job, k, pod);
            int idx = pod_index(pod);
            if (!rt || strcmp(rt, *t) != 0 || idx < 0)
                continue;
            if (idx >= replicas) {
                add_delete(out, pod_name(pod)); /* scaled down */
            } else {
                have[idx] = true;
            }
            ty_kubeflow_decision d;
            ty_kubeflow_action a = ty_kubeflow_pod_decide(job, pod, &d);
            if (a == TY_KUBEFLOW_RESTART_POD || a == TY_KUBEFLOW_RESTART_GANG) {
                if (!backing_off) { /* else it stays, saying why, until the back-off passed */
                    add_delete(out, pod_name(pod));
                    out->restarted = true;
                }
                set_condition(status, "Restarting", "True", d.reason, d.message, now);
            } else if (a == TY_KUBEFLOW_FAIL_JOB &&
                       strcmp(ty_kf_restart_policy(spec), "ExitCode") == 0) {
                if (!condition_true(status, "Failed")) {
                    set_completion(status, now);
                    out->fail_cause = TY_KUBEFLOW_FAIL_EXIT_CODE;
                }
                set_condition(status, "Failed", "True", d.reason, d.message, now);
            }
            ty_kubeflow_decision_clear(&d);
            const char *ph = pod_phase(pod);
            if (strcmp(ph, "Running") == 0)
                active++;
            else if (strcmp(ph, "Succeeded") == 0)
                succeeded++;
            else if (strcmp(ph, "Failed") == 0)
                failed++;
        }
        for (int i = 0; i < replicas; i++)
            if (!have[i])
                add_create(out, *t, i);
        rs_set(rs, "active", active);
        rs_set(rs, "succeeded", succeeded);
        rs_set(rs, "failed", failed);
    }
    if (gang && backing_off) {
        /* The other ranks cannot go on without the failed ones: they stop now, and the gang
         * starts again together once the back-off has passed. */
        for (size_t i = 0; i < ps.n; i++)
            if (strcmp(pod_phase(ps.live[i]), "Failed") != 0)
                add_delete(out, pod_name(ps.live[i]));
        for (size_t i = 0; i < out->ncreate; i++)
            free(out->create[i].rtype);
        out->ncreate = 0;
    } else if (gang && out->restarted) {
        /* DDP cannot continue without a rank: every pod goes and the gang starts over. */
        for (size_t i = 0; i < ps.n; i++)
            add_delete(out, pod_name(ps.live[i]));
        out->gang_restart = true;
    }

    /* UpdateJobStatus. */
    if (!*ty_kf_str(status, "startTime")) {
        json_object_set_new(status, "startTime", json_string(now));
        if (json_is_integer(deadline))
            requeue(out, ty_time_add_s(0, json_integer_value(deadline)));
    }
    if (k->kind == TY_KUBEFLOW_PYTORCH)
        pytorch_status(job, k, status, now);
    else
        tf_status(job, k, status, &ps, now);

    if (condition_true(status, "Succeeded") || condition_true(status, "Failed")) {
        if (condition_true(status, "Failed") && out->fail_cause == TY_KUBEFLOW_FAIL_NONE)
            out->fail_cause = TY_KUBEFLOW_FAIL_REPLICAS;
        finished_pass(job, status, &ps, now_ns, out);
    } else if (out->restarted) {
        set_count_annotation(job, TY_KUBEFLOW_RESTARTS_ANNOTATION, restarts + 1);
        set_count_annotation(job, TY_KUBEFLOW_BACKOFF_ANNOTATION, streak + 1);
        out->metadata_changed = true;
    }

done:
    if (!cause_given && condition_true(status, "Failed") && !condition_true(before, "Failed") &&
        out->fail_cause != TY_KUBEFLOW_FAIL_DEADLINE)
        add_failure_cause(status, &ps, out->fail_cause == TY_KUBEFLOW_FAIL_BACKOFF);
    out->status_changed = !json_equal(before, status);
    json_decref(before);
    free(ps.live);
    free(terminating);
    return 0;
}
