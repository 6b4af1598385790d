/*
 * Unit tests for the spf section of policy files: actions and replies per
 * result, the defaults, exemptions and scope, and every error with its
 * file:line.
 */
#define _GNU_SOURCE /* asprintf */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "errassert.h"
#include "policy.h"
#include "tmpdir.h"

static struct policy *load_one(const struct tdir *t, const char *yaml,
                               char **path, struct errors *errs)
{
    *path = write_file(t, "policy.yaml", yaml);
    return policy_load(path, 1, errs);
}

static struct netaddr ip(const char *s)
{
    struct netaddr a;

    assert_int_equal(netaddr_from_ip(&a, s, 40000), 0);
    return a;
}

static void assert_reply(const struct auth_rule *r, enum auth_action action,
                         int code, const char *enh, const char *text)
{
    assert_int_equal(r->action, action);
    assert_int_equal(r->reply.code, code);
    assert_string_equal(r->reply.enh, enh);
    assert_string_equal(r->reply.text, text);
}

static void test_full_section(void **state)
{
    static const char yaml[] =
        "spf:\n"                                                   /* 1 */
        "  fail: reject 550 5.7.23 \"SPF says no\"\n"              /* 2 */
        "  softfail: tempfail\n"                                   /* 3 */
        "  neutral: tag\n"                                         /* 4 */
        "  none: accept\n"                                         /* 5 */
        "  temperror: 'tempfail 451 4.7.24 DNS: try later'\n"      /* 6 */
        "  permerror: reject\n"                                    /* 7 */
        "  pass: accept\n"                                         /* 8 */
        "  listeners: [inbound]\n"                                 /* 9 */
        "  exempt:\n"                                              /* 10 */
        "    networks: [192.0.2.0/24]\n"                           /* 11 */
        "    networks_file: relays.cidr\n"                         /* 12 */
        "    authenticated: false\n";                              /* 13 */
    struct tdir *t = *state;
    struct errors errs = {0};
    struct policy *p;
    char *path, where[300];

    free(write_file(t, "relays.cidr", "198.51.100.0/24\n"));
    p = load_one(t, yaml, &path, &errs);
    if (!p)
        dump_errors(&errs);
    assert_non_null(p);
    assert_non_null(p->spf);
    snprintf(where, sizeof(where), "%s:2", path);
    assert_string_equal(p->spf->where, where);
    assert_reply(&p->spf->on[SPFR_FAIL], AUTH_REJECT, 550, "5.7.23",
                 "SPF says no");
    assert_reply(&p->spf->on[SPFR_SOFTFAIL], AUTH_TEMPFAIL, 451, "4.7.23",
                 "SPF validation failed, try again later");
    assert_int_equal(p->spf->on[SPFR_NEUTRAL].action, AUTH_ACCEPT);
    assert_int_equal(p->spf->on[SPFR_NONE].action, AUTH_ACCEPT);
    assert_reply(&p->spf->on[SPFR_TEMPERROR], AUTH_TEMPFAIL, 451,
                 "4.7.24", "DNS: try later");
    assert_reply(&p->spf->on[SPFR_PERMERROR], AUTH_REJECT, 550, "5.7.24",
                 "SPF validation error");
    assert_int_equal(p->spf->on[SPFR_PASS].action, AUTH_ACCEPT);
    assert_int_equal(p->spf->on[SPFR_FAIL].line, 2);
    assert_int_equal(p->spf->scope.nlisteners, 1);
    assert_int_equal(p->spf->scope.exempt_networks.n, 2);
    assert_true(p->spf->scope.check_authenticated);
    policy_free(p);
    free(path);
}

/* "spf:" alone turns SPF on, tagging every result. */
static void test_empty_section_only_tags(void **state)
{
    struct tdir *t = *state;
    struct errors errs = {0};
    struct policy *p;
    char *path;
    struct netaddr a = ip("192.0.2.1");

    p = load_one(t, "spf:\n", &path, &errs);
    assert_non_null(p);
    assert_non_null(p->spf);
    for (int r = 0; r < SPFR__COUNT; r++)
        assert_int_equal(p->spf->on[r].action, AUTH_ACCEPT);
    assert_false(p->spf->scope.check_authenticated);
    assert_true(auth_scope_applies(&p->spf->scope, "any", &a, false));
    assert_false(auth_scope_applies(&p->spf->scope, "any", &a, true));
    policy_free(p);
    free(path);
}

