/* The image store (image.h): loading archives, listing, removing, finding images. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/fs.h"
#include "base/mem.h"
#include "image/image.h"
#include "image/image_int.h"

#define REF_ANNOTATION "org.opencontainers.image.ref.name"
#define SIZE_ANNOTATION "dev.trainyard.image.size"
#define CREATED_ANNOTATION "org.opencontainers.image.created"
#define MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"

extern char **environ;

/* ---- small helpers -------------------------------------------------------------------- */

static bool hex64(const char *s)
{
    if (!s || strlen(s) != 64)
        return false;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
            return false;
    return true;
}

/* The hex of "sha256:<hex>", or NULL when it is not one. */
static const char *digest_hex(const char *d)
{
    return d && strncmp(d, "sha256:", 7) == 0 && hex64(d + 7) ? d + 7 : NULL;
}

static json_t *read_json(const char *path, ty_error *err)
{
    struct stat sb;
    if (stat(path, &sb) < 0)
        return ty_fail_errno(err, errno, "read %s", path), NULL;
    if (sb.st_size > TY_IMAGE_JSON_MAX)
        return ty_fail(err, "%s is larger than %d bytes", path, TY_IMAGE_JSON_MAX), NULL;
    json_error_t je;
    json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!j)
        ty_fail(err, "%s: line %d: %s", path, je.line, je.text);
    return j;
}

/* Reads a blob of `staging` (or the store) checking that its content has the digest it is
 * named by: the one place where a digest from an archive is trusted. */
static json_t *read_blob_json(const char *blobs, const char *digest, ty_error *err)
{
    const char *hex = digest_hex(digest);
    if (!hex)
        return ty_fail(err, "digest %s is not sha256:<64 hex digits>", digest ? digest : "(none)"),
               NULL;
    TY_AUTOFREE char *path = ty_asprintf("%s/%s", blobs, hex);
    char got[65];
    struct stat sb;
    if (stat(path, &sb) < 0)
        return ty_fail_errno(err, errno, "blob %s", digest), NULL;
    if (sb.st_size > TY_IMAGE_JSON_MAX)
        return ty_fail(err, "blob %s is larger than %d bytes", digest, TY_IMAGE_JSON_MAX), NULL;
    if (ty_sha256_file(path, got, NULL, err) < 0)
        return NULL;
    if (strcmp(got, hex) != 0)
        return ty_fail(err, "blob %s: content has digest sha256:%s", digest, got), NULL;
    return read_json(path, err);
}

