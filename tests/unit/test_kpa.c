/* The KPA decision (serving/kpa.h). The cases and their expected numbers are those of Knative
 * Serving's own tests (pkg/autoscaler/scaling/autoscaler_test.go, aggregation/bucketing_test.go,
 * pkg/apis/autoscaling/annotation_validation_test.go), restated against our functions: the
 * decider is fed the stable/panic values their fake metric client returned. */
#include <criterion/criterion.h>
#include <math.h>

#include "serving/kpa.h"

#define S(x) ((int64_t)(x) * TY_KPA_NS_PER_S)
#define MS(x) ((int64_t)(x) * 1000000)
#define T0 S(1700000000) /* a time like time.Now(): a whole second */

/* newTestAutoscaler(target, ...): panic at 2x, rates 10, stable window 60 s, reachable */
static ty_kpa_spec test_spec(double target)
{
    return (ty_kpa_spec){.metric = TY_KPA_CONCURRENCY,
                         .target = target,
                         .total = target / 0.75,
                         .panic_threshold = 2,
                         .max_scale_up_rate = 10,
                         .max_scale_down_rate = 10,
                         .stable_window_ns = S(60),
                         .panic_window_ns = S(6),
                         .reachable = true,
                         .scale_to_zero = true,
                         .scale_to_zero_grace_ns = S(30)};
}

typedef struct scaler {
    ty_kpa_spec spec;
    ty_kpa_state st;
    int32_t ready;
} scaler;

static void scaler_init(scaler *a, ty_kpa_spec spec, int32_t ready, int64_t now)
{
    a->spec = spec;
    a->ready = ready;
    ty_kpa_state_init(&a->st, &a->spec, ready, now);
}

static int32_t decide(scaler *a, double stable, double panic, int64_t now)
{
    return ty_kpa_decide(&a->st, &a->spec, stable, panic, a->ready, now).desired;
}

/* ---- the decider ------------------------------------------------------------------------- */

Test(kpa, stable_mode_increase_and_decrease)
{
    scaler a;
    scaler_init(&a, test_spec(10), 1, T0);
    cr_assert_eq(decide(&a, 50, 10, T0), 5);
    cr_assert_eq(decide(&a, 100, 10, T0), 10);
    ty_kpa_state_free(&a.st);
    /* TestAutoscalerStableModeDecrease */
    scaler_init(&a, test_spec(10), 1, T0);
    a.ready = 8;
    cr_assert_eq(decide(&a, 100, 100, T0), 10);
    cr_assert_eq(decide(&a, 50, 50, T0), 5);
    ty_kpa_state_free(&a.st);
}

Test(kpa, no_traffic_wants_zero)
{
    scaler a;
    scaler_init(&a, test_spec(10), 1, T0);
    cr_assert_eq(decide(&a, 1, 0, T0), 1);
    cr_assert_eq(decide(&a, 0, 0, T0), 0);
    ty_kpa_state_free(&a.st);
}

Test(kpa, activation_scale)
{
    scaler a;
    ty_kpa_spec sp = test_spec(10);
    sp.activation_scale = 2;
    scaler_init(&a, sp, 1, T0);
    cr_assert_eq(decide(&a, 0, 0, T0), 0);
    cr_assert_eq(decide(&a, 1, 0, T0), 2);
    ty_kpa_state_free(&a.st);
}

