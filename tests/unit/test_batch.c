/* batch/v1 Job: the API's defaults and rules (api/batch.c) and the Job controller's pure
 * decisions (controllers/batch.h): which pods to make and delete, the counts, the conditions
 * in Kubernetes' order and words, back-off, deadlines, suspension, TTL, indexes. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/batch.h"
#include "base/mem.h"
#include "base/time.h"
#include "controllers/batch.h"

#define SEC 1000000000LL
/* 2026-01-01T00:00:00Z */
#define T0 1767225600LL

static json_t *load(const char *text)
{
    json_error_t e;
    json_t *o = json_loads(text, 0, &e);
    cr_assert(o, "bad test json: %s: %s", e.text, text);
    return o;
}

/* An admitted job: its spec members `spec` (JSON object text without braces) over a template
 * running "true" under restartPolicy Never. */
static json_t *job_with(const char *spec)
{
    char *text = ty_asprintf(
        "{\"apiVersion\":\"batch/v1\",\"kind\":\"Job\",\"metadata\":{\"name\":\"j\","
        "\"namespace\":\"default\",\"uid\":\"u-1\"},\"spec\":{%s%s\"template\":{\"spec\":{"
        "\"restartPolicy\":\"Never\",\"containers\":[{\"name\":\"main\",\"command\":[\"true\"]}]"
        "}}}}",
        spec, *spec ? "," : "");
    json_t *job = load(text);
    free(text);
    ty_field_errors errs = TY_FIELD_ERRORS_INIT;
    cr_assert_eq(ty_api_admit(NULL, job, &errs), 0, "%s", errs.count ? errs.items[0].msg : "");
    ty_field_errors_free(&errs);
    return job;
}

static char *ts(int64_t sec)
{
    char buf[40];
    ty_time_format_rfc3339(sec * SEC, buf, sizeof buf, 0);
    return ty_strdup(buf);
}

/* A pod of the job: phase, exit code (for ended pods), ended at `end` seconds after T0,
 * index (-1: none). */
static json_t *pod(const char *name, const char *phase, int code, int64_t end, long index)
{
    char *at = ts(T0 + end), *created = ts(T0);
    json_t *p = json_pack("{s:{s:s,s:s,s:s,s:{},s:[{s:s,s:s,s:s,s:s,s:b}]},s:{s:s,s:[{s:s,s:i,"
                          "s:{}}]}}",
                          "metadata", "name", name, "namespace", "default", "creationTimestamp",
                          created, "annotations", "ownerReferences", "apiVersion", "batch/v1",
                          "kind", "Job", "name", "j", "uid", "u-1", "controller", 1, "status",
                          "phase", phase, "containerStatuses", "name", "main", "restartCount", 0,
                          "state");
    json_t *state = json_object_get(
        json_array_get(json_object_get(json_object_get(p, "status"), "containerStatuses"), 0),
        "state");
    if (!strcmp(phase, "Succeeded") || !strcmp(phase, "Failed"))
        json_object_set_new(state, "terminated",
                            json_pack("{s:i,s:s}", "exitCode", code, "finishedAt", at));
    else
        json_object_set_new(state, "running", json_object());
    if (index >= 0)
        json_object_set_new(json_object_get(json_object_get(p, "metadata"), "annotations"),
                            TY_BATCH_COMPLETION_INDEX, json_sprintf("%ld", index));
    free(at);
    free(created);
    return p;
}

static const json_t *cond(const json_t *job, const char *type)
{
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(json_object_get(job, "status"), "conditions"), i, c)
        if (!strcmp(json_string_value(json_object_get(c, "type")), type))
            return c;
    return NULL;
}

static const char *cond_reason(const json_t *job, const char *type)
{
    return json_string_value(json_object_get(cond(job, type), "reason"));
}

static json_int_t st_int(const json_t *job, const char *key)
{
    return json_integer_value(json_object_get(json_object_get(job, "status"), key));
}

static void run(json_t *job, json_t **pods, size_t n, int64_t now_sec, ty_batch_outcome *o)
{
    ty_batch_reconcile(job, pods, n, now_sec * SEC, o);
}

static void free_pods(json_t **pods, size_t n)
{
    for (size_t i = 0; i < n; i++)
        json_decref(pods[i]);
}

TestSuite(batch, .init = NULL);

