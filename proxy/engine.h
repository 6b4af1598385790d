/*
 * engine: the policy engine seam.
 *
 * Front ends (the SMTP proxy session, later the milter) call the engine at
 * each checkpoint of the SMTP dialogue with a read-only description of the
 * session (struct engine_ctx) and get back one verdict: accept, tempfail or
 * reject with an SMTP reply, plus headers to add at end of data.
 *
 * Threading contract: an engine_session belongs to one event loop and is
 * called only from that loop's thread; checks run on that thread too, and a
 * check that must wait (Redis, DNS, a worker thread) finishes by calling
 * back on the same loop. The engine never knows which front end calls it.
 *
 * Completion: engine_run() returns ENGINE_DONE when the verdict is already
 * in *out, or ENGINE_PENDING when done() will be called later from the
 * loop (never from inside engine_run). A pending run is cancelled by
 * engine_session_free(); done() is then not called. CP_AUTH and CP_CLOSE
 * are run synchronously: checks must finish at once there.
 */
#ifndef WARDEN_ENGINE_H
#define WARDEN_ENGINE_H

#include <stdbool.h>
#include <stddef.h>

#include "netaddr.h"

struct event_base;
struct config;
struct spool;
struct store_client;

enum checkpoint {
    CP_CONNECT,   /* client address known (after a trusted PROXY header) */
    CP_HELO,      /* HELO/EHLO name */
    CP_AUTH,      /* backend accepted AUTH; ctx->auth_user set */
    CP_MAIL,      /* MAIL FROM, before it is relayed */
    CP_RCPT,      /* each RCPT TO, before it is relayed */
    CP_DATA,      /* DATA command, before 354 */
    CP_EOM,       /* whole message received, before the backend sees it */
    CP_CLOSE,     /* session ended; verdict ignored */
    CP__COUNT
};

enum verdict_action {
    VERDICT_ACCEPT,
    VERDICT_TEMPFAIL,  /* 4xx */
    VERDICT_REJECT,    /* 5xx */
};

#define VERDICT_TEXT_MAX 400

struct header_list {
    char **v;          /* "Name: value", no CRLF */
    size_t n, cap;
};

/* An existing header field to delete at CP_EOM: the index-th (1-based)
 * field called name, counted in the message as received (as milter's
 * smfi_chgheader counts). For forged fields, e.g. an Authentication-Results
 * claiming to be ours. */
struct header_removal {
    char name[64];
    unsigned index;
};

struct header_removals {
    struct header_removal *v;
    size_t n, cap;
};

struct verdict {
    enum verdict_action action;
    int code;                      /* 4xx/5xx when not accepted */
    char enh[16];                  /* enhanced status "5.7.1", may be "" */
    char text[VERDICT_TEXT_MAX];   /* reply text, no CR/LF */
    bool disconnect;               /* close the session after replying */
    char check[32];                /* which check decided, for logs */
    struct header_list headers;    /* to prepend at CP_EOM when accepted */
    struct header_removals remove; /* to delete at CP_EOM when accepted */
};

/* What checks may look at; filled by the front end. All read-only. */
struct engine_ctx {
    const char *session_id;
    const char *listener;          /* listener name */
    struct netaddr client;         /* the real client */
    const char *client_name;       /* verified reverse name, or NULL */
    struct netaddr local;          /* address the client connected to */
    const char *helo;              /* NULL before HELO/EHLO */
    bool esmtp;
    bool tls;
    const char *auth_user;         /* NULL when not authenticated */
    const char *sender;            /* MAIL FROM address ("" for <>) */
    const char *rcpt;              /* the RCPT TO address at CP_RCPT */
    const char *const *rcpts;      /* recipients accepted so far */
    size_t nrcpts;
    struct spool *message;         /* at CP_EOM: the message as received */
    bool message_dot_stuffed;      /* DATA: as on the wire; BDAT: raw */
    size_t message_size;
};

enum engine_status { ENGINE_DONE, ENGINE_PENDING };

typedef void (*engine_done_fn)(void *arg, struct verdict *v);

struct engine_session;

/*
 * A per-session handle. cfg is referenced for the session's lifetime so the
 * policies in force when the session began stay in force until it ends.
 */
struct engine_session *engine_session_new(struct config *cfg,
                                          struct event_base *base,
                                          struct store_client *store);
void engine_session_free(struct engine_session *es);

/* A recipient or command was refused (by the backend or by Warden's own
 * syntax checks): checks that count failures are told. Never blocks. */
void engine_note_failure(struct engine_session *es,
                         const struct engine_ctx *ctx);

/* The checks' results for the transaction line (" spf=pass dkim=pass
 * score=2.1"), "" when none has any; after CP_EOM. */
const char *engine_summary(struct engine_session *es, char *buf, size_t len);
void engine_summary_add(char *buf, size_t len, const char *key,
                        const char *value);

/* Run every check that applies to cp; see the completion rules above. */
enum engine_status engine_run(struct engine_session *es, enum checkpoint cp,
                              const struct engine_ctx *ctx, struct verdict *out,
                              engine_done_fn done, void *arg);

const char *checkpoint_name(enum checkpoint cp);

/* Verdict helpers. verdict_init gives an accept with no headers. */
void verdict_init(struct verdict *v);
void verdict_clear(struct verdict *v);   /* frees headers */
void verdict_set(struct verdict *v, enum verdict_action a, int code,
                 const char *enh, const char *text, const char *check);
/* "554 5.7.1 Access denied" -> code, enh, text; returns 0 or -1. */
int verdict_parse_reply(struct verdict *v, const char *reply);

int header_list_add(struct header_list *h, const char *line);
void header_list_free(struct header_list *h);
/* Ask for the index-th field called name to go (once, whatever the
 * number of checks asking). Returns 0 or -1. */
int header_removals_add(struct header_removals *r, const char *name,
                        unsigned index);
void header_removals_free(struct header_removals *r);

#endif
