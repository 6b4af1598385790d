/*
 * spf_syntax: RFC 7208's record grammar, term by term (see the header).
 *
 * The grammar, in short (section 12; names and letters are case-blind):
 *   record     = "v=spf1" *( 1*SP ( directive / modifier ) ) *SP
 *   directive  = [ "+" / "-" / "?" / "~" ] mechanism
 *   mechanism  = all / include:D / a[:D][cidr] / mx[:D][cidr] / ptr[:D]
 *              / ip4:N[/0-32] / ip6:N[/0-128] / exists:D
 *   modifier   = redirect=D / exp=D / name=macro-string
 *   D          = macro-string ending in "." toplabel ["."] or in a macro
 *   macro      = %{letter [digits] [r] *delimiter} / %% / %_ / %-
 * Letters c, r and t are for explanation text only (7.1), not in D.
 */
#include "spf_syntax.h"

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

enum mech { M_ALL, M_INCLUDE, M_A, M_MX, M_PTR, M_IP4, M_IP6, M_EXISTS };

static const struct {
    const char *name;
    enum mech m;
} mechs[] = {
    {"all", M_ALL}, {"include", M_INCLUDE}, {"a", M_A},     {"mx", M_MX},
    {"ptr", M_PTR}, {"ip4", M_IP4},         {"ip6", M_IP6}, {"exists", M_EXISTS},
};

struct out {
    char *buf;
    size_t len, cap;
    bool full;
};

/* What a record holds besides its mechanisms. */
struct record {
    const char *exp, *redirect;   /* the whole modifier term, or NULL */
    size_t exp_len, redirect_len;
    bool has_all;
};

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static void emit(struct out *o, const char *s, size_t n)
{
    if (o->full || o->len + n + 1 > o->cap) {
        o->full = true;
        return;
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
    o->buf[o->len] = '\0';
}

/* ---- macro strings and domain specs ---- */

/* Length of the macro-expand at s ('%'), or 0 when it is not one. */
static size_t macro_expand(const char *s, size_t n, bool domain)
{
    size_t i = 2, digits;
    unsigned v = 0;
    char c;

    if (n >= 2 && (s[1] == '%' || s[1] == '_' || s[1] == '-'))
        return 2;
    if (n < 4 || s[1] != '{')
        return 0;
    c = (char)(s[i] | 0x20);
    if (!is_alpha(s[i]) || !strchr("slodiphcrtv", c) ||
        (domain && strchr("crt", c)))
        return 0;
    for (i++, digits = 0; i < n && is_digit(s[i]) && digits < 4; i++, digits++)
        v = v * 10 + (unsigned)(s[i] - '0');
    if (digits && (v == 0 || v > 128)) /* 7.3: 1 to 128 parts */
        return 0;
    if (i < n && (s[i] == 'r' || s[i] == 'R'))
        i++;
    while (i < n && s[i] && strchr(".-+,/_=", s[i]))
        i++;
    return i < n && s[i] == '}' ? i + 1 : 0;
}

/* *tail: where the text after the last macro starts. */
static bool macro_string(const char *s, size_t n, bool domain, size_t *tail)
{
    *tail = 0;
    for (size_t i = 0; i < n;) {
        if (s[i] == '%') {
            size_t k = macro_expand(s + i, n - i, domain);
            if (!k)
                return false;
            i += k;
            *tail = i;
        } else if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e) {
            return false;
        } else {
            i++;
        }
    }
    return true;
}

/* toplabel = alphanumerics with a letter, or with inner hyphens. */
static bool toplabel(const char *s, size_t n)
{
    bool alpha = false, hyphen = false;

    if (n == 0 || s[0] == '-' || s[n - 1] == '-')
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '-')
            hyphen = true;
        else if (is_alpha(s[i]))
            alpha = true;
        else if (!is_digit(s[i]))
            return false;
    }
    return alpha || hyphen;
}

static bool domain_spec(const char *s, size_t n)
{
    size_t tail, end;
    const char *dot;

    if (n == 0 || !macro_string(s, n, true, &tail))
        return false;
    if (tail == n)
        return true; /* ends in a macro */
    end = n;
    if (s[end - 1] == '.')
        end--;
    dot = NULL;
    for (size_t i = tail; i < end; i++)
        if (s[i] == '.')
            dot = s + i;
    return dot && toplabel(dot + 1, (size_t)(s + end - dot - 1));
}

/* ---- networks ---- */

/* "/N" exactly (no leading zero), N <= max; false if malformed. */
static bool cidr_value(const char *s, size_t n, unsigned max, unsigned *v)
{
    *v = 0;
    if (n < 2 || n > 4 || s[0] != '/' || (s[1] == '0' && n > 2))
        return false;
    for (size_t i = 1; i < n; i++) {
        if (!is_digit(s[i]))
            return false;
        *v = *v * 10 + (unsigned)(s[i] - '0');
    }
    return *v <= max;
}

