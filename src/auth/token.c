/* Bearer tokens (token.h). */
#include "auth/token.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/gnutls.h"
#include "base/base64.h"
#include "base/buf.h"
#include "base/fs.h"
#include "base/log.h"
#include "base/map.h"
#include "base/mem.h"

#define TOKEN_FILE_MAX (16u << 20)
#define JWT_MAX (16u << 10)
#define SA_PREFIX "system:serviceaccount:"

void ty_identity_clear(ty_identity *id)
{
    if (!id)
        return;
    free(id->name);
    free(id->uid);
    for (size_t i = 0; i < id->ngroups; i++)
        free(id->groups[i]);
    free(id->groups);
    *id = (ty_identity){0};
}

static void identity_copy(ty_identity *dst, const ty_identity *src)
{
    dst->name = ty_strdup(src->name);
    dst->uid = ty_strdup(src->uid ? src->uid : "");
    dst->ngroups = src->ngroups;
    dst->groups = ty_calloc(src->ngroups ? src->ngroups : 1, sizeof *dst->groups);
    for (size_t i = 0; i < src->ngroups; i++)
        dst->groups[i] = ty_strdup(src->groups[i]);
}

static void identity_add_group(ty_identity *id, const char *g, size_t len)
{
    id->groups = ty_realloc(id->groups, (id->ngroups + 1) * sizeof *id->groups);
    id->groups[id->ngroups++] = ty_strndup(g, len);
}

int ty_sha256(const void *data, size_t len, unsigned char out[32], ty_error *err)
{
    if (ty_gnutls_load(err) < 0)
        return -1;
    int rc = gnutls_hash_fast(GNUTLS_DIG_SHA256, data, len, out);
    if (rc < 0)
        return ty_fail(err, "sha-256: %s", gnutls_strerror(rc));
    return 0;
}

/* Equal without a timing that depends on where they differ. */
static bool digest_eq(const unsigned char *a, const unsigned char *b)
{
    unsigned char d = 0;
    for (size_t i = 0; i < 32; i++)
        d |= a[i] ^ b[i];
    return d == 0;
}

/* An identity found by the SHA-256 of its token. */
typedef struct entry {
    unsigned char digest[32];
    ty_identity id;
    int64_t expires; /* 0: never */
} entry;

static void entries_free(ty_map *m)
{
    const ty_map_slot *s;
    for (size_t i = 0; ty_map_next(m, &i, &s);) {
        entry *e = s->value;
        ty_identity_clear(&e->id);
        free(e);
    }
    ty_map_free(m);
}

static const entry *entries_find(const ty_map *m, const char *token)
{
    unsigned char d[32];
    if (ty_sha256(token, strlen(token), d, NULL) < 0)
        return NULL;
    const entry *e = ty_map_get(m, d, sizeof d);
    return e && digest_eq(e->digest, d) ? e : NULL;
}

/* ---------- --token-auth-file ---------- */

struct ty_token_file {
    ty_map by_digest;
};

/* One CSV record as Go's encoding/csv reads it, from *p; fields appended to `fields`. Advances
 * *p past the record and *line past its lines. 0 at the end of the text, 1 for a record. */
