/*
 * smtp_reply: incremental parser for backend replies.
 */
#include "smtp_reply.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static bool append(struct smtp_reply *r, const char *line, size_t len)
{
    char *p = realloc(r->raw, r->len + len + 3);

    if (!p)
        return false;
    r->raw = p;
    memcpy(r->raw + r->len, line, len);
    r->len += len;
    r->raw[r->len++] = '\r';
    r->raw[r->len++] = '\n';
    r->raw[r->len] = '\0';
    return true;
}

enum reply_status smtp_reply_feed(struct smtp_reply *r, const char *line,
                                  size_t len)
{
    int code;

    if (len < 3 || len > SMTP_REPLY_MAX_LINE)
        return REPLY_BAD;
    if (!isdigit((unsigned char)line[0]) || line[0] < '2' || line[0] > '5' ||
        !isdigit((unsigned char)line[1]) || !isdigit((unsigned char)line[2]))
        return REPLY_BAD;
    if (len > 3 && line[3] != ' ' && line[3] != '-')
        return REPLY_BAD;
    if (memchr(line, '\0', len) || memchr(line, '\r', len))
        return REPLY_BAD;
    code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    if (r->nlines > 0 && code != r->code)
        return REPLY_BAD;
    if (r->nlines >= SMTP_REPLY_MAX_LINES || !append(r, line, len))
        return REPLY_BAD;
    r->code = code;
    r->nlines++;
    return (len > 3 && line[3] == '-') ? REPLY_MORE : REPLY_DONE;
}

void smtp_reply_reset(struct smtp_reply *r)
{
    free(r->raw);
    memset(r, 0, sizeof(*r));
}

const char *smtp_reply_line(const struct smtp_reply *r, size_t i, size_t *len)
{
    const char *p = r->raw, *end = r->raw + r->len;

    for (; i > 0 && p < end; i--) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        p = nl ? nl + 1 : end;
    }
    if (p >= end) {
        *len = 0;
        return end;
    }
    const char *eol = memchr(p, '\r', (size_t)(end - p));
    size_t linelen = (size_t)((eol ? eol : end) - p);
    if (linelen <= 4) {
        *len = 0;
        return p + linelen;
    }
    *len = linelen - 4;
    return p + 4;
}

const char *smtp_reply_last(const struct smtp_reply *r, char *buf,
                            size_t buflen)
{
    size_t n, start = 0;

    if (buflen == 0)
        return "";
    if (r->nlines == 0) {
        buf[0] = '\0';
        return buf;
    }
    n = r->len >= 2 ? r->len - 2 : 0; /* strip the last CRLF */
    for (size_t i = n; i > 0; i--) {
        if (r->raw[i - 1] == '\n') {
            start = i;
            break;
        }
    }
    n -= start;
    if (n >= buflen)
        n = buflen - 1;
    memcpy(buf, r->raw + start, n);
    buf[n] = '\0';
    return buf;
}
