/*
 * netaddr: socket addresses, "host:port" endpoints and CIDR networks.
 *
 * Everything that compares a client address with a network goes through
 * cidr_match(), which looks through IPv4-mapped IPv6 addresses
 * (::ffff:192.0.2.1 on a dual-stack socket is the IPv4 client 192.0.2.1),
 * so an IPv4 rule cannot be dodged by connecting over a v6 socket.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netaddr.h"

static int parse_port(const char *s, unsigned *port, char *err, size_t errlen);
static int parse_host(const char *host, unsigned port, struct netaddr *out,
                      char *err, size_t errlen);
static const uint8_t *v4_bytes(const struct netaddr *a);
static bool prefix_equal(const uint8_t *a, const uint8_t *b, unsigned bits);
static void clear_host_bits(uint8_t *addr, size_t len, unsigned prefix);

/* ---- endpoints ---- */

/* Ports are decimal digits only: strtoul would accept "-1" and " 25". */
static int parse_port(const char *s, unsigned *port, char *err, size_t errlen)
{
    unsigned long v = 0;

    if (!*s) {
        snprintf(err, errlen, "missing port");
        return -1;
    }
    for (const char *p = s; *p; p++) {
        if (!isdigit((unsigned char)*p) || (v = v * 10 + (*p - '0')) > 65535) {
            snprintf(err, errlen, "invalid port \"%s\"", s);
            return -1;
        }
    }
    if (v == 0) {
        snprintf(err, errlen, "port must be 1-65535");
        return -1;
    }
    *port = (unsigned)v;
    return 0;
}

static int parse_host(const char *host, unsigned port, struct netaddr *out,
                      char *err, size_t errlen)
{
    if (strcmp(host, "*") == 0)
        host = "0.0.0.0";
    if (netaddr_from_ip(out, host, port) != 0) {
        snprintf(err, errlen, "invalid IP address \"%s\"", host);
        return -1;
    }
    return 0;
}

int netaddr_parse(const char *s, int default_port, struct netaddr *out,
                  char *err, size_t errlen)
{
    char host[INET6_ADDRSTRLEN + 8];
    const char *portstr = NULL, *colon;
    unsigned port = default_port > 0 ? (unsigned)default_port : 0;
    size_t hlen;

    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close) {
            snprintf(err, errlen, "missing ']' in \"%s\"", s);
            return -1;
        }
        hlen = (size_t)(close - s - 1);
        if (close[1] == ':')
            portstr = close + 2;
        else if (close[1] != '\0') {
            snprintf(err, errlen, "junk after ']' in \"%s\"", s);
            return -1;
        }
        s++;
    } else if ((colon = strchr(s, ':')) && !strchr(colon + 1, ':')) {
        hlen = (size_t)(colon - s); /* exactly one colon: v4 or "*" */
        portstr = colon + 1;
    } else {
        hlen = strlen(s); /* bare host; a bare v6 address has many colons */
    }
    if (hlen == 0 || hlen >= sizeof(host)) {
        snprintf(err, errlen, "invalid address \"%s\"", s);
        return -1;
    }
    memcpy(host, s, hlen);
    host[hlen] = '\0';
    if (portstr) {
        if (parse_port(portstr, &port, err, errlen) != 0)
            return -1;
    } else if (default_port < 0) {
        snprintf(err, errlen, "missing port in \"%s\" (use host:port)", s);
        return -1;
    }
    return parse_host(host, port, out, err, errlen);
}

void netaddr_from_sockaddr(struct netaddr *a, const struct sockaddr *sa,
                           socklen_t len)
{
    memset(a, 0, sizeof(*a));
    if (len > sizeof(a->ss))
        len = sizeof(a->ss);
    memcpy(&a->ss, sa, len);
    a->len = len;
}

