/* libFuzzer target for what the API server parses from a request besides the body's YAML:
 * label and field selectors (query parameters) and patch documents (JSON patch, merge patch,
 * strategic merge patch applied to a fixed pod). Any input must parse or fail with a message,
 * never crash, leak or hit undefined behaviour. The first byte picks the parser. Build and
 * run: `make fuzz` (FUZZ_TIME=seconds, default 60). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/patch.h"
#include "api/selector.h"

static const char POD[] =
    "{\"metadata\":{\"name\":\"p\",\"labels\":{\"a\":\"1\"},\"finalizers\":[\"f\"]},"
    "\"spec\":{\"containers\":[{\"name\":\"c\",\"env\":[{\"name\":\"E\",\"value\":\"v\"}],"
    "\"ports\":[{\"containerPort\":80}]}],\"volumes\":[{\"name\":\"v\",\"emptyDir\":{}}]},"
    "\"status\":{\"phase\":\"Running\",\"conditions\":[{\"type\":\"Ready\"}]}}";

static void selectors(const char *text, json_t *pod)
{
    ty_selector *s = NULL;
    ty_error err = TY_ERROR_INIT;
    if (ty_label_selector_parse(text, &s, &err) == 0) {
        ty_label_selector_matches(s, pod);
        ty_selector_free(s);
    } else if (!err.msg) {
        abort(); /* a failure always says why */
    }
    ty_error_clear(&err);
    if (ty_field_selector_parse("pods", text, &s, &err) == 0) {
        ty_field_selector_matches(s, pod);
        ty_selector_free(s);
    } else if (!err.msg) {
        abort();
    }
    ty_error_clear(&err);
}

static void patches(int which, const char *text, size_t len, json_t *pod)
{
    json_t *p = json_loadb(text, len, JSON_DECODE_ANY, NULL);
    if (!p)
        return;
    json_t *out = NULL;
    ty_error err = TY_ERROR_INIT;
    int rc = which == 1   ? ty_patch_json(pod, p, &out, &err)
             : which == 2 ? ty_patch_merge(pod, p, &out, &err)
                          : ty_patch_strategic("pods", pod, p, &out, &err);
    if ((rc == 0) != (out != NULL) || (rc < 0 && !err.msg))
        abort();
    json_decref(out);
    json_decref(p);
    ty_error_clear(&err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    char *text = malloc(size);
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    json_t *pod = json_loads(POD, 0, NULL);
    if (data[0] % 4 == 0)
        selectors(text, pod);
    else
        patches(data[0] % 4, text, size - 1, pod);
    json_decref(pod);
    free(text);
    return 0;
}
