#include "controllers/experiment.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/katib.h"
#include "api/kinds.h"
#include "api/manifest.h"
#include "api/validate.h"
#include "base/buf.h"
#include "base/log.h"
#include "base/map.h"
#include "base/mem.h"
#include "base/time.h"
#include "controllers/events.h"
#include "controllers/gjson.h"
#include "controllers/queue.h"
#include "controllers/workloads.h"
#include "hpo/medianstop.h"
#include "hpo/metrics.h"
#include "hpo/space.h"
#include "hpo/suggest.h"

#define LABEL_EXPERIMENT "katib.kubeflow.org/experiment"
#define LABEL_TRIAL "katib.kubeflow.org/trial"
/* The trial's place in the experiment's history and the algorithm's mark on it
 * (ty_hpo_trial_tag), so that a rebuilt suggester sees the same history. */
#define ANN_INDEX "katib.trainyard.dev/trial-index"
#define ANN_TAG "katib.trainyard.dev/hpo-tag"
/* While early stopping is on, running trials' logs are read this often. */
#define EARLY_STOP_POLL_MS 500

struct ty_experimentctl {
    ty_store *store;
    ty_queue *queue;
    ty_recorder *events;
    int *watch_ids;
    size_t nwatch;
    ty_experiment_log_path_fn log_path;
    void *log_ctx;
    char *api_url;
    ty_map states; /* "experiments/<ns>/<name>" -> exp_state */
};

/* An experiment's suggester, kept between reconciles (the algorithms' random streams go on
 * from one suggestion to the next); rebuilt from the Trials when the server starts. */
typedef struct exp_state {
    char *uid;
    ty_hpo_space *space;
    ty_hpo_suggester *sugg;
    char **names;   /* per suggester trial id: the Trial's name */
    bool *reported; /* per id: its end told to the suggester */
    size_t n, cap;
} exp_state;

static void state_free(exp_state *st)
{
    if (!st)
        return;
    for (size_t i = 0; i < st->n; i++)
        free(st->names[i]);
    free(st->names);
    free(st->reported);
    ty_hpo_suggester_free(st->sugg);
    ty_hpo_space_free(st->space);
    free(st->uid);
    free(st);
}

static void state_name(exp_state *st, size_t id, const char *name, bool reported)
{
    while (st->cap <= id) {
        size_t cap = st->cap ? st->cap * 2 : 16;
        st->names = ty_realloc(st->names, cap * sizeof *st->names);
        st->reported = ty_realloc(st->reported, cap * sizeof *st->reported);
        memset(st->names + st->cap, 0, (cap - st->cap) * sizeof *st->names);
        memset(st->reported + st->cap, 0, (cap - st->cap) * sizeof *st->reported);
        st->cap = cap;
    }
    free(st->names[id]);
    st->names[id] = ty_strdup(name);
    st->reported[id] = reported;
    if (id >= st->n)
        st->n = id + 1;
}

/* ---------- small helpers ---------- */

static const json_t *at(const json_t *o, const char *path)
{
    const json_t *v = o;
    while (v && *path) {
        const char *dot = strchr(path, '.');
        size_t n = dot ? (size_t)(dot - path) : strlen(path);
        v = json_object_getn(v, path, n);
        path += n + (dot ? 1 : 0);
    }
    return v;
}
static const char *sat(const json_t *o, const char *path)
{
    return json_string_value(at(o, path));
}
static long long iat(const json_t *o, const char *path, long long dflt)
{
    const json_t *v = at(o, path);
    return json_is_integer(v) ? json_integer_value(v) : dflt;
}

static char *now_text(void)
{
    char buf[40];
    return ty_strdup(ty_time_format_rfc3339(ty_time_now_ns(), buf, sizeof buf, 0));
}

static const json_t *condition(const json_t *obj, const char *type)
{
    size_t i;
    json_t *c;
    json_array_foreach(at(obj, "status.conditions"), i, c) if (
        json_is_string(json_object_get(c, "type")) &&
        strcmp(json_string_value(json_object_get(c, "type")), type) == 0) return c;
    return NULL;
}
static bool condition_true(const json_t *obj, const char *type)
{
    const json_t *c = condition(obj, type);
    return c && json_is_string(json_object_get(c, "status")) &&
           strcmp(json_string_value(json_object_get(c, "status")), "True") == 0;
}

/* Katib's setCondition: a condition of that type is replaced (its transition time kept when
 * the status stays), else appended. `status` is the object's status, created if need be. */
static void set_condition(json_t *status, const char *type, const char *st, const char *reason,
                          const char *message)
{
    json_t *conds = json_object_get(status, "conditions");
    if (!json_is_array(conds)) {
        conds = json_array();
        json_object_set_new(status, "conditions", conds);
    }
    TY_AUTOFREE char *now = now_text();
    size_t i;
    json_t *c;
    json_array_foreach(conds, i, c)
    {
        const char *ct = json_string_value(json_object_get(c, "type"));
        if (!ct || strcmp(ct, type) != 0)
            continue;
        const char *old = json_string_value(json_object_get(c, "status"));
        bool changed = !old || strcmp(old, st) != 0;
        json_t *r = json_string(reason), *m = json_string(message);
        bool same = !changed && json_equal(json_object_get(c, "reason"), r) &&
                    json_equal(json_object_get(c, "message"), m);
        json_decref(r);
        json_decref(m);
        if (same)
            return;
        json_object_set_new(c, "status", json_string(st));
        json_object_set_new(c, "reason", json_string(reason));
        json_object_set_new(c, "message", json_string(message));
        json_object_set_new(c, "lastUpdateTime", json_string(now));
        if (changed)
            json_object_set_new(c, "lastTransitionTime", json_string(now));
        return;
    }
    json_array_append_new(conds, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "type", type,
                                           "status", st, "reason", reason, "message", message,
                                           "lastUpdateTime", now, "lastTransitionTime", now));
}

/* Katib's MarkXxx for an ending: Running goes False (its reason kept), the end is True. */
static void mark_end(json_t *status, const char *type, const char *reason, const char *message)
{
    json_t *wrap = json_pack("{s:O}", "status", status);
    const json_t *run = condition(wrap, "Running");
    if (run) {
        TY_AUTOFREE char *r = ty_strdup(json_string_value(json_object_get(run, "reason")));
        TY_AUTOFREE char *m = ty_strdup(json_string_value(json_object_get(run, "message")));
        set_condition(status, "Running", "False", r ? r : "", m ? m : "");
    }
    json_decref(wrap);
    set_condition(status, type, "True", reason, message);
}

static char *read_all(const char *path, size_t *len)
{
    ty_buf b = TY_BUF_INIT;
    if (ty_buf_read_file(&b, path) < 0) {
        ty_buf_free(&b);
        return NULL;
    }
    *len = b.len;
    return b.data ? ty_buf_steal(&b) : ty_strdup("");
}

/* ---------- trials, their state ---------- */

typedef enum trial_state { T_PENDING, T_RUNNING, T_SUCCEEDED, T_FAILED, T_KILLED,
                           T_EARLY_STOPPED, T_METRICS_UNAVAILABLE } trial_state;

static trial_state state_of(const json_t *trial)
{
    if (condition_true(trial, "EarlyStopped"))
        return T_EARLY_STOPPED;
    if (condition_true(trial, "MetricsUnavailable"))
        return T_METRICS_UNAVAILABLE;
    if (condition_true(trial, "Succeeded"))
        return T_SUCCEEDED;
    if (condition_true(trial, "Failed"))
        return T_FAILED;
    if (condition_true(trial, "Killed"))
        return T_KILLED;
    if (condition_true(trial, "Running"))
        return T_RUNNING;
    return T_PENDING;
}
static bool ended(trial_state s)
{
    return s != T_PENDING && s != T_RUNNING;
}

