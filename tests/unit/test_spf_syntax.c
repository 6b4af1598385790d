/*
 * Unit tests for spf_syntax: RFC 7208's grammar (records that must be a
 * permerror, records that must pass) and the form handed to libspf2.
 */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "spf_syntax.h"

static const char *check(const char *rec, int family, char *out,
                         size_t len)
{
    const char *why = NULL;

    if (spf_record_check(rec, family, out, len, &why) != 0) {
        assert_non_null(why);
        return NULL;
    }
    return out;
}

static void assert_valid(const char *rec, const char *want)
{
    char out[1024];

    if (!check(rec, AF_INET, out, sizeof(out)))
        fail_msg("refused: %s", rec);
    assert_string_equal(out, want ? want : rec);
}

static void assert_invalid(const char *rec)
{
    char out[1024];

    if (check(rec, AF_INET, out, sizeof(out)))
        fail_msg("accepted: %s", rec);
}

static void test_valid_records(void **state)
{
    assert_valid("v=spf1", NULL);
    assert_valid("V=SPF1 -ALL", "v=spf1 -ALL");
    assert_valid("v=spf1 a mx ptr -all", NULL);
    assert_valid("v=spf1 +a:mail.example.com/24//64 ~mx:example.com. ?all",
                 NULL);
    assert_valid("v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 -all", NULL);
    assert_valid("v=spf1 include:_spf.example.com exists:%{i}.%{d2r}.x.org",
                 NULL);
    assert_valid("v=spf1 a:%{l1r+-}.example.com ptr:%{d}", NULL);
    assert_valid("v=spf1 a:macro%%percent%_%_space%-url.example.com", NULL);
    assert_valid("v=spf1 a:1-2.example.1-2", NULL); /* hyphenated toplabel */
    assert_valid("v=spf1 a:foo:bar/baz.example.com", NULL);
    assert_valid("v=spf1 a  -all ", "v=spf1 a -all"); /* spaces */
}

static void test_invalid_records(void **state)
{
    assert_invalid("v=spf10");
    assert_invalid("v=spf1 foo");             /* unknown mechanism */
    assert_invalid("v=spf1 redirect:example.com"); /* a modifier, with ':' */
    assert_invalid("v=spf1 -all:foo");
    assert_invalid("v=spf1 a:foo-bar");       /* no top label */
    assert_invalid("v=spf1 a:example.123");   /* numeric top label */
    assert_invalid("v=spf1 a:example.-com");
    assert_invalid("v=spf1 a:");
    assert_invalid("v=spf1 ptr:");
    assert_invalid("v=spf1 include:");
    assert_invalid("v=spf1 exists:example.com/24");
    assert_invalid("v=spf1 ip4:192.0.2.1/032");
    assert_invalid("v=spf1 ip4:192.0.2.1/33");
    assert_invalid("v=spf1 ip4:192.0.2");
    assert_invalid("v=spf1 ip6:2001:db8::/129");
    assert_invalid("v=spf1 ip6:192.0.2.1");
    assert_invalid("v=spf1 a/33");
    assert_invalid("v=spf1 a//129");
    assert_invalid("v=spf1 exists:foo%.example.com"); /* bad macro */
    assert_invalid("v=spf1 exists:%{x}.example.com");
    assert_invalid("v=spf1 exists:%{d0}.example.com"); /* 1..128 parts */
    assert_invalid("v=spf1 exists:%{d129}.example.com");
    assert_invalid("v=spf1 exists:%{d");
    assert_invalid("v=spf1 exp=%{r}.example.com"); /* r: exp text only */
    assert_invalid("v=spf1 exp=");
    assert_invalid("v=spf1 exp=-all");
    assert_invalid("v=spf1 exp=a.example.com exp=b.example.com");
    assert_invalid("v=spf1 redirect=a.example.com redirect=b.example.com");
    assert_invalid("v=spf1 -all foo=%abc");   /* unknown modifier, bad macro */
    assert_invalid("v=spf1 =foo");
}

static void test_rewrites(void **state)
{
    /* unknown modifiers go; exp and redirect move to the end */
    assert_valid("v=spf1 moo.cow-far_out=man:dog/cat ip4:192.0.2.1 -all",
                 "v=spf1 ip4:192.0.2.1 -all");
    assert_valid("v=spf1 redirect=r.example.com exp=e.example.com a",
                 "v=spf1 a exp=e.example.com redirect=r.example.com");
    /* with "all", redirect never applies */
    assert_valid("v=spf1 redirect=r.example.com ~all", "v=spf1 ~all");
    /* /0 */
    assert_valid("v=spf1 -ip4:192.0.2.1/0",
                 "v=spf1 -ip4:0.0.0.0/1 -ip4:128.0.0.0/1");
    assert_valid("v=spf1 ip6:2001:db8::/0", "v=spf1 ip6:::/1 ip6:8000::/1");
    assert_valid("v=spf1 ?a/0 -all", "v=spf1 ?exists:%{d} -all");
    assert_valid("v=spf1 a:example.com/0//64",
                 "v=spf1 exists:example.com");
    assert_valid("v=spf1 mx/24//0", "v=spf1 mx/24");
}

static void test_ipv6_client(void **state)
{
    char out[256];

    assert_string_equal(check("v=spf1 a/0//64", AF_INET6, out, sizeof(out)),
                        "v=spf1 a//64");
    /* a//0 for IPv6 has no equivalent: left for libspf2 to refuse */
    assert_string_equal(check("v=spf1 a//0", AF_INET6, out, sizeof(out)),
                        "v=spf1 a//0");
}

static void test_output_bound(void **state)
{
    char rec[600], out[SPF_SYNTAX_OUT(600)], small[16];
    size_t o = 0;
    const char *why;

    o += (size_t)snprintf(rec, sizeof(rec), "v=spf1");
    while (o + 10 < sizeof(rec))
        o += (size_t)snprintf(rec + o, sizeof(rec) - o, " ip6:::/0");
    assert_non_null(check(rec, AF_INET, out, sizeof(out)));
    assert_int_equal(spf_record_check(rec, AF_INET, small, sizeof(small),
                                      &why),
                     -1);
    assert_string_equal(why, "SPF record too long");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_records),
        cmocka_unit_test(test_invalid_records),
        cmocka_unit_test(test_rewrites),
        cmocka_unit_test(test_ipv6_client),
        cmocka_unit_test(test_output_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
