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
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>

#include "config.h"
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
    struct bufferevent *bev;
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

static void be_read(struct bufferevent *bev, void *arg);
static void be_write(struct bufferevent *bev, void *arg);
static void be_event(struct bufferevent *bev, short what, void *arg);
static void be_connect_next(struct backend *b, const char *why);

static struct timeval ms_tv(unsigned ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    return tv;
}

static const struct config *cfg_of(const struct backend *b)
{
    return b->rt->cfg;
}

static void set_read_timeout(struct backend *b, unsigned ms)
{
    struct timeval tv = ms_tv(ms);
    bufferevent_set_timeouts(b->bev, ms ? &tv : NULL, NULL);
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
    if (b->bev)
        bufferevent_disable(b->bev, EV_READ | EV_WRITE);
    b->ops->failed(b->arg, why);
}

static void nodelay(struct bufferevent *bev)
{
    int one = 1;
    evutil_socket_t fd = bufferevent_getfd(bev);

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
    bufferevent_write(b->bev, hdr, n);
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

    evbuffer_add_printf(bufferevent_get_output(b->bev), "EHLO %s\r\n", name);
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
    struct bufferevent *tls_bev;

    if (!ssl) {
        be_fail(b, "backend TLS: %s", "cannot create SSL");
        return;
    }
    /* Nothing the backend sent before the handshake may be trusted. */
    evbuffer_drain(bufferevent_get_input(b->bev),
                   evbuffer_get_length(bufferevent_get_input(b->bev)));
    tls_bev = bufferevent_openssl_filter_new(b->base, b->bev, ssl,
                                             BUFFEREVENT_SSL_CONNECTING,
                                             BEV_OPT_CLOSE_ON_FREE);
    if (!tls_bev) {
        SSL_free(ssl);
        be_fail(b, "backend TLS: %s", "cannot create filter");
        return;
    }
    b->bev = tls_bev;
    b->state = BE_HANDSHAKE;
    bufferevent_setcb(b->bev, be_read, be_write, be_event, b);
    bufferevent_enable(b->bev, EV_READ | EV_WRITE);
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
            bufferevent_write(b->bev, "STARTTLS\r\n", 10);
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

static void be_read(struct bufferevent *bev, void *arg)
{
    struct backend *b = arg;
    struct evbuffer *in = bufferevent_get_input(bev);

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

static void be_write(struct bufferevent *bev, void *arg)
{
    struct backend *b = arg;

    if (b->drain_wanted && b->state == BE_READY) {
        b->drain_wanted = false;
        bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
        b->ops->drained(b->arg);
    }
}

static void on_connected(struct backend *b)
{
    const struct config *cfg = cfg_of(b);

    nodelay(b->bev);
    bufferevent_set_timeouts(b->bev, NULL, NULL);
    send_proxy_header(b);
    b->state = BE_GREETING;
    set_read_timeout(b, cfg->timeouts.backend_greeting);
    bufferevent_enable(b->bev, EV_READ);
}

static void be_event(struct bufferevent *bev, short what, void *arg)
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
    else if (b->state == BE_HANDSHAKE && bufferevent_get_openssl_error(bev))
        ERR_error_string_n(bufferevent_get_openssl_error(bev), reason,
                           sizeof(reason));
    else
        snprintf(reason, sizeof(reason), "%s",
                 evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
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
    struct timeval tv = ms_tv(cfg_of(b)->timeouts.backend_connect);

    netaddr_str(a, b->peer, sizeof(b->peer));
    b->bev = bufferevent_socket_new(b->base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!b->bev)
        return -1;
    bufferevent_setcb(b->bev, be_read, be_write, be_event, b);
    bufferevent_set_timeouts(b->bev, &tv, &tv);
    b->state = BE_CONNECTING;
    return bufferevent_socket_connect(b->bev, (const struct sockaddr *)&a->ss,
                                      (int)a->len);
}

/* Try the next configured address, or give up with the last reason. */
static void be_connect_next(struct backend *b, const char *why)
{
    const struct backend_conf *bc = &cfg_of(b)->backend;

    if (b->bev) {
        log_warn("session=%s backend %s: %s", b->session_id, b->peer, why);
        bufferevent_free(b->bev);
        b->bev = NULL;
        b->addr_index++;
    }
    smtp_reply_reset(&b->pending);
    while (b->addr_index < bc->naddrs) {
        if (connect_addr(b) == 0)
            return;
        log_warn("session=%s backend %s: %s", b->session_id, b->peer,
                 strerror(errno));
        if (b->bev)
            bufferevent_free(b->bev);
        b->bev = NULL;
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
    if (b->bev)
        bufferevent_free(b->bev);
    smtp_reply_reset(&b->pending);
    smtp_reply_reset(&b->greeting);
    runtime_unref(b->rt);
    free(b);
}

void backend_kill(struct backend *b)
{
    b->state = BE_DEAD;
    if (b->bev)
        bufferevent_free(b->bev);
    b->bev = NULL;
}

void backend_send(struct backend *b, const void *data, size_t len)
{
    if (b->state == BE_READY)
        bufferevent_write(b->bev, data, len);
}

struct evbuffer *backend_output(struct backend *b)
{
    return bufferevent_get_output(b->bev);
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
    bufferevent_setwatermark(b->bev, EV_WRITE, lowmark, 0);
    if (evbuffer_get_length(bufferevent_get_output(b->bev)) <= lowmark) {
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
