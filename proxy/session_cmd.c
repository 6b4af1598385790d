/*
 * session_cmd: the SMTP command table and what each command does.
 *
 * The table is the whole dispatch (Postfix-style): a row per verb with its
 * pipelining flags, its engine checkpoint, a check() that validates it in
 * the current state and a proceed() that relays or answers it once the
 * engine accepted. Replies from the backend come back through the expect
 * queue to the *_reply functions at the end of the file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "backend.h"
#include "conn.h"
#include "config.h"
#include "log.h"
#include "metrics.h"
#include "runtime.h"
#include "sasl.h"
#include "session_int.h"
#include "smtp_reply.h"
#include "spool.h"

static bool check_helo(struct session *s);
static void proceed_helo(struct session *s);
static bool check_mail(struct session *s);
static void proceed_mail(struct session *s);
static bool check_rcpt(struct session *s);
static void proceed_rcpt(struct session *s);
static bool check_data(struct session *s);
static bool check_noargs(struct session *s);
static void proceed_rset(struct session *s);
static void proceed_relay(struct session *s);
static void proceed_quit(struct session *s);
static bool check_starttls(struct session *s);
static void proceed_starttls(struct session *s);
static bool check_auth(struct session *s);
static void proceed_auth(struct session *s);
static void proceed_bdat(struct session *s);
static bool check_unknown(struct session *s);

static void helo_reply(struct session *s, struct smtp_reply *r,
                       struct slot *slot, unsigned txid, const char *data);
static void mail_reply(struct session *s, struct smtp_reply *r,
                       struct slot *slot, unsigned txid, const char *data);
static void rcpt_reply(struct session *s, struct smtp_reply *r,
                       struct slot *slot, unsigned txid, const char *data);
static void relay_reply(struct session *s, struct smtp_reply *r,
                        struct slot *slot, unsigned txid, const char *data);
static void quit_reply(struct session *s, struct smtp_reply *r,
                       struct slot *slot, unsigned txid, const char *data);
static void auth_reply(struct session *s, struct smtp_reply *r,
                       struct slot *slot, unsigned txid, const char *data);
static void xclient_reply(struct session *s, struct smtp_reply *r,
                          struct slot *slot, unsigned txid, const char *data);

#define NO_CP CP__COUNT
#define SB CMD_SYNC_BEFORE
#define LAST CMD_LAST
#define BE CMD_BACKEND

/* RFC 2920: EHLO, DATA, VRFY, EXPN, TURN, QUIT and NOOP end a group. */
static const struct cmd_def commands[] = {
    {VERB_HELO, SB | LAST | BE, CP_HELO, check_helo, proceed_helo},
    {VERB_EHLO, SB | LAST | BE, CP_HELO, check_helo, proceed_helo},
    {VERB_MAIL, BE, CP_MAIL, check_mail, proceed_mail},
    {VERB_RCPT, BE, CP_RCPT, check_rcpt, proceed_rcpt},
    {VERB_DATA, SB | LAST | BE, CP_DATA, check_data, data_begin},
    {VERB_BDAT, SB | BE, NO_CP, NULL, proceed_bdat},
    {VERB_RSET, BE, NO_CP, check_noargs, proceed_rset},
    {VERB_NOOP, LAST | BE, NO_CP, NULL, proceed_relay},
    {VERB_QUIT, LAST, NO_CP, NULL, proceed_quit},
    {VERB_VRFY, LAST | BE, NO_CP, NULL, proceed_relay},
    {VERB_EXPN, LAST | BE, NO_CP, NULL, proceed_relay},
    {VERB_HELP, LAST | BE, NO_CP, NULL, proceed_relay},
    {VERB_ETRN, LAST | BE, NO_CP, NULL, proceed_relay},
    {VERB_STARTTLS, SB | LAST, NO_CP, check_starttls, proceed_starttls},
    {VERB_AUTH, SB | LAST | BE, NO_CP, check_auth, proceed_auth},
    /* Never relayed: only Warden may tell the backend who the client is. */
    {VERB_XCLIENT, 0, NO_CP, check_unknown, NULL},
    {VERB_XFORWARD, 0, NO_CP, check_unknown, NULL},
    {VERB_UNKNOWN, 0, NO_CP, check_unknown, NULL},
};

const struct cmd_def *cmd_lookup(enum smtp_verb v)
{
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (commands[i].verb == v)
            return &commands[i];
    return &commands[sizeof(commands) / sizeof(commands[0]) - 1];
}

static const char *host(const struct session *s)
{
    return s->cfg->hostname;
}

static unsigned reply_timeout(const struct session *s)
{
    return s->cfg->timeouts.backend_reply;
}

