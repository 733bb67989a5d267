/* The Kubernetes-style HTTP API in front of the object store, so that kubectl and the Kubernetes
 * clients work against trainyard.
 *
 * Serves discovery (/version, /api, /api/v1, /apis, /apis/<group>[/<version>]), /openapi/v3,
 * and for every resource (core v1 namespaces, nodes, pods (+log, +status), services, events;
 * kubeflow.org/v1 pytorchjobs, tfjobs (+status)) GET one/list (namespaced and all-namespaces),
 * POST, PUT, PATCH (merge, JSON, strategic), DELETE and watch (?watch=1), with errors as
 * meta/v1 Status objects worded as the Kubernetes API server words them. Every write goes
 * through ty_api_admit() (kubeflow kinds) and the store; nothing is stored on any error.
 *
 * Threading: everything runs on cfg->loop's thread. libmicrohttpd runs in external-event-loop
 * mode (its epoll fd watched by a uv_poll, its timeout by a uv_timer); watches and `logs -f`
 * are suspended connections resumed when data arrives. No locks.
 *
 * Ownership: the server borrows cfg->loop, cfg->store and cfg->log_ctx, which must outlive it.
 * ty_apiserver_stop() closes the listener, ends open watches and log streams and closes every
 * connection at once; its libuv handles close asynchronously, so the caller runs the loop once
 * more (uv_run) before closing the loop to finish freeing it. */
#ifndef TY_SERVER_APISERVER_H
#define TY_SERVER_APISERVER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "auth/pki.h"
#include "auth/token.h"
#include "base/error.h"
#include "store/store.h"

typedef struct ty_apiserver ty_apiserver;

/* The CRI log file of `container` of `pod` (its current run, or with `previous` the one before),
 * or NULL when there is none. The caller frees the string. */
typedef char *(*ty_apiserver_log_path_fn)(void *ctx, const json_t *pod, const char *container,
                                          bool previous);

/* Called on every create after validation and defaulting, before the object is stored: the
 * place of mutating admission webhooks. May change `obj`. */
typedef void (*ty_apiserver_mutate_fn)(void *ctx, const char *resource, json_t *obj);

/* The Prometheus text served at /metrics (caller frees), or NULL when there is none. */
typedef char *(*ty_apiserver_metrics_fn)(void *ctx);

/* What locks the API (docs/security.md). Without it (cfg->security NULL) the server listens on
 * loopback in plain HTTP and every request is the local admin (system:masters), as before
 * authentication existed. With it: TLS, every request authenticated (bearer token, client
 * certificate, ServiceAccount token) or refused with 401 (but /healthz, /livez, /readyz,
 * /version), and authorized by RBAC. Everything is borrowed and must outlive the server. */
typedef struct ty_apiserver_security {
    const char *cert_pem, *key_pem; /* the serving certificate and key (PEM) */
    const ty_pki *pki;              /* its CA signs the client certificates accepted */
    const ty_token_file *token_file; /* --token-auth-file; NULL: none */
    ty_token_store *token_store;     /* tokens minted by `trainyard token create`; NULL: none */
    const ty_sa_signer *sa_signer;   /* ServiceAccount tokens; NULL: none */
    const char *sa_audience;
} ty_apiserver_security;

/* metrics.k8s.io/v1beta1, served when set: resource "pods" (PodMetrics) or "nodes"
 * (NodeMetrics); `name` NULL asks for the list of `ns` (NULL: all namespaces). Returns a new
 * reference: the object, or the list whose items the server filters by labelSelector; NULL
 * when `name` has no metrics (404). */
typedef json_t *(*ty_apiserver_resource_metrics_fn)(void *ctx, const char *resource,
                                                     const char *ns, const char *name);

typedef struct ty_apiserver_config {
    uv_loop_t *loop;
    ty_store *store;
    const char *listen;              /* "127.0.0.1:6443"; port 0 picks a free one */
    ty_apiserver_log_path_fn log_path; /* NULL: pods/log answers that no log exists */
    void *log_ctx;
    ty_apiserver_mutate_fn mutate;   /* NULL: none */
    void *mutate_ctx;
    ty_apiserver_metrics_fn metrics; /* NULL: /metrics is 404 */
    void *metrics_ctx;
    ty_apiserver_resource_metrics_fn resource_metrics; /* NULL: no metrics.k8s.io */
    void *resource_metrics_ctx;
    size_t max_body_bytes;           /* 0: 3 MiB, as the Kubernetes API server */
    size_t table_page_bytes;         /* a page of a Table (kubectl get); 0: 8 MiB */
    const ty_apiserver_security *security; /* NULL: plain HTTP, loopback, trusted */
    /* One JSON line per mutating request, rotated to <path>.1 past audit_max_bytes (0: 100
     * MiB); NULL: none. */
    const char *audit_path;
    size_t audit_max_bytes;
    /* Keep Service default/kubernetes as kube-apiserver does: created at start and whenever
     * deleted, its type, ports and labels put back when changed: ClusterIP, the service
     * range's first address (ty_store_service_first_ip), port 443 named https to the API's
     * port (its targetPort), labels component=apiserver and provider=kubernetes. */
    bool kubernetes_service;
    /* The address its Endpoints and EndpointSlice name (kube-apiserver's
     * --advertise-address); NULL: the listen address. Needed when that is 0.0.0.0. */
    const char *advertise_ip;
} ty_apiserver_config;

/* Checks a listen address ("host:port") without binding it: -1 with a message when it is
 * malformed, or not a loopback address while `tls` is off (plain HTTP carries credentials in
 * clear and the loopback mode trusts every client). *loopback (may be NULL) says which it is. */
int ty_apiserver_check_listen(const char *listen, bool tls, bool *loopback, ty_error *err);
/* Binds the listener and starts serving on cfg->loop. Fails (nothing left open) when the
 * address is malformed or cannot be bound. */
int ty_apiserver_start(const ty_apiserver_config *cfg, ty_apiserver **out, ty_error *err);
/* The port the listener is bound to (the chosen one when cfg->listen asked for port 0). */
int ty_apiserver_port(const ty_apiserver *s);
/* Closes the listener, ends open watches/streams and frees the server (see above). NULL is fine. */
void ty_apiserver_stop(ty_apiserver *s);

#endif
