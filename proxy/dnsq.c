/*
 * dnsq: one blocking query against the configured servers (see dnsq.h).
 *
 * UDP first, on a fresh connected socket (random source port; a closed
 * port answers ECONNREFUSED at once instead of waiting out the timeout);
 * TCP when the reply is truncated. Every wait is a poll() bounded by one
 * deadline for the whole query, so no server, slow or silent, can hold a
 * worker longer than the caller allowed.
 */
#include "dnsq.h"

#include <arpa/nameser.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "dnsq_cache.h"
#include "metrics.h"
#include "netaddr.h"

#define QUERY_MAX 512        /* a query: header, name, question, OPT */
#define UDP_REPLY_MAX 4096

enum exchange { EX_ANSWER, EX_TRUNCATED, EX_FAILED };

/* Servers from /etc/resolv.conf, read once, when dns.servers is empty. */
static struct netaddr system_servers[4];
static size_t nsystem_servers;
static pthread_once_t system_once = PTHREAD_ONCE_INIT;

static long long now_ms(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Wait for events on fd until deadline: >0 ready, 0 timed out, <0 error. */
static int wait_fd(int fd, short events, long long deadline)
{
    struct pollfd p = {.fd = fd, .events = events};

    for (;;) {
        long long left = deadline - now_ms();
        int rc;

        if (left <= 0)
            return 0;
        rc = poll(&p, 1, left > 60000 ? 60000 : (int)left);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc > 0 && (p.revents & (POLLERR | POLLNVAL)) &&
            !(p.revents & events))
            return -1;
        if (rc != 0)
            return rc;
    }
}

static int open_to(const struct netaddr *srv, int type)
{
    int fd = socket(srv->ss.ss_family, type | SOCK_CLOEXEC | SOCK_NONBLOCK,
                    0);

    if (fd < 0)
        return -1;
    if (connect(fd, (const struct sockaddr *)&srv->ss, srv->len) != 0 &&
        errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

/*
 * One UDP exchange. Replies that do not answer our query (wrong ID or
 * question: late or forged) are ignored and the wait goes on.
 */
static enum exchange udp_exchange(const struct netaddr *srv,
                                  const unsigned char *q, size_t qlen,
                                  uint16_t id, const char *name, int type,
                                  long long deadline, struct dnsq_answer *out)
{
    unsigned char buf[UDP_REPLY_MAX];
    enum exchange ex = EX_FAILED;
    int fd = open_to(srv, SOCK_DGRAM);

    if (fd < 0)
        return EX_FAILED;
    if (send(fd, q, qlen, 0) != (ssize_t)qlen)
        goto done;
    while (wait_fd(fd, POLLIN, deadline) > 0) {
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        int rc;

        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (n < 0)
            break; /* ECONNREFUSED: nobody listens there */
        rc = dnsq_parse(buf, (size_t)n, id, name, type, out);
        if (rc >= 0) {
            ex = rc == 1 ? EX_TRUNCATED : EX_ANSWER;
            break;
        }
    }
done:
    close(fd);
    return ex;
}

static bool io_all(int fd, unsigned char *buf, size_t len, bool writing,
                   long long deadline)
{
    size_t o = 0;

    while (o < len) {
        ssize_t n = writing ? send(fd, buf + o, len - o, MSG_NOSIGNAL)
                            : recv(fd, buf + o, len - o, 0);
        if (n > 0) {
            o += (size_t)n;
            continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EINTR))
            return false;
        if (wait_fd(fd, writing ? POLLOUT : POLLIN, deadline) <= 0)
            return false;
    }
    return true;
}

/* RFC 7766: a 2-octet length, then the message, both ways. */
static enum exchange tcp_exchange(const struct netaddr *srv,
                                  const unsigned char *q, size_t qlen,
                                  uint16_t id, const char *name, int type,
                                  long long deadline, struct dnsq_answer *out)
{
    unsigned char head[2 + QUERY_MAX], *reply = NULL;
    enum exchange ex = EX_FAILED;
    int fd = open_to(srv, SOCK_STREAM), err = 0;
    socklen_t elen = sizeof(err);
    size_t rlen;

    if (fd < 0)
        return EX_FAILED;
    if (wait_fd(fd, POLLOUT, deadline) <= 0 ||
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0 || err)
        goto done;
    head[0] = (unsigned char)(qlen >> 8);
    head[1] = (unsigned char)qlen;
    memcpy(head + 2, q, qlen);
    if (!io_all(fd, head, qlen + 2, true, deadline) ||
        !io_all(fd, head, 2, false, deadline))
        goto done;
    rlen = (size_t)head[0] << 8 | head[1];
    if (!(reply = malloc(rlen ? rlen : 1)) ||
        !io_all(fd, reply, rlen, false, deadline))
        goto done;
    /* truncated even over TCP: no usable answer */
    if (dnsq_parse(reply, rlen, id, name, type, out) == 0)
        ex = EX_ANSWER;
    else
        dnsq_answer_free(out);
done:
    free(reply);
    close(fd);
    return ex;
}

static void read_resolv_conf(void)
{
    char line[256], ip[128];
    FILE *f = fopen("/etc/resolv.conf", "re");

    while (f && fgets(line, sizeof(line), f) &&
           nsystem_servers < sizeof(system_servers) / sizeof(*system_servers))
        if (sscanf(line, " nameserver %127s", ip) == 1 &&
            netaddr_from_ip(&system_servers[nsystem_servers], ip, 53) == 0)
            nsystem_servers++;
    if (f)
        fclose(f);
    if (nsystem_servers == 0 &&
        netaddr_from_ip(&system_servers[0], "127.0.0.1", 53) == 0)
        nsystem_servers = 1; /* what the C library assumes too */
}

static uint16_t random_id(void)
{
    uint16_t id;

    if (getrandom(&id, sizeof(id), GRND_NONBLOCK) != sizeof(id))
        id = (uint16_t)(now_ms() ^ (long long)pthread_self());
    return id;
}

/* "Example.COM." -> "example.com"; false when it is no valid name. */
static bool normalise(const char *name, char *out)
{
    size_t n = strlen(name);

    if (!dnsq_name_ok(name))
        return false;
    if (name[n - 1] == '.')
        n--;
    for (size_t i = 0; i < n; i++)
        out[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] - 'A' + 'a'
                                                         : name[i]);
    out[n] = '\0';
    return true;
}

