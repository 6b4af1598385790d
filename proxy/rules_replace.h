/*
 * rules_replace: SpamAssassin's ReplaceTags settings, so that rule files
 * written with tags (SpamAssassin's own 25_replace.cf, 72_active.cf) mean
 * what they say.
 *
 *   replace_start <              replace_end >        (the defaults)
 *   replace_tag   A  (?:[a@]|4)  a tag: <A> in a rule stands for it
 *   replace_pre   NAME re        put before each tag, after <pre NAME>
 *   replace_inter NAME re        put between two adjacent tags, after
 *                                <inter NAME>
 *   replace_post  NAME re        put after each tag, after <post NAME>
 *   replace_rules RULE...        the rules whose patterns are rewritten
 *
 * Only the rules named by replace_rules are rewritten, once every file is
 * read (tags may be defined after the rules that use them). A tag is
 * replaced by its value as a non-capturing group, so a quantifier after
 * it applies to the whole tag; tags inside tag values are replaced too.
 * "<NAME>" for a name that is not a tag stays as written (HTML in a
 * pattern, say).
 */
#ifndef WARDEN_RULES_REPLACE_H
#define WARDEN_RULES_REPLACE_H

#include <stdbool.h>
#include <stddef.h>

struct replace_tags;

struct replace_tags *replace_new(void);
void replace_free(struct replace_tags *t);

/* Is word ("replace_tag", ...) one of the settings above? */
bool replace_is_directive(const char *word);

/* Apply one setting line; -1 with err set when it is malformed. */
int replace_directive(struct replace_tags *t, const char *word,
                      const char *args, char *err, size_t errlen);

/* Did replace_rules name this rule? */
bool replace_wants(const struct replace_tags *t, const char *rule);

/* The pattern with its tags replaced (malloc'd), or NULL with err set
 * (tags nested too deep, no memory). A <pre|inter|post NAME> whose NAME
 * is not defined adds nothing, as in SpamAssassin, and sets warn. */
char *replace_expand(const struct replace_tags *t, const char *pattern,
                     char *err, size_t errlen, char *warn, size_t warnlen);

#endif
