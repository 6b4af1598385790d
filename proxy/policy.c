/*
 * policy: load the policy files admins edit, and answer questions on them.
 *
 * A policy file is a mapping of sections; each section has one loader in
 * the sections[] table below, so a new kind of policy (limits, lists) is
 * one new row and one new function. Files merge in order: their access
 * entries are appended, and the first matching entry wins; their limits
 * are appended too, and every limit that applies is checked. The spf,
 * dkim, dmarc and scoring sections (loaded in policy_auth.c and
 * policy_score.c) may appear in one file only: two would silently fight.
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dkim_rules.h"
#include "dmarc_rules.h"
#include "policy.h"
#include "policy_int.h"
#include "score_rules.h"
#include "yamldoc.h"

#define must yamldoc_must
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* The reply text buffers (access rules and limits), less their NUL. */
#define TEXT_MAX 399
_Static_assert(sizeof(((struct access_rule *)0)->text) == TEXT_MAX + 1,
               "access reply text size");
_Static_assert(sizeof(((struct limit_reply *)0)->text) == TEXT_MAX + 1,
               "limit reply text size");

/* A concurrency limit counts connections at once: more is a typo. */
#define CONCURRENT_MAX 100000

/* Which replies an action may send, for load_reply(). */
struct reply_kind {
    const char *action; /* "a reject", ...: the subject of messages */
    char cls;           /* '4' or '5' */
    const int *codes;   /* 0-terminated; NULL: any code of the class */
};

enum limit_action { LIMIT_TEMPFAIL, LIMIT_REJECT };

static void load_file(struct policy *p, const char *file, struct errors *errs);

/* access: */
static void load_access(const struct ymap *top, struct policy *p);
static bool load_rule(const struct ylist *l, size_t i, struct access_rule *r);
static void load_rule_networks(const struct ymap *m, const yaml_node_t *item,
                               struct access_rule *r);
static void load_rule_reply(const struct ymap *m, struct access_rule *r);
static bool valid_name(const char *s, size_t size);
static void rule_free(struct access_rule *r);
static bool rule_in_scope(const struct access_rule *r, const char *listener);

/* limits: */
static void load_limits(const struct ymap *top, struct policy *p);
static bool load_limit(const struct ylist *l, size_t i, const struct policy *p,
                       struct limit_rule *r);
static void load_limit_name(const struct ymap *m, const yaml_node_t *item,
                            const struct policy *p, struct limit_rule *r);
static bool valid_limit_name(const char *s);
static void load_limit_keys(const struct ymap *m, const yaml_node_t *item,
                            int count, struct limit_rule *r);
static const char *key_conflict(unsigned key, int count);
static void load_limit_prefixes(const struct ymap *m, bool keys_known,
                                struct limit_rule *r);
static void load_limit_rate(const struct ymap *m, const yaml_node_t *item,
                            int count, struct limit_rule *r);
static void load_limit_concurrency(const struct ymap *m, yaml_node_t *n,
                                   struct limit_rule *r);
static void load_limit_windows(const struct ymap *m, struct limit_rule *r);
static void load_limit_burst(const struct ymap *m, int count,
                             struct limit_rule *r);
static void load_limit_scope(const struct ymap *m, struct limit_rule *r);
static void load_limit_exempt(const struct ymap *m, struct limit_rule *r);
static void load_limit_senders(const struct ymap *m, const char *key,
                               struct limit_rule *r);
static bool valid_sender(const char *s);
static void load_limit_action(const struct ymap *m, int count,
                              struct limit_rule *r);
static void load_limit_escalate(const struct ymap *m, int action,
                                struct limit_rule *r);
static void check_not_empty(const struct ymap *m, const char *key, size_t n,
                            const char *hint);

static void unquote_reply_text(char *s);

/* shared: */
static int load_cidrs(const struct ymap *m, const char *key,
                      struct cidr_list *list);
static void load_cidr_file(const struct ymap *m, const char *key,
                           struct cidr_list *list);
static int load_reply(const struct ymap *m, const char *key,
                      const struct reply_kind *k, const char *def,
                      struct limit_reply *out);
static int parse_reply(const char *s, const struct reply_kind *k,
                       struct limit_reply *out, char *err, size_t errlen);
static bool code_allowed(int code, const struct reply_kind *k, char *err,
                         size_t errlen);
static size_t parse_enh(const char *s);
static int check_text(const char *text, char *err, size_t errlen);

