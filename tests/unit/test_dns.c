/* The cluster zone's answers (net/dns.h), packet in, packet out. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "net/dns.h"
#include "net/net_int.h"

static ty_dns_zone *z;

static void add(const char *resource, const char *text)
{
    json_error_t e;
    json_t *o = json_loads(text, 0, &e);
    cr_assert(o, "fixture: %s", e.text);
    ty_dns_zone_update(z, resource, o, false);
    json_decref(o);
}

static void del(const char *resource, const char *ns, const char *name)
{
    json_t *o = json_pack("{s:{s:s,s:s}}", "metadata", "namespace", ns, "name", name);
    ty_dns_zone_update(z, resource, o, true);
    json_decref(o);
}

static void pod(const char *ns, const char *name, const char *app, const char *ip, bool ready,
                const char *hostname, const char *subdomain)
{
    char text[1024];
    snprintf(text, sizeof text,
             "{\"metadata\":{\"namespace\":\"%s\",\"name\":\"%s\",\"labels\":{\"app\":\"%s\"}},"
             "\"spec\":{%s%s%s%s%s%s\"containers\":[{\"name\":\"c\",\"ports\":[{\"name\":"
             "\"web\",\"containerPort\":8080}]}]},"
             "\"status\":{\"phase\":\"Running\",\"podIP\":\"%s\",\"conditions\":[{\"type\":"
             "\"Ready\",\"status\":\"%s\"}]}}",
             ns, name, app, hostname ? "\"hostname\":\"" : "", hostname ? hostname : "",
             hostname ? "\"," : "", subdomain ? "\"subdomain\":\"" : "",
             subdomain ? subdomain : "", subdomain ? "\"," : "", ip, ready ? "True" : "False");
    add("pods", text);
}

static void setup(void)
{
    z = ty_dns_zone_new("cluster.local");
    add("namespaces", "{\"metadata\":{\"name\":\"ns1\"}}");
    add("services", "{\"metadata\":{\"namespace\":\"ns1\",\"name\":\"web\"},\"spec\":{"
                    "\"clusterIP\":\"10.96.0.10\",\"selector\":{\"app\":\"web\"},\"ports\":["
                    "{\"name\":\"http\",\"port\":80,\"targetPort\":\"web\",\"protocol\":\"TCP\"},"
                    "{\"name\":\"dns\",\"port\":53,\"protocol\":\"UDP\"}]}}");
    add("services", "{\"metadata\":{\"namespace\":\"ns1\",\"name\":\"db\"},\"spec\":{"
                    "\"clusterIP\":\"None\",\"selector\":{\"app\":\"db\"},\"ports\":["
                    "{\"name\":\"pg\",\"port\":5432,\"targetPort\":\"web\"}]}}");
    pod("ns1", "db-0", "db", "10.244.0.5", true, "db-0", "db");
    pod("ns1", "db-1", "db", "10.244.0.6", true, NULL, NULL);
    pod("ns1", "db-2", "db", "10.244.0.7", false, NULL, NULL);
    pod("ns1", "web-a", "web", "10.244.0.9", true, NULL, NULL);
}

static void teardown(void) { ty_dns_zone_free(z); }

TestSuite(dns, .init = setup, .fini = teardown);

/* A query for name/type; edns: the UDP size to advertise (0: no OPT). */
static size_t query(uint8_t *b, const char *name, uint16_t type, uint16_t edns)
{
    memset(b, 0, DNS_HDR);
    dns_put16(b, 0x1234);
    dns_put16(b + 2, DNS_F_RD);
    dns_put16(b + 4, 1);
    size_t n = DNS_HDR;
    for (const char *l = name; *l;) {
        const char *dot = strchr(l, '.');
        size_t len = dot ? (size_t)(dot - l) : strlen(l);
        b[n++] = (uint8_t)len;
        memcpy(b + n, l, len);
        n += len;
        l += len + (dot ? 1 : 0);
    }
    b[n++] = 0;
    dns_put16(b + n, type);
    dns_put16(b + n + 2, DNS_C_IN);
    n += 4;
    if (edns) {
        dns_put16(b + 10, 1);
        uint8_t opt[11] = {0};
        dns_put16(opt + 1, DNS_T_OPT);
        dns_put16(opt + 3, edns);
        memcpy(b + n, opt, sizeof opt);
        n += sizeof opt;
    }
    return n;
}

