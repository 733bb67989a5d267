/* src/hpo/suggest: every algorithm's settings, determinism by seed, bounds, grids, the
 * constant liar, hyperband's brackets, and TPE against random. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "base/mem.h"
#include "hpo_fixtures.h"

#define MIXED_SPACE                                                                               \
    "[{\"name\":\"lr\",\"parameterType\":\"double\",\"feasibleSpace\":{\"min\":\"0.0001\","      \
    "\"max\":\"1\",\"distribution\":\"logUniform\"}},"                                            \
    "{\"name\":\"x\",\"parameterType\":\"double\",\"feasibleSpace\":{\"min\":\"-5\",\"max\":\"5\"}}," \
    "{\"name\":\"h\",\"parameterType\":\"int\",\"feasibleSpace\":{\"min\":\"16\",\"max\":\"256\","  \
    "\"step\":\"16\"}},"                                                                          \
    "{\"name\":\"q\",\"parameterType\":\"double\",\"feasibleSpace\":{\"min\":\"0\",\"max\":\"1\","  \
    "\"step\":\"0.25\"}},"                                                                        \
    "{\"name\":\"opt\",\"parameterType\":\"categorical\",\"feasibleSpace\":{\"list\":[\"sgd\","   \
    "\"adam\",\"rms\"]}},"                                                                        \
    "{\"name\":\"b\",\"parameterType\":\"discrete\",\"feasibleSpace\":{\"list\":[\"32\",\"64\"]}}]"

/* A smooth objective over the mixed space (minimise). */
static double mixed_f(const double *x) {
    double l = log10(x[0]) + 2;
    return l * l + (x[1] - 1) * (x[1] - 1) + fabs(x[2] - 128) / 64 + (x[3] - 0.5) * (x[3] - 0.5) +
           (x[4] == 1 ? 0 : 1) + x[5] * 0.5;
}

/* Runs `trials` sequential trials; the points go to out (trials x 6). */
static void run(const char *algo, const char *seed, size_t trials, double *out) {
    ty_hpo_space *sp = space_from(MIXED_SPACE);
    ty_hpo_setting st[] = {{"random_state", seed}};
    ty_hpo_suggester *s = suggester_of(sp, algo, st, 1);
    ty_error err = TY_ERROR_INIT;
    for (size_t t = 0; t < trials; t++) {
        size_t id;
        cr_assert_eq(ty_hpo_suggest(s, 1, &id, &err), 1, "%s trial %zu: %s", algo, t, err.msg);
        const double *x = ty_hpo_trial_point(s, id);
        for (size_t d = 0; d < sp->n; d++)
            cr_assert(ty_hpo_param_contains(&sp->params[d], x[d]), "%s trial %zu: %s = %g", algo,
                      t, sp->params[d].name, x[d]);
        memcpy(&out[t * 6], x, 6 * sizeof(double));
        cr_assert_eq(ty_hpo_report(s, id, TY_HPO_COMPLETED, mixed_f(x), &err), 0);
    }
    ty_hpo_suggester_free(s);
    ty_hpo_space_free(sp);
}

static const char *const learning[] = {"random", "sobol", "tpe", "multivariate-tpe",
                                       "bayesianoptimization", "grid"};

Test(hpo_suggest, same_seed_same_points_and_bounds_held) {
    enum { N = 30 };
    double a[N * 6], b[N * 6], c[N * 6];
    for (size_t k = 0; k < TY_ARRAY_LEN(learning); k++) {
        if (strcmp(learning[k], "grid") == 0) continue; /* lr has no step */
        run(learning[k], "7", N, a);
        run(learning[k], "7", N, b);
        cr_assert_arr_eq(a, b, sizeof a, "%s: same seed, other points", learning[k]);
        if (strcmp(learning[k], "sobol") == 0) continue; /* the sequence is fixed */
        run(learning[k], "8", N, c);
        cr_assert(memcmp(a, c, sizeof a) != 0, "%s: seeds 7 and 8 gave the same points",
                  learning[k]);
    }
}

Test(hpo_suggest, cmaes_same_seed_same_points) {
    enum { N = 40 };
    double a[N * 6], b[N * 6];
    run("cmaes", "3", N, a);
    run("cmaes", "3", N, b);
    cr_assert_arr_eq(a, b, sizeof a);
}

