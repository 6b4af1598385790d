/*
 * proxyproto: the HAProxy PROXY protocol, versions 1 (text) and 2 (binary).
 *
 * The parser keeps no state between calls: after NEED_MORE the caller reads
 * more and parses the whole buffer again. That costs one re-scan per read
 * (at most 107 bytes for v1, a fixed few bytes for v2), which is cheaper
 * than a resumable state machine is to get right.
 *
 * NEED_MORE is returned only while the bytes seen can still begin a valid
 * header, so a peer that is not speaking the protocol (a client sending
 * "EHLO", or garbage) is refused at its first bad byte rather than after a
 * read timeout. Addresses are validated with inet_pton(), which on glibc
 * rejects leading zeros in IPv4 octets ("01.2.3.4"), so "1.2.3.4" has one
 * spelling only.
 *
 * struct netaddr is filled here directly (sockaddr_in / sockaddr_in6) so
 * this module depends on the netaddr.h types only, not on netaddr.c.
 */
#include "proxyproto.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define V1_MAX 107   /* longest v1 line, CRLF included */
#define V2_FIXED 16  /* signature, ver_cmd, fam, length */
#define V2_ADDR4 12  /* 2 x 4-byte address, 2 x 2-byte port */
#define V2_ADDR6 36  /* 2 x 16-byte address, 2 x 2-byte port */
#define V2_LOCAL 0x0 /* command: health check from the proxy itself */
#define V2_PROXY 0x1 /* command: relayed connection */
#define V2_UNSPEC 0x00
#define V2_TCP4 0x11
#define V2_TCP6 0x21

static const unsigned char v2_sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                         0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

static enum proxyproto_status fail(const char **why, const char *reason);

/* Version 1: one text line. */
static enum proxyproto_status parse_v1(const unsigned char *buf, size_t len,
                                       struct proxyproto_result *r,
                                       const char **why);
static enum proxyproto_status v1_line(const unsigned char *p, size_t n,
                                      bool complete,
                                      struct proxyproto_result *r,
                                      const char **why);
static bool v1_word(const char *word, const unsigned char *f, size_t n,
                    bool partial);
static bool v1_port(const unsigned char *f, size_t n, bool partial,
                    unsigned *port);
static bool v1_addr(int family, const unsigned char *f, size_t n, bool partial,
                    unsigned char ip[16]);
static bool v1_addr_prefix(int family, const char *s, size_t n);

/* Version 2: fixed binary header, address block, optional TLVs. */
static enum proxyproto_status parse_v2(const unsigned char *buf, size_t len,
                                       struct proxyproto_result *r,
                                       const char **why);

/* Addresses between struct netaddr and raw bytes. */
static void addr_set(struct netaddr *a, int family, const unsigned char *ip,
                     unsigned port);
static int addr_get(const struct netaddr *a, unsigned char ip[16],
                    unsigned *port);
static void addr_map4to6(unsigned char ip[16]);

static size_t build_v1(int family, const unsigned char *sip, unsigned sport,
                       const unsigned char *dip, unsigned dport,
                       unsigned char *buf, size_t cap);
static size_t build_v2(int family, const unsigned char *sip, unsigned sport,
                       const unsigned char *dip, unsigned dport,
                       unsigned char *buf, size_t cap);

enum proxyproto_status proxyproto_parse(const unsigned char *buf, size_t len,
                                        struct proxyproto_result *out,
                                        const char **why)
{
    struct proxyproto_result r;
    enum proxyproto_status st;

    if (len == 0)
        return PROXYPROTO_NEED_MORE;
    memset(&r, 0, sizeof(r));
    if (buf[0] == 'P')
        st = parse_v1(buf, len, &r, why);
    else if (buf[0] == v2_sig[0])
        st = parse_v2(buf, len, &r, why);
    else
        return fail(why, "not a PROXY protocol header");
    /* *out is written only for a complete header. */
    if (st == PROXYPROTO_OK && out)
        *out = r;
    return st;
}

static enum proxyproto_status fail(const char **why, const char *reason)
{
    if (why)
        *why = reason;
    return PROXYPROTO_INVALID;
}

/*
 * The line must end in CRLF within V1_MAX bytes. Without the LF yet, the
 * bytes so far are checked as a prefix; a trailing CR must be the end of
 * the line, so what precedes it is checked as a complete line.
 */