/* The current command's argument as a NUL-terminated string. */
static char *cur_args(const struct session *s)
{
    return strndup(s->cur.cmd.args, s->cur.cmd.args_len);
}

static void finish_cur(struct session *s)
{
    free(s->cur.line);
    memset(&s->cur, 0, sizeof(s->cur));
    s->have_cur = false;
}

/* ---- transactions ------------------------------------------------------ */

static struct tx *tx_new(struct session *s, const char *sender)
{
    struct tx *tx = calloc(1, sizeof(*tx));

    if (!tx || !(tx->sender = strdup(sender)))
        abort();
    tx->id = ++s->next_txid;
    gettimeofday(&tx->start, NULL);
    verdict_init(&tx->eom);
    return tx;
}

static void tx_free(struct tx *tx)
{
    for (size_t i = 0; i < tx->nrcpts; i++)
        free(tx->rcpts[i]);
    free(tx->rcpts);
    free(tx->sender);
    spool_free(tx->spool);
    if (tx->scanned)
        evbuffer_free(tx->scanned);
    verdict_clear(&tx->eom);
    free(tx);
}

static void rcpt_list(const struct tx *tx, char *buf, size_t len)
{
    size_t o = 0;
    char clean[SMTP_ADDR_MAX];

    buf[0] = '\0';
    for (size_t i = 0; i < tx->nrcpts && o + 4 < len; i++) {
        int n = snprintf(buf + o, len - o, "%s<%s>", i ? "," : "",
                         log_sanitize(tx->rcpts[i], clean, sizeof(clean)));
        if (n < 0 || (size_t)n >= len - o)
            break;
        o += (size_t)n;
    }
}

/* One log line per transaction, then the transaction is gone. */
void tx_end(struct session *s, const char *outcome, const char *reply)
{
    struct tx *tx = s->tx;
    char to[1024], from[SMTP_ADDR_MAX], helo[128], rep[300], user[128];
    char checks[256];

    if (!tx)
        return;
    s->tx = NULL;
    if (tx->mail_ok) {
        s->ntx++;
        metric_transaction(outcome);
        rcpt_list(tx, to, sizeof(to));
        log_info("session=%s tx=%u client=[%s]:%u helo=<%s> tls=%s auth=%s "
                 "from=<%s> to=%s nrcpt=%zu refused_rcpt=%u size=%zu "
                 "check=%s%s result=%s reply=\"%s\" delay=%.3fs",
                 s->id, tx->id, s->client_ip, netaddr_port(&s->client),
                 log_sanitize(s->helo ? s->helo : "", helo, sizeof(helo)),
                 s->tls ? s->tls_desc : "no",
                 s->auth_user ? log_sanitize(s->auth_user, user, sizeof(user))
                              : "-",
                 log_sanitize(tx->sender, from, sizeof(from)), to[0] ? to : "-",
                 tx->nrcpts, tx->rcpts_refused, tx->ds.size,
                 tx->eom.check[0] ? tx->eom.check : "-",
                 engine_summary(s->es, checks, sizeof(checks)), outcome,
                 log_sanitize(reply ? reply : "", rep, sizeof(rep)),
                 ms_since(&tx->start) / 1000.0);
    }
    tx_free(tx);
}

/* Postfix-style line for a command refused by Warden or the backend. */
static void log_reject(struct session *s, const char *what, const char *reply,
                       const char *check)
{
    char rep[300], line[200], cmd[200];
    size_t n = s->cur.line ? s->cur.len - 2 : 0; /* without CRLF */

    snprintf(cmd, sizeof(cmd), "%.*s", (int)(n < sizeof(cmd) ? n : 199),
             s->cur.line ? s->cur.line : "");
    log_info("session=%s reject: %s from [%s]: %s; command=\"%s\" check=%s",
             s->id, what, s->client_ip, log_sanitize(reply, rep, sizeof(rep)),
             log_sanitize(cmd, line, sizeof(line)),
             check ? check : "backend");
    metric_rejection(what, check ? check : "backend");
}

/* ---- backend trouble --------------------------------------------------- */

/*
 * The backend is gone (or never came, in defer mode). Inside a transaction
 * the client hears 451 for it; outside, 421 and the session ends.
 */
void backend_lost_now(struct session *s)
{
    if (s->state == S_EOM)
        data_backend_lost(s);
    if (s->state == S_EOM || s->state == S_DATA || s->tx || s->qlen > 0)
        return; /* answered where the transaction ends */
    if (s->state == S_COMMAND || s->state == S_AUTH)
        reply_close(s, "421 4.4.2 %s Error: backend connection lost",
                    host(s));
}

