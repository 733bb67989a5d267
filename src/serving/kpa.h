/* Knative's Pod Autoscaler (KPA) decision, as pure functions: no I/O, no clock (every call
 * takes `now`), no globals. What the serving controller feeds it: the observed concurrency or
 * requests per second of a revision (summed over its replicas, sampled about once a second),
 * and the number of ready replicas; what it gives back: how many replicas the revision should
 * have. Written from Knative Serving's pkg/autoscaler (scaling/autoscaler.go,
 * aggregation/bucketing.go, aggregation/max) and pkg/reconciler/autoscaling/kpa/scaler.go, whose
 * test expectations tests/unit/test_kpa.c carries over.
 *
 * The pieces:
 *   - ty_kpa_config: the cluster's defaults (Knative's config-autoscaler ConfigMap);
 *   - ty_kpa_spec_from_annotations: a revision's `autoscaling.knative.dev/...` annotations over
 *     those defaults, validated with Knative's rules and messages, into the decider's spec;
 *   - ty_kpa_buckets: the windowed average of samples (1 s buckets; linear, or weighted
 *     exponential), one for the stable window and one for the panic window;
 *   - ty_kpa_decide: the decider (autoscaler.go's Scale): stable and panic desired counts,
 *     rate limits, panic mode (entered at panic-threshold, no scale-down while in it, left a
 *     stable window after the last time over the threshold), activation scale, scale-down
 *     delay (the largest decision of the last delay, in 2 s buckets);
 *   - ty_kpa_scale: the reconciler's bounds on it (min/max scale, initial scale until first
 *     reached) and scale-to-zero (only after a stable window without traffic and then the
 *     grace period; until then one replica stays).
 *
 * Ownership: every struct here is plain data the caller owns; ty_kpa_buckets_free and
 * ty_kpa_state_free free what the init functions allocated. */
#ifndef TY_SERVING_KPA_H
#define TY_SERVING_KPA_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/error.h"

#define TY_KPA_NS_PER_S 1000000000LL

/* The cluster-wide defaults, Knative's config-autoscaler (ty_kpa_config_default). */
typedef struct ty_kpa_config {
    double container_concurrency_target_percentage; /* 70 */
    double container_concurrency_target_default;    /* 100 */
    double requests_per_second_target_default;      /* 200 */
    double target_utilization_percentage_rps;       /* 70: rps targets are 0.7 of 200 too */
    int64_t stable_window_ns;                       /* 60 s */
    double panic_window_percentage;                 /* 10 */
    double panic_threshold_percentage;              /* 200 */
    double max_scale_up_rate;                       /* 1000 */
    double max_scale_down_rate;                     /* 2 */
    bool enable_scale_to_zero;                      /* true */
    int64_t scale_to_zero_grace_period_ns;          /* 30 s */
    int64_t scale_down_delay_ns;                    /* 0 */
    int32_t initial_scale;                          /* 1 */
    bool allow_zero_initial_scale;                  /* false */
    int32_t min_scale, max_scale;                   /* 0, 0 (unbounded) */
    int32_t max_scale_limit;                        /* 0 (none) */
} ty_kpa_config;

void ty_kpa_config_default(ty_kpa_config *c);

typedef enum { TY_KPA_CONCURRENCY, TY_KPA_RPS } ty_kpa_metric;

/* One revision's decider spec (Knative's DeciderSpec plus the scaler's bounds). */
typedef struct ty_kpa_spec {
    ty_kpa_metric metric;
    double target;      /* the metric per replica to aim for (total x utilization, >= 0.01) */
    double total;       /* what one replica can take (containerConcurrency or the default) */
    double panic_threshold; /* a factor: 2.0 = 200% */
    double max_scale_up_rate, max_scale_down_rate;
    int64_t stable_window_ns, panic_window_ns, scale_down_delay_ns;
    int32_t min_scale, max_scale; /* max 0: unbounded */
    int32_t initial_scale;
    int32_t activation_scale; /* 0 or >= 2: the least non-zero scale */
    bool reachable;           /* routed to: rate-limited scale-down and the delay apply */
    bool weighted;            /* metric-aggregation-algorithm weightedExponential */
    bool scale_to_zero;       /* cluster enable-scale-to-zero */
    int64_t scale_to_zero_grace_ns;
} ty_kpa_spec;

/* Builds a revision's spec from the cluster's config, its containerConcurrency (0: none) and
 * its annotations (a JSON object of strings: metadata.annotations, or NULL), validated as
 * Knative validates them. Every problem is reported, one per line, each naming the
 * annotation ("expected 1 <= 0 <= 100: autoscaling.knative.dev/panic-window-percentage");
 * nothing is set then. Annotations of other groups are ignored. */
int ty_kpa_spec_from_annotations(const ty_kpa_config *cfg, int64_t container_concurrency,
                                 const json_t *annotations, ty_kpa_spec *out, ty_error *err);

