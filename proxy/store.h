/*
 * store: where limit counters live. Two implementations behind one seam:
 * memory (one process, the embedded default) and Redis (many Warden nodes
 * share one count). The limits check never knows which it talks to.
 *
 * One call carries every operation a checkpoint needs, so a checkpoint
 * costs one round trip (one EVALSHA in Redis). Within a call the store
 * applies this rule atomically:
 *   - GCRA and CONN_ACQUIRE ops that are not dry runs are all-or-nothing:
 *     their counters are updated only if every one of them allows;
 *   - a dry-run op is evaluated and reported but never blocks; its own
 *     counter is updated when the enforced ops pass and it passes itself
 *     (what enforcing it would have done);
 *   - GCRA_PEEK only reads; GCRA_ADD and CONN_RELEASE always apply.
 * An enforced op that denies and has strike_ttl_ms set increments its
 * strike counter (key + ":strikes", expiring strike_ttl_ms after the last
 * strike) and reports the new value: repeat offenders can be escalated.
 *
 * Threads: a struct store is shared by the whole process; a store_client
 * belongs to one event loop and is used only from its thread. Completion:
 * store_run() returns STORE_DONE with results filled in, STORE_PENDING and
 * calls done() later from the loop (never from inside store_run), or
 * STORE_FAILED when the store cannot be reached (the caller applies the
 * configured fail-open or fail-closed policy).
 */
#ifndef WARDEN_STORE_H
#define WARDEN_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gcra.h"

struct event_base;
struct config;

#define STORE_KEY_MAX 256

enum store_op_kind {
    STORE_GCRA,          /* check and count */
    STORE_GCRA_PEEK,     /* check only */
    STORE_GCRA_ADD,      /* count, whatever the outcome */
    STORE_CONN_ACQUIRE,  /* take a concurrent slot if below limit */
    STORE_CONN_RELEASE,  /* give one back */
};

struct store_op {
    enum store_op_kind kind;
    char key[STORE_KEY_MAX];  /* without the store's key prefix */
    struct gcra_window w;     /* GCRA kinds */
    double cost;              /* GCRA kinds; 1 for most limits */
    uint64_t limit;           /* CONN_ACQUIRE */
    bool dry_run;
    uint64_t strike_ttl_ms;   /* 0: no strike counting */
};

struct store_result {
    bool allowed;
    double retry_us;          /* GCRA, when denied */
    double remaining;         /* GCRA: requests of cost 1 left */
    uint64_t current;         /* CONN_ACQUIRE: slots in use (all nodes) */
    uint64_t strikes;         /* when denied with strike_ttl_ms */
};

enum store_status { STORE_DONE, STORE_PENDING, STORE_FAILED };

typedef void (*store_done_fn)(void *arg, bool ok, struct store_result *res);

struct store;
struct store_client;
struct store_call;

/* From the config's store section; NULL with a logged reason on failure. */
struct store *store_new(const struct config *cfg);
void store_free(struct store *st);

/* The per-loop handle (created on first use by that loop's thread). */
struct store_client *store_client_new(struct store *st,
                                      struct event_base *base);
void store_client_free(struct store_client *c);

/*
 * Run n ops. res must hold n results and stay valid until done() (or
 * store_call_cancel). *call, when not NULL, receives a handle for
 * cancelling a pending call.
 */
enum store_status store_run(struct store_client *c, const struct store_op *ops,
                            size_t n, struct store_result *res,
                            store_done_fn done, void *arg,
                            struct store_call **call);

/* The caller is going away: done() will not be called. */
void store_call_cancel(struct store_call *call);

/* Read a key's state without changing it (for `warden limits show`). */
struct store_key_info {
    bool exists;
    double tat_us;            /* GCRA keys */
    double now_us;
    uint64_t conn_count;      /* concurrency keys */
    uint64_t strikes;
};

/* Synchronous, for admin commands (not for the event loops): read or
 * forget one key. Returns 0, or -1 when the store cannot be reached. */
int store_show(struct store *st, const struct config *cfg, const char *key,
               struct store_key_info *out);
int store_reset(struct store *st, const struct config *cfg, const char *key);

#endif