static int csv_record(const char **p, int *line, char ***fields, size_t *nfields,
                      const char *path, ty_error *err)
{
    const char *s = *p;
    while (*s == '\n' || (*s == '\r' && s[1] == '\n')) { /* blank lines */
        s += *s == '\r' ? 2 : 1;
        (*line)++;
    }
    if (!*s) {
        *p = s;
        return 0;
    }
    int start = *line;
    ty_buf f = TY_BUF_INIT;
    for (;;) {
        ty_buf_reset(&f);
        if (*s == '"') {
            s++;
            for (;;) {
                if (!*s) {
                    ty_buf_free(&f);
                    return ty_fail(err, "%s:%d: extraneous or missing \" in quoted-field", path,
                                   start);
                }
                if (*s == '"' && s[1] == '"') {
                    ty_buf_addc(&f, '"');
                    s += 2;
                } else if (*s == '"') {
                    s++;
                    break;
                } else {
                    if (*s == '\n')
                        (*line)++;
                    if (!(*s == '\r' && s[1] == '\n'))
                        ty_buf_addc(&f, *s);
                    s++;
                }
            }
            if (*s && *s != ',' && *s != '\n' && !(*s == '\r' && s[1] == '\n')) {
                ty_buf_free(&f);
                return ty_fail(err, "%s:%d: extraneous or missing \" in quoted-field", path,
                               *line);
            }
        } else {
            while (*s && *s != ',' && *s != '\n' && !(*s == '\r' && s[1] == '\n')) {
                if (*s == '"') {
                    ty_buf_free(&f);
                    return ty_fail(err, "%s:%d: bare \" in non-quoted-field", path, *line);
                }
                ty_buf_addc(&f, *s++);
            }
        }
        *fields = ty_realloc(*fields, (*nfields + 1) * sizeof **fields);
        (*fields)[(*nfields)++] = ty_strndup(f.data, f.len);
        if (*s == ',') {
            s++;
            continue;
        }
        break;
    }
    ty_buf_free(&f);
    if (*s) {
        s += *s == '\r' ? 2 : 1;
        (*line)++;
    }
    *p = s;
    return 1;
}

static void fields_free(char **fields, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(fields[i]);
    free(fields);
}

/* The groups column: comma separated (empty names dropped: no binding can name one). */
static void add_groups(ty_identity *id, const char *list)
{
    while (*list) {
        const char *end = strchr(list, ',');
        size_t len = end ? (size_t)(end - list) : strlen(list);
        if (len)
            identity_add_group(id, list, len);
        list += len + (end ? 1 : 0);
    }
}

static int read_limited(const char *path, ty_buf *b, ty_error *err)
{
    struct stat st;
    if (stat(path, &st) < 0)
        return ty_fail_errno(err, errno, "read %s", path);
    if (st.st_size > TOKEN_FILE_MAX)
        return ty_fail(err, "read %s: %lld bytes, more than the limit of %u", path,
                       (long long)st.st_size, TOKEN_FILE_MAX);
    if (ty_buf_read_file(b, path) < 0)
        return ty_fail_errno(err, errno, "read %s", path);
    if (strlen(b->data) != b->len)
        return ty_fail(err, "read %s: the file holds a NUL byte", path);
    return 0;
}

int ty_token_file_load(const char *path, ty_token_file **out, ty_error *err)
{
    *out = NULL;
    TY_AUTOBUF ty_buf text = TY_BUF_INIT;
    if (read_limited(path, &text, err) < 0)
        return -1;
    if (ty_gnutls_load(err) < 0)
        return -1;
    ty_token_file *f = TY_NEW(ty_token_file);
    const char *p = text.data;
    int line = 1;
    for (;;) {
        char **fields = NULL;
        size_t n = 0;
        int start = line;
        int rc = csv_record(&p, &line, &fields, &n, path, err);
        if (rc <= 0) {
            fields_free(fields, n);
            if (rc == 0)
                break;
            ty_token_file_free(f);
            return -1;
        }
        if (n < 3) {
            fields_free(fields, n);
            ty_token_file_free(f);
            return ty_fail(err, "%s:%d: must have at least 3 columns (token, user name, user "
                           "uid), found %zu", path, start, n);
        }
        if (!*fields[0]) {
            ty_log(TY_LOG_WARN, "%s:%d: empty token, record skipped", path, start);
            fields_free(fields, n);
            continue;
        }
        entry *e = TY_NEW(entry);
        ty_sha256(fields[0], strlen(fields[0]), e->digest, NULL);
        e->id.name = ty_strdup(fields[1]);
        e->id.uid = ty_strdup(fields[2]);
        if (n >= 4)
            add_groups(&e->id, fields[3]);
        entry *old = ty_map_put(&f->by_digest, e->digest, sizeof e->digest, e);
        if (old) {
            ty_log(TY_LOG_WARN, "%s:%d: a token given again, the last record wins", path, start);
            ty_identity_clear(&old->id);
            free(old);
        }
        fields_free(fields, n);
    }
    *out = f;
    return 0;
}

