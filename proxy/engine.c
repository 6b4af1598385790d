/*
 * engine: runs the checks that apply at each checkpoint and folds their
 * verdicts into one. The first check that does not accept decides; headers
 * from accepting checks accumulate for end of data.
 */
#include "engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "check.h"
#include "config.h"

static const struct check_ops *const checks[] = {
    &check_access,
    &check_limits,
    &check_spf,     /* after limits: no DNS for mail a limit refuses */
    &check_dkim,    /* end of data, on the whole message */
    &check_dmarc,   /* after spf and dkim: aligns their results */
    &check_authres, /* after every method: one Authentication-Results */
    &check_score,   /* content: scores SPF, DKIM, DMARC results too */
    &check_dkim_sign, /* last: sign only what is accepted */
};
#define NCHECKS (sizeof(checks) / sizeof(checks[0]))

struct engine_session {
    struct config *cfg;
    struct event_base *base;
    struct store_client *store;
    void *state[NCHECKS];
    /* the run in progress, if a check is pending */
    bool pending;
    enum checkpoint cp;
    const struct engine_ctx *ctx;
    struct verdict *out;
    struct verdict step;     /* the current check's verdict */
    size_t next;
    engine_done_fn done;
    void *arg;
};

static const char *const cp_names[CP__COUNT] = {
    "connect", "helo", "auth", "mail", "rcpt", "data", "eom", "close",
};

const char *checkpoint_name(enum checkpoint cp)
{
    return cp < CP__COUNT ? cp_names[cp] : "?";
}

struct engine_session *engine_session_new(struct config *cfg,
                                          struct event_base *base,
                                          struct store_client *store)
{
    struct engine_session *es = calloc(1, sizeof(*es));

    if (!es)
        return NULL;
    es->cfg = config_ref(cfg);
    es->base = base;
    es->store = store;
    return es;
}

void engine_session_free(struct engine_session *es)
{
    if (!es)
        return;
    for (size_t i = 0; i < NCHECKS; i++)
        if (es->state[i] && checks[i]->session_free)
            checks[i]->session_free(es->state[i]);
    if (es->pending)
        verdict_clear(&es->step);
    config_unref(es->cfg);
    free(es);
}

struct config *engine_session_config(struct engine_session *es)
{
    return es->cfg;
}

struct event_base *engine_session_base(struct engine_session *es)
{
    return es->base;
}

struct store_client *engine_session_store(struct engine_session *es)
{
    return es->store;
}

void **engine_session_state(struct engine_session *es,
                            const struct check_ops *c)
{
    for (size_t i = 0; i < NCHECKS; i++)
        if (checks[i] == c)
            return &es->state[i];
    abort(); /* a check that is not in the table */
}

void engine_note_failure(struct engine_session *es,
                         const struct engine_ctx *ctx)
{
    for (size_t i = 0; i < NCHECKS; i++)
        if (checks[i]->note_failure)
            checks[i]->note_failure(es, ctx);
}

const char *engine_summary(struct engine_session *es, char *buf, size_t len)
{
    buf[0] = '\0';
    for (size_t i = 0; es && i < NCHECKS; i++)
        if (checks[i]->summary)
            checks[i]->summary(es, buf, len);
    return buf;
}

/* Append " key=value" to a summary, never past len. */
void engine_summary_add(char *buf, size_t len, const char *key,
                        const char *value)
{
    size_t o = strlen(buf);

    if (o < len)
        snprintf(buf + o, len - o, " %s=%s", key, value);
}

/* Fold one check's verdict in; returns true when the run is decided. */
static bool fold(struct engine_session *es)
{
    struct verdict *v = &es->step;
    bool decided = false;

    for (size_t i = 0; i < v->headers.n; i++)
        header_list_add(&es->out->headers, v->headers.v[i]);
    for (size_t i = 0; i < v->remove.n; i++)
        header_removals_add(&es->out->remove, v->remove.v[i].name,
                            v->remove.v[i].index);
    if (v->action != VERDICT_ACCEPT && es->cp != CP_CLOSE) {
        struct header_list keep = es->out->headers;
        struct header_removals keep_rm = es->out->remove;
        *es->out = *v;
        es->out->headers = keep; /* v's own lists are freed below */
        es->out->remove = keep_rm;
        decided = true;
    }
    verdict_clear(v);
    return decided;
}

