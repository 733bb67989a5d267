/* Manifest decoding: libyaml events -> jansson values, with a position for every key, value and
 * sequence element.
 *
 * Positions live in a hash map keyed by (parent pointer, key or index), not by node, because
 * jansson's true/false/null are shared singletons and one node can have no position of its own.
 * The srcmap keeps every parsed document (and merge source) alive, so a parent pointer cannot be
 * reused by a later allocation while the manifest exists.
 *
 * The input is untrusted: it is bounded in size (MANIFEST_MAX_BYTES), nesting depth
 * (MANIFEST_MAX_DEPTH, checked on the final tree, aliases included) and alias expansion
 * (a ratio to the nodes written, up to MANIFEST_MAX_ALIAS_NODES, against "billion laughs").
 * Aliases are expanded into copies, so the result is a tree in which no node is shared and
 * callers may edit any part. */
#include "api/manifest.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

#include "base/buf.h"
#include "base/map.h"
#include "base/mem.h"

#define MANIFEST_MAX_BYTES (64u << 20)
#define MANIFEST_MAX_DEPTH 200
/* Aliases may expand a document by ALIAS_RATIO times the nodes written in it so far, or by
 * ALIAS_FLOOR nodes, whichever is more, and never past MANIFEST_MAX_ALIAS_NODES: a manifest
 * that reuses a pod template per item stays well within it, while a 1 KB "billion laughs"
 * stops after ~10,000 copied nodes (milliseconds), not a million (seconds, during which the
 * API server answers nobody). Checked before each alias is copied. */
#define MANIFEST_MAX_ALIAS_NODES 1000000u
#define ALIAS_RATIO 64u
#define ALIAS_FLOOR 10000u

#define TAG_PREFIX "tag:yaml.org,2002:"

_Static_assert(sizeof(void *) >= 8, "positions are packed into pointer-sized map values");

struct ty_srcmap {
    ty_map pos;     /* (parent, 'k'|'v', key) or (parent, 'i', index) -> packed ty_pos */
    json_t *keep;   /* every parsed document and merge source, so parent pointers stay unique */
};

/* ---- positions ---------------------------------------------------------------------------- */

static void *pos_pack(ty_pos p)
{
    return (void *)(uintptr_t)(((uint64_t)(uint32_t)p.line << 32) | (uint32_t)p.col);
}

static ty_pos pos_unpack(void *v)
{
    uint64_t u = (uint64_t)(uintptr_t)v;
    return (ty_pos){(int)(u >> 32), (int)(u & 0xffffffffu)};
}

static void pos_key(ty_buf *k, const json_t *parent, char kind, const void *key, size_t len)
{
    ty_buf_reset(k);
    ty_buf_add(k, &parent, sizeof(parent));
    ty_buf_addc(k, kind);
    ty_buf_add(k, key, len);
}

static void pos_put(ty_srcmap *m, const json_t *parent, char kind, const void *key, size_t len,
                    ty_pos p)
{
    if (p.line <= 0)
        return;
    TY_AUTOBUF ty_buf k = TY_BUF_INIT;
    pos_key(&k, parent, kind, key, len);
    ty_map_put(&m->pos, k.data, k.len, pos_pack(p));
}

static ty_pos pos_get(const ty_srcmap *m, const json_t *parent, char kind, const void *key,
                      size_t len)
{
    if (!m || !parent)
        return (ty_pos){0, 0};
    TY_AUTOBUF ty_buf k = TY_BUF_INIT;
    pos_key(&k, parent, kind, key, len);
    void *v = ty_map_get(&m->pos, k.data, k.len);
    return v ? pos_unpack(v) : (ty_pos){0, 0};
}

static void pos_put_member(ty_srcmap *m, const json_t *obj, const char *key, ty_pos keypos,
                           ty_pos valpos)
{
    pos_put(m, obj, 'k', key, strlen(key), keypos);
    pos_put(m, obj, 'v', key, strlen(key), valpos);
}

static void pos_put_index(ty_srcmap *m, const json_t *arr, size_t i, ty_pos p)
{
    pos_put(m, arr, 'i', &i, sizeof(i), p);
}

