/*
 * Unit tests for policy: loading access rules and limits, reply
 * validation, errors with their file:line, merging files, and matching
 * clients.
 */
#define _GNU_SOURCE /* asprintf */
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "policy.h"
#include "errassert.h"
#include "tmpdir.h"


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
                         "limit:\n"                          /* 16 */
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
    assert_error(&errs, path, 16, "unknown key \"limit\" in top level");
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

/* ---- limits ---- */

static const struct limit_rule *limit_named(const struct policy *p,
                                            const char *name)
{
    for (size_t i = 0; i < p->nlimits; i++)
        if (strcmp(p->limits[i].name, name) == 0)
            return &p->limits[i];
    fail_msg("no limit \"%s\"", name);
    return NULL;
}

static void assert_reply(const struct limit_reply *r, int code, const char *enh,
                         const char *text)
{
    assert_int_equal(r->code, code);
    assert_string_equal(r->enh, enh);
    assert_string_equal(r->text, text);
}

static void assert_window(const struct rate *w, uint64_t count,
                          uint64_t period_ms, uint64_t burst)
{
    assert_int_equal(w->count, count);
    assert_int_equal(w->period_ms, period_ms);
    assert_int_equal(w->burst, burst);
}

/* Load yaml and expect exactly one error, at line, containing needle. */
static void expect_one_error(const struct tdir *t, const char *yaml,
                             unsigned line, const char *needle)
{
    struct errors errs = {0};
    struct policy *p;
    char *path;

    p = load_one(t, yaml, &path, &errs);
    if (p || errs.n != 1) {
        dump_errors(&errs);
        fail_msg("want 1 error \"%s\" for:\n%s", needle, yaml);
    }
    assert_error(&errs, path, line, needle);
    errors_free(&errs);
    free(path);
}

/* Load yaml and expect it valid; the caller frees the policy. */
static struct policy *expect_valid(const struct tdir *t, const char *yaml)
{
    struct errors errs = {0};
    struct policy *p;
    char *path;

    p = load_one(t, yaml, &path, &errs);
    if (!p) {
        dump_errors(&errs);
        fail_msg("want valid:\n%s", yaml);
    }
    free(path);
    return p;
}

static const char limits_yaml[] =
    "limits:\n"                                                   /* 1 */
    "  - name: inbound-per-ip\n"                                  /* 2 */
    "    key: client_ip\n"                                        /* 3 */
    "    count: messages\n"                                       /* 4 */
    "    rate: 100/1m\n"                                          /* 5 */
    "    burst: 20\n"                                             /* 6 */
    "    listeners: [inbound]\n"                                  /* 7 */
    "    networks: [192.0.2.0/24, \"2001:db8::/32\"]\n"           /* 8 */
    "    action: tempfail\n"                                      /* 9 */
    "    reply: \"450 4.7.1 Slow down\"\n"                        /* 10 */
    "  - name: Quota_user.2\n"                                    /* 11 */
    "    key: [user, client_net]\n"                               /* 12 */
    "    count: recipients\n"                                     /* 13 */
    "    rate: [20/1m, 500/1d]\n"                                 /* 14 */
    "    client_net_v4: 16\n"                                     /* 15 */
    "    client_net_v6: 48\n"                                     /* 16 */
    "    users: [alice@example.com, bob]\n"                       /* 17 */
    "    authenticated: true\n"                                   /* 18 */
    "    dry_run: yes\n"                                          /* 19 */
    "    exempt:\n"                                               /* 20 */
    "      networks: [10.0.0.0/8]\n"                              /* 21 */
    "      networks_file: trusted.cidr\n"                         /* 22 */
    "      users: [monitor@example.com]\n"                        /* 23 */
    "      senders: [Postmaster@Example.COM, \"@example.org\"]\n" /* 24 */
    "    escalate:\n"                                             /* 25 */
    "      after: 5\n"                                            /* 26 */
    "      within: 10m\n"                                         /* 27 */
    "      reply: \"554 5.7.1 Rate limit exceeded repeatedly\"\n" /* 28 */
    "  - name: conns\n"                                           /* 29 */
    "    key: [client_net, client_ip]\n"                          /* 30 */
    "    count: concurrent\n"                                     /* 31 */
    "    rate: 10\n"                                              /* 32 */
    "    action: reject\n"                                        /* 33 */
    "    reply: \"554 5.7.1 Go away\"\n"                          /* 34 */
    "  - name: volume\n"                                          /* 35 */
    "    key: sender_domain\n"                                    /* 36 */
    "    count: bytes\n"                                          /* 37 */
    "    rate: [10m/1h, 1g/1d]\n"                                 /* 38 */
    "  - name: rcpt-domains\n"                                    /* 39 */
    "    key: [rcpt_domain, sender]\n"                            /* 40 */
    "    count: recipients\n"                                     /* 41 */
    "    rate: 1k/1h\n"                                           /* 42 */
    "    exempt: {}\n"                                            /* 43 */
    "  - name: errors\n"                                          /* 44 */
    "    key: client_ip\n"                                        /* 45 */
    "    count: failures\n"                                       /* 46 */
    "    rate: 20/10m\n"                                          /* 47 */
    "  - name: conn-rate\n"                                       /* 48 */
    "    key: client_ip\n"                                        /* 49 */
    "    count: connections\n"                                    /* 50 */
    "    rate: 60/m\n";                                           /* 51 */

