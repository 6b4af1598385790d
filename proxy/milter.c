/*
 * milter: libmilter callbacks over the engine. See milter.h.
 *
 * Each callback fills the connection's engine_ctx, hands the checkpoint to
 * the engine loop (milter_loop.h) and turns the verdict into a milter
 * reply. Header and body callbacks only collect the message into a spool
 * (no reply is asked for them when the MTA allows), and end of message
 * runs CP_EOM on it, as the proxy does after the final dot.
 */
#include "milter.h"

#include <errno.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <libmilter/mfapi.h>
#include <libmilter/mfdef.h>

#include "config.h"
#include "engine.h"
#include "log.h"
#include "metrics.h"
#include "milter_loop.h"
#include "runtime.h"
#include "spool.h"

/* Message bytes gathered before they move to the spool. */
#define MILTER_BUF_FLUSH 65536

struct milter {
    struct mloop *ml;
    struct runtime *(*current)(void *arg);
    void *current_arg;
    pthread_t thread;             /* smfi_main */
    bool running;
    pthread_mutex_t mu;           /* guards conns */
    struct mconn *conns;          /* open connections, for the loop's exit */
    char name[32];
    char spec[160];               /* the socket, for logs */
};

static struct milter the_milter = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* One MTA connection (one SMTP session at the MTA). */
struct mconn {
    struct mconn *next, *prev;
    struct runtime *rt;
    struct engine_session *es;    /* engine loop thread only */
    struct engine_ctx ctx;
    struct verdict v;
    char id[LOOP_ID_LEN + 1];
    struct netaddr client;
    char client_ip[NETADDR_STRLEN];
    char *client_name, *helo, *auth_user;
    bool tls;
    bool nr_hdr, nr_body;         /* negotiated: no reply to header/body */
    bool leadspc;                 /* header values keep their leading blank */
    struct timeval start;
    unsigned ntx;
    /* the transaction */
    bool in_tx;
    unsigned tx_id;
    struct timeval tx_start;
    char *sender;
    char **rcpts;
    size_t nrcpts, rcpts_cap;
    unsigned rcpts_refused;
    struct spool *msg;
    struct evbuffer *buf;         /* not yet in msg */
    size_t size;
    bool truncated;               /* bigger than max_message_size */
};

/* ---- hand-off to the engine loop ----------------------------------------- */

struct mjob {
    struct mloop_job base;        /* first: the loop sees this */
    struct mconn *c;
    enum checkpoint cp;
    bool note_failure;            /* tell the engine, run no checkpoint */
};

static void job_engine_done(void *arg, struct verdict *v)
{
    mloop_job_done(the_milter.ml, arg);
}

static void job_run(struct mloop_job *j, struct loop *lp)
{
    struct mjob *mj = (struct mjob *)j;
    struct mconn *c = mj->c;

    if (!c->es) {
        /* the loop's own settings (DNS) follow the newest snapshot */
        runtime_unref(lp->rt);
        lp->rt = runtime_ref(c->rt);
        loop_new_id(lp, c->id);
        c->es = engine_session_new(c->rt->cfg, lp->base, loop_store(lp));
    }
    if (mj->note_failure) {
        engine_note_failure(c->es, &c->ctx);
    } else if (mj->cp == CP_CLOSE) {
        engine_run(c->es, CP_CLOSE, &c->ctx, &c->v, NULL, NULL);
        verdict_clear(&c->v);
        engine_session_free(c->es);
        c->es = NULL;
    } else if (engine_run(c->es, mj->cp, &c->ctx, &c->v, job_engine_done,
                          j) == ENGINE_PENDING) {
        return;
    }
    mloop_job_done(the_milter.ml, j);
}

/* The loop is stopping: engine sessions go with it. */
static void loop_exit(void *arg, struct loop *lp)
{
    pthread_mutex_lock(&the_milter.mu);
    for (struct mconn *c = the_milter.conns; c; c = c->next) {
        engine_session_free(c->es);
        c->es = NULL;
    }
    pthread_mutex_unlock(&the_milter.mu);
}