/* A command that needs the backend when there is none. */
static void no_backend_reply(struct session *s)
{
    enum smtp_verb v = s->cur.cmd.verb;

    if (s->be_deferred) {
        if (v == VERB_EHLO)
            reply_local(s, "250-%s\r\n250-PIPELINING\r\n"
                           "250 ENHANCEDSTATUSCODES", host(s));
        else if (v == VERB_HELO)
            reply_local(s, "250 %s", host(s));
        else if (v == VERB_NOOP || v == VERB_RSET)
            reply_local(s, "250 2.0.0 Ok");
        else
            reply_local(s, "451 4.3.0 Error: mail service unavailable, "
                           "try again later");
        return;
    }
    if (s->tx) {
        tx_end(s, "tempfail", "451 4.4.2 backend connection lost");
        reply_local(s, "451 4.4.2 Error: backend connection lost");
        return;
    }
    reply_close(s, "421 4.4.2 %s Error: backend connection lost", host(s));
}

void expect_abandon(struct session *s, struct expect *e)
{
    /* XCLIENT's slot belongs to the command behind it, answered by that
     * command's own entry. */
    if (!e->slot || e->fn == xclient_reply)
        return;
    if (e->fn == quit_reply) {
        /* 221 ends the session: nothing may follow it, not even the 421
         * that backend_lost_now() sends next (found by fuzz_session) */
        e->slot->close_after = true;
        slot_fill_str(s, e->slot, "221 2.0.0 Bye\r\n");
    } else
        slot_fill_str(s, e->slot, "451 4.4.2 Error: backend connection lost\r\n");
}

/* ---- dispatch ---------------------------------------------------------- */

static void after_command(struct session *s, const struct cmd_def *def)
{
    finish_cur(s);
    if (def->flags & CMD_LAST)
        s->barrier = true;
}

static void refused_command(struct session *s)
{
    if (s->cur.cmd.verb == VERB_QUIT)
        reply_close(s, "221 2.0.0 Bye");
    else
        reply_error(s, "503 5.7.0 Error: access denied");
}

static void engine_done(void *arg, struct verdict *v)
{
    struct session *s = arg;

    (void)v; /* the same as s->verdict */
    s->engine_wait = false;
    cmd_after_verdict(s);
    session_resume(s);
}

void cmd_after_verdict(struct session *s)
{
    const struct cmd_def *def = s->cur.def;
    struct verdict *v = &s->verdict;

    if (v->action == VERDICT_ACCEPT) {
        def->proceed(s);
    } else {
        char reply[VERDICT_TEXT_MAX + 32];
        snprintf(reply, sizeof(reply), "%d %s %s", v->code, v->enh, v->text);
        log_reject(s, smtp_verb_name(def->verb), reply, v->check);
        reply_verdict(s, v);
    }
    verdict_clear(v);
    after_command(s, def);
}

static void run_command(struct session *s)
{
    const struct cmd_def *def = s->cur.def;

    if (s->state == S_REFUSED) {
        refused_command(s);
        after_command(s, def);
        return;
    }
    if (s->draining && !s->tx && def->verb != VERB_QUIT) {
        reply_close(s, "421 4.3.2 %s Service shutting down, try again later",
                    host(s));
        after_command(s, def);
        return;
    }
    if ((def->flags & CMD_BACKEND) && (s->be_lost || s->be_deferred)) {
        no_backend_reply(s);
        after_command(s, def);
        return;
    }
    if (def->check && !def->check(s)) {
        after_command(s, def);
        return;
    }
    if (def->cp != NO_CP) {
        ctx_refresh(s);
        if (def->verb == VERB_MAIL)
            s->ctx.sender = s->cur.path.addr;
        if (def->verb == VERB_RCPT)
            s->ctx.rcpt = s->cur.path.addr;
        if (engine_run(s->es, def->cp, &s->ctx, &s->verdict, engine_done, s) ==
            ENGINE_PENDING) {
            s->engine_wait = true;
            return;
        }
        cmd_after_verdict(s);
        return;
    }
    def->proceed(s);
    after_command(s, def);
}

static const char *line_problem_text(enum smtp_line_problem p)
{
    switch (p) {
    case LINE_NUL:
        return "500 5.5.2 Error: NUL character in command";
    case LINE_BARE_CR:
        return "500 5.5.2 Error: bare <CR> received";
    default:
        return "500 5.5.2 Error: bare <LF> received";
    }
}

/* RFC 4954: SASL responses, and AUTH with an initial response, may be
 * longer than other commands. */
static size_t line_limit(const struct session *s, struct evbuffer *in)
{
    const struct limits_conf *l = &s->cfg->limits;
    char head[5];

    if (s->state == S_AUTH)
        return l->max_auth_line;
    if (evbuffer_copyout(in, head, 5) == 5 &&
        strncasecmp(head, "AUTH ", 5) == 0)
        return l->max_auth_line > l->max_command_line ? l->max_auth_line
                                                      : l->max_command_line;
    return l->max_command_line;
}

