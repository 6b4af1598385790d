/*
 * libFuzzer target for policy_load(): one policy file with access rules
 * and limits (and the CIDR files it names).
 *
 * The loader takes paths, so the input goes to one file per process, in a
 * private directory made at the first call (under $TMPDIR, else /dev/shm,
 * else /tmp) and removed at exit. The directory also holds CIDR files the
 * seeds name as networks_file: nets.cidr (good), bad.cidr (a host-bits
 * error on line 2) and empty.cidr, a FIFO with no writer (a loader that
 * opened it would block), and what the other sections name: rule files
 * local.cf (good) and bad.cf, a public suffix list psl.dat, an RSA
 * key.pem and an Ed25519 ed.pem (refused for signing).
 *
 * Beyond "no crash, no leak, no UB", it checks:
 *   - a policy comes back with no error, or NULL with at least one;
 *   - every error about this file is "<path>:<line>: reason" with a line
 *     between 1 and the file's last line (line breaks counted as libyaml
 *     counts them: LF, CR, CRLF, NEL, LS, PS), except the one kind the
 *     code means to have no line: "<path>: YAML syntax error: ... at byte
 *     N", a bad encoding found by libyaml's reader (N within the input);
 *     errors about CIDR files name their file;
 *   - a returned policy holds what the loader promises to have checked:
 *     entry locations, names, networks without host bits, replies whose
 *     code fits the action (and the limit codes clients understand),
 *     printable texts, keys, 1-4 rates with distinct periods, bursts,
 *     prefixes, exempt senders, escalation;
 *   - matching: a client at the network address of an entry's network is
 *     matched by that entry or an earlier one (also as ::ffff:a.b.c.d);
 *   - merging: the file loaded twice doubles the access entries, and is
 *     refused with a duplicate name as soon as it has a limit (and once
 *     more if it has an spf section, which may appear in one file only).
 * Everything is freed, so LeakSanitizer sees any leak.
 *
 * contrib/fuzz.sh policy   (libFuzzer + ASan + UBSan, corpus/policy/)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
    {"nets.cidr", "# test networks\n192.0.2.0/24\n2001:db8::/32\n\n"
                  "198.51.100.7  # one host\n::ffff:203.0.113.0/120\n"},
    {"bad.cidr", "192.0.2.0/24\n10.0.0.1/8\n"},
    {"empty.cidr", ""},
    /* for the scoring, dmarc and dkim_sign sections */
    {"local.cf", "body LOCAL_X /buy now/i\nscore LOCAL_X 2.5\n"
                 "meta LOCAL_M LOCAL_X && !LOCAL_X\n"},
    {"bad.cf", "body BAD_RE /(unclosed/\n"},
    {"psl.dat", "// test list\ncom\nco.uk\n*.ck\n!www.ck\n"},
    /* RSA-1024: small, and enough for the loader's checks */
    {"key.pem",
                "-----BEGIN PRIVATE KEY-----\n"
                "MIICdgIBADANBgkqhkiG9w0BAQEFAASCAmAwggJcAgEAAoGBAM8kM/i63yFxE/xH\n"
                "ArwJiFvH0x3yGScddHz7VYS8JhumcE0hJipcTbpuXU0q/O+M2TeEx0A44QfZuu+1\n"
                "Umh7OeL2gEUYnIe8MMdvzLiTqq3/SCsI1fHCcJ1G5ZQj95DPPEjogGq6I49NhQ6N\n"
                "rgH1ieW79/3rlY87Ydzfm7Rbldg/AgMBAAECgYBl/46z6Njcr8DGlfTrwMnrX88+\n"
                "TKtEDoYA0QYAUWF2dhOQd0VC0KbZqWS6DfP0xWdkpjYzEo8EfZtGVAPbPOp4TBgz\n"
                "EYVWoAkh3ew34Ss25mVvZ7NPSxVW7hgpJ034k3xrraIm4ORq9mP7iKkUgGcn6h1S\n"
                "pu15IjCNakIS7HAcqQJBAPHcByudaN277ZaYBwrkG7OObzk+p3hHdz8GwwnMWpOW\n"
                "eH3FUWeyeL6+YfuXyqm4yE6Q6FfQ6d8I5LllgxAbor0CQQDbQIp6zOeZGgt1ukSS\n"
                "7c6ARRVGslNGQr1en3qtq69O2FxZ9lRHRR4ehOlg6Aejz3ZgO3i0KCecw7drQUwM\n"
                "VPSrAkBJlVqtH1f/ViTD038ZBiuTZntaXECRbJTQHRuLyJuqGXaRNU4+EWOBDOU8\n"
                "qYLkPi7bEGVQCmSNEeScr1C/vti1AkBceN8vJeb0WtjEgZhUg/oZfYmYtLOMqa9n\n"
                "DkpWn1ekIHrq8orfOFaYtqQb3CEExQZ/VfX1vg3e/2kH0pV5igdbAkEAoelwHucu\n"
                "KAVYCoPJevNxTRJpmZNq0xA+WOXbP/MWa+n3ViCSa9WO3KlVdnCzXfdFZTgXuvuN\n"
                "RLkJiXiiNrYtiQ==\n"
                "-----END PRIVATE KEY-----\n"},
    {"ed.pem", "-----BEGIN PRIVATE KEY-----\n"
               "MC4CAQAwBQYDK2VwBCIEIIoWAOoxk5BwEBulCRm5UbUi+mwrqEli3akYUh/JvyTz\n"
               "-----END PRIVATE KEY-----\n"},
};

