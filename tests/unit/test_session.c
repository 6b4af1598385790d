/*
 * Unit tests for the session state machine, driven through real loopback
 * sockets on one event loop: a scripted fake backend (the mock allowed in
 * a unit test of one module) on one side, a test client on the other.
 * Checks reply order under pipelining, local answers, what reaches the
 * backend byte for byte, and the DATA refusals.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <syslog.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "config.h"
#include "log.h"
#include "runtime.h"
#include "server.h"
#include "session.h"

/* ---- scripted backend ---------------------------------------------- */

struct fake {
    struct evconnlistener *evl;
    struct bufferevent *bev;
    struct evbuffer *seen;  /* every byte the backend received */
    bool in_data;
    int port;
};

static void fake_line(struct fake *f, const char *line, size_t len)
{
    struct evbuffer *out = bufferevent_get_output(f->bev);

    if (strncasecmp(line, "EHLO", 4) == 0)
        evbuffer_add_printf(out, "250-fake.test\r\n250-PIPELINING\r\n"
                                 "250-CHUNKING\r\n250-XCLIENT ADDR NAME\r\n"
                                 "250 SIZE 1000000\r\n");
    else if (strncasecmp(line, "RCPT", 4) == 0 && memmem(line, len, "bad", 3))
        evbuffer_add_printf(out, "550 5.1.1 no such user\r\n");
    else if (strncasecmp(line, "DATA", 4) == 0) {
        evbuffer_add_printf(out, "354 go ahead\r\n");
        f->in_data = true;
    } else if (strncasecmp(line, "QUIT", 4) == 0)
        evbuffer_add_printf(out, "221 2.0.0 fake bye\r\n");
    else
        evbuffer_add_printf(out, "250 2.0.0 fake ok\r\n");
}

static void fake_read(struct bufferevent *bev, void *arg)
{
    struct fake *f = arg;
    struct evbuffer *in = bufferevent_get_input(bev);

    for (;;) {
        size_t len;
        char *line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF_STRICT);
        if (!line)
            return;
        evbuffer_add(f->seen, line, len);
        evbuffer_add(f->seen, "\r\n", 2);
        if (f->in_data) {
            if (len == 1 && line[0] == '.') {
                f->in_data = false;
                evbuffer_add_printf(bufferevent_get_output(bev),
                                    "250 2.0.0 Ok: queued as FAKE\r\n");
            }
        } else {
            fake_line(f, line, len);
        }
        free(line);
    }
}

static void fake_accept(struct evconnlistener *l, evutil_socket_t fd,
                        struct sockaddr *sa, int len, void *arg)
{
    struct fake *f = arg;

    f->bev = bufferevent_socket_new(evconnlistener_get_base(l), fd,
                                    BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(f->bev, fake_read, NULL, NULL, f);
    bufferevent_enable(f->bev, EV_READ | EV_WRITE);
    bufferevent_write(f->bev, "220 fake.test ESMTP\r\n", 21);
}

/* ---- fixture -------------------------------------------------------- */

struct t {
    struct event_base *base;
    struct loop lp;
    struct fake fake;
    int client;             /* test client socket */
    char buf[65536];
    size_t have;
};

static int listen_any(struct sockaddr_in *sin)
{
    socklen_t len = sizeof(*sin);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    memset(sin, 0, sizeof(*sin));
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)sin, sizeof(*sin)), 0);
    assert_int_equal(listen(fd, 8), 0);
    getsockname(fd, (struct sockaddr *)sin, &len);
    return fd;
}

static int setup(void **state)
{
    struct t *t = calloc(1, sizeof(*t));
    struct errors errs = {0};
    struct config *cfg = config_defaults();
    struct sockaddr_in sin;
    char addr[32];
    int fd;

    t->base = event_base_new();
    t->lp.base = t->base;
    t->fake.seen = evbuffer_new();
    fd = listen_any(&sin);
    t->fake.port = ntohs(sin.sin_port);
    evutil_make_socket_nonblocking(fd);
    t->fake.evl = evconnlistener_new(t->base, fake_accept, &t->fake,
                                     LEV_OPT_CLOSE_ON_FREE, -1, fd);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", t->fake.port);
    netaddr_parse(addr, -1, &cfg->backend.addrs[0], NULL, 0);
    cfg->backend.identity = IDENTITY_NONE;
    cfg->dns.resolve_client = false;
    cfg->limits.max_errors = 5;
    cfg->log.level = LOG_ERR;
    log_setup(&cfg->log);
    t->lp.rt = runtime_new(cfg, &errs);
    assert_non_null(t->lp.rt);

    /* A connected pair over loopback: the session gets the server end. */
    int lfd = listen_any(&sin);
    t->client = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(t->client, (struct sockaddr *)&sin, sizeof(sin)),
                     0);
    struct sockaddr_in peer;
    socklen_t plen = sizeof(peer);
    int sfd = accept(lfd, (struct sockaddr *)&peer, &plen);
    close(lfd);
    evutil_make_socket_nonblocking(sfd);
    evutil_make_socket_nonblocking(t->client);
    assert_non_null(session_new(&t->lp, t->lp.rt, &t->lp.rt->cfg->listeners[0],
                                sfd, (struct sockaddr *)&peer, (int)plen));
    *state = t;
    return 0;
}

