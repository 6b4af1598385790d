/*
 * libFuzzer target for the backend reply parser (proxy/smtp_reply.h) and the
 * EHLO capability filter (proxy/ehlo.h).
 *
 * Input: 8 header bytes, then the bytes a backend sends.
 *   [0]    ehlo_view flags: 1 offer_starttls, 2 hide_auth, 4 relay_chunking
 *   [1]    Warden's max_size, an index into max_sizes[]
 *   [2..7] chunk sizes (each + 1), used in turn to cut the stream
 *
 * The stream is framed the way backend.c's be_read does it (an evbuffer,
 * evbuffer_readln with EVBUFFER_EOL_CRLF, the over-long line check) and fed
 * to smtp_reply_feed twice: all at once, and in chunks cut by the header.
 * The two runs must see the same replies and fail at the same point.
 * For every whole reply it checks:
 *   - raw holds exactly nlines CRLF-terminated "NNN-"/"NNN " lines of one
 *     code, with no NUL, CR or LF inside a line; smtp_reply_line and
 *     smtp_reply_last (into exact-size heap buffers) agree with it;
 *     re-feeding raw's lines gives the same reply;
 *   - for a 250: smtp_caps_parse reads each line on its own (the caps of
 *     the reply are those of its lines, each parsed as the last line of a
 *     reply), and ehlo_filter's output is a well-formed 250 reply holding
 *     exactly the allow-listed capabilities (no XCLIENT, XFORWARD,
 *     BINARYMIME, the backend's STARTTLS, CHUNKING unless relayed, AUTH
 *     when hidden), one SIZE with the effective limit, our STARTTLS last.
 *
 * contrib/fuzz.sh smtp_reply
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "ehlo.h"
#include "smtp_reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#include "fuzzcheck.h"

#define HEADER 8
#define NGAPS 6

static const unsigned long long max_sizes[] = {
    0, 1, 1000, 10240000, 52428800, 18446744073709551615ULL,
};

/* What a run saw, as bytes, so two runs compare with memcmp. */
struct events {
    char *v;
    size_t n, cap;
};

static void ev_add(struct events *e, const void *p, size_t n)
{
    if (e->n + n > e->cap) {
        size_t cap = (e->n + n) * 2 + 64;
        char *v = realloc(e->v, cap);
        if (!v)
            abort();
        e->v = v;
        e->cap = cap;
    }
    memcpy(e->v + e->n, p, n);
    e->n += n;
}

static void ev_reply(struct events *e, char tag, const struct smtp_reply *r)
{
    ev_add(e, &tag, 1);
    ev_add(e, &r->code, sizeof(r->code));
    ev_add(e, &r->nlines, sizeof(r->nlines));
    ev_add(e, &r->len, sizeof(r->len));
    if (r->len)
        ev_add(e, r->raw, r->len);
}

/*
 * A heap copy of exactly n bytes (p NULL: uninitialised). For n == 0 it points just past a 1-byte
 * block (ASan lets malloc(0)'s byte be used), so any access is reported.
 * Free with dup_free(p, n).
 */
static char *dup_exact(const void *p, size_t n)
{
    char *c = n ? malloc(n) : calloc(1, 1);

    if (!c)
        abort();
    if (n == 0)
        return c + 1;
    if (p)
        memcpy(c, p, n);
    return c;
}

static void dup_free(char *c, size_t n)
{
    free(n ? c : c - 1);
}

/* ---- one reply ------------------------------------------------------------ */

struct line {
    const char *p; /* the whole line, "NNN-text" */
    size_t len;    /* without CRLF */
};

