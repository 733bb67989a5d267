/* libFuzzer target for what the API server reads from a request line before any handler runs:
 * the resource path ("/apis/<group>/<version>/namespaces/<ns>/<resource>/<name>/<sub>"), the
 * integer query parameters (as Go's strconv.ParseInt) and continue tokens. Any input must
 * parse or be refused with a message, never crash, leak or hit undefined behaviour, and what
 * parses must agree with its inverse. The first byte picks the parser. Build and run:
 * `make fuzz` (FUZZ_TIME=seconds, default 60). */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/mem.h"
#include "server/server_int.h"

static bool namespaced(void *ctx, const char *resource)
{
    (void)ctx;
    return strcmp(resource, "namespaces") != 0 && strcmp(resource, "nodes") != 0 &&
           strcmp(resource, "clusterqueues") != 0;
}

static void path(const char *text)
{
    ty_srv_path p;
    if (ty_srv_path_parse(text, namespaced, NULL, &p) < 0) {
        if (p.buf)
            abort(); /* a refused path leaves nothing to free */
        return;
    }
    if (!p.group || !p.version || !*p.version || (p.name && !p.resource) ||
        (p.sub && !p.name) || (p.ns && !p.resource) || (p.ns && !*p.ns))
        abort();
    ty_srv_path_free(&p);
}

/* "k=v&k=v...": the first value of each key, as MHD's lookup returns it. */
static const char *lookup(void *ctx, const char *key)
{
    for (char *const *kv = ctx; *kv; kv += 2)
        if (strcmp(kv[0], key) == 0)
            return kv[1];
    return NULL;
}

static bool go_int_syntax(const char *v)
{
    const char *p = v + (*v == '+' || *v == '-');
    if (!*p)
        return false;
    for (; *p; p++)
        if (*p < '0' || *p > '9')
            return false;
    return true;
}

static void query(char *text)
{
    char *kv[64];
    size_t n = 0;
    for (char *save = NULL, *t = strtok_r(text, "&", &save); t && n + 2 < TY_ARRAY_LEN(kv);
         t = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(t, '=');
        if (eq)
            *eq = '\0';
        kv[n++] = t;
        kv[n++] = eq ? eq + 1 : t + strlen(t);
    }
    kv[n] = NULL;
    ty_error err = TY_ERROR_INIT;
    if (ty_srv_query_check(lookup, kv, &err) < 0 && !err.msg)
        abort();
    ty_error_clear(&err);
    for (size_t i = 0; i < n; i += 2) {
        int64_t v;
        int rc = ty_srv_query_int(kv[i], kv[i + 1], &v, &err);
        errno = 0;
        long long want = strtoll(kv[i + 1], NULL, 10);
        bool fits = go_int_syntax(kv[i + 1]) && errno != ERANGE;
        if ((rc == 0) != fits || (rc < 0 && !err.msg))
            abort();
        if (rc == 0 && strcmp(kv[i], "limit") == 0 && v != want)
            abort();
        if (rc == 0 && strcmp(kv[i], "timeoutSeconds") == 0 && v > 1000000000)
            abort();
        ty_error_clear(&err);
    }
}

static void token(const char *text)
{
    char *key = ty_srv_continue_decode(text);
    if (key) {
        /* Decoding then encoding gives the token back, in lowercase. */
        char *again = ty_srv_continue_encode(key);
        if (strlen(again) != strlen(text) || strcasecmp(again, text) != 0)
            abort();
        free(again);
        int a = ty_srv_continue_compare("default/x", key);
        int b = ty_srv_continue_compare("/x", key);
        (void)a;
        (void)b;
        free(key);
    }
    /* Any text without NUL (all of it here) survives a round trip. */
    char *tok = ty_srv_continue_encode(text);
    char *back = ty_srv_continue_decode(tok);
    if (!back || strcmp(back, text) != 0)
        abort();
    if (ty_srv_continue_compare(text, text) != 0)
        abort();
    free(back);
    free(tok);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    char *text = malloc(size);
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    if (data[0] % 3 == 0)
        path(text);
    else if (data[0] % 3 == 1)
        query(text);
    else
        token(text);
    free(text);
    return 0;
}
