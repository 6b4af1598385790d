/*
 * errors: a list of "file:line: reason" messages.
 *
 * Loaders (config, policies) report every problem they find instead of
 * stopping at the first, so `warden -t` shows an admin the whole list.
 */
#ifndef WARDEN_ERRORS_H
#define WARDEN_ERRORS_H

#include <stddef.h>
#include <stdio.h>

struct errors {
    char **v;
    size_t n, cap;
};

/*
 * Append "file:line: reason"; line 0 means "file: reason" and a NULL file
 * means the reason alone (it already names its file).
 */
void errors_add(struct errors *e, const char *file, unsigned line,
                const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void errors_print(const struct errors *e, FILE *out);
void errors_free(struct errors *e);

#endif
