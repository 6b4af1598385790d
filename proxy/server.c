/*
 * server: the daemon's outer shell. It starts one event loop per worker
 * thread, each with its own listening sockets on every configured address
 * (SO_REUSEPORT), accepts connections (refusing with 421 beyond
 * max_connections, counted across workers), and handles signals in the
 * main thread: SIGHUP reloads config and policies (a bad file keeps the
 * old ones running) and hands the new snapshot to every worker; SIGTERM
 * and SIGINT stop accepting and drain the sessions for at most
 * timeouts.shutdown.
 *
 * The main thread runs worker 0's loop; it talks to the other workers
 * through a pipe each ('R' take the new snapshot, 'T' drain and stop).
 */
#define _GNU_SOURCE /* pipe2 */
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

#include "config.h"
#include "control.h"
#include "dns.h"
#include "log.h"
#include "metrics.h"
#include "metrics_http.h"
#include "milter.h"
#include "privs.h"
#include "runtime.h"
#include "session.h"
#include "session_int.h"
#include "store.h"

struct server;

struct listener {
    struct evconnlistener *evl;
    struct worker *w;
    size_t index;                 /* into the config's listeners */
};

struct worker {
    struct server *srv;
    struct loop loop;
    struct listener *listeners;
    size_t nlisteners;
    pthread_t thread;
    bool running;                 /* thread started (worker 0: main) */
    int notify[2];                /* main -> worker commands */
    struct event *ev_notify, *ev_drain;
    unsigned gen;                 /* the snapshot generation in use */
};

#define LISTEN_BACKLOG 65535

struct server {
    const char *config_path;      /* NULL: embedded defaults */
    struct runtime *rt;           /* newest snapshot, under lock */
    unsigned gen;                 /* bumped with rt (atomic reads) */
    pthread_mutex_t lock;
    struct worker *workers;
    size_t nworkers;
    unsigned total;               /* sessions in all workers (atomic) */
    struct store *store;          /* limit counters */
    struct control *control;      /* admin socket, or NULL */
    struct metrics_http *metrics; /* /metrics endpoint, or NULL */
    struct event *ev_term, *ev_int, *ev_hup;
};

void loop_session_add(struct loop *lp, struct session *s)
{
    s->prev = NULL;
    s->next = lp->sessions;
    if (lp->sessions)
        lp->sessions->prev = s;
    lp->sessions = s;
    lp->nsessions++;
    metric_conn_opened();
    if (lp->total)
        __atomic_add_fetch(lp->total, 1, __ATOMIC_RELAXED);
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
    metric_conn_closed();
    if (lp->total)
        __atomic_sub_fetch(lp->total, 1, __ATOMIC_RELAXED);
    if (lp->draining && lp->nsessions == 0)
        event_base_loopexit(lp->base, NULL);
}

struct dns *loop_dns(struct loop *lp)
{
    if (!lp->dns)
        lp->dns = dns_new(lp->base, &lp->rt->cfg->dns);
    return lp->dns;
}

struct store_client *loop_store(struct loop *lp)
{
    if (!lp->store_client && lp->store)
        lp->store_client = store_client_new(lp->store, lp->base);
    return lp->store_client;
}

/*
 * Session ids only need to be unique and hard to guess across restarts:
 * a random 64-bit start (one getrandom per loop, not per session) plus a
 * counter, through a 64-bit mixer, in base 32.
 */
