#include "store/checkpoint_internal.h"

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>

#include "base/log.h"
#include "base/mem.h"

struct ty_store_ckpt {
    sqlite3 *writer; /* the store's connection, whose WAL hook wakes the thread */
    sqlite3 *db;     /* the thread's own connection */
    int pages;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool wanted, stopping;
};

/* Called by SQLite on the writer's thread after each commit (its write lock released), with
 * the WAL's length in pages. */
static int on_wal(void *ctx, sqlite3 *db, const char *name, int pages)
{
    ty_store_ckpt *c = ctx;
    /* SQLite restarts the WAL only after a checkpoint that copied all of it, which a thread
     * racing a writer that never pauses may not manage: past 4 times the mark the writer
     * checkpoints itself, as SQLite would, so the WAL stays bounded. */
    if (pages >= 4 * c->pages) {
        sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        return SQLITE_OK;
    }
    if (pages >= c->pages) {
        pthread_mutex_lock(&c->mu);
        if (!c->wanted) {
            c->wanted = true;
            pthread_cond_signal(&c->cv);
        }
        pthread_mutex_unlock(&c->mu);
    }
    return SQLITE_OK;
}

static void *run(void *arg)
{
    ty_store_ckpt *c = arg;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        while (!c->wanted && !c->stopping)
            pthread_cond_wait(&c->cv, &c->mu);
        if (c->stopping)
            break;
        c->wanted = false;
        pthread_mutex_unlock(&c->mu);
        /* Catch up with the frames committed meanwhile, a few rounds at most: each costs an
         * fsync of the database file, and a complete one lets the WAL restart. */
        for (int round = 0; round < 8; round++) {
            int log = 0, done = 0;
            int rc = sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log,
                                               &done);
            /* A failed checkpoint loses nothing: the frames stay in the WAL for the next. */
            if (rc != SQLITE_OK) {
                if (rc != SQLITE_BUSY)
                    ty_log(TY_LOG_WARN, "store: checkpoint: %s", sqlite3_errstr(rc));
                break;
            }
            if (done >= log)
                break;
        }
        pthread_mutex_lock(&c->mu);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

ty_store_ckpt *ty_store_ckpt_start(sqlite3 *writer, const char *db_path, int pages)
{
    ty_store_ckpt *c = TY_NEW(ty_store_ckpt);
    c->writer = writer;
    c->pages = pages;
    /* SQLite opens its files with O_CLOEXEC. NOMUTEX: only the thread uses it. */
    if (sqlite3_open_v2(db_path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        sqlite3_close(c->db);
        free(c);
        return NULL;
    }
    /* It reads no tables: no lookaside memory (set before any statement runs), and a small
     * page cache below. */
    sqlite3_db_config(c->db, SQLITE_DBCONFIG_LOOKASIDE, NULL, 0, 0);
    /* Until it reads the database a connection does not know it is in WAL mode (and its
     * checkpoints do nothing). */
    if (sqlite3_exec(c->db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL) != SQLITE_OK) {
        sqlite3_close(c->db);
        free(c);
        return NULL;
    }
    sqlite3_wal_autocheckpoint(c->db, 0);
    sqlite3_exec(c->db, "PRAGMA cache_size=16", NULL, NULL, NULL);
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    /* Signals are for the loop's thread: the new thread starts with all of them blocked. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&c->thread, NULL, run, c);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        pthread_mutex_destroy(&c->mu);
        pthread_cond_destroy(&c->cv);
        sqlite3_close(c->db);
        free(c);
        return NULL;
    }
    /* Replaces SQLite's automatic checkpoint, which is itself a WAL hook. */
    sqlite3_wal_hook(writer, on_wal, c);
    return c;
}

void ty_store_ckpt_stop(ty_store_ckpt *c)
{
    if (!c)
        return;
    sqlite3_wal_autocheckpoint(c->writer, 1000); /* SQLite's default */
    pthread_mutex_lock(&c->mu);
    c->stopping = true;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->thread, NULL);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    sqlite3_close(c->db);
    free(c);
}
