/*
 * Unit tests for backend reply parsing and the EHLO capability filter.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/buffer.h>

#include "ehlo.h"
#include "smtp_reply.h"
#include "xclient.h"

static enum reply_status feed(struct smtp_reply *r, const char *line)
{
    return smtp_reply_feed(r, line, strlen(line));
}

static void test_single_and_multi(void **state)
{
    struct smtp_reply r = {0};
    char buf[64];

    assert_int_equal(feed(&r, "250 2.0.0 Ok"), REPLY_DONE);
    assert_int_equal(r.code, 250);
    assert_string_equal(r.raw, "250 2.0.0 Ok\r\n");
    assert_string_equal(smtp_reply_last(&r, buf, sizeof(buf)), "250 2.0.0 Ok");
    smtp_reply_reset(&r);
    assert_int_equal(feed(&r, "250-mx.example"), REPLY_MORE);
    assert_int_equal(feed(&r, "250-PIPELINING"), REPLY_MORE);
    assert_int_equal(feed(&r, "250 SIZE 1000"), REPLY_DONE);
    assert_int_equal(r.nlines, 3);
    size_t len;
    const char *l = smtp_reply_line(&r, 1, &len);
    assert_int_equal(len, strlen("PIPELINING"));
    assert_memory_equal(l, "PIPELINING", len);
    assert_string_equal(smtp_reply_last(&r, buf, sizeof(buf)), "250 SIZE 1000");
    smtp_reply_reset(&r);
    assert_int_equal(feed(&r, "354"), REPLY_DONE);
    assert_int_equal(r.code, 354);
    smtp_reply_reset(&r);
}

static void test_bad_replies(void **state)
{
    struct smtp_reply r = {0};

    assert_int_equal(feed(&r, "hello"), REPLY_BAD);
    smtp_reply_reset(&r);
    assert_int_equal(feed(&r, "25"), REPLY_BAD);
    smtp_reply_reset(&r);
    assert_int_equal(feed(&r, "250x"), REPLY_BAD);
    smtp_reply_reset(&r);
    assert_int_equal(feed(&r, "650 nope"), REPLY_BAD);
    smtp_reply_reset(&r);
    assert_int_equal(feed(&r, "250-a"), REPLY_MORE);
    assert_int_equal(feed(&r, "251 b"), REPLY_BAD); /* code changed */
    smtp_reply_reset(&r);
    assert_int_equal(smtp_reply_feed(&r, "250 a\0b", 7), REPLY_BAD);
    smtp_reply_reset(&r);
}

static struct smtp_reply ehlo_reply(const char *const *lines, size_t n)
{
    struct smtp_reply r = {0};
    char buf[256];

    for (size_t i = 0; i < n; i++) {
        snprintf(buf, sizeof(buf), "250%c%s", i + 1 == n ? ' ' : '-',
                 lines[i]);
        feed(&r, buf);
    }
    return r;
}

static char *filter(const struct smtp_reply *r, bool starttls, bool hide_auth,
                    unsigned long long max)
{
    struct evbuffer *out = evbuffer_new();
    struct ehlo_view v = {.offer_starttls = starttls, .hide_auth = hide_auth,
                          .max_size = max};
    ehlo_filter(r, &v, out);
    size_t n = evbuffer_get_length(out);
    char *s = malloc(n + 1);
    evbuffer_remove(out, s, n);
    s[n] = '\0';
    evbuffer_free(out);
    return s;
}

static const char *const postfix_caps[] = {
    "backend.example", "PIPELINING", "SIZE 10240000", "VRFY", "ETRN",
    "STARTTLS", "AUTH PLAIN LOGIN", "AUTH=PLAIN LOGIN", "ENHANCEDSTATUSCODES",
    "8BITMIME", "DSN", "SMTPUTF8", "CHUNKING",
    "XCLIENT NAME ADDR PROTO HELO LOGIN DESTADDR DESTPORT", "XFORWARD NAME",
    "BINARYMIME", "X-PRIVATE-EXT",
};

