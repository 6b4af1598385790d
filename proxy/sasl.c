/*
 * sasl: user names out of SASL first responses.
 */
#include "sasl.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int b64val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

long sasl_base64_decode(const char *in, size_t len, unsigned char *out,
                        size_t cap)
{
    unsigned acc = 0;
    int bits = 0;
    size_t o = 0;

    while (len > 0 && in[len - 1] == '=')
        len--;
    for (size_t i = 0; i < len; i++) {
        int v = b64val((unsigned char)in[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= cap)
                return -1;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    return (long)o;
}

static void copy_field(const unsigned char *p, size_t n, char *user,
                       size_t cap)
{
    size_t o = 0;

    for (size_t i = 0; i < n && o + 1 < cap; i++)
        user[o++] = (p[i] < 32 || p[i] == 127) ? '?' : (char)p[i];
    user[o] = '\0';
}

/*
 * Value of "key" in a list of fields. gs2: a GS2/SCRAM list (fields end at
 * ',' or ^A, the name is a saslname with =2C and =3D escapes). Otherwise
 * XOAUTH2's "user=" {User} "^Aauth=..." where only ^A ends a field and
 * nothing is escaped: reading it as GS2 cut "a,b@example.com" to "a" and
 * turned "a=2Cb" into "a,b" (found by tests/fuzz/fuzz_sasl.c).
 */
static void gs2_field(const unsigned char *p, size_t n, const char *key,
                      bool gs2, char *user, size_t cap)
{
    size_t klen = strlen(key), i = 0;

    while (i < n) {
        size_t start = i;
        while (i < n && p[i] != 1 && !(gs2 && p[i] == ','))
            i++;
        if (i - start > klen && memcmp(p + start, key, klen) == 0) {
            size_t o = 0;
            for (size_t j = start + klen; j < i && o + 1 < cap; j++) {
                if (gs2 && p[j] == '=' && j + 2 < i) {
                    if (p[j + 1] == '2' && p[j + 2] == 'C') {
                        user[o++] = ',';
                        j += 2;
                        continue;
                    }
                    if (p[j + 1] == '3' && p[j + 2] == 'D') {
                        user[o++] = '=';
                        j += 2;
                        continue;
                    }
                }
                /* DEL too, as copy_field does: it let 0x7f through into
                 * logs (found by tests/fuzz/fuzz_sasl.c) */
                user[o++] = (p[j] < 32 || p[j] == 127) ? '?' : (char)p[j];
            }
            user[o] = '\0';
            return;
        }
        i++;
    }
}

void sasl_user(const char *mech, const char *response, size_t len, char *user,
               size_t cap)
{
    unsigned char buf[2048];
    long n;

    /* cap first: with cap 0 there is no byte to write "" into (found by
     * tests/fuzz/fuzz_sasl.c: user[0] was written before this test) */
    if (cap == 0)
        return;
    user[0] = '\0';
    if (len == 0 || (len == 1 && response[0] == '='))
        return;
    n = sasl_base64_decode(response, len, buf, sizeof(buf));
    if (n <= 0)
        return;
    if (strcasecmp(mech, "PLAIN") == 0) {
        /* authzid NUL authcid NUL password: the authcid logged in. */
        unsigned char *a = memchr(buf, '\0', (size_t)n);
        if (!a)
            return;
        unsigned char *b = memchr(a + 1, '\0', (size_t)(buf + n - a - 1));
        if (b)
            copy_field(a + 1, (size_t)(b - a - 1), user, cap);
    } else if (strcasecmp(mech, "LOGIN") == 0) {
        copy_field(buf, (size_t)n, user, cap);
    } else if (strcasecmp(mech, "CRAM-MD5") == 0) {
        unsigned char *sp = memchr(buf, ' ', (size_t)n);
        if (sp)
            copy_field(buf, (size_t)(sp - buf), user, cap);
    } else if (strncasecmp(mech, "SCRAM-", 6) == 0) {
        gs2_field(buf, (size_t)n, "n=", true, user, cap);
    } else if (strcasecmp(mech, "XOAUTH2") == 0) {
        gs2_field(buf, (size_t)n, "user=", false, user, cap);
    } else if (strcasecmp(mech, "OAUTHBEARER") == 0) {
        gs2_field(buf, (size_t)n, "a=", true, user, cap);
    }
    /* scrub the decoded response: it may hold a password */
    memset(buf, 0, sizeof(buf));
}
