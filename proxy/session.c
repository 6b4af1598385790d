/*
 * session: lifecycle, client I/O, the reply and expect queues, the PROXY
 * header, the connect stage and the backend callbacks. Commands live in
 * session_cmd.c, DATA in session_data.c.
 */
#include "session.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "backend.h"
#include "config.h"
#include "conn.h"
#include "dns.h"
#include "log.h"
#include "metrics.h"
#include "proxyproto.h"
#include "runtime.h"
#include "server.h"
#include "session_int.h"
#include "smtp_reply.h"
#include "spool.h"
#include "tls.h"

/* Stop reading client input while this much output waits to be sent. */
#define OUTPUT_HIGH_WATER (256 * 1024)
/* libevent stops reading the socket when this much input is buffered. */
#define INPUT_HIGH_WATER (256 * 1024)

static void client_read(void *arg);
static void client_write(void *arg);
static void client_event(void *arg, short what);
static void connect_stage(struct session *s);
static void process_input(struct session *s);

static const struct backend_ops backend_callbacks;

unsigned long long ms_since(const struct timeval *t)
{
    struct timeval now;

    gettimeofday(&now, NULL);
    return (unsigned long long)(now.tv_sec - t->tv_sec) * 1000 +
           (unsigned long long)((now.tv_usec - t->tv_usec) / 1000);
}

/* ---- the reply queue ------------------------------------------------- */

struct slot *slot_new(struct session *s)
{
    struct slot *sl = calloc(1, sizeof(*sl));

    if (!sl)
        abort(); /* out of memory: nothing sensible to say to the client */
    if (s->qtail)
        s->qtail->next = sl;
    else
        s->qhead = sl;
    s->qtail = sl;
    s->qlen++;
    return sl;
}

void slot_fill(struct session *s, struct slot *sl, const char *text,
               size_t len)
{
    free(sl->text);
    sl->text = malloc(len + 1);
    if (!sl->text)
        abort();
    memcpy(sl->text, text, len);
    sl->text[len] = '\0';
    sl->len = len;
    sl->ready = true;
    flush_replies(s);
}

void slot_fill_str(struct session *s, struct slot *sl, const char *text)
{
    slot_fill(s, sl, text, strlen(text));
}

void relay_fill(struct session *s, struct slot *slot,
                const struct smtp_reply *r)
{
    slot_fill(s, slot, r->raw, r->len);
}

static void slot_vfill(struct session *s, struct slot *sl, bool close,
                       const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));
static void slot_vfill(struct session *s, struct slot *sl, bool close,
                       const char *fmt, va_list ap)
{
    char buf[1024];
    int n = vsnprintf(buf, sizeof(buf) - 2, fmt, ap);

    if (n < 0)
        n = 0;
    if ((size_t)n > sizeof(buf) - 3)
        n = (int)sizeof(buf) - 3;
    buf[n++] = '\r';
    buf[n++] = '\n';
    sl->close_after = close;
    slot_fill(s, sl, buf, (size_t)n);
}

void reply_local(struct session *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    slot_vfill(s, slot_new(s), false, fmt, ap);
    va_end(ap);
}

void reply_close(struct session *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    slot_vfill(s, slot_new(s), true, fmt, ap);
    va_end(ap);
}

/* A client error: answered, counted, and too many end the session. */
void reply_error(struct session *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    slot_vfill(s, slot_new(s), false, fmt, ap);
    va_end(ap);
    if (s->es) {
        ctx_refresh(s);
        engine_note_failure(s->es, &s->ctx);
    }
    if (++s->errors >= s->cfg->limits.max_errors) {
        snprintf(s->close_reason, sizeof(s->close_reason), "too many errors");
        reply_close(s, "421 4.7.0 %s Error: too many errors",
                    s->cfg->hostname);
    }
}

