#include <criterion/criterion.h>
#include <string.h>

#include "api/table.h"
#include "base/time.h"

/* 2026-01-01T00:10:00Z; objects are created at 00:00:00, so every Age is 10m. */
static int64_t NOW;

static void init_now(void)
{
    cr_assert_eq(ty_time_parse_rfc3339("2026-01-01T00:10:00Z", &NOW), 0);
}

TestSuite(table, .init = init_now);

static json_t *J(const char *s)
{
    json_error_t e;
    json_t *v = json_loads(s, 0, &e);
    cr_assert(v, "bad test json: %s: %s", e.text, s);
    return v;
}

/* Builds a one-row table and returns it; *cells points into it. */
static json_t *one(const char *resource, const char *obj, const char *include, json_t **cells)
{
    json_t *arr = json_array();
    json_array_append_new(arr, J(obj));
    json_t *t = ty_table_build(resource, arr, include, NOW);
    json_decref(arr);
    cr_assert_str_eq(json_string_value(json_object_get(t, "kind")), "Table");
    cr_assert_str_eq(json_string_value(json_object_get(t, "apiVersion")), "meta.k8s.io/v1");
    json_t *row = json_array_get(json_object_get(t, "rows"), 0);
    *cells = json_object_get(row, "cells");
    cr_assert_eq(json_array_size(*cells), json_array_size(json_object_get(t, "columnDefinitions")),
                 "one cell per column");
    return t;
}

static const char *cell(json_t *cells, size_t i)
{
    const char *s = json_string_value(json_array_get(cells, i));
    cr_assert(s, "cell %zu is not a string", i);
    return s;
}

static void assert_columns(json_t *t, const char *const *names, const int *prio)
{
    json_t *cols = json_object_get(t, "columnDefinitions");
    size_t n = 0;
    while (names[n])
        n++;
    cr_assert_eq(json_array_size(cols), n);
    for (size_t i = 0; i < n; i++) {
        json_t *c = json_array_get(cols, i);
        cr_assert_str_eq(json_string_value(json_object_get(c, "name")), names[i]);
        cr_assert_eq(json_integer_value(json_object_get(c, "priority")), prio[i], "%s", names[i]);
        cr_assert(json_string_value(json_object_get(c, "type")));
    }
}

#define META(name) "\"metadata\":{\"name\":\"" name "\",\"namespace\":\"default\"," \
                   "\"creationTimestamp\":\"2026-01-01T00:00:00Z\",\"uid\":\"u1\"}"

/* A pod with the given status JSON (the members of "status"). */
static char *pod(const char *extra_spec, const char *status)
{
    char *s;
    cr_assert(asprintf(&s, "{" META("p") ",\"spec\":{\"containers\":[{\"name\":\"a\"},"
                       "{\"name\":\"b\"}]%s},\"status\":{%s}}", extra_spec, status) > 0);
    return s;
}

static char *pod_status(const char *extra_spec, const char *status)
{
    char *p = pod(extra_spec, status);
    json_t *cells;
    json_t *t = one("pods", p, NULL, &cells);
    char *r = strdup(cell(cells, 2));
    json_decref(t);
    free(p);
    return r;
}

#define RUNNING(n) "{\"name\":\"" n "\",\"ready\":true,\"restartCount\":0," \
                   "\"state\":{\"running\":{\"startedAt\":\"2026-01-01T00:00:01Z\"}}}"

static void expect_status(const char *spec, const char *status, const char *want)
{
    char *got = pod_status(spec, status);
    cr_assert_str_eq(got, want, "status {%s}", status);
    free(got);
}

