/*
 * session_int: what the session's files share (session.c: lifecycle,
 * I/O and the reply queue; session_cmd.c: the command table;
 * session_data.c: DATA and end of data). Not for other modules.
 *
 * Two FIFOs keep pipelining correct:
 *  - the reply queue holds one slot per client command, in order; a slot
 *    is filled locally or by a backend reply, and slots leave only from the
 *    head, so the client sees replies in the order it sent commands;
 *  - the expect queue holds one entry per command sent to the backend
 *    (the client's and Warden's own), matched to backend replies in order.
 */
#ifndef WARDEN_SESSION_INT_H
#define WARDEN_SESSION_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/time.h>

#include "datascan.h"
#include "ehlo.h"
#include "engine.h"
#include "msghdr.h"
#include "netaddr.h"
#include "session.h"
#include "smtp_cmd.h"
#include "xclient.h"

struct conn;
struct backend;
struct dns_lookup;
struct smtp_reply;
struct spool;

enum session_state {
    S_PROXY_HEADER,   /* waiting for a PROXY header from a trusted peer */
    S_CONNECT,        /* connect checkpoint, backend setup */
    S_COMMAND,        /* reading commands */
    S_AUTH,           /* client lines are SASL responses */
    S_DATA,           /* reading message content */
    S_BDAT,           /* reading a BDAT chunk */
    S_EOM,            /* message complete: checks, then the backend */
    S_REFUSED,        /* refused at connect: only QUIT is honoured */
    S_CLOSING,        /* flushing the last replies */
};

struct slot {
    struct slot *next;
    bool ready;
    bool close_after;   /* close the session once this reply is written */
    char *text;         /* full reply with CRLFs */
    size_t len;
};

struct session;
typedef void (*expect_fn)(struct session *s, struct smtp_reply *r,
                          struct slot *slot, unsigned txid, const char *data);

struct expect {
    struct expect *next;
    expect_fn fn;
    struct slot *slot;  /* where the reply goes; NULL for our own commands */
    unsigned txid;      /* the transaction it belongs to, 0 if none */
    char *data;         /* owned; e.g. the recipient of a RCPT */
    unsigned timeout;   /* ms to wait for it */
};

/* One mail transaction: from MAIL to the final reply, RSET or the end. */
/* Header fields one message may lose (forged ones). */
#define TX_MAX_DROPS 16

struct tx {
    unsigned id;
    char *sender;
    bool mail_ok;              /* the backend accepted MAIL */
    char **rcpts;              /* recipients the backend accepted */
    size_t nrcpts, cap;
    unsigned rcpts_sent;       /* RCPT commands relayed */
    unsigned rcpts_over;       /* RCPTs answered 452 for max_recipients */
    unsigned rcpts_refused;
    struct timeval start;
    struct datascan ds;
    struct spool *spool;
    struct evbuffer *scanned;  /* datascan output before it is spooled */
    struct verdict eom;        /* end-of-data verdict (headers to add) */
    bool data_sent;            /* our DATA went to the backend */
    bool streaming;            /* content is being written to the backend */
    bool chunked;              /* received with BDAT (raw, no dot-stuffing) */
    bool spool_error;          /* the spool could not be written */
    /* header fields the engine removes, as spool byte ranges */
    struct msghdr_range drop[TX_MAX_DROPS];
    size_t ndrop, next_drop;
    size_t stream_off;         /* spool bytes read while drops remain */
};

/* The command being handled (kept across an engine check that waits). */
struct current {
    const struct cmd_def *def;
    char *line;                /* the client's line, CRLF included */
    size_t len;
    struct smtp_cmd cmd;
    struct smtp_path path;
};

struct cmd_def {
    enum smtp_verb verb;
    unsigned flags;
    enum checkpoint cp;        /* CP__COUNT: no checkpoint */
    /* Validate; false when it already answered (error or local reply). */
    bool (*check)(struct session *s);
    /* After the engine accepted: relay or answer. */
    void (*proceed)(struct session *s);
};

#define CMD_SYNC_BEFORE (1u << 0) /* wait for every earlier reply first */
#define CMD_LAST (1u << 1)        /* ends a pipelined group (RFC 2920) */
#define CMD_BACKEND (1u << 2)     /* needs the backend (defer mode: 451) */

