/* Core v1 PersistentVolume and PersistentVolumeClaim, ConfigMap and Secret: the volumes and
 * the data pods mount. The parts of Kubernetes' defaults and validation
 * (pkg/apis/core/v1/defaults.go, pkg/apis/core/validation) that one machine needs, with
 * Kubernetes' field paths and messages. */
#include <string.h>

#include "api/api_int.h"
#include "api/storage.h"
#include "base/base64.h"
#include "base/mem.h"
#include "base/quantity.h"

__asm__(".section .rodata\n"
        ".global ty_schema_core_v1_storage\n"
        "ty_schema_core_v1_storage:\n"
        ".incbin \"src/api/schemas/core_v1_storage.json\"\n"
        ".byte 0\n"
        ".previous");
extern const char ty_schema_core_v1_storage[];

static const json_t *schema_of(const char *name)
{
    static json_t *doc;
    if (!doc)
        doc = ty_schema_doc_load(ty_schema_core_v1_storage);
    return ty_schema_inline(doc, name);
}

static const json_t *pv_schema(void)
{
    static const json_t *s;
    if (!s)
        s = schema_of("io.k8s.api.core.v1.PersistentVolume");
    return s;
}

static const json_t *pvc_schema(void)
{
    static const json_t *s;
    if (!s)
        s = schema_of("io.k8s.api.core.v1.PersistentVolumeClaim");
    return s;
}

/* supportedAccessModes, sorted as Kubernetes lists them. */
static const char *const access_modes[] = {"ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce",
                                           "ReadWriteOncePod"};
static const char *const reclaim_policies[] = {"Delete", "Recycle", "Retain"};
/* The volume sources a PersistentVolume may name here. */
static const char *const sources[] = {"hostPath", "local", "nfs", "csi"};

static json_t *member_object(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (!v) {
        v = json_object();
        json_object_set_new(obj, key, v);
    }
    return json_is_object(v) ? v : NULL;
}

static void set_default(json_t *obj, const char *key, const char *value)
{
    if (json_is_object(obj) && !json_object_get(obj, key))
        json_object_set_new(obj, key, json_string(value));
}

/* ---------- defaults ---------- */

/* A new claim waits (Pending) for the binder; an unset class is the default one (the
 * DefaultStorageClass admission plugin), an unset mode Filesystem. */
static void pvc_defaults(ty_schema_ctx *c, json_t *obj)
{
    (void)c;
    json_t *spec = json_object_get(obj, "spec");
    set_default(spec, "storageClassName", TY_STORAGE_DEFAULT_CLASS);
    set_default(spec, "volumeMode", "Filesystem");
    set_default(member_object(obj, "status"), "phase", "Pending");
}

/* A volume made by hand is Retained by default (SetDefaults_PersistentVolume) and Pending
 * until the binder sees it. */
static void pv_defaults(ty_schema_ctx *c, json_t *obj)
{
    (void)c;
    json_t *spec = json_object_get(obj, "spec");
    set_default(spec, "persistentVolumeReclaimPolicy", "Retain");
    set_default(spec, "volumeMode", "Filesystem");
    set_default(member_object(obj, "status"), "phase", "Pending");
}

/* ---------- rules ---------- */

/* ValidatePersistentVolumeClaimSpec's and ValidatePersistentVolumeSpec's access modes. */
static void check_access_modes(ty_schema_ctx *c, json_t *spec)
{
    json_t *modes = json_object_get(spec, "accessModes");
    ty_pos pos = ty_pos_member(c, spec, "accessModes");
    if (!json_is_array(modes) || json_array_size(modes) == 0) {
        if (!modes || json_is_array(modes))
            ty_fe_required(c, "spec.accessModes", pos, "at least 1 access mode is required");
        return;
    }
    bool once_pod = false;
    size_t i;
    json_t *m;
    json_array_foreach(modes, i, m) {
        const char *s = json_string_value(m);
        if (!s)
            continue;
        bool ok = false;
        for (size_t k = 0; k < TY_ARRAY_LEN(access_modes); k++)
            ok = ok || strcmp(s, access_modes[k]) == 0;
        if (!ok)
            ty_fe_unsupported(c, "spec.accessModes", ty_pos_index(c, modes, i), m, access_modes,
                              TY_ARRAY_LEN(access_modes));
        once_pod = once_pod || strcmp(s, "ReadWriteOncePod") == 0;
    }
    if (once_pod && json_array_size(modes) > 1)
        ty_fe_forbidden(c, "spec.accessModes", pos,
                        "may not use ReadWriteOncePod with other access modes");
}

