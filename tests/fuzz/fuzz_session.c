/*
 * libFuzzer target for the session state machine (session*.c with conn.c
 * and backend.c underneath), fed an arbitrary client byte stream.
 *
 * The fixture is test_session.c's: one event loop, a real loopback TCP
 * connection for the client, and a scripted fake backend listening on
 * loopback. Everything static is built on the first call; each input gets
 * a fresh client connection and session, and ends with the session freed.
 *
 * Input layout (HDR bytes of controls, then what the client sends):
 *   [0] bits 0-2  backend script (enum fmode)
 *       bits 3-4  runtime variant (see make_runtime)
 *       bit 5     delayed greeting (sent after the client's first chunk)
 *       bit 6     multi-line replies from the backend
 *       bit 7     multi-line greeting
 *   [1] bits 0-3  commands before the backend's fault (FM_421, FM_DROP);
 *                 for FM_UNSOL, the client write after which it comes
 *       bits 4-5  backend EHLO style
 *       bits 6-7  refusal / final-reply pattern
 *   [2],[3]       four nibbles: the client's write sizes, cycled
 *                 (chunk_sizes[]; after MAX_CHUNKS writes the rest goes)
 *   [4] bit 0     the client ends with a reset instead of a half-close
 *       bit 1     the half-close follows the last write at once
 *       bit 2     slow backend: its replies wait until the client's next
 *                 write has been read (deeper pipelining)
 *       bit 3     session_shutdown() (SIGTERM drain) after the write
 *                 numbered by bits 4-6
 *       bit 7     the backend's replies trickle in, 1 to 3 bytes a write
 *
 * Checked for every input, beyond "no crash, no leak":
 *   - every line the client receives is an SMTP reply line: 3 digits 2xx
 *     to 5xx, ' ' or '-', text without CR/LF/NUL, CRLF; the lines of one
 *     reply share a code; a session that ends by itself ends on a
 *     complete reply; nothing follows a 221 or Warden's own 421;
 *   - promise 1, nothing lost: the reply to the end of DATA (the reply
 *     after Warden's 354) is 2xx only when it is the backend's own 250
 *     for a message it received; every "queued as" the client sees is one
 *     the backend sent, each once, in order (so the client's 250s for
 *     messages never outnumber the backend's);
 *   - the backend's command stream holds only commands Warden relays (no
 *     XCLIENT/XFORWARD or unknown verb from the client, no CR/LF/NUL in a
 *     line, no line over the limits), AUTH only outside a transaction and
 *     before a successful AUTH, no nested MAIL, DATA/BDAT only with a
 *     recipient accepted, at most max_recipients RCPTs per transaction;
 *   - no smuggling: message content reaching the backend has no bare
 *     CR, bare LF or NUL, no line or size over the limits, and (strict
 *     variants) is exactly the client's content from its "DATA" line to
 *     its own first CRLF.CRLF, message after message in input order, but
 *     for the forged Authentication-Results fields Warden must remove;
 *   - the client EOF ends the session by itself (the backend always
 *     answers or closes), and no session, connection or buffer leaks.
 *
 * FUZZ_SESSION_DEBUG=1 prints every transcript.
 *
 * Build and run: contrib/fuzz.sh --seconds 60 session
 * One input:     build-fuzz/tests/fuzz_session FILE
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <syslog.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "config.h"
#include "log.h"
#include "runtime.h"
#include "server.h"
#include "session.h"
#include "session_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond))                                                           \
            fail(__FILE__, __LINE__, "%s", #cond);                             \
    } while (0)
#define FAIL(...) fail(__FILE__, __LINE__, __VA_ARGS__)

#define HDR 5
#define MAX_CHUNKS 48
#define MAX_MSGS 64
#define MAX_IDS 256
#define REPLY_CAP (1u << 20)

/* ---- the script ---------------------------------------------------- */

enum fmode {
    FM_ACCEPT,     /* everything accepted */
    FM_REFUSE,     /* some MAIL/RCPT/AUTH refused, odd VRFY/EXPN/ETRN */
    FM_421,        /* after N commands: 421 to the next one, then close */
    FM_DROP,       /* after N commands: close at the next line, silently */
    FM_FINALS,     /* DATA and end-of-data answered 250/451/554 in turn */
    FM_UNSOL,      /* after the client's write N: unsolicited 421, close */
    FM_BADGREET,   /* greeting 554 (then 503 to all) or 421 (then close) */
    FM_NOGREET,    /* close at once: backend unavailable */
};

struct script {
    enum fmode mode;
    unsigned variant;
    bool delayed_greeting;
    bool multiline;
    bool multiline_greeting;
    unsigned fault_after;
    unsigned ehlo_style;
    unsigned pattern;
    unsigned char nib[4];
    bool client_rst;
    bool eof_at_once;
    bool slow_backend;
    bool shutdown;
    unsigned shutdown_at;
    bool trickle;
};

static const size_t chunk_sizes[16] = {1,  2,  3,  4,   5,   7,    9,   13,
                                       16, 24, 40, 64, 128, 512, 1500, 0};

/* ---- fixture ------------------------------------------------------- */

enum fstate { F_NONE, F_CMD, F_SASL, F_DATA, F_BDAT, F_GONE };

struct fake {
    int lfd;
    struct event *lev;
    int fd;
    struct event *rev, *wev;
    struct evbuffer *in, *out, *msg;
    enum fstate st;
    bool close_when_flushed;
    bool greeted;
    bool no_service;        /* greeted 554: 503 to everything */
    unsigned accepts;
    unsigned commands;
    bool in_tx, authed;
    unsigned mails, rcpt_lines, rcpt_ok, finals;
    unsigned sasl_left;
    unsigned trickle_step;
    size_t bdat_left, bdat_size;
    /* queue ids handed out with a final 250: 1 = DATA, 2 = BDAT */
    unsigned nids;
    unsigned char id_kind[MAX_IDS];
    /* DATA messages as received (strict variants), for the input check */
    char *msgs[MAX_MSGS];
    size_t msg_len[MAX_MSGS];
    unsigned nmsgs;
};

