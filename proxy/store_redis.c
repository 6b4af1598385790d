/*
 * store_redis: limit counters in Redis, shared by every Warden node that
 * points at the same server (see store.h for the rules, store_redis.h for
 * the design in short).
 *
 * A call is one EVALSHA of limits_lua below. The script is loaded with
 * SCRIPT LOAD in each connection's handshake; its SHA1 is computed here, so
 * calls can be pipelined behind the handshake. On NOSCRIPT (a SCRIPT FLUSH,
 * a failover to a server that never saw it) the call is resent as EVAL,
 * which also puts the script back in the server's cache.
 *
 * Connection life: CONNECTING (handshake: AUTH, SELECT, SCRIPT LOAD, the
 * heartbeat SET) -> READY -> DOWN on any error -> CONNECTING again after at
 * most one second. Only the first connection of a client accepts calls
 * while CONNECTING (a fresh worker's first session need not fail open);
 * after an outage calls fail at once until the handshake is done again.
 *
 * A call owns its evtimer for store.timeout; when it fires the caller gets
 * ok=false and the late reply is ignored -- except that a CONN_ACQUIRE the
 * server applied late is given back at once, so a slot no caller knows it
 * holds never stays taken. The same holds for cancelled calls. In the
 * other direction, CONN_RELEASE ops refused while the connection is down
 * are kept and sent after the reconnect (releases_defer).
 *
 * Keys: GCRA state is a string (the TAT, "%.17g") with PX until the TAT
 * has passed plus a second; strikes are key ":strikes" with PX
 * strike_ttl_ms; concurrency is a hash {node id: slots} with PX
 * CONN_HASH_TTL_MS; heartbeats are prefix "node:" id with PX node_ttl.
 * Limit keys must therefore not start with "node:".
 */
#include "store_redis.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <openssl/evp.h>

#include "config.h"
#include "log.h"
#include "metrics.h"
#include "netaddr.h"
#include "redis_events.h"

/*
 * The whole of store.h's rules in one atomic step. Numbers cross the wire
 * as text: "%.17g" reads back to the same double, and Redis would truncate
 * a Lua number in a reply to an integer.
 */
static const char limits_lua[] =
    "-- Warden limits: every op of one checkpoint in one atomic step.\n"
    "-- KEYS[i]: op i's key, prefixed. ARGV[1]: heartbeat key prefix\n"
    "-- (prefix .. 'node:'), ARGV[2]: this node's id, ARGV[3]: TTL of\n"
    "-- concurrency hashes (ms), ARGV[4]: GCRA_SLACK_US; then 7 values per\n"
    "-- op: kind, emission_us, tolerance_us, cost, limit, dry_run (1/0),\n"
    "-- strike_ttl_ms.\n"
    "-- Returns 5 strings per op: allowed (1/0), retry_us, remaining,\n"
    "-- current, strikes.\n"
    "-- Runs on every checkpoint of every message: flat arrays rather than a\n"
    "-- table per op, and no string.format for the common zero values.\n"
    "\n"
    "-- Redis < 5 needs this before writing after TIME; later ones ignore it.\n"
    "if redis.replicate_commands then redis.replicate_commands() end\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
    "local hb_prefix, node = ARGV[1], ARGV[2]\n"
    "local conn_ttl, slack = ARGV[3], tonumber(ARGV[4])\n"
    "local GCRA, ADD, ACQUIRE, RELEASE = 0, 2, 3, 4\n"
    "local fmt = string.format\n"
    "\n"
    "-- Slots in use: a node's field counts while its heartbeat key exists\n"
    "-- (ours always: we are running). Fields of dead nodes are deleted, so\n"
    "-- a crashed node's connections stop counting within node_ttl.\n"
    "local function conn_live(key)\n"
    "  local all = redis.call('HGETALL', key)\n"
    "  local total = 0\n"
    "  for i = 1, #all, 2 do\n"
    "    local field = all[i]\n"
    "    if field == node or redis.call('EXISTS', hb_prefix .. field) == 1 then\n"
    "      total = total + (tonumber(all[i + 1]) or 0)\n"
    "    else\n"
    "      redis.call('HDEL', key, field)\n"
    "    end\n"
    "  end\n"
    "  return total\n"
    "end\n"
    "\n"
    "-- Phase 1: evaluate every op; nothing is counted yet. pass stays true\n"
    "-- while no enforced GCRA or CONN_ACQUIRE op refuses. The GCRA lines are\n"
    "-- gcra_evaluate() in gcra.c, operation for operation, so that both\n"
    "-- stores give the same answers to the last bit.\n"
    "local n, pass = #KEYS, true\n"
    "local kind, ok, tat, cur, refused = {}, {}, {}, {}, {}\n"
    "local out = {}\n"
    "for i = 1, n do\n"
    "  local b = 4 + (i - 1) * 7\n"
    "  local k, key = tonumber(ARGV[b + 1]), KEYS[i]\n"
    "  local o, retry, left, c = true, 0, 0, 0\n"
    "  if k == ACQUIRE then\n"
    "    c = conn_live(key)\n"
    "    o = c + 1 <= tonumber(ARGV[b + 5])\n"
    "  elseif k ~= RELEASE then\n"
    "    local T, tol = tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3])\n"
    "    local stored = tonumber(redis.call('GET', key)) or 0\n"
    "    local at = stored > now and stored or now\n"
    "    local new_tat = at + tonumber(ARGV[b + 4]) * T\n"
    "    local allow_at = new_tat - tol\n"
    "    o = allow_at <= now + slack\n"
    "    left = (now + tol - (o and new_tat or at)) / T\n"
    "    if left < 0 then left = 0 end\n"
    "    if not o then retry = allow_at - now end\n"
    "    tat[i] = new_tat\n"
    "  end\n"
    "  local r = not o and ARGV[b + 6] ~= '1' and (k == GCRA or k == ACQUIRE)\n"
    "  if r then pass = false end\n"
    "  kind[i], ok[i], cur[i], refused[i] = k, o, c, r\n"
    "  local j = (i - 1) * 5\n"
    "  out[j + 1] = o and '1' or '0'\n"
    "  out[j + 2] = retry == 0 and '0' or fmt('%.17g', retry)\n"
    "  out[j + 3] = left == 0 and '0' or fmt('%.17g', left)\n"
    "end\n"
    "\n"
    "-- Phase 2: count. GCRA and CONN_ACQUIRE ops (enforced or dry run) count\n"
    "-- when all enforced ops passed and they pass themselves; PEEK never\n"
    "-- counts; ADD and RELEASE always do. A refusal is a strike. A GCRA key\n"
    "-- is only needed until its TAT has passed: after that a missing key and\n"
    "-- the stored one give the same answer.\n"
    "for i = 1, n do\n"
    "  local k, key, counts = kind[i], KEYS[i], pass and ok[i]\n"
    "  local strikes = 0\n"
    "  if (k == GCRA and counts) or k == ADD then\n"
    "    local ms = math.ceil((tat[i] - now) / 1000) + 1000\n"
    "    if ms < 1000 then ms = 1000 end\n"
    "    redis.call('SET', key, fmt('%.17g', tat[i]), 'PX', fmt('%d', ms))\n"
    "  elseif k == ACQUIRE and counts then\n"
    "    redis.call('HINCRBY', key, node, 1)\n"
    "    redis.call('PEXPIRE', key, conn_ttl)\n"
    "    cur[i] = cur[i] + 1\n"
    "  elseif k == RELEASE then\n"
    "    if redis.call('HINCRBY', key, node, -1) <= 0 then\n"
    "      redis.call('HDEL', key, node)\n"
    "    end\n"
    "    cur[i] = conn_live(key)\n"
    "    redis.call('PEXPIRE', key, conn_ttl)\n"
    "  end\n"
    "  local strike_ttl = ARGV[4 + (i - 1) * 7 + 7]\n"
    "  if refused[i] and strike_ttl ~= '0' then\n"
    "    local sk = key .. ':strikes'\n"
    "    strikes = redis.call('INCR', sk)\n"
    "    redis.call('PEXPIRE', sk, strike_ttl)\n"
    "  end\n"
    "  local j = (i - 1) * 5\n"
    "  out[j + 4] = cur[i] == 0 and '0' or fmt('%d', cur[i])\n"
    "  out[j + 5] = strikes == 0 and '0' or fmt('%d', strikes)\n"
    "end\n"
    "return out\n";

