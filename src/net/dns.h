/* Cluster DNS: the names of Services and Pods, as CoreDNS's kubernetes plugin answers them
 * (with kubeadm's Corefile: `pods insecure`, `ttl 30`, reverse zones falling through), and
 * every other name forwarded to the host's resolvers.
 *
 * Two layers:
 * - the zone (ty_dns_zone): an index of the stored Services, Pods and Namespaces, kept by
 *   ty_dns_zone_update() from store events, and ty_dns_answer(), which turns one query packet
 *   into its answer packet (RFC 1035 wire format, name compression on output, EDNS0, TC when
 *   the answer does not fit) or says it is not the zone's to answer. Pure: no I/O, no loop;
 *   what the unit tests, the fuzz target and the bench drive.
 * - the server (ty_dns): UDP and TCP on one address of the loop, the zone fed by store
 *   watches, and forwarding of other names over UDP (TCP when the answer is truncated).
 *
 * Names (<zone> is the cluster domain, cluster.local by default):
 *   <svc>.<ns>.svc.<zone>            A: the clusterIP; headless (clusterIP None): the address of
 *                                    every endpoint; ExternalName: a CNAME to externalName
 *   <ep>.<svc>.<ns>.svc.<zone>       A: the endpoint whose hostname is <ep>: spec.hostname of a
 *                                    pod whose spec.subdomain is <svc>, otherwise its address
 *                                    with dashes (10-244-0-5)
 *   _<port>._<proto>.<svc>.<ns>.svc.<zone>  SRV for the named port (and SRV on the two names
 *                                    above: every port)
 *   <a-b-c-d>.<ns>.pod.<zone>        A: a.b.c.d (when namespace <ns> exists)
 *   dns-version.<zone>               TXT "1.1.0", the specification's schema version
 *   d.c.b.a.in-addr.arpa             PTR: a Service's clusterIP, or an endpoint's name under
 *                                    every Service selecting it; else forwarded
 * An endpoint is a pod of the Service's namespace matched by its selector (a Service without
 * one has none), with a podIP, not Succeeded or Failed; ready (condition Ready True) and not
 * being deleted, unless the Service sets publishNotReadyAddresses, as the endpoints controller
 * decides. Its port is the Service port's targetPort (a name is looked up among the pod's
 * container ports). A name in the zone that has no record is NXDOMAIN, one that has records
 * but not of the type asked NODATA, both with the zone's SOA in the authority section. */
#ifndef TY_NET_DNS_H
#define TY_NET_DNS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "base/error.h"
#include "store/store.h"

/* The largest DNS message (TCP's two-byte length); UDP answers of the zone are at most
 * TY_DNS_UDP_MAX whatever a client's EDNS0 buffer size says. */
#define TY_DNS_MSG_MAX 65535
#define TY_DNS_UDP_MAX 4096
#define TY_DNS_TTL 30

typedef struct ty_dns_zone ty_dns_zone;

/* domain: e.g. "cluster.local" (a trailing dot is ignored); NULL when it is not a valid name. */
ty_dns_zone *ty_dns_zone_new(const char *domain);
void ty_dns_zone_free(ty_dns_zone *z);
/* An object of resource "services", "pods" or "namespaces" (others are ignored) was stored
 * (deleted: false) or removed (true). Keeps what it needs of `obj` (a reference). */
void ty_dns_zone_update(ty_dns_zone *z, const char *resource, const json_t *obj, bool deleted);
/* Whether `name` (presentation form, e.g. "cluster.local") is valid as a cluster domain. */
bool ty_dns_valid_domain(const char *name);

typedef enum {
    TY_DNS_REPLY,   /* *out holds the answer */
    TY_DNS_FORWARD, /* not the zone's: ask the upstream resolvers */
    TY_DNS_DROP,    /* not answered: a response, or too short to carry an id */
} ty_dns_action;

/* The answer to the query `q` (len bytes) received over TCP (tcp) or UDP, written to `out`
 * (TY_DNS_MSG_MAX bytes), its length in *out_len. Never reads past q+len. */
ty_dns_action ty_dns_answer(ty_dns_zone *z, const uint8_t *q, size_t len, bool tcp,
                            uint8_t *out, size_t *out_len);

/* The server. */
typedef struct ty_dns ty_dns;

typedef struct ty_dns_config {
    uv_loop_t *loop;
    ty_store *store;
    const char *listen;   /* "ADDR:PORT" (IPv4), port 0: one is picked */
    const char *domain;   /* NULL: "cluster.local" */
    /* Upstream resolvers as "ADDR[:PORT],..." (NULL: the nameservers of /etc/resolv.conf,
     * port 53; TRAINYARD_DNS_UPSTREAM overrides both, for tests). */
    const char *upstream;
} ty_dns_config;

int ty_dns_start(const ty_dns_config *cfg, ty_dns **out, ty_error *err);
/* "ADDR:PORT" as bound. */
const char *ty_dns_address(const ty_dns *d);
/* Stops serving (queries in flight are dropped) and frees it once its handles are closed
 * (on the loop). Accepts NULL. */
void ty_dns_free(ty_dns *d);

#endif