void reply_verdict(struct session *s, const struct verdict *v)
{
    if (v->disconnect)
        reply_close(s, "%d %s%s%s", v->code, v->enh, v->enh[0] ? " " : "",
                    v->text);
    else
        reply_local(s, "%d %s%s%s", v->code, v->enh, v->enh[0] ? " " : "",
                    v->text);
}

void flush_replies(struct session *s)
{
    while (s->qhead && s->qhead->ready) {
        struct slot *sl = s->qhead;
        bool close = sl->close_after;

        if (s->state != S_CLOSING)
            conn_write(s->cc, sl->text, sl->len);
        s->qhead = sl->next;
        if (!s->qhead)
            s->qtail = NULL;
        s->qlen--;
        free(sl->text);
        free(sl);
        if (close)
            session_close(s, "closed");
    }
}

/* ---- the expect queue ------------------------------------------------ */

static void backend_timeout_update(struct session *s)
{
    if (s->be && s->be_ready && !s->be_lost)
        backend_expect_reply(s->be, s->ehead ? s->ehead->timeout : 0);
}

struct expect *expect_push(struct session *s, expect_fn fn,
                           struct slot *slot, unsigned txid, unsigned timeout)
{
    struct expect *e = calloc(1, sizeof(*e));

    if (!e)
        abort();
    e->fn = fn;
    e->slot = slot;
    e->txid = txid;
    e->timeout = timeout;
    if (s->etail)
        s->etail->next = e;
    else
        s->ehead = e;
    s->etail = e;
    s->elen++;
    if (s->ehead == e)
        backend_timeout_update(s);
    return e;
}

static struct expect *expect_pop(struct session *s)
{
    struct expect *e = s->ehead;

    if (!e)
        return NULL;
    s->ehead = e->next;
    if (!s->ehead)
        s->etail = NULL;
    s->elen--;
    return e;
}

void backend_write(struct session *s, const char *data, size_t len)
{
    backend_send(s->be, data, len);
}

/* ---- timeouts -------------------------------------------------------- */

/*
 * The client is timed only while it owes us input. While it waits for a
 * reply we owe it, the backend's timeouts apply instead.
 */
void update_timeouts(struct session *s)
{
    const struct timeouts_conf *t = &s->cfg->timeouts;
    unsigned rd;
    bool waiting = s->qlen > 0 || s->engine_wait || s->state == S_EOM ||
                   s->state == S_CONNECT || s->state == S_CLOSING;

    if (!s->cc)
        return;
    rd = (s->state == S_DATA || s->state == S_BDAT) ? t->data : t->command;
    conn_set_timeouts(s->cc, waiting ? 0 : rd, t->command);
}

/* ---- engine context -------------------------------------------------- */

void ctx_refresh(struct session *s)
{
    struct engine_ctx *c = &s->ctx;

    c->session_id = s->id;
    c->listener = s->lc->name;
    c->client = s->client;
    c->local = s->local;
    c->client_name = s->name_status == NAME_OK ? s->client_name : NULL;
    c->helo = s->helo;
    c->esmtp = s->esmtp;
    c->tls = s->tls;
    c->auth_user = s->auth_user;
    c->sender = s->tx ? s->tx->sender : NULL;
    c->rcpts = s->tx ? (const char *const *)s->tx->rcpts : NULL;
    c->nrcpts = s->tx ? s->tx->nrcpts : 0;
}

/* ---- closing --------------------------------------------------------- */

static void log_disconnect(struct session *s)
{
    char helo[128], user[128];

    log_info("session=%s disconnect client=[%s]:%u listener=%s helo=<%s> "
             "tls=%s auth=%s commands=%u errors=%u transactions=%u "
             "duration=%.3fs reason=%s",
             s->id, s->client_ip, netaddr_port(&s->client), s->lc->name,
             log_sanitize(s->helo ? s->helo : "", helo, sizeof(helo)),
             s->tls ? s->tls_desc : "no",
             s->auth_user ? log_sanitize(s->auth_user, user, sizeof(user))
                          : "-",
             s->commands, s->errors, s->ntx, ms_since(&s->start) / 1000.0,
             s->close_reason[0] ? s->close_reason : "closed");
}

