/* The SQLite-backed store: what is written survives reopening (and a SIGKILL), a failing SQLite
 * write changes nothing, and the watch history. */
#include <criterion/criterion.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store/store.h"

static char dir[64];
static char db_path[128];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/ty-store-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(db_path, sizeof db_path, "%s/store.db", dir);
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(store_persist, .init = setup, .fini = teardown);

static ty_store *open_store(void)
{
    ty_store *s = NULL;
    ty_error err = TY_ERROR_INIT;
    cr_assert_eq(ty_store_open(db_path, &s, &err), 0, "open: %s", err.msg ? err.msg : "");
    return s;
}

static json_t *cm(const char *name, const char *ns)
{
    json_t *o = json_pack("{s:s, s:s, s:{s:s}, s:{s:i}}", "apiVersion", "v1", "kind",
                          "ConfigMap", "metadata", "name", name, "data", "n", 1);
    if (ns)
        json_object_set_new(json_object_get(o, "metadata"), "namespace", json_string(ns));
    return o;
}

static json_t *create(ty_store *s, const char *resource, json_t *o)
{
    json_t *out = NULL;
    ty_error err = TY_ERROR_INIT;
    cr_assert_eq(ty_store_create(s, resource, o, &out, &err), 0, "create: %s",
                 err.msg ? err.msg : "");
    json_decref(o);
    return out;
}

static const char *meta_s(const json_t *o, const char *f)
{
    return json_string_value(json_object_get(json_object_get(o, "metadata"), f));
}

static uint64_t rv_of(const json_t *o) { return strtoull(meta_s(o, "resourceVersion"), NULL, 10); }

static void exec_sql(const char *sql)
{
    sqlite3 *db;
    cr_assert_eq(sqlite3_open(db_path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 2000);
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    cr_assert_eq(rc, SQLITE_OK, "%s: %s", sql, msg ? msg : "");
    sqlite3_close(db);
}

Test(store_persist, reopen_restores_objects_uids_and_revisions)
{
    ty_store *s = open_store();
    json_t *ns = json_pack("{s:{s:s}}", "metadata", "name", "team");
    json_decref(create(s, "namespaces", ns));
    json_t *a = create(s, "configmaps", cm("a", "team"));
    json_t *b = create(s, "configmaps", cm("b", NULL));
    json_t *node = create(s, "nodes", json_pack("{s:{s:s}}", "metadata", "name", "n1"));
    /* update, status update and a deletion are all persisted */
    json_t *a2 = json_deep_copy(a);
    json_object_set_new(a2, "data", json_pack("{s:i}", "n", 2));
    json_t *a3 = NULL;
    cr_assert_eq(ty_store_update(s, "configmaps", a2, &a3, NULL), 0);
    json_t *st = json_pack("{s:{s:s, s:s}, s:{s:s}}", "metadata", "name", "a", "namespace",
                           "team", "status", "phase", "Done");
    json_t *a4 = NULL;
    cr_assert_eq(ty_store_update_status(s, "configmaps", st, &a4, NULL), 0);
    cr_assert_eq(ty_store_delete(s, "configmaps", "default", "b", -1, NULL), 0);
    uint64_t rev = ty_store_revision(s);
    cr_assert_eq(rev, rv_of(a4) + 1, "the deletion took a revision");
    ty_store_free(s);

    s = open_store();
    cr_assert_eq(ty_store_revision(s), rev, "the counter includes the deletion's revision");
    json_t *got = ty_store_get(s, "configmaps", "team", "a");
    cr_assert_not_null(got);
    cr_assert(json_equal(got, a4), "the object comes back as stored");
    cr_assert_str_eq(meta_s(got, "uid"), meta_s(a, "uid"));
    cr_assert_null(ty_store_get(s, "configmaps", "default", "b"));
    json_t *n = ty_store_get(s, "nodes", NULL, "n1");
    cr_assert(json_equal(n, node));
    json_t *c = create(s, "configmaps", cm("c", NULL));
    cr_assert_eq(rv_of(c), rev + 1, "the counter continues after the highest revision");
    json_t *def = ty_store_get(s, "namespaces", NULL, "default");
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(def, "status"), "phase")),
                     "Active");
    ty_store_free(s);

    /* A third open finds the same "default": it is created once. */
    s = open_store();
    json_t *def2 = ty_store_get(s, "namespaces", NULL, "default");
    cr_assert_str_eq(meta_s(def2, "uid"), meta_s(def, "uid"));
    cr_assert_eq(ty_store_revision(s), rev + 1);
    ty_store_free(s);
    json_decref(def2);
    json_decref(def);
    json_decref(c);
    json_decref(n);
    json_decref(got);
    json_decref(st);
    json_decref(a4);
    json_decref(a3);
    json_decref(a2);
    json_decref(node);
    json_decref(b);
    json_decref(a);
}

