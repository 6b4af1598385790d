/*
 * libFuzzer target for SASL response decoding (proxy/sasl.h) and the
 * XCLIENT encoding of untrusted values (proxy/xclient.h).
 *
 * Input: 5 header bytes, then a payload.
 *   [0]    a capacity (user name buffer, decode buffer)
 *   [1]    flags: which xclient_info strings are NULL, name_status, IPv6
 *   [2..3] announced XCLIENT attributes (9 bits, big-endian)
 *   [4]    maxlines for xclient_build (0..XCLIENT_MAX_LINES)
 *
 * Every buffer handed to the code under test is a heap block of exactly
 * the size it is told, so ASan sees a write or read one byte past it.
 * Beyond "does not crash", it checks:
 *   - sasl_base64_decode: -1 for a character outside the alphabet or an
 *     '=' before the end, else floor(6n/8) bytes if they fit in cap and -1
 *     if not; what it decodes encodes back to the input; and for any
 *     bytes, decode(reference_encode(bytes)), padded or not, gives them
 *     back;
 *   - sasl_user, for every mechanism and cap (0 included): the result is
 *     NUL-terminated within cap and holds no control character (so no
 *     CR/LF reaches a log line or an XCLIENT command); it equals a
 *     reference for PLAIN, LOGIN and CRAM-MD5; and a name put into a
 *     well-formed PLAIN, LOGIN, CRAM-MD5, SCRAM, OAUTHBEARER or XOAUTH2
 *     response comes back out (sanitised, truncated to cap - 1);
 *   - xclient_build with fuzzed HELO, NAME, REVERSE_NAME, PROTO, LOGIN and
 *     addresses: at most maxlines commands "XCLIENT ...\r\n" of at most 512
 *     octets, only announced attributes, each once, values in xtext that
 *     decodes to exactly the value given, and no attribute left out unless
 *     it cannot fit in a command or the lines ran out.
 *
 * contrib/fuzz.sh sasl
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sasl.h"
#include "xclient.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#include "fuzzcheck.h"

#define HEADER 5
/* sasl_user decodes into a buffer of this size; longer responses give "". */
#define SASL_DECODE_MAX 2048

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);

    if (!p)
        abort();
    return p;
}

/*
 * A heap block of exactly n bytes. For n == 0 it points just past a 1-byte
 * block (ASan lets malloc(0)'s byte be used), so any access is reported.
 * Free with release(p, n).
 */
static unsigned char *exact(size_t n)
{
    unsigned char *p = n ? malloc(n) : calloc(1, 1);

    if (!p)
        abort();
    return n ? p : p + 1;
}

static void release(void *p, size_t n)
{
    free(n ? p : (unsigned char *)p - 1);
}

/* ---- reference base64 ----------------------------------------------------- */

static const char b64chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* RFC 4648 encoding of in[0..n) into a new NUL-terminated string. */
static char *b64_encode(const unsigned char *in, size_t n, bool pad,
                        size_t *outlen)
{
    char *out = xmalloc(4 * ((n + 2) / 3) + 1);
    size_t o = 0, i = 0;

    for (; i + 3 <= n; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
        out[o++] = b64chars[v >> 18];
        out[o++] = b64chars[(v >> 12) & 63];
        out[o++] = b64chars[(v >> 6) & 63];
        out[o++] = b64chars[v & 63];
    }
    if (n - i == 1) {
        unsigned v = (unsigned)in[i] << 16;
        out[o++] = b64chars[v >> 18];
        out[o++] = b64chars[(v >> 12) & 63];
        if (pad) {
            out[o++] = '=';
            out[o++] = '=';
        }
    } else if (n - i == 2) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8;
        out[o++] = b64chars[v >> 18];
        out[o++] = b64chars[(v >> 12) & 63];
        out[o++] = b64chars[(v >> 6) & 63];
        if (pad)
            out[o++] = '=';
    }
    out[o] = '\0';
    *outlen = o;
    return out;
}

static bool in_alphabet(unsigned char c)
{
    return c != '\0' && strchr(b64chars, c) != NULL;
}

