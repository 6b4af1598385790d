/*
 * smtp_cmd: client command framing and argument parsing.
 */
#include "smtp_cmd.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const verb_names[VERB__COUNT] = {
    [VERB_UNKNOWN] = "UNKNOWN", [VERB_HELO] = "HELO", [VERB_EHLO] = "EHLO",
    [VERB_MAIL] = "MAIL", [VERB_RCPT] = "RCPT", [VERB_DATA] = "DATA",
    [VERB_BDAT] = "BDAT", [VERB_RSET] = "RSET", [VERB_NOOP] = "NOOP",
    [VERB_QUIT] = "QUIT", [VERB_VRFY] = "VRFY", [VERB_EXPN] = "EXPN",
    [VERB_HELP] = "HELP", [VERB_STARTTLS] = "STARTTLS", [VERB_AUTH] = "AUTH",
    [VERB_ETRN] = "ETRN", [VERB_XCLIENT] = "XCLIENT",
    [VERB_XFORWARD] = "XFORWARD",
};

const char *smtp_verb_name(enum smtp_verb v)
{
    return v < VERB__COUNT ? verb_names[v] : "UNKNOWN";
}

enum smtp_line_problem smtp_line_check(const char *line, size_t len)
{
    if (len == 0 || line[len - 1] != '\n')
        return LINE_BARE_LF; /* caller passes whole lines only */
    if (len < 2 || line[len - 2] != '\r')
        return LINE_BARE_LF;
    if (memchr(line, '\0', len - 2))
        return LINE_NUL;
    if (memchr(line, '\r', len - 2))
        return LINE_BARE_CR;
    /*
     * An LF before the terminator is a bare LF too. The session cuts lines
     * at the first LF so it never passes one, but a caller that cut at CRLF
     * would otherwise get LINE_OK for "RSET\nMAIL FROM:<x>\r\n" (found by
     * tests/fuzz/fuzz_smtp_cmd.c).
     */
    if (memchr(line, '\n', len - 2))
        return LINE_BARE_LF;
    return LINE_OK;
}

void smtp_cmd_parse(const char *line, size_t len, struct smtp_cmd *out)
{
    size_t vlen = 0;

    while (vlen < len && line[vlen] != ' ')
        vlen++;
    out->verb = VERB_UNKNOWN;
    for (int v = VERB_UNKNOWN + 1; v < VERB__COUNT; v++) {
        if (strlen(verb_names[v]) == vlen &&
            strncasecmp(line, verb_names[v], vlen) == 0) {
            out->verb = (enum smtp_verb)v;
            break;
        }
    }
    if (vlen < len) {
        out->args = line + vlen + 1;
        out->args_len = len - vlen - 1;
    } else {
        out->args = line + len;
        out->args_len = 0;
    }
}

/* An address may not contain spaces, controls, or brackets outside quotes. */
static bool addr_char_ok(unsigned char c)
{
    return c > 32 && c != 127 && c != '<' && c != '>';
}

/*
 * Length of the source route ("@a,@b:") that starts a[0..n), colon
 * included; 0 if it is not one. The route ends at the first colon that is
 * not inside an address literal, and may hold no quotes: cutting at the
 * first colon anywhere (as this once did) turned <@x"a:b c"@d> into the
 * address `b c"@d`, with a space and an open quote, and
 * <@[IPv6:2001:db8::1]:u@d> into `2001:db8::1]:u@d` (found by
 * tests/fuzz/fuzz_smtp_cmd.c).
 */
static size_t route_len(const char *a, size_t n)
{
    size_t i = 0;

    while (i < n && a[i] == '@') {
        size_t start = ++i;
        if (i < n && a[i] == '[') {
            while (i < n && a[i] != ']' && a[i] != '"' && a[i] != '\\')
                i++;
            if (i >= n || a[i] != ']')
                return 0;
            i++;
        } else {
            while (i < n && !strchr(",:@\"[]\\", a[i]))
                i++;
            if (i == start)
                return 0;
        }
        if (i < n && a[i] == ':')
            return i + 1;
        if (i >= n || a[i] != ',')
            return 0;
        i++;
    }
    return 0;
}

