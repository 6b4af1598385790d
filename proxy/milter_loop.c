/*
 * milter_loop: see milter_loop.h. The queue is a list under one mutex; a
 * byte down a pipe wakes the loop, which takes the whole queue at once.
 * Jobs that are running (a check waiting for Redis, say) sit in a second
 * list, so a loop that stops can still answer their callers.
 */
#define _GNU_SOURCE /* pipe2 */
#include "milter_loop.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "dns.h"
#include "log.h"
#include "runtime.h"
#include "store.h"

struct mloop {
    struct loop lp;
    pthread_t thread;
    bool running;                       /* thread started, not joined */
    pthread_mutex_t mu;
    bool stopped;                       /* no new jobs */
    struct mloop_job *qhead, *qtail;    /* waiting to run */
    struct mloop_job *inflight;         /* run, not done */
    int wake[2];
    struct event *ev_wake;
    void (*on_exit)(void *arg, struct loop *lp);
    void *arg;
};

static void inflight_add(struct mloop *ml, struct mloop_job *j)
{
    j->prev = NULL;
    j->next = ml->inflight;
    if (ml->inflight)
        ml->inflight->prev = j;
    ml->inflight = j;
}

static void inflight_del(struct mloop *ml, struct mloop_job *j)
{
    if (j->prev)
        j->prev->next = j->next;
    else
        ml->inflight = j->next;
    if (j->next)
        j->next->prev = j->prev;
    j->next = j->prev = NULL;
}

/* Under ml->mu. */
static void finish(struct mloop_job *j, bool failed)
{
    j->done = true;
    j->failed = failed;
    pthread_cond_signal(&j->cond);
}

void mloop_job_done(struct mloop *ml, struct mloop_job *j)
{
    pthread_mutex_lock(&ml->mu);
    inflight_del(ml, j);
    finish(j, false);
    pthread_mutex_unlock(&ml->mu);
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    struct mloop *ml = arg;
    struct mloop_job *j, *next;
    char buf[64];

    while (read(fd, buf, sizeof(buf)) > 0)
        ;
    pthread_mutex_lock(&ml->mu);
    j = ml->qhead;
    ml->qhead = ml->qtail = NULL;
    if (ml->stopped) {
        for (; j; j = next) {
            next = j->next;
            finish(j, true);
        }
        pthread_mutex_unlock(&ml->mu);
        event_base_loopbreak(ml->lp.base);
        return;
    }
    pthread_mutex_unlock(&ml->mu);
    /* the batch is this thread's now; a job is in flight before run(),
     * which may finish it at once (and its caller then frees it) */
    for (; j; j = next) {
        next = j->next;
        pthread_mutex_lock(&ml->mu);
        inflight_add(ml, j);
        pthread_mutex_unlock(&ml->mu);
        j->run(j, &ml->lp);
    }
}

static void *loop_main(void *arg)
{
    struct mloop *ml = arg;
    struct mloop_job *j;

    event_base_dispatch(ml->lp.base);
    if (ml->on_exit)
        ml->on_exit(ml->arg, &ml->lp);
    pthread_mutex_lock(&ml->mu);
    while ((j = ml->inflight)) {
        inflight_del(ml, j);
        finish(j, true);
    }
    for (j = ml->qhead; j; j = ml->qhead) {
        ml->qhead = j->next;
        finish(j, true);
    }
    ml->qtail = NULL;
    pthread_mutex_unlock(&ml->mu);
    return NULL;
}

struct mloop *mloop_start(struct store *store, struct runtime *rt,
                          void (*on_exit)(void *arg, struct loop *lp),
                          void *arg)
{
    struct mloop *ml = calloc(1, sizeof(*ml));
    sigset_t block, old;

    if (!ml)
        return NULL;
    pthread_mutex_init(&ml->mu, NULL);
    ml->wake[0] = ml->wake[1] = -1;
    ml->on_exit = on_exit;
    ml->arg = arg;
    ml->lp.store = store;
    ml->lp.rt = runtime_ref(rt);
    ml->lp.base = event_base_new();
    if (!ml->lp.base || pipe2(ml->wake, O_CLOEXEC | O_NONBLOCK) != 0)
        goto fail;
    ml->ev_wake = event_new(ml->lp.base, ml->wake[0], EV_READ | EV_PERSIST,
                            on_wake, ml);
    if (!ml->ev_wake || event_add(ml->ev_wake, NULL) != 0)
        goto fail;
    /* signals belong to the main thread */
    sigfillset(&block);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    ml->running = pthread_create(&ml->thread, NULL, loop_main, ml) == 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (ml->running)
        return ml;
fail:
    mloop_free(ml);
    return NULL;
}

int mloop_call(struct mloop *ml, struct mloop_job *j)
{
    bool was_empty;

    j->done = j->failed = false;
    j->next = j->prev = NULL;
    pthread_cond_init(&j->cond, NULL);
    pthread_mutex_lock(&ml->mu);
    if (ml->stopped) {
        pthread_mutex_unlock(&ml->mu);
        pthread_cond_destroy(&j->cond);
        return -1;
    }
    was_empty = !ml->qhead;
    if (ml->qtail)
        ml->qtail->next = j;
    else
        ml->qhead = j;
    ml->qtail = j;
    if (was_empty && write(ml->wake[1], "j", 1) != 1 && errno != EAGAIN)
        log_err("milter: cannot wake the engine loop");
    while (!j->done)
        pthread_cond_wait(&j->cond, &ml->mu);
    pthread_mutex_unlock(&ml->mu);
    pthread_cond_destroy(&j->cond);
    return j->failed ? -1 : 0;
}

void mloop_stop(struct mloop *ml)
{
    if (!ml)
        return;
    pthread_mutex_lock(&ml->mu);
    ml->stopped = true;
    pthread_mutex_unlock(&ml->mu);
    if (write(ml->wake[1], "s", 1) != 1)
        log_err("milter: cannot stop the engine loop");
    if (ml->running) {
        pthread_join(ml->thread, NULL);
        ml->running = false;
    }
}

void mloop_free(struct mloop *ml)
{
    if (!ml)
        return;
    mloop_stop(ml);
    if (ml->ev_wake)
        event_free(ml->ev_wake);
    if (ml->wake[0] >= 0)
        close(ml->wake[0]);
    if (ml->wake[1] >= 0)
        close(ml->wake[1]);
    dns_free(ml->lp.dns);
    store_client_free(ml->lp.store_client);
    runtime_unref(ml->lp.rt);
    if (ml->lp.base)
        event_base_free(ml->lp.base);
    pthread_mutex_destroy(&ml->mu);
    free(ml);
}
