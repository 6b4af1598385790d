/*
 * Unit tests for config: defaults, a full file, and every kind of error
 * with its file:line. Each test gets its own temporary directory.
 */
#define _GNU_SOURCE /* asprintf */
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "policy.h"
#include "errassert.h"
#include "tmpdir.h"

static struct config *load(struct tdir *t, const char *yaml,
                           struct errors *errs)
{
    free(t->yaml);
    t->yaml = write_file(t, "warden.yaml", yaml);
    return config_load(t->yaml, errs);
}


/* Load yaml, expect failure with exactly one error at line. */
static void expect_one_error(struct tdir *t, const char *yaml, unsigned line,
                             const char *needle)
{
    struct errors errs = {0};
    struct config *cfg = load(t, yaml, &errs);

    if (cfg || errs.n != 1) {
        dump_errors(&errs);
        fail_msg("%s: want 1 error, got %zu", yaml, errs.n);
    }
    assert_error(&errs, t->yaml, line, needle);
    errors_free(&errs);
}

static void assert_addr(const struct netaddr *a, const char *want)
{
    char buf[NETADDR_STRLEN];

    assert_string_equal(netaddr_str(a, buf, sizeof(buf)), want);
}

/* ---- durations and sizes ---- */

static void test_parse_duration(void **state)
{
    static const struct {
        const char *in;
        unsigned ms;
    } good[] = {
        {"30s", 30000}, {"5m", 300000}, {"2h", 7200000}, {"1d", 86400000},
        {"250ms", 250}, {"30", 30000},  {"0", 0},        {"49d", 4233600000u},
    };
    static const char *const bad[] = {
        "-5s", "5x", "", "s", "5 s", " 5s", "5S", "1.5s", "5sec", "5m0",
    };
    unsigned ms;

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        assert_int_equal(config_parse_duration(good[i].in, &ms), 0);
        assert_int_equal(ms, good[i].ms);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (config_parse_duration(bad[i], &ms) != -1)
            fail_msg("duration \"%s\" parsed", bad[i]);
    /* Overflow of unsigned milliseconds, and of the digits themselves. */
    assert_int_equal(config_parse_duration("50d", &ms), -1);
    assert_int_equal(config_parse_duration("4294968s", &ms), -1);
    assert_int_equal(config_parse_duration("99999999999999999999999", &ms), -1);
}

static void test_parse_size(void **state)
{
    static const struct {
        const char *in;
        size_t bytes;
    } good[] = {
        {"10m", 10485760},  {"64k", 65536}, {"1g", 1073741824}, {"123", 123},
        {"1G", 1073741824}, {"2K", 2048},   {"0", 0},
    };
    static const char *const bad[] = {
        "-1",           "10mb", "k",    "",
        "1 k",          "1.5m", "0x10", "18446744073709551616",
        "17179869184g",
    };
    size_t n;

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        assert_int_equal(config_parse_size(good[i].in, &n), 0);
        assert_int_equal(n, good[i].bytes);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (config_parse_size(bad[i], &n) != -1)
            fail_msg("size \"%s\" parsed", bad[i]);
}

/* ---- good files ---- */

static void assert_defaults(const struct config *c)
{
    assert_true(c->hostname && c->hostname[0]);
    assert_int_equal(c->nlisteners, 1);
    assert_string_equal(c->listeners[0].name, "smtp");
    assert_addr(&c->listeners[0].addr, "127.0.0.1:2525");
    assert_int_equal(c->listeners[0].tls, LISTENER_TLS_NONE);
    assert_false(c->listeners[0].proxy_protocol);
    assert_int_equal(c->backend.naddrs, 1);
    assert_addr(&c->backend.addrs[0], "127.0.0.1:10025");
    assert_int_equal(c->backend.identity, IDENTITY_XCLIENT);
    assert_int_equal(c->backend.tls, BACKEND_TLS_NONE);
    assert_int_equal(c->backend.on_unavailable, BACKEND_DOWN_CLOSE);
    assert_int_equal(c->trusted_proxies.n, 0);
    assert_null(c->tls.certificate);
    assert_string_equal(c->tls.min_version, "TLSv1.2");
    assert_int_equal(c->limits.max_connections, 1000);
    assert_int_equal(c->limits.max_message_size, 10240000);
    assert_int_equal(c->limits.max_command_line, 512);
    assert_int_equal(c->limits.max_text_line, 1000);
    assert_int_equal(c->limits.max_auth_line, 12288);
    assert_int_equal(c->limits.max_errors, 10);
    assert_int_equal(c->limits.max_pipeline, 100);
    assert_int_equal(c->limits.max_recipients, 1000);
    assert_int_equal(c->limits.recipient_overshoot, 1000);
    assert_int_equal(c->limits.spool_memory, 1048576);
    assert_int_equal(c->timeouts.backend_connect, 30000);
    assert_int_equal(c->timeouts.backend_greeting, 300000);
    assert_int_equal(c->timeouts.backend_reply, 300000);
    assert_int_equal(c->timeouts.command, 300000);
    assert_int_equal(c->timeouts.data, 180000);
    assert_int_equal(c->timeouts.data_done, 600000);
    assert_int_equal(c->timeouts.tls_handshake, 60000);
    assert_int_equal(c->timeouts.shutdown, 30000);
    assert_int_equal(c->bare_newline, BARE_NEWLINE_REJECT);
    assert_true(c->auth_requires_tls);
    assert_int_equal(c->npolicy_files, 0);
    assert_int_equal(c->log.target, LOG_TARGET_STDERR);
    assert_int_equal(c->log.level, LOG_INFO);
    assert_int_equal(c->log.facility, LOG_MAIL);
    assert_true(c->dns.resolve_client);
    assert_int_equal(c->dns.nservers, 0);
    assert_int_equal(c->dns.timeout, 5000);
    assert_int_equal(c->store.type, STORE_MEMORY);
    assert_addr(&c->store.redis, "127.0.0.1:6379");
    assert_null(c->store.redis_password);
    assert_int_equal(c->store.redis_db, 0);
    assert_int_equal(c->store.timeout, 250);
    assert_int_equal(c->store.on_failure, STORE_FAIL_OPEN);
    assert_string_equal(c->store.key_prefix, "warden:");
    assert_int_equal(c->store.node_ttl, 60000);
}

