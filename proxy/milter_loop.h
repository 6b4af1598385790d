/*
 * milter_loop: the event loop that runs the engine for the milter front
 * end, and the hand-off to it from libmilter's threads.
 *
 * libmilter calls its callbacks on threads of its own. The engine and its
 * checks belong to one event loop (engine.h), so a callback hands its work
 * to this loop's thread and waits: the engine stays single-threaded as in
 * the proxy, and a check waiting for Redis or DNS holds up only the milter
 * connection that asked.
 *
 * A job's run() is called on the loop thread and must end, at once or
 * later from that loop, with mloop_job_done(). Once the loop has stopped,
 * mloop_call() refuses new jobs, and jobs still in flight are finished as
 * failed after the exit hook has run (so the caller never waits forever).
 */
#ifndef WARDEN_MILTER_LOOP_H
#define WARDEN_MILTER_LOOP_H

#include <pthread.h>
#include <stdbool.h>

#include "server.h"

struct mloop_job {
    void (*run)(struct mloop_job *j, struct loop *lp);
    bool done;
    bool failed;                 /* finished by the loop stopping */
    pthread_cond_t cond;
    struct mloop_job *next, *prev;
};

struct mloop;

/* Starts the thread. on_exit(arg, lp) runs on the loop thread when it
 * stops, before in-flight jobs are failed: free what lives on the loop. */
struct mloop *mloop_start(struct store *store, struct runtime *rt,
                          void (*on_exit)(void *arg, struct loop *lp),
                          void *arg);

/* Run j on the loop and wait for it. -1 (j not run, or failed) when the
 * loop has stopped. */
int mloop_call(struct mloop *ml, struct mloop_job *j);

/* On the loop thread: j is finished; its caller wakes up. */
void mloop_job_done(struct mloop *ml, struct mloop_job *j);

/* Stop the loop and join its thread. The struct stays allocated (libmilter
 * threads may still call mloop_call, which then fails); mloop_free() is for
 * when they are known to be gone. */
void mloop_stop(struct mloop *ml);
void mloop_free(struct mloop *ml);

#endif