/* Read one line and act on it. Returns false when waiting for input or
 * for earlier replies (CMD_SYNC_BEFORE). */
bool cmd_dispatch(struct session *s)
{
    struct evbuffer *in = conn_input(s->cc);
    size_t limit = line_limit(s, in);
    struct evbuffer_ptr eol = evbuffer_search_eol(in, NULL, NULL,
                                                  EVBUFFER_EOL_LF);
    size_t total;

    if (eol.pos < 0) {
        size_t avail = evbuffer_get_length(in);
        if (s->skip_line || avail > limit) {
            evbuffer_drain(in, avail); /* the rest of an over-long line */
            s->skip_line = true;
        }
        return false;
    }
    total = (size_t)eol.pos + 1;
    if (s->skip_line || total > limit) {
        evbuffer_drain(in, total);
        s->skip_line = false;
        reply_error(s, "500 5.5.2 Error: line too long");
        return true;
    }
    char *data = (char *)evbuffer_pullup(in, (ev_ssize_t)total);
    enum smtp_line_problem problem = smtp_line_check(data, total);
    if (problem != LINE_OK) {
        evbuffer_drain(in, total);
        reply_error(s, "%s", line_problem_text(problem));
        return true;
    }
    if (s->state == S_AUTH) {
        char *line = strndup(data, total);
        evbuffer_drain(in, total);
        auth_response(s, line, total);
        memset(line, 0, total);
        free(line);
        return true;
    }
    struct smtp_cmd peek;
    smtp_cmd_parse(data, total - 2, &peek);
    const struct cmd_def *def = cmd_lookup(peek.verb);
    if ((def->flags & CMD_SYNC_BEFORE) && s->qlen > 0)
        return false;
    s->cur.line = strndup(data, total);
    if (!s->cur.line)
        abort();
    s->cur.len = total;
    evbuffer_drain(in, total);
    smtp_cmd_parse(s->cur.line, total - 2, &s->cur.cmd);
    s->cur.def = def;
    s->have_cur = true;
    s->commands++;
    run_command(s);
    return true;
}

/* ---- relaying ---------------------------------------------------------- */

/*
 * Before the first command the backend sees, tell it who the client is.
 * XCLIENT is pipelined with that command; if the backend refuses it, the
 * command's reply slot gets a 421 instead and the session ends, so nothing
 * is ever relayed under Warden's own address.
 */
static bool send_xclient(struct session *s, struct slot *slot)
{
    char lines[XCLIENT_MAX_LINES][XCLIENT_LINE_MAX + 1];
    char *helo = NULL;
    enum smtp_verb v = s->cur.cmd.verb;
    struct xclient_info info = {
        .client = &s->client,
        .local = &s->local,
        .name_status = s->name_status,
        .name = s->client_name,
        .reverse_name = s->ptr_name,
    };
    size_t n;

    if (s->cfg->backend.identity != IDENTITY_XCLIENT || s->xclient_sent)
        return true;
    s->xclient_sent = true;
    if (!s->caps.xclient_announced) {
        log_err("session=%s backend %s does not offer XCLIENT to Warden: "
                "list Warden in its smtpd_authorized_xclient_hosts",
                s->id, backend_peer(s->be));
        slot->close_after = true;
        slot_fill_str(s, slot, "421 4.3.0 Error: mail service unavailable\r\n");
        return false;
    }
    if (v == VERB_HELO || v == VERB_EHLO) {
        helo = cur_args(s);
        info.helo = helo;
        info.proto = v == VERB_EHLO ? "ESMTP" : "SMTP";
    }
    info.login = s->auth_user;
    n = xclient_build(s->caps.xclient, &info, lines, XCLIENT_MAX_LINES);
    /* One XCLIENT at a time: each resets the backend's session. */
    for (size_t i = 0; i < n; i++) {
        if (i == 0)
            backend_write(s, lines[i], strlen(lines[i]));
        else if (!(s->xclient_rest[i - 1] = strdup(lines[i])))
            abort();
        expect_push(s, xclient_reply, slot, 0, reply_timeout(s));
    }
    s->xclient_pending = s->xclient_total = (unsigned)n;
    free(helo);
    return true;
}

/* Relay the current line; its reply goes to a new slot through fn. */
static struct expect *relay(struct session *s, expect_fn fn, unsigned txid,
                            unsigned timeout)
{
    struct slot *slot = slot_new(s);

    if (!send_xclient(s, slot))
        return NULL;
    if (s->xclient_pending) {
        /* Postfix resets after XCLIENT and wants its 220 seen first. */
        s->held = strndup(s->cur.line, s->cur.len);
        s->held_len = s->cur.len;
        if (!s->held)
            abort();
    } else {
        backend_write(s, s->cur.line, s->cur.len);
    }
    return expect_push(s, fn, slot, txid, timeout);
}

