/*
 * Unit tests for dnsq: queries as built, replies as parsed (matched to
 * the query, records reduced, TTLs), and the time bound of a query to a
 * server that is closed or silent.
 */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "dnsq.h"

struct msg {
    unsigned char b[1024];
    size_t n;
};

static void put8(struct msg *m, unsigned v)
{
    m->b[m->n++] = (unsigned char)v;
}

static void put16(struct msg *m, unsigned v)
{
    put8(m, v >> 8);
    put8(m, v & 0xff);
}

static void put32(struct msg *m, uint32_t v)
{
    put16(m, v >> 16);
    put16(m, v & 0xffff);
}

/* A reply to the query for name/type: the question echoed, no OPT. */
static void reply_to(struct msg *m, const char *name, int type, uint16_t id,
                     unsigned rcode)
{
    int n = dnsq_build(name, type, id, m->b, sizeof(m->b));

    assert_true(n > 0);
    m->n = (size_t)n - 11; /* drop the OPT record */
    m->b[2] |= 0x80;       /* QR */
    m->b[3] = (unsigned char)(0x80 | rcode);
    m->b[10] = m->b[11] = 0;
}

enum { ANSWER, AUTHORITY };

static void count(struct msg *m, int section, unsigned n)
{
    m->b[6 + 2 * section] = (unsigned char)(n >> 8);
    m->b[7 + 2 * section] = (unsigned char)n;
}

/* An RR owned by the question name (a pointer to offset 12). */
static void rr_head(struct msg *m, int type, uint32_t ttl, unsigned rdlen)
{
    put16(m, 0xc00c);
    put16(m, (unsigned)type);
    put16(m, ns_c_in);
    put32(m, ttl);
    put16(m, rdlen);
}

static void test_build(void **state)
{
    unsigned char b[512];
    char long_label[80], long_name[300];

    assert_int_equal(dnsq_build("example.com", ns_t_txt, 0x1234, b,
                                sizeof(b)),
                     12 + 13 + 4 + 11);
    assert_int_equal(b[0], 0x12);
    assert_int_equal(b[1], 0x34);
    assert_int_equal(b[2], 0x01); /* RD */
    assert_memory_equal(b + 12, "\7example\3com\0", 13);
    assert_int_equal(dnsq_build("example.com.", ns_t_a, 1, b, sizeof(b)),
                     40);
    memset(long_label, 'a', 64);
    long_label[64] = '\0';
    assert_int_equal(dnsq_build(long_label, ns_t_a, 1, b, sizeof(b)), -1);
    memset(long_name, 'a', sizeof(long_name));
    for (size_t i = 50; i < sizeof(long_name); i += 50)
        long_name[i] = '.';
    long_name[sizeof(long_name) - 1] = '\0';
    assert_int_equal(dnsq_build(long_name, ns_t_a, 1, b, sizeof(b)), -1);
    assert_int_equal(dnsq_build("a..b", ns_t_a, 1, b, sizeof(b)), -1);
    assert_int_equal(dnsq_build("", ns_t_a, 1, b, sizeof(b)), -1);
    assert_int_equal(dnsq_build("a\tb.example", ns_t_a, 1, b, sizeof(b)), -1);
    assert_true(dnsq_name_ok("a b.example")); /* "%_" makes spaces */
    assert_int_equal(dnsq_build("example.com", ns_t_a, 1, b, 20), -1);
}

static void test_a_answer(void **state)
{
    struct msg m;
    struct dnsq_answer a;

    reply_to(&m, "Example.COM", ns_t_a, 7, ns_r_noerror);
    count(&m, ANSWER, 2);
    rr_head(&m, ns_t_a, 300, 4);
    put32(&m, 0xc0000201);
    rr_head(&m, ns_t_a, 60, 4);
    put32(&m, 0xc0000202);
    /* letter case may differ between query and reply */
    assert_int_equal(dnsq_parse(m.b, m.n, 7, "example.com", ns_t_a, &a), 0);
    assert_int_equal(a.status, DNSQ_OK);
    assert_int_equal(a.n, 2);
    assert_int_equal(a.ttl, 60);
    assert_int_equal(a.rr[0].len, 4);
    assert_memory_equal(a.rr[1].data, "\xc0\x00\x02\x02", 4);
    dnsq_answer_free(&a);
}

static void test_not_our_reply(void **state)
{
    struct msg m;
    struct dnsq_answer a;

    reply_to(&m, "example.com", ns_t_a, 7, ns_r_noerror);
    assert_int_equal(dnsq_parse(m.b, m.n, 8, "example.com", ns_t_a, &a), -1);
    assert_int_equal(dnsq_parse(m.b, m.n, 7, "example.org", ns_t_a, &a), -1);
    assert_int_equal(dnsq_parse(m.b, m.n, 7, "example.com", ns_t_txt, &a),
                     -1);
    m.b[2] &= 0x7f; /* a query, not a reply */
    assert_int_equal(dnsq_parse(m.b, m.n, 7, "example.com", ns_t_a, &a), -1);
    assert_int_equal(dnsq_parse(m.b, 5, 7, "example.com", ns_t_a, &a), -1);
}