void loop_new_id(struct loop *lp, char id[LOOP_ID_LEN + 1])
{
    static const char digits[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ" /* Crockford */;
    uint64_t x;

    if (lp->id_next == 0)
        evutil_secure_rng_get_bytes(&lp->id_next, sizeof(lp->id_next));
    x = lp->id_next++;
    x ^= x >> 33; /* splitmix64 finaliser: consecutive ids look unrelated */
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    for (size_t i = 0; i < LOOP_ID_LEN; i++, x >>= 5)
        id[i] = digits[x & 31];
    id[LOOP_ID_LEN] = '\0';
}

/* ---- accepting -------------------------------------------------------- */

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

static void take_snapshot(struct worker *w);

static void on_accept(struct evconnlistener *evl, evutil_socket_t fd,
                      struct sockaddr *sa, int len, void *arg)
{
    struct listener *l = arg;
    struct loop *lp = &l->w->loop;
    unsigned open = __atomic_load_n(lp->total, __ATOMIC_RELAXED);

    /* Once "reload: ok" is logged, every new session gets the new
     * configuration, even before this worker has read its notice. */
    if (__atomic_load_n(&l->w->srv->gen, __ATOMIC_ACQUIRE) != l->w->gen)
        take_snapshot(l->w);
    const struct config *cfg = lp->rt->cfg;

    if (lp->draining) {
        metric_conn_refused("draining");
        evutil_closesocket(fd);
        return;
    }
    if (open >= cfg->limits.max_connections) {
        metric_conn_refused("max_connections");
        log_warn("refused connection: %u sessions open (max_connections)",
                 open);
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

static int open_listeners(struct worker *w, bool reuseport)
{
    const struct config *cfg = w->loop.rt->cfg;
    unsigned flags = LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE |
                     LEV_OPT_CLOSE_ON_EXEC |
                     (reuseport ? LEV_OPT_REUSEABLE_PORT : 0);
    char addr[NETADDR_STRLEN];

    w->listeners = calloc(cfg->nlisteners, sizeof(*w->listeners));
    if (!w->listeners)
        return -1;
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        const struct listener_conf *lc = &cfg->listeners[i];
        struct listener *l = &w->listeners[i];
        l->w = w;
        l->index = i;
        /* as deep as the kernel allows (net.core.somaxconn caps it): a
         * burst of connects beyond the backlog waits a retransmit (1 s) */
        l->evl = evconnlistener_new_bind(
            w->loop.base, on_accept, l, flags, LISTEN_BACKLOG,
            (const struct sockaddr *)&lc->addr.ss, (int)lc->addr.len);
        netaddr_str(&lc->addr, addr, sizeof(addr));
        if (!l->evl) {
            log_err("cannot listen on %s (%s): %s", addr, lc->name,
                    strerror(errno));
            return -1;
        }
        evconnlistener_set_error_cb(l->evl, on_accept_error);
        w->nlisteners++;
        if (w == &w->srv->workers[0])
            log_info("listening on %s (%s)", addr, lc->name);
    }
    return 0;
}

static void close_listeners(struct worker *w)
{
    for (size_t i = 0; i < w->nlisteners; i++)
        evconnlistener_free(w->listeners[i].evl);
    free(w->listeners);
    w->listeners = NULL;
    w->nlisteners = 0;
}

/* ---- reload ------------------------------------------------------------ */

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

/* Two optional settings: both unset, or both set to the same text. */
static bool same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Sockets, threads and the resolver are set up once; say so when a reload
 * would change them, instead of pretending it did. */
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
    if (old->workers != new->workers)
        log_warn("reload: workers changes only after a restart");
    if (old->store.type != new->store.type ||
        memcmp(&old->store.redis, &new->store.redis, sizeof(old->store.redis)) ||
        !same_str(old->store.redis_socket, new->store.redis_socket) ||
        old->store.redis_db != new->store.redis_db)
        log_warn("reload: the store changes only after a restart");
    if (strcmp(old->user, new->user) != 0)
        log_warn("reload: user changes only after a restart");
    if (!same_str(old->milter_socket, new->milter_socket) ||
        strcmp(old->milter_name, new->milter_name) != 0)
        log_warn("reload: milter changes only after a restart");
    if (old->metrics_on != new->metrics_on ||
        memcmp(&old->metrics_listen, &new->metrics_listen,
               sizeof(old->metrics_listen)) != 0)
        log_warn("reload: metrics changes only after a restart");
}

/* In a worker's own thread: start using the newest snapshot. */
static void take_snapshot(struct worker *w)
{
    struct runtime *rt;

    pthread_mutex_lock(&w->srv->lock);
    rt = runtime_ref(w->srv->rt);
    w->gen = w->srv->gen;
    pthread_mutex_unlock(&w->srv->lock);
    runtime_unref(w->loop.rt);
    w->loop.rt = rt;
    log_debug("worker %zu: new configuration in use",
              (size_t)(w - w->srv->workers));
}

static void tell_workers(struct server *srv, char cmd)
{
    for (size_t i = 1; i < srv->nworkers; i++)
        if (write(srv->workers[i].notify[1], &cmd, 1) != 1)
            log_err("cannot signal worker %zu: %s", i, strerror(errno));
}

static void on_hup(evutil_socket_t sig, short what, void *arg)
{
    struct server *srv = arg;
    struct errors errs = {0};
    struct runtime *rt, *old;

    log_info("reload: reading %s", srv->config_path ? srv->config_path
                                                     : "(defaults)");
    rt = load_runtime(srv->config_path, &errs);
    if (!rt) {
        log_errors(&errs);
        log_err("reload failed: keeping the running configuration");
        metric_reload(false);
        errors_free(&errs);
        return;
    }
    errors_free(&errs);
    warn_restart_only(srv->rt->cfg, rt->cfg);
    pthread_mutex_lock(&srv->lock);
    old = srv->rt;
    srv->rt = rt;
    __atomic_add_fetch(&srv->gen, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&srv->lock);
    runtime_unref(old);
    log_setup(&rt->cfg->log);
    take_snapshot(&srv->workers[0]);
    tell_workers(srv, 'R');
    log_info("reload: ok");
    metric_reload(true);
}

/* ---- shutdown ---------------------------------------------------------- */

static void on_drain_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;

    log_warn("shutdown: closing %u sessions still open", w->loop.nsessions);
    for (struct session *s = w->loop.sessions; s; s = s->next)
        session_abort(s);
}