static void proceed_relay(struct session *s)
{
    relay(s, relay_reply, 0, reply_timeout(s));
}

static void relay_reply(struct session *s, struct smtp_reply *r,
                        struct slot *slot, unsigned txid, const char *data)
{
    relay_fill(s, slot, r);
}

static void xclient_reply(struct session *s, struct smtp_reply *r,
                          struct slot *slot, unsigned txid, const char *data)
{
    char last[256];

    if (smtp_reply_class(r) == 2) {
        if (s->xclient_pending == 0)
            return;
        s->xclient_pending--;
        unsigned next = s->xclient_total - s->xclient_pending - 1;
        if (s->xclient_pending > 0 && s->xclient_rest[next]) {
            backend_write(s, s->xclient_rest[next],
                          strlen(s->xclient_rest[next]));
            free(s->xclient_rest[next]);
            s->xclient_rest[next] = NULL;
        } else if (s->xclient_pending == 0 && s->held) {
            backend_write(s, s->held, s->held_len);
            free(s->held);
            s->held = NULL;
        }
        return;
    }
    log_err("session=%s backend %s refused XCLIENT: %s (is Warden in its "
            "smtpd_authorized_xclient_hosts?)",
            s->id, backend_peer(s->be),
            smtp_reply_last(r, last, sizeof(last)));
    metric_backend_error("xclient");
    slot->close_after = true;
    slot_fill_str(s, slot, "421 4.3.0 Error: mail service unavailable\r\n");
    session_close(s, "backend refused XCLIENT");
}

/* ---- HELO / EHLO ------------------------------------------------------- */

static bool check_helo(struct session *s)
{
    if (s->cur.cmd.args_len == 0) {
        reply_error(s, "501 5.5.4 Syntax: %s hostname",
                    smtp_verb_name(s->cur.cmd.verb));
        return false;
    }
    free(s->helo_pending);
    s->helo_pending = cur_args(s);
    /* Checks at CP_HELO see the name being offered. */
    free(s->helo);
    s->helo = strdup(s->helo_pending);
    return true;
}

static void proceed_helo(struct session *s)
{
    if (s->tx)
        tx_end(s, "aborted", s->cur.cmd.verb == VERB_EHLO ? "EHLO" : "HELO");
    struct expect *e = relay(s, helo_reply, 0, reply_timeout(s));
    if (e && !(e->data = strdup(s->cur.cmd.verb == VERB_EHLO ? "E" : "H")))
        abort();
}

static void helo_reply(struct session *s, struct smtp_reply *r,
                       struct slot *slot, unsigned txid, const char *data)
{
    bool ehlo = data && data[0] == 'E';

    if (smtp_reply_class(r) != 2) {
        relay_fill(s, slot, r);
        return;
    }
    s->esmtp = ehlo;
    s->chunking_offered = false;
    if (!ehlo) {
        relay_fill(s, slot, r);
        return;
    }
    smtp_caps_parse(r, &s->caps);
    s->size_limit = ehlo_effective_size(&s->caps,
                                        s->cfg->limits.max_message_size);
    bool tls_offered = s->lc->tls == LISTENER_TLS_STARTTLS &&
                       s->rt->server_tls && !s->tls;
    /* BDAT goes to the backend as BDAT: offered only if it takes it. */
    s->chunking_offered = s->caps.chunking;
    struct ehlo_view view = {
        .offer_starttls = tls_offered,
        .hide_auth = s->cfg->auth_requires_tls && tls_offered,
        .relay_chunking = s->chunking_offered,
        .max_size = s->cfg->limits.max_message_size,
    };
    struct evbuffer *out = evbuffer_new();
    if (!out)
        abort();
    ehlo_filter(r, &view, out);
    size_t n = evbuffer_get_length(out);
    slot_fill(s, slot, (const char *)evbuffer_pullup(out, -1), n);
    evbuffer_free(out);
}

/* ---- MAIL / RCPT ------------------------------------------------------- */

