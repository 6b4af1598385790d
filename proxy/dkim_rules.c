/*
 * dkim_rules: the dkim and dkim_sign policies' own helpers (loading is in
 * policy_auth.c).
 */
#define _GNU_SOURCE /* FNM_CASEFOLD */
#include "dkim_rules.h"

#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "yamldoc.h"

void dkimv_policy_free(struct dkimv_policy *p)
{
    if (!p)
        return;
    auth_scope_free(&p->scope);
    free(p);
}

void dkims_policy_free(struct dkims_policy *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->nkeys; i++) {
        free(p->keys[i].domain);
        free(p->keys[i].selector);
        if (p->keys[i].pem) /* a private key: do not leave it in the heap */
            explicit_bzero(p->keys[i].pem, p->keys[i].pem_len);
        free(p->keys[i].pem);
    }
    free(p->keys);
    for (size_t i = 0; i < p->ngrants; i++) {
        yamldoc_strv_free(p->grants[i].users, p->grants[i].nusers);
        yamldoc_strv_free(p->grants[i].domains, p->grants[i].ndomains);
    }
    free(p->grants);
    yamldoc_strv_free(p->listeners, p->nlisteners);
    free(p);
}

const struct dkims_key *dkims_key_for(const struct dkims_policy *p,
                                      const char *domain)
{
    for (const char *d = domain; d && *d;) {
        for (size_t i = 0; i < p->nkeys; i++)
            if (strcasecmp(p->keys[i].domain, d) == 0)
                return &p->keys[i];
        d = strchr(d, '.');
        d = d ? d + 1 : NULL;
    }
    return NULL;
}

bool dkims_user_match(const char *pattern, const char *user)
{
    return fnmatch(pattern, user, FNM_CASEFOLD | FNM_NOESCAPE) == 0;
}

bool dkims_domain_match(const char *pattern, const char *domain)
{
    size_t np, nd;

    if (strncmp(pattern, "*.", 2) != 0)
        return strcasecmp(pattern, domain) == 0;
    np = strlen(pattern + 1); /* ".example.com" */
    nd = strlen(domain);
    return nd > np && strcasecmp(domain + nd - np, pattern + 1) == 0;
}

bool dkims_allowed(const struct dkims_policy *p, const char *user,
                   const char *domain)
{
    for (size_t g = 0; g < p->ngrants; g++) {
        const struct dkims_grant *gr = &p->grants[g];
        bool user_ok = false;
        for (size_t i = 0; i < gr->nusers && !user_ok; i++)
            user_ok = dkims_user_match(gr->users[i], user);
        for (size_t i = 0; user_ok && i < gr->ndomains; i++)
            if (dkims_domain_match(gr->domains[i], domain))
                return true;
    }
    return false;
}

bool dkims_listener_ok(const struct dkims_policy *p, const char *listener)
{
    if (p->nlisteners == 0)
        return true;
    for (size_t i = 0; listener && i < p->nlisteners; i++)
        if (strcmp(p->listeners[i], listener) == 0)
            return true;
    return false;
}
