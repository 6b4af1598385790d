/*
 * Unit tests for scorer: each rule type on a real message (header with
 * its modifiers and if-unset, exists, !~, mimeheader, body, rawbody,
 * uri, full, meta), tflags multiple and maxhits, nice negative scores, external
 * results, the hit list, and GTUBE with the shipped rules.
 */
#define _GNU_SOURCE /* asprintf */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "msgview.h"
#include "scorer.h"
#include "tmpdir.h"

static const char message[] =
    "From: \"Cheap Meds\" <offers@pharma.example>\r\n"
    "To: victim@example.org\r\n"
    "Subject: =?utf-8?q?FREE_v=C3=AEagra?= now\r\n"
    "X-Mailer: Bulk Sender 3000\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: text/html; charset=utf-8\r\n"
    "Content-Transfer-Encoding: quoted-printable\r\n"
    "\r\n"
    "<html><body><font color=3D\"#ffffff\">hidden</font>\r\n"
    "<p>Buy now! Buy now! Buy now! Buy now!</p>\r\n"
    "<a href=3D\"http://pills.example.cn/buy\">click here</a>\r\n"
    "</body></html>\r\n";

static void dump_errors(const struct errors *e)
{
    for (size_t i = 0; i < e->n; i++)
        print_message("  error: %s\n", e->v[i]);
}

static struct ruleset *load(const struct tdir *t, const char *text, char **path)
{
    struct errors errs = {0};
    struct ruleset *rs;

    *path = write_file(t, "s.cf", text);
    rs = ruleset_load(path, 1, 0, &errs);
    dump_errors(&errs);
    assert_non_null(rs);
    errors_free(&errs);
    return rs;
}

static bool hit(const struct ruleset *rs, const struct score_result *r,
                const char *name, double count)
{
    for (size_t i = 0; i < r->nhits; i++)
        if (strcmp(rs->v[r->hits[i].rule].name, name) == 0)
            return count == 0 || r->hits[i].count == count;
    return false;
}

static struct score_result score(const struct ruleset *rs, const char *msg,
                                 const double *ext)
{
    struct msgview *mv =
        msgview_new(msg, strlen(msg), false, "bounce@pharma.example");
    struct score_result r;

    assert_non_null(mv);
    assert_int_equal(scorer_run(rs, mv, ext, 0, &r), 0);
    msgview_free(mv);
    return r;
}

static const char rule_types[] =
    "header SUBJ_FREE     Subject =~ /\\bFREE\\b/\n"
    "header SUBJ_RAW_Q    Subject:raw =~ /=\\?utf-8\\?q\\?/i\n"
    "header SUBJ_DECODED  Subject =~ /v\\xc3\\xaeagra/\n"
    "header FROM_PHARMA   From:addr =~ /\\@pharma\\.example$/\n"
    "header FROM_NAME_CHEAP From:name =~ /^Cheap/\n"
    "header MAILER_BULK   X-Mailer =~ /bulk/i\n"
    "header NO_DATE       Date !~ /./\n"
    "header HAS_TO        exists:To\n"
    "header HAS_CC        exists:Cc\n"
    "header UNSET_CC      Cc =~ /^none$/ [if-unset: none]\n"
    "header ENV_PHARMA    EnvelopeFrom =~ /pharma/\n"
    "header ALL_MAILER    ALL =~ /^X-Mailer: Bulk/m\n"
    "body   BODY_BUY      /buy now/i\n"
    "body   BODY_HIDDEN   /hidden/\n"
    "body   BODY_TAG      /<font/\n"
    "rawbody RAW_FONT_WHITE /<font color=\"\\#ffffff\">/i\n"
    "uri    URI_CN        m{^https?://[^/]+\\.cn/}i\n"
    "full   FULL_QP       /=3D/\n"
    "meta   META_PHARMA   (SUBJ_FREE && URI_CN) || HAS_CC\n"
    "meta   META_COUNT    (SUBJ_FREE + MAILER_BULK + HAS_CC + NO_DATE) >= 3\n"
    "meta   META_NOT      !HAS_TO\n"
    "score  HAS_TO 0.1\n"
    "score  HAS_CC 0.1\n";

