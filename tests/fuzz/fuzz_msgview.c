/*
 * libFuzzer target for msgview_new(): a message decoded for the scorer
 * (MIME by GMime, charsets, HTML to text, URIs, header fields).
 *
 * The input is the message as spooled; its first byte picks whether it
 * is dot-stuffed. Beyond "no crash, no leak, no UB", it checks what the
 * scorer relies on:
 *   - every body paragraph ends with "\n", but for the pieces of one
 *     over 2048 bytes: cut after a blank, or else between two UTF-8
 *     characters; no piece is over 2048 bytes, nor is any rawbody line;
 *   - full is no longer than the input, and without CR bytes when the
 *     input has none but in its CRLF line ends (a stray CR stays, as
 *     SpamAssassin leaves it);
 *   - the URI list stays within its cap;
 *   - every header lookup returns NULL or a string of the length it says
 *     (NULs in a field may make it shorter).
 *
 * contrib/fuzz.sh msgview   (libFuzzer + ASan + UBSan, corpus/msgview/)
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzzcheck.h"
#include "msgview.h"
#include "uris.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_lines(const struct strv *sv)
{
    for (size_t i = 0; i < sv->n; i++) {
        CHECK(sv->len[i] <= 2048);
        CHECK(strlen(sv->v[i]) <= sv->len[i]);
    }
}

/* A CR that does not begin a CRLF. */
static bool stray_cr(const uint8_t *d, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (d[i] == '\r' && (i + 1 == n || d[i + 1] != '\n'))
            return true;
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const fields[] = {"Subject",      "From",    "To",
                                         "ALL",          "ToCc",    "MESSAGEID",
                                         "EnvelopeFrom", "Received"};
    bool stuffed = size > 0 && (data[0] & 1);
    struct msgview *mv;

    if (size > 0) {
        data++;
        size--;
    }
    mv = msgview_new((const char *)data, size, stuffed,
                     size & 2 ? "env@example.org" : NULL);
    CHECK(mv != NULL);
    for (size_t i = 0; i < mv->body.n; i++) {
        const unsigned char *v = (const unsigned char *)mv->body.v[i];
        size_t n = mv->body.len[i];
        CHECK(n > 0);
        if (v[n - 1] == '\n' || v[n - 1] == ' ')
            continue;
        /* a hard cut: not before a continuation byte, unless the three
         * before it are ones too (invalid text, nowhere better to cut) */
        CHECK(i + 1 < mv->body.n);
        CHECK((((unsigned char)mv->body.v[i + 1][0]) & 0xC0) != 0x80 ||
              (n >= 3 && (v[n - 1] & 0xC0) == 0x80 &&
               (v[n - 2] & 0xC0) == 0x80 && (v[n - 3] & 0xC0) == 0x80));
    }
    check_lines(&mv->body);
    check_lines(&mv->rawbody);
    CHECK(mv->uris.n <= URIS_MAX + 2);
    CHECK(mv->full.n <= size);
    if (!stray_cr(data, size))
        CHECK(!memchr(mv->full.p, '\r', mv->full.n));
    for (size_t f = 0; f < sizeof(fields) / sizeof(fields[0]); f++) {
        for (int mod = HDR_DECODED; mod <= HDR_NAME; mod++) {
            size_t len = 0;
            char *v = msgview_header(mv, fields[f], (enum header_mod)mod, &len);
            if (!v)
                continue;
            CHECK(strlen(v) <= len);
            free(v);
        }
    }
    /* mimeheader's view: one string per instance, each ending in "\n" */
    CHECK(mv->npart_fields <= MSGVIEW_MAX_PART_FIELDS);
    for (int raw = 0; raw < 2; raw++) {
        struct strv vals = {0};
        CHECK(msgview_mime_header(mv, "Content-Type",
                                  raw ? HDR_RAW : HDR_DECODED, &vals) == 0);
        for (size_t i = 0; i < vals.n; i++)
            CHECK(vals.len[i] > 0 && vals.v[i][vals.len[i] - 1] == '\n');
        strv_free(&vals);
    }
    msgview_free(mv);
    return 0;
}