/* Read-only view of one key for `warden limits show` (dead nodes' fields
 * are skipped, not deleted: show changes nothing). */
static const char show_lua[] =
    "-- KEYS[1]: the key, KEYS[2]: its strike counter; ARGV[1]: heartbeat\n"
    "-- key prefix. Returns type, tat_us, now_us, live slots, strikes.\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
    "local kind = redis.call('TYPE', KEYS[1])['ok']\n"
    "local tat, conns = 0, 0\n"
    "if kind == 'string' then\n"
    "  tat = tonumber(redis.call('GET', KEYS[1])) or 0\n"
    "elseif kind == 'hash' then\n"
    "  local all = redis.call('HGETALL', KEYS[1])\n"
    "  for i = 1, #all, 2 do\n"
    "    if redis.call('EXISTS', ARGV[1] .. all[i]) == 1 then\n"
    "      conns = conns + (tonumber(all[i + 1]) or 0)\n"
    "    end\n"
    "  end\n"
    "end\n"
    "return {kind, string.format('%.17g', tat), string.format('%.17g', now),\n"
    "  string.format('%d', conns), redis.call('GET', KEYS[2]) or '0'}\n";

/* `warden limits reset`: rate state and strikes go; a concurrency hash
 * stays, since it counts connections that are still open. */
static const char reset_lua[] =
    "-- KEYS[1]: the key, KEYS[2]: its strike counter.\n"
    "if redis.call('TYPE', KEYS[1])['ok'] == 'string' then\n"
    "  redis.call('DEL', KEYS[1])\n"
    "end\n"
    "redis.call('DEL', KEYS[2])\n"
    "return 0\n";

/* Values per op in the script's ARGV and in its reply. */
#define OP_ARGS 7
#define OP_RESULTS 5
/* Room for one number as text ("%.17g" needs at most 24). */
#define NUM_MAX 32
/* Concurrency hashes live this long after their last acquire or release:
 * a bound on leftovers, far above any SMTP session's length. */
#define CONN_HASH_TTL_MS (24u * 3600u * 1000u)
/* Never reconnect more often than this. */
#define RECONNECT_MS 1000u
/* Redis errors in the log: at most one line per client this often. */
#define ERROR_LOG_MS 10000u
/* Releases kept per client while Redis is away (256 bytes each). */
#define DEFERRED_MAX 4096u
/* Releases per call when they are sent after a reconnect. */
#define DEFERRED_BATCH 32u

/* Where Redis listens: an IP and port, or a Unix socket. */
struct endpoint {
    char host[NETADDR_STRLEN]; /* numeric IP, for hiredis */
    int port;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)]; /* "": TCP */
    char addr[sizeof("unix:") + sizeof(((struct sockaddr_un *)0)->sun_path)];
    /* "127.0.0.1:6379" or "unix:/path", for logs */
};

struct redstore {
    struct endpoint ep;
    char *password;            /* NULL: no AUTH */
    unsigned db;               /* 0: no SELECT */
    unsigned timeout_ms;
    unsigned node_ttl_ms;
    char *prefix;
    char *hb_prefix; /* prefix "node:" */
    char *hb_key;    /* hb_prefix node_id */
    char node_id[320];
    char sha[41];     /* SHA1 of limits_lua, hex */
    int down_clients; /* atomic: clients in an outage */
};

enum conn_state { CONN_DOWN, CONN_CONNECTING, CONN_READY };

struct redstore_client {
    struct redstore *rs;
    struct event_base *base;
    redisAsyncContext *ac; /* NULL while DOWN */
    enum conn_state state;
    bool outage; /* failed since the last good handshake */
    uint64_t last_attempt_ms;
    uint64_t last_error_log_ms;
    struct event *reconnect_timer;
    struct event *handshake_timer;
    struct event *heartbeat_timer;
    struct store_call *head, *tail;  /* awaiting a reply, oldest first */
    char (*deferred)[STORE_KEY_MAX]; /* releases to send on reconnect */
    size_t ndeferred, deferred_cap;
};

/* One op as the late-reply path needs it (see call_undo_late). */
struct call_op {
    uint8_t kind;
    bool dry_run;
};

/* The command's arguments: pointers into buf, or to static strings. */
struct cmd {
    const char **argv;
    size_t *lens;
    int argc, max;
    char *buf;
    size_t used, cap;
};

struct store_call {
    struct redstore_client *c; /* NULL once the client is freed */
    struct store_call *prev, *next;
    struct event *timer; /* NULL once finished */
    uint64_t sent_ms;
    uint64_t sent_us; /* monotonic, for the latency metric */
    bool finished; /* done() called, cancelled or detached */
    store_done_fn done;
    void *arg;
    struct store_result *res;
    size_t n;
    struct call_op *ops;
    struct cmd cmd;
};

