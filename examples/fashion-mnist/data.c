/* idx.gz reader: a big-endian header (magic, dimensions) and then raw bytes, read with zlib. */
#define _GNU_SOURCE /* accept4, SOCK_CLOEXEC: the examples rule does not pass -D_GNU_SOURCE */
#include "data.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static int read_exact(gzFile f, void *buf, size_t len, const char *path, fm_err *err)
{
    char *p = buf;
    while (len > 0) {
        unsigned chunk = len > (1u << 30) ? (1u << 30) : (unsigned)len;
        int n = gzread(f, p, chunk);
        if (n <= 0) {
            int zerr = 0;
            const char *m = gzerror(f, &zerr);
            fm_err_set(err, "read %s: %s", path, n == 0 ? "file is truncated" : m);
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Reads the header of an idx file with `dims` dimensions; returns the item count. */
static int open_idx(const char *path, unsigned magic, int dims, unsigned *shape, gzFile *out, fm_err *err)
{
    gzFile f = gzopen(path, "rbe"); /* e: O_CLOEXEC */
    if (!f) {
        fm_err_set(err, "open %s: %s", path, errno ? strerror(errno) : "zlib error");
        return -1;
    }
    gzbuffer(f, 1 << 20);
    unsigned char hdr[16];
    if (read_exact(f, hdr, 4 + 4 * (size_t)dims, path, err) < 0) {
        gzclose(f);
        return -1;
    }
    unsigned got = (unsigned)hdr[0] << 24 | (unsigned)hdr[1] << 16 | (unsigned)hdr[2] << 8 | hdr[3];
    if (got != magic) {
        fm_err_set(err, "%s: not an idx file of %d dimensions (magic 0x%08x)", path, dims, got);
        gzclose(f);
        return -1;
    }
    for (int d = 0; d < dims; d++) {
        const unsigned char *b = hdr + 4 + 4 * d;
        shape[d] = (unsigned)b[0] << 24 | (unsigned)b[1] << 16 | (unsigned)b[2] << 8 | b[3];
    }
    *out = f;
    return 0;
}

int fm_set_load(fm_set *set, const char *dir, const char *prefix, fm_err *err)
{
    memset(set, 0, sizeof *set);
    char path[4096];
    unsigned shape[3];
    gzFile f;
    snprintf(path, sizeof path, "%s/%s-images-idx3-ubyte.gz", dir, prefix);
    if (open_idx(path, 0x803, 3, shape, &f, err) < 0)
        return -1;
    if (shape[1] * shape[2] != FM_PIXELS || shape[0] == 0 || shape[0] > 10000000) {
        fm_err_set(err, "%s: unexpected shape %ux%ux%u", path, shape[0], shape[1], shape[2]);
        gzclose(f);
        return -1;
    }
    int n = (int)shape[0];
    set->images = malloc((size_t)n * FM_PIXELS);
    set->labels = malloc((size_t)n);
    if (!set->images || !set->labels) {
        fm_err_set(err, "out of memory loading %s", path);
        gzclose(f);
        fm_set_free(set);
        return -1;
    }
    int rc = read_exact(f, set->images, (size_t)n * FM_PIXELS, path, err);
    gzclose(f);
    if (rc < 0)
        goto fail;
    snprintf(path, sizeof path, "%s/%s-labels-idx1-ubyte.gz", dir, prefix);
    if (open_idx(path, 0x801, 1, shape, &f, err) < 0)
        goto fail;
    if (shape[0] != (unsigned)n) {
        fm_err_set(err, "%s: %u labels for %d images", path, shape[0], n);
        gzclose(f);
        goto fail;
    }
    rc = read_exact(f, set->labels, (size_t)n, path, err);
    gzclose(f);
    if (rc < 0)
        goto fail;
    for (int i = 0; i < n; i++)
        if (set->labels[i] >= FM_CLASSES) {
            fm_err_set(err, "%s: label %u out of range at %d", path, set->labels[i], i);
            goto fail;
        }
    set->n = n;
    return 0;
fail:
    fm_set_free(set);
    return -1;
}

void fm_set_free(fm_set *set)
{
    free(set->images);
    free(set->labels);
    memset(set, 0, sizeof *set);
}
