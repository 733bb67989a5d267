/* trainyard server: the embedded control plane. Serves the Kubernetes API over the store and
 * writes a kubeconfig for kubectl, then runs until SIGINT/SIGTERM.
 *
 * Objects persist in <data-dir>/store.db (SQLite); pods run under <data-dir>/node and outlive
 * the server: a server killed (or stopped with SIGTERM/SIGINT) leaves them running, and the
 * next start re-adopts them. --stop-pods-on-exit stops them gracefully instead. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "auth/pki.h"
#include "auth/token.h"
#include "base/buf.h"
#include "base/fs.h"
#include "base/log.h"
#include "base/quantity.h"
#include "base/mem.h"
#include "base/time.h"
#include "cli/cli.h"
#include "cli/node.h"
#include "cli/nodespec.h"
#include "controllers/events.h"
#include "controllers/workloads.h"
#include "server/apiserver.h"
#include "store/store.h"

typedef struct server_state {
    uv_loop_t loop;
    ty_store *store;
    ty_apiserver *api;
    ty_node *node;
    bool stop_pods;
    uv_signal_t sigint, sigterm;
    uv_timer_t housekeeping;
    uv_timer_t sa_refresh; /* pods' ServiceAccount tokens (refresh_tokens), when secure */
    bool sa_refreshing;
    ty_event_expiry *expiry;
    uv_prepare_t commit;
    uv_timer_t commit_timer;
    bool commit_started;
    int signal;
} server_state;

/* Work the server does now and then (all of it: docs/architecture.md, "Periodic work"):
 * events expire after an hour, as in Kubernetes. Once a
 * minute a pass looks at every stored Event, in slices EXPIRE_GAP_MS apart of at most
 * EXPIRE_BUDGET_NS and EXPIRE_SLICE deletes: looking costs ~1.5 us an Event, a delete 30-60 us
 * here and ~15 us more in the group commit, so no loop turn spends much more than a
 * millisecond on it, and requests run in between (20,000 Events: ~30 slices when none is due;
 * a few seconds when all are). */
#define EXPIRE_SLICE 64
#define EXPIRE_BUDGET_NS 1000000LL
#define EXPIRE_GAP_MS 5
static void on_housekeeping(uv_timer_t *t)
{
    server_state *st = t->data;
    bool more = false;
    int gone = ty_events_expire(st->expiry, ty_time_now_ns(), TY_EVENT_TTL_NS, EXPIRE_SLICE,
                                EXPIRE_BUDGET_NS, &more);
    if (gone)
        ty_debug("server: %d events expired", gone);
    if (more) /* the next slice soon, then back to once a minute */
        uv_timer_start(t, on_housekeeping, EXPIRE_GAP_MS, 60 * 1000);
}

/* Group commit. The API server commits before each answer leaves, with every write pending
 * then. What the controllers and the node agent write on their own (a job's status after a
 * create, a pod's phase) is committed COMMIT_DELAY_MS after the loop turn that wrote it, unless
 * a request commits it first: a create followed at once by another then costs one fsync,
 * not two, and the second does not wait behind the first one's follow-up commit. Nothing
 * those writes cause leaves the process before they are durable (the store holds their watch
 * events), so the delay only makes them visible that much later. */
#define COMMIT_DELAY_MS 1

static void commit_or_die(server_state *st)
{
    TY_CLEANUP_ERROR ty_error err = TY_ERROR_INIT;
    if (ty_store_commit(st->store, &err) < 0) {
        /* Memory is ahead of the database; nothing that depends on it has left the process
         * yet. Stopping here makes the next start load what is durable. */
        ty_log(TY_LOG_ERROR, "server: the store cannot commit, stopping: %s", err.msg);
        abort();
    }
}

static void on_commit_timer(uv_timer_t *t)
{
    commit_or_die(t->data);
}