static void ctx_refresh(struct mconn *c)
{
    struct engine_ctx *x = &c->ctx;

    x->session_id = c->id;
    x->listener = the_milter.name;
    x->client = c->client;
    x->client_name = c->client_name;
    x->helo = c->helo;
    x->esmtp = true;
    x->tls = c->tls;
    x->auth_user = c->auth_user;
    x->sender = c->in_tx ? c->sender : NULL;
    x->rcpts = (const char *const *)c->rcpts;
    x->nrcpts = c->nrcpts;
}

/* Run cp; c->v holds the verdict. A stopped loop gives a tempfail. */
static void run_checkpoint(struct mconn *c, enum checkpoint cp)
{
    struct mjob j = {.base.run = job_run, .c = c, .cp = cp};

    ctx_refresh(c);
    verdict_clear(&c->v);
    verdict_init(&c->v);
    if (mloop_call(the_milter.ml, &j.base) != 0) {
        verdict_clear(&c->v);
        verdict_set(&c->v, VERDICT_TEMPFAIL, 451, "4.3.2",
                    "Service shutting down, try again later", "milter");
    }
}

static void note_failure(struct mconn *c, const char *rcpt)
{
    struct mjob j = {.base.run = job_run, .c = c, .note_failure = true};

    ctx_refresh(c);
    c->ctx.rcpt = rcpt;
    mloop_call(the_milter.ml, &j.base);
}

/* ---- replies and logs ---------------------------------------------------- */

static const char *stage_name(enum checkpoint cp)
{
    switch (cp) {
    case CP_CONNECT: return "connect";
    case CP_HELO: return "helo";
    case CP_AUTH: return "auth";
    case CP_MAIL: return "mail";
    case CP_RCPT: return "rcpt";
    case CP_DATA: return "data";
    case CP_EOM: return "eom";
    default: return "other";
    }
}

/* The verdict as the MTA's reply; logs a refusal Postfix's way. */
static sfsistat answer(SMFICTX *ctx, struct mconn *c, enum checkpoint cp,
                       const char *what, const char *detail)
{
    struct verdict *v = &c->v;
    char code[4], text[VERDICT_TEXT_MAX + 32], rep[VERDICT_TEXT_MAX + 32];

    if (v->action == VERDICT_ACCEPT)
        return SMFIS_CONTINUE;
    /* the reply's class must match what we return */
    if (v->action == VERDICT_REJECT && (v->code < 500 || v->code > 599))
        v->code = 550;
    if (v->action == VERDICT_TEMPFAIL && (v->code < 400 || v->code > 499))
        v->code = 451;
    snprintf(code, sizeof(code), "%d", v->code);
    snprintf(text, sizeof(text), "%s", v->text[0] ? v->text : "Refused");
    if (smfi_setreply(ctx, code, v->enh[0] ? v->enh : NULL, text) !=
        MI_SUCCESS)
        log_warn("session=%s milter: the MTA did not take reply %s %s",
                 c->id, code, v->enh);
    snprintf(rep, sizeof(rep), "%d%s%s %s", v->code, v->enh[0] ? " " : "",
             v->enh, v->text);
    log_info("session=%s reject: %s from [%s]: %s;%s check=%s", c->id, what,
             c->client_ip, log_sanitize(rep, text, sizeof(text)),
             detail ? detail : "", v->check[0] ? v->check : "-");
    metric_rejection(stage_name(cp), v->check[0] ? v->check : "other");
    return v->action == VERDICT_REJECT ? SMFIS_REJECT : SMFIS_TEMPFAIL;
}

static double secs_since(const struct timeval *t)
{
    struct timeval now;

    gettimeofday(&now, NULL);
    return (double)(now.tv_sec - t->tv_sec) +
           (double)(now.tv_usec - t->tv_usec) / 1e6;
}

static void rcpt_list(const struct mconn *c, char *buf, size_t len)
{
    char clean[512];
    size_t o = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < c->nrcpts && o + 4 < len; i++) {
        int n = snprintf(buf + o, len - o, "%s<%s>", i ? "," : "",
                         log_sanitize(c->rcpts[i], clean, sizeof(clean)));
        if (n < 0 || (size_t)n >= len - o)
            break;
        o += (size_t)n;
    }
}

