/*
 * Unit tests for msgview: MIME decoding for the scorer. Base64 and
 * quoted-printable parts, charsets converted to UTF-8 (declared,
 * undeclared 8-bit, unknown), HTML reduced to text, nested multiparts and
 * attached messages, non-text parts left out, the body's paragraphs as
 * SpamAssassin splits them, rawbody lines, URIs, header fields (RFC 2047,
 * folding, :raw, :addr, :name, ALL, ToCc, MESSAGEID, EnvelopeFrom), and
 * dot-stuffing undone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <glib.h>

#include "msgview.h"

/* Build a CRLF message from LF text. */
static struct msgview *view(const char *lf, bool stuffed, const char *env)
{
    size_t n = strlen(lf);
    char *crlf = malloc(2 * n + 1), *o = crlf;
    struct msgview *mv;

    for (const char *p = lf; *p; p++) {
        if (*p == '\n')
            *o++ = '\r';
        *o++ = *p;
    }
    mv = msgview_new(crlf, (size_t)(o - crlf), stuffed, env);
    free(crlf);
    assert_non_null(mv);
    return mv;
}

static bool body_has(const struct msgview *mv, const char *needle)
{
    for (size_t i = 0; i < mv->body.n; i++)
        if (strstr(mv->body.v[i], needle))
            return true;
    return false;
}

static bool uri_is(const struct msgview *mv, const char *uri)
{
    for (size_t i = 0; i < mv->uris.n; i++)
        if (strcmp(mv->uris.v[i], uri) == 0)
            return true;
    return false;
}

static bool raw_has(const struct msgview *mv, const char *needle)
{
    for (size_t i = 0; i < mv->rawbody.n; i++)
        if (strstr(mv->rawbody.v[i], needle))
            return true;
    return false;
}

static void dump(const struct msgview *mv)
{
    for (size_t i = 0; i < mv->body.n; i++)
        print_message("body[%zu] %s", i, mv->body.v[i]);
    for (size_t i = 0; i < mv->uris.n; i++)
        print_message("uri %s\n", mv->uris.v[i]);
}

static void assert_header(struct msgview *mv, const char *field,
                          enum header_mod mod, const char *want)
{
    char *v = msgview_header(mv, field, mod, NULL);

    if (!want) {
        assert_null(v);
        return;
    }
    assert_non_null(v);
    assert_string_equal(v, want);
    free(v);
}

/* ---- transfer encodings and charsets ---- */

static const char multipart[] =
    "From: \"Bob Smith\" <bob@example.com>\n"
    "To: a@example.org, b@example.org\n"
    "Cc: c@example.org\n"
    "Subject: =?iso-8859-1?q?Caf=E9?= offer\n"
    "Message-Id: <1@example.com>\n"
    "MIME-Version: 1.0\n"
    "Content-Type: multipart/mixed; boundary=\"outer\"\n"
    "\n"
    "preamble is not shown\n"
    "--outer\n"
    "Content-Type: multipart/alternative; boundary=inner\n"
    "\n"
    "--inner\n"
    "Content-Type: text/plain; charset=iso-8859-1\n"
    "Content-Transfer-Encoding: quoted-printable\n"
    "\n"
    "Cr=E8me br=FBl=E9e for a very long line that is soft=\n"
    "-broken here.\n"
    "--inner\n"
    "Content-Type: text/html; charset=utf-8\n"
    "Content-Transfer-Encoding: base64\n"
    "\n"
    /* <p>Hello <b>w&ouml;rld</b></p><script>evil()</script>
     * <a href="http://click.example.net/x">go</a> */
    "PHA+SGVsbG8gPGI+dyZvdW1sO3JsZDwvYj48L3A+PHNjcmlwdD5ldmlsKCk8L3Njcmlw\n"
    "dD48YSBocmVmPSJodHRwOi8vY2xpY2suZXhhbXBsZS5uZXQveCI+Z288L2E+\n"
    "--inner--\n"
    "--outer\n"
    "Content-Type: application/octet-stream\n"
    "Content-Transfer-Encoding: base64\n"
    "\n"
    "bm90IHRleHQgaHR0cDovL2hpZGRlbi5leGFtcGxlLw==\n"
    "--outer\n"
    "Content-Type: message/rfc822\n"
    "\n"
    "Subject: inner\n"
    "\n"
    "Forwarded text with http://fwd.example.com/\n"
    "--outer--\n";

