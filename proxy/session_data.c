/*
 * session_data: DATA, from the 354 to the final reply.
 *
 * The message is scanned (datascan: only CRLF.CRLF ends it) and spooled;
 * nothing reaches the backend until the client's final dot and the
 * end-of-data checkpoint. Then Warden sends its own DATA, streams the
 * message (with any headers the engine added) and relays the backend's
 * final reply: the client hears 250 only when the backend said 250.
 *
 * BDAT (RFC 3030) takes the same road: chunks are scanned and spooled as
 * they come (each answered 250 by Warden: that accepts a chunk, not the
 * message), and after BDAT LAST the message goes to the backend as one
 * "BDAT n LAST", whose reply is the final one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "backend.h"
#include "conn.h"
#include "config.h"
#include "log.h"
#include "metrics.h"
#include "session_int.h"
#include "smtp_reply.h"
#include "spool.h"

/* Keep at most this much message in the backend's output buffer. */
#define STREAM_HIGH_WATER (256 * 1024)
#define STREAM_CHUNK (64 * 1024)

static void data354_reply(struct session *s, struct smtp_reply *r,
                          struct slot *slot, unsigned txid, const char *data);
static void send_chunked(struct session *s);
static void end_of_message(struct session *s);
static void final_reply(struct session *s, struct smtp_reply *r,
                        struct slot *slot, unsigned txid, const char *data);

static void message_begin(struct session *s, bool chunked)
{
    const struct config *cfg = s->cfg;
    struct tx *tx = s->tx;
    unsigned long long max = s->size_limit ? s->size_limit
                                           : cfg->limits.max_message_size;
    bool normalize = cfg->bare_newline == BARE_NEWLINE_NORMALIZE;

    tx->spool = spool_new(cfg->limits.spool_memory, cfg->spool_dir);
    tx->scanned = evbuffer_new();
    if (!tx->spool || !tx->scanned)
        abort();
    tx->chunked = chunked;
    if (chunked)
        datascan_init_chunked(&tx->ds, normalize, cfg->limits.max_text_line,
                              (size_t)max);
    else
        datascan_init(&tx->ds, normalize, cfg->limits.max_text_line,
                      (size_t)max);
}

void data_begin(struct session *s)
{
    message_begin(s, false);
    s->state = S_DATA;
    reply_local(s, "354 End data with <CR><LF>.<CR><LF>");
}

/* Move what the scanner produced into the spool; a disk error is
 * remembered and answered 451 at the end of the message. */
static void spool_scanned(struct tx *tx)
{
    if (evbuffer_get_length(tx->scanned) > 0 && !tx->spool_error &&
        spool_append(tx->spool, tx->scanned) < 0)
        tx->spool_error = true;
    evbuffer_drain(tx->scanned, evbuffer_get_length(tx->scanned));
}

static void ignore_reply(struct session *s, struct smtp_reply *r,
                         struct slot *slot, unsigned txid, const char *data)
{
}

/* The backend holds MAIL and RCPTs for a message we refused: reset it. */
static void backend_reset(struct session *s)
{
    if (!s->be || !s->be_ready || s->be_lost)
        return;
    backend_write(s, "RSET\r\n", 6);
    expect_push(s, ignore_reply, NULL, 0, s->cfg->timeouts.backend_reply);
}

static const char *outcome_of(int code)
{
    return code < 400 ? "sent" : code < 500 ? "tempfail" : "refused";
}

/*
 * The transaction is over: back to commands (or goodbye when draining).
 * Returns the slot for the final reply. Call it before filling that slot:
 * filling may close the session, and the state must not be reset after.
 */
static struct slot *data_finished(struct session *s)
{
    struct slot *final = s->eom_slot;

    s->state = S_COMMAND;
    s->eom_slot = NULL;
    if (s->draining)
        reply_close(s, "421 4.3.2 %s Service shutting down",
                    s->cfg->hostname);
    return final;
}

