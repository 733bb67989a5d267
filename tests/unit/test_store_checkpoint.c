/* The store's WAL is checkpointed by its own thread (store/checkpoint.c), not by the commits:
 * the WAL stays bounded under steady writes, and everything written is there after reopening. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store.h"

static char dir[64];
static char db_path[128];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/ty-ckpt-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(db_path, sizeof db_path, "%s/store.db", dir);
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(store_checkpoint, .init = setup, .fini = teardown);

static long wal_bytes(void)
{
    char p[160];
    snprintf(p, sizeof p, "%s-wal", db_path);
    struct stat st;
    return stat(p, &st) == 0 ? (long)st.st_size : 0;
}

/* 320 objects of 64 KB: 20 MB through a WAL that the thread checkpoints at the writer's
 * pauses once 1000 pages (4 MB) wait; the following write restarts it. Without checkpoints
 * the WAL would hold all of it. */
Test(store_checkpoint, wal_stays_bounded_and_nothing_is_lost)
{
    ty_store *s = NULL;
    ty_error err = TY_ERROR_INIT;
    cr_assert_eq(ty_store_open(db_path, &s, &err), 0);
    char *blob = malloc(64 * 1024 + 1);
    memset(blob, 'x', 64 * 1024);
    blob[64 * 1024] = '\0';
    long max_wal = 0;
    for (int i = 0; i < 320; i++) {
        char name[32];
        snprintf(name, sizeof name, "cm-%03d", i);
        json_t *o = json_pack("{s:s, s:s, s:{s:s}, s:{s:s}}", "apiVersion", "v1", "kind",
                              "ConfigMap", "metadata", "name", name, "data", "blob", blob);
        cr_assert_eq(ty_store_create(s, "configmaps", o, NULL, &err), 0, "create: %s",
                     err.msg ? err.msg : "");
        json_decref(o);
        long w = wal_bytes();
        max_wal = w > max_wal ? w : max_wal;
        if (i % 80 == 79) {
            /* a pause: 1280 pages wait, and the thread checkpoints them (when a slow write
             * looked like a pause, it did so already; then it copies the rest now) */
            uint64_t before = ty_store_checkpoints(s);
            for (int t = 0; t < 200 && ty_store_checkpoints(s) == before; t++)
                usleep(10 * 1000);
        }
    }
    free(blob);
    cr_assert_lt(max_wal, 16L * 1024 * 1024, "the WAL grew to %ld bytes", max_wal);
    cr_assert_gt(ty_store_checkpoints(s), 2);
    ty_store_free(s);

    cr_assert_eq(ty_store_open(db_path, &s, &err), 0);
    json_t *all = ty_store_list(s, "configmaps", "default");
    cr_assert_eq(json_array_size(all), 320);
    json_decref(all);
    ty_store_free(s);
}

/* Writes that never pause (one small commit after another, as back-to-back creates make):
 * ~12,000 pages through the WAL. The thread checkpoints once 4 marks (16 MB) wait, and the
 * writer copies the short rest after it so that the WAL restarts: the WAL stays below the
 * bound where the writer checkpoints everything itself (8 marks, 32 MB), and there are a few
 * checkpoints, each an fsync of the database, not one per commit. */
Test(store_checkpoint, wal_restarts_under_writes_that_never_pause)
{
    ty_store *s = NULL;
    ty_error err = TY_ERROR_INIT;
    cr_assert_eq(ty_store_open(db_path, &s, &err), 0);
    char blob[2049];
    memset(blob, 'y', 2048);
    blob[2048] = '\0';
    long max_wal = 0;
    for (int i = 0; i < 4000; i++) {
        char name[32];
        snprintf(name, sizeof name, "cm-%04d", i % 500);
        json_t *o = json_pack("{s:s, s:s, s:{s:s}, s:{s:s, s:i}}", "apiVersion", "v1", "kind",
                              "ConfigMap", "metadata", "name", name, "data", "blob", blob,
                              "i", i);
        json_t *cur = ty_store_get(s, "configmaps", "default", name);
        if (cur) {
            json_object_set(json_object_get(o, "metadata"), "resourceVersion",
                            json_object_get(json_object_get(cur, "metadata"), "resourceVersion"));
            cr_assert_eq(ty_store_update(s, "configmaps", o, NULL, &err), 0, "update: %s",
                         err.msg ? err.msg : "");
            json_decref(cur);
        } else {
            cr_assert_eq(ty_store_create(s, "configmaps", o, NULL, &err), 0, "create: %s",
                         err.msg ? err.msg : "");
        }
        json_decref(o);
        long w = wal_bytes(); /* a restarted WAL keeps its file's length */
        max_wal = w > max_wal ? w : max_wal;
    }
    cr_assert_lt(max_wal, 34L * 1024 * 1024, "the WAL grew to %ld bytes", max_wal);
    cr_assert_lt(ty_store_checkpoints(s), 40, "%llu checkpoints",
                 (unsigned long long)ty_store_checkpoints(s));
    ty_store_free(s);
}
