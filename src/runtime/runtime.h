/* The node agent's runtime: runs Kubernetes Pods on this machine as supervised process groups.
 *
 * Model. Each pod gets a supervisor process, the shim (`<self_exe> shim <pod-dir>`), which owns
 * the pod's containers: it starts the initContainers one by one to completion, then all
 * containers; each container is its own session and process group (setsid) running its
 * `command` + `args` directly (no image: `command` is required; without it the container waits
 * with CreateContainerConfigError, never retried: it can never start), with the pod's env,
 * workingDir and volumes (hostPath, emptyDir). A container that cannot be started (exec not
 * found or not executable, a bad workingDir, a volume) ends with StartError, exit code 128 and
 * a message naming the error as runc words it (`failed to start container "c": exec: "x":
 * executable file not found in $PATH`), and restarts with back-off as any exit. The shim writes
 * every container's stdout/stderr to <pod-dir>/<container>/<restartCount>.log in the CRI log
 * format ("<RFC 3339 nano time> stdout|stderr F|P <line>"), so logs outlive trainyard, restarts
 * containers per restartPolicy with kubelet's back-off, enforces limits and reports a full v1
 * PodStatus on every change. Pod dirs are <state_dir>/pods/<namespace>_<name>_<uid>/ holding
 * pod.json (the pod as started), state.json (shim pid, container pids and /proc start times,
 * exit codes, the last status: what a later trainyard needs to re-adopt) and the logs.
 *
 * Control channel. Each shim listens on <pod-dir>/control.sock (AF_UNIX stream; trainyard
 * binds it and hands the listener over at spawn, so the first connection never races the
 * shim). One trainyard is attached at a time: it gets the current status at once, then every
 * change, and sends "stop <grace>". The shim does not depend on it: when the connection ends
 * it keeps supervising (logs, restarts, exit codes and the last status in state.json, written
 * atomically) and waits for the next connection.
 *
 * End of a pod. A shim ends when its pod is stopped, and by itself once the pod has ended for
 * good (phase Succeeded or Failed: every container terminated and none will restart, i.e.
 * restartPolicy Never, OnFailure after success, or an init container failed under Never). It
 * then records the final status in state.json (finished), sends it to the attached trainyard,
 * kills what the containers left in its pid namespace, removes its cgroups and exits; the pod
 * dir and its logs stay. The runtime reports that status, then gone=true, as for a stopped pod
 * (the GPUs were freed at the final status). Pods that restart (Always, OnFailure after a
 * failure) keep their shim until stopped.
 *
 * Crashes and restarts (pods_die_with_parent = false, the server). The shim is not tied to
 * trainyard: `kill -9` of trainyard leaves every pod running, with its logs flowing. A new
 * trainyard calls ty_runtime_adopt_all: each pod dir whose shim still runs (pid and /proc
 * start time from state.json, so a reused pid is never taken for it) is reconnected and
 * reports on as if started here (stop, shutdown, log_path, GPUs, gone); a pod that ended while
 * trainyard was down (its shim exited, state.json says finished) reports its recorded final
 * status and exit codes, then gone, once. A pod whose shim died meanwhile is
 * reported from state.json's last status, containers that were running as terminated (exit
 * code 137, reason Error, a message saying the supervisor was lost; phase Failed), then gone,
 * so the node agent and the job controller apply the restart policy; what is left of its
 * processes is killed. Ends already recorded (the caller marks them with
 * ty_runtime_end_recorded once its record is durable: <pod-dir>/gone) are not reported
 * again; dirs without pod.json/state.json are removed. start_pod refuses a uid
 * whose shim from an earlier trainyard still runs: a pod never runs twice at once.
 * On a clean SIGTERM, a server either stops its pods (ty_runtime_shutdown; they are gone for
 * good) or leaves them for the next server (ty_runtime_detach, then adopt_all after restart).
 * With pods_die_with_parent (`trainyard run`) nothing outlives trainyard, as below.
 *
 * Nothing is left behind. As root, the shim runs its containers in a new pid namespace whose
 * init dies with the shim (so SIGKILL of the shim kills every process of the pod, grandchildren
 * included) and, with pods_die_with_parent, the shim dies with trainyard (PR_SET_PDEATHSIG).
 * Without root the shim is a child subreaper and kills its containers' groups when trainyard
 * dies; processes that leave their group then escape unless cgroups catch them (best effort).
 *
 * Images. With cfg.images_dir, a container whose image is in that store (image/image.h) runs
 * in it: the shim writes an OCI runtime spec (oci.c: the kubelet's merge of command, env,
 * workingDir and user with the image config; mounts; securityContext; GPUs) and runs
 * `crun run` in the foreground on an overlay of the image's layers, so crun is the container's
 * process for logs, exit codes and signals (docs/containers.md). An image not in the store:
 * imagePullPolicy Never -> waiting ErrImageNeverPull; skopeo on $PATH -> the shim pulls it
 * (ContainerCreating "Pulling image"), a failed pull under require_images -> ErrImagePull,
 * ImagePullBackOff and a new try with back-off; require_images without skopeo -> waiting
 * ErrImagePull; else the container runs on the host as below and the status message says so.
 *
 * Limits. limits.memory and limits.cpu go to a cgroup per container (trainyard/<uid>/<name>
 * under trainyard's own cgroup; v2 or v1, detected from /proc/self/mountinfo), swap limited
 * alike; only containers with limits get one (joining a v1 cgroup costs ~10 ms, and the pid
 * namespace already holds every process). Without cgroups memory becomes RLIMIT_AS and cpu is
 * not enforced. The status message says what was enforced ("enforced: c: memory 512Mi (cgroup
 * v1) cpu 1000m (cfs quota)") and that `image` is recorded but the pod runs on the host. An OOM
 * kill is reported as reason OOMKilled, exit code 137. Requests are not enforced (the
 * scheduler's business). Cgroups are removed when the pod ends, also after a killed shim.
 * GPUs (limits["nvidia.com/gpu"]) are distinct devices per container, never shared, given as
 * CUDA_VISIBLE_DEVICES / NVIDIA_VISIBLE_DEVICES (indices, CUDA_DEVICE_ORDER=PCI_BUS_ID so
 * they match NVML); pods without GPUs get CUDA_VISIBLE_DEVICES="" (all hidden).
 *
 * Environment of a container: trainyard's own environment (minus TRAINYARD_*), then POD_IP,
 * POD_NAME, POD_NAMESPACE, HOSTNAME (the pod's hostname, see Network; else its name),
 * CUDA_VISIBLE_DEVICES, NVIDIA_VISIBLE_DEVICES,
 * CUDA_DEVICE_ORDER, then spec env in order (value with $(VAR) expansion over the variables
 * defined before it other than the host's; valueFrom.fieldRef for metadata.name/namespace/uid,
 * metadata.labels['k'], metadata.annotations['k'], status.podIP, status.hostIP, spec.nodeName,
 * spec.serviceAccountName; others: CreateContainerConfigError). command and args are
 * $(VAR)-expanded over the final env the same way; $$ is a literal $.
 *
 * Restart policy (spec.restartPolicy, default Always) as kubelet: Always restarts every exit,
 * OnFailure non-zero exits, Never nothing; init containers restart only on failure and never
 * under Never (the pod then fails). Back-off before the n-th restart: base * 2^(n-1), capped at
 * 30 * base (base 10 s -> cap 300 s); the env TRAINYARD_RESTART_BACKOFF_MS, read by
 * ty_runtime_new, sets the base (for tests); the container waits with CrashLoopBackOff
 * meanwhile, and a run longer than 2 x the cap resets the back-off, as the kubelet forgets old
 * crashes. restartCount counts restarts done; lastState holds
 * the previous run. Phase as kubelet computes it (a container waiting to restart counts as
 * stopped, so an Always pod between crashes is Running).
 *
 * Probes. The shim runs each container's livenessProbe, readinessProbe and startupProbe as
 * the kubelet does (httpGet, tcpSocket, exec; docs/serving.md): readiness sets the container's
 * ready and the pod's Ready/ContainersReady conditions, a failed liveness or startup probe
 * kills the container, which restarts per restartPolicy; failures and kills are reported as
 * events (ty_runtime_set_event_fn). A probe the shim cannot run fails each check saying why.
 *
 * Pod addresses come from the caller (allocate them with ty_ipam, runtime/ipam.h); the runtime
 * hands them to the pod (POD_IP, status.podIP).
 *
 * Network. With a pod network (cfg.net, net/podnet.h: as root) a pod that is not hostNetwork
 * runs in its own network namespace, made by start_pod (lo, eth0 at its address on the
 * instance's bridge, the default route via the gateway, which is also status.hostIP) and
 * joined by the shim before anything else, so all the pod's containers share it; and in its
 * own UTS namespace with the kubelet's hostname (spec.hostname or the pod's name, cut to 63;
 * HOSTNAME in the env). The kubelet's /etc/hosts, /etc/resolv.conf and /etc/hostname are
 * written to <pod-dir>/etc/ and the first two bind-mounted over the host's in each container's
 * private mount namespace (unless a volumeMount claims that path). The namespace lives as
 * long as the pod's processes; the veth and the pod's record go when the pod is gone, and the
 * ones of pods that died while no trainyard ran at the next start (ty_podnet_sweep). Without
 * a pod network (not root, or namespaces refused) pods share the host's network namespace,
 * each with its own loopback address (127.16.0.0/12), and /etc is the host's.
 *
 * Volumes: hostPath (type DirectoryOrCreate or unset creates the directory; Directory/File are
 * checked) and emptyDir (<pod-dir>/volumes/<name>), bind-mounted at mountPath in a private mount
 * namespace per container (the mount point is created on the host when missing; the mount never
 * shows there). A mountPath that already is the source needs no mount. Mounting needs root:
 * otherwise the container ends with StartError saying so. Other volume types: StartError.
 *
 * Cost: start_pod to the first container's exec takes ~4-8 ms on 2 busy cores (release build;
 * measured by test_runtime's start_to_exec_is_fast, which includes the status line coming back).
 *
 * Threading: everything runs on the caller's single libuv loop; no function blocks for long
 * (start_pod writes pod.json and spawns one process). Not thread-safe. */
