/*
 * Unit tests for rules (rules_load.c): every directive, good and bad
 * lines with their file:line errors, skipped lines and their summary,
 * include, if/ifplugin/else/endif, default scores, redefinition, meta
 * resolution and loops, the shipped rule set and SpamAssassin's own
 * files when they are installed.
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
#include <unistd.h>

#include <cmocka.h>

#include "errassert.h"
#include "rules.h"
#include "rules_regex.h"
#include "tmpdir.h"

static struct ruleset *load_text(const struct tdir *t, const char *name,
                                 const char *text, char **path,
                                 struct errors *errs)
{
    *path = write_file(t, name, text);
    return ruleset_load(path, 1, 0, errs);
}

static const struct rule *find(const struct ruleset *rs, const char *name)
{
    const struct rule *r = ruleset_find(rs, name);

    if (!r)
        fail_msg("no rule %s", name);
    return r;
}

/* A warning "file:line: ..." containing needle. */
static void assert_warning(const struct ruleset *rs, const char *file,
                           unsigned line, const char *needle)
{
    assert_error(&rs->warnings, file, line, needle);
}

static bool planned(const struct ruleset *rs, const char *name)
{
    const struct rule *r = find(rs, name);

    for (size_t i = 0; i < rs->nplan[r->type]; i++)
        if (&rs->v[rs->plan[r->type][i]] == r)
            return true;
    return false;
}

/* ---- good lines ---- */

static const char good_cf[] =
    "# a comment line\n"                                           /* 1 */
    "header   SUBJ_FREE   Subject =~ /\\bfree\\b/i   # trailing\n" /* 2 */
    "header   NO_DATE     Date !~ /./\n"                           /* 3 */
    "header   __HAS_MID   exists:Message-Id\n"                     /* 4 */
    "header   FROM_BIZ    From:addr =~ /\\@biz\\.example$/ [if-unset: x@y]\n"
    "header   FROM_NAME   From:name =~ /^Bob/\n"                    /* 6 */
    "header   RAW_SUBJ    Subject:raw =~ /=\\?utf-8\\?/i\n"         /* 7 */
    "header   ALL_X       ALL =~ /^X-Mailer: /m\n"                  /* 8 */
    "body     BODY_HASH   /price \\#1/\n"                           /* 9 */
    "rawbody  RAW_FONT    m{<font\\s}i\n"                           /* 10 */
    "uri      URI_CN      m!^https?://[^/]+\\.cn\\b!i\n"            /* 11 */
    "full     FULL_X      /^X-Spam: /m\n"                           /* 12 */
    "meta     META_1      (SUBJ_FREE || FROM_BIZ) && !__HAS_MID\n"  /* 13 */
    "meta     META_SUM    (SUBJ_FREE + NO_DATE + BODY_HASH) >= 2\n" /* 14 */
    "score    SUBJ_FREE   2.5\n"                                    /* 15 */
    "score    NO_DATE     1.0 1.1 1.2 1.3\n"                        /* 16 */
    "describe SUBJ_FREE   Subject says free\n"                      /* 17 */
    "tflags   BODY_HASH   multiple maxhits=3\n"                     /* 18 */
    "tflags   NICE_ONE    nice\n"                                   /* 19 */
    "header   NICE_ONE    X-Good =~ /yes/\n"                        /* 20 */
    "score    NICE_ONE    -2\n"                                     /* 21 */
    "  score  T_TESTING   0.5\n"                                    /* 22 */
    "body     T_TESTING   /testing/\n"                              /* 23 */
    "body     T_DEFAULT   /x/\n"                                    /* 24 */
    "score    WARDEN_SPF_FAIL 3\n";                                 /* 25 */

