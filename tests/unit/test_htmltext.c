/*
 * Unit tests for htmltext: visible text of HTML (tags, comments, script
 * and style dropped; entities decoded; block elements as line and
 * paragraph breaks; whitespace collapsed), the links it holds (href, src,
 * action, background; <base> for relative ones; entities in URLs), and
 * malformed input that must not fail.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "htmltext.h"
#include "strv.h"

struct out {
    struct buf text;
    struct strv links;
};

static struct out *render(const char *html)
{
    struct out *o = calloc(1, sizeof(*o));

    assert_int_equal(html_to_text(html, strlen(html), &o->text, &o->links), 0);
    if (!o->text.p)
        buf_add(&o->text, "", 0);
    return o;
}

static void out_free(struct out *o)
{
    buf_free(&o->text);
    strv_free(&o->links);
    free(o);
}

static void assert_text(const char *html, const char *want)
{
    struct out *o = render(html);

    assert_string_equal(o->text.p, want);
    out_free(o);
}

static void test_text(void **state)
{
    assert_text("<p>Hello <b>big</b>   world</p>", "Hello big world");
    assert_text("a<br>b<br/>c", "a\nb\nc");
    assert_text("<p>one</p><p>two</p>", "one\n\ntwo");
    assert_text("<div>x</div><div>y</div>", "x\ny");
    assert_text("<td>a</td><td>b</td>", "a b");
    assert_text("x<!-- hidden -->y", "xy");
    assert_text("x<!-- never closed", "x");
    assert_text("<script>var a = '<p>no</p>';</script>shown", "shown");
    assert_text("<STYLE type=text/css>p {}</STYLE>shown", "shown");
    assert_text("<!DOCTYPE html><?xml x?>t", "t");
}

static void test_entities(void **state)
{
    assert_text("a &amp; b &lt;c&gt; &quot;d&quot;", "a & b <c> \"d\"");
    assert_text("caf&eacute; &#233; &#xE9; &#xe9", "caf\xc3\xa9 \xc3\xa9 "
                                                   "\xc3\xa9 \xc3\xa9");
    assert_text("a&nbsp;b", "a b");
    assert_text("&#8364;100 &euro;", "\xe2\x82\xac"
                                     "100 \xe2\x82\xac");
    /* not references: kept as written */
    assert_text("AT&T &unknown; & x", "AT&T &unknown; & x");
    assert_text("&#0;&#xD800;ok", "ok");
    /* entities that spell words, a spammer's trick, are read */
    assert_text("&#86;&#105;&#97;&#103;&#114;&#97;", "Viagra");
}

static void test_links(void **state)
{
    struct out *o = render("<a href=\"http://a.example/x?y=1&amp;z=2\">a</a>"
                           "<A HREF='https://b.example/'>b</a>"
                           "<img src=http://c.example/i.gif>"
                           "<form action=\"http://d.example/post\"></form>"
                           "<td background=\"http://e.example/bg.png\">"
                           "<a href=\"#top\">top</a>"
                           "<a href=\"//f.example/p\">f</a>"
                           "<a href=\"www.g.example\">g</a>"
                           "<a href=\"relative.html\">no base yet</a>"
                           "<a href=\"  http://h.example/  \">h</a>");

    assert_int_equal(o->links.n, 8);
    assert_string_equal(o->links.v[0], "http://a.example/x?y=1&z=2");
    assert_string_equal(o->links.v[1], "https://b.example/");
    assert_string_equal(o->links.v[2], "http://c.example/i.gif");
    assert_string_equal(o->links.v[3], "http://d.example/post");
    assert_string_equal(o->links.v[4], "http://e.example/bg.png");
    assert_string_equal(o->links.v[5], "http://f.example/p");
    assert_string_equal(o->links.v[6], "http://www.g.example");
    assert_string_equal(o->links.v[7], "http://h.example/");
    out_free(o);

    o = render("<base href=\"http://base.example/dir/page.html\">"
               "<a href=\"other.html\">x</a><a href=\"/root\">y</a>");
    assert_int_equal(o->links.n, 2);
    assert_string_equal(o->links.v[0], "http://base.example/dir/other.html");
    assert_string_equal(o->links.v[1], "http://base.example/root");
    out_free(o);
}

static void test_malformed(void **state)
{
    static const char *const inputs[] = {
        "<",
        "<a",
        "<a href=",
        "<a href=\"",
        "<a href='x",
        "&",
        "&#",
        "&#x",
        "<<<>>>",
        "</",
        "<script>",
        "<style>never",
        "<1p>text",
        "< p>",
        "<a =x>",
        "<p/>",
        "&#99999999999;",
    };
    for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++)
        out_free(render(inputs[i]));
    assert_text("1 < 2 > 0", "1 < 2 > 0");
    assert_text("<1p>text", "<1p>text");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text),
        cmocka_unit_test(test_entities),
        cmocka_unit_test(test_links),
        cmocka_unit_test(test_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
