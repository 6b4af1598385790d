/*
 * store_memory: the in-process limit store, the embedded default for a
 * single node. Same semantics as the Redis store (see store.h): one call
 * is one locked section, so check-and-count is atomic across worker
 * threads.
 *
 * A chained hash table of keys; entries expire when their GCRA time has
 * passed (and their strikes and connection count are gone). Each call
 * also sweeps a few buckets, so memory stays bounded without a timer:
 * with K keys created per second, every bucket is visited within
 * (buckets / SWEEP_PER_CALL) calls.
 */
#include "store_memory.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define INITIAL_BUCKETS 1024
#define SWEEP_PER_CALL 8

struct entry {
    struct entry *next;
    double tat_us;            /* GCRA; 0: none */
    uint64_t conns;           /* connection slots in use */
    uint64_t strikes;
    double strikes_until_us;
    char key[];
};

struct memstore {
    pthread_mutex_t lock;
    struct entry **buckets;
    size_t nbuckets, nentries;
    size_t sweep_at;
};

static double now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    /* whole microseconds, like Redis's TIME: sums of whole numbers stay
     * exact in a double, so "N back to back" is exactly N */
    return (double)ts.tv_sec * 1e6 + (double)(ts.tv_nsec / 1000);
}

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */

    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

struct memstore *memstore_new(void)
{
    struct memstore *m = calloc(1, sizeof(*m));

    if (!m)
        return NULL;
    m->buckets = calloc(INITIAL_BUCKETS, sizeof(*m->buckets));
    if (!m->buckets) {
        free(m);
        return NULL;
    }
    m->nbuckets = INITIAL_BUCKETS;
    pthread_mutex_init(&m->lock, NULL);
    return m;
}

void memstore_free(struct memstore *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->nbuckets; i++) {
        struct entry *e = m->buckets[i], *next;
        for (; e; e = next) {
            next = e->next;
            free(e);
        }
    }
    free(m->buckets);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

static bool expired(const struct entry *e, double now)
{
    return e->tat_us <= now && e->conns == 0 &&
           (e->strikes == 0 || e->strikes_until_us <= now);
}

static void grow(struct memstore *m)
{
    size_t n = m->nbuckets * 2;
    struct entry **b = calloc(n, sizeof(*b));

    if (!b)
        return; /* keep working with longer chains */
    for (size_t i = 0; i < m->nbuckets; i++) {
        struct entry *e = m->buckets[i], *next;
        for (; e; e = next) {
            next = e->next;
            size_t j = hash(e->key) & (n - 1);
            e->next = b[j];
            b[j] = e;
        }
    }
    free(m->buckets);
    m->buckets = b;
    m->nbuckets = n;
    m->sweep_at = 0;
}

static struct entry *find(struct memstore *m, const char *key, bool create)
{
    size_t i = hash(key) & (m->nbuckets - 1);
    struct entry *e;

    for (e = m->buckets[i]; e; e = e->next)
        if (strcmp(e->key, key) == 0)
            return e;
    if (!create)
        return NULL;
    size_t len = strlen(key);
    e = calloc(1, sizeof(*e) + len + 1);
    if (!e)
        return NULL;
    memcpy(e->key, key, len + 1);
    e->next = m->buckets[i];
    m->buckets[i] = e;
    if (++m->nentries > m->nbuckets)
        grow(m);
    return e;
}

static void sweep(struct memstore *m, double now)
{
    for (int k = 0; k < SWEEP_PER_CALL; k++) {
        struct entry **pp = &m->buckets[m->sweep_at];
        while (*pp) {
            struct entry *e = *pp;
            if (expired(e, now)) {
                *pp = e->next;
                free(e);
                m->nentries--;
            } else {
                pp = &e->next;
            }
        }
        m->sweep_at = (m->sweep_at + 1) & (m->nbuckets - 1);
    }
}

static bool is_gcra(enum store_op_kind k)
{
    return k == STORE_GCRA || k == STORE_GCRA_PEEK || k == STORE_GCRA_ADD;
}