/* Group commits write the revision counter only with deletions; the rows carry the rest. A
 * batch whose last write is a deletion, and one of creates and updates only, both reopen at
 * the revision they ended with, and no revision is handed out twice. */
Test(store_persist, deferred_commits_keep_every_revision)
{
    ty_store *s = open_store();
    ty_store_defer_commits(s, true);
    json_t *x = create(s, "configmaps", cm("x", NULL));
    json_t *y = create(s, "configmaps", cm("y", NULL));
    cr_assert_eq(ty_store_delete(s, "configmaps", "default", "y", -1, NULL), 0);
    cr_assert_eq(ty_store_commit(s, NULL), 0);
    uint64_t after_delete = ty_store_revision(s);
    cr_assert_eq(after_delete, rv_of(y) + 1);
    ty_store_free(s);

    s = open_store();
    cr_assert_eq(ty_store_revision(s), after_delete, "the deletion's revision is kept");
    ty_store_defer_commits(s, true);
    json_t *x2 = json_deep_copy(x);
    json_object_set_new(x2, "data", json_pack("{s:i}", "n", 2));
    json_t *x3 = NULL;
    cr_assert_eq(ty_store_update(s, "configmaps", x2, &x3, NULL), 0);
    json_t *z = create(s, "configmaps", cm("z", NULL));
    cr_assert_eq(ty_store_commit(s, NULL), 0);
    uint64_t after_writes = ty_store_revision(s);
    cr_assert_eq(after_writes, rv_of(z));
    ty_store_free(s);

    s = open_store();
    cr_assert_eq(ty_store_revision(s), after_writes);
    json_t *w = create(s, "configmaps", cm("w", NULL));
    cr_assert_eq(rv_of(w), after_writes + 1);
    ty_store_free(s);
    json_decref(w);
    json_decref(z);
    json_decref(x3);
    json_decref(x2);
    json_decref(y);
    json_decref(x);
}

Test(store_persist, open_uses_wal)
{
    ty_store *s = open_store();
    ty_store_free(s);
    sqlite3 *db;
    cr_assert_eq(sqlite3_open(db_path, &db), SQLITE_OK);
    sqlite3_stmt *q;
    cr_assert_eq(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &q, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_step(q), SQLITE_ROW);
    cr_assert_str_eq((const char *)sqlite3_column_text(q, 0), "wal");
    sqlite3_finalize(q);
    sqlite3_close(db);
}

Test(store_persist, open_fails_on_a_bad_path)
{
    ty_store *s = NULL;
    ty_error err = TY_ERROR_INIT;
    char bad[160];
    snprintf(bad, sizeof bad, "%s/missing/store.db", dir);
    cr_assert_lt(ty_store_open(bad, &s, &err), 0);
    cr_assert_null(s);
    cr_assert_eq(err.code, TY_STORE_INTERNAL);
    cr_assert_not_null(strstr(err.msg, bad), "%s", err.msg);
    ty_error_clear(&err);
}

static int events;
static void count(void *ctx, ty_event_type type, const char *resource, const json_t *obj)
{
    (void)ctx, (void)type, (void)resource, (void)obj;
    events++;
}

