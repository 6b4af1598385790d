/*
 * milter: the milter front end (libmilter), for Postfix's smtpd_milters.
 *
 * Postfix (or sendmail) calls Warden at each step of its own SMTP session;
 * each step becomes the engine checkpoint the proxy would run there, with
 * the same policies and the same store, and the verdict goes back as a
 * milter reply: continue, or tempfail/reject with the engine's code,
 * enhanced code and text (smfi_setreply), plus headers added at end of
 * message. Log lines and metrics are the proxy's, with listener= the
 * milter's name.
 *
 * libmilter is process-wide (one milter per process, callbacks without a
 * user argument), so this module holds its one instance in a static.
 */
#ifndef WARDEN_MILTER_H
#define WARDEN_MILTER_H

#include <stddef.h>

struct config;
struct runtime;
struct store;

/* Bind the socket named by cfg->milter_socket (before root is dropped; a
 * Unix socket is given to cfg->user). 0, or -1 with err filled. */
int milter_open(const struct config *cfg, char *err, size_t len);

/* Start the engine loop and libmilter's listener thread. current() gives a
 * reference to the running snapshot, as for the admin socket. */
int milter_run(struct store *store, struct runtime *(*current)(void *arg),
               void *arg, char *err, size_t len);

/* Stop accepting milter connections and stop the engine loop; callbacks
 * still running answer tempfail from then on. */
void milter_stop(void);

#endif
