/*
 * Unit tests for proxyproto: build/parse round trips, and every malformed
 * header we could think of. Every parse of test data goes through a heap
 * copy of exactly the length passed, so under ASan a read past len fails.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "proxyproto.h"

static const unsigned char SIG[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                      0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

/* ---- helpers ---------------------------------------------------------- */

static struct netaddr mk(const char *ip, unsigned port)
{
    struct netaddr a;

    memset(&a, 0, sizeof(a));
    if (strchr(ip, ':')) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a.ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        assert_int_equal(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
        a.len = sizeof(*s6);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&a.ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        assert_int_equal(inet_pton(AF_INET, ip, &s4->sin_addr), 1);
        a.len = sizeof(*s4);
    }
    return a;
}

/* "ip port" with the family as stored (no v4-mapped folding). */
static const char *show(const struct netaddr *a, char *buf, size_t len)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;

    if (a->ss.ss_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)&a->ss;
        inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
        port = ntohs(s4->sin_port);
        assert_int_equal(a->len, sizeof(*s4));
    } else if (a->ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&a->ss;
        inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
        port = ntohs(s6->sin6_port);
        assert_int_equal(a->len, sizeof(*s6));
    }
    snprintf(buf, len, "%s%s %u", a->ss.ss_family == AF_INET6 ? "6:" : "4:", ip,
             port);
    return buf;
}

static void assert_addr(const struct netaddr *a, const char *want)
{
    char buf[128];

    assert_string_equal(show(a, buf, sizeof(buf)), want);
}

/* Parse exactly n bytes of data from a heap buffer of exactly n bytes. */
static enum proxyproto_status parse_n(const void *data, size_t n,
                                      struct proxyproto_result *out,
                                      const char **why)
{
    unsigned char *copy = malloc(n ? n : 1);
    enum proxyproto_status st;

    assert_non_null(copy);
    memcpy(copy, data, n);
    /* For n == 0, hand over a pointer ASan knows is empty. */
    if (n == 0) {
        free(copy);
        copy = malloc(0);
    }
    st = proxyproto_parse(copy, n, out, why);
    free(copy);
    return st;
}

static enum proxyproto_status
parse_s(const char *s, struct proxyproto_result *out, const char **why)
{
    return parse_n(s, strlen(s), out, why);
}

/*
 * data[0..n) must be INVALID with a reason; every shorter prefix must be
 * NEED_MORE or INVALID, and once a prefix is INVALID all longer ones are.
 */
static void check_invalid(const void *data, size_t n)
{
    struct proxyproto_result r;
    const char *why = NULL;
    bool seen_invalid = false;

    assert_int_equal(parse_n(data, n, &r, &why), PROXYPROTO_INVALID);
    assert_non_null(why);
    assert_true(strlen(why) > 0);
    for (size_t k = 1; k < n; k++) {
        enum proxyproto_status st = parse_n(data, k, &r, NULL);
        assert_int_not_equal(st, PROXYPROTO_OK);
        if (seen_invalid)
            assert_int_equal(st, PROXYPROTO_INVALID);
        if (st == PROXYPROTO_INVALID)
            seen_invalid = true;
    }
}

/*
 * data[0..n) must be a complete header: every prefix is NEED_MORE and
 * leaves *out untouched, the whole is OK with header_len == n, and bytes
 * after it are not consumed.
 */
static void check_valid(const void *data, size_t n,
                        struct proxyproto_result *out)
{
    struct proxyproto_result r, sentinel;
    unsigned char *more;

    memset(&sentinel, 0xA5, sizeof(sentinel));
    for (size_t k = 0; k < n; k++) {
        memset(&r, 0xA5, sizeof(r));
        const char *why = NULL;
        enum proxyproto_status st = parse_n(data, k, &r, &why);
        if (st != PROXYPROTO_NEED_MORE)
            fail_msg("prefix %zu/%zu: status %d (%s)", k, n, (int)st,
                     why ? why : "");
        assert_memory_equal(&r, &sentinel, sizeof(r));
    }
    assert_int_equal(parse_n(data, n, out, NULL), PROXYPROTO_OK);
    assert_int_equal(out->header_len, n);