struct session {
    struct session *next, *prev;     /* the loop's list */
    struct loop *loop;
    struct runtime *rt;
    const struct config *cfg;        /* rt->cfg */
    const struct listener_conf *lc;
    char id[20];
    enum session_state state;

    struct conn *cc;                 /* client */
    struct netaddr client, local;
    char client_ip[NETADDR_STRLEN];
    bool tls;
    char tls_desc[96];

    struct backend *be;
    bool be_ready;
    bool be_lost;                    /* lost after it was ready */
    bool be_deferred;                /* unavailable, defer mode: answer 451 */
    struct smtp_caps caps;           /* backend's, from the latest EHLO */
    bool xclient_sent;
    unsigned xclient_pending;        /* XCLIENT replies still to come */
    unsigned xclient_total;
    char *xclient_rest[XCLIENT_MAX_LINES - 1]; /* sent after each 220 */
    char *held;                      /* command held until XCLIENT's 220 */
    size_t held_len;

    char *greeting;                  /* backend's, until we may greet */
    size_t greeting_len;
    int greeting_code;

    struct dns_lookup *dnsl;
    bool name_done;
    enum name_status name_status;
    char *client_name, *ptr_name;

    struct engine_session *es;
    struct engine_ctx ctx;
    struct verdict verdict;          /* of the run in progress */
    bool engine_wait;

    struct current cur;
    bool have_cur;

    struct slot *qhead, *qtail;
    unsigned qlen;
    struct expect *ehead, *etail;
    unsigned elen;
    bool barrier;                    /* after CMD_LAST: wait for the queue */
    bool skip_line;                  /* discarding an over-long line */
    enum smtp_line_problem skipped_problem;

    char *helo;
    bool esmtp;
    bool chunking_offered;           /* CHUNKING in our last EHLO reply */
    char *auth_user;
    char auth_mech[32];
    char *auth_first;                /* first SASL response, wiped at end */
    bool auth_done;
    char *helo_pending;              /* EHLO/HELO argument awaiting reply */

    struct tx *tx;
    unsigned next_txid;
    unsigned long long bdat_size;    /* the chunk being read */
    unsigned long long bdat_left;
    bool bdat_last;
    char *bdat_error;                /* reply once a refused chunk is read */
    struct slot *eom_slot;

    unsigned commands, errors, ntx;
    unsigned long long size_limit;   /* effective SIZE */
    struct timeval start;
    bool draining;                   /* shutdown: close after this tx */
    bool client_eof;                 /* the client will send no more */
    bool in_process;
    bool free_pending;
    char close_reason[64];
    struct event *ev_free;
};

/* session.c */
struct slot *slot_new(struct session *s);
void slot_fill(struct session *s, struct slot *sl, const char *text,
               size_t len);
void slot_fill_str(struct session *s, struct slot *sl, const char *text);
void reply_local(struct session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void reply_close(struct session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void reply_error(struct session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void reply_verdict(struct session *s, const struct verdict *v);
void flush_replies(struct session *s);
struct expect *expect_push(struct session *s, expect_fn fn,
                           struct slot *slot, unsigned txid, unsigned timeout);
void backend_write(struct session *s, const char *data, size_t len);
void relay_fill(struct session *s, struct slot *slot,
                const struct smtp_reply *r);
void session_close(struct session *s, const char *reason);
void session_resume(struct session *s);
void update_timeouts(struct session *s);
void ctx_refresh(struct session *s);
bool session_start_tls(struct session *s);
unsigned long long ms_since(const struct timeval *t);

/* session_cmd.c */
const struct cmd_def *cmd_lookup(enum smtp_verb v);
bool cmd_dispatch(struct session *s);
void expect_abandon(struct session *s, struct expect *e);
void cmd_after_verdict(struct session *s);
void auth_response(struct session *s, const char *line, size_t len);
void tx_end(struct session *s, const char *outcome, const char *reply);
void backend_lost_now(struct session *s);
bool send_xclient_if_needed(struct session *s, const struct smtp_cmd *first);

/* session_data.c */
void data_begin(struct session *s);
void data_input(struct session *s);
void bdat_begin(struct session *s, unsigned long long size, bool last,
                const char *error);
void bdat_input(struct session *s);
void data_drained(struct session *s);
void data_backend_lost(struct session *s);

#endif
