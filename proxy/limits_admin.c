/*
 * limits_admin: reports for `warden limits show|reset` and
 * `warden policy test` (see limits_admin.h).
 */
#include "limits_admin.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "gcra.h"
#include "limit_rules.h"
#include "policy.h"
#include "score_rules.h"

static int set_field(struct who *w, const char *k, const char *v, char *err,
                     size_t len)
{
    struct { const char *name; char *dst; size_t cap; unsigned bits; } f[] = {
        {"user", w->user, sizeof(w->user), LK_USER},
        {"sender", w->sender, sizeof(w->sender),
         LK_SENDER | LK_SENDER_DOMAIN},
        {"helo", w->helo, sizeof(w->helo), LK_HELO},
        {"rcpt", w->rcpt, sizeof(w->rcpt), LK_RCPT_DOMAIN},
        {"listener", w->listener, sizeof(w->listener), 0},
    };

    if (strcmp(k, "ip") == 0) {
        if (netaddr_from_ip(&w->ctx.client, v, 0) != 0) {
            snprintf(err, len, "ip=%s: not an IP address", v);
            return -1;
        }
        w->given |= LK_CLIENT_IP | LK_CLIENT_NET;
        return 0;
    }
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
        if (strcmp(k, f[i].name) != 0)
            continue;
        snprintf(f[i].dst, f[i].cap, "%s", v);
        w->given |= f[i].bits;
        return 0;
    }
    snprintf(err, len,
             "%s: unknown; use ip=, user=, sender=, helo=, rcpt=, listener=",
             k);
    return -1;
}

int who_parse(int argc, char **argv, struct who *w, char *err, size_t len)
{
    memset(w, 0, sizeof(*w));
    netaddr_from_ip(&w->ctx.client, "0.0.0.0", 0);
    snprintf(w->listener, sizeof(w->listener), "smtp");
    if (argc == 0) {
        snprintf(err, len, "say who: ip=ADDRESS, user=NAME, sender=ADDRESS,"
                           " helo=NAME, rcpt=ADDRESS (several may combine)");
        return -1;
    }
    for (int i = 0; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (!eq || eq == argv[i] || !eq[1]) {
            snprintf(err, len, "%s: expected name=value", argv[i]);
            return -1;
        }
        *eq = '\0';
        int rc = set_field(w, argv[i], eq + 1, err, len);
        *eq = '=';
        if (rc != 0)
            return -1;
    }
    w->ctx.session_id = "admin";
    w->ctx.listener = w->listener;
    w->ctx.helo = w->helo[0] ? w->helo : NULL;
    w->ctx.sender = w->sender[0] ? w->sender : NULL;
    w->ctx.rcpt = w->rcpt[0] ? w->rcpt : NULL;
    w->ctx.auth_user = w->user[0] ? w->user : NULL;
    return 0;
}

static const char *duration(double us, char *buf, size_t len)
{
    unsigned long long s = (unsigned long long)ceil(us / 1e6);

    if (s >= 3600)
        snprintf(buf, len, "%lluh%02llum", s / 3600, s / 60 % 60);
    else if (s >= 60)
        snprintf(buf, len, "%llum%02llus", s / 60, s % 60);
    else
        snprintf(buf, len, "%llus", s);
    return buf;
}

/* Requests of cost 1 the window still allows, from its stored state. */
static double window_left(const struct gcra_window *w,
                          const struct store_key_info *i, double *full_in_us)
{
    double tat = i->exists && i->tat_us > i->now_us ? i->tat_us : i->now_us;

    *full_in_us = tat - i->now_us;
    double left = (i->now_us + w->tolerance_us - tat) / w->emission_us;
    return left > 0 ? floor(left + 1e-9) : 0;
}

/* The share of a window this request would leave used, as the limits
 * check measures it for WARDEN_LIMIT_NEAR: a failures limit is only
 * looked at (what is used already), the others count this request. */
static double window_share(const struct limit_rule *r,
                           const struct gcra_window *w, double left)
{
    return gcra_share_used(w, r->count == LIMIT_FAILURES ? left : left - 1);
}

/* near: scoring's limit_near for this session, 0 when nothing scores. */
static void report_near(const struct limit_rule *r, double share, double near,
                        FILE *out)
{
    if (near > 0 && !r->dry_run && share >= near - 1e-9)
        fprintf(out, "  near its threshold: %.0f%% used with this request; "
                     "WARDEN_LIMIT_NEAR hits (scoring limit_near %.0f%%)\n",
                share * 100, near * 100);
}

/* One limit's windows; returns whether a request of cost 1 would pass.
 * near: see report_near. */
