/*
 * log: stderr (for systemd and tests) or syslog (for a classic mail host).
 *
 * The settings are process-wide, as syslog's are: one target, one level.
 * They are written only by log_setup() (main thread, at start and on
 * reload) and read by every worker thread, hence the atomic accesses.
 */
#include "log.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "config.h"

static int log_level = LOG_INFO;
static bool log_to_syslog;

void log_setup(const struct log_conf *lc)
{
    bool to_syslog = lc->target == LOG_TARGET_SYSLOG;

    if (to_syslog)
        openlog("warden", LOG_PID | LOG_NDELAY, lc->facility);
    __atomic_store_n(&log_level, lc->level, __ATOMIC_RELAXED);
    __atomic_store_n(&log_to_syslog, to_syslog, __ATOMIC_RELAXED);
}

static const char *prio_name(int prio)
{
    switch (prio) {
    case LOG_ERR: return "error";
    case LOG_WARNING: return "warning";
    case LOG_NOTICE: return "notice";
    case LOG_DEBUG: return "debug";
    default: return "info";
    }
}

void log_msg(int prio, const char *fmt, ...)
{
    char line[4096];
    va_list ap;

    if (prio > __atomic_load_n(&log_level, __ATOMIC_RELAXED))
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (__atomic_load_n(&log_to_syslog, __ATOMIC_RELAXED)) {
        syslog(prio, "%s", line);
        return;
    }
    /* One write per line so lines from several threads never interleave. */
    struct timeval tv;
    struct tm tm;
    char stamp[32];
    gettimeofday(&tv, NULL);
    localtime_r(&tv.tv_sec, &tm);
    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
    fprintf(stderr, "%s.%03ld warden: %s: %s\n", stamp,
            (long)(tv.tv_usec / 1000), prio_name(prio), line);
}

const char *log_sanitize(const char *s, char *buf, size_t len)
{
    size_t i = 0;

    if (len == 0)
        return "";
    for (; s && *s && i + 1 < len; s++)
        buf[i++] = ((unsigned char)*s < 32 || *s == 127 || *s == '"') ? '?'
                                                                      : *s;
    buf[i] = '\0';
    return buf;
}