Test(hpo_suggest, log_uniform_is_uniform_in_log) {
    ty_hpo_space *sp = space_from(
        "[{\"name\":\"lr\",\"parameterType\":\"double\",\"feasibleSpace\":{\"min\":\"0.0001\","
        "\"max\":\"1\",\"distribution\":\"logUniform\"}}]");
    ty_hpo_setting st[] = {{"random_state", "1"}};
    ty_hpo_suggester *s = suggester_of(sp, "random", st, 1);
    size_t ids[2000], below = 0;
    cr_assert_eq(ty_hpo_suggest(s, 2000, ids, NULL), 2000);
    for (size_t i = 0; i < 2000; i++) below += ty_hpo_trial_point(s, ids[i])[0] < 0.01;
    /* 0.01 is the median in log: uniform in value would put 1 % below it */
    cr_assert(below > 900 && below < 1100, "%zu of 2000 below 0.01", below);
    ty_hpo_suggester_free(s);
    ty_hpo_space_free(sp);
}

Test(hpo_suggest, grid_enumerates_every_combination_once) {
    ty_hpo_space *sp = space_from(
        "[{\"name\":\"i\",\"parameterType\":\"int\",\"feasibleSpace\":{\"min\":\"1\",\"max\":\"3\"}},"
        "{\"name\":\"d\",\"parameterType\":\"double\",\"feasibleSpace\":{\"min\":\"0\",\"max\":\"0.2\","
        "\"step\":\"0.1\"}},"
        "{\"name\":\"c\",\"parameterType\":\"categorical\",\"feasibleSpace\":{\"list\":[\"a\",\"b\"]}}]");
    ty_hpo_setting st[] = {{"random_state", "5"}};
    ty_hpo_suggester *s = suggester_of(sp, "grid", st, 1);
    size_t ids[40];
    int n = ty_hpo_suggest(s, 10, ids, NULL);
    cr_assert_eq(n, 10);
    /* one fails: its point comes back */
    cr_assert_eq(ty_hpo_report(s, ids[0], TY_HPO_FAILED, NAN, NULL), 0);
    int m = ty_hpo_suggest(s, 30, ids + 10, NULL);
    cr_assert_eq(m, 9, "18 combinations, 10 taken, 1 given back: %d", m);
    cr_assert_eq(ty_hpo_suggest(s, 5, ids, NULL), 0);
    bool seen[3][3][2] = {{{0}}};
    for (size_t t = 0; t < ty_hpo_trial_count(s); t++) {
        if (t == 0) continue; /* the failed one */
        const double *x = ty_hpo_trial_point(s, t);
        int i = (int)x[0] - 1, d = (int)lround(x[1] * 10), c = (int)x[2];
        cr_assert(!seen[i][d][c], "combination %d %d %d twice", i, d, c);
        seen[i][d][c] = true;
    }
    for (int i = 0; i < 3; i++)
        for (int d = 0; d < 3; d++)
            for (int c = 0; c < 2; c++) cr_assert(seen[i][d][c]);
    ty_hpo_suggester_free(s);

    ty_hpo_options opt = {.max_trial_count = 19};
    ty_error err = TY_ERROR_INIT;
    cr_assert_eq(ty_hpo_suggester_new(sp, "grid", NULL, 0, &opt, &s, &err), -1);
    cr_assert_str_eq(err.msg, "Max Trial Count: 19 > all possible search combinations: 18");
    ty_error_clear(&err);
    ty_hpo_space_free(sp);

    sp = space_from("[{\"name\":\"d\",\"parameterType\":\"double\",\"feasibleSpace\":"
                    "{\"min\":\"0\",\"max\":\"1\"}}]");
    cr_assert_eq(ty_hpo_suggester_new(sp, "grid", NULL, 0, NULL, &s, &err), -1);
    cr_assert_str_eq(err.msg, "Param d step is nil; For discrete search space, all parameters "
                              "must include step");
    ty_error_clear(&err);
    ty_hpo_space_free(sp);
}

Test(hpo_suggest, sobol_is_the_sobol_sequence) {
    ty_hpo_space *sp = space_from(
        "[{\"name\":\"a\",\"parameterType\":\"double\",\"feasibleSpace\":{\"min\":\"0\",\"max\":\"1\"}},"
        "{\"name\":\"b\",\"parameterType\":\"double\",\"feasibleSpace\":{\"min\":\"0\",\"max\":\"1\"}}]");
    ty_hpo_suggester *s = suggester_of(sp, "sobol", NULL, 0);
    size_t ids[4];
    cr_assert_eq(ty_hpo_suggest(s, 4, ids, NULL), 4);
    const double want[4][2] = {{0.5, 0.5}, {0.75, 0.25}, {0.25, 0.75}, {0.375, 0.375}};
    for (int k = 0; k < 4; k++)
        for (int d = 0; d < 2; d++)
            cr_assert_float_eq(ty_hpo_trial_point(s, ids[k])[d], want[k][d], 1e-12, "point %d", k);
    ty_hpo_suggester_free(s);
    ty_hpo_space_free(sp);
}