static bool check_mail(struct session *s)
{
    struct smtp_path *p = &s->cur.path;
    unsigned long long limit = s->size_limit ? s->size_limit
                                             : s->cfg->limits.max_message_size;

    if (s->tx) {
        reply_error(s, "503 5.5.1 Error: nested MAIL command");
        return false;
    }
    switch (smtp_path_parse(s->cur.cmd.args, s->cur.cmd.args_len, "FROM:", p)) {
    case PATH_SYNTAX:
        reply_error(s, "501 5.5.4 Syntax: MAIL FROM:<address>");
        return false;
    case PATH_BAD_ADDR:
        reply_error(s, "501 5.1.7 Bad sender address syntax");
        return false;
    case PATH_BAD_PARAM:
        reply_error(s, "501 5.5.4 Bad MAIL FROM parameter syntax");
        return false;
    case PATH_OK:
        break;
    }
    if (p->has_size && limit && p->size > limit) {
        reply_local(s, "552 5.3.4 Message size exceeds fixed limit");
        return false;
    }
    return true;
}

static void proceed_mail(struct session *s)
{
    s->tx = tx_new(s, s->cur.path.addr);
    relay(s, mail_reply, s->tx->id, reply_timeout(s));
}

static void mail_reply(struct session *s, struct smtp_reply *r,
                       struct slot *slot, unsigned txid, const char *data)
{
    struct tx *tx = s->tx && s->tx->id == txid ? s->tx : NULL;
    char last[256];

    if (tx) {
        if (smtp_reply_class(r) == 2) {
            tx->mail_ok = true;
        } else {
            log_info("session=%s reject: MAIL from [%s]: %s; from=<%s>", s->id,
                     s->client_ip, smtp_reply_last(r, last, sizeof(last)),
                     tx->sender);
            metric_rejection("mail", "backend");
            tx_end(s, "refused", last);
        }
    }
    relay_fill(s, slot, r);
}

static bool check_rcpt(struct session *s)
{
    struct smtp_path *p = &s->cur.path;

    if (!s->tx) {
        reply_error(s, "503 5.5.1 Error: need MAIL command");
        return false;
    }
    switch (smtp_path_parse(s->cur.cmd.args, s->cur.cmd.args_len, "TO:", p)) {
    case PATH_SYNTAX:
        reply_error(s, "501 5.5.4 Syntax: RCPT TO:<address>");
        return false;
    case PATH_BAD_ADDR:
        reply_error(s, "501 5.1.3 Bad recipient address syntax");
        return false;
    case PATH_BAD_PARAM:
        reply_error(s, "501 5.5.4 Bad RCPT TO parameter syntax");
        return false;
    case PATH_OK:
        break;
    }
    if (p->addr[0] == '\0') {
        reply_error(s, "501 5.1.3 Bad recipient address syntax");
        return false;
    }
    if (s->tx->rcpts_sent >= s->cfg->limits.max_recipients) {
        /* a client that sends the rest in another transaction, as RFC
         * 5321 asks, is fine; one that keeps going is counted */
        if (++s->tx->rcpts_over > s->cfg->limits.recipient_overshoot)
            reply_error(s, "452 4.5.3 Error: too many recipients");
        else
            reply_local(s, "452 4.5.3 Error: too many recipients");
        return false;
    }
    return true;
}

static void proceed_rcpt(struct session *s)
{
    struct expect *e = relay(s, rcpt_reply, s->tx->id, reply_timeout(s));

    s->tx->rcpts_sent++;
    if (e && !(e->data = strdup(s->cur.path.addr)))
        abort();
}

static void tx_add_rcpt(struct tx *tx, const char *addr)
{
    if (tx->nrcpts == tx->cap) {
        size_t cap = tx->cap ? tx->cap * 2 : 4;
        char **v = realloc(tx->rcpts, cap * sizeof(*v));
        if (!v)
            abort();
        tx->rcpts = v;
        tx->cap = cap;
    }
    if (!(tx->rcpts[tx->nrcpts++] = strdup(addr)))
        abort();
}

static void rcpt_reply(struct session *s, struct smtp_reply *r,
                       struct slot *slot, unsigned txid, const char *data)
{
    struct tx *tx = s->tx && s->tx->id == txid ? s->tx : NULL;
    char last[256], to[SMTP_ADDR_MAX];

    if (tx && smtp_reply_class(r) == 2) {
        tx_add_rcpt(tx, data);
    } else if (tx) {
        tx->rcpts_refused++;
        ctx_refresh(s);
        s->ctx.rcpt = data;
        engine_note_failure(s->es, &s->ctx);
        log_info("session=%s reject: RCPT from [%s]: %s; from=<%s> to=<%s>",
                 s->id, s->client_ip, smtp_reply_last(r, last, sizeof(last)),
                 tx->sender, log_sanitize(data, to, sizeof(to)));
        metric_rejection("rcpt", "backend");
    }
    relay_fill(s, slot, r);
}

/* ---- DATA, BDAT -------------------------------------------------------- */

