/* Internal to the runtime: per-pod and per-container cgroups, v1 or v2, whichever the host has.
 *
 * Detection never assumes a layout: it reads /proc/self/mountinfo (which hierarchies are mounted
 * where) and /proc/self/cgroup (where this process sits), and places pods under
 * "<our own cgroup>/trainyard/<pod-uid>/<container>" so that limits set on trainyard itself
 * (a systemd unit, a CI sandbox) still hold for its pods. v2 is used when a unified hierarchy
 * offers the memory controller and lets us enable it below our cgroup; otherwise v1 when the
 * memory controller is mounted; otherwise none (the caller falls back to rlimits).
 *
 * Paths given to these functions (`rel`) are relative to the trainyard directory, e.g.
 * "<uid>" or "<uid>/<container>". Every function that writes returns -1 and fills `err`. */
#ifndef TY_RUNTIME_CGROUP_H
#define TY_RUNTIME_CGROUP_H

#include <stdint.h>

#include "base/error.h"

typedef enum { TY_CGROUP_NONE, TY_CGROUP_V1, TY_CGROUP_V2 } ty_cgroup_kind;

typedef struct ty_cgroups {
    ty_cgroup_kind kind;
    char *v2;        /* v2: <unified mount><own>/trainyard */
    char *v1_memory; /* v1: <memory mount><own>/trainyard, or NULL */
    char *v1_cpu;
    char *v1_pids;
} ty_cgroups;

/* Fills `cg` (kind NONE when nothing usable, which is not an error). Release with
 * ty_cgroups_free. Cost: two small /proc reads and a few stat calls. */
void ty_cgroups_detect(ty_cgroups *cg);
/* The same from the texts of a mountinfo and a /proc/<pid>/cgroup file (tests give fixtures
 * whose mount points are plain directories). */
void ty_cgroups_detect_in(ty_cgroups *cg, const char *mountinfo, const char *self);
void ty_cgroups_free(ty_cgroups *cg);
const char *ty_cgroups_kind_name(const ty_cgroups *cg); /* "cgroup v1", "cgroup v2", "none" */

/* CPU limits are a quota of run time per period: cpu_milli/1000 CPUs is cpu_milli * 100 us
 * each 100 ms, at least the kernel's minimum of 1 ms, at most a million CPUs' worth. */
#define TY_CGROUP_CPU_PERIOD_US 100000
#define TY_CGROUP_CPU_QUOTA_MIN_US 1000
int64_t ty_cgroup_cpu_quota_us(int64_t cpu_milli);

/* Creates the cgroup `rel` (and its parents) and sets its limits; mem_bytes or cpu_milli <= 0
 * leave that resource unlimited. */
int ty_cgroup_create(const ty_cgroups *cg, const char *rel, int64_t mem_bytes, int64_t cpu_milli,
                     ty_error *err);
/* Moves the calling process into `rel`: meant for a child between fork and exec. */
int ty_cgroup_join(const ty_cgroups *cg, const char *rel, ty_error *err);
/* The number of OOM kills the kernel did in `rel` so far (0 when unknown). */
int64_t ty_cgroup_oom_kills(const ty_cgroups *cg, const char *rel);
/* SIGKILLs every process in `rel` and its descendants; returns how many were signalled. */
int ty_cgroup_kill(const ty_cgroups *cg, const char *rel);
/* Removes `rel` and its descendants (they must be empty of processes). Missing is fine. */
int ty_cgroup_remove(const ty_cgroups *cg, const char *rel, ty_error *err);

#endif
