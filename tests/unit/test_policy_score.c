/*
 * Unit tests for the scoring section of policy files (policy_score.c,
 * score_rules.c): a full section, the defaults, thresholds by listener,
 * errors with their file:line (in the policy file and in the rule files
 * it names), one section across files, and the shipped example policy.
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
#include "rules.h"
#include "score_rules.h"
#include "tmpdir.h"

static struct policy *load_one(const struct tdir *t, const char *yaml,
                               char **path, struct errors *errs)
{
    *path = write_file(t, "policy.yaml", yaml);
    return policy_load(path, 1, errs);
}

static const char good_yaml[] = "scoring:\n"
                                "  rules: [local.cf]\n"
                                "  max_scan_size: 64k\n"
                                "  timeout: 3s\n"
                                "  limit_near: 90%\n"
                                "  listeners: [inbound, submission]\n"
                                "  exempt:\n"
                                "    networks: [192.0.2.0/24]\n"
                                "    authenticated: false\n"
                                "  thresholds:\n"
                                "    - listeners: [inbound]\n"
                                "      tag: 4.5\n"
                                "      tempfail: 9\n"
                                "      reject: 12\n"
                                "      reject_reply: 554 5.7.1 \"Go away\"\n"
                                "    - listeners: [submission]\n"
                                "      tag: off\n"
                                "      reject: 20\n";

static void test_good(void **state)
{
    struct errors errs = {0};
    char *path, *cf = write_file(*state, "local.cf", "body X /x/\n");
    struct policy *p = load_one(*state, good_yaml, &path, &errs);
    const struct score_policy *sp;
    const struct score_threshold *t;
    struct netaddr a;

    dump_errors(&errs);
    assert_non_null(p);
    sp = p->scoring;
    assert_non_null(sp);
    assert_non_null(sp->rules);
    assert_non_null(ruleset_find(sp->rules, "X"));
    assert_int_equal(sp->max_scan, 64 * 1024);
    assert_int_equal(sp->timeout_ms, 3000);
    assert_true(sp->limit_near == 0.9);
    assert_true(sp->scope.check_authenticated);
    netaddr_from_ip(&a, "192.0.2.9", 25);
    assert_false(auth_scope_applies(&sp->scope, "inbound", &a, false));
    netaddr_from_ip(&a, "198.51.100.1", 25);
    assert_true(auth_scope_applies(&sp->scope, "inbound", &a, true));
    assert_false(auth_scope_applies(&sp->scope, "other", &a, false));

    t = score_threshold_for(sp, "inbound");
    assert_non_null(t);
    assert_true(t->tag_on && t->tag == 4.5);
    assert_true(t->tempfail_on && t->tempfail == 9);
    assert_true(t->reject_on && t->reject == 12);
    assert_int_equal(t->reject_reply.code, 554);
    assert_string_equal(t->reject_reply.text, "Go away");
    assert_int_equal(t->tempfail_reply.code, 451); /* the default */
    t = score_threshold_for(sp, "submission");
    assert_false(t->tag_on);
    assert_false(t->tempfail_on);
    assert_true(t->reject == 20);
    assert_null(score_threshold_for(sp, "other"));
    policy_free(p);
    free(path);
    free(cf);
}

static void test_defaults(void **state)
{
    struct errors errs = {0};
    char *path, *cf = write_file(*state, "r.cf", "body X /x/\n");
    struct policy *p =
        load_one(*state, "scoring:\n  rules: r.cf\n", &path, &errs);
    const struct score_threshold *t;

    dump_errors(&errs);
    assert_non_null(p);
    assert_int_equal(p->scoring->max_scan, SCORE_MAX_SCAN_DEFAULT);
    assert_int_equal(p->scoring->timeout_ms, SCORE_TIMEOUT_DEFAULT);
    assert_true(p->scoring->limit_near == SCORE_LIMIT_NEAR_DEFAULT);
    assert_false(p->scoring->scope.check_authenticated);
    t = score_threshold_for(p->scoring, "anything");
    assert_non_null(t);
    assert_true(t->tag_on && t->tag == 5);
    assert_false(t->tempfail_on);
    assert_true(t->reject_on && t->reject == 15);
    assert_int_equal(t->reject_reply.code, 550);
    assert_string_equal(t->reject_reply.enh, "5.7.1");
    policy_free(p);
    free(path);
    free(cf);

    /* no scoring section: nothing scored */
    p = load_one(*state, "access: []\n", &path, &errs);
    assert_non_null(p);
    assert_null(p->scoring);
    policy_free(p);
    free(path);
}

