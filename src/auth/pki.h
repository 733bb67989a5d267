/* The server's certificates, as kubeadm lays them out, through GnuTLS (loaded at run time,
 * auth/gnutls.h).
 *
 * A directory (DIR/pki, mode 0700) holds ca.crt/ca.key (a self-signed CA, 10 years) and
 * apiserver.crt/apiserver.key (the serving certificate, 1 year, signed by the CA, with the
 * asked SANs: DNS names and IP addresses). All keys are ECDSA P-256 and every file is 0600.
 * What is missing is made at the first start; a serving certificate that no longer covers a
 * SAN asked for (the listen address changed) or has expired is made again with the same CA.
 * Validity starts 5 minutes back, as kubeadm's, for clocks a little behind.
 *
 * Client certificates are signed by the same CA with CN = the user and one O per group (what
 * kube-apiserver reads them as) and the client-auth key purpose; ty_pki_verify_client accepts
 * only those: signed by this CA, within their validity at `now`, for client auth, with a CN.
 *
 * Ownership: strings returned are the caller's. */
#ifndef TY_AUTH_PKI_H
#define TY_AUTH_PKI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/token.h"
#include "base/error.h"

typedef struct ty_pki ty_pki;

/* Opens (making what is missing) the certificates in `dir`; `sans` are the serving
 * certificate's subject alternative names (IPv4/IPv6 literals or DNS names), `now` Unix
 * seconds. */
int ty_pki_open(const char *dir, const char *const *sans, size_t nsans, int64_t now,
                ty_pki **out, ty_error *err);
void ty_pki_free(ty_pki *p);

/* The SANs a server listening on `listen_host` (an address or name; NULL, "", 0.0.0.0 or ::
 * mean every address) should have: it, localhost, 127.0.0.1 and this machine's host name,
 * without duplicates. Returns the count; *out (caller frees each and the array). */
size_t ty_pki_default_sans(const char *listen_host, char ***out);

/* The CA certificate (PEM: certificate-authority-data of a kubeconfig, base64-encoded) and the
 * serving certificate's and key's paths (for the TLS listener). Owned by `p`. */
const char *ty_pki_ca_pem(const ty_pki *p);
const char *ty_pki_serving_cert_path(const ty_pki *p);
const char *ty_pki_serving_key_path(const ty_pki *p);

/* A client certificate and its new key (both PEM, caller frees) for `user` in `groups`,
 * valid from `now` - 5 min for `valid_s` seconds. */
int ty_pki_client_cert(const ty_pki *p, const char *user, const char *const *groups,
                       size_t ngroups, int64_t now, int64_t valid_s, char **cert_pem,
                       char **key_pem, ty_error *err);

/* Verifies a client certificate (`pem`: PEM text, else DER) at `now`; fills *out with CN as
 * the name and the O values as groups (uid empty). */
int ty_pki_verify_client(const ty_pki *p, const void *cert, size_t len, bool pem, int64_t now,
                         ty_identity *out, ty_error *err);

/* The client certificate a TLS session (a gnutls_session_t: libmicrohttpd's
 * MHD_CONNECTION_INFO_GNUTLS_SESSION) was given, verified as ty_pki_verify_client does: 1 and
 * *out filled when there is a valid one, 0 when the client sent none, -1 when it sent one this
 * CA did not sign (or expired, ...). */
int ty_pki_verify_session(const ty_pki *p, void *session, int64_t now, ty_identity *out,
                          ty_error *err);

#endif