/* ValidatePositiveQuantityValue of map[key] (`path` names it: "spec.resources[storage]"). */
static void check_positive(ty_schema_ctx *c, const char *path, json_t *map, const char *key)
{
    json_t *v = json_object_get(map, key);
    ty_quantity q;
    if (ty_quantity_from_json(v, &q, NULL) == 0 && q.milli <= 0)
        ty_fe_invalid(c, path, ty_pos_member(c, map, key), v, "must be greater than zero");
}

static void check_class(ty_schema_ctx *c, json_t *spec)
{
    json_t *cls = json_object_get(spec, "storageClassName");
    const char *why = json_is_string(cls) && *json_string_value(cls)
                          ? ty_check_dns1123_subdomain(json_string_value(cls))
                          : NULL;
    if (why)
        ty_fe_invalid(c, "spec.storageClassName", ty_pos_member(c, spec, "storageClassName"), cls,
                      "%s", why);
}

static void pvc_rules(ty_schema_ctx *c, json_t *obj)
{
    json_t *spec = json_object_get(obj, "spec");
    if (!json_is_object(spec)) {
        if (!spec)
            ty_fe_required(c, "spec.accessModes", (ty_pos){0, 0},
                           "at least 1 access mode is required");
        if (!spec)
            ty_fe_required(c, "spec.resources[storage]", (ty_pos){0, 0}, NULL);
        return;
    }
    check_access_modes(c, spec);
    json_t *req = json_object_get(json_object_get(spec, "resources"), "requests");
    if (!json_object_get(req, "storage"))
        ty_fe_required(c, "spec.resources[storage]", ty_pos_member(c, spec, "resources"), NULL);
    else
        check_positive(c, "spec.resources[storage]", req, "storage");
    check_class(c, spec);
}

/* ValidatePersistentVolumeClaimUpdate: the spec is fixed once created, but for a bigger
 * storage request (and the binder's volumeName). */
static void pvc_update(ty_schema_ctx *c, const json_t *obj, const json_t *old)
{
    json_t *now = json_deep_copy(json_object_get(obj, "spec"));
    json_t *was = json_deep_copy(json_object_get(old, "spec"));
    if (!json_is_object(now) || !json_is_object(was))
        goto out;
    json_object_del(json_object_get(now, "resources"), "requests");
    json_object_del(json_object_get(was, "resources"), "requests");
    if (!json_object_get(now, "volumeName"))
        json_object_del(was, "volumeName");
    if (!json_equal(now, was))
        ty_fe_forbidden(c, "spec", (ty_pos){0, 0},
                        "spec is immutable after creation except resources.requests and "
                        "volumeAttributesClassName for bound claims");
out:
    json_decref(now);
    json_decref(was);
}

static void pv_rules(ty_schema_ctx *c, json_t *obj)
{
    json_t *spec = json_object_get(obj, "spec");
    if (!json_is_object(spec)) {
        if (!spec)
            ty_fe_required(c, "spec", (ty_pos){0, 0}, "must specify a volume type");
        return;
    }
    check_access_modes(c, spec);
    json_t *cap = json_object_get(spec, "capacity");
    ty_pos cpos = ty_pos_member(c, spec, "capacity");
    if (!json_is_object(cap) || json_object_size(cap) == 0) {
        if (!cap || json_is_object(cap))
            ty_fe_required(c, "spec.capacity", cpos, NULL);
    } else if (!json_object_get(cap, "storage") || json_object_size(cap) > 1) {
        static const char *const storage[] = {"storage"};
        ty_fe_unsupported(c, "spec.capacity", cpos, cap, storage, 1);
    } else {
        check_positive(c, "spec.capacity[storage]", cap, "storage");
    }
    json_t *policy = json_object_get(spec, "persistentVolumeReclaimPolicy");
    if (json_is_string(policy)) {
        bool ok = false;
        for (size_t i = 0; i < TY_ARRAY_LEN(reclaim_policies); i++)
            ok = ok || strcmp(json_string_value(policy), reclaim_policies[i]) == 0;
        if (!ok)
            ty_fe_unsupported(c, "spec.persistentVolumeReclaimPolicy",
                              ty_pos_member(c, spec, "persistentVolumeReclaimPolicy"), policy,
                              reclaim_policies, TY_ARRAY_LEN(reclaim_policies));
    }
    size_t n = 0;
    for (size_t i = 0; i < TY_ARRAY_LEN(sources); i++) {
        if (!json_object_get(spec, sources[i]))
            continue;
        if (n++) {
            TY_AUTOFREE char *path = ty_asprintf("spec.%s", sources[i]);
            ty_fe_forbidden(c, path, ty_pos_member(c, spec, sources[i]),
                            "may not specify more than 1 volume type");
        }
    }
    if (n == 0)
        ty_fe_required(c, "spec", ty_pos_member(c, obj, "spec"), "must specify a volume type");
    static const char *const paths[] = {"hostPath", "local"};
    for (size_t i = 0; i < TY_ARRAY_LEN(paths); i++) {
        json_t *p = json_object_get(json_object_get(spec, paths[i]), "path");
        if (!json_is_string(p))
            continue;
        TY_AUTOFREE char *path = ty_asprintf("spec.%s.path", paths[i]);
        const char *s = json_string_value(p);
        if (strcmp(s, "..") == 0 || strncmp(s, "../", 3) == 0 || strstr(s, "/../") ||
            (strlen(s) >= 3 && strcmp(s + strlen(s) - 3, "/..") == 0))
            ty_fe_invalid(c, path, ty_pos_member(c, json_object_get(spec, paths[i]), "path"), p,
                          "must not contain '..'");
    }
    check_class(c, spec);
}

