/*
 * Unit tests for store_redis against a real redis-server that the test
 * starts on a free loopback port (and stops with `redis-cli shutdown
 * nosave`). A missing redis-server is a failure, not a skip: CI installs it.
 *
 * The store runs on a libevent loop as in the daemon; a second, synchronous
 * hiredis connection ("admin") reads and pokes Redis behind its back: the
 * clock (TIME), stored TATs, heartbeat keys, CLIENT PAUSE for timeouts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>
#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "config.h"
#include "gcra.h"
#include "store.h"
#include "store_redis.h"

#define PREFIX "t:"

static int redis_port;
static char redis_dir[] = "/tmp/warden-test-redis-XXXXXX";
static char admin_password[32]; /* set while requirepass is on */

struct tctx {
    struct event_base *base;
    struct config cfg;
    struct redstore *rs, *rs2;
    struct redstore_client *c, *c2;
    redisContext *admin;
    int listen_fd; /* the silent listener, or -1 */
};

/* ------------------------------------------------------------ redis-server */

static int free_port(void)
{
    struct sockaddr_in sin = {.sin_family = AF_INET};
    socklen_t len = sizeof(sin);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
        getsockname(fd, (struct sockaddr *)&sin, &len) != 0) {
        perror("free_port");
        exit(1);
    }
    close(fd);
    return ntohs(sin.sin_port);
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

/* The pid in our pidfile, 0 while there is none. */
static long our_pid(void)
{
    char path[128];
    long pid = 0;
    FILE *f;

    snprintf(path, sizeof(path), "%s/redis.pid", redis_dir);
    if (!(f = fopen(path, "r")))
        return 0;
    if (fscanf(f, "%ld", &pid) != 1)
        pid = 0;
    fclose(f);
    return pid;
}

/*
 * The pid of the server answering on our port, 0 when none answers. Other
 * test runs may start servers at the same time: a server is ours only if
 * this pid is the one in our pidfile.
 */
static long server_pid(void)
{
    struct timeval tv = {0, 200000};
    redisContext *ctx = redisConnectWithTimeout("127.0.0.1", redis_port, tv);
    redisReply *r = NULL;
    const char *p;
    long pid = 0;

    if (ctx && !ctx->err) {
        if (admin_password[0])
            freeReplyObject(redisCommand(ctx, "AUTH %s", admin_password));
        r = redisCommand(ctx, "INFO server");
    }
    if (r && r->type == REDIS_REPLY_STRING &&
        (p = strstr(r->str, "process_id:")))
        pid = strtol(p + strlen("process_id:"), NULL, 10);
    else if (r)
        pid = -1; /* someone answers, but not with INFO */
    freeReplyObject(r);
    redisFree(ctx);
    return pid;
}

static bool redis_up(void)
{
    return server_pid() != 0;
}

static int redis_start(void)
{
    char cmd[512];

    snprintf(cmd, sizeof(cmd),
             "redis-server --bind 127.0.0.1 --port %d --save '' "
             "--appendonly no --daemonize yes --dir %s --pidfile %s/redis.pid "
             ">/dev/null 2>&1",
             redis_port, redis_dir, redis_dir);
    if (system(cmd) != 0)
        return -1;
    for (int i = 0; i < 100; i++, sleep_ms(50)) {
        long pid = our_pid();

        if (pid > 0 && server_pid() == pid)
            return 0;
    }
    return -1;
}

static void redis_stop(void)
{
    char cmd[256];

    snprintf(cmd, sizeof(cmd),
             "redis-cli -p %d %s%s shutdown nosave >/dev/null 2>&1", redis_port,
             admin_password[0] ? "-a " : "", admin_password);
    if (system(cmd) != 0)
        fprintf(stderr, "redis-cli shutdown failed\n");
    for (int i = 0; i < 100 && redis_up(); i++)
        sleep_ms(50);
}

static int group_setup(void **state)
{
    (void)state;
    if (!mkdtemp(redis_dir))
        return -1;
    /* a port picked by free_port() may be taken again before redis binds */
    for (int attempt = 0; attempt < 3; attempt++) {
        redis_port = free_port();
        if (redis_start() == 0)
            return 0;
        fprintf(stderr, "cannot start redis-server on port %d\n", redis_port);
    }
    return -1;
}

static int group_teardown(void **state)
{
    char path[128];

    (void)state;
    redis_stop();
    snprintf(path, sizeof(path), "%s/redis.pid", redis_dir);
    unlink(path);
    rmdir(redis_dir);
    return 0;
}

/* ------------------------------------------------------------------ admin */

static redisContext *admin_connect(void)
{
    redisContext *ctx = redisConnect("127.0.0.1", redis_port);

    assert_non_null(ctx);
    assert_int_equal(ctx->err, 0);
    if (admin_password[0])
        freeReplyObject(redisCommand(ctx, "AUTH %s", admin_password));
    return ctx;
}