static struct {
    bool ready;
    struct event_base *base;
    struct event *tick;
    struct loop lp;
    struct runtime *rt[4];
    int cl_lfd;                 /* where client connections come from */
    struct fake fake;
    /* per input */
    struct script sc;
    const struct config *cfg;
    int client;
    bool client_eof;
    char *rbuf;                 /* everything the client received */
    size_t rlen;
    unsigned long long progress;
    bool hold;                  /* slow backend: replies wait */
    bool debug;                 /* FUZZ_SESSION_DEBUG: print transcripts */
} G;

static void fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;

    /* "check failed" is what contrib/fuzz.sh quotes from the log */
    fprintf(stderr, "%s:%d: check failed: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n  script: mode=%d variant=%u delayed=%d multiline=%d "
                    "fault_after=%u ehlo=%u pattern=%u\n",
            (int)G.sc.mode, G.sc.variant, G.sc.delayed_greeting,
            G.sc.multiline, G.sc.fault_after, G.sc.ehlo_style, G.sc.pattern);
    if (G.rbuf)
        fprintf(stderr, "  client received (%zu bytes):\n%.*s\n", G.rlen,
                (int)(G.rlen < 4000 ? G.rlen : 4000), G.rbuf);
    abort();
}

static void set_linger0(int fd)
{
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
}

/* Small writes go out at once: without this, Nagle holds the client's
 * and the fake's small writes for the peer's delayed ACK (40 ms). */
static void nodelay(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static void nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        FAIL("fcntl: %s", strerror(errno));
}

static int listen_loopback(int *port)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof(sin);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;

    if (fd < 0)
        FAIL("socket: %s", strerror(errno));
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
        listen(fd, 64) != 0 ||
        getsockname(fd, (struct sockaddr *)&sin, &len) != 0)
        FAIL("listen: %s", strerror(errno));
    if (port)
        *port = ntohs(sin.sin_port);
    return fd;
}

/* ---- the fake backend ---------------------------------------------- */

static void fake_flush(struct fake *f);

static void fake_close(struct fake *f, bool abortive)
{
    if (f->fd < 0)
        return;
    event_del(f->rev);
    event_del(f->wev);
    event_free(f->rev);
    event_free(f->wev);
    f->rev = f->wev = NULL;
    /* An abortive close leaves no TIME_WAIT on Warden's ephemeral port. */
    if (abortive)
        set_linger0(f->fd);
    close(f->fd);
    f->fd = -1;
    f->st = F_GONE;
    f->close_when_flushed = false;
    evbuffer_drain(f->out, evbuffer_get_length(f->out));
    G.progress++;
}

static void fake_add(struct fake *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void fake_add(struct fake *f, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    evbuffer_add_vprintf(f->out, fmt, ap);
    va_end(ap);
}

/* One reply; multi-line when the script says so (same code throughout). */
static void fake_reply(struct fake *f, int code, const char *text)
{
    if (G.sc.multiline && code != 354 && code != 334)
        fake_add(f, "%d-fake: first line of %d\r\n", code, code);
    fake_add(f, "%d %s\r\n", code, text);
}

static void fake_flush(struct fake *f)
{
    if (G.hold)
        return;
    while (f->fd >= 0 && evbuffer_get_length(f->out) > 0) {
        size_t n = evbuffer_get_length(f->out);
        bool piece = G.sc.trickle && n > 3;
        if (G.sc.trickle && n > 1 + f->trickle_step % 3)
            n = 1 + f->trickle_step++ % 3;
        const unsigned char *p = evbuffer_pullup(f->out, -1);
        ssize_t w = send(f->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
            evbuffer_drain(f->out, (size_t)w);
            G.progress += (size_t)w;
            if (piece) {
                event_add(f->wev, NULL); /* the rest in a later round */
                return;
            }
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            event_add(f->wev, NULL);
            return;
        }
        fake_close(f, true); /* Warden is gone */
        return;
    }
    if (f->fd >= 0 && f->close_when_flushed)
        fake_close(f, false);
}

static void fake_greet(struct fake *f)
{
    if (f->fd < 0 || f->greeted)
        return;
    f->greeted = true;
    if (G.sc.mode == FM_BADGREET) {
        if (G.sc.pattern & 1) {
            fake_add(f, "554 5.3.2 fake: no service here\r\n");
            f->no_service = true;
        } else {
            fake_add(f, "421 4.3.2 fake: greeting busy\r\n");
            f->close_when_flushed = true;
        }
    } else if (G.sc.multiline_greeting) {
        fake_add(f, "220-fake.test ESMTP\r\n220-second line\r\n"
                    "220 fake ready\r\n");
    } else {
        fake_add(f, "220 fake.test ESMTP fake\r\n");
    }
    fake_flush(f);
}

static bool has_ctl(const char *p, size_t n)
{
    return memchr(p, '\r', n) || memchr(p, '\n', n) || memchr(p, '\0', n);
}

static size_t cmd_limit(const char *line, size_t len)
{
    const struct limits_conf *l = &G.cfg->limits;

    if (len >= 5 && strncasecmp(line, "AUTH ", 5) == 0)
        return l->max_auth_line > l->max_command_line ? l->max_auth_line
                                                      : l->max_command_line;
    return l->max_command_line;
}

static bool verb_is(const char *line, size_t len, const char *verb)
{
    size_t n = strlen(verb);
    return len >= n && strncasecmp(line, verb, n) == 0 &&
           (len == n || line[n] == ' ');
}

/* Message content as the backend got it: the smuggling checks. */
static void check_content(const char *p, size_t n, bool bdat)
{
    const struct config *cfg = G.cfg;
    size_t line = 0, maxline = cfg->limits.max_text_line;
    size_t size = n;

    /* The limit is on the message, not its transport form: the dots that
     * stuff DATA lines do not count (RFC 1870, as datascan counts). */
    for (size_t i = 0; !bdat && i < n; i++)
        if (p[i] == '.' && (i == 0 || p[i - 1] == '\n'))
            size--;
    if (size > cfg->limits.max_message_size)
        FAIL("backend got a %zu-byte message, limit %zu", size,
             cfg->limits.max_message_size);
    if (cfg->bare_newline == BARE_NEWLINE_NORMALIZE)
        maxline++; /* a dot Warden stuffed in front of a new line */
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\0')
            FAIL("backend got a NUL in message content at %zu", i);
        if (p[i] == '\r' && (i + 1 >= n || p[i + 1] != '\n')) {
            if (i + 1 >= n && !bdat)
                FAIL("DATA content ends in a CR");
            FAIL("backend got a bare CR in message content at %zu", i);
        }
        if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r'))
            FAIL("backend got a bare LF in message content at %zu", i);
        line++;
        if (p[i] == '\n') {
            if (line > maxline)
                FAIL("backend got a %zu-octet message line, limit %zu", line,
                     maxline);
            line = 0;
        }
    }
    if (line > 0 && line + 2 > maxline)
        FAIL("backend got a %zu-octet unterminated last line", line);
    if (!bdat && n > 0 && (n < 2 || p[n - 2] != '\r' || p[n - 1] != '\n'))
        FAIL("DATA content does not end with CRLF");
}

