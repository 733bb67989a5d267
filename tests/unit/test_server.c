/* The API server: its pure helpers (routing, Status objects, names, CRI log lines) and, over a
 * real loop and socket, pods/log (tail, timestamps, follow until the pod finishes) and watches. */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "base/mem.h"
#include "base/time.h"
#include "server/apiserver.h"
#include "server/server_int.h"
#include "store/store.h"

static bool namespaced(void *ctx, const char *resource)
{
    (void)ctx;
    return strcmp(resource, "pods") == 0 || strcmp(resource, "pytorchjobs") == 0;
}

Test(server, path_parse)
{
    ty_srv_path p;
    cr_assert_eq(ty_srv_path_parse("/api/v1/namespaces/default/pods/x/log", namespaced, NULL, &p), 0);
    cr_assert_str_eq(p.group, "");
    cr_assert_str_eq(p.version, "v1");
    cr_assert_str_eq(p.ns, "default");
    cr_assert_str_eq(p.resource, "pods");
    cr_assert_str_eq(p.name, "x");
    cr_assert_str_eq(p.sub, "log");
    ty_srv_path_free(&p);

    cr_assert_eq(ty_srv_path_parse("/apis/kubeflow.org/v1/pytorchjobs", namespaced, NULL, &p), 0);
    cr_assert_str_eq(p.group, "kubeflow.org");
    cr_assert_null(p.ns);
    cr_assert_str_eq(p.resource, "pytorchjobs");
    cr_assert_null(p.name);
    ty_srv_path_free(&p);

    /* The namespace object itself, and its status. */
    cr_assert_eq(ty_srv_path_parse("/api/v1/namespaces/default/status", namespaced, NULL, &p), 0);
    cr_assert_null(p.ns);
    cr_assert_str_eq(p.resource, "namespaces");
    cr_assert_str_eq(p.name, "default");
    cr_assert_str_eq(p.sub, "status");
    ty_srv_path_free(&p);

    cr_assert_eq(ty_srv_path_parse("/api/v1", namespaced, NULL, &p), 0);
    cr_assert_null(p.resource);
    ty_srv_path_free(&p);

    cr_assert_lt(ty_srv_path_parse("/healthz", namespaced, NULL, &p), 0);
    cr_assert_lt(ty_srv_path_parse("/api/v1/namespaces/a/pods/b/log/extra", namespaced, NULL, &p), 0);
}

Test(server, status_and_causes)
{
    json_t *st = ty_srv_status(404, "NotFound", "pods \"x\" not found",
                               json_pack("{s:s, s:s}", "name", "x", "kind", "pods"));
    json_t *want = json_pack("{s:s, s:s, s:{}, s:s, s:s, s:s, s:i, s:{s:s, s:s}}", "kind",
                             "Status", "apiVersion", "v1", "metadata", "status", "Failure",
                             "message", "pods \"x\" not found", "reason", "NotFound", "code", 404,
                             "details", "name", "x", "kind", "pods");
    cr_assert(json_equal(st, want));
    json_decref(st);
    json_decref(want);

    cr_assert_str_eq(ty_srv_cause_reason("Invalid value: -1: must be"), "FieldValueInvalid");
    cr_assert_str_eq(ty_srv_cause_reason("Required value"), "FieldValueRequired");
    cr_assert_str_eq(ty_srv_cause_reason("Unsupported value: \"x\""), "FieldValueNotSupported");
    cr_assert_str_eq(ty_srv_cause_reason("Forbidden: no"), "FieldValueForbidden");

    ty_field_errors errs = TY_FIELD_ERRORS_INIT;
    ty_buf b = TY_BUF_INIT;
    ty_field_errors_add(&errs, "spec.a", (ty_pos){0, 0}, "Required value");
    ty_srv_errors_text(&errs, &b);
    cr_assert_str_eq(b.data, "spec.a: Required value");
    ty_buf_reset(&b);
    ty_field_errors_add(&errs, "spec.b", (ty_pos){0, 0}, "unknown field \"spec.b\"");
    ty_srv_errors_text(&errs, &b);
    cr_assert_str_eq(b.data, "[spec.a: Required value, unknown field \"spec.b\"]");
    ty_buf_free(&b);
    ty_field_errors_free(&errs);
}