/* TestAutoscalerScale's table */
Test(kpa, scale_table)
{
    static const struct {
        const char *label;
        double target, stable, panic;
        int32_t base;
        double up, down;
        bool unreachable, panicking;
        int32_t want;
    } cases[] = {
        {"NoDataAtZero", 10, 0, 0, 1, 10, 10, false, false, 0},
        {"StableModeNoChange", 10, 50, 50, 1, 10, 10, false, false, 5},
        {"StableModeUnlimitedTBC", 181, 21, 26, 1, 10, 10, false, false, 1},
        {"PanicStableLargerThanPanic", 1, 50, 30, 5, 10, 10, false, true, 50},
        {"PanicStableLessThanPanic", 1, 20, 30, 5, 10, 10, false, true, 30},
        {"StableModeNoChangeAlreadyScaled", 10, 50, 50, 5, 10, 10, false, false, 5},
        /* ceil(1.1 x 2) = 3: a slow rate still grows by one */
        {"StableModeIncreaseWithSmallScaleUpRate", 1, 3, 3.1, 2, 1.1, 10, false, false, 3},
        {"StableModeDecreaseWithSmallScaleDownRate", 10, 1, 1, 100, 10, 1.1, false, false, 90},
        {"StableModeDecreaseNonReachable", 10, 1, 1, 100, 10, 1.1, true, false, 1},
        {"PanicModeDoublePodCount", 10, 50, 100, 1, 10, 10, false, false, 10},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        scaler a;
        ty_kpa_spec sp = test_spec(cases[i].target);
        sp.max_scale_up_rate = cases[i].up;
        sp.max_scale_down_rate = cases[i].down;
        sp.reachable = !cases[i].unreachable;
        scaler_init(&a, sp, 1, T0);
        a.ready = cases[i].base;
        if (cases[i].panicking) {
            a.st.panicking = true;
            a.st.panic_time_ns = T0 - S(5);
            a.st.max_panic_pods = 5;
        }
        cr_assert_eq(decide(&a, cases[i].stable, cases[i].panic, T0), cases[i].want, "%s",
                     cases[i].label);
        ty_kpa_state_free(&a.st);
    }
}

Test(kpa, panic_then_unpanic_scale_down)
{
    scaler a;
    scaler_init(&a, test_spec(10), 1, T0);
    cr_assert_eq(decide(&a, 100, 100, T0), 10);
    a.ready = 10;
    int64_t panic_at = T0 + S(1);
    cr_assert_eq(decide(&a, 100, 1000, panic_at), 100);
    cr_assert(a.st.panicking);
    /* traffic dropped, but no scale-down while panicking */
    cr_assert_eq(decide(&a, 1, 1, panic_at + S(30)), 100);
    /* a stable window after the last time over the threshold: down (rate-limited by 10) */
    cr_assert_eq(decide(&a, 1, 1, panic_at + S(61)), 1);
    cr_assert_not(a.st.panicking);
    ty_kpa_state_free(&a.st);
}

Test(kpa, unpanic_after_slow_increase)
{
    scaler a;
    scaler_init(&a, test_spec(1), 1, T0);
    a.ready = 10;
    cr_assert_eq(decide(&a, 11, 25, T0), 25);
    cr_assert_eq(a.st.panic_time_ns, T0);
    a.ready = 40;
    int64_t tm = T0 + S(30);
    cr_assert_eq(decide(&a, 30, 41, tm), 41);
    cr_assert_eq(a.st.panic_time_ns, T0, "not over the threshold: the panic time stays");
    a.ready = 55;
    tm += S(30) + S(2);
    cr_assert_eq(decide(&a, 50, 56, tm), 50, "no longer in panic");
    cr_assert_not(a.st.panicking);
    ty_kpa_state_free(&a.st);
}

Test(kpa, extend_panic_window)
{
    scaler a;
    scaler_init(&a, test_spec(1), 1, T0);
    a.ready = 10;
    cr_assert_eq(decide(&a, 11, 25, T0), 25);
    a.ready = 40;
    int64_t tm = T0 + S(30);
    cr_assert_eq(decide(&a, 30, 80, tm), 80);
    cr_assert_eq(a.st.panic_time_ns, tm, "still surging: the panic window is extended");
    ty_kpa_state_free(&a.st);
}

Test(kpa, panic_mode_exponential_track_and_stabilize)
{
    scaler a;
    scaler_init(&a, test_spec(1), 1, T0);
    cr_assert_eq(decide(&a, 6, 6, T0), 6);
    int64_t tm = T0;
    a.ready = 6;
    cr_assert_eq(decide(&a, 36, 36, tm), 36);
    cr_assert_eq(a.st.panic_time_ns, tm);
    a.ready = 36;
    tm += S(1);
    cr_assert_eq(decide(&a, 216, 216, tm), 216);
    cr_assert_eq(a.st.panic_time_ns, tm);
    a.ready = 216;
    cr_assert_eq(decide(&a, 1296, 1296, tm), 1296);
    a.ready = 1296;
    tm += S(1);
    cr_assert_eq(decide(&a, 1296, 1296, tm), 1296);
    ty_kpa_state_free(&a.st);
}

