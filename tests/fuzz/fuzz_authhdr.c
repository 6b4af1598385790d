/*
 * libFuzzer target for the parsers sender authentication runs on what a
 * client sent: the From: author domain (proxy/fromaddr.h), DMARC records
 * (proxy/dmarc.h), counting DKIM-Signature fields (proxy/dkimverify.h),
 * undoing dot-stuffing (proxy/msgbuf.h) and the organizational domain
 * (proxy/orgdomain.h) of whatever From: yields.
 *
 * The input is used whole as a message header, as a field value and as
 * a record. Checked:
 *   - a From: domain, when found, is non-empty, lower case, LDH and dots,
 *     no leading, trailing or double dot, shorter than the buffer; the
 *     dot-stuffed and plain readings agree on input without leading dots;
 *   - its organizational domain is a suffix of it, on label boundaries;
 *   - a parsed DMARC record has p/sp in range and pct <= 100;
 *   - unstuffing never grows the input.
 *
 * contrib/fuzz.sh authhdr
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dkimverify.h"
#include "dmarc.h"
#include "fromaddr.h"
#include "fuzzcheck.h"
#include "msgbuf.h"
#include "orgdomain.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char psl_text[] = "com\nuk\nco.uk\n*.ck\n!www.ck\n";

static void check_domain(const char *d)
{
    size_t n = strlen(d);

    CHECK(n > 0 && n < FROMADDR_DOMAIN_MAX);
    CHECK(d[0] != '.' && d[n - 1] != '.' && !strstr(d, ".."));
    for (const char *p = d; *p; p++)
        CHECK((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_' || *p == '.');
}

static void check_org(const struct orgdomain *od, const char *d)
{
    char org[256];
    size_t n = strlen(d), m;

    CHECK(orgdomain_get(od, d, org, sizeof(org)) == 0);
    m = strlen(org);
    CHECK(m > 0 && m <= n && strcmp(d + n - m, org) == 0);
    CHECK(m == n || d[n - m - 1] == '.');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct orgdomain *od;
    char d1[FROMADDR_DOMAIN_MAX], d2[FROMADDR_DOMAIN_MAX];
    char *s = malloc(size + 1);
    struct dmarc_record r;
    enum fromaddr_status a, b;
    size_t n;

    if (!od)
        od = orgdomain_parse(psl_text, strlen(psl_text));
    memcpy(s, data, size);
    s[size] = '\0';

    if (fromaddr_parse(s, size, d1, sizeof(d1)) == FROMADDR_OK) {
        check_domain(d1);
        check_org(od, d1);
    }
    a = fromaddr_of_message(s, size, false, d1, sizeof(d1));
    if (a == FROMADDR_OK)
        check_domain(d1);
    /* without lines that start with a dot, stuffing changes nothing */
    bool leading = size > 0 && s[0] == '.';
    for (size_t i = 0; i + 1 < size && !leading; i++)
        leading = s[i] == '\n' && s[i + 1] == '.';
    if (!leading) {
        b = fromaddr_of_message(s, size, true, d2, sizeof(d2));
        CHECK(a == b);
        CHECK(a != FROMADDR_OK || strcmp(d1, d2) == 0);
    }
    (void)dkimv_count(s, size, false);

    if (dmarc_record_parse(s, &r) == 0) {
        CHECK(r.p <= DMARC_DISP_REJECT && r.sp <= DMARC_DISP_REJECT);
        CHECK(r.pct <= 100);
    }

    n = msgbuf_unstuff(s, size);
    CHECK(n <= size);
    free(s);
    return 0;
}