#include "fuzz_loader.h"

/* "123" + end (end ':' : "123: ", end '\0': "123" at the end), else 0. */
static unsigned long line_at(const char *s, char end)
{
    unsigned long v = 0;
    const char *p = s;

    for (; *p >= '0' && *p <= '9' && p - s < 10; p++)
        v = v * 10 + (unsigned long)(*p - '0');
    if (p == s)
        return 0;
    if (end == ':')
        return p[0] == ':' && p[1] == ' ' ? v : 0;
    return *p == '\0' ? v : 0;
}

static void check_errors(const struct errors *e, size_t size, size_t last,
                         bool ambiguous)
{
    size_t plen = strlen(path);

    for (size_t i = 0; i < e->n; i++) {
        const char *m = e->v[i];

        CHECK(m != NULL);
        if (starts_with(m, path) && m[plen] == ':' && !ambiguous) {
            const char *rest = m + plen + 1;
            unsigned long line = line_at(rest, ':');

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
            /* a CIDR file: "file: reason" or "file:line: reason" */
            const char *colon = strstr(m, ": ");
            CHECK_MSG(colon && colon > m, m);
        }
    }
}

/* "file:line" of an entry of this file. */
static void check_where(const char *where, size_t last, bool ambiguous)
{
    size_t plen = strlen(path);

    CHECK(starts_with(where, path) && where[plen] == ':');
    if (!ambiguous) {
        unsigned long line = line_at(where + plen + 1, '\0');
        CHECK(line >= 1 && line <= last);
    }
}

/* ---- a loaded policy keeps the loader's promises ---- */

static bool no_blanks(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s <= ' ' || (unsigned char)*s >= 0x7f)
            return false;
    return true;
}

static bool plain_name(const char *s, size_t max)
{
    size_t n = strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                         "0123456789_.-");
    return n > 0 && n == strlen(s) && n <= max;
}

static void check_strv(char *const *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        CHECK(v[i] && v[i][0]);
}

static void check_cidrs(const struct cidr_list *l)
{
    CHECK(l->n <= l->cap);
    for (size_t i = 0; i < l->n; i++) {
        const struct cidr *c = &l->v[i];
        unsigned max = c->family == AF_INET ? 32 : 128;
        unsigned bytes = max / 8;

        CHECK(c->family == AF_INET || c->family == AF_INET6);
        CHECK(c->prefix <= max);
        /* host bits clear, and nothing past the address */
        for (unsigned b = 0; b < 16; b++) {
            unsigned keep = c->prefix > b * 8 ? c->prefix - b * 8 : 0;
            uint8_t mask = b >= bytes ? 0 : keep >= 8 ? 0xff
                                                       : (uint8_t)(0xff << (8 - keep));
            CHECK((c->addr[b] & (uint8_t)~mask) == 0);
        }
    }
}