/* Warden answers the final dot itself (refusal, failure). */
static void finish_local(struct session *s, const char *reply, bool reset)
{
    char line[512];
    int code = atoi(reply);

    snprintf(line, sizeof(line), "%s\r\n", reply);
    if (reset)
        backend_reset(s);
    tx_end(s, outcome_of(code), reply);
    slot_fill_str(s, data_finished(s), line);
}

static void refuse_message(struct session *s, unsigned why)
{
    char reply[160];

    if (why & DS_TOO_BIG)
        snprintf(reply, sizeof(reply),
                 "552 5.3.4 Error: message file too big");
    else if (why & DS_LONG_LINE)
        snprintf(reply, sizeof(reply),
                 "552 5.3.4 Error: message line longer than %zu octets",
                 s->cfg->limits.max_text_line);
    else if (why & DS_BARE_LF)
        snprintf(reply, sizeof(reply), "550 5.5.2 Error: bare <LF> received");
    else if (why & DS_BARE_CR)
        snprintf(reply, sizeof(reply), "550 5.5.2 Error: bare <CR> received");
    else
        snprintf(reply, sizeof(reply),
                 "550 5.6.0 Error: NUL character in message");
    log_info("session=%s reject: END-OF-MESSAGE from [%s]: %s; from=<%s>",
             s->id, s->client_ip, reply, s->tx->sender);
    metric_rejection("eom", "protocol");
    finish_local(s, reply, true);
}

static void eom_verdict(struct session *s)
{
    struct tx *tx = s->tx;
    struct verdict *v = &tx->eom;
    char reply[VERDICT_TEXT_MAX + 32];

    if (s->be_lost) {
        finish_local(s, "451 4.4.2 Error: backend connection lost", false);
        return;
    }
    if (v->action != VERDICT_ACCEPT) {
        snprintf(reply, sizeof(reply), "%d %s%s%s", v->code, v->enh,
                 v->enh[0] ? " " : "", v->text);
        log_info("session=%s reject: END-OF-MESSAGE from [%s]: %s; "
                 "from=<%s> check=%s",
                 s->id, s->client_ip, reply, tx->sender, v->check);
        metric_rejection("eom", v->check);
        if (v->disconnect)
            s->eom_slot->close_after = true;
        finish_local(s, reply, true);
        return;
    }
    if (tx->chunked) {
        send_chunked(s);
        return;
    }
    backend_write(s, "DATA\r\n", 6);
    expect_push(s, data354_reply, NULL, tx->id, s->cfg->timeouts.backend_reply);
}

static void eom_done(void *arg, struct verdict *v)
{
    struct session *s = arg;

    s->engine_wait = false;
    eom_verdict(s);
    session_resume(s);
}

/* The client's final dot. */
static void end_of_message(struct session *s)
{
    struct tx *tx = s->tx;
    unsigned refuse = datascan_refusal(&tx->ds);

    s->state = S_EOM;
    s->eom_slot = slot_new(s);
    if (s->be_lost) {
        finish_local(s, "451 4.4.2 Error: backend connection lost", false);
        return;
    }
    if (refuse) {
        refuse_message(s, refuse);
        return;
    }
    if (tx->spool_error) {
        finish_local(s, "451 4.3.0 Error: local error, try again later",
                     true);
        return;
    }
    ctx_refresh(s);
    s->ctx.message = tx->spool;
    s->ctx.message_dot_stuffed = !tx->chunked;
    s->ctx.message_size = spool_size(tx->spool);
    if (engine_run(s->es, CP_EOM, &s->ctx, &tx->eom, eom_done, s) ==
        ENGINE_PENDING) {
        s->engine_wait = true;
        return;
    }
    eom_verdict(s);
}

void data_input(struct session *s)
{
    struct evbuffer *in = conn_input(s->cc);
    struct tx *tx = s->tx;

    while (evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec v;
        bool done;

        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        size_t used = datascan_feed(&tx->ds, v.iov_base, v.iov_len,
                                    tx->scanned, &done);
        evbuffer_drain(in, used);
        spool_scanned(tx);
        if (done) {
            end_of_message(s);
            return;
        }
    }
}