Test(server, names)
{
    cr_assert_null(ty_srv_check_dns1123_subdomain("fashion-mnist.v1"));
    cr_assert_null(ty_srv_check_dns1123_subdomain("a"));
    cr_assert_not_null(ty_srv_check_dns1123_subdomain("Upper"));
    cr_assert_not_null(ty_srv_check_dns1123_subdomain("-a"));
    cr_assert_not_null(ty_srv_check_dns1123_subdomain("a..b"));
    cr_assert_not_null(ty_srv_check_dns1123_subdomain("a."));
    cr_assert_not_null(ty_srv_check_dns1123_subdomain(""));
    cr_assert_null(ty_srv_check_dns1123_label("kube-system"));
    cr_assert_not_null(ty_srv_check_dns1123_label("a.b"));
    char long_name[70];
    memset(long_name, 'a', 64);
    long_name[64] = '\0';
    cr_assert_not_null(ty_srv_check_dns1123_label(long_name));
    cr_assert_null(ty_srv_check_dns1123_subdomain(long_name));
}

/* As Go's strconv.ParseInt(v, 10, 64), which decodes the API server's integer parameters. */
Test(server, integer_query_parameters)
{
    static const struct {
        const char *v;
        int64_t want;
    } ok[] = {{"0", 0}, {"+5", 5}, {"-5", -5}, {"007", 7},
              {"9223372036854775807", INT64_MAX}, {"-9223372036854775808", INT64_MIN}};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        int64_t v = 42;
        cr_expect_eq(ty_srv_query_int("limit", ok[i].v, &v, NULL), 0, "%s", ok[i].v);
        cr_expect_eq(v, ok[i].want, "%s", ok[i].v);
    }
    static const char *const bad[] = {"", "+", "-", "abc", "1s", "0.1", " 1", "1 ", "0x10",
                                      "1_000", "9223372036854775808x"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ty_error err = TY_ERROR_INIT;
        int64_t v = 42;
        cr_expect_lt(ty_srv_query_int("limit", bad[i], &v, &err), 0, "\"%s\"", bad[i]);
        cr_expect_eq(v, 42);
        TY_AUTOFREE char *want = ty_asprintf(
            "limit: strconv.ParseInt: parsing \"%s\": invalid syntax", bad[i]);
        cr_expect_str_eq(err.msg, want);
        ty_error_clear(&err);
    }
    ty_error err = TY_ERROR_INIT;
    int64_t v;
    cr_expect_lt(ty_srv_query_int("tailLines", "9223372036854775808", &v, &err), 0);
    cr_expect_str_eq(err.msg, "tailLines: strconv.ParseInt: parsing \"9223372036854775808\": "
                              "value out of range");
    ty_error_clear(&err);
    /* Clamped where the value becomes milliseconds or nanoseconds. */
    cr_expect_eq(ty_srv_query_int("timeoutSeconds", "9223372036854775807", &v, NULL), 0);
    cr_expect_eq(v, 1000000000);
    cr_expect_eq(ty_srv_query_int("sinceSeconds", "-9223372036854775808", &v, NULL), 0);
    cr_expect_eq(v, -1000000000);
}

static const char *fixed_query(void *ctx, const char *key)
{
    return strcmp(key, (const char *)ctx) == 0 ? "x" : NULL;
}

Test(server, every_integer_parameter_is_checked)
{
    static const char *const keys[] = {"limit", "timeoutSeconds", "gracePeriodSeconds",
                                       "sinceSeconds", "tailLines", "limitBytes"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        ty_error err = TY_ERROR_INIT;
        cr_expect_lt(ty_srv_query_check(fixed_query, (void *)keys[i], &err), 0, "%s", keys[i]);
        cr_expect(err.msg && strncmp(err.msg, keys[i], strlen(keys[i])) == 0, "%s", err.msg);
        ty_error_clear(&err);
    }
    cr_expect_eq(ty_srv_query_check(fixed_query, (void *)"watch", NULL), 0);
}

