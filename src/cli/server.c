/* trainyard server: the embedded control plane. Serves the Kubernetes API over the store and
 * writes a kubeconfig for kubectl, then runs until SIGINT/SIGTERM.
 *
 * For now the store is in memory and no controllers run; persistence and the controllers and
 * runtime are wired in here (see open_store and the INTEGRATION mark). */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "base/buf.h"
#include "base/fs.h"
#include "base/log.h"
#include "base/mem.h"
#include "cli/cli.h"
#include "server/apiserver.h"
#include "store/store.h"

typedef struct server_state {
    uv_loop_t loop;
    ty_store *store;
    ty_apiserver *api;
    uv_signal_t sigint, sigterm;
    int signal;
} server_state;

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
            "  --listen ADDR     host:port to serve on (default 127.0.0.1:6443; port 0 picks one)\n"
            "  -v, --verbose     log more\n"
            "  -h, --help        this help\n");
}

/* The one place that chooses the store. STORE: switch to
 * `ty_store_open(<data-dir>/store.db, &store, err)` when SQLite persistence lands. */
static int open_store(const char *data_dir, ty_store **out, ty_error *err)
{
    (void)data_dir;
    (void)err;
    *out = ty_store_new();
    return 0;
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
/* The address clients use: the listen host, or loopback for a wildcard or empty one. */
static char *client_host(const char *listen)
{
    const char *colon = strrchr(listen, ':');
    char *host = ty_strndup(listen, colon ? (size_t)(colon - listen) : strlen(listen));
    if (!*host || strcmp(host, "0.0.0.0") == 0 || strcmp(host, "localhost") == 0) {
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

static void on_signal(uv_signal_t *h, int signum)
{
    server_state *st = h->data;
    if (st->signal)
        return;
    st->signal = signum;
    ty_info("server: signal %d, stopping", signum);
    ty_apiserver_stop(st->api);
    st->api = NULL;
    uv_close((uv_handle_t *)&st->sigint, NULL);
    uv_close((uv_handle_t *)&st->sigterm, NULL);
}

int ty_cli_server(int argc, char **argv)
{
    static const struct option opts[] = {
        {"data-dir", required_argument, NULL, 'd'},
        {"listen", required_argument, NULL, 'l'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    TY_AUTOFREE char *data_dir = NULL;
    const char *listen = "127.0.0.1:6443";
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
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    if (!data_dir) {
        const char *home = getenv("HOME");
        data_dir = ty_asprintf("%s/.local/share/trainyard", home && *home ? home : ".");
    }
    TY_CLEANUP_ERROR ty_error err = TY_ERROR_INIT;
    if (ty_mkdir_p(data_dir, 0700) < 0) {
        fprintf(stderr, "trainyard server: create %s: %s\n", data_dir, strerror(errno));
        return 1;
    }
    server_state st = {0};
    TY_AUTOFREE char *host = NULL;
    uv_loop_init(&st.loop);
    int rc = 1;
    if (open_store(data_dir, &st.store, &err) < 0 || seed_namespaces(st.store, &err) < 0)
        goto out;
    ty_apiserver_config cfg = {.loop = &st.loop, .store = st.store, .listen = listen};
    /* INTEGRATION: the controllers and the runtime start here, on the same loop and store;
     * cfg.log_path comes from the runtime (pod dir/<container>/<restart>.log). */
    if (ty_apiserver_start(&cfg, &st.api, &err) < 0)
        goto out;
    host = client_host(listen);
    if (write_kubeconfig(data_dir, host, ty_apiserver_port(st.api), &err) < 0) {
        ty_apiserver_stop(st.api);
        uv_run(&st.loop, UV_RUN_DEFAULT);
        goto out;
    }
    fprintf(stderr, "trainyard server: serving on %s:%d; kubeconfig %s/kubeconfig\n", host,
            ty_apiserver_port(st.api), data_dir);
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
    uv_loop_close(&st.loop);
    ty_store_free(st.store);
    return rc;
}
