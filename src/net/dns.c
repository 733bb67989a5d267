/* The cluster zone: the wire format (parse, compress) and the answers (net/dns.h). */
#include "net/dns.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/map.h"
#include "base/mem.h"
#include "net/net_int.h"
#include "net/endpoints.h"

/* ---- wire format ---- */

bool dns_read_name(const uint8_t *p, size_t len, size_t *off, uint8_t *out, size_t *out_len)
{
    size_t pos = *off, n = 0, end = 0;
    bool jumped = false;
    /* Each pointer goes strictly backwards, so a loop is impossible and the hops are bounded
     * by the packet; the count bounds them again for good measure. */
    for (int hops = 0;; ) {
        if (pos >= len)
            return false;
        uint8_t c = p[pos];
        if ((c & 0xC0) == 0xC0) {
            if (pos + 1 >= len || ++hops > 64)
                return false;
            size_t target = (size_t)(c & 0x3F) << 8 | p[pos + 1];
            if (target >= pos)
                return false;
            if (!jumped)
                end = pos + 2;
            jumped = true;
            pos = target;
            continue;
        }
        if (c & 0xC0) /* 01 and 10: extended and reserved label types */
            return false;
        if (n + 1 + c > DNS_NAME_MAX || pos + 1 + c > len)
            return false;
        memcpy(out + n, p + pos, 1 + (size_t)c);
        n += 1 + (size_t)c;
        pos += 1 + (size_t)c;
        if (c == 0)
            break;
    }
    *out_len = n;
    *off = jumped ? end : pos;
    return true;
}

static bool name_labels(const uint8_t *name, size_t len, uint8_t *offs, int *count)
{
    int n = 0;
    for (size_t i = 0; i < len && name[i]; i += 1 + (size_t)name[i]) {
        if (n >= DNS_LABELS_MAX)
            return false;
        offs[n++] = (uint8_t)i;
    }
    *count = n;
    return true;
}

bool dns_name_eq(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    if (alen != blen)
        return false;
    for (size_t i = 0; i < alen; i++)
        if (tolower(a[i]) != tolower(b[i]))
            return false;
    return true;
}

/* Skips one resource record at *off; false when it runs past the packet. */
static bool skip_rr(const uint8_t *p, size_t len, size_t *off, uint16_t *type, size_t *fixed)
{
    uint8_t name[DNS_NAME_MAX];
    size_t nlen;
    if (!dns_read_name(p, len, off, name, &nlen) || *off + 10 > len)
        return false;
    *type = dns_get16(p + *off);
    *fixed = *off;
    size_t rdlen = dns_get16(p + *off + 8);
    if (*off + 10 + rdlen > len)
        return false;
    *off += 10 + rdlen;
    return nlen == 1 || *type != DNS_T_OPT ? true : (*type = 0xFFFF, true);
}

bool dns_parse_query(const uint8_t *p, size_t len, dns_query *q)
{
    memset(q, 0, sizeof *q);
    q->rcode = -1;
    q->udp_size = 512;
    if (len < DNS_HDR)
        return false;
    q->id = dns_get16(p);
    q->flags = dns_get16(p + 2);
    if (q->flags & DNS_F_QR)
        return false; /* never answer an answer: that is how loops start */
    uint16_t qd = dns_get16(p + 4), an = dns_get16(p + 6), ns = dns_get16(p + 8),
             ar = dns_get16(p + 10);
    size_t off = DNS_HDR;
    if (qd == 1 && dns_read_name(p, len, &off, q->name, &q->name_len) && off + 4 <= len &&
        name_labels(q->name, q->name_len, q->label_off, &q->labels)) {
        q->qtype = dns_get16(p + off);
        q->qclass = dns_get16(p + off + 2);
        q->question_end = off + 4;
        q->has_question = true;
        off += 4;
    }
    if (((q->flags >> 11) & 0xF) != 0) {
        q->rcode = DNS_R_NOTIMP;
        return true;
    }
    if (!q->has_question) {
        q->rcode = DNS_R_FORMERR;
        return true;
    }
    bool opt_seen = false;
    for (unsigned i = 0; i < (unsigned)an + ns + ar; i++) {
        uint16_t type;
        size_t fixed;
        if (!skip_rr(p, len, &off, &type, &fixed)) {
            q->rcode = DNS_R_FORMERR;
            return true;
        }
        if (type == 0xFFFF || (type == DNS_T_OPT && i < (unsigned)an + ns)) {
            q->rcode = DNS_R_FORMERR; /* OPT with a name, or outside the additional section */
            return true;
        }
        if (type != DNS_T_OPT)
            continue;
        if (opt_seen) {
            q->rcode = DNS_R_FORMERR; /* RFC 6891 6.1.1: more than one OPT */
            return true;
        }
        opt_seen = q->edns = true;
        uint16_t size = dns_get16(p + fixed + 2);
        q->udp_size = size < 512 ? 512 : size;
        q->dnssec_ok = p[fixed + 6] & 0x80;
        if (p[fixed + 5] != 0)
            q->rcode = 16; /* BADVERS: only version 0 exists */
    }
    return true;
}

