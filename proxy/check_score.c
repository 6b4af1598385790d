/*
 * check_score: content scoring at end of data (see check_score.h).
 *
 *   EOM  copy at most max_scan_size bytes of the message, decode and
 *        score it on a worker thread (the scoring pool: one thread per
 *        CPU, apart from the DNS pool, since this work is all CPU), then
 *        on the loop act on the total with the thresholds for the
 *        session's listener: add X-Spam-* headers, tempfail or reject.
 *
 * The loop never waits on a whole-message scan. Scoring is bounded three
 * times: by the bytes copied, by PCRE2's match limits, and by a time
 * budget in the scorer; a guard timer on the loop (the budget and a
 * second) ends the wait even if a worker were stuck. A message that is
 * not scored in time, or finds the pool full, is accepted unscored and
 * logged: scoring fails open, like SpamAssassin behind spamc.
 *
 * X-Spam-Flag, X-Spam-Score and X-Spam-Status fields already in a scored
 * message are removed, so a sender cannot forge a verdict downstream
 * filters trust.
 */
#include <event2/event.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "check_work.h"
#include "check_dkim.h"
#include "check_dmarc.h"
#include "check_limits.h"
#include "check_score.h"
#include "check_spf.h"
#include "config.h"
#include "log.h"
#include "metrics.h"
#include "msgbuf.h"
#include "msgview.h"
#include "policy.h"
#include "score_rules.h"
#include "scorer.h"
#include "workpool.h"

/* The loop's own bound, beyond the scorer's budget. */
#define GUARD_SLACK_MS 1000
#define POOL_QUEUE 1024
/* The tests listed in X-Spam-Status: a header line must stay under 998. */
#define TESTS_MAX 700

/* Fields Warden writes; copies in the message are forgeries. */
static const char *const own_fields[] = {"X-Spam-Flag", "X-Spam-Score",
                                         "X-Spam-Status"};
#define NOWN (sizeof(own_fields) / sizeof(own_fields[0]))

struct score_state;

/* One message on its way through the pool. The job holds a reference on
 * the config: the rules it reads stay alive even if the session (and
 * with it the last other reference) goes while a worker still scores. */
struct score_job {
    struct config *cfg;
    char *msg;
    size_t len;
    bool dot_stuffed;
    char *sender;
    double ext[EXT__COUNT];
    unsigned budget_ms;
    /* results, written by the worker */
    int rc;
    struct score_result res;
    unsigned forged[NOWN];
    struct score_state *st; /* read on the loop only, in job_done */
};

struct score_state {
    struct check_work cw;       /* first: the pool job and its guard */
    size_t scanned;
    const struct score_threshold *t; /* the listener's, in the session's
                                      * config */
    bool scored;                     /* score holds the last message's */
    double score;
};

static enum engine_status score_run(struct engine_session *es,
                                    enum checkpoint cp,
                                    const struct engine_ctx *ctx,
                                    struct verdict *v);
static struct score_job *job_new(struct engine_session *es,
                                 const struct engine_ctx *ctx,
                                 const struct score_policy *sp);
static void job_run(void *arg);
static void job_done(void *arg);
static void job_release(void *arg);
static void on_guard(evutil_socket_t fd, short what, void *arg);
static void apply(struct score_state *st, const struct score_job *job,
                  struct verdict *v);
static void add_headers(const struct score_job *job,
                        const struct score_threshold *t, struct verdict *v);

/* ---- the pool ---- */

static pthread_once_t pool_once = PTHREAD_ONCE_INIT;
static struct workpool *pool;

static void pool_start(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);

    pool = workpool_new(n > 0 ? (unsigned)n : 1, POOL_QUEUE);
    if (!pool)
        log_err("scoring: cannot start the scoring threads; messages "
                "pass unscored");
}

static struct workpool *score_pool(void)
{
    pthread_once(&pool_once, pool_start);
    return pool;
}

/* ---- state ---- */

static struct score_state *state_of(struct engine_session *es,
                                    const struct engine_ctx *ctx)
{
    return check_work_state(es, &check_score, ctx, sizeof(struct score_state),
                            on_guard);
}

/* ---- other checks' results ---- */

