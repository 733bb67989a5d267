/* The Kubernetes client's pure rules (kube/retry.h): the token bucket, back-off with jitter,
 * Retry-After; and request paths (kube/client.h). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "kube/client.h"
#include "kube/kube_int.h"
#include "kube/retry.h"

#define MS 1000000LL
#define S 1000000000LL

Test(kube_retry, bucket_burst_then_rate)
{
    ty_kube_bucket b;
    ty_kube_bucket_init(&b, TY_KUBE_DEFAULT_QPS, TY_KUBE_DEFAULT_BURST, 0);
    for (int i = 0; i < 10; i++)
        cr_assert_eq(ty_kube_bucket_take(&b, 0), 0, "burst token %d", i);
    /* The 11th waits 200 ms (5 QPS), the 12th 400 ms: reservations queue up. */
    cr_assert_eq(ty_kube_bucket_take(&b, 0), 200 * MS);
    cr_assert_eq(ty_kube_bucket_take(&b, 0), 400 * MS);
    /* A second later the two reservations are paid and three more tokens have come. */
    cr_assert_eq(ty_kube_bucket_take(&b, 1 * S), 0);
    cr_assert_eq(ty_kube_bucket_take(&b, 1 * S), 0);
    cr_assert_eq(ty_kube_bucket_take(&b, 1 * S), 0);
    cr_assert_eq(ty_kube_bucket_take(&b, 1 * S), 200 * MS);
    /* Idle for long: the bucket refills to its burst, no further. */
    for (int i = 0; i < 10; i++)
        cr_assert_eq(ty_kube_bucket_take(&b, 100 * S), 0);
    cr_assert_gt(ty_kube_bucket_take(&b, 100 * S), 0);
}

Test(kube_retry, bucket_rate_holds)
{
    ty_kube_bucket b;
    ty_kube_bucket_init(&b, 50, 1, 0);
    /* 1,000 requests sent as soon as allowed take (1000 - burst) / qps seconds. */
    int64_t t = 0;
    for (int i = 0; i < 1000; i++)
        t += ty_kube_bucket_take(&b, t);
    cr_assert(t >= 19980 * MS && t <= 19990 * MS, "%lld", (long long)t);
    ty_kube_bucket_init(&b, -1, 1, 0);
    for (int i = 0; i < 1000; i++)
        cr_assert_eq(ty_kube_bucket_take(&b, 0), 0, "no limit");
}

Test(kube_retry, backoff_doubles_caps_jitters)
{
    ty_kube_backoff b = {100, 1000, 2.0, 0.5};
    cr_assert_eq(ty_kube_backoff_ms(&b, 0, 0), 100);
    cr_assert_eq(ty_kube_backoff_ms(&b, 1, 0), 200);
    cr_assert_eq(ty_kube_backoff_ms(&b, 3, 0), 800);
    cr_assert_eq(ty_kube_backoff_ms(&b, 4, 0), 1000);
    cr_assert_eq(ty_kube_backoff_ms(&b, 60, 0), 1000, "no overflow");
    cr_assert_eq(ty_kube_backoff_ms(&b, 0, 0.5), 125);
    int64_t max = ty_kube_backoff_ms(&b, 60, 0.9999999);
    cr_assert(max >= 1499 && max < 1500, "%lld", (long long)max);
    ty_kube_backoff flat = {10, 10, 1.0, 0.1}; /* client-go's DefaultRetry */
    cr_assert_eq(ty_kube_backoff_ms(&flat, 4, 0), 10);
}

Test(kube_retry, retry_after)
{
    /* 2015-10-21T07:28:00Z */
    const int64_t when = 1445412480;
    cr_assert_eq(ty_kube_retry_after_s("120", 0, 3600), 120);
    cr_assert_eq(ty_kube_retry_after_s(" 3", 0, 3600), 3);
    cr_assert_eq(ty_kube_retry_after_s("0", 0, 3600), 0);
    cr_assert_eq(ty_kube_retry_after_s("99999999999999999999", 0, 60), 60, "capped, no overflow");
    cr_assert_eq(ty_kube_retry_after_s("Wed, 21 Oct 2015 07:28:00 GMT", when - 30, 3600), 30);
    cr_assert_eq(ty_kube_retry_after_s("Wed, 21 Oct 2015 07:28:00 GMT", when + 30, 3600), 0, "past");
    cr_assert_eq(ty_kube_retry_after_s("Wednesday, 21-Oct-15 07:28:00 GMT", when - 5, 3600), 5);
    cr_assert_eq(ty_kube_retry_after_s("Wed Oct 21 07:28:00 2015", when - 7, 3600), 7);
    cr_assert_eq(ty_kube_retry_after_s("soon", 0, 60), -1);
    cr_assert_eq(ty_kube_retry_after_s("12abc", 0, 60), -1);
    cr_assert_eq(ty_kube_retry_after_s("-5", 0, 60), -1);
    cr_assert_eq(ty_kube_retry_after_s(NULL, 0, 60), -1);
}