static void test_good_lines(void **state)
{
    struct errors errs = {0};
    char *path;
    struct ruleset *rs = load_text(*state, "good.cf", good_cf, &path, &errs);
    const struct rule *r;

    dump_errors(&errs);
    assert_non_null(rs);
    assert_int_equal(errs.n, 0);
    assert_int_equal(rs->warnings.n, 0);

    r = find(rs, "SUBJ_FREE");
    assert_int_equal(r->type, RULE_HEADER);
    assert_true(r->score == 2.5);
    assert_string_equal(r->describe, "Subject says free");
    assert_string_equal(rs->hkeys[r->hkey].field, "Subject");
    assert_int_equal(rs->hkeys[r->hkey].mod, HDR_DECODED);
    char where[300];
    snprintf(where, sizeof(where), "%s:2", path);
    assert_string_equal(r->where, where);

    assert_true(find(rs, "NO_DATE")->negate);
    assert_true(find(rs, "NO_DATE")->score == 1.0); /* the first set */
    assert_true(find(rs, "__HAS_MID")->exists);
    r = find(rs, "FROM_BIZ");
    assert_int_equal(rs->hkeys[r->hkey].mod, HDR_ADDR);
    assert_string_equal(r->if_unset, "x@y");
    assert_int_equal(rs->hkeys[find(rs, "FROM_NAME")->hkey].mod, HDR_NAME);
    assert_int_equal(rs->hkeys[find(rs, "RAW_SUBJ")->hkey].mod, HDR_RAW);
    assert_string_equal(rs->hkeys[find(rs, "ALL_X")->hkey].field, "ALL");
    assert_int_equal(find(rs, "BODY_HASH")->type, RULE_BODY);
    assert_int_equal(find(rs, "BODY_HASH")->maxhits, 3);
    assert_true(find(rs, "BODY_HASH")->tflags & RULE_MULTIPLE);
    assert_int_equal(find(rs, "RAW_FONT")->type, RULE_RAWBODY);
    assert_int_equal(find(rs, "URI_CN")->type, RULE_URI);
    assert_int_equal(find(rs, "FULL_X")->type, RULE_FULL);
    assert_int_equal(find(rs, "META_1")->type, RULE_META);
    assert_true(find(rs, "NICE_ONE")->score == -2);
    assert_true(find(rs, "NICE_ONE")->tflags & RULE_NICE);
    /* a score before the definition sticks */
    assert_true(find(rs, "T_TESTING")->score == 0.5);
    /* defaults: 1, T_ 0.01, __ 0 */
    assert_true(find(rs, "FULL_X")->score == 1.0);
    assert_true(find(rs, "T_DEFAULT")->score == 0.01);
    assert_true(find(rs, "__HAS_MID")->score == 0);
    /* external results exist, scored by the file */
    r = find(rs, "WARDEN_SPF_FAIL");
    assert_int_equal(r->type, RULE_EXTERNAL);
    assert_true(r->score == 3);
    assert_true(find(rs, "WARDEN_DKIM_FAIL")->score == 0);
    /* plan: __HAS_MID runs because META_1 reads it */
    assert_true(planned(rs, "__HAS_MID"));
    assert_true(planned(rs, "META_1"));
    assert_true(planned(rs, "WARDEN_SPF_FAIL"));
    assert_false(planned(rs, "WARDEN_DKIM_FAIL")); /* scores nothing */
    ruleset_free(rs);
    errors_free(&errs);
    free(path);
}

static void test_meta_order(void **state)
{
    struct errors errs = {0};
    char *path;
    /* metas may name metas defined later; each runs after what it reads */
    struct ruleset *rs = load_text(*state, "m.cf",
                                   "meta TOP __MID && __B\n"
                                   "meta __MID __A || __B\n"
                                   "body __A /a/\n"
                                   "body __B /b/\n",
                                   &path, &errs);
    assert_non_null(rs);
    assert_int_equal(rs->nplan[RULE_META], 2);
    assert_string_equal(rs->v[rs->plan[RULE_META][0]].name, "__MID");
    assert_string_equal(rs->v[rs->plan[RULE_META][1]].name, "TOP");
    assert_int_equal(rs->nplan[RULE_BODY], 2);
    ruleset_free(rs);
    free(path);
}

