/*
 * auth_rules: what the `dkim:` and `dmarc:` sections share: an action per
 * result (accept, which only tags; tempfail; reject, each with the
 * admin's reply) and a scope (listeners, exempt networks, whether
 * authenticated sessions are checked).
 *
 * The defaults only tag: a result a section does not name is accepted.
 * Loading is in policy_auth.c; checks apply a rule with auth_rule_apply.
 */
#ifndef WARDEN_AUTH_RULES_H
#define WARDEN_AUTH_RULES_H

#include <stdbool.h>
#include <stddef.h>

#include "limit_rules.h"
#include "netaddr.h"

struct verdict;

enum auth_action {
    AUTH_ACCEPT,      /* tag only */
    AUTH_TEMPFAIL,    /* 4xx (421: and close) */
    AUTH_REJECT,      /* 5xx */
};

struct auth_rule {
    enum auth_action action;
    struct limit_reply reply;   /* for tempfail and reject */
    unsigned line;              /* where it was set; 0: the default */
};

struct auth_scope {
    char **listeners;                 /* NULL: every listener */
    size_t nlisteners;
    struct cidr_list exempt_networks; /* not checked */
    bool check_authenticated;         /* default false: AUTH skips it */
};

/* Is this session checked? */
bool auth_scope_applies(const struct auth_scope *s, const char *listener,
                        const struct netaddr *client, bool authenticated);
void auth_scope_free(struct auth_scope *s);

/* Turn r into v (nothing for accept); v->check becomes "check:result". */
void auth_rule_apply(const struct auth_rule *r, struct verdict *v,
                     const char *check, const char *result);

#endif
