#define _GNU_SOURCE
/*
 * Unit tests for datascan: end-of-data detection, smuggling variants,
 * strict and normalize modes, limits, and chunking independence.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/buffer.h>

#include "datascan.h"

struct result {
    char *out;
    size_t outlen;
    size_t consumed;
    bool done;
    unsigned flags;
    unsigned refusal;
};

/* Move the scanner's output and flags into r; frees out. */
static void collect(struct result *r, const struct datascan *ds,
                    struct evbuffer *out)
{
    r->outlen = evbuffer_get_length(out);
    r->out = malloc(r->outlen + 1);
    evbuffer_remove(out, r->out, r->outlen);
    r->out[r->outlen] = '\0';
    r->flags = ds->flags;
    r->refusal = datascan_refusal(ds);
    evbuffer_free(out);
}

/* Feed in chunks of `step` bytes (0: all at once) until done. */
static struct result scan(const char *in, size_t len, bool normalize,
                          size_t step, size_t max_line, size_t max_size)
{
    struct datascan ds;
    struct evbuffer *out = evbuffer_new();
    struct result r = {0};
    size_t off = 0;

    datascan_init(&ds, normalize, max_line, max_size);
    while (off < len && !r.done) {
        size_t n = step ? (len - off < step ? len - off : step) : len - off;
        size_t used = datascan_feed(&ds, in + off, n, out, &r.done);
        assert_true(used <= n);
        if (!r.done)
            assert_int_equal(used, n);
        off += used;
    }
    r.consumed = off;
    collect(&r, &ds, out);
    return r;
}

#define S(x) x, sizeof(x) - 1

static void test_simple_message(void **state)
{
    struct result r = scan(S("Subject: x\r\n\r\nhello\r\n.\r\nQUIT\r\n"), false,
                           0, 1000, 0);
    assert_true(r.done);
    assert_int_equal(r.consumed, sizeof("Subject: x\r\n\r\nhello\r\n.\r\n") - 1);
    assert_string_equal(r.out, "Subject: x\r\n\r\nhello\r\n");
    assert_int_equal(r.flags, 0);
    free(r.out);
}

static void test_empty_message(void **state)
{
    struct result r = scan(S(".\r\n"), false, 0, 1000, 0);
    assert_true(r.done);
    assert_int_equal(r.outlen, 0);
    free(r.out);
}

static void test_dot_stuffing_kept(void **state)
{
    struct result r = scan(S("..hidden\r\n...\r\n.\r\n"), false, 0, 1000, 0);
    assert_true(r.done);
    assert_string_equal(r.out, "..hidden\r\n...\r\n");
    free(r.out);
}

static void test_not_done_without_end(void **state)
{
    struct result r = scan(S("hello\r\n.\r"), false, 0, 1000, 0);
    assert_false(r.done);
    /* The held "." and CR are not output until decided. */
    assert_string_equal(r.out, "hello\r\n");
    free(r.out);
}

/* Every published smuggling end-of-data variant must be content. */
static const char *const variants[] = {
    "\n.\n", "\n.\r", "\r.\n", "\r.\r", "\n.\r\n", "\r.\r\n",
    "\r\n.\n", "\r\n.\r", "\r\n\x00.\r\n", ".\n", "\r\n.\n\r\n",
};
#define NVARIANTS (sizeof(variants) / sizeof(variants[0]))

static char *smuggle_msg(const char *variant, size_t vlen, size_t *len)
{
    const char *head = "Subject: smuggle\r\n\r\nbody";
    const char *tail = "MAIL FROM:<evil@example.com>\r\nRCPT TO:<x@example.com>"
                       "\r\nDATA\r\nspoofed\r\n.\r\n";
    size_t hl = strlen(head), tl = strlen(tail);
    char *m = malloc(hl + vlen + tl);
    memcpy(m, head, hl);
    memcpy(m + hl, variant, vlen);
    memcpy(m + hl + vlen, tail, tl);
    *len = hl + vlen + tl;
    return m;
}

static size_t variant_len(const char *v)
{
    /* the NUL variant has an embedded NUL: "\r\n" NUL ".\r\n" */
    if (v[0] == '\r' && v[1] == '\n' && v[2] == '\0')
        return 6;
    return strlen(v);
}

static void test_smuggling_strict(void **state)
{
    for (size_t i = 0; i < NVARIANTS; i++) {
        size_t len;
        char *m = smuggle_msg(variants[i], variant_len(variants[i]), &len);
        for (size_t step = 0; step <= 3; step++) {
            struct result r = scan(m, len, false, step, 1000, 0);
            assert_true(r.done);
            assert_int_equal(r.consumed, len); /* only the real end */
            if (!r.refusal) /* strict: refused */
                fail_msg("variant %zu step %zu not refused", i, step);
            free(r.out);
        }
        free(m);
    }
}

