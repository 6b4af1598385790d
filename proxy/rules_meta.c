/*
 * rules_meta: a recursive-descent parser from meta expressions to a stack
 * program, and its evaluator (see the header for the language).
 */
#include "rules_meta.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Parentheses nest at most this deep: the parser recurses. */
#define MAX_DEPTH 64

enum op {
    OP_CONST,
    OP_RULE,
    OP_NOT,
    OP_NEG,
    OP_MUL,
    OP_DIV,
    OP_ADD,
    OP_SUB,
    OP_LT,
    OP_GT,
    OP_LE,
    OP_GE,
    OP_EQ,
    OP_NE,
    OP_AND,
    OP_OR,
};

struct insn {
    enum op op;
    double c;  /* OP_CONST */
    long rule; /* OP_RULE */
};

struct meta_prog {
    struct insn *code;
    size_t n, cap;
    long *deps;
    size_t ndeps;
    size_t stack; /* the deepest the evaluation stack gets */
};

struct parser {
    const char *p;
    struct meta_prog *m;
    meta_resolve_fn resolve;
    void *arg;
    char *err;
    size_t errlen;
    bool failed;
    int depth;
};

static void parse_or(struct parser *ps);

/* ---- building ---- */

static void fail(struct parser *ps, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void fail(struct parser *ps, const char *fmt, ...)
{
    va_list ap;

    if (ps->failed)
        return;
    ps->failed = true;
    va_start(ap, fmt);
    vsnprintf(ps->err, ps->errlen, fmt, ap);
    va_end(ap);
}

static void emit(struct parser *ps, enum op op, double c, long rule)
{
    struct meta_prog *m = ps->m;

    if (ps->failed)
        return;
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 16;
        struct insn *v = realloc(m->code, cap * sizeof(*v));
        if (!v) {
            fail(ps, "%s", "out of memory");
            return;
        }
        m->code = v;
        m->cap = cap;
    }
    m->code[m->n++] = (struct insn){op, c, rule};
}

static void skip_space(struct parser *ps)
{
    while (isspace((unsigned char)*ps->p))
        ps->p++;
}

/* Consume tok if it comes next (and is not the start of a longer one). */
static bool accept(struct parser *ps, const char *tok)
{
    size_t n = strlen(tok);

    skip_space(ps);
    if (strncmp(ps->p, tok, n) != 0)
        return false;
    /* "<" must not take the start of "<=", "!" not of "!=" */
    if (n == 1 && (tok[0] == '<' || tok[0] == '>' || tok[0] == '!') &&
        ps->p[1] == '=')
        return false;
    ps->p += n;
    return true;
}

static void add_dep(struct parser *ps, long rule)
{
    long *v = realloc(ps->m->deps, (ps->m->ndeps + 1) * sizeof(*v));

    if (!v) {
        fail(ps, "%s", "out of memory");
        return;
    }
    v[ps->m->ndeps++] = rule;
    ps->m->deps = v;
}

static void parse_primary(struct parser *ps)
{
    const char *s;

    skip_space(ps);
    s = ps->p;
    if (isdigit((unsigned char)*s) ||
        (*s == '.' && isdigit((unsigned char)s[1]))) {
        char *end;
        double c = strtod(s, &end);
        ps->p = end;
        emit(ps, OP_CONST, c, 0);
    } else if (isalpha((unsigned char)*s) || *s == '_') {
        while (isalnum((unsigned char)*ps->p) || *ps->p == '_')
            ps->p++;
        long r = ps->resolve(ps->arg, s, (size_t)(ps->p - s));
        if (r < 0) {
            emit(ps, OP_CONST, 0, 0);
        } else {
            emit(ps, OP_RULE, 0, r);
            add_dep(ps, r);
        }
    } else if (accept(ps, "(")) {
        if (++ps->depth > MAX_DEPTH) {
            fail(ps, "%s", "parentheses nested too deep");
            return;
        }
        parse_or(ps);
        ps->depth--;
        if (!accept(ps, ")"))
            fail(ps, "expected ) at \"%.20s\"", ps->p);
    } else {
        if (*s)
            fail(ps, "unexpected \"%.20s\"", s);
        else
            fail(ps, "expression ends too soon");
    }
}

static void parse_unary(struct parser *ps)
{
    if (ps->failed)
        return;
    if (accept(ps, "!")) {
        parse_unary(ps);
        emit(ps, OP_NOT, 0, 0);
    } else if (accept(ps, "-")) {
        parse_unary(ps);
        emit(ps, OP_NEG, 0, 0);
    } else {
        parse_primary(ps);
    }
}