    more = malloc(n + 20);
    assert_non_null(more);
    memcpy(more, data, n);
    memcpy(more + n, "EHLO a\r\nQUIT\r\n\r\nxxxx", 20);
    assert_int_equal(parse_n(more, n + 20, &r, NULL), PROXYPROTO_OK);
    assert_int_equal(r.header_len, n);
    free(more);
}

/* A v2 header: fixed part, then n bytes of body (body may be NULL). */
static size_t v2(unsigned char *buf, unsigned ver_cmd, unsigned fam,
                 unsigned rest, const void *body, size_t n)
{
    memcpy(buf, SIG, 12);
    buf[12] = (unsigned char)ver_cmd;
    buf[13] = (unsigned char)fam;
    buf[14] = (unsigned char)(rest >> 8);
    buf[15] = (unsigned char)rest;
    if (n)
        memcpy(buf + 16, body, n);
    return 16 + n;
}

static const unsigned char ADDR4[12] = {192, 0, 2,    1,    198, 51,
                                        100, 2, 0x30, 0x39, 0,   25};

/* ---- build ------------------------------------------------------------ */

static void test_build_v1_text(void **state)
{
    (void)state;
    struct {
        const char *src, *dst;
        unsigned sport, dport;
        const char *want;
    } cases[] = {
        {"192.0.2.1", "198.51.100.2", 12345, 25,
         "PROXY TCP4 192.0.2.1 198.51.100.2 12345 25\r\n"},
        {"2001:db8::1", "2001:db8::2", 0, 65535,
         "PROXY TCP6 2001:db8::1 2001:db8::2 0 65535\r\n"},
        {"192.0.2.1", "2001:db8::2", 1, 2,
         "PROXY TCP6 ::ffff:192.0.2.1 2001:db8::2 1 2\r\n"},
        {"2001:db8::1", "198.51.100.2", 1, 2,
         "PROXY TCP6 2001:db8::1 ::ffff:198.51.100.2 1 2\r\n"},
        /* v4-mapped on both sides is plain IPv4. */
        {"::ffff:192.0.2.1", "::ffff:198.51.100.2", 1, 2,
         "PROXY TCP4 192.0.2.1 198.51.100.2 1 2\r\n"},
        {"::ffff:192.0.2.1", "198.51.100.2", 1, 2,
         "PROXY TCP4 192.0.2.1 198.51.100.2 1 2\r\n"},
        {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe",
         "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535, 65535,
         "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe "
         "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct netaddr s = mk(cases[i].src, cases[i].sport);
        struct netaddr d = mk(cases[i].dst, cases[i].dport);
        unsigned char buf[200];
        size_t n = proxyproto_build(1, &s, &d, buf, sizeof(buf));
        assert_int_equal(n, strlen(cases[i].want));
        assert_memory_equal(buf, cases[i].want, n);
        assert_true(n <= 107);
    }
}

static void test_build_v2_bytes(void **state)
{
    (void)state;
    struct netaddr s = mk("192.0.2.1", 12345), d = mk("198.51.100.2", 25);
    unsigned char buf[200], want[64];
    size_t wn = v2(want, 0x21, 0x11, 12, ADDR4, sizeof(ADDR4));

    assert_int_equal(proxyproto_build(2, &s, &d, buf, sizeof(buf)), wn);
    assert_memory_equal(buf, want, wn);

    /* Mixed families: TCP6 with the v4 side mapped. */
    s = mk("192.0.2.1", 0x0102);
    d = mk("2001:db8::2", 0xfffe);
    unsigned char body[36] = {0};
    body[10] = body[11] = 0xff;
    body[12] = 192, body[13] = 0, body[14] = 2, body[15] = 1;
    body[16] = 0x20, body[17] = 0x01, body[18] = 0x0d, body[19] = 0xb8;
    body[31] = 2;
    body[32] = 0x01, body[33] = 0x02, body[34] = 0xff, body[35] = 0xfe;
    wn = v2(want, 0x21, 0x21, 36, body, sizeof(body));
    assert_int_equal(proxyproto_build(2, &s, &d, buf, sizeof(buf)), wn);
    assert_memory_equal(buf, want, wn);
}

/* A short cap returns 0 and writes nothing past cap (heap-checked). */
static void test_build_cap_short(void **state)
{
    (void)state;
    const char *pairs[][2] = {
        {"192.0.2.1", "198.51.100.2"},
        {"2001:db8::1", "2001:db8::2"},
        {"192.0.2.1", "2001:db8::2"},
    };
    for (size_t i = 0; i < 3; i++) {
        struct netaddr s = mk(pairs[i][0], 65535), d = mk(pairs[i][1], 1);
        for (int ver = 1; ver <= 2; ver++) {
            unsigned char big[200];
            size_t need = proxyproto_build(ver, &s, &d, big, sizeof(big));
            assert_true(need > 0);
            for (size_t cap = 0; cap <= need; cap++) {
                unsigned char *b = malloc(cap ? cap : 1);
                size_t n = proxyproto_build(ver, &s, &d, b, cap);
                if (cap < need) {
                    assert_int_equal(n, 0);
                } else {
                    assert_int_equal(n, need);
                    assert_memory_equal(b, big, need);
                }
                free(b);
            }
        }
    }
}

static void test_build_bad_input(void **state)
{
    (void)state;
    struct netaddr s = mk("192.0.2.1", 1), d = mk("198.51.100.2", 2);
    struct netaddr u;
    unsigned char buf[200];

    memset(&u, 0, sizeof(u));
    ((struct sockaddr_un *)&u.ss)->sun_family = AF_UNIX;
    u.len = sizeof(struct sockaddr_un);
    assert_int_equal(proxyproto_build(1, &u, &d, buf, sizeof(buf)), 0);
    assert_int_equal(proxyproto_build(2, &s, &u, buf, sizeof(buf)), 0);
    assert_int_equal(proxyproto_build(0, &s, &d, buf, sizeof(buf)), 0);
    assert_int_equal(proxyproto_build(3, &s, &d, buf, sizeof(buf)), 0);
}

/* ---- round trips ------------------------------------------------------ */

static void test_roundtrip(void **state)
{
    (void)state;
    struct {
        const char *src, *dst;
        unsigned sport, dport;
        const char *want_src, *want_dst;
    } cases[] = {
        {"192.0.2.1", "198.51.100.2", 12345, 25, "4:192.0.2.1 12345",
         "4:198.51.100.2 25"},
        {"0.0.0.0", "255.255.255.255", 0, 65535, "4:0.0.0.0 0",
         "4:255.255.255.255 65535"},
        {"2001:db8::1", "2001:db8::2", 40000, 587, "6:2001:db8::1 40000",
         "6:2001:db8::2 587"},
        {"::", "::1", 1, 2, "6::: 1", "6:::1 2"},
        {"192.0.2.1", "2001:db8::2", 1, 2, "6:::ffff:192.0.2.1 1",
         "6:2001:db8::2 2"},
        {"2001:db8::1", "198.51.100.2", 3, 4, "6:2001:db8::1 3",
         "6:::ffff:198.51.100.2 4"},
        {"::ffff:192.0.2.1", "::ffff:198.51.100.2", 5, 6, "4:192.0.2.1 5",
         "4:198.51.100.2 6"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct netaddr s = mk(cases[i].src, cases[i].sport);
        struct netaddr d = mk(cases[i].dst, cases[i].dport);
        for (int ver = 1; ver <= 2; ver++) {
            unsigned char buf[PROXYPROTO_MAX_HEADER];
            struct proxyproto_result r;
            size_t n = proxyproto_build(ver, &s, &d, buf, sizeof(buf));
            assert_true(n > 0);
            check_valid(buf, n, &r);
            assert_int_equal(r.version, ver);
            assert_false(r.local);
            assert_addr(&r.src, cases[i].want_src);
            assert_addr(&r.dst, cases[i].want_dst);
        }
    }
}

/* ---- v1 --------------------------------------------------------------- */

static void test_v1_valid(void **state)
{
    (void)state;
    struct {
        const char *line, *src, *dst;
    } cases[] = {
        {"PROXY TCP4 1.2.3.4 5.6.7.8 0 65535\r\n", "4:1.2.3.4 0",
         "4:5.6.7.8 65535"},
        {"PROXY TCP4 0.0.0.0 10.0.0.1 9 10\r\n", "4:0.0.0.0 9",
         "4:10.0.0.1 10"},
        {"PROXY TCP6 2001:DB8::A ::1 1 2\r\n", "6:2001:db8::a 1", "6:::1 2"},
        {"PROXY TCP6 ::ffff:1.2.3.4 ::ffff:5.6.7.8 1 2\r\n",
         "6:::ffff:1.2.3.4 1", "6:::ffff:5.6.7.8 2"},
        {"PROXY TCP6 1:2:3:4:5:6:7:8 1:2:3:4:5:6:1.2.3.4 100 200\r\n",
         "6:1:2:3:4:5:6:7:8 100", "6:1:2:3:4:5:6:102:304 200"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct proxyproto_result r;
        check_valid(cases[i].line, strlen(cases[i].line), &r);
        assert_int_equal(r.version, 1);
        assert_false(r.local);
        assert_addr(&r.src, cases[i].src);
        assert_addr(&r.dst, cases[i].dst);
    }
}

static void test_v1_unknown(void **state)
{
    (void)state;
    const char *lines[] = {
        "PROXY UNKNOWN\r\n",
        "PROXY UNKNOWN \r\n",
        "PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n",
        "PROXY UNKNOWN  anything at all\t\x01\r\n",
    };
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        struct proxyproto_result r;
        check_valid(lines[i], strlen(lines[i]), &r);
        assert_int_equal(r.version, 1);
        assert_true(r.local);
    }
}

/* 107 bytes including CRLF is the limit: one more is INVALID. */
static void test_v1_length_limit(void **state)
{
    (void)state;
    char line[200];
    struct proxyproto_result r;
    const char *why = NULL;

    memset(line, 'x', sizeof(line));
    memcpy(line, "PROXY UNKNOWN ", 14);
    memcpy(line + 105, "\r\n", 2);
    check_valid(line, 107, &r);
    assert_true(r.local);

    memcpy(line + 105, "x\r\n", 3); /* 108 bytes */
    check_invalid(line, 108);
    /* 107 bytes, no LF: INVALID even before the LF could arrive. */
    assert_int_equal(parse_n(line, 107, &r, &why), PROXYPROTO_INVALID);
    assert_non_null(why);
    /* A 106-byte prefix ending in CR may still become a 107-byte line. */
    memcpy(line + 105, "\r", 1);
    assert_int_equal(parse_n(line, 106, &r, NULL), PROXYPROTO_NEED_MORE);

    /* The longest TCP6 line fits. */
    const char *longest = "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
                          "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
                          "65535 65535\r\n";
    assert_true(strlen(longest) <= 107);
    check_valid(longest, strlen(longest), &r);
    assert_false(r.local);
}

static void test_v1_invalid(void **state)
{
    (void)state;
    static const char *const lines[] = {
        /* ports */
        "PROXY TCP4 1.2.3.4 5.6.7.8 65536 25\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 25 65536\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 99999 25\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 01 25\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 25 00\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 +1 25\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 -1 25\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1a 25\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 0x19 25\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 123456 25\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 \r\n",
        /* addresses */
        "PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n",
        "PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n",
        "PROXY TCP4 1.2.3.4.5 5.6.7.8 1 2\r\n",
        "PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.08 1 2\r\n",
        "PROXY TCP4 ::1 5.6.7.8 1 2\r\n",
        "PROXY TCP4 ::ffff:1.2.3.4 5.6.7.8 1 2\r\n",
        "PROXY TCP4 localhost 5.6.7.8 1 2\r\n",
        "PROXY TCP4 0x01020304 5.6.7.8 1 2\r\n",
        "PROXY TCP4 16909060 5.6.7.8 1 2\r\n",
        "PROXY TCP6 1.2.3.4 ::1 1 2\r\n",
        "PROXY TCP6 ::1 5.6.7.8 1 2\r\n",
        "PROXY TCP6 1:2:3:4:5:6:7:8:9 ::1 1 2\r\n",
        "PROXY TCP6 ::1::2 ::1 1 2\r\n",
        "PROXY TCP6 12345::1 ::1 1 2\r\n",
        "PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n",
        "PROXY TCP6 [::1] ::1 1 2\r\n",
        "PROXY TCP6 g::1 ::1 1 2\r\n",
        /* structure */
        "PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n",
        "PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
        " PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8\r\n",
        "PROXY TCP4\r\n",
        "PROXY\r\n",
        "PROXY \r\n",
        "PROXY\tTCP4 1.2.3.4 5.6.7.8 1 2\r\n",
        "PROXY TCP4\t1.2.3.4 5.6.7.8 1 2\r\n",
        "proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
        "PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n",
        "PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n",
        "PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n",
        "PROXY TCP 1.2.3.4 5.6.7.8 1 2\r\n",
        "PROXYTCP4 1.2.3.4 5.6.7.8 1 2\r\n",
        "PROXY UNKNOWNX\r\n",
        "PROXY UNKNOWN\tx\r\n",
        "PROXY unknown\r\n",
        /* line ending */
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",
        "PROXY UNKNOWN\n",
        "PROXY UNKNOWN xy\n", /* valid if the LF's predecessor were CR */
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 22\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n\r\n",
        "PROXY TCP4 1.2.3.4\r 5.6.7.8 1 2\r\n",
        "PROXY UNKNOWN a\rb\r\n",
        "PROXY UNKNOWN\r\r\n",
        "\n",
        "P\n",
        /* not PROXY at all */
        "EHLO example.com\r\n",
        "HELO x\r\n",
        "GET / HTTP/1.0\r\n",
        "PROXZ\r\n",
        "PROX\r\n",
    };
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        check_invalid(lines[i], strlen(lines[i]));
    }

    /* Bytes strlen() cannot carry: NUL inside fields. */
    static const char nul_addr[] = "PROXY TCP4 1.2.3.4\0 5.6.7.8 1 2\r\n";
    static const char nul_port[] = "PROXY TCP4 1.2.3.4 5.6.7.8 1\0 2\r\n";
    static const char nul_word[] = "PROXY\0TCP4 1.2.3.4 5.6.7.8 1 2\r\n";
    check_invalid(nul_addr, sizeof(nul_addr) - 1);
    check_invalid(nul_port, sizeof(nul_port) - 1);
    check_invalid(nul_word, sizeof(nul_word) - 1);
}

/*
 * A partial line is refused at the first byte that no valid header could
 * contain, not only once the CRLF arrives.
 */
static void test_v1_invalid_early(void **state)
{
    (void)state;
    static const char *const prefixes[] = {
        "E",
        "EHLO",
        "PROXY TCP4 1.2.3.256",
        "PROXY TCP4 1.2.3.4.",
        "PROXY TCP4 1..",
        "PROXY TCP4 01",
        "PROXY TCP4 1.2.3.4 5.6.7.8 01",
        "PROXY TCP4 1.2.3.4 5.6.7.8 +",
        "PROXY TCP4 1.2.3.4 5.6.7.8 65536",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 ",
        "PROXY TCP4 1.2.3.4  ",
        "PROXY TCP4 1.2\r",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r ",
        "PROXY TCP4 :",
        "PROXY TCP6 1:2:3:4:5:6:7:8:",
        "PROXY TCP6 1::2::",
        "PROXY TCP6 12345",
        "PROXY TCP6 1:2:3:4:5:6:7:1.",
        "PROXY TCP6 ::1.2.3.4.",
        "PROXY TCP6 [",
        "PROXY TCP7",
        "PROXY UNKNOWN x\ry",
        "PROXYX",
        "PROXY  ",
        "proxy",
    };
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
        const char *why = NULL;
        struct proxyproto_result r;
        if (parse_s(prefixes[i], &r, &why) != PROXYPROTO_INVALID)
            fail_msg("not INVALID: \"%s\"", prefixes[i]);
        assert_non_null(why);
    }
}