static void test_limits_good(void **state)
{
    struct tdir *t = *state;
    struct errors errs = {0};
    const struct limit_rule *r;
    struct netaddr a;
    struct policy *p;
    char *path, where[256];

    free(write_file(t, "trusted.cidr", "198.51.100.0/24\n2001:db8:1::/48\n"));
    p = load_one(t, limits_yaml, &path, &errs);
    if (!p)
        dump_errors(&errs);
    assert_non_null(p);
    assert_int_equal(p->nlimits, 7);
    assert_int_equal(p->naccess, 0);

    r = &p->limits[0];
    assert_string_equal(r->name, "inbound-per-ip");
    snprintf(where, sizeof(where), "%s:2", path);
    assert_string_equal(r->where, where);
    assert_int_equal(r->keys, LK_CLIENT_IP);
    assert_int_equal(r->count, LIMIT_MESSAGES);
    assert_int_equal(r->nwindows, 1);
    assert_window(&r->windows[0], 100, 60000, 20);
    assert_int_equal(r->nlisteners, 1);
    assert_string_equal(r->listeners[0], "inbound");
    assert_int_equal(r->networks.n, 2);
    a = ip("2001:db8::25");
    assert_true(cidr_list_match(&r->networks, &a));
    assert_reply(&r->reply, 450, "4.7.1", "Slow down");
    assert_false(r->dry_run);
    assert_false(r->authenticated);
    assert_int_equal(r->escalate_after, 0);
    assert_int_equal(r->exempt_networks.n, 0);
    assert_null(r->users);

    r = &p->limits[1];
    assert_string_equal(r->name, "Quota_user.2");
    assert_int_equal(r->keys, LK_USER | LK_CLIENT_NET);
    assert_int_equal(r->count, LIMIT_RECIPIENTS);
    assert_int_equal(r->nwindows, 2);
    assert_window(&r->windows[0], 20, 60000, 0);
    assert_window(&r->windows[1], 500, 86400000, 0);
    assert_int_equal(r->net_v4, 16);
    assert_int_equal(r->net_v6, 48);
    assert_null(r->listeners);
    assert_int_equal(r->networks.n, 0);
    assert_int_equal(r->nusers, 2);
    assert_string_equal(r->users[0], "alice@example.com");
    assert_string_equal(r->users[1], "bob");
    assert_true(r->authenticated);
    assert_true(r->dry_run);
    /* inline and file networks go into one list */
    assert_int_equal(r->exempt_networks.n, 3);
    a = ip("198.51.100.7");
    assert_true(cidr_list_match(&r->exempt_networks, &a));
    a = ip("2001:db8:1::1");
    assert_true(cidr_list_match(&r->exempt_networks, &a));
    a = ip("2001:db8:2::1");
    assert_false(cidr_list_match(&r->exempt_networks, &a));
    assert_int_equal(r->nexempt_users, 1);
    assert_string_equal(r->exempt_users[0], "monitor@example.com");
    assert_int_equal(r->nexempt_senders, 2);
    assert_string_equal(r->exempt_senders[0], "postmaster@example.com");
    assert_string_equal(r->exempt_senders[1], "@example.org");
    assert_reply(&r->reply, 451, "4.7.1",
                 "Rate limit exceeded, try again later");
    assert_int_equal(r->escalate_after, 5);
    assert_int_equal(r->escalate_within_ms, 600000);
    assert_reply(&r->escalate_reply, 554, "5.7.1",
                 "Rate limit exceeded repeatedly");

    r = &p->limits[2];
    assert_int_equal(r->keys, LK_CLIENT_NET | LK_CLIENT_IP);
    assert_int_equal(r->count, LIMIT_CONCURRENT);
    assert_int_equal(r->nwindows, 1);
    assert_window(&r->windows[0], 10, 0, 0);
    assert_reply(&r->reply, 554, "5.7.1", "Go away");
    assert_int_equal(r->net_v4, 24);
    assert_int_equal(r->net_v6, 64);

    r = &p->limits[3];
    assert_int_equal(r->keys, LK_SENDER_DOMAIN);
    assert_int_equal(r->count, LIMIT_BYTES);
    assert_window(&r->windows[0], 10485760, 3600000, 0);
    assert_window(&r->windows[1], 1073741824, 86400000, 0);

    r = &p->limits[4];
    assert_int_equal(r->keys, LK_RCPT_DOMAIN | LK_SENDER);
    assert_window(&r->windows[0], 1024, 3600000, 0);
    assert_int_equal(r->nexempt_senders, 0);

    r = limit_named(p, "errors");
    assert_int_equal(r->count, LIMIT_FAILURES);
    assert_window(&r->windows[0], 20, 600000, 0);

    r = limit_named(p, "conn-rate");
    assert_int_equal(r->keys, LK_CLIENT_IP);
    assert_int_equal(r->count, LIMIT_CONNECTIONS);
    assert_window(&r->windows[0], 60, 60000, 0);

    policy_free(p);
    free(path);
    assert_int_equal(errs.n, 0);
}

