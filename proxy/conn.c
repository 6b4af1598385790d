/*
 * conn: plain TCP with big reads and deferred writes; TLS through a
 * libevent OpenSSL filter. See conn.h for why.
 */
#include "conn.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>

/* One read call takes up to this much; a whole 64 KB message in one go. */
#define READ_CHUNK (64 * 1024)

struct conn {
    struct event_base *base;
    const struct conn_ops *ops;
    void *arg;
    evutil_socket_t fd;          /* -1 once a TLS bufferevent owns it */
    struct evbuffer *in, *out;   /* plain mode */
    struct event *rev, *wev;     /* plain mode */
    struct bufferevent *bev;     /* TLS mode */
    struct event *finished;      /* TLS: conn_finish done, tell ops->write */
    struct evbuffer_cb_entry *socket_cb; /* TLS: on the socket's output */
    bool finishing;              /* TLS: conn_finish called */
    struct timespec last_read;   /* TLS: when data last came in */
    bool shutdown_sent;          /* TLS: close_notify queued */
    bool connecting;
    bool reading;                /* the owner wants input */
    bool read_blocked;           /* input over read_high */
    bool read_done;              /* EOF or error seen */
    bool wev_armed;
    size_t read_high, write_low;
    unsigned rd_ms, wr_ms;
    int err;
    int busy;                    /* inside a callback */
    bool dead;                   /* freed inside a callback */
};

static struct evbuffer *socket_output(struct conn *c);

static void really_free(struct conn *c)
{
    if (c->socket_cb)
        evbuffer_remove_cb_entry(socket_output(c), c->socket_cb);
    if (c->finished)
        event_free(c->finished);
    if (c->rev)
        event_free(c->rev);
    if (c->wev)
        event_free(c->wev);
    if (c->bev)
        bufferevent_free(c->bev);
    if (c->in)
        evbuffer_free(c->in);
    if (c->out)
        evbuffer_free(c->out);
    if (c->fd >= 0)
        evutil_closesocket(c->fd);
    free(c);
}

void conn_free(struct conn *c)
{
    if (!c)
        return;
    if (c->busy) {
        c->dead = true;
        if (c->rev)
            event_del(c->rev);
        if (c->wev)
            event_del(c->wev);
        if (c->bev)
            bufferevent_disable(c->bev, EV_READ | EV_WRITE);
        return;
    }
    really_free(c);
}

/* Callback plumbing: returns false when the conn was freed meanwhile. */
static void enter(struct conn *c)
{
    c->busy++;
}

static bool leave(struct conn *c)
{
    if (--c->busy == 0 && c->dead) {
        really_free(c);
        return false;
    }
    return !c->dead;
}

static bool deliver(struct conn *c, short what)
{
    enter(c);
    c->ops->event(c->arg, what);
    return leave(c);
}

static struct timeval ms_tv(unsigned ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    return tv;
}

/*
 * A deadline that passed while the loop was busy (or the process stopped)
 * reaches us as a bare EV_TIMEOUT: libevent drops the I/O readiness of an
 * event whose timer expired in the same iteration. A peer whose bytes (or
 * window) have been waiting all along is not idle: ask the socket itself.
 */
static bool ready_now(evutil_socket_t fd, short events)
{
    struct pollfd p = {.fd = fd, .events = events};

    return poll(&p, 1, 0) > 0 && p.revents != 0;
}

/* ---- plain mode: reading ------------------------------------------- */

static void update_read_event(struct conn *c)
{
    struct timeval tv = ms_tv(c->rd_ms);
    bool want = c->reading && !c->read_blocked && !c->read_done &&
                !c->connecting && !c->dead;

    if (!want) {
        event_del(c->rev);
        return;
    }
    event_add(c->rev, c->rd_ms ? &tv : NULL);
    /* event_add(NULL) keeps an earlier timeout: drop it explicitly. */
    if (!c->rd_ms)
        event_remove_timer(c->rev);
}

