/*
 * rules_load: read SpamAssassin-style .cf files into a rule set (see
 * rules.h for what is supported).
 *
 * Lines are read as SpamAssassin reads them: a comment starts at an
 * unescaped "#", "\#" is a literal "#", leading and trailing blanks go.
 * Each directive is a row in the directives[] table. Conditional blocks
 * (if/ifplugin/else/endif) are tracked per file; a block for a plugin
 * Warden does not have is skipped whole. After the last file, finish()
 * gives rules their scores, compiles metas (which may name rules defined
 * later), and orders the work: which rules run, metas after what they
 * read.
 */
#define _GNU_SOURCE /* strndup, getline */
#include "rules.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "log.h"
#include "rules_meta.h"
#include "rules_regex.h"
#include "rules_replace.h"

#define MAX_INCLUDE_DEPTH 16
/* Files read in all: includes repeated in a tree of files would otherwise
 * make the work exponential in the depth. */
#define MAX_FILES_READ 1000
#define MAX_COND_DEPTH 32
#define RULE_NAME_MAX 128
/* What `if (version >= N)` compares against: the SpamAssassin release
 * whose rule syntax this loader follows. */
#define SA_COMPAT_VERSION 4.000000

struct cond {
    bool active; /* lines in this branch are read */
    bool parent; /* the enclosing block is read */
    unsigned line;
};

struct loader {
    struct ruleset *rs;
    struct errors *errs;
    unsigned flags;
    int depth;
    struct { dev_t dev; ino_t ino; } open[MAX_INCLUDE_DEPTH]; /* the stack */
    const char *file; /* the file being read */
    unsigned line;
    struct cond conds[MAX_COND_DEPTH];
    int nconds;
    struct replace_tags *tags; /* ReplaceTags settings, applied at finish */
};

static void load_path(struct loader *l, const char *path);
static void load_file(struct loader *l, const char *path);
static void read_line(struct loader *l, char *s);
static bool conditional(struct loader *l, const char *word, char *args);
static void finish(struct loader *l);

static void d_header(struct loader *l, char *args);
static void d_mimeheader(struct loader *l, char *args);
static void d_body(struct loader *l, char *args);
static void d_rawbody(struct loader *l, char *args);
static void d_uri(struct loader *l, char *args);
static void d_full(struct loader *l, char *args);
static void d_meta(struct loader *l, char *args);
static void d_score(struct loader *l, char *args);
static void d_describe(struct loader *l, char *args);
static void d_tflags(struct loader *l, char *args);
static void d_include(struct loader *l, char *args);

static const struct directive {
    const char *name;
    void (*fn)(struct loader *l, char *args);
} directives[] = {
    {"header", d_header},   {"body", d_body},         {"rawbody", d_rawbody},
    {"uri", d_uri},         {"full", d_full},         {"meta", d_meta},
    {"score", d_score},     {"describe", d_describe}, {"tflags", d_tflags},
    {"include", d_include}, {"mimeheader", d_mimeheader},
};

static const char *const external_names[EXT__COUNT] = {
    [EXT_SPF_PASS] = "WARDEN_SPF_PASS",
    [EXT_SPF_FAIL] = "WARDEN_SPF_FAIL",
    [EXT_SPF_SOFTFAIL] = "WARDEN_SPF_SOFTFAIL",
    [EXT_SPF_NEUTRAL] = "WARDEN_SPF_NEUTRAL",
    [EXT_SPF_NONE] = "WARDEN_SPF_NONE",
    [EXT_SPF_TEMPERROR] = "WARDEN_SPF_TEMPERROR",
    [EXT_SPF_PERMERROR] = "WARDEN_SPF_PERMERROR",
    [EXT_DKIM_PASS] = "WARDEN_DKIM_PASS",
    [EXT_DKIM_FAIL] = "WARDEN_DKIM_FAIL",
    [EXT_DKIM_NONE] = "WARDEN_DKIM_NONE",
    [EXT_DMARC_PASS] = "WARDEN_DMARC_PASS",
    [EXT_DMARC_FAIL] = "WARDEN_DMARC_FAIL",
    [EXT_DMARC_NONE] = "WARDEN_DMARC_NONE",
    [EXT_AUTHENTICATED] = "WARDEN_AUTHENTICATED",
    [EXT_LIMIT_NEAR] = "WARDEN_LIMIT_NEAR",
};

const char *rules_external_name(enum rule_external e)
{
    return e < EXT__COUNT ? external_names[e] : "?";
}

/* ---- messages ---- */

