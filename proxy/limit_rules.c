/*
 * limit_rules: freeing a limit and naming what it counts (see
 * limit_rules.h). Loading is policy.c's job, applying it check_limits.c's.
 */
#include "limit_rules.h"

#include <stdlib.h>
#include <string.h>

static void strv_free(char ***v, size_t *n);

static void strv_free(char ***v, size_t *n)
{
    for (size_t i = 0; *v && i < *n; i++)
        free((*v)[i]);
    free(*v);
    *v = NULL;
    *n = 0;
}

/*
 * Frees what the rule owns and leaves the lists empty, so freeing twice
 * is harmless; the struct itself belongs to the caller (policy->limits is
 * one array).
 */
void limit_rule_free(struct limit_rule *r)
{
    if (!r)
        return;
    strv_free(&r->listeners, &r->nlisteners);
    strv_free(&r->users, &r->nusers);
    strv_free(&r->exempt_users, &r->nexempt_users);
    strv_free(&r->exempt_senders, &r->nexempt_senders);
    cidr_list_free(&r->networks);
    cidr_list_free(&r->exempt_networks);
}

/* The names policy files use for `count:`, and logs print. */
const char *limit_count_name(enum limit_count c)
{
    switch (c) {
    case LIMIT_CONCURRENT:
        return "concurrent";
    case LIMIT_CONNECTIONS:
        return "connections";
    case LIMIT_MESSAGES:
        return "messages";
    case LIMIT_RECIPIENTS:
        return "recipients";
    case LIMIT_BYTES:
        return "bytes";
    case LIMIT_FAILURES:
        return "failures";
    }
    return "unknown";
}
