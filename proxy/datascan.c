/*
 * datascan: the DATA byte-stream state machine.
 *
 * Bytes are processed one event at a time (CR, LF, NUL, other), with a fast
 * path that copies runs of ordinary bytes in the middle of a line.
 */
#include "datascan.h"

#include <string.h>

#include <event2/buffer.h>

void datascan_init(struct datascan *ds, bool normalize, size_t max_line,
                   size_t max_size)
{
    memset(ds, 0, sizeof(*ds));
    ds->normalize = normalize;
    ds->max_line = max_line;
    ds->max_size = max_size;
    ds->real_start = true;
    ds->first_pending = true;
    ds->dots = true;
}

void datascan_init_chunked(struct datascan *ds, bool normalize,
                           size_t max_line, size_t max_size)
{
    datascan_init(ds, normalize, max_line, max_size);
    ds->dots = false;
}

unsigned datascan_refusal(const struct datascan *ds)
{
    unsigned fatal = DS_LONG_LINE | DS_TOO_BIG;

    if (!ds->normalize)
        fatal |= DS_BARE_LF | DS_BARE_CR | DS_NUL;
    return ds->flags & fatal;
}

/*
 * One feed call. Bytes copied through unchanged are gathered as one span
 * of the caller's buffer and added to the output at once; only rewritten
 * bytes (normalize mode, or a "." or CR held over from the previous call)
 * are added separately. The held bytes' positions are known only within
 * the call that saw them; NULL means "from an earlier call".
 */
struct feed {
    struct datascan *ds;
    struct evbuffer *out;
    const char *span;
    size_t span_len;
    const char *dot_ptr;
    const char *cr_ptr;
};

static void flush_span(struct feed *f)
{
    if (f->span_len)
        evbuffer_add(f->out, f->span, f->span_len);
    f->span_len = 0;
}

/* Count content; false once the message is refused (stop storing). */
static bool count(struct datascan *ds, size_t n)
{
    ds->size += n;
    if (ds->max_size && ds->size > ds->max_size)
        ds->flags |= DS_TOO_BIG;
    return !datascan_refusal(ds);
}

/* n bytes of the input at p, unchanged, into the output (not counted). */
static void put_src(struct feed *f, const char *p, size_t n)
{
    if (f->span_len && f->span + f->span_len == p) {
        f->span_len += n;
        return;
    }
    flush_span(f);
    f->span = p;
    f->span_len = n;
}

/* Content that is n bytes of the input at p, unchanged. */
static void emit_src(struct feed *f, const char *p, size_t n)
{
    if (count(f->ds, n))
        put_src(f, p, n);
}

/* Content Warden writes itself. */
static void emit_lit(struct feed *f, const char *p, size_t n)
{
    if (!count(f->ds, n))
        return;
    flush_span(f);
    evbuffer_add(f->out, p, n);
}

/*
 * The dot that stuffs a line beginning with "." (the client's, at p, or
 * one of ours when p is NULL). It is transport, not content: the backend
 * removes it, so it does not count towards the size (RFC 1870 counts the
 * message, and Postfix's message_size_limit what it stores).
 */
static void emit_stuffing(struct feed *f, const char *p)
{
    if (datascan_refusal(f->ds))
        return;
    if (p) {
        put_src(f, p, 1);
        return;
    }
    flush_span(f);
    evbuffer_add(f->out, ".", 1);
}

static void grow_line(struct datascan *ds, size_t n)
{
    ds->linelen += n;
    if (ds->linelen + 2 > ds->max_line)
        ds->flags |= DS_LONG_LINE;
}

static void new_line(struct datascan *ds, bool real)
{
    ds->linelen = 0;
    ds->real_start = real;
    ds->first_pending = true;
    ds->raw_first_nondot = false;
    ds->dot_held = false;
    ds->dot_dirty = false;
}

static void release_dot(struct feed *f)
{
    if (!f->ds->dot_held)
        return;
    f->ds->dot_held = false;
    emit_stuffing(f, f->dot_ptr);
}

/* The held CR, as content (strict mode: a stray CR stays in the line). */
static void release_cr(struct feed *f)
{
    if (f->cr_ptr)
        emit_src(f, f->cr_ptr, 1);
    else
        emit_lit(f, "\r", 1);
}

/* CRLF (lf points at the LF). Returns true when it ends the message. */
static bool end_line_real(struct feed *f, const char *lf)
{
    struct datascan *ds = f->ds;

    if (ds->dot_held && !ds->dot_dirty)
        return true;
    if (ds->dot_held) {
        /* "." + NUL + CRLF: a lone "." now, which must be stuffed */
        emit_stuffing(f, NULL);
        emit_lit(f, ".", 1);
    }
    release_cr(f);
    emit_src(f, lf, 1);
    new_line(ds, true);
    return false;
}

