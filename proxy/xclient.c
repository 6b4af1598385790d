/*
 * xclient: XCLIENT command construction.
 */
#include "xclient.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static const struct {
    const char *name;
    unsigned bit;
} attr_names[] = {
    {"NAME", XCLIENT_NAME},         {"REVERSE_NAME", XCLIENT_REVERSE_NAME},
    {"ADDR", XCLIENT_ADDR},         {"PORT", XCLIENT_PORT},
    {"PROTO", XCLIENT_PROTO},       {"HELO", XCLIENT_HELO},
    {"LOGIN", XCLIENT_LOGIN},       {"DESTADDR", XCLIENT_DESTADDR},
    {"DESTPORT", XCLIENT_DESTPORT},
};

unsigned xclient_attr_from_name(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof(attr_names) / sizeof(attr_names[0]); i++)
        if (strlen(attr_names[i].name) == len &&
            strncasecmp(attr_names[i].name, name, len) == 0)
            return attr_names[i].bit;
    return 0;
}

/* RFC 3461 xtext: '+', '=' and anything outside 33..126 become "+HH". */
static void xtext(const char *in, char *out, size_t cap)
{
    size_t o = 0;

    for (; *in && o + 4 < cap; in++) {
        unsigned char c = (unsigned char)*in;
        if (c < 33 || c > 126 || c == '+' || c == '=')
            o += (size_t)snprintf(out + o, cap - o, "+%02X", c);
        else
            out[o++] = (char)c;
    }
    out[o] = '\0';
}

static void format_addr(const struct netaddr *a, char *out, size_t cap)
{
    char ip[NETADDR_STRLEN];

    netaddr_ip(a, ip, sizeof(ip));
    snprintf(out, cap, "%s%s", netaddr_family(a) == AF_INET6 ? "IPV6:" : "",
             ip);
}

/* One "NAME=value" attribute, value already encoded. */
struct attr {
    const char *name;
    char value[800];
};

static size_t collect(unsigned announced, const struct xclient_info *in,
                      struct attr *a)
{
    size_t n = 0;

    if ((announced & XCLIENT_ADDR) && in->client) {
        a[n].name = "ADDR";
        format_addr(in->client, a[n++].value, sizeof(a[0].value));
    }
    if ((announced & XCLIENT_PORT) && in->client) {
        a[n].name = "PORT";
        snprintf(a[n++].value, sizeof(a[0].value), "%u",
                 netaddr_port(in->client));
    }
    if (announced & XCLIENT_NAME) {
        a[n].name = "NAME";
        if (in->name_status == NAME_OK && in->name)
            xtext(in->name, a[n++].value, sizeof(a[0].value));
        else
            strcpy(a[n++].value, in->name_status == NAME_TEMPUNAVAIL
                                     ? "[TEMPUNAVAIL]"
                                     : "[UNAVAILABLE]");
    }
    if ((announced & XCLIENT_REVERSE_NAME)) {
        a[n].name = "REVERSE_NAME";
        if (in->reverse_name)
            xtext(in->reverse_name, a[n++].value, sizeof(a[0].value));
        else
            strcpy(a[n++].value, in->name_status == NAME_TEMPUNAVAIL
                                     ? "[TEMPUNAVAIL]"
                                     : "[UNAVAILABLE]");
    }
    if (announced & XCLIENT_HELO) {
        a[n].name = "HELO";
        if (in->helo)
            xtext(in->helo, a[n++].value, sizeof(a[0].value));
        else
            strcpy(a[n++].value, "[UNAVAILABLE]");
    }
    if ((announced & XCLIENT_PROTO) && in->proto) {
        a[n].name = "PROTO";
        xtext(in->proto, a[n++].value, sizeof(a[0].value));
    }
    if (announced & XCLIENT_LOGIN) {
        /* Unauthenticated: say so, rather than leave Warden's own. */
        a[n].name = "LOGIN";
        if (in->login)
            xtext(in->login, a[n++].value, sizeof(a[0].value));
        else
            strcpy(a[n++].value, "[UNAVAILABLE]");
    }
    if ((announced & XCLIENT_DESTADDR) && in->local) {
        a[n].name = "DESTADDR";
        format_addr(in->local, a[n++].value, sizeof(a[0].value));
    }
    if ((announced & XCLIENT_DESTPORT) && in->local) {
        a[n].name = "DESTPORT";
        snprintf(a[n++].value, sizeof(a[0].value), "%u",
                 netaddr_port(in->local));
    }
    return n;
}

size_t xclient_build(unsigned announced, const struct xclient_info *info,
                     char lines[][XCLIENT_LINE_MAX + 1], size_t maxlines)
{
    struct attr attrs[9];
    size_t n = collect(announced, info, attrs), nlines = 0, used = 0;

    for (size_t i = 0; i < n; i++) {
        size_t need = strlen(attrs[i].name) + 1 + strlen(attrs[i].value) + 1;
        /* "XCLIENT" + attributes + CRLF must stay within 512 octets. */
        if (need + 7 + 2 > XCLIENT_LINE_MAX)
            continue; /* cannot be sent at all; the backend keeps its own */
        if (nlines == 0 || used + need + 2 > XCLIENT_LINE_MAX) {
            if (nlines > 0)
                strcat(lines[nlines - 1], "\r\n");
            if (nlines == maxlines)
                return nlines;
            strcpy(lines[nlines++], "XCLIENT");
            used = 7;
        }
        char *l = lines[nlines - 1];
        used += (size_t)sprintf(l + strlen(l), " %s=%s", attrs[i].name,
                                attrs[i].value);
    }
    if (nlines > 0)
        strcat(lines[nlines - 1], "\r\n");
    return nlines;
}
