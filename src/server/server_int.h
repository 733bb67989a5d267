/* The API server's private header: its pure helpers (util.c), shared with its unit tests
 * (tests/unit/test_server.c) and fuzz targets, then the structures and functions its units
 * share: apiserver.c (the HTTP loop: dispatch, connections, libuv), reply.c (answers and
 * Status errors), discovery.c, admit.c (bodies, admission, authentication), handlers.c
 * (CRUD, patch, apply), stream.c (long answers), watches.c and logs.c. */
#ifndef TY_SERVER_SERVER_INT_H
#define TY_SERVER_SERVER_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "api/kinds.h"
#include "api/selector.h"
#include "api/validate.h"
#include "auth/rbac.h"
#include "auth/token.h"
#include "base/buf.h"
#include "base/error.h"
#include "base/map.h"
#include "server/apiserver.h"
#include "server/mhd.h"
#include "store/store.h"

/* A request path split as the API server routes it. Strings point into `buf` (owned). */
typedef struct ty_srv_path {
    char *buf;
    const char *group;     /* "" for the core group (/api/v1) */
    const char *version;
    const char *ns;        /* NULL when the path names no namespace */
    const char *resource;  /* NULL for the group-version root */
    const char *name;      /* NULL for a collection */
    const char *sub;       /* "status", "log", or NULL */
} ty_srv_path;

/* Splits "/api/v1/namespaces/default/pods/x/log" or "/apis/kubeflow.org/v1/pytorchjobs".
 * `is_namespaced(ctx, resource)` decides whether "namespaces/<n>/..." names a namespace scope or the
 * namespace object itself. Returns -1 when the path is not a resource path. */
int ty_srv_path_parse(const char *path, bool (*is_namespaced)(void *ctx, const char *resource),
                      void *ctx, ty_srv_path *out);
void ty_srv_path_free(ty_srv_path *p);

/* The integer query parameters (limit, timeoutSeconds, gracePeriodSeconds, sinceSeconds,
 * tailLines, limitBytes) read as the API server decodes them, Go's strconv.ParseInt(v, 10, 64):
 * an optional sign and decimal digits, nothing else. A value that parses is clamped to what its
 * use can hold (a watch's timeout in milliseconds, a log's since in nanoseconds). Fails with
 * "<key>: strconv.ParseInt: parsing \"<v>\": invalid syntax" (or "value out of range"). */
int ty_srv_query_int(const char *key, const char *v, int64_t *out, ty_error *err);
/* Checks every integer query parameter that `lookup(ctx, key)` returns (NULL: absent), so a
 * request with a malformed one is refused (400) before it does anything. */
int ty_srv_query_check(const char *(*lookup)(void *ctx, const char *key), void *ctx,
                       ty_error *err);

/* Continue tokens: the last returned object's store key ("namespace/name", "/name" for a
 * cluster-scoped one), hex-encoded so they are opaque and URL-safe. Decoding returns NULL for
 * anything that is not lowercase or uppercase hex pairs of a key without NUL bytes. */
char *ty_srv_continue_encode(const char *key);
char *ty_srv_continue_decode(const char *token);
/* Orders a store key "namespace/name" against a decoded token as ty_store_list orders
 * objects: by namespace, then name (comparing "ns/name" strings would put "a-b/x" first). */
int ty_srv_continue_compare(const char *key, const char *token);

/* A meta/v1 Status of failure. `details` (stolen, may be NULL). */
json_t *ty_srv_status(int code, const char *reason, const char *message, json_t *details);
/* Maps a field error message ("Invalid value: ...", "Required value", ...) to its cause reason
 * (FieldValueInvalid, FieldValueRequired, ...). */
const char *ty_srv_cause_reason(const char *msg);
/* The aggregate text of field errors as the API server writes it: "p: m" for one,
 * "[p1: m1, p2: m2]" for several. */
void ty_srv_errors_text(const ty_field_errors *errs, ty_buf *out);

/* Name checks as Kubernetes' validation: NULL when valid, else the message. */
const char *ty_srv_check_dns1123_subdomain(const char *name);
const char *ty_srv_check_dns1123_label(const char *name);

/* One CRI log line "<time> <stream> <P|F> <text>": fills the time (ns since the epoch), whether
 * it is partial (P), and where the text starts and how long it is (no newline). Returns -1 for
 * a line not in that format. */
int ty_srv_cri_parse(const char *line, size_t len, int64_t *time_ns, bool *partial,
                     const char **text, size_t *text_len);
