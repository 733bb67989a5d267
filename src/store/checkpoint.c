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
    /* Under mu. The WAL's frames the last checkpoint copied; the WAL's length the writer saw
     * last (a shorter WAL has restarted, and nothing of it is copied yet); how many times it
     * restarted (a count taken from an older WAL is dropped). */
    int copied, last_pages;
    unsigned restarts;
};

/* A WAL restarts only at a write that begins after a checkpoint copied all of it. Under
 * steady writes the thread's checkpoint never is complete by then (the writer commits while it
 * fsyncs the database), so past twice the mark the writer copies the few frames left itself,
 * between two of its transactions, and its next write starts the WAL again. */
#define CATCH_UP_FRAMES 64

/* Called by SQLite on the writer's thread after each commit (its write lock released), with
 * the WAL's length in pages. The thread is woken for every `pages` frames not yet copied (not
 * for every commit once the WAL is long: each checkpoint fsyncs the database file, and a
 * flush of the disk delays the commit that an answer waits for). */
static int on_wal(void *ctx, sqlite3 *db, const char *name, int pages)
{
    ty_store_ckpt *c = ctx;
    pthread_mutex_lock(&c->mu);
    if (pages < c->last_pages) {
        c->copied = 0;
        c->restarts++;
    }
    c->last_pages = pages;
    int left = pages - c->copied;
    bool wake = left >= c->pages && !c->wanted;
    if (wake) {
        c->wanted = true;
        pthread_cond_signal(&c->cv);
    }
    pthread_mutex_unlock(&c->mu);
    /* Past 4 times the mark (a thread that cannot keep up) the writer checkpoints all of it
     * itself, as SQLite would, so the WAL stays bounded; past twice the mark it copies a
     * short rest (see CATCH_UP_FRAMES). */
    if (pages >= 4 * c->pages || (pages >= 2 * c->pages && left <= CATCH_UP_FRAMES)) {
        int log = 0, done = 0;
        if (sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, &log, &done) ==
            SQLITE_OK) {
            pthread_mutex_lock(&c->mu);
            c->copied = done;
            pthread_mutex_unlock(&c->mu);
        }
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
        unsigned restarts = c->restarts;
        pthread_mutex_unlock(&c->mu);
        /* One round: what is committed meanwhile waits for the next wake (on_wal). */
        int log = 0, done = 0;
        int rc = sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
        /* A failed checkpoint loses nothing: the frames stay in the WAL for the next. */
        if (rc != SQLITE_OK && rc != SQLITE_BUSY)
            ty_log(TY_LOG_WARN, "store: checkpoint: %s", sqlite3_errstr(rc));
        pthread_mutex_lock(&c->mu);
        if (rc == SQLITE_OK && restarts == c->restarts && done > c->copied)
            c->copied = done;
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
