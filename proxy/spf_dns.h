/*
 * spf_dns: the DNS layer Warden gives libspf2, over dnsq.
 *
 * libspf2 lets a program replace its resolver with an SPF_dns_server_t.
 * Ours sends every query to the configured servers (dnsq) and enforces
 * RFC 7208's processing limits that libspf2 gets wrong or lacks:
 *  - at most 10 terms that cause DNS queries (a, mx, ptr, exists,
 *    include, redirect) in the whole check (4.6.4); libspf2 restarts its
 *    count in every include;
 *  - at most 2 void lookups (an empty answer or NXDOMAIN; 4.6.4);
 *  - at most 10 PTR names looked at (answers cut to 10, so a long PTR
 *    set is not a permerror; 4.6.4/3);
 *  - no query of the obsolete type SPF (99; RFC 7208 3.1);
 *  - one deadline for the whole check.
 * It also selects the SPF record itself (get_spf: exactly one "v=spf1"
 * TXT record, RFC 7208 4.5), bounds it, checks it against the grammar and
 * rewrites it (spf_syntax.h) before the library compiles it, and fetches
 * no exp= explanation (Warden replies with the admin's own text, and it
 * saves a lookup an attacker controls).
 *
 * A limit hit ends the check: every later lookup answers TRY_AGAIN, which
 * libspf2 turns into a temporary error at once; spf.c then reports the
 * limit's result (permerror) from spfdns_stop_reason().
 */
#ifndef WARDEN_SPF_DNS_H
#define WARDEN_SPF_DNS_H

#include <sys/types.h>
#include <netinet/in.h>
#include <spf2/spf.h>

struct dns_conf;

#define SPFDNS_MAX_TERMS 10
#define SPFDNS_MAX_VOIDS 2
#define SPFDNS_MAX_PTR 10
#define SPFDNS_RECORD_MAX 2048  /* a longer SPF record is a permerror */
#define SPFDNS_TERM_MAX 255     /* one term (mechanism or modifier) */
#define SPFDNS_TERM_MACROS 8    /* '%' escapes in one term */

enum spfdns_stop {
    SPFDNS_RUNNING,
    SPFDNS_TOO_MANY_LOOKUPS,  /* permerror */
    SPFDNS_TOO_MANY_VOIDS,    /* permerror */
    SPFDNS_DEADLINE,          /* temperror */
};

/* A layer for one thread's SPF_server_t (which frees it). */
SPF_dns_server_t *spfdns_new(void);

/* Start a check: reset the counts, set the servers and the deadline. */
void spfdns_begin(SPF_dns_server_t *l, const struct dns_conf *dns,
                  unsigned budget_ms);

enum spfdns_stop spfdns_stop_reason(SPF_dns_server_t *l);
unsigned spfdns_lookups(SPF_dns_server_t *l);
unsigned spfdns_voids(SPF_dns_server_t *l);
/* What makes rec unfit for libspf2's compiler (size, bytes), or NULL;
 * the grammar is spf_syntax.h's business. */
const char *spfdns_record_problem(const char *rec);

/* Why a record was refused before compiling, or NULL. */
const char *spfdns_why(SPF_dns_server_t *l);

#endif
