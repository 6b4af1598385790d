/*
 * workpool: threads, a bounded FIFO, and per-job completion through an
 * eventfd (see the header for the contract).
 *
 * Why an eventfd per job rather than one pipe per loop: loops come and go
 * (every unit test makes its own), and a libevent base has no destructor
 * hook to tear a per-base channel down with. A job's eventfd lives exactly
 * as long as the job; the cost, two system calls, is small beside the DNS
 * round trips the job waits for.
 *
 * A job's state moves under the pool's lock:
 *   QUEUED -> RUNNING -> FINISHED   (the eventfd is written under the lock)
 * and work_cancel() takes it out at any point. The eventfd is written
 * while the lock is held, so once the loop holds the lock after a cancel,
 * no pool thread touches the job again.
 */
#include "workpool.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"

#define STACK_SIZE (1024 * 1024) /* libspf2 keeps a few names on the stack */

enum work_state { W_QUEUED, W_RUNNING, W_FINISHED, W_CANCELLED };

struct work {
    struct workpool *pool;
    struct work *next;       /* in the queue */
    work_fn run, done, release;
    void *arg;
    int efd;
    struct event *ev;        /* on the submitter's base */
    enum work_state state;
};

struct workpool {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    struct work *head, *tail;
    size_t queued, max_queued;
    bool stopping;
    pthread_t *threads;
    unsigned nthreads;
};

static void *pool_main(void *arg);
static void run_one(struct workpool *p, struct work *w);
static void on_finished(evutil_socket_t fd, short what, void *arg);
static void work_destroy(struct work *w, bool released);

/* ---- the pool ---- */

struct workpool *workpool_new(unsigned nthreads, size_t max_queued)
{
    struct workpool *p = calloc(1, sizeof(*p));
    pthread_attr_t attr;

    if (!p || !(p->threads = calloc(nthreads, sizeof(*p->threads)))) {
        free(p);
        return NULL;
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    p->max_queued = max_queued;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, STACK_SIZE);
    for (; p->nthreads < nthreads; p->nthreads++)
        if (pthread_create(&p->threads[p->nthreads], &attr, pool_main, p) !=
            0)
            break;
    pthread_attr_destroy(&attr);
    if (p->nthreads == 0) {
        workpool_free(p);
        return NULL;
    }
    return p;
}

void workpool_free(struct workpool *p)
{
    struct work *w;

    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->stopping = true;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    for (unsigned i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    while ((w = p->head)) {
        p->head = w->next;
        work_destroy(w, true);
    }
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->lock);
    free(p->threads);
    free(p);
}

static struct workpool *shared;
static pthread_once_t shared_once = PTHREAD_ONCE_INIT;

static void start_shared(void)
{
    shared = workpool_new(WORKPOOL_SHARED_THREADS, WORKPOOL_SHARED_QUEUE);
    if (!shared)
        log_err("workpool: cannot start worker threads");
}

struct workpool *workpool_shared(void)
{
    pthread_once(&shared_once, start_shared);
    return shared;
}

static void *pool_main(void *arg)
{
    struct workpool *p = arg;

    pthread_mutex_lock(&p->lock);
    for (;;) {
        struct work *w;

        while (!p->head && !p->stopping)
            pthread_cond_wait(&p->wake, &p->lock);
        if (p->stopping)
            break;
        w = p->head;
        p->head = w->next;
        if (!p->head)
            p->tail = NULL;
        p->queued--;
        w->state = W_RUNNING;
        pthread_mutex_unlock(&p->lock);
        run_one(p, w);
        pthread_mutex_lock(&p->lock);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

static void run_one(struct workpool *p, struct work *w)
{
    uint64_t one = 1;

    w->run(w->arg);
    pthread_mutex_lock(&p->lock);
    if (w->state == W_CANCELLED) {
        pthread_mutex_unlock(&p->lock);
        work_destroy(w, true); /* its event is gone already */
        return;
    }
    w->state = W_FINISHED;
    /* under the lock: a cancel right after this must not race the write */
    if (write(w->efd, &one, sizeof(one)) != sizeof(one))
        log_err("workpool: cannot signal a finished job: %s",
                strerror(errno));
    pthread_mutex_unlock(&p->lock);
}

/* ---- jobs ---- */

/* Free a job's resources; released: hand arg to release() too. */
static void work_destroy(struct work *w, bool released)
{
    if (w->ev)
        event_free(w->ev);
    if (w->efd >= 0)
        close(w->efd);
    if (released && w->release)
        w->release(w->arg);
    free(w);
}

struct work *workpool_submit(struct workpool *p, struct event_base *base,
                             work_fn run, work_fn done, work_fn release,
                             void *arg)
{
    struct work *w;

    if (!p || !(w = calloc(1, sizeof(*w))))
        return NULL;
    w->pool = p;
    w->run = run;
    w->done = done;
    w->release = release;
    w->arg = arg;
    w->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (w->efd < 0 ||
        !(w->ev = event_new(base, w->efd, EV_READ, on_finished, w)) ||
        event_add(w->ev, NULL) != 0) {
        work_destroy(w, false);
        return NULL;
    }
    pthread_mutex_lock(&p->lock);
    if (p->stopping || p->queued >= p->max_queued) {
        pthread_mutex_unlock(&p->lock);
        work_destroy(w, false);
        return NULL;
    }
    w->state = W_QUEUED;
    if (p->tail)
        p->tail->next = w;
    else
        p->head = w;
    p->tail = w;
    p->queued++;
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->lock);
    return w;
}

/* On the submitter's loop: the job finished and was not cancelled. */
static void on_finished(evutil_socket_t fd, short what, void *arg)
{
    struct work *w = arg;
    work_fn done = w->done;
    void *warg = w->arg;

    work_destroy(w, false);
    done(warg);
}

static void unlink_queued(struct workpool *p, struct work *w)
{
    struct work **pp = &p->head, *prev = NULL;

    while (*pp && *pp != w) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (!*pp)
        return;
    *pp = w->next;
    if (p->tail == w)
        p->tail = prev;
    p->queued--;
}

void work_cancel(struct work *w)
{
    struct workpool *p;

    if (!w)
        return;
    p = w->pool;
    pthread_mutex_lock(&p->lock);
    switch (w->state) {
    case W_QUEUED:
        unlink_queued(p, w);
        pthread_mutex_unlock(&p->lock);
        work_destroy(w, true);
        return;
    case W_RUNNING:
        /* the pool thread frees it when run() returns; the event goes now,
         * on the loop that owns it */
        w->state = W_CANCELLED;
        event_free(w->ev);
        w->ev = NULL;
        pthread_mutex_unlock(&p->lock);
        return;
    case W_FINISHED:
        pthread_mutex_unlock(&p->lock);
        work_destroy(w, true);
        return;
    case W_CANCELLED:
        break; /* cancelled twice: the pool thread owns it */
    }
    pthread_mutex_unlock(&p->lock);
}
