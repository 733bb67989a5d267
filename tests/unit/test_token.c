/* Bearer tokens (auth/token.h): the static token file, minted tokens, ServiceAccount JWTs;
 * and base/base64.h which they use. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/token.h"
#include "base/base64.h"
#include "base/buf.h"
#include "base/fs.h"
#include "base/mem.h"

static char dir[64];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/ty-token-XXXXXX");
    cr_assert(mkdtemp(dir));
}

static void teardown(void) { ty_rm_tree(dir); }

TestSuite(token, .init = setup, .fini = teardown);

static char *write_file(const char *name, const char *text)
{
    char *path = ty_asprintf("%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    cr_assert(f);
    fputs(text, f);
    fclose(f);
    return path;
}

Test(token, base64)
{
    static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const std[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=",
                                      "Zm9vYmFy"};
    for (size_t i = 0; i < TY_ARRAY_LEN(plain); i++) {
        char *e = ty_base64_encode(plain[i], strlen(plain[i]), false);
        cr_assert_str_eq(e, std[i]);
        size_t n;
        unsigned char *d = ty_base64_decode(e, strlen(e), false, &n);
        cr_assert(d);
        cr_assert_eq(n, strlen(plain[i]));
        cr_assert_eq(memcmp(d, plain[i], n), 0);
        free(d);
        free(e);
        e = ty_base64_encode(plain[i], strlen(plain[i]), true);
        cr_assert_null(strchr(e, '='));
        d = ty_base64_decode(e, strlen(e), true, &n);
        cr_assert(d && n == strlen(plain[i]));
        free(d);
        free(e);
    }
    unsigned char hi[] = {0xfb, 0xff};
    char *e = ty_base64_encode(hi, 2, true);
    cr_assert_str_eq(e, "-_8");
    free(e);
    size_t n;
    cr_assert_null(ty_base64_decode("Zg=", 3, false, &n));
    cr_assert_null(ty_base64_decode("Z", 1, true, &n));
    cr_assert_null(ty_base64_decode("Zh", 2, true, &n), "non-zero trailing bits");
    cr_assert_null(ty_base64_decode("Z+", 2, true, &n), "+ is not in the URL alphabet");
}

Test(token, token_file)
{
    TY_AUTOFREE char *path = write_file(
        "tokens.csv",
        "t0k3n-alice,alice,1001,\"team-a,system:masters\"\n"
        "\n"
        "t0k3n-bob,bob,1002\r\n"
        "\"t0k,en\"\"q\",carol,1003,\"team-c\",extra\n"
        ",nobody,1004\n"
        "t0k3n-dup,first,1\n"
        "t0k3n-dup,second,2,\"a,,b\"\n");
    ty_token_file *f = NULL;
    ty_error err = TY_ERROR_INIT;
    cr_assert_eq(ty_token_file_load(path, &f, &err), 0, "%s", err.msg);
    ty_identity id = {0};
    cr_assert(ty_token_file_lookup(f, "t0k3n-alice", &id));
    cr_assert_str_eq(id.name, "alice");
    cr_assert_str_eq(id.uid, "1001");
    cr_assert_eq(id.ngroups, 2);
    cr_assert_str_eq(id.groups[0], "team-a");
    cr_assert_str_eq(id.groups[1], "system:masters");
    ty_identity_clear(&id);
    cr_assert(ty_token_file_lookup(f, "t0k3n-bob", &id));
    cr_assert_str_eq(id.uid, "1002");
    cr_assert_eq(id.ngroups, 0);
    ty_identity_clear(&id);
    cr_assert(ty_token_file_lookup(f, "t0k,en\"q", &id));
    cr_assert_str_eq(id.name, "carol");
    ty_identity_clear(&id);
    cr_assert(ty_token_file_lookup(f, "t0k3n-dup", &id));
    cr_assert_str_eq(id.name, "second");
    cr_assert_eq(id.ngroups, 2);
    ty_identity_clear(&id);
    cr_assert_not(ty_token_file_lookup(f, "", NULL));
    cr_assert_not(ty_token_file_lookup(f, "t0k3n-alic", NULL));
    cr_assert_not(ty_token_file_lookup(f, "t0k3n-alice ", NULL));
    ty_token_file_free(f);
}

Test(token, token_file_errors)
{
    static const char *const cases[][2] = {
        {"a,b,c\nd,e\n", ":2: must have at least 3 columns (token, user name, user uid), "
                         "found 2"},
        {"a,b,c\n\nx,y\"z,w\n", ":3: bare \" in non-quoted-field"},
        {"\"a,b,c\n", ":1: extraneous or missing \" in quoted-field"},
        {"\"a\"x,b,c\n", ":1: extraneous or missing \" in quoted-field"},
    };
    for (size_t i = 0; i < TY_ARRAY_LEN(cases); i++) {
        TY_AUTOFREE char *path = write_file("bad.csv", cases[i][0]);
        TY_AUTOFREE char *want = ty_asprintf("%s%s", path, cases[i][1]);
        ty_token_file *f = (ty_token_file *)1;
        ty_error err = TY_ERROR_INIT;
        cr_assert_eq(ty_token_file_load(path, &f, &err), -1, "case %zu", i);
        cr_assert_null(f);
        cr_assert_str_eq(err.msg, want, "case %zu", i);
        ty_error_clear(&err);
    }
    ty_token_file *f = NULL;
    ty_error err = TY_ERROR_INIT;
    TY_AUTOFREE char *missing = ty_asprintf("%s/none.csv", dir);
    cr_assert_eq(ty_token_file_load(missing, &f, &err), -1);
    cr_assert(strstr(err.msg, "none.csv: No such file or directory"), "%s", err.msg);
    ty_error_clear(&err);
}

Test(token, minted)
{
    TY_AUTOFREE char *path = ty_asprintf("%s/tokens", dir);
    ty_error err = TY_ERROR_INIT;
    ty_token_store *s = NULL;
    cr_assert_eq(ty_token_store_open(path, &s, &err), 0, "%s", err.msg);
    const char *groups[] = {"team-a", "ml"};
    char *alice = NULL, *bob = NULL;
    cr_assert_eq(ty_token_mint(path, "alice", groups, 2, 0, &alice, &err), 0, "%s", err.msg);
    cr_assert_eq(strncmp(alice, "ty_", 3), 0);
    cr_assert_eq(strlen(alice), 3 + 43);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600);
    /* minted after the store was opened: found by reading the file again */
    ty_identity id = {0};
    cr_assert_eq(ty_token_store_lookup(s, alice, 1000, &id, &err), 1);
    cr_assert_str_eq(id.name, "alice");
    cr_assert_eq(id.ngroups, 2);
    cr_assert_str_eq(id.groups[1], "ml");
    cr_assert_eq(strlen(id.uid), 36);
    ty_identity_clear(&id);
    cr_assert_eq(ty_token_mint(path, "bob", NULL, 0, 2000, &bob, &err), 0);
    cr_assert_str_neq(alice, bob);
    cr_assert_eq(ty_token_store_lookup(s, bob, 1999, NULL, &err), 1);
    cr_assert_eq(ty_token_store_lookup(s, bob, 2000, NULL, &err), 0, "expired");
    cr_assert_eq(ty_token_store_lookup(s, "ty_nope", 1000, NULL, &err), 0);
    /* only digests are stored */
    ty_buf text = TY_BUF_INIT;
    cr_assert_eq(ty_buf_read_file(&text, path), 0);
    cr_assert_null(strstr(text.data, alice + 3));
    cr_assert_null(strstr(text.data, bob + 3));
    ty_buf_free(&text);
    ty_token_store_free(s);
    /* a fresh store reads both */
    cr_assert_eq(ty_token_store_open(path, &s, &err), 0);
    cr_assert_eq(ty_token_store_lookup(s, alice, 5000, NULL, &err), 1);
    cr_assert_eq(ty_token_store_lookup(s, bob, 5000, NULL, &err), 0);
    ty_token_store_free(s);
    /* a write cut short by a crash is skipped; a bad line is an error naming it */
    FILE *f = fopen(path, "a");
    fputs("{\"sha256\":\"ab", f);
    fclose(f);
    cr_assert_eq(ty_token_store_open(path, &s, &err), 0, "%s", err.msg);
    cr_assert_eq(ty_token_store_lookup(s, alice, 5000, NULL, &err), 1);
    ty_token_store_free(s);
    f = fopen(path, "a");
    fputs("\n", f);
    fclose(f);
    cr_assert_eq(ty_token_store_open(path, &s, &err), -1);
    TY_AUTOFREE char *want = ty_asprintf("%s:3: not a token record ({\"sha256\", \"user\", "
                                         "\"uid\", \"groups\", \"expires\"})", path);
    cr_assert_str_eq(err.msg, want);
    ty_error_clear(&err);
    /* others may not read it */
    cr_assert_eq(chmod(path, 0644), 0);
    cr_assert_eq(ty_token_store_open(path, &s, &err), -1);
    cr_assert(strstr(err.msg, "mode 0644 lets others read or write tokens; run chmod 600"),
              "%s", err.msg);
    ty_error_clear(&err);
    free(bob);
    cr_assert_eq(ty_token_mint(path, "", NULL, 0, 0, &bob, &err), -1);
    cr_assert_null(bob);
    ty_error_clear(&err);
    free(alice);
}

