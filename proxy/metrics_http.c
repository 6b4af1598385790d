/*
 * metrics_http: the /metrics endpoint (see metrics_http.h).
 */
#include "metrics_http.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "log.h"
#include "metrics.h"

struct metrics_http {
    struct event_base *base;
    struct evhttp *http;
    struct event *stop_ev; /* readable end of stop_pipe: time to go */
    int stop_pipe[2];
    pthread_t thread;
};

/* libevent runs without its threading layer here: the pipe wakes the loop. */
static void on_stop(evutil_socket_t fd, short what, void *arg)
{
    struct metrics_http *m = arg;

    (void)fd;
    (void)what;
    event_base_loopbreak(m->base);
}

static void on_request(struct evhttp_request *req, void *arg)
{
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    struct evbuffer *body;
    char *page = NULL;
    size_t len = 0;
    FILE *out;

    (void)arg;
    if (!path || strcmp(path, "/metrics") != 0) {
        evhttp_send_error(req, HTTP_NOTFOUND, "try /metrics");
        return;
    }
    if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
        evhttp_send_error(req, 405, "GET only");
        return;
    }
    out = open_memstream(&page, &len);
    if (!out) {
        evhttp_send_error(req, HTTP_INTERNAL, NULL);
        return;
    }
    metrics_render(out);
    fclose(out);
    body = evbuffer_new();
    if (!body || evbuffer_add(body, page, len) != 0) {
        evbuffer_free(body);
        free(page);
        evhttp_send_error(req, HTTP_INTERNAL, NULL);
        return;
    }
    free(page);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/plain; version=0.0.4; charset=utf-8");
    evhttp_send_reply(req, HTTP_OK, "OK", body);
    evbuffer_free(body);
}

static void *metrics_main(void *arg)
{
    struct metrics_http *m = arg;

    event_base_dispatch(m->base);
    return NULL;
}

static void metrics_free(struct metrics_http *m)
{
    if (m->http)
        evhttp_free(m->http);
    if (m->stop_ev)
        event_free(m->stop_ev);
    if (m->stop_pipe[0] >= 0) {
        close(m->stop_pipe[0]);
        close(m->stop_pipe[1]);
    }
    if (m->base)
        event_base_free(m->base);
    free(m);
}

struct metrics_http *metrics_http_start(const struct netaddr *addr, char *err,
                                        size_t errlen)
{
    struct metrics_http *m = calloc(1, sizeof(*m));
    char ip[NETADDR_STRLEN];

    if (!m) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    m->stop_pipe[0] = m->stop_pipe[1] = -1;
    if (pipe(m->stop_pipe) != 0) {
        m->stop_pipe[0] = m->stop_pipe[1] = -1;
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        metrics_free(m);
        return NULL;
    }
    if (!(m->base = event_base_new()) || !(m->http = evhttp_new(m->base)) ||
        !(m->stop_ev = event_new(m->base, m->stop_pipe[0], EV_READ, on_stop,
                                 m)) ||
        event_add(m->stop_ev, NULL) != 0) {
        snprintf(err, errlen, "out of memory");
        metrics_free(m);
        return NULL;
    }
    /* scrapes are small: bound what a client may send, and how slowly */
    evhttp_set_max_headers_size(m->http, 8192);
    evhttp_set_max_body_size(m->http, 0);
    evhttp_set_timeout(m->http, 10);
    evhttp_set_allowed_methods(m->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
    evhttp_set_gencb(m->http, on_request, NULL);
    netaddr_ip(addr, ip, sizeof(ip));
    if (!evhttp_bind_socket_with_handle(m->http, ip, netaddr_port(addr))) {
        snprintf(err, errlen, "cannot listen on %s port %u: %s", ip,
                 netaddr_port(addr), strerror(errno));
        metrics_free(m);
        return NULL;
    }
    if (pthread_create(&m->thread, NULL, metrics_main, m) != 0) {
        snprintf(err, errlen, "cannot start the metrics thread");
        metrics_free(m);
        return NULL;
    }
    log_info("metrics on http://%s%s%s:%u/metrics",
             strchr(ip, ':') ? "[" : "", ip, strchr(ip, ':') ? "]" : "",
             netaddr_port(addr));
    return m;
}

void metrics_http_stop(struct metrics_http *m)
{
    if (!m)
        return;
    if (write(m->stop_pipe[1], "T", 1) != 1) {
        /* it still runs: leave it (and its memory) to the exit */
        log_err("metrics: cannot stop the thread: %s", strerror(errno));
        return;
    }
    pthread_join(m->thread, NULL);
    metrics_free(m);
}
