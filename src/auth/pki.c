/* The server's certificates (pki.h). */
#include "auth/pki.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/gnutls.h"
#include "base/buf.h"
#include "base/fs.h"
#include "base/mem.h"

#define CA_VALID_S (10 * 365 * 86400LL)
#define LEAF_VALID_S (365 * 86400LL)
#define BACKDATE_S (5 * 60)
#define PEM_MAX (1u << 20)

struct ty_pki {
    char *ca_crt_path, *ca_key_path, *crt_path, *key_path;
    char *ca_pem;
    gnutls_x509_crt_t ca;
    gnutls_x509_privkey_t ca_key;
};

void ty_pki_free(ty_pki *p)
{
    if (!p)
        return;
    if (p->ca)
        gnutls_x509_crt_deinit(p->ca);
    if (p->ca_key)
        gnutls_x509_privkey_deinit(p->ca_key);
    free(p->ca_crt_path);
    free(p->ca_key_path);
    free(p->crt_path);
    free(p->key_path);
    free(p->ca_pem);
    free(p);
}

const char *ty_pki_ca_pem(const ty_pki *p) { return p->ca_pem; }
const char *ty_pki_serving_cert_path(const ty_pki *p) { return p->crt_path; }
const char *ty_pki_serving_key_path(const ty_pki *p) { return p->key_path; }

static int gfail(ty_error *err, int rc, const char *what)
{
    return ty_fail(err, "%s: %s", what, gnutls_strerror(rc));
}

/* A PEM file of ours: it must be 0600 (or stricter), at most 1 MiB. 1 when read, 0 when
 * missing. */
static int read_pem(const char *path, ty_buf *b, ty_error *err)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        if (errno == ENOENT)
            return 0;
        return ty_fail_errno(err, errno, "read %s", path);
    }
    if (st.st_mode & 077)
        return ty_fail(err, "%s: mode %04o lets others read it; run chmod 600 %s", path,
                       (unsigned)(st.st_mode & 07777), path);
    if (st.st_size > PEM_MAX)
        return ty_fail(err, "read %s: larger than %u bytes", path, PEM_MAX);
    if (ty_buf_read_file(b, path) < 0)
        return ty_fail_errno(err, errno, "read %s", path);
    return 1;
}

static int write_pem(const char *path, const gnutls_datum_t *d, ty_error *err)
{
    return ty_write_file_private(path, d->data, d->size, err);
}

static int new_key(gnutls_x509_privkey_t *k, ty_error *err)
{
    int rc = gnutls_x509_privkey_init(k);
    if (rc < 0)
        return gfail(err, rc, "make a key");
    rc = gnutls_x509_privkey_generate(*k, GNUTLS_PK_ECDSA,
                                      GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0);
    if (rc < 0) {
        gnutls_x509_privkey_deinit(*k);
        *k = NULL;
        return gfail(err, rc, "make a key");
    }
    return 0;
}

/* The fields every certificate here has: v3, a random positive serial, validity, subject CN
 * (and O per group), its key. */
static int crt_base(gnutls_x509_crt_t c, gnutls_x509_privkey_t key, const char *cn,
                    const char *const *orgs, size_t norgs, int64_t now, int64_t valid_s)
{
    unsigned char serial[16];
    if (getrandom(serial, sizeof serial, 0) != (ssize_t)sizeof serial)
        return GNUTLS_E_RANDOM_FAILED;
    serial[0] &= 0x7f;
    serial[0] |= 0x01; /* positive and of full length */
    int rc = gnutls_x509_crt_set_version(c, 3);
    if (rc >= 0)
        rc = gnutls_x509_crt_set_serial(c, serial, sizeof serial);
    if (rc >= 0)
        rc = gnutls_x509_crt_set_activation_time(c, (time_t)(now - BACKDATE_S));
    if (rc >= 0)
        rc = gnutls_x509_crt_set_expiration_time(c, (time_t)(now + valid_s));
    for (size_t i = 0; rc >= 0 && i < norgs; i++)
        rc = gnutls_x509_crt_set_dn_by_oid(c, GNUTLS_OID_X520_ORGANIZATION_NAME, 0, orgs[i],
                                           (unsigned)strlen(orgs[i]));
    if (rc >= 0)
        rc = gnutls_x509_crt_set_dn_by_oid(c, GNUTLS_OID_X520_COMMON_NAME, 0, cn,
                                           (unsigned)strlen(cn));
    if (rc >= 0)
        rc = gnutls_x509_crt_set_key(c, key);
    return rc;
}