/* A trigger added by another connection makes our writes fail inside SQLite. */
Test(store_persist, failed_sqlite_write_changes_nothing)
{
    ty_store *s = open_store();
    json_t *a = create(s, "configmaps", cm("a", NULL));
    uint64_t rev = ty_store_revision(s);
    events = 0;
    ty_store_watch(s, &(ty_store_watch_opts){.fn = count, .ctx = NULL}, NULL, NULL);
    exec_sql("CREATE TRIGGER no_insert BEFORE INSERT ON objects "
             "BEGIN SELECT RAISE(ABORT, 'injected'); END;"
             "CREATE TRIGGER no_update BEFORE UPDATE ON objects "
             "BEGIN SELECT RAISE(ABORT, 'injected'); END;"
             "CREATE TRIGGER no_delete BEFORE DELETE ON objects "
             "BEGIN SELECT RAISE(ABORT, 'injected'); END;");

    ty_error err = TY_ERROR_INIT;
    json_t *in = cm("b", NULL);
    cr_assert_lt(ty_store_create(s, "configmaps", in, NULL, &err), 0);
    cr_assert_eq(err.code, TY_STORE_INTERNAL);
    cr_assert_not_null(strstr(err.msg, "injected"), "%s", err.msg);
    ty_error_clear(&err);
    cr_assert_null(ty_store_get(s, "configmaps", "default", "b"));

    json_t *a2 = json_deep_copy(a);
    json_object_set_new(a2, "data", json_pack("{s:i}", "n", 9));
    cr_assert_lt(ty_store_update(s, "configmaps", a2, NULL, &err), 0);
    cr_assert_eq(err.code, TY_STORE_INTERNAL);
    ty_error_clear(&err);
    json_object_set_new(a2, "status", json_pack("{s:s}", "phase", "Changed"));
    cr_assert_lt(ty_store_update_status(s, "configmaps", a2, NULL, &err), 0);
    ty_error_clear(&err);
    cr_assert_lt(ty_store_delete(s, "configmaps", "default", "a", -1, &err), 0);
    cr_assert_eq(err.code, TY_STORE_INTERNAL);
    ty_error_clear(&err);
    json_t *got = ty_store_get(s, "configmaps", "default", "a");
    cr_assert_eq(got, a, "the stored object is the one from before");
    cr_assert_eq(ty_store_revision(s), rev, "no revision handed out");
    cr_assert_eq(events, 0, "no event");

    /* Once SQLite accepts writes again the store works, and the same revisions are used. */
    exec_sql("DROP TRIGGER no_insert; DROP TRIGGER no_update; DROP TRIGGER no_delete;");
    json_t *b = NULL;
    cr_assert_eq(ty_store_create(s, "configmaps", in, &b, NULL), 0);
    cr_assert_eq(rv_of(b), rev + 1);
    cr_assert_eq(ty_store_delete(s, "configmaps", "default", "a", -1, NULL), 0);
    cr_assert_eq(events, 2);
    ty_store_free(s);
    json_decref(b);
    json_decref(got);
    json_decref(a2);
    json_decref(in);
    json_decref(a);
}

/* A child writes as fast as it can and reports each acknowledged write on a pipe; it is
 * SIGKILLed mid-stream. Every acknowledged write must be there after reopening. */
Test(store_persist, acknowledged_writes_survive_sigkill)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        close(p[0]);
        ty_store *s = NULL;
        if (ty_store_open(db_path, &s, NULL) < 0)
            _exit(2);
        for (int i = 0;; i++) {
            char name[32];
            snprintf(name, sizeof name, "obj-%d", i);
            json_t *o = cm(name, NULL), *out = NULL;
            if (ty_store_create(s, "configmaps", o, &out, NULL) < 0)
                _exit(3);
            dprintf(p[1], "C %s %s %s\n", name, meta_s(out, "uid"), meta_s(out, "resourceVersion"));
            json_decref(out);
            json_decref(o);
            if (i % 3 == 2) { /* and a deletion now and then */
                snprintf(name, sizeof name, "obj-%d", i - 1);
                if (ty_store_delete(s, "configmaps", "default", name, -1, NULL) < 0)
                    _exit(4);
                dprintf(p[1], "D %s - %llu\n", name, (unsigned long long)ty_store_revision(s));
            }
        }
    }
    close(p[1]);
    FILE *in = fdopen(p[0], "r");
    char kind[4], names[64][32], uids[64][40], rvs[64][24];
    int n = 0;
    bool deleted[64] = {false};
    uint64_t last_rv = 0;
    while (n < 40 && fscanf(in, "%3s %31s %39s %23s", kind, names[n], uids[n], rvs[n]) == 4) {
        last_rv = strtoull(rvs[n], NULL, 10);
        if (kind[0] == 'D') {
            for (int i = 0; i < n; i++)
                if (strcmp(names[i], names[n]) == 0)
                    deleted[i] = true;
            continue;
        }
        n++;
    }
    kill(pid, SIGKILL);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFSIGNALED(status), "the writer was killed (status %d)", status);
    fclose(in);

    ty_store *s = open_store();
    cr_assert_geq(ty_store_revision(s), last_rv);
    for (int i = 0; i < n; i++) {
        json_t *o = ty_store_get(s, "configmaps", "default", names[i]);
        if (deleted[i]) {
            cr_assert_null(o, "%s was deleted", names[i]);
            continue;
        }
        cr_assert_not_null(o, "%s was acknowledged", names[i]);
        cr_assert_str_eq(meta_s(o, "uid"), uids[i]);
        cr_assert_str_eq(meta_s(o, "resourceVersion"), rvs[i]);
        json_decref(o);
    }
    /* Whatever the child did after the last acknowledgement, the counter is past it. */
    json_t *next = create(s, "configmaps", cm("after", NULL));
    json_t *all = ty_store_list(s, "configmaps", NULL);
    size_t i;
    json_t *o;
    json_array_foreach(all, i, o)
    {
        if (o != next)
            cr_assert_lt(rv_of(o), rv_of(next));
    }
    json_decref(all);
    json_decref(next);
    ty_store_free(s);
}

