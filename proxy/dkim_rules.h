/*
 * dkim_rules: what the `dkim:` (verify inbound) and `dkim_sign:` (sign
 * outbound) sections of a policy file say.
 *
 * dkim: turns verification on at end of data, with an action for the
 * message's result (see dkimverify.h: pass, fail, policy, neutral, none,
 * temperror, permerror; default: accept, i.e. tag only), bounds on the
 * work (max_signatures, max_message_size) and a scope.
 *
 * dkim_sign: keys (domain, selector, PEM file) and grants (which
 * authenticated users may have mail signed for which From: domains). A
 * message is signed when its session is authenticated, its From: domain
 * (or a parent of it) has a key, and a grant lets the user send for that
 * From: domain. Key files are read and checked when the policy loads.
 *
 * This header is the data; policy_auth.c loads it, check_dkim.c and
 * check_dkim_sign.c apply it.
 */
#ifndef WARDEN_DKIM_RULES_H
#define WARDEN_DKIM_RULES_H

#include <stdbool.h>
#include <stddef.h>

#include "auth_rules.h"
#include "dkimsign.h"
#include "dkimverify.h"

/* Default dkim.max_message_size: bytes read for verification. */
#define DKIMV_SIZE_DEFAULT (10u * 1024 * 1024)

struct dkimv_policy {
    char where[256];                   /* "file:line" of the section */
    struct auth_rule on[DKIMV__COUNT]; /* by enum dkimv_result */
    unsigned max_signatures;           /* checked per message */
    size_t max_message_size;           /* larger: not verified (neutral) */
    struct auth_scope scope;
};

struct dkims_key {
    char *domain;        /* lower case */
    char *selector;
    char *pem;           /* the key file's contents */
    size_t pem_len;
    enum dkims_alg alg;
    unsigned bits;
    char where[256];
};

struct dkims_grant {
    char **users;        /* patterns: "*" any run, "?" one character */
    size_t nusers;
    char **domains;      /* "example.com", or "*.example.com" (subdomains) */
    size_t ndomains;
};

struct dkims_policy {
    char where[256];
    struct dkims_key *keys;
    size_t nkeys;
    struct dkims_grant *grants;
    size_t ngrants;
    char **listeners;    /* NULL: every listener */
    size_t nlisteners;
};

void dkimv_policy_free(struct dkimv_policy *p);
void dkims_policy_free(struct dkims_policy *p);

/* The key for mail From: domain: its own, else its nearest parent's. */
const struct dkims_key *dkims_key_for(const struct dkims_policy *p,
                                      const char *domain);

/* May user have mail signed for From: domain? */
bool dkims_allowed(const struct dkims_policy *p, const char *user,
                   const char *domain);

/* Does the listener take part (NULL listener: only if no list)? */
bool dkims_listener_ok(const struct dkims_policy *p, const char *listener);

/* Glob without case: "*" any run of characters, "?" one. */
bool dkims_user_match(const char *pattern, const char *user);
/* "example.com" exactly, "*.example.com" any name below it. */
bool dkims_domain_match(const char *pattern, const char *domain);

#endif
