/* objcache.h: per-thread free lists of fixed-size objects (PgBouncer's slabs, small): a
 * connection object freed on a worker is taken again by that worker's next connection without a
 * malloc and a free. Each cache is a __thread variable of its user's file. */
#ifndef SHOAL_OBJCACHE_H
#define SHOAL_OBJCACHE_H

#include <stddef.h>

#define OBJCACHE_MAX 64 /* objects kept per cache and thread; more are freed */

struct objcache_obj;
struct objcache {
	struct objcache_obj *head;
	int n;
	struct objcache *next_cache; /* in this thread's list of caches that hold objects */
	int listed;
};

/* A zeroed object of size bytes (size the same on every call for one cache): a cached one, else
 * a new allocation. The caller owns it. */
void *objcache_take(struct objcache *oc, size_t size);
/* Give p (size bytes, from objcache_take of this cache, on any thread) back: kept for this
 * thread's next take (objcache_enable), or freed when the cache is full or off here. */
void objcache_give(struct objcache *oc, void *p, size_t size);
/* Let this thread keep what it gives back (worker threads, which drain at their end with
 * objcache_drain_all); in other threads objcache_give frees at once. */
void objcache_enable(void);
/* Free every object this thread's caches hold (at thread exit). */
void objcache_drain_all(void);

#endif