static const char *job_resource(const char *kind)
{
    return strcmp(kind, "PyTorchJob") == 0 ? "pytorchjobs"
           : strcmp(kind, "TFJob") == 0    ? "tfjobs"
                                           : "jobs";
}

/* The metric names: the objective first, then the additional ones. */
static size_t metric_names(const json_t *objective, const char **out, size_t cap)
{
    size_t n = 0, i;
    json_t *a;
    const char *om = sat(objective, "objectiveMetricName");
    if (om && n < cap)
        out[n++] = om;
    json_array_foreach(json_object_get(objective, "additionalMetricNames"), i, a) if (
        json_is_string(a) && n < cap) out[n++] = json_string_value(a);
    return n;
}

/* status.observation from the log: per metric min, max and latest (strings, as Katib). */
static json_t *observation_of(const json_t *log, const json_t *objective)
{
    const char *names[32];
    size_t n = metric_names(objective, names, 32);
    json_t *metrics = json_array();
    for (size_t k = 0; k < n; k++) {
        bool any = false;
        double mn = 0, mx = 0;
        const char *latest = NULL, *smin = NULL, *smax = NULL;
        size_t i;
        json_t *e;
        json_array_foreach(log, i, e)
        {
            if (!json_is_string(json_object_get(e, "name")) ||
                strcmp(json_string_value(json_object_get(e, "name")), names[k]) != 0)
                continue;
            const char *v = sat(e, "value");
            if (!v)
                continue;
            latest = v;
            char *end;
            double d = strtod(v, &end);
            if (end == v || *end)
                continue;
            if (!any || d < mn)
                mn = d, smin = v;
            if (!any || d > mx)
                mx = d, smax = v;
            any = true;
        }
        if (!latest)
            continue;
        json_array_append_new(
            metrics, json_pack("{s:s, s:s, s:s, s:s}", "name", names[k], "min",
                               smin ? smin : TY_HPO_UNAVAILABLE, "max",
                               smax ? smax : TY_HPO_UNAVAILABLE, "latest", latest));
    }
    return json_pack("{s:o}", "metrics", metrics);
}

/* The objective's value for the algorithm: by its metric strategy (min, max, latest). */
static bool objective_value(const json_t *trial, const json_t *objective, double *out)
{
    const char *om = sat(objective, "objectiveMetricName");
    const char *type = sat(objective, "type");
    const char *strategy = type && strcmp(type, "maximize") == 0 ? "max" : "min";
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(objective, "metricStrategies"), i, s) if (
        om && json_is_string(json_object_get(s, "name")) &&
        strcmp(json_string_value(json_object_get(s, "name")), om) == 0 &&
        json_is_string(json_object_get(s, "value"))) strategy =
        json_string_value(json_object_get(s, "value"));
    json_t *m;
    json_array_foreach(at(trial, "status.observation.metrics"), i, m)
    {
        if (!om || !json_is_string(json_object_get(m, "name")) ||
            strcmp(json_string_value(json_object_get(m, "name")), om) != 0)
            continue;
        const char *v = sat(m, strategy);
        if (v && strcmp(v, TY_HPO_UNAVAILABLE) == 0)
            v = sat(m, "latest");
        char *end;
        if (!v)
            return false;
        *out = strtod(v, &end);
        return end != v && !*end && isfinite(*out);
    }
    return false;
}

/* The objective's values in report order (medianstop's input). */
static size_t objective_log(const json_t *log, const char *om, double **out)
{
    size_t n = 0, i;
    json_t *e;
    *out = ty_calloc(json_array_size(log) + 1, sizeof **out);
    json_array_foreach(log, i, e)
    {
        const char *name = sat(e, "name"), *v = sat(e, "value");
        char *end;
        if (!name || !v || strcmp(name, om) != 0)
            continue;
        double d = strtod(v, &end);
        if (end != v && !*end)
            (*out)[n++] = d;
    }
    return n;
}

/* ---------- metrics collection ---------- */

/* The pod of a trial's job whose primary container reports: labelled as primaryPodLabels
 * says (training jobs: the master), the first such by name. */
static json_t *primary_pod(ty_experimentctl *c, const json_t *job, const json_t *trial)
{
    json_t *pods = ty_store_list_owned(c->store, "pods", ty_obj_uid(job));
    const json_t *want = at(trial, "spec.primaryPodLabels");
    json_t *found = NULL;
    size_t i;
    json_t *p;
    json_array_foreach(pods, i, p)
    {
        bool ok = true;
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)want, k, v) ok &=
            json_equal(at(p, "metadata.labels") ? json_object_get(at(p, "metadata.labels"), k)
                                                : NULL,
                       v);
        /* a training job without a master (TFJob of workers): worker 0 reports */
        if (ok) {
            found = json_incref(p);
            break;
        }
    }
    if (!found && json_array_size(pods))
        found = json_incref(json_array_get(pods, 0));
    json_decref(pods);
    return found;
}

static const char *primary_container(const json_t *trial, const json_t *pod)
{
    const char *n = sat(trial, "spec.primaryContainerName");
    if (n && *n)
        return n;
    return sat(json_array_get(at(pod, "spec.containers"), 0), "name");
}

/* The CRI log's lines ("<time> stdout F <text>") as "<time> <text>", which is what Katib's
 * StdOut collector reads when the trial prints times, and lets it timestamp the rest. */
static void strip_cri(const char *text, size_t len, ty_buf *out)
{
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        const char *s1 = memchr(p, ' ', (size_t)(le - p));
        const char *s2 = s1 ? memchr(s1 + 1, ' ', (size_t)(le - s1 - 1)) : NULL;
        const char *s3 = s2 ? memchr(s2 + 1, ' ', (size_t)(le - s2 - 1)) : NULL;
        if (s3 && s1 && strncmp(s1 + 1, "stdout", 6) == 0) {
            ty_buf_add(out, p, (size_t)(s1 - p));
            ty_buf_add(out, s3, (size_t)(le - s3));
            ty_buf_addc(out, '\n');
        }
        p = le + 1;
    }
}

static void obs_to_json(const ty_hpo_obs *obs, json_t *log)
{
    for (size_t i = 0; i < obs->n; i++)
        json_array_append_new(log, json_pack("{s:s, s:s, s:s}", "timeStamp",
                                             obs->logs[i].timestamp, "name", obs->logs[i].name,
                                             "value", obs->logs[i].value));
}

static void substitute(ty_buf *out, const char *text, const char *const *keys,
                       const char *const *values, size_t n);

/* What the trial reported so far, as an observation log (JSON array of {timeStamp, name,
 * value}): StdOut and File read now from the pod, Push is what is stored already. */
