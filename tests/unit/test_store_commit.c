/* The store's representation and group commit: objects kept as text (items), parsed on demand
 * (trees outlive the cache that dropped them), deferred commits (nothing reaches SQLite before
 * ty_store_commit, everything after; a crash loses exactly the uncommitted writes), committed
 * watches, and loading from the text alone (index, labels, damaged rows). */
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

TestSuite(store_commit, .init = setup, .fini = teardown);

static ty_store *open_store(void)
{
    ty_store *s = NULL;
    ty_error err = TY_ERROR_INIT;
    cr_assert_eq(ty_store_open(db_path, &s, &err), 0, "open: %s", err.msg ? err.msg : "");
    return s;
}

static json_t *cm(const char *name, const char *ns, const char *shard)
{
    json_t *o = json_pack("{s:s, s:s, s:{s:s}, s:{s:i}}", "apiVersion", "v1", "kind",
                          "ConfigMap", "metadata", "name", name, "data", "n", 1);
    if (ns)
        json_object_set_new(json_object_get(o, "metadata"), "namespace", json_string(ns));
    if (shard)
        json_object_set_new(json_object_get(o, "metadata"), "labels",
                            json_pack("{s:s, s:s}", "app", "x", "shard", shard));
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

/* Through a second connection, as a restarted server would see the file. */
static long long sql_int(const char *sql)
{
    sqlite3 *db;
    cr_assert_eq(sqlite3_open(db_path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 2000);
    sqlite3_stmt *q;
    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
    long long v = sqlite3_step(q) == SQLITE_ROW ? sqlite3_column_int64(q, 0) : -1;
    sqlite3_finalize(q);
    sqlite3_close(db);
    return v;
}

static void exec_sql(const char *sql)
{
    sqlite3 *db;
    cr_assert_eq(sqlite3_open(db_path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 2000);
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    cr_assert_eq(rc, SQLITE_OK, "%s", msg ? msg : "");
    sqlite3_close(db);
}

#define COUNT_CM "SELECT count(*) FROM objects WHERE resource = 'configmaps'"

/* ---- items: the stored text ---- */

Test(store_commit, items_are_the_stored_text_in_list_order)
{
    ty_store *s = ty_store_new();
    ty_store_ensure_namespace(s, "b", NULL);
    json_t *x = create(s, "configmaps", cm("x", "b", "s1"));
    json_t *a = create(s, "configmaps", cm("a", NULL, "s1"));
    json_t *c = create(s, "configmaps", cm("c", NULL, "s2"));

    ty_store_item it;
    cr_assert(ty_store_get_item(s, "configmaps", "default", "a", &it));
    char *text = json_dumps(a, JSON_COMPACT);
    cr_assert_str_eq(it.text, text, "the text is the stored object, compact");
    cr_assert_eq(it.len, strlen(text));
    free(text);
    cr_assert_eq(it.rv, rv_of(a));
    cr_assert(it.typed);
    cr_assert_str_eq(it.key, "default/a");
    cr_assert_not(ty_store_get_item(s, "configmaps", "default", "nope", &it));
    cr_assert_not(ty_store_get_item(s, "secrets", "default", "a", &it));

    ty_store_item *items;
    size_t n = ty_store_list_items(s, "configmaps", NULL, &items);
    json_t *list = ty_store_list(s, "configmaps", NULL);
    cr_assert_eq(n, 3);
    cr_assert_eq(json_array_size(list), 3);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(items[i].rv, rv_of(json_array_get(list, i)), "same order as ty_store_list");
    cr_assert_str_eq(items[0].key, "b/x");
    /* Equal label sets are one value; different ones are not. */
    cr_assert_eq(items[0].labels, items[1].labels);
    cr_assert_neq(items[1].labels, items[2].labels);
    cr_assert_str_eq(json_string_value(json_object_get(
                         json_object_get(json_object_get(items[2].labels, "metadata"), "labels"),
                         "shard")),
                     "s2");
    free(items);
    json_decref(list);

    n = ty_store_list_items(s, "configmaps", "default", &items);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(items[0].key, "default/a");
    cr_assert_str_eq(items[1].key, "default/c");
    free(items);
    cr_assert_eq(ty_store_list_items(s, "configmaps", "zzz", &items), 0);
    free(items);
    cr_assert_eq(ty_store_list_items(s, "secrets", NULL, &items), 0);
    free(items);

    /* An object without kind is flagged, so the API server adds it. */
    json_t *bare = json_pack("{s:{s:s}}", "metadata", "name", "bare");
    json_decref(create(s, "configmaps", bare));
    cr_assert(ty_store_get_item(s, "configmaps", "default", "bare", &it));
    cr_assert_not(it.typed);
    json_decref(x);
    json_decref(a);
    json_decref(c);
    ty_store_free(s);
}

/* Far more objects than the tree cache holds: what a caller holds stays valid, and a read of
 * a dropped tree parses the same object again. */
Test(store_commit, trees_outlive_the_cache)
{
    ty_store *s = ty_store_new();
    json_t *first = create(s, "configmaps", cm("first", NULL, "s0"));
    char *first_text = json_dumps(first, JSON_COMPACT);
    json_t *big = json_object();
    for (int i = 0; i < 200; i++) {
        char k[16];
        snprintf(k, sizeof k, "k%03d", i);
        json_object_set_new(big, k, json_string("a value long enough to weigh something"));
    }
    for (int i = 0; i < 400; i++) {
        char name[32];
        snprintf(name, sizeof name, "o-%d", i);
        json_t *o = cm(name, NULL, "s1");
        json_object_set(o, "data", big);
        json_decref(create(s, "configmaps", o));
    }
    json_decref(big);
    char *again = json_dumps(first, JSON_COMPACT);
    cr_assert_str_eq(again, first_text, "a held reference is unchanged");
    free(again);
    json_t *got = ty_store_get(s, "configmaps", "default", "first");
    char *got_text = json_dumps(got, JSON_COMPACT);
    cr_assert_str_eq(got_text, first_text);
    free(got_text);
    json_t *list = ty_store_list(s, "configmaps", NULL);
    cr_assert_eq(json_array_size(list), 401);
    json_decref(list);
    json_decref(got);
    json_decref(first);
    free(first_text);
    ty_store_free(s);
}

/* ---- deferred commits ---- */

static int events;
static uint64_t last_rv;
static void count(void *ctx, ty_event_type type, const char *resource, const json_t *obj)
{
    (void)ctx, (void)type, (void)resource;
    events++;
    last_rv = rv_of(obj);
}

Test(store_commit, deferred_writes_reach_sqlite_at_commit)
{
    ty_store *s = open_store();
    ty_store_defer_commits(s, true);
    uint64_t base = ty_store_revision(s);
    int now_events = 0;
    events = 0;
    ty_store_watch(s, &(ty_store_watch_opts){.resource = "configmaps", .fn = count, .ctx = NULL},
                   NULL, NULL);
    json_t *a = create(s, "configmaps", cm("a", NULL, NULL));
    json_decref(create(s, "configmaps", cm("b", NULL, NULL)));
    json_t *a2 = json_deep_copy(a);
    json_object_set_new(a2, "data", json_pack("{s:i}", "n", 2));
    cr_assert_eq(ty_store_update(s, "configmaps", a2, NULL, NULL), 0);
    cr_assert_eq(ty_store_delete(s, "configmaps", "default", "b", -1, NULL), 0);
    now_events = events;
    cr_assert_eq(now_events, 4, "ordinary watchers see writes at once");
    cr_assert_eq(ty_store_revision(s), base + 4);
    cr_assert_eq(ty_store_committed_revision(s), base);
    json_t *got = ty_store_get(s, "configmaps", "default", "a");
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(got, "data"), "n")), 2,
                 "memory has the writes");
    json_decref(got);
    cr_assert_eq(sql_int(COUNT_CM), 0, "SQLite has none of them");

    cr_assert_eq(ty_store_commit(s, NULL), 0);
    cr_assert_eq(ty_store_committed_revision(s), base + 4);
    cr_assert_eq(sql_int(COUNT_CM), 1, "a is there, b came and went");
    cr_assert_eq(sql_int("SELECT rv FROM objects WHERE name = 'a'"), (long long)base + 3);
    cr_assert_eq(sql_int("SELECT value FROM meta WHERE key = 'revision'"), (long long)base + 4);
    cr_assert_eq(ty_store_commit(s, NULL), 0, "nothing pending: a no-op");
    ty_store_free(s);

    s = open_store();
    cr_assert_eq(ty_store_revision(s), base + 4);
    got = ty_store_get(s, "configmaps", "default", "a");
    cr_assert_not_null(got);
    cr_assert_str_eq(meta_s(got, "uid"), meta_s(a, "uid"));
    cr_assert_eq(rv_of(got), base + 3);
    json_decref(got);
    cr_assert_null(ty_store_get(s, "configmaps", "default", "b"));
    ty_store_free(s);
    json_decref(a);
    json_decref(a2);
}

