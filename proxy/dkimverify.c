/*
 * dkimverify: see dkimverify.h.
 *
 * One libopendkim library handle for the process, set up once: a key
 * lookup callback (dnsq instead of the library's own resolver), a
 * prescreen callback (which signatures to check), and BADSIGHANDLES so a
 * signature with a syntax error is still listed and can be reported. Each
 * message gets its own handle and a lookup context through the handle's
 * user context, so threads share nothing but the library handle, which
 * libopendkim allows.
 *
 * The key lookup never answers "try again" to the library: that aborts
 * the whole message at the first signature. It answers "not found" and
 * notes the DNS failure, and the result of that signature becomes
 * temperror here.
 */
#include "dkimverify.h"

#include <arpa/nameser.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <opendkim/dkim.h>

#include "config.h"
#include "dnsq.h"
#include "fromaddr.h"
#include "msghdr.h"

enum lookup_status { LK_OK, LK_NOKEY, LK_DNSFAIL, LK_TOOLONG };

/* What one message's callbacks see (the handle's user context). */
struct vctx {
    const struct dns_conf *dns;
    struct timespec deadline;
    unsigned max_sigs;
    char from[FROMADDR_DOMAIN_MAX];
    struct {
        DKIM_SIGINFO *sig;
        enum lookup_status st;
    } looked[DKIMV_SIGS_MAX];
    size_t nlooked;
};

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;
static DKIM_LIB *lib;

static void lib_init(void);
static DKIM_CBSTAT key_lookup(DKIM *dkim, DKIM_SIGINFO *sig, u_char *buf,
                              size_t buflen);
static DKIM_CBSTAT prescreen(DKIM *dkim, DKIM_SIGINFO **sigs, int nsigs);
static void report(const struct vctx *v, DKIM_SIGINFO *sig,
                   struct dkimv_sig *out);
static enum dkimv_result classify(const struct vctx *v, DKIM_SIGINFO *sig,
                                  const char **why);
static void all_unverified(struct dkimv_outcome *out, const char *why);

static void lib_init(void)
{
    unsigned flags = DKIM_LIBFLAGS_BADSIGHANDLES;

    if (!(lib = dkim_init(NULL, NULL)))
        return;
    dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_FLAGS, &flags, sizeof(flags));
    dkim_set_key_lookup(lib, key_lookup);
    dkim_set_prescreen(lib, prescreen);
}

/* ---- callbacks (on the verifying thread) ---- */

static unsigned ms_left(const struct timespec *deadline)
{
    struct timespec now;
    long long ms;

    clock_gettime(CLOCK_MONOTONIC, &now);
    ms = (long long)(deadline->tv_sec - now.tv_sec) * 1000 +
         (deadline->tv_nsec - now.tv_nsec) / 1000000;
    return ms > 0 ? (unsigned)ms : 0;
}

static void note(struct vctx *v, DKIM_SIGINFO *sig, enum lookup_status st)
{
    if (v->nlooked < DKIMV_SIGS_MAX) {
        v->looked[v->nlooked].sig = sig;
        v->looked[v->nlooked].st = st;
        v->nlooked++;
    }
}

