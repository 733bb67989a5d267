/* The server's certificates (auth/pki.h): made at the first start, reloaded, client
 * certificates verified; another CA's, expired, not-yet-valid and server certificates refused. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "auth/gnutls.h"
#include "auth/pki.h"
#include "base/buf.h"
#include "base/fs.h"
#include "base/mem.h"

static char dir[64];
static const int64_t NOW = 1796000000; /* 2026-11 */

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/ty-pki-XXXXXX");
    cr_assert(mkdtemp(dir));
}

static void teardown(void) { ty_rm_tree(dir); }

TestSuite(pki, .init = setup, .fini = teardown);

static const char *const SANS[] = {"10.1.2.3", "localhost", "127.0.0.1", "gpu-box"};

static ty_pki *open_pki(const char *sub, const char *const *sans, size_t n, int64_t now)
{
    TY_AUTOFREE char *path = ty_asprintf("%s/%s", dir, sub);
    ty_pki *p = NULL;
    ty_error err = TY_ERROR_INIT;
    cr_assert_eq(ty_pki_open(path, sans, n, now, &p, &err), 0, "%s", err.msg);
    return p;
}

static char *slurp(const char *path)
{
    ty_buf b = TY_BUF_INIT;
    cr_assert_eq(ty_buf_read_file(&b, path), 0, "%s", path);
    return ty_buf_steal(&b);
}

static int mode_of(const char *path)
{
    struct stat st;
    cr_assert_eq(stat(path, &st), 0, "%s", path);
    return (int)(st.st_mode & 0777);
}

Test(pki, made_then_reloaded)
{
    ty_pki *p = open_pki("pki", SANS, 4, NOW);
    TY_AUTOFREE char *pki = ty_asprintf("%s/pki", dir);
    cr_assert_eq(mode_of(pki), 0700);
    static const char *const files[] = {"ca.crt", "ca.key", "apiserver.crt", "apiserver.key"};
    for (size_t i = 0; i < TY_ARRAY_LEN(files); i++) {
        TY_AUTOFREE char *f = ty_asprintf("%s/%s", pki, files[i]);
        cr_assert_eq(mode_of(f), 0600, "%s", files[i]);
    }
    cr_assert(strstr(ty_pki_ca_pem(p), "-----BEGIN CERTIFICATE-----"));
    TY_AUTOFREE char *ca1 = ty_strdup(ty_pki_ca_pem(p));
    TY_AUTOFREE char *crt1 = slurp(ty_pki_serving_cert_path(p));

    /* the serving certificate: signed by the CA, with every SAN, for servers, 1 year */
    gnutls_x509_crt_t ca, crt;
    cr_assert_eq(ty_gnutls_load(NULL), 0);
    gnutls_x509_crt_init(&ca);
    gnutls_x509_crt_init(&crt);
    gnutls_datum_t d = {(unsigned char *)ca1, (unsigned)strlen(ca1)};
    cr_assert_geq(gnutls_x509_crt_import(ca, &d, GNUTLS_X509_FMT_PEM), 0);
    d = (gnutls_datum_t){(unsigned char *)crt1, (unsigned)strlen(crt1)};
    cr_assert_geq(gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_PEM), 0);
    unsigned status = 1;
    cr_assert_geq(gnutls_x509_crt_verify(crt, &ca, 1, GNUTLS_VERIFY_DISABLE_TIME_CHECKS,
                                         &status), 0);
    cr_assert_eq(status, 0);
    unsigned char ip[4] = {10, 1, 2, 3}, lo[4] = {127, 0, 0, 1}, other[4] = {10, 1, 2, 4};
    cr_assert(gnutls_x509_crt_check_ip(crt, ip, 4, 0));
    cr_assert(gnutls_x509_crt_check_ip(crt, lo, 4, 0));
    cr_assert_not(gnutls_x509_crt_check_ip(crt, other, 4, 0));
    cr_assert(gnutls_x509_crt_check_hostname(crt, "gpu-box"));
    cr_assert(gnutls_x509_crt_check_hostname(crt, "localhost"));
    cr_assert_not(gnutls_x509_crt_check_hostname(crt, "evil.example"));
    cr_assert_eq(gnutls_x509_crt_get_expiration_time(crt), NOW + 365 * 86400);
    cr_assert_eq(gnutls_x509_crt_get_activation_time(crt), NOW - 300);
    cr_assert_eq(gnutls_x509_crt_get_expiration_time(ca), NOW + 10 * 365 * 86400LL);
    gnutls_x509_crt_deinit(crt);
    ty_pki_free(p);

    /* reloaded: the same CA and serving certificate */
    p = open_pki("pki", SANS, 4, NOW + 86400);
    cr_assert_str_eq(ty_pki_ca_pem(p), ca1);
    TY_AUTOFREE char *crt2 = slurp(ty_pki_serving_cert_path(p));
    cr_assert_str_eq(crt2, crt1);
    ty_pki_free(p);

    /* a new listen address: a new serving certificate from the same CA */
    const char *moved[] = {"10.9.9.9", "localhost"};
    p = open_pki("pki", moved, 2, NOW + 86400);
    cr_assert_str_eq(ty_pki_ca_pem(p), ca1);
    TY_AUTOFREE char *crt3 = slurp(ty_pki_serving_cert_path(p));
    cr_assert_str_neq(crt3, crt1);
    gnutls_x509_crt_init(&crt);
    d = (gnutls_datum_t){(unsigned char *)crt3, (unsigned)strlen(crt3)};
    cr_assert_geq(gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_PEM), 0);
    unsigned char moved_ip[4] = {10, 9, 9, 9};
    cr_assert(gnutls_x509_crt_check_ip(crt, moved_ip, 4, 0));
    cr_assert_geq(gnutls_x509_crt_verify(crt, &ca, 1, GNUTLS_VERIFY_DISABLE_TIME_CHECKS,
                                         &status), 0);
    cr_assert_eq(status, 0);
    gnutls_x509_crt_deinit(crt);
    gnutls_x509_crt_deinit(ca);
    ty_pki_free(p);

    /* expired: made again */
    p = open_pki("pki", moved, 2, NOW + 400 * 86400LL);
    TY_AUTOFREE char *crt4 = slurp(ty_pki_serving_cert_path(p));
    cr_assert_str_neq(crt4, crt3);
    ty_pki_free(p);

    /* a CA replaced by hand (another's files copied in): the serving certificate follows */
    ty_pki_free(open_pki("other", moved, 2, NOW));
    static const char *const ca_files[] = {"ca.crt", "ca.key"};
    for (size_t i = 0; i < TY_ARRAY_LEN(ca_files); i++) {
        TY_AUTOFREE char *from = ty_asprintf("%s/other/%s", dir, ca_files[i]);
        TY_AUTOFREE char *to = ty_asprintf("%s/pki/%s", dir, ca_files[i]);
        cr_assert_eq(rename(from, to), 0);
    }
    p = open_pki("pki", moved, 2, NOW + 400 * 86400LL);
    TY_AUTOFREE char *crt5 = slurp(ty_pki_serving_cert_path(p));
    cr_assert_str_neq(crt5, crt4);
    ty_pki_free(p);
}