/* Split raw into its lines, checking the shape on the way. */
static size_t reply_lines(const struct smtp_reply *r, struct line *out)
{
    const char *p = r->raw, *end = r->raw + r->len;
    size_t n = 0;
    char code[4];

    snprintf(code, sizeof(code), "%03d", r->code);
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        CHECK(nl != NULL && nl > p && nl[-1] == '\r');
        CHECK(n < SMTP_REPLY_MAX_LINES);
        out[n].p = p;
        out[n].len = (size_t)(nl - 1 - p);
        CHECK(out[n].len >= 3 && out[n].len <= SMTP_REPLY_MAX_LINE);
        CHECK(memcmp(p, code, 3) == 0);
        CHECK(memchr(p, '\r', out[n].len) == NULL);
        n++;
        p = nl + 1;
    }
    return n;
}

static void check_shape(const struct smtp_reply *r, struct line *lines)
{
    size_t n;

    CHECK(r->code >= 200 && r->code <= 599);
    CHECK(r->nlines >= 1 && r->nlines <= SMTP_REPLY_MAX_LINES);
    CHECK(r->raw != NULL && r->raw[r->len] == '\0');
    CHECK(strlen(r->raw) == r->len); /* no NUL inside */
    n = reply_lines(r, lines);
    CHECK(n == r->nlines);
    for (size_t i = 0; i < n; i++) {
        if (i + 1 < n)
            CHECK(lines[i].len > 3 && lines[i].p[3] == '-');
        else
            CHECK(lines[i].len == 3 || lines[i].p[3] == ' ');
    }
}

static void check_accessors(const struct smtp_reply *r,
                            const struct line *lines, const uint8_t *hdr)
{
    const struct line *last = &lines[r->nlines - 1];
    size_t sizes[] = {0, 1, 2, 5, (size_t)hdr[2] + 1, 256, last->len,
                      last->len + 1, last->len + 2};

    for (size_t i = 0; i <= r->nlines + 1; i++) {
        size_t len = 99;
        const char *s = smtp_reply_line(r, i, &len);
        CHECK(s >= r->raw && s <= r->raw + r->len);
        CHECK(len <= (size_t)(r->raw + r->len - s));
        if (i >= r->nlines) {
            CHECK(len == 0);
            continue;
        }
        if (lines[i].len <= 4) {
            CHECK(len == 0);
        } else {
            CHECK(s == lines[i].p + 4);
            CHECK(len == lines[i].len - 4);
        }
    }

    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        size_t cap = sizes[k];
        char *buf = dup_exact(NULL, cap);
        const char *got;

        got = smtp_reply_last(r, buf, cap);
        CHECK(got != NULL);
        if (cap > 0) {
            size_t n = strnlen(buf, cap);
            size_t want = last->len < cap - 1 ? last->len : cap - 1;
            CHECK(got == buf);
            CHECK(n == want);
            CHECK(memcmp(buf, last->p, n) == 0);
        } else {
            CHECK(got[0] == '\0');
        }
        dup_free(buf, cap);
    }
}

/* Feeding the lines of raw again gives the same reply. */
static void check_refeed(const struct smtp_reply *r, const struct line *lines)
{
    struct smtp_reply again = {0};

    for (size_t i = 0; i < r->nlines; i++) {
        char *l = dup_exact(lines[i].p, lines[i].len);
        enum reply_status st = smtp_reply_feed(&again, l, lines[i].len);
        dup_free(l, lines[i].len);
        CHECK(st == (i + 1 == r->nlines ? REPLY_DONE : REPLY_MORE));
    }
    CHECK(again.code == r->code && again.nlines == r->nlines);
    CHECK(again.len == r->len && memcmp(again.raw, r->raw, r->len) == 0);
    smtp_reply_reset(&again);
    CHECK(again.raw == NULL && again.nlines == 0 && again.len == 0);
}

/* ---- EHLO ---------------------------------------------------------------- */

static size_t keyword_len(const char *s, size_t len)
{
    size_t n = 0;

    while (n < len && s[n] != ' ' && s[n] != '=')
        n++;
    return n;
}

