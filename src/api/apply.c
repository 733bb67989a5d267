/* Server-side apply: field sets, merge, ownership. See apply.h.
 *
 * Inside this file a field set is a tree in which every member carries a "." child ({} for
 * a leaf is {".": {}}), so union and difference are plain recursive member-wise operations;
 * FieldsV1 (what managedFields show) is converted at the edges. */
#include "api/apply.h"

#include <string.h>

#include "api/patch.h"
#include "base/buf.h"
#include "base/mem.h"

#define CODE_CONFLICT 409

/* ---------- merge keys ---------- */

/* A pod template anywhere (a job's replicas, a Workload's pod sets) merges as a pod's spec. */
static const char *list_key(const char *resource, const char *path)
{
    const char *t = NULL;
    for (const char *p = path; (p = strstr(p, "template.spec")); p++)
        t = p;
    if (t && (t == path || t[-1] == '.') && (t[13] == '\0' || t[13] == '.'))
        return ty_patch_list_key("pods", t + 9);
    return ty_patch_list_key(resource, path);
}

static char *child_path(const char *path, const char *k)
{
    return *path ? ty_asprintf("%s.%s", path, k) : ty_strdup(k);
}

/* Whether every element of `list` is an object with a scalar `key`. */
static bool keyed(const json_t *list, const char *key)
{
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e)
    {
        json_t *v = json_object_get(e, key);
        if (!json_is_object(e) || !v || json_is_object(v) || json_is_array(v))
            return false;
    }
    return true;
}

static bool primitives(const json_t *list)
{
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e)
    {
        if (json_is_object(e) || json_is_array(e))
            return false;
    }
    return true;
}

/* How `list` at `path` merges: a merge key, "" as a set, NULL atomic. */
static const char *list_mode(const char *resource, const char *path, const json_t *list)
{
    const char *key = list_key(resource, path);
    if (!key)
        return NULL;
    if (*key)
        return keyed(list, key) ? key : NULL;
    return primitives(list) ? key : NULL;
}

static char *elem_name(const char *key, const json_t *e)
{
    json_t *kv = json_pack("{s:O}", key, json_object_get(e, key));
    char *text = json_dumps(kv, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    json_decref(kv);
    char *name = ty_asprintf("k:%s", text);
    free(text);
    return name;
}

static char *value_name(const json_t *v)
{
    char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    char *name = ty_asprintf("v:%s", text);
    free(text);
    return name;
}

/* ---------- field sets (internal form) ---------- */

static json_t *leaf(void) { return json_pack("{s:{}}", "."); }

static bool only_dot(const json_t *n)
{
    return json_object_size(n) == 1 && json_object_get(n, ".");
}

static json_t *build(const char *resource, const char *path, const json_t *v)
{
    if (json_is_object(v) && json_object_size(v)) {
        json_t *n = json_object();
        const char *k;
        json_t *c;
        json_object_foreach((json_t *)v, k, c)
        {
            TY_AUTOFREE char *cp = child_path(path, k);
            TY_AUTOFREE char *fk = ty_asprintf("f:%s", k);
            json_object_set_new(n, fk, build(resource, cp, c));
        }
        return n;
    }
    const char *key = json_is_array(v) && json_array_size(v) ? list_mode(resource, path, v) : NULL;
    if (!key)
        return leaf();
    json_t *n = json_object();
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e)
    {
        if (!*key) {
            TY_AUTOFREE char *name = value_name(e);
            json_object_set_new(n, name, leaf());
            continue;
        }
        json_t *en = leaf();
        const char *k;
        json_t *c;
        json_object_foreach(e, k, c)
        {
            TY_AUTOFREE char *cp = child_path(path, k);
            TY_AUTOFREE char *fk = ty_asprintf("f:%s", k);
            json_object_set_new(en, fk, build(resource, cp, c));
        }
        TY_AUTOFREE char *name = elem_name(key, e);
        json_object_set_new(n, name, en);
    }
    return n;
}

/* What of an object belongs to field sets: no identity, status or server-managed metadata. */
static json_t *owned_part(const json_t *obj)
{
    static const char *const server_meta[] = {
        "name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp",
        "deletionTimestamp", "deletionGracePeriodSeconds", "managedFields", "selfLink"};
    json_t *o = json_copy((json_t *)obj);
    json_object_del(o, "apiVersion");
    json_object_del(o, "kind");
    json_object_del(o, "status");
    json_t *meta = json_object_get(o, "metadata");
    if (json_is_object(meta)) {
        meta = json_copy(meta);
        for (size_t i = 0; i < TY_ARRAY_LEN(server_meta); i++)
            json_object_del(meta, server_meta[i]);
        if (json_object_size(meta))
            json_object_set_new(o, "metadata", meta);
        else {
            json_decref(meta);
            json_object_del(o, "metadata");
        }
    }
    return o;
}

