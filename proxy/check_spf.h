/*
 * check_spf: SPF at MAIL FROM, by the policy files' `spf:` section.
 *
 * The check itself is in the engine's table (check.h); this header is for
 * the checks that come after it and use its result (DMARC, content
 * scoring): they must run later in the table, at MAIL or after.
 */
#ifndef WARDEN_CHECK_SPF_H
#define WARDEN_CHECK_SPF_H

#include "spf.h"

struct authres;
struct engine_session;

/* The SPF outcome of the current transaction, or NULL when SPF did not
 * run for it (no spf section, an exempt client, before MAIL FROM). */
const struct spf_outcome *check_spf_outcome(struct engine_session *es);

/* Add "spf=<result> [(why)] smtp.mailfrom=<addr>" (smtp.helo=<name> for
 * the null sender) to ar; nothing when SPF did not run. */
void check_spf_authres(struct engine_session *es, struct authres *ar);

struct authres;
/* Add "spf=<result> smtp.mailfrom=..." to ar (check_authres.c builds the
 * one field); nothing when SPF did not run for the transaction. */
void check_spf_authres(struct engine_session *es, struct authres *ar);

#endif