static void error(struct loader *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void skip(struct loader *l, const char *kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void error(struct loader *l, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    errors_add(l->errs, l->file, l->line, "%s", msg);
}

/* Count a skipped line of a kind, and keep its reason. */
static void skip_at(struct ruleset *rs, const char *where, const char *kind,
                    const char *msg)
{
    size_t i;

    errors_add(&rs->warnings, NULL, 0, "%s: %s", where, msg);
    for (i = 0; i < rs->nskips; i++)
        if (strcmp(rs->skips[i].kind, kind) == 0)
            break;
    if (i == rs->nskips) {
        struct rules_skip *v =
            realloc(rs->skips, (rs->nskips + 1) * sizeof(*v));
        if (!v)
            return;
        rs->skips = v;
        memset(&v[i], 0, sizeof(v[i]));
        snprintf(v[i].kind, sizeof(v[i].kind), "%s", kind);
        snprintf(v[i].first, sizeof(v[i].first), "%s", where);
        rs->nskips++;
    }
    rs->skips[i].count++;
}

static void skip(struct loader *l, const char *kind, const char *fmt, ...)
{
    char msg[512], where[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(where, sizeof(where), "%s:%u", l->file, l->line);
    skip_at(l->rs, where, kind, msg);
}

void ruleset_log_summary(const struct ruleset *rs, const char *what)
{
    size_t n[RULE__COUNT] = {0}, skipped = 0;

    for (size_t i = 0; i < rs->n; i++)
        if (rs->v[i].defined && rs->v[i].type != RULE_EXTERNAL)
            n[rs->v[i].type]++;
    for (size_t i = 0; i < rs->nskips; i++) {
        skipped += rs->skips[i].count;
        log_notice("%s: skipped %u line%s: %s (first at %s)", what,
                   rs->skips[i].count, rs->skips[i].count == 1 ? "" : "s",
                   rs->skips[i].kind, rs->skips[i].first);
    }
    size_t in_use = 0;
    for (int t = 0; t < RULE__COUNT; t++)
        in_use += rs->nplan[t];
    log_info("%s: %zu files, rules: %zu header, %zu mimeheader, %zu body, "
             "%zu rawbody, %zu uri, %zu full, %zu meta; %zu in use; %zu "
             "lines skipped",
             what, rs->nfiles, n[RULE_HEADER], n[RULE_MIMEHEADER],
             n[RULE_BODY], n[RULE_RAWBODY], n[RULE_URI], n[RULE_FULL],
             n[RULE_META], in_use, skipped);
}

/* ---- the name table ---- */

static size_t hash_name(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL;

    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return (size_t)h;
}

static long lookup(const struct ruleset *rs, const char *name, size_t len)
{
    if (!rs->nslots)
        return -1;
    for (size_t i = hash_name(name, len) & (rs->nslots - 1);;
         i = (i + 1) & (rs->nslots - 1)) {
        size_t s = rs->slots[i];
        if (s == 0)
            return -1;
        const char *n = rs->v[s - 1].name;
        if (strlen(n) == len && memcmp(n, name, len) == 0)
            return (long)(s - 1);
    }
}

const struct rule *ruleset_find(const struct ruleset *rs, const char *name)
{
    long i = lookup(rs, name, strlen(name));

    return i < 0 ? NULL : &rs->v[i];
}

static void place(struct ruleset *rs, size_t idx)
{
    const char *n = rs->v[idx].name;
    size_t i = hash_name(n, strlen(n)) & (rs->nslots - 1);

    while (rs->slots[i])
        i = (i + 1) & (rs->nslots - 1);
    rs->slots[i] = idx + 1;
}

static int grow_slots(struct ruleset *rs)
{
    size_t n = rs->nslots ? rs->nslots * 2 : 256;
    size_t *s = calloc(n, sizeof(*s));

    if (!s)
        return -1;
    free(rs->slots);
    rs->slots = s;
    rs->nslots = n;
    for (size_t i = 0; i < rs->n; i++)
        place(rs, i);
    return 0;
}

/* The rule called name, created (undefined, unscored) when new. */
static struct rule *entry(struct ruleset *rs, const char *name)
{
    long i = lookup(rs, name, strlen(name));
    struct rule *r;

    if (i >= 0)
        return &rs->v[i];
    if ((rs->n + 1) * 2 > rs->nslots && grow_slots(rs) != 0)
        return NULL;
    if (rs->n == rs->cap) {
        size_t cap = rs->cap ? rs->cap * 2 : 256;
        struct rule *v = realloc(rs->v, cap * sizeof(*v));
        if (!v)
            return NULL;
        rs->v = v;
        rs->cap = cap;
    }
    r = &rs->v[rs->n];
    memset(r, 0, sizeof(*r));
    if (!(r->name = strdup(name)))
        return NULL;
    rs->n++;
    place(rs, rs->n - 1);
    return r;
}

static bool valid_rule_name(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > RULE_NAME_MAX)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_')
            return false;
    return true;
}

/* ---- reading files ---- */

static int cf_filter(const struct dirent *d)
{
    size_t n = strlen(d->d_name);

    return d->d_name[0] != '.' && n > 3 &&
           strcmp(d->d_name + n - 3, ".cf") == 0;
}

/* A directory means its *.cf files, in name order. */
static void load_path(struct loader *l, const char *path)
{
    struct stat st;
    struct dirent **names;
    int n;

    if (stat(path, &st) != 0) {
        error(l, "%s: %s", path, strerror(errno));
        return;
    }
    if (!S_ISDIR(st.st_mode)) {
        load_file(l, path);
        return;
    }
    if ((n = scandir(path, &names, cf_filter, alphasort)) < 0) {
        error(l, "%s: %s", path, strerror(errno));
        return;
    }
    for (int i = 0; i < n; i++) {
        char *f;
        if (asprintf(&f, "%s/%s", path, names[i]->d_name) > 0) {
            load_file(l, f);
            free(f);
        }
        free(names[i]);
    }
    free(names);
}

static void load_file(struct loader *l, const char *path)
{
    const char *file = l->file;
    unsigned line = l->line;
    struct cond conds[MAX_COND_DEPTH];
    int nconds = l->nconds;
    FILE *f;
    char *s = NULL;
    size_t cap = 0;

    struct stat st;

    if (l->depth >= MAX_INCLUDE_DEPTH) {
        error(l, "include nested too deep (an include loop?)");
        return;
    }
    if (l->rs->nfiles >= MAX_FILES_READ) {
        error(l, "more than %d rule files read: includes repeat too much",
              MAX_FILES_READ);
        return;
    }
    if (!(f = fopen(path, "r"))) {
        error(l, "%s: %s", path, strerror(errno));
        return;
    }
    if (fstat(fileno(f), &st) == 0) {
        for (int i = 0; i < l->depth; i++)
            if (l->open[i].dev == st.st_dev && l->open[i].ino == st.st_ino) {
                error(l, "include loop: %s is already being read", path);
                fclose(f);
                return;
            }
        l->open[l->depth].dev = st.st_dev;
        l->open[l->depth].ino = st.st_ino;
    } else {
        l->open[l->depth].dev = 0;
        l->open[l->depth].ino = 0;
    }
    memcpy(conds, l->conds, sizeof(conds));
    l->depth++;
    l->file = path;
    l->line = 0;
    l->nconds = 0;
    l->rs->nfiles++;
    while (getline(&s, &cap, f) > 0) {
        l->line++;
        read_line(l, s);
    }
    if (l->nconds > 0) {
        l->line = l->conds[l->nconds - 1].line;
        error(l, "if/ifplugin without endif");
    }
    free(s);
    fclose(f);
    l->depth--;
    l->file = file;
    l->line = line;
    l->nconds = nconds;
    memcpy(l->conds, conds, sizeof(conds));
}

/* Strip the comment ("\#" is a literal "#") and the blanks around. */
static char *clean_line(char *s)
{
    char *w = s, *end;

    for (char *r = s; *r; r++) {
        if (*r == '#' && (r == s || r[-1] != '\\'))
            break;
        if (*r == '\\' && r[1] == '#')
            continue; /* the "#" is copied next */
        *w++ = *r;
    }
    *w = '\0';
    while (isspace((unsigned char)*s))
        s++;
    end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1]))
        *--end = '\0';
    return s;
}