static int make_ca(ty_pki *p, int64_t now, ty_buf *key_pem, ty_error *err)
{
    if (new_key(&p->ca_key, err) < 0)
        return -1;
    int rc = gnutls_x509_crt_init(&p->ca);
    if (rc >= 0)
        rc = crt_base(p->ca, p->ca_key, "trainyard-ca", NULL, 0, now, CA_VALID_S);
    if (rc >= 0)
        rc = gnutls_x509_crt_set_basic_constraints(p->ca, 1, -1);
    if (rc >= 0)
        rc = gnutls_x509_crt_set_key_usage(p->ca, GNUTLS_KEY_KEY_CERT_SIGN | GNUTLS_KEY_CRL_SIGN |
                                                      GNUTLS_KEY_DIGITAL_SIGNATURE);
    if (rc >= 0)
        rc = gnutls_x509_crt_sign2(p->ca, p->ca, p->ca_key, GNUTLS_DIG_SHA256, 0);
    if (rc < 0)
        return gfail(err, rc, "make the CA certificate");
    gnutls_datum_t k = {0};
    rc = gnutls_x509_privkey_export2(p->ca_key, GNUTLS_X509_FMT_PEM, &k);
    if (rc < 0)
        return gfail(err, rc, "export the CA key");
    ty_buf_add(key_pem, k.data, k.size);
    int wrc = write_pem(p->ca_key_path, &k, err);
    ty_gnutls.free_fn(k.data);
    return wrc;
}

static int load_ca(ty_pki *p, const ty_buf *crt, const ty_buf *key, ty_error *err)
{
    gnutls_datum_t dc = {(unsigned char *)crt->data, (unsigned)crt->len};
    gnutls_datum_t dk = {(unsigned char *)key->data, (unsigned)key->len};
    int rc = gnutls_x509_crt_init(&p->ca);
    if (rc >= 0)
        rc = gnutls_x509_crt_import(p->ca, &dc, GNUTLS_X509_FMT_PEM);
    if (rc < 0)
        return ty_fail(err, "load %s: %s", p->ca_crt_path, gnutls_strerror(rc));
    rc = gnutls_x509_privkey_init(&p->ca_key);
    if (rc >= 0)
        rc = gnutls_x509_privkey_import(p->ca_key, &dk, GNUTLS_X509_FMT_PEM);
    if (rc < 0)
        return ty_fail(err, "load %s: %s", p->ca_key_path, gnutls_strerror(rc));
    return 0;
}

/* A certificate signed by the CA for `key`: a server's (with SANs) or a client's. */
static int sign_leaf(const ty_pki *p, gnutls_x509_privkey_t key, const char *cn,
                     const char *const *orgs, size_t norgs, const char *const *sans,
                     size_t nsans, bool server, int64_t now, int64_t valid_s,
                     gnutls_datum_t *pem, ty_error *err)
{
    gnutls_x509_crt_t c;
    int rc = gnutls_x509_crt_init(&c);
    if (rc < 0)
        return gfail(err, rc, "make a certificate");
    rc = crt_base(c, key, cn, orgs, norgs, now, valid_s);
    if (rc >= 0)
        rc = gnutls_x509_crt_set_basic_constraints(c, 0, -1);
    if (rc >= 0)
        rc = gnutls_x509_crt_set_key_usage(c, GNUTLS_KEY_DIGITAL_SIGNATURE |
                                                  GNUTLS_KEY_KEY_ENCIPHERMENT);
    if (rc >= 0)
        rc = gnutls_x509_crt_set_key_purpose_oid(c, server ? GNUTLS_KP_TLS_WWW_SERVER
                                                           : GNUTLS_KP_TLS_WWW_CLIENT, 0);
    for (size_t i = 0; rc >= 0 && i < nsans; i++) {
        unsigned char ip[16];
        if (inet_pton(AF_INET, sans[i], ip) == 1)
            rc = gnutls_x509_crt_set_subject_alt_name(c, GNUTLS_SAN_IPADDRESS, ip, 4,
                                                      GNUTLS_FSAN_APPEND);
        else if (inet_pton(AF_INET6, sans[i], ip) == 1)
            rc = gnutls_x509_crt_set_subject_alt_name(c, GNUTLS_SAN_IPADDRESS, ip, 16,
                                                      GNUTLS_FSAN_APPEND);
        else
            rc = gnutls_x509_crt_set_subject_alt_name(c, GNUTLS_SAN_DNSNAME, sans[i],
                                                      (unsigned)strlen(sans[i]),
                                                      GNUTLS_FSAN_APPEND);
    }
    if (rc >= 0)
        rc = gnutls_x509_crt_sign2(c, p->ca, p->ca_key, GNUTLS_DIG_SHA256, 0);
    if (rc >= 0)
        rc = gnutls_x509_crt_export2(c, GNUTLS_X509_FMT_PEM, pem);
    gnutls_x509_crt_deinit(c);
    if (rc < 0)
        return ty_fail(err, "make the certificate of \"%s\": %s", cn, gnutls_strerror(rc));
    return 0;
}

