/*
 * spf_rules: what the `spf:` section of a policy file says.
 *
 * SPF runs only when a policy file has an `spf:` section. For each result
 * (pass, fail, softfail, neutral, none, temperror, permerror) the section
 * says what to do at MAIL FROM: accept (also spelled tag: the message goes
 * on, with the result in its Authentication-Results header), tempfail or
 * reject, with the admin's reply. A result the section does not name is
 * accepted: the default only tags. Exemptions (networks, authenticated
 * sessions, listeners) skip the check entirely.
 *
 * This header is the data; policy.c loads it and check_spf.c applies it.
 */
#ifndef WARDEN_SPF_RULES_H
#define WARDEN_SPF_RULES_H

#include <stdbool.h>
#include <stddef.h>

#include "limit_rules.h"
#include "netaddr.h"
#include "spf.h"

enum spf_action {
    SPF_ACT_ACCEPT,     /* tag only */
    SPF_ACT_TEMPFAIL,   /* 4xx at MAIL FROM (421: and close) */
    SPF_ACT_REJECT,     /* 5xx at MAIL FROM */
};

struct spf_rule {
    enum spf_action action;
    struct limit_reply reply;   /* for tempfail and reject */
    unsigned line;              /* where it was set; 0: the default */
};

struct spf_policy {
    char where[256];                     /* "file:line" of the section */
    struct spf_rule on[SPFR__COUNT];     /* by enum spf_result */
    char **listeners;                    /* NULL: every listener */
    size_t nlisteners;
    struct cidr_list exempt_networks;    /* not checked */
    bool check_authenticated;            /* default false: AUTH skips SPF */
};

void spf_policy_free(struct spf_policy *sp);

/* Is this session checked (listener in scope, client and user not
 * exempt)? */
bool spf_policy_applies(const struct spf_policy *sp, const char *listener,
                        const struct netaddr *client, bool authenticated);

#endif
