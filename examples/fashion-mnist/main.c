/* Fashion-MNIST data-parallel trainer: an MLP (784 -> hidden -> 10, ReLU, softmax) trained
 * with synchronous SGD + momentum. Every rank holds the full model, takes its contiguous shard
 * of each global batch (the same shuffled order on every rank) and the gradients are summed
 * with a ring all-reduce, so N ranks take the same step as one rank with the same global batch.
 * Environment as Kubeflow's training operator sets it: RANK, WORLD_SIZE, MASTER_ADDR,
 * MASTER_PORT, POD_IP (the address this process binds). */
#define _GNU_SOURCE /* accept4, SOCK_CLOEXEC: the examples rule does not pass -D_GNU_SOURCE */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "allreduce.h"
#include "data.h"

/* 4 floats at a time through GCC's vector extension: -O2 alone does not vectorize these loops,
 * and this keeps the program free of intrinsics and extra flags. */
typedef float v4 __attribute__((vector_size(16), may_alias));

typedef struct cfg {
    int epochs, batch, hidden, log_every, timeout_s, rendezvous_timeout_s, sockbuf;
    double lr, momentum;
    uint64_t seed;
    const char *data_dir, *ckpt_dir;
    long bench_bytes;
    int bench_iters;
} cfg;

typedef struct model {
    int hidden;
    size_t n;     /* parameter count */
    float *w1t;   /* [784][hidden]: input-major so both passes are axpy over hidden */
    float *b1;    /* [hidden] */
    float *w2t;   /* [hidden][10] */
    float *b2;    /* [10] */
} model;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void on_sigterm(int sig)
{
    (void)sig;
    static const char msg[] = "fashion-mnist: received SIGTERM, exiting\n";
    ssize_t ignored = write(2, msg, sizeof msg - 1);
    (void)ignored;
    /* The last checkpoint is complete (written by rename), so there is nothing to flush. */
    _exit(143);
}

static void *xalloc(size_t bytes)
{
    void *p = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
    if (!p) {
        fprintf(stderr, "fashion-mnist: error: out of memory (%zu bytes)\n", bytes);
        exit(1);
    }
    memset(p, 0, bytes);
    return p;
}

static size_t param_count(int h) { return (size_t)FM_PIXELS * h + h + (size_t)h * FM_CLASSES + FM_CLASSES; }

static void model_view(model *m, float *base, int h)
{
    m->hidden = h;
    m->n = param_count(h);
    m->w1t = base;
    m->b1 = m->w1t + (size_t)FM_PIXELS * h;
    m->w2t = m->b1 + h;
    m->b2 = m->w2t + (size_t)h * FM_CLASSES;
}

/* splitmix64: tiny, seedable, identical on every rank. */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static double rng_unit(uint64_t *s) { return (double)(rng_next(s) >> 11) * (1.0 / 9007199254740992.0); }

static void model_init(model *m, uint64_t seed)
{
    uint64_t s = seed * 0x2545f4914f6cdd1dull + 1;
    double a1 = sqrt(6.0 / FM_PIXELS), a2 = sqrt(6.0 / m->hidden);
    for (size_t i = 0; i < (size_t)FM_PIXELS * m->hidden; i++)
        m->w1t[i] = (float)((rng_unit(&s) * 2 - 1) * a1);
    for (size_t i = 0; i < (size_t)m->hidden * FM_CLASSES; i++)
        m->w2t[i] = (float)((rng_unit(&s) * 2 - 1) * a2);
}

