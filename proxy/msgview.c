/*
 * msgview: decoding a message for the scorer, with GMime 3 for the MIME
 * structure, transfer encodings, charsets and address lists (see the
 * header for the views).
 */
#include "msgview.h"

#include <gmime/gmime.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "htmltext.h"
#include "msghdr.h"
#include "uris.h"

/* SpamAssassin's MAX_BODY_LINE_LENGTH: longer paragraphs are split. */
#define PARAGRAPH_MAX 2048

static pthread_once_t gmime_once = PTHREAD_ONCE_INIT;
static GMimeParserOptions *parser_opts;

static void unstuff_crlf(const char *msg, size_t len, bool dot_stuffed,
                         struct buf *out);
static int read_fields(struct msgview *mv, const char *msg, size_t len);
static void read_mime(struct msgview *mv, const char *msg, size_t len,
                      struct buf *text);
static void paragraphs(const char *text, size_t len, struct strv *out);

/* GMime once per process. Fallback charsets: undeclared 8-bit text is
 * UTF-8 when it is valid, else the Windows Latin-1 most such mail is. */
static void gmime_setup(void)
{
    static const char *fallback[] = {"UTF-8", "windows-1252", NULL};

    g_mime_init();
    parser_opts = g_mime_parser_options_new();
    g_mime_parser_options_set_rfc2047_compliance_mode(
        parser_opts, GMIME_RFC_COMPLIANCE_LOOSE);
    g_mime_parser_options_set_address_compliance_mode(
        parser_opts, GMIME_RFC_COMPLIANCE_LOOSE);
    g_mime_parser_options_set_parameter_compliance_mode(
        parser_opts, GMIME_RFC_COMPLIANCE_LOOSE);
    g_mime_parser_options_set_fallback_charsets(parser_opts, fallback);
}

struct msgview *msgview_new(const char *msg, size_t len, bool dot_stuffed,
                            const char *envelope_from)
{
    struct msgview *mv = calloc(1, sizeof(*mv));
    struct buf crlf = {0}, text = {0};

    pthread_once(&gmime_once, gmime_setup);
    if (!mv)
        return NULL;
    if (envelope_from && !(mv->envelope_from = strdup(envelope_from)))
        goto fail;
    unstuff_crlf(msg, len, dot_stuffed, &crlf);
    if (!crlf.p && buf_add(&crlf, "", 0) != 0)
        goto fail;
    /* full: LF line ends, as SpamAssassin reads a message */
    for (size_t i = 0; i < crlf.n; i++)
        if (!(crlf.p[i] == '\r' && i + 1 < crlf.n && crlf.p[i + 1] == '\n') &&
            buf_addc(&mv->full, crlf.p[i]) != 0)
            goto fail;
    if (!mv->full.p && buf_add(&mv->full, "", 0) != 0)
        goto fail;
    if (read_fields(mv, crlf.p, crlf.n) != 0)
        goto fail;
    /* body: the Subject is its first line */
    char *subject = msgview_header(mv, "Subject", HDR_DECODED, NULL);
    buf_add(&text, subject ? subject : "\n", subject ? strlen(subject) : 1);
    free(subject);
    read_mime(mv, crlf.p, crlf.n, &text);
    paragraphs(text.p, text.n, &mv->body);
    uris_from_text(text.p, text.n, &mv->uris);
    buf_free(&crlf);
    buf_free(&text);
    return mv;
fail:
    buf_free(&crlf);
    buf_free(&text);
    msgview_free(mv);
    return NULL;
}

static void fields_free(struct msgview_field *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].name);
        free(v[i].raw);
        g_free(v[i].decoded);
    }
    free(v);
}

void msgview_free(struct msgview *mv)
{
    if (!mv)
        return;
    buf_free(&mv->full);
    fields_free(mv->fields, mv->nfields);
    fields_free(mv->part_fields, mv->npart_fields);
    strv_free(&mv->body);
    strv_free(&mv->rawbody);
    strv_free(&mv->uris);
    free(mv->envelope_from);
    free(mv);
}

