/*
 * Unit tests for authres: the Authentication-Results field, with values
 * written bare only when RFC 8601 allows it and quoted otherwise, so no
 * client-supplied text breaks the field.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "authres.h"

static const char *spf_field(const char *prop, const char *value)
{
    static struct authres a;

    authres_init(&a, "mx.example.com");
    authres_method(&a, "spf", "pass");
    authres_prop(&a, prop, value);
    return authres_field(&a);
}

static void test_plain(void **state)
{
    assert_string_equal(spf_field("smtp.mailfrom", "alice@example.org"),
                        "Authentication-Results: mx.example.com; spf=pass "
                        "smtp.mailfrom=alice@example.org");
    assert_string_equal(spf_field("smtp.helo", "mail.example.org"),
                        "Authentication-Results: mx.example.com; spf=pass "
                        "smtp.helo=mail.example.org");
    assert_string_equal(spf_field("smtp.mailfrom", "a.b+tag@example.org"),
                        "Authentication-Results: mx.example.com; spf=pass "
                        "smtp.mailfrom=a.b+tag@example.org");
}

static void test_quoted(void **state)
{
    /* not a dot-atom local part: a quoted-string, escapes included */
    assert_string_equal(spf_field("smtp.mailfrom", "a;b\"c\\d@example.org"),
                        "Authentication-Results: mx.example.com; spf=pass "
                        "smtp.mailfrom=\"a;b\\\"c\\\\d@example.org\"");
    /* CR, LF and other controls never reach the header */
    assert_string_equal(spf_field("smtp.mailfrom", "x\r\nBcc: y@example.org"),
                        "Authentication-Results: mx.example.com; spf=pass "
                        "smtp.mailfrom=\"xBcc: y@example.org\"");
    assert_string_equal(spf_field("smtp.mailfrom", "a..b@example.org"),
                        "Authentication-Results: mx.example.com; spf=pass "
                        "smtp.mailfrom=\"a..b@example.org\"");
}

static void test_comment_and_none(void **state)
{
    struct authres a;

    authres_init(&a, "mx.example.com");
    assert_string_equal(authres_field(&a),
                        "Authentication-Results: mx.example.com; none");
    authres_init(&a, "mx.example.com");
    authres_method(&a, "spf", "temperror");
    authres_comment(&a, "DNS (timeout)\\");
    authres_prop(&a, "smtp.mailfrom", "a@example.org");
    assert_string_equal(authres_field(&a),
                        "Authentication-Results: mx.example.com; "
                        "spf=temperror (DNS timeout) "
                        "smtp.mailfrom=a@example.org");
}

/* A value too long to fit is left out whole, never cut. */
static void test_bounded(void **state)
{
    char big[2000];
    struct authres a;

    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    authres_init(&a, "mx.example.com");
    authres_method(&a, "spf", "pass");
    authres_prop(&a, "smtp.mailfrom", big);
    assert_string_equal(authres_field(&a),
                        "Authentication-Results: mx.example.com; spf=pass");
    assert_true(strlen(authres_field(&a)) < 998);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain),
        cmocka_unit_test(test_quoted),
        cmocka_unit_test(test_comment_and_none),
        cmocka_unit_test(test_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
