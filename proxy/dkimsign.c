/*
 * dkimsign: see dkimsign.h.
 *
 * A library handle of its own, apart from the verifier's: the header
 * lists are library options. The signature comes back on one line
 * (margin 0): a verdict header carries no CRLF, and both front ends fold
 * nothing; a 4096-bit RSA signature still fits in 998 octets.
 */
#include "dkimsign.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <opendkim/dkim.h>

#define SIG_FIELD "DKIM-Signature: "
#define RSA_MIN_BITS 1024

static const char *sign_headers[] = {
    "from", "sender", "reply-to", "subject", "date", "message-id", "to",
    "cc", "mime-version", "content-type", "content-transfer-encoding",
    "content-id", "content-description", "resent-date", "resent-from",
    "resent-sender", "resent-to", "resent-cc", "resent-message-id",
    "in-reply-to", "references", "list-id", "list-help", "list-unsubscribe",
    "list-subscribe", "list-post", "list-owner", "list-archive", NULL,
};
static const char *oversign_headers[] = {"from", NULL};

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;
static DKIM_LIB *lib;

static void lib_init(void)
{
    if (!(lib = dkim_init(NULL, NULL)))
        return;
    dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_SIGNHDRS, sign_headers,
                 sizeof(char **));
    dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_OVERSIGNHDRS,
                 oversign_headers, sizeof(char **));
}

int dkims_key_check(const char *pem, size_t len, enum dkims_alg *alg,
                    unsigned *bits, char *err, size_t errlen)
{
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    EVP_PKEY *key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL)
                        : NULL;
    int rc = -1;

    BIO_free(bio);
    if (!key) {
        snprintf(err, errlen, "not a PEM private key (unencrypted)");
        return -1;
    }
    *bits = (unsigned)EVP_PKEY_get_bits(key);
    switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_RSA:
        *alg = DKIMS_RSA_SHA256;
        if (*bits < RSA_MIN_BITS)
            snprintf(err, errlen,
                     "a %u-bit RSA key: at least %d bits (RFC 8301), 2048 "
                     "recommended",
                     *bits, RSA_MIN_BITS);
        else
            rc = 0;
        break;
    case EVP_PKEY_ED25519:
        *alg = DKIMS_ED25519_SHA256;
#if DKIMS_ED25519_SIGNING
        rc = 0;
#else
        snprintf(err, errlen,
                 "an Ed25519 key: not used for signing, as Debian 12's "
                 "libopendkim leaks one per signature (OpenDKIM PR #321); "
                 "use RSA");
#endif
        break;
    default:
        snprintf(err, errlen, "neither an RSA nor an Ed25519 key");
    }
    EVP_PKEY_free(key);
    return rc;
}

char *dkims_sign(const char *msg, size_t len, const char *pem,
                 enum dkims_alg alg, const char *domain, const char *selector,
                 char *err, size_t errlen)
{
    DKIM *dkim;
    DKIM_STAT st;
    _Bool testkey;
    u_char *sig = NULL;
    size_t siglen = 0;
    char *field = NULL;

    pthread_once(&lib_once, lib_init);
    if (!lib) {
        snprintf(err, errlen, "signer unavailable");
        return NULL;
    }
    dkim = dkim_sign(lib, (const u_char *)"warden", NULL,
                     (dkim_sigkey_t)pem, (const u_char *)selector,
                     (const u_char *)domain, DKIM_CANON_RELAXED,
                     DKIM_CANON_RELAXED,
                     alg == DKIMS_ED25519_SHA256 ? DKIM_SIGN_ED25519SHA256
                                                 : DKIM_SIGN_RSASHA256,
                     -1, &st);
    if (!dkim) {
        snprintf(err, errlen, "%s", dkim_getresultstr(st));
        return NULL;
    }
    dkim_set_margin(dkim, 0);
    st = dkim_chunk(dkim, (u_char *)msg, len);
    if (st == DKIM_STAT_OK)
        st = dkim_chunk(dkim, NULL, 0);
    if (st == DKIM_STAT_OK)
        st = dkim_eom(dkim, &testkey);
    if (st == DKIM_STAT_OK)
        st = dkim_getsighdr_d(dkim, strlen(SIG_FIELD), &sig, &siglen);
    if (st != DKIM_STAT_OK) {
        const char *e = dkim_geterror(dkim);
        snprintf(err, errlen, "%s", e ? e : dkim_getresultstr(st));
    } else if ((field = malloc(strlen(SIG_FIELD) + siglen + 1))) {
        memcpy(field, SIG_FIELD, strlen(SIG_FIELD));
        memcpy(field + strlen(SIG_FIELD), sig, siglen);
        field[strlen(SIG_FIELD) + siglen] = '\0';
    }
    dkim_free(dkim);
    return field;
}
