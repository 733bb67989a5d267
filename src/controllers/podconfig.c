/* ConfigMaps, Secrets and the downward API into a pod's copy (podconfig.h), as the kubelet's
 * volume plugins (configmap, secret, downwardapi, projected) and its env resolution do. */
#include "controllers/podconfig.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base64.h"
#include "base/buf.h"
#include "base/fs.h"
#include "base/mem.h"
#include "base/quantity.h"

/* The kubelet's default file mode for these volumes (0644). */
#define DEFAULT_MODE 0644

typedef struct resolver {
    ty_store *store;
    json_t *pod;
    const char *ns;
    ty_podconfig_wait *wait;
    ty_error *err;
} resolver;

static const char *str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static int wait_for(resolver *r, const char *reason, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int wait_for(resolver *r, const char *reason, const char *event, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->wait->message, sizeof r->wait->message, fmt, ap);
    va_end(ap);
    r->wait->reason = reason;
    r->wait->event = event;
    return 1;
}

/* ---- values ---------------------------------------------------------------------------- */

/* The ConfigMap or Secret of that name in the pod's namespace, or NULL. */
static json_t *source_of(resolver *r, bool secret, const char *name)
{
    return name ? ty_store_get(r->store, secret ? "secrets" : "configmaps", r->ns, name) : NULL;
}

/* The bytes of `key` (NUL-terminated, caller frees), or NULL when the object has no such key:
 * a ConfigMap's data as written or its binaryData decoded, a Secret's data decoded. */
static char *value_of(const json_t *obj, bool secret, const char *key, size_t *len)
{
    const char *text = str(json_object_get(obj, "data"), key);
    if (text && !secret) {
        *len = strlen(text);
        return ty_strdup(text);
    }
    if (!secret)
        text = str(json_object_get(obj, "binaryData"), key);
    return text ? (char *)ty_base64_decode(text, strlen(text), false, len) : NULL;
}

/* Kubernetes quotes label and annotation values as Go's %q does (for ASCII). */
static void add_quoted(ty_buf *b, const char *s)
{
    ty_buf_addc(b, '"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            ty_buf_addf(b, "\\%c", *p);
        else if (*p == '\n')
            ty_buf_adds(b, "\\n");
        else if (*p == '\t')
            ty_buf_adds(b, "\\t");
        else if (*p < 0x20 || *p == 0x7f)
            ty_buf_addf(b, "\\x%02x", *p);
        else
            ty_buf_addc(b, (char)*p);
    }
    ty_buf_addc(b, '"');
}

static int by_key(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* All labels or annotations, one `key="value"` a line in key order (fieldpath.FormatMap). */
static char *format_map(const json_t *m)
{
    size_t n = json_object_size(m), i = 0;
    const char **keys = ty_calloc(n + 1, sizeof(char *));
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)m, k, v) keys[i++] = k;
    qsort(keys, n, sizeof(char *), by_key);
    ty_buf b = TY_BUF_INIT;
    for (i = 0; i < n; i++) {
        ty_buf_addf(&b, "%s%s=", i ? "\n" : "", keys[i]);
        add_quoted(&b, str(m, keys[i]) ? str(m, keys[i]) : "");
    }
    free(keys);
    return b.data ? ty_buf_steal(&b) : ty_strdup("");
}

