/*
 * store_memory: the in-process store behind store.h (one node).
 */
#ifndef WARDEN_STORE_MEMORY_H
#define WARDEN_STORE_MEMORY_H

#include "store.h"

struct memstore;

struct memstore *memstore_new(void);
void memstore_free(struct memstore *m);

/* Always STORE_DONE (or STORE_FAILED when out of memory). Thread-safe. */
enum store_status memstore_run(struct memstore *m, const struct store_op *ops,
                               size_t n, struct store_result *res);

/* Keys held now (for metrics and tests). */
size_t memstore_size(struct memstore *m);

int memstore_show(struct memstore *m, const char *key,
                  struct store_key_info *info);
/* Forget a key's rate state and strikes (not its open connections). */
int memstore_reset(struct memstore *m, const char *key);

#endif
