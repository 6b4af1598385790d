/*
 * check_work: see check_work.h.
 */
#include "check_work.h"

#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#include "workpool.h"

void *check_work_state(struct engine_session *es, const struct check_ops *c,
                       const struct engine_ctx *ctx, size_t size,
                       event_callback_fn on_guard)
{
    void **slot = engine_session_state(es, c);
    struct check_work *cw = *slot;

    if (cw)
        return cw;
    if (!(cw = calloc(1, size)))
        return NULL;
    cw->es = es;
    cw->guard = evtimer_new(engine_session_base(es), on_guard, cw);
    if (!cw->guard) {
        free(cw);
        return NULL;
    }
    snprintf(cw->session_id, sizeof(cw->session_id), "%s",
             ctx->session_id ? ctx->session_id : "-");
    *slot = cw;
    return cw;
}

void check_work_free(void *state)
{
    struct check_work *cw = state;

    work_cancel(cw->work); /* the job is released by the pool */
    event_free(cw->guard);
    free(cw);
}
