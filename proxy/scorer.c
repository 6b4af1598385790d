/*
 * scorer: evaluating rules on a message view (see the header).
 *
 * Rules run type by type from the set's plan (only rules that score or
 * that a scored meta reads), metas last in dependency order. Each header
 * key (field and how it is read) is computed once per message.
 */
#define _GNU_SOURCE /* memmem, qsort_r */
#include "scorer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "msgview.h"
#include "rules_meta.h"
#include "rules_regex.h"

/* Check the clock every this many rules. */
#define CLOCK_EVERY 32

struct run {
    const struct ruleset *rs;
    struct msgview *mv;
    double *values;
    char **hvals; /* per header key; NULL: absent */
    size_t *hlens;
    bool *hdone;
    struct score_result *out;
    struct timespec start;
    unsigned budget_ms;
    unsigned ticks;
};

static double elapsed(const struct run *r)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - r->start.tv_sec) +
           (double)(now.tv_nsec - r->start.tv_nsec) / 1e9;
}

static bool out_of_time(struct run *r)
{
    if (!r->budget_ms || ++r->ticks % CLOCK_EVERY)
        return r->out->out_of_time;
    if (elapsed(r) * 1000 > r->budget_ms)
        r->out->out_of_time = true;
    return r->out->out_of_time;
}

static unsigned cap_of(const struct rule *rule)
{
    if (!(rule->tflags & RULE_MULTIPLE))
        return 1;
    return rule->maxhits ? rule->maxhits : 1000;
}

/* Matches of rule in one string, limit errors counted. */
static int count(struct run *r, const struct rule *rule, const char *s,
                 size_t len, unsigned max)
{
    int n = rx_count(rule->rx, s, len, max);

    if (n < 0) {
        r->out->limit_errors++;
        return 0;
    }
    return n;
}

static double on_list(struct run *r, const struct rule *rule,
                      const struct strv *sv)
{
    unsigned cap = cap_of(rule), n = 0;

    for (size_t i = 0; i < sv->n && n < cap; i++)
        n += (unsigned)count(r, rule, sv->v[i], sv->len[i], cap - n);
    return n;
}

static double on_header(struct run *r, const struct rule *rule)
{
    size_t k = rule->hkey;
    const char *s;
    size_t len;
    int n;

    if (!r->hdone[k]) {
        const struct header_key *hk = &r->rs->hkeys[k];
        r->hvals[k] = msgview_header(r->mv, hk->field, hk->mod, &r->hlens[k]);
        r->hdone[k] = true;
    }
    if (rule->exists)
        return r->hvals[k] != NULL;
    s = r->hvals[k] ? r->hvals[k] : rule->if_unset ? rule->if_unset : "";
    len = r->hvals[k] ? r->hlens[k] : strlen(s);
    n = rx_count(rule->rx, s, len, rule->negate ? 1 : cap_of(rule));
    if (n < 0) {
        r->out->limit_errors++;
        return 0;
    }
    return rule->negate ? n == 0 : n;
}

/* Each instance of the field, in the message's header and its parts',
 * tested on its own. */
static double on_mimeheader(struct run *r, const struct rule *rule)
{
    const struct header_key *hk = &r->rs->hkeys[rule->hkey];
    struct strv vals = {0};
    unsigned cap = rule->negate ? 1 : cap_of(rule), n = 0;
    double v;

    if (msgview_mime_header(r->mv, hk->field, hk->mod, &vals) != 0) {
        strv_free(&vals);
        return 0;
    }
    if (rule->exists) {
        v = vals.n > 0;
    } else if (vals.n == 0) {
        const char *s = rule->if_unset ? rule->if_unset : "";
        n = (unsigned)count(r, rule, s, strlen(s), cap);
        v = rule->negate ? n == 0 : n;
    } else {
        for (size_t i = 0; i < vals.n && n < cap; i++)
            n += (unsigned)count(r, rule, vals.v[i], vals.len[i], cap - n);
        v = rule->negate ? n == 0 : n;
    }
    strv_free(&vals);
    return v;
}

