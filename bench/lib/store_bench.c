/* The store's cost with 10,000 PyTorchJobs (bench/store.sh runs it).
 *   store_bench populate DB N   stores N defaulted copies of examples/fashion-mnist's job
 *   store_bench load DB         reopens DB; prints RSS and load time beside baselines:
 *                               the raw JSON size, SQLite alone reading every row, and
 *                               jansson alone parsing every row. */
#include <malloc.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api.h"
#include "api/manifest.h"
#include "base/time.h"
#include "store/store.h"

static double now_s(void) { return (double)ty_time_mono_ns() / 1e9; }

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "re");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb;
}

static size_t heap_bytes(void) { return mallinfo2().uordblks; }

static int populate(const char *db, int n)
{
    ty_error err = TY_ERROR_INIT;
    ty_manifest *m = NULL;
    if (ty_manifest_load("examples/fashion-mnist/pytorchjob.yaml", &m, &err) < 0) {
        fprintf(stderr, "store_bench: %s\n", err.msg);
        return 1;
    }
    json_t *job = m->docs[0].obj;
    ty_field_errors errs = {0};
    if (ty_api_admit(m, job, &errs) < 0) {
        fprintf(stderr, "store_bench: the example does not admit\n");
        return 1;
    }
    ty_field_errors_free(&errs);
    ty_store *s = NULL;
    if (ty_store_open(db, &s, &err) < 0) {
        fprintf(stderr, "store_bench: %s\n", err.msg);
        return 1;
    }
    double t0 = now_s();
    for (int i = 0; i < n; i++) {
        char name[64];
        snprintf(name, sizeof name, "fashion-mnist-%05d", i);
        json_object_set_new(json_object_get(job, "metadata"), "name", json_string(name));
        if (ty_store_create(s, "pytorchjobs", job, NULL, &err) < 0) {
            fprintf(stderr, "store_bench: %s\n", err.msg);
            return 1;
        }
    }
    double dt = now_s() - t0;
    char *one = json_dumps(job, JSON_COMPACT);
    printf("populate: %d PyTorchJobs (%zu bytes of JSON each) in %.1f s: %.0f durable creates/s "
           "(one fsync'd transaction each)\n",
           n, strlen(one), dt, n / dt);
    printf("populate: writer RSS %.1f MB (with the watch history)\n", rss_kb() / 1024.0);
    free(one);
    ty_store_free(s);
    ty_manifest_free(m);
    return 0;
}

static int load(const char *db)
{
    /* Baseline 1: SQLite alone reads every row. */
    sqlite3 *h;
    sqlite3_stmt *q;
    if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(h, "SELECT resource, namespace, name, rv, json FROM objects", -1, &q,
                           NULL) != SQLITE_OK) {
        fprintf(stderr, "store_bench: %s: %s\n", db, sqlite3_errmsg(h));
        return 1;
    }
    double t0 = now_s();
    size_t rows = 0, bytes = 0;
    while (sqlite3_step(q) == SQLITE_ROW) {
        bytes += (size_t)sqlite3_column_bytes(q, 4);
        rows++;
    }
    double t_sqlite = now_s() - t0;
    sqlite3_reset(q);
    /* Baseline 2: SQLite + jansson parsing every row (and dropping it). */
    t0 = now_s();
    while (sqlite3_step(q) == SQLITE_ROW) {
        json_t *o = json_loadb((const char *)sqlite3_column_blob(q, 4),
                               (size_t)sqlite3_column_bytes(q, 4), 0, NULL);
        json_decref(o);
    }
    double t_parse = now_s() - t0;
    sqlite3_finalize(q);
    sqlite3_close(h);
    malloc_trim(0);

    long rss0 = rss_kb();
    size_t heap0 = heap_bytes();
    t0 = now_s();
    ty_store *s = NULL;
    ty_error err = TY_ERROR_INIT;
    if (ty_store_open(db, &s, &err) < 0) {
        fprintf(stderr, "store_bench: %s\n", err.msg);
        return 1;
    }
    double t_open = now_s() - t0;
    long rss1 = rss_kb();
    size_t heap1 = heap_bytes();
    ty_store_item *items;
    size_t njobs = ty_store_list_items(s, "pytorchjobs", NULL, &items);
    free(items);

    printf("load: %zu rows, %.1f MB of JSON (%.0f bytes/object)\n", rows, bytes / 1048576.0,
           (double)bytes / (double)rows);
    printf("%-44s %10s %12s\n", "", "time", "memory");
    printf("%-44s %8.0f ms %9.1f MB\n", "baseline: raw JSON text", 0.0, bytes / 1048576.0);
    printf("%-44s %8.0f ms %12s\n", "baseline: SQLite reads every row", t_sqlite * 1e3, "-");
    printf("%-44s %8.0f ms %12s\n", "baseline: SQLite + jansson parse, discarded", t_parse * 1e3,
           "-");
    printf("%-44s %8.0f ms %9.1f MB heap\n", "ty_store_open (texts + index)",
           t_open * 1e3, (heap1 - heap0) / 1048576.0);
    printf("store: %zu pytorchjobs; %.1f KB of heap per object (%.1fx its JSON text)\n", njobs,
           (heap1 - heap0) / 1024.0 / (double)rows,
           (double)(heap1 - heap0) / (double)bytes);
    printf("RSS: %.1f MB before open, %.1f MB after (target < 64 MB); reopen %.0f ms "
           "(target < 1000 ms)\n",
           rss0 / 1024.0, rss1 / 1024.0, t_open * 1e3);
    ty_store_free(s);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "populate") == 0)
        return populate(argv[2], atoi(argv[3]));
    if (argc == 3 && strcmp(argv[1], "load") == 0)
        return load(argv[2]);
    fprintf(stderr, "usage: store_bench populate DB N | load DB\n");
    return 2;
}
