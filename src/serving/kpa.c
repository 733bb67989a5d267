/* Knative's KPA decision (serving/kpa.h). The arithmetic follows Knative Serving's autoscaler
 * step for step (ceilings, floors, the order of limits), since users tune their annotations by
 * the numbers Knative gives; the comments say where it matters. */
#include "serving/kpa.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/mem.h"

#define GROUP "autoscaling.knative.dev/"
#define TARGET_MIN 0.01
#define WINDOW_MIN_NS (6 * TY_KPA_NS_PER_S)
#define WINDOW_MAX_NS (3600 * TY_KPA_NS_PER_S)
#define DELAY_GRANULARITY_S 2 /* the decider's tick: the scale-down delay's buckets */

void ty_kpa_config_default(ty_kpa_config *c)
{
    *c = (ty_kpa_config){
        .container_concurrency_target_percentage = 70,
        .container_concurrency_target_default = 100,
        .requests_per_second_target_default = 200,
        .target_utilization_percentage_rps = 70,
        .stable_window_ns = 60 * TY_KPA_NS_PER_S,
        .panic_window_percentage = 10,
        .panic_threshold_percentage = 200,
        .max_scale_up_rate = 1000,
        .max_scale_down_rate = 2,
        .enable_scale_to_zero = true,
        .scale_to_zero_grace_period_ns = 30 * TY_KPA_NS_PER_S,
        .scale_down_delay_ns = 0,
        .initial_scale = 1,
        .allow_zero_initial_scale = false,
    };
}

/* ---- durations as Go writes and reads them ----------------------------------------------- */

int ty_kpa_parse_duration(const char *s, int64_t *ns)
{
    static const struct {
        const char *unit;
        double ns;
    } units[] = {{"ns", 1}, {"us", 1e3}, {"µs", 1e3}, {"μs", 1e3}, {"ms", 1e6},
                 {"s", 1e9}, {"m", 60e9}, {"h", 3600e9}};
    const char *p = s;
    bool neg = false;
    if (*p == '-' || *p == '+')
        neg = *p++ == '-';
    if (strcmp(p, "0") == 0) {
        *ns = 0;
        return 0;
    }
    if (!*p)
        return -1;
    double total = 0;
    while (*p) {
        if (!isdigit((unsigned char)*p) && *p != '.')
            return -1;
        char *end;
        errno = 0;
        double v = strtod(p, &end);
        if (end == p || errno)
            return -1;
        p = end;
        size_t best = 0;
        int which = -1;
        for (size_t i = 0; i < sizeof units / sizeof *units; i++) {
            size_t l = strlen(units[i].unit);
            if (strncmp(p, units[i].unit, l) == 0 && l > best)
                best = l, which = (int)i;
        }
        if (which < 0)
            return -1; /* a number needs its unit */
        total += v * units[which].ns;
        p += best;
    }
    if (total > 9.2e18)
        return -1;
    *ns = (int64_t)llround(neg ? -total : total);
    return 0;
}

/* Go's Duration.String for whole seconds and more ("6s", "1h0m0s"), which Knative's bounds
 * messages print. */
static void fmt_duration(ty_buf *b, int64_t ns)
{
    int64_t s = ns / TY_KPA_NS_PER_S;
    if (s >= 3600)
        ty_buf_addf(b, "%lldh%lldm%llds", (long long)(s / 3600), (long long)(s % 3600 / 60),
                    (long long)(s % 60));
    else if (s >= 60)
        ty_buf_addf(b, "%lldm%llds", (long long)(s / 60), (long long)(s % 60));
    else
        ty_buf_addf(b, "%llds", (long long)s);
}

/* ---- annotations ------------------------------------------------------------------------- */

/* The value of the first of `keys` (the annotation, then its older spellings) present;
 * *key_out names the one found. */
