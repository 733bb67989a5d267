/* A Kubernetes REST client on the libuv loop: libcurl's multi interface driven by uv_poll and
 * a uv_timer (no thread), JSON through jansson, for any group/version/resource.
 *
 * Every call is asynchronous: it returns at once and its callback runs later on the loop,
 * exactly once, unless the call is cancelled first (then never). What happens in between:
 * - Client-side rate limit: each try of each request (watches included) takes a token of one
 *   bucket per client (retry.h; client-go's defaults, 5 QPS with a burst of 10).
 * - 429 Too Many Requests: tried again after its Retry-After (capped), else after back-off.
 * - 5xx (but 501) and connection errors: tried again after exponential back-off with jitter,
 *   at most `max_retries` times. A POST whose object has no name (generateName) is not tried
 *   again after a connection error or a 5xx, since it may have been created (it would be
 *   created twice); a named POST retried after it landed answers 409 AlreadyExists.
 * - 401 with an exec plugin or a token file: the credential is fetched again, one more try.
 * - 409 Conflict and every other answer go to the callback: ty_kube_update_retry() is the
 *   read-modify-write loop for conflicts (client-go's RetryOnConflict).
 * Watches are not retried here: their callback says how the stream ended and the reflector
 * (reflector.h) decides (resume, relist, back off).
 *
 * TLS: the kubeconfig's CA (file or data), client certificate and key (file, data, or an exec
 * plugin's), insecure-skip-tls-verify, and tls-server-name (the URL names it and libcurl
 * connects to the server's address: the name is then what SNI and verification use).
 *
 * Ownership: the client borrows the config and the loop; both must outlive it. A result's
 * members are valid during the callback only (json_incref the body to keep it).
 * ty_kube_client_close() cancels every call (no callbacks) and frees the client once its
 * handles have closed (the loop must run). Not thread-safe: the loop's thread only. */
#ifndef TY_KUBE_CLIENT_H
#define TY_KUBE_CLIENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "base/error.h"
#include "kube/kubeconfig.h"

typedef struct ty_kube_client ty_kube_client;
typedef struct ty_kube_call ty_kube_call;

typedef struct ty_kube_client_opts {
    double qps;               /* 0: 5; < 0: no limit */
    int burst;                /* 0: 10 */
    int max_retries;          /* 0: 5; < 0: none */
    int64_t backoff_base_ms;  /* 0: 200 */
    int64_t backoff_cap_ms;   /* 0: 10,000 */
    int64_t retry_after_max_s;/* 0: 60 */
    int64_t timeout_ms;       /* a request's whole time (not a watch's); 0: 60,000 */
} ty_kube_client_opts;

/* Which resource: group "" is the core group (/api/v1), others /apis/<group>/<version>. */
typedef struct ty_kube_resource {
    const char *group;
    const char *version;
    const char *resource; /* the plural: "pods", "pytorchjobs" */
    bool namespaced;
} ty_kube_resource;

typedef enum ty_kube_verb {
    TY_KUBE_GET,    /* one object: name required */
    TY_KUBE_LIST,   /* a collection: ns NULL or "" lists every namespace */
    TY_KUBE_CREATE, /* POST the body to the collection (or to <name>/<subresource>: a binding) */
    TY_KUBE_UPDATE, /* PUT the body */
    TY_KUBE_PATCH,  /* PATCH the body with `patch` */
    TY_KUBE_DELETE, /* the body, when given, is DeleteOptions */
    TY_KUBE_WATCH,  /* a collection's watch (?watch=1): use ty_kube_watch */
} ty_kube_verb;

typedef enum ty_kube_patch_type {
    TY_KUBE_PATCH_MERGE,     /* application/merge-patch+json (RFC 7386) */
    TY_KUBE_PATCH_STRATEGIC, /* application/strategic-merge-patch+json (built-in kinds only) */
    TY_KUBE_PATCH_JSON,      /* application/json-patch+json (RFC 6902) */
} ty_kube_patch_type;

