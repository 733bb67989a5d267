/* The OCI runtime spec of a container that runs from an image (runtime_int.h). */
#include <ctype.h>
#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/mem.h"
#include "runtime/runtime_int.h"

int ty_rt_oci_command(const json_t *ctr_spec, const json_t *image_config, json_t **out,
                      ty_error *err)
{
    json_t *cmd = json_object_get(ctr_spec, "command");
    json_t *args = json_object_get(ctr_spec, "args");
    json_t *argv = json_array();
    if (json_array_size(cmd)) {
        json_array_extend(argv, cmd);
        json_array_extend(argv, args);
    } else {
        json_t *ep = json_object_get(image_config, "Entrypoint");
        if (json_is_array(ep))
            json_array_extend(argv, ep);
        if (json_array_size(args))
            json_array_extend(argv, args);
        else if (json_is_array(json_object_get(image_config, "Cmd")))
            json_array_extend(argv, json_object_get(image_config, "Cmd"));
    }
    size_t i;
    json_t *a;
    json_array_foreach(argv, i, a) if (!json_is_string(a)) {
        json_decref(argv);
        return ty_fail(err, "command element %zu is not a string", i);
    }
    if (!json_array_size(argv)) {
        json_decref(argv);
        return ty_fail(err, "no command specified: the image has no Entrypoint or Cmd and the "
                       "container sets no command");
    }
    *out = argv;
    return 0;
}

/* ---- users ---------------------------------------------------------------------------- */

static bool numeric(const char *s)
{
    if (!s || !*s)
        return false;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return false;
    return true;
}

/* The topmost layer's copy of `rel` (etc/passwd): the file the container would see, whiteouts
 * aside. NULL when none has it. */