static json_t *fieldset(const char *resource, const json_t *obj)
{
    json_t *o = owned_part(obj);
    json_t *n = json_object_size(o) ? build(resource, "", o) : json_object();
    json_decref(o);
    return n;
}

static json_t *fs_union(const json_t *a, const json_t *b)
{
    json_t *r = json_deep_copy(a);
    const char *k;
    json_t *bc;
    json_object_foreach((json_t *)b, k, bc)
    {
        json_t *ac = json_object_get(r, k);
        json_object_set_new(r, k, ac ? fs_union(ac, bc) : json_deep_copy(bc));
    }
    return r;
}

/* a - b, without empty nodes. */
static json_t *fs_sub(const json_t *a, const json_t *b)
{
    json_t *r = json_object();
    const char *k;
    json_t *ac;
    json_object_foreach((json_t *)a, k, ac)
    {
        json_t *bc = b ? json_object_get(b, k) : NULL;
        if (!bc) {
            json_object_set_new(r, k, json_deep_copy(ac));
            continue;
        }
        json_t *d = fs_sub(ac, bc);
        if (json_object_size(d))
            json_object_set_new(r, k, d);
        else
            json_decref(d);
    }
    return r;
}

static json_t *to_v1(const json_t *n)
{
    json_t *r = json_object();
    if (only_dot(n))
        return r;
    const char *k;
    json_t *c;
    json_object_foreach((json_t *)n, k, c)
    json_object_set_new(r, k, strcmp(k, ".") == 0 ? json_object() : to_v1(c));
    return r;
}

static json_t *from_v1(const json_t *n)
{
    if (!json_is_object(n) || json_object_size(n) == 0)
        return leaf();
    json_t *r = json_object();
    const char *k;
    json_t *c;
    json_object_foreach((json_t *)n, k, c)
    json_object_set_new(r, k, strcmp(k, ".") == 0 ? json_object() : from_v1(c));
    return r;
}

json_t *ty_apply_fieldset(const char *resource, const json_t *obj)
{
    json_t *n = fieldset(resource, obj);
    json_t *r = json_object_size(n) ? to_v1(n) : json_object();
    json_decref(n);
    return r;
}

/* ---------- values along a field set ---------- */

/* The index of the element a "k:" or "v:" name stands for, or -1. */
static ssize_t find_elem(const json_t *list, const char *name)
{
    if (!json_is_array(list) || strlen(name) < 2)
        return -1;
    json_t *want = json_loads(name + 2, JSON_DECODE_ANY, NULL);
    if (!want)
        return -1;
    ssize_t found = -1;
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e)
    {
        bool eq;
        if (name[0] == 'v') {
            eq = json_equal(e, want);
        } else {
            eq = json_is_object(e) && json_is_object(want);
            const char *k;
            json_t *v;
            json_object_foreach(want, k, v)
            eq = eq && json_equal(json_object_get(e, k), v);
        }
        if (eq) {
            found = (ssize_t)i;
            break;
        }
    }
    json_decref(want);
    return found;
}

static json_t *child_value(const json_t *v, const char *name)
{
    if (!v)
        return NULL;
    if (name[0] == 'f' && name[1] == ':')
        return json_is_object(v) ? json_object_get(v, name + 2) : NULL;
    ssize_t i = find_elem(v, name);
    return i < 0 ? NULL : json_array_get(v, (size_t)i);
}

static void delete_child(json_t *v, const char *name)
{
    if (name[0] == 'f' && name[1] == ':') {
        json_object_del(v, name + 2);
        return;
    }
    ssize_t i = find_elem(v, name);
    if (i >= 0)
        json_array_remove(v, (size_t)i);
}

/* ".spec.containers[name=\"a\"].image", as the API server prints field paths. */
static void add_path_part(ty_buf *b, const char *name)
{
    if (name[0] == 'f') {
        ty_buf_addf(b, ".%s", name + 2);
        return;
    }
    if (name[0] == 'v') {
        ty_buf_addf(b, "[=%s]", name + 2);
        return;
    }
    json_t *kv = json_loads(name + 2, 0, NULL);
    ty_buf_addf(b, "[");
    const char *k;
    json_t *v;
    bool first = true;
    json_object_foreach(kv, k, v)
    {
        char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        ty_buf_addf(b, "%s%s=%s", first ? "" : ",", k, t);
        free(t);
        first = false;
    }
    ty_buf_addf(b, "]");
    json_decref(kv);
}

