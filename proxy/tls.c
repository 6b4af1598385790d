/*
 * tls: OpenSSL context setup.
 */
#include "tls.h"

#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "config.h"

const char *tls_error(char *buf, size_t len)
{
    unsigned long e = ERR_get_error();

    if (!e) {
        snprintf(buf, len, "unknown TLS error");
        return buf;
    }
    ERR_error_string_n(e, buf, len);
    ERR_clear_error();
    return buf;
}

static int min_version(const char *v)
{
    return (v && strcmp(v, "TLSv1.3") == 0) ? TLS1_3_VERSION : TLS1_2_VERSION;
}

SSL_CTX *tls_server_ctx_new(const struct config *cfg, struct errors *errs)
{
    const char *file = cfg->path ? cfg->path : "(defaults)";
    char e[256];
    SSL_CTX *ctx;

    if (!cfg->tls.certificate)
        return NULL;
    ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        errors_add(errs, file, 0, "tls: %s", tls_error(e, sizeof(e)));
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, min_version(cfg->tls.min_version));
    /* Renegotiation only helps attackers on SMTP. */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    if (cfg->tls.ciphers &&
        !SSL_CTX_set_cipher_list(ctx, cfg->tls.ciphers)) {
        errors_add(errs, file, 0, "tls.ciphers: %s", tls_error(e, sizeof(e)));
        goto fail;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls.certificate) != 1) {
        errors_add(errs, cfg->tls.certificate, 0, "cannot load certificate: %s",
                   tls_error(e, sizeof(e)));
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, cfg->tls.key, SSL_FILETYPE_PEM) != 1) {
        errors_add(errs, cfg->tls.key, 0, "cannot load private key: %s",
                   tls_error(e, sizeof(e)));
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        errors_add(errs, cfg->tls.key, 0,
                   "private key does not match the certificate");
        goto fail;
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

SSL_CTX *tls_backend_ctx_new(const struct config *cfg, struct errors *errs)
{
    const struct backend_conf *b = &cfg->backend;
    const char *file = cfg->path ? cfg->path : "(defaults)";
    char e[256];
    SSL_CTX *ctx;

    if (b->tls == BACKEND_TLS_NONE)
        return NULL;
    ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        errors_add(errs, file, 0, "backend tls: %s", tls_error(e, sizeof(e)));
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (b->tls_verify) {
        int ok = b->tls_ca_file
                     ? SSL_CTX_load_verify_locations(ctx, b->tls_ca_file, NULL)
                     : SSL_CTX_set_default_verify_paths(ctx);
        if (ok != 1) {
            errors_add(errs, b->tls_ca_file ? b->tls_ca_file : file, 0,
                       "cannot load CA certificates: %s",
                       tls_error(e, sizeof(e)));
            SSL_CTX_free(ctx);
            return NULL;
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    }
    return ctx;
}

SSL *tls_backend_ssl_new(SSL_CTX *ctx, const struct config *cfg)
{
    const struct backend_conf *b = &cfg->backend;
    SSL *ssl = SSL_new(ctx);

    if (!ssl)
        return NULL;
    if (b->tls_server_name) {
        SSL_set_tlsext_host_name(ssl, b->tls_server_name);
        if (b->tls_verify)
            SSL_set1_host(ssl, b->tls_server_name);
    }
    return ssl;
}

const char *tls_describe(SSL *ssl, char *buf, size_t len)
{
    snprintf(buf, len, "%s:%s", SSL_get_version(ssl),
             SSL_CIPHER_get_name(SSL_get_current_cipher(ssl)));
    return buf;
}
