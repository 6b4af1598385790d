/*
 * spf_rules: the spf policy's own helpers (loading is in policy_auth.c).
 */
#include "spf_rules.h"

#include <stdlib.h>

void spf_policy_free(struct spf_policy *sp)
{
    if (!sp)
        return;
    auth_scope_free(&sp->scope);
    free(sp);
}