static void final_reply(struct fake *f, bool bdat)
{
    unsigned which = (f->finals++ + G.sc.pattern) % 4;

    f->in_tx = false;
    f->st = F_CMD;
    if (G.sc.mode == FM_FINALS && which == 1) {
        fake_reply(f, 451, "4.3.0 fake: final try later");
        return;
    }
    if (G.sc.mode == FM_FINALS && which == 2) {
        fake_reply(f, 554, "5.7.1 fake: final rejected");
        return;
    }
    if (f->nids + 1 >= MAX_IDS) {
        fake_reply(f, 452, "4.3.1 fake: out of queue ids");
        return;
    }
    f->id_kind[++f->nids] = bdat ? 2 : 1;
    if (G.sc.multiline)
        fake_add(f, "250-fake: first line of 250\r\n");
    fake_add(f, "250 2.0.0 Ok: queued as FAKE%u%s\r\n", f->nids,
             bdat ? " (bdat)" : "");
}

static void end_of_data(struct fake *f)
{
    size_t n = evbuffer_get_length(f->msg);
    const char *p = (const char *)evbuffer_pullup(f->msg, -1);

    check_content(p, n, false);
    if (G.cfg->bare_newline == BARE_NEWLINE_REJECT && f->nmsgs < MAX_MSGS) {
        f->msgs[f->nmsgs] = malloc(n + 1);
        if (!f->msgs[f->nmsgs])
            abort();
        if (n)
            memcpy(f->msgs[f->nmsgs], p, n);
        f->msg_len[f->nmsgs++] = n;
    }
    evbuffer_drain(f->msg, n);
    final_reply(f, false);
}

static void end_of_bdat(struct fake *f)
{
    size_t n = evbuffer_get_length(f->msg);

    CHECK(n == f->bdat_size);
    check_content((const char *)evbuffer_pullup(f->msg, -1), n, true);
    evbuffer_drain(f->msg, n);
    final_reply(f, true);
}

static void auth_final(struct fake *f, const char *resp, size_t len)
{
    f->st = F_CMD;
    if (G.sc.mode == FM_REFUSE ||
        (len >= 3 && memmem(resp, len, "bad", 3) != NULL)) {
        fake_reply(f, 535, "5.7.8 fake: authentication failed");
        return;
    }
    f->authed = true;
    fake_reply(f, 235, "2.7.0 fake: authenticated");
}

static void fake_auth(struct fake *f, const char *line, size_t len)
{
    const char *a = line + 5, *end = line + len;
    const char *sp;
    size_t mlen;

    if (len <= 5)
        FAIL("AUTH without a mechanism reached the backend");
    sp = memchr(a, ' ', (size_t)(end - a));
    mlen = (size_t)((sp ? sp : end) - a);
    if (f->in_tx)
        FAIL("AUTH reached the backend inside a mail transaction");
    if (f->authed)
        FAIL("AUTH reached the backend after a successful AUTH");
    if (sp && sp + 1 < end) {
        if (sp[1] == '=' && end - sp == 2) {
            auth_final(f, "", 0);
            return;
        }
        auth_final(f, sp + 1, (size_t)(end - sp - 1));
        return;
    }
    if (mlen == 5 && strncasecmp(a, "PLAIN", 5) == 0) {
        f->st = F_SASL;
        f->sasl_left = 1;
        fake_add(f, "334 \r\n");
    } else if (mlen == 5 && strncasecmp(a, "LOGIN", 5) == 0) {
        f->st = F_SASL;
        f->sasl_left = 2;
        fake_add(f, "334 VXNlcm5hbWU6\r\n");
    } else {
        fake_reply(f, 504, "5.5.4 fake: mechanism not available");
    }
}

static void fake_sasl(struct fake *f, const char *line, size_t len)
{
    if (len + 2 > G.cfg->limits.max_auth_line)
        FAIL("backend got a %zu-octet SASL line", len + 2);
    if (len == 1 && line[0] == '*') {
        f->st = F_CMD;
        fake_reply(f, 501, "5.7.0 fake: authentication aborted");
        return;
    }
    if (--f->sasl_left > 0) {
        fake_add(f, "334 UGFzc3dvcmQ6\r\n");
        return;
    }
    auth_final(f, line, len);
}

static void fake_ehlo(struct fake *f)
{
    static const char *const styles[4] = {
        "250-fake.test\r\n250-PIPELINING\r\n250-SIZE 1000000\r\n"
        "250-8BITMIME\r\n250-AUTH PLAIN LOGIN\r\n250-STARTTLS\r\n"
        "250-XCLIENT ADDR NAME HELO\r\n250-ENHANCEDSTATUSCODES\r\n"
        "250-DSN\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n",
        "250 fake.test\r\n",
        "250-fake.test\r\n250-CHUNKING\r\n250-SIZE 2000\r\n"
        "250 PIPELINING\r\n",
        "250-fake.test\r\n250-XFORWARD NAME ADDR PROTO HELO\r\n"
        "250-SIZE\r\n250-ETRN\r\n250-auth=login plain\r\n250 chunking\r\n",
    };
    fake_add(f, "%s", styles[G.sc.ehlo_style & 3]);
}

static bool fault_now(const struct fake *f)
{
    return f->commands > G.sc.fault_after;
}

