/*
 * score_rules: what the `scoring:` section of a policy file says.
 *
 * Content scoring runs at end of data when a policy file has a `scoring:`
 * section. It names the rule files (SpamAssassin-style .cf files or
 * directories of them, see rules.h), how much of each message is read,
 * how long scoring may take, where it applies (listeners, exempt
 * networks, authenticated sessions), and what each total leads to:
 *
 *   tag       add X-Spam-Flag, X-Spam-Score and X-Spam-Status (with the
 *             rules that hit) at or above this score
 *   tempfail  answer 451 (the admin's reply) at or above this
 *   reject    answer 550 5.7.1 (the admin's reply) at or above this
 *
 * Thresholds come in entries picked by listener (the first entry whose
 * listeners include the session's, or which names none), so an inbound
 * MX and a submission port can act differently on one rule set.
 *
 * This header is the data; policy_score.c loads it, check_score.c
 * applies it.
 */
#ifndef WARDEN_SCORE_RULES_H
#define WARDEN_SCORE_RULES_H

#include <stdbool.h>
#include <stddef.h>

#include "auth_rules.h"
#include "limit_rules.h"

struct ruleset;

#define SCORE_MAX_SCAN_DEFAULT (512 * 1024)
#define SCORE_TIMEOUT_DEFAULT 10000 /* ms */
#define SCORE_TAG_DEFAULT 5.0
#define SCORE_REJECT_DEFAULT 15.0
#define SCORE_LIMIT_NEAR_DEFAULT 0.8 /* 80% of an allowance used */

struct score_threshold {
    char **listeners; /* NULL: every listener */
    size_t nlisteners;
    bool tag_on, tempfail_on, reject_on;
    double tag, tempfail, reject;
    struct limit_reply tempfail_reply, reject_reply;
    unsigned line; /* where the entry is; 0: the default */
};

struct score_policy {
    char where[256]; /* "file:line" of the section */
    struct ruleset *rules;
    size_t max_scan;     /* bytes of a message scored */
    unsigned timeout_ms; /* then: accepted, unscored */
    struct auth_scope scope;
    struct score_threshold *thresholds;
    size_t nthresholds;
    double limit_near; /* WARDEN_LIMIT_NEAR from this share of a limit used */
};

void score_policy_free(struct score_policy *sp);

/* The thresholds for a listener, or NULL when no entry covers it. */
const struct score_threshold *score_threshold_for(const struct score_policy *sp,
                                                  const char *listener);

#endif