/* ---------- apply ---------- */

static json_t *merge_value(const char *resource, const char *path, json_t *t, const json_t *c);

static void merge_into(const char *resource, const char *path, json_t *t, const json_t *cfg)
{
    const char *k;
    json_t *c;
    json_object_foreach((json_t *)cfg, k, c)
    {
        TY_AUTOFREE char *cp = child_path(path, k);
        json_object_set_new(t, k, merge_value(resource, cp, json_object_get(t, k), c));
    }
}

/* The merged value (a new reference; `t`, owned by the caller's tree, may be changed and
 * returned). */
static json_t *merge_value(const char *resource, const char *path, json_t *t, const json_t *c)
{
    if (json_is_object(t) && json_is_object(c)) {
        merge_into(resource, path, t, c);
        return json_incref(t);
    }
    if (json_is_array(t) && json_is_array(c)) {
        const char *key = list_mode(resource, path, c);
        if (key && list_mode(resource, path, t) == key) {
            size_t i;
            json_t *e;
            json_array_foreach(c, i, e)
            {
                ssize_t at = -1;
                if (*key) {
                    TY_AUTOFREE char *name = elem_name(key, e);
                    at = find_elem(t, name);
                } else {
                    for (size_t j = 0; j < json_array_size(t); j++)
                        if (json_equal(json_array_get(t, j), e))
                            at = (ssize_t)j;
                }
                if (at < 0)
                    json_array_append_new(t, json_deep_copy(e));
                else if (*key)
                    json_array_set_new(t, (size_t)at,
                                       merge_value(resource, path, json_array_get(t, (size_t)at), e));
            }
            return json_incref(t);
        }
    }
    return json_deep_copy(c);
}

/* Removes from `t` the members of `gone` that `keep` does not hold; a map or list emptied that
 * way goes too. */
static void prune(json_t *t, const json_t *gone, const json_t *keep)
{
    const char *k;
    json_t *gc;
    json_object_foreach((json_t *)gone, k, gc)
    {
        if (strcmp(k, ".") == 0)
            continue;
        json_t *kc = keep ? json_object_get(keep, k) : NULL;
        json_t *v = child_value(t, k);
        if (!v)
            continue;
        if (json_object_get(gc, ".") && !kc) {
            delete_child(t, k);
            continue;
        }
        if (json_is_object(v) || json_is_array(v)) {
            size_t before = json_is_object(v) ? json_object_size(v) : json_array_size(v);
            prune(v, gc, kc);
            size_t after = json_is_object(v) ? json_object_size(v) : json_array_size(v);
            if (before && !after && !kc)
                delete_child(t, k);
        }
    }
}

/* Adds to `found` (a field set) the leaves `mine` sets to a value other than the live one
 * that `theirs` owns. */
static void find_conflicts(const json_t *mine, const json_t *theirs, const json_t *cfg,
                           const json_t *live, json_t *found)
{
    const char *k;
    json_t *mc;
    json_object_foreach((json_t *)mine, k, mc)
    {
        json_t *tc = json_object_get(theirs, k);
        if (strcmp(k, ".") == 0 || !tc || k[0] == 'v')
            continue;
        json_t *cv = child_value(cfg, k), *lv = child_value(live, k);
        if (only_dot(mc)) {
            if (json_object_get(tc, ".") && (!lv || !json_equal(cv, lv)))
                json_object_set_new(found, k, leaf());
            continue;
        }
        json_t *sub = json_object();
        find_conflicts(mc, tc, cv, lv, sub);
        if (json_object_size(sub))
            json_object_set(found, k, sub);
        json_decref(sub);
    }
}

static void list_paths(const json_t *n, ty_buf *prefix, json_t *out)
{
    const char *k;
    json_t *c;
    json_object_foreach((json_t *)n, k, c)
    {
        if (strcmp(k, ".") == 0)
            continue;
        size_t len = prefix->len;
        add_path_part(prefix, k);
        if (json_object_get(c, "."))
            json_array_append_new(out, json_string(prefix->data));
        list_paths(c, prefix, out);
        prefix->len = len;
        prefix->data[len] = '\0';
    }
}

static const char *entry_str(const json_t *e, const char *k)
{
    const char *v = json_string_value(json_object_get(e, k));
    return v ? v : "";
}