bool ty_token_file_lookup(const ty_token_file *f, const char *token, ty_identity *out)
{
    const entry *e = entries_find(&f->by_digest, token);
    if (e && out)
        identity_copy(out, &e->id);
    return e != NULL;
}

void ty_token_file_free(ty_token_file *f)
{
    if (!f)
        return;
    entries_free(&f->by_digest);
    free(f);
}

/* ---------- minted tokens ---------- */

struct ty_token_store {
    char *path;
    ty_map by_digest;
    struct stat seen; /* of the file last read; st_ino 0: none */
};

static void hex(const unsigned char *d, size_t n, char *out)
{
    static const char x[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = x[d[i] >> 4];
        out[2 * i + 1] = x[d[i] & 15];
    }
    out[2 * n] = '\0';
}

static int unhex(const char *s, unsigned char *out, size_t n)
{
    if (strlen(s) != 2 * n)
        return -1;
    for (size_t i = 0; i < 2 * n; i++) {
        char c = s[i];
        int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (v < 0)
            return -1;
        out[i / 2] = (unsigned char)(i % 2 ? out[i / 2] | v : v << 4);
    }
    return 0;
}

static int random_bytes(void *buf, size_t n, ty_error *err)
{
    for (size_t got = 0; got < n;) {
        ssize_t r = getrandom((char *)buf + got, n - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return ty_fail_errno(err, errno, "getrandom");
        got += (size_t)r;
    }
    return 0;
}

int ty_token_mint(const char *path, const char *user, const char *const *groups,
                  size_t ngroups, int64_t expires, char **token, ty_error *err)
{
    *token = NULL;
    if (!user || !*user)
        return ty_fail(err, "mint a token: the user name is empty");
    unsigned char raw[32], uid[16], d[32];
    if (random_bytes(raw, sizeof raw, err) < 0 || random_bytes(uid, sizeof uid, err) < 0)
        return -1;
    TY_AUTOFREE char *b64 = ty_base64_encode(raw, sizeof raw, true);
    /* A prefix that secret scanners and people recognise. */
    TY_AUTOFREE char *tok = ty_asprintf("ty_%s", b64);
    if (ty_sha256(tok, strlen(tok), d, err) < 0)
        return -1;
    char dhex[65], uhex[33];
    hex(d, sizeof d, dhex);
    uid[6] = (uid[6] & 0x0f) | 0x40; /* a version 4 UUID */
    uid[8] = (uid[8] & 0x3f) | 0x80;
    hex(uid, sizeof uid, uhex);
    json_t *gs = json_array();
    for (size_t i = 0; i < ngroups; i++)
        json_array_append_new(gs, json_string(groups[i]));
    char uuid[37];
    snprintf(uuid, sizeof uuid, "%.8s-%.4s-%.4s-%.4s-%.12s", uhex, uhex + 8, uhex + 12,
             uhex + 16, uhex + 20);
    json_t *rec = json_pack("{s:s, s:s, s:s, s:o}", "sha256", dhex, "user", user, "uid", uuid,
                            "groups", gs);
    if (!rec)
        return ty_fail(err, "mint a token: a user or group name is not valid UTF-8");
    if (expires)
        json_object_set_new(rec, "expires", json_integer(expires));
    TY_AUTOFREE char *line = json_dumps(rec, JSON_COMPACT);
    json_decref(rec);
    size_t len = strlen(line);
    line = ty_realloc(line, len + 2);
    line[len++] = '\n';
    line[len] = '\0';
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return ty_fail_errno(err, errno, "open %s", path);
    /* One writer at a time, so that two lines never interleave. */
    if (flock(fd, LOCK_EX) < 0) {
        int e = errno;
        close(fd);
        return ty_fail_errno(err, e, "lock %s", path);
    }
    ssize_t w;
    do
        w = write(fd, line, len);
    while (w < 0 && errno == EINTR);
    int e = errno;
    if (w == (ssize_t)len && fsync(fd) < 0)
        w = -1, e = errno;
    close(fd);
    if (w != (ssize_t)len)
        return ty_fail_errno(err, w < 0 ? e : ENOSPC, "write %s", path);
    *token = TY_STEAL(tok);
    return 0;
}

/* Reads the file into `m`. A last line without its newline is a write a crash cut short (the
 * token was never handed out): skipped with a warning. Any other bad line is an error. */
static int store_read(const char *path, ty_map *m, struct stat *st, ty_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 && errno == ENOENT) {
        memset(st, 0, sizeof *st);
        return 0;
    }
    if (fd < 0)
        return ty_fail_errno(err, errno, "open %s", path);
    if (fstat(fd, st) < 0) {
        int e = errno;
        close(fd);
        return ty_fail_errno(err, e, "stat %s", path);
    }
    close(fd);
    if (st->st_mode & 077)
        return ty_fail(err, "%s: mode %04o lets others read or write tokens; run chmod 600 %s",
                       path, (unsigned)(st->st_mode & 07777), path);
    TY_AUTOBUF ty_buf text = TY_BUF_INIT;
    if (read_limited(path, &text, err) < 0)
        return -1;
    int line = 0;
    for (char *p = text.data; *p;) {
        line++;
        char *nl = strchr(p, '\n');
        if (!nl) {
            ty_log(TY_LOG_WARN, "%s:%d: an unfinished last line, skipped", path, line);
            break;
        }
        *nl = '\0';
        json_error_t je;
        json_t *rec = json_loads(p, 0, &je);
        p = nl + 1;
        const char *dh = rec ? json_string_value(json_object_get(rec, "sha256")) : NULL;
        const char *user = rec ? json_string_value(json_object_get(rec, "user")) : NULL;
        const char *uid = rec ? json_string_value(json_object_get(rec, "uid")) : NULL;
        const json_t *gs = rec ? json_object_get(rec, "groups") : NULL;
        const json_t *exp = rec ? json_object_get(rec, "expires") : NULL;
        entry *e = TY_NEW(entry);
        bool ok = dh && user && *user && unhex(dh, e->digest, 32) == 0 &&
                  (!gs || json_is_array(gs)) && (!exp || json_is_integer(exp));
        if (ok) {
            e->id.name = ty_strdup(user);
            e->id.uid = ty_strdup(uid ? uid : "");
            e->expires = exp ? json_integer_value(exp) : 0;
            size_t i;
            const json_t *g;
            json_array_foreach(gs, i, g) {
                if (!json_is_string(g)) {
                    ok = false;
                    break;
                }
                identity_add_group(&e->id, json_string_value(g), json_string_length(g));
            }
        }
        json_decref(rec);
        if (!ok) {
            ty_identity_clear(&e->id);
            free(e);
            return ty_fail(err, "%s:%d: not a token record ({\"sha256\", \"user\", \"uid\", "
                           "\"groups\", \"expires\"})", path, line);
        }
        entry *old = ty_map_put(m, e->digest, sizeof e->digest, e);
        if (old) {
            ty_identity_clear(&old->id);
            free(old);
        }
    }
    return 0;
}

