/*
 * dnsq_msg: DNS messages for dnsq, as pure functions: build a query,
 * check that a reply answers it, and reduce the reply to the records
 * asked for. No I/O here, so the parser can be fuzzed on its own.
 *
 * Parsing goes through glibc's ns_initparse()/ns_parserr(), which bound
 * every read by the message length; names are uncompressed with
 * ns_name_uncompress() into fixed buffers.
 */
#include "dnsq.h"

#include <arpa/nameser.h>
#include <resolv.h>
#include <stdlib.h>
#include <string.h>

#define EDNS_PAYLOAD 1232 /* the DNS flag day 2020 size: no fragmentation */

static int encode_name(const char *name, unsigned char *buf, size_t len);
static int question_matches(const unsigned char *msg, size_t len,
                            const char *name, int type);
static int collect(ns_msg *h, int type, struct dnsq_answer *out);
static int add_rr(ns_msg *h, const ns_rr *rr, struct dnsq_answer *out);
static char *rr_text(const unsigned char *rd, size_t rdlen, size_t *outlen);
static char *rr_name(ns_msg *h, const unsigned char *at, size_t *outlen);
static uint32_t negative_ttl(ns_msg *h);

/* ---- names and queries ---- */

/* Any printable ASCII, space included: SPF macros put "%_" (a space) and
 * local parts into names, and DNS labels may hold any octet. */
int dnsq_name_ok(const char *name)
{
    size_t n = strlen(name), label = 0;

    if (n > 0 && name[n - 1] == '.')
        n--;
    if (n == 0 || n > 253)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c == '.') {
            if (label == 0)
                return 0;
            label = 0;
        } else if (c < ' ' || c >= 0x7f || ++label > 63) {
            return 0;
        }
    }
    return label > 0;
}

/* name in wire format (labels, then the root); returns its length. */
static int encode_name(const char *name, unsigned char *buf, size_t len)
{
    size_t o = 0;
    const char *p = name;

    if (!dnsq_name_ok(name))
        return -1;
    while (*p) {
        size_t l = strcspn(p, ".");
        if (o + 1 + l + 1 > len)
            return -1;
        buf[o++] = (unsigned char)l;
        memcpy(buf + o, p, l);
        o += l;
        p += l;
        if (*p == '.')
            p++;
    }
    buf[o++] = 0;
    return (int)o;
}

static size_t put16(unsigned char *buf, size_t o, unsigned v)
{
    buf[o] = (unsigned char)(v >> 8);
    buf[o + 1] = (unsigned char)v;
    return o + 2;
}

int dnsq_build(const char *name, int type, uint16_t id, unsigned char *buf,
               size_t len)
{
    int n;
    size_t o;

    if (len < NS_HFIXEDSZ)
        return -1;
    memset(buf, 0, NS_HFIXEDSZ);
    buf[0] = (unsigned char)(id >> 8);
    buf[1] = (unsigned char)id;
    buf[2] = 0x01;  /* RD */
    buf[5] = 1;     /* QDCOUNT */
    buf[11] = 1;    /* ARCOUNT: the OPT record */
    n = encode_name(name, buf + NS_HFIXEDSZ, len - NS_HFIXEDSZ);
    if (n < 0)
        return -1;
    o = NS_HFIXEDSZ + (size_t)n;
    if (o + 4 + 11 > len)
        return -1;
    o = put16(buf, o, (unsigned)type);
    o = put16(buf, o, ns_c_in);
    /* OPT: root name, type 41, class = UDP payload, TTL 0, no options */
    buf[o++] = 0;
    o = put16(buf, o, ns_t_opt);
    o = put16(buf, o, EDNS_PAYLOAD);
    memset(buf + o, 0, 6);
    o += 6;
    return (int)o;
}

/* ---- replies ---- */

/*
 * The reply's question must be ours, byte for byte but for letter case
 * (resolvers may echo 0x20-randomised case). Comparing wire forms avoids
 * presentation escapes: a name with odd bytes still matches itself.
 */
static int question_matches(const unsigned char *msg, size_t len,
                            const char *name, int type)
{
    unsigned char want[NS_MAXCDNAME];
    int n = encode_name(name, want, sizeof(want));

    if (n < 0 || len < NS_HFIXEDSZ + (size_t)n + 4)
        return 0;
    if (msg[4] != 0 || msg[5] != 1) /* QDCOUNT 1 */
        return 0;
    for (int i = 0; i < n; i++) {
        unsigned char a = msg[NS_HFIXEDSZ + i], b = want[i];
        if (a >= 'A' && a <= 'Z')
            a = (unsigned char)(a - 'A' + 'a');
        if (b >= 'A' && b <= 'Z')
            b = (unsigned char)(b - 'A' + 'a');
        if (a != b)
            return 0;
    }
    return (int)ns_get16(msg + NS_HFIXEDSZ + n) == type &&
           ns_get16(msg + NS_HFIXEDSZ + n + 2) == ns_c_in;
}

int dnsq_parse(const unsigned char *msg, size_t len, uint16_t id,
               const char *name, int type, struct dnsq_answer *out)
{
    ns_msg h;

    memset(out, 0, sizeof(*out));
    if (len > 65535 || ns_initparse(msg, (int)len, &h) < 0)
        return -1;
    if (ns_msg_id(h) != id || !ns_msg_getflag(h, ns_f_qr) ||
        ns_msg_getflag(h, ns_f_opcode) != ns_o_query ||
        !question_matches(msg, len, name, type))
        return -1;
    if (ns_msg_getflag(h, ns_f_tc))
        return 1;
    switch (ns_msg_getflag(h, ns_f_rcode)) {
    case ns_r_noerror:
        break;
    case ns_r_nxdomain:
        out->status = DNSQ_NXDOMAIN;
        out->ttl = negative_ttl(&h);
        return 0;
    default: /* SERVFAIL, REFUSED, FORMERR...: ask again later */
        out->status = DNSQ_TEMPFAIL;
        return 0;
    }
    if (collect(&h, type, out) != 0) {
        dnsq_answer_free(out);
        out->status = DNSQ_TEMPFAIL;
        return 0;
    }
    if (out->n == 0) {
        out->status = DNSQ_NODATA;
        out->ttl = negative_ttl(&h);
    }
    return 0;
}

