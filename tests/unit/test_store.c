#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "api/kinds.h"
#include "store/store.h"

/* ---- helpers ---- */

/* The revision after new_store()'s own writes ("default" and the namespaces the tests use):
 * the revisions the tests expect count from here. */
static uint64_t base;

static ty_store *new_store(void)
{
    ty_store *s = ty_store_new();
    static const char *names[] = {"ns1", "ns2", "ns3"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        json_t *ns = json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", "v1", "kind", "Namespace",
                               "metadata", "name", names[i]);
        cr_assert_eq(ty_store_create(s, "namespaces", ns, NULL, NULL), 0);
        json_decref(ns);
    }
    base = ty_store_revision(s);
    return s;
}

static const char *rv_str(uint64_t n)
{
    static char buf[4][24];
    static int next;
    char *b = buf[next++ % 4];
    snprintf(b, 24, "%llu", (unsigned long long)(base + n));
    return b;
}

static json_t *obj(const char *name, const char *ns)
{
    json_t *o = json_pack("{s:s, s:s, s:{s:s}, s:{s:i}}", "apiVersion", "v1", "kind", "ConfigMap",
                          "metadata", "name", name, "spec", "replicas", 1);
    if (ns)
        json_object_set_new(json_object_get(o, "metadata"), "namespace", json_string(ns));
    return o;
}

static json_t *pod(const char *name, const char *node, const char *phase)
{
    json_t *p = json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:[{s:s, s:s}]}}", "apiVersion", "v1",
                          "kind", "Pod", "metadata", "name", name, "namespace", "default", "spec",
                          "containers", "name", "c", "image", "x");
    if (node)
        json_object_set_new(json_object_get(p, "spec"), "nodeName", json_string(node));
    if (phase)
        json_object_set_new(p, "status", json_pack("{s:s}", "phase", phase));
    return p;
}

static json_t *create(ty_store *s, const char *resource, json_t *o)
{
    json_t *out = NULL;
    ty_error err = TY_ERROR_INIT;
    int rc = ty_store_create(s, resource, o, &out, &err);
    cr_assert_eq(rc, 0, "create: %s", err.msg ? err.msg : "");
    ty_error_clear(&err);
    json_decref(o);
    return out;
}

static const char *meta_s(const json_t *o, const char *f)
{
    return json_string_value(json_object_get(json_object_get(o, "metadata"), f));
}

static json_int_t generation(const json_t *o)
{
    return json_integer_value(json_object_get(json_object_get(o, "metadata"), "generation"));
}

static void own(json_t *o, const json_t *owner)
{
    json_object_set_new(json_object_get(o, "metadata"), "ownerReferences",
                        json_pack("[{s:s, s:s, s:s, s:s}]", "apiVersion", "v1", "kind", "X",
                                  "name", ty_obj_name(owner), "uid", ty_obj_uid(owner)));
}

typedef struct {
    int n;
    ty_event_type types[32];
    char names[32][32];
    char resources[32][32];
} events;

static void record(void *ctx, ty_event_type type, const char *resource, const json_t *o)
{
    events *e = ctx;
    cr_assert_lt(e->n, 32);
    e->types[e->n] = type;
    snprintf(e->names[e->n], sizeof e->names[0], "%s", ty_obj_name(o));
    snprintf(e->resources[e->n], sizeof e->resources[0], "%s", resource);
    e->n++;
}

/* ---- create / get ---- */

Test(store, create_sets_server_metadata)
{
    ty_store *s = new_store();
    json_t *in = obj("a", NULL);
    json_t *keep = json_deep_copy(in);
    json_t *out = NULL;
    cr_assert_eq(ty_store_create(s, "configmaps", in, &out, NULL), 0);
    cr_assert(json_equal(in, keep), "the input is not modified");
    cr_assert_str_eq(meta_s(out, "namespace"), "default");
    cr_assert_eq(strlen(meta_s(out, "uid")), 36);
    cr_assert_eq(meta_s(out, "uid")[14], '4');
    cr_assert_str_eq(meta_s(out, "resourceVersion"), rv_str(1));
    cr_assert_eq(ty_store_revision(s), base + 1);
    cr_assert_eq(generation(out), 1);
    cr_assert_not_null(meta_s(out, "creationTimestamp"));
    cr_assert(!ty_obj_deleting(out));

    json_t *got = ty_store_get(s, "configmaps", "default", "a");
    cr_assert_eq(got, out, "get returns the stored object");
    json_t *got2 = ty_store_get(s, "configmaps", NULL, "a");
    cr_assert_eq(got2, out, "a NULL namespace means default");
    cr_assert_null(ty_store_get(s, "configmaps", "other", "a"));
    cr_assert_null(ty_store_get(s, "secrets", "default", "a"));

    json_t *b = create(s, "configmaps", obj("b", NULL));
    cr_assert_str_neq(ty_obj_uid(b), ty_obj_uid(out), "uids are unique");
    cr_assert_str_eq(meta_s(b, "resourceVersion"), rv_str(2));
    json_decref(b);
    json_decref(got);
    json_decref(got2);
    json_decref(out);
    json_decref(in);
    json_decref(keep);
    ty_store_free(s);
}

Test(store, create_ignores_client_server_fields)
{
    ty_store *s = new_store();
    json_t *in = obj("a", "ns1");
    json_t *m = json_object_get(in, "metadata");
    json_object_set_new(m, "uid", json_string("fake"));
    json_object_set_new(m, "resourceVersion", json_string("77"));
    json_object_set_new(m, "generation", json_integer(9));
    json_object_set_new(m, "deletionTimestamp", json_string("2020-01-01T00:00:00Z"));
    json_t *out = create(s, "configmaps", in);
    cr_assert_str_neq(ty_obj_uid(out), "fake");
    cr_assert_str_eq(meta_s(out, "resourceVersion"), rv_str(1));
    cr_assert_eq(generation(out), 1);
    cr_assert(!ty_obj_deleting(out));
    cr_assert_str_eq(ty_obj_namespace(out), "ns1");
    json_decref(out);
    ty_store_free(s);
}

Test(store, create_existing_conflicts)
{
    ty_store *s = new_store();
    json_decref(create(s, "configmaps", obj("a", NULL)));
    ty_error err = TY_ERROR_INIT;
    json_t *in = obj("a", "default");
    json_t *out = NULL;
    cr_assert_lt(ty_store_create(s, "configmaps", in, &out, &err), 0);
    cr_assert_eq(err.code, TY_STORE_CONFLICT);
    cr_assert_not_null(strstr(err.msg, "already exists"), "%s", err.msg);
    cr_assert_null(out);
    cr_assert_eq(ty_store_revision(s), base + 1, "a failed write hands out no revision");
    ty_error_clear(&err);
    /* The same name in another namespace is another object. */
    json_object_set_new(json_object_get(in, "metadata"), "namespace", json_string("ns2"));
    cr_assert_eq(ty_store_create(s, "configmaps", in, NULL, NULL), 0);
    json_decref(in);
    ty_store_free(s);
}

/* etcd's request limit bounds every object: a create or update whose text is over it fails
 * whole, and the object stays as it was. */
Test(store, objects_over_the_size_limit_are_refused)
{
    ty_store *s = new_store();
    char *big = malloc(TY_STORE_MAX_OBJECT_BYTES + 1);
    memset(big, 'x', TY_STORE_MAX_OBJECT_BYTES);
    big[TY_STORE_MAX_OBJECT_BYTES] = '\0';
    ty_error err = TY_ERROR_INIT;
    json_t *in = obj("a", NULL);
    json_object_set_new(in, "data", json_string(big));
    cr_assert_lt(ty_store_create(s, "configmaps", in, NULL, &err), 0);
    cr_assert_eq(err.code, TY_STORE_TOO_LARGE);
    cr_assert_not_null(strstr(err.msg, "request is too large"), "%s", err.msg);
    cr_assert_eq(ty_store_revision(s), base, "a failed write hands out no revision");
    cr_assert_null(ty_store_get(s, "configmaps", "default", "a"));
    ty_error_clear(&err);
    json_t *small = create(s, "configmaps", obj("a", NULL));
    json_t *next = json_deep_copy(small);
    json_object_set_new(next, "data", json_string(big));
    cr_assert_lt(ty_store_update(s, "configmaps", next, NULL, &err), 0);
    cr_assert_eq(err.code, TY_STORE_TOO_LARGE);
    json_t *now = ty_store_get(s, "configmaps", "default", "a");
    cr_assert(json_equal(now, small), "the stored version is unchanged");
    ty_error_clear(&err);
    json_decref(now);
    json_decref(next);
    json_decref(small);
    json_decref(in);
    free(big);
    ty_store_free(s);
}

