/*
 * libFuzzer target for the path from a DNS TXT string to libspf2's
 * compiler: the bounds of spf_dns.c (spfdns_record_problem), the RFC 7208
 * grammar and rewrite of spf_syntax.c, then SPF_record_compile() on what
 * passed, as check_spf would hand it over.
 *
 * Input: 1 byte (bit 0: the client is IPv6), then the record text.
 * Checks:
 *   - a record the grammar accepts comes out starting "v=spf1", printable
 *     ASCII, within SPF_SYNTAX_OUT of the input's length;
 *   - the rewritten record passes the grammar again and rewrites to itself
 *     (a second rewrite changes nothing);
 *   - libspf2 compiles it without crashing (ASan and UBSan watch), which
 *     is what the bounds are for (its compiler had an integer underflow
 *     fixed only in 2023, after Debian 12's package).
 *
 * contrib/fuzz.sh spf_record
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spf_dns.h"
#include "spf_syntax.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#include "fuzzcheck.h"

static SPF_server_t *server;

static void check_output(const char *rec, const char *out)
{
    CHECK(strncmp(out, "v=spf1", 6) == 0);
    CHECK(strlen(out) < SPF_SYNTAX_OUT(strlen(rec)));
    for (const char *p = out; *p; p++)
        CHECK(*p >= ' ' && *p <= '~');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *rec, *out, *again;
    const char *why;
    int family;
    size_t outlen;

    if (size < 1 || size > 4096)
        return 0;
    family = data[0] & 1 ? AF_INET6 : AF_INET;
    if (!(rec = malloc(size)))
        return 0;
    memcpy(rec, data + 1, size - 1);
    rec[size - 1] = '\0';
    outlen = SPF_SYNTAX_OUT(strlen(rec));
    out = malloc(outlen);
    again = malloc(outlen);
    if (out && again && !spfdns_record_problem(rec) &&
        spf_record_check(rec, family, out, outlen, &why) == 0) {
        check_output(rec, out);
        CHECK(spf_record_check(out, family, again, outlen, &why) == 0);
        CHECK(strcmp(out, again) == 0);
        if (!server)
            server = SPF_server_new_dns(spfdns_new(), 0);
        SPF_response_t *resp = SPF_response_new(NULL);
        SPF_record_t *compiled = NULL;
        if (resp) {
            SPF_record_compile(server, resp, &compiled, out);
            if (compiled)
                SPF_record_free(compiled);
            SPF_response_free(resp);
        }
    }
    free(again);
    free(out);
    free(rec);
    return 0;
}
