/*
 * dkimverify: DKIM signature verification (RFC 6376) with libopendkim:
 * rsa-sha256 and ed25519-sha256 (RFC 8463; Debian 12's libopendkim 2.11
 * has it), every signature's result reported as RFC 8601 names it.
 *
 * dkimv_verify() blocks while it fetches keys: call it on a worker thread
 * (workpool.h), never on a loop; check_dkim.c does that. Keys come from
 * dnsq (the configured `dns:` servers, their timeout and cache), through
 * libopendkim's key lookup callback, so tests can serve them from a DNS
 * server on loopback. A key that DNS cannot deliver in time makes that
 * signature temperror: never a pass.
 *
 * The work is bounded: at most max_sigs signatures are checked (those
 * whose d= is related to the From: domain first, since DMARC needs them;
 * the rest are reported as neutral, not checked), every key lookup has a
 * timeout and the whole call a budget; the caller bounds the bytes.
 *
 * Result mapping (RFC 6376 6.1, RFC 8601 2.7.1, RFC 8301):
 *   pass       signature and body hash verified
 *   fail       signature or body hash does not match (tampered)
 *   policy     verified, but not acceptable: rsa-sha1, a key too small
 *   neutral    a signature that cannot be processed (syntax, expired,
 *              unknown algorithm, l= beyond the body) or was not checked
 *   temperror  the key could not be fetched (timeout, SERVFAIL)
 *   permerror  no key at the name, or a revoked or unusable key
 */
#ifndef WARDEN_DKIMVERIFY_H
#define WARDEN_DKIMVERIFY_H

#include <stdbool.h>
#include <stddef.h>

struct dns_conf;

enum dkimv_result {
    DKIMV_NONE,        /* the message is not signed */
    DKIMV_PASS,
    DKIMV_FAIL,
    DKIMV_POLICY,
    DKIMV_NEUTRAL,
    DKIMV_TEMPERROR,
    DKIMV_PERMERROR,
    DKIMV__COUNT
};

/* Signatures reported per message (policy max_signatures is at most this). */
#define DKIMV_SIGS_MAX 16
/* Default for the dkim section's max_signatures. */
#define DKIMV_SIGS_DEFAULT 5

struct dkimv_sig {
    enum dkimv_result result;
    char domain[254];      /* d= */
    char selector[64];     /* s= */
    char alg[16];          /* a=: "rsa-sha256", "ed25519-sha256", ... */
    char b[9];             /* the first 8 characters of b= (RFC 6008) */
    unsigned bits;         /* key size, when the key was loaded */
    char why[64];          /* a few words when not a pass */
};

struct dkimv_outcome {
    enum dkimv_result result;          /* the message's: see dkimv_summary */
    struct dkimv_sig sig[DKIMV_SIGS_MAX];
    size_t nsig;                       /* reported */
    size_t found;                      /* signatures in the message */
    bool too_large;                    /* not verified: over the size bound */
};

/*
 * Verify msg (the whole message, CRLF lines, not dot-stuffed). Blocking;
 * thread-safe. Each key lookup waits at most dns->timeout, all of them
 * together at most budget_ms.
 */
void dkimv_verify(const char *msg, size_t len, const struct dns_conf *dns,
                  unsigned max_sigs, unsigned budget_ms,
                  struct dkimv_outcome *out);

/*
 * The message's result from its signatures: pass if any passed; else
 * temperror, fail, policy, permerror, neutral, in that order of weight
 * (a temporary error first: a retry may give a pass); none unsigned.
 */
enum dkimv_result dkimv_summary(const struct dkimv_outcome *o);

/* DKIM-Signature fields in the header of msg (no verification). */
size_t dkimv_count(const char *msg, size_t len, bool dot_stuffed);

/* "pass", "fail", ... as in Authentication-Results. */
const char *dkimv_result_name(enum dkimv_result r);
/* The result named s, or -1. */
int dkimv_result_parse(const char *s);

#endif
