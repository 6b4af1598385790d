/*
 * dns: forward-confirmed reverse DNS on evdns.
 *
 * PTR first, then A or AAAA of the PTR name; the name is verified when one
 * of those addresses is the client's. Like Postfix, only the first PTR
 * name is tried.
 */
#include "dns.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/dns.h>
#include <event2/event.h>

#include "config.h"
#include "log.h"
#include "metrics.h"

struct dns {
    struct evdns_base *evdns;
};

struct dns_lookup {
    struct dns *dns;
    struct evdns_request *req;
    struct netaddr addr;
    char ptr[256];
    dns_name_fn cb;
    void *arg;
    bool cancelled;
    struct timespec sent; /* of the query in flight, for the metrics */
};

static void query_sent(struct dns_lookup *l)
{
    clock_gettime(CLOCK_MONOTONIC, &l->sent);
}

/* One answer (or failure) to the query sent last; cancels are not counted. */
static void query_done(const struct dns_lookup *l, int result)
{
    struct timespec now;
    const char *what;

    if (result == DNS_ERR_CANCEL || result == DNS_ERR_SHUTDOWN)
        return;
    clock_gettime(CLOCK_MONOTONIC, &now);
    what = result == DNS_ERR_NONE       ? "ok"
           : result == DNS_ERR_NOTEXIST ? "nxdomain"
           : result == DNS_ERR_TIMEOUT  ? "timeout"
                                        : "error";
    metric_dns_query((double)(now.tv_sec - l->sent.tv_sec) +
                         (double)(now.tv_nsec - l->sent.tv_nsec) / 1e9,
                     what);
}

struct dns *dns_new(struct event_base *base, const struct dns_conf *conf)
{
    struct dns *d = calloc(1, sizeof(*d));
    char tmo[16];

    if (!d)
        return NULL;
    if (conf->nservers == 0) {
        d->evdns = evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
                                            EVDNS_BASE_DISABLE_WHEN_INACTIVE);
    } else {
        d->evdns = evdns_base_new(base, EVDNS_BASE_DISABLE_WHEN_INACTIVE);
        for (size_t i = 0; d->evdns && i < conf->nservers; i++)
            evdns_base_nameserver_sockaddr_add(
                d->evdns, (const struct sockaddr *)&conf->servers[i].ss,
                conf->servers[i].len, 0);
        if (d->evdns)
            evdns_base_load_hosts(d->evdns, NULL);
    }
    if (!d->evdns) {
        free(d);
        return NULL;
    }
    snprintf(tmo, sizeof(tmo), "%.3f", conf->timeout / 1000.0);
    evdns_base_set_option(d->evdns, "timeout:", tmo);
    evdns_base_set_option(d->evdns, "attempts:", "1");
    return d;
}

void dns_free(struct dns *d)
{
    if (!d)
        return;
    evdns_base_free(d->evdns, 1); /* fails pending requests: they clean up */
    free(d);
}

static enum name_status status_of(int result)
{
    switch (result) {
    case DNS_ERR_NONE:
        return NAME_OK;
    case DNS_ERR_NOTEXIST:
    case DNS_ERR_FORMAT:
    case DNS_ERR_NOTIMPL:
    case DNS_ERR_REFUSED:
        return NAME_UNAVAILABLE;
    default:
        return NAME_TEMPUNAVAIL;
    }
}

static void finish(struct dns_lookup *l, enum name_status st)
{
    if (!l->cancelled)
        l->cb(l->arg, st, st == NAME_OK ? l->ptr : NULL,
              l->ptr[0] ? l->ptr : NULL);
    free(l);
}

static bool forward_matches(const struct dns_lookup *l, int type, int count,
                            const void *addrs)
{
    const struct sockaddr *sa = (const struct sockaddr *)&l->addr.ss;

    if (type == DNS_IPv4_A && sa->sa_family == AF_INET) {
        const struct in_addr *want = &((const struct sockaddr_in *)sa)->sin_addr;
        for (int i = 0; i < count; i++)
            if (memcmp(&((const struct in_addr *)addrs)[i], want, 4) == 0)
                return true;
    }
    if (type == DNS_IPv6_AAAA && sa->sa_family == AF_INET6) {
        const struct in6_addr *want =
            &((const struct sockaddr_in6 *)sa)->sin6_addr;
        for (int i = 0; i < count; i++)
            if (memcmp(&((const struct in6_addr *)addrs)[i], want, 16) == 0)
                return true;
    }
    return false;
}

static void on_forward(int result, char type, int count, int ttl, void *addrs,
                       void *arg)
{
    struct dns_lookup *l = arg;
    enum name_status st = status_of(result);

    l->req = NULL;
    query_done(l, result);
    if (st == NAME_OK && !forward_matches(l, type, count, addrs))
        st = NAME_UNAVAILABLE;
    finish(l, st);
}

static void on_ptr(int result, char type, int count, int ttl, void *addrs,
                   void *arg)
{
    struct dns_lookup *l = arg;
    enum name_status st = status_of(result);
    const struct sockaddr *sa = (const struct sockaddr *)&l->addr.ss;

    l->req = NULL;
    query_done(l, result);
    if (l->cancelled || st != NAME_OK || type != DNS_PTR || count < 1) {
        finish(l, st == NAME_OK ? NAME_UNAVAILABLE : st);
        return;
    }
    snprintf(l->ptr, sizeof(l->ptr), "%s", ((char **)addrs)[0]);
    query_sent(l);
    if (sa->sa_family == AF_INET)
        l->req = evdns_base_resolve_ipv4(l->dns->evdns, l->ptr,
                                         DNS_QUERY_NO_SEARCH, on_forward, l);
    else
        l->req = evdns_base_resolve_ipv6(l->dns->evdns, l->ptr,
                                         DNS_QUERY_NO_SEARCH, on_forward, l);
    if (!l->req)
        finish(l, NAME_TEMPUNAVAIL);
}

/* IPv4-mapped IPv6 clients are looked up as IPv4. */
static void normalise(struct netaddr *out, const struct netaddr *a)
{
    char ip[NETADDR_STRLEN];

    netaddr_ip(a, ip, sizeof(ip));
    if (netaddr_from_ip(out, ip, netaddr_port(a)) != 0)
        *out = *a;
}

struct dns_lookup *dns_client_name(struct dns *d, const struct netaddr *a,
                                   dns_name_fn cb, void *arg)
{
    struct dns_lookup *l = calloc(1, sizeof(*l));
    const struct sockaddr *sa;

    if (!l)
        return NULL;
    l->dns = d;
    l->cb = cb;
    l->arg = arg;
    normalise(&l->addr, a);
    sa = (const struct sockaddr *)&l->addr.ss;
    query_sent(l);
    if (sa->sa_family == AF_INET)
        l->req = evdns_base_resolve_reverse(
            d->evdns, &((const struct sockaddr_in *)sa)->sin_addr, 0, on_ptr,
            l);
    else
        l->req = evdns_base_resolve_reverse_ipv6(
            d->evdns, &((const struct sockaddr_in6 *)sa)->sin6_addr, 0, on_ptr,
            l);
    if (!l->req) {
        free(l);
        return NULL;
    }
    return l;
}

void dns_lookup_cancel(struct dns_lookup *l)
{
    if (!l)
        return;
    l->cancelled = true;
    if (l->req)
        evdns_cancel_request(l->dns->evdns, l->req); /* calls back, frees */
}