typedef struct answer {
    int rcode;
    uint16_t flags;
    int an, ns, ar;
    char rr[4][64][300]; /* per section: "TYPE rdata" */
    size_t len;
} answer;

static void name_text(const uint8_t *p, size_t len, size_t *off, char *out)
{
    uint8_t w[DNS_NAME_MAX];
    size_t wl;
    cr_assert(dns_read_name(p, len, off, w, &wl), "bad name in the answer");
    out[0] = '\0';
    for (size_t i = 0; w[i]; i += 1 + w[i])
        sprintf(out + strlen(out), "%s%.*s", i ? "." : "", w[i], (const char *)w + i + 1);
}

static answer *ask(const char *name, uint16_t type, bool tcp, uint16_t edns,
                   ty_dns_action want)
{
    static answer a;
    static uint8_t q[512], out[TY_DNS_MSG_MAX];
    memset(&a, 0, sizeof a);
    size_t qlen = query(q, name, type, edns), len = 0;
    ty_dns_action act = ty_dns_answer(z, q, qlen, tcp, out, &len);
    cr_assert_eq(act, want, "%s: action %d, want %d", name, act, want);
    if (act != TY_DNS_REPLY)
        return &a;
    a.len = len;
    a.flags = dns_get16(out + 2);
    a.rcode = a.flags & 0xF;
    cr_assert_eq(dns_get16(out), 0x1234);
    int counts[3] = {dns_get16(out + 6), dns_get16(out + 8), dns_get16(out + 10)};
    a.an = counts[0];
    a.ns = counts[1];
    a.ar = counts[2];
    size_t off = DNS_HDR;
    char buf[300];
    if (dns_get16(out + 4)) {
        name_text(out, len, &off, buf);
        off += 4;
    }
    for (int s = 0; s < 3; s++)
        for (int i = 0; i < counts[s]; i++) {
            name_text(out, len, &off, buf);
            uint16_t t = dns_get16(out + off);
            size_t rdl = dns_get16(out + off + 8), rd = off + 10;
            static char spare[300];
            char *r = i < 64 ? a.rr[s][i] : spare;
            off = rd + rdl;
            cr_assert(off <= len);
            if (t == DNS_T_A) {
                char ip[INET_ADDRSTRLEN];
                inet_ntop(AF_INET, out + rd, ip, sizeof ip);
                sprintf(r, "A %s", ip);
            } else if (t == DNS_T_SRV) {
                char target[260];
                size_t o = rd + 6;
                name_text(out, len, &o, target);
                sprintf(r, "SRV %u %u %u %s", dns_get16(out + rd), dns_get16(out + rd + 2),
                        dns_get16(out + rd + 4), target);
            } else if (t == DNS_T_PTR || t == DNS_T_CNAME) {
                char target[260];
                size_t o = rd;
                name_text(out, len, &o, target);
                sprintf(r, "%s %s", t == DNS_T_PTR ? "PTR" : "CNAME", target);
            } else if (t == DNS_T_SOA) {
                sprintf(r, "SOA %s", buf);
            } else if (t == DNS_T_OPT) {
                sprintf(r, "OPT %u", dns_get16(out + off - rdl - 8));
            } else {
                sprintf(r, "TYPE%u", t);
            }
        }
    return &a;
}

