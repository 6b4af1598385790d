/*
 * dnsq_cache: a direct-mapped TTL cache of dnsq answers (see the header).
 *
 * Direct mapping keeps the code and the memory bound trivial: no lists,
 * no eviction policy, 2048 slots. Two hot names that share a slot evict
 * each other; at SPF's working set (a few names per sender domain) that
 * costs an extra query now and then, not correctness.
 */
#include "dnsq_cache.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct slot {
    int type;                   /* 0: empty */
    char name[DNSQ_NAME_MAX];
    time_t expires;             /* CLOCK_MONOTONIC seconds */
    struct dnsq_answer a;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct slot *slots; /* allocated on the first store */

static time_t now_s(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec;
}

/* FNV-1a over the type and the name. */
static size_t slot_of(const char *name, int type)
{
    uint64_t h = 1469598103934665603ULL ^ (uint64_t)type;

    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return (size_t)(h % DNSQ_CACHE_SLOTS);
}

/* Deep copy; false (dst empty) when memory runs out. */
static bool copy_answer(struct dnsq_answer *dst, const struct dnsq_answer *src)
{
    *dst = *src;
    dst->rr = NULL;
    dst->n = 0;
    if (src->n == 0)
        return true;
    if (!(dst->rr = calloc(src->n, sizeof(*dst->rr))))
        return false;
    for (size_t i = 0; i < src->n; i++) {
        dst->rr[i] = src->rr[i];
        dst->rr[i].data = malloc(src->rr[i].len + 1);
        if (!dst->rr[i].data) {
            dnsq_answer_free(dst);
            return false;
        }
        memcpy(dst->rr[i].data, src->rr[i].data, src->rr[i].len + 1);
        dst->n++;
    }
    return true;
}

bool dnsq_cache_get(const char *name, int type, struct dnsq_answer *out)
{
    struct slot *s;
    bool hit = false;
    time_t now = now_s();

    pthread_mutex_lock(&lock);
    if (slots) {
        s = &slots[slot_of(name, type)];
        if (s->type == type && s->expires > now &&
            strcmp(s->name, name) == 0 && copy_answer(out, &s->a)) {
            out->ttl = (uint32_t)(s->expires - now);
            hit = true;
        }
    }
    pthread_mutex_unlock(&lock);
    return hit;
}

void dnsq_cache_put(const char *name, int type, const struct dnsq_answer *a)
{
    uint32_t ttl = a->ttl < DNSQ_CACHE_TTL_MAX ? a->ttl : DNSQ_CACHE_TTL_MAX;
    struct slot *s;

    if (ttl == 0 || a->status == DNSQ_TEMPFAIL ||
        strlen(name) >= sizeof(s->name))
        return;
    pthread_mutex_lock(&lock);
    if (!slots)
        slots = calloc(DNSQ_CACHE_SLOTS, sizeof(*slots));
    if (slots) {
        s = &slots[slot_of(name, type)];
        dnsq_answer_free(&s->a);
        s->type = 0;
        if (copy_answer(&s->a, a)) {
            s->type = type;
            snprintf(s->name, sizeof(s->name), "%s", name);
            s->expires = now_s() + ttl;
        }
    }
    pthread_mutex_unlock(&lock);
}

void dnsq_cache_flush(void)
{
    pthread_mutex_lock(&lock);
    for (size_t i = 0; slots && i < DNSQ_CACHE_SLOTS; i++) {
        dnsq_answer_free(&slots[i].a);
        slots[i].type = 0;
    }
    pthread_mutex_unlock(&lock);
}
