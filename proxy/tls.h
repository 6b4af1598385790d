/*
 * tls: OpenSSL contexts for the client side (STARTTLS and implicit TLS
 * terminated at Warden) and the backend side (optional STARTTLS).
 */
#ifndef WARDEN_TLS_H
#define WARDEN_TLS_H

#include <stddef.h>

#include <openssl/ssl.h>

#include "errors.h"

struct config;

/* NULL with errs filled when the certificate or key cannot be used. */
SSL_CTX *tls_server_ctx_new(const struct config *cfg, struct errors *errs);
SSL_CTX *tls_backend_ctx_new(const struct config *cfg, struct errors *errs);

/* New SSL for a backend connection: SNI and name check when configured. */
SSL *tls_backend_ssl_new(SSL_CTX *ctx, const struct config *cfg);

/* "TLSv1.3:TLS_AES_256_GCM_SHA384" for logs. */
const char *tls_describe(SSL *ssl, char *buf, size_t len);

/* The last OpenSSL error as text (clears the queue). */
const char *tls_error(char *buf, size_t len);

#endif
