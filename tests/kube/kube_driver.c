/* A test driver for the Kubernetes client (src/kube): tests/e2e/test_kube_client.py runs it
 * against a real `trainyard server`, directly or through a fault-injecting proxy.
 *
 *   kube_driver [--kubeconfig F] [--context C] [--qps Q] [--burst B] [--retries N]
 *               [--page-size N] [--watch-timeout S] MODE ARGS
 *   crud NS          create/get/list/update/patch (merge, strategic, json)/conflict/update with
 *                    retry on conflict/status subresource/delete, on Events (namespaced, core)
 *                    and AdmissionChecks (cluster-scoped, kueue.x-k8s.io, status); exit 0 when
 *                    every answer is as a Kubernetes API server gives it
 *   get NS NAME      one GET of an Event: prints {"status", "tries", "ms", "stats"}
 *   burst N NS NAME  N GETs at once: prints {"ms", "ok", "throttled"}
 *   watch NS         a reflector on the namespace's Events: one JSON line per event
 *                    ({"type", "name", "rv"}), per note ({"note"}) and per sync ({"synced"});
 *                    on SIGTERM prints {"count", "rv", "stats": {...}} and exits
 * Each line goes to stdout, flushed. */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "base/map.h"
#include "base/mem.h"
#include "base/time.h"
#include "kube/client.h"
#include "kube/kubeconfig.h"
#include "kube/reflector.h"

static uv_loop_t *loop;
static ty_kube_client *client;
static int failures;

static const ty_kube_resource events = {"", "v1", "events", true};
static const ty_kube_resource checks = {"kueue.x-k8s.io", "v1beta1", "admissionchecks", false};

/* ---- a blocking call for the driver's sequential steps ---- */

typedef struct answer {
    bool done;
    int status;
    int tries;
    json_t *body;
    char *error;
    char *reason;
} answer;

static void answer_free(answer *a)
{
    json_decref(a->body);
    free(a->error);
    free(a->reason);
    *a = (answer){0};
}

static void on_answer(const ty_kube_result *r, void *arg)
{
    answer *a = arg;
    a->done = true;
    a->status = r->status;
    a->tries = r->tries;
    a->body = json_incref(r->body);
    a->error = r->error ? ty_strdup(r->error) : NULL;
    a->reason = r->reason ? ty_strdup(r->reason) : NULL;
}

static answer call(ty_kube_verb verb, const ty_kube_resource *res, const char *ns,
                   const char *name, const char *sub, json_t *body, ty_kube_patch_type pt)
{
    answer a = {0};
    ty_kube_request req = {verb, res, ns, name, sub, NULL, body, pt};
    ty_kube_do(client, &req, on_answer, &a);
    while (!a.done)
        uv_run(loop, UV_RUN_ONCE);
    return a;
}

static void check(bool ok, const char *step, const answer *a, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void check(bool ok, const char *step, const answer *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *what = ty_vasprintf(fmt, ap);
    va_end(ap);
    if (ok) {
        printf("ok %s\n", step);
    } else {
        failures++;
        printf("FAIL %s: %s (status %d, reason %s, error %s)\n", step, what, a ? a->status : -1,
               a && a->reason ? a->reason : "-", a && a->error ? a->error : "-");
    }
    fflush(stdout);
    free(what);
}

static const char *data_at(json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

static json_t *event_obj(const char *ns, const char *name, const char *message)
{
    return json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:s, s:s, s:s}, s:s, s:s, s:s}", "apiVersion", "v1",
                     "kind", "Event", "metadata", "name", name, "namespace", ns, "involvedObject",
                     "kind", "Pod", "name", "p", "namespace", ns, "reason", "Testing", "message",
                     message, "type", "Normal");
}

/* ---- crud ---- */

static const char *stale_rv;
static int mutate_calls;

static int mutate_message(json_t *obj, void *arg)
{
    (void)arg;
    mutate_calls++;
    json_object_set_new(obj, "message", json_sprintf("rmw %d", mutate_calls));
    /* The first time, write as a client whose read is already old would: the server must
     * answer 409 and the helper read again. */
    if (mutate_calls == 1)
        json_object_set_new(json_object_get(obj, "metadata"), "resourceVersion", json_string(stale_rv));
    return 0;
}

static int mutate_nothing(json_t *obj, void *arg)
{
    (void)obj;
    (void)arg;
    return 1;
}

