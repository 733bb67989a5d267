/* Clocks and Kubernetes time formats. Wall time (realtime) is for timestamps users see;
 * monotonic time is for durations, deadlines and timers. */
#ifndef TY_BASE_TIME_H
#define TY_BASE_TIME_H

#include <stddef.h>
#include <stdint.h>

int64_t ty_time_now_ns(void);      /* CLOCK_REALTIME, ns since the epoch */
int64_t ty_time_mono_ns(void);     /* CLOCK_MONOTONIC */
/* ns + s seconds, saturating at INT64_MIN/INT64_MAX instead of overflowing: seconds users give
 * (deadlines, TTLs, grace periods, sinceSeconds) may be anything up to 2^63-1. */
int64_t ty_time_add_s(int64_t ns, int64_t s);
/* RFC 3339 in UTC: digits = 0 gives "2026-11-28T14:06:52Z" (metav1.Time), 9 gives
 * nanoseconds as in CRI logs. Returns `out`. */
char *ty_time_format_rfc3339(int64_t ns, char *out, size_t cap, int digits);
/* Parses what ty_time_format_rfc3339 writes (and any fraction length, Z or +hh:mm).
 * Returns -1 when it is not such a time. */
int ty_time_parse_rfc3339(const char *s, int64_t *ns);
/* Human durations as kubectl prints ages: 45s, 3m20s, 2h5m, 3d4h. */
char *ty_time_format_age(int64_t ns, char *out, size_t cap);

#endif
