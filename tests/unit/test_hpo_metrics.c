/* src/hpo/metrics and medianstop: Katib's metrics collectors' test inputs, the default filter,
 * and median stopping on hand-computed logs. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "hpo/medianstop.h"
#include "hpo/metrics.h"

static ty_hpo_filters *filters(const char *format) {
    ty_hpo_filters *f = NULL;
    ty_error err = TY_ERROR_INIT;
    cr_assert_eq(ty_hpo_filters_new(format ? &format : NULL, format ? 1 : 0, &f, &err), 0, "%s",
                 err.msg);
    return f;
}

static void expect_log(const ty_hpo_obs *obs, size_t i, const char *ts, const char *name,
                       const char *value) {
    cr_assert_lt(i, obs->n, "only %zu logs", obs->n);
    cr_assert_str_eq(obs->logs[i].timestamp, ts, "log %zu", i);
    cr_assert_str_eq(obs->logs[i].name, name, "log %zu", i);
    cr_assert_str_eq(obs->logs[i].value, value, "log %zu", i);
}

#define KATIB_FORMAT "{metricName: ([\\w|-]+), metricValue: ((-?\\d+)(\\.\\d+)?)}"

Test(hpo_metrics, katib_text_with_custom_format) {
    const char *text =
        "2024-03-04T17:55:08Z INFO     {metricName: accuracy, metricValue: 0.8078};{metricName: "
        "loss, metricValue: 0.5183}\n"
        "2024-03-04T17:55:08Z INFO     {metricName: accuracy, metricValue: 0.6752}\n"
        "2024-03-04T17:55:08Z INFO     {metricName: loss, metricValue: 0.3634}\n"
        "2024-03-04T17:55:08Z INFO     {metricName: accuracy, metricValue: 100}\n"
        "2024-03-04T17:55:08Z INFO     {metricName: accuracy, metricValue: 888.333}\n"
        "2024-03-04T17:55:08Z INFO     {metricName: accuracy, metricValue: -0.4759}\n"
        "{metricName: loss, metricValue: 0.8671}";
    const char *metrics[] = {"accuracy", "loss"};
    ty_hpo_filters *f = filters(KATIB_FORMAT);
    ty_hpo_obs obs = {0};
    ty_hpo_collect_text(f, text, strlen(text), metrics, 2, &obs);
    ty_hpo_obs_finish(&obs, "accuracy");
    cr_assert_eq(obs.n, 8);
    const char *ts = "2024-03-04T17:55:08Z";
    expect_log(&obs, 0, ts, "accuracy", "0.8078");
    expect_log(&obs, 1, ts, "loss", "0.5183");
    expect_log(&obs, 2, ts, "accuracy", "0.6752");
    expect_log(&obs, 3, ts, "loss", "0.3634");
    expect_log(&obs, 4, ts, "accuracy", "100");
    expect_log(&obs, 5, ts, "accuracy", "888.333");
    expect_log(&obs, 6, ts, "accuracy", "-0.4759");
    expect_log(&obs, 7, TY_HPO_ZERO_TIME, "loss", "0.8671");
    ty_hpo_obs_free(&obs);
    ty_hpo_filters_free(f);
}

Test(hpo_metrics, katib_invalid_values_leave_the_objective_unavailable) {
    const char *text = "2024-03-04T17:55:08Z INFO     {metricName: accuracy, metricValue: .333}\n"
                       "2024-03-04T17:55:08Z INFO     {metricName: accuracy, metricValue: -.333}\n"
                       "2024-03-04T17:55:08Z INFO     {metricName: accuracy, metricValue: - 345.333}\n"
                       "2024-03-04T17:55:08Z INFO     {metricName: accuracy, metricValue: 888.}\n"
                       /* Katib's invalid-format case: an unclosed brace */
                       "2024-03-04T17:55:08Z INFO     {metricName: accuracy, metricValue: 0.6752\n";
    const char *metrics[] = {"accuracy", "loss"};
    ty_hpo_filters *f = filters(KATIB_FORMAT);
    ty_hpo_obs obs = {0};
    ty_hpo_collect_text(f, text, strlen(text), metrics, 2, &obs);
    ty_hpo_obs_finish(&obs, "accuracy");
    cr_assert_eq(obs.n, 1);
    expect_log(&obs, 0, TY_HPO_ZERO_TIME, "accuracy", TY_HPO_UNAVAILABLE);
    ty_hpo_obs_free(&obs);
    ty_hpo_filters_free(f);
}

