/* A work queue of object keys ("namespace/name"), as controllers use it: adding a key that is
 * already queued does nothing, so a burst of events costs one reconcile. Keys are processed on
 * the loop, never inside the call that added them, which is what lets store watch callbacks
 * enqueue safely. ty_queue_add_after() schedules a key for later (deadlines, back-off); an
 * earlier schedule of the same key wins.
 *
 * Ownership: the queue copies keys. ty_queue_free() closes its handles; the memory is released
 * from their close callbacks, so the loop must run once more after it. */
#ifndef TY_CONTROLLERS_QUEUE_H
#define TY_CONTROLLERS_QUEUE_H

#include <stdint.h>
#include <uv.h>

typedef struct ty_queue ty_queue;
typedef void (*ty_queue_fn)(void *ctx, const char *key);

ty_queue *ty_queue_new(uv_loop_t *loop, ty_queue_fn fn, void *ctx);
void ty_queue_add(ty_queue *q, const char *key);
void ty_queue_add_after(ty_queue *q, const char *key, int64_t delay_ms);
void ty_queue_free(ty_queue *q);

#endif
