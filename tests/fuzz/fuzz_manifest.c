/* libFuzzer target for the manifest decoder (and, through the string values it finds, the
 * quantity parser): any input must either parse or fail with a message, never crash, leak or
 * hit undefined behaviour. Build and run: `make fuzz` (FUZZ_TIME=seconds, default 60). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "api/manifest.h"
#include "base/quantity.h"

static void walk(const ty_manifest *m, json_t *v)
{
    if (json_is_object(v)) {
        const char *k;
        json_t *child;
        json_object_foreach(v, k, child) {
            ty_pos a = ty_manifest_pos_member(m, v, k, true);
            ty_pos b = ty_manifest_pos_member(m, v, k, false);
            if (a.line <= 0 || b.line <= 0)
                abort(); /* every parsed member has a position */
            walk(m, child);
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *child;
        json_array_foreach(v, i, child) {
            if (ty_manifest_pos_index(m, v, i).line <= 0)
                abort();
            walk(m, child);
        }
    } else if (json_is_string(v)) {
        ty_quantity q;
        char out[32];
        if (ty_quantity_parse(json_string_value(v), &q, NULL) == 0)
            ty_quantity_format(q, true, out, sizeof(out));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ty_manifest *m = NULL;
    ty_error err = TY_ERROR_INIT;
    if (ty_manifest_parse("fuzz.yaml", (const char *)data, size, &m, &err) == 0) {
        for (size_t i = 0; i < m->ndocs; i++)
            walk(m, m->docs[i].obj);
        ty_manifest_free(m);
    } else if (!err.msg) {
        abort(); /* a failure always says why */
    }
    ty_error_clear(&err);
    return 0;
}
