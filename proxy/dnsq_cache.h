/*
 * dnsq_cache: answers dnsq already has, shared by every worker thread.
 *
 * A fixed table of DNSQ_CACHE_SLOTS entries indexed by a hash of (name,
 * type); a new answer replaces whatever held its slot. Entries live for
 * the answer's TTL, at most DNSQ_CACHE_TTL_MAX seconds; negative answers
 * live as long as the zone's SOA says (RFC 2308), and temporary failures
 * are never stored. One mutex guards the table: lookups copy the answer
 * out, so no caller holds a reference into it.
 */
#ifndef WARDEN_DNSQ_CACHE_H
#define WARDEN_DNSQ_CACHE_H

#include <stdbool.h>

#include "dnsq.h"

#define DNSQ_CACHE_SLOTS 2048
#define DNSQ_CACHE_TTL_MAX 3600

/* name lower-cased, without the final dot. true: *out is a copy to free. */
bool dnsq_cache_get(const char *name, int type, struct dnsq_answer *out);
void dnsq_cache_put(const char *name, int type, const struct dnsq_answer *a);

#endif
