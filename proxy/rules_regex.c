/*
 * rules_regex: Perl regex literals compiled with PCRE2 and its JIT, and
 * matched with limits (see the header).
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "rules_regex.h"

#include <pcre2.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Bounds on one match. PCRE2's default match limit (ten million) lets a
 * nested quantifier run for seconds; these give up within milliseconds,
 * far above what an honest rule needs on a 2 KB paragraph.
 */
#define MATCH_LIMIT 200000
#define DEPTH_LIMIT 5000
#define HEAP_LIMIT_KB 16384
#define JIT_STACK_MIN (32 * 1024)
#define JIT_STACK_MAX (1024 * 1024)

struct rx {
    pcre2_code *code;
    char *pattern;
    unsigned options;
};

/* What one thread needs to match: made on first use, freed at its exit. */
struct rx_thread {
    pcre2_match_data *md;
    pcre2_match_context *mc;
    pcre2_jit_stack *stack;
};

static pthread_key_t thread_key;
static pthread_once_t thread_once = PTHREAD_ONCE_INIT;

static int split_literal(const char *lit, char **pattern, unsigned *options,
                         char *err, size_t errlen);
static int modifiers(const char *m, unsigned *options, char *err,
                     size_t errlen);
static pcre2_code *compile(const char *pattern, unsigned options, char *err,
                           size_t errlen, int *code);

/* ---- compiling ---- */

struct rx *rx_compile(const char *lit, char *err, size_t errlen)
{
    bool too_large;

    return rx_compile_sized(lit, err, errlen, &too_large);
}

struct rx *rx_compile_sized(const char *lit, char *err, size_t errlen,
                            bool *too_large)
{
    struct rx *rx = calloc(1, sizeof(*rx));
    int code = 0;

    *too_large = false;
    if (!rx) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (split_literal(lit, &rx->pattern, &rx->options, err, errlen) != 0 ||
        !(rx->code = compile(rx->pattern, rx->options, err, errlen, &code))) {
        *too_large = code == PCRE2_ERROR_PATTERN_TOO_LARGE;
        rx_free(rx);
        return NULL;
    }
    pcre2_pattern_info(rx->code, PCRE2_INFO_ALLOPTIONS, &rx->options);
    /* without the JIT (no support on this CPU) PCRE2 interprets: slower,
     * still correct and still bounded */
    pcre2_jit_compile(rx->code, PCRE2_JIT_COMPLETE);
    return rx;
}

void rx_free(struct rx *rx)
{
    if (!rx)
        return;
    pcre2_code_free(rx->code);
    free(rx->pattern);
    free(rx);
}

const char *rx_pattern(const struct rx *rx)
{
    return rx->pattern;
}

unsigned rx_options(const struct rx *rx)
{
    return rx->options;
}

/* Closing delimiter of an opening one: m{...}, m(...), m<...>, m[...]. */
static char closing(char open)
{
    switch (open) {
    case '{':
        return '}';
    case '(':
        return ')';
    case '<':
        return '>';
    case '[':
        return ']';
    default:
        return open;
    }
}

/*
 * "/re/flags" or "m?re?flags": as SpamAssassin's regexp_remove_delimiters,
 * the pattern ends at the last closing delimiter that only modifiers
 * follow, so an unescaped delimiter inside the pattern is harmless.
 */
static int split_literal(const char *lit, char **pattern, unsigned *options,
                         char *err, size_t errlen)
{
    const char *p = lit, *close = NULL;
    char open, end;

    if (p[0] == 'm' && p[1] &&
        !((p[1] >= 'a' && p[1] <= 'z') || (p[1] >= 'A' && p[1] <= 'Z') ||
          (p[1] >= '0' && p[1] <= '9') || p[1] == '_'))
        p++;
    open = *p;
    if (p == lit && open != '/') {
        snprintf(err, errlen, "expected /regex/ or m{regex}");
        return -1;
    }
    if (open == ' ' || open == '\t' || open == '\0' || open == '\\') {
        snprintf(err, errlen, "bad regex delimiter");
        return -1;
    }
    end = closing(open);
    for (const char *q = p + 1; *q; q++)
        if (*q == end && strspn(q + 1, "imsxngoaulpd") == strlen(q + 1))
            close = q;
    if (!close) {
        snprintf(err, errlen,
                 "regex not terminated by %c (or by unknown "
                 "modifiers)",
                 end);
        return -1;
    }
    if (modifiers(close + 1, options, err, errlen) != 0)
        return -1;
    *pattern = strndup(p + 1, (size_t)(close - p - 1));
    if (!*pattern) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

/* Perl's modifiers: the ones that change matching, the rest ignored
 * (g and o mean nothing to a test; a, u, l, d pick Perl charset rules). */
static int modifiers(const char *m, unsigned *options, char *err, size_t errlen)
{
    *options = 0;
    for (; *m; m++) {
        switch (*m) {
        case 'i':
            *options |= PCRE2_CASELESS;
            break;
        case 'm':
            *options |= PCRE2_MULTILINE;
            break;
        case 's':
            *options |= PCRE2_DOTALL;
            break;
        case 'x':
            *options |= (*options & PCRE2_EXTENDED) ? PCRE2_EXTENDED_MORE
                                                    : PCRE2_EXTENDED;
            break;
        case 'n':
            *options |= PCRE2_NO_AUTO_CAPTURE;
            break;
        case 'g':
        case 'o':
        case 'a':
        case 'u':
        case 'l':
        case 'd':
        case 'p':
            break;
        default:
            snprintf(err, errlen, "unknown regex modifier '%c'", *m);
            return -1;
        }
    }
    return 0;
}

static pcre2_code *compile_with(const char *pattern, unsigned options,
                                uint32_t extra, int *code, PCRE2_SIZE *off)
{
    pcre2_compile_context *cc = pcre2_compile_context_create(NULL);
    pcre2_code *re;

    if (!cc)
        return NULL;
    pcre2_set_compile_extra_options(cc, extra);
    re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, options,
                       code, off, cc);
    pcre2_compile_context_free(cc);
    return re;
}