static void test_defaults(void **state)
{
    struct config *c = config_defaults();
    const char *tmp = getenv("TMPDIR");

    assert_defaults(c);
    assert_null(c->path);
    assert_int_equal(c->refs, 1);
    assert_string_equal(c->spool_dir, tmp && *tmp ? tmp : "/var/tmp");
    assert_string_equal(c->control_socket, "/run/warden/control.sock");
    assert_int_equal(config_ref(c)->refs, 2);
    config_unref(c);
    assert_int_equal(c->refs, 1);
    config_unref(c); /* freed: ASan would see a leak otherwise */
    config_unref(NULL);
}

static void test_empty_file(void **state)
{
    struct tdir *t = *state;
    struct errors errs = {0};
    struct config *c = load(t, "# nothing but a comment\n", &errs);

    assert_non_null(c);
    assert_int_equal(errs.n, 0);
    assert_defaults(c);
    assert_string_equal(c->path, t->yaml);
    assert_non_null(c->policy); /* even with no policy files */
    assert_int_equal(c->policy->naccess, 0);
    config_unref(c);

    c = load(t, "---\n", &errs);
    assert_non_null(c);
    config_unref(c);
    assert_int_equal(errs.n, 0);
}

static const char full_yaml[] =
    "hostname: mx.example.org\n"
    "listen:\n"
    "  - name: inbound\n"
    "    address: 0.0.0.0:25\n"
    "    tls: starttls\n"
    "    proxy_protocol: true\n"
    "  - address: \"[::1]:465\"\n"
    "    tls: implicit\n"
    "  - address: 192.0.2.1:587\n"
    "backend:\n"
    "  address: [127.0.0.1:10026, \"[::1]:10027\"]\n"
    "  client_identity: proxy-v2\n"
    "  starttls: require\n"
    "  tls_verify: yes\n"
    "  tls_ca_file: @D@/ca.pem\n"
    "  tls_server_name: mx.internal\n"
    "  helo_name: warden.example.org\n"
    "  on_unavailable: defer\n"
    "trusted_proxies: [10.0.0.0/8, \"2001:db8::/32\", 192.0.2.7]\n"
    "tls:\n"
    "  certificate: @D@/cert.pem\n"
    "  key: @D@/key.pem\n"
    "  ciphers: \"HIGH:!aNULL\"\n"
    "  min_version: TLSv1.3\n"
    "limits:\n"
    "  max_connections: 50\n"
    "  max_message_size: 20m\n"
    "  max_command_line: 1k\n"
    "  max_text_line: 2000\n"
    "  max_auth_line: 4096\n"
    "  max_errors: 3\n"
    "  max_pipeline: 7\n"
    "  max_recipients: 100\n"
    "  recipient_overshoot: 0\n"
    "  spool_memory: 64k\n"
    "timeouts:\n"
    "  backend_connect: 5s\n"
    "  backend_greeting: 1m\n"
    "  backend_reply: 2m\n"
    "  command: 90\n"
    "  data: 4m\n"
    "  data_done: 1h\n"
    "  tls_handshake: 250ms\n"
    "  shutdown: 1d\n"
    "smtp:\n"
    "  bare_newline: normalize\n"
    "  auth_requires_tls: false\n"
    "spool_dir: @D@\n"
    "policies:\n"
    "  - access.yaml\n"
    "log:\n"
    "  target: syslog\n"
    "  level: debug\n"
    "  facility: local3\n"
    "dns:\n"
    "  resolve_client: off\n"
    "  servers: [192.0.2.53, \"[2001:db8::53]:5353\"]\n"
    "  timeout: 1500ms\n"
    "store:\n"
    "  type: redis\n"
    "  redis: \"[::1]:6380\"\n"
    "  redis_password: s3cret\n"
    "  redis_db: 15\n"
    "  timeout: 1s\n"
    "  on_failure: tempfail\n"
    "  key_prefix: \"mx1:\"\n"
    "  node_ttl: 3s\n";