static void test_no_section_no_spf(void **state)
{
    struct tdir *t = *state;
    struct errors errs = {0};
    struct policy *p;
    char *path;

    p = load_one(t, "access: []\n", &path, &errs);
    assert_non_null(p);
    assert_null(p->spf);
    policy_free(p);
    free(path);
}

static void test_scope(void **state)
{
    static const char yaml[] = "spf:\n"
                               "  listeners: [inbound, backup]\n"
                               "  exempt:\n"
                               "    networks: [\"2001:db8::/32\", 10.0.0.0/8]\n";
    struct tdir *t = *state;
    struct errors errs = {0};
    struct policy *p;
    char *path;
    struct netaddr out = ip("192.0.2.1"), in = ip("10.1.2.3"),
                   in6 = ip("2001:db8::1");

    p = load_one(t, yaml, &path, &errs);
    assert_non_null(p);
    assert_true(auth_scope_applies(&p->spf->scope, "inbound", &out, false));
    assert_true(auth_scope_applies(&p->spf->scope, "backup", &out, false));
    assert_false(auth_scope_applies(&p->spf->scope, "submission", &out, false));
    assert_false(auth_scope_applies(&p->spf->scope, NULL, &out, false));
    assert_false(auth_scope_applies(&p->spf->scope, "inbound", &in, false));
    assert_false(auth_scope_applies(&p->spf->scope, "inbound", &in6, false));
    policy_free(p);
    free(path);
}

static void test_errors(void **state)
{
    static const char yaml[] =
        "spf:\n"                                                /* 1 */
        "  fail: rejekt\n"                                      /* 2 */
        "  softfail: reject 450 4.7.1 Wrong class\n"            /* 3 */
        "  pass: reject\n"                                      /* 4 */
        "  neutral: accept 250 fine\n"                          /* 5 */
        "  none: tempfail 451 5.7.1 Mismatch\n"                 /* 6 */
        "  temperror: tempfail 451 4.7.1 \"caf\xc3\xa9\"\n"      /* 7 */
        "  permerror: [reject]\n"                               /* 8 */
        "  listeners: []\n"                                     /* 9 */
        "  exempt:\n"                                           /* 10 */
        "    networks: [192.0.2.1/24]\n"                        /* 11 */
        "    authenticated: perhaps\n"                          /* 12 */
        "    users: [alice]\n"                                  /* 13 */
        "  helo: true\n";                                       /* 14 */
    struct tdir *t = *state;
    struct errors errs = {0};
    struct policy *p;
    char *path;

    p = load_one(t, yaml, &path, &errs);
    assert_null(p);
    assert_error(&errs, path, 2, "spf.fail: \"rejekt\": expected accept");
    assert_error(&errs, path, 3, "a reject needs a 5xx reply code");
    assert_error(&errs, path, 4, "a pass is never refused");
    assert_error(&errs, path, 5, "accept sends no reply");
    assert_error(&errs, path, 6, "enhanced code class 5 does not match 451");
    assert_error(&errs, path, 7, "printable ASCII");
    assert_error(&errs, path, 8, "spf.permerror");
    assert_error(&errs, path, 9, "spf.listeners: empty list");
    assert_error(&errs, path, 11, "spf.exempt.networks");
    assert_error(&errs, path, 12, "spf.exempt.authenticated");
    assert_error(&errs, path, 13, "unknown key \"users\"");
    assert_error(&errs, path, 14, "unknown key \"helo\"");
    errors_free(&errs);
    free(path);
}

/* Two files with an spf section: the second is an error at its line. */
static void test_one_section_in_all_files(void **state)
{
    struct tdir *t = *state;
    struct errors errs = {0};
    char *files[2];

    files[0] = write_file(t, "a.yaml", "spf:\n  fail: reject\n");
    files[1] = write_file(t, "b.yaml", "access: []\nspf:\n  fail: accept\n");
    assert_null(policy_load(files, 2, &errs));
    assert_error(&errs, files[1], 3, "already set at");
    errors_free(&errs);
    free(files[0]);
    free(files[1]);
}

static void test_not_a_mapping(void **state)
{
    struct tdir *t = *state;
    struct errors errs = {0};
    char *path;

    assert_null(load_one(t, "spf: [fail]\n", &path, &errs));
    assert_error(&errs, path, 1, "expected a mapping");
    errors_free(&errs);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_full_section, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_section_only_tags, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_no_section_no_spf, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_scope, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_section_in_all_files, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_not_a_mapping, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