/* The top-level sections of a policy file. */
static const struct section {
    const char *key;
    void (*load)(const struct ymap *top, struct policy *p);
} sections[] = {
    {"access", load_access},
    {"limits", load_limits},
    {"spf", policy_load_spf},
    {"dkim", policy_load_dkim},           /* these three: policy_auth.c */
    {"dkim_sign", policy_load_dkim_sign},
    {"dmarc", policy_load_dmarc},
    {"scoring", policy_load_scoring},     /* policy_score.c */
};

/* ---- loading ---- */

struct policy *policy_load(char *const *files, size_t nfiles,
                           struct errors *errs)
{
    struct policy *p = must(calloc(1, sizeof(*p)));
    size_t before = errs->n;

    for (size_t i = 0; i < nfiles; i++)
        load_file(p, files[i], errs);
    policy_check_auth(p, errs);
    if (errs->n != before) {
        policy_free(p);
        return NULL;
    }
    return p;
}

static void load_file(struct policy *p, const char *file, struct errors *errs)
{
    const char *keys[ARRAY_LEN(sections) + 1] = {NULL};
    struct yamldoc d;
    struct ymap top;

    for (size_t i = 0; i < ARRAY_LEN(sections); i++)
        keys[i] = sections[i].key;
    if (yamldoc_load(&d, file, errs) == 0 &&
        ymap_open(&top, &d, yamldoc_root(&d), "", keys)) {
        for (size_t i = 0; i < ARRAY_LEN(sections); i++)
            sections[i].load(&top, p);
    }
    yamldoc_free(&d);
}

void policy_free(struct policy *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->naccess; i++)
        rule_free(&p->access[i]);
    free(p->access);
    for (size_t i = 0; i < p->nlimits; i++)
        limit_rule_free(&p->limits[i]);
    free(p->limits);
    spf_policy_free(p->spf);
    dkimv_policy_free(p->dkim);
    dkims_policy_free(p->dkim_sign);
    dmarc_policy_free(p->dmarc);
    score_policy_free(p->scoring);
    free(p);
}

/* ---- access ---- */

static void load_access(const struct ymap *top, struct policy *p)
{
    struct ylist l;

    if (ymap_list(top, "access", &l) <= 0 || l.n == 0)
        return;
    p->access =
        must(realloc(p->access, (p->naccess + l.n) * sizeof(*p->access)));
    for (size_t i = 0; i < l.n; i++) {
        struct access_rule *r = &p->access[p->naccess];
        memset(r, 0, sizeof(*r));
        if (load_rule(&l, i, r))
            p->naccess++;
        else
            rule_free(r);
    }
}

static void rule_free(struct access_rule *r)
{
    cidr_list_free(&r->networks);
    yamldoc_strv_free(r->listeners, r->nlisteners);
    r->listeners = NULL;
    r->nlisteners = 0;
}

/* Names end up in log lines: keep them one greppable word. */
static bool valid_name(const char *s, size_t size)
{
    size_t n = strlen(s);

    for (const char *p = s; *p; p++)
        if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f)
            return false;
    return n > 0 && n < size;
}

/*
 * The default name is "file:line" with the file's base name, so it fits
 * the name buffer and log lines stay short; where has the full path.
 */
static bool load_rule(const struct ylist *l, size_t i, struct access_rule *r)
{
    static const char *const keys[] = {"name",   "networks", "networks_file",
                                       "action", "reply",    "listeners",
                                       NULL};
    static const struct yamldoc_enum actions[] = {
        {"accept", ACCESS_ACCEPT},
        {"reject", ACCESS_REJECT},
        {"tempfail", ACCESS_TEMPFAIL},
        {NULL, 0},
    };
    yaml_node_t *item = ylist_at(l, i);
    const char *base = strrchr(l->d->file, '/');
    size_t before = l->d->errs->n;
    unsigned line = yamldoc_line(item);
    char label[32], *name = NULL;
    struct ymap m;
    int action;

    snprintf(r->where, sizeof(r->where), "%s:%u", l->d->file, line);
    snprintf(r->name, sizeof(r->name), "%.50s:%u", base ? base + 1 : l->d->file,
             line);
    snprintf(label, sizeof(label), "access[%zu]", i);
    if (!ymap_open(&m, l->d, item, label, keys))
        return false;

    if (ymap_str(&m, "name", &name) > 0) {
        if (!valid_name(name, sizeof(r->name)))
            ymap_error(&m, ymap_get(&m, "name"), "name",
                       "must be 1-%zu printable characters without blanks",
                       sizeof(r->name) - 1);
        else
            snprintf(r->name, sizeof(r->name), "%s", name);
    }
    free(name);
    load_rule_networks(&m, item, r);
    if (!ymap_get(&m, "action"))
        ymap_error(&m, item, NULL, "action is required");
    else if (ymap_enum(&m, "action", actions, &action) > 0) {
        r->action = (enum access_action)action;
        load_rule_reply(&m, r);
    }
    if (ymap_strlist(&m, "listeners", &r->listeners, &r->nlisteners) > 0)
        check_not_empty(&m, "listeners", r->nlisteners,
                        "leave listeners out to match every listener");
    return l->d->errs->n == before;
}

