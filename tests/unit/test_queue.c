#include <criterion/criterion.h>
#include <string.h>
#include <uv.h>

#include "controllers/queue.h"

typedef struct {
    uv_loop_t *loop;
    ty_queue *q;
    int n;
    char keys[64][16];
    uint64_t at[64];
    int readd; /* times the callback re-adds its key */
    bool free_in_callback;
    int fail; /* times the callback fails before it succeeds */
} seen;

static int on_key(void *ctx, const char *key, ty_error *err)
{
    seen *s = ctx;
    cr_assert_lt(s->n, 64);
    snprintf(s->keys[s->n], sizeof s->keys[0], "%s", key);
    s->at[s->n] = uv_now(s->loop);
    s->n++;
    if (s->readd > 0) {
        s->readd--;
        ty_queue_add(s->q, key);
    }
    if (s->free_in_callback) {
        ty_queue_free(s->q);
        s->q = NULL;
    }
    if (s->fail > 0) {
        s->fail--;
        return ty_fail(err, "reconcile %s: failed on purpose", key);
    }
    return 0;
}

static void setup(uv_loop_t *loop, seen *s)
{
    cr_assert_eq(uv_loop_init(loop), 0);
    memset(s, 0, sizeof *s);
    s->loop = loop;
    s->q = ty_queue_new(loop, "test", on_key, s);
}

/* Frees the queue (when still there) and checks that every handle it had is closed. */
static void teardown(uv_loop_t *loop, seen *s)
{
    ty_queue_free(s->q);
    uv_run(loop, UV_RUN_DEFAULT);
    cr_assert_eq(uv_loop_close(loop), 0, "the queue left handles open");
}

Test(queue, dedup_and_fifo_outside_the_add_call)
{
    uv_loop_t loop;
    seen s;
    setup(&loop, &s);
    ty_queue_add(s.q, "b");
    ty_queue_add(s.q, "a");
    ty_queue_add(s.q, "b");
    ty_queue_add(s.q, "c");
    ty_queue_add(s.q, "a");
    cr_assert_eq(s.n, 0, "keys are processed on the loop, not inside add");
    uv_run(&loop, UV_RUN_DEFAULT); /* returns once the queue is idle */
    cr_assert_eq(s.n, 3);
    cr_assert_str_eq(s.keys[0], "b");
    cr_assert_str_eq(s.keys[1], "a");
    cr_assert_str_eq(s.keys[2], "c");
    /* Once processed, a key can be queued again. */
    ty_queue_add(s.q, "a");
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(s.n, 4);
    cr_assert_str_eq(s.keys[3], "a");
    teardown(&loop, &s);
}

Test(queue, readd_during_processing_waits_for_the_next_turn)
{
    uv_loop_t loop;
    seen s;
    setup(&loop, &s);
    s.readd = 2;
    ty_queue_add(s.q, "k");
    uv_run(&loop, UV_RUN_NOWAIT);
    cr_assert_eq(s.n, 1, "a key added by the callback is not processed in the same turn");
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(s.n, 3);
    teardown(&loop, &s);
}

Test(queue, add_after_earliest_wins)
{
    uv_loop_t loop;
    seen s;
    setup(&loop, &s);
    uint64_t t0 = uv_now(&loop);
    ty_queue_add_after(s.q, "late-then-early", 5000);
    ty_queue_add_after(s.q, "late-then-early", 30);
    ty_queue_add_after(s.q, "early-then-late", 10);
    ty_queue_add_after(s.q, "early-then-late", 5000);
    ty_queue_add_after(s.q, "now", 0);
    ty_queue_add_after(s.q, "negative", -5);
    cr_assert_eq(s.n, 0);
    uv_run(&loop, UV_RUN_DEFAULT); /* would take 5 s if a late schedule survived */
    cr_assert_eq(s.n, 4, "each key once");
    cr_assert_str_eq(s.keys[0], "now");
    cr_assert_str_eq(s.keys[1], "negative");
    cr_assert_str_eq(s.keys[2], "early-then-late");
    cr_assert_str_eq(s.keys[3], "late-then-early");
    cr_assert_geq(s.at[2] - t0, 10);
    cr_assert_geq(s.at[3] - t0, 30);
    cr_assert_lt(s.at[3] - t0, 2000);
    teardown(&loop, &s);
}

Test(queue, delayed_key_already_queued_is_processed_once_per_add)
{
    uv_loop_t loop;
    seen s;
    setup(&loop, &s);
    uint64_t t0 = uv_now(&loop);
    ty_queue_add_after(s.q, "k", 20);
    ty_queue_add(s.q, "k");
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(s.n, 2, "the immediate add and the timer each process the key");
    cr_assert_lt(s.at[0] - t0, 20, "the immediate add does not wait for the timer");
    cr_assert_geq(s.at[1] - t0, 20);
    teardown(&loop, &s);
}

Test(queue, free_with_pending_keys_and_timers)
{
    uv_loop_t loop;
    seen s;
    setup(&loop, &s);
    ty_queue_add_after(s.q, "a", 60000);
    ty_queue_add_after(s.q, "b", 60000);
    ty_queue_add(s.q, "c");
    ty_queue_add(s.q, "d");
    uint64_t t0 = uv_hrtime();
    teardown(&loop, &s); /* runs the loop: must not wait for the timers */
    cr_assert_eq(s.n, 0, "nothing is processed after free");
    cr_assert_lt(uv_hrtime() - t0, 1000000000ull);
}

