/* base/fs: mkdir -p and the rm -rf that old run state is removed with. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/fs.h"
#include "base/mem.h"

static char *tmpdir(void)
{
    char tmpl[] = "/tmp/ty-test-fs-XXXXXX";
    cr_assert_not_null(mkdtemp(tmpl));
    return ty_strdup(tmpl);
}

static void touch(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    cr_assert_geq(fd, 0, "%s", path);
    close(fd);
}

Test(fs, rm_tree_removes_a_nested_tree)
{
    TY_AUTOFREE char *base = tmpdir();
    TY_AUTOFREE char *deep = ty_asprintf("%s/run/pods/a/b", base);
    cr_assert_eq(ty_mkdir_p(deep, 0700), 0);
    TY_AUTOFREE char *f1 = ty_asprintf("%s/log", deep);
    TY_AUTOFREE char *f2 = ty_asprintf("%s/run/state.json", base);
    touch(f1);
    touch(f2);
    TY_AUTOFREE char *run = ty_asprintf("%s/run", base);
    cr_assert_eq(ty_rm_tree(run), 0);
    cr_assert_eq(access(run, F_OK), -1);
    cr_assert_eq(rmdir(base), 0); /* nothing else was left in it */
}

Test(fs, rm_tree_removes_links_not_what_they_point_to)
{
    TY_AUTOFREE char *base = tmpdir();
    TY_AUTOFREE char *keep = ty_asprintf("%s/keep", base);
    TY_AUTOFREE char *kept = ty_asprintf("%s/keep/precious", base);
    cr_assert_eq(ty_mkdir_p(keep, 0700), 0);
    touch(kept);
    TY_AUTOFREE char *run = ty_asprintf("%s/run", base);
    cr_assert_eq(ty_mkdir_p(run, 0700), 0);
    TY_AUTOFREE char *link = ty_asprintf("%s/run/elsewhere", base);
    cr_assert_eq(symlink(keep, link), 0);
    cr_assert_eq(ty_rm_tree(run), 0);
    cr_assert_eq(access(run, F_OK), -1);
    cr_assert_eq(access(kept, F_OK), 0, "the link's target lost its file");
    unlink(kept);
    rmdir(keep);
    rmdir(base);
}

Test(fs, rm_tree_of_a_missing_path_is_fine)
{
    cr_assert_eq(ty_rm_tree("/tmp/ty-test-fs-does-not-exist/x"), 0);
}
