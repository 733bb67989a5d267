/* Internal to the runtime: what the parent (runtime.c) and the pod supervisor (shim.c) share.
 *
 * The parent writes <pod-dir>/pod.json = {"pod": <v1 Pod>, "runtime": {...}} with these keys in
 * "runtime": podIP, hostIP, nodeName, workdir (default workingDir), gpus (array of device ids
 * handed to this pod, in order; containers take consecutive slices), dieWithParent, parentPid,
 * backoffMs (restart back-off base), and, for a pod with its own network, network: {netnsFd
 * (the pod's network namespace, open in the shim as that fd: it joins it, then a new UTS
 * namespace), hostname, etcDir (<pod-dir>/etc with the kubelet's hosts, resolv.conf and
 * hostname; hosts and resolv.conf are bind-mounted over /etc's in each container)}.
 * It binds and listens on the control socket
 * <pod-dir>/control.sock (AF_UNIX, SOCK_STREAM) and spawns `<self_exe> shim <pod-dir>` with that
 * listening socket as its stdin, then connects to it like any later trainyard does. The shim
 * accepts one client at a time (a newer connection replaces the older one), sends it the
 * current status at once, then one line per status change ("status <PodStatus JSON>") and
 * one per event the kubelet would record ("event {type, reason, message}": probe failures and
 * the kills they order), and
 * reads commands, one per line ("stop <grace-seconds>"). A client that goes away changes
 * nothing: the pod keeps running and the listener waits for the next trainyard.
 *
 * The shim writes <pod-dir>/state.json atomically (write + rename) on each change: shimPid and
 * shimStartTime (the outer shim process, as the host sees it), pidNamespace, finished (true in
 * the last write of a shim that ended its pod cleanly: stopped, or ended for good, after which
 * the shim exits on its own), containers (name, init, pid, startTime,
 * restartCount, running or exitCode) and status (the last PodStatus). That is what a later
 * trainyard re-adopts from. */
#ifndef TY_RUNTIME_RUNTIME_INT_H
#define TY_RUNTIME_RUNTIME_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "base/error.h"

/* $(VAR) expansion as Kubernetes does it for env values, command and args: $(NAME) is replaced
 * by the value of NAME when `lookup` knows it and kept verbatim otherwise; $$ is an escaped $;
 * any other $ is kept. Caller frees the result. */
typedef const char *(*ty_rt_lookup_fn)(void *ctx, const char *name, size_t len);
char *ty_rt_expand(const char *s, ty_rt_lookup_fn lookup, void *ctx);

/* Start time of process `pid` (field 22 of /proc/<pid>/stat, clock ticks since boot; pid <= 0:
 * the caller), or 0 when there is no such process or it is a zombie. A pid with its start time
 * names one process for good: pids are reused, start times with them are not. */
unsigned long long ty_rt_proc_start(int pid);

/* Fills `addr` with an address for <dir>/control.sock. A sun_path holds 107 bytes; longer paths
 * go through /proc/self/fd/<dirfd>/, so *dirfd is an O_PATH descriptor of dir to close after
 * bind/connect (-1 when none was needed). Returns the address length or -1 with errno. */
struct sockaddr_un;
int ty_rt_ctl_addr(const char *dir, struct sockaddr_un *addr, int *dirfd);

/* Writes `doc` as compact JSON to `path`, created (or truncated) with mode 0600: a pod's
 * files hold its env values, which are nobody else's business. -1 with errno on failure. */
int ty_rt_write_json_private(const char *path, const json_t *doc);

/* Who a container runs as (identity.c): from the container's securityContext, else the
 * pod's, runAsUser and runAsGroup (no group: the user's primary group from /etc/passwd, else
 * 0), with fsGroup and supplementalGroups as supplementary groups. `set` is false when nothing
 * changes. */
typedef struct ty_rt_identity {
    bool set;
    uid_t uid;
    gid_t gid;
    gid_t groups[64];
    int ngroups;
} ty_rt_identity;
/* Reads the securityContexts; -1 with a message when they cannot be honoured (another user
 * without root, runAsNonRoot that would run as root). */
int ty_rt_identity_plan(const json_t *pod_spec, const json_t *ctr_spec, ty_rt_identity *id,
                        ty_error *err);