/* Before the loop waits for I/O: writes of this turn get their commit on the timer. */
static void on_prepare(uv_prepare_t *h)
{
    server_state *st = h->data;
    if (ty_store_uncommitted(st->store) && !uv_is_active((uv_handle_t *)&st->commit_timer)) {
        /* from now, not from the start of this turn (the reconciles may have taken a while) */
        uv_update_time(&st->loop);
        uv_timer_start(&st->commit_timer, on_commit_timer, COMMIT_DELAY_MS, 0);
    }
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: trainyard server [options]\n"
            "\n"
            "Serves the Kubernetes API (kubectl, client libraries) for trainyard's jobs and\n"
            "writes <data-dir>/kubeconfig pointing at it.\n"
            "\n"
            "options:\n"
            "  --data-dir DIR    state directory (default $HOME/.local/share/trainyard)\n"
            "  --listen ADDR     host:port to serve on (default 127.0.0.1:6443; port 0 picks\n"
            "                    one); off loopback the server speaks TLS and every request\n"
            "                    needs a credential and RBAC's leave (docs/security.md)\n"
            "  --tls             TLS, authentication and RBAC on a loopback address too (a\n"
            "                    plain loopback server trusts every local client as admin)\n"
            "  --no-tls          plain HTTP: refused off loopback\n"
            "  --tls-cert-file FILE, --tls-private-key-file FILE\n"
            "                    serve this certificate (PEM, chain allowed) and key instead of\n"
            "                    the one made in <data-dir>/pki (implies --tls)\n"
            "  --audit-log-max-size SIZE\n"
            "                    <data-dir>/audit.log (a JSON line per mutating request) moves\n"
            "                    to audit.log.1 past SIZE bytes (a quantity: 100Mi, the default)\n"
            "  --token-auth-file FILE\n"
            "                    static bearer tokens, kube-apiserver's CSV format\n"
            "                    (token,user,uid[,\"group1,group2\"])\n"
            "  --gpus N          declare N GPUs instead of asking NVML\n"
            "  --pod-cidr CIDR   pods' addresses, as root (default 10.244.0.0/16; the server\n"
            "                    takes a /24 of it, the same one again after a restart)\n"
            "  --no-pod-network  pods share this machine's network namespace, each with a\n"
            "                    loopback address (what happens without root anyway)\n"
            "  --nodes SPEC      serve virtual nodes instead of this machine, e.g.\n"
            "                    '8x{cpu:32,memory:256Gi,nvidia.com/gpu:8}' (repeatable; named\n"
            "                    node-1, node-2, ... in order); pods still run here\n"
            "  --nodes-file FILE virtual nodes from Node objects (labels, taints, capacity)\n"
            "  --stop-pods-on-exit\n"
            "                    on SIGTERM/SIGINT stop every pod (default: leave them running\n"
            "                    for the next start to re-adopt, as a kubelet restart does)\n"
            "  --require-images  a container whose image is not in <data-dir>/images fails\n"
            "                    (ErrImagePull) instead of running on the host\n"
            "  --fair-sharing    Kueue's fair sharing: a cohort's queues borrow in proportion\n"
            "                    to their fairSharing.weight\n"
            "  --cluster-dns ADDR:PORT\n"
            "                    serve cluster DNS (Services and Pods, other names forwarded)\n"
            "                    on this IPv4 address, UDP and TCP (port 0 picks one)\n"
            "  --cluster-domain NAME\n"
            "                    the cluster's DNS domain (default cluster.local)\n"
            "  --serving-listen ADDR\n"
            "                    host:port of the InferenceServices' gateway (default\n"
            "                    127.0.0.1:8080; off: none)\n"
            "  --serving-domain NAME\n"
            "                    InferenceServices answer as {name}.{namespace}.NAME\n"
            "                    (default example.com)\n"
            "  --service-cidr CIDR\n"
            "                    Services' cluster IPs come from it (default 10.96.0.0/12)\n"
            "  --no-controllers  be a stand-in cluster: serve the API and run the pods bound\n"
            "                    to the nodes, but no job, queue or binding controller\n"
            "  --kubeconfig FILE cluster mode: run the controllers against that cluster\n"
            "  --context NAME    the kubeconfig's context (default: its current-context)\n"
            "  --in-cluster      cluster mode with the pod's service account\n"
            "  --kube-qps N, --kube-burst N\n"
            "                    cluster mode's client rate limit (default 50 and 100, as\n"
            "                    Kueue; --kube-qps 0: none)\n"
            "  -v, --verbose     log more\n"
            "  -h, --help        this help\n");
}

/* The one place that chooses the store: every write is in SQLite before the API answers. */
static int open_store(const char *data_dir, ty_store **out, ty_error *err)
{
    TY_AUTOFREE char *path = ty_asprintf("%s/store.db", data_dir);
    if (ty_store_open(path, out, err) < 0)
        return ty_error_wrap(err, "open the store %s", path);
    return 0;
}

/* The data directory holds the store (every object, env values included), the pods' specs
 * and their logs: only its owner may enter it. One created here is 0700; an existing
 * one that others may enter is made 0700 (with a notice), and one owned by another user is
 * refused, since its owner could read everything the server writes there. */
static int check_data_dir(const char *dir, ty_error *err)
{
    if (ty_mkdir_p(dir, 0700) < 0)
        return ty_fail_errno(err, errno, "create the data directory %s", dir);
    struct stat sb;
    if (stat(dir, &sb) < 0)
        return ty_fail_errno(err, errno, "data directory %s", dir);
    if (!S_ISDIR(sb.st_mode))
        return ty_fail(err, "data directory %s is not a directory", dir);
    if (sb.st_uid != geteuid())
        return ty_fail(err, "data directory %s belongs to uid %u, not to this user (uid %u): "
                       "its owner could read and change the server's state; use a directory "
                       "of your own", dir, (unsigned)sb.st_uid, (unsigned)geteuid());
    if (sb.st_mode & 077) {
        if (chmod(dir, 0700) < 0)
            return ty_fail_errno(err, errno, "make the data directory %s private (0700)", dir);
        fprintf(stderr, "trainyard server: data directory %s was mode %04o, now 0700 (it holds "
                "the store and the pods' env and logs)\n", dir, (unsigned)(sb.st_mode & 07777));
    }
    /* the node's directory was 0755 before (the runtime fixes what is inside) */
    TY_AUTOFREE char *node = ty_asprintf("%s/node", dir);
    if (chmod(node, 0700) < 0 && errno != ENOENT)
        return ty_fail_errno(err, errno, "make %s private (0700)", node);
    /* the audit log names every user and what they did: its owner's alone */
    static const char *const logs[] = {"audit.log", "audit.log.1"};
    for (size_t i = 0; i < TY_ARRAY_LEN(logs); i++) {
        TY_AUTOFREE char *p = ty_asprintf("%s/%s", dir, logs[i]);
        if (chmod(p, 0600) < 0 && errno != ENOENT)
            return ty_fail_errno(err, errno, "make %s private (0600)", p);
    }
    return 0;
}

/* One server per data directory: a second one would rewrite the kubeconfig and keep a store of
 * its own in memory, so that what one deletes the other writes back. The lock (flock on
 * <data-dir>/lock, which holds the owner's pid) is held for the server's life and dies with it,
 * so a killed server never leaves a stale lock. Returns the lock's fd, kept open. */
