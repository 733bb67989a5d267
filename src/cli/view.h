/* What `trainyard run` shows while jobs run.
 *
 * On a terminal: a table redrawn in place, per job its state and per replica its phase,
 * restarts, elapsed time and last log line, with a progress bar when the workload prints
 * `epoch=N/M`. Elsewhere (a pipe, a file, or with --follow): one plain line per change,
 * `pod/<name>: <state>` and `<kind>/<name>: <condition>: <message>`. With follow, every new log
 * line of every container is printed as `[<pod>] <line>`.
 *
 * Ownership: the view borrows the runtime (for log paths); the caller keeps the jobs array. */
#ifndef TY_CLI_VIEW_H
#define TY_CLI_VIEW_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

#include "runtime/runtime.h"
#include "store/store.h"

typedef struct ty_view ty_view;

ty_view *ty_view_new(FILE *out, bool follow, ty_runtime *rt);
/* Shows the current state of `jobs` (an array of job objects) and their pods. `final`: the
 * last call, after every pod stopped (drains the logs when following). */
void ty_view_update(ty_view *v, ty_store *store, const json_t *jobs, bool final);
/* The run begins stopping every pod, because of `why` ("interrupted: SIGINT received"): pods
 * running now are shown stopped for that reason once they end, and jobs that have not
 * finished by the last update as "Stopped: why" (not as the Running they were). */
void ty_view_stopping(ty_view *v, ty_store *store, const char *why);
/* Why a queued job (kueue.x-k8s.io/queue-name) waits: its Workload's QuotaReserved reason,
 * or the warning that keeps it from having one. NULL for a job that does not wait in a queue.
 * Caller frees. */
char *ty_view_queue_wait(ty_store *store, const json_t *job);
/* A one-off message, e.g. that a signal arrived. */
void ty_view_note(ty_view *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The closing lines: each job's outcome and where the logs are. */
void ty_view_summary(ty_view *v, const json_t *jobs, const char *state_dir);
void ty_view_free(ty_view *v);

#endif