static json_t *collect(ty_experimentctl *c, const json_t *exp, const json_t *trial,
                       const json_t *job, bool final)
{
    const json_t *mc = at(exp, "spec.metricsCollectorSpec");
    const char *kind = sat(mc, "collector.kind");
    json_t *stored = json_object_get(at(trial, "status"), "observationLog");
    if (!kind || strcmp(kind, "Push") == 0 || strcmp(kind, "None") == 0 || !job)
        return json_is_array(stored) ? json_deep_copy(stored) : json_array();
    json_t *pod = primary_pod(c, job, trial);
    if (!pod)
        return json_is_array(stored) ? json_deep_copy(stored) : json_array();
    const json_t *objective = at(exp, "spec.objective");
    const char *names[32];
    size_t nn = metric_names(objective, names, 32);
    const char *formats[16];
    size_t nf = 0, i;
    json_t *f;
    json_array_foreach(at(mc, "source.filter.metricsFormat"), i, f) if (json_is_string(f) &&
                                                                       nf < 16) formats[nf++] =
        json_string_value(f);
    ty_hpo_obs obs = {0};
    ty_error err = TY_ERROR_INIT;
    TY_AUTOFREE char *path = NULL;
    bool file = strcmp(kind, "File") == 0;
    if (file) {
        /* Read on this machine, where a host process pod writes it. Trials share the
         * machine's filesystem, so "${trialSpec.Name}" in the path is the trial's name
         * (trainyard's addition: Katib's trials each have a filesystem of their own). */
        const char *fp = sat(mc, "source.fileSystemPath.path");
        ty_buf pb = TY_BUF_INIT;
        const char *keys[] = {"trialSpec.Name"}, *vals[] = {ty_obj_name(trial)};
        substitute(&pb, fp ? fp : "", keys, vals, 1);
        path = pb.data ? ty_buf_steal(&pb) : ty_strdup("");
    } else if (c->log_path) {
        path = c->log_path(c->log_ctx, pod, primary_container(trial, pod), false);
    }
    size_t len = 0;
    TY_AUTOFREE char *text = path ? read_all(path, &len) : NULL;
    if (text) {
        const char *fmt = sat(mc, "source.fileSystemPath.format");
        if (file && fmt && strcmp(fmt, "JSON") == 0) {
            if (ty_hpo_collect_json_lines(text, len, names, nn, &obs, &err) < 0)
                ty_log(TY_LOG_WARN, "trial %s: %s: %s", ty_obj_name(trial), path, err.msg);
        } else {
            ty_hpo_filters *filters = NULL;
            if (ty_hpo_filters_new(formats, nf, &filters, &err) == 0) {
                ty_buf lines = TY_BUF_INIT;
                if (file)
                    ty_buf_add(&lines, text, len);
                else
                    strip_cri(text, len, &lines);
                ty_hpo_collect_text(filters, lines.data ? lines.data : "", lines.len, names, nn,
                                    &obs);
                ty_buf_free(&lines);
            }
            ty_hpo_filters_free(filters);
        }
    }
    ty_error_clear(&err);
    if (final && names[0])
        ty_hpo_obs_finish(&obs, names[0]);
    json_t *log = json_array();
    obs_to_json(&obs, log);
    ty_hpo_obs_free(&obs);
    json_decref(pod);
    return log;
}

/* ---------- the trial template ---------- */

/* Replaces every "${name}" in text by its value (JSON-escaped, the text being JSON). */
static void substitute(ty_buf *out, const char *text, const char *const *keys,
                       const char *const *values, size_t n)
{
    const char *p = text;
    while (*p) {
        const char *d = strstr(p, "${");
        if (!d) {
            ty_buf_adds(out, p);
            break;
        }
        ty_buf_add(out, p, (size_t)(d - p));
        const char *e = strchr(d, '}');
        bool done = false;
        for (size_t i = 0; e && i < n && !done; i++) {
            if (strlen(keys[i]) == (size_t)(e - d - 2) && strncmp(d + 2, keys[i], e - d - 2) == 0) {
                json_t *s = json_string(values[i]);
                char *q = json_dumps(s, JSON_ENCODE_ANY);
                ty_buf_add(out, q + 1, strlen(q) - 2);
                free(q);
                json_decref(s);
                done = true;
            }
        }
        if (done)
            p = e + 1;
        else {
            ty_buf_add(out, d, 2);
            p = d + 2;
        }
    }
}

/* The template held by a ConfigMap (trialTemplate.configMap: its templatePath key, YAML). */
static json_t *configmap_template(ty_experimentctl *c, const json_t *exp, ty_error *err)
{
    const json_t *cm = at(exp, "spec.trialTemplate.configMap");
    const char *name = sat(cm, "configMapName"), *key = sat(cm, "templatePath");
    const char *ns = sat(cm, "configMapNamespace");
    if (!ns || !*ns)
        ns = ty_obj_namespace(exp);
    json_t *obj = ty_store_get(c->store, "configmaps", ns, name ? name : "");
    if (!obj)
        return ty_fail(err, "ConfigMap %s/%s not found", ns, name ? name : ""), NULL;
    const char *text = json_string_value(json_object_get(at(obj, "data"), key ? key : ""));
    if (!text) {
        ty_fail(err, "ConfigMap %s/%s has no key %s", ns, name, key ? key : "");
        json_decref(obj);
        return NULL;
    }
    ty_manifest *m = NULL;
    TY_AUTOFREE char *file = ty_asprintf("configmap %s/%s[%s]", ns, name, key);
    json_t *out = NULL;
    if (ty_manifest_parse(file, text, strlen(text), &m, err) == 0) {
        if (m->ndocs == 1)
            out = json_incref(m->docs[0].obj);
        else
            ty_fail(err, "%s: one trial template expected, found %zu documents", file, m->ndocs);
    }
    ty_manifest_free(m);
    json_decref(obj);
    return out;
}

/* KATIB_TRIAL_NAME and kin in every container of every pod template in the job (a Job's
 * template, each replica's of a training job), as Katib's pod webhook injects them. */
static void add_env(json_t *v, const char *const *kv, size_t n)
{
    if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) add_env(e, kv, n);
        return;
    }
    if (!json_is_object(v))
        return;
    json_t *cts = json_object_get(v, "containers");
    if (json_is_array(cts)) {
        size_t i;
        json_t *ct;
        json_array_foreach(cts, i, ct)
        {
            json_t *env = json_object_get(ct, "env");
            if (!json_is_array(env)) {
                env = json_array();
                json_object_set_new(ct, "env", env);
            }
            for (size_t k = 0; k + 1 < n; k += 2)
                json_array_append_new(env, json_pack("{s:s, s:s}", "name", kv[k], "value",
                                                     kv[k + 1]));
        }
        return;
    }
    const char *key;
    json_t *child;
    json_object_foreach(v, key, child) add_env(child, kv, n);
}