/* ---------- ConfigMap and Secret ---------- */

static const json_t *configmap_schema(void)
{
    static const json_t *s;
    if (!s)
        s = schema_of("io.k8s.api.core.v1.ConfigMap");
    return s;
}

static const json_t *secret_schema(void)
{
    static const json_t *s;
    if (!s)
        s = schema_of("io.k8s.api.core.v1.Secret");
    return s;
}

/* IsConfigMapKey: NULL when `key` may name a ConfigMap's or Secret's value, else why not. */
static const char *config_key_error(const char *key)
{
    size_t n = strlen(key);
    if (n > 253)
        return "must be no more than 253 characters";
    if (n == 0 || strspn(key, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                              "0123456789-._") != n)
        return "a valid config key must consist of alphanumeric characters, '-', '_' or '.' "
               "(e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation "
               "is '[-._a-zA-Z0-9]+')";
    if (strcmp(key, ".") == 0)
        return "must not be '.'";
    if (strcmp(key, "..") == 0)
        return "must not be '..'";
    if (strncmp(key, "..", 2) == 0)
        return "must not start with '..'";
    return NULL;
}

/* IsConfigMapKey for every key of data[field]; adds each value's size (decoded when
 * `base64`, as Kubernetes counts bytes) to *total. A value that is not base64 where it must be
 * is refused here (the API server fails to decode the body). */
static void check_config_keys(ty_schema_ctx *c, json_t *obj, const char *field, bool base64,
                              size_t *total)
{
    json_t *data = json_object_get(obj, field);
    const char *key;
    json_t *v;
    json_object_foreach(data, key, v) {
        TY_AUTOFREE char *path = ty_asprintf("%s[%s]", field, key);
        json_t *jkey = json_string(key);
        const char *why = config_key_error(key);
        if (why)
            ty_fe_invalid(c, path, ty_pos_key(c, data, key), jkey, "%s", why);
        json_decref(jkey);
        if (!json_is_string(v))
            continue; /* the schema said so */
        size_t len = json_string_length(v);
        if (base64) {
            TY_AUTOFREE unsigned char *raw = ty_base64_decode(json_string_value(v), len, false,
                                                              &len);
            if (!raw) {
                ty_fe_invalid(c, path, ty_pos_member(c, data, key), NULL,
                              "illegal base64 data");
                continue;
            }
        }
        *total += len;
    }
}

/* A Secret's stringData is written over data, base64-encoded, and never stored
 * (the v1 conversion does this on every write). */
static void secret_defaults(ty_schema_ctx *c, json_t *obj)
{
    (void)c;
    set_default(obj, "type", "Opaque");
    json_t *clear = json_object_get(obj, "stringData");
    if (!json_is_object(clear))
        return;
    json_t *data = member_object(obj, "data");
    const char *key;
    json_t *v;
    json_object_foreach(clear, key, v) {
        if (!data || !json_is_string(v))
            continue;
        TY_AUTOFREE char *enc = ty_base64_encode(json_string_value(v), json_string_length(v),
                                                 false);
        json_object_set_new(data, key, json_string(enc));
    }
    json_object_del(obj, "stringData");
}

static void configmap_defaults(ty_schema_ctx *c, json_t *obj)
{
    (void)c;
    (void)obj;
}

/* MaxSecretSize bounds a ConfigMap's data and binaryData as a Secret's data. */
#define MAX_CONFIG_BYTES (1u << 20)

static void configmap_rules(ty_schema_ctx *c, json_t *obj)
{
    size_t total = 0;
    check_config_keys(c, obj, "data", false, &total);
    check_config_keys(c, obj, "binaryData", true, &total);
    json_t *data = json_object_get(obj, "data");
    json_t *bin = json_object_get(obj, "binaryData");
    const char *key;
    json_t *v;
    json_object_foreach(data, key, v) {
        if (!json_object_get(bin, key))
            continue;
        TY_AUTOFREE char *path = ty_asprintf("data[%s]", key);
        json_t *jkey = json_string(key);
        ty_fe_invalid(c, path, ty_pos_key(c, data, key), jkey,
                      "duplicate of key present in binaryData");
        json_decref(jkey);
    }
    if (total > MAX_CONFIG_BYTES)
        ty_field_errors_add(c->errs, "", (ty_pos){0, 0},
                            "Too long: may not be more than %u bytes", MAX_CONFIG_BYTES);
}

