/*
 * store_redis: the Redis side of the store seam (see store.h), so that many
 * Warden nodes share one count.
 *
 * Each store_run() is one EVALSHA of one Lua script that applies store.h's
 * rules to every op atomically, with the time taken from Redis (TIME), so
 * node clocks never matter. Calls are asynchronous on the caller's libevent
 * loop; a call that gets no reply within store.timeout ms completes with
 * ok=false, and while the connection is down calls fail at once
 * (STORE_FAILED) and a reconnect is tried at most once per second.
 *
 * Concurrent connections: one hash per key with one field per node (the
 * node id is hostname:pid:start-time-us, unique per process start) and a
 * heartbeat key per node, prefix "node:" id, with PX store.node_ttl. Every
 * client (one per loop) refreshes it every node_ttl/3, so it lives as long
 * as any loop of the process can reach Redis. A node's field counts only
 * while its heartbeat key exists, and an acquire deletes the fields of dead
 * nodes: a crashed node's connections stop counting within node_ttl.
 * A CONN_ACQUIRE that Redis applied after its call timed out or was
 * cancelled is released again at once; a CONN_RELEASE refused because the
 * connection was down is sent after the reconnect. So a caller holds a
 * slot exactly when done() said ok and the call passed.
 *
 * Threads: a struct redstore is shared by the process (read-only after
 * redstore_new); a redstore_client belongs to one event loop.
 */
#ifndef WARDEN_STORE_REDIS_H
#define WARDEN_STORE_REDIS_H

#include <stdbool.h>
#include <stddef.h>

#include "store.h"

struct redstore;        /* per process: config copy, node id, the script */
struct redstore_client; /* per event loop: one connection */

/*
 * From cfg->store (address, password, db, timeout, key_prefix, node_ttl);
 * copies what it needs. NULL with a logged reason on bad input. It must
 * outlive every session that acquired a connection slot through it: a new
 * redstore is a new node id, and the old id's slots lapse with its
 * heartbeat.
 */
struct redstore *redstore_new(const struct config *cfg);
void redstore_free(struct redstore *rs);

/* This process's node id ("host:pid:start_us"), for logs and tests. */
const char *redstore_node_id(const struct redstore *rs);

/*
 * Start connecting on base (never blocks). Calls made before the first
 * connection is up are pipelined behind its handshake; after an outage they
 * fail at once until the reconnect succeeds.
 */
struct redstore_client *redstore_client_new(struct redstore *rs,
                                            struct event_base *base);

/*
 * Close the connection. Pending calls end silently: their done() is never
 * called. Must not be called from inside a done() callback.
 */
void redstore_client_free(struct redstore_client *c);

/* True once the connection is up and its handshake done (tests, metrics). */
bool redstore_client_ready(const struct redstore_client *c);

/*
 * store_run() for Redis: STORE_PENDING (done() later, from the loop),
 * STORE_FAILED (connection down, or a bad op), or STORE_DONE for n == 0.
 * ops may be freed on return; res must stay valid until done() or
 * redstore_call_cancel(). *call is valid until done() is called or the call
 * is cancelled, whichever comes first.
 */
enum store_status redstore_run(struct redstore_client *c,
                               const struct store_op *ops, size_t n,
                               struct store_result *res, store_done_fn done,
                               void *arg, struct store_call **call);

/* The caller goes away: done() will not be called and res not touched. */
void redstore_call_cancel(struct store_call *call);

/*
 * For `warden limits show/reset`: synchronous, with a short timeout (the
 * store timeout, at least one second). key is without the prefix. Return 0,
 * or -1 with a reason in err.
 */
int redstore_show(const struct config *cfg, const char *key,
                  struct store_key_info *out, char *err, size_t errlen);
int redstore_reset(const struct config *cfg, const char *key, char *err,
                   size_t errlen);

#endif
