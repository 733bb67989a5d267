/* The store's indexes: interned texts and label sets, uids, owners. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/hash.h"
#include "base/jsontext.h"
#include "base/map.h"
#include "base/mem.h"
#include "store/store_int.h"

entry *st_entry_new(res *r, const char *key)
{
    size_t n = strlen(key) + 1;
    entry *e = ty_calloc(1, sizeof(entry) + n);
    e->r = r;
    memcpy(e->key, key, n);
    return e;
}

/* ---- texts and label sets ---- */

text *st_text_new(const char *data, size_t len)
{
    text *t = ty_malloc(sizeof(text) + len + 1);
    t->refs = 1;
    t->len = len;
    memcpy(t->data, data, len);
    t->data[len] = '\0';
    return t;
}

text *st_text_dump(const json_t *obj)
{
    char *d = json_dumps(obj, JSON_COMPACT);
    text *t = st_text_new(d, strlen(d));
    free(d);
    return t;
}

text *st_text_ref(text *t)
{
    t->refs++;
    return t;
}

void st_text_unref(text *t)
{
    if (t && --t->refs == 0)
        free(t);
}

static labelset *labelset_get(ty_store *s, const json_t *labels)
{
    if (!json_is_object(labels))
        labels = NULL;
    char *canon = labels ? json_dumps(labels, JSON_COMPACT | JSON_SORT_KEYS) : ty_strdup("{}");
    labelset *l = ty_map_gets(&s->labelsets, canon);
    if (l) {
        free(canon);
    } else {
        l = TY_NEW(labelset);
        l->canon = canon;
        l->doc = json_pack("{s:{s:o}}", "metadata", "labels",
                           labels ? json_deep_copy(labels) : json_object());
        ty_map_puts(&s->labelsets, canon, l);
    }
    l->refs++;
    return l;
}

static void labelset_unref(ty_store *s, labelset *l)
{
    if (!l || --l->refs > 0)
        return;
    ty_map_dels(&s->labelsets, l->canon);
    json_decref(l->doc);
    free(l->canon);
    free(l);
}

/* ---- the uid index ----
 *
 * Not base/map: its slots hold only a pointer to the entry, whose own uid is the key. A
 * ty_map would copy every uid (37 bytes, ~48 with malloc's overhead) and keep a 32-byte slot
 * with the key's length and hash beside it, about 0.8 MB more for 10,000 objects against the
 * server's 64 MB budget (bench/server.sh), for lookups that cost the same: one FNV-1a
 * (base/hash.h, the map's hash too) and a probe run of string compares. */

static size_t uid_hash(const char *u)
{
    return (size_t)ty_fnv1a_str(TY_FNV1A_BASIS, u);
}

entry *st_uid_get(const ty_store *s, const char *uid)
{
    if (!s->ucap || !uid)
        return NULL;
    size_t m = s->ucap - 1;
    for (size_t i = uid_hash(uid) & m;; i = (i + 1) & m) {
        entry *e = s->uslots[i];
        if (!e || strcmp(e->uid, uid) == 0)
            return e;
    }
}

static void uid_insert(entry **slots, size_t cap, entry *e)
{
    size_t m = cap - 1;
    size_t i = uid_hash(e->uid) & m;
    while (slots[i] && strcmp(slots[i]->uid, e->uid) != 0)
        i = (i + 1) & m;
    slots[i] = e;
}

static void uid_put(ty_store *s, entry *e)
{
    if ((s->ucount + 1) * 4 >= s->ucap * 3) {
        size_t cap = s->ucap ? 2 * s->ucap : 64;
        entry **slots = ty_calloc(cap, sizeof(entry *));
        for (size_t i = 0; i < s->ucap; i++)
            if (s->uslots[i])
                uid_insert(slots, cap, s->uslots[i]);
        free(s->uslots);
        s->uslots = slots;
        s->ucap = cap;
    }
    if (!st_uid_get(s, e->uid))
        s->ucount++;
    uid_insert(s->uslots, s->ucap, e);
}

