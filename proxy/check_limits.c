/*
 * check_limits: connection and rate limits from the policy files, counted
 * in the store (memory or Redis).
 *
 * Each checkpoint gathers every window of every limit that applies to it
 * into one store call, so a checkpoint costs one round trip and the check
 * and the count happen in one atomic step (see store.h for the rule):
 *   connect  concurrent (a slot, given back at close) and connections
 *   MAIL     messages; failures (read only: is the budget spent?)
 *   RCPT     recipients; failures (read only)
 *   end      bytes (the message size)
 * Failures are counted when they happen (engine_note_failure).
 *
 * How much of its enforced limits a client has used (the largest share,
 * for the session's connect-time limits and for the transaction's) is
 * kept for content scoring: WARDEN_LIMIT_NEAR (check_limits.h).
 *
 * When the store cannot answer, on_failure decides: accept (logged once
 * per outage) or tempfail.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "check.h"
#include "check_limits.h"
#include "config.h"
#include "limit_stats.h"
#include "log.h"
#include "metrics.h"
#include "policy.h"
#include "store.h"

#define MAX_OPS 64
#define SMTP_KEY_VALUE_MAX 520

/* One store call in flight (or done synchronously). */
struct limit_call {
    struct limit_state *owner;   /* NULL for fire-and-forget calls */
    struct store_op ops[MAX_OPS];
    struct store_result res[MAX_OPS];
    const struct limit_rule *rules[MAX_OPS];
    size_t n;
    struct store_call *handle;
};

struct limit_state {
    struct engine_session *es;
    const struct engine_ctx *ctx; /* the session's; valid while it lives */
    struct limit_call *pending;
    struct verdict *v;
    enum checkpoint cp;
    char (*held)[STORE_KEY_MAX];  /* connection slots to give back */
    size_t nheld;
    /* the largest share (0 to 1) of an enforced limit used: at connect,
     * and in the current transaction (from MAIL on) */
    double used_session;
    double used_tx;
};

/* Whether an outage was logged already: one line per outage, not per call. */
static int outage_logged;

/* ---- which limits apply ------------------------------------------------ */

static bool limit_counted_at(enum limit_count c, enum checkpoint cp)
{
    switch (c) {
    case LIMIT_CONCURRENT:
    case LIMIT_CONNECTIONS:
        return cp == CP_CONNECT;
    case LIMIT_MESSAGES:
        return cp == CP_MAIL;
    case LIMIT_RECIPIENTS:
        return cp == CP_RCPT;
    case LIMIT_BYTES:
        return cp == CP_EOM;
    case LIMIT_FAILURES:
        return cp == CP_MAIL || cp == CP_RCPT;
    }
    return false;
}

static bool in_list(char *const *v, size_t n, const char *s)
{
    for (size_t i = 0; s && i < n; i++)
        if (strcasecmp(v[i], s) == 0)
            return true;
    return false;
}

static const char *domain_of(const char *addr)
{
    const char *at = addr ? strrchr(addr, '@') : NULL;
    return at ? at + 1 : NULL;
}

static bool sender_exempt(const struct limit_rule *r, const char *sender)
{
    const char *dom = domain_of(sender);

    for (size_t i = 0; sender && i < r->nexempt_senders; i++) {
        const char *x = r->exempt_senders[i];
        if (x[0] == '@' ? (dom && strcasecmp(x + 1, dom) == 0)
                        : strcasecmp(x, sender) == 0)
            return true;
    }
    return false;
}

bool limit_applies(const struct limit_rule *r, const struct engine_ctx *ctx)
{
    if (r->nlisteners && !in_list(r->listeners, r->nlisteners, ctx->listener))
        return false;
    if (r->networks.n && !cidr_list_match(&r->networks, &ctx->client))
        return false;
    if ((r->authenticated || r->nusers) && !ctx->auth_user)
        return false;
    if (r->nusers && !in_list(r->users, r->nusers, ctx->auth_user))
        return false;
    if (cidr_list_match(&r->exempt_networks, &ctx->client))
        return false;
    if (in_list(r->exempt_users, r->nexempt_users, ctx->auth_user))
        return false;
    return !sender_exempt(r, ctx->sender);
}

/* ---- keys -------------------------------------------------------------- */

