/* Sequential A queries over UDP to a DNS server, timed one by one:
 *   dns_probe ADDR PORT COUNT NAME...   (the names in turn)
 * prints "p50_us p99_us max_us" of the round trips; exits 1 when an answer is not NOERROR with
 * one A record, or none comes within a second. Part of bench/dns.sh. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static size_t query(unsigned char *b, const char *name, unsigned id)
{
    memset(b, 0, 12);
    b[0] = (unsigned char)(id >> 8);
    b[1] = (unsigned char)id;
    b[2] = 1; /* RD */
    b[5] = 1;
    size_t n = 12;
    for (const char *l = name; *l;) {
        const char *dot = strchr(l, '.');
        size_t len = dot ? (size_t)(dot - l) : strlen(l);
        b[n++] = (unsigned char)len;
        memcpy(b + n, l, len);
        n += len;
        l += len + (dot ? 1 : 0);
    }
    b[n++] = 0;
    b[n++] = 0, b[n++] = 1, b[n++] = 0, b[n++] = 1; /* A, IN */
    return n;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: dns_probe ADDR PORT COUNT NAME...\n");
        return 2;
    }
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2]))};
    inet_pton(AF_INET, argv[1], &to.sin_addr);
    int count = atoi(argv[3]);
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct timeval tv = {.tv_sec = 1};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    connect(fd, (struct sockaddr *)&to, sizeof to);
    double *us = calloc((size_t)count, sizeof *us);
    unsigned char q[512], r[4096];
    for (int i = 0; i < count; i++) {
        size_t n = query(q, argv[4 + i % (argc - 4)], (unsigned)i);
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        send(fd, q, n, 0);
        ssize_t got = recv(fd, r, sizeof r, 0);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if (got < 12 || (r[3] & 0xF) != 0 || r[7] != 1) {
            fprintf(stderr, "dns_probe: no A answer for %s\n", argv[4 + i % (argc - 4)]);
            return 1;
        }
        us[i] = (double)(t1.tv_sec - t0.tv_sec) * 1e6 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e3;
    }
    qsort(us, (size_t)count, sizeof *us, cmp);
    printf("%.0f %.0f %.0f\n", us[count / 2], us[count * 99 / 100], us[count - 1]);
    free(us);
    return 0;
}
