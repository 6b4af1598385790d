/*
 * metrics: the counters behind /metrics (see metrics.h).
 *
 * A family is a metric name with at most two labels, each label taking
 * its values from a fixed list whose last entry is "other". Counts live in
 * one array per family, indexed by the label values' positions.
 */
#include "metrics.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "limit_stats.h"

#define MAXV 12 /* label values per label, "other" included */

struct family {
    const char *name, *help, *type;
    const char *label[2];         /* NULL: fewer labels */
    const char *values[2][MAXV];  /* NULL-terminated, last real one "other" */
    uint64_t counts[MAXV * MAXV]; /* atomic */
};

/* Process-wide by nature: one set of counters per daemon. */
static struct family conn_total = {
    .name = "warden_connections_total",
    .help = "Client connections accepted.",
    .type = "counter",
};
static struct family conn_open = {
    .name = "warden_connections_open",
    .help = "Client sessions open now.",
    .type = "gauge",
};
static struct family conn_refused = {
    .name = "warden_connections_refused_total",
    .help = "Client connections refused before or at the greeting, by reason.",
    .type = "counter",
    .label = {"reason"},
    .values = {{"max_connections", "proxy_protocol", "draining", "access",
                "limits", "other"}},
};
static struct family transactions = {
    .name = "warden_transactions_total",
    .help = "Transactions ended, by result.",
    .type = "counter",
    .label = {"result"},
    .values = {{"sent", "tempfail", "refused", "aborted", "other"}},
};
static struct family rejections = {
    .name = "warden_rejections_total",
    .help = "Commands and messages refused, by SMTP stage and by the check "
            "(or the backend) that refused.",
    .type = "counter",
    .label = {"stage", "check"},
    .values = {{"connect", "helo", "mail", "rcpt", "data", "eom", "auth",
                "other"},
               {"access", "limits", "spf", "dkim", "dmarc", "score", "backend",
                "protocol", "other"}},
};
static struct family limit_checks = {
    .name = "warden_limit_checks_total",
    .help = "Checkpoints with limits, by outcome.",
    .type = "counter",
    .label = {"result"},
    .values = {{"ok", "exceeded", "dry_run", "store_error", "other"}},
};
static struct family backend_errors = {
    .name = "warden_backend_errors_total",
    .help = "Backend failures, by kind.",
    .type = "counter",
    .label = {"kind"},
    .values = {{"connect", "lost", "greeting", "xclient", "other"}},
};
static struct family store_calls = {
    .name = "warden_store_calls_total",
    .help = "Redis calls, by result.",
    .type = "counter",
    .label = {"result"},
    .values = {{"ok", "error", "timeout", "other"}},
};
static struct family dns_queries = {
    .name = "warden_dns_queries_total",
    .help = "DNS queries, by result.",
    .type = "counter",
    .label = {"result"},
    .values = {{"ok", "nxdomain", "timeout", "error", "other"}},
};
static struct family spf_results = {
    .name = "warden_spf_results_total",
    .help = "SPF checks, by result.",
    .type = "counter",
    .label = {"result"},
    .values = {{"pass", "fail", "softfail", "neutral", "none", "temperror",
                "permerror", "other"}},
};
static struct family dkim_results = {
    .name = "warden_dkim_results_total",
    .help = "DKIM verifications, by the message's result.",
    .type = "counter",
    .label = {"result"},
    .values = {{"pass", "fail", "policy", "neutral", "none", "temperror",
                "permerror", "other"}},
};
static struct family dmarc_results = {
    .name = "warden_dmarc_results_total",
    .help = "DMARC evaluations, by result.",
    .type = "counter",
    .label = {"result"},
    .values = {{"pass", "fail", "none", "temperror", "permerror", "other"}},
};
static struct family scored = {
    .name = "warden_scored_messages_total",
    .help = "Messages that reached content scoring, by action (accept, tag, "
            "tempfail, reject) or why they went unscored (busy, timeout, "
            "error).",
    .type = "counter",
    .label = {"result"},
    .values = {{"accept", "tag", "tempfail", "reject", "busy", "timeout",
                "error", "other"}},
};
static struct family reloads = {
    .name = "warden_config_reloads_total",
    .help = "Configuration reloads, by result.",
    .type = "counter",
    .label = {"result"},
    .values = {{"ok", "failed", "other"}},
};

/* Latency histograms, in seconds. */
static const double bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                0.05,   0.1,   0.25,   0.5,   1,    2.5,
                                5,      10};
