/* Resource usage for metrics.k8s.io: process trees from /proc (runtime/usage.c) and the
 * windows' durations as Go writes them (controllers/podmetrics.h). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "controllers/podmetrics.h"
#include "runtime/runtime_int.h"

static int by_ppid(const void *a, const void *b)
{
    const ty_rt_proc *x = a, *y = b;
    return x->ppid < y->ppid ? -1 : x->ppid > y->ppid;
}

Test(usage, subtree_sums_a_process_and_its_descendants)
{
    /* 10 -> 11 -> 13, 10 -> 12; 20 elsewhere */
    ty_rt_proc v[] = {
        {.pid = 10, .ppid = 1, .cpu_ticks = 1, .start = 100, .rss_pages = 1},
        {.pid = 11, .ppid = 10, .cpu_ticks = 2, .start = 101, .rss_pages = 2},
        {.pid = 12, .ppid = 10, .cpu_ticks = 4, .start = 102, .rss_pages = 4},
        {.pid = 13, .ppid = 11, .cpu_ticks = 8, .start = 103, .rss_pages = 8},
        {.pid = 20, .ppid = 1, .cpu_ticks = 16, .start = 104, .rss_pages = 16},
    };
    qsort(v, 5, sizeof *v, by_ppid);
    ty_rt_procs t = {.v = v, .n = 5, .ns_per_tick = 10000000, .page_bytes = 4096};
    uint64_t cpu, mem;
    cr_assert(ty_rt_procs_subtree(&t, 10, 100, &cpu, &mem));
    cr_assert_eq(cpu, 15 * 10000000ULL);
    cr_assert_eq(mem, 15 * 4096ULL);
    cr_assert(ty_rt_procs_subtree(&t, 11, 0, &cpu, &mem));
    cr_assert_eq(cpu, 10 * 10000000ULL);
    cr_assert_not(ty_rt_procs_subtree(&t, 10, 999, &cpu, &mem), "a reused pid is not it");
    cr_assert_not(ty_rt_procs_subtree(&t, 99, 0, &cpu, &mem), "gone");
}

Test(usage, reads_a_real_process_tree)
{
    /* a child that holds 32 MiB and burns 0.3 s of CPU, then says so and waits */
    int pfd[2];
    cr_assert_eq(pipe(pfd), 0);
    pid_t pid = fork();
    if (pid == 0) {
        size_t n = 32u << 20;
        volatile char *m = malloc(n); /* volatile: the stores must happen */
        for (size_t i = 0; i < n; i += 4096)
            m[i] = 1;
        close(pfd[0]);
        struct timespec t;
        do
            clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
        while (t.tv_sec * 1000000000L + t.tv_nsec < 300000000L);
        if (write(pfd[1], "x", 1) != 1)
            _exit(1);
        pause();
        _exit(m[0]);
    }
    close(pfd[1]);
    char ch;
    ssize_t got = read(pfd[0], &ch, 1);
    ty_rt_procs t;
    ty_error err = TY_ERROR_INIT;
    int rc = ty_rt_procs_read(&t, &err);
    uint64_t cpu = 0, mem = 0;
    bool found = rc == 0 && ty_rt_procs_subtree(&t, getpid(), 0, &cpu, &mem);
    ty_rt_procs_free(&t);
    kill(pid, SIGKILL); /* before any assertion: nothing is left behind */
    waitpid(pid, NULL, 0);
    close(pfd[0]);
    cr_assert_eq(got, 1);
    cr_assert(found, "%s", err.msg ? err.msg : "our own process is not in /proc");
    /* clock ticks are 10 ms: 0.3 s of CPU shows as at least 0.28 */
    cr_assert_geq(cpu, 280000000ULL, "the child's CPU counts for its parent's tree: %llu",
                  (unsigned long long)cpu);
    cr_assert_geq(mem, 32ULL << 20);
    uint64_t ncpu, nmem;
    cr_assert_eq(ty_rt_node_usage(&ncpu, &nmem, &err), 0, "%s", err.msg);
    cr_assert_gt(ncpu, 0);
    cr_assert_gt(nmem, 0);
}

Test(usage, windows_as_go_writes_durations)
{
    static const struct {
        int64_t ns;
        const char *text;
    } cases[] = {
        {0, "0s"},
        {999, "999ns"},
        {1500, "1.5µs"},
        {502191976, "502.191976ms"},
        {10000123000LL, "10.000123s"},
        {10000000000LL, "10s"},
        {60500000000LL, "1m0.5s"},
        {3600000000000LL, "1h0m0s"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *s = ty_podmetrics_duration(cases[i].ns);
        cr_assert_str_eq(s, cases[i].text);
        free(s);
    }
}
