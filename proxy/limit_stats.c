/*
 * limit_stats: a small locked list of counters (limits are few: tens).
 */
#include "limit_stats.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct stat_entry {
    struct stat_entry *next;
    uint64_t refused, dry_run;
    char name[64];
};

/* Process-wide by nature, like the counters of a metrics endpoint. */
static pthread_mutex_t stats_lock = PTHREAD_MUTEX_INITIALIZER;
static struct stat_entry *stats;

void limit_stats_count(const char *name, bool dry_run)
{
    struct stat_entry *e;

    pthread_mutex_lock(&stats_lock);
    for (e = stats; e && strcmp(e->name, name) != 0; e = e->next)
        ;
    if (!e && (e = calloc(1, sizeof(*e)))) {
        strncpy(e->name, name, sizeof(e->name) - 1);
        e->next = stats;
        stats = e;
    }
    if (e) {
        if (dry_run)
            e->dry_run++;
        else
            e->refused++;
    }
    pthread_mutex_unlock(&stats_lock);
}

void limit_stats_print(FILE *out)
{
    pthread_mutex_lock(&stats_lock);
    if (!stats)
        fprintf(out, "no limit has refused anything yet\n");
    for (struct stat_entry *e = stats; e; e = e->next)
        fprintf(out, "%s refused=%llu dry_run=%llu\n", e->name,
                (unsigned long long)e->refused,
                (unsigned long long)e->dry_run);
    pthread_mutex_unlock(&stats_lock);
}

void limit_stats_each(void (*fn)(void *arg, const char *name,
                                 uint64_t refused, uint64_t dry_run),
                      void *arg)
{
    pthread_mutex_lock(&stats_lock);
    for (struct stat_entry *e = stats; e; e = e->next)
        fn(arg, e->name, e->refused, e->dry_run);
    pthread_mutex_unlock(&stats_lock);
}
