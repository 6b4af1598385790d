/*
 * check_access: allow or deny clients by network, from the policy files.
 *
 * Runs once, at connect. The first access rule that matches the client
 * decides; a reject makes the session answer 554 and refuse every command
 * but QUIT, a tempfail answers 421 and closes.
 */
#include <stdio.h>

#include "check.h"
#include "config.h"
#include "policy.h"

static enum engine_status access_run(struct engine_session *es,
                                     enum checkpoint cp,
                                     const struct engine_ctx *ctx,
                                     struct verdict *v)
{
    const struct config *cfg = engine_session_config(es);
    const struct access_rule *r;

    if (!cfg->policy)
        return ENGINE_DONE;
    r = policy_access_match(cfg->policy, ctx->listener, &ctx->client);
    if (!r || r->action == ACCESS_ACCEPT)
        return ENGINE_DONE;
    verdict_set(v, r->action == ACCESS_REJECT ? VERDICT_REJECT
                                              : VERDICT_TEMPFAIL,
                r->code, r->enh, r->text, "access");
    v->disconnect = r->action == ACCESS_TEMPFAIL;
    snprintf(v->check, sizeof(v->check), "access:%.24s", r->name);
    return ENGINE_DONE;
}

const struct check_ops check_access = {
    .name = "access",
    .checkpoints = CP_BIT(CP_CONNECT),
    .run = access_run,
};
