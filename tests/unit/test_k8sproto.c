#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "api/k8sproto.h"

/* Protobuf bytes built by hand: tag = field << 3 | wire type 2 (a varint: fields past 15
 * take two bytes), then a one-byte length. */
static size_t ld(unsigned char *out, int field, const void *data, size_t n)
{
    unsigned tag = (unsigned)field << 3 | 2;
    size_t h = 0;
    if (tag > 127)
        out[h++] = (unsigned char)(tag | 0x80);
    out[h++] = (unsigned char)(tag > 127 ? tag >> 7 : tag);
    out[h++] = (unsigned char)n;
    memcpy(out + h, data, n);
    return n + h;
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
    size_t len = envelope(body, "v1", "ReplicationController", ns, n);
    json_t *obj = NULL;
    ty_error err = TY_ERROR_INIT;
    cr_assert_lt(ty_k8sproto_decode(body, len, &obj, &err), 0);
    cr_assert(strstr(err.msg, "ReplicationController"), "%s", err.msg);
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

static void expect(const unsigned char *body, size_t len, const char *want_text)
{
    json_t *obj = NULL;
    ty_error err = TY_ERROR_INIT;
    cr_assert_eq(ty_k8sproto_decode(body, len, &obj, &err), 0, "%s", err.msg);
    json_t *want = json_loads(want_text, 0, NULL);
    cr_assert_not_null(want, "%s", want_text);
    char *got = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
    cr_assert(json_equal(obj, want), "%s", got);
    free(got);
    json_decref(want);
    json_decref(obj);
}

/* What `kubectl create configmap x --from-literal=a=b --from-file=bin` sends: binary values are
 * bytes (base64 in JSON); Go writes an unset immutable as nothing. */
Test(k8sproto, configmap_and_secret)
{
    unsigned char meta[16], e1[16], e2[16], e3[16], cm[96], body[192];
    size_t m = ld(meta, 1, "x", 1);
    size_t a = ld(e1, 1, "a", 1);
    a += ld(e1 + a, 2, "b", 1);
    size_t b = ld(e2, 1, "bin", 3);
    b += ld(e2 + b, 2, "\x00\x01\xff", 3);
    size_t n = ld(cm, 1, meta, m);
    n += ld(cm + n, 2, e1, a);
    n += ld(cm + n, 3, e2, b);
    cm[n++] = 4 << 3; /* immutable: true */
    cm[n++] = 1;
    size_t len = envelope(body, "v1", "ConfigMap", cm, n);
    expect(body, len, "{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\", \"metadata\": "
                      "{\"name\": \"x\"}, \"data\": {\"a\": \"b\"}, \"binaryData\": "
                      "{\"bin\": \"AAH/\"}, \"immutable\": true}");

    /* Secret: data is bytes, type 3, stringData 4; an empty type is left for the default */
    size_t c = ld(e3, 1, "k", 1);
    c += ld(e3 + c, 2, "v", 1);
    n = ld(cm, 1, meta, m);
    n += ld(cm + n, 2, e1, a);
    n += ld(cm + n, 3, "", 0);
    n += ld(cm + n, 4, e3, c);
    len = envelope(body, "v1", "Secret", cm, n);
    expect(body, len, "{\"apiVersion\": \"v1\", \"kind\": \"Secret\", \"metadata\": "
                      "{\"name\": \"x\"}, \"data\": {\"a\": \"Yg==\"}, \"stringData\": "
                      "{\"k\": \"v\"}}");
}

/* What `kubectl create service clusterip foo --tcp=80:http` sends, with Go's empty strings. */
Test(k8sproto, service)
{
    unsigned char meta[16], target[16], port[64], sel[16], spec[160], svc[192], body[256];
    size_t m = ld(meta, 1, "foo", 3);
    size_t t = 0;
    target[t++] = 1 << 3; /* type 1: a string */
    target[t++] = 1;
    t += ld(target + t, 3, "http", 4);
    size_t p = ld(port, 1, "80-http", 7);
    p += ld(port + p, 2, "TCP", 3);
    port[p++] = 3 << 3; /* port 80 */
    port[p++] = 80;
    p += ld(port + p, 4, target, t);
    port[p++] = 5 << 3; /* nodePort 0: unset */
    port[p++] = 0;
    size_t s = ld(sel, 1, "app", 3);
    s += ld(sel + s, 2, "foo", 3);
    size_t n = ld(spec, 1, port, p);
    n += ld(spec + n, 2, sel, s);
    n += ld(spec + n, 3, "None", 4);
    n += ld(spec + n, 4, "ClusterIP", 9);
    n += ld(spec + n, 7, "", 0);
    n += ld(spec + n, 19, "IPv4", 4);
    spec[n++] = 13 << 3; /* publishNotReadyAddresses: false */
    spec[n++] = 0;
    size_t v = ld(svc, 1, meta, m);
    v += ld(svc + v, 2, spec, n);
    size_t len = envelope(body, "v1", "Service", svc, v);
    expect(body, len, "{\"apiVersion\": \"v1\", \"kind\": \"Service\", \"metadata\": "
                      "{\"name\": \"foo\"}, \"spec\": {\"ports\": [{\"name\": \"80-http\", "
                      "\"protocol\": \"TCP\", \"port\": 80, \"targetPort\": \"http\"}], "
                      "\"selector\": {\"app\": \"foo\"}, \"clusterIP\": \"None\", \"type\": "
                      "\"ClusterIP\", \"ipFamilies\": [\"IPv4\"]}}");
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

/* `kubectl create serviceaccount bot --dry-run`-like: metadata (an empty generateName, as Go
 * writes it, left out), imagePullSecrets, automountServiceAccountToken false. */
Test(k8sproto, service_account)
{
    unsigned char meta[32], ref[16], sa[96], body[192];
    size_t m = ld(meta, 1, "bot", 3);
    m += ld(meta + m, 2, "", 0);
    size_t r = ld(ref, 1, "regcred", 7);
    size_t n = ld(sa, 1, meta, m);
    n += ld(sa + n, 3, ref, r);
    sa[n++] = 4 << 3 | 0; /* varint field 4 */
    sa[n++] = 0;
    size_t len = envelope(body, "v1", "ServiceAccount", sa, n);
    json_t *obj = NULL;
    ty_error err = TY_ERROR_INIT;
    cr_assert_eq(ty_k8sproto_decode(body, len, &obj, &err), 0, "%s", err.msg);
    json_t *want = json_loads("{\"apiVersion\": \"v1\", \"kind\": \"ServiceAccount\", "
                              "\"metadata\": {\"name\": \"bot\"}, \"imagePullSecrets\": "
                              "[{\"name\": \"regcred\"}], \"automountServiceAccountToken\": false}",
                              0, NULL);
    cr_assert(json_equal(obj, want), "%s", json_dumps(obj, JSON_COMPACT));
    json_decref(want);
    json_decref(obj);
}

/* `kubectl create token bot --audience a --audience b --duration 2h
 * --bound-object-kind Pod --bound-object-name p`. */
Test(k8sproto, token_request)
{
    unsigned char ref[32], spec[96], tr[128], body[256];
    size_t r = ld(ref, 1, "Pod", 3);
    r += ld(ref + r, 2, "v1", 2);
    r += ld(ref + r, 3, "p", 1);
    size_t s = ld(spec, 1, "a", 1);
    s += ld(spec + s, 1, "b", 1);
    s += ld(spec + s, 3, ref, r);
    spec[s++] = 4 << 3 | 0; /* expirationSeconds 7200: varint 0xa0 0x38 */
    spec[s++] = 0xa0;
    spec[s++] = 0x38;
    size_t n = ld(tr, 2, spec, s);
    size_t len = envelope(body, "authentication.k8s.io/v1", "TokenRequest", tr, n);
    json_t *obj = NULL;
    ty_error err = TY_ERROR_INIT;
    cr_assert_eq(ty_k8sproto_decode(body, len, &obj, &err), 0, "%s", err.msg);
    json_t *want = json_loads(
        "{\"apiVersion\": \"authentication.k8s.io/v1\", \"kind\": \"TokenRequest\", "
        "\"metadata\": {}, \"spec\": {\"audiences\": [\"a\", \"b\"], \"boundObjectRef\": "
        "{\"kind\": \"Pod\", \"apiVersion\": \"v1\", \"name\": \"p\"}, \"expirationSeconds\": "
        "7200}}",
        0, NULL);
    cr_assert(json_equal(obj, want), "%s", json_dumps(obj, JSON_COMPACT));
    json_decref(want);
    json_decref(obj);
    /* a spec cut short */
    len = envelope(body, "authentication.k8s.io/v1", "TokenRequest", tr, n - 1);
    cr_assert_lt(ty_k8sproto_decode(body, len, &obj, &err), 0);
    ty_error_clear(&err);
}