static redisReply *admin_cmd(struct tctx *t, const char *fmt, ...)
{
    va_list ap;
    redisReply *r;

    va_start(ap, fmt);
    r = redisvCommand(t->admin, fmt, ap);
    va_end(ap);
    assert_non_null(r);
    return r;
}

static long long admin_int(struct tctx *t, const char *fmt, ...)
{
    va_list ap;
    redisReply *r;
    long long v;

    va_start(ap, fmt);
    r = redisvCommand(t->admin, fmt, ap);
    va_end(ap);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    v = r->integer;
    freeReplyObject(r);
    return v;
}

/* Redis's clock, the one the script uses, in microseconds. */
static double redis_now(struct tctx *t)
{
    redisReply *r = admin_cmd(t, "TIME");
    double us;

    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    us = strtod(r->element[0]->str, NULL) * 1e6 +
         strtod(r->element[1]->str, NULL);
    freeReplyObject(r);
    return us;
}

/* The stored TAT of a GCRA key, 0 when there is none. */
static double stored_tat(struct tctx *t, const char *key)
{
    redisReply *r = admin_cmd(t, "GET %s%s", PREFIX, key);
    double tat = r->type == REDIS_REPLY_STRING ? strtod(r->str, NULL) : 0;

    freeReplyObject(r);
    return tat;
}

/* ------------------------------------------------------------- event loop */

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

/* Run the loop until *flag or ms have passed; returns *flag. */
static bool pump_until(struct event_base *base, const bool *flag, unsigned ms)
{
    struct event *tick = event_new(base, -1, EV_PERSIST, tick_cb, NULL);
    struct timeval every = {0, 5000};
    struct timespec start, now;
    long elapsed = 0;

    event_add(tick, &every);
    clock_gettime(CLOCK_MONOTONIC, &start);
    while ((!flag || !*flag) && elapsed < (long)ms) {
        event_base_loop(base, EVLOOP_ONCE);
        clock_gettime(CLOCK_MONOTONIC, &now);
        elapsed = (now.tv_sec - start.tv_sec) * 1000 +
                  (now.tv_nsec - start.tv_nsec) / 1000000;
    }
    event_free(tick);
    return flag && *flag;
}

static void pump(struct event_base *base, unsigned ms)
{
    pump_until(base, NULL, ms);
}

static bool client_ready(struct event_base *base, struct redstore_client *c,
                         unsigned ms)
{
    for (unsigned i = 0; i < ms / 10 && !redstore_client_ready(c); i++)
        pump(base, 10);
    return redstore_client_ready(c);
}

struct waiter {
    bool called;
    int calls;
    bool ok;
    struct store_result *res;
};

static void on_done(void *arg, bool ok, struct store_result *res)
{
    struct waiter *w = arg;

    w->called = true;
    w->calls++;
    w->ok = ok;
    w->res = res;
}

/* One call, to completion; returns its ok. */
static bool run(struct tctx *t, struct redstore_client *c,
                const struct store_op *ops, size_t n, struct store_result *res)
{
    struct waiter w = {0};
    struct store_call *call = NULL;

    assert_int_equal(redstore_run(c, ops, n, res, on_done, &w, &call),
                     STORE_PENDING);
    assert_non_null(call);
    assert_int_equal(w.calls, 0); /* never from inside redstore_run */
    assert_true(pump_until(t->base, &w.called, 5000));
    assert_int_equal(w.calls, 1);
    if (w.ok)
        assert_ptr_equal(w.res, res);
    else
        assert_null(w.res);
    return w.ok;
}

static struct store_result run1(struct tctx *t, struct redstore_client *c,
                                const struct store_op *op)
{
    struct store_result res;

    memset(&res, 0xa5, sizeof(res));
    assert_true(run(t, c, op, 1, &res));
    return res;
}

/* -------------------------------------------------------------------- ops */

static struct store_op gcra_op(enum store_op_kind kind, const char *key,
                               uint64_t count, uint64_t period_ms,
                               uint64_t burst)
{
    struct store_op op;
    struct rate r = {count, period_ms, burst};

    memset(&op, 0, sizeof(op));
    op.kind = kind;
    snprintf(op.key, sizeof(op.key), "%s", key);
    gcra_window_from_rate(&r, &op.w);
    op.cost = 1;
    return op;
}

static struct store_op conn_op(enum store_op_kind kind, const char *key,
                               uint64_t limit)
{
    struct store_op op;

    memset(&op, 0, sizeof(op));
    op.kind = kind;
    snprintf(op.key, sizeof(op.key), "%s", key);
    op.limit = limit;
    return op;
}

/* ----------------------------------------------------------------- set up */

static void conf_init(struct config *cfg, int port)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->store.type = STORE_REDIS;
    assert_int_equal(
        netaddr_from_ip(&cfg->store.redis, "127.0.0.1", (unsigned)port), 0);
    cfg->store.timeout = 300;
    cfg->store.key_prefix = (char *)PREFIX;
    cfg->store.node_ttl = 30000;
}