int ty_token_store_open(const char *path, ty_token_store **out, ty_error *err)
{
    *out = NULL;
    if (ty_gnutls_load(err) < 0)
        return -1;
    ty_token_store *s = TY_NEW(ty_token_store);
    s->path = ty_strdup(path);
    if (store_read(path, &s->by_digest, &s->seen, err) < 0) {
        ty_token_store_free(s);
        return -1;
    }
    *out = s;
    return 0;
}

int ty_token_store_lookup(ty_token_store *s, const char *token, int64_t now, ty_identity *out,
                          ty_error *err)
{
    const entry *e = entries_find(&s->by_digest, token);
    if (!e) {
        /* Minted since the last read? Only a changed file is read again. */
        struct stat st;
        bool changed = stat(s->path, &st) == 0
                           ? st.st_ino != s->seen.st_ino || st.st_size != s->seen.st_size ||
                                 st.st_mtim.tv_sec != s->seen.st_mtim.tv_sec ||
                                 st.st_mtim.tv_nsec != s->seen.st_mtim.tv_nsec
                           : s->seen.st_ino != 0;
        if (changed) {
            ty_map fresh = TY_MAP_INIT;
            struct stat seen;
            if (store_read(s->path, &fresh, &seen, err) < 0) {
                entries_free(&fresh);
                return -1;
            }
            entries_free(&s->by_digest);
            s->by_digest = fresh;
            s->seen = seen;
            e = entries_find(&s->by_digest, token);
        }
    }
    if (!e || (e->expires && now >= e->expires))
        return 0;
    if (out)
        identity_copy(out, &e->id);
    return 1;
}