/* ---- writing, with compression ---- */

typedef struct wr {
    uint8_t *b;
    size_t len, max;
    uint16_t comp[64]; /* offsets of names (and suffixes) written, for pointers */
    int ncomp;
} wr;

/* Whether the name at packet offset `o` equals the wire name n[0..] (ignoring case). */
static bool packet_name_eq(const wr *w, size_t o, const uint8_t *n)
{
    for (int hops = 0; hops < 64;) {
        uint8_t c = w->b[o];
        if ((c & 0xC0) == 0xC0) {
            o = (size_t)(c & 0x3F) << 8 | w->b[o + 1];
            hops++;
            continue;
        }
        if (c != *n)
            return false;
        if (c == 0)
            return true;
        for (size_t i = 1; i <= c; i++)
            if (tolower(w->b[o + i]) != tolower(n[i]))
                return false;
        o += 1 + c;
        n += 1 + c;
    }
    return false;
}

static bool put(wr *w, const void *data, size_t n)
{
    if (w->len + n > w->max)
        return false;
    memcpy(w->b + w->len, data, n);
    w->len += n;
    return true;
}

static bool put16(wr *w, uint16_t v)
{
    uint8_t b[2];
    dns_put16(b, v);
    return put(w, b, 2);
}

static bool put32(wr *w, uint32_t v)
{
    return put16(w, (uint16_t)(v >> 16)) && put16(w, (uint16_t)v);
}

/* Writes the wire name `n`, pointing at an earlier copy of its longest suffix written
 * (compress) or in full, registering where its labels went either way. */
static bool put_name(wr *w, const uint8_t *n, bool compress)
{
    for (const uint8_t *l = n; *l; l += 1 + *l) {
        for (int i = 0; compress && i < w->ncomp; i++)
            if (packet_name_eq(w, w->comp[i], l))
                return put16(w, (uint16_t)(0xC000 | w->comp[i]));
        if (w->len < 0x4000 && w->ncomp < (int)TY_ARRAY_LEN(w->comp))
            w->comp[w->ncomp++] = (uint16_t)w->len;
        if (!put(w, l, 1 + (size_t)*l))
            return false;
    }
    return put(w, "", 1);
}

typedef struct rr_mark {
    size_t start, rdlen_at;
    int ncomp;
} rr_mark;

static bool rr_begin(wr *w, rr_mark *m, const uint8_t *owner, uint16_t type, uint32_t ttl)
{
    m->start = w->len;
    m->ncomp = w->ncomp;
    if (!put_name(w, owner, true) || !put16(w, type) || !put16(w, DNS_C_IN) || !put32(w, ttl))
        return false;
    m->rdlen_at = w->len;
    return put16(w, 0);
}

/* Ends the record (ok) or takes back what was written of it. */
static bool rr_end(wr *w, const rr_mark *m, bool ok)
{
    if (!ok) {
        w->len = m->start;
        w->ncomp = m->ncomp;
        return false;
    }
    dns_put16(w->b + m->rdlen_at, (uint16_t)(w->len - m->rdlen_at - 2));
    return true;
}

static void write_header(wr *w, const dns_query *q, uint16_t flags, int rcode)
{
    w->len = 0;
    w->ncomp = 0;
    uint8_t h[DNS_HDR] = {0};
    dns_put16(h, q->id);
    dns_put16(h + 2, (uint16_t)(DNS_F_QR | (q->flags & (0x7800 | DNS_F_RD)) | DNS_F_RA |
                                flags | (rcode & 0xF)));
    dns_put16(h + 4, q->has_question ? 1 : 0);
    memcpy(w->b, h, sizeof h);
    w->len = DNS_HDR;
    if (q->has_question) {
        put_name(w, q->name, false);
        put16(w, q->qtype);
        put16(w, q->qclass);
    }
}

static void put_opt(wr *w, const dns_query *q, int rcode)
{
    if (!q->edns)
        return;
    w->max += 11; /* reserved for it */
    uint8_t o[11] = {0};
    dns_put16(o + 1, DNS_T_OPT);
    dns_put16(o + 3, TY_DNS_UDP_MAX);
    o[5] = (uint8_t)(rcode >> 4);
    o[7] = q->dnssec_ok ? 0x80 : 0;
    put(w, o, sizeof o);
    dns_put16(w->b + 10, (uint16_t)(dns_get16(w->b + 10) + 1));
}