static void crud(const char *ns)
{
    /* The namespace (cluster-scoped create; 409 AlreadyExists is fine). */
    json_t *nsobj = json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", "v1", "kind", "Namespace",
                              "metadata", "name", ns);
    answer a = call(TY_KUBE_CREATE, &(ty_kube_resource){"", "v1", "namespaces", false}, NULL, NULL,
                    NULL, nsobj, 0);
    check(a.status == 201 || a.status == 409, "namespace", &a, "create");
    answer_free(&a);
    json_decref(nsobj);

    json_t *ev = event_obj(ns, "ev-1", "one");
    a = call(TY_KUBE_CREATE, &events, ns, NULL, NULL, ev, 0);
    check(a.status == 201 && strcmp(data_at(a.body, "message"), "one") == 0, "create", &a, "201");
    answer_free(&a);
    a = call(TY_KUBE_CREATE, &events, ns, NULL, NULL, ev, 0);
    check(a.status == 409 && a.reason && strcmp(a.reason, "AlreadyExists") == 0, "create-again",
          &a, "409 AlreadyExists");
    answer_free(&a);
    json_decref(ev);

    a = call(TY_KUBE_GET, &events, ns, "ev-1", NULL, NULL, 0);
    check(a.status == 200 && strcmp(data_at(a.body, "message"), "one") == 0, "get", &a, "200");
    json_t *got = json_incref(a.body);
    char *rv1 = ty_strdup(
        json_string_value(json_object_get(json_object_get(got, "metadata"), "resourceVersion")));
    answer_free(&a);

    a = call(TY_KUBE_LIST, &events, ns, NULL, NULL, NULL, 0);
    check(a.status == 200 && json_array_size(json_object_get(a.body, "items")) == 1 &&
              json_string_value(json_object_get(json_object_get(a.body, "metadata"), "resourceVersion")),
          "list", &a, "one item and a resourceVersion");
    answer_free(&a);

    json_object_set_new(got, "message", json_string("two"));
    a = call(TY_KUBE_UPDATE, &events, ns, "ev-1", NULL, got, 0);
    check(a.status == 200 && strcmp(data_at(a.body, "message"), "two") == 0, "update", &a, "200");
    answer_free(&a);

    /* got still carries rv1: a second PUT with it is a conflict, surfaced. */
    json_object_set_new(got, "message", json_string("stale"));
    a = call(TY_KUBE_UPDATE, &events, ns, "ev-1", NULL, got, 0);
    check(a.status == 409 && a.reason && strcmp(a.reason, "Conflict") == 0 && a.tries == 1,
          "conflict", &a, "409 Conflict, not retried");
    answer_free(&a);
    json_decref(got);

    json_t *p = json_pack("{s:s}", "message", "merged");
    a = call(TY_KUBE_PATCH, &events, ns, "ev-1", NULL, p, TY_KUBE_PATCH_MERGE);
    check(a.status == 200 && strcmp(data_at(a.body, "message"), "merged") == 0, "patch-merge", &a, "200");
    answer_free(&a);
    json_decref(p);
    p = json_pack("{s:s}", "message", "strategic");
    a = call(TY_KUBE_PATCH, &events, ns, "ev-1", NULL, p, TY_KUBE_PATCH_STRATEGIC);
    check(a.status == 200 && strcmp(data_at(a.body, "message"), "strategic") == 0, "patch-strategic",
          &a, "200");
    answer_free(&a);
    json_decref(p);
    p = json_pack("[{s:s, s:s, s:s}]", "op", "replace", "path", "/message", "value", "json");
    a = call(TY_KUBE_PATCH, &events, ns, "ev-1", NULL, p, TY_KUBE_PATCH_JSON);
    check(a.status == 200 && strcmp(data_at(a.body, "message"), "json") == 0, "patch-json", &a, "200");
    answer_free(&a);
    json_decref(p);

    /* Read-modify-write: the first write is stale (409), the helper reads again and wins. */
    stale_rv = rv1;
    answer r = {0};
    ty_kube_request req = {TY_KUBE_UPDATE, &events, ns, "ev-1", NULL, NULL, NULL, 0};
    ty_kube_update_retry(client, &req, mutate_message, on_answer, &r);
    while (!r.done)
        uv_run(loop, UV_RUN_ONCE);
    check(r.status == 200 && mutate_calls == 2 && r.tries == 2 &&
              strcmp(data_at(r.body, "message"), "rmw 2") == 0,
          "update-retry-on-conflict", &r, "mutate called %d times, %d writes", mutate_calls, r.tries);
    answer_free(&r);
    ty_kube_update_retry(client, &req, mutate_nothing, on_answer, &r);
    while (!r.done)
        uv_run(loop, UV_RUN_ONCE);
    check(r.status == 200 && r.tries == 0, "update-retry-nothing-to-do", &r, "no write");
    answer_free(&r);
    free(rv1);

    /* A cluster-scoped custom resource with a status subresource. */
    json_t *ac = json_pack("{s:s, s:s, s:{s:s}, s:{s:s}}", "apiVersion", "kueue.x-k8s.io/v1beta1",
                           "kind", "AdmissionCheck", "metadata", "name", "kd-check", "spec",
                           "controllerName", "example.com/kd");
    a = call(TY_KUBE_CREATE, &checks, "ignored", NULL, NULL, ac, 0);
    check(a.status == 201, "cluster-create", &a, "201");
    answer_free(&a);
    json_decref(ac);
    json_t *st = json_pack("{s:{s:[{s:s, s:s, s:s, s:s, s:s}]}}", "status", "conditions", "type",
                           "Active", "status", "True", "reason", "Ready", "message", "from the driver",
                           "lastTransitionTime", "2026-01-01T00:00:00Z");
    a = call(TY_KUBE_PATCH, &checks, NULL, "kd-check", "status", st, TY_KUBE_PATCH_MERGE);
    json_t *cond = json_array_get(json_object_get(json_object_get(a.body, "status"), "conditions"), 0);
    check(a.status == 200 && cond && strcmp(data_at(cond, "reason"), "Ready") == 0, "status-subresource",
          &a, "status written");
    answer_free(&a);
    json_decref(st);
    /* A strategic merge patch is for built-in kinds only: the server's 415, surfaced. */
    json_t *sp = json_pack("{s:{s:s}}", "metadata", "labels", "a", "b");
    a = call(TY_KUBE_PATCH, &checks, NULL, "kd-check", NULL, sp, TY_KUBE_PATCH_STRATEGIC);
    check(a.status == 415, "strategic-on-custom", &a, "415");
    answer_free(&a);
    json_decref(sp);
    a = call(TY_KUBE_DELETE, &checks, NULL, "kd-check", NULL, NULL, 0);
    check(a.status == 200, "cluster-delete", &a, "200");
    answer_free(&a);

    a = call(TY_KUBE_DELETE, &events, ns, "ev-1", NULL, NULL, 0);
    check(a.status == 200, "delete", &a, "200");
    answer_free(&a);
    a = call(TY_KUBE_GET, &events, ns, "ev-1", NULL, NULL, 0);
    check(a.status == 404 && a.reason && strcmp(a.reason, "NotFound") == 0, "get-deleted", &a, "404");
    answer_free(&a);
}