void ty_token_store_free(ty_token_store *s)
{
    if (!s)
        return;
    entries_free(&s->by_digest);
    free(s->path);
    free(s);
}

/* ---------- ServiceAccount tokens ---------- */

struct ty_sa_signer {
    gnutls_privkey_t key;
    gnutls_pubkey_t pub;
    char *kid;
    char *issuer;
};

void ty_sa_signer_free(ty_sa_signer *s)
{
    if (!s)
        return;
    if (s->key)
        gnutls_privkey_deinit(s->key);
    if (s->pub)
        gnutls_pubkey_deinit(s->pub);
    free(s->kid);
    free(s->issuer);
    free(s);
}

/* A new P-256 key written to `path` (0600) as PEM; the PEM text into `pem`. */
static int make_key(const char *path, ty_buf *pem, ty_error *err)
{
    gnutls_x509_privkey_t k;
    int rc = gnutls_x509_privkey_init(&k);
    if (rc >= 0)
        rc = gnutls_x509_privkey_generate(k, GNUTLS_PK_ECDSA,
                                          GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0);
    gnutls_datum_t d = {0};
    if (rc >= 0)
        rc = gnutls_x509_privkey_export2(k, GNUTLS_X509_FMT_PEM, &d);
    gnutls_x509_privkey_deinit(k);
    if (rc < 0)
        return ty_fail(err, "make the service account key %s: %s", path, gnutls_strerror(rc));
    ty_buf_add(pem, d.data, d.size);
    ty_gnutls.free_fn(d.data);
    return ty_write_file_private(path, pem->data, pem->len, err);
}

