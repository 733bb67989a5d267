/* Internal to the image module: the hash, libarchive loaded at run time, layer unpacking. */
#ifndef TY_IMAGE_IMAGE_INT_H
#define TY_IMAGE_IMAGE_INT_H

#include <archive.h>
#include <archive_entry.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

/* SHA-256 (sha256.c). ty_sha256_hex finishes the hash: init again before reuse. */
typedef struct ty_sha256 {
    uint32_t s[8];
    uint64_t len;
    uint8_t buf[64];
    size_t n;
} ty_sha256;
void ty_sha256_init(ty_sha256 *h);
void ty_sha256_update(ty_sha256 *h, const void *data, size_t len);
void ty_sha256_hex(ty_sha256 *h, char out[65]);
/* The hex SHA-256 of a file's bytes, and its size. -1 with a message. */
int ty_sha256_file(const char *path, char out[65], int64_t *size, ty_error *err);

/* libarchive, loaded when an image is loaded rather than linked: it brings a dozen libraries
 * (nettle, xml2, lzma, zstd, acl, ...) whose loading every exec of trainyard, once per pod as
 * its supervisor, would pay for. Same pattern as server/mhd.h. */
typedef struct ty_archive_api {
    __typeof__(archive_read_new) *read_new;
    __typeof__(archive_read_support_filter_all) *read_support_filter_all;
    __typeof__(archive_read_support_format_tar) *read_support_format_tar;
    __typeof__(archive_read_support_format_raw) *read_support_format_raw;
    __typeof__(archive_read_open_fd) *read_open_fd;
    __typeof__(archive_read_next_header) *read_next_header;
    __typeof__(archive_read_data) *read_data;
    __typeof__(archive_read_data_block) *read_data_block;
    __typeof__(archive_read_free) *read_free;
    __typeof__(archive_error_string) *error_string;
    __typeof__(archive_entry_pathname) *entry_pathname;
    __typeof__(archive_entry_filetype) *entry_filetype;
    __typeof__(archive_entry_size) *entry_size;
    __typeof__(archive_entry_hardlink) *entry_hardlink;
    __typeof__(archive_entry_symlink) *entry_symlink;
    __typeof__(archive_entry_set_pathname) *entry_set_pathname;
    __typeof__(archive_write_disk_new) *write_disk_new;
    __typeof__(archive_write_disk_set_options) *write_disk_set_options;
    __typeof__(archive_write_header) *write_header;
    __typeof__(archive_write_data_block) *write_data_block;
    __typeof__(archive_write_finish_entry) *write_finish_entry;
    __typeof__(archive_write_free) *write_free;
} ty_archive_api;
extern ty_archive_api ty_ar;
/* Loads libarchive once; -1 with a message naming the library when it is missing. */
int ty_archive_load(ty_error *err);

/* Limits on what a user's archive may hold (each a resource the user controls). */
#define TY_IMAGE_JSON_MAX (4 << 20)         /* a manifest, config, index or manifest.json */
#define TY_IMAGE_LAYERS_MAX 125              /* overlay's lower dirs (docker's limit is 125) */
#define TY_IMAGE_ENTRIES_MAX 2000000         /* files in one layer or archive */
#define TY_IMAGE_BYTES_MAX (256LL << 30)     /* uncompressed bytes of one layer or archive */

/* A path from an archive that must stay inside the directory it is unpacked in: NULL when it
 * does (relative, no "..", not empty once "./" is stripped), else why not. */
const char *ty_image_path_unsafe(const char *path);

/* Unpacks the layer tar (plain, gzip or zstd) at `blob` into the new directory `dir`, with
 * whiteouts in overlay's form (a 0/0 character device for ".wh.<name>", the xattr
 * trusted.overlay.opaque=y for ".wh..wh..opq"); verifies that the uncompressed stream's
 * SHA-256 is `diff_id` (hex) and refuses entries that would land outside `dir` (absolute
 * names, "..", through a symlink, hard links out). Returns the uncompressed size, -1 with a
 * message (the directory is then removed). */
int64_t ty_image_unpack_layer(const char *blob, const char *diff_id, const char *dir,
                              ty_error *err);

/* The hex SHA-256 of a blob's uncompressed stream and its size (gzip/zstd/plain). */
int ty_image_diff_id(const char *blob, char out[65], int64_t *size, ty_error *err);

#endif
