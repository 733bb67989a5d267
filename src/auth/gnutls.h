/* GnuTLS, loaded when a credential is first made or checked rather than linked into the binary
 * (as libmicrohttpd is, server/mhd.h, and for the same reason: linking GnuTLS costs every exec
 * of trainyard ~5 ms, and trainyard is exec'd once per pod as its supervisor). The server
 * loads it anyway for TLS, so it pays nothing more there.
 *
 * Include this header instead of <gnutls/...> in src/auth: the gnutls_* calls used here are
 * redirected to pointers filled by ty_gnutls_load(). */
#ifndef TY_AUTH_GNUTLS_H
#define TY_AUTH_GNUTLS_H

#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "base/error.h"

typedef struct ty_gnutls_api {
    gnutls_free_function free_fn; /* gnutls_free: a variable in the library, not a function */
    __typeof__(gnutls_hash_fast) *hash_fast;
    __typeof__(gnutls_strerror) *strerror;
    __typeof__(gnutls_x509_privkey_init) *x509_privkey_init;
    __typeof__(gnutls_x509_privkey_deinit) *x509_privkey_deinit;
    __typeof__(gnutls_x509_privkey_generate) *x509_privkey_generate;
    __typeof__(gnutls_x509_privkey_export2) *x509_privkey_export2;
    __typeof__(gnutls_x509_privkey_import) *x509_privkey_import;
    __typeof__(gnutls_privkey_init) *privkey_init;
    __typeof__(gnutls_privkey_deinit) *privkey_deinit;
    __typeof__(gnutls_privkey_import_x509) *privkey_import_x509;
    __typeof__(gnutls_privkey_sign_data) *privkey_sign_data;
    __typeof__(gnutls_pubkey_init) *pubkey_init;
    __typeof__(gnutls_pubkey_deinit) *pubkey_deinit;
    __typeof__(gnutls_pubkey_import_privkey) *pubkey_import_privkey;
    __typeof__(gnutls_pubkey_get_pk_algorithm) *pubkey_get_pk_algorithm;
    __typeof__(gnutls_pubkey_import_x509) *pubkey_import_x509;
    __typeof__(gnutls_pubkey_export2) *pubkey_export2;
    __typeof__(gnutls_pubkey_verify_data2) *pubkey_verify_data2;
    __typeof__(gnutls_decode_rs_value) *decode_rs_value;
    __typeof__(gnutls_encode_rs_value) *encode_rs_value;
    __typeof__(gnutls_x509_crt_init) *x509_crt_init;
    __typeof__(gnutls_x509_crt_deinit) *x509_crt_deinit;
    __typeof__(gnutls_x509_crt_set_version) *x509_crt_set_version;
    __typeof__(gnutls_x509_crt_set_serial) *x509_crt_set_serial;
    __typeof__(gnutls_x509_crt_set_activation_time) *x509_crt_set_activation_time;
    __typeof__(gnutls_x509_crt_set_expiration_time) *x509_crt_set_expiration_time;
    __typeof__(gnutls_x509_crt_set_dn_by_oid) *x509_crt_set_dn_by_oid;
    __typeof__(gnutls_x509_crt_set_key) *x509_crt_set_key;
    __typeof__(gnutls_x509_crt_set_basic_constraints) *x509_crt_set_basic_constraints;
    __typeof__(gnutls_x509_crt_set_key_usage) *x509_crt_set_key_usage;
    __typeof__(gnutls_x509_crt_set_subject_key_id) *x509_crt_set_subject_key_id;
    __typeof__(gnutls_x509_crt_set_authority_key_id) *x509_crt_set_authority_key_id;
    __typeof__(gnutls_x509_crt_set_subject_alt_name) *x509_crt_set_subject_alt_name;
    __typeof__(gnutls_x509_crt_set_key_purpose_oid) *x509_crt_set_key_purpose_oid;
    __typeof__(gnutls_x509_crt_sign2) *x509_crt_sign2;
    __typeof__(gnutls_x509_crt_export2) *x509_crt_export2;
    __typeof__(gnutls_x509_crt_import) *x509_crt_import;
    __typeof__(gnutls_x509_crt_get_dn_by_oid) *x509_crt_get_dn_by_oid;
    __typeof__(gnutls_x509_crt_get_activation_time) *x509_crt_get_activation_time;
    __typeof__(gnutls_x509_crt_get_expiration_time) *x509_crt_get_expiration_time;
    __typeof__(gnutls_x509_crt_get_key_purpose_oid) *x509_crt_get_key_purpose_oid;
    __typeof__(gnutls_x509_crt_verify) *x509_crt_verify;
    __typeof__(gnutls_x509_crt_get_subject_key_id) *x509_crt_get_subject_key_id;
    __typeof__(gnutls_x509_crt_check_hostname) *x509_crt_check_hostname;
    __typeof__(gnutls_x509_crt_check_ip) *x509_crt_check_ip;
    __typeof__(gnutls_certificate_get_peers) *certificate_get_peers;
} ty_gnutls_api;

extern ty_gnutls_api ty_gnutls;

/* Loads the library once (later calls return at once). -1 with a message naming the library
 * when it or one of its functions is missing. */
int ty_gnutls_load(ty_error *err);