/* "192.0.2.0/24" for the client's network. */
static void client_net(const struct engine_ctx *ctx, unsigned v4, unsigned v6,
                       char *buf, size_t len)
{
    struct cidr c;
    char ip[NETADDR_STRLEN], err[64];
    unsigned prefix = netaddr_family(&ctx->client) == AF_INET ? v4 : v6;

    netaddr_ip(&ctx->client, ip, sizeof(ip));
    snprintf(buf, len, "%s/%u", ip, prefix);
    /* cidr_parse refuses host bits: clear them by masking ourselves */
    memset(&c, 0, sizeof(c));
    c.family = netaddr_family(&ctx->client);
    if (cidr_parse(ip, &c, err, sizeof(err)) != 0)
        return;
    size_t bytes = c.family == AF_INET ? 4 : 16;
    for (size_t i = 0; i < bytes; i++) {
        unsigned bits = prefix > i * 8 ? prefix - (unsigned)i * 8 : 0;
        c.addr[i] &= bits >= 8 ? 0xff : (uint8_t)(0xff << (8 - bits));
    }
    inet_ntop(c.family, c.addr, ip, sizeof(ip));
    snprintf(buf, len, "%s/%u", ip, prefix);
}

static void lower_into(char *dst, size_t len, const char *src)
{
    size_t i = 0;

    for (; src && src[i] && i + 1 < len; i++)
        dst[i] = (char)tolower((unsigned char)src[i]);
    dst[i] = '\0';
}

/* Append "name=value|"; false when value is missing (limit skipped). */
static bool part(char *buf, size_t len, const char *name, const char *value,
                 bool lower)
{
    char v[SMTP_KEY_VALUE_MAX];
    size_t used = strlen(buf);

    if (!value)
        return false;
    if (lower)
        lower_into(v, sizeof(v), value);
    else
        snprintf(v, sizeof(v), "%s", value);
    /* a value may not fake the next part ("a|user=alice") */
    for (char *p = v; (p = strchr(p, '|'));)
        *p = '!';
    snprintf(buf + used, len - used, "%s=%s|", name, v);
    return true;
}

/* Long keys (addresses can be 500 octets) become a SHA-256 digest. */
static void shorten(char *key, size_t len)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char hex[2 * EVP_MAX_MD_SIZE + 1];

    if (strlen(key) < 160)
        return;
    EVP_Digest(key, strlen(key), md, &mdlen, EVP_sha256(), NULL);
    for (unsigned i = 0; i < mdlen; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    snprintf(key, len, "sha256=%s", hex);
}


/* The counted key of rule r for this session, or false if a part of it is
 * unknown here (no user on an unauthenticated session, ...). */
bool limit_key(const struct limit_rule *r, const struct engine_ctx *c,
               char *key, size_t len)
{
    char tmp[NETADDR_STRLEN + 8], buf[2048] = ""; /* hashed below if long */
    bool ok = true;

    if (r->keys & LK_CLIENT_IP) {
        netaddr_ip(&c->client, tmp, sizeof(tmp));
        ok &= part(buf, sizeof(buf), "ip", tmp, false);
    }
    if (r->keys & LK_CLIENT_NET) {
        client_net(c, r->net_v4, r->net_v6, tmp, sizeof(tmp));
        ok &= part(buf, sizeof(buf), "net", tmp, false);
    }
    if (r->keys & LK_HELO)
        ok &= part(buf, sizeof(buf), "helo", c->helo, true);
    if (r->keys & LK_SENDER)
        ok &= part(buf, sizeof(buf), "from", c->sender, true);
    if (r->keys & LK_SENDER_DOMAIN)
        ok &= part(buf, sizeof(buf), "fromdom",
                   c->sender && !c->sender[0] ? "" : domain_of(c->sender),
                   true);
    if (r->keys & LK_RCPT_DOMAIN)
        ok &= part(buf, sizeof(buf), "rcptdom", domain_of(c->rcpt), true);
    if (r->keys & LK_USER)
        ok &= part(buf, sizeof(buf), "user", c->auth_user, true);
    if (!ok)
        return false;
    shorten(buf, sizeof(buf));
    snprintf(key, len, "l:%s:%s", r->name, buf);
    return true;
}

/* ---- building a call --------------------------------------------------- */

