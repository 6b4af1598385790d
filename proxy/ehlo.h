/*
 * ehlo: read a backend's EHLO capabilities and build the list Warden shows
 * its client.
 *
 * The filter is an allow-list: extensions that only add MAIL/RCPT
 * parameters or harmless commands are relayed as the backend announced
 * them; extensions whose commands Warden would not relay are removed.
 * CHUNKING is relayed when the session relays BDAT (relay_chunking).
 * STARTTLS is Warden's own (offered when a certificate is configured),
 * SIZE is the smaller of the backend's and Warden's limit, AUTH is hidden
 * before TLS when the config says so, and XCLIENT/XFORWARD are never shown.
 */
#ifndef WARDEN_EHLO_H
#define WARDEN_EHLO_H

#include <stdbool.h>
#include <stddef.h>

struct evbuffer;
struct smtp_reply;

struct smtp_caps {
    bool pipelining, starttls, chunking, smtputf8, eightbitmime, dsn;
    bool has_size;
    unsigned long long size;    /* 0: announced without a limit */
    bool auth;
    unsigned xclient;           /* XCLIENT attributes (enum xclient_attr) */
    bool xclient_announced;
};

/* Capabilities of a 250 EHLO reply (lines after the first). */
void smtp_caps_parse(const struct smtp_reply *ehlo, struct smtp_caps *out);

struct ehlo_view {
    bool offer_starttls;        /* add STARTTLS (ours) */
    bool hide_auth;             /* remove AUTH (before TLS) */
    bool relay_chunking;        /* keep the backend's CHUNKING (BDAT) */
    unsigned long long max_size;/* Warden's limit */
};

/* Build the client's EHLO reply from the backend's (a 250 reply). */
void ehlo_filter(const struct smtp_reply *backend, const struct ehlo_view *v,
                 struct evbuffer *out);

/* The SIZE both sides enforce: min(backend, ours), 0 meaning unlimited. */
unsigned long long ehlo_effective_size(const struct smtp_caps *c,
                                       unsigned long long ours);

#endif
