/* The client seam (store/writer.h): the mirror keeps a cluster's objects as they are and runs
 * no cascades; ty_write_* is the store locally and the writer in cluster mode; the binder's
 * cluster mode (every node, schedulerName trainyard, binding through the writer, assumed
 * pods). */
#include <criterion/criterion.h>
#include <string.h>
#include <uv.h>

#include "controllers/binder.h"
#include "store/writer.h"

static json_t *pod(const char *name, const char *uid, const char *rv, const char *owner_uid)
{
    json_t *p = json_pack("{s:s, s:s, s:{s:s, s:s, s:s, s:s, s:s, s:{}, s:{}}, s:{s:s, "
                          "s:[{s:s, s:s, s:{s:{s:s}}}]}}",
                          "apiVersion", "v1", "kind", "Pod", "metadata", "name", name,
                          "namespace", "team", "uid", uid, "resourceVersion", rv,
                          "creationTimestamp", "2026-01-01T00:00:00Z", "labels", "annotations",
                          "spec", "schedulerName", TY_SCHEDULER_NAME, "containers", "name", "c",
                          "image", "x", "resources", "requests", "cpu", "1");
    if (owner_uid)
        json_object_set_new(json_object_get(p, "metadata"), "ownerReferences",
                            json_pack("[{s:s, s:s, s:s, s:s}]", "apiVersion", "v1", "kind",
                                      "ConfigMap", "name", "o", "uid", owner_uid));
    return p;
}

typedef struct counts {
    int added, modified, deleted;
} counts;

static void count(void *ctx, ty_event_type type, const char *resource, const json_t *obj)
{
    (void)resource, (void)obj;
    counts *c = ctx;
    c->added += type == TY_EVENT_ADDED;
    c->modified += type == TY_EVENT_MODIFIED;
    c->deleted += type == TY_EVENT_DELETED;
}

Test(mirror, keeps_the_clusters_metadata_and_runs_no_cascade)
{
    ty_store *s = ty_store_new();
    counts c = {0};
    ty_store_watch(s, &(ty_store_watch_opts){.resource = "pods", .fn = count, .ctx = &c}, NULL,
                   NULL);
    /* A namespace the mirror never saw: a cluster's object is stored all the same. */
    json_t *p = pod("a", "uid-a", "987654", "owner-1");
    cr_assert_eq(ty_store_mirror_put(s, "pods", p, NULL), 0);
    json_t *got = ty_store_get(s, "pods", "team", "a");
    cr_assert_not_null(got);
    cr_assert_str_eq(ty_obj_uid(got), "uid-a");
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(got, "metadata"),
                                                       "resourceVersion")), "987654");
    /* no default applied (pods get none of the store's create defaults) */
    cr_assert_null(json_object_get(got, "status"));
    json_decref(got);
    /* the owner index serves the informer's index */
    json_t *owned = ty_store_list_owned(s, "pods", "owner-1");
    cr_assert_eq(json_array_size(owned), 1);
    json_decref(owned);
    json_object_set_new(json_object_get(p, "metadata"), "resourceVersion", json_string("987700"));
    cr_assert_eq(ty_store_mirror_put(s, "pods", p, NULL), 0);
    cr_assert_eq(c.added, 1);
    cr_assert_eq(c.modified, 1);
    /* Removing an owner the cluster deleted collects nothing here: the cluster's garbage
     * collector does, and its deletions arrive as events. */
    json_t *owner = json_pack("{s:s, s:s, s:{s:s, s:s, s:s, s:s}}", "apiVersion", "v1", "kind",
                              "ConfigMap", "metadata", "name", "o", "namespace", "team", "uid",
                              "owner-1", "resourceVersion", "5");
    cr_assert_eq(ty_store_mirror_put(s, "configmaps", owner, NULL), 0);
    ty_store_mirror_remove(s, "configmaps", "team", "o");
    cr_assert_null(ty_store_get(s, "configmaps", "team", "o"));
    got = ty_store_get(s, "pods", "team", "a");
    cr_assert_not_null(got, "the mirror ran a cascade of its own");
    json_decref(got);
    ty_store_mirror_remove(s, "pods", "team", "a");
    ty_store_mirror_remove(s, "pods", "team", "a"); /* absent: nothing */
    cr_assert_eq(c.deleted, 1);
    /* an object without a name is refused */
    ty_error err = TY_ERROR_INIT;
    json_t *bad = json_pack("{s:{}}", "metadata");
    cr_assert_eq(ty_store_mirror_put(s, "pods", bad, &err), -1);
    cr_assert_eq(err.code, TY_STORE_INVALID);
    ty_error_clear(&err);
    json_decref(bad);
    json_decref(owner);
    json_decref(p);
    ty_store_free(s);
}

/* A writer that records what it is asked. */
typedef struct recorder {
    char log[2048];
} recorder;

static void note(recorder *r, const char *what, const char *resource, const char *name)
{
    size_t n = strlen(r->log);
    snprintf(r->log + n, sizeof r->log - n, "%s %s %s;", what, resource, name ? name : "");
}

