/*
 * spf: one SPF check with libspf2 (see spf.h), on the calling thread.
 *
 * Each pool thread keeps its own SPF_server_t with Warden's DNS layer
 * (spf_dns.c): libspf2 servers are cheap to keep and not meant to be
 * shared between threads, and building one compiles the default
 * explanation, which is not worth doing per message.
 *
 * The check is libspf2's SPF_request_query_mailfrom() minus one thing:
 * that function passes every loopback client without looking ("localhost
 * gets a free ride"). Warden may sit behind a local relay or be tested
 * from 127.0.0.1; loopback clients get the same check as anyone, and an
 * admin exempts networks in the policy when that is wanted.
 */
#include "spf.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "dnsq.h"
#include "log.h"
#include "spf_dns.h"

struct spf_thread {
    SPF_server_t *server;  /* owns the layer */
    SPF_dns_server_t *layer;
};

static pthread_key_t thread_key;
static pthread_once_t setup_once = PTHREAD_ONCE_INIT;

static const char *const names[SPFR__COUNT] = {
    [SPFR_NONE] = "none",           [SPFR_NEUTRAL] = "neutral",
    [SPFR_PASS] = "pass",           [SPFR_FAIL] = "fail",
    [SPFR_SOFTFAIL] = "softfail",   [SPFR_TEMPERROR] = "temperror",
    [SPFR_PERMERROR] = "permerror",
};

const char *spf_result_name(enum spf_result r)
{
    return r < SPFR__COUNT ? names[r] : "?";
}

int spf_result_parse(const char *s)
{
    for (int i = 0; i < SPFR__COUNT; i++)
        if (strcmp(names[i], s) == 0)
            return i;
    return -1;
}

bool spf_domain_ok(const char *d)
{
    return dnsq_name_ok(d) && strchr(d, '.') && strchr(d, '.')[1] &&
           d[0] != '[';
}

/* ---- libspf2's logging: into ours; its fatal errors stay fatal ---- */

__attribute__((noreturn)) static void lib_error(const char *file, int line,
                                                const char *msg)
{
    log_err("spf: libspf2 fatal error at %s:%d: %s", file ? file : "?", line,
            msg);
    abort();
}

static void lib_note(const char *file, int line, const char *msg)
{
    log_debug("spf: libspf2: %s", msg);
}

static void thread_gone(void *arg)
{
    struct spf_thread *t = arg;

    SPF_server_free(t->server);
    free(t);
}

static void setup(void)
{
    pthread_key_create(&thread_key, thread_gone);
    SPF_error_handler = lib_error;
    SPF_warning_handler = lib_note;
    SPF_info_handler = lib_note;
    SPF_debug_handler = lib_note;
}

static struct spf_thread *this_thread(void)
{
    struct spf_thread *t;

    pthread_once(&setup_once, setup);
    if ((t = pthread_getspecific(thread_key)))
        return t;
    if (!(t = calloc(1, sizeof(*t))) || !(t->layer = spfdns_new()) ||
        !(t->server = SPF_server_new_dns(t->layer, 0))) {
        if (t && t->layer)
            t->layer->destroy(t->layer);
        free(t);
        return NULL;
    }
    pthread_setspecific(thread_key, t);
    return t;
}

/* ---- one check ---- */

/* A domain too long for the buffer is no domain (RFC 7208 4.3: none). */
static void set_domain(struct spf_outcome *out, const char *d)
{
    if (strlen(d) < sizeof(out->domain))
        memcpy(out->domain, d, strlen(d) + 1);
    else
        out->domain[0] = '\0';
}

static void set_identity(const struct spf_query *q, struct spf_outcome *out)
{
    const char *at = strrchr(q->sender, '@');

    if (q->sender[0]) {
        out->identity = SPFID_MAILFROM;
        set_domain(out, at ? at + 1 : q->sender);
        /* RFC 7208 4.3: no local part means "postmaster" */
        if (at && at != q->sender)
            snprintf(out->mailfrom, sizeof(out->mailfrom), "%s", q->sender);
        else
            snprintf(out->mailfrom, sizeof(out->mailfrom), "postmaster@%s",
                     out->domain);
    } else {
        out->identity = SPFID_HELO;
        set_domain(out, q->helo);
        snprintf(out->mailfrom, sizeof(out->mailfrom), "postmaster@%s",
                 q->helo);
    }
}

/* RFC 7208 5: an IPv4-mapped IPv6 client is checked as the IPv4 one. */
static int set_client(SPF_request_t *req, const char *ip)
{
    struct in6_addr a6;
    struct in_addr a4;

    if (inet_pton(AF_INET6, ip, &a6) == 1) {
        if (!IN6_IS_ADDR_V4MAPPED(&a6))
            return SPF_request_set_ipv6(req, a6);
        memcpy(&a4, &a6.s6_addr[12], 4);
        return SPF_request_set_ipv4(req, a4);
    }
    return SPF_request_set_ipv4_str(req, ip);
}

