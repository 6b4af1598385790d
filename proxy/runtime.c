/*
 * runtime: configuration snapshot with its TLS contexts.
 */
#include "runtime.h"

#include <stdlib.h>

#include "tls.h"

struct runtime *runtime_new(struct config *cfg, struct errors *errs)
{
    struct runtime *rt = calloc(1, sizeof(*rt));
    size_t before = errs->n;

    if (!rt) {
        config_unref(cfg);
        return NULL;
    }
    rt->cfg = cfg;
    rt->refs = 1;
    rt->server_tls = tls_server_ctx_new(cfg, errs);
    rt->backend_tls = tls_backend_ctx_new(cfg, errs);
    if (errs->n != before) {
        runtime_unref(rt);
        return NULL;
    }
    return rt;
}

struct runtime *runtime_ref(struct runtime *rt)
{
    __atomic_add_fetch(&rt->refs, 1, __ATOMIC_RELAXED);
    return rt;
}

void runtime_unref(struct runtime *rt)
{
    if (!rt || __atomic_sub_fetch(&rt->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    SSL_CTX_free(rt->server_tls);
    SSL_CTX_free(rt->backend_tls);
    config_unref(rt->cfg);
    free(rt);
}