/* A node: its store and one client on t's loop, connected. */
static void node_open(struct tctx *t, const struct config *cfg,
                      struct redstore **rs, struct redstore_client **c)
{
    *rs = redstore_new(cfg);
    assert_non_null(*rs);
    *c = redstore_client_new(*rs, t->base);
    assert_non_null(*c);
}

static int setup(void **state)
{
    struct tctx *t = calloc(1, sizeof(*t));

    if (!t)
        return -1;
    t->listen_fd = -1;
    t->admin = admin_connect();
    freeReplyObject(admin_cmd(t, "FLUSHALL"));
    t->base = event_base_new();
    conf_init(&t->cfg, redis_port);
    node_open(t, &t->cfg, &t->rs, &t->c);
    assert_true(client_ready(t->base, t->c, 2000));
    *state = t;
    return 0;
}

static int teardown(void **state)
{
    struct tctx *t = *state;

    redstore_client_free(t->c);
    redstore_client_free(t->c2);
    redstore_free(t->rs);
    redstore_free(t->rs2);
    event_base_free(t->base);
    redisFree(t->admin);
    if (t->listen_fd >= 0)
        close(t->listen_fd);
    free(t);
    return 0;
}

/* ------------------------------------------------------------------ tests */

/*
 * Some integer now in [t0, t1] (Redis's clock just before and after the
 * call) must give, through gcra_evaluate, the very same doubles.
 */
static void assert_reference(const struct store_op *op, double tat_before,
                             double t0, double t1, const struct store_result *r,
                             double tat_after)
{
    struct gcra_outcome o;

    for (double now = t0; now <= t1; now += 1) {
        gcra_evaluate(&op->w, tat_before, now, op->cost, &o);
        if (o.allowed == r->allowed && o.retry_us == r->retry_us &&
            o.remaining == r->remaining &&
            (o.allowed ? o.new_tat_us == tat_after : tat_after == tat_before))
            return;
    }
    fail_msg("no now in [%.0f, %.0f] reproduces allowed=%d retry=%.17g "
             "remaining=%.17g",
             t0, t1, r->allowed, r->retry_us, r->remaining);
}

static void test_allow_n_then_deny(void **state)
{
    struct tctx *t = *state;
    struct store_op op = gcra_op(STORE_GCRA, "ip:a", 5, 60000, 0);

    for (int i = 0; i < 7; i++) {
        double tat = stored_tat(t, "ip:a"), t0 = redis_now(t);
        struct store_result r = run1(t, t->c, &op);
        double t1 = redis_now(t);

        assert_reference(&op, tat, t0, t1, &r, stored_tat(t, "ip:a"));
        if (i < 5) {
            assert_true(r.allowed);
            assert_int_equal((int)r.remaining, 4 - i);
            assert_true(r.retry_us == 0);
        } else {
            assert_false(r.allowed);
            assert_true(r.retry_us > 0 && r.retry_us <= op.w.emission_us);
            assert_true(r.remaining < 1);
        }
    }
    /* the key expires once its TAT has passed, plus a second */
    long long pttl = admin_int(t, "PTTL %sip:a", PREFIX);
    assert_true(pttl > 59000 && pttl <= 61000);
}

static void test_all_or_nothing(void **state)
{
    struct tctx *t = *state;
    struct store_op ops[3] = {gcra_op(STORE_GCRA, "w:min", 2, 60000, 0),
                              gcra_op(STORE_GCRA, "w:day", 100, 86400000, 0),
                              conn_op(STORE_CONN_ACQUIRE, "w:conn", 10)};
    struct store_result res[3];

    for (int i = 0; i < 2; i++) {
        assert_true(run(t, t->c, ops, 3, res));
        assert_true(res[0].allowed && res[1].allowed && res[2].allowed);
        assert_int_equal(res[2].current, i + 1);
    }
    double day_tat = stored_tat(t, "w:day");
    assert_true(run(t, t->c, ops, 3, res));
    assert_false(res[0].allowed);
    assert_true(res[1].allowed); /* would pass on its own... */
    assert_true(res[2].allowed);
    /* ...but nothing was counted, as a follow-up call shows */
    assert_true(stored_tat(t, "w:day") == day_tat);
    struct store_op peek = gcra_op(STORE_GCRA_PEEK, "w:day", 100, 86400000, 0);
    struct store_result r = run1(t, t->c, &peek);
    assert_int_equal((int)r.remaining, 97); /* 2 counted, 1 more peeked */
    struct store_op acq = conn_op(STORE_CONN_ACQUIRE, "w:conn", 10);
    r = run1(t, t->c, &acq);
    assert_int_equal(r.current, 3);
}

