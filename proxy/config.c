/*
 * config: the embedded defaults and the YAML loader over them.
 *
 * config_load() starts from config_defaults() and lets the file override
 * what it names; it never stops at the first problem, so an admin sees
 * every mistake from one `warden -t`. Each top-level key has its own small
 * loader; values are checked where they are read, with the node's line.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#include "config.h"
#include "policy.h"
#include "yamldoc.h"

#define must yamldoc_must

/* struct listener_conf holds the name with its NUL in 32 bytes. */
#define LISTENER_NAME_MAX 31

struct unit {
    const char *suffix;
    uint64_t mult;
};

static int parse_scaled(const char *s, const struct unit *units, uint64_t max,
                        uint64_t *out);
static char *default_hostname(void);
static void config_free(struct config *c);

/* Section loaders, in the order they run (see load_document). */
static void load_scalars(const struct ymap *top, struct config *cfg);
static void load_trusted_proxies(const struct ymap *top, struct config *cfg);
static void load_tls(const struct ymap *top, struct config *cfg);
static void load_listen(const struct ymap *top, struct config *cfg);
static void load_backend(const struct ymap *top, struct config *cfg);
static void load_limits(const struct ymap *top, struct config *cfg);
static void load_timeouts(const struct ymap *top, struct config *cfg);
static void load_smtp(const struct ymap *top, struct config *cfg);
static void load_policies(const struct ymap *top, struct config *cfg);
static void load_log(const struct ymap *top, struct config *cfg);
static void load_dns(const struct ymap *top, struct config *cfg);
static void load_redis_endpoint(const struct ymap *m, const char *s,
                                struct store_conf *st);
static void load_store(const struct ymap *top, struct config *cfg);
static void load_metrics(const struct ymap *top, struct config *cfg);
static void load_milter(const struct ymap *top, struct config *cfg);

/* Helpers for values that need more than a type check. */
static bool load_listener(const struct ylist *l, size_t i,
                          const struct config *cfg, struct listener_conf *lc);
static void check_listener_dups(struct yamldoc *d,
                                const struct listener_conf *v, size_t n);
static bool valid_listener_name(const char *s);
static bool valid_host_name(const char *s);
static void load_host_name(const struct ymap *m, const char *key, char **out);
static void load_readable_file(const struct ymap *m, const char *key,
                               char **out);
static void load_addr_list(const struct ymap *m, const char *key,
                           int default_port, size_t min, size_t max,
                           struct netaddr *out, size_t *n);
static bool valid_key_prefix(const char *s);

/* ---- durations and sizes ---- */

/*
 * Digits, then a suffix from units ("" is the unit of a bare number).
 * Hand-rolled because strtoull() accepts " -5" and wraps it around.
 * Fails with errno EINVAL for junk and ERANGE above max.
 */
static int parse_scaled(const char *s, const struct unit *units, uint64_t max,
                        uint64_t *out)
{
    uint64_t n = 0;
    const char *p = s;
    const struct unit *u;

    if (*p < '0' || *p > '9') {
        errno = EINVAL;
        return -1;
    }
    for (; *p >= '0' && *p <= '9'; p++) {
        if (n > (UINT64_MAX - 9) / 10) {
            errno = ERANGE;
            return -1;
        }
        n = n * 10 + (uint64_t)(*p - '0');
    }
    for (u = units; u->suffix && strcmp(u->suffix, p) != 0; u++)
        ;
    if (!u->suffix) {
        errno = EINVAL;
        return -1;
    }
    if (n > max / u->mult) {
        errno = ERANGE;
        return -1;
    }
    *out = n * u->mult;
    return 0;
}

int config_parse_duration(const char *s, unsigned *ms)
{
    static const struct unit units[] = {
        {"", 1000},     {"ms", 1},       {"s", 1000}, {"m", 60000},
        {"h", 3600000}, {"d", 86400000}, {NULL, 0},
    };
    uint64_t v;

    if (parse_scaled(s, units, UINT_MAX, &v) != 0)
        return -1;
    *ms = (unsigned)v;
    return 0;
}

/* Binary multiples: "1m" is 1048576 bytes, as in Postfix and nginx. */
int config_parse_size(const char *s, size_t *bytes)
{
    static const struct unit units[] = {
        {"", 1},        {"k", 1 << 10}, {"K", 1 << 10}, {"m", 1 << 20},
        {"M", 1 << 20}, {"g", 1 << 30}, {"G", 1 << 30}, {NULL, 0},
    };
    uint64_t v;

    if (parse_scaled(s, units, SIZE_MAX, &v) != 0)
        return -1;
    *bytes = (size_t)v;
    return 0;
}

