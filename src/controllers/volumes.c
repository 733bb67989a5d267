/* PersistentVolumes and their claims. See volumes.h. */
#include "controllers/volumes.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <string.h>

#include "api/storage.h"
#include "base/fs.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/quantity.h"
#include "controllers/events.h"
#include "controllers/podutil.h"
#include "controllers/queue.h"

struct ty_volctl {
    ty_store *store;
    char *dir;
    ty_queue *queue;
    ty_recorder *events;
    int watch_ids[3];
    /* The first write of the current pass that failed: the pass then fails, and the queue
     * runs it again after its back-off. */
    ty_error write_err;
};

static void write_failed(ty_volctl *c, const char *what, const json_t *obj, const char *msg)
{
    if (!c->write_err.msg)
        ty_fail(&c->write_err, "%s %s: %s", what, ty_obj_name(obj), msg);
}

static const json_t *at(const json_t *o, const char *a, const char *b)
{
    return json_object_get(json_object_get(o, a), b);
}

static const char *str_at(const json_t *o, const char *a, const char *b)
{
    const char *s = json_string_value(at(o, a, b));
    return s ? s : "";
}

static const char *member(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

static int64_t storage_of(const json_t *map)
{
    ty_quantity q = {0};
    if (ty_quantity_from_json(json_object_get(map, "storage"), &q, NULL) < 0)
        return -1;
    return q.milli;
}

static const char *volume_mode(const json_t *o)
{
    const char *m = str_at(o, "spec", "volumeMode");
    return *m ? m : "Filesystem";
}

/* The directory a volume serves: its hostPath or local path; NULL for other sources. */
static const char *volume_path(const json_t *pv)
{
    const char *p = json_string_value(at(json_object_get(pv, "spec"), "hostPath", "path"));
    return p ? p : json_string_value(at(json_object_get(pv, "spec"), "local", "path"));
}

/* A pod's claims: calls fn for each persistentVolumeClaim volume; stops at a nonzero return. */
static int each_claim(const json_t *pod, int (*fn)(void *, json_t *vol, const char *claim),
                      void *arg)
{
    size_t i;
    json_t *v;
    json_array_foreach(at(pod, "spec", "volumes"), i, v) {
        const char *claim = json_string_value(at(v, "persistentVolumeClaim", "claimName"));
        int rc = claim ? fn(arg, v, claim) : 0;
        if (rc)
            return rc;
    }
    return 0;
}

/* ---------- binding ---------- */

static bool has_string(const json_t *arr, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) if (json_is_string(v) && strcmp(json_string_value(v), s) == 0)
        return true;
    return false;
}

/* Whether the claim's selector (matchLabels only; matchExpressions match nothing here) takes
 * the volume. */
static bool selector_matches(const json_t *pvc, const json_t *pv)
{
    const json_t *sel = at(pvc, "spec", "selector");
    if (!sel)
        return true;
    if (json_array_size(json_object_get(sel, "matchExpressions")))
        return false;
    const char *k;
    json_t *v;
    json_t *labels = (json_t *)at(pv, "metadata", "labels");
    json_object_foreach(json_object_get(sel, "matchLabels"), k, v) {
        if (!json_equal(json_object_get(labels, k), v))
            return false;
    }
    return true;
}

/* Whether an Available volume can take the claim (FindMatchingVolume's checks). */
static bool fits(const json_t *pvc, const json_t *pv)
{
    if (json_object_get(json_object_get(pv, "spec"), "claimRef") || ty_obj_deleting(pv))
        return false;
    if (strcmp(str_at(pv, "spec", "storageClassName"), str_at(pvc, "spec", "storageClassName")))
        return false;
    if (strcmp(volume_mode(pv), volume_mode(pvc)) != 0 || !selector_matches(pvc, pv))
        return false;
    size_t i;
    json_t *m;
    json_array_foreach(at(pvc, "spec", "accessModes"), i, m) {
        if (!json_is_string(m) || !has_string(at(pv, "spec", "accessModes"), json_string_value(m)))
            return false;
    }
    int64_t want = storage_of(at(json_object_get(pvc, "spec"), "resources", "requests"));
    return want >= 0 && storage_of(at(pv, "spec", "capacity")) >= want;
}

