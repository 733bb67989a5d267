/* ty_api_admit() over the registry's kinds (kinds.h): schema walk, defaults, rules. */
#include "api/api.h"

#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "base/mem.h"

const ty_kind_info *ty_api_kind(const char *api_version, const char *kind)
{
    const ty_kind_info *k = ty_kind_of(api_version, kind);
    return k && k->ops ? k : NULL;
}

static const ty_kind_ops *find_ops(const char *api_version, const char *kind)
{
    const ty_kind_info *k = ty_api_kind(api_version, kind);
    return k ? k->ops : NULL;
}

const json_t *ty_api_schema(const ty_kind_info *k)
{
    return k->ops ? k->ops->schema() : NULL;
}

/* The error for an object whose apiVersion/kind we do not serve, on `kind` as the API
 * server's decoder reports it, with the version we do know the kind under if any. */
static void unknown_kind(ty_schema_ctx *c, json_t *obj, const char *api_version, const char *kind)
{
    ty_pos pos = ty_pos_member(c, obj, "kind");
    if (!kind || !*kind) {
        ty_fe_required(c, "kind", pos, NULL);
        return;
    }
    for (const ty_kind_info *const *ki = ty_kinds(); *ki; ki++) {
        const ty_kind_info *k = *ki;
        if (k->ops && strcmp(k->kind, kind) == 0) {
            ty_field_errors_add(c->errs, "kind", pos,
                                "no kind \"%s\" is registered for version \"%s\" (did you mean "
                                "apiVersion \"%s%s%s\"?)",
                                kind, api_version ? api_version : "", k->group,
                                *k->group ? "/" : "", k->version);
            return;
        }
    }
    ty_field_errors_add(c->errs, "kind", pos, "no kind \"%s\" is registered for version \"%s\"",
                        kind, api_version ? api_version : "");
}

/* ObjectMeta rules every kind shares (apimachinery ValidateObjectMeta, the parts that apply
 * to a create): a name or generateName, a namespace that is a DNS-1123 label, valid label and
 * annotation keys and label values. */
static void check_meta(ty_schema_ctx *c, json_t *obj, ty_pos pos)
{
    json_t *meta = json_object_get(obj, "metadata");
    if (meta && !json_is_object(meta))
        return;
    json_t *name = json_object_get(meta, "name");
    json_t *gen = json_object_get(meta, "generateName");
    bool has_name = json_is_string(name) && *json_string_value(name);
    bool has_gen = json_is_string(gen) && *json_string_value(gen);
    if (!has_name && !has_gen && (!name || json_is_string(name)))
        ty_fe_required(c, "metadata.name", meta ? ty_pos_member(c, obj, "metadata") : pos,
                       "name or generateName is required");
    TY_AUTOBUF ty_buf path = TY_BUF_INIT;
    ty_buf_adds(&path, "metadata");
    ty_check_meta_labels(c, meta, &path);
    json_t *ns = json_object_get(meta, "namespace");
    if (json_is_string(ns)) {
        const char *why = ty_check_dns1123_label(json_string_value(ns));
        if (why)
            ty_fe_invalid(c, "metadata.namespace", ty_pos_member(c, meta, "namespace"), ns, "%s",
                          why);
    }
}

int ty_api_check_metadata(const json_t *obj, ty_field_errors *errs)
{
    ty_schema_ctx c = {.errs = errs};
    size_t before = errs->count;
    TY_AUTOBUF ty_buf path = TY_BUF_INIT;
    ty_buf_adds(&path, "metadata");
    ty_check_meta_labels(&c, json_object_get(obj, "metadata"), &path);
    return errs->count > before ? -1 : 0;
}

/* Marks the errors from `from` on as found by `webhook`, but for the pod rules'. */
static void mark_webhook(ty_field_errors *errs, size_t from, const char *webhook)
{
    for (size_t i = from; i < errs->count; i++) {
        if (errs->items[i].pod_rule)
            continue;
        errs->items[i].webhook = true;
        errs->webhook = webhook;
    }
}

int ty_api_admit(const ty_manifest *m, json_t *obj, ty_field_errors *errs)
{
    ty_schema_ctx c = {.m = m, .errs = errs};
    size_t before = errs->count;
    ty_pos pos = {0, 0};
    for (size_t i = 0; m && i < m->ndocs; i++)
        if (m->docs[i].obj == obj)
            pos = m->docs[i].pos;

    const char *api_version = json_string_value(json_object_get(obj, "apiVersion"));
    const char *kind = json_string_value(json_object_get(obj, "kind"));
    const ty_kind_info *k = ty_api_kind(api_version, kind);
    if (!k) {
        unknown_kind(&c, obj, api_version, kind);
        return -1;
    }
    const ty_kind_ops *ops = k->ops;

    TY_AUTOBUF ty_buf path = TY_BUF_INIT;
    ty_schema_walk(&c, ops->schema(), obj, pos, &path);

    /* metadata.namespace: "default" for namespaced kinds, as kubectl and the API server fill
     * it from the context's namespace (which is "default" unless set). */
    if (k->namespaced) {
        json_t *meta = json_object_get(obj, "metadata");
        if (!meta) {
            meta = json_object();
            json_object_set_new(obj, "metadata", meta);
        }
        if (json_is_object(meta) && !json_object_get(meta, "namespace"))
            json_object_set_new(meta, "namespace", json_string("default"));
    }
    check_meta(&c, obj, pos);
    if (ops->webhook) {
        size_t from = errs->count;
        ops->rules(&c, obj);
        mark_webhook(errs, from, ops->webhook);
        /* Left as written when refused: the API server admits it again once it dropped
         * unknown fields, and the webhook must see it undefaulted then too. */
        if (errs->count == before)
            ops->defaults(&c, obj);
    } else {
        ops->defaults(&c, obj);
        ops->rules(&c, obj);
    }
    return errs->count > before ? -1 : 0;
}

int ty_api_check_update(const json_t *obj, const json_t *old, ty_field_errors *errs)
{
    const ty_kind_ops *ops = find_ops(json_string_value(json_object_get(obj, "apiVersion")),
                                      json_string_value(json_object_get(obj, "kind")));
    if (!ops || !old)
        return 0;
    ty_schema_ctx c = {.m = NULL, .errs = errs};
    size_t before = errs->count;
    if (ops->transition_rules)
        ops->transition_rules(&c, obj, old);
    size_t from = errs->count;
    if (ops->update_rules)
        ops->update_rules(&c, obj, old);
    if (ops->webhook)
        mark_webhook(errs, from, ops->webhook);
    return errs->count > before ? -1 : 0;
}

char *ty_api_generate_name(const char *prefix)
{
    static const char alphabet[] = "bcdfghjklmnpqrstvwxz2456789";
    char suffix[6];
    for (int i = 0; i < 5; i++)
        suffix[i] = alphabet[(unsigned)rand() % (sizeof(alphabet) - 1)];
    suffix[5] = '\0';
    return ty_asprintf("%s%s", prefix ? prefix : "", suffix);
}