/* ---- defaults, references ---- */

static char *default_hostname(void)
{
    char buf[256] = "";

    if (gethostname(buf, sizeof(buf) - 1) != 0 || !buf[0])
        snprintf(buf, sizeof(buf), "localhost");
    return must(strdup(buf));
}

struct config *config_defaults(void)
{
    struct config *c = must(calloc(1, sizeof(*c)));
    const char *tmp = getenv("TMPDIR");

    c->refs = 1;
    c->hostname = default_hostname();
    c->listeners = must(calloc(1, sizeof(*c->listeners)));
    c->nlisteners = 1;
    snprintf(c->listeners[0].name, sizeof(c->listeners[0].name), "smtp");
    netaddr_from_ip(&c->listeners[0].addr, "127.0.0.1", 2525);
    c->listeners[0].tls = LISTENER_TLS_NONE;

    netaddr_from_ip(&c->backend.addrs[0], "127.0.0.1", 10025);
    c->backend.naddrs = 1;
    c->backend.identity = IDENTITY_XCLIENT;
    c->backend.tls = BACKEND_TLS_NONE;
    c->backend.on_unavailable = BACKEND_DOWN_CLOSE;

    c->tls.min_version = must(strdup("TLSv1.2"));

    c->limits = (struct limits_conf){
        .max_connections = 1000,
        .max_message_size = 10240000,
        .max_command_line = 512,
        .max_text_line = 1000,
        .max_auth_line = 12288,
        .max_errors = 10,
        .max_pipeline = 100,
        .max_recipients = 1000,
        .recipient_overshoot = 1000,
        .spool_memory = 1 << 20,
    };
    c->timeouts = (struct timeouts_conf){
        .backend_connect = 30 * 1000,
        .backend_greeting = 5 * 60 * 1000,
        .backend_reply = 5 * 60 * 1000,
        .command = 5 * 60 * 1000,
        .data = 3 * 60 * 1000,
        .data_done = 10 * 60 * 1000,
        .tls_handshake = 60 * 1000,
        .shutdown = 30 * 1000,
    };
    c->bare_newline = BARE_NEWLINE_REJECT;
    c->auth_requires_tls = true;
    c->spool_dir = must(strdup(tmp && *tmp ? tmp : "/var/tmp"));
    c->control_socket = must(strdup("/run/warden/control.sock"));
    c->user = must(strdup("warden"));
    snprintf(c->milter_name, sizeof(c->milter_name), "milter");
    c->log = (struct log_conf){LOG_TARGET_STDERR, LOG_INFO, LOG_MAIL};
    c->dns.resolve_client = true;
    c->dns.timeout = 5 * 1000;
    c->store.type = STORE_MEMORY;
    netaddr_from_ip(&c->store.redis, "127.0.0.1", 6379);
    c->store.redis_db = 0;
    c->store.timeout = 250;
    c->store.on_failure = STORE_FAIL_OPEN;
    c->store.key_prefix = must(strdup("warden:"));
    c->store.node_ttl = 60 * 1000;
    return c;
}

/* Atomic: sessions on several event-loop threads share one snapshot. */
struct config *config_ref(struct config *c)
{
    __atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED);
    return c;
}

void config_unref(struct config *c)
{
    if (!c || __atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    config_free(c);
}

static void config_free(struct config *c)
{
    free(c->path);
    free(c->hostname);
    free(c->listeners);
    free(c->backend.tls_ca_file);
    free(c->backend.tls_server_name);
    free(c->backend.helo_name);
    cidr_list_free(&c->trusted_proxies);
    free(c->tls.certificate);
    free(c->tls.key);
    free(c->tls.ciphers);
    free(c->tls.min_version);
    free(c->spool_dir);
    free(c->control_socket);
    free(c->user);
    free(c->milter_socket);
    yamldoc_strv_free(c->policy_files, c->npolicy_files);
    policy_free(c->policy);
    free(c->store.redis_password);
    free(c->store.redis_socket);
    free(c->store.key_prefix);
    free(c);
}

/* ---- loading ---- */

/*
 * trusted_proxies and tls run before listen: a listener's proxy_protocol
 * and tls settings are checked against them, wherever they are in the file.
 */
static void (*const sections[])(const struct ymap *, struct config *) = {
    load_scalars, load_trusted_proxies, load_tls,  load_listen,   load_backend,
    load_limits,  load_timeouts,        load_smtp, load_policies, load_log,
    load_dns,     load_store,   load_metrics,  load_milter,
};

static const char *const top_keys[] = {
    "hostname", "listen",   "backend", "trusted_proxies", "tls",
    "limits",   "timeouts", "smtp",    "spool_dir",       "policies",
    "log",      "dns",      "workers", "store",           "control_socket",
    "user",     "metrics",  "milter",  NULL,
};

static void load_document(struct yamldoc *d, struct config *cfg)
{
    struct ymap top;

    if (!ymap_open(&top, d, yamldoc_root(d), "", top_keys))
        return;
    for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++)
        sections[i](&top, cfg);
    /* a milter alone needs no SMTP listener */
    if (cfg->nlisteners == 0 && !cfg->milter_socket)
        ymap_error(&top, ymap_get(&top, "listen"), "listen",
                   "at least one listener is required (or a milter)");
}