/* The key record at <s>._domainkey.<d> (RFC 6376 3.6.2), through dnsq. */
static DKIM_CBSTAT key_lookup(DKIM *dkim, DKIM_SIGINFO *sig, u_char *buf,
                              size_t buflen)
{
    struct vctx *v = dkim_get_user_context(dkim);
    const char *s = (const char *)dkim_sig_getselector(sig);
    const char *d = (const char *)dkim_sig_getdomain(sig);
    char name[DNSQ_NAME_MAX + 1];
    unsigned left = ms_left(&v->deadline);
    struct dnsq_answer ans;
    enum dnsq_status st;

    if (!s || !d ||
        snprintf(name, sizeof(name), "%s._domainkey.%s", s, d) >=
            (int)sizeof(name) ||
        !dnsq_name_ok(name)) {
        note(v, sig, LK_NOKEY);
        return DKIM_CBSTAT_NOTFOUND;
    }
    if (left == 0) {
        note(v, sig, LK_DNSFAIL);
        return DKIM_CBSTAT_NOTFOUND;
    }
    st = dnsq_query(v->dns, name, ns_t_txt,
                    left < v->dns->timeout ? left : v->dns->timeout, &ans);
    if (st != DNSQ_OK) {
        dnsq_answer_free(&ans);
        note(v, sig, st == DNSQ_TEMPFAIL ? LK_DNSFAIL : LK_NOKEY);
        return DKIM_CBSTAT_NOTFOUND;
    }
    /* several records: the first (RFC 6376 3.6.2.2 lets us choose) */
    if (ans.rr[0].len >= buflen) {
        dnsq_answer_free(&ans);
        note(v, sig, LK_TOOLONG);
        return DKIM_CBSTAT_NOTFOUND;
    }
    memcpy(buf, ans.rr[0].data, ans.rr[0].len);
    buf[ans.rr[0].len] = '\0';
    dnsq_answer_free(&ans);
    note(v, sig, LK_OK);
    return DKIM_CBSTAT_CONTINUE;
}

/* d= the From: domain, a parent or a child of it: DMARC may need it. */
static bool related(const char *d, const char *from)
{
    size_t nd = strlen(d), nf = strlen(from);

    if (!*from)
        return false;
    if (nd == nf)
        return strcasecmp(d, from) == 0;
    if (nd < nf)
        return from[nf - nd - 1] == '.' && strcasecmp(from + nf - nd, d) == 0;
    return d[nd - nf - 1] == '.' && strcasecmp(d + nd - nf, from) == 0;
}

/* Check at most max_sigs: the From:-related ones first, then in order. */
static DKIM_CBSTAT prescreen(DKIM *dkim, DKIM_SIGINFO **sigs, int nsigs)
{
    struct vctx *v = dkim_get_user_context(dkim);
    bool keep[256] = {false};
    unsigned kept = 0;

    if (nsigs > 256)
        nsigs = 256; /* the rest is ignored below */
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < nsigs && kept < v->max_sigs; i++) {
            const char *d = (const char *)dkim_sig_getdomain(sigs[i]);
            if (keep[i] || (pass == 0 && !(d && related(d, v->from))))
                continue;
            keep[i] = true;
            kept++;
        }
    for (int i = 0; i < nsigs; i++)
        if (!keep[i])
            dkim_sig_ignore(sigs[i]);
    return DKIM_CBSTAT_CONTINUE;
}

/* ---- verification ---- */

void dkimv_verify(const char *msg, size_t len, const struct dns_conf *dns,
                  unsigned max_sigs, unsigned budget_ms,
                  struct dkimv_outcome *out)
{
    struct vctx v;
    DKIM_SIGINFO **sigs = NULL;
    DKIM_STAT st;
    DKIM *dkim;
    int nsigs = 0;
    _Bool testkey;

