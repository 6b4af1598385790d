/*
 * Unit tests for netaddr: endpoint parsing, CIDR parsing and matching,
 * and CIDR list files.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "netaddr.h"

static struct netaddr ip(const char *s)
{
    struct netaddr a;

    assert_int_equal(netaddr_from_ip(&a, s, 25), 0);
    return a;
}

static struct cidr net(const char *s)
{
    struct cidr c;
    char err[128];

    if (cidr_parse(s, &c, err, sizeof(err)) != 0)
        fail_msg("cidr_parse(%s): %s", s, err);
    return c;
}

static bool matches(const char *network, const char *addr)
{
    struct cidr c = net(network);
    struct netaddr a = ip(addr);

    return cidr_match(&c, &a);
}

/*
 * Write content to a new temporary file kept in *state, so teardown
 * removes it even when an assertion fails half way.
 */
static char *tmpfile_with(void **state, const char *content)
{
    char *path = strdup("/tmp/warden-test-cidr-XXXXXX");
    int fd = mkstemp(path);
    size_t len = strlen(content);

    assert_true(fd >= 0);
    *state = path;
    assert_int_equal(write(fd, content, len), (ssize_t)len);
    close(fd);
    return path;
}

static int remove_tmpfile(void **state)
{
    if (*state) {
        unlink(*state);
        free(*state);
    }
    return 0;
}

/* ---- endpoints ---- */

static void test_parse_endpoints(void **state)
{
    struct netaddr a;
    char err[128], buf[NETADDR_STRLEN];

    assert_int_equal(netaddr_parse("127.0.0.1:25", -1, &a, err, 128), 0);
    assert_int_equal(netaddr_family(&a), AF_INET);
    assert_int_equal(netaddr_port(&a), 25);
    assert_string_equal(netaddr_str(&a, buf, sizeof(buf)), "127.0.0.1:25");

    assert_int_equal(netaddr_parse("[2001:db8::1]:587", -1, &a, err, 128), 0);
    assert_int_equal(netaddr_family(&a), AF_INET6);
    assert_int_equal(netaddr_port(&a), 587);
    assert_string_equal(netaddr_str(&a, buf, sizeof(buf)), "[2001:db8::1]:587");
    assert_string_equal(netaddr_ip(&a, buf, sizeof(buf)), "2001:db8::1");

    assert_int_equal(netaddr_parse("[::]:25", -1, &a, err, 128), 0);
    assert_string_equal(netaddr_str(&a, buf, sizeof(buf)), "[::]:25");

    assert_int_equal(netaddr_parse("*:2525", -1, &a, err, 128), 0);
    assert_string_equal(netaddr_str(&a, buf, sizeof(buf)), "0.0.0.0:2525");

    assert_int_equal(netaddr_parse("65535", 53, &a, err, 128), -1);
    assert_int_equal(netaddr_parse("192.0.2.53:65535", -1, &a, err, 128), 0);
    assert_int_equal(netaddr_port(&a), 65535);
}

static void test_parse_default_port(void **state)
{
    struct netaddr a;
    char err[128], buf[NETADDR_STRLEN];

    assert_int_equal(netaddr_parse("192.0.2.53", 53, &a, err, 128), 0);
    assert_string_equal(netaddr_str(&a, buf, sizeof(buf)), "192.0.2.53:53");
    assert_int_equal(netaddr_parse("2001:db8::53", 53, &a, err, 128), 0);
    assert_string_equal(netaddr_str(&a, buf, sizeof(buf)), "[2001:db8::53]:53");
    assert_int_equal(netaddr_parse("[2001:db8::53]", 53, &a, err, 128), 0);
    assert_int_equal(netaddr_port(&a), 53);
    assert_int_equal(netaddr_parse("192.0.2.53:5353", 53, &a, err, 128), 0);
    assert_int_equal(netaddr_port(&a), 5353);
}

static void test_parse_errors(void **state)
{
    static const struct {
        const char *in;
        const char *why;
    } bad[] = {
        {"192.0.2.1", "missing port"},
        {"[2001:db8::1]", "missing port"},
        {"192.0.2.1:", "missing port"},
        {"192.0.2.1:0", "1-65535"},
        {"192.0.2.1:65536", "invalid port"},
        {"192.0.2.1:-1", "invalid port"},
        {"192.0.2.1: 25", "invalid port"},
        {"192.0.2.1:25x", "invalid port"},
        {"mx.example.org:25", "invalid IP address"},
        {"192.0.2.256:25", "invalid IP address"},
        {"[2001:db8::1:25", "missing ']'"},
        {"[2001:db8::1]25", "junk after ']'"},
        {":25", "invalid address"},
        {"", "invalid address"},
    };
    struct netaddr a;
    char err[128];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        if (netaddr_parse(bad[i].in, -1, &a, err, sizeof(err)) != -1)
            fail_msg("\"%s\" parsed", bad[i].in);
        if (!strstr(err, bad[i].why))
            fail_msg("\"%s\": got \"%s\", want \"%s\"", bad[i].in, err,
                     bad[i].why);
    }
}