static void count(long long started, const struct dnsq_answer *a, bool any)
{
    const char *what = !any                         ? "timeout"
                       : a->status == DNSQ_NXDOMAIN ? "nxdomain"
                       : a->status == DNSQ_TEMPFAIL ? "error"
                                                    : "ok";

    metric_dns_query((double)(now_ms() - started) / 1000.0, what);
}

/*
 * Servers in order; a server that fails (timeout, refused, SERVFAIL)
 * passes the turn to the next with an equal share of the time left.
 */
static void ask_servers(const struct netaddr *srv, size_t nsrv,
                        const char *name, int type, long long deadline,
                        struct dnsq_answer *out)
{
    unsigned char q[QUERY_MAX];
    uint16_t id = random_id();
    int qlen = dnsq_build(name, type, id, q, sizeof(q));
    long long started = now_ms();
    bool any = false;

    out->status = DNSQ_TEMPFAIL;
    for (size_t i = 0; qlen > 0 && i < nsrv; i++) {
        long long left = deadline - now_ms();
        long long until = now_ms() + left / (long long)(nsrv - i);
        enum exchange ex;

        if (left <= 0)
            break;
        dnsq_answer_free(out);
        ex = udp_exchange(&srv[i], q, (size_t)qlen, id, name, type, until,
                          out);
        if (ex == EX_TRUNCATED)
            ex = tcp_exchange(&srv[i], q, (size_t)qlen, id, name, type,
                              until, out);
        if (ex != EX_ANSWER) {
            out->status = DNSQ_TEMPFAIL;
            continue;
        }
        any = true;
        if (out->status != DNSQ_TEMPFAIL)
            break;
    }
    count(started, out, any);
}

enum dnsq_status dnsq_query(const struct dns_conf *conf, const char *name,
                            int type, unsigned timeout_ms,
                            struct dnsq_answer *out)
{
    char key[DNSQ_NAME_MAX];
    const struct netaddr *srv = conf->servers;
    size_t nsrv = conf->nservers;

    memset(out, 0, sizeof(*out));
    if (!normalise(name, key)) {
        out->status = DNSQ_NXDOMAIN; /* what a server would say */
        return out->status;
    }
    if (dnsq_cache_get(key, type, out))
        return out->status;
    if (nsrv == 0) {
        pthread_once(&system_once, read_resolv_conf);
        srv = system_servers;
        nsrv = nsystem_servers;
    }
    ask_servers(srv, nsrv, key, type, now_ms() + timeout_ms, out);
    if (out->status != DNSQ_TEMPFAIL)
        dnsq_cache_put(key, type, out);
    return out->status;
}