static void test_dry_run_reports_but_never_blocks(void **state)
{
    struct tctx *t = *state;
    struct store_op ops[2] = {gcra_op(STORE_GCRA, "d:enf", 100, 60000, 0),
                              gcra_op(STORE_GCRA, "d:dry", 1, 60000, 0)};
    struct store_result res[2];

    ops[1].dry_run = true;
    ops[1].strike_ttl_ms = 60000;
    assert_true(run(t, t->c, ops, 2, res));
    assert_true(res[0].allowed && res[1].allowed);
    double dry_tat = stored_tat(t, "d:dry");
    assert_true(dry_tat > 0); /* passed: counted as enforcing would */

    assert_true(run(t, t->c, ops, 2, res));
    assert_true(res[0].allowed);
    assert_false(res[1].allowed); /* reported... */
    assert_true(res[1].retry_us > 0);
    assert_int_equal(res[1].strikes, 0);            /* ...no strike... */
    assert_true(stored_tat(t, "d:dry") == dry_tat); /* ...not counted */
    struct store_op peek = gcra_op(STORE_GCRA_PEEK, "d:enf", 100, 60000, 0);
    assert_int_equal((int)run1(t, t->c, &peek).remaining, 97);
    assert_int_equal(admin_int(t, "EXISTS %sd:dry:strikes", PREFIX), 0);

    /* an enforced refusal elsewhere: the dry-run op is not counted */
    struct store_op ops2[2] = {gcra_op(STORE_GCRA, "d:dry", 1, 60000, 0),
                               gcra_op(STORE_GCRA, "d:other", 10, 60000, 0)};
    ops2[1].dry_run = true;
    assert_true(run(t, t->c, ops2, 2, res));
    assert_false(res[0].allowed);
    assert_true(res[1].allowed);
    assert_int_equal(admin_int(t, "EXISTS %sd:other", PREFIX), 0);
}

static void test_peek_does_not_count(void **state)
{
    struct tctx *t = *state;
    struct store_op peek = gcra_op(STORE_GCRA_PEEK, "p:k", 2, 60000, 0);
    struct store_op take = gcra_op(STORE_GCRA, "p:k", 2, 60000, 0);
    struct store_result r;

    for (int i = 0; i < 5; i++) {
        r = run1(t, t->c, &peek);
        assert_true(r.allowed);
        assert_true(r.remaining == 1); /* what a request would leave */
    }
    assert_int_equal(admin_int(t, "EXISTS %sp:k", PREFIX), 0);
    run1(t, t->c, &take);
    run1(t, t->c, &take);
    double tat = stored_tat(t, "p:k");
    r = run1(t, t->c, &peek);
    assert_false(r.allowed);
    assert_true(stored_tat(t, "p:k") == tat);
}

static void test_add_always_counts(void **state)
{
    struct tctx *t = *state;
    struct store_op add = gcra_op(STORE_GCRA_ADD, "a:k", 2, 60000, 0);
    struct store_op take = gcra_op(STORE_GCRA, "a:k", 2, 60000, 0);
    double T = add.w.emission_us;
    struct store_result r;

    for (int i = 0; i < 3; i++) {
        double tat = stored_tat(t, "a:k"), t0 = redis_now(t);

        r = run1(t, t->c, &add);
        assert_true(r.allowed == (i < 2));
        double t1 = redis_now(t), after = stored_tat(t, "a:k");
        /* counted whatever the outcome */
        struct gcra_outcome o;
        gcra_evaluate(&add.w, tat, t1, add.cost, &o);
        assert_true(after > tat && after <= o.new_tat_us);
        if (r.allowed)
            assert_reference(&add, tat, t0, t1, &r, after);
    }
    /* three counted: the next request waits about two intervals */
    r = run1(t, t->c, &take);
    assert_false(r.allowed);
    assert_true(r.retry_us > 1.9 * T && r.retry_us <= 2 * T);

    /* a cost larger than the burst is refused but still counted */
    struct store_op big = gcra_op(STORE_GCRA_ADD, "a:bytes", 1000, 60000, 0);
    big.cost = 1500;
    r = run1(t, t->c, &big);
    assert_false(r.allowed);
    double floor_tat = redis_now(t) + 1400 * big.w.emission_us;
    assert_true(stored_tat(t, "a:bytes") > floor_tat);
}

static void test_strikes_on_denial(void **state)
{
    struct tctx *t = *state;
    struct store_op op = gcra_op(STORE_GCRA, "s:k", 1, 60000, 0);
    struct store_result r;

    op.strike_ttl_ms = 45000;
    r = run1(t, t->c, &op);
    assert_true(r.allowed);
    assert_int_equal(r.strikes, 0);
    for (unsigned i = 1; i <= 3; i++) {
        r = run1(t, t->c, &op);
        assert_false(r.allowed);
        assert_int_equal(r.strikes, i);
    }
    long long pttl = admin_int(t, "PTTL %ss:k:strikes", PREFIX);
    assert_true(pttl > 40000 && pttl <= 45000);

    /* without strike_ttl_ms nothing is counted */
    struct store_op quiet = gcra_op(STORE_GCRA, "s:q", 1, 60000, 0);
    run1(t, t->c, &quiet);
    assert_int_equal(run1(t, t->c, &quiet).strikes, 0);
    assert_int_equal(admin_int(t, "EXISTS %ss:q:strikes", PREFIX), 0);

    /* nor for what is not a refusal: a PEEK or an ADD that is over */
    struct store_op peek = gcra_op(STORE_GCRA_PEEK, "s:q", 1, 60000, 0);
    struct store_op add = gcra_op(STORE_GCRA_ADD, "s:q", 1, 60000, 0);
    peek.strike_ttl_ms = add.strike_ttl_ms = 45000;
    r = run1(t, t->c, &peek);
    assert_false(r.allowed);
    assert_int_equal(r.strikes, 0);
    r = run1(t, t->c, &add);
    assert_false(r.allowed);
    assert_int_equal(r.strikes, 0);
    assert_int_equal(admin_int(t, "EXISTS %ss:q:strikes", PREFIX), 0);
}

