/*
 * Unit tests for dmarc's pure parts: record parsing (RFC 7489 6.3, the
 * p=/rua= rule of 6.6.3), identifier alignment (3.1, strict and relaxed
 * through the organizational domain) and the result with pct sampling
 * (6.6.4).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "dmarc.h"
#include "orgdomain.h"

static const char psl_text[] = "com\nuk\nco.uk\n";
static struct orgdomain *psl;

static int group_setup(void **state)
{
    psl = orgdomain_parse(psl_text, strlen(psl_text));
    return psl ? 0 : -1;
}

static int group_teardown(void **state)
{
    orgdomain_free(psl);
    return 0;
}

static void test_record_parse(void **state)
{
    struct dmarc_record r;

    assert_int_equal(dmarc_record_parse("v=DMARC1; p=reject", &r), 0);
    assert_int_equal(r.p, DMARC_DISP_REJECT);
    assert_int_equal(r.sp, DMARC_DISP_REJECT);  /* sp defaults to p */
    assert_int_equal(r.pct, 100);
    assert_false(r.strict_dkim);
    assert_false(r.strict_spf);

    assert_int_equal(dmarc_record_parse(" v = DMARC1 ;P=Quarantine; "
                                        "sp=none;adkim=s; aspf=s; pct=25;",
                                        &r),
                     0);
    assert_int_equal(r.p, DMARC_DISP_QUARANTINE);
    assert_int_equal(r.sp, DMARC_DISP_NONE);
    assert_true(r.strict_dkim && r.strict_spf);
    assert_int_equal(r.pct, 25);

    /* bad values of optional tags fall back to their defaults */
    assert_int_equal(dmarc_record_parse("v=DMARC1; p=none; pct=250; "
                                        "adkim=x; junk; =; fo=1",
                                        &r),
                     0);
    assert_int_equal(r.pct, 100);
    assert_false(r.strict_dkim);

    /* not DMARC records at all */
    assert_int_equal(dmarc_record_parse("v=spf1 -all", &r), 1);
    assert_int_equal(dmarc_record_parse("p=reject; v=DMARC1", &r), 1);
    assert_int_equal(dmarc_record_parse("v=dmarc1; p=reject", &r), 1);
    assert_int_equal(dmarc_record_parse("", &r), 1);

    /* DMARC without a usable p: p=none with rua, unusable without */
    assert_int_equal(dmarc_record_parse("v=DMARC1; p=bogus", &r), -1);
    assert_int_equal(dmarc_record_parse("v=DMARC1", &r), -1);
    assert_int_equal(dmarc_record_parse("v=DMARC1; p=reject; sp=bad", &r),
                     -1);
    assert_int_equal(dmarc_record_parse("v=DMARC1; p=bogus; "
                                        "rua=mailto:d@example.com",
                                        &r),
                     0);
    assert_int_equal(r.p, DMARC_DISP_NONE);
}

static void test_alignment(void **state)
{
    assert_true(dmarc_aligned(psl, "example.com", "EXAMPLE.com", true));
    assert_false(dmarc_aligned(psl, "news.example.com", "example.com",
                               true));
    assert_true(dmarc_aligned(psl, "news.example.com", "example.com",
                              false));
    assert_true(dmarc_aligned(psl, "a.example.com", "b.example.com", false));
    assert_false(dmarc_aligned(psl, "example.com", "example.org", false));
    /* co.uk is a suffix: two .co.uk domains are not one organization */
    assert_false(dmarc_aligned(psl, "a.co.uk", "b.co.uk", false));
    assert_true(dmarc_aligned(psl, "mail.a.co.uk", "a.co.uk", false));
    assert_false(dmarc_aligned(psl, "example.com", NULL, false));
    assert_false(dmarc_aligned(psl, "example.com", "", false));
}

static struct dmarc_outcome eval(const char *record, bool at_org,
                                 const struct dmarc_input *in, unsigned roll)
{
    struct dmarc_lookup lk = {.status = 0, .at_org = at_org};
    struct dmarc_outcome o;

    snprintf(lk.record, sizeof(lk.record), "%s", record);
    dmarc_evaluate(psl, &lk, in, roll, &o);
    return o;
}

static void test_evaluate(void **state)
{
    const char *pass_d[] = {"example.com"};
    struct dmarc_input in = {.from_domain = "example.com"};
    struct dmarc_outcome o;

    o = eval("v=DMARC1; p=reject", false, &in, 0);
    assert_int_equal(o.result, DMARCR_FAIL);
    assert_int_equal(o.policy, DMARC_DISP_REJECT);
    assert_int_equal(o.disposition, DMARC_DISP_REJECT);
    assert_string_equal(o.from_domain, "example.com");

    in.dkim_domains = pass_d;
    in.ndkim = 1;
    o = eval("v=DMARC1; p=reject", false, &in, 0);
    assert_int_equal(o.result, DMARCR_PASS);
    assert_string_equal(o.aligned, "dkim");
    assert_int_equal(o.disposition, DMARC_DISP_NONE);

    in.ndkim = 0;
    in.spf_domain = "bounce.example.com";
    o = eval("v=DMARC1; p=reject", false, &in, 0);
    assert_string_equal(o.aligned, "spf");
    o = eval("v=DMARC1; p=reject; aspf=s", false, &in, 0);
    assert_int_equal(o.result, DMARCR_FAIL);

    /* pct: roll 30 is outside pct=25: reject softens to quarantine */
    in.spf_domain = NULL;
    o = eval("v=DMARC1; p=reject; pct=25", false, &in, 30);
    assert_int_equal(o.disposition, DMARC_DISP_QUARANTINE);
    o = eval("v=DMARC1; p=reject; pct=25", false, &in, 24);
    assert_int_equal(o.disposition, DMARC_DISP_REJECT);
    o = eval("v=DMARC1; p=quarantine; pct=0", false, &in, 0);
    assert_int_equal(o.disposition, DMARC_DISP_NONE);

    /* found at the organizational domain: sp applies */
    in.from_domain = "news.example.com";
    o = eval("v=DMARC1; p=reject; sp=none", true, &in, 0);
    assert_int_equal(o.policy, DMARC_DISP_NONE);
    assert_int_equal(o.result, DMARCR_FAIL);

    /* DKIM not verified for size: no fail is claimed */
    in.dkim_unverified = true;
    o = eval("v=DMARC1; p=reject", false, &in, 0);
    assert_int_equal(o.result, DMARCR_NONE);

    o = eval("v=DMARC1; p=nonsense", false, &in, 0);
    assert_int_equal(o.result, DMARCR_PERMERROR);
}

static void test_lookup_status(void **state)
{
    struct dmarc_input in = {.from_domain = "example.com"};
    struct dmarc_lookup lk = {.status = -1};
    struct dmarc_outcome o;

    dmarc_evaluate(NULL, &lk, &in, 0, &o);
    assert_int_equal(o.result, DMARCR_TEMPERROR);
    lk.status = -2;
    dmarc_evaluate(NULL, &lk, &in, 0, &o);
    assert_int_equal(o.result, DMARCR_PERMERROR);
    lk.status = 1;
    dmarc_evaluate(NULL, &lk, &in, 0, &o);
    assert_int_equal(o.result, DMARCR_NONE);
    assert_false(o.have_policy);
    assert_string_equal(dmarc_result_name(DMARCR_TEMPERROR), "temperror");
    assert_string_equal(dmarc_disp_name(DMARC_DISP_QUARANTINE),
                        "quarantine");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_record_parse),
        cmocka_unit_test(test_alignment),
        cmocka_unit_test(test_evaluate),
        cmocka_unit_test(test_lookup_status),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
