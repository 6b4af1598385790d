/*
 * gcra: rates ("100/1m") and the generic cell rate algorithm.
 *
 * GCRA keeps one number per key: the theoretical arrival time (TAT) of the
 * next request. A rate of N per period P gives an emission interval
 * T = P / N; a burst B lets B requests through back to back. A request of
 * cost c is allowed when  max(TAT, now) + c*T - B*T <= now,  and then the
 * new TAT is stored. It is exact under concurrency when the check and the
 * update happen in one step (one Lua call in Redis, one locked section in
 * memory), smooth at window edges, and needs no reset job: a key expires
 * when its TAT has passed.
 *
 * Times are microseconds in doubles, as in Redis's Lua (2^53 us is 285
 * years; a cost of one byte against 1g/1d is still 86 us).
 */
#ifndef WARDEN_GCRA_H
#define WARDEN_GCRA_H

#include <stdbool.h>
#include <stdint.h>

struct rate {
    uint64_t count;       /* N */
    uint64_t period_ms;   /* P */
    uint64_t burst;       /* B; 0 means N (the whole allowance at once) */
};

/*
 * Parse "N/period" where period is "30s", "1m", "2h", "1d" (a bare unit
 * means 1 of it: "100/m"). N may carry k/m/g for byte limits ("10m/1h").
 * Returns 0, or -1 with a static reason in *why.
 */
int rate_parse(const char *s, struct rate *out, const char **why);

/* Format as "N/period" for logs ("100/1m"). */
const char *rate_format(const struct rate *r, char *buf, unsigned len);

struct gcra_window {
    double emission_us;   /* T */
    double tolerance_us;  /* B * T */
};

void gcra_window_from_rate(const struct rate *r, struct gcra_window *w);

struct gcra_outcome {
    bool allowed;
    double new_tat_us;    /* to store when allowed */
    double retry_us;      /* when denied: wait this long */
    double remaining;     /* requests of cost 1 still allowed now */
};

/* Tolerance for rounding in sums of T (the Redis script uses the same). */
#define GCRA_SLACK_US 1.0

/* tat_us: stored TAT, or 0 for a fresh key. Pure: stores nothing. */
void gcra_evaluate(const struct gcra_window *w, double tat_us, double now_us,
                   double cost, struct gcra_outcome *out);

/* The share of the allowance (the burst) in use, 0 to 1, given what an
 * outcome left: 4 of a burst of 5 used is 0.8 however much of the fifth
 * has refilled since. */
double gcra_share_used(const struct gcra_window *w, double remaining);

#endif