static void free_queues(struct session *s)
{
    while (s->qhead) {
        struct slot *sl = s->qhead;
        s->qhead = sl->next;
        free(sl->text);
        free(sl);
    }
    s->qtail = NULL;
    s->qlen = 0;
    struct expect *e;
    while ((e = expect_pop(s))) {
        free(e->data);
        free(e);
    }
}

static void session_free(struct session *s)
{
    struct verdict v;

    if (s->tx)
        tx_end(s, "aborted", s->close_reason[0] ? s->close_reason : "closed");
    if (s->es) {
        ctx_refresh(s);
        if (engine_run(s->es, CP_CLOSE, &s->ctx, &v, NULL, NULL) ==
            ENGINE_DONE)
            verdict_clear(&v);
    }
    log_disconnect(s);
    dns_lookup_cancel(s->dnsl);
    backend_free(s->be);
    engine_session_free(s->es);
    verdict_clear(&s->verdict);
    free_queues(s);
    conn_free(s->cc);
    if (s->ev_free)
        event_free(s->ev_free);
    free(s->cur.line);
    free(s->helo);
    free(s->helo_pending);
    free(s->held);
    free(s->bdat_error);
    for (size_t i = 0; i < XCLIENT_MAX_LINES - 1; i++)
        free(s->xclient_rest[i]);
    free(s->greeting);
    free(s->auth_user);
    if (s->auth_first) {
        memset(s->auth_first, 0, strlen(s->auth_first));
        free(s->auth_first);
    }
    free(s->client_name);
    free(s->ptr_name);
    loop_session_gone(s->loop, s);
    runtime_unref(s->rt);
    free(s);
}

static void free_cb(evutil_socket_t fd, short what, void *arg)
{
    session_free(arg);
}

/* Free from the loop, never from inside a callback that still uses s. */
static void schedule_free(struct session *s)
{
    if (s->free_pending)
        return;
    s->free_pending = true;
    event_active(s->ev_free, EV_TIMEOUT, 0);
}

void session_close(struct session *s, const char *reason)
{
    if (!s->close_reason[0])
        snprintf(s->close_reason, sizeof(s->close_reason), "%s", reason);
    if (s->state == S_CLOSING)
        return;
    s->state = S_CLOSING;
    /* TLS: close_notify goes behind the last reply, and the session ends
     * when both are in the kernel (client_write) */
    if (s->cc && conn_finish(s->cc)) {
        conn_read_enable(s->cc, false);
        update_timeouts(s);
        return;
    }
    if (!s->cc || evbuffer_get_length(conn_output(s->cc)) == 0) {
        schedule_free(s);
        return;
    }
    conn_read_enable(s->cc, false);
    update_timeouts(s); /* the write timeout bounds a client that never reads */
}

void session_abort(struct session *s)
{
    snprintf(s->close_reason, sizeof(s->close_reason), "shutdown");
    s->state = S_CLOSING;
    schedule_free(s);
}

void session_shutdown(struct session *s)
{
    s->draining = true;
    if (s->state == S_CLOSING)
        return;
    if (!s->tx && s->qlen == 0 && !s->engine_wait &&
        (s->state == S_COMMAND || s->state == S_REFUSED ||
         s->state == S_PROXY_HEADER || s->state == S_CONNECT))
        reply_close(s, "421 4.3.2 %s Service shutting down, try again later",
                    s->cfg->hostname);
}

/* ---- input processing ------------------------------------------------ */