/* ---- sasl_base64_decode --------------------------------------------------- */

/* in[0..len) as a client sent it. */
static void check_decode(const char *in, size_t len, size_t cap_hint)
{
    size_t q = len, want;
    bool valid = true;
    unsigned char *out;
    long r;

    while (q > 0 && in[q - 1] == '=')
        q--;
    for (size_t i = 0; i < q; i++)
        if (!in_alphabet((unsigned char)in[i]))
            valid = false;
    want = q * 6 / 8;

    /* With exactly the room it needs. */
    out = exact(valid ? want : cap_hint);
    r = sasl_base64_decode(in, len, out, valid ? want : cap_hint);
    if (!valid) {
        CHECK(r == -1);
        release(out, cap_hint);
        return;
    }
    CHECK(r == (long)want);
    /* Encoded back, it is the input up to its last (partial) character. */
    {
        size_t elen;
        char *e = b64_encode(out, want, false, &elen);
        size_t full = q - (q % 4 == 0 ? 0 : 1);
        CHECK(elen >= full && elen <= q);
        CHECK(memcmp(e, in, full) == 0);
        free(e);
    }
    /* One byte short: refused, nothing written past the end. */
    if (want > 0) {
        unsigned char *small = exact(want - 1);
        CHECK(sasl_base64_decode(in, len, small, want - 1) == -1);
        release(small, want - 1);
    }
    /* Any capacity: all or nothing. */
    {
        unsigned char *c = exact(cap_hint);
        long rc = sasl_base64_decode(in, len, c, cap_hint);
        if (cap_hint >= want) {
            CHECK(rc == (long)want);
            CHECK(want == 0 || memcmp(c, out, want) == 0);
        } else {
            CHECK(rc == -1);
        }
        release(c, cap_hint);
    }
    release(out, want);
}

static void check_roundtrip(const unsigned char *p, size_t n)
{
    for (int pad = 0; pad <= 1; pad++) {
        size_t elen;
        char *e = b64_encode(p, n, pad, &elen);
        char *in = (char *)exact(elen);
        unsigned char *out = exact(n);

        if (elen)
            memcpy(in, e, elen);
        CHECK(sasl_base64_decode(in, elen, out, n) == (long)n);
        CHECK(n == 0 || memcmp(out, p, n) == 0);
        release(out, n);
        release(in, elen);
        free(e);
    }
}

/* ---- sasl_user ------------------------------------------------------------- */

static const char *const mechs[] = {
    "PLAIN", "plain", "LOGIN", "CRAM-MD5", "SCRAM-SHA-1", "SCRAM-SHA-256",
    "scram-sha-256-plus", "XOAUTH2", "OAUTHBEARER", "GSSAPI", "NTLM", "",
};

static unsigned char sanitise(unsigned char c)
{
    return (c < 32 || c == 127) ? '?' : c;
}

/*
 * The user name sasl_user should give for a name field f[0..n): controls
 * as '?', cut to cap - 1 bytes. Written to a new NUL-terminated string.
 */
static char *expected_user(const unsigned char *f, size_t n, size_t cap)
{
    size_t m = cap ? cap - 1 : 0;
    char *s;

    if (n < m)
        m = n;
    s = xmalloc(m + 1);
    for (size_t i = 0; i < m; i++)
        s[i] = (char)sanitise(f[i]);
    s[m] = '\0';
    return s;
}

/* Run sasl_user into an exact-size buffer; returns a copy of the result. */
static char *run_user(const char *mech, const char *resp, size_t len,
                      size_t cap)
{
    char *user = (char *)exact(cap);
    char *copy;
    size_t n;

    sasl_user(mech, resp, len, user, cap);
    if (cap == 0) {
        release(user, cap);
        return NULL;
    }
    n = strnlen(user, cap);
    CHECK(n < cap); /* NUL-terminated inside the buffer */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)user[i];
        CHECK(c >= 32 && c != 127); /* no CR, LF or other control */
    }
    copy = xmalloc(n + 1);
    memcpy(copy, user, n + 1);
    release(user, cap);
    return copy;
}