#ifndef TY_RUNTIME_RUNTIME_H
#define TY_RUNTIME_RUNTIME_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "base/error.h"
#include "net/podnet.h"

typedef struct ty_runtime ty_runtime;

typedef struct ty_runtime_config {
    const char *state_dir;       /* pod dirs go to <state_dir>/pods/ (created when missing) */
    const char *self_exe;        /* the trainyard binary, run as the shim; must be executable */
    int gpus;                    /* -1: detect with NVML (no library = 0 GPUs); >= 0: declared */
    bool pods_die_with_parent;   /* `trainyard run`: pods end when trainyard ends, even SIGKILL */
    const char *default_workdir; /* workingDir when a container sets none; NULL = "/" */
    const char *node_name;       /* spec.nodeName fallback for the downward API; may be NULL */
    /* `trainyard run`: a pod with a controller owner (its job) gets TRAINYARD_JOB_DIR, the
     * directory <state_dir>/jobs/<ns>_<owner>_<owner uid>/ (0700, made by its shim) that
     * outlives the job's pods, e.g. for checkpoints across gang restarts. It goes with the
     * run's state; the server sets none (nothing there would remove it). */
    bool job_dirs;
    /* The pod network (borrowed; outlives the runtime), or NULL: pods share this machine's
     * network namespace, each with its loopback address. With it, a pod that is not
     * hostNetwork gets its own network and UTS namespaces (see "Network" above). */
    ty_podnet *net;
    /* The image store (image/image.h) containers whose image it holds run from, through crun;
     * NULL: every container runs on the host. require_images: a container whose image is
     * not there waits with ErrImagePull instead of running on the host. */
    const char *images_dir;
    bool require_images;
} ty_runtime_config;