Test(hpo_metrics, katib_invalid_timestamp_in_text) {
    const char *text = "2024-03-04T17:55:08Z INFO     {metricName: accuracy, metricValue: 0.6752}\n"
                       "invalid INFO     {metricName: loss, metricValue: 0.3634}";
    const char *metrics[] = {"accuracy", "loss"};
    ty_hpo_filters *f = filters(KATIB_FORMAT);
    ty_hpo_obs obs = {0};
    ty_hpo_collect_text(f, text, strlen(text), metrics, 2, &obs);
    cr_assert_eq(obs.n, 2);
    expect_log(&obs, 0, "2024-03-04T17:55:08Z", "accuracy", "0.6752");
    expect_log(&obs, 1, TY_HPO_ZERO_TIME, "loss", "0.3634");
    ty_hpo_obs_free(&obs);
    ty_hpo_filters_free(f);
}

Test(hpo_metrics, default_filter_as_katib_documents_it) {
    /* Katib's DefaultFilter comment: loss=0.3 accuracy=.98 Score=-7.53e-05 ... */
    const char *text = "epoch 1: loss=0.3\n"
                       "accuracy=.98\n"
                       "Score=-7.53e-05\n"
                       "Score=-7.53e+05\n"
                       "Score=1E0\n"
                       "Score = 1.23E10 other-metric=4 val-acc=0.5\n"
                       "nothing to see here\n"
                       "2026-12-07T10:00:00.123456789Z loss=0.25 accuracy=0.91\n";
    const char *metrics[] = {"loss", "accuracy", "Score", "val-acc"};
    ty_hpo_filters *f = filters(NULL);
    ty_hpo_obs obs = {0};
    ty_hpo_collect_text(f, text, strlen(text), metrics, 4, &obs);
    cr_assert_eq(obs.n, 9, "%zu logs", obs.n);
    const char *z = TY_HPO_ZERO_TIME;
    expect_log(&obs, 0, z, "loss", "0.3");
    expect_log(&obs, 1, z, "accuracy", ".98");
    expect_log(&obs, 2, z, "Score", "-7.53e-05");
    expect_log(&obs, 3, z, "Score", "-7.53e+05");
    expect_log(&obs, 4, z, "Score", "1E0");
    expect_log(&obs, 5, z, "Score", "1.23E10");
    expect_log(&obs, 6, z, "val-acc", "0.5");
    expect_log(&obs, 7, "2026-12-07T10:00:00.123456789Z", "loss", "0.25");
    expect_log(&obs, 8, "2026-12-07T10:00:00.123456789Z", "accuracy", "0.91");
    ty_hpo_obs_finish(&obs, "loss");
    cr_assert_eq(obs.n, 9);
    ty_hpo_obs_free(&obs);
    ty_hpo_filters_free(f);
}

