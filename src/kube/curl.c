#include "kube/kube_int.h"

#include <dlfcn.h>
#include <stddef.h>

ty_curl_api ty_curl;

static const struct {
    const char *name;
    size_t offset;
} symbols[] = {
#define SYM(field, name) {name, offsetof(ty_curl_api, field)}
    SYM(global_init, "curl_global_init"),
    SYM(easy_init, "curl_easy_init"),
    SYM(easy_setopt, "curl_easy_setopt"),
    SYM(easy_getinfo, "curl_easy_getinfo"),
    SYM(easy_cleanup, "curl_easy_cleanup"),
    SYM(easy_strerror, "curl_easy_strerror"),
    SYM(slist_append, "curl_slist_append"),
    SYM(slist_free_all, "curl_slist_free_all"),
    SYM(multi_init, "curl_multi_init"),
    SYM(multi_cleanup, "curl_multi_cleanup"),
    SYM(multi_add_handle, "curl_multi_add_handle"),
    SYM(multi_remove_handle, "curl_multi_remove_handle"),
    SYM(multi_setopt, "curl_multi_setopt"),
    SYM(multi_socket_action, "curl_multi_socket_action"),
    SYM(multi_info_read, "curl_multi_info_read"),
    SYM(multi_assign, "curl_multi_assign"),
#undef SYM
};

int ty_curl_load(ty_error *err)
{
    static void *lib;
    if (lib)
        return 0;
    /* The sonames of Debian's libcurl4 (OpenSSL) and libcurl3-gnutls. */
    void *h = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (!h)
        h = dlopen("libcurl-gnutls.so.4", RTLD_NOW | RTLD_LOCAL);
    if (!h)
        return ty_fail(err, "load libcurl (install libcurl4): %s", dlerror());
    for (size_t i = 0; i < sizeof symbols / sizeof symbols[0]; i++) {
        void *fn = dlsym(h, symbols[i].name);
        if (!fn) {
            dlclose(h);
            return ty_fail(err, "libcurl has no %s", symbols[i].name);
        }
        *(void **)((char *)&ty_curl + symbols[i].offset) = fn;
    }
    /* Not CURL_GLOBAL_ALL's SSL part twice: libcurl initialises its TLS library itself. */
    if (ty_curl.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        dlclose(h);
        return ty_fail(err, "initialise libcurl");
    }
    lib = h;
    return 0;
}