    memset(out, 0, sizeof(*out));
    memset(&v, 0, sizeof(v));
    v.dns = dns;
    v.max_sigs = max_sigs ? max_sigs : DKIMV_SIGS_DEFAULT;
    if (v.max_sigs > DKIMV_SIGS_MAX)
        v.max_sigs = DKIMV_SIGS_MAX;
    clock_gettime(CLOCK_MONOTONIC, &v.deadline);
    v.deadline.tv_sec += budget_ms / 1000;
    v.deadline.tv_nsec += (long)(budget_ms % 1000) * 1000000;
    if (v.deadline.tv_nsec >= 1000000000) {
        v.deadline.tv_sec++;
        v.deadline.tv_nsec -= 1000000000;
    }
    fromaddr_of_message(msg, len, false, v.from, sizeof(v.from));
    pthread_once(&lib_once, lib_init);
    if (!lib || !(dkim = dkim_verify(lib, (const u_char *)"warden", NULL,
                                     &st))) {
        all_unverified(out, "verifier unavailable");
        return;
    }
    dkim_set_user_context(dkim, &v);
    /* the library keeps going through its own errors and lists what it
     * saw: the per-signature results below are what counts */
    st = dkim_chunk(dkim, (u_char *)msg, len);
    if (st == DKIM_STAT_OK)
        st = dkim_chunk(dkim, NULL, 0);
    if (st == DKIM_STAT_OK)
        (void)dkim_eom(dkim, &testkey);
    if (dkim_getsiglist(dkim, &sigs, &nsigs) == DKIM_STAT_OK && nsigs > 0) {
        out->found = (size_t)nsigs;
        for (int i = 0; i < nsigs && out->nsig < DKIMV_SIGS_MAX; i++)
            report(&v, sigs[i], &out->sig[out->nsig++]);
    } else if (dkimv_count(msg, len, false) > 0) {
        /* signatures the library could not even list */
        out->found = dkimv_count(msg, len, false);
        all_unverified(out, dkim_geterror(dkim) ? dkim_geterror(dkim)
                                                : "message not parsed");
    }
    dkim_free(dkim);
    out->result = dkimv_summary(out);
}

/* Every signature as one neutral result with why. */
static void all_unverified(struct dkimv_outcome *out, const char *why)
{
    out->nsig = 1;
    out->sig[0].result = DKIMV_NEUTRAL;
    snprintf(out->sig[0].why, sizeof(out->sig[0].why), "%s", why);
    out->result = DKIMV_NEUTRAL;
}

static const char *alg_name(DKIM_SIGINFO *sig)
{
    dkim_alg_t alg = DKIM_SIGN_UNKNOWN;

    dkim_sig_getsignalg(sig, &alg);
    switch (alg) {
    case DKIM_SIGN_RSASHA256:
        return "rsa-sha256";
    case DKIM_SIGN_ED25519SHA256:
        return "ed25519-sha256";
    case DKIM_SIGN_RSASHA1:
        return "rsa-sha1";
    default:
        return "";
    }
}

static void report(const struct vctx *v, DKIM_SIGINFO *sig,
                   struct dkimv_sig *out)
{
    const char *d = (const char *)dkim_sig_getdomain(sig);
    const char *s = (const char *)dkim_sig_getselector(sig);
    const char *b = (const char *)dkim_sig_gettagvalue(sig, 0,
                                                       (u_char *)"b");
    const char *why = "";
    size_t o = 0;

    snprintf(out->domain, sizeof(out->domain), "%s", d ? d : "");
    snprintf(out->selector, sizeof(out->selector), "%s", s ? s : "");
    snprintf(out->alg, sizeof(out->alg), "%s", alg_name(sig));
    for (; b && *b && o < 8; b++) /* b= may be folded */
        if (*b != ' ' && *b != '\t' && *b != '\r' && *b != '\n')
            out->b[o++] = *b;
    out->b[o] = '\0';
    if (dkim_sig_getflags(sig) & DKIM_SIGFLAG_KEYLOADED)
        dkim_sig_getkeysize(sig, &out->bits);
    out->result = classify(v, sig, &why);
    snprintf(out->why, sizeof(out->why), "%s", why);
}

/* What our key lookup saw for sig (LK_OK when it was not asked). */
static enum lookup_status lookup_of(const struct vctx *v, DKIM_SIGINFO *sig)
{
    for (size_t i = 0; i < v->nlooked; i++)
        if (v->looked[i].sig == sig)
            return v->looked[i].st;
    return LK_OK;
}

