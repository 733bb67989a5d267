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
    /* a template in a ConfigMap of the experiment's namespace, unless said */
    json_t *cm = json_object_get(tt, "configMap");
    const char *ns = json_string_value(
        json_object_get(json_object_get(obj, "metadata"), "namespace"));
    if (json_is_object(cm) && ns)
        set_default(cm, "configMapNamespace", json_string(ns));
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
    if (zero_ok && n < 0)
        invalid(c, spec, key, path, "should not be less than 0");
    else if (!zero_ok && n <= 0)
        invalid(c, spec, key, path, "must be greater than 0");
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

/* The "${trialParameters.x}" placeholders of the template text that no trialParameter names,
 * as Katib lists them ("[${trialParameters.a} ${trialParameters.b}]"); NULL when none. */
static char *unknown_placeholders(const char *text, const json_t *tparams)
{
    ty_buf out = TY_BUF_INIT;
    const char *p = text;
    while ((p = strstr(p, "${trialParameters."))) {
        const char *name = p + strlen("${trialParameters.");
        const char *end = strchr(name, '}');
        if (!end)
            break;
        bool found = false;
        size_t i;
        json_t *tp;
        json_array_foreach(tparams, i, tp)
        {
            const char *n = json_string_value(json_object_get(tp, "name"));
            found |= n && strlen(n) == (size_t)(end - name) && strncmp(n, name, end - name) == 0;
        }
        if (!found)
            ty_buf_addf(&out, "%s%.*s", out.len ? " " : "[", (int)(end + 1 - p), p);
        p = end + 1;
    }
    if (!out.len)
        return NULL;
    ty_buf_addc(&out, ']');
    return ty_buf_steal(&out);
}

/* Whether a trialParameter's reference is Katib's metadata form: ${trialSpec.Name} and kin. */
static bool meta_reference(const char *ref)
{
    return strncmp(ref, "${trialSpec.", 12) == 0 && ref[strlen(ref) - 1] == '}';
}

