/*
 * Unit tests for rules_meta: parsing meta expressions (precedence, Perl's
 * value-returning && and ||, sums and comparisons), unknown names, syntax
 * errors, and evaluation against rule values.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "rules_meta.h"

/* Rules A..E are indexes 0..4; anything else is unknown. */
static long resolve(void *arg, const char *name, size_t len)
{
    int *unknown = arg;

    if (len == 1 && name[0] >= 'A' && name[0] <= 'E')
        return name[0] - 'A';
    if (len == 3 && memcmp(name, "__F", 3) == 0)
        return 5;
    (*unknown)++;
    return -1;
}

static double eval(const char *expr, const double *values)
{
    char err[128];
    int unknown = 0;
    struct meta_prog *m =
        meta_compile(expr, resolve, &unknown, err, sizeof(err));
    double v;

    if (!m)
        fail_msg("\"%s\": %s", expr, err);
    v = meta_eval(m, values);
    meta_free(m);
    return v;
}

static void test_boolean(void **state)
{
    const double v[6] = {1, 0, 1, 0, 0, 1}; /* A, C, __F hit */

    assert_true(eval("A", v) == 1);
    assert_true(eval("!A", v) == 0);
    assert_true(eval("!B", v) == 1);
    assert_true(eval("A && C", v) == 1);
    assert_true(eval("A && B", v) == 0);
    assert_true(eval("B || C", v) == 1);
    assert_true(eval("B || D", v) == 0);
    assert_true(eval("!(A && B)", v) == 1);
    assert_true(eval("A && !B && __F", v) == 1);
    /* && binds tighter than || */
    assert_true(eval("B && C || A", v) == 1);
    assert_true(eval("B && (C || A)", v) == 0);
    assert_true(eval("  ( ( A ) )  ", v) == 1);
}

static void test_arithmetic(void **state)
{
    const double v[6] = {1, 0, 1, 3, 0, 1}; /* D hit 3 times */

    assert_true(eval("A + B + C", v) == 2);
    assert_true(eval("(A + B + C) >= 2", v) == 1);
    assert_true(eval("(A + B + C) > 2", v) == 0);
    assert_true(eval("A + B + C == 2", v) == 1);
    assert_true(eval("A + C != 2", v) == 0);
    assert_true(eval("D > 2", v) == 1);
    assert_true(eval("D * 2 - 1", v) == 5);
    assert_true(eval("D / 2", v) == 1.5);
    assert_true(eval("D / B", v) == 0); /* no division by zero */
    assert_true(eval("-A + 2", v) == 1);
    assert_true(eval("A + 0.5 < 1.6", v) == 1);
    assert_true(eval("1 + 2 * 3", v) == 7);
    assert_true(eval("(A || B) + (C || D) + (E || B)", v) == 2);
    /* Perl's || gives its operand: a count survives */
    assert_true(eval("B || D", v) == 3);
    assert_true(eval("A && D", v) == 3);
    assert_true(eval("A <= 1 && A >= 1", v) == 1);
}

static void test_unknown_names(void **state)
{
    const double v[6] = {1, 0, 0, 0, 0, 0};
    char err[128];
    int unknown = 0;
    struct meta_prog *m = meta_compile("A && !EVAL_RULE || OTHER", resolve,
                                       &unknown, err, sizeof(err));
    const long *deps;

    assert_non_null(m);
    assert_int_equal(unknown, 2);
    assert_true(meta_eval(m, v) == 1); /* unknown names count 0 */
    assert_int_equal(meta_deps(m, &deps), 1);
    assert_int_equal(deps[0], 0);
    meta_free(m);
}

static void test_syntax_errors(void **state)
{
    static const char *const bad[] = {
        "",
        "A &&",
        "(A",
        "A)",
        "A B",
        "&& A",
        "A & B",
        "A ||| B",
        "A $ B",
        "((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((("
        "(((((A)))))))))))))))))))))))))))))))))))))))))))))))))))))))))))"
        "))))))",
    };
    char err[128];
    int unknown = 0;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct meta_prog *m =
            meta_compile(bad[i], resolve, &unknown, err, sizeof(err));
        if (m)
            fail_msg("\"%s\" compiled", bad[i]);
        assert_true(err[0] != '\0');
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_boolean),
        cmocka_unit_test(test_arithmetic),
        cmocka_unit_test(test_unknown_names),
        cmocka_unit_test(test_syntax_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
