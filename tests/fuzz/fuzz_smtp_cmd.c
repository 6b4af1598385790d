/*
 * libFuzzer target for the client command parser (proxy/smtp_cmd.h).
 *
 * The input is a byte stream from a client. It is cut into lines at every
 * LF, as the session does (evbuffer_search_eol with EVBUFFER_EOL_LF), and
 * each line, and the whole input taken as one line, goes through
 * smtp_line_check, smtp_cmd_parse and smtp_path_parse("FROM:"/"TO:"),
 * each time from a heap buffer of exactly its length so ASan sees any read
 * past it. Beyond "does not crash", it checks:
 *   - smtp_line_check says LINE_OK exactly for "...\r\n" with no NUL, CR or
 *     LF before the terminator, and any problem it names is really there;
 *   - smtp_cmd_parse: a verb in range whose name is the first word
 *     (case-insensitively), arguments inside the line running to its end,
 *     the same answer twice and for the upper-cased line;
 *   - smtp_verb_name: a name for every value, "UNKNOWN" out of range;
 *   - smtp_path_parse: deterministic, keyword case-insensitive, an OK
 *     address shorter than SMTP_ADDR_MAX, free of controls, taken from the
 *     arguments, surviving "FROM:<addr>" again, and a SIZE that is one of
 *     the SIZE= values written in the arguments.
 *
 * contrib/fuzz.sh smtp_cmd
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "smtp_cmd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#include "fuzzcheck.h"

/*
 * A heap copy of exactly n bytes. For n == 0 it points just past a 1-byte
 * block (ASan lets malloc(0)'s byte be used), so any access is reported.
 * Free with dup_free(p, n).
 */
static char *dup_exact(const void *p, size_t n)
{
    char *c = n ? malloc(n) : calloc(1, 1);

    if (!c)
        abort();
    if (n == 0)
        return c + 1;
    memcpy(c, p, n);
    return c;
}

static void dup_free(char *c, size_t n)
{
    free(n ? c : c - 1);
}

static void check_verb_names(void)
{
    for (int v = 0; v < VERB__COUNT; v++) {
        const char *name = smtp_verb_name((enum smtp_verb)v);
        CHECK(name != NULL && name[0] != '\0');
        CHECK(strlen(name) <= 8);
    }
    CHECK(strcmp(smtp_verb_name(VERB_UNKNOWN), "UNKNOWN") == 0);
    CHECK(strcmp(smtp_verb_name(VERB__COUNT), "UNKNOWN") == 0);
    CHECK(strcmp(smtp_verb_name((enum smtp_verb)1000), "UNKNOWN") == 0);
}

/* ---- framing ------------------------------------------------------------ */

static void check_line(const char *line, size_t len)
{
    enum smtp_line_problem p = smtp_line_check(line, len);
    bool crlf = len >= 2 && line[len - 2] == '\r' && line[len - 1] == '\n';
    size_t body = crlf ? len - 2 : len;
    bool nul = memchr(line, '\0', body) != NULL;
    bool cr = memchr(line, '\r', body) != NULL;
    bool lf = memchr(line, '\n', body) != NULL;

    CHECK(p == LINE_OK || p == LINE_NUL || p == LINE_BARE_CR ||
          p == LINE_BARE_LF);
    CHECK(smtp_line_check(line, len) == p);
    if (crlf && !nul && !cr && !lf)
        CHECK(p == LINE_OK);
    else
        CHECK(p != LINE_OK); /* a bare CR, a bare LF or a NUL is reported */
    if (p == LINE_NUL)
        CHECK(memchr(line, '\0', len) != NULL);
    if (p == LINE_BARE_CR)
        CHECK(memchr(line, '\r', len) != NULL);
    if (p == LINE_BARE_LF)
        CHECK(!crlf || lf || memchr(line, '\n', len) != NULL);
}

/* ---- verbs --------------------------------------------------------------- */

static void check_cmd(const char *line, size_t len)
{
    struct smtp_cmd c, again, upper;
    size_t vlen = 0;
    char *up;

    memset(&c, 0xa5, sizeof(c));
    smtp_cmd_parse(line, len, &c);
    CHECK(c.verb >= VERB_UNKNOWN && c.verb < VERB__COUNT);
    CHECK(c.args >= line && c.args <= line + len);
    CHECK(c.args_len <= len);
    CHECK(c.args + c.args_len == line + len); /* arguments run to the end */

    while (vlen < len && line[vlen] != ' ')
        vlen++;
    if (vlen < len)
        CHECK(c.args == line + vlen + 1);
    else
        CHECK(c.args_len == 0);

    /* The verb is the first word, whichever case it was written in. */
    if (c.verb != VERB_UNKNOWN) {
        const char *name = smtp_verb_name(c.verb);
        CHECK(strlen(name) == vlen);
        CHECK(strncasecmp(line, name, vlen) == 0);
    } else {
        for (int v = VERB_UNKNOWN + 1; v < VERB__COUNT; v++) {
            const char *name = smtp_verb_name((enum smtp_verb)v);
            CHECK(!(strlen(name) == vlen &&
                    strncasecmp(line, name, vlen) == 0));
        }
    }

    smtp_cmd_parse(line, len, &again);
    CHECK(again.verb == c.verb && again.args == c.args &&
          again.args_len == c.args_len);

    up = dup_exact(line, len);
    for (size_t i = 0; i < len; i++)
        up[i] = (char)toupper((unsigned char)up[i]);
    smtp_cmd_parse(up, len, &upper);
    CHECK(upper.verb == c.verb);
    CHECK(upper.args_len == c.args_len);
    CHECK(upper.args - up == c.args - line);
    dup_free(up, len);
}