static json_t *new_entry(const ty_apply_req *req, const char *op, const json_t *set)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:o}", "manager", req->manager, "operation", op,
                     "apiVersion", req->api_version, "time", req->now, "fieldsType", "FieldsV1",
                     "fieldsV1", to_v1(set));
}

static void set_managed(json_t *obj, json_t *entries)
{
    json_t *meta = json_object_get(obj, "metadata");
    if (!json_is_object(meta)) {
        meta = json_object();
        json_object_set_new(obj, "metadata", meta);
    }
    if (json_array_size(entries))
        json_object_set_new(meta, "managedFields", entries);
    else {
        json_decref(entries);
        json_object_del(meta, "managedFields");
    }
}

int ty_apply(const ty_apply_req *req, const json_t *live, const json_t *config, json_t **out,
             json_t **conflicts, ty_error *err)
{
    *out = NULL;
    if (conflicts)
        *conflicts = NULL;
    json_t *mine = fieldset(req->resource, config);
    if (!live) {
        json_t *obj = json_deep_copy(config);
        json_t *entries = json_array();
        if (json_object_size(mine))
            json_array_append_new(entries, new_entry(req, "Apply", mine));
        set_managed(obj, entries);
        json_decref(mine);
        *out = obj;
        return 0;
    }
    const json_t *old_entries =
        json_object_get(json_object_get(live, "metadata"), "managedFields");
    size_t n = json_array_size(old_entries);
    /* Per entry: its set (internal form) and what of it conflicts. */
    json_t *sets = json_array(), *clashes = json_array();
    json_t *before = NULL; /* this manager's applied set */
    json_t *others = json_object();
    size_t nclash = 0;
    json_t *groups = json_array(); /* {who, paths} per conflicting entry */
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(old_entries, i);
        json_t *set = from_v1(json_object_get(e, "fieldsV1"));
        json_t *clash = json_object();
        bool me = strcmp(entry_str(e, "manager"), req->manager) == 0 &&
                  strcmp(entry_str(e, "operation"), "Apply") == 0;
        if (me) {
            json_decref(before);
            before = json_incref(set);
        } else {
            find_conflicts(mine, set, config, live, clash);
        }
        json_array_append_new(sets, set);
        json_array_append_new(clashes, clash);
        if (me || !json_object_size(clash))
            continue;
        json_t *paths = json_array();
        TY_AUTOBUF ty_buf prefix = TY_BUF_INIT;
        ty_buf_addf(&prefix, "%s", "");
        list_paths(clash, &prefix, paths);
        TY_AUTOFREE char *who = ty_asprintf("\"%s\" using %s", entry_str(e, "manager"),
                                            entry_str(e, "apiVersion"));
        json_array_append_new(groups, json_pack("{s:s, s:o}", "who", who, "paths", paths));
        nclash += json_array_size(paths);
    }
    if (nclash && !req->force) {
        /* Worded as structured-merge-diff's Conflicts.Error(): one conflict on one line, more
         * as a list per manager. */
        TY_AUTOBUF ty_buf msg = TY_BUF_INIT;
        json_t *causes = json_array();
        size_t g;
        json_t *grp;
        json_array_foreach(groups, g, grp)
        {
            const char *who = json_string_value(json_object_get(grp, "who"));
            json_t *paths = json_object_get(grp, "paths");
            if (nclash == 1)
                ty_buf_addf(&msg, "conflict with %s: %s", who,
                            json_string_value(json_array_get(paths, 0)));
            else
                ty_buf_addf(&msg, "%sconflicts with %s:", g ? "\n" : "", who);
            size_t j;
            json_t *p;
            json_array_foreach(paths, j, p)
            {
                if (nclash > 1)
                    ty_buf_addf(&msg, "\n- %s", json_string_value(p));
                json_array_append_new(causes, json_pack("{s:s, s:s+, s:s}", "reason",
                                                        "FieldManagerConflict", "message",
                                                        "conflict with ", who, "field",
                                                        json_string_value(p)));
            }
        }
        ty_fail(err, "Apply failed with %zu conflict%s: %s", nclash, nclash == 1 ? "" : "s",
                msg.data);
        err->code = CODE_CONFLICT;
        if (conflicts)
            *conflicts = json_incref(causes);
        json_decref(causes);
        json_decref(groups);
        json_decref(sets);
        json_decref(clashes);
        json_decref(before);
        json_decref(others);
        json_decref(mine);
        return -1;
    }
    json_decref(groups);
    /* The entries after the apply: others lose what was forced away; this manager's set is
     * what it applied now, with its old time when nothing changed. */
    json_t *entries = json_array();
    bool mine_placed = false;
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(old_entries, i);
        json_t *set = json_array_get(sets, i);
        bool me = strcmp(entry_str(e, "manager"), req->manager) == 0 &&
                  strcmp(entry_str(e, "operation"), "Apply") == 0;
        if (me) {
            mine_placed = true;
            if (!json_object_size(mine))
                continue;
            if (json_equal(set, mine)) {
                json_array_append(entries, (json_t *)e);
            } else {
                json_t *ne = new_entry(req, "Apply", mine);
                json_array_append_new(entries, ne);
            }
            continue;
        }
        json_t *left = fs_sub(set, json_array_get(clashes, i));
        json_t *u = fs_union(others, left);
        json_decref(others);
        others = u;
        if (!json_object_size(left)) {
            json_decref(left);
            continue;
        }
        if (json_equal(left, set)) {
            json_array_append(entries, (json_t *)e);
        } else {
            json_t *ne = json_copy((json_t *)e);
            json_object_set_new(ne, "fieldsV1", to_v1(left));
            json_array_append_new(entries, ne);
        }
        json_decref(left);
    }
    if (!mine_placed && json_object_size(mine))
        json_array_append_new(entries, new_entry(req, "Apply", mine));
    json_t *obj = json_deep_copy(live);
    json_t *cfg = owned_part(config);
    merge_into(req->resource, "", obj, cfg);
    json_decref(cfg);
    if (before) {
        json_t *gone = fs_sub(before, mine);
        json_t *keep = fs_union(others, mine);
        prune(obj, gone, keep);
        json_decref(gone);
        json_decref(keep);
    }
    set_managed(obj, entries);
    json_decref(sets);
    json_decref(clashes);
    json_decref(before);
    json_decref(others);
    json_decref(mine);
    *out = obj;
    return 0;
}