Test(dns, cluster_ip_service)
{
    answer *a = ask("web.ns1.svc.cluster.local", DNS_T_A, false, 0, TY_DNS_REPLY);
    cr_assert_eq(a->rcode, DNS_R_NOERROR);
    cr_assert(a->flags & DNS_F_AA);
    cr_assert_eq(a->an, 1);
    cr_assert_str_eq(a->rr[0][0], "A 10.96.0.10");
}

Test(dns, name_case_and_compression)
{
    static uint8_t q[512], out[TY_DNS_MSG_MAX];
    size_t qlen = query(q, "Web.NS1.svc.Cluster.Local", DNS_T_A, 0), len;
    cr_assert_eq(ty_dns_answer(z, q, qlen, false, out, &len), TY_DNS_REPLY);
    /* the question as asked, and the answer's owner a pointer to it */
    cr_assert_eq(memcmp(out + DNS_HDR, q + DNS_HDR, qlen - DNS_HDR), 0);
    cr_assert_eq(dns_get16(out + qlen), 0xC000 | DNS_HDR);
    cr_assert_eq(len, qlen + 2 + 10 + 4);
}

Test(dns, negative_answers_carry_soa)
{
    answer *a = ask("nope.ns1.svc.cluster.local", DNS_T_A, false, 0, TY_DNS_REPLY);
    cr_assert_eq(a->rcode, DNS_R_NXDOMAIN);
    cr_assert_eq(a->an, 0);
    cr_assert_eq(a->ns, 1);
    cr_assert_str_eq(a->rr[1][0], "SOA cluster.local");
    a = ask("web.ns1.svc.cluster.local", DNS_T_AAAA, false, 0, TY_DNS_REPLY);
    cr_assert_eq(a->rcode, DNS_R_NOERROR); /* NODATA */
    cr_assert_eq(a->an, 0);
    cr_assert_str_eq(a->rr[1][0], "SOA cluster.local");
    a = ask("web.nons.svc.cluster.local", DNS_T_A, false, 0, TY_DNS_REPLY);
    cr_assert_eq(a->rcode, DNS_R_NXDOMAIN);
    a = ask("ns1.svc.cluster.local", DNS_T_A, false, 0, TY_DNS_REPLY);
    cr_assert_eq(a->rcode, DNS_R_NOERROR);
    a = ask("x.cluster.local", DNS_T_A, false, 0, TY_DNS_REPLY);
    cr_assert_eq(a->rcode, DNS_R_NXDOMAIN);
    a = ask("cluster.local", DNS_T_SOA, false, 0, TY_DNS_REPLY);
    cr_assert_eq(a->an, 1);
    cr_assert_str_eq(a->rr[0][0], "SOA cluster.local");
}

Test(dns, headless_service_ready_endpoints)
{
    answer *a = ask("db.ns1.svc.cluster.local", DNS_T_A, false, 0, TY_DNS_REPLY);
    cr_assert_eq(a->an, 2);
    bool five = false, six = false;
    for (int i = 0; i < 2; i++) {
        five |= strcmp(a->rr[0][i], "A 10.244.0.5") == 0;
        six |= strcmp(a->rr[0][i], "A 10.244.0.6") == 0;
    }
    cr_assert(five && six);
    /* publishNotReadyAddresses counts the not-ready one too */
    add("services", "{\"metadata\":{\"namespace\":\"ns1\",\"name\":\"db\"},\"spec\":{"
                    "\"clusterIP\":\"None\",\"selector\":{\"app\":\"db\"},"
                    "\"publishNotReadyAddresses\":true,"
                    "\"ports\":[{\"name\":\"pg\",\"port\":5432}]}}");
    a = ask("db.ns1.svc.cluster.local", DNS_T_A, false, 0, TY_DNS_REPLY);
    cr_assert_eq(a->an, 3);
}

