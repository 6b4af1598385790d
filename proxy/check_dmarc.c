/*
 * check_dmarc: DMARC (RFC 7489) at end of data, from the policy files.
 *
 *   EOM  read the From: domain from the header (exactly one field with
 *        one address, else permerror), find its organizational domain,
 *        look up the policy on a pool thread (_dmarc.<from>, then
 *        _dmarc.<org>), then on the loop align it with the SPF and DKIM
 *        results of the message and do what the dmarc section says.
 *
 * As in the other DNS checks, the loop never waits: a guard timer ends
 * the wait with temperror even if a worker were stuck, and a full pool
 * queue is a temperror at once.
 */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "authres.h"
#include "check.h"
#include "check_work.h"
#include "check_dkim.h"
#include "check_dmarc.h"
#include "check_spf.h"
#include "config.h"
#include "dmarc_rules.h"
#include "log.h"
#include "metrics.h"
#include "msgbuf.h"
#include "orgdomain.h"
#include "policy.h"
#include "workpool.h"

/* The loop's own bound, beyond two lookups. */
#define GUARD_SLACK_MS 1000
/* Header bytes read for From: (Postfix's header_size_limit is 100 KB). */
#define HEADER_MAX (256 * 1024)

struct dmarc_state;

struct dmarc_job {
    struct dns_conf dns;        /* a copy: the config may go before the job */
    char from[FROMADDR_DOMAIN_MAX];
    char org[FROMADDR_DOMAIN_MAX];
    struct dmarc_lookup lk;
    struct dmarc_state *st;     /* read on the loop only, in job_done */
};

struct dmarc_state {
    struct check_work cw;       /* first: the pool job and its guard */
    struct timespec started;
    char from[FROMADDR_DOMAIN_MAX];   /* of the message being checked */
    struct dmarc_outcome outcome;
    bool have;
};

static enum engine_status dmarc_run(struct engine_session *es,
                                    enum checkpoint cp,
                                    const struct engine_ctx *ctx,
                                    struct verdict *v);
static void job_run(void *arg);
static void job_done(void *arg);
static void on_guard(evutil_socket_t fd, short what, void *arg);
static void evaluate(struct dmarc_state *st, const struct dmarc_lookup *lk,
                     const char *from);
static void fail_early(struct dmarc_state *st, enum dmarc_result r,
                       const char *from, const char *why, struct verdict *v);
static void finish(struct dmarc_state *st, struct verdict *v);
static const struct auth_rule *rule_for(const struct dmarc_policy *pol,
                                        const struct dmarc_outcome *o);
static void log_outcome(const struct dmarc_state *st);

/* ---- state ---- */

static struct dmarc_state *state_of(struct engine_session *es,
                                    const struct engine_ctx *ctx)
{
    return check_work_state(es, &check_dmarc, ctx, sizeof(struct dmarc_state),
                            on_guard);
}

const struct dmarc_outcome *check_dmarc_outcome(struct engine_session *es)
{
    struct dmarc_state *st = *engine_session_state(es, &check_dmarc);

    return st && st->have ? &st->outcome : NULL;
}

/* ---- the check ---- */

static enum engine_status dmarc_run(struct engine_session *es,
                                    enum checkpoint cp,
                                    const struct engine_ctx *ctx,
                                    struct verdict *v)
{
    const struct config *cfg = engine_session_config(es);
    const struct dmarc_policy *pol = cfg->policy ? cfg->policy->dmarc : NULL;
    char from[FROMADDR_DOMAIN_MAX];
    enum fromaddr_status fs;
    struct dmarc_state *st;
    struct dmarc_job *job;
    struct timeval guard;
    size_t len;
    char *head;

