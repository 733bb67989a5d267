/* kubeflow.org/v1beta1 Experiment, Trial and Suggestion (Katib): the mutating webhook's
 * defaults (SetDefault: parallelTrialCount 3, resumePolicy Never, metric strategies from the
 * objective's type, the StdOut collector, the trial template's success and failure conditions
 * per job kind) and the validating webhook's rules (ValidateExperiment) with Katib's
 * messages; the search space and the algorithm settings are checked by src/hpo, as Katib's
 * suggestion services check them. The controller is controllers/experiment.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "api/katib.h"
#include "base/buf.h"
#include "base/mem.h"
#include "hpo/medianstop.h"
#include "hpo/space.h"
#include "hpo/suggest.h"

__asm__(".section .rodata\n"
        ".global ty_schema_katib_v1beta1\n"
        "ty_schema_katib_v1beta1:\n"
        ".incbin \"src/api/schemas/kubeflow.org_v1beta1.json\"\n"
        ".byte 0\n"
        ".previous");
extern const char ty_schema_katib_v1beta1[];

static const json_t *schema_of(const char *name)
{
    /* Kept for the process (LeakSanitizer sees them reachable). */
    static json_t *doc;
    static const json_t *exp, *trial, *sugg;
    if (!doc)
        doc = ty_schema_doc_load(ty_schema_katib_v1beta1);
    const json_t **slot = strcmp(name, "Experiment") == 0 ? &exp
                          : strcmp(name, "Trial") == 0    ? &trial
                                                          : &sugg;
    if (!*slot) {
        TY_AUTOFREE char *full = ty_asprintf("org.kubeflow.katib.v1beta1.%s", name);
        *slot = ty_schema_inline(doc, full);
    }
    return *slot;
}
static const json_t *experiment_schema(void) { return schema_of("Experiment"); }
static const json_t *trial_schema(void) { return schema_of("Trial"); }
static const json_t *suggestion_schema(void) { return schema_of("Suggestion"); }

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

const char *ty_katib_job_kind(const json_t *job)
{
    const char *k = json_string_value(json_object_get(job, "kind"));
    return k ? k : "";
}

const char *ty_katib_default_condition(const char *job_kind, bool success)
{
    /* Katib's DefaultKubeflowJob*Condition and DefaultJob*Condition. */
    if (strcmp(job_kind, "Job") == 0)
        return success ? "status.conditions.#(type==\"Complete\")#|#(status==\"True\")#"
                       : "status.conditions.#(type==\"Failed\")#|#(status==\"True\")#";
    return success ? "status.conditions.#(type==\"Succeeded\")#|#(status==\"True\")#"
                   : "status.conditions.#(type==\"Failed\")#|#(status==\"True\")#";
}

static bool is_training_job(const char *kind)
{
    return strcmp(kind, "PyTorchJob") == 0 || strcmp(kind, "TFJob") == 0;
}

