/*
 * Unit tests for orgdomain: the public suffix list algorithm (normal,
 * wildcard and exception rules, the implicit "*"), on a small list and on
 * Debian's real one, and DMARC's organizational domain on top of it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "orgdomain.h"

static const char small_list[] =
    "// comment\n"
    "com\n"
    "uk\n"
    "co.uk\n"
    "*.ck\n"
    "!www.ck\n"
    "jp\n"
    "*.kawasaki.jp\n"
    "!city.kawasaki.jp\n"
    "\n"
    "blogspot.com  trailing text is ignored\n";

static void expect_org(const struct orgdomain *od, const char *name,
                       const char *want)
{
    char out[256];

    assert_int_equal(orgdomain_get(od, name, out, sizeof(out)), 0);
    if (strcmp(out, want) != 0)
        fail_msg("%s: got %s, want %s", name, out, want);
}

static void test_small_list(void **state)
{
    struct orgdomain *od = orgdomain_parse(small_list, strlen(small_list));

    assert_non_null(od);
    assert_int_equal(orgdomain_rules(od), 9);
    expect_org(od, "example.com", "example.com");
    expect_org(od, "a.b.example.com", "example.com");
    expect_org(od, "com", "com");                 /* a suffix itself */
    expect_org(od, "mail.example.co.uk", "example.co.uk");
    expect_org(od, "co.uk", "co.uk");
    expect_org(od, "a.b.c.ck", "b.c.ck");         /* *.ck */
    expect_org(od, "a.www.ck", "www.ck");         /* !www.ck */
    expect_org(od, "x.y.kawasaki.jp", "x.y.kawasaki.jp");
    expect_org(od, "w.x.y.kawasaki.jp", "x.y.kawasaki.jp");
    expect_org(od, "a.city.kawasaki.jp", "city.kawasaki.jp");
    expect_org(od, "me.blogspot.com", "me.blogspot.com");
    expect_org(od, "sub.unlisted", "sub.unlisted"); /* implicit "*" */
    expect_org(od, "a.b.unlisted", "b.unlisted");
    expect_org(od, "MiXeD.Example.COM", "example.com");
    orgdomain_free(od);
}

static void test_small_output(void **state)
{
    struct orgdomain *od = orgdomain_parse(small_list, strlen(small_list));
    char out[8];

    assert_int_equal(orgdomain_get(od, "a.example.com", out, sizeof(out)),
                     -1);
    orgdomain_free(od);
}

static void test_debian_list(void **state)
{
    char err[256];
    struct orgdomain *od;

    if (access(ORGDOMAIN_DEFAULT_LIST, R_OK) != 0)
        skip();
    od = orgdomain_load(ORGDOMAIN_DEFAULT_LIST, err, sizeof(err));
    assert_non_null(od);
    assert_true(orgdomain_rules(od) > 5000);
    expect_org(od, "mail.example.co.uk", "example.co.uk");
    expect_org(od, "www.example.com", "example.com");
    expect_org(od, "a.b.example.com.au", "example.com.au");
    expect_org(od, "foo.github.io", "foo.github.io"); /* private section */
    orgdomain_free(od);
}

static void test_load_errors(void **state)
{
    char err[256];

    assert_null(orgdomain_load("/nonexistent/list.dat", err, sizeof(err)));
    assert_non_null(strstr(err, "cannot open /nonexistent/list.dat"));
    assert_null(orgdomain_load("/dev/null", err, sizeof(err)));
    assert_non_null(strstr(err, "not a public suffix list file"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_list),
        cmocka_unit_test(test_small_output),
        cmocka_unit_test(test_debian_list),
        cmocka_unit_test(test_load_errors),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