/* The smallest entry, and what every default is. */
static void test_limits_defaults(void **state)
{
    struct policy *p;
    const struct limit_rule *r;

    p = expect_valid(*state, "limits:\n"
                             "  - name: a\n"
                             "    key: client_ip\n"
                             "    count: messages\n"
                             "    rate: 5/1h\n");
    assert_int_equal(p->nlimits, 1);
    r = &p->limits[0];
    assert_int_equal(r->keys, LK_CLIENT_IP);
    assert_int_equal(r->net_v4, 24);
    assert_int_equal(r->net_v6, 64);
    assert_window(&r->windows[0], 5, 3600000, 0);
    assert_null(r->listeners);
    assert_int_equal(r->nlisteners, 0);
    assert_int_equal(r->networks.n, 0);
    assert_null(r->users);
    assert_false(r->authenticated);
    assert_int_equal(r->exempt_networks.n, 0);
    assert_null(r->exempt_users);
    assert_null(r->exempt_senders);
    assert_reply(&r->reply, 451, "4.7.1",
                 "Rate limit exceeded, try again later");
    assert_false(r->dry_run);
    assert_int_equal(r->escalate_after, 0);
    assert_int_equal(r->escalate_within_ms, 0);
    assert_int_equal(r->escalate_reply.code, 0);
    policy_free(p);
}

static void test_limits_merge_and_empty(void **state)
{
    struct tdir *t = *state;
    struct errors errs = {0};
    struct policy *p;
    char *files[3];

    files[0] = write_file(t, "a.yaml",
                          "access:\n"
                          "  - {networks: [192.0.2.0/24], action: reject}\n"
                          "limits:\n"
                          "  - {name: a1, key: client_ip, count: messages, "
                          "rate: 1/1s}\n");
    files[1] = write_file(t, "b.yaml", "limits:\n");
    files[2] = write_file(t, "c.yaml",
                          "limits:\n"
                          "  - {name: c1, key: client_net, count: connections, "
                          "rate: 2/1s}\n"
                          "  - {name: c2, key: client_ip, count: concurrent, "
                          "rate: 3}\n");
    p = policy_load(files, 3, &errs);
    if (!p)
        dump_errors(&errs);
    assert_non_null(p);
    assert_int_equal(p->naccess, 1);
    assert_int_equal(p->nlimits, 3);
    assert_string_equal(p->limits[0].name, "a1");
    assert_string_equal(p->limits[1].name, "c1");
    assert_string_equal(p->limits[2].name, "c2");
    assert_int_equal(p->limits[2].windows[0].count, 3);
    policy_free(p);
    for (int i = 0; i < 3; i++)
        free(files[i]);

    p = expect_valid(t, "limits: []\n");
    assert_int_equal(p->nlimits, 0);
    assert_null(p->limits);
    policy_free(p);
}

static void test_limit_names_unique(void **state)
{
    struct tdir *t = *state;
    struct errors errs = {0};
    char *files[2], *want;

    files[0] = write_file(t, "a.yaml",
                          "limits:\n"
                          "  - {name: same, key: client_ip, count: messages, "
                          "rate: 10/1m}\n");
    files[1] = write_file(t, "b.yaml",
                          "limits:\n"                          /* 1 */
                          "  - {name: other, key: client_ip, " /* 2 */
                          "count: messages, rate: 10/1m}\n"    /* 2 */
                          "  - name: same\n"                   /* 3 */
                          "    key: client_ip\n"               /* 4 */
                          "    count: messages\n"              /* 5 */
                          "    rate: 10/1m\n"                  /* 6 */
                          "  - {name: other, key: helo, "      /* 7 */
                          "count: messages, rate: 10/1m}\n");  /* 7 */
    assert_null(policy_load(files, 2, &errs));
    assert_int_equal(errs.n, 2);
    assert_true(asprintf(&want,
                         "limits[1].name: duplicate limit name \"same\" "
                         "(also at %s:2)",
                         files[0]) > 0);
    assert_error(&errs, files[1], 3, want);
    free(want);
    assert_true(asprintf(&want,
                         "limits[2].name: duplicate limit name \"other\" "
                         "(also at %s:2)",
                         files[1]) > 0);
    assert_error(&errs, files[1], 7, want);
    free(want);
    errors_free(&errs);
    free(files[0]);
    free(files[1]);
}

/*
 * Which keys each count accepts: connections are counted at connect, with
 * no HELO, user or envelope yet, and a recipient domain exists per
 * recipient only.
 */
static void test_limit_key_count(void **state)
{
    static const char *const counts[] = {"concurrent", "connections",
                                         "messages",   "recipients",
                                         "bytes",      "failures"};
    static const struct {
        const char *key;
        const char *ok; /* per count, in the order above */
    } keys[] = {
        {"client_ip", "yyyyyy"},     {"client_net", "yyyyyy"},
        {"helo", "nnyyyy"},          {"sender", "nnyyyy"},
        {"sender_domain", "nnyyyy"}, {"rcpt_domain", "nnnynn"},
        {"user", "nnyyyy"},
    };
    struct tdir *t = *state;

    for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
        for (size_t c = 0; c < 6; c++) {
            char *yaml;

            assert_true(asprintf(&yaml,
                                 "limits:\n"
                                 "  - name: x\n"
                                 "    key: [client_ip, %s]\n"
                                 "    count: %s\n"
                                 "    rate: %s\n",
                                 keys[k].key, counts[c],
                                 c == 0 ? "5" : "5/1m") > 0);
            if (strcmp(keys[k].key, "client_ip") == 0) {
                expect_one_error(t, yaml, 3, "\"client_ip\" is listed twice");
            } else if (keys[k].ok[c] == 'y') {
                policy_free(expect_valid(t, yaml));
            } else {
                char want[128];
                snprintf(want, sizeof(want), "limits[0].key: \"%s\" %s",
                         keys[k].key,
                         c < 2 ? "cannot key a count of connections"
                               : "works only with count: recipients");
                expect_one_error(t, yaml, 3, want);
            }
            free(yaml);
        }
    }
}