Test(table, pod_columns_and_running)
{
    char *p = pod("", "\"phase\":\"Running\",\"podIP\":\"10.0.0.5\",\"podIPs\":[{\"ip\":"
                      "\"10.0.0.5\"}],\"containerStatuses\":[" RUNNING("a") "," RUNNING("b") "]");
    json_t *cells;
    json_t *t = one("pods", p, NULL, &cells);
    static const char *const names[] = {"Name", "Ready", "Status", "Restarts", "Age", "IP",
                                        "Node", "Nominated Node", "Readiness Gates", NULL};
    static const int prio[] = {0, 0, 0, 0, 0, 1, 1, 1, 1};
    assert_columns(t, names, prio);
    cr_assert_str_eq(cell(cells, 0), "p");
    cr_assert_str_eq(cell(cells, 1), "2/2");
    cr_assert_str_eq(cell(cells, 2), "Running");
    cr_assert_str_eq(cell(cells, 3), "0");
    cr_assert_str_eq(cell(cells, 4), "10m");
    cr_assert_str_eq(cell(cells, 5), "10.0.0.5");
    cr_assert_str_eq(cell(cells, 6), "<none>");
    cr_assert_str_eq(cell(cells, 7), "<none>");
    cr_assert_str_eq(cell(cells, 8), "<none>");
    json_decref(t);
    free(p);
}

Test(table, pod_reasons)
{
    expect_status("", "\"phase\":\"Pending\"", "Pending");
    expect_status("", "\"phase\":\"Succeeded\",\"containerStatuses\":["
                      "{\"name\":\"a\",\"state\":{\"terminated\":{\"exitCode\":0,\"reason\":"
                      "\"Completed\"}}},{\"name\":\"b\",\"state\":{\"terminated\":{\"exitCode\":0,"
                      "\"reason\":\"Completed\"}}}]",
                  "Completed");
    expect_status("", "\"phase\":\"Failed\",\"containerStatuses\":["
                      "{\"name\":\"a\",\"state\":{\"terminated\":{\"exitCode\":1,\"reason\":"
                      "\"Error\"}}}," RUNNING("b") "]",
                  "Error");
    expect_status("", "\"phase\":\"Running\",\"containerStatuses\":[" RUNNING("a") ","
                      "{\"name\":\"b\",\"state\":{\"terminated\":{\"exitCode\":137,\"reason\":"
                      "\"OOMKilled\"}}}]",
                  "OOMKilled");
    expect_status("", "\"phase\":\"Running\",\"containerStatuses\":[" RUNNING("a") ","
                      "{\"name\":\"b\",\"restartCount\":3,\"state\":{\"waiting\":{\"reason\":"
                      "\"CrashLoopBackOff\"}}}]",
                  "CrashLoopBackOff");
    /* the first container's state shows when several are not running */
    expect_status("", "\"phase\":\"Running\",\"containerStatuses\":["
                      "{\"name\":\"a\",\"state\":{\"waiting\":{\"reason\":\"ContainerCreating\"}}},"
                      "{\"name\":\"b\",\"state\":{\"terminated\":{\"exitCode\":2}}}]",
                  "ContainerCreating");
    expect_status("", "\"phase\":\"Running\",\"containerStatuses\":["
                      "{\"name\":\"a\",\"state\":{\"terminated\":{\"exitCode\":2}}}]",
                  "ExitCode:2");
    expect_status("", "\"phase\":\"Running\",\"containerStatuses\":["
                      "{\"name\":\"a\",\"state\":{\"terminated\":{\"exitCode\":0,\"signal\":9}}}]",
                  "Signal:9");
    /* Completed with a container still running and ready: Running or NotReady */
    expect_status("", "\"phase\":\"Running\",\"conditions\":[{\"type\":\"Ready\",\"status\":"
                      "\"False\"}],\"containerStatuses\":[" RUNNING("a") ",{\"name\":\"b\","
                      "\"state\":{\"terminated\":{\"exitCode\":0,\"reason\":\"Completed\"}}}]",
                  "Running");
    expect_status("", "\"phase\":\"Running\",\"containerStatuses\":[" RUNNING("a") ","
                      "{\"name\":\"b\",\"state\":{\"terminated\":{\"exitCode\":0,\"reason\":"
                      "\"Completed\"}}}]",
                  "NotReady");
    expect_status("", "\"phase\":\"Pending\",\"reason\":\"Evicted\"", "Evicted");
    expect_status("", "\"phase\":\"Pending\",\"conditions\":[{\"type\":\"PodScheduled\","
                      "\"status\":\"False\",\"reason\":\"SchedulingGated\"}]",
                  "SchedulingGated");
}

