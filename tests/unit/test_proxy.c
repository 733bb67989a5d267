/* The Service proxy (net/proxy.h): the rules as text, and the rules at work in network
 * namespaces of the test's own (root only; skipped where namespaces are refused). */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/mem.h"
#include "net/proxy.h"

static json_t *parse(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, 0, &e);
    cr_assert(v, "fixture: %s", e.text);
    return v;
}

static json_t *pod(const char *name, const char *app, const char *ip, bool ready)
{
    char text[1024];
    snprintf(text, sizeof text,
             "{\"metadata\":{\"namespace\":\"default\",\"name\":\"%s\",\"labels\":{\"app\":"
             "\"%s\"}},\"spec\":{\"containers\":[{\"name\":\"c\",\"ports\":[{\"name\":\"http\","
             "\"containerPort\":8080}]}]},\"status\":{\"podIP\":\"%s\",\"conditions\":[{"
             "\"type\":\"Ready\",\"status\":\"%s\"}]}}",
             name, app, ip, ready ? "True" : "False");
    return parse(text);
}

static json_t *service(const char *name, const char *ip, const char *extra)
{
    char text[1024];
    snprintf(text, sizeof text,
             "{\"metadata\":{\"namespace\":\"default\",\"name\":\"%s\"},\"spec\":{\"type\":"
             "\"ClusterIP\",\"clusterIP\":\"%s\",\"selector\":{\"app\":\"%s\"},\"ports\":[{"
             "\"name\":\"web\",\"port\":80,\"protocol\":\"TCP\",\"targetPort\":\"http\"}]%s}}",
             name, ip, name, extra);
    return parse(text);
}

Test(proxy, ruleset_maps_cluster_ips_to_ready_endpoints)
{
    json_t *svcs = json_array(), *pods = json_array();
    json_array_append_new(svcs, service("web", "10.96.0.10", ""));
    json_array_append_new(svcs, service("db", "None", ""));
    json_array_append_new(svcs, service("idle", "10.96.0.11", ""));
    json_array_append_new(svcs, service("sticky", "10.96.0.12",
                                        ",\"sessionAffinity\":\"ClientIP\""));
    json_array_append_new(pods, pod("web-0", "web", "10.244.0.5", true));
    json_array_append_new(pods, pod("web-1", "web", "10.244.0.6", true));
    json_array_append_new(pods, pod("web-2", "web", "10.244.0.7", false));
    json_array_append_new(pods, pod("db-0", "db", "10.244.0.8", true));
    json_array_append_new(pods, pod("sticky-0", "sticky", "10.244.0.9", true));
    TY_AUTOFREE char *rules = ty_proxy_ruleset(svcs, pods, NULL);
    cr_assert(strstr(rules, "10.96.0.10 . tcp . 80 : goto service-0"), "%s", rules);
    cr_assert(strstr(rules, "meta l4proto tcp dnat ip to numgen random mod 2 map { 0 : "
                            "10.244.0.5 . 8080, 1 : 10.244.0.6 . 8080 }"), "%s", rules);
    cr_assert(strstr(rules, "numgen random mod 1 vmap { 0 : goto endpoint-1-0 }"), "%s", rules);
    cr_assert(strstr(rules, "meta l4proto tcp dnat to 10.244.0.9:8080"), "%s", rules);
    cr_assert_null(strstr(rules, "10.244.0.7"), "a pod not ready: %s", rules);
    cr_assert_null(strstr(rules, "10.244.0.8"), "a headless Service: %s", rules);
    cr_assert(strstr(rules, "set no-endpoint-services {\n\t\ttype ipv4_addr . inet_proto . "
                            "inet_service\n\t\telements = { 10.96.0.11 . tcp . 80 }"),
              "%s", rules);
    cr_assert(strstr(rules, "timeout 10800s"), "%s", rules);
    cr_assert(strstr(rules, "ip saddr @affinity-1-0 goto endpoint-1-0"), "%s", rules);
    cr_assert(strstr(rules, "update @affinity-1-0 { ip saddr }"), "%s", rules);
    json_decref(svcs);
    json_decref(pods);
}

