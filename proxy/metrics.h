/*
 * metrics: process-wide counters and latency histograms, rendered in the
 * Prometheus text format (metrics_http.c serves them on /metrics).
 *
 * Every update is one relaxed atomic add: worker threads count without
 * locks, the scrape reads whatever each counter holds at that moment.
 * Label values come from fixed lists; anything else counts as "other", so
 * no input can grow the number of series.
 */
#ifndef WARDEN_METRICS_H
#define WARDEN_METRICS_H

#include <stdbool.h>
#include <stdio.h>

/* Sessions: accepted, closed, and refused before a session existed or at
 * its connect checkpoint. reason: "max_connections", "proxy_protocol",
 * "draining", or the check that refused ("access", "limits", ...). */
void metric_conn_opened(void);
void metric_conn_closed(void);
void metric_conn_refused(const char *reason);

/* A transaction ended: result "sent", "tempfail", "refused", "aborted". */
void metric_transaction(const char *result);

/*
 * A command or message refused, by whom: stage "connect", "helo", "mail",
 * "rcpt", "data", "eom", "auth" (SMTP verbs map onto these), check
 * "access", "limits", ... or "backend" when the backend said no.
 */
void metric_rejection(const char *stage, const char *check);

/* Limits checkpoints: result "ok", "exceeded", "dry_run", "store_error". */
void metric_limit_check(const char *result);

/* Backend trouble: kind "connect", "lost", "greeting", "xclient". */
void metric_backend_error(const char *kind);

/* One Redis call: its latency, and result "ok", "error", "timeout". */
void metric_store_call(double seconds, const char *result);

/* One DNS query: its latency, and result "ok", "nxdomain", "timeout",
 * "error". */
void metric_dns_query(double seconds, const char *result);

/* One SPF check: result "pass", "fail", "softfail", "neutral", "none",
 * "temperror", "permerror". */
void metric_spf_result(const char *result);

/* One DKIM verification (the message's overall result): "pass", "fail",
 * "policy", "neutral", "none", "temperror", "permerror". */
void metric_dkim_result(const char *result);

/* One DMARC evaluation: "pass", "fail", "none", "temperror", "permerror". */
void metric_dmarc_result(const char *result);

/*
 * A message that reached content scoring: its action "accept", "tag",
 * "tempfail", "reject" and the scorer's time; or, left unscored (and
 * accepted), "busy" (every scoring thread taken), "timeout" or "error".
 * seconds < 0: not scored, no time to record.
 */
void metric_scored(const char *result, double seconds);

/* A SIGHUP reload. */
void metric_reload(bool ok);

/* The daemon started now (for warden_start_time_seconds). */
void metrics_mark_start(void);

/* The whole page, in the Prometheus text exposition format 0.0.4. */
void metrics_render(FILE *out);

#endif
