/*
 * spf_syntax: an SPF record checked against RFC 7208's grammar (section
 * 12) before libspf2 sees it, and rewritten into the form libspf2
 * evaluates as the RFC says.
 *
 * libspf2's compiler accepts much the RFC calls a permerror (a domain
 * without a top label, "exp=" twice, "%a" in a modifier, "/032") and
 * refuses some valid records (unknown modifiers with '.' in their name,
 * "/0"). A record that breaks the grammar is a permerror here; one that
 * passes is handed on as:
 *   v=spf1 <the mechanisms, in order> [exp=...] [redirect=...]
 * with unknown modifiers dropped (RFC 7208 6: they are ignored), and
 * redirect= left out when the record has an "all" mechanism (6.1: it
 * could never apply; libspf2 would evaluate it in place). libspf2 also
 * refuses the length /0, so "ip4:X/0" and "ip6:X/0" become the two /1
 * halves of the address space, and for "a"/"mx" the length of the other
 * address family is dropped and "a:D/0" for an IPv4 client becomes
 * "exists:D" (the same question: has D an A record?).
 *
 * Pure, no I/O: unit-tested and safe to fuzz.
 */
#ifndef WARDEN_SPF_SYNTAX_H
#define WARDEN_SPF_SYNTAX_H

#include <stddef.h>

/* Room for the rewritten form of a record of len octets. */
#define SPF_SYNTAX_OUT(len) (3 * (len) + 16)

/*
 * Check rec ("v=spf1 ...") for a client of family (AF_INET, AF_INET6, or
 * 0 when not known). Returns 0 with the rewritten record in out
 * (SPF_SYNTAX_OUT(strlen(rec)) octets are always enough), or -1 with
 * *why saying what is wrong (a static string).
 */
int spf_record_check(const char *rec, int family, char *out, size_t outlen,
                     const char **why);

#endif