Test(kpa, rate_limits)
{
    scaler a;
    scaler_init(&a, test_spec(10), 1, T0);
    cr_assert_eq(decide(&a, 1000, 1001, T0), 10, "100 needed, x10 at most");
    a.ready = 10;
    cr_assert_eq(decide(&a, 1000, 1001, T0), 100);
    ty_kpa_state_free(&a.st);
    scaler_init(&a, test_spec(10), 1, T0);
    a.ready = 100;
    cr_assert_eq(decide(&a, 1, 1, T0), 10, "1 needed, /10 at most");
    a.ready = 10;
    cr_assert_eq(decide(&a, 1, 1, T0), 1);
    ty_kpa_state_free(&a.st);
}

Test(kpa, no_ready_pods_count_as_one)
{
    scaler a;
    scaler_init(&a, test_spec(10), 1, T0);
    a.ready = 0;
    cr_assert_eq(decide(&a, 1000, 888, T0), 10);
    ty_kpa_state_free(&a.st);
}

Test(kpa, starts_in_panic_with_replicas)
{
    /* a restarted autoscaler over 5 replicas keeps them until it has data */
    scaler a;
    scaler_init(&a, test_spec(10), 5, T0);
    cr_assert(a.st.panicking);
    cr_assert_eq(decide(&a, 0, 0, T0 + S(2)), 5);
    cr_assert_eq(decide(&a, 0, 0, T0 + S(61)), 0);
    ty_kpa_state_free(&a.st);
}

Test(kpa, scale_down_delay)
{
    scaler a;
    ty_kpa_spec sp = test_spec(10);
    sp.panic_threshold = 100;
    sp.scale_down_delay_ns = S(300);
    scaler_init(&a, sp, 0, 0);
    int64_t now = S(1000000); /* the Go test's zero time, moved to positive seconds */
    /* simple */
    cr_assert_eq(decide(&a, 40, 40, now + S(2)), 4);
    cr_assert_eq(decide(&a, 0, 0, now + S(300)), 4, "less than the delay at the lower value");
    cr_assert_eq(decide(&a, 0, 0, now + S(302)), 0);
    /* gradual */
    cr_assert_eq(decide(&a, 40, 40, now + S(540)), 4);
    cr_assert_eq(decide(&a, 30, 30, now + S(600)), 4, "4 still dominates");
    cr_assert_eq(decide(&a, 0, 0, now + S(660)), 4);
    cr_assert_eq(decide(&a, 0, 0, now + S(840)), 3, "4 scrolls out");
    cr_assert_eq(decide(&a, 0, 0, now + S(900)), 0, "everything scrolled out");
    ty_kpa_state_free(&a.st);
}

Test(kpa, scale_down_delay_not_for_unreachable)
{
    scaler a;
    ty_kpa_spec sp = test_spec(10);
    sp.panic_threshold = 100;
    sp.scale_down_delay_ns = S(300);
    scaler_init(&a, sp, 0, 0);
    int64_t now = S(1000000);
    cr_assert_eq(decide(&a, 40, 40, now + S(2)), 4);
    cr_assert_eq(decide(&a, 0, 0, now + S(60)), 4);
    a.spec.reachable = false; /* another revision took the traffic */
    cr_assert_eq(decide(&a, 0, 0, now + S(62)), 0);
    ty_kpa_state_free(&a.st);
}

Test(kpa, scale_down_delay_zero)
{
    scaler a;
    ty_kpa_spec sp = test_spec(10);
    sp.panic_threshold = 100;
    scaler_init(&a, sp, 0, 0);
    cr_assert_eq(decide(&a, 40, 40, T0), 4);
    cr_assert_eq(decide(&a, 20, 20, T0 + MS(500)), 2, "no delay: down at once");
    ty_kpa_state_free(&a.st);
}

/* ---- the scaler: bounds, initial scale, scale to zero --------------------------------------- */

Test(kpa, bounds_and_initial_scale)
{
    ty_kpa_spec sp = test_spec(10);
    sp.min_scale = 2;
    sp.max_scale = 5;
    sp.initial_scale = 4;
    ty_kpa_state st;
    ty_kpa_state_init(&st, &sp, 0, T0);
    cr_assert_eq(ty_kpa_scale(&st, &sp, 0, 0, T0), 4, "the initial scale until reached");
    cr_assert_eq(ty_kpa_scale(&st, &sp, 1, 3, T0 + S(1)), 4);
    cr_assert_eq(ty_kpa_scale(&st, &sp, 1, 4, T0 + S(2)), 2, "reached: min-scale from now on");
    cr_assert_eq(ty_kpa_scale(&st, &sp, 9, 4, T0 + S(3)), 5, "max-scale");
    ty_kpa_state_free(&st);
}