/* ty_store_create_owned keeps the caller's tree rather than a copy, unless somebody else
 * holds it; it consumes the reference on every path (ASan checks the failures leak nothing). */
Test(store, create_owned_keeps_the_tree)
{
    ty_store *s = new_store();
    json_t *in = obj("a", NULL);
    json_t *out = NULL;
    cr_assert_eq(ty_store_create_owned(s, "configmaps", in, NULL, &out, NULL), 0);
    cr_assert_eq(out, in, "the tree itself is stored");
    cr_assert_str_eq(meta_s(out, "namespace"), "default");
    cr_assert_not_null(meta_s(out, "uid"));
    json_decref(out);

    /* held elsewhere: copied, and the holder's tree is left as it was */
    json_t *shared = obj("b", NULL);
    json_incref(shared);
    cr_assert_eq(ty_store_create_owned(s, "configmaps", shared, NULL, &out, NULL), 0);
    cr_assert_neq(out, shared);
    cr_assert_null(meta_s(shared, "uid"));
    cr_assert_null(meta_s(shared, "namespace"));
    json_decref(out);
    json_decref(shared);

    ty_error err = TY_ERROR_INIT;
    cr_assert_lt(ty_store_create_owned(s, "configmaps", obj("a", NULL), NULL, &out, &err), 0);
    cr_assert_eq(err.code, TY_STORE_CONFLICT);
    cr_assert_not_null(strstr(err.msg, "configmaps \"a\" already exists"), "%s", err.msg);
    cr_assert_null(out);
    ty_error_clear(&err);
    cr_assert_lt(ty_store_create_owned(s, "configmaps", obj("c", "nowhere"), NULL, NULL, &err), 0);
    cr_assert_eq(err.code, TY_STORE_NOT_FOUND);
    ty_error_clear(&err);
    cr_assert_lt(ty_store_create_owned(s, "configmaps", json_pack("{s:{}}", "metadata"), NULL,
                                       NULL, NULL), 0);
    ty_store_free(s);
}

/* A status write shares the unchanged parts of the object with the version before it: a
 * reference to that version must still read exactly as it did. */
Test(store, status_update_leaves_the_old_version_alone)
{
    ty_store *s = new_store();
    json_t *in = obj("a", NULL);
    json_object_set_new(in, "spec", json_pack("{s:i}", "replicas", 2));
    json_t *v1 = create(s, "configmaps", in);
    char *before = json_dumps(v1, JSON_SORT_KEYS);
    json_t *next = json_deep_copy(v1);
    json_object_set_new(next, "status", json_pack("{s:s}", "phase", "Running"));
    json_t *v2 = NULL;
    cr_assert_eq(ty_store_update_status(s, "configmaps", next, &v2, NULL), 0);
    char *after = json_dumps(v1, JSON_SORT_KEYS);
    cr_assert_str_eq(after, before);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(v2, "status"), "phase")),
                     "Running");
    cr_assert_str_neq(meta_s(v2, "resourceVersion"), meta_s(v1, "resourceVersion"));
    cr_assert(json_equal(json_object_get(v2, "spec"), json_object_get(v1, "spec")));
    free(before);
    free(after);
    json_decref(next);
    json_decref(v1);
    json_decref(v2);
    ty_store_free(s);
}

/* A job's pods from the owner index: only the resource asked for, only that owner's, sorted;
 * a pod gone is gone from it. */
Test(store, list_owned)
{
    ty_store *s = new_store();
    json_t *job = create(s, "configmaps", obj("job", NULL));
    json_t *other = create(s, "configmaps", obj("other", NULL));
    const char *names[] = {"w-2", "w-0", "w-1"};
    for (size_t i = 0; i < 3; i++) {
        json_t *p = pod(names[i], NULL, NULL);
        own(p, job);
        json_decref(create(s, "pods", p));
    }
    json_t *stranger = pod("w-9", NULL, NULL);
    own(stranger, other);
    json_decref(create(s, "pods", stranger));
    json_t *svc = obj("svc", NULL);
    own(svc, job);
    json_decref(create(s, "services", svc));

    json_t *l = ty_store_list_owned(s, "pods", ty_obj_uid(job));
    cr_assert_eq(json_array_size(l), 3);
    for (size_t i = 0; i < 3; i++) {
        char want[8];
        snprintf(want, sizeof want, "w-%zu", i);
        cr_assert_str_eq(ty_obj_name(json_array_get(l, i)), want);
    }
    json_decref(l);
    cr_assert_eq(ty_store_delete(s, "pods", "default", "w-1", 0, NULL), 0);
    l = ty_store_list_owned(s, "pods", ty_obj_uid(job));
    cr_assert_eq(json_array_size(l), 2);
    json_decref(l);
    l = ty_store_list_owned(s, "services", ty_obj_uid(job));
    cr_assert_eq(json_array_size(l), 1);
    json_decref(l);
    l = ty_store_list_owned(s, "pods", "no-such-uid");
    cr_assert_eq(json_array_size(l), 0);
    json_decref(l);
    json_decref(job);
    json_decref(other);
    ty_store_free(s);
}

Test(store, create_without_name_is_invalid)
{
    ty_store *s = new_store();
    json_t *in = json_pack("{s:s, s:{}}", "kind", "ConfigMap", "metadata");
    ty_error err = TY_ERROR_INIT;
    cr_assert_lt(ty_store_create(s, "configmaps", in, NULL, &err), 0);
    cr_assert_eq(err.code, TY_STORE_INVALID);
    cr_assert_not_null(strstr(err.msg, "metadata.name"), "%s", err.msg);
    ty_error_clear(&err);
    /* err may be NULL, as for every function that takes one. */
    cr_assert_lt(ty_store_create(s, "configmaps", in, NULL, NULL), 0);
    json_decref(in);
    ty_store_free(s);
}

/* A Service as the API server stores it: SetDefaults_Service and the registry's families. */
Test(store, create_defaults_a_service_as_kubernetes)
{
    ty_store *s = new_store();
    json_t *svc = json_pack("{s:s, s:{s:s}, s:{s:s, s:[{s:s, s:i}], s:{s:s}}}", "kind", "Service",
                            "metadata", "name", "h", "spec", "clusterIP", "None", "ports", "name",
                            "p", "port", 23456, "selector", "a", "b");
    json_t *out = NULL;
    cr_assert_eq(ty_store_create(s, "services", svc, &out, NULL), 0);
    json_t *want = json_pack("{s:s, s:[s], s:s, s:[s], s:s, s:s, s:s, s:[{s:s, s:i, s:s, s:i}],"
                             " s:{s:s}}", "clusterIP", "None", "clusterIPs", "None",
                             "internalTrafficPolicy", "Cluster", "ipFamilies", "IPv4",
                             "ipFamilyPolicy", "SingleStack", "sessionAffinity", "None", "type",
                             "ClusterIP", "ports", "name", "p", "port", 23456, "protocol", "TCP",
                             "targetPort", 23456, "selector", "a", "b");
    char *got = json_dumps(json_object_get(out, "spec"), JSON_SORT_KEYS);
    cr_assert(json_equal(json_object_get(out, "spec"), want), "%s", got);
    cr_assert(json_is_object(json_object_get(json_object_get(out, "status"), "loadBalancer")));
    free(got);
    json_decref(want);
    json_decref(out);
    json_decref(svc);
    ty_store_free(s);
}

