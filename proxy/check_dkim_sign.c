/*
 * check_dkim_sign: DKIM-sign outbound mail at end of data, by the policy
 * files' `dkim_sign:` section.
 *
 *   EOM  for an authenticated session only: read the From: domain (one
 *        field, one address), find its key (or its nearest parent's),
 *        check that the user may send for that domain, then sign a copy
 *        of the message on a pool thread and add the DKIM-Signature field
 *        to the verdict's headers.
 *
 * A message that does not qualify goes on unsigned, and the log says why
 * ("dkim_sign=skipped"): a compromised account cannot get someone else's
 * domain signed. A message that qualifies but cannot be signed (no worker
 * free, a library error) is answered 451: sent unsigned, it might bounce
 * at a receiver that enforces DMARC, and the client can simply retry.
 */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "config.h"
#include "dkim_rules.h"
#include "fromaddr.h"
#include "log.h"
#include "msgbuf.h"
#include "policy.h"
#include "workpool.h"

/* Header bytes read for From:. */
#define HEADER_MAX (256 * 1024)
/* Hashing 10 MB takes tens of milliseconds; a stuck pool ends here. */
#define GUARD_MS 30000

struct sign_state;

struct sign_job {
    char *msg;
    size_t len;
    bool dot_stuffed;
    char *pem;                  /* copies: the config may go before the job */
    enum dkims_alg alg;
    char domain[FROMADDR_DOMAIN_MAX];
    char selector[64];
    char *field;                /* the result, "DKIM-Signature: ..." */
    char err[128];
    struct sign_state *st;      /* read on the loop only, in job_done */
};

struct sign_state {
    struct engine_session *es;
    struct verdict *v;
    struct work *work;
    struct event *guard;
    char session_id[32];
    char user[128];             /* for the log line */
    char from[FROMADDR_DOMAIN_MAX];
};

static enum engine_status sign_run(struct engine_session *es,
                                   enum checkpoint cp,
                                   const struct engine_ctx *ctx,
                                   struct verdict *v);
static const struct dkims_key *choose_key(struct sign_state *st,
                                          const struct dkims_policy *sp,
                                          const struct engine_ctx *ctx);
static void skipped(const struct sign_state *st, const char *why);
static void job_run(void *arg);
static void job_done(void *arg);
static void job_free(void *arg);
static void on_guard(evutil_socket_t fd, short what, void *arg);
static void sign_failed(struct sign_state *st, struct verdict *v,
                        const char *why);

/* ---- state ---- */

static struct sign_state *state_of(struct engine_session *es,
                                   const struct engine_ctx *ctx)
{
    void **slot = engine_session_state(es, &check_dkim_sign);
    struct sign_state *st = *slot;

    if (st)
        return st;
    if (!(st = calloc(1, sizeof(*st))))
        return NULL;
    st->es = es;
    st->guard = evtimer_new(engine_session_base(es), on_guard, st);
    if (!st->guard) {
        free(st);
        return NULL;
    }
    snprintf(st->session_id, sizeof(st->session_id), "%s",
             ctx->session_id ? ctx->session_id : "-");
    *slot = st;
    return st;
}

static void sign_session_free(void *state)
{
    struct sign_state *st = state;

    work_cancel(st->work);
    event_free(st->guard);
    free(st);
}

/* ---- the check ---- */

static enum engine_status sign_run(struct engine_session *es,
                                   enum checkpoint cp,
                                   const struct engine_ctx *ctx,
                                   struct verdict *v)
{
    const struct config *cfg = engine_session_config(es);
    const struct dkims_policy *sp = cfg->policy ? cfg->policy->dkim_sign
                                                : NULL;
    const struct dkims_key *key;
    struct sign_state *st;
    struct sign_job *job;
    struct timeval guard = {GUARD_MS / 1000, 0};