/* The reference for the mechanisms whose user field is plain bytes. */
static char *reference_user(const char *mech, const unsigned char *d, long n,
                            size_t cap)
{
    const unsigned char *a, *b, *sp;

    if (n <= 0 || n > SASL_DECODE_MAX)
        return expected_user(d, 0, cap);
    if (strcasecmp(mech, "PLAIN") == 0) {
        a = memchr(d, '\0', (size_t)n);
        b = a ? memchr(a + 1, '\0', (size_t)(d + n - a - 1)) : NULL;
        return expected_user(b ? a + 1 : d, b ? (size_t)(b - a - 1) : 0, cap);
    }
    if (strcasecmp(mech, "LOGIN") == 0)
        return expected_user(d, (size_t)n, cap);
    if (strcasecmp(mech, "CRAM-MD5") == 0) {
        sp = memchr(d, ' ', (size_t)n);
        return expected_user(d, sp ? (size_t)(sp - d) : 0, cap);
    }
    return NULL;
}

static void check_user_any(const char *resp, size_t len, const uint8_t *hdr)
{
    size_t caps[] = {256, 0, 1, (size_t)hdr[0]};
    unsigned char *dec;
    size_t q = len;
    long n = -1;

    while (q > 0 && resp[q - 1] == '=')
        q--;
    dec = exact(q * 6 / 8);
    if (len > 0 && !(len == 1 && resp[0] == '='))
        n = sasl_base64_decode(resp, len, dec, q * 6 / 8);
    for (size_t m = 0; m < sizeof(mechs) / sizeof(mechs[0]); m++) {
        for (size_t k = 0; k < sizeof(caps) / sizeof(caps[0]); k++) {
            char *got = run_user(mechs[m], resp, len, caps[k]);
            char *want;

            if (!got)
                continue;
            if (k == 0) {
                char *again = run_user(mechs[m], resp, len, caps[k]);
                CHECK(strcmp(got, again) == 0);
                free(again);
            }
            want = reference_user(mechs[m], dec, n, caps[k]);
            if (want) {
                CHECK(strcmp(got, want) == 0);
                free(want);
            }
            /* a mechanism that names no user gives "" */
            if (strcmp(mechs[m], "GSSAPI") == 0 ||
                strcmp(mechs[m], "NTLM") == 0 || mechs[m][0] == '\0')
                CHECK(got[0] == '\0');
            free(got);
        }
    }
    release(dec, q * 6 / 8);
}

/* ---- well-formed responses carrying a fuzzed name -------------------------- */

struct buf {
    unsigned char *v;
    size_t n, cap;
};

#define PUT_LIT(b, s) put(b, s, sizeof(s) - 1)

static void put(struct buf *b, const void *p, size_t n)
{
    if (b->n + n > b->cap) {
        size_t cap = (b->n + n) * 2 + 64;
        unsigned char *v = realloc(b->v, cap);
        if (!v)
            abort();
        b->v = v;
        b->cap = cap;
    }
    if (n)
        memcpy(b->v + b->n, p, n);
    b->n += n;
}

/* saslname escaping (RFC 5802, RFC 7628): ',' as =2C, '=' as =3D. */
static void put_saslname(struct buf *b, const unsigned char *u, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (u[i] == ',')
            put(b, "=2C", 3);
        else if (u[i] == '=')
            put(b, "=3D", 3);
        else
            put(b, &u[i], 1);
    }
}

/* The user name taken out of the response built for mech. */
static void check_user_in(const char *mech, const struct buf *resp,
                          const unsigned char *u, size_t un, size_t cap)
{
    size_t elen;
    char *e = b64_encode(resp->v, resp->n, resp->n % 2, &elen);
    char *in = (char *)exact(elen);
    char *got, *want;

    if (elen)
        memcpy(in, e, elen);
    got = run_user(mech, in, elen, cap);
    if (got && resp->n <= SASL_DECODE_MAX) {
        want = expected_user(u, un, cap);
        if (strcmp(got, want) != 0) {
            fprintf(stderr, "%s: got \"%s\", want \"%s\"\n", mech, got, want);
            CHECK(strcmp(got, want) == 0);
        }
        free(want);
    }
    free(got);
    release(in, elen);
    free(e);
}

