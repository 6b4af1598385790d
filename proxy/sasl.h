/*
 * sasl: learn who authenticated from an AUTH exchange Warden relays.
 *
 * Warden does not check passwords: the backend does. When the backend
 * answers 235, the session asks this module which user name the client
 * presented, so limits can key on it. Only the first client response is
 * needed for every common mechanism; it is wiped after use.
 */
#ifndef WARDEN_SASL_H
#define WARDEN_SASL_H

#include <stddef.h>

/* Decode base64 (RFC 4648, padding optional). Returns length or -1. */
long sasl_base64_decode(const char *in, size_t len, unsigned char *out,
                        size_t cap);

/*
 * The user name in a mechanism's first client response (base64 as sent).
 * Writes "" when the mechanism does not carry a name in it or it cannot
 * be decoded. Handles PLAIN, LOGIN, CRAM-MD5, SCRAM-*, XOAUTH2, OAUTHBEARER.
 */
void sasl_user(const char *mech, const char *response, size_t len, char *user,
               size_t cap);

#endif