/* The trial's job: the template with its parameters, named and owned as Katib makes it. */
static json_t *trial_job(ty_experimentctl *c, const json_t *exp, const char *trial_name,
                         const json_t *assignments, ty_error *err)
{
    const json_t *ts = at(exp, "spec.trialTemplate.trialSpec");
    json_t *tmpl = json_is_object(ts) ? json_deep_copy(ts) : configmap_template(c, exp, err);
    if (!tmpl)
        return NULL;
    const json_t *tps = at(exp, "spec.trialTemplate.trialParameters");
    size_t n = json_array_size(tps) + 4;
    const char **keys = ty_calloc(n, sizeof *keys);
    const char **values = ty_calloc(n, sizeof *values);
    char **owned = ty_calloc(n, sizeof *owned);
    size_t k = 0, i;
    json_t *tp;
    json_array_foreach(tps, i, tp)
    {
        const char *name = sat(tp, "name"), *ref = sat(tp, "reference");
        if (!name || !ref)
            continue;
        const char *value = NULL;
        size_t j;
        json_t *a;
        json_array_foreach(assignments, j, a) if (sat(a, "name") &&
                                                  strcmp(sat(a, "name"), ref) == 0) value =
            sat(a, "value");
        if (strcmp(ref, "${trialSpec.Name}") == 0)
            value = trial_name;
        else if (strcmp(ref, "${trialSpec.Namespace}") == 0)
            value = ty_obj_namespace(exp);
        else if (strcmp(ref, "${trialSpec.Kind}") == 0)
            value = ty_katib_job_kind(tmpl);
        else if (strcmp(ref, "${trialSpec.APIVersion}") == 0)
            value = sat(tmpl, "apiVersion");
        if (!value)
            continue;
        owned[k] = ty_asprintf("trialParameters.%s", name);
        keys[k] = owned[k];
        values[k++] = value;
    }
    TY_AUTOFREE char *text = json_dumps(tmpl, JSON_COMPACT);
    ty_buf b = TY_BUF_INIT;
    substitute(&b, text, keys, values, k);
    json_error_t je;
    json_t *job = json_loads(b.data ? b.data : "{}", 0, &je);
    ty_buf_free(&b);
    for (size_t q = 0; q < k; q++)
        free(owned[q]);
    free(owned);
    free(keys);
    free(values);
    json_decref(tmpl);
    if (!job) {
        ty_fail(err, "trial template: %s", je.text);
        return NULL;
    }
    json_t *meta = json_object_get(job, "metadata");
    if (!json_is_object(meta)) {
        meta = json_object();
        json_object_set_new(job, "metadata", meta);
    }
    json_object_set_new(meta, "name", json_string(trial_name));
    json_object_set_new(meta, "namespace", json_string(ty_obj_namespace(exp)));
    json_t *labels = json_object_get(meta, "labels");
    if (!json_is_object(labels)) {
        labels = json_object();
        json_object_set_new(meta, "labels", labels);
    }
    json_object_set_new(labels, LABEL_EXPERIMENT, json_string(ty_obj_name(exp)));
    json_object_set_new(labels, LABEL_TRIAL, json_string(trial_name));
    TY_AUTOFREE char *url =
        c->api_url ? ty_asprintf("%s/apis/%s/namespaces/%s/trials/%s/metrics", c->api_url,
                                 TY_KATIB_API_VERSION, ty_obj_namespace(exp), trial_name)
                   : NULL;
    const char *kv[] = {"KATIB_TRIAL_NAME", trial_name, "KATIB_TRIAL_NAMESPACE",
                        ty_obj_namespace(exp), "TRAINYARD_METRICS_URL", url};
    add_env(json_object_get(job, "spec"), kv, url ? 6 : 4);
    return job;
}

/* ---------- the reconcile ---------- */

typedef struct trial_ref {
    json_t *obj;
    long index;
    trial_state state;
} trial_ref;

static int by_index(const void *a, const void *b)
{
    const trial_ref *x = a, *y = b;
    return (x->index > y->index) - (x->index < y->index);
}

static size_t settings_of(const json_t *algo, ty_hpo_setting *out, size_t cap)
{
    size_t n = 0, i;
    json_t *s;
    json_array_foreach(json_object_get(algo, "algorithmSettings"), i, s)
    {
        const char *name = sat(s, "name"), *value = sat(s, "value");
        if (name && n < cap)
            out[n++] = (ty_hpo_setting){name, value ? value : ""};
    }
    return n;
}

static json_t *owner_ref(const json_t *owner, const char *kind)
{
    return json_pack("[{s:s, s:s, s:s, s:s, s:b, s:b}]", "apiVersion", TY_KATIB_API_VERSION,
                     "kind", kind, "name", ty_obj_name(owner), "uid", ty_obj_uid(owner),
                     "controller", 1, "blockOwnerDeletion", 1);
}

/* The trial's end: status conditions, observation; the job goes unless retained. */
static void end_trial(json_t *status, const char *type, const char *reason, const char *message)
{
    mark_end(status, type, reason, message);
    TY_AUTOFREE char *now = now_text();
    json_object_set_new(status, "completionTime", json_string(now));
}

static void delete_job(ty_experimentctl *c, const json_t *trial, const char *kind)
{
    ty_error err = TY_ERROR_INIT;
    if (ty_store_delete(c->store, job_resource(kind), ty_obj_namespace(trial),
                        ty_obj_name(trial), 0, &err) < 0 &&
        err.code != TY_STORE_NOT_FOUND)
        ty_log(TY_LOG_WARN, "trial %s: delete job: %s", ty_obj_name(trial), err.msg);
    ty_error_clear(&err);
}

/* Reconciles one running or pending trial against its job; returns its (new) state. */
static trial_state reconcile_trial(ty_experimentctl *c, const json_t *exp, json_t *trial,
                                   const ty_hpo_medianstop *ms, double rule, bool have_rule,
                                   bool *requeue)
{
    trial_state st = state_of(trial);
    if (ended(st))
        return st;
    const json_t *run = at(trial, "spec.runSpec");
    const char *kind = ty_katib_job_kind(run);
    const char *res = job_resource(kind);
    json_t *status = json_is_object(at(trial, "status")) ? json_deep_copy(at(trial, "status"))
                                                         : json_object();
    json_t *job = ty_store_get(c->store, res, ty_obj_namespace(trial), ty_obj_name(trial));
    ty_error err = TY_ERROR_INIT;
    if (!job) {
        json_t *nj = json_deep_copy(run);
        json_object_set_new(json_object_get(nj, "metadata"), "ownerReferences",
                            owner_ref(trial, "Trial"));
        ty_field_errors fe = {0};
        /* as the API server would: the kind's defaults and rules, then Kueue's webhook (a
         * job for a LocalQueue is created suspended until admitted) */
        bool valid = ty_api_admit(NULL, nj, &fe) == 0;
        if (!valid) {
            ty_buf msg = TY_BUF_INIT;
            ty_field_errors_format(&fe, "trial template", &msg);
            end_trial(status, "Failed", "TrialFailed", msg.data ? msg.data : "invalid job");
            ty_buf_free(&msg);
            st = T_FAILED;
        } else {
            ty_workloads_default_job(c->store, res, nj);
            if (ty_store_create(c->store, res, nj, &job, &err) < 0) {
                ty_log(TY_LOG_WARN, "trial %s: create job: %s", ty_obj_name(trial), err.msg);
                *requeue = true;
            } else {
                ty_event(c->events, trial, "Normal", "JobCreated", "Job %s has been created",
                         ty_obj_name(trial));
            }
        }
        ty_field_errors_free(&fe);
        json_decref(nj);
    }
    if (job && st != T_FAILED) {
        const char *sc = sat(trial, "spec.successCondition");
        const char *fc = sat(trial, "spec.failureCondition");
        if (!sc)
            sc = ty_katib_default_condition(kind, true);
        if (!fc)
            fc = ty_katib_default_condition(kind, false);
        if (!condition(trial, "Running")) {
            TY_AUTOFREE char *now = now_text();
            json_object_set_new(status, "startTime", json_string(now));
            set_condition(status, "Running", "True", "TrialRunning", "Trial is running");
        }
        const char *om = sat(exp, "spec.objective.objectiveMetricName");
        bool maximize = sat(exp, "spec.objective.type") &&
                        strcmp(sat(exp, "spec.objective.type"), "maximize") == 0;
        if (ty_gjson_condition(job, fc)) {
            json_t *log = collect(c, exp, trial, job, false);
            json_object_set(status, "observationLog", log);
            json_object_set_new(status, "observation",
                                observation_of(log, at(exp, "spec.objective")));
            json_decref(log);
            end_trial(status, "Failed", "TrialFailed", "Trial has failed");
            st = T_FAILED;
        } else if (ty_gjson_condition(job, sc)) {
            json_t *log = collect(c, exp, trial, job, true);
            json_object_set(status, "observationLog", log);
            json_object_set_new(status, "observation",
                                observation_of(log, at(exp, "spec.objective")));
            json_decref(log);
            json_t *wrap = json_pack("{s:O}", "status", status);
            double v;
            bool have = objective_value(wrap, at(exp, "spec.objective"), &v);
            json_decref(wrap);
            if (have) {
                end_trial(status, "Succeeded", "TrialSucceeded", "Trial has succeeded");
                st = T_SUCCEEDED;
            } else {
                end_trial(status, "MetricsUnavailable", "TrialMetricsUnavailable",
                          "Metrics are not available");
                st = T_METRICS_UNAVAILABLE;
            }
        } else {
            st = T_RUNNING;
            const char *ck = sat(exp, "spec.metricsCollectorSpec.collector.kind");
            bool push = ck && strcmp(ck, "Push") == 0;
            if (ms && om) {
                json_t *log = collect(c, exp, trial, job, false);
                if (!push) {
                    json_object_set(status, "observationLog", log);
                    json_object_set_new(status, "observation",
                                        observation_of(log, at(exp, "spec.objective")));
                }
                double *vals;
                size_t nv = objective_log(log, om, &vals);
                /* Katib's collector decides at the start_step-th report; a poll may come
                 * later, so it looks at the log as it was then */
                size_t upto = nv > (size_t)ms->start_step ? (size_t)ms->start_step : nv;
                if (have_rule && ty_hpo_medianstop_should_stop(ms, rule, maximize, vals, upto)) {
                    end_trial(status, "EarlyStopped", "TrialEarlyStopped",
                              "Trial is early stopped");
                    st = T_EARLY_STOPPED;
                } else {
                    *requeue = true;
                }
                free(vals);
                json_decref(log);
            }
        }
        if (ended(st) && !json_is_true(at(trial, "spec.retainRun")))
            delete_job(c, trial, kind);
        else if (st == T_EARLY_STOPPED)
            delete_job(c, trial, kind);
    }
    if (!json_equal(status, at(trial, "status"))) {
        json_t *next = json_copy(trial);
        json_object_set(next, "status", status);
        if (ty_store_update_status(c->store, "trials", next, NULL, &err) < 0) {
            ty_log(TY_LOG_WARN, "trial %s: write status: %s", ty_obj_name(trial), err.msg);
            *requeue = true;
        } else {
            json_object_set(trial, "status", status);
        }
        json_decref(next);
    }
    ty_error_clear(&err);
    json_decref(status);
    json_decref(job);
    return st;
}