Test(table, pod_init_containers)
{
    const char *spec = ",\"initContainers\":[{\"name\":\"i1\"},{\"name\":\"i2\"}]";
    expect_status(spec, "\"phase\":\"Pending\",\"initContainerStatuses\":["
                        "{\"name\":\"i1\",\"state\":{\"terminated\":{\"exitCode\":0}}},"
                        "{\"name\":\"i2\",\"state\":{\"running\":{}}}]",
                  "Init:1/2");
    expect_status(spec, "\"phase\":\"Pending\",\"initContainerStatuses\":["
                        "{\"name\":\"i1\",\"state\":{\"waiting\":{\"reason\":\"PodInitializing\"}}}]",
                  "Init:0/2");
    expect_status(spec, "\"phase\":\"Pending\",\"initContainerStatuses\":["
                        "{\"name\":\"i1\",\"state\":{\"waiting\":{\"reason\":\"CrashLoopBackOff\"}}}]",
                  "Init:CrashLoopBackOff");
    expect_status(spec, "\"phase\":\"Failed\",\"initContainerStatuses\":["
                        "{\"name\":\"i1\",\"state\":{\"terminated\":{\"exitCode\":3}}}]",
                  "Init:ExitCode:3");
    expect_status(spec, "\"phase\":\"Failed\",\"initContainerStatuses\":["
                        "{\"name\":\"i1\",\"state\":{\"terminated\":{\"exitCode\":1,\"reason\":"
                        "\"Error\"}}}]",
                  "Init:Error");
    /* a sidecar (restartPolicy Always) that started counts toward Ready and the total */
    char *p = pod(",\"initContainers\":[{\"name\":\"s\",\"restartPolicy\":\"Always\"}]",
                  "\"phase\":\"Running\",\"initContainerStatuses\":[{\"name\":\"s\",\"started\":"
                  "true,\"ready\":true,\"state\":{\"running\":{}}}],\"containerStatuses\":["
                  RUNNING("a") "," RUNNING("b") "]");
    json_t *cells;
    json_t *t = one("pods", p, NULL, &cells);
    cr_assert_str_eq(cell(cells, 1), "3/3");
    cr_assert_str_eq(cell(cells, 2), "Running");
    json_decref(t);
    free(p);
}

Test(table, pod_terminating_and_restarts)
{
    char *p;
    cr_assert(asprintf(&p, "{\"metadata\":{\"name\":\"p\",\"creationTimestamp\":"
                           "\"2026-01-01T00:00:00Z\",\"deletionTimestamp\":\"2026-01-01T00:09:00Z\"},"
                           "\"spec\":{\"containers\":[{\"name\":\"a\"}],\"nodeName\":\"n1\","
                           "\"readinessGates\":[{\"conditionType\":\"x/ok\"}]},\"status\":{"
                           "\"phase\":\"Running\",\"conditions\":[{\"type\":\"x/ok\",\"status\":"
                           "\"True\"}],\"containerStatuses\":[{\"name\":\"a\",\"ready\":true,"
                           "\"restartCount\":2,\"lastState\":{\"terminated\":{\"exitCode\":1,"
                           "\"finishedAt\":\"2026-01-01T00:09:55Z\"}},\"state\":{\"running\":{}}}]}}") > 0);
    json_t *cells;
    json_t *t = one("pods", p, NULL, &cells);
    cr_assert_str_eq(cell(cells, 1), "1/1");
    cr_assert_str_eq(cell(cells, 2), "Terminating");
    cr_assert_str_eq(cell(cells, 3), "2 (5s ago)");
    cr_assert_str_eq(cell(cells, 5), "<none>");
    cr_assert_str_eq(cell(cells, 6), "n1");
    cr_assert_str_eq(cell(cells, 8), "1/1");
    json_decref(t);
    free(p);
    /* a terminal pod being deleted keeps its reason */
    cr_assert(asprintf(&p, "{\"metadata\":{\"name\":\"p\",\"deletionTimestamp\":"
                           "\"2026-01-01T00:09:00Z\"},\"spec\":{\"containers\":[{\"name\":\"a\"}]},"
                           "\"status\":{\"phase\":\"Succeeded\"}}") > 0);
    t = one("pods", p, NULL, &cells);
    cr_assert_str_eq(cell(cells, 2), "Succeeded");
    json_decref(t);
    free(p);
    /* restarts without a time print bare */
    p = pod("", "\"phase\":\"Running\",\"containerStatuses\":[{\"name\":\"a\",\"restartCount\":4,"
                "\"ready\":true,\"state\":{\"running\":{}}}]");
    t = one("pods", p, NULL, &cells);
    cr_assert_str_eq(cell(cells, 3), "4");
    cr_assert_str_eq(cell(cells, 1), "1/2");
    json_decref(t);
    free(p);
}

