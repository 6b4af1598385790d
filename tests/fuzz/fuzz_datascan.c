/*
 * libFuzzer target for datascan (proxy/datascan.h): the DATA/BDAT scanner
 * behind "only CRLF.CRLF ends DATA".
 *
 * Input layout: four control bytes, then the message bytes.
 *   byte 0  bit 0: normalize mode (else strict)
 *           bit 1: chunked mode (BDAT: no dots, datascan_finish at the end)
 *           bits 2-3: chunking style (see next_chunk), bits 4-7: seed
 *   byte 1  max_line: 0 -> 1000 (the config's default), else 2 + byte
 *   byte 2  max_size: 0 -> unlimited, else 4 * byte
 *   byte 3  seed of the chunking
 *
 * The message is fed three times: whole, one byte per call, and cut into
 * pieces chosen by the control bytes (zero-length calls included). Each
 * piece is a heap copy of exactly its length, freed right after the call.
 * Each run is checked against a deliberately simple reference (below)
 * that works on the whole input at once, line by line:
 *   - DATA ends exactly at the first "." CRLF at a line start (the start
 *     of DATA, or after a CRLF; a bare CR or LF never starts a line for
 *     this purpose), the bytes consumed are the ones up to that CRLF, and
 *     nothing ends without it; BDAT never ends and consumes everything;
 *   - flags (bare LF, bare CR, NUL, long line, too big), size (the
 *     output without stuffing dots) and the refusal match the reference,
 *     whatever the chunking;
 *   - when not refused, the output is byte-identical to the reference:
 *     in strict mode the input itself up to the end marker (dot-stuffing
 *     kept, not removed: the spool is sent to the backend as it came);
 *     in normalize mode the input with NULs dropped, each bare CR or LF
 *     turned into CRLF, and a "." added to lines that begin with "."
 *     only because of that rewriting or that would read as a lone ".";
 *   - when refused, the output is a prefix of that (nothing is written
 *     once the message is certain to be refused; how much of the refused
 *     line got out before that depends on the chunking, so it is not
 *     compared), and never more than max_size octets once unstuffed;
 *   - independently of the reference: the output never holds an end of
 *     data before its end (no line that is a lone "."), a finished DATA
 *     output is empty or ends with CRLF, strict output is a prefix of the
 *     input, and normalize output has no NUL, bare CR or bare LF.
 *
 * contrib/fuzz.sh datascan
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "datascan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#include "fuzzcheck.h"

#define CTL_BYTES 4

struct params {
    bool normalize;
    bool chunked;
    size_t max_line;
    size_t max_size;
    unsigned style;
    uint32_t seed;
};

struct buf {
    unsigned char *p;
    size_t len, cap;
};

static void buf_add(struct buf *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n)
            cap *= 2;
        b->p = realloc(b->p, cap);
        CHECK(b->p != NULL);
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->len, p, n);
    b->len += n;
}

struct result {
    bool done;
    size_t consumed;
    unsigned flags;
    unsigned refusal;
    size_t size;
    struct buf out;
};

static unsigned fatal_mask(bool normalize)
{
    unsigned m = DS_LONG_LINE | DS_TOO_BIG;

    if (!normalize)
        m |= DS_BARE_LF | DS_BARE_CR | DS_NUL;
    return m;
}

/* ---- the reference ------------------------------------------------- */

/* Output octets without the dot that stuffs each line beginning with "."
 * (lines start after CRLF): the message the backend will store. */
static size_t unstuffed_len(const unsigned char *o, size_t n, bool dots)
{
    size_t size = n;

    for (size_t p = 0; dots && p < n; p++)
        if (o[p] == '.' && (p == 0 || (p >= 2 && o[p - 2] == '\r' &&
                                       o[p - 1] == '\n')))
            size--;
    return size;
}

enum term { T_NONE, T_REAL, T_STRAY };

static void reference(const uint8_t *in, size_t len, const struct params *pa,
                      struct result *r)
{
    bool dots = !pa->chunked;
    size_t e = len; /* content is in[0, e) */
    size_t i = 0;
    bool real = true;
    struct buf line = {0};

    memset(r, 0, sizeof(*r));
    r->consumed = len;
    /* The end: the first "." CRLF at the start of DATA or after a CRLF. */
    for (size_t p = 0; dots && p + 3 <= len; p++) {
        if (in[p] == '.' && in[p + 1] == '\r' && in[p + 2] == '\n' &&
            (p == 0 || (p >= 2 && in[p - 2] == '\r' && in[p - 1] == '\n'))) {
            r->done = true;
            r->consumed = p + 3;
            e = p;
            break;
        }
    }
    /* A CR at the very end may still become a CRLF: not content yet.
     * BDAT's datascan_finish settles it as a bare CR. */
    if (!r->done && !pa->chunked && e > 0 && in[e - 1] == '\r')
        e--;
    /* The final "." is a line of one octet for the line limit. */
    if (r->done && 1 + 2 > pa->max_line)
        r->flags |= DS_LONG_LINE;