static void test_unused_rules_not_planned(void **state)
{
    struct errors errs = {0};
    char *path;
    struct ruleset *rs = load_text(*state, "u.cf",
                                   "body __UNUSED /a/\n"
                                   "body OFF /b/\n"
                                   "score OFF 0\n"
                                   "meta M OFF\n"
                                   "score M 0\n",
                                   &path, &errs);
    assert_non_null(rs);
    assert_false(planned(rs, "__UNUSED"));
    assert_false(planned(rs, "OFF"));
    assert_false(planned(rs, "M"));
    ruleset_free(rs);
    free(path);
}

static void test_redefinition(void **state)
{
    struct errors errs = {0};
    char *path;
    struct ruleset *rs = load_text(*state, "r.cf",
                                   "body FOO /one/\n"
                                   "score FOO 3\n"
                                   "header FOO Subject =~ /two/\n",
                                   &path, &errs);
    assert_non_null(rs);
    assert_int_equal(find(rs, "FOO")->type, RULE_HEADER); /* later wins */
    assert_true(find(rs, "FOO")->score == 3);             /* score stays */
    ruleset_free(rs);
    free(path);
}

/* ---- skipped lines ---- */

static const char skipped_cf[] =
    "body       GOOD     /ok/\n"                          /* 1 */
    "header     EVAL_H   eval:check_for_forged()\n"       /* 2 */
    "body       EVAL_B   eval:check_stock_info()\n"       /* 3 */
    "loadplugin Mail::SpamAssassin::Plugin::Foo\n"        /* 4 */
    "lang fr    describe GOOD Bien\n"                     /* 5 */
    "header     RELAYS   X-Spam-Relays-External =~ /x/\n" /* 6 */
    "header     HOSTMOD  Received:host =~ /x/\n"          /* 7 */
    "ifplugin Mail::SpamAssassin::Plugin::Bar\n"          /* 8 */
    "  body     IN_PLUG  /never/\n"                       /* 9 */
    "  if (version >= 3.004000)\n"                        /* 10 */
    "    body   NESTED   /never/\n"                       /* 11 */
    "  endif\n"                                           /* 12 */
    "else\n"                                              /* 13 */
    "  body     NO_PLUG  /yes/\n"                         /* 14 */
    "endif\n"                                             /* 15 */
    "if (version >= 3.004000)\n"                          /* 16 */
    "  body     NEW_SA   /new/\n"                         /* 17 */
    "endif\n"                                             /* 18 */
    "if (version >= 9.000000)\n"                          /* 19 */
    "  body     FUTURE   /future/\n"                      /* 20 */
    "endif\n"                                             /* 21 */
    "if can(Mail::SpamAssassin::Conf::feature_unknown)\n" /* 22 */
    "  body     CAN_NOT  /x/\n"                           /* 23 */
    "endif\n"                                             /* 24 */
    "if !plugin(Mail::SpamAssassin::Plugin::Bar)\n"       /* 25 */
    "  body     NOT_PLUG /x/\n"                           /* 26 */
    "endif\n"                                             /* 27 */
    "if perl_is_weird(1)\n"                               /* 28 */
    "  body     WEIRD    /x/\n"                           /* 29 */
    "endif\n"                                             /* 30 */
    "meta       META_EV  GOOD && EVAL_B\n"                /* 31 */
    "score      NOWHERE  2\n";                            /* 32 */

