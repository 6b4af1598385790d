/*
 * check_authres: the one Authentication-Results field (RFC 8601) a
 * message gets, at end of data, after SPF, DKIM and DMARC in the engine's
 * table.
 *
 * Each method's check keeps its own result and formats its own part
 * (check_spf_authres, check_dkim_authres, check_dmarc_authres); this
 * check only puts them in one field named after this host (`hostname`,
 * the authserv-id), so readers find every result in one place, and adds
 * nothing when no method ran for the message (an exempt or authenticated
 * session, or no spf/dkim/dmarc section).
 *
 * It also asks the front end to delete every Authentication-Results field
 * already in the message that claims our authserv-id (RFC 8601 5: a
 * forgery, or a copy from an earlier pass that downstream filters would
 * trust), whatever the policy files say.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "authres.h"
#include "check.h"
#include "check_dkim.h"
#include "check_dmarc.h"
#include "check_spf.h"
#include "config.h"
#include "msgbuf.h"
#include "msghdr.h"
#include "policy.h"

/* Header bytes read for existing fields. */
#define HEADER_MAX (256 * 1024)
#define FIELD "Authentication-Results"

struct forged {
    const char *ours;       /* our authserv-id */
    unsigned index;         /* Authentication-Results fields seen */
    struct verdict *v;
};

static const char *authserv_id(const struct config *cfg)
{
    return cfg->hostname ? cfg->hostname : "localhost";
}

/* The authserv-id at the start of an A-R value: after CFWS, up to ';',
 * a blank or a comment (RFC 8601 2.2). */
static bool claims(const char *v, size_t n, const char *ours)
{
    size_t i = 0, start, len = strlen(ours);
    int depth = 0;

    while (i < n) { /* CFWS */
        if (v[i] == '(')
            depth++;
        else if (v[i] == ')' && depth > 0)
            depth--;
        else if (depth == 0 && v[i] != ' ' && v[i] != '\t' && v[i] != '\r' &&
                 v[i] != '\n')
            break;
        i++;
    }
    start = i;
    while (i < n && !strchr("; \t\r\n(", v[i]))
        i++;
    return i - start == len && strncasecmp(v + start, ours, len) == 0;
}

static int on_field(void *arg, const struct msghdr_field *f)
{
    struct forged *fg = arg;

    if (f->name_len != strlen(FIELD) ||
        strncasecmp(f->name, FIELD, f->name_len) != 0)
        return 0;
    fg->index++;
    if (claims(f->value, f->value_len, fg->ours))
        header_removals_add(&fg->v->remove, FIELD, fg->index);
    return 0;
}

static void remove_forged(const struct engine_ctx *ctx, const char *ours,
                          struct verdict *v)
{
    struct forged fg = {ours, 0, v};
    size_t len;
    char *head = msgbuf_header(ctx->message, HEADER_MAX, &len);

    if (!head)
        return;
    msghdr_scan(head, len, ctx->message_dot_stuffed, on_field, &fg);
    free(head);
}

static enum engine_status authres_run(struct engine_session *es,
                                      enum checkpoint cp,
                                      const struct engine_ctx *ctx,
                                      struct verdict *v)
{
    const struct config *cfg = engine_session_config(es);
    struct authres ar;

    if (ctx->message)
        remove_forged(ctx, authserv_id(cfg), v);
    authres_init(&ar, authserv_id(cfg));
    check_spf_authres(es, &ar);
    check_dkim_authres(es, &ar);
    check_dmarc_authres(es, &ar);
    if (ar.any)
        header_list_add(&v->headers, authres_field(&ar));
    return ENGINE_DONE;
}

const struct check_ops check_authres = {
    .name = "authres",
    .checkpoints = CP_BIT(CP_EOM),
    .run = authres_run,
};