size_t dns_error_reply(const dns_query *q, int rcode, uint8_t *out)
{
    wr w = {.b = out, .max = TY_DNS_MSG_MAX - 11};
    write_header(&w, q, 0, rcode);
    put_opt(&w, q, rcode);
    return w.len;
}

bool dns_is_response_to(const dns_query *q, uint16_t id, const uint8_t *r, size_t len)
{
    if (len < DNS_HDR || dns_get16(r) != id || !(dns_get16(r + 2) & DNS_F_QR) ||
        dns_get16(r + 4) != 1)
        return false;
    size_t off = DNS_HDR;
    uint8_t name[DNS_NAME_MAX];
    size_t nlen;
    return dns_read_name(r, len, &off, name, &nlen) && off + 4 <= len &&
           dns_name_eq(name, nlen, q->name, q->name_len) && dns_get16(r + off) == q->qtype &&
           dns_get16(r + off + 2) == q->qclass;
}

/* Appends the dotted name `text` (labels of at most 63 bytes) to the wire name being built
 * in out[*n], without the root. */
static bool append_labels(uint8_t *out, size_t *n, const char *text)
{
    while (*text) {
        const char *dot = strchr(text, '.');
        size_t l = dot ? (size_t)(dot - text) : strlen(text);
        if (l == 0 || l > 63 || *n + 1 + l + 1 > DNS_NAME_MAX)
            return false;
        out[(*n)++] = (uint8_t)l;
        for (size_t i = 0; i < l; i++)
            out[(*n)++] = (uint8_t)tolower((unsigned char)text[i]);
        text += l + (dot ? 1 : 0);
    }
    return true;
}

bool ty_dns_valid_domain(const char *name)
{
    uint8_t w[DNS_NAME_MAX];
    size_t n = 0;
    size_t len = strlen(name);
    if (len == 0 || (len == 1 && name[0] == '.'))
        return false;
    TY_AUTOFREE char *copy = ty_strndup(name, name[len - 1] == '.' ? len - 1 : len);
    for (const char *c = copy; *c; c++)
        if (!isalnum((unsigned char)*c) && *c != '-' && *c != '.' && *c != '_')
            return false;
    return append_labels(w, &n, copy);
}

/* ---- the index ---- */

typedef struct svc_port {
    char *name;       /* "" when unnamed */
    char proto[8];    /* lowercase: tcp, udp, sctp */
    int port;
    const json_t *json; /* in the Service's obj: for its targetPort */
} svc_port;

typedef struct dsvc {
    char *ns, *name;
    json_t *obj; /* for its endpoints (net/endpoints.h) */
    uint32_t ip; /* the clusterIP, network order; 0: none */
    bool headless;
    char *external_name;
    svc_port *ports;
    size_t nports;
} dsvc;

typedef struct dpod {
    char *ns, *name;
    json_t *obj;
    const char *hostname, *subdomain; /* in obj */
    uint32_t ip;
    struct dpod *ip_next; /* pods with the same address (hostNetwork) */
} dpod;

typedef struct dns_ns {
    ty_map services; /* name -> dsvc */
    ty_map pods;     /* name -> dpod */
    bool exists;     /* its Namespace object is stored */
} dns_ns;

typedef struct rec {
    uint32_t ip;
    int port; /* < 0: none (a headless Service without ports) */
    uint8_t target[DNS_NAME_MAX];
    size_t target_len;
} rec;

/* At most this many records make one answer (a 64 KiB message holds fewer anyway). */
#define REC_MAX 4096

struct ty_dns_zone {
    uint8_t domain[DNS_NAME_MAX]; /* wire form, lowercase */
    size_t domain_len;
    int domain_labels;
    ty_map namespaces; /* name -> dns_ns */
    ty_map svc_by_ip;  /* 4-byte address -> dsvc */
    ty_map pod_by_ip;  /* 4-byte address -> first dpod */
    uint32_t serial;
    rec *recs; /* scratch for one answer */
    size_t nrecs;
    uint8_t scratch[TY_DNS_MSG_MAX];
};

ty_dns_zone *ty_dns_zone_new(const char *domain)
{
    if (!domain || !ty_dns_valid_domain(domain))
        return NULL;
    ty_dns_zone *z = TY_NEW(ty_dns_zone);
    size_t len = strlen(domain);
    TY_AUTOFREE char *copy = ty_strndup(domain, domain[len - 1] == '.' ? len - 1 : len);
    append_labels(z->domain, &z->domain_len, copy);
    z->domain[z->domain_len++] = 0;
    uint8_t offs[DNS_LABELS_MAX];
    name_labels(z->domain, z->domain_len, offs, &z->domain_labels);
    z->recs = ty_calloc(REC_MAX, sizeof(rec));
    z->serial = 1;
    return z;
}

