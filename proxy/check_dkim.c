/*
 * check_dkim: DKIM (RFC 6376, RFC 8463) at end of data, from the policy
 * files.
 *
 *   EOM  copy the message (at most dkim.max_message_size bytes; a larger
 *        one is not verified: neutral), verify every signature on a pool
 *        thread (libopendkim; keys through dnsq), then do what the dkim
 *        section says for the message's result: accept (tag), tempfail
 *        or reject, with the admin's reply.
 *
 * As in check_spf.c, the loop never waits: a guard timer ends the wait
 * with temperror even if a worker were stuck, and a full pool queue is a
 * temperror at once. The outcome stays readable for the later checks of
 * the same message (check_dkim_outcome): DMARC and the A-R builder.
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
#include "config.h"
#include "dkim_rules.h"
#include "log.h"
#include "metrics.h"
#include "msgbuf.h"
#include "policy.h"
#include "workpool.h"

/* Key lookups in all, at most: beyond, the rest are temperror. */
#define DKIM_BUDGET_MAX_MS 20000
/* The loop's own bound, beyond the budget: hashing a large message. */
#define GUARD_SLACK_MS 5000
/* Header bytes read to count signatures of a message too big to verify. */
#define HEADER_PEEK (256 * 1024)

struct dkim_state;

/* One verification on its way through the pool; the worker reads msg and
 * dns and writes out, nothing else of the session. */
struct dkim_job {
    char *msg;
    size_t len;
    bool dot_stuffed;
    struct dns_conf dns;        /* a copy: the config may go before the job */
    unsigned max_sigs, budget_ms;
    struct dkimv_outcome out;
    struct dkim_state *st;      /* read on the loop only, in job_done */
};

struct dkim_state {
    struct check_work cw;       /* first: the pool job and its guard */
    struct timespec started;
    struct dkimv_outcome outcome;
    bool have;                  /* outcome is the current message's */
};

static enum engine_status dkim_run(struct engine_session *es,
                                   enum checkpoint cp,
                                   const struct engine_ctx *ctx,
                                   struct verdict *v);
static bool signed_message(const struct engine_ctx *ctx);
static void too_large(struct dkim_state *st, const struct engine_ctx *ctx,
                      struct verdict *v);
static void job_run(void *arg);
static void job_done(void *arg);
static void job_free(void *arg);
static void on_guard(evutil_socket_t fd, short what, void *arg);
static void unverified(struct dkimv_outcome *o, enum dkimv_result r,
                       const char *why);
static void finish(struct dkim_state *st, struct verdict *v);
static void log_outcome(const struct dkim_state *st);

/* ---- state ---- */

static struct dkim_state *state_of(struct engine_session *es,
                                   const struct engine_ctx *ctx)
{
    return check_work_state(es, &check_dkim, ctx, sizeof(struct dkim_state),
                            on_guard);
}

const struct dkimv_outcome *check_dkim_outcome(struct engine_session *es)
{
    struct dkim_state *st = *engine_session_state(es, &check_dkim);

    return st && st->have ? &st->outcome : NULL;
}

/* ---- the check ---- */

static enum engine_status dkim_run(struct engine_session *es,
                                   enum checkpoint cp,
                                   const struct engine_ctx *ctx,
                                   struct verdict *v)
{
    const struct config *cfg = engine_session_config(es);
    const struct dkimv_policy *pol = cfg->policy ? cfg->policy->dkim : NULL;
    struct dkim_state *st;
    struct dkim_job *job;
    struct timeval guard;
    unsigned budget;

    if (!pol || !ctx->message || !(st = state_of(es, ctx)))
        return ENGINE_DONE;
    st->have = false;
    if (!auth_scope_applies(&pol->scope, ctx->listener, &ctx->client,
                            ctx->auth_user != NULL))
        return ENGINE_DONE;
    clock_gettime(CLOCK_MONOTONIC, &st->started);
    if (ctx->message_size > pol->max_message_size) {
        too_large(st, ctx, v);
        return ENGINE_DONE;
    }
    if (!signed_message(ctx)) {
        /* unsigned (most mail): no copy, no thread, no DNS */
        memset(&st->outcome, 0, sizeof(st->outcome));
        finish(st, v);
        return ENGINE_DONE;
    }
    if (!(job = calloc(1, sizeof(*job))) ||
        !(job->msg = msgbuf_copy(ctx->message, pol->max_message_size,
                                 &job->len))) {
        free(job);
        unverified(&st->outcome, DKIMV_TEMPERROR, "out of memory");
        finish(st, v);
        return ENGINE_DONE;
    }
    budget = pol->max_signatures * cfg->dns.timeout;
    if (budget > DKIM_BUDGET_MAX_MS)
        budget = DKIM_BUDGET_MAX_MS;
    job->dot_stuffed = ctx->message_dot_stuffed;
    job->dns = cfg->dns;
    job->max_sigs = pol->max_signatures;
    job->budget_ms = budget;
    job->st = st;
    st->cw.work = workpool_submit(workpool_shared(), engine_session_base(es),
                               job_run, job_done, job_free, job);
    if (!st->cw.work) {
        job_free(job);
        unverified(&st->outcome, DKIMV_TEMPERROR, "no DKIM worker free");
        finish(st, v);
        return ENGINE_DONE;
    }
    st->cw.v = v;
    guard.tv_sec = (budget + GUARD_SLACK_MS) / 1000;
    guard.tv_usec = 0;
    evtimer_add(st->cw.guard, &guard);
    return ENGINE_PENDING;
}

/* Does the header have a DKIM-Signature field? (Only the header is read:
 * most mail is unsigned and its body need not be copied.) */