struct config *config_load(const char *path, struct errors *errs)
{
    struct config *cfg = config_defaults();
    size_t before = errs->n;
    struct yamldoc d;

    cfg->path = must(strdup(path));
    if (yamldoc_load(&d, path, errs) == 0)
        load_document(&d, cfg);
    yamldoc_free(&d);
    /* Policies load even after config errors: report their errors too. */
    cfg->policy = policy_load(cfg->policy_files, cfg->npolicy_files, errs);
    if (errs->n != before || !cfg->policy) {
        config_unref(cfg);
        return NULL;
    }
    return cfg;
}

/* ---- top-level scalars ---- */

static void load_scalars(const struct ymap *top, struct config *cfg)
{
    struct stat st;

    load_host_name(top, "hostname", &cfg->hostname);
    ymap_uint(top, "workers", 0, 64, &cfg->workers);
    if (ymap_str(top, "user", &cfg->user) > 0 &&
        strspn(cfg->user, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                          "0123456789_.-") != strlen(cfg->user))
        ymap_error(top, ymap_get(top, "user"), "user",
                   "\"%s\" is not an account name", cfg->user);
    if (ymap_str(top, "control_socket", &cfg->control_socket) > 0 &&
        strcmp(cfg->control_socket, "none") == 0) {
        free(cfg->control_socket); /* "none": no admin socket */
        cfg->control_socket = NULL;
    }
    if (ymap_str(top, "spool_dir", &cfg->spool_dir) <= 0)
        return;
    if (stat(cfg->spool_dir, &st) != 0)
        ymap_error(top, ymap_get(top, "spool_dir"), "spool_dir",
                   "cannot access \"%s\": %s", cfg->spool_dir, strerror(errno));
    else if (!S_ISDIR(st.st_mode))
        ymap_error(top, ymap_get(top, "spool_dir"), "spool_dir",
                   "\"%s\" is not a directory", cfg->spool_dir);
}

/* A name that goes into SMTP replies and commands: no blanks, no controls. */
static bool valid_host_name(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s <= ' ' || *s == 0x7f)
            return false;
    return true;
}

static void load_host_name(const struct ymap *m, const char *key, char **out)
{
    char *v = NULL;

    if (ymap_str(m, key, &v) <= 0)
        return;
    if (!valid_host_name(v)) {
        ymap_error(m, ymap_get(m, key), key, "\"%s\" is not a valid host name",
                   v);
        free(v);
        return;
    }
    free(*out);
    *out = v;
}

/* Check now that the file is readable, not at the first TLS handshake. */
static void load_readable_file(const struct ymap *m, const char *key,
                               char **out)
{
    if (ymap_str(m, key, out) <= 0)
        return;
    if (access(*out, R_OK) != 0)
        ymap_error(m, ymap_get(m, key), key, "cannot read \"%s\": %s", *out,
                   strerror(errno));
}

/* ---- listeners ---- */

static void load_listen(const struct ymap *top, struct config *cfg)
{
    struct listener_conf *v;
    struct ylist l;
    bool ok = true;

    if (ymap_list(top, "listen", &l) <= 0)
        return;
    v = must(calloc(l.n ? l.n : 1, sizeof(*v)));
    for (size_t i = 0; i < l.n; i++)
        ok &= load_listener(&l, i, cfg, &v[i]);
    if (ok)
        check_listener_dups(l.d, v, l.n);
    free(cfg->listeners);
    cfg->listeners = v;
    cfg->nlisteners = l.n;
}

/* Names appear in log lines and policy scopes: keep them plain. */
static bool valid_listener_name(const char *s)
{
    size_t n = strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                         "0123456789_.-");
    return n > 0 && n == strlen(s) && n <= LISTENER_NAME_MAX;
}