void check_score_externals(struct engine_session *es,
                           const struct engine_ctx *ctx, double ext[EXT__COUNT])
{
    static const enum rule_external spf[SPFR__COUNT] = {
        [SPFR_NONE] = EXT_SPF_NONE,
        [SPFR_NEUTRAL] = EXT_SPF_NEUTRAL,
        [SPFR_PASS] = EXT_SPF_PASS,
        [SPFR_FAIL] = EXT_SPF_FAIL,
        [SPFR_SOFTFAIL] = EXT_SPF_SOFTFAIL,
        [SPFR_TEMPERROR] = EXT_SPF_TEMPERROR,
        [SPFR_PERMERROR] = EXT_SPF_PERMERROR,
    };
    const struct spf_outcome *so = check_spf_outcome(es);
    const struct dkimv_outcome *ko = check_dkim_outcome(es);
    const struct dmarc_outcome *mo = check_dmarc_outcome(es);
    const struct config *cfg = engine_session_config(es);
    const struct score_policy *sp = cfg->policy ? cfg->policy->scoring : NULL;

    memset(ext, 0, EXT__COUNT * sizeof(*ext));
    if (so && so->result < SPFR__COUNT)
        ext[spf[so->result]] = 1;
    if (ko) {
        enum dkimv_result r = dkimv_summary(ko);
        ext[EXT_DKIM_PASS] = r == DKIMV_PASS;
        ext[EXT_DKIM_NONE] = r == DKIMV_NONE;
        ext[EXT_DKIM_FAIL] = r == DKIMV_FAIL;
    }
    if (mo) {
        ext[EXT_DMARC_PASS] = mo->result == DMARCR_PASS;
        ext[EXT_DMARC_FAIL] = mo->result == DMARCR_FAIL;
        ext[EXT_DMARC_NONE] = mo->result == DMARCR_NONE;
    }
    ext[EXT_AUTHENTICATED] = ctx->auth_user != NULL;
    /* the small allowance: shares are quotients of doubles */
    ext[EXT_LIMIT_NEAR] =
        sp && check_limits_share_used(es) >= sp->limit_near - 1e-9;
}

/* ---- the check ---- */

static enum engine_status score_run(struct engine_session *es,
                                    enum checkpoint cp,
                                    const struct engine_ctx *ctx,
                                    struct verdict *v)
{
    const struct config *cfg = engine_session_config(es);
    const struct score_policy *sp = cfg->policy ? cfg->policy->scoring : NULL;
    const struct score_threshold *t;
    struct score_state *st;
    struct score_job *job;
    struct timeval guard;

    if (!sp || !sp->rules || !ctx->message ||
        !auth_scope_applies(&sp->scope, ctx->listener, &ctx->client,
                            ctx->auth_user != NULL) ||
        !(t = score_threshold_for(sp, ctx->listener)) ||
        !(st = state_of(es, ctx)))
        return ENGINE_DONE;
    st->scored = false; /* a message left unscored shows no score */
    if (!score_pool() || !(job = job_new(es, ctx, sp))) {
        metric_scored("error", -1);
        return ENGINE_DONE;
    }
    st->t = t;
    job->st = st;
    st->scanned = job->len;
    st->cw.work = workpool_submit(score_pool(), engine_session_base(es), job_run,
                               job_done, job_release, job);
    if (!st->cw.work) {
        log_warn("session=%s scoring: all scoring threads busy; message "
                 "accepted unscored",
                 st->cw.session_id);
        metric_scored("busy", -1);
        job_release(job);
        return ENGINE_DONE;
    }
    st->cw.v = v;
    guard.tv_sec = (sp->timeout_ms + GUARD_SLACK_MS) / 1000;
    guard.tv_usec = (sp->timeout_ms + GUARD_SLACK_MS) % 1000 * 1000;
    evtimer_add(st->cw.guard, &guard);
    return ENGINE_PENDING;
}

/* What the worker needs, copied: the session may end before it is done. */
static struct score_job *job_new(struct engine_session *es,
                                 const struct engine_ctx *ctx,
                                 const struct score_policy *sp)
{
    struct score_job *job = calloc(1, sizeof(*job));

    if (!job)
        return NULL;
    job->msg = msgbuf_copy(ctx->message, sp->max_scan, &job->len);
    job->sender = ctx->sender ? strdup(ctx->sender) : NULL;
    if (!job->msg || (ctx->sender && !job->sender)) {
        free(job->msg);
        free(job->sender);
        free(job);
        return NULL;
    }
    job->dot_stuffed = ctx->message_dot_stuffed;
    job->budget_ms = sp->timeout_ms;
    check_score_externals(es, ctx, job->ext);
    job->cfg = config_ref(engine_session_config(es));
    return job;
}

/* The X-Spam-* fields already in the message (forgeries). */
static void count_forged(const struct msgview *mv, unsigned forged[NOWN])
{
    for (size_t i = 0; i < mv->nfields; i++)
        for (size_t k = 0; k < NOWN; k++)
            if (strcasecmp(mv->fields[i].name, own_fields[k]) == 0)
                forged[k]++;
}

/* On a scoring thread. */
static void job_run(void *arg)
{
    struct score_job *job = arg;
    const struct score_policy *sp = job->cfg->policy->scoring;
    struct msgview *mv =
        msgview_new(job->msg, job->len, job->dot_stuffed, job->sender);

    free(job->msg); /* the view has its own copies */
    job->msg = NULL;
    job->rc = -1;
    if (!mv)
        return;
    count_forged(mv, job->forged);
    job->rc = scorer_run(sp->rules, mv, job->ext, job->budget_ms, &job->res);
    msgview_free(mv);
}

