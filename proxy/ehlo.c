/*
 * ehlo: capability parsing and filtering.
 */
#include "ehlo.h"

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "smtp_reply.h"
#include "xclient.h"

/*
 * Extensions relayed as announced. Everything else is dropped: CHUNKING
 * unless the caller relays BDAT, BINARYMIME (BDAT of content that is not
 * text lines, which Warden polices), BURL, ATRN/TURN, XEXCH50, and
 * any private extension whose commands Warden would answer with 502.
 * REQUIRETLS is dropped too: Warden cannot promise TLS on every hop.
 */
static const char *const relayed[] = {
    "PIPELINING", "8BITMIME", "SMTPUTF8", "DSN", "ENHANCEDSTATUSCODES",
    "VRFY", "ETRN", "DELIVERBY", "MT-PRIORITY", "FUTURERELEASE", "RRVS",
    "LIMITS", "NO-SOLICITING", "MTRK", "HELP", "EXPN", "AUTH", "SIZE",
};

static size_t keyword_len(const char *s, size_t len)
{
    size_t n = 0;

    while (n < len && s[n] != ' ' && s[n] != '=')
        n++;
    return n;
}

static bool keyword_is(const char *s, size_t klen, const char *kw)
{
    return strlen(kw) == klen && strncasecmp(s, kw, klen) == 0;
}

static unsigned parse_xclient_attrs(const char *s, size_t len)
{
    unsigned attrs = 0;
    size_t i = 0;

    while (i < len) {
        while (i < len && s[i] == ' ')
            i++;
        size_t start = i;
        while (i < len && s[i] != ' ')
            i++;
        attrs |= xclient_attr_from_name(s + start, i - start);
    }
    return attrs;
}

/*
 * The number after "SIZE" (" 10240000" or "=10240000"), 0 when there is
 * none; saturates like strtoull. It reads only this line: the text is not
 * NUL-terminated, and strtoull, which skips whitespace, went on through a
 * trailing "SIZE " and its CRLF into the next line, so "250-SIZE \r\n
 * 250-PIPELINING" meant a 250-byte limit (found by
 * tests/fuzz/fuzz_smtp_reply.c).
 */
static unsigned long long size_value(const char *s, size_t len)
{
    unsigned long long v = 0;
    size_t i = 1; /* past the ' ' or '=' after the keyword */

    while (i < len && (s[i] == ' ' || s[i] == '\t'))
        i++;
    for (; i < len && isdigit((unsigned char)s[i]); i++) {
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (ULLONG_MAX - d) / 10)
            return ULLONG_MAX;
        v = v * 10 + d;
    }
    return v;
}

static void caps_line(struct smtp_caps *c, const char *s, size_t len)
{
    size_t k = keyword_len(s, len);

    if (keyword_is(s, k, "PIPELINING"))
        c->pipelining = true;
    else if (keyword_is(s, k, "STARTTLS"))
        c->starttls = true;
    else if (keyword_is(s, k, "CHUNKING"))
        c->chunking = true;
    else if (keyword_is(s, k, "SMTPUTF8"))
        c->smtputf8 = true;
    else if (keyword_is(s, k, "8BITMIME"))
        c->eightbitmime = true;
    else if (keyword_is(s, k, "DSN"))
        c->dsn = true;
    else if (keyword_is(s, k, "AUTH"))
        c->auth = true;
    else if (keyword_is(s, k, "SIZE")) {
        c->has_size = true;
        c->size = size_value(s + k, len - k);
    } else if (keyword_is(s, k, "XCLIENT")) {
        c->xclient_announced = true;
        c->xclient = parse_xclient_attrs(s + k, len - k);
    }
}

void smtp_caps_parse(const struct smtp_reply *ehlo, struct smtp_caps *out)
{
    memset(out, 0, sizeof(*out));
    for (size_t i = 1; i < ehlo->nlines; i++) {
        size_t len;
        const char *s = smtp_reply_line(ehlo, i, &len);
        caps_line(out, s, len);
    }
}

unsigned long long ehlo_effective_size(const struct smtp_caps *c,
                                       unsigned long long ours)
{
    if (!c->has_size || c->size == 0)
        return ours;
    if (ours == 0)
        return c->size;
    return c->size < ours ? c->size : ours;
}

static bool is_relayed(const char *s, size_t klen)
{
    for (size_t i = 0; i < sizeof(relayed) / sizeof(relayed[0]); i++)
        if (keyword_is(s, klen, relayed[i]))
            return true;
    return false;
}

/* Lines are collected first so the last one can get "250 " instead of "-". */
struct linebuf {
    char *v[SMTP_REPLY_MAX_LINES + 2];
    size_t len[SMTP_REPLY_MAX_LINES + 2];
    size_t n;
};

static void push(struct linebuf *b, const char *s, size_t len)
{
    if (b->n < sizeof(b->v) / sizeof(b->v[0])) {
        b->v[b->n] = (char *)s;
        b->len[b->n++] = len;
    }
}

void ehlo_filter(const struct smtp_reply *backend, const struct ehlo_view *v,
                 struct evbuffer *out)
{
    struct linebuf b = {.n = 0};
    struct smtp_caps caps;
    char sizeline[48];
    size_t len;
    const char *s;
    bool size_done = false;

    smtp_caps_parse(backend, &caps);
    s = smtp_reply_line(backend, 0, &len);
    push(&b, s, len);
    for (size_t i = 1; i < backend->nlines; i++) {
        s = smtp_reply_line(backend, i, &len);
        size_t k = keyword_len(s, len);
        bool chunking = keyword_is(s, k, "CHUNKING");
        if (!is_relayed(s, k) && !(chunking && v->relay_chunking))
            continue;
        if (keyword_is(s, k, "AUTH") && v->hide_auth)
            continue;
        if (keyword_is(s, k, "SIZE")) {
            if (size_done)
                continue;
            size_done = true;
            unsigned long long sz = ehlo_effective_size(&caps, v->max_size);
            if (sz)
                snprintf(sizeline, sizeof(sizeline), "SIZE %llu", sz);
            else
                strcpy(sizeline, "SIZE");
            push(&b, sizeline, strlen(sizeline));
            continue;
        }
        push(&b, s, len);
    }
    if (!size_done && v->max_size) {
        snprintf(sizeline, sizeof(sizeline), "SIZE %llu", v->max_size);
        push(&b, sizeline, strlen(sizeline));
    }
    if (v->offer_starttls)
        push(&b, "STARTTLS", 8);
    for (size_t i = 0; i < b.n; i++) {
        evbuffer_add_printf(out, "250%c", i + 1 == b.n ? ' ' : '-');
        evbuffer_add(out, b.v[i], b.len[i]);
        evbuffer_add(out, "\r\n", 2);
    }
}
