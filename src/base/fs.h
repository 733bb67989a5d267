/* Small file system helpers. */
#ifndef TY_BASE_FS_H
#define TY_BASE_FS_H

#include <sys/types.h>

/* mkdir -p: creates `path` and any missing parents with `mode`; an existing directory is
 * fine. Returns -1 with errno set on failure. */
int ty_mkdir_p(const char *path, mode_t mode);

#endif