/* Any thread: the job is done with, or was cancelled. */
static void job_release(void *arg)
{
    struct score_job *job = arg;

    free(job->msg);
    free(job->sender);
    score_result_free(&job->res);
    config_unref(job->cfg);
    free(job);
}

/* Back on the session's loop. */
static void job_done(void *arg)
{
    struct score_job *job = arg;
    struct score_state *st = job->st;

    st->cw.work = NULL;
    evtimer_del(st->cw.guard);
    apply(st, job, st->cw.v);
    job_release(job);
    engine_check_done(st->cw.es);
}

static void on_guard(evutil_socket_t fd, short what, void *arg)
{
    struct score_state *st = arg;

    work_cancel(st->cw.work);
    st->cw.work = NULL;
    log_warn("session=%s scoring: not done in time; message accepted "
             "unscored",
             st->cw.session_id);
    metric_scored("timeout", -1);
    engine_check_done(st->cw.es);
}

/* ---- the verdict ---- */

static const char *action_of(const struct score_threshold *t, double score)
{
    if (t->reject_on && score >= t->reject)
        return "reject";
    if (t->tempfail_on && score >= t->tempfail)
        return "tempfail";
    if (t->tag_on && score >= t->tag)
        return "tag";
    return "accept";
}

static void log_result(const struct score_state *st,
                       const struct score_job *job, const char *action,
                       const struct score_threshold *t)
{
    const struct config *cfg = engine_session_config(st->cw.es);
    char tests[1024];

    score_result_tests(cfg->policy->scoring->rules, &job->res, tests,
                       sizeof(tests));
    log_info("session=%s score=%.1f required=%.1f action=%s tests=%s "
             "scanned=%zu time=%.3fs%s%s",
             st->cw.session_id, job->res.score, t->tag_on ? t->tag : 0.0, action,
             tests[0] ? tests : "-", st->scanned, job->res.seconds,
             job->res.out_of_time ? " incomplete=time" : "",
             job->res.limit_errors ? " regex_limits=yes" : "");
}

static void apply(struct score_state *st, const struct score_job *job,
                  struct verdict *v)
{
    const struct score_threshold *t = st->t;
    const char *action;
    char check[32];

    if (job->rc != 0) {
        log_warn("session=%s scoring: out of memory; message accepted "
                 "unscored",
                 st->cw.session_id);
        metric_scored("error", -1);
        return;
    }
    action = action_of(t, job->res.score);
    log_result(st, job, action, t);
    metric_scored(action, job->res.seconds);
    st->scored = true;
    st->score = job->res.score;
    for (size_t k = 0; k < NOWN; k++)
        for (unsigned i = job->forged[k]; i > 0; i--)
            header_removals_add(&v->remove, own_fields[k], i);
    snprintf(check, sizeof(check), "score:%.1f", job->res.score);
    if (strcmp(action, "reject") == 0) {
        verdict_set(v, VERDICT_REJECT, t->reject_reply.code,
                    t->reject_reply.enh, t->reject_reply.text, check);
    } else if (strcmp(action, "tempfail") == 0) {
        verdict_set(v, VERDICT_TEMPFAIL, t->tempfail_reply.code,
                    t->tempfail_reply.enh, t->tempfail_reply.text, check);
        v->disconnect = t->tempfail_reply.code == 421;
    } else if (strcmp(action, "tag") == 0) {
        add_headers(job, t, v);
    }
}

static void add_headers(const struct score_job *job,
                        const struct score_threshold *t, struct verdict *v)
{
    const struct ruleset *rs = job->cfg->policy->scoring->rules;
    char tests[TESTS_MAX], line[TESTS_MAX + 128];

    score_result_tests(rs, &job->res, tests, sizeof(tests));
    header_list_add(&v->headers, "X-Spam-Flag: YES");
    snprintf(line, sizeof(line), "X-Spam-Score: %.1f", job->res.score);
    header_list_add(&v->headers, line);
    snprintf(line, sizeof(line),
             "X-Spam-Status: Yes, score=%.1f required=%.1f tests=%s",
             job->res.score, t->tag, tests[0] ? tests : "none");
    header_list_add(&v->headers, line);
}

/* " score=3.2" on the transaction line */
static void score_summary(struct engine_session *es, char *buf, size_t len)
{
    const struct score_state *st = *engine_session_state(es, &check_score);
    char v[32];

    if (!st || !st->scored)
        return;
    snprintf(v, sizeof(v), "%.1f", st->score);
    engine_summary_add(buf, len, "score", v);
}

const struct check_ops check_score = {
    .name = "score",
    .summary = score_summary,
    .checkpoints = CP_BIT(CP_EOM),
    .run = score_run,
    .session_free = check_work_free,
};