Test(table, pod_row_conditions)
{
    char *p = pod("", "\"phase\":\"Succeeded\"");
    json_t *cells;
    json_t *t = one("pods", p, NULL, &cells);
    json_t *c = json_object_get(json_array_get(json_object_get(t, "rows"), 0), "conditions");
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(c, 0), "type")), "Completed");
    json_decref(t);
    free(p);
}

Test(table, include_object_modes)
{
    const char *o = "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\"," META("ns") ","
                    "\"status\":{\"phase\":\"Active\"}}";
    json_t *cells;
    json_t *t = one("namespaces", o, NULL, &cells);
    json_t *obj = json_object_get(json_array_get(json_object_get(t, "rows"), 0), "object");
    cr_assert_str_eq(json_string_value(json_object_get(obj, "kind")), "PartialObjectMetadata");
    cr_assert_str_eq(json_string_value(json_object_get(obj, "apiVersion")), "meta.k8s.io/v1");
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(obj, "metadata"), "uid")),
                     "u1");
    cr_assert_null(json_object_get(obj, "status"));
    json_decref(t);

    t = one("namespaces", o, "Metadata", &cells);
    obj = json_object_get(json_array_get(json_object_get(t, "rows"), 0), "object");
    cr_assert_str_eq(json_string_value(json_object_get(obj, "kind")), "PartialObjectMetadata");
    json_decref(t);

    t = one("namespaces", o, "Object", &cells);
    obj = json_object_get(json_array_get(json_object_get(t, "rows"), 0), "object");
    cr_assert_str_eq(json_string_value(json_object_get(obj, "kind")), "Namespace");
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(obj, "status"), "phase")),
                     "Active");
    json_decref(t);

    t = one("namespaces", o, "None", &cells);
    obj = json_object_get(json_array_get(json_object_get(t, "rows"), 0), "object");
    cr_assert(json_is_null(obj));
    cr_assert_str_eq(cell(cells, 0), "ns");
    cr_assert_str_eq(cell(cells, 1), "Active");
    cr_assert_str_eq(cell(cells, 2), "10m");
    json_decref(t);
}

Test(table, jobs)
{
    json_t *cells;
    json_t *t = one("pytorchjobs", "{" META("j") ",\"status\":{\"conditions\":["
                    "{\"type\":\"Created\",\"status\":\"True\"},{\"type\":\"Running\","
                    "\"status\":\"True\"}]}}", NULL, &cells);
    static const char *const names[] = {"Name", "State", "Age", NULL};
    static const int prio[] = {0, 0, 0};
    assert_columns(t, names, prio);
    cr_assert_str_eq(cell(cells, 0), "j");
    cr_assert_str_eq(cell(cells, 1), "Running");
    cr_assert_str_eq(cell(cells, 2), "10m");
    json_decref(t);
    t = one("tfjobs", "{" META("t") "}", NULL, &cells);
    assert_columns(t, names, prio);
    cr_assert_str_eq(cell(cells, 1), "");
    json_decref(t);
}

