/* Checkpoints of the store's write-ahead log, away from the thread that writes.
 *
 * SQLite's automatic checkpoint runs inside the COMMIT that fills the WAL past its limit: that
 * commit copies every page of the WAL into the database file and fsyncs it, several ms to tens
 * of ms, and in the server that commit is the one an API answer or a watch event waits for.
 * Here the writer's connection only notes how long its WAL is (a WAL hook, after each commit)
 * and wakes a thread that runs a PASSIVE checkpoint on a second connection of its own. A
 * passive checkpoint never blocks the writer and is never blocked by it: it copies what is
 * committed, and SQLite restarts the WAL from its beginning at the first write after a
 * complete one. Durability is unchanged (a commit is durable once its WAL frames are synced).
 * A checkpoint's fsync of the database file delays the writer's own fsyncs, so the thread
 * runs one once `pages` frames wait and the writer has paused (10 ms), or at once when four
 * times that many wait; the WAL is bounded at eight times (see checkpoint.c).
 *
 * Not part of the public API: store.c uses it for databases it opens. */
#ifndef TY_STORE_CHECKPOINT_INT_H
#define TY_STORE_CHECKPOINT_INT_H

#include <sqlite3.h>
#include <stdint.h>

typedef struct ty_store_ckpt ty_store_ckpt;

/* Takes over checkpointing of `db` (opened on db_path, in WAL mode): its automatic
 * checkpoints are turned off and a thread checkpoints once `pages` frames of the WAL are not
 * copied yet, at a pause of the writer. NULL when the thread or its connection cannot be
 * had; `db` then keeps SQLite's automatic checkpoints. */
ty_store_ckpt *ty_store_ckpt_start(sqlite3 *db, const char *db_path, int pages);
/* How many checkpoints were done (the thread's and the writer's own). */
uint64_t ty_store_ckpt_runs(ty_store_ckpt *c);
/* Stops the thread (waiting for a checkpoint in progress) and closes its connection; `db`
 * gets its automatic checkpoints back. Call before closing `db`. Accepts NULL. */
void ty_store_ckpt_stop(ty_store_ckpt *c);

#endif