static void test_caps_parse(void **state)
{
    struct smtp_reply r = ehlo_reply(postfix_caps, 17);
    struct smtp_caps c;

    smtp_caps_parse(&r, &c);
    assert_true(c.pipelining && c.starttls && c.chunking && c.smtputf8);
    assert_true(c.eightbitmime && c.dsn && c.auth);
    assert_true(c.has_size);
    assert_int_equal(c.size, 10240000);
    assert_true(c.xclient_announced);
    assert_int_equal(c.xclient, XCLIENT_NAME | XCLIENT_ADDR | XCLIENT_PROTO |
                                    XCLIENT_HELO | XCLIENT_LOGIN |
                                    XCLIENT_DESTADDR | XCLIENT_DESTPORT);
    assert_int_equal(ehlo_effective_size(&c, 5000000), 5000000);
    assert_int_equal(ehlo_effective_size(&c, 20000000), 10240000);
    smtp_reply_reset(&r);
}

static void test_filter(void **state)
{
    struct smtp_reply r = ehlo_reply(postfix_caps, 17);
    char *s = filter(&r, true, false, 5000000);

    assert_string_equal(s, "250-backend.example\r\n"
                           "250-PIPELINING\r\n"
                           "250-SIZE 5000000\r\n"
                           "250-VRFY\r\n"
                           "250-ETRN\r\n"
                           "250-AUTH PLAIN LOGIN\r\n"
                           "250-AUTH=PLAIN LOGIN\r\n"
                           "250-ENHANCEDSTATUSCODES\r\n"
                           "250-8BITMIME\r\n"
                           "250-DSN\r\n"
                           "250-SMTPUTF8\r\n"
                           "250 STARTTLS\r\n");
    free(s);
    /* no STARTTLS of ours, AUTH hidden; backend limit smaller than ours */
    s = filter(&r, false, true, 50000000);
    assert_null(strstr(s, "STARTTLS"));
    assert_null(strstr(s, "AUTH"));
    assert_non_null(strstr(s, "250-SIZE 10240000\r\n"));
    assert_null(strstr(s, "CHUNKING"));
    assert_null(strstr(s, "XCLIENT"));
    assert_null(strstr(s, "XFORWARD"));
    assert_null(strstr(s, "BINARYMIME"));
    assert_null(strstr(s, "X-PRIVATE"));
    assert_non_null(strstr(s, "250 SMTPUTF8\r\n")); /* last line marker */
    free(s);
    smtp_reply_reset(&r);
}

static void test_filter_chunking_when_relayed(void **state)
{
    struct smtp_reply r = ehlo_reply(postfix_caps, 17);
    struct evbuffer *out = evbuffer_new();
    struct ehlo_view v = {.relay_chunking = true, .max_size = 1000};

    ehlo_filter(&r, &v, out);
    evbuffer_add(out, "", 1);
    const char *s = (const char *)evbuffer_pullup(out, -1);
    assert_non_null(strstr(s, "CHUNKING\r\n"));
    assert_null(strstr(s, "BINARYMIME"));
    evbuffer_free(out);
    smtp_reply_reset(&r);
}

static void test_filter_adds_size(void **state)
{
    static const char *const minimal[] = {"tiny.example"};
    struct smtp_reply r = ehlo_reply(minimal, 1);
    char *s = filter(&r, false, false, 1000);

    assert_string_equal(s, "250-tiny.example\r\n250 SIZE 1000\r\n");
    free(s);
    smtp_reply_reset(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_and_multi),
        cmocka_unit_test(test_bad_replies),
        cmocka_unit_test(test_caps_parse),
        cmocka_unit_test(test_filter),
        cmocka_unit_test(test_filter_adds_size),
        cmocka_unit_test(test_filter_chunking_when_relayed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
