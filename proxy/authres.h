/*
 * authres: the Authentication-Results header field (RFC 8601), built from
 * the results of the checks.
 *
 * Pure formatting. A check adds its method and result ("spf=pass") and
 * properties ("smtp.mailfrom=alice@example.org"); a value that is neither
 * an RFC 2045 token nor a plain address is written as a quoted-string, so
 * nothing a client sent can break out of the field. The field stays on
 * one line below 998 octets: what does not fit is left out, never cut in
 * the middle of a property.
 *
 * One builder (check_authres.c) collects every method (SPF, DKIM, DMARC),
 * so a message gets a single field.
 */
#ifndef WARDEN_AUTHRES_H
#define WARDEN_AUTHRES_H

#include <stdbool.h>
#include <stddef.h>

#define AUTHRES_MAX 900

struct authres {
    char buf[AUTHRES_MAX];
    size_t len;
    bool any;       /* a method was added */
};

/* Start "Authentication-Results: <authserv_id>". */
void authres_init(struct authres *a, const char *authserv_id);
/* Add "; method=result". */
void authres_method(struct authres *a, const char *method,
                    const char *result);
/* Add " (comment)" after the method; ( ) \ and controls are dropped. */
void authres_comment(struct authres *a, const char *text);
/* Add " ptype.property=value" to the last method. */
void authres_prop(struct authres *a, const char *prop, const char *value);
/* The whole field, "Name: value" without CRLF ("; none" if no method). */
const char *authres_field(struct authres *a);

#endif