static void test_full_file(void **state)
{
    struct tdir *t = *state;
    struct errors errs = {0};
    struct config *c;
    char *want;

    free(write_file(t, "cert.pem", "x"));
    free(write_file(t, "key.pem", "x"));
    free(write_file(t, "ca.pem", "x"));
    free(write_file(t, "access.yaml",
                    "access:\n"
                    "  - networks: [192.0.2.0/24]\n"
                    "    action: reject\n"
                    "limits:\n"
                    "  - {name: l, key: user, count: messages, "
                    "rate: 10/1h}\n"));
    c = load(t, full_yaml, &errs);
    if (!c)
        dump_errors(&errs);
    assert_non_null(c);

    assert_string_equal(c->hostname, "mx.example.org");
    assert_int_equal(c->nlisteners, 3);
    assert_string_equal(c->listeners[0].name, "inbound");
    assert_addr(&c->listeners[0].addr, "0.0.0.0:25");
    assert_int_equal(c->listeners[0].tls, LISTENER_TLS_STARTTLS);
    assert_true(c->listeners[0].proxy_protocol);
    assert_int_equal(c->listeners[0].line, 3);
    assert_string_equal(c->listeners[1].name, "listen2");
    assert_addr(&c->listeners[1].addr, "[::1]:465");
    assert_int_equal(c->listeners[1].tls, LISTENER_TLS_IMPLICIT);
    assert_string_equal(c->listeners[2].name, "listen3");

    assert_int_equal(c->backend.naddrs, 2);
    assert_addr(&c->backend.addrs[0], "127.0.0.1:10026");
    assert_addr(&c->backend.addrs[1], "[::1]:10027");
    assert_int_equal(c->backend.identity, IDENTITY_PROXY_V2);
    assert_int_equal(c->backend.tls, BACKEND_TLS_REQUIRE);
    assert_true(c->backend.tls_verify);
    assert_non_null(strstr(c->backend.tls_ca_file, "/ca.pem"));
    assert_string_equal(c->backend.tls_server_name, "mx.internal");
    assert_string_equal(c->backend.helo_name, "warden.example.org");
    assert_int_equal(c->backend.on_unavailable, BACKEND_DOWN_DEFER);

    assert_int_equal(c->trusted_proxies.n, 3);
    assert_int_equal(c->trusted_proxies.v[2].prefix, 32);
    assert_non_null(strstr(c->tls.certificate, "/cert.pem"));
    assert_non_null(strstr(c->tls.key, "/key.pem"));
    assert_string_equal(c->tls.ciphers, "HIGH:!aNULL");
    assert_string_equal(c->tls.min_version, "TLSv1.3");

    assert_int_equal(c->limits.max_connections, 50);
    assert_int_equal(c->limits.max_message_size, 20971520);
    assert_int_equal(c->limits.max_command_line, 1024);
    assert_int_equal(c->limits.max_text_line, 2000);
    assert_int_equal(c->limits.max_auth_line, 4096);
    assert_int_equal(c->limits.max_errors, 3);
    assert_int_equal(c->limits.max_pipeline, 7);
    assert_int_equal(c->limits.max_recipients, 100);
    assert_int_equal(c->limits.recipient_overshoot, 0);
    assert_int_equal(c->limits.spool_memory, 65536);

    assert_int_equal(c->timeouts.backend_connect, 5000);
    assert_int_equal(c->timeouts.backend_greeting, 60000);
    assert_int_equal(c->timeouts.backend_reply, 120000);
    assert_int_equal(c->timeouts.command, 90000);
    assert_int_equal(c->timeouts.data, 240000);
    assert_int_equal(c->timeouts.data_done, 3600000);
    assert_int_equal(c->timeouts.tls_handshake, 250);
    assert_int_equal(c->timeouts.shutdown, 86400000);

    assert_int_equal(c->bare_newline, BARE_NEWLINE_NORMALIZE);
    assert_false(c->auth_requires_tls);
    assert_string_equal(c->spool_dir, t->path);

    assert_int_equal(c->npolicy_files, 1);
    assert_true(asprintf(&want, "%s/access.yaml", t->path) > 0);
    assert_string_equal(c->policy_files[0], want);
    free(want);
    assert_non_null(c->policy);
    assert_int_equal(c->policy->naccess, 1);
    assert_int_equal(c->policy->access[0].action, ACCESS_REJECT);
    assert_int_equal(c->policy->nlimits, 1);
    assert_string_equal(c->policy->limits[0].name, "l");

    assert_int_equal(c->log.target, LOG_TARGET_SYSLOG);
    assert_int_equal(c->log.level, LOG_DEBUG);
    assert_int_equal(c->log.facility, LOG_LOCAL3);
    assert_false(c->dns.resolve_client);
    assert_int_equal(c->dns.nservers, 2);
    assert_addr(&c->dns.servers[0], "192.0.2.53:53");
    assert_addr(&c->dns.servers[1], "[2001:db8::53]:5353");
    assert_int_equal(c->dns.timeout, 1500);
    assert_int_equal(c->store.type, STORE_REDIS);
    assert_addr(&c->store.redis, "[::1]:6380");
    assert_string_equal(c->store.redis_password, "s3cret");
    assert_int_equal(c->store.redis_db, 15);
    assert_int_equal(c->store.timeout, 1000);
    assert_int_equal(c->store.on_failure, STORE_FAIL_CLOSED);
    assert_string_equal(c->store.key_prefix, "mx1:");
    assert_int_equal(c->store.node_ttl, 3000);
    assert_int_equal(c->refs, 1);
    config_unref(c);
    assert_int_equal(errs.n, 0);
}