/* Length of a trailing "/digits" of s[0..n), 0 if none. */
static size_t trailing_cidr(const char *s, size_t n)
{
    size_t i = n;

    while (i > 0 && is_digit(s[i - 1]))
        i--;
    return i < n && i > 0 && s[i - 1] == '/' ? n - i + 1 : 0;
}

/* The parts of a and mx arguments: [":" domain-spec] ["/" v4] ["//" v6]. */
struct dual {
    const char *domain;     /* after the ':', or NULL */
    size_t domain_len;
    int v4, v6;             /* -1: absent */
};

static bool a_or_mx_args(const char *s, size_t n, struct dual *d)
{
    size_t c;
    unsigned v;

    d->domain = NULL;
    d->domain_len = 0;
    d->v4 = d->v6 = -1;
    c = trailing_cidr(s, n);
    if (c && c < n && s[n - c - 1] == '/') { /* "//N": the IPv6 length */
        if (!cidr_value(s + n - c, c, 128, &v))
            return false;
        d->v6 = (int)v;
        n -= c + 1;
    }
    c = trailing_cidr(s, n);
    if (c && !(c < n && s[n - c - 1] == '/')) {
        if (!cidr_value(s + n - c, c, 32, &v))
            return false;
        d->v4 = (int)v;
        n -= c;
    }
    if (n == 0)
        return true;
    d->domain = s + 1;
    d->domain_len = n - 1;
    return s[0] == ':' && domain_spec(s + 1, n - 1);
}

/*
 * libspf2 refuses a length of 0 (it means "none given" inside it). Only
 * the client's family's length matters, so the other one is dropped; and
 * for an IPv4 client "a:D/0" (does D have any A record?) is "exists:D".
 * Returns false when the /0 cannot be expressed (mx/0, and a//0 for an
 * IPv6 client): the term then goes as written, and libspf2 says permerror.
 */
static bool emit_dual_zero(struct out *o, char qual, bool is_a,
                           const struct dual *d, int family)
{
    char num[8];
    int len = family == AF_INET ? d->v4 : d->v6;

    if (!family || (d->v4 != 0 && d->v6 != 0))
        return false;
    if (len == 0 && !(is_a && family == AF_INET))
        return false;
    emit(o, " ", 1);
    emit(o, &qual, qual ? 1 : 0);
    if (len == 0) { /* a/0, IPv4 */
        emit(o, "exists:", 7);
        if (d->domain)
            emit(o, d->domain, d->domain_len);
        else
            emit(o, "%{d}", 4);
        return true;
    }
    emit(o, is_a ? "a" : "mx", is_a ? 1 : 2);
    if (d->domain) {
        emit(o, ":", 1);
        emit(o, d->domain, d->domain_len);
    }
    if (len > 0) {
        int k = snprintf(num, sizeof(num), family == AF_INET ? "/%d" : "//%d",
                         len);
        emit(o, num, (size_t)k);
    }
    return true;
}

/* ip4:/ip6: network [/len]; *zero: the length is /0. */
static bool network_args(const char *s, size_t n, int family, bool *zero)
{
    char addr[64];
    unsigned char bin[16];
    const char *sl;
    size_t slash;
    unsigned v = 1;

    if (n < 2 || s[0] != ':')
        return false;
    s++, n--;
    sl = memchr(s, '/', n);
    slash = sl ? (size_t)(sl - s) : n;
    if (slash == 0 || slash >= sizeof(addr))
        return false;
    memcpy(addr, s, slash);
    addr[slash] = '\0';
    if (inet_pton(family, addr, bin) != 1)
        return false;
    if (slash < n &&
        !cidr_value(s + slash, n - slash, family == AF_INET ? 32 : 128, &v))
        return false;
    *zero = slash < n && v == 0;
    return true;
}

/* ---- terms ---- */

/* "ip4:X/0" as the two halves libspf2 accepts (it refuses /0). */
static void emit_all_of(struct out *o, char qual, int family)
{
    char q[2] = {qual, '\0'};
    const char *halves = family == AF_INET
                             ? "ip4:0.0.0.0/1 %sip4:128.0.0.0/1"
                             : "ip6:::/1 %sip6:8000::/1";
    const char *mid = strstr(halves, "%s");

    emit(o, " ", 1);
    emit(o, q, qual ? 1 : 0);
    emit(o, halves, (size_t)(mid - halves));
    emit(o, q, qual ? 1 : 0);
    emit(o, mid + 2, strlen(mid + 2));
}