/*
 * Bytes, as SpamAssassin matches them. Two Perl habits need a second try:
 * a pattern that names a code point above 255 (\x{263a}) only makes sense
 * on characters, so it is compiled in UTF mode (tolerant of invalid UTF-8
 * in the subject); and Perl takes an unknown escape ("\i") as the letter,
 * where PCRE2 refuses it unless told otherwise. Telling it so from the
 * start would also hide the first case, hence the order.
 */
static pcre2_code *compile(const char *pattern, unsigned options, char *err,
                           size_t errlen, int *code)
{
    PCRE2_SIZE off;
    pcre2_code *re = compile_with(pattern, options, 0, code, &off);

    if (!re && *code == PCRE2_ERROR_CODE_POINT_TOO_BIG) /* for non-UTF mode */
        re =
            compile_with(pattern, options | PCRE2_UTF | PCRE2_MATCH_INVALID_UTF,
                         PCRE2_EXTRA_BAD_ESCAPE_IS_LITERAL, code, &off);
    else if (!re)
        re = compile_with(pattern, options, PCRE2_EXTRA_BAD_ESCAPE_IS_LITERAL,
                          code, &off);
    if (!re) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(*code, msg, sizeof(msg));
        snprintf(err, errlen, "bad regex at offset %zu: %s", (size_t)off,
                 (char *)msg);
    }
    return re;
}

/* ---- matching ---- */

static void thread_free(void *p)
{
    struct rx_thread *t = p;

    pcre2_match_data_free(t->md);
    pcre2_match_context_free(t->mc);
    pcre2_jit_stack_free(t->stack);
    free(t);
}

static void make_key(void)
{
    pthread_key_create(&thread_key, thread_free);
}

static struct rx_thread *thread_state(void)
{
    struct rx_thread *t;

    pthread_once(&thread_once, make_key);
    if ((t = pthread_getspecific(thread_key)))
        return t;
    if (!(t = calloc(1, sizeof(*t))))
        return NULL;
    t->md = pcre2_match_data_create(1, NULL);
    t->mc = pcre2_match_context_create(NULL);
    t->stack = pcre2_jit_stack_create(JIT_STACK_MIN, JIT_STACK_MAX, NULL);
    if (!t->md || !t->mc || !t->stack) {
        thread_free(t);
        return NULL;
    }
    pcre2_set_match_limit(t->mc, MATCH_LIMIT);
    pcre2_set_depth_limit(t->mc, DEPTH_LIMIT);
    pcre2_set_heap_limit(t->mc, HEAP_LIMIT_KB);
    pcre2_jit_stack_assign(t->mc, NULL, t->stack);
    pthread_setspecific(thread_key, t);
    return t;
}

int rx_count(const struct rx *rx, const char *s, size_t len, unsigned max)
{
    struct rx_thread *t = thread_state();
    PCRE2_SIZE start = 0;
    unsigned n = 0;

    if (!t)
        return -1;
    while (n < max && start <= len) {
        int rc =
            pcre2_match(rx->code, (PCRE2_SPTR)s, len, start, 0, t->md, t->mc);
        if (rc == PCRE2_ERROR_NOMATCH)
            break;
        if (rc < 0)
            return n ? (int)n : -1;
        n++;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(t->md);
        /* as Perl's //g: an empty match moves on by one */
        start = ov[1] > ov[0] ? ov[1] : ov[0] + 1;
    }
    return (int)n;
}