static const char *const AUD[] = {"https://kubernetes.default.svc.cluster.local"};
#define ISS "https://kubernetes.default.svc.cluster.local"

static ty_sa_signer *signer(const char *name)
{
    TY_AUTOFREE char *path = ty_asprintf("%s/%s", dir, name);
    ty_sa_signer *s = NULL;
    ty_error err = TY_ERROR_INIT;
    cr_assert_eq(ty_sa_signer_open(path, true, ISS, &s, &err), 0, "%s", err.msg);
    return s;
}

static char *sign(const ty_sa_signer *s, int64_t iat, int64_t exp)
{
    ty_sa_claims c = {.ns = "team-a", .name = "runner", .uid = "sa-uid", .pod_name = "w-0",
                      .pod_uid = "pod-uid", .audiences = AUD, .naudiences = 1,
                      .issued_at = iat, .expires = exp};
    char *jwt = NULL;
    ty_error err = TY_ERROR_INIT;
    cr_assert_eq(ty_sa_token_sign(s, &c, &jwt, &err), 0, "%s", err.msg);
    return jwt;
}

static char *verify_err(const ty_sa_signer *s, const char *jwt, const char *aud, int64_t now)
{
    ty_identity id;
    ty_error err = TY_ERROR_INIT;
    cr_assert_eq(ty_sa_token_verify(s, jwt, aud, now, &id, NULL, &err), -1, "%s accepted", jwt);
    cr_assert_null(id.name);
    return err.msg;
}

