/* Katib: the gjson subset of trial success/failure conditions (controllers/gjson.h) and the
 * Experiment's defaults and webhook rules (api/katib.c) through ty_api_admit. */
#include <criterion/criterion.h>
#include <string.h>

#include "api/api.h"
#include "api/validate.h"
#include "base/buf.h"
#include "controllers/gjson.h"

static json_t *load(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, 0, &e);
    cr_assert(v, "%s", e.text);
    return v;
}

#define COMPLETE "status.conditions.#(type==\"Complete\")#|#(status==\"True\")#"
#define FAILED "status.conditions.#(type==\"Failed\")#|#(status==\"True\")#"

Test(gjson, katib_default_conditions)
{
    json_t *running = load("{\"status\":{\"active\":1}}");
    json_t *done = load("{\"status\":{\"conditions\":[{\"type\":\"SuccessCriteriaMet\","
                        "\"status\":\"True\"},{\"type\":\"Complete\",\"status\":\"True\"}]}}");
    json_t *pending = load("{\"status\":{\"conditions\":[{\"type\":\"Complete\","
                           "\"status\":\"False\"}]}}");
    cr_assert(!ty_gjson_condition(running, COMPLETE));
    cr_assert(!ty_gjson_condition(running, FAILED));
    cr_assert(ty_gjson_condition(done, COMPLETE));
    cr_assert(!ty_gjson_condition(done, FAILED));
    cr_assert(!ty_gjson_condition(pending, COMPLETE));
    json_decref(running);
    json_decref(done);
    json_decref(pending);
}

Test(gjson, paths_counts_first_match_and_operators)
{
    json_t *o = load("{\"a\":{\"b\":[{\"n\":1,\"s\":\"x\"},{\"n\":5,\"s\":\"yz\"}]},"
                     "\"f\":false,\"e\":\"\"}");
    json_t *v = ty_gjson_get(o, "a.b.#");
    cr_assert_eq(json_integer_value(v), 2);
    json_decref(v);
    v = ty_gjson_get(o, "a.b.1.s");
    cr_assert_str_eq(json_string_value(v), "yz");
    json_decref(v);
    v = ty_gjson_get(o, "a.b.#(n>2).s");
    cr_assert_str_eq(json_string_value(v), "yz");
    json_decref(v);
    cr_assert(ty_gjson_condition(o, "a.b.#(s%\"y*\")"));
    cr_assert(!ty_gjson_condition(o, "a.b.#(n>=6)#"));
    cr_assert(ty_gjson_condition(o, "a.b.#(n!=1)#"));
    cr_assert(!ty_gjson_condition(o, "f"));
    cr_assert(!ty_gjson_condition(o, "e"));
    cr_assert(!ty_gjson_condition(o, "missing.key"));
    json_decref(o);
}

static const char *EXP =
    "{\"apiVersion\":\"kubeflow.org/v1beta1\",\"kind\":\"Experiment\","
    "\"metadata\":{\"name\":\"e\",\"namespace\":\"default\"},\"spec\":{"
    "\"objective\":{\"type\":\"maximize\",\"objectiveMetricName\":\"acc\","
    "\"additionalMetricNames\":[\"loss\"]},"
    "\"algorithm\":{\"algorithmName\":\"random\"},\"maxTrialCount\":4,"
    "\"parameters\":[{\"name\":\"x\",\"parameterType\":\"double\","
    "\"feasibleSpace\":{\"min\":\"0\",\"max\":\"1\"}}],"
    "\"trialTemplate\":{\"primaryContainerName\":\"m\",\"trialParameters\":[{\"name\":\"x\",\"reference\":\"x\"}],"
    "\"trialSpec\":{\"apiVersion\":\"batch/v1\",\"kind\":\"Job\",\"spec\":{\"template\":"
    "{\"spec\":{\"containers\":[{\"name\":\"m\",\"command\":[\"echo\",\"${trialParameters.x}\"]"
    "}]}}}}}}}";

Test(katib, webhook_defaults)
{
    json_t *e = load(EXP);
    ty_field_errors errs = {0};
    cr_assert_eq(ty_api_admit(NULL, e, &errs), 0);
    json_t *spec = json_object_get(e, "spec");
    cr_assert_eq(json_integer_value(json_object_get(spec, "parallelTrialCount")), 3);
    cr_assert_str_eq(json_string_value(json_object_get(spec, "resumePolicy")), "Never");
    json_t *want = load("[{\"name\":\"acc\",\"value\":\"max\"},{\"name\":\"loss\","
                        "\"value\":\"max\"}]");
    cr_assert(json_equal(json_object_get(json_object_get(spec, "objective"), "metricStrategies"),
                         want));
    json_t *tt = json_object_get(spec, "trialTemplate");
    cr_assert_str_eq(json_string_value(json_object_get(tt, "failureCondition")), FAILED);
    json_decref(want);
    json_decref(e);
    ty_field_errors_free(&errs);
}

Test(katib, webhook_rules_with_katib_messages)
{
    json_t *e = load(EXP);
    json_t *spec = json_object_get(e, "spec");
    json_object_set_new(spec, "maxFailedTrialCount", json_integer(9));
    json_object_set_new(json_object_get(spec, "algorithm"), "algorithmName",
                        json_string("annealing"));
    json_t *tt = json_object_get(spec, "trialTemplate");
    json_array_append_new(json_object_get(tt, "trialParameters"),
                          json_pack("{s:s, s:s}", "name", "x", "reference", "other"));
    json_array_append_new(json_object_get(tt, "trialParameters"),
                          json_pack("{s:s, s:s}", "name", "w", "reference", "nope"));
    ty_field_errors errs = {0};
    cr_assert_lt(ty_api_admit(NULL, e, &errs), 0);
    ty_buf b = TY_BUF_INIT;
    ty_field_errors_format(&errs, "e.yaml", &b);
    cr_assert(strstr(b.data, "spec.maxFailedTrialCount: Invalid value: 9: should be less than or "
                             "equal to spec.maxTrialCount"), "%s", b.data);
    cr_assert(strstr(b.data, "annealing"), "%s", b.data);
    cr_assert(strstr(b.data, "parameter reference nope does not exist in spec.parameters"), "%s",
              b.data);
    cr_assert(strstr(b.data, "parameter name x can't be duplicated"), "%s", b.data);
    ty_buf_free(&b);
    ty_field_errors_free(&errs);
    json_decref(e);
}
