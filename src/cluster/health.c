/* The probes of a cluster-mode replica (cluster.h, ty_health_*): /livez and /healthz answer
 * 200 while the process serves; /readyz 200 once every reflector has listed (a standby is
 * ready too: it is there to take over), 503 before. Plain HTTP, on libmicrohttpd's own thread
 * (it reads one flag the loop sets), as the kubelet's httpGet probes expect. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "cluster/cluster_int.h"
#include "server/mhd.h"

struct ty_health {
    struct MHD_Daemon *mhd;
    const bool *ready; /* written by the loop's thread, read here: a word, read relaxed */
    uint16_t port;
};

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned code, const char *text)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), (void *)text,
                                                             MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(r, "Content-Type", "text/plain; charset=utf-8");
    enum MHD_Result ret = MHD_queue_response(conn, code, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *size, void **state)
{
    (void)version, (void)data, (void)size, (void)state;
    ty_health *h = cls;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return reply(conn, 405, "method not allowed\n");
    if (strcmp(url, "/livez") == 0 || strcmp(url, "/healthz") == 0)
        return reply(conn, 200, "ok");
    if (strcmp(url, "/readyz") == 0)
        return __atomic_load_n(h->ready, __ATOMIC_RELAXED)
                   ? reply(conn, 200, "ok")
                   : reply(conn, 503, "not ready: the cluster's objects are still being listed\n");
    return reply(conn, 404, "not found\n");
}

int ty_health_start(const char *listen, const bool *ready, ty_health **out, ty_error *err)
{
    const char *colon = strrchr(listen, ':');
    char host[64];
    char *end = NULL;
    long port = colon ? strtol(colon + 1, &end, 10) : -1;
    size_t hl = colon ? (size_t)(colon - listen) : 0;
    struct sockaddr_in sa = {.sin_family = AF_INET};
    if (!colon || !*(colon + 1) || *end || port < 0 || port > 65535 || hl == 0 ||
        hl >= sizeof host)
        return ty_fail(err, "--listen %s: not IPV4:PORT", listen);
    memcpy(host, listen, hl);
    host[hl] = 0;
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
        return ty_fail(err, "--listen %s: %s is not an IPv4 address", listen, host);
    sa.sin_port = htons((uint16_t)port);
    if (ty_mhd_load(err) < 0)
        return -1;
    ty_health *h = TY_NEW(ty_health);
    h->ready = ready;
    h->mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
                              on_request, h, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                              MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
    if (!h->mhd) {
        free(h);
        return ty_fail(err, "--listen %s: cannot serve the probes there", listen);
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : (uint16_t)port;
    *out = h;
    return 0;
}

int ty_health_port(const ty_health *h) { return h->port; }

void ty_health_stop(ty_health *h)
{
    if (!h)
        return;
    MHD_stop_daemon(h->mhd);
    free(h);
}
