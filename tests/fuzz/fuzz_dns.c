/* libFuzzer target: DNS queries as the cluster DNS server receives them (net/dns.h), over UDP
 * and TCP, against a zone holding a Service of each kind and their pods; and the check that
 * an upstream's answer belongs to a query (net/net_int.h). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "net/dns.h"
#include "net/net_int.h"

static ty_dns_zone *zone;

static void add(const char *resource, const char *text)
{
    json_t *o = json_loads(text, 0, NULL);
    ty_dns_zone_update(zone, resource, o, false);
    json_decref(o);
}

static void setup(void)
{
    zone = ty_dns_zone_new("cluster.local");
    add("namespaces", "{\"metadata\":{\"name\":\"ns\"}}");
    add("services", "{\"metadata\":{\"namespace\":\"ns\",\"name\":\"web\"},\"spec\":{"
                    "\"clusterIP\":\"10.96.0.10\",\"selector\":{\"app\":\"web\"},\"ports\":["
                    "{\"name\":\"http\",\"port\":80,\"targetPort\":\"web\"}]}}");
    add("services", "{\"metadata\":{\"namespace\":\"ns\",\"name\":\"db\"},\"spec\":{"
                    "\"clusterIP\":\"None\",\"selector\":{\"app\":\"web\"}}}");
    add("services", "{\"metadata\":{\"namespace\":\"ns\",\"name\":\"ext\"},\"spec\":{"
                    "\"type\":\"ExternalName\",\"externalName\":\"example.com\"}}");
    for (int i = 0; i < 40; i++) {
        char text[512];
        snprintf(text, sizeof text,
                 "{\"metadata\":{\"namespace\":\"ns\",\"name\":\"p%d\",\"labels\":{\"app\":"
                 "\"web\"}},\"spec\":{\"hostname\":\"h%d\",\"subdomain\":\"db\",\"containers\":"
                 "[{\"name\":\"c\",\"ports\":[{\"name\":\"web\",\"containerPort\":8080}]}]},"
                 "\"status\":{\"podIP\":\"10.244.0.%d\",\"conditions\":[{\"type\":\"Ready\","
                 "\"status\":\"True\"}]}}",
                 i, i, i + 1);
        add("pods", text);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t out[TY_DNS_MSG_MAX];
    if (!zone)
        setup();
    if (size > TY_DNS_MSG_MAX)
        return 0;
    for (int tcp = 0; tcp < 2; tcp++) {
        size_t n = 0;
        if (ty_dns_answer(zone, data, size, tcp, out, &n) == TY_DNS_REPLY &&
            (n < 12 || n > (tcp ? TY_DNS_MSG_MAX : TY_DNS_UDP_MAX)))
            __builtin_trap(); /* an answer over its transport's bound */
    }
    dns_query q;
    if (dns_parse_query(data, size, &q) && q.has_question)
        (void)dns_is_response_to(&q, q.id, data, size);
    return 0;
}
