/*
 * dmarc_rules: what the `dmarc:` section of a policy file says.
 *
 * DMARC runs at end of data when a policy file has a `dmarc:` section
 * (it needs `spf:` and `dkim:` sections too: it aligns their results).
 * What happens to a message is, by its DMARC result:
 *
 *   fail       with honor_policy: true, the domain's policy (after its
 *              pct= sampling) picks the rule: p=reject -> policy_reject
 *              (default: reject 550 5.7.1), p=quarantine ->
 *              policy_quarantine (default: accept, i.e. tag: Warden has
 *              no quarantine; reject or tempfail if you prefer), p=none
 *              -> fail. Without honor_policy (the default), the fail rule.
 *   temperror  temperror (default accept; e.g. tempfail 451 4.7.5)
 *   permerror  permerror (default accept)
 *   pass, none always accepted (tagged)
 *
 * This header is the data; policy_auth.c loads it, check_dmarc.c applies
 * it.
 */
#ifndef WARDEN_DMARC_RULES_H
#define WARDEN_DMARC_RULES_H

#include <stdbool.h>

#include "auth_rules.h"

struct orgdomain;

struct dmarc_policy {
    char where[256];                   /* "file:line" of the section */
    bool honor_policy;
    struct auth_rule policy_reject;    /* fail, p=reject, honored */
    struct auth_rule policy_quarantine;
    struct auth_rule fail;             /* any other fail */
    struct auth_rule temperror;
    struct auth_rule permerror;
    struct auth_scope scope;
    struct orgdomain *psl;             /* the public suffix list */
};

void dmarc_policy_free(struct dmarc_policy *p);

#endif
