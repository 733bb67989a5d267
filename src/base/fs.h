/* Small file system helpers. */
#ifndef TY_BASE_FS_H
#define TY_BASE_FS_H

#include <sys/types.h>

/* mkdir -p: creates `path` and any missing parents with `mode`; an existing directory is
 * fine. Returns -1 with errno set on failure. */
int ty_mkdir_p(const char *path, mode_t mode);

/* rm -rf that stays on `path`'s file system and never follows a symbolic link. Removes what
 * it can; returns -1 with errno set when `path` itself is still there afterwards. */
int ty_rm_tree(const char *path);

#endif