Test(kpa, scale_to_zero_after_stable_window_and_grace)
{
    ty_kpa_spec sp = test_spec(10);
    sp.initial_scale = 1;
    ty_kpa_state st;
    ty_kpa_state_init(&st, &sp, 0, T0);
    /* traffic for a while */
    cr_assert_eq(ty_kpa_scale(&st, &sp, 3, 1, T0 + S(1)), 3);
    cr_assert_eq(ty_kpa_scale(&st, &sp, 2, 3, T0 + S(100)), 2);
    /* the decider wants zero (a stable window without traffic): one replica stays for the
     * grace period, then none */
    int64_t idle = T0 + S(200);
    cr_assert_eq(ty_kpa_scale(&st, &sp, 0, 2, idle), 1);
    cr_assert_eq(ty_kpa_scale(&st, &sp, 0, 1, idle + S(29)), 1);
    cr_assert_eq(ty_kpa_scale(&st, &sp, 0, 1, idle + S(30)), 0);
    cr_assert_eq(ty_kpa_scale(&st, &sp, 0, 0, idle + S(31)), 0);
    /* a request: up again, and a fresh revision stays a stable window at least */
    int64_t back = idle + S(40);
    cr_assert_eq(ty_kpa_scale(&st, &sp, 1, 0, back), 1);
    cr_assert_eq(ty_kpa_scale(&st, &sp, 0, 1, back + S(5)), 1);
    cr_assert_eq(ty_kpa_scale(&st, &sp, 0, 1, back + S(60 + 29)), 1);
    cr_assert_eq(ty_kpa_scale(&st, &sp, 0, 1, back + S(60 + 30)), 0);
    ty_kpa_state_free(&st);
    /* min-scale 1, or scale to zero off: never zero */
    sp.min_scale = 1;
    ty_kpa_state_init(&st, &sp, 1, T0);
    cr_assert_eq(ty_kpa_scale(&st, &sp, 0, 1, T0 + S(1000)), 1);
    ty_kpa_state_free(&st);
    sp.min_scale = 0;
    sp.scale_to_zero = false;
    ty_kpa_state_init(&st, &sp, 1, T0);
    cr_assert_eq(ty_kpa_scale(&st, &sp, 0, 1, T0 + S(1000)), 1);
    ty_kpa_state_free(&st);
}

/* A step from 0 to 200 concurrent requests at 70 per replica, through the windows as the
 * serving controller will feed them: the panic window sees it first, and the count the
 * formula gives (ceil(200 / 70) = 3) is reached within it; no scale-down while panicking;
 * back to zero a stable window after the traffic stops, plus the grace period. */
Test(kpa, step_load_through_the_windows)
{
    ty_kpa_config cfg;
    ty_kpa_config_default(&cfg);
    ty_kpa_spec sp;
    ty_error err = TY_ERROR_INIT;
    cr_assert_eq(ty_kpa_spec_from_annotations(&cfg, 0, NULL, &sp, &err), 0, "%s", err.msg);
    ty_kpa a;
    ty_kpa_init(&a, &sp, 1, T0);
    int32_t ready = 1, want = 1;
    ty_kpa_decision d;
    int64_t t;
    for (t = T0; t < T0 + S(6); t += S(1)) {
        ty_kpa_record(&a, t, 200);
        want = ready = ty_kpa_step(&a, ready, t, &d);
    }
    cr_assert_eq(want, 3, "ceil(200 / 70) within the panic window");
    cr_assert(d.panicking);
    /* traffic stops: no scale-down while the panic lasts */
    int64_t stop = t;
    int32_t lowest_in_panic = want;
    for (; want != 0 && t < stop + S(600); t += S(1)) {
        ty_kpa_record(&a, t, 0);
        want = ready = ty_kpa_step(&a, ready, t, &d);
        if (d.panicking && want < lowest_in_panic)
            lowest_in_panic = want;
    }
    cr_assert_eq(lowest_in_panic, 3);
    cr_assert_eq(want, 0);
    /* the stable window must have emptied (60 s) and then 30 s of grace */
    cr_assert_geq(t - stop, S(60 + 30));
    cr_assert_leq(t - stop, S(60 + 30 + 3));
    ty_kpa_free(&a);
}