/* the shared part */
static void endpoint_from_conf(const struct store_conf *sc,
                               struct endpoint *ep);
static int conf_check(const struct store_conf *sc);
static void node_id_make(char *buf, size_t len);
static int script_sha(char *hex);
static char *str_join(const char *a, const char *b);
static uint64_t now_ms(void);
static uint64_t mono_us(void);
static struct timeval tv_ms(uint64_t ms);

/* the connection */
static void conn_start(struct redstore_client *c);
static void conn_handshake(struct redstore_client *c);
static void conn_on_connect(const redisAsyncContext *ac, int status);
static void conn_on_disconnect(const redisAsyncContext *ac, int status);
static void conn_setup_reply(redisAsyncContext *ac, void *r, void *privdata);
static void conn_ready(struct redstore_client *c);
static void conn_failed(struct redstore_client *c, const char *why);
static void conn_drop(struct redstore_client *c, const char *why);
static void conn_reconnect_cb(evutil_socket_t fd, short what, void *arg);
static void conn_handshake_timeout_cb(evutil_socket_t fd, short what,
                                      void *arg);
static void conn_heartbeat_cb(evutil_socket_t fd, short what, void *arg);
static bool conn_accepts_calls(const struct redstore_client *c);
static void outage_begin(struct redstore_client *c, const char *why);
static void outage_end(struct redstore_client *c);
static void log_redis_error(struct redstore_client *c, const char *what);
static void releases_defer(struct redstore_client *c,
                           const struct store_op *ops, size_t n);
static bool releases_grow(struct redstore_client *c);
static void releases_flush(struct redstore_client *c);

/* the command text */
static int cmd_init(struct cmd *m, int argc, size_t textlen);
static void cmd_free(struct cmd *m);
static int cmd_add2(struct cmd *m, const char *a, size_t alen, const char *b,
                    size_t blen);
