#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "api/k8sproto.h"

/* Protobuf bytes built by hand: tag = field << 3 | wire type 2, then a one-byte length. */
static size_t ld(unsigned char *out, int field, const void *data, size_t n)
{
    out[0] = (unsigned char)(field << 3 | 2);
    out[1] = (unsigned char)n;
    memcpy(out + 2, data, n);
    return n + 2;
}

static size_t envelope(unsigned char *out, const char *api_version, const char *kind,
                       const unsigned char *raw, size_t raw_len)
{
    unsigned char tm[64];
    size_t tn = ld(tm, 1, api_version, strlen(api_version));
    tn += ld(tm + tn, 2, kind, strlen(kind));
    memcpy(out, "k8s\0", 4);
    size_t n = 4 + ld(out + 4, 1, tm, tn);
    n += ld(out + n, 2, raw, raw_len);
    n += ld(out + n, 4, "application/vnd.kubernetes.protobuf", 35);
    return n;
}

Test(k8sproto, namespace_with_labels_and_finalizers)
{
    unsigned char label[32], meta[96], spec[32], ns[160], body[256];
    size_t l = ld(label, 1, "team", 4);
    l += ld(label + l, 2, "a", 1);
    size_t m = ld(meta, 1, "made", 4);
    m += ld(meta + m, 11, label, l);
    m += ld(meta + m, 14, "keep", 4);
    size_t s = ld(spec, 1, "kubernetes", 10);
    size_t n = ld(ns, 1, meta, m);
    n += ld(ns + n, 2, spec, s);
    size_t len = envelope(body, "v1", "Namespace", ns, n);
    json_t *obj = NULL;
    ty_error err = TY_ERROR_INIT;
    cr_assert_eq(ty_k8sproto_decode(body, len, &obj, &err), 0, "%s", err.msg);
    json_t *want = json_loads("{\"apiVersion\": \"v1\", \"kind\": \"Namespace\", \"metadata\": "
                              "{\"name\": \"made\", \"labels\": {\"team\": \"a\"}, "
                              "\"finalizers\": [\"keep\"]}, \"spec\": {\"finalizers\": "
                              "[\"kubernetes\"]}}",
                              0, NULL);
    cr_assert(json_equal(obj, want), "%s", json_dumps(obj, JSON_COMPACT));
    json_decref(want);
    json_decref(obj);
}

Test(k8sproto, other_kinds_and_garbage_are_refused)
{
    unsigned char meta[16], ns[32], body[128];
    size_t m = ld(meta, 1, "x", 1);
    size_t n = ld(ns, 1, meta, m);
    size_t len = envelope(body, "v1", "ConfigMap", ns, n);
    json_t *obj = NULL;
    ty_error err = TY_ERROR_INIT;
    cr_assert_lt(ty_k8sproto_decode(body, len, &obj, &err), 0);
    cr_assert(strstr(err.msg, "ConfigMap"), "%s", err.msg);
    cr_assert_lt(ty_k8sproto_decode("k8s", 3, &obj, &err), 0);
    cr_assert_lt(ty_k8sproto_decode("{\"kind\": 1}", 11, &obj, &err), 0);
    /* A length that runs past the end. */
    len = envelope(body, "v1", "Namespace", ns, n);
    body[len - 40] = 0x7f;
    cr_assert_lt(ty_k8sproto_decode(body, len - 10, &obj, &err), 0);
    cr_assert_null(obj);
    ty_error_clear(&err);
}

Test(k8sproto, priorityclass)
{
    unsigned char meta[16], pc[96], body[192];
    size_t m = ld(meta, 1, "high", 4);
    size_t n = ld(pc, 1, meta, m);
    /* value = -5: an int32 sign-extended to a 10-byte varint */
    static const unsigned char value[] = {2 << 3, 0xfb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                          0xff, 0x01};
    memcpy(pc + n, value, sizeof value);
    n += sizeof value;
    pc[n++] = 3 << 3; /* globalDefault: true */
    pc[n++] = 1;
    n += ld(pc + n, 4, "first", 5);
    n += ld(pc + n, 5, "Never", 5);
    size_t len = envelope(body, "scheduling.k8s.io/v1", "PriorityClass", pc, n);
    json_t *obj = NULL;
    ty_error err = TY_ERROR_INIT;
    cr_assert_eq(ty_k8sproto_decode(body, len, &obj, &err), 0, "%s", err.msg);
    json_t *want = json_loads("{\"apiVersion\": \"scheduling.k8s.io/v1\", \"kind\": "
                              "\"PriorityClass\", \"metadata\": {\"name\": \"high\"}, \"value\": -5, "
                              "\"globalDefault\": true, \"description\": \"first\", "
                              "\"preemptionPolicy\": \"Never\"}",
                              0, NULL);
    char *got = json_dumps(obj, JSON_COMPACT);
    cr_assert(json_equal(obj, want), "%s", got);
    free(got);
    json_decref(want);
    json_decref(obj);
    /* The same kind under another version is not decoded. */
    len = envelope(body, "scheduling.k8s.io/v1beta1", "PriorityClass", pc, n);
    obj = NULL;
    cr_assert_lt(ty_k8sproto_decode(body, len, &obj, &err), 0);
    cr_assert_null(obj);
    ty_error_clear(&err);
}