Test(dns, endpoint_names)
{
    answer *a = ask("db-0.db.ns1.svc.cluster.local", DNS_T_A, false, 0, TY_DNS_REPLY);
    cr_assert_eq(a->an, 1);
    cr_assert_str_eq(a->rr[0][0], "A 10.244.0.5");
    a = ask("10-244-0-6.db.ns1.svc.cluster.local", DNS_T_A, false, 0, TY_DNS_REPLY);
    cr_assert_str_eq(a->rr[0][0], "A 10.244.0.6");
    a = ask("10-244-0-7.db.ns1.svc.cluster.local", DNS_T_A, false, 0, TY_DNS_REPLY);
    cr_assert_eq(a->rcode, DNS_R_NXDOMAIN); /* not ready */
    a = ask("db-1.db.ns1.svc.cluster.local", DNS_T_A, false, 0, TY_DNS_REPLY);
    cr_assert_eq(a->rcode, DNS_R_NXDOMAIN); /* no hostname: its name is its address */
}

Test(dns, srv_named_ports)
{
    answer *a = ask("_http._tcp.web.ns1.svc.cluster.local", DNS_T_SRV, false, 0, TY_DNS_REPLY);
    cr_assert_eq(a->an, 1);
    cr_assert_str_eq(a->rr[0][0], "SRV 0 100 80 web.ns1.svc.cluster.local");
    cr_assert_eq(a->ar, 1);
    cr_assert_str_eq(a->rr[2][0], "A 10.96.0.10");
    a = ask("_dns._udp.web.ns1.svc.cluster.local", DNS_T_SRV, false, 0, TY_DNS_REPLY);
    cr_assert_str_eq(a->rr[0][0], "SRV 0 100 53 web.ns1.svc.cluster.local");
    a = ask("_dns._tcp.web.ns1.svc.cluster.local", DNS_T_SRV, false, 0, TY_DNS_REPLY);
    cr_assert_eq(a->rcode, DNS_R_NXDOMAIN);
    /* headless: one per endpoint, at the named target port of the pod, weights split */
    a = ask("_pg._tcp.db.ns1.svc.cluster.local", DNS_T_SRV, false, 0, TY_DNS_REPLY);
    cr_assert_eq(a->an, 2);
    bool host = false, dashed = false;
    for (int i = 0; i < 2; i++) {
        host |= strcmp(a->rr[0][i], "SRV 0 50 8080 db-0.db.ns1.svc.cluster.local") == 0;
        dashed |= strcmp(a->rr[0][i], "SRV 0 50 8080 10-244-0-6.db.ns1.svc.cluster.local") == 0;
    }
    cr_assert(host && dashed, "%s / %s", a->rr[0][0], a->rr[0][1]);
    cr_assert_eq(a->ar, 2);
}

Test(dns, pod_names)
{
    answer *a = ask("10-244-0-5.ns1.pod.cluster.local", DNS_T_A, false, 0, TY_DNS_REPLY);
    cr_assert_str_eq(a->rr[0][0], "A 10.244.0.5");
    a = ask("10-244-0-5.other.pod.cluster.local", DNS_T_A, false, 0, TY_DNS_REPLY);
    cr_assert_eq(a->rcode, DNS_R_NXDOMAIN);
    a = ask("10-244-0.ns1.pod.cluster.local", DNS_T_A, false, 0, TY_DNS_REPLY);
    cr_assert_eq(a->rcode, DNS_R_NXDOMAIN);
}

Test(dns, reverse)
{
    answer *a = ask("10.0.96.10.in-addr.arpa", DNS_T_PTR, false, 0, TY_DNS_REPLY);
    cr_assert_eq(a->an, 1);
    cr_assert_str_eq(a->rr[0][0], "PTR web.ns1.svc.cluster.local");
    a = ask("5.0.244.10.in-addr.arpa", DNS_T_PTR, false, 0, TY_DNS_REPLY);
    cr_assert_str_eq(a->rr[0][0], "PTR db-0.db.ns1.svc.cluster.local");
    a = ask("9.0.244.10.in-addr.arpa", DNS_T_PTR, false, 0, TY_DNS_REPLY);
    cr_assert_str_eq(a->rr[0][0], "PTR 10-244-0-9.web.ns1.svc.cluster.local");
    ask("1.1.168.192.in-addr.arpa", DNS_T_PTR, false, 0, TY_DNS_FORWARD);
    ask("example.com", DNS_T_A, false, 0, TY_DNS_FORWARD);
}