/* Removes e (if it is what its uid maps to), shifting later entries of its probe run back. */
static void uid_del(ty_store *s, entry *e)
{
    if (!s->ucap)
        return;
    size_t m = s->ucap - 1, i = uid_hash(e->uid) & m;
    while (s->uslots[i] && s->uslots[i] != e)
        i = (i + 1) & m;
    if (!s->uslots[i])
        return;
    s->uslots[i] = NULL;
    s->ucount--;
    for (size_t j = (i + 1) & m; s->uslots[j]; j = (j + 1) & m) {
        size_t k = uid_hash(s->uslots[j]->uid) & m;
        /* the entry at j stays unless its home k lies cyclically outside (i, j] */
        bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
        if (stays)
            continue;
        s->uslots[i] = s->uslots[j];
        s->uslots[j] = NULL;
        i = j;
    }
}

static void owned_add(ty_store *s, const char *owner_uid, entry *e)
{
    dep_list *d = ty_map_gets(&s->owned, owner_uid);
    if (!d) {
        d = TY_NEW(dep_list);
        ty_map_puts(&s->owned, owner_uid, d);
    }
    if (d->n == d->cap) {
        d->cap = d->cap ? 2 * d->cap : 4;
        d->v = ty_realloc(d->v, d->cap * sizeof(entry *));
    }
    d->v[d->n++] = e;
}

static void owned_del(ty_store *s, const char *owner_uid, const entry *e)
{
    dep_list *d = ty_map_gets(&s->owned, owner_uid);
    for (size_t i = 0; d && i < d->n; i++) {
        if (d->v[i] != e)
            continue;
        d->v[i] = d->v[--d->n];
        break;
    }
    if (d && d->n == 0) {
        ty_map_dels(&s->owned, owner_uid);
        free(d->v);
        free(d);
    }
}

const dep_list *st_owned_by(const ty_store *s, const char *owner_uid)
{
    return ty_map_gets(&s->owned, owner_uid);
}

/* ---- the index of an entry, from its metadata ---- */

void st_index_fill(ty_store *s, entry *e, const json_t *meta, bool typed)
{
    const char *uid = json_string_value(json_object_get(meta, "uid"));
    if (uid && *uid) {
        snprintf(e->uid, sizeof e->uid, "%s", uid);
        uid_put(s, e);
    }
    e->deleting = json_string_value(json_object_get(meta, "deletionTimestamp")) != NULL;
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(meta, "finalizers"), i, v)
    {
        if (json_string_value(v) && strcmp(json_string_value(v), "foregroundDeletion") == 0)
            e->fg_finalizer = true;
    }
    json_t *refs = json_object_get(meta, "ownerReferences");
    e->nowners = json_array_size(refs);
    e->owners = e->nowners ? ty_calloc(e->nowners, sizeof(owner_ix)) : NULL;
    json_array_foreach(refs, i, v)
    {
        const char *ouid = json_string_value(json_object_get(v, "uid"));
        e->owners[i].uid = ouid ? ty_strdup(ouid) : NULL;
        e->owners[i].block = json_is_true(json_object_get(v, "blockOwnerDeletion"));
        bool repeated = false; /* two references to one owner: indexed once */
        for (size_t j = 0; ouid && j < i; j++)
            repeated = repeated || (e->owners[j].uid && strcmp(e->owners[j].uid, ouid) == 0);
        if (ouid && !repeated)
            owned_add(s, ouid, e);
    }
    e->labels = labelset_get(s, json_object_get(meta, "labels"));
    e->typed = typed;
}

void st_index_clear(ty_store *s, entry *e)
{
    if (e->uid[0]) {
        uid_del(s, e);
        e->uid[0] = '\0';
    }
    for (size_t i = 0; i < e->nowners; i++) {
        bool repeated = false;
        for (size_t j = 0; e->owners[i].uid && j < i; j++)
            repeated = repeated ||
                       (e->owners[j].uid && strcmp(e->owners[j].uid, e->owners[i].uid) == 0);
        if (e->owners[i].uid && !repeated)
            owned_del(s, e->owners[i].uid, e);
    }
    for (size_t i = 0; i < e->nowners; i++)
        free(e->owners[i].uid);
    free(e->owners);
    e->owners = NULL;
    e->nowners = 0;
    e->deleting = e->fg_finalizer = e->typed = false;
    labelset_unref(s, e->labels);
    e->labels = NULL;
}

json_t *st_collect(ty_store *s, match_fn match, const void *arg)
{
    json_t *found = json_array();
    const ty_map_slot *slot;
    for (size_t i = 0; ty_map_next(&s->resources, &i, &slot);) {
        res *r = slot->value;
        const ty_map_slot *o;
        for (size_t j = 0; ty_map_next(&r->objects, &j, &o);) {
            if (match(o->value, arg))
                json_array_append_new(found, json_pack("{s:s, s:s}", "resource", r->name,
                                                       "key", o->key));
        }
    }
    return found;
}

