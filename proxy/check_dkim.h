/*
 * check_dkim: DKIM verification at end of data, by the policy files'
 * `dkim:` section.
 *
 * The check itself is in the engine's table (check.h); this header is for
 * what comes after it: DMARC (alignment), the Authentication-Results
 * builder and content scoring (points for a fail). They run later in the
 * table, at end of data.
 */
#ifndef WARDEN_CHECK_DKIM_H
#define WARDEN_CHECK_DKIM_H

#include "dkimverify.h"

struct authres;
struct engine_session;

/* The DKIM outcome of the current message, or NULL when DKIM did not run
 * for it (no dkim section, an exempt session, before end of data). */
const struct dkimv_outcome *check_dkim_outcome(struct engine_session *es);

/* Add "dkim=<result> header.d=... header.s=... header.a=... header.b=..."
 * for every signature reported (or "dkim=none") to ar; nothing when DKIM
 * did not run. */
void check_dkim_authres(struct engine_session *es, struct authres *ar);

#endif