static void tx_reset(struct mconn *c)
{
    free(c->sender);
    c->sender = NULL;
    for (size_t i = 0; i < c->nrcpts; i++)
        free(c->rcpts[i]);
    c->nrcpts = 0;
    c->rcpts_refused = 0;
    spool_free(c->msg);
    c->msg = NULL;
    if (c->buf)
        evbuffer_free(c->buf);
    c->buf = NULL;
    c->size = 0;
    c->truncated = false;
    c->in_tx = false;
}

/* The transaction line, as the proxy writes it; then the transaction ends. */
static void tx_end(SMFICTX *ctx, struct mconn *c, const char *result)
{
    char to[1024], from[512], helo[128], user[128], qid[64], checks[256];
    const char *i = ctx ? smfi_getsymval(ctx, "i") : NULL;

    if (!c->in_tx)
        return;
    c->ntx++;
    metric_transaction(result);
    rcpt_list(c, to, sizeof(to));
    log_info("session=%s tx=%u client=[%s]:%u helo=<%s> tls=%s auth=%s "
             "from=<%s> to=%s nrcpt=%zu refused_rcpt=%u size=%zu check=%s%s "
             "result=%s queue_id=%s delay=%.3fs",
             c->id, c->tx_id, c->client_ip, netaddr_port(&c->client),
             log_sanitize(c->helo ? c->helo : "", helo, sizeof(helo)),
             c->tls ? "yes" : "no",
             c->auth_user ? log_sanitize(c->auth_user, user, sizeof(user))
                          : "-",
             log_sanitize(c->sender, from, sizeof(from)), to[0] ? to : "-",
             c->nrcpts, c->rcpts_refused, c->size,
             c->v.check[0] ? c->v.check : "-",
             c->es ? engine_summary(c->es, checks, sizeof(checks)) : "", result,
             i ? log_sanitize(i, qid, sizeof(qid)) : "-", secs_since(&c->tx_start));
    tx_reset(c);
}

/* ---- callbacks ----------------------------------------------------------- */

static struct mconn *conn_of(SMFICTX *ctx)
{
    return smfi_getpriv(ctx);
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* "<a@b>" -> "a@b"; "<>" -> "". */
static char *bare_address(const char *arg)
{
    size_t n = strlen(arg);

    if (n >= 2 && arg[0] == '<' && arg[n - 1] == '>')
        return strndup(arg + 1, n - 2);
    return strdup(arg);
}

/* Negotiation (protocol 6) comes first; an older MTA starts at connect. */
static struct mconn *conn_new(SMFICTX *ctx)
{
    struct mconn *c = conn_of(ctx);

    if (c)
        return c;
    if (!(c = calloc(1, sizeof(*c))))
        return NULL;
    verdict_init(&c->v);
    c->rt = the_milter.current(the_milter.current_arg);
    smfi_setpriv(ctx, c);
    return c;
}

static sfsistat on_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1,
                             unsigned long f2, unsigned long f3,
                             unsigned long *pf0, unsigned long *pf1,
                             unsigned long *pf2, unsigned long *pf3)
{
    struct mconn *c;

    /* headers may be added and (forged ones) removed */
    *pf0 = f0 & (SMFIF_ADDHDRS | SMFIF_CHGHDRS);
    /* exact header bytes; rejected recipients count as failures; no
     * round trip for each header and body chunk */
    *pf1 = f1 & (SMFIP_HDR_LEADSPC | SMFIP_RCPT_REJ | SMFIP_NR_HDR |
                 SMFIP_NR_BODY | SMFIP_NOUNKNOWN);
    *pf2 = *pf3 = 0;
    if (!(c = conn_new(ctx)))
        return SMFIS_TEMPFAIL;
    c->nr_hdr = *pf1 & SMFIP_NR_HDR;
    c->nr_body = *pf1 & SMFIP_NR_BODY;
    c->leadspc = *pf1 & SMFIP_HDR_LEADSPC;
    return SMFIS_CONTINUE;
}

static void conn_link(struct mconn *c)
{
    pthread_mutex_lock(&the_milter.mu);
    c->next = the_milter.conns;
    if (c->next)
        c->next->prev = c;
    the_milter.conns = c;
    pthread_mutex_unlock(&the_milter.mu);
}

static void conn_unlink(struct mconn *c)
{
    pthread_mutex_lock(&the_milter.mu);
    if (c->prev)
        c->prev->next = c->next;
    else
        the_milter.conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    pthread_mutex_unlock(&the_milter.mu);
}

