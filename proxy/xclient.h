/*
 * xclient: build Postfix XCLIENT commands that tell the backend who the
 * real client is (www.postfix.org/XCLIENT_README.html).
 *
 * Only attributes the backend announced are sent. Values are xtext-encoded
 * (RFC 3461), and a command never exceeds 512 octets: when the attributes do
 * not fit, they are split over several XCLIENT commands, each of which the
 * backend answers with a fresh 220 greeting.
 */
#ifndef WARDEN_XCLIENT_H
#define WARDEN_XCLIENT_H

#include <stddef.h>

#include "netaddr.h"

enum xclient_attr {
    XCLIENT_NAME = 1u << 0,
    XCLIENT_REVERSE_NAME = 1u << 1,
    XCLIENT_ADDR = 1u << 2,
    XCLIENT_PORT = 1u << 3,
    XCLIENT_PROTO = 1u << 4,
    XCLIENT_HELO = 1u << 5,
    XCLIENT_LOGIN = 1u << 6,
    XCLIENT_DESTADDR = 1u << 7,
    XCLIENT_DESTPORT = 1u << 8,
};

/* Attribute names as announced, e.g. "NAME" -> XCLIENT_NAME; 0 if unknown. */
unsigned xclient_attr_from_name(const char *name, size_t len);

enum name_status { NAME_OK, NAME_UNAVAILABLE, NAME_TEMPUNAVAIL };

struct xclient_info {
    const struct netaddr *client;
    const struct netaddr *local;
    enum name_status name_status;
    const char *name;           /* verified name when NAME_OK */
    const char *reverse_name;   /* PTR name, unverified; NULL if none */
    const char *helo;           /* NULL: [UNAVAILABLE] */
    const char *proto;          /* "SMTP"/"ESMTP"; NULL: not sent */
    const char *login;          /* NULL: [UNAVAILABLE] */
};

#define XCLIENT_LINE_MAX 512
#define XCLIENT_MAX_LINES 4

/*
 * Fill lines[] with "XCLIENT ...\r\n" commands (NUL-terminated) for the
 * attributes in `announced`. Returns how many lines (0 if nothing to send).
 */
size_t xclient_build(unsigned announced, const struct xclient_info *info,
                     char lines[][XCLIENT_LINE_MAX + 1], size_t maxlines);

#endif