static void test_errors(void **state)
{
    struct errors errs = {0};
    char *path, *cf = write_file(*state, "bad.cf",
                                 "body OK /x/\n"
                                 "body BROKEN /a(/\n");
    struct policy *p = load_one(*state,
                                "scoring:\n"              /* 1 */
                                "  rules: bad.cf\n"       /* 2 */
                                "  max_scan_size: lots\n" /* 3 */
                                "  colour: blue\n"        /* 4 */
                                "  thresholds:\n"         /* 5 */
                                "    - tag: five\n"       /* 6 */
                                "    - tempfail: 10\n"    /* 7 */
                                "      reject: 8\n"       /* 8 */
                                "    - reject: 9\n"       /* 9 */
                                "      reject_reply: 451 try later\n"
                                "    - listeners: [x]\n", /* 11 */
                                &path, &errs);

    assert_null(p);
    assert_error(&errs, path, 3, "invalid size");
    assert_error(&errs, path, 4, "colour");
    assert_error(&errs, path, 6, "expected a score");
    assert_error(&errs, path, 7, "not below reject");
    assert_error(&errs, path, 10, "451");
    assert_error(&errs, path, 11, "sets none of tag, tempfail, reject");
    /* the rule file's own error, at its own line */
    assert_error(&errs, cf, 2, "body BROKEN: bad regex");
    errors_free(&errs);
    free(path);
    free(cf);

    p = load_one(*state, "scoring:\n  max_scan_size: 1m\n", &path, &errs);
    assert_null(p);
    assert_error(&errs, path, 2, "rules: missing"); /* the mapping */
    errors_free(&errs);
    free(path);

    /* limit_near: a whole percentage, 1 to 100, "%" optional */
    static const char *const bad_near[] = {"0%", "101%", "80.5%", "%",
                                           "eighty", "80%%", "-5"};
    cf = write_file(*state, "near.cf", "body OK /x/\n");
    for (size_t i = 0; i < sizeof(bad_near) / sizeof(bad_near[0]); i++) {
        char yaml[128];
        snprintf(yaml, sizeof(yaml),
                 "scoring:\n  rules: near.cf\n  limit_near: \"%s\"\n",
                 bad_near[i]);
        p = load_one(*state, yaml, &path, &errs);
        assert_null(p);
        assert_error(&errs, path, 3, "limit_near");
        assert_error(&errs, path, 3, "a percentage from 1% to 100%");
        errors_free(&errs);
        free(path);
    }
    p = load_one(*state, "scoring:\n  rules: near.cf\n  limit_near: 100\n",
                 &path, &errs);
    dump_errors(&errs);
    assert_non_null(p);
    assert_true(p->scoring->limit_near == 1.0);
    policy_free(p);
    free(path);
    free(cf);

    p = load_one(*state, "scoring:\n  rules: nowhere.cf\n", &path, &errs);
    assert_null(p);
    bool named = false;
    for (size_t i = 0; i < errs.n; i++)
        named |= strstr(errs.v[i], "nowhere.cf: No such file") != NULL;
    assert_true(named);
    errors_free(&errs);
    free(path);
}

static void test_one_section(void **state)
{
    struct errors errs = {0};
    char *cf = write_file(*state, "r.cf", "body X /x/\n");
    char *paths[2] = {
        write_file(*state, "a.yaml", "scoring:\n  rules: r.cf\n"),
        write_file(*state, "b.yaml", "\nscoring:\n  rules: r.cf\n")};
    struct policy *p = policy_load(paths, 2, &errs);

    assert_null(p);
    assert_error(&errs, paths[1], 3, "already set at"); /* the mapping */
    errors_free(&errs);
    free(paths[0]);
    free(paths[1]);
    free(cf);
}

static void test_example_policy(void **state)
{
    const char *src = getenv("WARDEN_SOURCE_DIR");
    struct errors errs = {0};
    char *path;

    if (!src)
        skip();
    assert_true(asprintf(&path, "%s/policies/scoring.yaml", src) > 0);
    struct policy *p = policy_load(&path, 1, &errs);
    dump_errors(&errs);
    assert_non_null(p);
    assert_non_null(p->scoring);
    const struct score_threshold *t =
        score_threshold_for(p->scoring, "inbound");
    assert_true(t->tag == 5 && t->tempfail == 10 && t->reject == 15);
    assert_non_null(ruleset_find(p->scoring->rules, "GTUBE"));
    policy_free(p);
    free(path);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_good),        T(test_defaults),       T(test_errors),
        T(test_one_section), T(test_example_policy),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
