/*
 * rules_regex: the regular expressions of SpamAssassin-style rules, as
 * PCRE2 with its JIT.
 *
 * A rule file writes Perl: "/re/flags", "m{re}flags", "m!re!flags". The
 * literal is compiled once, at load; matching is bounded (PCRE2 match,
 * depth and heap limits, a JIT stack of our own), so a crafted message can
 * make a pattern give up but never stall a worker. Where Perl and PCRE2
 * differ in simple ways the pattern is adjusted: an unknown escape such as
 * "\i" is the letter (Perl warns, PCRE2 refuses), "{,n}" is "{0,n}", and
 * the modifiers PCRE2 has no use for (g, o, a, u, l, d, p) are ignored.
 *
 * A compiled pattern is immutable and shared by every thread; matching
 * uses per-thread match data, so rx_count may run on any thread.
 */
#ifndef WARDEN_RULES_REGEX_H
#define WARDEN_RULES_REGEX_H

#include <stdbool.h>
#include <stddef.h>

struct rx;

/*
 * Compile the Perl literal lit ("/re/i"): the whole string, delimiters and
 * modifiers, as SpamAssassin reads it (the closing delimiter is the last
 * one followed by modifiers only). NULL with a reason in err when the
 * literal or the pattern is bad.
 */
struct rx *rx_compile(const char *lit, char *err, size_t errlen);
/* The same; *too_large tells whether the pattern failed only for PCRE2's
 * cap on a compiled pattern's size (Perl has none). */
struct rx *rx_compile_sized(const char *lit, char *err, size_t errlen,
                            bool *too_large);
void rx_free(struct rx *rx);

/* The pattern and PCRE2 options as compiled (for a prefilter). */
const char *rx_pattern(const struct rx *rx);
unsigned rx_options(const struct rx *rx);

/*
 * Count matches of rx in s[0..len), at most max (1: "does it match").
 * Returns the count, or -1 when a limit stopped the match (the caller
 * treats that as no match, and may count it).
 */
int rx_count(const struct rx *rx, const char *s, size_t len, unsigned max);

#endif
