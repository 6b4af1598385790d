/*
 * dmarc: Domain-based Message Authentication, Reporting and Conformance
 * (RFC 7489): policy discovery, record parsing, identifier alignment and
 * the result, on top of the SPF and DKIM results Warden already has.
 *
 * Split so the blocking part is small: dmarc_discover() asks DNS for
 * _dmarc.<From: domain>, then _dmarc.<organizational domain> (RFC 7489
 * 6.6.3), and must run on a worker thread; everything else is pure and
 * runs on the session's loop (check_dmarc.c). A DNS timeout or failure is
 * temperror, never a pass and never "no policy".
 *
 * Not done (no reports are sent): rua/ruf reporting, and the "fo" and
 * "rf"/"ri" tags, which only steer reports.
 */
#ifndef WARDEN_DMARC_H
#define WARDEN_DMARC_H

#include <stdbool.h>
#include <stddef.h>

#include "fromaddr.h"

struct dns_conf;
struct orgdomain;

enum dmarc_result {
    DMARCR_NONE,       /* no policy published (or no usable From:) */
    DMARCR_PASS,
    DMARCR_FAIL,
    DMARCR_TEMPERROR,  /* DNS did not answer */
    DMARCR_PERMERROR,  /* no single From: domain, or an unusable record */
    DMARCR__COUNT
};

enum dmarc_disp {
    DMARC_DISP_NONE,
    DMARC_DISP_QUARANTINE,
    DMARC_DISP_REJECT,
};

/* A parsed "v=DMARC1; p=...; ..." record. */
struct dmarc_record {
    enum dmarc_disp p;
    enum dmarc_disp sp;     /* = p when the record has no sp */
    bool strict_spf;        /* aspf=s */
    bool strict_dkim;       /* adkim=s */
    unsigned pct;           /* 0-100, default 100 */
};

/* Record text the worker brings back (TXT strings joined). */
#define DMARC_RECORD_MAX 1024

struct dmarc_lookup {
    int status;             /* 0 found one, 1 none, -1 temperror,
                             * -2 several records */
    bool at_org;            /* found at the organizational domain */
    char record[DMARC_RECORD_MAX];
};

/* What DMARC looks at: the From: domain and the passing identifiers. */
struct dmarc_input {
    const char *from_domain;
    const char *spf_domain;           /* SPF passed for it; NULL if not */
    const char *const *dkim_domains;  /* d= of each passing signature */
    size_t ndkim;
    bool dkim_unverified;             /* DKIM skipped (message too big) */
};

struct dmarc_outcome {
    enum dmarc_result result;
    char from_domain[FROMADDR_DOMAIN_MAX];  /* "" when there was none */
    bool have_policy;
    enum dmarc_disp policy;       /* p (or sp) the domain asks for */
    enum dmarc_disp disposition;  /* after pct: what the policy says now */
    const char *aligned;          /* "spf", "dkim" or NULL */
    char why[96];
};

/*
 * Parse a TXT record. Returns 0 (r set), 1 when it is not a DMARC record
 * (no leading v=DMARC1: ignored, RFC 7489 6.6.3), or -1 when it is one
 * without a usable p= (and without rua=, which would make it p=none).
 */
int dmarc_record_parse(const char *txt, struct dmarc_record *r);

/* Are two domains aligned (RFC 7489 3.1): the same name (strict), or the
 * same organizational domain (relaxed)? Case does not matter. */
bool dmarc_aligned(const struct orgdomain *psl, const char *from_domain,
                   const char *auth_domain, bool strict);

/* Blocking; on a worker thread. org_domain may equal from_domain. */
void dmarc_discover(const struct dns_conf *dns, unsigned timeout_ms,
                    const char *from_domain, const char *org_domain,
                    struct dmarc_lookup *out);

/*
 * The result for in, given what discovery found. roll is a number in
 * [0, 100) for pct sampling (RFC 7489 6.6.4): the policy applies when
 * roll < pct, else the next milder one does.
 */
void dmarc_evaluate(const struct orgdomain *psl, const struct dmarc_lookup *lk,
                    const struct dmarc_input *in, unsigned roll,
                    struct dmarc_outcome *out);

/* "pass", "fail", ... as in Authentication-Results (RFC 7489 11.2). */
const char *dmarc_result_name(enum dmarc_result r);
/* "none", "quarantine", "reject". */
const char *dmarc_disp_name(enum dmarc_disp d);

#endif
