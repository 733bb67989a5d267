/* Create -> watch latency, measured from a client that adds as little of its own as it can
 * (bench/server.sh runs it; server_client.py watchlat is the same probe in Python).
 *
 *   watch_probe PORT PATH RV BODY N GAP_MS
 *
 * Opens a watch on PATH (on 127.0.0.1:PORT) from resourceVersion RV, then creates N objects
 * one by one on a second keep-alive connection, GAP_MS apart. BODY is a file holding the
 * JSON to POST, with @NAME@ where each object's name goes (probe-<pid>-<i>). Each create is
 * timed from just before the request is written to the moment the watch delivers its ADDED
 * event; the answer to the POST is read after that, and must be 201. Prints p50/p99/max on
 * one line; with TY_PROBE_TRACE set, also "CLIENT t0 t1" per create on stderr (CLOCK_MONOTONIC
 * ns), to line up with a server's own timestamps. */
#define _GNU_SOURCE /* strcasestr */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void die(const char *what)
{
    fprintf(stderr, "watch_probe: %s%s%s\n", what, errno ? ": " : "", errno ? strerror(errno) : "");
    exit(1);
}

static int dial(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int one = 1;
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0)
        die("connect");
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static void send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            die("write");
        p += w;
        n -= (size_t)w;
    }
}

/* What one connection has read and not yet consumed. */
typedef struct {
    int fd;
    char *data;
    size_t len, cap;
} conn;

static void fill(conn *c)
{
    if (c->cap - c->len < 65536) {
        c->cap = c->cap * 2 + 65536;
        c->data = realloc(c->data, c->cap + 1);
        if (!c->data)
            die("out of memory");
    }
    ssize_t r = read(c->fd, c->data + c->len, c->cap - c->len);
    if (r < 0 && errno == EINTR)
        return;
    if (r <= 0) {
        if (r == 0)
            errno = 0;
        die("read (the server closed the connection)");
    }
    c->len += (size_t)r;
    c->data[c->len] = '\0';
}

static void consume(conn *c, size_t n)
{
    memmove(c->data, c->data + n, c->len - n);
    c->len -= n;
    c->data[c->len] = '\0';
}

/* Reads one response's head; returns its status and leaves the body in c. */
static int read_head(conn *c, long *content_length)
{
    char *end;
    while (!c->data || !(end = strstr(c->data, "\r\n\r\n")))
        fill(c);
    int status = 0;
    if (sscanf(c->data, "HTTP/1.1 %d", &status) != 1)
        die("a response that is not HTTP/1.1");
    *content_length = -1;
    const char *cl = strcasestr(c->data, "\r\nContent-Length:");
    if (cl && cl < end)
        *content_length = strtol(cl + 17, NULL, 10);
    consume(c, (size_t)(end + 4 - c->data));
    return status;
}

/* Reads watch events until the ADDED event of the object named `name`. Events are one JSON
 * object per line inside the chunked body; chunk-size lines hold only hex digits. */
static void wait_added(conn *w, const char *name)
{
    char needle[256];
    snprintf(needle, sizeof needle, "\"name\":\"%s\"", name);
    for (;;) {
        char *nl;
        while (w->data && (nl = strchr(w->data, '\n'))) {
            *nl = '\0';
            bool found = strncmp(w->data, "{\"type\":\"ADDED\"", 15) == 0 && strstr(w->data, needle);
            consume(w, (size_t)(nl + 1 - w->data));
            if (found)
                return;
        }
        fill(w);
    }
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        die(path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *s = malloc((size_t)n + 1);
    if (!s || fread(s, 1, (size_t)n, f) != (size_t)n)
        die(path);
    s[n] = '\0';
    fclose(f);
    return s;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: watch_probe PORT PATH RV BODY N GAP_MS\n");
        return 2;
    }
    int port = atoi(argv[1]);
    const char *path = argv[2], *rv = argv[3];
    char *tmpl = slurp(argv[4]);
    int n = atoi(argv[5]), gap_ms = atoi(argv[6]);
    char *at = strstr(tmpl, "@NAME@");
    if (!at || n <= 0)
        die("BODY has no @NAME@, or N is not positive");
    bool trace = getenv("TY_PROBE_TRACE") != NULL;

    conn w = {.fd = dial(port)}, c = {.fd = dial(port)};
    char req[1 << 16];
    int len = snprintf(req, sizeof req,
                       "GET %s?watch=1&resourceVersion=%s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
                       path, rv);
    send_all(w.fd, req, (size_t)len);
    long cl;
    if (read_head(&w, &cl) != 200)
        die("the watch was refused");

    double *lat = calloc((size_t)n, sizeof *lat);
    for (int i = 0; i < n; i++) {
        char name[64];
        snprintf(name, sizeof name, "probe-%d-%05d", (int)getpid(), i);
        char body[1 << 15];
        int blen = snprintf(body, sizeof body, "%.*s%s%s", (int)(at - tmpl), tmpl, name, at + 6);
        int hlen = snprintf(req, sizeof req,
                            "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                            "Content-Length: %d\r\n\r\n%s",
                            path, blen, body);
        if (blen >= (int)sizeof body || hlen >= (int)sizeof req)
            die("BODY is too big");
        int64_t t0 = now_ns();
        send_all(c.fd, req, (size_t)hlen);
        wait_added(&w, name);
        int64_t t1 = now_ns();
        lat[i] = (double)(t1 - t0) / 1e6;
        if (trace)
            fprintf(stderr, "CLIENT %lld %lld\n", (long long)t0, (long long)t1);
        int status = read_head(&c, &cl);
        if (cl < 0)
            die("an answer without Content-Length");
        while ((long)c.len < cl)
            fill(&c);
        consume(&c, (size_t)cl);
        if (status != 201) {
            errno = 0;
            fprintf(stderr, "watch_probe: create %s: HTTP %d\n", name, status);
            return 1;
        }
        if (gap_ms) {
            struct timespec ts = {.tv_sec = gap_ms / 1000, .tv_nsec = (gap_ms % 1000) * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    qsort(lat, (size_t)n, sizeof *lat, cmp_double);
    int p50 = n / 2, p99 = (int)(n * 0.99);
    printf("p50 %.2f ms  p99 %.2f ms  max %.2f ms\n", lat[p50], lat[p99 < n ? p99 : n - 1],
           lat[n - 1]);
    free(lat);
    free(tmpl);
    free(w.data);
    free(c.data);
    close(w.fd);
    close(c.fd);
    return 0;
}
