/*
 * msgbuf: a private copy of the spooled message for a check that hands it
 * to a worker thread (DKIM verification and signing).
 *
 * The copy is made on the session's loop: the spool belongs to the
 * session and may be freed while a worker still runs (a client that
 * disconnects cancels the job, but cannot stop a thread mid-call). The
 * worker then owns the copy and undoes SMTP dot-stuffing (RFC 5321
 * 4.5.2), since signatures are over the message, not the DATA stream.
 */
#ifndef WARDEN_MSGBUF_H
#define WARDEN_MSGBUF_H

#include <stddef.h>

struct spool;

/* The first max bytes of sp (all of it if smaller) in a new buffer the
 * caller frees; *len gets its length. NULL when memory runs out. */
char *msgbuf_copy(struct spool *sp, size_t max, size_t *len);

/* The same for the header only: the first bytes up to and including
 * the empty line that ends it, at most max (a bigger header is cut). */
char *msgbuf_header(struct spool *sp, size_t max, size_t *len);

/* Undo dot-stuffing in place: a line starting with "." loses that dot
 * (RFC 5321 4.5.2). Returns the new length. */
size_t msgbuf_unstuff(char *buf, size_t len);

#endif