static sfsistat on_connect(SMFICTX *ctx, char *hostname, _SOCK_ADDR *sa)
{
    struct mconn *c = conn_new(ctx);

    if (!c)
        return SMFIS_TEMPFAIL;
    gettimeofday(&c->start, NULL);
    if (sa && (sa->sa_family == AF_INET || sa->sa_family == AF_INET6))
        netaddr_from_sockaddr(&c->client, sa,
                              sa->sa_family == AF_INET
                                  ? sizeof(struct sockaddr_in)
                                  : sizeof(struct sockaddr_in6));
    else
        netaddr_from_ip(&c->client, "127.0.0.1", 0); /* a local client */
    netaddr_ip(&c->client, c->client_ip, sizeof(c->client_ip));
    /* Postfix says "unknown" (or "[ip]") when the name did not verify */
    if (hostname && hostname[0] != '[' && strcmp(hostname, "unknown") != 0)
        c->client_name = strdup(hostname);
    conn_link(c);
    metric_conn_opened();
    run_checkpoint(c, CP_CONNECT);
    return answer(ctx, c, CP_CONNECT, "CONNECT", NULL);
}

static sfsistat on_helo(SMFICTX *ctx, char *name)
{
    struct mconn *c = conn_of(ctx);

    if (!c)
        return SMFIS_TEMPFAIL;
    free(c->helo);
    c->helo = dup_or_null(name);
    c->tls = smfi_getsymval(ctx, "{tls_version}") != NULL;
    run_checkpoint(c, CP_HELO);
    return answer(ctx, c, CP_HELO, "HELO", NULL);
}

static sfsistat on_envfrom(SMFICTX *ctx, char **argv)
{
    struct mconn *c = conn_of(ctx);
    const char *user;
    char detail[600], from[512];

    if (!c || !argv || !argv[0])
        return SMFIS_TEMPFAIL;
    tx_reset(c);
    user = smfi_getsymval(ctx, "{auth_authen}");
    if (user && *user && (!c->auth_user || strcmp(user, c->auth_user) != 0)) {
        free(c->auth_user);
        c->auth_user = strdup(user);
        run_checkpoint(c, CP_AUTH);
        if (c->v.action != VERDICT_ACCEPT)
            return answer(ctx, c, CP_AUTH, "AUTH", NULL);
    }
    if (!c->tls)
        c->tls = smfi_getsymval(ctx, "{tls_version}") != NULL;
    c->sender = bare_address(argv[0]);
    if (!c->sender)
        return SMFIS_TEMPFAIL;
    c->in_tx = true; /* what the checks see as the sender */
    run_checkpoint(c, CP_MAIL);
    if (c->v.action != VERDICT_ACCEPT) {
        snprintf(detail, sizeof(detail), " from=<%s>",
                 log_sanitize(c->sender, from, sizeof(from)));
        tx_reset(c);
        return answer(ctx, c, CP_MAIL, "MAIL", detail);
    }
    c->tx_id++;
    gettimeofday(&c->tx_start, NULL);
    return SMFIS_CONTINUE;
}

static int add_rcpt(struct mconn *c, const char *addr)
{
    if (c->nrcpts == c->rcpts_cap) {
        size_t cap = c->rcpts_cap ? c->rcpts_cap * 2 : 8;
        char **v = realloc(c->rcpts, cap * sizeof(*v));
        if (!v)
            return -1;
        c->rcpts = v;
        c->rcpts_cap = cap;
    }
    if (!(c->rcpts[c->nrcpts] = strdup(addr)))
        return -1;
    c->nrcpts++;
    return 0;
}