static void set_phase(ty_volctl *c, const char *resource, const json_t *obj, const char *phase)
{
    if (strcmp(str_at(obj, "status", "phase"), phase) == 0)
        return;
    json_t *next = json_deep_copy(obj);
    json_t *status = json_object_get(next, "status");
    if (!json_is_object(status))
        json_object_set_new(next, "status", status = json_object());
    json_object_set_new(status, "phase", json_string(phase));
    ty_error err = TY_ERROR_INIT;
    if (ty_store_update_status(c->store, resource, next, NULL, &err) < 0)
        write_failed(c, resource, obj, err.msg);
    ty_error_clear(&err);
    json_decref(next);
}

/* Makes a volume for the claim: a directory of its own, served as hostPath. */
static json_t *provision(ty_volctl *c, const json_t *pvc, ty_error *err)
{
    TY_AUTOFREE char *name = ty_asprintf("pvc-%s", ty_obj_uid(pvc));
    TY_AUTOFREE char *path = ty_asprintf("%s/%s", c->dir, name);
    /* Pods of any user write there, as with the local-path provisioner. */
    if (ty_mkdir_p(path, 0777) < 0) {
        ty_fail_errno(err, errno, "create %s", path);
        return NULL;
    }
    json_t *spec = json_object_get(pvc, "spec");
    json_t *size = json_object_get(at(spec, "resources", "requests"), "storage");
    json_t *pv = json_pack(
        "{s:s, s:s, s:{s:s, s:{s:s}}, s:{s:{s:O}, s:O, s:s, s:O, s:s, s:{s:s, s:s}}}",
        "apiVersion", "v1", "kind", "PersistentVolume", "metadata", "name", name,
        "annotations", "pv.kubernetes.io/provisioned-by", TY_STORAGE_PROVISIONER, "spec",
        "capacity", "storage", size ? size : json_null(), "accessModes",
        at(pvc, "spec", "accessModes"), "persistentVolumeReclaimPolicy", "Delete",
        "storageClassName", at(pvc, "spec", "storageClassName"), "volumeMode", "Filesystem",
        "hostPath", "path", path, "type", "DirectoryOrCreate");
    json_t *stored = NULL;
    if (ty_store_create(c->store, "persistentvolumes", pv, &stored, err) < 0) {
        json_decref(pv);
        return NULL;
    }
    json_decref(pv);
    ty_event(c->events, pvc, "Normal", "ProvisioningSucceeded",
             "Successfully provisioned volume %s", name);
    return stored;
}

/* Binds the claim to the volume: the volume's claimRef first (so a crash between the two
 * writes leaves a volume that names its claim, which the next pass completes), then the
 * claim's volumeName and status. */
static void bind_claim(ty_volctl *c, const json_t *pvc, const json_t *pv, bool chosen,
                 bool provisioned)
{
    ty_error err = TY_ERROR_INIT;
    json_t *stored = NULL;
    /* A volume pre-bound by name gets the claim's uid too, which makes the binding final. */
    if (!json_string_value(json_object_get(at(pv, "spec", "claimRef"), "uid"))) {
        json_t *next = json_deep_copy(pv);
        json_object_set_new(json_object_get(next, "spec"), "claimRef",
                            json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "kind",
                                      "PersistentVolumeClaim", "namespace", ty_obj_namespace(pvc),
                                      "name", ty_obj_name(pvc), "uid", ty_obj_uid(pvc),
                                      "apiVersion", "v1", "resourceVersion",
                                      str_at(pvc, "metadata", "resourceVersion")));
        int rc = ty_store_update(c->store, "persistentvolumes", next, &stored, &err);
        json_decref(next);
        if (rc < 0)
            goto out;
        pv = stored;
    }
    set_phase(c, "persistentvolumes", pv, "Bound");
    json_t *claim = json_deep_copy(pvc);
    json_t *meta = json_object_get(claim, "metadata");
    json_t *ann = json_object_get(meta, "annotations");
    if (!json_is_object(ann))
        json_object_set_new(meta, "annotations", ann = json_object());
    json_object_set_new(ann, "pv.kubernetes.io/bind-completed", json_string("yes"));
    if (chosen)
        json_object_set_new(ann, "pv.kubernetes.io/bound-by-controller", json_string("yes"));
    if (provisioned) {
        json_object_set_new(ann, "volume.kubernetes.io/storage-provisioner",
                            json_string(TY_STORAGE_PROVISIONER));
        json_object_set_new(ann, "volume.beta.kubernetes.io/storage-provisioner",
                            json_string(TY_STORAGE_PROVISIONER));
    }
    json_object_set_new(json_object_get(claim, "spec"), "volumeName",
                        json_string(ty_obj_name(pv)));
    json_t *bound = NULL;
    if (ty_store_update(c->store, "persistentvolumeclaims", claim, &bound, &err) == 0) {
        json_t *st = json_deep_copy(bound);
        json_object_set_new(st, "status",
                            json_pack("{s:s, s:O, s:O}", "phase", "Bound", "accessModes",
                                      at(pv, "spec", "accessModes"), "capacity",
                                      at(pv, "spec", "capacity")));
        if (ty_store_update_status(c->store, "persistentvolumeclaims", st, NULL, &err) < 0)
            write_failed(c, "claim status", pvc, err.msg);
        json_decref(st);
    }
    json_decref(bound);
    json_decref(claim);
