/*
 * workpool: a few threads for blocking library calls (libspf2 resolves
 * DNS synchronously; libopendkim will too), so no event loop ever waits.
 *
 * A caller on an event loop submits run(arg); a pool thread runs it, and
 * done(arg) is then called back on the caller's loop (through an eventfd
 * the loop watches, so the loops need no locking of their own). The work
 * can be cancelled from that loop at any time: done() is then never
 * called, and release(arg) frees the argument as soon as no thread uses
 * it any more (possibly on a pool thread, so release must be thread-safe,
 * e.g. free()).
 *
 * The queue is bounded: when it is full, submit fails at once, and the
 * caller answers as it would for a timeout. Under a flood the pool sheds
 * work instead of building an unbounded backlog.
 */
#ifndef WARDEN_WORKPOOL_H
#define WARDEN_WORKPOOL_H

#include <stddef.h>

struct event_base;
struct workpool;
struct work;

typedef void (*work_fn)(void *arg);

/* Start nthreads threads; at most max_queued jobs wait for one. */
struct workpool *workpool_new(unsigned nthreads, size_t max_queued);
/* Stop the threads (after the job each is running); waiting jobs are
 * cancelled (released). Call with no work of any loop still pending. */
void workpool_free(struct workpool *p);

/*
 * The process-wide pool (WORKPOOL_SHARED_THREADS threads), started on
 * first use and kept until exit. NULL if it could not be started.
 */
#define WORKPOOL_SHARED_THREADS 16
#define WORKPOOL_SHARED_QUEUE 4096
struct workpool *workpool_shared(void);

/*
 * Run run(arg) on a pool thread, then done(arg) on base's loop (called
 * from that loop's thread only). Returns a handle valid until done() is
 * called or the work is cancelled; NULL (nothing called, arg still the
 * caller's) when the queue is full or resources ran out.
 */
struct work *workpool_submit(struct workpool *p, struct event_base *base,
                             work_fn run, work_fn done, work_fn release,
                             void *arg);

/* From base's loop only: done() will not be called; see release above. */
void work_cancel(struct work *w);

#endif