/* Settings: Katib's names, defaults and messages. */
static void expect_settings_error(const char *algo, const char *name, const char *value,
                                  const char *want) {
    ty_hpo_space *sp = space_from(MIXED_SPACE);
    ty_hpo_setting st[] = {{name, value}};
    ty_hpo_suggester *s = NULL;
    ty_error err = TY_ERROR_INIT;
    cr_assert_eq(ty_hpo_suggester_new(sp, algo, st, name ? 1 : 0, NULL, &s, &err), -1,
                 "%s accepted %s=%s", algo, name, value);
    cr_assert_null(s);
    cr_assert(strstr(err.msg, want), "%s: \"%s\" lacks \"%s\"", algo, err.msg, want);
    ty_error_clear(&err);
    ty_hpo_space_free(sp);
}

Test(hpo_suggest, settings_validated_as_katib) {
    expect_settings_error("tpe", "gamma", "0.1", "unknown setting gamma for algorithm tpe");
    expect_settings_error("multivariate-tpe", "n_startup_trials", "-1",
                          "n_startup_trials should be greater or equal than 0");
    expect_settings_error("tpe", "n_ei_candidates", "x", "failed to validate n_ei_candidates(x)");
    expect_settings_error("random", "random_state", "-3", "random_state should be greater");
    expect_settings_error("random", "seed", "1", "unknown setting seed for algorithm random");
    expect_settings_error("cmaes", "restart_strategy", "bipop",
                          "restart_strategy bipop is not supported in CMAES optimization");
    expect_settings_error("cmaes", "sigma", "-1", "sigma should be greater or equal than 0");
    expect_settings_error("bayesianoptimization", "base_estimator", "XX",
                          "base_estimator XX is not supported in Bayesian optimization");
    expect_settings_error("bayesianoptimization", "acq_func", "UCB",
                          "acq_func UCB is not supported in Bayesian optimization");
    expect_settings_error("bayesianoptimization", "acq_optimizer", "adam",
                          "acq_optimizer adam is not supported");
    expect_settings_error("hyperband", NULL, NULL, "r_l and resource_name must be set.");
    expect_settings_error("hyperband", "r_l", "-2", "r_l and resource_name must be set.");
    expect_settings_error("sobol", "scramble", "true", "unknown setting scramble for algorithm sobol");
    expect_settings_error("anneal", NULL, NULL, "unknown algorithm name anneal");

    ty_hpo_space *one = space_from(
        "[{\"name\":\"x\",\"parameterType\":\"double\",\"feasibleSpace\":{\"min\":\"0\",\"max\":\"1\"}},"
        "{\"name\":\"c\",\"parameterType\":\"categorical\",\"feasibleSpace\":{\"list\":[\"a\"]}}]");
    ty_hpo_suggester *s = NULL;
    ty_error err = TY_ERROR_INIT;
    cr_assert_eq(ty_hpo_suggester_new(one, "cmaes", NULL, 0, NULL, &s, &err), -1);
    cr_assert_str_eq(err.msg, "cmaes only supports two or more dimensional continuous search space.");
    ty_error_clear(&err);
    ty_hpo_space_free(one);

    ty_hpo_space *sp = space_from(MIXED_SPACE);
    ty_hpo_setting hb[] = {{"r_l", "9"}, {"resource_name", "h"}, {"eta", "3"}};
    ty_hpo_options opt = {.parallel_trial_count = 4};
    cr_assert_eq(ty_hpo_suggester_new(sp, "hyperband", hb, 3, &opt, &s, &err), -1);
    cr_assert_str_eq(err.msg, "parallelTrialCount must be not less than 9.");
    ty_error_clear(&err);
    hb[1].value = "epochs";
    cr_assert_eq(ty_hpo_suggester_new(sp, "hyperband", hb, 3, NULL, &s, &err), -1);
    cr_assert_str_eq(err.msg, "value of resource_name setting must be in parameters.");
    ty_error_clear(&err);
    /* Katib's own names and defaults are all accepted */
    ty_hpo_setting bo[] = {{"base_estimator", "GP"}, {"n_initial_points", "5"},
                           {"acq_func", "EI"}, {"acq_optimizer", "lbfgs"}, {"random_state", "1"}};
    s = suggester_of(sp, "bayesianoptimization", bo, 5);
    ty_hpo_suggester_free(s);
    ty_hpo_setting cm[] = {{"restart_strategy", "ipop"}, {"sigma", "0.5"}, {"random_state", "1"}};
    s = suggester_of(sp, "cmaes", cm, 3);
    ty_hpo_suggester_free(s);
    ty_hpo_setting tp[] = {{"n_startup_trials", "5"}, {"n_ei_candidates", "10"}, {"random_state", "1"}};
    s = suggester_of(sp, "tpe", tp, 3);
    ty_hpo_suggester_free(s);
    ty_hpo_space_free(sp);
}