Test(dns, updates_and_deletes)
{
    del("services", "ns1", "web");
    answer *a = ask("web.ns1.svc.cluster.local", DNS_T_A, false, 0, TY_DNS_REPLY);
    cr_assert_eq(a->rcode, DNS_R_NXDOMAIN);
    ask("10.0.96.10.in-addr.arpa", DNS_T_PTR, false, 0, TY_DNS_FORWARD);
    del("pods", "ns1", "db-0");
    a = ask("db.ns1.svc.cluster.local", DNS_T_A, false, 0, TY_DNS_REPLY);
    cr_assert_eq(a->an, 1);
    cr_assert_str_eq(a->rr[0][0], "A 10.244.0.6");
    pod("ns1", "db-1", "db", "10.244.0.8", true, NULL, NULL); /* a new address */
    a = ask("db.ns1.svc.cluster.local", DNS_T_A, false, 0, TY_DNS_REPLY);
    cr_assert_str_eq(a->rr[0][0], "A 10.244.0.8");
    ask("6.0.244.10.in-addr.arpa", DNS_T_PTR, false, 0, TY_DNS_FORWARD);
    del("namespaces", "", "ns1");
    a = ask("db.ns1.svc.cluster.local", DNS_T_A, false, 0, TY_DNS_REPLY);
    cr_assert_eq(a->rcode, DNS_R_NXDOMAIN);
}

Test(dns, schema_version)
{
    static uint8_t q[512], out[TY_DNS_MSG_MAX];
    size_t qlen = query(q, "dns-version.cluster.local", DNS_T_TXT, 0), len;
    cr_assert_eq(ty_dns_answer(z, q, qlen, false, out, &len), TY_DNS_REPLY);
    cr_assert_eq(dns_get16(out + 6), 1);
    cr_assert_eq(memcmp(out + len - 6, "\0051.1.0", 6), 0);
    answer *a = ask("dns-version.cluster.local", DNS_T_A, false, 0, TY_DNS_REPLY);
    cr_assert_eq(a->rcode, DNS_R_NOERROR);
    cr_assert_eq(a->an, 0);
}

Test(dns, external_name)
{
    add("services", "{\"metadata\":{\"namespace\":\"ns1\",\"name\":\"ext\"},\"spec\":{"
                    "\"type\":\"ExternalName\",\"externalName\":\"example.com\"}}");
    answer *a = ask("ext.ns1.svc.cluster.local", DNS_T_A, false, 0, TY_DNS_REPLY);
    cr_assert_str_eq(a->rr[0][0], "CNAME example.com");
}

Test(dns, truncation_over_udp)
{
    for (int i = 0; i < 100; i++) {
        char name[32], ip[32];
        snprintf(name, sizeof name, "big-%d", i);
        snprintf(ip, sizeof ip, "10.244.1.%d", i + 1);
        pod("ns1", name, "big", ip, true, NULL, NULL);
    }
    add("services", "{\"metadata\":{\"namespace\":\"ns1\",\"name\":\"big\"},\"spec\":{"
                    "\"clusterIP\":\"None\",\"selector\":{\"app\":\"big\"}}}");
    answer *a = ask("big.ns1.svc.cluster.local", DNS_T_A, false, 0, TY_DNS_REPLY);
    cr_assert(a->flags & DNS_F_TC);
    cr_assert_leq(a->len, 512);
    cr_assert_gt(a->an, 10);
    a = ask("big.ns1.svc.cluster.local", DNS_T_A, false, 4096, TY_DNS_REPLY);
    cr_assert_not(a->flags & DNS_F_TC);
    cr_assert_eq(a->an, 100);
    cr_assert_eq(a->ar, 1);
    cr_assert_str_eq(a->rr[2][0], "OPT 4096");
    a = ask("big.ns1.svc.cluster.local", DNS_T_A, true, 0, TY_DNS_REPLY);
    cr_assert_not(a->flags & DNS_F_TC);
    cr_assert_eq(a->an, 100);
}