static int cmd_add(struct cmd *m, const char *s, size_t len);
static int cmd_addf(struct cmd *m, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int cmd_build(struct cmd *m, const struct redstore *rs,
                     const struct store_op *ops, size_t n);
static int op_check(const struct store_op *op);

/* calls */
static struct store_call *call_new(struct redstore_client *c,
                                   const struct store_op *ops, size_t n);
static int call_send(struct store_call *call, redisAsyncContext *ac);
static void call_reply(redisAsyncContext *ac, void *r, void *privdata);
static bool call_resend_eval(struct store_call *call, redisAsyncContext *ac,
                             redisReply *reply);
static void call_timeout_cb(evutil_socket_t fd, short what, void *arg);
static void call_finish(struct store_call *call, bool ok);
static void call_undo_late(struct store_call *call, redisReply *reply);
static void call_send_detached(struct redstore_client *c,
                               const struct store_op *ops, size_t n);
static void call_unlink(struct store_call *call);
static void call_free(struct store_call *call);
static bool results_parse(const redisReply *reply, size_t n,
                          struct store_result *res);
static bool parse_double(const redisReply *r, double *out);
static bool parse_u64(const redisReply *r, uint64_t *out);
static void calls_orphan(struct redstore_client *c);

/* the synchronous helpers */
static redisContext *sync_connect(const struct config *cfg, char *err,
                                  size_t errlen);
static redisReply *sync_argv(redisContext *ctx, int argc, const char **argv,
                             char *err, size_t errlen);
static int key_check(const char *key, char *err, size_t errlen);
static int show_query(redisContext *ctx, const char *prefix, const char *key,
                      struct store_key_info *out, char *err, size_t errlen);

/* ---------------------------------------------------------------- store */

struct redstore *redstore_new(const struct config *cfg)
{
    const struct store_conf *sc = &cfg->store;
    struct redstore *rs;

    if (conf_check(sc) != 0)
        return NULL;
    rs = calloc(1, sizeof(*rs));
    if (!rs) {
        log_err("store: out of memory");
        return NULL;
    }
    endpoint_from_conf(sc, &rs->ep);
    rs->db = sc->redis_db;
    rs->timeout_ms = sc->timeout;
    rs->node_ttl_ms = sc->node_ttl;
    node_id_make(rs->node_id, sizeof(rs->node_id));
    rs->prefix = strdup(sc->key_prefix ? sc->key_prefix : "");
    rs->hb_prefix = str_join(rs->prefix, "node:");
    rs->hb_key = rs->hb_prefix ? str_join(rs->hb_prefix, rs->node_id) : NULL;
    if (sc->redis_password)
        rs->password = strdup(sc->redis_password);
    if (!rs->prefix || !rs->hb_prefix || !rs->hb_key ||
        (sc->redis_password && !rs->password) || script_sha(rs->sha) != 0) {
        log_err("store: cannot set up the redis store (out of memory?)");
        redstore_free(rs);
        return NULL;
    }
    return rs;
}

void redstore_free(struct redstore *rs)
{
    if (!rs)
        return;
    free(rs->password);
    free(rs->prefix);
    free(rs->hb_prefix);
    free(rs->hb_key);
    free(rs);
}

const char *redstore_node_id(const struct redstore *rs)
{
    return rs->node_id;
}

/* What redstore_new and the synchronous helpers refuse. */
static int conf_check(const struct store_conf *sc)
{
    int family = sc->redis.ss.ss_family;

    if (!sc->redis_socket && family != AF_INET && family != AF_INET6) {
        log_err("store: redis address is not an IP address and port");
        return -1;
    }
    if (sc->timeout == 0) {
        log_err("store: redis timeout must be above 0 ms");
        return -1;
    }
    /* the heartbeat runs every node_ttl/3 and needs a few ms of slack */
    if (sc->node_ttl < 30) {
        log_err("store: node_ttl must be at least 30 ms (is %u)", sc->node_ttl);
        return -1;
    }
    return 0;
}

static void endpoint_from_conf(const struct store_conf *sc,
                               struct endpoint *ep)
{
    memset(ep, 0, sizeof(*ep));
    if (sc->redis_socket) {
        snprintf(ep->path, sizeof(ep->path), "%s", sc->redis_socket);
        snprintf(ep->addr, sizeof(ep->addr), "unix:%s", ep->path);
        return;
    }
    netaddr_ip(&sc->redis, ep->host, sizeof(ep->host));
    netaddr_str(&sc->redis, ep->addr, sizeof(ep->addr));
    ep->port = (int)netaddr_port(&sc->redis);
}

/*
 * hostname:pid:start-time in microseconds. The time is kept strictly
 * increasing within the process, so two stores in one process (a test's
 * two "nodes") never share an id either.
 */
static void node_id_make(char *buf, size_t len)
{
    static uint64_t last_us;
    char host[256];
    struct timeval tv;
    uint64_t us, prev;

    if (gethostname(host, sizeof(host)) != 0)
        snprintf(host, sizeof(host), "localhost");
    host[sizeof(host) - 1] = '\0';
    gettimeofday(&tv, NULL);
    us = (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
    prev = __atomic_load_n(&last_us, __ATOMIC_RELAXED);
    do {
        if (us <= prev)
            us = prev + 1;
    } while (!__atomic_compare_exchange_n(&last_us, &prev, us, false,
                                          __ATOMIC_RELAXED, __ATOMIC_RELAXED));
    snprintf(buf, len, "%s:%ld:%" PRIu64, host, (long)getpid(), us);
}

/* The SHA1 Redis will know the script by, so EVALSHA can be sent before
 * SCRIPT LOAD's reply is back. */
static int script_sha(char *hex)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;

    if (!EVP_Digest(limits_lua, strlen(limits_lua), md, &mdlen, EVP_sha1(),
                    NULL) ||
        mdlen != 20)
        return -1;
    for (unsigned i = 0; i < mdlen; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    return 0;
}

static char *str_join(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *s = malloc(la + lb + 1);

    if (!s)
        return NULL;
    memcpy(s, a, la);
    memcpy(s + la, b, lb + 1);
    return s;
}

static uint64_t mono_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t now_ms(void) { return mono_us() / 1000u; }

static struct timeval tv_ms(uint64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};

    return tv;
}

/* ------------------------------------------------------------ connection */

struct redstore_client *redstore_client_new(struct redstore *rs,
                                            struct event_base *base)
{
    struct redstore_client *c = calloc(1, sizeof(*c));
    struct timeval beat;

    if (!c)
        return NULL;
    c->rs = rs;
    c->base = base;
    c->reconnect_timer = evtimer_new(base, conn_reconnect_cb, c);
    c->handshake_timer = evtimer_new(base, conn_handshake_timeout_cb, c);
    /*
     * Every client refreshes the node's heartbeat, rather than only the
     * first one: no hand-over when a loop ends, and the key lives while any
     * loop can reach Redis. The cost is one SET per loop per node_ttl/3.
     */
    c->heartbeat_timer = event_new(base, -1, EV_PERSIST, conn_heartbeat_cb, c);
    if (!c->reconnect_timer || !c->handshake_timer || !c->heartbeat_timer) {
        redstore_client_free(c);
        return NULL;
    }
    beat = tv_ms(rs->node_ttl_ms / 3);
    event_add(c->heartbeat_timer, &beat);
    conn_start(c);
    return c;
}

void redstore_client_free(struct redstore_client *c)
{
    if (!c)
        return;
    calls_orphan(c);
    if (c->ac) {
        redisAsyncContext *ac = c->ac;

        c->ac = NULL;
        ac->data = NULL;
        redisAsyncFree(ac);
    }
    if (c->outage)
        __atomic_sub_fetch(&c->rs->down_clients, 1, __ATOMIC_RELAXED);
    if (c->reconnect_timer)
        event_free(c->reconnect_timer);
    if (c->handshake_timer)
        event_free(c->handshake_timer);
    if (c->heartbeat_timer)
        event_free(c->heartbeat_timer);
    free(c->deferred);
    free(c);
}

bool redstore_client_ready(const struct redstore_client *c)
{
    return c && c->state == CONN_READY;
}

/* One connection attempt; failures end in conn_failed(), which retries. */
static void conn_start(struct redstore_client *c)
{
    struct redstore *rs = c->rs;
    redisAsyncContext *ac;
    struct timeval limit;

    c->last_attempt_ms = now_ms();
    ac = rs->ep.path[0] ? redisAsyncConnectUnix(rs->ep.path)
                        : redisAsyncConnect(rs->ep.host, rs->ep.port);
    if (!ac) {
        conn_failed(c, "out of memory");
        return;
    }
    if (ac->err) {
        char why[128];

        snprintf(why, sizeof(why), "%s", ac->errstr);
        redisAsyncFree(ac);
        conn_failed(c, why);
        return;
    }
    ac->data = c;
    if (redis_events_attach(ac, c->base) != 0) {
        redisAsyncFree(ac);
        conn_failed(c, "cannot attach to the event loop");
        return;
    }
    redisAsyncSetConnectCallback(ac, conn_on_connect);
    redisAsyncSetDisconnectCallback(ac, conn_on_disconnect);
    /* a peer that vanishes without a RST is noticed eventually (TCP only:
     * hiredis's keepalive fails, and marks the context, on a Unix socket) */
    if (!rs->ep.path[0])
        redisEnableKeepAlive(&ac->c);
    c->ac = ac;
    c->state = CONN_CONNECTING;
    conn_handshake(c);
    /* a server that accepts but never answers must not keep us waiting */
    limit = tv_ms(rs->timeout_ms > 1000 ? rs->timeout_ms : 1000);
    evtimer_add(c->handshake_timer, &limit);
}

enum setup_step { SETUP_AUTH, SETUP_SELECT, SETUP_SCRIPT, SETUP_HEARTBEAT };
static const char *const setup_names[] = {"AUTH", "SELECT", "SCRIPT LOAD",
                                          "heartbeat"};

/*
 * Queued before the connect completes; hiredis writes them once it does,
 * and any call sent meanwhile follows them on the wire. The heartbeat
 * SET goes last: its reply means the whole handshake succeeded.
 */
static void conn_handshake(struct redstore_client *c)
{
    struct redstore *rs = c->rs;
    redisAsyncContext *ac = c->ac;

    if (rs->password)
        redisAsyncCommand(ac, conn_setup_reply, (void *)(intptr_t)SETUP_AUTH,
                          "AUTH %s", rs->password);
    if (rs->db)
        redisAsyncCommand(ac, conn_setup_reply, (void *)(intptr_t)SETUP_SELECT,
                          "SELECT %u", rs->db);
    redisAsyncCommand(ac, conn_setup_reply, (void *)(intptr_t)SETUP_SCRIPT,
                      "SCRIPT LOAD %s", limits_lua);
    redisAsyncCommand(ac, conn_setup_reply, (void *)(intptr_t)SETUP_HEARTBEAT,
                      "SET %s 1 PX %u", rs->hb_key, rs->node_ttl_ms);
}

static void conn_setup_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    struct redstore_client *c = ac->data;
    redisReply *reply = r;
    intptr_t step = (intptr_t)privdata;
    char why[256];

    /* no reply: the connection is gone, and its own callback says so */
    if (!c || c->ac != ac || !reply)
        return;
    if (reply->type == REDIS_REPLY_ERROR) {
        snprintf(why, sizeof(why), "%s: %s", setup_names[step], reply->str);
        conn_drop(c, why);
        return;
    }
    if (step == SETUP_SCRIPT &&
        (reply->type != REDIS_REPLY_STRING || strcmp(reply->str, c->rs->sha)))
        log_err("store: redis %s: SCRIPT LOAD returned an unexpected SHA1; "
                "every call will fall back to EVAL",
                c->rs->ep.addr);
    if (step == SETUP_HEARTBEAT && c->state == CONN_CONNECTING)
        conn_ready(c);
}

