/* The DNS wire format shared by the zone (dns.c) and the server (dns_server.c): parsing a
 * query with every bound checked, and the few answers the server writes itself. Private to
 * src/net. */
#ifndef TY_NET_DNS_INT_H
#define TY_NET_DNS_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    DNS_HDR = 12,
    DNS_NAME_MAX = 255, /* wire form, terminating zero included */
    DNS_LABELS_MAX = 127,
    DNS_T_A = 1, DNS_T_NS = 2, DNS_T_CNAME = 5, DNS_T_SOA = 6, DNS_T_PTR = 12,
    DNS_T_TXT = 16, DNS_T_AAAA = 28, DNS_T_SRV = 33, DNS_T_OPT = 41, DNS_T_IXFR = 251, DNS_T_AXFR = 252,
    DNS_C_IN = 1,
    DNS_R_NOERROR = 0, DNS_R_FORMERR = 1, DNS_R_SERVFAIL = 2, DNS_R_NXDOMAIN = 3,
    DNS_R_NOTIMP = 4, DNS_R_REFUSED = 5,
    DNS_F_QR = 0x8000, DNS_F_AA = 0x0400, DNS_F_TC = 0x0200, DNS_F_RD = 0x0100,
    DNS_F_RA = 0x0080,
};

/* A query as parsed. The name is kept in wire form with its case (answers echo it) and, for
 * lookups, as the offsets of its labels in `name`. */
typedef struct dns_query {
    uint16_t id, flags, qtype, qclass;
    int rcode;                /* >= 0: answer only this (FORMERR, NOTIMP, BADVERS=16) */
    bool has_question;        /* the question parsed (echo it) */
    uint8_t name[DNS_NAME_MAX];
    size_t name_len;
    uint8_t label_off[DNS_LABELS_MAX];
    int labels;
    size_t question_end;      /* offset after the question in the packet */
    bool edns;                /* an OPT record came */
    uint16_t udp_size;        /* the client's (512 without EDNS0) */
    bool dnssec_ok;
} dns_query;

/* Parses the header, question and the OPT record of the additional section. false: drop
 * the packet (too short for a header, or a response). Otherwise q->rcode says whether it is
 * malformed (FORMERR), of an unsupported opcode (NOTIMP) or EDNS version (BADVERS). */
bool dns_parse_query(const uint8_t *p, size_t len, dns_query *q);
/* Reads the name at *off in p (following compression pointers, each backwards, the name at
 * most 255 bytes) into wire form `out`; advances *off past it in the packet. */
bool dns_read_name(const uint8_t *p, size_t len, size_t *off, uint8_t *out, size_t *out_len);
/* Whether two wire-form names are equal, ignoring ASCII case. */
bool dns_name_eq(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);
/* An answer with no records: header (rcode, flags from the query) and the question. */
size_t dns_error_reply(const dns_query *q, int rcode, uint8_t *out);
/* Whether `r` (len bytes) is a response to `q` sent with id `id`: the id, QR, and the
 * question (name, ignoring case, type, class). */
bool dns_is_response_to(const dns_query *q, uint16_t id, const uint8_t *r, size_t len);

static inline uint16_t dns_get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline void dns_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

#endif
