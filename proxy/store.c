/*
 * store: the seam between the limits check and where counters live;
 * dispatches to the memory store or the Redis store (see store.h).
 */
#include "store.h"

#include <stdlib.h>

#include "config.h"
#include "log.h"
#include "store_memory.h"
#include "store_redis.h"

struct store {
    enum store_type type;
    struct memstore *mem;
    struct redstore *red;
};

struct store_client {
    struct store *st;
    struct redstore_client *red;
};

struct store *store_new(const struct config *cfg)
{
    struct store *st = calloc(1, sizeof(*st));

    if (!st)
        return NULL;
    st->type = cfg->store.type;
    if (st->type == STORE_REDIS)
        st->red = redstore_new(cfg);
    else
        st->mem = memstore_new();
    if (!st->red && !st->mem) {
        free(st);
        return NULL;
    }
    return st;
}

void store_free(struct store *st)
{
    if (!st)
        return;
    memstore_free(st->mem);
    redstore_free(st->red);
    free(st);
}

struct store_client *store_client_new(struct store *st,
                                      struct event_base *base)
{
    struct store_client *c = calloc(1, sizeof(*c));

    if (!c)
        return NULL;
    c->st = st;
    if (st->red && !(c->red = redstore_client_new(st->red, base))) {
        free(c);
        return NULL;
    }
    return c;
}

void store_client_free(struct store_client *c)
{
    if (!c)
        return;
    redstore_client_free(c->red);
    free(c);
}

enum store_status store_run(struct store_client *c, const struct store_op *ops,
                            size_t n, struct store_result *res,
                            store_done_fn done, void *arg,
                            struct store_call **call)
{
    if (call)
        *call = NULL;
    if (c->st->mem)
        return memstore_run(c->st->mem, ops, n, res);
    return redstore_run(c->red, ops, n, res, done, arg, call);
}

int store_show(struct store *st, const struct config *cfg, const char *key,
               struct store_key_info *out)
{
    char err[200];

    if (st->mem)
        return memstore_show(st->mem, key, out);
    if (redstore_show(cfg, key, out, err, sizeof(err)) != 0) {
        log_warn("store: %s", err);
        return -1;
    }
    return 0;
}

int store_reset(struct store *st, const struct config *cfg, const char *key)
{
    char err[200];

    if (st->mem)
        return memstore_reset(st->mem, key);
    if (redstore_reset(cfg, key, err, sizeof(err)) != 0) {
        log_warn("store: %s", err);
        return -1;
    }
    return 0;
}

void store_call_cancel(struct store_call *call)
{
    if (call)
        redstore_call_cancel(call);
}
