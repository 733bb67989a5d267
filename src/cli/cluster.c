/* `trainyard server --kubeconfig FILE [--context NAME]` and `--in-cluster`: cluster mode
 * (cluster/cluster.h, docs/cluster.md). The job controllers, Kueue admission and the gang
 * binder run against the cluster the config names; no node agent, no API server of its own:
 * the cluster's API server and kubelets are those. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "base/mem.h"
#include "cli/cli.h"
#include "cluster/cluster.h"
#include "kube/kubeconfig.h"

typedef struct cluster_state {
    uv_loop_t loop;
    uv_signal_t sigint, sigterm;
    ty_cluster *cluster;
    ty_health *health;
    int rc;
} cluster_state;

static void shut_down(cluster_state *st)
{
    if (!st->cluster)
        return;
    ty_cluster_stop(st->cluster);
    st->cluster = NULL;
    uv_close((uv_handle_t *)&st->sigint, NULL);
    uv_close((uv_handle_t *)&st->sigterm, NULL);
}

static void on_signal(uv_signal_t *h, int signum)
{
    cluster_state *st = h->data;
    ty_info("server: signal %d, stopping", signum);
    shut_down(st);
}

/* As client-go's callers do: a replica that lost the lease exits, and its restart (the
 * Deployment's) comes back as a candidate with a mirror listed afresh. */
static void on_lost(void *arg)
{
    cluster_state *st = arg;
    ty_log(TY_LOG_ERROR, "server: no longer the leader, stopping");
    st->rc = 1;
    shut_down(st);
}

int ty_cli_server_cluster(const ty_cli_cluster_opts *o)
{
    TY_CLEANUP_ERROR ty_error err = TY_ERROR_INIT;
    ty_kube_config *kc = NULL;
    ty_kube_config_opts ko = {.kubeconfig = o->kubeconfig, .context = o->context,
                              .in_cluster = o->in_cluster};
    if (ty_kube_config_load(&ko, &kc, &err) < 0) {
        fprintf(stderr, "trainyard server: %s\n", err.msg);
        return 1;
    }
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    TY_AUTOFREE char *identity = ty_asprintf("%s_%d", host[0] ? host : "trainyard", (int)getpid());
    cluster_state st = {0};
    uv_loop_init(&st.loop);
    ty_cluster_config cfg = {.loop = &st.loop, .kube = kc, .lease_ns = kc->namespace_,
                             .identity = identity, .qps = o->qps, .burst = o->burst,
                             .fair_sharing = o->fair_sharing, .on_lost = on_lost, .arg = &st};
    if (ty_cluster_start(&cfg, &st.cluster, &err) < 0) {
        fprintf(stderr, "trainyard server: %s\n", err.msg);
        uv_run(&st.loop, UV_RUN_DEFAULT);
        uv_loop_close(&st.loop);
        ty_kube_config_free(kc);
        return 1;
    }
    if (o->listen && ty_health_start(o->listen, ty_cluster_ready_flag(st.cluster), &st.health,
                                     &err) < 0) {
        fprintf(stderr, "trainyard server: %s\n", err.msg);
        ty_cluster_stop(st.cluster);
        uv_run(&st.loop, UV_RUN_DEFAULT);
        uv_loop_close(&st.loop);
        ty_kube_config_free(kc);
        return 1;
    }
    if (st.health)
        fprintf(stderr, "trainyard server: probes (/livez, /readyz) on port %d\n",
                ty_health_port(st.health));
    uv_signal_init(&st.loop, &st.sigint);
    uv_signal_init(&st.loop, &st.sigterm);
    st.sigint.data = st.sigterm.data = &st;
    uv_signal_start(&st.sigint, on_signal, SIGINT);
    uv_signal_start(&st.sigterm, on_signal, SIGTERM);
    fprintf(stderr, "trainyard server: cluster mode against %s (%s), identity %s\n", kc->server,
            kc->source, identity);
    uv_run(&st.loop, UV_RUN_DEFAULT);
    ty_health_stop(st.health);
    uv_loop_close(&st.loop);
    ty_kube_config_free(kc);
    return st.rc;
}