Test(store, create_defaults_the_protocol_of_pod_and_service_ports)
{
    ty_store *s = new_store();
    json_t *pod = json_pack("{s:s, s:{s:s}, s:{s:[{s:s, s:[{s:i}, {s:i, s:s}]}]}}", "kind", "Pod",
                            "metadata", "name", "p", "spec", "containers", "name", "c", "ports",
                            "containerPort", 80, "containerPort", 53, "protocol", "UDP");
    json_t *svc = json_pack("{s:s, s:{s:s}, s:{s:[{s:i}]}}", "kind", "Service", "metadata",
                            "name", "s", "spec", "ports", "port", 80);
    json_t *out = NULL;
    cr_assert_eq(ty_store_create(s, "pods", pod, &out, NULL), 0);
    json_t *ports = json_object_get(
        json_array_get(json_object_get(json_object_get(out, "spec"), "containers"), 0), "ports");
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(ports, 0), "protocol")),
                     "TCP");
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(ports, 1), "protocol")),
                     "UDP");
    json_decref(out);
    cr_assert_eq(ty_store_create(s, "services", svc, &out, NULL), 0);
    ports = json_object_get(json_object_get(out, "spec"), "ports");
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(ports, 0), "protocol")),
                     "TCP");
    json_decref(out);
    /* The caller's object is not touched. */
    cr_assert_null(json_object_get(json_array_get(json_object_get(json_object_get(svc, "spec"),
                                                                  "ports"), 0), "protocol"));
    json_decref(pod);
    json_decref(svc);
    ty_store_free(s);
}

/* Every kind's scope is the registry's: a cluster-scoped kind ignores the namespace it is
 * created and read with, a namespaced one keeps it. */
Test(store, scope_follows_the_registry_of_kinds)
{
    ty_store *s = new_store();
    size_t cluster = 0;
    for (const ty_kind_info *const *k = ty_kinds(); *k; k++) {
        if (strcmp((*k)->resource, "namespaces") == 0)
            continue;
        json_t *in = json_pack("{s:s, s:{s:s, s:s}}", "kind", (*k)->kind, "metadata", "name",
                               "o", "namespace", "ns1");
        json_t *out = create(s, (*k)->resource, in);
        json_t *other = ty_store_get(s, (*k)->resource, "ns2", "o");
        if ((*k)->namespaced) {
            cr_assert_str_eq(ty_obj_namespace(out), "ns1", "%s", (*k)->resource);
            cr_assert_null(other, "%s", (*k)->resource);
        } else {
            cluster++;
            cr_assert_null(ty_obj_namespace(out), "%s", (*k)->resource);
            cr_assert_not_null(other, "%s", (*k)->resource);
        }
        json_decref(other);
        json_decref(out);
    }
    cr_assert_geq(cluster, 7);
    ty_store_free(s);
}

Test(store, nodes_are_cluster_scoped)
{
    ty_store *s = new_store();
    json_t *in = json_pack("{s:s, s:{s:s, s:s}}", "kind", "Node", "metadata", "name", "n1",
                           "namespace", "default");
    json_t *out = create(s, "nodes", in);
    cr_assert_null(ty_obj_namespace(out), "a node has no namespace");
    json_t *a = ty_store_get(s, "nodes", NULL, "n1");
    json_t *b = ty_store_get(s, "nodes", "whatever", "n1");
    cr_assert_eq(a, out);
    cr_assert_eq(b, out, "the namespace is ignored for cluster-scoped resources");
    json_t *list = ty_store_list(s, "nodes", NULL);
    cr_assert_eq(json_array_size(list), 1);
    cr_assert_eq(ty_store_delete(s, "nodes", "x", "n1", -1, NULL), 0);
    cr_assert_null(ty_store_get(s, "nodes", NULL, "n1"));
    json_decref(list);
    json_decref(a);
    json_decref(b);
    json_decref(out);
    ty_store_free(s);
}

/* ---- update ---- */

Test(store, update_bumps_generation_only_on_spec_change)
{
    ty_store *s = new_store();
    json_t *v1 = create(s, "configmaps", obj("a", NULL));
    const char *uid = ty_obj_uid(v1);

    /* Metadata only: a new resourceVersion, the same generation. */
    json_t *in = json_deep_copy(v1);
    json_object_set_new(json_object_get(in, "metadata"), "labels", json_pack("{s:s}", "k", "v"));
    json_t *v2 = NULL;
    cr_assert_eq(ty_store_update(s, "configmaps", in, &v2, NULL), 0);
    json_decref(in);
    cr_assert_str_eq(ty_obj_label(v2, "k"), "v");
    cr_assert_str_eq(meta_s(v2, "resourceVersion"), rv_str(2));
    cr_assert_eq(generation(v2), 1);
    cr_assert_str_eq(ty_obj_uid(v2), uid);
    cr_assert_str_eq(meta_s(v2, "creationTimestamp"), meta_s(v1, "creationTimestamp"));

    /* The spec: generation 2. */
    in = json_deep_copy(v2);
    json_object_set_new(json_object_get(in, "spec"), "replicas", json_integer(3));
    json_t *v3 = NULL;
    cr_assert_eq(ty_store_update(s, "configmaps", in, &v3, NULL), 0);
    json_decref(in);
    cr_assert_eq(generation(v3), 2);
    cr_assert_str_eq(meta_s(v3, "resourceVersion"), rv_str(3));

    /* A new top-level field counts as spec, and so does removing one. */
    in = json_deep_copy(v3);
    json_object_set_new(in, "data", json_pack("{s:s}", "x", "y"));
    json_t *v4 = NULL;
    cr_assert_eq(ty_store_update(s, "configmaps", in, &v4, NULL), 0);
    json_decref(in);
    cr_assert_eq(generation(v4), 3);
    in = json_deep_copy(v4);
    json_object_del(in, "data");
    json_t *v5 = NULL;
    cr_assert_eq(ty_store_update(s, "configmaps", in, &v5, NULL), 0);
    json_decref(in);
    cr_assert_eq(generation(v5), 4);

    /* The references taken before are unchanged. */
    cr_assert_str_eq(meta_s(v1, "resourceVersion"), rv_str(1));
    cr_assert_null(ty_obj_label(v1, "k"));
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(v2, "spec"), "replicas")), 1);
    json_decref(v1);
    json_decref(v2);
    json_decref(v3);
    json_decref(v4);
    json_decref(v5);
    ty_store_free(s);
}

Test(store, update_keeps_server_fields_and_status)
{
    ty_store *s = new_store();
    json_t *v1 = create(s, "pods", pod("p", NULL, "Running"));
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(v1, "status"), "phase")),
                     "Running", "create stores the status it is given");
    json_t *in = json_deep_copy(v1);
    json_t *m = json_object_get(in, "metadata");
    json_object_set_new(m, "uid", json_string("other"));
    json_object_set_new(m, "creationTimestamp", json_string("2000-01-01T00:00:00Z"));
    json_object_set_new(m, "generation", json_integer(40));
    json_object_set_new(in, "status", json_pack("{s:s}", "phase", "Failed"));
    json_t *v2 = NULL;
    cr_assert_eq(ty_store_update(s, "pods", in, &v2, NULL), 0);
    cr_assert_str_eq(ty_obj_uid(v2), ty_obj_uid(v1));
    cr_assert_str_eq(meta_s(v2, "creationTimestamp"), meta_s(v1, "creationTimestamp"));
    cr_assert_eq(generation(v2), 1);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(v2, "status"), "phase")),
                     "Running", "update does not write status");
    json_decref(in);

    /* Without status in the input, the stored one stays too. */
    in = json_deep_copy(v2);
    json_object_del(in, "status");
    json_t *v3 = NULL;
    cr_assert_eq(ty_store_update(s, "pods", in, &v3, NULL), 0);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(v3, "status"), "phase")),
                     "Running");
    json_decref(in);
    json_decref(v1);
    json_decref(v2);
    json_decref(v3);
    ty_store_free(s);
}

Test(store, update_status_only_writes_status)
{
    ty_store *s = new_store();
    json_t *v1 = create(s, "pods", pod("p", NULL, NULL));
    json_t *in = json_deep_copy(v1);
    json_object_set_new(in, "status", json_pack("{s:s}", "phase", "Running"));
    json_object_set_new(json_object_get(in, "spec"), "nodeName", json_string("n"));
    json_object_set_new(json_object_get(in, "metadata"), "labels", json_pack("{s:s}", "a", "b"));
    json_t *v2 = NULL;
    cr_assert_eq(ty_store_update_status(s, "pods", in, &v2, NULL), 0);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(v2, "status"), "phase")),
                     "Running");
    cr_assert_null(json_object_get(json_object_get(v2, "spec"), "nodeName"));
    cr_assert_null(ty_obj_label(v2, "a"));
    cr_assert_eq(generation(v2), 1);
    cr_assert_str_eq(meta_s(v2, "resourceVersion"), rv_str(2));
    cr_assert_null(json_object_get(v1, "status"), "the old reference is unchanged");

    /* Modifying the input afterwards does not reach the store. */
    json_object_set_new(json_object_get(in, "status"), "phase", json_string("Failed"));
    json_t *v3 = ty_store_get(s, "pods", "default", "p");
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(v3, "status"), "phase")),
                     "Running");
    json_decref(in);
    json_decref(v1);
    json_decref(v2);
    json_decref(v3);
    ty_store_free(s);
}

