/* A model server for the Fashion-MNIST checkpoint examples/fashion-mnist writes, speaking the
 * Open Inference Protocol v2 over HTTP/1.1 (keep-alive), and KServe's v1 :predict.
 *
 *   fashion-mnist-serve [--model-dir DIR] [--name NAME] [--listen ADDR:PORT]
 *
 * Defaults: the model from /mnt/models/checkpoint.bin (where KServe's storage initializer puts
 * it), the name fashion-mnist, and $POD_IP:$PORT (Knative's PORT; 8080). It loads the
 * checkpoint before it listens, so a replica that accepts connections can answer.
 *
 * Endpoints: GET /v2/health/live, /v2/health/ready, /v2, /v2/models/NAME,
 * /v2/models/NAME/ready; POST /v2/models/NAME/infer with one input of shape [N, 784] (FP32
 * pixels in 0..1, or UINT8/INT* pixels in 0..255, as the trainer scales them) answering
 * output-0 (the N x 10 class probabilities) and predicted (the N classes); POST
 * /v1/models/NAME:predict with {"instances": [[784 pixels 0..255], ...]} answering
 * {"predictions": [class, ...]}. The forward pass is the trainer's (main.c: relu hidden
 * layer, softmax), so its answers are the trainer's own evaluation's. One thread: requests
 * are answered in turn. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#define PIXELS 784
#define CLASSES 10
#define MAX_CONNS 256
#define MAX_REQUEST (32 * 1024 * 1024)

/* The checkpoint's header (examples/fashion-mnist/main.c, ck_header). */
typedef struct ck_header {
    char magic[8];
    uint32_t epoch, hidden;
    uint64_t nparams, seed;
} ck_header;

typedef struct model {
    int hidden;
    float *w1t, *b1, *w2t, *b2; /* [pixel][hidden], [hidden], [hidden][class], [class] */
    float *params;
} model;

static model M;
static const char *NAME = "fashion-mnist";

static int load(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/checkpoint.bin", dir);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "fashion-mnist-serve: open %s: %s\n", path, strerror(errno));
        return -1;
    }
    ck_header h;
    if (fread(&h, sizeof h, 1, f) != 1 || memcmp(h.magic, "FMNIST01", 8) != 0) {
        fprintf(stderr, "fashion-mnist-serve: %s is not a fashion-mnist checkpoint\n", path);
        fclose(f);
        return -1;
    }
    size_t n = (size_t)PIXELS * h.hidden + h.hidden + (size_t)h.hidden * CLASSES + CLASSES;
    if (h.hidden == 0 || h.hidden > 65536 || h.nparams != n) {
        fprintf(stderr, "fashion-mnist-serve: %s: bad sizes\n", path);
        fclose(f);
        return -1;
    }
    /* weights, then the optimizer's velocity (not needed), then the crc of all before it */
    size_t total = sizeof h + 2 * n * sizeof(float) + 4;
    char *buf = malloc(total);
    memcpy(buf, &h, sizeof h);
    size_t got = fread(buf + sizeof h, 1, total - sizeof h, f);
    fclose(f);
    uint32_t crc;
    memcpy(&crc, buf + total - 4, 4);
    if (got != total - sizeof h || (uint32_t)crc32_z(0, (const Bytef *)buf, total - 4) != crc) {
        fprintf(stderr, "fashion-mnist-serve: %s is truncated or corrupt\n", path);
        free(buf);
        return -1;
    }
    M.hidden = (int)h.hidden;
    M.params = malloc(n * sizeof(float));
    memcpy(M.params, buf + sizeof h, n * sizeof(float));
    free(buf);
    M.w1t = M.params;
    M.b1 = M.w1t + (size_t)PIXELS * M.hidden;
    M.w2t = M.b1 + M.hidden;
    M.b2 = M.w2t + (size_t)M.hidden * CLASSES;
    fprintf(stderr, "fashion-mnist-serve: loaded %s (epoch %u, hidden %u)\n", path, h.epoch, h.hidden);
    return 0;
}

