/*
 * policy_auth: the `spf:`, `dkim:`, `dkim_sign:` and `dmarc:` sections of
 * the policy files (see spf_rules.h, dkim_rules.h and dmarc_rules.h for
 * what they mean).
 *
 * Each section may appear in one file only, every key is
 * checked, and every problem is reported as "file:line: reason". A
 * result's rule is "ACTION [REPLY]": accept (or tag), tempfail or reject,
 * then an optional reply whose class must match the action. Signing keys
 * are read and checked here, so `warden -t` (and a reload) says at once
 * that a key file is missing, unreadable or not a key.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dkim_rules.h"
#include "dmarc_rules.h"
#include "orgdomain.h"
#include "policy_int.h"
#include "spf_rules.h"

#define must yamldoc_must

/* A PEM private key is a few KB; more is not a key file. */
#define KEY_FILE_MAX 65536

struct action_defaults {
    const char *reject;     /* the reply when "reject" has none */
    const char *tempfail;
};

static bool section_once(const struct ymap *top, const char *key,
                         const char *where_before);
static void load_action(const struct ymap *m, const char *key,
                        const struct action_defaults *def, bool accept_only,
                        struct auth_rule *rule);
static bool valid_domain(const char *s);

/* dkim_sign: */
static void load_keys(const struct ymap *m, struct dkims_policy *sp);
static bool load_key(const struct ylist *l, size_t i,
                     const struct dkims_policy *sp, struct dkims_key *k);
static void read_key_file(const struct ymap *m, struct dkims_key *k);
static void load_grants(const struct ymap *m, struct dkims_policy *sp);
static bool load_grant(const struct ylist *l, size_t i,
                       const struct dkims_policy *sp, struct dkims_grant *g);

/* ---- shared ---- */

/* The section may be written once in all the files. */
static bool section_once(const struct ymap *top, const char *key,
                         const char *where_before)
{
    if (!where_before)
        return true;
    ymap_error(top, ymap_get(top, key), key,
               "already set at %s; write one %s section in all the policy "
               "files",
               where_before, key);
    return false;
}

/* key: "reject 550 5.7.20 \"text\"": the action word, then a reply. */
static void load_action(const struct ymap *m, const char *key,
                        const struct action_defaults *def, bool accept_only,
                        struct auth_rule *rule)
{
    static const struct yamldoc_enum actions[] = {
        {"accept", AUTH_ACCEPT},     {"tag", AUTH_ACCEPT},
        {"tempfail", AUTH_TEMPFAIL}, {"reject", AUTH_REJECT},
        {NULL, 0},
    };
    const struct yamldoc_enum *a = actions;
    yaml_node_t *n = ymap_get(m, key);
    char *val = NULL, err[160];
    const char *rest;
    size_t wl;

    if (!n || ymap_str(m, key, &val) <= 0)
        goto out;
    rule->line = yamldoc_line(n);
    wl = strcspn(val, " \t");
    rest = val + wl + strspn(val + wl, " \t");
    while (a->name && (strlen(a->name) != wl || strncmp(a->name, val, wl)))
        a++;
    if (!a->name) {
        ymap_error(m, n, key,
                   "\"%.*s\": expected accept (or tag), tempfail or reject, "
                   "then an optional reply",
                   (int)wl, val);
        goto out;
    }
    rule->action = (enum auth_action)a->value;
    if (accept_only && rule->action != AUTH_ACCEPT) {
        ymap_error(m, n, key, "a pass is never refused; write %s: accept",
                   key);
        goto out;
    }
    if (rule->action == AUTH_ACCEPT) {
        if (*rest)
            ymap_error(m, n, key, "\"%s\": accept sends no reply", rest);
        goto out;
    }
    char cls = rule->action == AUTH_REJECT ? '5' : '4';
    policy_parse_reply(cls == '5' ? def->reject : def->tempfail, cls,
                       &rule->reply, err, sizeof(err));
    if (*rest) {
        char *reply = must(strdup(rest));
        policy_unquote_reply_text(reply);
        if (policy_parse_reply(reply, cls, &rule->reply, err, sizeof(err)))
            ymap_error(m, n, key, "\"%s\": %s", rest, err);
        free(reply);
    }
out:
    free(val);
}