static void test_limit_rates(void **state)
{
    static const struct {
        const char *count, *rate; /* rate as YAML source */
        const char *error;        /* NULL: valid */
        size_t nwindows;
        uint64_t n0, p0, n1, p1;
    } cases[] = {
        {"messages", "100/1m", NULL, 1, 100, 60000, 0, 0},
        {"messages", "100/m", NULL, 1, 100, 60000, 0, 0},
        {"messages", "[20/1m, 500/1d]", NULL, 2, 20, 60000, 500, 86400000},
        {"messages", "[1/1s, 2/1m, 3/1h, 4/1d]", NULL, 4, 1, 1000, 2, 60000},
        {"bytes", "10m/1h", NULL, 1, 10485760, 3600000, 0, 0},
        {"recipients", "2K/30s", NULL, 1, 2048, 30000, 0, 0},
        {"concurrent", "10", NULL, 1, 10, 0, 0, 0},
        {"concurrent", "\"100000\"", NULL, 1, 100000, 0, 0, 0},
        {"messages", "100",
         "limits[0].rate: \"100\": expected N/period, e.g. 100/1m", 0, 0, 0, 0,
         0},
        {"messages", "0/1m", "\"0/1m\": the count must be a positive number", 0,
         0, 0, 0, 0},
        {"messages", "100/1x",
         "\"100/1x\": the period must be like 30s, 1m, 2h or 1d", 0, 0, 0, 0,
         0},
        {"messages", "100/0s", "the period must be like", 0, 0, 0, 0, 0},
        {"messages", "1.5/1m", "the count must be a positive number", 0, 0, 0,
         0, 0},
        {"messages", "[1/1s, 2/1m, 3/1h, 4/1d, 5/2d]",
         "limits[0].rate: expected 1 to 4 rates like 100/1m", 0, 0, 0, 0, 0},
        {"messages", "[]", "limits[0].rate: expected 1 to 4 rates", 0, 0, 0, 0,
         0},
        {"messages", "", "limits[0].rate: expected 1 to 4 rates", 0, 0, 0, 0,
         0},
        {"messages", "[10/1m, 20/60s]",
         "limits[0].rate: \"20/60s\": same period as 10/1m; one rate per "
         "period",
         0, 0, 0, 0, 0},
        {"messages", "{a: 1}", "limits[0].rate: expected a list, got a mapping",
         0, 0, 0, 0, 0},
        {"messages", "[[1/1m]]",
         "limits[0].rate: expected a string, got a list", 0, 0, 0, 0, 0},
        {"concurrent", "10/1m",
         "limits[0].rate: \"10/1m\": count: concurrent takes a number of "
         "connections open at once, e.g. rate: 10",
         0, 0, 0, 0, 0},
        {"concurrent", "[10]", "e.g. rate: 10; got a list", 0, 0, 0, 0, 0},
        {"concurrent", "", "e.g. rate: 10; got nothing", 0, 0, 0, 0, 0},
        {"concurrent", "0", "limits[0].rate: must be at least 1", 0, 0, 0, 0,
         0},
        {"concurrent", "100001", "limits[0].rate: must be at most 100000", 0, 0,
         0, 0, 0},
        {"concurrent", "-1", "\"-1\": count: concurrent takes a number", 0, 0,
         0, 0, 0},
    };
    struct tdir *t = *state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *yaml;

        assert_true(asprintf(&yaml,
                             "limits:\n"
                             "  - name: x\n"
                             "    key: client_ip\n"
                             "    count: %s\n"
                             "    rate: %s\n",
                             cases[i].count, cases[i].rate) > 0);
        if (cases[i].error) {
            expect_one_error(t, yaml, 5, cases[i].error);
        } else {
            struct policy *p = expect_valid(t, yaml);
            const struct limit_rule *r = &p->limits[0];
            assert_int_equal(r->nwindows, cases[i].nwindows);
            assert_window(&r->windows[0], cases[i].n0, cases[i].p0, 0);
            if (cases[i].nwindows > 1)
                assert_window(&r->windows[1], cases[i].n1, cases[i].p1, 0);
            policy_free(p);
        }
        free(yaml);
    }
}

static void test_limit_burst(void **state)
{
    struct tdir *t = *state;
    const struct limit_rule *r;
    struct policy *p;

    p = expect_valid(t, "limits:\n"
                        "  - name: x\n"
                        "    key: client_ip\n"
                        "    count: messages\n"
                        "    rate: [10/1m, 100/1d]\n"
                        "    burst: 1000\n");
    r = &p->limits[0];
    /* one burst for every window; at most 100 times the smallest N */
    assert_window(&r->windows[0], 10, 60000, 1000);
    assert_window(&r->windows[1], 100, 86400000, 1000);
    policy_free(p);

    p = expect_valid(t, "limits:\n"
                        "  - name: x\n"
                        "    key: client_ip\n"
                        "    count: messages\n"
                        "    rate: 10/1m\n"
                        "    burst: 1\n");
    assert_window(&p->limits[0].windows[0], 10, 60000, 1);
    policy_free(p);

    expect_one_error(t,
                     "limits:\n"
                     "  - name: x\n"
                     "    key: client_ip\n"
                     "    count: messages\n"
                     "    rate: [100/1d, 10/1m]\n"
                     "    burst: 1001\n",
                     6,
                     "limits[0].burst: must be at most 1000 (100 times the "
                     "smallest rate's N)");
    expect_one_error(t,
                     "limits:\n"
                     "  - name: x\n"
                     "    key: client_ip\n"
                     "    count: messages\n"
                     "    rate: 10/1m\n"
                     "    burst: 0\n",
                     6, "limits[0].burst: must be at least 1");
    expect_one_error(t,
                     "limits:\n"
                     "  - name: x\n"
                     "    key: client_ip\n"
                     "    count: concurrent\n"
                     "    rate: 10\n"
                     "    burst: 5\n",
                     6, "limits[0].burst: does not apply to count: concurrent");
    expect_one_error(t,
                     "limits:\n"
                     "  - name: x\n"
                     "    key: client_ip\n"
                     "    count: bytes\n"
                     "    rate: 1m/1h\n"
                     "    burst: lots\n",
                     6, "limits[0].burst: expected a number, got \"lots\"");
}

