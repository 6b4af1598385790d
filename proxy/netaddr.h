/*
 * netaddr: socket addresses, "host:port" endpoints and CIDR networks.
 *
 * Pure helpers with no I/O: the config loader, the PROXY protocol code and
 * the access check all parse and compare addresses through this module, so
 * an address means the same thing everywhere (IPv4-mapped IPv6 addresses
 * are matched as IPv4).
 */
#ifndef WARDEN_NETADDR_H
#define WARDEN_NETADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Long enough for "[ffff:...:ffff]:65535" and a NUL. */
#define NETADDR_STRLEN 64

/* An IP address with its port; family is AF_INET or AF_INET6. */
struct netaddr {
    struct sockaddr_storage ss;
    socklen_t len;
};

/* A network: address bytes (16 for IPv6, first 4 used for IPv4) and prefix. */
struct cidr {
    int family;            /* AF_INET or AF_INET6 */
    uint8_t addr[16];      /* network address, host bits cleared */
    unsigned prefix;       /* 0..32 or 0..128 */
};

/* A growable list of networks. */
struct cidr_list {
    struct cidr *v;
    size_t n, cap;
};

/*
 * Parse "host:port", "[v6]:port" or, when default_port >= 0, a bare host.
 * host must be a numeric IP address ("*" means 0.0.0.0, "[::]" all v6).
 * Returns 0, or -1 with a short reason in err (errlen bytes).
 */
int netaddr_parse(const char *s, int default_port, struct netaddr *out,
                  char *err, size_t errlen);

/* Build from a sockaddr (copies at most sizeof(ss)). */
void netaddr_from_sockaddr(struct netaddr *a, const struct sockaddr *sa,
                           socklen_t len);

/* Build from a numeric IP string and a port; returns 0 or -1. */
int netaddr_from_ip(struct netaddr *a, const char *ip, unsigned port);

/* "1.2.3.4" or "2001:db8::1" (no brackets, no port); IPv4-mapped shown as v4. */
const char *netaddr_ip(const struct netaddr *a, char *buf, size_t len);

/* "1.2.3.4:25" or "[2001:db8::1]:25". */
const char *netaddr_str(const struct netaddr *a, char *buf, size_t len);

unsigned netaddr_port(const struct netaddr *a);

/* AF_INET for IPv4 and IPv4-mapped IPv6, AF_INET6 otherwise. */
int netaddr_family(const struct netaddr *a);

/*
 * Parse "192.0.2.0/24", "2001:db8::/32" or a bare address (host route).
 * Host bits set below the prefix are an error ("192.0.2.1/24"), since they
 * usually mean a typo. Returns 0, or -1 with a reason in err.
 */
int cidr_parse(const char *s, struct cidr *out, char *err, size_t errlen);

bool cidr_match(const struct cidr *net, const struct netaddr *a);

int cidr_list_add(struct cidr_list *l, const struct cidr *c);
bool cidr_list_match(const struct cidr_list *l, const struct netaddr *a);
void cidr_list_free(struct cidr_list *l);

/*
 * Load a file with one network per line; '#' starts a comment, blank lines
 * are skipped. On error returns -1 and writes "path:line: reason" to err.
 */
int cidr_list_load_file(struct cidr_list *l, const char *path, char *err,
                        size_t errlen);

#endif
