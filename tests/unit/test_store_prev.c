/* Watches with the previous version of each object (ty_store_watch_opts.prev_fn, committed):
 * live, held until a deferred commit, and replayed from the history. */
#include <criterion/criterion.h>
#include <string.h>

#include "store/store.h"

typedef struct seen {
    int n;
    ty_event_type types[16];
    char app[16][16];  /* the event object's label "app" */
    char prev[16][16]; /* the previous version's label "app"; "-" when there is none */
} seen;

static void record(void *ctx, ty_event_type type, const char *resource, const json_t *obj,
                   const json_t *prev)
{
    (void)resource;
    seen *w = ctx;
    cr_assert_lt(w->n, 16);
    w->types[w->n] = type;
    const char *a = ty_obj_label(obj, "app");
    snprintf(w->app[w->n], 16, "%s", a ? a : "");
    const char *p = prev ? ty_obj_label(prev, "app") : "-";
    snprintf(w->prev[w->n], 16, "%s", p ? p : "");
    w->n++;
}

static json_t *cm(const char *name, const char *app)
{
    return json_pack("{s:s, s:s, s:{s:s, s:{s:s}}}", "apiVersion", "v1", "kind", "ConfigMap",
                     "metadata", "name", name, "labels", "app", app);
}

static void relabel(ty_store *s, const char *name, const char *app)
{
    json_t *cur = ty_store_get(s, "configmaps", "default", name);
    json_t *next = json_deep_copy(cur);
    json_decref(cur);
    json_object_set_new(json_object_get(json_object_get(next, "metadata"), "labels"), "app",
                        json_string(app));
    ty_error err = TY_ERROR_INIT;
    cr_assert_eq(ty_store_update(s, "configmaps", next, NULL, &err), 0);
    json_decref(next);
}

Test(store_prev, replayed_and_live_events_carry_the_previous_version)
{
    ty_store *s = ty_store_new();
    json_t *a = cm("a", "x");
    cr_assert_eq(ty_store_create(s, "configmaps", a, NULL, NULL), 0);
    json_decref(a);
    uint64_t from = ty_store_revision(s);
    relabel(s, "a", "y");
    relabel(s, "a", "z");

    seen w = {0};
    int id = 0;
    ty_error err = TY_ERROR_INIT;
    cr_assert_eq(ty_store_watch(s, &(ty_store_watch_opts){.resource = "configmaps", .from_rv = from,
                                                          .committed = true, .prev_fn = record,
                                                          .ctx = &w},
                                &id, &err), 0);
    cr_assert_eq(w.n, 2, "both relabels replayed");
    cr_assert_str_eq(w.app[0], "y");
    cr_assert_str_eq(w.prev[0], "x", "the version before the first replayed event");
    cr_assert_str_eq(w.prev[1], "y");

    /* Live, and held by deferred commits until they are durable. */
    ty_store_defer_commits(s, true);
    relabel(s, "a", "w");
    json_t *b = cm("b", "v");
    cr_assert_eq(ty_store_create(s, "configmaps", b, NULL, NULL), 0);
    json_decref(b);
    cr_assert_eq(ty_store_delete(s, "configmaps", "default", "b", -1, NULL), 0);
    cr_assert_eq(w.n, 2, "held until the commit");
    cr_assert_eq(ty_store_commit(s, &err), 0);
    cr_assert_eq(w.n, 5);
    cr_assert_eq(w.types[2], TY_EVENT_MODIFIED);
    cr_assert_str_eq(w.prev[2], "z");
    cr_assert_eq(w.types[3], TY_EVENT_ADDED);
    cr_assert_str_eq(w.prev[3], "-", "an ADDED event has no previous version");
    cr_assert_eq(w.types[4], TY_EVENT_DELETED);
    cr_assert_str_eq(w.prev[4], "v", "DELETED: the last stored version");
    ty_store_unwatch(s, id);
    ty_store_free(s);
}

Test(store_prev, the_previous_version_outlives_the_history_event_before_it)
{
    ty_store *s = ty_store_new();
    ty_store_set_history(s, 2);
    json_t *a = cm("a", "x");
    cr_assert_eq(ty_store_create(s, "configmaps", a, NULL, NULL), 0);
    json_decref(a);
    relabel(s, "a", "y");
    uint64_t from = ty_store_revision(s);
    relabel(s, "a", "z"); /* the ADDED event has left the ring; its text is still prev */
    seen w = {0};
    int id = 0;
    cr_assert_eq(ty_store_watch(s, &(ty_store_watch_opts){.resource = "configmaps",
                                                          .from_rv = from - 1, .committed = true,
                                                          .prev_fn = record, .ctx = &w},
                                &id, NULL), 0);
    cr_assert_eq(w.n, 2);
    cr_assert_str_eq(w.prev[0], "x");
    cr_assert_str_eq(w.prev[1], "y");
    ty_store_unwatch(s, id);
    ty_store_free(s);
}