static ty_dns_action raw(const uint8_t *q, size_t len, int *rcode)
{
    static uint8_t out[TY_DNS_MSG_MAX];
    size_t n = 0;
    ty_dns_action act = ty_dns_answer(z, q, len, false, out, &n);
    if (act == TY_DNS_REPLY) {
        cr_assert_geq(n, DNS_HDR);
        cr_assert(dns_get16(out + 2) & DNS_F_QR);
        *rcode = (dns_get16(out + 2) & 0xF) | (n > DNS_HDR + 11 && dns_get16(out + n - 10) == 41
                                                   ? out[n - 6] << 4 : 0);
    }
    return act;
}

Test(dns, hostile_packets)
{
    uint8_t q[512];
    int rc = -1;
    size_t n = query(q, "web.ns1.svc.cluster.local", DNS_T_A, 0);
    cr_assert_eq(raw(q, 5, &rc), TY_DNS_DROP); /* no room for an id */
    cr_assert_eq(raw(q, n - 3, &rc), TY_DNS_REPLY); /* question cut short */
    cr_assert_eq(rc, DNS_R_FORMERR);
    uint8_t resp[512];
    memcpy(resp, q, n);
    resp[2] |= 0x80;
    cr_assert_eq(raw(resp, n, &rc), TY_DNS_DROP); /* a response */
    uint8_t loop[] = {0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 12, 0, 1, 0, 1};
    cr_assert_eq(raw(loop, sizeof loop, &rc), TY_DNS_REPLY); /* a pointer to itself */
    cr_assert_eq(rc, DNS_R_FORMERR);
    uint8_t fwd[] = {0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 'a', 0xC0, 14, 0, 1, 0, 1};
    cr_assert_eq(raw(fwd, sizeof fwd, &rc), TY_DNS_REPLY); /* a pointer forwards */
    cr_assert_eq(rc, DNS_R_FORMERR);
    memcpy(resp, q, n);
    dns_put16(resp + 4, 0);
    cr_assert_eq(raw(resp, DNS_HDR, &rc), TY_DNS_REPLY); /* no question */
    cr_assert_eq(rc, DNS_R_FORMERR);
    memcpy(resp, q, n);
    resp[2] = 2 << 3; /* opcode STATUS */
    cr_assert_eq(raw(resp, n, &rc), TY_DNS_REPLY);
    cr_assert_eq(rc, DNS_R_NOTIMP);
    n = query(q, "web.ns1.svc.cluster.local", DNS_T_A, 1232);
    q[n - 5] = 1; /* EDNS version 1 */
    cr_assert_eq(raw(q, n, &rc), TY_DNS_REPLY);
    cr_assert_eq(rc, 16); /* BADVERS */
    n = query(q, "web.ns1.svc.cluster.local", DNS_T_A, 1232);
    memcpy(q + n, q + n - 11, 11); /* two OPT records */
    dns_put16(q + 10, 2);
    cr_assert_eq(raw(q, n + 11, &rc), TY_DNS_REPLY);
    cr_assert_eq(rc, DNS_R_FORMERR);
    n = query(q, "web.ns1.svc.cluster.local", DNS_T_AXFR, 0);
    cr_assert_eq(raw(q, n, &rc), TY_DNS_REPLY);
    cr_assert_eq(rc, DNS_R_REFUSED);
}