static void input_cb(struct evbuffer *buf,
                     const struct evbuffer_cb_info *info, void *arg)
{
    struct conn *c = arg;

    if (c->read_blocked && c->read_high &&
        evbuffer_get_length(buf) < c->read_high) {
        c->read_blocked = false;
        update_read_event(c);
    }
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    struct evbuffer_iovec v[2];
    ssize_t r;
    int n;

    if ((what & EV_TIMEOUT) && !ready_now(fd, POLLIN)) {
        c->reading = false;
        update_read_event(c);
        deliver(c, BEV_EVENT_TIMEOUT | BEV_EVENT_READING);
        return;
    }
    n = evbuffer_reserve_space(c->in, READ_CHUNK, v, 2);
    if (n <= 0)
        return;
    do {
        r = readv(fd, (struct iovec *)v, n);
    } while (r < 0 && errno == EINTR);
    if (r <= 0) {
        evbuffer_commit_space(c->in, v, 0);
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        c->err = r < 0 ? errno : 0;
        c->read_done = true;
        update_read_event(c);
        deliver(c, (r == 0 ? BEV_EVENT_EOF : BEV_EVENT_ERROR) |
                       BEV_EVENT_READING);
        return;
    }
    size_t left = (size_t)r;
    for (int i = 0; i < n; i++) {
        if (v[i].iov_len > left)
            v[i].iov_len = left;
        left -= v[i].iov_len;
    }
    evbuffer_commit_space(c->in, v, n);
    if (c->read_high && evbuffer_get_length(c->in) >= c->read_high) {
        c->read_blocked = true;
        update_read_event(c);
    }
    enter(c);
    c->ops->read(c->arg);
    leave(c);
}

/* ---- plain mode: writing ------------------------------------------- */

static void arm_write(struct conn *c, bool on)
{
    struct timeval tv = ms_tv(c->wr_ms);

    if (on) {
        event_add(c->wev, c->wr_ms ? &tv : NULL);
        if (!c->wr_ms)
            event_remove_timer(c->wev);
    } else if (c->wev_armed)
        event_del(c->wev);
    c->wev_armed = on;
}

/* Write what we can now; arm EV_WRITE for the rest. */
static void flush(struct conn *c)
{
    while (evbuffer_get_length(c->out) > 0) {
        int n = evbuffer_write(c->out, c->fd);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                arm_write(c, true);
                return;
            }
            c->err = errno;
            arm_write(c, false);
            deliver(c, BEV_EVENT_ERROR | BEV_EVENT_WRITING);
            return;
        }
        if (evbuffer_get_length(c->out) > 0) {
            arm_write(c, true); /* short write: the kernel buffer is full */
            if (c->ops->write && evbuffer_get_length(c->out) <= c->write_low) {
                enter(c);
                c->ops->write(c->arg);
                leave(c);
            }
            return;
        }
    }
    arm_write(c, false);
    if (c->ops->write) {
        enter(c);
        c->ops->write(c->arg);
        leave(c);
    }
}

/* Deferred: runs once per loop iteration after output was added. */
static void output_cb(struct evbuffer *buf,
                      const struct evbuffer_cb_info *info, void *arg)
{
    struct conn *c = arg;

    if (info->n_added == 0 || c->connecting || c->wev_armed || c->bev ||
        c->dead)
        return;
    flush(c);
}