static int teardown(void **state)
{
    struct t *t = *state;

    close(t->client);
    for (int i = 0; i < 50 && t->lp.nsessions; i++)
        event_base_loop(t->base, EVLOOP_NONBLOCK);
    while (t->lp.sessions) {
        session_abort(t->lp.sessions);
        event_base_loop(t->base, EVLOOP_NONBLOCK);
    }
    if (t->fake.bev)
        bufferevent_free(t->fake.bev);
    evconnlistener_free(t->fake.evl);
    evbuffer_free(t->fake.seen);
    runtime_unref(t->lp.rt);
    event_base_free(t->base);
    free(t);
    return 0;
}

/* Count complete replies (final lines "NNN " or "NNN\r\n") in buf. */
static int count_replies(const char *buf, size_t len)
{
    int n = 0;
    size_t start = 0;

    for (size_t i = 0; i + 1 < len; i++) {
        if (buf[i] == '\r' && buf[i + 1] == '\n') {
            if (i - start >= 3 && (i - start == 3 || buf[start + 3] == ' '))
                n++;
            start = i + 2;
        }
    }
    return n;
}

/* Run the loop until the client has n replies (or 3 s); return them. */
static const char *replies(struct t *t, int n)
{
    for (int round = 0; round < 3000; round++) {
        ssize_t r = recv(t->client, t->buf + t->have,
                         sizeof(t->buf) - 1 - t->have, MSG_DONTWAIT);
        if (r > 0)
            t->have += (size_t)r;
        t->buf[t->have] = '\0';
        if (count_replies(t->buf, t->have) >= n)
            break;
        if (r == 0)
            break;
        struct timeval tv = {0, 1000};
        event_base_loopexit(t->base, &tv);
        event_base_dispatch(t->base);
    }
    return t->buf;
}

static void say(struct t *t, const char *s, size_t len)
{
    assert_int_equal(send(t->client, s, len, 0), (ssize_t)len);
}
#define SAY(t, lit) say(t, lit, sizeof(lit) - 1)

static void clear(struct t *t)
{
    t->have = 0;
    t->buf[0] = '\0';
}

static bool backend_saw(struct t *t, const char *what)
{
    size_t n = evbuffer_get_length(t->fake.seen);
    const char *p = (const char *)evbuffer_pullup(t->fake.seen, -1);
    return n && memmem(p, n, what, strlen(what)) != NULL;
}

static void hello(struct t *t)
{
    assert_string_equal(replies(t, 1), "220 fake.test ESMTP\r\n");
    clear(t);
    SAY(t, "EHLO client.test\r\n");
    const char *r = replies(t, 1);
    assert_non_null(strstr(r, "250-fake.test\r\n"));
    assert_non_null(strstr(r, "PIPELINING"));
    assert_non_null(strstr(r, "CHUNKING")); /* the backend takes BDAT */
    assert_null(strstr(r, "XCLIENT"));
    clear(t);
}

/* ---- tests ---------------------------------------------------------- */

static void test_greeting_and_ehlo(void **state)
{
    struct t *t = *state;
    hello(t);
    assert_true(backend_saw(t, "EHLO client.test\r\n"));
}