/* Called on the loop whenever a pod's status changes. `status` is a full v1 PodStatus (phase,
 * conditions, podIP(s), hostIP(s), startTime, message, reason, initContainerStatuses,
 * containerStatuses with state/lastState/ready/started/restartCount) and a NEW REFERENCE owned
 * by the callee (json_decref it). gone=true exactly once per started pod, last, after the pod
 * was stopped, ended for good (its final status comes with it) or its shim died, and every
 * process of it is ended; the pod's GPUs are free again by then (already at the final status).
 * gone=true does not mean the pod was deleted: its status is final, its logs stay. If the shim died unexpectedly, the final status has phase Failed and says so.
 * The callback may call ty_runtime_* functions (start, stop), but not ty_runtime_free. */
typedef void (*ty_runtime_status_fn)(void *ctx, const char *ns, const char *name,
                                     const char *uid, json_t *status, bool gone);

/* Called on the loop for what a pod's supervisor saw happen to a container that the kubelet
 * records as an Event on the pod: its probes' failures ("Unhealthy", "Liveness probe failed:
 * ..."), and kills they ordered ("Killing", "Container c failed liveness probe, will be
 * restarted"). The strings are borrowed for the call. */
typedef void (*ty_runtime_event_fn)(void *ctx, const char *ns, const char *name,
                                    const char *uid, const char *type, const char *reason,
                                    const char *message);