static bool check_data(struct session *s)
{
    if (s->cur.cmd.args_len) {
        reply_error(s, "501 5.5.4 Syntax: DATA");
        return false;
    }
    if (!s->tx || !s->tx->mail_ok) {
        reply_error(s, "503 5.5.1 Error: need MAIL command");
        return false;
    }
    if (s->tx->chunked) {
        reply_error(s, "503 5.5.1 Error: DATA after BDAT");
        return false;
    }
    if (s->tx->nrcpts == 0) {
        if (s->tx->rcpts_sent == 0)
            reply_error(s, "503 5.5.1 Error: need RCPT command");
        else
            reply_local(s, "554 5.5.1 Error: no valid recipients");
        return false;
    }
    ctx_refresh(s);
    return true;
}

/* "BDAT size [LAST]" (RFC 3030); false when malformed. */
static bool parse_bdat(const char *a, size_t len, unsigned long long *size,
                       bool *last)
{
    size_t i = 0;

    *size = 0;
    if (len == 0)
        return false;
    for (; i < len && a[i] >= '0' && a[i] <= '9'; i++) {
        if (i >= 19)
            return false;
        *size = *size * 10 + (unsigned)(a[i] - '0');
    }
    if (i == 0)
        return false;
    *last = false;
    if (i == len)
        return true;
    if (len - i == 5 && strncasecmp(a + i, " LAST", 5) == 0) {
        *last = true;
        return true;
    }
    return false;
}

/* Why this chunk cannot be taken, or NULL. Its bytes are read either way:
 * the size says where the next command starts. */
static const char *bdat_refusal(struct session *s, unsigned long long size)
{
    unsigned long long limit = s->size_limit ? s->size_limit
                                             : s->cfg->limits.max_message_size;

    if (!s->chunking_offered)
        return "502 5.5.1 Error: command not implemented";
    if (!s->tx || !s->tx->mail_ok)
        return "503 5.5.1 Error: need MAIL command";
    if (s->tx->nrcpts == 0)
        return s->tx->rcpts_sent ? "554 5.5.1 Error: no valid recipients"
                                 : "503 5.5.1 Error: need RCPT command";
    if (s->tx->ds.size + size > limit)
        return "552 5.3.4 Message size exceeds fixed limit";
    return NULL;
}

static void proceed_bdat(struct session *s)
{
    unsigned long long size;
    bool last;

    if (!parse_bdat(s->cur.cmd.args, s->cur.cmd.args_len, &size, &last)) {
        /* Without a size the chunk cannot be told from the next command. */
        reply_close(s, "501 5.5.4 Syntax: BDAT chunk-size [LAST]");
        return;
    }
    bdat_begin(s, size, last, bdat_refusal(s, size));
}

static bool check_unknown(struct session *s)
{
    reply_error(s, "502 5.5.2 Error: command not recognized");
    return false;
}

/* ---- RSET, QUIT -------------------------------------------------------- */

static bool check_noargs(struct session *s)
{
    if (s->cur.cmd.args_len) {
        reply_error(s, "501 5.5.4 Syntax: %s",
                    smtp_verb_name(s->cur.cmd.verb));
        return false;
    }
    return true;
}

static void proceed_rset(struct session *s)
{
    if (s->tx)
        tx_end(s, "aborted", "RSET");
    proceed_relay(s);
}

static void proceed_quit(struct session *s)
{
    if (s->tx)
        tx_end(s, "aborted", "QUIT");
    snprintf(s->close_reason, sizeof(s->close_reason), "quit");
    if (s->be_lost || s->be_deferred || !s->be_ready) {
        reply_close(s, "221 2.0.0 Bye");
        return;
    }
    relay(s, quit_reply, 0, reply_timeout(s));
}

static void quit_reply(struct session *s, struct smtp_reply *r,
                       struct slot *slot, unsigned txid, const char *data)
{
    slot->close_after = true;
    relay_fill(s, slot, r);
}

/* ---- STARTTLS ---------------------------------------------------------- */

static bool check_starttls(struct session *s)
{
    if (s->cur.cmd.args_len) {
        reply_error(s, "501 5.5.4 Syntax: STARTTLS");
        return false;
    }
    if (s->tls) {
        reply_error(s, "554 5.5.1 Error: TLS already active");
        return false;
    }
    if (s->lc->tls != LISTENER_TLS_STARTTLS || !s->rt->server_tls) {
        reply_error(s, "502 5.5.1 Error: command not implemented");
        return false;
    }
    if (s->tx) {
        reply_error(s, "503 5.5.1 Error: MAIL transaction in progress");
        return false;
    }
    return true;
}

/*
 * RFC 3207 and CVE-2011-0411: whatever the client pipelined after STARTTLS
 * was sent in clear text and must not be executed inside TLS.
 */