static json_t *assignments_of(const ty_hpo_space *space, const double *x)
{
    json_t *a = json_array();
    for (size_t i = 0; i < space->n; i++) {
        TY_AUTOFREE char *v = ty_hpo_value_string(&space->params[i], x[i]);
        json_array_append_new(a, json_pack("{s:s, s:s}", "name", space->params[i].name, "value", v));
    }
    return a;
}

/* A point from a trial's parameterAssignments; false when one does not fit the space. */
static bool point_of(const ty_hpo_space *space, const json_t *trial, double *x)
{
    for (size_t i = 0; i < space->n; i++) {
        const ty_hpo_param *p = &space->params[i];
        const char *v = NULL;
        size_t j;
        json_t *a;
        json_array_foreach(at(trial, "spec.parameterAssignments"), j, a) if (
            sat(a, "name") && strcmp(sat(a, "name"), p->name) == 0) v = sat(a, "value");
        if (!v)
            return false;
        if (p->type == TY_HPO_CATEGORICAL || p->type == TY_HPO_DISCRETE) {
            bool found = false;
            for (size_t k = 0; k < p->n_list && !found; k++)
                if (strcmp(p->list[k], v) == 0)
                    x[i] = (double)k, found = true;
            if (!found)
                return false;
        } else {
            char *end;
            x[i] = strtod(v, &end);
            if (end == v || *end)
                return false;
        }
    }
    return true;
}

static void set_names(json_t *status, const char *key, json_t *names)
{
    if (json_array_size(names))
        json_object_set(status, key, names);
    else
        json_object_del(status, key);
    json_decref(names);
}

