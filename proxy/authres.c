/*
 * authres: Authentication-Results (RFC 8601) formatting; see the header.
 *
 * RFC 8601 2.2: a property value is a token or a quoted-string, or an
 * address "[local-part@]domain". Addresses are written as they are when
 * the local part is a dot-atom and the domain is letters, digits, '-' and
 * '.': the form readers (and DMARC tools) expect. Anything else becomes a
 * quoted-string with '"' and '\' escaped and non-printables dropped.
 */
#include "authres.h"

#include <stdio.h>
#include <string.h>

#define FIELD "Authentication-Results: "

static bool is_atext(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || (c && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

/* RFC 2045 token: printable ASCII but SPACE and tspecials. */
static bool is_token(const char *s)
{
    if (!*s)
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= ' ' || *p >= 0x7f || strchr("()<>@,;:\\\"/[]?=", *p))
            return false;
    return true;
}

static bool is_domain(const char *s, size_t n)
{
    if (n == 0 || s[0] == '.' || s[n - 1] == '.')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '.' ||
              s[i] == '_') ||
            (s[i] == '.' && s[i + 1] == '.'))
            return false;
    return true;
}

/* "[dot-atom]@domain" or a bare domain. */
static bool is_address(const char *s)
{
    const char *at = strrchr(s, '@');

    if (!at)
        return is_domain(s, strlen(s));
    for (const char *p = s; p < at; p++)
        if (!(is_atext((unsigned char)*p) ||
              (*p == '.' && p != s && p[1] != '.' && p + 1 != at)))
            return false;
    return is_domain(at + 1, strlen(at + 1));
}

/* Append s, or nothing if it does not fit whole. */
static void put(struct authres *a, const char *s, size_t n)
{
    if (a->len + n >= sizeof(a->buf))
        return;
    memcpy(a->buf + a->len, s, n);
    a->len += n;
    a->buf[a->len] = '\0';
}

static void put_str(struct authres *a, const char *s)
{
    put(a, s, strlen(s));
}

/* value as itself, or as a quoted-string; dropped whole if too long. */
static void put_value(struct authres *a, const char *v)
{
    char q[AUTHRES_MAX];
    size_t o = 0;

    if (is_token(v) || is_address(v)) {
        put_str(a, v);
        return;
    }
    q[o++] = '"';
    for (const unsigned char *p = (const unsigned char *)v;
         *p && o + 3 < sizeof(q); p++) {
        if (*p < ' ' || *p >= 0x7f)
            continue;
        if (*p == '"' || *p == '\\')
            q[o++] = '\\';
        q[o++] = (char)*p;
    }
    q[o++] = '"';
    put(a, q, o);
}

void authres_init(struct authres *a, const char *authserv_id)
{
    a->len = 0;
    a->any = false;
    a->buf[0] = '\0';
    put_str(a, FIELD);
    put_value(a, authserv_id);
}

void authres_method(struct authres *a, const char *method, const char *result)
{
    char part[128];
    int n = snprintf(part, sizeof(part), "; %s=%s", method, result);

    if (n > 0 && (size_t)n < sizeof(part)) {
        put(a, part, (size_t)n);
        a->any = true;
    }
}

void authres_comment(struct authres *a, const char *text)
{
    char c[256];
    size_t o = 0;

    c[o++] = ' ';
    c[o++] = '(';
    for (const unsigned char *p = (const unsigned char *)text;
         *p && o + 2 < sizeof(c); p++)
        if (*p >= ' ' && *p < 0x7f && !strchr("()\\", *p))
            c[o++] = (char)*p;
    c[o++] = ')';
    put(a, c, o);
}

void authres_prop(struct authres *a, const char *prop, const char *value)
{
    size_t before = a->len, mid;

    put_str(a, " ");
    put_str(a, prop);
    put_str(a, "=");
    mid = a->len;
    if (mid == before + strlen(prop) + 2)
        put_value(a, value);
    if (mid != before + strlen(prop) + 2 || a->len == mid) {
        a->len = before; /* no room: no half a property */
        a->buf[before] = '\0';
    }
}

const char *authres_field(struct authres *a)
{
    if (!a->any) {
        put_str(a, "; none");
        a->any = true; /* once */
    }
    return a->buf;
}