static bool load_listener(const struct ylist *l, size_t i,
                          const struct config *cfg, struct listener_conf *lc)
{
    static const char *const keys[] = {"name", "address", "tls",
                                       "proxy_protocol", NULL};
    static const struct yamldoc_enum tls_modes[] = {
        {"none", LISTENER_TLS_NONE},
        {"starttls", LISTENER_TLS_STARTTLS},
        {"implicit", LISTENER_TLS_IMPLICIT},
        {NULL, 0},
    };
    yaml_node_t *item = ylist_at(l, i);
    char name[32], err[128], *s = NULL;
    struct ymap m;
    int tls = LISTENER_TLS_NONE;
    size_t before = l->d->errs->n;

    lc->line = yamldoc_line(item);
    if (i == 0)
        snprintf(lc->name, sizeof(lc->name), "smtp");
    else
        snprintf(lc->name, sizeof(lc->name), "listen%zu", i + 1);
    snprintf(name, sizeof(name), "listen[%zu]", i);
    if (!ymap_open(&m, l->d, item, name, keys))
        return false;

    if (ymap_str(&m, "name", &s) > 0) {
        if (valid_listener_name(s))
            snprintf(lc->name, sizeof(lc->name), "%s", s);
        else
            ymap_error(&m, ymap_get(&m, "name"), "name",
                       "\"%s\": use 1-31 of A-Z a-z 0-9 _ . -", s);
    }
    free(s);
    s = NULL;
    if (!ymap_get(&m, "address"))
        ymap_error(&m, item, NULL, "address is required");
    else if (ymap_str(&m, "address", &s) > 0 &&
             netaddr_parse(s, -1, &lc->addr, err, sizeof(err)) != 0)
        ymap_error(&m, ymap_get(&m, "address"), "address", "%s", err);
    free(s);

    if (ymap_enum(&m, "tls", tls_modes, &tls) > 0)
        lc->tls = (enum listener_tls)tls;
    ymap_bool(&m, "proxy_protocol", &lc->proxy_protocol);
    if (lc->tls != LISTENER_TLS_NONE && !(cfg->tls.certificate && cfg->tls.key))
        ymap_error(&m, ymap_get(&m, "tls"), "tls",
                   "%s needs tls.certificate and tls.key",
                   lc->tls == LISTENER_TLS_STARTTLS ? "starttls" : "implicit");
    if (lc->proxy_protocol && cfg->trusted_proxies.n == 0)
        ymap_error(&m, ymap_get(&m, "proxy_protocol"), "proxy_protocol",
                   "needs trusted_proxies (who may send the header)");
    return l->d->errs->n == before;
}

/*
 * Two listeners with one name confuse logs and policy scopes. Each
 * listener is reported once per kind, against the first one it repeats:
 * reporting every pair made n aliases of one listener ("- *l") n*n
 * errors (1700 of them in 12 KB: 2.9 million lines).
 */
static void check_listener_dups(struct yamldoc *d,
                                const struct listener_conf *v, size_t n)
{
    char a[NETADDR_STRLEN], b[NETADDR_STRLEN];

    for (size_t i = 1; i < n; i++) {
        bool name_dup = false, addr_dup = false;

        netaddr_str(&v[i].addr, a, sizeof(a));
        for (size_t j = 0; j < i && !(name_dup && addr_dup); j++) {
            if (!name_dup && strcmp(v[i].name, v[j].name) == 0) {
                errors_add(d->errs, d->file, v[i].line,
                           "listen[%zu]: duplicate listener name \"%s\" "
                           "(also at line %u)",
                           i, v[i].name, v[j].line);
                name_dup = true;
            }
            if (addr_dup)
                continue;
            netaddr_str(&v[j].addr, b, sizeof(b));
            if (strcmp(a, b) == 0) {
                errors_add(d->errs, d->file, v[i].line,
                           "listen[%zu]: duplicate address %s (also at "
                           "line %u)",
                           i, a, v[j].line);
                addr_dup = true;
            }
        }
    }
}

/* ---- backend ---- */

/*
 * A string or a list of "host:port" strings, min to max of them (max at
 * most CONFIG_MAX_BACKENDS). out and *n change only when all are valid.
 */
static void load_addr_list(const struct ymap *m, const char *key,
                           int default_port, size_t min, size_t max,
                           struct netaddr *out, size_t *n)
{
    struct netaddr tmp[CONFIG_MAX_BACKENDS];
    struct ylist l;
    char err[128];
    bool ok = true;