static int r_create(void *ctx, const char *resource, const json_t *obj, ty_error *err)
{
    (void)err;
    note(ctx, "create", resource, ty_obj_name(obj));
    return 0;
}
static int r_update(void *ctx, const char *resource, const json_t *obj, ty_error *err)
{
    (void)err;
    note(ctx, "update", resource, ty_obj_name(obj));
    return 0;
}
static int r_status(void *ctx, const char *resource, const json_t *obj, ty_error *err)
{
    (void)err;
    note(ctx, "status", resource, ty_obj_name(obj));
    return 0;
}
static int r_remove(void *ctx, const char *resource, const char *ns, const char *name,
                    int64_t grace, ty_error *err)
{
    (void)ns, (void)grace, (void)err;
    note(ctx, "delete", resource, name);
    return 0;
}
static int r_bind(void *ctx, const json_t *p, const char *node, ty_error *err)
{
    (void)err;
    note(ctx, "bind", ty_obj_name(p), node);
    return 0;
}
static const ty_writer_ops recording = {r_create, r_update, r_status, r_remove, r_bind};

Test(writer, local_is_the_store_and_remote_is_the_writer)
{
    ty_store *s = ty_store_new();
    cr_assert_not(ty_store_remote(s));
    json_t *cm = json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", "v1", "kind", "ConfigMap",
                           "metadata", "name", "c");
    json_t *out = NULL;
    cr_assert_eq(ty_write_create(s, "configmaps", cm, &out, NULL), 0);
    cr_assert_not_null(out, "locally the stored object comes back");
    cr_assert_not_null(ty_obj_uid(out));
    json_decref(out);
    /* locally a bind is an update of spec.nodeName */
    json_t *p = pod("p", "x", "", NULL);
    json_object_del(json_object_get(p, "metadata"), "uid");
    json_object_del(json_object_get(p, "metadata"), "resourceVersion");
    json_object_set_new(json_object_get(p, "metadata"), "namespace", json_string("default"));
    json_t *stored = NULL;
    cr_assert_eq(ty_store_create(s, "pods", p, &stored, NULL), 0);
    cr_assert_eq(ty_write_bind(s, stored, "n1", &out, NULL), 0);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(out, "spec"), "nodeName")),
                     "n1");
    json_decref(out);

    recorder r = {{0}};
    ty_store_set_writer(s, &recording, &r);
    cr_assert(ty_store_remote(s));
    uint64_t rev = ty_store_revision(s);
    out = (json_t *)1;
    cr_assert_eq(ty_write_create(s, "configmaps", cm, &out, NULL), 0);
    cr_assert_null(out, "a remote write's result comes through the watch");
    cr_assert_eq(ty_write_update(s, "pods", stored, NULL, NULL), 0);
    cr_assert_eq(ty_write_update_status(s, "pods", stored, NULL, NULL), 0);
    cr_assert_eq(ty_write_delete(s, "pods", "default", "p", -1, NULL), 0);
    cr_assert_eq(ty_write_bind(s, stored, "n2", NULL, NULL), 0);
    cr_assert_eq(ty_write_create_owned(s, "configmaps", json_incref(cm), NULL, NULL), 0);
    cr_assert_str_eq(r.log, "create configmaps c;update pods p;status pods p;delete pods p;"
                            "bind p n2;create configmaps c;");
    cr_assert_eq(ty_store_revision(s), rev, "the store changed under a remote writer");
    json_decref(stored);
    json_decref(p);
    json_decref(cm);
    ty_store_free(s);
}

Test(binder, cluster_mode_binds_trainyards_pods_through_the_writer_and_assumes_them)
{
    uv_loop_t loop;
    cr_assert_eq(uv_loop_init(&loop), 0);
    ty_store *s = ty_store_new();
    recorder r = {{0}};
    ty_store_set_writer(s, &recording, &r);
    /* one node of 2 cpu in the mirror; a binder for every node */
    json_t *node = json_pack("{s:s, s:s, s:{s:s, s:s, s:s}, s:{s:{s:s, s:s}}}", "apiVersion",
                             "v1", "kind", "Node", "metadata", "name", "big", "uid", "n-uid",
                             "resourceVersion", "1", "status", "allocatable", "cpu", "2",
                             "memory", "8Gi");
    cr_assert_eq(ty_store_mirror_put(s, "nodes", node, NULL), 0);
    ty_binder *b = ty_binder_new(&loop, s, NULL);
    /* kube-scheduler's pod: not ours */
    json_t *other = pod("theirs", "u0", "2", NULL);
    json_object_del(json_object_get(other, "spec"), "schedulerName");
    cr_assert_eq(ty_store_mirror_put(s, "pods", other, NULL), 0);
    json_t *a = pod("a", "u1", "3", NULL), *bb = pod("b", "u2", "4", NULL);
    cr_assert_eq(ty_store_mirror_put(s, "pods", a, NULL), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert(strstr(r.log, "bind a big;"), "%s", r.log);
    cr_assert_null(strstr(r.log, "theirs"), "%s", r.log);
    /* The binding has not come back: a new pass must not bind `a` again, and its cpu is taken
     * (2 cpu: a and b fit, a third pod does not). */
    cr_assert_eq(ty_store_mirror_put(s, "pods", bb, NULL), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    json_t *c3 = pod("c", "u3", "5", NULL);
    cr_assert_eq(ty_store_mirror_put(s, "pods", c3, NULL), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    const char *first = strstr(r.log, "bind a big;");
    cr_assert_null(strstr(first + 1, "bind a big;"), "bound twice: %s", r.log);
    cr_assert(strstr(r.log, "bind b big;"), "%s", r.log);
    cr_assert_null(strstr(r.log, "bind c "), "the assumed pods' room was given away: %s", r.log);
    cr_assert(strstr(r.log, "status pods c;"), "c says why it waits: %s", r.log);
    ty_binder_free(b);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(uv_loop_close(&loop), 0);
    json_decref(node), json_decref(other), json_decref(a), json_decref(bb), json_decref(c3);
    ty_store_free(s);
}