Test(hpo_suggest, history_outside_the_space_is_refused) {
    ty_hpo_space *sp = space_from(MIXED_SPACE);
    ty_hpo_suggester *s = suggester_of(sp, "tpe", NULL, 0);
    double x[6] = {0.01, 9, 32, 0.5, 0, 0};
    ty_error err = TY_ERROR_INIT;
    cr_assert_eq(ty_hpo_add_trial(s, x, TY_HPO_COMPLETED, 1, &err), -1);
    cr_assert(strstr(err.msg, "parameter x: value 9 is outside its feasible space"), "%s", err.msg);
    ty_error_clear(&err);
    x[1] = 1;
    cr_assert_eq(ty_hpo_add_trial(s, x, TY_HPO_COMPLETED, NAN, &err), -1);
    ty_error_clear(&err);
    cr_assert_eq(ty_hpo_add_trial(s, x, TY_HPO_COMPLETED, 1, &err), 0);
    cr_assert_eq(ty_hpo_report(s, 5, TY_HPO_COMPLETED, 1, &err), -1);
    ty_error_clear(&err);
    /* a trial reported again (its value corrected), one that failed after all: TPE's sorted
     * state follows, and suggestions stay in the space */
    for (int i = 0; i < 15; i++) {
        size_t id;
        cr_assert_eq(ty_hpo_suggest(s, 1, &id, &err), 1);
        ty_hpo_report(s, id, TY_HPO_COMPLETED, i, &err);
    }
    cr_assert_eq(ty_hpo_report(s, 3, TY_HPO_COMPLETED, -100, &err), 0);
    cr_assert_eq(ty_hpo_report(s, 4, TY_HPO_FAILED, NAN, &err), 0);
    size_t ids[4];
    cr_assert_eq(ty_hpo_suggest(s, 4, ids, &err), 4);
    for (int k = 0; k < 4; k++)
        for (size_t d = 0; d < sp->n; d++)
            cr_assert(ty_hpo_param_contains(&sp->params[d], ty_hpo_trial_point(s, ids[k])[d]));
    ty_hpo_suggester_free(s);
    ty_hpo_space_free(sp);
}

/* A batch of suggestions while others run must not collapse onto one point. */
static void check_batch_spread(const char *algo) {
    ty_hpo_space *sp = space_from(
        "[{\"name\":\"a\",\"parameterType\":\"double\",\"feasibleSpace\":{\"min\":\"-2\",\"max\":\"2\"}},"
        "{\"name\":\"b\",\"parameterType\":\"double\",\"feasibleSpace\":{\"min\":\"-2\",\"max\":\"2\"}}]");
    ty_hpo_setting st[] = {{"random_state", "11"}};
    ty_hpo_suggester *s = suggester_of(sp, algo, st, 1);
    for (int t = 0; t < 20; t++) {
        size_t id;
        cr_assert_eq(ty_hpo_suggest(s, 1, &id, NULL), 1);
        const double *x = ty_hpo_trial_point(s, id);
        ty_hpo_report(s, id, TY_HPO_COMPLETED, x[0] * x[0] + x[1] * x[1], NULL);
    }
    size_t ids[6];
    cr_assert_eq(ty_hpo_suggest(s, 6, ids, NULL), 6);
    for (int i = 0; i < 6; i++)
        for (int j = i + 1; j < 6; j++) {
            const double *p = ty_hpo_trial_point(s, ids[i]), *q = ty_hpo_trial_point(s, ids[j]);
            double dist = hypot(p[0] - q[0], p[1] - q[1]);
            cr_assert(dist > 1e-3, "%s: suggestions %d and %d of a batch %g apart", algo, i, j, dist);
        }
    ty_hpo_suggester_free(s);
    ty_hpo_space_free(sp);
}