Test(hpo_metrics, katib_json_lines) {
    const char *text =
        "{\"checkpoint_path\": \"\", \"global_step\": \"0\", \"loss\": \"0.22082142531871796\", "
        "\"timestamp\": 1638422847.28721, \"trial\": \"0\"}\n"
        "{\"acc\": \"0.9349666833877563\", \"checkpoint_path\": \"\", \"global_step\": \"0\", "
        "\"timestamp\": 1638422847.287801, \"trial\": \"0\"}\n"
        "{\"checkpoint_path\": \"\", \"global_step\": \"1\", \"loss\": \"0.1414974331855774\", "
        "\"timestamp\": \"2021-12-02T14:27:50.000035161Z\", \"trial\": \"0\"}\n"
        "{\"acc\": \"0.9586416482925415\", \"checkpoint_path\": \"\", \"global_step\": \"1\", "
        "\"timestamp\": \"2021-12-02T14:27:50.000037459Z\", \"trial\": \"0\"}\n"
        "{\"checkpoint_path\": \"\", \"global_step\": \"2\", \"loss\": \"0.10683439671993256\", "
        "\"trial\": \"0\"}";
    const char *metrics[] = {"acc", "loss"};
    ty_hpo_obs obs = {0};
    ty_error err = TY_ERROR_INIT;
    cr_assert_eq(ty_hpo_collect_json_lines(text, strlen(text), metrics, 2, &obs, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(obs.n, 5);
    /* Katib reads the fraction's digits as nanoseconds: .28721 is 28721 ns */
    expect_log(&obs, 0, "2021-12-02T05:27:27.000028721Z", "loss", "0.22082142531871796");
    expect_log(&obs, 1, "2021-12-02T05:27:27.000287801Z", "acc", "0.9349666833877563");
    expect_log(&obs, 2, "2021-12-02T14:27:50.000035161Z", "loss", "0.1414974331855774");
    expect_log(&obs, 3, "2021-12-02T14:27:50.000037459Z", "acc", "0.9586416482925415");
    expect_log(&obs, 4, TY_HPO_ZERO_TIME, "loss", "0.10683439671993256");
    ty_hpo_obs_free(&obs);

    const char *bad_ts = "{\"loss\": \"0.22\", \"timestamp\": \"invalid\"}\n"
                         "{\"acc\": \"0.93\", \"timestamp\": 1638422847}\n"
                         "{\"acc\": 0.5}\n";
    cr_assert_eq(ty_hpo_collect_json_lines(bad_ts, strlen(bad_ts), metrics, 2, &obs, &err), 0);
    cr_assert_eq(obs.n, 3);
    expect_log(&obs, 0, TY_HPO_ZERO_TIME, "loss", "0.22");
    expect_log(&obs, 1, "2021-12-02T05:27:27Z", "acc", "0.93");
    expect_log(&obs, 2, TY_HPO_ZERO_TIME, "acc", "0.5"); /* numbers too (Katib skips them) */
    ty_hpo_obs_free(&obs);

    const char *broken = "{\"loss\": \"0.1\"}\n\"checkpoint_path\": \"\", \"loss\": \"0.2\"\n";
    cr_assert_eq(ty_hpo_collect_json_lines(broken, strlen(broken), metrics, 2, &obs, &err), -1);
    cr_assert(strstr(err.msg, "line 2: failed to parse the json object"), "%s", err.msg);
    cr_assert_eq(obs.n, 0, "a failed parse added logs");
    ty_error_clear(&err);
}

Test(hpo_metrics, go_regex_translation) {
    ty_error err = TY_ERROR_INIT;
    char *p = ty_hpo_regex_to_posix("([\\w|-]+)\\s*=\\s*([+-]?\\d*(\\.\\d+)?)", &err);
    cr_assert_str_eq(p, "([[:alnum:]_|-]+)[[:space:]]*=[[:space:]]*([+-]?[0-9]*(\\.[0-9]+)?)");
    free(p);
    p = ty_hpo_regex_to_posix("{a: (\\d{2,3})}", &err);
    cr_assert_str_eq(p, "\\{a: ([0-9]{2,3})\\}");
    free(p);
    cr_assert_null(ty_hpo_regex_to_posix("(?i)loss=(\\d+)", &err));
    ty_error_clear(&err);
    cr_assert_null(ty_hpo_regex_to_posix("loss=(\\d+?)", &err));
    ty_error_clear(&err);
    /* what makes a POSIX engine blow up (found by tests/fuzz/fuzz_hpo.c) is refused, as Go does */
    cr_assert_null(ty_hpo_regex_to_posix("loss=(\\d++++++++++++)", &err));
    cr_assert(strstr(err.msg, "invalid nested repetition operator"), "%s", err.msg);
    ty_error_clear(&err);
    cr_assert_null(ty_hpo_regex_to_posix("a{1001}", &err));
    cr_assert(strstr(err.msg, "invalid repeat count"), "%s", err.msg);
    ty_error_clear(&err);
    cr_assert_null(ty_hpo_regex_to_posix("(a{100}){100}", &err));
    ty_error_clear(&err);
    /* (?:...) groups do not count among Go's */
    ty_hpo_filters *f = filters("(?:metric|m) (\\w+) is (\\d+)");
    const char *metrics[] = {"acc"};
    ty_hpo_obs obs = {0};
    const char *line = "metric acc is 93";
    ty_hpo_collect_text(f, line, strlen(line), metrics, 1, &obs);
    cr_assert_eq(obs.n, 1);
    expect_log(&obs, 0, TY_HPO_ZERO_TIME, "acc", "93");
    ty_hpo_obs_free(&obs);
    ty_hpo_filters_free(f);
    const char *bad = "(unclosed";
    cr_assert_eq(ty_hpo_filters_new(&bad, 1, &f, &err), -1);
    cr_assert(strstr(err.msg, "metricsFormat[0] (unclosed"), "%s", err.msg);
    ty_error_clear(&err);
}

Test(hpo_metrics, rfc3339) {
    cr_assert(ty_hpo_is_rfc3339("2024-03-04T17:55:08Z", 20));
    cr_assert(ty_hpo_is_rfc3339("2024-03-04T17:55:08.5+02:00", 27));
    cr_assert_not(ty_hpo_is_rfc3339("2024-03-04 17:55:08Z", 20));
    cr_assert_not(ty_hpo_is_rfc3339("2024-13-04T17:55:08Z", 20));
    cr_assert_not(ty_hpo_is_rfc3339("2024-03-04T17:55:08.Z", 21));
}

/* ---- medianstop ---- */

Test(hpo_medianstop, settings) {
    ty_hpo_medianstop ms;
    ty_error err = TY_ERROR_INIT;
    cr_assert_eq(ty_hpo_medianstop_parse("medianstop", NULL, 0, &ms, &err), 0);
    cr_assert_eq(ms.min_trials_required, 3);
    cr_assert_eq(ms.start_step, 4);
    ty_hpo_setting st[] = {{"min_trials_required", "2"}, {"start_step", "1"}};
    cr_assert_eq(ty_hpo_medianstop_parse("medianstop", st, 2, &ms, &err), 0);
    cr_assert_eq(ms.min_trials_required, 2);
    cr_assert_eq(ms.start_step, 1);
    ty_hpo_setting bad[] = {{"min_trials_required", "0"}};
    cr_assert_eq(ty_hpo_medianstop_parse("medianstop", bad, 1, &ms, &err), -1);
    cr_assert_str_eq(err.msg, "min_trials_required must be greater than zero (>0)");
    ty_hpo_setting bad2[] = {{"start_step", "0"}};
    cr_assert_eq(ty_hpo_medianstop_parse("medianstop", bad2, 1, &ms, &err), -1);
    cr_assert_str_eq(err.msg, "start_step must be greater or equal than one (>=1)");
    ty_hpo_setting bad3[] = {{"patience", "2"}};
    cr_assert_eq(ty_hpo_medianstop_parse("medianstop", bad3, 1, &ms, &err), -1);
    cr_assert_str_eq(err.msg, "unknown setting patience for algorithm medianstop");
    cr_assert_eq(ty_hpo_medianstop_parse("hyperband-stop", NULL, 0, &ms, &err), -1);
    cr_assert_str_eq(err.msg, "unknown algorithm name hyperband-stop");
    ty_error_clear(&err);
}

Test(hpo_medianstop, rule_and_decisions_by_hand) {
    ty_hpo_medianstop ms = {3, 2};
    /* succeeded trials' accuracy logs: means of the first two values 0.55, 0.75, 0.35 */
    const double a[] = {0.5, 0.6, 0.9}, b[] = {0.7, 0.8}, c[] = {0.3, 0.4, 0.95, 0.99};
    const double *logs[] = {a, b, c};
    size_t lens[] = {3, 2, 4};
    double rule;
    cr_assert_not(ty_hpo_medianstop_rule(&ms, logs, lens, 2, &rule), "2 < min_trials_required");
    cr_assert(ty_hpo_medianstop_rule(&ms, logs, lens, 3, &rule));
    cr_assert_float_eq(rule, (0.55 + 0.75 + 0.35) / 3, 1e-12); /* 0.55 */
    /* maximize: stopped when the best of the first start_step values is below 0.55 */
    const double slow[] = {0.4, 0.5, 0.9}, ok[] = {0.4, 0.6}, one[] = {0.1};
    cr_assert(ty_hpo_medianstop_should_stop(&ms, rule, true, slow, 2));
    cr_assert(ty_hpo_medianstop_should_stop(&ms, rule, true, slow, 3), "decided at step 2");
    cr_assert_not(ty_hpo_medianstop_should_stop(&ms, rule, true, ok, 2));
    cr_assert_not(ty_hpo_medianstop_should_stop(&ms, rule, true, one, 1), "before start_step");
    /* minimize: stopped when above */
    const double loss[] = {0.9, 0.8};
    cr_assert(ty_hpo_medianstop_should_stop(&ms, rule, false, loss, 2));
    const double equal[] = {0.7, 0.5};
    cr_assert_not(ty_hpo_medianstop_should_stop(&ms, 0.5, false, equal, 2), "strictly above");
    /* an empty log (no objective reported) does not count towards the rule */
    const double *logs2[] = {a, b, NULL};
    size_t lens2[] = {3, 2, 0};
    cr_assert_not(ty_hpo_medianstop_rule(&ms, logs2, lens2, 3, &rule));
}

/* Whole seconds since the epoch: Go writes 1700000000 without an exponent. */
Test(hpo_metrics, json_lines_integer_epoch_timestamp) {
    const char *text = "{\"accuracy\": \"0.5\", \"timestamp\": 1700000000}\n"
                       "{\"accuracy\": 0.75, \"timestamp\": 1700000000.5}\n";
    const char *metrics[] = {"accuracy"};
    ty_hpo_obs obs = {0};
    ty_error err = TY_ERROR_INIT;
    cr_assert_eq(ty_hpo_collect_json_lines(text, strlen(text), metrics, 1, &obs, &err), 0, "%s",
                 err.msg);
    expect_log(&obs, 0, "2023-11-14T22:13:20Z", "accuracy", "0.5");
    expect_log(&obs, 1, "2023-11-14T22:13:20.000000005Z", "accuracy", "0.75");
    ty_hpo_obs_free(&obs);
}