/* libspf2's answer, with the layer's stops (limits, deadline) on top. */
static enum spf_result result_of(SPF_dns_server_t *layer, SPF_response_t *resp)
{
    switch (spfdns_stop_reason(layer)) {
    case SPFDNS_TOO_MANY_LOOKUPS:
    case SPFDNS_TOO_MANY_VOIDS:
        return SPFR_PERMERROR;
    case SPFDNS_DEADLINE:
        return SPFR_TEMPERROR;
    case SPFDNS_RUNNING:
        break;
    }
    switch (resp->result) {
    case SPF_RESULT_NEUTRAL:
        return SPFR_NEUTRAL;
    case SPF_RESULT_PASS:
        return SPFR_PASS;
    case SPF_RESULT_FAIL:
        return SPFR_FAIL;
    case SPF_RESULT_SOFTFAIL:
        return SPFR_SOFTFAIL;
    case SPF_RESULT_NONE:
        return SPFR_NONE;
    case SPF_RESULT_PERMERROR:
        return SPFR_PERMERROR;
    case SPF_RESULT_TEMPERROR:
    default: /* INVALID: an internal failure is no reason to refuse mail */
        return SPFR_TEMPERROR;
    }
}

static void explain(SPF_dns_server_t *layer, SPF_response_t *resp,
                    struct spf_outcome *out)
{
    const char *why = NULL;

    switch (spfdns_stop_reason(layer)) {
    case SPFDNS_TOO_MANY_LOOKUPS:
        why = "more than 10 DNS lookups";
        break;
    case SPFDNS_TOO_MANY_VOIDS:
        why = "more than 2 void lookups";
        break;
    case SPFDNS_DEADLINE:
        why = "SPF check took too long";
        break;
    default:
        if (spfdns_why(layer))
            why = spfdns_why(layer);
        else if (out->result == SPFR_TEMPERROR)
            why = "DNS timeout or server failure";
        else if (out->result == SPFR_PERMERROR)
            why = SPF_strerror(SPF_response_errcode(resp));
        break;
    }
    if (why)
        snprintf(out->why, sizeof(out->why), "%s", why);
}

/* SPF_request_query_mailfrom() without the loopback free ride. */
static void run_check(struct spf_thread *t, SPF_request_t *req,
                      struct spf_outcome *out)
{
    SPF_response_t *resp = SPF_response_new(req);
    SPF_record_t *rec = NULL;
    SPF_errcode_t err;

    if (!resp) {
        out->result = SPFR_TEMPERROR;
        snprintf(out->why, sizeof(out->why), "out of memory");
        return;
    }
    req->use_helo = 0;
    req->cur_dom = req->env_from_dp;
    err = SPF_server_get_record(t->server, req, resp, &rec);
    if (err == SPF_E_SUCCESS && rec) {
        resp->spf_record_exp = rec;
        SPF_record_interpret(rec, req, resp, 0);
    }
    if (rec)
        SPF_record_free(rec);
    out->result = result_of(t->layer, resp);
    out->lookups = spfdns_lookups(t->layer);
    out->voids = spfdns_voids(t->layer);
    explain(t->layer, resp, out);
    SPF_response_free(resp);
}

void spf_evaluate(const struct spf_query *q, const struct dns_conf *dns,
                  unsigned budget_ms, struct spf_outcome *out)
{
    struct spf_thread *t;
    SPF_request_t *req;

    memset(out, 0, sizeof(*out));
    set_identity(q, out);
    out->result = SPFR_NONE;
    if (!spf_domain_ok(out->domain)) {
        snprintf(out->why, sizeof(out->why), "no domain to check");
        return;
    }
    if (!(t = this_thread()) || !(req = SPF_request_new(t->server))) {
        out->result = SPFR_TEMPERROR;
        snprintf(out->why, sizeof(out->why), "cannot start libspf2");
        return;
    }
    spfdns_begin(t->layer, dns, budget_ms);
    if (set_client(req, q->ip) != SPF_E_SUCCESS) {
        /* no IP to check (a milter's "unknown" client): nothing to say,
         * and a temperror would defer such mail for ever */
        snprintf(out->why, sizeof(out->why), "no client address");
    } else if (SPF_request_set_helo_dom(req, q->helo[0] ? q->helo
                                                        : "unknown") !=
                   SPF_E_SUCCESS ||
               SPF_request_set_env_from(req, out->mailfrom) != 0) {
        out->result = SPFR_TEMPERROR;
        snprintf(out->why, sizeof(out->why), "out of memory");
    } else {
        run_check(t, req, out);
    }
    SPF_request_free(req);
}
