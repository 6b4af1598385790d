/*
 * score_cli: `warden score` (see the header).
 *
 * Message files are read as a mail store keeps them: an mbox "From "
 * line first is dropped and bare LF line ends become CRLF, as the
 * message would arrive over SMTP. Options:
 *
 *   --rules PATH     rule file or directory (repeat for more); default:
 *                    the scoring section of the config
 *   --lenient        skip rules whose regex PCRE2 refuses (for reading
 *                    SpamAssassin's own files) instead of failing
 *   --threshold N    the summary counts messages at or above N (default:
 *                    the config's tag threshold, else 5)
 *   --verbose, -v    every hit with its score and description
 *   --dump           what the rules see: body paragraphs, URIs
 *   --warnings       every rule file line that was skipped, and why
 *   --list           every rule loaded: type, name, score, whether it runs
 *   --quiet, -q      the summary only
 *   --repeat N       score each message N times (a speed measurement)
 */
#define _GNU_SOURCE
#include "score_cli.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "config.h"
#include "msgview.h"
#include "policy.h"
#include "rules.h"
#include "score_rules.h"
#include "scorer.h"
#include "strv.h"

struct cli {
    const struct ruleset *rs;
    double threshold;
    bool verbose, dump, quiet;
    unsigned repeat;
    size_t max_scan;
    /* totals */
    size_t messages, flagged, failed, bytes;
    double seconds;
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: warden [-c config.yaml] score [--rules PATH]... "
            "[--lenient]\n"
            "              [--threshold N] [-v] [--dump] [--warnings] [--list] "
            "[-q] "
            "[--repeat N] FILE|DIR...\n");
}

/* The file as SMTP would deliver it: no mbox "From " line, CRLF lines. */
static int read_message(const char *path, struct buf *out)
{
    FILE *f = fopen(path, "rb");
    char chunk[65536];
    struct buf raw = {0};
    size_t n, i = 0;

    if (!f)
        return -1;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        buf_add(&raw, chunk, n);
    fclose(f);
    if (!raw.p)
        buf_add(&raw, "", 0);
    if (raw.n > 5 && memcmp(raw.p, "From ", 5) == 0) {
        const char *nl = memchr(raw.p, '\n', raw.n);
        i = nl ? (size_t)(nl - raw.p) + 1 : raw.n;
    }
    for (; i < raw.n; i++) {
        if (raw.p[i] == '\n' && (i == 0 || raw.p[i - 1] != '\r'))
            buf_addc(out, '\r');
        buf_addc(out, raw.p[i]);
    }
    if (!out->p)
        buf_add(out, "", 0);
    buf_free(&raw);
    return 0;
}

static void dump_view(const struct msgview *mv)
{
    for (size_t i = 0; i < mv->body.n; i++)
        printf("  body[%zu]: %s", i, mv->body.v[i]);
    printf("  rawbody: %zu lines\n", mv->rawbody.n);
    for (size_t i = 0; i < mv->uris.n; i++)
        printf("  uri: %s\n", mv->uris.v[i]);
}

static void print_hits(const struct cli *c, const struct score_result *r)
{
    for (size_t i = 0; i < r->nhits; i++) {
        const struct rule *rule = &c->rs->v[r->hits[i].rule];
        printf("  %6.2f %-28s %s\n",
               rule->score * (rule->type == RULE_META ? 1 : r->hits[i].count),
               rule->name, rule->describe ? rule->describe : "");
    }
}