/* In a worker's own thread: stop accepting, let sessions finish. */
static void drain(struct worker *w)
{
    struct loop *lp = &w->loop;
    unsigned ms = lp->rt->cfg->timeouts.shutdown;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

    if (lp->draining)
        return;
    lp->draining = true;
    close_listeners(w);
    for (struct session *s = lp->sessions; s; s = s->next)
        session_shutdown(s);
    if (lp->nsessions == 0) {
        event_base_loopexit(lp->base, NULL);
        return;
    }
    w->ev_drain = evtimer_new(lp->base, on_drain_timeout, w);
    evtimer_add(w->ev_drain, &tv);
}

static void on_term(evutil_socket_t sig, short what, void *arg)
{
    struct server *srv = arg;

    if (srv->workers[0].loop.draining)
        return;
    log_info("shutdown: signal %d, draining %u sessions", (int)sig,
             __atomic_load_n(&srv->total, __ATOMIC_RELAXED));
    tell_workers(srv, 'T');
    drain(&srv->workers[0]);
}

static void on_notify(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    char cmds[16];
    ssize_t n = read(fd, cmds, sizeof(cmds));

    for (ssize_t i = 0; i < n; i++) {
        if (cmds[i] == 'R')
            take_snapshot(w);
        else if (cmds[i] == 'T')
            drain(w);
    }
}

/* ---- workers ----------------------------------------------------------- */

static int worker_init(struct server *srv, struct worker *w, bool reuseport)
{
    w->srv = srv;
    w->notify[0] = w->notify[1] = -1;
    w->loop.total = &srv->total;
    w->loop.store = srv->store;
    w->loop.rt = runtime_ref(srv->rt);
    w->loop.base = event_base_new();
    if (!w->loop.base)
        return -1;
    if (w != &srv->workers[0]) {
        if (pipe2(w->notify, O_CLOEXEC | O_NONBLOCK) != 0)
            return -1;
        w->ev_notify = event_new(w->loop.base, w->notify[0],
                                 EV_READ | EV_PERSIST, on_notify, w);
        if (!w->ev_notify || event_add(w->ev_notify, NULL) != 0)
            return -1;
    }
    return open_listeners(w, reuseport);
}

