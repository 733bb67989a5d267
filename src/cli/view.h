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
/* A one-off message, e.g. that a signal arrived. */
void ty_view_note(ty_view *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The closing lines: each job's outcome and where the logs are. */
void ty_view_summary(ty_view *v, const json_t *jobs, const char *state_dir);
void ty_view_free(ty_view *v);

#endif