ty_pos ty_manifest_pos_member(const ty_manifest *m, const json_t *parent, const char *key,
                              bool of_key)
{
    if (!m || !key)
        return (ty_pos){0, 0};
    return pos_get(m->map, parent, of_key ? 'k' : 'v', key, strlen(key));
}

ty_pos ty_manifest_pos_index(const ty_manifest *m, const json_t *array, size_t index)
{
    if (!m)
        return (ty_pos){0, 0};
    return pos_get(m->map, array, 'i', &index, sizeof(index));
}

/* ---- the builder -------------------------------------------------------------------------- */

typedef struct anchor {
    json_t *v;
    uint64_t weight; /* nodes in v */
    int height;      /* levels of containers in v */
} anchor;

typedef struct frame {
    json_t *node;      /* the object or array being filled */
    ty_pos pos;
    char *anchor;      /* registered when the node is complete, so it cannot alias itself */
    uint64_t weight;
    int height;        /* of the tallest child */
    /* objects only: the key waiting for its value */
    char *key;
    ty_pos keypos;
    bool merge;        /* the pending key is `<<` */
    json_t *merges;    /* merge sources, applied at the end (explicit keys win) */
} frame;

typedef struct builder {
    const char *file;
    const char *data;
    size_t len;
    ty_srcmap *map;
    frame *stack;
    size_t depth, cap;
    ty_map anchors; /* name -> anchor*, per document */
    uint64_t alias_nodes;
    uint64_t written;  /* nodes of the document that are not aliases */
    int doc_index;
    json_t *root;
    ty_pos root_pos;
    ty_manifest_doc *docs;
    size_t ndocs, docs_cap;
    ty_error *err;
} builder;

static int fail_at(builder *b, ty_pos p, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail_at(builder *b, ty_pos p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = ty_vasprintf(fmt, ap);
    va_end(ap);
    ty_fail(b->err, "%s:%d:%d: %s", b->file, p.line, p.col, msg);
    free(msg);
    return -1;
}

static ty_pos mark_pos(yaml_mark_t m) { return (ty_pos){(int)m.line + 1, (int)m.column + 1}; }

static uint64_t sat_add(uint64_t a, uint64_t b) { return a > UINT64_MAX - b ? UINT64_MAX : a + b; }

static void anchors_clear(ty_map *anchors)
{
    const ty_map_slot *s;
    for (size_t i = 0; ty_map_next(anchors, &i, &s);) {
        anchor *a = s->value;
        json_decref(a->v);
        free(a);
    }
    ty_map_free(anchors);
    *anchors = (ty_map)TY_MAP_INIT;
}

static void anchor_set(builder *b, const char *name, json_t *v, uint64_t weight, int height)
{
    anchor *a = TY_NEW(anchor);
    a->v = json_incref(v);
    a->weight = weight;
    a->height = height;
    anchor *old = ty_map_puts(&b->anchors, name, a);
    if (old) {
        json_decref(old->v);
        free(old);
    }
}

static void frame_clear(frame *f)
{
    json_decref(f->node);
    json_decref(f->merges);
    free(f->anchor);
    free(f->key);
    memset(f, 0, sizeof(*f));
}

static void builder_free(builder *b)
{
    for (size_t i = 0; i < b->depth; i++)
        frame_clear(&b->stack[i]);
    free(b->stack);
    anchors_clear(&b->anchors);
    json_decref(b->root);
    for (size_t i = 0; i < b->ndocs; i++)
        json_decref(b->docs[i].obj);
    free(b->docs);
}

static const char *kind_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "a mapping";
    case JSON_ARRAY: return "a sequence";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

/* Copies v with the positions of everything inside it, so that an alias expands into a tree
 * of its own that still points at the anchored source. Depth is bounded by the caller. */
static json_t *copy_with_pos(ty_srcmap *m, json_t *v)
{
    if (json_is_object(v)) {
        json_t *dst = json_object();
        const char *k;
        json_t *child;
        json_object_foreach(v, k, child) {
            json_object_set_new(dst, k, copy_with_pos(m, child));
            pos_put_member(m, dst, k, pos_get(m, v, 'k', k, strlen(k)),
                           pos_get(m, v, 'v', k, strlen(k)));
        }
        return dst;
    }
    if (json_is_array(v)) {
        json_t *dst = json_array();
        size_t i;
        json_t *child;
        json_array_foreach(v, i, child) {
            json_array_append_new(dst, copy_with_pos(m, child));
            pos_put_index(m, dst, i, pos_get(m, v, 'i', &i, sizeof(i)));
        }
        return dst;
    }
    return json_deep_copy(v);
}

/* ---- scalars ------------------------------------------------------------------------------ */

static bool in_list(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(s, *list) == 0)
            return true;
    return false;
}