static void test_conn_acquire_release(void **state)
{
    struct tctx *t = *state;
    struct store_op acq = conn_op(STORE_CONN_ACQUIRE, "c:ip", 2);
    struct store_op rel = conn_op(STORE_CONN_RELEASE, "c:ip", 0);
    struct store_result r;

    r = run1(t, t->c, &acq);
    assert_true(r.allowed);
    assert_int_equal(r.current, 1);
    r = run1(t, t->c, &acq);
    assert_true(r.allowed);
    assert_int_equal(r.current, 2);
    acq.strike_ttl_ms = 10000;
    r = run1(t, t->c, &acq);
    assert_false(r.allowed);
    assert_int_equal(r.current, 2);
    assert_int_equal(r.strikes, 1);
    r = run1(t, t->c, &rel);
    assert_true(r.allowed);
    assert_int_equal(r.current, 1);
    r = run1(t, t->c, &acq);
    assert_true(r.allowed);
    assert_int_equal(r.current, 2);
    /* the hash has a TTL: nothing lives forever */
    assert_true(admin_int(t, "PTTL %sc:ip", PREFIX) > 0);
    /* releasing everything (and once too often) leaves no key behind */
    for (int i = 0; i < 3; i++)
        run1(t, t->c, &rel);
    assert_int_equal(admin_int(t, "EXISTS %sc:ip", PREFIX), 0);
}

static void test_two_nodes_share_counts(void **state)
{
    struct tctx *t = *state;
    struct store_op acq = conn_op(STORE_CONN_ACQUIRE, "n:ip", 3);
    struct store_op rel = conn_op(STORE_CONN_RELEASE, "n:ip", 0);
    struct store_op rate = gcra_op(STORE_GCRA, "n:rate", 3, 60000, 0);

    node_open(t, &t->cfg, &t->rs2, &t->c2);
    assert_true(client_ready(t->base, t->c2, 2000));
    assert_string_not_equal(redstore_node_id(t->rs), redstore_node_id(t->rs2));
    assert_true(run1(t, t->c, &acq).allowed);
    assert_true(run1(t, t->c, &acq).allowed);
    assert_int_equal(run1(t, t->c2, &acq).current, 3);
    assert_false(run1(t, t->c2, &acq).allowed);
    assert_false(run1(t, t->c, &acq).allowed);
    assert_int_equal(run1(t, t->c2, &rel).current, 2);
    assert_true(run1(t, t->c, &acq).allowed);

    /* one rate shared by both nodes: 3 in total, not 3 each */
    assert_true(run1(t, t->c, &rate).allowed);
    assert_true(run1(t, t->c2, &rate).allowed);
    assert_true(run1(t, t->c, &rate).allowed);
    assert_false(run1(t, t->c2, &rate).allowed);
    assert_false(run1(t, t->c, &rate).allowed);
}

static void test_dead_node_stops_counting(void **state)
{
    struct tctx *t = *state;
    struct store_op acq = conn_op(STORE_CONN_ACQUIRE, "x:ip", 3);

    node_open(t, &t->cfg, &t->rs2, &t->c2);
    assert_true(client_ready(t->base, t->c2, 2000));
    assert_true(run1(t, t->c, &acq).allowed);
    assert_true(run1(t, t->c, &acq).allowed);
    assert_int_equal(run1(t, t->c2, &acq).current, 3);
    /* node 1 "crashes": its heartbeat key lapses */
    assert_int_equal(
        admin_int(t, "DEL %snode:%s", PREFIX, redstore_node_id(t->rs)), 1);
    struct store_result r = run1(t, t->c2, &acq);
    assert_true(r.allowed);
    assert_int_equal(r.current, 2); /* only node 2's two slots */
    assert_int_equal(
        admin_int(t, "HEXISTS %sx:ip %s", PREFIX, redstore_node_id(t->rs)), 0);
}

static void test_heartbeat_is_refreshed(void **state)
{
    struct tctx *t = *state;
    char key[400];

    t->cfg.store.node_ttl = 300; /* refreshed every 100 ms */
    node_open(t, &t->cfg, &t->rs2, &t->c2);
    assert_true(client_ready(t->base, t->c2, 2000));
    snprintf(key, sizeof(key), "%snode:%s", PREFIX, redstore_node_id(t->rs2));
    for (int i = 0; i < 4; i++) {
        pump(t->base, 250);
        long long pttl = admin_int(t, "PTTL %s", key);
        assert_true(pttl > 0 && pttl <= 300);
    }
    /* a stopped node's key lapses within node_ttl */
    redstore_client_free(t->c2);
    t->c2 = NULL;
    sleep_ms(400);
    assert_int_equal(admin_int(t, "EXISTS %s", key), 0);
}

