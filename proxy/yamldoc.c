/*
 * yamldoc: typed, error-collecting access to a libyaml document.
 *
 * libyaml's document API gives us the whole tree with a position on every
 * node, which is all a loader needs to say "file:line: what is wrong".
 * The helpers never stop at the first problem: each records its error and
 * leaves the default in place, so one run of `warden -t` lists them all.
 */
#define _GNU_SOURCE /* asprintf */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "config.h"
#include "yamldoc.h"

static int parse_stream(struct yamldoc *d, FILE *f);
static int check_aliases(struct yamldoc *d);
static void syntax_error(struct yamldoc *d, const yaml_parser_t *p);
static void join_name(char *buf, size_t len, const char *name, const char *key);
static void check_keys(const struct ymap *m, const char *const *keys);
static int scalar_at(const struct ymap *m, const char *key, const char *kind,
                     const char **val, yaml_node_t **at);

/* ---- documents ---- */

void *yamldoc_must(void *p)
{
    if (!p) {
        fputs("warden: out of memory\n", stderr);
        abort();
    }
    return p;
}

int yamldoc_load(struct yamldoc *d, const char *path, struct errors *errs)
{
    struct stat st;
    FILE *f;
    int rc;

    memset(d, 0, sizeof(*d));
    d->file = yamldoc_must(strdup(path));
    d->errs = errs;
    f = fopen(path, "rb");
    if (!f) {
        errors_add(errs, path, 0, "cannot open: %s", strerror(errno));
        return -1;
    }
    /* fopen() succeeds on a directory; reading it then fails obscurely. */
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        errors_add(errs, path, 0, "cannot open: %s", strerror(EISDIR));
        fclose(f);
        return -1;
    }
    rc = parse_stream(d, f);
    fclose(f);
    return rc;
}

/* Load the first document and insist there is no second one. */
static int parse_stream(struct yamldoc *d, FILE *f)
{
    yaml_parser_t p;
    yaml_document_t extra;
    int rc = 0;

    if (!yaml_parser_initialize(&p))
        yamldoc_must(NULL);
    yaml_parser_set_input_file(&p, f);
    if (!yaml_parser_load(&p, &d->doc)) {
        syntax_error(d, &p);
        yaml_parser_delete(&p);
        return -1;
    }
    d->loaded = true;
    if (check_aliases(d) != 0)
        rc = -1;
    if (!yaml_parser_load(&p, &extra)) {
        syntax_error(d, &p);
        rc = -1;
    } else {
        yaml_node_t *root = yaml_document_get_root_node(&extra);
        if (root) {
            yamldoc_error(d, root, "only one YAML document per file");
            rc = -1;
        }
        yaml_document_delete(&extra);
    }
    yaml_parser_delete(&p);
    return rc;
}

/*
 * Aliases let a small file stand for a huge one: libyaml shares an aliased
 * node, but the loaders visit it once per reference, so 8 KB of aliased
 * lists of aliases ("billion laughs", one level deep) made 1.7 million
 * errors: 8 s and 200 MB for `warden -t`, and the same in the daemon on a
 * SIGHUP reload (a bigger file: gigabytes). Refuse a document whose
 * aliases add more than YAMLDOC_MAX_ALIASED nodes to it, and one with an
 * alias inside its own anchor (a cycle: no valid file has one). The walk
 * is iterative: nesting depth is bounded by the file's size only.
 */
#define YAMLDOC_MAX_ALIASED 100000

/* Child k of node (for a mapping: keys and values in turn), or 0. */
static int node_child(const yaml_node_t *node, size_t k, size_t *nkids)
{
    if (node->type == YAML_SEQUENCE_NODE) {
        *nkids = (size_t)(node->data.sequence.items.top -
                          node->data.sequence.items.start);
        return k < *nkids ? node->data.sequence.items.start[k] : 0;
    }
    if (node->type == YAML_MAPPING_NODE) {
        const yaml_node_pair_t *pr = node->data.mapping.pairs.start;
        *nkids = 2 * (size_t)(node->data.mapping.pairs.top - pr);
        if (k >= *nkids)
            return 0;
        return k % 2 ? pr[k / 2].value : pr[k / 2].key;
    }
    *nkids = 0;
    return 0;
}