static sfsistat on_envrcpt(SMFICTX *ctx, char **argv)
{
    struct mconn *c = conn_of(ctx);
    const char *mailer = smfi_getsymval(ctx, "{rcpt_mailer}");
    char *rcpt, detail[1100], from[512], to[512];
    sfsistat r;

    if (!c || !c->in_tx || !argv || !argv[0])
        return SMFIS_TEMPFAIL;
    if (!(rcpt = bare_address(argv[0])))
        return SMFIS_TEMPFAIL;
    if (mailer && strcmp(mailer, "error") == 0) {
        /* refused by the MTA itself (SMFIP_RCPT_REJ): a failure to count */
        c->rcpts_refused++;
        note_failure(c, rcpt);
        free(rcpt);
        return SMFIS_CONTINUE;
    }
    c->ctx.rcpt = rcpt;
    ctx_refresh(c);
    run_checkpoint(c, CP_RCPT);
    c->ctx.rcpt = NULL;
    if (c->v.action == VERDICT_ACCEPT) {
        r = add_rcpt(c, rcpt) == 0 ? SMFIS_CONTINUE : SMFIS_TEMPFAIL;
    } else {
        c->rcpts_refused++;
        snprintf(detail, sizeof(detail), " from=<%s> to=<%s>",
                 log_sanitize(c->sender, from, sizeof(from)),
                 log_sanitize(rcpt, to, sizeof(to)));
        r = answer(ctx, c, CP_RCPT, "RCPT", detail);
    }
    free(rcpt);
    return r;
}

static sfsistat on_data(SMFICTX *ctx)
{
    struct mconn *c = conn_of(ctx);
    const struct config *cfg;

    if (!c || !c->in_tx)
        return SMFIS_TEMPFAIL;
    run_checkpoint(c, CP_DATA);
    if (c->v.action != VERDICT_ACCEPT)
        return answer(ctx, c, CP_DATA, "DATA", NULL);
    cfg = c->rt->cfg;
    c->msg = spool_new(cfg->limits.spool_memory, cfg->spool_dir);
    c->buf = evbuffer_new();
    return c->msg && c->buf ? SMFIS_CONTINUE : SMFIS_TEMPFAIL;
}

/* Collect message bytes, up to max_message_size (the MTA enforces its own
 * limit; this bounds what Warden keeps). */
static int collect(struct mconn *c, const void *p, size_t n)
{
    size_t max = c->rt->cfg->limits.max_message_size;

    if (!c->buf)
        return -1;
    if (c->size + n > max) {
        c->truncated = true;
        n = c->size < max ? max - c->size : 0;
    }
    if (n && evbuffer_add(c->buf, p, n) != 0)
        return -1;
    c->size += n;
    if (evbuffer_get_length(c->buf) >= MILTER_BUF_FLUSH)
        return spool_append(c->msg, c->buf);
    return 0;
}

/* A header line as it was sent: with SMFIP_HDR_LEADSPC the value keeps its
 * leading blank; folded lines arrive with bare LF and go back to CRLF. */
static int collect_header(struct mconn *c, const char *name, const char *value,
                          bool leadspc)
{
    int rc = collect(c, name, strlen(name));

    rc |= collect(c, leadspc ? ":" : ": ", leadspc ? 1 : 2);
    for (const char *p = value; *p && rc == 0; p++) {
        if (*p == '\n' && (p == value || p[-1] != '\r'))
            rc |= collect(c, "\r", 1);
        rc |= collect(c, p, 1);
    }
    return rc | collect(c, "\r\n", 2);
}

static sfsistat on_header(SMFICTX *ctx, char *name, char *value)
{
    struct mconn *c = conn_of(ctx);

    if (!c || collect_header(c, name, value ? value : "", c->leadspc) != 0)
        return SMFIS_TEMPFAIL;
    return c->nr_hdr ? SMFIS_NOREPLY : SMFIS_CONTINUE;
}

static sfsistat on_eoh(SMFICTX *ctx)
{
    struct mconn *c = conn_of(ctx);

    if (!c || collect(c, "\r\n", 2) != 0)
        return SMFIS_TEMPFAIL;
    return SMFIS_CONTINUE;
}

static sfsistat on_body(SMFICTX *ctx, unsigned char *chunk, size_t len)
{
    struct mconn *c = conn_of(ctx);

    if (!c || collect(c, chunk, len) != 0)
        return SMFIS_TEMPFAIL;
    return c->nr_body ? SMFIS_NOREPLY : SMFIS_CONTINUE;
}

/* "Name: value" -> the MTA's new first header (order kept by inserting
 * the last one first). */
