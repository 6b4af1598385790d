/*
 * scorer: run a rule set over a decoded message and add up the score.
 *
 * Pure computation on immutable rules and a view owned by the caller's
 * thread: the check runs it on a worker thread, `warden score` and the
 * tests call it directly. Work is bounded twice: every match is limited
 * (rules_regex.h), and a whole run stops at a time budget, scoring what
 * was matched so far.
 */
#ifndef WARDEN_SCORER_H
#define WARDEN_SCORER_H

#include <stdbool.h>
#include <stddef.h>

#include "rules.h"

struct msgview;

struct score_hit {
    size_t rule;  /* index in the rule set */
    double count; /* matches (1 unless tflags multiple) */
};

struct score_result {
    double score;
    struct score_hit *hits; /* scored rules that hit, by name */
    size_t nhits;
    unsigned limit_errors; /* matches a PCRE2 limit stopped */
    bool out_of_time;      /* the budget ran out: some rules not run */
    double seconds;
};

/*
 * Score mv with rs. ext holds the other checks' results (1: the result
 * holds, 0: it does not), indexed by enum rule_external; NULL for none.
 * budget_ms 0 means no time budget. Returns 0, or -1 when out of memory.
 */
int scorer_run(const struct ruleset *rs, struct msgview *mv, const double *ext,
               unsigned budget_ms, struct score_result *out);
void score_result_free(struct score_result *r);

/* "GTUBE,MISSING_DATE" (hits in name order), cut to fit len. */
void score_result_tests(const struct ruleset *rs, const struct score_result *r,
                        char *buf, size_t len);

#endif