/*
 * Inline networks and a CIDR file both go into one list. The error is at
 * item, not at the mapping: an empty entry ("- " alone) has no mapping,
 * and the message would have lost its line.
 */
static void load_rule_networks(const struct ymap *m, const yaml_node_t *item,
                               struct access_rule *r)
{
    if (!ymap_get(m, "networks") && !ymap_get(m, "networks_file"))
        ymap_error(m, item, NULL, "needs networks or networks_file");
    load_cidrs(m, "networks", &r->networks);
    load_cidr_file(m, "networks_file", &r->networks);
}

static void load_rule_reply(const struct ymap *m, struct access_rule *r)
{
    static const struct reply_kind reject = {"a reject", '5', NULL};
    static const struct reply_kind tempfail = {"a tempfail", '4', NULL};
    struct limit_reply reply;

    if (r->action == ACCESS_ACCEPT) {
        if (ymap_get(m, "reply"))
            ymap_error(m, ymap_get(m, "reply"), "reply",
                       "an accept entry sends no reply");
        return;
    }
    if (r->action == ACCESS_REJECT)
        load_reply(m, "reply", &reject, "554 5.7.1 Access denied", &reply);
    else
        load_reply(m, "reply", &tempfail, "421 4.7.0 Try again later", &reply);
    r->code = reply.code;
    snprintf(r->enh, sizeof(r->enh), "%s", reply.enh);
    snprintf(r->text, sizeof(r->text), "%s", reply.text);
}

/* ---- limits ---- */

static const struct yamldoc_enum limit_counts[] = {
    {"concurrent", LIMIT_CONCURRENT},
    {"connections", LIMIT_CONNECTIONS},
    {"messages", LIMIT_MESSAGES},
    {"recipients", LIMIT_RECIPIENTS},
    {"bytes", LIMIT_BYTES},
    {"failures", LIMIT_FAILURES},
    {NULL, 0},
};

static const struct yamldoc_enum limit_keys[] = {
    {"client_ip", LK_CLIENT_IP},
    {"client_net", LK_CLIENT_NET},
    {"helo", LK_HELO},
    {"sender", LK_SENDER},
    {"sender_domain", LK_SENDER_DOMAIN},
    {"rcpt_domain", LK_RCPT_DOMAIN},
    {"user", LK_USER},
    {NULL, 0},
};

static void load_limits(const struct ymap *top, struct policy *p)
{
    struct ylist l;

    if (ymap_list(top, "limits", &l) <= 0 || l.n == 0)
        return;
    p->limits =
        must(realloc(p->limits, (p->nlimits + l.n) * sizeof(*p->limits)));
    for (size_t i = 0; i < l.n; i++) {
        struct limit_rule *r = &p->limits[p->nlimits];
        memset(r, 0, sizeof(*r));
        if (load_limit(&l, i, p, r))
            p->nlimits++;
        else
            limit_rule_free(r);
    }
}

/*
 * One entry. count is read first: which keys, which rate syntax and which
 * default reply are valid depend on it (-1 while unknown: those checks
 * are skipped rather than guessed).
 */
static bool load_limit(const struct ylist *l, size_t i, const struct policy *p,
                       struct limit_rule *r)
{
    static const char *const keys[] = {
        "name",     "key",           "count",         "rate",
        "burst",    "client_net_v4", "client_net_v6", "listeners",
        "networks", "users",         "authenticated", "exempt",
        "action",   "reply",         "dry_run",       "escalate",
        NULL,
    };
    yaml_node_t *item = ylist_at(l, i);
    size_t before = l->d->errs->n, keys_before;
    char label[32];
    struct ymap m;
    int count = -1;

    snprintf(r->where, sizeof(r->where), "%s:%u", l->d->file,
             yamldoc_line(item));
    snprintf(label, sizeof(label), "limits[%zu]", i);
    r->net_v4 = 24;
    r->net_v6 = 64;
    if (!ymap_open(&m, l->d, item, label, keys))
        return false;