static void test_v4_mapped_shown_as_v4(void **state)
{
    struct netaddr a = ip("::ffff:192.0.2.7");
    char buf[NETADDR_STRLEN];

    assert_int_equal(a.ss.ss_family, AF_INET6);
    assert_int_equal(netaddr_family(&a), AF_INET);
    assert_string_equal(netaddr_ip(&a, buf, sizeof(buf)), "192.0.2.7");
    assert_string_equal(netaddr_str(&a, buf, sizeof(buf)), "192.0.2.7:25");
}

static void test_from_sockaddr(void **state)
{
    struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6,
                                .sin6_port = htons(4242)};
    struct netaddr a;
    char buf[NETADDR_STRLEN];

    assert_int_equal(inet_pton(AF_INET6, "2001:db8::9", &sin6.sin6_addr), 1);
    netaddr_from_sockaddr(&a, (struct sockaddr *)&sin6, sizeof(sin6));
    assert_int_equal(a.len, sizeof(sin6));
    assert_string_equal(netaddr_str(&a, buf, sizeof(buf)),
                        "[2001:db8::9]:4242");
    assert_int_equal(netaddr_from_ip(&a, "not-an-ip", 25), -1);
    assert_int_equal(netaddr_from_ip(&a, "192.0.2.1", 65536), -1);
}

/* ---- CIDR ---- */

static void test_cidr_parse(void **state)
{
    struct cidr c;
    char err[128];

    c = net("192.0.2.0/24");
    assert_int_equal(c.family, AF_INET);
    assert_int_equal(c.prefix, 24);
    assert_memory_equal(c.addr, "\xc0\x00\x02\x00", 4);

    c = net("198.51.100.7");
    assert_int_equal(c.family, AF_INET);
    assert_int_equal(c.prefix, 32);

    c = net("2001:db8::/32");
    assert_int_equal(c.family, AF_INET6);
    assert_int_equal(c.prefix, 32);

    c = net("2001:db8::1");
    assert_int_equal(c.prefix, 128);

    c = net("0.0.0.0/0");
    assert_int_equal(c.prefix, 0);

    /* Written as IPv6, meant as IPv4: stored as IPv4. */
    c = net("::ffff:192.0.2.0/120");
    assert_int_equal(c.family, AF_INET);
    assert_int_equal(c.prefix, 24);
    assert_memory_equal(c.addr, "\xc0\x00\x02\x00", 4);

    assert_int_equal(cidr_parse("192.0.2.1/24", &c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "host bits set"));
    assert_non_null(strstr(err, "network is 192.0.2.0/24"));
    assert_int_equal(cidr_parse("2001:db8::1/32", &c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "network is 2001:db8::/32"));
    assert_int_equal(cidr_parse("0.0.0.1/0", &c, err, sizeof(err)), -1);
}

static void test_cidr_parse_errors(void **state)
{
    static const char *const bad[] = {
        "192.0.2.0/33",
        "2001:db8::/129",
        "192.0.2.0/",
        "192.0.2.0/x",
        "192.0.2.0/-1",
        "192.0.2.0/+8",
        "192.0.2.0/0024",
        "192.0.2/24",
        "example.org",
        "",
        "/24",
        "192.0.2.0/24 ",
    };
    struct cidr c;
    char err[128];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        if (cidr_parse(bad[i], &c, err, sizeof(err)) != -1)
            fail_msg("\"%s\" parsed", bad[i]);
        assert_true(err[0] != '\0');
    }
}

