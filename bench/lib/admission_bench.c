/* The admission controller (controllers/admission.h) over an in-memory store with N pending
 * Workloads (bench/admission.sh runs it, once against this tree and once against a baseline).
 *
 *   admission_bench N [R]
 *
 * The cluster: 4 nodes of 8 GPUs, one flavor, one ClusterQueue of 8 GPUs, one LocalQueue; N
 * Workloads of 4 pods x 4 GPUs each (16 GPUs: none fits the quota, so all stay pending, and
 * every pass sees all of them). Prints, after the first pass has settled:
 *   - the first pass (every Workload new to the controller);
 *   - a pass after one new Workload (R times, median): what a job created through the API
 *     costs the loop once thousands wait;
 *   - a pass after a change that concerns no Workload (a namespace label; R times, median).
 * For each, one line "label|pass ms|loop busy ms|passes": the controller's own time for its
 * last pass (trainyard_admission_pass_seconds; 0 when no pass ran), the loop's busy time until
 * it is idle again (the passes plus the status writes they make), and the number of passes
 * (the mean over the R repetitions); the times are medians. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "base/error.h"
#include "controllers/admission.h"
#include "store/store.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static double metric(ty_admission *a, const char *name)
{
    char *m = ty_admission_metrics(a);
    double v = -1;
    char pat[128];
    snprintf(pat, sizeof pat, "\n%s ", name);
    const char *p = m ? strstr(m, pat) : NULL;
    if (p)
        v = strtod(p + strlen(pat), NULL);
    free(m);
    return v;
}

static void create(ty_store *s, const char *resource, const char *text)
{
    json_error_t je;
    json_t *obj = json_loads(text, 0, &je);
    if (!obj) {
        fprintf(stderr, "bad fixture: %s: %s\n", je.text, text);
        exit(1);
    }
    ty_error err = TY_ERROR_INIT;
    if (ty_store_create(s, resource, obj, NULL, &err) < 0) {
        fprintf(stderr, "create %s: %s\n", resource, err.msg);
        exit(1);
    }
    json_decref(obj);
}

static void create_workload(ty_store *s, int i)
{
    char text[1024];
    snprintf(text, sizeof text,
             "{\"metadata\":{\"name\":\"wl-%06d\",\"namespace\":\"ml\"},\"spec\":{\"queueName\":"
             "\"main\",\"priority\":%d,\"podSets\":[{\"name\":\"worker\",\"count\":4,\"template\":"
             "{\"spec\":{\"containers\":[{\"name\":\"c\",\"resources\":{\"limits\":"
             "{\"nvidia.com/gpu\":\"4\",\"cpu\":\"2\",\"memory\":\"4Gi\"}}}]}}}]}}",
             i, i % 7);
    create(s, "workloads", text);
}

typedef struct {
    double busy_ms, pass_ms;
    int passes;
} outcome;

/* Runs the loop until no pass has run for 300 ms plus 5x the last pass (passes are batched
 * after a change, by 4x the last pass): how long the loop was busy, how many passes ran, and
 * the last one's time (0 when none ran). */
static outcome settle(uv_loop_t *loop, ty_admission *a)
{
    outcome o = {0};
    double p0 = metric(a, "trainyard_admission_passes_total");
    p0 = p0 < 0 ? 0 : p0;
    double last_change = now_ms();
    double seen = p0;
    for (;;) {
        double last = metric(a, "trainyard_admission_pass_seconds"); /* -1 before a pass */
        double window = 300 + 5 * (last > 0 ? last : 0) * 1e3;
        if (now_ms() - last_change >= window)
            break;
        double t0 = now_ms();
        int more = uv_run(loop, UV_RUN_NOWAIT);
        double t1 = now_ms();
        double p = metric(a, "trainyard_admission_passes_total");
        p = p < 0 ? 0 : p;
        if (p != seen) {
            o.busy_ms += t1 - t0;
            seen = p;
            last_change = t1;
        }
        if (!more)
            break;
        struct timespec nap = {0, 200000};
        nanosleep(&nap, NULL);
    }
    o.passes = (int)(seen - p0);
    o.pass_ms = o.passes ? metric(a, "trainyard_admission_pass_seconds") * 1e3 : 0;
    return o;
}

static int compare_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

static void report(const char *what, outcome *o, int r)
{
    double busy[r], pass[r], passes = 0;
    for (int i = 0; i < r; i++) {
        busy[i] = o[i].busy_ms;
        pass[i] = o[i].pass_ms;
        passes += o[i].passes;
    }
    qsort(busy, (size_t)r, sizeof *busy, compare_double);
    qsort(pass, (size_t)r, sizeof *pass, compare_double);
    /* label|pass ms|loop busy ms|passes (mean): bench/admission.sh puts two runs side by side */
    printf("%s|%.2f|%.2f|%.1f\n", what, pass[r / 2], busy[r / 2], passes / r);
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 1000;
    int r = argc > 2 ? atoi(argv[2]) : 10;
    if (n < 1 || r < 1) {
        fprintf(stderr, "usage: admission_bench N [R]\n");
        return 2;
    }
    uv_loop_t loop;
    uv_loop_init(&loop);
    ty_store *s = ty_store_new();
    ty_error err = TY_ERROR_INIT;
    ty_store_ensure_namespace(s, "default", &err);
    create(s, "namespaces", "{\"metadata\":{\"name\":\"ml\",\"labels\":{\"team\":\"ml\"}}}");
    create(s, "resourceflavors", "{\"metadata\":{\"name\":\"gpu\"},\"spec\":{}}");
    create(s, "clusterqueues",
           "{\"metadata\":{\"name\":\"cq\"},\"spec\":{\"namespaceSelector\":{},"
           "\"resourceGroups\":[{\"coveredResources\":[\"cpu\",\"memory\",\"nvidia.com/gpu\"],"
           "\"flavors\":[{\"name\":\"gpu\",\"resources\":[{\"name\":\"cpu\",\"nominalQuota\":"
           "\"64\"},{\"name\":\"memory\",\"nominalQuota\":\"256Gi\"},{\"name\":"
           "\"nvidia.com/gpu\",\"nominalQuota\":\"8\"}]}]}]}}");
    create(s, "localqueues",
           "{\"metadata\":{\"name\":\"main\",\"namespace\":\"ml\"},\"spec\":{\"clusterQueue\":"
           "\"cq\"}}");
    for (int i = 0; i < 4; i++) {
        char text[512];
        snprintf(text, sizeof text,
                 "{\"metadata\":{\"name\":\"node-%d\"},\"status\":{\"allocatable\":{\"cpu\":"
                 "\"32\",\"memory\":\"128Gi\",\"nvidia.com/gpu\":\"8\"}}}",
                 i);
        create(s, "nodes", text);
    }
    for (int i = 0; i < n; i++)
        create_workload(s, i);
    ty_admission *a = ty_admission_new(&loop, s, NULL);
    outcome first = settle(&loop, a);
        report("first pass (all new):", &first, 1);
    outcome *o = calloc((size_t)r, sizeof *o);
    for (int i = 0; i < r; i++) {
        create_workload(s, n + i);
        o[i] = settle(&loop, a);
    }
    report("after one new workload:", o, r);
    for (int i = 0; i < r; i++) {
        char text[256];
        snprintf(text, sizeof text,
                 "{\"metadata\":{\"name\":\"other-%d\"},\"spec\":{}}", i);
        create(s, "namespaces", text);
        o[i] = settle(&loop, a);
    }
    report("after an unrelated change:", o, r);
    free(o);
    ty_admission_free(a);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    ty_store_free(s);
    return 0;
}