static void test_rule_types(void **state)
{
    char *path;
    struct ruleset *rs = load(*state, rule_types, &path);
    struct score_result r = score(rs, message, NULL);

    assert_true(hit(rs, &r, "SUBJ_FREE", 1));
    assert_true(hit(rs, &r, "SUBJ_RAW_Q", 1));
    assert_true(hit(rs, &r, "SUBJ_DECODED", 1));
    assert_true(hit(rs, &r, "FROM_PHARMA", 1));
    assert_true(hit(rs, &r, "FROM_NAME_CHEAP", 1));
    assert_true(hit(rs, &r, "MAILER_BULK", 1));
    assert_true(hit(rs, &r, "NO_DATE", 1)); /* !~ on a missing field */
    assert_true(hit(rs, &r, "HAS_TO", 1));
    assert_false(hit(rs, &r, "HAS_CC", 0));
    assert_true(hit(rs, &r, "UNSET_CC", 1));
    assert_true(hit(rs, &r, "ENV_PHARMA", 1)); /* the SMTP envelope */
    assert_true(hit(rs, &r, "ALL_MAILER", 1));
    assert_true(hit(rs, &r, "BODY_BUY", 1)); /* once: not multiple */
    assert_true(hit(rs, &r, "BODY_HIDDEN", 1));
    assert_false(hit(rs, &r, "BODY_TAG", 0));      /* body has no tags */
    assert_true(hit(rs, &r, "RAW_FONT_WHITE", 1)); /* rawbody is decoded */
    assert_true(hit(rs, &r, "URI_CN", 1));
    assert_true(hit(rs, &r, "FULL_QP", 1)); /* full is not decoded */
    assert_true(hit(rs, &r, "META_PHARMA", 1));
    assert_true(hit(rs, &r, "META_COUNT", 1));
    assert_false(hit(rs, &r, "META_NOT", 0));
    /* 17 rules at 1.0, HAS_TO at 0.1 */
    assert_int_equal(r.nhits, 18);
    assert_true(r.score > 17.09 && r.score < 17.11);
    /* the hit list is in name order */
    for (size_t i = 1; i < r.nhits; i++)
        assert_true(strcmp(rs->v[r.hits[i - 1].rule].name,
                           rs->v[r.hits[i].rule].name) < 0);
    char tests[64];
    score_result_tests(rs, &r, tests, sizeof(tests));
    assert_non_null(strstr(tests, "ALL_MAILER,BODY_BUY"));
    assert_non_null(strstr(tests, "...")); /* cut to fit */
    score_result_free(&r);
    ruleset_free(rs);
    free(path);
}

static void test_multiple_and_nice(void **state)
{
    char *path;
    struct ruleset *rs = load(*state,
                              "body   BUY_ALL   /buy now/i\n"
                              "tflags BUY_ALL   multiple\n"
                              "body   BUY_TWO   /buy now/i\n"
                              "tflags BUY_TWO   multiple maxhits=2\n"
                              "score  BUY_TWO   0.5\n"
                              "header GOOD      X-Mailer =~ /Bulk/\n"
                              "tflags GOOD      nice\n"
                              "score  GOOD      -3\n",
                              &path);
    struct score_result r = score(rs, message, NULL);

    assert_true(hit(rs, &r, "BUY_ALL", 4));
    assert_true(hit(rs, &r, "BUY_TWO", 2));
    assert_true(hit(rs, &r, "GOOD", 1));
    /* 4 x 1 + 2 x 0.5 - 3 */
    assert_true(r.score > 1.99 && r.score < 2.01);
    score_result_free(&r);
    ruleset_free(rs);
    free(path);
}

static void test_externals(void **state)
{
    char *path;
    struct ruleset *rs = load(*state,
                              "score WARDEN_SPF_FAIL 2\n"
                              "score WARDEN_DKIM_FAIL 1\n"
                              "meta  BOTH_FAIL WARDEN_SPF_FAIL && "
                              "WARDEN_DMARC_FAIL\n"
                              "score BOTH_FAIL 4\n",
                              &path);
    double ext[EXT__COUNT] = {0};
    struct score_result r = score(rs, message, NULL);

    assert_int_equal(r.nhits, 0); /* no results: nothing hits */
    score_result_free(&r);
    ext[EXT_SPF_FAIL] = 1;
    ext[EXT_DMARC_FAIL] = 1;
    r = score(rs, message, ext);
    assert_true(hit(rs, &r, "WARDEN_SPF_FAIL", 1));
    assert_false(hit(rs, &r, "WARDEN_DKIM_FAIL", 0));
    assert_false(hit(rs, &r, "WARDEN_DMARC_FAIL", 0)); /* scores 0 */
    assert_true(hit(rs, &r, "BOTH_FAIL", 1));
    assert_true(r.score == 6);
    score_result_free(&r);
    ruleset_free(rs);
    free(path);
}

