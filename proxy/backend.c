/*
 * backend: connection setup and reply framing towards the backend MTA.
 */
#include "backend.h"

#include <errno.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/err.h>

#include "config.h"
#include "conn.h"
#include "log.h"
#include "proxyproto.h"
#include "runtime.h"
#include "tls.h"

enum backend_state {
    BE_CONNECTING,
    BE_GREETING,
    BE_EHLO,
    BE_STARTTLS,
    BE_HANDSHAKE,
    BE_EHLO_TLS,
    BE_READY,
    BE_DEAD,
};

struct backend {
    struct event_base *base;
    struct runtime *rt;
    struct conn *conn;
    const struct backend_ops *ops;
    void *arg;
    enum backend_state state;
    size_t addr_index;               /* which configured address */
    struct netaddr client, local;
    char session_id[24];
    char peer[NETADDR_STRLEN];
    struct smtp_reply pending;       /* reply being assembled */
    struct smtp_reply greeting;      /* kept until ready */
    struct smtp_caps caps;
    bool has_caps;
    bool tls;
    bool drain_wanted;
};

static void be_read(void *arg);
static void be_write(void *arg);
static void be_event(void *arg, short what);
static void be_connect_next(struct backend *b, const char *why);

static const struct conn_ops backend_conn_ops = {
    .read = be_read,
    .write = be_write,
    .event = be_event,
};

static const struct config *cfg_of(const struct backend *b)
{
    return b->rt->cfg;
}

static void set_read_timeout(struct backend *b, unsigned ms)
{
    /* Writes are bounded by the same timeout as the reply they await. */
    conn_set_timeouts(b->conn, ms, cfg_of(b)->timeouts.backend_reply);
}