Test(server, continue_tokens)
{
    TY_AUTOFREE char *tok = ty_srv_continue_encode("default/job-1");
    cr_assert_str_eq(tok, "64656661756c742f6a6f622d31");
    TY_AUTOFREE char *back = ty_srv_continue_decode(tok);
    cr_assert_str_eq(back, "default/job-1");
    TY_AUTOFREE char *upper = ty_srv_continue_decode("2F41");
    cr_assert_str_eq(upper, "/A");
    /* What sscanf("%2x") let through, odd lengths, and a NUL that would cut the key short. */
    static const char *const bad[] = {"6", " 6", "+6", "-1", "0x", "zz", "6100", "00"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_expect_null(ty_srv_continue_decode(bad[i]), "\"%s\"", bad[i]);
    /* By namespace, then name: "a-b/x" comes after "a/y". */
    cr_expect_gt(ty_srv_continue_compare("a-b/x", "a/y"), 0);
    cr_expect_lt(ty_srv_continue_compare("a/y", "a-b/x"), 0);
    cr_expect_eq(ty_srv_continue_compare("a/y", "a/y"), 0);
    cr_expect_lt(ty_srv_continue_compare("a/x", "a/y"), 0);
    cr_expect_gt(ty_srv_continue_compare("a/x", "a"), 0);
    cr_expect_eq(ty_srv_continue_compare("/n", "/n"), 0);
}

Test(server, cri_lines)
{
    const char *line = "2026-11-28T14:06:52.123456789Z stdout P hello ";
    int64_t t;
    bool partial;
    const char *text;
    size_t len;
    cr_assert_eq(ty_srv_cri_parse(line, strlen(line), &t, &partial, &text, &len), 0);
    cr_assert(partial);
    cr_assert_eq(len, 6);
    cr_assert_eq(strncmp(text, "hello ", len), 0);
    const char *empty = "2026-11-28T14:06:52Z stderr F";
    cr_assert_eq(ty_srv_cri_parse(empty, strlen(empty), &t, &partial, &text, &len), 0);
    cr_assert(!partial);
    cr_assert_eq(len, 0);
    const char *bad = "not a cri line";
    cr_assert_lt(ty_srv_cri_parse(bad, strlen(bad), &t, &partial, &text, &len), 0);
    const char *badtag = "2026-11-28T14:06:52Z stdout X y";
    cr_assert_lt(ty_srv_cri_parse(badtag, strlen(badtag), &t, &partial, &text, &len), 0);

    ty_buf b = TY_BUF_INIT;
    int64_t ns;
    cr_assert_eq(ty_time_parse_rfc3339("2026-11-28T14:06:52.120000000Z", &ns), 0);
    ty_srv_format_rfc3339nano(ns, &b);
    cr_assert_str_eq(b.data, "2026-11-28T14:06:52.12Z");
    ty_buf_reset(&b);
    cr_assert_eq(ty_time_parse_rfc3339("2026-11-28T14:06:52Z", &ns), 0);
    ty_srv_format_rfc3339nano(ns, &b);
    cr_assert_str_eq(b.data, "2026-11-28T14:06:52Z");
    ty_buf_free(&b);
}

/* ---------- over a loop ---------- */

typedef struct fixture {
    uv_loop_t loop;
    ty_store *store;
    ty_apiserver *api;
    char log[64];
    int port;
    /* the client thread */
    char *request;
    ty_buf response;
    uv_async_t done;
    int step;
    int finish; /* how the pod's run ends: 0 Succeeded, 1 container terminated, 2 deleted */
    uv_timer_t timer;
    int more_pods;           /* pods q-000, q-001, ... besides p */
    size_t table_page_bytes; /* the server's, 0: its default */
} fixture;

static char *log_path(void *ctx, const json_t *pod, const char *container, bool previous)
{
    fixture *f = ctx;
    (void)pod;
    if (previous || strcmp(container, "main") != 0)
        return NULL;
    return ty_strdup(f->log);
}

static void *client(void *arg)
{
    fixture *f = arg;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)f->port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
        ssize_t n = write(fd, f->request, strlen(f->request));
        (void)n;
        char buf[4096];
        while ((n = read(fd, buf, sizeof(buf))) > 0)
            ty_buf_add(&f->response, buf, (size_t)n);
    }
    close(fd);
    uv_async_send(&f->done);
    return NULL;
}

static void on_done(uv_async_t *a)
{
    fixture *f = a->data;
    ty_apiserver_stop(f->api);
    uv_close((uv_handle_t *)&f->done, NULL);
    uv_close((uv_handle_t *)&f->timer, NULL);
}

static void append(const char *path, const char *text)
{
    FILE *fp = fopen(path, "ae");
    fputs(text, fp);
    fclose(fp);
}