/* code [enh] text; codes: 0-terminated list, or NULL for the class only */
static void check_reply(int code, const char *enh, const char *text,
                        char cls, const int *codes)
{
    CHECK(code / 100 == cls - '0');
    if (codes) {
        size_t i = 0;
        while (codes[i] && codes[i] != code)
            i++;
        CHECK(codes[i] == code);
    }
    if (enh[0]) {
        CHECK(enh[0] == cls && enh[1] == '.');
        CHECK(strspn(enh, "0123456789.") == strlen(enh));
    }
    CHECK(text[0] && text[0] != ' ' && strlen(text) <= 399);
    for (const char *p = text; *p; p++)
        CHECK(*p == '\t' || (*p >= ' ' && *p <= '~'));
}

static bool valid_sender(const char *s)
{
    const char *at = strchr(s, '@');

    if (!at || strchr(at + 1, '@') || !at[1] || at[1] == '.')
        return false;
    for (; *s; s++)
        if ((unsigned char)*s <= ' ' || (unsigned char)*s >= 0x7f ||
            *s == '<' || *s == '>' || (*s >= 'A' && *s <= 'Z'))
            return false;
    return true;
}

static void check_limit(const struct limit_rule *r, size_t last,
                        bool ambiguous)
{
    static const int temp_codes[] = {421, 450, 451, 0};
    static const int reject_codes[] = {550, 554, 0};
    uint64_t smallest = UINT64_MAX;

    check_where(r->where, last, ambiguous);
    CHECK(plain_name(r->name, sizeof(r->name) - 1));
    CHECK(r->keys != 0 && (r->keys & ~0x7fu) == 0);
    CHECK(strcmp(limit_count_name(r->count), "unknown") != 0);
    if (r->count == LIMIT_CONCURRENT || r->count == LIMIT_CONNECTIONS)
        CHECK((r->keys & ~(unsigned)(LK_CLIENT_IP | LK_CLIENT_NET)) == 0);
    if (r->keys == LK_RCPT_DOMAIN)
        CHECK(r->count == LIMIT_RECIPIENTS);
    CHECK(r->net_v4 >= 8 && r->net_v4 <= 32);
    CHECK(r->net_v6 >= 16 && r->net_v6 <= 128);
    if (!(r->keys & LK_CLIENT_NET))
        CHECK(r->net_v4 == 24 && r->net_v6 == 64);
    if (r->count == LIMIT_CONCURRENT) {
        CHECK(r->nwindows == 1);
        CHECK(r->windows[0].count >= 1 && r->windows[0].count <= 100000);
        CHECK(r->windows[0].period_ms == 0 && r->windows[0].burst == 0);
    } else {
        CHECK(r->nwindows >= 1 && r->nwindows <= LIMIT_MAX_WINDOWS);
        for (size_t i = 0; i < r->nwindows; i++) {
            CHECK(r->windows[i].count > 0 && r->windows[i].period_ms > 0);
            CHECK(r->windows[i].burst == r->windows[0].burst);
            if (r->windows[i].count < smallest)
                smallest = r->windows[i].count;
            for (size_t j = 0; j < i; j++)
                CHECK(r->windows[j].period_ms != r->windows[i].period_ms);
        }
        CHECK(r->windows[0].burst == 0 ||
              (smallest <= UINT64_MAX / 100 &&
               r->windows[0].burst <= smallest * 100));
    }
    CHECK(!r->listeners || r->nlisteners > 0);
    check_strv(r->listeners, r->nlisteners);
    CHECK(!r->users || r->nusers > 0);
    check_strv(r->users, r->nusers);
    check_cidrs(&r->networks);
    check_cidrs(&r->exempt_networks);
    check_strv(r->exempt_users, r->nexempt_users);
    for (size_t i = 0; i < r->nexempt_senders; i++)
        CHECK(valid_sender(r->exempt_senders[i]));
    if (r->reply.code / 100 == 4)
        check_reply(r->reply.code, r->reply.enh, r->reply.text, '4',
                    temp_codes);
    else
        check_reply(r->reply.code, r->reply.enh, r->reply.text, '5',
                    reject_codes);
    CHECK(!r->escalate_after == !r->escalate_within_ms);
    if (r->escalate_after) {
        CHECK(r->reply.code / 100 == 4);
        check_reply(r->escalate_reply.code, r->escalate_reply.enh,
                    r->escalate_reply.text, '5', reject_codes);
    }
}

