/*
 * uris: the URIs in a message's text, as uri rules see them.
 *
 * Plain text is searched for http://, https://, ftp:// and mailto: URIs,
 * for "www." and "ftp." host names without a scheme, and for e-mail
 * addresses. Each URI is added in the forms SpamAssassin also lists: as
 * written, with the scheme a client would assume ("http://www.x.com",
 * "mailto:a@x.com"), and with %-escapes decoded when it has any, so a
 * rule written for the host name still sees a host hidden in escapes.
 */
#ifndef WARDEN_URIS_H
#define WARDEN_URIS_H

#include <stddef.h>

struct strv;

/* At most this many URIs are kept per message: the rest is not scored. */
#define URIS_MAX 2000

/* Find the URIs in text[0..len) and add them to out. 0 or -1. */
int uris_from_text(const char *text, size_t len, struct strv *out);

/* Add one URI (from a link, or found in text) and its other forms. */
int uris_add(struct strv *out, const char *u, size_t n);

#endif