static double evaluate(struct run *r, const struct rule *rule,
                       const double *ext)
{
    switch (rule->type) {
    case RULE_HEADER:
        return on_header(r, rule);
    case RULE_MIMEHEADER:
        return on_mimeheader(r, rule);
    case RULE_BODY:
        return on_list(r, rule, &r->mv->body);
    case RULE_RAWBODY:
        return on_list(r, rule, &r->mv->rawbody);
    case RULE_URI:
        return on_list(r, rule, &r->mv->uris);
    case RULE_FULL:
        return count(r, rule, r->mv->full.p, r->mv->full.n, cap_of(rule));
    case RULE_EXTERNAL:
        return ext ? ext[rule->ext] : 0;
    case RULE_META:
        return meta_eval(rule->meta, r->values);
    default:
        return 0;
    }
}

static int by_name(const void *a, const void *b, void *rs)
{
    const struct ruleset *set = rs;
    const struct score_hit *x = a, *y = b;

    return strcmp(set->v[x->rule].name, set->v[y->rule].name);
}

static int collect(struct run *r)
{
    const struct ruleset *rs = r->rs;
    struct score_result *out = r->out;

    for (size_t i = 0; i < rs->n; i++) {
        const struct rule *rule = &rs->v[i];
        if (!rule->enabled || r->values[i] == 0 || rule->score == 0)
            continue;
        struct score_hit *h = realloc(out->hits, (out->nhits + 1) * sizeof(*h));
        if (!h)
            return -1;
        out->hits = h;
        h[out->nhits++] = (struct score_hit){i, r->values[i]};
        /* a meta's value may be a sum; it hits once */
        out->score +=
            rule->score * (rule->type == RULE_META ? 1 : r->values[i]);
    }
    if (out->nhits > 1)
        qsort_r(out->hits, out->nhits, sizeof(*out->hits), by_name, (void *)rs);
    return 0;
}

int scorer_run(const struct ruleset *rs, struct msgview *mv, const double *ext,
               unsigned budget_ms, struct score_result *out)
{
    static const enum rule_type order[] = {
        RULE_EXTERNAL, RULE_HEADER,  RULE_MIMEHEADER, RULE_URI,
        RULE_BODY,     RULE_RAWBODY, RULE_FULL,       RULE_META,
    };
    struct run r = {rs, mv, NULL, NULL, NULL, NULL, out, {0, 0}, budget_ms, 0};
    int rc = -1;

    memset(out, 0, sizeof(*out));
    clock_gettime(CLOCK_MONOTONIC, &r.start);
    r.values = calloc(rs->n ? rs->n : 1, sizeof(*r.values));
    r.hvals = calloc(rs->nhkeys ? rs->nhkeys : 1, sizeof(*r.hvals));
    r.hlens = calloc(rs->nhkeys ? rs->nhkeys : 1, sizeof(*r.hlens));
    r.hdone = calloc(rs->nhkeys ? rs->nhkeys : 1, sizeof(*r.hdone));
    if (r.values && r.hvals && r.hlens && r.hdone) {
        for (size_t t = 0; t < sizeof(order) / sizeof(order[0]); t++) {
            enum rule_type type = order[t];
            for (size_t i = 0; i < rs->nplan[type]; i++) {
                /* metas always run: they only read what is done */
                if (type != RULE_META && out_of_time(&r))
                    break;
                size_t k = rs->plan[type][i];
                r.values[k] = evaluate(&r, &rs->v[k], ext);
            }
        }
        rc = collect(&r);
    }
    for (size_t i = 0; r.hvals && i < rs->nhkeys; i++)
        free(r.hvals[i]);
    free(r.hvals);
    free(r.hlens);
    free(r.hdone);
    free(r.values);
    out->seconds = elapsed(&r);
    return rc;
}

void score_result_free(struct score_result *r)
{
    free(r->hits);
    memset(r, 0, sizeof(*r));
}

void score_result_tests(const struct ruleset *rs, const struct score_result *r,
                        char *buf, size_t len)
{
    size_t o = 0;

    if (len == 0)
        return;
    buf[0] = '\0';
    for (size_t i = 0; i < r->nhits; i++) {
        const char *name = rs->v[r->hits[i].rule].name;
        size_t need = strlen(name) + (i ? 1 : 0);
        if (o + need + 4 >= len) { /* room for ",..." */
            snprintf(buf + o, len - o, "%s...", i ? "," : "");
            return;
        }
        o += (size_t)snprintf(buf + o, len - o, "%s%s", i ? "," : "", name);
    }
}
