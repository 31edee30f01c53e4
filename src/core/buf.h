/* buf.h: a growable byte buffer with a read offset, used for socket I/O and message building. */
#ifndef SHOAL_BUF_H
#define SHOAL_BUF_H

#include "common.h"

#include <string.h>

struct buf {
	uint8_t *data;
	size_t off; /* first unread byte */
	size_t len; /* end of valid bytes */
	size_t cap;
	size_t mark; /* offset of the length field of the message being built */
};

/* The slow half of buf_reserve: take a cached block, compact or grow. */
void buf_grow(struct buf *b, size_t n);
/* Make room for n more bytes after len; aborts on allocation failure. Inline: every message
 * copied passes here, and there is usually room. */
static inline void buf_reserve(struct buf *b, size_t n)
{
	if (b->cap - b->len < n)
		buf_grow(b, n);
}
/* Append n bytes. */
static inline void buf_append(struct buf *b, const void *p, size_t n)
{
	buf_reserve(b, n);
	memcpy(b->data + b->len, p, n);
	b->len += n;
}
/* Bytes not yet consumed. */
static inline size_t buf_avail(const struct buf *b)
{
	return b->len - b->off;
}
static inline const uint8_t *buf_head(const struct buf *b)
{
	return b->data + b->off;
}
/* Mark n bytes consumed; resets offsets when empty. Inline: several times per message. */
static inline void buf_consume(struct buf *b, size_t n)
{
	assert(n <= buf_avail(b));
	b->off += n;
	if (b->off == b->len)
		b->off = b->len = 0;
}
/* Move unread bytes to the front so that reads have room. */
void buf_compact(struct buf *b);
/* Append printf-formatted text (no NUL), however long. */
void buf_printf(struct buf *b, const char *fmt, ...) PRINTF(2, 3);
/* Let go of b's memory, whatever it holds: in a thread with a cache (buf_cache_enable) a
 * BUF_SMALL block goes to it, and buf_reserve takes from it first (a closed connection's
 * buffers serve the next one); otherwise, or a larger block, is freed. The buffer is then
 * empty and reusable. */
void buf_free(struct buf *b);
/* If b is empty, buf_free it. A connection between requests then holds no buffer at all.
 * Inline: a client's buffers are shed after each of its reads and writes. */
static inline void buf_shed(struct buf *b)
{
	if (b->len == b->off)
		buf_free(b);
}
/* Give this thread a cache of freed small blocks (worker threads, which drain it at their end
 * with buf_cache_drain); other threads free their blocks at once. */
void buf_cache_enable(void);
/* Free this thread's cached blocks (at thread exit). */
void buf_cache_drain(void);

#define BUF_SMALL 512 /* a new buffer's size */

#endif
