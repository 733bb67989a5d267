#include "cli/nodespec.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "api/manifest.h"
#include "base/mem.h"
#include "base/quantity.h"
#include "controllers/resources.h"

#define MAX_NODES 10000

/* A complete Node: the local node's shape (conditions, addresses, nodeInfo) with the given
 * resources, labels (kubelet's filled in) and spec. Steals the references. */
static json_t *make_node(const char *name, json_t *labels, json_t *spec, json_t *capacity,
                         json_t *allocatable)
{
    json_t *n = ty_node_local(name, 0);
    json_t *meta = json_object_get(n, "metadata"), *status = json_object_get(n, "status");
    json_t *kubelet = json_object_get(meta, "labels");
    json_object_set_new(kubelet, "node.kubernetes.io/instance-type",
                        json_string("trainyard-virtual"));
    if (labels) {
        json_object_update(kubelet, labels);
        json_decref(labels);
    }
    if (spec)
        json_object_set_new(n, "spec", spec);
    json_object_set_new(status, "capacity", capacity ? capacity : json_deep_copy(allocatable));
    json_object_set_new(status, "allocatable",
                        allocatable ? allocatable : json_deep_copy(capacity));
    /* A kubelet's maxPods (110 by default) unless declared: the binder and the job
     * controller's never-fit check count pods against it. */
    json_t *cap = json_object_get(status, "capacity");
    json_t *alloc = json_object_get(status, "allocatable");
    json_t *pods = json_object_get(cap, "pods") ? json_object_get(cap, "pods")
                                                : json_object_get(alloc, "pods");
    pods = pods ? json_incref(pods) : json_string("110");
    if (!json_object_get(cap, "pods"))
        json_object_set(cap, "pods", pods);
    if (!json_object_get(alloc, "pods"))
        json_object_set(alloc, "pods", pods);
    json_decref(pods);
    return n;
}

static bool resource_name_ok(const char *s)
{
    if (!*s || strlen(s) > 253)
        return false;
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("-._/", *p))
            return false;
    return isalnum((unsigned char)s[0]) && isalnum((unsigned char)s[strlen(s) - 1]);
}

static bool subdomain_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 253)
        return false;
    for (const char *p = s; *p; p++)
        if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '-' || *p == '.'))
            return false;
    return isalnum((unsigned char)s[0]) && isalnum((unsigned char)s[n - 1]);
}

/* ---- --nodes SPEC ---- */

static void skip_ws(const char **p)
{
    while (isspace((unsigned char)**p))
        (*p)++;
}

int ty_nodespec_parse(const char *spec, int *next_index, json_t *nodes, ty_error *err)
{
    const char *p = spec;
#define FAIL(...)                                                                            \
    do {                                                                                     \
        TY_AUTOFREE char *what_ = ty_asprintf(__VA_ARGS__);                                  \
        ty_error_clear(err);                                                                 \
        json_decref(res);                                                                    \
        return ty_fail(err, "--nodes '%s': column %d: %s", spec, (int)(p - spec) + 1, what_);\
    } while (0)
    json_t *res = NULL;
    long count = 1;
    skip_ws(&p);
    if (isdigit((unsigned char)*p)) {
        char *end;
        count = strtol(p, &end, 10);
        if (count < 1 || count > MAX_NODES)
            FAIL("the node count must be 1 to %d", MAX_NODES);
        p = end;
        skip_ws(&p);
        if (*p != 'x' && *p != 'X')
            FAIL("expected 'x' after the node count, as in 8x{cpu:32,memory:256Gi}");
        p++;
        skip_ws(&p);
    }
    if (*p != '{')
        FAIL("expected '{' starting the resources, as in 8x{cpu:32,memory:256Gi}");
    p++;
    res = json_object();
    for (;;) {
        skip_ws(&p);
        if (*p == '}' && json_object_size(res) == 0)
            FAIL("no resources between the braces");
        const char *name = p;
        while (*p && *p != ':' && *p != ',' && *p != '}' && !isspace((unsigned char)*p))
            p++;
        TY_AUTOFREE char *rname = ty_strndup(name, (size_t)(p - name));
        if (!resource_name_ok(rname)) {
            p = name;
            FAIL("expected a resource name such as cpu, memory or nvidia.com/gpu");
        }
        if (json_object_get(res, rname)) {
            p = name;
            FAIL("%s: given twice", rname);
        }
        skip_ws(&p);
        if (*p != ':')
            FAIL("%s: expected ':' and a quantity", rname);
        p++;
        skip_ws(&p);
        const char *qs = p;
        while (*p && *p != ',' && *p != '}' && !isspace((unsigned char)*p))
            p++;
        TY_AUTOFREE char *qtext = ty_strndup(qs, (size_t)(p - qs));
        ty_quantity q;
        ty_error qerr = TY_ERROR_INIT;
        if (ty_quantity_parse(qtext, &q, &qerr) < 0 || q.milli < 0) {
            TY_AUTOFREE char *m = ty_strdup(qerr.msg ? qerr.msg : "must not be negative");
            ty_error_clear(&qerr);
            p = qs;
            FAIL("%s: %s", rname, m);
        }
        json_object_set_new(res, rname, json_string(qtext));
        skip_ws(&p);
        if (*p == ',') {
            p++;
            continue;
        }
        if (*p == '}')
            break;
        FAIL("expected ',' or '}'");
    }
    p++;
    skip_ws(&p);
    if (*p)
        FAIL("unexpected text after '}'");
#undef FAIL
    for (long i = 0; i < count; i++) {
        TY_AUTOFREE char *name = ty_asprintf("node-%d", (*next_index)++);
        json_array_append_new(nodes, make_node(name, NULL, NULL, json_deep_copy(res), NULL));
    }
    json_decref(res);
    return 0;
}