/* What `kubectl auth can-i create pods -n team-b` sends. */
Test(k8sproto, self_subject_access_review)
{
    unsigned char attrs[64], spec[96], ssar[128], body[256];
    size_t a = ld(attrs, 1, "team-b", 6);
    a += ld(attrs + a, 2, "create", 6);
    a += ld(attrs + a, 5, "pods", 4);
    a += ld(attrs + a, 6, "log", 3);
    size_t s = ld(spec, 1, attrs, a);
    size_t n = ld(ssar, 2, spec, s);
    size_t len = envelope(body, "authorization.k8s.io/v1", "SelfSubjectAccessReview", ssar, n);
    json_t *obj = NULL;
    ty_error err = TY_ERROR_INIT;
    cr_assert_eq(ty_k8sproto_decode(body, len, &obj, &err), 0, "%s", err.msg);
    json_t *want = json_loads(
        "{\"apiVersion\": \"authorization.k8s.io/v1\", \"kind\": \"SelfSubjectAccessReview\", "
        "\"metadata\": {}, \"spec\": {\"resourceAttributes\": {\"namespace\": \"team-b\", "
        "\"verb\": \"create\", \"resource\": \"pods\", \"subresource\": \"log\"}}}",
        0, NULL);
    cr_assert(json_equal(obj, want), "%s", json_dumps(obj, JSON_COMPACT));
    json_decref(want);
    json_decref(obj);
    /* a non-resource one, and a rules review */
    a = ld(attrs, 1, "/metrics", 8);
    a += ld(attrs + a, 2, "get", 3);
    s = ld(spec, 2, attrs, a);
    n = ld(ssar, 2, spec, s);
    len = envelope(body, "authorization.k8s.io/v1", "SelfSubjectAccessReview", ssar, n);
    cr_assert_eq(ty_k8sproto_decode(body, len, &obj, &err), 0, "%s", err.msg);
    cr_assert_str_eq(json_string_value(json_object_get(
                         json_object_get(json_object_get(obj, "spec"), "nonResourceAttributes"),
                         "path")),
                     "/metrics");
    json_decref(obj);
    s = ld(spec, 1, "team-a", 6);
    n = ld(ssar, 2, spec, s);
    len = envelope(body, "authorization.k8s.io/v1", "SelfSubjectRulesReview", ssar, n);
    cr_assert_eq(ty_k8sproto_decode(body, len, &obj, &err), 0, "%s", err.msg);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(obj, "spec"),
                                                       "namespace")),
                     "team-a");
    json_decref(obj);
    /* a spec cut short is refused */
    ssar[1] = (unsigned char)(s + 5);
    len = envelope(body, "authorization.k8s.io/v1", "SelfSubjectRulesReview", ssar, n);
    cr_assert_lt(ty_k8sproto_decode(body, len, &obj, &err), 0);
    ty_error_clear(&err);
}

/* What `kubectl create rolebinding b --clusterrole=edit --serviceaccount=ns:sa` sends. */
Test(k8sproto, role_binding)
{
    unsigned char meta[16], subj[64], ref[64], rb[160], body[256];
    size_t m = ld(meta, 1, "b", 1);
    size_t s = ld(subj, 1, "ServiceAccount", 14);
    s += ld(subj + s, 2, "", 0); /* Go writes the empty apiGroup */
    s += ld(subj + s, 3, "sa", 2);
    s += ld(subj + s, 4, "ns", 2);
    size_t r = ld(ref, 1, "rbac.authorization.k8s.io", 25);
    r += ld(ref + r, 2, "ClusterRole", 11);
    r += ld(ref + r, 3, "edit", 4);
    size_t n = ld(rb, 1, meta, m);
    n += ld(rb + n, 2, subj, s);
    n += ld(rb + n, 3, ref, r);
    size_t len = envelope(body, "rbac.authorization.k8s.io/v1", "RoleBinding", rb, n);
    json_t *obj = NULL;
    ty_error err = TY_ERROR_INIT;
    cr_assert_eq(ty_k8sproto_decode(body, len, &obj, &err), 0, "%s", err.msg);
    json_t *want = json_loads(
        "{\"apiVersion\": \"rbac.authorization.k8s.io/v1\", \"kind\": \"RoleBinding\", "
        "\"metadata\": {\"name\": \"b\"}, \"subjects\": [{\"kind\": \"ServiceAccount\", "
        "\"name\": \"sa\", \"namespace\": \"ns\"}], \"roleRef\": {\"apiGroup\": "
        "\"rbac.authorization.k8s.io\", \"kind\": \"ClusterRole\", \"name\": \"edit\"}}",
        0, NULL);
    cr_assert(json_equal(obj, want), "%s", json_dumps(obj, JSON_COMPACT));
    json_decref(want);
    json_decref(obj);
}

/* `kubectl create role r --verb=get --resource=pods`: a rule's lists keep "" (the core group). */
Test(k8sproto, role_rules)
{
    unsigned char meta[16], rule[64], role[128], body[256];
    size_t m = ld(meta, 1, "r", 1);
    size_t u = ld(rule, 1, "get", 3);
    u += ld(rule + u, 2, "", 0);
    u += ld(rule + u, 3, "pods", 4);
    size_t n = ld(role, 1, meta, m);
    n += ld(role + n, 2, rule, u);
    size_t len = envelope(body, "rbac.authorization.k8s.io/v1", "Role", role, n);
    json_t *obj = NULL;
    ty_error err = TY_ERROR_INIT;
    cr_assert_eq(ty_k8sproto_decode(body, len, &obj, &err), 0, "%s", err.msg);
    json_t *want = json_loads(
        "[{\"verbs\": [\"get\"], \"apiGroups\": [\"\"], \"resources\": [\"pods\"]}]", 0, NULL);
    cr_assert(json_equal(json_object_get(obj, "rules"), want), "%s",
              json_dumps(obj, JSON_COMPACT));
    json_decref(want);
    json_decref(obj);
}