static void test_gtube_with_shipped_rules(void **state)
{
    const char *src = getenv("WARDEN_SOURCE_DIR");
    struct errors errs = {0};
    char *dir;
    const char *gtube =
        "Subject: test\r\n\r\n"
        "This is the GTUBE, the\r\n"
        "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
        "\r\n";

    if (!src)
        skip();
    assert_true(asprintf(&dir, "%s/rules", src) > 0);
    struct ruleset *rs = ruleset_load(&dir, 1, 0, &errs);
    dump_errors(&errs);
    assert_non_null(rs);
    struct score_result r = score(rs, gtube, NULL);
    assert_true(hit(rs, &r, "GTUBE", 1));
    assert_true(r.score >= 1000);
    score_result_free(&r);
    /* an ordinary short message is far from any threshold */
    r = score(rs,
              "From: Alice <alice@example.org>\r\nTo: bob@example.org\r\n"
              "Subject: lunch tomorrow?\r\nDate: Mon, 1 Jan 2024 10:00:00 "
              "+0000\r\nMessage-Id: <a1@example.org>\r\n\r\n"
              "Shall we meet at noon?\r\n\r\nAlice\r\n",
              NULL);
    assert_true(r.score < 3);
    score_result_free(&r);
    ruleset_free(rs);
    free(dir);
}

/* A pattern that backtracks forever on every paragraph: the run ends. */
/* mimeheader: every part's header, each instance on its own */
static const char multipart[] =
    "From: a@example.org\r\n"
    "Subject: photos\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=\"b1\"\r\n"
    "\r\n"
    "--b1\r\n"
    "Content-Type: text/plain; charset=us-ascii\r\n"
    "\r\n"
    "see attached\r\n"
    "--b1\r\n"
    "Content-Type: image/gif;\r\n"
    "        name=\"abcdefgh.gif\"\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "Content-Description: =?utf-8?q?caf=C3=A9?=\r\n"
    "\r\n"
    "R0lGODlhAQABAAAAACw=\r\n"
    "--b1--\r\n";

static const char mime_rules[] =
    "mimeheader GIF_NAME    Content-Type =~ /\\bname=\"[a-z]{8}\\.gif/\n"
    "mimeheader TOP_MIXED   Content-Type =~ /^multipart\\/mixed/\n"
    "mimeheader EACH_ALONE  Content-Type =~ /^text\\/plain.*$/\n"
    "mimeheader RAW_B64     Content-Transfer-Encoding:raw =~ /^base64$/\n"
    "mimeheader DESC_CAFE   Content-Description =~ /caf\\xc3\\xa9/\n"
    "mimeheader DESC_RAW    Content-Description:raw =~ /=\\?utf-8\\?q/\n"
    "mimeheader NO_ID       Content-Id !~ /./\n"
    "mimeheader NO_GIF      Content-Type !~ /gif/\n"
    "mimeheader HAS_CTE     exists:Content-Transfer-Encoding\n"
    "header     NOT_TOP     Content-Transfer-Encoding =~ /base64/\n"
    "mimeheader __ADDR      From:addr =~ /x/\n";

static void test_mimeheader(void **state)
{
    char *path;
    struct ruleset *rs = load(*state, mime_rules, &path);
    struct score_result r = score(rs, multipart, NULL);

    assert_true(hit(rs, &r, "GIF_NAME", 1));  /* a subpart, unfolded */
    assert_true(hit(rs, &r, "TOP_MIXED", 1)); /* the message's own */
    /* "text/plain..." alone in its string: $ does not reach the next one */
    assert_true(hit(rs, &r, "EACH_ALONE", 1));
    assert_true(hit(rs, &r, "RAW_B64", 1));
    assert_true(hit(rs, &r, "DESC_CAFE", 1));
    assert_true(hit(rs, &r, "DESC_RAW", 1));
    assert_true(hit(rs, &r, "NO_ID", 1));
    assert_false(hit(rs, &r, "NO_GIF", 0));
    assert_true(hit(rs, &r, "HAS_CTE", 1));
    /* a header rule reads only the message's own header */
    assert_false(hit(rs, &r, "NOT_TOP", 0));
    /* :addr is a header rule's modifier, not mimeheader's: skipped */
    assert_null(ruleset_find(rs, "__ADDR"));
    score_result_free(&r);
    ruleset_free(rs);
    free(path);
}

static void test_bounded(void **state)
{
    char *path;
    struct ruleset *rs = load(*state, "body SLOW /^(\\w+\\s?)*$/\n", &path);
    struct score_result r;
    char *msg = malloc(200000);
    size_t o = (size_t)sprintf(msg, "Subject: x\r\n\r\n");

    for (int p = 0; p < 200; p++) {
        for (int i = 0; i < 60; i++)
            o += (size_t)sprintf(msg + o, "word ");
        o += (size_t)sprintf(msg + o, "!\r\n\r\n");
    }
    struct msgview *mv = msgview_new(msg, o, false, NULL);
    assert_int_equal(scorer_run(rs, mv, NULL, 2000, &r), 0);
    assert_true(r.limit_errors > 0);
    assert_true(r.seconds < 10);
    score_result_free(&r);
    msgview_free(mv);
    free(msg);
    ruleset_free(rs);
    free(path);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_rule_types), T(test_multiple_and_nice),
        T(test_externals),  T(test_gtube_with_shipped_rules),
        T(test_bounded),    T(test_mimeheader),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