static char *image_file(char *const *layers, size_t n, const char *rel)
{
    for (size_t i = n; i-- > 0;) {
        char *p = ty_asprintf("%s/%s", layers[i], rel);
        struct stat sb;
        if (lstat(p, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size < (1 << 22))
            return p;
        free(p);
    }
    return NULL;
}

/* Looks a name (or a numeric id) up in a passwd/group style file: fields[2] is the id,
 * fields[3] (passwd) the primary gid. -1 when absent. */
static int lookup(char *const *layers, size_t n, const char *file, const char *key, bool by_id,
                  long long *id, long long *gid)
{
    TY_AUTOFREE char *path = image_file(layers, n, file);
    TY_AUTOBUF ty_buf b = TY_BUF_INIT;
    if (!path || ty_buf_read_file(&b, path) < 0)
        return -1;
    char *save = NULL;
    for (char *line = strtok_r(b.data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *f[4] = {0};
        char *p = line;
        for (int k = 0; k < 4 && p; k++) {
            f[k] = p;
            p = strchr(p, ':');
            if (p)
                *p++ = '\0';
        }
        if (!f[2])
            continue;
        if (strcmp(by_id ? f[2] : f[0], key) == 0) {
            *id = strtoll(f[2], NULL, 10);
            if (gid)
                *gid = f[3] ? strtoll(f[3], NULL, 10) : -1;
            return 0;
        }
    }
    return -1;
}

static long long sc_id(const json_t *csc, const json_t *psc, const char *key)
{
    json_t *v = json_object_get(csc, key);
    if (!json_is_integer(v))
        v = json_object_get(psc, key);
    return json_is_integer(v) && json_integer_value(v) >= 0 ? json_integer_value(v) : -1;
}

int ty_rt_oci_resolve_user(const json_t *pod_spec, const json_t *ctr_spec,
                           const json_t *image_config, char *const *layers, size_t n_layers,
                           const char *pod_label, const char *ctr_name, ty_rt_oci_user *out,
                           ty_error *err)
{
    memset(out, 0, sizeof *out);
    const json_t *psc = json_object_get(pod_spec, "securityContext");
    const json_t *csc = json_object_get(ctr_spec, "securityContext");
    long long uid = sc_id(csc, psc, "runAsUser"), gid = sc_id(csc, psc, "runAsGroup");
    json_t *nonroot = json_object_get(csc, "runAsNonRoot");
    if (!json_is_boolean(nonroot))
        nonroot = json_object_get(psc, "runAsNonRoot");
    const char *user = json_string_value(json_object_get(image_config, "User"));
    TY_AUTOFREE char *uname = ty_strdup(user ? user : "");
    char *gname = strchr(uname, ':');
    if (gname)
        *gname++ = '\0';
    /* the kubelet's verifyRunAsNonRoot: runAsUser first, else the image's user */
    if (json_is_true(nonroot)) {
        if (uid == 0)
            return ty_fail(err, "container's runAsUser breaks non-root policy (pod: \"%s\", "
                           "container: %s)", pod_label, ctr_name);
        if (uid < 0 && *uname && !numeric(uname))
            return ty_fail(err, "container has runAsNonRoot and image has non-numeric user "
                           "(%s), cannot verify user is non-root (pod: \"%s\", container: %s)",
                           uname, pod_label, ctr_name);
        if (uid < 0 && (!*uname || strtoll(uname, NULL, 10) == 0))
            return ty_fail(err, "container has runAsNonRoot and image will run as root (pod: "
                           "\"%s\", container: %s)", pod_label, ctr_name);
    }
    long long pw_gid = -1;
    if (uid < 0 && *uname) {
        if (numeric(uname)) {
            uid = strtoll(uname, NULL, 10);
            lookup(layers, n_layers, "etc/passwd", uname, true, &(long long){0}, &pw_gid);
        } else if (lookup(layers, n_layers, "etc/passwd", uname, false, &uid, &pw_gid) < 0)
            return ty_fail(err, "unable to find user %s: no matching entries in passwd file",
                           uname);
    } else if (uid >= 0) {
        char key[32];
        snprintf(key, sizeof key, "%lld", uid);
        lookup(layers, n_layers, "etc/passwd", key, true, &(long long){0}, &pw_gid);
    }
    if (uid < 0)
        uid = 0;
    if (gid < 0 && gname && *gname) {
        if (numeric(gname))
            gid = strtoll(gname, NULL, 10);
        else if (lookup(layers, n_layers, "etc/group", gname, false, &gid, NULL) < 0)
            return ty_fail(err, "unable to find group %s: no matching entries in group file",
                           gname);
    }
    if (gid < 0)
        gid = pw_gid >= 0 ? pw_gid : 0;
    if (uid > 0x7fffffff || gid > 0x7fffffff)
        return ty_fail(err, "uid %lld or gid %lld is out of range", uid, gid);
    out->uid = (unsigned)uid;
    out->gid = (unsigned)gid;
    out->groups = json_array();
    long long fs = sc_id(NULL, psc, "fsGroup");
    if (fs >= 0)
        json_array_append_new(out->groups, json_integer(fs));
    size_t i;
    json_t *g;
    json_array_foreach(json_object_get(psc, "supplementalGroups"), i, g)
        if (json_is_integer(g) && json_integer_value(g) >= 0)
            json_array_append(out->groups, g);
    return 0;
}

/* ---- the spec ------------------------------------------------------------------------- */

/* containerd's default capabilities (oci.defaultUnixCaps) */
static const char *const default_caps[] = {
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
    "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE", NULL,
};

/* every capability name up to CAP_CHECKPOINT_RESTORE (40), as the kernel numbers them */
static const char *const all_caps[] = {
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
    "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
    "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE", NULL,
};

static int last_cap(void)
{
    FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "re");
    int n = 40;
    if (f) {
        if (fscanf(f, "%d", &n) != 1)
            n = 40;
        fclose(f);
    }
    return n > 40 ? 40 : n;
}

/* "NET_ADMIN" or "CAP_NET_ADMIN" -> a known "CAP_NET_ADMIN", or NULL */
static const char *cap_name(const char *s)
{
    if (!s)
        return NULL;
    for (int i = 0; all_caps[i]; i++)
        if (strcasecmp(all_caps[i], s) == 0 || strcasecmp(all_caps[i] + 4, s) == 0)
            return all_caps[i];
    return NULL;
}

static bool has_str(const json_t *arr, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) if (json_is_string(v) && strcasecmp(json_string_value(v), s) == 0)
        return true;
    return false;
}

static int capabilities(const json_t *csc, bool privileged, json_t **out, ty_error *err)
{
    json_t *caps = json_array();
    int last = last_cap();
    if (privileged) {
        for (int i = 0; all_caps[i] && i <= last; i++)
            json_array_append_new(caps, json_string(all_caps[i]));
        *out = caps;
        return 0;
    }
    json_t *add = json_object_get(json_object_get(csc, "capabilities"), "add");
    json_t *drop = json_object_get(json_object_get(csc, "capabilities"), "drop");
    size_t i;
    json_t *v;
    json_array_foreach(add, i, v) if (!has_str(add, "ALL") && !cap_name(json_string_value(v))) {
        json_decref(caps);
        return ty_fail(err, "securityContext.capabilities.add[%zu]: unknown capability %s", i,
                       json_string_value(v) ? json_string_value(v) : "(not a string)");
    }
    for (int k = 0; all_caps[k] && k <= last; k++) {
        const char *c = all_caps[k];
        bool on = false;
        for (int d = 0; default_caps[d]; d++)
            on |= strcmp(default_caps[d], c) == 0;
        if (has_str(add, "ALL") || has_str(add, c) || has_str(add, c + 4))
            on = true;
        /* the kubelet applies drop after add, and "ALL" in drop keeps only what add names */
        if (has_str(drop, "ALL") && !(has_str(add, c) || has_str(add, c + 4)))
            on = false;
        if (has_str(drop, c) || has_str(drop, c + 4))
            on = false;
        if (on)
            json_array_append_new(caps, json_string(c));
    }
    *out = caps;
    return 0;
}

