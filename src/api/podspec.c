/* Rules of a pod spec that hold wherever one appears: in a Pod, and in the templates of the
 * kinds that make pods (their own rules call these). */
#include <string.h>

#include "api/api.h"
#include "api/api_int.h"
#include "base/fs.h"

void ty_check_volume_mounts(ty_schema_ctx *c, json_t *ct, ty_buf *path)
{
    static const char *const keys[] = {"subPath", "subPathExpr"};
    json_t *mounts = json_object_get(ct, "volumeMounts");
    size_t i;
    json_t *vm;
    json_array_foreach(mounts, i, vm) {
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
            json_t *v = json_object_get(vm, keys[k]);
            const char *why = json_is_string(v) ? ty_path_local_error(json_string_value(v)) : NULL;
            if (!why)
                continue;
            size_t l = ty_path_key(path, "volumeMounts");
            ty_path_index(path, i);
            ty_path_key(path, keys[k]);
            ty_fe_invalid(c, path->data, ty_pos_member(c, vm, keys[k]), v, "%s", why);
            ty_path_pop(path, l);
        }
    }
}

int ty_api_check_pod(json_t *pod, ty_field_errors *errs)
{
    static const char *const lists[] = {"initContainers", "containers", "ephemeralContainers"};
    ty_schema_ctx c = {.m = NULL, .errs = errs};
    size_t before = errs->count;
    json_t *spec = json_object_get(pod, "spec");
    TY_AUTOBUF ty_buf path = TY_BUF_INIT;
    for (size_t l = 0; l < sizeof lists / sizeof lists[0]; l++) {
        json_t *cts = json_object_get(spec, lists[l]);
        size_t i;
        json_t *ct;
        json_array_foreach(cts, i, ct) {
            ty_buf_reset(&path);
            ty_path_key(&path, "spec");
            ty_path_key(&path, lists[l]);
            ty_path_index(&path, i);
            ty_check_volume_mounts(&c, ct, &path);
        }
    }
    return errs->count > before ? -1 : 0;
}