/* The shipped example documents the real defaults, and loads. */
static void test_example_config(void **state)
{
    const char *src = getenv("WARDEN_SOURCE_DIR");
    struct errors errs = {0};
    struct config *c;
    char *path;

    if (!src)
        skip();
    assert_true(asprintf(&path, "%s/contrib/warden.yaml", src) > 0);
    c = config_load(path, &errs);
    if (!c)
        dump_errors(&errs);
    assert_non_null(c);
    assert_defaults(c);
    config_unref(c);
    free(path);
}

static void test_backend_single_string(void **state)
{
    struct tdir *t = *state;
    struct errors errs = {0};
    struct config *c = load(t,
                            "backend:\n"
                            "  address: 192.0.2.25:25\n"
                            "listen: [{address: \"*:25\"}]\n",
                            &errs);

    assert_non_null(c);
    assert_int_equal(c->backend.naddrs, 1);
    assert_addr(&c->backend.addrs[0], "192.0.2.25:25");
    /* A listen list replaces the default listener, and names it smtp. */
    assert_int_equal(c->nlisteners, 1);
    assert_string_equal(c->listeners[0].name, "smtp");
    assert_addr(&c->listeners[0].addr, "0.0.0.0:25");
    config_unref(c);
}

/* ---- errors ---- */

static void test_missing_file(void **state)
{
    struct errors errs = {0};

    assert_null(config_load("/nonexistent/warden.yaml", &errs));
    assert_int_equal(errs.n, 1);
    assert_string_equal(errs.v[0], "/nonexistent/warden.yaml: cannot open: "
                                   "No such file or directory");
    errors_free(&errs);
}

static void test_directory_is_not_a_file(void **state)
{
    struct tdir *t = *state;
    struct errors errs = {0};

    assert_null(config_load(t->path, &errs));
    assert_int_equal(errs.n, 1);
    assert_non_null(strstr(errs.v[0], "cannot open: Is a directory"));
    errors_free(&errs);
}

static void test_syntax_error(void **state)
{
    expect_one_error(*state,
                     "hostname: a\n"
                     "limits:\n"
                     "  max_errors: 3\n"
                     " bad: [\n",
                     4, "YAML syntax error: ");
    expect_one_error(*state, "a: b\n---\nc: d\n", 3,
                     "only one YAML document per file");
}

static void test_exact_messages(void **state)
{
    struct tdir *t = *state;
    struct errors errs = {0};
    char want[512];

    assert_null(load(t,
                     "listn:\n"
                     "  - address: 127.0.0.1:25\n"
                     "backend:\n"
                     "  client_identity: xclent\n"
                     "limits:\n"
                     "  max_command_line: 100\n",
                     &errs));
    assert_int_equal(errs.n, 3);
    snprintf(want, sizeof(want), "%s:1: unknown key \"listn\" in top level",
             t->yaml);
    assert_string_equal(errs.v[0], want);
    snprintf(want, sizeof(want),
             "%s:4: backend.client_identity: expected one of xclient, "
             "proxy-v1, proxy-v2, none, got \"xclent\"",
             t->yaml);
    assert_string_equal(errs.v[1], want);
    snprintf(want, sizeof(want),
             "%s:6: limits.max_command_line: must be at least 512", t->yaml);
    assert_string_equal(errs.v[2], want);
    errors_free(&errs);
}

