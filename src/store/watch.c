/* The history of events and the watches. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "store/store_int.h"

/* ---- history ---- */

static void hist_evict_oldest(ty_store *s)
{
    hist_event *e = &s->hist[s->hist_start];
    s->hist_base = e->rv;
    s->hist_bytes -= e->t->len;
    st_text_unref(e->t);
    if (e->prev)
        st_text_unref(e->prev);
    s->hist_start = (s->hist_start + 1) % s->hist_cap;
    s->hist_len--;
}

/* `prev` is not counted in hist_bytes: it is the text of the event before it of the same
 * object (or of the version stored before the history began), shared, not a copy. */
static void hist_append(ty_store *s, ty_event_type type, res *r, text *t, text *prev,
                        uint64_t rv)
{
    if (s->hist_cap == 0) {
        s->hist_base = rv;
        return;
    }
    if (s->hist_len == s->hist_cap)
        hist_evict_oldest(s);
    while (s->hist_len && s->hist_bytes + t->len > TY_STORE_HISTORY_MAX_BYTES)
        hist_evict_oldest(s);
    s->hist_bytes += t->len;
    if (!s->hist)
        s->hist = ty_calloc(s->hist_cap, sizeof(hist_event));
    s->hist[(s->hist_start + s->hist_len) % s->hist_cap] =
        (hist_event){rv, type, r, st_text_ref(t), prev ? st_text_ref(prev) : NULL};
    s->hist_len++;
}

void ty_store_set_history(ty_store *s, size_t events)
{
    while (s->hist_len > events)
        hist_evict_oldest(s);
    hist_event *ring = events ? ty_calloc(events, sizeof(hist_event)) : NULL;
    for (size_t i = 0; i < s->hist_len; i++)
        ring[i] = s->hist[(s->hist_start + i) % s->hist_cap];
    free(s->hist);
    s->hist = ring;
    s->hist_cap = events;
    s->hist_start = 0;
}

static watcher *watcher_of(ty_store *s, int id)
{
    for (size_t i = 0; i < s->nwatchers; i++)
        if (s->watchers[i].id == id)
            return &s->watchers[i];
    return NULL;
}

static void hold(ty_store *s, int id, ty_event_type type, res *r, const json_t *obj,
                 text *prev)
{
    if (s->nheld == s->held_cap) {
        s->held_cap = s->held_cap ? 2 * s->held_cap : 16;
        s->held = ty_realloc(s->held, s->held_cap * sizeof(held_event));
    }
    s->held[s->nheld++] = (held_event){id, type, r, json_incref((json_t *)obj),
                                           prev ? st_text_ref(prev) : NULL};
}

static void call_watcher(ty_store *s, const watcher *w, ty_event_type type, res *r,
                         const json_t *obj, text *prev)
{
    s->in_watch++;
    if (!w->prev_fn) {
        w->fn(w->ctx, type, r->name, obj);
    } else {
        json_t *p = prev ? json_loadb(prev->data, prev->len, 0, NULL) : NULL;
        w->prev_fn(w->ctx, type, r->name, obj, p);
        json_decref(p);
    }
    s->in_watch--;
}

/* Hands the held events to their watchers (those still watching), in order. */
void st_deliver_held(ty_store *s)
{
    if (s->delivering)
        return;
    s->delivering = true;
    for (size_t i = 0; i < s->nheld; i++) {
        held_event *h = &s->held[i];
        watcher *w = watcher_of(s, h->watch_id);
        if (w)
            call_watcher(s, w, h->type, h->r, h->obj, h->prev);
        json_decref(h->obj);
        if (h->prev)
            st_text_unref(h->prev);
    }
    s->nheld = 0;
    s->delivering = false;
}

/* Every event goes through here: into the history, then to the watchers. */
void st_notify(ty_store *s, ty_event_type type, res *r, const json_t *obj, text *t,
               text *prev)
{
    hist_append(s, type, r, t, prev, s->revision);
    for (size_t i = 0; i < s->nwatchers; i++) {
        watcher *w = &s->watchers[i];
        if (w->resource && strcmp(w->resource, r->name) != 0)
            continue;
        if (w->committed && s->committed < s->revision)
            hold(s, w->id, type, r, obj, prev);
        else
            call_watcher(s, w, type, r, obj, prev);
    }
}

static int add_watch(ty_store *s, const ty_store_watch_opts *o)
{
    assert(!o->fn != !o->prev_fn && "a watch has one callback");
    s->watchers = ty_realloc(s->watchers, (s->nwatchers + 1) * sizeof(watcher));
    s->watchers[s->nwatchers++] = (watcher){++s->next_watch_id,
                                            o->resource ? ty_strdup(o->resource) : NULL, o->fn,
                                            o->prev_fn, o->ctx, o->committed};
    return s->next_watch_id;
}

int ty_store_watch(ty_store *s, const ty_store_watch_opts *o, int *id_out, ty_error *err)
{
    uint64_t rv = o->from_rv;
    if (rv != 0 && rv < s->hist_base)
        return ty_fail_code(err, TY_STORE_GONE, "too old resource version: %llu (%llu)",
                            (unsigned long long)rv, (unsigned long long)s->hist_base);
    int id = add_watch(s, o);
    /* A copy: a callback may add or remove watches (the array moves). */
    watcher self = *watcher_of(s, id);
    if (rv != 0) {
        st_enter(s);
        for (size_t i = 0; i < s->hist_len; i++) {
            hist_event *e = &s->hist[(s->hist_start + i) % s->hist_cap];
            if (e->rv <= rv || (o->resource && strcmp(o->resource, e->r->name) != 0))
                continue;
            json_error_t je;
            json_t *obj = json_loadb(e->t->data, e->t->len, 0, &je);
            if (o->committed && e->rv > s->committed)
                hold(s, id, e->type, e->r, obj, e->prev);
            else
                call_watcher(s, &self, e->type, e->r, obj, e->prev);
            json_decref(obj);
        }
        st_leave(s);
    }
    if (id_out)
        *id_out = id;
    return 0;
}

void ty_store_unwatch(ty_store *s, int id)
{
    for (size_t i = 0; i < s->nwatchers; i++) {
        if (s->watchers[i].id != id)
            continue;
        free(s->watchers[i].resource);
        memmove(&s->watchers[i], &s->watchers[i + 1], (s->nwatchers - i - 1) * sizeof(watcher));
        s->nwatchers--;
        return;
    }
}
