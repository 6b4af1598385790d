/*
 * spf_dns: libspf2's DNS layer over dnsq, with RFC 7208's limits (see
 * the header for which and why).
 *
 * Counting terms from inside a resolver: every DNS term makes exactly one
 * query of its own (a: A/AAAA, mx: MX, ptr: PTR, exists: A, include and
 * redirect: the record, through get_spf). The only other queries are the
 * address lookups libspf2 makes right after an MX or PTR answer, for the
 * names in it, in order. So the names of the last MX/PTR answer are
 * "expected": a lookup of the next expected name is part of that term,
 * any other lookup is a new term.
 */
#include "spf_dns.h"

#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "config.h"
#include "dnsq.h"
#include "spf_syntax.h"

#define MAX_EXPECTED 10 /* libspf2 looks at 10 MX or PTR names at most */

struct layer_state {
    const struct dns_conf *dns;  /* the caller's, for the check's length */
    long long deadline;          /* CLOCK_MONOTONIC ms */
    bool started;                /* the checked domain's record was asked */
    unsigned terms, voids;
    enum spfdns_stop stop;
    const char *why;             /* a record refused before compiling */
    char expect[MAX_EXPECTED][DNSQ_NAME_MAX];
    size_t nexpect, next;
};

static SPF_dns_rr_t *layer_lookup(SPF_dns_server_t *l, const char *domain,
                                  ns_type type, int should_cache);
static SPF_errcode_t layer_get_spf(SPF_server_t *server, SPF_request_t *req,
                                   SPF_response_t *resp,
                                   SPF_record_t **recp);
static SPF_errcode_t layer_get_exp(SPF_server_t *server, const char *domain,
                                   char **buf, size_t *buflen);
static void layer_free(SPF_dns_server_t *l);

static bool new_term(struct layer_state *st);
static bool expected(struct layer_state *st, const char *domain);
static SPF_dns_rr_t *resolve(SPF_dns_server_t *l, const char *domain,
                             ns_type type);
static SPF_dns_rr_t *to_rr(SPF_dns_server_t *l, const char *domain,
                           ns_type type, const struct dnsq_answer *a);
static SPF_dns_rr_t *try_again(SPF_dns_server_t *l, const char *domain,
                               ns_type type);
static bool is_spf_record(const char *txt);

