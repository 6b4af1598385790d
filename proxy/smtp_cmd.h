/*
 * smtp_cmd: parse one SMTP command line from a client.
 *
 * Pure functions over bytes, no I/O, so they can be fuzzed directly. The
 * session relays the client's line verbatim when it forwards a command;
 * these parsers exist to validate it and to tell the engine who is sending
 * to whom.
 */
#ifndef WARDEN_SMTP_CMD_H
#define WARDEN_SMTP_CMD_H

#include <stdbool.h>
#include <stddef.h>

enum smtp_verb {
    VERB_UNKNOWN,
    VERB_HELO, VERB_EHLO, VERB_MAIL, VERB_RCPT, VERB_DATA, VERB_BDAT,
    VERB_RSET, VERB_NOOP, VERB_QUIT, VERB_VRFY, VERB_EXPN, VERB_HELP,
    VERB_STARTTLS, VERB_AUTH, VERB_ETRN, VERB_XCLIENT, VERB_XFORWARD,
    VERB__COUNT
};

/* Problems with the line itself, checked before any parsing. */
enum smtp_line_problem {
    LINE_OK,
    LINE_NUL,        /* a NUL byte */
    LINE_BARE_CR,    /* a CR not followed by LF */
    LINE_BARE_LF,    /* terminated by LF without CR */
};

/*
 * line/len: one line including its terminating LF. Returns what is wrong
 * with its framing, LINE_OK for "...\r\n" with no NUL or stray CR.
 */
enum smtp_line_problem smtp_line_check(const char *line, size_t len);

struct smtp_cmd {
    enum smtp_verb verb;
    const char *args;   /* after the verb and one space; "" when none */
    size_t args_len;
};

/* Split a line (without CRLF) into verb and arguments. Case-insensitive. */
void smtp_cmd_parse(const char *line, size_t len, struct smtp_cmd *out);

const char *smtp_verb_name(enum smtp_verb v);

/* MAIL FROM / RCPT TO path and its ESMTP parameters. */
#define SMTP_ADDR_MAX 512

struct smtp_path {
    char addr[SMTP_ADDR_MAX]; /* without brackets; "" for <> */
    bool has_size;
    unsigned long long size;  /* MAIL SIZE= parameter */
    bool bad_param;           /* a parameter that is not keyword[=value] */
};

enum smtp_path_status {
    PATH_OK,
    PATH_SYNTAX,      /* not "FROM:" / "TO:" */
    PATH_BAD_ADDR,    /* the address is malformed */
    PATH_BAD_PARAM,   /* malformed ESMTP parameter */
};

/*
 * Parse the arguments of MAIL ("FROM:") or RCPT ("TO:"). Lenient where
 * Postfix is (a space after the colon, missing angle brackets), strict
 * where a mistake would confuse the next hop (unbalanced brackets,
 * spaces or controls inside the address, a bad SIZE value).
 */
enum smtp_path_status smtp_path_parse(const char *args, size_t len,
                                      const char *keyword,
                                      struct smtp_path *out);

#endif
