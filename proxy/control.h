/*
 * control: the daemon's admin socket (a Unix stream socket, mode 0600).
 *
 * One command per connection, one line: "limits show WHO...", "limits
 * reset WHO...", "limits stats" or "policy test WHO..."; the answer is the report text and
 * a last line "exit=N" (the command's status), then the socket closes. It is served by its own thread with blocking
 * I/O, never by an event loop, so a slow admin client or a slow store
 * cannot delay mail. This is how `warden limits` reaches counters that
 * live inside the daemon (the memory store).
 */
#ifndef WARDEN_CONTROL_H
#define WARDEN_CONTROL_H

#include <stdio.h>

struct runtime;
struct store;
struct control;

/* current() returns a reference to the running snapshot (unref it). */
struct control *control_start(const char *path, struct store *st,
                              struct runtime *(*current)(void *arg),
                              void *arg);
void control_stop(struct control *c);

/* Run one command line against a config and a store; the report goes to
 * out. Shared by the daemon and by `warden` run on a Redis store. */
int control_run(const char *line, const struct runtime *rt, struct store *st,
                FILE *out);

#endif
