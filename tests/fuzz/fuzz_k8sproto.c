/* libFuzzer target: the protobuf request bodies the API server decodes (api/k8sproto.h). */
#include <stddef.h>
#include <stdint.h>

#include "api/k8sproto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *obj = NULL;
    ty_error err = TY_ERROR_INIT;
    if (ty_k8sproto_decode(data, size, &obj, &err) == 0)
        json_decref(obj);
    ty_error_clear(&err);
    return 0;
}