json_t *ty_rt_oci_seccomp(void)
{
    /* Allow by default; refuse with EPERM what a training job never needs and what reaches
     * the kernel's most sensitive state: modules, kexec, reboot, clocks, swap, accounting,
     * keyrings, bpf, mounts and namespaces (those need CAP_SYS_ADMIN anyway, which the
     * default capabilities lack), raw I/O ports, handle-based opens, userfaultfd. */
    static const char *const denied[] = {
        "acct", "add_key", "bpf", "clock_adjtime", "clock_settime", "create_module",
        "delete_module", "finit_module", "fsconfig", "fsmount", "fsopen", "fspick",
        "get_kernel_syms", "init_module", "ioperm", "iopl", "kexec_file_load", "kexec_load",
        "keyctl", "lookup_dcookie", "mount", "move_mount", "nfsservctl", "open_by_handle_at",
        "open_tree", "perf_event_open", "pivot_root", "query_module", "quotactl", "reboot",
        "request_key", "setns", "settimeofday", "stime", "swapoff", "swapon", "syslog",
        "umount", "umount2", "unshare", "uselib", "userfaultfd", "vhangup", "vm86",
        "vm86old", NULL,
    };
    json_t *names = json_array();
    for (int i = 0; denied[i]; i++)
        json_array_append_new(names, json_string(denied[i]));
    return json_pack("{s:s, s:[s, s, s], s:[{s:o, s:s, s:I}]}", "defaultAction",
                     "SCMP_ACT_ALLOW", "architectures", "SCMP_ARCH_X86_64", "SCMP_ARCH_X86",
                     "SCMP_ARCH_X32", "syscalls", "names", names, "action", "SCMP_ACT_ERRNO",
                     "errnoRet", (json_int_t)EPERM);
}

static void add_mount(json_t *mounts, const char *dst, const char *type, const char *src,
                      const char *opts)
{
    json_t *o = json_array();
    TY_AUTOFREE char *copy = ty_strdup(opts);
    char *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
        json_array_append_new(o, json_string(t));
    json_array_append_new(mounts, json_pack("{s:s, s:s, s:s, s:o}", "destination", dst, "type",
                                            type, "source", src, "options", o));
}

static void add_device(json_t *devs, json_t *allow, const char *path)
{
    struct stat sb;
    if (stat(path, &sb) < 0 || !S_ISCHR(sb.st_mode))
        return;
    json_array_append_new(devs, json_pack("{s:s, s:s, s:I, s:I, s:i}", "path", path, "type",
                                          "c", (json_int_t)major(sb.st_rdev),
                                          (json_int_t)minor(sb.st_rdev), "fileMode", 0666));
    json_array_append_new(allow, json_pack("{s:b, s:s, s:I, s:I, s:s}", "allow", 1, "type", "c",
                                           (json_int_t)major(sb.st_rdev),
                                           (json_int_t)minor(sb.st_rdev), "access", "rwm"));
}

/* The host's NVIDIA driver, as the container toolkit hands it in: its libraries and tools
 * bind-mounted read-only at the same paths. */
static void add_gpu_driver(json_t *mounts)
{
    static const char *const patterns[] = {
        "/usr/lib/x86_64-linux-gnu/libcuda.so*", "/usr/lib/x86_64-linux-gnu/libnvidia-*.so*",
        "/usr/lib/x86_64-linux-gnu/libnvcuvid.so*", "/usr/lib64/libcuda.so*",
        "/usr/lib64/libnvidia-*.so*", "/usr/bin/nvidia-smi", "/usr/bin/nvidia-debugdump",
        NULL,
    };
    for (int i = 0; patterns[i]; i++) {
        glob_t g;
        if (glob(patterns[i], 0, NULL, &g) != 0)
            continue;
        for (size_t k = 0; k < g.gl_pathc; k++)
            add_mount(mounts, g.gl_pathv[k], "bind", g.gl_pathv[k], "rbind,ro,nosuid,nodev");
        globfree(&g);
    }
}

