/*
 * Unit tests for fromaddr: the one author domain of a From: field, and
 * every way a field fails to have exactly one (none, several fields,
 * several mailboxes, groups, literals, broken syntax).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "fromaddr.h"

static enum fromaddr_status parse(const char *value, char *domain)
{
    return fromaddr_parse(value, strlen(value), domain, FROMADDR_DOMAIN_MAX);
}

static void expect_domain(const char *value, const char *want)
{
    char d[FROMADDR_DOMAIN_MAX];

    if (parse(value, d) != FROMADDR_OK)
        fail_msg("\"%s\": not parsed", value);
    assert_string_equal(d, want);
}

static void expect_status(const char *value, enum fromaddr_status want)
{
    char d[FROMADDR_DOMAIN_MAX];
    enum fromaddr_status st = parse(value, d);

    if (st != want)
        fail_msg("\"%s\": status %d, want %d (%s)", value, st, want, d);
}

static void test_forms(void **state)
{
    expect_domain(" alice@example.com", "example.com");
    expect_domain(" Alice <alice@Example.COM>", "example.com");
    expect_domain(" \"Doe, John\" <john@example.org>", "example.org");
    expect_domain(" \"a@evil.example\" <b@good.example>", "good.example");
    expect_domain(" \"a@evil.example\"@good.example", "good.example");
    expect_domain(" (comment, with @evil.example) x@ex.example (more)",
                  "ex.example");
    expect_domain(" =?utf-8?q?J=C3=B6rg?= <j@example.de>", "example.de");
    expect_domain(" x@example.com.", "example.com");
    expect_domain("\r\n\t<folded@example.net>\r\n", "example.net");
    expect_domain(" <@route.example:user@final.example>", "final.example");
    expect_domain(" a@example.com,", "example.com"); /* obs: empty item */
    expect_domain(" (nested (comment)) a@sub.example.com",
                  "sub.example.com");
    /* brackets in an (unquoted) display name are no address literal */
    expect_domain(" [EXT] Bob <bob@example.com>", "example.com");
}

static void test_long_display_name(void **state)
{
    char v[3000], d[FROMADDR_DOMAIN_MAX];

    memset(v, 'n', sizeof(v));
    snprintf(v + 2000, sizeof(v) - 2000, " <a@example.com>");
    assert_int_equal(parse(v, d), FROMADDR_OK);
    assert_string_equal(d, "example.com");
    /* but an address that long, without <>, is not taken */
    snprintf(v + 2000, sizeof(v) - 2000, "@example.com");
    assert_int_equal(parse(v, d), FROMADDR_BAD);
}

static void test_failures(void **state)
{
    expect_status("", FROMADDR_NONE);
    expect_status(" (only a comment)", FROMADDR_NONE);
    expect_status(" <>", FROMADDR_NONE);
    expect_status(" a@example.com, b@example.com", FROMADDR_MANY);
    expect_status(" A <a@x.example>, B <b@y.example>", FROMADDR_MANY);
    expect_status(" undisclosed-recipients:;", FROMADDR_BAD);
    expect_status(" group: a@example.com;", FROMADDR_BAD);
    expect_status(" a@[192.0.2.1]", FROMADDR_BAD);
    expect_status(" no at sign", FROMADDR_BAD);
    expect_status(" <a@example.com", FROMADDR_BAD);
    expect_status(" a@example.com>", FROMADDR_BAD);
    expect_status(" \"unterminated <a@example.com>", FROMADDR_BAD);
    expect_status(" (unterminated a@example.com", FROMADDR_BAD);
    expect_status(" a@exa mple.com", FROMADDR_OK); /* FWS: "example.com" */
    expect_status(" a@ex..ample.com", FROMADDR_BAD);
    expect_status(" a@ex!ample.com", FROMADDR_BAD);
    expect_status(" @example.com", FROMADDR_BAD);
    expect_status(" <a@b.example><c@d.example>", FROMADDR_BAD);
}

static void test_label_limits(void **state)
{
    char v[400], d[FROMADDR_DOMAIN_MAX];

    /* a 64-octet label is not a DNS label */
    snprintf(v, sizeof(v), " a@%s.example", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                                             "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    assert_int_equal(parse(v, d), FROMADDR_BAD);
    /* a name that does not fit the output */
    memset(v, 'a', sizeof(v) - 1);
    v[sizeof(v) - 1] = '\0';
    v[10] = '@';
    for (size_t i = 20; i < sizeof(v) - 1; i += 20)
        v[i] = '.';
    assert_int_equal(parse(v, d), FROMADDR_BAD);
}

static void test_message(void **state)
{
    char d[FROMADDR_DOMAIN_MAX];
    const char one[] = "Subject: x\r\nFROM: A <a@example.com>\r\n"
                       "To: b@example.net\r\n\r\nFrom: body@not.example\r\n";
    const char two[] = "From: a@example.com\r\nFrom: b@example.com\r\n\r\n";
    const char none[] = "Subject: x\r\n\r\nFrom: a@example.com\r\n";
    const char stuffed[] = "To: x@y.example\r\nFrom: Alice\r\n"
                           " <a@example.org>\r\n\r\n";

    assert_int_equal(fromaddr_of_message(one, strlen(one), false, d,
                                         sizeof(d)),
                     FROMADDR_OK);
    assert_string_equal(d, "example.com");
    assert_int_equal(fromaddr_of_message(two, strlen(two), false, d,
                                         sizeof(d)),
                     FROMADDR_MULTI);
    assert_int_equal(fromaddr_of_message(none, strlen(none), false, d,
                                         sizeof(d)),
                     FROMADDR_NONE);
    /* a folded field */
    assert_int_equal(fromaddr_of_message(stuffed, strlen(stuffed), true, d,
                                         sizeof(d)),
                     FROMADDR_OK);
    assert_string_equal(d, "example.org");
    assert_string_equal(fromaddr_status_text(FROMADDR_MULTI),
                        "several From: fields");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forms),
        cmocka_unit_test(test_failures),
        cmocka_unit_test(test_label_limits),
        cmocka_unit_test(test_long_display_name),
        cmocka_unit_test(test_message),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