    load_limit_name(&m, item, p, r);
    if (!ymap_get(&m, "count"))
        ymap_error(&m, item, NULL, "count is required");
    else if (ymap_enum(&m, "count", limit_counts, &count) > 0)
        r->count = (enum limit_count)count;
    keys_before = l->d->errs->n;
    load_limit_keys(&m, item, count, r);
    load_limit_prefixes(&m, l->d->errs->n == keys_before, r);
    load_limit_rate(&m, item, count, r);
    load_limit_scope(&m, r);
    load_limit_exempt(&m, r);
    load_limit_action(&m, count, r);
    return l->d->errs->n == before;
}

/* Required, and unique across every policy file loaded before this one. */
static void load_limit_name(const struct ymap *m, const yaml_node_t *item,
                            const struct policy *p, struct limit_rule *r)
{
    yaml_node_t *at = ymap_get(m, "name");
    char *name = NULL;

    if (!at) {
        ymap_error(m, item, NULL, "name is required");
        return;
    }
    if (ymap_str(m, "name", &name) <= 0)
        return;
    if (!valid_limit_name(name)) {
        ymap_error(m, at, "name", "\"%s\": use 1-%zu of A-Z a-z 0-9 _ . -",
                   name, sizeof(r->name) - 1);
        free(name);
        return;
    }
    for (size_t j = 0; j < p->nlimits; j++) {
        if (strcmp(p->limits[j].name, name) == 0) {
            ymap_error(m, at, "name",
                       "duplicate limit name \"%s\" (also at %s)", name,
                       p->limits[j].where);
            break;
        }
    }
    snprintf(r->name, sizeof(r->name), "%s", name);
    free(name);
}

/* Names go into store keys and log lines: a plain word, no separators. */
static bool valid_limit_name(const char *s)
{
    size_t n = strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                         "0123456789_.-");

    return n > 0 && n == strlen(s) &&
           n < sizeof(((struct limit_rule *)0)->name);
}

/* One key name or a list of them (a combined key); each at most once. */
static void load_limit_keys(const struct ymap *m, const yaml_node_t *item,
                            int count, struct limit_rule *r)
{
    struct ylist l;
    int rc = ymap_list(m, "key", &l);

    if (rc == 0)
        ymap_error(m, item, NULL, "key is required");
    if (rc <= 0)
        return;
    if (l.n == 0) {
        ymap_error(m, ymap_get(m, "key"), "key",
                   "at least one key is required");
        return;
    }
    for (size_t i = 0; i < l.n; i++) {
        const char *s = ylist_str(&l, i);
        const struct yamldoc_enum *k = limit_keys;
        const char *conflict;

        if (!s)
            continue;
        while (k->name && strcmp(k->name, s) != 0)
            k++;
        if (!k->name)
            yamldoc_error(l.d, ylist_at(&l, i),
                          "%s: \"%s\" is not one of client_ip, client_net, "
                          "helo, sender, sender_domain, rcpt_domain, user",
                          l.name, s);
        else if (r->keys & (unsigned)k->value)
            yamldoc_error(l.d, ylist_at(&l, i), "%s: \"%s\" is listed twice",
                          l.name, s);
        else if ((conflict = key_conflict((unsigned)k->value, count)))
            yamldoc_error(l.d, ylist_at(&l, i), "%s: \"%s\" %s", l.name, s,
                          conflict);
        else
            r->keys |= (unsigned)k->value;
    }
}

/*
 * Keys a checkpoint cannot know: connections are counted when the client
 * connects, before HELO, AUTH or any MAIL FROM; a recipient domain exists
 * once per RCPT.
 */
static const char *key_conflict(unsigned key, int count)
{
    const unsigned later = LK_SENDER | LK_SENDER_DOMAIN | LK_RCPT_DOMAIN |
                           LK_HELO | LK_USER;

    if ((key & later) &&
        (count == LIMIT_CONCURRENT || count == LIMIT_CONNECTIONS))
        return "cannot key a count of connections: connections are counted "
               "when the client connects, before HELO, AUTH and MAIL FROM "
               "(key them by client_ip or client_net, or count messages)";
    if (key == LK_RCPT_DOMAIN && count >= 0 && count != LIMIT_RECIPIENTS)
        return "works only with count: recipients";
    return NULL;
}

/* Prefixes make sense with key client_net only: anything else is a typo. */
static void load_limit_prefixes(const struct ymap *m, bool keys_known,
                                struct limit_rule *r)
{
    static const struct {
        const char *key;
        unsigned min, max;
    } prefixes[] = {{"client_net_v4", 8, 32}, {"client_net_v6", 16, 128}};

