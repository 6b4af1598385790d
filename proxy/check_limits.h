/*
 * check_limits: connection and rate limits (the check itself is in the
 * engine's table, check.h). This header is for content scoring, which
 * runs later and turns "nearly at a limit" into WARDEN_LIMIT_NEAR.
 */
#ifndef WARDEN_CHECK_LIMITS_H
#define WARDEN_CHECK_LIMITS_H

struct engine_session;

/* The largest share (0 to 1) of an enforced limit's allowance this client
 * has used: the limits counted at connect for the session, and those of
 * the current transaction (MAIL, RCPT, end of data). 0 when none ran. */
double check_limits_share_used(struct engine_session *es);

#endif
