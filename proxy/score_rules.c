/*
 * score_rules: the scoring section's data (see the header).
 */
#include "score_rules.h"

#include <stdlib.h>
#include <string.h>

#include "rules.h"
#include "yamldoc.h"

void score_policy_free(struct score_policy *sp)
{
    if (!sp)
        return;
    ruleset_free(sp->rules);
    auth_scope_free(&sp->scope);
    for (size_t i = 0; i < sp->nthresholds; i++)
        yamldoc_strv_free(sp->thresholds[i].listeners,
                          sp->thresholds[i].nlisteners);
    free(sp->thresholds);
    free(sp);
}

const struct score_threshold *score_threshold_for(const struct score_policy *sp,
                                                  const char *listener)
{
    for (size_t i = 0; i < sp->nthresholds; i++) {
        const struct score_threshold *t = &sp->thresholds[i];
        if (t->nlisteners == 0)
            return t;
        for (size_t k = 0; listener && k < t->nlisteners; k++)
            if (strcmp(t->listeners[k], listener) == 0)
                return t;
    }
    return NULL;
}