static void test_limit_replies(void **state)
{
    static const struct {
        const char *count, *action; /* NULL action: none given */
        const char *reply;          /* YAML source; NULL: none given */
        const char *error;          /* NULL: valid */
        unsigned line;              /* of the error */
        int code;
        const char *enh, *text;
    } cases[] = {
        /* defaults */
        {"messages", NULL, NULL, NULL, 0, 451, "4.7.1",
         "Rate limit exceeded, try again later"},
        {"messages", "tempfail", NULL, NULL, 0, 451, "4.7.1",
         "Rate limit exceeded, try again later"},
        {"failures", "reject", NULL, NULL, 0, 550, "5.7.1",
         "Rate limit exceeded"},
        {"concurrent", NULL, NULL, NULL, 0, 421, "4.7.0",
         "Too many connections from you, try again later"},
        {"concurrent", "reject", NULL, NULL, 0, 550, "5.7.1",
         "Rate limit exceeded"},
        {"connections", NULL, NULL, NULL, 0, 451, "4.7.1",
         "Rate limit exceeded, try again later"},
        /* the admin's own */
        {"messages", NULL, "\"421 4.7.0 Bye\"", NULL, 0, 421, "4.7.0", "Bye"},
        {"messages", "tempfail", "\"450 Slow down\"", NULL, 0, 450, "",
         "Slow down"},
        {"concurrent", NULL, "\"451 4.7.1 Later\"", NULL, 0, 451, "4.7.1",
         "Later"},
        {"messages", "reject", "\"554 5.7.1 No\"", NULL, 0, 554, "5.7.1", "No"},
        {"messages", "reject", "\"550 No more\"", NULL, 0, 550, "", "No more"},
        /* wrong */
        {"messages", NULL, "\"452 4.5.3 Too many\"",
         "limits[0].reply: \"452 4.5.3 Too many\": a tempfail limit needs "
         "reply code 421, 450 or 451",
         7, 0, NULL, NULL},
        {"messages", "tempfail", "\"550 5.7.1 x\"",
         "a tempfail limit needs a 4xx reply code", 7, 0, NULL, NULL},
        {"messages", "reject", "\"553 5.7.1 x\"",
         "a reject limit needs reply code 550 or 554", 7, 0, NULL, NULL},
        {"messages", "reject", "\"451 4.7.1 x\"",
         "a reject limit needs a 5xx reply code", 7, 0, NULL, NULL},
        {"messages", "reject", "\"550 4.7.1 x\"",
         "enhanced code class 4 does not match 550", 7, 0, NULL, NULL},
        {"messages", NULL, "\"451 5.7.1 x\"",
         "enhanced code class 5 does not match 451", 7, 0, NULL, NULL},
        {"messages", NULL, "\"451 4.7.1 Caf\\u00e9\"", "printable ASCII", 7, 0,
         NULL, NULL},
        {"messages", NULL, "\"451\"", "expected a space", 7, 0, NULL, NULL},
        {"messages", NULL, "\"Slow down\"", "3-digit reply code", 7, 0, NULL,
         NULL},
        {"messages", NULL, "[451]", "limits[0].reply: expected a string", 7, 0,
         NULL, NULL},
        {"messages", "drop", NULL,
         "limits[0].action: expected one of tempfail, reject, got \"drop\"", 6,
         0, NULL, NULL},
    };
    struct tdir *t = *state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *yaml;

        assert_true(
            asprintf(&yaml,
                     "limits:\n"
                     "  - name: x\n"
                     "    key: client_ip\n"
                     "    count: %s\n"
                     "    rate: %s\n"
                     "    %s%s\n"  /* 6 */
                     "    %s%s\n", /* 7 */
                     cases[i].count,
                     strcmp(cases[i].count, "concurrent") == 0 ? "10" : "10/1m",
                     /* a harmless key where none is given */
                     cases[i].action ? "action: " : "dry_run: false",
                     cases[i].action ? cases[i].action : "",
                     cases[i].reply ? "reply: " : "authenticated: no",
                     cases[i].reply ? cases[i].reply : "") > 0);
        if (cases[i].error) {
            expect_one_error(t, yaml, cases[i].line, cases[i].error);
        } else {
            struct policy *p = expect_valid(t, yaml);
            assert_reply(&p->limits[0].reply, cases[i].code, cases[i].enh,
                         cases[i].text);
            policy_free(p);
        }
        free(yaml);
    }
}