/* Whether the serving certificate at hand is still good: parses, is signed by the CA (which
 * may have been replaced by hand), has not expired at `now`, and covers every SAN asked for. */
static bool serving_ok(const ty_pki *p, const ty_buf *crt, const char *const *sans,
                       size_t nsans, int64_t now)
{
    gnutls_x509_crt_t c;
    if (gnutls_x509_crt_init(&c) < 0)
        return false;
    gnutls_datum_t d = {(unsigned char *)crt->data, (unsigned)crt->len};
    unsigned status = 1;
    bool ok = gnutls_x509_crt_import(c, &d, GNUTLS_X509_FMT_PEM) >= 0 &&
              gnutls_x509_crt_verify(c, &p->ca, 1, GNUTLS_VERIFY_DISABLE_TIME_CHECKS,
                                     &status) >= 0 &&
              status == 0 && gnutls_x509_crt_get_expiration_time(c) > (time_t)now;
    for (size_t i = 0; ok && i < nsans; i++) {
        unsigned char ip[16];
        if (inet_pton(AF_INET, sans[i], ip) == 1)
            ok = gnutls_x509_crt_check_ip(c, ip, 4, 0) != 0;
        else if (inet_pton(AF_INET6, sans[i], ip) == 1)
            ok = gnutls_x509_crt_check_ip(c, ip, 16, 0) != 0;
        else
            ok = gnutls_x509_crt_check_hostname(c, sans[i]) != 0;
    }
    gnutls_x509_crt_deinit(c);
    return ok;
}

static int make_serving(const ty_pki *p, const char *const *sans, size_t nsans, int64_t now,
                        ty_error *err)
{
    gnutls_x509_privkey_t key;
    if (new_key(&key, err) < 0)
        return -1;
    gnutls_datum_t crt = {0}, k = {0};
    int rc = sign_leaf(p, key, "trainyard-apiserver", NULL, 0, sans, nsans, true, now,
                       LEAF_VALID_S, &crt, err);
    if (rc == 0) {
        int grc = gnutls_x509_privkey_export2(key, GNUTLS_X509_FMT_PEM, &k);
        if (grc < 0)
            rc = gfail(err, grc, "export the serving key");
    }
    /* the key first: a certificate never stands beside another key */
    if (rc == 0)
        rc = write_pem(p->key_path, &k, err);
    if (rc == 0)
        rc = write_pem(p->crt_path, &crt, err);
    ty_gnutls.free_fn(crt.data);
    ty_gnutls.free_fn(k.data);
    gnutls_x509_privkey_deinit(key);
    return rc;
}

