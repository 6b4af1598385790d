/*
 * policy: load the policy files admins edit, and answer questions on them.
 *
 * A policy file is a mapping of sections; each section has one loader in
 * the sections[] table below, so a new kind of policy (limits, lists) is
 * one new row and one new function. Files merge in order: their access
 * entries are appended, and the first matching entry wins.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"
#include "yamldoc.h"

#define must yamldoc_must
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* struct access_rule's text buffer, less its NUL. */
#define TEXT_MAX 399

static void load_file(struct policy *p, const char *file, struct errors *errs);
static void load_access(const struct ymap *top, struct policy *p);
static bool load_rule(const struct ylist *l, size_t i, struct access_rule *r);
static void load_rule_networks(const struct ymap *m, struct access_rule *r);
static void load_rule_reply(const struct ymap *m, struct access_rule *r);
static int parse_reply(const char *s, enum access_action a,
                       struct access_rule *r, char *err, size_t errlen);
static size_t parse_enh(const char *s);
static int check_text(const char *text, char *err, size_t errlen);
static bool valid_name(const char *s, size_t size);
static void rule_free(struct access_rule *r);
static bool rule_in_scope(const struct access_rule *r, const char *listener);

/* The top-level sections of a policy file. */
static const struct section {
    const char *key;
    void (*load)(const struct ymap *top, struct policy *p);
} sections[] = {
    {"access", load_access},
};

/* ---- loading ---- */

struct policy *policy_load(char *const *files, size_t nfiles,
                           struct errors *errs)
{
    struct policy *p = must(calloc(1, sizeof(*p)));
    size_t before = errs->n;

    for (size_t i = 0; i < nfiles; i++)
        load_file(p, files[i], errs);
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
    load_rule_networks(&m, r);
    if (!ymap_get(&m, "action"))
        ymap_error(&m, item, NULL, "action is required");
    else if (ymap_enum(&m, "action", actions, &action) > 0) {
        r->action = (enum access_action)action;
        load_rule_reply(&m, r);
    }
    if (ymap_strlist(&m, "listeners", &r->listeners, &r->nlisteners) > 0 &&
        r->nlisteners == 0)
        ymap_error(&m, ymap_get(&m, "listeners"), "listeners",
                   "empty list; leave listeners out to match every listener");
    return l->d->errs->n == before;
}

/* Inline networks and a CIDR file both go into one list. */
static void load_rule_networks(const struct ymap *m, struct access_rule *r)
{
    char err[512], *file = NULL;
    struct ylist l;
    struct cidr c;

    if (!ymap_get(m, "networks") && !ymap_get(m, "networks_file"))
        ymap_error(m, NULL, NULL, "needs networks or networks_file");
    if (ymap_list(m, "networks", &l) > 0) {
        for (size_t i = 0; i < l.n; i++) {
            const char *s = ylist_str(&l, i);
            if (!s)
                continue;
            if (cidr_parse(s, &c, err, sizeof(err)) != 0)
                yamldoc_error(m->d, ylist_at(&l, i), "%s: %s", l.name, err);
            else if (cidr_list_add(&r->networks, &c) != 0)
                must(NULL);
        }
    }
    if (ymap_str(m, "networks_file", &file) > 0) {
        char *path = yamldoc_path(m->d, file);
        /* err already reads "path:line: reason" */
        if (cidr_list_load_file(&r->networks, path, err, sizeof(err)) != 0)
            errors_add(m->d->errs, NULL, 0, "%s", err);
        free(path);
    }
    free(file);
}

static void load_rule_reply(const struct ymap *m, struct access_rule *r)
{
    static const char *const defaults[] = {
        [ACCESS_ACCEPT] = "",
        [ACCESS_REJECT] = "554 5.7.1 Access denied",
        [ACCESS_TEMPFAIL] = "421 4.7.0 Try again later",
    };
    char err[160], *reply = NULL;

    if (r->action == ACCESS_ACCEPT) {
        if (ymap_get(m, "reply"))
            ymap_error(m, ymap_get(m, "reply"), "reply",
                       "an accept entry sends no reply");
        return;
    }
    parse_reply(defaults[r->action], r->action, r, err, sizeof(err));
    if (ymap_str(m, "reply", &reply) > 0 &&
        parse_reply(reply, r->action, r, err, sizeof(err)) != 0)
        ymap_error(m, ymap_get(m, "reply"), "reply", "\"%s\": %s", reply, err);
    free(reply);
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
 * textstring, since it goes to the client verbatim.
 */
static int parse_reply(const char *s, enum access_action a,
                       struct access_rule *r, char *err, size_t errlen)
{
    char want = a == ACCESS_REJECT ? '5' : '4';
    const char *text;
    size_t enh = 0;

    if (strspn(s, "0123456789") < 3 || s[1] > '5') {
        snprintf(err, errlen, "must start with a 3-digit reply code");
        return -1;
    }
    if (s[0] != want) {
        snprintf(err, errlen, "a %s needs a %cxx reply code",
                 a == ACCESS_REJECT ? "reject" : "tempfail", want);
        return -1;
    }
    if (s[3] != ' ') {
        snprintf(err, errlen, "expected a space and a text after the code");
        return -1;
    }
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
    r->code = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
    snprintf(r->enh, sizeof(r->enh), "%.*s", (int)enh, text);
    text += enh + strspn(text + enh, " ");
    snprintf(r->text, sizeof(r->text), "%s", text);
    return 0;
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
