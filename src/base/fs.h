/* Small file system helpers. */
#ifndef TY_BASE_FS_H
#define TY_BASE_FS_H

#include <stddef.h>
#include <sys/types.h>

#include "base/error.h"

/* mkdir -p: creates `path` and any missing parents with `mode`; an existing directory is
 * fine. Returns -1 with errno set on failure. */
int ty_mkdir_p(const char *path, mode_t mode);

/* Kubernetes' rule for a path inside a volume (subPath): relative, and no element "..", so that
 * it never reaches outside. NULL when `p` keeps to it, else why not ("must be a relative path",
 * "must not contain '..'"), worded as the API server's field errors. */
const char *ty_path_local_error(const char *p);

/* rm -rf that stays on `path`'s file system and never follows a symbolic link. Removes what
 * it can; returns -1 with errno set when `path` itself is still there afterwards. */
int ty_rm_tree(const char *path);

/* Writes a file only its owner may read (mode 0600: keys, tokens, kubeconfigs) whole or not
 * at all: to `path`.tmp, synced, then renamed over `path`. */
int ty_write_file_private(const char *path, const void *data, size_t len, ty_error *err);

#endif