/* strconv.ParseUint(s, 0, 64): 0x/0o/0b prefixes, a leading 0 means octal. */
static bool parse_go_uint(const char *s, uint64_t *out)
{
    if (!*s)
        return false;
    int base = 10;
    if (s[0] == '0') {
        char c = (char)(s[1] | 0x20);
        if (s[1] && s[2] && (c == 'x' || c == 'o' || c == 'b')) {
            base = c == 'x' ? 16 : c == 'o' ? 8 : 2;
            s += 2;
        } else {
            base = 8;
            s += 1;
        }
    }
    uint64_t v = 0;
    for (; *s; s++) {
        int d;
        if (*s >= '0' && *s <= '9')
            d = *s - '0';
        else if ((*s | 0x20) >= 'a' && (*s | 0x20) <= 'z')
            d = (*s | 0x20) - 'a' + 10;
        else
            return false;
        if (d >= base || v > (UINT64_MAX - (uint64_t)d) / (uint64_t)base)
            return false;
        v = v * (uint64_t)base + (uint64_t)d;
    }
    *out = v;
    return true;
}

/* yamlStyleFloat: ^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$ */
static bool is_yaml_float(const char *s)
{
    if (*s == '+' || *s == '-')
        s++;
    if (*s == '.') {
        s++;
        if (!(*s >= '0' && *s <= '9'))
            return false;
        while (*s >= '0' && *s <= '9')
            s++;
    } else {
        if (!(*s >= '0' && *s <= '9'))
            return false;
        while (*s >= '0' && *s <= '9')
            s++;
        if (*s == '.') {
            s++;
            while (*s >= '0' && *s <= '9')
                s++;
        }
    }
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '+' || *s == '-')
            s++;
        if (!(*s >= '0' && *s <= '9'))
            return false;
        while (*s >= '0' && *s <= '9')
            s++;
    }
    return *s == '\0';
}

/* Resolves a plain scalar as Kubernetes' YAML decoder (go-yaml v2) does. *out is a new
 * reference. Returns -1 only for values JSON cannot hold (.inf, .nan). */
static int resolve_plain(builder *b, const char *s, size_t n, ty_pos pos, json_t **out)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL", NULL};
    static const char *const trues[] = {"y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE",
                                        "on", "On", "ON", NULL};
    static const char *const falses[] = {"n", "N", "no", "No", "NO", "false", "False", "FALSE",
                                         "off", "Off", "OFF", NULL};
    static const char *const specials[] = {".nan", ".NaN", ".NAN", ".inf", ".Inf", ".INF",
                                           "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF",
                                           NULL};
    if (strlen(s) != n) { /* an escaped NUL cannot occur in a plain scalar, but be safe */
        *out = json_stringn(s, n);
        return *out ? 0 : fail_at(b, pos, "string is not valid UTF-8");
    }
    if (in_list(s, nulls)) {
        *out = json_null();
        return 0;
    }
    if (in_list(s, trues)) {
        *out = json_true();
        return 0;
    }
    if (in_list(s, falses)) {
        *out = json_false();
        return 0;
    }
    if (in_list(s, specials))
        return fail_at(b, pos, "%s cannot be represented in JSON", s);
    if (s[0] && strchr("+-.0123456789", s[0])) {
        /* go-yaml drops every underscore before trying the number forms. */
        TY_AUTOFREE char *plain = ty_malloc(n + 1);
        size_t m = 0;
        for (size_t i = 0; i < n; i++)
            if (s[i] != '_')
                plain[m++] = s[i];
        plain[m] = '\0';
        const char *digits = plain;
        bool neg = false;
        if (*digits == '+' || *digits == '-')
            neg = *digits++ == '-';
        uint64_t u;
        if (parse_go_uint(digits, &u)) {
            if (neg && u <= (uint64_t)INT64_MAX + 1) {
                *out = json_integer(u == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)u);
                return 0;
            }
            if (!neg && u <= (uint64_t)INT64_MAX) {
                *out = json_integer((json_int_t)u);
                return 0;
            }
            if (!neg && plain[0] != '+') {
                /* Fits uint64 but not int64: JSON has one number type; keep it as a real. */
                *out = json_real((double)u);
                return 0;
            }
        }
        if (is_yaml_float(plain)) {
            double d = strtod(plain, NULL);
            if (isfinite(d)) {
                *out = json_real(d);
                return 0;
            }
        }
    }
    *out = json_stringn(s, n);
    return *out ? 0 : fail_at(b, pos, "string is not valid UTF-8");
}

