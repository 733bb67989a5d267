#include "store/store_int.h"

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "base/log.h"
#include "base/mem.h"

struct ty_store_ckpt {
    sqlite3 *writer; /* the store's connection, whose WAL hook wakes the thread */
    sqlite3 *db;     /* the thread's own connection */
    int pages;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool wanted, running, stopping;
    /* Under mu. The WAL's frames the last checkpoint copied (or is copying, while running);
     * the WAL's length the writer saw last (a shorter WAL has restarted, and nothing of it
     * is copied yet); how many times it restarted (a count taken from an older WAL is
     * dropped); when the writer last committed. */
    int copied, last_pages;
    unsigned restarts;
    int64_t last_commit_ns;
    uint64_t runs; /* checkpoints done, the thread's and the writer's */
};

/* A checkpoint writes the WAL's pages into the database file and fsyncs it: with a large
 * database, thousands of scattered pages and 5-15 ms during which the disk answers the
 * writer's own fsyncs (the commits that API answers wait for) late. So the thread waits for
 * the writer to pause this long before it starts one... */
#define PAUSE_NS (10 * 1000 * 1000)
/* ...unless this many times the mark is not copied yet (16 MB of a busy writer's WAL). */
#define URGENT_MARKS 4
/* Past this many times the mark the WAL is too long (a thread that cannot keep up): the
 * writer checkpoints all of it itself, as SQLite would. */
#define BOUND_MARKS 8
/* A WAL restarts only at a write that begins after a checkpoint copied all of it, which an
 * urgent checkpoint under steady writes never is. Past twice the mark the writer copies a
 * rest this short itself, between two of its transactions, and its next write starts the WAL
 * again. */
#define CATCH_UP_FRAMES 64

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Called by SQLite on the writer's thread after each commit (its write lock released), with
 * the WAL's length in pages. The thread is woken for every `pages` frames not yet copied. */
static int on_wal(void *ctx, sqlite3 *db, const char *name, int pages)
{
    ty_store_ckpt *c = ctx;
    pthread_mutex_lock(&c->mu);
    if (pages < c->last_pages) {
        c->copied = 0;
        c->restarts++;
    }
    c->last_pages = pages;
    c->last_commit_ns = now_ns();
    int left = pages - c->copied;
    if (left >= c->pages && !c->wanted && !c->running) {
        c->wanted = true;
        pthread_cond_signal(&c->cv);
    }
    pthread_mutex_unlock(&c->mu);
    if (pages >= BOUND_MARKS * c->pages || (pages >= 2 * c->pages && left <= CATCH_UP_FRAMES)) {
        int log = 0, done = 0;
        if (sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, &log, &done) ==
            SQLITE_OK) {
            pthread_mutex_lock(&c->mu);
            c->copied = done;
            c->runs++;
            pthread_mutex_unlock(&c->mu);
        }
    }
    return SQLITE_OK;
}

/* Under mu: until the writer has paused PAUSE_NS, or the WAL is URGENT_MARKS behind. */
static void wait_for_pause(ty_store_ckpt *c)
{
    while (!c->stopping && c->last_pages - c->copied < URGENT_MARKS * c->pages) {
        int64_t until = c->last_commit_ns + PAUSE_NS;
        if (now_ns() >= until)
            return;
        struct timespec ts = {.tv_sec = until / 1000000000, .tv_nsec = until % 1000000000};
        pthread_cond_timedwait(&c->cv, &c->mu, &ts);
    }
}

static void *run(void *arg)
{
    ty_store_ckpt *c = arg;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        while (!c->wanted && !c->stopping)
            pthread_cond_wait(&c->cv, &c->mu);
        wait_for_pause(c);
        if (c->stopping)
            break;
        c->wanted = false;
        c->running = true;
        unsigned restarts = c->restarts;
        pthread_mutex_unlock(&c->mu);
        int log = 0, done = 0;
        int rc = sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
        /* A failed checkpoint loses nothing: the frames stay in the WAL for the next. */
        if (rc != SQLITE_OK && rc != SQLITE_BUSY)
            ty_log(TY_LOG_WARN, "store: checkpoint: %s", sqlite3_errstr(rc));
        pthread_mutex_lock(&c->mu);
        c->running = false;
        c->runs += rc == SQLITE_OK;
        if (rc == SQLITE_OK && restarts == c->restarts && done > c->copied)
            c->copied = done;
        /* What was committed meanwhile waits for the next pause (or the next mark): copied
         * then, it lets the WAL restart there instead of growing past the mark. */
        if (c->last_pages > c->copied && c->last_pages >= c->pages)
            c->wanted = true;
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
    /* wait_for_pause() counts in CLOCK_MONOTONIC */
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cv, &ca);
    pthread_condattr_destroy(&ca);
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

uint64_t ty_store_ckpt_runs(ty_store_ckpt *c)
{
    pthread_mutex_lock(&c->mu);
    uint64_t n = c->runs;
    pthread_mutex_unlock(&c->mu);
    return n;
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
