/*
 * redis_events: hiredis async I/O on libevent with batched writes (see
 * redis_events.h).
 *
 * hiredis calls back into us from inside redisAsyncHandleRead/Write, and
 * may free the context there (cleanup). So the callbacks that call into
 * hiredis mark the struct busy, and cleanup only marks a busy struct
 * dead; whoever set busy frees it afterwards.
 */
#include "redis_events.h"

#include <stdbool.h>
#include <stdlib.h>

#include <hiredis/hiredis.h>

struct redis_events {
    redisAsyncContext *ac;
    struct event *rev;   /* EV_READ|EV_PERSIST, added while reading */
    struct event *wev;   /* EV_WRITE|EV_PERSIST, added while waiting */
    struct event *flush; /* no fd: made active to write this iteration */
    bool reading;
    bool waiting; /* wev added: connecting, or a write would block */
    bool flushing; /* flush is active, not run yet */
    bool writing;  /* inside redisAsyncHandleWrite */
    int busy;      /* nesting of our calls into hiredis */
    bool dead;     /* cleanup ran while busy */
};

static void events_free(struct redis_events *e)
{
    if (e->rev)
        event_free(e->rev);
    if (e->wev)
        event_free(e->wev);
    if (e->flush)
        event_free(e->flush);
    free(e);
}

/* Around each call into hiredis: false when the context went away. */
static void enter(struct redis_events *e) { e->busy++; }

static bool leave(struct redis_events *e)
{
    if (--e->busy == 0 && e->dead) {
        events_free(e);
        return false;
    }
    return !e->dead;
}

static void handle_write(struct redis_events *e)
{
    enter(e);
    e->writing = true;
    redisAsyncHandleWrite(e->ac);
    if (leave(e))
        e->writing = false;
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
    struct redis_events *e = arg;

    (void)fd;
    (void)what;
    enter(e);
    redisAsyncHandleRead(e->ac);
    leave(e);
}

static void on_writable(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    handle_write(arg);
}

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
    struct redis_events *e = arg;

    (void)fd;
    (void)what;
    e->flushing = false;
    if (!e->waiting)
        handle_write(e);
}

static void add_read(void *privdata)
{
    struct redis_events *e = privdata;

    if (!e->reading && event_add(e->rev, NULL) == 0)
        e->reading = true;
}

static void del_read(void *privdata)
{
    struct redis_events *e = privdata;

    if (e->reading)
        event_del(e->rev);
    e->reading = false;
}

static void wait_writable(struct redis_events *e)
{
    if (!e->waiting && event_add(e->wev, NULL) == 0)
        e->waiting = true;
}

/*
 * hiredis asks for this after queuing a command (flush at the end of this
 * iteration), while connecting, and when a write left data behind (both:
 * wait until the socket takes more).
 */
static void add_write(void *privdata)
{
    struct redis_events *e = privdata;

    if (e->writing || !(e->ac->c.flags & REDIS_CONNECTED)) {
        wait_writable(e);
        return;
    }
    if (!e->waiting && !e->flushing) {
        e->flushing = true;
        event_active(e->flush, EV_TIMEOUT, 1);
    }
}

static void del_write(void *privdata)
{
    struct redis_events *e = privdata;

    if (e->waiting)
        event_del(e->wev);
    e->waiting = false;
}

static void cleanup(void *privdata)
{
    struct redis_events *e = privdata;

    event_del(e->rev);
    event_del(e->wev);
    event_del(e->flush);
    if (e->busy)
        e->dead = true;
    else
        events_free(e);
}

int redis_events_attach(redisAsyncContext *ac, struct event_base *base)
{
    struct redis_events *e;
    int fd = ac->c.fd;

    if (ac->ev.data)
        return -1;
    e = calloc(1, sizeof(*e));
    if (!e)
        return -1;
    e->ac = ac;
    e->rev = event_new(base, fd, EV_READ | EV_PERSIST, on_read, e);
    e->wev = event_new(base, fd, EV_WRITE | EV_PERSIST, on_writable, e);
    e->flush = event_new(base, -1, 0, on_flush, e);
    if (!e->rev || !e->wev || !e->flush) {
        events_free(e);
        return -1;
    }
    ac->ev.addRead = add_read;
    ac->ev.delRead = del_read;
    ac->ev.addWrite = add_write;
    ac->ev.delWrite = del_write;
    ac->ev.cleanup = cleanup;
    ac->ev.data = e;
    /* as hiredis' adapter does: the connect completes on EV_WRITE */
    add_read(e);
    wait_writable(e);
    return 0;
}