static void test_pipelined_replies_in_order(void **state)
{
    struct t *t = *state;
    hello(t);
    SAY(t, "MAIL FROM:<a@x.test>\r\nFOO\r\nRCPT TO:<b@x.test>\r\n"
           "RCPT TO:<bad@x.test>\r\nRCPT TO:<c@x.test>\r\nDATA\r\n");
    assert_string_equal(replies(t, 6), "250 2.0.0 fake ok\r\n"
                                       "502 5.5.2 Error: command not recognized\r\n"
                                       "250 2.0.0 fake ok\r\n"
                                       "550 5.1.1 no such user\r\n"
                                       "250 2.0.0 fake ok\r\n"
                                       "354 End data with <CR><LF>.<CR><LF>\r\n");
    assert_false(backend_saw(t, "FOO"));
    /* Warden's DATA waits for the message. */
    assert_false(backend_saw(t, "DATA"));
    clear(t);
    SAY(t, "Subject: t\r\n\r\n..dot\r\nbody\r\n.\r\nQUIT\r\n");
    assert_string_equal(replies(t, 2), "250 2.0.0 Ok: queued as FAKE\r\n"
                                       "221 2.0.0 fake bye\r\n");
    assert_true(backend_saw(t, "DATA\r\nSubject: t\r\n\r\n..dot\r\nbody\r\n"
                               ".\r\nQUIT\r\n"));
}

static void test_rcpt_without_mail_is_local(void **state)
{
    struct t *t = *state;
    hello(t);
    SAY(t, "RCPT TO:<b@x.test>\r\nDATA\r\n");
    assert_string_equal(replies(t, 2), "503 5.5.1 Error: need MAIL command\r\n"
                                       "503 5.5.1 Error: need MAIL command\r\n");
    assert_false(backend_saw(t, "RCPT"));
}

static void test_no_valid_recipients(void **state)
{
    struct t *t = *state;
    hello(t);
    SAY(t, "MAIL FROM:<a@x.test>\r\nRCPT TO:<bad@x.test>\r\nDATA\r\n");
    assert_string_equal(replies(t, 3), "250 2.0.0 fake ok\r\n"
                                       "550 5.1.1 no such user\r\n"
                                       "554 5.5.1 Error: no valid recipients\r\n");
}

static void test_bare_lf_refused(void **state)
{
    struct t *t = *state;
    hello(t);
    SAY(t, "MAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n");
    replies(t, 3);
    clear(t);
    SAY(t, "Subject: x\r\n\r\nline\n.\nMAIL FROM:<evil@x.test>\r\n.\r\n");
    assert_string_equal(replies(t, 1), "550 5.5.2 Error: bare <LF> received\r\n");
    replies(t, 1);
    assert_false(backend_saw(t, "DATA"));
    assert_false(backend_saw(t, "evil"));
    /* the backend's transaction is reset */
    for (int i = 0; i < 20 && !backend_saw(t, "RSET"); i++)
        replies(t, 99);
    assert_true(backend_saw(t, "RSET\r\n"));
}

static void test_too_many_errors(void **state)
{
    struct t *t = *state;
    hello(t);
    SAY(t, "A\r\nB\r\nC\r\nD\r\nE\r\nF\r\n");
    const char *r = replies(t, 6);
    assert_non_null(strstr(r, "421 4.7.0"));
    assert_null(strstr(r + (strstr(r, "421") - r) + 3, "502")); /* none after */
}

static void test_long_line_and_nul(void **state)
{
    struct t *t = *state;
    char big[700];
    hello(t);
    memset(big, 'x', sizeof(big));
    memcpy(big, "NOOP ", 5);
    say(t, big, sizeof(big));
    SAY(t, "\r\nNO\0OP\r\nNOOP\r\n");
    assert_string_equal(replies(t, 3),
                        "500 5.5.2 Error: line too long\r\n"
                        "500 5.5.2 Error: NUL character in command\r\n"
                        "250 2.0.0 fake ok\r\n");
}

static void test_xclient_never_relayed(void **state)
{
    struct t *t = *state;
    hello(t);
    SAY(t, "XCLIENT ADDR=10.0.0.1\r\nXFORWARD ADDR=10.0.0.1\r\nNOOP\r\n");
    assert_string_equal(replies(t, 3),
                        "502 5.5.2 Error: command not recognized\r\n"
                        "502 5.5.2 Error: command not recognized\r\n"
                        "250 2.0.0 fake ok\r\n");
    assert_false(backend_saw(t, "XCLIENT"));
    assert_false(backend_saw(t, "XFORWARD"));
}

static void test_size_parameter(void **state)
{
    struct t *t = *state;
    hello(t);
    SAY(t, "MAIL FROM:<a@x.test> SIZE=2000000\r\n");
    assert_string_equal(replies(t, 1),
                        "552 5.3.4 Message size exceeds fixed limit\r\n");
    assert_false(backend_saw(t, "MAIL"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_greeting_and_ehlo, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_pipelined_replies_in_order, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_rcpt_without_mail_is_local, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_no_valid_recipients, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_bare_lf_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_too_many_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_line_and_nul, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_xclient_never_relayed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_size_parameter, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