/* ---- get / burst ---- */

static json_t *stats_json(void)
{
    ty_kube_client_stats s = ty_kube_client_get_stats(client);
    return json_pack("{s:I, s:I, s:I, s:I}", "sent", (json_int_t)s.sent, "retried",
                     (json_int_t)s.retried, "throttled", (json_int_t)s.throttled, "retry_after",
                     (json_int_t)s.retry_after);
}

static void print_json(json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);
    printf("%s\n", s);
    fflush(stdout);
    free(s);
    json_decref(j);
}

static void get_one(const char *ns, const char *name)
{
    int64_t t0 = ty_time_mono_ns();
    answer a = call(TY_KUBE_GET, &events, ns, name, NULL, NULL, 0);
    print_json(json_pack("{s:i, s:i, s:I, s:s?, s:o}", "status", a.status, "tries", a.tries, "ms",
                         (json_int_t)((ty_time_mono_ns() - t0) / 1000000), "error", a.error,
                         "stats", stats_json()));
    answer_free(&a);
}

static void burst(int n, const char *ns, const char *name)
{
    answer *as = ty_calloc((size_t)n, sizeof *as);
    int64_t t0 = ty_time_mono_ns();
    ty_kube_request req = {TY_KUBE_GET, &events, ns, name, NULL, NULL, NULL, 0};
    for (int i = 0; i < n; i++)
        ty_kube_do(client, &req, on_answer, &as[i]);
    int ok = 0;
    for (int i = 0; i < n; i++) {
        while (!as[i].done)
            uv_run(loop, UV_RUN_ONCE);
        ok += as[i].status == 200;
        answer_free(&as[i]);
    }
    print_json(json_pack("{s:I, s:i, s:o}", "ms", (json_int_t)((ty_time_mono_ns() - t0) / 1000000),
                         "ok", ok, "stats", stats_json()));
    free(as);
}

/* ---- watch ---- */

static ty_reflector *refl;
static uv_signal_t sigterm;

static const char *type_name(ty_reflector_event t)
{
    return t == TY_REFLECTOR_ADDED ? "ADDED" : t == TY_REFLECTOR_MODIFIED ? "MODIFIED" : "DELETED";
}

static void on_event(ty_reflector_event type, json_t *obj, void *arg)
{
    (void)arg;
    json_t *md = json_object_get(obj, "metadata");
    print_json(json_pack("{s:s, s:O?, s:O?, s:O?}", "type", type_name(type), "name",
                         json_object_get(md, "name"), "rv", json_object_get(md, "resourceVersion"),
                         "message", json_object_get(obj, "message")));

}