/* listeners, and exempt: networks, networks_file, authenticated (true:
 * authenticated sessions are not checked, the default: they are users
 * sending through a submission port). */
void policy_load_scope(const struct ymap *m, struct auth_scope *s,
                       const char *what)
{
    static const char *const keys[] = {"networks", "networks_file",
                                       "authenticated", NULL};
    bool skip_authenticated = true;
    struct ymap e;

    if (ymap_strlist(m, "listeners", &s->listeners, &s->nlisteners) > 0 &&
        s->nlisteners == 0)
        ymap_error(m, ymap_get(m, "listeners"), "listeners",
                   "empty list; leave listeners out to %s on every "
                   "listener", what);
    if (ymap_sub(m, "exempt", keys, &e)) {
        if (policy_load_cidrs(&e, "networks", &s->exempt_networks) == 0)
            ymap_error(&e, ymap_get(&e, "networks"), "networks",
                       "empty list; leave networks out to exempt no "
                       "network");
        policy_load_cidr_file(&e, "networks_file", &s->exempt_networks);
        ymap_bool(&e, "authenticated", &skip_authenticated);
    }
    s->check_authenticated = !skip_authenticated;
}

/* Labels of letters, digits, '-' and '_', 1-63 octets, 253 in all. */
static bool valid_domain(const char *s)
{
    size_t label = 0, n = strlen(s);

    if (n == 0 || n > 253)
        return false;
    for (const char *p = s; *p; p++) {
        if (*p == '.') {
            if (label == 0)
                return false;
            label = 0;
        } else if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                     (*p >= '0' && *p <= '9') || *p == '-' || *p == '_') ||
                   ++label > 63) {
            return false;
        }
    }
    return label > 0;
}

/* ---- spf ---- */

/* "spf:" alone (or "spf: {}") turns SPF on with every result tagged only. */
void policy_load_spf(const struct ymap *top, struct policy *p)
{
    static const char *const keys[] = {
        "pass",      "fail",      "softfail",  "neutral", "none",
        "temperror", "permerror", "listeners", "exempt",  NULL,
    };
    /* RFC 7372: X.7.23 "SPF validation failed", X.7.24 "... error" */
    static const struct action_defaults failed = {
        "550 5.7.23 SPF validation failed",
        "451 4.7.23 SPF validation failed, try again later",
    };
    static const struct action_defaults error = {
        "550 5.7.24 SPF validation error",
        "451 4.7.24 SPF validation error, try again later",
    };
    yaml_node_t *n = ymap_get(top, "spf");
    struct spf_policy *sp;
    struct ymap m;

    if (!n || !section_once(top, "spf", p->spf ? p->spf->where : NULL) ||
        !ymap_sub(top, "spf", keys, &m))
        return;
    sp = must(calloc(1, sizeof(*sp)));
    snprintf(sp->where, sizeof(sp->where), "%s:%u", top->d->file,
             yamldoc_line(n));
    for (int r = 0; r < SPFR__COUNT; r++) {
        bool err = r == SPFR_TEMPERROR || r == SPFR_PERMERROR;
        load_action(&m, spf_result_name((enum spf_result)r),
                    err ? &error : &failed, r == SPFR_PASS, &sp->on[r]);
    }
    policy_load_scope(&m, &sp->scope, "check");
    p->spf = sp;
}

/* ---- dkim ---- */

