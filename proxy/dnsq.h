/*
 * dnsq: blocking DNS queries for worker threads, sent to the configured
 * upstream (`dns.servers`, else /etc/resolv.conf) with a hard time bound,
 * and a small TTL cache shared by all threads.
 *
 * Why a second resolver beside dns.c: libspf2 (and later libopendkim and
 * libopendmarc) resolve through synchronous callbacks. Those run on the
 * worker pool (workpool.h), never on an event loop, and ask dnsq. Both
 * modules take their servers and timeout from the same `dns:` section, so
 * the tests point both at one DNS server on loopback.
 *
 * An answer keeps what callers use: the records of the type asked for
 * (a CNAME chain the upstream followed is skipped), with TXT strings
 * joined and names uncompressed. A timeout, a server failure or a reply
 * that does not match the question is DNSQ_TEMPFAIL: never an answer.
 * Replies are checked against the query (ID, question, QR) and each
 * query uses a fresh socket (a random source port) and a random ID.
 */
#ifndef WARDEN_DNSQ_H
#define WARDEN_DNSQ_H

#include <stddef.h>
#include <stdint.h>

struct dns_conf;

/* A name in presentation form, without the trailing dot, and its NUL. */
#define DNSQ_NAME_MAX 254
/* More records than this in one answer are dropped (memory bound). */
#define DNSQ_MAX_RR 256

enum dnsq_status {
    DNSQ_OK,        /* at least one record of the type asked for */
    DNSQ_NODATA,    /* the name exists, no record of that type */
    DNSQ_NXDOMAIN,  /* the name does not exist (or is not a valid name) */
    DNSQ_TEMPFAIL,  /* timeout, SERVFAIL, REFUSED, unusable reply */
};

struct dnsq_rr {
    uint16_t type;
    uint16_t pref;      /* MX preference */
    uint32_t ttl;
    size_t len;         /* bytes in data, without the NUL added after it */
    char *data;         /* A/AAAA: 4/16 address bytes; TXT: the strings
                         * joined; MX/PTR/CNAME/NS: the name, no final dot */
};

struct dnsq_answer {
    enum dnsq_status status;
    struct dnsq_rr *rr;
    size_t n;
    uint32_t ttl;       /* seconds it may be cached (0: not at all) */
};

/*
 * Resolve name/type (ns_t_a, ns_t_txt, ...). Waits at most timeout_ms in
 * all (every server tried in order, a TCP retry after a truncated UDP
 * reply). Fills *out, which the caller frees with dnsq_answer_free(), and
 * returns its status. Thread-safe.
 */
enum dnsq_status dnsq_query(const struct dns_conf *conf, const char *name,
                            int type, unsigned timeout_ms,
                            struct dnsq_answer *out);
void dnsq_answer_free(struct dnsq_answer *a);

/* Drop every cached answer (tests that change their zone). */
void dnsq_cache_flush(void);

/* ---- the pure parts, exposed for unit tests and fuzzing ---- */

/* Is name a valid query name (labels of 1-63 octets, 253 in all)? */
int dnsq_name_ok(const char *name);

/*
 * Build a query for name/type with id, recursion desired and an EDNS0
 * OPT record. Returns its length, or -1 when name is invalid or buf is
 * too small.
 */
int dnsq_build(const char *name, int type, uint16_t id, unsigned char *buf,
               size_t len);

/*
 * Parse msg as the reply to the query (id, name, type). Returns 0 with
 * *out filled (any status), 1 when the reply is truncated (ask again over
 * TCP), or -1 when msg is not a reply to that query (keep waiting).
 */
int dnsq_parse(const unsigned char *msg, size_t len, uint16_t id,
               const char *name, int type, struct dnsq_answer *out);

const char *dnsq_status_name(enum dnsq_status s);

#endif