static enum dkimv_result classify(const struct vctx *v, DKIM_SIGINFO *sig,
                                  const char **why)
{
    unsigned flags = dkim_sig_getflags(sig);
    int err = dkim_sig_geterror(sig);
    enum lookup_status lk = lookup_of(v, sig);

    if (flags & DKIM_SIGFLAG_IGNORE) {
        *why = "not checked: too many signatures";
        return DKIMV_NEUTRAL;
    }
    if (lk == LK_DNSFAIL) {
        *why = "key lookup failed";
        return DKIMV_TEMPERROR;
    }
    if (lk == LK_TOOLONG) {
        *why = "key record too long";
        return DKIMV_PERMERROR;
    }
    if (DKIM_SIG_CHECK(sig)) {
        if (strcmp(alg_name(sig), "rsa-sha1") == 0) {
            *why = "rsa-sha1 is not accepted (RFC 8301)";
            return DKIMV_POLICY;
        }
        return DKIMV_PASS;
    }
    if (!(flags & DKIM_SIGFLAG_PROCESSED)) {
        *why = "not processed";
        return DKIMV_NEUTRAL;
    }
    switch (err) {
    case DKIM_SIGERROR_BADSIG:
    case DKIM_SIGERROR_OK:
    case DKIM_SIGERROR_UNKNOWN:
        *why = (flags & DKIM_SIGFLAG_PASSED) ? "body hash mismatch"
                                              : "signature verification failed";
        return DKIMV_FAIL;
    case DKIM_SIGERROR_NOKEY:
    case DKIM_SIGERROR_KEYFAIL: /* a lookup we did not note: be safe */
        *why = err == DKIM_SIGERROR_NOKEY ? "no key for signature"
                                          : "key lookup failed";
        return err == DKIM_SIGERROR_NOKEY ? DKIMV_PERMERROR : DKIMV_TEMPERROR;
    case DKIM_SIGERROR_KEYTOOSMALL:
        *why = "key too small";
        return DKIMV_POLICY;
    case DKIM_SIGERROR_KEYREVOKED:
    case DKIM_SIGERROR_KEYDECODE:
    case DKIM_SIGERROR_KEYVERSION:
    case DKIM_SIGERROR_KEYUNKNOWNHASH:
    case DKIM_SIGERROR_KEYHASHMISMATCH:
    case DKIM_SIGERROR_NOTEMAILKEY:
    case DKIM_SIGERROR_KEYTYPEMISSING:
    case DKIM_SIGERROR_KEYTYPEUNKNOWN:
    case DKIM_SIGERROR_DNSSYNTAX:
    case DKIM_SIGERROR_MULTIREPLY:
        *why = dkim_sig_geterrorstr(err);
        return DKIMV_PERMERROR;
    default:
        *why = dkim_sig_geterrorstr(err) ? dkim_sig_geterrorstr(err)
                                         : "signature not usable";
        return DKIMV_NEUTRAL;
    }
}

/* ---- results ---- */

enum dkimv_result dkimv_summary(const struct dkimv_outcome *o)
{
    static const enum dkimv_result weight[] = {
        DKIMV_PASS,   DKIMV_TEMPERROR, DKIMV_FAIL,
        DKIMV_POLICY, DKIMV_PERMERROR, DKIMV_NEUTRAL,
    };

    for (size_t w = 0; w < sizeof(weight) / sizeof(weight[0]); w++)
        for (size_t i = 0; i < o->nsig; i++)
            if (o->sig[i].result == weight[w])
                return weight[w];
    return o->found || o->too_large ? DKIMV_NEUTRAL : DKIMV_NONE;
}

static int count_sig(void *arg, const struct msghdr_field *f)
{
    size_t *n = arg;

    if (f->name_len == 14 && strncasecmp(f->name, "DKIM-Signature", 14) == 0)
        (*n)++;
    return 0;
}

size_t dkimv_count(const char *msg, size_t len, bool dot_stuffed)
{
    size_t n = 0;

    msghdr_scan(msg, len, dot_stuffed, count_sig, &n);
    return n;
}

static const char *const names[DKIMV__COUNT] = {
    "none", "pass", "fail", "policy", "neutral", "temperror", "permerror",
};

const char *dkimv_result_name(enum dkimv_result r)
{
    return (unsigned)r < DKIMV__COUNT ? names[r] : "permerror";
}

int dkimv_result_parse(const char *s)
{
    for (int i = 0; i < DKIMV__COUNT; i++)
        if (strcmp(names[i], s) == 0)
            return i;
    return -1;
}