static const char *short_tag(const char *tag)
{
    return strncmp(tag, TAG_PREFIX, strlen(TAG_PREFIX)) == 0 ? tag + strlen(TAG_PREFIX) : NULL;
}

static int resolve_scalar(builder *b, yaml_event_t *ev, json_t **out)
{
    const char *s = (const char *)ev->data.scalar.value;
    size_t n = ev->data.scalar.length;
    const char *tag = (const char *)ev->data.scalar.tag;
    ty_pos pos = mark_pos(ev->start_mark);
    if (!tag) {
        if (ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE)
            return resolve_plain(b, s, n, pos, out);
        *out = json_stringn(s, n);
        return *out ? 0 : fail_at(b, pos, "string is not valid UTF-8");
    }
    const char *st = short_tag(tag);
    if (strcmp(tag, "!") == 0 || (st && (strcmp(st, "str") == 0 || strcmp(st, "binary") == 0 ||
                                         strcmp(st, "timestamp") == 0))) {
        *out = json_stringn(s, n);
        return *out ? 0 : fail_at(b, pos, "string is not valid UTF-8");
    }
    if (!st || (strcmp(st, "int") && strcmp(st, "float") && strcmp(st, "bool") &&
                strcmp(st, "null")))
        return fail_at(b, pos, "unsupported tag \"%s\"", tag);
    json_t *v;
    if (resolve_plain(b, s, n, pos, &v) < 0)
        return -1;
    bool ok = (!strcmp(st, "int") && json_is_integer(v)) ||
              (!strcmp(st, "float") && json_is_number(v)) ||
              (!strcmp(st, "bool") && json_is_boolean(v)) || (!strcmp(st, "null") && json_is_null(v));
    if (!ok) {
        json_decref(v);
        return fail_at(b, pos, "cannot decode \"%.*s\" as !!%s", (int)(n > 64 ? 64 : n), s, st);
    }
    if (!strcmp(st, "float") && json_is_integer(v)) {
        json_t *r = json_real((double)json_integer_value(v));
        json_decref(v);
        v = r;
    }
    *out = v;
    return 0;
}

/* ---- assembling the tree ------------------------------------------------------------------ */

static frame *top(builder *b) { return b->depth ? &b->stack[b->depth - 1] : NULL; }

static bool expecting_key(builder *b)
{
    frame *f = top(b);
    return f && json_is_object(f->node) && !f->key && !f->merge;
}

static int set_key(builder *b, const char *s, size_t n, ty_pos pos, bool merge)
{
    frame *f = top(b);
    if (merge) {
        f->merge = true;
        f->keypos = pos;
        return 0;
    }
    if (strlen(s) != n)
        return fail_at(b, pos, "mapping key contains a NUL character");
    if (json_object_get(f->node, s))
        return fail_at(b, pos, "duplicate key \"%s\"", s);
    f->key = ty_strndup(s, n);
    f->keypos = pos;
    return 0;
}

