/*
 * fromaddr: the author domain of a message, from its From: header field
 * (RFC 5322 3.6.2), for DMARC (RFC 7489 3.1, 6.6.1) and for deciding
 * which key signs outbound mail.
 *
 * RFC 5322 allows one From: field holding a mailbox-list; DMARC needs one
 * domain. Anything else is reported as such, never guessed: no field,
 * several fields, several addresses, a group, an address literal or a
 * field that does not parse. Comments, quoted strings (an "@" inside one
 * is not the separator), display names and angle brackets are understood.
 *
 * Pure: bytes in, a lower-cased domain out; fuzzable without sockets.
 */
#ifndef WARDEN_FROMADDR_H
#define WARDEN_FROMADDR_H

#include <stdbool.h>
#include <stddef.h>

/* A domain name and its NUL (RFC 1035: 253 octets in presentation form). */
#define FROMADDR_DOMAIN_MAX 254

enum fromaddr_status {
    FROMADDR_OK,       /* one field, one mailbox: domain set */
    FROMADDR_NONE,     /* no From: field, or one with no address */
    FROMADDR_MULTI,    /* several From: fields */
    FROMADDR_MANY,     /* one field with several mailboxes */
    FROMADDR_BAD,      /* a field that does not parse, a group, a literal */
};

/* The domain of the one mailbox in a From: field's value (after the
 * colon, folding included), lower-cased and without a final dot. */
enum fromaddr_status fromaddr_parse(const char *value, size_t len,
                                    char *domain, size_t size);

/* The same for a whole message's header (CRLF lines, dot-stuffed or not,
 * as msghdr_scan reads it): every From: field is looked at. */
enum fromaddr_status fromaddr_of_message(const char *msg, size_t len,
                                         bool dot_stuffed, char *domain,
                                         size_t size);

/* "no From: field", ...: for logs and Authentication-Results comments. */
const char *fromaddr_status_text(enum fromaddr_status s);

#endif
