/*
 * auth_rules: see auth_rules.h.
 */
#include "auth_rules.h"

#include <stdio.h>
#include <string.h>

#include "engine.h"
#include "yamldoc.h"

bool auth_scope_applies(const struct auth_scope *s, const char *listener,
                        const struct netaddr *client, bool authenticated)
{
    bool listed = s->nlisteners == 0;

    for (size_t i = 0; !listed && listener && i < s->nlisteners; i++)
        listed = strcmp(s->listeners[i], listener) == 0;
    return listed && !cidr_list_match(&s->exempt_networks, client) &&
           (!authenticated || s->check_authenticated);
}

void auth_scope_free(struct auth_scope *s)
{
    yamldoc_strv_free(s->listeners, s->nlisteners);
    s->listeners = NULL;
    s->nlisteners = 0;
    cidr_list_free(&s->exempt_networks);
}

void auth_rule_apply(const struct auth_rule *r, struct verdict *v,
                     const char *check, const char *result)
{
    if (r->action == AUTH_ACCEPT)
        return;
    verdict_set(v, r->action == AUTH_REJECT ? VERDICT_REJECT
                                            : VERDICT_TEMPFAIL,
                r->reply.code, r->reply.enh, r->reply.text, NULL);
    v->disconnect = r->reply.code == 421;
    snprintf(v->check, sizeof(v->check), "%s:%s", check, result);
}