    for (size_t i = 0; i < ARRAY_LEN(prefixes); i++) {
        unsigned *out = i == 0 ? &r->net_v4 : &r->net_v6;

        if (ymap_uint(m, prefixes[i].key, prefixes[i].min, prefixes[i].max,
                      out) > 0 &&
            keys_known && !(r->keys & LK_CLIENT_NET))
            ymap_error(m, ymap_get(m, prefixes[i].key), prefixes[i].key,
                       "only used with key: client_net");
    }
}

static void load_limit_rate(const struct ymap *m, const yaml_node_t *item,
                            int count, struct limit_rule *r)
{
    yaml_node_t *n = ymap_get(m, "rate");

    if (!n)
        ymap_error(m, item, NULL, "rate is required");
    else if (count == LIMIT_CONCURRENT)
        load_limit_concurrency(m, n, r);
    else if (count >= 0)
        load_limit_windows(m, r);
    load_limit_burst(m, count, r);
}

/* count: concurrent takes a plain number: connections open at once. */
static void load_limit_concurrency(const struct ymap *m, yaml_node_t *n,
                                   struct limit_rule *r)
{
    const char *s = n->type == YAML_SCALAR_NODE && !yamldoc_is_null(n)
                        ? (const char *)n->data.scalar.value
                        : NULL;
    unsigned v;

    if (!s || !*s || strspn(s, "0123456789") != strlen(s)) {
        if (s)
            ymap_error(m, n, "rate",
                       "\"%s\": count: concurrent takes a number of "
                       "connections open at once, e.g. rate: 10",
                       s);
        else
            ymap_error(m, n, "rate",
                       "count: concurrent takes a number of connections "
                       "open at once, e.g. rate: 10; got %s",
                       yamldoc_kind(n));
        return;
    }
    if (ymap_uint(m, "rate", 1, CONCURRENT_MAX, &v) <= 0)
        return;
    r->windows[0].count = v;
    r->nwindows = 1;
}

/* "N/period", or a list of up to LIMIT_MAX_WINDOWS with distinct periods. */
static void load_limit_windows(const struct ymap *m, struct limit_rule *r)
{
    struct ylist l;
    char buf[64];

    if (ymap_list(m, "rate", &l) <= 0)
        return;
    if (l.n == 0 || l.n > LIMIT_MAX_WINDOWS) {
        ymap_error(m, ymap_get(m, "rate"), "rate",
                   "expected 1 to %d rates like 100/1m", LIMIT_MAX_WINDOWS);
        return;
    }
    for (size_t i = 0; i < l.n; i++) {
        const char *s = ylist_str(&l, i), *why;
        struct rate w;
        size_t j;

        if (!s)
            continue;
        if (rate_parse(s, &w, &why) != 0) {
            yamldoc_error(l.d, ylist_at(&l, i), "%s: \"%s\": %s", l.name, s,
                          why);
            continue;
        }
        for (j = 0; j < r->nwindows; j++)
            if (r->windows[j].period_ms == w.period_ms)
                break;
        if (j < r->nwindows)
            yamldoc_error(l.d, ylist_at(&l, i),
                          "%s: \"%s\": same period as %s; one rate per period",
                          l.name, s,
                          rate_format(&r->windows[j], buf, sizeof(buf)));
        else
            r->windows[r->nwindows++] = w;
    }
}

/*
 * One burst for every window. More than 100 times the smallest allowance
 * at once is surely a mistake (a burst of 10000 on 100/1h).
 */
static void load_limit_burst(const struct ymap *m, int count,
                             struct limit_rule *r)
{
    yaml_node_t *n = ymap_get(m, "burst");
    uint64_t smallest = UINT64_MAX;
    unsigned burst;

    if (!n)
        return;
    if (count == LIMIT_CONCURRENT) {
        ymap_error(m, n, "burst", "does not apply to count: concurrent");
        return;
    }
    if (ymap_uint(m, "burst", 1, UINT_MAX, &burst) <= 0 || r->nwindows == 0)
        return;
    for (size_t i = 0; i < r->nwindows; i++)
        if (r->windows[i].count < smallest)
            smallest = r->windows[i].count;
    if (smallest <= UINT64_MAX / 100 && burst > smallest * 100) {
        ymap_error(m, n, "burst",
                   "must be at most %llu (100 times the smallest rate's N)",
                   (unsigned long long)(smallest * 100));
        return;
    }
    for (size_t i = 0; i < r->nwindows; i++)
        r->windows[i].burst = burst;
}

