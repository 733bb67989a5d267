/* serving.kserve.io admission: KServe's defaults and its webhook's messages, the runtimes'
 * rules, Knative's annotations as KServe passes them on. */
#include <criterion/criterion.h>
#include <string.h>

#include "api/api.h"
#include "base/buf.h"
#include "base/mem.h"

static json_t *load(const char *text)
{
    char *s = ty_strdup(text);
    for (char *p = s; *p; p++)
        if (*p == '\'')
            *p = '"';
    json_error_t jerr;
    json_t *obj = json_loads(s, 0, &jerr);
    cr_assert(obj, "bad test json: %s: %s", jerr.text, s);
    free(s);
    return obj;
}

/* Admits `text`; asserts exactly the errors `want` ("path\tmessage", NULL-ended). */
static json_t *expect(const char *text, const char *const *want)
{
    json_t *obj = load(text);
    ty_field_errors errs = TY_FIELD_ERRORS_INIT;
    int rc = ty_api_admit(NULL, obj, &errs);
    ty_buf all = TY_BUF_INIT;
    ty_field_errors_format(&errs, NULL, &all);
    size_t n = 0;
    while (want[n])
        n++;
    cr_assert_eq(errs.count, n, "want %zu errors, got:\n%s", n, all.data ? all.data : "");
    cr_assert_eq(rc, n ? -1 : 0);
    for (size_t i = 0; i < n; i++) {
        char *got = ty_asprintf("%s\t%s", errs.items[i].path, errs.items[i].msg);
        cr_assert_str_eq(got, want[i]);
        free(got);
    }
    ty_buf_free(&all);
    ty_field_errors_free(&errs);
    return obj;
}

#define ISVC(name, ann, pred)                                                                \
    "{'apiVersion': 'serving.kserve.io/v1beta1', 'kind': 'InferenceService', 'metadata': "   \
    "{'name': '" name "', 'annotations': {" ann "}}, 'spec': {'predictor': " pred "}}"
#define MODEL "'model': {'modelFormat': {'name': 'sklearn'}, 'storageUri': 'file:///m'}"

Test(api_serving, model_container_defaults_to_kserve_container)
{
    static const char *const none[] = {NULL};
    json_t *o = expect(ISVC("ok", "", "{" MODEL "}"), none);
    cr_assert_str_eq(json_string_value(json_object_get(
                         json_object_get(json_object_get(json_object_get(o, "spec"), "predictor"),
                                         "model"),
                         "name")),
                     "kserve-container");
    json_decref(o);
    /* a custom predictor, pvc://, a local path */
    json_decref(expect(ISVC("c", "", "{'containers': [{'name': 'c', 'image': 'x'}]}"), none));
    json_decref(expect(ISVC("p", "", "{'model': {'modelFormat': {'name': 'x'}, 'storageUri': "
                                     "'pvc://claim/dir'}}"), none));
    json_decref(expect(ISVC("l", "", "{'model': {'modelFormat': {'name': 'x'}, 'storageUri': "
                                     "'/models/m'}}"), none));
}

Test(api_serving, webhook_messages)
{
    static const char *const replicas[] = {
        "spec.predictor.minReplicas\t'MinReplicas' cannot be greater than MaxReplicas", NULL};
    json_decref(expect(ISVC("a", "", "{" MODEL ", 'minReplicas': 3, 'maxReplicas': 2}"), replicas));
    static const char *const neg[] = {
        "spec.predictor.minReplicas\t'MinReplicas' cannot be less than 0",
        "spec.predictor.containerConcurrency\tparallelism cannot be less than 0", NULL};
    json_decref(expect(ISVC("a", "", "{" MODEL ", 'minReplicas': -1, 'containerConcurrency': -2}"), neg));
    static const char *const one[] = {
        "spec.predictor\texactly one of [Model, Containers] must be specified in PredictorSpec", NULL};
    json_decref(expect(ISVC("a", "", "{}"), one));
    static const char *const uri[] = {
        "spec.predictor.model.storageUri\tstorageUri, must be one of: [gs://, s3://, pvc://, "
        "file://, https://, http://, hdfs://, webhdfs://, oci://, hf://] or match "
        "https://{}.blob.core.windows.net/{}/{} or be an absolute or relative local path. "
        "StorageUri [ftp://h/m] is not supported", NULL};
    json_decref(expect(ISVC("a", "", "{'model': {'modelFormat': {'name': 'x'}, 'storageUri': "
                                     "'ftp://h/m'}}"), uri));
    static const char *const name[] = {
        "metadata.name\tthe InferenceService \"9a\" is invalid: a InferenceService name must "
        "consist of lower case alphanumeric characters or '-', and must start with alphabetical "
        "character. (e.g. \"my-name\" or \"abc-123\", regex used for validation is "
        "'[a-z]([-a-z0-9]*[a-z0-9])?')", NULL};
    json_decref(expect(ISVC("9a", "", "{" MODEL "}"), name));
    static const char *const canary[] = {
        "spec.predictor.canaryTrafficPercent\tInvalid value: 101: must be between 0 and 100", NULL};
    json_decref(expect(ISVC("a", "", "{" MODEL ", 'canaryTrafficPercent': 101}"), canary));
    static const char *const window[] = {
        "metadata.annotations\texpected 6s <= 1s <= 1h0m0s: autoscaling.knative.dev/window", NULL};
    json_decref(expect(ISVC("a", "'autoscaling.knative.dev/window': '1s'", "{" MODEL "}"), window));
    static const char *const cpu[] = {
        "spec.predictor.scaleMetric\tthe scale metric \"cpu\" needs the HPA autoscaler class, "
        "which trainyard does not run: use concurrency or rps", NULL};
    json_decref(expect(ISVC("a", "", "{" MODEL ", 'scaleMetric': 'cpu'}"), cpu));
}

Test(api_serving, runtimes)
{
    static const char *const prio[] = {
        "spec.supportedModelFormats[0].priority\tinvalid values for priority of model format x, "
        "it should be greater than 0", NULL};
    json_decref(expect("{'apiVersion': 'serving.kserve.io/v1alpha1', 'kind': "
                       "'ClusterServingRuntime', 'metadata': {'name': 'r'}, 'spec': "
                       "{'supportedModelFormats': [{'name': 'x', 'priority': 0}], "
                       "'containers': [{'name': 'c', 'image': 'i'}]}}", prio));
    static const char *const none[] = {NULL};
    json_decref(expect("{'apiVersion': 'serving.kserve.io/v1alpha1', 'kind': 'ServingRuntime', "
                       "'metadata': {'name': 'r'}, 'spec': {'supportedModelFormats': [{'name': "
                       "'x', 'autoSelect': true}], 'containers': [{'name': 'c', 'image': 'i', "
                       "'args': ['--model_name={{.Name}}']}]}}", none));
}
