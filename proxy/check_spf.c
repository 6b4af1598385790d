/*
 * check_spf: SPF (RFC 7208) at MAIL FROM, from the policy files.
 *
 *   MAIL  check MAIL FROM (postmaster@HELO for <>) for the real client
 *         address on a pool thread (libspf2 resolves synchronously), then
 *         do what the spf section says for the result: accept (tag),
 *         tempfail or reject, with the admin's reply
 *   EOM   (check_authres.c) "spf=<result> ..." in the message's one
 *         Authentication-Results field, through check_spf_authres()
 *
 * The session's loop never waits: the check is submitted to the shared
 * worker pool and answers through engine_check_done() when the result
 * comes back. A guard timer on the loop ends the wait with temperror even
 * if a worker were stuck, and a full pool queue is a temperror at once:
 * never a hang, never a pass. The result is kept for the transaction
 * (check_spf_outcome) and reused for the next MAIL of the session when
 * client, HELO and sender are the same.
 */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "authres.h"
#include "check.h"
#include "check_work.h"
#include "check_spf.h"
#include "config.h"
#include "log.h"
#include "metrics.h"
#include "policy.h"
#include "workpool.h"

/* The loop's own bound, beyond the check's budget and its last query. */
#define GUARD_SLACK_MS 1000

struct spf_state;

/* One check on its way through the pool: the worker reads q and dns and
 * writes out; nothing else of the session is visible to it. */
struct spf_job {
    struct spf_query q;
    struct dns_conf dns;        /* a copy: the config may go before the job */
    struct spf_outcome out;
    struct spf_state *st;       /* read on the loop only, in job_done */
};

struct spf_state {
    struct check_work cw;       /* first: the pool job and its guard */
    struct timespec started;
    struct spf_query q;         /* what outcome answers */
    struct spf_outcome outcome;
    bool have;                  /* outcome is the current transaction's */
    bool reusable;              /* q/outcome may serve a later MAIL */
};

static enum engine_status spf_run(struct engine_session *es,
                                  enum checkpoint cp,
                                  const struct engine_ctx *ctx,
                                  struct verdict *v);
static enum engine_status check_mail(struct engine_session *es,
                                     const struct engine_ctx *ctx,
                                     struct verdict *v);
static bool build_query(const struct engine_ctx *ctx, struct spf_query *q);
static void job_run(void *arg);
static void job_done(void *arg);
static void on_guard(evutil_socket_t fd, short what, void *arg);
static void finish(struct spf_state *st, const struct spf_outcome *o,
                   struct verdict *v);
static void apply(struct spf_state *st, struct verdict *v);
static void log_outcome(const struct spf_state *st);

/* ---- state ---- */

static struct spf_state *state_of(struct engine_session *es,
                                  const struct engine_ctx *ctx)
{
    return check_work_state(es, &check_spf, ctx, sizeof(struct spf_state),
                            on_guard);
}

const struct spf_outcome *check_spf_outcome(struct engine_session *es)
{
    struct spf_state *st = *engine_session_state(es, &check_spf);

    return st && st->have ? &st->outcome : NULL;
}

/* ---- the check ---- */

static enum engine_status spf_run(struct engine_session *es,
                                  enum checkpoint cp,
                                  const struct engine_ctx *ctx,
                                  struct verdict *v)
{
    const struct config *cfg = engine_session_config(es);

    if (!cfg->policy || !cfg->policy->spf)
        return ENGINE_DONE;
    return check_mail(es, ctx, v);
}

static enum engine_status check_mail(struct engine_session *es,
                                     const struct engine_ctx *ctx,
                                     struct verdict *v)
{
    const struct config *cfg = engine_session_config(es);
    struct spf_state *st = state_of(es, ctx);
    struct spf_query q;
    struct spf_job *job;
    struct timeval guard;

    if (!st)
        return ENGINE_DONE;
    st->have = false;
    if (!auth_scope_applies(&cfg->policy->spf->scope, ctx->listener,
                            &ctx->client, ctx->auth_user != NULL))
        return ENGINE_DONE;
    clock_gettime(CLOCK_MONOTONIC, &st->started);
    if (!build_query(ctx, &q)) {
        struct spf_outcome none = {.result = SPFR_NONE};
        snprintf(none.why, sizeof(none.why), "address too long");
        st->q = q;
        finish(st, &none, v);
        return ENGINE_DONE;
    }
    if (st->reusable && memcmp(&q, &st->q, sizeof(q)) == 0) {
        st->have = true;
        apply(st, v);
        return ENGINE_DONE;
    }
    if (!(job = calloc(1, sizeof(*job))))
        return ENGINE_DONE;
    job->q = q;
    job->dns = cfg->dns;
    job->st = st;
    st->q = q;
    st->cw.work = workpool_submit(workpool_shared(), engine_session_base(es),
                               job_run, job_done, free, job);
    if (!st->cw.work) {
        struct spf_outcome busy = {.result = SPFR_TEMPERROR};
        snprintf(busy.why, sizeof(busy.why), "no SPF worker free");
        free(job);
        finish(st, &busy, v);
        return ENGINE_DONE;
    }
    st->cw.v = v;
    guard.tv_sec = (SPF_BUDGET_MS + cfg->dns.timeout + GUARD_SLACK_MS) / 1000;
    guard.tv_usec = 0;
    evtimer_add(st->cw.guard, &guard);
    return ENGINE_PENDING;
}