Test(store_commit, free_commits_what_is_pending)
{
    ty_store *s = open_store();
    ty_store_defer_commits(s, true);
    json_decref(create(s, "configmaps", cm("a", NULL, NULL)));
    ty_store_free(s);
    cr_assert_eq(sql_int(COUNT_CM), 1);
}

/* A child commits some writes, makes more without committing and is SIGKILLed: the reopened
 * store has exactly the committed ones, and its counter is where the commit left it. */
Test(store_commit, a_crash_loses_exactly_the_uncommitted_writes)
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
        ty_store_defer_commits(s, true);
        for (int i = 0; i < 5; i++) {
            char name[16];
            snprintf(name, sizeof name, "c-%d", i);
            json_t *o = cm(name, NULL, NULL);
            ty_store_create(s, "configmaps", o, NULL, NULL);
            json_decref(o);
        }
        if (ty_store_commit(s, NULL) < 0)
            _exit(3);
        dprintf(p[1], "%llu\n", (unsigned long long)ty_store_revision(s));
        for (int i = 0; i < 5; i++) {
            char name[16];
            snprintf(name, sizeof name, "u-%d", i);
            json_t *o = cm(name, NULL, NULL);
            ty_store_create(s, "configmaps", o, NULL, NULL);
            json_decref(o);
        }
        ty_store_delete(s, "configmaps", "default", "c-0", -1, NULL);
        dprintf(p[1], "uncommitted\n");
        pause();
        _exit(0);
    }
    close(p[1]);
    FILE *in = fdopen(p[0], "r");
    unsigned long long committed = 0;
    char word[32];
    cr_assert_eq(fscanf(in, "%llu %31s", &committed, word), 2);
    kill(pid, SIGKILL);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    fclose(in);

    ty_store *s = open_store();
    cr_assert_eq(ty_store_revision(s), committed);
    json_t *list = ty_store_list(s, "configmaps", NULL);
    cr_assert_eq(json_array_size(list), 5);
    size_t i;
    json_t *o;
    json_array_foreach(list, i, o)
        cr_assert_eq(strncmp(ty_obj_name(o), "c-", 2), 0, "%s", ty_obj_name(o));
    json_decref(list);
    ty_store_free(s);
}