/* A downward API fieldRef a volume may name (metadata only, as the API validates it). */
static int field_value(resolver *r, const char *path, char **out)
{
    const json_t *meta = json_object_get(r->pod, "metadata");
    static const char *const plain[] = {"metadata.name", "metadata.namespace", "metadata.uid"};
    for (size_t i = 0; i < TY_ARRAY_LEN(plain); i++)
        if (strcmp(path, plain[i]) == 0) {
            *out = ty_strdup(str(meta, plain[i] + 9) ? str(meta, plain[i] + 9) : "");
            return 0;
        }
    if (strcmp(path, "metadata.labels") == 0 || strcmp(path, "metadata.annotations") == 0) {
        *out = format_map(json_object_get(meta, path + 9));
        return 0;
    }
    const char *sub[] = {"metadata.labels['", "metadata.annotations['"};
    for (size_t i = 0; i < 2; i++) {
        size_t n = strlen(sub[i]);
        size_t len = strlen(path);
        if (strncmp(path, sub[i], n) == 0 && len > n + 2 && strcmp(path + len - 2, "']") == 0) {
            TY_AUTOFREE char *key = ty_strndup(path + n, len - n - 2);
            const char *v = str(json_object_get(meta, i ? "annotations" : "labels"), key);
            *out = ty_strdup(v ? v : "");
            return 0;
        }
    }
    return ty_fail(r->err, "fieldRef %s is not supported in a downwardAPI volume", path);
}

static const json_t *container_named(const json_t *pod, const char *name)
{
    static const char *const lists[] = {"containers", "initContainers"};
    for (size_t l = 0; l < 2; l++) {
        size_t i;
        json_t *c;
        json_array_foreach(json_object_get(json_object_get(pod, "spec"), lists[l]), i, c)
            if (name && str(c, "name") && strcmp(str(c, "name"), name) == 0)
                return c;
    }
    return NULL;
}

/* resourceFieldRef: a container's request or limit in units of `divisor`, rounded up; an
 * unset limit is the node's allocatable, as the kubelet reports it. */
static int resource_value(resolver *r, const json_t *ref, const json_t *ctr, char **out)
{
    const char *res = str(ref, "resource");
    if (!ctr)
        ctr = container_named(r->pod, str(ref, "containerName"));
    if (!res || !ctr)
        return ty_fail(r->err, "resourceFieldRef: resource and an existing containerName are "
                               "required");
    const char *dot = strchr(res, '.');
    if (!dot || (strncmp(res, "limits.", 7) != 0 && strncmp(res, "requests.", 9) != 0))
        return ty_fail(r->err, "resourceFieldRef: unsupported resource %s", res);
    TY_AUTOFREE char *group = ty_strndup(res, (size_t)(dot - res));
    const json_t *q = json_object_get(
        json_object_get(json_object_get(ctr, "resources"), group), dot + 1);
    json_t *node = NULL;
    if (!q && strcmp(group, "limits") == 0) {
        const char *node_name = str(json_object_get(r->pod, "spec"), "nodeName");
        node = node_name ? ty_store_get(r->store, "nodes", "", node_name) : NULL;
        q = json_object_get(json_object_get(json_object_get(node, "status"), "allocatable"),
                            dot + 1);
    }
    ty_quantity v = {0}, div = {1000};
    int rc = 0;
    if ((q && ty_quantity_from_json(q, &v, r->err) < 0) ||
        (json_object_get(ref, "divisor") &&
         ty_quantity_from_json(json_object_get(ref, "divisor"), &div, r->err) < 0))
        rc = ty_error_wrap(r->err, "resourceFieldRef %s", res);
    else if (div.milli <= 0)
        rc = ty_fail(r->err, "resourceFieldRef %s: divisor must be positive", res);
    else
        *out = ty_asprintf("%lld", (long long)((v.milli + div.milli - 1) / div.milli));
    json_decref(node);
    return rc;
}

/* ---- volumes --------------------------------------------------------------------------- */

static int add_file(resolver *r, json_t *files, const char *path, json_int_t mode,
                    const char *data, size_t len)
{
    const char *why = ty_path_local_error(path);
    if (why || !*path)
        return ty_fail(r->err, "file path %s %s", path, why ? why : "must not be empty");
    TY_AUTOFREE char *enc = ty_base64_encode(data, len, false);
    json_array_append_new(files, json_pack("{s:s, s:I, s:s}", "path", path, "mode", mode,
                                           "data", enc));
    return 0;
}