/* Hands v (a new reference) to the node being built, or makes it the document's root. */
static int add_value(builder *b, json_t *v, ty_pos pos, uint64_t weight, int height)
{
    if (b->depth + (size_t)height > MANIFEST_MAX_DEPTH) {
        json_decref(v);
        return fail_at(b, pos, "nesting deeper than %d levels", MANIFEST_MAX_DEPTH);
    }
    frame *f = top(b);
    if (!f) {
        b->root = v;
        b->root_pos = pos;
        return 0;
    }
    f->weight = sat_add(f->weight, weight);
    if (height > f->height)
        f->height = height;
    if (json_is_array(f->node)) {
        size_t i = json_array_size(f->node);
        json_array_append_new(f->node, v);
        pos_put_index(b->map, f->node, i, pos);
        return 0;
    }
    if (f->merge) {
        f->merge = false;
        bool ok = json_is_object(v);
        if (json_is_array(v)) {
            ok = true;
            size_t i;
            json_t *e;
            json_array_foreach(v, i, e) ok = ok && json_is_object(e);
        }
        if (!ok) {
            json_decref(v);
            return fail_at(b, pos, "a merge key (<<) needs a mapping or a sequence of mappings");
        }
        if (!f->merges)
            f->merges = json_array();
        if (json_is_object(v))
            json_array_append_new(f->merges, v);
        else {
            json_array_extend(f->merges, v);
            json_decref(v);
        }
        return 0;
    }
    char *key = TY_STEAL(f->key);
    if (json_object_set_new(f->node, key, v) < 0) {
        int rc = fail_at(b, f->keypos, "mapping key is not valid UTF-8");
        free(key);
        return rc;
    }
    pos_put_member(b->map, f->node, key, f->keypos, pos);
    free(key);
    return 0;
}

/* Merge keys (<<) as YAML 1.1 defines them: keys written in the mapping win, then earlier
 * sources win over later ones. The sources stay alive in the srcmap, like documents, so that
 * the positions keyed by their pointers can never describe a later allocation. */
static void apply_merges(builder *b, frame *f)
{
    size_t i;
    json_t *src;
    json_array_foreach(f->merges, i, src) {
        const char *k;
        json_t *v;
        json_object_foreach(src, k, v) {
            if (json_object_get(f->node, k))
                continue;
            /* Sources are fresh copies or literals that nothing else reaches: share, not copy. */
            json_object_set(f->node, k, v);
            pos_put_member(b->map, f->node, k, pos_get(b->map, src, 'k', k, strlen(k)),
                           pos_get(b->map, src, 'v', k, strlen(k)));
        }
    }
}

static int start_node(builder *b, yaml_event_t *ev, bool is_map)
{
    ty_pos pos = mark_pos(ev->start_mark);
    const char *tag = (const char *)(is_map ? ev->data.mapping_start.tag : ev->data.sequence_start.tag);
    const char *anchor_name =
        (const char *)(is_map ? ev->data.mapping_start.anchor : ev->data.sequence_start.anchor);
    if (expecting_key(b))
        return fail_at(b, pos, "mapping keys must be strings, found %s",
                       is_map ? "a mapping" : "a sequence");
    if (tag && strcmp(tag, "!") != 0) {
        const char *st = short_tag(tag);
        if (!st || strcmp(st, is_map ? "map" : "seq") != 0)
            return fail_at(b, pos, "unsupported tag \"%s\"", tag);
    }
    if (b->depth >= MANIFEST_MAX_DEPTH)
        return fail_at(b, pos, "nesting deeper than %d levels", MANIFEST_MAX_DEPTH);
    if (b->depth == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 16;
        b->stack = ty_realloc(b->stack, b->cap * sizeof(*b->stack));
    }
    frame *f = &b->stack[b->depth++];
    memset(f, 0, sizeof(*f));
    f->node = is_map ? json_object() : json_array();
    f->pos = pos;
    f->anchor = anchor_name ? ty_strdup(anchor_name) : NULL;
    return 0;
}

static int end_node(builder *b)
{
    frame f = b->stack[--b->depth];
    if (f.merges) {
        apply_merges(b, &f);
        json_array_append(b->map->keep, f.merges);
    }
    uint64_t weight = sat_add(f.weight, 1);
    int height = f.height + 1;
    if (f.anchor)
        anchor_set(b, f.anchor, f.node, weight, height);
    json_t *node = TY_STEAL(f.node);
    ty_pos pos = f.pos;
    frame_clear(&f);
    return add_value(b, node, pos, weight, height);
}

