/*
 * libFuzzer target for config_load(): the whole warden.yaml loader, with
 * the policy files (and their CIDR files) it names.
 *
 * The loader takes a path, so the input goes to one file per process, in
 * a private directory made at the first call (under $TMPDIR, else
 * /dev/shm, else /tmp) and removed at exit. That directory also holds a
 * few fixtures the seeds name with relative paths: good and bad policy
 * files, CIDR files, and a FIFO with no writer (a loader that opened it
 * would block). TLS files are not resolved against the config's
 * directory: seeds use /etc/passwd as a readable certificate and key.
 *
 * Beyond "no crash, no leak, no UB", it checks what `warden -t` and a
 * SIGHUP reload rely on:
 *   - a config comes back with no error, or NULL with at least one;
 *   - every error about this file is "<path>:<line>: reason" with a line
 *     between 1 and the file's last line (line breaks counted as libyaml
 *     counts them: LF, CR, CRLF, NEL, LS, PS), except the one kind the
 *     code means to have no line: "<path>: YAML syntax error: ... at byte
 *     N", a bad encoding found by libyaml's reader (N within the input);
 *   - errors about other files (policies, CIDR files) name their file;
 *   - a returned config holds what the loader promises to have checked
 *     (listener names and addresses, ranges, TLS and PROXY prerequisites,
 *     a policy, valid replies in it...).
 * Everything is freed, so LeakSanitizer sees any leak.
 *
 * Fuzzed paths only make the loader read (stat, access, open for reading):
 * nothing is written outside the private directory. Devices and FIFOs
 * named as policy or CIDR files are refused by the loader (they could
 * block or never end).
 *
 * contrib/fuzz.sh config   (libFuzzer + ASan + UBSan, corpus/config/)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "errors.h"
#include "policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#include "fuzzcheck.h"

#define CHECK_MSG(cond, msg)                                                   \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: check failed: %s\n  error: %s\n",          \
                    __FILE__, __LINE__, #cond, msg);                           \
            abort();                                                           \
        }                                                                      \
    } while (0)

/* ---- the private directory ---- */

static const struct fixture {
    const char *name;
    const char *text;
} fixtures[] = {
    {"policy.yaml", "access:\n"
                    "  - name: ok\n"
                    "    networks: [192.0.2.10]\n"
                    "    action: accept\n"
                    "  - networks_file: nets.cidr\n"
                    "    action: reject\n"
                    "    listeners: [smtp]\n"
                    "limits:\n"
                    "  - name: per-ip\n"
                    "    key: client_ip\n"
                    "    count: connections\n"
                    "    rate: 30/1m\n"
                    "    burst: 10\n"},
    {"limits.yaml", "limits:\n"
                    "  - name: per-user\n"
                    "    key: user\n"
                    "    count: messages\n"
                    "    rate: [100/1h, 500/1d]\n"
                    "    authenticated: true\n"},
    {"bad.yaml", "access:\n"
                 "  - networks: [192.0.2.1/24]\n"
                 "    action: block\n"},
    {"nets.cidr", "# test networks\n192.0.2.0/24\n2001:db8::/32\n\n"
                  "198.51.100.7  # one host\n"},
    {"bad.cidr", "192.0.2.0/24\n10.0.0.1/8\n"},
};

#include "fuzz_loader.h"

/* "123: " at s: the line, else 0. */
static unsigned long line_at(const char *s)
{
    unsigned long v = 0;
    const char *p = s;

    for (; *p >= '0' && *p <= '9' && p - s < 10; p++)
        v = v * 10 + (unsigned long)(*p - '0');
    return p > s && p[0] == ':' && p[1] == ' ' ? v : 0;
}

static void check_errors(const struct errors *e, const uint8_t *data,
                         size_t size)
{
    size_t last = last_line(data, size);
    char other[sizeof(path) + 1];
    /* A file named "<our name>:<digits>..." would look like ours. */
    bool ambiguous;

    snprintf(other, sizeof(other), "%s:", base);
    ambiguous = contains(data, size, other);
    for (size_t i = 0; i < e->n; i++) {
        const char *m = e->v[i];
        size_t plen = strlen(path);

        CHECK(m != NULL);
        if (starts_with(m, path) && m[plen] == ':' && !ambiguous) {
            const char *rest = m + plen + 1;
            unsigned long line = line_at(rest);

            if (line == 0) {
                /* the only message without a line: a bad encoding */
                const char *at = strstr(rest, " at byte ");
                CHECK_MSG(starts_with(rest, " YAML syntax error: ") && at,
                          m);
                CHECK_MSG(strtoull(at + 9, NULL, 10) <= size, m);
            } else {
                CHECK_MSG(line <= last, m);
            }
        } else {
            /* another file: "file: reason" or "file:line: reason" */
            const char *colon = strstr(m, ": ");
            CHECK_MSG(colon && colon > m, m);
        }
    }
}

/* ---- a loaded config keeps the loader's promises ---- */

static bool plain_name(const char *s, size_t max)
{
    size_t n = strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                         "0123456789_.-");
    return n > 0 && n == strlen(s) && n <= max;
}

static bool no_blanks(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s <= ' ' || *s == 0x7f)
            return false;
    return true;
}

static void check_addr(const struct netaddr *a, bool want_port)
{
    int fam = a->ss.ss_family;

    CHECK(fam == AF_INET || fam == AF_INET6);
    CHECK(!want_port || netaddr_port(a) > 0);
}

