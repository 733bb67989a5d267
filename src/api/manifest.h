/* Manifests: YAML (multi-document) and JSON files decoded into jansson values, with the
 * line:column of every key and value kept beside them so that errors can point at the source.
 *
 * JSON is read by the same YAML 1.1 parser (JSON is its flow subset), so both formats get the
 * same positions and messages (JSON's surrogate-pair escapes, which YAML lacks, are rewritten
 * first; columns after one on the same line read two less). Plain scalars resolve as Kubernetes' YAML decoder (go-yaml v2)
 * resolves them: null/Null/NULL/~/empty -> null; true/false, yes/no, on/off and y/n (lower,
 * Capitalised or UPPER) -> bool; integers after dropping underscores, decimal or 0x/0o/0b or a
 * leading 0 for octal -> integer (one that fits uint64 but not int64 becomes a real: JSON has one
 * number type); decimal floats -> real; anything else -> string. Quoted scalars are strings.
 * Decisions where JSON or jansson cannot follow Kubernetes: .inf/.nan are errors (JSON cannot
 * hold them, and the API server rejects them too); timestamps stay the strings they were written
 * as. The core tags (!!str !!int !!float !!bool !!null !!map !!seq, and !!binary/!!timestamp
 * kept as strings) are honoured; any other tag is an error.
 * Anchors and aliases are resolved into copies (the result is a tree, nothing is shared), and
 * merge keys (`<<: *base`) merge with the written keys winning. Keys: a scalar key is its text
 * (`8080:` -> "8080"); null keys, mapping or sequence keys and duplicate keys are errors.
 * Empty documents are skipped (they still count in `index`). A top-level `kind: List` (or any
 * `*List` kind) with `items` is expanded into its items, which must be objects.
 *
 * Untrusted input is bounded: 64 MiB, 200 levels of nesting (aliases included), aliases
 * expanding a document by at most 64 times the nodes written in it (at least 10,000, at most
 * 1,000,000), checked before each copy, so a "billion laughs" fails in milliseconds.
 * Errors name the place:
 * "<file>:<line>:<col>: <what>", e.g. `job.yaml:3:5: duplicate key "name"`.
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
    int index;    /* 0-based position of the document in the file (items of a List share it) */
    ty_pos pos;   /* where the document's top-level mapping (or the List item) starts */
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
/* Reads and parses a file; "-" reads standard input (named "<stdin>" in messages). */
int ty_manifest_load(const char *path, ty_manifest **out, ty_error *err);
void ty_manifest_free(ty_manifest *m); /* NULL is fine */

/* Where member `key` of object `parent` is: its value (of_key = false) or the key itself.
 * Returns {0,0} when unknown (e.g. the value was added after parsing). `m` may be NULL. */
ty_pos ty_manifest_pos_member(const ty_manifest *m, const json_t *parent, const char *key,
                              bool of_key);
/* Where element `index` of `array` is. */
ty_pos ty_manifest_pos_index(const ty_manifest *m, const json_t *array, size_t index);

#endif