static void check_user_wellformed(const unsigned char *p, size_t n,
                                  const uint8_t *hdr)
{
    size_t caps[] = {(size_t)hdr[0] + 1, 256};
    unsigned char *u = xmalloc(n);
    size_t un = 0;
    struct buf b;

    /*
     * The name: the payload, without the bytes that end a field in every
     * one of these mechanisms (NUL for PLAIN, ^A for the OAuth ones, space
     * for CRAM-MD5's "user digest"), so that it is a name each could carry.
     */
    for (size_t i = 0; i < n; i++)
        if (p[i] != '\0' && p[i] != 1 && p[i] != ' ')
            u[un++] = p[i];

    for (size_t k = 0; k < sizeof(caps) / sizeof(caps[0]); k++) {
        size_t cap = caps[k];

        b = (struct buf){0};
        PUT_LIT(&b, "admin\0");
        put(&b, u, un);
        PUT_LIT(&b, "\0s3cr3t pass");
        check_user_in("PLAIN", &b, u, un, cap);
        free(b.v);

        b = (struct buf){0};
        put(&b, u, un);
        check_user_in("LOGIN", &b, u, un, cap);
        free(b.v);

        b = (struct buf){0};
        put(&b, u, un);
        PUT_LIT(&b, " 0123456789abcdef0123456789abcdef");
        check_user_in("CRAM-MD5", &b, u, un, cap);
        free(b.v);

        b = (struct buf){0};
        PUT_LIT(&b, "n,,n=");
        put_saslname(&b, u, un);
        PUT_LIT(&b, ",r=fyko+d2lbbFgONRv9qkxdawL");
        check_user_in("SCRAM-SHA-256", &b, u, un, cap);
        free(b.v);

        b = (struct buf){0};
        PUT_LIT(&b, "n,a=");
        put_saslname(&b, u, un);
        PUT_LIT(&b, ",\1host=server.example.com\1port=143\1"
                    "auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\1\1");
        check_user_in("OAUTHBEARER", &b, u, un, cap);
        free(b.v);

        /* XOAUTH2 has no escaping: only ^A ends the name. */
        b = (struct buf){0};
        PUT_LIT(&b, "user=");
        put(&b, u, un);
        PUT_LIT(&b, "\1auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\1\1");
        check_user_in("XOAUTH2", &b, u, un, cap);
        free(b.v);
    }
    free(u);
}

/* ---- XCLIENT --------------------------------------------------------------- */

static const struct {
    const char *name;
    unsigned bit;
} attrs[] = {
    {"NAME", XCLIENT_NAME},   {"REVERSE_NAME", XCLIENT_REVERSE_NAME},
    {"ADDR", XCLIENT_ADDR},   {"PORT", XCLIENT_PORT},
    {"PROTO", XCLIENT_PROTO}, {"HELO", XCLIENT_HELO},
    {"LOGIN", XCLIENT_LOGIN}, {"DESTADDR", XCLIENT_DESTADDR},
    {"DESTPORT", XCLIENT_DESTPORT},
};
#define NATTRS (sizeof(attrs) / sizeof(attrs[0]))

static bool xchar(unsigned char c)
{
    return c >= 33 && c <= 126 && c != '+' && c != '=';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decode xtext v[0..n) into a new string; checks it is valid xtext. */
static char *xtext_decode(const char *v, size_t n)
{
    char *out = xmalloc(n + 1);
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        if (v[i] == '+') {
            int h, l;
            CHECK(i + 2 < n);
            h = hexval(v[i + 1]);
            l = hexval(v[i + 2]);
            CHECK(h >= 0 && l >= 0);
            out[o++] = (char)(h * 16 + l);
            /* only what must be encoded is */
            CHECK(!xchar((unsigned char)out[o - 1]));
            i += 2;
        } else {
            CHECK(xchar((unsigned char)v[i]));
            out[o++] = v[i];
        }
    }
    out[o] = '\0';
    return out;
}