/* listeners, networks, users: empty means "all", so "[]" is refused. */
static void load_limit_scope(const struct ymap *m, struct limit_rule *r)
{
    if (ymap_strlist(m, "listeners", &r->listeners, &r->nlisteners) > 0)
        check_not_empty(m, "listeners", r->nlisteners,
                        "leave listeners out to apply to every listener");
    if (load_cidrs(m, "networks", &r->networks) == 0)
        check_not_empty(m, "networks", 0,
                        "leave networks out to apply to every client");
    if (ymap_strlist(m, "users", &r->users, &r->nusers) > 0)
        check_not_empty(m, "users", r->nusers,
                        "leave users out to apply to every user");
    ymap_bool(m, "authenticated", &r->authenticated);
}

static void check_not_empty(const struct ymap *m, const char *key, size_t n,
                            const char *hint)
{
    if (n == 0)
        ymap_error(m, ymap_get(m, key), key, "empty list; %s", hint);
}

static void load_limit_exempt(const struct ymap *m, struct limit_rule *r)
{
    static const char *const keys[] = {"networks", "networks_file", "users",
                                       "senders", NULL};
    struct ymap e;

    if (!ymap_sub(m, "exempt", keys, &e))
        return;
    load_cidrs(&e, "networks", &r->exempt_networks);
    load_cidr_file(&e, "networks_file", &r->exempt_networks);
    ymap_strlist(&e, "users", &r->exempt_users, &r->nexempt_users);
    load_limit_senders(&e, "senders", r);
}

/* Addresses or "@domain", lower-cased: the checks compare them that way. */
static void load_limit_senders(const struct ymap *m, const char *key,
                               struct limit_rule *r)
{
    struct ylist l;

    if (ymap_list(m, key, &l) <= 0 || l.n == 0)
        return;
    r->exempt_senders = must(calloc(l.n, sizeof(*r->exempt_senders)));
    for (size_t i = 0; i < l.n; i++) {
        const char *s = ylist_str(&l, i);
        char *v;

        if (!s)
            continue;
        if (!valid_sender(s)) {
            yamldoc_error(l.d, ylist_at(&l, i),
                          "%s: \"%s\": expected an address "
                          "(user@example.com) or a domain (@example.com)",
                          l.name, s);
            continue;
        }
        v = must(strdup(s));
        for (char *c = v; *c; c++)
            if (*c >= 'A' && *c <= 'Z')
                *c = (char)(*c - 'A' + 'a');
        r->exempt_senders[r->nexempt_senders++] = v;
    }
}

/* "local@domain" or "@domain": one domain after the last '@', no blanks. */
static bool valid_sender(const char *s)
{
    const char *at = strrchr(s, '@');

    for (const char *p = s; *p; p++)
        if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f ||
            *p == '<' || *p == '>')
            return false;
    /* one '@' only: quoted local parts are too rare to be worth it */
    return at && at == strchr(s, '@') && at[1] && at[1] != '.';
}

static void load_limit_action(const struct ymap *m, int count,
                              struct limit_rule *r)
{
    static const struct yamldoc_enum actions[] = {
        {"tempfail", LIMIT_TEMPFAIL},
        {"reject", LIMIT_REJECT},
        {NULL, 0},
    };
    static const int temp_codes[] = {421, 450, 451, 0};
    static const int reject_codes[] = {550, 554, 0};
    static const struct reply_kind tempfail = {"a tempfail limit", '4',
                                               temp_codes};
    static const struct reply_kind reject = {"a reject limit", '5',
                                             reject_codes};
    int action = LIMIT_TEMPFAIL;

    ymap_bool(m, "dry_run", &r->dry_run);
    if (ymap_enum(m, "action", actions, &action) < 0)
        return;
    if (action == LIMIT_REJECT)
        load_reply(m, "reply", &reject, "550 5.7.1 Rate limit exceeded",
                   &r->reply);
    else if (count == LIMIT_CONCURRENT)
        load_reply(m, "reply", &tempfail,
                   "421 4.7.0 Too many connections from you, try again later",
                   &r->reply);
    else
        load_reply(m, "reply", &tempfail,
                   "451 4.7.1 Rate limit exceeded, try again later", &r->reply);
    load_limit_escalate(m, action, r);
}

/* Repeat offenders: after `after` refusals within `within`, a 5xx. */
static void load_limit_escalate(const struct ymap *m, int action,
                                struct limit_rule *r)
{
    static const char *const keys[] = {"after", "within", "reply", NULL};
    static const int codes[] = {550, 554, 0};
    static const struct reply_kind reject = {"an escalation", '5', codes};
    yaml_node_t *n = ymap_get(m, "escalate");
    unsigned after = 0, within = 0;
    struct ymap e;