/* The same step with weighted exponential averaging: it reacts as fast, and decays. */
Test(kpa, step_load_weighted)
{
    ty_kpa_config cfg;
    ty_kpa_config_default(&cfg);
    ty_kpa_spec sp;
    json_error_t je;
    json_t *anns = json_loads("{\"autoscaling.knative.dev/metric-aggregation-algorithm\":"
                              "\"weightedExponential\"}", 0, &je);
    cr_assert_eq(ty_kpa_spec_from_annotations(&cfg, 0, anns, &sp, NULL), 0);
    json_decref(anns);
    ty_kpa a;
    ty_kpa_init(&a, &sp, 1, T0);
    int32_t ready = 1;
    for (int64_t t = T0; t < T0 + S(6); t += S(1)) {
        ty_kpa_record(&a, t, 200);
        ready = ty_kpa_step(&a, ready, t, NULL);
    }
    cr_assert_geq(ready, 3);
    ty_kpa_free(&a);
}

/* ---- windowed averages -------------------------------------------------------------------- */

Test(kpa, window_average_linear)
{
    int64_t now = T0 + MS(300); /* not on a second: samples go to their second's bucket */
    ty_kpa_buckets b;
    ty_kpa_buckets_init(&b, S(5), false);
    cr_assert(ty_kpa_buckets_empty(&b, now));
    ty_kpa_buckets_record(&b, now, 1);
    cr_assert_float_eq(ty_kpa_buckets_average(&b, now), 1.0, 1e-9, "only written seconds count");
    for (int i = 1; i < 5; i++)
        ty_kpa_buckets_record(&b, now + S(i), i + 1);
    cr_assert_float_eq(ty_kpa_buckets_average(&b, now + S(4)), 15.0 / 5, 1e-9);
    cr_assert_float_eq(ty_kpa_buckets_average(&b, now + MS(3600)), 15.0 / 5, 1e-9, "lagging");
    cr_assert_float_eq(ty_kpa_buckets_average(&b, now + S(6)), (15.0 - 1 - 2) / 3, 1e-9,
                       "a short hole");
    cr_assert_float_eq(ty_kpa_buckets_average(&b, now + S(10)), 0, 1e-9, "a long hole");
    ty_kpa_buckets_record(&b, now + S(6), 91);
    cr_assert_float_eq(ty_kpa_buckets_average(&b, now + S(6)), (15.0 - 1 - 2 + 91) / 5, 1e-9);
    now += S(60);
    ty_kpa_buckets_record(&b, now, 1984);
    cr_assert_float_eq(ty_kpa_buckets_average(&b, now), 1984, 1e-9, "a new start");
    ty_kpa_buckets_record(&b, now - S(3), 4);
    cr_assert_float_eq(ty_kpa_buckets_average(&b, now), (4.0 + 1984) / 4, 1e-9, "earlier");
    now += S(1);
    ty_kpa_buckets_record(&b, now, 5);
    cr_assert_float_eq(ty_kpa_buckets_average(&b, now), (4.0 + 1984 + 5) / 5, 1e-9);
    ty_kpa_buckets_record(&b, now - S(3), 10);
    cr_assert_float_eq(ty_kpa_buckets_average(&b, now), (4.0 + 10 + 1984 + 5) / 5, 1e-9);
    ty_kpa_buckets_record(&b, now - S(6), 10); /* too early: ignored */
    ty_kpa_buckets_record(&b, now - S(5), 10); /* on the bound: ignored */
    cr_assert_float_eq(ty_kpa_buckets_average(&b, now), (4.0 + 10 + 1984 + 5) / 5, 1e-9);
    ty_kpa_buckets_record(&b, now + S(5), 10); /* exactly a window later: starts anew */
    cr_assert_float_eq(ty_kpa_buckets_average(&b, now + S(5)), 10, 1e-9);
    ty_kpa_buckets_free(&b);
}