static void finish_connect(struct conn *c)
{
    int err = c->err;
    socklen_t len = sizeof(err);

    if (!err && getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    c->connecting = false;
    arm_write(c, false);
    if (err) {
        c->err = err;
        c->read_done = true;
        deliver(c, BEV_EVENT_ERROR | BEV_EVENT_WRITING);
        return;
    }
    update_read_event(c);
    if (!deliver(c, BEV_EVENT_CONNECTED))
        return;
    if (evbuffer_get_length(c->out) > 0)
        flush(c);
}

static void on_writable(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;

    c->wev_armed = false;
    if ((what & EV_TIMEOUT) && !ready_now(fd, POLLOUT)) {
        deliver(c, BEV_EVENT_TIMEOUT | BEV_EVENT_WRITING);
        return;
    }
    if (c->connecting) {
        finish_connect(c);
        return;
    }
    flush(c);
}

/* ---- creation ------------------------------------------------------- */

static struct conn *conn_alloc(struct event_base *base, evutil_socket_t fd,
                               const struct conn_ops *ops, void *arg)
{
    struct conn *c = calloc(1, sizeof(*c));

    if (!c)
        return NULL;
    c->base = base;
    c->ops = ops;
    c->arg = arg;
    c->fd = fd;
    c->reading = true;
    c->in = evbuffer_new();
    c->out = evbuffer_new();
    c->rev = event_new(base, fd, EV_READ | EV_PERSIST, on_readable, c);
    c->wev = event_new(base, fd, EV_WRITE, on_writable, c);
    if (!c->in || !c->out || !c->rev || !c->wev) {
        c->fd = -1; /* the caller still owns it */
        really_free(c);
        return NULL;
    }
    evbuffer_defer_callbacks(c->out, base);
    evbuffer_add_cb(c->out, output_cb, c);
    evbuffer_add_cb(c->in, input_cb, c);
    return c;
}

struct conn *conn_new(struct event_base *base, evutil_socket_t fd,
                      const struct conn_ops *ops, void *arg)
{
    struct conn *c = conn_alloc(base, fd, ops, arg);

    if (c)
        update_read_event(c);
    return c;
}

struct conn *conn_connect(struct event_base *base, const struct sockaddr *sa,
                          socklen_t len, unsigned timeout_ms,
                          const struct conn_ops *ops, void *arg)
{
    evutil_socket_t fd = socket(sa->sa_family,
                                SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct conn *c;
    struct timeval tv = ms_tv(timeout_ms);

    if (fd < 0)
        return NULL;
    c = conn_alloc(base, fd, ops, arg);
    if (!c) {
        evutil_closesocket(fd);
        return NULL;
    }
    c->connecting = true;
    if (connect(fd, sa, len) < 0 && errno != EINPROGRESS)
        c->err = errno; /* reported from the loop, like any other result */
    if (c->err) {
        event_active(c->wev, EV_WRITE, 1);
        c->wev_armed = true;
    } else {
        event_add(c->wev, timeout_ms ? &tv : NULL);
        c->wev_armed = true;
    }
    return c;
}

/* ---- TLS mode ------------------------------------------------------- */

static void tls_read(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;

    clock_gettime(CLOCK_MONOTONIC, &c->last_read);
    enter(c);
    c->ops->read(c->arg);
    leave(c);
}

static void check_finish(struct conn *c);

static void tls_write(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;

    if (c->finishing) {
        check_finish(c);
        return;
    }
    if (!c->ops->write)
        return;
    enter(c);
    c->ops->write(c->arg);
    leave(c);
}

static unsigned long long ms_since(const struct timespec *t)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (unsigned long long)(now.tv_sec - t->tv_sec) * 1000 +
           (unsigned long long)((now.tv_nsec - t->tv_nsec) / 1000000);
}

/* As on_readable: a deadline that passed while the loop was late is no
 * timeout when the peer's bytes (or window) are there. The TLS filter
 * reads through the socket bufferevent below it: bytes may wait there,
 * or already decrypted in its own input, not yet handed to us; and data
 * it delivered in this same loop turn, before the stale timer's turn
 * came, means the peer was not idle either. */
static bool tls_peer_ready(struct conn *c, struct bufferevent *bev,
                           short what)
{
    struct bufferevent *under = bufferevent_get_underlying(bev);
    /* the filter has no socket of its own */
    evutil_socket_t fd = under ? bufferevent_getfd(under) : -1;

    if (what & BEV_EVENT_READING)
        return (c->rd_ms && ms_since(&c->last_read) < c->rd_ms) ||
               evbuffer_get_length(bufferevent_get_input(bev)) > 0 ||
               (under && evbuffer_get_length(bufferevent_get_input(under))) ||
               (fd >= 0 && ready_now(fd, POLLIN));
    return fd >= 0 && ready_now(fd, POLLOUT);
}

static void tls_event(struct bufferevent *bev, short what, void *arg)
{
    if ((what & BEV_EVENT_TIMEOUT) && tls_peer_ready(arg, bev, what)) {
        /* libevent disabled the direction that timed out, on the filter
         * or (the closing write timeout) on the socket below: go on */
        short dir = what & BEV_EVENT_READING ? EV_READ : EV_WRITE;
        struct bufferevent *under = bufferevent_get_underlying(bev);
        if (under)
            bufferevent_enable(under, dir);
        bufferevent_enable(bev, dir);
        return;
    }
    deliver(arg, what);
}

/* ---- TLS: closing ---------------------------------------------------- */

static struct evbuffer *socket_output(struct conn *c)
{
    struct bufferevent *under = bufferevent_get_underlying(c->bev);

    return under ? bufferevent_get_output(under) : NULL;
}

static void on_finished(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;

    if (!c->ops->write)
        return;
    enter(c);
    c->ops->write(c->arg);
    leave(c);
}

/* The filter drained into TLS records: queue close_notify behind them.
 * The records drained into the kernel: done (told from the loop, not
 * from inside libevent's buffer callbacks). */
static void check_finish(struct conn *c)
{
    struct evbuffer *out = socket_output(c);

    if (evbuffer_get_length(bufferevent_get_output(c->bev)) > 0)
        return;
    if (!c->shutdown_sent) {
        SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
        c->shutdown_sent = true;
        if (SSL_is_init_finished(ssl)) {
            SSL_shutdown(ssl);
            ERR_clear_error(); /* nothing for the next connection to read */
        }
    }
    if (!out || evbuffer_get_length(out) == 0)
        event_active(c->finished, EV_TIMEOUT, 0);
}

static void socket_output_cb(struct evbuffer *buf,
                             const struct evbuffer_cb_info *info, void *arg)
{
    if (info->n_deleted > 0)
        check_finish(arg);
}

bool conn_finish(struct conn *c)
{
    struct evbuffer *out;

    if (!c->bev)
        return false;
    if (c->finishing)
        return true;
    out = socket_output(c);
    if (!(c->finished = event_new(c->base, -1, 0, on_finished, c)) ||
        (out && !(c->socket_cb = evbuffer_add_cb(out, socket_output_cb, c))))
        return false; /* no memory: closed at once, as before */
    c->finishing = true;
    /* tls_write on every drain of the filter, and a client that stops
     * reading is bounded by the write timeout on the socket too */
    bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
    if (bufferevent_get_underlying(c->bev) && c->wr_ms) {
        struct timeval wr = ms_tv(c->wr_ms);
        bufferevent_set_timeouts(bufferevent_get_underlying(c->bev), NULL,
                                 &wr);
    }
    check_finish(c);
    return true;
}

int conn_start_tls(struct conn *c, SSL *ssl, bool accepting)
{
    struct bufferevent *under, *tls;

    if (c->bev || c->fd < 0)
        return -1;
    event_del(c->rev);
    if (c->wev_armed)
        event_del(c->wev);
    c->wev_armed = false;
    evbuffer_drain(c->in, evbuffer_get_length(c->in));
    under = bufferevent_socket_new(c->base, c->fd, BEV_OPT_CLOSE_ON_FREE);
    if (!under)
        return -1;
    /* Replies already queued (the 220 to STARTTLS) precede the handshake. */
    evbuffer_add_buffer(bufferevent_get_output(under), c->out);
    tls = bufferevent_openssl_filter_new(
        c->base, under, ssl,
        accepting ? BUFFEREVENT_SSL_ACCEPTING : BUFFEREVENT_SSL_CONNECTING,
        BEV_OPT_CLOSE_ON_FREE);
    if (!tls) {
        bufferevent_setfd(under, -1); /* the conn still owns the socket */
        bufferevent_free(under);
        return -1;
    }
    c->fd = -1; /* closed with the bufferevents now */
    c->bev = tls;
    bufferevent_setcb(tls, tls_read, tls_write, tls_event, c);
    bufferevent_setwatermark(tls, EV_READ, 0, c->read_high);
    bufferevent_setwatermark(tls, EV_WRITE, c->write_low, 0);
    conn_set_timeouts(c, c->rd_ms, c->wr_ms);
    bufferevent_enable(tls, c->reading ? EV_READ | EV_WRITE : EV_WRITE);
    return 0;
}

SSL *conn_ssl(struct conn *c)
{
    return c->bev ? bufferevent_openssl_get_ssl(c->bev) : NULL;
}

unsigned long conn_tls_error(struct conn *c)
{
    return c->bev ? bufferevent_get_openssl_error(c->bev) : 0;
}

/* ---- common --------------------------------------------------------- */

struct evbuffer *conn_input(struct conn *c)
{
    return c->bev ? bufferevent_get_input(c->bev) : c->in;
}

struct evbuffer *conn_output(struct conn *c)
{
    return c->bev ? bufferevent_get_output(c->bev) : c->out;
}

void conn_write(struct conn *c, const void *data, size_t len)
{
    evbuffer_add(conn_output(c), data, len);
}

void conn_set_timeouts(struct conn *c, unsigned read_ms, unsigned write_ms)
{
    c->rd_ms = read_ms;
    c->wr_ms = write_ms;
    if (c->bev) {
        struct timeval rd = ms_tv(read_ms), wr = ms_tv(write_ms);
        bufferevent_set_timeouts(c->bev, read_ms ? &rd : NULL,
                                 write_ms ? &wr : NULL);
        return;
    }
    if (!c->connecting) {
        update_read_event(c);
        if (c->wev_armed)
            arm_write(c, true);
    }
}

void conn_read_enable(struct conn *c, bool on)
{
    c->reading = on;
    if (c->bev) {
        if (on)
            bufferevent_enable(c->bev, EV_READ);
        else
            bufferevent_disable(c->bev, EV_READ);
        return;
    }
    update_read_event(c);
}

void conn_set_read_high(struct conn *c, size_t high)
{
    c->read_high = high;
    if (c->bev)
        bufferevent_setwatermark(c->bev, EV_READ, 0, high);
}

void conn_set_write_low(struct conn *c, size_t lowmark)
{
    c->write_low = lowmark;
    if (c->bev)
        bufferevent_setwatermark(c->bev, EV_WRITE, lowmark, 0);
}

evutil_socket_t conn_fd(struct conn *c)
{
    struct bufferevent *under = c->bev ? bufferevent_get_underlying(c->bev)
                                       : NULL;

    /* the TLS filter has no socket of its own: the one below it has */
    return c->bev ? (under ? bufferevent_getfd(under) : -1) : c->fd;
}

int conn_errno(struct conn *c)
{
    return c->err;
}