static struct store_op *add_op(struct limit_call *call,
                               const struct limit_rule *r)
{
    if (call->n == MAX_OPS) {
        log_warn("limits: more than %d windows at one checkpoint; %s skipped",
                 MAX_OPS, r->name);
        return NULL;
    }
    call->rules[call->n] = r;
    memset(&call->ops[call->n], 0, sizeof(call->ops[0]));
    return &call->ops[call->n++];
}

static void add_windows(struct limit_call *call, const struct limit_rule *r,
                        const char *key, enum store_op_kind kind, double cost)
{
    for (size_t w = 0; w < r->nwindows; w++) {
        struct store_op *op = add_op(call, r);
        if (!op)
            return;
        op->kind = kind;
        snprintf(op->key, sizeof(op->key), "%s:%llu", key,
                 (unsigned long long)r->windows[w].period_ms);
        gcra_window_from_rate(&r->windows[w], &op->w);
        op->cost = cost > 0 ? cost : 1;
        op->dry_run = r->dry_run;
        if (r->escalate_after && kind == STORE_GCRA)
            op->strike_ttl_ms = r->escalate_within_ms;
    }
}

static void add_rule(struct limit_call *call, const struct limit_rule *r,
                     enum checkpoint cp, const struct engine_ctx *ctx)
{
    char key[LIMIT_KEY_MAX];
    struct store_op *op;

    if (!limit_counted_at(r->count, cp) || !limit_applies(r, ctx) ||
        !limit_key(r, ctx, key, sizeof(key)))
        return;
    switch (r->count) {
    case LIMIT_CONCURRENT:
        if (!(op = add_op(call, r)))
            return;
        op->kind = STORE_CONN_ACQUIRE;
        snprintf(op->key, sizeof(op->key), "%s:conn", key);
        op->limit = r->windows[0].count;
        op->dry_run = r->dry_run;
        if (r->escalate_after)
            op->strike_ttl_ms = r->escalate_within_ms;
        break;
    case LIMIT_FAILURES:
        add_windows(call, r, key, STORE_GCRA_PEEK, 1);
        break;
    case LIMIT_BYTES:
        add_windows(call, r, key, STORE_GCRA, (double)ctx->message_size);
        break;
    default:
        add_windows(call, r, key, STORE_GCRA, 1);
        break;
    }
}

/* ---- verdicts ---------------------------------------------------------- */

static void refuse(struct verdict *v, const struct limit_rule *r,
                   const struct limit_reply *rep)
{
    verdict_set(v, rep->code >= 500 ? VERDICT_REJECT : VERDICT_TEMPFAIL,
                rep->code, rep->enh, rep->text, NULL);
    v->disconnect = rep->code == 421;
    snprintf(v->check, sizeof(v->check), "limit:%.24s", r->name);
}

static void log_refusal(const struct limit_call *call, size_t i,
                        const struct engine_ctx *ctx, bool dry)
{
    const struct limit_rule *r = call->rules[i];
    const struct store_op *op = &call->ops[i];
    const struct store_result *res = &call->res[i];
    char rate[48] = "", key[STORE_KEY_MAX * 2];

    if (op->kind == STORE_CONN_ACQUIRE)
        snprintf(rate, sizeof(rate), "%llu at once",
                 (unsigned long long)op->limit);
    else
        for (size_t w = 0; w < r->nwindows; w++)
            if (strstr(op->key, ":") &&
                (unsigned long long)r->windows[w].period_ms ==
                    strtoull(strrchr(op->key, ':') + 1, NULL, 10))
                rate_format(&r->windows[w], rate, sizeof(rate));
    log_info("session=%s %slimit %s (%s, %s) exceeded: key=%s retry=%.0fs%s",
             ctx->session_id, dry ? "dry-run: " : "", r->name,
             limit_count_name(r->count), rate,
             log_sanitize(op->key, key, sizeof(key)), res->retry_us / 1e6,
             dry ? " (not enforced)" : "");
}

