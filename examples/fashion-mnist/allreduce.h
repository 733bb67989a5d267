/* Ring all-reduce over TCP for the Fashion-MNIST example (and bench/allreduce.sh).
 *
 * Rendezvous: rank 0 listens on master_addr:master_port (the caller passes rank 0 its own
 * POD_IP, which is what MASTER_ADDR names); every other rank connects there
 * (retrying until the rendezvous deadline, because pods start in any order) and sends its rank
 * plus the address of its own ring listener (bind_ip, ephemeral port). Rank 0 answers everyone
 * with the full table; then rank r connects to rank r+1 and accepts rank r-1, forming the ring.
 * Every socket binds only bind_ip, never the wildcard address, so jobs that share a port but
 * not an address run side by side.
 *
 * Contract: functions that can fail return -1 and write a lowercase message naming what failed
 * into err (never NULL). fm_ring_open's *out is owned by the caller and freed with fm_ring_close.
 * A peer that dies shows up as EOF/reset (immediate error); a peer that hangs as a timeout after
 * timeout_ms without progress. Either way the ring is unusable afterwards: close it and exit. */
#ifndef FM_ALLREDUCE_H
#define FM_ALLREDUCE_H

#include <stddef.h>

typedef struct fm_err {
    char msg[512];
} fm_err;

typedef struct fm_ring fm_ring;

typedef struct fm_ring_opts {
    int rank, world;
    const char *master_addr; /* IPv4 literal or host name */
    int master_port;
    const char *bind_ip;     /* this process's own address (POD_IP) */
    int rendezvous_timeout_ms; /* how long to wait for all ranks to show up */
    int timeout_ms;            /* longest wait without progress once the ring is up */
    int sockbuf;               /* SO_SNDBUF/SO_RCVBUF in bytes; 0 keeps the kernel's autotuning.
                                * 256 KiB measured fastest on loopback: the bytes are still in
                                * cache when the receiver copies them out (bench/allreduce.sh). */
} fm_ring_opts;

void fm_err_set(fm_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Forms the ring. world == 1 needs no sockets and always succeeds. */
int fm_ring_open(fm_ring **out, const fm_ring_opts *opts, fm_err *err);

/* Sums data[0..n) element-wise across all ranks, in place; every rank gets the same result.
 * Reduce-scatter then all-gather, streamed in one pipeline: bytes of a segment go on to the next
 * rank as soon as they are reduced. Every rank must call it with the same n. */
int fm_ring_allreduce(fm_ring *ring, float *data, size_t n, fm_err *err);

/* Closes the sockets and frees the ring; NULL is fine. */
void fm_ring_close(fm_ring *ring);

#endif