void policy_load_dkim(const struct ymap *top, struct policy *p)
{
    static const char *const keys[] = {
        "pass",      "fail",           "policy",           "neutral",
        "none",      "temperror",      "permerror",        "max_signatures",
        "listeners", "exempt",         "max_message_size", NULL,
    };
    static const struct action_defaults def = {
        "550 5.7.20 No passing DKIM signature found",
        "451 4.7.20 No passing DKIM signature found, try again later",
    };
    yaml_node_t *n = ymap_get(top, "dkim");
    struct dkimv_policy *dp;
    struct ymap m;

    if (!n || !section_once(top, "dkim", p->dkim ? p->dkim->where : NULL) ||
        !ymap_sub(top, "dkim", keys, &m))
        return;
    dp = must(calloc(1, sizeof(*dp)));
    snprintf(dp->where, sizeof(dp->where), "%s:%u", top->d->file,
             yamldoc_line(n));
    for (int r = 0; r < DKIMV__COUNT; r++)
        load_action(&m, dkimv_result_name((enum dkimv_result)r), &def,
                    r == DKIMV_PASS, &dp->on[r]);
    dp->max_signatures = DKIMV_SIGS_DEFAULT;
    ymap_uint(&m, "max_signatures", 1, DKIMV_SIGS_MAX, &dp->max_signatures);
    dp->max_message_size = DKIMV_SIZE_DEFAULT;
    ymap_size(&m, "max_message_size", 1024, &dp->max_message_size);
    policy_load_scope(&m, &dp->scope, "check");
    p->dkim = dp;
}

/* ---- dkim_sign ---- */

void policy_load_dkim_sign(const struct ymap *top, struct policy *p)
{
    static const char *const keys[] = {"keys", "senders", "listeners", NULL};
    yaml_node_t *n = ymap_get(top, "dkim_sign");
    struct dkims_policy *sp;
    struct ymap m;

    if (!n ||
        !section_once(top, "dkim_sign",
                      p->dkim_sign ? p->dkim_sign->where : NULL) ||
        !ymap_sub(top, "dkim_sign", keys, &m))
        return;
    sp = must(calloc(1, sizeof(*sp)));
    snprintf(sp->where, sizeof(sp->where), "%s:%u", top->d->file,
             yamldoc_line(n));
    load_keys(&m, sp);
    load_grants(&m, sp);
    if (ymap_strlist(&m, "listeners", &sp->listeners, &sp->nlisteners) > 0 &&
        sp->nlisteners == 0)
        ymap_error(&m, ymap_get(&m, "listeners"), "listeners",
                   "empty list; leave listeners out to sign on every "
                   "listener");
    p->dkim_sign = sp;
}

static void load_keys(const struct ymap *m, struct dkims_policy *sp)
{
    struct ylist l;

    if (ymap_list(m, "keys", &l) <= 0 || l.n == 0) {
        ymap_error(m, ymap_get(m, "keys") ? ymap_get(m, "keys") : m->node,
                   "keys", "at least one key is needed to sign");
        return;
    }
    sp->keys = must(calloc(l.n, sizeof(*sp->keys)));
    for (size_t i = 0; i < l.n; i++) {
        struct dkims_key *k = &sp->keys[sp->nkeys];
        if (load_key(&l, i, sp, k)) {
            sp->nkeys++;
            continue;
        }
        free(k->domain);
        free(k->selector);
        free(k->pem);
        memset(k, 0, sizeof(*k));
    }
}

static bool load_key(const struct ylist *l, size_t i,
                     const struct dkims_policy *sp, struct dkims_key *k)
{
    static const char *const keys[] = {"domain", "selector", "key", NULL};
    yaml_node_t *item = ylist_at(l, i);
    size_t before = l->d->errs->n;
    char label[48];
    struct ymap m;

    snprintf(k->where, sizeof(k->where), "%s:%u", l->d->file,
             yamldoc_line(item));
    snprintf(label, sizeof(label), "dkim_sign.keys[%zu]", i);
    if (!ymap_open(&m, l->d, item, label, keys))
        return false;
    if (ymap_str(&m, "domain", &k->domain) <= 0 && !ymap_get(&m, "domain"))
        ymap_error(&m, item, NULL, "domain is required");
    else if (k->domain && !valid_domain(k->domain))
        ymap_error(&m, ymap_get(&m, "domain"), "domain",
                   "\"%s\" is not a domain name", k->domain);
    for (size_t j = 0; k->domain && j < sp->nkeys; j++)
        if (strcasecmp(sp->keys[j].domain, k->domain) == 0)
            ymap_error(&m, ymap_get(&m, "domain"), "domain",
                       "%s already has a key at %s", k->domain,
                       sp->keys[j].where);
    for (char *c = k->domain; c && *c; c++)
        if (*c >= 'A' && *c <= 'Z')
            *c = (char)(*c - 'A' + 'a');
    if (ymap_str(&m, "selector", &k->selector) <= 0 &&
        !ymap_get(&m, "selector"))
        ymap_error(&m, item, NULL, "selector is required");
    else if (k->selector &&
             (!valid_domain(k->selector) || strlen(k->selector) > 63))
        ymap_error(&m, ymap_get(&m, "selector"), "selector",
                   "\"%s\" is not a selector (labels of letters, digits "
                   "and '-', 63 characters at most)",
                   k->selector);
    read_key_file(&m, k);
    return l->d->errs->n == before;
}