/* Partial fields that can still become valid stay NEED_MORE. */
static void test_v1_need_more(void **state)
{
    (void)state;
    static const char *const prefixes[] = {
        "P",
        "PROXY",
        "PROXY ",
        "PROXY T",
        "PROXY UNKNOWN",
        "PROXY UNKNOWN ",
        "PROXY UNKNOWN garbage",
        "PROXY UNKNOWN\r",
        "PROXY TCP4 ",
        "PROXY TCP4 1.2.3.",
        "PROXY TCP4 255.255.255.25",
        "PROXY TCP4 1.2.3.4 5.6.7.8 6553",
        "PROXY TCP4 1.2.3.4 5.6.7.8 0",
        "PROXY TCP4 1.2.3.4 5.6.7.8 0 ",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r",
        "PROXY TCP6 ::",
        "PROXY TCP6 1:",
        "PROXY TCP6 1:2:3:4:5:6:7:",
        "PROXY TCP6 ::ffff:1.2.",
        "PROXY TCP6 1:2:3:4:5:6:1.2.3",
        "PROXY TCP6 ABCD:",
    };
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
        struct proxyproto_result r;
        const char *why = "";
        if (parse_s(prefixes[i], &r, &why) != PROXYPROTO_NEED_MORE)
            fail_msg("not NEED_MORE: \"%s\" (%s)", prefixes[i], why);
    }
}