Test(batch, api_defaults_as_the_api_server)
{
    json_t *job = job_with("");
    json_t *spec = json_object_get(job, "spec");
    cr_assert_eq(json_integer_value(json_object_get(spec, "parallelism")), 1);
    cr_assert_eq(json_integer_value(json_object_get(spec, "completions")), 1);
    cr_assert_eq(json_integer_value(json_object_get(spec, "backoffLimit")), 6);
    cr_assert_str_eq(json_string_value(json_object_get(spec, "completionMode")), "NonIndexed");
    cr_assert(json_is_false(json_object_get(spec, "suspend")));
    cr_assert_str_eq(json_string_value(json_object_get(spec, "podReplacementPolicy")),
                     "TerminatingOrFailed");
    /* the uid-bound selector and labels, once the store gave it a uid */
    ty_batch_job_create_defaults(job);
    cr_assert_str_eq(json_string_value(json_object_get(
                         json_object_get(json_object_get(spec, "selector"), "matchLabels"),
                         TY_BATCH_LABEL_CONTROLLER_UID)),
                     "u-1");
    json_t *labels = json_object_get(
        json_object_get(json_object_get(spec, "template"), "metadata"), "labels");
    cr_assert_str_eq(json_string_value(json_object_get(labels, "job-name")), "j");
    cr_assert_str_eq(json_string_value(json_object_get(labels, "controller-uid")), "u-1");
    cr_assert(json_equal(json_object_get(json_object_get(job, "metadata"), "labels"), labels));
    json_decref(job);
    /* parallelism alone leaves completions unset (a work queue) */
    job = job_with("\"parallelism\":3");
    cr_assert_null(json_object_get(json_object_get(job, "spec"), "completions"));
    json_decref(job);
    /* backoffLimitPerIndex makes the global limit unbounded */
    job = job_with("\"completionMode\":\"Indexed\",\"completions\":2,\"backoffLimitPerIndex\":1");
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(job, "spec"), "backoffLimit")),
                 2147483647);
    json_decref(job);
}

static void expect_errors(const char *spec, const char *const *want)
{
    char *text = ty_asprintf(
        "{\"apiVersion\":\"batch/v1\",\"kind\":\"Job\",\"metadata\":{\"name\":\"j\"},"
        "\"spec\":{%s}}",
        spec);
    json_t *job = load(text);
    free(text);
    ty_field_errors errs = TY_FIELD_ERRORS_INIT;
    cr_assert_eq(ty_api_admit(NULL, job, &errs), -1);
    size_t n = 0;
    while (want[n])
        n++;
    for (size_t i = 0; i < errs.count; i++)
        cr_log_info("%s: %s", errs.items[i].path, errs.items[i].msg);
    cr_assert_eq(errs.count, n, "want %zu errors, got %zu", n, errs.count);
    for (size_t i = 0; i < n; i++) {
        char *got = ty_asprintf("%s: %s", errs.items[i].path, errs.items[i].msg);
        cr_assert_str_eq(got, want[i]);
        free(got);
    }
    ty_field_errors_free(&errs);
    json_decref(job);
}

Test(batch, api_rules_in_kubernetes_words)
{
    static const char *const want1[] = {
        "spec.backoffLimit: Invalid value: -1: must be greater than or equal to 0",
        "spec.completions: Required value: when completion mode is Indexed",
        "spec.template.spec.restartPolicy: Unsupported value: \"Always\": supported values: "
        "\"OnFailure\", \"Never\"",
        NULL};
    expect_errors("\"backoffLimit\":-1,\"parallelism\":2,\"completionMode\":\"Indexed\","
                  "\"template\":{\"spec\":{\"containers\":[{\"name\":\"main\"}]}}",
                  want1);
    static const char *const want2[] = {
        "spec.maxFailedIndexes: Invalid value: 1: requires the backoffLimitPerIndex to be set",
        "spec.template.spec.restartPolicy: Invalid value: \"OnFailure\": only \"Never\" is "
        "supported when podFailurePolicy is specified",
        "spec.podFailurePolicy.rules[0].action: Invalid value: \"FailIndex\": requires the "
        "backoffLimitPerIndex to be set",
        "spec.podFailurePolicy.rules[1].onExitCodes.values: Required value: at least one value "
        "is required",
        "spec.podFailurePolicy.rules[2].onPodConditions[0].status: Unsupported value: "
        "\"Maybe\": supported values: \"False\", \"True\", \"Unknown\"",
        NULL};
    expect_errors(
        "\"completionMode\":\"Indexed\",\"completions\":2,\"maxFailedIndexes\":1,"
        "\"podFailurePolicy\":{\"rules\":["
        "{\"action\":\"FailIndex\",\"onExitCodes\":{\"operator\":\"In\",\"values\":[1]}},"
        "{\"action\":\"Count\",\"onExitCodes\":{\"operator\":\"NotIn\",\"values\":[]}},"
        "{\"action\":\"Ignore\",\"onPodConditions\":[{\"type\":\"DisruptionTarget\","
        "\"status\":\"Maybe\"}]}]},"
        "\"template\":{\"spec\":{\"restartPolicy\":\"OnFailure\","
        "\"containers\":[{\"name\":\"main\"}]}}",
        want2);
    static const char *const want3[] = {
        "spec.selector: Invalid value: \"object\": `selector` not auto-generated",
        NULL};
    expect_errors("\"selector\":{\"matchLabels\":{\"a\":\"b\"}},\"template\":{\"spec\":{"
                  "\"restartPolicy\":\"Never\",\"containers\":[{\"name\":\"main\"}]}}",
                  want3);
    static const char *const want4[] = {
        "spec.template.metadata.labels: Invalid value: \"object\": `selector` does not match "
        "template `labels`",
        NULL};
    expect_errors("\"manualSelector\":true,\"selector\":{\"matchLabels\":{\"a\":\"b\"}},"
                  "\"template\":{\"metadata\":{\"labels\":{\"a\":\"c\"}},\"spec\":{"
                  "\"restartPolicy\":\"Never\",\"containers\":[{\"name\":\"main\"}]}}",
                  want4);
}