static int check_aliases(struct yamldoc *d)
{
    yaml_node_t *nodes = d->doc.nodes.start;
    size_t n = (size_t)(d->doc.nodes.top - nodes), sp = 0;
    const uint64_t max = (uint64_t)n + YAMLDOC_MAX_ALIASED;
    uint64_t *size;     /* nodes in the expanded subtree, capped at max+1 */
    size_t *stack, *next;
    unsigned char *state; /* 0 new, 1 on the stack, 2 done */
    int rc = 0;

    if (n == 0)
        return 0;
    size = yamldoc_must(calloc(n, sizeof(*size)));
    stack = yamldoc_must(calloc(n, sizeof(*stack)));
    next = yamldoc_must(calloc(n, sizeof(*next)));
    state = yamldoc_must(calloc(n, 1));
    stack[sp++] = 0; /* the root is the first node */
    state[0] = 1;
    size[0] = 1;
    while (sp > 0) {
        size_t i = stack[sp - 1], nkids;
        int c = node_child(&nodes[i], next[i]++, &nkids);

        if (next[i] > nkids) { /* all children counted */
            state[i] = 2;
            if (--sp > 0) {
                size_t up = stack[sp - 1];
                size[up] = size[up] + size[i] > max ? max + 1
                                                    : size[up] + size[i];
            }
            continue;
        }
        if (c < 1 || (size_t)c > n)
            continue;
        if (state[c - 1] == 1) {
            yamldoc_error(d, &nodes[c - 1],
                          "an alias refers to a node that contains it");
            rc = -1;
            break;
        }
        if (state[c - 1] == 2) {
            size[i] = size[i] + size[c - 1] > max ? max + 1
                                                  : size[i] + size[c - 1];
            if (size[i] > max)
                break;
            continue;
        }
        state[c - 1] = 1;
        size[c - 1] = 1;
        stack[sp++] = (size_t)c - 1;
    }
    if (rc == 0 && (sp > 0 || size[0] > max)) {
        yamldoc_error(d, &nodes[0],
                      "aliases expand the document by more than %d nodes",
                      YAMLDOC_MAX_ALIASED);
        rc = -1;
    }
    free(size);
    free(stack);
    free(next);
    free(state);
    return rc;
}

static void syntax_error(struct yamldoc *d, const yaml_parser_t *p)
{
    const char *problem = p->problem ? p->problem : "out of memory";

    if (p->error == YAML_READER_ERROR) { /* bad encoding: no line known */
        errors_add(d->errs, d->file, 0, "YAML syntax error: %s at byte %zu",
                   problem, p->problem_offset);
    } else if (p->context) {
        errors_add(d->errs, d->file, (unsigned)p->problem_mark.line + 1,
                   "YAML syntax error: %s (%s at line %u)", problem, p->context,
                   (unsigned)p->context_mark.line + 1);
    } else {
        errors_add(d->errs, d->file, (unsigned)p->problem_mark.line + 1,
                   "YAML syntax error: %s", problem);
    }
}

void yamldoc_free(struct yamldoc *d)
{
    if (d->loaded)
        yaml_document_delete(&d->doc);
    free(d->file);
    memset(d, 0, sizeof(*d));
}

yaml_node_t *yamldoc_root(struct yamldoc *d)
{
    return d->loaded ? yaml_document_get_root_node(&d->doc) : NULL;
}

unsigned yamldoc_line(const yaml_node_t *n)
{
    return n ? (unsigned)n->start_mark.line + 1 : 0;
}

bool yamldoc_is_null(const yaml_node_t *n)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};
    const char *v;

    if (!n || n->type != YAML_SCALAR_NODE ||
        n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    v = (const char *)n->data.scalar.value;
    for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++)
        if (strcmp(v, nulls[i]) == 0)
            return true;
    return false;
}