/* Header bytes read to find fields to remove (a header block bigger than
 * this keeps fields beyond it). */
#define DROP_PEEK_MAX (256 * 1024)

/* Find the fields the engine asked to remove; returns their bytes. */
static size_t plan_drops(struct session *s)
{
    struct tx *tx = s->tx;
    size_t peek, bytes = 0;
    char *buf;

    if (tx->eom.remove.n == 0)
        return 0;
    if (!(buf = malloc(DROP_PEEK_MAX)))
        return 0;
    peek = spool_peek(tx->spool, buf, DROP_PEEK_MAX);
    tx->ndrop = msghdr_ranges(buf, peek, !tx->chunked, &tx->eom.remove,
                              tx->drop, TX_MAX_DROPS);
    free(buf);
    for (size_t i = 0; i < tx->ndrop; i++)
        bytes += tx->drop[i].len;
    if (tx->ndrop)
        log_info("session=%s tx=%u removed %zu header field%s", s->id, tx->id,
                 tx->ndrop, tx->ndrop == 1 ? "" : "s");
    return bytes;
}

/* Move what was read from the spool (at tx->stream_off) into out, leaving
 * out the ranges to drop. */
static void copy_kept(struct tx *tx, struct evbuffer *in, struct evbuffer *out)
{
    size_t n;

    while ((n = evbuffer_get_length(in)) > 0) {
        const struct msghdr_range *d;
        size_t off = tx->stream_off, keep = n;

        while (tx->next_drop < tx->ndrop &&
               tx->drop[tx->next_drop].off + tx->drop[tx->next_drop].len <= off)
            tx->next_drop++;
        if (tx->next_drop < tx->ndrop) {
            d = &tx->drop[tx->next_drop];
            if (off >= d->off) {
                size_t k = d->off + d->len - off;
                k = k < n ? k : n;
                evbuffer_drain(in, k);
                tx->stream_off += k;
                continue;
            }
            keep = d->off - off < n ? d->off - off : n;
        }
        evbuffer_remove_buffer(in, out, keep);
        tx->stream_off += keep;
    }
}

/* One chunk from the spool to out; fields to drop are left out. */
static ssize_t read_chunk(struct tx *tx, struct evbuffer *out)
{
    struct evbuffer *tmp;
    ssize_t n;

    if (tx->next_drop >= tx->ndrop)
        return spool_read(tx->spool, out, STREAM_CHUNK);
    if (!(tmp = evbuffer_new()))
        return -1;
    n = spool_read(tx->spool, tmp, STREAM_CHUNK);
    copy_kept(tx, tmp, out);
    evbuffer_free(tmp);
    return n;
}

/* Move the message into the backend's output, a bounded chunk at a time. */
static void stream_message(struct session *s)
{
    struct tx *tx = s->tx;
    struct evbuffer *out = backend_output(s->be);

    while (evbuffer_get_length(out) < STREAM_HIGH_WATER) {
        ssize_t n = read_chunk(tx, out);
        if (n < 0) {
            /* Half a message went out: only dropping the connection keeps
             * the backend from taking it. */
            s->be_lost = true;
            backend_kill(s->be);
            finish_local(s, "451 4.3.0 Error: local error, try again later",
                         false);
            return;
        }
        if (n == 0) {
            if (!tx->chunked)
                evbuffer_add(out, ".\r\n", 3);
            tx->streaming = false;
            expect_push(s, final_reply, NULL, tx->id,
                        s->cfg->timeouts.data_done);
            return;
        }
    }
    backend_notify_drain(s->be, STREAM_CHUNK);
}

void data_drained(struct session *s)
{
    if (s->state == S_EOM && s->tx && s->tx->streaming)
        stream_message(s);
}

static void add_headers(struct session *s)
{
    const struct header_list *h = &s->tx->eom.headers;

    for (size_t i = 0; i < h->n; i++)
        evbuffer_add_printf(backend_output(s->be), "%s\r\n", h->v[i]);
}