int ty_pki_open(const char *dir, const char *const *sans, size_t nsans, int64_t now,
                ty_pki **out, ty_error *err)
{
    *out = NULL;
    if (ty_gnutls_load(err) < 0)
        return -1;
    if (ty_mkdir_p(dir, 0700) < 0)
        return ty_fail_errno(err, errno, "create %s", dir);
    struct stat st;
    if (stat(dir, &st) < 0)
        return ty_fail_errno(err, errno, "stat %s", dir);
    if (st.st_mode & 077)
        return ty_fail(err, "%s: mode %04o lets others into the keys' directory; run chmod 700 "
                       "%s", dir, (unsigned)(st.st_mode & 07777), dir);
    ty_pki *p = TY_NEW(ty_pki);
    p->ca_crt_path = ty_asprintf("%s/ca.crt", dir);
    p->ca_key_path = ty_asprintf("%s/ca.key", dir);
    p->crt_path = ty_asprintf("%s/apiserver.crt", dir);
    p->key_path = ty_asprintf("%s/apiserver.key", dir);
    TY_AUTOBUF ty_buf ca = TY_BUF_INIT;
    TY_AUTOBUF ty_buf cakey = TY_BUF_INIT;
    TY_AUTOBUF ty_buf crt = TY_BUF_INIT;
    TY_AUTOBUF ty_buf key = TY_BUF_INIT;
    int have_ca = read_pem(p->ca_crt_path, &ca, err);
    int have_cakey = have_ca < 0 ? -1 : read_pem(p->ca_key_path, &cakey, err);
    int have_crt = have_cakey < 0 ? -1 : read_pem(p->crt_path, &crt, err);
    int have_key = have_crt < 0 ? -1 : read_pem(p->key_path, &key, err);
    if (have_key < 0)
        goto fail;
    if (have_ca != have_cakey) {
        ty_fail(err, "%s: %s without %s; restore it, or remove both to make a new CA (every "
                "credential it signed is then void)", dir, have_ca ? "ca.crt" : "ca.key",
                have_ca ? "ca.key" : "ca.crt");
        goto fail;
    }
    if (have_ca) {
        if (load_ca(p, &ca, &cakey, err) < 0)
            goto fail;
    } else {
        /* A new CA voids any serving certificate left from another. */
        have_crt = have_key = 0;
        if (make_ca(p, now, &cakey, err) < 0)
            goto fail;
        gnutls_datum_t d = {0};
        int rc = gnutls_x509_crt_export2(p->ca, GNUTLS_X509_FMT_PEM, &d);
        if (rc < 0) {
            gfail(err, rc, "export the CA certificate");
            goto fail;
        }
        ty_buf_add(&ca, d.data, d.size);
        ty_gnutls.free_fn(d.data);
        if (ty_write_file_private(p->ca_crt_path, ca.data, ca.len, err) < 0)
            goto fail;
        /* GnuTLS verifies nothing against a certificate object still as it was made (its
         * subject is not matched as an issuer): the CA is used as read back, as at any later
         * start. */
        gnutls_x509_crt_deinit(p->ca);
        gnutls_x509_privkey_deinit(p->ca_key);
        p->ca = NULL;
        p->ca_key = NULL;
        if (load_ca(p, &ca, &cakey, err) < 0)
            goto fail;
    }
    p->ca_pem = ty_strndup(ca.data, ca.len);
    if (!have_crt || !have_key || !serving_ok(p, &crt, sans, nsans, now))
        if (make_serving(p, sans, nsans, now, err) < 0)
            goto fail;
    *out = p;
    return 0;
fail:
    ty_pki_free(p);
    return -1;
}

size_t ty_pki_default_sans(const char *listen_host, char ***out)
{
    char host[256] = "";
    if (gethostname(host, sizeof host - 1) < 0)
        host[0] = '\0';
    const char *cand[] = {listen_host, "localhost", "127.0.0.1", host};
    char **v = ty_calloc(TY_ARRAY_LEN(cand), sizeof *v);
    size_t n = 0;
    for (size_t i = 0; i < TY_ARRAY_LEN(cand); i++) {
        const char *c = cand[i];
        if (!c || !*c || strcmp(c, "0.0.0.0") == 0 || strcmp(c, "::") == 0)
            continue;
        bool dup = false;
        for (size_t j = 0; j < n && !dup; j++)
            dup = strcmp(v[j], c) == 0;
        if (!dup)
            v[n++] = ty_strdup(c);
    }
    *out = v;
    return n;
}

int ty_pki_client_cert(const ty_pki *p, const char *user, const char *const *groups,
                       size_t ngroups, int64_t now, int64_t valid_s, char **cert_pem,
                       char **key_pem, ty_error *err)
{
    *cert_pem = *key_pem = NULL;
    if (!user || !*user)
        return ty_fail(err, "make a client certificate: the user name is empty");
    gnutls_x509_privkey_t key;
    if (new_key(&key, err) < 0)
        return -1;
    gnutls_datum_t crt = {0}, k = {0};
    int rc = sign_leaf(p, key, user, groups, ngroups, NULL, 0, false, now, valid_s, &crt, err);
    if (rc == 0) {
        int grc = gnutls_x509_privkey_export2(key, GNUTLS_X509_FMT_PEM, &k);
        if (grc < 0)
            rc = gfail(err, grc, "export the client key");
    }
    if (rc == 0) {
        *cert_pem = ty_strndup((char *)crt.data, crt.size);
        *key_pem = ty_strndup((char *)k.data, k.size);
    }
    ty_gnutls.free_fn(crt.data);
    ty_gnutls.free_fn(k.data);
    gnutls_x509_privkey_deinit(key);
    return rc;
}