Test(store, a_write_that_changes_nothing_is_no_write)
{
    ty_store *s = new_store();
    json_t *v1 = create(s, "configmaps", obj("a", NULL));
    uint64_t rev = ty_store_revision(s);
    json_t *out = NULL;
    cr_assert_eq(ty_store_update(s, "configmaps", v1, &out, NULL), 0);
    cr_assert_str_eq(meta_s(out, "resourceVersion"), meta_s(v1, "resourceVersion"));
    json_decref(out);
    cr_assert_eq(ty_store_update_status(s, "configmaps", v1, NULL, NULL), 0);
    cr_assert_eq(ty_store_revision(s), rev);
    json_decref(v1);
    ty_store_free(s);
}

Test(store, stale_resource_version_conflicts)
{
    ty_store *s = new_store();
    json_t *v1 = create(s, "configmaps", obj("a", NULL));
    json_t *in = json_deep_copy(v1);
    json_object_set_new(json_object_get(in, "spec"), "replicas", json_integer(2));
    cr_assert_eq(ty_store_update(s, "configmaps", in, NULL, NULL), 0);
    ty_error err = TY_ERROR_INIT;
    json_t *out = NULL;
    cr_assert_lt(ty_store_update(s, "configmaps", in, &out, &err), 0, "resourceVersion 1 is stale");
    cr_assert_eq(err.code, TY_STORE_CONFLICT);
    cr_assert_not_null(strstr(err.msg, "the object has been modified"), "%s", err.msg);
    cr_assert_null(out);
    ty_error_clear(&err);
    cr_assert_lt(ty_store_update_status(s, "configmaps", in, NULL, &err), 0);
    cr_assert_eq(err.code, TY_STORE_CONFLICT);
    ty_error_clear(&err);
    cr_assert_eq(ty_store_revision(s), base + 2);

    /* No resourceVersion: last write wins. */
    json_object_del(json_object_get(in, "metadata"), "resourceVersion");
    json_object_set_new(json_object_get(in, "spec"), "replicas", json_integer(3));
    cr_assert_eq(ty_store_update(s, "configmaps", in, &out, NULL), 0);
    cr_assert_str_eq(meta_s(out, "resourceVersion"), rv_str(3));
    json_decref(out);
    json_decref(in);
    json_decref(v1);
    ty_store_free(s);
}

Test(store, update_missing_is_not_found)
{
    ty_store *s = new_store();
    json_t *in = obj("nope", NULL);
    ty_error err = TY_ERROR_INIT;
    cr_assert_lt(ty_store_update(s, "configmaps", in, NULL, &err), 0);
    cr_assert_eq(err.code, TY_STORE_NOT_FOUND);
    cr_assert_not_null(strstr(err.msg, "not found"), "%s", err.msg);
    ty_error_clear(&err);
    cr_assert_lt(ty_store_update_status(s, "configmaps", in, NULL, &err), 0);
    cr_assert_eq(err.code, TY_STORE_NOT_FOUND);
    ty_error_clear(&err);
    cr_assert_lt(ty_store_delete(s, "configmaps", NULL, "nope", -1, &err), 0);
    cr_assert_eq(err.code, TY_STORE_NOT_FOUND);
    ty_error_clear(&err);
    cr_assert_lt(ty_store_delete(s, "configmaps", NULL, "nope", -1, NULL), 0);
    /* Namespace defaulting applies to updates: "a" in ns1 is not "a" in default. */
    json_decref(create(s, "configmaps", obj("a", "ns1")));
    json_t *a = obj("a", NULL);
    cr_assert_lt(ty_store_update(s, "configmaps", a, NULL, &err), 0);
    cr_assert_eq(err.code, TY_STORE_NOT_FOUND);
    ty_error_clear(&err);
    json_decref(a);
    json_decref(in);
    ty_store_free(s);
}

/* ---- list ---- */

/* Namespace, then name: "a" before "a-b" although "a-b/..." sorts before "a/..." as a key; the
 * kept order follows creates, updates and deletes. */
Test(store, list_orders_by_namespace_then_name_across_changes)
{
    ty_store *s = new_store();
    const char *nss[] = {"a", "a-b"};
    for (size_t i = 0; i < 2; i++) {
        json_t *ns = json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", "v1", "kind", "Namespace",
                               "metadata", "name", nss[i]);
        cr_assert_eq(ty_store_create(s, "namespaces", ns, NULL, NULL), 0);
        json_decref(ns);
    }
    json_decref(create(s, "configmaps", obj("y", "a-b")));
    json_decref(create(s, "configmaps", obj("x", "a")));
    json_t *l = ty_store_list(s, "configmaps", NULL);
    cr_assert_eq(json_array_size(l), 2);
    cr_assert_str_eq(ty_obj_namespace(json_array_get(l, 0)), "a");
    cr_assert_str_eq(ty_obj_namespace(json_array_get(l, 1)), "a-b");
    json_decref(l);
    l = ty_store_list(s, "configmaps", "a");
    cr_assert_eq(json_array_size(l), 1);
    cr_assert_str_eq(ty_obj_name(json_array_get(l, 0)), "x");
    json_decref(l);

    json_t *x = ty_store_get(s, "configmaps", "a", "x");
    json_decref(create(s, "configmaps", obj("w", "a")));
    json_t *in = json_deep_copy(x);
    json_decref(x);
    json_object_set_new(json_object_get(in, "spec"), "replicas", json_integer(3));
    json_t *updated = NULL;
    cr_assert_eq(ty_store_update(s, "configmaps", in, &updated, NULL), 0);
    json_decref(in);
    l = ty_store_list(s, "configmaps", NULL);
    cr_assert_eq(json_array_size(l), 3);
    cr_assert_str_eq(ty_obj_name(json_array_get(l, 0)), "w");
    cr_assert_eq(json_array_get(l, 1), updated, "the list holds the updated object");
    cr_assert_str_eq(ty_obj_name(json_array_get(l, 2)), "y");
    json_decref(l);
    json_decref(updated);

    cr_assert_eq(ty_store_delete(s, "configmaps", "a", "w", 0, NULL), 0);
    l = ty_store_list(s, "configmaps", "a");
    cr_assert_eq(json_array_size(l), 1);
    cr_assert_str_eq(ty_obj_name(json_array_get(l, 0)), "x");
    json_decref(l);
    ty_store_free(s);
}

Test(store, list_is_sorted_and_filtered)
{
    ty_store *s = new_store();
    const char *names[][2] = {{"b", "ns2"}, {"c", "ns1"}, {"a", "ns2"}, {"b", "ns1"}, {"z", NULL}};
    for (size_t i = 0; i < 5; i++)
        json_decref(create(s, "configmaps", obj(names[i][0], names[i][1])));
    json_decref(create(s, "secrets", obj("s", NULL)));
    json_t *all = ty_store_list(s, "configmaps", NULL);
    const char *want[][2] = {{"default", "z"}, {"ns1", "b"}, {"ns1", "c"}, {"ns2", "a"}, {"ns2", "b"}};
    cr_assert_eq(json_array_size(all), 5);
    for (size_t i = 0; i < 5; i++) {
        json_t *o = json_array_get(all, i);
        cr_assert_str_eq(ty_obj_namespace(o), want[i][0]);
        cr_assert_str_eq(ty_obj_name(o), want[i][1]);
    }
    json_t *ns1 = ty_store_list(s, "configmaps", "ns1");
    cr_assert_eq(json_array_size(ns1), 2);
    cr_assert_str_eq(ty_obj_name(json_array_get(ns1, 0)), "b");
    cr_assert_str_eq(ty_obj_name(json_array_get(ns1, 1)), "c");
    json_t *none = ty_store_list(s, "jobs", NULL);
    cr_assert(json_is_array(none));
    cr_assert_eq(json_array_size(none), 0);
    json_t *none2 = ty_store_list(s, "configmaps", "ns3");
    cr_assert_eq(json_array_size(none2), 0);

    /* The list holds the stored objects: an update later does not change them. */
    json_t *first = json_incref(json_array_get(all, 0));
    json_t *in = json_deep_copy(first);
    json_object_set_new(json_object_get(in, "spec"), "replicas", json_integer(5));
    cr_assert_eq(ty_store_update(s, "configmaps", in, NULL, NULL), 0);
    json_decref(all);
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(first, "spec"), "replicas")), 1);
    json_decref(first);
    json_decref(in);
    json_decref(ns1);
    json_decref(none);
    json_decref(none2);
    ty_store_free(s);
}

