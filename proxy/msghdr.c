/*
 * msghdr: see msghdr.h.
 */
#include "msghdr.h"

#include <string.h>
#include <strings.h>

#include "engine.h"

/* Length of the line at p (CRLF included), or 0 when it does not end in
 * the buffer. A bare LF ends a line too, as the scanner may have let one
 * through in normalize mode before it was fixed. */
static size_t line_len(const char *p, size_t left)
{
    const char *lf = memchr(p, '\n', left);

    return lf ? (size_t)(lf - p) + 1 : 0;
}

static size_t name_len(const char *p, size_t n)
{
    size_t i = 0;

    /* ftext: printable US-ASCII but the colon */
    while (i < n && (unsigned char)p[i] > ' ' && (unsigned char)p[i] < 127 &&
           p[i] != ':')
        i++;
    return i < n && p[i] == ':' ? i : 0;
}

size_t msghdr_scan(const char *buf, size_t len, bool dot_stuffed,
                   int (*fn)(void *arg, const struct msghdr_field *f),
                   void *arg)
{
    size_t off = 0, count = 0;

    while (off < len) {
        struct msghdr_field f = {.off = off};
        const char *p = buf + off;
        size_t n = line_len(p, len - off), skip = 0;

        if (n == 0 || p[0] == '\r' || p[0] == '\n')
            break; /* cut, or the empty line that ends the header */
        if (dot_stuffed && p[0] == '.')
            skip = 1;
        f.name = p + skip;
        f.name_len = name_len(f.name, n - skip);
        if (f.name_len == 0)
            break;
        f.len = n;
        /* continuation lines */
        while (off + f.len < len &&
               (buf[off + f.len] == ' ' || buf[off + f.len] == '\t')) {
            size_t more = line_len(buf + off + f.len, len - off - f.len);
            if (more == 0)
                return count; /* cut inside the field */
            f.len += more;
        }
        f.value = f.name + f.name_len + 1;
        f.value_len = (size_t)(p + f.len - f.value);
        while (f.value_len > 0 && (f.value[f.value_len - 1] == '\n' ||
                                   f.value[f.value_len - 1] == '\r'))
            f.value_len--;
        count++;
        if (fn && fn(arg, &f))
            break;
        off += f.len;
    }
    return count;
}

struct ranges {
    const struct header_removals *rm;
    unsigned *seen;                /* per removal: fields of its name so far */
    struct msghdr_range *out;
    size_t n, max;
};

static int find_range(void *arg, const struct msghdr_field *f)
{
    struct ranges *r = arg;
    bool hit = false;

    for (size_t i = 0; i < r->rm->n; i++) {
        const struct header_removal *h = &r->rm->v[i];
        if (strlen(h->name) == f->name_len &&
            strncasecmp(h->name, f->name, f->name_len) == 0 &&
            ++r->seen[i] == h->index)
            hit = true;
    }
    /* one range per field, even if asked twice */
    if (hit && r->n < r->max) {
        r->out[r->n].off = f->off;
        r->out[r->n].len = f->len;
        r->n++;
    }
    return 0;
}

size_t msghdr_ranges(const char *buf, size_t len, bool dot_stuffed,
                     const struct header_removals *rm,
                     struct msghdr_range *out, size_t max)
{
    unsigned seen[64] = {0};
    struct ranges r = {rm, seen, out, 0, max};
    struct header_removals head = *rm;

    /* at most 64 removals a message: more would be a bug in a check */
    if (head.n > sizeof(seen) / sizeof(seen[0]))
        head.n = sizeof(seen) / sizeof(seen[0]);
    r.rm = &head;
    msghdr_scan(buf, len, dot_stuffed, find_range, &r);
    return r.n; /* found in field order, so already sorted */
}