static long long now_ms(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* ---- the layer ---- */

SPF_dns_server_t *spfdns_new(void)
{
    SPF_dns_server_t *l = calloc(1, sizeof(*l));

    if (!l || !(l->hook = calloc(1, sizeof(struct layer_state)))) {
        free(l);
        return NULL;
    }
    l->destroy = layer_free;
    l->lookup = layer_lookup;
    l->get_spf = layer_get_spf;
    l->get_exp = layer_get_exp;
    l->name = "warden";
    return l;
}

static void layer_free(SPF_dns_server_t *l)
{
    free(l->hook);
    free(l);
}

void spfdns_begin(SPF_dns_server_t *l, const struct dns_conf *dns,
                  unsigned budget_ms)
{
    struct layer_state *st = l->hook;

    memset(st, 0, sizeof(*st));
    st->dns = dns;
    st->deadline = now_ms() + budget_ms;
}

enum spfdns_stop spfdns_stop_reason(SPF_dns_server_t *l)
{
    return ((struct layer_state *)l->hook)->stop;
}

unsigned spfdns_lookups(SPF_dns_server_t *l)
{
    return ((struct layer_state *)l->hook)->terms;
}

unsigned spfdns_voids(SPF_dns_server_t *l)
{
    return ((struct layer_state *)l->hook)->voids;
}

const char *spfdns_why(SPF_dns_server_t *l)
{
    return ((struct layer_state *)l->hook)->why;
}

/* ---- counting ---- */

/* One more DNS term; false (the check stops) past the limit. */
static bool new_term(struct layer_state *st)
{
    st->nexpect = st->next = 0;
    if (++st->terms <= SPFDNS_MAX_TERMS)
        return true;
    st->stop = SPFDNS_TOO_MANY_LOOKUPS;
    return false;
}

/* Is this lookup the next name of the last MX or PTR answer? */
static bool expected(struct layer_state *st, const char *domain)
{
    if (st->next < st->nexpect &&
        strcasecmp(st->expect[st->next], domain) == 0) {
        st->next++;
        return true;
    }
    return false;
}

static void expect_names(struct layer_state *st, const SPF_dns_rr_t *rr)
{
    st->nexpect = st->next = 0;
    for (int i = 0; i < rr->num_rr && st->nexpect < MAX_EXPECTED; i++)
        snprintf(st->expect[st->nexpect++], DNSQ_NAME_MAX, "%s",
                 rr->rr_type == ns_t_mx ? rr->rr[i]->mx : rr->rr[i]->ptr);
}

/* ---- lookups ---- */

static SPF_dns_rr_t *layer_lookup(SPF_dns_server_t *l, const char *domain,
                                  ns_type type, int should_cache)
{
    struct layer_state *st = l->hook;

    /* RFC 7208 3.1: type SPF is gone; asking for it only costs time */
    if (type == ns_t_spf)
        return SPF_dns_rr_new_init(l, domain, type, 0, NO_DATA);
    if (st->stop != SPFDNS_RUNNING)
        return try_again(l, domain, type);
    if (!((type == ns_t_a || type == ns_t_aaaa) && expected(st, domain)) &&
        !new_term(st))
        return try_again(l, domain, type);
    return resolve(l, domain, type);
}

static SPF_dns_rr_t *try_again(SPF_dns_server_t *l, const char *domain,
                               ns_type type)
{
    return SPF_dns_rr_new_init(l, domain, type, 0, TRY_AGAIN);
}

/* Ask dnsq within the deadline; count voids; remember MX/PTR names. */
static SPF_dns_rr_t *resolve(SPF_dns_server_t *l, const char *domain,
                             ns_type type)
{
    struct layer_state *st = l->hook;
    long long left = st->deadline - now_ms();
    struct dnsq_answer a;
    SPF_dns_rr_t *rr;
    bool is_void;

    if (left <= 0) {
        st->stop = SPFDNS_DEADLINE;
        return try_again(l, domain, type);
    }
    dnsq_query(st->dns, domain, type,
               left < st->dns->timeout ? (unsigned)left : st->dns->timeout,
               &a);
    is_void = a.status == DNSQ_NXDOMAIN || a.status == DNSQ_NODATA;
    if (is_void && ++st->voids > SPFDNS_MAX_VOIDS) {
        dnsq_answer_free(&a);
        st->stop = SPFDNS_TOO_MANY_VOIDS;
        return try_again(l, domain, type);
    }
    rr = to_rr(l, domain, type, &a);
    dnsq_answer_free(&a);
    if (rr && (type == ns_t_mx || type == ns_t_ptr))
        expect_names(st, rr);
    return rr;
}

/* dnsq's answer as libspf2 wants it. */
static SPF_dns_rr_t *to_rr(SPF_dns_server_t *l, const char *domain,
                           ns_type type, const struct dnsq_answer *a)
{
    static const int herrno[] = {
        [DNSQ_OK] = NETDB_SUCCESS,
        [DNSQ_NODATA] = NO_DATA,
        [DNSQ_NXDOMAIN] = HOST_NOT_FOUND,
        [DNSQ_TEMPFAIL] = TRY_AGAIN,
    };
    SPF_dns_rr_t *rr = SPF_dns_rr_new_init(l, domain, type, (int)a->ttl,
                                           herrno[a->status]);
    size_t n = a->n;
    int cnt = 0;

    if (!rr || a->status != DNSQ_OK)
        return rr;
    if (type == ns_t_ptr && n > SPFDNS_MAX_PTR)
        n = SPFDNS_MAX_PTR; /* 4.6.4/3: look at 10, no permerror */
    for (size_t i = 0; i < n; i++) {
        const struct dnsq_rr *r = &a->rr[i];
        size_t need = r->len + 1;

        if (SPF_dns_rr_buf_realloc(rr, cnt, need) != SPF_E_SUCCESS)
            break;
        /* every member of the union starts at the same address */
        memcpy(&rr->rr[cnt]->a, r->data, need);
        if (type == ns_t_txt) /* a NUL would hide the rest from checks */
            for (size_t j = 0; j < r->len; j++)
                if (rr->rr[cnt]->txt[j] == '\0')
                    rr->rr[cnt]->txt[j] = 0x7f;
        cnt++;
    }
    rr->num_rr = cnt;
    if (cnt == 0)
        rr->herrno = NO_DATA;
    return rr;
}

/* ---- the record ---- */

/* RFC 7208 4.5: "v=spf1" alone or followed by a space, any letter case. */
static bool is_spf_record(const char *txt)
{
    return strncasecmp(txt, "v=spf1", 6) == 0 &&
           (txt[6] == ' ' || txt[6] == '\0');
}

/*
 * What we refuse to hand libspf2's compiler: records only printable
 * ASCII may hold (RFC 7208 3.1, 4.6.1), and sizes no real record needs
 * but that reach the compiler's fixed 511-octet term buffers (the 2023
 * underflow lives at that edge).
 */
const char *spfdns_record_problem(const char *rec)
{
    size_t len = strlen(rec);

    if (len > SPFDNS_RECORD_MAX)
        return "SPF record too long";
    for (const char *p = rec; *p; p++)
        if ((unsigned char)*p < ' ' || (unsigned char)*p > '~')
            return "SPF record has a character that is not printable ASCII";
    for (const char *p = rec; *p;) {
        size_t n = strcspn(p, " "), macros = 0;

        for (size_t i = 0; i < n; i++)
            macros += p[i] == '%';
        if (n > SPFDNS_TERM_MAX)
            return "SPF record has an over-long term";
        if (macros > SPFDNS_TERM_MACROS)
            return "SPF record has a term with too many macros";
        p += n;
        p += strspn(p, " ");
    }
    return NULL;
}

/* End get_spf with a result for the checked domain (an include's caller
 * keeps only the error code: DNS_ERROR temperror, anything else permerror). */
static SPF_errcode_t record_result(SPF_response_t *resp, SPF_result_t result,
                                   SPF_errcode_t err, const char *fmt,
                                   const char *domain)
{
    resp->result = result;
    resp->reason = SPF_REASON_FAILURE;
    resp->err = err;
    return SPF_response_add_error(resp, err, fmt, domain);
}

/* Check rec against RFC 7208's grammar, then compile the form libspf2
 * gets right (spf_syntax.h); *problem is set when the grammar says no. */
static SPF_errcode_t compile(SPF_server_t *server, SPF_request_t *req,
                             SPF_response_t *resp, SPF_record_t **recp,
                             const char *rec, const char **problem)
{
    size_t len = SPF_SYNTAX_OUT(strlen(rec));
    char *fixed = malloc(len);
    SPF_errcode_t err;

    *problem = NULL;
    if (!fixed)
        return SPF_E_NO_MEMORY;
    if (spf_record_check(rec, req->client_ver, fixed, len, problem) != 0) {
        free(fixed);
        return SPF_E_SYNTAX;
    }
    err = SPF_record_compile(server, resp, recp, fixed);
    free(fixed);
    return err;
}

static SPF_errcode_t layer_get_spf(SPF_server_t *server, SPF_request_t *req,
                                   SPF_response_t *resp, SPF_record_t **recp)
{
    SPF_dns_server_t *l = server->resolver;
    struct layer_state *st = l->hook;
    const char *domain = req->cur_dom, *rec = NULL, *problem;
    SPF_dns_rr_t *rr;
    SPF_errcode_t err;
    int found = 0;

    *recp = NULL;
    /* the checked domain's own record is no term; include/redirect are */
    if ((st->started && !new_term(st)) || st->stop != SPFDNS_RUNNING)
        return record_result(resp, SPF_RESULT_TEMPERROR, SPF_E_DNS_ERROR,
                             "Check stopped at '%s'", domain);
    st->started = true;
    st->nexpect = st->next = 0;
    rr = resolve(l, domain, ns_t_txt);
    if (!rr || rr->herrno != NETDB_SUCCESS) {
        bool none = rr && (rr->herrno == HOST_NOT_FOUND ||
                           rr->herrno == NO_DATA);
        SPF_dns_rr_free(rr);
        return none ? record_result(resp, SPF_RESULT_NONE, SPF_E_NOT_SPF,
                                    "No SPF record for '%s'", domain)
                    : record_result(resp, SPF_RESULT_TEMPERROR,
                                    SPF_E_DNS_ERROR,
                                    "Temporary DNS failure for '%s'", domain);
    }
    for (int i = 0; i < rr->num_rr; i++)
        if (is_spf_record(rr->rr[i]->txt) && found++ == 0)
            rec = rr->rr[i]->txt;
    if (found != 1) {
        SPF_dns_rr_free(rr);
        return found == 0 ? record_result(resp, SPF_RESULT_NONE,
                                          SPF_E_NOT_SPF,
                                          "No SPF record for '%s'", domain)
                          : record_result(resp, SPF_RESULT_PERMERROR,
                                          SPF_E_MULTIPLE_RECORDS,
                                          "Multiple SPF records for '%s'",
                                          domain);
    }
    if ((problem = spfdns_record_problem(rec))) {
        SPF_dns_rr_free(rr);
        st->why = problem;
        return record_result(resp, SPF_RESULT_PERMERROR, SPF_E_SYNTAX,
                             "Refused the SPF record of '%s'", domain);
    }
    err = compile(server, req, resp, recp, rec, &problem);
    SPF_dns_rr_free(rr);
    if (problem) {
        st->why = problem;
        return record_result(resp, SPF_RESULT_PERMERROR, SPF_E_SYNTAX,
                             "Invalid SPF record for '%s'", domain);
    }
    if (err != SPF_E_SUCCESS) {
        if (*recp)
            SPF_record_free(*recp);
        *recp = NULL;
        if (err == SPF_E_NO_MEMORY) /* ours, not the sender's fault */
            return record_result(resp, SPF_RESULT_TEMPERROR, SPF_E_DNS_ERROR,
                                 "Out of memory for '%s'", domain);
        return record_result(resp, SPF_RESULT_PERMERROR, err,
                             "Invalid SPF record for '%s'", domain);
    }
    return SPF_E_SUCCESS;
}

/* No exp= lookups: Warden's replies carry the admin's text, not theirs. */
static SPF_errcode_t layer_get_exp(SPF_server_t *server, const char *domain,
                                   char **buf, size_t *buflen)
{
    if (!*buf || *buflen < 1) {
        char *p = realloc(*buf, 1);
        if (!p)
            return SPF_E_NO_MEMORY;
        *buf = p;
        *buflen = 1;
    }
    (*buf)[0] = '\0';
    return SPF_E_SUCCESS;
}
