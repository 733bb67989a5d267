/* Layers: their uncompressed digests (diff ids) and unpacking them into overlay lower
 * directories, refusing whatever would write outside the directory. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "base/fs.h"
#include "base/mem.h"
#include "image/image_int.h"

int ty_sha256_file(const char *path, char out[65], int64_t *size, ty_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ty_fail_errno(err, errno, "open %s", path);
    ty_sha256 h;
    ty_sha256_init(&h);
    char buf[1 << 16];
    ssize_t n;
    int64_t total = 0;
    while ((n = read(fd, buf, sizeof buf)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            close(fd);
            return ty_fail_errno(err, e, "read %s", path);
        }
        ty_sha256_update(&h, buf, (size_t)n);
        total += n;
    }
    close(fd);
    ty_sha256_hex(&h, out);
    if (size)
        *size = total;
    return 0;
}

const char *ty_image_path_unsafe(const char *path)
{
    if (!path || !*path)
        return "is empty";
    if (path[0] == '/')
        return "is absolute";
    for (const char *p = path; *p;) {
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == 2 && p[0] == '.' && p[1] == '.')
            return "climbs out with \"..\"";
        if (!e)
            break;
        p = e + 1;
    }
    return NULL;
}

static struct archive *open_reader(const char *blob, bool raw, int *fd, ty_error *err)
{
    if (ty_archive_load(err) < 0)
        return NULL;
    *fd = open(blob, O_RDONLY | O_CLOEXEC);
    if (*fd < 0) {
        ty_fail_errno(err, errno, "open %s", blob);
        return NULL;
    }
    struct archive *a = ty_ar.read_new();
    ty_ar.read_support_filter_all(a);
    if (raw)
        ty_ar.read_support_format_raw(a);
    else
        ty_ar.read_support_format_tar(a);
    if (ty_ar.read_open_fd(a, *fd, 1 << 16) != ARCHIVE_OK) {
        ty_fail(err, "read %s: %s", blob, ty_ar.error_string(a));
        ty_ar.read_free(a);
        close(*fd);
        return NULL;
    }
    return a;
}

int ty_image_diff_id(const char *blob, char out[65], int64_t *size, ty_error *err)
{
    int fd;
    struct archive *a = open_reader(blob, true, &fd, err);
    if (!a)
        return -1;
    struct archive_entry *e;
    int rc = -1;
    if (ty_ar.read_next_header(a, &e) != ARCHIVE_OK) {
        ty_fail(err, "read %s: %s", blob, ty_ar.error_string(a));
        goto out;
    }
    ty_sha256 h;
    ty_sha256_init(&h);
    int64_t total = 0;
    char buf[1 << 16];
    la_ssize_t n;
    while ((n = ty_ar.read_data(a, buf, sizeof buf)) > 0) {
        ty_sha256_update(&h, buf, (size_t)n);
        total += n;
        if (total > TY_IMAGE_BYTES_MAX) {
            ty_fail(err, "layer %s: more than %lld bytes uncompressed", blob,
                    (long long)TY_IMAGE_BYTES_MAX);
            goto out;
        }
    }
    if (n < 0) {
        ty_fail(err, "read %s: %s", blob, ty_ar.error_string(a));
        goto out;
    }
    ty_sha256_hex(&h, out);
    if (size)
        *size = total;
    rc = 0;
out:
    ty_ar.read_free(a);
    close(fd);
    return rc;
}

/* Opens the directory `rel` under `root` one component at a time, never following a symlink,
 * creating missing directories (0755): where a whiteout goes. -1 with errno. */
