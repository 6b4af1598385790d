/*
 * server: listeners, the event loop, signals, reload and shutdown.
 *
 * Each worker thread runs one loop with its own listening sockets
 * (SO_REUSEPORT: the kernel spreads connections), its own sessions (a
 * list, so shutdown can reach them) and its own resolver. Nothing of a
 * session is shared between threads but the immutable runtime snapshot.
 * Sessions report their end with loop_session_gone().
 */
#ifndef WARDEN_SERVER_H
#define WARDEN_SERVER_H

#include <stdbool.h>
#include <stdint.h>

struct event_base;
struct runtime;
struct dns;
struct session;
struct store;
struct store_client;

struct loop {
    struct event_base *base;
    struct dns *dns;              /* NULL until first needed */
    struct runtime *rt;           /* current snapshot (new sessions use it) */
    struct session *sessions;     /* intrusive list via session->next/prev */
    unsigned nsessions;
    unsigned *total;              /* sessions in all loops (atomic); or NULL */
    bool draining;                /* SIGTERM received */
    uint64_t id_next;             /* session id counter (0: not seeded) */
    struct store *store;          /* limit counters, shared by all loops */
    struct store_client *store_client; /* this loop's handle, lazily */
};

void loop_session_add(struct loop *lp, struct session *s);
void loop_session_gone(struct loop *lp, struct session *s);
struct dns *loop_dns(struct loop *lp);
/* A new session id: LOOP_ID_LEN characters of base 32. */
#define LOOP_ID_LEN 10
void loop_new_id(struct loop *lp, char id[LOOP_ID_LEN + 1]);
/* This loop's store handle; NULL when there is no store. */
struct store_client *loop_store(struct loop *lp);

/* Run the daemon until SIGTERM/SIGINT and drain. Returns an exit code. */
int server_run(const char *config_path);

#endif