    /* Lines: CRLF ends one; in normalize mode a bare CR or LF does too. */
    while (i < e) {
        enum term t = T_NONE;
        size_t j;

        for (j = i; j < e; j++) {
            uint8_t c = in[j];
            if (c == '\r' && j + 1 < e && in[j + 1] == '\n') {
                t = T_REAL;
                break;
            }
            if (c == '\r' || c == '\n') {
                r->flags |= c == '\r' ? DS_BARE_CR : DS_BARE_LF;
                if (pa->normalize) {
                    t = T_STRAY;
                    break;
                }
            } else if (c == '\0') {
                r->flags |= DS_NUL;
            }
        }
        /* raw line in[i, j): its length counts NULs and strict's strays */
        if (j - i + 2 > pa->max_line)
            r->flags |= DS_LONG_LINE;
        line.len = 0;
        if (!pa->normalize) {
            buf_add(&line, in + i, j - i);
        } else {
            for (size_t k = i; k < j; k++) {
                if (in[k] == '\0')
                    continue;
                /* the first octet left is a "." the client did not put at
                 * the start of a real line: stuff it */
                if (line.len == 0 && dots && in[k] == '.' &&
                    !(real && in[i] == '.'))
                    buf_add(&line, ".", 1);
                buf_add(&line, in + k, 1);
            }
        }
        if (dots && line.len == 1 && line.p[0] == '.') {
            /* a lone "." that is not the end: the real end was found above,
             * so this one was made by dropping NULs or ends in a stray */
            CHECK(t != T_REAL || pa->normalize);
            if (t == T_NONE)
                line.len = 0; /* held: may yet become the end */
            else
                buf_add(&line, ".", 1);
        }
        buf_add(&r->out, line.p, line.len);
        if (t != T_NONE)
            buf_add(&r->out, "\r\n", 2);
        i = j + (t == T_REAL ? 2 : t == T_STRAY ? 1 : 0);
        real = t != T_STRAY;
    }
    free(line.p);
    r->size = unstuffed_len(r->out.p, r->out.len, dots);
    if (pa->max_size && r->size > pa->max_size)
        r->flags |= DS_TOO_BIG;
    r->refusal = r->flags & fatal_mask(pa->normalize);
}

/* ---- the scanner, fed piecewise -------------------------------------- */

static uint32_t rnd(uint32_t *s)
{
    *s = *s * 1103515245u + 12345u;
    return *s >> 16;
}

/* mode 0: whole; 1: a byte per call; 2: pieces chosen by the control
 * bytes. */
static size_t next_chunk(int mode, const struct params *pa, uint32_t *s,
                         size_t left)
{
    size_t n;

    if (mode == 0)
        return left;
    if (mode == 1)
        return 1;
    switch (pa->style) {
    case 0:
        n = 1 + rnd(s) % 3;
        break;
    case 1:
        n = 1 + rnd(s) % 16;
        break;
    case 2:
        n = 1 + rnd(s) % 256;
        break;
    default:
        n = rnd(s) % 8 == 0 ? 0 : 1 + rnd(s) % 7;
        break;
    }
    return n < left ? n : left;
}

static void run(const uint8_t *in, size_t len, const struct params *pa,
                int mode, struct result *r)
{
    struct datascan ds;
    struct evbuffer *out = evbuffer_new();
    uint32_t s = pa->seed;
    size_t off = 0;
    bool drain = mode != 0; /* as session_data.c does after each call */

    CHECK(out != NULL);
    memset(r, 0, sizeof(*r));
    if (pa->chunked)
        datascan_init_chunked(&ds, pa->normalize, pa->max_line,
                              pa->max_size);
    else
        datascan_init(&ds, pa->normalize, pa->max_line, pa->max_size);

    while (off < len || (mode == 2 && pa->style == 3 && off == 0)) {
        size_t n = next_chunk(mode, pa, &s, len - off);
        char *copy = malloc(n ? n : 1);
        bool done = true;
        size_t used;

        CHECK(copy != NULL);
        if (n)
            memcpy(copy, in + off, n);
        used = datascan_feed(&ds, copy, n, out, &done);
        free(copy);
        CHECK(used <= n);
        if (!done)
            CHECK(used == n);
        if (pa->chunked)
            CHECK(!done); /* BDAT content has no end marker */
        off += used;
        if (drain) {
            size_t m = evbuffer_get_length(out);
            unsigned char *tmp = malloc(m ? m : 1);
            CHECK(tmp != NULL);
            CHECK(evbuffer_remove(out, tmp, m) == (int)m);
            buf_add(&r->out, tmp, m);
            free(tmp);
        }
        if (done) {
            r->done = true;
            break;
        }
        if (off == len && len == 0)
            break;
    }
    if (pa->chunked)
        datascan_finish(&ds, out);
    {
        size_t m = evbuffer_get_length(out);
        unsigned char *tmp = malloc(m ? m : 1);
        CHECK(tmp != NULL);
        CHECK(evbuffer_remove(out, tmp, m) == (int)m);
        buf_add(&r->out, tmp, m);
        free(tmp);
    }
    evbuffer_free(out);
    r->consumed = off;
    r->flags = ds.flags;
    r->size = ds.size;
    r->refusal = datascan_refusal(&ds);
}