    if (ymap_list(m, key, &l) <= 0)
        return;
    if (l.n < min || l.n > max) {
        ymap_error(m, ymap_get(m, key), key, "expected %zu to %zu addresses",
                   min, max);
        return;
    }
    for (size_t i = 0; i < l.n; i++) {
        const char *s = ylist_str(&l, i);
        if (!s) {
            ok = false;
        } else if (netaddr_parse(s, default_port, &tmp[i], err, sizeof(err)) !=
                   0) {
            yamldoc_error(m->d, ylist_at(&l, i), "%s: %s", l.name, err);
            ok = false;
        }
    }
    if (!ok)
        return;
    memcpy(out, tmp, l.n * sizeof(*tmp));
    *n = l.n;
}

static void load_backend(const struct ymap *top, struct config *cfg)
{
    static const char *const keys[] = {
        "address",    "client_identity", "starttls",
        "tls_verify", "tls_ca_file",     "tls_server_name",
        "helo_name",  "on_unavailable",  NULL,
    };
    static const struct yamldoc_enum identities[] = {
        {"xclient", IDENTITY_XCLIENT},
        {"proxy-v1", IDENTITY_PROXY_V1},
        {"proxy-v2", IDENTITY_PROXY_V2},
        {"none", IDENTITY_NONE},
        {NULL, 0},
    };
    static const struct yamldoc_enum tls_modes[] = {
        {"none", BACKEND_TLS_NONE},
        {"may", BACKEND_TLS_MAY},
        {"require", BACKEND_TLS_REQUIRE},
        {NULL, 0},
    };
    static const struct yamldoc_enum down[] = {
        {"close", BACKEND_DOWN_CLOSE},
        {"defer", BACKEND_DOWN_DEFER},
        {NULL, 0},
    };
    struct backend_conf *b = &cfg->backend;
    struct ymap m;
    int v;

    if (!ymap_sub(top, "backend", keys, &m))
        return;
    load_addr_list(&m, "address", -1, 1, CONFIG_MAX_BACKENDS, b->addrs,
                   &b->naddrs);
    if (ymap_enum(&m, "client_identity", identities, &v) > 0)
        b->identity = (enum client_identity)v;
    if (ymap_enum(&m, "starttls", tls_modes, &v) > 0)
        b->tls = (enum backend_tls)v;
    if (ymap_enum(&m, "on_unavailable", down, &v) > 0)
        b->on_unavailable = (enum backend_unavailable)v;
    ymap_bool(&m, "tls_verify", &b->tls_verify);
    load_readable_file(&m, "tls_ca_file", &b->tls_ca_file);
    load_host_name(&m, "tls_server_name", &b->tls_server_name);
    load_host_name(&m, "helo_name", &b->helo_name);
}

/* ---- trusted proxies and TLS ---- */

static void load_trusted_proxies(const struct ymap *top, struct config *cfg)
{
    struct ylist l;
    struct cidr c;
    char err[160];

    if (ymap_list(top, "trusted_proxies", &l) <= 0)
        return;
    for (size_t i = 0; i < l.n; i++) {
        const char *s = ylist_str(&l, i);
        if (!s)
            continue;
        if (cidr_parse(s, &c, err, sizeof(err)) != 0)
            yamldoc_error(l.d, ylist_at(&l, i), "%s: %s", l.name, err);
        else if (cidr_list_add(&cfg->trusted_proxies, &c) != 0)
            must(NULL);
    }
}

static void load_tls(const struct ymap *top, struct config *cfg)
{
    static const char *const keys[] = {"certificate", "key", "ciphers",
                                       "min_version", NULL};
    static const struct yamldoc_enum versions[] = {
        {"TLSv1.2", 12},
        {"TLSv1.3", 13},
        {NULL, 0},
    };
    struct tls_conf *t = &cfg->tls;
    struct ymap m;
    int v;

    if (!ymap_sub(top, "tls", keys, &m))
        return;
    load_readable_file(&m, "certificate", &t->certificate);
    load_readable_file(&m, "key", &t->key);
    ymap_str(&m, "ciphers", &t->ciphers);
    if (ymap_enum(&m, "min_version", versions, &v) > 0) {
        free(t->min_version);
        t->min_version = must(strdup(v == 13 ? "TLSv1.3" : "TLSv1.2"));
    }
    if (ymap_get(&m, "certificate") && !ymap_get(&m, "key"))
        ymap_error(&m, ymap_get(&m, "certificate"), NULL,
                   "key is required when certificate is given");
    if (ymap_get(&m, "key") && !ymap_get(&m, "certificate"))
        ymap_error(&m, ymap_get(&m, "key"), NULL,
                   "certificate is required when key is given");
}

/* ---- limits, timeouts, smtp ---- */

