/*
 * Unit tests for the command parser: framing, verbs, MAIL/RCPT paths.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "smtp_cmd.h"

#define S(x) x, sizeof(x) - 1

static void test_line_check(void **state)
{
    assert_int_equal(smtp_line_check(S("MAIL FROM:<a@b>\r\n")), LINE_OK);
    assert_int_equal(smtp_line_check(S("MAIL FROM:<a@b>\n")), LINE_BARE_LF);
    assert_int_equal(smtp_line_check(S("\n")), LINE_BARE_LF);
    assert_int_equal(smtp_line_check(S("MAIL\rFROM\r\n")), LINE_BARE_CR);
    assert_int_equal(smtp_line_check(S("NO\0OP\r\n")), LINE_NUL);
    assert_int_equal(smtp_line_check(S("\r\n")), LINE_OK);
}

static void test_verbs(void **state)
{
    struct smtp_cmd c;

    smtp_cmd_parse(S("ehlo client.example"), &c);
    assert_int_equal(c.verb, VERB_EHLO);
    assert_int_equal(c.args_len, strlen("client.example"));
    assert_memory_equal(c.args, "client.example", c.args_len);
    smtp_cmd_parse(S("QUIT"), &c);
    assert_int_equal(c.verb, VERB_QUIT);
    assert_int_equal(c.args_len, 0);
    smtp_cmd_parse(S("StartTLS"), &c);
    assert_int_equal(c.verb, VERB_STARTTLS);
    smtp_cmd_parse(S("MAILX FROM:<a>"), &c);
    assert_int_equal(c.verb, VERB_UNKNOWN);
    smtp_cmd_parse(S("XCLIENT ADDR=1.2.3.4"), &c);
    assert_int_equal(c.verb, VERB_XCLIENT);
    smtp_cmd_parse(S(""), &c);
    assert_int_equal(c.verb, VERB_UNKNOWN);
    assert_string_equal(smtp_verb_name(VERB_RCPT), "RCPT");
}

static enum smtp_path_status path(const char *args, const char *kw,
                                  struct smtp_path *p)
{
    return smtp_path_parse(args, strlen(args), kw, p);
}

static void test_mail_paths(void **state)
{
    struct smtp_path p;

    assert_int_equal(path("FROM:<user@example.com>", "FROM:", &p), PATH_OK);
    assert_string_equal(p.addr, "user@example.com");
    assert_false(p.has_size);
    assert_int_equal(path("from:<>", "FROM:", &p), PATH_OK);
    assert_string_equal(p.addr, "");
    /* Postfix accepts a space after the colon and missing brackets. */
    assert_int_equal(path("FROM: <a@b>", "FROM:", &p), PATH_OK);
    assert_string_equal(p.addr, "a@b");
    assert_int_equal(path("FROM:a@b SIZE=10", "FROM:", &p), PATH_OK);
    assert_string_equal(p.addr, "a@b");
    assert_true(p.has_size);
    assert_int_equal(p.size, 10);
    assert_int_equal(path("FROM:<a@b> SIZE=1000 BODY=8BITMIME SMTPUTF8",
                          "FROM:", &p),
                     PATH_OK);
    assert_int_equal(p.size, 1000);
    assert_int_equal(path("FROM:<@relay.example:a@b>", "FROM:", &p), PATH_OK);
    assert_string_equal(p.addr, "a@b");
    assert_int_equal(path("FROM:<\"john doe\"@b>", "FROM:", &p), PATH_OK);
    assert_string_equal(p.addr, "\"john doe\"@b");
    /* quoted-pairs: an escaped quote stays inside, an escaped backslash
     * lets the next quote close the string */
    assert_int_equal(path("FROM:<\"a\\\"b\"@c>", "FROM:", &p), PATH_OK);
    assert_string_equal(p.addr, "\"a\\\"b\"@c");
    assert_int_equal(path("FROM:<\"a\\\\\"@b>", "FROM:", &p), PATH_OK);
    assert_string_equal(p.addr, "\"a\\\\\"@b");
}

static void test_bad_paths(void **state)
{
    struct smtp_path p;

    assert_int_equal(path("FROM <a@b>", "FROM:", &p), PATH_SYNTAX);
    assert_int_equal(path("TO:<a@b>", "FROM:", &p), PATH_SYNTAX);
    assert_int_equal(path("FROM:", "FROM:", &p), PATH_SYNTAX);
    assert_int_equal(path("FROM:<a@b", "FROM:", &p), PATH_BAD_ADDR);
    assert_int_equal(path("FROM:<a b@c>", "FROM:", &p), PATH_BAD_ADDR);
    assert_int_equal(path("FROM:<a@b>x", "FROM:", &p), PATH_BAD_ADDR);
    assert_int_equal(path("FROM:<<a@b>>", "FROM:", &p), PATH_BAD_ADDR);
    assert_int_equal(path("FROM:<\"open@b>", "FROM:", &p), PATH_BAD_ADDR);
    /* the last quote is escaped: the string never closes */
    assert_int_equal(path("FROM:<\"a\\\"@b>", "FROM:", &p), PATH_BAD_ADDR);
    /* a control inside quotes, escaped or not */
    assert_int_equal(path("FROM:<\"a\tb\"@c>", "FROM:", &p), PATH_BAD_ADDR);
    assert_int_equal(path("FROM:<\"a\\\tb\"@c>", "FROM:", &p),
                     PATH_BAD_ADDR);
    assert_int_equal(path("FROM:<a@b> SIZE=abc", "FROM:", &p), PATH_BAD_PARAM);
    assert_int_equal(path("FROM:<a@b> SIZE=", "FROM:", &p), PATH_BAD_PARAM);
    assert_int_equal(path("FROM:<a@b> SIZE=99999999999999999999999", "FROM:",
                          &p),
                     PATH_BAD_PARAM);
    assert_int_equal(path("FROM:<a@b> =x", "FROM:", &p), PATH_BAD_PARAM);
    char longaddr[700];
    memset(longaddr, 'a', sizeof(longaddr));
    memcpy(longaddr, "FROM:<", 6);
    longaddr[sizeof(longaddr) - 2] = '>';
    longaddr[sizeof(longaddr) - 1] = '\0';
    assert_int_equal(path(longaddr, "FROM:", &p), PATH_BAD_ADDR);
}

static void test_rcpt_paths(void **state)
{
    struct smtp_path p;

    assert_int_equal(path("TO:<Postmaster>", "TO:", &p), PATH_OK);
    assert_string_equal(p.addr, "Postmaster");
    assert_int_equal(path("To:<x@example.org> NOTIFY=SUCCESS,FAILURE", "TO:",
                          &p),
                     PATH_OK);
    assert_string_equal(p.addr, "x@example.org");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_line_check),
        cmocka_unit_test(test_verbs),
        cmocka_unit_test(test_mail_paths),
        cmocka_unit_test(test_bad_paths),
        cmocka_unit_test(test_rcpt_paths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
