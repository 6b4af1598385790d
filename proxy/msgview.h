/*
 * msgview: a message decoded into what each kind of rule reads.
 *
 *   full      the message as received (dot-stuffing undone, LF line ends)
 *   fields    the header fields, raw and RFC 2047 decoded (on demand)
 *   body      the text a reader sees: every text part decoded from base64
 *             or quoted-printable, converted to UTF-8 from its charset,
 *             HTML reduced to text; the Subject first; whitespace
 *             collapsed and split into paragraphs, as SpamAssassin does
 *   rawbody   the lines of the text parts, transfer-decoded only (HTML
 *             tags kept, charset as sent: SpamAssassin's rawbody)
 *   uris      the URIs of text parts and HTML links (see uris.h)
 *
 * MIME is parsed by GMime 3. A view belongs to one thread; building one
 * is safe on any thread (GMime is initialised once, process-wide).
 * Bounded: the caller passes at most the bytes it wants scanned; parts
 * beyond MSGVIEW_MAX_PARTS or nested deeper than MSGVIEW_MAX_DEPTH are
 * not read.
 */
#ifndef WARDEN_MSGVIEW_H
#define WARDEN_MSGVIEW_H

#include <stdbool.h>
#include <stddef.h>

#include "rules.h"
#include "strv.h"

#define MSGVIEW_MAX_PARTS 500
#define MSGVIEW_MAX_DEPTH 20
/* header fields of MIME parts kept for mimeheader rules */
#define MSGVIEW_MAX_PART_FIELDS 2000

struct msgview_field {
    char *name;
    char *raw;     /* unfolded, leading blanks removed */
    char *decoded; /* RFC 2047 decoded; NULL until asked for */
};

struct msgview {
    struct buf full;
    struct msgview_field *fields;
    size_t nfields;
    /* the header fields of the MIME parts inside the message, in the
     * order they are parsed (the message's own are `fields`) */
    struct msgview_field *part_fields;
    size_t npart_fields;
    struct strv body;
    struct strv rawbody;
    struct strv uris;
    char *envelope_from; /* MAIL FROM, or NULL when not known */
    size_t nparts;       /* MIME leaves read */
};

/*
 * Decode msg[0..len) (CRLF line ends, as spooled; dot-stuffed when
 * dot_stuffed). envelope_from may be NULL. NULL only when out of memory.
 */
struct msgview *msgview_new(const char *msg, size_t len, bool dot_stuffed,
                            const char *envelope_from);
void msgview_free(struct msgview *mv);

/*
 * A field as a header rule reads it: every instance of the field (or of
 * the fields a special name stands for: ALL, ToCc, MESSAGEID,
 * EnvelopeFrom), each followed by "\n". NULL when the message has none.
 * The caller frees the result.
 */
char *msgview_header(struct msgview *mv, const char *field, enum header_mod mod,
                     size_t *len);

/*
 * A field as a mimeheader rule reads it: each instance in the message's
 * own header and in the header of every MIME part, one string each
 * (ending in "\n"), raw (HDR_RAW) or decoded (any other mod). Appended to
 * out; returns -1 when out of memory.
 */
int msgview_mime_header(struct msgview *mv, const char *field,
                        enum header_mod mod, struct strv *out);

#endif