static int reconcile(void *ctx, const char *key, ty_error *fail)
{
    ty_experimentctl *c = ctx;
    char ns[256], name[256];
    if (sscanf(key, "experiments/%255[^/]/%255s", ns, name) != 2)
        return 0;
    json_t *exp = ty_store_get(c->store, "experiments", ns, name);
    if (!exp || ty_obj_deleting(exp)) {
        state_free(ty_map_dels(&c->states, key));
        json_decref(exp);
        return 0;
    }
    int rc = 0;
    bool requeue = false;
    ty_error err = TY_ERROR_INIT;
    json_t *status = json_is_object(at(exp, "status")) ? json_deep_copy(at(exp, "status"))
                                                       : json_object();
    const json_t *spec = at(exp, "spec");
    const json_t *objective = at(exp, "spec.objective");
    bool maximize = sat(objective, "type") && strcmp(sat(objective, "type"), "maximize") == 0;
    bool completed = condition_true(exp, "Succeeded") || condition_true(exp, "Failed");
    if (!condition(exp, "Created")) {
        TY_AUTOFREE char *now = now_text();
        json_object_set_new(status, "startTime", json_string(now));
        set_condition(status, "Created", "True", "ExperimentCreated", "Experiment is created");
    }

    /* the search space and the algorithm (validated at admission) */
    ty_hpo_medianstop ms_v, *ms = NULL;
    trial_ref *trials = NULL;
    size_t nt = 0;
    json_t *owned = NULL;
    double *x = NULL;
    exp_state *es = ty_map_gets(&c->states, key);
    bool fresh = false;
    if (es && strcmp(es->uid, ty_obj_uid(exp)) != 0) {
        state_free(ty_map_dels(&c->states, key));
        es = NULL;
    }
    if (!es && !completed) {
        es = TY_NEW(exp_state);
        es->uid = ty_strdup(ty_obj_uid(exp));
        ty_hpo_setting settings[64];
        size_t nset = settings_of(at(spec, "algorithm"), settings, 64);
        ty_hpo_options opt = {.maximize = maximize,
                              .parallel_trial_count = (int)iat(spec, "parallelTrialCount", 3),
                              .max_trial_count = (int)iat(spec, "maxTrialCount", 0)};
        const char *algo = sat(spec, "algorithm.algorithmName");
        if (ty_hpo_space_parse(at(spec, "parameters"), &es->space, &err) < 0 ||
            ty_hpo_suggester_new(es->space, algo ? algo : "", settings, nset, &opt, &es->sugg,
                                 &err) < 0) {
            state_free(es);
            mark_end(status, "Failed", "ExperimentFailed", err.msg);
            goto write;
        }
        ty_map_puts(&c->states, key, es);
        fresh = true;
    }
    ty_hpo_space *space = es ? es->space : NULL;
    ty_hpo_suggester *sugg = es ? es->sugg : NULL;
    if (json_is_object(at(spec, "earlyStopping"))) {
        ty_hpo_setting ess[16];
        size_t nes = settings_of(at(spec, "earlyStopping"), ess, 16);
        const char *en = sat(spec, "earlyStopping.algorithmName");
        if (ty_hpo_medianstop_parse(en ? en : "", ess, nes, &ms_v, &err) == 0)
            ms = &ms_v;
        ty_error_clear(&err);
    }

    /* the trials, in the order they were made */
    owned = ty_store_list_owned(c->store, "trials", ty_obj_uid(exp));
    trials = ty_calloc(json_array_size(owned) + 1, sizeof *trials);
    size_t i;
    json_t *t;
    json_array_foreach(owned, i, t)
    {
        const char *ix = json_string_value(
            json_object_get(at(t, "metadata.annotations"), ANN_INDEX));
        trials[nt++] = (trial_ref){json_deep_copy(t), ix ? atol(ix) : (long)i, state_of(t)};
    }
    qsort(trials, nt, sizeof *trials, by_index);

    /* medianstop's rule, from the succeeded trials' logs */
    double rule = 0;
    bool have_rule = false;
    const char *om = sat(objective, "objectiveMetricName");
    if (ms && om) {
        double **logs = ty_calloc(nt + 1, sizeof *logs);
        size_t *lens = ty_calloc(nt + 1, sizeof *lens);
        size_t nl = 0;
        for (size_t k = 0; k < nt; k++)
            if (trials[k].state == T_SUCCEEDED) {
                lens[nl] = objective_log(at(trials[k].obj, "status.observationLog"), om,
                                         &logs[nl]);
                nl++;
            }
        have_rule = ty_hpo_medianstop_rule(ms, (const double *const *)logs, lens, nl, &rule);
        for (size_t k = 0; k < nl; k++)
            free(logs[k]);
        free(logs);
        free(lens);
    }

    /* each unfinished trial against its job */
    for (size_t k = 0; k < nt; k++)
        if (!completed)
            trials[k].state = reconcile_trial(c, exp, trials[k].obj, ms, rule, have_rule, &requeue);

    /* the history, for the algorithm: all of it when rebuilt, else the ends since */
    x = space ? ty_calloc(space->n + 1, sizeof *x) : NULL;
    for (size_t k = 0; k < nt && es; k++) {
        double v = 0;
        bool have = objective_value(trials[k].obj, objective, &v);
        ty_hpo_trial_state hs = trials[k].state == T_SUCCEEDED ? TY_HPO_COMPLETED
                                : trials[k].state == T_EARLY_STOPPED && have
                                    ? TY_HPO_EARLY_STOPPED
                                : ended(trials[k].state) ? TY_HPO_FAILED
                                                         : TY_HPO_RUNNING;
        const char *tname = ty_obj_name(trials[k].obj);
        if (fresh) {
            if (!point_of(space, trials[k].obj, x))
                continue;
            const char *tag = json_string_value(
                json_object_get(at(trials[k].obj, "metadata.annotations"), ANN_TAG));
            long id = ty_hpo_add_tagged_trial(sugg, x, hs, have ? v : 0, tag ? atoi(tag) : -1,
                                              &err);
            if (id < 0) {
                ty_log(TY_LOG_WARN, "experiment %s/%s: trial %s: %s", ns, name, tname, err.msg);
                ty_error_clear(&err);
                continue;
            }
            state_name(es, (size_t)id, tname, ended(trials[k].state));
            continue;
        }
        if (!ended(trials[k].state))
            continue;
        for (size_t id = 0; id < es->n; id++) {
            if (!es->names[id] || strcmp(es->names[id], tname) != 0 || es->reported[id])
                continue;
            if (ty_hpo_report(sugg, id, hs, have ? v : 0, &err) < 0) {
                ty_log(TY_LOG_WARN, "experiment %s/%s: trial %s: %s", ns, name, tname, err.msg);
                ty_error_clear(&err);
            }
            es->reported[id] = true;
        }
    }

    if (fresh)
        ty_hpo_suggester_resume(sugg);

    /* counts, lists and the best trial, as Katib's status */
    long n_succ = 0, n_fail = 0, n_run = 0, n_pend = 0, n_kill = 0, n_es = 0, n_mu = 0;
    json_t *l_succ = json_array(), *l_fail = json_array(), *l_run = json_array(),
           *l_pend = json_array(), *l_kill = json_array(), *l_es = json_array(),
           *l_mu = json_array();
    const json_t *best = NULL;
    double best_v = 0;
    for (size_t k = 0; k < nt; k++) {
        json_t *nm = json_string(ty_obj_name(trials[k].obj));
        switch (trials[k].state) {
        case T_SUCCEEDED: n_succ++, json_array_append(l_succ, nm); break;
        case T_FAILED: n_fail++, json_array_append(l_fail, nm); break;
        case T_RUNNING: n_run++, json_array_append(l_run, nm); break;
        case T_PENDING: n_pend++, json_array_append(l_pend, nm); break;
        case T_KILLED: n_kill++, json_array_append(l_kill, nm); break;
        case T_EARLY_STOPPED: n_es++, json_array_append(l_es, nm); break;
        case T_METRICS_UNAVAILABLE: n_mu++, json_array_append(l_mu, nm); break;
        }
        json_decref(nm);
        /* Katib's best trial: any trial whose objective value is known (its strategy's
         * value), the first of equals */
        double v;
        if (objective_value(trials[k].obj, objective, &v) &&
            (!best || (maximize ? v > best_v : v < best_v)))
            best = trials[k].obj, best_v = v;
    }
    json_object_set_new(status, "trials", json_integer((json_int_t)nt));
    json_object_set_new(status, "trialsSucceeded", json_integer(n_succ));
    json_object_set_new(status, "trialsFailed", json_integer(n_fail));
    json_object_set_new(status, "trialsRunning", json_integer(n_run));
    json_object_set_new(status, "trialsPending", json_integer(n_pend));
    json_object_set_new(status, "trialsKilled", json_integer(n_kill));
    json_object_set_new(status, "trialsEarlyStopped", json_integer(n_es));
    json_object_set_new(status, "trialMetricsUnavailable", json_integer(n_mu));
    set_names(status, "succeededTrialList", l_succ);
    set_names(status, "failedTrialList", l_fail);
    set_names(status, "runningTrialList", l_run);
    set_names(status, "pendingTrialList", l_pend);
    set_names(status, "killedTrialList", l_kill);
    set_names(status, "earlyStoppedTrialList", l_es);
    set_names(status, "metricsUnavailableTrialList", l_mu);
    if (best)
        json_object_set_new(status, "currentOptimalTrial",
                            json_pack("{s:s, s:O, s:O}", "bestTrialName", ty_obj_name(best),
                                      "parameterAssignments",
                                      at(best, "spec.parameterAssignments"), "observation",
                                      at(best, "status.observation")));
    else
        json_object_set_new(status, "currentOptimalTrial",
                            json_pack("{s:s, s:{}}", "bestTrialName", "", "observation"));

    if (completed)
        goto write;

    /* the experiment's end, as Katib decides it */
    long active = n_run + n_pend;
    long done = nt - active;
    long max_trials = (long)iat(spec, "maxTrialCount", -1);
    long max_failed = (long)iat(spec, "maxFailedTrialCount", -1);
    const json_t *goal = at(spec, "objective.goal");
    bool goal_reached = best && json_is_number(goal) &&
                        (maximize ? best_v >= json_number_value(goal)
                                  : best_v <= json_number_value(goal));
    const char *end_type = NULL, *end_reason = NULL, *end_msg = NULL;
    if (goal_reached) {
        end_type = "Succeeded", end_reason = "ExperimentGoalReached",
        end_msg = "Experiment has succeeded because Objective goal has reached";
    } else if (max_failed >= 0 && n_fail + n_mu != 0 && n_fail + n_mu >= max_failed) {
        /* Katib counts trials without metrics as failed here */
        end_type = "Failed", end_reason = "ExperimentFailed",
        end_msg = "Experiment has failed because max failed count has reached";
    } else if (max_trials > 0 && done >= max_trials) {
        end_type = "Succeeded", end_reason = "ExperimentMaxTrialsReached",
        end_msg = "Experiment has succeeded because max trial count has reached";
    }

    /* new trials, up to parallelTrialCount running and maxTrialCount made */
    long parallel = (long)iat(spec, "parallelTrialCount", 3);
    long want = parallel - active;
    if (max_trials > 0 && (long)nt + want > max_trials)
        want = max_trials - (long)nt;
    int got = 0;
    size_t ids[256];
    if (!end_type && want > 0) {
        got = ty_hpo_suggest(sugg, (size_t)(want > 256 ? 256 : want), ids, &err);
        if (got < 0) {
            ty_log(TY_LOG_WARN, "experiment %s/%s: %s", ns, name, err.msg);
            ty_error_clear(&err);
            got = 0;
        }
        if (got == 0 && active == 0) {
            end_type = "Succeeded", end_reason = "ExperimentSuggestionEndReached",
            end_msg = "Experiment has succeeded because suggestion service has reached the end";
        }
    }

    /* the Suggestion: what was asked of the algorithm and what it gave */
    json_t *sobj = ty_store_get(c->store, "suggestions", ns, name);
    if (!sobj) {
        json_t *ns_obj = json_pack(
            "{s:s, s:s, s:{s:s, s:s, s:{s:s}, s:o}, s:{s:O, s:i, s:s}}", "apiVersion",
            TY_KATIB_API_VERSION, "kind", "Suggestion", "metadata", "name", name, "namespace", ns,
            "labels", LABEL_EXPERIMENT, name, "ownerReferences", owner_ref(exp, "Experiment"),
            "spec", "algorithm", at(spec, "algorithm"), "requests", 0, "resumePolicy",
            sat(spec, "resumePolicy") ? sat(spec, "resumePolicy") : "Never");
        if (json_is_object(at(spec, "earlyStopping")))
            json_object_set_new(json_object_get(ns_obj, "spec"), "earlyStopping",
                                json_deep_copy(at(spec, "earlyStopping")));
        if (ty_store_create(c->store, "suggestions", ns_obj, &sobj, &err) < 0) {
            rc = ty_fail(fail, "create suggestion: %s", err.msg);
            ty_error_clear(&err);
        }
        json_decref(ns_obj);
    }
    json_t *sstatus = sobj && json_is_object(at(sobj, "status"))
                          ? json_deep_copy(at(sobj, "status"))
                          : json_object();
    json_t *suggestions = json_object_get(sstatus, "suggestions");
    if (!json_is_array(suggestions)) {
        suggestions = json_array();
        json_object_set_new(sstatus, "suggestions", suggestions);
    }
    if (!condition(sobj, "Created"))
        set_condition(sstatus, "Created", "True", "SuggestionCreated", "Suggestion is created");
    set_condition(sstatus, "Running", "True", "SuggestionRunning",
                  "Suggestion is running (in-process)");

    /* the trials for the new suggestions */
    for (int k = 0; k < got && sobj; k++) {
        const double *px = ty_hpo_trial_point(sugg, ids[k]);
        json_t *assign = assignments_of(space, px);
        TY_AUTOFREE char *prefix = ty_asprintf("%s-", name);
        /* a name no Trial has (the generator restarts with the server) */
        char *tname = NULL;
        for (int tries = 0; tries < 16; tries++) {
            free(tname);
            tname = ty_api_generate_name(prefix);
            json_t *there = ty_store_get(c->store, "trials", ns, tname);
            json_decref(there);
            if (!there)
                break;
        }
        json_t *job = trial_job(c, exp, tname, assign, &err);
        char idx[32], tag[32];
        snprintf(idx, sizeof idx, "%zu", ids[k]);
        snprintf(tag, sizeof tag, "%d", ty_hpo_trial_tag(sugg, ids[k]));
        const json_t *tt = at(spec, "trialTemplate");
        json_t *trial = json_pack(
            "{s:s, s:s, s:{s:s, s:s, s:{s:s}, s:{s:s, s:s}, s:o}, s:{s:O, s:O, s:O, s:b}}",
            "apiVersion", TY_KATIB_API_VERSION, "kind", "Trial", "metadata", "name", tname,
            "namespace", ns, "labels", LABEL_EXPERIMENT, name, "annotations", ANN_INDEX, idx,
            ANN_TAG, tag, "ownerReferences", owner_ref(exp, "Experiment"), "spec", "objective",
            objective, "parameterAssignments", assign, "metricsCollector",
            at(spec, "metricsCollectorSpec") ? at(spec, "metricsCollectorSpec") : json_null(),
            "retainRun", json_is_true(json_object_get(tt, "retain")));
        json_t *tspec = json_object_get(trial, "spec");
        static const char *const copy[] = {"primaryPodLabels", "primaryContainerName",
                                           "successCondition", "failureCondition"};
        for (size_t q = 0; q < TY_ARRAY_LEN(copy); q++)
            if (json_object_get(tt, copy[q]))
                json_object_set(tspec, copy[q], json_object_get(tt, copy[q]));
        if (job)
            json_object_set_new(tspec, "runSpec", job);
        json_t *tstatus = json_object();
        set_condition(tstatus, "Created", "True", "TrialCreated", "Trial is created");
        if (!job) {
            end_trial(tstatus, "Failed", "TrialFailed", err.msg ? err.msg : "no job");
            ty_error_clear(&err);
        }
        json_t *stored = NULL;
        state_name(es, ids[k], tname, false);
        if (ty_store_create(c->store, "trials", trial, &stored, &err) < 0) {
            rc = ty_fail(fail, "create trial %s: %s", tname, err.msg);
            ty_error_clear(&err);
            /* no Trial: the point is no running trial of the history either */
            ty_hpo_report(sugg, ids[k], TY_HPO_FAILED, 0, NULL);
            es->reported[ids[k]] = true;
        } else {
            json_t *withst = json_copy(stored);
            json_object_set(withst, "status", tstatus);
            ty_store_update_status(c->store, "trials", withst, NULL, NULL);
            json_decref(withst);
            json_array_append_new(suggestions, json_pack("{s:s, s:O, s:{s:s}}", "name", tname,
                                                         "parameterAssignments", assign, "labels",
                                                         LABEL_EXPERIMENT, name));
            ty_event(c->events, exp, "Normal", "TrialCreated", "Trial %s is created", tname);
            n_pend++;
            /* its job at once: no wait for the trial's own watch event */
            ty_queue_add(c->queue, key);
        }
        json_decref(stored);
        json_decref(tstatus);
        json_decref(trial);
        json_decref(assign);
        free(tname);
    }
    if (sobj) {
        json_object_set_new(sstatus, "suggestionCount",
                            json_integer((json_int_t)json_array_size(suggestions)));
        if (end_type)
            mark_end(sstatus, "Succeeded", "SuggestionSucceeded",
                     "Suggestion is succeeded");
        if (!json_equal(sstatus, at(sobj, "status"))) {
            json_t *next = json_copy(sobj);
            json_object_set(next, "status", sstatus);
            if (ty_store_update_status(c->store, "suggestions", next, NULL, &err) < 0)
                ty_error_clear(&err);
            json_decref(next);
        }
        if (json_integer_value(at(sobj, "spec.requests")) !=
            (json_int_t)json_array_size(suggestions)) {
            json_t *next = json_deep_copy(sobj);
            json_object_set_new(json_object_get(next, "spec"), "requests",
                                json_integer((json_int_t)json_array_size(suggestions)));
            json_object_del(next, "status");
            if (ty_store_update(c->store, "suggestions", next, NULL, &err) < 0)
                ty_error_clear(&err);
            json_decref(next);
        }
    }
    json_decref(sstatus);
    json_decref(sobj);

    if (end_type) {
        mark_end(status, end_type, end_reason, end_msg);
        TY_AUTOFREE char *now = now_text();
        json_object_set_new(status, "completionTime", json_string(now));
        ty_event(c->events, exp, strcmp(end_type, "Failed") == 0 ? "Warning" : "Normal",
                 end_reason, "%s", end_msg);
        /* Katib kills what still runs */
        for (size_t k = 0; k < nt; k++) {
            if (ended(trials[k].state))
                continue;
            json_t *ts = json_is_object(at(trials[k].obj, "status"))
                             ? json_deep_copy(at(trials[k].obj, "status"))
                             : json_object();
            end_trial(ts, "Killed", "TrialKilled", "Trial is killed");
            json_t *next = json_copy(trials[k].obj);
            json_object_set(next, "status", ts);
            ty_store_update_status(c->store, "trials", next, NULL, NULL);
            json_decref(next);
            json_decref(ts);
            delete_job(c, trials[k].obj, ty_katib_job_kind(at(trials[k].obj, "spec.runSpec")));
        }
    } else if (!condition_true(exp, "Running")) {
        set_condition(status, "Running", "True", "ExperimentRunning", "Experiment is running");
    }

write:
    free(x);
    /* an ended experiment's suggester is done with */
    json_t *wrapped = json_pack("{s:O}", "status", status);
    if (condition_true(wrapped, "Succeeded") || condition_true(wrapped, "Failed"))
        state_free(ty_map_dels(&c->states, key));
    json_decref(wrapped);
    if (!json_equal(status, at(exp, "status"))) {
        json_t *next = json_copy(exp);
        json_object_set(next, "status", status);
        if (ty_store_update_status(c->store, "experiments", next, NULL, &err) < 0)
            rc = ty_fail(fail, "write status: %s", err.msg);
        json_decref(next);
    }
    if (requeue && rc == 0)
        ty_queue_add_after(c->queue, key, EARLY_STOP_POLL_MS);
    for (size_t k = 0; k < nt; k++)
        json_decref(trials[k].obj);
    free(trials);
    json_decref(owned);
    ty_error_clear(&err);
    json_decref(status);
    json_decref(exp);
    return rc;
}