    if (!pol || !ctx->message || !(st = state_of(es, ctx)))
        return ENGINE_DONE;
    st->have = false;
    if (!auth_scope_applies(&pol->scope, ctx->listener, &ctx->client,
                            ctx->auth_user != NULL))
        return ENGINE_DONE;
    clock_gettime(CLOCK_MONOTONIC, &st->started);
    if (!(head = msgbuf_header(ctx->message, HEADER_MAX, &len))) {
        fail_early(st, DMARCR_TEMPERROR, "", "out of memory", v);
        return ENGINE_DONE;
    }
    fs = fromaddr_of_message(head, len, ctx->message_dot_stuffed, from,
                             sizeof(from));
    free(head);
    /* RFC 7489 6.6.1: no single author domain, no DMARC evaluation */
    if (fs != FROMADDR_OK) {
        fail_early(st, DMARCR_PERMERROR, "", fromaddr_status_text(fs), v);
        return ENGINE_DONE;
    }
    if (!(job = calloc(1, sizeof(*job)))) {
        fail_early(st, DMARCR_TEMPERROR, from, "out of memory", v);
        return ENGINE_DONE;
    }
    job->dns = cfg->dns;
    snprintf(st->from, sizeof(st->from), "%s", from);
    snprintf(job->from, sizeof(job->from), "%s", from);
    if (orgdomain_get(pol->psl, from, job->org, sizeof(job->org)) != 0)
        snprintf(job->org, sizeof(job->org), "%s", from);
    job->st = st;
    st->cw.work = workpool_submit(workpool_shared(), engine_session_base(es),
                               job_run, job_done, free, job);
    if (!st->cw.work) {
        free(job);
        fail_early(st, DMARCR_TEMPERROR, from, "no DMARC worker free", v);
        return ENGINE_DONE;
    }
    st->cw.v = v;
    guard.tv_sec = (2 * cfg->dns.timeout + GUARD_SLACK_MS) / 1000;
    guard.tv_usec = 0;
    evtimer_add(st->cw.guard, &guard);
    return ENGINE_PENDING;
}

/* On a pool thread. */
static void job_run(void *arg)
{
    struct dmarc_job *job = arg;

    dmarc_discover(&job->dns, job->dns.timeout, job->from, job->org,
                   &job->lk);
}

/* Back on the session's loop. */
static void job_done(void *arg)
{
    struct dmarc_job *job = arg;
    struct dmarc_state *st = job->st;

    st->cw.work = NULL;
    evtimer_del(st->cw.guard);
    evaluate(st, &job->lk, job->from);
    free(job);
    finish(st, st->cw.v);
    engine_check_done(st->cw.es);
}

static void on_guard(evutil_socket_t fd, short what, void *arg)
{
    struct dmarc_state *st = arg;

    work_cancel(st->cw.work);
    st->cw.work = NULL;
    fail_early(st, DMARCR_TEMPERROR, st->from, "DMARC check took too long",
               st->cw.v);
    engine_check_done(st->cw.es);
}

/* ---- the result ---- */

/* Align the policy found with the message's SPF and DKIM results. */
static void evaluate(struct dmarc_state *st, const struct dmarc_lookup *lk,
                     const char *from)
{
    const struct config *cfg = engine_session_config(st->cw.es);
    const struct spf_outcome *spf = check_spf_outcome(st->cw.es);
    const struct dkimv_outcome *dkim = check_dkim_outcome(st->cw.es);
    const char *passed[DKIMV_SIGS_MAX];
    struct dmarc_input in = {.from_domain = from, .dkim_domains = passed};

    if (spf && spf->result == SPFR_PASS)
        in.spf_domain = spf->domain;
    for (size_t i = 0; dkim && i < dkim->nsig; i++)
        if (dkim->sig[i].result == DKIMV_PASS)
            passed[in.ndkim++] = dkim->sig[i].domain;
    in.dkim_unverified = dkim && dkim->too_large;
    dmarc_evaluate(cfg->policy->dmarc->psl, lk, &in,
                   arc4random_uniform(100), &st->outcome);
}