/* The message without dot-stuffing (a line's leading ".." is "."). */
static void unstuff_crlf(const char *msg, size_t len, bool dot_stuffed,
                         struct buf *out)
{
    size_t i = 0;

    if (!dot_stuffed) {
        buf_add(out, msg, len);
        return;
    }
    while (i < len) {
        const char *nl = memchr(msg + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - msg) + 1 : len;
        size_t skip = end - i >= 2 && msg[i] == '.' && msg[i + 1] == '.';
        buf_add(out, msg + i + skip, end - i - skip);
        i = end;
    }
}

/* ---- header fields ---- */

/*
 * A field's value as rules see it: the blanks after the colon dropped and
 * the line breaks of folding removed (the blank after each stays). Copied
 * a line at a time; out->p is "" for an empty value, NULL when out of
 * memory.
 */
static void unfold(const char *v, size_t len, struct buf *out)
{
    size_t i = 0;

    while (i < len && (v[i] == ' ' || v[i] == '\t'))
        i++;
    while (i < len) {
        size_t n = i;

        while (n < len && v[n] != '\r' && v[n] != '\n')
            n++;
        if (n > i && buf_add(out, v + i, n - i) != 0) {
            buf_free(out);
            return;
        }
        i = n + 1;
    }
    if (!out->p)
        buf_add(out, "", 0);
}

static int add_field(void *arg, const struct msghdr_field *f)
{
    struct msgview *mv = arg;
    struct msgview_field *v;
    struct buf raw = {0};

    if (!(v = realloc(mv->fields, (mv->nfields + 1) * sizeof(*v))))
        return 1;
    mv->fields = v;
    unfold(f->value, f->value_len, &raw);
    v = &mv->fields[mv->nfields];
    v->name = strndup(f->name, f->name_len);
    v->raw = raw.p;
    v->decoded = NULL;
    if (!v->name || !v->raw) {
        free(v->name);
        free(v->raw);
        return 1;
    }
    mv->nfields++;
    return 0;
}

static int read_fields(struct msgview *mv, const char *msg, size_t len)
{
    msghdr_scan(msg, len, false, add_field, mv);
    return 0;
}

static const char *field_decoded(struct msgview_field *f)
{
    if (!f->decoded)
        f->decoded = g_mime_utils_header_decode_text(parser_opts, f->raw);
    return f->decoded ? f->decoded : f->raw;
}

static int add_instances(struct msgview_field *v, size_t n, const char *field,
                         enum header_mod mod, struct strv *out)
{
    struct buf b = {0};
    int rc = 0;

    for (size_t i = 0; i < n && rc == 0; i++) {
        if (strcasecmp(v[i].name, field) != 0)
            continue;
        const char *s = mod == HDR_RAW ? v[i].raw : field_decoded(&v[i]);
        b.n = 0;
        if (buf_add(&b, s, strlen(s)) != 0 || buf_addc(&b, '\n') != 0 ||
            strv_add(out, b.p, b.n) != 0)
            rc = -1;
    }
    buf_free(&b);
    return rc;
}

int msgview_mime_header(struct msgview *mv, const char *field,
                        enum header_mod mod, struct strv *out)
{
    if (add_instances(mv->fields, mv->nfields, field, mod, out) != 0)
        return -1;
    return add_instances(mv->part_fields, mv->npart_fields, field, mod, out);
}

/* The first mailbox of an address list: its address or display name. */
static void first_address(const char *raw, enum header_mod mod, struct buf *out)
{
    InternetAddressList *top = internet_address_list_parse(parser_opts, raw);
    InternetAddressList *l = top;
    InternetAddress *a = NULL;

    while (l && internet_address_list_length(l) > 0) {
        a = internet_address_list_get_address(l, 0);
        if (!INTERNET_ADDRESS_IS_GROUP(a))
            break;
        l = internet_address_group_get_members(INTERNET_ADDRESS_GROUP(a));
        a = NULL;
    }
    if (a && mod == HDR_ADDR) {
        const char *addr =
            internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(a));
        buf_add(out, addr ? addr : "", addr ? strlen(addr) : 0);
    } else if (a) {
        const char *name = internet_address_get_name(a);
        buf_add(out, name ? name : "", name ? strlen(name) : 0);
    } else if (mod == HDR_ADDR) {
        /* not an address list GMime can read: what is inside <>, or all */
        const char *lt = strchr(raw, '<'), *gt = lt ? strchr(lt, '>') : NULL;
        if (gt)
            buf_add(out, lt + 1, (size_t)(gt - lt - 1));
        else
            buf_add(out, raw, strlen(raw));
    }
    if (top)
        g_object_unref(top);
}

