/*
 * Unit tests for uris: URIs found in plain text (schemes, www./ftp.
 * hosts, e-mail addresses, trailing punctuation, word boundaries), the
 * forms added for each (scheme assumed, %-escapes decoded), duplicates,
 * and the per-message cap.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "strv.h"
#include "uris.h"

static bool has(const struct strv *sv, const char *s)
{
    for (size_t i = 0; i < sv->n; i++)
        if (strcmp(sv->v[i], s) == 0)
            return true;
    return false;
}

static void find(const char *text, struct strv *out)
{
    assert_int_equal(uris_from_text(text, strlen(text), out), 0);
}

static void test_schemes(void **state)
{
    struct strv sv = {0};

    find("go to http://a.example/x. Or (https://b.example/y), "
         "ftp://c.example/z; mailto:me@d.example!",
         &sv);
    assert_true(has(&sv, "http://a.example/x"));
    assert_true(has(&sv, "https://b.example/y"));
    assert_true(has(&sv, "ftp://c.example/z"));
    assert_true(has(&sv, "mailto:me@d.example"));
    strv_free(&sv);

    /* a scheme inside a word is not a URI start */
    find("xhttp://no.example nohttp", &sv);
    assert_false(has(&sv, "http://no.example"));
    strv_free(&sv);
}

static void test_schemeless(void **state)
{
    struct strv sv = {0};

    find("visit www.shop.example/deal or ftp.files.example today", &sv);
    assert_true(has(&sv, "www.shop.example/deal"));
    assert_true(has(&sv, "http://www.shop.example/deal"));
    assert_true(has(&sv, "ftp://ftp.files.example"));
    strv_free(&sv);

    find("write to Sales.Team+x@spam.example.com.", &sv);
    assert_true(has(&sv, "Sales.Team+x@spam.example.com"));
    assert_true(has(&sv, "mailto:Sales.Team+x@spam.example.com"));
    strv_free(&sv);

    /* not addresses: no dot in the domain, nothing before the @ */
    find("user@localhost and @handle and a@b.c1", &sv);
    assert_int_equal(sv.n, 0);
    strv_free(&sv);
}

static void test_escapes_and_duplicates(void **state)
{
    struct strv sv = {0};

    find("http://%77%77%77.evil.example/ and http://%77%77%77.evil.example/",
         &sv);
    assert_int_equal(sv.n, 2);
    assert_true(has(&sv, "http://www.evil.example/"));
    strv_free(&sv);

    /* %00 and controls stay escaped */
    assert_int_equal(uris_add(&sv, "http://x.example/%00%0a", 23), 0);
    assert_int_equal(sv.n, 1);
    strv_free(&sv);
}

static void test_cap(void **state)
{
    struct strv sv = {0};
    char u[64];

    for (int i = 0; i < URIS_MAX + 100; i++) {
        int n = snprintf(u, sizeof(u), "http://h%d.example/", i);
        uris_add(&sv, u, (size_t)n);
    }
    assert_true(sv.n <= URIS_MAX + 2);
    strv_free(&sv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schemes),
        cmocka_unit_test(test_schemeless),
        cmocka_unit_test(test_escapes_and_duplicates),
        cmocka_unit_test(test_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
