/* Deletion: finalizers, graceful pods, namespaces, and the garbage collector's cascades by
 * ownerReferences. */
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "store/store_int.h"

static bool pod_terminated(const json_t *pod)
{
    const char *phase = json_string_value(json_object_get(json_object_get(pod, "status"), "phase"));
    return phase && (strcmp(phase, "Succeeded") == 0 || strcmp(phase, "Failed") == 0);
}

#define REF_FIELD(ref, f) json_string_value(json_object_get(ref, f))

/* The stored object a {resource, key} entry names (borrowed), and its key (owned). */
static json_t *lookup_ref(ty_store *s, const json_t *ref, res **rp, char **keyp)
{
    res *r = st_res_of(s, REF_FIELD(ref, "resource"), false);
    json_t *obj = st_obj_at(s, r, REF_FIELD(ref, "key"));
    if (!obj)
        return NULL;
    *rp = r;
    *keyp = ty_strdup(REF_FIELD(ref, "key"));
    return obj;
}

/* Drops obj's ownerReference to owner_uid (a metadata change: no new generation). */
static int drop_owner_ref(ty_store *s, res *r, const char *key, const json_t *obj,
                          const char *owner_uid, ty_error *err)
{
    json_t *next = json_deep_copy(obj);
    json_t *meta = json_object_get(next, "metadata");
    json_t *refs = json_object_get(meta, "ownerReferences");
    for (size_t i = json_array_size(refs); i-- > 0;) {
        const char *uid = REF_FIELD(json_array_get(refs, i), "uid");
        if (uid && strcmp(uid, owner_uid) == 0)
            json_array_remove(refs, i);
    }
    if (json_array_size(refs) == 0)
        json_object_del(meta, "ownerReferences");
    return st_commit_put(s, r, key, next, TY_EVENT_MODIFIED, err);
}

/* Whether obj has an owner other than `except` that still exists. */
static bool has_other_owner(ty_store *s, const json_t *obj, const char *except)
{
    size_t i;
    json_t *ref;
    json_array_foreach(json_object_get(json_object_get(obj, "metadata"), "ownerReferences"), i, ref)
    {
        const char *uid = REF_FIELD(ref, "uid");
        if (uid && strcmp(uid, except) != 0 && st_uid_get(s, uid))
            return true;
    }
    return false;
}

static int delete_at(ty_store *s, res *r, const char *key, const ty_store_delete_opts *o,
                     json_t **out, ty_error *err);

/* The garbage collector's part for the dependents of `uid` (removed, or being deleted in the
 * foreground): a dependent that has another owner still present only loses its reference to
 * this one; the others are deleted. */
static int gc_dependents(ty_store *s, const char *uid, bool foreground, ty_error *err)
{
    json_t *deps = st_collect_owned(s, uid);
    int rc = 0;
    size_t i;
    json_t *ref;
    json_array_foreach(deps, i, ref)
    {
        res *r;
        char *key;
        json_t *obj = lookup_ref(s, ref, &r, &key);
        if (!obj)
            continue; /* gone with an earlier one */
        int one = 0;
        if (has_other_owner(s, obj, uid)) {
            one = drop_owner_ref(s, r, key, obj, uid, err);
        } else if (!ty_obj_deleting(obj)) {
            /* Like the garbage collector: a dependent that has dependents of its own is
             * deleted in the foreground too, so that the owner waits for the whole tree. */
            bool fg = foreground && st_has_dependents(s, ty_obj_uid(obj));
            ty_store_delete_opts o = {.grace_seconds = -1,
                                      .propagation = fg ? "Foreground" : "Background"};
            one = delete_at(s, r, key, &o, NULL, err);
        }
        free(key);
        if (one < 0)
            rc = -1;
    }
    json_decref(deps);
    return rc;
}