static bool collect(const char *type, json_t *obj, void *arg)
{
    json_t *names = arg;
    const char *name = json_string_value(json_object_get(json_object_get(obj, "metadata"), "name"));
    json_array_append_new(names, json_sprintf("%s %s", type, name ? name : "-"));
    return json_array_size(names) < 3; /* the third event stops it */
}

/* A watch stream arrives in pieces: only complete events are taken, the rest waits. */
Test(kube_retry, watch_frames)
{
    const char *stream = "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\"}}}\n"
                         "  42 {\"type\":\"ERROR\"}\n" /* not events: skipped */
                         "{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{}}}\n"
                         "{\"type\":\"DELETED\",\"object\":{\"metadata\":{\"name\":\"b\"}}}\n"
                         "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"c\"}}}\n";
    size_t len = strlen(stream);
    json_t *names = json_array();
    /* Cut inside the second event: the first is taken, the cut one waits. */
    const char *second = strstr(stream, "{\"type\":\"BOOKMARK");
    size_t cut = (size_t)(second - stream) + 10;
    size_t used = ty_kube_watch_frames(stream, cut, collect, names);
    cr_assert_eq(used, (size_t)(second - stream));
    cr_assert_eq(json_array_size(names), 1);
    /* The rest: BOOKMARK, then DELETED b, where the callback says stop. */
    size_t used2 = ty_kube_watch_frames(stream + used, len - used, collect, names);
    cr_assert_eq(json_array_size(names), 3);
    cr_assert_str_eq(json_string_value(json_array_get(names, 1)), "BOOKMARK -");
    cr_assert_str_eq(json_string_value(json_array_get(names, 2)), "DELETED b");
    cr_assert(strncmp(stream + used + used2, "\n{\"type\":\"ADDED\"", 16) == 0);
    json_decref(names);
}

Test(kube_retry, paths)
{
    ty_kube_resource pods = {"", "v1", "pods", true};
    ty_kube_resource nodes = {"", "v1", "nodes", false};
    ty_kube_resource jobs = {"kubeflow.org", "v1", "pytorchjobs", true};
    struct {
        ty_kube_request req;
        const char *want;
    } cases[] = {
        {{TY_KUBE_GET, &pods, "ns", "p", NULL, NULL, NULL, 0}, "/api/v1/namespaces/ns/pods/p"},
        {{TY_KUBE_LIST, &pods, NULL, NULL, NULL, "limit=500", NULL, 0}, "/api/v1/pods?limit=500"},
        {{TY_KUBE_LIST, &pods, "ns", "ignored", NULL, NULL, NULL, 0}, "/api/v1/namespaces/ns/pods"},
        {{TY_KUBE_CREATE, &pods, "ns", "p", NULL, NULL, NULL, 0}, "/api/v1/namespaces/ns/pods"},
        {{TY_KUBE_CREATE, &pods, "ns", "p", "binding", NULL, NULL, 0},
         "/api/v1/namespaces/ns/pods/p/binding"},
        {{TY_KUBE_UPDATE, &jobs, "ns", "j", "status", NULL, NULL, 0},
         "/apis/kubeflow.org/v1/namespaces/ns/pytorchjobs/j/status"},
        {{TY_KUBE_DELETE, &nodes, "ns", "n1", NULL, NULL, NULL, 0}, "/api/v1/nodes/n1"},
        {{TY_KUBE_WATCH, &jobs, "", NULL, NULL, "resourceVersion=5", NULL, 0},
         "/apis/kubeflow.org/v1/pytorchjobs?watch=1&resourceVersion=5"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *p = ty_kube_path(&cases[i].req);
        cr_assert_str_eq(p, cases[i].want);
        free(p);
    }
    char *e = ty_kube_escape("app in (a,b)&x=y/z~");
    cr_assert_str_eq(e, "app%20in%20%28a%2Cb%29%26x%3Dy%2Fz~");
    free(e);
}