/* Sessions left after the loop ended are closed now. */
static void close_leftovers(struct worker *w)
{
    while (w->loop.sessions) {
        struct session *s = w->loop.sessions;
        session_abort(s);
        event_base_loop(w->loop.base, EVLOOP_NONBLOCK);
        if (w->loop.sessions == s)
            break;
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;

    event_base_dispatch(w->loop.base);
    close_leftovers(w);
    return NULL;
}

static void worker_free(struct worker *w)
{
    if (!w->srv)
        return; /* never initialised */
    close_listeners(w);
    if (w->ev_notify)
        event_free(w->ev_notify);
    if (w->ev_drain)
        event_free(w->ev_drain);
    if (w->notify[0] >= 0)
        close(w->notify[0]);
    if (w->notify[1] >= 0)
        close(w->notify[1]);
    dns_free(w->loop.dns);
    store_client_free(w->loop.store_client);
    runtime_unref(w->loop.rt);
    if (w->loop.base)
        event_base_free(w->loop.base);
}

static size_t worker_count(const struct config *cfg)
{
    long n = cfg->workers ? (long)cfg->workers : sysconf(_SC_NPROCESSORS_ONLN);

    return n < 1 ? 1 : (size_t)n;
}

/* For the admin socket's thread: the running snapshot, referenced. */
static struct runtime *current_runtime(void *arg)
{
    struct server *srv = arg;
    struct runtime *rt;

    pthread_mutex_lock(&srv->lock);
    rt = runtime_ref(srv->rt);
    pthread_mutex_unlock(&srv->lock);
    return rt;
}

static int start_metrics(struct server *srv)
{
    const struct config *cfg = srv->rt->cfg;
    char err[200];

    if (!cfg->metrics_on)
        return 0;
    srv->metrics = metrics_http_start(&cfg->metrics_listen, err, sizeof(err));
    if (!srv->metrics) {
        log_err("metrics: %s", err);
        return -1;
    }
    return 0;
}

/*
 * Signals go to the main thread only; workers block them. The admin and
 * metrics sockets are bound before root is dropped, the workers started
 * after.
 */
static int start_threads(struct server *srv)
{
    sigset_t block, old;
    char err[300];
    int rc = 0;

    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    srv->control = control_start(srv->rt->cfg->control_socket, srv->store,
                                 current_runtime, srv);
    rc = start_metrics(srv);
    if (rc == 0 && srv->rt->cfg->milter_socket &&
        milter_open(srv->rt->cfg, err, sizeof(err)) != 0) {
        log_err("%s", err);
        rc = -1;
    }
    /* every socket is bound: root is not needed any more */
    if (rc == 0 && privs_drop(srv->rt->cfg->user, err, sizeof(err)) != 0) {
        log_err("%s", err);
        rc = -1;
    }
    /* found now rather than as a 451 on the first big message */
    if (rc == 0 && access(srv->rt->cfg->spool_dir, W_OK | X_OK) != 0) {
        log_err("spool_dir %s: %s for uid %u", srv->rt->cfg->spool_dir,
                strerror(errno), (unsigned)geteuid());
        rc = -1;
    }
    for (size_t i = 1; i < srv->nworkers && rc == 0; i++) {
        rc = pthread_create(&srv->workers[i].thread, NULL, worker_main,
                            &srv->workers[i]);
        srv->workers[i].running = rc == 0;
    }
    if (rc == 0 && srv->rt->cfg->milter_socket &&
        milter_run(srv->store, current_runtime, srv, err, sizeof(err)) != 0) {
        log_err("%s", err);
        rc = -1;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

static int setup_signals(struct server *srv)
{
    struct event_base *base = srv->workers[0].loop.base;

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
    control_stop(srv->control);
    metrics_http_stop(srv->metrics);
    if (srv->ev_term)
        event_free(srv->ev_term);
    if (srv->ev_int)
        event_free(srv->ev_int);
    if (srv->ev_hup)
        event_free(srv->ev_hup);
    for (size_t i = 0; i < srv->nworkers; i++)
        worker_free(&srv->workers[i]);
    free(srv->workers);
    store_free(srv->store);
    runtime_unref(srv->rt);
    pthread_mutex_destroy(&srv->lock);
}

static void log_started(const struct server *srv)
{
    char be[NETADDR_STRLEN] = "none";
    const struct config *cfg = srv->rt->cfg;

    if (cfg->backend.naddrs)
        netaddr_str(&cfg->backend.addrs[0], be, sizeof(be));
    log_info("warden %s started: config=%s backend=%s workers=%zu",
             WARDEN_VERSION, srv->config_path ? srv->config_path
                                              : "(defaults)",
             be, srv->nworkers);
}

int server_run(const char *config_path)
{
    struct server srv = {.config_path = config_path};
    struct errors errs = {0};
    size_t started = 0;
    int rc = 1;

    pthread_mutex_init(&srv.lock, NULL);
    srv.rt = load_runtime(config_path, &errs);
    if (!srv.rt) {
        errors_print(&errs, stderr);
        errors_free(&errs);
        pthread_mutex_destroy(&srv.lock);
        return 1;
    }
    errors_free(&errs);
    log_setup(&srv.rt->cfg->log);
    if (!(srv.store = store_new(srv.rt->cfg)))
        goto out;
    srv.nworkers = worker_count(srv.rt->cfg);
    srv.workers = calloc(srv.nworkers, sizeof(*srv.workers));
    if (!srv.workers)
        goto out;
    for (started = 0; started < srv.nworkers; started++)
        if (worker_init(&srv, &srv.workers[started], srv.nworkers > 1) != 0)
            goto out;
    if (setup_signals(&srv) != 0 || start_threads(&srv) != 0)
        goto stop;
    metrics_mark_start();
    log_started(&srv);
    event_base_dispatch(srv.workers[0].loop.base);
    close_leftovers(&srv.workers[0]);
    rc = 0;
stop:
    milter_stop();
    tell_workers(&srv, 'T');
    for (size_t i = 1; i < srv.nworkers; i++)
        if (srv.workers[i].running)
            pthread_join(srv.workers[i].thread, NULL);
    log_info("stopped");
out:
    server_free(&srv);
    return rc;
}
