/* Services' cluster IPs through the store (store/svcip.c). */
#include <criterion/criterion.h>
#include <string.h>

#include "store/store.h"

static ty_store *s;

static void setup(void) { s = ty_store_new(); }
static void teardown(void) { ty_store_free(s); }
TestSuite(svcip, .init = setup, .fini = teardown);

/* Creates Service `name` with clusterIP `ip` (NULL: none); returns its stored clusterIP (a
 * static copy) or NULL with *err set. */
static const char *create(const char *name, const char *ip, ty_error *err)
{
    static char out[64];
    json_t *svc = json_pack("{s:s, s:s, s:{s:s}, s:{s:[{s:i}]}}", "apiVersion", "v1", "kind",
                            "Service", "metadata", "name", name, "spec", "ports", "port", 80);
    if (ip)
        json_object_set_new(json_object_get(svc, "spec"), "clusterIP", json_string(ip));
    json_t *stored = NULL;
    int rc = ty_store_create(s, "services", svc, &stored, err);
    json_decref(svc);
    if (rc < 0)
        return NULL;
    json_t *spec = json_object_get(stored, "spec");
    snprintf(out, sizeof out, "%s", json_string_value(json_object_get(spec, "clusterIP")));
    cr_assert_str_eq(json_string_value(json_array_get(json_object_get(spec, "clusterIPs"), 0)),
                     out);
    json_decref(stored);
    return out;
}

Test(svcip, allocates_unique_addresses_in_the_range)
{
    ty_error err = TY_ERROR_INIT;
    cr_assert_eq(ty_store_set_service_cidr(s, "10.100.0.0/28", &err), 0);
    /* 16 addresses: network and broadcast excluded, 14 to hand out */
    char seen[16] = {0};
    for (int i = 0; i < 14; i++) {
        char name[16];
        snprintf(name, sizeof name, "s%d", i);
        const char *ip = create(name, NULL, &err);
        cr_assert(ip, "%s", err.msg);
        cr_assert_eq(strncmp(ip, "10.100.0.", 9), 0, "%s", ip);
        int last = atoi(ip + 9);
        cr_assert(last >= 1 && last <= 14, "%s", ip);
        cr_assert_not(seen[last], "%s twice", ip);
        seen[last] = 1;
    }
    cr_assert_null(create("full", NULL, &err));
    cr_assert_eq(err.code, TY_STORE_INTERNAL);
    cr_assert_str_eq(err.msg, "failed to allocate a serviceIP: range is full");
    ty_error_clear(&err);
    /* a delete frees its address for the next */
    json_t *s3 = ty_store_get(s, "services", "default", "s3");
    const char *freed = json_string_value(json_object_get(json_object_get(s3, "spec"),
                                                          "clusterIP"));
    char want[32];
    snprintf(want, sizeof want, "%s", freed);
    json_decref(s3);
    cr_assert_eq(ty_store_delete(s, "services", "default", "s3", 0, NULL), 0);
    cr_assert_str_eq(create("again", NULL, &err), want);
}

Test(svcip, asked_addresses_are_checked)
{
    ty_error err = TY_ERROR_INIT;
    cr_assert_str_eq(create("a", "10.96.0.10", &err), "10.96.0.10");
    cr_assert_null(create("b", "10.96.0.10", &err));
    cr_assert_eq(err.code, TY_STORE_INVALID);
    cr_assert_str_eq(err.msg, "spec.clusterIPs: Invalid value: []string{\"10.96.0.10\"}: failed "
                              "to allocate IP 10.96.0.10: provided IP is already allocated");
    cr_assert_null(create("c", "10.0.0.1", &err));
    cr_assert_str_eq(err.msg, "spec.clusterIPs: Invalid value: []string{\"10.0.0.1\"}: failed to "
                              "allocate IP 10.0.0.1: the provided IP (10.0.0.1) is not in the "
                              "valid range. The range of valid IPs is 10.96.0.0/12");
    cr_assert_null(create("d", "10.96.0.0", &err)); /* the network address */
    cr_assert_null(create("e", "not-an-ip", &err));
    cr_assert(strstr(err.msg, "must be a valid IP address"), "%s", err.msg);
    cr_assert_str_eq(create("h", "None", &err), "None");
    cr_assert_str_eq(create("h2", "None", &err), "None");
    ty_error_clear(&err);
    cr_assert_null(ty_store_get(s, "services", "default", "b"));
}

Test(svcip, immutable_on_update)
{
    ty_error err = TY_ERROR_INIT;
    const char *ip = create("a", NULL, &err);
    char had[32];
    snprintf(had, sizeof had, "%s", ip);
    json_t *cur = ty_store_get(s, "services", "default", "a");
    json_t *next = json_deep_copy(cur);
    json_decref(cur);
    json_t *spec = json_object_get(next, "spec");
    json_object_del(spec, "clusterIP"); /* a replace without it keeps it */
    json_object_del(spec, "clusterIPs");
    json_object_set_new(spec, "selector", json_pack("{s:s}", "app", "x"));
    json_object_del(json_object_get(next, "metadata"), "resourceVersion");
    json_t *out = NULL;
    cr_assert_eq(ty_store_update(s, "services", next, &out, &err), 0, "%s", err.msg);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(out, "spec"),
                                                       "clusterIP")), had);
    json_decref(out);
    json_object_set_new(spec, "clusterIP", json_string("10.96.0.77"));
    cr_assert_eq(ty_store_update(s, "services", next, NULL, &err), -1);
    cr_assert_eq(err.code, TY_STORE_INVALID);
    cr_assert_str_eq(err.msg, "spec.clusterIPs[0]: Invalid value: []string{\"10.96.0.77\"}: may "
                              "not change once set");
    json_decref(next);
    ty_error_clear(&err);
}

Test(svcip, bad_ranges_are_refused)
{
    ty_error err = TY_ERROR_INIT;
    const char *bad[] = {"10.96.0.0", "10.96.0.0/8", "10.96.0.0/31", "x/16", "10.96.0.0/1x"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        cr_assert_eq(ty_store_set_service_cidr(s, bad[i], &err), -1, "%s", bad[i]);
        cr_assert(strstr(err.msg, "service cidr"), "%s", err.msg);
    }
    ty_error_clear(&err);
    cr_assert_str_eq(create("a", "10.96.0.5", &err), "10.96.0.5"); /* the default is kept */
}

Test(svcip, external_name_takes_none)
{
    ty_error err = TY_ERROR_INIT;
    json_t *svc = json_pack("{s:{s:s}, s:{s:s, s:s}}", "metadata", "name", "ext", "spec", "type",
                            "ExternalName", "externalName", "example.com");
    json_t *out = NULL;
    cr_assert_eq(ty_store_create(s, "services", svc, &out, &err), 0);
    cr_assert_null(json_object_get(json_object_get(out, "spec"), "clusterIP"));
    json_decref(out);
    json_decref(svc);
}
