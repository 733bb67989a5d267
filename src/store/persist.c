/* Persistence in SQLite: one row per object, loading, group commits. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/jsontext.h"
#include "base/map.h"
#include "base/mem.h"
#include "store/store_int.h"

/* ---- SQLite ---- */

static int db_fail(ty_store *s, ty_error *err, const char *what)
{
    ty_fail_code(err, TY_STORE_INTERNAL, "store: %s: %s", what, sqlite3_errmsg(s->db));
    if (!sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return -1;
}

static int db_step(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : -1;
}

/* Runs a prepared statement that returns no rows; its error stays on the connection. */
static int db_exec(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

/* One row written (json) or deleted (json NULL), inside the caller's transaction. */
static int db_row(ty_store *s, const char *resource, const char *ns, size_t nslen,
                  const char *name, uint64_t rv, const char *json, size_t len, ty_error *err)
{
    sqlite3_stmt *st = json ? s->put_stmt : s->del_stmt;
    sqlite3_bind_text(st, 1, resource, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, ns, (int)nslen, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
    if (json) {
        sqlite3_bind_int64(st, 4, (sqlite3_int64)rv);
        sqlite3_bind_text(st, 5, json, (int)len, SQLITE_STATIC);
    }
    int rc = db_step(st);
    if (rc < 0)
        db_fail(s, err, json ? "write object" : "delete object");
    sqlite3_reset(st);
    return rc;
}

static int db_revision(ty_store *s, uint64_t rv, ty_error *err)
{
    sqlite3_bind_int64(s->rev_stmt, 1, (sqlite3_int64)rv);
    int rc = db_step(s->rev_stmt);
    if (rc < 0)
        db_fail(s, err, "write revision");
    sqlite3_reset(s->rev_stmt);
    return rc;
}

/* The key's namespace part and name: "ns/name" ("" namespace when cluster-scoped). */
static const char *key_name(const char *key, size_t *nslen)
{
    const char *slash = strchr(key, '/');
    *nslen = (size_t)(slash - key);
    return slash + 1;
}

/* The revision counter is written only with deletions: a stored row carries its own
 * revision, and opening takes the highest of the rows' and the counter's, so a create or an
 * update writes one page fewer (of about three) and a deletion, which leaves no row behind,
 * still keeps its revision from being handed out again. */

/* One change of one object, in one transaction: durable (WAL, synchronous=FULL) when this
 * returns 0. json NULL: the row is deleted. */
int st_db_write(ty_store *s, const char *resource, const char *key, uint64_t rv,
                const char *json, size_t len, ty_error *err)
{
    if (db_exec(s->begin_stmt) < 0)
        return db_fail(s, err, "begin");
    size_t nslen;
    const char *name = key_name(key, &nslen);
    if (db_row(s, resource, key, nslen, name, rv, json, len, err) < 0 ||
        (!json && db_revision(s, rv, err) < 0))
        return -1;
    if (db_exec(s->commit_stmt) < 0)
        return db_fail(s, err, "commit");
    return 0;
}

/* With deferred commits a write only notes its key; ty_store_commit() writes what the key
 * holds then. */
void st_mark_dirty(ty_store *s, res *r, const char *key)
{
    if (!s->db)
        return;
    TY_AUTOFREE char *k = ty_asprintf("%s\x1f%s", r->name, key);
    ty_map_puts(&s->dirty, k, (void *)1);
}

void ty_store_defer_commits(ty_store *s, bool on) { s->deferred = on; }

int ty_store_commit(ty_store *s, ty_error *err)
{
    if (s->dirty.count) {
        if (db_exec(s->begin_stmt) < 0)
            return db_fail(s, err, "begin");
        const ty_map_slot *slot;
        bool deleted = false;
        for (size_t i = 0; ty_map_next(&s->dirty, &i, &slot);) {
            const char *sep = strchr(slot->key, '\x1f');
            TY_AUTOFREE char *resource = ty_strndup(slot->key, (size_t)(sep - slot->key));
            const char *key = sep + 1;
            res *r = st_res_of(s, resource, false);
            entry *e = r ? ty_map_gets(&r->objects, key) : NULL;
            size_t nslen;
            const char *name = key_name(key, &nslen);
            if (db_row(s, resource, key, nslen, name, e ? e->rv : 0, e ? e->t->data : NULL,
                       e ? e->t->len : 0, err) < 0)
                return -1;
            deleted = deleted || !e;
        }
        /* the latest revision is a row's unless a deletion was last */
        if (deleted && db_revision(s, s->revision, err) < 0)
            return -1;
        if (db_exec(s->commit_stmt) < 0)
            return db_fail(s, err, "commit");
        ty_map_free(&s->dirty);
        memset(&s->dirty, 0, sizeof(s->dirty));
    }
    s->committed = s->revision;
    st_enter(s);
    st_deliver_held(s);
    st_leave(s);
    return 0;
}

/* A rowid table, not WITHOUT ROWID: rows are kilobytes of JSON, which a WITHOUT ROWID b-tree
 * stores poorly (the database was twice the size of its JSON). */
static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS objects ("
    " resource TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,"
    " rv INTEGER NOT NULL, json TEXT NOT NULL,"
    " PRIMARY KEY (resource, namespace, name));"
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);";

/* Loading reads the text and parses only what the index needs (the metadata); the rest of
 * each object is parsed when someone asks for it. What loading learns of one stored text without parsing it all. */
typedef struct scanned {
    bool typed;
    const char *meta, *meta_end; /* the metadata object's text */
} scanned;

/* Finds the text's metadata and whether it has apiVersion and kind; -1 when it is not an
 * object with a metadata object. The members before those three are checked and skipped; the
 * rest (spec and status, most of the bytes: the store writes apiVersion, kind and metadata
 * first) only has to close the object. A row damaged in the middle is found when it is
 * parsed, and the store stops then, naming it. */
static int scan_text(const char *p, size_t len, scanned *out)
{
    const char *end = p + len;
    bool api = false, kind = false;
    *out = (scanned){0};
    if (!(p = ty_json_object_start(p, end)))
        return -1;
    ty_json_member m;
    int rc;
    while ((rc = ty_json_next_member(&p, end, true, &m)) > 0) {
        if (ty_json_member_is(&m, "metadata")) {
            if (*m.val != '{')
                return -1;
            out->meta = m.val;
            out->meta_end = m.val_end;
            if (api && kind)
                break;
        } else if (ty_json_member_is(&m, "apiVersion")) {
            api = true;
        } else if (ty_json_member_is(&m, "kind")) {
            kind = true;
        }
    }
    if (rc < 0 || !out->meta)
        return -1;
    while (end > p && (end[-1] == ' ' || end[-1] == '\n' || end[-1] == '\r' || end[-1] == '\t'))
        end--;
    if (end[-1] != '}')
        return -1;
    out->typed = api && kind;
    return 0;
}

static int load(ty_store *s, const char *path, ty_error *err)
{
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(s->db, "SELECT resource, namespace, name, rv, json FROM objects", -1,
                           &q, NULL) != SQLITE_OK)
        return db_fail(s, err, "load objects");
    uint64_t max_rv = 0;
    int rc;
    ty_map seen = TY_MAP_INIT;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        const char *resource = (const char *)sqlite3_column_text(q, 0);
        const char *ns = (const char *)sqlite3_column_text(q, 1);
        const char *name = (const char *)sqlite3_column_text(q, 2);
        uint64_t rv = (uint64_t)sqlite3_column_int64(q, 3);
        const char *data = (const char *)sqlite3_column_blob(q, 4);
        size_t len = (size_t)sqlite3_column_bytes(q, 4);
        scanned sc;
        if (!data || scan_text(data, len, &sc) < 0) {
            ty_fail_code(err, TY_STORE_INTERNAL,
                         "store %s: %s %s/%s: not a JSON object with metadata",
                      path, resource, ns, name);
            sqlite3_finalize(q);
            ty_map_free(&seen);
            return -1;
        }
        res *r = st_res_of(s, resource, true);
        TY_AUTOFREE char *key = ty_asprintf("%s/%s", ns, name);
        entry *e = ty_map_gets(&r->objects, key);
        if (e) { /* cannot happen: (resource, namespace, name) is the primary key */
            st_index_clear(s, e);
            st_text_unref(e->t);
        } else {
            e = st_entry_new(r, key);
            ty_map_puts(&r->objects, key, e);
        }
        e->t = st_text_new(data, len);
        e->rv = rv;
        if (st_index_from_text(s, e, sc.meta, sc.meta_end, sc.typed, &seen) < 0) {
            ty_fail_code(err, TY_STORE_INTERNAL, "store %s: %s %s/%s: bad metadata", path,
                         resource, ns, name);
            sqlite3_finalize(q);
            ty_map_free(&seen);
            return -1;
        }
        r->sorted_valid = false;
        if (rv > max_rv)
            max_rv = rv;
    }
    sqlite3_finalize(q);
    ty_map_free(&seen);
    if (rc != SQLITE_DONE)
        return db_fail(s, err, "load objects");
    if (sqlite3_prepare_v2(s->db, "SELECT value FROM meta WHERE key = 'revision'", -1, &q,
                           NULL) != SQLITE_OK)
        return db_fail(s, err, "load revision");
    if (sqlite3_step(q) == SQLITE_ROW) {
        uint64_t rv = strtoull((const char *)sqlite3_column_text(q, 0), NULL, 10);
        if (rv > max_rv)
            max_rv = rv;
    }
    sqlite3_finalize(q);
    /* Deletions leave no row behind; the counter row keeps their revisions. */
    s->revision = s->committed = max_rv;
    s->hist_base = max_rv;
    return 0;
}

/* The first write of a connection starts its WAL: SQLite writes the header, syncs it, and
 * syncs the directory too (three fsyncs, up to tens of ms on a disk busy with what the loading
 * left dirty). Done here, with the revision counter as the write, rather than in the commit
 * of the first request after a start. */
static int start_wal(ty_store *s, ty_error *err)
{
    if (db_exec(s->begin_stmt) < 0)
        return db_fail(s, err, "begin");
    if (db_revision(s, s->revision, err) < 0)
        return -1;
    if (db_exec(s->commit_stmt) < 0)
        return db_fail(s, err, "commit");
    return 0;
}

/* The database holds every object (env values included): only its owner reads it. SQLite
 * creates a database 0644 (less the umask) and gives its -wal and -shm the database's mode, so
 * the file is made (or made again) 0600 before SQLite opens it, and -wal/-shm left by an
 * earlier version are fixed too. */
static int make_private(const char *db_path, ty_error *err)
{
    int fd = open(db_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return ty_fail_code(err, TY_STORE_INTERNAL, "open %s: %s", db_path, strerror(errno));
    int rc = fchmod(fd, 0600);
    int e = errno;
    close(fd);
    if (rc < 0)
        return ty_fail_code(err, TY_STORE_INTERNAL, "make %s private (0600): %s", db_path,
                            strerror(e));
    static const char *const sfx[] = {"-wal", "-shm"};
    for (size_t i = 0; i < TY_ARRAY_LEN(sfx); i++) {
        TY_AUTOFREE char *p = ty_asprintf("%s%s", db_path, sfx[i]);
        if (chmod(p, 0600) < 0 && errno != ENOENT)
            return ty_fail_code(err, TY_STORE_INTERNAL, "make %s private (0600): %s", p,
                                strerror(errno));
    }
    return 0;
}

int ty_store_open(const char *db_path, ty_store **out, ty_error *err)
{
    *out = NULL;
    if (make_private(db_path, err) < 0)
        return -1;
    ty_store *s = st_store_alloc();
    /* SQLite opens its files with O_CLOEXEC. */
    if (sqlite3_open_v2(db_path, &s->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        ty_fail_code(err, TY_STORE_INTERNAL, "open %s: %s", db_path,
                     s->db ? sqlite3_errmsg(s->db) : "out of memory");
        ty_store_free(s);
        return -1;
    }
    sqlite3_busy_timeout(s->db, 1000);
    sqlite3_stmt *q = NULL;
    bool wal = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode=WAL", -1, &q, NULL) == SQLITE_OK &&
               sqlite3_step(q) == SQLITE_ROW &&
               strcmp((const char *)sqlite3_column_text(q, 0), "wal") == 0;
    sqlite3_finalize(q);
    /* The store reads SQLite only when it opens; after that the page cache serves writes
     * (the b-tree pages an insert or an update touches): 512 KiB, not SQLite's 2 MiB. */
    if (!wal || sqlite3_exec(s->db, "PRAGMA synchronous=FULL", NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(s->db, "PRAGMA cache_size=-512", NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(s->db, schema_sql, NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s->db,
                           "INSERT INTO objects (resource, namespace, name, rv, json) "
                           "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (resource, namespace, name) "
                           "DO UPDATE SET rv = excluded.rv, json = excluded.json",
                           -1, &s->put_stmt, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s->db,
                           "DELETE FROM objects WHERE resource = ?1 AND namespace = ?2 AND "
                           "name = ?3",
                           -1, &s->del_stmt, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s->db,
                           "INSERT INTO meta (key, value) VALUES ('revision', ?1) "
                           "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                           -1, &s->rev_stmt, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s->db, "BEGIN IMMEDIATE", -1, &s->begin_stmt, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s->db, "COMMIT", -1, &s->commit_stmt, NULL) != SQLITE_OK) {
        ty_fail_code(err, TY_STORE_INTERNAL, "open %s: %s", db_path,
                     wal ? sqlite3_errmsg(s->db) : "cannot use write-ahead logging");
        ty_store_free(s);
        return -1;
    }
    if (load(s, db_path, err) < 0 || ty_store_ensure_namespace(s, "default", err) < 0 ||
        st_resume_cascades(s, err) < 0 || start_wal(s, err) < 0) {
        ty_store_free(s);
        return -1;
    }
    st_trim(s);
    /* Not inside the commits that answers wait for (see checkpoint_int.h). */
    s->ckpt = ty_store_ckpt_start(s->db, db_path, CHECKPOINT_PAGES);
    *out = s;
    return 0;
}