/* Creates the runtime: checks self_exe, creates <state_dir>/pods, detects GPUs. The config's
 * strings are copied. */
int ty_runtime_new(uv_loop_t *loop, const ty_runtime_config *cfg, ty_runtime_status_fn fn,
                   void *ctx, ty_runtime **out, ty_error *err);

/* Where the pods' events go (NULL: nowhere, the default). */
void ty_runtime_set_event_fn(ty_runtime *rt, ty_runtime_event_fn fn, void *ctx);

/* Starts a pod (a v1 Pod object: metadata.name, metadata.uid required, namespace defaults to
 * "default"; the caller keeps `pod`, which is copied) with `pod_ip` as its address (NULL =
 * 127.0.0.1). Fails, changing nothing, when the uid runs already, when not enough GPUs are free
 * (GPUs are never double-assigned; the pod needs max(sum of containers, largest init container)),
 * or when the pod dir or the shim cannot be made. Container-level problems (missing command,
 * bad exec, bad volume) are not errors here: they show in the status as Kubernetes shows them. */
int ty_runtime_start_pod(ty_runtime *rt, const json_t *pod, const char *pod_ip, ty_error *err);

/* Stops a pod: SIGTERM to every container's process group, SIGKILL to what is left after
 * grace_seconds (< 0: the pod's terminationGracePeriodSeconds, default 30), then the status
 * callback with gone=true. Unknown uids and pods already gone (ended for good) are ignored; a repeated stop only matters with
 * grace_seconds = 0, which kills what is left at once. If the shim does not finish within
 * grace + 10 s it is SIGKILLed (its pid namespace takes the containers along). */
void ty_runtime_stop_pod(ty_runtime *rt, const char *uid, int64_t grace_seconds);

/* Stops every pod (each with its own grace period); `done(arg)` runs on the loop once all are
 * gone (immediately, before returning, when no pod runs). Pods started afterwards are refused. */
void ty_runtime_shutdown(ty_runtime *rt, void (*done)(void *), void *arg);

/* Frees the runtime. Call it after shutdown's `done`, or when no pod was ever started; pods
 * still running then are SIGKILLed and their handles closed (the loop must run once more to
 * finish closing them; with a pid namespace nothing survives). Accepts NULL. */
void ty_runtime_free(ty_runtime *rt);

/* The Service proxy's rules (a script of net/proxy.h's ty_proxy_ruleset) for the pods with
 * their own network namespace (the runtime keeps each one's open; an adopted pod's is its
 * shim's): each pod started from here on gets them before its shim runs, so a container's
 * first connect already goes through them (`empty`: they proxy nothing, which a starting pod
 * does not need); the running pods get them from the loop, in slices of at most 10 ms a turn,
 * newer rules replacing older ones not yet applied. The same rules again are a no-op. A
 * failure is logged, once. */
void ty_runtime_set_service_rules(ty_runtime *rt, const char *rules, bool empty);

/* Re-adopts the pod in `pod_dir` (<state_dir>/pods/<ns>_<name>_<uid>, left by an earlier
 * trainyard; see "Crashes and restarts" above). Returns 1 when the pod is now this runtime's:
 * its shim runs and is reconnected (its current status follows on the loop), or it is dead and
 * its last status then gone=true follow on the loop; its GPUs count as used until it ends.
 * Returns 0 when there is nothing to adopt: the uid is this runtime's already, its end was
 * reported before, or the dir had no pod.json/state.json (it is removed). Fails when the
 * runtime is shutting down. Call it before starting pods that could carry the same uids. */
int ty_runtime_adopt(ty_runtime *rt, const char *pod_dir, ty_error *err);

/* ty_runtime_adopt for every dir in <state_dir>/pods/ not held by this runtime; a pod that
 * cannot be adopted is logged and skipped. Returns how many pods were adopted, or fails when
 * the directory cannot be read. */