static void fake_command(struct fake *f, const char *line, size_t len)
{
    bool refuse = G.sc.mode == FM_REFUSE;

    if (len + 2 > cmd_limit(line, len))
        FAIL("backend got a %zu-octet command line: %.60s", len + 2, line);
    f->commands++;
    if ((G.sc.mode == FM_421) && fault_now(f)) {
        fake_add(f, "421 4.4.1 fake shutting down\r\n");
        f->close_when_flushed = true;
        f->st = F_GONE;
        return;
    }
    if (f->no_service) {
        if (verb_is(line, len, "QUIT")) {
            fake_add(f, "221 2.0.0 fake: bye\r\n");
            f->close_when_flushed = true;
            f->st = F_GONE;
        } else {
            fake_reply(f, 503, "5.5.1 fake: no service");
        }
        return;
    }
    if (verb_is(line, len, "EHLO") || verb_is(line, len, "HELO")) {
        f->in_tx = false;
        if (toupper((unsigned char)line[0]) == 'E')
            fake_ehlo(f);
        else
            fake_add(f, "250 fake.test\r\n");
    } else if (verb_is(line, len, "MAIL")) {
        if (f->in_tx)
            FAIL("nested MAIL reached the backend: %.60s", line);
        f->rcpt_lines = 0;
        f->rcpt_ok = 0;
        if (memmem(line, len, "bad", 3) ||
            (refuse && (f->mails + G.sc.pattern) % 3 == 0)) {
            fake_reply(f, 550, "5.7.1 fake: sender refused");
        } else {
            f->in_tx = true;
            fake_reply(f, 250, "2.1.0 fake: sender ok");
        }
        f->mails++;
    } else if (verb_is(line, len, "RCPT")) {
        if (++f->rcpt_lines > G.cfg->limits.max_recipients)
            FAIL("%u RCPTs reached the backend in one transaction, limit %u",
                 f->rcpt_lines, G.cfg->limits.max_recipients);
        if (!f->in_tx)
            fake_reply(f, 503, "5.5.1 fake: need MAIL command");
        else if (memmem(line, len, "bad", 3) ||
                 (refuse && (f->rcpt_lines + G.sc.pattern) % 2 == 0))
            fake_reply(f, 550, "5.1.1 fake: no such user");
        else if (refuse && f->rcpt_lines == 3)
            fake_reply(f, 452, "4.5.3 fake: too many recipients");
        else {
            f->rcpt_ok++;
            fake_reply(f, 250, "2.1.5 fake: recipient ok");
        }
    } else if (verb_is(line, len, "DATA")) {
        if (len != 4 || memcmp(line, "DATA", 4) != 0)
            FAIL("the client's DATA line reached the backend: %.60s", line);
        if (!f->in_tx || f->rcpt_ok == 0)
            FAIL("DATA reached the backend without an accepted MAIL and "
                 "RCPT (in_tx=%d rcpt_ok=%u)",
                 f->in_tx, f->rcpt_ok);
        if (G.sc.mode == FM_FINALS && (f->finals + G.sc.pattern) % 4 == 3) {
            f->finals++;
            fake_reply(f, (G.sc.pattern & 1) ? 554 : 451,
                       "fake: no DATA now");
        } else {
            f->st = F_DATA;
            fake_add(f, "354 fake: send data\r\n");
        }
    } else if (verb_is(line, len, "BDAT")) {
        char tail[8];
        unsigned long long n = 0;
        int used = 0;
        if (sscanf(line, "BDAT %llu %5s%n", &n, tail, &used) != 2 ||
            (size_t)used != len || strcmp(tail, "LAST") != 0)
            FAIL("the client's BDAT line reached the backend: %.60s", line);
        if (!f->in_tx || f->rcpt_ok == 0)
            FAIL("BDAT reached the backend without an accepted MAIL and "
                 "RCPT (in_tx=%d rcpt_ok=%u)",
                 f->in_tx, f->rcpt_ok);
        if (n > G.cfg->limits.max_message_size)
            FAIL("BDAT of %llu octets reached the backend", n);
        f->st = F_BDAT;
        f->bdat_left = f->bdat_size = (size_t)n;
        if (n == 0)
            end_of_bdat(f);
    } else if (verb_is(line, len, "RSET")) {
        f->in_tx = false;
        fake_reply(f, 250, "2.0.0 fake: reset");
    } else if (verb_is(line, len, "NOOP")) {
        fake_reply(f, 250, "2.0.0 fake: noop");
    } else if (verb_is(line, len, "QUIT")) {
        fake_add(f, "221 2.0.0 fake: bye\r\n");
        f->close_when_flushed = true;
        f->st = F_GONE;
        return;
    } else if (verb_is(line, len, "VRFY")) {
        fake_reply(f, refuse ? 502 : 252, "fake: cannot verify");
    } else if (verb_is(line, len, "EXPN")) {
        fake_reply(f, refuse ? 550 : 502, "fake: no expansion");
    } else if (verb_is(line, len, "HELP")) {
        fake_add(f, "214-fake: commands\r\n214-EHLO MAIL RCPT DATA\r\n"
                    "214 fake: end of help\r\n");
    } else if (verb_is(line, len, "ETRN")) {
        fake_reply(f, refuse ? 458 : 250, "fake: queue run");
    } else if (verb_is(line, len, "AUTH")) {
        fake_auth(f, line, len);
    } else if (verb_is(line, len, "XCLIENT") || verb_is(line, len, "XFORWARD")) {
        FAIL("the client's %.8s line reached the backend: %.60s", line, line);
    } else {
        FAIL("a command Warden never relays reached the backend: %.60s",
             line);
    }
}

/* FM_UNSOL: the backend gives up on its own (Postfix's idle timeout),
 * whatever Warden is doing; a reply still owed would take this 421. */
static void fake_unsolicited(struct fake *f)
{
    if (G.sc.mode != FM_UNSOL || f->fd < 0 || f->st == F_GONE || !f->greeted ||
        f->close_when_flushed)
        return;
    fake_add(f, "421 4.4.2 fake: idle timeout\r\n");
    f->close_when_flushed = true;
    f->st = F_GONE;
    fake_flush(f);
}

