/*
 * datascan: find the end of DATA and police the message's line structure.
 *
 * Only CRLF "." CRLF ends the message. A bare LF or bare CR never ends a
 * line for the purpose of finding the end, so "\n.\n", "\r.\r", "\r\n.\n"
 * and the other SMTP smuggling variants are message content here.
 *
 * Strict mode (the default) copies the bytes through exactly as sent,
 * dot-stuffing included, and flags stray CR, LF and NUL so the session can
 * refuse the message; the backend never sees a byte of a flagged message.
 *
 * Normalize mode turns every stray CR or LF into CRLF, drops NUL bytes, and
 * dot-stuffs any line that begins with "." because of that rewriting (and
 * any line that would read as a lone "."), so the backend can never see an
 * end of data the client did not send.
 *
 * Chunked mode is for BDAT (RFC 3030): the content is counted by the
 * client, not ended by a dot, so there is no dot-stuffing and no end
 * marker; the line policing and limits are the same.
 *
 * Pure: bytes in, bytes out to an evbuffer; fuzzable without sockets.
 */
#ifndef WARDEN_DATASCAN_H
#define WARDEN_DATASCAN_H

#include <stdbool.h>
#include <stddef.h>

struct evbuffer;

enum datascan_flag {
    DS_BARE_LF = 1u << 0,
    DS_BARE_CR = 1u << 1,
    DS_NUL = 1u << 2,
    DS_LONG_LINE = 1u << 3,   /* a line over max_line octets incl. CRLF */
    DS_TOO_BIG = 1u << 4,     /* more than max_size octets of content */
};

struct datascan {
    /* settings */
    bool normalize;
    bool dots;                /* DATA: dot-stuffing and CRLF.CRLF end */
    size_t max_line;          /* octets including CRLF */
    size_t max_size;          /* content octets; 0: unlimited */
    /* results */
    unsigned flags;
    size_t size;              /* content octets seen (stored or not),
                               * without the dots that stuff lines */
    /* line state */
    size_t linelen;           /* octets on the current line, no terminator */
    bool real_start;          /* the line began after a real CRLF */
    bool first_pending;       /* no content byte on this line yet */
    bool raw_first_nondot;    /* normalize: a NUL came before the first byte */
    bool dot_held;            /* a leading "." not yet written out */
    bool dot_dirty;           /* normalize: a NUL followed that "." */
    bool cr_held;             /* a CR not yet known to be part of CRLF */
};

void datascan_init(struct datascan *ds, bool normalize, size_t max_line,
                   size_t max_size);

/* BDAT content: no dots, no end marker (see datascan_finish). */
void datascan_init_chunked(struct datascan *ds, bool normalize,
                           size_t max_line, size_t max_size);

/* End of BDAT content: settle a CR held at the very end. */
void datascan_finish(struct datascan *ds, struct evbuffer *out);

/*
 * Scan len bytes. Message content goes to out (the final ".\r\n" does not);
 * once the message is certain to be refused, nothing more is written.
 * Returns the bytes consumed; *done becomes true when the end of data was
 * consumed, and bytes after it are left for the command parser.
 */
size_t datascan_feed(struct datascan *ds, const char *buf, size_t len,
                     struct evbuffer *out, bool *done);

/* Flags that make the message unacceptable in this mode. */
unsigned datascan_refusal(const struct datascan *ds);

#endif
