/*
 * What the loader targets (fuzz_config.c, fuzz_policy.c) share: a private
 * directory with the including file's fixtures[] (plus a FIFO with no
 * writer), the fuzzed file at a random name in it, and helpers to read
 * error messages against the input. Include after defining fixtures[].
 */
#ifndef WARDEN_FUZZ_LOADER_H
#define WARDEN_FUZZ_LOADER_H

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[256];
static char path[300];   /* the fuzzed file: dir/PREFIX-XXXXXX.yaml */
static const char *base; /* its last component */

static void write_all(const char *file, const void *buf, size_t len)
{
    int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    const char *p = buf;

    if (fd < 0) {
        perror(file);
        abort();
    }
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            perror(file);
            abort();
        }
        p += w;
        len -= (size_t)w;
    }
    close(fd);
}

static void cleanup(void)
{
    char f[sizeof(dir) + 64];

    for (size_t i = 0; i < sizeof(fixtures) / sizeof(fixtures[0]); i++) {
        snprintf(f, sizeof(f), "%s/%s", dir, fixtures[i].name);
        unlink(f);
    }
    snprintf(f, sizeof(f), "%s/fifo", dir);
    unlink(f);
    unlink(path);
    rmdir(dir);
}

static void setup(const char *tag, const char *prefix)
{
    const char *tmp = getenv("TMPDIR");
    char f[sizeof(dir) + 64];
    struct stat st;
    int fd;

    if (!tmp || !*tmp)
        tmp = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) &&
                      access("/dev/shm", W_OK) == 0
                  ? "/dev/shm"
                  : "/tmp";
    snprintf(dir, sizeof(dir), "%s/warden-fuzz-%s-XXXXXX", tmp, tag);
    if (!mkdtemp(dir)) {
        perror(dir);
        abort();
    }
    for (size_t i = 0; i < sizeof(fixtures) / sizeof(fixtures[0]); i++) {
        snprintf(f, sizeof(f), "%s/%s", dir, fixtures[i].name);
        write_all(f, fixtures[i].text, strlen(fixtures[i].text));
    }
    /* a FIFO with no writer: opening it blocks, so the loader must not */
    snprintf(f, sizeof(f), "%s/fifo", dir);
    if (mkfifo(f, 0600) != 0) {
        perror(f);
        abort();
    }
    /* A random name: the input cannot name it except by guessing. */
    snprintf(path, sizeof(path), "%s/%s-XXXXXX.yaml", dir, prefix);
    fd = mkstemps(path, 5);
    if (fd < 0) {
        perror(path);
        abort();
    }
    close(fd);
    base = strrchr(path, '/') + 1;
    atexit(cleanup);
}

/* ---- error messages ---- */

/* Byte loops, not strncmp/memmem: libFuzzer would learn the path from them. */
static bool starts_with(const char *s, const char *prefix)
{
    for (; *prefix; s++, prefix++)
        if (*s != *prefix)
            return false;
    return true;
}

static bool contains(const uint8_t *data, size_t size, const char *needle)
{
    size_t n = strlen(needle);

    for (size_t i = 0; i + n <= size; i++) {
        size_t j = 0;
        while (j < n && data[i + j] == (uint8_t)needle[j])
            j++;
        if (j == n)
            return true;
    }
    return false;
}

/*
 * The last line a message may name: libyaml counts line breaks as YAML 1.1
 * does (LF, CR, CRLF as one, NEL, LS, PS; the input is UTF-16 when it
 * starts with a UTF-16 BOM), and at the end of a file whose last line has
 * no line break it moves to the next line. So: the number of lines plus
 * one, as an editor counts lines.
 */
static size_t last_line(const uint8_t *d, size_t n)
{
    size_t breaks = 0;
    bool open = false; /* text after the last break */

    if (n >= 2 && ((d[0] == 0xff && d[1] == 0xfe) ||
                   (d[0] == 0xfe && d[1] == 0xff))) {
        bool le = d[0] == 0xff;
        for (size_t i = 2; i + 1 < n; i += 2) {
            unsigned c = le ? d[i] | (unsigned)d[i + 1] << 8
                            : (unsigned)d[i] << 8 | d[i + 1];
            unsigned next = 0;
            if (i + 3 < n)
                next = le ? d[i + 2] | (unsigned)d[i + 3] << 8
                          : (unsigned)d[i + 2] << 8 | d[i + 3];
            if (c == '\n' || (c == '\r' && next != '\n') || c == 0x85 ||
                c == 0x2028 || c == 0x2029) {
                breaks++;
                open = false;
            } else if (c != '\r') {
                open = true;
            }
        }
        return breaks + 1 + (n % 2 || open);
    }
    for (size_t i = 0; i < n; i++) {
        if (d[i] == '\n' || (d[i] == '\r' && (i + 1 == n || d[i + 1] != '\n'))) {
            breaks++;
            open = false;
        } else if (d[i] == 0xc2 && i + 1 < n && d[i + 1] == 0x85) {
            breaks++;
            open = false;
            i++;
        } else if (d[i] == 0xe2 && i + 2 < n && d[i + 1] == 0x80 &&
                   (d[i + 2] == 0xa8 || d[i + 2] == 0xa9)) {
            breaks++;
            open = false;
            i += 2;
        } else if (d[i] != '\r') {
            open = true;
        }
    }
    return breaks + 1 + open;
}

#endif