/* An owner deleted in the foreground goes once no dependent with blockOwnerDeletion is left. */
static int foreground_check(ty_store *s, const char *owner_uid, ty_error *err)
{
    entry *u = st_uid_get(s, owner_uid);
    if (!u || !u->deleting || !u->fg_finalizer)
        return 0;
    if (st_has_blocking_dependent(s, owner_uid))
        return 0;
    res *r = u->r;
    TY_AUTOFREE char *key = ty_strdup(u->key);
    json_t *next = json_deep_copy(st_entry_tree(s, u));
    json_t *fins = json_object_get(json_object_get(next, "metadata"), "finalizers");
    for (size_t i = json_array_size(fins); i-- > 0;)
        if (strcmp(json_string_value(json_array_get(fins, i)) ?: "", "foregroundDeletion") == 0)
            json_array_remove(fins, i);
    if (json_array_size(fins) == 0)
        json_object_del(json_object_get(next, "metadata"), "finalizers");
    if (st_commit_put(s, r, key, next, TY_EVENT_MODIFIED, err) < 0)
        return -1;
    return st_maybe_finish_deletion(s, r, key, next, err) < 0 ? -1 : 0;
}

int st_owners_check(ty_store *s, const json_t *obj, ty_error *err)
{
    json_t *refs = json_deep_copy(
        json_object_get(json_object_get(obj, "metadata"), "ownerReferences"));
    int rc = 0;
    size_t i;
    json_t *ref;
    json_array_foreach(refs, i, ref)
    {
        if (REF_FIELD(ref, "uid") && foreground_check(s, REF_FIELD(ref, "uid"), err) < 0)
            rc = -1;
    }
    json_decref(refs);
    return rc;
}

/* A terminating namespace goes when the last object in it has gone. */
static int namespace_check(ty_store *s, const char *ns, ty_error *err)
{
    res *r = st_res_of(s, "namespaces", false);
    TY_AUTOFREE char *key = st_object_key("namespaces", NULL, ns);
    json_t *nsobj = st_obj_at(s, r, key);
    if (!nsobj || !ty_obj_deleting(nsobj) ||
        json_array_size(json_object_get(json_object_get(nsobj, "metadata"), "finalizers")) > 0)
        return 0;
    if (st_any_match(s, st_match_in_namespace, ns))
        return 0;
    return st_commit_remove(s, r, key, NULL, err);
}

/* What follows a removal. Failures here leave memory and SQLite agreeing (each step is its
 * own write); the rest of the cascade is not done, and a later delete finishes it. */
void st_after_removal(ty_store *s, res *r, const json_t *removed)
{
    const char *uid = ty_obj_uid(removed);
    if (uid)
        gc_dependents(s, uid, false, NULL);
    st_owners_check(s, removed, NULL);
    const char *ns = ty_obj_namespace(removed);
    if (ns && !st_cluster_scoped(r->name))
        namespace_check(s, ns, NULL);
}

/* ---- deletion ---- */

static int orphan_dependents(ty_store *s, const char *uid, ty_error *err)
{
    json_t *deps = st_collect_owned(s, uid);
    int rc = 0;
    size_t i;
    json_t *ref;
    json_array_foreach(deps, i, ref)
    {
        res *r;
        char *key;
        json_t *obj = lookup_ref(s, ref, &r, &key);
        if (!obj)
            continue;
        rc = drop_owner_ref(s, r, key, obj, uid, err);
        free(key);
        if (rc < 0)
            break;
    }
    json_decref(deps);
    return rc;
}

static json_t *mark_copy(const json_t *cur)
{
    json_t *next = json_deep_copy(cur);
    if (!ty_obj_deleting(cur)) {
        char now[40];
        st_now_string(now, sizeof now);
        json_object_set_new(json_object_get(next, "metadata"), "deletionTimestamp",
                            json_string(now));
    }
    return next;
}

/* A namespace is marked Terminating, everything in it is deleted, and it goes when empty. */
static int delete_namespace(ty_store *s, res *r, const char *key, json_t *cur, bool dry_run,
                            json_t **out, ty_error *err)
{
    /* cur is the cached tree, which the write below drops. */
    TY_AUTOFREE char *name = ty_strdup(ty_obj_name(cur));
    if (strcmp(name, "default") == 0)
        return ty_fail_code(err, TY_STORE_FORBIDDEN,
                         "namespaces \"default\" is forbidden: this namespace may not be deleted");
    json_t *marked = cur;
    if (!ty_obj_deleting(cur) || dry_run) {
        json_t *next = mark_copy(cur);
        json_object_set_new(next, "status", json_pack("{s:s}", "phase", "Terminating"));
        if (dry_run) {
            if (out)
                *out = next;
            else
                json_decref(next);
            return 0;
        }
        if (st_commit_put(s, r, key, next, TY_EVENT_MODIFIED, err) < 0)
            return -1;
        marked = next;
    }
    json_incref(marked);
    TY_AUTOFREE char *ns = ty_strdup(name);
    json_t *content = st_collect(s, st_match_in_namespace, ns);
    int rc = 0;
    size_t i;
    json_t *ref;
    json_array_foreach(content, i, ref)
    {
        res *cr;
        char *ckey;
        json_t *obj = lookup_ref(s, ref, &cr, &ckey);
        if (!obj)
            continue;
        if (!ty_obj_deleting(obj)) {
            ty_store_delete_opts o = {.grace_seconds = -1};
            if (delete_at(s, cr, ckey, &o, NULL, err) < 0)
                rc = -1;
        }
        free(ckey);
    }
    json_decref(content);
    if (rc == 0 && namespace_check(s, ns, err) < 0)
        rc = -1;
    if (out && rc == 0)
        *out = marked;
    else
        json_decref(marked);
    return rc;
}