#define gnutls_hash_fast(...) ty_gnutls.hash_fast(__VA_ARGS__)
#define gnutls_certificate_get_peers(...) ty_gnutls.certificate_get_peers(__VA_ARGS__)
#define gnutls_strerror(...) ty_gnutls.strerror(__VA_ARGS__)
#define gnutls_x509_privkey_init(...) ty_gnutls.x509_privkey_init(__VA_ARGS__)
#define gnutls_x509_privkey_deinit(...) ty_gnutls.x509_privkey_deinit(__VA_ARGS__)
#define gnutls_x509_privkey_generate(...) ty_gnutls.x509_privkey_generate(__VA_ARGS__)
#define gnutls_x509_privkey_export2(...) ty_gnutls.x509_privkey_export2(__VA_ARGS__)
#define gnutls_x509_privkey_import(...) ty_gnutls.x509_privkey_import(__VA_ARGS__)
#define gnutls_privkey_init(...) ty_gnutls.privkey_init(__VA_ARGS__)
#define gnutls_privkey_deinit(...) ty_gnutls.privkey_deinit(__VA_ARGS__)
#define gnutls_privkey_import_x509(...) ty_gnutls.privkey_import_x509(__VA_ARGS__)
#define gnutls_privkey_sign_data(...) ty_gnutls.privkey_sign_data(__VA_ARGS__)
#define gnutls_pubkey_init(...) ty_gnutls.pubkey_init(__VA_ARGS__)
#define gnutls_pubkey_deinit(...) ty_gnutls.pubkey_deinit(__VA_ARGS__)
#define gnutls_pubkey_import_privkey(...) ty_gnutls.pubkey_import_privkey(__VA_ARGS__)
#define gnutls_pubkey_get_pk_algorithm(...) ty_gnutls.pubkey_get_pk_algorithm(__VA_ARGS__)
#define gnutls_pubkey_import_x509(...) ty_gnutls.pubkey_import_x509(__VA_ARGS__)
#define gnutls_pubkey_export2(...) ty_gnutls.pubkey_export2(__VA_ARGS__)
#define gnutls_pubkey_verify_data2(...) ty_gnutls.pubkey_verify_data2(__VA_ARGS__)
#define gnutls_decode_rs_value(...) ty_gnutls.decode_rs_value(__VA_ARGS__)
#define gnutls_encode_rs_value(...) ty_gnutls.encode_rs_value(__VA_ARGS__)
#define gnutls_x509_crt_init(...) ty_gnutls.x509_crt_init(__VA_ARGS__)
#define gnutls_x509_crt_deinit(...) ty_gnutls.x509_crt_deinit(__VA_ARGS__)
#define gnutls_x509_crt_set_version(...) ty_gnutls.x509_crt_set_version(__VA_ARGS__)
#define gnutls_x509_crt_set_serial(...) ty_gnutls.x509_crt_set_serial(__VA_ARGS__)
#define gnutls_x509_crt_set_activation_time(...) ty_gnutls.x509_crt_set_activation_time(__VA_ARGS__)
#define gnutls_x509_crt_set_expiration_time(...) ty_gnutls.x509_crt_set_expiration_time(__VA_ARGS__)
#define gnutls_x509_crt_set_dn_by_oid(...) ty_gnutls.x509_crt_set_dn_by_oid(__VA_ARGS__)
#define gnutls_x509_crt_set_key(...) ty_gnutls.x509_crt_set_key(__VA_ARGS__)
#define gnutls_x509_crt_set_basic_constraints(...) \
    ty_gnutls.x509_crt_set_basic_constraints(__VA_ARGS__)
#define gnutls_x509_crt_set_key_usage(...) ty_gnutls.x509_crt_set_key_usage(__VA_ARGS__)
#define gnutls_x509_crt_set_subject_key_id(...) ty_gnutls.x509_crt_set_subject_key_id(__VA_ARGS__)
#define gnutls_x509_crt_set_authority_key_id(...) \
    ty_gnutls.x509_crt_set_authority_key_id(__VA_ARGS__)
#define gnutls_x509_crt_set_subject_alt_name(...) \
    ty_gnutls.x509_crt_set_subject_alt_name(__VA_ARGS__)
#define gnutls_x509_crt_set_key_purpose_oid(...) ty_gnutls.x509_crt_set_key_purpose_oid(__VA_ARGS__)
#define gnutls_x509_crt_sign2(...) ty_gnutls.x509_crt_sign2(__VA_ARGS__)
#define gnutls_x509_crt_export2(...) ty_gnutls.x509_crt_export2(__VA_ARGS__)
#define gnutls_x509_crt_import(...) ty_gnutls.x509_crt_import(__VA_ARGS__)
#define gnutls_x509_crt_get_dn_by_oid(...) ty_gnutls.x509_crt_get_dn_by_oid(__VA_ARGS__)
#define gnutls_x509_crt_get_activation_time(...) ty_gnutls.x509_crt_get_activation_time(__VA_ARGS__)
#define gnutls_x509_crt_get_expiration_time(...) ty_gnutls.x509_crt_get_expiration_time(__VA_ARGS__)
#define gnutls_x509_crt_get_key_purpose_oid(...) ty_gnutls.x509_crt_get_key_purpose_oid(__VA_ARGS__)
#define gnutls_x509_crt_verify(...) ty_gnutls.x509_crt_verify(__VA_ARGS__)
#define gnutls_x509_crt_get_subject_key_id(...) ty_gnutls.x509_crt_get_subject_key_id(__VA_ARGS__)
#define gnutls_x509_crt_check_hostname(...) ty_gnutls.x509_crt_check_hostname(__VA_ARGS__)
#define gnutls_x509_crt_check_ip(...) ty_gnutls.x509_crt_check_ip(__VA_ARGS__)

#endif