Test(hpo_suggest, constant_liar_spreads_a_batch) {
    check_batch_spread("tpe");
    check_batch_spread("multivariate-tpe");
    check_batch_spread("bayesianoptimization");
    check_batch_spread("cmaes");
}

Test(hpo_suggest, hyperband_brackets) {
    ty_hpo_space *sp = space_from(
        "[{\"name\":\"lr\",\"parameterType\":\"double\",\"feasibleSpace\":{\"min\":\"0\",\"max\":\"1\"}},"
        "{\"name\":\"epochs\",\"parameterType\":\"int\",\"feasibleSpace\":{\"min\":\"1\",\"max\":\"9\"}}]");
    ty_hpo_setting st[] = {{"r_l", "9"}, {"resource_name", "epochs"}, {"eta", "3"},
                           {"random_state", "2"}};
    ty_hpo_suggester *s = suggester_of(sp, "hyperband", st, 4);
    /* s_max = 2: bracket 2 is 9 x 1 epoch, 3 x 3, 1 x 9; bracket 1 is 5 x 3, 2 x 9; bracket 0 is
     * 3 x 9 */
    const size_t rung_n[] = {9, 3, 1, 5, 2, 3};
    const double rung_r[] = {1, 3, 9, 3, 9, 9};
    for (size_t r = 0; r < 6; r++) {
        size_t ids[20];
        int n = ty_hpo_suggest(s, 20, ids, NULL);
        cr_assert_eq((size_t)n, rung_n[r], "rung %zu: %d trials", r, n);
        cr_assert_eq(ty_hpo_suggest(s, 1, ids + n, NULL), 0, "rung %zu does not wait", r);
        for (int k = 0; k < n; k++) {
            const double *x = ty_hpo_trial_point(s, ids[k]);
            cr_assert_eq(x[1], rung_r[r], "rung %zu: epochs %g", r, x[1]);
            ty_hpo_report(s, ids[k], TY_HPO_COMPLETED, x[0], NULL); /* lower lr is better */
        }
        if (r == 1 || r == 2) {
            /* the survivors are the best of the rung before: lowest lr */
            size_t total = ty_hpo_trial_count(s);
            double worst_kept = 0;
            for (int k = 0; k < n; k++) worst_kept = fmax(worst_kept, ty_hpo_trial_point(s, ids[k])[0]);
            size_t better = 0, prev_n = rung_n[r - 1];
            for (size_t t = total - (size_t)n - prev_n; t < total - (size_t)n; t++)
                better += ty_hpo_trial_point(s, t)[0] <= worst_kept;
            cr_assert_eq(better, (size_t)n, "rung %zu kept the wrong ones", r);
        }
    }
    size_t id;
    cr_assert_eq(ty_hpo_suggest(s, 1, &id, NULL), 0, "hyperband goes past its last bracket");
    ty_hpo_suggester_free(s);
    ty_hpo_space_free(sp);
}