static bool directive(const char *t, size_t n, int family, struct record *r,
                      struct out *o, const char **why)
{
    struct dual dual;
    char qual = 0;
    const char *args;
    size_t name, i, nargs;
    bool zero = false, ok;

    if (n && t[0] && strchr("+-?~", t[0])) {
        qual = t[0];
        t++, n--;
    }
    for (name = 0; name < n && t[name] != ':' && t[name] != '/'; name++)
        ;
    for (i = 0; i < sizeof(mechs) / sizeof(mechs[0]); i++)
        if (strlen(mechs[i].name) == name &&
            strncasecmp(mechs[i].name, t, name) == 0)
            break;
    if (i == sizeof(mechs) / sizeof(mechs[0])) {
        *why = "unknown mechanism in SPF record";
        return false;
    }
    args = t + name;
    nargs = n - name;
    switch (mechs[i].m) {
    case M_ALL:
        ok = nargs == 0;
        r->has_all = true;
        break;
    case M_INCLUDE:
    case M_EXISTS:
        ok = nargs > 1 && args[0] == ':' && domain_spec(args + 1, nargs - 1);
        break;
    case M_A:
    case M_MX:
        ok = a_or_mx_args(args, nargs, &dual);
        if (ok && emit_dual_zero(o, qual, mechs[i].m == M_A, &dual, family))
            return true;
        break;
    case M_PTR:
        ok = nargs == 0 ||
             (args[0] == ':' && domain_spec(args + 1, nargs - 1));
        break;
    case M_IP4:
    case M_IP6:
        ok = network_args(args, nargs,
                          mechs[i].m == M_IP4 ? AF_INET : AF_INET6, &zero);
        break;
    default:
        ok = false;
    }
    if (!ok) {
        *why = "malformed mechanism in SPF record";
        return false;
    }
    if (zero) {
        emit_all_of(o, qual, mechs[i].m == M_IP4 ? AF_INET : AF_INET6);
        return true;
    }
    emit(o, " ", 1);
    emit(o, t - (qual ? 1 : 0), n + (qual ? 1 : 0));
    return true;
}

static bool modifier(const char *t, size_t n, size_t eq, struct record *r,
                     const char **why)
{
    const char *v = t + eq + 1;
    size_t vn = n - eq - 1, tail;
    bool redirect = eq == 8 && strncasecmp(t, "redirect", 8) == 0;
    bool exp = eq == 3 && strncasecmp(t, "exp", 3) == 0;

    if (!redirect && !exp) { /* unknown: ignored, but it must parse */
        if (macro_string(v, vn, false, &tail))
            return true;
        *why = "malformed modifier in SPF record";
        return false;
    }
    if ((redirect && r->redirect) || (exp && r->exp)) {
        *why = "modifier given twice in SPF record";
        return false;
    }
    if (!domain_spec(v, vn)) {
        *why = "malformed modifier in SPF record";
        return false;
    }
    if (redirect) {
        r->redirect = t;
        r->redirect_len = n;
    } else {
        r->exp = t;
        r->exp_len = n;
    }
    return true;
}

/* name "=" ...: a modifier; the name is a letter, then [A-Za-z0-9-_.]. */
static size_t modifier_name(const char *t, size_t n)
{
    size_t i = 0;

    if (n == 0 || !is_alpha(t[0]))
        return 0;
    while (i < n && (is_alpha(t[i]) || is_digit(t[i]) || t[i] == '-' ||
                     t[i] == '_' || t[i] == '.'))
        i++;
    return i < n && t[i] == '=' ? i : 0;
}

int spf_record_check(const char *rec, int family, char *buf, size_t buflen,
                     const char **why)
{
    struct out o = {.buf = buf, .cap = buflen};
    struct record r = {0};
    const char *p = rec + 6;

    if (strncasecmp(rec, "v=spf1", 6) != 0 || (*p && *p != ' ')) {
        *why = "not an SPF record";
        return -1;
    }
    emit(&o, "v=spf1", 6);
    while (*p) {
        size_t n, eq;

        p += strspn(p, " ");
        if (!*p)
            break;
        n = strcspn(p, " ");
        eq = modifier_name(p, n);
        if (eq ? !modifier(p, n, eq, &r, why)
               : !directive(p, n, family, &r, &o, why))
            return -1;
        p += n;
    }
    if (r.exp) {
        emit(&o, " ", 1);
        emit(&o, r.exp, r.exp_len);
    }
    if (r.redirect && !r.has_all) { /* 6.1: all makes redirect moot */
        emit(&o, " ", 1);
        emit(&o, r.redirect, r.redirect_len);
    }
    if (o.full) {
        *why = "SPF record too long";
        return -1;
    }
    return 0;
}