Test(batch, indexes_format_as_intervals)
{
    long v[] = {0, 1, 2, 4, 6, 7};
    char *s = ty_batch_format_indexes(v, 6);
    cr_assert_str_eq(s, "0-2,4,6-7");
    long *back = NULL;
    size_t n = 0;
    cr_assert_eq(ty_batch_parse_indexes(s, 7, &back, &n), 0);
    cr_assert_eq(n, 5); /* 7 is beyond the limit */
    cr_assert_eq(back[3], 4);
    free(back);
    free(s);
    back = NULL, n = 0;
    cr_assert_eq(ty_batch_parse_indexes("3-1", 10, &back, &n), -1);
    free(back);
    s = ty_batch_format_indexes(NULL, 0);
    cr_assert_str_eq(s, "");
    free(s);
}

Test(batch, nonindexed_keeps_parallelism_then_completes)
{
    json_t *job = job_with("\"completions\":3,\"parallelism\":2");
    ty_batch_outcome o;
    run(job, NULL, 0, T0, &o);
    cr_assert_eq(o.ncreate, 2);
    cr_assert_eq(o.create[0], -1);
    cr_assert(o.status_changed);
    cr_assert_not_null(json_object_get(json_object_get(job, "status"), "startTime"));
    ty_batch_outcome_free(&o);
    /* two succeeded: one more to make */
    json_t *pods[3] = {pod("a", "Succeeded", 0, 5, -1), pod("b", "Succeeded", 0, 6, -1)};
    run(job, pods, 2, T0 + 7, &o);
    cr_assert_eq(o.ncreate, 1);
    cr_assert_eq(st_int(job, "succeeded"), 2);
    ty_batch_outcome_free(&o);
    /* three: the criteria are met and, no pod being left, the job is complete */
    pods[2] = pod("c", "Succeeded", 0, 9, -1);
    run(job, pods, 3, T0 + 10, &o);
    cr_assert_eq(o.ncreate, 0);
    cr_assert_str_eq(cond_reason(job, "SuccessCriteriaMet"), "CompletionsReached");
    cr_assert_str_eq(cond_reason(job, "Complete"), "CompletionsReached");
    cr_assert_str_eq(json_string_value(json_object_get(cond(job, "Complete"), "message")),
                     "Reached expected number of succeeded pods");
    cr_assert_not_null(json_object_get(json_object_get(job, "status"), "completionTime"));
    bool ok;
    cr_assert(ty_batch_finished(job, &ok) && ok);
    ty_batch_outcome_free(&o);
    free_pods(pods, 3);
    json_decref(job);
}

Test(batch, success_waits_for_the_extra_pods_to_go)
{
    json_t *job = job_with("\"completions\":1,\"parallelism\":2");
    json_t *pods[2] = {pod("a", "Succeeded", 0, 1, -1), pod("b", "Running", 0, 0, -1)};
    ty_batch_outcome o;
    run(job, pods, 2, T0 + 2, &o);
    cr_assert_not_null(cond(job, "SuccessCriteriaMet"));
    cr_assert_null(cond(job, "Complete"));
    cr_assert_eq(o.ndelete, 1);
    cr_assert_str_eq(o.delete_pods[0], "b");
    cr_assert_str_eq(o.event_reason, "Completed");
    ty_batch_outcome_free(&o);
    free_pods(pods, 2);
    json_decref(job);
}