static const char *annotation(const json_t *anns, const char *const *keys, const char **key_out)
{
    for (size_t i = 0; keys[i]; i++) {
        const char *v = json_string_value(json_object_get(anns, keys[i]));
        if (v) {
            *key_out = keys[i];
            return v;
        }
    }
    return NULL;
}

#define KEYS(...) ((const char *const[]){__VA_ARGS__, NULL})

static bool parse_float(const char *v, double *out)
{
    if (!*v || isspace((unsigned char)*v))
        return false;
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (*end || errno || !isfinite(d))
        return false;
    *out = d;
    return true;
}

/* strconv.ParseInt(v, 10, 32): 1 ok, 0 not a number, -1 out of int32's range */
static int parse_int32(const char *v, int64_t *out)
{
    const char *p = v;
    if (*p == '-' || *p == '+')
        p++;
    if (!*p)
        return 0;
    for (; *p; p++)
        if (!isdigit((unsigned char)*p))
            return 0;
    errno = 0;
    long long n = strtoll(v, NULL, 10);
    if (errno || n > INT32_MAX || n < INT32_MIN)
        return -1;
    *out = n;
    return 1;
}

static void problem(ty_buf *errs, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(ty_buf *errs, const char *fmt, ...)
{
    if (errs->len)
        ty_buf_addc(errs, '\n');
    va_list ap;
    va_start(ap, fmt);
    char *m = NULL;
    if (vasprintf(&m, fmt, ap) < 0)
        m = NULL;
    va_end(ap);
    ty_buf_adds(errs, m ? m : "?");
    free(m);
}

/* min-scale / max-scale: integers >= 0 (getIntGE0) */
static int32_t int_ge0(const json_t *anns, const char *const *keys, bool *present, ty_buf *errs)
{
    const char *k;
    const char *v = annotation(anns, keys, &k);
    *present = v != NULL;
    if (!v)
        return 0;
    int64_t n;
    int rc = parse_int32(v, &n);
    if (rc < 0 || (rc == 1 && n < 0)) {
        problem(errs, "expected 0 <= %s <= 2147483647: %s", v, k);
        return 0;
    }
    if (rc == 0) {
        problem(errs, "invalid value: %s: %s", v, k);
        return 0;
    }
    return (int32_t)n;
}

/* A percentage or factor annotation within [lo, hi]; returns whether it was given and valid. */
static bool float_in(const json_t *anns, const char *const *keys, double lo, double hi,
                     double *out, ty_buf *errs)
{
    const char *k;
    const char *v = annotation(anns, keys, &k);
    if (!v)
        return false;
    double d;
    if (!parse_float(v, &d)) {
        problem(errs, "invalid value: %s: %s", v, k);
        return false;
    }
    if (d < lo || d > hi) {
        problem(errs, "expected %g <= %s <= %g: %s", lo, v, hi, k);
        return false;
    }
    *out = d;
    return true;
}

/* A duration annotation within [lo, hi] with at most second precision. */
static bool duration_in(const json_t *anns, const char *key, int64_t lo, int64_t hi,
                        int64_t *out, ty_buf *errs)
{
    const char *v = json_string_value(json_object_get(anns, key));
    if (!v)
        return false;
    int64_t ns;
    if (ty_kpa_parse_duration(v, &ns) < 0) {
        problem(errs, "invalid value: %s: %s", v, key);
        return false;
    }
    if (ns < lo || ns > hi) {
        TY_AUTOBUF ty_buf a = TY_BUF_INIT, b = TY_BUF_INIT;
        fmt_duration(&a, lo);
        fmt_duration(&b, hi);
        problem(errs, "expected %s <= %s <= %s: %s", a.data, v, b.data, key);
        return false;
    }
    if (ns % TY_KPA_NS_PER_S != 0) {
        problem(errs, "must be specified with at most second precision: %s", key);
        return false;
    }
    *out = ns;
    return true;
}

int ty_kpa_spec_from_annotations(const ty_kpa_config *cfg, int64_t container_concurrency,
                                 const json_t *annotations, ty_kpa_spec *out, ty_error *err)
{
    const json_t *a = json_is_object(annotations) ? annotations : NULL;
    TY_AUTOBUF ty_buf errs = TY_BUF_INIT;
    const char *k, *v;

    /* class: only Knative's own two are known; other classes are someone else's */
    const char *cls = annotation(a, KEYS(GROUP "class"), &k);
    size_t cl = cls ? strlen(cls) : 0;
    if (cl >= 12 && strcmp(cls + cl - 12, ".knative.dev") == 0 &&
        strcmp(cls, "kpa.autoscaling.knative.dev") != 0 &&
        strcmp(cls, "hpa.autoscaling.knative.dev") != 0)
        problem(&errs, "invalid value: %s: %s", cls, k);
    bool hpa = cls && strcmp(cls, "hpa.autoscaling.knative.dev") == 0;

    bool has_min, has_max;
    int32_t min = int_ge0(a, KEYS(GROUP "min-scale", GROUP "minScale"), &has_min, &errs);
    int32_t max = int_ge0(a, KEYS(GROUP "max-scale", GROUP "maxScale"), &has_max, &errs);
    if (max != 0 && max < min)
        problem(&errs, "max-scale=%d is less than min-scale=%d: %smax-scale, %smin-scale", max,
                min, GROUP, GROUP);
    if (has_max && cfg->max_scale_limit > 0) {
        if (max > cfg->max_scale_limit)
            problem(&errs, "expected 1 <= %d <= %d: %s", max, cfg->max_scale_limit,
                    GROUP "max-scale");
        if (max == 0)
            problem(&errs, "max-scale=0 (unlimited), must be less than %d: %s",
                    cfg->max_scale_limit, GROUP "max-scale");
    }
    int32_t activation = 0;
    if ((v = annotation(a, KEYS(GROUP "activation-scale"), &k))) {
        int64_t n;
        if (parse_int32(v, &n) != 1)
            problem(&errs, "invalid value: %s: %s", v, k);
        else if (min > n)
            problem(&errs, "min-scale=%d is greater than activation-scale=%lld: %s", min,
                    (long long)n, k);
        else if (max != 0 && max < n)
            problem(&errs, "max-scale=%d is less than activation-scale=%lld: %s", max,
                    (long long)n, k);
        else if (n < 2)
            problem(&errs, "activation-scale=%lld must be greater than 1: %s", (long long)n, k);
        else
            activation = (int32_t)n;
    }

    double pwp = cfg->panic_window_percentage, ptp = cfg->panic_threshold_percentage;
    float_in(a, KEYS(GROUP "panic-window-percentage", GROUP "panicWindowPercentage"), 1, 100,
             &pwp, &errs);
    float_in(a, KEYS(GROUP "panic-threshold-percentage", GROUP "panicThresholdPercentage"),
             110, 1000, &ptp, &errs);
    double target_ann = 0;
    bool has_target = false;
    if ((v = annotation(a, KEYS(GROUP "target"), &k))) {
        if (!parse_float(v, &target_ann))
            problem(&errs, "invalid value: %s: %s", v, k);
        else if (target_ann < TARGET_MIN)
            problem(&errs, "target %s should be at least %g: %s", v, TARGET_MIN, k);
        else
            has_target = true;
    }
    double tu_pct = 0;
    bool has_tu = float_in(a, KEYS(GROUP "target-utilization-percentage",
                                   GROUP "targetUtilizationPercentage"),
                           1, 100, &tu_pct, &errs);
    if ((v = annotation(a, KEYS(GROUP "target-burst-capacity", GROUP "targetBurstCapacity"),
                        &k))) {
        double tbc;
        if (!parse_float(v, &tbc) || (tbc < 0 && tbc != -1))
            problem(&errs, "invalid value: %s: %s", v, k);
    }
    int64_t window = cfg->stable_window_ns, delay = cfg->scale_down_delay_ns, retention = 0;
    duration_in(a, GROUP "window", WINDOW_MIN_NS, WINDOW_MAX_NS, &window, &errs);
    if ((v = json_string_value(json_object_get(a, GROUP "scale-to-zero-pod-retention-period")))) {
        if (ty_kpa_parse_duration(v, &retention) < 0)
            problem(&errs, "invalid value: %s: %s", v, GROUP "scale-to-zero-pod-retention-period");
        else if (retention < 0 || retention > WINDOW_MAX_NS)
            problem(&errs, "expected 0s <= %s <= 1h0m0s: %s", v,
                    GROUP "scale-to-zero-pod-retention-period");
    }
    duration_in(a, GROUP "scale-down-delay", 0, WINDOW_MAX_NS, &delay, &errs);

    ty_kpa_metric metric = TY_KPA_CONCURRENCY;
    if ((v = annotation(a, KEYS(GROUP "metric"), &k))) {
        if (strcmp(v, "rps") == 0)
            metric = TY_KPA_RPS;
        else if (hpa ? !*v : strcmp(v, "concurrency") != 0) /* the HPA takes cpu, memory, ... */
            problem(&errs, "invalid value: %s: %s", v, k);
    }
    bool weighted = false;
    if ((v = annotation(a, KEYS(GROUP "metric-aggregation-algorithm"), &k)) && *v) {
        if (strcmp(v, "weightedExponential") == 0 || strcmp(v, "weighted-exponential") == 0)
            weighted = true;
        else if (strcmp(v, "linear") != 0 && cls && strcmp(cls, "kpa.autoscaling.knative.dev") == 0)
            problem(&errs, "invalid value: %s: %s", v, k); /* Knative checks it for an explicit KPA only */
    }
    int32_t initial = cfg->initial_scale;
    if ((v = annotation(a, KEYS(GROUP "initial-scale", GROUP "initialScale"), &k))) {
        int64_t n;
        if (parse_int32(v, &n) != 1)
            problem(&errs, "invalid value: %s: %s", v, k);
        else if (n < 0)
            problem(&errs, "invalid value: %s: %s must be greater than 0", v, k);
        else if (n == 0 && !cfg->allow_zero_initial_scale)
            problem(&errs, "invalid value: %s: %s=0 not allowed by cluster", v, k);
        else
            initial = (int32_t)n;
    }
    if (container_concurrency < 0 || container_concurrency > 1000)
        problem(&errs, "expected 0 <= %lld <= 1000: containerConcurrency",
                (long long)container_concurrency);
    if (errs.len)
        return ty_fail(err, "%s", errs.data);

    /* ResolveMetricTarget: the total one replica takes, times the utilization aimed at */
    double total, tu;
    if (metric == TY_KPA_RPS) {
        total = cfg->requests_per_second_target_default;
        tu = cfg->target_utilization_percentage_rps / 100.0;
    } else {
        total = container_concurrency ? (double)container_concurrency
                                      : cfg->container_concurrency_target_default;
        tu = cfg->container_concurrency_target_percentage / 100.0;
    }
    if (has_target) {
        total = target_ann;
        /* never aim above what containerConcurrency lets one replica take */
        if (metric == TY_KPA_CONCURRENCY && container_concurrency)
            total = fmin(target_ann, (double)container_concurrency);
    }
    if (has_tu)
        tu = tu_pct / 100.0;
    *out = (ty_kpa_spec){
        .metric = metric,
        .total = total,
        .target = fmax(TARGET_MIN, total * tu),
        .panic_threshold = ptp / 100.0,
        .max_scale_up_rate = cfg->max_scale_up_rate,
        .max_scale_down_rate = cfg->max_scale_down_rate,
        .stable_window_ns = window,
        /* at least one bucket */
        .panic_window_ns = (int64_t)fmax((double)TY_KPA_NS_PER_S, (double)window * pwp / 100.0),
        .scale_down_delay_ns = delay,
        .min_scale = has_min ? min : cfg->min_scale,
        .max_scale = has_max ? max : cfg->max_scale,
        .initial_scale = initial,
        .activation_scale = activation,
        .reachable = true,
        .weighted = weighted,
        .scale_to_zero = cfg->enable_scale_to_zero,
        .scale_to_zero_grace_ns = cfg->scale_to_zero_grace_period_ns,
    };
    return 0;
}

/* ---- windowed averages ------------------------------------------------------------------- */

#define NEVER_S (-(1LL << 40)) /* "no write yet": far enough in the past for any window */

static int64_t floor_s(int64_t ns)
{
    return ns >= 0 ? ns / TY_KPA_NS_PER_S : -((-ns + TY_KPA_NS_PER_S - 1) / TY_KPA_NS_PER_S);
}

static size_t ring(const ty_kpa_buckets *b, int64_t s)
{
    int64_t n = (int64_t)b->n;
    return (size_t)(((s % n) + n) % n);
}

void ty_kpa_buckets_init(ty_kpa_buckets *b, int64_t window_ns, bool weighted)
{
    int64_t nb = (window_ns + TY_KPA_NS_PER_S - 1) / TY_KPA_NS_PER_S;
    if (nb < 1)
        nb = 1;
    *b = (ty_kpa_buckets){.buckets = ty_calloc((size_t)nb, sizeof(double)),
                          .n = (size_t)nb,
                          .window_s = nb,
                          .first_write = NEVER_S,
                          .last_write = NEVER_S,
                          .weighted = weighted};
    /* weighted: the decay that gives the window's buckets 99.99% of the weight, but never
     * slower than 0.2 a bucket (else a long window is a plain mean) */
    b->smoothing = fmax(1 - pow(1 - 0.9999, 1.0 / (double)nb), 0.2);
}

void ty_kpa_buckets_free(ty_kpa_buckets *b)
{
    if (!b)
        return;
    free(b->buckets);
    b->buckets = NULL;
}

void ty_kpa_buckets_record(ty_kpa_buckets *b, int64_t now_ns, double value)
{
    int64_t t = floor_s(now_ns);
    if (b->last_write != t) {
        if (t + b->window_s <= b->last_write)
            return; /* older than the window */
        if (b->first_write == NEVER_S || b->first_write > t)
            b->first_write = t;
        if (t > b->last_write) {
            if (t - b->last_write >= b->window_s) {
                /* a whole window without data: start over */
                b->first_write = t;
                memset(b->buckets, 0, b->n * sizeof(double));
                b->window_total = 0;
            } else {
                for (int64_t i = b->last_write + 1; i <= t; i++) {
                    b->window_total -= b->buckets[ring(b, i)];
                    b->buckets[ring(b, i)] = 0;
                }
            }
            b->last_write = t;
        }
    }
    b->buckets[ring(b, t)] += value;
    b->window_total += value;
}

bool ty_kpa_buckets_empty(const ty_kpa_buckets *b, int64_t now_ns)
{
    return floor_s(now_ns) - b->last_write > b->window_s;
}

static double round6(double v) { return round(v * 1e6) / 1e6; }

double ty_kpa_buckets_average(const ty_kpa_buckets *b, int64_t now_ns)
{
    int64_t now = floor_s(now_ns);
    if (b->weighted) {
        if (ty_kpa_buckets_empty(b, now_ns))
            return 0;
        int64_t nb = (int64_t)b->n;
        double mult = b->smoothing, ret = 0;
        if (now > b->last_write) {
            int64_t zeros = now - b->last_write;
            mult *= pow(1 - b->smoothing, (double)zeros);
            nb -= zeros;
        }
        for (int64_t i = 0; i < nb; i++) {
            ret += b->buckets[ring(b, b->last_write - i)] * mult;
            mult *= 1 - b->smoothing;
        }
        return ret;
    }
    int64_t d = now - b->last_write;
    double span = (double)(b->last_write - b->first_write + 1); /* inclusive */
    if (d <= 0)
        return round6(b->window_total / fmin(span, (double)b->n));
    if (d < b->window_s) {
        /* no data for a while: the seconds since count as gone, not as zeros */
        double ret = b->window_total;
        for (int64_t i = b->last_write + 1; i <= now; i++)
            ret -= b->buckets[ring(b, i)];
        return round6(ret / fmin(span, (double)((int64_t)b->n - d)));
    }
    return 0;
}

/* ---- the decider --------------------------------------------------------------------------- */

void ty_kpa_state_init(ty_kpa_state *st, const ty_kpa_spec *spec, int32_t ready, int64_t now_ns)
{
    memset(st, 0, sizeof *st);
    if (ready > 1) {
        st->panicking = true;
        st->panic_time_ns = now_ns;
    }
    st->max_panic_pods = ready;
    int64_t g = DELAY_GRANULARITY_S * TY_KPA_NS_PER_S;
    if (spec->scale_down_delay_ns > 0) {
        st->delay_cap = (size_t)((spec->scale_down_delay_ns + g - 1) / g);
        st->delay = ty_calloc(st->delay_cap, sizeof *st->delay);
    }
    st->active_since_ns = now_ns;
    st->at_zero = ready == 0 && spec->initial_scale == 0;
}

void ty_kpa_state_free(ty_kpa_state *st)
{
    if (!st)
        return;
    free(st->delay);
    st->delay = NULL;
}

/* The largest value of the last delay_cap buckets (max/window.go: a descending queue). */
static int32_t delay_record(ty_kpa_state *st, int64_t index, int32_t v)
{
    size_t cap = st->delay_cap;
#define AT(i) st->delay[(st->delay_first + (i)) % cap]
    while (st->delay_len > 0 && v >= AT(st->delay_len - 1).value)
        st->delay_len--;
    while (st->delay_len > 0 && index - AT(0).index >= (int64_t)cap) {
        st->delay_len--;
        st->delay_first = (st->delay_first + 1) % cap;
    }
    if (st->delay_len > 0 && AT(st->delay_len - 1).index == index) {
        if (AT(st->delay_len - 1).value > v)
            v = AT(st->delay_len - 1).value;
        st->delay_len--;
    }
    AT(st->delay_len).index = index;
    AT(st->delay_len).value = v;
    st->delay_len++;
    return AT(0).value;
#undef AT
}

static int32_t clamp_count(double v)
{
    return v > INT32_MAX ? INT32_MAX : v < 0 ? 0 : (int32_t)v;
}

ty_kpa_decision ty_kpa_decide(ty_kpa_state *st, const ty_kpa_spec *spec, double stable_value,
                              double panic_value, int32_t ready, int64_t now_ns)
{
    double ready_f = fmax(1, (double)ready);
    /* at least one more replica whatever the rate, so a slow rate never stalls growth */
    double max_up = ceil(spec->max_scale_up_rate * ready_f);
    /* an unrouted revision may drop at once */
    double max_down = spec->reachable ? floor(ready_f / spec->max_scale_down_rate) : 0;
    double dspc = ceil(stable_value / spec->target);
    double dppc = ceil(panic_value / spec->target);
    int32_t stable = clamp_count(fmin(fmax(dspc, max_down), max_up));
    int32_t panic = clamp_count(fmin(fmax(dppc, max_down), max_up));
    if (spec->activation_scale > 1) {
        if (dspc > 0 && spec->activation_scale > stable)
            stable = spec->activation_scale;
        if (dppc > 0 && spec->activation_scale > panic)
            panic = spec->activation_scale;
    }
    bool over = dppc / ready_f >= spec->panic_threshold;
    if (over) {
        /* begin panicking, or extend it: the window counts from the last time over */
        st->panicking = true;
        st->panic_time_ns = now_ns;
    } else if (st->panicking && st->panic_time_ns + spec->stable_window_ns < now_ns) {
        /* the surge has made its way into the stable window */
        st->panicking = false;
        st->max_panic_pods = 0;
    }
    int32_t desired = stable;
    if (st->panicking) {
        /* the larger of the two, and never down while panicking */
        if (desired < panic)
            desired = panic;
        if (desired > st->max_panic_pods)
            st->max_panic_pods = desired;
        desired = st->max_panic_pods;
    }
    if (spec->reachable && st->delay)
        desired = delay_record(st, floor_s(now_ns) / DELAY_GRANULARITY_S, desired);
    return (ty_kpa_decision){.desired = desired,
                             .panicking = st->panicking,
                             .stable_count = dspc,
                             .panic_count = dppc};
}

int32_t ty_kpa_scale(ty_kpa_state *st, const ty_kpa_spec *spec, int32_t desired, int32_t ready,
                     int64_t now_ns)
{
    int32_t min = spec->min_scale, max = spec->max_scale;
    if (spec->initial_scale > 1 && !st->initialized) {
        if (ready >= spec->initial_scale)
            st->initialized = true; /* reached once: the initial scale is done with */
        else if (min < spec->initial_scale)
            min = spec->initial_scale;
    }
    int32_t x = desired < min ? min : desired;
    if (max != 0 && x > max)
        x = max;
    if (x != 0) {
        st->idle = false;
        if (st->at_zero)
            st->active_since_ns = now_ns;
        st->at_zero = false;
        return x;
    }
    if (st->at_zero)
        return 0;
    if (!spec->scale_to_zero)
        return 1;
    if (!st->idle) {
        st->idle = true;
        st->idle_since_ns = now_ns;
    }
    /* it turns inactive once active for a stable window and wanted at zero; then the grace
     * period lets the gateway take over the requests before the last replica goes */
    int64_t inactive_since = st->idle_since_ns;
    if (st->active_since_ns + spec->stable_window_ns > inactive_since)
        inactive_since = st->active_since_ns + spec->stable_window_ns;
    if (now_ns - inactive_since >= spec->scale_to_zero_grace_ns) {
        st->at_zero = true;
        return 0;
    }
    return 1;
}

/* ---- one revision's autoscaler ------------------------------------------------------------ */

void ty_kpa_init(ty_kpa *a, const ty_kpa_spec *spec, int32_t ready, int64_t now_ns)
{
    a->spec = *spec;
    ty_kpa_buckets_init(&a->stable, spec->stable_window_ns, spec->weighted);
    ty_kpa_buckets_init(&a->panic, spec->panic_window_ns, spec->weighted);
    ty_kpa_state_init(&a->st, &a->spec, ready, now_ns);
}

void ty_kpa_free(ty_kpa *a)
{
    if (!a)
        return;
    ty_kpa_buckets_free(&a->stable);
    ty_kpa_buckets_free(&a->panic);
    ty_kpa_state_free(&a->st);
}

void ty_kpa_record(ty_kpa *a, int64_t now_ns, double value)
{
    ty_kpa_buckets_record(&a->stable, now_ns, value);
    ty_kpa_buckets_record(&a->panic, now_ns, value);
}

int32_t ty_kpa_step(ty_kpa *a, int32_t ready, int64_t now_ns, ty_kpa_decision *d)
{
    ty_kpa_decision dec = ty_kpa_decide(&a->st, &a->spec,
                                        ty_kpa_buckets_average(&a->stable, now_ns),
                                        ty_kpa_buckets_average(&a->panic, now_ns), ready, now_ns);
    if (d)
        *d = dec;
    return ty_kpa_scale(&a->st, &a->spec, dec.desired, ready, now_ns);
}
