/*
 * libFuzzer target for proxyproto_parse().
 *
 * Beyond "does not crash", it checks the properties the listener relies on:
 *   - every prefix of the input is parsed from a heap buffer of exactly its
 *     length (so ASan sees any read past len);
 *   - the answer is consistent across prefixes: once INVALID, longer input
 *     stays INVALID; an OK header of h bytes is NEED_MORE for every shorter
 *     prefix and OK with the same h for every longer one;
 *   - NEED_MORE never survives PROXYPROTO_MAX_HEADER bytes;
 *   - an OK header with addresses survives build -> parse in v1 and v2.
 *
 * clang -g -fsanitize=fuzzer,address,undefined -Iproxy proxy/proxyproto.c \
 *     tests/fuzz/fuzz_proxyproto.c -o fuzz_proxyproto
 * ./fuzz_proxyproto tests/fuzz/corpus/proxyproto
 */
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxyproto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#include "fuzzcheck.h"

static enum proxyproto_status parse_copy(const uint8_t *data, size_t n,
                                         struct proxyproto_result *r)
{
    unsigned char *copy = malloc(n);
    const char *why = NULL;
    enum proxyproto_status st;

    if (!copy && n)
        abort();
    if (n)
        memcpy(copy, data, n);
    st = proxyproto_parse(copy, n, r, &why);
    free(copy);
    if (st == PROXYPROTO_INVALID)
        CHECK(why != NULL && why[0] != '\0');
    return st;
}

/* Address as 16 bytes (IPv4 as ::ffff:a.b.c.d) and port. */
static void norm(const struct netaddr *a, unsigned char ip[16], unsigned *port)
{
    memset(ip, 0, 16);
    if (a->ss.ss_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)&a->ss;
        ip[10] = ip[11] = 0xff;
        memcpy(ip + 12, &s4->sin_addr, 4);
        *port = ntohs(s4->sin_port);
    } else {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&a->ss;
        CHECK(a->ss.ss_family == AF_INET6);
        memcpy(ip, &s6->sin6_addr, 16);
        *port = ntohs(s6->sin6_port);
    }
}

static void same_addr(const struct netaddr *a, const struct netaddr *b)
{
    unsigned char ia[16], ib[16];
    unsigned pa, pb;

    norm(a, ia, &pa);
    norm(b, ib, &pb);
    CHECK(memcmp(ia, ib, 16) == 0);
    CHECK(pa == pb);
}

static void roundtrip(const struct proxyproto_result *r)
{
    for (int ver = 1; ver <= 2; ver++) {
        unsigned char buf[PROXYPROTO_MAX_HEADER];
        struct proxyproto_result again;
        size_t n = proxyproto_build(ver, &r->src, &r->dst, buf, sizeof(buf));

        CHECK(n > 0);
        CHECK(ver != 1 || n <= 107);
        CHECK(parse_copy(buf, n, &again) == PROXYPROTO_OK);
        CHECK(again.version == ver);
        CHECK(!again.local);
        CHECK(again.header_len == n);
        same_addr(&r->src, &again.src);
        same_addr(&r->dst, &again.dst);
        /* One byte short of the header is never enough. */
        CHECK(parse_copy(buf, n - 1, &again) == PROXYPROTO_NEED_MORE);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct proxyproto_result r, p;
    enum proxyproto_status st;
    size_t limit =
        size < PROXYPROTO_MAX_HEADER + 1 ? size : PROXYPROTO_MAX_HEADER + 1;
    bool invalid_seen = false;

    st = proxyproto_parse(data, size, &r, NULL);
    if (size >= PROXYPROTO_MAX_HEADER)
        CHECK(st != PROXYPROTO_NEED_MORE);
    if (st == PROXYPROTO_OK) {
        CHECK(r.version == 1 || r.version == 2);
        CHECK(r.header_len > 0 && r.header_len <= size);
        CHECK(r.header_len <= PROXYPROTO_MAX_HEADER);
        CHECK(r.version != 1 || r.header_len <= 107);
    }

    for (size_t k = 0; k <= limit; k++) {
        enum proxyproto_status sk = parse_copy(data, k, &p);
        if (invalid_seen)
            CHECK(sk == PROXYPROTO_INVALID);
        if (sk == PROXYPROTO_INVALID)
            invalid_seen = true;
        if (st == PROXYPROTO_OK) {
            if (k < r.header_len) {
                CHECK(sk == PROXYPROTO_NEED_MORE);
            } else {
                CHECK(sk == PROXYPROTO_OK);
                CHECK(p.header_len == r.header_len);
                CHECK(p.local == r.local && p.version == r.version);
            }
        }
        if (st == PROXYPROTO_INVALID && k == size)
            CHECK(sk == PROXYPROTO_INVALID);
    }

    if (st == PROXYPROTO_OK && !r.local)
        roundtrip(&r);
    return 0;
}