/* A trigger added by another connection makes the commit fail: it reports INTERNAL, keeps the
 * writes pending, and succeeds once SQLite accepts them. */
Test(store_commit, a_failed_commit_keeps_the_writes_pending)
{
    ty_store *s = open_store();
    ty_store_defer_commits(s, true);
    exec_sql("CREATE TRIGGER no_insert BEFORE INSERT ON objects "
             "BEGIN SELECT RAISE(ABORT, 'injected'); END;");
    json_decref(create(s, "configmaps", cm("a", NULL, NULL)));
    ty_error err = TY_ERROR_INIT;
    cr_assert_lt(ty_store_commit(s, &err), 0);
    cr_assert_eq(err.code, TY_STORE_INTERNAL);
    cr_assert_not_null(strstr(err.msg, "injected"), "%s", err.msg);
    ty_error_clear(&err);
    cr_assert_lt(ty_store_committed_revision(s), ty_store_revision(s));
    cr_assert_eq(sql_int(COUNT_CM), 0);
    exec_sql("DROP TRIGGER no_insert;");
    cr_assert_eq(ty_store_commit(s, NULL), 0);
    cr_assert_eq(ty_store_committed_revision(s), ty_store_revision(s));
    cr_assert_eq(sql_int(COUNT_CM), 1);
    ty_store_free(s);
}