static enum proxyproto_status parse_v1(const unsigned char *buf, size_t len,
                                       struct proxyproto_result *r,
                                       const char **why)
{
    size_t scan = len < V1_MAX ? len : V1_MAX;
    const unsigned char *lf = memchr(buf, '\n', scan);
    enum proxyproto_status st;

    if (lf) {
        size_t i = (size_t)(lf - buf);
        if (i == 0 || buf[i - 1] != '\r')
            return fail(why, "v1: line ends in a bare LF");
        st = v1_line(buf, i - 1, true, r, why);
        if (st == PROXYPROTO_OK)
            r->header_len = i + 1;
        return st;
    }
    if (len >= V1_MAX)
        return fail(why, "v1: no CRLF within 107 bytes");
    if (buf[len - 1] == '\r') {
        st = v1_line(buf, len - 1, true, r, why);
        return st == PROXYPROTO_OK ? PROXYPROTO_NEED_MORE : st;
    }
    return v1_line(buf, len, false, r, why);
}

/*
 * Check "PROXY <proto> <src> <dst> <sport> <dport>" (p, n: no CRLF), fields
 * separated by exactly one space. When !complete, the line may stop
 * anywhere and the last field seen may be cut short; the result is then
 * NEED_MORE or INVALID, never OK.
 */
static enum proxyproto_status v1_line(const unsigned char *p, size_t n,
                                      bool complete,
                                      struct proxyproto_result *r,
                                      const char **why)
{
    int family = 0;
    unsigned char sip[16], dip[16];
    unsigned sport = 0, dport = 0;
    size_t pos = 0;
    int field;

    for (field = 0;; field++) {
        size_t end = pos;
        while (end < n && p[end] != ' ')
            end++;
        const unsigned char *f = p + pos;
        size_t fl = end - pos;
        bool partial = end == n && !complete;

        switch (field) {
        case 0:
            if (!v1_word("PROXY", f, fl, partial))
                return fail(why, "not a PROXY protocol header");
            break;
        case 1:
            if (v1_word("TCP4", f, fl, partial))
                family = AF_INET;
            else if (v1_word("TCP6", f, fl, partial))
                family = AF_INET6;
            else if (v1_word("UNKNOWN", f, fl, partial)) {
                if (partial)
                    return PROXYPROTO_NEED_MORE;
                /* "UNKNOWN" then, optionally, a space and anything. */
                if (memchr(p + end, '\r', n - end))
                    return fail(why, "v1: CR inside the line");
                if (!complete)
                    return PROXYPROTO_NEED_MORE;
                r->version = 1;
                r->local = true;
                return PROXYPROTO_OK;
            } else
                return fail(why, "v1: protocol is not TCP4, TCP6 or UNKNOWN");
            break;
        case 2:
        case 3:
            if (!v1_addr(family, f, fl, partial, field == 2 ? sip : dip))
                return fail(why, family == AF_INET ? "v1: bad IPv4 address"
                                                   : "v1: bad IPv6 address");
            break;
        case 4:
        case 5:
            if (!v1_port(f, fl, partial, field == 4 ? &sport : &dport))
                return fail(why, "v1: bad port");
            break;
        }
        if (partial)
            return PROXYPROTO_NEED_MORE;
        if (end == n)
            break;
        if (field == 5)
            return fail(why, "v1: data after the destination port");
        pos = end + 1;
    }
    if (field < 5)
        return fail(why, "v1: missing fields");

    r->version = 1;
    r->local = false;
    addr_set(&r->src, family, sip, sport);
    addr_set(&r->dst, family, dip, dport);
    return PROXYPROTO_OK;
}

/* The field is word, or (partial) a prefix of it. */
static bool v1_word(const char *word, const unsigned char *f, size_t n,
                    bool partial)
{
    size_t wl = strlen(word);

    if (partial ? n > wl : n != wl)
        return false;
    return memcmp(word, f, n) == 0;
}

/* 0..65535 in decimal, no sign, no leading zero except "0" itself. */
static bool v1_port(const unsigned char *f, size_t n, bool partial,
                    unsigned *port)
{
    unsigned v = 0;

    if (n == 0)
        return partial;
    if (n > 5 || (n > 1 && f[0] == '0'))
        return false;
    for (size_t i = 0; i < n; i++) {
        if (f[i] < '0' || f[i] > '9')
            return false;
        v = v * 10 + (unsigned)(f[i] - '0');
    }
    if (v > 65535)
        return false;
    *port = v;
    return true;
}