Test(table, services)
{
    json_t *cells;
    json_t *t = one("services", "{" META("s") ",\"spec\":{\"clusterIP\":\"None\",\"ports\":["
                    "{\"port\":23456,\"protocol\":\"TCP\"},{\"port\":53,\"protocol\":\"UDP\"}],"
                    "\"selector\":{\"b\":\"2\",\"a\":\"1\"}}}", NULL, &cells);
    static const char *const names[] = {"Name", "Type", "Cluster-IP", "External-IP", "Port(s)",
                                        "Age", "Selector", NULL};
    static const int prio[] = {0, 0, 0, 0, 0, 0, 1};
    assert_columns(t, names, prio);
    cr_assert_str_eq(cell(cells, 1), "ClusterIP");
    cr_assert_str_eq(cell(cells, 2), "None");
    cr_assert_str_eq(cell(cells, 3), "<none>");
    cr_assert_str_eq(cell(cells, 4), "23456/TCP,53/UDP");
    cr_assert_str_eq(cell(cells, 6), "a=1,b=2");
    json_decref(t);
    t = one("services", "{" META("s") ",\"spec\":{\"type\":\"NodePort\",\"clusterIP\":\"10.96.0.9\","
            "\"ports\":[{\"port\":80,\"nodePort\":30080}]}}", NULL, &cells);
    cr_assert_str_eq(cell(cells, 4), "80:30080/TCP");
    cr_assert_str_eq(cell(cells, 6), "<none>");
    json_decref(t);
    t = one("services", "{" META("s") ",\"spec\":{\"type\":\"LoadBalancer\"}}", NULL, &cells);
    cr_assert_str_eq(cell(cells, 3), "<pending>");
    cr_assert_str_eq(cell(cells, 4), "<none>");
    json_decref(t);
}

Test(table, nodes)
{
    json_t *cells;
    json_t *t = one("nodes", "{\"metadata\":{\"name\":\"n1\",\"creationTimestamp\":"
                    "\"2026-01-01T00:00:00Z\",\"labels\":{\"node-role.kubernetes.io/worker\":\"\","
                    "\"node-role.kubernetes.io/control-plane\":\"\"}},\"spec\":{\"unschedulable\":"
                    "true},\"status\":{\"conditions\":[{\"type\":\"MemoryPressure\",\"status\":"
                    "\"False\"},{\"type\":\"Ready\",\"status\":\"True\"}],\"addresses\":["
                    "{\"type\":\"InternalIP\",\"address\":\"192.168.1.2\"}],\"nodeInfo\":{"
                    "\"kubeletVersion\":\"v1.32.0-trainyard\",\"osImage\":\"Debian\","
                    "\"kernelVersion\":\"6.1\",\"containerRuntimeVersion\":\"trainyard://0.1\"}}}",
                    NULL, &cells);
    static const char *const names[] = {"Name", "Status", "Roles", "Age", "Version",
                                        "Internal-IP", "External-IP", "OS-Image",
                                        "Kernel-Version", "Container-Runtime", NULL};
    static const int prio[] = {0, 0, 0, 0, 0, 1, 1, 1, 1, 1};
    assert_columns(t, names, prio);
    cr_assert_str_eq(cell(cells, 1), "Ready,SchedulingDisabled");
    cr_assert_str_eq(cell(cells, 2), "control-plane,worker");
    cr_assert_str_eq(cell(cells, 4), "v1.32.0-trainyard");
    cr_assert_str_eq(cell(cells, 5), "192.168.1.2");
    cr_assert_str_eq(cell(cells, 6), "<none>");
    cr_assert_str_eq(cell(cells, 9), "trainyard://0.1");
    json_decref(t);
    t = one("nodes", "{\"metadata\":{\"name\":\"n2\"},\"status\":{\"conditions\":[{\"type\":"
            "\"Ready\",\"status\":\"Unknown\"}]}}", NULL, &cells);
    cr_assert_str_eq(cell(cells, 1), "NotReady");
    cr_assert_str_eq(cell(cells, 2), "<none>");
    cr_assert_str_eq(cell(cells, 3), "<unknown>");
    cr_assert_str_eq(cell(cells, 7), "<unknown>");
    json_decref(t);
    t = one("nodes", "{\"metadata\":{\"name\":\"n3\"}}", NULL, &cells);
    cr_assert_str_eq(cell(cells, 1), "Unknown");
    json_decref(t);
}