static void test_unknown_keys_everywhere(void **state)
{
    struct tdir *t = *state;
    struct errors errs = {0};

    assert_null(load(t,
                     "bogus: 1\n"                  /* 1 */
                     "listen:\n"                   /* 2 */
                     "  - address: 127.0.0.1:25\n" /* 3 */
                     "    adress: 127.0.0.1:26\n"  /* 4 */
                     "backend:\n"                  /* 5 */
                     "  starttls: may\n"           /* 6 */
                     "  tls: may\n"                /* 7 */
                     "tls:\n"                      /* 8 */
                     "  cert: x\n"                 /* 9 */
                     "limits:\n"                   /* 10 */
                     "  max_connection: 5\n"       /* 11 */
                     "timeouts:\n"                 /* 12 */
                     "  connect: 5s\n"             /* 13 */
                     "smtp:\n"                     /* 14 */
                     "  pipelining: true\n"        /* 15 */
                     "log:\n"                      /* 16 */
                     "  file: /var/log/warden\n"   /* 17 */
                     "dns:\n"                      /* 18 */
                     "  server: 127.0.0.1\n"       /* 19 */
                     "limits:\n"                   /* 20 */
                     "  max_errors: 5\n"           /* 21 */
                     "store:\n"                    /* 22 */
                     "  tpye: redis\n",            /* 23 */
                     &errs));
    assert_error(&errs, t->yaml, 1, "unknown key \"bogus\" in top level");
    assert_error(&errs, t->yaml, 4, "unknown key \"adress\" in listen[0]");
    assert_error(&errs, t->yaml, 7, "unknown key \"tls\" in backend");
    assert_error(&errs, t->yaml, 9, "unknown key \"cert\" in tls");
    assert_error(&errs, t->yaml, 11,
                 "unknown key \"max_connection\" in limits");
    assert_error(&errs, t->yaml, 13, "unknown key \"connect\" in timeouts");
    assert_error(&errs, t->yaml, 15, "unknown key \"pipelining\" in smtp");
    assert_error(&errs, t->yaml, 17, "unknown key \"file\" in log");
    assert_error(&errs, t->yaml, 19, "unknown key \"server\" in dns");
    assert_error(&errs, t->yaml, 20, "duplicate key \"limits\" in top level");
    assert_error(&errs, t->yaml, 23, "unknown key \"tpye\" in store");
    assert_int_equal(errs.n, 11);
    errors_free(&errs);
}

static void test_wrong_types(void **state)
{
    struct tdir *t = *state;
    struct errors errs = {0};

    assert_null(load(t,
                     "hostname: [a, b]\n"                 /* 1 */
                     "limits: 5\n"                        /* 2 */
                     "backend:\n"                         /* 3 */
                     "  address: {host: x}\n"             /* 4 */
                     "  tls_verify: maybe\n"              /* 5 */
                     "listen:\n"                          /* 6 */
                     "  - 127.0.0.1:25\n"                 /* 7 */
                     "timeouts:\n"                        /* 8 */
                     "  command: {s: 5}\n"                /* 9 */
                     "smtp:\n"                            /* 10 */
                     "  auth_requires_tls:\n"             /* 11 */
                     "trusted_proxies: [[10.0.0.0/8]]\n", /* 12 */
                     &errs));
    assert_error(&errs, t->yaml, 1, "hostname: expected a string, got a list");
    assert_error(&errs, t->yaml, 2, "limits: expected a mapping, got a string");
    assert_error(&errs, t->yaml, 4,
                 "backend.address: expected a list, got a mapping");
    assert_error(&errs, t->yaml, 5,
                 "backend.tls_verify: expected true or false, got \"maybe\"");
    assert_error(&errs, t->yaml, 7,
                 "listen[0]: expected a mapping, got a string");
    assert_error(&errs, t->yaml, 9,
                 "timeouts.command: expected a duration, got a mapping");
    assert_error(&errs, t->yaml, 11,
                 "smtp.auth_requires_tls: expected true or false, got "
                 "nothing");
    assert_error(&errs, t->yaml, 12,
                 "trusted_proxies: expected a string, got a list");
    assert_int_equal(errs.n, 8);
    errors_free(&errs);

    expect_one_error(t, "- a\n- b\n", 1,
                     "top level: expected a mapping, got a list");
}

static void test_bad_values(void **state)
{
    struct tdir *t = *state;
    struct errors errs = {0};

    assert_null(load(t,
                     "limits:\n"                         /* 1 */
                     "  max_text_line: 999\n"            /* 2 */
                     "  max_errors: 0\n"                 /* 3 */
                     "  max_pipeline: 0\n"               /* 4 */
                     "  max_recipients: -1\n"            /* 5 */
                     "  max_connections: 99999999999\n"  /* 6 */
                     "  max_message_size: 10mb\n"        /* 7 */
                     "  spool_memory: 99999999999999g\n" /* 8 */
                     "timeouts:\n"                       /* 9 */
                     "  command: 0s\n"                   /* 10 */
                     "  data: 5 minutes\n"               /* 11 */
                     "  shutdown: 60d\n"                 /* 12 */
                     "log:\n"                            /* 13 */
                     "  level: verbose\n"                /* 14 */
                     "  facility: local8\n"              /* 15 */
                     "smtp:\n"                           /* 16 */
                     "  bare_newline: strip\n"           /* 17 */
                     "hostname: \"mx example\"\n"        /* 18 */
                     "tls:\n"                            /* 19 */
                     "  min_version: TLSv1.1\n"          /* 20 */
                     "  ciphers: \"\"\n",                /* 21 */
                     &errs));
    assert_error(&errs, t->yaml, 2,
                 "limits.max_text_line: must be at least 1000");
    assert_error(&errs, t->yaml, 3, "limits.max_errors: must be at least 1");
    assert_error(&errs, t->yaml, 4, "limits.max_pipeline: must be at least 1");
    assert_error(&errs, t->yaml, 5,
                 "limits.max_recipients: expected a number, got \"-1\"");
    assert_error(&errs, t->yaml, 6,
                 "limits.max_connections: must be at most 4294967295");
    assert_error(&errs, t->yaml, 7,
                 "limits.max_message_size: invalid size \"10mb\"");
    assert_error(&errs, t->yaml, 8, "limits.spool_memory: size");
    assert_error(&errs, t->yaml, 8, "is too large");
    assert_error(&errs, t->yaml, 10,
                 "timeouts.command: must be greater than 0");
    assert_error(&errs, t->yaml, 11,
                 "timeouts.data: invalid duration \"5 minutes\"");
    assert_error(&errs, t->yaml, 12,
                 "timeouts.shutdown: duration \"60d\" is too long");
    assert_error(&errs, t->yaml, 14,
                 "log.level: expected one of error, warning, notice, info, "
                 "debug, got \"verbose\"");
    assert_error(&errs, t->yaml, 15, "log.facility: expected one of mail,");
    assert_error(&errs, t->yaml, 17,
                 "smtp.bare_newline: expected one of reject, normalize");
    assert_error(&errs, t->yaml, 18,
                 "hostname: \"mx example\" is not a valid host name");
    assert_error(&errs, t->yaml, 20,
                 "tls.min_version: expected one of TLSv1.2, TLSv1.3");
    assert_error(&errs, t->yaml, 21, "tls.ciphers: must not be empty");
    assert_int_equal(errs.n, 16);
    errors_free(&errs);
}