/* The PEM file under "key", relative to the policy file, checked. It is
 * opened without blocking, so a FIFO cannot hang the loader; fstat then
 * refuses anything that is not a regular file. */
static void read_key_file(const struct ymap *m, struct dkims_key *k)
{
    yaml_node_t *n = ymap_get(m, "key");
    char *file = NULL, *path, err[256];
    struct stat st;
    int fd;

    if (!n) {
        ymap_error(m, m->node, NULL, "key (a PEM private key file) is "
                                     "required");
        return;
    }
    if (ymap_str(m, "key", &file) <= 0)
        return;
    path = yamldoc_path(m->d, file);
    free(file);
    if ((fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)) < 0) {
        ymap_error(m, n, "key", "cannot read \"%s\": %s", path,
                   strerror(errno));
    } else if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
               st.st_size > KEY_FILE_MAX) {
        ymap_error(m, n, "key", "\"%s\" is not a key file", path);
    } else {
        ssize_t got;
        k->pem = must(calloc(1, (size_t)st.st_size + 1));
        got = read(fd, k->pem, (size_t)st.st_size);
        k->pem_len = got > 0 ? (size_t)got : 0;
        if (dkims_key_check(k->pem, k->pem_len, &k->alg, &k->bits, err,
                            sizeof(err)) != 0)
            ymap_error(m, n, "key", "\"%s\": %s", path, err);
    }
    if (fd >= 0)
        close(fd);
    free(path);
}

static void load_grants(const struct ymap *m, struct dkims_policy *sp)
{
    struct ylist l;

    if (ymap_list(m, "senders", &l) <= 0 || l.n == 0) {
        ymap_error(m, ymap_get(m, "senders") ? ymap_get(m, "senders")
                                             : m->node,
                   "senders",
                   "needs at least one entry (users: and domains:): "
                   "nothing is signed for a user no entry names");
        return;
    }
    sp->grants = must(calloc(l.n, sizeof(*sp->grants)));
    for (size_t i = 0; i < l.n; i++) {
        struct dkims_grant *g = &sp->grants[sp->ngrants];
        if (load_grant(&l, i, sp, g)) {
            sp->ngrants++;
            continue;
        }
        yamldoc_strv_free(g->users, g->nusers);
        yamldoc_strv_free(g->domains, g->ndomains);
        memset(g, 0, sizeof(*g));
    }
}

/* Does some key sign for the From: domains pattern names? */
static bool pattern_has_key(const struct dkims_policy *sp, const char *pat)
{
    const char *base = strncmp(pat, "*.", 2) == 0 ? pat + 2 : pat;

    if (dkims_key_for(sp, base))
        return true;
    for (size_t i = 0; i < sp->nkeys; i++)
        if (dkims_domain_match(pat, sp->keys[i].domain))
            return true;
    return false;
}

/* A required, non-empty list of strings. */
static void load_grant_list(const struct ymap *m, const yaml_node_t *item,
                            const char *key, char ***v, size_t *n,
                            const char *what)
{
    int rc = ymap_strlist(m, key, v, n);

    if (rc == 0)
        ymap_error(m, item, NULL, "%s is required: %s", key, what);
    else if (rc > 0 && *n == 0)
        ymap_error(m, ymap_get(m, key), key, "empty list; needs %s", what);
}