static void add_headers(SMFICTX *ctx, struct mconn *c)
{
    const struct header_list *h = &c->v.headers;

    for (size_t i = h->n; i-- > 0;) {
        char *line = strdup(h->v[i]), *colon;
        if (!line || !(colon = strchr(line, ':'))) {
            free(line);
            continue;
        }
        *colon = '\0';
        /* with SMFIP_HDR_LEADSPC the MTA takes the value as written,
         * its leading blank included */
        if (smfi_insheader(ctx, 0, line,
                           colon + 1 + (!c->leadspc && colon[1] == ' ')) !=
            MI_SUCCESS)
            log_warn("session=%s milter: the MTA did not take header %s",
                     c->id, line);
        free(line);
    }
}

/* Fields the engine removes (forged ones), highest index of a name first
 * so the indexes of the others stay what the engine counted. */
static void remove_headers(SMFICTX *ctx, struct mconn *c)
{
    struct header_removals *r = &c->v.remove;

    for (size_t i = 0; i < r->n; i++) {
        size_t top = i;
        for (size_t j = i + 1; j < r->n; j++)
            if (r->v[j].index > r->v[top].index)
                top = j;
        struct header_removal h = r->v[top];
        r->v[top] = r->v[i];
        r->v[i] = h;
        if (smfi_chgheader(ctx, h.name, (int)h.index, NULL) != MI_SUCCESS)
            log_warn("session=%s milter: the MTA did not remove header %s "
                     "#%u", c->id, h.name, h.index);
        else
            log_info("session=%s tx=%u removed header field %s #%u", c->id,
                     c->tx_id, h.name, h.index);
    }
}

static sfsistat on_eom(SMFICTX *ctx)
{
    struct mconn *c = conn_of(ctx);
    char detail[600], from[512];
    sfsistat r;

    if (!c || !c->in_tx || !c->msg)
        return SMFIS_TEMPFAIL;
    if (spool_append(c->msg, c->buf) != 0) {
        log_warn("session=%s milter: cannot spool the message: %s", c->id,
                 strerror(errno));
        return SMFIS_TEMPFAIL;
    }
    c->ctx.message = c->msg;
    c->ctx.message_dot_stuffed = false;
    c->ctx.message_size = c->size;
    run_checkpoint(c, CP_EOM);
    c->ctx.message = NULL;
    if (c->v.action == VERDICT_ACCEPT) {
        remove_headers(ctx, c);
        add_headers(ctx, c);
        tx_end(ctx, c, "accepted");
        return SMFIS_CONTINUE;
    }
    snprintf(detail, sizeof(detail), " from=<%s>",
             log_sanitize(c->sender, from, sizeof(from)));
    r = answer(ctx, c, CP_EOM, "END-OF-MESSAGE", detail);
    tx_end(ctx, c, c->v.action == VERDICT_REJECT ? "refused" : "tempfail");
    return r;
}

static sfsistat on_abort(SMFICTX *ctx)
{
    struct mconn *c = conn_of(ctx);

    if (c)
        tx_end(ctx, c, "aborted");
    return SMFIS_CONTINUE;
}

static void log_disconnect(const struct mconn *c);
static void conn_free(struct mconn *c);

static sfsistat on_close(SMFICTX *ctx)
{
    struct mconn *c = conn_of(ctx);

    if (!c)
        return SMFIS_CONTINUE;
    smfi_setpriv(ctx, NULL);
    if (c->start.tv_sec) { /* connected, not only negotiated */
        tx_end(NULL, c, "aborted");
        run_checkpoint(c, CP_CLOSE);
        conn_unlink(c);
        metric_conn_closed();
        log_disconnect(c);
    }
    conn_free(c);
    return SMFIS_CONTINUE;
}

static void log_disconnect(const struct mconn *c)
{
    char helo[128], user[128];

    log_info("session=%s disconnect client=[%s]:%u listener=%s helo=<%s> "
             "tls=%s auth=%s transactions=%u duration=%.3fs reason=milter",
             c->id, c->client_ip, netaddr_port(&c->client), the_milter.name,
             log_sanitize(c->helo ? c->helo : "", helo, sizeof(helo)),
             c->tls ? "yes" : "no",
             c->auth_user ? log_sanitize(c->auth_user, user, sizeof(user))
                          : "-",
             c->ntx, secs_since(&c->start));
}