/* ---------- watches ---------- */

static const char *owner_of_kind(const json_t *obj, const char *kind)
{
    size_t i;
    json_t *ref;
    json_array_foreach(at(obj, "metadata.ownerReferences"), i, ref) if (
        sat(ref, "kind") && strcmp(sat(ref, "kind"), kind) == 0 &&
        sat(ref, "apiVersion") && strcmp(sat(ref, "apiVersion"), TY_KATIB_API_VERSION) == 0)
        return sat(ref, "name");
    return NULL;
}

static void on_event(void *ctx, ty_event_type type, const char *resource, const json_t *obj)
{
    ty_experimentctl *c = ctx;
    (void)type;
    const char *exp = NULL;
    if (strcmp(resource, "experiments") == 0)
        exp = ty_obj_name(obj);
    else if (strcmp(resource, "trials") == 0)
        exp = owner_of_kind(obj, "Experiment");
    else if (owner_of_kind(obj, "Trial"))
        exp = json_string_value(json_object_get(at(obj, "metadata.labels"), LABEL_EXPERIMENT));
    if (!exp)
        return;
    TY_AUTOFREE char *key = ty_asprintf("experiments/%s/%s", ty_obj_namespace(obj), exp);
    ty_queue_add(c->queue, key);
}

ty_experimentctl *ty_experimentctl_new(uv_loop_t *loop, ty_store *store,
                                       ty_experiment_log_path_fn log_path, void *log_ctx)
{
    ty_experimentctl *c = TY_NEW(ty_experimentctl);
    c->store = store;
    c->log_path = log_path;
    c->log_ctx = log_ctx;
    c->queue = ty_queue_new(loop, "experiments", reconcile, c);
    c->events = ty_recorder_new(store, "experiment-controller");
    c->watch_ids = ty_queue_watch_kinds(store, TY_WATCHED_BY_EXPERIMENTS, on_event, c, &c->nwatch);
    return c;
}

