/* The client's pure rules for when to send: a token bucket for client-side QPS/burst limits,
 * exponential back-off with jitter, and the Retry-After header. No clock or I/O: callers pass
 * the time, so the tests drive them directly.
 *
 * The bucket is client-go's flowcontrol token bucket (golang.org/x/time/rate): it holds up
 * to `burst` tokens, refilled at `qps` a second; a request takes one, and when none is left it
 * reserves the next one and waits for it, so waiting requests go in order and the rate holds
 * exactly. client-go's defaults are 5 QPS with a burst of 10. */
#ifndef TY_KUBE_RETRY_H
#define TY_KUBE_RETRY_H

#include <stdbool.h>
#include <stdint.h>

#define TY_KUBE_DEFAULT_QPS 5.0
#define TY_KUBE_DEFAULT_BURST 10

typedef struct ty_kube_bucket {
    double qps;      /* <= 0: no limit */
    int burst;       /* at least 1 */
    double tokens;   /* may go negative: tokens reserved by waiting requests */
    int64_t last_ns; /* when `tokens` was last brought up to date */
} ty_kube_bucket;

/* A full bucket at `now_ns`. qps <= 0 disables the limit; burst < 1 counts as 1. */
void ty_kube_bucket_init(ty_kube_bucket *b, double qps, int burst, int64_t now_ns);
/* Takes a token for a request sent at `now_ns`: returns 0 when it may go at once, else how
 * many nanoseconds it must wait (the token is reserved for it either way). */
int64_t ty_kube_bucket_take(ty_kube_bucket *b, int64_t now_ns);

typedef struct ty_kube_backoff {
    int64_t base_ms;  /* the first delay */
    int64_t cap_ms;   /* no delay is longer (before jitter) */
    double factor;    /* each try multiplies the delay by it (2: doubling) */
    double jitter;    /* a delay gets up to this fraction more, at random (0.1: up to +10 %) */
} ty_kube_backoff;

/* The delay before try number `attempt` (0 for the first retry): base * factor^attempt,
 * capped, plus jitter * delay * `random01` (a number in [0, 1) the caller draws). */
int64_t ty_kube_backoff_ms(const ty_kube_backoff *b, int attempt, double random01);

/* Parses a Retry-After value: delay-seconds ("120") or an HTTP-date
 * ("Wed, 21 Oct 2015 07:28:00 GMT", relative to `now_s`, seconds since the epoch). Returns
 * the delay in seconds (0 for a date in the past), capped at `max_s`, or -1 when the value is
 * neither. */
int64_t ty_kube_retry_after_s(const char *value, int64_t now_s, int64_t max_s);

#endif