/* A Service without a selector sends to its EndpointSlices' endpoints: ready ones (not
 * ready=false), IPv4 slices of its name and namespace, at the slice port of the Service port's
 * name; loopback addresses (the kubernetes Service's while the API is on loopback) never. */
Test(proxy, a_service_without_selector_sends_to_its_endpoint_slices)
{
    json_t *svcs = json_array(), *pods = json_array(), *slices = json_array();
    json_array_append_new(svcs, parse(
        "{\"metadata\":{\"namespace\":\"default\",\"name\":\"ext\"},\"spec\":{\"type\":"
        "\"ClusterIP\",\"clusterIP\":\"10.96.0.20\",\"ports\":[{\"name\":\"web\",\"port\":80,"
        "\"protocol\":\"TCP\"}]}}"));
    json_array_append_new(svcs, parse(
        "{\"metadata\":{\"namespace\":\"default\",\"name\":\"kubernetes\"},\"spec\":{"
        "\"type\":\"ClusterIP\",\"clusterIP\":\"10.96.0.1\",\"ports\":[{\"name\":\"https\","
        "\"port\":443,\"protocol\":\"TCP\"}]}}"));
    /* a pod that would match by label: a Service without a selector takes no pods */
    json_array_append_new(pods, pod("ext-0", "ext", "10.244.0.5", true));
    json_array_append_new(slices, parse(
        "{\"metadata\":{\"namespace\":\"default\",\"name\":\"ext-a\",\"labels\":{"
        "\"kubernetes.io/service-name\":\"ext\"}},\"addressType\":\"IPv4\",\"endpoints\":["
        "{\"addresses\":[\"192.0.2.7\"]},{\"addresses\":[\"192.0.2.8\"],\"conditions\":"
        "{\"ready\":false}}],\"ports\":[{\"name\":\"web\",\"port\":8443,\"protocol\":"
        "\"TCP\"},{\"name\":\"other\",\"port\":9,\"protocol\":\"TCP\"}]}"));
    json_array_append_new(slices, parse(
        "{\"metadata\":{\"namespace\":\"elsewhere\",\"name\":\"ext-b\",\"labels\":{"
        "\"kubernetes.io/service-name\":\"ext\"}},\"addressType\":\"IPv4\",\"endpoints\":["
        "{\"addresses\":[\"192.0.2.9\"]}],\"ports\":[{\"name\":\"web\",\"port\":80}]}"));
    json_array_append_new(slices, parse(
        "{\"metadata\":{\"namespace\":\"default\",\"name\":\"kubernetes\",\"labels\":{"
        "\"kubernetes.io/service-name\":\"kubernetes\"}},\"addressType\":\"IPv4\","
        "\"endpoints\":[{\"addresses\":[\"127.0.0.1\"],\"conditions\":{\"ready\":true}}],"
        "\"ports\":[{\"name\":\"https\",\"port\":6443,\"protocol\":\"TCP\"}]}"));
    TY_AUTOFREE char *rules = ty_proxy_ruleset(svcs, pods, slices);
    cr_assert(strstr(rules, "10.96.0.20 . tcp . 80 : goto service-0"), "%s", rules);
    cr_assert(strstr(rules, "numgen random mod 1 map { 0 : 192.0.2.7 . 8443 }"), "%s", rules);
    cr_assert_null(strstr(rules, "192.0.2.8"), "not ready: %s", rules);
    cr_assert_null(strstr(rules, "192.0.2.9"), "another namespace: %s", rules);
    cr_assert_null(strstr(rules, "10.244.0.5"), "no selector, no pods: %s", rules);
    cr_assert(strstr(rules, "elements = { 10.96.0.1 . tcp . 443 }"), "loopback: %s", rules);
    json_decref(svcs);
    json_decref(pods);
    json_decref(slices);
}

/* ---- in network namespaces ----
 * A pod's namespace (A) with a veth to an endpoint's (B) and a default route, as a pod has:
 * the routing decision comes before the output hook's DNAT, so a cluster IP needs a route. */

static char ns_a[32], ns_b[32];

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    return system(cmd);
}

static void cleanup_ns(void)
{
    if (ns_a[0])
        sh("ip netns del %s 2>/dev/null", ns_a);
    if (ns_b[0])
        sh("ip netns del %s 2>/dev/null", ns_b);
}