static int open_dir_beneath(int root, const char *rel)
{
    int fd = dup(root);
    TY_AUTOFREE char *copy = ty_strdup(rel);
    char *save = NULL;
    for (char *c = strtok_r(copy, "/", &save); c && fd >= 0; c = strtok_r(NULL, "/", &save)) {
        if (strcmp(c, ".") == 0)
            continue;
        if (mkdirat(fd, c, 0755) < 0 && errno != EEXIST) {
            close(fd);
            return -1;
        }
        int next = openat(fd, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int e = errno;
        close(fd);
        fd = next;
        errno = e;
    }
    return fd;
}

static int whiteout(int root, const char *path, const char *base, ty_error *err)
{
    TY_AUTOFREE char *parent = ty_strndup(path, (size_t)(base - path));
    int dfd = open_dir_beneath(root, *parent ? parent : ".");
    if (dfd < 0)
        return ty_fail_errno(err, errno, "whiteout %s: open its directory", path);
    int rc = 0;
    if (strcmp(base, ".wh..wh..opq") == 0) {
        if (fsetxattr(dfd, "trusted.overlay.opaque", "y", 1, 0) < 0)
            rc = ty_fail_errno(err, errno, "opaque whiteout %s (needs root)", path);
    } else {
        const char *name = base + 4;
        if (!*name || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
            rc = ty_fail(err, "whiteout %s names nothing", path);
        else if (mknodat(dfd, name, S_IFCHR | 0, makedev(0, 0)) < 0 && errno != EEXIST)
            rc = ty_fail_errno(err, errno, "whiteout %s (needs root)", path);
    }
    close(dfd);
    return rc;
}

static int extract(struct archive *a, const char *blob, const char *dir, ty_error *err)
{
    int root = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root < 0)
        return ty_fail_errno(err, errno, "open %s", dir);
    int cwd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (cwd < 0 || fchdir(root) < 0) {
        int e = errno;
        close(root);
        if (cwd >= 0)
            close(cwd);
        return ty_fail_errno(err, e, "enter %s", dir);
    }
    struct archive *w = ty_ar.write_disk_new();
    int flags = ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SECURE_NODOTDOT |
                ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS | ARCHIVE_EXTRACT_PERM |
                ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_XATTR | ARCHIVE_EXTRACT_UNLINK;
    if (geteuid() == 0)
        flags |= ARCHIVE_EXTRACT_OWNER;
    ty_ar.write_disk_set_options(w, flags);
    struct archive_entry *e;
    int r, rc = 0;
    int64_t bytes = 0, entries = 0;
    while ((r = ty_ar.read_next_header(a, &e)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
        const char *path = ty_ar.entry_pathname(e);
        while (path && path[0] == '.' && path[1] == '/')
            path += 2;
        if (path && (strcmp(path, ".") == 0 || !*path))
            continue;
        const char *why = ty_image_path_unsafe(path);
        const char *link = ty_ar.entry_hardlink(e);
        if (!why && link)
            why = ty_image_path_unsafe(link);
        if (why) {
            rc = ty_fail(err, "layer %s: entry %s %s", blob, path ? path : "(no name)", why);
            break;
        }
        if (++entries > TY_IMAGE_ENTRIES_MAX) {
            rc = ty_fail(err, "layer %s: more than %d entries", blob, TY_IMAGE_ENTRIES_MAX);
            break;
        }
        bytes += ty_ar.entry_size(e);
        if (bytes > TY_IMAGE_BYTES_MAX) {
            rc = ty_fail(err, "layer %s: more than %lld bytes", blob,
                         (long long)TY_IMAGE_BYTES_MAX);
            break;
        }
        const char *slash = strrchr(path, '/');
        const char *base = slash ? slash + 1 : path;
        if (strncmp(base, ".wh.", 4) == 0) {
            if ((rc = whiteout(root, path, base, err)) < 0)
                break;
            continue;
        }
        ty_ar.entry_set_pathname(e, path);
        if (ty_ar.write_header(w, e) < ARCHIVE_WARN) {
            rc = ty_fail(err, "layer %s: entry %s: %s", blob, path, ty_ar.error_string(w));
            break;
        }
        const void *buf;
        size_t len;
        la_int64_t off;
        while ((r = ty_ar.read_data_block(a, &buf, &len, &off)) == ARCHIVE_OK)
            if (ty_ar.write_data_block(w, buf, len, off) < ARCHIVE_OK) {
                r = ARCHIVE_FATAL;
                break;
            }
        if (r != ARCHIVE_EOF) {
            rc = ty_fail(err, "layer %s: entry %s: %s", blob, path, ty_ar.error_string(a));
            break;
        }
        if (ty_ar.write_finish_entry(w) < ARCHIVE_WARN) {
            rc = ty_fail(err, "layer %s: entry %s: %s", blob, path, ty_ar.error_string(w));
            break;
        }
    }
    if (rc == 0 && r != ARCHIVE_EOF)
        rc = ty_fail(err, "layer %s: %s", blob, ty_ar.error_string(a));
    if (rc == 0 && ty_ar.write_free(w) != ARCHIVE_OK) /* sets directory times and modes */
        rc = ty_fail(err, "layer %s: finish", blob);
    else if (rc < 0)
        ty_ar.write_free(w);
    if (fchdir(cwd) < 0 && rc == 0)
        rc = ty_fail_errno(err, errno, "return to the working directory");
    close(cwd);
    close(root);
    return rc;
}

int64_t ty_image_unpack_layer(const char *blob, const char *diff_id, const char *dir,
                              ty_error *err)
{
    char got[65];
    int64_t size = 0;
    if (ty_image_diff_id(blob, got, &size, err) < 0)
        return -1;
    if (strcmp(got, diff_id) != 0)
        return ty_fail(err, "layer %s: uncompressed digest is sha256:%s, the config says "
                       "sha256:%s", blob, got, diff_id);
    if (mkdir(dir, 0755) < 0)
        return ty_fail_errno(err, errno, "create %s", dir);
    int fd;
    struct archive *a = open_reader(blob, false, &fd, err);
    int rc = a ? extract(a, blob, dir, err) : -1;
    if (a) {
        ty_ar.read_free(a);
        close(fd);
    }
    if (rc < 0) {
        ty_rm_tree(dir);
        return -1;
    }
    return size;
}
