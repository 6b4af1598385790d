/*
 * Unit tests for gcra: parsing and formatting rates, and the algorithm's
 * arithmetic (burst, refill, costs, retry times and window edges).
 *
 * The numbers are chosen so every time is an exact double (integers of
 * microseconds well below 2^53), so results are compared exactly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "gcra.h"

/* Some time far from 0, like a real clock (2001-09-09 in us). */
#define NOW 1e15

#define US_PER_S 1000000.0

static void assert_exact(double got, double want, const char *what)
{
    if (got != want)
        fail_msg("%s: got %.3f, want %.3f", what, got, want);
}

static struct gcra_window window(uint64_t count, uint64_t period_ms,
                                 uint64_t burst)
{
    struct rate r = {count, period_ms, burst};
    struct gcra_window w;

    gcra_window_from_rate(&r, &w);
    return w;
}

/* One request against the stored tat, which is updated when allowed. */
static struct gcra_outcome take(const struct gcra_window *w, double *tat,
                                double now, double cost)
{
    struct gcra_outcome o;

    gcra_evaluate(w, *tat, now, cost, &o);
    if (o.allowed)
        *tat = o.new_tat_us;
    return o;
}

/* ---- parsing and formatting ---- */

static void test_rate_parse_good(void **state)
{
    static const struct {
        const char *in;
        uint64_t count, period_ms;
    } cases[] = {
        {"100/1m", 100, 60000},
        {"100/m", 100, 60000},
        {"2000/1d", 2000, 86400000},
        {"20/30s", 20, 30000},
        {"5/2h", 5, 7200000},
        {"1/s", 1, 1000},
        {"7/d", 7, 86400000},
        {"10m/1h", 10485760, 3600000},
        {"10M/1h", 10485760, 3600000},
        {"64k/1m", 65536, 60000},
        {"1g/1d", 1073741824, 86400000},
        {"007/1m", 7, 60000},
        {"1/1000000d", 1, UINT64_C(86400000000000)},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct rate r = {99, 99, 99};
        const char *why = "untouched";

        if (rate_parse(cases[i].in, &r, &why) != 0)
            fail_msg("\"%s\" refused: %s", cases[i].in, why);
        assert_int_equal(r.count, cases[i].count);
        assert_int_equal(r.period_ms, cases[i].period_ms);
        assert_int_equal(r.burst, 0); /* the default: N */
    }
}

static void test_rate_parse_bad(void **state)
{
    static const char no_slash[] = "expected N/period, e.g. 100/1m";
    static const char bad_count[] =
        "the count must be a positive number (k, m, g allowed)";
    static const char bad_period[] =
        "the period must be like 30s, 1m, 2h or 1d";
    static const struct {
        const char *in, *why;
    } cases[] = {
        {"100", no_slash},
        {"", no_slash},
        {"100 per 1m", no_slash},
        {"/1m", bad_count},
        {"0/1m", bad_count},
        {"-1/1m", bad_count},
        {"1.5/1m", bad_count},
        {" 100/1m", bad_count},
        {"100 /1m", bad_count},
        {"abc/1m", bad_count},
        {"10t/1h", bad_count},
        {"1kk/1h", bad_count},
        {"k/1h", bad_count},
        {"0k/1h", bad_count},
        {"100/", bad_period},
        {"100/1", bad_period},
        {"100/0s", bad_period},
        {"100/1x", bad_period},
        {"100/1mm", bad_period},
        {"100/1m ", bad_period},
        {"100/ 1m", bad_period},
        {"100/1M", bad_period},
        {"100/ms", bad_period},
        {"100/500ms", bad_period},
        {"100/1m/1h", bad_period},
        {"100/-1m", bad_period},
        {"100/100000000d", bad_period},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct rate r;
        const char *why = NULL;

        if (rate_parse(cases[i].in, &r, &why) != -1)
            fail_msg("\"%s\" accepted", cases[i].in);
        if (!why || strcmp(why, cases[i].why) != 0)
            fail_msg("\"%s\": reason \"%s\", want \"%s\"", cases[i].in,
                     why ? why : "(null)", cases[i].why);
    }
    /* why may be NULL */
    {
        struct rate r;
        assert_int_equal(rate_parse("nope", &r, NULL), -1);
        assert_int_equal(rate_parse("1/1s", &r, NULL), 0);
    }
}