static void test_skipped_lines(void **state)
{
    struct errors errs = {0};
    char *path;
    struct ruleset *rs = load_text(*state, "skip.cf", skipped_cf, &path, &errs);

    dump_errors(&errs);
    assert_non_null(rs);
    assert_int_equal(errs.n, 0);
    assert_warning(rs, path, 2,
                   "eval:check_for_forged tests are not supported");
    assert_warning(rs, path, 3, "eval:check_stock_info");
    assert_warning(rs, path, 4, "loadplugin: not supported");
    assert_warning(rs, path, 5, "lang: not supported");
    assert_warning(rs, path, 6, "relay analysis");
    assert_warning(rs, path, 7, ":host is not supported");
    assert_warning(rs, path, 8, "block skipped");
    assert_warning(rs, path, 28, "condition not understood");
    assert_non_null(ruleset_find(rs, "GOOD"));
    assert_null(ruleset_find(rs, "IN_PLUG"));
    assert_null(ruleset_find(rs, "NESTED"));
    assert_non_null(ruleset_find(rs, "NO_PLUG"));
    assert_non_null(ruleset_find(rs, "NEW_SA"));
    assert_null(ruleset_find(rs, "FUTURE"));
    assert_null(ruleset_find(rs, "CAN_NOT"));
    assert_non_null(ruleset_find(rs, "NOT_PLUG"));
    assert_null(ruleset_find(rs, "WEIRD"));
    /* a meta on an eval test: that part counts 0, reported at the meta */
    assert_warning(rs, path, 31, "EVAL_B is not a rule here");
    assert_true(planned(rs, "META_EV"));
    /* each kind is summed up once */
    bool evals = false, scores = false;
    for (size_t i = 0; i < rs->nskips; i++) {
        if (strstr(rs->skips[i].kind, "eval")) {
            evals = true;
            assert_int_equal(rs->skips[i].count, 2);
            char first[300];
            snprintf(first, sizeof(first), "%s:2", path);
            assert_string_equal(rs->skips[i].first, first);
        }
        if (strstr(rs->skips[i].kind, "score for a rule not loaded"))
            scores = true;
    }
    assert_true(evals);
    assert_true(scores);
    ruleset_free(rs);
    free(path);
}

/* ---- bad lines ---- */

static void test_errors(void **state)
{
    struct errors errs = {0};
    char *path;
    struct ruleset *rs = load_text(*state, "bad.cf",
                                   "body OK /fine/\n"           /* 1 */
                                   "body BAD_RE /a(b/\n"        /* 2 */
                                   "body NO_DELIM abc\n"        /* 3 */
                                   "header NO_OP Subject /x/\n" /* 4 */
                                   "body BAD-NAME /x/\n"        /* 5 */
                                   "score OK lots\n"            /* 6 */
                                   "meta BAD_META (OK && \n"    /* 7 */
                                   "body BAD_MOD /x/q\n"        /* 8 */
                                   "tflags OK maxhits=0\n"      /* 9 */
                                   "endif\n"                    /* 10 */
                                   "include missing.cf\n"       /* 11 */
                                   "body NO_PATTERN\n"          /* 12 */
                                   "header WARDEN_SPF_FAIL Subject =~ /x/\n"
                                   "if (version >= 3)\n", /* 14 */
                                   &path, &errs);

    assert_null(rs);
    assert_error(&errs, path, 2, "body BAD_RE: bad regex at offset 3");
    assert_error(&errs, path, 3, "expected /regex/");
    assert_error(&errs, path, 4, "expected Field =~ /regex/");
    assert_error(&errs, path, 5, "is not a rule name");
    assert_error(&errs, path, 6, "\"lots\" is not a number");
    assert_error(&errs, path, 8, "not terminated");
    assert_error(&errs, path, 9, "bad maxhits=0");
    assert_error(&errs, path, 10, "endif without if");
    assert_error(&errs, path, 11, "missing.cf: No such file");
    assert_error(&errs, path, 12, "no pattern");
    assert_error(&errs, path, 13, "result of a Warden check");
    assert_error(&errs, path, 14, "without endif");
    errors_free(&errs);
    free(path);
}

