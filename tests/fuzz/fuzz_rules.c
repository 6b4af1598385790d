/*
 * libFuzzer target for ruleset_load(): one SpamAssassin-style rule file.
 *
 * The loader takes paths: the input goes to a file in a private
 * directory (under $TMPDIR, else /tmp), rewritten for each input and
 * removed at exit. An "include" names only files that do not exist there,
 * or the file itself (a loop the loader must stop). Beyond "no crash, no
 * leak, no UB", it checks:
 *   - a set comes back with no error, or NULL with at least one, and
 *     every error about the file is "<path>:<line>: reason" with a line
 *     between 1 and the number of lines, or names the file alone;
 *   - in a returned set every enabled rule is planned once, metas after
 *     every meta they read, and every header rule's key exists;
 *   - loading the same file leniently never fails where strict loading
 *     succeeded.
 *
 * contrib/fuzz.sh rules   (libFuzzer + ASan + UBSan, corpus/rules/)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzzcheck.h"
#include "rules.h"
#include "rules_meta.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[256], path[300];

static void cleanup(void)
{
    unlink(path);
    rmdir(dir);
}

static void setup_dir(void)
{
    const char *tmp = getenv("TMPDIR");

    snprintf(dir, sizeof(dir), "%s/warden-fuzz-rules-XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        perror(dir);
        abort();
    }
    snprintf(path, sizeof(path), "%s/rules.cf", dir);
    atexit(cleanup);
}

static unsigned count_lines(const uint8_t *d, size_t n)
{
    unsigned lines = 1;

    for (size_t i = 0; i < n; i++)
        lines += d[i] == '\n';
    return lines;
}

static void check_errors(const struct errors *e, unsigned lines)
{
    size_t plen = strlen(path);

    for (size_t i = 0; i < e->n; i++) {
        const char *m = e->v[i];
        if (strncmp(m, path, plen) != 0 || m[plen] != ':')
            continue; /* about another file (a missing include) */
        if (m[plen + 1] == ' ')
            continue;
        char *end;
        unsigned long line = strtoul(m + plen + 1, &end, 10);
        CHECK(*end == ':');
        CHECK(line >= 1 && line <= lines);
    }
}

static void check_plan(const struct ruleset *rs)
{
    unsigned char *seen = calloc(rs->n ? rs->n : 1, 1);

    CHECK(seen);
    for (int t = 0; t < RULE__COUNT; t++) {
        for (size_t i = 0; i < rs->nplan[t]; i++) {
            size_t k = rs->plan[t][i];
            const struct rule *r = &rs->v[k];
            CHECK(k < rs->n && !seen[k] && r->enabled && (int)r->type == t);
            if (t == RULE_META) {
                const long *deps;
                size_t n = meta_deps(r->meta, &deps);
                for (size_t d = 0; d < n; d++)
                    if (rs->v[deps[d]].type == RULE_META)
                        CHECK(seen[deps[d]]);
            }
            if (t == RULE_HEADER || t == RULE_MIMEHEADER)
                CHECK(r->hkey < rs->nhkeys);
            seen[k] = 1;
        }
    }
    for (size_t i = 0; i < rs->n; i++)
        CHECK(!rs->v[i].enabled || !rs->v[i].defined || seen[i] ||
              (rs->v[i].type == RULE_META && !rs->v[i].meta));
    free(seen);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct errors errs = {0}, lerrs = {0};
    char *p = path;
    FILE *f;

    if (!dir[0])
        setup_dir();
    if (!(f = fopen(path, "w"))) {
        perror(path);
        abort();
    }
    fwrite(data, 1, size, f);
    fclose(f);
    struct ruleset *rs = ruleset_load(&p, 1, 0, &errs);
    CHECK((rs == NULL) == (errs.n > 0));
    check_errors(&errs, count_lines(data, size));
    if (rs) {
        check_plan(rs);
        struct ruleset *lenient = ruleset_load(&p, 1, RULES_LENIENT, &lerrs);
        CHECK(lenient != NULL);
        ruleset_free(lenient);
    }
    ruleset_free(rs);
    errors_free(&errs);
    errors_free(&lerrs);
    return 0;
}