/* After the client's EOF: is anything it sent still being answered? */
static bool eof_work_left(struct session *s)
{
    if (s->qlen > 0 || s->engine_wait || s->xclient_pending ||
        s->state == S_CONNECT || s->state == S_EOM)
        return true;
    if (s->state == S_DATA || s->state == S_BDAT ||
        s->state == S_PROXY_HEADER)
        return false; /* the rest will never come */
    return evbuffer_search_eol(conn_input(s->cc), NULL, NULL,
                               EVBUFFER_EOL_LF)
               .pos >= 0;
}

void session_resume(struct session *s)
{
    if (s->in_process || s->free_pending)
        return;
    s->in_process = true;
    process_input(s);
    s->in_process = false;
    if (s->free_pending)
        return;
    /* A client that half-closed after its last command still gets the
     * replies to everything it sent, as from Postfix; then we close. */
    if (s->client_eof && s->state != S_CLOSING && !eof_work_left(s)) {
        session_close(s, "client disconnected");
        return;
    }
    update_timeouts(s);
}

static bool output_full(struct session *s)
{
    return evbuffer_get_length(conn_output(s->cc)) >
           OUTPUT_HIGH_WATER;
}

/* Returns true when it made progress. */
static bool proxy_header_input(struct session *s)
{
    struct evbuffer *in = conn_input(s->cc);
    size_t avail = evbuffer_get_length(in);
    size_t n = avail < PROXYPROTO_MAX_HEADER ? avail : PROXYPROTO_MAX_HEADER;
    const unsigned char *p = evbuffer_pullup(in, (ev_ssize_t)n);
    struct proxyproto_result res;
    const char *why = NULL;

    if (n == 0)
        return false;
    switch (proxyproto_parse(p, n, &res, &why)) {
    case PROXYPROTO_NEED_MORE:
        return false;
    case PROXYPROTO_INVALID:
        log_warn("session=%s client=[%s]: bad PROXY header: %s", s->id,
                 s->client_ip, why ? why : "invalid");
        session_close(s, "bad PROXY header");
        return false;
    case PROXYPROTO_OK:
        break;
    }
    evbuffer_drain(in, res.header_len);
    if (!res.local) {
        s->client = res.src;
        s->local = res.dst;
        netaddr_ip(&s->client, s->client_ip, sizeof(s->client_ip));
    }
    if (s->lc->tls == LISTENER_TLS_IMPLICIT && s->rt->server_tls &&
        !session_start_tls(s)) {
        session_close(s, "TLS setup failed");
        return false;
    }
    connect_stage(s);
    return true;
}

static void process_input(struct session *s)
{
    for (;;) {
        if (s->state == S_CLOSING || s->free_pending || s->engine_wait ||
            output_full(s))
            return;
        switch (s->state) {
        case S_PROXY_HEADER:
            if (!proxy_header_input(s))
                return;
            continue;
        case S_CONNECT:
        case S_EOM:
        case S_CLOSING:
            return;
        case S_DATA:
            data_input(s);
            if (s->state == S_DATA)
                return;
            continue;
        case S_BDAT:
            bdat_input(s);
            if (s->state == S_BDAT)
                return;
            continue;
        default:
            break;
        }
        if (s->xclient_pending)
            return; /* nothing may overtake XCLIENT (RFC 2920 sync) */
        if (s->barrier && s->qlen > 0)
            return;
        s->barrier = false;
        if (s->qlen >= s->cfg->limits.max_pipeline)
            return;
        if (evbuffer_get_length(conn_input(s->cc)) == 0)
            return;
        if (!cmd_dispatch(s))
            return; /* waiting: more input, or earlier replies */
    }
}

/* ---- client connection ----------------------------------------------- */

static void client_read(void *arg)
{
    session_resume(arg);
}

static void client_write(void *arg)
{
    struct session *s = arg;

    if (s->state == S_CLOSING) {
        schedule_free(s);
        return;
    }
    session_resume(s);
}

static void on_tls_ready(struct session *s)
{
    SSL *ssl = conn_ssl(s->cc);

    s->tls = true;
    tls_describe(ssl, s->tls_desc, sizeof(s->tls_desc));
    log_debug("session=%s TLS established: %s", s->id, s->tls_desc);
}

