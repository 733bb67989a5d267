#include "base/fs.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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