static void field_value(struct msgview_field *f, enum header_mod mod,
                        struct buf *out)
{
    const char *v;

    switch (mod) {
    case HDR_RAW:
        buf_add(out, f->raw, strlen(f->raw));
        break;
    case HDR_ADDR:
    case HDR_NAME:
        first_address(f->raw, mod, out);
        break;
    default:
        v = field_decoded(f);
        buf_add(out, v, strlen(v));
        break;
    }
    buf_addc(out, '\n');
}

static bool name_is(const char *name, const char *const *names)
{
    for (; *names; names++)
        if (strcasecmp(name, *names) == 0)
            return true;
    return false;
}

char *msgview_header(struct msgview *mv, const char *field, enum header_mod mod,
                     size_t *len)
{
    static const char *const tocc[] = {"To", "Cc", NULL};
    static const char *const msgid[] = {"Message-Id", "Resent-Message-Id",
                                        "X-Message-Id", NULL};
    static const char *const envfrom[] = {"Return-Path", "X-Envelope-From",
                                          NULL};
    const char *one[] = {field, NULL};
    const char *const *names = one;
    struct buf out = {0};
    /* the special names are exact, as in SpamAssassin: a field really
     * called "MessageID" is just that field */
    bool all = strcmp(field, "ALL") == 0;

    if (strcmp(field, "EnvelopeFrom") == 0) {
        if (mv->envelope_from) {
            buf_add(&out, mv->envelope_from, strlen(mv->envelope_from));
            if (mod != HDR_ADDR && mod != HDR_NAME)
                buf_addc(&out, '\n');
            if (len)
                *len = out.n;
            return out.p;
        }
        names = envfrom; /* no SMTP envelope (warden score): headers */
        if (mod == HDR_DECODED)
            mod = HDR_ADDR;
    } else if (strcmp(field, "ToCc") == 0) {
        names = tocc;
    } else if (strcmp(field, "MESSAGEID") == 0) {
        names = msgid;
    }
    for (size_t i = 0; i < mv->nfields; i++) {
        struct msgview_field *f = &mv->fields[i];
        if (all) {
            buf_add(&out, f->name, strlen(f->name));
            buf_add(&out, ": ", 2);
            field_value(f, mod == HDR_RAW ? HDR_RAW : HDR_DECODED, &out);
        } else if (name_is(f->name, names)) {
            field_value(f, mod, &out);
        }
    }
    /* an address or a name is a value, not a header line */
    if ((mod == HDR_ADDR || mod == HDR_NAME) && out.n)
        out.p[--out.n] = '\0';
    if (len)
        *len = out.n;
    return out.p;
}

/* ---- MIME ---- */

struct walk {
    struct msgview *mv;
    struct buf *text;
};

static void walk_object(struct walk *w, GMimeObject *obj, int depth);

/* A part's content, transfer-decoded, as bytes. */
static GByteArray *part_bytes(GMimePart *part)
{
    GMimeDataWrapper *dw = g_mime_part_get_content(part);
    GMimeStream *mem;
    GByteArray *ba;

    if (!dw)
        return NULL;
    mem = g_mime_stream_mem_new();
    g_mime_data_wrapper_write_to_stream(dw, mem);
    ba = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
    g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(mem), FALSE); /* ours */
    g_object_unref(mem);
    return ba;
}

