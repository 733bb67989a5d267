/* PersistentVolume and PersistentVolumeClaim admission: Kubernetes' defaults, field paths and
 * messages. */
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

#define PVC(spec) "{'apiVersion': 'v1', 'kind': 'PersistentVolumeClaim', 'metadata': {'name': 'd'}, " \
                  "'spec': " spec "}"
#define PV(spec) "{'apiVersion': 'v1', 'kind': 'PersistentVolume', 'metadata': {'name': 'v'}, " \
                 "'spec': " spec "}"

Test(api_storage, claim_defaults)
{
    static const char *const none[] = {NULL};
    json_t *obj = expect(PVC("{'accessModes': ['ReadWriteOnce'], 'resources': {'requests':"
                             " {'storage': '1Gi'}}}"), none);
    json_t *want = load(PVC("{'accessModes': ['ReadWriteOnce'], 'resources': {'requests':"
                            " {'storage': '1Gi'}}, 'storageClassName': 'standard',"
                            " 'volumeMode': 'Filesystem'}"));
    json_object_set_new(json_object_get(want, "metadata"), "namespace", json_string("default"));
    json_object_set_new(want, "status", json_pack("{s:s}", "phase", "Pending"));
    cr_assert(json_equal(obj, want), "%s", json_dumps(obj, JSON_SORT_KEYS));
    json_decref(want);
    json_decref(obj);
    /* An explicit "" (no dynamic provisioning) stays. */
    obj = expect(PVC("{'accessModes': ['ReadWriteOnce'], 'storageClassName': '',"
                     " 'resources': {'requests': {'storage': 1}}}"), none);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(obj, "spec"),
                                                       "storageClassName")), "");
    json_decref(obj);
}

Test(api_storage, claim_rules)
{
    json_decref(expect(PVC("{}"), (const char *const[]){
        "spec.accessModes\tRequired value: at least 1 access mode is required",
        "spec.resources[storage]\tRequired value", NULL}));
    json_decref(expect(PVC("{'accessModes': ['Foo'], 'resources': {'requests': {'storage': '0'}}}"),
                       (const char *const[]){
        "spec.accessModes\tUnsupported value: \"Foo\": supported values: \"ReadOnlyMany\", "
        "\"ReadWriteMany\", \"ReadWriteOnce\", \"ReadWriteOncePod\"",
        "spec.resources[storage]\tInvalid value: \"0\": must be greater than zero", NULL}));
    json_decref(expect(PVC("{'accessModes': ['ReadWriteOncePod', 'ReadWriteOnce'],"
                           " 'resources': {'requests': {'storage': '1Gi'}}}"),
                       (const char *const[]){"spec.accessModes\tForbidden: may not use "
                                             "ReadWriteOncePod with other access modes", NULL}));
}

Test(api_storage, claim_spec_is_immutable_but_for_requests)
{
    json_t *old = load(PVC("{'accessModes': ['ReadWriteOnce'], 'resources': {'requests':"
                           " {'storage': '1Gi'}}, 'volumeName': 'pv-1'}"));
    json_t *bigger = load(PVC("{'accessModes': ['ReadWriteOnce'], 'resources': {'requests':"
                              " {'storage': '2Gi'}}}"));
    json_t *modes = load(PVC("{'accessModes': ['ReadWriteMany'], 'resources': {'requests':"
                             " {'storage': '1Gi'}}}"));
    ty_field_errors errs = TY_FIELD_ERRORS_INIT;
    cr_assert_eq(ty_api_check_update(bigger, old, &errs), 0);
    cr_assert_eq(ty_api_check_update(modes, old, &errs), -1);
    cr_assert_str_eq(errs.items[0].path, "spec");
    cr_assert(strstr(errs.items[0].msg, "Forbidden: spec is immutable after creation"));
    ty_field_errors_free(&errs);
    json_decref(old);
    json_decref(bigger);
    json_decref(modes);
}

Test(api_storage, volume_rules_and_defaults)
{
    static const char *const none[] = {NULL};
    json_t *obj = expect(PV("{'accessModes': ['ReadWriteOnce'], 'capacity': {'storage': '5Gi'},"
                            " 'hostPath': {'path': '/srv/v'}}"), none);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(obj, "spec"),
                                                       "persistentVolumeReclaimPolicy")),
                     "Retain");
    cr_assert_null(json_object_get(json_object_get(obj, "metadata"), "namespace"));
    json_decref(obj);
    json_decref(expect(PV("{}"), (const char *const[]){
        "spec.accessModes\tRequired value: at least 1 access mode is required",
        "spec.capacity\tRequired value", "spec\tRequired value: must specify a volume type",
        NULL}));
    json_decref(expect(PV("{'accessModes': ['ReadWriteOnce'], 'capacity': {'cpu': '1'},"
                          " 'persistentVolumeReclaimPolicy': 'Keep',"
                          " 'hostPath': {'path': '/a/../b'}, 'local': {'path': '/c'}}"),
                       (const char *const[]){
        "spec.capacity\tUnsupported value: \"object\": supported values: \"storage\"",
        "spec.persistentVolumeReclaimPolicy\tUnsupported value: \"Keep\": supported values: "
        "\"Delete\", \"Recycle\", \"Retain\"",
        "spec.local\tForbidden: may not specify more than 1 volume type",
        "spec.hostPath.path\tInvalid value: \"/a/../b\": must not contain '..'", NULL}));
}