static bool is_kw(const char *s, size_t len, const char *kw)
{
    size_t k = keyword_len(s, len);
    return k == strlen(kw) && strncasecmp(s, kw, k) == 0;
}

/* The capabilities ehlo.h promises to relay as the backend wrote them. */
static const char *const relayed[] = {
    "PIPELINING", "8BITMIME", "SMTPUTF8", "DSN", "ENHANCEDSTATUSCODES",
    "VRFY", "ETRN", "DELIVERBY", "MT-PRIORITY", "FUTURERELEASE", "RRVS",
    "LIMITS", "NO-SOLICITING", "MTRK", "HELP", "EXPN", "AUTH",
};

static bool relayed_kw(const char *s, size_t len)
{
    for (size_t i = 0; i < sizeof(relayed) / sizeof(relayed[0]); i++)
        if (is_kw(s, len, relayed[i]))
            return true;
    return false;
}

/* A reply made of a greeting and one line, which is parsed as the last. */
static void caps_of_line(const char *text, size_t len, struct smtp_caps *c)
{
    struct smtp_reply one = {0};
    char *l = malloc(len + 4);

    if (!l)
        abort();
    CHECK(smtp_reply_feed(&one, "250-x", 5) == REPLY_MORE);
    memcpy(l, "250 ", 4);
    memcpy(l + 4, text, len);
    CHECK(smtp_reply_feed(&one, l, len + 4) == REPLY_DONE);
    free(l);
    smtp_caps_parse(&one, c);
    smtp_reply_reset(&one);
}

/*
 * The capabilities of a reply are those of its lines: each line is read
 * on its own, never with bytes of the next one.
 */
static void check_caps(const struct smtp_reply *r, struct smtp_caps *caps)
{
    struct smtp_caps want = {0}, again;

    for (size_t i = 1; i < r->nlines; i++) {
        struct smtp_caps c;
        size_t len;
        const char *s = smtp_reply_line(r, i, &len);

        caps_of_line(s, len, &c);
        want.pipelining |= c.pipelining;
        want.starttls |= c.starttls;
        want.chunking |= c.chunking;
        want.smtputf8 |= c.smtputf8;
        want.eightbitmime |= c.eightbitmime;
        want.dsn |= c.dsn;
        want.auth |= c.auth;
        if (c.has_size) {
            want.has_size = true;
            want.size = c.size;
        }
        if (c.xclient_announced) {
            want.xclient_announced = true;
            want.xclient = c.xclient;
        }
    }
    smtp_caps_parse(r, caps);
    smtp_caps_parse(r, &again);
    CHECK(memcmp(caps, &again, sizeof(again)) == 0);
    CHECK(caps->pipelining == want.pipelining);
    CHECK(caps->starttls == want.starttls);
    CHECK(caps->chunking == want.chunking);
    CHECK(caps->smtputf8 == want.smtputf8);
    CHECK(caps->eightbitmime == want.eightbitmime);
    CHECK(caps->dsn == want.dsn);
    CHECK(caps->auth == want.auth);
    CHECK(caps->has_size == want.has_size);
    CHECK(caps->size == want.size);
    CHECK(caps->xclient_announced == want.xclient_announced);
    CHECK(caps->xclient == want.xclient);
    CHECK((caps->xclient & ~0x1ffu) == 0);
}

/* Next line of out (CRLF-terminated), or false at the end. */
static bool next_line(const char **p, const char *end, const char **line,
                      size_t *len)
{
    const char *nl;

    if (*p >= end)
        return false;
    nl = memchr(*p, '\n', (size_t)(end - *p));
    CHECK(nl != NULL && nl > *p && nl[-1] == '\r');
    *line = *p;
    *len = (size_t)(nl - 1 - *p);
    *p = nl + 1;
    return true;
}