/* Go's time.ParseDuration for the annotations' durations ("60s", "1m30s", "1.5h", "500ms"). */
int ty_kpa_parse_duration(const char *s, int64_t *ns);

/* ---- windowed averages (aggregation/bucketing.go) ---------------------------------------- */

typedef struct ty_kpa_buckets {
    double *buckets; /* ring indexed by second % n */
    size_t n;
    int64_t window_s;
    int64_t first_write, last_write; /* seconds; last_write < 0: never written */
    double window_total;
    bool weighted;
    double smoothing; /* weighted: the decay per bucket */
} ty_kpa_buckets;

/* A window of `window_ns` in 1 s buckets; weighted: exponentially weighted average (newest
 * counts most), else the mean over the part of the window that has data. */
void ty_kpa_buckets_init(ty_kpa_buckets *b, int64_t window_ns, bool weighted);
void ty_kpa_buckets_free(ty_kpa_buckets *b);
/* Adds a sample to the bucket of its second; gaps since the last write are zeros; a sample
 * older than the window is dropped; after a window without samples the window starts anew. */
void ty_kpa_buckets_record(ty_kpa_buckets *b, int64_t now_ns, double value);
/* The window's average at `now` (0 after a whole window without samples). */
double ty_kpa_buckets_average(const ty_kpa_buckets *b, int64_t now_ns);
/* Whether no sample came for a whole window. */
bool ty_kpa_buckets_empty(const ty_kpa_buckets *b, int64_t now_ns);

/* ---- the decider (scaling/autoscaler.go) --------------------------------------------------- */

typedef struct ty_kpa_state {
    bool panicking;
    int64_t panic_time_ns; /* while panicking: the last time over the threshold */
    int32_t max_panic_pods;
    /* the scale-down delay: the largest decision per 2 s bucket, descending (max/window.go) */
    struct {
        int64_t index;
        int32_t value;
    } *delay;
    size_t delay_cap, delay_first, delay_len;
    /* the scaler's memory: whether initial scale was reached, and since when the revision
     * has been wanted at zero (0: not) */
    bool initialized;
    bool at_zero;          /* the last scale given was 0 */
    int64_t active_since_ns; /* when it last left zero (or its decider was made) */
    bool idle;             /* wanted at zero since idle_since_ns */
    int64_t idle_since_ns;
} ty_kpa_state;

/* A fresh decider for a revision that has `ready` replicas now: with more than one it starts
 * in panic mode at `now`, so that a restarted autoscaler, without history, keeps the scale
 * until it has data. */
void ty_kpa_state_init(ty_kpa_state *st, const ty_kpa_spec *spec, int32_t ready, int64_t now_ns);
void ty_kpa_state_free(ty_kpa_state *st);

typedef struct ty_kpa_decision {
    int32_t desired;   /* the decider's count */
    bool panicking;
    double stable_count, panic_count; /* observed / target, before limits (for /metrics) */
} ty_kpa_decision;

/* One decision at `now` from the stable and panic windows' averages and the ready replicas
 * (0 counts as 1 for the rate limits and the panic threshold). */
ty_kpa_decision ty_kpa_decide(ty_kpa_state *st, const ty_kpa_spec *spec, double stable_value,
                              double panic_value, int32_t ready, int64_t now_ns);

/* The replicas to run from a decision (kpa/scaler.go): bounded by min/max scale, raised to
 * the initial scale until the revision first reached it (`ready` >= initial scale marks
 * that), and kept at 1 rather than 0 until it has been wanted at zero for a stable window and
 * the grace period (or when scale to zero is off). */
int32_t ty_kpa_scale(ty_kpa_state *st, const ty_kpa_spec *spec, int32_t desired, int32_t ready,
                     int64_t now_ns);

/* ---- one revision's autoscaler: the above put together --------------------------------- */

/* What the serving controller keeps per revision: its spec, both windows and the decider's
 * state. Feed it samples with ty_kpa_record (about once a second), ask it with ty_kpa_step. */
typedef struct ty_kpa {
    ty_kpa_spec spec;
    ty_kpa_buckets stable, panic;
    ty_kpa_state st;
} ty_kpa;

void ty_kpa_init(ty_kpa *a, const ty_kpa_spec *spec, int32_t ready, int64_t now_ns);
void ty_kpa_free(ty_kpa *a);
/* One sample of the observed metric (the revision's total: in-flight requests, or requests
 * per second) at `now`, into both windows. */
void ty_kpa_record(ty_kpa *a, int64_t now_ns, double value);
/* The replicas the revision should have now, with `ready` ready ones: the decision from the
 * windows' averages, bounded and with scale to zero (ty_kpa_decide, ty_kpa_scale). `d`, when
 * not NULL, gets the decision behind it. */
int32_t ty_kpa_step(ty_kpa *a, int32_t ready, int64_t now_ns, ty_kpa_decision *d);

#endif