static void load_limits(const struct ymap *top, struct config *cfg)
{
    static const char *const keys[] = {
        "max_connections",  "max_message_size",
        "max_command_line", "max_text_line",
        "max_auth_line",    "max_errors",
        "max_pipeline",     "max_recipients",
        "recipient_overshoot", "spool_memory", NULL,
    };
    struct limits_conf *lim = &cfg->limits;
    struct ymap m;

    if (!ymap_sub(top, "limits", keys, &m))
        return;
    ymap_uint(&m, "max_connections", 1, UINT_MAX, &lim->max_connections);
    ymap_size(&m, "max_message_size", 1, &lim->max_message_size);
    /* RFC 5321 4.5.3.1: the smallest lengths a server must accept. */
    ymap_size(&m, "max_command_line", 512, &lim->max_command_line);
    ymap_size(&m, "max_text_line", 1000, &lim->max_text_line);
    ymap_size(&m, "max_auth_line", 512, &lim->max_auth_line);
    ymap_uint(&m, "max_errors", 1, UINT_MAX, &lim->max_errors);
    ymap_uint(&m, "max_pipeline", 1, UINT_MAX, &lim->max_pipeline);
    ymap_uint(&m, "max_recipients", 1, UINT_MAX, &lim->max_recipients);
    ymap_uint(&m, "recipient_overshoot", 0, UINT_MAX,
              &lim->recipient_overshoot);
    ymap_size(&m, "spool_memory", 0, &lim->spool_memory);
}

static void load_timeouts(const struct ymap *top, struct config *cfg)
{
    static const char *const keys[] = {
        "backend_connect",
        "backend_greeting",
        "backend_reply",
        "command",
        "data",
        "data_done",
        "tls_handshake",
        "shutdown",
        NULL,
    };
    struct timeouts_conf *t = &cfg->timeouts;
    struct ymap m;

    if (!ymap_sub(top, "timeouts", keys, &m))
        return;
    ymap_duration(&m, "backend_connect", 1, &t->backend_connect);
    ymap_duration(&m, "backend_greeting", 1, &t->backend_greeting);
    ymap_duration(&m, "backend_reply", 1, &t->backend_reply);
    ymap_duration(&m, "command", 1, &t->command);
    ymap_duration(&m, "data", 1, &t->data);
    ymap_duration(&m, "data_done", 1, &t->data_done);
    ymap_duration(&m, "tls_handshake", 1, &t->tls_handshake);
    ymap_duration(&m, "shutdown", 1, &t->shutdown);
}

static void load_smtp(const struct ymap *top, struct config *cfg)
{
    static const char *const keys[] = {"bare_newline", "auth_requires_tls",
                                       NULL};
    static const struct yamldoc_enum bare[] = {
        {"reject", BARE_NEWLINE_REJECT},
        {"normalize", BARE_NEWLINE_NORMALIZE},
        {NULL, 0},
    };
    struct ymap m;
    int v;

    if (!ymap_sub(top, "smtp", keys, &m))
        return;
    if (ymap_enum(&m, "bare_newline", bare, &v) > 0)
        cfg->bare_newline = (enum bare_newline)v;
    ymap_bool(&m, "auth_requires_tls", &cfg->auth_requires_tls);
}

/* ---- policies, log, dns ---- */

/*
 * Stored resolved, so the policy loader needs no idea of where we were.
 * A device, FIFO or socket is refused here, at its line, and left out of
 * the list: reading a FIFO blocks `warden -t` and a reload forever, and a
 * device like /dev/zero never ends (a missing file or a directory is
 * reported by the policy loader, which cannot open it).
 */
static void load_policies(const struct ymap *top, struct config *cfg)
{
    struct ylist l;
    struct stat st;
    char **files;
    size_t n, kept = 0;

    if (ymap_strlist(top, "policies", &files, &n) <= 0)
        return;
    ymap_list(top, "policies", &l); /* for the lines: same list, valid */
    for (size_t i = 0; i < n; i++) {
        char *abs = yamldoc_path(top->d, files[i]);
        free(files[i]);
        if (stat(abs, &st) == 0 && !S_ISREG(st.st_mode) &&
            !S_ISDIR(st.st_mode)) {
            yamldoc_error(top->d, ylist_at(&l, i),
                          "policies: \"%s\" is not a regular file", abs);
            free(abs);
            continue;
        }
        files[kept++] = abs;
    }
    n = kept;
    yamldoc_strv_free(cfg->policy_files, cfg->npolicy_files);
    cfg->policy_files = files;
    cfg->npolicy_files = n;
}