static void client_event(void *arg, short what)
{
    struct session *s = arg;

    if (what & BEV_EVENT_CONNECTED) {
        on_tls_ready(s);
        session_resume(s);
        return;
    }
    if (s->state == S_CLOSING) {
        schedule_free(s);
        return;
    }
    if (what & BEV_EVENT_TIMEOUT) {
        log_info("session=%s client=[%s] timeout in state %d", s->id,
                 s->client_ip, s->state);
        snprintf(s->close_reason, sizeof(s->close_reason), "timeout");
        if (what & BEV_EVENT_READING) {
            reply_close(s, "421 4.4.2 %s Error: timeout exceeded",
                        s->cfg->hostname);
            return;
        }
        session_close(s, "timeout");
        schedule_free(s);
        return;
    }
    if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR)) {
        s->client_eof = true;
        snprintf(s->close_reason, sizeof(s->close_reason),
                 "client disconnected");
        session_resume(s);
        return;
    }
    if (what & BEV_EVENT_ERROR) {
        unsigned long e = conn_tls_error(s->cc);
        char buf[160];
        if (e) {
            ERR_error_string_n(e, buf, sizeof(buf));
            log_info("session=%s client=[%s] TLS error: %s", s->id,
                     s->client_ip, buf);
        }
    }
    s->state = S_CLOSING; /* nobody to write to */
    snprintf(s->close_reason, sizeof(s->close_reason), "%s",
             (what & BEV_EVENT_EOF) ? "client disconnected" : "client error");
    schedule_free(s);
}

static const struct conn_ops client_ops = {
    .read = client_read,
    .write = client_write,
    .event = client_event,
};

/* Start TLS on the client connection (STARTTLS or implicit). */
bool session_start_tls(struct session *s)
{
    SSL *ssl = SSL_new(s->rt->server_tls);

    if (!ssl)
        return false;
    if (conn_start_tls(s->cc, ssl, true) != 0) {
        SSL_free(ssl);
        return false;
    }
    conn_set_timeouts(s->cc, s->cfg->timeouts.tls_handshake,
                      s->cfg->timeouts.tls_handshake);
    return true;
}

/* ---- connect stage --------------------------------------------------- */

static bool needs_client_name(const struct session *s)
{
    return s->cfg->backend.identity == IDENTITY_XCLIENT &&
           s->cfg->dns.resolve_client;
}

/*
 * The greeting waits for the backend and, for XCLIENT, for the client's
 * name, so the first command can be relayed at once.
 */
static void try_greet(struct session *s)
{
    struct slot *sl;

    if (s->state != S_CONNECT || !s->greeting || !s->name_done)
        return;
    sl = slot_new(s);
    sl->close_after = s->greeting_code == 421;
    s->state = S_COMMAND; /* after a 554 the backend answers 503 itself */
    slot_fill(s, sl, s->greeting, s->greeting_len);
    free(s->greeting);
    s->greeting = NULL;
}

static void name_done(void *arg, enum name_status st, const char *name,
                      const char *ptr);

static void start_backend(struct session *s)
{
    struct backend_params p = {&s->client, &s->local, s->id};

    if (needs_client_name(s)) {
        struct dns *d = loop_dns(s->loop);
        s->dnsl = d ? dns_client_name(d, &s->client, name_done, s) : NULL;
        if (!s->dnsl) {
            s->name_done = true;
            s->name_status = NAME_TEMPUNAVAIL;
        }
    } else {
        s->name_done = true;
        s->name_status = NAME_UNAVAILABLE;
    }
    s->be = backend_new(s->loop->base, s->rt, &p, &backend_callbacks, s);
    if (!s->be && s->state == S_CONNECT)
        reply_close(s, "421 4.3.0 %s Service temporarily unavailable",
                    s->cfg->hostname);
}