out:
    if (err.msg && !c->write_err.msg)
        ty_fail(&c->write_err, "bind %s to %s: %s", ty_obj_name(pvc), ty_obj_name(pv), err.msg);
    ty_error_clear(&err);
    json_decref(stored);
}

static void reconcile_claim(ty_volctl *c, const json_t *pvc, json_t *pvs)
{
    if (ty_obj_deleting(pvc))
        return;
    const char *want = str_at(pvc, "spec", "volumeName");
    size_t i;
    json_t *pv;
    if (*want) {
        json_array_foreach(pvs, i, pv) {
            if (strcmp(ty_obj_name(pv), want) != 0)
                continue;
            const json_t *ref = at(pv, "spec", "claimRef");
            const char *ref_uid = json_string_value(json_object_get(ref, "uid"));
            if (ref && ref_uid && strcmp(ref_uid, ty_obj_uid(pvc)) != 0)
                return; /* taken by another claim: this one stays Pending */
            if (strcmp(str_at(pvc, "status", "phase"), "Bound") != 0 || !ref)
                bind_claim(c, pvc, pv, false, false);
            return;
        }
        return; /* the volume it names does not exist (yet) */
    }
    /* A volume made for it or naming it (pre-bound by claimRef) comes first. */
    json_t *best = NULL;
    json_array_foreach(pvs, i, pv) {
        const json_t *ref = at(pv, "spec", "claimRef");
        if (ref && !ty_obj_deleting(pv) &&
            strcmp(member(ref, "name"), ty_obj_name(pvc)) == 0 &&
            strcmp(member(ref, "namespace"), ty_obj_namespace(pvc)) == 0) {
            const char *ref_uid = json_string_value(json_object_get(ref, "uid"));
            if (!ref_uid || strcmp(ref_uid, ty_obj_uid(pvc)) == 0) {
                bind_claim(c, pvc, pv, true, false);
                return;
            }
        }
        if (fits(pvc, pv) && (!best || storage_of(at(pv, "spec", "capacity")) <
                                           storage_of(at(best, "spec", "capacity"))))
            best = pv;
    }
    if (best) {
        bind_claim(c, pvc, best, true, false);
        return;
    }
    const char *cls = str_at(pvc, "spec", "storageClassName");
    if (strcmp(cls, TY_STORAGE_DEFAULT_CLASS) != 0 && strcmp(cls, TY_STORAGE_LOCAL_PATH_CLASS))
        return; /* a class nobody provisions, or "": waits for a volume made by hand */
    if (at(pvc, "spec", "selector"))
        return; /* provisioners do not take claims with a selector */
    ty_error err = TY_ERROR_INIT;
    json_t *made = provision(c, pvc, &err);
    if (made) {
        bind_claim(c, pvc, made, true, true);
    } else {
        ty_event(c->events, pvc, "Warning", "ProvisioningFailed", "failed to provision volume: %s",
                 err.msg);
        write_failed(c, "provision", pvc, err.msg);
    }
    ty_error_clear(&err);
    json_decref(made);
}

/* ---------- release ---------- */

typedef struct use {
    const char *claim;
    bool used;
} use;

static int claim_is(void *arg, json_t *vol, const char *claim)
{
    (void)vol;
    use *u = arg;
    u->used = u->used || strcmp(claim, u->claim) == 0;
    return u->used;
}

/* Whether an unfinished pod of `ns` mounts the claim. */
static bool claim_in_use(ty_volctl *c, const char *ns, const char *claim)
{
    json_t *pods = ty_store_list(c->store, "pods", ns);
    use u = {claim, false};
    size_t i;
    json_t *pod;
    json_array_foreach(pods, i, pod) {
        if (!ty_pod_terminated(pod))
            each_claim(pod, claim_is, &u);
        if (u.used)
            break;
    }
    json_decref(pods);
    return u.used;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    if (remove(path) < 0 && errno != ENOENT)
        ty_warn("volumes: remove %s: %s", path, strerror(errno));
    return 0;
}