static void test_limit_escalate(void **state)
{
    static const struct {
        const char *action, *escalate; /* escalate: YAML after the key */
        const char *error;             /* NULL: valid */
        unsigned line; /* a mapping's errors are at its first key's line */
    } cases[] = {
        {"tempfail",
         "\n      after: 5\n      within: 10m\n"
         "      reply: \"554 5.7.1 Rate limit exceeded repeatedly\"",
         NULL, 0},
        {"tempfail", "\n      after: 1\n      within: 1h", NULL, 0},
        {"reject", "\n      after: 5\n      within: 10m",
         "limits[0].escalate: only with action: tempfail", 8},
        {"tempfail", "\n      after: 0\n      within: 10m",
         "limits[0].escalate.after: must be at least 1", 8},
        {"tempfail", "\n      after: 2\n      within: 0s",
         "limits[0].escalate.within: must be greater than 0", 9},
        {"tempfail", "\n      within: 10m",
         "limits[0].escalate: after is required", 8},
        {"tempfail", " {after: 3}", "limits[0].escalate: within is required",
         7},
        {"tempfail",
         "\n      after: 2\n      within: 1m\n      reply: \"451 4.7.1 x\"",
         "limits[0].escalate.reply: \"451 4.7.1 x\": an escalation needs a "
         "5xx reply code",
         10},
        {"tempfail",
         "\n      after: 2\n      within: 1m\n      reply: \"553 5.7.1 x\"",
         "an escalation needs reply code 550 or 554", 10},
        {"tempfail", "\n      after: 2\n      within: 1m\n      times: 2",
         "unknown key \"times\" in limits[0].escalate", 10},
        {"tempfail", " 5",
         "limits[0].escalate: expected a mapping, got a string", 7},
    };
    struct tdir *t = *state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *yaml;

        assert_true(asprintf(&yaml,
                             "limits:\n"
                             "  - name: x\n"
                             "    key: client_ip\n"
                             "    count: messages\n"
                             "    rate: 10/1m\n"
                             "    action: %s\n"
                             "    escalate:%s\n",
                             cases[i].action, cases[i].escalate) > 0);
        if (cases[i].error) {
            expect_one_error(t, yaml, cases[i].line, cases[i].error);
        } else {
            struct policy *p = expect_valid(t, yaml);
            const struct limit_rule *r = &p->limits[0];
            if (i == 0) {
                assert_int_equal(r->escalate_after, 5);
                assert_int_equal(r->escalate_within_ms, 600000);
                assert_reply(&r->escalate_reply, 554, "5.7.1",
                             "Rate limit exceeded repeatedly");
            } else {
                assert_int_equal(r->escalate_after, 1);
                assert_int_equal(r->escalate_within_ms, 3600000);
                assert_reply(&r->escalate_reply, 550, "5.7.1",
                             "Rate limit exceeded");
            }
            assert_reply(&r->reply, 451, "4.7.1",
                         "Rate limit exceeded, try again later");
            policy_free(p);
        }
        free(yaml);
    }
}

static void test_limit_entry_errors(void **state)
{
    struct tdir *t = *state;
    struct errors errs = {0};
    char *path;

    assert_null(load_one(t,
                         "limits:\n"                                 /* 1 */
                         "  - name: \"bad name\"\n"                  /* 2 */
                         "    key: ip\n"                             /* 3 */
                         "    count: message\n"                      /* 4 */
                         "    rate: 100/1x\n"                        /* 5 */
                         "  - key: client_ip\n"                      /* 6 */
                         "  - name: two\n"                           /* 7 */
                         "    key: [client_ip, client_ip, sender]\n" /* 8 */
                         "    count: connections\n"                  /* 9 */
                         "    rate: 10/1m\n"                         /* 10 */
                         "    limit: 5\n"                            /* 11 */
                         "  - name: three\n"                         /* 12 */
                         "    key: []\n"                             /* 13 */
                         "    count: messages\n"                     /* 14 */
                         "    rate: 10/1m\n"                         /* 15 */
                         "  - name: four\n"                          /* 16 */
                         "    key: [helo, rcpt_domain]\n"            /* 17 */
                         "    count: messages\n"                     /* 18 */
                         "    rate: 10/1m\n"                         /* 19 */
                         "  - name: "
                         "abcdefghijabcdefghijabcdefghijabcdefghijab"
                         "cdefghijabcdefghijabcd\n" /* 20 */
                         "    count: recipients\n"  /* 21 */
                         "    rate: 10/1m\n"        /* 22 */
                         "  - name: six\n"          /* 23 */
                         "    key: client_ip\n"     /* 24 */
                         "    count: messages\n"    /* 25 */
                         "    rate: 10/1m\n"        /* 26 */
                         "    client_net_v4: 16\n"  /* 27 */
                         "    client_net_v6: 129\n" /* 28 */
                         "  - name: seven\n"        /* 29 */
                         "    key: client_net\n"    /* 30 */
                         "    count: messages\n"    /* 31 */
                         "    rate: 10/1m\n"        /* 32 */
                         "    client_net_v4: 7\n"   /* 33 */
                         "    client_net_v6: 15\n"  /* 34 */
                         "  - just a string\n"      /* 35 */
                         "  -\n",                   /* 36 */
                         &path, &errs));
    assert_error(&errs, path, 2,
                 "limits[0].name: \"bad name\": use 1-63 of A-Z a-z 0-9 _ . -");
    assert_error(&errs, path, 3,
                 "limits[0].key: \"ip\" is not one of client_ip, client_net, "
                 "helo, sender, sender_domain, rcpt_domain, user");
    assert_error(&errs, path, 4,
                 "limits[0].count: expected one of concurrent, connections, "
                 "messages, recipients, bytes, failures, got \"message\"");
    assert_error(&errs, path, 6, "limits[1]: name is required");
    assert_error(&errs, path, 6, "limits[1]: count is required");
    assert_error(&errs, path, 6, "limits[1]: rate is required");
    assert_error(&errs, path, 8,
                 "limits[2].key: \"client_ip\" is listed twice");
    assert_error(&errs, path, 8,
                 "limits[2].key: \"sender\" cannot key a count of "
                 "connections: connections are counted when the client "
                 "connects");
    assert_error(&errs, path, 11, "unknown key \"limit\" in limits[2]");
    assert_error(&errs, path, 13,
                 "limits[3].key: at least one key is required");
    assert_error(&errs, path, 17,
                 "limits[4].key: \"rcpt_domain\" works only with count: "
                 "recipients");
    assert_error(&errs, path, 20, "limits[5].name: \"abcdefghij");
    assert_error(&errs, path, 20, "limits[5]: key is required");
    assert_error(&errs, path, 27,
                 "limits[6].client_net_v4: only used with key: client_net");
    assert_error(&errs, path, 28,
                 "limits[6].client_net_v6: must be at most 128");
    assert_error(&errs, path, 33,
                 "limits[7].client_net_v4: must be at least 8");
    assert_error(&errs, path, 34,
                 "limits[7].client_net_v6: must be at least 16");
    assert_error(&errs, path, 35,
                 "limits[8]: expected a mapping, got a string");
    assert_error(&errs, path, 36, "limits[9]: name is required");
    assert_error(&errs, path, 36, "limits[9]: key is required");
    assert_error(&errs, path, 36, "limits[9]: count is required");
    assert_error(&errs, path, 36, "limits[9]: rate is required");
    assert_int_equal(errs.n, 22);
    errors_free(&errs);
    free(path);

    expect_one_error(t, "limits:\n  name: x\n", 2,
                     "limits: expected a list, got a mapping");
}