static void test_timeout_completes_not_ok(void **state)
{
    struct tctx *t = *state;
    struct store_op op = gcra_op(STORE_GCRA, "to:k", 10, 60000, 0);
    struct store_result res;
    struct timespec a, b;

    run1(t, t->c, &op);
    freeReplyObject(admin_cmd(t, "CLIENT PAUSE 1000"));
    clock_gettime(CLOCK_MONOTONIC, &a);
    assert_false(run(t, t->c, &op, 1, &res));
    clock_gettime(CLOCK_MONOTONIC, &b);
    long ms = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
    assert_true(ms >= 250 && ms < 800);
    /* the late reply is ignored; the connection stays usable */
    pump(t->base, 1000);
    assert_true(redstore_client_ready(t->c));
    assert_true(run1(t, t->c, &op).allowed);
}

static void test_late_acquire_is_given_back(void **state)
{
    struct tctx *t = *state;
    struct store_op acq = conn_op(STORE_CONN_ACQUIRE, "late:ip", 5);
    struct store_result res;

    run1(t, t->c, &acq);
    freeReplyObject(admin_cmd(t, "CLIENT PAUSE 600"));
    assert_false(run(t, t->c, &acq, 1, &res));
    pump(t->base, 900);
    /* the server took the slot after we gave up: it was released again */
    struct store_result r = run1(t, t->c, &acq);
    assert_int_equal(r.current, 2);
}

static void test_cancel(void **state)
{
    struct tctx *t = *state;
    struct store_op op = conn_op(STORE_CONN_ACQUIRE, "cx:ip", 5);
    struct store_result res, untouched;
    struct waiter w = {0};
    struct store_call *call = NULL;

    /* cancelled while the reply is on its way */
    memset(&res, 0x5a, sizeof(res));
    untouched = res;
    assert_int_equal(redstore_run(t->c, &op, 1, &res, on_done, &w, &call),
                     STORE_PENDING);
    redstore_call_cancel(call);
    pump(t->base, 100);
    assert_int_equal(w.calls, 0);
    assert_memory_equal(&res, &untouched, sizeof(res));

    /* cancelled while Redis is stalled: the timeout does not fire either */
    freeReplyObject(admin_cmd(t, "CLIENT PAUSE 500"));
    assert_int_equal(redstore_run(t->c, &op, 1, &res, on_done, &w, &call),
                     STORE_PENDING);
    redstore_call_cancel(call);
    pump(t->base, 800);
    assert_int_equal(w.calls, 0);
    assert_memory_equal(&res, &untouched, sizeof(res));
    /* neither cancelled acquire holds a slot */
    assert_int_equal(run1(t, t->c, &op).current, 1);
}

static void test_free_with_pending_call(void **state)
{
    struct tctx *t = *state;
    struct store_op op = gcra_op(STORE_GCRA, "f:k", 10, 60000, 0);
    struct store_result res;
    struct waiter w = {0};

    freeReplyObject(admin_cmd(t, "CLIENT PAUSE 300"));
    assert_int_equal(redstore_run(t->c, &op, 1, &res, on_done, &w, NULL),
                     STORE_PENDING);
    redstore_client_free(t->c);
    t->c = NULL;
    pump(t->base, 400);
    assert_int_equal(w.calls, 0);
}

/* A TCP listener that never accepts nor answers: the kernel completes the
 * handshake, then nothing. */