static void test_multipart(void **state)
{
    struct msgview *mv = view(multipart, false, NULL);

    dump(mv);
    /* the Subject, decoded, begins the body */
    assert_non_null(strstr(mv->body.v[0], "Caf\xc3\xa9 offer"));
    /* quoted-printable from Latin-1, soft line break joined */
    assert_true(body_has(mv, "Cr\xc3\xa8me br\xc3\xbbl\xc3\xa9\x65 for"));
    assert_true(body_has(mv, "soft-broken here."));
    /* base64 HTML: text only, entity decoded, script dropped */
    assert_true(body_has(mv, "Hello w\xc3\xb6rld"));
    assert_false(body_has(mv, "<b>"));
    assert_false(body_has(mv, "evil"));
    /* the attached message's text is read; the binary part is not */
    assert_true(body_has(mv, "Forwarded text"));
    assert_false(body_has(mv, "not text"));
    assert_false(body_has(mv, "preamble"));
    /* rawbody: transfer-decoded, tags kept */
    assert_true(raw_has(mv, "<p>Hello <b>w&ouml;rld</b></p>"));
    assert_true(raw_has(mv, "Cr\xe8me"));
    /* URIs from the HTML link and from the attached message's text */
    assert_true(uri_is(mv, "http://click.example.net/x"));
    assert_true(uri_is(mv, "http://fwd.example.com/"));
    assert_false(uri_is(mv, "http://hidden.example/"));
    assert_int_equal(mv->nparts, 4);
    msgview_free(mv);
}

static void test_charsets(void **state)
{
    struct msgview *mv;

    /* undeclared 8-bit that is not UTF-8: windows-1252 */
    mv = view("Subject: x\n\nna\xefve \x93quoted\x94\n", false, NULL);
    assert_true(body_has(mv, "na\xc3\xafve \xe2\x80\x9cquoted\xe2\x80\x9d"));
    msgview_free(mv);
    /* undeclared, valid UTF-8: kept */
    mv = view("Subject: x\n\n\xc3\xa9t\xc3\xa9\n", false, NULL);
    assert_true(body_has(mv, "\xc3\xa9t\xc3\xa9"));
    msgview_free(mv);
    /* KOI8-R declared */
    mv = view("Content-Type: text/plain; charset=koi8-r\n\n\xf0\xd2\xc9\n",
              false, NULL);
    assert_true(body_has(mv, "\xd0\x9f\xd1\x80\xd0\xb8")); /* "Pri" */
    msgview_free(mv);
    /* an unknown charset does not lose the text */
    mv = view("Content-Type: text/plain; charset=x-nonsense\n\nplain words\n",
              false, NULL);
    assert_true(body_has(mv, "plain words"));
    msgview_free(mv);
}

/* ---- the body as SpamAssassin splits it ---- */

static void test_paragraphs(void **state)
{
    struct msgview *mv = view("Subject: Hi there\n\n"
                              "line one\nline two\n"
                              "\n \t\n"
                              "second   paragraph\twith\xc2\xa0nbsp\n",
                              false, NULL);
    char longp[5000];

    assert_int_equal(mv->body.n, 2);
    /* the Subject runs into the first paragraph (one line break) */
    assert_string_equal(mv->body.v[0], "Hi there line one line two\n");
    assert_string_equal(mv->body.v[1], "second paragraph with nbsp\n");
    msgview_free(mv);

    /* paragraphs over 2048 bytes are split at a blank */
    strcpy(longp, "Subject: s\n\n");
    for (int i = 0; i < 600; i++)
        strcat(longp, "word ");
    mv = view(longp, false, NULL);
    assert_true(mv->body.n >= 2);
    for (size_t i = 0; i < mv->body.n; i++)
        assert_true(mv->body.len[i] <= 2048);
    msgview_free(mv);

    /* with no blank, between two characters: 700 three-byte euro signs
     * (2100 bytes) make pieces of 2046 and 54+1 bytes, each valid UTF-8 */
    static char euros[3000];
    strcpy(euros, "Subject: s\nContent-Type: text/plain; charset=utf-8\n\n");
    for (int i = 0; i < 700; i++)
        strcat(euros, "\xe2\x82\xac");
    mv = view(euros, false, NULL);
    assert_int_equal(mv->body.n, 3); /* the Subject, then two pieces */
    assert_int_equal(mv->body.len[1], 2046);
    assert_int_equal(mv->body.len[2], 2100 - 2046 + 1);
    for (size_t i = 1; i < 3; i++)
        assert_true(g_utf8_validate(mv->body.v[i], (gssize)mv->body.len[i],
                                    NULL));
    msgview_free(mv);
}

static void test_no_body(void **state)
{
    struct msgview *mv = view("Subject: only headers\n", false, NULL);

    assert_true(body_has(mv, "only headers"));
    assert_int_equal(mv->rawbody.n, 0);
    msgview_free(mv);
    mv = msgview_new("", 0, false, NULL);
    assert_non_null(mv);
    assert_int_equal(mv->nfields, 0);
    msgview_free(mv);
}

/* ---- URIs in plain text ---- */