static int delete_at(ty_store *s, res *r, const char *key, const ty_store_delete_opts *o,
                     json_t **out, ty_error *err)
{
    const char *prop = o->propagation && *o->propagation ? o->propagation : "Background";
    bool foreground = strcmp(prop, "Foreground") == 0, orphan = strcmp(prop, "Orphan") == 0;
    json_t *cur = st_obj_at(s, r, key);
    TY_AUTOFREE char *uid = ty_strdup(ty_obj_uid(cur));
    if (orphan && !o->dry_run) {
        if (orphan_dependents(s, uid, err) < 0)
            return -1;
        cur = st_obj_at(s, r, key);
    }
    json_t *curmeta = json_object_get(cur, "metadata");
    bool has_finalizers = json_array_size(json_object_get(curmeta, "finalizers")) > 0;
    int64_t grace = o->grace_seconds;
    bool graceful_pod = strcmp(r->name, "pods") == 0 &&
                        json_string_value(
                            json_object_get(json_object_get(cur, "spec"), "nodeName")) &&
                        !pod_terminated(cur) && grace != 0;
    if (!has_finalizers && !graceful_pod && !foreground) {
        if (o->dry_run) {
            if (out)
                *out = json_incref(cur);
            return 0;
        }
        return st_commit_remove(s, r, key, out, err);
    }
    if (graceful_pod && grace < 0) {
        json_t *g = json_object_get(json_object_get(cur, "spec"), "terminationGracePeriodSeconds");
        grace = g ? json_integer_value(g) : 30;
    }
    bool add_fg = foreground && !st_has_finalizer(cur, "foregroundDeletion");
    /* A second delete of something already marked only shortens a pod's grace period (or
     * turns a deletion into a foreground one). */
    json_t *prev_grace = json_object_get(curmeta, "deletionGracePeriodSeconds");
    if (ty_obj_deleting(cur) && !add_fg &&
        (!graceful_pod || (prev_grace && json_integer_value(prev_grace) <= grace))) {
        if (out)
            *out = json_incref(cur);
        return 0;
    }
    json_t *next = mark_copy(cur);
    json_t *meta = json_object_get(next, "metadata");
    if (graceful_pod)
        json_object_set_new(meta, "deletionGracePeriodSeconds", json_integer(grace));
    if (add_fg) {
        json_t *fins = json_object_get(meta, "finalizers");
        if (!json_is_array(fins)) {
            fins = json_array();
            json_object_set_new(meta, "finalizers", fins);
        }
        json_array_append_new(fins, json_string("foregroundDeletion"));
    }
    if (o->dry_run) {
        if (out)
            *out = next;
        else
            json_decref(next);
        return 0;
    }
    json_incref(next);
    if (st_commit_put(s, r, key, next, TY_EVENT_MODIFIED, err) < 0) {
        json_decref(next);
        return -1;
    }
    int rc = 0;
    if (foreground && (gc_dependents(s, uid, true, err) < 0 || foreground_check(s, uid, err) < 0))
        rc = -1;
    if (out)
        *out = next;
    else
        json_decref(next);
    return rc;
}