/* ---- v2 --------------------------------------------------------------- */

static void test_v2_valid(void **state)
{
    (void)state;
    unsigned char buf[64];
    unsigned char a6[36];
    struct proxyproto_result r;
    size_t n;

    n = v2(buf, 0x21, 0x11, 12, ADDR4, sizeof(ADDR4));
    check_valid(buf, n, &r);
    assert_int_equal(r.version, 2);
    assert_false(r.local);
    assert_addr(&r.src, "4:192.0.2.1 12345");
    assert_addr(&r.dst, "4:198.51.100.2 25");

    for (int i = 0; i < 32; i++)
        a6[i] = (unsigned char)(i + 1);
    a6[32] = 0xff, a6[33] = 0xff, a6[34] = 0, a6[35] = 0;
    n = v2(buf, 0x21, 0x21, 36, a6, sizeof(a6));
    check_valid(buf, n, &r);
    assert_int_equal(r.version, 2);
    assert_false(r.local);
    assert_addr(&r.src, "6:102:304:506:708:90a:b0c:d0e:f10 65535");
    assert_addr(&r.dst, "6:1112:1314:1516:1718:191a:1b1c:1d1e:1f20 0");
}

/* TLVs after the address block are skipped; header_len covers them. */
static void test_v2_tlv_skip(void **state)
{
    (void)state;
    unsigned char body[64], buf[128];
    struct proxyproto_result r;
    size_t n;
    static const unsigned char tlvs[] = {
        0x01, 0x00, 0x02, 'h', '2',    /* PP2_TYPE_ALPN */
        0x04, 0x00, 0x03, 0,   0,   0, /* PP2_TYPE_NOOP */
        0x02, 0x00, 0x01, 'x',         /* PP2_TYPE_AUTHORITY */
    };

    memcpy(body, ADDR4, 12);
    memcpy(body + 12, tlvs, sizeof(tlvs));
    n = v2(buf, 0x21, 0x11, 12 + sizeof(tlvs), body, 12 + sizeof(tlvs));
    check_valid(buf, n, &r);
    assert_int_equal(r.header_len, 16 + 12 + sizeof(tlvs));
    assert_addr(&r.src, "4:192.0.2.1 12345");
    assert_addr(&r.dst, "4:198.51.100.2 25");

    /* Trailing bytes inside the declared length need not be valid TLVs. */
    n = v2(buf, 0x21, 0x11, 15, body, 15);
    buf[n - 1] = 0xff;
    check_valid(buf, n, &r);
    assert_int_equal(r.header_len, 31);
}