static void test_addresses(void **state)
{
    struct tdir *t = *state;
    struct errors errs = {0};

    assert_null(load(t,
                     "backend:\n"                                /* 1 */
                     "  address:\n"                              /* 2 */
                     "    - 127.0.0.1:10025\n"                   /* 3 */
                     "    - mx.internal:25\n"                    /* 4 */
                     "    - 127.0.0.1\n"                         /* 5 */
                     "trusted_proxies:\n"                        /* 6 */
                     "  - 10.0.0.0/8\n"                          /* 7 */
                     "  - 10.0.0.1/8\n"                          /* 8 */
                     "  - 2001:db8::/129\n"                      /* 9 */
                     "dns:\n"                                    /* 10 */
                     "  servers: [1.1.1.1, 2.2.2.2, 3.3.3.3, \n" /* 11 */
                     "            4.4.4.4, 5.5.5.5]\n"           /* 12 */
                     "listen:\n"                                 /* 13 */
                     "  - address: \"[::1]\"\n",                 /* 14 */
                     &errs));
    assert_error(&errs, t->yaml, 4,
                 "backend.address: invalid IP address \"mx.internal\"");
    assert_error(&errs, t->yaml, 5, "backend.address: missing port");
    assert_error(&errs, t->yaml, 8,
                 "trusted_proxies: host bits set in "
                 "\"10.0.0.1/8\" (network is 10.0.0.0/8)");
    assert_error(&errs, t->yaml, 9, "trusted_proxies: invalid prefix length");
    assert_error(&errs, t->yaml, 11, "dns.servers: expected 0 to 4 addresses");
    assert_error(&errs, t->yaml, 14, "listen[0].address: missing port");
    assert_int_equal(errs.n, 6);
    errors_free(&errs);

    expect_one_error(t,
                     "backend:\n"
                     "  address: [1.0.0.1:25, 1.0.0.2:25, 1.0.0.3:25, "
                     "1.0.0.4:25, 1.0.0.5:25, 1.0.0.6:25, 1.0.0.7:25, "
                     "1.0.0.8:25, 1.0.0.9:25]\n",
                     2, "backend.address: expected 1 to 8 addresses");
    expect_one_error(t, "backend:\n  address: []\n", 2,
                     "backend.address: expected 1 to 8 addresses");
}

static void test_listeners(void **state)
{
    struct tdir *t = *state;
    struct errors errs = {0};

    assert_null(load(t,
                     "listen:\n"                                    /* 1 */
                     "  - address: 127.0.0.1:25\n"                  /* 2 */
                     "    tls: starttls\n"                          /* 3 */
                     "  - name: smtp\n"                             /* 4 */
                     "    address: 127.0.0.1:25\n"                  /* 5 */
                     "    proxy_protocol: true\n"                   /* 6 */
                     "  - name: \"bad name\"\n"                     /* 7 */
                     "    address: 127.0.0.1:27\n"                  /* 8 */
                     "  - name: ok\n"                               /* 9 */
                     "    tls: implicit\n"                          /* 10 */
                     "  - name: abcdefghijabcdefghijabcdefghijab\n" /* 11 */
                     "    address: 127.0.0.1:28\n",                 /* 12 */
                     &errs));
    assert_error(&errs, t->yaml, 3,
                 "listen[0].tls: starttls needs tls.certificate and tls.key");
    assert_error(&errs, t->yaml, 6,
                 "listen[1].proxy_protocol: needs trusted_proxies");
    assert_error(&errs, t->yaml, 7, "listen[2].name: \"bad name\"");
    assert_error(&errs, t->yaml, 9, "listen[3]: address is required");
    assert_error(&errs, t->yaml, 10,
                 "listen[3].tls: implicit needs tls.certificate");
    assert_error(&errs, t->yaml, 11, "listen[4].name: \"abcdefghij");
    assert_int_equal(errs.n, 6);
    errors_free(&errs);

    assert_null(load(t,
                     "listen:\n"                    /* 1 */
                     "  - address: 127.0.0.1:25\n"  /* 2 */
                     "  - name: smtp\n"             /* 3 */
                     "    address: 127.0.0.1:26\n"  /* 4 */
                     "  - name: other\n"            /* 5 */
                     "    address: 127.0.0.1:25\n", /* 6 */
                     &errs));
    assert_error(&errs, t->yaml, 3,
                 "listen[1]: duplicate listener name \"smtp\" (also at line "
                 "2)");
    assert_error(&errs, t->yaml, 5,
                 "listen[2]: duplicate address 127.0.0.1:25 (also at line 2)");
    assert_int_equal(errs.n, 2);
    errors_free(&errs);

    expect_one_error(t, "listen: []\n", 1,
                     "listen: at least one listener is required (or a "
                     "milter)");
}