static bool reading(const struct loader *l)
{
    return l->nconds == 0 || l->conds[l->nconds - 1].active;
}

static void read_line(struct loader *l, char *s)
{
    char *word, *args;
    size_t wl;

    s = clean_line(s);
    if (!*s)
        return;
    wl = strcspn(s, " \t");
    word = s;
    args = s + wl;
    args += strspn(args, " \t");
    word[wl] = '\0';
    for (char *p = word; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    if (conditional(l, word, args) || !reading(l))
        return;
    for (size_t i = 0; i < sizeof(directives) / sizeof(directives[0]); i++) {
        if (strcmp(directives[i].name, word) == 0) {
            directives[i].fn(l, args);
            return;
        }
    }
    if (replace_is_directive(word)) {
        char err[256];
        if (replace_directive(l->tags, word, args, err, sizeof(err)) != 0)
            error(l, "%s", err);
        return;
    }
    skip(l, word, "%s: not supported by Warden", word);
}

/* ---- if / ifplugin / else / endif ---- */

/* The plugins whose settings and rules Warden reads: ReplaceTags (its
 * settings rewrite patterns, see rules_replace.h) and MIMEHeader (the
 * mimeheader rule type). Other plugins' blocks hold eval tests and
 * settings of code Warden does not run. */
static bool have_plugin(const char *name)
{
    return strcmp(name, "Mail::SpamAssassin::Plugin::ReplaceTags") == 0 ||
           strcmp(name, "Mail::SpamAssassin::Plugin::MIMEHeader") == 0;
}

/* Features of SpamAssassin's Conf that Warden's reading has. */
static bool have_feature(const char *name)
{
    static const char *const features[] = {
        "Mail::SpamAssassin::Conf::feature_bug6558_free",
        "Mail::SpamAssassin::Conf::perl_min_version_5010000",
        "Mail::SpamAssassin::Conf::feature_welcomelist_blocklist",
        NULL,
    };
    for (size_t i = 0; features[i]; i++)
        if (strcmp(features[i], name) == 0)
            return true;
    return false;
}

struct cond_expr {
    const char *p;
    bool bad;
};

static bool cond_or(struct cond_expr *e);

static void cond_space(struct cond_expr *e)
{
    while (isspace((unsigned char)*e->p))
        e->p++;
}

static bool cond_word(struct cond_expr *e, const char *w)
{
    size_t n = strlen(w);

    cond_space(e);
    if (strncmp(e->p, w, n) != 0)
        return false;
    e->p += n;
    return true;
}

/* can(NAME), plugin(NAME), has(NAME): the name up to ")". */
static bool cond_call(struct cond_expr *e, bool (*have)(const char *))
{
    const char *end;
    char name[200];

    cond_space(e);
    if (*e->p != '(' || !(end = strchr(e->p, ')'))) {
        e->bad = true;
        return false;
    }
    snprintf(name, sizeof(name), "%.*s", (int)(end - e->p - 1), e->p + 1);
    e->p = end + 1;
    return have(name);
}

static bool cond_version(struct cond_expr *e)
{
    static const char *const ops[] = {">=", "<=", "==", "!=", ">", "<"};
    double v;
    char *end;

    cond_space(e);
    for (size_t i = 0; i < 6; i++) {
        if (!cond_word(e, ops[i]))
            continue;
        v = strtod(e->p, &end);
        if (end == e->p)
            break;
        e->p = end;
        switch (i) {
        case 0:
            return SA_COMPAT_VERSION >= v;
        case 1:
            return SA_COMPAT_VERSION <= v;
        case 2:
            return SA_COMPAT_VERSION == v;
        case 3:
            return SA_COMPAT_VERSION != v;
        case 4:
            return SA_COMPAT_VERSION > v;
        default:
            return SA_COMPAT_VERSION < v;
        }
    }
    e->bad = true;
    return false;
}

static bool cond_term(struct cond_expr *e)
{
    if (cond_word(e, "!"))
        return !cond_term(e);
    if (cond_word(e, "(")) {
        bool v = cond_or(e);
        if (!cond_word(e, ")"))
            e->bad = true;
        return v;
    }
    if (cond_word(e, "version"))
        return cond_version(e);
    if (cond_word(e, "plugin"))
        return cond_call(e, have_plugin);
    if (cond_word(e, "can") || cond_word(e, "has"))
        return cond_call(e, have_feature);
    e->bad = true;
    return false;
}

static bool cond_or(struct cond_expr *e)
{
    bool v = cond_term(e);

    while (!e->bad) {
        if (cond_word(e, "&&"))
            v = cond_term(e) && v;
        else if (cond_word(e, "||"))
            v = cond_term(e) || v;
        else
            break;
    }
    return v;
}

static void push_cond(struct loader *l, bool active)
{
    bool parent = reading(l);

    if (l->nconds == MAX_COND_DEPTH) {
        error(l, "if/ifplugin nested too deep");
        return;
    }
    l->conds[l->nconds++] = (struct cond){parent && active, parent, l->line};
}

/* Returns true when the line was a conditional (handled here). */
static bool conditional(struct loader *l, const char *word, char *args)
{
    if (strcmp(word, "ifplugin") == 0) {
        bool have = have_plugin(args);
        if (!have && reading(l))
            skip(l, "ifplugin block (plugin not in Warden)",
                 "ifplugin %s: Warden has no such plugin; block skipped", args);
        push_cond(l, have);
    } else if (strcmp(word, "if") == 0) {
        struct cond_expr e = {args, false};
        bool v = cond_or(&e);
        cond_space(&e);
        if (e.bad || *e.p) {
            if (reading(l))
                skip(l, "if block (condition not understood)",
                     "if %s: condition not understood; block skipped", args);
            v = false;
        }
        push_cond(l, v);
    } else if (strcmp(word, "else") == 0) {
        if (l->nconds == 0) {
            error(l, "else without if");
            return true;
        }
        struct cond *c = &l->conds[l->nconds - 1];
        c->active = c->parent && !c->active;
    } else if (strcmp(word, "endif") == 0) {
        if (l->nconds == 0)
            error(l, "endif without if");
        else
            l->nconds--;
    } else {
        return false;
    }
    return true;
}

/* ---- rule definitions ---- */

/* Split "NAME rest": NAME is validated, *rest points past the blanks. */
static bool split_name(struct loader *l, char *args, const char *what,
                       char **name, char **rest)
{
    size_t n = strcspn(args, " \t");

    *name = args;
    *rest = args + n + strspn(args + n, " \t");
    if (args[n])
        args[n] = '\0';
    if (!valid_rule_name(*name)) {
        error(l, "%s: \"%.60s\" is not a rule name (letters, digits, _)", what,
              *name);
        return false;
    }
    return true;
}

/* Clear what a previous definition of r left (a later one wins, as in
 * SpamAssassin); its score, describe and tflags stay. */
static void undefine(struct rule *r)
{
    rx_free(r->rx);
    r->rx = NULL;
    meta_free(r->meta);
    r->meta = NULL;
    free(r->expr);
    r->expr = NULL;
    free(r->if_unset);
    r->if_unset = NULL;
    free(r->literal);
    r->literal = NULL;
    r->negate = r->exists = false;
}

static struct rule *define(struct loader *l, const char *name,
                           enum rule_type type)
{
    struct rule *r = entry(l->rs, name);

    if (!r) {
        error(l, "out of memory");
        return NULL;
    }
    if (r->type == RULE_EXTERNAL && r->defined) {
        error(l,
              "%s is the result of a Warden check; it cannot be "
              "redefined (give it a score instead)",
              name);
        return NULL;
    }
    undefine(r);
    r->type = type;
    r->defined = true;
    snprintf(r->where, sizeof(r->where), "%s:%u", l->file, l->line);
    return r;
}

/* A rule line we cannot define: an eval: test and the like. */
static bool unsupported_test(struct loader *l, const char *dir,
                             const char *name, const char *rest)
{
    static const char *const kinds[] = {"eval:", "rbleval:", "check_", NULL};
    for (size_t i = 0; kinds[i]; i++) {
        if (strncmp(rest, kinds[i], strlen(kinds[i])) == 0) {
            skip(l, "eval tests (code, not a pattern)",
                 "%s %s: %.*s tests are not supported", dir, name,
                 (int)strcspn(rest, "("), rest);
            return true;
        }
    }
    return false;
}

/* Compile a rule's regex; a bad one is an error (lenient: a skip). */
static struct rx *rule_regex(struct loader *l, const char *dir,
                             const char *name, const char *lit)
{
    char err[256];
    struct rx *rx = rx_compile(lit, err, sizeof(err));

    if (rx)
        return rx;
    if (l->flags & RULES_LENIENT)
        skip(l, "regex PCRE2 does not take", "%s %s: %s", dir, name, err);
    else
        error(l, "%s %s: %s", dir, name, err);
    return NULL;
}

static void pattern_rule(struct loader *l, char *args, const char *dir,
                         enum rule_type type)
{
    char *name, *rest;
    struct rx *rx;
    struct rule *r;

    if (!split_name(l, args, dir, &name, &rest))
        return;
    if (unsupported_test(l, dir, name, rest))
        return;
    if (!*rest) {
        error(l, "%s %s: no pattern", dir, name);
        return;
    }
    if (!(rx = rule_regex(l, dir, name, rest)))
        return;
    if (!(r = define(l, name, type))) {
        rx_free(rx);
        return;
    }
    r->rx = rx;
    r->literal = strdup(rest);
}

static void d_body(struct loader *l, char *args)
{
    pattern_rule(l, args, "body", RULE_BODY);
}

static void d_rawbody(struct loader *l, char *args)
{
    pattern_rule(l, args, "rawbody", RULE_RAWBODY);
}

static void d_uri(struct loader *l, char *args)
{
    pattern_rule(l, args, "uri", RULE_URI);
}

static void d_full(struct loader *l, char *args)
{
    pattern_rule(l, args, "full", RULE_FULL);
}

/* The index of (field, mod) in the set's header keys, added when new. */
static long header_key(struct ruleset *rs, const char *field,
                       enum header_mod mod)
{
    struct header_key *v;

    for (size_t i = 0; i < rs->nhkeys; i++)
        if (rs->hkeys[i].mod == mod &&
            strcasecmp(rs->hkeys[i].field, field) == 0)
            return (long)i;
    if (!(v = realloc(rs->hkeys, (rs->nhkeys + 1) * sizeof(*v))))
        return -1;
    rs->hkeys = v;
    if (!(v[rs->nhkeys].field = strdup(field)))
        return -1;
    v[rs->nhkeys].mod = mod;
    return (long)rs->nhkeys++;
}

/* Fields SpamAssassin makes up from its own analysis of Received lines:
 * Warden does not compute them, and "!~" on an empty one would hit. */
static bool pseudo_field(const char *field)
{
    return strncasecmp(field, "X-Spam-Relays-", 14) == 0 ||
           strncasecmp(field, "ALL-", 4) == 0 ||
           strcasecmp(field, "X-Spam-DKIM") == 0 ||
           strcasecmp(field, "X-Spam-Rule") == 0;
}

/* "Field:mod" -> field and mod; false (skipped) for a modifier or pseudo
 * field Warden does not have. */
static bool header_field(struct loader *l, const char *dir, const char *name,
                         char *field, enum header_mod *mod)
{
    static const struct {
        const char *name;
        enum header_mod mod;
    } mods[] = {{"raw", HDR_RAW}, {"addr", HDR_ADDR}, {"name", HDR_NAME}};
    char *colon = strchr(field, ':');

    *mod = HDR_DECODED;
    if (colon) {
        *colon = '\0';
        size_t i;
        /* mimeheader has only :raw */
        size_t nmods = strcmp(dir, "header") == 0 ? 3 : 1;
        for (i = 0; i < nmods && strcmp(mods[i].name, colon + 1) != 0; i++)
            ;
        if (i == nmods) {
            skip(l, "header field modifier", "%s %s: :%s is not supported",
                 dir, name, colon + 1);
            return false;
        }
        *mod = mods[i].mod;
    }
    if (pseudo_field(field)) {
        skip(l, "header pseudo-field Warden does not compute",
             "%s %s: %s is made by SpamAssassin's relay analysis", dir, name,
             field);
        return false;
    }
    return true;
}

/* Take " [if-unset: TEXT]" off the end of s. */
static char *if_unset(char *s)
{
    size_t n = strlen(s);
    char *open;

    if (n == 0 || s[n - 1] != ']' || !(open = strstr(s, "[if-unset:")))
        return NULL;
    while (strstr(open + 1, "[if-unset:"))
        open = strstr(open + 1, "[if-unset:");
    char *v = open + 10;
    v += strspn(v, " \t");
    char *val = strndup(v, (size_t)(s + n - 1 - v));
    while (open > s && isspace((unsigned char)open[-1]))
        open--;
    *open = '\0';
    return val;
}

/* header NAME Field =~ /re/, Field !~ /re/, exists:Field, eval:...; and
 * the same for mimeheader */
static void header_rule(struct loader *l, char *args, const char *dir,
                        enum rule_type type)
{
    char *name, *rest, *field, *op, *unset;
    enum header_mod mod;
    struct rule *r;
    struct rx *rx;
    long key;
    bool negate;

    if (!split_name(l, args, dir, &name, &rest) ||
        unsupported_test(l, dir, name, rest))
        return;
    if (strncmp(rest, "exists:", 7) == 0) {
        field = rest + 7;
        if (!*field || strcspn(field, " \t:") != strlen(field)) {
            error(l, "%s %s: exists: takes one field name", dir, name);
            return;
        }
        if (!header_field(l, dir, name, field, &mod) ||
            (key = header_key(l->rs, field, HDR_RAW)) < 0 ||
            !(r = define(l, name, type)))
            return;
        r->exists = true;
        r->hkey = (size_t)key;
        return;
    }
    field = rest;
    op = rest + strcspn(rest, " \t=!");
    rest = op + strspn(op, " \t");
    if ((rest[0] != '=' && rest[0] != '!') || rest[1] != '~') {
        error(l, "%s %s: expected Field =~ /regex/ or Field !~ /regex/", dir,
              name);
        return;
    }
    negate = rest[0] == '!';
    *op = '\0';
    rest += 2;
    rest += strspn(rest, " \t");
    unset = if_unset(rest);
    if (!*field || !header_field(l, dir, name, field, &mod) ||
        !(rx = rule_regex(l, dir, name, rest))) {
        if (!*field)
            error(l, "%s %s: no field name", dir, name);
        free(unset);
        return;
    }
    if ((key = header_key(l->rs, field, mod)) < 0 ||
        !(r = define(l, name, type))) {
        rx_free(rx);
        free(unset);
        return;
    }
    r->rx = rx;
    r->literal = strdup(rest);
    r->negate = negate;
    r->if_unset = unset;
    r->hkey = (size_t)key;
}

static void d_header(struct loader *l, char *args)
{
    header_rule(l, args, "header", RULE_HEADER);
}

static void d_mimeheader(struct loader *l, char *args)
{
    header_rule(l, args, "mimeheader", RULE_MIMEHEADER);
}

static void d_meta(struct loader *l, char *args)
{
    char *name, *rest;
    struct rule *r;

    if (!split_name(l, args, "meta", &name, &rest))
        return;
    if (!*rest) {
        error(l, "meta %s: no expression", name);
        return;
    }
    if (!(r = define(l, name, RULE_META)))
        return;
    if (!(r->expr = strdup(rest)))
        error(l, "out of memory");
}

/* score NAME n [n n n]: the first of the four score sets is the one
 * without Bayes and network tests, which is what Warden runs. */
static void d_score(struct loader *l, char *args)
{
    char *name, *rest, *end;
    struct rule *r;
    double v;

    if (!split_name(l, args, "score", &name, &rest))
        return;
    if (*rest == '(')
        rest++; /* "score X (1.0)": SpamAssassin's parentheses */
    v = strtod(rest, &end);
    if (end == rest || (*end && !isspace((unsigned char)*end) && *end != ')')) {
        error(l, "score %s: \"%s\" is not a number", name, rest);
        return;
    }
    if (!(r = entry(l->rs, name))) {
        error(l, "out of memory");
        return;
    }
    r->score = v;
    r->has_score = true;
    snprintf(r->score_where, sizeof(r->score_where), "%s:%u", l->file,
             l->line);
}

static void d_describe(struct loader *l, char *args)
{
    char *name, *rest;
    struct rule *r;

    if (!split_name(l, args, "describe", &name, &rest))
        return;
    if (!(r = entry(l->rs, name))) {
        error(l, "out of memory");
        return;
    }
    free(r->describe);
    r->describe = strdup(rest);
}

/* tflags NAME flag...: nice, multiple and maxhits=N change scoring; the
 * others (learn, net, publish, ...) are for SpamAssassin's own tools. */
static void d_tflags(struct loader *l, char *args)
{
    char *name, *rest, *tok, *save = NULL;
    struct rule *r;

    if (!split_name(l, args, "tflags", &name, &rest))
        return;
    if (!(r = entry(l->rs, name))) {
        error(l, "out of memory");
        return;
    }
    r->tflags = 0;
    r->maxhits = 0;
    for (tok = strtok_r(rest, " \t", &save); tok;
         tok = strtok_r(NULL, " \t", &save)) {
        if (strcmp(tok, "nice") == 0) {
            r->tflags |= RULE_NICE;
        } else if (strcmp(tok, "multiple") == 0) {
            r->tflags |= RULE_MULTIPLE;
        } else if (strncmp(tok, "maxhits=", 8) == 0) {
            char *end;
            unsigned long n = strtoul(tok + 8, &end, 10);
            if (*end || n == 0 || n > 100000) {
                error(l, "tflags %s: bad %s", name, tok);
                continue;
            }
            r->maxhits = (unsigned)n;
            r->tflags |= RULE_MULTIPLE;
        }
    }
}

static void d_include(struct loader *l, char *args)
{
    char *path;

    if (!*args) {
        error(l, "include: no file named");
        return;
    }
    if (args[0] == '/') {
        path = strdup(args);
    } else {
        const char *slash = strrchr(l->file, '/');
        if (asprintf(&path, "%.*s%s", slash ? (int)(slash - l->file + 1) : 0,
                     l->file, args) < 0)
            path = NULL;
    }
    if (!path) {
        error(l, "out of memory");
        return;
    }
    load_path(l, path);
    free(path);
}

/* ---- after the last file ---- */

struct resolve_ctx {
    struct loader *l;
    struct rule *r;
};

static long resolve(void *arg, const char *name, size_t len)
{
    struct resolve_ctx *c = arg;
    long i = lookup(c->l->rs, name, len);

    if (i >= 0 && c->l->rs->v[i].defined)
        return i;
    /* SpamAssassin's metas name eval tests and plugin rules: they count
     * as "did not hit" here, as when the plugin is not loaded */
    char msg[300];
    snprintf(msg, sizeof(msg), "meta %s: %.*s is not a rule here; counts 0",
             c->r->name, (int)len, name);
    skip_at(c->l->rs, c->r->where, "meta names a rule not loaded", msg);
    c->r->partial = true;
    return -1;
}

static void compile_metas(struct loader *l)
{
    char err[256];

    for (size_t i = 0; i < l->rs->n; i++) {
        struct rule *r = &l->rs->v[i];
        struct resolve_ctx c = {l, r};
        if (!r->defined || r->type != RULE_META)
            continue;
        r->meta = meta_compile(r->expr, resolve, &c, err, sizeof(err));
        if (r->meta)
            continue;
        if (l->flags & RULES_LENIENT) {
            char msg[400];
            snprintf(msg, sizeof(msg), "meta %s: %s", r->name, err);
            skip_at(l->rs, r->where, "meta that does not parse", msg);
            r->defined = false;
        } else {
            errors_add(l->errs, NULL, 0, "%s: meta %s: %s", r->where, r->name,
                       err);
        }
    }
}

/* SpamAssassin's defaults: 1 point, none for "__" sub-rules, a token one
 * for "T_" rules in testing. */
static void default_scores(struct ruleset *rs)
{
    for (size_t i = 0; i < rs->n; i++) {
        struct rule *r = &rs->v[i];
        if (r->has_score || !r->defined)
            continue;
        if (r->type == RULE_EXTERNAL || strncmp(r->name, "__", 2) == 0)
            r->score = 0;
        else if (strncmp(r->name, "T_", 2) == 0)
            r->score = 0.01;
        else
            r->score = 1.0;
    }
}

static void check_scores(struct loader *l)
{
    struct ruleset *rs = l->rs;

    for (size_t i = 0; i < rs->n; i++) {
        struct rule *r = &rs->v[i];
        char msg[300];
        if (!r->defined && r->has_score) {
            snprintf(msg, sizeof(msg), "score %s: no such rule here", r->name);
            skip_at(rs, "(scores)", "score for a rule not loaded", msg);
        } else if (r->defined && r->score < 0 && !(r->tflags & RULE_NICE)) {
            /* what such a rule matches is let through: a typo'd minus
             * would whitelist spam, so it must be meant */
            snprintf(msg, sizeof(msg),
                     "score %s %g: negative, but %s has no \"tflags %s "
                     "nice\"",
                     r->name, r->score, r->name, r->name);
            if (l->flags & RULES_LENIENT) {
                skip_at(rs, r->score_where, "negative score without nice",
                        msg);
                r->score = 0;
            } else {
                errors_add(l->errs, NULL, 0, "%s: %s", r->score_where, msg);
            }
        }
    }
}

/* Mark r and what its meta reads as needed. */
static void enable(struct ruleset *rs, struct rule *r)
{
    const long *deps;
    size_t n;

    if (r->enabled)
        return;
    r->enabled = true;
    if (r->type != RULE_META || !r->meta)
        return;
    n = meta_deps(r->meta, &deps);
    for (size_t i = 0; i < n; i++)
        enable(rs, &rs->v[deps[i]]);
}

/* Depth-first order of metas: what a meta reads comes before it. */
enum { WHITE, GREY, BLACK };

static bool order_meta(struct loader *l, size_t i, unsigned char *mark)
{
    struct ruleset *rs = l->rs;
    struct rule *r = &rs->v[i];
    const long *deps;
    size_t n;

    if (mark[i] == BLACK)
        return true;
    if (mark[i] == GREY) {
        errors_add(l->errs, NULL, 0,
                   "%s: meta %s: refers to itself through "
                   "other metas (a loop)",
                   r->where, r->name);
        return false;
    }
    mark[i] = GREY;
    n = meta_deps(r->meta, &deps);
    for (size_t d = 0; d < n; d++) {
        struct rule *dep = &rs->v[deps[d]];
        if (dep->type == RULE_META && dep->meta &&
            !order_meta(l, (size_t)deps[d], mark))
            return false;
    }
    mark[i] = BLACK;
    rs->plan[RULE_META][rs->nplan[RULE_META]++] = i;
    return true;
}

static void plan(struct loader *l)
{
    struct ruleset *rs = l->rs;
    unsigned char *mark = calloc(rs->n ? rs->n : 1, 1);

    for (int t = 0; t < RULE__COUNT; t++) {
        rs->plan[t] = calloc(rs->n ? rs->n : 1, sizeof(size_t));
        if (!rs->plan[t] || !mark) {
            errors_add(l->errs, NULL, 0, "rules: out of memory");
            free(mark);
            return;
        }
    }
    for (size_t i = 0; i < rs->n; i++) {
        struct rule *r = &rs->v[i];
        if (r->defined && r->score != 0 && (r->type != RULE_META || r->meta))
            enable(rs, r);
    }
    for (size_t i = 0; i < rs->n; i++) {
        struct rule *r = &rs->v[i];
        if (!r->enabled || !r->defined)
            continue;
        if (r->type == RULE_META) {
            if (r->meta && !order_meta(l, i, mark))
                break;
        } else {
            rs->plan[r->type][rs->nplan[r->type]++] = i;
        }
    }
    free(mark);
}

/* A meta that reads a partial meta is partial too. */
static void spread_partial(struct ruleset *rs)
{
    for (bool changed = true; changed;) {
        changed = false;
        for (size_t i = 0; i < rs->n; i++) {
            struct rule *r = &rs->v[i];
            const long *deps;
            if (r->partial || r->type != RULE_META || !r->meta)
                continue;
            size_t n = meta_deps(r->meta, &deps);
            for (size_t d = 0; d < n && !r->partial; d++)
                if (rs->v[deps[d]].partial)
                    r->partial = changed = true;
        }
    }
}

/* Rewrite the patterns replace_rules names with their tags, and drop the
 * literals, which only loading needed. */
static void replace_tags(struct loader *l)
{
    char err[256], warn[256], msg[600];

    for (size_t i = 0; i < l->rs->n; i++) {
        struct rule *r = &l->rs->v[i];
        char *lit = r->literal, *expanded;
        struct rx *rx = NULL;
        bool too_large = false;

        r->literal = NULL;
        if (!lit || !r->rx || !replace_wants(l->tags, r->name)) {
            free(lit);
            continue;
        }
        expanded = replace_expand(l->tags, lit, err, sizeof(err), warn,
                                  sizeof(warn));
        if (expanded)
            rx = rx_compile_sized(expanded, err, sizeof(err), &too_large);
        free(expanded);
        free(lit);
        if (*warn) {
            snprintf(msg, sizeof(msg), "%s: %s", r->name, warn);
            skip_at(l->rs, r->where, "ReplaceTags setting not defined", msg);
        }
        if (rx) {
            rx_free(r->rx);
            r->rx = rx;
        } else if ((l->flags & RULES_LENIENT) || too_large) {
            /* PCRE2 caps a compiled pattern at 64 KB; Perl has no cap, and
             * some of SpamAssassin's tagged patterns are bigger */
            snprintf(msg, sizeof(msg), "%s (with its tags): %s", r->name, err);
            skip_at(l->rs, r->where, "regex PCRE2 does not take", msg);
            r->defined = false;
        } else {
            errors_add(l->errs, NULL, 0, "%s: %s (with its tags): %s",
                       r->where, r->name, err);
        }
    }
}

static void finish(struct loader *l)
{
    replace_tags(l);
    compile_metas(l);
    spread_partial(l->rs);
    default_scores(l->rs);
    check_scores(l);
    plan(l);
}

/* ---- the set ---- */

static void add_externals(struct loader *l)
{
    for (int e = 0; e < EXT__COUNT; e++) {
        struct rule *r = entry(l->rs, external_names[e]);
        if (!r) {
            errors_add(l->errs, NULL, 0, "rules: out of memory");
            return;
        }
        r->type = RULE_EXTERNAL;
        r->defined = true;
        r->ext = (enum rule_external)e;
        snprintf(r->where, sizeof(r->where), "(Warden)");
        l->rs->ext_rule[e] = (long)(r - l->rs->v);
    }
}

struct ruleset *ruleset_load(char *const *paths, size_t npaths, unsigned flags,
                             struct errors *errs)
{
    struct ruleset *rs = calloc(1, sizeof(*rs));
    struct loader l = {.rs = rs, .errs = errs, .flags = flags};
    size_t before = errs->n;

    if (!rs) {
        errors_add(errs, NULL, 0, "rules: out of memory");
        return NULL;
    }
    if (!(l.tags = replace_new())) {
        errors_add(errs, NULL, 0, "rules: out of memory");
        free(rs);
        return NULL;
    }
    add_externals(&l);
    for (size_t i = 0; i < npaths; i++) {
        l.file = NULL;
        l.line = 0;
        load_path(&l, paths[i]);
    }
    finish(&l); /* even after errors: report the metas' too */
    replace_free(l.tags);
    if (errs->n != before) {
        ruleset_free(rs);
        return NULL;
    }
    return rs;
}

void ruleset_free(struct ruleset *rs)
{
    if (!rs)
        return;
    for (size_t i = 0; i < rs->n; i++) {
        undefine(&rs->v[i]);
        free(rs->v[i].name);
        free(rs->v[i].describe);
    }
    free(rs->v);
    free(rs->slots);
    for (size_t i = 0; i < rs->nhkeys; i++)
        free(rs->hkeys[i].field);
    free(rs->hkeys);
    for (int t = 0; t < RULE__COUNT; t++)
        free(rs->plan[t]);
    errors_free(&rs->warnings);
    free(rs->skips);
    free(rs);
}
