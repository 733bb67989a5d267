/* pods/binding: how a scheduler binds a pod to a node, as kube-apiserver's BindingREST does
 * (POST /api/v1/namespaces/NS/pods/NAME/binding with a v1 Binding). It sets spec.nodeName and
 * the condition PodScheduled=True; a pod already bound, or being deleted, is a 409 Conflict.
 * trainyard's own binder writes the store directly; this is for a scheduler elsewhere: a
 * cluster-mode trainyard binding gangs on this server as a stand-in cluster (docs/cluster.md). */
#include <string.h>

#include "base/mem.h"
#include "controllers/podutil.h"
#include "server/server_int.h"

enum MHD_Result srv_handle_binding(call *c)
{
    enum MHD_Result ret;
    if (srv_check_dry_run(c, &ret) < 0)
        return ret;
    json_t *b = srv_read_body(c, &ret);
    if (!b)
        return ret;
    json_t *cur = NULL, *next = NULL, *stored = NULL;
    TY_CLEANUP_ERROR ty_error err = TY_ERROR_INIT;
    const char *kind = json_string_value(json_object_get(b, "kind"));
    json_t *target = json_object_get(b, "target");
    const char *node = json_string_value(json_object_get(target, "name"));
    const char *tkind = json_string_value(json_object_get(target, "kind"));
    const char *bname = json_string_value(json_object_get(json_object_get(b, "metadata"), "name"));
    /* Without a kind the body is taken as the endpoint's type, as kube-apiserver decodes it. */
    if (!json_is_object(b) || (kind && strcmp(kind, "Binding") != 0)) {
        ret = srv_fail(c, 400, "BadRequest", "the body of pods/binding must be a v1 Binding");
        goto out;
    }
    if (bname && strcmp(bname, c->path.name) != 0) {
        ret = srv_fail(c, 400, "BadRequest",
                       "the name of the object (%s) does not match the name on the URL (%s)",
                       bname, c->path.name);
        goto out;
    }
    if (!node || !*node || (tkind && *tkind && strcmp(tkind, "Node") != 0)) {
        ty_field_errors errs = TY_FIELD_ERRORS_INIT;
        ty_field_errors_add(&errs, "target.name", (ty_pos){0, 0},
                            "Required value: a Binding's target must name a Node");
        ret = srv_fail_invalid(c, c->path.name, &errs);
        ty_field_errors_free(&errs);
        goto out;
    }
    cur = ty_store_get(c->srv->store, "pods", c->path.ns, c->path.name);
    if (!cur) {
        ret = srv_fail_not_found(c, c->ri, c->path.name);
        goto out;
    }
    const char *bound = json_string_value(json_object_get(json_object_get(cur, "spec"),
                                                          "nodeName"));
    if (ty_obj_deleting(cur)) {
        TY_AUTOFREE char *why = ty_asprintf("pod %s is being deleted, cannot be assigned to a "
                                            "host", c->path.name);
        ret = srv_fail_conflict(c, c->path.name, why);
        goto out;
    }
    if (bound && *bound) {
        TY_AUTOFREE char *why = ty_asprintf("pod %s is already assigned to node \"%s\"",
                                            c->path.name, bound);
        ret = srv_fail_conflict(c, c->path.name, why);
        goto out;
    }
    if (srv_dry_run(c)) {
        ret = srv_reply(c, 201, json_pack("{s:s, s:s, s:{}, s:s, s:i}", "kind", "Status",
                                          "apiVersion", "v1", "metadata", "status", "Success",
                                          "code", 201));
        goto out;
    }
    /* The update carries the version read: a binding racing another fails with 409. */
    next = json_deep_copy(cur);
    json_object_set_new(json_object_get(next, "spec"), "nodeName", json_string(node));
    json_t *ann = json_object_get(json_object_get(b, "metadata"), "annotations");
    if (json_is_object(ann) && json_object_size(ann)) {
        json_t *meta = json_object_get(next, "metadata");
        json_t *mine = json_object_get(meta, "annotations");
        if (!json_is_object(mine))
            json_object_set_new(meta, "annotations", mine = json_object());
        json_object_update(mine, ann);
    }
    if (ty_store_update(c->srv->store, "pods", next, &stored, &err) < 0) {
        ret = srv_fail_store(c, c->path.name, &err);
        goto out;
    }
    json_t *st = json_deep_copy(stored);
    ty_pod_set_condition(st, "PodScheduled", "True", NULL, NULL);
    /* Bound already: a lost condition is cosmetic, as with kube-apiserver's two steps. */
    ty_store_update_status(c->srv->store, "pods", st, NULL, NULL);
    json_decref(st);
    ret = srv_reply(c, 201, json_pack("{s:s, s:s, s:{}, s:s, s:i}", "kind", "Status",
                                      "apiVersion", "v1", "metadata", "status", "Success",
                                      "code", 201));
out:
    json_decref(stored);
    json_decref(next);
    json_decref(cur);
    json_decref(b);
    return ret;
}