Test(batch, work_queue_lets_running_pods_finish)
{
    json_t *job = job_with("\"parallelism\":2");
    json_t *pods[2] = {pod("a", "Succeeded", 0, 1, -1), pod("b", "Running", 0, 0, -1)};
    ty_batch_outcome o;
    run(job, pods, 2, T0 + 2, &o);
    cr_assert_eq(o.ncreate, 0);
    cr_assert_eq(o.ndelete, 0);
    cr_assert_null(cond(job, "SuccessCriteriaMet"));
    ty_batch_outcome_free(&o);
    json_decref(pods[1]);
    pods[1] = pod("b", "Succeeded", 0, 3, -1);
    run(job, pods, 2, T0 + 4, &o);
    cr_assert_not_null(cond(job, "Complete"));
    ty_batch_outcome_free(&o);
    free_pods(pods, 2);
    json_decref(job);
}

Test(batch, failures_back_off_then_exceed_the_limit)
{
    ty_batch_set_pod_backoff(10000);
    json_t *job = job_with("\"backoffLimit\":1");
    json_t *pods[2] = {pod("a", "Failed", 1, 10, -1)};
    ty_batch_outcome o;
    /* 2 s after the failure: the replacement waits until 10 s have passed */
    run(job, pods, 1, T0 + 12, &o);
    cr_assert_eq(o.ncreate, 0);
    cr_assert_eq(o.requeue_after_ns, 8 * SEC);
    cr_assert_eq(st_int(job, "failed"), 1);
    ty_batch_outcome_free(&o);
    run(job, pods, 1, T0 + 20, &o);
    cr_assert_eq(o.ncreate, 1);
    ty_batch_outcome_free(&o);
    /* a second failure: over backoffLimit 1 */
    pods[1] = pod("b", "Failed", 1, 25, -1);
    run(job, pods, 2, T0 + 26, &o);
    cr_assert_eq(o.ncreate, 0);
    cr_assert_str_eq(cond_reason(job, "FailureTarget"), "BackoffLimitExceeded");
    cr_assert_str_eq(cond_reason(job, "Failed"), "BackoffLimitExceeded");
    cr_assert_str_eq(json_string_value(json_object_get(cond(job, "Failed"), "message")),
                     "Job has reached the specified backoff limit");
    cr_assert_null(json_object_get(json_object_get(job, "status"), "completionTime"));
    cr_assert(o.event_warning);
    ty_batch_outcome_free(&o);
    free_pods(pods, 2);
    json_decref(job);
}

Test(batch, second_failure_doubles_the_back_off)
{
    ty_batch_set_pod_backoff(10000);
    json_t *job = job_with("\"backoffLimit\":5");
    json_t *pods[2] = {pod("a", "Failed", 1, 10, -1), pod("b", "Failed", 1, 30, -1)};
    ty_batch_outcome o;
    run(job, pods, 2, T0 + 31, &o);
    cr_assert_eq(o.ncreate, 0);
    cr_assert_eq(o.requeue_after_ns, 19 * SEC);
    ty_batch_outcome_free(&o);
    free_pods(pods, 2);
    json_decref(job);
}

Test(batch, pod_failure_policy_rules_in_order)
{
    json_t *job = job_with(
        "\"backoffLimit\":0,\"podFailurePolicy\":{\"rules\":["
        "{\"action\":\"Ignore\",\"onPodConditions\":[{\"type\":\"DisruptionTarget\"}]},"
        "{\"action\":\"Count\",\"onExitCodes\":{\"operator\":\"In\",\"values\":[3]}},"
        "{\"action\":\"FailJob\",\"onExitCodes\":{\"containerName\":\"main\","
        "\"operator\":\"NotIn\",\"values\":[1,2,3]}}]}");
    char *msg;
    json_t *p = pod("p", "Failed", 3, 1, -1);
    cr_assert_eq(ty_batch_judge_pod(job, p, &msg), TY_BATCH_COUNT);
    cr_assert_null(msg);
    json_decref(p);
    p = pod("p", "Failed", 9, 1, -1);
    cr_assert_eq(ty_batch_judge_pod(job, p, &msg), TY_BATCH_FAIL_JOB);
    cr_assert_str_eq(msg, "Container main for pod default/p failed with exit code 9 matching "
                          "FailJob rule at index 2");
    free(msg);
    /* a disruption (preemption, eviction) is ignored, whatever the exit code */
    json_object_set_new(json_object_get(p, "status"), "conditions",
                        json_pack("[{s:s,s:s}]", "type", "DisruptionTarget", "status", "True"));
    cr_assert_eq(ty_batch_judge_pod(job, p, &msg), TY_BATCH_IGNORE);
    json_t *pods[1] = {p};
    ty_batch_outcome o;
    ty_batch_set_pod_backoff(10000);
    run(job, pods, 1, T0 + 2, &o); /* 1 s after it ended */
    cr_assert_eq(st_int(job, "failed"), 0);
    cr_assert_null(cond(job, "FailureTarget"));
    cr_assert_eq(o.ncreate, 1); /* an ignored failure is replaced without back-off */
    ty_batch_outcome_free(&o);
    json_decref(p);
    json_decref(job);
}

