#include "base/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/mem.h"

int ty_mkdir_p(const char *path, mode_t mode)
{
    char *p = ty_strdup(path);
    for (char *q = p + 1; *q; q++) {
        if (*q != '/')
            continue;
        *q = '\0';
        if (mkdir(p, mode) < 0 && errno != EEXIST) {
            int e = errno;
            free(p);
            errno = e;
            return -1;
        }
        *q = '/';
    }
    int rc = mkdir(p, mode) < 0 && errno != EEXIST ? -1 : 0;
    int e = errno;
    free(p);
    errno = e;
    return rc;
}

const char *ty_path_local_error(const char *p)
{
    if (p[0] == '/')
        return "must be a relative path";
    for (const char *e = p; *e;) {
        size_t n = strcspn(e, "/");
        if (n == 2 && e[0] == '.' && e[1] == '.')
            return "must not contain '..'";
        e += n;
        e += *e == '/';
    }
    return NULL;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

int ty_rm_tree(const char *path)
{
    /* FTW_DEPTH: contents before their directory; FTW_PHYS: a link is removed, not followed;
     * FTW_MOUNT: a file system mounted inside is left alone. */
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
    struct stat sb;
    if (lstat(path, &sb) == 0) {
        errno = ENOTEMPTY;
        return -1;
    }
    return 0;
}

int ty_write_file_private(const char *path, const void *data, size_t len, ty_error *err)
{
    TY_AUTOFREE char *tmp = ty_asprintf("%s.tmp", path);
    unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return ty_fail_errno(err, errno, "create %s", tmp);
    const char *p = data;
    for (size_t off = 0; off < len;) {
        ssize_t n = write(fd, p + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            close(fd);
            unlink(tmp);
            return ty_fail_errno(err, e, "write %s", tmp);
        }
        off += (size_t)n;
    }
    int rc = fsync(fd), e = errno;
    if (close(fd) < 0 && rc == 0)
        rc = -1, e = errno;
    if (rc < 0) {
        unlink(tmp);
        return ty_fail_errno(err, e, "sync %s", tmp);
    }
    if (rename(tmp, path) < 0) {
        e = errno;
        unlink(tmp);
        return ty_fail_errno(err, e, "rename %s to %s", tmp, path);
    }
    return 0;
}