static void enter(const char *ns)
{
    char path[64];
    snprintf(path, sizeof path, "/run/netns/%s", ns);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWNET) < 0)
        _exit(90);
    close(fd);
}

static int connect_to(const char *ip, int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, ip, &a.sin_addr);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

Test(proxy, rules_in_a_pod_namespace_reach_the_endpoint, .fini = cleanup_ns)
{
    if (geteuid() != 0)
        cr_skip_test("needs root for network namespaces");
    snprintf(ns_a, sizeof ns_a, "typroxy-a-%d", (int)getpid());
    snprintf(ns_b, sizeof ns_b, "typroxy-b-%d", (int)getpid());
    if (sh("ip netns add %s && ip netns add %s && "
           "ip -n %s link add eth0 type veth peer name eth0 netns %s && "
           "ip -n %s addr add 10.250.77.1/24 dev eth0 && ip -n %s link set eth0 up && "
           "ip -n %s link set lo up && ip -n %s route add default dev eth0 && "
           "ip -n %s addr add 10.250.77.2/24 dev eth0 && ip -n %s link set eth0 up && "
           "ip -n %s link set lo up",
           ns_a, ns_b, ns_a, ns_b, ns_a, ns_a, ns_a, ns_a, ns_b, ns_b, ns_b) != 0)
        cr_skip_test("network namespaces or veths are refused here");

    json_t *svcs = json_array(), *pods = json_array();
    json_array_append_new(svcs, service("web", "10.96.200.1", ""));
    json_array_append_new(svcs, service("idle", "10.96.200.2", ""));
    json_array_append_new(pods, pod("web-0", "web", "10.250.77.2", true));
    TY_AUTOFREE char *rules = ty_proxy_ruleset(svcs, pods, NULL);
    json_decref(svcs);
    json_decref(pods);
    char path[64];
    snprintf(path, sizeof path, "/run/netns/%s", ns_a);
    ty_error err = TY_ERROR_INIT;
    if (ty_proxy_apply(path, rules, &err) < 0) {
        if (strstr(err.msg, "load libnftables"))
            cr_skip_test("%s", err.msg);
        cr_assert_fail("%s\n%s", err.msg, rules);
    }
    /* the host's own namespace has no such table */
    cr_assert_eq(ty_proxy_apply(NULL, "list table ip trainyard-proxy", &err), -1);
    ty_error_clear(&err);
    /* applied again: replaced, not doubled */
    cr_assert_eq(ty_proxy_apply(path, rules, &err), 0, "%s", err.msg);

    int ready[2];
    cr_assert_eq(pipe(ready), 0);
    pid_t server = fork();
    if (server == 0) { /* the endpoint, in namespace B */
        enter(ns_b);
        int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        struct timeval tv = {.tv_sec = 10}; /* accept gives up: a failed client ends it */
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(8080)};
        inet_pton(AF_INET, "10.250.77.2", &a.sin_addr);
        if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 4) < 0)
            _exit(91);
        if (write(ready[1], "r", 1) != 1)
            _exit(92);
        int c = accept(fd, NULL, NULL);
        _exit(c >= 0 && write(c, "hello", 5) == 5 ? 0 : 93);
    }
    char r;
    cr_assert_eq(read(ready[0], &r, 1), 1, "the endpoint did not start");
    pid_t client = fork();
    if (client == 0) { /* the pod, in namespace A */
        enter(ns_a);
        int fd = connect_to("10.96.200.1", 80);
        char buf[8] = {0};
        if (fd < 0 || read(fd, buf, 5) != 5 || strcmp(buf, "hello") != 0)
            _exit(94);
        /* no endpoint: refused at once, as kube-proxy's reject does */
        _exit(connect_to("10.96.200.2", 80) < 0 && errno == ECONNREFUSED ? 0 : 95);
    }
    int st;
    waitpid(client, &st, 0);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "client status %d", WEXITSTATUS(st));
    waitpid(server, &st, 0);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "server status %d", WEXITSTATUS(st));
    close(ready[0]);
    close(ready[1]);
}