static bool load_grant(const struct ylist *l, size_t i,
                       const struct dkims_policy *sp, struct dkims_grant *g)
{
    static const char *const keys[] = {"users", "domains", NULL};
    yaml_node_t *item = ylist_at(l, i);
    size_t before = l->d->errs->n;
    char label[48];
    struct ymap m;

    snprintf(label, sizeof(label), "dkim_sign.senders[%zu]", i);
    if (!ymap_open(&m, l->d, item, label, keys))
        return false;
    load_grant_list(&m, item, "users", &g->users, &g->nusers,
                    "user patterns, e.g. [\"*@example.com\", alice]");
    load_grant_list(&m, item, "domains", &g->domains, &g->ndomains,
                    "From: domains, e.g. [example.com, \"*.example.com\"]");
    for (size_t j = 0; j < g->ndomains; j++) {
        const char *d = g->domains[j];
        const char *base = strncmp(d, "*.", 2) == 0 ? d + 2 : d;
        if (!valid_domain(base))
            ymap_error(&m, ymap_get(&m, "domains"), "domains",
                       "\"%s\" is not a domain (or *.domain)", d);
        else if (!pattern_has_key(sp, d))
            ymap_error(&m, ymap_get(&m, "domains"), "domains",
                       "no key in dkim_sign.keys signs for %s", d);
    }
    return l->d->errs->n == before;
}

/* ---- dmarc ---- */

void policy_load_dmarc(const struct ymap *top, struct policy *p)
{
    static const char *const keys[] = {
        "honor_policy", "policy_reject", "policy_quarantine",
        "fail",         "temperror",     "permerror",
        "listeners",    "exempt",        "public_suffix_list",
        NULL,
    };
    static const struct action_defaults def = {
        "550 5.7.1 Email rejected per DMARC policy",
        "451 4.7.1 DMARC policy check failed, try again later",
    };
    yaml_node_t *n = ymap_get(top, "dmarc");
    struct dmarc_policy *dp;
    char *list = NULL, *path, err[512];
    struct ymap m;

    if (!n ||
        !section_once(top, "dmarc", p->dmarc ? p->dmarc->where : NULL) ||
        !ymap_sub(top, "dmarc", keys, &m))
        return;
    dp = must(calloc(1, sizeof(*dp)));
    snprintf(dp->where, sizeof(dp->where), "%s:%u", top->d->file,
             yamldoc_line(n));
    ymap_bool(&m, "honor_policy", &dp->honor_policy);
    /* honoring p=reject rejects unless the admin says otherwise */
    dp->policy_reject.action = AUTH_REJECT;
    policy_parse_reply(def.reject, '5', &dp->policy_reject.reply, err,
                       sizeof(err));
    load_action(&m, "policy_reject", &def, false, &dp->policy_reject);
    load_action(&m, "policy_quarantine", &def, false, &dp->policy_quarantine);
    load_action(&m, "fail", &def, false, &dp->fail);
    load_action(&m, "temperror", &def, false, &dp->temperror);
    load_action(&m, "permerror", &def, false, &dp->permerror);
    policy_load_scope(&m, &dp->scope, "check");
    path = ymap_str(&m, "public_suffix_list", &list) > 0
               ? yamldoc_path(m.d, list)
               : must(strdup(ORGDOMAIN_DEFAULT_LIST));
    if (!(dp->psl = orgdomain_load(path, err, sizeof(err))))
        ymap_error(&m,
                   list ? ymap_get(&m, "public_suffix_list") : n, list
                       ? "public_suffix_list"
                       : NULL,
                   "%s%s", err,
                   list ? "" : " (Debian: apt-get install publicsuffix)");
    free(list);
    free(path);
    p->dmarc = dp;
}

/* ---- across sections ---- */

void policy_check_auth(const struct policy *p, struct errors *errs)
{
    const char *missing = !p->spf && !p->dkim ? "spf and dkim sections"
                          : !p->spf           ? "an spf section"
                                              : "a dkim section";

    if (p->dmarc && (!p->spf || !p->dkim))
        errors_add(errs, NULL, 0,
                   "%s: dmarc needs %s in a policy file too, since it "
                   "aligns their results (\"spf: {}\" and \"dkim: {}\" "
                   "only tag)",
                   p->dmarc->where, missing);
}