/* ---------- updates ---------- */

/* The members of `n` (the new object's set) whose value differs from the old object's. */
static json_t *changed(const json_t *n, const json_t *nv, const json_t *ov)
{
    json_t *r = json_object();
    const char *k;
    json_t *c;
    json_object_foreach((json_t *)n, k, c)
    {
        if (strcmp(k, ".") == 0) {
            if (!ov)
                json_object_set_new(r, ".", json_object());
            continue;
        }
        json_t *ncv = child_value(nv, k), *ocv = child_value(ov, k);
        if (only_dot(c)) {
            if (!ocv || !json_equal(ncv, ocv))
                json_object_set_new(r, k, leaf());
            continue;
        }
        json_t *d = changed(c, ncv, ocv);
        if (json_object_size(d))
            json_object_set(r, k, d);
        json_decref(d);
    }
    return r;
}

void ty_apply_record_update(const ty_apply_req *req, const json_t *live, json_t *obj)
{
    json_t *meta = json_object_get(obj, "metadata");
    if (!json_is_object(meta))
        return;
    json_t *base = json_object_get(meta, "managedFields");
    if (!json_is_array(base))
        base = json_object_get(json_object_get(live, "metadata"), "managedFields");
    json_incref(base);
    json_t *now_set = fieldset(req->resource, obj);
    json_t *old_set = live ? fieldset(req->resource, live) : json_object();
    json_t *ch = changed(now_set, obj, live);
    json_t *removed = fs_sub(old_set, now_set);
    json_t *entries = json_array();
    bool found = false;
    size_t i;
    json_t *e;
    json_array_foreach(base, i, e)
    {
        json_t *set = from_v1(json_object_get(e, "fieldsV1"));
        json_t *s1 = fs_sub(set, removed);
        bool me = strcmp(entry_str(e, "manager"), req->manager) == 0 &&
                  strcmp(entry_str(e, "operation"), "Update") == 0;
        json_t *s2 = me ? fs_union(s1, ch) : fs_sub(s1, ch);
        found = found || me;
        if (json_object_size(s2)) {
            if (json_equal(s2, set)) {
                json_array_append(entries, e);
            } else {
                json_t *ne = json_copy(e);
                json_object_set_new(ne, "fieldsV1", to_v1(s2));
                if (me)
                    json_object_set_new(ne, "time", json_string(req->now));
                json_array_append_new(entries, ne);
            }
        }
        json_decref(set);
        json_decref(s1);
        json_decref(s2);
    }
    if (!found && json_object_size(ch))
        json_array_append_new(entries, new_entry(req, "Update", ch));
    set_managed(obj, entries);
    json_decref(base);
    json_decref(now_set);
    json_decref(old_set);
    json_decref(ch);
    json_decref(removed);
}