static void svc_free(dsvc *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nports; i++)
        free(s->ports[i].name);
    free(s->ports);
    free(s->external_name);
    json_decref(s->obj);
    free(s->ns);
    free(s->name);
    free(s);
}

static void pod_free(dpod *p)
{
    if (!p)
        return;
    json_decref(p->obj);
    free(p->ns);
    free(p->name);
    free(p);
}

static void ns_free(dns_ns *n)
{
    const ty_map_slot *sl;
    for (size_t i = 0; ty_map_next(&n->services, &i, &sl);)
        svc_free(sl->value);
    for (size_t i = 0; ty_map_next(&n->pods, &i, &sl);)
        pod_free(sl->value);
    ty_map_free(&n->services);
    ty_map_free(&n->pods);
    free(n);
}

void ty_dns_zone_free(ty_dns_zone *z)
{
    if (!z)
        return;
    const ty_map_slot *sl;
    for (size_t i = 0; ty_map_next(&z->namespaces, &i, &sl);)
        ns_free(sl->value);
    ty_map_free(&z->namespaces);
    ty_map_free(&z->svc_by_ip);
    ty_map_free(&z->pod_by_ip);
    free(z->recs);
    free(z);
}

static const char *str_at(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static dns_ns *ns_get(ty_dns_zone *z, const char *name, bool create)
{
    dns_ns *n = ty_map_gets(&z->namespaces, name);
    if (!n && create)
        ty_map_puts(&z->namespaces, name, n = TY_NEW(dns_ns));
    return n;
}

/* A namespace that is neither stored nor holds anything goes. */
static void ns_maybe_drop(ty_dns_zone *z, const char *name)
{
    dns_ns *n = ty_map_gets(&z->namespaces, name);
    if (n && !n->exists && n->services.count == 0 && n->pods.count == 0) {
        ty_map_dels(&z->namespaces, name);
        ns_free(n);
    }
}

static uint32_t parse_ip(const char *s)
{
    struct in_addr a;
    return s && inet_pton(AF_INET, s, &a) == 1 ? a.s_addr : 0;
}

static dsvc *svc_new(const json_t *obj)
{
    const json_t *meta = json_object_get(obj, "metadata"), *spec = json_object_get(obj, "spec");
    dsvc *s = TY_NEW(dsvc);
    s->ns = ty_strdup(str_at(meta, "namespace") ? str_at(meta, "namespace") : "default");
    s->name = ty_strdup(str_at(meta, "name"));
    s->obj = json_incref((json_t *)obj);
    const char *ip = str_at(spec, "clusterIP");
    s->headless = ip && strcmp(ip, "None") == 0;
    s->ip = parse_ip(ip);
    const char *type = str_at(spec, "type");
    if (type && strcmp(type, "ExternalName") == 0 && str_at(spec, "externalName"))
        s->external_name = ty_strdup(str_at(spec, "externalName"));
    const json_t *ports = json_object_get(spec, "ports");
    s->ports = ty_calloc(json_array_size(ports) + 1, sizeof(svc_port));
    size_t i;
    const json_t *p;
    json_array_foreach(ports, i, p)
    {
        svc_port *sp = &s->ports[s->nports];
        const json_t *port = json_object_get(p, "port");
        if (!json_is_integer(port))
            continue;
        sp->port = (int)json_integer_value(port);
        sp->name = ty_strdup(str_at(p, "name") ? str_at(p, "name") : "");
        const char *proto = str_at(p, "protocol") ? str_at(p, "protocol") : "TCP";
        for (size_t c = 0; c < sizeof sp->proto - 1 && proto[c]; c++)
            sp->proto[c] = (char)tolower((unsigned char)proto[c]);
        sp->json = p;
        s->nports++;
    }
    return s;
}

static dpod *pod_new(const json_t *obj)
{
    const json_t *meta = json_object_get(obj, "metadata"), *spec = json_object_get(obj, "spec");
    dpod *p = TY_NEW(dpod);
    p->ns = ty_strdup(str_at(meta, "namespace") ? str_at(meta, "namespace") : "default");
    p->name = ty_strdup(str_at(meta, "name"));
    p->obj = json_incref((json_t *)obj);
    p->hostname = str_at(spec, "hostname");
    p->subdomain = str_at(spec, "subdomain");
    p->ip = parse_ip(str_at(json_object_get(obj, "status"), "podIP"));
    return p;
}

static void svc_unlink(ty_dns_zone *z, dsvc *s)
{
    if (s->ip && ty_map_get(&z->svc_by_ip, &s->ip, 4) == s)
        ty_map_del(&z->svc_by_ip, &s->ip, 4);
}

static void pod_unlink(ty_dns_zone *z, dpod *p)
{
    if (!p->ip)
        return;
    dpod *head = ty_map_get(&z->pod_by_ip, &p->ip, 4);
    if (head == p) {
        if (p->ip_next)
            ty_map_put(&z->pod_by_ip, &p->ip, 4, p->ip_next);
        else
            ty_map_del(&z->pod_by_ip, &p->ip, 4);
        return;
    }
    for (dpod *q = head; q; q = q->ip_next)
        if (q->ip_next == p) {
            q->ip_next = p->ip_next;
            return;
        }
}

void ty_dns_zone_update(ty_dns_zone *z, const char *resource, const json_t *obj, bool deleted)
{
    const json_t *meta = json_object_get(obj, "metadata");
    const char *name = str_at(meta, "name");
    const char *ns = str_at(meta, "namespace") ? str_at(meta, "namespace") : "default";
    if (!name)
        return;
    z->serial++;
    if (strcmp(resource, "namespaces") == 0) {
        dns_ns *n = ns_get(z, name, !deleted);
        if (n)
            n->exists = !deleted;
        ns_maybe_drop(z, name);
    } else if (strcmp(resource, "services") == 0) {
        dns_ns *n = ns_get(z, ns, !deleted);
        dsvc *old = n ? ty_map_dels(&n->services, name) : NULL;
        if (old) {
            svc_unlink(z, old);
            svc_free(old);
        }
        if (!deleted) {
            dsvc *s = svc_new(obj);
            ty_map_puts(&n->services, name, s);
            if (s->ip)
                ty_map_put(&z->svc_by_ip, &s->ip, 4, s);
        }
        ns_maybe_drop(z, ns);
    } else if (strcmp(resource, "pods") == 0) {
        dns_ns *n = ns_get(z, ns, !deleted);
        dpod *old = n ? ty_map_dels(&n->pods, name) : NULL;
        if (old) {
            pod_unlink(z, old);
            pod_free(old);
        }
        if (!deleted) {
            dpod *p = pod_new(obj);
            ty_map_puts(&n->pods, name, p);
            if (p->ip) {
                p->ip_next = ty_map_get(&z->pod_by_ip, &p->ip, 4);
                ty_map_put(&z->pod_by_ip, &p->ip, 4, p);
            }
        }
        ns_maybe_drop(z, ns);
    }
}

/* ---- answers ---- */

/* Whether the pod is one of the Service's endpoints, with an IPv4 address. */
static bool selects(const dsvc *s, const dpod *p)
{
    return p->ip && ty_endpoint_of(s->obj, p->obj);
}

/* The endpoint's name under the Service: its hostname, or its address with dashes. */
static void endpoint_host(const dsvc *s, const dpod *p, char *out, size_t n)
{
    if (p->hostname && *p->hostname && p->subdomain && strcmp(p->subdomain, s->name) == 0) {
        snprintf(out, n, "%s", p->hostname);
        return;
    }
    const uint8_t *b = (const uint8_t *)&p->ip;
    snprintf(out, n, "%u-%u-%u-%u", b[0], b[1], b[2], b[3]);
}

/* The wire name "<host>.<svc>.<ns>.svc.<domain>" (host may be NULL). */
static bool svc_name(const ty_dns_zone *z, const char *host, const dsvc *s, rec *r)
{
    r->target_len = 0;
    if ((host && !append_labels(r->target, &r->target_len, host)) ||
        !append_labels(r->target, &r->target_len, s->name) ||
        !append_labels(r->target, &r->target_len, s->ns) ||
        !append_labels(r->target, &r->target_len, "svc") ||
        r->target_len + z->domain_len > DNS_NAME_MAX)
        return false;
    memcpy(r->target + r->target_len, z->domain, z->domain_len);
    r->target_len += z->domain_len;
    return true;
}

/* Label i of the query's name equals `s` (ignoring case). */
static bool label_is(const dns_query *q, int i, const char *s)
{
    const uint8_t *l = q->name + q->label_off[i];
    size_t n = strlen(s);
    if (l[0] != n)
        return false;
    for (size_t k = 0; k < n; k++)
        if (tolower(l[1 + k]) != tolower((unsigned char)s[k]))
            return false;
    return true;
}

/* Label i as a lowercase string (labels with a NUL or a dot cannot name an object). */
static bool label_str(const dns_query *q, int i, char out[64])
{
    const uint8_t *l = q->name + q->label_off[i];
    for (size_t k = 0; k < l[0]; k++) {
        if (l[1 + k] == 0 || l[1 + k] == '.')
            return false;
        out[k] = (char)tolower(l[1 + k]);
    }
    out[l[0]] = '\0';
    return true;
}

static bool port_matches(const svc_port *sp, const char *port, const char *proto)
{
    return (!port || strcmp(port, sp->name) == 0) && (!proto || strcmp(proto, sp->proto) == 0);
}

static void add_rec(ty_dns_zone *z, const rec *r)
{
    if (z->nrecs < REC_MAX)
        z->recs[z->nrecs++] = *r;
}

/* The records of a Service name (CoreDNS's findServices): endpoint, port and protocol filter
 * (NULL: any). false: the name does not exist (NXDOMAIN). */
static bool service_records(ty_dns_zone *z, dns_ns *n, const dsvc *s, const char *endpoint,
                            const char *port, const char *proto)
{
    rec r;
    if (s->external_name)
        return false; /* handled by the caller (a CNAME), never with an endpoint */
    if (s->headless || endpoint) {
        bool found = false;
        const ty_map_slot *sl;
        for (size_t i = 0; ty_map_next(&n->pods, &i, &sl);) {
            const dpod *p = sl->value;
            if (!selects(s, p))
                continue;
            char host[64];
            endpoint_host(s, p, host, sizeof host);
            if ((endpoint && strcmp(endpoint, host) != 0) || !svc_name(z, host, s, &r))
                continue;
            r.ip = p->ip;
            if (s->nports == 0 && !port && !proto) { /* a port-less headless Service */
                r.port = -1;
                add_rec(z, &r);
                found = true;
            }
            for (size_t k = 0; k < s->nports; k++) {
                const svc_port *sp = &s->ports[k];
                if (!port_matches(sp, port, proto))
                    continue;
                r.port = ty_endpoint_port(sp->json, p->obj);
                if (r.port < 0)
                    continue;
                add_rec(z, &r);
                found = true;
            }
        }
        return found;
    }
    if (!s->ip || !svc_name(z, NULL, s, &r))
        return false;
    r.ip = s->ip;
    bool found = false;
    for (size_t k = 0; k < s->nports; k++)
        if (port_matches(&s->ports[k], port, proto)) {
            r.port = s->ports[k].port;
            add_rec(z, &r);
            found = true;
        }
    return found;
}

typedef enum { LK_NXDOMAIN, LK_NODATA, LK_RECORDS, LK_CNAME, LK_VERSION } lookup_result;

/* Looks the zone name up (the labels before the domain: 0..n-1); fills z->recs. */
static lookup_result lookup(ty_dns_zone *z, const dns_query *q, int n, const char **cname)
{
    z->nrecs = 0;
    if (n == 0)
        return LK_NODATA;
    if (n == 1 && label_is(q, 0, "dns-version"))
        return LK_VERSION; /* the schema version the DNS specification asks for */
    bool svc = label_is(q, n - 1, "svc");
    if (!svc && !label_is(q, n - 1, "pod"))
        return LK_NXDOMAIN;
    if (n == 1)
        return LK_NODATA;
    char ns[64], a[64], b[64], c[64];
    dns_ns *nsp = label_str(q, n - 2, ns) ? ty_map_gets(&z->namespaces, ns) : NULL;
    if (!nsp || !nsp->exists)
        return LK_NXDOMAIN;
    if (n == 2)
        return LK_NODATA;
    if (!svc) {
        /* pods insecure: the address is the name's, the namespace must exist */
        if (n != 3 || !label_str(q, 0, a))
            return LK_NXDOMAIN;
        int dashes = 0;
        for (char *p = a; *p; p++)
            if (*p == '-') {
                *p = '.';
                dashes++;
            }
        rec r = {.port = -1};
        r.ip = parse_ip(a);
        if (dashes != 3 || !r.ip || strstr(a, ".."))
            return LK_NXDOMAIN;
        memcpy(r.target, q->name, q->name_len);
        r.target_len = q->name_len;
        add_rec(z, &r);
        return LK_RECORDS;
    }
    const char *endpoint = NULL, *port = NULL, *proto = NULL, *service;
    if (n > 5 || !label_str(q, 0, a) || (n >= 4 && !label_str(q, 1, b)) ||
        (n == 5 && !label_str(q, 2, c)))
        return LK_NXDOMAIN;
    if (n == 3) {
        service = a;
    } else if (n == 4) {
        endpoint = a;
        service = b;
    } else {
        if (a[0] != '_' || b[0] != '_')
            return LK_NXDOMAIN;
        port = a + 1;
        proto = b + 1;
        service = c;
    }
    const dsvc *s = ty_map_gets(&nsp->services, service);
    if (!s)
        return LK_NXDOMAIN;
    if (s->external_name) {
        if (endpoint || port)
            return LK_NXDOMAIN;
        *cname = s->external_name;
        return LK_CNAME;
    }
    return service_records(z, nsp, s, endpoint, port, proto) ? LK_RECORDS : LK_NXDOMAIN;
}

/* The reverse name d.c.b.a.in-addr.arpa as an address (network order), or 0. */
static uint32_t reverse_ip(const dns_query *q)
{
    if (q->labels != 6 || !label_is(q, 4, "in-addr") || !label_is(q, 5, "arpa"))
        return 0;
    uint8_t b[4];
    for (int i = 0; i < 4; i++) {
        char l[64];
        if (!label_str(q, i, l) || !*l || strlen(l) > 3 || strspn(l, "0123456789") != strlen(l))
            return 0;
        int v = atoi(l);
        if (v > 255 || (l[0] == '0' && l[1]))
            return 0;
        b[3 - i] = (uint8_t)v;
    }
    uint32_t ip;
    memcpy(&ip, b, 4);
    return ip;
}

/* PTR targets for an address (CoreDNS's reverse.go): a Service's clusterIP, else every name
 * the address has as an endpoint. */
static bool reverse_records(ty_dns_zone *z, uint32_t ip)
{
    z->nrecs = 0;
    rec r = {.port = -1};
    const dsvc *s = ty_map_get(&z->svc_by_ip, &ip, 4);
    if (s && svc_name(z, NULL, s, &r)) {
        add_rec(z, &r);
        return true;
    }
    for (const dpod *p = ty_map_get(&z->pod_by_ip, &ip, 4); p; p = p->ip_next) {
        const dns_ns *n = ty_map_gets(&z->namespaces, p->ns);
        const ty_map_slot *sl;
        for (size_t i = 0; n && ty_map_next(&n->services, &i, &sl);) {
            const dsvc *svc = sl->value;
            char host[64];
            if (svc->external_name || !selects(svc, p))
                continue;
            endpoint_host(svc, p, host, sizeof host);
            if (svc_name(z, host, svc, &r))
                add_rec(z, &r);
        }
    }
    return z->nrecs > 0;
}

static bool put_soa(ty_dns_zone *z, wr *w)
{
    rr_mark m;
    uint8_t mname[DNS_NAME_MAX], rname[DNS_NAME_MAX];
    size_t ml = 0, rl = 0;
    bool ok = append_labels(mname, &ml, "ns.dns") && append_labels(rname, &rl, "hostmaster") &&
              ml + z->domain_len <= DNS_NAME_MAX && rl + z->domain_len <= DNS_NAME_MAX;
    if (!ok)
        return false;
    memcpy(mname + ml, z->domain, z->domain_len);
    memcpy(rname + rl, z->domain, z->domain_len);
    ok = rr_begin(w, &m, z->domain, DNS_T_SOA, TY_DNS_TTL) && put_name(w, mname, true) &&
         put_name(w, rname, true) && put32(w, z->serial) && put32(w, 7200) && put32(w, 1800) &&
         put32(w, 86400) && put32(w, TY_DNS_TTL);
    return rr_end(w, &m, ok);
}

static bool put_a(wr *w, const uint8_t *owner, uint32_t ip)
{
    rr_mark m;
    return rr_end(w, &m, rr_begin(w, &m, owner, DNS_T_A, TY_DNS_TTL) && put(w, &ip, 4));
}

static void count(wr *w, int section, int add)
{
    uint8_t *c = w->b + 6 + 2 * section;
    dns_put16(c, (uint16_t)(dns_get16(c) + add));
}

/* The answer section from z->recs for the query type; sets TC when a record does not fit.
 * Returns whether the name has records of that type. */
static bool put_records(ty_dns_zone *z, wr *w, const dns_query *q, bool ptr)
{
    int an = 0;
    bool tc = false;
    size_t nrec = z->nrecs;
    if (ptr) {
        for (size_t i = 0; i < nrec && !tc; i++) {
            rr_mark m;
            bool ok = rr_begin(w, &m, q->name, DNS_T_PTR, TY_DNS_TTL) &&
                      put_name(w, z->recs[i].target, true);
            tc = !rr_end(w, &m, ok);
            an += ok;
        }
    } else if (q->qtype == DNS_T_A) {
        for (size_t i = 0; i < nrec && !tc; i++) {
            bool dup = false;
            for (size_t k = 0; k < i && !dup; k++)
                dup = z->recs[k].ip == z->recs[i].ip;
            if (dup)
                continue;
            tc = !put_a(w, q->name, z->recs[i].ip);
            an += !tc;
        }
    } else if (q->qtype == DNS_T_SRV) {
        size_t srv = 0;
        for (size_t i = 0; i < nrec; i++)
            srv += z->recs[i].port >= 0;
        /* CoreDNS: every record at priority 0, weights splitting 100 evenly. */
        uint16_t weight = srv ? (uint16_t)(100 / srv) : 0;
        for (size_t i = 0; i < nrec && !tc; i++) {
            if (z->recs[i].port < 0)
                continue;
            rr_mark m;
            bool ok = rr_begin(w, &m, q->name, DNS_T_SRV, TY_DNS_TTL) && put16(w, 0) &&
                      put16(w, weight) && put16(w, (uint16_t)z->recs[i].port) &&
                      put_name(w, z->recs[i].target, false); /* RFC 2782: no compression */
            tc = !rr_end(w, &m, ok);
            an += ok;
        }
        /* The targets' addresses as additional records, each once; those that do not fit
         * are left out without TC (RFC 2181 9). */
        int ar = 0;
        for (size_t i = 0; i < nrec && !tc; i++) {
            bool dup = z->recs[i].port < 0;
            for (size_t k = 0; k < i && !dup; k++)
                dup = z->recs[k].port >= 0 && z->recs[k].ip == z->recs[i].ip &&
                      dns_name_eq(z->recs[k].target, z->recs[k].target_len,
                                  z->recs[i].target, z->recs[i].target_len);
            if (dup)
                continue;
            if (!put_a(w, z->recs[i].target, z->recs[i].ip))
                break;
            ar++;
        }
        count(w, 2, ar);
    }
    count(w, 0, an);
    if (tc)
        dns_put16(w->b + 2, dns_get16(w->b + 2) | DNS_F_TC);
    return an > 0 || tc;
}

static bool in_domain(const ty_dns_zone *z, const dns_query *q, int *before)
{
    int n = q->labels - z->domain_labels;
    if (n < 0)
        return false;
    size_t off = n == q->labels ? q->name_len - 1 : q->label_off[n];
    if (!dns_name_eq(q->name + off, q->name_len - off, z->domain, z->domain_len))
        return false;
    *before = n;
    return true;
}

ty_dns_action ty_dns_answer(ty_dns_zone *z, const uint8_t *pkt, size_t len, bool tcp,
                            uint8_t *out, size_t *out_len)
{
    dns_query q;
    if (!dns_parse_query(pkt, len, &q))
        return TY_DNS_DROP;
    size_t limit = tcp ? TY_DNS_MSG_MAX : q.udp_size > TY_DNS_UDP_MAX ? TY_DNS_UDP_MAX
                                                                     : q.udp_size;
    wr w = {.b = out, .max = limit - (q.edns ? 11 : 0)};
    if (q.rcode >= 0) {
        *out_len = dns_error_reply(&q, q.rcode, out);
        return TY_DNS_REPLY;
    }
    int before;
    uint32_t rev = 0;
    if (q.qclass != DNS_C_IN)
        return TY_DNS_FORWARD; /* CoreDNS's kubernetes plugin passes other classes on */
    if (in_domain(z, &q, &before)) {
        if (q.qtype == DNS_T_AXFR || q.qtype == DNS_T_IXFR) {
            *out_len = dns_error_reply(&q, DNS_R_REFUSED, out);
            return TY_DNS_REPLY;
        }
        const char *cname = NULL;
        lookup_result lr = lookup(z, &q, before, &cname);
        write_header(&w, &q, DNS_F_AA, lr == LK_NXDOMAIN ? DNS_R_NXDOMAIN : DNS_R_NOERROR);
        bool answered = false;
        if (lr == LK_CNAME) {
            uint8_t target[DNS_NAME_MAX];
            size_t tl = 0;
            rr_mark m;
            if (append_labels(target, &tl, cname) && tl < DNS_NAME_MAX) {
                target[tl++] = 0;
                bool ok = rr_begin(&w, &m, q.name, DNS_T_CNAME, TY_DNS_TTL) &&
                          put_name(&w, target, true);
                answered = rr_end(&w, &m, ok);
                count(&w, 0, answered);
            }
        } else if (lr == LK_RECORDS) {
            answered = put_records(z, &w, &q, false);
        } else if (lr == LK_VERSION && q.qtype == DNS_T_TXT) {
            rr_mark m;
            bool ok = rr_begin(&w, &m, q.name, DNS_T_TXT, TY_DNS_TTL) && put(&w, "\0051.1.0", 6);
            answered = rr_end(&w, &m, ok);
            count(&w, 0, answered);
        } else if (lr == LK_NODATA && q.qtype == DNS_T_SOA && before == 0) {
            answered = put_soa(z, &w);
            count(&w, 0, answered);
        }
        if (!answered && put_soa(z, &w))
            count(&w, 1, 1);
    } else if ((rev = reverse_ip(&q)) != 0 && q.qtype == DNS_T_PTR && reverse_records(z, rev)) {
        write_header(&w, &q, DNS_F_AA, DNS_R_NOERROR);
        put_records(z, &w, &q, true);
    } else {
        return TY_DNS_FORWARD; /* also reverse names of addresses the zone does not know */
    }
    put_opt(&w, &q, 0);
    *out_len = w.len;
    return TY_DNS_REPLY;
}
