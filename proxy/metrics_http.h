/*
 * metrics_http: GET /metrics over HTTP (libevent's evhttp) on its own
 * thread and event loop, so a slow or hostile scraper never holds up a
 * worker. Bind it before dropping root; stop it before exiting.
 */
#ifndef WARDEN_METRICS_HTTP_H
#define WARDEN_METRICS_HTTP_H

#include <stddef.h>

#include "netaddr.h"

struct metrics_http;

/* Bound and serving, or NULL with the reason in err. */
struct metrics_http *metrics_http_start(const struct netaddr *addr, char *err,
                                        size_t errlen);

void metrics_http_stop(struct metrics_http *m);

#endif