/* Cases of Kubernetes' TestMatchPodFailurePolicy. */
Test(batch, pod_failure_policy_edge_cases)
{
    char *msg;
    /* unknown actions and operators skip their rule */
    json_t *job = job_with("\"podFailurePolicy\":{\"rules\":["
                           "{\"action\":\"FailJob\",\"onExitCodes\":{\"operator\":\"In\","
                           "\"values\":[2,3]}}]}");
    json_t *rules = json_object_get(json_object_get(json_object_get(job, "spec"),
                                                    "podFailurePolicy"), "rules");
    json_array_insert_new(rules, 0, json_pack("{s:s,s:{s:s,s:[i]}}", "action", "Unknown",
                                              "onExitCodes", "operator", "In", "values", 2));
    json_array_insert_new(rules, 1, json_pack("{s:s,s:{s:s,s:[i]}}", "action", "Ignore",
                                              "onExitCodes", "operator", "Sometimes", "values", 2));
    json_t *p = pod("mypod", "Failed", 2, 1, -1);
    cr_assert_eq(ty_batch_judge_pod(job, p, &msg), TY_BATCH_FAIL_JOB);
    cr_assert_str_eq(msg, "Container main for pod default/mypod failed with exit code 2 matching "
                          "FailJob rule at index 2");
    free(msg);
    json_decref(p);
    json_decref(job);
    /* successful containers match no requirement, NotIn [0] matches any failure */
    job = job_with("\"podFailurePolicy\":{\"rules\":[{\"action\":\"FailJob\",\"onExitCodes\":{"
                   "\"operator\":\"NotIn\",\"values\":[111]}}]}");
    p = pod("mypod", "Failed", 111, 1, -1);
    json_array_append_new(json_object_get(json_object_get(p, "status"), "containerStatuses"),
                          json_pack("{s:s,s:{s:{s:i}}}", "name", "side", "state", "terminated",
                                    "exitCode", 0));
    cr_assert_eq(ty_batch_judge_pod(job, p, &msg), TY_BATCH_COUNT);
    json_decref(p);
    json_decref(job);
    /* an onPodConditions pattern matches its status only */
    job = job_with("\"podFailurePolicy\":{\"rules\":[{\"action\":\"Ignore\",\"onPodConditions\":[{"
                   "\"type\":\"DisruptionTarget\",\"status\":\"False\"}]},"
                   "{\"action\":\"FailJob\",\"onPodConditions\":[{\"type\":\"DisruptionTarget\"}]}]}");
    p = pod("mypod", "Failed", 1, 1, -1);
    json_object_set_new(json_object_get(p, "status"), "conditions",
                        json_pack("[{s:s,s:s}]", "type", "DisruptionTarget", "status", "True"));
    cr_assert_eq(ty_batch_judge_pod(job, p, &msg), TY_BATCH_FAIL_JOB);
    cr_assert_str_eq(msg, "Pod default/mypod has condition DisruptionTarget matching FailJob rule "
                          "at index 1");
    free(msg);
    json_object_set_new(json_object_get(p, "status"), "conditions",
                        json_pack("[{s:s,s:s}]", "type", "DisruptionTarget", "status", "False"));
    cr_assert_eq(ty_batch_judge_pod(job, p, &msg), TY_BATCH_IGNORE);
    json_decref(p);
    json_decref(job);
}

Test(batch, deadline_fails_and_is_requeued_until_then)
{
    json_t *job = job_with("\"activeDeadlineSeconds\":30");
    ty_batch_outcome o;
    run(job, NULL, 0, T0, &o);
    cr_assert_eq(o.requeue_after_ns, 30 * SEC);
    ty_batch_outcome_free(&o);
    json_t *pods[1] = {pod("a", "Running", 0, 0, -1)};
    run(job, pods, 1, T0 + 31, &o);
    cr_assert_str_eq(cond_reason(job, "FailureTarget"), "DeadlineExceeded");
    cr_assert_null(cond(job, "Failed")); /* its pod must go first */
    cr_assert_eq(o.ndelete, 1);
    cr_assert_eq(st_int(job, "failed"), 1); /* the pod stopped counts as failed */
    ty_batch_outcome_free(&o);
    run(job, NULL, 0, T0 + 32, &o);
    cr_assert_eq(st_int(job, "failed"), 1); /* and stays counted once it is gone */
    cr_assert_str_eq(json_string_value(json_object_get(cond(job, "Failed"), "message")),
                     "Job was active longer than specified deadline");
    ty_batch_outcome_free(&o);
    free_pods(pods, 1);
    json_decref(job);
}