static void expect_line(const char **p, const char *end, bool *last,
                        const char *text, size_t len)
{
    const char *l;
    size_t n;

    CHECK(!*last);
    CHECK(next_line(p, end, &l, &n));
    CHECK(n == len + 4);
    CHECK(memcmp(l, "250", 3) == 0);
    CHECK(l[3] == '-' || l[3] == ' ');
    *last = l[3] == ' ';
    CHECK(*last == (*p == end)); /* "250 " exactly on the last line */
    CHECK(memcmp(l + 4, text, len) == 0);
    /* no CR, LF or NUL inside a line */
    CHECK(memchr(l, '\r', n) == NULL && memchr(l, '\0', n) == NULL);
}

static void check_filter(const struct smtp_reply *r,
                         const struct smtp_caps *caps, const uint8_t *hdr)
{
    struct ehlo_view v = {
        .offer_starttls = hdr[0] & 1,
        .hide_auth = (hdr[0] & 2) != 0,
        .relay_chunking = (hdr[0] & 4) != 0,
        .max_size = max_sizes[hdr[1] % (sizeof(max_sizes) /
                                        sizeof(max_sizes[0]))],
    };
    struct evbuffer *out = evbuffer_new();
    struct smtp_reply re = {0};
    unsigned long long eff = ehlo_effective_size(caps, v.max_size);
    char sizeline[48];
    const char *p, *end, *s, *l;
    size_t len, n, nout = 0;
    bool last = false, size_done = false;

    if (!out)
        abort();
    /* effective size: the smaller limit, 0 meaning none */
    if (!caps->has_size || caps->size == 0)
        CHECK(eff == v.max_size);
    else if (v.max_size == 0)
        CHECK(eff == caps->size);
    else
        CHECK(eff <= caps->size && eff <= v.max_size &&
              (eff == caps->size || eff == v.max_size));

    ehlo_filter(r, &v, out);
    n = evbuffer_get_length(out);
    p = (const char *)evbuffer_pullup(out, -1);
    CHECK(n > 0 && p != NULL);
    end = p + n;

    /* Well-formed: every line parses as one 250 reply, done at the end. */
    {
        const char *q = p;
        while (next_line(&q, end, &l, &len)) {
            enum reply_status st;
            nout++;
            if (nout > SMTP_REPLY_MAX_LINES)
                continue; /* ours may be longer than the parser's limit */
            st = smtp_reply_feed(&re, l, len);
            CHECK(st == (q == end ? REPLY_DONE : REPLY_MORE));
        }
        if (nout <= SMTP_REPLY_MAX_LINES) {
            CHECK(re.code == 250 && re.nlines == nout);
            struct smtp_caps oc;
            smtp_caps_parse(&re, &oc);
            CHECK(!oc.xclient_announced && oc.xclient == 0);
            CHECK(oc.starttls == v.offer_starttls);
            CHECK(!oc.chunking || (v.relay_chunking && caps->chunking));
            CHECK(!oc.auth || !v.hide_auth);
            CHECK(oc.has_size == (caps->has_size || v.max_size != 0));
            if (oc.has_size)
                CHECK(oc.size == eff);
        }
        smtp_reply_reset(&re);
    }

    /* Exactly the allow-listed lines, in order, then SIZE and STARTTLS. */
    s = smtp_reply_line(r, 0, &len);
    expect_line(&p, end, &last, s, len);
    for (size_t i = 1; i < r->nlines; i++) {
        s = smtp_reply_line(r, i, &len);
        if (is_kw(s, len, "SIZE")) {
            if (size_done)
                continue;
            size_done = true;
            if (eff)
                snprintf(sizeline, sizeof(sizeline), "SIZE %llu", eff);
            else
                snprintf(sizeline, sizeof(sizeline), "SIZE");
            expect_line(&p, end, &last, sizeline, strlen(sizeline));
            continue;
        }
        if (is_kw(s, len, "AUTH") && v.hide_auth)
            continue;
        if (relayed_kw(s, len) ||
            (v.relay_chunking && is_kw(s, len, "CHUNKING"))) {
            expect_line(&p, end, &last, s, len);
            CHECK(!is_kw(s, len, "XCLIENT") && !is_kw(s, len, "XFORWARD") &&
                  !is_kw(s, len, "STARTTLS") && !is_kw(s, len, "BINARYMIME"));
        }
    }
    if (!size_done && v.max_size) {
        snprintf(sizeline, sizeof(sizeline), "SIZE %llu", v.max_size);
        expect_line(&p, end, &last, sizeline, strlen(sizeline));
    }
    if (v.offer_starttls)
        expect_line(&p, end, &last, "STARTTLS", 8);
    CHECK(p == end && last);
    evbuffer_free(out);
}

