/*
 * libFuzzer target for dnsq's reply parser (proxy/dnsq.h, dnsq_parse):
 * what a DNS server, or anyone spoofing one, can send back.
 *
 * Input: [0] the query type (an index into types[]), [1..10] the reply's
 * header after the ID (flags and the four counts), then the reply's
 * sections after the question. The ID and the question are the query's,
 * so the parser gets past its "is this ours" checks and into the records.
 * Checks: no crash or overread (ASan); a parsed answer is consistent:
 * DNSQ_OK has 1 to DNSQ_MAX_RR records, all of the type asked for, each
 * NUL-terminated at its length (A: 4 octets, AAAA: 16); other statuses
 * hold none; a wrong ID is never accepted.
 *
 * contrib/fuzz.sh dnsq
 */
#include <arpa/nameser.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dnsq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#include "fuzzcheck.h"

#define NAME "example.com"

static const int types[] = {ns_t_a, ns_t_aaaa, ns_t_txt, ns_t_mx, ns_t_ptr};

static void check_answer(const struct dnsq_answer *a, int type)
{
    if (a->status != DNSQ_OK) {
        CHECK(a->n == 0);
        return;
    }
    CHECK(a->n >= 1 && a->n <= DNSQ_MAX_RR);
    for (size_t i = 0; i < a->n; i++) {
        CHECK(a->rr[i].type == type);
        CHECK(a->rr[i].data[a->rr[i].len] == '\0');
        if (type == ns_t_a)
            CHECK(a->rr[i].len == 4);
        if (type == ns_t_aaaa)
            CHECK(a->rr[i].len == 16);
        if (type == ns_t_mx || type == ns_t_ptr)
            CHECK(strlen(a->rr[i].data) == a->rr[i].len);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned char q[512], *msg;
    struct dnsq_answer a;
    int type, qlen;
    size_t len;

    if (size < 11)
        return 0;
    type = types[data[0] % (sizeof(types) / sizeof(types[0]))];
    qlen = dnsq_build(NAME, type, 0x4242, q, sizeof(q));
    CHECK(qlen > 11);
    qlen -= 11; /* the question only, no OPT */
    len = (size_t)qlen + size - 11;
    if (!(msg = malloc(len)))
        return 0;
    memcpy(msg, q, (size_t)qlen);
    memcpy(msg + 2, data + 1, 10);
    msg[2] |= 0x80; /* a reply */
    msg[4] = 0;     /* one question: ours */
    msg[5] = 1;
    memcpy(msg + qlen, data + 11, size - 11);
    if (dnsq_parse(msg, len, 0x4242, NAME, type, &a) == 0) {
        check_answer(&a, type);
        dnsq_answer_free(&a);
    }
    CHECK(dnsq_parse(msg, len, 0x4243, NAME, type, &a) == -1);
    free(msg);
    return 0;
}
