/*
 * rules_replace: see rules_replace.h.
 */
#include "rules_replace.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strv.h"

/* Tags inside tag values, inside tag values...: a loop would never end. */
#define MAX_NESTING 8

enum tag_kind { TAG, PRE, INTER, POST, TAG__COUNT };

static const char *const kind_words[TAG__COUNT] = {
    [TAG] = "replace_tag",
    [PRE] = "replace_pre",
    [INTER] = "replace_inter",
    [POST] = "replace_post",
};

/* Each kind: names, and the values at the same index. */
struct replace_tags {
    struct strv names[TAG__COUNT], values[TAG__COUNT];
    struct strv rules;
    char *start, *end;
};

struct replace_tags *replace_new(void)
{
    struct replace_tags *t = calloc(1, sizeof(*t));

    if (t && (!(t->start = strdup("<")) || !(t->end = strdup(">")))) {
        replace_free(t);
        return NULL;
    }
    return t;
}

void replace_free(struct replace_tags *t)
{
    if (!t)
        return;
    for (int k = 0; k < TAG__COUNT; k++) {
        strv_free(&t->names[k]);
        strv_free(&t->values[k]);
    }
    strv_free(&t->rules);
    free(t->start);
    free(t->end);
    free(t);
}

bool replace_is_directive(const char *word)
{
    if (strncmp(word, "replace_", 8) != 0)
        return false;
    word += 8;
    return strcmp(word, "start") == 0 || strcmp(word, "end") == 0 ||
           strcmp(word, "tag") == 0 || strcmp(word, "pre") == 0 ||
           strcmp(word, "inter") == 0 || strcmp(word, "post") == 0 ||
           strcmp(word, "rules") == 0;
}

static long find(const struct strv *sv, const char *s, size_t n)
{
    for (size_t i = sv->n; i-- > 0;) /* the latest definition wins */
        if (sv->len[i] == n && memcmp(sv->v[i], s, n) == 0)
            return (long)i;
    return -1;
}

static bool name_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '_';
}