/* ---- committed watches ---- */

typedef struct {
    int n;
    uint64_t rvs[16];
} seen;

static void record(void *ctx, ty_event_type type, const char *resource, const json_t *obj)
{
    (void)type, (void)resource;
    seen *w = ctx;
    if (w->n < 16)
        w->rvs[w->n++] = rv_of(obj);
}

Test(store_commit, committed_watchers_see_events_after_the_commit)
{
    ty_store *s = open_store();
    ty_store_defer_commits(s, true);
    json_t *a = create(s, "configmaps", cm("a", NULL, NULL));
    cr_assert_eq(ty_store_commit(s, NULL), 0);
    uint64_t after_a = ty_store_revision(s);
    json_t *b = create(s, "configmaps", cm("b", NULL, NULL));

    seen now = {0}, from = {0}, other = {0};
    int id1, id2;
    cr_assert_eq(ty_store_watch(s, &(ty_store_watch_opts){.resource = "configmaps",
                                                          .committed = true, .fn = record,
                                                          .ctx = &now},
                                &id1, NULL), 0);
    /* From before a: a (committed) is replayed at once, b waits for the commit. */
    cr_assert_eq(ty_store_watch(s, &(ty_store_watch_opts){.resource = "configmaps",
                                                          .from_rv = rv_of(a) - 1,
                                                          .committed = true, .fn = record,
                                                          .ctx = &from},
                                &id2, NULL),
                 0);
    cr_assert_eq(from.n, 1);
    cr_assert_eq(from.rvs[0], rv_of(a));
    ty_store_watch(s, &(ty_store_watch_opts){.resource = "secrets", .committed = true, .fn = record,
                                             .ctx = &other},
                   NULL, NULL);
    json_t *c = create(s, "configmaps", cm("c", NULL, NULL));
    cr_assert_eq(now.n, 0, "nothing before the commit");
    cr_assert_eq(from.n, 1);

    cr_assert_eq(ty_store_commit(s, NULL), 0);
    cr_assert_eq(now.n, 1);
    cr_assert_eq(now.rvs[0], rv_of(c));
    cr_assert_eq(from.n, 3, "b then c, in order");
    cr_assert_eq(from.rvs[1], rv_of(b));
    cr_assert_eq(from.rvs[2], rv_of(c));
    cr_assert_eq(other.n, 0);

    /* A watcher that goes away before the commit gets nothing more. */
    json_decref(create(s, "configmaps", cm("d", NULL, NULL)));
    ty_store_unwatch(s, id1);
    cr_assert_eq(ty_store_commit(s, NULL), 0);
    cr_assert_eq(now.n, 1);
    cr_assert_eq(from.n, 4);
    cr_assert_gt(ty_store_revision(s), after_a);
    ty_store_free(s);
    json_decref(a);
    json_decref(b);
    json_decref(c);
}

