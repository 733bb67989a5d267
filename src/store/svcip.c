/* ClusterIP allocation (store/store_int.h). */
#include "store/store_int.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "base/map.h"
#include "base/mem.h"

#define DEFAULT_CIDR "10.96.0.0/12"

struct ty_svcip {
    uint32_t base;  /* the network address, host order */
    uint32_t size;  /* addresses in the range, network and broadcast included */
    char cidr[24];
    bool watching;
    int watch_id;
    ty_map by_ip;   /* 4-byte address (host order) -> the holder's key (owned copy) */
    ty_map by_key;  /* "ns/name" -> address (host order, as a pointer-sized integer) */
};

static int parse_cidr(const char *cidr, uint32_t *base, uint32_t *size)
{
    char addr[20];
    const char *slash = strchr(cidr, '/');
    struct in_addr a;
    char *end;
    if (!slash || (size_t)(slash - cidr) >= sizeof addr)
        return -1;
    memcpy(addr, cidr, (size_t)(slash - cidr));
    addr[slash - cidr] = '\0';
    long bits = strtol(slash + 1, &end, 10);
    if (inet_pton(AF_INET, addr, &a) != 1 || *end || !slash[1] || bits < 12 || bits > 30)
        return -1;
    uint32_t mask = ~0u << (32 - bits);
    *base = ntohl(a.s_addr) & mask;
    *size = ~mask + 1;
    return 0;
}

static ty_svcip *svcip_new(const char *cidr)
{
    ty_svcip *a = TY_NEW(ty_svcip);
    parse_cidr(cidr, &a->base, &a->size);
    snprintf(a->cidr, sizeof a->cidr, "%s", cidr);
    return a;
}

int ty_svcip_set_cidr(ty_svcip **a, ty_store *s, const char *cidr, ty_error *err)
{
    (void)s;
    uint32_t base, size;
    if (parse_cidr(cidr, &base, &size) < 0)
        return ty_fail(err, "service cidr %s: not an IPv4 range A.B.C.D/N with N from 12 to 30",
                       cidr);
    if (!*a)
        *a = svcip_new(cidr);
    (*a)->base = base;
    (*a)->size = size;
    snprintf((*a)->cidr, sizeof (*a)->cidr, "%s", cidr);
    return 0;
}