static int set_delimiter(char **where, const char *word, const char *args,
                         char *err, size_t errlen)
{
    size_t n = strcspn(args, " \t");
    char *s;

    if (n == 0 || args[n + strspn(args + n, " \t")] != '\0') {
        snprintf(err, errlen, "%s: expected one delimiter", word);
        return -1;
    }
    if (!(s = strndup(args, n))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    free(*where);
    *where = s;
    return 0;
}

static int add_rules(struct replace_tags *t, const char *args, char *err,
                     size_t errlen)
{
    if (!*args) {
        snprintf(err, errlen, "replace_rules: no rule named");
        return -1;
    }
    while (*args) {
        size_t n = strcspn(args, " \t");
        if (strv_add_unique(&t->rules, args, n) != 0) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        args += n;
        args += strspn(args, " \t");
    }
    return 0;
}

int replace_directive(struct replace_tags *t, const char *word,
                      const char *args, char *err, size_t errlen)
{
    size_t n;

    if (strcmp(word, "replace_start") == 0)
        return set_delimiter(&t->start, word, args, err, errlen);
    if (strcmp(word, "replace_end") == 0)
        return set_delimiter(&t->end, word, args, err, errlen);
    if (strcmp(word, "replace_rules") == 0)
        return add_rules(t, args, err, errlen);
    for (int k = 0; k < TAG__COUNT; k++) {
        if (strcmp(word, kind_words[k]) != 0)
            continue;
        n = strcspn(args, " \t");
        for (size_t i = 0; i < n; i++) {
            if (!name_char(args[i])) {
                snprintf(err, errlen, "%s: bad name \"%.*s\"", word, (int)n,
                         args);
                return -1;
            }
        }
        const char *value = args + n + strspn(args + n, " \t");
        if (n == 0 || !*value) {
            snprintf(err, errlen, "%s: expected a name and a regex", word);
            return -1;
        }
        if (strv_add(&t->names[k], args, n) != 0 ||
            strv_add(&t->values[k], value, strlen(value)) != 0) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        return 0;
    }
    snprintf(err, errlen, "%s: not a ReplaceTags setting", word);
    return -1;
}

bool replace_wants(const struct replace_tags *t, const char *rule)
{
    return find(&t->rules, rule, strlen(rule)) >= 0;
}

/* ---- rewriting ---- */

struct expansion {
    const struct replace_tags *t;
    const char *pre, *inter, *post; /* the current ones, "" if none */
    char *err;
    size_t errlen;
    char *warn; /* the first <pre|inter|post NAME> with no NAME */
    size_t warnlen;
};

/* At p: "<NAME>" or "<kind NAME>". Sets the reference's length, the kind
 * and the name; false when p holds no reference. */
static bool reference(const struct replace_tags *t, const char *p, size_t *len,
                      int *kind, const char **name, size_t *name_len)
{
    static const char *const prefixes[TAG__COUNT] = {
        [PRE] = "pre ", [INTER] = "inter ", [POST] = "post "};
    size_t sl = strlen(t->start), el = strlen(t->end), n;
    const char *q;

    if (strncmp(p, t->start, sl) != 0)
        return false;
    q = p + sl;
    *kind = TAG;
    for (int k = PRE; k < TAG__COUNT; k++) {
        size_t pl = strlen(prefixes[k]);
        if (strncmp(q, prefixes[k], pl) == 0) {
            *kind = k;
            q += pl;
            break;
        }
    }
    for (n = 0; name_char(q[n]); n++)
        ;
    if (n == 0 || strncmp(q + n, t->end, el) != 0)
        return false;
    *name = q;
    *name_len = n;
    *len = (size_t)(q + n + el - p);
    return true;
}

/* The value of a name of a kind, or NULL. */
static const char *value_of(const struct replace_tags *t, int kind,
                            const char *name, size_t n)
{
    long i = find(&t->names[kind], name, n);
    return i < 0 ? NULL : t->values[kind].v[i];
}

static int expand(struct expansion *x, const char *p, int depth,
                  struct buf *out);

/* One tag: pre, the value as a group (its own tags replaced), post. */
static int put_tag(struct expansion *x, const char *value, int depth,
                   struct buf *out)
{
    if (depth >= MAX_NESTING) {
        snprintf(x->err, x->errlen, "tags nested more than %d deep",
                 MAX_NESTING);
        return -1;
    }
    /* inside a value, tags stand alone: no pre, inter or post */
    struct expansion inner = {x->t,   "",        "",      "",
                              x->err, x->errlen, x->warn, x->warnlen};
    if (buf_add(out, x->pre, strlen(x->pre)) != 0 ||
        buf_add(out, "(?:", 3) != 0 || expand(&inner, value, depth + 1, out) ||
        buf_addc(out, ')') != 0 || buf_add(out, x->post, strlen(x->post)))
        return -1;
    return 0;
}

static int expand(struct expansion *x, const char *p, int depth,
                  struct buf *out)
{
    bool after_tag = false; /* the last thing written was a tag */

    while (*p) {
        size_t len = 0, nl = 0;
        int kind = TAG;
        const char *name = NULL, *v = NULL;
        bool ref = reference(x->t, p, &len, &kind, &name, &nl);

        if (ref)
            v = value_of(x->t, kind, name, nl);
        if (!v && ref && kind != TAG) {
            /* as SpamAssassin: an undefined one adds nothing */
            if (!*x->warn)
                snprintf(x->warn, x->warnlen, "%s %.*s is not defined",
                         kind_words[kind], (int)nl, name);
            v = "";
        }
        if (!v) {
            if (buf_addc(out, *p++) != 0)
                return -1;
            after_tag = false;
            continue;
        }
        p += len;
        switch (kind) {
        case PRE:
            x->pre = v;
            break;
        case INTER:
            x->inter = v;
            break;
        case POST:
            x->post = v;
            break;
        default:
            if (after_tag && buf_add(out, x->inter, strlen(x->inter)) != 0)
                return -1;
            if (put_tag(x, v, depth, out) != 0)
                return -1;
            after_tag = true;
            continue;
        }
        after_tag = false; /* a setting between two tags separates them */
    }
    return 0;
}

char *replace_expand(const struct replace_tags *t, const char *pattern,
                     char *err, size_t errlen, char *warn, size_t warnlen)
{
    struct expansion x = {t, "", "", "", err, errlen, warn, warnlen};
    struct buf out = {0};

    if (errlen > 0)
        err[0] = '\0';
    if (warnlen > 0)
        warn[0] = '\0';

    if (expand(&x, pattern, 0, &out) != 0 || buf_addc(&out, '\0') != 0) {
        if (!*err)
            snprintf(err, errlen, "out of memory");
        buf_free(&out);
        return NULL;
    }
    return out.p;
}
