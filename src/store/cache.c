/* The cache of parsed trees, bounded by the bytes of their texts. */
#include <stdlib.h>

#include "base/log.h"
#include "store/store_int.h"

/* ---- the tree cache ---- */

static void lru_unlink(ty_store *s, entry *e)
{
    if (e->lru_prev)
        e->lru_prev->lru_next = e->lru_next;
    else
        s->lru_head = e->lru_next;
    if (e->lru_next)
        e->lru_next->lru_prev = e->lru_prev;
    else
        s->lru_tail = e->lru_prev;
    e->lru_prev = e->lru_next = NULL;
}

static void lru_push(ty_store *s, entry *e)
{
    e->lru_prev = NULL;
    e->lru_next = s->lru_head;
    if (s->lru_head)
        s->lru_head->lru_prev = e;
    else
        s->lru_tail = e;
    s->lru_head = e;
}

void st_tree_drop(ty_store *s, entry *e)
{
    if (!e->tree)
        return;
    lru_unlink(s, e);
    s->tree_bytes -= e->t->len;
    json_decref(e->tree);
    e->tree = NULL;
}

/* Caches `tree` (consumed) as the entry's. */
void st_tree_set(ty_store *s, entry *e, json_t *tree)
{
    st_tree_drop(s, e);
    e->tree = tree;
    lru_push(s, e);
    s->tree_bytes += e->t->len;
}

static json_t *parse_text(const entry *e)
{
    json_error_t je;
    json_t *t = json_loadb(e->t->data, e->t->len, 0, &je);
    if (!json_is_object(t)) {
        /* The text was checked when it was loaded or written by jansson itself. */
        ty_log(TY_LOG_ERROR, "store: %s %s: stored text does not parse: %s", e->r->name, e->key,
               je.text);
        abort();
    }
    return t;
}

/* The entry's tree, borrowed: valid until the entry changes or, when no public call is in
 * progress any more, the cache drops it. */
json_t *st_entry_tree(ty_store *s, entry *e)
{
    if (e->tree) {
        lru_unlink(s, e);
        lru_push(s, e);
        return e->tree;
    }
    st_tree_set(s, e, parse_text(e));
    return e->tree;
}

/* A new reference to the entry's tree, parsed without entering the cache when it is not in
 * it (a list of everything must not churn the cache). */
json_t *st_entry_tree_ref(entry *e)
{
    return e->tree ? json_incref(e->tree) : parse_text(e);
}

void st_trim(ty_store *s)
{
    while (s->tree_bytes > TREE_CACHE_TEXT_BYTES && s->lru_tail)
        st_tree_drop(s, s->lru_tail);
}

void st_enter(ty_store *s) { s->depth++; }

void st_leave(ty_store *s)
{
    if (--s->depth == 0)
        st_trim(s);
}

void st_entry_free(ty_store *s, entry *e)
{
    st_tree_drop(s, e);
    st_index_clear(s, e);
    st_text_unref(e->t);
    free(e);
}

/* The stored object at key, borrowed (see entry_tree), or NULL. */
json_t *st_obj_at(ty_store *s, res *r, const char *key)
{
    entry *e = r ? ty_map_gets(&r->objects, key) : NULL;
    return e ? st_entry_tree(s, e) : NULL;
}
