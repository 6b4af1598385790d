/*
 * msghdr: the header fields at the start of a message (RFC 5322 2.2), for
 * checks that read them (From:, Authentication-Results:, DKIM-Signature:)
 * and for the proxy, which deletes fields the engine asked to remove.
 *
 * Works on the bytes as spooled: CRLF line ends, dot-stuffed or not. A
 * field is its name, the colon and every continuation line (starting with
 * a blank) with their CRLFs. The header ends at the first empty line, at
 * a line that is not a field (no colon, or a blank or control in the
 * name), or where the buffer ends; a field cut by the end of the buffer
 * is not reported, so a caller never acts on half a field.
 */
#ifndef WARDEN_MSGHDR_H
#define WARDEN_MSGHDR_H

#include <stdbool.h>
#include <stddef.h>

struct header_removals;

struct msghdr_field {
    const char *name;      /* in the buffer, not NUL-terminated */
    size_t name_len;
    const char *value;     /* after the colon, folding included, without
                            * the final CRLF */
    size_t value_len;
    size_t off, len;       /* the whole field in the buffer, CRLF included */
};

/* fn returns non-zero to stop. Returns the number of fields seen. */
size_t msghdr_scan(const char *buf, size_t len, bool dot_stuffed,
                   int (*fn)(void *arg, const struct msghdr_field *f),
                   void *arg);

/* Byte ranges of buf to leave out when the message is sent on. */
struct msghdr_range {
    size_t off, len;
};

/* The ranges of the fields rm names (index-th field of that name, names
 * compared without case), in order of offset, at most max. Returns how
 * many were found (a field that does not exist is ignored). */
size_t msghdr_ranges(const char *buf, size_t len, bool dot_stuffed,
                     const struct header_removals *rm,
                     struct msghdr_range *out, size_t max);

#endif