/* The share of op's allowance in use after this call (0 to 1). */
static double share_used(const struct store_op *op,
                         const struct store_result *res)
{
    switch (op->kind) {
    case STORE_GCRA:
        return gcra_share_used(&op->w, res->remaining);
    case STORE_GCRA_PEEK:
        /* a peek reports what would be left after one more: add it back */
        return gcra_share_used(&op->w, res->remaining +
                                           (res->allowed ? op->cost : 0));
    case STORE_CONN_ACQUIRE:
        return op->limit ? (double)res->current / (double)op->limit : 1;
    default:
        return 0;
    }
}

/* Remember how close to its enforced limits the client came (dry-run
 * limits only watch, so they do not count). */
static void note_usage(struct limit_state *st, const struct limit_call *call)
{
    double *used = st->cp == CP_CONNECT ? &st->used_session : &st->used_tx;

    for (size_t i = 0; i < call->n; i++) {
        double s;
        if (call->ops[i].dry_run)
            continue;
        s = share_used(&call->ops[i], &call->res[i]);
        if (s > *used)
            *used = s;
    }
}

double check_limits_share_used(struct engine_session *es)
{
    struct limit_state *st = *engine_session_state(es, &check_limits);

    if (!st)
        return 0;
    return st->used_session > st->used_tx ? st->used_session : st->used_tx;
}

/* Look at the results: refuse for the first enforced limit that said no. */
static void decide(struct limit_state *st, struct limit_call *call,
                   const struct engine_ctx *ctx, struct verdict *v)
{
    bool refused = false, dry = false;

    note_usage(st, call);
    for (size_t i = 0; i < call->n; i++) {
        const struct limit_rule *r = call->rules[i];
        if (call->res[i].allowed)
            continue;
        log_refusal(call, i, ctx, call->ops[i].dry_run);
        limit_stats_count(r->name, call->ops[i].dry_run);
        dry |= call->ops[i].dry_run;
        if (call->ops[i].dry_run || refused)
            continue;
        refused = true;
        bool escalate = r->escalate_after &&
                        call->res[i].strikes > r->escalate_after;
        refuse(v, r, escalate ? &r->escalate_reply : &r->reply);
    }
    metric_limit_check(refused ? "exceeded" : dry ? "dry_run" : "ok");
    /* Slots taken (the call passed: every enforced op allowed) are held
     * until the session closes, dry-run ones included. */
    for (size_t i = 0; !refused && i < call->n; i++) {
        if (call->ops[i].kind != STORE_CONN_ACQUIRE || !call->res[i].allowed)
            continue;
        void *p = realloc(st->held, (st->nheld + 1) * sizeof(*st->held));
        if (!p)
            break;
        st->held = p;
        memcpy(st->held[st->nheld++], call->ops[i].key, STORE_KEY_MAX);
    }
}

static void store_unavailable(const struct config *cfg, enum checkpoint cp,
                              struct verdict *v)
{
    if (!__atomic_exchange_n(&outage_logged, 1, __ATOMIC_RELAXED))
        log_err("limits: the store did not answer; %s until it does",
                cfg->store.on_failure == STORE_FAIL_CLOSED
                    ? "refusing with 4xx (on_failure: tempfail)"
                    : "accepting without counting (on_failure: accept)");
    metric_limit_check("store_error");
    if (cfg->store.on_failure != STORE_FAIL_CLOSED)
        return;
    if (cp == CP_CONNECT) {
        verdict_set(v, VERDICT_TEMPFAIL, 421, "4.3.0",
                    "Temporary local problem, try again later", NULL);
        v->disconnect = true;
    } else {
        verdict_set(v, VERDICT_TEMPFAIL, 451, "4.3.0",
                    "Temporary local problem, try again later", NULL);
    }
    snprintf(v->check, sizeof(v->check), "limit:store");
}

static void store_answered(void)
{
    if (__atomic_exchange_n(&outage_logged, 0, __ATOMIC_RELAXED))
        log_notice("limits: the store answers again");
}

/* ---- the check --------------------------------------------------------- */

static struct limit_state *state_of(struct engine_session *es)
{
    void **slot = engine_session_state(es, &check_limits);

    if (!*slot)
        *slot = calloc(1, sizeof(struct limit_state));
    return *slot;
}

static void call_done(void *arg, bool ok, struct store_result *res)
{
    struct limit_call *call = arg;
    struct limit_state *st = call->owner;
    struct engine_session *es = st->es;

    st->pending = NULL;
    if (ok) {
        store_answered();
        decide(st, call, st->ctx, st->v);
    } else {
        store_unavailable(engine_session_config(es), st->cp, st->v);
    }
    free(call);
    engine_check_done(es);
}

