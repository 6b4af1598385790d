/*
 * strv: a growable list of byte strings (NUL-terminated copies with their
 * lengths), and a growable byte buffer: the small containers the message
 * decoder fills.
 */
#ifndef WARDEN_STRV_H
#define WARDEN_STRV_H

#include <stddef.h>

struct strv {
    char **v;
    size_t *len;
    size_t n, cap;
};

/* Append a copy of s[0..n). Returns 0 or -1. */
int strv_add(struct strv *sv, const char *s, size_t n);
/* Append unless an equal string is already there. */
int strv_add_unique(struct strv *sv, const char *s, size_t n);
void strv_free(struct strv *sv);

struct buf {
    char *p; /* NUL-terminated when not NULL */
    size_t n, cap;
};

int buf_add(struct buf *b, const char *s, size_t n);
int buf_addc(struct buf *b, char c);
void buf_free(struct buf *b);

#endif