/* ---- delete ---- */

Test(store, delete_removes_and_reference_stays_unchanged)
{
    ty_store *s = new_store();
    json_t *v1 = create(s, "configmaps", obj("a", NULL));
    json_t *before = json_deep_copy(v1);
    events e = {0};
    ty_store_watch(s, &(ty_store_watch_opts){.fn = record, .ctx = &e}, NULL, NULL);
    cr_assert_eq(ty_store_delete(s, "configmaps", "default", "a", -1, NULL), 0);
    cr_assert_null(ty_store_get(s, "configmaps", "default", "a"));
    cr_assert_eq(e.n, 1);
    cr_assert_eq(e.types[0], TY_EVENT_DELETED);
    cr_assert_eq(ty_store_revision(s), base + 2, "a deletion is a revision");
    cr_assert(json_equal(v1, before), "a reference taken before the delete is unchanged: %s",
              meta_s(v1, "resourceVersion"));
    json_decref(before);
    json_decref(v1);
    ty_store_free(s);
}

Test(store, finalizers_hold_deletion)
{
    ty_store *s = new_store();
    json_t *in = obj("a", NULL);
    json_object_set_new(json_object_get(in, "metadata"), "finalizers", json_pack("[s]", "x/y"));
    json_t *v1 = create(s, "configmaps", in);
    cr_assert_eq(ty_store_delete(s, "configmaps", NULL, "a", -1, NULL), 0);
    json_t *v2 = ty_store_get(s, "configmaps", NULL, "a");
    cr_assert_not_null(v2, "an object with finalizers is only marked");
    cr_assert(ty_obj_deleting(v2));
    cr_assert(!ty_obj_deleting(v1), "the earlier reference is unchanged");
    cr_assert_null(json_object_get(json_object_get(v2, "metadata"), "deletionGracePeriodSeconds"));
    cr_assert_eq(generation(v2), 1);
    uint64_t rev = ty_store_revision(s);
    /* Deleting again changes nothing. */
    cr_assert_eq(ty_store_delete(s, "configmaps", NULL, "a", -1, NULL), 0);
    cr_assert_eq(ty_store_revision(s), rev);
    json_t *v2b = ty_store_get(s, "configmaps", NULL, "a");
    cr_assert_eq(v2b, v2);
    json_decref(v2b);

    /* An update cannot clear deletionTimestamp, but can drop the finalizer, which removes it. */
    json_t *up = json_deep_copy(v2);
    json_object_del(json_object_get(up, "metadata"), "deletionTimestamp");
    json_object_set_new(json_object_get(up, "metadata"), "labels", json_pack("{s:s}", "a", "b"));
    json_t *v3 = NULL;
    cr_assert_eq(ty_store_update(s, "configmaps", up, &v3, NULL), 0);
    cr_assert(ty_obj_deleting(v3));
    json_decref(up);
    events e = {0};
    ty_store_watch(s, &(ty_store_watch_opts){.resource = "configmaps", .fn = record, .ctx = &e},
                   NULL, NULL);
    up = json_deep_copy(v3);
    json_object_set_new(json_object_get(up, "metadata"), "finalizers", json_array());
    json_t *v4 = (json_t *)1;
    cr_assert_eq(ty_store_update(s, "configmaps", up, &v4, NULL), 0);
    cr_assert_null(v4, "*out is NULL when the update removed the object");
    cr_assert_null(ty_store_get(s, "configmaps", NULL, "a"));
    cr_assert_eq(e.n, 2);
    cr_assert_eq(e.types[0], TY_EVENT_MODIFIED);
    cr_assert_eq(e.types[1], TY_EVENT_DELETED);
    json_decref(up);
    json_decref(v1);
    json_decref(v2);
    json_decref(v3);
    ty_store_free(s);
}

Test(store, bound_running_pod_is_deleted_gracefully)
{
    ty_store *s = new_store();
    json_t *in = pod("p", "node1", "Running");
    json_object_set_new(json_object_get(in, "spec"), "terminationGracePeriodSeconds",
                        json_integer(7));
    json_decref(create(s, "pods", in));
    cr_assert_eq(ty_store_delete(s, "pods", "default", "p", -1, NULL), 0);
    json_t *p = ty_store_get(s, "pods", "default", "p");
    cr_assert_not_null(p, "a running bound pod is only marked");
    cr_assert(ty_obj_deleting(p));
    cr_assert_eq(json_integer_value(
                     json_object_get(json_object_get(p, "metadata"), "deletionGracePeriodSeconds")),
                 7, "the pod's own terminationGracePeriodSeconds");
    const char *ts = meta_s(p, "deletionTimestamp");

    /* A shorter grace period shortens it, keeping the timestamp; a longer one does nothing. */
    uint64_t rev = ty_store_revision(s);
    cr_assert_eq(ty_store_delete(s, "pods", "default", "p", 30, NULL), 0);
    cr_assert_eq(ty_store_revision(s), rev);
    cr_assert_eq(ty_store_delete(s, "pods", "default", "p", 3, NULL), 0);
    json_t *p2 = ty_store_get(s, "pods", "default", "p");
    cr_assert_eq(json_integer_value(
                     json_object_get(json_object_get(p2, "metadata"), "deletionGracePeriodSeconds")),
                 3);
    cr_assert_str_eq(meta_s(p2, "deletionTimestamp"), ts);

    /* Status updates still work on a deleting pod and do not remove it. */
    json_t *st = json_deep_copy(p2);
    json_object_set_new(json_object_get(st, "status"), "message", json_string("stopping"));
    cr_assert_eq(ty_store_update_status(s, "pods", st, NULL, NULL), 0);
    json_decref(st);
    json_t *p3 = ty_store_get(s, "pods", "default", "p");
    cr_assert_not_null(p3);
    json_decref(p3);

    /* The node agent's delete with grace 0 removes it. */
    cr_assert_eq(ty_store_delete(s, "pods", "default", "p", 0, NULL), 0);
    cr_assert_null(ty_store_get(s, "pods", "default", "p"));
    json_decref(p);
    json_decref(p2);
    ty_store_free(s);
}

Test(store, default_grace_is_30_seconds)
{
    ty_store *s = new_store();
    json_decref(create(s, "pods", pod("p", "node1", NULL)));
    cr_assert_eq(ty_store_delete(s, "pods", NULL, "p", -1, NULL), 0);
    json_t *p = ty_store_get(s, "pods", NULL, "p");
    cr_assert_not_null(p, "a bound pending pod is only marked");
    cr_assert_eq(json_integer_value(
                     json_object_get(json_object_get(p, "metadata"), "deletionGracePeriodSeconds")),
                 30);
    json_decref(p);
    ty_store_free(s);
}

Test(store, unbound_or_terminated_pods_go_at_once)
{
    ty_store *s = new_store();
    json_decref(create(s, "pods", pod("unbound", NULL, NULL)));
    json_decref(create(s, "pods", pod("done", "node1", "Succeeded")));
    json_decref(create(s, "pods", pod("failed", "node1", "Failed")));
    json_decref(create(s, "pods", pod("forced", "node1", "Running")));
    cr_assert_eq(ty_store_delete(s, "pods", NULL, "unbound", -1, NULL), 0);
    cr_assert_eq(ty_store_delete(s, "pods", NULL, "done", -1, NULL), 0);
    cr_assert_eq(ty_store_delete(s, "pods", NULL, "failed", 30, NULL), 0);
    cr_assert_eq(ty_store_delete(s, "pods", NULL, "forced", 0, NULL), 0);
    json_t *list = ty_store_list(s, "pods", NULL);
    cr_assert_eq(json_array_size(list), 0);
    json_decref(list);

    /* A pod marked while running goes once it has terminated. */
    json_t *p = create(s, "pods", pod("p", "node1", "Running"));
    cr_assert_eq(ty_store_delete(s, "pods", NULL, "p", -1, NULL), 0);
    json_t *st = ty_store_get(s, "pods", NULL, "p");
    json_t *next = json_deep_copy(st);
    json_object_set_new(json_object_get(next, "status"), "phase", json_string("Succeeded"));
    cr_assert_eq(ty_store_update_status(s, "pods", next, NULL, NULL), 0);
    cr_assert_eq(ty_store_delete(s, "pods", NULL, "p", -1, NULL), 0);
    cr_assert_null(ty_store_get(s, "pods", NULL, "p"));
    json_decref(next);
    json_decref(st);
    json_decref(p);
    ty_store_free(s);
}

