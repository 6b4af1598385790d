/*
 * server: the daemon's outer shell. It binds the listeners, accepts
 * connections (refusing with 421 beyond max_connections), and handles
 * signals: SIGHUP reloads config and policies (a bad file keeps the old
 * ones running), SIGTERM/SIGINT stop accepting and drain the sessions for
 * at most timeouts.shutdown.
 */
#include "server.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "config.h"
#include "dns.h"
#include "log.h"
#include "runtime.h"
#include "session.h"
#include "session_int.h"

struct listener {
    struct evconnlistener *evl;
    struct server *srv;
    size_t index;                 /* into the config's listeners */
};

struct server {
    struct loop loop;
    const char *config_path;      /* NULL: embedded defaults */
    struct listener *listeners;
    size_t nlisteners;
    struct event *ev_term, *ev_int, *ev_hup, *ev_drain;
};

void loop_session_add(struct loop *lp, struct session *s)
{
    s->prev = NULL;
    s->next = lp->sessions;
    if (lp->sessions)
        lp->sessions->prev = s;
    lp->sessions = s;
    lp->nsessions++;
}

void loop_session_gone(struct loop *lp, struct session *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        lp->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    lp->nsessions--;
    if (lp->draining && lp->nsessions == 0)
        event_base_loopexit(lp->base, NULL);
}

struct dns *loop_dns(struct loop *lp)
{
    if (!lp->dns)
        lp->dns = dns_new(lp->base, &lp->rt->cfg->dns);
    return lp->dns;
}

/* Over the limit: a 421 written straight to the socket, then close. */
static void refuse_busy(evutil_socket_t fd, const struct config *cfg)
{
    char msg[300];
    int n = snprintf(msg, sizeof(msg),
                     "421 4.7.0 %s Error: too many connections, try again "
                     "later\r\n",
                     cfg->hostname);

    if (send(fd, msg, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
        log_debug("refused connection: %s", strerror(errno));
    evutil_closesocket(fd);
}

static void on_accept(struct evconnlistener *evl, evutil_socket_t fd,
                      struct sockaddr *sa, int len, void *arg)
{
    struct listener *l = arg;
    struct loop *lp = &l->srv->loop;
    const struct config *cfg = lp->rt->cfg;

    if (lp->draining) {
        evutil_closesocket(fd);
        return;
    }
    if (lp->nsessions >= cfg->limits.max_connections) {
        log_warn("refused connection: %u sessions open (max_connections)",
                 lp->nsessions);
        refuse_busy(fd, cfg);
        return;
    }
    /* Listener settings come from the running snapshot (by position: a
     * reload cannot add or remove sockets). */
    const struct listener_conf *lc =
        &cfg->listeners[l->index < cfg->nlisteners ? l->index : 0];
    session_new(lp, lp->rt, lc, fd, sa, len);
}

static void on_accept_error(struct evconnlistener *evl, void *arg)
{
    int err = EVUTIL_SOCKET_ERROR();

    /* EMFILE and friends: keep running; the sessions in flight matter. */
    log_err("accept: %s", evutil_socket_error_to_string(err));
}

static int open_listeners(struct server *srv)
{
    const struct config *cfg = srv->loop.rt->cfg;
    char addr[NETADDR_STRLEN];

    srv->listeners = calloc(cfg->nlisteners, sizeof(*srv->listeners));
    if (!srv->listeners)
        return -1;
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        const struct listener_conf *lc = &cfg->listeners[i];
        struct listener *l = &srv->listeners[i];
        l->srv = srv;
        l->index = i;
        l->evl = evconnlistener_new_bind(
            srv->loop.base, on_accept, l,
            LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
            1024, (const struct sockaddr *)&lc->addr.ss, (int)lc->addr.len);
        netaddr_str(&lc->addr, addr, sizeof(addr));
        if (!l->evl) {
            log_err("cannot listen on %s (%s): %s", addr, lc->name,
                    strerror(errno));
            return -1;
        }
        evconnlistener_set_error_cb(l->evl, on_accept_error);
        srv->nlisteners++;
        log_info("listening on %s (%s)", addr, lc->name);
    }
    return 0;
}

static void close_listeners(struct server *srv)
{
    for (size_t i = 0; i < srv->nlisteners; i++)
        evconnlistener_free(srv->listeners[i].evl);
    free(srv->listeners);
    srv->listeners = NULL;
    srv->nlisteners = 0;
}

static void log_errors(const struct errors *e)
{
    for (size_t i = 0; i < e->n; i++)
        log_err("%s", e->v[i]);
}

static struct runtime *load_runtime(const char *path, struct errors *errs)
{
    struct config *cfg = path ? config_load(path, errs) : config_defaults();

    if (!cfg)
        return NULL;
    return runtime_new(cfg, errs);
}

/* Sockets and the resolver are set up once; say so when a reload would
 * change them, instead of pretending it did. */
static void warn_restart_only(const struct config *old, const struct config *new)
{
    bool same = old->nlisteners == new->nlisteners;

    for (size_t i = 0; same && i < new->nlisteners; i++)
        same = old->listeners[i].addr.len == new->listeners[i].addr.len &&
               memcmp(&old->listeners[i].addr.ss, &new->listeners[i].addr.ss,
                      new->listeners[i].addr.len) == 0;
    if (!same)
        log_warn("reload: listen addresses change only after a restart");
    if (old->dns.nservers != new->dns.nservers ||
        old->dns.timeout != new->dns.timeout ||
        memcmp(old->dns.servers, new->dns.servers,
               sizeof(old->dns.servers)) != 0)
        log_warn("reload: dns settings change only after a restart");
}

static void on_hup(evutil_socket_t sig, short what, void *arg)
{
    struct server *srv = arg;
    struct errors errs = {0};
    struct runtime *rt;

    log_info("reload: reading %s", srv->config_path ? srv->config_path
                                                     : "(defaults)");
    rt = load_runtime(srv->config_path, &errs);
    if (!rt) {
        log_errors(&errs);
        log_err("reload failed: keeping the running configuration");
        errors_free(&errs);
        return;
    }
    errors_free(&errs);
    warn_restart_only(srv->loop.rt->cfg, rt->cfg);
    runtime_unref(srv->loop.rt);
    srv->loop.rt = rt;
    log_setup(&rt->cfg->log);
    log_info("reload: ok");
}

static void on_drain_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct server *srv = arg;
    struct session *s = srv->loop.sessions;

    log_warn("shutdown: closing %u sessions still open", srv->loop.nsessions);
    for (; s; s = s->next)
        session_abort(s);
}