static int on_scalar(builder *b, yaml_event_t *ev)
{
    ty_pos pos = mark_pos(ev->start_mark);
    const char *s = (const char *)ev->data.scalar.value;
    size_t n = ev->data.scalar.length;
    const char *anchor_name = (const char *)ev->data.scalar.anchor;
    if (expecting_key(b)) {
        const char *tag = (const char *)ev->data.scalar.tag;
        bool plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !tag;
        if (tag && strcmp(tag, "!") != 0 && strcmp(tag, TAG_PREFIX "str") != 0)
            return fail_at(b, pos, "unsupported tag \"%s\" on a mapping key", tag);
        if (plain && (n == 0 || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
                      !strcmp(s, "NULL")))
            return fail_at(b, pos, "mapping key is null");
        if (anchor_name) {
            json_t *str = json_stringn(s, n);
            if (!str)
                return fail_at(b, pos, "string is not valid UTF-8");
            anchor_set(b, anchor_name, str, 1, 0);
            json_decref(str);
        }
        return set_key(b, s, n, pos, plain && !strcmp(s, "<<"));
    }
    json_t *v;
    if (resolve_scalar(b, ev, &v) < 0)
        return -1;
    if (anchor_name)
        anchor_set(b, anchor_name, v, 1, 0);
    return add_value(b, v, pos, 1, 0);
}

static int on_alias(builder *b, yaml_event_t *ev)
{
    ty_pos pos = mark_pos(ev->start_mark);
    const char *name = (const char *)ev->data.alias.anchor;
    anchor *a = ty_map_gets(&b->anchors, name);
    if (!a)
        return fail_at(b, pos, "unknown anchor \"%s\" (aliases may only refer back to a complete node)",
                       name);
    if (expecting_key(b)) {
        if (!json_is_string(a->v))
            return fail_at(b, pos, "mapping keys must be strings, found %s", kind_name(a->v));
        return set_key(b, json_string_value(a->v), json_string_length(a->v), pos, false);
    }
    b->alias_nodes = sat_add(b->alias_nodes, a->weight);
    uint64_t allowed = b->written > MANIFEST_MAX_ALIAS_NODES / ALIAS_RATIO
                           ? MANIFEST_MAX_ALIAS_NODES
                           : b->written * ALIAS_RATIO;
    if (allowed < ALIAS_FLOOR)
        allowed = ALIAS_FLOOR;
    if (b->alias_nodes > allowed)
        return fail_at(b, pos,
                       "aliases expand to more than %" PRIu64 " nodes (%u times the %" PRIu64
                       " nodes written, at least %u, at most %u)",
                       allowed, ALIAS_RATIO, b->written, ALIAS_FLOOR, MANIFEST_MAX_ALIAS_NODES);
    if (b->depth + (size_t)a->height > MANIFEST_MAX_DEPTH)
        return fail_at(b, pos, "nesting deeper than %d levels", MANIFEST_MAX_DEPTH);
    return add_value(b, copy_with_pos(b->map, a->v), pos, a->weight, a->height);
}

static void push_doc(builder *b, json_t *obj, int index, ty_pos pos)
{
    if (b->ndocs == b->docs_cap) {
        b->docs_cap = b->docs_cap ? b->docs_cap * 2 : 4;
        b->docs = ty_realloc(b->docs, b->docs_cap * sizeof(*b->docs));
    }
    b->docs[b->ndocs++] = (ty_manifest_doc){json_incref(obj), index, pos};
}

static bool is_list_kind(const char *kind)
{
    size_t n = kind ? strlen(kind) : 0;
    return n >= 4 && strcmp(kind + n - 4, "List") == 0;
}

