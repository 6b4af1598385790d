/*
 * spf: Sender Policy Framework (RFC 7208) evaluation with libspf2.
 *
 * spf_evaluate() checks one identity, MAIL FROM or (for the null sender)
 * postmaster@HELO, for the real client address, and blocks while it
 * resolves: call it on a worker thread (workpool.h), never on a loop.
 * check_spf.c does that and turns the result into a verdict.
 *
 * What reaches libspf2 is bounded here and in spf_dns.c, since the
 * library has known weak spots (see NOTES: no void-lookup limit, a
 * lookup count that restarts in every include, a macro compiler with a
 * 2023 underflow): the domain is checked before any query, the record
 * is checked (length, term length, printable ASCII) before it is
 * compiled, DNS goes through dnsq to the configured servers with a
 * per-query timeout, and the whole evaluation has a deadline. Any DNS
 * timeout or failure ends as temperror, never as a pass.
 */
#ifndef WARDEN_SPF_H
#define WARDEN_SPF_H

#include <stdbool.h>

#include "netaddr.h"

struct dns_conf;

enum spf_result {
    SPFR_NONE,
    SPFR_NEUTRAL,
    SPFR_PASS,
    SPFR_FAIL,
    SPFR_SOFTFAIL,
    SPFR_TEMPERROR,
    SPFR_PERMERROR,
    SPFR__COUNT
};

enum spf_identity {
    SPFID_MAILFROM,   /* the MAIL FROM address */
    SPFID_HELO,       /* MAIL FROM:<> : postmaster@HELO */
};

#define SPF_HELO_MAX 256
#define SPF_ADDR_MAX 520   /* a MAIL FROM path fits (RFC 5321: 256) */

/* RFC 7208 4.6.4 suggests at least 20 seconds for a whole check. */
#define SPF_BUDGET_MS 20000

/* What to check. Strings are copied in: the query outlives no session. */
struct spf_query {
    char ip[NETADDR_STRLEN];      /* client address, numeric */
    char helo[SPF_HELO_MAX];      /* "" when the client sent none */
    char sender[SPF_ADDR_MAX];    /* MAIL FROM, "" for <> */
};

struct spf_outcome {
    enum spf_result result;
    enum spf_identity identity;
    char mailfrom[SPF_ADDR_MAX];  /* the identity checked, as an address */
    char domain[SPF_HELO_MAX];    /* its domain */
    char why[96];                 /* a few words when not obvious */
    unsigned lookups;             /* DNS terms counted (RFC 7208 4.6.4) */
    unsigned voids;               /* void lookups */
};

/*
 * Check q with DNS from dns (servers, per-query timeout) within budget_ms
 * in all. Blocking; thread-safe (one libspf2 server per thread).
 */
void spf_evaluate(const struct spf_query *q, const struct dns_conf *dns,
                  unsigned budget_ms, struct spf_outcome *out);

/* "pass", "fail", ... as in RFC 7208 and Authentication-Results. */
const char *spf_result_name(enum spf_result r);
/* The result named s, or -1. */
int spf_result_parse(const char *s);

/*
 * Is d a domain SPF can check (RFC 7208 4.3): at least two labels of
 * 1-63 octets, 253 in all, no address literal? Otherwise: none.
 */
bool spf_domain_ok(const char *d);

#endif