int ty_runtime_adopt_all(ty_runtime *rt, ty_error *err);

/* Lets go of every pod without stopping it: closes the channels (the shims keep the pods
 * running and wait for the next trainyard), frees their GPUs here, reports nothing more for
 * them; `done(arg)` runs on the loop when every handle is closed (before returning when no pod
 * runs). Pods started afterwards are refused; then call ty_runtime_free. With
 * pods_die_with_parent the pods still end when this process does. */
void ty_runtime_detach(ty_runtime *rt, void (*done)(void *), void *arg);

/* The caller has recorded the pod's end durably (its final status, as reported with
 * gone=true): writes <pod-dir>/gone, after which a later trainyard's adopt does not report
 * that end again. Until then every start reports it again (from state.json, exit codes
 * included), so a crash between the report and its commit loses nothing. No-op for a pod
 * that still runs or has no dir. */
void ty_runtime_end_recorded(ty_runtime *rt, const char *ns, const char *name, const char *uid);
/* The pod's object is gone: its dir (logs, state) is removed, at once, or right after the
 * pod's gone report when it still runs (this does not stop it). */
void ty_runtime_remove_pod(ty_runtime *rt, const char *ns, const char *name, const char *uid);
/* Removes the dirs in <state_dir>/pods/ whose uid has no pod object (`exists` says), as
 * ty_runtime_remove_pod; an adopted pod still running there is stopped at once first (its
 * object was deleted while trainyard was down: nothing else would stop it). Call it after
 * adopt_all. Returns how many dirs were found without an object. */
int ty_runtime_sweep(ty_runtime *rt, bool (*exists)(void *ctx, const char *uid), void *ctx,
                     ty_error *err);

/* One container's resource use, as a sample for metrics (ty_runtime_usage): cumulative CPU
 * time of its processes (ns; those it reaped included) and their resident memory. */
typedef void (*ty_runtime_usage_fn)(void *ctx, const char *ns, const char *name, const char *uid,
                                    const char *container, uint64_t cpu_ns,
                                    uint64_t memory_bytes);
/* Samples every running container of every pod of this runtime (main containers that run
 * now: their pids from the pod's state.json) in one pass over /proc, calling `fn` for each.
 * Costs about 15-20 us a process on the machine. */
int ty_runtime_usage(ty_runtime *rt, ty_runtime_usage_fn fn, void *ctx, ty_error *err);
/* This machine's cumulative CPU time in use (ns) and memory working set (bytes). */
int ty_runtime_node_usage(uint64_t *cpu_ns, uint64_t *memory_bytes, ty_error *err);

/* GPUs this node has (detected or declared). */
int ty_runtime_gpu_count(const ty_runtime *rt);
/* GPUs of this machine's node (cfg.gpus) not assigned to a running pod. */
int ty_runtime_gpus_free(const ty_runtime *rt);
/* Gives node `node_name` its own GPUs, indices 0..gpus-1 (virtual nodes: every node has its
 * own devices, as separate machines would). A pod whose spec.nodeName is such a node gets
 * distinct GPUs of that node (never shared within the node); pods of other nodes take from
 * cfg.gpus. Declare nodes before starting or adopting their pods; declaring one again resets
 * its pool (only when none of its pods run). */
void ty_runtime_set_node_gpus(ty_runtime *rt, const char *node_name, int gpus);
/* Free GPUs of `node_name`'s pool (cfg.gpus' for a node without one). */
int ty_runtime_node_gpus_free(const ty_runtime *rt, const char *node_name);
/* Whether the pod with this uid is this runtime's (started or adopted, not yet gone). */
bool ty_runtime_has_pod(const ty_runtime *rt, const char *uid);
/* The directory of a pod (made by start_pod, which keeps what is there; removed with the
 * pod): where files the pod mounts can be put before it starts. Caller frees. */
char *ty_runtime_pod_dir(const ty_runtime *rt, const char *ns, const char *name,
                         const char *uid);

/* Path of a container's log for one run (restart = its restartCount then), also for pods that
 * are gone as long as their dir exists. Returns a new string (caller frees) or NULL when the pod
 * dir is unknown; the file itself may not exist (yet). */
char *ty_runtime_log_path(const ty_runtime *rt, const char *uid, const char *container,
                          int restart);

#endif
