/* The kube module's private parts: libcurl loaded at run time, shared by client.c and tests.
 *
 * Why dlopen: linked, libcurl (OpenSSL flavour, with its nghttp2, ssh, ldap, kerberos and
 * idn dependencies: 30 more shared objects) adds 6-8 ms to every exec of trainyard
 * (`bench/kube_curl_start.sh`), and trainyard is exec'd once per pod as its supervisor. Only
 * a process that talks to a cluster loads it, on its first client. */
#ifndef TY_KUBE_KUBE_INT_H
#define TY_KUBE_KUBE_INT_H

#define CURL_DISABLE_TYPECHECK 1
#include <curl/curl.h>

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "base/error.h"

typedef struct ty_curl_api {
    CURLcode (*global_init)(long flags);
    CURL *(*easy_init)(void);
    CURLcode (*easy_setopt)(CURL *h, CURLoption opt, ...);
    CURLcode (*easy_getinfo)(CURL *h, CURLINFO info, ...);
    void (*easy_cleanup)(CURL *h);
    const char *(*easy_strerror)(CURLcode code);
    struct curl_slist *(*slist_append)(struct curl_slist *l, const char *s);
    void (*slist_free_all)(struct curl_slist *l);
    CURLM *(*multi_init)(void);
    CURLMcode (*multi_cleanup)(CURLM *m);
    CURLMcode (*multi_add_handle)(CURLM *m, CURL *h);
    CURLMcode (*multi_remove_handle)(CURLM *m, CURL *h);
    CURLMcode (*multi_setopt)(CURLM *m, CURLMoption opt, ...);
    CURLMcode (*multi_socket_action)(CURLM *m, curl_socket_t s, int ev_bitmask, int *running);
    CURLMsg *(*multi_info_read)(CURLM *m, int *msgs_in_queue);
    CURLMcode (*multi_assign)(CURLM *m, curl_socket_t s, void *sockp);
} ty_curl_api;

extern ty_curl_api ty_curl;

/* Loads libcurl (libcurl.so.4, else the GnuTLS flavour libcurl-gnutls.so.4) and initialises
 * it once. Idempotent; not thread-safe (the loop's thread calls it). */
int ty_curl_load(ty_error *err);

/* A watch stream's framing: the complete JSON values at the front of text[0..len), each an
 * event {"type": string, "object": object} handed to fn (others are skipped), until fn returns
 * false. Returns the bytes consumed; an incomplete last value is left for more data. Pure (the
 * fuzz target and the tests call it). */
size_t ty_kube_watch_frames(const char *text, size_t len,
                            bool (*fn)(const char *type, json_t *obj, void *arg), void *arg);

#endif
