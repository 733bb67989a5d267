/* Events (core v1 Event) for what the controllers do, so `kubectl describe` tells the story.
 *
 * A recorder belongs to one component ("pytorchjob-controller", "default-scheduler",
 * "kubelet"). Repeats of the same reason and message on the same object update one Event's
 * count and lastTimestamp, as the client-go recorder aggregates them. Events are written to the
 * store; recording never fails the caller (a store error is logged at debug level).
 *
 * Ownership: borrows the store; the recorder owns its dedup index. */
#ifndef TY_CONTROLLERS_EVENTS_H
#define TY_CONTROLLERS_EVENTS_H

#include <jansson.h>

#include "store/store.h"

typedef struct ty_recorder ty_recorder;

ty_recorder *ty_recorder_new(ty_store *store, const char *component);
void ty_recorder_free(ty_recorder *r);
/* type: "Normal" or "Warning". `obj` is the involved object (borrowed). */
void ty_event(ty_recorder *r, const json_t *obj, const char *type, const char *reason,
              const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Deletes the events last seen more than `ttl_ns` before `now_ns`, as the API server lets
 * them expire (one hour by default), so a long-running server does not keep every event it
 * ever recorded. Returns how many went. Cost: one pass over the events. */
#define TY_EVENT_TTL_NS (3600LL * 1000000000LL)
int ty_events_expire(ty_store *s, int64_t now_ns, int64_t ttl_ns);

#endif