/* ---- --nodes-file FILE ---- */

typedef struct fctx {
    const ty_manifest *m;
    ty_error *err;
} fctx;

static int field_fail(fctx *f, const json_t *parent, const char *key, const char *path,
                      const char *what)
{
    ty_pos pos = ty_manifest_pos_member(f->m, parent, key, false);
    if (!pos.line)
        pos = ty_manifest_pos_member(f->m, parent, key, true);
    return ty_fail(f->err, "%s:%d:%d: %s: %s", f->m->file, pos.line, pos.col, path, what);
}

static int check_resources(fctx *f, const json_t *parent, const char *key, json_t **out)
{
    json_t *list = json_object_get(parent, key);
    *out = NULL;
    if (!list || json_is_null(list))
        return 0;
    TY_AUTOFREE char *path = ty_asprintf("status.%s", key);
    if (!json_is_object(list))
        return field_fail(f, parent, key, path, "expected a map of resource quantities");
    const char *k;
    json_t *v;
    json_object_foreach(list, k, v)
    {
        TY_AUTOFREE char *fpath = ty_asprintf("%s.%s", path, k);
        if (!resource_name_ok(k))
            return field_fail(f, list, k, fpath, "not a resource name");
        ty_quantity q;
        ty_error qerr = TY_ERROR_INIT;
        if (ty_quantity_from_json(v, &q, &qerr) < 0 || q.milli < 0) {
            int rc = field_fail(f, list, k, fpath, qerr.msg ? qerr.msg : "must not be negative");
            ty_error_clear(&qerr);
            return rc;
        }
    }
    *out = json_deep_copy(list);
    return 0;
}

static int check_taints(fctx *f, const json_t *spec)
{
    json_t *taints = json_object_get(spec, "taints");
    if (!taints || json_is_null(taints))
        return 0;
    if (!json_is_array(taints))
        return field_fail(f, spec, "taints", "spec.taints", "expected a list of taints");
    size_t i;
    json_t *t;
    json_array_foreach(taints, i, t)
    {
        TY_AUTOFREE char *path = ty_asprintf("spec.taints[%zu]", i);
        if (!json_is_object(t))
            return field_fail(f, spec, "taints", path, "expected a taint (key, value, effect)");
        const json_t *key = json_object_get(t, "key"), *value = json_object_get(t, "value");
        const char *effect = json_string_value(json_object_get(t, "effect"));
        if (!json_is_string(key) || !json_string_length(key)) {
            TY_AUTOFREE char *p = ty_asprintf("%s.key", path);
            return field_fail(f, t, json_object_get(t, "key") ? "key" : "effect", p,
                              "required: a taint needs a key");
        }
        if (value && !json_is_string(value)) {
            TY_AUTOFREE char *p = ty_asprintf("%s.value", path);
            return field_fail(f, t, "value", p, "expected a string");
        }
        if (!effect || (strcmp(effect, "NoSchedule") && strcmp(effect, "PreferNoSchedule") &&
                        strcmp(effect, "NoExecute"))) {
            TY_AUTOFREE char *p = ty_asprintf("%s.effect", path);
            return field_fail(f, t, json_object_get(t, "effect") ? "effect" : "key", p,
                              "must be NoSchedule, PreferNoSchedule or NoExecute");
        }
    }
    return 0;
}

