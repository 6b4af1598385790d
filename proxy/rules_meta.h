/*
 * rules_meta: the boolean and arithmetic expressions of `meta` rules.
 *
 *   meta LOCAL_X  (__A || __B) && !__C
 *   meta LOCAL_Y  (__A + __B + __C) >= 2
 *
 * Names are rules; a rule's value is its hit count (0 when it did not
 * hit). Operators as in Perl, by precedence: unary ! and -, then * /,
 * + -, < > <= >=, == !=, &&, ||. As in Perl, && and || give one of their
 * operands ("a || b" is a when a is true), so sums of them count. An
 * expression is compiled once into a small stack program.
 */
#ifndef WARDEN_RULES_META_H
#define WARDEN_RULES_META_H

#include <stddef.h>

struct meta_prog;

/* Rule index of a name, or -1 when there is no such rule (it then counts
 * as 0: SpamAssassin's metas name rules of plugins that may be absent). */
typedef long (*meta_resolve_fn)(void *arg, const char *name, size_t len);

/* NULL with a reason in err on a syntax error. */
struct meta_prog *meta_compile(const char *expr, meta_resolve_fn resolve,
                               void *arg, char *err, size_t errlen);
void meta_free(struct meta_prog *m);

/* The value of the expression, given each rule's value by index. */
double meta_eval(const struct meta_prog *m, const double *values);

/* The rule indexes the expression reads (possibly repeated). */
size_t meta_deps(const struct meta_prog *m, const long **deps);

#endif
