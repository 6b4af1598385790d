/*
 * runtime: a loaded configuration plus what is built from it (TLS
 * contexts). This is the snapshot a session holds from start to end; a
 * reload builds a new one and swaps the pointer, so sessions in flight
 * finish on the settings they started with.
 */
#ifndef WARDEN_RUNTIME_H
#define WARDEN_RUNTIME_H

#include <openssl/ssl.h>

#include "config.h"

struct runtime {
    struct config *cfg;
    SSL_CTX *server_tls;    /* NULL when no certificate is configured */
    SSL_CTX *backend_tls;   /* NULL when backend STARTTLS is off */
    unsigned refs;
};

/* Takes ownership of cfg. NULL with errs filled when TLS setup fails. */
struct runtime *runtime_new(struct config *cfg, struct errors *errs);
struct runtime *runtime_ref(struct runtime *rt);
void runtime_unref(struct runtime *rt);

#endif
