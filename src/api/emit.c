/* YAML documents from JSON values (emit.h). */
#include "api/emit.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

static int on_write(void *data, unsigned char *buffer, size_t size)
{
    ty_buf_add(data, buffer, size);
    return 1;
}

/* Whether `s` may be written as a plain scalar without a reader taking it for a number,
 * boolean, null, timestamp, alias, tag or anything but this string. libyaml still quotes a
 * plain candidate that YAML's syntax does not allow plain (": ", " #", ...). */
static bool plain_safe(const char *s, size_t n)
{
    static const char *const words[] = {"y", "n", "yes", "no", "on", "off", "true", "false",
                                        "null"};
    if (!n || !(isalpha((unsigned char)s[0]) || s[0] == '/' || s[0] == '_'))
        return false;
    for (size_t i = 0; i < sizeof words / sizeof *words; i++)
        if (strlen(words[i]) == n && strncasecmp(s, words[i], n) == 0)
            return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f)
            return false;
    return true;
}

/* A scalar written plain when `plain`, else double quoted. A quoted scalar is a string to
 * every reader, so it needs no tag, whether asked for or chosen by libyaml for a plain
 * candidate that YAML's syntax does not allow plain. */
static int scalar(yaml_emitter_t *e, const char *text, size_t n, bool plain)
{
    yaml_event_t ev;
    if (!yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)text, (int)n, plain, 1,
                                      plain ? YAML_ANY_SCALAR_STYLE
                                            : YAML_DOUBLE_QUOTED_SCALAR_STYLE))
        return -1;
    return yaml_emitter_emit(e, &ev) ? 0 : -1;
}

static int value(yaml_emitter_t *e, const json_t *v, int depth)
{
    yaml_event_t ev;
    char num[64];
    if (depth > 256)
        return -1;
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        if (!yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE) ||
            !yaml_emitter_emit(e, &ev))
            return -1;
        const char *key;
        const json_t *child;
        json_object_foreach((json_t *)v, key, child) {
            if (scalar(e, key, strlen(key), plain_safe(key, strlen(key))) < 0 ||
                value(e, child, depth + 1) < 0)
                return -1;
        }
        return yaml_mapping_end_event_initialize(&ev) && yaml_emitter_emit(e, &ev) ? 0 : -1;
    }
    case JSON_ARRAY: {
        if (!yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE) ||
            !yaml_emitter_emit(e, &ev))
            return -1;
        size_t i;
        const json_t *child;
        json_array_foreach(v, i, child) {
            if (value(e, child, depth + 1) < 0)
                return -1;
        }
        return yaml_sequence_end_event_initialize(&ev) && yaml_emitter_emit(e, &ev) ? 0 : -1;
    }
    case JSON_STRING: {
        const char *s = json_string_value(v);
        size_t n = json_string_length(v);
        return scalar(e, s, n, plain_safe(s, n));
    }
    case JSON_INTEGER:
        snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return scalar(e, num, strlen(num), true);
    case JSON_REAL: {
        /* jansson's own text keeps a '.' or an exponent, so it reads back as a real. */
        char *t = json_dumps(v, JSON_ENCODE_ANY | JSON_REAL_PRECISION(17));
        int rc = t ? scalar(e, t, strlen(t), true) : -1;
        free(t);
        return rc;
    }
    case JSON_TRUE:
        return scalar(e, "true", 4, true);
    case JSON_FALSE:
        return scalar(e, "false", 5, true);
    case JSON_NULL:
        return scalar(e, "null", 4, true);
    }
    return -1;
}

int ty_yaml_emit(ty_buf *out, json_t *const *docs, size_t n, ty_error *err)
{
    yaml_emitter_t e;
    yaml_event_t ev;
    if (!yaml_emitter_initialize(&e))
        return ty_fail(err, "yaml: cannot start the emitter");
    yaml_emitter_set_output(&e, on_write, out);
    yaml_emitter_set_unicode(&e, 1);
    yaml_emitter_set_width(&e, -1); /* long descriptions stay on one line */
    yaml_emitter_set_indent(&e, 2);
    int rc = yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING) &&
                     yaml_emitter_emit(&e, &ev)
                 ? 0
                 : -1;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 0) &&
                     yaml_emitter_emit(&e, &ev)
                 ? 0
                 : -1;
        if (rc == 0)
            rc = value(&e, docs[i], 0);
        if (rc == 0)
            rc = yaml_document_end_event_initialize(&ev, 1) && yaml_emitter_emit(&e, &ev) ? 0
                                                                                         : -1;
    }
    if (rc == 0)
        rc = yaml_stream_end_event_initialize(&ev) && yaml_emitter_emit(&e, &ev) &&
                     yaml_emitter_flush(&e)
                 ? 0
                 : -1;
    if (rc < 0)
        ty_fail(err, "yaml: %s", e.problem ? e.problem : "cannot write the document");
    yaml_emitter_delete(&e);
    return rc;
}