static void conn_on_connect(const redisAsyncContext *ac, int status)
{
    struct redstore_client *c = ac->data;

    if (!c || c->ac != ac || status == REDIS_OK)
        return;
    /* hiredis frees the context after this callback */
    conn_failed(c, ac->errstr[0] ? ac->errstr : "connect failed");
}

static void conn_on_disconnect(const redisAsyncContext *ac, int status)
{
    struct redstore_client *c = ac->data;

    (void)status; /* ac->err tells an error from a clean close */

    if (!c || c->ac != ac)
        return;
    conn_failed(c, ac->err ? ac->errstr : "connection closed by the server");
}

static void conn_ready(struct redstore_client *c)
{
    c->state = CONN_READY;
    evtimer_del(c->handshake_timer);
    outage_end(c);
    releases_flush(c);
}

/* The context is gone or going (hiredis frees it): forget it, retry. */
static void conn_failed(struct redstore_client *c, const char *why)
{
    uint64_t since = now_ms() - c->last_attempt_ms;
    struct timeval wait;

    c->ac = NULL;
    c->state = CONN_DOWN;
    evtimer_del(c->handshake_timer);
    outage_begin(c, why);
    wait = tv_ms(since >= RECONNECT_MS ? 0 : RECONNECT_MS - since);
    evtimer_add(c->reconnect_timer, &wait);
}

/* We give up on a live context: its pending calls complete with ok=false. */
static void conn_drop(struct redstore_client *c, const char *why)
{
    redisAsyncContext *ac = c->ac;

    conn_failed(c, why);
    if (ac) {
        ac->data = NULL;
        redisAsyncFree(ac); /* deferred by hiredis inside its callbacks */
    }
}

static void conn_reconnect_cb(evutil_socket_t fd, short what, void *arg)
{
    struct redstore_client *c = arg;

    (void)fd;
    (void)what;
    if (c->state == CONN_DOWN)
        conn_start(c);
}

static void conn_handshake_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    struct redstore_client *c = arg;
    char why[64];

    (void)fd;
    (void)what;
    if (c->state != CONN_CONNECTING)
        return;
    snprintf(why, sizeof(why), "no answer to the handshake in %u ms",
             c->rs->timeout_ms > 1000 ? c->rs->timeout_ms : 1000);
    conn_drop(c, why);
}

static void conn_heartbeat_cb(evutil_socket_t fd, short what, void *arg)
{
    struct redstore_client *c = arg;

    (void)fd;
    (void)what;
    if (c->state == CONN_READY)
        redisAsyncCommand(c->ac, NULL, NULL, "SET %s 1 PX %u", c->rs->hb_key,
                          c->rs->node_ttl_ms);
}

/*
 * READY, or the very first handshake of this client still under way (its
 * calls queue behind it, bounded by their own timeout). After an outage,
 * calls fail at once until the handshake is done again.
 */
static bool conn_accepts_calls(const struct redstore_client *c)
{
    if (!c->ac)
        return false;
    return c->state == CONN_READY ||
           (c->state == CONN_CONNECTING && !c->outage);
}

/* One line per outage for the whole process, however many loops see it. */
static void outage_begin(struct redstore_client *c, const char *why)
{
    char buf[256];

    if (c->outage)
        return;
    c->outage = true;
    if (__atomic_fetch_add(&c->rs->down_clients, 1, __ATOMIC_RELAXED) == 0)
        log_err("store: redis %s unreachable: %s", c->rs->ep.addr,
                log_sanitize(why, buf, sizeof(buf)));
}

static void outage_end(struct redstore_client *c)
{
    if (!c->outage)
        return;
    c->outage = false;
    if (__atomic_sub_fetch(&c->rs->down_clients, 1, __ATOMIC_RELAXED) == 0)
        log_notice("store: redis %s reachable again", c->rs->ep.addr);
}

/* Errors from a live server (a script error, OOM...): rate-limited. */
static void log_redis_error(struct redstore_client *c, const char *what)
{
    uint64_t now = now_ms();
    char buf[256];

    if (c->last_error_log_ms && now - c->last_error_log_ms < ERROR_LOG_MS)
        return;
    c->last_error_log_ms = now;
    log_err("store: redis %s: %s", c->rs->ep.addr,
            log_sanitize(what, buf, sizeof(buf)));
}

/*
 * A session that ends while Redis is away still gives its slots back: its
 * CONN_RELEASE ops are kept and sent once the handshake is done again
 * (else the slots would count until the hash expires, this node being
 * alive). Releases that were sent but got no reply are not replayed: they
 * may have been applied, and a second one would free someone else's slot.
 */
static void releases_defer(struct redstore_client *c,
                           const struct store_op *ops, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (ops[i].kind != STORE_CONN_RELEASE || op_check(&ops[i]) != 0)
            continue;
        if (c->ndeferred == c->deferred_cap && !releases_grow(c)) {
            log_redis_error(c, "too many connection releases waiting for "
                               "the reconnect; some slots will count until "
                               "their key expires");
            return;
        }
        snprintf(c->deferred[c->ndeferred++], STORE_KEY_MAX, "%s", ops[i].key);
    }
}

static bool releases_grow(struct redstore_client *c)
{
    size_t cap = c->deferred_cap ? c->deferred_cap * 2 : 16;
    void *p;

    if (c->deferred_cap >= DEFERRED_MAX)
        return false;
    if (cap > DEFERRED_MAX)
        cap = DEFERRED_MAX;
    if (!(p = realloc(c->deferred, cap * sizeof(*c->deferred))))
        return false;
    c->deferred = p;
    c->deferred_cap = cap;
    return true;
}

static void releases_flush(struct redstore_client *c)
{
    struct store_op ops[DEFERRED_BATCH];
    size_t n = 0;

    for (size_t i = 0; i < c->ndeferred; i++) {
        memset(&ops[n], 0, sizeof(ops[n]));
        ops[n].kind = STORE_CONN_RELEASE;
        memcpy(ops[n].key, c->deferred[i], STORE_KEY_MAX);
        if (++n == DEFERRED_BATCH || i + 1 == c->ndeferred) {
            call_send_detached(c, ops, n);
            n = 0;
        }
    }
    c->ndeferred = 0;
}