Test(store, cascading_deletion_is_multi_level)
{
    ty_store *s = new_store();
    json_t *job = create(s, "pytorchjobs", obj("job", NULL));
    json_t *in = pod("p0", NULL, NULL);
    own(in, job);
    json_t *p0 = create(s, "pods", in);
    in = pod("p1", NULL, NULL);
    own(in, job);
    json_decref(create(s, "pods", in));
    in = obj("svc", NULL);
    own(in, job);
    json_t *svc = create(s, "services", in);
    in = obj("endpoints", NULL);
    own(in, svc);
    json_decref(create(s, "endpoints", in));
    in = obj("cm", NULL);
    own(in, p0);
    json_decref(create(s, "configmaps", in));
    /* Owned by a uid that is not the job's: stays. */
    json_decref(create(s, "pods", pod("other", NULL, NULL)));
    in = obj("keep", NULL);
    json_object_set_new(json_object_get(in, "metadata"), "ownerReferences",
                        json_pack("[{s:s, s:s}]", "name", "job", "uid", "not-the-job"));
    json_decref(create(s, "configmaps", in));
    cr_assert(ty_obj_owned_by(p0, ty_obj_uid(job)));
    cr_assert(!ty_obj_owned_by(job, ty_obj_uid(job)));

    events e = {0};
    ty_store_watch(s, &(ty_store_watch_opts){.fn = record, .ctx = &e}, NULL, NULL);
    cr_assert_eq(ty_store_delete(s, "pytorchjobs", NULL, "job", -1, NULL), 0);
    cr_assert_null(ty_store_get(s, "pytorchjobs", NULL, "job"));
    cr_assert_null(ty_store_get(s, "pods", NULL, "p0"));
    cr_assert_null(ty_store_get(s, "pods", NULL, "p1"));
    cr_assert_null(ty_store_get(s, "services", NULL, "svc"));
    cr_assert_null(ty_store_get(s, "endpoints", NULL, "endpoints"));
    cr_assert_null(ty_store_get(s, "configmaps", NULL, "cm"));
    json_t *other = ty_store_get(s, "pods", NULL, "other");
    json_t *keep = ty_store_get(s, "configmaps", NULL, "keep");
    cr_assert_not_null(other);
    cr_assert_not_null(keep);
    cr_assert_eq(e.n, 6);
    for (int i = 0; i < e.n; i++)
        cr_assert_eq(e.types[i], TY_EVENT_DELETED);
    cr_assert_str_eq(e.resources[0], "pytorchjobs", "the owner goes first");
    json_decref(other);
    json_decref(keep);
    json_decref(p0);
    json_decref(svc);
    json_decref(job);
    ty_store_free(s);
}

Test(store, cascading_marks_running_pods)
{
    ty_store *s = new_store();
    json_t *job = create(s, "pytorchjobs", obj("job", NULL));
    json_t *in = pod("p", "node1", "Running");
    own(in, job);
    json_decref(create(s, "pods", in));
    cr_assert_eq(ty_store_delete(s, "pytorchjobs", NULL, "job", -1, NULL), 0);
    json_t *p = ty_store_get(s, "pods", NULL, "p");
    cr_assert_not_null(p, "a running dependent pod is deleted gracefully");
    cr_assert(ty_obj_deleting(p));
    cr_assert_eq(ty_store_delete(s, "pods", NULL, "p", 0, NULL), 0);
    cr_assert_null(ty_store_get(s, "pods", NULL, "p"));
    json_decref(p);
    json_decref(job);
    ty_store_free(s);
}

/* ---- watch ---- */

Test(store, watch_events_in_order)
{
    ty_store *s = new_store();
    events all = {0}, pods = {0};
    int w1;
    ty_store_watch(s, &(ty_store_watch_opts){.fn = record, .ctx = &all}, &w1, NULL);
    int w2;
    ty_store_watch(s, &(ty_store_watch_opts){.resource = "pods", .fn = record, .ctx = &pods},
                   &w2, NULL);
    cr_assert_neq(w1, w2);
    json_t *p = create(s, "pods", pod("p", NULL, NULL));
    json_decref(create(s, "configmaps", obj("c", NULL)));
    json_t *up = json_deep_copy(p);
    json_object_set_new(json_object_get(up, "metadata"), "labels", json_pack("{s:s}", "a", "b"));
    cr_assert_eq(ty_store_update(s, "pods", up, NULL, NULL), 0);
    json_object_set_new(up, "status", json_pack("{s:s}", "phase", "Running"));
    json_object_del(json_object_get(up, "metadata"), "resourceVersion");
    cr_assert_eq(ty_store_update_status(s, "pods", up, NULL, NULL), 0);
    cr_assert_eq(ty_store_delete(s, "pods", NULL, "p", -1, NULL), 0);
    /* Failed writes send nothing. */
    cr_assert_lt(ty_store_delete(s, "pods", NULL, "p", -1, NULL), 0);

    ty_event_type want_pods[] = {TY_EVENT_ADDED, TY_EVENT_MODIFIED, TY_EVENT_MODIFIED,
                                 TY_EVENT_DELETED};
    cr_assert_eq(pods.n, 4);
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(pods.types[i], want_pods[i], "event %d", i);
        cr_assert_str_eq(pods.resources[i], "pods");
        cr_assert_str_eq(pods.names[i], "p");
    }
    cr_assert_eq(all.n, 5);
    cr_assert_str_eq(all.resources[1], "configmaps");
    cr_assert_eq(all.types[1], TY_EVENT_ADDED);

    ty_store_unwatch(s, w1);
    ty_store_unwatch(s, 12345); /* unknown: nothing happens */
    json_decref(create(s, "pods", pod("q", NULL, NULL)));
    cr_assert_eq(all.n, 5, "no events after unwatch");
    cr_assert_eq(pods.n, 5);
    ty_store_unwatch(s, w2);
    json_decref(create(s, "pods", pod("r", NULL, NULL)));
    cr_assert_eq(pods.n, 5);
    json_decref(up);
    json_decref(p);
    ty_store_free(s);
}

static void check_stored(void *ctx, ty_event_type type, const char *resource, const json_t *o)
{
    ty_store *s = ctx;
    json_t *cur = ty_store_get(s, resource, ty_obj_namespace(o), ty_obj_name(o));
    if (type == TY_EVENT_DELETED)
        cr_assert_null(cur, "the object is gone when DELETED is sent");
    else
        cr_assert_eq(cur, o, "the event carries the stored object");
    json_decref(cur);
}

Test(store, watch_sees_the_store_after_the_write)
{
    ty_store *s = new_store();
    ty_store_watch(s, &(ty_store_watch_opts){.fn = check_stored, .ctx = s}, NULL, NULL);
    json_t *p = create(s, "pods", pod("p", NULL, NULL));
    cr_assert_eq(ty_store_update(s, "pods", p, NULL, NULL), 0);
    cr_assert_eq(ty_store_delete(s, "pods", NULL, "p", -1, NULL), 0);
    json_decref(p);
    ty_store_free(s);
}

