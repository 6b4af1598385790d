/*
 * dmarc_rules: the dmarc policy's own helpers (loading is in
 * policy_auth.c).
 */
#include "dmarc_rules.h"

#include <stdlib.h>

#include "orgdomain.h"

void dmarc_policy_free(struct dmarc_policy *p)
{
    if (!p)
        return;
    auth_scope_free(&p->scope);
    orgdomain_free(p->psl);
    free(p);
}