/* Copy what the check needs; false when an address cannot be held. */
static bool build_query(const struct engine_ctx *ctx, struct spf_query *q)
{
    const char *helo = ctx->helo ? ctx->helo : "";
    const char *sender = ctx->sender ? ctx->sender : "";

    memset(q, 0, sizeof(*q));
    netaddr_ip(&ctx->client, q->ip, sizeof(q->ip));
    if (strlen(sender) >= sizeof(q->sender))
        return false;
    snprintf(q->sender, sizeof(q->sender), "%s", sender);
    /* an over-long HELO is no domain: as if none was given */
    if (strlen(helo) < sizeof(q->helo))
        snprintf(q->helo, sizeof(q->helo), "%s", helo);
    return true;
}

/* On a pool thread. */
static void job_run(void *arg)
{
    struct spf_job *job = arg;

    spf_evaluate(&job->q, &job->dns, SPF_BUDGET_MS, &job->out);
}

/* Back on the session's loop. */
static void job_done(void *arg)
{
    struct spf_job *job = arg;
    struct spf_state *st = job->st;

    st->cw.work = NULL;
    evtimer_del(st->cw.guard);
    finish(st, &job->out, st->cw.v);
    free(job);
    engine_check_done(st->cw.es);
}

static void on_guard(evutil_socket_t fd, short what, void *arg)
{
    struct spf_state *st = arg;
    struct spf_outcome late = {.result = SPFR_TEMPERROR};

    work_cancel(st->cw.work);
    st->cw.work = NULL;
    snprintf(late.why, sizeof(late.why), "SPF check took too long");
    finish(st, &late, st->cw.v);
    engine_check_done(st->cw.es);
}

/* ---- the result ---- */

static void finish(struct spf_state *st, const struct spf_outcome *o,
                   struct verdict *v)
{
    st->outcome = *o;
    st->have = true;
    /* a temporary error may be gone by the next MAIL: check again */
    st->reusable = o->result != SPFR_TEMPERROR;
    metric_spf_result(spf_result_name(o->result));
    log_outcome(st);
    apply(st, v);
}

/* What the policy says for this result. */
static void apply(struct spf_state *st, struct verdict *v)
{
    const struct config *cfg = engine_session_config(st->cw.es);
    enum spf_result r = st->outcome.result;

    auth_rule_apply(&cfg->policy->spf->on[r], v, "spf", spf_result_name(r));
}

static void log_outcome(const struct spf_state *st)
{
    const struct spf_outcome *o = &st->outcome;
    char dom[128], helo[128], from[256];
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    log_info("session=%s spf=%s identity=%s domain=<%s> client=[%s] "
             "helo=<%s> mailfrom=<%s> lookups=%u voids=%u time=%.3fs%s%s%s",
             st->cw.session_id, spf_result_name(o->result),
             o->identity == SPFID_HELO ? "helo" : "mailfrom",
             log_sanitize(o->domain, dom, sizeof(dom)), st->q.ip,
             log_sanitize(st->q.helo, helo, sizeof(helo)),
             log_sanitize(o->mailfrom, from, sizeof(from)), o->lookups,
             o->voids,
             (double)(now.tv_sec - st->started.tv_sec) +
                 (double)(now.tv_nsec - st->started.tv_nsec) / 1e9,
             o->why[0] ? " reason=\"" : "", o->why[0] ? o->why : "",
             o->why[0] ? "\"" : "");
}

/* RFC 8601 2.7.2 / RFC 7208 9.1: spf=<result> smtp.mailfrom=<addr>, or
 * smtp.helo=<domain> when the HELO identity was checked. */
void check_spf_authres(struct engine_session *es, struct authres *ar)
{
    const struct spf_outcome *o = check_spf_outcome(es);

    if (!o)
        return;
    authres_method(ar, "spf", spf_result_name(o->result));
    if (o->why[0] &&
        (o->result == SPFR_TEMPERROR || o->result == SPFR_PERMERROR))
        authres_comment(ar, o->why);
    if (o->identity == SPFID_HELO)
        authres_prop(ar, "smtp.helo", o->domain);
    else
        authres_prop(ar, "smtp.mailfrom", o->mailfrom);
}

/* " spf=pass" on the transaction line */
static void spf_summary(struct engine_session *es, char *buf, size_t len)
{
    const struct spf_outcome *o = check_spf_outcome(es);

    if (o)
        engine_summary_add(buf, len, "spf", spf_result_name(o->result));
}

const struct check_ops check_spf = {
    .name = "spf",
    .summary = spf_summary,
    .checkpoints = CP_BIT(CP_MAIL),
    .run = spf_run,
    .session_free = check_work_free,
};