/* rawbody: the part's lines, long ones split as SpamAssassin does. */
static void raw_lines(struct msgview *mv, const char *s, size_t len)
{
    size_t i = 0;

    while (i < len) {
        const char *nl = memchr(s + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - s) + 1 : len;
        while (end - i > PARAGRAPH_MAX) {
            strv_add(&mv->rawbody, s + i, PARAGRAPH_MAX);
            i += PARAGRAPH_MAX;
        }
        strv_add(&mv->rawbody, s + i, end - i);
        i = end;
    }
}

/* The part's text in UTF-8 (g_free it): from its charset, else UTF-8
 * if valid, else windows-1252. */
static char *to_utf8(const char *s, size_t len, const char *charset)
{
    const char *from = charset;
    iconv_t cd;
    char *out = NULL;

    if (!from || !*from || strcasecmp(from, "us-ascii") == 0 ||
        strcasecmp(from, "utf-8") == 0 || strcasecmp(from, "utf8") == 0) {
        if (len == 0 || !s)
            return g_strdup("");
        if (g_utf8_validate(s, (gssize)len, NULL))
            return g_strndup(s, len);
        from = "windows-1252";
    }
    cd = g_mime_iconv_open("UTF-8", from);
    if (cd == (iconv_t)-1 && strcasecmp(from, "windows-1252") != 0)
        cd = g_mime_iconv_open("UTF-8", "windows-1252");
    if (cd != (iconv_t)-1) {
        out = g_mime_iconv_strndup(cd, s, len);
        g_mime_iconv_close(cd);
    }
    if (!out)
        out = g_strndup(s ? s : "", s ? len : 0);
    return out ? out : g_strdup("");
}

static void walk_text(struct walk *w, GMimePart *part, GMimeContentType *ct)
{
    GByteArray *ba = part_bytes(part);
    const char *charset;
    char *utf8;

    if (!ba)
        return;
    raw_lines(w->mv, (const char *)ba->data, ba->len);
    charset = ct ? g_mime_content_type_get_parameter(ct, "charset") : NULL;
    utf8 = to_utf8((const char *)ba->data, ba->len, charset);
    g_byte_array_unref(ba);
    if (w->text->n && w->text->p[w->text->n - 1] != '\n')
        buf_addc(w->text, '\n');
    if (ct && g_mime_content_type_is_type(ct, "text", "html")) {
        struct strv links = {0};
        html_to_text(utf8, strlen(utf8), w->text, &links);
        for (size_t i = 0; i < links.n; i++)
            uris_add(&w->mv->uris, links.v[i], links.len[i]);
        strv_free(&links);
    } else {
        buf_add(w->text, utf8, strlen(utf8));
    }
    g_free(utf8);
}

/* A part's header fields, as add_field keeps the message's: unfolded, the
 * blanks before the value removed. */
static void keep_part_fields(struct msgview *mv, GMimeObject *obj)
{
    GMimeHeaderList *list = g_mime_object_get_header_list(obj);
    int n = list ? g_mime_header_list_get_count(list) : 0;

    for (int i = 0; i < n && mv->npart_fields < MSGVIEW_MAX_PART_FIELDS; i++) {
        GMimeHeader *h = g_mime_header_list_get_header_at(list, i);
        const char *name = g_mime_header_get_name(h);
        const char *raw = g_mime_header_get_raw_value(h);
        struct msgview_field *v;
        struct buf b = {0};

        if (!name || !raw)
            continue;
        unfold(raw, strlen(raw), &b);
        while (b.n > 0 && (b.p[b.n - 1] == ' ' || b.p[b.n - 1] == '\t'))
            b.p[--b.n] = '\0';
        char *copy = strdup(name);
        if (!copy || !b.p ||
            !(v = realloc(mv->part_fields,
                          (mv->npart_fields + 1) * sizeof(*v)))) {
            free(copy);
            buf_free(&b);
            return;
        }
        mv->part_fields = v;
        v[mv->npart_fields++] = (struct msgview_field){copy, b.p, NULL};
    }
}

