#include "controllers/queue.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "api/kinds.h"
#include "base/log.h"
#include "base/map.h"
#include "base/mem.h"
#include "store/store.h"

/* Back-off of a failing key: client-go's per-item exponential limiter. */
#define BACKOFF_BASE_MS 5
#define BACKOFF_MAX_MS (1000 * 1000)
/* Time a turn of the loop spends on keys before it lets I/O in. */
#define TURN_BUDGET_NS (10 * 1000 * 1000)

typedef struct delayed {
    uv_timer_t timer;
    ty_queue *q;
    char *key;
    uint64_t due;
} delayed;

struct ty_queue {
    uv_loop_t *loop;
    uv_idle_t idle;
    char *name;
    ty_queue_fn fn;
    void *ctx;
    char **keys; /* FIFO of pending keys: keys[head..nkeys) */
    size_t head, nkeys, cap;
    ty_map pending; /* key -> (void *)1 while in keys */
    ty_map delayed; /* key -> delayed* */
    ty_map failures; /* key -> (void *)(uintptr_t)consecutive failures, while any */
    int open_handles;
    int closing;
};

static void maybe_release(ty_queue *q)
{
    if (q->closing && q->open_handles == 0) {
        ty_map_free(&q->pending);
        ty_map_free(&q->delayed);
        ty_map_free(&q->failures);
        free(q->name);
        free(q->keys);
        free(q);
    }
}

static void on_handle_closed(uv_handle_t *h)
{
    ty_queue *q = h->data;
    if ((void *)h != (void *)&q->idle) {
        delayed *d = (delayed *)h;
        free(d->key);
        free(d);
    }
    q->open_handles--;
    maybe_release(q);
}

int64_t ty_queue_backoff_ms(unsigned failures)
{
    int64_t ms = BACKOFF_BASE_MS;
    for (unsigned i = 1; i < failures && ms < BACKOFF_MAX_MS; i++)
        ms *= 2;
    return ms < BACKOFF_MAX_MS ? ms : BACKOFF_MAX_MS;
}

unsigned ty_queue_failures(const ty_queue *q, const char *key)
{
    return (unsigned)(uintptr_t)ty_map_gets(&q->failures, key);
}

static void process(ty_queue *q, const char *key)
{
    ty_error err = TY_ERROR_INIT;
    if (q->fn(q->ctx, key, &err) == 0) {
        ty_map_dels(&q->failures, key);
    } else if (!q->closing) {
        unsigned n = ty_queue_failures(q, key) + 1;
        ty_map_puts(&q->failures, key, (void *)(uintptr_t)n);
        int64_t ms = ty_queue_backoff_ms(n);
        ty_warn("%s: %s: %s (try %u failed; next in %lld ms)", q->name, key,
                err.msg ? err.msg : "failed", n, (long long)ms);
        ty_queue_add_after(q, key, ms);
    }
    ty_error_clear(&err);
}

static void on_idle(uv_idle_t *h)
{
    ty_queue *q = h->data;
    /* Process the keys queued now; keys added meanwhile wait for the next turn of the loop,
     * so that a controller requeueing itself cannot starve I/O. So does what is left once
     * the turn's budget is spent. */
    size_t end = q->nkeys;
    uint64_t t0 = uv_hrtime();
    while (q->head < end && !q->closing) {
        char *key = q->keys[q->head++];
        /* A key is in the FIFO once at most: `pending` holds exactly the keys in it. */
        assert(ty_map_gets(&q->pending, key) && "a key queued twice");
        ty_map_dels(&q->pending, key);
        process(q, key);
        free(key);
        if (uv_hrtime() - t0 > TURN_BUDGET_NS)
            break;
    }
    if (q->closing)
        return;
    /* compact once the consumed head is half the array */
    if (q->head > 0 && q->head * 2 >= q->nkeys) {
        memmove(q->keys, q->keys + q->head, (q->nkeys - q->head) * sizeof(char *));
        q->nkeys -= q->head;
        q->head = 0;
    }
    if (q->head == q->nkeys)
        uv_idle_stop(&q->idle);
}

