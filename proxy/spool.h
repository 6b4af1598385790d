/*
 * spool: where a message waits between the client's final dot and the
 * backend's 354.
 *
 * Bytes stay in memory up to a limit, then spill to an unlinked temporary
 * file in the spool directory, so a large message costs disk, not RAM, and
 * a crash leaves nothing behind (the client, never told 250, still holds
 * the message and retries).
 */
#ifndef WARDEN_SPOOL_H
#define WARDEN_SPOOL_H

#include <stddef.h>
#include <sys/types.h>

struct evbuffer;
struct spool;

struct spool *spool_new(size_t mem_limit, const char *dir);
void spool_free(struct spool *sp);

/* Move all of buf into the spool (buf is drained). Returns 0 or -1 (disk). */
int spool_append(struct spool *sp, struct evbuffer *buf);

size_t spool_size(const struct spool *sp);
int spool_in_file(const struct spool *sp);

/*
 * Reading, from the start: moves up to max bytes into out. Returns the
 * bytes added, 0 at the end, -1 on a read error. A memory spool is handed
 * over without copying and is empty afterwards.
 */
ssize_t spool_read(struct spool *sp, struct evbuffer *out, size_t max);
void spool_rewind(struct spool *sp);

/* Copy of the first max bytes, for checks that read the headers. */
size_t spool_peek(struct spool *sp, char *buf, size_t max);

#endif
