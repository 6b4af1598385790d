/*
 * policy_score: the `scoring:` section of a policy file (see
 * score_rules.h), and the rule files it names.
 *
 *   scoring:
 *     rules: [../rules]         # .cf files or directories, relative
 *     max_scan_size: 512k       # bytes of each message scored
 *     timeout: 10s              # then accepted unscored (and logged)
 *     listeners: [inbound]      # default: every listener
 *     exempt: {networks: [...], networks_file: F, authenticated: true}
 *     limit_near: 80%           # WARDEN_LIMIT_NEAR from this share used
 *     thresholds:               # default: tag 5, reject 15, everywhere
 *       - listeners: [inbound]
 *         tag: 5
 *         tempfail: 10
 *         reject: 15
 *         tempfail_reply: "451 4.7.1 ..."
 *         reject_reply: "550 5.7.1 ..."
 *
 * The rule files load with the policy: a bad regex is a "file:line" error
 * like any other, so a reload with a broken rule keeps the old rules.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "policy_int.h"
#include "rules.h"
#include "score_rules.h"

#define must yamldoc_must

static const char default_tempfail[] =
    "451 4.7.1 Message content looks like spam, try again later";
static const char default_reject[] =
    "550 5.7.1 Message content rejected as spam";

static void load_rules(const struct ymap *m, struct score_policy *sp);
static void load_thresholds(const struct ymap *m, struct score_policy *sp);
static void load_limit_near(const struct ymap *m, struct score_policy *sp);
static bool load_threshold(const struct ylist *l, size_t i,
                           struct score_threshold *t);
static void load_level(const struct ymap *m, const char *key, bool *on,
                       double *v);
static void load_reply(const struct ymap *m, const char *key, char cls,
                       struct limit_reply *out);

void policy_load_scoring(const struct ymap *top, struct policy *p)
{
    static const char *const keys[] = {
        "rules",  "max_scan_size", "timeout",    "listeners",
        "exempt", "thresholds",    "limit_near", NULL,
    };
    yaml_node_t *n = ymap_get(top, "scoring");
    struct score_policy *sp;
    struct ymap m;

    if (!n)
        return;
    if (p->scoring) {
        ymap_error(top, n, "scoring",
                   "already set at %s; write one scoring section in all "
                   "the policy files",
                   p->scoring->where);
        return;
    }
    if (!ymap_sub(top, "scoring", keys, &m))
        return;
    sp = must(calloc(1, sizeof(*sp)));
    snprintf(sp->where, sizeof(sp->where), "%s:%u", top->d->file,
             yamldoc_line(n));
    sp->max_scan = SCORE_MAX_SCAN_DEFAULT;
    sp->timeout_ms = SCORE_TIMEOUT_DEFAULT;
    sp->limit_near = SCORE_LIMIT_NEAR_DEFAULT;
    ymap_size(&m, "max_scan_size", 1024, &sp->max_scan);
    ymap_duration(&m, "timeout", 10, &sp->timeout_ms);
    load_limit_near(&m, sp);
    policy_load_scope(&m, &sp->scope, "score");
    load_thresholds(&m, sp);
    load_rules(&m, sp);
    p->scoring = sp;
}

/* limit_near: "80%" (or 80): the share of an enforced limit's allowance
 * a client has used when WARDEN_LIMIT_NEAR starts to hit. */
static void load_limit_near(const struct ymap *m, struct score_policy *sp)
{
    char *s = NULL, *end;
    unsigned long pct;

    if (ymap_str(m, "limit_near", &s) <= 0)
        return;
    errno = 0;
    pct = isdigit((unsigned char)s[0]) ? strtoul(s, &end, 10) : 0;
    if (pct >= 1 && pct <= 100 && errno == 0 &&
        (*end == '\0' || (end[0] == '%' && end[1] == '\0')))
        sp->limit_near = (double)pct / 100.0;
    else
        ymap_error(m, ymap_get(m, "limit_near"), "limit_near",
                   "\"%s\": expected a percentage from 1%% to 100%% "
                   "(e.g. 80%%)",
                   s);
    free(s);
}