/* Normalize mode: a stray CR or LF ends the line with a CRLF of ours. */
static void end_line_stray(struct feed *f)
{
    if (f->ds->dot_held) { /* would read as a lone "." */
        emit_stuffing(f, NULL);
        emit_lit(f, ".", 1);
    }
    emit_lit(f, "\r\n", 2);
    new_line(f->ds, false);
}

/* Strict mode: a stray CR, LF or NUL is flagged and kept in the line. */
static void stray_strict(struct feed *f, const char *p)
{
    release_dot(f);
    f->ds->first_pending = false;
    if (*p == '\r' && p != f->cr_ptr)
        emit_lit(f, "\r", 1); /* a CR held over from the previous call */
    else
        emit_src(f, p, 1);
    grow_line(f->ds, 1);
}

static void content_byte(struct feed *f, const char *p)
{
    struct datascan *ds = f->ds;

    grow_line(ds, 1);
    if (ds->first_pending) {
        ds->first_pending = false;
        if (*p == '.' && ds->dots) {
            if (ds->real_start && !ds->raw_first_nondot) {
                ds->dot_held = true; /* maybe the end; decided at CRLF */
                f->dot_ptr = p;
                return;
            }
            emit_stuffing(f, NULL); /* a line that begins with "." now */
        }
        emit_src(f, p, 1);
        return;
    }
    release_dot(f);
    emit_src(f, p, 1);
}

static void nul_byte(struct feed *f, const char *p)
{
    struct datascan *ds = f->ds;

    ds->flags |= DS_NUL;
    if (!ds->normalize) {
        stray_strict(f, p);
        return;
    }
    grow_line(ds, 1);
    if (ds->dot_held)
        ds->dot_dirty = true;
    else if (ds->first_pending)
        ds->raw_first_nondot = true;
}

/* Length of the run of bytes that are not CR, LF or NUL (memchr is
 * vectorised; a byte loop here was most of Warden's CPU time). */
static size_t plain_run(const char *p, size_t n)
{
    const char *hit = memchr(p, '\r', n);
    size_t lim = hit ? (size_t)(hit - p) : n;

    if ((hit = memchr(p, '\n', lim)))
        lim = (size_t)(hit - p);
    if ((hit = memchr(p, '\0', lim)))
        lim = (size_t)(hit - p);
    return lim;
}

static size_t feed(struct feed *f, const char *buf, size_t len, bool *done)
{
    struct datascan *ds = f->ds;
    size_t i = 0;

    while (i < len) {
        const char *p = buf + i;

        if (ds->cr_held) {
            ds->cr_held = false;
            if (*p == '\n') {
                i++;
                if (end_line_real(f, p)) {
                    *done = true;
                    return i;
                }
                continue;
            }
            ds->flags |= DS_BARE_CR;
            if (ds->normalize)
                end_line_stray(f);
            else
                stray_strict(f, f->cr_ptr ? f->cr_ptr : "\r");
            continue; /* *p is handled on the next turn, CR state cleared */
        }
        if (!ds->first_pending && !ds->dot_held) {
            size_t run = plain_run(p, len - i);
            if (run > 0) {
                grow_line(ds, run);
                emit_src(f, p, run);
                i += run;
                continue;
            }
        }
        i++;
        if (*p == '\r') {
            ds->cr_held = true;
            f->cr_ptr = p;
        } else if (*p == '\n') {
            ds->flags |= DS_BARE_LF;
            if (ds->normalize)
                end_line_stray(f);
            else
                stray_strict(f, p);
        } else if (*p == '\0') {
            nul_byte(f, p);
        } else {
            content_byte(f, p);
        }
    }
    return i;
}

void datascan_finish(struct datascan *ds, struct evbuffer *out)
{
    struct feed f = {.ds = ds, .out = out};

    if (ds->cr_held) {
        ds->cr_held = false;
        ds->flags |= DS_BARE_CR;
        if (ds->normalize)
            end_line_stray(&f);
        else
            stray_strict(&f, "\r");
    }
    flush_span(&f);
}

size_t datascan_feed(struct datascan *ds, const char *buf, size_t len,
                     struct evbuffer *out, bool *done)
{
    struct feed f = {.ds = ds, .out = out};
    size_t used;

    *done = false;
    used = feed(&f, buf, len, done);
    flush_span(&f);
    return used;
}
