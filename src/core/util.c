/* util.c: allocation wrappers and the monotonic clock. */
#include "common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

__thread usec_t loop_clock;

usec_t shoal_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (usec_t)ts.tv_sec * USEC_PER_SEC + ts.tv_nsec / 1000;
}

static void *oom(size_t n)
{
	fprintf(stderr, "shoal: out of memory allocating %zu bytes\n", n);
	abort();
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	return p ? p : oom(n);
}

void *xcalloc(size_t n, size_t m)
{
	void *p = calloc(n ? n : 1, m ? m : 1);
	return p ? p : oom(n * m);
}

void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	return q ? q : oom(n);
}

void str_copy(char *dst, size_t cap, const char *src)
{
	size_t n = strlen(src);
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

size_t str_cat(char *dst, size_t cap, size_t at, const char *src)
{
	size_t n = strlen(src);
	if (n >= cap - at)
		n = cap - at - 1;
	memcpy(dst + at, src, n);
	dst[at + n] = '\0';
	return at + n;
}

/* Digits of v in decimal (1 to 20). */
static int u64_digits(uint64_t v)
{
	int n = 1;
	for (; v >= 10000; v /= 10000)
		n += 4;
	return n + (v >= 10) + (v >= 100) + (v >= 1000);
}

char *u64_put(char *out, uint64_t v)
{
	/* Two digits per division, written in place from the end (addresses, ports and ids are
	 * formatted on every login). */
	static const char pairs[] = "00010203040506070809101112131415161718192021222324"
				    "25262728293031323334353637383940414243444546474849"
				    "50515253545556575859606162636465666768697071727374"
				    "75767778798081828384858687888990919293949596979899";
	char *end = out + u64_digits(v), *o = end;
	*end = '\0';
	while (v >= 100) {
		unsigned d = (unsigned)(v % 100) * 2;
		v /= 100;
		*--o = pairs[d + 1];
		*--o = pairs[d];
	}
	if (v >= 10) {
		*--o = pairs[v * 2 + 1];
		*--o = pairs[v * 2];
	} else {
		*--o = (char)('0' + v);
	}
	return end;
}

char *xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;
	return memcpy(xmalloc(n), s, n);
}
