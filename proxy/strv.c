/*
 * strv: growable string lists and byte buffers.
 */
#include "strv.h"

#include <stdlib.h>
#include <string.h>

int strv_add(struct strv *sv, const char *s, size_t n)
{
    char *copy;

    if (sv->n == sv->cap) {
        size_t cap = sv->cap ? sv->cap * 2 : 16;
        char **v = realloc(sv->v, cap * sizeof(*v));
        size_t *len;
        if (!v)
            return -1;
        sv->v = v;
        if (!(len = realloc(sv->len, cap * sizeof(*len))))
            return -1;
        sv->len = len;
        sv->cap = cap;
    }
    if (!(copy = malloc(n + 1)))
        return -1;
    memcpy(copy, s, n);
    copy[n] = '\0';
    sv->v[sv->n] = copy;
    sv->len[sv->n++] = n;
    return 0;
}

/* Linear: the lists this is used on (URIs of one message) are short. */
int strv_add_unique(struct strv *sv, const char *s, size_t n)
{
    for (size_t i = 0; i < sv->n; i++)
        if (sv->len[i] == n && memcmp(sv->v[i], s, n) == 0)
            return 0;
    return strv_add(sv, s, n);
}

void strv_free(struct strv *sv)
{
    for (size_t i = 0; i < sv->n; i++)
        free(sv->v[i]);
    free(sv->v);
    free(sv->len);
    memset(sv, 0, sizeof(*sv));
}

static int buf_reserve(struct buf *b, size_t more)
{
    if (b->n + more + 1 <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + more + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p)
        return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

int buf_add(struct buf *b, const char *s, size_t n)
{
    if (buf_reserve(b, n) != 0)
        return -1;
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
    return 0;
}

int buf_addc(struct buf *b, char c)
{
    return buf_add(b, &c, 1);
}

void buf_free(struct buf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}
