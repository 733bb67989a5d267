/* Manifests: YAML (multi-document) and JSON files decoded into jansson values, with the
 * line:column of every key and value kept beside them so that errors can point at the source.
 *
 * JSON is read by the same YAML 1.1 parser (JSON is its flow subset), so both formats get the
 * same positions and messages. Plain scalars resolve as Kubernetes' YAML decoder resolves them:
 * null/~/empty -> null, true/false (and yes/no/on/off in any of their cases) -> bool,
 * decimal/0x/0o integers -> integer, decimal floats/.inf/.nan -> real, anything else -> string;
 * quoted scalars are always strings. Anchors and aliases are resolved; duplicate keys, tags
 * other than the core ones and non-string keys are errors. Empty documents are skipped.
 * A top-level `kind: List` (or any `*List` kind) with `items` is expanded into its items.
 *
 * Ownership: the manifest owns its documents' values; ty_manifest_free() releases everything. */
#ifndef TY_API_MANIFEST_H
#define TY_API_MANIFEST_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "base/error.h"

typedef struct ty_pos {
    int line; /* 1-based; 0 when unknown */
    int col;  /* 1-based */
} ty_pos;

typedef struct ty_manifest_doc {
    json_t *obj;  /* a JSON object (non-objects are rejected at parse time) */
    int index;    /* 0-based position of the document in the file */
    ty_pos pos;   /* where the document's top-level mapping starts */
} ty_manifest_doc;

typedef struct ty_srcmap ty_srcmap;

typedef struct ty_manifest {
    char *file;           /* the name used in messages, as given to the parser */
    ty_manifest_doc *docs;
    size_t ndocs;
    ty_srcmap *map;       /* private: positions of keys and values */
} ty_manifest;

/* Parses `len` bytes of YAML or JSON. On a syntax error returns -1 with a message
 * "<file>:<line>:<col>: <what>" and *out untouched. */
int ty_manifest_parse(const char *file, const char *data, size_t len, ty_manifest **out,
                      ty_error *err);
/* Reads and parses a file; "-" reads standard input. */
int ty_manifest_load(const char *path, ty_manifest **out, ty_error *err);
void ty_manifest_free(ty_manifest *m);

/* Where member `key` of object `parent` is: its value (of_key = false) or the key itself.
 * Returns {0,0} when unknown (e.g. the value was added after parsing). `m` may be NULL. */
ty_pos ty_manifest_pos_member(const ty_manifest *m, const json_t *parent, const char *key,
                              bool of_key);
/* Where element `index` of `array` is. */
ty_pos ty_manifest_pos_index(const ty_manifest *m, const json_t *array, size_t index);

#endif