static int end_document(builder *b)
{
    json_t *root = TY_STEAL(b->root);
    int index = b->doc_index++;
    anchors_clear(&b->anchors);
    if (!root || json_is_null(root)) {
        json_decref(root);
        return 0; /* an empty document, as between "---" lines */
    }
    json_array_append_new(b->map->keep, root);
    if (!json_is_object(root))
        return fail_at(b, b->root_pos, "document %d is %s, not a mapping (an object)", index + 1,
                       kind_name(root));
    json_t *items = json_object_get(root, "items");
    if (!items || !is_list_kind(json_string_value(json_object_get(root, "kind")))) {
        push_doc(b, root, index, b->root_pos);
        return 0;
    }
    if (json_is_null(items))
        return 0;
    if (!json_is_array(items))
        return fail_at(b, pos_get(b->map, root, 'v', "items", 5),
                       "document %d: items of a %s must be a sequence, found %s", index + 1,
                       json_string_value(json_object_get(root, "kind")), kind_name(items));
    size_t i;
    json_t *item;
    json_array_foreach(items, i, item) {
        ty_pos p = pos_get(b->map, items, 'i', &i, sizeof(i));
        if (!json_is_object(item))
            return fail_at(b, p, "document %d: items[%zu] is %s, not a mapping (an object)",
                           index + 1, i, kind_name(item));
        push_doc(b, item, index, p);
    }
    return 0;
}

static int on_event(builder *b, yaml_event_t *ev)
{
    switch (ev->type) {
    case YAML_DOCUMENT_START_EVENT:
        b->alias_nodes = 0;
        b->written = 0;
        return 0;
    case YAML_DOCUMENT_END_EVENT:
        return end_document(b);
    case YAML_SCALAR_EVENT:
        b->written++;
        return on_scalar(b, ev);
    case YAML_ALIAS_EVENT:
        return on_alias(b, ev);
    case YAML_SEQUENCE_START_EVENT:
        b->written++;
        return start_node(b, ev, false);
    case YAML_MAPPING_START_EVENT:
        b->written++;
        return start_node(b, ev, true);
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        return end_node(b);
    default:
        return 0;
    }
}

/* libyaml's reader errors carry a byte offset, not a mark: count lines and characters. */
static ty_pos offset_pos(const char *data, size_t len, size_t off)
{
    ty_pos p = {1, 1};
    for (size_t i = 0; i < off && i < len; i++) {
        if (data[i] == '\n') {
            p.line++;
            p.col = 1;
        } else if (((unsigned char)data[i] & 0xc0) != 0x80) {
            p.col++;
        }
    }
    return p;
}

static int syntax_error(builder *b, yaml_parser_t *p)
{
    const char *problem = p->problem ? p->problem : "invalid YAML";
    if (p->error == YAML_MEMORY_ERROR)
        return ty_fail(b->err, "%s: out of memory", b->file);
    if (p->error == YAML_READER_ERROR) {
        ty_pos pos = offset_pos(b->data, b->len, p->problem_offset);
        if (p->problem_value != -1)
            return fail_at(b, pos, "%s (#%x)", problem, (unsigned)p->problem_value);
        return fail_at(b, pos, "%s", problem);
    }
    ty_pos pos = mark_pos(p->problem_mark);
    if (p->context) {
        ty_pos ctx = mark_pos(p->context_mark);
        return fail_at(b, pos, "%s (%s at %d:%d)", problem, p->context, ctx.line, ctx.col);
    }
    return fail_at(b, pos, "%s", problem);
}

