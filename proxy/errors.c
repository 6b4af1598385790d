/*
 * errors: a growable list of "file:line: reason" messages.
 *
 * Loaders add to it and compare its length before and after to know
 * whether anything went wrong, so an error must never be dropped: running
 * out of memory here aborts instead of silently losing a message.
 */
#define _GNU_SOURCE /* asprintf, vasprintf */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"

static void *errors_must(void *p)
{
    if (!p) {
        fputs("warden: out of memory\n", stderr);
        abort();
    }
    return p;
}

/*
 * The reason is not cut to a fixed size: an error about a CIDR file comes
 * whole as "path:line: reason", and a long path used to push the reason
 * (and even the ": ") out of the message.
 */
void errors_add(struct errors *e, const char *file, unsigned line,
                const char *fmt, ...)
{
    char *reason, *msg;
    int r;
    va_list ap;

    va_start(ap, fmt);
    r = vasprintf(&reason, fmt, ap);
    va_end(ap);
    errors_must(r < 0 ? NULL : reason);

    if (!file)
        r = asprintf(&msg, "%s", reason);
    else if (line)
        r = asprintf(&msg, "%s:%u: %s", file, line, reason);
    else
        r = asprintf(&msg, "%s: %s", file, reason);
    errors_must(r < 0 ? NULL : msg);
    free(reason);

    if (e->n == e->cap) {
        e->cap = e->cap ? e->cap * 2 : 8;
        e->v = errors_must(realloc(e->v, e->cap * sizeof(*e->v)));
    }
    e->v[e->n++] = msg;
}

void errors_print(const struct errors *e, FILE *out)
{
    for (size_t i = 0; i < e->n; i++)
        fprintf(out, "%s\n", e->v[i]);
}

void errors_free(struct errors *e)
{
    for (size_t i = 0; i < e->n; i++)
        free(e->v[i]);
    free(e->v);
    memset(e, 0, sizeof(*e));
}
