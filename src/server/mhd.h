/* libmicrohttpd, loaded when the API server starts rather than linked into the binary.
 *
 * Why: libmicrohttpd brings GnuTLS and its seven libraries along, and loading them costs about
 * 5 ms at every exec of trainyard (measured: an empty program linked against them starts in
 * 6.2 ms instead of 1.1 ms). trainyard is exec'd once per pod, as its supervisor, and once per
 * `trainyard run`, neither of which serves HTTP; so only `trainyard server` pays for it.
 *
 * Include this header instead of <microhttpd.h> in the server: the MHD_* calls it uses are
 * redirected to pointers filled by ty_mhd_load(). */
#ifndef TY_SERVER_MHD_H
#define TY_SERVER_MHD_H

#include <microhttpd.h>

#include "base/error.h"

typedef struct ty_mhd_api {
    __typeof__(MHD_start_daemon) *start_daemon;
    __typeof__(MHD_stop_daemon) *stop_daemon;
    __typeof__(MHD_run) *run;
    __typeof__(MHD_get_timeout) *get_timeout;
    __typeof__(MHD_get_daemon_info) *get_daemon_info;
    __typeof__(MHD_lookup_connection_value) *lookup_connection_value;
    __typeof__(MHD_queue_response) *queue_response;
    __typeof__(MHD_create_response_from_buffer) *create_response_from_buffer;
    __typeof__(MHD_create_response_from_callback) *create_response_from_callback;
    __typeof__(MHD_add_response_header) *add_response_header;
    __typeof__(MHD_destroy_response) *destroy_response;
    __typeof__(MHD_suspend_connection) *suspend_connection;
    __typeof__(MHD_resume_connection) *resume_connection;
    __typeof__(MHD_get_connection_info) *get_connection_info;
} ty_mhd_api;

extern ty_mhd_api ty_mhd;

/* Loads the library once (later calls return at once). -1 with a message naming the library
 * when it or one of its functions is missing. */
int ty_mhd_load(ty_error *err);

#define MHD_start_daemon(...) ty_mhd.start_daemon(__VA_ARGS__)
#define MHD_stop_daemon(...) ty_mhd.stop_daemon(__VA_ARGS__)
#define MHD_run(...) ty_mhd.run(__VA_ARGS__)
#define MHD_get_timeout(...) ty_mhd.get_timeout(__VA_ARGS__)
#define MHD_get_daemon_info(...) ty_mhd.get_daemon_info(__VA_ARGS__)
#define MHD_lookup_connection_value(...) ty_mhd.lookup_connection_value(__VA_ARGS__)
#define MHD_queue_response(...) ty_mhd.queue_response(__VA_ARGS__)
#define MHD_create_response_from_buffer(...) ty_mhd.create_response_from_buffer(__VA_ARGS__)
#define MHD_create_response_from_callback(...) ty_mhd.create_response_from_callback(__VA_ARGS__)
#define MHD_add_response_header(...) ty_mhd.add_response_header(__VA_ARGS__)
#define MHD_destroy_response(...) ty_mhd.destroy_response(__VA_ARGS__)
#define MHD_suspend_connection(...) ty_mhd.suspend_connection(__VA_ARGS__)
#define MHD_resume_connection(...) ty_mhd.resume_connection(__VA_ARGS__)
#define MHD_get_connection_info(...) ty_mhd.get_connection_info(__VA_ARGS__)

#endif