static void test_rate_format(void **state)
{
    static const struct {
        uint64_t count, period_ms;
        const char *want;
    } cases[] = {
        {100, 60000, "100/1m"}, {2000, 86400000, "2000/1d"},
        {5, 7200000, "5/2h"},   {20, 30000, "20/30s"},
        {1, 90000, "1/90s"},    {3, 5400000, "3/90m"},
        {1, 1500, "1/1500ms"},  {10485760, 3600000, "10485760/1h"},
        {7, 172800000, "7/2d"},
    };
    char buf[64];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct rate r = {cases[i].count, cases[i].period_ms, 0};
        assert_ptr_equal(rate_format(&r, buf, sizeof(buf)), buf);
        assert_string_equal(buf, cases[i].want);
    }
    /* a short buffer truncates, never overflows */
    {
        struct rate r = {123456, 60000, 0};
        char small[5];
        rate_format(&r, small, sizeof(small));
        assert_string_equal(small, "1234");
    }
}

/* What rate_format prints, rate_parse reads back (whole-unit periods). */
static void test_rate_round_trip(void **state)
{
    static const char *const rates[] = {"100/1m", "2000/1d", "20/30s",
                                        "5/2h",   "1/90s",   "3/90m"};
    char buf[64];

    for (size_t i = 0; i < sizeof(rates) / sizeof(rates[0]); i++) {
        struct rate r, back;
        assert_int_equal(rate_parse(rates[i], &r, NULL), 0);
        assert_string_equal(rate_format(&r, buf, sizeof(buf)), rates[i]);
        assert_int_equal(rate_parse(buf, &back, NULL), 0);
        assert_int_equal(back.count, r.count);
        assert_int_equal(back.period_ms, r.period_ms);
    }
}

/* ---- the algorithm ---- */

static void test_window_from_rate(void **state)
{
    struct gcra_window w;

    /* 10/1s: one every 100 ms; the default burst is all 10 */
    w = window(10, 1000, 0);
    assert_exact(w.emission_us, 100000, "T");
    assert_exact(w.tolerance_us, 1000000, "B*T");
    /* burst 3 */
    w = window(10, 1000, 3);
    assert_exact(w.emission_us, 100000, "T");
    assert_exact(w.tolerance_us, 300000, "B*T");
    /* 100/1m: 600 ms each */
    w = window(100, 60000, 0);
    assert_exact(w.emission_us, 600000, "T");
    assert_exact(w.tolerance_us, 60 * US_PER_S, "B*T");
}

/* A fresh key takes exactly N back to back, then is refused. */
static void test_fresh_key_allows_n(void **state)
{
    struct gcra_window w = window(10, 1000, 0);
    struct gcra_outcome o;
    double tat = 0;

    for (int i = 1; i <= 10; i++) {
        o = take(&w, &tat, NOW, 1);
        if (!o.allowed)
            fail_msg("request %d refused", i);
        assert_exact(o.remaining, 10 - i, "remaining");
        assert_exact(o.retry_us, 0, "retry when allowed");
        assert_exact(o.new_tat_us, NOW + i * 100000.0, "new tat");
    }
    o = take(&w, &tat, NOW, 1);
    assert_false(o.allowed);
    assert_exact(o.remaining, 0, "remaining when refused");
    /* the next slot frees one emission interval from now */
    assert_exact(o.retry_us, 100000, "retry");
    assert_exact(tat, NOW + 1 * US_PER_S, "tat unchanged by a refusal");
    /* refusals do not push the time further out */
    o = take(&w, &tat, NOW, 1);
    assert_false(o.allowed);
    assert_exact(o.retry_us, 100000, "retry again");
}

