/* cgroups v1/v2 for pods; see cgroup.h. */
#include "runtime/cgroup.h"

#include <dirent.h>
#include <stdbool.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/mem.h"

/* Our own path in a hierarchy, from /proc/self/cgroup: "N:<controllers>:<path>"; for v2 the
 * line is "0::<path>". `want` is a controller name, or "" for v2. */
static char *own_path(const char *cgfile, const char *want)
{
    const char *line = cgfile;
    while (line && *line) {
        const char *nl = strchr(line, '\n');
        size_t n = nl ? (size_t)(nl - line) : strlen(line);
        char *l = ty_strndup(line, n);
        char *c1 = strchr(l, ':');
        char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (c2) {
            *c2 = '\0';
            const char *ctrls = c1 + 1;
            bool match = false;
            if (!*want) {
                match = !*ctrls;
            } else {
                TY_AUTOFREE char *copy = ty_strdup(ctrls);
                char *save = NULL;
                for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
                    if (strcmp(t, want) == 0)
                        match = true;
            }
            if (match) {
                char *p = ty_strdup(c2 + 1);
                free(l);
                return p;
            }
        }
        free(l);
        line = nl ? nl + 1 : NULL;
    }
    return NULL;
}

/* Joins mount point, the part of `own` below the mount's root, and "/trainyard". */
static char *under_mount(const char *mnt, const char *root, const char *own)
{
    size_t rl = strlen(root);
    const char *rest = own;
    if (strcmp(root, "/") != 0 && strncmp(own, root, rl) == 0)
        rest = own + rl;
    if (strcmp(rest, "/") == 0)
        rest = "";
    return ty_asprintf("%s%s/trainyard", mnt, rest);
}

static bool has_word(const char *list, const char *word, char sep)
{
    size_t wl = strlen(word);
    for (const char *p = list; p && *p;) {
        const char *e = strchr(p, sep);
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == wl && strncmp(p, word, wl) == 0)
            return true;
        p = e ? e + 1 : NULL;
    }
    return false;
}

static int write_file(const char *path, const char *val, ty_error *err)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return ty_fail_errno(err, errno, "open %s", path);
    ssize_t n = write(fd, val, strlen(val));
    int e = errno;
    close(fd);
    if (n < 0)
        return ty_fail_errno(err, e, "write %s to %s", val, path);
    return 0;
}

static int mkdir_p(const char *path)
{
    TY_AUTOFREE char *p = ty_strdup(path);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, 0755) < 0 && errno != EEXIST)
            return -1;
        *s = '/';
    }
    return mkdir(p, 0755) < 0 && errno != EEXIST ? -1 : 0;
}

/* v2 needs the controllers enabled in every ancestor's subtree_control from the mount down.
 * This fails (EBUSY) when our own cgroup holds processes and is not the root: then v2 is not
 * usable for us and we report that. */
static bool v2_enable(const char *mnt, const char *dir)
{
    size_t ml = strlen(mnt);
    TY_AUTOFREE char *p = ty_strdup(dir);
    if (mkdir_p(p) < 0)
        return false;
    for (char *s = p + ml;; s = strchr(s + 1, '/')) {
        char save = s ? *s : 0;
        if (s)
            *s = '\0';
        TY_AUTOFREE char *f = ty_asprintf("%s/cgroup.subtree_control", p);
        TY_CLEANUP_ERROR ty_error e = TY_ERROR_INIT;
        bool ok = write_file(f, "+memory +cpu +pids", &e) == 0 ||
                  write_file(f, "+memory +cpu", &e) == 0 || write_file(f, "+memory", &e) == 0;
        if (!ok)
            return false;
        if (!s)
            break;
        *s = save;
    }
    return true;
}

/* mountinfo writes a space, tab, newline or backslash in a path as \ooo (octal): decoded in
 * place, so a cgroup mounted at "/sys/fs/my cgroup" is found where it is. */
static void unescape_octal(char *s)
{
    char *w = s;
    for (const char *r = s; *r;) {
        if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
            r[3] >= '0' && r[3] <= '7') {
            *w++ = (char)((r[1] - '0') << 6 | (r[2] - '0') << 3 | (r[3] - '0'));
            r += 4;
        } else {
            *w++ = *r++;
        }
    }
    *w = '\0';
}

