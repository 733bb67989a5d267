/* A reflector: keeps a caller informed of one resource's objects, as client-go's Reflector
 * feeds an informer's store.
 *
 * It lists (in pages of `page_size`; each page's changes are delivered as it comes, so a list
 * holds one page of objects, not the whole collection), then watches from the list's resourceVersion with
 * allowWatchBookmarks; every event and bookmark advances the resourceVersion it would resume
 * from. A watch the server ends (its timeoutSeconds) is opened again at once from there; a
 * dropped one (connection error, an error answer, an ERROR event other than 410) after
 * back-off with jitter (200 ms doubling to 30 s; reset by a watch that delivered something).
 * 410 Gone (an HTTP 410, or an ERROR event with code 410: the resourceVersion left the
 * server's history) relists.
 *
 * The caller sees ADDED, MODIFIED and DELETED with the object, each change once: the
 * reflector keeps each key's last resourceVersion (not the object: the caller's cache holds
 * objects, and keeping them twice would double cluster mode's memory) so that a relist
 * delivers only the difference (new keys ADDED, a changed resourceVersion MODIFIED, keys
 * gone DELETED) and a watch event already seen (same key and resourceVersion) is dropped. A
 * DELETED that a relist found carries only metadata (namespace, name, the last
 * resourceVersion seen), as client-go's DeletedFinalStateUnknown: the cache has the rest.
 * Versions a relist skipped over arrive as the last one, as with client-go.
 *
 * Ownership: objects passed to on_event are borrowed (json_incref to keep them). ty_reflector_stop() ends it (no callback after
 * it) and frees it once its timer has closed. */
#ifndef TY_KUBE_REFLECTOR_H
#define TY_KUBE_REFLECTOR_H

#include <jansson.h>
#include <stdint.h>

#include "kube/client.h"

typedef enum ty_reflector_event {
    TY_REFLECTOR_ADDED,
    TY_REFLECTOR_MODIFIED,
    TY_REFLECTOR_DELETED,
} ty_reflector_event;

typedef struct ty_reflector ty_reflector;

typedef struct ty_reflector_opts {
    ty_kube_resource res;     /* strings borrowed: must outlive the reflector */
    const char *ns;           /* NULL or "": every namespace */
    const char *label_selector;
    const char *field_selector;
    int page_size;            /* 0: 500 */
    int watch_timeout_s;      /* the watch's timeoutSeconds; 0: 5 to 10 minutes at random */
    void (*on_event)(ty_reflector_event type, json_t *obj, void *arg);
    void (*on_synced)(void *arg);                  /* after each complete list; may be NULL */
    void (*on_note)(const char *what, void *arg);  /* relists, reconnects: for logs; may be NULL */
    void *arg;
} ty_reflector_opts;

typedef struct ty_reflector_stats {
    uint64_t lists;       /* complete lists (1 + relists) */
    uint64_t relists_gone;/* lists caused by 410 Gone */
    uint64_t watches;     /* watches opened */
    uint64_t reconnects;  /* watches reopened after an error, with back-off */
    uint64_t bookmarks;
    uint64_t duplicates;  /* watch events dropped as already seen */
} ty_reflector_stats;

int ty_reflector_start(ty_kube_client *c, uv_loop_t *loop, const ty_reflector_opts *opts,
                       ty_reflector **out, ty_error *err);
void ty_reflector_stop(ty_reflector *r); /* NULL is fine */

/* The resourceVersion a watch would resume from ("" before the first list). */
const char *ty_reflector_resource_version(const ty_reflector *r);
/* The resourceVersion last seen of an object, or NULL when the reflector knows none. */
const char *ty_reflector_known_rv(const ty_reflector *r, const char *ns, const char *name);
size_t ty_reflector_count(const ty_reflector *r);
ty_reflector_stats ty_reflector_get_stats(const ty_reflector *r);

#endif