static void experiment_defaults(ty_schema_ctx *c, json_t *obj)
{
    (void)c;
    json_t *spec = json_object_get(obj, "spec");
    if (!json_is_object(spec))
        return;
    set_default(spec, "parallelTrialCount", json_integer(3));
    set_default(spec, "resumePolicy", json_string("Never"));
    json_t *objective = json_object_get(spec, "objective");
    if (json_is_object(objective)) {
        const char *type = json_string_value(json_object_get(objective, "type"));
        const char *strategy = type && strcmp(type, "maximize") == 0 ? "max" : "min";
        json_t *strategies = json_object_get(objective, "metricStrategies");
        if (!strategies) {
            strategies = json_array();
            json_object_set_new(objective, "metricStrategies", strategies);
        }
        if (json_is_array(strategies)) {
            /* every metric without a strategy gets the objective's direction */
            json_t *names = json_array();
            json_array_append(names, json_object_get(objective, "objectiveMetricName"));
            json_t *extra = json_object_get(objective, "additionalMetricNames");
            size_t i;
            json_t *n;
            json_array_foreach(extra, i, n) json_array_append(names, n);
            json_array_foreach(names, i, n)
            {
                if (!json_is_string(n))
                    continue;
                bool have = false;
                size_t k;
                json_t *s;
                json_array_foreach(strategies, k, s) have |=
                    json_equal(json_object_get(s, "name"), n);
                if (!have)
                    json_array_append_new(strategies, json_pack("{s:O, s:s}", "name", n, "value",
                                                                 strategy));
            }
            json_decref(names);
        }
    }
    json_t *mc = member_object(spec, "metricsCollectorSpec");
    json_t *coll = member_object(mc, "collector");
    set_default(coll, "kind", json_string("StdOut"));
    const char *ck = json_string_value(json_object_get(coll, "kind"));
    if (ck && strcmp(ck, "File") == 0) {
        json_t *fsp = member_object(member_object(mc, "source"), "fileSystemPath");
        set_default(fsp, "kind", json_string("File"));
        set_default(fsp, "format", json_string("TEXT"));
    }
    json_t *tt = json_object_get(spec, "trialTemplate");
    json_t *ts = json_object_get(tt, "trialSpec");
    if (json_is_object(tt) && json_is_object(ts)) {
        const char *kind = ty_katib_job_kind(ts);
        set_default(tt, "successCondition",
                    json_string(ty_katib_default_condition(kind, true)));
        set_default(tt, "failureCondition",
                    json_string(ty_katib_default_condition(kind, false)));
        if (is_training_job(kind))
            set_default(tt, "primaryPodLabels",
                        json_pack("{s:s}", "training.kubeflow.org/job-role", "master"));
    }
    if (json_is_object(tt))
        set_default(tt, "retain", json_false());
}

/* ---- validation ---- */

static void invalid(ty_schema_ctx *c, const json_t *parent, const char *key, const char *path,
                    const char *msg)
{
    ty_fe_invalid(c, path, ty_pos_member(c, parent, key), json_object_get(parent, key), "%s",
                  msg);
}

static void count_rule(ty_schema_ctx *c, json_t *spec, const char *key, bool zero_ok)
{
    json_t *v = json_object_get(spec, key);
    if (!json_is_integer(v))
        return;
    json_int_t n = json_integer_value(v);
    TY_AUTOFREE char *path = ty_asprintf("spec.%s", key);
    if (zero_ok && n < 0) {
        TY_AUTOFREE char *m = ty_asprintf("%s should not be less than 0", path);
        invalid(c, spec, key, path, m);
    } else if (!zero_ok && n <= 0) {
        TY_AUTOFREE char *m = ty_asprintf("%s must be greater than 0", path);
        invalid(c, spec, key, path, m);
    }
}

static size_t settings_of(const json_t *algo, ty_hpo_setting *out, size_t cap)
{
    size_t n = 0, i;
    json_t *s;
    json_array_foreach(json_object_get(algo, "algorithmSettings"), i, s)
    {
        const char *name = json_string_value(json_object_get(s, "name"));
        const char *value = json_string_value(json_object_get(s, "value"));
        if (name && n < cap)
            out[n++] = (ty_hpo_setting){name, value ? value : ""};
    }
    return n;
}

/* Every "${trialParameters.x}" in `text` names a trialParameter. */
static void check_placeholders(ty_schema_ctx *c, const char *text, const json_t *tparams,
                               const json_t *tt)
{
    const char *p = text;
    while ((p = strstr(p, "${trialParameters."))) {
        p += strlen("${trialParameters.");
        const char *end = strchr(p, '}');
        if (!end)
            break;
        bool found = false;
        size_t i;
        json_t *tp;
        json_array_foreach(tparams, i, tp)
        {
            const char *n = json_string_value(json_object_get(tp, "name"));
            found |= n && strlen(n) == (size_t)(end - p) && strncmp(n, p, end - p) == 0;
        }
        if (!found) {
            TY_AUTOFREE char *m = ty_asprintf(
                "parameter %.*s in spec.trialTemplate is not defined in "
                "spec.trialTemplate.trialParameters",
                (int)(end - p), p);
            invalid(c, tt, "trialSpec", "spec.trialTemplate", m);
        }
        p = end;
    }
}