void ty_cgroups_detect(ty_cgroups *cg)
{
    TY_AUTOBUF ty_buf mi = TY_BUF_INIT, self = TY_BUF_INIT;
    if (ty_buf_read_file(&mi, "/proc/self/mountinfo") < 0 ||
        ty_buf_read_file(&self, "/proc/self/cgroup") < 0) {
        memset(cg, 0, sizeof(*cg));
        return;
    }
    ty_cgroups_detect_in(cg, mi.data, self.data);
}

void ty_cgroups_detect_in(ty_cgroups *cg, const char *mountinfo, const char *self)
{
    memset(cg, 0, sizeof(*cg));
    TY_AUTOFREE char *mi = ty_strdup(mountinfo);
    char *v2_mnt = NULL, *v2_root = NULL;
    char *save = NULL;
    for (char *l = strtok_r(mi, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        /* id parent maj:min root mountpoint opts [optional...] - fstype source superopts */
        char *f[6] = {0};
        char *s2 = NULL, *t = strtok_r(l, " ", &s2);
        for (int i = 0; i < 6 && t; i++, t = strtok_r(NULL, " ", &s2))
            f[i] = t;
        while (t && strcmp(t, "-") != 0)
            t = strtok_r(NULL, " ", &s2);
        if (!t || !f[4])
            continue;
        char *fstype = strtok_r(NULL, " ", &s2);
        strtok_r(NULL, " ", &s2);
        char *super = strtok_r(NULL, " ", &s2);
        if (!fstype)
            continue;
        unescape_octal(f[3]);
        unescape_octal(f[4]);
        if (strcmp(fstype, "cgroup2") == 0 && !v2_mnt) {
            TY_AUTOFREE char *ctl = ty_asprintf("%s/cgroup.controllers", f[4]);
            TY_AUTOBUF ty_buf c = TY_BUF_INIT;
            if (ty_buf_read_file(&c, ctl) == 0) {
                char *nl = strchr(c.data, '\n');
                if (nl)
                    *nl = '\0';
                if (has_word(c.data, "memory", ' ')) {
                    v2_mnt = ty_strdup(f[4]);
                    v2_root = ty_strdup(f[3]);
                }
            }
        } else if (strcmp(fstype, "cgroup") == 0 && super) {
            static const char *ctrls[] = {"memory", "cpu", "pids"};
            char **dst[] = {&cg->v1_memory, &cg->v1_cpu, &cg->v1_pids};
            for (size_t i = 0; i < TY_ARRAY_LEN(ctrls); i++) {
                if (*dst[i] || !has_word(super, ctrls[i], ','))
                    continue;
                TY_AUTOFREE char *own = own_path(self, ctrls[i]);
                if (own)
                    *dst[i] = under_mount(f[4], f[3], own);
            }
        }
    }
    if (v2_mnt) {
        TY_AUTOFREE char *own = own_path(self, "");
        if (own) {
            char *dir = under_mount(v2_mnt, v2_root, own);
            if (v2_enable(v2_mnt, dir)) {
                cg->kind = TY_CGROUP_V2;
                cg->v2 = dir;
            } else {
                free(dir);
            }
        }
    }
    free(v2_mnt);
    free(v2_root);
    if (cg->kind == TY_CGROUP_V2) {
        free(cg->v1_memory), free(cg->v1_cpu), free(cg->v1_pids);
        cg->v1_memory = cg->v1_cpu = cg->v1_pids = NULL;
    } else if (cg->v1_memory && mkdir_p(cg->v1_memory) == 0) {
        cg->kind = TY_CGROUP_V1;
        if (cg->v1_cpu && mkdir_p(cg->v1_cpu) < 0)
            free(cg->v1_cpu), cg->v1_cpu = NULL;
        if (cg->v1_pids && mkdir_p(cg->v1_pids) < 0)
            free(cg->v1_pids), cg->v1_pids = NULL;
    } else {
        ty_cgroups_free(cg);
    }
}

void ty_cgroups_free(ty_cgroups *cg)
{
    free(cg->v2), free(cg->v1_memory), free(cg->v1_cpu), free(cg->v1_pids);
    memset(cg, 0, sizeof(*cg));
}

const char *ty_cgroups_kind_name(const ty_cgroups *cg)
{
    return cg->kind == TY_CGROUP_V2 ? "cgroup v2" : cg->kind == TY_CGROUP_V1 ? "cgroup v1" : "none";
}

/* The directories of `rel`, one per hierarchy in use; returns the count. */
static int dirs(const ty_cgroups *cg, const char *rel, char *out[4])
{
    int n = 0;
    const char *bases[] = {cg->v2, cg->v1_memory, cg->v1_cpu, cg->v1_pids};
    for (size_t i = 0; i < TY_ARRAY_LEN(bases); i++)
        if (bases[i])
            out[n++] = ty_asprintf("%s/%s", bases[i], rel);
    return n;
}

static void free_dirs(char *d[], int n)
{
    for (int i = 0; i < n; i++)
        free(d[i]);
}

int64_t ty_cgroup_cpu_quota_us(int64_t cpu_milli)
{
    /* The kernel refuses a quota under 1 ms (EINVAL: "cpu: 5m" could not start), and
     * cpu_milli * 100 overflows for the largest quantities; a million CPUs is no limit. */
    if (cpu_milli < 10)
        return TY_CGROUP_CPU_QUOTA_MIN_US;
    if (cpu_milli > 1000000000)
        return 1000000000LL * (TY_CGROUP_CPU_PERIOD_US / 1000);
    return cpu_milli * (TY_CGROUP_CPU_PERIOD_US / 1000);
}

int ty_cgroup_create(const ty_cgroups *cg, const char *rel, int64_t mem_bytes, int64_t cpu_milli,
                     ty_error *err)
{
    if (cg->kind == TY_CGROUP_NONE)
        return ty_fail(err, "create cgroup %s: no cgroups available", rel);
    char *d[4];
    int n = dirs(cg, rel, d);
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++)
        if (mkdir_p(d[i]) < 0)
            rc = ty_fail_errno(err, errno, "create cgroup %s", d[i]);
    free_dirs(d, n);
    if (rc < 0)
        return rc;
    char val[64];
    if (cg->kind == TY_CGROUP_V2) {
        TY_AUTOFREE char *mem = ty_asprintf("%s/%s/memory.max", cg->v2, rel);
        TY_AUTOFREE char *swap = ty_asprintf("%s/%s/memory.swap.max", cg->v2, rel);
        TY_AUTOFREE char *cpu = ty_asprintf("%s/%s/cpu.max", cg->v2, rel);
        if (mem_bytes > 0) {
            snprintf(val, sizeof(val), "%lld", (long long)mem_bytes);
            if (write_file(mem, val, err) < 0)
                return -1;
            write_file(swap, "0", NULL); /* absent without swap accounting: fine */
        }
        if (cpu_milli > 0) {
            snprintf(val, sizeof(val), "%lld %d", (long long)ty_cgroup_cpu_quota_us(cpu_milli),
                     TY_CGROUP_CPU_PERIOD_US);
            if (write_file(cpu, val, err) < 0)
                return -1;
        }
        return 0;
    }
    if (mem_bytes > 0) {
        TY_AUTOFREE char *mem = ty_asprintf("%s/%s/memory.limit_in_bytes", cg->v1_memory, rel);
        TY_AUTOFREE char *sw = ty_asprintf("%s/%s/memory.memsw.limit_in_bytes", cg->v1_memory, rel);
        snprintf(val, sizeof(val), "%lld", (long long)mem_bytes);
        if (write_file(mem, val, err) < 0)
            return -1;
        /* Without this the limit only pushes pages to swap instead of killing. */
        write_file(sw, val, NULL);
    }
    if (cpu_milli > 0) {
        if (!cg->v1_cpu)
            return ty_fail(err, "set cpu limit for %s: the cpu controller is not mounted", rel);
        TY_AUTOFREE char *per = ty_asprintf("%s/%s/cpu.cfs_period_us", cg->v1_cpu, rel);
        TY_AUTOFREE char *quo = ty_asprintf("%s/%s/cpu.cfs_quota_us", cg->v1_cpu, rel);
        char period[32];
        snprintf(period, sizeof(period), "%d", TY_CGROUP_CPU_PERIOD_US);
        snprintf(val, sizeof(val), "%lld", (long long)ty_cgroup_cpu_quota_us(cpu_milli));
        if (write_file(per, period, err) < 0 || write_file(quo, val, err) < 0)
            return -1;
    }
    return 0;
}

