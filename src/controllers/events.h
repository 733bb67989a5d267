/* Events (core v1 Event) for what the controllers do, so `kubectl describe` tells the story.
 *
 * A recorder belongs to one component ("pytorchjob-controller", "default-scheduler",
 * "kubelet"). Repeats of the same reason and message on the same object update one Event's
 * count and lastTimestamp, as the client-go recorder aggregates them. Events are written to the
 * store; recording never fails the caller (a store error is logged at debug level, and the
 * Event dropped: it is tried once, never retried).
 *
 * The dedup index (a 64-bit hash of the involved object's uid, reason and message -> the
 * Event; about 85 bytes an entry, 1.7 MB for 20,000) holds only Events that exist: the
 * recorder watches the store's events and forgets one when it is deleted (expired, deleted
 * by a user, or with its namespace), so its size follows the stored Events, and the same
 * reason recorded again after that makes a new Event with count 1, as Kubernetes does. A
 * repeat bumps the Event only if it still has that uid, reason and message (else, a hash
 * collision or a user's edit, it records a new one).
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
 * A pass looks at every stored Event, in slices (ty_events_expire calls) that continue where
 * the last one stopped (a position in the store's own order, ty_store_scan_items), reading
 * when each was last seen from its stored text without parsing it: lastTimestamp, else
 * metadata.creationTimestamp. The expiry keeps nothing per Event. An Event created during a
 * pass may be missed by it (and some, when the store rebuilds its table meanwhile): the next
 * pass finds it.
 *
 * Ownership: borrows the store, which must outlive it. */
#define TY_EVENT_TTL_NS (3600LL * 1000000000LL)
/* The most Events one ty_events_expire call looks at (about 1.5 us each). */
#define TY_EVENT_EXPIRY_LOOKS 4096
typedef struct ty_event_expiry ty_event_expiry;

ty_event_expiry *ty_event_expiry_new(ty_store *s);
void ty_event_expiry_free(ty_event_expiry *x);
/* One slice of the pass: looks at the next Events (at most TY_EVENT_EXPIRY_LOOKS, and none
 * more once `budget_ns` of monotonic time has passed since the call began; 0: no time limit;
 * the first is looked at whatever the time) and deletes those last seen more than `ttl_ns`
 * before `now_ns`, at most `max` (> 0), so that one call never blocks the loop long. Returns
 * how many went. *more (may be NULL) tells whether the pass goes on (call again soon); when
 * false, the pass is over and the next call begins a new one. An Event that finalizers hold
 * is only marked (once: a marked one is not deleted again) and not counted.
 * Cost: ~1.5 us per Event looked at, plus a store write (30-60 us) per Event deleted. */
int ty_events_expire(ty_event_expiry *x, int64_t now_ns, int64_t ttl_ns, int max,
                     int64_t budget_ns, bool *more);

#endif
