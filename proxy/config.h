/*
 * config: the daemon's configuration, loaded from YAML.
 *
 * A loaded config is an immutable, reference-counted snapshot. Sessions take
 * a reference when they start and keep it until they end, so a SIGHUP reload
 * swaps the global pointer without touching sessions in flight. The loader
 * reports every error as "file:line: reason" (unknown keys included) and
 * returns NULL when there is any, so a bad edit never replaces a good config.
 *
 * Durations in the file are "30s", "5m", "1h" or plain seconds; sizes are
 * "10m", "64k" or plain bytes. In memory, durations are milliseconds.
 */
#ifndef WARDEN_CONFIG_H
#define WARDEN_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "errors.h"
#include "netaddr.h"

struct policy;

/* How the real client address reaches the backend. */
enum client_identity {
    IDENTITY_NONE,
    IDENTITY_XCLIENT,   /* Postfix XCLIENT, attributes the backend announces */
    IDENTITY_PROXY_V1,  /* HAProxy PROXY protocol, text */
    IDENTITY_PROXY_V2,  /* HAProxy PROXY protocol, binary */
};

enum listener_tls {
    LISTENER_TLS_NONE,      /* plain SMTP, no STARTTLS offered */
    LISTENER_TLS_STARTTLS,  /* STARTTLS offered (needs tls.certificate) */
    LISTENER_TLS_IMPLICIT,  /* TLS from the first byte (port 465) */
};

enum backend_tls {
    BACKEND_TLS_NONE,     /* never STARTTLS towards the backend */
    BACKEND_TLS_MAY,      /* STARTTLS when the backend offers it */
    BACKEND_TLS_REQUIRE,  /* no STARTTLS offered or handshake fails: 421 */
};

enum bare_newline {
    BARE_NEWLINE_REJECT,     /* refuse the message with 550 5.5.2 */
    BARE_NEWLINE_NORMALIZE,  /* turn into CRLF, dot-stuff new lines */
};

enum backend_unavailable {
    BACKEND_DOWN_CLOSE,  /* 421 at connect and close (default) */
    BACKEND_DOWN_DEFER,  /* greet, then 451 to every mail command */
};

enum log_target { LOG_TARGET_STDERR, LOG_TARGET_SYSLOG };

enum store_type { STORE_MEMORY, STORE_REDIS };
enum store_failure {
    STORE_FAIL_OPEN,    /* store unreachable: accept, log once per outage */
    STORE_FAIL_CLOSED,  /* store unreachable: 451 */
};

#define CONFIG_MAX_BACKENDS 8

struct listener_conf {
    char name[32];            /* used in logs and policy scopes */
    struct netaddr addr;
    enum listener_tls tls;
    bool proxy_protocol;      /* expect a PROXY v1/v2 header first */
    unsigned line;            /* where it was defined, for messages */
};

struct backend_conf {
    struct netaddr addrs[CONFIG_MAX_BACKENDS]; /* tried in order */
    size_t naddrs;
    enum client_identity identity;
    enum backend_tls tls;
    bool tls_verify;          /* verify the backend's certificate */
    char *tls_ca_file;        /* NULL: system default store */
    char *tls_server_name;    /* SNI and name to verify; NULL: none */
    char *helo_name;          /* Warden's own EHLO name; NULL: hostname */
    enum backend_unavailable on_unavailable;
};

struct limits_conf {
    unsigned max_connections;     /* global; over it: 421 and close */
    size_t max_message_size;      /* bytes; SIZE = min(this, backend's) */
    size_t max_command_line;      /* octets incl. CRLF (RFC 5321: 512) */
    size_t max_text_line;         /* octets incl. CRLF (RFC 5321: 1000) */
    size_t max_auth_line;         /* AUTH exchange lines (RFC 4954: 12288) */
    unsigned max_errors;          /* errors before 421 and close */
    unsigned max_pipeline;        /* replies pending before we stop reading */
    unsigned max_recipients;      /* per transaction; over it: 452 */
    unsigned recipient_overshoot; /* 452s past max_recipients before each
                                   * counts as an error (Postfix's
                                   * smtpd_recipient_overshoot_limit) */
    size_t spool_memory;          /* message bytes kept in memory per tx */
};