static void test_meta_errors(void **state)
{
    struct errors errs = {0};
    char *path;
    struct ruleset *rs = load_text(*state, "meta.cf",
                                   "body A /a/\n"
                                   "meta SYNTAX (A && \n"    /* 2 */
                                   "meta LOOP1 LOOP2 || A\n" /* 3 */
                                   "meta LOOP2 LOOP1\n",     /* 4 */
                                   &path, &errs);

    assert_null(rs);
    assert_error(&errs, path, 2, "meta SYNTAX: expression ends too soon");
    /* the loop is reported at the meta where it is found */
    bool loop = false;
    for (size_t i = 0; i < errs.n; i++)
        loop |= strstr(errs.v[i], "(a loop)") != NULL;
    assert_true(loop);
    errors_free(&errs);
    free(path);
}

static void test_negative_needs_nice(void **state)
{
    struct errors errs = {0};
    char *path;
    struct ruleset *rs = load_text(*state, "n.cf",
                                   "body GOOD_SIGN /thanks/\n"
                                   "body NICE_SIGN /regards/\n"
                                   "tflags NICE_SIGN nice\n"
                                   "score NICE_SIGN -1\n"
                                   "score GOOD_SIGN -2\n", /* 5 */
                                   &path, &errs);

    assert_null(rs);
    assert_error(&errs, path, 5, "negative, but GOOD_SIGN has no");
    assert_int_equal(errs.n, 1);
    errors_free(&errs);
    free(path);
}

static void test_lenient(void **state)
{
    struct errors errs = {0};
    char *path = write_file(*state, "l.cf",
                            "body OK /fine/\nbody BAD_RE /a(b/\n"
                            "meta BAD_META (OK &&\n");
    struct ruleset *rs = ruleset_load(&path, 1, RULES_LENIENT, &errs);

    assert_non_null(rs);
    assert_int_equal(errs.n, 0);
    assert_warning(rs, path, 2, "bad regex");
    assert_warning(rs, path, 3, "meta BAD_META");
    assert_null(ruleset_find(rs, "BAD_RE"));
    assert_false(planned(rs, "OK") && ruleset_find(rs, "BAD_META") &&
                 find(rs, "BAD_META")->enabled);
    ruleset_free(rs);
    free(path);
}

/* ---- files ---- */

static void test_include_and_directory(void **state)
{
    struct tdir *t = *state;
    struct errors errs = {0};
    char *dir, *a, *b, *c, *inc;

    assert_true(asprintf(&dir, "%s/set", t->path) > 0);
    assert_int_equal(mkdir(dir, 0755), 0);
    a = write_file(t, "set/20_b.cf", "score RULE_A 4\n");
    b = write_file(t, "set/10_a.cf", "body RULE_A /a/\ninclude ../extra\n");
    c = write_file(t, "set/readme.txt", "not a rule file\n");
    inc = write_file(t, "extra", "body RULE_X /x/\n");
    struct ruleset *rs = ruleset_load(&dir, 1, 0, &errs);
    dump_errors(&errs);
    assert_non_null(rs);
    assert_int_equal(rs->nfiles, 3);
    /* 10_a.cf before 20_b.cf: the score of 20_b wins */
    assert_true(find(rs, "RULE_A")->score == 4);
    assert_non_null(ruleset_find(rs, "RULE_X"));
    ruleset_free(rs);

    /* an include loop is an error, not a hang */
    free(write_file(t, "loop.cf", "include loop.cf\n"));
    char *loop;
    assert_true(asprintf(&loop, "%s/loop.cf", t->path) > 0);
    rs = ruleset_load(&loop, 1, 0, &errs);
    assert_null(rs);
    assert_error(&errs, loop, 1, "include loop: ");
    errors_free(&errs);
    free(loop);
    free(dir);
    free(a);
    free(b);
    free(c);
    free(inc);
}