static void test_cidr_match_edges(void **state)
{
    /* /0 covers its own family only. */
    assert_true(matches("0.0.0.0/0", "203.0.113.9"));
    assert_true(matches("0.0.0.0/0", "::ffff:203.0.113.9"));
    assert_false(matches("0.0.0.0/0", "2001:db8::1"));
    assert_true(matches("::/0", "2001:db8::1"));
    assert_false(matches("::/0", "203.0.113.9"));
    assert_false(matches("::/0", "::ffff:203.0.113.9"));

    /* Host routes. */
    assert_true(matches("192.0.2.7/32", "192.0.2.7"));
    assert_false(matches("192.0.2.7/32", "192.0.2.6"));
    assert_true(matches("2001:db8::7/128", "2001:db8::7"));
    assert_false(matches("2001:db8::7/128", "2001:db8::6"));

    /* Boundaries and prefixes not on a byte. */
    assert_true(matches("192.0.2.0/24", "192.0.2.255"));
    assert_false(matches("192.0.2.0/24", "192.0.3.0"));
    assert_true(matches("192.0.2.128/25", "192.0.2.128"));
    assert_false(matches("192.0.2.128/25", "192.0.2.127"));
    assert_true(matches("10.8.0.0/13", "10.15.255.255"));
    assert_false(matches("10.8.0.0/13", "10.16.0.0"));
    assert_true(matches("2001:db8:bad::/48", "2001:db8:bad:ffff::1"));
    assert_false(matches("2001:db8:bad::/48", "2001:db8:bae::1"));
    assert_true(matches("2001:db8::/33", "2001:db8:7fff::1"));
    assert_false(matches("2001:db8::/33", "2001:db8:8000::1"));
}

static void test_cidr_match_v4_mapped(void **state)
{
    /* A client on a dual-stack socket must not escape IPv4 rules. */
    assert_true(matches("192.0.2.0/24", "::ffff:192.0.2.200"));
    assert_false(matches("192.0.2.0/24", "::ffff:192.0.3.1"));
    assert_true(matches("::ffff:192.0.2.0/120", "192.0.2.1"));
    /* An IPv6 network does not match an IPv4 address by bytes. */
    assert_false(matches("::/96", "0.0.0.1"));
}

/* ---- lists ---- */

static void test_cidr_list(void **state)
{
    struct cidr_list l = {0};
    struct netaddr a;

    for (int i = 0; i < 20; i++) {
        char s[32];
        snprintf(s, sizeof(s), "10.%d.0.0/16", i);
        struct cidr c = net(s);
        assert_int_equal(cidr_list_add(&l, &c), 0);
    }
    assert_int_equal(l.n, 20);
    a = ip("10.19.4.4");
    assert_true(cidr_list_match(&l, &a));
    a = ip("10.20.4.4");
    assert_false(cidr_list_match(&l, &a));
    cidr_list_free(&l);
    assert_null(l.v);
    assert_int_equal(l.n, 0);
    assert_false(cidr_list_match(&l, &a));
}

static void test_cidr_list_file(void **state)
{
    char *path = tmpfile_with(state, "# blocked networks\n"
                                     "\n"
                                     "192.0.2.0/24   # the first\n"
                                     "  2001:db8:bad::/48\r\n"
                                     "198.51.100.9\n");
    struct cidr_list l = {0};
    struct netaddr a;
    char err[256];

    assert_int_equal(cidr_list_load_file(&l, path, err, sizeof(err)), 0);
    assert_int_equal(l.n, 3);
    a = ip("192.0.2.1");
    assert_true(cidr_list_match(&l, &a));
    a = ip("2001:db8:bad::1");
    assert_true(cidr_list_match(&l, &a));
    a = ip("198.51.100.9");
    assert_true(cidr_list_match(&l, &a));
    a = ip("198.51.100.10");
    assert_false(cidr_list_match(&l, &a));
    cidr_list_free(&l);
}

static void test_cidr_list_file_errors(void **state)
{
    char *path = tmpfile_with(state, "192.0.2.0/24\n# ok\n\n198.51.100.1/24\n");
    struct cidr_list l = {0};
    struct cidr c = net("203.0.113.0/24");
    char err[512], want[300];

    assert_int_equal(cidr_list_add(&l, &c), 0);
    assert_int_equal(cidr_list_load_file(&l, path, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s:4: host bits set", path);
    if (strncmp(err, want, strlen(want)) != 0)
        fail_msg("got \"%s\", want \"%s...\"", err, want);
    assert_int_equal(l.n, 1); /* the half-read file was dropped */
    assert_int_equal(unlink(path), 0);

    assert_int_equal(cidr_list_load_file(&l, path, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s: cannot open: No such file or directory",
             path);
    assert_string_equal(err, want);
    cidr_list_free(&l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_endpoints),
        cmocka_unit_test(test_parse_default_port),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_v4_mapped_shown_as_v4),
        cmocka_unit_test(test_from_sockaddr),
        cmocka_unit_test(test_cidr_parse),
        cmocka_unit_test(test_cidr_parse_errors),
        cmocka_unit_test(test_cidr_match_edges),
        cmocka_unit_test(test_cidr_match_v4_mapped),
        cmocka_unit_test(test_cidr_list),
        cmocka_unit_test_teardown(test_cidr_list_file, remove_tmpfile),
        cmocka_unit_test_teardown(test_cidr_list_file_errors, remove_tmpfile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