/* Sphere in four dimensions: the best value after `trials`. */
static double sphere_best(const char *algo, int seed, int trials) {
    ty_hpo_space *sp = space_from(
        "[{\"name\":\"a\",\"parameterType\":\"double\",\"feasibleSpace\":{\"min\":\"-5\",\"max\":\"5\"}},"
        "{\"name\":\"b\",\"parameterType\":\"double\",\"feasibleSpace\":{\"min\":\"-5\",\"max\":\"5\"}},"
        "{\"name\":\"c\",\"parameterType\":\"double\",\"feasibleSpace\":{\"min\":\"-5\",\"max\":\"5\"}},"
        "{\"name\":\"d\",\"parameterType\":\"double\",\"feasibleSpace\":{\"min\":\"-5\",\"max\":\"5\"}}]");
    char seed_s[16];
    snprintf(seed_s, sizeof seed_s, "%d", seed);
    ty_hpo_setting st[] = {{"random_state", seed_s}};
    ty_hpo_suggester *s = suggester_of(sp, algo, st, 1);
    double best = INFINITY;
    for (int t = 0; t < trials; t++) {
        size_t id;
        cr_assert_eq(ty_hpo_suggest(s, 1, &id, NULL), 1);
        const double *x = ty_hpo_trial_point(s, id);
        double f = 0;
        for (int d = 0; d < 4; d++) f += (x[d] - 1) * (x[d] - 1);
        best = fmin(best, f);
        ty_hpo_report(s, id, TY_HPO_COMPLETED, f, NULL);
    }
    ty_hpo_suggester_free(s);
    ty_hpo_space_free(sp);
    return best;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median_best(const char *algo, int trials) {
    double v[11];
    for (int i = 0; i < 11; i++) v[i] = sphere_best(algo, 100 + i, trials);
    qsort(v, 11, sizeof(double), cmp_double);
    return v[5];
}

Test(hpo_suggest, model_based_beat_random_on_a_sphere, .timeout = 120) {
    double rnd = median_best("random", 80);
    double tpe = median_best("tpe", 80), mtpe = median_best("multivariate-tpe", 80);
    double cma = median_best("cmaes", 80);
    cr_assert(tpe < rnd, "tpe %g, random %g", tpe, rnd);
    cr_assert(mtpe < rnd, "multivariate-tpe %g, random %g", mtpe, rnd);
    cr_assert(cma < rnd, "cmaes %g, random %g", cma, rnd);
}

Test(hpo_suggest, gp_beats_random_on_a_sphere, .timeout = 120) {
    double rnd = 0, gp = 0;
    for (int i = 0; i < 3; i++) rnd += sphere_best("random", 200 + i, 40), gp += sphere_best("bayesianoptimization", 200 + i, 40);
    cr_assert(gp < rnd, "bayesianoptimization %g, random %g", gp / 3, rnd / 3);
}

/* Whether CMA-ES, on a 2-D sphere, ever jumps far from the optimum after having converged
 * there: what an ipop restart (a new random mean, sigma0 again) does and a single run never. */
static bool cma_jumps_after_converging(const char *restart) {
    ty_hpo_space *sp = space_from(
        "[{\"name\":\"a\",\"parameterType\":\"double\",\"feasibleSpace\":{\"min\":\"0\",\"max\":\"1\"}},"
        "{\"name\":\"b\",\"parameterType\":\"double\",\"feasibleSpace\":{\"min\":\"0\",\"max\":\"1\"}}]");
    ty_hpo_setting st[] = {{"restart_strategy", restart}, {"random_state", "4"}};
    ty_hpo_suggester *s = suggester_of(sp, "cmaes", st, 2);
    int near_run = 0;
    bool jumped = false;
    for (int t = 0; t < 900 && !jumped; t++) {
        size_t id;
        cr_assert_eq(ty_hpo_suggest(s, 1, &id, NULL), 1);
        const double *x = ty_hpo_trial_point(s, id);
        double dist = hypot(x[0] - 0.3, x[1] - 0.6);
        if (dist < 1e-4) near_run++;
        else if (dist > 0.05 && near_run >= 12) jumped = true;
        else if (dist >= 1e-4) near_run = 0;
        ty_hpo_report(s, id, TY_HPO_COMPLETED, dist * dist, NULL);
    }
    ty_hpo_suggester_free(s);
    ty_hpo_space_free(sp);
    return jumped;
}

Test(hpo_suggest, cmaes_restarts_with_ipop_only) {
    cr_assert(cma_jumps_after_converging("ipop"), "ipop never restarted");
    cr_assert_not(cma_jumps_after_converging("none"), "no restart strategy, yet a restart");
}

/* TPE's Parzen estimator against Optuna 3.1's own figures (_ParzenEstimator.log_pdf on the same
 * observations, default weights, prior, magic clip): continuous, and an int scored by its
 * bucket's mass. */
#include "hpo/hpo_int.h"

static void sort_pairs(double *v, double *w, size_t n) {
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && v[j] < v[j - 1]; j--) {
            double t = v[j];
            v[j] = v[j - 1], v[j - 1] = t;
            t = w[j], w[j] = w[j - 1], w[j - 1] = t;
        }
}

