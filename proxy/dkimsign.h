/*
 * dkimsign: DKIM signing (RFC 6376) with libopendkim, for mail that
 * authenticated users send (check_dkim_sign.c decides who and what).
 *
 * relaxed/relaxed canonicalization; rsa-sha256 (ed25519-sha256, RFC
 * 8463, once the library allows: see DKIMS_ED25519_SIGNING). Signed:
 * the header fields RFC 6376 5.4.1 suggests that the message has (From,
 * To, Cc, Subject, Date, Message-ID, MIME fields, Reply-To, In-Reply-To,
 * References, List-*, ...), and From once more than present
 * ("oversigned"), so a second From: added later breaks the signature
 * instead of riding on it.
 *
 * Hashing a large message takes a while: call dkims_sign() on a worker
 * thread. Keys are checked when the policy is loaded (dkims_key_check).
 */
#ifndef WARDEN_DKIMSIGN_H
#define WARDEN_DKIMSIGN_H

#include <stddef.h>

enum dkims_alg { DKIMS_RSA_SHA256, DKIMS_ED25519_SHA256 };

/*
 * Ed25519 signing works with libopendkim 2.11 (verified by dkimpy), but
 * Debian 12's 2.11.0~beta2 never frees the key it loads for an Ed25519
 * signature (dkim_free() misses that case: ~1.3 KB per signed message;
 * fixed upstream in OpenDKIM PR #321). A daemon cannot live with that, so
 * dkims_key_check() refuses Ed25519 keys unless this is 1: set it once
 * the library is fixed. Verifying Ed25519 signatures is not affected.
 */
#ifndef DKIMS_ED25519_SIGNING
#define DKIMS_ED25519_SIGNING 0
#endif

/*
 * Is pem (len bytes) a private key we can sign with: RSA of at least
 * 1024 bits (RFC 8301), or Ed25519 when DKIMS_ED25519_SIGNING? Sets
 * *alg and *bits; returns 0, or -1 with the reason in err.
 */
int dkims_key_check(const char *pem, size_t len, enum dkims_alg *alg,
                    unsigned *bits, char *err, size_t errlen);

/*
 * Sign msg (the whole message, CRLF lines, not dot-stuffed) for domain
 * with selector and the PEM key. Returns "DKIM-Signature: ..." on one
 * line (no CRLF) for the caller to free, or NULL with the reason in err.
 * Blocking (hashing); thread-safe.
 */
char *dkims_sign(const char *msg, size_t len, const char *pem,
                 enum dkims_alg alg, const char *domain, const char *selector,
                 char *err, size_t errlen);

#endif