Test(kpa, window_average_weighted)
{
    int64_t now = T0 + MS(700);
    ty_kpa_buckets b;
    ty_kpa_buckets_init(&b, S(5), true);
    double m = b.smoothing;
    cr_assert_float_eq(m, 1 - pow(1e-4, 1.0 / 5), 1e-12);
    ty_kpa_buckets_record(&b, now, 2);
    double want = 2 * m;
    cr_assert_float_eq(ty_kpa_buckets_average(&b, now), want, 1e-12);
    want *= 1 - m;
    cr_assert_float_eq(ty_kpa_buckets_average(&b, now + S(1)), want, 1e-12, "decays unwritten");
    ty_kpa_buckets_record(&b, now + S(1), 2);
    want += 2 * m;
    cr_assert_float_eq(ty_kpa_buckets_average(&b, now + S(1)), want, 1e-12);
    for (int i = 0; i < 5; i++)
        ty_kpa_buckets_record(&b, now + S(2 + i), i + 2);
    want = 6 * m + 5 * m * (1 - m) + 4 * m * pow(1 - m, 2) + 3 * m * pow(1 - m, 3) +
           2 * m * pow(1 - m, 4);
    cr_assert_float_eq(ty_kpa_buckets_average(&b, now + S(6)), want, 1e-9);
    cr_assert_float_eq(ty_kpa_buckets_average(&b, now + S(16)), 0, 1e-12);
    ty_kpa_buckets_free(&b);
    /* the decay multiplier: never below 0.2 (60 buckets), 0.78456 for 6 */
    ty_kpa_buckets_init(&b, S(60), true);
    cr_assert_float_eq(b.smoothing, 0.2, 1e-12);
    ty_kpa_buckets_free(&b);
    ty_kpa_buckets_init(&b, S(40), true);
    cr_assert_float_eq(b.smoothing, 0.20567, 1e-5);
    ty_kpa_buckets_free(&b);
    ty_kpa_buckets_init(&b, S(6), true);
    cr_assert_float_eq(b.smoothing, 0.78456, 1e-5);
    ty_kpa_buckets_free(&b);
}

/* ---- annotations -------------------------------------------------------------------------- */

static int spec_of(const char *anns, int64_t cc, ty_kpa_spec *sp, ty_error *err)
{
    ty_kpa_config cfg;
    ty_kpa_config_default(&cfg);
    json_error_t je;
    json_t *a = anns ? json_loads(anns, 0, &je) : NULL;
    int rc = ty_kpa_spec_from_annotations(&cfg, cc, a, sp, err);
    json_decref(a);
    return rc;
}

Test(kpa, defaults_and_targets)
{
    ty_kpa_spec sp;
    ty_error err = TY_ERROR_INIT;
    cr_assert_eq(spec_of(NULL, 0, &sp, &err), 0);
    cr_assert_float_eq(sp.target, 70, 1e-9, "100 x 0.7");
    cr_assert_float_eq(sp.panic_threshold, 2, 1e-9);
    cr_assert_eq(sp.stable_window_ns, S(60));
    cr_assert_eq(sp.panic_window_ns, S(6));
    cr_assert_float_eq(sp.max_scale_up_rate, 1000, 1e-9);
    cr_assert_float_eq(sp.max_scale_down_rate, 2, 1e-9);
    cr_assert_eq(sp.initial_scale, 1);
    cr_assert_eq(sp.scale_to_zero_grace_ns, S(30));
    cr_assert_eq(spec_of(NULL, 10, &sp, &err), 0);
    cr_assert_float_eq(sp.target, 7, 1e-9, "containerConcurrency 10 x 0.7");
    /* the target annotation, capped by containerConcurrency */
    cr_assert_eq(spec_of("{\"autoscaling.knative.dev/target\":\"50\"}", 10, &sp, &err), 0);
    cr_assert_float_eq(sp.target, 7, 1e-9);
    cr_assert_eq(spec_of("{\"autoscaling.knative.dev/target\":\"5\","
                         "\"autoscaling.knative.dev/target-utilization-percentage\":\"100\"}",
                         10, &sp, &err),
                 0);
    cr_assert_float_eq(sp.target, 5, 1e-9);
    cr_assert_eq(spec_of("{\"autoscaling.knative.dev/metric\":\"rps\"}", 0, &sp, &err), 0);
    cr_assert_eq(sp.metric, TY_KPA_RPS);
    cr_assert_float_eq(sp.target, 140, 1e-9, "200 rps x 0.7");
    cr_assert_eq(spec_of("{\"autoscaling.knative.dev/window\":\"2m\","
                         "\"autoscaling.knative.dev/panic-window-percentage\":\"20\","
                         "\"autoscaling.knative.dev/panic-threshold-percentage\":\"150\","
                         "\"autoscaling.knative.dev/scale-down-delay\":\"1m30s\","
                         "\"autoscaling.knative.dev/min-scale\":\"1\","
                         "\"autoscaling.knative.dev/maxScale\":\"3\","
                         "\"autoscaling.knative.dev/initial-scale\":\"2\","
                         "\"autoscaling.knative.dev/activation-scale\":\"2\","
                         "\"autoscaling.knative.dev/metric-aggregation-algorithm\":"
                         "\"weightedExponential\"}",
                         0, &sp, &err),
                 0, "%s", err.msg);
    cr_assert_eq(sp.stable_window_ns, S(120));
    cr_assert_eq(sp.panic_window_ns, S(24));
    cr_assert_float_eq(sp.panic_threshold, 1.5, 1e-9);
    cr_assert_eq(sp.scale_down_delay_ns, S(90));
    cr_assert_eq(sp.min_scale, 1);
    cr_assert_eq(sp.max_scale, 3);
    cr_assert_eq(sp.initial_scale, 2);
    cr_assert_eq(sp.activation_scale, 2);
    cr_assert(sp.weighted);
}

