/*
 * Unit tests for the dkim, dkim_sign and dmarc policy sections: good
 * files and their defaults, every kind of bad entry reported with its
 * file:line, key files checked at load, the one-section rule across
 * files, DMARC's need for spf and dkim sections, and the signing grants
 * (user patterns, From: domains, parent keys).
 */
#define _GNU_SOURCE /* asprintf */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "dkim_rules.h"
#include "dmarc_rules.h"
#include "errassert.h"
#include "policy.h"
#include "tmpdir.h"

/* A fresh private key in PEM, written to dir/name. */
static void write_key(const struct tdir *t, const char *name, EVP_PKEY *k)
{
    char *path;
    FILE *f;

    assert_true(asprintf(&path, "%s/%s", t->path, name) > 0);
    assert_non_null(f = fopen(path, "w"));
    assert_int_equal(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL),
                     1);
    fclose(f);
    free(path);
    EVP_PKEY_free(k);
}

static void write_keys(const struct tdir *t)
{
    write_key(t, "rsa.pem", EVP_RSA_gen(2048));
    write_key(t, "ed.pem", EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"));
    write_key(t, "rsa1024.pem", EVP_RSA_gen(1024));
    write_key(t, "small.pem", EVP_RSA_gen(512));
    free(write_file(t, "junk.pem", "not a key\n"));
}

static struct policy *load(const struct tdir *t, const char *yaml,
                           char **path, struct errors *errs)
{
    *path = write_file(t, "auth.yaml", yaml);
    return policy_load(path, 1, errs);
}

/* ---- good files ---- */

static const char good_yaml[] =
    "spf: {}\n"                                                    /* 1 */
    "dkim:\n"                                                      /* 2 */
    "  fail: reject\n"                                             /* 3 */
    "  temperror: tempfail 451 4.7.5 \"Try later\"\n"              /* 4 */
    "  permerror: tag\n"                                           /* 5 */
    "  max_signatures: 3\n"                                        /* 6 */
    "  max_message_size: 1m\n"                                     /* 7 */
    "  exempt:\n"                                                  /* 8 */
    "    networks: [192.0.2.0/24]\n"                               /* 9 */
    "dmarc:\n"                                                     /* 10 */
    "  honor_policy: true\n"                                       /* 11 */
    "  policy_quarantine: reject 550 5.7.1 Quarantined\n"          /* 12 */
    "  listeners: [inbound]\n"                                     /* 13 */
    "dkim_sign:\n"                                                 /* 14 */
    "  keys:\n"                                                    /* 15 */
    "    - {domain: Example.COM, selector: s1, key: rsa.pem}\n"    /* 16 */
    "    - {domain: ed.example, selector: e1, key: @D@/rsa1024.pem}\n"
    "  senders:\n"                                                 /* 18 */
    "    - users: [\"*@example.com\"]\n"                           /* 19 */
    "      domains: [example.com, \"*.example.com\"]\n"            /* 20 */
    "    - users: [bob, \"admin?\"]\n"                             /* 21 */
    "      domains: [ed.example]\n";                               /* 22 */

static void test_good(void **state)
{
    struct tdir *t = *state;
    struct errors errs = {0};
    struct policy *p;
    char *path;
    struct netaddr a;

    write_keys(t);
    p = load(t, good_yaml, &path, &errs);
    if (!p)
        dump_errors(&errs);
    assert_non_null(p);
    /* dkim */
    assert_int_equal(p->dkim->on[DKIMV_FAIL].action, AUTH_REJECT);
    assert_int_equal(p->dkim->on[DKIMV_FAIL].reply.code, 550);
    assert_string_equal(p->dkim->on[DKIMV_FAIL].reply.enh, "5.7.20");
    assert_int_equal(p->dkim->on[DKIMV_TEMPERROR].action, AUTH_TEMPFAIL);
    assert_string_equal(p->dkim->on[DKIMV_TEMPERROR].reply.text,
                        "Try later");
    assert_int_equal(p->dkim->on[DKIMV_PERMERROR].action, AUTH_ACCEPT);
    assert_int_equal(p->dkim->on[DKIMV_NONE].action, AUTH_ACCEPT);
    assert_int_equal(p->dkim->max_signatures, 3);
    assert_int_equal(p->dkim->max_message_size, 1024 * 1024);
    netaddr_from_ip(&a, "192.0.2.7", 25);
    assert_false(auth_scope_applies(&p->dkim->scope, "x", &a, false));
    netaddr_from_ip(&a, "198.51.100.7", 25);
    assert_true(auth_scope_applies(&p->dkim->scope, "x", &a, false));
    assert_false(auth_scope_applies(&p->dkim->scope, "x", &a, true));
    /* dmarc */
    assert_true(p->dmarc->honor_policy);
    assert_int_equal(p->dmarc->policy_reject.action, AUTH_REJECT);
    assert_int_equal(p->dmarc->policy_reject.reply.code, 550);
    assert_int_equal(p->dmarc->policy_quarantine.action, AUTH_REJECT);
    assert_string_equal(p->dmarc->policy_quarantine.reply.text,
                        "Quarantined");
    assert_int_equal(p->dmarc->fail.action, AUTH_ACCEPT);
    assert_non_null(p->dmarc->psl);
    assert_false(auth_scope_applies(&p->dmarc->scope, "outbound", &a,
                                    false));
    /* dkim_sign */
    assert_int_equal(p->dkim_sign->nkeys, 2);
    assert_string_equal(p->dkim_sign->keys[0].domain, "example.com");
    assert_int_equal(p->dkim_sign->keys[0].alg, DKIMS_RSA_SHA256);
    assert_int_equal(p->dkim_sign->keys[0].bits, 2048);
    assert_int_equal(p->dkim_sign->keys[1].bits, 1024);
    policy_free(p);
    free(path);
    errors_free(&errs);
}

static void test_defaults_only_tag(void **state)
{
    struct tdir *t = *state;
    struct errors errs = {0};
    char *path;
    struct policy *p = load(t, "spf:\ndkim:\ndmarc:\n", &path, &errs);

    assert_non_null(p);
    for (int r = 0; r < DKIMV__COUNT; r++)
        assert_int_equal(p->dkim->on[r].action, AUTH_ACCEPT);
    assert_int_equal(p->dkim->max_signatures, DKIMV_SIGS_DEFAULT);
    assert_false(p->dmarc->honor_policy);
    assert_int_equal(p->dmarc->fail.action, AUTH_ACCEPT);
    assert_int_equal(p->dmarc->temperror.action, AUTH_ACCEPT);
    assert_null(p->dkim_sign);
    policy_free(p);
    free(path);
    errors_free(&errs);
}

/* ---- errors ---- */

static const char bad_yaml[] =
    "spf: {}\n"                                                    /* 1 */
    "dkim:\n"                                                      /* 2 */
    "  fail: bounce\n"                                             /* 3 */
    "  pass: reject\n"                                             /* 4 */
    "  none: accept 250 ok\n"                                      /* 5 */
    "  temperror: tempfail 550 5.7.1 wrong class\n"                /* 6 */
    "  max_signatures: 0\n"                                        /* 7 */
    "  max_message_size: lots\n"                                   /* 8 */
    "  exempt: {networks: [300.1.2.3]}\n"                          /* 9 */
    "  colour: blue\n"                                             /* 10 */
    "dmarc:\n"                                                     /* 11 */
    "  policy_reject: reject 550 4.7.1 mismatch\n"                 /* 12 */
    "  public_suffix_list: nowhere.dat\n"                          /* 13 */
    "dkim_sign:\n"                                                 /* 14 */
    "  keys:\n"                                                    /* 15 */
    "    - {domain: missing.example, selector: s, key: missing.pem}\n"
    "    - {domain: ex ample.com, selector: s1, key: junk.pem}\n"  /* 17 */
    "    - {domain: example.com, selector: s.1, key: rsa.pem}\n"   /* 18 */
    "    - {domain: EXAMPLE.com, selector: s2, key: small.pem}\n"  /* 19 */
    "    - {selector: s3}\n"                                       /* 20 */
    "  senders:\n"                                                 /* 21 */
    "    - users: []\n"                                            /* 22 */
    "      domains: [nokey.example]\n"                             /* 23 */
    "    - domains: [example.com]\n";                              /* 24 */

static void test_errors(void **state)
{
    struct tdir *t = *state;
    struct errors errs = {0};
    char *path;

    write_keys(t);
    assert_null(load(t, bad_yaml, &path, &errs));
    assert_error(&errs, path, 3, "dkim.fail: \"bounce\": expected accept");
    assert_error(&errs, path, 4, "a pass is never refused");
    assert_error(&errs, path, 5, "accept sends no reply");
    assert_error(&errs, path, 6, "a tempfail needs a 4xx reply code");
    assert_error(&errs, path, 7, "dkim.max_signatures");
    assert_error(&errs, path, 8, "dkim.max_message_size");
    assert_error(&errs, path, 9, "300.1.2.3");
    assert_error(&errs, path, 10, "colour");
    assert_error(&errs, path, 12, "enhanced code class 4 does not match");
    assert_error(&errs, path, 13, "dmarc.public_suffix_list: cannot open");
    assert_error(&errs, path, 16, "cannot read");
    assert_error(&errs, path, 17, "\"ex ample.com\" is not a domain name");
    assert_error(&errs, path, 17, "not a PEM private key");
    assert_error(&errs, path, 19, "a 512-bit RSA key");
    assert_error(&errs, path, 19, "EXAMPLE.com already has a key at");
    assert_error(&errs, path, 20, "domain is required");
    assert_error(&errs, path, 20, "key (a PEM private key file) is required");
    assert_error(&errs, path, 22, "dkim_sign.senders[0].users: empty list");
    assert_error(&errs, path, 23, "no key in dkim_sign.keys signs for "
                                  "nokey.example");
    assert_error(&errs, path, 24, "users is required");
    free(path);
    errors_free(&errs);
}

/* Ed25519 signing keys are refused while the library leaks them. */
static void test_ed25519_signing_key(void **state)
{
    struct tdir *t = *state;
    struct errors errs = {0};
    struct policy *p;
    char *path;

    write_keys(t);
    p = load(t,
             "dkim_sign:\n"
             "  keys: [{domain: ed.example, selector: e, key: ed.pem}]\n"
             "  senders: [{users: [bob], domains: [ed.example]}]\n",
             &path, &errs);
    if (DKIMS_ED25519_SIGNING) {
        assert_non_null(p);
        assert_int_equal(p->dkim_sign->keys[0].alg, DKIMS_ED25519_SHA256);
        policy_free(p);
    } else {
        assert_null(p);
        assert_error(&errs, path, 2, "an Ed25519 key: not used for signing");
    }
    free(path);
    errors_free(&errs);
}

static void test_dmarc_needs_spf_and_dkim(void **state)
{
    struct tdir *t = *state;
    struct errors errs = {0};
    char *path;

    assert_null(load(t, "dkim: {}\ndmarc: {}\n", &path, &errs));
    assert_error(&errs, path, 2, "dmarc needs an spf section");
    errors_free(&errs);
    free(path);
    memset(&errs, 0, sizeof(errs));
    assert_null(load(t, "dmarc: {}\n", &path, &errs));
    assert_error(&errs, path, 1, "dmarc needs spf and dkim sections");
    errors_free(&errs);
    free(path);
}

static void test_one_section_in_all_files(void **state)
{
    struct tdir *t = *state;
    struct errors errs = {0};
    char *files[2];

    files[0] = write_file(t, "a.yaml", "dkim: {}\n");
    files[1] = write_file(t, "b.yaml", "dkim:\n  fail: reject\n");
    assert_null(policy_load(files, 2, &errs));
    assert_error(&errs, files[1], 2, "already set at");
    free(files[0]);
    free(files[1]);
    errors_free(&errs);
}

/* ---- grants ---- */

static void test_grants(void **state)
{
    struct tdir *t = *state;
    struct errors errs = {0};
    struct policy *p;
    const struct dkims_key *k;
    char *path;

    write_keys(t);
    p = load(t, good_yaml, &path, &errs);
    assert_non_null(p);
    assert_true(dkims_allowed(p->dkim_sign, "alice@example.com",
                              "example.com"));
    assert_true(dkims_allowed(p->dkim_sign, "Alice@EXAMPLE.com",
                              "news.example.com"));
    assert_false(dkims_allowed(p->dkim_sign, "alice@example.com",
                               "ed.example"));
    assert_false(dkims_allowed(p->dkim_sign, "alice@example.org",
                               "example.com"));
    assert_true(dkims_allowed(p->dkim_sign, "bob", "ed.example"));
    assert_true(dkims_allowed(p->dkim_sign, "admin1", "ed.example"));
    assert_false(dkims_allowed(p->dkim_sign, "admin12", "ed.example"));
    assert_false(dkims_allowed(p->dkim_sign, "bob", "sub.ed.example"));
    /* keys: own, then the nearest parent's */
    assert_non_null(k = dkims_key_for(p->dkim_sign, "news.example.com"));
    assert_string_equal(k->domain, "example.com");
    assert_non_null(k = dkims_key_for(p->dkim_sign, "ED.example"));
    assert_string_equal(k->selector, "e1");
    assert_null(dkims_key_for(p->dkim_sign, "example.org"));
    assert_null(dkims_key_for(p->dkim_sign, "com"));
    policy_free(p);
    free(path);
    errors_free(&errs);
}

static void test_matchers(void **state)
{
    assert_true(dkims_domain_match("*.example.com", "a.b.example.com"));
    assert_false(dkims_domain_match("*.example.com", "example.com"));
    assert_false(dkims_domain_match("*.example.com", "badexample.com"));
    assert_true(dkims_domain_match("Example.com", "example.COM"));
    assert_true(dkims_user_match("*", "anyone"));
    assert_true(dkims_user_match("*@example.com", "a.b@Example.Com"));
    assert_false(dkims_user_match("*@example.com", "a@example.com.evil"));
    assert_false(dkims_user_match("alice", "alice2"));
}

/* The shipped examples load as they are (dkim-sign.yaml with fresh keys
 * where it expects them, next to a copy of it). */
static void test_shipped_examples(void **state)
{
    struct tdir *t = *state;
    const char *src = getenv("WARDEN_SOURCE_DIR");
    struct errors errs = {0};
    char *paths[4], *text, *dir;
    struct policy *p;
    FILE *f;
    long n;

    if (!src)
        skip();
    assert_true(asprintf(&paths[0], "%s/policies/spf.yaml", src) > 0);
    assert_true(asprintf(&paths[1], "%s/policies/dkim.yaml", src) > 0);
    assert_true(asprintf(&paths[2], "%s/policies/dmarc.yaml", src) > 0);
    assert_true(asprintf(&paths[3], "%s/policies/dkim-sign.yaml", src) > 0);
    assert_non_null(f = fopen(paths[3], "r"));
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    rewind(f);
    text = calloc(1, (size_t)n + 1);
    assert_int_equal(fread(text, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    free(paths[3]);
    paths[3] = write_file(t, "dkim-sign.yaml", text);
    free(text);
    assert_true(asprintf(&dir, "%s/dkim", t->path) > 0);
    assert_int_equal(mkdir(dir, 0700), 0);
    free(dir);
    write_key(t, "dkim/example.com.pem", EVP_RSA_gen(2048));
    write_key(t, "dkim/example.org.pem", EVP_RSA_gen(2048));

    p = policy_load(paths, 4, &errs);
    if (!p)
        dump_errors(&errs);
    assert_non_null(p);
    assert_non_null(p->dkim);
    assert_int_equal(p->dkim->on[DKIMV_TEMPERROR].action, AUTH_TEMPFAIL);
    assert_true(p->dmarc->honor_policy);
    assert_int_equal(p->dkim_sign->nkeys, 2);
    assert_true(dkims_allowed(p->dkim_sign, "carol@example.com",
                              "lists.example.com"));
    assert_false(dkims_allowed(p->dkim_sign, "carol@example.com",
                               "example.org"));
    assert_true(dkims_allowed(p->dkim_sign, "bob@example.com",
                              "example.org"));
    policy_free(p);
    for (int i = 0; i < 4; i++)
        free(paths[i]);
    errors_free(&errs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_good, setup, teardown),
        cmocka_unit_test_setup_teardown(test_defaults_only_tag, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ed25519_signing_key, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_dmarc_needs_spf_and_dkim, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_one_section_in_all_files, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_grants, setup, teardown),
        cmocka_unit_test(test_matchers),
        cmocka_unit_test_setup_teardown(test_shipped_examples, setup,
                                        teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