static char *verify_err(const ty_pki *p, const char *pem, int64_t now)
{
    ty_identity id;
    ty_error err = TY_ERROR_INIT;
    cr_assert_eq(ty_pki_verify_client(p, pem, strlen(pem), true, now, &id, &err), -1);
    cr_assert_null(id.name);
    return err.msg;
}

Test(pki, client_certificates)
{
    ty_pki *p = open_pki("pki", SANS, 4, NOW);
    const char *groups[] = {"team-a", "ml"};
    char *crt = NULL, *key = NULL;
    ty_error err = TY_ERROR_INIT;
    cr_assert_eq(ty_pki_client_cert(p, "alice", groups, 2, NOW, 86400, &crt, &key, &err), 0,
                 "%s", err.msg);
    cr_assert(strstr(key, "PRIVATE KEY"));
    ty_identity id;
    cr_assert_eq(ty_pki_verify_client(p, crt, strlen(crt), true, NOW + 60, &id, &err), 0, "%s",
                 err.msg);
    cr_assert_str_eq(id.name, "alice");
    cr_assert_eq(id.ngroups, 2);
    cr_assert_str_eq(id.groups[0], "team-a");
    cr_assert_str_eq(id.groups[1], "ml");
    ty_identity_clear(&id);

    /* DER too */
    cr_assert_eq(ty_gnutls_load(NULL), 0);
    gnutls_x509_crt_t c;
    gnutls_x509_crt_init(&c);
    gnutls_datum_t d = {(unsigned char *)crt, (unsigned)strlen(crt)}, der = {0};
    cr_assert_geq(gnutls_x509_crt_import(c, &d, GNUTLS_X509_FMT_PEM), 0);
    cr_assert_geq(gnutls_x509_crt_export2(c, GNUTLS_X509_FMT_DER, &der), 0);
    cr_assert_eq(ty_pki_verify_client(p, der.data, der.size, false, NOW, &id, &err), 0);
    ty_identity_clear(&id);
    ty_gnutls.free_fn(der.data);
    gnutls_x509_crt_deinit(c);

    /* expired, not yet valid */
    char *m = verify_err(p, crt, NOW + 86401);
    cr_assert_str_eq(m, "client certificate: expired");
    free(m);
    m = verify_err(p, crt, NOW - 301);
    cr_assert_str_eq(m, "client certificate: not valid yet");
    free(m);

    /* another CA's, even for the same user */
    ty_pki *other = open_pki("other", SANS, 4, NOW);
    char *ocrt = NULL, *okey = NULL;
    cr_assert_eq(ty_pki_client_cert(other, "alice", groups, 2, NOW, 86400, &ocrt, &okey, &err),
                 0);
    m = verify_err(p, ocrt, NOW);
    cr_assert_str_eq(m, "client certificate: not signed by this server's CA");
    free(m);
    /* the CA itself, and the serving certificate, are not client certificates */
    m = verify_err(p, ty_pki_ca_pem(p), NOW);
    cr_assert_str_eq(m, "client certificate: not for client authentication");
    free(m);
    TY_AUTOFREE char *serving = slurp(ty_pki_serving_cert_path(p));
    m = verify_err(p, serving, NOW);
    cr_assert_str_eq(m, "client certificate: not for client authentication");
    free(m);
    m = verify_err(p, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", NOW);
    cr_assert(strstr(m, "client certificate: "), "%s", m);
    free(m);
    free(crt);
    free(key);
    cr_assert_eq(ty_pki_client_cert(p, "", NULL, 0, NOW, 60, &crt, &key, &err), -1);
    cr_assert_null(crt);
    ty_error_clear(&err);
    free(ocrt);
    free(okey);
    ty_pki_free(other);
    ty_pki_free(p);
}

Test(pki, refuses_what_others_can_read)
{
    ty_pki *p = open_pki("pki", SANS, 4, NOW);
    ty_pki_free(p);
    TY_AUTOFREE char *pki = ty_asprintf("%s/pki", dir);
    TY_AUTOFREE char *cakey = ty_asprintf("%s/ca.key", pki);
    ty_error err = TY_ERROR_INIT;
    cr_assert_eq(chmod(cakey, 0644), 0);
    cr_assert_eq(ty_pki_open(pki, SANS, 4, NOW, &p, &err), -1);
    cr_assert(strstr(err.msg, "ca.key: mode 0644 lets others read it; run chmod 600"), "%s",
              err.msg);
    ty_error_clear(&err);
    cr_assert_eq(chmod(cakey, 0600), 0);
    cr_assert_eq(chmod(pki, 0755), 0);
    cr_assert_eq(ty_pki_open(pki, SANS, 4, NOW, &p, &err), -1);
    cr_assert(strstr(err.msg, "mode 0755 lets others into the keys' directory"), "%s", err.msg);
    ty_error_clear(&err);
    cr_assert_eq(chmod(pki, 0700), 0);
    /* half a CA: never silently replaced */
    cr_assert_eq(unlink(cakey), 0);
    cr_assert_eq(ty_pki_open(pki, SANS, 4, NOW, &p, &err), -1);
    cr_assert(strstr(err.msg, "ca.crt without ca.key"), "%s", err.msg);
    ty_error_clear(&err);
    cr_assert_null(p);
}

Test(pki, default_sans)
{
    char **v = NULL;
    size_t n = ty_pki_default_sans("10.0.0.7", &v);
    cr_assert_geq(n, 3);
    cr_assert_str_eq(v[0], "10.0.0.7");
    cr_assert_str_eq(v[1], "localhost");
    cr_assert_str_eq(v[2], "127.0.0.1");
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
    n = ty_pki_default_sans("0.0.0.0", &v);
    cr_assert_str_eq(v[0], "localhost");
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
    n = ty_pki_default_sans("127.0.0.1", &v);
    cr_assert_str_eq(v[0], "127.0.0.1");
    cr_assert_str_eq(v[1], "localhost");
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            cr_assert_str_neq(v[i], v[j]);
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}