int netaddr_from_ip(struct netaddr *a, const char *ip, unsigned port)
{
    struct sockaddr_in *sin = (struct sockaddr_in *)&a->ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a->ss;

    memset(a, 0, sizeof(*a));
    if (port > 65535)
        return -1;
    if (inet_pton(AF_INET, ip, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        a->len = sizeof(*sin);
        return 0;
    }
    if (inet_pton(AF_INET6, ip, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        a->len = sizeof(*sin6);
        return 0;
    }
    memset(a, 0, sizeof(*a));
    return -1;
}

/* The 4 address bytes of an IPv4 or IPv4-mapped address, else NULL. */
static const uint8_t *v4_bytes(const struct netaddr *a)
{
    if (a->ss.ss_family == AF_INET)
        return (const uint8_t *)&((const struct sockaddr_in *)&a->ss)->sin_addr;
    if (a->ss.ss_family == AF_INET6) {
        const struct in6_addr *in6 =
            &((const struct sockaddr_in6 *)&a->ss)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(in6))
            return in6->s6_addr + 12;
    }
    return NULL;
}

const char *netaddr_ip(const struct netaddr *a, char *buf, size_t len)
{
    const uint8_t *v4 = v4_bytes(a);

    if (v4) {
        if (!inet_ntop(AF_INET, v4, buf, (socklen_t)len))
            snprintf(buf, len, "?");
    } else if (a->ss.ss_family == AF_INET6) {
        if (!inet_ntop(AF_INET6,
                       &((const struct sockaddr_in6 *)&a->ss)->sin6_addr, buf,
                       (socklen_t)len))
            snprintf(buf, len, "?");
    } else {
        snprintf(buf, len, "?");
    }
    return buf;
}

const char *netaddr_str(const struct netaddr *a, char *buf, size_t len)
{
    char ip[INET6_ADDRSTRLEN];

    netaddr_ip(a, ip, sizeof(ip));
    if (netaddr_family(a) == AF_INET6)
        snprintf(buf, len, "[%s]:%u", ip, netaddr_port(a));
    else
        snprintf(buf, len, "%s:%u", ip, netaddr_port(a));
    return buf;
}

unsigned netaddr_port(const struct netaddr *a)
{
    if (a->ss.ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
    if (a->ss.ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)&a->ss)->sin6_port);
    return 0;
}

int netaddr_family(const struct netaddr *a)
{
    if (v4_bytes(a))
        return AF_INET;
    return a->ss.ss_family == AF_INET6 ? AF_INET6 : AF_UNSPEC;
}

/* ---- networks ---- */

static bool prefix_equal(const uint8_t *a, const uint8_t *b, unsigned bits)
{
    unsigned bytes = bits / 8, rest = bits % 8;

    if (memcmp(a, b, bytes) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a[bytes] & mask) == (b[bytes] & mask);
}

static void clear_host_bits(uint8_t *addr, size_t len, unsigned prefix)
{
    for (size_t i = 0; i < len; i++) {
        unsigned keep = prefix > i * 8 ? prefix - (unsigned)i * 8 : 0;
        if (keep < 8)
            addr[i] &= (uint8_t)(0xff << (8 - keep));
    }
}

int cidr_parse(const char *s, struct cidr *out, char *err, size_t errlen)
{
    char ip[INET6_ADDRSTRLEN + 1];
    const char *slash = strchr(s, '/');
    size_t iplen = slash ? (size_t)(slash - s) : strlen(s);
    unsigned long prefix = 0, max;
    uint8_t clean[16];

    memset(out, 0, sizeof(*out));
    if (iplen == 0 || iplen >= sizeof(ip)) {
        snprintf(err, errlen, "invalid network \"%s\"", s);
        return -1;
    }
    memcpy(ip, s, iplen);
    ip[iplen] = '\0';
    if (inet_pton(AF_INET, ip, out->addr) == 1)
        out->family = AF_INET;
    else if (inet_pton(AF_INET6, ip, out->addr) == 1)
        out->family = AF_INET6;
    else {
        snprintf(err, errlen, "invalid network \"%s\"", s);
        return -1;
    }
    max = out->family == AF_INET ? 32 : 128;
    if (slash) {
        const char *p = slash + 1;
        if (!*p || strlen(p) > 3)
            prefix = max + 1;
        for (; *p && prefix <= max; p++)
            prefix =
                isdigit((unsigned char)*p) ? prefix * 10 + (*p - '0') : max + 1;
        if (prefix > max) {
            snprintf(err, errlen, "invalid prefix length in \"%s\"", s);
            return -1;
        }
    } else {
        prefix = max;
    }
    out->prefix = (unsigned)prefix;

    memcpy(clean, out->addr, sizeof(clean));
    clear_host_bits(clean, max / 8, out->prefix);
    if (memcmp(clean, out->addr, max / 8) != 0) {
        char net[INET6_ADDRSTRLEN];
        inet_ntop(out->family, clean, net, sizeof(net));
        snprintf(err, errlen, "host bits set in \"%s\" (network is %s/%u)", s,
                 net, out->prefix);
        return -1;
    }

    /* ::ffff:192.0.2.0/120 is the IPv4 network 192.0.2.0/24 */
    if (out->family == AF_INET6 && out->prefix >= 96 &&
        IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)out->addr)) {
        memmove(out->addr, out->addr + 12, 4);
        memset(out->addr + 4, 0, 12);
        out->family = AF_INET;
        out->prefix -= 96;
    }
    return 0;
}

