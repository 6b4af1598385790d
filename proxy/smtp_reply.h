/*
 * smtp_reply: parse the replies a backend MTA sends, line by line.
 *
 * A reply is one or more lines "NNN-text" ending with "NNN text" (or a bare
 * "NNN"). The parser keeps the lines as received, normalised to CRLF, so
 * the session can relay them to the client byte for byte.
 */
#ifndef WARDEN_SMTP_REPLY_H
#define WARDEN_SMTP_REPLY_H

#include <stdbool.h>
#include <stddef.h>

#define SMTP_REPLY_MAX_LINES 256
#define SMTP_REPLY_MAX_LINE 2048

struct smtp_reply {
    int code;
    char *raw;          /* every line with CRLF, NUL-terminated */
    size_t len;
    size_t nlines;
};

enum reply_status { REPLY_MORE, REPLY_DONE, REPLY_BAD };

/*
 * Feed one line without its line terminator. REPLY_DONE: *r holds a whole
 * reply (the caller takes it and calls smtp_reply_reset). REPLY_BAD: not
 * SMTP; the connection is unusable.
 */
enum reply_status smtp_reply_feed(struct smtp_reply *r, const char *line,
                                  size_t len);

void smtp_reply_reset(struct smtp_reply *r);  /* frees and zeroes */

/* Text of line i (0-based) after "NNN-"/"NNN ", not NUL-terminated. */
const char *smtp_reply_line(const struct smtp_reply *r, size_t i,
                            size_t *len);

/* The last line, CRLF removed, for logs: "250 2.0.0 Ok: queued as 4F2". */
const char *smtp_reply_last(const struct smtp_reply *r, char *buf,
                            size_t buflen);

static inline int smtp_reply_class(const struct smtp_reply *r)
{
    return r->code / 100;
}

#endif