/* Run checks from es->next on; returns ENGINE_PENDING if one waits. */
static enum engine_status run_from(struct engine_session *es)
{
    for (; es->next < NCHECKS; es->next++) {
        const struct check_ops *c = checks[es->next];
        if (!(c->checkpoints & CP_BIT(es->cp)))
            continue;
        verdict_init(&es->step);
        snprintf(es->step.check, sizeof(es->step.check), "%s", c->name);
        if (c->run(es, es->cp, es->ctx, &es->step) == ENGINE_PENDING) {
            es->pending = true;
            return ENGINE_PENDING;
        }
        if (fold(es)) {
            es->next = NCHECKS;
            break;
        }
    }
    return ENGINE_DONE;
}

enum engine_status engine_run(struct engine_session *es, enum checkpoint cp,
                              const struct engine_ctx *ctx, struct verdict *out,
                              engine_done_fn done, void *arg)
{
    verdict_init(out);
    es->cp = cp;
    es->ctx = ctx;
    es->out = out;
    es->next = 0;
    es->done = done;
    es->arg = arg;
    es->pending = false;
    return run_from(es);
}

void engine_check_done(struct engine_session *es)
{
    es->pending = false;
    if (fold(es))
        es->next = NCHECKS;
    else
        es->next++;
    if (run_from(es) == ENGINE_DONE)
        es->done(es->arg, es->out);
}

void verdict_init(struct verdict *v)
{
    memset(v, 0, sizeof(*v));
    v->action = VERDICT_ACCEPT;
}

void verdict_clear(struct verdict *v)
{
    header_list_free(&v->headers);
    header_removals_free(&v->remove);
}

void verdict_set(struct verdict *v, enum verdict_action a, int code,
                 const char *enh, const char *text, const char *check)
{
    v->action = a;
    v->code = code;
    snprintf(v->enh, sizeof(v->enh), "%s", enh ? enh : "");
    snprintf(v->text, sizeof(v->text), "%s", text ? text : "");
    if (check)
        snprintf(v->check, sizeof(v->check), "%s", check);
}

int verdict_parse_reply(struct verdict *v, const char *reply)
{
    const char *p = reply;
    int code;

    if (!(p[0] >= '2' && p[0] <= '5' && p[1] >= '0' && p[1] <= '9' &&
          p[2] >= '0' && p[2] <= '9') ||
        (p[3] != ' ' && p[3] != '\0'))
        return -1;
    code = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
    p += p[3] ? 4 : 3;
    v->code = code;
    v->enh[0] = '\0';
    /* an enhanced status code "x.y.z" whose class matches the reply */
    size_t n = strcspn(p, " ");
    if (n >= 5 && n < sizeof(v->enh) && p[0] == reply[0] && p[1] == '.') {
        memcpy(v->enh, p, n);
        v->enh[n] = '\0';
        p += n;
        while (*p == ' ')
            p++;
    }
    snprintf(v->text, sizeof(v->text), "%s", p);
    v->action = code >= 500 ? VERDICT_REJECT
              : code >= 400 ? VERDICT_TEMPFAIL
                            : VERDICT_ACCEPT;
    return 0;
}

int header_list_add(struct header_list *h, const char *line)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 4;
        char **v = realloc(h->v, cap * sizeof(*v));
        if (!v)
            return -1;
        h->v = v;
        h->cap = cap;
    }
    h->v[h->n] = strdup(line);
    if (!h->v[h->n])
        return -1;
    h->n++;
    return 0;
}

void header_list_free(struct header_list *h)
{
    for (size_t i = 0; i < h->n; i++)
        free(h->v[i]);
    free(h->v);
    memset(h, 0, sizeof(*h));
}

int header_removals_add(struct header_removals *r, const char *name,
                        unsigned index)
{
    if (index == 0 || strlen(name) >= sizeof(r->v[0].name))
        return -1;
    for (size_t i = 0; i < r->n; i++)
        if (r->v[i].index == index && strcasecmp(r->v[i].name, name) == 0)
            return 0;
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 4;
        struct header_removal *v = realloc(r->v, cap * sizeof(*v));
        if (!v)
            return -1;
        r->v = v;
        r->cap = cap;
    }
    snprintf(r->v[r->n].name, sizeof(r->v[r->n].name), "%s", name);
    r->v[r->n].index = index;
    r->n++;
    return 0;
}

void header_removals_free(struct header_removals *r)
{
    free(r->v);
    memset(r, 0, sizeof(*r));
}