static int write_json_atomic(const char *path, const json_t *doc, ty_error *err)
{
    TY_AUTOFREE char *tmp = ty_asprintf("%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return ty_fail_errno(err, errno, "write %s", tmp);
    int rc = json_dumpfd(doc, fd, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (rc == 0 && fsync(fd) < 0)
        rc = -1;
    int e = errno;
    close(fd);
    if (rc < 0 || rename(tmp, path) < 0) {
        e = rc < 0 ? e : errno;
        unlink(tmp);
        return ty_fail_errno(err, e, "write %s", path);
    }
    return 0;
}

/* Writer's lock of the store, with the layout made; the fd to close, -1 with a message. */
static int lock_store(const char *dir, ty_error *err)
{
    if (ty_mkdir_p(dir, 0700) < 0)
        return ty_fail_errno(err, errno, "create the image store %s", dir);
    TY_AUTOFREE char *lock = ty_asprintf("%s/lock", dir);
    int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return ty_fail_errno(err, errno, "open %s", lock);
    while (flock(fd, LOCK_EX) < 0)
        if (errno != EINTR) {
            int e = errno;
            close(fd);
            return ty_fail_errno(err, e, "lock %s", lock);
        }
    const char *sub[] = {"blobs/sha256", "layers", "tmp"};
    for (size_t i = 0; i < 3; i++) {
        TY_AUTOFREE char *p = ty_asprintf("%s/%s", dir, sub[i]);
        if (ty_mkdir_p(p, 0755) < 0) {
            int e = errno;
            close(fd);
            return ty_fail_errno(err, e, "create %s", p);
        }
    }
    /* what a load cut short left behind: no other writer runs while we hold the lock */
    TY_AUTOFREE char *tmp = ty_asprintf("%s/tmp", dir);
    DIR *d = opendir(tmp);
    struct dirent *de;
    while (d && (de = readdir(d)))
        if (de->d_name[0] != '.') {
            TY_AUTOFREE char *p = ty_asprintf("%s/%s", tmp, de->d_name);
            ty_rm_tree(p);
        }
    if (d)
        closedir(d);
    TY_AUTOFREE char *layout = ty_asprintf("%s/oci-layout", dir);
    TY_AUTOFREE char *index = ty_asprintf("%s/index.json", dir);
    json_t *l = json_pack("{s:s}", "imageLayoutVersion", "1.0.0");
    json_t *ix = json_pack("{s:i, s:s, s:[]}", "schemaVersion", 2, "mediaType", MT_OCI_INDEX,
                           "manifests");
    int rc = 0;
    if (access(layout, F_OK) < 0)
        rc = write_json_atomic(layout, l, err);
    if (rc == 0 && access(index, F_OK) < 0)
        rc = write_json_atomic(index, ix, err);
    json_decref(l);
    json_decref(ix);
    if (rc < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static json_t *read_index(const char *dir, ty_error *err)
{
    TY_AUTOFREE char *path = ty_asprintf("%s/index.json", dir);
    if (access(path, F_OK) < 0 && errno == ENOENT)
        return json_pack("{s:i, s:s, s:[]}", "schemaVersion", 2, "mediaType", MT_OCI_INDEX,
                         "manifests");
    json_t *ix = read_json(path, err);
    if (ix && !json_is_array(json_object_get(ix, "manifests"))) {
        json_decref(ix);
        return ty_fail(err, "%s: manifests is not a list", path), NULL;
    }
    return ix;
}

static const char *entry_ref(const json_t *desc)
{
    return json_string_value(
        json_object_get(json_object_get(desc, "annotations"), REF_ANNOTATION));
}

/* ---- garbage collection ------------------------------------------------------------------ */

static void mark_manifest(const char *blobs, const char *digest, json_t *keep)
{
    const char *hex = digest_hex(digest);
    if (!hex)
        return;
    json_object_set_new(keep, hex, json_true());
    TY_AUTOFREE char *path = ty_asprintf("%s/%s", blobs, hex);
    json_t *m = read_json(path, NULL);
    const char *cfg = json_string_value(json_object_get(json_object_get(m, "config"), "digest"));
    if (digest_hex(cfg)) {
        json_object_set_new(keep, digest_hex(cfg), json_true());
        TY_AUTOFREE char *cpath = ty_asprintf("%s/%s", blobs, digest_hex(cfg));
        json_t *c = read_json(cpath, NULL);
        json_t *ids = json_object_get(json_object_get(c, "rootfs"), "diff_ids"), *id;
        size_t i;
        json_array_foreach(ids, i, id) if (digest_hex(json_string_value(id)))
            json_object_set_new(keep, json_string_value(id), json_true());
        json_decref(c);
    }
    json_t *layers = json_object_get(m, "layers"), *l;
    size_t i;
    json_array_foreach(layers, i, l) {
        const char *h = digest_hex(json_string_value(json_object_get(l, "digest")));
        if (h)
            json_object_set_new(keep, h, json_true());
    }
    json_decref(m);
}

/* Removes blobs and unpacked layers that no image of the index uses. */
static void collect_garbage(const char *dir, const json_t *index)
{
    TY_AUTOFREE char *blobs = ty_asprintf("%s/blobs/sha256", dir);
    json_t *keep = json_object(); /* blob hex -> true; "sha256:<diff id>" -> true */
    json_t *d;
    size_t i;
    json_array_foreach(json_object_get(index, "manifests"), i, d)
        mark_manifest(blobs, json_string_value(json_object_get(d, "digest")), keep);
    DIR *dd = opendir(blobs);
    struct dirent *de;
    while (dd && (de = readdir(dd)))
        if (de->d_name[0] != '.' && !json_object_get(keep, de->d_name)) {
            TY_AUTOFREE char *p = ty_asprintf("%s/%s", blobs, de->d_name);
            unlink(p);
        }
    if (dd)
        closedir(dd);
    TY_AUTOFREE char *layers = ty_asprintf("%s/layers", dir);
    dd = opendir(layers);
    while (dd && (de = readdir(dd))) {
        if (de->d_name[0] == '.')
            continue;
        char hex[65] = "";
        snprintf(hex, sizeof hex, "%.64s", de->d_name);
        TY_AUTOFREE char *id = ty_asprintf("sha256:%s", hex);
        if (json_object_get(keep, id))
            continue;
        if (strlen(de->d_name) != 64) { /* <hex>.size whose layer a crash left unfinished */
            TY_AUTOFREE char *dirp = ty_asprintf("%s/%s", layers, hex);
            TY_AUTOFREE char *p = ty_asprintf("%s/%s", layers, de->d_name);
            if (access(dirp, F_OK) < 0)
                unlink(p);
            continue;
        }
        /* a running container holds a shared lock on <hex>.size (image.h): its layer stays
         * until a later collection finds it unused */
        TY_AUTOFREE char *szp = ty_asprintf("%s/%s.size", layers, hex);
        int lfd = open(szp, O_RDONLY | O_CLOEXEC);
        if (lfd >= 0 && flock(lfd, LOCK_EX | LOCK_NB) < 0) {
            close(lfd);
            continue;
        }
        TY_AUTOFREE char *p = ty_asprintf("%s/%s", layers, de->d_name);
        ty_rm_tree(p);
        unlink(szp);
        if (lfd >= 0)
            close(lfd);
    }
    if (dd)
        closedir(dd);
    json_decref(keep);
}

/* ---- importing --------------------------------------------------------------------------- */

/* Unpacked size of a layer, recorded beside it. */
static int64_t layer_size(const char *dir, const char *hex)
{
    TY_AUTOFREE char *p = ty_asprintf("%s/layers/%s.size", dir, hex);
    TY_AUTOBUF ty_buf b = TY_BUF_INIT;
    return ty_buf_read_file(&b, p) == 0 ? strtoll(b.data, NULL, 10) : 0;
}

/* Moves a verified blob from staging into the store (kept when it is there already). */
static int store_blob(const char *dir, const char *staging_blobs, const char *hex, ty_error *err)
{
    TY_AUTOFREE char *from = ty_asprintf("%s/%s", staging_blobs, hex);
    TY_AUTOFREE char *to = ty_asprintf("%s/blobs/sha256/%s", dir, hex);
    if (access(to, F_OK) == 0)
        return 0;
    if (link(from, to) < 0 && errno != EEXIST && rename(from, to) < 0)
        return ty_fail_errno(err, errno, "store blob sha256:%s", hex);
    return 0;
}

/* Imports the image whose manifest is `digest` in `staging_blobs` (blobs/sha256 of a layout)
 * under `names`: verifies the manifest, the config and each layer, unpacks the layers the
 * store lacks, stores the blobs and appends a descriptor per name to `out`. */
static int import_manifest(const char *dir, const char *staging_blobs, const char *digest,
                           const json_t *names, json_t *out, ty_error *err)
{
    json_t *m = read_blob_json(staging_blobs, digest, err);
    if (!m)
        return ty_error_wrap(err, "manifest");
    json_t *c = NULL;
    int rc = -1;
    const char *mt = json_string_value(json_object_get(m, "mediaType"));
    if (mt && strcmp(mt, MT_OCI_MANIFEST) != 0 && strcmp(mt, MT_DOCKER_MANIFEST) != 0) {
        ty_fail(err, "manifest %s: media type %s is not an image manifest", digest, mt);
        goto out;
    }
    const char *cdigest = json_string_value(json_object_get(json_object_get(m, "config"),
                                                            "digest"));
    c = read_blob_json(staging_blobs, cdigest, err);
    if (!c) {
        ty_error_wrap(err, "config of %s", digest);
        goto out;
    }
    json_t *layers = json_object_get(m, "layers");
    json_t *ids = json_object_get(json_object_get(c, "rootfs"), "diff_ids");
    size_t n = json_array_size(layers);
    if (!json_is_array(layers) || json_array_size(ids) != n) {
        ty_fail(err, "image %s: %zu layers but %zu diff_ids in its config", digest, n,
                json_array_size(ids));
        goto out;
    }
    if (n > TY_IMAGE_LAYERS_MAX) {
        ty_fail(err, "image %s has %zu layers, more than %d", digest, n, TY_IMAGE_LAYERS_MAX);
        goto out;
    }
    int64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        const char *ld = json_string_value(json_object_get(json_array_get(layers, i), "digest"));
        const char *lhex = digest_hex(ld), *dhex = digest_hex(json_string_value(
                                                       json_array_get(ids, i)));
        if (!lhex || !dhex) {
            ty_fail(err, "image %s: layer %zu: digest or diff_id is not sha256:<hex>", digest, i);
            goto out;
        }
        TY_AUTOFREE char *blob = ty_asprintf("%s/%s", staging_blobs, lhex);
        TY_AUTOFREE char *ldir = ty_asprintf("%s/layers/%s", dir, dhex);
        char got[65];
        if (ty_sha256_file(blob, got, NULL, err) < 0)
            goto out;
        if (strcmp(got, lhex) != 0) {
            ty_fail(err, "layer %s: content has digest sha256:%s", ld, got);
            goto out;
        }
        if (access(ldir, F_OK) == 0) {
            total += layer_size(dir, dhex);
        } else {
            TY_AUTOFREE char *tmp = ty_asprintf("%s/tmp/layer-%s", dir, dhex);
            ty_rm_tree(tmp);
            int64_t sz = ty_image_unpack_layer(blob, dhex, tmp, err);
            if (sz < 0)
                goto out;
            TY_AUTOFREE char *szp = ty_asprintf("%s/layers/%s.size", dir, dhex);
            FILE *f = fopen(szp, "we");
            if (f) {
                fprintf(f, "%lld\n", (long long)sz);
                fclose(f);
            }
            if (rename(tmp, ldir) < 0) {
                ty_fail_errno(err, errno, "store layer %s", ldir);
                goto out;
            }
            total += sz;
        }
        if (store_blob(dir, staging_blobs, lhex, err) < 0)
            goto out;
    }
    if (store_blob(dir, staging_blobs, digest_hex(cdigest), err) < 0 ||
        store_blob(dir, staging_blobs, digest_hex(digest), err) < 0)
        goto out;
    char *mpath = ty_asprintf("%s/blobs/sha256/%s", dir, digest_hex(digest));
    struct stat sb;
    stat(mpath, &sb);
    free(mpath);
    size_t k;
    json_t *name;
    json_array_foreach(names, k, name) {
        json_t *ann = json_pack("{s:O, s:o}", REF_ANNOTATION, name, SIZE_ANNOTATION,
                                json_sprintf("%lld", (long long)total));
        json_t *created = json_object_get(c, "created");
        if (json_is_string(created))
            json_object_set(ann, CREATED_ANNOTATION, created);
        json_array_append_new(out, json_pack("{s:s, s:s, s:I, s:o}", "mediaType",
                                             MT_OCI_MANIFEST, "digest", digest, "size",
                                             (json_int_t)sb.st_size, "annotations", ann));
    }
    rc = 0;
out:
    json_decref(m);
    json_decref(c);
    return rc;
}

/* The normalized names of `raw` (strings); -1 with a message on a bad one. */
static int normalize_names(const json_t *raw, json_t *names, ty_error *err)
{
    size_t i;
    json_t *v;
    json_array_foreach(raw, i, v) {
        ty_image_ref r;
        if (!json_is_string(v))
            return ty_fail(err, "image name %zu is not a string", i);
        if (ty_image_ref_parse(json_string_value(v), &r, err) < 0)
            return -1;
        /* a name stored by digest alone says nothing a lookup by digest does not find */
        char *s = ty_image_ref_string(&r);
        json_array_append_new(names, json_string(s));
        free(s);
        ty_image_ref_free(&r);
    }
    return 0;
}

/* An OCI layout's index: the image manifests it names, following nested indexes to the
 * linux/amd64 (else the first) manifest. */
static int oci_layout_images(const char *root, json_t *todo, ty_error *err)
{
    TY_AUTOFREE char *layout = ty_asprintf("%s/oci-layout", root);
    TY_AUTOFREE char *ixpath = ty_asprintf("%s/index.json", root);
    TY_AUTOFREE char *blobs = ty_asprintf("%s/blobs/sha256", root);
    if (access(layout, F_OK) < 0)
        return ty_fail(err, "neither manifest.json (docker-archive) nor oci-layout "
                       "(oci-archive) found");
    json_t *ix = read_json(ixpath, err);
    if (!ix)
        return -1;
    int rc = 0;
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(ix, "manifests"), i, d) {
        json_t *ann = json_object_get(d, "annotations");
        const char *name = json_string_value(json_object_get(ann, "io.containerd.image.name"));
        if (!name)
            name = json_string_value(json_object_get(ann, REF_ANNOTATION));
        if (!name) {
            rc = ty_fail(err, "index.json: manifests[%zu] has no name (annotation %s)", i,
                         REF_ANNOTATION);
            break;
        }
        const char *digest = json_string_value(json_object_get(d, "digest"));
        const char *mt = json_string_value(json_object_get(d, "mediaType"));
        if (mt && (strcmp(mt, MT_OCI_INDEX) == 0 || strcmp(mt, MT_DOCKER_LIST) == 0)) {
            json_t *sub = read_blob_json(blobs, digest, err);
            if (!sub) {
                rc = -1;
                break;
            }
            const char *pick = NULL;
            size_t j;
            json_t *e;
            json_array_foreach(json_object_get(sub, "manifests"), j, e) {
                json_t *pl = json_object_get(e, "platform");
                const char *os = json_string_value(json_object_get(pl, "os"));
                const char *arch = json_string_value(json_object_get(pl, "architecture"));
                if (!pick || (os && arch && strcmp(os, "linux") == 0 &&
                              strcmp(arch, "amd64") == 0))
                    pick = json_string_value(json_object_get(e, "digest"));
            }
            json_array_append_new(todo, json_pack("{s:s?, s:s}", "digest", pick, "name", name));
            json_decref(sub);
        } else {
            json_array_append_new(todo, json_pack("{s:s?, s:s}", "digest", digest, "name", name));
        }
    }
    json_decref(ix);
    return rc;
}

/* docker save's manifest.json: each image's config and layer tars become an OCI manifest. */
static int docker_images(const char *root, json_t *todo, ty_error *err)
{
    TY_AUTOFREE char *mpath = ty_asprintf("%s/manifest.json", root);
    TY_AUTOFREE char *blobs = ty_asprintf("%s/blobs/sha256", root);
    json_t *list = read_json(mpath, err);
    if (!list)
        return -1;
    int rc = 0;
    if (!json_is_array(list))
        rc = ty_fail(err, "manifest.json is not a list");
    if (rc == 0 && ty_mkdir_p(blobs, 0755) < 0)
        rc = ty_fail_errno(err, errno, "create %s", blobs);
    size_t i;
    json_t *img;
    json_array_foreach(list, i, img) {
        if (rc < 0)
            break;
        const char *cfg = json_string_value(json_object_get(img, "Config"));
        json_t *tags = json_object_get(img, "RepoTags");
        json_t *files = json_object_get(img, "Layers");
        const char *why = cfg ? ty_image_path_unsafe(cfg) : "is missing";
        if (why) {
            rc = ty_fail(err, "manifest.json[%zu]: Config %s", i, why);
            break;
        }
        if (!json_array_size(tags)) {
            rc = ty_fail(err, "manifest.json[%zu]: the image has no name (RepoTags): tag it "
                         "before saving (docker save NAME:TAG)", i);
            break;
        }
        json_t *m = json_pack("{s:i, s:s, s:{}, s:[]}", "schemaVersion", 2, "mediaType",
                              MT_OCI_MANIFEST, "config", "layers");
        char hex[65];
        int64_t size;
        TY_AUTOFREE char *cpath = ty_asprintf("%s/%s", root, cfg);
        if (ty_sha256_file(cpath, hex, &size, err) < 0) {
            json_decref(m);
            rc = ty_error_wrap(err, "manifest.json[%zu]: Config", i);
            break;
        }
        TY_AUTOFREE char *cblob = ty_asprintf("%s/%s", blobs, hex);
        if (link(cpath, cblob) < 0 && errno != EEXIST) {
            json_decref(m);
            rc = ty_fail_errno(err, errno, "stage %s", cfg);
            break;
        }
        json_object_set_new(json_object_get(m, "config"), "mediaType",
                            json_string("application/vnd.oci.image.config.v1+json"));
        json_object_set_new(json_object_get(m, "config"), "digest",
                            json_sprintf("sha256:%s", hex));
        json_object_set_new(json_object_get(m, "config"), "size", json_integer(size));
        size_t j;
        json_t *f;
        json_array_foreach(files, j, f) {
            const char *lp = json_string_value(f);
            why = lp ? ty_image_path_unsafe(lp) : "is not a string";
            if (why) {
                rc = ty_fail(err, "manifest.json[%zu]: Layers[%zu] %s", i, j, why);
                break;
            }
            TY_AUTOFREE char *path = ty_asprintf("%s/%s", root, lp);
            if (ty_sha256_file(path, hex, &size, err) < 0) {
                rc = ty_error_wrap(err, "manifest.json[%zu]: Layers[%zu]", i, j);
                break;
            }
            unsigned char magic[4] = {0};
            FILE *fp = fopen(path, "re");
            if (fp) {
                size_t got = fread(magic, 1, 4, fp);
                (void)got;
                fclose(fp);
            }
            const char *lmt = magic[0] == 0x1f && magic[1] == 0x8b
                                  ? "application/vnd.oci.image.layer.v1.tar+gzip"
                              : magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f
                                  ? "application/vnd.oci.image.layer.v1.tar+zstd"
                                  : "application/vnd.oci.image.layer.v1.tar";
            TY_AUTOFREE char *lblob = ty_asprintf("%s/%s", blobs, hex);
            if (link(path, lblob) < 0 && errno != EEXIST) {
                rc = ty_fail_errno(err, errno, "stage %s", lp);
                break;
            }
            json_array_append_new(json_object_get(m, "layers"),
                                  json_pack("{s:s, s:o, s:I}", "mediaType", lmt, "digest",
                                            json_sprintf("sha256:%s", hex), "size",
                                            (json_int_t)size));
        }
        if (rc == 0) {
            /* the manifest is ours: written, then named by its digest like any blob */
            TY_AUTOFREE char *tmp = ty_asprintf("%s/.manifest", root);
            if (write_json_atomic(tmp, m, err) < 0 || ty_sha256_file(tmp, hex, NULL, err) < 0)
                rc = -1;
            TY_AUTOFREE char *mblob = ty_asprintf("%s/%s", blobs, hex);
            if (rc == 0 && rename(tmp, mblob) < 0)
                rc = ty_fail_errno(err, errno, "stage the manifest");
            size_t k;
            json_t *t;
            json_array_foreach(tags, k, t) if (rc == 0)
                json_array_append_new(todo, json_pack("{s:o, s:O}", "digest",
                                                      json_sprintf("sha256:%s", hex), "name",
                                                      t));
        }
        json_decref(m);
    }
    json_decref(list);
    return rc;
}

/* Writes a regular file entry of the outer archive into `root`, never through a symlink. */
static int stage_entry(struct archive *a, int rootfd, const char *path, ty_error *err)
{
    const char *slash = strrchr(path, '/');
    int dfd = rootfd;
    if (slash) {
        TY_AUTOFREE char *parent = ty_strndup(path, (size_t)(slash - path));
        /* walk, creating directories; O_NOFOLLOW on each step */
        dfd = dup(rootfd);
        char *save = NULL;
        for (char *c = strtok_r(parent, "/", &save); c && dfd >= 0;
             c = strtok_r(NULL, "/", &save)) {
            if (strcmp(c, ".") == 0)
                continue;
            mkdirat(dfd, c, 0755);
            int next = openat(dfd, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            close(dfd);
            dfd = next;
        }
        if (dfd < 0)
            return ty_fail_errno(err, errno, "stage %s", path);
    }
    const char *base = slash ? slash + 1 : path;
    int fd = openat(dfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    int e = errno;
    if (dfd != rootfd)
        close(dfd);
    if (fd < 0)
        return ty_fail_errno(err, e, "stage %s", path);
    const void *buf;
    size_t len;
    la_int64_t off;
    int r;
    while ((r = ty_ar.read_data_block(a, &buf, &len, &off)) == ARCHIVE_OK)
        if (pwrite(fd, buf, len, off) != (ssize_t)len) {
            e = errno;
            close(fd);
            return ty_fail_errno(err, e, "stage %s", path);
        }
    close(fd);
    if (r != ARCHIVE_EOF)
        return ty_fail(err, "read %s: %s", path, ty_ar.error_string(a));
    return 0;
}

/* Unpacks the outer archive (docker-archive or oci-archive) into `root`: regular files and
 * directories; a symlink (docker save links repeated layers) becomes a hard link to its
 * target inside `root`, never anything outside. */
static int stage_archive(const char *archive, const char *root, ty_error *err)
{
    if (ty_archive_load(err) < 0)
        return -1;
    int fd = open(archive, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ty_fail_errno(err, errno, "open %s", archive);
    int rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    struct archive *a = ty_ar.read_new();
    ty_ar.read_support_filter_all(a);
    ty_ar.read_support_format_tar(a);
    int rc = 0;
    if (rootfd < 0)
        rc = ty_fail_errno(err, errno, "open %s", root);
    else if (ty_ar.read_open_fd(a, fd, 1 << 16) != ARCHIVE_OK)
        rc = ty_fail(err, "read %s: %s", archive, ty_ar.error_string(a));
    json_t *links = json_array();
    struct archive_entry *e;
    int r = ARCHIVE_EOF;
    int64_t entries = 0, bytes = 0;
    while (rc == 0 && ((r = ty_ar.read_next_header(a, &e)) == ARCHIVE_OK || r == ARCHIVE_WARN)) {
        const char *path = ty_ar.entry_pathname(e);
        while (path && path[0] == '.' && path[1] == '/')
            path += 2;
        if (!path || !*path || strcmp(path, ".") == 0)
            continue;
        const char *why = ty_image_path_unsafe(path);
        if (why) {
            rc = ty_fail(err, "%s: entry %s %s", archive, path, why);
            break;
        }
        bytes += ty_ar.entry_size(e);
        if (++entries > TY_IMAGE_ENTRIES_MAX || bytes > TY_IMAGE_BYTES_MAX) {
            rc = ty_fail(err, "%s: more than %d entries or %lld bytes", archive,
                         TY_IMAGE_ENTRIES_MAX, (long long)TY_IMAGE_BYTES_MAX);
            break;
        }
        mode_t t = ty_ar.entry_filetype(e);
        if (t == AE_IFREG && !ty_ar.entry_hardlink(e))
            rc = stage_entry(a, rootfd, path, err);
        else if (t == AE_IFLNK || ty_ar.entry_hardlink(e)) {
            const char *target = t == AE_IFLNK ? ty_ar.entry_symlink(e) : ty_ar.entry_hardlink(e);
            json_array_append_new(links, json_pack("{s:s, s:s, s:b}", "path", path, "target",
                                                   target ? target : "", "sym", t == AE_IFLNK));
        }
    }
    if (rc == 0 && r != ARCHIVE_EOF)
        rc = ty_fail(err, "read %s: %s", archive, ty_ar.error_string(a));
    size_t i;
    json_t *l;
    json_array_foreach(links, i, l) {
        if (rc < 0)
            break;
        const char *path = json_string_value(json_object_get(l, "path"));
        const char *target = json_string_value(json_object_get(l, "target"));
        /* a symlink's target is relative to its directory; a hard link's to the root */
        TY_AUTOFREE char *rel = NULL;
        const char *slash = strrchr(path, '/');
        if (json_is_true(json_object_get(l, "sym")) && slash)
            rel = ty_asprintf("%.*s/%s", (int)(slash - path), path, target);
        else
            rel = ty_strdup(target);
        /* fold "dir/../x" so that the result must stay inside */
        TY_AUTOBUF ty_buf norm = TY_BUF_INIT;
        char *save = NULL;
        const char *why = rel[0] == '/' ? "is absolute" : NULL;
        for (char *c = strtok_r(rel, "/", &save); c && !why; c = strtok_r(NULL, "/", &save)) {
            if (strcmp(c, ".") == 0)
                continue;
            if (strcmp(c, "..") == 0) {
                char *last = norm.len ? strrchr(norm.data, '/') : NULL;
                if (!norm.len)
                    why = "leaves the archive";
                else if (last) {
                    norm.len = (size_t)(last - norm.data);
                    norm.data[norm.len] = '\0';
                } else
                    ty_buf_reset(&norm);
                continue;
            }
            if (norm.len)
                ty_buf_addc(&norm, '/');
            ty_buf_adds(&norm, c);
        }
        if (why || !norm.len) {
            rc = ty_fail(err, "%s: link %s -> %s %s", archive, path, target,
                         why ? why : "names nothing");
            break;
        }
        TY_AUTOFREE char *from = ty_asprintf("%s/%s", root, norm.data);
        TY_AUTOFREE char *to = ty_asprintf("%s/%s", root, path);
        struct stat sb;
        if (lstat(from, &sb) < 0 || !S_ISREG(sb.st_mode))
            continue; /* links to what is not a staged file are not needed */
        TY_AUTOFREE char *dir = ty_strdup(to);
        *strrchr(dir, '/') = '\0';
        ty_mkdir_p(dir, 0755);
        if (link(from, to) < 0 && errno != EEXIST)
            rc = ty_fail_errno(err, errno, "stage link %s", path);
    }
    json_decref(links);
    ty_ar.read_free(a);
    close(fd);
    if (rootfd >= 0)
        close(rootfd);
    return rc;
}

/* Imports what `root` (a staged archive, or a layout skopeo wrote) holds. `rename_to`: the
 * name to give every image instead of their own (a pull). */
static int import_root(const char *dir, const char *root, const char *rename_to, json_t **names,
                       ty_error *err)
{
    TY_AUTOFREE char *mpath = ty_asprintf("%s/manifest.json", root);
    TY_AUTOFREE char *blobs = ty_asprintf("%s/blobs/sha256", root);
    json_t *todo = json_array();
    int rc = access(mpath, F_OK) == 0 ? docker_images(root, todo, err)
                                      : oci_layout_images(root, todo, err);
    if (rc == 0 && json_array_size(todo) == 0)
        rc = ty_fail(err, "the archive holds no image");
    json_t *descs = json_array();
    *names = json_array();
    size_t i;
    json_t *t;
    json_array_foreach(todo, i, t) {
        if (rc < 0)
            break;
        json_t *raw = json_pack("[s]", rename_to ? rename_to
                                                 : json_string_value(json_object_get(t, "name")));
        json_t *norm = json_array();
        rc = normalize_names(raw, norm, err);
        if (rc == 0)
            rc = import_manifest(dir, blobs, json_string_value(json_object_get(t, "digest")),
                                 norm, descs, err);
        if (rc == 0)
            json_array_extend(*names, norm);
        json_decref(raw);
        json_decref(norm);
    }
    if (rc == 0) {
        json_t *ix = read_index(dir, err);
        if (!ix)
            rc = -1;
        else {
            json_t *old = json_object_get(ix, "manifests"), *keep = json_array(), *d;
            json_array_foreach(old, i, d) {
                bool replaced = false;
                size_t k;
                json_t *nd;
                json_array_foreach(descs, k, nd) replaced |=
                    entry_ref(d) && strcmp(entry_ref(d), entry_ref(nd)) == 0;
                if (!replaced)
                    json_array_append(keep, d);
            }
            json_array_extend(keep, descs);
            json_object_set_new(ix, "manifests", keep);
            TY_AUTOFREE char *ixpath = ty_asprintf("%s/index.json", dir);
            rc = write_json_atomic(ixpath, ix, err);
        }
        if (rc == 0)
            collect_garbage(dir, ix); /* the images these names had before */
        json_decref(ix);
    }
    if (rc < 0) {
        json_decref(*names);
        *names = NULL;
        /* blobs and layers stored for a failed load: nothing names them */
        json_t *ix = read_index(dir, NULL);
        if (ix)
            collect_garbage(dir, ix);
        json_decref(ix);
    }
    json_decref(todo);
    json_decref(descs);
    return rc;
}

int ty_image_load(const char *dir, const char *archive, json_t **names, ty_error *err)
{
    *names = NULL;
    struct stat sb;
    if (stat(archive, &sb) < 0)
        return ty_fail_errno(err, errno, "load %s", archive);
    int lock = lock_store(dir, err);
    if (lock < 0)
        return -1;
    char tmpl[PATH_MAX];
    snprintf(tmpl, sizeof tmpl, "%s/tmp/load-XXXXXX", dir);
    int rc = -1;
    if (!mkdtemp(tmpl))
        ty_fail_errno(err, errno, "create a directory in %s/tmp", dir);
    else {
        rc = stage_archive(archive, tmpl, err);
        if (rc == 0)
            rc = import_root(dir, tmpl, NULL, names, err);
        ty_rm_tree(tmpl);
    }
    close(lock);
    return rc < 0 ? ty_error_wrap(err, "load %s", archive) : 0;
}

/* skopeo copy docker://<norm> oci:<tmp>/layout:pulled; its last line of error on failure. */
static int skopeo_copy(const char *norm, const char *tmp, ty_error *err)
{
    TY_AUTOFREE char *src = ty_asprintf("docker://%s", norm);
    TY_AUTOFREE char *dst = ty_asprintf("oci:%s/layout:pulled", tmp);
    TY_AUTOFREE char *errpath = ty_asprintf("%s/stderr", tmp);
    char *argv[] = {"skopeo", "copy", "--quiet", src, dst, NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, errpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    pid_t pid;
    int e = posix_spawnp(&pid, "skopeo", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (e == ENOENT)
        return ty_fail(err, "pull %s: skopeo is not installed (install skopeo to pull, or bring "
                       "the image with trainyard image load)", norm);
    if (e)
        return ty_fail_errno(err, e, "pull %s: run skopeo", norm);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
        return 0;
    TY_AUTOBUF ty_buf msg = TY_BUF_INIT;
    ty_buf_read_file(&msg, errpath);
    while (msg.len && (msg.data[msg.len - 1] == '\n' || msg.data[msg.len - 1] == ' '))
        msg.data[--msg.len] = '\0';
    const char *last = msg.len ? strrchr(msg.data, '\n') : NULL;
    return ty_fail(err, "pull %s: skopeo failed: %.400s", norm,
                   last ? last + 1 : msg.len ? msg.data : "(no message)");
}

int ty_image_pull(const char *dir, const char *ref, ty_error *err)
{
    ty_image_ref r;
    if (ty_image_ref_parse(ref, &r, err) < 0)
        return -1;
    TY_AUTOFREE char *norm = ty_image_ref_string(&r);
    ty_image_ref_free(&r);
    int lock = lock_store(dir, err);
    if (lock < 0)
        return -1;
    char tmpl[PATH_MAX];
    snprintf(tmpl, sizeof tmpl, "%s/tmp/pull-XXXXXX", dir);
    if (!mkdtemp(tmpl)) {
        close(lock);
        return ty_fail_errno(err, errno, "create a directory in %s/tmp", dir);
    }
    int rc = skopeo_copy(norm, tmpl, err);
    if (rc == 0) {
        TY_AUTOFREE char *root = ty_asprintf("%s/layout", tmpl);
        json_t *names = NULL;
        rc = import_root(dir, root, norm, &names, err);
        json_decref(names);
        if (rc < 0)
            ty_error_wrap(err, "pull %s", norm);
    }
    ty_rm_tree(tmpl);
    close(lock);
    return rc;
}

/* ---- reading ----------------------------------------------------------------------------- */

/* Does index entry `d` answer the reference `r`? By name and tag, or by name and digest. */
static bool entry_matches(const json_t *d, const ty_image_ref *r)
{
    const char *ref = entry_ref(d);
    ty_image_ref e;
    if (!ref || ty_image_ref_parse(ref, &e, NULL) < 0)
        return false;
    bool ok = strcmp(e.name, r->name) == 0;
    if (ok && r->digest)
        ok = strcmp(r->digest, json_string_value(json_object_get(d, "digest"))
                                   ? json_string_value(json_object_get(d, "digest")) : "") == 0;
    else if (ok)
        ok = e.tag && r->tag && strcmp(e.tag, r->tag) == 0;
    ty_image_ref_free(&e);
    return ok;
}

json_t *ty_image_list(const char *dir, ty_error *err)
{
    json_t *ix = read_index(dir, err);
    if (!ix)
        return NULL;
    json_t *out = json_array(), *d;
    size_t i;
    json_array_foreach(json_object_get(ix, "manifests"), i, d) {
        ty_image_ref r;
        if (!entry_ref(d) || ty_image_ref_parse(entry_ref(d), &r, NULL) < 0)
            continue;
        const char *digest = json_string_value(json_object_get(d, "digest"));
        TY_AUTOFREE char *mpath = ty_asprintf("%s/blobs/sha256/%s", dir,
                                              digest_hex(digest) ? digest_hex(digest) : "-");
        json_t *m = read_json(mpath, NULL);
        json_t *ann = json_object_get(d, "annotations");
        const char *size = json_string_value(json_object_get(ann, SIZE_ANNOTATION));
        json_array_append_new(
            out, json_pack("{s:s, s:s?, s:s, s:O, s:O?, s:I}", "name", r.name, "tag", r.tag,
                           "digest", digest ? digest : "", "id",
                           json_object_get(json_object_get(m, "config"), "digest"), "created",
                           json_object_get(ann, CREATED_ANNOTATION), "size",
                           (json_int_t)(size ? strtoll(size, NULL, 10) : 0)));
        json_decref(m);
        ty_image_ref_free(&r);
    }
    json_decref(ix);
    return out;
}

int ty_image_remove(const char *dir, const char *ref, ty_error *err)
{
    ty_image_ref r;
    if (ty_image_ref_parse(ref, &r, err) < 0)
        return -1;
    int lock = lock_store(dir, err);
    if (lock < 0) {
        ty_image_ref_free(&r);
        return -1;
    }
    json_t *ix = read_index(dir, err);
    int rc = ix ? 0 : -1;
    if (ix) {
        json_t *keep = json_array(), *d;
        size_t i, removed = 0;
        json_array_foreach(json_object_get(ix, "manifests"), i, d) {
            if (entry_matches(d, &r))
                removed++;
            else
                json_array_append(keep, d);
        }
        json_object_set_new(ix, "manifests", keep);
        TY_AUTOFREE char *norm = ty_image_ref_string(&r);
        TY_AUTOFREE char *ixpath = ty_asprintf("%s/index.json", dir);
        if (!removed)
            rc = ty_fail(err, "image %s not found in %s", norm, dir);
        else if ((rc = write_json_atomic(ixpath, ix, err)) == 0)
            collect_garbage(dir, ix);
    }
    json_decref(ix);
    close(lock);
    ty_image_ref_free(&r);
    return rc;
}

int ty_image_find(const char *dir, const char *image, ty_image *out, ty_error *err)
{
    memset(out, 0, sizeof *out);
    ty_image_ref r;
    if (ty_image_ref_parse(image, &r, err) < 0)
        return -1;
    json_t *ix = read_index(dir, err), *d, *hit = NULL;
    int rc = ix ? 0 : -1;
    size_t i;
    json_array_foreach(json_object_get(ix, "manifests"), i, d) if (!hit && entry_matches(d, &r))
        hit = d;
    json_t *m = NULL, *c = NULL;
    if (hit) {
        TY_AUTOFREE char *blobs = ty_asprintf("%s/blobs/sha256", dir);
        const char *digest = json_string_value(json_object_get(hit, "digest"));
        const char *hex = digest_hex(digest);
        TY_AUTOFREE char *mpath = ty_asprintf("%s/%s", blobs, hex ? hex : "-");
        m = read_json(mpath, err);
        const char *cd = json_string_value(json_object_get(json_object_get(m, "config"),
                                                           "digest"));
        TY_AUTOFREE char *cpath = ty_asprintf("%s/%s", blobs,
                                              digest_hex(cd) ? digest_hex(cd) : "-");
        c = m ? read_json(cpath, err) : NULL;
        json_t *ids = json_object_get(json_object_get(c, "rootfs"), "diff_ids");
        rc = c ? 1 : -1;
        if (c) {
            out->ref = ty_strdup(entry_ref(hit));
            out->digest = ty_strdup(digest);
            out->id = ty_strdup(cd);
            out->config = json_incref(json_object_get(c, "config"));
            out->n_layers = json_array_size(ids);
            out->layers = ty_calloc(out->n_layers + 1, sizeof(char *));
            for (size_t k = 0; k < out->n_layers; k++) {
                const char *h = digest_hex(json_string_value(json_array_get(ids, k)));
                out->layers[k] = ty_asprintf("%s/layers/%s", dir, h ? h : "-");
                if (!h || access(out->layers[k], F_OK) < 0) {
                    rc = ty_fail(err, "image %s: layer %zu is not unpacked in %s (load the "
                                 "image again)", out->ref, k, dir);
                    break;
                }
            }
        }
        if (rc < 0)
            ty_error_wrap(err, "image store %s", dir);
    }
    json_decref(m);
    json_decref(c);
    json_decref(ix);
    ty_image_ref_free(&r);
    if (rc != 1)
        ty_image_free(out);
    return rc;
}

void ty_image_free(ty_image *img)
{
    free(img->ref), free(img->id), free(img->digest);
    json_decref(img->config);
    for (size_t i = 0; i < img->n_layers; i++)
        free(img->layers[i]);
    free(img->layers);
    memset(img, 0, sizeof *img);
}