static bool report_rule(const struct limit_rule *r, const char *key,
                        bool reset, double near, const struct counter_io *io,
                        FILE *out)
{
    char k[STORE_KEY_MAX], rate[48], d[32];
    struct store_key_info info;
    double share = 0;
    bool ok = true;

    fprintf(out, "limit %s (%s%s) key %s:\n", r->name,
            limit_count_name(r->count), r->dry_run ? ", dry run" : "", key);
    if (r->count == LIMIT_CONCURRENT) {
        snprintf(k, sizeof(k), "%s:conn", key);
        if (io->show(io->arg, k, &info) != 0) {
            fprintf(out, "  store unreachable\n");
            return true;
        }
        fprintf(out, "  %llu of %llu connections open\n",
                (unsigned long long)info.conn_count,
                (unsigned long long)r->windows[0].count);
        if (info.conn_count < r->windows[0].count)
            report_near(r, (double)(info.conn_count + 1) /
                               (double)r->windows[0].count,
                        near, out);
        return info.conn_count < r->windows[0].count;
    }
    for (size_t i = 0; i < r->nwindows; i++) {
        struct gcra_window w;
        double full_in;
        snprintf(k, sizeof(k), "%s:%llu", key,
                 (unsigned long long)r->windows[i].period_ms);
        rate_format(&r->windows[i], rate, sizeof(rate));
        if (io->show(io->arg, k, &info) != 0) {
            fprintf(out, "  %s: store unreachable\n", rate);
            continue;
        }
        gcra_window_from_rate(&r->windows[i], &w);
        double left = window_left(&w, &info, &full_in);
        if (full_in <= 0)
            fprintf(out, "  %s: unused, %.0f allowed now\n", rate, left);
        else
            fprintf(out, "  %s: %.0f allowed now; full allowance again in "
                         "%s\n",
                    rate, left, duration(full_in, d, sizeof(d)));
        if (info.strikes)
            fprintf(out, "  refused %llu times recently (escalation after "
                         "%u)\n",
                    (unsigned long long)info.strikes, r->escalate_after);
        ok &= left >= 1;
        if (left >= 1 && window_share(r, &w, left) > share)
            share = window_share(r, &w, left);
        if (reset && io->reset(io->arg, k) == 0)
            fprintf(out, "  %s: reset\n", rate);
    }
    if (ok)
        report_near(r, share, near, out);
    return ok;
}

int limits_report(const struct config *cfg, const struct who *w, bool reset,
                  const struct counter_io *io, FILE *out)
{
    char key[LIMIT_KEY_MAX];
    size_t shown = 0;

    for (size_t i = 0; cfg->policy && i < cfg->policy->nlimits; i++) {
        const struct limit_rule *r = &cfg->policy->limits[i];
        if ((r->keys & ~w->given) != 0)
            continue; /* counted by something not given here */
        shown++;
        if (!limit_applies(r, &w->ctx) ||
            !limit_key(r, &w->ctx, key, sizeof(key))) {
            fprintf(out, "limit %s: does not apply (scope or exemption)\n",
                    r->name);
            continue;
        }
        report_rule(r, key, reset, 0, io, out);
    }
    if (shown == 0)
        fprintf(out, "no limit is keyed by what was given\n");
    return 0;
}

/* ---- policy test ------------------------------------------------------- */

static const char *const stages[] = {"connect", "MAIL", "RCPT", "end of data"};

static bool counted_in_stage(enum limit_count c, size_t stage)
{
    static const unsigned at[] = {
        [LIMIT_CONCURRENT] = 1u << 0, [LIMIT_CONNECTIONS] = 1u << 0,
        [LIMIT_MESSAGES] = 1u << 1,   [LIMIT_RECIPIENTS] = 1u << 2,
        [LIMIT_BYTES] = 1u << 3,
        [LIMIT_FAILURES] = (1u << 1) | (1u << 2),
    };
    return at[c] & (1u << stage);
}

static void test_access(const struct config *cfg, const struct who *w,
                        FILE *out, bool *refused)
{
    const struct access_rule *a =
        cfg->policy ? policy_access_match(cfg->policy, w->listener,
                                          &w->ctx.client)
                    : NULL;

    if (!a || a->action == ACCESS_ACCEPT) {
        fprintf(out, "connect: access %s\n",
                a ? "accepted by rule" : "accepted (no rule matches)");
        return;
    }
    fprintf(out, "connect: access rule %s (%s) answers %d %s %s\n", a->name,
            a->where, a->code, a->enh, a->text);
    *refused = true;
}

/* The share of a limit at which WARDEN_LIMIT_NEAR hits for this who;
 * 0 when no scoring applies to the session. */
static double limit_near_for(const struct config *cfg, const struct who *w)
{
    const struct score_policy *sp = cfg->policy ? cfg->policy->scoring : NULL;

    if (!sp || !sp->rules ||
        !auth_scope_applies(&sp->scope, w->ctx.listener, &w->ctx.client,
                            w->ctx.auth_user != NULL) ||
        !score_threshold_for(sp, w->ctx.listener))
        return 0;
    return sp->limit_near;
}

int policy_test(const struct config *cfg, const struct who *w,
                const struct counter_io *io, FILE *out)
{
    bool refused = false;
    char key[LIMIT_KEY_MAX];
    double near = limit_near_for(cfg, w);

    test_access(cfg, w, out, &refused);
    for (size_t st = 0; st < 4 && !refused; st++) {
        for (size_t i = 0; cfg->policy && i < cfg->policy->nlimits; i++) {
            const struct limit_rule *r = &cfg->policy->limits[i];
            if (!counted_in_stage(r->count, st))
                continue;
            if (!limit_applies(r, &w->ctx) ||
                !limit_key(r, &w->ctx, key, sizeof(key))) {
                fprintf(out, "%s: limit %s does not apply\n", stages[st],
                        r->name);
                continue;
            }
            fprintf(out, "%s: ", stages[st]);
            if (!report_rule(r, key, false, near, io, out) && !r->dry_run) {
                fprintf(out, "%s: refused by limit %s: %d %s %s\n",
                        stages[st], r->name, r->reply.code, r->reply.enh,
                        r->reply.text);
                refused = true;
            }
        }
    }
    fprintf(out, "verdict: %s\n", refused ? "refused" : "accepted");
    return refused ? 1 : 0;
}