Test(store, object_helpers)
{
    json_t *o = json_pack("{s:{s:s, s:s, s:s, s:{s:s}}}", "metadata", "name", "n", "namespace",
                          "ns", "uid", "u", "labels", "k", "v");
    cr_assert_str_eq(ty_obj_name(o), "n");
    cr_assert_str_eq(ty_obj_namespace(o), "ns");
    cr_assert_str_eq(ty_obj_uid(o), "u");
    cr_assert_str_eq(ty_obj_label(o, "k"), "v");
    cr_assert_null(ty_obj_label(o, "x"));
    cr_assert(!ty_obj_deleting(o));
    cr_assert(!ty_obj_owned_by(o, "u"));
    json_t *empty = json_object();
    cr_assert_null(ty_obj_name(empty));
    cr_assert_null(ty_obj_label(empty, "k"));
    cr_assert(!ty_obj_owned_by(empty, "u"));
    json_decref(empty);
    json_decref(o);
}

/* ---- namespaces ---- */

static const char *phase_of(const json_t *o)
{
    return json_string_value(json_object_get(json_object_get(o, "status"), "phase"));
}

Test(store, default_namespace_exists_and_others_must)
{
    ty_store *s = ty_store_new();
    json_t *def = ty_store_get(s, "namespaces", NULL, "default");
    cr_assert_not_null(def);
    cr_assert_str_eq(phase_of(def), "Active");
    cr_assert_null(ty_obj_namespace(def), "namespaces are cluster-scoped");
    json_decref(def);

    ty_error err = TY_ERROR_INIT;
    uint64_t rev = ty_store_revision(s);
    json_t *in = obj("a", "nope");
    cr_assert_lt(ty_store_create(s, "configmaps", in, NULL, &err), 0);
    cr_assert_eq(err.code, TY_STORE_NOT_FOUND);
    cr_assert_str_eq(err.msg, "namespaces \"nope\" not found");
    cr_assert_eq(ty_store_revision(s), rev);
    ty_error_clear(&err);
    /* ensure_namespace creates it once. */
    cr_assert_eq(ty_store_ensure_namespace(s, "nope", NULL), 0);
    json_t *nope = ty_store_get(s, "namespaces", NULL, "nope");
    cr_assert_str_eq(phase_of(nope), "Active");
    cr_assert_eq(ty_store_ensure_namespace(s, "nope", NULL), 0);
    json_t *again = ty_store_get(s, "namespaces", NULL, "nope");
    cr_assert_eq(again, nope, "not written again");
    json_decref(again);
    json_decref(nope);
    cr_assert_eq(ty_store_create(s, "configmaps", in, NULL, NULL), 0);
    json_decref(in);
    /* Cluster-scoped objects need none. */
    json_decref(create(s, "nodes", json_pack("{s:{s:s, s:s}}", "metadata", "name", "n",
                                             "namespace", "nope")));
    cr_assert_lt(ty_store_delete(s, "namespaces", NULL, "default", -1, &err), 0);
    cr_assert_eq(err.code, TY_STORE_FORBIDDEN);
    ty_error_clear(&err);
    ty_store_free(s);
}

Test(store, deleting_a_namespace_deletes_its_content_then_it)
{
    ty_store *s = new_store();
    json_decref(create(s, "configmaps", obj("a", "ns1")));
    json_decref(create(s, "configmaps", obj("b", "ns2")));
    json_t *p = pod("p", "node1", "Running");
    json_object_set_new(json_object_get(p, "metadata"), "namespace", json_string("ns1"));
    json_decref(create(s, "pods", p));

    json_t *marked = NULL;
    cr_assert_eq(ty_store_delete_ex(s, "namespaces", NULL, "ns1", NULL, &marked, NULL), 0);
    cr_assert_str_eq(phase_of(marked), "Terminating");
    cr_assert_not_null(meta_s(marked, "deletionTimestamp"));
    json_decref(marked);
    cr_assert_null(ty_store_get(s, "configmaps", "ns1", "a"));
    json_t *b = ty_store_get(s, "configmaps", "ns2", "b");
    cr_assert_not_null(b, "other namespaces keep their objects");
    json_decref(b);
    /* The running pod is terminating gracefully: the namespace waits for it. */
    json_t *ns1 = ty_store_get(s, "namespaces", NULL, "ns1");
    cr_assert_not_null(ns1);
    cr_assert_str_eq(phase_of(ns1), "Terminating");
    json_decref(ns1);
    ty_error err = TY_ERROR_INIT;
    json_t *in = obj("c", "ns1");
    cr_assert_lt(ty_store_create(s, "configmaps", in, NULL, &err), 0);
    cr_assert_eq(err.code, TY_STORE_FORBIDDEN);
    ty_error_clear(&err);
    json_decref(in);

    cr_assert_eq(ty_store_delete(s, "pods", "ns1", "p", 0, NULL), 0);
    cr_assert_null(ty_store_get(s, "namespaces", NULL, "ns1"), "gone once empty");
    ty_store_free(s);
}

/* ---- delete options ---- */

Test(store, delete_preconditions_and_dry_run)
{
    ty_store *s = new_store();
    json_t *a = create(s, "configmaps", obj("a", NULL));
    uint64_t rev = ty_store_revision(s);
    ty_error err = TY_ERROR_INIT;
    ty_store_delete_opts o = {.grace_seconds = -1, .precondition_uid = "other"};
    cr_assert_lt(ty_store_delete_ex(s, "configmaps", NULL, "a", &o, NULL, &err), 0);
    cr_assert_eq(err.code, TY_STORE_CONFLICT);
    cr_assert_not_null(strstr(err.msg, "Precondition failed: UID in precondition: other"));
    ty_error_clear(&err);
    o = (ty_store_delete_opts){.grace_seconds = -1, .precondition_rv = "999"};
    cr_assert_lt(ty_store_delete_ex(s, "configmaps", NULL, "a", &o, NULL, &err), 0);
    cr_assert_eq(err.code, TY_STORE_CONFLICT);
    ty_error_clear(&err);
    o = (ty_store_delete_opts){.grace_seconds = -1, .propagation = "Sideways"};
    cr_assert_lt(ty_store_delete_ex(s, "configmaps", NULL, "a", &o, NULL, &err), 0);
    cr_assert_eq(err.code, TY_STORE_INVALID);
    ty_error_clear(&err);

    json_t *out = NULL;
    o = (ty_store_delete_opts){.grace_seconds = -1, .dry_run = true};
    cr_assert_eq(ty_store_delete_ex(s, "configmaps", NULL, "a", &o, &out, NULL), 0);
    cr_assert_str_eq(ty_obj_name(out), "a");
    json_decref(out);
    json_t *still = ty_store_get(s, "configmaps", NULL, "a");
    cr_assert_eq(still, a, "a dry run deletes nothing");
    json_decref(still);
    cr_assert_eq(ty_store_revision(s), rev);

    o = (ty_store_delete_opts){.grace_seconds = -1, .precondition_uid = ty_obj_uid(a),
                               .precondition_rv = meta_s(a, "resourceVersion")};
    cr_assert_eq(ty_store_delete_ex(s, "configmaps", NULL, "a", &o, &out, NULL), 0);
    cr_assert_null(ty_store_get(s, "configmaps", NULL, "a"));
    cr_assert_str_eq(meta_s(out, "resourceVersion"), rv_str(ty_store_revision(s) - base),
                     "the removed object carries the deletion's revision");
    json_decref(out);
    json_decref(a);
    ty_store_free(s);
}

static json_t *owned_pod(const char *name, const char *node, const json_t *owner, bool block)
{
    json_t *p = pod(name, node, node ? "Running" : NULL);
    own(p, owner);
    json_t *ref = json_array_get(json_object_get(json_object_get(p, "metadata"), "ownerReferences"), 0);
    json_object_set_new(ref, "blockOwnerDeletion", json_boolean(block));
    return p;
}

static bool has_fin(const json_t *o, const char *f)
{
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(json_object_get(o, "metadata"), "finalizers"), i, v)
        if (strcmp(json_string_value(v), f) == 0)
            return true;
    return false;
}