/* The whole message as one BDAT LAST: its reply is the final one. */
static void send_chunked(struct session *s)
{
    struct tx *tx = s->tx;
    size_t size = spool_size(tx->spool) - plan_drops(s);

    for (size_t i = 0; i < tx->eom.headers.n; i++)
        size += strlen(tx->eom.headers.v[i]) + 2;
    evbuffer_add_printf(backend_output(s->be), "BDAT %zu LAST\r\n", size);
    tx->data_sent = true;
    tx->streaming = true;
    add_headers(s);
    stream_message(s);
}

static void data354_reply(struct session *s, struct smtp_reply *r,
                          struct slot *slot, unsigned txid, const char *data)
{
    struct tx *tx = s->tx;
    char last[256];

    if (!tx || tx->id != txid || s->state != S_EOM)
        return;
    if (r->code != 354) {
        smtp_reply_last(r, last, sizeof(last));
        if (r->code < 400) {
            /* A 2xx to DATA means the backend took no message: relaying
             * it would tell the client 250 for mail that went nowhere. */
            log_warn("session=%s backend %s answered DATA with: %s", s->id,
                     backend_peer(s->be), last);
            metric_backend_error("other");
            finish_local(s, "451 4.3.0 Error: unexpected reply from the "
                            "backend",
                         true);
            return;
        }
        backend_reset(s);
        tx_end(s, outcome_of(r->code), last);
        relay_fill(s, data_finished(s), r);
        return;
    }
    tx->data_sent = true;
    tx->streaming = true;
    plan_drops(s);
    add_headers(s);
    stream_message(s);
}

static void final_reply(struct session *s, struct smtp_reply *r,
                        struct slot *slot, unsigned txid, const char *data)
{
    char last[256];

    if (!s->tx || s->tx->id != txid || s->state != S_EOM)
        return;
    tx_end(s, outcome_of(r->code), smtp_reply_last(r, last, sizeof(last)));
    relay_fill(s, data_finished(s), r);
}

void data_backend_lost(struct session *s)
{
    if (s->state != S_EOM || !s->eom_slot || s->engine_wait || !s->tx)
        return;
    finish_local(s, "451 4.4.2 Error: backend connection lost", false);
}

/* ---- BDAT ----------------------------------------------------------- */

/* A chunk was read in full: answer it, or finish the message. */
static void bdat_chunk_done(struct session *s)
{
    struct tx *tx = s->tx;

    s->state = S_COMMAND;
    if (s->bdat_error) {
        /* RFC 3030: a refused chunk fails the whole transaction. */
        if (tx) {
            backend_reset(s);
            tx_end(s, "refused", s->bdat_error);
        }
        reply_error(s, "%s", s->bdat_error);
        free(s->bdat_error);
        s->bdat_error = NULL;
        return;
    }
    if (!s->bdat_last) {
        reply_local(s, "250 2.0.0 Ok: %llu octets", s->bdat_size);
        return;
    }
    datascan_finish(&tx->ds, tx->scanned);
    spool_scanned(tx);
    end_of_message(s);
}

void bdat_begin(struct session *s, unsigned long long size, bool last,
                const char *error)
{
    s->bdat_size = s->bdat_left = size;
    s->bdat_last = last;
    free(s->bdat_error);
    s->bdat_error = error ? strdup(error) : NULL;
    if (!error && !s->tx->chunked)
        message_begin(s, true);
    s->state = S_BDAT;
    if (size == 0)
        bdat_chunk_done(s);
}

void bdat_input(struct session *s)
{
    struct evbuffer *in = conn_input(s->cc);
    struct tx *tx = s->tx;

    while (s->bdat_left > 0 && evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec v;
        bool done;

        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        size_t n = v.iov_len < s->bdat_left ? v.iov_len : s->bdat_left;
        if (!s->bdat_error) {
            datascan_feed(&tx->ds, v.iov_base, n, tx->scanned, &done);
            spool_scanned(tx);
        }
        evbuffer_drain(in, n);
        s->bdat_left -= n;
    }
    if (s->bdat_left == 0)
        bdat_chunk_done(s);
}