static bool signed_message(const struct engine_ctx *ctx)
{
    size_t len;
    char *head = msgbuf_header(ctx->message, HEADER_PEEK, &len);
    bool yes = !head || dkimv_count(head, len, ctx->message_dot_stuffed);

    free(head);
    return yes; /* out of memory: let the copy below fail */
}

/* Not verified: neutral if signed (DMARC is told), none if not. */
static void too_large(struct dkim_state *st, const struct engine_ctx *ctx,
                      struct verdict *v)
{
    memset(&st->outcome, 0, sizeof(st->outcome));
    if (signed_message(ctx))
        unverified(&st->outcome, DKIMV_NEUTRAL,
                   "message too large to verify");
    st->outcome.too_large = true;
    st->outcome.result = dkimv_summary(&st->outcome);
    finish(st, v);
}

/* One result standing for every signature of the message. */
static void unverified(struct dkimv_outcome *o, enum dkimv_result r,
                       const char *why)
{
    memset(o, 0, sizeof(*o));
    o->nsig = o->found = 1;
    o->sig[0].result = o->result = r;
    snprintf(o->sig[0].why, sizeof(o->sig[0].why), "%s", why);
}

/* On a pool thread. */
static void job_run(void *arg)
{
    struct dkim_job *job = arg;

    if (job->dot_stuffed)
        job->len = msgbuf_unstuff(job->msg, job->len);
    dkimv_verify(job->msg, job->len, &job->dns, job->max_sigs,
                 job->budget_ms, &job->out);
}

static void job_free(void *arg)
{
    struct dkim_job *job = arg;

    free(job->msg);
    free(job);
}

/* Back on the session's loop. */
static void job_done(void *arg)
{
    struct dkim_job *job = arg;
    struct dkim_state *st = job->st;

    st->cw.work = NULL;
    evtimer_del(st->cw.guard);
    st->outcome = job->out;
    job_free(job);
    finish(st, st->cw.v);
    engine_check_done(st->cw.es);
}

static void on_guard(evutil_socket_t fd, short what, void *arg)
{
    struct dkim_state *st = arg;

    work_cancel(st->cw.work);
    st->cw.work = NULL;
    unverified(&st->outcome, DKIMV_TEMPERROR, "DKIM check took too long");
    finish(st, st->cw.v);
    engine_check_done(st->cw.es);
}

/* ---- the result ---- */

static void finish(struct dkim_state *st, struct verdict *v)
{
    const struct config *cfg = engine_session_config(st->cw.es);
    enum dkimv_result r = st->outcome.result;

    st->have = true;
    log_outcome(st);
    metric_dkim_result(dkimv_result_name(r));
    auth_rule_apply(&cfg->policy->dkim->on[r], v, "dkim",
                    dkimv_result_name(r));
}

static void log_outcome(const struct dkim_state *st)
{
    const struct dkimv_outcome *o = &st->outcome;
    char sigs[1024], d[128], s[96], why[96];
    size_t n = 0;
    struct timespec now;

    sigs[0] = '\0';
    for (size_t i = 0; i < o->nsig && n < sizeof(sigs); i++) {
        const struct dkimv_sig *g = &o->sig[i];
        int w = snprintf(sigs + n, sizeof(sigs) - n,
                         " sig%zu=%s d=<%s> s=<%s> a=%s%s%s%s", i + 1,
                         dkimv_result_name(g->result),
                         log_sanitize(g->domain, d, sizeof(d)),
                         log_sanitize(g->selector, s, sizeof(s)),
                         g->alg[0] ? g->alg : "-",
                         g->why[0] ? " reason=\"" : "",
                         g->why[0] ? log_sanitize(g->why, why, sizeof(why))
                                   : "",
                         g->why[0] ? "\"" : "");
        if (w < 0)
            break;
        n += (size_t)w;
    }
    clock_gettime(CLOCK_MONOTONIC, &now);
    log_info("session=%s dkim=%s signatures=%zu%s time=%.3fs", st->cw.session_id,
             dkimv_result_name(o->result), o->found, sigs,
             (double)(now.tv_sec - st->started.tv_sec) +
                 (double)(now.tv_nsec - st->started.tv_nsec) / 1e9);
}

/* RFC 8601 2.7.1, RFC 6008: one dkim= per signature. */
void check_dkim_authres(struct engine_session *es, struct authres *ar)
{
    const struct dkimv_outcome *o = check_dkim_outcome(es);

    if (!o)
        return;
    if (o->nsig == 0) {
        authres_method(ar, "dkim", "none");
        return;
    }
    for (size_t i = 0; i < o->nsig; i++) {
        const struct dkimv_sig *g = &o->sig[i];
        authres_method(ar, "dkim", dkimv_result_name(g->result));
        if (g->why[0])
            authres_comment(ar, g->why);
        if (g->domain[0])
            authres_prop(ar, "header.d", g->domain);
        if (g->selector[0])
            authres_prop(ar, "header.s", g->selector);
        if (g->alg[0])
            authres_prop(ar, "header.a", g->alg);
        if (g->b[0])
            authres_prop(ar, "header.b", g->b);
    }
}

/* " dkim=pass" on the transaction line */
static void dkim_summary(struct engine_session *es, char *buf, size_t len)
{
    const struct dkimv_outcome *o = check_dkim_outcome(es);

    if (o)
        engine_summary_add(buf, len, "dkim", dkimv_result_name(o->result));
}

const struct check_ops check_dkim = {
    .name = "dkim",
    .summary = dkim_summary,
    .checkpoints = CP_BIT(CP_EOM),
    .run = dkim_run,
    .session_free = check_work_free,
};