/* In normalize mode the output must be clean SMTP with no early end. */
static void assert_clean(const char *out, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        assert_true(out[i] != '\0');
        if (out[i] == '\r')
            assert_true(i + 1 < len && out[i + 1] == '\n');
        if (out[i] == '\n')
            assert_true(i > 0 && out[i - 1] == '\r');
    }
    if (len)
        assert_true(len >= 2 && out[len - 2] == '\r' && out[len - 1] == '\n');
    /* No line consisting of a lone "." (an end of data for the backend). */
    if (len >= 3)
        assert_false(out[0] == '.' && out[1] == '\r' && out[2] == '\n');
    for (size_t i = 0; i + 4 < len + 1; i++)
        if (i + 5 <= len)
            assert_false(memcmp(out + i, "\r\n.\r\n", 5) == 0);
}

static void test_smuggling_normalize(void **state)
{
    for (size_t i = 0; i < NVARIANTS; i++) {
        size_t len;
        char *m = smuggle_msg(variants[i], variant_len(variants[i]), &len);
        struct result whole = scan(m, len, true, 0, 1000, 0);
        assert_true(whole.done);
        assert_int_equal(whole.consumed, len);
        assert_int_equal(whole.refusal, 0); /* normalize accepts */
        assert_clean(whole.out, whole.outlen);
        /* the smuggled commands are still there, as content */
        assert_non_null(memmem(whole.out, whole.outlen, "MAIL FROM:<evil",
                               15));
        for (size_t step = 1; step <= 3; step++) {
            struct result r = scan(m, len, true, step, 1000, 0);
            assert_int_equal(r.outlen, whole.outlen);
            assert_memory_equal(r.out, whole.out, r.outlen);
            free(r.out);
        }
        free(whole.out);
        free(m);
    }
}

static void test_normalize_stuffs_new_lines(void **state)
{
    struct result r = scan(S("a\n.b\r\n.\r\n"), true, 0, 1000, 0);
    assert_true(r.done);
    /* ".b" began a line only because of normalization: stuffed. */
    assert_string_equal(r.out, "a\r\n..b\r\n");
    assert_true(r.flags & DS_BARE_LF);
    free(r.out);
}

static void test_normalize_keeps_client_stuffing(void **state)
{
    struct result r = scan(S("..x\r\n.\r\n"), true, 0, 1000, 0);
    assert_string_equal(r.out, "..x\r\n");
    free(r.out);
}

static void test_normalize_drops_nul(void **state)
{
    struct result r = scan(S("a\0b\r\n\0.\r\n.\r\n"), true, 0, 1000, 0);
    assert_true(r.done);
    assert_string_equal(r.out, "ab\r\n..\r\n");
    assert_true(r.flags & DS_NUL);
    assert_int_equal(r.refusal, 0);
    free(r.out);
}

static void test_strict_flags(void **state)
{
    struct result r = scan(S("a\nb\r\n.\r\n"), false, 0, 1000, 0);
    assert_true(r.flags & DS_BARE_LF);
    assert_true(r.refusal & DS_BARE_LF);
    free(r.out);
    r = scan(S("a\rb\r\n.\r\n"), false, 0, 1000, 0);
    assert_true(r.flags & DS_BARE_CR);
    free(r.out);
    r = scan(S("a\0b\r\n.\r\n"), false, 0, 1000, 0);
    assert_true(r.refusal & DS_NUL);
    free(r.out);
}

static void test_line_limit(void **state)
{
    char buf[1200];
    memset(buf, 'x', 998);
    memcpy(buf + 998, "\r\n.\r\n", 5);
    struct result r = scan(buf, 1003, false, 0, 1000, 0);
    assert_true(r.done);
    assert_int_equal(r.flags, 0); /* 998 + CRLF = 1000: allowed */
    free(r.out);
    memset(buf, 'x', 999);
    memcpy(buf + 999, "\r\n.\r\n", 5);
    r = scan(buf, 1004, false, 0, 1000, 0);
    assert_true(r.done);
    assert_true(r.refusal & DS_LONG_LINE);
    free(r.out);
}