static void test_shipped_rules(void **state)
{
    const char *src = getenv("WARDEN_SOURCE_DIR");
    struct errors errs = {0};
    char *dir;

    if (!src)
        skip();
    assert_true(asprintf(&dir, "%s/rules", src) > 0);
    struct ruleset *rs = ruleset_load(&dir, 1, 0, &errs);
    dump_errors(&errs);
    assert_non_null(rs);
    /* Warden's own files use only what Warden supports */
    for (size_t i = 0; i < rs->warnings.n; i++)
        print_message("warning: %s\n", rs->warnings.v[i]);
    assert_int_equal(rs->warnings.n, 0);
    assert_true(find(rs, "GTUBE")->score >= 1000);
    ruleset_free(rs);
    free(dir);
}

/* ---- ReplaceTags ---- */

static const char replace_cf[] =
    "body FUZZ /<inter SP><post P2><A><B>x/i\n"       /* 1 */
    "header SUBJ Subject =~ /<A><B>/\n"               /* 2 */
    "body UNLISTED /<A>/\n"                           /* 3 */
    "body HTML /<font> <A>/\n"                        /* 4 */
    "body NESTED /<ALL>/\n"                           /* 5 */
    "body NO_INTER /<inter X><A><A>/\n"               /* 6 */
    "ifplugin Mail::SpamAssassin::Plugin::ReplaceTags\n"/* 7 */
    "replace_start <\n"                               /* 8 */
    "replace_end >\n"                                 /* 9 */
    "replace_tag A [a@]\n"                            /* 10 */
    "replace_tag B b|8\n"                             /* 11 */
    "replace_tag ALL (?:<A>|z)\n"                     /* 12 */
    "replace_inter SP \\s?\n"                         /* 13 */
    "replace_post P2 {1,2}\n"                         /* 14 */
    "replace_rules FUZZ SUBJ\n"                       /* 15 */
    "replace_rules HTML NESTED NO_INTER\n"            /* 16 */
    "endif\n";

static void test_replace_tags(void **state)
{
    struct errors errs = {0};
    char *path;
    struct ruleset *rs = load_text(*state, "tags.cf", replace_cf, &path, &errs);

    dump_errors(&errs);
    assert_non_null(rs);
    /* post after each tag, inter between adjacent ones; a tag is a group,
     * so "b|8" stays one alternative */
    assert_string_equal(rx_pattern(find(rs, "FUZZ")->rx),
                        "(?:[a@]){1,2}\\s?(?:b|8){1,2}x");
    assert_int_equal(rx_count(find(rs, "FUZZ")->rx, "@a 8x", 5, 1), 1);
    assert_int_equal(rx_count(find(rs, "FUZZ")->rx, "a8", 2, 1), 0);
    assert_string_equal(rx_pattern(find(rs, "SUBJ")->rx), "(?:[a@])(?:b|8)");
    /* only the rules replace_rules names are rewritten */
    assert_string_equal(rx_pattern(find(rs, "UNLISTED")->rx), "<A>");
    /* a name that is not a tag stays as written */
    assert_string_equal(rx_pattern(find(rs, "HTML")->rx), "<font> (?:[a@])");
    /* tags in tag values */
    assert_string_equal(rx_pattern(find(rs, "NESTED")->rx),
                        "(?:(?:(?:[a@])|z))");
    /* an undefined inter adds nothing, as in SpamAssassin, with a warning */
    assert_string_equal(rx_pattern(find(rs, "NO_INTER")->rx),
                        "(?:[a@])(?:[a@])");
    assert_warning(rs, path, 6, "replace_inter X is not defined");
    ruleset_free(rs);
    free(path);

    /* errors carry the rule's file:line */
    rs = load_text(*state, "badtags.cf",
                   "body LOOP /<L>/\n"                 /* 1 */
                   "body TAGS /<A><A>/\n"              /* 2 */
                   "replace_tag L x<L>\n"              /* 3 */
                   "replace_tag A a\n"                 /* 4 */
                   "replace_tag B-AD a\n"              /* 5 */
                   "replace_start\n"                   /* 6 */
                   "replace_rules LOOP TAGS\n",        /* 7 */
                   &path, &errs);
    assert_null(rs);
    assert_error(&errs, path, 1, "nested more than");
    assert_error(&errs, path, 5, "bad name");
    assert_error(&errs, path, 6, "expected one delimiter");
    errors_free(&errs);
    free(path);
}