Test(table, events)
{
    json_t *cells;
    json_t *t = one("events", "{\"metadata\":{\"name\":\"e1\"},\"involvedObject\":{\"kind\":"
                    "\"PyTorchJob\",\"name\":\"j\"},\"reason\":\"PyTorchJobRunning\",\"type\":"
                    "\"Normal\",\"message\":\" job is running \\n\",\"firstTimestamp\":"
                    "\"2026-01-01T00:00:00Z\",\"lastTimestamp\":\"2026-01-01T00:09:00Z\","
                    "\"count\":3,\"source\":{\"component\":\"pytorchjob-controller\"}}",
                    NULL, &cells);
    static const char *const names[] = {"Last Seen", "Type", "Reason", "Object", "Subobject",
                                        "Source", "Message", "First Seen", "Count", "Name", NULL};
    static const int prio[] = {0, 0, 0, 0, 1, 1, 0, 1, 1, 1};
    assert_columns(t, names, prio);
    cr_assert_str_eq(cell(cells, 0), "60s");
    cr_assert_str_eq(cell(cells, 1), "Normal");
    cr_assert_str_eq(cell(cells, 2), "PyTorchJobRunning");
    cr_assert_str_eq(cell(cells, 3), "pytorchjob/j");
    cr_assert_str_eq(cell(cells, 5), "pytorchjob-controller");
    cr_assert_str_eq(cell(cells, 6), "job is running");
    cr_assert_str_eq(cell(cells, 7), "10m");
    cr_assert_eq(json_integer_value(json_array_get(cells, 8)), 3);
    cr_assert_str_eq(cell(cells, 9), "e1");
    json_decref(t);
    /* no lastTimestamp: first seen stands in; count 0 reads 1 */
    t = one("events", "{\"metadata\":{\"name\":\"e2\"},\"involvedObject\":{\"kind\":\"Node\"},"
            "\"eventTime\":\"2026-01-01T00:09:30.000000Z\"}", NULL, &cells);
    cr_assert_str_eq(cell(cells, 0), "30s");
    cr_assert_str_eq(cell(cells, 3), "node");
    cr_assert_eq(json_integer_value(json_array_get(cells, 8)), 1);
    json_decref(t);
}

Test(table, default_and_empty)
{
    json_t *cells;
    json_t *t = one("resourceflavors", "{" META("c") "}", NULL, &cells);
    static const char *const names[] = {"Name", "Age", NULL};
    static const int prio[] = {0, 0};
    assert_columns(t, names, prio);
    cr_assert_str_eq(cell(cells, 0), "c");
    cr_assert_str_eq(cell(cells, 1), "10m");
    json_decref(t);
    json_t *empty = json_array();
    t = ty_table_build("pods", empty, NULL, NOW);
    cr_assert_eq(json_array_size(json_object_get(t, "rows")), 0);
    cr_assert_eq(json_array_size(json_object_get(t, "columnDefinitions")), 9);
    json_decref(t);
    json_decref(empty);
}

