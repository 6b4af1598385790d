/*
 * Unit tests for XCLIENT command construction.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "xclient.h"

static const unsigned all = XCLIENT_NAME | XCLIENT_ADDR | XCLIENT_PORT |
                            XCLIENT_PROTO | XCLIENT_HELO | XCLIENT_LOGIN |
                            XCLIENT_DESTADDR | XCLIENT_DESTPORT;

static void test_full_set(void **state)
{
    struct netaddr c, l;
    char lines[XCLIENT_MAX_LINES][XCLIENT_LINE_MAX + 1];
    struct xclient_info in = {.client = &c, .local = &l,
                              .name_status = NAME_OK,
                              .name = "mail.client.example",
                              .helo = "client.example", .proto = "ESMTP"};

    assert_int_equal(netaddr_from_ip(&c, "192.0.2.7", 40000), 0);
    assert_int_equal(netaddr_from_ip(&l, "198.51.100.1", 25), 0);
    assert_int_equal(xclient_build(all, &in, lines, XCLIENT_MAX_LINES), 1);
    assert_string_equal(lines[0],
                        "XCLIENT ADDR=192.0.2.7 PORT=40000 "
                        "NAME=mail.client.example HELO=client.example "
                        "PROTO=ESMTP LOGIN=[UNAVAILABLE] DESTADDR=198.51.100.1 "
                        "DESTPORT=25\r\n");
    in.login = "alice";
    in.helo = NULL;
    in.proto = NULL;
    assert_int_equal(xclient_build(all, &in, lines, XCLIENT_MAX_LINES), 1);
    assert_non_null(strstr(lines[0], " HELO=[UNAVAILABLE] LOGIN=alice "));
    assert_null(strstr(lines[0], "PROTO="));
}

static void test_only_announced_and_ipv6(void **state)
{
    struct netaddr c;
    char lines[XCLIENT_MAX_LINES][XCLIENT_LINE_MAX + 1];
    struct xclient_info in = {.client = &c,
                              .name_status = NAME_TEMPUNAVAIL};

    assert_int_equal(netaddr_from_ip(&c, "2001:db8::7", 1), 0);
    assert_int_equal(xclient_build(XCLIENT_ADDR | XCLIENT_NAME, &in, lines, 4),
                     1);
    assert_string_equal(lines[0],
                        "XCLIENT ADDR=IPV6:2001:db8::7 NAME=[TEMPUNAVAIL]\r\n");
    assert_int_equal(xclient_build(0, &in, lines, 4), 0);
}

static void test_xtext_and_split(void **state)
{
    struct netaddr c;
    char lines[XCLIENT_MAX_LINES][XCLIENT_LINE_MAX + 1];
    char helo[256];
    struct xclient_info in = {.client = &c, .name_status = NAME_UNAVAILABLE,
                              .helo = "a b+c=d"};

    assert_int_equal(netaddr_from_ip(&c, "192.0.2.1", 1), 0);
    assert_int_equal(xclient_build(XCLIENT_HELO, &in, lines, 4), 1);
    assert_string_equal(lines[0], "XCLIENT HELO=a+20b+2Bc+3Dd\r\n");
    /* A long HELO goes in its own command; every line within 512. */
    memset(helo, 'h', 250);
    helo[250] = '\0';
    in.helo = helo;
    in.reverse_name = helo;
    size_t n = xclient_build(all | XCLIENT_REVERSE_NAME, &in, lines, 4);
    assert_true(n >= 2);
    for (size_t i = 0; i < n; i++) {
        assert_true(strlen(lines[i]) <= XCLIENT_LINE_MAX);
        assert_memory_equal(lines[i], "XCLIENT ", 8);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_set),
        cmocka_unit_test(test_only_announced_and_ipv6),
        cmocka_unit_test(test_xtext_and_split),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