#define NBOUNDS (sizeof(bounds) / sizeof(bounds[0]))

struct histogram {
    const char *name, *help;
    uint64_t buckets[NBOUNDS + 1]; /* atomic; the last is +Inf */
    uint64_t sum_us;               /* atomic */
};

static struct histogram store_latency = {
    .name = "warden_store_latency_seconds",
    .help = "Time from a Redis call to its reply.",
};
static struct histogram dns_latency = {
    .name = "warden_dns_latency_seconds",
    .help = "Time from a DNS query to its answer.",
};
static struct histogram score_time = {
    .name = "warden_score_duration_seconds",
    .help = "Time the scorer took over one message (decoding and rules).",
};

static time_t started; /* set once, by metrics_mark_start() */

/* ---- counting ---- */

static size_t value_index(const struct family *f, int l, const char *v)
{
    size_t i;

    for (i = 0; f->values[l][i + 1]; i++)
        if (v && strcmp(f->values[l][i], v) == 0)
            return i;
    return i; /* "other" */
}

static void add(struct family *f, const char *v0, const char *v1, int64_t n)
{
    size_t i = 0;

    if (f->label[0])
        i = value_index(f, 0, v0);
    if (f->label[1])
        i = i * MAXV + value_index(f, 1, v1);
    __atomic_add_fetch(&f->counts[i], (uint64_t)n, __ATOMIC_RELAXED);
}

static void observe(struct histogram *h, double seconds)
{
    size_t i = 0;

    while (i < NBOUNDS && seconds > bounds[i])
        i++;
    __atomic_add_fetch(&h->buckets[i], 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&h->sum_us,
                       (uint64_t)(seconds > 0 ? seconds * 1e6 : 0),
                       __ATOMIC_RELAXED);
}

void metric_conn_opened(void)
{
    add(&conn_total, NULL, NULL, 1);
    add(&conn_open, NULL, NULL, 1);
}

void metric_conn_closed(void) { add(&conn_open, NULL, NULL, -1); }

static const char *check_of(const char *check, char *buf, size_t len);

void metric_conn_refused(const char *reason)
{
    char buf[32];

    add(&conn_refused, check_of(reason, buf, sizeof(buf)), NULL, 1);
}

void metric_transaction(const char *result)
{
    add(&transactions, result, NULL, 1);
}

/* SMTP verbs name the stage; the rest are lower case already. */
static const char *stage_of(const char *s)
{
    static const char *const verbs[][2] = {
        {"EHLO", "helo"}, {"HELO", "helo"}, {"LHLO", "helo"},
        {"MAIL", "mail"}, {"RCPT", "rcpt"}, {"DATA", "data"},
        {"BDAT", "data"}, {"AUTH", "auth"},
    };

    for (size_t i = 0; s && i < sizeof(verbs) / sizeof(verbs[0]); i++)
        if (strcmp(s, verbs[i][0]) == 0)
            return verbs[i][1];
    return s;
}

/* A verdict names its check, maybe with a detail: "limit:per-ip". */
static const char *check_of(const char *check, char *buf, size_t len)
{
    size_t n = check ? strcspn(check, ":") : 0;

    if (!check || !check[n])
        return check;
    if (n == 5 && strncmp(check, "limit", 5) == 0)
        return "limits";
    snprintf(buf, len, "%.*s", (int)n, check);
    return buf;
}

void metric_rejection(const char *stage, const char *check)
{
    char buf[32];

    add(&rejections, stage_of(stage), check_of(check, buf, sizeof(buf)), 1);
}

void metric_limit_check(const char *result)
{
    add(&limit_checks, result, NULL, 1);
}

void metric_backend_error(const char *kind)
{
    add(&backend_errors, kind, NULL, 1);
}

void metric_store_call(double seconds, const char *result)
{
    add(&store_calls, result, NULL, 1);
    observe(&store_latency, seconds);
}

void metric_dns_query(double seconds, const char *result)
{
    add(&dns_queries, result, NULL, 1);
    observe(&dns_latency, seconds);
}

void metric_spf_result(const char *result)
{
    add(&spf_results, result, NULL, 1);
}

void metric_dkim_result(const char *result)
{
    add(&dkim_results, result, NULL, 1);
}

void metric_dmarc_result(const char *result)
{
    add(&dmarc_results, result, NULL, 1);
}