static void check_reply(const struct smtp_reply *r, const uint8_t *hdr)
{
    static struct line lines[SMTP_REPLY_MAX_LINES];
    struct smtp_caps caps;

    check_shape(r, lines);
    check_accessors(r, lines, hdr);
    check_refeed(r, lines);
    if (r->code == 250) {
        check_caps(r, &caps);
        check_filter(r, &caps, hdr);
    }
}

/* ---- framing, as backend.c's be_read does it ------------------------------ */

/* Read the complete lines in `in`. Returns false once the backend is dead. */
static bool drain(struct evbuffer *in, struct smtp_reply *r,
                  struct events *e, const uint8_t *hdr)
{
    for (;;) {
        size_t len;
        char *line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF);
        enum reply_status st;

        if (!line) {
            if (evbuffer_get_length(in) > SMTP_REPLY_MAX_LINE + 2) {
                ev_add(e, "X", 1); /* over-long line */
                return false;
            }
            return true;
        }
        CHECK(memchr(line, '\n', len) == NULL);
        /* an exact-size copy, so ASan sees a read past len */
        char *copy = dup_exact(line, len);
        free(line);
        st = smtp_reply_feed(r, copy, len);
        dup_free(copy, len);
        CHECK(st == REPLY_MORE || st == REPLY_DONE || st == REPLY_BAD);
        if (st == REPLY_BAD) {
            /*
             * Too long or malformed. An over-long line may be caught by the
             * length check above in one run and here in the other: the same
             * event, the connection is dropped.
             */
            ev_add(e, "X", 1);
            smtp_reply_reset(r);
            return false;
        }
        if (st == REPLY_DONE) {
            if (hdr)
                check_reply(r, hdr);
            ev_reply(e, 'D', r);
            smtp_reply_reset(r);
        } else {
            CHECK(r->nlines >= 1 && r->nlines < SMTP_REPLY_MAX_LINES + 1);
        }
    }
}

/* gaps == NULL: the whole stream at once; hdr != NULL: check each reply. */
static void run(const uint8_t *s, size_t n, const uint8_t *gaps,
                const uint8_t *hdr, struct events *e)
{
    struct evbuffer *in = evbuffer_new();
    struct smtp_reply r = {0};
    size_t off = 0, gi = 0;
    bool alive = true;

    if (!in)
        abort();
    while (off < n && alive) {
        size_t c = gaps ? (size_t)gaps[gi++ % NGAPS] + 1 : n;
        if (c > n - off)
            c = n - off;
        evbuffer_add(in, s + off, c);
        off += c;
        alive = drain(in, &r, e, hdr);
    }
    if (alive)
        ev_reply(e, 'P', &r); /* the reply still pending at the end */
    smtp_reply_reset(&r);
    evbuffer_free(in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct events whole = {0}, chunked = {0};

    if (size < HEADER)
        return 0;
    run(data + HEADER, size - HEADER, NULL, data, &whole);
    run(data + HEADER, size - HEADER, data + 2, NULL, &chunked);
    CHECK(whole.n == chunked.n);
    CHECK(memcmp(whole.v, chunked.v, whole.n) == 0);
    free(whole.v);
    free(chunked.v);
    return 0;
}
