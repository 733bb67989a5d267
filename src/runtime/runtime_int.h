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
 * current status at once, then one line per status change ("status <PodStatus JSON>"), and
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

/* The supervisor's entry point; returns the process exit status. */
int ty_rt_shim_main(const char *pod_dir);

#endif
