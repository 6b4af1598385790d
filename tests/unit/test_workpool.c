/*
 * Unit tests for workpool: results come back on the submitter's loop and
 * thread; a cancelled job never calls done and is released exactly once,
 * whether it was waiting, running or already finished; a full queue
 * refuses at once.
 */
#include <pthread.h>
#include <semaphore.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "workpool.h"

struct job {
    sem_t *gate;          /* run() waits on it when set */
    sem_t started;        /* posted when run() starts */
    sem_t ran;            /* posted when run() returns */
    int done, released;
    pthread_t done_thread;
};

static void job_run(void *arg)
{
    struct job *j = arg;

    sem_post(&j->started);
    if (j->gate)
        sem_wait(j->gate);
    sem_post(&j->ran);
}

static void job_done(void *arg)
{
    struct job *j = arg;

    j->done++;
    j->done_thread = pthread_self();
}

static void job_release(void *arg)
{
    struct job *j = arg;

    __atomic_add_fetch(&j->released, 1, __ATOMIC_SEQ_CST);
}

static void job_init(struct job *j, sem_t *gate)
{
    j->gate = gate;
    j->done = j->released = 0;
    sem_init(&j->started, 0, 0);
    sem_init(&j->ran, 0, 0);
}

/* Run the loop until cond() or a second passes. */
static void loop_until(struct event_base *base, bool (*cond)(void *),
                       void *arg)
{
    for (int i = 0; i < 1000 && !cond(arg); i++) {
        event_base_loop(base, EVLOOP_NONBLOCK);
        usleep(1000);
    }
}

static bool is_done(void *arg)
{
    return ((struct job *)arg)->done > 0;
}

static void test_done_on_the_loop(void **state)
{
    struct event_base *base = event_base_new();
    struct workpool *p = workpool_new(2, 8);
    struct job j[4];

    for (int i = 0; i < 4; i++) {
        job_init(&j[i], NULL);
        assert_non_null(workpool_submit(p, base, job_run, job_done,
                                        job_release, &j[i]));
    }
    for (int i = 0; i < 4; i++) {
        loop_until(base, is_done, &j[i]);
        assert_int_equal(j[i].done, 1);
        assert_int_equal(j[i].released, 0);
        assert_true(pthread_equal(j[i].done_thread, pthread_self()));
    }
    workpool_free(p);
    event_base_free(base);
}

/* Exactly one release, within a second (a pool thread may do it). */
static void assert_released_once(struct job *j)
{
    for (int i = 0; i < 1000 && !__atomic_load_n(&j->released,
                                                 __ATOMIC_SEQ_CST);
         i++)
        usleep(1000);
    usleep(10000);
    assert_int_equal(__atomic_load_n(&j->released, __ATOMIC_SEQ_CST), 1);
}

static void test_cancel_each_state(void **state)
{
    struct event_base *base = event_base_new();
    struct workpool *p = workpool_new(1, 8);
    struct job running, queued, finished;
    struct work *wr, *wq, *wf;
    sem_t gate;
    int never;

    sem_init(&gate, 0, 0);
    job_init(&running, &gate);
    job_init(&queued, NULL);
    job_init(&finished, NULL);
    /* finished (or about to be): run() returned, done() not delivered */
    wf = workpool_submit(p, base, job_run, job_done, job_release, &finished);
    assert_non_null(wf);
    sem_wait(&finished.ran);
    wr = workpool_submit(p, base, job_run, job_done, job_release, &running);
    wq = workpool_submit(p, base, job_run, job_done, job_release, &queued);
    assert_non_null(wr);
    assert_non_null(wq);
    sem_wait(&running.started); /* the one thread is inside run() now */

    work_cancel(wq); /* waiting: released at once, never run */
    assert_int_equal(queued.released, 1);
    work_cancel(wr); /* running: released when run() returns */
    assert_int_equal(running.released, 0);
    work_cancel(wf);
    assert_released_once(&finished);
    sem_post(&gate);
    assert_released_once(&running);
    /* the loop has nothing to deliver */
    event_base_loop(base, EVLOOP_NONBLOCK);
    assert_int_equal(running.done + queued.done + finished.done, 0);
    sem_getvalue(&queued.started, &never);
    assert_int_equal(never, 0);
    workpool_free(p);
    event_base_free(base);
    sem_destroy(&gate);
}

static void test_full_queue(void **state)
{
    struct event_base *base = event_base_new();
    struct workpool *p = workpool_new(1, 1);
    struct job busy, waiting, refused;
    struct work *w;
    sem_t gate;

    sem_init(&gate, 0, 0);
    job_init(&busy, &gate);
    job_init(&waiting, NULL);
    job_init(&refused, NULL);
    assert_non_null(workpool_submit(p, base, job_run, job_done, job_release,
                                    &busy));
    sem_wait(&busy.started);
    w = workpool_submit(p, base, job_run, job_done, job_release, &waiting);
    assert_non_null(w);
    assert_null(workpool_submit(p, base, job_run, job_done, job_release,
                                &refused));
    assert_int_equal(refused.released, 0); /* still the caller's */
    sem_post(&gate);
    loop_until(base, is_done, &busy);
    loop_until(base, is_done, &waiting);
    assert_int_equal(busy.done + waiting.done, 2);
    workpool_free(p);
    event_base_free(base);
    sem_destroy(&gate);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_done_on_the_loop),
        cmocka_unit_test(test_cancel_each_state),
        cmocka_unit_test(test_full_queue),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