static void connect_verdict(struct session *s, struct verdict *v)
{
    char name[64];

    if (v->action == VERDICT_ACCEPT) {
        start_backend(s);
        return;
    }
    log_info("session=%s reject: CONNECT from [%s]: %d %s %s; check=%s",
             s->id, s->client_ip, v->code, v->enh,
             log_sanitize(v->text, name, sizeof(name)), v->check);
    metric_conn_refused(v->check);
    metric_rejection("connect", v->check);
    if (v->action == VERDICT_TEMPFAIL || v->disconnect) {
        s->state = S_COMMAND;
        reply_close(s, "%d %s%s%s", v->code >= 400 ? v->code : 421, v->enh,
                    v->enh[0] ? " " : "", v->text);
        return;
    }
    /* RFC 5321 3.1: a 554 greeting, then 503 to all but QUIT. */
    s->state = S_REFUSED;
    reply_local(s, "%d %s%s%s", v->code, v->enh, v->enh[0] ? " " : "",
                v->text);
}

static void connect_done(void *arg, struct verdict *v)
{
    struct session *s = arg;

    s->engine_wait = false;
    connect_verdict(s, v);
    verdict_clear(v);
    session_resume(s);
}

static void connect_stage(struct session *s)
{
    s->state = S_CONNECT;
    ctx_refresh(s);
    if (engine_run(s->es, CP_CONNECT, &s->ctx, &s->verdict, connect_done,
                   s) == ENGINE_PENDING) {
        s->engine_wait = true;
        return;
    }
    connect_verdict(s, &s->verdict);
    verdict_clear(&s->verdict);
}

static void name_done(void *arg, enum name_status st, const char *name,
                      const char *ptr)
{
    struct session *s = arg;

    s->dnsl = NULL;
    s->name_done = true;
    s->name_status = st;
    if (name)
        s->client_name = strdup(name);
    if (ptr)
        s->ptr_name = strdup(ptr);
    try_greet(s);
    session_resume(s);
}

/* ---- backend callbacks ----------------------------------------------- */

static void be_ready(void *arg, struct smtp_reply *greeting)
{
    struct session *s = arg;

    s->be_ready = true;
    if (backend_has_caps(s->be))
        s->caps = *backend_caps(s->be);
    s->greeting = greeting->raw;
    s->greeting_len = greeting->len;
    s->greeting_code = greeting->code;
    memset(greeting, 0, sizeof(*greeting)); /* we own the text now */
    if (s->greeting_code != 220) {
        log_info("session=%s backend %s greeted with %d", s->id,
                 backend_peer(s->be), s->greeting_code);
        metric_backend_error("greeting");
    }
    try_greet(s);
    session_resume(s);
}

static void be_reply(void *arg, struct smtp_reply *r)
{
    struct session *s = arg;
    struct expect *e;
    char last[256];

    if (s->state == S_CLOSING)
        return;
    e = expect_pop(s);
    if (!e) {
        /* Unsolicited: a backend about to close says 421 first. */
        log_warn("session=%s backend %s sent an unexpected reply: %s", s->id,
                 backend_peer(s->be), smtp_reply_last(r, last, sizeof(last)));
        s->be_lost = true;
        backend_lost_now(s);
        session_resume(s);
        return;
    }
    backend_timeout_update(s);
    e->fn(s, r, e->slot, e->txid, e->data);
    free(e->data);
    free(e);
    session_resume(s);
}