static void shuffle(int *perm, int n, uint64_t seed, int epoch)
{
    uint64_t s = seed ^ (0x6a09e667f3bcc909ull * (uint64_t)(epoch + 1));
    for (int i = 0; i < n; i++)
        perm[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(rng_next(&s) % (uint64_t)(i + 1));
        int t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

/* Scratch for one shard of a batch: at most `cap` samples. */
typedef struct work {
    int cap, hidden;
    float *xt;   /* [784][cap] pixels / 255, transposed so the inner loop runs over samples */
    float *h;    /* [cap][hidden] */
    float *dh;   /* [cap][hidden] */
    float *p;    /* [cap][10] */
} work;

static void work_init(work *w, int cap, int hidden)
{
    w->cap = cap;
    w->hidden = hidden;
    w->xt = xalloc(sizeof(float) * FM_PIXELS * (size_t)cap);
    w->h = xalloc(sizeof(float) * (size_t)cap * hidden);
    w->dh = xalloc(sizeof(float) * (size_t)cap * hidden);
    w->p = xalloc(sizeof(float) * (size_t)cap * FM_CLASSES);
}

static void work_free(work *w)
{
    free(w->xt);
    free(w->h);
    free(w->dh);
    free(w->p);
}

static inline void axpy4(float *restrict y, float a, const float *restrict x, int n4)
{
    v4 *Y = (v4 *)y;
    const v4 *X = (const v4 *)x;
    for (int i = 0; i < n4; i++)
        Y[i] += a * X[i];
}

/* Forward pass for samples idx[0..m) of set; leaves softmax probabilities in w->p and returns
 * the summed cross-entropy loss; counts correct predictions into *correct when given. */
static double forward(const model *md, const fm_set *set, const int *idx, int m, work *w, int *correct)
{
    int H = md->hidden, h4 = H / 4;
    for (int s = 0; s < m; s++) {
        const uint8_t *img = set->images + (size_t)idx[s] * FM_PIXELS;
        for (int i = 0; i < FM_PIXELS; i++)
            w->xt[(size_t)i * m + s] = img[i] * (1.0f / 255.0f);
        memcpy(w->h + (size_t)s * H, md->b1, sizeof(float) * H);
    }
    for (int i = 0; i < FM_PIXELS; i++) {
        const float *wi = md->w1t + (size_t)i * H;
        const float *xi = w->xt + (size_t)i * m;
        for (int s = 0; s < m; s++)
            if (xi[s] != 0.0f) /* about half the pixels are background */
                axpy4(w->h + (size_t)s * H, xi[s], wi, h4);
    }
    double loss = 0;
    for (int s = 0; s < m; s++) {
        float *h = w->h + (size_t)s * H, *p = w->p + (size_t)s * FM_CLASSES;
        float z[FM_CLASSES];
        memcpy(z, md->b2, sizeof z);
        for (int j = 0; j < H; j++) {
            if (h[j] <= 0.0f) {
                h[j] = 0.0f;
                continue;
            }
            const float *w2 = md->w2t + (size_t)j * FM_CLASSES;
            for (int k = 0; k < FM_CLASSES; k++)
                z[k] += h[j] * w2[k];
        }
        float mx = z[0];
        int arg = 0;
        for (int k = 1; k < FM_CLASSES; k++)
            if (z[k] > mx)
                mx = z[k], arg = k;
        double sum = 0;
        for (int k = 0; k < FM_CLASSES; k++)
            sum += exp((double)(z[k] - mx));
        int y = set->labels[idx[s]];
        for (int k = 0; k < FM_CLASSES; k++)
            p[k] = (float)(exp((double)(z[k] - mx)) / sum);
        loss += log(sum) - (double)(z[y] - mx);
        if (correct && arg == y)
            (*correct)++;
    }
    return loss;
}

/* Adds the gradient of (summed loss of these m samples) * scale into g. Call after forward. */
static void backward(const model *md, const fm_set *set, const int *idx, int m, work *w, model *g,
                     float scale)
{
    int H = md->hidden, h4 = H / 4;
    for (int s = 0; s < m; s++) {
        const float *h = w->h + (size_t)s * H;
        float *dh = w->dh + (size_t)s * H;
        float dz[FM_CLASSES];
        int y = set->labels[idx[s]];
        for (int k = 0; k < FM_CLASSES; k++) {
            dz[k] = (w->p[(size_t)s * FM_CLASSES + k] - (k == y ? 1.0f : 0.0f)) * scale;
            g->b2[k] += dz[k];
        }
        for (int j = 0; j < H; j++) {
            if (h[j] <= 0.0f) {
                dh[j] = 0.0f;
                continue;
            }
            const float *w2 = md->w2t + (size_t)j * FM_CLASSES;
            float *g2 = g->w2t + (size_t)j * FM_CLASSES, acc = 0;
            for (int k = 0; k < FM_CLASSES; k++) {
                g2[k] += h[j] * dz[k];
                acc += w2[k] * dz[k];
            }
            dh[j] = acc;
            g->b1[j] += acc;
        }
    }
    for (int i = 0; i < FM_PIXELS; i++) {
        float *gi = g->w1t + (size_t)i * H;
        const float *xi = w->xt + (size_t)i * m;
        for (int s = 0; s < m; s++)
            if (xi[s] != 0.0f)
                axpy4(gi, xi[s], w->dh + (size_t)s * H, h4);
    }
}

/* ---- checkpoint: header, weights, velocity, crc32 of everything before it ---- */

#define CK_MAGIC "FMNIST01"

typedef struct ck_header {
    char magic[8];
    uint32_t epoch, hidden;
    uint64_t nparams, seed;
} ck_header;

static int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Atomic: a crash leaves either the old checkpoint or the new one, never half of one. */
static int checkpoint_save(const char *dir, const model *m, const float *vel, int epoch, uint64_t seed,
                           fm_err *err)
{
    char path[4096], tmp[4200];
    if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
        fm_err_set(err, "create checkpoint dir %s: %s", dir, strerror(errno));
        return -1;
    }
    snprintf(path, sizeof path, "%s/checkpoint.bin", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        fm_err_set(err, "create %s: %s", tmp, strerror(errno));
        return -1;
    }
    ck_header h = {.epoch = (uint32_t)epoch, .hidden = (uint32_t)m->hidden, .nparams = m->n, .seed = seed};
    memcpy(h.magic, CK_MAGIC, 8);
    uLong crc = crc32(0, (const Bytef *)&h, sizeof h);
    crc = crc32_z(crc, (const Bytef *)m->w1t, m->n * sizeof(float));
    crc = crc32_z(crc, (const Bytef *)vel, m->n * sizeof(float));
    uint32_t crc32v = (uint32_t)crc;
    if (write_all(fd, &h, sizeof h) < 0 || write_all(fd, m->w1t, m->n * sizeof(float)) < 0 ||
        write_all(fd, vel, m->n * sizeof(float)) < 0 || write_all(fd, &crc32v, sizeof crc32v) < 0 ||
        fsync(fd) < 0) {
        fm_err_set(err, "write %s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        return -1;
    }
    close(fd);
    if (rename(tmp, path) < 0) {
        fm_err_set(err, "rename %s to %s: %s", tmp, path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    /* fsync the directory so the rename itself survives a crash. */
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return 0;
}

/* Returns the completed epoch count (0 when there is no checkpoint), or -1. *crc_out gets the
 * file's crc so ranks can check they all loaded the same one. */
static int checkpoint_load(const char *dir, model *m, float *vel, uint32_t *crc_out, fm_err *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/checkpoint.bin", dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        fm_err_set(err, "open %s: %s", path, strerror(errno));
        return -1;
    }
    size_t want = sizeof(ck_header) + 2 * m->n * sizeof(float) + 4;
    char *buf = malloc(want + 1);
    size_t got = 0;
    while (buf && got < want + 1) {
        ssize_t n = read(fd, buf + got, want + 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    if (!buf) {
        fm_err_set(err, "out of memory reading %s", path);
        return -1;
    }
    ck_header h;
    memcpy(&h, buf, got >= sizeof h ? sizeof h : 0);
    if (got < sizeof h || memcmp(h.magic, CK_MAGIC, 8) != 0) {
        fm_err_set(err, "%s is not a fashion-mnist checkpoint", path);
        free(buf);
        return -1;
    }
    if (h.hidden != (uint32_t)m->hidden || h.nparams != m->n) {
        fm_err_set(err, "%s was written with --hidden %u, this run uses %d", path, h.hidden, m->hidden);
        free(buf);
        return -1;
    }
    uint32_t crc;
    memcpy(&crc, buf + want - 4, 4);
    if (got != want || (uint32_t)crc32_z(0, (const Bytef *)buf, want - 4) != crc) {
        fm_err_set(err, "%s is truncated or corrupt", path);
        free(buf);
        return -1;
    }
    memcpy(m->w1t, buf + sizeof h, m->n * sizeof(float));
    memcpy(vel, buf + sizeof h + m->n * sizeof(float), m->n * sizeof(float));
    free(buf);
    *crc_out = crc;
    return (int)h.epoch;
}

static int env_int(const char *name, int def)
{
    const char *v = getenv(name);
    return v && *v ? atoi(v) : def;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: fashion-mnist [--epochs N] [--batch GLOBAL] [--lr F] [--momentum F] [--hidden N]\n"
            "                     [--seed N] [--data-dir DIR] [--checkpoint-dir DIR] [--log-every STEPS]\n"
            "                     [--timeout S] [--rendezvous-timeout S] [--sockbuf BYTES]\n"
            "                     [--bench-allreduce BYTES [--bench-iters N]]\n"
            "environment: RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT (23456), POD_IP (127.0.0.1),\n"
            "TRAINYARD_JOB_DIR (the --checkpoint-dir when none is given)\n");
}

static int parse_args(int argc, char **argv, cfg *c)
{
    *c = (cfg){.epochs = 3, .batch = 128, .hidden = 128, .lr = 0.1, .momentum = 0.9, .seed = 1,
               .data_dir = "/usr/share/datasets/fashion-mnist", .log_every = 100, .timeout_s = 60,
               .rendezvous_timeout_s = 300, .bench_iters = 10,
               .sockbuf = 256 * 1024};
    static const struct option opts[] = {
        {"epochs", 1, 0, 'e'}, {"batch", 1, 0, 'b'}, {"lr", 1, 0, 'l'}, {"momentum", 1, 0, 'm'},
        {"hidden", 1, 0, 'H'}, {"seed", 1, 0, 's'}, {"data-dir", 1, 0, 'd'}, {"checkpoint-dir", 1, 0, 'c'},
        {"log-every", 1, 0, 'L'}, {"timeout", 1, 0, 't'}, {"rendezvous-timeout", 1, 0, 'R'},
        {"bench-allreduce", 1, 0, 'B'}, {"bench-iters", 1, 0, 'I'}, {"sockbuf", 1, 0, 'S'},
        {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case 'e': c->epochs = atoi(optarg); break;
        case 'b': c->batch = atoi(optarg); break;
        case 'l': c->lr = atof(optarg); break;
        case 'm': c->momentum = atof(optarg); break;
        case 'H': c->hidden = atoi(optarg); break;
        case 's': c->seed = strtoull(optarg, NULL, 10); break;
        case 'd': c->data_dir = optarg; break;
        case 'c': c->ckpt_dir = optarg; break;
        case 'L': c->log_every = atoi(optarg); break;
        case 't': c->timeout_s = atoi(optarg); break;
        case 'R': c->rendezvous_timeout_s = atoi(optarg); break;
        case 'B': c->bench_bytes = atol(optarg); break;
        case 'I': c->bench_iters = atoi(optarg); break;
        case 'S': c->sockbuf = atoi(optarg); break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "fashion-mnist: error: unexpected argument %s\n", argv[optind]);
        return -1;
    }
    /* Under `trainyard run` the job's own directory outlives its pods (gang restarts resume
     * from it) and is private to the run, so two runs never share a checkpoint. */
    const char *job_dir = getenv("TRAINYARD_JOB_DIR");
    if (!c->ckpt_dir && job_dir && *job_dir)
        c->ckpt_dir = job_dir;
    if (c->epochs < 1 || c->batch < 1 || c->hidden < 4 || c->hidden % 4 || c->lr <= 0 || c->timeout_s < 1 ||
        c->momentum < 0 || c->momentum >= 1 || c->bench_bytes < 0 || c->bench_iters < 1) {
        fprintf(stderr, "fashion-mnist: error: bad flag value (--hidden must be a positive multiple of 4,"
                        " --epochs/--batch/--timeout positive, 0 <= --momentum < 1)\n");
        return -1;
    }
    return 0;
}

static int fail(const fm_err *err)
{
    fprintf(stderr, "fashion-mnist: error: %s\n", err->msg);
    return 1;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Times the all-reduce of `bytes` of float32 (bench/allreduce.sh); checks the first result. */
static int bench_allreduce(fm_ring *ring, const cfg *c, int rank, int world)
{
    fm_err err;
    size_t n = (size_t)c->bench_bytes / sizeof(float);
    float *data = xalloc(n * sizeof(float) + 16);
    double *t = xalloc((size_t)c->bench_iters * sizeof *t);
    float token = 1;
    int warmup = 2;
    for (int it = -warmup; it < c->bench_iters; it++) {
        for (size_t i = 0; i < n; i++)
            data[i] = (float)(i % 1000) + (float)rank;
        if (fm_ring_allreduce(ring, &token, 1, &err) < 0) /* barrier: start together */
            return fail(&err);
        double t0 = now_s();
        if (fm_ring_allreduce(ring, data, n, &err) < 0)
            return fail(&err);
        double dt = now_s() - t0;
        if (it >= 0)
            t[it] = dt;
        if (it == -warmup)
            for (size_t i = 0; i < n; i++) {
                float want = (float)world * (float)(i % 1000) + (float)(world * (world - 1) / 2);
                if (data[i] != want) {
                    fprintf(stderr, "fashion-mnist: error: allreduce result wrong at %zu: %g, want %g\n", i,
                            data[i], want);
                    return 1;
                }
            }
    }
    qsort(t, (size_t)c->bench_iters, sizeof *t, cmp_double);
    double med = c->bench_iters % 2 ? t[c->bench_iters / 2]
                                    : (t[c->bench_iters / 2 - 1] + t[c->bench_iters / 2]) / 2;
    if (rank == 0)
        printf("allreduce impl=ring-tcp ranks=%d bytes=%zu iters=%d median_s=%.6f algbw_GBps=%.3f\n", world,
               n * sizeof(float), c->bench_iters, med, (double)(n * sizeof(float)) / med / 1e9);
    free(t);
    free(data);
    return 0;
}

/* Test accuracy: each rank evaluates its slice of the test set; the ranks then sum
 * stats[0] (what the caller put there: its loss) and stats[1] (the correct answers). */
static int evaluate(const model *m, const fm_set *test, const int *test_idx, work *w, int rank,
                    int world, fm_ring *ring, float stats[2], fm_err *err)
{
    int tlo = (int)((long)test->n * rank / world), thi = (int)((long)test->n * (rank + 1) / world);
    int correct = 0;
    for (int s = tlo; s < thi; s += w->cap) {
        int k = thi - s < w->cap ? thi - s : w->cap;
        forward(m, test, test_idx + s, k, w, &correct);
    }
    stats[1] = (float)correct;
    return fm_ring_allreduce(ring, stats, 2, err);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* log collectors read lines as they come */
    struct sigaction sa = {.sa_handler = on_sigterm};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    cfg c;
    if (parse_args(argc, argv, &c) < 0)
        return 2;
    int world = env_int("WORLD_SIZE", 1), rank = env_int("RANK", 0);
    if (world < 1 || rank < 0 || rank >= world) {
        fprintf(stderr, "fashion-mnist: error: RANK=%d is outside WORLD_SIZE=%d\n", rank, world);
        return 2;
    }
    const char *pod_ip = getenv("POD_IP");
    const char *master = getenv("MASTER_ADDR");
    fm_ring_opts ro = {.rank = rank, .world = world,
                       /* Rank 0 is the master pod: it listens on its own address, which is
                        * what MASTER_ADDR names (and needs no name lookup). */
                       .master_addr = rank == 0 && pod_ip && *pod_ip ? pod_ip
                                      : master && *master ? master : "127.0.0.1",
                       .master_port = env_int("MASTER_PORT", 23456),
                       .bind_ip = pod_ip && *pod_ip ? pod_ip : "127.0.0.1",
                       .rendezvous_timeout_ms = c.rendezvous_timeout_s * 1000,
                       .timeout_ms = c.timeout_s * 1000, .sockbuf = c.sockbuf};
    fm_err err;
    double t_start = now_s();
    fm_ring *ring;
    if (fm_ring_open(&ring, &ro, &err) < 0)
        return fail(&err);
    if (c.bench_bytes > 0) {
        int rc = bench_allreduce(ring, &c, rank, world);
        fm_ring_close(ring);
        return rc;
    }

    fm_set train, test;
    if (fm_set_load(&train, c.data_dir, "train", &err) < 0 || fm_set_load(&test, c.data_dir, "t10k", &err) < 0) {
        fm_ring_close(ring);
        return fail(&err);
    }
    printf("fashion-mnist rank=%d world=%d epochs=%d batch=%d lr=%g momentum=%g hidden=%d seed=%llu train=%d test=%d\n",
           rank, world, c.epochs, c.batch, c.lr, c.momentum, c.hidden, (unsigned long long)c.seed, train.n,
           test.n);

    size_t np = param_count(c.hidden);
    model m, g;
    model_view(&m, xalloc(np * sizeof(float)), c.hidden);
    model_view(&g, xalloc(np * sizeof(float)), c.hidden);
    float *vel = xalloc(np * sizeof(float));
    model_init(&m, c.seed);
    int start_epoch = 0;
    if (c.ckpt_dir) {
        uint32_t crc = 0;
        start_epoch = checkpoint_load(c.ckpt_dir, &m, vel, &crc, &err);
        if (start_epoch < 0)
            return fail(&err);
        /* Every rank must resume from the same state, or the replicas silently diverge: compare
         * (epoch, crc) across ranks. Each rank fills its own slot; the sum is everyone's. */
        float *who = xalloc(sizeof(float) * 3 * (size_t)world);
        who[3 * rank] = (float)start_epoch;
        who[3 * rank + 1] = (float)(crc >> 16);
        who[3 * rank + 2] = (float)(crc & 0xffff);
        if (fm_ring_allreduce(ring, who, 3 * (size_t)world, &err) < 0)
            return fail(&err);
        for (int r = 0; r < world; r++)
            if (memcmp(who + 3 * r, who, 3 * sizeof(float)) != 0) {
                fprintf(stderr, "fashion-mnist: error: rank %d loaded a different checkpoint (epoch %g) than"
                                " rank 0 (epoch %g); is --checkpoint-dir shared?\n", r, who[3 * r], who[0]);
                return 1;
            }
        free(who);
        if (start_epoch > 0)
            printf("resumed from epoch=%d\n", start_epoch);
    }

    int *perm = malloc(sizeof(int) * (size_t)train.n);
    int *test_idx = malloc(sizeof(int) * (size_t)test.n);
    for (int i = 0; i < test.n; i++)
        test_idx[i] = i;
    int shard_cap = c.batch / world + 1;
    work w;
    work_init(&w, shard_cap < 256 ? 256 : shard_cap, c.hidden);
    int steps = (train.n + c.batch - 1) / c.batch;
    float acc = 0;
    for (int epoch = start_epoch; epoch < c.epochs; epoch++) {
        double t0 = now_s(), loss_sum = 0, comm = 0;
        int seen = 0;
        shuffle(perm, train.n, c.seed, epoch);
        for (int step = 0; step < steps; step++) {
            int lo = step * c.batch, cnt = train.n - lo < c.batch ? train.n - lo : c.batch;
            int a = lo + (int)((long)cnt * rank / world), b = lo + (int)((long)cnt * (rank + 1) / world);
            memset(g.w1t, 0, np * sizeof(float));
            if (b > a) {
                loss_sum += forward(&m, &train, perm + a, b - a, &w, NULL);
                backward(&m, &train, perm + a, b - a, &w, &g, 1.0f / (float)cnt);
                seen += b - a;
            }
            double tc = now_s();
            if (fm_ring_allreduce(ring, g.w1t, np, &err) < 0)
                return fail(&err);
            comm += now_s() - tc;
            /* Cosine decay to zero over the whole run: a constant rate keeps the test accuracy
             * bouncing around, decaying it settles the last epoch 1-2 points higher. A function
             * of (epoch, step) only, so a resumed run follows the same schedule. */
            double progress = ((double)epoch * steps + step) / ((double)c.epochs * steps);
            float lr = (float)(c.lr * 0.5 * (1.0 + cos(M_PI * progress))), mu = (float)c.momentum;
            for (size_t i = 0; i < np; i++) {
                vel[i] = mu * vel[i] + g.w1t[i];
                m.w1t[i] -= lr * vel[i];
            }
            if (rank == 0 && c.log_every > 0 && (step + 1) % c.log_every == 0)
                printf("progress epoch=%d/%d step=%d/%d loss=%.4f\n", epoch + 1, c.epochs, step + 1, steps,
                       seen ? loss_sum / seen : 0.0);
        }
        float stats[2] = {(float)loss_sum, 0};
        if (evaluate(&m, &test, test_idx, &w, rank, world, ring, stats, &err) < 0)
            return fail(&err);
        acc = stats[1] / (float)test.n;
        printf("epoch=%d/%d loss=%.4f accuracy=%.4f time_s=%.2f comm_s=%.2f\n", epoch + 1, c.epochs,
               stats[0] / train.n, acc, now_s() - t0, comm);
        if (rank == 0 && c.ckpt_dir) {
            if (checkpoint_save(c.ckpt_dir, &m, vel, epoch + 1, c.seed, &err) < 0)
                return fail(&err);
            printf("checkpoint epoch=%d path=%s/checkpoint.bin\n", epoch + 1, c.ckpt_dir);
        }
    }
    if (start_epoch >= c.epochs) {
        /* Trained already: say so, and how good the checkpoint's model is. */
        printf("nothing to do: checkpoint already has %d of %d epochs\n", start_epoch, c.epochs);
        float stats[2] = {0, 0};
        if (evaluate(&m, &test, test_idx, &w, rank, world, ring, stats, &err) < 0)
            return fail(&err);
        acc = stats[1] / (float)test.n;
    }
    printf("done epochs=%d accuracy=%.4f total_s=%.2f\n", c.epochs, acc, now_s() - t_start);
    work_free(&w);
    free(perm);
    free(test_idx);
    free(vel);
    free(g.w1t);
    free(m.w1t);
    fm_set_free(&train);
    fm_set_free(&test);
    fm_ring_close(ring);
    return 0;
}
