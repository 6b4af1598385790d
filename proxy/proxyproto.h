/*
 * proxyproto: the HAProxy PROXY protocol, versions 1 (text) and 2 (binary).
 *
 * Pure functions over bytes: parse a header a trusted load balancer sent
 * us, and build the header we send to the backend. Nothing here decides
 * whether a peer is trusted; the listener does that before calling.
 */
#ifndef WARDEN_PROXYPROTO_H
#define WARDEN_PROXYPROTO_H

#include <stdbool.h>
#include <stddef.h>

#include "netaddr.h"

/* Longest header we accept: v1 is at most 107 bytes; v2 with TLVs more. */
#define PROXYPROTO_MAX_HEADER 1024

enum proxyproto_status {
    PROXYPROTO_OK,        /* header complete and valid */
    PROXYPROTO_NEED_MORE, /* valid so far, feed more bytes */
    PROXYPROTO_INVALID,   /* not a PROXY header, or malformed */
};

struct proxyproto_result {
    int version;          /* 1 or 2 */
    bool local;           /* v2 LOCAL / v1 UNKNOWN: keep the socket addresses */
    struct netaddr src;   /* valid unless local */
    struct netaddr dst;
    size_t header_len;    /* bytes to consume */
};

/*
 * Parse the start of buf (len bytes). Returns PROXYPROTO_NEED_MORE while a
 * prefix of a valid header; on PROXYPROTO_INVALID, *why (if not NULL) points
 * to a static reason.
 */
enum proxyproto_status proxyproto_parse(const unsigned char *buf, size_t len,
                                        struct proxyproto_result *out,
                                        const char **why);

/*
 * Build a header for the backend describing src -> dst. version is 1 or 2.
 * Families that differ (v4 client on a v6 listener) are sent as IPv6 with
 * IPv4-mapped addresses. Returns the length written, or 0 if cap is short.
 */
size_t proxyproto_build(int version, const struct netaddr *src,
                        const struct netaddr *dst, unsigned char *buf,
                        size_t cap);

#endif
