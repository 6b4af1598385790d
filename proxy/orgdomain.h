/*
 * orgdomain: the Organizational Domain of a name (RFC 7489 3.2), from the
 * Public Suffix List (Debian's publicsuffix package installs it as
 * /usr/share/publicsuffix/public_suffix_list.dat).
 *
 * Why not libopendmarc: its lookups go through the system resolver, not
 * Warden's configured DNS servers, timeout and cache (dnsq), and its
 * history of From: parsing bugs (CVE-2019-16378, CVE-2021-34555) sits on
 * exactly the input an attacker controls. The DMARC logic is small; the
 * list is data. So Warden reads the list itself and keeps the rules in a
 * hash table: a lookup is one probe per label of the name.
 *
 * The list is loaded with the policy files (on start and on SIGHUP) and
 * is read-only afterwards: any thread may query it.
 */
#ifndef WARDEN_ORGDOMAIN_H
#define WARDEN_ORGDOMAIN_H

#include <stddef.h>

#define ORGDOMAIN_DEFAULT_LIST "/usr/share/publicsuffix/public_suffix_list.dat"

struct orgdomain;

/* Load a list file; NULL with the reason in err. */
struct orgdomain *orgdomain_load(const char *path, char *err, size_t errlen);
/* The same from text in the list's format (tests). */
struct orgdomain *orgdomain_parse(const char *text, size_t len);
void orgdomain_free(struct orgdomain *od);
size_t orgdomain_rules(const struct orgdomain *od);

/*
 * The organizational domain of domain (lower case, no final dot) into
 * out: its public suffix and one more label; the name itself when it is
 * a public suffix or shorter. Returns 0, or -1 when out is too small.
 */
int orgdomain_get(const struct orgdomain *od, const char *domain, char *out,
                  size_t size);

#endif