/* In the child before exec: setgroups, setgid, setuid. -1 with errno and *what on failure. */
int ty_rt_identity_apply(const ty_rt_identity *id, const char **what);

/* ---- containers from images (oci.c) ------------------------------------------------------
 * A container whose image is in the store runs through crun from an OCI runtime spec that
 * trainyard writes; these build it, merging the image config with the pod spec as Kubernetes
 * does. Pure functions of their inputs (tested in test_oci). */

/* The command as the kubelet merges it: `command` replaces the image's Entrypoint and drops
 * its Cmd, `args` replace Cmd. A new array of strings (not yet $(VAR)-expanded); -1 with a
 * message when the result is empty. */
int ty_rt_oci_command(const json_t *ctr_spec, const json_t *image_config, json_t **out,
                      ty_error *err);

/* Who the container runs as: runAsUser/runAsGroup (container over pod) over the image's User
 * ("uid", "uid:gid", "name", "name:group", names resolved in the image's /etc/passwd and
 * /etc/group, read from `layers` top down), fsGroup and supplementalGroups as additional
 * groups; runAsNonRoot checked as the kubelet does, with its messages. `pod_label` names the
 * pod in them (name_namespace(uid)). */
typedef struct ty_rt_oci_user {
    unsigned uid, gid;
    json_t *groups; /* additional gids (array), owned */
} ty_rt_oci_user;
int ty_rt_oci_resolve_user(const json_t *pod_spec, const json_t *ctr_spec,
                           const json_t *image_config, char *const *layers, size_t n_layers,
                           const char *pod_label, const char *ctr_name, ty_rt_oci_user *out,
                           ty_error *err);

typedef struct ty_rt_oci_in {
    const json_t *pod_spec, *ctr_spec;
    const ty_rt_oci_user *user;
    const json_t *args; /* final argv (array of strings) */
    const json_t *env;  /* final environment ("K=V" strings) */
    const char *cwd;
    const json_t *mounts; /* [{"src", "dst", "ro"}]: volumes, /etc files, ... */
    const json_t *gpus;   /* GPU indices handed to this container (strings), or NULL */
} ty_rt_oci_in;
/* The config.json: process, root (rootfs, readonly per readOnlyRootFilesystem), mounts
 * (/proc, /dev, /dev/pts, /dev/shm, /dev/mqueue, /sys and `mounts`), namespaces (pid, ipc,
 * mount: network and UTS are not listed, so the container keeps the shim's, which are the
 * pod's), capabilities (containerd's default set, add/drop, privileged), noNewPrivileges,
 * seccomp RuntimeDefault (ty_rt_oci_seccomp), masked and read-only paths, GPU devices. */
json_t *ty_rt_oci_spec(const ty_rt_oci_in *in, ty_error *err);
/* trainyard's RuntimeDefault seccomp profile (docs/containers.md). */
json_t *ty_rt_oci_seccomp(void);

/* ---- probes (probe.c) --------------------------------------------------------------------
 * The kubelet's container probes, run by the shim on its loop (see shim.c for the workers).
 * Parsing and the result counters are pure (test_probe); the network checks are libuv
 * handles on the caller's loop: a non-blocking connect, a write, a read, one timer. */

typedef enum { TY_PROBE_STARTUP, TY_PROBE_LIVENESS, TY_PROBE_READINESS } ty_rt_probe_kind;
typedef enum { TY_PROBE_HTTP, TY_PROBE_TCP, TY_PROBE_EXEC } ty_rt_probe_action;

typedef struct ty_rt_probe_spec {
    ty_rt_probe_kind kind;
    ty_rt_probe_action action;
    char *host;      /* httpGet/tcpSocket host, or NULL: the pod's address */
    int port;        /* resolved: a name is looked up in the container's ports */
    char *path;      /* httpGet path, "/" by default */
    json_t *headers; /* httpGet httpHeaders [{name, value}] (owned), or NULL */
    json_t *command; /* exec command (owned array of strings), or NULL */
    int initial_delay_s, period_s, timeout_s, success_threshold, failure_threshold;
    int64_t grace_s; /* probe-level terminationGracePeriodSeconds, or -1 */
} ty_rt_probe_spec;