int st_delete_ex_impl(ty_store *s, const char *resource, const char *ns, const char *name,
                      const ty_store_delete_opts *opts, json_t **out, ty_error *err)
{
    ty_store_delete_opts o = opts ? *opts : (ty_store_delete_opts){.grace_seconds = -1};
    if (out)
        *out = NULL;
    if (o.propagation && *o.propagation && strcmp(o.propagation, "Background") != 0 &&
        strcmp(o.propagation, "Foreground") != 0 && strcmp(o.propagation, "Orphan") != 0)
        return ty_fail_code(err, TY_STORE_INVALID,
                            "propagationPolicy: Unsupported value: \"%s\": supported values: "
                            "\"Foreground\", \"Background\", \"Orphan\"",
                            o.propagation);
    res *r = st_res_of(s, resource, false);
    TY_AUTOFREE char *key = st_object_key(resource, ns, name);
    json_t *cur = st_obj_at(s, r, key);
    if (!cur)
        return ty_fail_code(err, TY_STORE_NOT_FOUND, "%s \"%s\" not found", resource, name);
    if (o.precondition_uid && strcmp(o.precondition_uid, ty_obj_uid(cur)) != 0)
        return ty_fail_code(err, TY_STORE_CONFLICT,
                            "Precondition failed: UID in precondition: %s, UID in object meta: %s",
                            o.precondition_uid, ty_obj_uid(cur));
    if (o.precondition_rv && strcmp(o.precondition_rv, st_meta_str(cur, "resourceVersion")) != 0)
        return ty_fail_code(err, TY_STORE_CONFLICT,
                            "Precondition failed: ResourceVersion in precondition: %s, "
                            "ResourceVersion in object meta: %s",
                            o.precondition_rv, st_meta_str(cur, "resourceVersion"));
    if (strcmp(resource, "namespaces") == 0)
        return delete_namespace(s, r, key, cur, o.dry_run, out, err);
    return delete_at(s, r, key, &o, out, err);
}

int ty_store_delete(ty_store *s, const char *resource, const char *ns, const char *name,
                    int64_t grace_seconds, ty_error *err)
{
    ty_store_delete_opts o = {.grace_seconds = grace_seconds, .propagation = "Background"};
    return ty_store_delete_ex(s, resource, ns, name, &o, NULL, err);
}

static bool match_orphaned(const entry *e, const void *arg)
{
    const ty_store *s = arg;
    if (e->nowners == 0)
        return false;
    for (size_t i = 0; i < e->nowners; i++) {
        const char *uid = e->owners[i].uid;
        if (!uid || st_uid_get(s, uid))
            return false;
    }
    return true;
}

static bool match_waiting(const entry *e, const void *arg)
{
    (void)arg;
    return e->deleting && e->fg_finalizer;
}

/* A crash can stop a cascade half-way (each step is its own transaction). After loading, the
 * cascades that the stored state still calls for are finished: dependents whose owners are
 * all gone, owners waiting in foreground deletion, terminating namespaces. */
int st_resume_cascades(ty_store *s, ty_error *err)
{
    int rc = 0;
    json_t *list = st_collect(s, match_orphaned, s);
    size_t i;
    json_t *ref;
    json_array_foreach(list, i, ref)
    {
        res *r;
        char *key;
        json_t *obj = lookup_ref(s, ref, &r, &key);
        if (!obj)
            continue;
        ty_store_delete_opts o = {.grace_seconds = -1};
        if (!ty_obj_deleting(obj) && delete_at(s, r, key, &o, NULL, err) < 0)
            rc = -1;
        free(key);
    }
    json_decref(list);
    list = st_collect(s, match_waiting, NULL);
    json_array_foreach(list, i, ref)
    {
        res *r;
        char *key;
        json_t *obj = lookup_ref(s, ref, &r, &key);
        if (!obj)
            continue;
        TY_AUTOFREE char *uid = ty_strdup(ty_obj_uid(obj));
        free(key);
        if (gc_dependents(s, uid, true, err) < 0 || foreground_check(s, uid, err) < 0)
            rc = -1;
    }
    json_decref(list);
    res *nsr = st_res_of(s, "namespaces", false);
    json_t *names = json_array();
    const ty_map_slot *o;
    for (size_t j = 0; nsr && ty_map_next(&nsr->objects, &j, &o);)
        if (((const entry *)o->value)->deleting)
            json_array_append_new(names, json_string(o->key));
    json_t *key;
    json_array_foreach(names, i, key)
    {
        json_t *obj = st_obj_at(s, nsr, json_string_value(key));
        if (obj && delete_namespace(s, nsr, json_string_value(key), obj, false, NULL, err) < 0)
            rc = -1;
    }
    json_decref(names);
    return rc;
}