/* kubectl get configmaps,secrets: keys counted (data and binaryData), a Secret's type. */
Test(table, configmaps_and_secrets)
{
    json_t *cells;
    json_t *t = one("configmaps", "{" META("c") ",\"data\":{\"a\":\"1\",\"b\":\"2\"},"
                    "\"binaryData\":{\"c\":\"AA==\"}}", NULL, &cells);
    static const char *const cm_names[] = {"Name", "Data", "Age", NULL};
    static const int prio[] = {0, 0, 0, 0};
    assert_columns(t, cm_names, prio);
    cr_assert_str_eq(cell(cells, 0), "c");
    cr_assert_eq(json_integer_value(json_array_get(cells, 1)), 3);
    json_decref(t);
    t = one("secrets", "{" META("s") ",\"type\":\"kubernetes.io/tls\",\"data\":{\"tls.crt\":"
            "\"YQ==\",\"tls.key\":\"Yg==\"}}", NULL, &cells);
    static const char *const secret_names[] = {"Name", "Type", "Data", "Age", NULL};
    assert_columns(t, secret_names, prio);
    cr_assert_str_eq(cell(cells, 1), "kubernetes.io/tls");
    cr_assert_eq(json_integer_value(json_array_get(cells, 2)), 2);
    cr_assert_str_eq(cell(cells, 3), "10m");
    json_decref(t);
}

/* The Table written as text (lists of thousands) says what the built one says: rows from
 * what ty_table_row_source() finds in the object's text, the metadata copied as text. */
static void assert_text_equals_built(const char *resource, const char *obj_text,
                                     const char *include)
{
    json_t *obj = J(obj_text);
    json_t *arr = json_array();
    json_array_append(arr, obj);
    json_t *built = ty_table_build(resource, arr, include, NOW);
    json_object_set_new(built, "metadata", J("{\"resourceVersion\":\"7\"}"));
    json_decref(arr);

    char *stored = json_dumps(obj, JSON_COMPACT);
    json_t *part = ty_table_row_source(resource, stored, strlen(stored));
    cr_assert_not_null(part);
    free(stored);
    char *meta = json_dumps(json_object_get(obj, "metadata"), JSON_COMPACT);
    ty_buf b = TY_BUF_INIT;
    ty_table_text_begin(&b, resource, "{\"resourceVersion\":\"7\"}");
    ty_table_text_row(&b, true, resource, part, meta, strlen(meta), include, NOW);
    ty_table_text_row(&b, false, resource, part, meta, strlen(meta), include, NOW);
    ty_buf_adds(&b, "]}");
    json_t *text = J(b.data);
    json_array_append(json_object_get(built, "rows"),
                      json_array_get(json_object_get(built, "rows"), 0));
    cr_assert(json_equal(text, built), "%s: text %s", resource, b.data);
    ty_buf_free(&b);
    free(meta);
    json_decref(text);
    json_decref(built);
    json_decref(part);
    json_decref(obj);
}

Test(table, text_rows_equal_built_rows)
{
    const char *job = "{\"apiVersion\":\"kubeflow.org/v1\",\"kind\":\"PyTorchJob\"," META("j")
                      ",\"spec\":{\"pytorchReplicaSpecs\":{}},\"status\":{\"conditions\":["
                      "{\"type\":\"Created\",\"status\":\"True\"}]}}";
    assert_text_equals_built("pytorchjobs", job, NULL);
    /* the last condition's type, and none at all */
    assert_text_equals_built("pytorchjobs",
                             "{\"apiVersion\":\"kubeflow.org/v1\",\"kind\":\"PyTorchJob\","
                             META("j2") ",\"status\":{\"conditions\":[{\"type\":\"Created\"},"
                             "{\"type\":\"Run\\u006eing\",\"message\":\"a \\\"b\\\"\"}]}}",
                             "Metadata");
    assert_text_equals_built("pytorchjobs", "{" META("j3") ",\"status\":{}}", "Metadata");
    assert_text_equals_built("pytorchjobs", job, "Metadata");
    assert_text_equals_built("tfjobs", "{" META("t") "}", "None");
    char *p = pod("", "\"phase\":\"Succeeded\"");
    assert_text_equals_built("pods", p, "Metadata");
    free(p);
}
