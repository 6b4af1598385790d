/*
 * tmpdir: a cmocka fixture for unit tests that write files: a fresh
 * temporary directory per test, removed with everything in it after.
 * Header-only: each test program includes it once.
 */
#ifndef WARDEN_TEST_TMPDIR_H
#define WARDEN_TEST_TMPDIR_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tdir {
    char path[64];
    char *yaml; /* a file a test wrote and keeps, freed at teardown */
};

static int setup(void **state)
{
    struct tdir *t = calloc(1, sizeof(*t));

    if (!t)
        return -1;
    snprintf(t->path, sizeof(t->path), "/tmp/warden-unit-XXXXXX");
    if (!mkdtemp(t->path)) {
        free(t);
        return -1;
    }
    *state = t;
    return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw)
{
    return remove(path);
}

static int teardown(void **state)
{
    struct tdir *t = *state;

    nftw(t->path, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    free(t->yaml);
    free(t);
    return 0;
}

/* Write name in the test directory; "@D@" in content becomes its path.
 * Returns the file's path (the caller frees it). */
static char *write_file(const struct tdir *t, const char *name,
                        const char *content)
{
    char *path;
    FILE *f;

    assert_true(asprintf(&path, "%s/%s", t->path, name) > 0);
    f = fopen(path, "w");
    assert_non_null(f);
    for (const char *p = content; *p; p++) {
        if (strncmp(p, "@D@", 3) == 0) {
            fputs(t->path, f);
            p += 2;
        } else {
            fputc(*p, f);
        }
    }
    fclose(f);
    return path;
}

#endif