/* The answer section's records of type; the TTL is the smallest seen. */
static int collect(ns_msg *h, int type, struct dnsq_answer *out)
{
    int count = ns_msg_count(*h, ns_s_an);
    uint32_t ttl = UINT32_MAX;
    ns_rr rr;

    for (int i = 0; i < count; i++) {
        if (ns_parserr(h, ns_s_an, i, &rr) < 0)
            return -1; /* a reply cut short is not an answer */
        if (ns_rr_ttl(rr) < ttl)
            ttl = ns_rr_ttl(rr);
        if (ns_rr_class(rr) != ns_c_in || (int)ns_rr_type(rr) != type ||
            out->n >= DNSQ_MAX_RR)
            continue;
        if (add_rr(h, &rr, out) != 0)
            return -1;
    }
    out->ttl = out->n ? ttl : 0;
    return 0;
}

/* Append rr; a record with malformed data is skipped, not an error. */
static int add_rr(ns_msg *h, const ns_rr *rr, struct dnsq_answer *out)
{
    const unsigned char *rd = ns_rr_rdata(*rr);
    size_t rdlen = ns_rr_rdlen(*rr), len = 0;
    struct dnsq_rr r = {.type = ns_rr_type(*rr), .ttl = ns_rr_ttl(*rr)};
    void *grown;

    switch (r.type) {
    case ns_t_a:
    case ns_t_aaaa:
        if (rdlen != (r.type == ns_t_a ? 4u : 16u))
            return 0;
        if ((r.data = malloc(rdlen + 1))) {
            memcpy(r.data, rd, rdlen);
            r.data[rdlen] = '\0';
        }
        len = rdlen;
        break;
    case ns_t_txt:
        r.data = rr_text(rd, rdlen, &len);
        break;
    case ns_t_mx:
        if (rdlen < 3)
            return 0;
        r.pref = ns_get16(rd);
        r.data = rr_name(h, rd + 2, &len);
        break;
    case ns_t_ptr:
    case ns_t_cname:
    case ns_t_ns:
        r.data = rr_name(h, rd, &len);
        break;
    default:
        if ((r.data = malloc(rdlen + 1))) {
            memcpy(r.data, rd, rdlen);
            r.data[rdlen] = '\0';
        }
        len = rdlen;
        break;
    }
    if (!r.data)
        return 0; /* malformed (names) or out of memory: skip it */
    r.len = len;
    grown = realloc(out->rr, (out->n + 1) * sizeof(*out->rr));
    if (!grown) {
        free(r.data);
        return -1;
    }
    out->rr = grown;
    out->rr[out->n++] = r;
    return 0;
}

/* TXT: <len><bytes> strings joined with nothing between (RFC 7208 3.3). */
static char *rr_text(const unsigned char *rd, size_t rdlen, size_t *outlen)
{
    char *s = malloc(rdlen + 1);
    size_t o = 0, i = 0;

    if (!s)
        return NULL;
    while (i < rdlen) {
        size_t l = rd[i++];
        if (l > rdlen - i)
            l = rdlen - i; /* a string claiming more than is there */
        memcpy(s + o, rd + i, l);
        o += l;
        i += l;
    }
    s[o] = '\0';
    *outlen = o;
    return s;
}

static char *rr_name(ns_msg *h, const unsigned char *at, size_t *outlen)
{
    char name[NS_MAXDNAME];
    size_t n;
    char *s;

    if (at >= ns_msg_end(*h) ||
        ns_name_uncompress(ns_msg_base(*h), ns_msg_end(*h), at, name,
                           sizeof(name)) < 0)
        return NULL;
    n = strlen(name);
    if (n > 0 && name[n - 1] == '.')
        name[--n] = '\0'; /* the root alone ("." for a null MX) becomes "" */
    if (!(s = strdup(name)))
        return NULL;
    *outlen = n;
    return s;
}

/* RFC 2308: a negative answer lives min(SOA TTL, SOA minimum); 0 if no SOA. */
static uint32_t negative_ttl(ns_msg *h)
{
    int count = ns_msg_count(*h, ns_s_ns);
    ns_rr rr;

    for (int i = 0; i < count; i++) {
        if (ns_parserr(h, ns_s_ns, i, &rr) < 0)
            break;
        if (ns_rr_type(rr) == ns_t_soa && ns_rr_rdlen(rr) >= 22) {
            uint32_t min = ns_get32(ns_rr_rdata(rr) + ns_rr_rdlen(rr) - 4);
            return min < ns_rr_ttl(rr) ? min : ns_rr_ttl(rr);
        }
    }
    return 0;
}

void dnsq_answer_free(struct dnsq_answer *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->rr[i].data);
    free(a->rr);
    a->rr = NULL;
    a->n = 0;
}

const char *dnsq_status_name(enum dnsq_status s)
{
    switch (s) {
    case DNSQ_OK:
        return "ok";
    case DNSQ_NODATA:
        return "nodata";
    case DNSQ_NXDOMAIN:
        return "nxdomain";
    case DNSQ_TEMPFAIL:
        return "tempfail";
    }
    return "?";
}