/* The declared length may reach PROXYPROTO_MAX_HEADER in total, not more. */
static void test_v2_length_limits(void **state)
{
    (void)state;
    size_t max_rest = PROXYPROTO_MAX_HEADER - 16;
    unsigned char *buf = calloc(1, PROXYPROTO_MAX_HEADER + 16);
    struct proxyproto_result r;
    const char *why = NULL;

    assert_non_null(buf);
    v2(buf, 0x21, 0x11, (unsigned)max_rest, ADDR4, sizeof(ADDR4));
    check_valid(buf, PROXYPROTO_MAX_HEADER, &r);
    assert_false(r.local);
    assert_addr(&r.src, "4:192.0.2.1 12345");

    /* One byte more: refused as soon as the length field is seen. */
    v2(buf, 0x21, 0x11, (unsigned)max_rest + 1, ADDR4, sizeof(ADDR4));
    assert_int_equal(parse_n(buf, 16, &r, &why), PROXYPROTO_INVALID);
    assert_non_null(why);
    check_invalid(buf, PROXYPROTO_MAX_HEADER + 1);
    v2(buf, 0x20, 0x00, 0xffff, NULL, 0);
    check_invalid(buf, 16);

    /* Shorter than the address block. */
    v2(buf, 0x21, 0x11, 11, ADDR4, 11);
    check_invalid(buf, 16 + 11);
    v2(buf, 0x21, 0x11, 0, NULL, 0);
    check_invalid(buf, 16);
    v2(buf, 0x21, 0x21, 35, NULL, 0);
    memset(buf + 16, 0, 35);
    check_invalid(buf, 16 + 35);
    v2(buf, 0x21, 0x21, 12, ADDR4, 12); /* a v4-sized block for TCP6 */
    check_invalid(buf, 16 + 12);
    free(buf);
}