static void experiment_rules(ty_schema_ctx *c, json_t *obj)
{
    json_t *spec = json_object_get(obj, "spec");
    if (!json_is_object(spec)) {
        ty_fe_required(c, "spec", (ty_pos){0, 0}, NULL);
        return;
    }
    json_t *meta = json_object_get(obj, "metadata");
    json_t *name = json_object_get(meta, "name");
    if (json_is_string(name)) {
        /* Katib names trials "<experiment>-<8 chars>" and labels them with the name */
        const char *why = ty_check_dns1035_label(json_string_value(name));
        if (why)
            ty_fe_invalid(c, "metadata.name", ty_pos_member(c, meta, "name"), name, "%s", why);
        else if (strlen(json_string_value(name)) > 40)
            ty_fe_invalid(c, "metadata.name", ty_pos_member(c, meta, "name"), name,
                          "must be no more than 40 characters");
    }
    count_rule(c, spec, "maxFailedTrialCount", true);
    count_rule(c, spec, "maxTrialCount", false);
    count_rule(c, spec, "parallelTrialCount", false);
    json_t *max = json_object_get(spec, "maxTrialCount");
    json_t *maxf = json_object_get(spec, "maxFailedTrialCount");
    json_t *par = json_object_get(spec, "parallelTrialCount");
    if (json_is_integer(max) && json_is_integer(maxf) &&
        json_integer_value(maxf) > json_integer_value(max))
        invalid(c, spec, "maxFailedTrialCount", "spec.maxFailedTrialCount",
                "spec.maxFailedTrialCount should be less than or equal to spec.maxTrialCount");
    if (json_is_integer(max) && json_is_integer(par) &&
        json_integer_value(par) > json_integer_value(max))
        invalid(c, spec, "parallelTrialCount", "spec.parallelTrialCount",
                "spec.parallelTrialCount should be less than or equal to spec.maxTrialCount");
    const char *rp = json_string_value(json_object_get(spec, "resumePolicy"));
    if (rp && strcmp(rp, "FromVolume") == 0)
        invalid(c, spec, "resumePolicy", "spec.resumePolicy",
                "resumePolicy FromVolume is not supported by trainyard (Never, LongRunning)");

    json_t *objective = json_object_get(spec, "objective");
    if (!json_is_object(objective)) {
        ty_fe_required(c, "spec.objective", ty_pos_key(c, spec, "objective"),
                       "spec.objective must be specified");
    } else {
        const char *type = json_string_value(json_object_get(objective, "type"));
        if (!type || (strcmp(type, "minimize") != 0 && strcmp(type, "maximize") != 0))
            invalid(c, objective, "type", "spec.objective.type",
                    "spec.objective.type must be minimize or maximize");
        const char *om = json_string_value(json_object_get(objective, "objectiveMetricName"));
        if (!om || !*om)
            ty_fe_required(c, "spec.objective.objectiveMetricName",
                           ty_pos_key(c, objective, "objectiveMetricName"),
                           "spec.objective.objectiveMetricName must be specified");
        size_t i;
        json_t *a;
        json_array_foreach(json_object_get(objective, "additionalMetricNames"), i, a) if (
            om && json_is_string(a) && strcmp(json_string_value(a), om) == 0)
            invalid(c, objective, "additionalMetricNames", "spec.objective.additionalMetricNames",
                    "spec.objective.additionalMetricNames should not contain the objective "
                    "metric name");
    }

    ty_hpo_space *space = NULL;
    ty_error err = TY_ERROR_INIT;
    json_t *params = json_object_get(spec, "parameters");
    if (!json_is_array(params) || json_array_size(params) == 0) {
        ty_fe_required(c, "spec.parameters", ty_pos_key(c, spec, "parameters"),
                       "spec.parameters must be specified");
    } else if (ty_hpo_space_parse(params, &space, &err) < 0) {
        invalid(c, spec, "parameters", "spec.parameters", err.msg);
        ty_error_clear(&err);
    }
    json_t *algo = json_object_get(spec, "algorithm");
    const char *an = json_string_value(json_object_get(algo, "algorithmName"));
    if (!an || !*an) {
        ty_fe_required(c, "spec.algorithm.algorithmName", ty_pos_key(c, spec, "algorithm"),
                       "spec.algorithm.algorithmName must be specified");
    } else if (space) {
        ty_hpo_setting st[64];
        size_t ns = settings_of(algo, st, 64);
        ty_hpo_options opt = {
            .maximize = json_is_string(json_object_get(objective, "type")) &&
                        strcmp(json_string_value(json_object_get(objective, "type")),
                               "maximize") == 0,
            .parallel_trial_count = json_is_integer(par) ? (int)json_integer_value(par) : 0,
            .max_trial_count = json_is_integer(max) ? (int)json_integer_value(max) : 0};
        ty_hpo_suggester *s = NULL;
        if (ty_hpo_suggester_new(space, an, st, ns, &opt, &s, &err) < 0) {
            invalid(c, algo, "algorithmName", "spec.algorithm", err.msg);
            ty_error_clear(&err);
        }
        ty_hpo_suggester_free(s);
    }
    json_t *es = json_object_get(spec, "earlyStopping");
    if (json_is_object(es)) {
        ty_hpo_setting st[16];
        size_t ns = settings_of(es, st, 16);
        ty_hpo_medianstop ms;
        const char *en = json_string_value(json_object_get(es, "algorithmName"));
        if (ty_hpo_medianstop_parse(en ? en : "", st, ns, &ms, &err) < 0) {
            invalid(c, es, "algorithmName", "spec.earlyStopping", err.msg);
            ty_error_clear(&err);
        }
    }
    json_t *coll = json_object_get(json_object_get(spec, "metricsCollectorSpec"), "collector");
    const char *ck = json_string_value(json_object_get(coll, "kind"));
    static const char *const kinds[] = {"StdOut", "File", "Push", "None"};
    bool known = false;
    for (size_t i = 0; ck && i < TY_ARRAY_LEN(kinds); i++)
        known |= strcmp(ck, kinds[i]) == 0;
    if (ck && !known)
        invalid(c, coll, "kind", "spec.metricsCollectorSpec.collector.kind",
                "trainyard collects metrics of kind StdOut, File, Push or None");
    if (ck && strcmp(ck, "File") == 0) {
        const char *path = json_string_value(json_object_get(
            json_object_get(json_object_get(json_object_get(spec, "metricsCollectorSpec"),
                                            "source"),
                            "fileSystemPath"),
            "path"));
        if (!path || path[0] != '/')
            ty_fe_required(c, "spec.metricsCollectorSpec.source.fileSystemPath.path",
                           ty_pos_key(c, spec, "metricsCollectorSpec"),
                           "File collector requires an absolute path in "
                           "spec.metricsCollectorSpec.source.fileSystemPath.path");
    }

    json_t *tt = json_object_get(spec, "trialTemplate");
    if (!json_is_object(tt)) {
        ty_fe_required(c, "spec.trialTemplate", ty_pos_key(c, spec, "trialTemplate"),
                       "spec.trialTemplate must be specified");
    } else {
        json_t *ts = json_object_get(tt, "trialSpec");
        json_t *cm = json_object_get(tt, "configMap");
        if (!ts && !cm)
            ty_fe_required(c, "spec.trialTemplate", ty_pos_key(c, spec, "trialTemplate"),
                           "spec.trialTemplate.trialSpec or spec.trialTemplate.configMap must "
                           "be specified");
        if (ts && cm)
            invalid(c, tt, "configMap", "spec.trialTemplate",
                    "only one of spec.trialTemplate.trialSpec or spec.trialTemplate.configMap "
                    "can be specified");
        json_t *tparams = json_object_get(tt, "trialParameters");
        if (!json_is_array(tparams) || json_array_size(tparams) == 0)
            ty_fe_required(c, "spec.trialTemplate.trialParameters",
                           ty_pos_key(c, tt, "trialParameters"),
                           "spec.trialTemplate.trialParameters must be specified");
        size_t i;
        json_t *tp;
        json_array_foreach(tparams, i, tp)
        {
            const char *n = json_string_value(json_object_get(tp, "name"));
            const char *ref = json_string_value(json_object_get(tp, "reference"));
            TY_AUTOFREE char *path = ty_asprintf("spec.trialTemplate.trialParameters[%zu]", i);
            if (!n || !ref) {
                ty_fe_required(c, path, ty_pos_index(c, tparams, i),
                               "name and reference must be specified");
                continue;
            }
            for (size_t k = 0; k < i; k++)
                if (json_equal(json_object_get(json_array_get(tparams, k), "name"),
                               json_object_get(tp, "name")))
                    invalid(c, tp, "name", path, "parameter name must be unique in "
                                                 "spec.trialTemplate.trialParameters");
            if (space && strncmp(ref, "${trialSpec.", 12) != 0 &&
                ty_hpo_space_find(space, ref) < 0) {
                TY_AUTOFREE char *m =
                    ty_asprintf("parameter reference %s does not exist in spec.parameters", ref);
                invalid(c, tp, "reference", path, m);
            }
        }
        if (json_is_object(ts)) {
            TY_AUTOFREE char *text = json_dumps(ts, JSON_COMPACT);
            check_placeholders(c, text, tparams, tt);
            const char *kind = ty_katib_job_kind(ts);
            if (strcmp(kind, "Job") != 0 && !is_training_job(kind))
                invalid(c, tt, "trialSpec", "spec.trialTemplate.trialSpec.kind",
                        "trainyard runs trials of kind Job (batch/v1), PyTorchJob or TFJob");
        }
        json_t *src = json_object_get(tt, "configMap");
        if (json_is_object(src) &&
            (!json_is_string(json_object_get(src, "configMapName")) ||
             !json_is_string(json_object_get(src, "templatePath"))))
            ty_fe_required(c, "spec.trialTemplate.configMap", ty_pos_key(c, tt, "configMap"),
                           "configMapName and templatePath must be specified");
    }
    ty_hpo_space_free(space);
}