static void test_text_uris(void **state)
{
    struct msgview *mv =
        view("Subject: links\n\n"
             "See http://example.com/a?b=1, (www.shop.example) or "
             "HTTPS://Secure.Example.org/login.\n"
             "Mail sales@spam.example or mailto:x@y.example now!\n"
             "Escaped: http://%65vil.example/ and ftp.files.example/pub\n",
             false, NULL);

    dump(mv);
    assert_true(uri_is(mv, "http://example.com/a?b=1"));
    assert_true(uri_is(mv, "www.shop.example"));
    assert_true(uri_is(mv, "http://www.shop.example"));
    assert_true(uri_is(mv, "HTTPS://Secure.Example.org/login"));
    assert_true(uri_is(mv, "mailto:sales@spam.example"));
    assert_true(uri_is(mv, "mailto:x@y.example"));
    assert_true(uri_is(mv, "http://%65vil.example/"));
    assert_true(uri_is(mv, "http://evil.example/"));
    assert_true(uri_is(mv, "ftp://ftp.files.example/pub"));
    msgview_free(mv);
}

/* ---- header fields ---- */

static void test_headers(void **state)
{
    struct msgview *mv = view("From: =?utf-8?b?Qm9i?= Smith <Bob@Example.COM>\n"
                              "To: a@example.org\n"
                              "Cc: c@example.org\n"
                              "Subject: folded\n"
                              "  subject line\n"
                              "Received: from a\n"
                              "Received: from b\n"
                              "Message-Id: <x@y>\n"
                              "Return-Path: <bounce@example.net>\n"
                              "\n"
                              "body\n",
                              false, NULL);

    assert_header(mv, "Subject", HDR_DECODED, "folded  subject line\n");
    assert_header(mv, "subject", HDR_DECODED, "folded  subject line\n");
    assert_header(mv, "From", HDR_DECODED, "Bob Smith <Bob@Example.COM>\n");
    assert_header(mv, "From", HDR_RAW,
                  "=?utf-8?b?Qm9i?= Smith <Bob@Example.COM>\n");
    /* an address or a name: the value alone, no line end */
    assert_header(mv, "From", HDR_ADDR, "Bob@Example.COM");
    assert_header(mv, "From", HDR_NAME, "Bob Smith");
    assert_header(mv, "Received", HDR_DECODED, "from a\nfrom b\n");
    assert_header(mv, "ToCc", HDR_DECODED, "a@example.org\nc@example.org\n");
    assert_header(mv, "MESSAGEID", HDR_DECODED, "<x@y>\n");
    assert_header(mv, "EnvelopeFrom", HDR_DECODED, "bounce@example.net");
    /* special names are exact: "MessageID" is a field of that name */
    assert_header(mv, "MessageID", HDR_DECODED, NULL);
    assert_header(mv, "X-Missing", HDR_DECODED, NULL);
    char *all = msgview_header(mv, "ALL", HDR_DECODED, NULL);
    assert_non_null(strstr(all, "From: Bob Smith <Bob@Example.COM>\n"));
    assert_non_null(strstr(all, "Received: from b\n"));
    free(all);
    msgview_free(mv);

    /* the SMTP envelope wins over headers */
    mv = view("Return-Path: <h@example.net>\n\nx\n", false, "env@example.org");
    assert_header(mv, "EnvelopeFrom", HDR_DECODED, "env@example.org\n");
    assert_header(mv, "EnvelopeFrom", HDR_ADDR, "env@example.org");
    msgview_free(mv);
}

static void test_dot_stuffing(void **state)
{
    struct msgview *mv =
        view("Subject: dots\n\n..hidden line\nok\n", true, NULL);

    assert_true(body_has(mv, ".hidden line"));
    assert_false(body_has(mv, "..hidden"));
    assert_non_null(strstr(mv->full.p, "\n.hidden line\nok\n"));
    assert_null(strchr(mv->full.p, '\r')); /* full has LF line ends */
    msgview_free(mv);
}

static void test_broken_mime(void **state)
{
    /* a boundary that never comes, bad base64, no Content-Type value */
    struct msgview *mv = view("MIME-Version: 1.0\n"
                              "Content-Type: multipart/mixed; boundary=nope\n\n"
                              "--other\nContent-Type: text/plain\n"
                              "Content-Transfer-Encoding: base64\n\n"
                              "!!!not base64!!!\n",
                              false, NULL);
    msgview_free(mv);
    mv = view("Content-Type:\nContent-Transfer-Encoding: x-unknown\n\nhi\n",
              false, NULL);
    assert_true(body_has(mv, "hi"));
    msgview_free(mv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_multipart),    cmocka_unit_test(test_charsets),
        cmocka_unit_test(test_paragraphs),   cmocka_unit_test(test_no_body),
        cmocka_unit_test(test_text_uris),    cmocka_unit_test(test_headers),
        cmocka_unit_test(test_dot_stuffing), cmocka_unit_test(test_broken_mime),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