static int silent_listener(int *port)
{
    struct sockaddr_in sin = {.sin_family = AF_INET};
    socklen_t len = sizeof(sin);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(listen(fd, 8), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    *port = ntohs(sin.sin_port);
    return fd;
}

static void test_silent_server_times_out(void **state)
{
    struct tctx *t = *state;
    struct store_op op = gcra_op(STORE_GCRA, "q:k", 10, 60000, 0);
    struct store_result res;
    struct config cfg;
    int port;

    t->listen_fd = silent_listener(&port);
    conf_init(&cfg, port);
    cfg.store.timeout = 200;
    node_open(t, &cfg, &t->rs2, &t->c2);
    /* the first call queues behind the handshake, then times out */
    assert_false(run(t, t->c2, &op, 1, &res));
    assert_false(redstore_client_ready(t->c2));
    /* the handshake gives up after a second: calls then fail at once */
    pump(t->base, 1000);
    assert_int_equal(redstore_run(t->c2, &op, 1, &res, on_done, NULL, NULL),
                     STORE_FAILED);
}

static void test_redis_down_then_back(void **state)
{
    struct tctx *t = *state;
    struct store_op op = gcra_op(STORE_GCRA, "r:k", 10, 60000, 0);
    struct store_result res;
    struct store_call *call = (struct store_call *)&res;

    assert_true(run1(t, t->c, &op).allowed);
    redis_stop();
    for (int i = 0; i < 100 && redstore_client_ready(t->c); i++)
        pump(t->base, 10);
    assert_false(redstore_client_ready(t->c));
    assert_int_equal(redstore_run(t->c, &op, 1, &res, on_done, NULL, &call),
                     STORE_FAILED);
    assert_null(call);
    /* while down, reconnects keep failing and calls keep failing at once */
    pump(t->base, 1200);
    assert_int_equal(redstore_run(t->c, &op, 1, &res, on_done, NULL, NULL),
                     STORE_FAILED);
    assert_int_equal(redis_start(), 0);
    redisFree(t->admin);
    t->admin = admin_connect();
    assert_true(client_ready(t->base, t->c, 3000));
    struct store_result r = run1(t, t->c, &op);
    assert_true(r.allowed);
    assert_int_equal((int)r.remaining, 9); /* a fresh server */
}

/* The slots node rs holds in key, from its hash field. */
static long slots_of(struct tctx *t, const char *key, struct redstore *rs)
{
    redisReply *r =
        admin_cmd(t, "HGET %s%s %s", PREFIX, key, redstore_node_id(rs));
    long n = r->type == REDIS_REPLY_STRING ? strtol(r->str, NULL, 10) : 0;

    freeReplyObject(r);
    return n;
}

/* Run t's loop until c has noticed its connection is gone. */
static void loop_until_down(struct tctx *t, struct redstore_client *c)
{
    struct event *tick = event_new(t->base, -1, EV_PERSIST, tick_cb, NULL);
    struct timeval every = {0, 5000};

    event_add(tick, &every);
    for (int i = 0; i < 1000 && redstore_client_ready(c); i++)
        event_base_loop(t->base, EVLOOP_ONCE);
    event_free(tick);
    assert_false(redstore_client_ready(c));
}

static void test_release_during_outage_is_sent_later(void **state)
{
    struct tctx *t = *state;
    struct store_op acq = conn_op(STORE_CONN_ACQUIRE, "o:ip", 5);
    struct store_op rel = conn_op(STORE_CONN_RELEASE, "o:ip", 0);
    struct store_result res;

    run1(t, t->c, &acq);
    run1(t, t->c, &acq);
    /* the connection drops (Redis and its data stay) */
    freeReplyObject(admin_cmd(t, "CLIENT KILL TYPE normal"));
    loop_until_down(t, t->c);
    assert_int_equal(redstore_run(t->c, &rel, 1, &res, on_done, NULL, NULL),
                     STORE_FAILED);
    assert_int_equal(slots_of(t, "o:ip", t->rs), 2);
    /* sent once the handshake is done again */
    assert_true(client_ready(t->base, t->c, 3000));
    pump(t->base, 50);
    assert_int_equal(slots_of(t, "o:ip", t->rs), 1);
    assert_int_equal(run1(t, t->c, &acq).current, 2);
}

static void test_noscript_falls_back_to_eval(void **state)
{
    struct tctx *t = *state;
    struct store_op op = gcra_op(STORE_GCRA, "ns:k", 10, 60000, 0);

    freeReplyObject(admin_cmd(t, "SCRIPT FLUSH"));
    assert_true(run1(t, t->c, &op).allowed);
    /* EVAL put it back in the cache: EVALSHA works again */
    assert_true(run1(t, t->c, &op).allowed);
    assert_int_equal((int)run1(t, t->c, &op).remaining, 7);
}

static void test_auth_and_select(void **state)
{
    struct tctx *t = *state;
    struct store_op op = gcra_op(STORE_GCRA, "db:k", 10, 60000, 0);
    struct store_result res;
    struct config cfg = t->cfg;
    redisReply *r;

    freeReplyObject(admin_cmd(t, "CONFIG SET requirepass sesame"));
    snprintf(admin_password, sizeof(admin_password), "sesame");
    cfg.store.redis_password = (char *)"sesame";
    cfg.store.redis_db = 3;
    node_open(t, &cfg, &t->rs2, &t->c2);
    assert_true(client_ready(t->base, t->c2, 2000));
    assert_true(run1(t, t->c2, &op).allowed);
    r = admin_cmd(t, "SELECT 3");
    freeReplyObject(r);
    assert_int_equal(admin_int(t, "EXISTS %sdb:k", PREFIX), 1);
    freeReplyObject(admin_cmd(t, "SELECT 0"));
    assert_int_equal(admin_int(t, "EXISTS %sdb:k", PREFIX), 0);
    redstore_client_free(t->c2);
    redstore_free(t->rs2);

    /* a wrong password: the first call fails, later ones fail at once */
    cfg.store.redis_password = (char *)"wrong";
    node_open(t, &cfg, &t->rs2, &t->c2);
    assert_false(run(t, t->c2, &op, 1, &res));
    assert_int_equal(redstore_run(t->c2, &op, 1, &res, on_done, NULL, NULL),
                     STORE_FAILED);

    freeReplyObject(admin_cmd(t, "CONFIG SET requirepass %s", ""));
    admin_password[0] = '\0';
}

static void test_show_and_reset(void **state)
{
    struct tctx *t = *state;
    struct store_op op = gcra_op(STORE_GCRA, "sh:ip", 1, 60000, 0);
    struct store_op acq = conn_op(STORE_CONN_ACQUIRE, "sh:conn", 5);
    struct store_key_info info;
    char err[256];

    op.strike_ttl_ms = 60000;
    run1(t, t->c, &op);
    run1(t, t->c, &op);
    run1(t, t->c, &acq);
    run1(t, t->c, &acq);

    assert_int_equal(redstore_show(&t->cfg, "sh:ip", &info, err, sizeof(err)),
                     0);
    assert_true(info.exists);
    assert_true(info.tat_us == stored_tat(t, "sh:ip"));
    assert_true(info.tat_us > info.now_us);
    assert_int_equal(info.strikes, 1);
    assert_int_equal(redstore_show(&t->cfg, "sh:conn", &info, err, sizeof(err)),
                     0);
    assert_true(info.exists);
    assert_int_equal(info.conn_count, 2);

    assert_int_equal(redstore_reset(&t->cfg, "sh:ip", err, sizeof(err)), 0);
    assert_int_equal(redstore_show(&t->cfg, "sh:ip", &info, err, sizeof(err)),
                     0);
    assert_false(info.exists);
    assert_int_equal(info.strikes, 0);
    assert_true(info.now_us > 0);
    /* unblocked: the client may send again */
    assert_true(run1(t, t->c, &op).allowed);
    /* open connections keep counting through a reset */
    acq.strike_ttl_ms = 60000;
    acq.limit = 2;
    assert_int_equal(run1(t, t->c, &acq).strikes, 1);
    assert_int_equal(redstore_reset(&t->cfg, "sh:conn", err, sizeof(err)), 0);
    assert_int_equal(redstore_show(&t->cfg, "sh:conn", &info, err, sizeof(err)),
                     0);
    assert_int_equal(info.conn_count, 2);
    assert_int_equal(info.strikes, 0);

    /* errors come back as text */
    assert_int_equal(redstore_show(&t->cfg, "", &info, err, sizeof(err)), -1);
    struct config dead = t->cfg;
    assert_int_equal(
        netaddr_from_ip(&dead.store.redis, "127.0.0.1", (unsigned)free_port()),
        0);
    assert_int_equal(redstore_reset(&dead, "sh:ip", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "127.0.0.1"));
}

static void test_bad_config_refused(void **state)
{
    struct tctx *t = *state;
    struct config cfg = t->cfg;

    cfg.store.timeout = 0;
    assert_null(redstore_new(&cfg));
    cfg = t->cfg;
    memset(&cfg.store.redis, 0, sizeof(cfg.store.redis));
    assert_null(redstore_new(&cfg));
    cfg = t->cfg;
    cfg.store.node_ttl = 0;
    assert_null(redstore_new(&cfg));
}

static void test_bad_ops_and_empty_calls(void **state)
{
    struct tctx *t = *state;
    struct store_op op = gcra_op(STORE_GCRA, "b:k", 10, 60000, 0);
    struct store_result res;
    struct store_call *call = NULL;

    assert_int_equal(redstore_run(t->c, &op, 0, &res, on_done, NULL, &call),
                     STORE_DONE);
    op.w.emission_us = 0;
    assert_int_equal(redstore_run(t->c, &op, 1, &res, on_done, NULL, &call),
                     STORE_FAILED);
    op = gcra_op(STORE_GCRA, "", 10, 60000, 0);
    assert_int_equal(redstore_run(t->c, &op, 1, &res, on_done, NULL, &call),
                     STORE_FAILED);
    assert_null(call);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_allow_n_then_deny, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_all_or_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dry_run_reports_but_never_blocks,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_peek_does_not_count, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_add_always_counts, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_strikes_on_denial, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_conn_acquire_release, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_two_nodes_share_counts, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_dead_node_stops_counting, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_heartbeat_is_refreshed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_timeout_completes_not_ok, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_late_acquire_is_given_back, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_with_pending_call, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_silent_server_times_out, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_release_during_outage_is_sent_later, setup, teardown),
        cmocka_unit_test_setup_teardown(test_noscript_falls_back_to_eval, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_auth_and_select, setup, teardown),
        cmocka_unit_test_setup_teardown(test_show_and_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_config_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_bad_ops_and_empty_calls, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_redis_down_then_back, setup,
                                        teardown),
    };

    /* CI installs redis-server: its absence is a failure, never a skip */
    if (system("redis-server --version >/dev/null 2>&1") != 0) {
        fprintf(stderr, "test_store_redis: FAILED: redis-server is not "
                        "installed (apt-get install redis-server)\n");
        return 1;
    }
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