static void be_failed(void *arg, const char *why)
{
    struct session *s = arg;
    struct expect *e;

    if (s->state == S_CLOSING)
        return;
    log_warn("session=%s client=[%s] %s", s->id, s->client_ip, why);
    metric_backend_error(s->be_ready ? "lost" : "connect");
    if (!s->be_ready) {
        if (s->cfg->backend.on_unavailable == BACKEND_DOWN_DEFER &&
            s->state == S_CONNECT) {
            s->be_deferred = true;
            s->state = S_COMMAND;
            reply_local(s, "220 %s ESMTP", s->cfg->hostname);
        } else {
            s->state = S_COMMAND;
            snprintf(s->close_reason, sizeof(s->close_reason),
                     "backend unavailable");
            reply_close(s,
                        "421 4.3.2 %s Service temporarily unavailable, "
                        "try again later",
                        s->cfg->hostname);
        }
        session_resume(s);
        return;
    }
    s->be_lost = true;
    s->xclient_pending = 0; /* nothing more goes to this backend */
    free(s->held);
    s->held = NULL;
    snprintf(s->close_reason, sizeof(s->close_reason), "backend lost");
    /* Every reply still owed: a temporary failure, never a success. */
    while ((e = expect_pop(s))) {
        expect_abandon(s, e);
        free(e->data);
        free(e);
    }
    backend_lost_now(s);
    session_resume(s);
}

static void be_drained(void *arg)
{
    data_drained(arg);
}

static const struct backend_ops backend_callbacks = {
    .ready = be_ready,
    .reply = be_reply,
    .failed = be_failed,
    .drained = be_drained,
};

/* ---- creation -------------------------------------------------------- */

static void nodelay(evutil_socket_t fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static bool create_client_conn(struct session *s, evutil_socket_t fd)
{
    s->cc = conn_new(s->loop->base, fd, &client_ops, s);
    if (!s->cc)
        return false;
    conn_set_read_high(s->cc, INPUT_HIGH_WATER);
    /* Implicit TLS starts at once, unless a PROXY header comes first. */
    if (s->lc->tls == LISTENER_TLS_IMPLICIT && s->rt->server_tls &&
        !s->lc->proxy_protocol)
        return session_start_tls(s);
    return true;
}

struct session *session_new(struct loop *lp, struct runtime *rt,
                            const struct listener_conf *lc,
                            evutil_socket_t fd, const struct sockaddr *peer,
                            int peerlen)
{
    struct session *s = calloc(1, sizeof(*s));
    struct sockaddr_storage ss;
    socklen_t sslen = sizeof(ss);

    if (!s) {
        evutil_closesocket(fd);
        return NULL;
    }
    s->loop = lp;
    s->rt = runtime_ref(rt);
    s->cfg = rt->cfg;
    s->lc = lc;
    gettimeofday(&s->start, NULL);
    loop_new_id(s->loop, s->id);
    netaddr_from_sockaddr(&s->client, peer, (socklen_t)peerlen);
    netaddr_ip(&s->client, s->client_ip, sizeof(s->client_ip));
    if (getsockname(fd, (struct sockaddr *)&ss, &sslen) == 0)
        netaddr_from_sockaddr(&s->local, (struct sockaddr *)&ss, sslen);
    nodelay(fd);
    s->ev_free = event_new(lp->base, -1, 0, free_cb, s);
    s->es = engine_session_new(rt->cfg, lp->base, loop_store(lp));
    verdict_init(&s->verdict);
    loop_session_add(lp, s);
    if (!s->ev_free || !s->es || !create_client_conn(s, fd)) {
        if (!s->cc)
            evutil_closesocket(fd);
        log_err("session: out of memory");
        s->state = S_CLOSING;
        session_free(s);
        return NULL;
    }
    if (lc->proxy_protocol) {
        if (!cidr_list_match(&s->cfg->trusted_proxies, &s->client)) {
            log_warn("session=%s client=[%s] refused: PROXY header expected "
                     "from a trusted upstream only",
                     s->id, s->client_ip);
            metric_conn_refused("proxy_protocol");
            session_close(s, "untrusted PROXY peer");
            return s;
        }
        s->state = S_PROXY_HEADER;
        update_timeouts(s);
        return s;
    }
    connect_stage(s);
    update_timeouts(s);
    return s;
}
