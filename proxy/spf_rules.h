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
 * The rules and the scope are those the dkim: and dmarc: sections use
 * (auth_rules.h); policy_auth.c loads them and check_spf.c applies them.
 */
#ifndef WARDEN_SPF_RULES_H
#define WARDEN_SPF_RULES_H

#include <stdbool.h>
#include <stddef.h>

#include "auth_rules.h"
#include "spf.h"

struct spf_policy {
    char where[256];                  /* "file:line" of the section */
    struct auth_rule on[SPFR__COUNT]; /* by enum spf_result */
    struct auth_scope scope;          /* default: AUTH skips SPF */
};

void spf_policy_free(struct spf_policy *sp);

#endif