/* RFC 3339 with nanoseconds, trailing zeros trimmed, as Go's time.RFC3339Nano (kubectl logs
 * --timestamps). */
void ty_srv_format_rfc3339nano(int64_t ns, ty_buf *out);

/* ---- the server's own units ---- */
#define DEFAULT_MAX_BODY (3u * 1024 * 1024)
/* The API server ends a watch after a random time between its min-request-timeout (30 min)
 * and twice that; clients re-list and watch again. */
#define WATCH_DEFAULT_TIMEOUT_S 1800
#define WATCH_MAX_TIMEOUT_S 1000000000LL /* ~31.7 years: longer is the same, and ms stay in range */
#define STREAM_TICK_MS 200
#define BOOKMARK_INTERVAL_MS 60000

/* What the server knows of a resource, for routing, discovery and messages: its entry in the
 * registry of kinds. `ops` is set for the kinds ty_api_admit admits, NULL for the core ones
 * the server checks itself. */
typedef ty_kind_info res_info;

typedef struct stream stream;

/* The group served from the node's samples rather than the store (metrics.c). */
#define SRV_METRICS_GROUP "metrics.k8s.io"

struct ty_apiserver {
    uv_loop_t *loop;
    ty_store *store;
    ty_apiserver_log_path_fn log_path;
    void *log_ctx;
    ty_apiserver_mutate_fn mutate;
    void *mutate_ctx;
    ty_apiserver_metrics_fn metrics;
    void *metrics_ctx;
    size_t max_body;
    size_t table_page_bytes;
    struct MHD_Daemon *mhd;
    int port;
    uv_poll_t poll;
    uv_timer_t timer;
    int open_handles; /* freed when the last of poll/timer is closed */
    bool stopping;
    bool kicked; /* kick() was called since the last MHD_run began */
    bool streamed; /* a stream handed bytes to MHD since the last MHD_run began */
    int64_t yield_again_ns; /* no yield after streaming before this time (see run_mhd) */
    ty_map label_views; /* "resource\x1fns" -> label_view, see label_view_of() */
    const res_info *const *res; /* ty_kinds(), or own_res */
    size_t nres;
    const res_info **own_res; /* ty_kinds() and metrics.k8s.io's two, when served */
    ty_apiserver_resource_metrics_fn resource_metrics;
    void *resource_metrics_ctx;
    stream *streams;
    /* connections (see on_connection): how many are open, how many of those were shut down
     * to make room and are not closed yet, the most there may be, and the ones waiting for a
     * request, oldest first */
    unsigned nconns, nshut, conn_limit;
    unsigned nstreams; /* open watches and log streams: at most half of conn_limit */
    struct conn_rec *idle_head, *idle_tail;
    /* security (auth.c): NULL when the server is the loopback one that trusts every client */
    const ty_apiserver_security *sec;
    ty_rbac *rbac;          /* the RBAC index, fed by a store watch */
    int rbac_watch;
    bool aggregate_dirty;   /* a ClusterRole changed: aggregated ones to write back */
    char *audit_path;
    size_t audit_max_bytes;
    struct srv_kubesvc *kubesvc; /* ty_apiserver_config.kubernetes_service; NULL without */
    struct srv_sactl *sactl;     /* the default ServiceAccounts (serviceaccounts.c) */
};

/* kubesvc.c: Service default/kubernetes, its Endpoints and EndpointSlice (the API's address
 * api_ip:api_port) kept as kube-apiserver's bootstrap controller keeps them
 * (ty_apiserver_config.kubernetes_service): reconciled at start and after every change to one
 * of them (store watches), writing only what differs. Stop closes its timer (freed in the close
 * callback: run the loop once more). */
typedef struct srv_kubesvc srv_kubesvc;
srv_kubesvc *srv_kubesvc_start(uv_loop_t *loop, ty_store *store, const char *api_ip,
                               int api_port);
void srv_kubesvc_stop(srv_kubesvc *k);

/* One open connection, from MHD's STARTED notification to its CLOSED one. */
typedef struct conn_rec {
    struct conn_rec *prev, *next; /* in the idle list */
    int fd;
    bool idle; /* waiting for a request: the first, or the next one of a kept-alive connection */
    bool shut; /* shut down to make room; MHD closes it on its next run */
} conn_rec;