/* While a follow request is open: more lines, then the pod finishes. */
static void on_step(uv_timer_t *t)
{
    fixture *f = t->data;
    if (f->step == 0) {
        append(f->log, "2026-11-28T14:06:53.5Z stdout P par");
        append(f->log, "tial\n2026-11-28T14:06:53.6Z stdout F  joined\n");
    } else if (f->step == 1 && f->finish == 2) {
        cr_assert_eq(ty_store_delete(f->store, "pods", "default", "p", 0, NULL), 0);
    } else if (f->step == 1) {
        json_t *pod = ty_store_get(f->store, "pods", "default", "p");
        json_t *c = json_deep_copy(pod);
        if (f->finish == 0)
            json_object_set_new(c, "status", json_pack("{s:s}", "phase", "Succeeded"));
        else
            json_object_set_new(c, "status",
                                json_pack("{s:s, s:[{s:s, s:{s:{s:i}}}]}", "phase", "Running",
                                          "containerStatuses", "name", "main", "state",
                                          "terminated", "exitCode", 0));
        cr_assert_eq(ty_store_update_status(f->store, "pods", c, NULL, NULL), 0);
        json_decref(c);
        json_decref(pod);
    }
    f->step++;
}

static void run_request(fixture *f, const char *request, bool steps)
{
    uv_loop_init(&f->loop);
    f->store = ty_store_new();
    snprintf(f->log, sizeof(f->log), "/tmp/ty-test-server-%d.log", getpid());
    unlink(f->log);
    append(f->log, "2026-11-28T14:06:52Z stdout F one\n"
                   "2026-11-28T14:06:52.25Z stderr F two\n"
                   "2026-11-28T14:06:53Z stdout F three\n");
    json_t *pod = json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:[{s:s}]}}", "apiVersion", "v1",
                            "kind", "Pod", "metadata", "name", "p", "namespace", "default",
                            "spec", "containers", "name", "main");
    cr_assert_eq(ty_store_create(f->store, "pods", pod, NULL, NULL), 0);
    json_decref(pod);
    for (int i = 0; i < f->more_pods; i++) {
        char name[16];
        snprintf(name, sizeof name, "q-%03d", i);
        pod = json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:[{s:s}]}}", "apiVersion", "v1", "kind",
                        "Pod", "metadata", "name", name, "namespace", "default", "spec",
                        "containers", "name", "main");
        cr_assert_eq(ty_store_create(f->store, "pods", pod, NULL, NULL), 0);
        json_decref(pod);
    }
    ty_apiserver_config cfg = {.loop = &f->loop, .store = f->store, .listen = "127.0.0.1:0",
                               .log_path = log_path, .log_ctx = f,
                               .table_page_bytes = f->table_page_bytes};
    ty_error err = TY_ERROR_INIT;
    cr_assert_eq(ty_apiserver_start(&cfg, &f->api, &err), 0, "%s", err.msg);
    f->port = ty_apiserver_port(f->api);
    cr_assert_gt(f->port, 0);
    f->request = ty_strdup(request);
    ty_buf_init(&f->response);
    uv_async_init(&f->loop, &f->done, on_done);
    f->done.data = f;
    uv_timer_init(&f->loop, &f->timer);
    f->timer.data = f;
    if (steps)
        uv_timer_start(&f->timer, on_step, 300, 300);
    pthread_t th;
    pthread_create(&th, NULL, client, f);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    pthread_join(th, NULL);
    cr_assert_eq(uv_loop_close(&f->loop), 0);
    ty_store_free(f->store);
    unlink(f->log);
    free(f->request);
}

static const char *body_of(const ty_buf *b)
{
    const char *p = strstr(b->data, "\r\n\r\n");
    cr_assert_not_null(p, "no response: %s", b->data);
    return p + 4;
}

Test(server, log_tail_and_timestamps)
{
    fixture f = {0};
    run_request(&f, "GET /api/v1/namespaces/default/pods/p/log?tailLines=2&timestamps=true "
                    "HTTP/1.0\r\n\r\n", false);
    cr_assert(strncmp(f.response.data, "HTTP/1.0 200", 12) == 0 ||
              strncmp(f.response.data, "HTTP/1.1 200", 12) == 0, "%s", f.response.data);
    cr_assert_str_eq(body_of(&f.response),
                     "2026-11-28T14:06:52.25Z two\n2026-11-28T14:06:53Z three\n");
    ty_buf_free(&f.response);
}

Test(server, log_follow_until_the_pod_finishes)
{
    fixture f = {0};
    run_request(&f, "GET /api/v1/namespaces/default/pods/p/log?follow=true HTTP/1.0\r\n\r\n",
                true);
    cr_assert_str_eq(body_of(&f.response), "one\ntwo\nthree\npartial joined\n");
    ty_buf_free(&f.response);
}