static json_int_t mode_of(const json_t *o, json_int_t fallback)
{
    json_t *m = json_object_get(o, "mode");
    return json_is_integer(m) ? json_integer_value(m) & 07777 : fallback;
}

/* A configMap or secret source (a volume's, or a projected volume's) into files. */
static int project_object(resolver *r, const char *vname, const json_t *src, bool secret,
                          json_int_t mode, json_t *files)
{
    const char *name = str(src, secret ? "secretName" : "name");
    if (secret && !name)
        name = str(src, "name"); /* a projected secret source names it "name" */
    bool optional = json_is_true(json_object_get(src, "optional"));
    const char *what = secret ? "secret" : "configmap";
    json_t *obj = source_of(r, secret, name);
    int rc = 0;
    if (!obj) {
        if (!optional)
            rc = wait_for(r, "ContainerCreating", "FailedMount",
                          "MountVolume.SetUp failed for volume \"%s\" : %s \"%s\" not found",
                          vname, what, name ? name : "");
        goto out;
    }
    json_t *items = json_object_get(src, "items");
    if (json_array_size(items)) {
        size_t i;
        json_t *it;
        json_array_foreach(items, i, it) {
            const char *key = str(it, "key"), *path = str(it, "path");
            size_t len = 0;
            TY_AUTOFREE char *v = key ? value_of(obj, secret, key, &len) : NULL;
            if (!v) {
                if (optional)
                    continue;
                rc = wait_for(r, "ContainerCreating", "FailedMount",
                              "MountVolume.SetUp failed for volume \"%s\" : configmap references "
                              "non-existent config key: %s",
                              vname, key ? key : "");
                if (secret)
                    snprintf(r->wait->message, sizeof r->wait->message,
                             "MountVolume.SetUp failed for volume \"%s\" : references "
                             "non-existent secret key: %s",
                             vname, key ? key : "");
                goto out;
            }
            if ((rc = add_file(r, files, path ? path : "", mode_of(it, mode), v, len)) < 0)
                goto out;
        }
        goto out;
    }
    static const char *const maps[] = {"data", "binaryData"};
    for (size_t m = 0; m < (secret ? 1u : 2u); m++) {
        const char *key;
        json_t *v;
        json_object_foreach(json_object_get(obj, maps[m]), key, v) {
            size_t len = 0;
            TY_AUTOFREE char *bytes = value_of(obj, secret, key, &len);
            if (bytes && (rc = add_file(r, files, key, mode, bytes, len)) < 0)
                goto out;
        }
    }
out:
    json_decref(obj);
    return rc;
}

static int project_downward(resolver *r, const json_t *src, json_int_t mode, json_t *files)
{
    size_t i;
    json_t *it;
    json_array_foreach(json_object_get(src, "items"), i, it) {
        TY_AUTOFREE char *v = NULL;
        const char *fp = str(json_object_get(it, "fieldRef"), "fieldPath");
        json_t *rf = json_object_get(it, "resourceFieldRef");
        int rc = fp ? field_value(r, fp, &v)
                    : rf ? resource_value(r, rf, NULL, &v)
                         : ty_fail(r->err, "items[%zu]: fieldRef or resourceFieldRef is required",
                                   i);
        if (rc < 0 || add_file(r, files, str(it, "path") ? str(it, "path") : "",
                               mode_of(it, mode), v, strlen(v)) < 0)
            return -1;
    }
    return 0;
}

static json_int_t default_mode(const json_t *src)
{
    json_t *m = json_object_get(src, "defaultMode");
    return json_is_integer(m) ? json_integer_value(m) & 07777 : DEFAULT_MODE;
}