/* Phase 1: what each op would do; false when an enforced op refuses. */
static bool evaluate(struct memstore *m, const struct store_op *ops, size_t n,
                     struct store_result *res, struct gcra_outcome *out,
                     double now)
{
    bool all_ok = true;

    for (size_t i = 0; i < n; i++) {
        const struct store_op *op = &ops[i];
        struct entry *e = find(m, op->key, false);

        memset(&res[i], 0, sizeof(res[i]));
        res[i].allowed = true;
        if (is_gcra(op->kind)) {
            gcra_evaluate(&op->w, e ? e->tat_us : 0, now, op->cost, &out[i]);
            res[i].allowed = out[i].allowed;
            res[i].retry_us = out[i].retry_us;
            res[i].remaining = out[i].remaining;
        } else if (op->kind == STORE_CONN_ACQUIRE) {
            res[i].current = e ? e->conns : 0;
            res[i].allowed = res[i].current < op->limit;
        }
        if (!res[i].allowed && !op->dry_run &&
            (op->kind == STORE_GCRA || op->kind == STORE_CONN_ACQUIRE))
            all_ok = false;
    }
    return all_ok;
}

static void strike(struct entry *e, const struct store_op *op,
                   struct store_result *r, double now)
{
    if (!e)
        return;
    if (e->strikes_until_us <= now)
        e->strikes = 0;
    e->strikes++;
    e->strikes_until_us = now + (double)op->strike_ttl_ms * 1000.0;
    r->strikes = e->strikes;
}

/* Phase 2: apply the counts store.h's rule allows. */
static void apply(struct memstore *m, const struct store_op *ops, size_t n,
                  struct store_result *res, const struct gcra_outcome *out,
                  bool all_ok, double now)
{
    for (size_t i = 0; i < n; i++) {
        const struct store_op *op = &ops[i];
        bool count = (op->kind == STORE_GCRA_ADD) ||
                     (all_ok && res[i].allowed &&
                      (op->kind == STORE_GCRA ||
                       op->kind == STORE_CONN_ACQUIRE));
        bool refused = !res[i].allowed && !op->dry_run &&
                       (op->kind == STORE_GCRA ||
                        op->kind == STORE_CONN_ACQUIRE);
        struct entry *e = NULL;

        if (count || op->kind == STORE_CONN_RELEASE ||
            (refused && op->strike_ttl_ms))
            e = find(m, op->key, op->kind != STORE_CONN_RELEASE);
        if (refused && op->strike_ttl_ms)
            strike(e, op, &res[i], now);
        if (!e)
            continue;
        if (count && is_gcra(op->kind))
            e->tat_us = out[i].new_tat_us;
        else if (count)
            res[i].current = ++e->conns;
        else if (op->kind == STORE_CONN_RELEASE && e->conns > 0)
            e->conns--;
    }
}

enum store_status memstore_run(struct memstore *m, const struct store_op *ops,
                               size_t n, struct store_result *res)
{
    struct gcra_outcome stack[16], *out = stack;
    double now = now_us();
    bool all_ok;

    if (n > 16 && !(out = calloc(n, sizeof(*out))))
        return STORE_FAILED;
    pthread_mutex_lock(&m->lock);
    all_ok = evaluate(m, ops, n, res, out, now);
    apply(m, ops, n, res, out, all_ok, now);
    sweep(m, now);
    pthread_mutex_unlock(&m->lock);
    if (out != stack)
        free(out);
    return STORE_DONE;
}

size_t memstore_size(struct memstore *m)
{
    size_t n;

    pthread_mutex_lock(&m->lock);
    n = m->nentries;
    pthread_mutex_unlock(&m->lock);
    return n;
}

int memstore_show(struct memstore *m, const char *key,
                  struct store_key_info *info)
{
    struct entry *e;

    memset(info, 0, sizeof(*info));
    pthread_mutex_lock(&m->lock);
    info->now_us = now_us();
    e = find(m, key, false);
    if (e) {
        info->exists = true;
        info->tat_us = e->tat_us;
        info->conn_count = e->conns;
        info->strikes = e->strikes_until_us > info->now_us ? e->strikes : 0;
    }
    pthread_mutex_unlock(&m->lock);
    return 0;
}

int memstore_reset(struct memstore *m, const char *key)
{
    pthread_mutex_lock(&m->lock);
    struct entry *e = find(m, key, false);
    if (e) {
        e->tat_us = 0;
        e->strikes = 0;
    }
    pthread_mutex_unlock(&m->lock);
    return 0;
}
