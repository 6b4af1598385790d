/*
 * gcra: rate parsing and the GCRA step (see gcra.h).
 */
#include "gcra.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* "30s", "1m", "2h", "1d", "m" (= 1m); milliseconds. */
static int parse_period(const char *s, uint64_t *ms)
{
    uint64_t n = 0, unit;
    const char *p = s;

    if (isdigit((unsigned char)*p)) {
        for (; isdigit((unsigned char)*p); p++) {
            if (n > 1000000)
                return -1;
            n = n * 10 + (uint64_t)(*p - '0');
        }
        if (n == 0)
            return -1;
    } else {
        n = 1;
    }
    switch (*p) {
    case 's': unit = 1000; break;
    case 'm': unit = 60 * 1000; break;
    case 'h': unit = 3600 * 1000; break;
    case 'd': unit = 86400 * 1000; break;
    default: return -1;
    }
    if (p[1] != '\0')
        return -1;
    *ms = n * unit;
    return 0;
}

/* N with an optional k/m/g (binary) for byte counts. */
static int parse_count(const char *s, size_t len, uint64_t *out)
{
    uint64_t n = 0, mult = 1;
    size_t i = 0;

    for (; i < len && isdigit((unsigned char)s[i]); i++) {
        if (n > UINT64_C(1) << 40)
            return -1;
        n = n * 10 + (uint64_t)(s[i] - '0');
    }
    if (i == 0)
        return -1;
    if (i < len) {
        switch (tolower((unsigned char)s[i])) {
        case 'k': mult = UINT64_C(1) << 10; break;
        case 'm': mult = UINT64_C(1) << 20; break;
        case 'g': mult = UINT64_C(1) << 30; break;
        default: return -1;
        }
        if (i + 1 != len)
            return -1;
    }
    if (n == 0 || n > UINT64_MAX / mult)
        return -1;
    *out = n * mult;
    return 0;
}

int rate_parse(const char *s, struct rate *out, const char **why)
{
    const char *slash = strchr(s, '/');
    const char *dummy;

    if (!why)
        why = &dummy;
    if (!slash) {
        *why = "expected N/period, e.g. 100/1m";
        return -1;
    }
    memset(out, 0, sizeof(*out));
    if (parse_count(s, (size_t)(slash - s), &out->count) != 0) {
        *why = "the count must be a positive number (k, m, g allowed)";
        return -1;
    }
    if (parse_period(slash + 1, &out->period_ms) != 0) {
        *why = "the period must be like 30s, 1m, 2h or 1d";
        return -1;
    }
    return 0;
}

static const char *period_text(uint64_t ms, char *buf, size_t len)
{
    static const struct { uint64_t ms; char c; } units[] = {
        {86400000, 'd'}, {3600000, 'h'}, {60000, 'm'}, {1000, 's'},
    };

    for (size_t i = 0; i < 4; i++)
        if (ms % units[i].ms == 0) {
            snprintf(buf, len, "%llu%c",
                     (unsigned long long)(ms / units[i].ms), units[i].c);
            return buf;
        }
    snprintf(buf, len, "%llums", (unsigned long long)ms);
    return buf;
}

const char *rate_format(const struct rate *r, char *buf, unsigned len)
{
    char p[32];

    snprintf(buf, len, "%llu/%s", (unsigned long long)r->count,
             period_text(r->period_ms, p, sizeof(p)));
    return buf;
}

void gcra_window_from_rate(const struct rate *r, struct gcra_window *w)
{
    uint64_t burst = r->burst ? r->burst : r->count;

    w->emission_us = (double)r->period_ms * 1000.0 / (double)r->count;
    w->tolerance_us = w->emission_us * (double)burst;
}

void gcra_evaluate(const struct gcra_window *w, double tat_us, double now_us,
                   double cost, struct gcra_outcome *out)
{
    double tat = tat_us > now_us ? tat_us : now_us;
    double new_tat = tat + cost * w->emission_us;
    double allow_at = new_tat - w->tolerance_us;

    /* 1 us of slack: T need not be a whole number of microseconds, and
     * N additions of it must still let the N-th request through */
    out->allowed = allow_at <= now_us + GCRA_SLACK_US;
    out->new_tat_us = new_tat;
    out->retry_us = out->allowed ? 0 : allow_at - now_us;
    /* what is left after this request (or now, if it was refused) */
    double basis = out->allowed ? new_tat : tat;
    double left = (now_us + w->tolerance_us - basis) / w->emission_us;
    out->remaining = left > 0 ? left : 0;
}

double gcra_share_used(const struct gcra_window *w, double remaining)
{
    double burst = w->tolerance_us / w->emission_us;
    /* whole requests left: time passing refills fractions of one */
    double left = floor(remaining + 1e-6);
    double used;

    if (!(burst > 0))
        return 0;
    used = 1.0 - left / burst;
    return used < 0 ? 0 : used > 1 ? 1 : used;
}