/* The trainer's forward pass for one image (x in 0..1): probabilities into p, the class out. */
static int predict(const float *x, float *p)
{
    int H = M.hidden;
    float *h = malloc(sizeof(float) * (size_t)H);
    memcpy(h, M.b1, sizeof(float) * (size_t)H);
    for (int i = 0; i < PIXELS; i++) {
        if (x[i] == 0.0f)
            continue;
        const float *wi = M.w1t + (size_t)i * H;
        for (int j = 0; j < H; j++)
            h[j] += x[i] * wi[j];
    }
    float z[CLASSES];
    memcpy(z, M.b2, sizeof z);
    for (int j = 0; j < H; j++) {
        if (h[j] <= 0.0f)
            continue;
        const float *w2 = M.w2t + (size_t)j * CLASSES;
        for (int k = 0; k < CLASSES; k++)
            z[k] += h[j] * w2[k];
    }
    free(h);
    int arg = 0;
    for (int k = 1; k < CLASSES; k++)
        if (z[k] > z[arg])
            arg = k;
    double sum = 0;
    for (int k = 0; k < CLASSES; k++)
        sum += exp((double)(z[k] - z[arg]));
    for (int k = 0; k < CLASSES; k++)
        p[k] = (float)(exp((double)(z[k] - z[arg])) / sum);
    return arg;
}

/* ---- the little JSON this needs ---- */

/* The value of "key" in the object text at or after `s` (the first such key, at any depth
 * below `s`'s start but not past `end`); NULL when none. */
