/* GnuTLS loaded at run time (gnutls.h). */
#include "auth/gnutls.h"

#include <dlfcn.h>
#include <stddef.h>

ty_gnutls_api ty_gnutls;

static const struct {
    const char *name;
    size_t offset;
} symbols[] = {
#define SYM(field) {"gnutls_" #field, offsetof(ty_gnutls_api, field)}
    SYM(hash_fast),
    SYM(strerror),
    SYM(x509_privkey_init),
    SYM(x509_privkey_deinit),
    SYM(x509_privkey_generate),
    SYM(x509_privkey_export2),
    SYM(x509_privkey_import),
    SYM(privkey_init),
    SYM(privkey_deinit),
    SYM(privkey_import_x509),
    SYM(privkey_sign_data),
    SYM(pubkey_init),
    SYM(pubkey_deinit),
    SYM(pubkey_import_privkey),
    SYM(pubkey_get_pk_algorithm),
    SYM(pubkey_import_x509),
    SYM(pubkey_export2),
    SYM(pubkey_verify_data2),
    SYM(decode_rs_value),
    SYM(encode_rs_value),
    SYM(x509_crt_init),
    SYM(x509_crt_deinit),
    SYM(x509_crt_set_version),
    SYM(x509_crt_set_serial),
    SYM(x509_crt_set_activation_time),
    SYM(x509_crt_set_expiration_time),
    SYM(x509_crt_set_dn_by_oid),
    SYM(x509_crt_set_key),
    SYM(x509_crt_set_basic_constraints),
    SYM(x509_crt_set_key_usage),
    SYM(x509_crt_set_subject_key_id),
    SYM(x509_crt_set_authority_key_id),
    SYM(x509_crt_set_subject_alt_name),
    SYM(x509_crt_set_key_purpose_oid),
    SYM(x509_crt_sign2),
    SYM(x509_crt_export2),
    SYM(x509_crt_import),
    SYM(x509_crt_get_dn_by_oid),
    SYM(x509_crt_get_activation_time),
    SYM(x509_crt_get_expiration_time),
    SYM(x509_crt_get_key_purpose_oid),
    SYM(x509_crt_verify),
    SYM(x509_crt_get_subject_key_id),
    SYM(x509_crt_check_hostname),
    SYM(x509_crt_check_ip),
    SYM(certificate_get_peers),
#undef SYM
};

int ty_gnutls_load(ty_error *err)
{
    static void *lib;
    if (lib)
        return 0;
    /* The soname of the library Debian's libgnutls28-dev builds against. */
    void *h = dlopen("libgnutls.so.30", RTLD_NOW | RTLD_LOCAL);
    if (!h)
        return ty_fail(err, "load libgnutls (install libgnutls30): %s", dlerror());
    gnutls_free_function *free_var = dlsym(h, "gnutls_free");
    if (!free_var) {
        dlclose(h);
        return ty_fail(err, "libgnutls has no gnutls_free");
    }
    for (size_t i = 0; i < sizeof symbols / sizeof symbols[0]; i++) {
        void *fn = dlsym(h, symbols[i].name);
        if (!fn) {
            dlclose(h);
            return ty_fail(err, "libgnutls has no %s", symbols[i].name);
        }
        *(void **)((char *)&ty_gnutls + symbols[i].offset) = fn;
    }
    ty_gnutls.free_fn = *free_var;
    lib = h;
    return 0;
}
