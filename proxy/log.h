/*
 * log: one place that writes log lines, to stderr or syslog.
 *
 * Lines follow Postfix's habit: stable "key=value" fields an admin can grep
 * and build tooling on. The level and target come from the config; they are
 * process-wide because syslog itself is.
 */
#ifndef WARDEN_LOG_H
#define WARDEN_LOG_H

#include <stddef.h>
#include <syslog.h>

struct log_conf;

/* Apply target, level and facility; safe to call again on reload. */
void log_setup(const struct log_conf *lc);

void log_msg(int prio, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_err(...) log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_NOTICE, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

/* Copy s into buf for a log line: CR, LF, controls and '"' become '?'. */
const char *log_sanitize(const char *s, char *buf, size_t len);

#endif