struct timeouts_conf {            /* all milliseconds */
    unsigned backend_connect;
    unsigned backend_greeting;
    unsigned backend_reply;       /* any reply but the final one after DATA */
    unsigned command;             /* client idle between commands */
    unsigned data;                /* client idle inside DATA */
    unsigned data_done;           /* backend's reply after the final dot */
    unsigned tls_handshake;
    unsigned shutdown;            /* drain on SIGTERM before closing */
};

struct tls_conf {
    char *certificate;            /* PEM chain; NULL: no TLS towards clients */
    char *key;
    char *ciphers;                /* TLS 1.2 cipher list; NULL: OpenSSL's */
    char *min_version;            /* "TLSv1.2" (default) or "TLSv1.3" */
};

struct dns_conf {
    bool resolve_client;          /* reverse-lookup clients for XCLIENT NAME */
    struct netaddr servers[4];    /* empty: use /etc/resolv.conf */
    size_t nservers;
    unsigned timeout;             /* milliseconds */
};

/* Where limit counters live (see store.h). */
struct store_conf {
    enum store_type type;
    struct netaddr redis;         /* host:port, default 127.0.0.1:6379 */
    char *redis_socket;           /* Unix socket path; NULL: TCP to redis */
    char *redis_password;         /* AUTH; NULL: none */
    unsigned redis_db;            /* SELECT */
    unsigned timeout;             /* ms per call; then the failure policy */
    enum store_failure on_failure;
    char *key_prefix;             /* default "warden:" */
    unsigned node_ttl;            /* ms: a dead node's connections stop
                                   * counting after this */
};

struct log_conf {
    enum log_target target;
    int level;                    /* syslog priority: LOG_ERR..LOG_DEBUG */
    int facility;                 /* syslog facility, e.g. LOG_MAIL */
};

struct config {
    char *path;                   /* NULL for the embedded defaults */
    char *hostname;               /* our name in replies; default: gethostname */
    struct listener_conf *listeners;
    size_t nlisteners;
    struct backend_conf backend;
    struct cidr_list trusted_proxies;  /* may send us a PROXY header */
    struct tls_conf tls;
    struct limits_conf limits;
    struct timeouts_conf timeouts;
    enum bare_newline bare_newline;
    bool auth_requires_tls;       /* hide AUTH until STARTTLS (if offered) */
    char *spool_dir;              /* where big messages spill; unlinked files */
    char **policy_files;
    size_t npolicy_files;
    struct policy *policy;        /* loaded from policy_files */
    struct log_conf log;
    struct dns_conf dns;
    struct store_conf store;
    char *control_socket;         /* admin commands; NULL: none */
    char *user;                   /* account to run as after binding (root) */
    bool metrics_on;              /* serve /metrics */
    struct netaddr metrics_listen;
    char *milter_socket;          /* libmilter spec "inet:PORT@HOST",
                                   * "unix:/path"; NULL: no milter */
    char milter_name[32];         /* listener name in logs and scopes */
    unsigned workers;             /* event loop threads; 0: one per CPU */
    unsigned refs;
};

/* The embedded defaults, as documented in the README. Never NULL. */
struct config *config_defaults(void);

/*
 * Load path (YAML) over the defaults, then the policy files it names.
 * Returns NULL and fills errs when anything is wrong.
 */
struct config *config_load(const char *path, struct errors *errs);

struct config *config_ref(struct config *c);
void config_unref(struct config *c);

/* Parse "30s"/"5m"/"2h"/"1d"/"250ms"/plain seconds to milliseconds. */
int config_parse_duration(const char *s, unsigned *ms);
/* Parse "10m"/"64k"/"1g"/plain bytes. */
int config_parse_size(const char *s, size_t *bytes);

#endif