static void test_limit_scope_errors(void **state)
{
    struct tdir *t = *state;
    struct errors errs = {0};
    char *path, *want;

    assert_null(load_one(t,
                         "limits:\n"                              /* 1 */
                         "  - name: x\n"                          /* 2 */
                         "    key: client_ip\n"                   /* 3 */
                         "    count: messages\n"                  /* 4 */
                         "    rate: 10/1m\n"                      /* 5 */
                         "    listeners: []\n"                    /* 6 */
                         "    networks: [192.0.2.1/24, bogus]\n"  /* 7 */
                         "    users: []\n"                        /* 8 */
                         "    authenticated: maybe\n"             /* 9 */
                         "    dry_run: 1\n"                       /* 10 */
                         "    exempt:\n"                          /* 11 */
                         "      networks: [300.0.0.0/8]\n"        /* 12 */
                         "      networks_file: missing.cidr\n"    /* 13 */
                         "      users: [[a]]\n"                   /* 14 */
                         "      senders: [nobody, \"@\", a@b@c, " /* 15 */
                         "\"<a@b>\", \"@.x\", \"a b@c\"]\n"       /* 15 */
                         "      domains: [x]\n"                   /* 16 */
                         "  - name: y\n"                          /* 17 */
                         "    key: client_ip\n"                   /* 18 */
                         "    count: messages\n"                  /* 19 */
                         "    rate: 10/1m\n"                      /* 20 */
                         "    networks: []\n"                     /* 21 */
                         "    exempt: [10.0.0.0/8]\n",            /* 22 */
                         &path, &errs));
    assert_error(&errs, path, 6,
                 "limits[0].listeners: empty list; leave listeners out to "
                 "apply to every listener");
    assert_error(&errs, path, 7, "limits[0].networks: host bits set in");
    assert_error(&errs, path, 7,
                 "limits[0].networks: invalid network \"bogus\"");
    assert_error(&errs, path, 8,
                 "limits[0].users: empty list; leave users out to apply to "
                 "every user");
    assert_error(&errs, path, 9,
                 "limits[0].authenticated: expected true or false, got "
                 "\"maybe\"");
    assert_error(&errs, path, 10,
                 "limits[0].dry_run: expected true or false, got \"1\"");
    assert_error(&errs, path, 12, "limits[0].exempt.networks: invalid network");
    assert_error(&errs, path, 14,
                 "limits[0].exempt.users: expected a string, got a list");
    assert_error(&errs, path, 15,
                 "limits[0].exempt.senders: \"nobody\": expected an address "
                 "(user@example.com) or a domain (@example.com)");
    assert_error(&errs, path, 15, "limits[0].exempt.senders: \"@\": expected");
    assert_error(&errs, path, 15,
                 "limits[0].exempt.senders: \"a@b@c\": expected");
    assert_error(&errs, path, 15,
                 "limits[0].exempt.senders: \"<a@b>\": expected");
    assert_error(&errs, path, 15,
                 "limits[0].exempt.senders: \"@.x\": expected");
    assert_error(&errs, path, 15,
                 "limits[0].exempt.senders: \"a b@c\": expected");
    assert_error(&errs, path, 16,
                 "unknown key \"domains\" in limits[0].exempt");
    assert_error(&errs, path, 21,
                 "limits[1].networks: empty list; leave networks out to "
                 "apply to every client");
    assert_error(&errs, path, 22,
                 "limits[1].exempt: expected a mapping, got a list");
    /* the CIDR file's error names the file itself */
    assert_true(asprintf(&want, "%s/missing.cidr: cannot open: No such file",
                         t->path) > 0);
    for (size_t i = 0; i < errs.n; i++)
        if (strstr(errs.v[i], want))
            goto found;
    dump_errors(&errs);
    fail_msg("no error \"%s\"", want);
found:
    free(want);
    assert_int_equal(errs.n, 18);
    errors_free(&errs);
    free(path);
}

