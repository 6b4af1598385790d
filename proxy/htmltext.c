/*
 * htmltext: a tolerant HTML tokenizer that keeps the visible text and the
 * links (see the header).
 */
#define _GNU_SOURCE /* memmem, qsort_r */
#include "htmltext.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "strv.h"

#define TAG_NAME_MAX 16
#define MAX_ATTRS 32
#define URL_MAX 4096

struct attr {
    const char *name, *value;
    size_t nlen, vlen;
};

struct tag {
    char name[TAG_NAME_MAX + 1];
    bool closing;
    struct attr attrs[MAX_ATTRS];
    size_t nattrs;
};

struct html {
    struct buf *text;
    struct strv *links;
    struct buf base; /* <base href>, for relative links */
    bool space;      /* a blank is pending (collapsed whitespace) */
    int brk;         /* line breaks pending */
    int failed;
};

static size_t parse_tag(const char *s, size_t len, struct tag *t);
static void handle_tag(struct html *h, const struct tag *t);
static size_t skip_raw_text(const char *s, size_t len, const char *name);
static size_t entity(const char *s, size_t len, struct buf *out);

/* ---- output ---- */

int utf8_put(struct buf *b, unsigned long cp)
{
    char u[4];
    size_t n;

    if (cp == 0 || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
        return 0;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xc0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xe0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        u[0] = (char)(0xf0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    return buf_add(b, u, n);
}

static bool at_line_start(const struct buf *b)
{
    return b->n == 0 || b->p[b->n - 1] == '\n';
}

/* Breaks wait for the next text: none at the start or the end. */
static void put_text(struct html *h, const char *s, size_t n)
{
    if (h->text->n > 0 && h->brk) {
        int have = 0;
        for (size_t i = h->text->n; i > 0 && h->text->p[i - 1] == '\n'; i--)
            have++;
        for (; have < h->brk; have++)
            h->failed |= buf_addc(h->text, '\n');
    } else if (h->space && !at_line_start(h->text)) {
        h->failed |= buf_addc(h->text, ' ');
    }
    h->brk = 0;
    h->space = false;
    h->failed |= buf_add(h->text, s, n);
}

/* A line break (1), or a paragraph break (2). */
static void put_break(struct html *h, int lines)
{
    if (lines > h->brk)
        h->brk = lines;
}

/* ---- the tokenizer ---- */

int html_to_text(const char *s, size_t len, struct buf *text,
                 struct strv *links)
{
    struct html h = {text, links, {0}, false, 0, 0};
    size_t i = 0;

    while (i < len && !h.failed) {
        char c = s[i];
        if (c == '<' && i + 3 < len && memcmp(s + i, "<!--", 4) == 0) {
            const char *end = memmem(s + i + 4, len - i - 4, "-->", 3);
            i = end ? (size_t)(end - s) + 3 : len;
        } else if (c == '<' && i + 1 < len &&
                   (s[i + 1] == '!' || s[i + 1] == '?')) {
            const char *end = memchr(s + i, '>', len - i);
            i = end ? (size_t)(end - s) + 1 : len;
        } else if (c == '<' && i + 1 < len &&
                   (isalpha((unsigned char)s[i + 1]) || s[i + 1] == '/')) {
            struct tag t;
            size_t n = parse_tag(s + i, len - i, &t);
            if (n == 0) {
                put_text(&h, "<", 1);
                i++;
                continue;
            }
            i += n;
            handle_tag(&h, &t);
            if (!t.closing &&
                (strcmp(t.name, "script") == 0 || strcmp(t.name, "style") == 0))
                i += skip_raw_text(s + i, len - i, t.name);
        } else if (c == '&') {
            struct buf e = {0};
            size_t n = entity(s + i, len - i, &e);
            if (n && e.n == 1 && e.p[0] == ' ')
                h.space = true; /* &nbsp; */
            else if (n && e.n)
                put_text(&h, e.p, e.n);
            else if (!n)
                put_text(&h, "&", 1);
            i += n ? n : 1;
            buf_free(&e);
        } else if (isspace((unsigned char)c)) {
            h.space = true;
            i++;
        } else {
            size_t n = 1;
            while (i + n < len && !strchr("<&\t\n\v\f\r ", s[i + n]))
                n++;
            put_text(&h, s + i, n);
            i += n;
        }
    }
    buf_free(&h.base);
    return h.failed ? -1 : 0;
}

/* "<name attr=value ...>": returns the bytes taken (0: not a tag). */
static size_t parse_tag(const char *s, size_t len, struct tag *t)
{
    size_t i = 1, n = 0;

    memset(t, 0, sizeof(*t));
    if (i < len && s[i] == '/') {
        t->closing = true;
        i++;
    }
    while (i < len && (isalnum((unsigned char)s[i]) || s[i] == ':')) {
        if (n < TAG_NAME_MAX)
            t->name[n++] = (char)tolower((unsigned char)s[i]);
        i++;
    }
    if (n == 0)
        return 0;
    while (i < len && s[i] != '>') {
        if (isspace((unsigned char)s[i]) || s[i] == '/') {
            i++;
            continue;
        }
        struct attr a = {s + i, NULL, 0, 0};
        while (i < len && !isspace((unsigned char)s[i]) && !strchr("=>/", s[i]))
            i++, a.nlen++;
        if (a.nlen == 0) { /* a stray "=" */
            i++;
            continue;
        }
        while (i < len && isspace((unsigned char)s[i]))
            i++;
        if (i < len && s[i] == '=') {
            i++;
            while (i < len && isspace((unsigned char)s[i]))
                i++;
            char q = i < len && (s[i] == '"' || s[i] == '\'') ? s[i++] : 0;
            a.value = s + i;
            while (
                i < len &&
                (q ? s[i] != q : !isspace((unsigned char)s[i]) && s[i] != '>'))
                i++, a.vlen++;
            if (q && i < len)
                i++;
        }
        if (t->nattrs < MAX_ATTRS)
            t->attrs[t->nattrs++] = a;
    }
    return i < len ? i + 1 : len;
}

/* Past the matching "</name ...>" of a script or style element. */
static size_t skip_raw_text(const char *s, size_t len, const char *name)
{
    size_t nl = strlen(name);

    for (size_t i = 0; i + 2 + nl <= len; i++) {
        if (s[i] == '<' && s[i + 1] == '/' &&
            strncasecmp(s + i + 2, name, nl) == 0) {
            const char *end = memchr(s + i, '>', len - i);
            return end ? (size_t)(end - s) + 1 : len;
        }
    }
    return len;
}

/* ---- tags ---- */

static bool name_in(const char *name, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(name, *list) == 0)
            return true;
    return false;
}

static bool is_scheme(const char *s, size_t n)
{
    size_t i = 0;

    while (i < n && (isalnum((unsigned char)s[i]) || strchr("+-.", s[i])))
        i++;
    return i > 0 && i < n && s[i] == ':' && isalpha((unsigned char)s[0]);
}

/* u relative to the base: "/x" from its origin, "x" from its directory. */
static void resolve(struct html *h, const char *u, size_t n, struct buf *out)
{
    const char *base = h->base.p, *host, *path;
    size_t bn = h->base.n, origin, dir;

    if (!base || !(host = strstr(base, "://")))
        return;
    path = memchr(host + 3, '/', bn - (size_t)(host + 3 - base));
    origin = path ? (size_t)(path - base) : bn;
    if (u[0] == '/') {
        h->failed |= buf_add(out, base, origin);
    } else if (path) {
        for (dir = bn; dir > origin && base[dir - 1] != '/'; dir--)
            ;
        h->failed |= buf_add(out, base, dir);
    } else {
        h->failed |= buf_add(out, base, bn) | buf_addc(out, '/');
    }
    h->failed |= buf_add(out, u, n);
}

/* A link as the reader's client would follow it; relative links count
 * only with a <base>. */
static void add_link(struct html *h, const struct attr *a)
{
    struct buf v = {0}, url = {0};
    size_t i = 0, start, end;

    if (!h->links || a->vlen == 0 || a->vlen > URL_MAX)
        return;
    while (i < a->vlen) { /* values hold entities: "?a=1&amp;b=2" */
        size_t n =
            a->value[i] == '&' ? entity(a->value + i, a->vlen - i, &v) : 0;
        if (!n) {
            h->failed |= buf_addc(&v, a->value[i]);
            n = 1;
        }
        i += n;
    }
    for (start = 0; start < v.n && isspace((unsigned char)v.p[start]); start++)
        ;
    for (end = v.n; end > start && isspace((unsigned char)v.p[end - 1]); end--)
        ;
    /* a value of entities that decode to nothing leaves v empty */
    const char *u = v.p ? v.p + start : "";
    size_t n = end - start;
    if (n == 0 || u[0] == '#') {
        /* nothing: an anchor on this page */
    } else if (is_scheme(u, n)) {
        h->failed |= strv_add_unique(h->links, u, n);
    } else if (n > 2 && u[0] == '/' && u[1] == '/') {
        h->failed |= buf_add(&url, "http:", 5) | buf_add(&url, u, n);
    } else if (n > 4 && strncasecmp(u, "www.", 4) == 0) {
        h->failed |= buf_add(&url, "http://", 7) | buf_add(&url, u, n);
    } else {
        resolve(h, u, n, &url);
    }
    if (url.n)
        h->failed |= strv_add_unique(h->links, url.p, url.n);
    buf_free(&url);
    buf_free(&v);
}

static void set_base(struct html *h, const struct attr *a)
{
    if (!is_scheme(a->value, a->vlen))
        return;
    h->base.n = 0;
    h->failed |= buf_add(&h->base, a->value, a->vlen);
}

static void handle_tag(struct html *h, const struct tag *t)
{
    static const char *const lines[] = {"br", "div",    "li",    "tr", "dt",
                                        "dd", "option", "title", NULL};
    static const char *const paragraphs[] = {
        "p",  "h1", "h2",         "h3",  "h4",   "h5",    "h6",     "hr",
        "ul", "ol", "blockquote", "pre", "form", "table", "center", NULL};
    static const char *const url_attrs[] = {"href",       "src",  "action",
                                            "background", "data", NULL};

    if (name_in(t->name, paragraphs))
        put_break(h, 2);
    else if (name_in(t->name, lines))
        put_break(h, 1);
    else if (strcmp(t->name, "td") == 0 || strcmp(t->name, "th") == 0)
        h->space = true;
    if (t->closing)
        return;
    for (size_t i = 0; i < t->nattrs; i++) {
        const struct attr *a = &t->attrs[i];
        char name[16];
        if (a->nlen >= sizeof(name) || !a->value)
            continue;
        for (size_t k = 0; k < a->nlen; k++)
            name[k] = (char)tolower((unsigned char)a->name[k]);
        name[a->nlen] = '\0';
        if (strcmp(t->name, "base") == 0 && strcmp(name, "href") == 0)
            set_base(h, a);
        else if (name_in(name, url_attrs))
            add_link(h, a);
    }
}

/* ---- character references ---- */

static const struct {
    const char *name;
    unsigned cp;
} entities[] = {
    {"amp", '&'},      {"lt", '<'},        {"gt", '>'},       {"quot", '"'},
    {"apos", '\''},    {"nbsp", ' '},      {"copy", 0xa9},    {"reg", 0xae},
    {"trade", 0x2122}, {"hellip", 0x2026}, {"mdash", 0x2014}, {"ndash", 0x2013},
    {"lsquo", 0x2018}, {"rsquo", 0x2019},  {"ldquo", 0x201c}, {"rdquo", 0x201d},
    {"bull", 0x2022},  {"euro", 0x20ac},   {"pound", 0xa3},   {"yen", 0xa5},
    {"cent", 0xa2},    {"middot", 0xb7},   {"laquo", 0xab},   {"raquo", 0xbb},
    {"eacute", 0xe9},  {"egrave", 0xe8},   {"aacute", 0xe1},  {"agrave", 0xe0},
    {"iacute", 0xed},  {"oacute", 0xf3},   {"uacute", 0xfa},  {"ntilde", 0xf1},
    {"ccedil", 0xe7},  {"auml", 0xe4},     {"ouml", 0xf6},    {"uuml", 0xfc},
    {"szlig", 0xdf},   {"Auml", 0xc4},     {"Ouml", 0xd6},    {"Uuml", 0xdc},
    {"iexcl", 0xa1},   {"iquest", 0xbf},   {"deg", 0xb0},     {"times", 0xd7},
    {"shy", 0xad},     {"zwnj", 0x200c},   {"zwj", 0x200d},
};

/* "&name;", "&#123;", "&#x7b;": the bytes taken (0: not a reference). */
static size_t entity(const char *s, size_t len, struct buf *out)
{
    size_t i = 1;

    if (len > 2 && s[1] == '#') {
        bool hex = len > 3 && (s[2] == 'x' || s[2] == 'X');
        unsigned long cp = 0;
        size_t digits = 0;
        for (i = hex ? 3 : 2; i < len && digits < 8; i++, digits++) {
            int d = isdigit((unsigned char)s[i]) ? s[i] - '0'
                    : hex && isxdigit((unsigned char)s[i])
                        ? tolower((unsigned char)s[i]) - 'a' + 10
                        : -1;
            if (d < 0)
                break;
            cp = cp * (hex ? 16 : 10) + (unsigned long)d;
        }
        if (digits == 0)
            return 0;
        if (i < len && s[i] == ';')
            i++;
        if (cp == 0xa0 || cp == 0x20)
            return buf_addc(out, ' ') == 0 ? i : 0;
        return utf8_put(out, cp) == 0 ? i : 0;
    }
    while (i < len && i < 10 && isalnum((unsigned char)s[i]))
        i++;
    for (size_t k = 0; k < sizeof(entities) / sizeof(entities[0]); k++) {
        size_t n = strlen(entities[k].name);
        if (n == i - 1 && memcmp(s + 1, entities[k].name, n) == 0) {
            if (i < len && s[i] == ';')
                i++;
            return utf8_put(out, entities[k].cp) == 0 ? i : 0;
        }
    }
    return 0;
}