/* A volume whose claim is gone: Released; with policy Delete, deleted once no pod uses the
 * claim, with its directory when trainyard made it (only under its own volumes directory). */
static void release(ty_volctl *c, const json_t *pv)
{
    set_phase(c, "persistentvolumes", pv, "Released");
    if (strcmp(str_at(pv, "spec", "persistentVolumeReclaimPolicy"), "Delete") != 0)
        return;
    const json_t *ref = at(pv, "spec", "claimRef");
    if (claim_in_use(c, member(ref, "namespace"), member(ref, "name")))
        return;
    const char *path = volume_path(pv);
    size_t n = strlen(c->dir);
    if (path && strncmp(path, c->dir, n) == 0 && path[n] == '/' && !strstr(path + n, "/..") &&
        nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS) < 0 && errno != ENOENT)
        ty_warn("volumes: remove %s: %s", path, strerror(errno));
    ty_error err = TY_ERROR_INIT;
    if (ty_store_delete(c->store, "persistentvolumes", "", ty_obj_name(pv), 0, &err) < 0 &&
        err.code != TY_STORE_NOT_FOUND)
        write_failed(c, "delete", pv, err.msg);
    ty_error_clear(&err);
}

static void reconcile_volume(ty_volctl *c, const json_t *pv)
{
    if (ty_obj_deleting(pv))
        return;
    const json_t *ref = at(pv, "spec", "claimRef");
    if (!ref) {
        set_phase(c, "persistentvolumes", pv, "Available");
        return;
    }
    json_t *pvc = ty_store_get(c->store, "persistentvolumeclaims", member(ref, "namespace"),
                               member(ref, "name"));
    const char *uid = json_string_value(json_object_get(ref, "uid"));
    if (!pvc || (uid && strcmp(uid, ty_obj_uid(pvc)) != 0))
        release(c, pv);
    else if (!uid)
        set_phase(c, "persistentvolumes", pv, "Available"); /* pre-bound: waits for its claim */
    json_decref(pvc);
}

/* One pass over every claim and volume: there are few, and a pass heals whatever an event
 * was missed for. Its writes are level-triggered: when one fails, the pass fails and the queue
 * runs it again after its back-off. */
static int pass(void *ctx, const char *key, ty_error *err)
{
    (void)key;
    ty_volctl *c = ctx;
    json_t *pvcs = ty_store_list(c->store, "persistentvolumeclaims", NULL);
    json_t *pvs = ty_store_list(c->store, "persistentvolumes", NULL);
    size_t i;
    json_t *o;
    json_array_foreach(pvcs, i, o) {
        const char *volume = str_at(o, "spec", "volumeName");
        bool bound = strcmp(str_at(o, "status", "phase"), "Bound") == 0;
        if (bound && *volume && !ty_obj_deleting(o)) {
            /* Its volume was deleted under it: the claim is Lost, as Kubernetes says. */
            json_t *pv = ty_store_get(c->store, "persistentvolumes", "", volume);
            if (!pv) {
                set_phase(c, "persistentvolumeclaims", o, "Lost");
                ty_event(c->events, o, "Warning", "ClaimLost",
                         "Bound claim has lost its PersistentVolume. Data on the volume is lost!");
            }
            json_decref(pv);
        } else if (!bound && strcmp(str_at(o, "status", "phase"), "Lost") != 0) {
            reconcile_claim(c, o, pvs);
            /* What it bound or made is seen by the next claim. */
            json_decref(pvs);
            pvs = ty_store_list(c->store, "persistentvolumes", NULL);
        }
    }
    json_array_foreach(pvs, i, o) reconcile_volume(c, o);
    json_decref(pvs);
    json_decref(pvcs);
    if (!c->write_err.msg)
        return 0;
    int rc = ty_fail(err, "%s", c->write_err.msg);
    ty_error_clear(&c->write_err);
    return rc;
}

static int any_claim(void *arg, json_t *vol, const char *claim)
{
    (void)arg, (void)vol, (void)claim;
    return 1;
}

