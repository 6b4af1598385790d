/*
 * redis_events: runs a hiredis async context on a libevent loop, like
 * hiredis' own libevent adapter, but with fewer system calls per command:
 *
 * - the read event stays registered while hiredis wants to read (hiredis
 *   0.14 re-adds a one-shot event after every read: two epoll_ctl each);
 * - commands are written at the end of the loop iteration that queued them,
 *   all in one write(), without waiting for the socket to be reported
 *   writable (it nearly always is). Only a write that would block, and the
 *   connect itself, wait for EV_WRITE.
 *
 * So calls made by several sessions in one loop iteration share one
 * write() here and one read() in the server.
 */
#ifndef WARDEN_REDIS_EVENTS_H
#define WARDEN_REDIS_EVENTS_H

#include <event2/event.h>
#include <hiredis/async.h>

/* 0, or -1 when out of memory or something is attached already. */
int redis_events_attach(redisAsyncContext *ac, struct event_base *base);

#endif