int ty_sa_signer_open(const char *key_path, bool create, const char *issuer, ty_sa_signer **out,
                      ty_error *err)
{
    *out = NULL;
    if (ty_gnutls_load(err) < 0)
        return -1;
    TY_AUTOBUF ty_buf pem = TY_BUF_INIT;
    struct stat st;
    if (stat(key_path, &st) < 0) {
        if (errno != ENOENT || !create)
            return ty_fail_errno(err, errno, "read %s", key_path);
        if (make_key(key_path, &pem, err) < 0)
            return -1;
    } else {
        if (st.st_mode & 077)
            return ty_fail(err, "%s: mode %04o lets others read the signing key; run chmod 600 "
                           "%s", key_path, (unsigned)(st.st_mode & 07777), key_path);
        if (read_limited(key_path, &pem, err) < 0)
            return -1;
    }
    ty_sa_signer *s = TY_NEW(ty_sa_signer);
    s->issuer = ty_strdup(issuer);
    gnutls_datum_t d = {(unsigned char *)pem.data, (unsigned)pem.len};
    int rc = gnutls_privkey_init(&s->key);
    gnutls_x509_privkey_t xk = NULL;
    if (rc >= 0)
        rc = gnutls_x509_privkey_init(&xk);
    if (rc >= 0)
        rc = gnutls_x509_privkey_import(xk, &d, GNUTLS_X509_FMT_PEM);
    if (rc >= 0) {
        rc = gnutls_privkey_import_x509(s->key, xk, GNUTLS_PRIVKEY_IMPORT_AUTO_RELEASE);
        if (rc >= 0)
            xk = NULL;
    }
    if (xk)
        gnutls_x509_privkey_deinit(xk);
    if (rc >= 0)
        rc = gnutls_pubkey_init(&s->pub);
    if (rc >= 0)
        rc = gnutls_pubkey_import_privkey(s->pub, s->key, 0, 0);
    gnutls_datum_t der = {0};
    if (rc >= 0)
        rc = gnutls_pubkey_export2(s->pub, GNUTLS_X509_FMT_DER, &der);
    if (rc < 0) {
        ty_sa_signer_free(s);
        return ty_fail(err, "load the service account key %s: %s", key_path,
                       gnutls_strerror(rc));
    }
    /* kube-apiserver's key id: the URL-safe base64 of the SHA-256 of the public key's DER. */
    unsigned char h[32];
    ty_sha256(der.data, der.size, h, NULL);
    ty_gnutls.free_fn(der.data);
    s->kid = ty_base64_encode(h, sizeof h, true);
    unsigned bits = 0;
    if (gnutls_pubkey_get_pk_algorithm(s->pub, &bits) != GNUTLS_PK_ECDSA || bits != 256) {
        ty_sa_signer_free(s);
        return ty_fail(err, "load the service account key %s: not an ECDSA P-256 key",
                       key_path);
    }
    *out = s;
    return 0;
}

static void add_b64url_json(ty_buf *b, json_t *v)
{
    TY_AUTOFREE char *text = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
    TY_AUTOFREE char *enc = ty_base64_encode(text, strlen(text), true);
    ty_buf_adds(b, enc);
}

/* A P-256 coordinate or scalar as exactly 32 bytes (GnuTLS may give it with a leading zero
 * byte, or shorter). -1 if it does not fit. */
static int fixed32(const gnutls_datum_t *d, unsigned char *out)
{
    const unsigned char *p = d->data;
    size_t n = d->size;
    while (n > 32 && *p == 0)
        p++, n--;
    if (n > 32)
        return -1;
    memset(out, 0, 32 - n);
    memcpy(out + 32 - n, p, n);
    return 0;
}