ty_queue *ty_queue_new(uv_loop_t *loop, const char *name, ty_queue_fn fn, void *ctx)
{
    ty_queue *q = TY_NEW(ty_queue);
    q->loop = loop;
    q->name = ty_strdup(name);
    q->fn = fn;
    q->ctx = ctx;
    uv_idle_init(loop, &q->idle);
    q->idle.data = q;
    q->open_handles = 1;
    return q;
}

void ty_queue_add(ty_queue *q, const char *key)
{
    if (q->closing || ty_map_gets(&q->pending, key))
        return;
    if (q->nkeys == q->cap) {
        q->cap = q->cap ? q->cap * 2 : 16;
        q->keys = ty_realloc(q->keys, q->cap * sizeof(char *));
    }
    q->keys[q->nkeys++] = ty_strdup(key);
    ty_map_puts(&q->pending, key, (void *)1);
    uv_idle_start(&q->idle, on_idle);
}

void ty_queue_add_all(ty_queue *q, ty_store *s, const char *resource, const char *prefix)
{
    ty_store_item *items = NULL;
    size_t n = ty_store_list_items(s, resource, NULL, &items);
    for (size_t i = 0; i < n; i++) {
        TY_AUTOFREE char *key = ty_asprintf("%s%s", prefix, items[i].key);
        ty_queue_add(q, key);
    }
    free(items);
}

static void on_timer(uv_timer_t *t)
{
    delayed *d = (delayed *)t;
    ty_queue *q = d->q;
    /* One timer per delayed key: a second one would retry the key twice. */
    assert(ty_map_gets(&q->delayed, d->key) == d && "a key delayed twice");
    ty_map_dels(&q->delayed, d->key);
    ty_queue_add(q, d->key);
    uv_close((uv_handle_t *)t, on_handle_closed);
}

void ty_queue_add_after(ty_queue *q, const char *key, int64_t delay_ms)
{
    if (q->closing)
        return;
    if (delay_ms <= 0) {
        ty_queue_add(q, key);
        return;
    }
    uint64_t due = uv_now(q->loop) + (uint64_t)delay_ms;
    delayed *d = ty_map_gets(&q->delayed, key);
    if (d) {
        if (d->due <= due)
            return;
        d->due = due;
        uv_timer_start(&d->timer, on_timer, (uint64_t)delay_ms, 0);
        return;
    }
    d = TY_NEW(delayed);
    d->q = q;
    d->key = ty_strdup(key);
    d->due = due;
    uv_timer_init(q->loop, &d->timer);
    d->timer.data = q;
    q->open_handles++;
    ty_map_puts(&q->delayed, key, d);
    uv_timer_start(&d->timer, on_timer, (uint64_t)delay_ms, 0);
}

void ty_queue_free(ty_queue *q)
{
    if (!q)
        return;
    q->closing = 1;
    for (size_t i = q->head; i < q->nkeys; i++)
        free(q->keys[i]);
    q->nkeys = q->head = 0;
    const ty_map_slot *slot;
    for (size_t i = 0; ty_map_next(&q->delayed, &i, &slot);) {
        delayed *d = slot->value;
        uv_timer_stop(&d->timer);
        uv_close((uv_handle_t *)&d->timer, on_handle_closed);
    }
    uv_close((uv_handle_t *)&q->idle, on_handle_closed);
}

int *ty_queue_watch_kinds(ty_store *s, unsigned watched_by, ty_store_watch_fn fn, void *ctx,
                          size_t *n)
{
    const ty_kind_info *const *kinds = ty_kinds();
    size_t nkinds = 0;
    while (kinds[nkinds])
        nkinds++;
    int *ids = ty_calloc(nkinds + 1, sizeof *ids);
    *n = 0;
    for (size_t i = 0; i < nkinds; i++) {
        if (!(kinds[i]->watched_by & watched_by))
            continue;
        ty_store_watch_opts wo = {.resource = kinds[i]->resource, .fn = fn, .ctx = ctx};
        ty_store_watch(s, &wo, &ids[(*n)++], NULL);
    }
    return ids;
}

void ty_queue_unwatch_kinds(ty_store *s, int *ids, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ty_store_unwatch(s, ids[i]);
    free(ids);
}
