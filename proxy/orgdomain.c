/*
 * orgdomain: see orgdomain.h.
 *
 * The list's algorithm (https://publicsuffix.org/list/): a name's public
 * suffix is given by the matching rule with the most labels, "*.x"
 * matching any one label before x, and an exception rule "!a.x" winning
 * over everything and counting one label less. No match means "*": the
 * top-level label alone. Rules are kept by name with flags, so "x",
 * "*.x" and "!a.x" are three probes of one table.
 */
#include "orgdomain.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define RULE_NORMAL 1u   /* "x" */
#define RULE_WILD 2u     /* "*.x", stored as "x" */
#define RULE_EXCEPT 4u   /* "!x" */

/* The list is about 230 KB: a larger file is not the list. */
#define LIST_MAX (16u * 1024 * 1024)
#define LABELS_MAX 128

struct rule {
    char *name;          /* NULL: free slot */
    unsigned flags;
};

struct orgdomain {
    struct rule *slot;
    size_t size, used;   /* size: a power of two */
};

static uint32_t hash(const char *s, size_t n)
{
    uint32_t h = 2166136261u;

    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

static struct rule *find(const struct orgdomain *od, const char *s, size_t n)
{
    size_t i = hash(s, n) & (od->size - 1);

    for (;; i = (i + 1) & (od->size - 1)) {
        struct rule *r = &od->slot[i];
        if (!r->name || (strlen(r->name) == n && memcmp(r->name, s, n) == 0))
            return r;
    }
}

static int grow(struct orgdomain *od)
{
    struct orgdomain bigger = {NULL, od->size ? od->size * 2 : 1024, 0};

    if (!(bigger.slot = calloc(bigger.size, sizeof(*bigger.slot))))
        return -1;
    for (size_t i = 0; i < od->size; i++) {
        struct rule *r = &od->slot[i];
        if (r->name)
            *find(&bigger, r->name, strlen(r->name)) = *r;
    }
    free(od->slot);
    od->slot = bigger.slot;
    od->size = bigger.size;
    return 0;
}

static int add(struct orgdomain *od, const char *s, size_t n, unsigned flag)
{
    struct rule *r;

    if ((od->used + 1) * 2 > od->size && grow(od) != 0)
        return -1;
    r = find(od, s, n);
    if (!r->name) {
        if (!(r->name = strndup(s, n)))
            return -1;
        od->used++;
    }
    r->flags |= flag;
    return 0;
}

/* One line of the list: a rule up to the first blank, or a comment. */
static int add_line(struct orgdomain *od, const char *line, size_t n)
{
    size_t len = 0;
    unsigned flag = RULE_NORMAL;

    while (len < n && line[len] != ' ' && line[len] != '\t' &&
           line[len] != '\r')
        len++;
    if (len == 0 || (len >= 2 && line[0] == '/' && line[1] == '/'))
        return 0;
    if (line[0] == '!') {
        flag = RULE_EXCEPT;
        line++, len--;
    } else if (len > 2 && line[0] == '*' && line[1] == '.') {
        flag = RULE_WILD;
        line += 2, len -= 2;
    }
    return len ? add(od, line, len, flag) : 0;
}

/* All n bytes of fd, or -1. */
static int read_all(int fd, char *buf, size_t n)
{
    while (n > 0) {
        ssize_t r = read(fd, buf, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        buf += r;
        n -= (size_t)r;
    }
    return 0;
}

struct orgdomain *orgdomain_parse(const char *text, size_t len)
{
    struct orgdomain *od = calloc(1, sizeof(*od));
    const char *p = text, *end = text + len;

    if (!od || grow(od) != 0) {
        orgdomain_free(od);
        return NULL;
    }
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (add_line(od, p, n) != 0) {
            orgdomain_free(od);
            return NULL;
        }
        p += n + 1;
    }
    return od;
}

/* Opened without blocking, so a FIFO cannot hang the loader (and
 * `warden -t`, and a reload); fstat then refuses anything not regular. */
struct orgdomain *orgdomain_load(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    struct orgdomain *od = NULL;
    struct stat st;
    char *text = NULL;

    if (fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
        st.st_size > (off_t)LIST_MAX) {
        snprintf(err, errlen, "%s is not a public suffix list file", path);
        goto out;
    }
    if (!(text = malloc((size_t)st.st_size + 1)) ||
        read_all(fd, text, (size_t)st.st_size) != 0) {
        snprintf(err, errlen, "cannot read %s", path);
        goto out;
    }
    od = orgdomain_parse(text, (size_t)st.st_size);
    if (od && od->used == 0) {
        snprintf(err, errlen, "%s holds no rules", path);
        orgdomain_free(od);
        od = NULL;
    } else if (!od) {
        snprintf(err, errlen, "out of memory reading %s", path);
    }
out:
    free(text);
    close(fd);
    return od;
}

void orgdomain_free(struct orgdomain *od)
{
    if (!od)
        return;
    for (size_t i = 0; i < od->size; i++)
        free(od->slot[i].name);
    free(od->slot);
    free(od);
}

size_t orgdomain_rules(const struct orgdomain *od)
{
    return od->used;
}

static unsigned flags_of(const struct orgdomain *od, const char *s)
{
    const struct rule *r = find(od, s, strlen(s));

    return r->name ? r->flags : 0;
}

/* How many labels of the name (starts[0..n-1]) its public suffix has. */
static size_t suffix_labels(const struct orgdomain *od, const char *name,
                            const size_t *starts, size_t n)
{
    size_t best = 1; /* the implicit "*" rule */

    for (size_t i = 0; i < n; i++) {
        const char *s = name + starts[i];
        size_t labels = n - i;
        unsigned f = flags_of(od, s);
        if (f & RULE_EXCEPT)
            return labels - 1;
        if ((f & RULE_NORMAL) && labels > best)
            best = labels;
        if (i + 1 < n && (flags_of(od, name + starts[i + 1]) & RULE_WILD) &&
            labels > best)
            best = labels;
    }
    return best;
}

int orgdomain_get(const struct orgdomain *od, const char *domain, char *out,
                  size_t size)
{
    char name[256];
    size_t starts[LABELS_MAX], n = 0, len = strlen(domain), ps;

    if (len >= sizeof(name) || len >= size)
        return -1;
    for (size_t i = 0; i <= len; i++)
        name[i] = (domain[i] >= 'A' && domain[i] <= 'Z')
                      ? (char)(domain[i] - 'A' + 'a')
                      : domain[i];
    for (size_t i = 0; i < len && n < LABELS_MAX; i++)
        if (i == 0 || name[i - 1] == '.')
            starts[n++] = i;
    ps = n ? suffix_labels(od, name, starts, n) : 0;
    /* the suffix and one more label, when the name has one more */
    memcpy(out, ps < n ? name + starts[n - ps - 1] : name,
           len - (ps < n ? starts[n - ps - 1] : 0) + 1);
    return 0;
}
