/* serving.kserve.io: v1beta1 InferenceService and v1alpha1 ServingRuntime /
 * ClusterServingRuntime, with KServe's defaults (inference_service_defaults.go: the model's
 * container name) and its validating webhook's rules (inference_service_validation.go,
 * component.go: the name, exactly one implementation, replicas, containerConcurrency, the
 * storageUri's scheme; Knative's autoscaling annotations as Knative validates them, which is
 * what KServe passes them on to). The controller is controllers/serving.h. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "api/serving.h"
#include "base/buf.h"
#include "base/error.h"
#include "base/mem.h"
#include "serving/kpa.h"

__asm__(".section .rodata\n"
        ".global ty_schema_serving_v1beta1\n"
        "ty_schema_serving_v1beta1:\n"
        ".incbin \"src/api/schemas/serving.kserve.io_v1beta1.json\"\n"
        ".byte 0\n"
        ".global ty_schema_serving_v1alpha1\n"
        "ty_schema_serving_v1alpha1:\n"
        ".incbin \"src/api/schemas/serving.kserve.io_v1alpha1.json\"\n"
        ".byte 0\n"
        ".previous");
extern const char ty_schema_serving_v1beta1[];
extern const char ty_schema_serving_v1alpha1[];

static const json_t *isvc_schema(void)
{
    static json_t *doc;
    static const json_t *s;
    if (!doc)
        doc = ty_schema_doc_load(ty_schema_serving_v1beta1);
    if (!s)
        s = ty_schema_inline(doc, "io.kserve.serving.v1beta1.InferenceService");
    return s;
}

static const json_t *alpha_doc(void)
{
    static json_t *doc;
    if (!doc)
        doc = ty_schema_doc_load(ty_schema_serving_v1alpha1);
    return doc;
}

static const json_t *sr_schema(void)
{
    static const json_t *s;
    if (!s)
        s = ty_schema_inline(alpha_doc(), "io.kserve.serving.v1alpha1.ServingRuntime");
    return s;
}

static const json_t *csr_schema(void)
{
    static const json_t *s;
    if (!s)
        s = ty_schema_inline(alpha_doc(), "io.kserve.serving.v1alpha1.ClusterServingRuntime");
    return s;
}

static json_t *predictor_of(json_t *obj)
{
    json_t *p = json_object_get(json_object_get(obj, "spec"), "predictor");
    return json_is_object(p) ? p : NULL;
}

/* KServe's defaulter: the model's container is kserve-container. */
static void isvc_defaults(ty_schema_ctx *c, json_t *obj)
{
    (void)c;
    json_t *model = json_object_get(predictor_of(obj), "model");
    if (json_is_object(model) && !json_is_string(json_object_get(model, "name")))
        json_object_set_new(model, "name", json_string(TY_SERVING_CONTAINER));
}

/* The schemes KServe's storage initializer knows (SupportedStorageURIPrefixList); a path
 * without a scheme is a local path. trainyard itself serves file:// and pvc:// (the
 * controller says so on the InferenceService for the others). */
static const char *const storage_prefixes[] = {"gs://", "s3://", "pvc://", "file://", "https://",
                                               "http://", "hdfs://", "webhdfs://", "oci://",
                                               "hf://"};

static bool storage_uri_ok(const char *uri)
{
    for (size_t i = 0; i < TY_ARRAY_LEN(storage_prefixes); i++)
        if (strncmp(uri, storage_prefixes[i], strlen(storage_prefixes[i])) == 0)
            return true;
    return strstr(uri, "://") == NULL;
}

static int64_t int_or(const json_t *o, const char *key, int64_t dflt)
{
    json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? json_integer_value(v) : dflt;
}