static void test_limit_exempt_file_errors(void **state)
{
    struct tdir *t = *state;
    struct errors errs = {0};
    char *path, *cidrs;

    cidrs = write_file(t, "trusted.cidr", "10.0.0.0/8\n\n192.0.2.1/24\n");
    assert_null(load_one(t,
                         "limits:\n"
                         "  - name: x\n"
                         "    key: client_ip\n"
                         "    count: messages\n"
                         "    rate: 10/1m\n"
                         "    exempt: {networks_file: trusted.cidr}\n",
                         &path, &errs));
    assert_int_equal(errs.n, 1);
    assert_error(&errs, cidrs, 3, "host bits set in \"192.0.2.1/24\"");
    errors_free(&errs);
    free(cidrs);
    free(path);
}

static void test_limit_text_length(void **state)
{
    struct tdir *t = *state;
    char text[402], *yaml;
    struct policy *p;

    /* 399 characters of text fit; 400 do not. */
    memset(text, 'y', 400);
    text[399] = '\0';
    assert_true(asprintf(&yaml,
                         "limits:\n"
                         "  - name: y\n    key: user\n    count: messages\n"
                         "    rate: 1/1s\n    reply: \"451 %s\"\n",
                         text) > 0);
    p = expect_valid(t, yaml);
    assert_int_equal(strlen(limit_named(p, "y")->reply.text), 399);
    policy_free(p);
    free(yaml);

    text[399] = 'y';
    text[400] = '\0';
    assert_true(asprintf(&yaml,
                         "limits:\n  - name: y\n    key: user\n"
                         "    count: messages\n    rate: 1/1s\n"
                         "    reply: \"451 %s\"\n",
                         text) > 0);
    expect_one_error(t, yaml, 6, "text longer than 399 characters");
    free(yaml);
}

/* The shipped examples load, together with access.yaml. */
static void test_example_limits(void **state)
{
    static const char *const names[] = {"access", "limits-inbound",
                                        "limits-outbound"};
    const char *src = getenv("WARDEN_SOURCE_DIR");
    const struct limit_rule *r;
    struct errors errs = {0};
    struct policy *p;
    char *paths[3];
    bool dry = false, exempt = false;

    if (!src)
        skip();
    for (int i = 0; i < 3; i++)
        assert_true(asprintf(&paths[i], "%s/policies/%s.yaml", src, names[i]) >
                    0);
    p = policy_load(paths, 3, &errs);
    if (!p)
        dump_errors(&errs);
    assert_non_null(p);
    assert_true(p->naccess >= 2);
    assert_true(p->nlimits >= 8);

    /* inbound: the five kinds the README promises, an exemption, dry-run */
    for (size_t i = 0; i < p->nlimits; i++) {
        dry |= p->limits[i].dry_run;
        exempt |= p->limits[i].exempt_networks.n > 0;
    }
    assert_true(dry);
    assert_true(exempt);
    r = limit_named(p, "inbound-concurrent-per-ip");
    assert_int_equal(r->count, LIMIT_CONCURRENT);
    assert_int_equal(r->keys, LK_CLIENT_IP);
    assert_int_equal(r->reply.code, 421);
    r = limit_named(p, "inbound-connections-per-ip");
    assert_int_equal(r->count, LIMIT_CONNECTIONS);
    r = limit_named(p, "inbound-messages-per-net");
    assert_int_equal(r->count, LIMIT_MESSAGES);
    assert_int_equal(r->keys, LK_CLIENT_NET);
    r = limit_named(p, "inbound-recipients-per-sender-domain");
    assert_int_equal(r->count, LIMIT_RECIPIENTS);
    assert_int_equal(r->keys, LK_SENDER_DOMAIN);
    r = limit_named(p, "inbound-failures-per-ip");
    assert_int_equal(r->count, LIMIT_FAILURES);

    /* outbound: hourly and daily quotas in one limit, with a 4xx */
    r = limit_named(p, "outbound-messages-per-user");
    assert_int_equal(r->keys, LK_USER);
    assert_int_equal(r->nwindows, 2);
    assert_int_equal(r->windows[0].period_ms, 3600000);
    assert_int_equal(r->windows[1].period_ms, 86400000);
    assert_int_equal(r->reply.code / 100, 4);
    r = limit_named(p, "outbound-recipients-per-user");
    assert_int_equal(r->count, LIMIT_RECIPIENTS);
    assert_int_equal(r->windows[0].period_ms, 86400000);
    assert_true(r->escalate_after > 0);
    assert_int_equal(r->escalate_reply.code / 100, 5);
    r = limit_named(p, "outbound-bytes-per-user");
    assert_int_equal(r->count, LIMIT_BYTES);
    assert_int_equal(r->windows[0].period_ms, 86400000);

    policy_free(p);
    for (int i = 0; i < 3; i++)
        free(paths[i]);
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
        T(test_limits_good),
        T(test_limits_defaults),
        T(test_limits_merge_and_empty),
        T(test_limit_names_unique),
        T(test_limit_key_count),
        T(test_limit_rates),
        T(test_limit_burst),
        T(test_limit_replies),
        T(test_limit_escalate),
        T(test_limit_entry_errors),
        T(test_limit_scope_errors),
        T(test_limit_exempt_file_errors),
        T(test_limit_text_length),
        T(test_example_limits),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
