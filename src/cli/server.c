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

#include "base/buf.h"
#include "base/fs.h"
#include "base/log.h"
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
            "                    one); loopback only until the API has authentication\n"
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
            "  --service-cidr CIDR\n"
            "                    Services' cluster IPs come from it (default 10.96.0.0/12)\n"
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
    if (!*host || strcmp(host, "localhost") == 0) {
        free(host);
        host = ty_strdup("127.0.0.1");
    }
    return host;
}

static int write_kubeconfig(const char *data_dir, const char *host, int port, ty_error *err)
{
    TY_AUTOFREE char *path = ty_asprintf("%s/kubeconfig", data_dir);
    TY_AUTOFREE char *tmp = ty_asprintf("%s/.kubeconfig.tmp", data_dir);
    TY_AUTOBUF ty_buf b = TY_BUF_INIT;
    ty_buf_addf(&b,
                "apiVersion: v1\n"
                "kind: Config\n"
                "clusters:\n"
                "- name: trainyard\n"
                "  cluster:\n"
                "    server: http://%s:%d\n"
                "contexts:\n"
                "- name: trainyard\n"
                "  context:\n"
                "    cluster: trainyard\n"
                "    user: trainyard\n"
                "    namespace: default\n"
                "current-context: trainyard\n"
                "preferences: {}\n"
                "users:\n"
                "- name: trainyard\n"
                "  user: {}\n",
                host, port);
    FILE *f = fopen(tmp, "we");
    if (!f)
        return ty_fail_errno(err, errno, "write %s", tmp);
    fchmod(fileno(f), 0600);
    bool ok = fwrite(b.data, 1, b.len, f) == b.len;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) < 0) {
        int e = errno;
        unlink(tmp);
        return ty_fail_errno(err, e, "write %s", path);
    }
    return 0;
}

static void on_node_stopped(void *arg)
{
    server_state *st = arg;
    uv_close((uv_handle_t *)&st->housekeeping, NULL);

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
        {"service-cidr", required_argument, NULL, 'V'},
        {"require-images", no_argument, NULL, 'I'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    TY_AUTOFREE char *data_dir = NULL;
    const char *listen = "127.0.0.1:6443", *pod_cidr = NULL;
    int gpus = -1;
    TY_AUTONODES json_t *nodes = NULL;
    int next_node = 1;
    bool stop_pods = false, fair_sharing = false, no_pod_network = false, require_images = false;
    const char *cluster_dns = NULL, *cluster_domain = NULL, *service_cidr = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            free(data_dir);
            data_dir = ty_strdup(optarg);
            break;
        case 'l':
            listen = optarg;
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
        case 'V':
            service_cidr = optarg;
            break;
        case 'I':
            require_images = true;
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
    if (!data_dir)
        data_dir = ty_cli_default_data_dir();
    TY_CLEANUP_ERROR ty_error err = TY_ERROR_INIT;
    int lock_fd = -1;
    if (ty_apiserver_check_listen(listen, &err) < 0) {
        fprintf(stderr, "trainyard server: %s\n", err.msg);
        return 2;
    }
    if (check_data_dir(data_dir, &err) < 0 || (lock_fd = lock_data_dir(data_dir, &err)) < 0) {
        fprintf(stderr, "trainyard server: %s\n", err.msg);
        return 1;
    }
    server_state st = {.stop_pods = stop_pods};
    TY_AUTOFREE char *host = NULL;
    TY_AUTOFREE char *node_dir = ty_asprintf("%s/node", data_dir);
    TY_AUTOFREE char *volumes_dir = ty_asprintf("%s/volumes", data_dir);
    TY_AUTOFREE char *images_dir = ty_asprintf("%s/images", data_dir);
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
    ty_node_config ncfg = {
        .loop = &st.loop,
        .store = st.store,
        .state_dir = node_dir,
        .volumes_dir = volumes_dir,
        .gpus = gpus,
        .nodes = nodes,
        .pod_cidr = pod_cidr,
        .no_pod_network = no_pod_network,
        .pods_die_with_parent = false,
        .adopt = true,
        .fair_sharing = fair_sharing,
        .cluster_dns = cluster_dns,
        .cluster_domain = cluster_domain,
        .images_dir = images_dir,
        .require_images = require_images,
        .resource_metrics = true,
    };
    if (ty_node_start(&ncfg, &st.node, &err) < 0)
        goto out;
    if (cluster_dns && ty_node_cluster_dns(st.node)) /* the port it picked */
        fprintf(stderr, "trainyard server: cluster DNS on %s\n", ty_node_cluster_dns(st.node));
    ty_apiserver_config cfg = {.loop = &st.loop,
                               .store = st.store,
                               .listen = listen,
                               .log_path = ty_node_log_path,
                               .log_ctx = st.node,
                               .mutate = mutate_on_create,
                               .mutate_ctx = st.store,
                               .metrics = ty_node_metrics,
                               .metrics_ctx = st.node,
                               .resource_metrics = ty_node_resource_metrics,
                               .resource_metrics_ctx = st.node};
    if (ty_apiserver_start(&cfg, &st.api, &err) < 0) {
        ty_node_stop(st.node, false, NULL, NULL);
        uv_run(&st.loop, UV_RUN_DEFAULT);
        goto out;
    }
    host = client_host(listen);
    if (write_kubeconfig(data_dir, host, ty_apiserver_port(st.api), &err) < 0) {
        ty_apiserver_stop(st.api);
        ty_node_stop(st.node, false, NULL, NULL);
        uv_run(&st.loop, UV_RUN_DEFAULT);
        goto out;
    }
    fprintf(stderr, "trainyard server: serving on %s:%d; kubeconfig %s/kubeconfig\n", host,
            ty_apiserver_port(st.api), data_dir);
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
    close(lock_fd); /* the last thing: the next server may start now */
    return rc;
}