/* A result decided before (or instead of) the lookup. */
static void fail_early(struct dmarc_state *st, enum dmarc_result r,
                       const char *from, const char *why, struct verdict *v)
{
    memset(&st->outcome, 0, sizeof(st->outcome));
    st->outcome.result = r;
    snprintf(st->outcome.from_domain, sizeof(st->outcome.from_domain), "%s",
             from);
    snprintf(st->outcome.why, sizeof(st->outcome.why), "%s", why);
    finish(st, v);
}

static void finish(struct dmarc_state *st, struct verdict *v)
{
    const struct config *cfg = engine_session_config(st->cw.es);
    const struct auth_rule *r = rule_for(cfg->policy->dmarc, &st->outcome);

    st->have = true;
    log_outcome(st);
    metric_dmarc_result(dmarc_result_name(st->outcome.result));
    if (r)
        auth_rule_apply(r, v, "dmarc",
                        dmarc_result_name(st->outcome.result));
}

/* The rule for this outcome (see dmarc_rules.h), NULL: accept. */
static const struct auth_rule *rule_for(const struct dmarc_policy *pol,
                                        const struct dmarc_outcome *o)
{
    switch (o->result) {
    case DMARCR_FAIL:
        if (pol->honor_policy && o->disposition == DMARC_DISP_REJECT)
            return &pol->policy_reject;
        if (pol->honor_policy && o->disposition == DMARC_DISP_QUARANTINE)
            return &pol->policy_quarantine;
        return &pol->fail;
    case DMARCR_TEMPERROR:
        return &pol->temperror;
    case DMARCR_PERMERROR:
        return &pol->permerror;
    default:
        return NULL;
    }
}

static void log_outcome(const struct dmarc_state *st)
{
    const struct dmarc_outcome *o = &st->outcome;
    char from[128], why[128];
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    log_info("session=%s dmarc=%s header.from=<%s> policy=%s "
             "disposition=%s aligned=%s time=%.3fs%s%s%s",
             st->cw.session_id, dmarc_result_name(o->result),
             log_sanitize(o->from_domain, from, sizeof(from)),
             o->have_policy ? dmarc_disp_name(o->policy) : "-",
             o->have_policy ? dmarc_disp_name(o->disposition) : "-",
             o->aligned ? o->aligned : "-",
             (double)(now.tv_sec - st->started.tv_sec) +
                 (double)(now.tv_nsec - st->started.tv_nsec) / 1e9,
             o->why[0] ? " reason=\"" : "",
             o->why[0] ? log_sanitize(o->why, why, sizeof(why)) : "",
             o->why[0] ? "\"" : "");
}

/* RFC 7489 11.2: dmarc=<result> header.from=<domain>, the policy and
 * what it came to in a comment, as the large receivers write it. */
void check_dmarc_authres(struct engine_session *es, struct authres *ar)
{
    const struct dmarc_outcome *o = check_dmarc_outcome(es);
    char comment[96];

    if (!o)
        return;
    authres_method(ar, "dmarc", dmarc_result_name(o->result));
    if (o->have_policy) {
        snprintf(comment, sizeof(comment), "p=%s dis=%s",
                 dmarc_disp_name(o->policy), dmarc_disp_name(o->disposition));
        authres_comment(ar, comment);
    } else if (o->why[0]) {
        authres_comment(ar, o->why);
    }
    if (o->from_domain[0])
        authres_prop(ar, "header.from", o->from_domain);
}

/* " dmarc=pass" on the transaction line */
static void dmarc_summary(struct engine_session *es, char *buf, size_t len)
{
    const struct dmarc_outcome *o = check_dmarc_outcome(es);

    if (o)
        engine_summary_add(buf, len, "dmarc", dmarc_result_name(o->result));
}

const struct check_ops check_dmarc = {
    .name = "dmarc",
    .summary = dmarc_summary,
    .checkpoints = CP_BIT(CP_EOM),
    .run = dmarc_run,
    .session_free = check_work_free,
};