const char *yamldoc_kind(const yaml_node_t *n)
{
    if (!n || yamldoc_is_null(n))
        return "nothing";
    switch (n->type) {
    case YAML_MAPPING_NODE:
        return "a mapping";
    case YAML_SEQUENCE_NODE:
        return "a list";
    default:
        return "a string";
    }
}

void yamldoc_error(struct yamldoc *d, const yaml_node_t *at, const char *fmt,
                   ...)
{
    char reason[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    errors_add(d->errs, d->file, yamldoc_line(at), "%s", reason);
}

char *yamldoc_path(const struct yamldoc *d, const char *rel)
{
    const char *slash = strrchr(d->file, '/');
    char *out;

    if (rel[0] == '/' || !slash)
        return yamldoc_must(strdup(rel));
    if (asprintf(&out, "%.*s/%s", (int)(slash - d->file), d->file, rel) < 0)
        yamldoc_must(NULL);
    return out;
}

void yamldoc_strv_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* ---- mappings ---- */

/* "backend" + "address" -> "backend.address"; "" + "" -> "top level". */
static void join_name(char *buf, size_t len, const char *name, const char *key)
{
    if (name[0] && key)
        snprintf(buf, len, "%s.%s", name, key);
    else if (name[0] || key)
        snprintf(buf, len, "%s", name[0] ? name : key);
    else
        snprintf(buf, len, "top level");
}

bool ymap_open(struct ymap *m, struct yamldoc *d, yaml_node_t *node,
               const char *name, const char *const *keys)
{
    m->d = d;
    m->node = NULL;
    m->line = yamldoc_line(node);
    snprintf(m->name, sizeof(m->name), "%s", name);
    if (!node || yamldoc_is_null(node))
        return true;
    if (node->type != YAML_MAPPING_NODE) {
        ymap_error(m, node, NULL, "expected a mapping, got %s",
                   yamldoc_kind(node));
        return false;
    }
    m->node = node;
    check_keys(m, keys);
    return true;
}

/* Quadratic in the number of keys, which is a dozen at most. */
static void check_keys(const struct ymap *m, const char *const *keys)
{
    char where[sizeof(m->name)];
    yaml_node_pair_t *first = m->node->data.mapping.pairs.start;
    yaml_node_pair_t *end = m->node->data.mapping.pairs.top;

    join_name(where, sizeof(where), m->name, NULL);
    for (yaml_node_pair_t *p = first; p < end; p++) {
        yaml_node_t *k = yaml_document_get_node(&m->d->doc, p->key);
        const char *ks;
        size_t i;

        if (!k || k->type != YAML_SCALAR_NODE) {
            yamldoc_error(m->d, k, "%s: keys must be plain strings", where);
            continue;
        }
        ks = (const char *)k->data.scalar.value;
        for (i = 0; keys[i] && strcmp(keys[i], ks) != 0; i++)
            ;
        if (!keys[i]) {
            yamldoc_error(m->d, k, "unknown key \"%s\" in %s", ks, where);
            continue;
        }
        for (yaml_node_pair_t *q = first; q < p; q++) {
            yaml_node_t *qk = yaml_document_get_node(&m->d->doc, q->key);
            if (qk && qk->type == YAML_SCALAR_NODE &&
                strcmp((const char *)qk->data.scalar.value, ks) == 0) {
                yamldoc_error(m->d, k, "duplicate key \"%s\" in %s", ks, where);
                break;
            }
        }
    }
}

bool ymap_sub(const struct ymap *parent, const char *key,
              const char *const *keys, struct ymap *out)
{
    yaml_node_t *n = ymap_get(parent, key);
    char name[sizeof(parent->name)];

    if (!n)
        return false;
    join_name(name, sizeof(name), parent->name, key);
    return ymap_open(out, parent->d, n, name, keys);
}

yaml_node_t *ymap_get(const struct ymap *m, const char *key)
{
    if (!m->node)
        return NULL;
    for (yaml_node_pair_t *p = m->node->data.mapping.pairs.start;
         p < m->node->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(&m->d->doc, p->key);
        if (k && k->type == YAML_SCALAR_NODE &&
            strcmp((const char *)k->data.scalar.value, key) == 0)
            return yaml_document_get_node(&m->d->doc, p->value);
    }
    return NULL;
}

void ymap_error(const struct ymap *m, const yaml_node_t *at, const char *key,
                const char *fmt, ...)
{
    char reason[1024], name[sizeof(m->name) + 64];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    join_name(name, sizeof(name), m->name, key);
    errors_add(m->d->errs, m->d->file,
               at ? yamldoc_line(at) : m->node ? yamldoc_line(m->node) : m->line,
               "%s: %s", name, reason);
}

/* ---- typed getters ---- */

/* The scalar under key: 1 found, 0 absent, -1 wrong type (reported). */
static int scalar_at(const struct ymap *m, const char *key, const char *kind,
                     const char **val, yaml_node_t **at)
{
    yaml_node_t *n = ymap_get(m, key);

    if (!n)
        return 0;
    if (n->type != YAML_SCALAR_NODE || yamldoc_is_null(n)) {
        ymap_error(m, n, key, "expected %s, got %s", kind, yamldoc_kind(n));
        return -1;
    }
    if (strlen((const char *)n->data.scalar.value) != n->data.scalar.length) {
        ymap_error(m, n, key, "contains a NUL byte");
        return -1;
    }
    *val = (const char *)n->data.scalar.value;
    *at = n;
    return 1;
}

int ymap_str(const struct ymap *m, const char *key, char **out)
{
    const char *v;
    yaml_node_t *at;
    int rc = scalar_at(m, key, "a string", &v, &at);

    if (rc <= 0)
        return rc;
    if (!*v) {
        ymap_error(m, at, key, "must not be empty");
        return -1;
    }
    free(*out);
    *out = yamldoc_must(strdup(v));
    return 1;
}

int ymap_bool(const struct ymap *m, const char *key, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on"};
    static const char *const no[] = {"false", "no", "off"};
    const char *v;
    yaml_node_t *at;
    int rc = scalar_at(m, key, "true or false", &v, &at);

    if (rc <= 0)
        return rc;
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcasecmp(v, yes[i]) == 0 || strcasecmp(v, no[i]) == 0) {
            *out = strcasecmp(v, yes[i]) == 0;
            return 1;
        }
    }
    ymap_error(m, at, key, "expected true or false, got \"%s\"", v);
    return -1;
}