void ty_experimentctl_set_api_url(ty_experimentctl *c, const char *url)
{
    free(c->api_url);
    c->api_url = url ? ty_strdup(url) : NULL;
}

void ty_experimentctl_resync(ty_experimentctl *c)
{
    ty_queue_add_all(c->queue, c->store, "experiments", "experiments/");
}

void ty_experimentctl_free(ty_experimentctl *c)
{
    if (!c)
        return;
    ty_queue_unwatch_kinds(c->store, c->watch_ids, c->nwatch);
    ty_queue_free(c->queue);
    ty_recorder_free(c->events);
    size_t it = 0;
    const ty_map_slot *slot;
    while (ty_map_next(&c->states, &it, &slot))
        state_free(slot->value);
    ty_map_free(&c->states);
    free(c->api_url);
    free(c);
}

/* ---------- Push ---------- */

int ty_experiment_push_metrics(ty_store *store, const char *ns, const char *name,
                               const json_t *body, ty_error *err)
{
    json_t *trial = ty_store_get(store, "trials", ns, name);
    if (!trial) {
        ty_fail(err, "trials.kubeflow.org \"%s\" not found", name);
        err->code = 404;
        return -1;
    }
    int rc = -1;
    const char *ck = sat(trial, "spec.metricsCollector.collector.kind");
    const json_t *metrics = json_object_get(body, "metrics");
    const char *ts = json_string_value(json_object_get(body, "timestamp"));
    TY_AUTOFREE char *now = now_text();
    json_t *status = json_is_object(at(trial, "status")) ? json_deep_copy(at(trial, "status"))
                                                         : json_object();
    json_t *log = json_object_get(status, "observationLog");
    if (!json_is_array(log)) {
        log = json_array();
        json_object_set_new(status, "observationLog", log);
    }
    size_t before = json_array_size(log);
    if (!ck || strcmp(ck, "Push") != 0) {
        ty_fail(err, "trial %s collects its metrics with %s, not Push", name, ck ? ck : "none");
        err->code = 409;
        goto out;
    }
    if (ended(state_of(trial))) {
        ty_fail(err, "trial %s has ended", name);
        err->code = 409;
        goto out;
    }
    const char *k;
    json_t *v;
    size_t i;
    if (json_is_object(metrics)) {
        json_object_foreach((json_t *)metrics, k, v)
        {
            TY_AUTOFREE char *text = json_is_string(v) ? ty_strdup(json_string_value(v))
                                     : json_is_number(v) ? json_dumps(v, JSON_ENCODE_ANY | JSON_REAL_PRECISION(17))
                                                         : NULL;
            if (!text)
                continue;
            json_array_append_new(log, json_pack("{s:s, s:s, s:s}", "timeStamp",
                                                 ts ? ts : now, "name", k, "value", text));
        }
    } else if (json_is_array(metrics)) {
        json_array_foreach(metrics, i, v)
        {
            const char *mn = sat(v, "name");
            const json_t *mv = json_object_get(v, "value");
            TY_AUTOFREE char *text = json_is_string(mv) ? ty_strdup(json_string_value(mv))
                                     : json_is_number(mv) ? json_dumps(mv, JSON_ENCODE_ANY | JSON_REAL_PRECISION(17))
                                                          : NULL;
            if (mn && text)
                json_array_append_new(log, json_pack("{s:s, s:s, s:s}", "timeStamp",
                                                     ts ? ts : now, "name", mn, "value", text));
        }
    }
    if (json_array_size(log) == before) {
        ty_fail(err, "no metrics in the body: {\"metrics\": {\"name\": value, ...}} expected");
        err->code = 400;
        goto out;
    }
    json_object_set_new(status, "observation", observation_of(log, at(trial, "spec.objective")));
    json_t *next = json_copy(trial);
    json_object_set(next, "status", status);
    rc = ty_store_update_status(store, "trials", next, NULL, err);
    json_decref(next);
out:
    json_decref(status);
    json_decref(trial);
    return rc;
}