static void on_event(void *ctx, ty_event_type type, const char *resource, const json_t *obj)
{
    ty_volctl *c = ctx;
    /* Of pods, only the end of one that mounts a claim can release a volume. */
    if (strcmp(resource, "pods") == 0 &&
        !((type == TY_EVENT_DELETED || ty_pod_terminated(obj)) && each_claim(obj, any_claim, NULL)))
        return;
    ty_queue_add(c->queue, "pass");
}

ty_volctl *ty_volctl_new(uv_loop_t *loop, ty_store *store, const char *dir)
{
    ty_volctl *c = TY_NEW(ty_volctl);
    c->store = store;
    c->dir = ty_strdup(dir);
    c->queue = ty_queue_new(loop, "volumes", pass, c);
    c->events = ty_recorder_new(store, "persistentvolume-controller");
    ty_store_watch(store, &(ty_store_watch_opts){.resource = "persistentvolumeclaims",
                                                 .fn = on_event, .ctx = c},
                   &c->watch_ids[0], NULL);
    ty_store_watch(store, &(ty_store_watch_opts){.resource = "persistentvolumes", .fn = on_event,
                                                 .ctx = c},
                   &c->watch_ids[1], NULL);
    ty_store_watch(store, &(ty_store_watch_opts){.resource = "pods", .fn = on_event, .ctx = c},
                   &c->watch_ids[2], NULL);
    ty_queue_add(c->queue, "pass");
    return c;
}

void ty_volctl_resync(ty_volctl *c) { ty_queue_add(c->queue, "pass"); }

void ty_volctl_free(ty_volctl *c)
{
    if (!c)
        return;
    for (int i = 0; i < 3; i++)
        ty_store_unwatch(c->store, c->watch_ids[i]);
    ty_queue_free(c->queue);
    ty_recorder_free(c->events);
    free(c->dir);
    free(c);
}

/* ---------- pods ---------- */

typedef struct check {
    ty_store *store;
    const char *ns;
    char *why;
    size_t cap;
} check;

static int claim_ready(void *arg, json_t *vol, const char *claim)
{
    (void)vol;
    check *k = arg;
    json_t *pvc = ty_store_get(k->store, "persistentvolumeclaims", k->ns, claim);
    int rc = 0;
    if (!pvc) {
        snprintf(k->why, k->cap, "persistentvolumeclaim \"%s\" not found", claim);
        rc = 1;
    } else if (ty_obj_deleting(pvc)) {
        snprintf(k->why, k->cap, "persistentvolumeclaim \"%s\" is being deleted", claim);
        rc = 1;
    } else if (strcmp(str_at(pvc, "status", "phase"), "Bound") != 0) {
        snprintf(k->why, k->cap, "pod has unbound immediate PersistentVolumeClaims");
        rc = 1;
    }
    json_decref(pvc);
    return rc;
}

bool ty_volumes_check_pod(ty_store *store, const json_t *pod, char *why, size_t cap)
{
    check k = {store, ty_obj_namespace(pod), why, cap};
    return each_claim(pod, claim_ready, &k) == 0;
}

typedef struct resolve {
    ty_store *store;
    const char *ns;
    ty_error *err;
} resolve;

static int claim_to_host_path(void *arg, json_t *vol, const char *claim)
{
    resolve *r = arg;
    json_t *pvc = ty_store_get(r->store, "persistentvolumeclaims", r->ns, claim);
    const char *name = pvc ? str_at(pvc, "spec", "volumeName") : "";
    json_t *pv = *name ? ty_store_get(r->store, "persistentvolumes", "", name) : NULL;
    const char *path = pv ? volume_path(pv) : NULL;
    int rc = 0;
    if (!path) {
        ty_fail(r->err, "volume %s: persistentvolumeclaim \"%s\" is %s",
                json_string_value(json_object_get(vol, "name")), claim,
                !pvc ? "not found" : !pv ? "not bound" : "bound to a volume with no local path");
        rc = 1;
    } else {
        json_object_del(vol, "persistentVolumeClaim");
        json_object_set_new(vol, "hostPath", json_pack("{s:s, s:s}", "path", path, "type",
                                                       "DirectoryOrCreate"));
    }
    json_decref(pv);
    json_decref(pvc);
    return rc;
}

json_t *ty_volumes_resolve_pod(ty_store *store, const json_t *pod, ty_error *err)
{
    json_t *copy = json_deep_copy(pod);
    resolve r = {store, ty_obj_namespace(pod), err};
    if (each_claim(copy, claim_to_host_path, &r)) {
        json_decref(copy);
        return NULL;
    }
    return copy;
}