/* ---- watch history ---- */

typedef struct {
    int n;
    ty_event_type types[16];
    char names[16][16];
    uint64_t rvs[16];
} seen;

static void record(void *ctx, ty_event_type type, const char *resource, const json_t *obj)
{
    (void)resource;
    seen *w = ctx;
    if (w->n >= 16)
        return;
    w->types[w->n] = type;
    snprintf(w->names[w->n], 16, "%s", json_string_value(json_object_get(json_object_get(obj, "metadata"), "name")));
    w->rvs[w->n] = rv_of(obj);
    w->n++;
}

Test(store_persist, watch_from_replays_then_continues)
{
    ty_store *s = ty_store_new();
    json_t *a = create(s, "configmaps", cm("a", NULL));
    uint64_t after_a = ty_store_revision(s);
    json_decref(create(s, "configmaps", cm("b", NULL)));
    json_decref(create(s, "secrets", cm("x", NULL)));
    cr_assert_eq(ty_store_delete(s, "configmaps", "default", "a", -1, NULL), 0);
    uint64_t del_rv = ty_store_revision(s);

    seen w = {0};
    int id = 0;
    ty_error err = TY_ERROR_INIT;
    cr_assert_eq(ty_store_watch(s, &(ty_store_watch_opts){.resource = "configmaps",
                                                          .from_rv = after_a, .fn = record,
                                                          .ctx = &w},
                                &id, &err), 0);
    cr_assert_eq(w.n, 2, "b added, a deleted; secrets not replayed");
    cr_assert_eq(w.types[0], TY_EVENT_ADDED);
    cr_assert_str_eq(w.names[0], "b");
    cr_assert_eq(w.types[1], TY_EVENT_DELETED);
    cr_assert_str_eq(w.names[1], "a");
    cr_assert_eq(w.rvs[1], del_rv, "DELETED carries the deletion's resourceVersion");
    json_decref(create(s, "configmaps", cm("c", NULL)));
    cr_assert_eq(w.n, 3, "then live");
    cr_assert_str_eq(w.names[2], "c");
    ty_store_unwatch(s, id);

    /* rv 0: from now on, no replay. NULL resource: everything. */
    seen all = {0};
    cr_assert_eq(ty_store_watch(s, &(ty_store_watch_opts){.fn = record, .ctx = &all},
                                &id, NULL), 0);
    cr_assert_eq(all.n, 0);
    ty_store_unwatch(s, id);
    cr_assert_eq(ty_store_watch(s, &(ty_store_watch_opts){.from_rv = after_a, .fn = record,
                                                          .ctx = &all},
                                &id, NULL), 0);
    cr_assert_eq(all.n, 4);
    ty_store_unwatch(s, id);
    ty_store_free(s);
    json_decref(a);
}

