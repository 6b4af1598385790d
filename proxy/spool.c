/*
 * spool: memory first, then an unlinked temporary file.
 */
#include "spool.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "log.h"

struct spool {
    struct evbuffer *mem;     /* used until mem_limit is passed */
    int fd;                   /* -1 while in memory */
    size_t mem_limit;
    size_t size;
    off_t read_off;           /* file read position */
    char dir[256];
};

struct spool *spool_new(size_t mem_limit, const char *dir)
{
    struct spool *sp = calloc(1, sizeof(*sp));

    if (!sp)
        return NULL;
    sp->mem = evbuffer_new();
    if (!sp->mem) {
        free(sp);
        return NULL;
    }
    sp->fd = -1;
    sp->mem_limit = mem_limit;
    snprintf(sp->dir, sizeof(sp->dir), "%s", dir ? dir : "/var/tmp");
    return sp;
}

void spool_free(struct spool *sp)
{
    if (!sp)
        return;
    evbuffer_free(sp->mem);
    if (sp->fd >= 0)
        close(sp->fd);
    free(sp);
}

/* Write all of buf to the file, draining it. */
static int drain_to_file(struct spool *sp, struct evbuffer *buf)
{
    while (evbuffer_get_length(buf) > 0) {
        int n = evbuffer_write(buf, sp->fd);
        if (n < 0 && errno != EINTR) {
            log_err("spool: write to %s failed: %s", sp->dir, strerror(errno));
            return -1;
        }
    }
    return 0;
}

static int spill(struct spool *sp)
{
    char path[300];

    snprintf(path, sizeof(path), "%s/warden.XXXXXX", sp->dir);
    sp->fd = mkstemp(path);
    if (sp->fd < 0) {
        log_err("spool: cannot create a file in %s: %s", sp->dir,
                strerror(errno));
        return -1;
    }
    unlink(path); /* nothing is left behind, whatever happens next */
    log_debug("spool: message over %zu bytes, continuing in a file in %s",
              sp->mem_limit, sp->dir);
    return drain_to_file(sp, sp->mem);
}

int spool_append(struct spool *sp, struct evbuffer *buf)
{
    size_t n = evbuffer_get_length(buf);

    sp->size += n;
    if (sp->fd < 0) {
        evbuffer_add_buffer(sp->mem, buf);
        if (sp->size <= sp->mem_limit)
            return 0;
        return spill(sp);
    }
    return drain_to_file(sp, buf);
}

size_t spool_size(const struct spool *sp)
{
    return sp->size;
}

int spool_in_file(const struct spool *sp)
{
    return sp->fd >= 0;
}

void spool_rewind(struct spool *sp)
{
    sp->read_off = 0;
}

ssize_t spool_read(struct spool *sp, struct evbuffer *out, size_t max)
{
    if (sp->fd < 0) {
        size_t n = evbuffer_get_length(sp->mem);
        if (n <= max) {
            evbuffer_add_buffer(out, sp->mem);
            return (ssize_t)n;
        }
        return evbuffer_remove_buffer(sp->mem, out, max);
    }
    char chunk[16384];
    size_t want = max < sizeof(chunk) ? max : sizeof(chunk);
    ssize_t n;
    do {
        n = pread(sp->fd, chunk, want, sp->read_off);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        log_err("spool: read failed: %s", strerror(errno));
        return -1;
    }
    sp->read_off += n;
    evbuffer_add(out, chunk, (size_t)n);
    return n;
}

size_t spool_peek(struct spool *sp, char *buf, size_t max)
{
    if (sp->fd < 0) {
        ev_ssize_t n = evbuffer_copyout(sp->mem, buf, max);
        return n > 0 ? (size_t)n : 0;
    }
    ssize_t n = pread(sp->fd, buf, max, 0);
    return n > 0 ? (size_t)n : 0;
}