/* rules: one path or a list; each a .cf file or a directory of them. */
static void load_rules(const struct ymap *m, struct score_policy *sp)
{
    char **v = NULL;
    size_t n = 0;
    struct errors *errs = m->d->errs;
    size_t before = errs->n;

    if (ymap_strlist(m, "rules", &v, &n) <= 0) {
        if (!ymap_get(m, "rules"))
            ymap_error(m, NULL, "rules",
                       "missing: name the rule files (e.g. rules: "
                       "[/usr/share/warden/rules])");
        return;
    }
    if (n == 0) {
        ymap_error(m, ymap_get(m, "rules"), "rules", "empty list");
        free(v);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        char *abs = yamldoc_path(m->d, v[i]);
        free(v[i]);
        v[i] = abs;
    }
    sp->rules = ruleset_load(v, n, 0, errs);
    if (sp->rules && errs->n == before)
        ruleset_log_summary(sp->rules, "scoring rules");
    yamldoc_strv_free(v, n);
}

static void default_threshold(struct score_threshold *t)
{
    char err[160];

    memset(t, 0, sizeof(*t));
    t->tag_on = t->reject_on = true;
    t->tag = SCORE_TAG_DEFAULT;
    t->reject = SCORE_REJECT_DEFAULT;
    policy_parse_reply(default_tempfail, '4', &t->tempfail_reply, err,
                       sizeof(err));
    policy_parse_reply(default_reject, '5', &t->reject_reply, err, sizeof(err));
}

static void load_thresholds(const struct ymap *m, struct score_policy *sp)
{
    struct ylist l;

    if (ymap_list(m, "thresholds", &l) <= 0) {
        if (!ymap_get(m, "thresholds")) {
            sp->thresholds = must(calloc(1, sizeof(*sp->thresholds)));
            default_threshold(&sp->thresholds[0]);
            sp->nthresholds = 1;
        }
        return;
    }
    sp->thresholds = must(calloc(l.n ? l.n : 1, sizeof(*sp->thresholds)));
    for (size_t i = 0; i < l.n; i++)
        if (load_threshold(&l, i, &sp->thresholds[sp->nthresholds]))
            sp->nthresholds++;
}

static bool load_threshold(const struct ylist *l, size_t i,
                           struct score_threshold *t)
{
    static const char *const keys[] = {
        "listeners",      "tag",          "tempfail", "reject",
        "tempfail_reply", "reject_reply", NULL,
    };
    yaml_node_t *item = ylist_at(l, i);
    char name[128];
    struct ymap m;

    snprintf(name, sizeof(name), "%s[%zu]", l->name, i);
    if (!ymap_open(&m, l->d, item, name, keys))
        return false;
    default_threshold(t);
    t->tag_on = t->reject_on = false; /* an entry says what it wants */
    t->line = yamldoc_line(item);
    if (ymap_strlist(&m, "listeners", &t->listeners, &t->nlisteners) > 0 &&
        t->nlisteners == 0)
        ymap_error(&m, ymap_get(&m, "listeners"), "listeners",
                   "empty list; leave listeners out for every listener");
    load_level(&m, "tag", &t->tag_on, &t->tag);
    load_level(&m, "tempfail", &t->tempfail_on, &t->tempfail);
    load_level(&m, "reject", &t->reject_on, &t->reject);
    load_reply(&m, "tempfail_reply", '4', &t->tempfail_reply);
    load_reply(&m, "reject_reply", '5', &t->reject_reply);
    if (t->tempfail_on && t->reject_on && t->tempfail >= t->reject)
        ymap_error(&m, ymap_get(&m, "tempfail"), "tempfail",
                   "%g is not below reject (%g): it would never apply",
                   t->tempfail, t->reject);
    if (!t->tag_on && !t->tempfail_on && !t->reject_on)
        ymap_error(&m, item, "tag",
                   "the entry sets none of tag, tempfail, reject");
    return true;
}

/* A score ("5", "-1.5") or "off". */
static void load_level(const struct ymap *m, const char *key, bool *on,
                       double *v)
{
    char *s = NULL, *end;
    double d;

    if (ymap_str(m, key, &s) <= 0)
        return;
    if (strcmp(s, "off") == 0) {
        *on = false;
    } else {
        d = strtod(s, &end);
        if (end == s || *end || !isfinite(d))
            ymap_error(m, ymap_get(m, key), key,
                       "\"%s\": expected a score (a number) or off", s);
        else {
            *on = true;
            *v = d;
        }
    }
    free(s);
}

static void load_reply(const struct ymap *m, const char *key, char cls,
                       struct limit_reply *out)
{
    char *s = NULL, err[160];

    if (ymap_str(m, key, &s) <= 0)
        return;
    policy_unquote_reply_text(s);
    if (policy_parse_reply(s, cls, out, err, sizeof(err)) != 0)
        ymap_error(m, ymap_get(m, key), key, "\"%s\": %s", s, err);
    free(s);
}