static int lock_data_dir(const char *dir, ty_error *err)
{
    TY_AUTOFREE char *path = ty_asprintf("%s/lock", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return ty_fail_errno(err, errno, "open the lock %s", path);
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int e = errno;
        char pid[32] = "";
        ssize_t n = pread(fd, pid, sizeof(pid) - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        close(fd);
        if (e == EWOULDBLOCK)
            return ty_fail(err, "data directory %s is in use by another trainyard server "
                           "(pid %s); stop it first, or give this one another --data-dir",
                           dir, *pid ? pid : "unknown");
        return ty_fail_errno(err, e, "lock %s", path);
    }
    char pid[32];
    int n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
    if (fchmod(fd, 0600) < 0 || ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
        int e = errno;
        close(fd);
        return ty_fail_errno(err, e, "write the lock %s", path);
    }
    return fd;
}

/* The namespaces every cluster starts with. */
static int seed_namespaces(ty_store *store, ty_error *err)
{
    static const char *names[] = {"default", "kube-system", "kube-public", "kube-node-lease"};
    for (size_t i = 0; i < TY_ARRAY_LEN(names); i++) {
        json_t *cur = ty_store_get(store, "namespaces", "", names[i]);
        if (cur) {
            json_decref(cur);
            continue;
        }
        json_t *ns = json_pack("{s:s, s:s, s:{s:s}, s:{s:[s]}, s:{s:s}}", "apiVersion", "v1",
                               "kind", "Namespace", "metadata", "name", names[i], "spec",
                               "finalizers", "kubernetes", "status", "phase", "Active");
        int rc = ty_store_create(store, "namespaces", ns, NULL, err);
        json_decref(ns);
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* Written to a temporary file and renamed, so kubectl never reads half of one. */
/* The address clients use: the listen host (a loopback one: ty_apiserver_check_listen), or
 * 127.0.0.1 for an empty one or localhost. */
static char *client_host(const char *listen)
{
    const char *colon = strrchr(listen, ':');
    char *host = ty_strndup(listen, colon ? (size_t)(colon - listen) : strlen(listen));
    if (!*host || strcmp(host, "localhost") == 0 || strcmp(host, "0.0.0.0") == 0) {
        free(host);
        host = ty_strdup("127.0.0.1");
    }
    return host;
}

/* What a secure server holds (docs/security.md): its certificates, the credentials it
 * accepts, and the admin's client certificate for DIR/kubeconfig. */
typedef struct security {
    ty_pki *pki;
    ty_token_file *token_file;
    ty_token_store *token_store;
    ty_sa_signer *sa;
    ty_buf cert, key;
    char *admin_cert, *admin_key;
    ty_apiserver_security sec;
    /* for pods' ServiceAccount credentials (prepare_pod) */
    ty_runtime *rt; /* pods' directories hold their credentials */
    char *api_host; /* the server's address as pods on the host's network reach it */
    char *pod_host; /* ... and as pods in their own network namespace do (NULL: none) */
    char *svc_ip;   /* Service default/kubernetes' ClusterIP, for those pods (NULL: none) */
    int api_port;
    ty_store *store;      /* service accounts; pods, for refresh_tokens */
    int64_t token_ttl_s;  /* pods' tokens' lifetime (TRAINYARD_SA_TOKEN_TTL_S) */
    bool can_mount;       /* a private mount namespace for pods (root) */
} security;

/* kube-apiserver's default issuer and audience of ServiceAccount tokens. */
#define SA_ISSUER "https://kubernetes.default.svc.cluster.local"
#define ADMIN_USER "trainyard-admin"

static void security_free(security *sc)
{
    ty_pki_free(sc->pki);
    ty_token_file_free(sc->token_file);
    ty_token_store_free(sc->token_store);
    ty_sa_signer_free(sc->sa);
    ty_buf_free(&sc->cert);
    ty_buf_free(&sc->key);
    free(sc->admin_cert);
    free(sc->admin_key);
    free(sc->api_host);
    free(sc->pod_host);
    free(sc->svc_ip);
}

#define SA_MOUNT "/var/run/secrets/kubernetes.io/serviceaccount"
#define SA_TOKEN_TTL_S (24 * 3600)
/* the kubelet's: a token is replaced once 80% of its life has passed */
#define SA_REFRESH_AT(ttl) ((ttl) * 8 / 10)

static void prepend_env(json_t *container, const char *name, const char *value)
{
    json_t *env = json_object_get(container, "env");
    if (!json_is_array(env)) {
        env = json_array();
        json_object_set_new(container, "env", env);
    }
    json_array_insert_new(env, 0, json_pack("{s:s, s:s}", "name", name, "value", value));
}

/* `data` into dir/name through a temporary file and a rename, so a pod never reads half a
 * token, mode 0644 (the projected volume's defaultMode), group `gid` when >= 0 (the pod's
 * fsGroup, as the kubelet gives a volume to it). */
static int write_sa_file(const char *dir, const char *name, const char *data, long long gid,
                         ty_error *err)
{
    TY_AUTOFREE char *tmp = ty_asprintf("%s/.%s.tmp", dir, name);
    TY_AUTOFREE char *path = ty_asprintf("%s/%s", dir, name);
    if (ty_write_file_private(tmp, data, strlen(data), err) < 0)
        return -1;
    if (chmod(tmp, 0644) < 0 || (gid >= 0 && chown(tmp, (uid_t)-1, (gid_t)gid) < 0) ||
        rename(tmp, path) < 0) {
        int e = errno;
        unlink(tmp);
        return ty_fail_errno(err, e, "service account token: write %s", path);
    }
    return 0;
}

/* The pod's service account (pod->spec.serviceAccountName, `default` when none; admission
 * wrote it), or NULL with `err`. */
static json_t *pod_service_account(security *sc, const json_t *pod, ty_error *err)
{
    const json_t *spec = json_object_get(pod, "spec");
    const char *ns = json_string_value(json_object_get(json_object_get(pod, "metadata"),
                                                       "namespace"));
    const char *sa = json_string_value(json_object_get(spec, "serviceAccountName"));
    if (!sa || !*sa)
        sa = "default";
    json_t *obj = ty_store_get(sc->store, "serviceaccounts", ns ? ns : "", sa);
    if (!obj)
        ty_fail(err, "service account token: serviceaccount \"%s\" not found in %s", sa,
                ns ? ns : "");
    return obj;
}

/* A token of `sa` bound to the pod, with the CA and namespace, into the pod's
 * serviceaccount/ directory (made 0755: the pod's processes reach it through the mount). */
static int mint_pod_token(security *sc, const json_t *pod, const json_t *sa, ty_error *err)
{
    const json_t *meta = json_object_get(pod, "metadata");
    const char *ns = json_string_value(json_object_get(meta, "namespace"));
    const char *name = json_string_value(json_object_get(meta, "name"));
    const char *uid = json_string_value(json_object_get(meta, "uid"));
    const json_t *sameta = json_object_get(sa, "metadata");
    const char *sa_name = json_string_value(json_object_get(sameta, "name"));
    const char *sa_uid = json_string_value(json_object_get(sameta, "uid"));
    if (!ns || !name || !uid || !sa_name)
        return ty_fail(err, "service account token: the pod has no namespace, name or uid");
    json_t *fsg = json_object_get(
        json_object_get(json_object_get(pod, "spec"), "securityContext"), "fsGroup");
    long long gid = json_is_integer(fsg) ? (long long)json_integer_value(fsg) : -1;
    int64_t now = ty_time_now_ns() / 1000000000;
    const char *aud[] = {SA_ISSUER};
    ty_sa_claims claims = {.ns = ns, .name = sa_name, .uid = sa_uid ? sa_uid : "",
                           .pod_name = name, .pod_uid = uid, .audiences = aud, .naudiences = 1,
                           .issued_at = now, .expires = now + sc->token_ttl_s};
    TY_AUTOFREE char *jwt = NULL;
    if (ty_sa_token_sign(sc->sa, &claims, &jwt, err) < 0)
        return ty_error_wrap(err, "service account token");
    TY_AUTOFREE char *pod_dir = ty_runtime_pod_dir(sc->rt, ns, name, uid);
    TY_AUTOFREE char *dir = ty_asprintf("%s/serviceaccount", pod_dir);
    if (ty_mkdir_p(dir, 0755) < 0 || chmod(dir, 0755) < 0)
        return ty_fail_errno(err, errno, "service account token: create %s", dir);
    return write_sa_file(dir, "ca.crt", ty_pki_ca_pem(sc->pki), gid, err) < 0 ||
                   write_sa_file(dir, "namespace", ns, gid, err) < 0 ||
                   write_sa_file(dir, "token", jwt, gid, err) < 0
               ? -1
               : 0;
}

/* As the ServiceAccount admission plugin and the kubelet: a pod gets a token of its service
 * account bound to it (dead once the pod is), the CA and its namespace at
 * /var/run/secrets/kubernetes.io/serviceaccount, and KUBERNETES_SERVICE_HOST/PORT in its env,
 * unless the pod (or else its service account) says automountServiceAccountToken: false.
 * Mounting needs a private mount namespace (root): without one only a pod that asks for it
 * explicitly gets the mount (and fails to start, saying why). The token is replaced before 80%
 * of its life (refresh_tokens). */
static int prepare_pod(void *ctx, json_t *pod, ty_error *err)
{
    security *sc = ctx;
    json_t *spec = json_object_get(pod, "spec");
    json_t *asked = json_object_get(spec, "automountServiceAccountToken");
    if (json_is_false(asked) || (!asked && !sc->can_mount))
        return 0;
    json_t *sa = pod_service_account(sc, pod, err);
    if (!sa)
        return -1;
    bool mount = asked || !json_is_false(json_object_get(sa, "automountServiceAccountToken"));
    int rc = mount ? mint_pod_token(sc, pod, sa, err) : 0;
    json_decref(sa);
    if (!mount || rc < 0)
        return rc;
    json_t *meta = json_object_get(pod, "metadata");
    TY_AUTOFREE char *pod_dir = ty_runtime_pod_dir(
        sc->rt, json_string_value(json_object_get(meta, "namespace")),
        json_string_value(json_object_get(meta, "name")),
        json_string_value(json_object_get(meta, "uid")));
    TY_AUTOFREE char *dir = ty_asprintf("%s/serviceaccount", pod_dir);
    json_t *volumes = json_object_get(spec, "volumes");
    if (!json_is_array(volumes)) {
        volumes = json_array();
        json_object_set_new(spec, "volumes", volumes);
    }
    json_array_append_new(volumes, json_pack("{s:s, s:{s:s, s:s}}", "name", "kube-api-access",
                                             "hostPath", "path", dir, "type", "Directory"));
    /* A pod with a network namespace of its own reaches the API through Service
     * default/kubernetes (its ClusterIP, port 443, proxied to the API's advertised address), as
     * on Kubernetes; on the host's network, the server's own address. */
    bool own_net = sc->svc_ip && !json_is_true(json_object_get(spec, "hostNetwork"));
    char port[16];
    snprintf(port, sizeof port, "%d", own_net ? 443 : sc->api_port);
    static const char *const lists[] = {"initContainers", "containers"};
    for (size_t l = 0; l < TY_ARRAY_LEN(lists); l++) {
        size_t i;
        json_t *c;
        json_array_foreach(json_object_get(spec, lists[l]), i, c)
        {
            json_t *mounts = json_object_get(c, "volumeMounts");
            if (!json_is_array(mounts)) {
                mounts = json_array();
                json_object_set_new(c, "volumeMounts", mounts);
            }
            json_array_append_new(mounts, json_pack("{s:s, s:s, s:b}", "name", "kube-api-access",
                                                    "mountPath", SA_MOUNT, "readOnly", 1));
            prepend_env(c, "KUBERNETES_SERVICE_PORT", port);
            prepend_env(c, "KUBERNETES_SERVICE_HOST", own_net ? sc->svc_ip : sc->api_host);
        }
    }
    return 0;
}

/* The kubelet's token manager: every running pod's token is replaced once 80% of its life has
 * passed (its file's age says how much), while the pod and its service account (same uid)
 * exist; a token that cannot be replaced is left to expire. */
static void refresh_tokens(uv_timer_t *t)
{
    security *sc = t->data;
    int64_t now = ty_time_now_ns() / 1000000000;
    json_t *pods = ty_store_list(sc->store, "pods", NULL);
    size_t i;
    json_t *pod;
    json_array_foreach(pods, i, pod)
    {
        const json_t *meta = json_object_get(pod, "metadata");
        const char *phase = json_string_value(
            json_object_get(json_object_get(pod, "status"), "phase"));
        if (json_object_get(meta, "deletionTimestamp") ||
            (phase && (strcmp(phase, "Succeeded") == 0 || strcmp(phase, "Failed") == 0)))
            continue;
        const char *ns = json_string_value(json_object_get(meta, "namespace"));
        const char *name = json_string_value(json_object_get(meta, "name"));
        const char *uid = json_string_value(json_object_get(meta, "uid"));
        if (!ns || !name || !uid)
            continue;
        TY_AUTOFREE char *pod_dir = ty_runtime_pod_dir(sc->rt, ns, name, uid);
        TY_AUTOFREE char *tok = ty_asprintf("%s/serviceaccount/token", pod_dir);
        struct stat sb;
        if (stat(tok, &sb) < 0 || now - (int64_t)sb.st_mtime < SA_REFRESH_AT(sc->token_ttl_s))
            continue;
        ty_error err = TY_ERROR_INIT;
        json_t *sa = pod_service_account(sc, pod, &err);
        if (sa && mint_pod_token(sc, pod, sa, &err) == 0)
            ty_debug("serviceaccount: refreshed the token of pod %s/%s", ns, name);
        else
            ty_warn("serviceaccount: pod %s/%s: %s", ns, name, err.msg);
        json_decref(sa);
        ty_error_clear(&err);
    }
    json_decref(pods);
}

static int read_pem(ty_buf *b, const char *path, const char *what, ty_error *err)
{
    if (ty_buf_read_file(b, path) < 0)
        return ty_fail_errno(err, errno, "%s %s", what, path);
    return 0;
}

/* The CA and serving certificate in DIR/pki (made at the first start), the token files and
 * the ServiceAccount key (DIR/pki/sa.key), and a client certificate for the admin (CN
 * trainyard-admin, O system:masters), made at each start for DIR/kubeconfig. */
static int security_open(security *sc, const char *data_dir, const char *listen,
                         const char *pod_host, const char *cert_file, const char *key_file,
                         const char *token_file, ty_error *err)
{
    TY_AUTOFREE char *pki_dir = ty_asprintf("%s/pki", data_dir);
    const char *colon = strrchr(listen, ':');
    TY_AUTOFREE char *host = ty_strndup(listen, colon ? (size_t)(colon - listen) : 0);
    char **sans = NULL;
    size_t nsans = ty_pki_default_sans(host, &sans);
    /* pods with a network of their own verify the server at the gateway's address, or as
     * Service default/kubernetes, by its ClusterIP and names (as kube-apiserver's certificate
     * names them) */
    char svc_ip[16];
    ty_store_service_first_ip(sc->store, svc_ip);
    const char *extra[] = {pod_host, svc_ip, "kubernetes", "kubernetes.default",
                           "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"};
    sans = ty_realloc(sans, (nsans + TY_ARRAY_LEN(extra)) * sizeof *sans);
    for (size_t i = 0; i < TY_ARRAY_LEN(extra); i++)
        if (extra[i])
            sans[nsans++] = ty_strdup(extra[i]);
    int64_t now = ty_time_now_ns() / 1000000000;
    int rc = ty_pki_open(pki_dir, (const char *const *)sans, nsans, now, &sc->pki, err);
    for (size_t i = 0; i < nsans; i++)
        free(sans[i]);
    free(sans);
    if (rc < 0)
        return ty_error_wrap(err, "certificates in %s", pki_dir);
    if (read_pem(&sc->cert, cert_file ? cert_file : ty_pki_serving_cert_path(sc->pki),
                 "serving certificate", err) < 0 ||
        read_pem(&sc->key, key_file ? key_file : ty_pki_serving_key_path(sc->pki),
                 "serving key", err) < 0)
        return -1;
    if (token_file && ty_token_file_load(token_file, &sc->token_file, err) < 0)
        return -1;
    TY_AUTOFREE char *tokens = ty_asprintf("%s/tokens", data_dir);
    TY_AUTOFREE char *sa_key = ty_asprintf("%s/sa.key", pki_dir);
    if (ty_token_store_open(tokens, &sc->token_store, err) < 0 ||
        ty_sa_signer_open(sa_key, true, SA_ISSUER, &sc->sa, err) < 0)
        return -1;
    static const char *const admin_groups[] = {"system:masters"};
    if (ty_pki_client_cert(sc->pki, ADMIN_USER, admin_groups, 1, now, 365 * 86400LL,
                           &sc->admin_cert, &sc->admin_key, err) < 0)
        return ty_error_wrap(err, "the admin's client certificate");
    sc->sec = (ty_apiserver_security){
        .cert_pem = sc->cert.data,
        .key_pem = sc->key.data,
        .pki = sc->pki,
        .token_file = sc->token_file,
        .token_store = sc->token_store,
        .sa_signer = sc->sa,
        .sa_audience = SA_ISSUER,
    };
    return 0;
}

/* DIR/kubeconfig, 0600: the admin's, over https with the CA and the admin's client
 * certificate on a secure server; plain http and no credential on the trusting loopback one.
 * With a certificate of one's own, its CA is not ours: the kubeconfig trusts the certificate
 * file's contents, which is right for a self-signed one (else edit it). */
static int write_kubeconfig(const char *data_dir, const char *host, int port,
                            const security *sc, const char *cert_file, ty_error *err)
{
    TY_AUTOFREE char *path = ty_asprintf("%s/kubeconfig", data_dir);
    TY_AUTOFREE char *url = ty_asprintf("%s://%s:%d", sc ? "https" : "http", host, port);
    const char *ca = sc ? (cert_file ? sc->cert.data : ty_pki_ca_pem(sc->pki)) : NULL;
    TY_AUTOFREE char *text = ty_cli_kubeconfig(url, ca, NULL, sc ? sc->admin_cert : NULL,
                                               sc ? sc->admin_key : NULL,
                                               sc ? ADMIN_USER : "trainyard");
    return ty_write_file_private(path, text, strlen(text), err);
}

static void on_node_stopped(void *arg)
{
    server_state *st = arg;
    uv_close((uv_handle_t *)&st->housekeeping, NULL);
    if (st->sa_refreshing)
        uv_close((uv_handle_t *)&st->sa_refresh, NULL);

    uv_close((uv_handle_t *)&st->sigint, NULL);
    uv_close((uv_handle_t *)&st->sigterm, NULL);
}

static void mutate_on_create(void *ctx, const char *resource, json_t *obj)
{
    ty_workloads_default_job(ctx, resource, obj);
}

/* The first signal stops the API and the controllers, then stops the pods or leaves them
 * for the next start; a second one, while pods are being stopped, kills them. */
static void on_signal(uv_signal_t *h, int signum)
{
    server_state *st = h->data;
    if (st->signal) {
        if (st->stop_pods)
            ty_node_kill_pods(st->node);
        return;
    }
    st->signal = signum;
    ty_info("server: signal %d, stopping (%s the pods)", signum,
            st->stop_pods ? "stopping" : "leaving running");
    ty_apiserver_stop(st->api);
    st->api = NULL;
    ty_node_stop(st->node, st->stop_pods, on_node_stopped, st);
}

int ty_cli_server(int argc, char **argv)
{
    static const struct option opts[] = {
        {"data-dir", required_argument, NULL, 'd'},
        {"listen", required_argument, NULL, 'l'},
        {"gpus", required_argument, NULL, 'g'},
        {"pod-cidr", required_argument, NULL, 'C'},
        {"no-pod-network", no_argument, NULL, 'P'},
        {"nodes", required_argument, NULL, 'N'},
        {"nodes-file", required_argument, NULL, 'f'},
        {"stop-pods-on-exit", no_argument, NULL, 's'},
        {"fair-sharing", no_argument, NULL, 'S'},
        {"cluster-dns", required_argument, NULL, 'D'},
        {"cluster-domain", required_argument, NULL, 'Z'},
        {"serving-listen", required_argument, NULL, 1001},
        {"serving-domain", required_argument, NULL, 1002},
        {"service-cidr", required_argument, NULL, 'V'},
        {"require-images", no_argument, NULL, 'I'},
        {"tls", no_argument, NULL, 'T'},
        {"no-tls", no_argument, NULL, 'n'},
        {"tls-cert-file", required_argument, NULL, 'c'},
        {"tls-private-key-file", required_argument, NULL, 'k'},
        {"token-auth-file", required_argument, NULL, 'a'},
        {"audit-log-max-size", required_argument, NULL, 'A'},
        {"kubeconfig", required_argument, NULL, 'K'},
        {"context", required_argument, NULL, 'X'},
        {"in-cluster", no_argument, NULL, 'i'},
        {"kube-qps", required_argument, NULL, 'Q'},
        {"kube-burst", required_argument, NULL, 'B'},
        {"no-controllers", no_argument, NULL, 'O'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    TY_AUTOFREE char *data_dir = NULL;
    const char *listen = "127.0.0.1:6443", *pod_cidr = NULL;
    /* The serving gateway (docs/serving.md); "" or "off": none. */
    const char *serving_listen = "127.0.0.1:8080", *serving_domain = NULL;
    bool serving_given = false;
    int gpus = -1;
    TY_AUTONODES json_t *nodes = NULL;
    int next_node = 1;
    bool stop_pods = false, fair_sharing = false, no_pod_network = false, require_images = false;
    const char *cluster_dns = NULL, *cluster_domain = NULL, *service_cidr = NULL;
    bool tls_on = false, tls_off = false;
    const char *cert_file = NULL, *key_file = NULL, *token_file = NULL;
    size_t audit_max = 0;
    ty_cli_cluster_opts cluster = {0};
    bool no_controllers = false;
    int c;
    while ((c = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            free(data_dir);
            data_dir = ty_strdup(optarg);
            break;
        case 'l':
            listen = optarg;
            cluster.listen = optarg; /* cluster mode serves only its probes there */
            break;
        case 'g':
            if (ty_cli_gpus_option("server", optarg, &gpus) < 0)
                return 2;
            break;
        case 's':
            stop_pods = true;
            break;
        case 'P':
            no_pod_network = true;
            break;
        case 'C':
            pod_cidr = optarg;
            if (ty_cli_pod_cidr_option("server", optarg) < 0)
                return 2;
            break;
        case 'N':
        case 'f':
            if (ty_cli_nodes_option("server", optarg, c == 'f', &nodes, &next_node) < 0)
                return 2;
            break;
        case 'S':
            fair_sharing = true;
            break;
        case 'D':
            cluster_dns = optarg;
            break;
        case 'Z':
            cluster_domain = optarg;
            break;
        case 1001:
            serving_listen = optarg;
            serving_given = true;
            break;
        case 1002:
            serving_domain = optarg;
            break;
        case 'V':
            service_cidr = optarg;
            break;
        case 'I':
            require_images = true;
            break;
        case 'T':
            tls_on = true;
            break;
        case 'n':
            tls_off = true;
            break;
        case 'c':
            cert_file = optarg;
            break;
        case 'k':
            key_file = optarg;
            break;
        case 'a':
            token_file = optarg;
            break;
        case 'A': {
            ty_quantity q;
            ty_error qerr = TY_ERROR_INIT;
            if (ty_quantity_parse(optarg, &q, &qerr) < 0 || ty_quantity_value(q) < 1024) {
                fprintf(stderr, "trainyard server: --audit-log-max-size %s: %s\n", optarg,
                        qerr.msg ? qerr.msg : "at least 1Ki");
                ty_error_clear(&qerr);
                return 2;
            }
            audit_max = (size_t)ty_quantity_value(q);
            break;
        }
        case 'K':
            cluster.kubeconfig = optarg;
            break;
        case 'X':
            cluster.context = optarg;
            break;
        case 'i':
            cluster.in_cluster = true;
            break;
        case 'Q':
        case 'B': {
            char *end = NULL;
            double v = strtod(optarg, &end);
            if (!*optarg || *end || (c == 'B' && (v < 1 || v > 100000))) {
                fprintf(stderr, "trainyard server: --%s %s: not a %s\n",
                        c == 'Q' ? "kube-qps" : "kube-burst", optarg,
                        c == 'Q' ? "number (< 0: no limit)" : "count from 1 to 100000");
                return 2;
            }
            if (c == 'Q')
                cluster.qps = v == 0 ? -1 : v;
            else
                cluster.burst = (int)v;
            break;
        }
        case 'O':
            no_controllers = true;
            break;
        case 'v':
            ty_log_set_level(TY_LOG_DEBUG);
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (nodes) {
        ty_error nerr = TY_ERROR_INIT;
        if (ty_nodespec_check_unique(nodes, &nerr) < 0) {
            fprintf(stderr, "trainyard server: %s\n", nerr.msg);
            ty_error_clear(&nerr);
            return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    if (cluster.kubeconfig || cluster.in_cluster || cluster.context) {
        if (cluster.kubeconfig && cluster.in_cluster) {
            fprintf(stderr, "trainyard server: --kubeconfig and --in-cluster exclude each other\n");
            return 2;
        }
        if (!cluster.kubeconfig && !cluster.in_cluster) {
            fprintf(stderr, "trainyard server: --context needs --kubeconfig\n");
            return 2;
        }
        if (nodes || no_controllers) {
            fprintf(stderr, "trainyard server: cluster mode runs no node: --nodes and "
                            "--no-controllers are for a server that is the cluster\n");
            return 2;
        }
        cluster.fair_sharing = fair_sharing;
        return ty_cli_server_cluster(&cluster);
    }
    if (!data_dir)
        data_dir = ty_cli_default_data_dir();
    TY_CLEANUP_ERROR ty_error err = TY_ERROR_INIT;
    int lock_fd = -1;
    if (!cert_file != !key_file) {
        fprintf(stderr, "trainyard server: --tls-cert-file and --tls-private-key-file go "
                        "together\n");
        return 2;
    }
    if (tls_off && (tls_on || cert_file || token_file)) {
        fprintf(stderr, "trainyard server: --no-tls cannot go with --tls, --tls-cert-file or "
                        "--token-auth-file\n");
        return 2;
    }
    bool loopback = true;
    if (ty_apiserver_check_listen(listen, !tls_off, &loopback, &err) < 0) {
        fprintf(stderr, "trainyard server: %s\n", err.msg);
        return 2;
    }
    /* Plain loopback keeps the trusting local mode (docs/security.md); anything else is
     * secure. */
    bool secure = !tls_off && (tls_on || cert_file || token_file || !loopback);
    if (check_data_dir(data_dir, &err) < 0 || (lock_fd = lock_data_dir(data_dir, &err)) < 0) {
        fprintf(stderr, "trainyard server: %s\n", err.msg);
        return 1;
    }
    server_state st = {.stop_pods = stop_pods};
    security sc = {0};
    TY_AUTOFREE char *host = NULL;
    TY_AUTOFREE char *node_dir = ty_asprintf("%s/node", data_dir);
    TY_AUTOFREE char *volumes_dir = ty_asprintf("%s/volumes", data_dir);
    TY_AUTOFREE char *images_dir = ty_asprintf("%s/images", data_dir);
    TY_AUTOFREE char *audit_path = ty_asprintf("%s/audit.log", data_dir);
    uv_loop_init(&st.loop);
    int rc = 1;
    if (open_store(data_dir, &st.store, &err) < 0 || seed_namespaces(st.store, &err) < 0 ||
        (service_cidr && ty_store_set_service_cidr(st.store, service_cidr, &err) < 0))
        goto out;
    ty_store_defer_commits(st.store, true);
    st.expiry = ty_event_expiry_new(st.store);
    uv_prepare_init(&st.loop, &st.commit);
    uv_timer_init(&st.loop, &st.commit_timer);
    st.commit.data = st.commit_timer.data = &st;
    uv_prepare_start(&st.commit, on_prepare);
    /* neither must keep the loop alive by itself */
    uv_unref((uv_handle_t *)&st.commit);
    uv_unref((uv_handle_t *)&st.commit_timer);
    st.commit_started = true;
    sc.store = st.store;
    sc.can_mount = geteuid() == 0;
    sc.token_ttl_s = SA_TOKEN_TTL_S;
    const char *ttl_env = getenv("TRAINYARD_SA_TOKEN_TTL_S");
    if (ttl_env && *ttl_env) {
        char *end;
        long long v = strtoll(ttl_env, &end, 10);
        if (*end || v < 2 || v > 365LL * 86400) {
            fprintf(stderr, "trainyard server: TRAINYARD_SA_TOKEN_TTL_S=%s: a number of "
                            "seconds from 2 to 31536000\n", ttl_env);
            rc = 2;
            goto out;
        }
        sc.token_ttl_s = v;
    }
    ty_node_config ncfg = {
        .loop = &st.loop,
        .store = st.store,
        .state_dir = node_dir,
        .volumes_dir = volumes_dir,
        .gpus = gpus,
        .nodes = nodes,
        .no_controllers = no_controllers,
        .pod_cidr = pod_cidr,
        .no_pod_network = no_pod_network,
        .pods_die_with_parent = false,
        .adopt = true,
        .fair_sharing = fair_sharing,
        .cluster_dns = cluster_dns,
        .cluster_domain = cluster_domain,
        .images_dir = images_dir,
        .require_images = require_images,
        .prepare_pod = secure ? prepare_pod : NULL,
        .prepare_ctx = &sc,
        .resource_metrics = true,
        .serving_listen = *serving_listen && strcmp(serving_listen, "off") != 0 ? serving_listen
                                                                                : NULL,
        .serving_domain = serving_domain,
        .serving_optional = !serving_given,
    };
    if (ty_node_start(&ncfg, &st.node, &err) < 0)
        goto out;
    sc.rt = ty_node_runtime(st.node);
    /* after the node: its pod network's gateway is one of the serving certificate's names */
    if (secure && ty_node_host_ip(st.node))
        sc.pod_host = ty_strdup(ty_node_host_ip(st.node));
    /* pods in a network namespace of their own reach the API through Service
     * default/kubernetes, proxied to the gateway, where a server off loopback listens */
    char svc_ip[16];
    ty_store_service_first_ip(st.store, svc_ip);
    if (sc.pod_host && !loopback)
        sc.svc_ip = ty_strdup(svc_ip);
    if (secure && security_open(&sc, data_dir, listen, sc.pod_host, cert_file, key_file,
                                token_file, &err) < 0) {
        ty_node_stop(st.node, false, NULL, NULL);
        uv_run(&st.loop, UV_RUN_DEFAULT);
        goto out;
    }
    if (cluster_dns && ty_node_cluster_dns(st.node)) /* the port it picked */
        fprintf(stderr, "trainyard server: cluster DNS on %s\n", ty_node_cluster_dns(st.node));
    ty_apiserver_config cfg = {.loop = &st.loop,
                               .store = st.store,
                               .listen = listen,
                               .log_path = ty_node_log_path,
                               .log_ctx = st.node,
                               /* Kueue's webhook defaults are trainyard's, not a cluster's */
                               .mutate = no_controllers ? NULL : mutate_on_create,
                               .mutate_ctx = st.store,
                               .metrics = ty_node_metrics,
                               .metrics_ctx = st.node,
                               .security = secure ? &sc.sec : NULL,
                               .kubernetes_service = true,
                               .resource_metrics = ty_node_resource_metrics,
                               .resource_metrics_ctx = st.node};
    /* 0.0.0.0 is no address to send to: the Service's endpoints name the pod network's
     * gateway (or loopback without one) */
    const char *port_sep = strrchr(listen, ':');
    size_t host_len = port_sep ? (size_t)(port_sep - listen) : strlen(listen);
    if (host_len == 0 || (host_len == 7 && strncmp(listen, "0.0.0.0", 7) == 0))
        cfg.advertise_ip = ty_node_host_ip(st.node) ? ty_node_host_ip(st.node) : "127.0.0.1";
    cfg.audit_path = audit_path;
    cfg.audit_max_bytes = audit_max;
    if (ty_apiserver_start(&cfg, &st.api, &err) < 0) {
        ty_node_stop(st.node, false, NULL, NULL);
        uv_run(&st.loop, UV_RUN_DEFAULT);
        goto out;
    }
    host = client_host(listen);
    sc.api_host = ty_strdup(host);
    sc.api_port = ty_apiserver_port(st.api);
    {
        TY_AUTOFREE char *api_url = ty_asprintf("%s://%s:%d", secure ? "https" : "http",
                                                host, sc.api_port);
        ty_node_set_api_url(st.node, api_url);
    }
    if (secure && sc.pod_host && loopback)
        fprintf(stderr, "trainyard server: pods with a network namespace of their own cannot "
                        "reach the API on %s; listen on 0.0.0.0 or %s for them (they reach it "
                        "through Service default/kubernetes)\n", listen, sc.pod_host);
    if (write_kubeconfig(data_dir, host, ty_apiserver_port(st.api), secure ? &sc : NULL,
                         cert_file, &err) < 0) {
        ty_apiserver_stop(st.api);
        ty_node_stop(st.node, false, NULL, NULL);
        uv_run(&st.loop, UV_RUN_DEFAULT);
        goto out;
    }
    fprintf(stderr, "trainyard server: serving on %s:%d%s; kubeconfig %s/kubeconfig\n", host,
            ty_apiserver_port(st.api), secure ? " (TLS, RBAC)" : "", data_dir);
    if (secure && !sc.can_mount)
        fprintf(stderr, "trainyard server: not root, so pods get no private mount namespace: "
                        "ServiceAccount tokens are mounted only into pods that set "
                        "automountServiceAccountToken: true (and those fail to start)\n");
    if (secure) { /* the kubelet's token manager: 10 looks per lifetime, at most a minute apart */
        uint64_t every = (uint64_t)sc.token_ttl_s * 100;
        every = every < 500 ? 500 : every > 60000 ? 60000 : every;
        uv_timer_init(&st.loop, &st.sa_refresh);
        st.sa_refresh.data = &sc;
        uv_timer_start(&st.sa_refresh, refresh_tokens, every, every);
        st.sa_refreshing = true;
    }
    if (ty_node_serving_port(st.node))
        fprintf(stderr, "trainyard server: InferenceServices on http://%.*s:%d\n",
                (int)(strrchr(ncfg.serving_listen, ':') - ncfg.serving_listen),
                ncfg.serving_listen, ty_node_serving_port(st.node));
    uv_timer_init(&st.loop, &st.housekeeping);
    st.housekeeping.data = &st;
    uv_timer_start(&st.housekeeping, on_housekeeping, 60 * 1000, 60 * 1000);
    uv_signal_init(&st.loop, &st.sigint);
    uv_signal_init(&st.loop, &st.sigterm);
    st.sigint.data = st.sigterm.data = &st;
    uv_signal_start(&st.sigint, on_signal, SIGINT);
    uv_signal_start(&st.sigterm, on_signal, SIGTERM);
    uv_run(&st.loop, UV_RUN_DEFAULT);
    rc = 0;
out:
    if (err.msg)
        fprintf(stderr, "trainyard server: %s\n", err.msg);
    ty_node_free(st.node);
    if (st.commit_started) {
        uv_close((uv_handle_t *)&st.commit, NULL);
        uv_close((uv_handle_t *)&st.commit_timer, NULL);
    }
    uv_run(&st.loop, UV_RUN_DEFAULT); /* close callbacks of what was just freed */
    if (st.commit_started)
        commit_or_die(&st); /* what the last turns wrote */
    uv_loop_close(&st.loop);
    ty_event_expiry_free(st.expiry);
    ty_store_free(st.store);
    security_free(&sc);
    close(lock_fd); /* the last thing: the next server may start now */
    return rc;
}