    if (!n)
        return;
    if (action != LIMIT_TEMPFAIL) {
        ymap_error(m, n, "escalate",
                   "only with action: tempfail (a reject is already final)");
        return;
    }
    if (!ymap_sub(m, "escalate", keys, &e))
        return;
    if (!ymap_get(&e, "after"))
        ymap_error(&e, n, NULL, "after is required");
    else
        ymap_uint(&e, "after", 1, UINT_MAX, &after);
    if (!ymap_get(&e, "within"))
        ymap_error(&e, n, NULL, "within is required");
    else
        ymap_duration(&e, "within", 1, &within);
    load_reply(&e, "reply", &reject, "550 5.7.1 Rate limit exceeded",
               &r->escalate_reply);
    if (after && within) {
        r->escalate_after = after;
        r->escalate_within_ms = within;
    }
}

/* 550 5.7.23 "text" -> 550 5.7.23 text: YAML keeps the quotes of a plain
 * scalar, and admins write them out of habit. */
static void unquote_reply_text(char *s)
{
    char *q = strchr(s, '"');
    size_t n = strlen(s);

    if (!q || q == s || q[-1] != ' ' || q == s + n - 1 || s[n - 1] != '"')
        return;
    memmove(q, q + 1, (size_t)(s + n - 1 - (q + 1)));
    s[n - 2] = '\0';
}

/* ---- shared by the sections ---- */

/*
 * CIDRs under key, appended to list. Returns the number of items (bad
 * ones included, each reported at its line), or -1 when the key is absent
 * or not a list.
 */
static int load_cidrs(const struct ymap *m, const char *key,
                      struct cidr_list *list)
{
    char err[512];
    struct ylist l;
    struct cidr c;

    if (ymap_list(m, key, &l) <= 0)
        return -1;
    for (size_t i = 0; i < l.n; i++) {
        const char *s = ylist_str(&l, i);
        if (!s)
            continue;
        if (cidr_parse(s, &c, err, sizeof(err)) != 0)
            yamldoc_error(m->d, ylist_at(&l, i), "%s: %s", l.name, err);
        else if (cidr_list_add(list, &c) != 0)
            must(NULL);
    }
    return (int)l.n;
}

/*
 * A file of CIDRs, relative to the policy file's directory. A device, FIFO
 * or socket is refused at the key's line without being opened: a FIFO
 * blocks the loader (and `warden -t`, and a reload) forever, and
 * /dev/zero is one endless line that getline() grows until memory runs
 * out.
 */
static void load_cidr_file(const struct ymap *m, const char *key,
                           struct cidr_list *list)
{
    char *file = NULL;
    struct stat st;

    if (ymap_str(m, key, &file) > 0) {
        char *path = yamldoc_path(m->d, file);
        /* err reads "path:line: reason": room for any path, so a long
         * one does not push the reason out of the message */
        size_t errlen = strlen(path) + 512;
        char *err = must(malloc(errlen));

        if (stat(path, &st) == 0 && !S_ISREG(st.st_mode) &&
            !S_ISDIR(st.st_mode))
            ymap_error(m, ymap_get(m, key), key,
                       "\"%s\" is not a regular file", path);
        else if (cidr_list_load_file(list, path, err, errlen) != 0)
            errors_add(m->d->errs, NULL, 0, "%s", err);
        free(err);
        free(path);
    }
    free(file);
}

/*
 * The reply under key, or def (which must be valid) when it is absent.
 * Returns 1 set from the file, 0 default, -1 invalid (reported; out holds
 * the default).
 */
static int load_reply(const struct ymap *m, const char *key,
                      const struct reply_kind *k, const char *def,
                      struct limit_reply *out)
{
    char err[160], *reply = NULL;
    int rc;

    parse_reply(def, k, out, err, sizeof(err));
    rc = ymap_str(m, key, &reply);
    if (rc > 0 && parse_reply(reply, k, out, err, sizeof(err)) != 0) {
        ymap_error(m, ymap_get(m, key), key, "\"%s\": %s", reply, err);
        rc = -1;
    }
    free(reply);
    return rc;
}

/* Length of an RFC 3463 "class.subject.detail" at s, or 0. */
static size_t parse_enh(const char *s)
{
    const char *p = s;

    if (*p < '2' || *p > '5' || p[1] != '.')
        return 0;
    p += 2;
    for (int part = 0; part < 2; part++) {
        size_t n = strspn(p, "0123456789");
        if (n < 1 || n > 3)
            return 0;
        p += n;
        if (part == 0 && *p++ != '.')
            return 0;
    }
    return (size_t)(p - s);
}