/* Without deferral a committed watch is an ordinary one: every write is durable at once. */
Test(store_commit, committed_watch_without_deferral_is_immediate)
{
    ty_store *s = ty_store_new();
    seen w = {0};
    cr_assert_eq(ty_store_watch(s, &(ty_store_watch_opts){.committed = true, .fn = record,
                                                          .ctx = &w},
                                NULL, NULL), 0);
    json_t *a = create(s, "configmaps", cm("a", NULL, NULL));
    cr_assert_eq(w.n, 1);
    cr_assert_eq(w.rvs[0], rv_of(a));
    cr_assert_eq(ty_store_committed_revision(s), ty_store_revision(s));
    json_decref(a);
    ty_store_free(s);
}

/* ---- loading from the text ---- */

Test(store_commit, reopen_rebuilds_the_index_from_the_text)
{
    ty_store *s = open_store();
    json_t *owner = create(s, "configmaps", cm("owner", NULL, "s1"));
    json_t *dep = cm("dep", NULL, "s1");
    json_object_set_new(json_object_get(dep, "metadata"), "ownerReferences",
                        json_pack("[{s:s, s:s, s:s, s:s, s:b}]", "apiVersion", "v1", "kind",
                                  "ConfigMap", "name", "owner", "uid", meta_s(owner, "uid"),
                                  "blockOwnerDeletion", 1));
    json_decref(create(s, "configmaps", dep));
    json_decref(create(s, "configmaps", cm("other", NULL, "s2")));
    ty_store_free(s);

    s = open_store();
    ty_store_item *items;
    size_t n = ty_store_list_items(s, "configmaps", NULL, &items);
    cr_assert_eq(n, 3);
    cr_assert_eq(items[0].labels, items[2].labels, "dep and owner share their labels");
    cr_assert_neq(items[0].labels, items[1].labels);
    cr_assert(items[0].typed);
    free(items);
    /* The owner index came back: deleting the owner in the foreground waits for dep. */
    ty_store_delete_opts o = {.grace_seconds = -1, .propagation = "Foreground"};
    cr_assert_eq(ty_store_delete_ex(s, "configmaps", "default", "owner", &o, NULL, NULL), 0);
    json_t *gone = ty_store_get(s, "configmaps", "default", "dep");
    cr_assert_null(gone, "the dependent was collected");
    cr_assert_null(ty_store_get(s, "configmaps", "default", "owner"), "then the owner went");
    json_t *kept = ty_store_get(s, "configmaps", "default", "other");
    cr_assert_not_null(kept);
    json_decref(kept);
    ty_store_free(s);
    json_decref(owner);
}

Test(store_commit, open_fails_on_a_damaged_row)
{
    ty_store *s = open_store();
    ty_store_free(s);
    exec_sql("INSERT INTO objects (resource, namespace, name, rv, json) "
             "VALUES ('configmaps', 'default', 'bad', 99, '{\"metadata\": [1, 2')");
    ty_error err = TY_ERROR_INIT;
    cr_assert_lt(ty_store_open(db_path, &s, &err), 0);
    cr_assert_eq(err.code, TY_STORE_INTERNAL);
    cr_assert_not_null(strstr(err.msg, "configmaps default/bad"), "%s", err.msg);
    ty_error_clear(&err);
    exec_sql("UPDATE objects SET json = '{\"kind\": \"ConfigMap\"}' WHERE name = 'bad'");
    cr_assert_lt(ty_store_open(db_path, &s, &err), 0, "no metadata");
    ty_error_clear(&err);
}

/* The history also holds at most TY_STORE_HISTORY_MAX_BYTES of text: big objects push the
 * oldest events out before the event count does. */