Test(hpo_suggest, tpe_density_is_optunas) {
    double obs[30], w[30];
    for (int i = 0; i < 30; i++) {
        double u = (double)((i * 37) % 101) / 101 * 4 - 2;
        obs[i] = u * u * u / 4;
        /* Optuna's default_weights(30): a ramp over the 5 oldest, then ones */
        w[i] = i < 5 ? 1.0 / 30 + (1 - 1.0 / 30) * i / 4 : 1.0;
    }
    sort_pairs(obs, w, 30);
    const struct { double x, want; } cont[] = {
        {-2.0, -3.083223946375143}, {-1.3, -2.7054768175482806}, {-0.5, -2.58618898922813},
        {0.0, -1.6080213806507395}, {0.01, -1.609561937749749},  {0.7, -2.5554026517007395},
        {1.99, -3.2643060524531027},
    };
    for (size_t k = 0; k < sizeof cont / sizeof cont[0]; k++) {
        double got = ty_hpo_tpe_logpdf1(obs, w, 30, -2, 2, 0, cont[k].x);
        cr_assert_float_eq(got, cont[k].want, 1e-9, "x = %g: %.15g, Optuna %.15g", cont[k].x, got,
                           cont[k].want);
    }
    double iobs[12], iw[12];
    for (int i = 0; i < 12; i++) iobs[i] = (i * 7) % 20 + 1, iw[i] = 1;
    sort_pairs(iobs, iw, 12);
    const struct { double x, want; } ints[] = {
        {1, -2.6046066798287217}, {5, -3.359958760670229}, {13, -3.5507802058632483},
        {20, -3.925307146893462},
    };
    for (size_t k = 0; k < sizeof ints / sizeof ints[0]; k++) {
        double got = ty_hpo_tpe_logpdf1(iobs, iw, 12, 0.5, 20.5, 1, ints[k].x);
        cr_assert_float_eq(got, ints[k].want, 1e-9, "n = %g: %.15g, Optuna %.15g", ints[k].x, got,
                           ints[k].want);
    }
}

/* Resuming: an experiment's trials handed back with their tags, in order, put CMA-ES and
 * hyperband where they were. */
static ty_hpo_suggester *replay(const ty_hpo_space *sp, const char *algo, const ty_hpo_setting *st,
                                size_t n_st, const ty_hpo_suggester *from) {
    ty_hpo_suggester *r = suggester_of(sp, algo, st, n_st);
    ty_error err = TY_ERROR_INIT;
    for (size_t t = 0; t < ty_hpo_trial_count(from); t++) {
        /* the values as a controller reads them back from its Trials */
        ty_hpo_trial_state state = ty_hpo_trial_state_of(from, t);
        const double *x = ty_hpo_trial_point(from, t);
        double v = x[0] * x[0] + x[1] * x[1];
        cr_assert_geq(ty_hpo_add_tagged_trial(r, x, state, v, ty_hpo_trial_tag(from, t), &err), 0,
                      "%s", err.msg);
    }
    return r;
}

Test(hpo_suggest, cmaes_resumes_from_tagged_trials) {
    ty_hpo_space *sp = space_from(
        "[{\"name\":\"a\",\"parameterType\":\"double\",\"feasibleSpace\":{\"min\":\"-2\",\"max\":\"2\"}},"
        "{\"name\":\"b\",\"parameterType\":\"double\",\"feasibleSpace\":{\"min\":\"-2\",\"max\":\"2\"}}]");
    ty_hpo_setting st[] = {{"random_state", "9"}};
    ty_hpo_suggester *s = suggester_of(sp, "cmaes", st, 1);
    for (int t = 0; t < 61; t++) {
        size_t id;
        cr_assert_eq(ty_hpo_suggest(s, 1, &id, NULL), 1);
        const double *x = ty_hpo_trial_point(s, id);
        ty_hpo_report(s, id, TY_HPO_COMPLETED, x[0] * x[0] + x[1] * x[1], NULL);
    }
    ty_hpo_suggester *r = replay(sp, "cmaes", st, 1, s);
    size_t a, b;
    cr_assert_eq(ty_hpo_suggest(s, 1, &a, NULL), 1);
    cr_assert_eq(ty_hpo_suggest(r, 1, &b, NULL), 1);
    cr_assert_eq(ty_hpo_trial_tag(s, a), ty_hpo_trial_tag(r, b));
    cr_assert_gt(ty_hpo_trial_tag(r, b), 5, "generation %d", ty_hpo_trial_tag(r, b));
    /* the same small distribution near the optimum: eight next points of each stay close to it,
     * where a fresh start (sigma 2/3) would scatter them */
    for (int k = 0; k < 8; k++) {
        const double *pa = ty_hpo_trial_point(s, a), *pb = ty_hpo_trial_point(r, b);
        cr_assert_lt(hypot(pa[0], pa[1]), 0.3, "original (%g %g)", pa[0], pa[1]);
        cr_assert_lt(hypot(pb[0], pb[1]), 0.3, "resumed (%g %g)", pb[0], pb[1]);
        ty_hpo_report(s, a, TY_HPO_FAILED, NAN, NULL);
        ty_hpo_report(r, b, TY_HPO_FAILED, NAN, NULL);
        cr_assert_eq(ty_hpo_suggest(s, 1, &a, NULL), 1);
        cr_assert_eq(ty_hpo_suggest(r, 1, &b, NULL), 1);
    }
    /* without the tags it starts over at generation 0 */
    ty_hpo_suggester *u = suggester_of(sp, "cmaes", st, 1);
    for (size_t t = 0; t < 61; t++)
        ty_hpo_add_trial(u, ty_hpo_trial_point(s, t), TY_HPO_COMPLETED, 1, NULL);
    cr_assert_eq(ty_hpo_suggest(u, 1, &b, NULL), 1);
    cr_assert_eq(ty_hpo_trial_tag(u, b), 0);
    ty_hpo_suggester_free(u);
    ty_hpo_suggester_free(s), ty_hpo_suggester_free(r);
    ty_hpo_space_free(sp);
}