static void test_v2_bad_signature(void **state)
{
    (void)state;
    unsigned char buf[64];
    size_t n = v2(buf, 0x21, 0x11, 12, ADDR4, sizeof(ADDR4));

    for (size_t i = 0; i < 12; i++) {
        static const unsigned char flips[] = {0x01, 0x20, 0x80, 0xff};
        for (size_t f = 0; f < sizeof(flips); f++) {
            buf[i] ^= flips[f];
            assert_int_not_equal(buf[0], 'P'); /* that would be v1 */
            check_invalid(buf, n);
            /* Refused as soon as the bad byte is there. */
            assert_int_equal(parse_n(buf, i + 1, NULL, NULL),
                             PROXYPROTO_INVALID);
            buf[i] ^= flips[f];
        }
    }
    assert_int_equal(parse_n(buf, n, NULL, NULL), PROXYPROTO_OK);
}

static void test_v2_bad_version_command(void **state)
{
    (void)state;
    unsigned char buf[64];

    for (unsigned vc = 0; vc < 256; vc++) {
        size_t n = v2(buf, vc, 0x11, 12, ADDR4, sizeof(ADDR4));
        enum proxyproto_status want =
            (vc == 0x20 || vc == 0x21) ? PROXYPROTO_OK : PROXYPROTO_INVALID;
        assert_int_equal(parse_n(buf, n, NULL, NULL), want);
        if (want == PROXYPROTO_INVALID) {
            check_invalid(buf, n);
            assert_int_equal(parse_n(buf, 13, NULL, NULL), PROXYPROTO_INVALID);
        }
    }
}