int ty_cgroup_join(const ty_cgroups *cg, const char *rel, ty_error *err)
{
    char *d[4];
    int n = dirs(cg, rel, d);
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        TY_AUTOFREE char *f = ty_asprintf("%s/cgroup.procs", d[i]);
        rc = write_file(f, "0", err);
    }
    free_dirs(d, n);
    return rc;
}

int64_t ty_cgroup_oom_kills(const ty_cgroups *cg, const char *rel)
{
    TY_AUTOFREE char *f = NULL;
    if (cg->kind == TY_CGROUP_V2)
        f = ty_asprintf("%s/%s/memory.events", cg->v2, rel);
    else if (cg->kind == TY_CGROUP_V1)
        f = ty_asprintf("%s/%s/memory.oom_control", cg->v1_memory, rel);
    else
        return 0;
    TY_AUTOBUF ty_buf b = TY_BUF_INIT;
    if (ty_buf_read_file(&b, f) < 0)
        return 0;
    const char *p = strstr(b.data, "oom_kill ");
    return p ? strtoll(p + 9, NULL, 10) : 0;
}

static int kill_dir(const char *dir)
{
    int n = 0;
    TY_AUTOFREE char *f = ty_asprintf("%s/cgroup.procs", dir);
    TY_AUTOBUF ty_buf b = TY_BUF_INIT;
    if (ty_buf_read_file(&b, f) == 0) {
        char *save = NULL;
        for (char *t = strtok_r(b.data, "\n", &save); t; t = strtok_r(NULL, "\n", &save)) {
            pid_t pid = (pid_t)atoi(t);
            if (pid > 0 && kill(pid, SIGKILL) == 0)
                n++;
        }
    }
    DIR *dp = opendir(dir);
    if (!dp)
        return n;
    struct dirent *de;
    while ((de = readdir(dp))) {
        if (de->d_type != DT_DIR || de->d_name[0] == '.')
            continue;
        TY_AUTOFREE char *sub = ty_asprintf("%s/%s", dir, de->d_name);
        n += kill_dir(sub);
    }
    closedir(dp);
    return n;
}

