/*
 * check_dmarc: DMARC at end of data, by the policy files' `dmarc:`
 * section, on the results of check_spf and check_dkim (earlier in the
 * engine's table).
 *
 * This header is for what comes after it: the Authentication-Results
 * builder and content scoring (points for a fail).
 */
#ifndef WARDEN_CHECK_DMARC_H
#define WARDEN_CHECK_DMARC_H

#include "dmarc.h"

struct authres;
struct engine_session;

/* The DMARC outcome of the current message, or NULL when DMARC did not
 * run for it (no dmarc section, an exempt session, before end of data). */
const struct dmarc_outcome *check_dmarc_outcome(struct engine_session *es);

/* Add "dmarc=<result> (p=... dis=...) header.from=<domain>" to ar;
 * nothing when DMARC did not run. */
void check_dmarc_authres(struct engine_session *es, struct authres *ar);

#endif