Test(batch, suspend_deletes_active_pods_and_resume_resets_start)
{
    json_t *job = job_with("\"suspend\":true");
    ty_batch_outcome o;
    run(job, NULL, 0, T0, &o);
    cr_assert_eq(o.ncreate, 0);
    cr_assert_str_eq(cond_reason(job, "Suspended"), "JobSuspended");
    cr_assert_null(json_object_get(json_object_get(job, "status"), "startTime"));
    ty_batch_outcome_free(&o);
    json_object_set_new(json_object_get(job, "spec"), "suspend", json_false());
    run(job, NULL, 0, T0 + 5, &o);
    cr_assert_eq(o.ncreate, 1);
    const json_t *c = cond(job, "Suspended");
    cr_assert_str_eq(json_string_value(json_object_get(c, "status")), "False");
    cr_assert_str_eq(json_string_value(json_object_get(c, "reason")), "JobResumed");
    cr_assert_str_eq(o.event_reason, "Resumed");
    ty_batch_outcome_free(&o);
    /* suspended while running: the pod goes */
    json_object_set_new(json_object_get(job, "spec"), "suspend", json_true());
    json_t *pods[1] = {pod("a", "Running", 0, 0, -1)};
    run(job, pods, 1, T0 + 9, &o);
    cr_assert_eq(o.ndelete, 1);
    cr_assert_eq(st_int(job, "active"), 0);
    cr_assert_eq(st_int(job, "terminating"), 1);
    ty_batch_outcome_free(&o);
    free_pods(pods, 1);
    json_decref(job);
}

Test(batch, on_failure_counts_container_restarts)
{
    json_t *job = job_with("\"backoffLimit\":2");
    json_object_set_new(json_object_get(json_object_get(json_object_get(job, "spec"), "template"),
                                        "spec"),
                        "restartPolicy", json_string("OnFailure"));
    json_t *p = pod("a", "Running", 0, 0, -1);
    json_t *cs = json_array_get(json_object_get(json_object_get(p, "status"), "containerStatuses"),
                                0);
    json_object_set_new(cs, "restartCount", json_integer(1));
    json_t *pods[1] = {p};
    ty_batch_outcome o;
    run(job, pods, 1, T0 + 1, &o);
    cr_assert_null(cond(job, "FailureTarget"));
    ty_batch_outcome_free(&o);
    json_object_set_new(cs, "restartCount", json_integer(2));
    run(job, pods, 1, T0 + 2, &o);
    cr_assert_str_eq(cond_reason(job, "FailureTarget"), "BackoffLimitExceeded");
    cr_assert_eq(o.ndelete, 1);
    ty_batch_outcome_free(&o);
    json_decref(p);
    json_decref(job);
}

Test(batch, ttl_deletes_a_finished_job_when_due)
{
    json_t *job = job_with("\"ttlSecondsAfterFinished\":100");
    json_t *pods[1] = {pod("a", "Succeeded", 0, 1, -1)};
    ty_batch_outcome o;
    run(job, pods, 1, T0 + 2, &o);
    cr_assert_not_null(cond(job, "Complete"));
    ty_batch_outcome_free(&o);
    run(job, pods, 1, T0 + 50, &o);
    cr_assert(!o.delete_job);
    cr_assert_eq(o.requeue_after_ns, 52 * SEC);
    ty_batch_outcome_free(&o);
    run(job, pods, 1, T0 + 102, &o);
    cr_assert(o.delete_job);
    ty_batch_outcome_free(&o);
    free_pods(pods, 1);
    json_decref(job);
}

Test(batch, indexed_makes_one_pod_per_pending_index)
{
    json_t *job = job_with("\"completionMode\":\"Indexed\",\"completions\":5,\"parallelism\":2");
    /* index 0 done, index 1 running, and a duplicate of 1 */
    json_t *pods[3] = {pod("a", "Succeeded", 0, 1, 0), pod("b", "Running", 0, 0, 1),
                       pod("c", "Running", 0, 0, 1)};
    ty_batch_outcome o;
    run(job, pods, 3, T0 + 2, &o);
    cr_assert_eq(o.ndelete, 1);
    cr_assert_str_eq(o.delete_pods[0], "c");
    cr_assert_eq(o.ncreate, 1);
    cr_assert_eq(o.create[0], 2);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(job, "status"),
                                                       "completedIndexes")),
                     "0");
    cr_assert_eq(st_int(job, "succeeded"), 1);
    ty_batch_outcome_free(&o);
    free_pods(pods, 3);
    json_decref(job);
}