/* ---------------------------------------------------------- command text */

static int cmd_init(struct cmd *m, int argc, size_t textlen)
{
    memset(m, 0, sizeof(*m));
    m->argv = calloc((size_t)argc, sizeof(*m->argv));
    m->lens = calloc((size_t)argc, sizeof(*m->lens));
    m->buf = malloc(textlen);
    m->max = argc;
    m->cap = textlen;
    if (!m->argv || !m->lens || !m->buf) {
        cmd_free(m);
        return -1;
    }
    return 0;
}

static void cmd_free(struct cmd *m)
{
    free(m->argv);
    free(m->lens);
    free(m->buf);
    memset(m, 0, sizeof(*m));
}

/* Copy a ++ b as one argument into buf; buf never moves, so argv stays
 * valid. */
static int cmd_add2(struct cmd *m, const char *a, size_t alen, const char *b,
                    size_t blen)
{
    if (m->argc >= m->max || m->cap - m->used < alen + blen + 1)
        return -1;
    memcpy(m->buf + m->used, a, alen);
    memcpy(m->buf + m->used + alen, b, blen);
    m->buf[m->used + alen + blen] = '\0';
    m->argv[m->argc] = m->buf + m->used;
    m->lens[m->argc++] = alen + blen;
    m->used += alen + blen + 1;
    return 0;
}

static int cmd_add(struct cmd *m, const char *s, size_t len)
{
    return cmd_add2(m, s, len, "", 0);
}

static int cmd_addf(struct cmd *m, const char *fmt, ...)
{
    char tmp[NUM_MAX];
    va_list ap;
    int len;

    va_start(ap, fmt);
    len = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (len < 0 || (size_t)len >= sizeof(tmp))
        return -1;
    return cmd_add(m, tmp, (size_t)len);
}

/* A programming error upstream, not a store failure: say which. */
static int op_check(const struct store_op *op)
{
    bool gcra = op->kind == STORE_GCRA || op->kind == STORE_GCRA_PEEK ||
                op->kind == STORE_GCRA_ADD;

    if (memchr(op->key, '\0', STORE_KEY_MAX) == NULL || op->key[0] == '\0')
        return -1;
    if (op->kind > STORE_CONN_RELEASE)
        return -1;
    if (gcra && !(op->w.emission_us > 0 && isfinite(op->w.emission_us) &&
                  isfinite(op->w.tolerance_us) && isfinite(op->cost)))
        return -1;
    return 0;
}

/*
 * EVALSHA sha numkeys KEYS... hb_prefix node_id conn_ttl slack, then
 * OP_ARGS per op (the layout limits_lua reads).
 */
static int cmd_build(struct cmd *m, const struct redstore *rs,
                     const struct store_op *ops, size_t n)
{
    size_t plen = strlen(rs->prefix);
    size_t text =
        64 + strlen(rs->hb_prefix) + strlen(rs->node_id) + 4 * NUM_MAX;
    int err = 0;

    for (size_t i = 0; i < n; i++)
        text += plen + strlen(ops[i].key) + 1 + OP_ARGS * NUM_MAX;
    if (cmd_init(m, (int)(7 + n * (1 + OP_ARGS)), text) != 0)
        return -1;
    err |= cmd_add(m, "EVALSHA", 7);
    err |= cmd_add(m, rs->sha, strlen(rs->sha));
    err |= cmd_addf(m, "%zu", n);
    for (size_t i = 0; i < n; i++)
        err |= cmd_add2(m, rs->prefix, plen, ops[i].key, strlen(ops[i].key));
    err |= cmd_add(m, rs->hb_prefix, strlen(rs->hb_prefix));
    err |= cmd_add(m, rs->node_id, strlen(rs->node_id));
    err |= cmd_addf(m, "%u", CONN_HASH_TTL_MS);
    err |= cmd_addf(m, "%.17g", GCRA_SLACK_US);
    for (size_t i = 0; i < n && !err; i++) {
        const struct store_op *op = &ops[i];

        err |= cmd_addf(m, "%d", (int)op->kind);
        err |= cmd_addf(m, "%.17g", op->w.emission_us);
        err |= cmd_addf(m, "%.17g", op->w.tolerance_us);
        err |= cmd_addf(m, "%.17g", op->cost);
        err |= cmd_addf(m, "%" PRIu64, op->limit);
        err |= cmd_add(m, op->dry_run ? "1" : "0", 1);
        err |= cmd_addf(m, "%" PRIu64, op->strike_ttl_ms);
    }
    if (err) {
        cmd_free(m);
        return -1;
    }
    return 0;
}

/* ----------------------------------------------------------------- calls */

enum store_status redstore_run(struct redstore_client *c,
                               const struct store_op *ops, size_t n,
                               struct store_result *res, store_done_fn done,
                               void *arg, struct store_call **callp)
{
    struct store_call *call;
    struct timeval limit;

    if (callp)
        *callp = NULL;
    if (n == 0)
        return STORE_DONE;
    if (!c)
        return STORE_FAILED;
    if (!conn_accepts_calls(c)) {
        releases_defer(c, ops, n);
        return STORE_FAILED;
    }
    call = call_new(c, ops, n);
    if (!call)
        return STORE_FAILED;
    call->done = done;
    call->arg = arg;
    call->res = res;
    call->timer = evtimer_new(c->base, call_timeout_cb, call);
    if (!call->timer || call_send(call, c->ac) != 0) {
        call_free(call);
        releases_defer(c, ops, n);
        return STORE_FAILED;
    }
    limit = tv_ms(c->rs->timeout_ms);
    evtimer_add(call->timer, &limit);
    if (callp)
        *callp = call;
    return STORE_PENDING;
}

void redstore_call_cancel(struct store_call *call)
{
    if (!call || call->finished)
        return;
    /* stays linked until hiredis hands back its reply */
    call->finished = true;
    if (call->timer)
        event_free(call->timer);
    call->timer = NULL;
}

/* The command for ops, not yet sent nor linked; NULL after logging why. */
static struct store_call *call_new(struct redstore_client *c,
                                   const struct store_op *ops, size_t n)
{
    struct store_call *call;

    for (size_t i = 0; i < n; i++)
        if (op_check(&ops[i]) != 0) {
            log_err("store: bad op %zu (kind %d) in a call: not sent", i,
                    (int)ops[i].kind);
            return NULL;
        }
    call = calloc(1, sizeof(*call));
    if (!call)
        return NULL;
    call->c = c;
    call->n = n;
    call->ops = calloc(n, sizeof(*call->ops));
    if (!call->ops || cmd_build(&call->cmd, c->rs, ops, n) != 0) {
        free(call->ops);
        free(call);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        call->ops[i].kind = (uint8_t)ops[i].kind;
        call->ops[i].dry_run = ops[i].dry_run;
    }
    return call;
}