int ymap_uint(const struct ymap *m, const char *key, unsigned min, unsigned max,
              unsigned *out)
{
    unsigned long long n = 0;
    const char *v;
    yaml_node_t *at;
    int rc = scalar_at(m, key, "a number", &v, &at);

    if (rc <= 0)
        return rc;
    for (const char *p = v; *p; p++) {
        if (*p < '0' || *p > '9') {
            ymap_error(m, at, key, "expected a number, got \"%s\"", v);
            return -1;
        }
        if ((n = n * 10 + (unsigned)(*p - '0')) > max) {
            ymap_error(m, at, key, "must be at most %u", max);
            return -1;
        }
    }
    if (n < min) {
        ymap_error(m, at, key, "must be at least %u", min);
        return -1;
    }
    *out = (unsigned)n;
    return 1;
}

int ymap_size(const struct ymap *m, const char *key, size_t min, size_t *out)
{
    const char *v;
    yaml_node_t *at;
    size_t n;
    int rc = scalar_at(m, key, "a size", &v, &at);

    if (rc <= 0)
        return rc;
    if (config_parse_size(v, &n) != 0) {
        if (errno == ERANGE)
            ymap_error(m, at, key, "size \"%s\" is too large", v);
        else
            ymap_error(m, at, key,
                       "invalid size \"%s\" (bytes, or a number with k, m "
                       "or g)",
                       v);
        return -1;
    }
    if (n < min) {
        ymap_error(m, at, key, "must be at least %zu", min);
        return -1;
    }
    *out = n;
    return 1;
}