Test(batch, index_failures_fail_the_job_when_all_ended)
{
    ty_batch_set_pod_backoff(10);
    json_t *job = job_with("\"completionMode\":\"Indexed\",\"completions\":2,\"parallelism\":2,"
                           "\"backoffLimitPerIndex\":0");
    json_t *pods[2] = {pod("a", "Failed", 1, 1, 0), pod("b", "Running", 0, 0, 1)};
    ty_batch_outcome o;
    run(job, pods, 2, T0 + 5, &o);
    cr_assert_eq(o.ncreate, 0); /* index 0 failed for good */
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(job, "status"),
                                                       "failedIndexes")),
                     "0");
    cr_assert_null(cond(job, "FailureTarget"));
    ty_batch_outcome_free(&o);
    json_decref(pods[1]);
    pods[1] = pod("b", "Succeeded", 0, 6, 1);
    run(job, pods, 2, T0 + 7, &o);
    cr_assert_str_eq(cond_reason(job, "Failed"), "FailedIndexes");
    ty_batch_outcome_free(&o);
    free_pods(pods, 2);
    json_decref(job);
}

Test(batch, max_failed_indexes)
{
    json_t *job = job_with("\"completionMode\":\"Indexed\",\"completions\":3,\"parallelism\":3,"
                           "\"backoffLimitPerIndex\":0,\"maxFailedIndexes\":0");
    json_t *pods[1] = {pod("a", "Failed", 1, 1, 2)};
    ty_batch_outcome o;
    run(job, pods, 1, T0 + 5, &o);
    cr_assert_str_eq(cond_reason(job, "Failed"), "MaxFailedIndexesExceeded");
    ty_batch_outcome_free(&o);
    free_pods(pods, 1);
    json_decref(job);
}

Test(batch, pods_carry_index_owner_and_env)
{
    json_t *job = job_with("\"completionMode\":\"Indexed\",\"completions\":3,"
                           "\"backoffLimitPerIndex\":2");
    json_t *p = ty_batch_pod(job, "j-1-abcde", 1, 1);
    json_t *meta = json_object_get(p, "metadata");
    cr_assert_str_eq(json_string_value(json_object_get(meta, "generateName")), "j-1-");
    cr_assert_str_eq(json_string_value(json_object_get(meta, "name")), "j-1-abcde");
    json_t *ann = json_object_get(meta, "annotations");
    cr_assert_str_eq(json_string_value(json_object_get(ann, TY_BATCH_COMPLETION_INDEX)), "1");
    cr_assert_str_eq(json_string_value(json_object_get(ann, TY_BATCH_INDEX_FAILURE_COUNT)), "1");
    json_t *ref = json_array_get(json_object_get(meta, "ownerReferences"), 0);
    cr_assert(json_is_true(json_object_get(ref, "controller")));
    cr_assert_str_eq(json_string_value(json_object_get(ref, "uid")), "u-1");
    json_t *spec = json_object_get(p, "spec");
    cr_assert_str_eq(json_string_value(json_object_get(spec, "hostname")), "j-1");
    json_t *env = json_object_get(json_array_get(json_object_get(spec, "containers"), 0), "env");
    json_t *e = json_array_get(env, json_array_size(env) - 1);
    cr_assert_str_eq(json_string_value(json_object_get(e, "name")), "JOB_COMPLETION_INDEX");
    cr_assert_str_eq(json_string_value(json_object_get(e, "value")), "1");
    json_decref(p);
    json_decref(job);
}

