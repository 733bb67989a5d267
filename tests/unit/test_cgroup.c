/* runtime/cgroup.c: detection from mountinfo and /proc/self/cgroup texts for cgroup v2, v1,
 * hybrid and none, over fixture trees whose "cgroup files" are plain files in a temporary
 * directory (so the values written for each limit can be read back); the CPU quota for a
 * request; and, where this machine's own cgroup fs is writable (root outside a container), a
 * real pod cgroup created with limits and removed. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/fs.h"
#include "base/mem.h"
#include "runtime/cgroup.h"

static char root[64];

static void make_root(void)
{
    snprintf(root, sizeof root, "/tmp/ty-cgroup-test-XXXXXX");
    cr_assert_not_null(mkdtemp(root));
}

static void remove_root(void)
{
    TY_AUTOFREE char *cmd = ty_asprintf("rm -rf '%s'", root);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(cgroup, .init = make_root, .fini = remove_root);

/* Writes `text` to root/rel, creating its directories. */
static void put(const char *rel, const char *text)
{
    TY_AUTOFREE char *path = ty_asprintf("%s/%s", root, rel);
    TY_AUTOFREE char *dir = ty_strdup(path);
    *strrchr(dir, '/') = '\0';
    cr_assert_eq(ty_mkdir_p(dir, 0755), 0, "mkdir %s", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s", path);
    fputs(text, f);
    fclose(f);
}

/* The text of root/rel. */
static char *get(const char *rel)
{
    TY_AUTOFREE char *path = ty_asprintf("%s/%s", root, rel);
    ty_buf b = TY_BUF_INIT;
    cr_assert_eq(ty_buf_read_file(&b, path), 0, "read %s", path);
    return b.data ? ty_buf_steal(&b) : ty_strdup("");
}

static char *at(const char *rel)
{
    return ty_asprintf("%s/%s", root, rel);
}

/* One mountinfo line for a mount of `fstype` at root/<mnt> (its root `mroot`). */
static void line(ty_buf *mi, const char *mroot, const char *mnt, const char *fstype,
                 const char *super)
{
    ty_buf_addf(mi, "30 22 0:27 %s %s/%s rw,relatime shared:9 - %s %s %s\n", mroot, root, mnt,
                fstype, fstype, super);
}

static void v2_tree(const char *controllers)
{
    put("unified/cgroup.controllers", controllers);
    /* The kernel gives every cgroup this file; a fixture has to. */
    put("unified/cgroup.subtree_control", "");
    put("unified/user.slice/cgroup.subtree_control", "");
    put("unified/user.slice/ty.scope/cgroup.subtree_control", "");
    put("unified/user.slice/ty.scope/trainyard/cgroup.subtree_control", "");
}

Test(cgroup, v2_enables_controllers_down_to_our_own_cgroup)
{
    v2_tree("cpuset cpu io memory pids\n");
    ty_buf mi = TY_BUF_INIT;
    ty_buf_adds(&mi, "22 1 0:21 / /sys rw - sysfs sysfs rw\n");
    line(&mi, "/", "unified", "cgroup2", "rw,nsdelegate");
    ty_cgroups cg;
    ty_cgroups_detect_in(&cg, mi.data, "0::/user.slice/ty.scope\n");
    cr_assert_eq(cg.kind, TY_CGROUP_V2);
    cr_assert_str_eq(ty_cgroups_kind_name(&cg), "cgroup v2");
    TY_AUTOFREE char *want = at("unified/user.slice/ty.scope/trainyard");
    cr_assert_str_eq(cg.v2, want);
    cr_assert_null(cg.v1_memory);
    static const char *const levels[] = {
        "unified", "unified/user.slice", "unified/user.slice/ty.scope",
        "unified/user.slice/ty.scope/trainyard"};
    for (size_t i = 0; i < TY_ARRAY_LEN(levels); i++) {
        TY_AUTOFREE char *f = ty_asprintf("%s/cgroup.subtree_control", levels[i]);
        TY_AUTOFREE char *got = get(f);
        cr_expect_str_eq(got, "+memory +cpu +pids", "%s", f);
    }

    /* A container's limits: memory without swap, and CPU as a quota per 100 ms. */
#define POD "unified/user.slice/ty.scope/trainyard/pod/c/"
    /* Empty: a plain file is not truncated by a write as a cgroup file is replaced. */
    put(POD "memory.max", "");
    put(POD "memory.swap.max", "");
    put(POD "cpu.max", "");
    ty_error err = TY_ERROR_INIT;
    cr_assert_eq(ty_cgroup_create(&cg, "pod/c", 1 << 30, 500, &err), 0, "%s", err.msg);
    TY_AUTOFREE char *mem = get(POD "memory.max");
    TY_AUTOFREE char *swap = get(POD "memory.swap.max");
    TY_AUTOFREE char *cpu = get(POD "cpu.max");
    cr_expect_str_eq(mem, "1073741824");
    cr_expect_str_eq(swap, "0");
    cr_expect_str_eq(cpu, "50000 100000");
    /* "cpu: 5m" is 500 us, under the kernel's 1 ms minimum, which refuses it: 1 ms. */
    put(POD "cpu.max", "");
    cr_assert_eq(ty_cgroup_create(&cg, "pod/c", 0, 5, &err), 0, "%s", err.msg);
    TY_AUTOFREE char *small = get(POD "cpu.max");
    cr_expect_str_eq(small, "1000 100000");
    /* A limit file that cannot be written is an error naming it. */
    cr_assert_lt(ty_cgroup_create(&cg, "pod/other", 1 << 20, 0, &err), 0);
    cr_expect(strstr(err.msg, "pod/other/memory.max") != NULL, "%s", err.msg);
    ty_error_clear(&err);
    ty_cgroups_free(&cg);
    ty_buf_free(&mi);
}

Test(cgroup, v2_without_the_memory_controller_is_none)
{
    v2_tree("cpu io pids\n");
    ty_buf mi = TY_BUF_INIT;
    line(&mi, "/", "unified", "cgroup2", "rw");
    ty_cgroups cg;
    ty_cgroups_detect_in(&cg, mi.data, "0::/user.slice/ty.scope\n");
    cr_assert_eq(cg.kind, TY_CGROUP_NONE);
    cr_assert_str_eq(ty_cgroups_kind_name(&cg), "none");
    cr_assert(!cg.v2 && !cg.v1_memory && !cg.v1_cpu && !cg.v1_pids);
    ty_error err = TY_ERROR_INIT;
    cr_assert_lt(ty_cgroup_create(&cg, "pod", 1 << 20, 0, &err), 0);
    cr_expect_str_eq(err.msg, "create cgroup pod: no cgroups available");
    ty_error_clear(&err);
    ty_buf_free(&mi);
}

/* v1 as Docker mounts it: each controller's root is the container's cgroup, so the own path
 * from /proc/self/cgroup is relative to it (memory), or the whole host tree is mounted and the
 * own path goes below the mount (cpu,cpuacct co-mounted; pids). */
static void v1_mounts(ty_buf *mi)
{
    line(mi, "/docker/abc", "memory", "cgroup", "rw,memory");
    line(mi, "/", "cpu,cpuacct", "cgroup", "rw,cpu,cpuacct");
    line(mi, "/", "pids", "cgroup", "rw,pids");
    line(mi, "/", "systemd", "cgroup", "rw,xattr,name=systemd");
}

static const char V1_SELF[] = "12:pids:/docker/abc\n"
                              "4:memory:/docker/abc\n"
                              "3:cpu,cpuacct:/docker/abc\n"
                              "1:name=systemd:/docker/abc\n"
                              "0::/docker/abc\n";

Test(cgroup, v1_places_pods_below_our_own_cgroup_in_each_hierarchy)
{
    ty_buf mi = TY_BUF_INIT;
    v1_mounts(&mi);
    ty_cgroups cg;
    ty_cgroups_detect_in(&cg, mi.data, V1_SELF);
    cr_assert_eq(cg.kind, TY_CGROUP_V1);
    cr_assert_str_eq(ty_cgroups_kind_name(&cg), "cgroup v1");
    TY_AUTOFREE char *mem = at("memory/trainyard");
    TY_AUTOFREE char *cpu = at("cpu,cpuacct/docker/abc/trainyard");
    TY_AUTOFREE char *pids = at("pids/docker/abc/trainyard");
    cr_assert_str_eq(cg.v1_memory, mem);
    cr_assert_str_eq(cg.v1_cpu, cpu);
    cr_assert_str_eq(cg.v1_pids, pids);
    cr_assert_null(cg.v2);
    struct stat st;
    cr_assert_eq(stat(cpu, &st), 0, "detection creates the trainyard directories");

    put("memory/trainyard/pod/c/memory.limit_in_bytes", "");
    put("memory/trainyard/pod/c/memory.memsw.limit_in_bytes", "");
    put("cpu,cpuacct/docker/abc/trainyard/pod/c/cpu.cfs_period_us", "");
    put("cpu,cpuacct/docker/abc/trainyard/pod/c/cpu.cfs_quota_us", "");
    ty_error err = TY_ERROR_INIT;
    cr_assert_eq(ty_cgroup_create(&cg, "pod/c", 256 << 20, 2500, &err), 0, "%s", err.msg);
    TY_AUTOFREE char *limit = get("memory/trainyard/pod/c/memory.limit_in_bytes");
    TY_AUTOFREE char *memsw = get("memory/trainyard/pod/c/memory.memsw.limit_in_bytes");
    TY_AUTOFREE char *period = get("cpu,cpuacct/docker/abc/trainyard/pod/c/cpu.cfs_period_us");
    TY_AUTOFREE char *quota = get("cpu,cpuacct/docker/abc/trainyard/pod/c/cpu.cfs_quota_us");
    cr_expect_str_eq(limit, "268435456");
    cr_expect_str_eq(memsw, "268435456");
    cr_expect_str_eq(period, "100000");
    cr_expect_str_eq(quota, "250000");
    struct stat pst;
    cr_expect_eq(stat(pids, &pst), 0);

    /* A pod without limits still gets its directory in every hierarchy, and removing it
     * (with its empty children) takes them all out. */
    cr_assert_eq(ty_cgroup_create(&cg, "pod2/c", 0, 0, &err), 0, "%s", err.msg);
    TY_AUTOFREE char *pod2 = ty_asprintf("%s/pod2/c", pids);
    cr_assert_eq(stat(pod2, &pst), 0, "%s", pod2);
    cr_assert_eq(ty_cgroup_remove(&cg, "pod2", &err), 0, "%s", err.msg);
    const char *bases[] = {mem, cpu, pids};
    for (size_t i = 0; i < TY_ARRAY_LEN(bases); i++) {
        TY_AUTOFREE char *gone = ty_asprintf("%s/pod2", bases[i]);
        cr_expect_lt(stat(gone, &pst), 0, "%s", gone);
    }
    ty_cgroups_free(&cg);
    ty_buf_free(&mi);
}

Test(cgroup, hybrid_uses_v2_only_when_it_has_the_memory_controller)
{
    /* systemd's hybrid layout: v1 controllers, and an empty cgroup2 at .../unified. */
    v2_tree("\n");
    ty_buf mi = TY_BUF_INIT;
    v1_mounts(&mi);
    line(&mi, "/", "unified", "cgroup2", "rw,nsdelegate");
    ty_cgroups cg;
    ty_cgroups_detect_in(&cg, mi.data, V1_SELF);
    cr_assert_eq(cg.kind, TY_CGROUP_V1);
    cr_assert_null(cg.v2);
    cr_assert_not_null(cg.v1_memory);
    ty_cgroups_free(&cg);

    /* The same with memory on the unified side: v2, and no v1 paths. */
    put("unified/cgroup.controllers", "cpu memory pids\n");
    put("unified/docker/cgroup.subtree_control", "");
    put("unified/docker/abc/cgroup.subtree_control", "");
    put("unified/docker/abc/trainyard/cgroup.subtree_control", "");
    ty_cgroups_detect_in(&cg, mi.data, V1_SELF);
    cr_assert_eq(cg.kind, TY_CGROUP_V2);
    TY_AUTOFREE char *want = at("unified/docker/abc/trainyard");
    cr_assert_str_eq(cg.v2, want);
    cr_assert(!cg.v1_memory && !cg.v1_cpu && !cg.v1_pids);
    ty_cgroups_free(&cg);
    ty_buf_free(&mi);
}

Test(cgroup, none_without_cgroup_mounts_or_our_own_line)
{
    static const char *const mountinfos[] = {
        "",
        "22 1 0:21 / /sys rw - sysfs sysfs rw\n25 1 0:5 / /proc rw - proc proc rw\n",
        "garbage\n\n - \n1 2 3\n",
    };
    for (size_t i = 0; i < TY_ARRAY_LEN(mountinfos); i++) {
        ty_cgroups cg;
        ty_cgroups_detect_in(&cg, mountinfos[i], V1_SELF);
        cr_expect_eq(cg.kind, TY_CGROUP_NONE, "%s", mountinfos[i]);
        ty_cgroups_free(&cg);
    }
    /* A memory hierarchy we do not appear in. */
    ty_buf mi = TY_BUF_INIT;
    v1_mounts(&mi);
    ty_cgroups cg;
    ty_cgroups_detect_in(&cg, mi.data, "12:pids:/docker/abc\n");
    cr_expect_eq(cg.kind, TY_CGROUP_NONE);
    cr_expect(!cg.v1_memory && !cg.v1_cpu && !cg.v1_pids);
    ty_cgroups_free(&cg);
    ty_buf_free(&mi);
}

Test(cgroup, mount_points_with_escaped_blanks)
{
    ty_buf mi = TY_BUF_INIT;
    ty_buf_addf(&mi, "34 30 0:31 / %s/my\\040memory rw - cgroup cgroup rw,memory\n", root);
    ty_cgroups cg;
    ty_cgroups_detect_in(&cg, mi.data, "4:memory:/\n");
    cr_assert_eq(cg.kind, TY_CGROUP_V1);
    TY_AUTOFREE char *want = at("my memory/trainyard");
    cr_assert_str_eq(cg.v1_memory, want);
    ty_cgroups_free(&cg);
    ty_buf_free(&mi);
}

Test(cgroup, cpu_quota)
{
    cr_expect_eq(ty_cgroup_cpu_quota_us(1000), 100000);
    cr_expect_eq(ty_cgroup_cpu_quota_us(250), 25000);
    cr_expect_eq(ty_cgroup_cpu_quota_us(10), 1000);
    cr_expect_eq(ty_cgroup_cpu_quota_us(9), TY_CGROUP_CPU_QUOTA_MIN_US);
    cr_expect_eq(ty_cgroup_cpu_quota_us(1), TY_CGROUP_CPU_QUOTA_MIN_US);
    /* The largest quantity a pod can ask for, 9.2e15m, must not overflow. */
    cr_expect_eq(ty_cgroup_cpu_quota_us(INT64_MAX), 100000000000LL);
}

/* The machine's own cgroups, as the shim uses them. Skipped where they cannot be written (a
 * container without a writable cgroup fs, not root). */
Test(cgroup, a_real_pod_cgroup_is_created_limited_and_removed)
{
    ty_cgroups cg;
    ty_cgroups_detect(&cg);
    if (cg.kind == TY_CGROUP_NONE)
        cr_skip_test("no writable cgroup v1 memory or v2 hierarchy here (not root, or a "
                     "container without a writable cgroup fs)");
    TY_AUTOFREE char *rel = ty_asprintf("test-cgroup-%d/c", (int)getpid());
    TY_AUTOFREE char *pod = ty_asprintf("test-cgroup-%d", (int)getpid());
    ty_error err = TY_ERROR_INIT;
    cr_assert_eq(ty_cgroup_create(&cg, rel, 64 << 20, 5, &err), 0, "%s", err.msg);
    const char *base = cg.kind == TY_CGROUP_V2 ? cg.v2 : cg.v1_memory;
    TY_AUTOFREE char *limit = ty_asprintf("%s/%s/%s", base, rel,
                                          cg.kind == TY_CGROUP_V2 ? "memory.max"
                                                                  : "memory.limit_in_bytes");
    ty_buf b = TY_BUF_INIT;
    cr_assert_eq(ty_buf_read_file(&b, limit), 0, "%s", limit);
    cr_expect_eq(strtoll(b.data, NULL, 10), 64 << 20, "%s: %s", limit, b.data);
    ty_buf_free(&b);
    cr_expect_eq(ty_cgroup_oom_kills(&cg, rel), 0);
    cr_expect_eq(ty_cgroup_kill(&cg, rel), 0, "an empty cgroup has no one to kill");
    cr_assert_eq(ty_cgroup_remove(&cg, pod, &err), 0, "%s", err.msg);
    TY_AUTOFREE char *dir = ty_asprintf("%s/%s", base, pod);
    struct stat st;
    cr_expect_lt(stat(dir, &st), 0, "%s removed", dir);
    cr_expect_eq(errno, ENOENT);
    cr_assert_eq(ty_cgroup_remove(&cg, pod, &err), 0, "removing what is gone is fine");
    ty_cgroups_free(&cg);
}
