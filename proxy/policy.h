/*
 * policy: the policy files admins edit (YAML files in policies/).
 *
 * For now a policy holds the client access rules: ordered entries that
 * match the client address against networks (inline or from CIDR files)
 * and say accept, reject or tempfail, with the admin's own reply text.
 * Every entry is validated at load; errors are "file:line: reason".
 */
#ifndef WARDEN_POLICY_H
#define WARDEN_POLICY_H

#include <stddef.h>

#include "errors.h"
#include "limit_rules.h"
#include "netaddr.h"
#include "spf_rules.h"

struct dkimv_policy;   /* dkim_rules.h */
struct dkims_policy;
struct dmarc_policy;   /* dmarc_rules.h */
struct score_policy;   /* score_rules.h */

enum access_action {
    ACCESS_ACCEPT,    /* stop looking: the client is allowed */
    ACCESS_REJECT,    /* 5xx greeting, every command refused */
    ACCESS_TEMPFAIL,  /* 421 and close */
};

struct access_rule {
    char name[64];              /* for logs; default "file:line" */
    struct cidr_list networks;
    enum access_action action;
    int code;                   /* reply for reject/tempfail */
    char enh[16];
    char text[400];
    char **listeners;           /* NULL: all listeners */
    size_t nlisteners;
    char where[256];            /* "file:line" of the entry */
};

struct policy {
    struct access_rule *access;
    size_t naccess;
    struct limit_rule *limits;    /* in file order; names unique */
    size_t nlimits;
    struct spf_policy *spf;       /* NULL: no spf section, no SPF check */
    struct dkimv_policy *dkim;    /* NULL: no dkim section, no verifying */
    struct dkims_policy *dkim_sign; /* NULL: nothing is signed */
    struct dmarc_policy *dmarc;   /* NULL: no DMARC */
    struct score_policy *scoring; /* NULL: no content scoring */
};

/* Load and merge the files in order; NULL and errs filled on any error. */
struct policy *policy_load(char *const *files, size_t nfiles,
                           struct errors *errs);
void policy_free(struct policy *p);

/* First rule whose networks (and listener scope) match, or NULL. */
const struct access_rule *policy_access_match(const struct policy *p,
                                              const char *listener,
                                              const struct netaddr *client);

#endif