typedef struct ty_kube_request {
    ty_kube_verb verb;
    const ty_kube_resource *res;
    const char *ns;          /* ignored for cluster-scoped resources */
    const char *name;
    const char *subresource; /* "status", "binding", "scale"...; NULL: the object */
    const char *query;       /* extra query, already escaped, without '?': "labelSelector=a%3Db" */
    json_t *body;            /* borrowed; serialized when the call is made */
    ty_kube_patch_type patch;
} ty_kube_request;

typedef struct ty_kube_result {
    int status;         /* the HTTP status; 0: no answer (a connection error after the retries) */
    json_t *body;       /* the answer's JSON, or NULL */
    const char *error;  /* NULL on 2xx; else the Status's message, or what failed */
    const char *reason; /* the Status's reason ("Conflict", "NotFound", "Expired"...), or NULL */
    int tries;          /* how many times the request was sent */
} ty_kube_result;

typedef void (*ty_kube_done_fn)(const ty_kube_result *r, void *arg);
/* A watch event: type ADDED, MODIFIED, DELETED, BOOKMARK or ERROR (object: a Status). The
 * object is borrowed for the callback. */
typedef void (*ty_kube_event_fn)(const char *type, json_t *object, void *arg);

/* Loads libcurl on first use. */
int ty_kube_client_new(uv_loop_t *loop, ty_kube_config *cfg, const ty_kube_client_opts *opts,
                       ty_kube_client **out, ty_error *err);
void ty_kube_client_close(ty_kube_client *c); /* NULL is fine; not from a callback of its own */

/* The path of a request, query included: "/api/v1/namespaces/ns/pods/p/status?x". Caller frees. */
char *ty_kube_path(const ty_kube_request *req);

/* `s` percent-encoded for a query value (all but RFC 3986's unreserved characters). */
char *ty_kube_escape(const char *s);

/* Sends a request; `done` gets the answer. Returns the call, which stays valid until its
 * callback has returned or it is cancelled. */
ty_kube_call *ty_kube_do(ty_kube_client *c, const ty_kube_request *req, ty_kube_done_fn done,
                         void *arg);
/* Opens a watch on req's collection (verb ignored; query: resourceVersion=...,
 * allowWatchBookmarks=true, timeoutSeconds=...): `event` gets each event as it arrives, `done`
 * how the stream ended (status 200 with error NULL: the server closed it). */
ty_kube_call *ty_kube_watch(ty_kube_client *c, const ty_kube_request *req, ty_kube_event_fn event,
                            ty_kube_done_fn done, void *arg);
/* Cancels a call whose callback has not run: no callback will. Safe from any callback of this
 * client, including the call's own event callback. */
void ty_kube_cancel(ty_kube_call *call);

/* Read-modify-write with retries on conflict, as client-go's RetryOnConflict with its
 * DefaultRetry (5 tries, 10 ms apart, 10 % jitter): GETs req's object (name, subresource
 * "status" to write the status), calls `mutate` on it, PUTs it; on 409 reads it again and
 * repeats. mutate returns 0 to write the object it changed, 1 when nothing needs writing
 * (done then gets the object as read, status 200), -1 to give up (done gets status 0 and
 * "mutate refused"). `done` gets the last answer. */
typedef int (*ty_kube_mutate_fn)(json_t *obj, void *arg);
ty_kube_call *ty_kube_update_retry(ty_kube_client *c, const ty_kube_request *req,
                                   ty_kube_mutate_fn mutate, ty_kube_done_fn done, void *arg);

/* Counters, for tests and metrics. */
typedef struct ty_kube_client_stats {
    uint64_t sent;            /* tries sent */
    uint64_t retried;         /* tries that were retries */
    uint64_t throttled;       /* tries that waited for the rate limit */
    uint64_t retry_after;     /* 429/503 answers whose Retry-After was honoured */
} ty_kube_client_stats;
ty_kube_client_stats ty_kube_client_get_stats(const ty_kube_client *c);

#endif
