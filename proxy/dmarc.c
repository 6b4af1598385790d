/*
 * dmarc: see dmarc.h.
 */
#include "dmarc.h"

#include <arpa/nameser.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "dnsq.h"
#include "orgdomain.h"

static const char *trim(const char *s, size_t *n);
static bool tag_is(const char *s, size_t n, const char *want);
static int parse_disp(const char *v, size_t n, enum dmarc_disp *out);
static int lookup_one(const struct dns_conf *dns, unsigned timeout_ms,
                      const char *domain, struct dmarc_lookup *out);

/* ---- the record (RFC 7489 6.3, 6.4) ---- */

/* Leading and trailing WSP off s[0..*n). */
static const char *trim(const char *s, size_t *n)
{
    while (*n > 0 && (*s == ' ' || *s == '\t'))
        s++, (*n)--;
    while (*n > 0 && (s[*n - 1] == ' ' || s[*n - 1] == '\t'))
        (*n)--;
    return s;
}

/* Tag names and keyword values are ABNF literals: any case. */
static bool tag_is(const char *s, size_t n, const char *want)
{
    return n == strlen(want) && strncasecmp(s, want, n) == 0;
}

static int parse_disp(const char *v, size_t n, enum dmarc_disp *out)
{
    if (tag_is(v, n, "none"))
        *out = DMARC_DISP_NONE;
    else if (tag_is(v, n, "quarantine"))
        *out = DMARC_DISP_QUARANTINE;
    else if (tag_is(v, n, "reject"))
        *out = DMARC_DISP_REJECT;
    else
        return -1;
    return 0;
}

int dmarc_record_parse(const char *txt, struct dmarc_record *r)
{
    bool first = true, have_p = false, bad_sp = false, rua = false,
         have_sp = false;
    const char *p = txt;

    memset(r, 0, sizeof(*r));
    r->pct = 100;
    while (*p) {
        size_t len = strcspn(p, ";"), nn, vn;
        const char *tag = trim(p, &len), *eq = memchr(tag, '=', len), *val;
        p += strcspn(p, ";");
        p += *p == ';';
        if (len == 0)
            continue;
        if (!eq) {
            if (first)
                return 1;
            continue; /* a broken tag is ignored (6.3) */
        }
        nn = (size_t)(eq - tag);
        vn = len - nn - 1;
        tag = trim(tag, &nn);
        val = trim(eq + 1, &vn);
        if (first) {
            /* "v=DMARC1" first, exactly: the version is case-sensitive */
            if (!tag_is(tag, nn, "v") || vn != 6 || memcmp(val, "DMARC1", 6))
                return 1;
            first = false;
        } else if (tag_is(tag, nn, "p")) {
            have_p = parse_disp(val, vn, &r->p) == 0;
        } else if (tag_is(tag, nn, "sp")) {
            have_sp = parse_disp(val, vn, &r->sp) == 0;
            bad_sp = !have_sp;
        } else if (tag_is(tag, nn, "adkim") && vn == 1) {
            r->strict_dkim = val[0] == 's' || val[0] == 'S';
        } else if (tag_is(tag, nn, "aspf") && vn == 1) {
            r->strict_spf = val[0] == 's' || val[0] == 'S';
        } else if (tag_is(tag, nn, "pct")) {
            unsigned v = 0;
            size_t i = 0;
            while (i < vn && i < 4 && val[i] >= '0' && val[i] <= '9')
                v = v * 10 + (unsigned)(val[i++] - '0');
            if (i == vn && vn > 0 && v <= 100)
                r->pct = v; /* otherwise the default stays */
        } else if (tag_is(tag, nn, "rua")) {
            rua = vn > 0;
        }
    }
    if (first)
        return 1;
    /* 6.6.3: without a valid p (or with a bad sp), a record with rua is
     * read as p=none; without rua it is not usable */
    if (!have_p || bad_sp) {
        if (!rua)
            return -1;
        r->p = DMARC_DISP_NONE;
        have_sp = false;
    }
    if (!have_sp)
        r->sp = r->p;
    return 0;
}

/* ---- alignment (RFC 7489 3.1) ---- */

bool dmarc_aligned(const struct orgdomain *psl, const char *from_domain,
                   const char *auth_domain, bool strict)
{
    char a[256], b[256];

    if (!from_domain || !auth_domain || !*from_domain || !*auth_domain)
        return false;
    if (strcasecmp(from_domain, auth_domain) == 0)
        return true;
    if (strict || !psl)
        return false;
    if (orgdomain_get(psl, from_domain, a, sizeof(a)) != 0 ||
        orgdomain_get(psl, auth_domain, b, sizeof(b)) != 0)
        return false;
    return strcasecmp(a, b) == 0;
}

/* ---- discovery (RFC 7489 6.6.3) ---- */

