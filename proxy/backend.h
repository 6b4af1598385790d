/*
 * backend: Warden's connection to the backend MTA.
 *
 * It connects (trying each configured address in order), sends a PROXY
 * header when configured, reads the greeting, and when it needs the
 * backend's capabilities (XCLIENT, STARTTLS towards the backend) sends its
 * own EHLO and upgrades to TLS, discarding anything buffered before the
 * handshake. Then it reports ready, and from then on it carries the
 * session's commands and hands back each complete reply, in order.
 *
 * The backend knows nothing of the client; the session owns all SMTP
 * semantics. Callbacks come from the event loop; the session must not free
 * the backend from inside one (it defers its own teardown).
 */
#ifndef WARDEN_BACKEND_H
#define WARDEN_BACKEND_H

#include <stdbool.h>
#include <stddef.h>

#include "ehlo.h"
#include "netaddr.h"
#include "smtp_reply.h"

struct event_base;
struct evbuffer;
struct runtime;
struct backend;

struct backend_ops {
    /* Setup done. greeting is the backend's 220 (or other) banner; the
     * callee may keep it by taking its fields and zeroing *greeting. */
    void (*ready)(void *arg, struct smtp_reply *greeting);
    /* A complete reply to a command the session sent. Same ownership. */
    void (*reply)(void *arg, struct smtp_reply *r);
    /* The connection failed or was lost; no more callbacks after this. */
    void (*failed)(void *arg, const char *why);
    /* Output fell below the low-water mark set with backend_notify_drain. */
    void (*drained)(void *arg);
};

struct backend_params {
    const struct netaddr *client;   /* the real client, for PROXY headers */
    const struct netaddr *local;    /* what the client connected to */
    const char *session_id;
};

struct backend *backend_new(struct event_base *base, struct runtime *rt,
                            const struct backend_params *p,
                            const struct backend_ops *ops, void *arg);
void backend_free(struct backend *b);

/* Drop the connection now, silently (no failed callback); safe inside a
 * callback. The session still calls backend_free later. */
void backend_kill(struct backend *b);

/* Queue bytes for the backend. */
void backend_send(struct backend *b, const void *data, size_t len);
/* The output buffer, to move large content in without copying. */
struct evbuffer *backend_output(struct backend *b);

/* Expect a reply within ms (0: the backend may stay silent: idle). */
void backend_expect_reply(struct backend *b, unsigned ms);

/* Call ops->drained once the output holds fewer than lowmark bytes. */
void backend_notify_drain(struct backend *b, size_t lowmark);

/* Capabilities from Warden's own EHLO (valid when has_caps). */
bool backend_has_caps(const struct backend *b);
const struct smtp_caps *backend_caps(const struct backend *b);
bool backend_tls(const struct backend *b);
const char *backend_peer(const struct backend *b);   /* "127.0.0.1:10025" */

#endif