static size_t xtext_len(const char *s)
{
    size_t n = 0;

    for (; *s; s++)
        n += xchar((unsigned char)*s) ? 1 : 3;
    return n;
}

static void make_addr(struct netaddr *a, const unsigned char *b, bool v6)
{
    if (v6) {
        struct sockaddr_in6 s6;
        memset(&s6, 0, sizeof(s6));
        s6.sin6_family = AF_INET6;
        memcpy(&s6.sin6_addr, b, 16);
        memcpy(&s6.sin6_port, b + 16, 2);
        netaddr_from_sockaddr(a, (const struct sockaddr *)&s6, sizeof(s6));
    } else {
        struct sockaddr_in s4;
        memset(&s4, 0, sizeof(s4));
        s4.sin_family = AF_INET;
        memcpy(&s4.sin_addr, b, 4);
        memcpy(&s4.sin_port, b + 4, 2);
        netaddr_from_sockaddr(a, (const struct sockaddr *)&s4, sizeof(s4));
    }
}

/* The value attribute i should carry, or NULL if it is not sent at all. */
static char *expected_value(unsigned bit, const struct xclient_info *in)
{
    char ip[NETADDR_STRLEN], v[NETADDR_STRLEN + 8];
    const char *s = NULL;
    const struct netaddr *a = NULL;

    switch (bit) {
    case XCLIENT_NAME:
        if (in->name_status == NAME_OK && in->name)
            s = in->name;
        else
            s = in->name_status == NAME_TEMPUNAVAIL ? "[TEMPUNAVAIL]"
                                                    : "[UNAVAILABLE]";
        break;
    case XCLIENT_REVERSE_NAME:
        if (in->reverse_name)
            s = in->reverse_name;
        else
            s = in->name_status == NAME_TEMPUNAVAIL ? "[TEMPUNAVAIL]"
                                                    : "[UNAVAILABLE]";
        break;
    case XCLIENT_HELO:
        s = in->helo ? in->helo : "[UNAVAILABLE]";
        break;
    case XCLIENT_LOGIN:
        s = in->login ? in->login : "[UNAVAILABLE]";
        break;
    case XCLIENT_PROTO:
        s = in->proto;
        break;
    case XCLIENT_ADDR:
    case XCLIENT_DESTADDR:
        a = bit == XCLIENT_ADDR ? in->client : in->local;
        if (!a)
            return NULL;
        netaddr_ip(a, ip, sizeof(ip));
        snprintf(v, sizeof(v), "%s%s",
                 netaddr_family(a) == AF_INET6 ? "IPV6:" : "", ip);
        s = v;
        break;
    case XCLIENT_PORT:
    case XCLIENT_DESTPORT:
        a = bit == XCLIENT_PORT ? in->client : in->local;
        if (!a)
            return NULL;
        snprintf(v, sizeof(v), "%u", netaddr_port(a));
        s = v;
        break;
    }
    if (!s)
        return NULL;
    char *copy = xmalloc(strlen(s) + 1);
    strcpy(copy, s);
    return copy;
}