static const char *find_key(const char *s, const char *end, const char *key)
{
    size_t kl = strlen(key);
    for (const char *p = s; p && p + kl + 2 < end; p++) {
        p = memchr(p, '"', (size_t)(end - p));
        if (!p || p + kl + 2 > end)
            return NULL;
        if (strncmp(p + 1, key, kl) == 0 && p[kl + 1] == '"') {
            const char *q = p + kl + 2;
            while (q < end && (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r'))
                q++;
            if (q < end && *q == ':') {
                q++;
                while (q < end && (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r'))
                    q++;
                return q;
            }
        }
        /* skip this string */
        const char *e = p + 1;
        while (e < end && *e != '"')
            e += *e == '\\' ? 2 : 1;
        p = e;
    }
    return NULL;
}

/* The numbers of a (nested) JSON array at `s`, flattened; *n their count. -1 when `s` is not
 * such an array. */
static int numbers(const char *s, const char *end, double **out, size_t *n)
{
    if (!s || s >= end || *s != '[')
        return -1;
    size_t cap = 1024, k = 0;
    double *v = malloc(cap * sizeof *v);
    int depth = 0;
    const char *p = s;
    while (p < end) {
        char c = *p;
        if (c == '[') {
            depth++;
            p++;
        } else if (c == ']') {
            p++;
            if (--depth == 0)
                break;
        } else if (c == ',' || c == ' ' || c == '\n' || c == '\r' || c == '\t') {
            p++;
        } else {
            char *e;
            double d = strtod(p, &e);
            if (e == p) {
                free(v);
                return -1;
            }
            if (k == cap)
                v = realloc(v, (cap *= 2) * sizeof *v);
            v[k++] = d;
            p = e;
        }
    }
    if (depth != 0) {
        free(v);
        return -1;
    }
    *out = v;
    *n = k;
    return 0;
}

/* ---- HTTP ---- */

typedef struct conn {
    int fd;
    char *buf;
    size_t len, cap;
} conn;

static void send_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        p += n;
        len -= (size_t)n;
    }
}

static void reply(int fd, int code, const char *body, size_t blen, bool keep)
{
    char head[256];
    const char *reason = code == 200 ? "OK" : code == 404 ? "Not Found" : "Bad Request";
    int hl = snprintf(head, sizeof head,
                      "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n%s\r\n",
                      code, reason, blen, keep ? "" : "Connection: close\r\n");
    send_all(fd, head, (size_t)hl);
    send_all(fd, body, blen);
}

static void reply_error(int fd, int code, const char *msg, bool keep)
{
    char b[512];
    int n = snprintf(b, sizeof b, "{\"error\": \"%s\"}", msg);
    reply(fd, code, b, (size_t)n, keep);
}

typedef struct out {
    char *p;
    size_t len, cap;
} out;

static void addf(out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void addf(out *o, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
        if ((size_t)n < o->cap - o->len) {
            o->len += (size_t)n;
            return;
        }
        o->cap = (o->cap + (size_t)n) * 2;
        o->p = realloc(o->p, o->cap);
    }
}

/* Runs the model over `v` (n values: images of PIXELS, pixels scaled by `scale`). */
static void infer(int fd, bool keep, const double *v, size_t n, double scale, bool v1)
{
    size_t N = n / PIXELS;
    out o = {malloc(4096), 0, 4096};
    float *probs = malloc(sizeof(float) * CLASSES * (N ? N : 1));
    int *cls = malloc(sizeof(int) * (N ? N : 1));
    float x[PIXELS];
    for (size_t s = 0; s < N; s++) {
        for (int i = 0; i < PIXELS; i++)
            x[i] = (float)(v[s * PIXELS + i] * scale);
        cls[s] = predict(x, probs + s * CLASSES);
    }
    if (v1) {
        addf(&o, "{\"predictions\": [");
        for (size_t s = 0; s < N; s++)
            addf(&o, "%s%d", s ? ", " : "", cls[s]);
        addf(&o, "]}");
    } else {
        addf(&o, "{\"model_name\": \"%s\", \"outputs\": [{\"name\": \"output-0\", \"shape\": [%zu, %d], "
                 "\"datatype\": \"FP32\", \"data\": [", NAME, N, CLASSES);
        for (size_t i = 0; i < N * CLASSES; i++)
            addf(&o, "%s%.6g", i ? ", " : "", probs[i]);
        addf(&o, "]}, {\"name\": \"predicted\", \"shape\": [%zu], \"datatype\": \"INT64\", \"data\": [", N);
        for (size_t s = 0; s < N; s++)
            addf(&o, "%s%d", s ? ", " : "", cls[s]);
        addf(&o, "]}]}");
    }
    reply(fd, 200, o.p, o.len, keep);
    free(o.p);
    free(probs);
    free(cls);
}

/* One request: head [0, hlen), body [hlen+2, hlen+2+blen). */
static void handle(int fd, const char *req, size_t hlen, const char *body, size_t blen, bool keep)
{
    char method[8] = "", path[512] = "";
    if (sscanf(req, "%7s %511s", method, path) != 2) {
        reply_error(fd, 400, "malformed request", false);
        return;
    }
    (void)hlen;
    char model_path[600];
    snprintf(model_path, sizeof model_path, "/v2/models/%s", NAME);
    size_t mpl = strlen(model_path);
    if (strcmp(method, "GET") == 0) {
        char b[512];
        int n;
        if (strcmp(path, "/v2/health/live") == 0 || strcmp(path, "/v2/health/ready") == 0 ||
            (strncmp(path, model_path, mpl) == 0 && strcmp(path + mpl, "/ready") == 0))
            n = snprintf(b, sizeof b, "{\"live\": true, \"ready\": true}");
        else if (strcmp(path, "/v2") == 0)
            n = snprintf(b, sizeof b, "{\"name\": \"fashion-mnist-serve\", \"version\": \"1\", "
                                      "\"extensions\": []}");
        else if (strcmp(path, model_path) == 0)
            n = snprintf(b, sizeof b,
                         "{\"name\": \"%s\", \"versions\": [\"1\"], \"platform\": \"trainyard-c\", "
                         "\"inputs\": [{\"name\": \"input-0\", \"datatype\": \"FP32\", \"shape\": [-1, %d]}], "
                         "\"outputs\": [{\"name\": \"output-0\", \"datatype\": \"FP32\", \"shape\": [-1, %d]}, "
                         "{\"name\": \"predicted\", \"datatype\": \"INT64\", \"shape\": [-1]}]}",
                         NAME, PIXELS, CLASSES);
        else if (strcmp(path, "/") == 0 || strncmp(path, "/v1/models/", 11) == 0)
            n = snprintf(b, sizeof b, "{\"name\": \"%s\", \"ready\": true}", NAME);
        else {
            reply_error(fd, 404, "not found", keep);
            return;
        }
        reply(fd, 200, b, (size_t)n, keep);
        return;
    }
    bool v2 = strncmp(path, model_path, mpl) == 0 && strcmp(path + mpl, "/infer") == 0;
    char v1path[600];
    snprintf(v1path, sizeof v1path, "/v1/models/%s:predict", NAME);
    bool v1 = strcmp(path, v1path) == 0;
    if (strcmp(method, "POST") != 0 || (!v1 && !v2)) {
        reply_error(fd, 404, "not found", keep);
        return;
    }
    const char *end = body + blen;
    double *v = NULL;
    size_t n = 0;
    double scale = 1.0 / 255.0;
    if (v2) {
        const char *inputs = find_key(body, end, "inputs");
        const char *data = inputs ? find_key(inputs, end, "data") : NULL;
        const char *dt = inputs ? find_key(inputs, end, "datatype") : NULL;
        if (dt && strncmp(dt, "\"FP", 3) == 0)
            scale = 1.0;
        if (numbers(data, end, &v, &n) < 0) {
            reply_error(fd, 400, "expected inputs[0].data: an array of numbers", keep);
            return;
        }
    } else if (numbers(find_key(body, end, "instances"), end, &v, &n) < 0) {
        reply_error(fd, 400, "expected instances: an array of images", keep);
        return;
    }
    if (n == 0 || n % PIXELS != 0) {
        free(v);
        reply_error(fd, 400, "expected images of 784 pixels (shape [N, 784])", keep);
        return;
    }
    infer(fd, keep, v, n, scale, v1);
    free(v);
}

/* Serves what is complete in c->buf; returns -1 to close. */
static int serve(conn *c)
{
    for (;;) {
        char *e = memmem(c->buf, c->len, "\r\n\r\n", 4);
        if (!e)
            return c->len > 65536 ? -1 : 0;
        size_t hlen = (size_t)(e - c->buf) + 2;
        c->buf[hlen] = 0; /* the head as a string (its last CRLF kept) */
        size_t blen = 0;
        for (char *l = strchr(c->buf, '\n'); l; l = strchr(l + 1, '\n'))
            if (strncasecmp(l + 1, "Content-Length:", 15) == 0)
                blen = strtoull(l + 16, NULL, 10);
        bool keep = strstr(c->buf, "HTTP/1.1") && !strcasestr(c->buf, "Connection: close");
        if (blen > MAX_REQUEST)
            return -1;
        if (c->len < hlen + 2 + blen) {
            c->buf[hlen] = '\r';
            return 0;
        }
        handle(c->fd, c->buf, hlen, c->buf + hlen + 2, blen, keep);
        size_t used = hlen + 2 + blen;
        memmove(c->buf, c->buf + used, c->len - used);
        c->len -= used;
        if (!keep)
            return -1;
    }
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    const char *dir = "/mnt/models", *listen_addr = NULL;
    static const struct option opts[] = {{"model-dir", 1, 0, 'm'}, {"name", 1, 0, 'n'},
                                         {"listen", 1, 0, 'l'}, {0, 0, 0, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (o == 'm')
            dir = optarg;
        else if (o == 'n')
            NAME = optarg;
        else if (o == 'l')
            listen_addr = optarg;
        else {
            fprintf(stderr, "usage: fashion-mnist-serve [--model-dir DIR] [--name NAME] [--listen ADDR:PORT]\n");
            return 2;
        }
    }
    if (load(dir) < 0)
        return 1;
    char host[64] = "127.0.0.1";
    int port = 8080;
    if (listen_addr) {
        const char *colon = strrchr(listen_addr, ':');
        snprintf(host, sizeof host, "%.*s", colon ? (int)(colon - listen_addr) : 0, listen_addr);
        port = colon ? atoi(colon + 1) : 8080;
    } else {
        if (getenv("POD_IP") && *getenv("POD_IP"))
            snprintf(host, sizeof host, "%s", getenv("POD_IP"));
        if (getenv("PORT"))
            port = atoi(getenv("PORT"));
    }
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1 || bind(ls, (struct sockaddr *)&sa, sizeof sa) < 0 ||
        listen(ls, 128) < 0) {
        fprintf(stderr, "fashion-mnist-serve: listen on %s:%d: %s\n", host, port, strerror(errno));
        return 1;
    }
    fprintf(stderr, "fashion-mnist-serve: model %s on http://%s:%d\n", NAME, host, port);
    struct pollfd pf[MAX_CONNS + 1];
    conn cs[MAX_CONNS];
    int nc = 0;
    for (;;) {
        pf[0] = (struct pollfd){.fd = ls, .events = POLLIN};
        for (int i = 0; i < nc; i++)
            pf[i + 1] = (struct pollfd){.fd = cs[i].fd, .events = POLLIN};
        if (poll(pf, (nfds_t)nc + 1, -1) < 0) {
            if (errno == EINTR)
                continue;
            return 1;
        }
        for (int i = nc - 1; i >= 0; i--) {
            if (!(pf[i + 1].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            conn *c = &cs[i];
            if (c->cap - c->len < 65536) {
                c->cap = c->cap * 2 + 65536;
                c->buf = realloc(c->buf, c->cap);
            }
            ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len - 1, 0);
            if (n > 0)
                c->len += (size_t)n;
            if (n <= 0 || serve(c) < 0) {
                close(c->fd);
                free(c->buf);
                cs[i] = cs[--nc];
            }
        }
        if (pf[0].revents & POLLIN) {
            int fd = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
            if (fd >= 0 && nc == MAX_CONNS) {
                close(fd);
            } else if (fd >= 0) {
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                cs[nc++] = (conn){.fd = fd};
            }
        }
    }
}
