/* The local image store: images as OCI image layouts under a directory of trainyard's
 * (<data-dir>/images), the containers' root filesystems made from them.
 *
 * Layout (the OCI image layout, so skopeo/umoci can read it): oci-layout, index.json (one
 * manifest descriptor per name, annotation org.opencontainers.image.ref.name holding the
 * normalized reference, e.g. docker.io/library/busybox:latest), blobs/sha256/<hex> (manifests,
 * configs and layers, each stored once whatever number of images uses it). Beside the layout:
 * layers/<diff id hex>/, each layer unpacked once (whiteouts converted to overlay's form) as an
 * overlay lower directory, shared by the images that have it, with layers/<hex>.size (its
 * unpacked size; a container using the layer holds a shared flock on it, and rm leaves a layer
 * so locked for a later collection); tmp/ for loads under way; lock,
 * an flock taken exclusively by load, pull and rm, shared by lookups.
 *
 * References are normalized as Kubernetes and containerd do (docker/distribution's rules):
 * busybox = docker.io/library/busybox:latest, a digest is @sha256:<64 hex>. */
#ifndef TY_IMAGE_IMAGE_H
#define TY_IMAGE_IMAGE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

typedef struct ty_image_ref {
    char *name;   /* domain/path: docker.io/library/busybox */
    char *tag;    /* "latest" when neither tag nor digest was given; NULL with a digest only */
    char *digest; /* "sha256:<hex>" or NULL */
} ty_image_ref;

/* Parses and normalizes `s`; -1 with a message saying what is wrong with it. */
int ty_image_ref_parse(const char *s, ty_image_ref *out, ty_error *err);
/* name:tag, name@digest or name:tag@digest; caller frees. */
char *ty_image_ref_string(const ty_image_ref *r);
void ty_image_ref_free(ty_image_ref *r);
/* The kubelet's default imagePullPolicy for an image: Always for ":latest" or no tag (and no
 * digest), else IfNotPresent. */
const char *ty_image_default_pull_policy(const char *image);

/* Loads a docker-archive (manifest.json + config + layer tars, as `docker save` writes it) or
 * an oci-archive (an OCI layout in a tar, as `podman save --format oci-archive` and `skopeo
 * copy ... oci-archive:` write it) into the store at `dir`, verifying every digest, and unpacks
 * its layers. *names gets the references loaded (a new array). -1 with a message; a failed
 * load leaves the store as it was. */
int ty_image_load(const char *dir, const char *archive, json_t **names, ty_error *err);
/* Copies `ref` from its registry with skopeo (`skopeo copy docker://REF oci:...`) and loads
 * it. -1 with a message (no skopeo, registry unreachable, ...). */
int ty_image_pull(const char *dir, const char *ref, ty_error *err);
/* The images: a new array of {"name", "tag" (or null), "digest" (the manifest's), "id" (the
 * config's digest), "created" (RFC 3339, or null), "size" (unpacked bytes)}, sorted by name
 * and tag. An empty or missing store is an empty list. */
json_t *ty_image_list(const char *dir, ty_error *err);
/* Removes the name `ref`, then every blob and unpacked layer no remaining image uses. */
int ty_image_remove(const char *dir, const char *ref, ty_error *err);

typedef struct ty_image {
    char *ref;        /* normalized reference as stored */
    char *id;         /* the config's digest, sha256:<hex> */
    char *digest;     /* the manifest's digest */
    json_t *config;   /* the image config's "config" (Entrypoint, Cmd, Env, ...); may be NULL */
    char **layers;    /* unpacked layer directories, lowest first */
    size_t n_layers;
} ty_image;
/* Looks `image` up (normalized first): 1 found (fills *out), 0 not in the store, -1 error
 * (a malformed reference, a damaged store). */
int ty_image_find(const char *dir, const char *image, ty_image *out, ty_error *err);
void ty_image_free(ty_image *img);

#endif