static void conn_free(struct mconn *c)
{
    tx_reset(c);
    free(c->rcpts);
    free(c->client_name);
    free(c->helo);
    free(c->auth_user);
    verdict_clear(&c->v);
    runtime_unref(c->rt);
    free(c);
}

static struct smfiDesc description = {
    .xxfi_name = "warden",
    .xxfi_version = SMFI_VERSION,
    .xxfi_flags = SMFIF_ADDHDRS | SMFIF_CHGHDRS,
    .xxfi_connect = on_connect,
    .xxfi_helo = on_helo,
    .xxfi_envfrom = on_envfrom,
    .xxfi_envrcpt = on_envrcpt,
    .xxfi_header = on_header,
    .xxfi_eoh = on_eoh,
    .xxfi_body = on_body,
    .xxfi_eom = on_eom,
    .xxfi_abort = on_abort,
    .xxfi_close = on_close,
    .xxfi_data = on_data,
    .xxfi_negotiate = on_negotiate,
};

/* ---- life cycle ---------------------------------------------------------- */

/*
 * libmilter's smfi_main() starts a thread that sigwait()s for SIGHUP,
 * SIGTERM and SIGINT and stops the milter on any of them. Warden's main
 * loop owns those signals (SIGHUP reloads): the link maps libmilter's
 * sigwait here (-Wl,--wrap=sigwait), where that thread waits for ever,
 * and Warden stops the milter with smfi_stop() itself.
 */
int __wrap_sigwait(const sigset_t *set, int *sig);
int __wrap_sigwait(const sigset_t *set, int *sig)
{
    for (;;)
        pause();
}

static void unix_socket_owner(const struct config *cfg, const char *path)
{
    struct passwd *pw;

    if (geteuid() != 0 || !cfg->user || !(pw = getpwnam(cfg->user)))
        return;
    /* the MTA's account must be in the group to connect */
    if (chown(path, pw->pw_uid, pw->pw_gid) != 0 || chmod(path, 0660) != 0)
        log_warn("milter: %s: %s", path, strerror(errno));
}

int milter_open(const struct config *cfg, char *err, size_t len)
{
    const char *spec = cfg->milter_socket;

    snprintf(the_milter.name, sizeof(the_milter.name), "%s", cfg->milter_name);
    snprintf(the_milter.spec, sizeof(the_milter.spec), "%s", spec);
    if (smfi_setconn((char *)spec) != MI_SUCCESS ||
        smfi_register(description) != MI_SUCCESS) {
        snprintf(err, len, "milter: cannot set up %s", spec);
        return -1;
    }
    smfi_setbacklog(1024);
    if (smfi_opensocket(true) != MI_SUCCESS) {
        snprintf(err, len, "milter: cannot listen on %s (in use, or no "
                 "permission?)", spec);
        return -1;
    }
    if (strncmp(spec, "unix:", 5) == 0 || strncmp(spec, "local:", 6) == 0)
        unix_socket_owner(cfg, strchr(spec, ':') + 1);
    return 0;
}

static void *milter_main(void *arg)
{
    if (smfi_main() != MI_SUCCESS)
        log_err("milter: libmilter stopped with an error");
    return NULL;
}

int milter_run(struct store *store, struct runtime *(*current)(void *arg),
               void *arg, char *err, size_t len)
{
    struct runtime *rt = current(arg);

    the_milter.current = current;
    the_milter.current_arg = arg;
    the_milter.ml = mloop_start(store, rt, loop_exit, NULL);
    runtime_unref(rt);
    if (!the_milter.ml) {
        snprintf(err, len, "milter: cannot start the engine loop");
        return -1;
    }
    if (pthread_create(&the_milter.thread, NULL, milter_main, NULL) != 0) {
        snprintf(err, len, "milter: cannot start libmilter's thread");
        return -1;
    }
    the_milter.running = true;
    log_info("milter: listening on %s as listener=%s", the_milter.spec,
             the_milter.name);
    return 0;
}

void milter_stop(void)
{
    if (!the_milter.running)
        return;
    smfi_stop();
    mloop_stop(the_milter.ml);
    /* libmilter's listener wakes on its accept timeout to see the stop */
    pthread_join(the_milter.thread, NULL);
    the_milter.running = false;
}
