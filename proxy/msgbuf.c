/*
 * msgbuf: see msgbuf.h.
 */
#define _GNU_SOURCE /* memmem */
#include "msgbuf.h"

#include <stdlib.h>
#include <string.h>

#include "spool.h"

char *msgbuf_copy(struct spool *sp, size_t max, size_t *len)
{
    size_t size = spool_size(sp), want = size < max ? size : max;
    char *buf = malloc(want + 1);

    *len = 0;
    if (!buf)
        return NULL;
    *len = want ? spool_peek(sp, buf, want) : 0;
    buf[*len] = '\0';
    return buf;
}

/* Most headers are a few KB: try this much first. */
#define HEADER_FIRST 16384

char *msgbuf_header(struct spool *sp, size_t max, size_t *len)
{
    size_t first = max < HEADER_FIRST ? max : HEADER_FIRST;
    char *buf = msgbuf_copy(sp, first, len), *end;

    if (buf && !memmem(buf, *len, "\r\n\r\n", 4) && *len == first &&
        first < max) {
        free(buf);
        buf = msgbuf_copy(sp, max, len);
    }
    if (buf && (end = memmem(buf, *len, "\r\n\r\n", 4))) {
        *len = (size_t)(end - buf) + 4;
        buf[*len] = '\0';
    }
    return buf;
}

size_t msgbuf_unstuff(char *buf, size_t len)
{
    size_t r = 0, w = 0;
    int bol = 1; /* at the beginning of a line */

    while (r < len) {
        char c = buf[r++];
        /* RFC 5321 4.5.2: the first dot of a line goes, whatever
         * follows it (what the backend will do too) */
        if (bol && c == '.') {
            bol = 0;
            continue;
        }
        buf[w++] = c;
        bol = c == '\n';
    }
    return w;
}