/* "Liveness", "Readiness", "Startup": the word the kubelet's events start with. */
const char *ty_rt_probe_kind_name(ty_rt_probe_kind kind);
/* Reads a container's probe (its livenessProbe, readinessProbe or startupProbe) with the
 * kubelet's defaults: periodSeconds 10, timeoutSeconds 1, successThreshold 1,
 * failureThreshold 3, path "/". Fails with a message naming the field for what the API
 * server would have refused (no handler or two, a port name the container does not declare,
 * a port out of range, successThreshold other than 1 for liveness and startup) and for what
 * trainyard does not run (grpc, scheme HTTPS). */
int ty_rt_probe_parse(const json_t *probe, const json_t *ctr_spec, ty_rt_probe_kind kind,
                      ty_rt_probe_spec *out, ty_error *err);
void ty_rt_probe_spec_free(ty_rt_probe_spec *sp);

/* The result of a probe as the kubelet's worker keeps it: it changes only after
 * successThreshold successes or failureThreshold failures in a row. */
typedef struct ty_rt_probe_state {
    bool result;
    int run; /* consecutive outcomes equal to `last` */
    bool last;
} ty_rt_probe_state;
/* The initial result: readiness and startup start failed, liveness succeeded. */
void ty_rt_probe_reset(ty_rt_probe_state *st, ty_rt_probe_kind kind);
/* Counts one outcome; returns true when the result changed. */
bool ty_rt_probe_observe(ty_rt_probe_state *st, const ty_rt_probe_spec *sp, bool ok);

/* One httpGet or tcpSocket check on `loop`, to the spec's host (else `pod_ip`) and port,
 * bounded by timeoutSeconds. `done` runs once, on the loop, with the outcome and the
 * kubelet's words for a failure (output, "" on success); after it the check frees itself.
 * A check that fails at once (the host is not an address) calls `done` before returning and
 * returns NULL. ty_rt_probe_cancel ends it early without calling `done` (its handles close on the loop). */
typedef void (*ty_rt_probe_done_fn)(void *ctx, bool ok, const char *output);
typedef struct ty_rt_netcheck ty_rt_netcheck;
ty_rt_netcheck *ty_rt_probe_net_start(uv_loop_t *loop, const ty_rt_probe_spec *sp,
                                      const char *pod_ip, ty_rt_probe_done_fn done, void *ctx);
void ty_rt_probe_cancel(ty_rt_netcheck *nc);
/* Whether an HTTP response starting with `resp` (n bytes) is complete enough to judge, and
 * then its status code (200-399 succeed, as the kubelet's prober); 0 when it is not yet a
 * status line, -1 when it is not HTTP. */
int ty_rt_probe_http_status(const char *resp, size_t n);

/* ---- usage (usage.c) ----------------------------------------------------------------------
 * CPU time and resident memory of process trees, read from /proc. */
typedef struct ty_rt_proc {
    int pid, ppid;
    unsigned long long cpu_ticks; /* utime + stime + cutime + cstime: its reaped children too */
    unsigned long long start;     /* field 22: with the pid, names the process */
    unsigned long long rss_pages;
} ty_rt_proc;
typedef struct ty_rt_procs {
    ty_rt_proc *v; /* sorted by ppid */
    size_t n;
    uint64_t ns_per_tick, page_bytes;
} ty_rt_procs;
/* One pass over /proc: every process now. */
int ty_rt_procs_read(ty_rt_procs *out, ty_error *err);
void ty_rt_procs_free(ty_rt_procs *t);
/* The CPU time (ns) and resident bytes of `pid` and all its descendants; false when `pid` is
 * gone or (start != 0) now names a process started at another time. Shared pages count once
 * per process, so the memory is an upper bound of the working set. */
bool ty_rt_procs_subtree(const ty_rt_procs *t, int pid, unsigned long long start,
                         uint64_t *cpu_ns, uint64_t *rss_bytes);
/* This machine's CPU time in use since boot (all CPUs, ns; idle and iowait excluded) and its
 * memory working set (MemTotal - MemAvailable). */
int ty_rt_node_usage(uint64_t *cpu_ns, uint64_t *working_set_bytes, ty_error *err);

/* The supervisor's entry point; returns the process exit status. */
int ty_rt_shim_main(const char *pod_dir);

#endif