/* Write the command and link the call at the tail (replies come in order). */
static int call_send(struct store_call *call, redisAsyncContext *ac)
{
    struct redstore_client *c = call->c;

    if (redisAsyncCommandArgv(ac, call_reply, call, call->cmd.argc,
                              call->cmd.argv, call->cmd.lens) != REDIS_OK)
        return -1;
    call->sent_ms = now_ms();
    call->sent_us = mono_us();
    call->prev = c->tail;
    call->next = NULL;
    if (c->tail)
        c->tail->next = call;
    else
        c->head = call;
    c->tail = call;
    return 0;
}

/*
 * hiredis calls this exactly once per command: with the reply, or with
 * NULL when the context goes away. It is the only place a call is freed.
 */
static void call_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    struct store_call *call = privdata;
    struct redstore_client *c = call->c;
    redisReply *reply = r;
    bool ok;

    if (c)
        call_unlink(call);
    if (!reply && c && c->ac == ac)
        c->state = CONN_DOWN; /* dying; conn_on_disconnect follows */
    if (c && reply && call_resend_eval(call, ac, reply))
        return;
    if (call->finished) {
        if (c && reply)
            call_undo_late(call, reply);
        call_free(call);
        return;
    }
    if (reply && reply->type == REDIS_REPLY_ERROR)
        log_redis_error(c, reply->str);
    ok = reply && results_parse(reply, call->n, call->res);
    if (reply && reply->type != REDIS_REPLY_ERROR && !ok)
        log_redis_error(c, "malformed reply to the limits script");
    metric_store_call((double)(mono_us() - call->sent_us) / 1e6,
                      ok ? "ok" : "error");
    call_finish(call, ok);
    call_free(call);
}

/*
 * NOSCRIPT: the server lost the script. Resend as EVAL (which caches it
 * again) while someone waits; otherwise only reload it. True when the call
 * was resent and stays pending.
 */
static bool call_resend_eval(struct store_call *call, redisAsyncContext *ac,
                             redisReply *reply)
{
    if (reply->type != REDIS_REPLY_ERROR ||
        strncmp(reply->str, "NOSCRIPT", 8) != 0 || call->c->ac != ac)
        return false;
    if (call->finished) {
        redisAsyncCommand(ac, NULL, NULL, "SCRIPT LOAD %s", limits_lua);
        return false;
    }
    call->cmd.argv[0] = "EVAL";
    call->cmd.lens[0] = 4;
    call->cmd.argv[1] = limits_lua;
    call->cmd.lens[1] = strlen(limits_lua);
    return call_send(call, ac) == 0;
}

static void call_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    struct store_call *call = arg;
    struct redstore_client *c = call->c;
    unsigned stall =
        c->rs->timeout_ms * 5 > 2000 ? c->rs->timeout_ms * 5 : 2000;

    (void)fd;
    (void)what;
    metric_store_call((double)(mono_us() - call->sent_us) / 1e6, "timeout");
    call_finish(call, false);
    /*
     * One slow reply is a timeout; no reply at all for several timeouts is
     * a server that hangs (or a network that drops packets without a RST):
     * give up on the connection, so later calls fail at once instead of
     * each waiting its full timeout.
     */
    if (c->state == CONN_READY && c->head &&
        now_ms() - c->head->sent_ms >= stall) {
        char why[64];

        snprintf(why, sizeof(why), "no reply in %u ms", stall);
        conn_drop(c, why);
    }
}

/* Tell the caller, once; the call stays until its reply is back. */
static void call_finish(struct store_call *call, bool ok)
{
    call->finished = true;
    if (call->timer) {
        event_free(call->timer);
        call->timer = NULL;
    }
    if (call->done)
        call->done(call->arg, ok, ok ? call->res : NULL);
}

/*
 * A reply after the caller stopped waiting (timeout or cancel): the caller
 * believes no slot was taken, so give back every CONN_ACQUIRE the script
 * applied. Rate counts applied late stay: they were real requests.
 */
static void call_undo_late(struct store_call *call, redisReply *reply)
{
    struct store_result *res = calloc(call->n, sizeof(*res));
    struct store_op op;
    bool pass = true;

    if (!res || !results_parse(reply, call->n, res)) {
        free(res);
        return;
    }
    for (size_t i = 0; i < call->n; i++) {
        const struct call_op *o = &call->ops[i];

        if (!res[i].allowed && !o->dry_run &&
            (o->kind == STORE_GCRA || o->kind == STORE_CONN_ACQUIRE))
            pass = false;
    }
    for (size_t i = 0; i < call->n && pass; i++) {
        if (call->ops[i].kind != STORE_CONN_ACQUIRE || !res[i].allowed)
            continue;
        memset(&op, 0, sizeof(op));
        op.kind = STORE_CONN_RELEASE;
        /* KEYS start at argv[3] and carry the prefix */
        snprintf(op.key, sizeof(op.key), "%s",
                 call->cmd.argv[3 + i] + strlen(call->c->rs->prefix));
        call_send_detached(call->c, &op, 1);
    }
    free(res);
}

/* Ops nobody waits for: sent if the connection is up, else dropped. */
static void call_send_detached(struct redstore_client *c,
                               const struct store_op *ops, size_t n)
{
    struct store_call *call;

    if (c->state != CONN_READY)
        return;
    call = call_new(c, ops, n);
    if (!call)
        return;
    call->finished = true;
    if (call_send(call, c->ac) != 0)
        call_free(call);
}

static void call_unlink(struct store_call *call)
{
    struct redstore_client *c = call->c;

    if (call->prev)
        call->prev->next = call->next;
    else if (c->head == call)
        c->head = call->next;
    if (call->next)
        call->next->prev = call->prev;
    else if (c->tail == call)
        c->tail = call->prev;
    call->prev = call->next = NULL;
}

static void call_free(struct store_call *call)
{
    if (call->timer)
        event_free(call->timer);
    cmd_free(&call->cmd);
    free(call->ops);
    free(call);
}

/* The client goes away: its calls end silently, freed by their replies. */
static void calls_orphan(struct redstore_client *c)
{
    struct store_call *call = c->head, *next;

    for (; call; call = next) {
        next = call->next;
        call->finished = true;
        if (call->timer) {
            event_free(call->timer);
            call->timer = NULL;
        }
        call->c = NULL;
        call->prev = call->next = NULL;
    }
    c->head = c->tail = NULL;
}

