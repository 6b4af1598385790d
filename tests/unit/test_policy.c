/*
 * Unit tests for policy: loading access rules, reply validation, errors
 * with their file:line, merging files, and matching clients.
 */
#define _GNU_SOURCE /* asprintf */
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "policy.h"
#include "tmpdir.h"

static void dump_errors(const struct errors *e)
{
    for (size_t i = 0; i < e->n; i++)
        print_message("  error: %s\n", e->v[i]);
}

static void assert_error(const struct errors *e, const char *file,
                         unsigned line, const char *needle)
{
    char prefix[256];

    snprintf(prefix, sizeof(prefix), "%s:%u: ", file, line);
    for (size_t i = 0; i < e->n; i++)
        if (strncmp(e->v[i], prefix, strlen(prefix)) == 0 &&
            strstr(e->v[i] + strlen(prefix), needle))
            return;
    dump_errors(e);
    fail_msg("no error \"%s...%s\"", prefix, needle);
}

/* Load one file holding yaml; *path gets its name (caller frees). */
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

static const char *match_name(const struct policy *p, const char *listener,
                              const char *client)
{
    struct netaddr a = ip(client);
    const struct access_rule *r = policy_access_match(p, listener, &a);

    return r ? r->name : "(none)";
}

/* ---- good files ---- */

static const char good_yaml[] =
    "# comment\n"
    "access:\n"                                             /* 2 */
    "  - name: monitoring\n"                                /* 3 */
    "    networks: [192.0.2.10]\n"                          /* 4 */
    "    action: accept\n"                                  /* 5 */
    "  - networks: [192.0.2.0/24, \"2001:db8:bad::/48\"]\n" /* 6 */
    "    networks_file: blocked.cidr\n"                     /* 7 */
    "    action: reject\n"                                  /* 8 */
    "  - name: slow\n"                                      /* 9 */
    "    networks: 198.51.100.0/24\n"                       /* 10 */
    "    action: tempfail\n"                                /* 11 */
    "    listeners: [inbound, submission]\n"                /* 12 */
    "  - name: custom\n"                                    /* 13 */
    "    networks: [\"0.0.0.0/0\"]\n"                       /* 14 */
    "    action: reject\n"                                  /* 15 */
    "    reply: \"550 No mail from you\"\n"                 /* 16 */
    "    listeners: [submission]\n";                        /* 17 */

static void test_load_good(void **state)
{
    struct tdir *t = *state;
    struct errors errs = {0};
    struct policy *p;
    char *path, where[256];

    free(write_file(t, "blocked.cidr", "# blocked\n203.0.113.0/24\n"));
    p = load_one(t, good_yaml, &path, &errs);
    if (!p)
        dump_errors(&errs);
    assert_non_null(p);
    assert_int_equal(p->naccess, 4);

    assert_string_equal(p->access[0].name, "monitoring");
    assert_int_equal(p->access[0].action, ACCESS_ACCEPT);
    assert_int_equal(p->access[0].networks.n, 1);
    assert_null(p->access[0].listeners);

    /* Defaults: the name from the file's base name, the reply per action. */
    assert_string_equal(p->access[1].name, "policy.yaml:6");
    snprintf(where, sizeof(where), "%s:6", path);
    assert_string_equal(p->access[1].where, where);
    assert_int_equal(p->access[1].action, ACCESS_REJECT);
    assert_int_equal(p->access[1].networks.n, 3); /* 2 inline + 1 file */
    assert_int_equal(p->access[1].code, 554);
    assert_string_equal(p->access[1].enh, "5.7.1");
    assert_string_equal(p->access[1].text, "Access denied");

    assert_int_equal(p->access[2].action, ACCESS_TEMPFAIL);
    assert_int_equal(p->access[2].code, 421);
    assert_string_equal(p->access[2].enh, "4.7.0");
    assert_string_equal(p->access[2].text, "Try again later");
    assert_int_equal(p->access[2].nlisteners, 2);
    assert_string_equal(p->access[2].listeners[1], "submission");

    assert_int_equal(p->access[3].code, 550);
    assert_string_equal(p->access[3].enh, "");
    assert_string_equal(p->access[3].text, "No mail from you");

    policy_free(p);
    free(path);
    assert_int_equal(errs.n, 0);
}