static void score_file(struct cli *c, const char *path)
{
    struct buf msg = {0};
    struct score_result r = {0};
    struct msgview *mv = NULL;
    struct timespec a, b;
    char tests[4096];

    if (read_message(path, &msg) != 0) {
        fprintf(stderr, "warden: %s: %s\n", path, strerror(errno));
        c->failed++;
        return;
    }
    if (msg.n > c->max_scan)
        msg.n = c->max_scan;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (unsigned k = 0; k < c->repeat; k++) {
        msgview_free(mv);
        score_result_free(&r);
        mv = msgview_new(msg.p, msg.n, false, NULL);
        if (!mv || scorer_run(c->rs, mv, NULL, 0, &r) != 0) {
            fprintf(stderr, "warden: %s: out of memory\n", path);
            c->failed++;
            goto out;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    c->seconds +=
        (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    c->messages++;
    c->bytes += msg.n;
    c->flagged += r.score >= c->threshold;
    if (!c->quiet) {
        score_result_tests(c->rs, &r, tests, sizeof(tests));
        printf("%s: score=%.3f tests=%s\n", path, r.score,
               tests[0] ? tests : "-");
    }
    if (c->verbose)
        print_hits(c, &r);
    if (c->dump)
        dump_view(mv);
out:
    score_result_free(&r);
    msgview_free(mv);
    buf_free(&msg);
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static void score_path(struct cli *c, const char *path)
{
    struct stat st;
    struct dirent **names;
    int n;

    if (stat(path, &st) != 0) {
        fprintf(stderr, "warden: %s: %s\n", path, strerror(errno));
        c->failed++;
        return;
    }
    if (!S_ISDIR(st.st_mode)) {
        score_file(c, path);
        return;
    }
    if ((n = scandir(path, &names, NULL, by_name)) < 0) {
        fprintf(stderr, "warden: %s: %s\n", path, strerror(errno));
        c->failed++;
        return;
    }
    for (int i = 0; i < n; i++) {
        char *f;
        if (names[i]->d_name[0] != '.' &&
            asprintf(&f, "%s/%s", path, names[i]->d_name) > 0) {
            if (stat(f, &st) == 0 && S_ISREG(st.st_mode))
                score_file(c, f);
            free(f);
        }
        free(names[i]);
    }
    free(names);
}

static void list_rules(const struct ruleset *rs)
{
    static const char *const types[RULE__COUNT] = {
        "header", "body",       "rawbody", "uri",
        "full",   "mimeheader", "meta",    "result",
    };

    for (size_t i = 0; i < rs->n; i++) {
        const struct rule *r = &rs->v[i];
        if (r->defined)
            printf("rule %s %s %.3f %s%s\n", types[r->type], r->name, r->score,
                   r->enabled ? "runs" : "off", r->partial ? " partial" : "");
    }
}

static void summary(const struct cli *c)
{
    printf("messages=%zu flagged=%zu (%.1f%%) threshold=%.1f time=%.3fs "
           "rate=%.1f msg/s%s\n",
           c->messages, c->flagged,
           c->messages ? 100.0 * (double)c->flagged / (double)c->messages : 0,
           c->threshold, c->seconds,
           c->seconds > 0 ? (double)(c->messages * c->repeat) / c->seconds : 0,
           c->failed ? " (some files failed)" : "");
}

int score_cli(const char *config_path, int argc, char **argv)
{
    static const struct option opts[] = {
        {"rules", required_argument, NULL, 'r'},
        {"lenient", no_argument, NULL, 'L'},
        {"threshold", required_argument, NULL, 'T'},
        {"verbose", no_argument, NULL, 'v'},
        {"dump", no_argument, NULL, 'D'},
        {"warnings", no_argument, NULL, 'W'},
        {"list", no_argument, NULL, 'l'},
        {"quiet", no_argument, NULL, 'q'},
        {"repeat", required_argument, NULL, 'R'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct cli c = {
        .threshold = -1, .repeat = 1, .max_scan = SCORE_MAX_SCAN_DEFAULT};
    struct errors errs = {0};
    struct strv paths = {0};
    struct config *cfg = NULL;
    struct ruleset *own = NULL;
    unsigned flags = 0;
    bool warnings = false, list = false;
    int ch, rc = 1;

    optind = 0;
    while ((ch = getopt_long(argc, argv, "+vqh", opts, NULL)) != -1) {
        switch (ch) {
        case 'r':
            strv_add(&paths, optarg, strlen(optarg));
            break;
        case 'L':
            flags |= RULES_LENIENT;
            break;
        case 'T':
            c.threshold = strtod(optarg, NULL);
            break;
        case 'v':
            c.verbose = true;
            break;
        case 'D':
            c.dump = true;
            break;
        case 'W':
            warnings = true;
            break;
        case 'l':
            list = true;
            break;
        case 'q':
            c.quiet = true;
            break;
        case 'R':
            c.repeat = (unsigned)strtoul(optarg, NULL, 10);
            if (c.repeat == 0)
                c.repeat = 1;
            break;
        case 'h':
            usage(stdout);
            strv_free(&paths);
            return 0;
        default:
            usage(stderr);
            strv_free(&paths);
            return 2;
        }
    }
    if (optind >= argc && !warnings && !list) {
        usage(stderr);
        strv_free(&paths);
        return 2;
    }
    if (paths.n) {
        c.rs = own = ruleset_load(paths.v, paths.n, flags, &errs);
    } else if (!config_path) {
        fprintf(stderr, "warden: score needs --rules or -c with a scoring "
                        "section\n");
    } else if ((cfg = config_load(config_path, &errs))) {
        const struct score_policy *sp = cfg->policy->scoring;
        if (!sp)
            fprintf(stderr,
                    "warden: %s: no policy file has a scoring "
                    "section\n",
                    config_path);
        else {
            c.rs = sp->rules;
            c.max_scan = sp->max_scan;
            if (c.threshold < 0 && sp->nthresholds && sp->thresholds[0].tag_on)
                c.threshold = sp->thresholds[0].tag;
        }
    }
    errors_print(&errs, stderr);
    if (c.rs) {
        if (c.threshold < 0)
            c.threshold = SCORE_TAG_DEFAULT;
        if (warnings)
            for (size_t i = 0; i < c.rs->warnings.n; i++)
                printf("warning: %s\n", c.rs->warnings.v[i]);
        if (list)
            list_rules(c.rs);
        for (int i = optind; i < argc; i++)
            score_path(&c, argv[i]);
        if (optind < argc)
            summary(&c);
        rc = c.failed ? 1 : 0;
    }
    errors_free(&errs);
    ruleset_free(own);
    config_unref(cfg);
    strv_free(&paths);
    return rc;
}