/*
 * "554 5.7.1 Access denied" -> code, enh, text. The code's class must
 * match the action (an admin writing "450" for a reject would otherwise
 * turn a block into a retry loop), and the text must be a valid RFC 5321
 * textstring, since it goes to the client verbatim. out changes only on
 * success.
 */
static int parse_reply(const char *s, const struct reply_kind *k,
                       struct limit_reply *out, char *err, size_t errlen)
{
    const char *text;
    size_t enh = 0;
    int code;

    if (strspn(s, "0123456789") < 3 || s[1] > '5') {
        snprintf(err, errlen, "must start with a 3-digit reply code");
        return -1;
    }
    if (s[0] != k->cls) {
        snprintf(err, errlen, "%s needs a %cxx reply code", k->action, k->cls);
        return -1;
    }
    if (s[3] != ' ') {
        snprintf(err, errlen, "expected a space and a text after the code");
        return -1;
    }
    code = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
    if (!code_allowed(code, k, err, errlen))
        return -1;
    text = s + 4;
    if (text[0] >= '0' && text[0] <= '9' && text[1] == '.') {
        enh = parse_enh(text);
        if (enh == 0 || enh != strcspn(text, " ")) {
            snprintf(err, errlen, "invalid enhanced status code");
            return -1;
        }
        if (text[0] != s[0]) {
            snprintf(err, errlen, "enhanced code class %c does not match %.3s",
                     text[0], s);
            return -1;
        }
    }
    if (check_text(text + enh + strspn(text + enh, " "), err, errlen) != 0)
        return -1;
    out->code = code;
    snprintf(out->enh, sizeof(out->enh), "%.*s", (int)enh, text);
    text += enh + strspn(text + enh, " ");
    snprintf(out->text, sizeof(out->text), "%s", text);
    return 0;
}

/* Limits answer with the codes clients know how to handle. */
static bool code_allowed(int code, const struct reply_kind *k, char *err,
                         size_t errlen)
{
    size_t n = 0, used;

    if (!k->codes)
        return true;
    for (; k->codes[n]; n++)
        if (k->codes[n] == code)
            return true;
    used = (size_t)snprintf(err, errlen, "%s needs reply code", k->action);
    for (size_t i = 0; i < n && used < errlen; i++)
        used += (size_t)snprintf(err + used, errlen - used, "%s%d",
                                 i == 0      ? " "
                                 : i + 1 < n ? ", "
                                             : " or ",
                                 k->codes[i]);
    return false;
}

/* RFC 5321 textstring: tab and printable ASCII, and it must fit. */
static int check_text(const char *text, char *err, size_t errlen)
{
    if (!*text) {
        snprintf(err, errlen, "expected a text after the code");
        return -1;
    }
    if (strlen(text) > TEXT_MAX) {
        snprintf(err, errlen, "text longer than %d characters", TEXT_MAX);
        return -1;
    }
    for (const char *p = text; *p; p++) {
        if (*p == '\r' || *p == '\n') {
            snprintf(err, errlen, "text must not contain CR or LF");
            return -1;
        }
        if (*p != '\t' && (*p < ' ' || *p > '~')) {
            snprintf(err, errlen, "text must be printable ASCII");
            return -1;
        }
    }
    return 0;
}

/* ---- for the loaders in other files (policy_int.h) ---- */

int policy_parse_reply(const char *s, char cls, struct limit_reply *out,
                       char *err, size_t errlen)
{
    const struct reply_kind k = {cls == '5' ? "a reject" : "a tempfail", cls,
                                 NULL};

    return parse_reply(s, &k, out, err, errlen);
}

void policy_unquote_reply_text(char *s)
{
    unquote_reply_text(s);
}

int policy_load_cidrs(const struct ymap *m, const char *key,
                      struct cidr_list *list)
{
    return load_cidrs(m, key, list);
}

void policy_load_cidr_file(const struct ymap *m, const char *key,
                           struct cidr_list *list)
{
    load_cidr_file(m, key, list);
}

/* ---- matching ---- */

static bool rule_in_scope(const struct access_rule *r, const char *listener)
{
    if (!r->listeners)
        return true;
    for (size_t i = 0; listener && i < r->nlisteners; i++)
        if (strcmp(r->listeners[i], listener) == 0)
            return true;
    return false;
}

const struct access_rule *policy_access_match(const struct policy *p,
                                              const char *listener,
                                              const struct netaddr *client)
{
    for (size_t i = 0; p && i < p->naccess; i++) {
        const struct access_rule *r = &p->access[i];
        if (rule_in_scope(r, listener) && cidr_list_match(&r->networks, client))
            return r;
    }
    return NULL;
}