/*
 * An address in the declared family. Only the characters an address in
 * that family can contain are allowed, so an embedded NUL cannot cut the
 * string short for inet_pton(), and "::ffff:1.2.3.4" is not accepted as a
 * TCP4 address.
 */
static bool v1_addr(int family, const unsigned char *f, size_t n, bool partial,
                    unsigned char ip[16])
{
    size_t max = family == AF_INET ? 15 : 45; /* INET6_ADDRSTRLEN - 1 */
    char s[64];

    if (n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = f[i];
        bool ok = (c >= '0' && c <= '9') || c == '.';
        if (family == AF_INET6)
            ok = ok || c == ':' || (c >= 'a' && c <= 'f') ||
                 (c >= 'A' && c <= 'F');
        if (!ok)
            return false;
    }
    memcpy(s, f, n);
    s[n] = '\0';
    if (partial)
        return v1_addr_prefix(family, s, n);
    return inet_pton(family, s, ip) == 1;
}

/*
 * Can s (n chars, NUL-terminated, in a buffer of 64) be the start of a
 * valid address? It can exactly when one of these short completions makes
 * it valid: every valid prefix either is an address, or lacks only the
 * rest of a dotted quad, one more group, or a "::".
 */
static bool v1_addr_prefix(int family, const char *s, size_t n)
{
    static const char *const tails[] = {
        "", "0", ".0", "0.0", ".0.0", "0.0.0", ".0.0.0", ":", ":0", "::",
    };
    unsigned char ip[16];
    char t[64];

    if (n == 0)
        return true;
    for (size_t i = 0; i < sizeof(tails) / sizeof(tails[0]); i++) {
        snprintf(t, sizeof(t), "%s%s", s, tails[i]);
        if (inet_pton(family, t, ip) == 1)
            return true;
    }
    return false;
}

/*
 * Signature, then ver_cmd, then family, then the length of the rest. Each
 * byte is checked as soon as it arrives. LOCAL (and PROXY with UNSPEC, per
 * the spec) means "use the socket's own addresses". TLVs after the address
 * block are skipped without being parsed; only their total size is bounded.
 */
static enum proxyproto_status parse_v2(const unsigned char *buf, size_t len,
                                       struct proxyproto_result *r,
                                       const char **why)
{
    size_t n = len < sizeof(v2_sig) ? len : sizeof(v2_sig);
    unsigned cmd = 0, fam = 0;
    size_t rest, need;

    if (memcmp(buf, v2_sig, n) != 0)
        return fail(why, "v2: bad signature");
    if (len > 12) {
        if (buf[12] >> 4 != 2)
            return fail(why, "v2: version is not 2");
        cmd = buf[12] & 0x0f;
        if (cmd != V2_LOCAL && cmd != V2_PROXY)
            return fail(why, "v2: command is neither LOCAL nor PROXY");
    }
    if (len > 13) {
        fam = buf[13];
        if (cmd == V2_PROXY && fam != V2_UNSPEC && fam != V2_TCP4 &&
            fam != V2_TCP6)
            return fail(why, "v2: not TCP over IPv4 or IPv6");
    }
    if (len < V2_FIXED)
        return PROXYPROTO_NEED_MORE;

    rest = (size_t)buf[14] << 8 | buf[15];
    if (V2_FIXED + rest > PROXYPROTO_MAX_HEADER)
        return fail(why, "v2: header longer than PROXYPROTO_MAX_HEADER");
    need = 0;
    if (cmd == V2_PROXY && fam == V2_TCP4)
        need = V2_ADDR4;
    else if (cmd == V2_PROXY && fam == V2_TCP6)
        need = V2_ADDR6;
    if (rest < need)
        return fail(why, "v2: length shorter than the address block");
    if (len < V2_FIXED + rest)
        return PROXYPROTO_NEED_MORE;

    r->version = 2;
    r->header_len = V2_FIXED + rest;
    if (need == 0) {
        r->local = true;
        return PROXYPROTO_OK;
    }
    const unsigned char *a = buf + V2_FIXED;
    size_t alen = fam == V2_TCP4 ? 4 : 16;
    int family = fam == V2_TCP4 ? AF_INET : AF_INET6;
    const unsigned char *ports = a + 2 * alen;
    addr_set(&r->src, family, a, (unsigned)ports[0] << 8 | ports[1]);
    addr_set(&r->dst, family, a + alen, (unsigned)ports[2] << 8 | ports[3]);
    return PROXYPROTO_OK;
}