Test(queue, free_inside_the_callback)
{
    uv_loop_t loop;
    seen s;
    setup(&loop, &s);
    s.free_in_callback = true;
    ty_queue_add(s.q, "a");
    ty_queue_add(s.q, "b");
    ty_queue_add_after(s.q, "c", 60000);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(s.n, 1, "keys of the batch after free are dropped");
    cr_assert_null(s.q);
    teardown(&loop, &s);
}

Test(queue, free_null_and_empty)
{
    ty_queue_free(NULL);
    uv_loop_t loop;
    seen s;
    setup(&loop, &s);
    teardown(&loop, &s);
}

Test(queue, many_keys_keep_their_order)
{
    uv_loop_t loop;
    seen s;
    setup(&loop, &s);
    char key[16];
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < 40; i++) {
            snprintf(key, sizeof key, "k%02d", i);
            ty_queue_add(s.q, key);
        }
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(s.n, 40);
    for (int i = 0; i < 40; i++) {
        snprintf(key, sizeof key, "k%02d", i);
        cr_assert_str_eq(s.keys[i], key);
    }
    teardown(&loop, &s);
}

Test(queue, backoff_doubles_from_5ms_up_to_1000s)
{
    cr_assert_eq(ty_queue_backoff_ms(1), 5);
    cr_assert_eq(ty_queue_backoff_ms(2), 10);
    cr_assert_eq(ty_queue_backoff_ms(3), 20);
    cr_assert_eq(ty_queue_backoff_ms(10), 5 * 512);
    cr_assert_eq(ty_queue_backoff_ms(18), 5 * 131072);
    cr_assert_eq(ty_queue_backoff_ms(19), 1000 * 1000, "capped at 1000 s");
    cr_assert_eq(ty_queue_backoff_ms(64), 1000 * 1000);
    cr_assert_eq(ty_queue_backoff_ms(4000000000u), 1000 * 1000);
}

/* A failing key is retried by itself, each time later than the last (5, 10, 20, 40 ms), and
 * a success forgets its failures: the next failure waits 5 ms again. */
Test(queue, failed_key_is_retried_with_backoff_and_forgotten_on_success)
{
    uv_loop_t loop;
    seen s;
    setup(&loop, &s);
    s.fail = 4;
    ty_queue_add(s.q, "k");
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(s.n, 5, "four failures, then the success; no retry after it");
    int64_t want[] = {5, 10, 20, 40};
    for (int i = 0; i < 4; i++) {
        cr_assert_geq(s.at[i + 1] - s.at[i], (uint64_t)want[i], "retry %d after %d ms", i + 1,
                      (int)(s.at[i + 1] - s.at[i]));
        cr_assert_lt(s.at[i + 1] - s.at[i], (uint64_t)want[i] + 1000);
    }
    cr_assert_eq(ty_queue_failures(s.q, "k"), 0, "forgotten on success");
    s.fail = 1;
    ty_queue_add(s.q, "k");
    uv_run(&loop, UV_RUN_NOWAIT);
    cr_assert_eq(s.n, 6);
    cr_assert_eq(ty_queue_failures(s.q, "k"), 1, "counting starts again");
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(s.n, 7);
    cr_assert_lt(s.at[6] - s.at[5], 1000, "the back-off started again at 5 ms");
    teardown(&loop, &s);
}

/* Failures count per key: a key failing does not delay another. */
Test(queue, failures_are_per_key)
{
    uv_loop_t loop;
    seen s;
    setup(&loop, &s);
    s.fail = 1;
    ty_queue_add(s.q, "bad");
    ty_queue_add(s.q, "good");
    uv_run(&loop, UV_RUN_NOWAIT);
    cr_assert_eq(s.n, 2);
    cr_assert_eq(ty_queue_failures(s.q, "bad"), 1);
    cr_assert_eq(ty_queue_failures(s.q, "good"), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(s.n, 3);
    cr_assert_str_eq(s.keys[2], "bad");
    cr_assert_eq(ty_queue_failures(s.q, "bad"), 0);
    teardown(&loop, &s);
}

/* Thousands of keys are processed over several turns, so I/O gets in between, in order. */
static int slow_key(void *ctx, const char *key, ty_error *err)
{
    (void)key, (void)err;
    int *n = ctx;
    (*n)++;
    uint64_t t0 = uv_hrtime();
    while (uv_hrtime() - t0 < 100000)
        ;
    return 0;
}

Test(queue, a_long_batch_yields_to_the_loop)
{
    uv_loop_t loop;
    cr_assert_eq(uv_loop_init(&loop), 0);
    int n = 0;
    ty_queue *q = ty_queue_new(&loop, "slow", slow_key, &n);
    char key[16];
    for (int i = 0; i < 500; i++) {
        snprintf(key, sizeof key, "k%d", i);
        ty_queue_add(q, key);
    }
    uv_run(&loop, UV_RUN_NOWAIT);
    cr_assert_gt(n, 0);
    cr_assert_lt(n, 500, "50 ms of work does not fit one turn");
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(n, 500);
    ty_queue_free(q);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(uv_loop_close(&loop), 0);
}
