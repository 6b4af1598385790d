/*
 * Unit tests for header field scanning and the ranges of fields to remove.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine.h"
#include "msghdr.h"

struct seen {
    char names[16][64];
    char values[16][256];
    size_t n;
};

static int record(void *arg, const struct msghdr_field *f)
{
    struct seen *s = arg;

    snprintf(s->names[s->n], sizeof(s->names[0]), "%.*s", (int)f->name_len,
             f->name);
    snprintf(s->values[s->n], sizeof(s->values[0]), "%.*s",
             (int)f->value_len, f->value);
    s->n++;
    return 0;
}

static size_t scan(const char *msg, bool stuffed, struct seen *s)
{
    memset(s, 0, sizeof(*s));
    return msghdr_scan(msg, strlen(msg), stuffed, record, s);
}

static void test_fields_and_folding(void **state)
{
    struct seen s;
    const char *msg = "From: a@example.org\r\n"
                      "Subject: one\r\n two\r\n\tthree\r\n"
                      "X-Empty:\r\n"
                      "\r\n"
                      "Body: not a header\r\n";

    assert_int_equal(scan(msg, false, &s), 3);
    assert_string_equal(s.names[0], "From");
    assert_string_equal(s.values[0], " a@example.org");
    assert_string_equal(s.names[1], "Subject");
    assert_string_equal(s.values[1], " one\r\n two\r\n\tthree");
    assert_string_equal(s.names[2], "X-Empty");
    assert_string_equal(s.values[2], "");
}

static void test_ends_and_cuts(void **state)
{
    struct seen s;

    /* a line without a colon ends the header */
    assert_int_equal(scan("A: 1\r\nnot a field\r\nB: 2\r\n\r\n", false, &s),
                     1);
    /* a blank in the name is not a field */
    assert_int_equal(scan("A B: 1\r\n\r\n", false, &s), 0);
    /* a field cut by the end of the buffer is not reported, folded or not */
    assert_int_equal(scan("A: 1\r\nB: 2", false, &s), 1);
    assert_int_equal(scan("A: 1\r\nB: 2\r\n more", false, &s), 1);
    /* ... but one whose folding is complete is */
    assert_int_equal(scan("A: 1\r\n more\r\n", false, &s), 1);
    assert_string_equal(s.values[0], " 1\r\n more");
    /* a body with no header at all */
    assert_int_equal(scan("\r\nhello\r\n", false, &s), 0);
}

static void test_dot_stuffed(void **state)
{
    struct seen s;

    assert_int_equal(scan("..X: dot\r\nA: 1\r\n\r\n", true, &s), 2);
    assert_string_equal(s.names[0], ".X");
    assert_int_equal(scan(".X: raw\r\n\r\n", false, &s), 1);
    assert_string_equal(s.names[0], ".X");
}

static void test_ranges(void **state)
{
    const char *msg = "Received: x\r\n"
                      "Authentication-Results: warden.test; spf=pass\r\n"
                      "Subject: s\r\n"
                      "authentication-results: other.example; dkim=fail\r\n"
                      "Authentication-Results: warden.test;\r\n spf=fail\r\n"
                      "\r\n"
                      "Authentication-Results: in the body\r\n";
    struct header_removals rm = {0};
    struct msghdr_range r[4];
    size_t n;

    assert_int_equal(header_removals_add(&rm, "Authentication-Results", 3), 0);
    assert_int_equal(header_removals_add(&rm, "AUTHENTICATION-RESULTS", 1), 0);
    /* asked twice: one entry */
    assert_int_equal(header_removals_add(&rm, "Authentication-Results", 1), 0);
    assert_int_equal(rm.n, 2);
    assert_int_equal(header_removals_add(&rm, "X", 0), -1);

    n = msghdr_ranges(msg, strlen(msg), false, &rm, r, 4);
    assert_int_equal(n, 2);
    /* in order of offset, whole fields with their folding and CRLF */
    assert_int_equal(r[0].off, strlen("Received: x\r\n"));
    assert_memory_equal(msg + r[0].off,
                        "Authentication-Results: warden.test; spf=pass\r\n",
                        r[0].len);
    assert_memory_equal(msg + r[1].off,
                        "Authentication-Results: warden.test;\r\n spf=fail\r\n",
                        r[1].len);

    /* a fourth does not exist (the body's line is not a field) */
    header_removals_free(&rm);
    header_removals_add(&rm, "Authentication-Results", 4);
    assert_int_equal(msghdr_ranges(msg, strlen(msg), false, &rm, r, 4), 0);
    /* and max bounds the output */
    header_removals_free(&rm);
    header_removals_add(&rm, "Authentication-Results", 1);
    header_removals_add(&rm, "Subject", 1);
    assert_int_equal(msghdr_ranges(msg, strlen(msg), false, &rm, r, 1), 1);
    header_removals_free(&rm);
}

/* Removals fold across checks like added headers: a refusal keeps none,
 * but the lists survive for the accept. */
static void test_verdict_lists(void **state)
{
    struct verdict v;

    verdict_init(&v);
    assert_int_equal(header_removals_add(&v.remove, "A", 1), 0);
    assert_int_equal(header_list_add(&v.headers, "X-A: 1"), 0);
    verdict_clear(&v);
    assert_int_equal(v.remove.n, 0);
    assert_null(v.remove.v);
    assert_int_equal(v.headers.n, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fields_and_folding),
        cmocka_unit_test(test_ends_and_cuts),
        cmocka_unit_test(test_dot_stuffed),
        cmocka_unit_test(test_ranges),
        cmocka_unit_test(test_verdict_lists),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
