/*
 * limits_admin: what `warden limits show|reset` and `warden policy test`
 * print, for the admin who has to answer "why is this customer refused?"
 *
 * A "who" describes a client or session in words ("ip=192.0.2.7
 * user=alice"). For every limit in the loaded policies that such a session
 * would be counted under, the report shows each window's use, what is left
 * and when it is full again; reset forgets those counters. policy test
 * also walks the access rules and says, checkpoint by checkpoint, what the
 * verdict would be, without counting anything.
 *
 * Counters are read through callbacks, so the same code serves the Redis
 * store (read directly by the command) and the memory store (read inside
 * the daemon, through its control socket).
 */
#ifndef WARDEN_LIMITS_ADMIN_H
#define WARDEN_LIMITS_ADMIN_H

#include <stdbool.h>
#include <stdio.h>

#include "engine.h"
#include "store.h"

struct config;

struct who {
    struct engine_ctx ctx;     /* client, listener, helo, sender, rcpt, user */
    char listener[32], helo[256], sender[512], rcpt[512], user[256];
    unsigned given;            /* which fields were given (LK_* bits) */
};

/* Parse "ip=1.2.3.4", "user=alice", "sender=a@b", "helo=x", "rcpt=c@d",
 * "listener=name" words. Returns 0, or -1 with a reason in err. */
int who_parse(int argc, char **argv, struct who *w, char *err, size_t len);

struct counter_io {
    int (*show)(void *arg, const char *key, struct store_key_info *out);
    int (*reset)(void *arg, const char *key);
    void *arg;
};

/* Print the limits that count this who (reset: and forget them). */
int limits_report(const struct config *cfg, const struct who *w, bool reset,
                  const struct counter_io *io, FILE *out);

/* Print what each checkpoint would decide for this who. */
int policy_test(const struct config *cfg, const struct who *w,
                const struct counter_io *io, FILE *out);

#endif