Test(store, foreground_deletion_waits_for_blocking_dependents)
{
    ty_store *s = new_store();
    json_t *job = create(s, "pytorchjobs", obj("job", NULL));
    json_decref(create(s, "pods", owned_pod("running", "node1", job, true)));
    json_decref(create(s, "pods", owned_pod("pending", NULL, job, true)));
    json_decref(create(s, "pods", owned_pod("loose", "node1", job, false)));

    json_t *out = NULL;
    ty_store_delete_opts o = {.grace_seconds = -1, .propagation = "Foreground"};
    cr_assert_eq(ty_store_delete_ex(s, "pytorchjobs", NULL, "job", &o, &out, NULL), 0);
    cr_assert(has_fin(out, "foregroundDeletion"));
    cr_assert_not_null(meta_s(out, "deletionTimestamp"));
    json_decref(out);
    cr_assert_null(ty_store_get(s, "pods", NULL, "pending"), "an unbound pod goes at once");
    json_t *running = ty_store_get(s, "pods", NULL, "running");
    cr_assert(ty_obj_deleting(running), "the running pod terminates gracefully");
    json_decref(running);
    json_t *j = ty_store_get(s, "pytorchjobs", NULL, "job");
    cr_assert_not_null(j, "the owner waits for its blocking dependent");
    json_decref(j);

    /* The non-blocking dependent does not hold the owner. */
    cr_assert_eq(ty_store_delete(s, "pods", NULL, "running", 0, NULL), 0);
    cr_assert_null(ty_store_get(s, "pytorchjobs", NULL, "job"));
    json_t *loose = ty_store_get(s, "pods", NULL, "loose");
    cr_assert(loose && ty_obj_deleting(loose));
    json_decref(loose);
    json_decref(job);
    ty_store_free(s);
}

Test(store, foreground_deletion_without_dependents_removes_at_once)
{
    ty_store *s = new_store();
    json_decref(create(s, "configmaps", obj("a", NULL)));
    ty_store_delete_opts o = {.grace_seconds = -1, .propagation = "Foreground"};
    cr_assert_eq(ty_store_delete_ex(s, "configmaps", NULL, "a", &o, NULL, NULL), 0);
    cr_assert_null(ty_store_get(s, "configmaps", NULL, "a"));
    ty_store_free(s);
}

Test(store, orphan_deletion_keeps_dependents)
{
    ty_store *s = new_store();
    json_t *job = create(s, "pytorchjobs", obj("job", NULL));
    json_decref(create(s, "pods", owned_pod("p", NULL, job, true)));
    ty_store_delete_opts o = {.grace_seconds = -1, .propagation = "Orphan"};
    cr_assert_eq(ty_store_delete_ex(s, "pytorchjobs", NULL, "job", &o, NULL, NULL), 0);
    cr_assert_null(ty_store_get(s, "pytorchjobs", NULL, "job"));
    json_t *p = ty_store_get(s, "pods", NULL, "p");
    cr_assert_not_null(p);
    cr_assert(!ty_obj_deleting(p));
    cr_assert_null(json_object_get(json_object_get(p, "metadata"), "ownerReferences"));
    json_decref(p);
    json_decref(job);
    ty_store_free(s);
}

Test(store, dependent_goes_only_when_all_owners_are_gone)
{
    ty_store *s = new_store();
    json_t *a = create(s, "configmaps", obj("a", NULL));
    json_t *b = create(s, "configmaps", obj("b", NULL));
    json_t *d = obj("d", NULL);
    json_object_set_new(json_object_get(d, "metadata"), "ownerReferences",
                        json_pack("[{s:s, s:s}, {s:s, s:s}]", "name", "a", "uid", ty_obj_uid(a),
                                  "name", "b", "uid", ty_obj_uid(b)));
    json_decref(create(s, "configmaps", d));
    cr_assert_eq(ty_store_delete(s, "configmaps", NULL, "a", -1, NULL), 0);
    json_t *got = ty_store_get(s, "configmaps", NULL, "d");
    cr_assert_not_null(got, "b still owns it");
    cr_assert(!ty_obj_owned_by(got, ty_obj_uid(a)), "the reference to the gone owner is dropped");
    cr_assert(ty_obj_owned_by(got, ty_obj_uid(b)));
    json_decref(got);
    cr_assert_eq(ty_store_delete(s, "configmaps", NULL, "b", -1, NULL), 0);
    cr_assert_null(ty_store_get(s, "configmaps", NULL, "d"));
    json_decref(a);
    json_decref(b);
    ty_store_free(s);
}

/* ---- dry run ---- */

Test(store, dry_run_writes_nothing)
{
    ty_store *s = new_store();
    events ev = {0};
    int id;
    ty_store_watch(s, &(ty_store_watch_opts){.fn = record, .ctx = &ev}, &id, NULL);
    ty_store_write_opts dry = {.dry_run = true};
    json_t *out = NULL;
    json_t *in = obj("a", NULL);
    cr_assert_eq(ty_store_create_ex(s, "configmaps", in, &dry, &out, NULL), 0);
    cr_assert_not_null(meta_s(out, "uid"));
    cr_assert_str_eq(meta_s(out, "namespace"), "default");
    json_decref(out);
    cr_assert_null(ty_store_get(s, "configmaps", NULL, "a"));
    cr_assert_eq(ty_store_revision(s), base);
    cr_assert_eq(ev.n, 0, "no event");

    json_t *a = create(s, "configmaps", in);
    json_t *changed = json_deep_copy(a);
    json_object_set_new(changed, "spec", json_pack("{s:i}", "replicas", 5));
    cr_assert_eq(ty_store_update_ex(s, "configmaps", changed, &dry, &out, NULL), 0);
    cr_assert_eq(generation(out), 2);
    json_decref(out);
    json_t *st = json_deep_copy(a);
    json_object_set_new(st, "status", json_pack("{s:s}", "phase", "X"));
    cr_assert_eq(ty_store_update_status_ex(s, "configmaps", st, &dry, &out, NULL), 0);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(out, "status"), "phase")), "X");
    json_decref(out);
    json_t *got = ty_store_get(s, "configmaps", NULL, "a");
    cr_assert_eq(got, a, "unchanged");
    cr_assert_eq(ty_store_revision(s), base + 1);
    cr_assert_eq(ev.n, 1, "only the real create");
    /* A dry run still fails as the write would. */
    ty_error err = TY_ERROR_INIT;
    cr_assert_lt(ty_store_create_ex(s, "configmaps", a, &dry, NULL, &err), 0);
    cr_assert_eq(err.code, TY_STORE_CONFLICT);
    ty_error_clear(&err);
    ty_store_unwatch(s, id);
    json_decref(got);
    json_decref(st);
    json_decref(changed);
    json_decref(a);
    ty_store_free(s);
}

/* A scan in slices goes on from its position whatever was written in between: each object
 * stored for the whole pass comes once, and the pass ends with 0. */
Test(store, a_scan_in_slices_survives_writes_between_them)
{
    ty_store *s = new_store();
    for (int i = 0; i < 8; i++) { /* few: no rehash of the table */
        char name[16];
        snprintf(name, sizeof name, "o%d", i);
        json_decref(create(s, "configmaps", obj(name, "ns1")));
    }
    int seen[8] = {0}, fresh = 0;
    size_t pos = 0, n;
    ty_store_item items[3];
    bool deleted = false;
    char gone[16] = "";
    while ((n = ty_store_scan_items(s, "configmaps", &pos, items, 3)) > 0) {
        cr_assert_leq(n, 3);
        for (size_t i = 0; i < n; i++) {
            int k;
            if (strncmp(items[i].key, "ns1/new", 7) == 0)
                fresh++; /* created during the pass: may or may not come */
            else if (sscanf(items[i].key, "ns1/o%d", &k) == 1)
                seen[k]++;
            else
                cr_assert_fail("%s", items[i].key);
        }
        if (!deleted) { /* between slices: one not seen yet goes, two come */
            for (int k = 0; k < 8 && !deleted; k++) {
                if (seen[k])
                    continue;
                snprintf(gone, sizeof gone, "o%d", k);
                cr_assert_eq(ty_store_delete(s, "configmaps", "ns1", gone, -1, NULL), 0);
                deleted = true;
            }
            json_decref(create(s, "configmaps", obj("new1", "ns1")));
            json_decref(create(s, "configmaps", obj("new2", "ns1")));
        }
    }
    cr_assert_leq(fresh, 2);
    for (int k = 0; k < 8; k++) {
        char name[16];
        snprintf(name, sizeof name, "o%d", k);
        cr_assert_eq(seen[k], strcmp(name, gone) == 0 ? 0 : 1, "%s seen %d times", name, seen[k]);
    }
    cr_assert_eq(ty_store_scan_items(s, "configmaps", &pos, items, 3), 0, "the pass is over");
    pos = 0;
    cr_assert_eq(ty_store_scan_items(s, "nothing", &pos, items, 3), 0);
    ty_store_free(s);
}