/* One request being received: its body, bounded by max_body. */
typedef struct req {
    ty_buf body;
    bool too_big;
    json_t *warnings; /* strings sent as Warning headers */
    int code;         /* the status of the answer queued, 0 before */
} req;

/* A long answer: a watch or a followed log. Owned by its MHD response (freed from the response's
 * free callback, through uv_close of its timer). */
struct stream {
    ty_apiserver *srv;
    struct MHD_Connection *conn;
    stream *next, *prev;
    ty_buf out;
    size_t off;
    bool suspended, ended;
    uv_timer_t timer;
    uv_poll_t sock;   /* the client's socket while the stream is suspended (stream_read) */
    bool sock_init, sock_active, sock_useless;
    int handles;      /* libuv handles still to close before the stream is freed */
    int64_t deadline_ms; /* monotonic; 0: none */
    int64_t last_bookmark_ms;
    /* watch */
    int watch_id;
    const res_info *ri;
    char *ns;
    ty_selector *labels, *fields;
    bool selective;  /* a label or field selector was given */
    bool table, bookmarks;
    char *include_object;
    /* log */
    int fd;
    char *pod_ns, *pod_name, *pod_uid, *container, *log_file;
    ty_buf partial; /* bytes of an incomplete line read so far */
    ty_buf joined;  /* text of P records waiting for their F */
    bool timestamps;
    int64_t since_ns;
    int64_t limit_bytes; /* > 0: the stream ends after this many bytes */
    int64_t sent_bytes;
};

typedef struct call {
    ty_apiserver *srv;
    struct MHD_Connection *conn;
    req *r;
    const char *method;
    ty_srv_path path;
    const res_info *ri;
    ty_identity user;   /* who asks (auth.c), filled by srv_authenticate */
    const char *url;
} call;


/* A LIST with a labelSelector tests every object's labels. A view keeps, in the store's order,
 * each object's label set, which the store shares between objects with equal labels (objects
 * made from one template), so that a selector is evaluated once per distinct set. It is
 * rebuilt when the store's revision moved; its items and sets are the store's, valid as long
 * as its revision is `rev`. */
typedef struct label_view {
    uint64_t rev;
    size_t n;
    ty_store_item *items;
    uint32_t *set;        /* items[i]'s labels are sets[set[i]] */
    size_t nsets;
    const json_t **sets;  /* {"metadata": {"labels": {...}}}, what ty_label_selector_matches reads */
} label_view;

/* reply.c */
const res_info *srv_find_res(const ty_apiserver *s, const char *group, const char *version,
                             const char *resource);
