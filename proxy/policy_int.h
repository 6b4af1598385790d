/*
 * policy_int: what policy.c shares with the section loaders kept in files
 * of their own (policy_auth.c: dkim, dkim_sign, dmarc), so policy.c does
 * not grow by a section at a time. Not for checks: they read struct
 * policy (policy.h).
 */
#ifndef WARDEN_POLICY_INT_H
#define WARDEN_POLICY_INT_H

#include <stddef.h>

#include "policy.h"
#include "yamldoc.h"

/*
 * "550 5.7.1 text" -> out, for a reply of class cls ('4' or '5'): code
 * of that class, a matching enhanced code if any, an RFC 5321 text.
 * Returns 0, or -1 with the reason in err (out unchanged).
 */
int policy_parse_reply(const char *s, char cls, struct limit_reply *out,
                       char *err, size_t errlen);
/* 550 5.7.1 "text" -> 550 5.7.1 text, in place. */
void policy_unquote_reply_text(char *s);
/* CIDRs under key, and a file of them, appended to list (errors at their
 * lines). policy_load_cidrs returns the items, or -1 when key is absent. */
int policy_load_cidrs(const struct ymap *m, const char *key,
                      struct cidr_list *list);
void policy_load_cidr_file(const struct ymap *m, const char *key,
                           struct cidr_list *list);

/* Sections loaded in policy_auth.c. */
void policy_load_spf(const struct ymap *top, struct policy *p);
void policy_load_dkim(const struct ymap *top, struct policy *p);
void policy_load_dkim_sign(const struct ymap *top, struct policy *p);
void policy_load_dmarc(const struct ymap *top, struct policy *p);
/* Loaded in policy_score.c (with the rule files it names). */
void policy_load_scoring(const struct ymap *top, struct policy *p);
/* After every file: what the sections need of each other. */
/* listeners and exempt: {networks, networks_file, authenticated} of a
 * section; what names the section's work in messages ("check", "score"). */
struct auth_scope;
void policy_load_scope(const struct ymap *m, struct auth_scope *s,
                       const char *what);

void policy_check_auth(const struct policy *p, struct errors *errs);

#endif