static const owner_ix *owner_of(const entry *e, const char *uid)
{
    for (size_t i = 0; i < e->nowners; i++)
        if (e->owners[i].uid && strcmp(e->owners[i].uid, uid) == 0)
            return &e->owners[i];
    return NULL;
}

/* [{resource, key}] of the dependents of owner `uid`, from the owner index. */
json_t *st_collect_owned(ty_store *s, const char *uid)
{
    json_t *found = json_array();
    const dep_list *d = st_owned_by(s, uid);
    for (size_t i = 0; d && i < d->n; i++)
        json_array_append_new(found, json_pack("{s:s, s:s}", "resource", d->v[i]->r->name,
                                               "key", d->v[i]->key));
    return found;
}

bool st_has_dependents(const ty_store *s, const char *uid) { return st_owned_by(s, uid) != NULL; }

bool st_has_blocking_dependent(const ty_store *s, const char *uid)
{
    const dep_list *d = st_owned_by(s, uid);
    for (size_t i = 0; d && i < d->n; i++) {
        const owner_ix *o = owner_of(d->v[i], uid);
        if (o && o->block)
            return true;
    }
    return false;
}

bool st_match_in_namespace(const entry *e, const void *ns)
{
    size_t n = strlen(ns);
    return n && strncmp(e->key, ns, n) == 0 && e->key[n] == '/';
}

bool st_any_match(ty_store *s, match_fn match, const void *arg)
{
    const ty_map_slot *slot;
    for (size_t i = 0; ty_map_next(&s->resources, &i, &slot);) {
        res *r = slot->value;
        const ty_map_slot *o;
        for (size_t j = 0; ty_map_next(&r->objects, &j, &o);)
            if (match(o->value, arg))
                return true;
    }
    return false;
}

/* The index from the metadata's text. Most members are skipped; only those the index reads
 * are parsed, and a label set's text only the first time it is seen (`seen`: labels text as
 * stored -> labelset*, for the duration of the load). */
int st_index_from_text(ty_store *s, entry *e, const char *p, const char *end, bool typed,
                       ty_map *seen)
{
    json_t *meta = json_object();
    const char *labels = NULL, *labels_end = NULL;
    ty_json_member m;
    int rc;
    p++; /* the caller found the metadata object's opening brace */
    while ((rc = ty_json_next_member(&p, end, false, &m)) > 0) {
        const char *v = m.val, *ve = m.val_end;
        if (ty_json_member_is(&m, "labels")) {
            labels = v;
            labels_end = ve;
        } else if ((ty_json_member_is(&m, "uid") || ty_json_member_is(&m, "deletionTimestamp")) &&
                   *v == '"' && !memchr(v, '\\', (size_t)(ve - v))) {
            /* a plain string, the usual case: no parser needed */
            char *name = ty_strndup(m.key, m.key_len);
            json_object_set_new(meta, name, json_stringn(v + 1, (size_t)(ve - v - 2)));
            free(name);
        } else if (ty_json_member_is(&m, "uid") || ty_json_member_is(&m, "deletionTimestamp") ||
                   ty_json_member_is(&m, "finalizers") ||
                   ty_json_member_is(&m, "ownerReferences")) {
            json_t *val = json_loadb(v, (size_t)(ve - v), JSON_DECODE_ANY, NULL);
            if (!val)
                goto bad;
            char *name = ty_strndup(m.key, m.key_len);
            json_object_set_new(meta, name, val);
            free(name);
        }
    }
    if (rc < 0)
        goto bad;
    st_index_fill(s, e, meta, typed);
    json_decref(meta);
    if (labels) {
        labelset *l = ty_map_get(seen, labels, (size_t)(labels_end - labels));
        if (!l) {
            json_t *lv = json_loadb(labels, (size_t)(labels_end - labels), 0, NULL);
            l = labelset_get(s, lv);
            json_decref(lv);
            l->refs--; /* labelset_get counted a user; the entry below is that user */
            ty_map_put(seen, labels, (size_t)(labels_end - labels), l);
        }
        labelset_unref(s, e->labels); /* index_fill's empty set */
        l->refs++;
        e->labels = l;
    }
    return 0;
bad:
    json_decref(meta);
    return -1;
}