static void check_xclient(const unsigned char *p, size_t n, const uint8_t *hdr)
{
    unsigned announced = ((unsigned)hdr[2] << 8 | hdr[3]) & 0x1ff;
    size_t maxlines = hdr[4] % (XCLIENT_MAX_LINES + 1);
    static const unsigned char defaults[12] = {192, 0, 2, 7, 0x9c, 0x40,
                                               198, 51, 100, 1, 0, 25};
    struct netaddr client, local;
    char *str[5] = {0};
    struct xclient_info in;
    char (*lines)[XCLIENT_LINE_MAX + 1];
    size_t nl, start = 0, k = 0;
    bool seen[NATTRS] = {false};

    /* Five NUL-separated strings: name, reverse name, HELO, proto, login. */
    for (size_t i = 0; i <= n && k < 5; i++) {
        if (i == n || p[i] == '\0') {
            str[k] = xmalloc(i - start + 1);
            memcpy(str[k], p + start, i - start);
            str[k][i - start] = '\0';
            k++;
            start = i + 1;
        }
    }
    if (n >= 36) {
        make_addr(&client, p + n - 36, hdr[1] & 0x40);
        make_addr(&local, p + n - 18, hdr[1] & 0x80);
    } else {
        make_addr(&client, defaults, false);
        make_addr(&local, defaults + 6, false);
    }
    in = (struct xclient_info){
        .client = (hdr[1] & 0x20) ? NULL : &client,
        .local = (hdr[1] & 0x20) ? NULL : &local,
        .name_status = (enum name_status)((hdr[1] >> 3) % 3),
        .name = (hdr[1] & 1) ? NULL : str[0],
        .reverse_name = (hdr[1] & 2) ? NULL : str[1],
        .helo = (hdr[1] & 4) ? NULL : str[2],
        .proto = str[3],
        .login = str[4],
    };

    lines = (char(*)[XCLIENT_LINE_MAX + 1])exact(maxlines * sizeof(*lines));
    nl = xclient_build(announced, &in, lines, maxlines);
    CHECK(nl <= maxlines);
    for (size_t l = 0; l < nl; l++) {
        const char *s = lines[l], *end;
        size_t len = strnlen(s, XCLIENT_LINE_MAX + 1);

        CHECK(len <= XCLIENT_LINE_MAX); /* CRLF included */
        CHECK(len >= 10 && memcmp(s, "XCLIENT ", 8) == 0);
        CHECK(s[len - 2] == '\r' && s[len - 1] == '\n');
        end = s + len - 2;
        s += 7;
        while (s < end) {
            const char *tok, *eq, *te;
            size_t a;
            char *val, *want;

            CHECK(*s == ' ');
            tok = ++s;
            te = memchr(tok, ' ', (size_t)(end - tok));
            te = te ? te : end;
            eq = memchr(tok, '=', (size_t)(te - tok));
            CHECK(eq != NULL && eq > tok);
            for (a = 0; a < NATTRS; a++)
                if (strlen(attrs[a].name) == (size_t)(eq - tok) &&
                    memcmp(attrs[a].name, tok, (size_t)(eq - tok)) == 0)
                    break;
            CHECK(a < NATTRS);
            CHECK(announced & attrs[a].bit);
            CHECK(!seen[a]);
            seen[a] = true;
            val = xtext_decode(eq + 1, (size_t)(te - eq - 1));
            want = expected_value(attrs[a].bit, &in);
            CHECK(want != NULL);
            CHECK(strcmp(val, want) == 0);
            free(val);
            free(want);
            s = te;
        }
    }
    /* Left out only when it cannot fit, or when the lines ran out. */
    if (nl < maxlines) {
        for (size_t a = 0; a < NATTRS; a++) {
            char *want;
            if (!(announced & attrs[a].bit) || seen[a])
                continue;
            want = expected_value(attrs[a].bit, &in);
            if (want)
                CHECK(strlen("XCLIENT ") + strlen(attrs[a].name) + 1 +
                          xtext_len(want) + 2 >
                      XCLIENT_LINE_MAX);
            free(want);
        }
    }
    release(lines, maxlines * sizeof(*lines));
    for (k = 0; k < 5; k++)
        free(str[k]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *hdr = data, *p;
    char *resp;
    size_t n;

    if (size < HEADER)
        return 0;
    p = data + HEADER;
    n = size - HEADER;

    /* The payload as a response a client sent, from an exact-size copy. */
    resp = (char *)exact(n);
    if (n)
        memcpy(resp, p, n);
    check_decode(resp, n, hdr[0]);
    check_user_any(resp, n, hdr);
    release(resp, n);

    check_roundtrip(p, n);
    check_user_wellformed(p, n, hdr);
    check_xclient(p, n, hdr);
    return 0;
}