static void fake_process(struct fake *f)
{
    while (f->fd >= 0 && f->st != F_GONE && !f->close_when_flushed) {
        if (G.sc.mode == FM_DROP && fault_now(f)) {
            fake_close(f, false);
            return;
        }
        if (f->st == F_BDAT) {
            size_t avail = evbuffer_get_length(f->in);
            size_t n = avail < f->bdat_left ? avail : f->bdat_left;
            if (n == 0)
                return;
            evbuffer_remove_buffer(f->in, f->msg, n);
            f->bdat_left -= n;
            if (f->bdat_left == 0)
                end_of_bdat(f);
            continue;
        }
        size_t len;
        char *line = evbuffer_readln(f->in, &len, EVBUFFER_EOL_CRLF_STRICT);
        if (!line) {
            if (evbuffer_get_length(f->in) > 70000)
                FAIL("backend got %zu octets without a CRLF",
                     evbuffer_get_length(f->in));
            return;
        }
        switch (f->st) {
        case F_CMD:
            if (has_ctl(line, len))
                FAIL("backend got a command line with CR, LF or NUL");
            fake_command(f, line, len);
            break;
        case F_SASL:
            if (has_ctl(line, len))
                FAIL("backend got a SASL line with CR, LF or NUL");
            fake_sasl(f, line, len);
            break;
        case F_DATA:
            if (len == 1 && line[0] == '.') {
                end_of_data(f);
            } else {
                evbuffer_add(f->msg, line, len);
                evbuffer_add(f->msg, "\r\n", 2);
            }
            break;
        default:
            break;
        }
        free(line);
    }
}

static void fake_read_cb(evutil_socket_t fd, short what, void *arg)
{
    struct fake *f = arg;

    (void)what;
    for (;;) {
        char buf[16384];
        ssize_t r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (r > 0) {
            G.progress += (size_t)r;
            if (f->st != F_GONE)
                evbuffer_add(f->in, buf, (size_t)r);
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        /* EOF or error: Warden closed its side. */
        fake_process(f);
        if ((f->st == F_CMD || f->st == F_SASL) && evbuffer_get_length(f->in))
            FAIL("the backend was left with half a command line");
        fake_flush(f);
        fake_close(f, true);
        return;
    }
    fake_process(f);
    fake_flush(f);
}

static void fake_write_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    fake_flush(arg);
}

static void fake_accept_cb(evutil_socket_t lfd, short what, void *arg)
{
    struct fake *f = arg;

    (void)what;
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        G.progress++;
        if (++f->accepts > 1 || f->fd >= 0)
            FAIL("a second backend connection for one session");
        f->fd = fd;
        f->st = F_CMD;
        nodelay(fd);
        f->rev = event_new(G.base, fd, EV_READ | EV_PERSIST, fake_read_cb, f);
        f->wev = event_new(G.base, fd, EV_WRITE, fake_write_cb, f);
        if (!f->rev || !f->wev)
            abort();
        event_add(f->rev, NULL);
        if (G.sc.mode == FM_NOGREET) {
            fake_close(f, false);
            continue;
        }
        if (!G.sc.delayed_greeting)
            fake_greet(f);
    }
}

static void fake_reset(struct fake *f)
{
    struct evbuffer *in = f->in, *out = f->out, *msg = f->msg;
    int lfd = f->lfd;
    struct event *lev = f->lev;

    for (unsigned i = 0; i < f->nmsgs; i++)
        free(f->msgs[i]);
    evbuffer_drain(in, evbuffer_get_length(in));
    evbuffer_drain(out, evbuffer_get_length(out));
    evbuffer_drain(msg, evbuffer_get_length(msg));
    memset(f, 0, sizeof(*f));
    f->in = in;
    f->out = out;
    f->msg = msg;
    f->lfd = lfd;
    f->lev = lev;
    f->fd = -1;
}

/* ---- setup --------------------------------------------------------- */

/*
 * Four configurations, chosen per input:
 *   0  strict, small limits (message 3000, 3 recipients and 2 more 452s
 *      before each counts as an error, 5 errors)
 *   1  bare newlines normalised, tiny lines, pipeline of 4, defer mode
 *   2  PROXY header expected from 127.0.0.0/8 (the client is there)
 *   3  strict, defer mode, one reply in flight at most, 3 errors
 * All have the fake backend, identity none, no DNS, log level error and
 * a spool that spills to a file after a few hundred bytes.
 */