Test(hpo_suggest, hyperband_resumes_from_tagged_trials) {
    ty_hpo_space *sp = space_from(
        "[{\"name\":\"lr\",\"parameterType\":\"double\",\"feasibleSpace\":{\"min\":\"0\",\"max\":\"1\"}},"
        "{\"name\":\"epochs\",\"parameterType\":\"int\",\"feasibleSpace\":{\"min\":\"1\",\"max\":\"9\"}}]");
    ty_hpo_setting st[] = {{"r_l", "9"}, {"resource_name", "epochs"}, {"random_state", "2"}};
    ty_hpo_suggester *s = suggester_of(sp, "hyperband", st, 3);
    /* bracket 2's first two rungs done, its third (one trial at 9 epochs) asked for */
    for (int rung = 0; rung < 2; rung++) {
        size_t ids[9];
        int n = ty_hpo_suggest(s, 9, ids, NULL);
        for (int k = 0; k < n; k++) {
            const double *x = ty_hpo_trial_point(s, ids[k]);
            ty_hpo_report(s, ids[k], TY_HPO_COMPLETED, x[0] * x[0] + x[1] * x[1], NULL);
        }
    }
    ty_hpo_suggester *r = replay(sp, "hyperband", st, 3, s);
    size_t a[6], b[6];
    int na = ty_hpo_suggest(s, 6, a, NULL), nb = ty_hpo_suggest(r, 6, b, NULL);
    cr_assert_eq(na, 1);
    cr_assert_eq(nb, 1, "the resumed one proposes %d", nb);
    cr_assert_arr_eq(ty_hpo_trial_point(s, a[0]), ty_hpo_trial_point(r, b[0]), 2 * sizeof(double));
    cr_assert_eq(ty_hpo_trial_point(r, b[0])[1], 9);
    ty_hpo_suggester_free(s), ty_hpo_suggester_free(r);
    ty_hpo_space_free(sp);
}

/* A random suggester rebuilt from 5 trials and resumed goes on with the 6th point of the
 * stream, not its first again. */
Test(hpo_suggest, random_resumes_its_stream) {
    enum { N = 6 };
    double all[N * 6];
    run("random", "11", N, all);
    ty_hpo_space *sp = space_from(MIXED_SPACE);
    ty_hpo_setting st[] = {{"random_state", "11"}};
    ty_hpo_options opt = {.maximize = false};
    ty_hpo_suggester *s = NULL;
    ty_error err = TY_ERROR_INIT;
    cr_assert_eq(ty_hpo_suggester_new(sp, "random", st, 1, &opt, &s, &err), 0, "%s", err.msg);
    for (size_t t = 0; t + 1 < N; t++)
        cr_assert_geq(ty_hpo_add_trial(s, &all[t * 6], TY_HPO_COMPLETED, mixed_f(&all[t * 6]),
                                       &err), 0);
    ty_hpo_suggester_resume(s);
    size_t id;
    cr_assert_eq(ty_hpo_suggest(s, 1, &id, &err), 1);
    cr_assert_arr_eq(ty_hpo_trial_point(s, id), &all[(N - 1) * 6], 6 * sizeof(double));
    ty_hpo_suggester_free(s);
    ty_hpo_space_free(sp);
}
