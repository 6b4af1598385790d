/*
 * limit_rules: connection and rate limits as the policy files declare them.
 *
 * A limit counts one thing (connections at once, connections, messages,
 * recipients, bytes or failures) per key (client IP or network, HELO,
 * sender, sender domain, recipient domain, SASL user, or several of these
 * combined), over one or more windows ("20/1m" and "500/1d"), within a
 * scope (listeners, client networks, users) and minus exemptions. When a
 * window is exhausted the action answers (4xx or 5xx with the admin's
 * text), or with dry_run only logs. Escalation turns repeat offenders'
 * deferrals into rejections.
 *
 * This header is the data; policy.c loads it and check_limits.c applies it.
 */
#ifndef WARDEN_LIMIT_RULES_H
#define WARDEN_LIMIT_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gcra.h"
#include "netaddr.h"

enum limit_key {
    LK_CLIENT_IP = 1u << 0,
    LK_CLIENT_NET = 1u << 1,     /* client_net_v4 / client_net_v6 prefix */
    LK_HELO = 1u << 2,
    LK_SENDER = 1u << 3,         /* envelope sender, lower-cased */
    LK_SENDER_DOMAIN = 1u << 4,
    LK_RCPT_DOMAIN = 1u << 5,
    LK_USER = 1u << 6,           /* SASL user */
};

enum limit_count {
    LIMIT_CONCURRENT,   /* connections open at once (checked at connect) */
    LIMIT_CONNECTIONS,  /* connections per period (connect) */
    LIMIT_MESSAGES,     /* messages per period (MAIL) */
    LIMIT_RECIPIENTS,   /* recipients per period (each RCPT) */
    LIMIT_BYTES,        /* message bytes per period (end of data) */
    LIMIT_FAILURES,     /* refused commands/recipients per period */
};

#define LIMIT_MAX_WINDOWS 4

struct limit_reply {
    int code;                   /* 421 closes the session */
    char enh[16];
    char text[400];
};

struct limit_rule {
    char name[64];              /* unique across policy files */
    char where[256];            /* "file:line" of the entry */
    unsigned keys;              /* enum limit_key bits, at least one */
    unsigned net_v4, net_v6;    /* prefixes for LK_CLIENT_NET (24, 64) */
    enum limit_count count;
    struct rate windows[LIMIT_MAX_WINDOWS]; /* CONCURRENT: windows[0].count */
    size_t nwindows;
    /* scope: empty lists mean "all" */
    char **listeners;
    size_t nlisteners;
    struct cidr_list networks;  /* clients this limit applies to */
    char **users;               /* SASL users it applies to */
    size_t nusers;
    bool authenticated;         /* only authenticated sessions */
    /* exemptions */
    struct cidr_list exempt_networks;  /* inline + exempt_networks_file */
    char **exempt_users;
    size_t nexempt_users;
    char **exempt_senders;      /* addresses or "@domain" */
    size_t nexempt_senders;
    /* action */
    struct limit_reply reply;
    bool dry_run;
    /* escalation: after `after` refusals within `within_ms`, answer with
     * escalate_reply instead (0 after: no escalation) */
    unsigned escalate_after;
    uint64_t escalate_within_ms;
    struct limit_reply escalate_reply;
};

void limit_rule_free(struct limit_rule *r);

struct engine_ctx;

/* A rule's key; the store key adds ":<period ms>" or ":conn" (and stays
 * within STORE_KEY_MAX). */
#define LIMIT_KEY_MAX 224

/* Does r cover this session (listeners, networks, users; exemptions)? */
bool limit_applies(const struct limit_rule *r, const struct engine_ctx *ctx);
/* The store key r counts this session under, without the window suffix
 * (":<period ms>", or ":conn" for concurrent); false when a part of the
 * key is unknown (no user on an unauthenticated session, ...). */
bool limit_key(const struct limit_rule *r, const struct engine_ctx *ctx,
               char *key, size_t len);

const char *limit_count_name(enum limit_count c);

#endif