Test(store_commit, history_is_bounded_in_bytes)
{
    ty_store *s = ty_store_new();
    char *blob = malloc(100 * 1024);
    memset(blob, 'x', 100 * 1024 - 1);
    blob[100 * 1024 - 1] = '\0';
    uint64_t first = 0;
    for (int i = 0; i < 100; i++) { /* 10 MB of text */
        char name[16];
        snprintf(name, sizeof name, "big-%d", i);
        json_t *o = cm(name, NULL, NULL);
        json_object_set_new(o, "data", json_pack("{s:s}", "blob", blob));
        json_t *out = create(s, "configmaps", o);
        if (i == 0)
            first = rv_of(out);
        json_decref(out);
    }
    free(blob);
    ty_error err = TY_ERROR_INIT;
    seen w = {0};
    cr_assert_lt(ty_store_watch(s, &(ty_store_watch_opts){.resource = "configmaps",
                                                          .from_rv = first, .fn = record,
                                                          .ctx = &w},
                                NULL, &err), 0);
    cr_assert_eq(err.code, TY_STORE_GONE);
    ty_error_clear(&err);
    uint64_t recent = ty_store_revision(s) - 10;
    cr_assert_eq(ty_store_watch(s, &(ty_store_watch_opts){.resource = "configmaps",
                                                          .from_rv = recent, .fn = record,
                                                          .ctx = &w},
                                NULL, &err), 0);
    cr_assert_eq(w.n, 10, "the recent events are there");
    ty_store_free(s);
}

/* The owner index: dependents are found without a scan, duplicate references to one owner and
 * dependents with two owners come out right, and replacing or removing a dependent keeps the
 * index in step (deleting many owners is linear, not quadratic). */
static json_t *owned(const char *name, json_t *owners)
{
    json_t *o = cm(name, NULL, NULL);
    json_object_set_new(json_object_get(o, "metadata"), "ownerReferences", owners);
    return o;
}

static json_t *ref_to(const json_t *owner)
{
    return json_pack("{s:s, s:s, s:s, s:s}", "apiVersion", "v1", "kind", "ConfigMap", "name",
                     ty_obj_name(owner), "uid", ty_obj_uid(owner));
}

Test(store_commit, owner_index_follows_dependents)
{
    ty_store *s = ty_store_new();
    enum { N = 2000 };
    json_t *owners[N];
    for (int i = 0; i < N; i++) {
        char name[16];
        snprintf(name, sizeof name, "own-%d", i);
        owners[i] = create(s, "configmaps", cm(name, NULL, NULL));
    }
    for (int i = 0; i < N; i++) {
        char name[16];
        snprintf(name, sizeof name, "dep-%d", i);
        /* two references to the same owner */
        json_decref(create(s, "configmaps",
                           owned(name, json_pack("[o,o]", ref_to(owners[i]), ref_to(owners[i])))));
    }
    /* one dependent of two owners; one whose reference is removed by an update */
    json_decref(create(s, "configmaps",
                       owned("shared", json_pack("[o,o]", ref_to(owners[0]), ref_to(owners[1])))));
    json_t *moved = create(s, "configmaps", owned("moved", json_pack("[o]", ref_to(owners[2]))));
    json_t *next = json_deep_copy(moved);
    json_object_del(json_object_get(next, "metadata"), "ownerReferences");
    cr_assert_eq(ty_store_update(s, "configmaps", next, NULL, NULL), 0);
    json_decref(next);
    json_decref(moved);

    for (int i = 0; i < N; i++) {
        cr_assert_eq(ty_store_delete(s, "configmaps", "default", ty_obj_name(owners[i]), -1,
                                     NULL),
                     0);
        if (i == 0) {
            json_t *sh = ty_store_get(s, "configmaps", "default", "shared");
            cr_assert_not_null(sh, "another owner remains");
            cr_assert_eq(json_array_size(json_object_get(json_object_get(sh, "metadata"),
                                                         "ownerReferences")),
                         1);
            json_decref(sh);
        }
    }
    json_t *left = ty_store_list(s, "configmaps", NULL);
    cr_assert_eq(json_array_size(left), 1, "only the one that lost its reference");
    cr_assert_str_eq(ty_obj_name(json_array_get(left, 0)), "moved");
    json_decref(left);
    for (int i = 0; i < N; i++)
        json_decref(owners[i]);
    ty_store_free(s);
}
