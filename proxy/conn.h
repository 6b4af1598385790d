/*
 * conn: one TCP connection with input and output buffers, for the client
 * side and the backend side alike.
 *
 * Why not plain bufferevents: libevent 2.1 reads at most 4096 bytes per
 * readv (after an FIONREAD ioctl each time) and adds and removes the write
 * event around every reply. On a proxy that is most of its system calls.
 * A plain conn reads up to 64 KB per call and writes once per loop
 * iteration from a deferred callback, arming EV_WRITE only when the
 * kernel buffer is full. Once TLS starts, the conn hands its socket to a
 * libevent OpenSSL filter and becomes a thin wrapper around it.
 *
 * Events use libevent's BEV_EVENT_* flags. A conn may be freed from inside
 * its own callbacks; it is then released when the callback returns.
 */
#ifndef WARDEN_CONN_H
#define WARDEN_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include <event2/bufferevent.h>
#include <event2/util.h>
#include <openssl/ssl.h>

struct event_base;
struct evbuffer;
struct conn;

struct conn_ops {
    void (*read)(void *arg);              /* input has new data */
    void (*write)(void *arg);             /* output fell to the low mark */
    void (*event)(void *arg, short what); /* BEV_EVENT_{CONNECTED,EOF,...} */
};

/* Take over a connected, non-blocking socket. */
struct conn *conn_new(struct event_base *base, evutil_socket_t fd,
                      const struct conn_ops *ops, void *arg);

/* Connect; BEV_EVENT_CONNECTED or an error event follows, from the loop. */
struct conn *conn_connect(struct event_base *base, const struct sockaddr *sa,
                          socklen_t len, unsigned timeout_ms,
                          const struct conn_ops *ops, void *arg);

void conn_free(struct conn *c);

struct evbuffer *conn_input(struct conn *c);
/* Add to the output; it is written at the end of this loop iteration. */
struct evbuffer *conn_output(struct conn *c);
void conn_write(struct conn *c, const void *data, size_t len);

/* Milliseconds, 0 for none. Reading times out only while reading is on. */
void conn_set_timeouts(struct conn *c, unsigned read_ms, unsigned write_ms);
void conn_read_enable(struct conn *c, bool on);
/* Stop reading the socket while this much input is unconsumed. */
void conn_set_read_high(struct conn *c, size_t high);
/* ops->write is called when the output drops to lowmark (default 0). */
void conn_set_write_low(struct conn *c, size_t lowmark);

/*
 * Start TLS on this connection (accepting: server side). Unread input is
 * discarded first: nothing sent in clear text before the handshake may be
 * read after it. Output already queued goes out before the handshake.
 * BEV_EVENT_CONNECTED reports the finished handshake.
 */
int conn_start_tls(struct conn *c, SSL *ssl, bool accepting);
/*
 * After the last bytes: on TLS, queue close_notify behind them and call
 * ops->write once all of it is in the kernel (freeing the conn earlier
 * would drop what the TLS layer still holds, the 221 to QUIT say).
 * Returns false on a plain connection: nothing to wait for beyond its
 * output buffer.
 */
bool conn_finish(struct conn *c);
SSL *conn_ssl(struct conn *c);              /* NULL before TLS */
unsigned long conn_tls_error(struct conn *c);
evutil_socket_t conn_fd(struct conn *c);
int conn_errno(struct conn *c);             /* of the last error event */

#endif
