/* Bearer tokens, as kube-apiserver authenticates them.
 *
 * - A static token file in kube-apiserver's `--token-auth-file` format: CSV records
 *   `token,user,uid[,"group1,group2"]` (RFC 4180 quoting, as Go's encoding/csv reads it; blank
 *   lines skipped; at least 3 columns; a record with an empty token skipped with a warning; a
 *   token given twice: the last record wins, with a warning). Errors name file:line.
 * - Minted tokens (`trainyard token create`): random 256-bit tokens of which only the SHA-256
 *   is kept, one JSON line each in a file of the data dir (mode 0600, appended under a lock so
 *   that two `token create` never lose one), with an optional expiry. The server reads the
 *   file again when a token is unknown and the file changed since.
 * - ServiceAccount tokens: JWTs signed ES256 with the data dir's key (P-256), with the claims
 *   of a projected token (iss, sub = system:serviceaccount:<ns>:<name>, aud, exp, iat, nbf,
 *   jti, and `kubernetes.io` {namespace, serviceaccount {name, uid}, pod {name, uid}}), checked
 *   by signature, issuer, audience and time without storing them.
 *
 * A token is looked up by its SHA-256 and the digests compared in constant time; no token is
 * kept in memory in clear. Authentication adds `system:authenticated` to every identity found
 * here; that is the caller's (the server's) job, not this module's.
 *
 * Crypto is GnuTLS's, loaded at run time (auth/gnutls.h). Ownership: identities and strings
 * returned are the caller's (ty_identity_clear). */
#ifndef TY_AUTH_TOKEN_H
#define TY_AUTH_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

/* Who a credential says the caller is. */
typedef struct ty_identity {
    char *name;
    char *uid;
    char **groups;
    size_t ngroups;
} ty_identity;

void ty_identity_clear(ty_identity *id);

/* The SHA-256 of `len` bytes. -1 when GnuTLS cannot be loaded. */
int ty_sha256(const void *data, size_t len, unsigned char out[32], ty_error *err);

/* ---- --token-auth-file ---- */

typedef struct ty_token_file ty_token_file;

/* Reads and checks the whole file (at most 16 MiB); nothing is kept on an error. */
int ty_token_file_load(const char *path, ty_token_file **out, ty_error *err);
/* Whether `token` is in the file; if so, fills *out (when not NULL) with a copy. */
bool ty_token_file_lookup(const ty_token_file *f, const char *token, ty_identity *out);
void ty_token_file_free(ty_token_file *f);

/* ---- minted tokens ---- */

typedef struct ty_token_store ty_token_store;

/* Mints a token for `user` with `groups`, valid until `expires` (Unix seconds; 0: never),
 * appends its digest to `path` (created 0600) and returns the token (caller frees). */
int ty_token_mint(const char *path, const char *user, const char *const *groups,
                  size_t ngroups, int64_t expires, char **token, ty_error *err);

/* Opens the minted tokens' file (missing: no tokens yet). A file that others may read or
 * write (mode & 077) is refused, saying how to fix it. */
int ty_token_store_open(const char *path, ty_token_store **out, ty_error *err);
/* 1 and *out (when not NULL) filled when `token` was minted and has not expired at `now`
 * (Unix seconds), 0 when not, -1 when the file changed and cannot be read again. */
int ty_token_store_lookup(ty_token_store *s, const char *token, int64_t now, ty_identity *out,
                          ty_error *err);
void ty_token_store_free(ty_token_store *s);

/* ---- ServiceAccount tokens ---- */

typedef struct ty_sa_signer ty_sa_signer;

/* Loads the signing key at `key_path` (PEM), or when it is missing and `create` is set makes
 * one (ECDSA P-256, mode 0600). `issuer` is the `iss` of the tokens signed and required of the
 * tokens verified. */
int ty_sa_signer_open(const char *key_path, bool create, const char *issuer, ty_sa_signer **out,
                      ty_error *err);
void ty_sa_signer_free(ty_sa_signer *s);

/* What a service account token says, and what binds it (the pod may be NULL: a token not bound
 * to a pod). */
typedef struct ty_sa_claims {
    const char *ns, *name, *uid;
    const char *pod_name, *pod_uid;
    const char *const *audiences;
    size_t naudiences;
    int64_t issued_at, expires; /* Unix seconds */
} ty_sa_claims;

/* A signed JWT for `c` (caller frees). */
int ty_sa_token_sign(const ty_sa_signer *s, const ty_sa_claims *c, char **jwt, ty_error *err);

/* The pod a verified token is bound to, for the caller to check that it still exists with
 * that uid (as kube-apiserver does); empty strings when none. Caller frees the fields. */
typedef struct ty_sa_binding {
    char *pod_name, *pod_uid;
} ty_sa_binding;

/* Verifies `jwt`: ES256 by this signer's key (any other alg, "none" included, is refused),
 * issuer, `audience` among its aud, not before nbf, not after exp (at `now`), a well-formed
 * subject matching its `kubernetes.io` claims. Fills *out with system:serviceaccount:<ns>:<name>,
 * the service account's uid and the groups system:serviceaccounts and
 * system:serviceaccounts:<ns>; `binding` (may be NULL) with the pod. */
int ty_sa_token_verify(const ty_sa_signer *s, const char *jwt, const char *audience,
                       int64_t now, ty_identity *out, ty_sa_binding *binding, ty_error *err);

#endif