/*
 * Families that differ are both sent as IPv6. An address that is neither
 * AF_INET nor AF_INET6, or a version other than 1 or 2, also returns 0.
 */
size_t proxyproto_build(int version, const struct netaddr *src,
                        const struct netaddr *dst, unsigned char *buf,
                        size_t cap)
{
    unsigned char sip[16], dip[16];
    unsigned sport = 0, dport = 0;
    int sf = addr_get(src, sip, &sport);
    int df = addr_get(dst, dip, &dport);

    if (sf < 0 || df < 0)
        return 0;
    if (sf != df) {
        if (sf == AF_INET)
            addr_map4to6(sip);
        else
            addr_map4to6(dip);
        sf = AF_INET6;
    }
    if (version == 1)
        return build_v1(sf, sip, sport, dip, dport, buf, cap);
    if (version == 2)
        return build_v2(sf, sip, sport, dip, dport, buf, cap);
    return 0;
}

static size_t build_v1(int family, const unsigned char *sip, unsigned sport,
                       const unsigned char *dip, unsigned dport,
                       unsigned char *buf, size_t cap)
{
    char s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN];
    char line[128];
    int n;

    if (!inet_ntop(family, sip, s, sizeof(s)) ||
        !inet_ntop(family, dip, d, sizeof(d)))
        return 0;
    n = snprintf(line, sizeof(line), "PROXY %s %s %s %u %u\r\n",
                 family == AF_INET ? "TCP4" : "TCP6", s, d, sport, dport);
    if (n < 0 || (size_t)n >= sizeof(line) || (size_t)n > cap)
        return 0;
    memcpy(buf, line, (size_t)n);
    return (size_t)n;
}

static size_t build_v2(int family, const unsigned char *sip, unsigned sport,
                       const unsigned char *dip, unsigned dport,
                       unsigned char *buf, size_t cap)
{
    size_t alen = family == AF_INET ? 4 : 16;
    size_t rest = family == AF_INET ? V2_ADDR4 : V2_ADDR6;
    unsigned char *p;

    if (cap < V2_FIXED + rest)
        return 0;
    memcpy(buf, v2_sig, sizeof(v2_sig));
    buf[12] = 0x20 | V2_PROXY;
    buf[13] = family == AF_INET ? V2_TCP4 : V2_TCP6;
    buf[14] = (unsigned char)(rest >> 8);
    buf[15] = (unsigned char)rest;
    p = buf + V2_FIXED;
    memcpy(p, sip, alen);
    memcpy(p + alen, dip, alen);
    p += 2 * alen;
    p[0] = (unsigned char)(sport >> 8);
    p[1] = (unsigned char)sport;
    p[2] = (unsigned char)(dport >> 8);
    p[3] = (unsigned char)dport;
    return V2_FIXED + rest;
}

/* ip is 4 bytes for AF_INET, 16 for AF_INET6; port in host order. */
static void addr_set(struct netaddr *a, int family, const unsigned char *ip,
                     unsigned port)
{
    memset(a, 0, sizeof(*a));
    if (family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&a->ss;
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        memcpy(&sin->sin_addr, ip, 4);
        a->len = sizeof(*sin);
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a->ss;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        memcpy(&sin6->sin6_addr, ip, 16);
        a->len = sizeof(*sin6);
    }
}

/*
 * Raw address and host-order port. IPv4-mapped IPv6 comes back as AF_INET
 * (4 bytes in ip), so a v4 client seen on a dual-stack socket is sent as
 * TCP4. Returns the family, or -1 for anything else.
 */
static int addr_get(const struct netaddr *a, unsigned char ip[16],
                    unsigned *port)
{
    if (a->ss.ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)&a->ss;
        memcpy(ip, &sin->sin_addr, 4);
        *port = ntohs(sin->sin_port);
        return AF_INET;
    }
    if (a->ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&a->ss;
        *port = ntohs(sin6->sin6_port);
        if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
            memcpy(ip, sin6->sin6_addr.s6_addr + 12, 4);
            return AF_INET;
        }
        memcpy(ip, &sin6->sin6_addr, 16);
        return AF_INET6;
    }
    return -1;
}

/* 4-byte IPv4 at ip[0..3] -> ::ffff:a.b.c.d in ip[0..15]. */
static void addr_map4to6(unsigned char ip[16])
{
    memmove(ip + 12, ip, 4);
    memset(ip, 0, 10);
    ip[10] = 0xff;
    ip[11] = 0xff;
}