static const char *str_at(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* The service's address (host order) when it holds an IPv4 one, else 0. */
static uint32_t held(const json_t *svc)
{
    const char *ip = str_at(json_object_get(svc, "spec"), "clusterIP");
    struct in_addr a;
    return ip && inet_pton(AF_INET, ip, &a) == 1 ? ntohl(a.s_addr) : 0;
}

static void release_key(ty_svcip *a, const char *key)
{
    void *v = ty_map_dels(&a->by_key, key);
    if (!v)
        return;
    uint32_t ip = (uint32_t)(uintptr_t)v;
    char *holder = ty_map_get(&a->by_ip, &ip, 4);
    if (holder && strcmp(holder, key) == 0)
        free(ty_map_del(&a->by_ip, &ip, 4));
}

static void track(ty_svcip *a, const json_t *svc, bool deleted)
{
    const json_t *meta = json_object_get(svc, "metadata");
    const char *ns = str_at(meta, "namespace"), *name = str_at(meta, "name");
    if (!name)
        return;
    TY_AUTOFREE char *key = ty_asprintf("%s/%s", ns ? ns : "", name);
    release_key(a, key);
    uint32_t ip = deleted ? 0 : held(svc);
    if (!ip)
        return;
    ty_map_puts(&a->by_key, key, (void *)(uintptr_t)ip);
    /* Two holders only come from data stored before the allocator: the last one counts. */
    free(ty_map_put(&a->by_ip, &ip, 4, ty_strdup(key)));
}

static void on_service(void *ctx, ty_event_type type, const char *resource, const json_t *obj)
{
    (void)resource;
    track(ctx, obj, type == TY_EVENT_DELETED);
}

/* The watch and the stored Services, once. */
static void start_tracking(ty_svcip *a, ty_store *s)
{
    if (a->watching)
        return;
    json_t *all = ty_store_list(s, "services", NULL);
    size_t i;
    json_t *svc;
    json_array_foreach(all, i, svc) track(a, svc, false);
    json_decref(all);
    ty_store_watch(s, &(ty_store_watch_opts){.resource = "services", .fn = on_service, .ctx = a},
                   &a->watch_id, NULL);
    a->watching = true;
}

static void ip_text(uint32_t ip, char out[INET_ADDRSTRLEN])
{
    struct in_addr a = {.s_addr = htonl(ip)};
    inet_ntop(AF_INET, &a, out, INET_ADDRSTRLEN);
}

/* A free address: random in [lo, hi), then the next free one after it, wrapping. */
static uint32_t pick(const ty_svcip *a, uint32_t lo, uint32_t hi)
{
    if (hi <= lo)
        return 0;
    uint32_t r = 0;
    if (getrandom(&r, sizeof r, 0) != sizeof r)
        r = (uint32_t)random();
    uint32_t n = hi - lo;
    for (uint32_t k = 0; k < n; k++) {
        uint32_t ip = a->base + lo + (r + k) % n;
        if (!ty_map_has(&a->by_ip, &ip, 4))
            return ip;
    }
    return 0;
}

static bool needs_ip(const json_t *spec)
{
    const char *type = str_at(spec, "type");
    return !type || strcmp(type, "ExternalName") != 0;
}

/* The clusterIP asked for: clusterIP, else clusterIPs[0]; NULL or "" when none. A clusterIPs
 * that disagrees with clusterIP is refused, as validation does. */
static int asked(const json_t *spec, const char **out, ty_error *err)
{
    const char *ip = str_at(spec, "clusterIP");
    const char *first = json_string_value(json_array_get(json_object_get(spec, "clusterIPs"), 0));
    if (ip && *ip && first && strcmp(ip, first) != 0)
        return ty_fail_code(err, TY_STORE_INVALID,
                         "spec.clusterIPs[0]: Invalid value: \"%s\": must match `clusterIP` when "
                         "set", first);
    *out = ip && *ip ? ip : first;
    return 0;
}

static void set_ip(json_t *spec, const char *ip)
{
    json_object_set_new(spec, "clusterIP", json_string(ip));
    json_object_set_new(spec, "clusterIPs", json_pack("[s]", ip));
}

/* A create's address: allocated, or the one asked for when it is valid and free. */
static int allocate(ty_svcip *a, json_t *spec, const char *want, ty_error *err)
{
    char addr[INET_ADDRSTRLEN];
    if (!want || !*want) {
        uint32_t top = a->size - 1; /* the broadcast address */
        uint32_t band = a->size / 16 < 16 ? 16 : a->size / 16 > 256 ? 256 : a->size / 16;
        if (band > top)
            band = top;
        uint32_t ip = pick(a, band, top);
        if (!ip)
            ip = pick(a, 1, band);
        if (!ip)
            return ty_fail_code(err, TY_STORE_INTERNAL,
                             "failed to allocate a serviceIP: range is full");
        ip_text(ip, addr);
        set_ip(spec, addr);
        return 0;
    }
    if (strcmp(want, "None") == 0) {
        set_ip(spec, "None");
        return 0;
    }
    struct in_addr in;
    if (inet_pton(AF_INET, want, &in) != 1)
        return ty_fail_code(err, TY_STORE_INVALID,
                         "spec.clusterIPs[0]: Invalid value: \"%s\": must be a valid IP address, "
                         "(e.g. 10.9.8.7 or 2001:db8::ffff)", want);
    uint32_t ip = ntohl(in.s_addr);
    if (ip <= a->base || ip >= a->base + a->size - 1)
        return ty_fail_code(err, TY_STORE_INVALID,
                         "spec.clusterIPs: Invalid value: []string{\"%s\"}: failed to allocate IP "
                         "%s: the provided IP (%s) is not in the valid range. The range of valid "
                         "IPs is %s", want, want, want, a->cidr);
    if (ty_map_has(&a->by_ip, &ip, 4))
        return ty_fail_code(err, TY_STORE_INVALID,
                         "spec.clusterIPs: Invalid value: []string{\"%s\"}: failed to allocate IP "
                         "%s: provided IP is already allocated", want, want);
    ip_text(ip, addr);
    set_ip(spec, addr);
    return 0;
}

void ty_svcip_first(ty_svcip **a, char out[16])
{
    if (!*a)
        *a = svcip_new(DEFAULT_CIDR);
    char addr[INET_ADDRSTRLEN];
    ip_text((*a)->base + 1, addr);
    snprintf(out, 16, "%s", addr);
}

int ty_svcip_prepare(ty_svcip **ap, ty_store *s, json_t *svc, const json_t *cur, ty_error *err)
{
    json_t *spec = json_object_get(svc, "spec");
    if (!json_is_object(spec) || !needs_ip(spec))
        return 0;
    if (!*ap)
        *ap = svcip_new(DEFAULT_CIDR);
    ty_svcip *a = *ap;
    start_tracking(a, s);
    const char *want = NULL;
    if (asked(spec, &want, err) < 0)
        return -1;
    const json_t *curspec = json_object_get(cur, "spec");
    if (!cur || !needs_ip(curspec))
        return allocate(a, spec, want, err); /* created, or no longer ExternalName */
    /* Immutable: kept when not given, refused when changed. */
    const char *had = str_at(curspec, "clusterIP");
    if (!had || !*had)
        return allocate(a, spec, want, err);
    if (!want || !*want) {
        set_ip(spec, had);
        return 0;
    }
    if (strcmp(want, had) != 0)
        return ty_fail_code(err, TY_STORE_INVALID,
                         "spec.clusterIPs[0]: Invalid value: []string{\"%s\"}: may not change "
                         "once set", want);
    set_ip(spec, had);
    return 0;
}

void ty_svcip_free(ty_svcip *a, ty_store *s)
{
    if (!a)
        return;
    if (a->watching)
        ty_store_unwatch(s, a->watch_id);
    const ty_map_slot *slot;
    for (size_t i = 0; ty_map_next(&a->by_ip, &i, &slot);)
        free(slot->value);
    ty_map_free(&a->by_ip);
    ty_map_free(&a->by_key);
    free(a);
}