static void on_note(const char *what, void *arg)
{
    (void)arg;
    print_json(json_pack("{s:s}", "note", what));
}

static void on_synced(void *arg)
{
    (void)arg;
    print_json(json_pack("{s:s}", "synced", ty_reflector_resource_version(refl)));
}

static void on_sigterm(uv_signal_t *s, int sig)
{
    (void)sig;
    ty_reflector_stats st = ty_reflector_get_stats(refl);
    print_json(json_pack("{s:I, s:s, s:{s:I, s:I, s:I, s:I, s:I, s:I}}", "count",
                         (json_int_t)ty_reflector_count(refl), "rv", ty_reflector_resource_version(refl),
                         "stats", "lists", (json_int_t)st.lists, "relists_gone",
                         (json_int_t)st.relists_gone, "watches", (json_int_t)st.watches, "reconnects",
                         (json_int_t)st.reconnects, "bookmarks", (json_int_t)st.bookmarks,
                         "duplicates", (json_int_t)st.duplicates));
    ty_reflector_stop(refl);
    refl = NULL;
    ty_kube_client_close(client);
    client = NULL;
    uv_close((uv_handle_t *)s, NULL);
}

static int watch_ns(const char *ns, int page_size, int watch_timeout_s)
{
    ty_reflector_opts o = {.res = events, .ns = ns, .page_size = page_size,
                           .watch_timeout_s = watch_timeout_s, .on_event = on_event,
                           .on_synced = on_synced, .on_note = on_note};
    ty_error err = TY_ERROR_INIT;
    if (ty_reflector_start(client, loop, &o, &refl, &err) < 0) {
        fprintf(stderr, "kube_driver: %s\n", err.msg);
        return 1;
    }
    uv_signal_init(loop, &sigterm);
    uv_signal_start(&sigterm, on_sigterm, SIGTERM);
    uv_run(loop, UV_RUN_DEFAULT);
    return 0;
}

int main(int argc, char **argv)
{
    ty_kube_config_opts co = {0};
    ty_kube_client_opts opts = {0};
    int page_size = 0, watch_timeout_s = 0;
    static const struct option longopts[] = {
        {"kubeconfig", required_argument, NULL, 'k'}, {"context", required_argument, NULL, 'c'},
        {"qps", required_argument, NULL, 'q'},        {"burst", required_argument, NULL, 'b'},
        {"retries", required_argument, NULL, 'r'},    {"page-size", required_argument, NULL, 'p'},
        {"watch-timeout", required_argument, NULL, 't'},
        {0},
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'k': co.kubeconfig = optarg; break;
        case 'c': co.context = optarg; break;
        case 'q': opts.qps = atof(optarg); break;
        case 'b': opts.burst = atoi(optarg); break;
        case 'r': opts.max_retries = atoi(optarg); break;
        case 'p': page_size = atoi(optarg); break;
        case 't': watch_timeout_s = atoi(optarg); break;
        default: return 2;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "usage: kube_driver [options] crud|get|burst|watch ...\n");
        return 2;
    }
    const char *mode = argv[optind];
    char **args = argv + optind + 1;
    int nargs = argc - optind - 1;
    ty_error err = TY_ERROR_INIT;
    ty_kube_config *cfg = NULL;
    if (ty_kube_config_load(&co, &cfg, &err) < 0) {
        fprintf(stderr, "kube_driver: %s\n", err.msg);
        ty_error_clear(&err);
        return 1;
    }
    loop = uv_default_loop();
    if (ty_kube_client_new(loop, cfg, &opts, &client, &err) < 0) {
        fprintf(stderr, "kube_driver: %s\n", err.msg);
        ty_error_clear(&err);
        ty_kube_config_free(cfg);
        return 1;
    }
    int rc = 0;
    if (strcmp(mode, "crud") == 0 && nargs == 1)
        crud(args[0]);
    else if (strcmp(mode, "get") == 0 && nargs == 2)
        get_one(args[0], args[1]);
    else if (strcmp(mode, "burst") == 0 && nargs == 3)
        burst(atoi(args[0]), args[1], args[2]);
    else if (strcmp(mode, "watch") == 0 && nargs == 1)
        rc = watch_ns(args[0], page_size, watch_timeout_s);
    else
        rc = 2, fprintf(stderr, "kube_driver: bad mode or arguments\n");
    if (client)
        ty_kube_client_close(client);
    uv_run(loop, UV_RUN_DEFAULT); /* the client's handles close */
    uv_loop_close(loop);
    ty_kube_config_free(cfg);
    return rc ? rc : failures ? 1 : 0;
}