static void test_match(void **state)
{
    struct tdir *t = *state;
    struct errors errs = {0};
    struct policy *p;
    char *path;

    free(write_file(t, "blocked.cidr", "203.0.113.0/24\n"));
    p = load_one(t, good_yaml, &path, &errs);
    assert_non_null(p);

    /* First match wins: the accept entry comes before the block. */
    assert_string_equal(match_name(p, "inbound", "192.0.2.10"), "monitoring");
    assert_string_equal(match_name(p, "inbound", "192.0.2.11"),
                        "policy.yaml:6");
    assert_string_equal(match_name(p, "inbound", "::ffff:192.0.2.11"),
                        "policy.yaml:6");
    assert_string_equal(match_name(p, "inbound", "2001:db8:bad::25"),
                        "policy.yaml:6");
    assert_string_equal(match_name(p, "inbound", "203.0.113.200"),
                        "policy.yaml:6");
    /* Scoped entries match only on their listeners. */
    assert_string_equal(match_name(p, "inbound", "198.51.100.1"), "slow");
    assert_string_equal(match_name(p, "submission", "198.51.100.1"), "slow");
    assert_string_equal(match_name(p, "smtp", "198.51.100.1"), "(none)");
    assert_string_equal(match_name(p, NULL, "198.51.100.1"), "(none)");
    assert_string_equal(match_name(p, "submission", "8.8.8.8"), "custom");
    assert_string_equal(match_name(p, "inbound", "8.8.8.8"), "(none)");
    assert_string_equal(match_name(p, "submission", "2001:db8::1"), "(none)");
    assert_string_equal(match_name(NULL, "smtp", "192.0.2.10"), "(none)");

    policy_free(p);
    free(path);
}

static void test_empty_and_none(void **state)
{
    struct tdir *t = *state;
    struct errors errs = {0};
    struct policy *p;
    char *path;

    p = policy_load(NULL, 0, &errs);
    assert_non_null(p);
    assert_int_equal(p->naccess, 0);
    policy_free(p);

    p = load_one(t, "# only comments\n", &path, &errs);
    assert_non_null(p);
    assert_int_equal(p->naccess, 0);
    policy_free(p);
    free(path);

    p = load_one(t, "access:\n", &path, &errs);
    assert_non_null(p);
    assert_int_equal(p->naccess, 0);
    policy_free(p);
    free(path);
    assert_int_equal(errs.n, 0);
    policy_free(NULL);
}

static void test_merge_files(void **state)
{
    struct tdir *t = *state;
    struct errors errs = {0};
    char *files[2];
    struct policy *p;

    files[0] = write_file(t, "a.yaml",
                          "access:\n"
                          "  - {name: a1, networks: [192.0.2.0/25], "
                          "action: accept}\n");
    files[1] = write_file(t, "b.yaml",
                          "access:\n"
                          "  - {name: b1, networks: [192.0.2.0/24], "
                          "action: reject}\n"
                          "  - {name: b2, networks: [\"::/0\"], "
                          "action: tempfail}\n");
    p = policy_load(files, 2, &errs);
    assert_non_null(p);
    assert_int_equal(p->naccess, 3);
    assert_string_equal(p->access[0].name, "a1");
    assert_string_equal(p->access[2].name, "b2");
    assert_string_equal(match_name(p, "smtp", "192.0.2.1"), "a1");
    assert_string_equal(match_name(p, "smtp", "192.0.2.200"), "b1");
    assert_string_equal(match_name(p, "smtp", "2001:db8::2"), "b2");
    policy_free(p);
    free(files[0]);
    free(files[1]);
}

/* The shipped example loads cleanly. */
static void test_example_policy(void **state)
{
    const char *src = getenv("WARDEN_SOURCE_DIR");
    struct errors errs = {0};
    struct policy *p;
    char *path;

    if (!src)
        skip();
    assert_true(asprintf(&path, "%s/policies/access.yaml", src) > 0);
    p = policy_load(&path, 1, &errs);
    if (!p)
        dump_errors(&errs);
    assert_non_null(p);
    assert_true(p->naccess >= 2);
    assert_string_equal(match_name(p, "smtp", "192.0.2.10"), "monitoring");
    assert_string_equal(match_name(p, "smtp", "192.0.2.99"), "blocklist");
    policy_free(p);
    free(path);
}

/* ---- replies ---- */

