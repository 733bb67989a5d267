/* What processes use, read from /proc (runtime_int.h): one pass over /proc gives every
 * process's parent, CPU time and resident memory; a pod's or a container's usage is the sum
 * over its process and all descendants. Cost: about 15-20 us a process (an open, a read), once
 * per sample for every pod together. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/mem.h"
#include "runtime/runtime_int.h"

/* The fields of /proc/<pid>/stat after the command (which may hold spaces and parentheses):
 * state is field 3, ppid 4, utime 14, stime 15, cutime 16, cstime 17, starttime 22, rss 24. */
static int parse_stat(const char *text, ty_rt_proc *p)
{
    const char *r = strrchr(text, ')');
    if (!r)
        return -1;
    unsigned long long f[25] = {0};
    const char *q = r + 2; /* field 3 */
    for (int field = 3; field <= 24 && *q; field++) {
        if (field == 3) {
            q = strchr(q, ' ');
        } else {
            char *end;
            f[field] = strtoull(q, &end, 10);
            q = end;
        }
        if (!q)
            return -1;
        while (*q == ' ')
            q++;
    }
    p->ppid = (int)f[4];
    p->cpu_ticks = f[14] + f[15] + f[16] + f[17];
    p->start = f[22];
    p->rss_pages = f[24];
    return 0;
}

static int by_ppid(const void *a, const void *b)
{
    const ty_rt_proc *x = a, *y = b;
    return x->ppid < y->ppid ? -1 : x->ppid > y->ppid;
}

int ty_rt_procs_read(ty_rt_procs *out, ty_error *err)
{
    memset(out, 0, sizeof *out);
    DIR *d = opendir("/proc");
    if (!d)
        return ty_fail_errno(err, errno, "open /proc");
    size_t cap = 0;
    struct dirent *e;
    char path[64], buf[1024];
    while ((e = readdir(d))) {
        if (!isdigit((unsigned char)e->d_name[0]))
            continue;
        snprintf(path, sizeof path, "/proc/%.20s/stat", e->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue; /* gone meanwhile */
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n <= 0)
            continue;
        buf[n] = '\0';
        ty_rt_proc p = {.pid = atoi(e->d_name)};
        if (parse_stat(buf, &p) < 0)
            continue;
        if (out->n == cap) {
            cap = cap ? cap * 2 : 256;
            out->v = ty_realloc(out->v, cap * sizeof *out->v);
        }
        out->v[out->n++] = p;
    }
    closedir(d);
    qsort(out->v, out->n, sizeof *out->v, by_ppid);
    long tick = sysconf(_SC_CLK_TCK);
    long page = sysconf(_SC_PAGESIZE);
    out->ns_per_tick = tick > 0 ? 1000000000ULL / (unsigned long long)tick : 10000000ULL;
    out->page_bytes = page > 0 ? (uint64_t)page : 4096;
    return 0;
}

void ty_rt_procs_free(ty_rt_procs *t)
{
    if (!t)
        return;
    free(t->v);
    t->v = NULL;
    t->n = 0;
}

/* The first entry whose ppid is `ppid` (entries are sorted by ppid), or t->n. */
static size_t first_child(const ty_rt_procs *t, int ppid)
{
    size_t lo = 0, hi = t->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (t->v[mid].ppid < ppid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static const ty_rt_proc *find(const ty_rt_procs *t, int pid)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->v[i].pid == pid)
            return &t->v[i];
    return NULL;
}

bool ty_rt_procs_subtree(const ty_rt_procs *t, int pid, unsigned long long start,
                         uint64_t *cpu_ns, uint64_t *rss_bytes)
{
    *cpu_ns = *rss_bytes = 0;
    const ty_rt_proc *root = pid > 0 ? find(t, pid) : NULL;
    if (!root || (start && root->start != start))
        return false; /* gone, or its pid now names another process */
    /* breadth first over the children index; a process is counted once (pids are unique) */
    size_t cap = 16, n = 0, at = 0;
    int *queue = ty_malloc(cap * sizeof *queue);
    queue[n++] = pid;
    uint64_t ticks = 0, pages = 0;
    ticks += root->cpu_ticks;
    pages += root->rss_pages;
    while (at < n) {
        int parent = queue[at++];
        for (size_t i = first_child(t, parent); i < t->n && t->v[i].ppid == parent; i++) {
            if (t->v[i].pid == parent)
                continue;
            ticks += t->v[i].cpu_ticks;
            pages += t->v[i].rss_pages;
            if (n == cap) {
                cap *= 2;
                queue = ty_realloc(queue, cap * sizeof *queue);
            }
            queue[n++] = t->v[i].pid;
        }
    }
    free(queue);
    *cpu_ns = ticks * t->ns_per_tick;
    *rss_bytes = pages * t->page_bytes;
    return true;
}

int ty_rt_node_usage(uint64_t *cpu_ns, uint64_t *working_set_bytes, ty_error *err)
{
    TY_AUTOBUF ty_buf b = TY_BUF_INIT;
    if (ty_buf_read_file(&b, "/proc/stat") < 0)
        return ty_fail_errno(err, errno, "read /proc/stat");
    unsigned long long user, nice, sys, idle, iowait, irq, softirq, steal;
    if (sscanf(b.data, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &user, &nice, &sys, &idle,
               &iowait, &irq, &softirq, &steal) != 8)
        return ty_fail(err, "/proc/stat: no cpu line");
    long tick = sysconf(_SC_CLK_TCK);
    *cpu_ns = (user + nice + sys + irq + softirq + steal) *
              (1000000000ULL / (unsigned long long)(tick > 0 ? tick : 100));
    ty_buf_reset(&b);
    if (ty_buf_read_file(&b, "/proc/meminfo") < 0)
        return ty_fail_errno(err, errno, "read /proc/meminfo");
    const char *t = strstr(b.data, "MemTotal:");
    const char *a = strstr(b.data, "MemAvailable:");
    if (!t || !a)
        return ty_fail(err, "/proc/meminfo: no MemTotal or MemAvailable");
    unsigned long long total_kb = strtoull(t + 9, NULL, 10);
    unsigned long long avail_kb = strtoull(a + 13, NULL, 10);
    /* what cannot be reclaimed at once: as the kubelet's working set, less the page cache
     * that is free to drop */
    *working_set_bytes = (total_kb > avail_kb ? total_kb - avail_kb : 0) * 1024;
    return 0;
}