static void check_reply_text(int code, const char *enh, const char *text,
                             char cls)
{
    CHECK(code / 100 == cls - '0');
    CHECK(!enh[0] || enh[0] == cls);
    CHECK(text[0] && strlen(text) <= 399);
    for (const char *p = text; *p; p++)
        CHECK(*p == '\t' || (*p >= ' ' && *p <= '~'));
}

static void check_policy(const struct policy *p)
{
    CHECK(p != NULL);
    for (size_t i = 0; i < p->naccess; i++) {
        const struct access_rule *r = &p->access[i];
        CHECK(r->name[0] && no_blanks(r->name));
        if (r->action == ACCESS_REJECT)
            check_reply_text(r->code, r->enh, r->text, '5');
        else if (r->action == ACCESS_TEMPFAIL)
            check_reply_text(r->code, r->enh, r->text, '4');
        else
            CHECK(r->action == ACCESS_ACCEPT);
        CHECK(!r->listeners || r->nlisteners > 0);
    }
    for (size_t i = 0; i < p->nlimits; i++) {
        const struct limit_rule *r = &p->limits[i];
        CHECK(plain_name(r->name, sizeof(r->name) - 1));
        for (size_t j = 0; j < i; j++)
            CHECK(strcmp(p->limits[j].name, r->name) != 0);
        CHECK(r->keys != 0 && (r->keys & ~0x7fu) == 0);
        CHECK(r->nwindows >= 1 && r->nwindows <= LIMIT_MAX_WINDOWS);
        CHECK(strcmp(limit_count_name(r->count), "unknown") != 0);
    }
}

static void check_config(const struct config *c)
{
    CHECK(c->refs == 1);
    CHECK(c->path && strcmp(c->path, path) == 0);
    CHECK(c->hostname && c->hostname[0] && no_blanks(c->hostname));
    CHECK(c->nlisteners >= 1 && c->listeners);
    for (size_t i = 0; i < c->nlisteners; i++) {
        const struct listener_conf *l = &c->listeners[i];
        CHECK(plain_name(l->name, 31));
        check_addr(&l->addr, false);
        CHECK(l->tls == LISTENER_TLS_NONE ||
              (c->tls.certificate && c->tls.key));
        CHECK(!l->proxy_protocol || c->trusted_proxies.n > 0);
        for (size_t j = 0; j < i; j++)
            CHECK(strcmp(c->listeners[j].name, l->name) != 0);
    }
    CHECK(c->backend.naddrs >= 1 && c->backend.naddrs <= CONFIG_MAX_BACKENDS);
    for (size_t i = 0; i < c->backend.naddrs; i++)
        check_addr(&c->backend.addrs[i], true);
    CHECK(!c->backend.helo_name || no_blanks(c->backend.helo_name));
    CHECK(!c->backend.tls_server_name ||
          no_blanks(c->backend.tls_server_name));
    CHECK(!c->tls.certificate == !c->tls.key);
    CHECK(c->tls.min_version && (strcmp(c->tls.min_version, "TLSv1.2") == 0 ||
                                 strcmp(c->tls.min_version, "TLSv1.3") == 0));
    for (size_t i = 0; i < c->trusted_proxies.n; i++) {
        const struct cidr *n = &c->trusted_proxies.v[i];
        CHECK(n->family == AF_INET ? n->prefix <= 32
                                   : n->family == AF_INET6 && n->prefix <= 128);
    }
    CHECK(c->limits.max_connections >= 1 && c->limits.max_message_size >= 1);
    CHECK(c->limits.max_command_line >= 512 && c->limits.max_text_line >= 1000);
    CHECK(c->limits.max_auth_line >= 512 && c->limits.max_errors >= 1);
    CHECK(c->limits.max_pipeline >= 1 && c->limits.max_recipients >= 1);
    CHECK(c->timeouts.backend_connect && c->timeouts.backend_greeting &&
          c->timeouts.backend_reply && c->timeouts.command &&
          c->timeouts.data && c->timeouts.data_done &&
          c->timeouts.tls_handshake && c->timeouts.shutdown);
    CHECK(c->spool_dir && c->spool_dir[0]);
    CHECK(!c->control_socket || strcmp(c->control_socket, "none") != 0);
    CHECK(c->user && c->user[0]);
    CHECK(c->workers <= 64);
    CHECK(c->dns.nservers <= 4 && c->dns.timeout > 0);
    for (size_t i = 0; i < c->dns.nservers; i++)
        check_addr(&c->dns.servers[i], true);
    CHECK(c->store.redis_db <= 15 && c->store.timeout > 0);
    CHECK(c->store.node_ttl >= 3000);
    CHECK(c->store.key_prefix && c->store.key_prefix[0] &&
          strlen(c->store.key_prefix) <= 64 && no_blanks(c->store.key_prefix));
    check_addr(&c->store.redis, true);
    if (c->metrics_on)
        check_addr(&c->metrics_listen, true);
    for (size_t i = 0; i < c->npolicy_files; i++)
        CHECK(c->policy_files[i] && c->policy_files[i][0]);
    check_policy(c->policy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct errors errs = {0};
    struct config *cfg;

    if (!dir[0])
        setup("config", "cfg");
    write_all(path, data, size);

    cfg = config_load(path, &errs);
    CHECK(cfg ? errs.n == 0 : errs.n > 0);
    check_errors(&errs, data, size);
    if (cfg) {
        check_config(cfg);
        /* a second reference, as a session would take */
        CHECK(config_ref(cfg) == cfg);
        config_unref(cfg);
        config_unref(cfg);
    }
    errors_free(&errs);
    return 0;
}
