/* Events (core v1 Event) for what the controllers do, so `kubectl describe` tells the story.
 *
 * A recorder belongs to one component ("pytorchjob-controller", "default-scheduler",
 * "kubelet"). Repeats of the same reason and message on the same object update one Event's
 * count and lastTimestamp, as the client-go recorder aggregates them. Events are written to the
 * store; recording never fails the caller (a store error is logged at debug level).
 *
 * The dedup index (involved object's uid, reason, message -> Event) holds only Events that
 * exist: the recorder watches the store's events and forgets one when it is deleted (expired,
 * deleted by a user, or with its namespace), so its size follows the stored Events, and the
 * same reason recorded again after that makes a new Event with count 1, as Kubernetes does.
 *
 * Ownership: borrows the store, which must outlive the recorder (it holds a store watch until
 * ty_recorder_free); the recorder owns its dedup index. */
#ifndef TY_CONTROLLERS_EVENTS_H
#define TY_CONTROLLERS_EVENTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

typedef struct ty_recorder ty_recorder;

ty_recorder *ty_recorder_new(ty_store *store, const char *component);
void ty_recorder_free(ty_recorder *r);
/* type: "Normal" or "Warning". `obj` is the involved object (borrowed). */
void ty_event(ty_recorder *r, const json_t *obj, const char *type, const char *reason,
              const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* How many Events the recorder's dedup index holds (for tests). */
size_t ty_recorder_size(const ty_recorder *r);

/* Expiry: Events go `ttl` after they were last seen, as the API server lets them expire (one
 * hour by default), so a long-running server does not keep every event it ever recorded.
 *
 * The expiry keeps every stored Event in a min-heap by the time it was last seen
 * (lastTimestamp; creationTimestamp when that is absent or not a time), filled once from the
 * stored text when it is made (no parse: 20,000 Events in a few ms) and kept current by a
 * store watch, so a pass touches only what expires and at most `max` of those.
 *
 * Ownership: borrows the store, which must outlive it. Make it before anything records
 * events: it indexes what is stored then and every change after. */
#define TY_EVENT_TTL_NS (3600LL * 1000000000LL)
typedef struct ty_event_expiry ty_event_expiry;

ty_event_expiry *ty_event_expiry_new(ty_store *s);
void ty_event_expiry_free(ty_event_expiry *x);
/* Deletes, oldest first, the Events last seen more than `ttl_ns` before `now_ns`: at most
 * `max` (> 0) of them, and none more once `budget_ns` of monotonic time has passed since the
 * call began (0: no time limit; the first is tried whatever the time), so one call never
 * blocks the loop long. Returns how many
 * went; *more (may be NULL) tells whether expired ones remain for another call. An Event that
 * cannot go now (finalizers, a failed write) leaves the index until its next change.
 * Cost: nothing when none is due; O(log n) per Event deleted, plus its delete (a store write,
 * 30-60 us). */
int ty_events_expire(ty_event_expiry *x, int64_t now_ns, int64_t ttl_ns, int max,
                     int64_t budget_ns, bool *more);
/* How many Events the expiry indexes (for tests). */
size_t ty_event_expiry_size(const ty_event_expiry *x);

#endif
