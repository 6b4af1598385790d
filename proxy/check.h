/*
 * check: the interface every check implements (client access now; rate
 * limits, SPF/DKIM/DMARC and content scoring later), and the table of them.
 *
 * A check says at which checkpoints it runs. run() fills the verdict and
 * returns ENGINE_DONE, or returns ENGINE_PENDING and later calls
 * engine_check_done() from the session's event loop. Per-session state, if
 * a check needs any, hangs off engine_session_state().
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
};

#define CP_BIT(cp) (1u << (cp))

/* The checks, in the order they run. */
extern const struct check_ops check_access;

struct config *engine_session_config(struct engine_session *es);
struct event_base *engine_session_base(struct engine_session *es);
/* Slot for the running check's per-session state. */
void **engine_session_state(struct engine_session *es);
/* A pending check finished; v is the verdict it filled. */
void engine_check_done(struct engine_session *es);

#endif