/* The keys each well-known Secret type must hold (ValidateSecret). */
static void require_key(ty_schema_ctx *c, json_t *obj, const char *key)
{
    if (json_object_get(json_object_get(obj, "data"), key))
        return;
    TY_AUTOFREE char *path = ty_asprintf("data[%s]", key);
    ty_fe_required(c, path, ty_pos_member(c, obj, "data"), NULL);
}

static void secret_rules(ty_schema_ctx *c, json_t *obj)
{
    size_t total = 0;
    check_config_keys(c, obj, "data", true, &total);
    if (total > MAX_CONFIG_BYTES)
        ty_field_errors_add(c->errs, "data", ty_pos_member(c, obj, "data"),
                            "Too long: may not be more than %u bytes", MAX_CONFIG_BYTES);
    const char *type = json_string_value(json_object_get(obj, "type"));
    json_t *data = json_object_get(obj, "data");
    if (!type)
        return;
    if (strcmp(type, "kubernetes.io/service-account-token") == 0) {
        json_t *ann = json_object_get(json_object_get(obj, "metadata"), "annotations");
        if (!json_string_value(json_object_get(ann, "kubernetes.io/service-account.name")))
            ty_fe_required(c, "metadata.annotations[kubernetes.io/service-account.name]",
                           ty_pos_member(c, obj, "metadata"), NULL);
    } else if (strcmp(type, "kubernetes.io/dockercfg") == 0) {
        require_key(c, obj, ".dockercfg");
    } else if (strcmp(type, "kubernetes.io/dockerconfigjson") == 0) {
        require_key(c, obj, ".dockerconfigjson");
    } else if (strcmp(type, "kubernetes.io/basic-auth") == 0) {
        if (!json_object_get(data, "username") && !json_object_get(data, "password")) {
            require_key(c, obj, "username");
            require_key(c, obj, "password");
        }
    } else if (strcmp(type, "kubernetes.io/ssh-auth") == 0) {
        require_key(c, obj, "ssh-privatekey");
    } else if (strcmp(type, "kubernetes.io/tls") == 0) {
        require_key(c, obj, "tls.key");
        require_key(c, obj, "tls.crt");
    }
}

/* An immutable ConfigMap or Secret keeps its data (and stays immutable). */
static void check_immutable(ty_schema_ctx *c, const json_t *obj, const json_t *old,
                            const char *const *fields, size_t n)
{
    if (!json_is_true(json_object_get(old, "immutable")))
        return;
    static const char why[] = "field is immutable when `immutable` is set";
    if (!json_is_true(json_object_get(obj, "immutable")))
        ty_fe_forbidden(c, "immutable", (ty_pos){0, 0}, why);
    for (size_t i = 0; i < n; i++) {
        json_t *now = json_object_get(obj, fields[i]);
        json_t *was = json_object_get(old, fields[i]);
        bool empty_now = !now || json_object_size(now) == 0;
        bool empty_was = !was || json_object_size(was) == 0;
        if (!(empty_now && empty_was) && !json_equal(now, was))
            ty_fe_forbidden(c, fields[i], (ty_pos){0, 0}, why);
    }
}

static void configmap_update(ty_schema_ctx *c, const json_t *obj, const json_t *old)
{
    static const char *const fields[] = {"data", "binaryData"};
    check_immutable(c, obj, old, fields, 2);
}

static void secret_update(ty_schema_ctx *c, const json_t *obj, const json_t *old)
{
    static const char *const fields[] = {"data"};
    json_t *type = json_object_get(obj, "type");
    if (!json_equal(type, json_object_get(old, "type")))
        ty_fe_invalid(c, "type", (ty_pos){0, 0}, type, "field is immutable");
    check_immutable(c, obj, old, fields, 1);
}

/* ---------- kinds ---------- */

const ty_kind_ops ty_core_persistentvolume_ops = {pv_schema, pv_defaults, pv_rules};
const ty_kind_ops ty_core_persistentvolumeclaim_ops = {pvc_schema, pvc_defaults,
                                                       pvc_rules, pvc_update};
const ty_kind_ops ty_core_configmap_ops = {configmap_schema, configmap_defaults, configmap_rules,
                                           configmap_update};
const ty_kind_ops ty_core_secret_ops = {secret_schema, secret_defaults, secret_rules,
                                        secret_update};
