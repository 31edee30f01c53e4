/* buf.c: growable byte buffers. */
#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CACHE_MAX 128 /* blocks per thread: enough for the connections active at once */

struct block {
	struct block *next;
};

static __thread struct block *cache;
static __thread int cache_n;
static __thread bool cache_on; /* buf_cache_enable: only threads that drain at their end */

void buf_cache_enable(void)
{
	cache_on = true;
}

void buf_cache_drain(void)
{
	while (cache) {
		struct block *next = cache->next;
		free(cache);
		cache = next;
	}
	cache_n = 0;
}

void buf_grow(struct buf *b, size_t n)
{
	if (b->cap == 0 && n <= BUF_SMALL && cache) {
		b->data = (uint8_t *)(void *)cache;
		cache = cache->next;
		cache_n--;
		b->cap = BUF_SMALL;
		return;
	}
	if (b->off > 0 && b->cap - buf_avail(b) >= n) {
		buf_compact(b);
		return;
	}
	size_t cap = b->cap ? b->cap : BUF_SMALL;
	while (cap - b->len < n)
		cap *= 2;
	b->data = xrealloc(b->data, cap);
	b->cap = cap;
}

void buf_compact(struct buf *b)
{
	if (b->off == 0)
		return;
	memmove(b->data, b->data + b->off, buf_avail(b));
	/* A message being built (proto_begin) moves with its bytes: its length field is written
	 * at the mark when it is finished. */
	b->mark = b->mark >= b->off ? b->mark - b->off : 0;
	b->len -= b->off;
	b->off = 0;
}

void buf_free(struct buf *b)
{
	if (cache_on && b->cap == BUF_SMALL && cache_n < CACHE_MAX) {
		struct block *blk = (struct block *)(void *)b->data;
		blk->next = cache;
		cache = blk;
		cache_n++;
	} else {
		free(b->data);
	}
	*b = (struct buf){0};
}

void buf_printf(struct buf *b, const char *fmt, ...)
{
	char small[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n <= 0)
		return;
	if ((size_t)n < sizeof(small)) {
		buf_append(b, small, (size_t)n);
		return;
	}
	buf_reserve(b, (size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}