Test(server, log_errors)
{
    fixture f = {0};
    run_request(&f, "GET /api/v1/namespaces/default/pods/p/log?container=other HTTP/1.0\r\n\r\n",
                false);
    cr_assert(strstr(f.response.data, " 400 "), "%s", f.response.data);
    cr_assert(strstr(body_of(&f.response), "container other is not valid for pod p"));
    ty_buf_free(&f.response);
}

Test(server, log_follow_until_the_container_terminates)
{
    fixture f = {.finish = 1};
    run_request(&f, "GET /api/v1/namespaces/default/pods/p/log?follow=1&tailLines=1 "
                    "HTTP/1.0\r\n\r\n", true);
    cr_assert_str_eq(body_of(&f.response), "three\npartial joined\n");
    ty_buf_free(&f.response);
}

Test(server, log_follow_until_the_pod_is_deleted)
{
    fixture f = {.finish = 2};
    run_request(&f, "GET /api/v1/namespaces/default/pods/p/log?follow=true&tailLines=0 "
                    "HTTP/1.0\r\n\r\n", true);
    cr_assert_str_eq(body_of(&f.response), "partial joined\n");
    ty_buf_free(&f.response);
}

Test(server, log_limit_bytes)
{
    fixture f = {0};
    run_request(&f, "GET /api/v1/namespaces/default/pods/p/log?limitBytes=6&follow=true "
                    "HTTP/1.0\r\n\r\n", false);
    cr_assert_str_eq(body_of(&f.response), "one\ntw");
    ty_buf_free(&f.response);
}

/* ---------- Tables ---------- */

static json_t *table_request(fixture *f, const char *query)
{
    char request[256];
    snprintf(request, sizeof request,
             "GET /api/v1/namespaces/default/pods%s HTTP/1.0\r\n"
             "Accept: application/json;as=Table;v=v1;g=meta.k8s.io,application/json\r\n\r\n",
             query);
    run_request(f, request, false);
    json_error_t jerr;
    json_t *t = json_loads(body_of(&f->response), 0, &jerr);
    cr_assert_not_null(t, "%s: %s", jerr.text, f->response.data);
    ty_buf_free(&f->response);
    cr_assert_str_eq(json_string_value(json_object_get(t, "kind")), "Table");
    return t;
}

/* kubectl asks for 500 rows a request through a rate limiter of 5 requests a second: a
 * Table is paged by its bytes instead, whatever the limit, with continue tokens that go on
 * from where a page stopped. */
Test(server, tables_are_paged_by_bytes_not_by_limit)
{
    fixture f = {.more_pods = 120};
    json_t *t = table_request(&f, "?limit=5");
    cr_assert_eq(json_array_size(json_object_get(t, "rows")), 121, "one page holds them all");
    cr_assert_null(json_object_get(json_object_get(t, "metadata"), "continue"));
    json_decref(t);

    /* pages of ~4 KB: about 10 rows of ~350 bytes each */
    size_t seen = 0, pages = 0;
    char query[256] = "?limit=500";
    const char *last = "";
    for (;;) {
        fixture g = {.more_pods = 120, .table_page_bytes = 4096};
        t = table_request(&g, query);
        json_t *rows = json_object_get(t, "rows");
        size_t n = json_array_size(rows);
        cr_assert_gt(n, 1);
        cr_assert_lt(n, 30);
        /* in order, none twice */
        json_t *cells = json_object_get(json_array_get(rows, 0), "cells");
        const char *first = json_string_value(json_array_get(cells, 0));
        cr_assert_gt(strcmp(first, last), 0, "%s after %s", first, last);
        seen += n;
        pages++;
        json_t *meta = json_object_get(t, "metadata");
        const char *cont = json_string_value(json_object_get(meta, "continue"));
        if (!cont) {
            json_decref(t);
            break;
        }
        cr_assert_eq(json_integer_value(json_object_get(meta, "remainingItemCount")),
                     (json_int_t)(121 - seen));
        static char last_name[64];
        snprintf(last_name, sizeof last_name, "%s",
                 json_string_value(json_array_get(
                     json_object_get(json_array_get(rows, n - 1), "cells"), 0)));
        last = last_name;
        snprintf(query, sizeof query, "?limit=500&continue=%s", cont);
        json_decref(t);
    }
    cr_assert_eq(seen, 121);
    cr_assert_gt(pages, 5);
}
