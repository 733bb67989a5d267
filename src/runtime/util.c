/* Helpers shared by the runtime and its shim; see runtime_int.h. */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/mem.h"
#include "runtime/runtime_int.h"

char *ty_rt_expand(const char *s, ty_rt_lookup_fn lookup, void *ctx)
{
    TY_AUTOBUF ty_buf b = TY_BUF_INIT;
    for (const char *p = s; *p;) {
        if (p[0] != '$') {
            ty_buf_addc(&b, *p++);
            continue;
        }
        if (p[1] == '$') { /* escaped: $$ -> $, so $$(X) stays literal */
            ty_buf_addc(&b, '$');
            p += 2;
            continue;
        }
        if (p[1] == '(') {
            const char *close = strchr(p + 2, ')');
            if (close) {
                const char *v = lookup(ctx, p + 2, (size_t)(close - (p + 2)));
                if (v)
                    ty_buf_adds(&b, v);
                else
                    ty_buf_add(&b, p, (size_t)(close + 1 - p));
                p = close + 1;
                continue;
            }
        }
        ty_buf_addc(&b, *p++);
    }
    return ty_buf_steal(&b);
}

unsigned long long ty_rt_proc_start(int pid)
{
    char path[64];
    if (pid > 0)
        snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    else
        snprintf(path, sizeof(path), "/proc/self/stat");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    char buf[1024];
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    /* the command name may hold spaces and parentheses: fields count from the last ')' */
    const char *p = strrchr(buf, ')');
    if (!p || p[1] != ' ' || p[2] == 'Z' || p[2] == 'X')
        return 0;
    for (int field = 2; p && field < 22; field++)
        p = strchr(p + 1, ' ');
    return p ? strtoull(p + 1, NULL, 10) : 0;
}

int ty_rt_ctl_addr(const char *dir, struct sockaddr_un *addr, int *dirfd)
{
    memset(addr, 0, sizeof(*addr));
    addr->sun_family = AF_UNIX;
    *dirfd = -1;
    int n = snprintf(addr->sun_path, sizeof(addr->sun_path), "%s/control.sock", dir);
    if (n < 0 || (size_t)n >= sizeof(addr->sun_path)) {
        *dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (*dirfd < 0)
            return -1;
        n = snprintf(addr->sun_path, sizeof(addr->sun_path), "/proc/self/fd/%d/control.sock",
                     *dirfd);
    }
    return (int)(offsetof(struct sockaddr_un, sun_path) + (size_t)n + 1);
}

int ty_rt_write_json_private(const char *path, const json_t *doc)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return -1;
    /* a file left by an earlier version keeps its mode through O_TRUNC */
    int rc = fchmod(fd, 0600) < 0 || json_dumpfd(doc, fd, JSON_COMPACT) < 0 ? -1 : 0;
    int e = errno;
    if (close(fd) < 0 && rc == 0) {
        rc = -1;
        e = errno;
    }
    errno = e;
    return rc;
}