/* PROXY over anything but TCP4/TCP6 (or UNSPEC) is refused. */
static void test_v2_bad_family(void **state)
{
    (void)state;
    unsigned char body[216] = {0}, buf[256];
    static const unsigned char fams[] = {0x01, 0x02, 0x10, 0x12, 0x13, 0x20,
                                         0x22, 0x30, 0x31, 0x32, 0x41, 0xff};

    memcpy(body, ADDR4, 12);
    for (size_t i = 0; i < sizeof(fams); i++) {
        size_t n = v2(buf, 0x21, fams[i], 216, body, 216);
        check_invalid(buf, n);
        assert_int_equal(parse_n(buf, 14, NULL, NULL), PROXYPROTO_INVALID);
    }
}

/* LOCAL: any family, any length (even none); addresses are not used. */
static void test_v2_local(void **state)
{
    (void)state;
    unsigned char body[216] = {0}, buf[256];
    static const unsigned char fams[] = {0x00, 0x11, 0x12, 0x21, 0x22,
                                         0x31, 0x32, 0x41, 0xff};
    struct proxyproto_result r;

    for (size_t i = 0; i < sizeof(fams); i++) {
        size_t n = v2(buf, 0x20, fams[i], 0, NULL, 0);
        check_valid(buf, n, &r);
        assert_int_equal(r.version, 2);
        assert_true(r.local);
        assert_int_equal(r.header_len, 16);

        n = v2(buf, 0x20, fams[i], 216, body, 216);
        check_valid(buf, n, &r);
        assert_true(r.local);
        assert_int_equal(r.header_len, 16 + 216);
    }
}

