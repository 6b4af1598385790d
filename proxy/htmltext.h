/*
 * htmltext: HTML reduced to the text a reader sees, for body rules, and
 * the links it holds, for uri rules.
 *
 * Not a browser: a tolerant tokenizer that drops tags, comments, <script>
 * and <style>, turns block elements into line and paragraph breaks,
 * decodes character references into UTF-8, and collects the URLs of
 * href, src, action and background attributes (resolved against <base>
 * when relative). Malformed HTML never fails: what cannot be parsed is
 * text. Pure: bytes in, bytes out, so it can be fuzzed.
 */
#ifndef WARDEN_HTMLTEXT_H
#define WARDEN_HTMLTEXT_H

#include <stddef.h>

struct buf;
struct strv;

/* Append the text of html[0..len) to text and each link found to links
 * (links may be NULL). Returns 0 or -1 (out of memory). */
int html_to_text(const char *html, size_t len, struct buf *text,
                 struct strv *links);

/* Append code point cp as UTF-8 (nothing for 0, surrogates, > 0x10FFFF). */
int utf8_put(struct buf *b, unsigned long cp);

#endif
