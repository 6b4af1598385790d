/*
 * errassert: assertions on "file:line: reason" error lists, shared by the
 * loader tests. Header-only: each test program includes it once.
 */
#ifndef WARDEN_TEST_ERRASSERT_H
#define WARDEN_TEST_ERRASSERT_H

#include <stdio.h>
#include <string.h>

#include "errors.h"

static void dump_errors(const struct errors *e)
{
    for (size_t i = 0; i < e->n; i++)
        print_message("  error: %s\n", e->v[i]);
}

/* An error starting with "file:line: " and containing needle exists. */
static void assert_error(const struct errors *e, const char *file,
                         unsigned line, const char *needle)
{
    char prefix[256];

    snprintf(prefix, sizeof(prefix), "%s:%u: ", file, line);
    for (size_t i = 0; i < e->n; i++)
        if (strncmp(e->v[i], prefix, strlen(prefix)) == 0 &&
            strstr(e->v[i] + strlen(prefix), needle))
            return;
    dump_errors(e);
    fail_msg("no error \"%s...%s\"", prefix, needle);
}

#endif
