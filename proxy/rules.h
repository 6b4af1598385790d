/*
 * rules: content scoring rules in a SpamAssassin-compatible subset.
 *
 * A rule set is loaded from .cf files (a directory means its *.cf files
 * in name order, as SpamAssassin reads its own) and is immutable after:
 * every thread may score with it at once. Supported:
 *
 *   header NAME Field =~ /re/flags  (also !~, Field:raw, Field:addr,
 *          Field:name, ALL, ToCc, MESSAGEID, EnvelopeFrom,
 *          exists:Field, [if-unset: TEXT])
 *   mimeheader NAME Field =~ /re/flags  (also !~, Field:raw; every
 *          instance in the message's and each MIME part's header)
 *   body | rawbody | uri | full NAME /re/flags
 *   meta NAME expression           (see rules_meta.h)
 *   score NAME n [n n n]           (the first value: no Bayes, no network)
 *   describe NAME text
 *   tflags NAME nice multiple maxhits=N ...
 *   include FILE                   (relative to the including file)
 *   replace_tag, replace_rules ... (ReplaceTags, see rules_replace.h)
 *   if (version >= N) / ifplugin NAME / else / endif
 *   # comments ("\#" is a literal #)
 *
 * A regex that does not compile, a meta that does not parse or loops, a
 * missing include: "file:line: reason" errors, and the set is not loaded.
 * Lines Warden does not support (eval: tests, plugin settings, blocks for
 * plugins it does not have) are skipped and listed as warnings, each kind
 * summed up once in the log.
 *
 * A negative score needs "tflags NAME nice" (a rule that takes points
 * off lets through whatever it matches: it must say it means to); without
 * it the score line is an error.
 *
 * Rule values and scores follow SpamAssassin: a rule without a score
 * counts 1.0 (names starting "__" count nothing and only feed metas,
 * "T_" ones 0.01); a score of 0 turns a rule off; a rule with tflags
 * multiple counts every match (up to maxhits) and scores each.
 *
 * Some rules come from other checks rather than from the message
 * (WARDEN_SPF_FAIL, ...): they exist in every set, score 0 until a
 * `score` line gives them weight, and metas may use them.
 */
#ifndef WARDEN_RULES_H
#define WARDEN_RULES_H

#include <stdbool.h>
#include <stddef.h>

#include "errors.h"

struct rx;
struct meta_prog;

enum rule_type {
    RULE_HEADER,
    RULE_BODY,    /* decoded, rendered text, by paragraph */
    RULE_RAWBODY, /* text parts as transferred, decoded, by line */
    RULE_URI,     /* each URI in text and HTML parts */
    RULE_FULL,    /* the whole message as received */
    RULE_MIMEHEADER, /* a field in the header of each MIME part */
    RULE_META,
    RULE_EXTERNAL, /* a result of another check */
    RULE__COUNT
};

/* How a header rule reads its field. */
enum header_mod {
    HDR_DECODED, /* RFC 2047 decoded, unfolded (the default) */
    HDR_RAW,     /* as in the message, unfolded */
    HDR_ADDR,    /* the first address (user@domain) */
    HDR_NAME,    /* the display name of the first address */
};

/* The results other checks give the scorer, as rules. */
enum rule_external {
    EXT_SPF_PASS,
    EXT_SPF_FAIL,
    EXT_SPF_SOFTFAIL,
    EXT_SPF_NEUTRAL,
    EXT_SPF_NONE,
    EXT_SPF_TEMPERROR,
    EXT_SPF_PERMERROR,
    EXT_DKIM_PASS,
    EXT_DKIM_FAIL,
    EXT_DKIM_NONE,
    EXT_DMARC_PASS,
    EXT_DMARC_FAIL,
    EXT_DMARC_NONE,
    EXT_AUTHENTICATED, /* the client authenticated (AUTH) */
    EXT_LIMIT_NEAR,    /* an enforced limit is nearly used up */
    EXT__COUNT
};

#define RULE_NICE 0x1u     /* may score below zero */
#define RULE_MULTIPLE 0x2u /* count every match */

struct rule {
    char *name;
    enum rule_type type;
    bool defined; /* a definition was read (else: score only) */
    bool has_score;
    bool enabled; /* evaluated: scored, or needed by a meta */
    bool partial; /* a meta reading rules that are not loaded */
    double score;
    unsigned tflags;
    unsigned maxhits; /* with RULE_MULTIPLE; 0: no cap */
    char *describe;
    char where[200]; /* "file:line" of the definition */
    char score_where[200]; /* "file:line" of its score, "" if none */
    struct rx *rx;   /* header, body, rawbody, uri, full */
    char *literal;   /* its "/re/flags" as written: only while loading */
    /* header and mimeheader rules */
    size_t hkey;    /* index into ruleset.hkeys */
    bool negate;    /* !~ */
    bool exists;    /* exists:Field */
    char *if_unset; /* value of a missing field; NULL: "" */
    /* meta rules */
    char *expr;
    struct meta_prog *meta;
    /* external rules */
    enum rule_external ext;
};

/* A field and how it is read: computed once per message for all rules. */
struct header_key {
    char *field;
    enum header_mod mod;
};

/* A kind of line that was skipped, summed up for the log. */
struct rules_skip {
    char kind[64];
    char first[256]; /* "file:line" of the first one */
    unsigned count;
};

struct ruleset {
    struct rule *v;
    size_t n, cap;
    size_t *slots; /* name hash: rule index + 1, 0 empty */
    size_t nslots;
    struct header_key *hkeys;
    size_t nhkeys;
    /* the enabled rules of each type; metas in dependency order */
    size_t *plan[RULE__COUNT];
    size_t nplan[RULE__COUNT];
    long ext_rule[EXT__COUNT]; /* rule index of each external result */
    struct errors warnings;    /* every skipped line, "file:line: why" */
    struct rules_skip *skips;
    size_t nskips;
    size_t nfiles;
};

/* Loading flags. */
#define RULES_LENIENT                                                          \
    0x1u /* a bad regex or meta skips its rule (for                            \
          * reading SpamAssassin's own files) */

/* Load paths (files or directories) in order; NULL with errs filled on
 * any error. */
struct ruleset *ruleset_load(char *const *paths, size_t npaths, unsigned flags,
                             struct errors *errs);
void ruleset_free(struct ruleset *rs);

/* The rule called name, or NULL. */
const struct rule *ruleset_find(const struct ruleset *rs, const char *name);

/* Name of an external result ("WARDEN_SPF_FAIL"). */
const char *rules_external_name(enum rule_external e);

/* One log line per kind of skipped line, and the totals. */
void ruleset_log_summary(const struct ruleset *rs, const char *what);

#endif