/* Katib lets only the trial budget change on a running experiment. */
static void experiment_update_rules(ty_schema_ctx *c, const json_t *obj, const json_t *old)
{
    json_t *spec = json_object_get(obj, "spec");
    json_t *ospec = json_object_get(old, "spec");
    if (!json_is_object(spec) || !json_is_object(ospec))
        return;
    const char *it;
    json_t *v;
    json_object_foreach(spec, it, v)
    {
        if (strcmp(it, "parallelTrialCount") == 0 || strcmp(it, "maxTrialCount") == 0 ||
            strcmp(it, "maxFailedTrialCount") == 0)
            continue;
        if (!json_equal(v, json_object_get(ospec, it))) {
            TY_AUTOFREE char *path = ty_asprintf("spec.%s", it);
            TY_AUTOFREE char *m = ty_asprintf(
                "only spec.parallelTrialCount, spec.maxTrialCount and "
                "spec.maxFailedTrialCount are editable; %s is not", path);
            ty_fe_forbidden(c, path, ty_pos_member(c, spec, it), m);
        }
    }
}

static void no_defaults(ty_schema_ctx *c, json_t *obj)
{
    (void)c;
    (void)obj;
}
static void no_rules(ty_schema_ctx *c, json_t *obj)
{
    (void)c;
    (void)obj;
}

const ty_kind_ops ty_katib_experiment_ops = {experiment_schema, experiment_defaults,
                                              experiment_rules, experiment_update_rules};
const ty_kind_ops ty_katib_trial_ops = {trial_schema, no_defaults, no_rules, NULL};
const ty_kind_ops ty_katib_suggestion_ops = {suggestion_schema, no_defaults, no_rules, NULL};
