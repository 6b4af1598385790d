/*
 * spf_rules: the spf policy's own helpers (loading is in policy.c).
 */
#include "spf_rules.h"

#include <stdlib.h>
#include <string.h>

#include "yamldoc.h"

void spf_policy_free(struct spf_policy *sp)
{
    if (!sp)
        return;
    yamldoc_strv_free(sp->listeners, sp->nlisteners);
    cidr_list_free(&sp->exempt_networks);
    free(sp);
}

bool spf_policy_applies(const struct spf_policy *sp, const char *listener,
                        const struct netaddr *client, bool authenticated)
{
    bool listed = sp->nlisteners == 0;

    for (size_t i = 0; !listed && listener && i < sp->nlisteners; i++)
        listed = strcmp(sp->listeners[i], listener) == 0;
    return listed && !cidr_list_match(&sp->exempt_networks, client) &&
           (!authenticated || sp->check_authenticated);
}