static bool parse_double(const redisReply *r, double *out)
{
    char *end;

    if (r->type != REDIS_REPLY_STRING || r->len == 0)
        return false;
    errno = 0;
    *out = strtod(r->str, &end);
    return *end == '\0' && errno != ERANGE;
}

static bool parse_u64(const redisReply *r, uint64_t *out)
{
    char *end;

    if (r->type != REDIS_REPLY_STRING || r->len == 0 || r->str[0] == '-')
        return false;
    errno = 0;
    *out = strtoull(r->str, &end, 10);
    return *end == '\0' && errno != ERANGE;
}

/* OP_RESULTS strings per op, in the order limits_lua returns them. */
static bool results_parse(const redisReply *reply, size_t n,
                          struct store_result *res)
{
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != n * OP_RESULTS)
        return false;
    for (size_t i = 0; i < n; i++) {
        redisReply **e = reply->element + i * OP_RESULTS;
        struct store_result *r = &res[i];

        if (e[0]->type != REDIS_REPLY_STRING || e[0]->len != 1)
            return false;
        r->allowed = e[0]->str[0] == '1';
        if (!parse_double(e[1], &r->retry_us) ||
            !parse_double(e[2], &r->remaining) ||
            !parse_u64(e[3], &r->current) || !parse_u64(e[4], &r->strikes))
            return false;
    }
    return true;
}

/* ------------------------------------------------------ synchronous tools */

static redisContext *sync_connect(const struct config *cfg, char *err,
                                  size_t errlen)
{
    const struct store_conf *sc = &cfg->store;
    struct endpoint ep;
    char db[16];
    struct timeval tv;
    redisContext *ctx;
    redisReply *r;

    if (conf_check(sc) != 0) {
        snprintf(err, errlen, "bad store configuration");
        return NULL;
    }
    endpoint_from_conf(sc, &ep);
    tv = tv_ms(sc->timeout > 1000 ? sc->timeout : 1000);
    ctx = ep.path[0] ? redisConnectUnixWithTimeout(ep.path, tv)
                     : redisConnectWithTimeout(ep.host, ep.port, tv);
    if (!ctx || ctx->err) {
        snprintf(err, errlen, "redis %s: %s", ep.addr,
                 ctx ? ctx->errstr : "out of memory");
        redisFree(ctx);
        return NULL;
    }
    redisSetTimeout(ctx, tv);
    if (sc->redis_password) {
        const char *argv[] = {"AUTH", sc->redis_password};

        if (!(r = sync_argv(ctx, 2, argv, err, errlen)))
            goto fail;
        freeReplyObject(r);
    }
    if (sc->redis_db) {
        const char *argv[] = {"SELECT", db};

        snprintf(db, sizeof(db), "%u", sc->redis_db);
        if (!(r = sync_argv(ctx, 2, argv, err, errlen)))
            goto fail;
        freeReplyObject(r);
    }
    return ctx;
fail:
    redisFree(ctx);
    return NULL;
}

/* A reply, or NULL with the reason (an error reply included) in err. */
static redisReply *sync_argv(redisContext *ctx, int argc, const char **argv,
                             char *err, size_t errlen)
{
    redisReply *r = redisCommandArgv(ctx, argc, argv, NULL);

    if (!r) {
        snprintf(err, errlen, "%s: %s", argv[0], ctx->errstr);
        return NULL;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(err, errlen, "%s: %s", argv[0], r->str);
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

static int key_check(const char *key, char *err, size_t errlen)
{
    if (!key || !*key || strlen(key) >= STORE_KEY_MAX) {
        snprintf(err, errlen, "the key must have 1 to %d characters",
                 STORE_KEY_MAX - 1);
        return -1;
    }
    return 0;
}

/* Run show_lua for prefix+key on ctx and fill out. */
static int show_query(redisContext *ctx, const char *prefix, const char *key,
                      struct store_key_info *out, char *err, size_t errlen)
{
    char *k = str_join(prefix, key);
    char *sk = k ? str_join(k, ":strikes") : NULL;
    char *hb = str_join(prefix, "node:");
    redisReply *r = NULL;
    int rc = -1;

    if (!k || !sk || !hb) {
        snprintf(err, errlen, "out of memory");
    } else {
        const char *argv[] = {"EVAL", show_lua, "2", k, sk, hb};

        r = sync_argv(ctx, 6, argv, err, errlen);
    }
    if (r && (r->type != REDIS_REPLY_ARRAY || r->elements != 5 ||
              r->element[0]->type != REDIS_REPLY_STRING ||
              !parse_double(r->element[1], &out->tat_us) ||
              !parse_double(r->element[2], &out->now_us) ||
              !parse_u64(r->element[3], &out->conn_count) ||
              !parse_u64(r->element[4], &out->strikes))) {
        snprintf(err, errlen, "malformed reply from redis");
    } else if (r) {
        out->exists = strcmp(r->element[0]->str, "none") != 0;
        rc = 0;
    }
    freeReplyObject(r);
    free(k);
    free(sk);
    free(hb);
    return rc;
}

int redstore_show(const struct config *cfg, const char *key,
                  struct store_key_info *out, char *err, size_t errlen)
{
    const char *prefix = cfg->store.key_prefix ? cfg->store.key_prefix : "";
    redisContext *ctx;
    int rc;

    memset(out, 0, sizeof(*out));
    if (key_check(key, err, errlen) != 0 ||
        !(ctx = sync_connect(cfg, err, errlen)))
        return -1;
    rc = show_query(ctx, prefix, key, out, err, errlen);
    redisFree(ctx);
    return rc;
}

/* See reset_lua: what `warden limits reset` clears. */
int redstore_reset(const struct config *cfg, const char *key, char *err,
                   size_t errlen)
{
    const char *prefix = cfg->store.key_prefix ? cfg->store.key_prefix : "";
    char *k = NULL, *sk = NULL;
    redisContext *ctx;
    redisReply *r;
    int rc = -1;

    if (key_check(key, err, errlen) != 0 ||
        !(ctx = sync_connect(cfg, err, errlen)))
        return -1;
    k = str_join(prefix, key);
    sk = k ? str_join(k, ":strikes") : NULL;
    if (!k || !sk) {
        snprintf(err, errlen, "out of memory");
    } else {
        const char *argv[] = {"EVAL", reset_lua, "2", k, sk};

        if ((r = sync_argv(ctx, 5, argv, err, errlen))) {
            freeReplyObject(r);
            rc = 0;
        }
    }
    redisFree(ctx);
    free(k);
    free(sk);
    return rc;
}