/* A client at the first address of c. */
static void client_in(const struct cidr *c, bool mapped, struct netaddr *a)
{
    char ip[INET6_ADDRSTRLEN + 8];

    if (c->family == AF_INET && mapped) {
        char v4[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, c->addr, v4, sizeof(v4));
        snprintf(ip, sizeof(ip), "::ffff:%s", v4);
    } else {
        inet_ntop(c->family, c->addr, ip, sizeof(ip));
    }
    CHECK(netaddr_from_ip(a, ip, 25) == 0);
}

static void check_matching(const struct policy *p)
{
    for (size_t i = 0; i < p->naccess; i++) {
        const struct access_rule *r = &p->access[i];
        const char *listener = r->listeners ? r->listeners[0] : "any";

        for (size_t j = 0; j < r->networks.n && j < 4; j++) {
            for (int mapped = 0; mapped < 2; mapped++) {
                const struct access_rule *hit;
                struct netaddr a;

                if (mapped && r->networks.v[j].family != AF_INET)
                    continue;
                client_in(&r->networks.v[j], mapped, &a);
                hit = policy_access_match(p, listener, &a);
                CHECK(hit && hit >= p->access && hit <= r);
            }
        }
    }
}

static void check_policy(const struct policy *p, size_t last, bool ambiguous)
{
    CHECK(p != NULL);
    for (size_t i = 0; i < p->naccess; i++) {
        const struct access_rule *r = &p->access[i];

        check_where(r->where, last, ambiguous);
        CHECK(r->name[0] && no_blanks(r->name) &&
              strlen(r->name) < sizeof(r->name));
        check_cidrs(&r->networks);
        if (r->action == ACCESS_REJECT)
            check_reply(r->code, r->enh, r->text, '5', NULL);
        else if (r->action == ACCESS_TEMPFAIL)
            check_reply(r->code, r->enh, r->text, '4', NULL);
        else
            CHECK(r->action == ACCESS_ACCEPT);
        CHECK(!r->listeners || r->nlisteners > 0);
        check_strv(r->listeners, r->nlisteners);
    }
    for (size_t i = 0; i < p->nlimits; i++) {
        check_limit(&p->limits[i], last, ambiguous);
        for (size_t j = 0; j < i; j++)
            CHECK(strcmp(p->limits[j].name, p->limits[i].name) != 0);
    }
    check_matching(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct errors errs = {0};
    struct policy *p;
    char *files[2];
    char other[sizeof(path) + 1];
    size_t last;
    bool ambiguous;

    if (!dir[0])
        setup("policy", "pol");
    write_all(path, data, size);
    last = last_line(data, size);
    /* A CIDR file named "<our name>:<digits>..." would look like ours. */
    snprintf(other, sizeof(other), "%s:", base);
    ambiguous = contains(data, size, other);

    files[0] = files[1] = path;
    p = policy_load(files, 1, &errs);
    CHECK(p ? errs.n == 0 : errs.n > 0);
    check_errors(&errs, size, last, ambiguous);
    errors_free(&errs);
    if (!p)
        return 0;
    check_policy(p, last, ambiguous);

    /* Merged with itself: entries append, limit names must stay unique,
     * and each of the spf, dkim, dkim_sign, dmarc and scoring sections may
     * be written once in all the files. */
    {
        struct policy *twice = policy_load(files, 2, &errs);
        size_t dups = p->nlimits + (p->spf != NULL) + (p->dkim != NULL) +
                      (p->dkim_sign != NULL) + (p->dmarc != NULL) +
                      (p->scoring != NULL);

        if (dups > 0) {
            CHECK(!twice && errs.n == dups);
        } else {
            CHECK(twice && errs.n == 0);
            CHECK(twice->naccess == 2 * p->naccess && twice->nlimits == 0);
        }
        check_errors(&errs, size, last, ambiguous);
        policy_free(twice);
        errors_free(&errs);
    }
    policy_free(p);
    return 0;
}
