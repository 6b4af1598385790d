/*
 * fromaddr: see fromaddr.h.
 *
 * One pass over the field value. Comments are skipped, quoted strings are
 * replaced by a placeholder (so their "@" and "," do not count), and each
 * mailbox keeps either its angle-addr or, without one, its bare text; the
 * domain is what follows the last "@" of that. A mailbox is at most
 * ADDR_MAX octets: RFC 5321 paths are far shorter.
 */
#include "fromaddr.h"

#include <string.h>
#include <strings.h>

#include "msghdr.h"

#define ADDR_MAX 1024

struct mailbox {
    char bare[ADDR_MAX];    /* text outside <>, quoted strings as 'q' */
    size_t nbare;
    char angle[ADDR_MAX];   /* inside <> */
    size_t nangle;
    bool has_angle, in_angle;
    bool bare_cut;          /* bare overflowed: fine if it is a name */
};

static const char *skip_comment(const char *p, const char *end);
static const char *skip_quoted(const char *p, const char *end);
static bool put(char *buf, size_t *n, char c);
static enum fromaddr_status mailbox_domain(struct mailbox *m, char *domain,
                                           size_t size);
static bool domain_ok(const char *d);

/* p at "(": past the matching ")" (comments nest), or NULL. */
static const char *skip_comment(const char *p, const char *end)
{
    int depth = 0;

    for (; p < end; p++) {
        if (*p == '\\' && p + 1 < end)
            p++;
        else if (*p == '(')
            depth++;
        else if (*p == ')' && --depth == 0)
            return p + 1;
    }
    return NULL;
}

/* p at '"': past the closing '"', or NULL. */
static const char *skip_quoted(const char *p, const char *end)
{
    for (p++; p < end; p++) {
        if (*p == '\\' && p + 1 < end)
            p++;
        else if (*p == '"')
            return p + 1;
    }
    return NULL;
}

static bool put(char *buf, size_t *n, char c)
{
    if (*n + 1 >= ADDR_MAX)
        return false;
    buf[(*n)++] = c;
    buf[*n] = '\0';
    return true;
}

/* One character of a mailbox, outside comments and quotes. */
static bool mailbox_put(struct mailbox *m, char c)
{
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
        return true; /* FWS: no meaning inside an addr-spec */
    if (m->in_angle)
        return put(m->angle, &m->nangle, c);
    /* a long display name is no error: it only counts without <> */
    if (!put(m->bare, &m->nbare, c))
        m->bare_cut = true;
    return true;
}

enum fromaddr_status fromaddr_parse(const char *value, size_t len,
                                    char *domain, size_t size)
{
    const char *p = value, *end = value + len;
    struct mailbox m;
    enum fromaddr_status st = FROMADDR_NONE;
    unsigned found = 0;

    memset(&m, 0, sizeof(m));
    domain[0] = '\0';
    for (;;) {
        bool sep = p >= end || (*p == ',' && !m.in_angle);
        if (sep) {
            if (m.in_angle)
                return FROMADDR_BAD; /* "<" never closed */
            if (m.nbare || m.has_angle) {
                if (++found > 1)
                    return FROMADDR_MANY;
                st = mailbox_domain(&m, domain, size);
                if (st != FROMADDR_OK)
                    return st;
            }
            if (p >= end)
                return found ? st : FROMADDR_NONE;
            memset(&m, 0, sizeof(m));
            p++;
            continue;
        }
        switch (*p) {
        case '(':
            if (!(p = skip_comment(p, end)))
                return FROMADDR_BAD;
            continue;
        case '"':
            if (!(p = skip_quoted(p, end)) || !mailbox_put(&m, 'q'))
                return FROMADDR_BAD;
            continue;
        case '<':
            if (m.in_angle || m.has_angle)
                return FROMADDR_BAD;
            m.in_angle = m.has_angle = true;
            break;
        case '>':
            if (!m.in_angle)
                return FROMADDR_BAD;
            m.in_angle = false;
            break;
        case ':':
            if (!m.in_angle)
                return FROMADDR_BAD; /* a group: no single author */
            m.nangle = 0;             /* obs-route "<@a,@b:user@d>" */
            m.angle[0] = '\0';
            break;
        case ';':
            return FROMADDR_BAD;
        default:
            if (!mailbox_put(&m, *p))
                return FROMADDR_BAD;
        }
        p++;
    }
}

/* The domain after the last "@" of the mailbox's address. */
static enum fromaddr_status mailbox_domain(struct mailbox *m, char *domain,
                                           size_t size)
{
    const char *addr = m->has_angle ? m->angle : m->bare;
    const char *at = strrchr(addr, '@');
    size_t n;

    if (m->has_angle && m->nangle == 0)
        return FROMADDR_NONE; /* "<>" */
    if (!m->has_angle && m->bare_cut)
        return FROMADDR_BAD;
    if (!at || at == addr)
        return FROMADDR_BAD; /* an address literal fails domain_ok */
    at++;
    n = strlen(at);
    while (n > 0 && at[n - 1] == '.')
        n--;
    if (n == 0 || n >= size)
        return FROMADDR_BAD;
    for (size_t i = 0; i < n; i++) {
        char c = at[i];
        domain[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    domain[n] = '\0';
    if (!domain_ok(domain)) {
        domain[0] = '\0';
        return FROMADDR_BAD;
    }
    return FROMADDR_OK;
}

/* Letters, digits, '-', '_' and dots between labels of 1-63 octets. */
static bool domain_ok(const char *d)
{
    size_t label = 0;

    if (strlen(d) > FROMADDR_DOMAIN_MAX - 1)
        return false;
    for (const char *p = d; *p; p++) {
        if (*p == '.') {
            if (label == 0)
                return false;
            label = 0;
            continue;
        }
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_') ||
            ++label > 63)
            return false;
    }
    return label > 0;
}

struct from_scan {
    unsigned fields;
    enum fromaddr_status st;
    char *domain;
    size_t size;
};

static int on_field(void *arg, const struct msghdr_field *f)
{
    struct from_scan *s = arg;

    if (f->name_len != 4 || strncasecmp(f->name, "from", 4) != 0)
        return 0;
    if (++s->fields > 1) {
        s->st = FROMADDR_MULTI;
        s->domain[0] = '\0';
        return 1;
    }
    s->st = fromaddr_parse(f->value, f->value_len, s->domain, s->size);
    return 0;
}

enum fromaddr_status fromaddr_of_message(const char *msg, size_t len,
                                         bool dot_stuffed, char *domain,
                                         size_t size)
{
    struct from_scan s = {0, FROMADDR_NONE, domain, size};

    domain[0] = '\0';
    msghdr_scan(msg, len, dot_stuffed, on_field, &s);
    return s.st;
}

const char *fromaddr_status_text(enum fromaddr_status s)
{
    switch (s) {
    case FROMADDR_OK:
        return "ok";
    case FROMADDR_NONE:
        return "no From: address";
    case FROMADDR_MULTI:
        return "several From: fields";
    case FROMADDR_MANY:
        return "several From: addresses";
    case FROMADDR_BAD:
        break;
    }
    return "unusable From: field";
}