static void proceed_starttls(struct session *s)
{
    struct evbuffer *in = conn_input(s->cc);
    size_t junk = evbuffer_get_length(in);

    reply_local(s, "220 2.0.0 Ready to start TLS");
    if (junk) {
        log_info("session=%s client=[%s] discarded %zu bytes pipelined after "
                 "STARTTLS",
                 s->id, s->client_ip, junk);
        evbuffer_drain(in, junk);
    }
    /* Forget what the client said in clear text; it must EHLO again. */
    free(s->helo);
    s->helo = NULL;
    s->esmtp = false;
    s->chunking_offered = false;
    if (!session_start_tls(s))
        session_close(s, "TLS setup failed");
}

/* ---- AUTH -------------------------------------------------------------- */

static bool check_auth(struct session *s)
{
    bool tls_possible = s->lc->tls == LISTENER_TLS_STARTTLS &&
                        s->rt->server_tls;

    if (s->cur.cmd.args_len == 0) {
        reply_error(s, "501 5.5.4 Syntax: AUTH mechanism");
        return false;
    }
    if (s->auth_done) {
        reply_error(s, "503 5.5.1 Error: already authenticated");
        return false;
    }
    if (s->tx) {
        reply_error(s, "503 5.5.1 Error: MAIL transaction in progress");
        return false;
    }
    if (s->cfg->auth_requires_tls && tls_possible && !s->tls) {
        reply_error(s, "538 5.7.11 Encryption required for requested "
                       "authentication mechanism");
        return false;
    }
    return true;
}

static void proceed_auth(struct session *s)
{
    const char *a = s->cur.cmd.args, *end = a + s->cur.cmd.args_len;
    const char *sp = memchr(a, ' ', s->cur.cmd.args_len);
    size_t mlen = (size_t)((sp ? sp : end) - a);

    snprintf(s->auth_mech, sizeof(s->auth_mech), "%.*s",
             (int)(mlen < sizeof(s->auth_mech) ? mlen
                                               : sizeof(s->auth_mech) - 1),
             a);
    if (sp && sp + 1 < end) {
        free(s->auth_first);
        s->auth_first = strndup(sp + 1, (size_t)(end - sp - 1));
    }
    relay(s, auth_reply, 0, reply_timeout(s));
}

static void auth_wipe(struct session *s)
{
    if (s->auth_first) {
        memset(s->auth_first, 0, strlen(s->auth_first));
        free(s->auth_first);
        s->auth_first = NULL;
    }
}

/* A SASL response line from the client, relayed as is. */
void auth_response(struct session *s, const char *line, size_t len)
{
    struct slot *slot;

    if (!s->auth_first && !(len == 3 && line[0] == '*'))
        s->auth_first = strndup(line, len - 2);
    slot = slot_new(s);
    backend_write(s, line, len);
    expect_push(s, auth_reply, slot, 0, reply_timeout(s));
    s->barrier = true;
}

static void auth_accepted(struct session *s)
{
    char user[256];

    sasl_user(s->auth_mech, s->auth_first ? s->auth_first : "",
              s->auth_first ? strlen(s->auth_first) : 0, user, sizeof(user));
    free(s->auth_user);
    s->auth_user = strdup(user[0] ? user : "(unknown)");
    s->auth_done = true;
    log_info("session=%s client=[%s] authenticated: method=%s user=%s",
             s->id, s->client_ip, s->auth_mech, s->auth_user);
}

static void auth_reply(struct session *s, struct smtp_reply *r,
                       struct slot *slot, unsigned txid, const char *data)
{
    if (r->code == 334) {
        s->state = S_AUTH;
        relay_fill(s, slot, r);
        return;
    }
    s->state = S_COMMAND;
    if (r->code == 235) {
        auth_accepted(s);
        auth_wipe(s);
        ctx_refresh(s);
        if (engine_run(s->es, CP_AUTH, &s->ctx, &s->verdict, NULL, NULL) ==
                ENGINE_DONE &&
            s->verdict.action != VERDICT_ACCEPT) {
            /* The backend already trusts this session: end it. */
            char reply[VERDICT_TEXT_MAX + 32];
            snprintf(reply, sizeof(reply), "%d %s %s", s->verdict.code,
                     s->verdict.enh, s->verdict.text);
            log_reject(s, "AUTH", reply, s->verdict.check);
            slot->close_after = true;
            snprintf(reply, sizeof(reply), "%d %s%s%s\r\n",
                     s->verdict.code >= 500 ? 535 : 454, s->verdict.enh,
                     s->verdict.enh[0] ? " " : "", s->verdict.text);
            slot_fill(s, slot, reply, strlen(reply));
            verdict_clear(&s->verdict);
            return;
        }
        verdict_clear(&s->verdict);
    } else {
        auth_wipe(s);
    }
    relay_fill(s, slot, r);
}