static void check_trial_template(ty_schema_ctx *c, json_t *spec, const ty_hpo_space *space)
{
    json_t *tt = json_object_get(spec, "trialTemplate");
    if (!json_is_object(tt)) {
        ty_fe_required(c, "spec.trialTemplate", ty_pos_key(c, spec, "trialTemplate"),
                       "must be specified");
        return;
    }
    const char *pc = json_string_value(json_object_get(tt, "primaryContainerName"));
    if (!pc || !*pc)
        ty_fe_required(c, "spec.trialTemplate.primaryContainerName",
                       ty_pos_key(c, tt, "primaryContainerName"), "must be specified");
    json_t *tparams = json_object_get(tt, "trialParameters");
    if (!json_is_array(tparams)) {
        ty_fe_required(c, "spec.trialTemplate.trialParameters",
                       ty_pos_key(c, tt, "trialParameters"), "must be specified");
        return;
    }
    json_t *ts = json_object_get(tt, "trialSpec");
    json_t *cm = json_object_get(tt, "configMap");
    if (!ts && !cm) {
        ty_fe_required(c, "spec.trialTemplate.TrialSource", ty_pos_key(c, spec, "trialTemplate"),
                       "spec.trialTemplate.trialSpec or spec.trialTemplate.configMap must be "
                       "specified");
        return;
    }
    if (ts && cm) {
        ty_fe_required(c, "spec.trialTemplate", ty_pos_key(c, tt, "configMap"),
                       "only one of spec.trialTemplate.trialSpec or "
                       "spec.trialTemplate.configMap can be specified");
        return;
    }
    if (cm && (!json_is_string(json_object_get(cm, "configMapName")) ||
               !json_is_string(json_object_get(cm, "configMapNamespace")) ||
               !json_is_string(json_object_get(cm, "templatePath")))) {
        ty_fe_required(c, "spec.trialTemplate.configMap", ty_pos_key(c, tt, "configMap"),
                       "configMapName, configMapNamespace and templatePath must be specified");
        return;
    }
    /* the template text is known here only for trialSpec (a ConfigMap's is read per trial) */
    TY_AUTOFREE char *text = json_is_object(ts) ? json_dumps(ts, JSON_COMPACT) : NULL;
    size_t i;
    json_t *tp;
    json_array_foreach(tparams, i, tp)
    {
        const char *n = json_string_value(json_object_get(tp, "name"));
        const char *ref = json_string_value(json_object_get(tp, "reference"));
        TY_AUTOFREE char *path = ty_asprintf("spec.trialTemplate.trialParameters[%zu]", i);
        if (!n || !*n || !ref || !*ref || strchr(n, '{') || strchr(n, '}')) {
            json_t *empty = json_string("");
            ty_fe_invalid(c, path, ty_pos_index(c, tparams, i), empty, "%s",
                          "name and reference must be specified and name must not contain "
                          "'{' or '}'");
            json_decref(empty);
            continue;
        }
        bool dup_name = false, dup_ref = false;
        for (size_t k = 0; k < i; k++) {
            json_t *o = json_array_get(tparams, k);
            dup_name |= json_equal(json_object_get(o, "name"), json_object_get(tp, "name"));
            dup_ref |= json_equal(json_object_get(o, "reference"), json_object_get(tp, "reference"));
        }
        TY_AUTOFREE char *npath = ty_asprintf("%s.name", path);
        TY_AUTOFREE char *rpath = ty_asprintf("%s.reference", path);
        if (dup_name) {
            TY_AUTOFREE char *m = ty_asprintf(
                "parameter name %s can't be duplicated in spec.trialTemplate.trialParameters", n);
            invalid(c, tp, "name", npath, m);
            continue;
        }
        if (dup_ref) {
            TY_AUTOFREE char *m = ty_asprintf(
                "parameter reference %s can't be duplicated in "
                "spec.trialTemplate.trialParameters", ref);
            invalid(c, tp, "reference", rpath, m);
            continue;
        }
        if (space && !meta_reference(ref) && ty_hpo_space_find(space, ref) < 0) {
            TY_AUTOFREE char *m =
                ty_asprintf("parameter reference %s does not exist in spec.parameters", ref);
            invalid(c, tp, "reference", rpath, m);
        }
        TY_AUTOFREE char *ph = ty_asprintf("${trialParameters.%s}", n);
        if (text && !strstr(text, ph)) {
            TY_AUTOFREE char *m = ty_asprintf(
                "parameter name: %s in spec.trialParameters not found in spec.trialTemplate", n);
            invalid(c, tp, "name", npath, m);
        }
    }
    if (!text)
        return;
    TY_AUTOFREE char *unknown = unknown_placeholders(text, tparams);
    if (unknown) {
        TY_AUTOFREE char *m = ty_asprintf(
            "parameters: %s in spec.trialTemplate not found in spec.trialParameters", unknown);
        json_t *empty = json_string("");
        ty_fe_invalid(c, "spec.trialTemplate", ty_pos_member(c, tt, "trialSpec"), empty, "%s",
                      m);
        json_decref(empty);
    }
    json_t *meta = json_object_get(ts, "metadata");
    if (json_object_get(meta, "name") || json_object_get(meta, "namespace")) {
        json_t *empty = json_string("");
        ty_fe_invalid(c, "spec.trialTemplate", ty_pos_member(c, tt, "trialSpec"), empty, "%s",
                      "metadata.name and metadata.namespace in spec.trialTemplate must be "
                      "omitted");
        json_decref(empty);
    }
    const char *kind = ty_katib_job_kind(ts);
    if (!json_is_string(json_object_get(ts, "apiVersion")) || !*kind)
        ty_fe_required(c, "spec.trialTemplate", ty_pos_member(c, tt, "trialSpec"),
                       "APIVersion and Kind in spec.trialTemplate must be specified");
    else if (strcmp(kind, "Job") != 0 && !is_training_job(kind))
        invalid(c, tt, "trialSpec", "spec.trialTemplate.trialSpec.kind",
                "trainyard runs trials of kind Job (batch/v1), PyTorchJob or TFJob");
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
    if (json_is_string(name) && ty_check_dns1035_label(json_string_value(name)))
        ty_fe_invalid(c, "metadata.name", ty_pos_member(c, meta, "name"), name, "%s",
                      "name must consist of lower case alphanumeric characters or '-', start "
                      "with an alphabetic character, and end with an alphanumeric character "
                      "(e.g. 'my-name', or 'abc-123', regex used for validation is "
                      "'^[a-z]([-a-z0-9]*[a-z0-9])?)'");
    count_rule(c, spec, "maxFailedTrialCount", true);
    count_rule(c, spec, "maxTrialCount", false);
    count_rule(c, spec, "parallelTrialCount", false);
    json_t *max = json_object_get(spec, "maxTrialCount");
    json_t *maxf = json_object_get(spec, "maxFailedTrialCount");
    json_t *par = json_object_get(spec, "parallelTrialCount");
    if (json_is_integer(max) && json_is_integer(maxf) &&
        json_integer_value(maxf) > json_integer_value(max))
        invalid(c, spec, "maxFailedTrialCount", "spec.maxFailedTrialCount",
                "should be less than or equal to spec.maxTrialCount");
    if (json_is_integer(max) && json_is_integer(par) &&
        json_integer_value(par) > json_integer_value(max))
        invalid(c, spec, "parallelTrialCount", "spec.parallelTrialCount",
                "should be less than or equal to spec.maxTrialCount");

    json_t *objective = json_object_get(spec, "objective");
    if (!json_is_object(objective)) {
        ty_fe_required(c, "spec.objective", ty_pos_key(c, spec, "objective"),
                       "must be specified");
        return; /* as Katib: nothing else is checked without an objective */
    }
    const char *type = json_string_value(json_object_get(objective, "type"));
    if (!type || (strcmp(type, "minimize") != 0 && strcmp(type, "maximize") != 0))
        invalid(c, objective, "type", "spec.objective.type", "must be minimize or maximize");
    const char *om = json_string_value(json_object_get(objective, "objectiveMetricName"));
    if (!om || !*om)
        ty_fe_required(c, "spec.objective.objectiveMetricName",
                       ty_pos_key(c, objective, "objectiveMetricName"), "must be specified");
    size_t i;
    json_t *a;
    bool repeats = false;
    json_array_foreach(json_object_get(objective, "additionalMetricNames"), i, a) repeats |=
        om && json_is_string(a) && strcmp(json_string_value(a), om) == 0;
    if (repeats)
        invalid(c, objective, "additionalMetricNames", "spec.objective.additionalMetricNames",
                "should not contain spec.objective.objectiveMetricName");

    ty_hpo_space *space = NULL;
    ty_error err = TY_ERROR_INIT;
    json_t *params = json_object_get(spec, "parameters");
    if (!json_is_array(params) || json_array_size(params) == 0) {
        ty_fe_required(c, "spec", ty_pos_key(c, spec, "parameters"),
                       "spec.parameters or spec.nasConfig must be specified");
    } else if (json_object_get(spec, "nasConfig")) {
        invalid(c, spec, "nasConfig", "spec",
                "only one of spec.parameters and spec.nasConfig can be specified");
    } else if (ty_hpo_space_parse(params, &space, &err) < 0) {
        /* hpo's message names the field itself ("spec.parameters[1]...: ...") */
        ty_field_errors_add(c->errs, "spec.parameters", ty_pos_member(c, spec, "parameters"),
                            "%s", err.msg);
        ty_error_clear(&err);
    }
    if (json_object_get(spec, "nasConfig"))
        invalid(c, spec, "nasConfig", "spec.nasConfig",
                "neural architecture search (nasConfig) is not supported by trainyard");

    json_t *algo = json_object_get(spec, "algorithm");
    const char *an = json_string_value(json_object_get(algo, "algorithmName"));
    if (!json_is_object(algo)) {
        ty_fe_required(c, "spec.algorithm", ty_pos_key(c, spec, "algorithm"),
                       "must be specified");
    } else if (!an || !*an) {
        ty_fe_required(c, "spec.algorithm.algorithmName", ty_pos_key(c, algo, "algorithmName"),
                       "must be specified");
    } else if (space) {
        ty_hpo_setting st[64];
        size_t ns = settings_of(algo, st, 64);
        ty_hpo_options opt = {
            .maximize = type && strcmp(type, "maximize") == 0,
            .parallel_trial_count = json_is_integer(par) ? (int)json_integer_value(par) : 0,
            .max_trial_count = json_is_integer(max) ? (int)json_integer_value(max) : 0};
        ty_hpo_suggester *s = NULL;
        if (ty_hpo_suggester_new(space, an, st, ns, &opt, &s, &err) < 0) {
            invalid(c, algo, "algorithmName", "spec.algorithm.algorithmName", err.msg);
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
        if (!en || !*en)
            ty_fe_required(c, "spec.earlyStopping.algorithmName",
                           ty_pos_key(c, es, "algorithmName"), "must be specified");
        else if (ty_hpo_medianstop_parse(en, st, ns, &ms, &err) < 0)
            invalid(c, es, "algorithmName", "spec.earlyStopping.algorithmName", err.msg);
        ty_error_clear(&err);
    }
    const char *rp = json_string_value(json_object_get(spec, "resumePolicy"));
    if (rp && strcmp(rp, "FromVolume") == 0)
        invalid(c, spec, "resumePolicy", "spec.resumePolicy",
                "resumePolicy FromVolume is not supported by trainyard (Never, LongRunning)");

    check_trial_template(c, spec, space);

    json_t *mcs = json_object_get(spec, "metricsCollectorSpec");
    json_t *coll = json_object_get(mcs, "collector");
    const char *ck = json_string_value(json_object_get(coll, "kind"));
    static const char *const kinds[] = {"StdOut", "File", "Push", "None"};
    bool known = false;
    for (size_t k = 0; ck && k < TY_ARRAY_LEN(kinds); k++)
        known |= strcmp(ck, kinds[k]) == 0;
    if (ck && !known)
        invalid(c, coll, "kind", "spec.metricsCollectorSpec.collector.kind",
                "trainyard collects metrics of kind StdOut, File, Push or None");
    if (ck && strcmp(ck, "File") == 0) {
        json_t *fsp = json_object_get(json_object_get(mcs, "source"), "fileSystemPath");
        const char *path = json_string_value(json_object_get(fsp, "path"));
        const char *fk = json_string_value(json_object_get(fsp, "kind"));
        if (!path || path[0] != '/' || (fk && strcmp(fk, "File") != 0))
            ty_fe_required(c, "spec.metricsCollectorSpec.source",
                           ty_pos_key(c, mcs, "source"),
                           "file path where metrics file exists is required by "
                           "spec.metricsCollectorSpec.source.fileSystemPath.path");
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