static void test_reply_validation(void **state)
{
    static const struct {
        const char *action, *reply; /* reply as YAML source */
        const char *error;          /* NULL: valid */
        int code;
        const char *enh, *text;
    } cases[] = {
        {"reject", "\"554 5.7.1 Go away\"", NULL, 554, "5.7.1", "Go away"},
        {"reject", "\"550 Go away\"", NULL, 550, "", "Go away"},
        {"reject", "\"521 5.3.2  Two spaces\"", NULL, 521, "5.3.2",
         "Two spaces"},
        {"reject", "\"554 5.7.1 1.2.3 is a text\"", NULL, 554, "5.7.1",
         "1.2.3 is a text"},
        {"tempfail", "\"450 4.7.1 Slow down\"", NULL, 450, "4.7.1",
         "Slow down"},
        {"tempfail", "\"421 4.7.0 Tab\there\"", NULL, 421, "4.7.0",
         "Tab\there"},
        {"tempfail", "\"421 4.7.0\tTab\"", "invalid enhanced status", 0, NULL,
         NULL},
        {"reject", "\"454 4.7.1 Wrong class\"", "a reject needs a 5xx", 0, NULL,
         NULL},
        {"tempfail", "\"554 5.7.1 Wrong class\"", "a tempfail needs a 4xx", 0,
         NULL, NULL},
        {"reject", "\"554 4.7.1 Mismatch\"",
         "enhanced code class 4 does not match 554", 0, NULL, NULL},
        {"reject", "\"55 Short\"", "3-digit reply code", 0, NULL, NULL},
        {"reject", "\"5x4 Letters\"", "3-digit reply code", 0, NULL, NULL},
        {"reject", "\"564 Bad second digit\"", "3-digit reply code", 0, NULL,
         NULL},
        {"reject", "\"5541 Four digits\"", "expected a space", 0, NULL, NULL},
        {"reject", "\"554-Multi\"", "expected a space", 0, NULL, NULL},
        {"reject", "\"554\"", "expected a space", 0, NULL, NULL},
        {"reject", "\"554 5.7.1\"", "expected a text", 0, NULL, NULL},
        {"reject", "\"554 \"", "expected a text", 0, NULL, NULL},
        {"reject", "\"554 5.7 Short enh\"", "invalid enhanced status", 0, NULL,
         NULL},
        {"reject", "\"554 5.7.1234 Long enh\"", "invalid enhanced status", 0,
         NULL, NULL},
        {"reject", "\"554 5.7.1x Junk\"", "invalid enhanced status", 0, NULL,
         NULL},
        {"reject", "\"554 Line\\r\\nbreak\"", "must not contain CR or LF", 0,
         NULL, NULL},
        {"reject", "\"554 Bell\\a\"", "printable ASCII", 0, NULL, NULL},
        {"reject", "\"554 Caf\\u00e9\"", "printable ASCII", 0, NULL, NULL},
        {"accept", "\"250 OK\"", "an accept entry sends no reply", 0, NULL,
         NULL},
        {"reject", "[554, x]", "expected a string, got a list", 0, NULL, NULL},
    };
    struct tdir *t = *state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct errors errs = {0};
        struct policy *p;
        char *yaml, *path;

        assert_true(asprintf(&yaml,
                             "access:\n"
                             "  - networks: [192.0.2.0/24]\n"
                             "    action: %s\n"
                             "    reply: %s\n",
                             cases[i].action, cases[i].reply) > 0);
        p = load_one(t, yaml, &path, &errs);
        if (cases[i].error) {
            if (p || errs.n != 1) {
                dump_errors(&errs);
                fail_msg("reply %s: want 1 error", cases[i].reply);
            }
            assert_error(&errs, path, 4, "access[0].reply: ");
            assert_error(&errs, path, 4, cases[i].error);
        } else {
            if (!p) {
                dump_errors(&errs);
                fail_msg("reply %s: want it valid", cases[i].reply);
            }
            assert_int_equal(p->access[0].code, cases[i].code);
            assert_string_equal(p->access[0].enh, cases[i].enh);
            assert_string_equal(p->access[0].text, cases[i].text);
        }
        policy_free(p);
        errors_free(&errs);
        free(yaml);
        free(path);
    }
}

static void test_reply_length(void **state)
{
    struct tdir *t = *state;
    struct errors errs = {0};
    char text[402], *yaml, *path;
    struct policy *p;

    /* 399 characters of text fit; 400 do not. */
    memset(text, 'x', 400);
    text[399] = '\0';
    assert_true(asprintf(&yaml,
                         "access:\n  - networks: [192.0.2.0/24]\n"
                         "    action: reject\n    reply: \"554 %s\"\n",
                         text) > 0);
    p = load_one(t, yaml, &path, &errs);
    assert_non_null(p);
    assert_int_equal(strlen(p->access[0].text), 399);
    policy_free(p);
    free(yaml);
    free(path);

    text[399] = 'x';
    text[400] = '\0';
    assert_true(asprintf(&yaml,
                         "access:\n  - networks: [192.0.2.0/24]\n"
                         "    action: reject\n    reply: \"554 %s\"\n",
                         text) > 0);
    assert_null(load_one(t, yaml, &path, &errs));
    assert_error(&errs, path, 4, "text longer than 399 characters");
    errors_free(&errs);
    free(yaml);
    free(path);
}

/* ---- errors ---- */