int ty_sa_token_sign(const ty_sa_signer *s, const ty_sa_claims *c, char **jwt, ty_error *err)
{
    *jwt = NULL;
    unsigned char jti[16];
    if (random_bytes(jti, sizeof jti, err) < 0)
        return -1;
    char jhex[33];
    hex(jti, sizeof jti, jhex);
    json_t *aud = json_array();
    for (size_t i = 0; i < c->naudiences; i++)
        json_array_append_new(aud, json_string(c->audiences[i]));
    json_t *k8s = json_pack("{s:s, s:{s:s, s:s}}", "namespace", c->ns, "serviceaccount", "name",
                            c->name, "uid", c->uid ? c->uid : "");
    if (!k8s) {
        json_decref(aud);
        return ty_fail(err, "sign a service account token: bad namespace or name");
    }
    if (c->pod_name)
        json_object_set_new(k8s, "pod", json_pack("{s:s, s:s}", "name", c->pod_name, "uid",
                                                  c->pod_uid ? c->pod_uid : ""));
    json_t *claims = json_pack("{s:s, s:s+++, s:o, s:I, s:I, s:I, s:s, s:o}", "iss", s->issuer,
                               "sub", SA_PREFIX, c->ns, ":", c->name, "aud", aud, "exp",
                               (json_int_t)c->expires, "iat", (json_int_t)c->issued_at, "nbf",
                               (json_int_t)c->issued_at, "jti", jhex, "kubernetes.io", k8s);
    json_t *hdr = json_pack("{s:s, s:s}", "alg", "ES256", "kid", s->kid);
    ty_buf b = TY_BUF_INIT;
    add_b64url_json(&b, hdr);
    ty_buf_addc(&b, '.');
    add_b64url_json(&b, claims);
    json_decref(hdr);
    json_decref(claims);
    gnutls_datum_t data = {(unsigned char *)b.data, (unsigned)b.len}, sig = {0}, r = {0},
                   sv = {0};
    int rc = gnutls_privkey_sign_data(s->key, GNUTLS_DIG_SHA256, 0, &data, &sig);
    if (rc >= 0)
        rc = gnutls_decode_rs_value(&sig, &r, &sv);
    unsigned char raw[64];
    bool fits = rc >= 0 && fixed32(&r, raw) == 0 && fixed32(&sv, raw + 32) == 0;
    ty_gnutls.free_fn(sig.data);
    ty_gnutls.free_fn(r.data);
    ty_gnutls.free_fn(sv.data);
    if (!fits) {
        ty_buf_free(&b);
        return ty_fail(err, "sign a service account token: %s",
                       rc < 0 ? gnutls_strerror(rc) : "bad signature size");
    }
    TY_AUTOFREE char *enc = ty_base64_encode(raw, sizeof raw, true);
    ty_buf_addc(&b, '.');
    ty_buf_adds(&b, enc);
    *jwt = ty_buf_steal(&b);
    return 0;
}

/* One part of a JWT decoded as a JSON object; NULL if it is not one. */
static json_t *jwt_json(const char *part, size_t len)
{
    size_t n;
    TY_AUTOFREE unsigned char *raw = ty_base64_decode(part, len, true, &n);
    if (!raw)
        return NULL;
    json_t *v = json_loadb((const char *)raw, n, JSON_REJECT_DUPLICATES, NULL);
    if (v && !json_is_object(v)) {
        json_decref(v);
        return NULL;
    }
    return v;
}

static bool aud_has(const json_t *aud, const char *want)
{
    if (json_is_string(aud))
        return strcmp(json_string_value(aud), want) == 0;
    size_t i;
    const json_t *a;
    json_array_foreach(aud, i, a)
        if (json_is_string(a) && strcmp(json_string_value(a), want) == 0)
            return true;
    return false;
}

/* A namespace or service account name: a DNS label or subdomain, which holds no ':'. */
static bool name_ok(const char *s)
{
    if (!s || !*s || strlen(s) > 253)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-' || *s == '.'))
            return false;
    return true;
}

