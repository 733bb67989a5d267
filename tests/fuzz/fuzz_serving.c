/* libFuzzer target for what serving parses from users: Knative's autoscaling annotations
 * (serving/kpa.h: values of every annotation, Go durations), container probes
 * (runtime/probe.c: the probe's fields, HTTP status lines from a probed server). Any input
 * must parse or fail with a message, never crash, leak or hit undefined behaviour. The first
 * byte picks the parser. Build and run: `make fuzz` (FUZZ_TIME=seconds, default 60). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/runtime_int.h"
#include "serving/kpa.h"

static const char *const KEYS[] = {
    "autoscaling.knative.dev/class", "autoscaling.knative.dev/metric",
    "autoscaling.knative.dev/target", "autoscaling.knative.dev/target-utilization-percentage",
    "autoscaling.knative.dev/window", "autoscaling.knative.dev/panic-window-percentage",
    "autoscaling.knative.dev/panic-threshold-percentage",
    "autoscaling.knative.dev/scale-down-delay", "autoscaling.knative.dev/min-scale",
    "autoscaling.knative.dev/max-scale", "autoscaling.knative.dev/initial-scale",
    "autoscaling.knative.dev/activation-scale",
    "autoscaling.knative.dev/metric-aggregation-algorithm",
    "autoscaling.knative.dev/target-burst-capacity",
    "autoscaling.knative.dev/scale-to-zero-pod-retention-period",
};

static void annotations(const char *text)
{
    ty_kpa_config cfg;
    ty_kpa_config_default(&cfg);
    /* the text as every annotation's value, one at a time, then as all of them */
    json_t *all = json_object();
    for (size_t i = 0; i < sizeof KEYS / sizeof *KEYS; i++) {
        json_t *one = json_pack("{s:s}", KEYS[i], text);
        if (!one)
            continue; /* not UTF-8 */
        json_object_set_new(all, KEYS[i], json_string(text));
        ty_kpa_spec sp;
        ty_error err = TY_ERROR_INIT;
        if (ty_kpa_spec_from_annotations(&cfg, 0, one, &sp, &err) < 0 && !err.msg)
            abort(); /* a failure always says why */
        ty_error_clear(&err);
        json_decref(one);
    }
    ty_kpa_spec sp;
    ty_error err = TY_ERROR_INIT;
    if (ty_kpa_spec_from_annotations(&cfg, 10, all, &sp, &err) == 0) {
        ty_kpa a;
        ty_kpa_init(&a, &sp, 2, 1700000000LL * TY_KPA_NS_PER_S);
        for (int i = 0; i < 5; i++) {
            int64_t t = (1700000000LL + i) * TY_KPA_NS_PER_S;
            ty_kpa_record(&a, t, i * 37.5);
            ty_kpa_step(&a, i, t, NULL);
        }
        ty_kpa_free(&a);
    } else if (!err.msg) {
        abort();
    }
    ty_error_clear(&err);
    json_decref(all);
    int64_t ns;
    ty_kpa_parse_duration(text, &ns);
}

static void probe(const char *text)
{
    json_t *p = json_loads(text, JSON_DECODE_ANY, NULL);
    json_t *ctr = json_pack("{s:s, s:[{s:s, s:i}]}", "name", "c", "ports", "name", "web",
                            "containerPort", 8080);
    for (int kind = 0; kind < 3 && p; kind++) {
        ty_rt_probe_spec sp;
        ty_error err = TY_ERROR_INIT;
        if (ty_rt_probe_parse(p, ctr, (ty_rt_probe_kind)kind, &sp, &err) < 0 && !err.msg)
            abort();
        ty_error_clear(&err);
        ty_rt_probe_spec_free(&sp);
    }
    json_decref(p);
    json_decref(ctr);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    char *text = malloc(size);
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    switch (data[0] % 3) {
    case 0: annotations(text); break;
    case 1: probe(text); break;
    default: ty_rt_probe_http_status(text, size - 1); break;
    }
    free(text);
    return 0;
}