static void fire_done(void *arg, bool ok, struct store_result *res)
{
    free(arg); /* nobody waits for releases and failure counts */
}

/* Send a call nobody waits for (it may outlive the session). */
static void fire_and_forget(struct engine_session *es, struct limit_call *call)
{
    struct store_client *sc = engine_session_store(es);

    if (!sc || call->n == 0 ||
        store_run(sc, call->ops, call->n, call->res, fire_done, call, NULL) !=
            STORE_PENDING)
        free(call);
}

/* Session end: give back the connection slots it held. */
static void release_slots(struct engine_session *es)
{
    struct limit_state *st = *engine_session_state(es, &check_limits);
    struct limit_call *call;

    if (!st || st->nheld == 0 || !(call = calloc(1, sizeof(*call))))
        return;
    for (size_t i = 0; i < st->nheld && i < MAX_OPS; i++) {
        call->ops[i].kind = STORE_CONN_RELEASE;
        memcpy(call->ops[i].key, st->held[i], STORE_KEY_MAX);
        call->n++;
    }
    st->nheld = 0;
    fire_and_forget(es, call);
}

static enum engine_status limits_run(struct engine_session *es,
                                     enum checkpoint cp,
                                     const struct engine_ctx *ctx,
                                     struct verdict *v)
{
    const struct config *cfg = engine_session_config(es);
    struct store_client *sc = engine_session_store(es);
    struct limit_state *st;
    struct limit_call *call;

    if (cp == CP_CLOSE) {
        release_slots(es);
        return ENGINE_DONE;
    }
    if (cp == CP_MAIL && (st = *engine_session_state(es, &check_limits)))
        st->used_tx = 0; /* a new transaction */
    if (!cfg->policy || cfg->policy->nlimits == 0 || !sc)
        return ENGINE_DONE;
    if (!(call = calloc(1, sizeof(*call))))
        return ENGINE_DONE;
    for (size_t i = 0; i < cfg->policy->nlimits; i++)
        add_rule(call, &cfg->policy->limits[i], cp, ctx);
    if (call->n == 0 || !(st = state_of(es))) {
        free(call);
        return ENGINE_DONE;
    }
    st->es = es;
    st->ctx = ctx;
    st->v = v;
    st->cp = cp;
    call->owner = st;
    switch (store_run(sc, call->ops, call->n, call->res, call_done, call,
                      &call->handle)) {
    case STORE_PENDING:
        st->pending = call;
        return ENGINE_PENDING;
    case STORE_DONE:
        store_answered();
        decide(st, call, ctx, v);
        break;
    case STORE_FAILED:
        store_unavailable(cfg, cp, v);
        break;
    }
    free(call);
    return ENGINE_DONE;
}

/* A refused recipient or command: count it for failure limits. */
static void limits_note_failure(struct engine_session *es,
                                const struct engine_ctx *ctx)
{
    const struct config *cfg = engine_session_config(es);
    struct limit_call *call;
    char key[LIMIT_KEY_MAX];

    if (!cfg->policy || !(call = calloc(1, sizeof(*call))))
        return;
    for (size_t i = 0; i < cfg->policy->nlimits; i++) {
        const struct limit_rule *r = &cfg->policy->limits[i];
        if (r->count == LIMIT_FAILURES && limit_applies(r, ctx) &&
            limit_key(r, ctx, key, sizeof(key)))
            add_windows(call, r, key, STORE_GCRA_ADD, 1);
    }
    fire_and_forget(es, call);
}

static void limits_session_free(void *state)
{
    struct limit_state *st = state;

    if (st->pending) {
        store_call_cancel(st->pending->handle);
        free(st->pending);
    }
    free(st->held);
    free(st);
}

const struct check_ops check_limits = {
    .name = "limits",
    .checkpoints = CP_BIT(CP_CONNECT) | CP_BIT(CP_MAIL) | CP_BIT(CP_RCPT) |
                   CP_BIT(CP_EOM) | CP_BIT(CP_CLOSE),
    .run = limits_run,
    .note_failure = limits_note_failure,
    .session_free = limits_session_free,
};