/* ---- the checks ------------------------------------------------------ */

static bool is_prefix(const struct buf *a, const unsigned char *b, size_t n)
{
    return a->len <= n && (a->len == 0 || memcmp(a->p, b, a->len) == 0);
}

/* Properties of the output that hold whatever the reference says. */
static void check_output(const uint8_t *in, const struct params *pa,
                         const struct result *r)
{
    const unsigned char *o = r->out.p;
    size_t n = r->out.len;

    if (pa->max_size)
        CHECK(unstuffed_len(o, n, !pa->chunked) <= pa->max_size);
    if (!pa->normalize)
        CHECK(is_prefix(&r->out, in, r->consumed));
    if (pa->normalize) {
        for (size_t i = 0; i < n; i++) {
            CHECK(o[i] != '\0');
            /* a refused message's output may stop between CR and LF */
            if (o[i] == '\r')
                CHECK(i + 1 < n ? o[i + 1] == '\n' : r->refusal != 0);
            if (o[i] == '\n')
                CHECK(i > 0 && o[i - 1] == '\r');
        }
    }
    if (pa->chunked)
        return;
    /* No end of data inside what the backend will get before our own
     * ".\r\n": no complete line that is a lone ".". */
    for (size_t p = 0; p + 3 <= n; p++)
        CHECK(!(o[p] == '.' && o[p + 1] == '\r' && o[p + 2] == '\n' &&
                (p == 0 || (p >= 2 && o[p - 2] == '\r' && o[p - 1] == '\n'))));
    if (r->done && !r->refusal) {
        CHECK(n == 0 || (n >= 2 && o[n - 2] == '\r' && o[n - 1] == '\n'));
        if (!pa->normalize) /* strict, accepted: exactly the input */
            CHECK(n + 3 == r->consumed);
    }
}

static void check_against(const struct result *got, const struct result *ref,
                          const struct params *pa)
{
    CHECK(got->done == ref->done);
    CHECK(got->consumed == ref->consumed);
    CHECK(got->flags == ref->flags);
    CHECK(got->size == ref->size);
    CHECK(got->refusal == ref->refusal);
    CHECK(got->refusal == (got->flags & fatal_mask(pa->normalize)));
    if (!got->refusal) {
        CHECK(got->out.len == ref->out.len);
        CHECK(got->out.len == 0 ||
              memcmp(got->out.p, ref->out.p, got->out.len) == 0);
    } else {
        CHECK(is_prefix(&got->out, ref->out.p, ref->out.len));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct params pa;
    struct result ref, got[3];
    const uint8_t *msg = data + CTL_BYTES;
    size_t len;

    if (size < CTL_BYTES)
        return 0;
    len = size - CTL_BYTES;
    pa.normalize = data[0] & 1;
    pa.chunked = data[0] & 2;
    pa.style = (data[0] >> 2) & 3;
    pa.seed = (uint32_t)data[3] | (uint32_t)(data[0] >> 4) << 8;
    pa.max_line = data[1] == 0 ? 1000 : 2 + (size_t)data[1];
    pa.max_size = 4 * (size_t)data[2];

    reference(msg, len, &pa, &ref);
    for (int mode = 0; mode < 3; mode++) {
        run(msg, len, &pa, mode, &got[mode]);
        check_output(msg, &pa, &got[mode]);
        check_against(&got[mode], &ref, &pa);
        if (mode > 0) { /* any chunking: the same as feeding it whole */
            CHECK(got[mode].done == got[0].done);
            CHECK(got[mode].consumed == got[0].consumed);
            CHECK(got[mode].flags == got[0].flags);
            CHECK(got[mode].size == got[0].size);
            if (!got[0].refusal)
                CHECK(got[mode].out.len == got[0].out.len &&
                      (got[0].out.len == 0 ||
                       memcmp(got[mode].out.p, got[0].out.p,
                              got[0].out.len) == 0));
        }
    }
    /* the reference's own output is clean too (a refused one is kept
     * whole here, so max_size does not apply) */
    if (!ref.refusal)
        check_output(msg, &pa, &ref);
    for (int mode = 0; mode < 3; mode++)
        free(got[mode].out.p);
    free(ref.out.p);
    return 0;
}
