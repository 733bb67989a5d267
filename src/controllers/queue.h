/* A work queue of object keys ("namespace/name"), as controllers use it: adding a key that is
 * already queued does nothing, so a burst of events costs one reconcile. Keys are processed on
 * the loop, never inside the call that added them, which is what lets store watch callbacks
 * enqueue safely. ty_queue_add_after() schedules a key for later (deadlines, back-off); an
 * earlier schedule of the same key wins.
 *
 * Rate limiting, as client-go's rate-limited queue: a reconcile that fails (returns < 0) is
 * logged at warn with its key and error and queued again after a per-key back-off of 5 ms
 * doubling with each consecutive failure up to 1,000 s; a success forgets the key's failures.
 * So nothing retries in a tight loop, and a key that keeps failing costs one try per 1,000 s.
 *
 * A turn of the loop processes the keys queued then for at most ~10 ms; the rest wait for the
 * next turn, so that a resync of thousands of objects does not stall the API server.
 *
 * Invariants, asserted: a key is in the FIFO at most once, and has at most one delay timer.
 *
 * Ownership: the queue copies keys. ty_queue_free() closes its handles; the memory is released
 * from their close callbacks, so the loop must run once more after it. */
#ifndef TY_CONTROLLERS_QUEUE_H
#define TY_CONTROLLERS_QUEUE_H

#include <stdint.h>
#include <uv.h>

#include "base/error.h"
#include "store/store.h"

typedef struct ty_queue ty_queue;
/* Reconciles `key`: 0 when done (the key's failures are forgotten), < 0 with `err` set when
 * it must be retried after the back-off. */
typedef int (*ty_queue_fn)(void *ctx, const char *key, ty_error *err);

/* `name` prefixes the warnings (the controller's name); it is copied. */
ty_queue *ty_queue_new(uv_loop_t *loop, const char *name, ty_queue_fn fn, void *ctx);
void ty_queue_add(ty_queue *q, const char *key);
void ty_queue_add_after(ty_queue *q, const char *key, int64_t delay_ms);
/* A resync, as informers do at start and periodically: queues "<prefix><namespace>/<name>"
 * for every stored object of `resource` (from the store's index: nothing is parsed). */
struct ty_store;
void ty_queue_add_all(ty_queue *q, struct ty_store *s, const char *resource,
                      const char *prefix);
/* Watches every kind whose registry entry (api/kinds.h) has the `watched_by` flag, with
 * fn(ctx, ...): a controller's watch list is the registry's. Returns the watch ids (*n of
 * them) for ty_queue_unwatch_kinds. */
int *ty_queue_watch_kinds(struct ty_store *s, unsigned watched_by, ty_store_watch_fn fn,
                          void *ctx, size_t *n);
void ty_queue_unwatch_kinds(struct ty_store *s, int *ids, size_t n);
/* The back-off before the retry that follows the n-th consecutive failure (n >= 1), in ms. */
int64_t ty_queue_backoff_ms(unsigned failures);
/* Consecutive failures of `key` not yet followed by a success. */
unsigned ty_queue_failures(const ty_queue *q, const char *key);
void ty_queue_free(ty_queue *q);

#endif