/* 0 one record, 1 none, -1 DNS failure, -2 several. */
static int lookup_one(const struct dns_conf *dns, unsigned timeout_ms,
                      const char *domain, struct dmarc_lookup *out)
{
    char name[DNSQ_NAME_MAX + 8];
    struct dnsq_answer ans;
    struct dmarc_record r;
    int found = 0;

    if (snprintf(name, sizeof(name), "_dmarc.%s", domain) >= DNSQ_NAME_MAX ||
        !dnsq_name_ok(name))
        return 1; /* no such name can exist */
    switch (dnsq_query(dns, name, ns_t_txt, timeout_ms, &ans)) {
    case DNSQ_TEMPFAIL:
        dnsq_answer_free(&ans);
        return -1;
    case DNSQ_OK:
        break;
    default:
        dnsq_answer_free(&ans);
        return 1;
    }
    for (size_t i = 0; i < ans.n; i++) {
        /* records that do not start with v=DMARC1 are not ours */
        if (dmarc_record_parse(ans.rr[i].data, &r) == 1)
            continue;
        if (++found == 1)
            snprintf(out->record, sizeof(out->record), "%s", ans.rr[i].data);
    }
    dnsq_answer_free(&ans);
    return found == 0 ? 1 : found == 1 ? 0 : -2;
}

void dmarc_discover(const struct dns_conf *dns, unsigned timeout_ms,
                    const char *from_domain, const char *org_domain,
                    struct dmarc_lookup *out)
{
    memset(out, 0, sizeof(*out));
    out->status = lookup_one(dns, timeout_ms, from_domain, out);
    if (out->status != 1 || strcasecmp(from_domain, org_domain) == 0)
        return;
    out->status = lookup_one(dns, timeout_ms, org_domain, out);
    out->at_org = out->status == 0;
}

/* ---- the result (RFC 7489 6.6.2, 6.6.4) ---- */

static const char *find_aligned(const struct orgdomain *psl,
                                const struct dmarc_record *r,
                                const struct dmarc_input *in)
{
    for (size_t i = 0; i < in->ndkim; i++)
        if (dmarc_aligned(psl, in->from_domain, in->dkim_domains[i],
                          r->strict_dkim))
            return "dkim";
    if (dmarc_aligned(psl, in->from_domain, in->spf_domain, r->strict_spf))
        return "spf";
    return NULL;
}

static enum dmarc_disp milder(enum dmarc_disp d)
{
    return d == DMARC_DISP_REJECT ? DMARC_DISP_QUARANTINE : DMARC_DISP_NONE;
}

void dmarc_evaluate(const struct orgdomain *psl, const struct dmarc_lookup *lk,
                    const struct dmarc_input *in, unsigned roll,
                    struct dmarc_outcome *out)
{
    struct dmarc_record r;

    memset(out, 0, sizeof(*out));
    snprintf(out->from_domain, sizeof(out->from_domain), "%s",
             in->from_domain ? in->from_domain : "");
    if (lk->status == -1) {
        out->result = DMARCR_TEMPERROR;
        snprintf(out->why, sizeof(out->why), "DNS lookup failed");
        return;
    }
    if (lk->status == -2) {
        out->result = DMARCR_PERMERROR;
        snprintf(out->why, sizeof(out->why), "several DMARC records");
        return;
    }
    if (lk->status != 0) {
        out->result = DMARCR_NONE;
        return;
    }
    if (dmarc_record_parse(lk->record, &r) != 0) {
        out->result = DMARCR_PERMERROR;
        snprintf(out->why, sizeof(out->why), "DMARC record without a valid p=");
        return;
    }
    out->have_policy = true;
    out->policy = lk->at_org ? r.sp : r.p;
    out->disposition = DMARC_DISP_NONE;
    if ((out->aligned = find_aligned(psl, &r, in))) {
        out->result = DMARCR_PASS;
        return;
    }
    if (in->dkim_unverified) {
        /* a DKIM signature might have aligned: do not call it a fail */
        out->result = DMARCR_NONE;
        snprintf(out->why, sizeof(out->why),
                 "DKIM not verified: message too large");
        return;
    }
    out->result = DMARCR_FAIL;
    out->disposition = roll < r.pct ? out->policy : milder(out->policy);
}

const char *dmarc_result_name(enum dmarc_result r)
{
    static const char *const names[DMARCR__COUNT] = {
        "none", "pass", "fail", "temperror", "permerror",
    };

    return (unsigned)r < DMARCR__COUNT ? names[r] : "permerror";
}

const char *dmarc_disp_name(enum dmarc_disp d)
{
    return d == DMARC_DISP_REJECT       ? "reject"
           : d == DMARC_DISP_QUARANTINE ? "quarantine"
                                        : "none";
}