void metric_scored(const char *result, double seconds)
{
    add(&scored, result, NULL, 1);
    if (seconds >= 0)
        observe(&score_time, seconds);
}

void metric_reload(bool ok) { add(&reloads, ok ? "ok" : "failed", NULL, 1); }

/* ---- rendering ---- */

static uint64_t load(const uint64_t *p)
{
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static void render_family(FILE *out, const struct family *f)
{
    size_t n0 = 1, n1 = 1;

    fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name,
            f->type);
    if (f->label[0])
        for (n0 = 0; f->values[0][n0]; n0++)
            ;
    if (f->label[1])
        for (n1 = 0; f->values[1][n1]; n1++)
            ;
    for (size_t i = 0; i < n0; i++)
        for (size_t j = 0; j < n1; j++) {
            /* a gauge goes down through wrap-around: print it signed */
            int64_t v = (int64_t)load(&f->counts[f->label[1] ? i * MAXV + j
                                                              : i]);
            fprintf(out, "%s", f->name);
            if (f->label[1])
                fprintf(out, "{%s=\"%s\",%s=\"%s\"}", f->label[0],
                        f->values[0][i], f->label[1], f->values[1][j]);
            else if (f->label[0])
                fprintf(out, "{%s=\"%s\"}", f->label[0], f->values[0][i]);
            fprintf(out, " %lld\n", (long long)v);
        }
}

static void render_histogram(FILE *out, const struct histogram *h)
{
    uint64_t cum = 0;

    fprintf(out, "# HELP %s %s\n# TYPE %s histogram\n", h->name, h->help,
            h->name);
    for (size_t i = 0; i <= NBOUNDS; i++) {
        cum += load(&h->buckets[i]);
        if (i < NBOUNDS)
            fprintf(out, "%s_bucket{le=\"%g\"} %llu\n", h->name, bounds[i],
                    (unsigned long long)cum);
        else
            fprintf(out, "%s_bucket{le=\"+Inf\"} %llu\n", h->name,
                    (unsigned long long)cum);
    }
    fprintf(out, "%s_sum %.6f\n%s_count %llu\n", h->name,
            (double)load(&h->sum_us) / 1e6, h->name, (unsigned long long)cum);
}

/* Limit names are the admin's own words: escape them as the format asks. */
static void label_escaped(FILE *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            fputc('\\', out);
        if (*s == '\n')
            fputs("\\n", out);
        else
            fputc(*s, out);
    }
}

static void render_limit(void *arg, const char *name, uint64_t refused,
                         uint64_t dry_run)
{
    FILE *out = arg;

    fputs("warden_limit_exceeded_total{limit=\"", out);
    label_escaped(out, name);
    fprintf(out, "\",mode=\"enforced\"} %llu\n", (unsigned long long)refused);
    fputs("warden_limit_exceeded_total{limit=\"", out);
    label_escaped(out, name);
    fprintf(out, "\",mode=\"dry_run\"} %llu\n", (unsigned long long)dry_run);
}

void metrics_render(FILE *out)
{
    const struct family *families[] = {
        &conn_total,   &conn_open,      &conn_refused, &transactions,
        &rejections,   &limit_checks,   &backend_errors, &store_calls,
        &dns_queries,  &spf_results,    &dkim_results, &dmarc_results,
        &scored,       &reloads,
    };

    if (!__atomic_load_n(&started, __ATOMIC_RELAXED))
        metrics_mark_start();
    fprintf(out,
            "# HELP warden_build_info Warden's version.\n"
            "# TYPE warden_build_info gauge\n"
            "warden_build_info{version=\"%s\"} 1\n"
            "# HELP warden_start_time_seconds When the daemon started.\n"
            "# TYPE warden_start_time_seconds gauge\n"
            "warden_start_time_seconds %lld\n",
            WARDEN_VERSION, (long long)started);
    for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++)
        render_family(out, families[i]);
    render_histogram(out, &store_latency);
    render_histogram(out, &dns_latency);
    render_histogram(out, &score_time);
    fputs("# HELP warden_limit_exceeded_total Times each limit refused "
          "(enforced) or would have (dry_run).\n"
          "# TYPE warden_limit_exceeded_total counter\n",
          out);
    limit_stats_each(render_limit, out);
}

void metrics_mark_start(void)
{
    time_t zero = 0, now = time(NULL);

    __atomic_compare_exchange_n(&started, &zero, now, false, __ATOMIC_RELAXED,
                                __ATOMIC_RELAXED);
}