/* One level of left-associative binary operators. */
struct level {
    const char *tok[4];
    enum op op[4];
    void (*next)(struct parser *ps);
};

static void parse_level(struct parser *ps, const struct level *l)
{
    l->next(ps);
    for (bool more = true; more && !ps->failed;) {
        more = false;
        for (int i = 0; i < 4 && l->tok[i]; i++) {
            if (accept(ps, l->tok[i])) {
                l->next(ps);
                emit(ps, l->op[i], 0, 0);
                more = true;
                break;
            }
        }
    }
}

static void parse_mul(struct parser *ps)
{
    static const struct level l = {{"*", "/"}, {OP_MUL, OP_DIV}, parse_unary};
    parse_level(ps, &l);
}

static void parse_add(struct parser *ps)
{
    static const struct level l = {{"+", "-"}, {OP_ADD, OP_SUB}, parse_mul};
    parse_level(ps, &l);
}

static void parse_rel(struct parser *ps)
{
    static const struct level l = {
        {"<=", ">=", "<", ">"}, {OP_LE, OP_GE, OP_LT, OP_GT}, parse_add};
    parse_level(ps, &l);
}

static void parse_eq(struct parser *ps)
{
    static const struct level l = {{"==", "!="}, {OP_EQ, OP_NE}, parse_rel};
    parse_level(ps, &l);
}

static void parse_and(struct parser *ps)
{
    static const struct level l = {{"&&"}, {OP_AND}, parse_eq};
    parse_level(ps, &l);
}

static void parse_or(struct parser *ps)
{
    static const struct level l = {{"||"}, {OP_OR}, parse_and};
    parse_level(ps, &l);
}

/* How deep the stack gets; every program is well formed by construction. */
static size_t stack_depth(const struct meta_prog *m)
{
    size_t d = 0, max = 0;

    for (size_t i = 0; i < m->n; i++) {
        enum op op = m->code[i].op;
        if (op == OP_CONST || op == OP_RULE)
            d++;
        else if (op != OP_NOT && op != OP_NEG)
            d--;
        if (d > max)
            max = d;
    }
    return max;
}

struct meta_prog *meta_compile(const char *expr, meta_resolve_fn resolve,
                               void *arg, char *err, size_t errlen)
{
    struct meta_prog *m = calloc(1, sizeof(*m));
    struct parser ps = {expr, m, resolve, arg, err, errlen, false, 0};

    if (!m) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    parse_or(&ps);
    skip_space(&ps);
    if (!ps.failed && *ps.p)
        fail(&ps, "unexpected \"%.20s\"", ps.p);
    if (ps.failed) {
        meta_free(m);
        return NULL;
    }
    m->stack = stack_depth(m);
    return m;
}

void meta_free(struct meta_prog *m)
{
    if (!m)
        return;
    free(m->code);
    free(m->deps);
    free(m);
}

size_t meta_deps(const struct meta_prog *m, const long **deps)
{
    *deps = m->deps;
    return m->ndeps;
}

/* ---- evaluating ---- */

static double binary(enum op op, double a, double b)
{
    switch (op) {
    case OP_MUL:
        return a * b;
    case OP_DIV:
        return b != 0 ? a / b : 0; /* Perl dies; a rule must not */
    case OP_ADD:
        return a + b;
    case OP_SUB:
        return a - b;
    case OP_LT:
        return a < b;
    case OP_GT:
        return a > b;
    case OP_LE:
        return a <= b;
    case OP_GE:
        return a >= b;
    case OP_EQ:
        return a == b;
    case OP_NE:
        return a != b;
    case OP_AND:
        return a != 0 ? b : a;
    case OP_OR:
        return a != 0 ? a : b;
    default:
        return 0;
    }
}

double meta_eval(const struct meta_prog *m, const double *values)
{
    double small[32],
        *st = m->stack <= 32 ? small : malloc(m->stack * sizeof(*st));
    size_t sp = 0;
    double r;

    if (!st)
        return 0;
    for (size_t i = 0; i < m->n; i++) {
        const struct insn *in = &m->code[i];
        switch (in->op) {
        case OP_CONST:
            st[sp++] = in->c;
            break;
        case OP_RULE:
            st[sp++] = values[in->rule];
            break;
        case OP_NOT:
            st[sp - 1] = st[sp - 1] == 0;
            break;
        case OP_NEG:
            st[sp - 1] = -st[sp - 1];
            break;
        default:
            sp--;
            st[sp - 1] = binary(in->op, st[sp - 1], st[sp]);
            break;
        }
    }
    r = sp ? st[0] : 0;
    if (st != small)
        free(st);
    return r;
}
