#include "controllers/queue.h"

#include <stdlib.h>
#include <string.h>

#include "base/map.h"
#include "base/mem.h"

typedef struct delayed {
    uv_timer_t timer;
    ty_queue *q;
    char *key;
    uint64_t due;
} delayed;

struct ty_queue {
    uv_loop_t *loop;
    uv_idle_t idle;
    ty_queue_fn fn;
    void *ctx;
    char **keys; /* FIFO of pending keys */
    size_t nkeys, cap;
    ty_map pending; /* key -> (void *)1 while in keys */
    ty_map delayed; /* key -> delayed* */
    int open_handles;
    int closing;
};

static void maybe_release(ty_queue *q)
{
    if (q->closing && q->open_handles == 0) {
        ty_map_free(&q->pending);
        ty_map_free(&q->delayed);
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

static void on_idle(uv_idle_t *h)
{
    ty_queue *q = h->data;
    /* Process the keys queued now; keys added meanwhile wait for the next turn of the loop,
     * so that a controller requeueing itself cannot starve I/O. */
    size_t n = q->nkeys;
    char **batch = ty_malloc(n * sizeof(char *));
    memcpy(batch, q->keys, n * sizeof(char *));
    memmove(q->keys, q->keys + n, (q->nkeys - n) * sizeof(char *));
    q->nkeys -= n;
    for (size_t i = 0; i < n; i++)
        ty_map_dels(&q->pending, batch[i]);
    for (size_t i = 0; i < n; i++) {
        if (!q->closing)
            q->fn(q->ctx, batch[i]);
        free(batch[i]);
    }
    free(batch);
    if (q->nkeys == 0)
        uv_idle_stop(&q->idle);
}

ty_queue *ty_queue_new(uv_loop_t *loop, ty_queue_fn fn, void *ctx)
{
    ty_queue *q = TY_NEW(ty_queue);
    q->loop = loop;
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

static void on_timer(uv_timer_t *t)
{
    delayed *d = (delayed *)t;
    ty_queue *q = d->q;
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
    for (size_t i = 0; i < q->nkeys; i++)
        free(q->keys[i]);
    q->nkeys = 0;
    const ty_map_slot *slot;
    for (size_t i = 0; ty_map_next(&q->delayed, &i, &slot);) {
        delayed *d = slot->value;
        uv_timer_stop(&d->timer);
        uv_close((uv_handle_t *)&d->timer, on_handle_closed);
    }
    uv_close((uv_handle_t *)&q->idle, on_handle_closed);
}
