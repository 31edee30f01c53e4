/* common.h: return codes, attributes and small helpers shared by every module. */
#ifndef SHOAL_COMMON_H
#define SHOAL_COMMON_H

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The closed set of results for non-blocking code (after nginx's NGX_OK/AGAIN/ERROR). */
typedef enum {
	SHOAL_OK = 0,
	SHOAL_AGAIN = 1, /* need more bytes, or the call would block */
	SHOAL_ERROR = -1,
} shoal_rc;

#define MUST_USE     __attribute__((warn_unused_result))
#define PRINTF(a, b) __attribute__((format(printf, a, b)))
#define UNUSED(x)    ((void)(x))
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* SHOAL_ASAN: built with AddressSanitizer (gcc says __SANITIZE_ADDRESS__, clang
 * __has_feature(address_sanitizer)). */
#if defined(__SANITIZE_ADDRESS__)
#define SHOAL_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SHOAL_ASAN 1
#endif
#endif

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

/* Monotonic time in microseconds. */
typedef int64_t usec_t;
#define USEC_PER_SEC 1000000LL
usec_t shoal_now(void);
/* The time the running event-loop batch began (set by loop_run after each wait), or shoal_now()
 * outside a loop: one clock read per batch for the per-message bookkeeping. */
extern __thread usec_t loop_clock;
static inline usec_t shoal_clock(void)
{
	return loop_clock ? loop_clock : shoal_now();
}

/* The hash function (FNV-1a) for names hashed while they are read (sqlscan.c, params.c). */
#include "hash.h"

/* Allocation that aborts on failure: a pooler that cannot allocate a few bytes cannot recover. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t m);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
/* Copy src into dst (cap > 0 bytes), cut to fit, always NUL-terminated: snprintf's "%s"
 * without the formatter. */
void str_copy(char *dst, size_t cap, const char *src);
/* Append src to dst, which holds a string of at bytes in cap (> at), cut to fit; returns the new
 * length. For names built on every connection without the formatter. */
size_t str_cat(char *dst, size_t cap, size_t at, const char *src);
/* The decimal digits of v at out (room for 21 bytes), NUL-terminated; returns the NUL's address. */
char *u64_put(char *out, uint64_t v);

#endif