json_t *ty_rt_oci_spec(const ty_rt_oci_in *in, ty_error *err)
{
    const json_t *psc = json_object_get(in->pod_spec, "securityContext");
    const json_t *csc = json_object_get(in->ctr_spec, "securityContext");
    bool privileged = json_is_true(json_object_get(csc, "privileged"));
    json_t *caps = NULL;
    if (capabilities(csc, privileged, &caps, err) < 0)
        return NULL;
    /* a process that is not root keeps no effective capabilities, as with containerd */
    bool root = in->user->uid == 0;
    json_t *process = json_pack(
        "{s:b, s:{s:I, s:I, s:O}, s:O, s:O, s:s, s:{s:O, s:o, s:o}, s:b}", "terminal", 0,
        "user", "uid", (json_int_t)in->user->uid, "gid", (json_int_t)in->user->gid,
        "additionalGids", in->user->groups, "args", in->args, "env", in->env, "cwd", in->cwd,
        "capabilities", "bounding", caps, "effective", root ? json_copy(caps) : json_array(),
        "permitted", root ? json_copy(caps) : json_array(), "noNewPrivileges",
        json_is_false(json_object_get(csc, "allowPrivilegeEscalation")));
    json_decref(caps);
    json_t *mounts = json_array();
    add_mount(mounts, "/proc", "proc", "proc", "nosuid,noexec,nodev");
    add_mount(mounts, "/dev", "tmpfs", "tmpfs", "nosuid,strictatime,mode=755,size=65536k");
    add_mount(mounts, "/dev/pts", "devpts", "devpts",
              "nosuid,noexec,newinstance,ptmxmode=0666,mode=0620,gid=5");
    add_mount(mounts, "/dev/shm", "tmpfs", "shm", "nosuid,noexec,nodev,mode=1777,size=65536k");
    add_mount(mounts, "/dev/mqueue", "mqueue", "mqueue", "nosuid,noexec,nodev");
    add_mount(mounts, "/sys", "sysfs", "sysfs", privileged ? "nosuid,noexec,nodev"
                                                           : "nosuid,noexec,nodev,ro");
    size_t i;
    json_t *m;
    json_array_foreach(in->mounts, i, m) {
        bool ro = json_is_true(json_object_get(m, "ro"));
        add_mount(mounts, json_string_value(json_object_get(m, "dst")), "bind",
                  json_string_value(json_object_get(m, "src")),
                  ro ? "rbind,rprivate,ro" : "rbind,rprivate");
    }
    json_t *devices = json_array(), *allow = json_array();
    json_array_append_new(allow, json_pack("{s:b, s:s}", "allow", 0, "access", "rwm"));
    if (json_array_size(in->gpus)) {
        json_t *g;
        json_array_foreach(in->gpus, i, g) {
            TY_AUTOFREE char *p = ty_asprintf("/dev/nvidia%s", json_string_value(g));
            add_device(devices, allow, p);
        }
        add_device(devices, allow, "/dev/nvidiactl");
        add_device(devices, allow, "/dev/nvidia-uvm");
        add_device(devices, allow, "/dev/nvidia-uvm-tools");
        add_device(devices, allow, "/dev/nvidia-modeset");
        add_gpu_driver(mounts);
    }
    json_t *linux_ = json_pack(
        "{s:[{s:s}, {s:s}, {s:s}], s:o, s:{s:o}}", "namespaces", "type", "pid", "type", "ipc",
        "type", "mount", "devices", devices, "resources", "devices", allow);
    if (!privileged) {
        json_object_set_new(linux_, "maskedPaths",
                            json_pack("[s,s,s,s,s,s,s,s,s]", "/proc/acpi", "/proc/kcore",
                                      "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
                                      "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
                                      "/sys/firmware"));
        json_object_set_new(linux_, "readonlyPaths",
                            json_pack("[s,s,s,s,s,s]", "/proc/asound", "/proc/bus",
                                      "/proc/fs", "/proc/irq", "/proc/sys",
                                      "/proc/sysrq-trigger"));
    }
    const char *sp = json_string_value(
        json_object_get(json_object_get(csc, "seccompProfile"), "type"));
    if (!sp)
        sp = json_string_value(json_object_get(json_object_get(psc, "seccompProfile"), "type"));
    if (sp && strcmp(sp, "RuntimeDefault") == 0 && !privileged)
        json_object_set_new(linux_, "seccomp", ty_rt_oci_seccomp());
    else if (sp && strcmp(sp, "Localhost") == 0) {
        json_decref(process), json_decref(mounts), json_decref(linux_);
        return ty_fail(err, "seccompProfile Localhost is not supported (RuntimeDefault or "
                       "Unconfined)"), NULL;
    }
    return json_pack("{s:s, s:o, s:{s:s, s:b}, s:o, s:o}", "ociVersion", "1.0.2", "process",
                     process, "root", "path", "rootfs", "readonly",
                     json_is_true(json_object_get(csc, "readOnlyRootFilesystem")), "mounts",
                     mounts, "linux", linux_);
}
