/*
 * dns: the resolver module, one per event loop (libevent's evdns, so DNS
 * work never blocks the loop). Upstream servers come from the config (for
 * tests: a DNS server on loopback) or /etc/resolv.conf; /etc/hosts is read.
 *
 * For now it answers one question: the client's verified host name
 * (forward-confirmed reverse DNS), which the backend gets as XCLIENT NAME.
 * A timeout or server failure is reported as temporary, never as a name.
 */
#ifndef WARDEN_DNS_H
#define WARDEN_DNS_H

#include "netaddr.h"
#include "xclient.h"

struct event_base;
struct dns_conf;
struct dns;
struct dns_lookup;

struct dns *dns_new(struct event_base *base, const struct dns_conf *conf);
void dns_free(struct dns *d);

/*
 * name: the verified name (NAME_OK) or NULL; ptr: the PTR name even when
 * it did not verify, or NULL. Both valid only during the call.
 */
typedef void (*dns_name_fn)(void *arg, enum name_status st, const char *name,
                            const char *ptr);

/* Start a lookup; cb is called once from the loop unless cancelled. */
struct dns_lookup *dns_client_name(struct dns *d, const struct netaddr *a,
                                   dns_name_fn cb, void *arg);
void dns_lookup_cancel(struct dns_lookup *l);

#endif
