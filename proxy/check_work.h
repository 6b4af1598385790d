/*
 * check_work: the per-session state every check keeps when its work runs
 * on the worker pool (SPF, DKIM, DMARC, scoring): the job in flight, the
 * verdict it will fill, and a guard timer that ends a job overrunning its
 * budget, so a stuck library call never holds a session.
 *
 * A check's state struct starts with a struct check_work; the check gets
 * it with check_work_state() and lists check_work_free as its
 * session_free, which cancels the job (the pool then releases it).
 */
#ifndef WARDEN_CHECK_WORK_H
#define WARDEN_CHECK_WORK_H

#include <stddef.h>

#include <event2/event.h>

struct engine_ctx;
struct engine_session;
struct check_ops;
struct verdict;
struct work;

struct check_work {
    struct engine_session *es;
    struct verdict *v;          /* of the run waiting for the job */
    struct work *work;          /* the job in flight, or NULL */
    struct event *guard;        /* its deadline; on_guard gets the state */
    char session_id[32];        /* for log lines from the job's result */
};

/* The state (size bytes, beginning with a struct check_work) of check c
 * in es, created zeroed on first use; NULL when memory runs out. */
void *check_work_state(struct engine_session *es, const struct check_ops *c,
                       const struct engine_ctx *ctx, size_t size,
                       event_callback_fn on_guard);
void check_work_free(void *state);

#endif