/* One emission interval later one more is allowed, not before. */
static void test_refill(void **state)
{
    struct gcra_window w = window(10, 1000, 0);
    struct gcra_outcome o;
    double tat = 0;

    for (int i = 0; i < 10; i++)
        assert_true(take(&w, &tat, NOW, 1).allowed);

    /* 2 us before the edge: refused, 2 us to wait (within GCRA_SLACK_US
     * of the edge counts as at the edge) */
    o = take(&w, &tat, NOW + 100000 - 2, 1);
    assert_false(o.allowed);
    assert_exact(o.retry_us, 2, "retry just before the edge");
    /* exactly at the edge: allowed, and nothing left */
    o = take(&w, &tat, NOW + 100000, 1);
    assert_true(o.allowed);
    assert_exact(o.remaining, 0, "remaining at the edge");
    /* and the one after needs another interval */
    o = take(&w, &tat, NOW + 100000, 1);
    assert_false(o.allowed);
    assert_exact(o.retry_us, 100000, "retry after the edge");

    /* half the period later, half the allowance is back */
    o = take(&w, &tat, NOW + 100000 + 500000, 1);
    assert_true(o.allowed);
    assert_exact(o.remaining, 4, "half refilled, one taken");

    /* after a full idle period the key is as good as fresh */
    o = take(&w, &tat, NOW + 10 * US_PER_S, 1);
    assert_true(o.allowed);
    assert_exact(o.remaining, 9, "refilled");
}

/* Never more than the whole allowance, however long the key was idle. */
static void test_no_credit_beyond_burst(void **state)
{
    struct gcra_window w = window(5, 1000, 0);
    double tat = NOW; /* used up to 'NOW', then idle for a day */
    double later = NOW + 86400 * US_PER_S;
    int allowed = 0;

    while (allowed < 100 && take(&w, &tat, later, 1).allowed)
        allowed++;
    assert_int_equal(allowed, 5);
}

/* A burst smaller than N: B back to back, then one per interval. */
static void test_small_burst(void **state)
{
    struct gcra_window w = window(10, 1000, 3);
    struct gcra_outcome o;
    double tat = 0;

    for (int i = 1; i <= 3; i++) {
        o = take(&w, &tat, NOW, 1);
        if (!o.allowed)
            fail_msg("request %d refused", i);
        assert_exact(o.remaining, 3 - i, "remaining");
    }
    o = take(&w, &tat, NOW, 1);
    assert_false(o.allowed);
    assert_exact(o.retry_us, 100000, "retry");
    /* the rate is still 10/1s: 10 more in the next second, evenly */
    for (int i = 1; i <= 10; i++) {
        double t = NOW + i * 100000.0;
        assert_true(take(&w, &tat, t, 1).allowed);
        assert_false(take(&w, &tat, t, 1).allowed);
    }
}

/* A burst larger than N lets B through at once. */
static void test_large_burst(void **state)
{
    struct gcra_window w = window(10, 1000, 25);
    double tat = 0;
    int allowed = 0;

    while (allowed < 100 && take(&w, &tat, NOW, 1).allowed)
        allowed++;
    assert_int_equal(allowed, 25);
}

/* Costs above 1: bytes against 1000/1s (1 ms per byte). */
static void test_cost(void **state)
{
    struct gcra_window w = window(1000, 1000, 0);
    struct gcra_outcome o;
    double tat = 0;

    o = take(&w, &tat, NOW, 600);
    assert_true(o.allowed);
    assert_exact(o.remaining, 400, "remaining after 600");
    assert_exact(o.new_tat_us, NOW + 600 * 1000.0, "tat after 600");

    /* 500 more would need 100 bytes' worth of time */
    o = take(&w, &tat, NOW, 500);
    assert_false(o.allowed);
    assert_exact(o.retry_us, 100 * 1000.0, "retry for 500");
    assert_exact(o.remaining, 400, "a refusal takes nothing");

    /* exactly what is left fits */
    o = take(&w, &tat, NOW, 400);
    assert_true(o.allowed);
    assert_exact(o.remaining, 0, "remaining after 1000");

    /* a request bigger than the burst never fits, even fresh */
    tat = 0;
    o = take(&w, &tat, NOW, 1001);
    assert_false(o.allowed);
    assert_exact(o.retry_us, 1000, "retry for 1001");
    assert_exact(tat, 0, "not stored");

    /* cost 0 (a peek) is allowed and changes nothing */
    tat = NOW + 1000 * 1000.0;
    o = take(&w, &tat, NOW, 0);
    assert_true(o.allowed);
    assert_exact(o.new_tat_us, NOW + 1000 * 1000.0, "peek tat");
    assert_exact(o.remaining, 0, "peek remaining");
}