static void test_size_limit(void **state)
{
    struct result r = scan(S("0123456789\r\n.\r\n"), false, 0, 1000, 12);
    assert_int_equal(r.flags, 0);
    free(r.out);
    r = scan(S("0123456789x\r\n.\r\n"), false, 0, 1000, 12);
    assert_true(r.refusal & DS_TOO_BIG);
    assert_true(r.done);
    /* once refused, content is no longer kept */
    assert_true(r.outlen <= 12);
    free(r.out);
    /* the dot that stuffs a line is not content: ".23456789" + CRLF is 11
     * octets of message, sent as 12 */
    r = scan(S("..23456789\r\n.\r\n"), false, 0, 1000, 11);
    assert_int_equal(r.flags, 0);
    assert_string_equal(r.out, "..23456789\r\n");
    free(r.out);
    r = scan(S("..234567890\r\n.\r\n"), false, 0, 1000, 11);
    assert_true(r.refusal & DS_TOO_BIG);
    free(r.out);
    /* normalize mode's own stuffing is not counted either: a bare LF
     * makes ".x" start a line, which goes out as "..x" */
    r = scan(S("a\n.x\r\n.\r\n"), true, 0, 1000, 7);
    assert_int_equal(r.refusal, 0);
    assert_string_equal(r.out, "a\r\n..x\r\n");
    free(r.out);
}

/* Pseudo-random streams: chunking never changes the result, and
 * normalize output is always clean. */
static void test_random_streams(void **state)
{
    static const char alphabet[] = {'a', '.', '\r', '\n', '\0', 'b'};
    uint32_t seed = 12345;
    for (int round = 0; round < 3000; round++) {
        char buf[64];
        size_t len = 1 + (size_t)(round % 60);
        for (size_t i = 0; i < len; i++) {
            seed = seed * 1103515245u + 12345u;
            buf[i] = alphabet[(seed >> 16) % sizeof(alphabet)];
        }
        for (int normalize = 0; normalize <= 1; normalize++) {
            struct result a = scan(buf, len, normalize, 0, 1000, 0);
            struct result b = scan(buf, len, normalize, 1, 1000, 0);
            assert_int_equal(a.done, b.done);
            assert_int_equal(a.consumed, b.consumed);
            assert_int_equal(a.outlen, b.outlen);
            assert_memory_equal(a.out, b.out, a.outlen);
            if (normalize && a.done)
                assert_clean(a.out, a.outlen);
            free(a.out);
            free(b.out);
        }
    }
}

static struct result scan_chunked(const char *in, size_t len, bool normalize,
                                  size_t step)
{
    struct datascan ds;
    struct evbuffer *out = evbuffer_new();
    struct result r = {0};
    bool done = false;

    datascan_init_chunked(&ds, normalize, 1000, 0);
    for (size_t off = 0; off < len;) {
        size_t n = step && len - off > step ? step : len - off;
        assert_int_equal(datascan_feed(&ds, in + off, n, out, &done), n);
        assert_false(done); /* BDAT content has no end marker */
        off += n;
    }
    datascan_finish(&ds, out);
    collect(&r, &ds, out);
    return r;
}

static void test_chunked_has_no_dots(void **state)
{
    for (size_t step = 0; step <= 2; step++) {
        struct result r = scan_chunked(S("a\r\n.\r\n..b\r\n.c"), false, step);
        assert_string_equal(r.out, "a\r\n.\r\n..b\r\n.c");
        assert_int_equal(r.flags, 0);
        free(r.out);
    }
}

static void test_chunked_polices_lines(void **state)
{
    struct result r = scan_chunked(S("a\nb\r\n"), false, 0);
    assert_true(r.refusal & DS_BARE_LF);
    free(r.out);
    r = scan_chunked(S("a\nb\r\nend\r"), true, 1);
    assert_int_equal(r.refusal, 0);
    assert_string_equal(r.out, "a\r\nb\r\nend\r\n");
    free(r.out);
    r = scan_chunked(S("end\r"), false, 0);
    assert_true(r.refusal & DS_BARE_CR);
    free(r.out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_message),
        cmocka_unit_test(test_empty_message),
        cmocka_unit_test(test_dot_stuffing_kept),
        cmocka_unit_test(test_not_done_without_end),
        cmocka_unit_test(test_smuggling_strict),
        cmocka_unit_test(test_smuggling_normalize),
        cmocka_unit_test(test_normalize_stuffs_new_lines),
        cmocka_unit_test(test_normalize_keeps_client_stuffing),
        cmocka_unit_test(test_normalize_drops_nul),
        cmocka_unit_test(test_strict_flags),
        cmocka_unit_test(test_line_limit),
        cmocka_unit_test(test_size_limit),
        cmocka_unit_test(test_random_streams),
        cmocka_unit_test(test_chunked_has_no_dots),
        cmocka_unit_test(test_chunked_polices_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