    if (!sp || !ctx->auth_user || !ctx->message ||
        !dkims_listener_ok(sp, ctx->listener) || !(st = state_of(es, ctx)))
        return ENGINE_DONE;
    log_sanitize(ctx->auth_user, st->user, sizeof(st->user));
    if (!(key = choose_key(st, sp, ctx)))
        return ENGINE_DONE;
    if (!(job = calloc(1, sizeof(*job))) ||
        !(job->msg = msgbuf_copy(ctx->message, ctx->message_size,
                                 &job->len)) ||
        !(job->pem = malloc(key->pem_len + 1))) {
        if (job)
            job_free(job);
        sign_failed(st, v, "out of memory");
        return ENGINE_DONE;
    }
    memcpy(job->pem, key->pem, key->pem_len + 1);
    job->dot_stuffed = ctx->message_dot_stuffed;
    job->alg = key->alg;
    snprintf(job->domain, sizeof(job->domain), "%s", key->domain);
    snprintf(job->selector, sizeof(job->selector), "%s", key->selector);
    job->st = st;
    st->work = workpool_submit(workpool_shared(), engine_session_base(es),
                               job_run, job_done, job_free, job);
    if (!st->work) {
        job_free(job);
        sign_failed(st, v, "no signing worker free");
        return ENGINE_DONE;
    }
    st->v = v;
    evtimer_add(st->guard, &guard);
    return ENGINE_PENDING;
}

/* The key to sign with, or NULL (logged) when the message does not
 * qualify: one From: address, a key for its domain, a grant for the user. */
static const struct dkims_key *choose_key(struct sign_state *st,
                                          const struct dkims_policy *sp,
                                          const struct engine_ctx *ctx)
{
    const struct dkims_key *key;
    enum fromaddr_status fs;
    char why[FROMADDR_DOMAIN_MAX + 64];
    size_t len;
    char *head = msgbuf_header(ctx->message, HEADER_MAX, &len);

    st->from[0] = '\0';
    fs = head ? fromaddr_of_message(head, len, ctx->message_dot_stuffed,
                                    st->from, sizeof(st->from))
              : FROMADDR_BAD;
    free(head);
    if (fs != FROMADDR_OK) {
        skipped(st, fromaddr_status_text(fs));
        return NULL;
    }
    if (!(key = dkims_key_for(sp, st->from))) {
        skipped(st, "no key for the From: domain");
        return NULL;
    }
    if (!dkims_allowed(sp, ctx->auth_user, st->from)) {
        snprintf(why, sizeof(why), "user may not send as %s", st->from);
        skipped(st, why);
        return NULL;
    }
    return key;
}

static void skipped(const struct sign_state *st, const char *why)
{
    char from[128];

    log_info("session=%s dkim_sign=skipped user=%s from_domain=<%s> "
             "reason=\"%s\"",
             st->session_id, st->user,
             log_sanitize(st->from, from, sizeof(from)), why);
}

/* On a pool thread. */
static void job_run(void *arg)
{
    struct sign_job *job = arg;

    if (job->dot_stuffed)
        job->len = msgbuf_unstuff(job->msg, job->len);
    job->field = dkims_sign(job->msg, job->len, job->pem, job->alg,
                            job->domain, job->selector, job->err,
                            sizeof(job->err));
}

static void job_free(void *arg)
{
    struct sign_job *job = arg;

    free(job->msg);
    if (job->pem)
        explicit_bzero(job->pem, strlen(job->pem));
    free(job->pem);
    free(job->field);
    free(job);
}

/* Back on the session's loop. */
static void job_done(void *arg)
{
    struct sign_job *job = arg;
    struct sign_state *st = job->st;

    st->work = NULL;
    evtimer_del(st->guard);
    if (job->field && header_list_add(&st->v->headers, job->field) == 0)
        log_info("session=%s dkim_sign=signed user=%s from_domain=<%s> "
                 "d=%s s=%s a=%s",
                 st->session_id, st->user, st->from, job->domain,
                 job->selector,
                 job->alg == DKIMS_ED25519_SHA256 ? "ed25519-sha256"
                                                  : "rsa-sha256");
    else
        sign_failed(st, st->v, job->field ? "out of memory" : job->err);
    job_free(job);
    engine_check_done(st->es);
}

static void on_guard(evutil_socket_t fd, short what, void *arg)
{
    struct sign_state *st = arg;

    work_cancel(st->work);
    st->work = NULL;
    sign_failed(st, st->v, "signing took too long");
    engine_check_done(st->es);
}

static void sign_failed(struct sign_state *st, struct verdict *v,
                        const char *why)
{
    log_warn("session=%s dkim_sign=error user=%s from_domain=<%s> "
             "reason=\"%s\"",
             st->session_id, st->user, st->from, why);
    verdict_set(v, VERDICT_TEMPFAIL, 451, "4.7.0",
                "Cannot sign the message now, try again later",
                "dkim_sign:error");
}

const struct check_ops check_dkim_sign = {
    .name = "dkim_sign",
    .checkpoints = CP_BIT(CP_EOM),
    .run = sign_run,
    .session_free = sign_session_free,
};