static int load_doc(fctx *f, const ty_manifest_doc *d, json_t *nodes)
{
    json_t *obj = d->obj;
    const char *kind = json_string_value(json_object_get(obj, "kind"));
    if (json_object_get(obj, "kind") && (!kind || strcmp(kind, "Node") != 0))
        return field_fail(f, obj, "kind", "kind", "expected Node");
    const char *api = json_string_value(json_object_get(obj, "apiVersion"));
    if (json_object_get(obj, "apiVersion") && (!api || strcmp(api, "v1") != 0))
        return field_fail(f, obj, "apiVersion", "apiVersion", "expected v1");
    json_t *meta = json_object_get(obj, "metadata");
    const char *name = json_string_value(json_object_get(meta, "name"));
    if (!json_is_object(meta) || !name) {
        ty_pos pos = d->pos;
        return ty_fail(f->err, "%s:%d:%d: metadata.name: required", f->m->file, pos.line,
                       pos.col);
    }
    if (!subdomain_ok(name))
        return field_fail(f, meta, "name", "metadata.name",
                          "must be a lowercase DNS subdomain (a-z, 0-9, '-', '.')");
    json_t *labels = json_object_get(meta, "labels");
    if (labels && !json_is_null(labels)) {
        if (!json_is_object(labels))
            return field_fail(f, meta, "labels", "metadata.labels", "expected a map of strings");
        const char *k;
        json_t *v;
        json_object_foreach(labels, k, v) if (!json_is_string(v))
        {
            TY_AUTOFREE char *p = ty_asprintf("metadata.labels.%s", k);
            return field_fail(f, labels, k, p, "expected a string (quote it)");
        }
    }
    json_t *spec = json_object_get(obj, "spec");
    if (spec && !json_is_null(spec) && !json_is_object(spec))
        return field_fail(f, obj, "spec", "spec", "expected an object");
    if (check_taints(f, spec) < 0)
        return -1;
    json_t *unsched = json_object_get(spec, "unschedulable");
    if (unsched && !json_is_boolean(unsched))
        return field_fail(f, spec, "unschedulable", "spec.unschedulable", "expected true or false");
    json_t *status = json_object_get(obj, "status");
    json_t *cap = NULL, *alloc = NULL;
    if (check_resources(f, status, "capacity", &cap) < 0)
        return -1;
    if (check_resources(f, status, "allocatable", &alloc) < 0) {
        json_decref(cap);
        return -1;
    }
    if (!cap && !alloc) {
        ty_pos pos = d->pos;
        return ty_fail(f->err, "%s:%d:%d: status.capacity: required (the node's resources, "
                       "e.g. cpu, memory, nvidia.com/gpu)", f->m->file, pos.line, pos.col);
    }
    json_t *nspec = json_object();
    if (json_array_size(json_object_get(spec, "taints")))
        json_object_set(nspec, "taints", json_object_get(spec, "taints"));
    if (json_is_true(unsched))
        json_object_set_new(nspec, "unschedulable", json_true());
    json_array_append_new(nodes, make_node(name, json_is_object(labels) ? json_deep_copy(labels)
                                                                         : NULL,
                                           nspec, cap, alloc));
    return 0;
}

int ty_nodespec_load(const char *path, json_t *nodes, ty_error *err)
{
    ty_manifest *m = NULL;
    if (ty_manifest_load(path, &m, err) < 0)
        return ty_error_wrap(err, "--nodes-file");
    fctx f = {m, err};
    int rc = 0;
    for (size_t i = 0; i < m->ndocs && rc == 0; i++)
        rc = load_doc(&f, &m->docs[i], nodes);
    if (rc == 0 && m->ndocs == 0)
        rc = ty_fail(err, "--nodes-file %s: no Node objects in it", path);
    ty_manifest_free(m);
    return rc;
}

int ty_nodespec_check_unique(const json_t *nodes, ty_error *err)
{
    size_t i, j;
    json_t *a, *b;
    json_array_foreach(nodes, i, a)
    {
        const char *na = json_string_value(json_object_get(json_object_get(a, "metadata"), "name"));
        for (j = 0; j < i; j++) {
            b = json_array_get(nodes, j);
            const char *nb =
                json_string_value(json_object_get(json_object_get(b, "metadata"), "name"));
            if (strcmp(na, nb) == 0)
                return ty_fail(err, "node %s is declared twice (--nodes names its nodes "
                               "node-1, node-2, ...)", na);
        }
    }
    return 0;
}

int ty_nodespec_add(json_t **nodes, int *next_index, bool is_file, const char *arg,
                    ty_error *err)
{
    if (!*nodes)
        *nodes = json_array();
    if (is_file)
        return ty_nodespec_load(arg, *nodes, err);
    return ty_nodespec_parse(arg, next_index, *nodes, err);
}