int ymap_duration(const struct ymap *m, const char *key, unsigned min_ms,
                  unsigned *out)
{
    const char *v;
    yaml_node_t *at;
    unsigned n;
    int rc = scalar_at(m, key, "a duration", &v, &at);

    if (rc <= 0)
        return rc;
    if (config_parse_duration(v, &n) != 0) {
        if (errno == ERANGE)
            ymap_error(m, at, key, "duration \"%s\" is too long", v);
        else
            ymap_error(m, at, key,
                       "invalid duration \"%s\" (seconds, or a number "
                       "with ms, s, m, h or d)",
                       v);
        return -1;
    }
    if (n < min_ms) {
        if (min_ms <= 1)
            ymap_error(m, at, key, "must be greater than 0");
        else
            ymap_error(m, at, key, "must be at least %ums", min_ms);
        return -1;
    }
    *out = n;
    return 1;
}

int ymap_enum(const struct ymap *m, const char *key,
              const struct yamldoc_enum *names, int *out)
{
    char list[256] = "";
    size_t used = 0;
    const char *v;
    yaml_node_t *at;
    int rc = scalar_at(m, key, "a string", &v, &at);

    if (rc <= 0)
        return rc;
    for (const struct yamldoc_enum *e = names; e->name; e++) {
        if (strcmp(e->name, v) == 0) {
            *out = e->value;
            return 1;
        }
        if (used < sizeof(list))
            used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s",
                                     used ? ", " : "", e->name);
    }
    ymap_error(m, at, key, "expected one of %s, got \"%s\"", list, v);
    return -1;
}

int ymap_strlist(const struct ymap *m, const char *key, char ***v, size_t *n)
{
    struct ylist l;
    char **out;
    size_t bad = 0;
    int rc = ymap_list(m, key, &l);

    if (rc <= 0)
        return rc;
    out = yamldoc_must(calloc(l.n + 1, sizeof(*out)));
    for (size_t i = 0; i < l.n; i++) {
        const char *s = ylist_str(&l, i);
        if (!s)
            bad++;
        else
            out[i - bad] = yamldoc_must(strdup(s));
    }
    if (bad) {
        yamldoc_strv_free(out, l.n - bad);
        return -1;
    }
    *v = out;
    *n = l.n;
    return 1;
}

/* ---- lists ---- */

int ymap_list(const struct ymap *m, const char *key, struct ylist *out)
{
    yaml_node_t *n = ymap_get(m, key);

    if (!n)
        return 0;
    memset(out, 0, sizeof(*out));
    out->d = m->d;
    join_name(out->name, sizeof(out->name), m->name, key);
    if (yamldoc_is_null(n))
        return 1;
    if (n->type == YAML_MAPPING_NODE) {
        ymap_error(m, n, key, "expected a list, got a mapping");
        return -1;
    }
    out->node = n;
    if (n->type == YAML_SEQUENCE_NODE)
        out->n =
            (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    else
        out->n = 1;
    return 1;
}

yaml_node_t *ylist_at(const struct ylist *l, size_t i)
{
    if (i >= l->n)
        return NULL;
    if (l->node->type != YAML_SEQUENCE_NODE)
        return l->node;
    return yaml_document_get_node(&l->d->doc,
                                  l->node->data.sequence.items.start[i]);
}

const char *ylist_str(const struct ylist *l, size_t i)
{
    yaml_node_t *n = ylist_at(l, i);
    const char *v;

    if (!n || n->type != YAML_SCALAR_NODE || yamldoc_is_null(n)) {
        yamldoc_error(l->d, n ? n : l->node, "%s: expected a string, got %s",
                      l->name, yamldoc_kind(n));
        return NULL;
    }
    v = (const char *)n->data.scalar.value;
    if (!*v || strlen(v) != n->data.scalar.length) {
        yamldoc_error(l->d, n, "%s: %s", l->name,
                      *v ? "contains a NUL byte" : "must not be empty");
        return NULL;
    }
    return v;
}