static void test_entry_errors(void **state)
{
    struct tdir *t = *state;
    struct errors errs = {0};
    char *path;

    assert_null(load_one(t,
                         "access:\n"                         /* 1 */
                         "  - networks: [192.0.2.0/24]\n"    /* 2 */
                         "    actions: reject\n"             /* 3 */
                         "  - name: no-networks\n"           /* 4 */
                         "    action: reject\n"              /* 5 */
                         "  - networks:\n"                   /* 6 */
                         "      - 192.0.2.0/24\n"            /* 7 */
                         "      - 192.0.2.1/24\n"            /* 8 */
                         "      - bogus\n"                   /* 9 */
                         "    action: drop\n"                /* 10 */
                         "  - networks: [198.51.100.0/24]\n" /* 11 */
                         "    action: reject\n"              /* 12 */
                         "    listeners: []\n"               /* 13 */
                         "    name: \"has blank\"\n"         /* 14 */
                         "  - just a string\n"               /* 15 */
                         "limits:\n"                         /* 16 */
                         "  rate: 5\n",                      /* 17 */
                         &path, &errs));
    assert_error(&errs, path, 2, "access[0]: action is required");
    assert_error(&errs, path, 3, "unknown key \"actions\" in access[0]");
    assert_error(&errs, path, 4, "access[1]: needs networks or networks_file");
    assert_error(&errs, path, 8,
                 "access[2].networks: host bits set in \"192.0.2.1/24\"");
    assert_error(&errs, path, 9,
                 "access[2].networks: invalid network \"bogus\"");
    assert_error(&errs, path, 10,
                 "access[2].action: expected one of accept, reject, "
                 "tempfail, got \"drop\"");
    assert_error(&errs, path, 13, "access[3].listeners: empty list");
    assert_error(&errs, path, 14,
                 "access[3].name: must be 1-63 printable characters");
    assert_error(&errs, path, 15,
                 "access[4]: expected a mapping, got a string");
    assert_error(&errs, path, 16, "unknown key \"limits\" in top level");
    assert_int_equal(errs.n, 10);
    errors_free(&errs);
    free(path);
}

static void test_structure_errors(void **state)
{
    struct tdir *t = *state;
    struct errors errs = {0};
    char *path;

    assert_null(load_one(t, "- a\n- b\n", &path, &errs));
    assert_int_equal(errs.n, 1);
    assert_error(&errs, path, 1, "top level: expected a mapping, got a list");
    errors_free(&errs);
    free(path);

    assert_null(
        load_one(t, "access:\n  networks: [192.0.2.0/24]\n", &path, &errs));
    assert_int_equal(errs.n, 1);
    assert_error(&errs, path, 2, "access: expected a list, got a mapping");
    errors_free(&errs);
    free(path);

    assert_null(load_one(t, "access: [\n", &path, &errs));
    assert_int_equal(errs.n, 1);
    assert_error(&errs, path, 2, "YAML syntax error");
    errors_free(&errs);
    free(path);
}

static void test_networks_file_errors(void **state)
{
    struct tdir *t = *state;
    struct errors errs = {0};
    char *path, *block, *want;

    block = write_file(t, "blocked.cidr", "192.0.2.0/24\n\n# x\n10.0.0.1/8\n");
    assert_null(load_one(t,
                         "access:\n"
                         "  - networks_file: blocked.cidr\n"
                         "    action: reject\n"
                         "  - networks_file: missing.cidr\n"
                         "    action: reject\n",
                         &path, &errs));
    assert_int_equal(errs.n, 2);
    assert_error(&errs, block, 4, "host bits set in \"10.0.0.1/8\"");
    assert_true(asprintf(&want, "%s/missing.cidr: cannot open: No such file",
                         t->path) > 0);
    assert_non_null(strstr(errs.v[1], want));
    errors_free(&errs);
    free(want);
    free(block);
    free(path);
}

static void test_errors_from_all_files(void **state)
{
    struct tdir *t = *state;
    struct errors errs = {0};
    char *files[3];

    files[0] = write_file(t, "a.yaml", "access:\n  - action: reject\n");
    files[1] = write_file(t, "ok.yaml", "access: []\n");
    files[2] = write_file(t, "c.yaml", "acess: []\n");
    assert_null(policy_load(files, 3, &errs));
    assert_int_equal(errs.n, 2);
    assert_error(&errs, files[0], 2, "needs networks or networks_file");
    assert_error(&errs, files[2], 1, "unknown key \"acess\" in top level");
    errors_free(&errs);
    for (int i = 0; i < 3; i++)
        free(files[i]);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_load_good),
        T(test_match),
        T(test_empty_and_none),
        T(test_merge_files),
        T(test_example_policy),
        T(test_reply_validation),
        T(test_reply_length),
        T(test_entry_errors),
        T(test_structure_errors),
        T(test_networks_file_errors),
        T(test_errors_from_all_files),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
