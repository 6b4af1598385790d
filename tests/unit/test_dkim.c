/*
 * Unit tests for the DKIM modules' parts that need no DNS: the message's
 * result from its signatures, counting signatures, result names, undoing
 * dot-stuffing (msgbuf), checking keys, and the shape of a signature
 * Warden makes (one line, the tags it promises). Verification against
 * keys in DNS, and dkimpy's view of Warden's signatures, are in the
 * functional tests (test_dkim.py, test_dkim_sign.py).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "dkimsign.h"
#include "dkimverify.h"
#include "msgbuf.h"

static const char msg[] = "From: Alice <alice@example.com>\r\n"
                          "To: bob@example.net\r\n"
                          "Subject: hello\r\n"
                          "X-Not-Signed: yes\r\n"
                          "\r\n"
                          "Body.\r\n";

static void test_summary(void **state)
{
    struct dkimv_outcome o;

    memset(&o, 0, sizeof(o));
    assert_int_equal(dkimv_summary(&o), DKIMV_NONE);
    o.nsig = 3;
    o.found = 3;
    o.sig[0].result = DKIMV_NEUTRAL;
    o.sig[1].result = DKIMV_FAIL;
    o.sig[2].result = DKIMV_PERMERROR;
    assert_int_equal(dkimv_summary(&o), DKIMV_FAIL);
    o.sig[2].result = DKIMV_TEMPERROR;   /* a retry may pass */
    assert_int_equal(dkimv_summary(&o), DKIMV_TEMPERROR);
    o.sig[0].result = DKIMV_PASS;        /* one pass is enough */
    assert_int_equal(dkimv_summary(&o), DKIMV_PASS);
    memset(&o, 0, sizeof(o));
    o.too_large = true;
    assert_int_equal(dkimv_summary(&o), DKIMV_NEUTRAL);
}

static void test_names(void **state)
{
    for (int r = 0; r < DKIMV__COUNT; r++)
        assert_int_equal(dkimv_result_parse(dkimv_result_name(r)), r);
    assert_int_equal(dkimv_result_parse("hardfail"), -1);
}

static void test_count(void **state)
{
    const char two[] = "DKIM-Signature: v=1; a=rsa-sha256\r\n"
                       "dkim-signature: v=1;\r\n b=x\r\n"
                       "From: a@example.com\r\n\r\n"
                       "DKIM-Signature: in the body\r\n";
    const char stuffed[] = ".DKIM-Signature: v=1\r\n\r\n";

    assert_int_equal(dkimv_count(two, strlen(two), false), 2);
    assert_int_equal(dkimv_count(msg, strlen(msg), false), 0);
    assert_int_equal(dkimv_count(stuffed, strlen(stuffed), true), 1);
}

static void test_unstuff(void **state)
{
    char a[] = "..x\r\n.y\r\nz.\r\n...\r\n";
    char b[] = ".first\r\n";
    size_t n;

    n = msgbuf_unstuff(a, strlen(a));
    assert_int_equal(n, strlen(".x\r\ny\r\nz.\r\n..\r\n"));
    assert_memory_equal(a, ".x\r\ny\r\nz.\r\n..\r\n", n);
    n = msgbuf_unstuff(b, strlen(b));
    assert_memory_equal(b, "first\r\n", n);
}

static char *pem_of(EVP_PKEY *k, size_t *len)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data, *out;
    long n;

    assert_int_equal(PEM_write_bio_PrivateKey(bio, k, NULL, NULL, 0, NULL,
                                              NULL),
                     1);
    n = BIO_get_mem_data(bio, &data);
    out = malloc((size_t)n + 1);
    memcpy(out, data, (size_t)n);
    out[n] = '\0';
    *len = (size_t)n;
    BIO_free(bio);
    EVP_PKEY_free(k);
    return out;
}

static void test_key_check(void **state)
{
    enum dkims_alg alg;
    unsigned bits;
    char err[160];
    size_t len;
    char *rsa = pem_of(EVP_RSA_gen(1024), &len);

    assert_int_equal(dkims_key_check(rsa, len, &alg, &bits, err, sizeof(err)),
                     0);
    assert_int_equal(alg, DKIMS_RSA_SHA256);
    assert_int_equal(bits, 1024);
    free(rsa);
    rsa = pem_of(EVP_RSA_gen(512), &len);
    assert_int_equal(dkims_key_check(rsa, len, &alg, &bits, err, sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "at least 1024 bits"));
    free(rsa);
    assert_int_equal(dkims_key_check("junk", 4, &alg, &bits, err,
                                     sizeof(err)),
                     -1);
    rsa = pem_of(EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"), &len);
    assert_int_equal(dkims_key_check(rsa, len, &alg, &bits, err, sizeof(err)),
                     DKIMS_ED25519_SIGNING ? 0 : -1);
    assert_int_equal(alg, DKIMS_ED25519_SHA256);
    if (!DKIMS_ED25519_SIGNING) /* the library leaks: see dkimsign.h */
        assert_non_null(strstr(err, "OpenDKIM PR #321"));
    free(rsa);
    rsa = pem_of(EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"), &len);
    assert_int_equal(dkims_key_check(rsa, len, &alg, &bits, err, sizeof(err)),
                     -1);
    assert_string_equal(err, "neither an RSA nor an Ed25519 key");
    free(rsa);
}

static void expect_signature(const char *pem, size_t len, enum dkims_alg alg,
                             const char *a)
{
    char err[160], want[64];
    char *field;

    (void)len;
    field = dkims_sign(msg, strlen(msg), pem, alg, "example.com", "sel", err,
                       sizeof(err));
    if (!field)
        fail_msg("not signed: %s", err);
    assert_true(strncmp(field, "DKIM-Signature: v=1; ", 21) == 0);
    assert_null(strpbrk(field, "\r\n"));     /* one line, no CRLF */
    assert_true(strlen(field) < 998);
    snprintf(want, sizeof(want), "a=%s;", a);
    assert_non_null(strstr(field, want));
    assert_non_null(strstr(field, "c=relaxed/relaxed;"));
    assert_non_null(strstr(field, "d=example.com;"));
    assert_non_null(strstr(field, "s=sel;"));
    /* the usual fields, From once more; nothing else */
    assert_non_null(strstr(field, "h=From:To:Subject:from;"));
    free(field);
}

static void test_sign_shape(void **state)
{
    size_t len;
    char *rsa = pem_of(EVP_RSA_gen(4096), &len);

    expect_signature(rsa, len, DKIMS_RSA_SHA256, "rsa-sha256");
    free(rsa);
#if DKIMS_ED25519_SIGNING
    char *ed = pem_of(EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"), &len);
    expect_signature(ed, len, DKIMS_ED25519_SHA256, "ed25519-sha256");
    free(ed);
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_summary),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_count),
        cmocka_unit_test(test_unstuff),
        cmocka_unit_test(test_key_check),
        cmocka_unit_test(test_sign_shape),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