/* PROXY with UNSPEC: the spec says use the real connection endpoints. */
static void test_v2_proxy_unspec(void **state)
{
    (void)state;
    unsigned char buf[64];
    struct proxyproto_result r;
    size_t n = v2(buf, 0x21, 0x00, 0, NULL, 0);

    check_valid(buf, n, &r);
    assert_true(r.local);
    n = v2(buf, 0x21, 0x00, 12, ADDR4, 12);
    check_valid(buf, n, &r);
    assert_true(r.local);
    assert_int_equal(r.header_len, 28);
}

/* ---- detection -------------------------------------------------------- */

static void test_detect(void **state)
{
    (void)state;
    const char *why = "unset";
    struct proxyproto_result r;
    static const unsigned char tls[] = {0x16, 0x03, 0x01, 0x00, 0x10};
    static const unsigned char crlf_quit[] = "\r\nQUIT\r\n";

    assert_int_equal(parse_n("", 0, &r, &why), PROXYPROTO_NEED_MORE);
    assert_int_equal(parse_n(tls, sizeof(tls), &r, &why), PROXYPROTO_INVALID);
    assert_string_not_equal(why, "unset");
    why = NULL;
    assert_int_equal(parse_n(crlf_quit, sizeof(crlf_quit) - 1, &r, &why),
                     PROXYPROTO_INVALID);
    assert_non_null(why);
    /* A v2 signature prefix is not yet decidable. */
    assert_int_equal(parse_n(SIG, 5, &r, NULL), PROXYPROTO_NEED_MORE);
    assert_int_equal(parse_n(SIG, 12, &r, NULL), PROXYPROTO_NEED_MORE);
    /* why and out may be NULL. */
    assert_int_equal(parse_s("EHLO x\r\n", NULL, NULL), PROXYPROTO_INVALID);
    assert_int_equal(parse_s("PROXY UNKNOWN\r\n", NULL, NULL), PROXYPROTO_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build_v1_text),
        cmocka_unit_test(test_build_v2_bytes),
        cmocka_unit_test(test_build_cap_short),
        cmocka_unit_test(test_build_bad_input),
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_v1_valid),
        cmocka_unit_test(test_v1_unknown),
        cmocka_unit_test(test_v1_length_limit),
        cmocka_unit_test(test_v1_invalid),
        cmocka_unit_test(test_v1_invalid_early),
        cmocka_unit_test(test_v1_need_more),
        cmocka_unit_test(test_v2_valid),
        cmocka_unit_test(test_v2_tlv_skip),
        cmocka_unit_test(test_v2_length_limits),
        cmocka_unit_test(test_v2_bad_signature),
        cmocka_unit_test(test_v2_bad_version_command),
        cmocka_unit_test(test_v2_bad_family),
        cmocka_unit_test(test_v2_local),
        cmocka_unit_test(test_v2_proxy_unspec),
        cmocka_unit_test(test_detect),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