static void load_log(const struct ymap *top, struct config *cfg)
{
    static const char *const keys[] = {"target", "level", "facility", NULL};
    static const struct yamldoc_enum targets[] = {
        {"stderr", LOG_TARGET_STDERR},
        {"syslog", LOG_TARGET_SYSLOG},
        {NULL, 0},
    };
    static const struct yamldoc_enum levels[] = {
        {"error", LOG_ERR}, {"warning", LOG_WARNING}, {"notice", LOG_NOTICE},
        {"info", LOG_INFO}, {"debug", LOG_DEBUG},     {NULL, 0},
    };
    static const struct yamldoc_enum facilities[] = {
        {"mail", LOG_MAIL},
        {"daemon", LOG_DAEMON},
        {"local0", LOG_LOCAL0},
        {"local1", LOG_LOCAL1},
        {"local2", LOG_LOCAL2},
        {"local3", LOG_LOCAL3},
        {"local4", LOG_LOCAL4},
        {"local5", LOG_LOCAL5},
        {"local6", LOG_LOCAL6},
        {"local7", LOG_LOCAL7},
        {NULL, 0},
    };
    struct ymap m;
    int v;

    if (!ymap_sub(top, "log", keys, &m))
        return;
    if (ymap_enum(&m, "target", targets, &v) > 0)
        cfg->log.target = (enum log_target)v;
    ymap_enum(&m, "level", levels, &cfg->log.level);
    ymap_enum(&m, "facility", facilities, &cfg->log.facility);
}

static void load_dns(const struct ymap *top, struct config *cfg)
{
    static const char *const keys[] = {"resolve_client", "servers", "timeout",
                                       NULL};
    struct dns_conf *dns = &cfg->dns;
    struct ymap m;

    if (!ymap_sub(top, "dns", keys, &m))
        return;
    ymap_bool(&m, "resolve_client", &dns->resolve_client);
    load_addr_list(&m, "servers", 53, 0,
                   sizeof(dns->servers) / sizeof(dns->servers[0]), dns->servers,
                   &dns->nservers);
    ymap_duration(&m, "timeout", 1, &dns->timeout);
}

/* ---- metrics ---- */

/* metrics: {listen: "127.0.0.1:9425"}; absent or listen: none: no endpoint */
static void load_metrics(const struct ymap *top, struct config *cfg)
{
    static const char *const keys[] = {"listen", NULL};
    struct ymap m;
    char *addr = NULL, err[128];

    if (!ymap_sub(top, "metrics", keys, &m))
        return;
    if (ymap_str(&m, "listen", &addr) > 0 && strcmp(addr, "none") != 0) {
        if (netaddr_parse(addr, -1, &cfg->metrics_listen, err,
                          sizeof(err)) != 0)
            ymap_error(&m, ymap_get(&m, "listen"), "listen", "%s", err);
        else
            cfg->metrics_on = true;
    }
    free(addr);
}

/* ---- milter ---- */

/* "inet:PORT@HOST", "inet6:PORT@HOST", "unix:/path" or "local:/path", as
 * libmilter and Postfix's smtpd_milters spell them (HOST an address). */
static bool milter_socket_ok(const char *s, char *err, size_t len)
{
    const char *p = strchr(s, ':');
    char *end;
    long port;
    unsigned char buf[sizeof(struct in6_addr)];

    if (!p) {
        snprintf(err, len, "\"%s\": use inet:PORT@ADDRESS or unix:/path", s);
        return false;
    }
    if (strncmp(s, "unix:", 5) == 0 || strncmp(s, "local:", 6) == 0) {
        if (p[1] != '/' || strlen(p + 1) >= 108) {
            snprintf(err, len, "\"%s\": the path must be absolute and "
                     "shorter than 108 bytes", s);
            return false;
        }
        return true;
    }
    if (strncmp(s, "inet:", 5) != 0 && strncmp(s, "inet6:", 6) != 0) {
        snprintf(err, len, "\"%s\": use inet:PORT@ADDRESS or unix:/path", s);
        return false;
    }
    port = strtol(p + 1, &end, 10);
    if (end == p + 1 || port < 1 || port > 65535 || *end != '@') {
        snprintf(err, len, "\"%s\": the port must be 1-65535, then @ADDRESS",
                 s);
        return false;
    }
    if (inet_pton(s[4] == '6' ? AF_INET6 : AF_INET, end + 1, buf) != 1) {
        snprintf(err, len, "\"%s\": \"%s\" is not an IPv%c address", s,
                 end + 1, s[4] == '6' ? '6' : '4');
        return false;
    }
    return true;
}

