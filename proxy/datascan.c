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
}

unsigned datascan_refusal(const struct datascan *ds)
{
    unsigned fatal = DS_LONG_LINE | DS_TOO_BIG;

    if (!ds->normalize)
        fatal |= DS_BARE_LF | DS_BARE_CR | DS_NUL;
    return ds->flags & fatal;
}

/* Write content, counting it; stop storing once the message is refused. */
static void emit(struct datascan *ds, struct evbuffer *out, const char *p,
                 size_t n)
{
    ds->size += n;
    if (ds->max_size && ds->size > ds->max_size)
        ds->flags |= DS_TOO_BIG;
    if (!datascan_refusal(ds))
        evbuffer_add(out, p, n);
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

static void release_dot(struct datascan *ds, struct evbuffer *out)
{
    if (ds->dot_held) {
        ds->dot_held = false;
        emit(ds, out, ".", 1);
    }
}

/* CRLF. Returns true when it completes the end-of-data line. */
static bool end_line_real(struct datascan *ds, struct evbuffer *out)
{
    if (ds->dot_held && !ds->dot_dirty)
        return true;
    if (ds->dot_held)
        emit(ds, out, "..", 2); /* "." + NUL + CRLF: a lone "." now */
    emit(ds, out, "\r\n", 2);
    new_line(ds, true);
    return false;
}

/* Normalize mode: a stray CR or LF ends the line with a CRLF of ours. */
static void end_line_stray(struct datascan *ds, struct evbuffer *out)
{
    if (ds->dot_held)
        emit(ds, out, "..", 2); /* would read as a lone "." */
    emit(ds, out, "\r\n", 2);
    new_line(ds, false);
}

/* A stray CR or LF in strict mode: flagged, kept as content of the line. */
static void stray_strict(struct datascan *ds, struct evbuffer *out, char c)
{
    release_dot(ds, out);
    ds->first_pending = false;
    emit(ds, out, &c, 1);
    grow_line(ds, 1);
}

static void content_byte(struct datascan *ds, struct evbuffer *out, char c)
{
    grow_line(ds, 1);
    if (ds->first_pending) {
        ds->first_pending = false;
        if (c == '.') {
            if (ds->real_start && !ds->raw_first_nondot) {
                ds->dot_held = true; /* maybe the end; decided at CRLF */
                return;
            }
            emit(ds, out, ".", 1); /* a line that begins with "." now */
        }
        emit(ds, out, &c, 1);
        return;
    }
    release_dot(ds, out);
    emit(ds, out, &c, 1);
}

static void nul_byte(struct datascan *ds, struct evbuffer *out)
{
    ds->flags |= DS_NUL;
    if (!ds->normalize) {
        stray_strict(ds, out, '\0');
        return;
    }
    grow_line(ds, 1);
    if (ds->dot_held)
        ds->dot_dirty = true;
    else if (ds->first_pending)
        ds->raw_first_nondot = true;
}

/* Length of the run of bytes that are not CR, LF or NUL. */
static size_t plain_run(const char *p, size_t n)
{
    size_t i = 0;

    while (i < n && p[i] != '\r' && p[i] != '\n' && p[i] != '\0')
        i++;
    return i;
}

size_t datascan_feed(struct datascan *ds, const char *buf, size_t len,
                     struct evbuffer *out, bool *done)
{
    size_t i = 0;

    *done = false;
    while (i < len) {
        char c = buf[i];

        if (ds->cr_held) {
            ds->cr_held = false;
            if (c == '\n') {
                i++;
                if (end_line_real(ds, out)) {
                    *done = true;
                    return i;
                }
                continue;
            }
            ds->flags |= DS_BARE_CR;
            if (ds->normalize)
                end_line_stray(ds, out);
            else
                stray_strict(ds, out, '\r');
            continue; /* c is handled on the next turn, CR state cleared */
        }
        if (!ds->first_pending && !ds->dot_held) {
            size_t run = plain_run(buf + i, len - i);
            if (run > 0) {
                grow_line(ds, run);
                emit(ds, out, buf + i, run);
                i += run;
                continue;
            }
        }
        i++;
        if (c == '\r') {
            ds->cr_held = true;
        } else if (c == '\n') {
            ds->flags |= DS_BARE_LF;
            if (ds->normalize)
                end_line_stray(ds, out);
            else
                stray_strict(ds, out, '\n');
        } else if (c == '\0') {
            nul_byte(ds, out);
        } else {
            content_byte(ds, out, c);
        }
    }
    return i;
}
