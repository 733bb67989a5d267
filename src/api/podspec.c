/* Rules of a pod spec that hold wherever one appears: in a Pod, and in the templates of the
 * kinds that make pods (their own rules call these). */
#include <stdbool.h>
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

/* IsValidPortName: 1-15 lowercase letters, digits and '-', a letter among them, no '-' at
 * either end or twice in a row. NULL when valid. */
static const char *port_name_error(const char *n)
{
    size_t len = strlen(n);
    if (len == 0 || len > 15)
        return "must be no more than 15 characters";
    bool letter = false;
    for (size_t i = 0; i < len; i++) {
        char ch = n[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-'))
            return "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)";
        letter |= ch >= 'a' && ch <= 'z';
        if (ch == '-' && i > 0 && n[i - 1] == '-')
            return "must not contain consecutive hyphens";
    }
    if (n[0] == '-' || n[len - 1] == '-')
        return "must not begin or end with a hyphen";
    if (!letter)
        return "must contain at least one letter (a-z)";
    return NULL;
}

/* A probe's port: a number 1-65535 or a port name (grpc: a number only). */
static void check_probe_port(ty_schema_ctx *c, json_t *h, ty_buf *path, bool number_only)
{
    size_t l = ty_path_key(path, "port");
    json_t *port = json_object_get(h, "port");
    ty_pos pos = ty_pos_member(c, h, "port");
    if (!port) {
        ty_fe_required(c, path->data, ty_pos_key(c, h, "port"), NULL);
    } else if (json_is_integer(port)) {
        json_int_t n = json_integer_value(port);
        if (n < 1 || n > 65535)
            ty_fe_invalid(c, path->data, pos, port, "must be between 1 and 65535, inclusive");
    } else if (json_is_string(port) && !number_only) {
        const char *why = port_name_error(json_string_value(port));
        if (why)
            ty_fe_invalid(c, path->data, pos, port, "%s", why);
    } else {
        ty_fe_invalid(c, path->data, pos, port, "must be between 1 and 65535, inclusive");
    }
    ty_path_pop(path, l);
}

/* A container's probes, as the API server's validateProbe checks them: one handler, its
 * port, no negative timing, successThreshold 1 for liveness and startup; none on an init
 * container. `path` ends at the container. */
void ty_check_probes(ty_schema_ctx *c, json_t *ct, ty_buf *path, bool init)
{
    static const char *const probes[] = {"livenessProbe", "readinessProbe", "startupProbe"};
    static const char *const handlers[] = {"exec", "httpGet", "tcpSocket", "grpc"};
    static const char *const timing[] = {"initialDelaySeconds", "timeoutSeconds",
                                         "periodSeconds", "successThreshold",
                                         "failureThreshold"};
    for (size_t k = 0; k < 3; k++) {
        json_t *p = json_object_get(ct, probes[k]);
        if (!json_is_object(p))
            continue;
        size_t l = ty_path_key(path, probes[k]);
        ty_pos pos = ty_pos_member(c, ct, probes[k]);
        if (init) {
            ty_fe_forbidden(c, path->data, pos, "may not be set for init containers without "
                                                "restartPolicy=Always");
            ty_path_pop(path, l);
            continue;
        }
        int n = 0;
        for (size_t h = 0; h < 4; h++) {
            json_t *hv = json_object_get(p, handlers[h]);
            if (!hv)
                continue;
            size_t l2 = ty_path_key(path, handlers[h]);
            if (++n > 1) {
                ty_fe_forbidden(c, path->data, ty_pos_member(c, p, handlers[h]),
                                "may not specify more than 1 handler type");
            } else if (h == 0) {
                json_t *cmd = json_object_get(hv, "command");
                if (!json_array_size(cmd)) {
                    size_t l3 = ty_path_key(path, "command");
                    ty_fe_required(c, path->data, ty_pos_key(c, hv, "command"), NULL);
                    ty_path_pop(path, l3);
                }
            } else {
                check_probe_port(c, hv, path, h == 3);
                json_t *scheme = json_object_get(hv, "scheme");
                static const char *const schemes[] = {"HTTP", "HTTPS"};
                if (h == 1 && scheme && !(json_is_string(scheme) &&
                                          (strcmp(json_string_value(scheme), "HTTP") == 0 ||
                                           strcmp(json_string_value(scheme), "HTTPS") == 0))) {
                    size_t l3 = ty_path_key(path, "scheme");
                    ty_fe_unsupported(c, path->data, ty_pos_member(c, hv, "scheme"), scheme,
                                      schemes, 2);
                    ty_path_pop(path, l3);
                }
                size_t i;
                json_t *hdr;
                json_array_foreach(h == 1 ? json_object_get(hv, "httpHeaders") : NULL, i, hdr)
                {
                    json_t *name = json_object_get(hdr, "name");
                    const char *nm = json_string_value(name);
                    bool ok = nm && *nm;
                    for (const char *q = nm; ok && *q; q++)
                        ok = (*q >= 'A' && *q <= 'Z') || (*q >= 'a' && *q <= 'z') ||
                             (*q >= '0' && *q <= '9') || *q == '-';
                    if (ok)
                        continue;
                    size_t l3 = ty_path_key(path, "httpHeaders");
                    ty_path_index(path, i);
                    ty_path_key(path, "name");
                    ty_fe_invalid(c, path->data, ty_pos_member(c, hdr, "name"), name,
                                  "a valid HTTP header must consist of alphanumeric characters "
                                  "or '-' (e.g. 'X-Header-Name', regex used for validation is "
                                  "'[-A-Za-z0-9]+')");
                    ty_path_pop(path, l3);
                }
            }
            ty_path_pop(path, l2);
        }
        if (n == 0)
            ty_fe_required(c, path->data, pos, "must specify a handler type");
        for (size_t t = 0; t < 5; t++) {
            json_t *v = json_object_get(p, timing[t]);
            if (!json_is_integer(v) || json_integer_value(v) >= 0)
                continue;
            size_t l2 = ty_path_key(path, timing[t]);
            ty_fe_invalid(c, path->data, ty_pos_member(c, p, timing[t]), v,
                          "must be greater than or equal to 0");
            ty_path_pop(path, l2);
        }
        json_t *st = json_object_get(p, "successThreshold");
        if (k != 1 && json_is_integer(st) && json_integer_value(st) > 1) {
            size_t l2 = ty_path_key(path, "successThreshold");
            ty_fe_invalid(c, path->data, ty_pos_member(c, p, "successThreshold"), st,
                          "must be 1");
            ty_path_pop(path, l2);
        }
        json_t *g = json_object_get(p, "terminationGracePeriodSeconds");
        if (json_is_integer(g) && json_integer_value(g) <= 0) {
            size_t l2 = ty_path_key(path, "terminationGracePeriodSeconds");
            ty_fe_invalid(c, path->data, ty_pos_member(c, p, "terminationGracePeriodSeconds"),
                          g, "must be greater than 0");
            ty_path_pop(path, l2);
        }
        ty_path_pop(path, l);
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
            ty_check_probes(&c, ct, &path, l == 0);
        }
    }
    return errs->count > before ? -1 : 0;
}
