#include "server/mhd.h"

#include <dlfcn.h>
#include <stddef.h>

ty_mhd_api ty_mhd;

static const struct {
    const char *name;
    size_t offset;
} symbols[] = {
#define SYM(field, name) {name, offsetof(ty_mhd_api, field)}
    SYM(start_daemon, "MHD_start_daemon"),
    SYM(stop_daemon, "MHD_stop_daemon"),
    SYM(run, "MHD_run"),
    SYM(get_timeout, "MHD_get_timeout"),
    SYM(get_daemon_info, "MHD_get_daemon_info"),
    SYM(lookup_connection_value, "MHD_lookup_connection_value"),
    SYM(queue_response, "MHD_queue_response"),
    SYM(create_response_from_buffer, "MHD_create_response_from_buffer"),
    SYM(create_response_from_callback, "MHD_create_response_from_callback"),
    SYM(add_response_header, "MHD_add_response_header"),
    SYM(destroy_response, "MHD_destroy_response"),
    SYM(suspend_connection, "MHD_suspend_connection"),
    SYM(resume_connection, "MHD_resume_connection"),
    SYM(get_connection_info, "MHD_get_connection_info"),
#undef SYM
};

int ty_mhd_load(ty_error *err)
{
    static void *lib;
    if (lib)
        return 0;
    /* The soname of the library Debian's libmicrohttpd-dev builds against. */
    void *h = dlopen("libmicrohttpd.so.12", RTLD_NOW | RTLD_LOCAL);
    if (!h)
        return ty_fail(err, "load libmicrohttpd (install libmicrohttpd12): %s", dlerror());
    for (size_t i = 0; i < sizeof symbols / sizeof symbols[0]; i++) {
        void *fn = dlsym(h, symbols[i].name);
        if (!fn) {
            dlclose(h);
            return ty_fail(err, "libmicrohttpd has no %s", symbols[i].name);
        }
        *(void **)((char *)&ty_mhd + symbols[i].offset) = fn;
    }
    lib = h;
    return 0;
}