static int hex4(const char *p, const char *end)
{
    if (end - p < 4)
        return -1;
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9' ? c - '0' : (c | 0x20) >= 'a' && (c | 0x20) <= 'f' ? (c | 0x20) - 'a' + 10 : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/* JSON writes characters beyond the BMP as surrogate pairs ("\ud83d\ude00"), which YAML 1.1
 * and so libyaml reject. For JSON input (it starts with '{' or '['), rewrite each pair inside a
 * string as the YAML escape "\U0001f600". Columns after a pair on the same line then read two
 * less than in the file: a small price for accepting every valid JSON manifest. Returns NULL
 * when nothing needs rewriting, else a new buffer (the caller frees). */
static char *json_surrogates(const char *data, size_t len, size_t *out_len)
{
    const char *p = data, *end = data + len;
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
        p++;
    if (p == end || (*p != '{' && *p != '[') || !memmem(data, len, "\\u", 2))
        return NULL;
    ty_buf out = TY_BUF_INIT;
    bool in_str = false, changed = false;
    for (p = data; p < end; p++) {
        if (in_str && *p == '\\' && end - p >= 12 && p[1] == 'u' && p[6] == '\\' && p[7] == 'u') {
            int hi = hex4(p + 2, end), lo = hex4(p + 8, end);
            if (hi >= 0xd800 && hi <= 0xdbff && lo >= 0xdc00 && lo <= 0xdfff) {
                ty_buf_addf(&out, "\\U%08x", 0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00));
                p += 11;
                changed = true;
                continue;
            }
        }
        if (in_str && *p == '\\' && p + 1 < end) {
            ty_buf_add(&out, p, 2); /* an escaped quote does not end the string */
            p++;
            continue;
        }
        if (*p == '"')
            in_str = !in_str;
        ty_buf_addc(&out, *p);
    }
    if (!changed) {
        ty_buf_free(&out);
        return NULL;
    }
    *out_len = out.len;
    return ty_buf_steal(&out);
}

void ty_manifest_free(ty_manifest *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->ndocs; i++)
        json_decref(m->docs[i].obj);
    free(m->docs);
    if (m->map) {
        ty_map_free(&m->map->pos);
        json_decref(m->map->keep);
        free(m->map);
    }
    free(m->file);
    free(m);
}

int ty_manifest_parse(const char *file, const char *data, size_t len, ty_manifest **out,
                      ty_error *err)
{
    if (!file)
        file = "<input>";
    if (len > MANIFEST_MAX_BYTES)
        return ty_fail(err, "%s: manifest is larger than %u MiB", file, MANIFEST_MAX_BYTES >> 20);
    size_t fixed_len = 0;
    TY_AUTOFREE char *fixed = data ? json_surrogates(data, len, &fixed_len) : NULL;
    if (fixed) {
        data = fixed;
        len = fixed_len;
    }
    ty_manifest *m = TY_NEW(ty_manifest);
    m->file = ty_strdup(file);
    m->map = TY_NEW(ty_srcmap);
    m->map->keep = json_array();
    builder b = {.file = file, .data = data, .len = len, .map = m->map, .err = err};

    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser))
        abort(); /* out of memory */
    yaml_parser_set_input_string(&parser, (const unsigned char *)(data ? data : ""), len);
    int rc = 0;
    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) {
            rc = syntax_error(&b, &parser);
            break;
        }
        rc = on_event(&b, &ev);
        bool end = ev.type == YAML_STREAM_END_EVENT;
        yaml_event_delete(&ev);
        if (rc < 0 || end)
            break;
    }
    yaml_parser_delete(&parser);
    if (rc < 0) {
        builder_free(&b);
        ty_manifest_free(m);
        return -1;
    }
    m->docs = TY_STEAL(b.docs);
    m->ndocs = b.ndocs;
    b.ndocs = 0;
    builder_free(&b);
    *out = m;
    return 0;
}

int ty_manifest_load(const char *path, ty_manifest **out, ty_error *err)
{
    bool is_stdin = strcmp(path, "-") == 0;
    const char *name = is_stdin ? "<stdin>" : path;
    int fd = is_stdin ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ty_fail_errno(err, errno, "open %s", path);
    TY_AUTOBUF ty_buf data = TY_BUF_INIT;
    int rc = 0;
    for (;;) {
        ty_buf_grow(&data, 65536);
        ssize_t n = read(fd, data.data + data.len, data.cap - data.len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = ty_fail_errno(err, errno, "read %s", name);
            break;
        }
        if (n == 0)
            break;
        data.len += (size_t)n;
        data.data[data.len] = '\0';
        if (data.len > MANIFEST_MAX_BYTES) {
            rc = ty_fail(err, "%s: manifest is larger than %u MiB", name, MANIFEST_MAX_BYTES >> 20);
            break;
        }
    }
    if (!is_stdin)
        close(fd);
    if (rc < 0)
        return rc;
    return ty_manifest_parse(name, data.data, data.len, out, err);
}