static void walk_object(struct walk *w, GMimeObject *obj, int depth)
{
    if (!obj || depth > MSGVIEW_MAX_DEPTH || w->mv->nparts >= MSGVIEW_MAX_PARTS)
        return;
    if (depth > 0) /* the message's own fields are read by read_fields */
        keep_part_fields(w->mv, obj);
    if (GMIME_IS_MULTIPART(obj)) {
        GMimeMultipart *mp = GMIME_MULTIPART(obj);
        int n = g_mime_multipart_get_count(mp);
        for (int i = 0; i < n; i++)
            walk_object(w, g_mime_multipart_get_part(mp, i), depth + 1);
    } else if (GMIME_IS_MESSAGE_PART(obj)) {
        GMimeMessage *m =
            g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj));
        if (m)
            walk_object(w, g_mime_message_get_mime_part(m), depth + 1);
    } else if (GMIME_IS_PART(obj)) {
        GMimeContentType *ct = g_mime_object_get_content_type(obj);
        const char *raw = g_mime_object_get_header(obj, "Content-Type");
        w->mv->nparts++;
        /* RFC 2045 5.2: a Content-Type that does not parse means text */
        if (!ct || g_mime_content_type_is_type(ct, "text", "*") ||
            (raw && !strchr(raw, '/')))
            walk_text(w, GMIME_PART(obj), ct);
    }
}

static void read_mime(struct msgview *mv, const char *msg, size_t len,
                      struct buf *text)
{
    GMimeStream *stream = g_mime_stream_mem_new_with_buffer(msg, len);
    GMimeParser *parser = g_mime_parser_new_with_stream(stream);
    GMimeMessage *m;
    struct walk w = {mv, text};

    g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
    m = g_mime_parser_construct_message(parser, parser_opts);
    if (m) {
        walk_object(&w, g_mime_message_get_mime_part(m), 0);
        g_object_unref(m);
    }
    g_object_unref(parser);
    g_object_unref(stream);
}

/* ---- body paragraphs ---- */

static void add_paragraph(struct strv *out, const char *s, size_t n)
{
    /* split long ones at a blank, as SpamAssassin does; with no blank,
     * between two characters, so that each piece stays UTF-8 for rules
     * matched in UTF mode */
    while (n > PARAGRAPH_MAX) {
        size_t cut = PARAGRAPH_MAX;
        while (cut > 0 && s[cut - 1] != ' ')
            cut--;
        if (cut == 0) {
            cut = PARAGRAPH_MAX;
            while (cut > PARAGRAPH_MAX - 3 &&
                   ((unsigned char)s[cut] & 0xC0) == 0x80)
                cut--;
        }
        strv_add(out, s, cut);
        s += cut;
        n -= cut;
    }
    strv_add(out, s, n);
}

static size_t blank_at(const char *s, size_t i, size_t len)
{
    unsigned char c = (unsigned char)s[i];

    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
        c == '\f')
        return 1;
    if (c == 0xc2 && i + 1 < len && (unsigned char)s[i + 1] == 0xa0)
        return 2; /* U+00A0 NO-BREAK SPACE */
    return 0;
}

/*
 * SpamAssassin's whitespace handling: a run of blanks holding two line
 * breaks ends a paragraph; any other run is one space. Each paragraph
 * ends with "\n".
 */
static void paragraphs(const char *s, size_t len, struct strv *out)
{
    struct buf p = {0};
    size_t i = 0;

    while (i < len) {
        size_t b = blank_at(s, i, len);
        if (!b) {
            buf_addc(&p, s[i++]);
            continue;
        }
        unsigned nl = 0;
        size_t j = i, last_nl = i;
        for (size_t k; j < len && (k = blank_at(s, j, len)); j += k)
            if (s[j] == '\n')
                nl++, last_nl = j;
        if (j == len) {
            break; /* trailing blanks */
        } else if (nl >= 2) {
            buf_addc(&p, '\n');
            add_paragraph(out, p.p, p.n);
            p.n = 0;
            if (j > last_nl + 1)
                buf_addc(&p, ' ');
        } else {
            buf_addc(&p, ' ');
        }
        i = j;
    }
    if (p.n) {
        buf_addc(&p, '\n');
        add_paragraph(out, p.p, p.n);
    }
    buf_free(&p);
}