/* One volume: 0 rewritten (or not one of these), 1 wait, -1 error. */
static int resolve_volume(resolver *r, json_t *vol)
{
    static const char *const kinds[] = {"configMap", "secret", "downwardAPI", "projected"};
    size_t k = 0;
    while (k < TY_ARRAY_LEN(kinds) && !json_object_get(vol, kinds[k]))
        k++;
    if (k == TY_ARRAY_LEN(kinds))
        return 0;
    const char *vname = str(vol, "name") ? str(vol, "name") : "";
    json_t *src = json_object_get(vol, kinds[k]);
    json_int_t mode = default_mode(src);
    json_t *files = json_array();
    int rc = 0;
    if (k <= 1) {
        rc = project_object(r, vname, src, k == 1, mode, files);
    } else if (k == 2) {
        rc = project_downward(r, src, mode, files);
    } else {
        size_t i;
        json_t *s;
        json_array_foreach(json_object_get(src, "sources"), i, s) {
            if (json_object_get(s, "configMap"))
                rc = project_object(r, vname, json_object_get(s, "configMap"), false, mode,
                                    files);
            else if (json_object_get(s, "secret"))
                rc = project_object(r, vname, json_object_get(s, "secret"), true, mode, files);
            else if (json_object_get(s, "downwardAPI"))
                rc = project_downward(r, json_object_get(s, "downwardAPI"), mode, files);
            if (rc)
                break;
        }
    }
    if (rc < 0)
        ty_error_wrap(r->err, "volume %s", vname);
    if (rc == 0) {
        json_object_del(vol, kinds[k]);
        json_object_set_new(vol, "trainyardFiles", files);
    } else {
        json_decref(files);
    }
    return rc;
}

/* ---- environment ----------------------------------------------------------------------- */

/* A value taken as written: the runtime's $(VAR) expansion must leave it alone ($ -> $$). */
static json_t *literal(const char *v)
{
    TY_AUTOBUF ty_buf b = TY_BUF_INIT;
    for (const char *p = v; *p; p++) {
        if (*p == '$')
            ty_buf_addc(&b, '$');
        ty_buf_addc(&b, *p);
    }
    return json_string(b.data ? b.data : ""); /* NULL: not UTF-8 */
}

static bool literal_ok(const char *v)
{
    json_t *j = json_string(v);
    json_decref(j);
    return j != NULL;
}

/* env[i].valueFrom of a ConfigMap or Secret key: 0 set (or left out when optional and
 * missing), 1 wait. */
static int env_from_key(resolver *r, json_t *item, const json_t *ref, bool secret,
                        bool *drop)
{
    const char *name = str(ref, "name"), *key = str(ref, "key");
    bool optional = json_is_true(json_object_get(ref, "optional"));
    json_t *obj = source_of(r, secret, name);
    size_t len = 0;
    TY_AUTOFREE char *v = obj && key ? value_of(obj, secret, key, &len) : NULL;
    int rc = 0;
    if (!v && optional) {
        *drop = true;
    } else if (!obj) {
        rc = wait_for(r, "CreateContainerConfigError", "Failed", "%s \"%s\" not found",
                      secret ? "secret" : "configmap", name ? name : "");
    } else if (!v) {
        rc = wait_for(r, "CreateContainerConfigError", "Failed",
                      "couldn't find key %s in %s %s/%s", key ? key : "",
                      secret ? "Secret" : "ConfigMap", r->ns, name);
    } else if (!literal_ok(v)) {
        rc = ty_fail(r->err, "env %s: key %s of %s %s is not UTF-8 text", str(item, "name"), key,
                     secret ? "Secret" : "ConfigMap", name);
    } else {
        json_object_del(item, "valueFrom");
        json_object_set_new(item, "value", literal(v));
    }
    json_decref(obj);
    return rc;
}

/* envFrom: every key of the ConfigMap or Secret (prefixed), before the container's env, which
 * wins on a repeated name as in Kubernetes. */