/* The end of this backend: report once, then stay silent. */
static void be_fail(struct backend *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void be_fail(struct backend *b, const char *fmt, ...)
{
    char why[300];
    va_list ap;

    if (b->state == BE_DEAD)
        return;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    b->state = BE_DEAD;
    if (b->conn)
        conn_read_enable(b->conn, false);
    b->ops->failed(b->arg, why);
}

static void nodelay(struct conn *c)
{
    int one = 1;
    evutil_socket_t fd = conn_fd(c);

    if (fd >= 0)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static void send_proxy_header(struct backend *b)
{
    enum client_identity id = cfg_of(b)->backend.identity;
    unsigned char hdr[PROXYPROTO_MAX_HEADER];
    size_t n;

    if (id != IDENTITY_PROXY_V1 && id != IDENTITY_PROXY_V2)
        return;
    n = proxyproto_build(id == IDENTITY_PROXY_V1 ? 1 : 2, &b->client,
                         &b->local, hdr, sizeof(hdr));
    conn_write(b->conn, hdr, n);
}

/* Warden's own EHLO is needed to see XCLIENT and STARTTLS. */
static bool wants_ehlo(const struct backend *b)
{
    const struct backend_conf *bc = &cfg_of(b)->backend;
    return bc->identity == IDENTITY_XCLIENT || bc->tls != BACKEND_TLS_NONE;
}

static void send_ehlo(struct backend *b, enum backend_state next)
{
    const struct config *cfg = cfg_of(b);
    const char *name = cfg->backend.helo_name ? cfg->backend.helo_name
                                              : cfg->hostname;

    evbuffer_add_printf(conn_output(b->conn), "EHLO %s\r\n", name);
    b->state = next;
    set_read_timeout(b, cfg->timeouts.backend_reply);
}

static void become_ready(struct backend *b)
{
    b->state = BE_READY;
    set_read_timeout(b, 0);
    b->ops->ready(b->arg, &b->greeting);
    smtp_reply_reset(&b->greeting);
}

static void start_tls(struct backend *b)
{
    SSL *ssl = tls_backend_ssl_new(b->rt->backend_tls, cfg_of(b));

    if (!ssl) {
        be_fail(b, "backend TLS: %s", "cannot create SSL");
        return;
    }
    /* conn_start_tls discards anything the backend sent before the
     * handshake: it may not be trusted. */
    if (conn_start_tls(b->conn, ssl, false) != 0) {
        SSL_free(ssl);
        be_fail(b, "backend TLS: %s", "cannot start");
        return;
    }
    b->state = BE_HANDSHAKE;
    set_read_timeout(b, cfg_of(b)->timeouts.tls_handshake);
}

static void on_ehlo_reply(struct backend *b, struct smtp_reply *r)
{
    enum backend_tls tls = cfg_of(b)->backend.tls;

    if (smtp_reply_class(r) != 2) {
        char last[256];
        if (tls == BACKEND_TLS_REQUIRE) {
            be_fail(b, "backend refused EHLO: %s",
                    smtp_reply_last(r, last, sizeof(last)));
            return;
        }
        become_ready(b); /* the session reports XCLIENT trouble itself */
        return;
    }
    smtp_caps_parse(r, &b->caps);
    b->has_caps = true;
    if (b->state == BE_EHLO && tls != BACKEND_TLS_NONE) {
        if (b->caps.starttls) {
            conn_write(b->conn, "STARTTLS\r\n", 10);
            b->state = BE_STARTTLS;
            return;
        }
        if (tls == BACKEND_TLS_REQUIRE) {
            be_fail(b, "backend %s does not offer STARTTLS", b->peer);
            return;
        }
    }
    become_ready(b);
}

/* A complete reply during setup or afterwards. */
static void on_reply(struct backend *b, struct smtp_reply *r)
{
    char last[256];

    switch (b->state) {
    case BE_GREETING:
        b->greeting = *r;
        memset(r, 0, sizeof(*r));
        if (smtp_reply_class(&b->greeting) == 2 && wants_ehlo(b))
            send_ehlo(b, BE_EHLO);
        else
            become_ready(b);
        break;
    case BE_EHLO:
    case BE_EHLO_TLS:
        on_ehlo_reply(b, r);
        break;
    case BE_STARTTLS:
        if (r->code == 220)
            start_tls(b);
        else if (cfg_of(b)->backend.tls == BACKEND_TLS_REQUIRE)
            be_fail(b, "backend refused STARTTLS: %s",
                    smtp_reply_last(r, last, sizeof(last)));
        else
            become_ready(b);
        break;
    case BE_READY:
        b->ops->reply(b->arg, r);
        break;
    default:
        break;
    }
    smtp_reply_reset(r);
}

static void be_read(void *arg)
{
    struct backend *b = arg;
    struct evbuffer *in = conn_input(b->conn);

    while (b->state != BE_DEAD && b->state != BE_HANDSHAKE) {
        size_t len;
        char *line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF);
        if (!line) {
            if (evbuffer_get_length(in) > SMTP_REPLY_MAX_LINE + 2)
                be_fail(b, "backend %s sent an over-long line", b->peer);
            return;
        }
        enum reply_status st = smtp_reply_feed(&b->pending, line, len);
        free(line);
        if (st == REPLY_BAD) {
            smtp_reply_reset(&b->pending);
            be_fail(b, "backend %s sent a malformed reply", b->peer);
            return;
        }
        if (st == REPLY_DONE)
            on_reply(b, &b->pending);
    }
}

static void be_write(void *arg)
{
    struct backend *b = arg;

    if (b->drain_wanted && b->state == BE_READY) {
        b->drain_wanted = false;
        conn_set_write_low(b->conn, 0);
        b->ops->drained(b->arg);
    }
}

static void on_connected(struct backend *b)
{
    const struct config *cfg = cfg_of(b);

    nodelay(b->conn);
    send_proxy_header(b);
    b->state = BE_GREETING;
    set_read_timeout(b, cfg->timeouts.backend_greeting);
}

static void be_event(void *arg, short what)
{
    struct backend *b = arg;
    char reason[128];

    if (what & BEV_EVENT_CONNECTED) {
        if (b->state == BE_CONNECTING) {
            on_connected(b);
        } else if (b->state == BE_HANDSHAKE) {
            b->tls = true;
            send_ehlo(b, BE_EHLO_TLS);
        }
        return;
    }
    if (what & BEV_EVENT_TIMEOUT)
        snprintf(reason, sizeof(reason), "timeout");
    else if (what & BEV_EVENT_EOF)
        snprintf(reason, sizeof(reason), "connection closed by backend");
    else if (b->state == BE_HANDSHAKE && conn_tls_error(b->conn))
        ERR_error_string_n(conn_tls_error(b->conn), reason, sizeof(reason));
    else if (b->state == BE_HANDSHAKE)
        snprintf(reason, sizeof(reason), "TLS handshake failed");
    else
        snprintf(reason, sizeof(reason), "%s", strerror(conn_errno(b->conn)));
    if (b->state == BE_CONNECTING ||
        (b->state == BE_GREETING && b->greeting.nlines == 0 &&
         b->pending.nlines == 0)) {
        be_connect_next(b, reason);
        return;
    }
    be_fail(b, "backend lost: %s", reason);
}

static int connect_addr(struct backend *b)
{
    const struct backend_conf *bc = &cfg_of(b)->backend;
    const struct netaddr *a = &bc->addrs[b->addr_index];

    netaddr_str(a, b->peer, sizeof(b->peer));
    b->state = BE_CONNECTING;
    b->conn = conn_connect(b->base, (const struct sockaddr *)&a->ss, a->len,
                           cfg_of(b)->timeouts.backend_connect,
                           &backend_conn_ops, b);
    return b->conn ? 0 : -1;
}

/* Try the next configured address, or give up with the last reason. */
static void be_connect_next(struct backend *b, const char *why)
{
    const struct backend_conf *bc = &cfg_of(b)->backend;

    if (b->conn) {
        log_warn("session=%s backend %s: %s", b->session_id, b->peer, why);
        conn_free(b->conn);
        b->conn = NULL;
        b->addr_index++;
    }
    smtp_reply_reset(&b->pending);
    while (b->addr_index < bc->naddrs) {
        if (connect_addr(b) == 0)
            return;
        log_warn("session=%s backend %s: %s", b->session_id, b->peer,
                 strerror(errno));
        conn_free(b->conn);
        b->conn = NULL;
        b->addr_index++;
    }
    be_fail(b, "backend unavailable: %s", why);
}

struct backend *backend_new(struct event_base *base, struct runtime *rt,
                            const struct backend_params *p,
                            const struct backend_ops *ops, void *arg)
{
    struct backend *b = calloc(1, sizeof(*b));

    if (!b)
        return NULL;
    b->base = base;
    b->rt = runtime_ref(rt);
    b->ops = ops;
    b->arg = arg;
    b->client = *p->client;
    b->local = *p->local;
    snprintf(b->session_id, sizeof(b->session_id), "%s", p->session_id);
    be_connect_next(b, "no backend address configured");
    return b;
}

void backend_free(struct backend *b)
{
    if (!b)
        return;
    conn_free(b->conn);
    smtp_reply_reset(&b->pending);
    smtp_reply_reset(&b->greeting);
    runtime_unref(b->rt);
    free(b);
}

void backend_kill(struct backend *b)
{
    b->state = BE_DEAD;
    conn_free(b->conn);
    b->conn = NULL;
}

void backend_send(struct backend *b, const void *data, size_t len)
{
    if (b->state == BE_READY)
        conn_write(b->conn, data, len);
}

struct evbuffer *backend_output(struct backend *b)
{
    return conn_output(b->conn);
}

void backend_expect_reply(struct backend *b, unsigned ms)
{
    if (b->state == BE_READY)
        set_read_timeout(b, ms);
}

void backend_notify_drain(struct backend *b, size_t lowmark)
{
    if (b->state != BE_READY)
        return;
    b->drain_wanted = true;
    conn_set_write_low(b->conn, lowmark);
    if (evbuffer_get_length(conn_output(b->conn)) <= lowmark) {
        b->drain_wanted = false;
        b->ops->drained(b->arg);
    }
}

bool backend_has_caps(const struct backend *b)
{
    return b->has_caps;
}

const struct smtp_caps *backend_caps(const struct backend *b)
{
    return &b->caps;
}

bool backend_tls(const struct backend *b)
{
    return b->tls;
}

const char *backend_peer(const struct backend *b)
{
    return b->peer;
}