static const char *str_in(const json_t *o, const char *a, const char *b)
{
    const json_t *v = json_object_get(o, a);
    if (b)
        v = json_object_get(v, b);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static int verify_signature(const ty_sa_signer *s, const char *jwt, size_t signed_len,
                            const char *sig64, ty_error *err)
{
    size_t n;
    TY_AUTOFREE unsigned char *raw = ty_base64_decode(sig64, strlen(sig64), true, &n);
    if (!raw || n != 64)
        return ty_fail(err, "service account token: malformed signature");
    gnutls_datum_t r = {raw, 32}, sv = {raw + 32, 32}, der = {0};
    int rc = gnutls_encode_rs_value(&der, &r, &sv);
    if (rc < 0)
        return ty_fail(err, "service account token: %s", gnutls_strerror(rc));
    gnutls_datum_t data = {(unsigned char *)jwt, (unsigned)signed_len};
    rc = gnutls_pubkey_verify_data2(s->pub, GNUTLS_SIGN_ECDSA_SHA256, 0, &data, &der);
    ty_gnutls.free_fn(der.data);
    if (rc < 0)
        return ty_fail(err, "service account token: the signature does not verify");
    return 0;
}

int ty_sa_token_verify(const ty_sa_signer *s, const char *jwt, const char *audience,
                       int64_t now, ty_identity *out, ty_sa_binding *binding, ty_error *err)
{
    *out = (ty_identity){0};
    if (binding)
        *binding = (ty_sa_binding){0};
    size_t len = strlen(jwt);
    if (len > JWT_MAX)
        return ty_fail(err, "service account token: longer than %u bytes", JWT_MAX);
    const char *dot1 = strchr(jwt, '.'), *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
    if (!dot1 || !dot2 || strchr(dot2 + 1, '.'))
        return ty_fail(err, "service account token: not a JWS compact serialization");
    json_t *hdr = jwt_json(jwt, (size_t)(dot1 - jwt));
    const char *alg = str_in(hdr, "alg", NULL), *kid = str_in(hdr, "kid", NULL);
    bool hdr_ok = alg && strcmp(alg, "ES256") == 0 && (!kid || strcmp(kid, s->kid) == 0) &&
                  !json_object_get(hdr, "crit");
    json_decref(hdr);
    if (!hdr_ok)
        return ty_fail(err, "service account token: not signed ES256 by this server's key");
    if (verify_signature(s, jwt, (size_t)(dot2 - jwt), dot2 + 1, err) < 0)
        return -1;
    json_t *cl = jwt_json(dot1 + 1, (size_t)(dot2 - dot1 - 1));
    if (!cl)
        return ty_fail(err, "service account token: malformed claims");
    int rc = -1;
    const char *iss = str_in(cl, "iss", NULL), *sub = str_in(cl, "sub", NULL);
    const char *ns = str_in(cl, "kubernetes.io", "namespace");
    const json_t *sa = json_object_get(json_object_get(cl, "kubernetes.io"), "serviceaccount");
    const char *name = str_in(sa, "name", NULL), *uid = str_in(sa, "uid", NULL);
    const json_t *pod = json_object_get(json_object_get(cl, "kubernetes.io"), "pod");
    const json_t *exp = json_object_get(cl, "exp"), *nbf = json_object_get(cl, "nbf");
    TY_AUTOFREE char *want_sub = name_ok(ns) && name_ok(name)
                                     ? ty_asprintf(SA_PREFIX "%s:%s", ns, name) : NULL;
    if (!iss || strcmp(iss, s->issuer) != 0)
        ty_fail(err, "service account token: issuer \"%s\" is not this server's",
                iss ? iss : "");
    else if (!aud_has(json_object_get(cl, "aud"), audience))
        ty_fail(err, "service account token: not for audience \"%s\"", audience);
    else if (!json_is_integer(exp))
        ty_fail(err, "service account token: no expiry");
    else if (now > json_integer_value(exp))
        ty_fail(err, "service account token: expired");
    else if (nbf && (!json_is_integer(nbf) || now < json_integer_value(nbf)))
        ty_fail(err, "service account token: not valid yet");
    else if (!want_sub || !sub || strcmp(sub, want_sub) != 0)
        ty_fail(err, "service account token: subject \"%s\" does not name its service account",
                sub ? sub : "");
    else
        rc = 0;
    if (rc == 0) {
        out->name = TY_STEAL(want_sub);
        out->uid = ty_strdup(uid ? uid : "");
        identity_add_group(out, "system:serviceaccounts", strlen("system:serviceaccounts"));
        TY_AUTOFREE char *g = ty_asprintf("system:serviceaccounts:%s", ns);
        identity_add_group(out, g, strlen(g));
        if (binding) {
            const char *pn = str_in(pod, "name", NULL), *pu = str_in(pod, "uid", NULL);
            binding->pod_name = ty_strdup(pn ? pn : "");
            binding->pod_uid = ty_strdup(pu ? pu : "");
        }
    }
    json_decref(cl);
    return rc;
}