/* ---- MAIL FROM / RCPT TO paths ------------------------------------------ */

static bool same_path(const struct smtp_path *a, const struct smtp_path *b)
{
    return strcmp(a->addr, b->addr) == 0 && a->has_size == b->has_size &&
           (!a->has_size || a->size == b->size);
}

/* Does hay[0..hn) contain needle[0..nn)? (memmem is a GNU extension.) */
static bool contains(const char *hay, size_t hn, const char *needle, size_t nn)
{
    for (size_t i = 0; i + nn <= hn; i++)
        if (memcmp(hay + i, needle, nn) == 0)
            return true;
    return false;
}

/* Is v one of the SIZE=<digits> values written somewhere in args? */
static bool size_written(const char *args, size_t len, unsigned long long v)
{
    for (size_t i = 0; i + 5 <= len; i++) {
        unsigned long long x = 0;
        size_t j = i + 5, digits = 0;

        if (strncasecmp(args + i, "SIZE=", 5) != 0)
            continue;
        while (j < len && isdigit((unsigned char)args[j]) && digits < 40) {
            x = x * 10 + (unsigned)(args[j] - '0'); /* wraps; compared */
            j++;
            digits++;
        }
        if (digits > 0 && digits <= 20 && x == v)
            return true;
    }
    return false;
}

static void check_path_kw(const char *args, size_t len, const char *kw,
                          const char *kw_lower)
{
    struct smtp_path p, again, lower;
    enum smtp_path_status st, st2;
    size_t alen;

    memset(&p, 0xa5, sizeof(p));
    st = smtp_path_parse(args, len, kw, &p);
    CHECK(st == PATH_OK || st == PATH_SYNTAX || st == PATH_BAD_ADDR ||
          st == PATH_BAD_PARAM);

    st2 = smtp_path_parse(args, len, kw, &again);
    CHECK(st2 == st);
    st2 = smtp_path_parse(args, len, kw_lower, &lower);
    CHECK(st2 == st);
    if (len < strlen(kw) || strncasecmp(args, kw, strlen(kw)) != 0)
        CHECK(st == PATH_SYNTAX);
    if (st != PATH_OK)
        return;
    CHECK(same_path(&p, &again));
    CHECK(same_path(&p, &lower));

    /* Never longer than the buffer allows, always terminated. */
    alen = strnlen(p.addr, sizeof(p.addr));
    CHECK(alen < SMTP_ADDR_MAX);
    /* No controls, so no CR, LF or NUL reaches a log line or the engine. */
    for (size_t i = 0; i < alen; i++) {
        unsigned char ch = (unsigned char)p.addr[i];
        CHECK(ch >= 32 && ch != 127);
    }
    /* The address is a piece of what the client wrote. */
    if (alen > 0)
        CHECK(contains(args, len, p.addr, alen));
    if (p.has_size)
        CHECK(size_written(args, len, p.size));
    CHECK(!p.bad_param);

    /*
     * Written back as "KW<addr>", it parses to the same address. (One that
     * still starts with '@' had a second source route under the first; its
     * re-parse would strip that one too.)
     */
    if (p.addr[0] != '@') {
        size_t klen = strlen(kw), n = klen + alen + 2;
        char *re = malloc(n);
        struct smtp_path q;

        if (!re)
            abort();
        memcpy(re, kw, klen);
        re[klen] = '<';
        memcpy(re + klen + 1, p.addr, alen);
        re[n - 1] = '>';
        CHECK(smtp_path_parse(re, n, kw, &q) == PATH_OK);
        CHECK(strcmp(q.addr, p.addr) == 0);
        CHECK(!q.has_size);
        free(re);
    }
}

static void check_path(const char *args, size_t len)
{
    char *copy = dup_exact(args, len);

    check_path_kw(copy, len, "FROM:", "from:");
    check_path_kw(copy, len, "TO:", "tO:");
    dup_free(copy, len);
}

/* ---- one line ------------------------------------------------------------ */

static void check_one(const uint8_t *p, size_t n)
{
    char *line = dup_exact(p, n);
    size_t body = n;
    struct smtp_cmd c;

    check_line(line, n);
    /* What the session parses: the line without its CRLF. */
    if (body > 0 && line[body - 1] == '\n')
        body--;
    if (body > 0 && line[body - 1] == '\r')
        body--;
    dup_free(line, n);

    line = dup_exact(p, body);
    check_cmd(line, body);
    smtp_cmd_parse(line, body, &c);
    if (c.verb == VERB_MAIL || c.verb == VERB_RCPT ||
        c.verb == VERB_UNKNOWN)
        check_path(c.args, c.args_len);
    check_path(line, body);
    dup_free(line, body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t start = 0, lines = 0;

    check_verb_names();
    /* Whole input as one line: framing problems anywhere are reported. */
    check_one(data, size);
    /* Lines as the session cuts them: up to and including each LF. */
    for (size_t i = 0; i < size && lines < 64; i++) {
        if (data[i] != '\n')
            continue;
        if (start != 0 || i + 1 != size)
            check_one(data + start, i + 1 - start);
        start = i + 1;
        lines++;
    }
    if (start > 0 && start < size)
        check_one(data + start, size - start);
    return 0;
}