/* milter: {listen: "inet:8891@127.0.0.1", name: milter} */
static void load_milter(const struct ymap *top, struct config *cfg)
{
    static const char *const keys[] = {"listen", "name", NULL};
    struct ymap m;
    char *s = NULL, err[200];

    if (!ymap_sub(top, "milter", keys, &m))
        return;
    if (ymap_str(&m, "listen", &s) > 0 && strcmp(s, "none") != 0) {
        if (milter_socket_ok(s, err, sizeof(err)))
            cfg->milter_socket = must(strdup(s));
        else
            ymap_error(&m, ymap_get(&m, "listen"), "listen", "%s", err);
    }
    free(s);
    s = NULL;
    if (ymap_str(&m, "name", &s) > 0) {
        if (valid_listener_name(s))
            snprintf(cfg->milter_name, sizeof(cfg->milter_name), "%s", s);
        else
            ymap_error(&m, ymap_get(&m, "name"), "name",
                       "\"%s\": use 1-31 of A-Z a-z 0-9 _ . -", s);
    }
    free(s);
}

/* ---- store ---- */

/*
 * "host:port" (an IP address; port 6379 when left out) or "unix:/path" for
 * a Redis on the same host: its Unix socket spares both processes the TCP
 * stack on every call.
 */
static void load_redis_endpoint(const struct ymap *m, const char *s,
                                struct store_conf *st)
{
    struct sockaddr_un sun;
    char err[128];

    if (s[0] == '/') {
        ymap_error(m, ymap_get(m, "redis"), "redis",
                   "\"%s\": write unix:%s for a Unix socket", s, s);
        return;
    }
    if (strncmp(s, "unix:", 5) != 0) {
        if (netaddr_parse(s, 6379, &st->redis, err, sizeof(err)) != 0)
            ymap_error(m, ymap_get(m, "redis"), "redis", "%s", err);
        return;
    }
    s += 5;
    if (s[0] != '/' || strlen(s) >= sizeof(sun.sun_path)) {
        ymap_error(m, ymap_get(m, "redis"), "redis",
                   "\"unix:%s\": use unix: and an absolute path of at most "
                   "%zu bytes",
                   s, sizeof(sun.sun_path) - 1);
        return;
    }
    free(st->redis_socket);
    st->redis_socket = strdup(s);
    if (!st->redis_socket)
        ymap_error(m, ymap_get(m, "redis"), "redis", "out of memory");
}

/*
 * The redis settings are read (and checked) with type: memory too, so the
 * example file can show them all; only type: redis uses them.
 */
static void load_store(const struct ymap *top, struct config *cfg)
{
    static const char *const keys[] = {
        "type",       "redis",      "redis_password", "redis_db", "timeout",
        "on_failure", "key_prefix", "node_ttl",       NULL,
    };
    static const struct yamldoc_enum types[] = {
        {"memory", STORE_MEMORY},
        {"redis", STORE_REDIS},
        {NULL, 0},
    };
    static const struct yamldoc_enum failures[] = {
        {"accept", STORE_FAIL_OPEN},
        {"tempfail", STORE_FAIL_CLOSED},
        {NULL, 0},
    };
    struct store_conf *st = &cfg->store;
    char *s = NULL;
    struct ymap m;
    int v;

    if (!ymap_sub(top, "store", keys, &m))
        return;
    if (ymap_enum(&m, "type", types, &v) > 0)
        st->type = (enum store_type)v;
    if (ymap_str(&m, "redis", &s) > 0)
        load_redis_endpoint(&m, s, st);
    free(s);
    s = NULL;
    ymap_str(&m, "redis_password", &st->redis_password);
    ymap_uint(&m, "redis_db", 0, 15, &st->redis_db);
    ymap_duration(&m, "timeout", 1, &st->timeout);
    if (ymap_enum(&m, "on_failure", failures, &v) > 0)
        st->on_failure = (enum store_failure)v;
    if (ymap_str(&m, "key_prefix", &s) > 0) {
        if (valid_key_prefix(s)) {
            free(st->key_prefix);
            st->key_prefix = s;
            s = NULL;
        } else {
            ymap_error(&m, ymap_get(&m, "key_prefix"), "key_prefix",
                       "\"%s\": use 1-64 printable characters without blanks",
                       s);
        }
    }
    free(s);
    /* A dead node's connections stop counting after node_ttl; much less
     * and a short store stall would drop live nodes' connections too. */
    ymap_duration(&m, "node_ttl", 3000, &st->node_ttl);
}

/* Store keys are binary-safe, but admins read them in redis-cli. */
static bool valid_key_prefix(const char *s)
{
    size_t n = strlen(s);

    for (; *s; s++)
        if ((unsigned char)*s <= ' ' || (unsigned char)*s >= 0x7f)
            return false;
    return n >= 1 && n <= 64;
}
