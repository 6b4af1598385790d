/*
 * uris: finding URIs in plain text (see the header).
 */
#include "uris.h"

#include <ctype.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "strv.h"

#define URI_MAX 2048

static const char *const schemes[] = {"http://", "https://", "ftp://",
                                      "mailto:", NULL};

/* Bytes that end a URI written in text. */
static bool uri_char(unsigned char c)
{
    return c > 0x20 && c != 0x7f && !strchr("<>\"'`{}|\\^[]", c);
}

static bool word_char(unsigned char c)
{
    return isalnum(c) || c == '_' || c >= 0x80;
}

/* The URI's end, less trailing punctuation that belongs to the sentence. */
static size_t uri_end(const char *s, size_t i, size_t len)
{
    size_t j = i;

    while (j < len && j - i < URI_MAX && uri_char((unsigned char)s[j]))
        j++;
    while (j > i && strchr(".,;:!?)*", s[j - 1]))
        j--;
    return j;
}

static int hexval(char c)
{
    return isdigit((unsigned char)c)    ? c - '0'
           : isxdigit((unsigned char)c) ? tolower((unsigned char)c) - 'a' + 10
                                        : -1;
}

/* %XX decoded (printable results only: a %00 stays as written). */
static void unescape(const char *u, size_t n, struct buf *out, int *failed)
{
    for (size_t i = 0; i < n; i++) {
        int hi, lo;
        if (u[i] == '%' && i + 2 < n && (hi = hexval(u[i + 1])) >= 0 &&
            (lo = hexval(u[i + 2])) >= 0 && hi * 16 + lo > 0x20 &&
            hi * 16 + lo != 0x7f) {
            *failed |= buf_addc(out, (char)(hi * 16 + lo));
            i += 2;
        } else {
            *failed |= buf_addc(out, u[i]);
        }
    }
}

int uris_add(struct strv *out, const char *u, size_t n)
{
    struct buf b = {0};
    int failed = 0;

    if (n == 0 || out->n >= URIS_MAX)
        return 0;
    failed |= strv_add_unique(out, u, n);
    if (n > 4 && strncasecmp(u, "www.", 4) == 0) {
        failed |= buf_add(&b, "http://", 7) | buf_add(&b, u, n);
    } else if (n > 4 && strncasecmp(u, "ftp.", 4) == 0) {
        failed |= buf_add(&b, "ftp://", 6) | buf_add(&b, u, n);
    } else if (!memchr(u, ':', n) && memchr(u, '@', n)) {
        failed |= buf_add(&b, "mailto:", 7) | buf_add(&b, u, n);
    }
    if (b.n) {
        failed |= strv_add_unique(out, b.p, b.n);
        u = b.p;
        n = b.n;
    }
    if (memchr(u, '%', n)) {
        struct buf d = {0};
        unescape(u, n, &d, &failed);
        if (d.n && (d.n != n || memcmp(d.p, u, n) != 0))
            failed |= strv_add_unique(out, d.p, d.n);
        buf_free(&d);
    }
    buf_free(&b);
    return failed ? -1 : 0;
}

/* A scheme, "www." or "ftp." starting at s[i] (after a non-word byte). */
static bool uri_start(const char *s, size_t i, size_t len)
{
    if (i > 0 && word_char((unsigned char)s[i - 1]))
        return false;
    for (size_t k = 0; schemes[k]; k++) {
        size_t n = strlen(schemes[k]);
        if (len - i > n && strncasecmp(s + i, schemes[k], n) == 0)
            return true;
    }
    return len - i > 5 &&
           (strncasecmp(s + i, "www.", 4) == 0 ||
            strncasecmp(s + i, "ftp.", 4) == 0) &&
           isalnum((unsigned char)s[i + 4]);
}

/* "user@host.tld" around the "@" at s[at]; 0 when it is none. */
static bool email_at(const char *s, size_t at, size_t len, size_t *start,
                     size_t *end)
{
    size_t a = at, b = at + 1, dots = 0;

    while (a > 0 &&
           (isalnum((unsigned char)s[a - 1]) || strchr("._%+-=", s[a - 1])))
        a--;
    while (b < len &&
           (isalnum((unsigned char)s[b]) || s[b] == '.' || s[b] == '-'))
        dots += s[b++] == '.';
    while (b > at + 1 && (s[b - 1] == '.' || s[b - 1] == '-'))
        dots -= s[--b] == '.';
    if (a == at || dots == 0 || !isalpha((unsigned char)s[b - 1]))
        return false;
    *start = a;
    *end = b;
    return true;
}

int uris_from_text(const char *s, size_t len, struct strv *out)
{
    int failed = 0;

    for (size_t i = 0; i < len && out->n < URIS_MAX; i++) {
        if (!isalpha((unsigned char)s[i]) || !uri_start(s, i, len))
            continue;
        size_t j = uri_end(s, i, len);
        failed |= uris_add(out, s + i, j - i);
        i = j ? j - 1 : i;
    }
    for (const char *at = memchr(s, '@', len); at && out->n < URIS_MAX;
         at = memchr(at + 1, '@', len - (size_t)(at + 1 - s))) {
        size_t a, b;
        if (email_at(s, (size_t)(at - s), len, &a, &b))
            failed |= uris_add(out, s + a, b - a);
    }
    return failed ? -1 : 0;
}