/* The JWT with its payload replaced by `payload` (JSON), signature kept. */
static char *with_payload(const char *jwt, const char *payload)
{
    const char *d1 = strchr(jwt, '.'), *d2 = strrchr(jwt, '.');
    TY_AUTOFREE char *p = ty_base64_encode(payload, strlen(payload), true);
    return ty_asprintf("%.*s.%s%s", (int)(d1 - jwt), jwt, p, d2);
}

Test(token, service_account_tokens)
{
    ty_sa_signer *s = signer("sa.key");
    TY_AUTOFREE char *key = ty_asprintf("%s/sa.key", dir);
    struct stat st;
    cr_assert_eq(stat(key, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600);
    char *jwt = sign(s, 1000, 4600);
    ty_identity id;
    ty_sa_binding b;
    ty_error err = TY_ERROR_INIT;
    cr_assert_eq(ty_sa_token_verify(s, jwt, AUD[0], 2000, &id, &b, &err), 0, "%s", err.msg);
    cr_assert_str_eq(id.name, "system:serviceaccount:team-a:runner");
    cr_assert_str_eq(id.uid, "sa-uid");
    cr_assert_eq(id.ngroups, 2);
    cr_assert_str_eq(id.groups[0], "system:serviceaccounts");
    cr_assert_str_eq(id.groups[1], "system:serviceaccounts:team-a");
    cr_assert_str_eq(b.pod_name, "w-0");
    cr_assert_str_eq(b.pod_uid, "pod-uid");
    ty_identity_clear(&id);
    free(b.pod_name);
    free(b.pod_uid);
    /* the claims as a projected token has them */
    const char *d1 = strchr(jwt, '.'), *d2 = strrchr(jwt, '.');
    size_t n;
    TY_AUTOFREE unsigned char *raw = ty_base64_decode(d1 + 1, (size_t)(d2 - d1 - 1), true, &n);
    json_t *cl = json_loads((char *)raw, 0, NULL);
    cr_assert_str_eq(json_string_value(json_object_get(cl, "sub")),
                     "system:serviceaccount:team-a:runner");
    cr_assert_eq(json_integer_value(json_object_get(cl, "exp")), 4600);
    cr_assert_str_eq(json_string_value(json_object_get(
                         json_object_get(json_object_get(cl, "kubernetes.io"), "pod"), "name")),
                     "w-0");
    json_decref(cl);

    /* reloaded from its file, the key verifies what it signed before */
    ty_sa_signer *again = signer("sa.key");
    cr_assert_eq(ty_sa_token_verify(again, jwt, AUD[0], 2000, &id, NULL, &err), 0, "%s",
                 err.msg);
    ty_identity_clear(&id);
    ty_sa_signer_free(again);

    /* refused */
    ty_sa_signer *other = signer("other.key");
    char *m = verify_err(other, jwt, AUD[0], 2000);
    cr_assert_str_eq(m, "service account token: not signed ES256 by this server's key");
    free(m);
    m = verify_err(s, jwt, AUD[0], 4601);
    cr_assert_str_eq(m, "service account token: expired");
    free(m);
    m = verify_err(s, jwt, AUD[0], 999);
    cr_assert_str_eq(m, "service account token: not valid yet");
    free(m);
    m = verify_err(s, jwt, "https://elsewhere", 2000);
    cr_assert_str_eq(m, "service account token: not for audience \"https://elsewhere\"");
    free(m);
    TY_AUTOFREE char *forged = with_payload(jwt, "{\"iss\":\"" ISS "\",\"sub\":"
                                            "\"system:serviceaccount:kube-system:admin\"}");
    m = verify_err(s, forged, AUD[0], 2000);
    cr_assert_str_eq(m, "service account token: the signature does not verify");
    free(m);
    /* alg none, or HS256 with the public key as secret: never */
    static const char *const hdrs[] = {"{\"alg\":\"none\"}", "{\"alg\":\"HS256\"}",
                                       "{\"alg\":\"RS256\"}"};
    for (size_t i = 0; i < TY_ARRAY_LEN(hdrs); i++) {
        TY_AUTOFREE char *h = ty_base64_encode(hdrs[i], strlen(hdrs[i]), true);
        TY_AUTOFREE char *bad = ty_asprintf("%s%.*s", h, (int)strlen(d1), d1);
        m = verify_err(s, bad, AUD[0], 2000);
        cr_assert_str_eq(m, "service account token: not signed ES256 by this server's key");
        free(m);
    }
    static const char *const malformed[] = {"", "a.b", "a.b.c.d", "x.y.z", "..."};
    for (size_t i = 0; i < TY_ARRAY_LEN(malformed); i++)
        free(verify_err(s, malformed[i], AUD[0], 2000));
    /* a key file others can read is refused */
    TY_AUTOFREE char *okey = ty_asprintf("%s/other.key", dir);
    cr_assert_eq(chmod(okey, 0640), 0);
    ty_sa_signer *none = NULL;
    cr_assert_eq(ty_sa_signer_open(okey, false, ISS, &none, &err), -1);
    cr_assert(strstr(err.msg, "mode 0640 lets others read the signing key"), "%s", err.msg);
    ty_error_clear(&err);
    TY_AUTOFREE char *nokey = ty_asprintf("%s/absent.key", dir);
    cr_assert_eq(ty_sa_signer_open(nokey, false, ISS, &none, &err), -1);
    ty_error_clear(&err);
    ty_sa_signer_free(other);
    free(jwt);
    ty_sa_signer_free(s);
}

Test(token, another_issuer)
{
    ty_sa_signer *s = signer("sa.key");
    char *jwt = sign(s, 1000, 4600);
    TY_AUTOFREE char *path = ty_asprintf("%s/sa.key", dir);
    ty_sa_signer *t = NULL;
    ty_error err = TY_ERROR_INIT;
    cr_assert_eq(ty_sa_signer_open(path, false, "https://other", &t, &err), 0);
    char *m = verify_err(t, jwt, AUD[0], 2000);
    cr_assert_str_eq(m, "service account token: issuer \"" ISS "\" is not this server's");
    free(m);
    ty_sa_signer_free(t);
    ty_sa_signer_free(s);
    free(jwt);
}