static void test_truncated_and_errors(void **state)
{
    struct msg m;
    struct dnsq_answer a;

    reply_to(&m, "example.com", ns_t_txt, 1, ns_r_noerror);
    m.b[2] |= 0x02; /* TC */
    assert_int_equal(dnsq_parse(m.b, m.n, 1, "example.com", ns_t_txt, &a), 1);
    reply_to(&m, "example.com", ns_t_txt, 1, ns_r_servfail);
    assert_int_equal(dnsq_parse(m.b, m.n, 1, "example.com", ns_t_txt, &a), 0);
    assert_int_equal(a.status, DNSQ_TEMPFAIL);
    /* an answer count the message does not hold: no answer */
    reply_to(&m, "example.com", ns_t_txt, 1, ns_r_noerror);
    count(&m, ANSWER, 3);
    assert_int_equal(dnsq_parse(m.b, m.n, 1, "example.com", ns_t_txt, &a), -1);
}

static void test_nxdomain_ttl_from_soa(void **state)
{
    struct msg m;
    struct dnsq_answer a;

    reply_to(&m, "nx.example.com", ns_t_txt, 3, ns_r_nxdomain);
    count(&m, AUTHORITY, 1);
    rr_head(&m, ns_t_soa, 900, 2 + 2 + 20);
    put16(&m, 0xc00f); /* mname: "example.com" inside the question */
    put16(&m, 0xc00f);
    put32(&m, 1);
    put32(&m, 2);
    put32(&m, 3);
    put32(&m, 4);
    put32(&m, 120); /* minimum */
    assert_int_equal(dnsq_parse(m.b, m.n, 3, "nx.example.com", ns_t_txt, &a),
                     0);
    assert_int_equal(a.status, DNSQ_NXDOMAIN);
    assert_int_equal(a.ttl, 120);
    assert_int_equal(a.n, 0);
}

static void test_txt_mx_cname(void **state)
{
    struct msg m;
    struct dnsq_answer a;
    size_t target;

    /* b.example.com CNAME a.example.com; then TXT "v=spf1 " "-all" */
    reply_to(&m, "b.example.com", ns_t_txt, 9, ns_r_noerror);
    count(&m, ANSWER, 2);
    rr_head(&m, ns_t_cname, 30, 4);
    target = m.n;
    put8(&m, 1);
    put8(&m, 'a');
    put16(&m, 0xc00e); /* "example.com" */
    put16(&m, 0xc000 | (unsigned)target); /* owner: a.example.com */
    put16(&m, ns_t_txt);
    put16(&m, ns_c_in);
    put32(&m, 40);
    put16(&m, 13);
    put8(&m, 7);
    memcpy(m.b + m.n, "v=spf1 ", 7), m.n += 7;
    put8(&m, 4);
    memcpy(m.b + m.n, "-all", 4), m.n += 4;
    assert_int_equal(dnsq_parse(m.b, m.n, 9, "b.example.com", ns_t_txt, &a),
                     0);
    assert_int_equal(a.status, DNSQ_OK);
    assert_int_equal(a.n, 1);
    assert_string_equal(a.rr[0].data, "v=spf1 -all");
    assert_int_equal(a.ttl, 30); /* the chain's smallest */
    dnsq_answer_free(&a);

    reply_to(&m, "example.com", ns_t_mx, 2, ns_r_noerror);
    count(&m, ANSWER, 1);
    rr_head(&m, ns_t_mx, 60, 2 + 4 + 2);
    put16(&m, 10);
    put8(&m, 3);
    memcpy(m.b + m.n, "smt", 3), m.n += 3;
    put16(&m, 0xc00c);
    assert_int_equal(dnsq_parse(m.b, m.n, 2, "example.com", ns_t_mx, &a), 0);
    assert_int_equal(a.n, 1);
    assert_int_equal(a.rr[0].pref, 10);
    assert_string_equal(a.rr[0].data, "smt.example.com");
    dnsq_answer_free(&a);

    /* NOERROR with nothing of the type: NODATA */
    reply_to(&m, "example.com", ns_t_aaaa, 4, ns_r_noerror);
    assert_int_equal(dnsq_parse(m.b, m.n, 4, "example.com", ns_t_aaaa, &a),
                     0);
    assert_int_equal(a.status, DNSQ_NODATA);
}

static long long now_ms(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* A bound UDP socket nobody reads: a silent server. */
static int silent_server(struct dns_conf *conf)
{
    struct sockaddr_in sin = {.sin_family = AF_INET};
    socklen_t len = sizeof(sin);
    int fd = socket(AF_INET, SOCK_DGRAM, 0);

    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, len), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    netaddr_from_sockaddr(&conf->servers[conf->nservers++],
                          (struct sockaddr *)&sin, len);
    return fd;
}

static void test_time_bound(void **state)
{
    struct dns_conf conf = {.timeout = 300};
    struct dnsq_answer a;
    long long t0;
    int fd = silent_server(&conf);

    t0 = now_ms();
    assert_int_equal(dnsq_query(&conf, "silent.example", ns_t_txt, 300, &a),
                     DNSQ_TEMPFAIL);
    assert_true(now_ms() - t0 >= 280 && now_ms() - t0 < 1500);
    /* closed port: refused at once, not a wait */
    close(fd);
    t0 = now_ms();
    assert_int_equal(dnsq_query(&conf, "closed.example", ns_t_txt, 5000, &a),
                     DNSQ_TEMPFAIL);
    assert_true(now_ms() - t0 < 1000);
    /* an invalid name never leaves the process */
    assert_int_equal(dnsq_query(&conf, "a..b", ns_t_txt, 5000, &a),
                     DNSQ_NXDOMAIN);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build),
        cmocka_unit_test(test_a_answer),
        cmocka_unit_test(test_not_our_reply),
        cmocka_unit_test(test_truncated_and_errors),
        cmocka_unit_test(test_nxdomain_ttl_from_soa),
        cmocka_unit_test(test_txt_mx_cname),
        cmocka_unit_test(test_time_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