/*
 * An IPv4 network matches IPv4 and IPv4-mapped clients; an IPv6 network
 * matches only real IPv6 clients, so "::/0" does not swallow IPv4.
 */
bool cidr_match(const struct cidr *net, const struct netaddr *a)
{
    const uint8_t *v4 = v4_bytes(a);

    if (net->family == AF_INET)
        return v4 && prefix_equal(net->addr, v4, net->prefix);
    if (net->family != AF_INET6 || v4 || a->ss.ss_family != AF_INET6)
        return false;
    return prefix_equal(
        net->addr, ((const struct sockaddr_in6 *)&a->ss)->sin6_addr.s6_addr,
        net->prefix);
}

/* ---- lists ---- */

int cidr_list_add(struct cidr_list *l, const struct cidr *c)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        struct cidr *v = realloc(l->v, cap * sizeof(*v));
        if (!v)
            return -1;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = *c;
    return 0;
}

/*
 * Linear scan: access lists are short. A list loaded from a large block
 * file would want a prefix tree; change it here if that day comes.
 */
bool cidr_list_match(const struct cidr_list *l, const struct netaddr *a)
{
    for (size_t i = 0; i < l->n; i++)
        if (cidr_match(&l->v[i], a))
            return true;
    return false;
}

void cidr_list_free(struct cidr_list *l)
{
    free(l->v);
    memset(l, 0, sizeof(*l));
}

/* Strip a '#' comment and surrounding blanks in place. */
static char *trim_line(char *line)
{
    char *end;

    line[strcspn(line, "#\r\n")] = '\0';
    while (isspace((unsigned char)*line))
        line++;
    end = line + strlen(line);
    while (end > line && isspace((unsigned char)end[-1]))
        *--end = '\0';
    return line;
}

/* On error the list is left as it was: a half-loaded file never counts. */
int cidr_list_load_file(struct cidr_list *l, const char *path, char *err,
                        size_t errlen)
{
    FILE *f = fopen(path, "r");
    size_t old_n = l->n, cap = 0;
    unsigned lineno = 0;
    char *buf = NULL, reason[256];
    int rc = 0;

    if (!f) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    while (rc == 0 && getline(&buf, &cap, f) >= 0) {
        char *line = trim_line(buf);
        struct cidr c;

        lineno++;
        if (!*line)
            continue;
        if (cidr_parse(line, &c, reason, sizeof(reason)) != 0) {
            snprintf(err, errlen, "%s:%u: %s", path, lineno, reason);
            rc = -1;
        } else if (cidr_list_add(l, &c) != 0) {
            snprintf(err, errlen, "%s:%u: out of memory", path, lineno);
            rc = -1;
        }
    }
    /* getline() also stops at ENOMEM without setting the error flag: a
     * list cut short there must not load as if the file had ended. */
    if (rc == 0 && (ferror(f) || !feof(f))) {
        snprintf(err, errlen, "%s: read error: %s", path, strerror(errno));
        rc = -1;
    }
    free(buf);
    fclose(f);
    if (rc != 0)
        l->n = old_n;
    return rc;
}
