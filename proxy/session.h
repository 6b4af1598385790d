/*
 * session: one client connection, relayed to one backend connection.
 *
 * The session owns the SMTP dialogue towards the client: framing and line
 * limits, the command table, pipelining (replies in order, several
 * commands per packet), STARTTLS, AUTH relaying, DATA with its smuggling
 * defences, and the engine checkpoints. It answers locally what it must
 * and relays the rest to the backend, matching replies to commands in
 * order. Nothing is ever answered 250 for a message before the backend's
 * own 250 for it.
 */
#ifndef WARDEN_SESSION_H
#define WARDEN_SESSION_H

#include <event2/util.h>

struct loop;
struct runtime;
struct listener_conf;
struct session;

/* Take over an accepted socket. Returns NULL (socket closed) on failure. */
struct session *session_new(struct loop *lp, struct runtime *rt,
                            const struct listener_conf *lc,
                            evutil_socket_t fd, const struct sockaddr *peer,
                            int peerlen);

/* Shutdown: close now if idle, else after the current transaction. */
void session_shutdown(struct session *s);

/* Close at once (drain timeout); clients see the connection drop. */
void session_abort(struct session *s);

#endif