static struct runtime *make_runtime(unsigned variant, int port)
{
    struct errors errs = {0};
    struct config *cfg = config_defaults();
    const char *tmp = getenv("TMPDIR");
    struct runtime *rt;
    char addr[32];

    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    if (netaddr_parse(addr, -1, &cfg->backend.addrs[0], NULL, 0) != 0)
        FAIL("netaddr_parse %s", addr);
    cfg->backend.naddrs = 1;
    cfg->backend.identity = IDENTITY_NONE;
    cfg->dns.resolve_client = false;
    cfg->log.level = LOG_ERR;
    free(cfg->hostname);
    cfg->hostname = strdup("warden.test");
    free(cfg->spool_dir);
    cfg->spool_dir = strdup(tmp && *tmp ? tmp : "/tmp");
    if (!cfg->hostname || !cfg->spool_dir)
        abort();
    cfg->limits.max_errors = 5;
    cfg->limits.max_message_size = 3000;
    cfg->limits.max_recipients = 3;
    cfg->limits.recipient_overshoot = 2;
    cfg->limits.spool_memory = 300;
    cfg->limits.max_text_line = 1000;
    switch (variant) {
    case 1:
        cfg->bare_newline = BARE_NEWLINE_NORMALIZE;
        cfg->backend.on_unavailable = BACKEND_DOWN_DEFER;
        cfg->limits.max_errors = 8;
        cfg->limits.max_message_size = 65536;
        cfg->limits.max_recipients = 5;
        cfg->limits.spool_memory = 64;
        cfg->limits.max_pipeline = 4;
        cfg->limits.max_text_line = 80;
        cfg->limits.max_command_line = 100;
        cfg->limits.max_auth_line = 200;
        break;
    case 2: {
        struct cidr c;
        cfg->listeners[0].proxy_protocol = true;
        if (cidr_parse("127.0.0.0/8", &c, NULL, 0) != 0 ||
            cidr_list_add(&cfg->trusted_proxies, &c) != 0)
            FAIL("cidr");
        break;
    }
    case 3:
        cfg->backend.on_unavailable = BACKEND_DOWN_DEFER;
        cfg->limits.max_errors = 3;
        cfg->limits.max_pipeline = 1;
        cfg->limits.max_recipients = 2;
        break;
    default:
        break;
    }
    rt = runtime_new(cfg, &errs);
    if (!rt) {
        errors_print(&errs, stderr);
        FAIL("runtime_new");
    }
    errors_free(&errs);
    return rt;
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

static void setup(void)
{
    struct fake *f = &G.fake;
    int port;

    signal(SIGPIPE, SIG_IGN);
    G.base = event_base_new();
    if (!G.base)
        abort();
    G.lp.base = G.base;
    G.tick = evtimer_new(G.base, tick_cb, NULL);
    f->in = evbuffer_new();
    f->out = evbuffer_new();
    f->msg = evbuffer_new();
    if (!G.tick || !f->in || !f->out || !f->msg)
        abort();
    f->lfd = listen_loopback(&port);
    nonblock(f->lfd);
    f->lev = event_new(G.base, f->lfd, EV_READ | EV_PERSIST, fake_accept_cb, f);
    if (!f->lev)
        abort();
    event_add(f->lev, NULL);
    f->fd = -1;
    for (unsigned v = 0; v < 4; v++)
        G.rt[v] = make_runtime(v, port);
    log_setup(&G.rt[0]->cfg->log);
    G.cl_lfd = listen_loopback(NULL);
    nonblock(G.cl_lfd);
    G.rbuf = malloc(REPLY_CAP);
    if (!G.rbuf)
        abort();
    G.debug = getenv("FUZZ_SESSION_DEBUG") != NULL;
    G.ready = true;
}

/* ---- driving the loop ---------------------------------------------- */

static void client_drain(void)
{
    while (G.client >= 0 && !G.client_eof) {
        char sink[4096];
        char *dst = G.rlen < REPLY_CAP ? G.rbuf + G.rlen : sink;
        size_t room = G.rlen < REPLY_CAP ? REPLY_CAP - G.rlen : sizeof(sink);
        ssize_t r = recv(G.client, dst, room, MSG_DONTWAIT);
        if (r > 0) {
            if (dst != sink)
                G.rlen += (size_t)r;
            G.progress += (size_t)r;
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        G.client_eof = true; /* EOF, or reset */
        G.progress++;
    }
}

/* Run the loop until nothing moves for two rounds (bounded). */
static void pump(void)
{
    int idle = 0;

    for (int i = 0; i < 300 && idle < 2; i++) {
        unsigned long long before = G.progress;
        event_base_loop(G.base, EVLOOP_NONBLOCK);
        client_drain();
        idle = G.progress == before ? idle + 1 : 0;
    }
}

static long long ms_now(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* Wait up to ms for the session to end by itself. */
static bool wait_gone(long long ms)
{
    long long deadline = ms_now() + ms;

    for (;;) {
        /* a backend Warden connects to only now (after a PROXY header
         * that came with the client's last write) still greets */
        fake_greet(&G.fake);
        pump();
        if (G.lp.nsessions == 0)
            return true;
        if (ms_now() > deadline)
            return false;
        struct timeval tv = {0, 1000};
        event_add(G.tick, &tv);
        event_base_loop(G.base, EVLOOP_ONCE);
        event_del(G.tick);
        client_drain();
    }
}

static void client_send(const uint8_t *p, size_t n)
{
    int stuck = 0;

    while (n > 0 && !G.client_eof && stuck < 20) {
        ssize_t w = send(G.client, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            G.progress += (size_t)w;
            stuck = 0;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            return; /* Warden closed the connection */
        stuck++;
        pump();
    }
}

/* A connected pair over loopback. The session's end is the connecting
 * one, so Warden's ephemeral ports never wait in TIME_WAIT. */
static int new_pair(int *client, struct sockaddr_in *peer, socklen_t *plen)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof(sin);
    int sfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    /* Non-blocking throughout: libFuzzer's SIGALRM interrupts blocking
     * calls (EINTR). On loopback the handshake is done at once. */
    if (sfd < 0 || getsockname(G.cl_lfd, (struct sockaddr *)&sin, &len) != 0 ||
        (connect(sfd, (struct sockaddr *)&sin, sizeof(sin)) != 0 &&
         errno != EINPROGRESS && errno != EINTR))
        FAIL("connect: %s", strerror(errno));
    for (int i = 0;; i++) {
        struct pollfd pfd = {G.cl_lfd, POLLIN, 0};
        *client = accept4(G.cl_lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (*client >= 0)
            break;
        if ((errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) ||
            i > 1000)
            FAIL("accept: %s", strerror(errno));
        poll(&pfd, 1, 10);
    }
    for (int i = 0;; i++) {
        struct pollfd pfd = {sfd, POLLOUT, 0};
        int err = 0;
        socklen_t elen = sizeof(err);
        if (poll(&pfd, 1, 10) == 1) {
            if (getsockopt(sfd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0 || err)
                FAIL("connect: %s", strerror(err ? err : errno));
            break;
        }
        if (i > 1000)
            FAIL("connect: no completion");
    }
    nodelay(*client);
    *plen = sizeof(*peer);
    getpeername(sfd, (struct sockaddr *)peer, plen);
    return sfd;
}

/* ---- the client's view --------------------------------------------- */

static bool is_warden_354(const char *r, size_t n)
{
    static const char t[] = "354 End data with <CR><LF>.<CR><LF>\r\n";
    return n == sizeof(t) - 1 && memcmp(r, t, n) == 0;
}

static void check_capability(const char *line, size_t n)
{
    static const char *const hidden[] = {"XCLIENT", "XFORWARD", "STARTTLS"};

    for (size_t i = 0; i < sizeof(hidden) / sizeof(hidden[0]); i++) {
        size_t k = strlen(hidden[i]);
        if (n >= 4 + k && line[0] == '2' && strncasecmp(line + 4, hidden[i], k) == 0 &&
            (n == 4 + k || line[4 + k] == ' '))
            FAIL("EHLO capability %s shown to the client", hidden[i]);
    }
}

static void check_client_stream(bool ended_by_itself)
{
    const char *b = G.rbuf;
    size_t n = G.rlen, pos = 0, rstart = 0;
    int code = -1;             /* of the reply being read */
    bool after_354 = false, closed = false;
    unsigned last_id = 0;

    if (n >= REPLY_CAP)
        return; /* over the cap: lines were dropped, nothing to say */
    while (pos < n) {
        const char *line = b + pos;
        const char *crlf = memmem(line, n - pos, "\r\n", 2);
        size_t len;

        if (!crlf) {
            if (ended_by_itself)
                FAIL("the session ended in the middle of a reply line");
            return; /* aborted: a reply may have been cut */
        }
        len = (size_t)(crlf - line);
        if (closed)
            FAIL("a reply after a closing 221/421");
        if (len < 4 || line[0] < '2' || line[0] > '5' || line[1] < '0' ||
            line[1] > '9' || line[2] < '0' || line[2] > '9' ||
            (line[3] != ' ' && line[3] != '-'))
            FAIL("malformed reply line at %zu: \"%.*s\"", pos,
                 (int)(len < 80 ? len : 80), line);
        if (has_ctl(line, len))
            FAIL("a CR, LF or NUL inside a reply line at %zu", pos);
        int c = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
        if (code >= 0 && c != code)
            FAIL("a multi-line reply changes code at %zu", pos);
        check_capability(line, len);
        if (len >= 19 && memcmp(line, "354 fake: send data", 19) == 0)
            FAIL("the backend's 354 reached the client");
        pos += len + 2;
        if (line[3] == '-') {
            if (code < 0)
                rstart = (size_t)(line - b);
            code = c;
            continue;
        }
        if (code < 0)
            rstart = (size_t)(line - b);
        code = -1;

        /* A complete reply: b[rstart, pos). */
        const char *r = b + rstart;
        size_t rlen = pos - rstart;
        const char *q = memmem(line, len, "queued as FAKE", 14);
        unsigned id = 0;
        if (q) {
            id = (unsigned)strtoul(q + 14, NULL, 10);
            if (c != 250 || id == 0 || id > G.fake.nids ||
                G.fake.id_kind[id] == 0)
                FAIL("the client got a \"queued as\" the backend never sent");
            if (id <= last_id)
                FAIL("the backend's 250 for message %u reached the client "
                     "twice or out of order",
                     id);
            last_id = id;
        }
        if (after_354) {
            after_354 = false;
            if (c / 100 == 2 && (!q || G.fake.id_kind[id] != 1))
                FAIL("250 for the end of DATA without the backend's 250 "
                     "for that message: \"%.*s\"",
                     (int)(len < 80 ? len : 80), line);
        }
        if (is_warden_354(r, rlen))
            after_354 = true;
        if (c == 221 ||
            (c == 421 && !memmem(line, len, "fake shutting down", 18) &&
             !memmem(line, len, "fake: idle timeout", 18)))
            closed = true;
    }
    if (code >= 0 && ended_by_itself)
        FAIL("the session ended inside a multi-line reply");
}

/* The header field (with its continuation lines) at c[0, n), as the
 * client sent it (dot-stuffed): its length, 0 at the empty line or end. */
static size_t field_len(const char *c, size_t n)
{
    const char *crlf = memmem(c, n, "\r\n", 2);
    size_t len;

    if (!crlf || crlf == c)
        return 0;
    len = (size_t)(crlf - c) + 2;
    while (len < n && (c[len] == ' ' || c[len] == '\t')) {
        crlf = memmem(c + len, n - len, "\r\n", 2);
        if (!crlf)
            return n;
        len = (size_t)(crlf - c) + 2;
    }
    return len;
}

/* A field Warden may drop: an Authentication-Results field (Warden
 * removes those that claim its authserv-id, RFC 8601 5). *forged: the
 * plain form of such a claim, which it must drop. *named: the field has
 * a well-formed name (Warden's header scan stops at the first that has
 * not). */
static bool is_authres(const char *c, size_t n, bool *forged, bool *named)
{
    static const char name[] = "Authentication-Results:";
    static const char ours[] = "warden.test";
    size_t i = c[0] == '.' ? 1 : 0, k = i, nl = sizeof(name) - 1;

    while (k < n && (unsigned char)c[k] > ' ' && (unsigned char)c[k] < 127 &&
           c[k] != ':')
        k++;
    *named = k > i && k < n && c[k] == ':';
    *forged = false;
    if (n - i < nl || strncasecmp(c + i, name, nl) != 0)
        return false;
    i += nl;
    while (i < n && (c[i] == ' ' || c[i] == '\t'))
        i++;
    if (n - i > sizeof(ours) - 1 &&
        strncasecmp(c + i, ours, sizeof(ours) - 1) == 0 &&
        strchr("; \t\r(", c[i + sizeof(ours) - 1]))
        *forged = true;
    return true;
}

/* Is m the client's content c, less some Authentication-Results fields
 * of its header and with every forged one gone? */
static bool same_content(const char *c, size_t cn, const char *m, size_t ml)
{
    size_t i = 0, j = 0;
    bool named = true;

    for (size_t len; (len = field_len(c + i, cn - i)) > 0; i += len) {
        bool forged, ok_name, ar = is_authres(c + i, len, &forged, &ok_name);

        named = named && ok_name;
        if (ml - j >= len && memcmp(m + j, c + i, len) == 0) {
            if (forged && named)
                return false; /* a forged field went through */
            j += len;
        } else if (!ar) {
            return false;
        }
    }
    return cn - i == ml - j && memcmp(c + i, m + j, ml - j) == 0;
}

/* Each DATA message the backend got is the client's own content, from
 * its DATA line up to its first CRLF.CRLF, in order (strict mode), less
 * the forged Authentication-Results fields Warden removes. */
static void check_messages(const uint8_t *in, size_t n)
{
    const struct fake *f = &G.fake;
    size_t from = 0;

    for (unsigned i = 0; i < f->nmsgs; i++) {
        const char *m = f->msgs[i];
        size_t ml = f->msg_len[i];
        bool found = false;

        for (size_t p = from > 6 ? from : 6; p + 3 <= n && !found; p++) {
            const char *c = (const char *)in + p, *end;
            size_t cn;

            if (in[p - 1] != '\n')
                continue;
            if (!(strncasecmp(c - 6, "DATA\r\n", 6) == 0 ||
                  (p >= 7 && strncasecmp(c - 7, "DATA \r\n", 7) == 0)))
                continue;
            if (memcmp(c, ".\r\n", 3) == 0) {
                cn = 0;
            } else {
                end = memmem(c, n - p, "\r\n.\r\n", 5);
                if (!end)
                    continue;
                cn = (size_t)(end - c) + 2;
            }
            if (!same_content(c, cn, m, ml))
                continue;
            found = true;
            from = p + cn + 3;
        }
        if (!found)
            FAIL("message %u (%zu octets) reached the backend but is not "
                 "the client's DATA content up to its CRLF.CRLF",
                 i + 1, ml);
        if (ml >= 3 && memmem(m, ml, "\r\n.\r\n", 5) != NULL)
            FAIL("message %u holds a CRLF.CRLF", i + 1);
    }
}

/* ---- one input ----------------------------------------------------- */

/* Close backend connections nobody accepted (a session that ended before
 * the fake saw its connection), so none is taken for the next session. */
static void drain_backlog(void)
{
    for (;;) {
        int fd = accept4(G.fake.lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0 && errno == EINTR)
            continue;
        if (fd < 0)
            return;
        set_linger0(fd);
        close(fd);
    }
}

static void parse_script(const uint8_t *h)
{
    G.sc.mode = (enum fmode)(h[0] & 7);
    G.sc.variant = (h[0] >> 3) & 3;
    G.sc.delayed_greeting = (h[0] & 0x20) != 0;
    G.sc.multiline = (h[0] & 0x40) != 0;
    G.sc.multiline_greeting = (h[0] & 0x80) != 0;
    G.sc.fault_after = h[1] & 15;
    G.sc.ehlo_style = (h[1] >> 4) & 3;
    G.sc.pattern = h[1] >> 6;
    G.sc.nib[0] = h[2] & 15;
    G.sc.nib[1] = h[2] >> 4;
    G.sc.nib[2] = h[3] & 15;
    G.sc.nib[3] = h[3] >> 4;
    G.sc.client_rst = (h[4] & 1) != 0;
    G.sc.eof_at_once = (h[4] & 2) != 0;
    G.sc.slow_backend = (h[4] & 4) != 0;
    G.sc.shutdown = (h[4] & 8) != 0;
    G.sc.shutdown_at = (h[4] >> 4) & 7;
    G.sc.trickle = (h[4] & 0x80) != 0;
}

static void drain_now(void)
{
    if (G.lp.sessions)
        session_shutdown(G.lp.sessions);
    G.sc.shutdown = false;
}

static void dump_session(void)
{
    const struct session *s = G.lp.sessions;

    if (!s)
        return;
    fprintf(stderr, "  session: state=%d qlen=%u elen=%u engine_wait=%d "
                    "be_ready=%d be_lost=%d client_eof=%d tx=%p barrier=%d "
                    "fake.st=%d fake.fd=%d\n",
            (int)s->state, s->qlen, s->elen, s->engine_wait, s->be_ready,
            s->be_lost, s->client_eof, (void *)s->tx, s->barrier,
            (int)G.fake.st, G.fake.fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sockaddr_in peer;
    socklen_t plen;
    const uint8_t *p;
    size_t left;
    int sfd;
    bool by_itself;

    if (!G.ready)
        setup();
    if (size < HDR)
        return 0;
    parse_script(data);
    G.cfg = G.rt[G.sc.variant]->cfg;
    G.lp.rt = G.rt[G.sc.variant];
    fake_reset(&G.fake);
    drain_backlog();
    G.rlen = 0;
    G.client_eof = false;

    sfd = new_pair(&G.client, &peer, &plen);
    if (!session_new(&G.lp, G.lp.rt, &G.cfg->listeners[0], sfd,
                     (struct sockaddr *)&peer, (int)plen))
        FAIL("session_new failed");
    pump();

    p = data + HDR;
    left = size - HDR;
    for (unsigned i = 0; left > 0 && !G.client_eof; i++) {
        size_t n = chunk_sizes[G.sc.nib[i % 4]];
        if (n == 0 || n > left || i + 1 >= MAX_CHUNKS)
            n = left;
        G.hold = G.sc.slow_backend;
        client_send(p, n);
        p += n;
        left -= n;
        if (left == 0 && G.sc.eof_at_once)
            break;
        pump();
        G.hold = false;
        fake_flush(&G.fake);
        pump();
        if (i == 0 && G.sc.delayed_greeting) {
            fake_greet(&G.fake);
            pump();
        }
        if (i == G.sc.fault_after) {
            fake_unsolicited(&G.fake);
            pump();
        }
        if (G.sc.shutdown && i == G.sc.shutdown_at) {
            drain_now();
            pump();
        }
    }
    G.hold = false;
    fake_flush(&G.fake);
    if (!G.sc.eof_at_once) {
        fake_greet(&G.fake);
        if (G.sc.shutdown)
            drain_now();
        pump();
    }

    /* The client is done: half-close (or reset), and the session must end
     * by itself once it has answered what it was sent. */
    if (G.sc.client_rst) {
        set_linger0(G.client);
        close(G.client);
        G.client = -1;
        G.client_eof = true;
    } else if (!G.client_eof) {
        shutdown(G.client, SHUT_WR);
    }
    fake_greet(&G.fake);
    fake_unsolicited(&G.fake);
    if (G.sc.shutdown)
        drain_now();
    by_itself = wait_gone(3000);
    if (!by_itself) {
        dump_session();
        FAIL("the session outlived its client by 3 s with a live backend");
    }
    CHECK(G.lp.nsessions == 0 && G.lp.sessions == NULL);
    client_drain();

    /* Connections left over: close them without TIME_WAIT. */
    pump();
    if (G.client >= 0) {
        set_linger0(G.client);
        close(G.client);
        G.client = -1;
    }
    fake_close(&G.fake, true);
    drain_backlog();

    if (G.debug)
        fprintf(stderr, "--- mode=%d variant=%u: backend saw %u commands, "
                        "%u messages, %u queue ids; client got:\n%.*s",
                (int)G.sc.mode, G.sc.variant, G.fake.commands, G.fake.finals,
                G.fake.nids, (int)G.rlen, G.rbuf);
    check_client_stream(by_itself && !G.sc.client_rst);
    if (G.cfg->bare_newline == BARE_NEWLINE_REJECT)
        check_messages(data + HDR, size - HDR);
    for (unsigned i = 0; i < G.fake.nmsgs; i++) {
        free(G.fake.msgs[i]);
        G.fake.msgs[i] = NULL;
    }
    G.fake.nmsgs = 0;
    return 0;
}