/* A tagged pattern over PCRE2's cap on a compiled pattern (64 KB; Perl has
 * none) is skipped with a warning, as SpamAssassin's biggest ones must be;
 * any other regex error stays an error. */
static void test_replace_tags_too_large(void **state)
{
    struct errors errs = {0};
    char *path;
    /* 4^7 copies of "abcd" (64 Ki characters) */
    struct ruleset *rs = load_text(*state, "huge.cf",
                                   "body HUGE /<T7>/\n"             /* 1 */
                                   "body SMALL /<T0>/\n"            /* 2 */
                                   "replace_tag T0 abcd\n"
                                   "replace_tag T1 <T0><T0><T0><T0>\n"
                                   "replace_tag T2 <T1><T1><T1><T1>\n"
                                   "replace_tag T3 <T2><T2><T2><T2>\n"
                                   "replace_tag T4 <T3><T3><T3><T3>\n"
                                   "replace_tag T5 <T4><T4><T4><T4>\n"
                                   "replace_tag T6 <T5><T5><T5><T5>\n"
                                   "replace_tag T7 <T6><T6><T6><T6>\n"
                                   "replace_rules HUGE SMALL\n",
                                   &path, &errs);

    dump_errors(&errs);
    assert_non_null(rs);
    assert_warning(rs, path, 1, "HUGE (with its tags)");
    assert_false(find(rs, "HUGE")->defined);
    assert_false(planned(rs, "HUGE"));
    assert_string_equal(rx_pattern(find(rs, "SMALL")->rx), "(?:abcd)");
    ruleset_free(rs);
    free(path);

    rs = load_text(*state, "badre.cf",
                   "body BAD /<T>/\n"
                   "replace_tag T (ab\n"
                   "replace_rules BAD\n",
                   &path, &errs);
    assert_null(rs);
    assert_error(&errs, path, 1, "BAD (with its tags): bad regex");
    errors_free(&errs);
    free(path);
}

/* SpamAssassin's own rules, when installed: they load, nothing crashes. */
static void test_spamassassin_rules(void **state)
{
    char *dir = "/usr/share/spamassassin";
    struct errors errs = {0};

    if (access("/usr/share/spamassassin/72_active.cf", R_OK) != 0)
        skip();
    struct ruleset *rs = ruleset_load(&dir, 1, RULES_LENIENT, &errs);
    dump_errors(&errs);
    assert_non_null(rs);
    assert_true(rs->nplan[RULE_HEADER] > 100);
    assert_true(rs->nplan[RULE_BODY] > 100);
    assert_true(rs->nskips > 5);
    /* 25_replace.cf's rules are written with ReplaceTags */
    const struct rule *r = ruleset_find(rs, "FUZZY_BILLION");
    if (r && r->rx) {
        assert_null(strstr(rx_pattern(r->rx), "<B>"));
        assert_int_equal(rx_count(r->rx, "b1ll1on", 7, 1), 1);
        assert_int_equal(rx_count(r->rx, "billion", 7, 1), 0);
    }
    ruleset_free(rs);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_good_lines),
        T(test_meta_order),
        T(test_unused_rules_not_planned),
        T(test_redefinition),
        T(test_skipped_lines),
        T(test_errors),
        T(test_meta_errors),
        T(test_negative_needs_nice),
        T(test_lenient),
        T(test_replace_tags),
        T(test_replace_tags_too_large),
        T(test_include_and_directory),
        T(test_shipped_rules),
        T(test_spamassassin_rules),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