Test(batch, success_policy_ends_an_indexed_job_early)
{
    json_t *job = job_with("\"completionMode\":\"Indexed\",\"completions\":4,\"parallelism\":4,"
                           "\"successPolicy\":{\"rules\":[{\"succeededIndexes\":\"0-1\"},"
                           "{\"succeededCount\":2}]}");
    json_t *pods[3] = {pod("a", "Succeeded", 0, 1, 0), pod("b", "Running", 0, 0, 1),
                       pod("c", "Running", 0, 0, 2)};
    ty_batch_outcome o;
    run(job, pods, 3, T0 + 2, &o);
    cr_assert_null(cond(job, "SuccessCriteriaMet")); /* one of the rules' indexes, not two */
    cr_assert_eq(o.ncreate, 1);                      /* index 3 */
    ty_batch_outcome_free(&o);
    json_decref(pods[2]);
    pods[2] = pod("c", "Succeeded", 0, 3, 2);
    run(job, pods, 3, T0 + 4, &o);
    /* indexes 0 and 2: rule 0 wants 0 and 1; rule 1 two of any */
    cr_assert_str_eq(cond_reason(job, "SuccessCriteriaMet"), "SuccessPolicy");
    cr_assert_str_eq(json_string_value(json_object_get(cond(job, "SuccessCriteriaMet"),
                                                       "message")),
                     "Matched rules at index 1");
    cr_assert_eq(o.ncreate, 0);
    cr_assert_eq(o.ndelete, 1);
    cr_assert_str_eq(o.delete_pods[0], "b");
    cr_assert_null(cond(job, "Complete"));
    ty_batch_outcome_free(&o);
    /* once b is gone: Complete with the policy's reason, b not counted as failed */
    json_t *left[2] = {pods[0], pods[2]};
    run(job, left, 2, T0 + 5, &o);
    cr_assert_str_eq(cond_reason(job, "Complete"), "SuccessPolicy");
    cr_assert_eq(st_int(job, "failed"), 0);
    cr_assert_eq(st_int(job, "succeeded"), 2);
    ty_batch_outcome_free(&o);
    free_pods(pods, 3);
    json_decref(job);
}

Test(batch, success_policy_rules_are_validated)
{
    static const char *const want[] = {
        "spec.successPolicy.rules[0]: Required value: at least one of succeededCount or "
        "succeededIndexes must be specified",
        "spec.successPolicy.rules[1].succeededIndexes: Invalid value: \"3-1\": error parsing "
        "succeededIndexes",
        "spec.successPolicy.rules[2].succeededIndexes: Invalid value: \"0,5\": too large: must "
        "be less than completions 4",
        "spec.successPolicy.rules[3].succeededCount: Invalid value: 2: must be less than or "
        "equal to 1 (the number of indexes in the specified succeededIndexes field)",
        NULL};
    expect_errors("\"completionMode\":\"Indexed\",\"completions\":4,\"successPolicy\":{\"rules\":["
                  "{},{\"succeededIndexes\":\"3-1\"},{\"succeededIndexes\":\"0,5\"},"
                  "{\"succeededIndexes\":\"2\",\"succeededCount\":2}]},"
                  "\"template\":{\"spec\":{\"restartPolicy\":\"Never\","
                  "\"containers\":[{\"name\":\"main\"}]}}",
                  want);
    static const char *const want2[] = {
        "spec.successPolicy: Invalid value: \"object\": requires indexed completion mode", NULL};
    expect_errors("\"successPolicy\":{\"rules\":[{\"succeededCount\":1}]},"
                  "\"template\":{\"spec\":{\"restartPolicy\":\"Never\","
                  "\"containers\":[{\"name\":\"main\"}]}}",
                  want2);
}

Test(batch, update_keeps_what_kubernetes_keeps)
{
    json_t *old = job_with("\"completions\":2");
    json_t *next = json_deep_copy(old);
    json_object_set_new(json_object_get(next, "spec"), "completions", json_integer(3));
    json_object_set_new(json_object_get(next, "spec"), "ttlSecondsAfterFinished", json_integer(5));
    ty_field_errors errs = TY_FIELD_ERRORS_INIT;
    cr_assert_eq(ty_api_check_update(next, old, &errs), -1);
    cr_assert_eq(errs.count, 1);
    cr_assert_str_eq(errs.items[0].path, "spec.completions");
    cr_assert_str_eq(errs.items[0].msg, "Invalid value: 3: field is immutable");
    ty_field_errors_free(&errs);
    /* the template changes only while suspended (how Kueue places a queued job) */
    json_object_set_new(json_object_get(next, "spec"), "completions", json_integer(2));
    json_t *pod = json_object_get(json_object_get(json_object_get(next, "spec"), "template"),
                                  "spec");
    json_object_set_new(pod, "nodeSelector", json_pack("{s:s}", "a", "b"));
    cr_assert_eq(ty_api_check_update(next, old, &errs), -1);
    cr_assert_str_eq(errs.items[0].path, "spec.template");
    ty_field_errors_free(&errs);
    json_object_set_new(json_object_get(old, "spec"), "suspend", json_true());
    cr_assert_eq(ty_api_check_update(next, old, &errs), 0);
    ty_field_errors_free(&errs);
    json_decref(next);
    json_decref(old);
}