/* The value of the `idx`th `oid` of the subject; NULL when there is none. */
static char *dn_value(gnutls_x509_crt_t c, const char *oid, unsigned idx)
{
    char buf[1024];
    size_t size = sizeof buf;
    if (gnutls_x509_crt_get_dn_by_oid(c, oid, idx, 0, buf, &size) < 0)
        return NULL;
    return ty_strndup(buf, size);
}

static bool has_client_purpose(gnutls_x509_crt_t c)
{
    for (unsigned i = 0;; i++) {
        char oid[128];
        size_t size = sizeof oid;
        int rc = gnutls_x509_crt_get_key_purpose_oid(c, i, oid, &size, NULL);
        if (rc < 0)
            return false;
        if (strcmp(oid, GNUTLS_KP_TLS_WWW_CLIENT) == 0 || strcmp(oid, GNUTLS_KP_ANY) == 0)
            return true;
    }
}

int ty_pki_verify_client(const ty_pki *p, const void *cert, size_t len, bool pem, int64_t now,
                         ty_identity *out, ty_error *err)
{
    *out = (ty_identity){0};
    if (len > PEM_MAX)
        return ty_fail(err, "client certificate: larger than %u bytes", PEM_MAX);
    gnutls_x509_crt_t c;
    int rc = gnutls_x509_crt_init(&c);
    if (rc < 0)
        return gfail(err, rc, "client certificate");
    gnutls_datum_t d = {(unsigned char *)cert, (unsigned)len};
    rc = gnutls_x509_crt_import(c, &d, pem ? GNUTLS_X509_FMT_PEM : GNUTLS_X509_FMT_DER);
    if (rc < 0) {
        gnutls_x509_crt_deinit(c);
        return ty_fail(err, "client certificate: %s", gnutls_strerror(rc));
    }
    unsigned status = 0;
    /* Times are checked below against `now`, the caller's clock. */
    rc = gnutls_x509_crt_verify(c, &p->ca, 1, GNUTLS_VERIFY_DISABLE_TIME_CHECKS, &status);
    int ret = -1;
    if (rc < 0 || status != 0)
        ty_fail(err, "client certificate: not signed by this server's CA");
    else if (gnutls_x509_crt_get_activation_time(c) > (time_t)now)
        ty_fail(err, "client certificate: not valid yet");
    else if (gnutls_x509_crt_get_expiration_time(c) < (time_t)now ||
             gnutls_x509_crt_get_expiration_time(p->ca) < (time_t)now)
        ty_fail(err, "client certificate: expired");
    else if (!has_client_purpose(c))
        ty_fail(err, "client certificate: not for client authentication");
    else if (!(out->name = dn_value(c, GNUTLS_OID_X520_COMMON_NAME, 0)) || !*out->name)
        ty_fail(err, "client certificate: no common name (the user)");
    else
        ret = 0;
    if (ret == 0) {
        out->uid = ty_strdup("");
        for (unsigned i = 0;; i++) {
            char *o = dn_value(c, GNUTLS_OID_X520_ORGANIZATION_NAME, i);
            if (!o)
                break;
            out->groups = ty_realloc(out->groups, (out->ngroups + 1) * sizeof *out->groups);
            out->groups[out->ngroups++] = o;
        }
    } else {
        ty_identity_clear(out);
    }
    gnutls_x509_crt_deinit(c);
    return ret;
}

int ty_pki_verify_session(const ty_pki *p, void *session, int64_t now, ty_identity *out,
                          ty_error *err)
{
    *out = (ty_identity){0};
    unsigned n = 0;
    const gnutls_datum_t *peers = session ? gnutls_certificate_get_peers(session, &n) : NULL;
    if (!peers || n == 0)
        return 0;
    /* the first is the client's own; the rest, if any, a chain this CA does not need */
    if (ty_pki_verify_client(p, peers[0].data, peers[0].size, false, now, out, err) < 0)
        return -1;
    return 1;
}