static void test_milter(void **state)
{
    struct tdir *t = *state;
    struct errors errs = {0};
    struct config *cfg;

    /* a milter alone: no SMTP listener needed */
    cfg = load(t, "listen: []\nmilter:\n  listen: \"inet:8891@127.0.0.1\"\n"
                  "  name: postfix-edge\n", &errs);
    assert_non_null(cfg);
    assert_int_equal(cfg->nlisteners, 0);
    assert_string_equal(cfg->milter_socket, "inet:8891@127.0.0.1");
    assert_string_equal(cfg->milter_name, "postfix-edge");
    config_unref(cfg);
    cfg = load(t, "milter: {listen: \"unix:/run/warden/milter.sock\"}\n",
               &errs);
    assert_non_null(cfg);
    assert_int_equal(cfg->nlisteners, 1);
    assert_string_equal(cfg->milter_name, "milter");
    config_unref(cfg);
    cfg = load(t, "milter: {listen: none}\n", &errs);
    assert_non_null(cfg);
    assert_null(cfg->milter_socket);
    config_unref(cfg);
    assert_int_equal(errs.n, 0);

    expect_one_error(t, "milter:\n  listen: \"inet:0@127.0.0.1\"\n", 2,
                     "milter.listen: \"inet:0@127.0.0.1\": the port must be "
                     "1-65535, then @ADDRESS");
    expect_one_error(t, "milter:\n  listen: \"inet:8891\"\n", 2,
                     "the port must be 1-65535, then @ADDRESS");
    expect_one_error(t, "milter:\n  listen: \"inet:8891@localhost\"\n", 2,
                     "\"localhost\" is not an IPv4 address");
    expect_one_error(t, "milter:\n  listen: \"inet6:8891@127.0.0.1\"\n", 2,
                     "\"127.0.0.1\" is not an IPv6 address");
    expect_one_error(t, "milter:\n  listen: \"unix:milter.sock\"\n", 2,
                     "the path must be absolute");
    expect_one_error(t, "milter:\n  listen: \"tcp:8891\"\n", 2,
                     "use inet:PORT@ADDRESS or unix:/path");
    expect_one_error(t, "milter:\n  listen: \"inet:1@127.0.0.1\"\n"
                        "  name: \"a b\"\n", 3,
                     "milter.name: \"a b\": use 1-31 of");
    expect_one_error(t, "milter:\n  port: 8891\n", 2,
                     "unknown key \"port\" in milter");
}

static void test_files_and_dirs(void **state)
{
    struct tdir *t = *state;
    struct errors errs = {0};

    free(write_file(t, "cert.pem", "x"));
    assert_null(load(t,
                     "tls:\n"                              /* 1 */
                     "  certificate: @D@/cert.pem\n"       /* 2 */
                     "backend:\n"                          /* 3 */
                     "  tls_ca_file: @D@/missing-ca.pem\n" /* 4 */
                     "spool_dir: @D@/cert.pem\n",          /* 5 */
                     &errs));
    assert_error(&errs, t->yaml, 2,
                 "tls: key is required when certificate is given");
    assert_error(&errs, t->yaml, 4, "backend.tls_ca_file: cannot read \"");
    assert_error(&errs, t->yaml, 4, "missing-ca.pem\": No such file");
    assert_error(&errs, t->yaml, 5, "cert.pem\" is not a directory");
    assert_int_equal(errs.n, 3);
    errors_free(&errs);

    assert_null(load(t,
                     "tls:\n"                  /* 1 */
                     "  key: @D@/nokey.pem\n"  /* 2 */
                     "spool_dir: @D@/nodir\n", /* 3 */
                     &errs));
    assert_error(&errs, t->yaml, 2, "tls.key: cannot read \"");
    assert_error(&errs, t->yaml, 2,
                 "tls: certificate is required when key is given");
    assert_error(&errs, t->yaml, 3, "spool_dir: cannot access \"");
    assert_int_equal(errs.n, 3);
    errors_free(&errs);
}

