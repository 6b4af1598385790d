/*
 * check: the interface every check implements (client access now; rate
 * limits, SPF/DKIM/DMARC and content scoring later), and the table of them.
 *
 * A check says at which checkpoints it runs. run() fills the verdict and
 * returns ENGINE_DONE, or returns ENGINE_PENDING and later calls
 * engine_check_done() from the session's event loop. Per-session state, if
 * a check needs any, hangs off engine_session_state(). note_failure, when
 * set, hears of every refused recipient or command (it must not block).
 */
#ifndef WARDEN_CHECK_H
#define WARDEN_CHECK_H

#include "engine.h"

struct check_ops {
    const char *name;
    unsigned checkpoints;                 /* bit (1u << CP_x) per checkpoint */
    enum engine_status (*run)(struct engine_session *es, enum checkpoint cp,
                              const struct engine_ctx *ctx, struct verdict *v);
    void (*session_free)(void *state);    /* optional */
    void (*note_failure)(struct engine_session *es,
                         const struct engine_ctx *ctx);  /* optional */
    /* optional: append " key=value" results of this transaction (after
     * CP_EOM) for the transaction's log line; nothing when it did not run */
    void (*summary)(struct engine_session *es, char *buf, size_t len);
};

#define CP_BIT(cp) (1u << (cp))

/* The checks, in the order they run. */
extern const struct check_ops check_access;
extern const struct check_ops check_limits;
extern const struct check_ops check_spf;
extern const struct check_ops check_dkim;
extern const struct check_ops check_dmarc;
extern const struct check_ops check_authres;
extern const struct check_ops check_dkim_sign;
extern const struct check_ops check_score;

struct config *engine_session_config(struct engine_session *es);
struct event_base *engine_session_base(struct engine_session *es);
/* Where limits are counted; NULL when none is set up (unit tests). */
struct store_client *engine_session_store(struct engine_session *es);
/* Slot for check c's per-session state (NULL until the check sets it). */
void **engine_session_state(struct engine_session *es,
                            const struct check_ops *c);
/* A pending check finished; v is the verdict it filled. */
void engine_check_done(struct engine_session *es);

#endif
