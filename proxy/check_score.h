/*
 * check_score: content scoring at end of data, by the policy files'
 * `scoring:` section (score_rules.h) and its rule files (rules.h).
 *
 * The check itself is in the engine's table (check.h), after SPF, DKIM
 * and DMARC, whose results it scores as rules (WARDEN_SPF_FAIL, ...).
 * This header gives those results as the scorer's inputs, for the check
 * and for `warden policy test`-like tools.
 */
#ifndef WARDEN_CHECK_SCORE_H
#define WARDEN_CHECK_SCORE_H

#include "rules.h"

struct engine_session;
struct engine_ctx;

/* ext[EXT_x] = 1 when the result holds for this message, else 0. */
void check_score_externals(struct engine_session *es,
                           const struct engine_ctx *ctx,
                           double ext[EXT__COUNT]);

#endif
