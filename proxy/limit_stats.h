/*
 * limit_stats: how often each limit refused (or, in dry run, would have
 * refused), by limit name, for the whole process. Names, not rules, are
 * the identity: counts survive a reload that keeps a limit's name. Read
 * by `warden limits stats` now and by the metrics endpoint later.
 */
#ifndef WARDEN_LIMIT_STATS_H
#define WARDEN_LIMIT_STATS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

void limit_stats_count(const char *name, bool dry_run);

/* fn once per limit, under the lock (fn must not count). */
void limit_stats_each(void (*fn)(void *arg, const char *name,
                                 uint64_t refused, uint64_t dry_run),
                      void *arg);

/* One line per limit: "name refused=N dry_run=M". */
void limit_stats_print(FILE *out);

#endif