int ty_cgroup_kill(const ty_cgroups *cg, const char *rel)
{
    char *d[4];
    int n = dirs(cg, rel, d), killed = 0;
    for (int i = 0; i < n; i++)
        killed += kill_dir(d[i]);
    free_dirs(d, n);
    return killed;
}

static int remove_dir(const char *dir)
{
    DIR *dp = opendir(dir);
    if (!dp)
        return errno == ENOENT ? 0 : -1;
    struct dirent *de;
    int rc = 0;
    while ((de = readdir(dp))) {
        if (de->d_type != DT_DIR || de->d_name[0] == '.')
            continue;
        TY_AUTOFREE char *sub = ty_asprintf("%s/%s", dir, de->d_name);
        if (remove_dir(sub) < 0)
            rc = -1;
    }
    closedir(dp);
    /* A cgroup whose last task was just reaped can stay busy for a moment: retry briefly. */
    for (int i = 0; i < 50; i++) {
        if (rmdir(dir) == 0 || errno == ENOENT)
            return rc;
        if (errno != EBUSY)
            return -1;
        usleep(2000);
    }
    return -1;
}

int ty_cgroup_remove(const ty_cgroups *cg, const char *rel, ty_error *err)
{
    char *d[4];
    int n = dirs(cg, rel, d), rc = 0;
    for (int i = 0; i < n; i++)
        if (remove_dir(d[i]) < 0 && rc == 0)
            rc = ty_fail_errno(err, errno, "remove cgroup %s", d[i]);
    free_dirs(d, n);
    return rc;
}
