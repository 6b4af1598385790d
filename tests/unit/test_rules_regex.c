/*
 * Unit tests for rules_regex: Perl literals (delimiters, modifiers),
 * the Perl/PCRE2 differences handled, counting matches, and bounded
 * matching (catastrophic backtracking gives up quickly) on any thread.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "rules_regex.h"

static struct rx *compile(const char *lit)
{
    char err[256];
    struct rx *rx = rx_compile(lit, err, sizeof(err));

    if (!rx)
        fail_msg("%s: %s", lit, err);
    return rx;
}

static int count(const char *lit, const char *s, unsigned max)
{
    struct rx *rx = compile(lit);
    int n = rx_count(rx, s, strlen(s), max);

    rx_free(rx);
    return n;
}

static void test_delimiters(void **state)
{
    assert_int_equal(count("/abc/", "xabcx", 1), 1);
    assert_int_equal(count("m{a/b}", "a/b", 1), 1);
    assert_int_equal(count("m{a{2}}", "aa", 1), 1); /* nested braces */
    assert_int_equal(count("m!http://!i", "HTTP://x", 1), 1);
    assert_int_equal(count("m#a\\#b#", "a#b", 1), 1);
    assert_int_equal(count("m(a)", "a", 1), 1);
    assert_int_equal(count("m<a>", "a", 1), 1);
    assert_int_equal(count("m[a]", "a", 1), 1);
    /* an unescaped delimiter inside: the last one with modifiers ends it */
    assert_int_equal(count("/a/b/i", "A/B", 1), 1);
    assert_int_equal(count("/a\\/b/", "a/b", 1), 1);
}

static void test_modifiers(void **state)
{
    struct rx *rx;

    assert_int_equal(count("/abc/i", "ABC", 1), 1);
    assert_int_equal(count("/abc/", "ABC", 1), 0);
    assert_int_equal(count("/^b/m", "a\nb", 1), 1);
    assert_int_equal(count("/^b/", "a\nb", 1), 0);
    assert_int_equal(count("/a.b/s", "a\nb", 1), 1);
    assert_int_equal(count("/a.b/", "a\nb", 1), 0);
    assert_int_equal(count("/a b c/x", "abc", 1), 1);
    /* modifiers with no meaning for a test are accepted and ignored */
    assert_int_equal(count("/abc/gosmi", "ABC", 1), 1);
    rx = compile("/x/imsx");
    assert_true(rx_options(rx) & PCRE2_CASELESS);
    assert_true(rx_options(rx) & PCRE2_MULTILINE);
    assert_string_equal(rx_pattern(rx), "x");
    rx_free(rx);
}

static void test_perl_compat(void **state)
{
    /* Perl reads an unknown escape as the letter; PCRE2 would refuse */
    assert_int_equal(count("/\\i\\y/", "iy", 1), 1);
    assert_int_equal(count("/\\<b\\>/", "<b>", 1), 1);
    assert_int_equal(count("/\\@/", "a@b", 1), 1);
    /* $ matches before a final newline, as in Perl */
    assert_int_equal(count("/foo$/", "foo\n", 1), 1);
    /* code points above 255 switch to UTF-8 matching */
    assert_int_equal(count("/\\x{263a}/", "smile \xe2\x98\xba", 1), 1);
    /* bytes otherwise */
    assert_int_equal(count("/caf\\xc3\\xa9/", "caf\xc3\xa9", 1), 1);
    assert_int_equal(count("/(?i)SALE/", "sale", 1), 1);
    assert_int_equal(count("/\\bfree\\b/", "for free!", 1), 1);
}

static void test_counting(void **state)
{
    assert_int_equal(count("/a/", "banana", 10), 3);
    assert_int_equal(count("/a/", "banana", 2), 2);
    assert_int_equal(count("/a/", "banana", 1), 1);
    assert_int_equal(count("/x*/", "abc", 10), 4); /* empty matches advance */
    assert_int_equal(count("/z/", "banana", 10), 0);
    assert_int_equal(count("/^/m", "a\nb\nc", 10), 3);
}

static void test_bad_literals(void **state)
{
    static const char *const bad[] = {
        "abc",    "/abc",  "m",        "/a(b/",   "/a/q",
        "m abc ", "/[a-/", "/a{2,1}/", "\\abc\\", "/(?{ system('x') })/",
    };
    char err[256];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct rx *rx = rx_compile(bad[i], err, sizeof(err));
        if (rx)
            fail_msg("\"%s\" compiled", bad[i]);
        assert_true(err[0] != '\0');
    }
    assert_null(rx_compile("/a(b/", err, sizeof(err)));
    assert_non_null(strstr(err, "bad regex at offset"));
}

/* (a+)+$ on "aaaa...!": exponential backtracking, stopped by the limits. */
static void test_catastrophic_backtracking(void **state)
{
    struct rx *rx = compile("/^(a+)+$/");
    char s[64];
    struct timespec a, b;

    memset(s, 'a', sizeof(s) - 2);
    s[sizeof(s) - 2] = '!';
    s[sizeof(s) - 1] = '\0';
    clock_gettime(CLOCK_MONOTONIC, &a);
    assert_int_equal(rx_count(rx, s, strlen(s), 1), -1);
    clock_gettime(CLOCK_MONOTONIC, &b);
    assert_true((b.tv_sec - a.tv_sec) * 1000 +
                    (b.tv_nsec - a.tv_nsec) / 1000000 <
                1000);
    rx_free(rx);
}

static void *match_thread(void *arg)
{
    struct rx *rx = arg;
    long ok = 1;

    for (int i = 0; i < 2000; i++)
        ok &= rx_count(rx, "xx free yy", 10, 1) == 1;
    return (void *)ok;
}

/* One compiled pattern, matched from several threads at once. */
static void test_threads(void **state)
{
    struct rx *rx = compile("/free/i");
    pthread_t t[4];

    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, match_thread, rx), 0);
    for (int i = 0; i < 4; i++) {
        void *ok;
        pthread_join(t[i], &ok);
        assert_true(ok == (void *)1);
    }
    rx_free(rx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_delimiters),
        cmocka_unit_test(test_modifiers),
        cmocka_unit_test(test_perl_compat),
        cmocka_unit_test(test_counting),
        cmocka_unit_test(test_bad_literals),
        cmocka_unit_test(test_catastrophic_backtracking),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