static enum smtp_path_status parse_addr(const char *p, const char *end,
                                        const char **rest,
                                        struct smtp_path *out)
{
    const char *a = p;
    bool bracket = p < end && *p == '<';
    bool quoted = false;
    size_t n;

    if (bracket)
        a = ++p;
    for (; p < end; p++) {
        unsigned char c = (unsigned char)*p;
        if (!quoted) {
            if (c == '"')
                quoted = true;
            else if (!addr_char_ok(c))
                break;
            continue;
        }
        /* RFC 5321 quoted-pairSMTP: a backslash and one printable octet,
         * so in "a\\" the second quote closes the string */
        if (c == '\\' && p + 1 < end && p[1] >= 32 && p[1] < 127)
            p++;
        else if (c == '"')
            quoted = false;
        else if (c < 32 || c == 127)
            break;
    }
    if (quoted)
        return PATH_BAD_ADDR;
    n = (size_t)(p - a);
    if (bracket) {
        if (p >= end || *p != '>')
            return PATH_BAD_ADDR;
        *rest = p + 1;
    } else {
        if (n == 0 || (p < end && *p != ' '))
            return PATH_BAD_ADDR;
        *rest = p;
    }
    if (n >= sizeof(out->addr))
        return PATH_BAD_ADDR;
    /* Drop an RFC 5321 source route ("@a,@b:user@c"); nobody honours it. */
    if (n > 0 && a[0] == '@') {
        size_t r = route_len(a, n);
        if (r == 0)
            return PATH_BAD_ADDR;
        n -= r;
        a += r;
    }
    memcpy(out->addr, a, n);
    out->addr[n] = '\0';
    return PATH_OK;
}

static bool parse_size_value(const char *v, size_t n, unsigned long long *out)
{
    unsigned long long x = 0;

    if (n == 0 || n > 20)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)v[i]))
            return false;
        if (x > (~0ULL - 9) / 10)
            return false;
        x = x * 10 + (unsigned)(v[i] - '0');
    }
    *out = x;
    return true;
}

/* keyword[=value] pairs separated by spaces (RFC 5321 4.1.2 esmtp-param). */
static enum smtp_path_status parse_params(const char *p, const char *end,
                                          struct smtp_path *out)
{
    while (p < end) {
        const char *w, *eq;
        size_t klen;

        while (p < end && *p == ' ')
            p++;
        if (p >= end)
            break;
        w = p;
        while (p < end && *p != ' ')
            p++;
        eq = memchr(w, '=', (size_t)(p - w));
        klen = (size_t)((eq ? eq : p) - w);
        if (klen == 0 || !isalnum((unsigned char)w[0]))
            return PATH_BAD_PARAM;
        for (size_t i = 0; i < klen; i++)
            if (!isalnum((unsigned char)w[i]) && w[i] != '-')
                return PATH_BAD_PARAM;
        if (klen == 4 && strncasecmp(w, "SIZE", 4) == 0) {
            if (!eq || !parse_size_value(eq + 1, (size_t)(p - eq - 1),
                                         &out->size))
                return PATH_BAD_PARAM;
            out->has_size = true;
        }
    }
    return PATH_OK;
}

enum smtp_path_status smtp_path_parse(const char *args, size_t len,
                                      const char *keyword,
                                      struct smtp_path *out)
{
    size_t klen = strlen(keyword);
    const char *p = args, *end = args + len, *rest;
    enum smtp_path_status st;

    memset(out, 0, sizeof(*out));
    if (len < klen || strncasecmp(args, keyword, klen) != 0)
        return PATH_SYNTAX;
    p += klen;
    while (p < end && *p == ' ')
        p++;
    if (p >= end)
        return PATH_SYNTAX;
    st = parse_addr(p, end, &rest, out);
    if (st != PATH_OK)
        return st;
    if (rest < end && *rest != ' ')
        return PATH_BAD_ADDR;
    return parse_params(rest, end, out);
}