/* annotation_validation_test.go's cases with their messages */
Test(kpa, annotation_validation)
{
#define K "autoscaling.knative.dev/"
    static const struct {
        const char *anns, *err;
    } cases[] = {
        {"{\"" K "class\":\"unsupported.knative.dev\"}",
         "invalid value: unsupported.knative.dev: " K "class"},
        {"{\"" K "min-scale\":\"-1\"}", "expected 0 <= -1 <= 2147483647: " K "min-scale"},
        {"{\"" K "max-scale\":\"2147483648\"}",
         "expected 0 <= 2147483648 <= 2147483647: " K "max-scale"},
        {"{\"" K "min-scale\":\"foo\"}", "invalid value: foo: " K "min-scale"},
        {"{\"" K "min-scale\":\"5\",\"" K "max-scale\":\"2\"}",
         "max-scale=2 is less than min-scale=5: " K "max-scale, " K "min-scale"},
        {"{\"" K "min-scale\":\"3\",\"" K "activation-scale\":\"2\"}",
         "min-scale=3 is greater than activation-scale=2: " K "activation-scale"},
        {"{\"" K "max-scale\":\"1\",\"" K "activation-scale\":\"2\"}",
         "max-scale=1 is less than activation-scale=2: " K "activation-scale"},
        {"{\"" K "activation-scale\":\"1\"}",
         "activation-scale=1 must be greater than 1: " K "activation-scale"},
        {"{\"" K "class\":\"kpa.autoscaling.knative.dev\",\"" K
         "metric-aggregation-algorithm\":\"random-selection\"}",
         "invalid value: random-selection: " K "metric-aggregation-algorithm"},
        {"{\"" K "panic-window-percentage\":\"-1\"}",
         "expected 1 <= -1 <= 100: " K "panic-window-percentage"},
        {"{\"" K "panic-window-percentage\":\"202\"}",
         "expected 1 <= 202 <= 100: " K "panic-window-percentage"},
        {"{\"" K "panic-window-percentage\":\"fifty\"}",
         "invalid value: fifty: " K "panic-window-percentage"},
        {"{\"" K "panic-threshold-percentage\":\"109\"}",
         "expected 110 <= 109 <= 1000: " K "panic-threshold-percentage"},
        {"{\"" K "panic-threshold-percentage\":\"10009\"}",
         "expected 110 <= 10009 <= 1000: " K "panic-threshold-percentage"},
        {"{\"" K "target\":\"-11\"}", "target -11 should be at least 0.01: " K "target"},
        {"{\"" K "target\":\"0\"}", "target 0 should be at least 0.01: " K "target"},
        {"{\"" K "target\":\"100}\"}", "invalid value: 100}: " K "target"},
        {"{\"" K "target-burst-capacity\":\"-11\"}",
         "invalid value: -11: " K "target-burst-capacity"},
        {"{\"" K "target-utilization-percentage\":\"0\"}",
         "expected 1 <= 0 <= 100: " K "target-utilization-percentage"},
        {"{\"" K "target-utilization-percentage\":\"101\"}",
         "expected 1 <= 101 <= 100: " K "target-utilization-percentage"},
        {"{\"" K "window\":\"jerry-was-a-racecar-driver\"}",
         "invalid value: jerry-was-a-racecar-driver: " K "window"},
        {"{\"" K "window\":\"1s\"}", "expected 6s <= 1s <= 1h0m0s: " K "window"},
        {"{\"" K "window\":\"365h\"}", "expected 6s <= 365h <= 1h0m0s: " K "window"},
        {"{\"" K "window\":\"1m9s82ms\"}",
         "must be specified with at most second precision: " K "window"},
        {"{\"" K "scale-to-zero-pod-retention-period\":\"311m\"}",
         "expected 0s <= 311m <= 1h0m0s: " K "scale-to-zero-pod-retention-period"},
        {"{\"" K "scale-to-zero-pod-retention-period\":\"-42s\"}",
         "expected 0s <= -42s <= 1h0m0s: " K "scale-to-zero-pod-retention-period"},
        {"{\"" K "scale-down-delay\":\"311m\"}",
         "expected 0s <= 311m <= 1h0m0s: " K "scale-down-delay"},
        {"{\"" K "metric\":\"cpu\"}", "invalid value: cpu: " K "metric"},
        {"{\"" K "initial-scale\":\"-1\"}",
         "invalid value: -1: " K "initial-scale must be greater than 0"},
        {"{\"" K "initial-scale\":\"0\"}",
         "invalid value: 0: " K "initial-scale=0 not allowed by cluster"},
        /* every problem, one a line */
        {"{\"" K "min-scale\":\"x\",\"" K "window\":\"1s\"}",
         "invalid value: x: " K "min-scale\nexpected 6s <= 1s <= 1h0m0s: " K "window"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        ty_kpa_spec sp = {.target = -1};
        ty_error err = TY_ERROR_INIT;
        cr_assert_eq(spec_of(cases[i].anns, 0, &sp, &err), -1, "%s", cases[i].anns);
        cr_assert_str_eq(err.msg, cases[i].err);
        cr_assert_float_eq(sp.target, -1, 1e-9, "nothing set on failure");
        ty_error_clear(&err);
    }
    /* accepted: other domains' classes, zero scales, the HPA's metrics, 7 s windows */
    static const char *const ok[] = {
        "{\"" K "class\":\"some.other.domain\"}",
        "{\"" K "min-scale\":\"0\",\"" K "max-scale\":\"0\"}",
        "{\"" K "min-scale\":\"1\",\"" K "activation-scale\":\"2\",\"" K "max-scale\":\"3\"}",
        "{\"" K "class\":\"hpa.autoscaling.knative.dev\",\"" K "metric\":\"cpu\"}",
        "{\"" K "window\":\"7s\",\"" K "class\":\"kpa.autoscaling.knative.dev\"}",
        "{\"" K "metric-aggregation-algorithm\":\"random-selection\"}",
        "{\"" K "target-burst-capacity\":\"-1\"}",
        "{\"" K "scale-to-zero-pod-retention-period\":\"21m31s\"}",
        "{\"other.io/x\":\"whatever\"}",
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        ty_kpa_spec sp;
        ty_error err = TY_ERROR_INIT;
        cr_assert_eq(spec_of(ok[i], 0, &sp, &err), 0, "%s: %s", ok[i], err.msg);
    }
#undef K
}

Test(kpa, go_durations)
{
    int64_t ns;
    cr_assert_eq(ty_kpa_parse_duration("60s", &ns), 0);
    cr_assert_eq(ns, S(60));
    cr_assert_eq(ty_kpa_parse_duration("1m30s", &ns), 0);
    cr_assert_eq(ns, S(90));
    cr_assert_eq(ty_kpa_parse_duration("1.5h", &ns), 0);
    cr_assert_eq(ns, S(5400));
    cr_assert_eq(ty_kpa_parse_duration("500ms", &ns), 0);
    cr_assert_eq(ns, MS(500));
    cr_assert_eq(ty_kpa_parse_duration("0", &ns), 0);
    cr_assert_eq(ns, 0);
    cr_assert_eq(ty_kpa_parse_duration("-42s", &ns), 0);
    cr_assert_eq(ns, -S(42));
    cr_assert_eq(ty_kpa_parse_duration("10", &ns), -1, "a number needs a unit");
    cr_assert_eq(ty_kpa_parse_duration("", &ns), -1);
    cr_assert_eq(ty_kpa_parse_duration("5 s", &ns), -1);
}