static int env_from_all(resolver *r, const json_t *from, json_t *out)
{
    bool secret = json_object_get(from, "secretRef") != NULL;
    const json_t *ref = json_object_get(from, secret ? "secretRef" : "configMapRef");
    if (!ref)
        return 0;
    const char *name = str(ref, "name");
    json_t *obj = source_of(r, secret, name);
    if (!obj)
        return json_is_true(json_object_get(ref, "optional"))
                   ? 0
                   : wait_for(r, "CreateContainerConfigError", "Failed", "%s \"%s\" not found",
                              secret ? "secret" : "configmap", name ? name : "");
    const char *prefix = str(from, "prefix") ? str(from, "prefix") : "";
    static const char *const maps[] = {"data", "binaryData"};
    for (size_t m = 0; m < (secret ? 1u : 2u); m++) {
        const char *key;
        json_t *v;
        json_object_foreach(json_object_get(obj, maps[m]), key, v) {
            size_t len = 0;
            TY_AUTOFREE char *bytes = value_of(obj, secret, key, &len);
            TY_AUTOFREE char *var = ty_asprintf("%s%s", prefix, key);
            if (bytes && !strchr(var, '=') && literal_ok(bytes))
                json_array_append_new(out, json_pack("{s:s, s:o}", "name", var, "value",
                                                     literal(bytes)));
        }
    }
    json_decref(obj);
    return 0;
}

static int resolve_container(resolver *r, json_t *ctr)
{
    json_t *env = json_array();
    size_t i;
    json_t *item;
    int rc = 0;
    json_array_foreach(json_object_get(ctr, "envFrom"), i, item)
        if ((rc = env_from_all(r, item, env)) != 0)
            goto out;
    json_array_foreach(json_object_get(ctr, "env"), i, item) {
        json_t *copy = json_deep_copy(item);
        const json_t *from = json_object_get(item, "valueFrom");
        bool drop = false;
        if (json_object_get(from, "configMapKeyRef"))
            rc = env_from_key(r, copy, json_object_get(from, "configMapKeyRef"), false, &drop);
        else if (json_object_get(from, "secretKeyRef"))
            rc = env_from_key(r, copy, json_object_get(from, "secretKeyRef"), true, &drop);
        else if (json_object_get(from, "resourceFieldRef")) {
            TY_AUTOFREE char *v = NULL;
            rc = resource_value(r, json_object_get(from, "resourceFieldRef"), ctr, &v);
            if (rc == 0) {
                json_object_del(copy, "valueFrom");
                json_object_set_new(copy, "value", json_string(v));
            }
        }
        if (rc != 0) {
            json_decref(copy);
            goto out;
        }
        if (drop)
            json_decref(copy);
        else
            json_array_append_new(env, copy);
    }
    json_object_set(ctr, "env", env);
    json_object_del(ctr, "envFrom");
out:
    json_decref(env);
    if (rc < 0)
        ty_error_wrap(r->err, "container %s", str(ctr, "name") ? str(ctr, "name") : "");
    return rc;
}

int ty_podconfig_resolve(ty_store *store, json_t *pod, ty_podconfig_wait *wait, ty_error *err)
{
    json_t *meta = json_object_get(pod, "metadata");
    resolver r = {store, pod, str(meta, "namespace") ? str(meta, "namespace") : "default",
                  wait, err};
    json_t *spec = json_object_get(pod, "spec");
    size_t i;
    json_t *v;
    /* volumes first: the kubelet mounts before it makes any container's config */
    json_array_foreach(json_object_get(spec, "volumes"), i, v) {
        int rc = resolve_volume(&r, v);
        if (rc)
            return rc;
    }
    static const char *const lists[] = {"initContainers", "containers"};
    for (size_t l = 0; l < 2; l++)
        json_array_foreach(json_object_get(spec, lists[l]), i, v) {
            int rc = resolve_container(&r, v);
            if (rc)
                return rc;
        }
    return 0;
}

bool ty_podconfig_is_wait(const char *message)
{
    return message && (strncmp(message, "configmap \"", 11) == 0 ||
                       strncmp(message, "secret \"", 8) == 0 ||
                       strncmp(message, "couldn't find key ", 18) == 0);
}