Test(store_persist, watch_from_too_old_is_gone)
{
    ty_store *s = ty_store_new();
    ty_store_set_history(s, 3);
    for (int i = 0; i < 6; i++) {
        char name[16];
        snprintf(name, sizeof name, "o%d", i);
        json_decref(create(s, "configmaps", cm(name, NULL)));
    }
    uint64_t rev = ty_store_revision(s);
    seen w = {0};
    ty_error err = TY_ERROR_INIT;
    cr_assert_lt(ty_store_watch(s, &(ty_store_watch_opts){.resource = "configmaps",
                                                          .from_rv = rev - 4, .fn = record,
                                                          .ctx = &w},
                                NULL, &err), 0);
    cr_assert_eq(err.code, TY_STORE_GONE);
    char want[64];
    snprintf(want, sizeof want, "too old resource version: %llu (%llu)",
             (unsigned long long)(rev - 4), (unsigned long long)(rev - 3));
    cr_assert_str_eq(err.msg, want);
    ty_error_clear(&err);
    cr_assert_eq(w.n, 0);
    /* The oldest still complete point replays the three kept events. */
    int id;
    cr_assert_eq(ty_store_watch(s, &(ty_store_watch_opts){.resource = "configmaps",
                                                          .from_rv = rev - 3, .fn = record,
                                                          .ctx = &w},
                                &id, NULL), 0);
    cr_assert_eq(w.n, 3);
    cr_assert_str_eq(w.names[0], "o3");
    ty_store_unwatch(s, id);
    ty_store_free(s);
}

Test(store_persist, history_starts_at_the_loaded_revision)
{
    ty_store *s = open_store();
    json_decref(create(s, "configmaps", cm("a", NULL)));
    uint64_t rev = ty_store_revision(s);
    ty_store_free(s);
    s = open_store();
    seen w = {0};
    int id;
    ty_error err = TY_ERROR_INIT;
    cr_assert_lt(ty_store_watch(s, &(ty_store_watch_opts){.resource = "configmaps",
                                                          .from_rv = rev - 1, .fn = record,
                                                          .ctx = &w},
                                &id, &err), 0);
    cr_assert_eq(err.code, TY_STORE_GONE);
    ty_error_clear(&err);
    cr_assert_eq(ty_store_watch(s, &(ty_store_watch_opts){.resource = "configmaps", .from_rv = rev,
                                                          .fn = record, .ctx = &w},
                                &id, &err), 0);
    json_decref(create(s, "configmaps", cm("b", NULL)));
    cr_assert_eq(w.n, 1);
    cr_assert_eq(w.rvs[0], rev + 1);
    ty_store_free(s);
}

/* Cascades are persisted step by step; one cut short by a crash is finished on open. */
Test(store_persist, cascades_persist_and_resume_after_a_crash)
{
    ty_store *s = open_store();
    json_t *owner = create(s, "configmaps", cm("owner", NULL));
    json_t *dep = cm("dep", NULL);
    json_object_set_new(json_object_get(dep, "metadata"), "ownerReferences",
                        json_pack("[{s:s, s:s}]", "name", "owner", "uid", ty_obj_uid(owner)));
    json_t *dep2 = json_deep_copy(dep);
    json_object_set_new(json_object_get(dep2, "metadata"), "name", json_string("dep2"));
    json_decref(create(s, "configmaps", dep));
    json_decref(create(s, "configmaps", dep2));
    json_decref(create(s, "namespaces", json_pack("{s:{s:s}}", "metadata", "name", "team")));
    json_decref(create(s, "configmaps", cm("in-team", "team")));
    cr_assert_eq(ty_store_delete(s, "namespaces", NULL, "team", -1, NULL), 0);
    ty_store_free(s);

    s = open_store();
    cr_assert_null(ty_store_get(s, "namespaces", NULL, "team"), "the namespace deletion persisted");
    cr_assert_null(ty_store_get(s, "configmaps", "team", "in-team"));
    ty_store_free(s);

    /* As if the server died right after removing the owner: its dependents are still stored. */
    exec_sql("DELETE FROM objects WHERE name = 'owner'");
    s = open_store();
    cr_assert_null(ty_store_get(s, "configmaps", NULL, "dep"), "the cascade is finished on open");
    cr_assert_null(ty_store_get(s, "configmaps", NULL, "dep2"));
    ty_store_free(s);
    s = open_store();
    cr_assert_null(ty_store_get(s, "configmaps", NULL, "dep"), "and that is persisted too");
    ty_store_free(s);
    json_decref(owner);
}