static void isvc_rules(ty_schema_ctx *c, json_t *obj)
{
    json_t *meta = json_object_get(obj, "metadata");
    json_t *name = json_object_get(meta, "name");
    if (json_is_string(name) && *json_string_value(name) &&
        ty_check_dns1035_label(json_string_value(name)))
        ty_field_errors_add(c->errs, "metadata.name", ty_pos_member(c, meta, "name"),
                            "the InferenceService \"%s\" is invalid: a InferenceService name "
                            "must consist of lower case alphanumeric characters or '-', and "
                            "must start with alphabetical character. (e.g. \"my-name\" or "
                            "\"abc-123\", regex used for validation is "
                            "'[a-z]([-a-z0-9]*[a-z0-9])?')",
                            json_string_value(name));
    json_t *spec = json_object_get(obj, "spec");
    json_t *pred = predictor_of(obj);
    if (!pred)
        return; /* the schema's required field */
    ty_pos ppos = ty_pos_member(c, spec, "predictor");
    json_t *model = json_object_get(pred, "model");
    json_t *ctrs = json_object_get(pred, "containers");
    bool has_model = json_is_object(model), has_ctrs = json_array_size(ctrs) > 0;
    if (has_model == has_ctrs)
        ty_field_errors_add(c->errs, "spec.predictor", ppos,
                            "exactly one of [Model, Containers] must be specified in "
                            "PredictorSpec");
    if (has_model) {
        json_t *uri = json_object_get(model, "storageUri");
        if (json_is_string(uri) && !storage_uri_ok(json_string_value(uri)))
            ty_field_errors_add(c->errs, "spec.predictor.model.storageUri",
                                ty_pos_member(c, model, "storageUri"),
                                "storageUri, must be one of: [gs://, s3://, pvc://, file://, "
                                "https://, http://, hdfs://, webhdfs://, oci://, hf://] or "
                                "match https://{}.blob.core.windows.net/{}/{} or be an absolute "
                                "or relative local path. StorageUri [%s] is not supported",
                                json_string_value(uri));
        if (!json_is_object(json_object_get(model, "modelFormat")))
            ty_fe_required(c, "spec.predictor.model.modelFormat", ty_pos_member(c, pred, "model"),
                           NULL);
    }
    int64_t minr = int_or(pred, "minReplicas", 1), maxr = int_or(pred, "maxReplicas", 0);
    if (minr < 0)
        ty_field_errors_add(c->errs, "spec.predictor.minReplicas",
                            ty_pos_member(c, pred, "minReplicas"),
                            "'MinReplicas' cannot be less than 0");
    else if (maxr < 0)
        ty_field_errors_add(c->errs, "spec.predictor.maxReplicas",
                            ty_pos_member(c, pred, "maxReplicas"),
                            "'MaxReplicas' cannot be less than 0");
    else if (maxr != 0 && minr > maxr)
        ty_field_errors_add(c->errs, "spec.predictor.minReplicas",
                            ty_pos_member(c, pred, "minReplicas"),
                            "'MinReplicas' cannot be greater than MaxReplicas");
    if (int_or(pred, "containerConcurrency", 0) < 0)
        ty_field_errors_add(c->errs, "spec.predictor.containerConcurrency",
                            ty_pos_member(c, pred, "containerConcurrency"),
                            "parallelism cannot be less than 0");
    json_t *ctp = json_object_get(pred, "canaryTrafficPercent");
    if (json_is_integer(ctp) && (json_integer_value(ctp) < 0 || json_integer_value(ctp) > 100))
        ty_fe_invalid(c, "spec.predictor.canaryTrafficPercent",
                      ty_pos_member(c, pred, "canaryTrafficPercent"), ctp,
                      "must be between 0 and 100");
    json_t *metric = json_object_get(pred, "scaleMetric");
    if (json_is_string(metric) && (strcmp(json_string_value(metric), "cpu") == 0 ||
                                   strcmp(json_string_value(metric), "memory") == 0))
        ty_field_errors_add(c->errs, "spec.predictor.scaleMetric",
                            ty_pos_member(c, pred, "scaleMetric"),
                            "the scale metric \"%s\" needs the HPA autoscaler class, which "
                            "trainyard does not run: use concurrency or rps",
                            json_string_value(metric));
    /* Knative's annotations, on the InferenceService, as KServe passes them on. */
    ty_kpa_config cfg;
    ty_kpa_config_default(&cfg);
    ty_kpa_spec ks;
    ty_error err = {0};
    int64_t cc = int_or(pred, "containerConcurrency", 0);
    if (ty_kpa_spec_from_annotations(&cfg, cc < 0 ? 0 : cc, /* reported above */
                                     json_object_get(meta, "annotations"), &ks, &err) < 0) {
        char *save = NULL;
        for (char *line = strtok_r(err.msg, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
            ty_field_errors_add(c->errs, "metadata.annotations", ty_pos_member(c, meta, "annotations"),
                                "%s", line);
    }
    ty_error_clear(&err);
}

/* The runtime webhook's rules (servingruntime_webhook.go): a model format's priority is
 * positive, and two auto-selected formats of one name do not share a priority. */
static void sr_rules(ty_schema_ctx *c, json_t *obj)
{
    json_t *spec = json_object_get(obj, "spec");
    json_t *fmts = json_object_get(spec, "supportedModelFormats");
    for (size_t i = 0; i < json_array_size(fmts); i++) {
        json_t *f = json_array_get(fmts, i);
        json_t *prio = json_object_get(f, "priority");
        if (json_is_integer(prio) && json_integer_value(prio) <= 0) {
            TY_AUTOBUF ty_buf p = TY_BUF_INIT;
            ty_buf_addf(&p, "spec.supportedModelFormats[%zu].priority", i);
            ty_field_errors_add(c->errs, p.data, ty_pos_member(c, f, "priority"),
                                "invalid values for priority of model format %s, it should be "
                                "greater than 0",
                                json_string_value(json_object_get(f, "name")));
        }
    }
    json_t *ctrs = json_object_get(spec, "containers");
    for (size_t i = 0; i < json_array_size(ctrs); i++) {
        json_t *ct = json_array_get(ctrs, i);
        if (!json_is_string(json_object_get(ct, "name"))) {
            TY_AUTOBUF ty_buf p = TY_BUF_INIT;
            ty_buf_addf(&p, "spec.containers[%zu].name", i);
            ty_fe_required(c, p.data, ty_pos_index(c, ctrs, i), NULL);
        }
    }
}

static void no_defaults(ty_schema_ctx *c, json_t *obj)
{
    (void)c;
    (void)obj;
}

const ty_kind_ops ty_serving_inferenceservice_ops = {
    .schema = isvc_schema,
    .defaults = isvc_defaults,
    .rules = isvc_rules,
    .webhook = "inferenceservice.kserve-webhook-server.validator",
};
const ty_kind_ops ty_serving_servingruntime_ops = {
    .schema = sr_schema,
    .defaults = no_defaults,
    .rules = sr_rules,
    .webhook = "servingruntime.kserve-webhook-server.validator",
};
const ty_kind_ops ty_serving_clusterservingruntime_ops = {
    .schema = csr_schema,
    .defaults = no_defaults,
    .rules = sr_rules,
    .webhook = "clusterservingruntime.kserve-webhook-server.validator",
};
