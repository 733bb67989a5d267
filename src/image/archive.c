#include <dlfcn.h>

#include "image/image_int.h"

ty_archive_api ty_ar;

int ty_archive_load(ty_error *err)
{
    static void *lib;
    if (lib)
        return 0;
    void *h = dlopen("libarchive.so.13", RTLD_NOW | RTLD_LOCAL);
    if (!h)
        return ty_fail(err, "load libarchive (install libarchive13): %s", dlerror());
    struct {
        void **slot;
        const char *name;
    } syms[] = {
#define SYM(f) {(void **)&ty_ar.f, "archive_" #f}
        SYM(read_new),           SYM(read_support_filter_all), SYM(read_support_format_tar),
        SYM(read_support_format_raw), SYM(read_open_fd),       SYM(read_next_header),
        SYM(read_data),          SYM(read_data_block),         SYM(read_free),
        SYM(error_string),       SYM(entry_pathname),          SYM(entry_filetype),
        SYM(entry_size),         SYM(entry_hardlink),          SYM(entry_symlink),
        SYM(entry_set_pathname), SYM(write_disk_new),          SYM(write_disk_set_options),
        SYM(write_header),       SYM(write_data_block),        SYM(write_finish_entry),
        SYM(write_free),
#undef SYM
    };
    for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
        *syms[i].slot = dlsym(h, syms[i].name);
        if (!*syms[i].slot) {
            dlclose(h);
            return ty_fail(err, "libarchive.so.13 lacks %s", syms[i].name);
        }
    }
    lib = h;
    return 0;
}