/* Remaining counts fractions down: 1.5 intervals of credit is 1.5. */
static void test_remaining_fraction(void **state)
{
    struct gcra_window w = window(10, 1000, 0);
    struct gcra_outcome o;
    double tat = 0;

    for (int i = 0; i < 10; i++)
        take(&w, &tat, NOW, 1);
    /* 250 ms later 2.5 are back; one is taken */
    o = take(&w, &tat, NOW + 250000, 1);
    assert_true(o.allowed);
    assert_exact(o.remaining, 1.5, "remaining");
    o = take(&w, &tat, NOW + 250000, 1);
    assert_true(o.allowed);
    assert_exact(o.remaining, 0.5, "remaining");
    o = take(&w, &tat, NOW + 250000, 1);
    assert_false(o.allowed);
    assert_exact(o.retry_us, 50000, "retry for the missing half");
}

/* Big windows: 2000/1d is 43.2 s per message; day-scale times stay exact. */
static void test_daily_window(void **state)
{
    struct gcra_window w = window(2000, 86400000, 0);
    struct gcra_outcome o;
    double tat = 0;

    assert_exact(w.emission_us, 43200000, "T");
    for (int i = 0; i < 2000; i++)
        if (!take(&w, &tat, NOW, 1).allowed)
            fail_msg("request %d refused", i + 1);
    o = take(&w, &tat, NOW, 1);
    assert_false(o.allowed);
    assert_exact(o.retry_us, 43200000, "retry");
    o = take(&w, &tat, NOW + 43200000, 1);
    assert_true(o.allowed);
    assert_exact(tat, NOW + 86400 * US_PER_S + 43200000, "tat");
}

/* The share of a burst in use, as WARDEN_LIMIT_NEAR reads it: whole
 * requests, so a fraction refilled since does not hide the fourth of 5. */
/* Shares are quotients of doubles: 1 - 1/5 need not be the literal 0.8. */
static void assert_share(double got, double want, const char *what)
{
    if (got < want - 1e-12 || got > want + 1e-12)
        fail_msg("%s: got %.15f, want %.3f", what, got, want);
}

static void test_share_used(void **state)
{
    struct gcra_window w = window(5, 3600000, 0);
    struct gcra_outcome o;
    double tat = 0, share[6];

    for (int i = 0; i < 5; i++) {
        /* a little time passes between requests, as in real sessions */
        o = take(&w, &tat, NOW + i * 1000.0, 1);
        assert_true(o.allowed);
        share[i] = gcra_share_used(&w, o.remaining);
    }
    o = take(&w, &tat, NOW + 5000.0, 1);
    assert_false(o.allowed);
    share[5] = gcra_share_used(&w, o.remaining);
    assert_share(share[0], 0.2, "after 1 of 5");
    assert_share(share[3], 0.8, "after 4 of 5");
    assert_share(share[4], 1, "after 5 of 5");
    assert_share(share[5], 1, "refused");

    /* a remaining just under a whole number (rounding) is that number */
    assert_share(gcra_share_used(&w, 0.9999999999), 0.8, "rounding");
    /* nothing used, and more credit than the burst never goes below 0 */
    assert_share(gcra_share_used(&w, 5), 0, "fresh");
    assert_share(gcra_share_used(&w, 7), 0, "clamped");

    /* bytes: 600 of 1000 used */
    w = window(1000, 1000, 0);
    tat = 0;
    o = take(&w, &tat, NOW, 600);
    assert_share(gcra_share_used(&w, o.remaining), 0.6, "bytes");
    /* a burst above N: 20 of 25 is 0.8 */
    w = window(10, 1000, 25);
    tat = 0;
    for (int i = 0; i < 20; i++)
        o = take(&w, &tat, NOW, 1);
    assert_share(gcra_share_used(&w, o.remaining), 0.8, "burst 25");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rate_parse_good),
        cmocka_unit_test(test_rate_parse_bad),
        cmocka_unit_test(test_rate_format),
        cmocka_unit_test(test_rate_round_trip),
        cmocka_unit_test(test_window_from_rate),
        cmocka_unit_test(test_fresh_key_allows_n),
        cmocka_unit_test(test_refill),
        cmocka_unit_test(test_no_credit_beyond_burst),
        cmocka_unit_test(test_small_burst),
        cmocka_unit_test(test_large_burst),
        cmocka_unit_test(test_cost),
        cmocka_unit_test(test_remaining_fraction),
        cmocka_unit_test(test_daily_window),
        cmocka_unit_test(test_share_used),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