static void test_store(void **state)
{
    struct tdir *t = *state;
    struct errors errs = {0};
    struct config *c;

    assert_null(load(t,
                     "store:\n"                      /* 1 */
                     "  type: mysql\n"               /* 2 */
                     "  redis: localhost:6379\n"     /* 3 */
                     "  redis_password: \"\"\n"      /* 4 */
                     "  redis_db: 16\n"              /* 5 */
                     "  timeout: 0ms\n"              /* 6 */
                     "  on_failure: reject\n"        /* 7 */
                     "  key_prefix: \"my prefix\"\n" /* 8 */
                     "  node_ttl: 2999ms\n",         /* 9 */
                     &errs));
    assert_error(&errs, t->yaml, 2,
                 "store.type: expected one of memory, redis, got \"mysql\"");
    assert_error(&errs, t->yaml, 3,
                 "store.redis: invalid IP address \"localhost\"");
    assert_error(&errs, t->yaml, 4, "store.redis_password: must not be empty");
    assert_error(&errs, t->yaml, 5, "store.redis_db: must be at most 15");
    assert_error(&errs, t->yaml, 6, "store.timeout: must be greater than 0");
    assert_error(&errs, t->yaml, 7,
                 "store.on_failure: expected one of accept, tempfail, got "
                 "\"reject\"");
    assert_error(&errs, t->yaml, 8,
                 "store.key_prefix: \"my prefix\": use 1-64 printable "
                 "characters without blanks");
    assert_error(&errs, t->yaml, 9, "store.node_ttl: must be at least 3000ms");
    assert_int_equal(errs.n, 8);
    errors_free(&errs);

    /* 64 characters fit, 65 do not; a bare address gets port 6379 */
    c = load(t,
             "store:\n"
             "  redis: 192.0.2.7\n"
             "  key_prefix: "
             "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij"
             "abcd\n",
             &errs);
    if (!c)
        dump_errors(&errs);
    assert_non_null(c);
    assert_addr(&c->store.redis, "192.0.2.7:6379");
    assert_int_equal(strlen(c->store.key_prefix), 64);
    assert_int_equal(c->store.type, STORE_MEMORY);
    config_unref(c);
    expect_one_error(t,
                     "store:\n"
                     "  key_prefix: "
                     "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghij"
                     "abcdefghijabcde\n",
                     2, "store.key_prefix: \"abcdefghij");
    expect_one_error(t, "store: redis\n", 1,
                     "store: expected a mapping, got a string");

    /* a Redis on the same host, through its Unix socket */
    c = load(t, "store: {type: redis, redis: \"unix:/run/redis/redis.sock\"}\n",
             &errs);
    if (!c)
        dump_errors(&errs);
    assert_non_null(c);
    assert_string_equal(c->store.redis_socket, "/run/redis/redis.sock");
    config_unref(c);
    expect_one_error(t, "store: {redis: \"unix:redis.sock\"}\n", 1,
                     "store.redis: \"unix:redis.sock\": use unix: and an "
                     "absolute path of at most 107 bytes");
    expect_one_error(t, "store: {redis: /run/redis.sock}\n", 1,
                     "store.redis: \"/run/redis.sock\": write "
                     "unix:/run/redis.sock for a Unix socket");
    /* sun_path holds 107 bytes and the terminating NUL */
    expect_one_error(t,
                     "store: {redis: \"unix:/"
                     "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghij"
                     "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghij"
                     "abcdefg\"}\n",
                     1, "use unix: and an absolute path of at most 107");
    expect_one_error(t, "store:\n  key_prefix: \"a\\tb\"\n", 2,
                     "store.key_prefix: \"a\tb\": use 1-64");
}

static void test_policy_errors_reported(void **state)
{
    struct tdir *t = *state;
    struct errors errs = {0};
    char *policy = write_file(t, "p.yaml",
                              "access:\n"
                              "  - networks: [192.0.2.0/24]\n"
                              "    action: block\n");

    /* The config error and the policy error both show up. */
    assert_null(load(t,
                     "policies: [p.yaml, missing.yaml]\n"
                     "limits: {max_errors: 0}\n",
                     &errs));
    assert_error(&errs, t->yaml, 2, "limits.max_errors: must be at least 1");
    assert_error(&errs, policy, 3, "access[0].action: expected one of");
    assert_int_equal(errs.n, 3);
    assert_non_null(strstr(errs.v[2], "missing.yaml: cannot open"));
    errors_free(&errs);
    free(policy);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_parse_duration),
        T(test_parse_size),
        T(test_defaults),
        T(test_empty_file),
        T(test_full_file),
        T(test_example_config),
        T(test_backend_single_string),
        T(test_missing_file),
        T(test_directory_is_not_a_file),
        T(test_syntax_error),
        T(test_exact_messages),
        T(test_unknown_keys_everywhere),
        T(test_wrong_types),
        T(test_bad_values),
        T(test_addresses),
        T(test_listeners),
        T(test_files_and_dirs),
        T(test_policy_errors_reported),
        T(test_store),
        T(test_milter),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