static void on_term(evutil_socket_t sig, short what, void *arg)
{
    struct server *srv = arg;
    struct loop *lp = &srv->loop;
    struct timeval tv;
    unsigned ms = lp->rt->cfg->timeouts.shutdown;

    if (lp->draining)
        return;
    log_info("shutdown: signal %d, draining %u sessions", (int)sig,
             lp->nsessions);
    lp->draining = true;
    close_listeners(srv);
    for (struct session *s = lp->sessions; s; s = s->next)
        session_shutdown(s);
    if (lp->nsessions == 0) {
        event_base_loopexit(lp->base, NULL);
        return;
    }
    tv.tv_sec = ms / 1000;
    tv.tv_usec = (ms % 1000) * 1000;
    srv->ev_drain = evtimer_new(lp->base, on_drain_timeout, srv);
    evtimer_add(srv->ev_drain, &tv);
}

static int setup_signals(struct server *srv)
{
    struct event_base *base = srv->loop.base;

    signal(SIGPIPE, SIG_IGN);
    srv->ev_term = evsignal_new(base, SIGTERM, on_term, srv);
    srv->ev_int = evsignal_new(base, SIGINT, on_term, srv);
    srv->ev_hup = evsignal_new(base, SIGHUP, on_hup, srv);
    if (!srv->ev_term || !srv->ev_int || !srv->ev_hup)
        return -1;
    evsignal_add(srv->ev_term, NULL);
    evsignal_add(srv->ev_int, NULL);
    evsignal_add(srv->ev_hup, NULL);
    return 0;
}

static void server_free(struct server *srv)
{
    close_listeners(srv);
    if (srv->ev_term)
        event_free(srv->ev_term);
    if (srv->ev_int)
        event_free(srv->ev_int);
    if (srv->ev_hup)
        event_free(srv->ev_hup);
    if (srv->ev_drain)
        event_free(srv->ev_drain);
    dns_free(srv->loop.dns);
    runtime_unref(srv->loop.rt);
    if (srv->loop.base)
        event_base_free(srv->loop.base);
}

int server_run(const char *config_path)
{
    struct server srv = {.config_path = config_path};
    struct errors errs = {0};
    int rc = 1;

    srv.loop.rt = load_runtime(config_path, &errs);
    if (!srv.loop.rt) {
        errors_print(&errs, stderr);
        errors_free(&errs);
        return 1;
    }
    errors_free(&errs);
    log_setup(&srv.loop.rt->cfg->log);
    srv.loop.base = event_base_new();
    if (!srv.loop.base || setup_signals(&srv) != 0 ||
        open_listeners(&srv) != 0)
        goto out;
    {
        char be[NETADDR_STRLEN] = "none";
        const struct config *cfg = srv.loop.rt->cfg;
        if (cfg->backend.naddrs)
            netaddr_str(&cfg->backend.addrs[0], be, sizeof(be));
        log_info("warden %s started: config=%s backend=%s", WARDEN_VERSION,
                 config_path ? config_path : "(defaults)", be);
    }
    event_base_dispatch(srv.loop.base);
    /* Sessions left after an early loop exit are closed now. */
    while (srv.loop.sessions) {
        struct session *s = srv.loop.sessions;
        session_abort(s);
        event_base_loop(srv.loop.base, EVLOOP_NONBLOCK);
        if (srv.loop.sessions == s)
            break;
    }
    log_info("stopped");
    rc = 0;
out:
    server_free(&srv);
    return rc;
}