bool srv_is_namespaced(void *ctx, const char *resource);
char *srv_group_version(const res_info *ri);
json_t *srv_typed(const res_info *ri, const json_t *obj);
void srv_add_item_text(ty_buf *b, const res_info *ri, const ty_store_item *it);
json_t *srv_item_tree(const ty_store_item *it);
void srv_label_views_clear(ty_apiserver *s);
const label_view *srv_label_view_of(ty_apiserver *s, const char *resource, const char *ns);
const char *srv_q(call *c, const char *key);
const char *srv_q_lookup(void *c, const char *key);
const char *srv_hdr(call *c, const char *key);
bool srv_q_true(call *c, const char *key);
enum MHD_Result srv_reply_text(call *c, int code, const char *type, char *text, size_t len);
enum MHD_Result srv_reply(call *c, int code, json_t *body);
enum MHD_Result srv_fail(call *c, int code, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int srv_q_int64(call *c, const char *key, int64_t *out, enum MHD_Result *ret);
int srv_q_resource_version(call *c, uint64_t *out, enum MHD_Result *ret);
json_t *srv_details(const res_info *ri, const char *name, bool kind_is_kind);
enum MHD_Result srv_fail_not_found(call *c, const res_info *ri, const char *name);
enum MHD_Result srv_fail_exists(call *c, const char *name);
enum MHD_Result srv_fail_conflict(call *c, const char *name, const char *why);
enum MHD_Result srv_fail_invalid_as(call *c, const char *qk, json_t *d, const char *name,
                                    const ty_field_errors *errs);
enum MHD_Result srv_fail_invalid(call *c, const char *name, const ty_field_errors *errs);
enum MHD_Result srv_fail_denied(call *c, const ty_field_errors *errs);
enum MHD_Result srv_fail_store(call *c, const char *name, const ty_error *err);

/* discovery.c */
int srv_discovery(call *c, const char *url, enum MHD_Result *ret);

/* admit.c */
void srv_request_media_type(call *c, char *out, size_t cap);
json_t *srv_read_body(call *c, enum MHD_Result *ret);
int srv_check_kind(call *c, json_t *obj, enum MHD_Result *ret);
int srv_admit(call *c, json_t *obj, const char *name, enum MHD_Result *ret);
bool srv_exists(ty_apiserver *s, const char *resource, const char *ns, const char *name);
const char *srv_check_name(const res_info *ri, const char *name);
bool srv_dry_run(call *c);
int srv_check_dry_run(call *c, enum MHD_Result *ret);
enum MHD_Result srv_refuse_foreign(call *c, bool *refused);

/* auth.c */
int srv_auth_start(ty_apiserver *s, ty_error *err);
void srv_auth_stop(ty_apiserver *s);
void srv_auth_after_request(ty_apiserver *s);
int srv_authenticate(call *c, enum MHD_Result *ret);
int srv_authorize(call *c, enum MHD_Result *ret);
int srv_rbac_admit(call *c, json_t *obj, const char *name, enum MHD_Result *ret);
enum MHD_Result srv_handle_review(call *c);
void srv_audit(call *c);
void srv_audit_config(ty_apiserver *s, const char *path, size_t max);

/* serviceaccounts.c: a `default` ServiceAccount in every live namespace, made at start and
 * after a namespace is added or a default is deleted (stop: as srv_kubesvc_stop); on pod
 * create, the pod's service account (`default` unless it names one, written into
 * spec.serviceAccountName) must exist, else 403 as the admission plugin answers; the
 * TokenRequest subresource (POST .../serviceaccounts/NAME/token); and authentication's check
 * that a ServiceAccount token's account exists with the uid it names. */
typedef struct srv_sactl srv_sactl;
srv_sactl *srv_sactl_start(uv_loop_t *loop, ty_store *store);
void srv_sactl_stop(srv_sactl *k);
int srv_sa_ensure_default(ty_store *store, const char *ns, ty_error *err);
/* A ServiceAccount's own fields (automountServiceAccountToken a boolean, secrets and
 * imagePullSecrets lists of {name}); -1 with them added to `errs`. */
int srv_sa_validate(const json_t *sa, ty_field_errors *errs);
int srv_sa_admit_pod(call *c, json_t *pod, enum MHD_Result *ret);
int srv_sa_check_token(call *c, const ty_identity *id, ty_error *err);
enum MHD_Result srv_handle_token_request(call *c);

/* handlers.c */
bool srv_matches(const json_t *obj, const ty_selector *labels, const ty_selector *fields);
int srv_parse_selectors(call *c, ty_selector **labels, ty_selector **fields, enum MHD_Result *ret);
bool srv_wants_table(call *c);
const char *srv_include_object(call *c);
json_t *srv_table_of(const char *resource, const json_t *items, const char *include);
enum MHD_Result srv_handle_list(call *c);
enum MHD_Result srv_handle_get(call *c);
enum MHD_Result srv_handle_create(call *c);
/* POST trials/<name>/metrics: Katib's Push collector (controllers/experiment.h). */
enum MHD_Result srv_handle_trial_metrics(call *c);
enum MHD_Result srv_handle_delete_collection(call *c);
enum MHD_Result srv_handle_put(call *c);
enum MHD_Result srv_handle_patch(call *c);
enum MHD_Result srv_handle_delete(call *c);

/* binding.c: POST pods/NAME/binding */
enum MHD_Result srv_handle_binding(call *c);

/* stream.c */
int64_t srv_mono_ms(void);
void srv_stream_end(stream *st);
void srv_stream_send(stream *st, const char *data, size_t len);
void srv_stream_abandon(stream *st);
bool srv_streams_full(call *c, enum MHD_Result *ret);
stream *srv_stream_new(call *c);
enum MHD_Result srv_stream_reply(call *c, stream *st, const char *type);

/* watches.c */
uint64_t srv_obj_rv(const json_t *obj);
enum MHD_Result srv_handle_watch(call *c);

/* metrics.c */
extern const res_info srv_pod_metrics_kind, srv_node_metrics_kind;
enum MHD_Result srv_handle_resource_metrics(call *c);

/* discovery.c: the verbs a resource serves */
json_t *srv_verbs(const res_info *ri);

/* logs.c */
enum MHD_Result srv_handle_log(call *c, json_t *pod);

/* apiserver.c */
void srv_kick(ty_apiserver *s);

#endif
