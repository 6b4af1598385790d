/*
 * Unit tests for SASL user extraction.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "sasl.h"

static const char *user(const char *mech, const char *b64)
{
    static char buf[128];
    sasl_user(mech, b64, strlen(b64), buf, sizeof(buf));
    return buf;
}

static void test_mechanisms(void **state)
{
    /* "\0alice\0secret" */
    assert_string_equal(user("PLAIN", "AGFsaWNlAHNlY3JldA=="), "alice");
    /* "admin\0alice\0secret": the authentication identity is alice */
    assert_string_equal(user("plain", "YWRtaW4AYWxpY2UAc2VjcmV0"), "alice");
    assert_string_equal(user("LOGIN", "Ym9i"), "bob");
    /* "carol 0123abcd" */
    assert_string_equal(user("CRAM-MD5", "Y2Fyb2wgMDEyM2FiY2Q="), "carol");
    /* "n,,n=dave,r=abc" */
    assert_string_equal(user("SCRAM-SHA-256", "biwsbj1kYXZlLHI9YWJj"), "dave");
    /* "user=erin\x01auth=Bearer x\x01\x01" */
    assert_string_equal(user("XOAUTH2", "dXNlcj1lcmluAWF1dGg9QmVhcmVyIHgBAQ=="),
                        "erin");
}

static void test_garbage(void **state)
{
    assert_string_equal(user("PLAIN", "!!!"), "");
    assert_string_equal(user("PLAIN", "YWxpY2U="), ""); /* no NULs */
    assert_string_equal(user("GSSAPI", "YWxpY2U="), "");
    assert_string_equal(user("LOGIN", "="), "");
}

static void test_base64(void **state)
{
    unsigned char out[16];
    assert_int_equal(sasl_base64_decode("aGVsbG8=", 8, out, sizeof(out)), 5);
    assert_memory_equal(out, "hello", 5);
    assert_int_equal(sasl_base64_decode("aGVsbG8", 7, out, sizeof(out)), 5);
    assert_int_equal(sasl_base64_decode("aGV$bG8=", 8, out, sizeof(out)), -1);
    assert_int_equal(sasl_base64_decode("aGVsbG8=", 8, out, 3), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mechanisms),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_base64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
